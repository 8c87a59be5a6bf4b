//! The topic table shared by producer threads and the I/O thread, and each
//! partition's accumulator slot.
//!
//! Why copy-on-write with a version number: `send` runs on many threads and
//! must find its topic's partitions without a global lock. The table is an
//! immutable [`TopicMap`] behind an `Arc`; the I/O thread replaces it (rarely:
//! on metadata changes) and bumps an atomic version. Each producer thread
//! caches the `Arc` in a thread-local and only compares the version — one
//! shared, read-mostly atomic load per `send`, no lock, no reference-count
//! traffic. A thread working with a slightly stale map is harmless: the
//! partition slots are shared `Arc`s that survive map replacement.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kring_protocol::record::{Compression, RecordBatchBuilder};
use kring_protocol::ErrorCode;

use crate::compress::Sealing;

use crate::backoff::SplitMix64;
use crate::delivery::{BatchCompletion, PerRecord};
use crate::wait::WaitList;

/// A batch being filled. Lives in its partition's slot, under its mutex.
///
/// `repr(C)`: the fields every append touches come first, in declaration
/// order, so that with the slot's lock and the queue's `last_batch_len`
/// they share three cache lines (see [`PartitionSlot`]).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct OpenBatch {
    /// What tells `Some` from `None` in the slot's `Option<OpenBatch>`
    /// (see [`Open`]), on the slot's first line.
    pub(crate) open: Open,
    pub(crate) builder: RecordBatchBuilder,
    /// Made by the batch's first record sent with a handle (see `reply`).
    pub(crate) completion: Option<Arc<BatchCompletion>>,
    /// Per-record timestamps and contexts, kept only when a delivery
    /// callback is set (the field keeps its old name).
    pub(crate) per_record: PerRecord,
    pub(crate) id: u64,
    pub(crate) created: Instant,
    /// Bytes reserved from `buffer.memory`: the buffer's capacity and
    /// `table_charged`.
    pub(crate) reserved: usize,
    /// The part of `reserved` charged for `per_record`'s heap (its
    /// vectors' capacity, charged before they grow).
    pub(crate) table_charged: usize,
    /// The flush generation current when the batch opened.
    pub(crate) flush_gen: u64,
}

/// A field of one valid value in eight bytes: the largest niche a field
/// can have (every other value), so the compiler encodes
/// `Option<OpenBatch>`'s `None` in it rather than in another field's
/// niche. Without it, `None` was a capacity of the per-record table's last
/// vector, on the slot's fourth cache line, and every append read that
/// line just to learn the batch was there (BENCHMARKS.md, "Per-batch
/// cost", round 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Open {
    /// The only value.
    Yes = 1,
}

/// A sealed batch waiting to be drained by the I/O thread.
#[derive(Debug)]
pub(crate) struct QueuedBatch {
    pub(crate) id: u64,
    /// Sealed, or waiting for (or in) a compression worker.
    pub(crate) sealed: Sealing,
    pub(crate) record_count: u32,
    pub(crate) completion: Option<Arc<BatchCompletion>>,
    pub(crate) created: Instant,
    pub(crate) reserved: usize,
    pub(crate) flush_gen: u64,
    pub(crate) per_record: PerRecord,
}

/// What the ledger keeps of a batch leaving the accumulator, besides its
/// sealed bytes and per-record table (`Ledger::hold`): a batch is handed
/// over in parts, each moved once, not as a whole [`QueuedBatch`] copied
/// on the way (see `ProducerCore::hold_taken`).
#[derive(Debug)]
pub(crate) struct Leaving {
    pub(crate) record_count: u32,
    pub(crate) completion: Option<Arc<BatchCompletion>>,
    pub(crate) created: Instant,
    pub(crate) reserved: usize,
    pub(crate) flush_gen: u64,
}

impl Leaving {
    /// The batch `id` whole again: one that must wait (it does not fit
    /// the request being built) or fail.
    pub(crate) fn into_queued(
        self,
        id: u64,
        sealed: Sealing,
        per_record: PerRecord,
    ) -> QueuedBatch {
        QueuedBatch {
            id,
            sealed,
            record_count: self.record_count,
            completion: self.completion,
            created: self.created,
            reserved: self.reserved,
            flush_gen: self.flush_gen,
            per_record,
        }
    }
}

impl OpenBatch {
    /// Closes the batch (compressing it at `level`, `None` for the codec's
    /// default). A codec failure is kept and fails the batch when the I/O
    /// thread drains it.
    pub(crate) fn seal(self, compression: Compression, level: Option<i32>) -> QueuedBatch {
        self.into_queued(|b| Sealing::Done(b.seal_at(compression, level)))
    }

    /// Closes the batch to appends without compressing it: a compression
    /// worker seals it (see `compress`).
    pub(crate) fn seal_later(self) -> QueuedBatch {
        self.into_queued(Sealing::Queued)
    }

    fn into_queued(self, seal: impl FnOnce(RecordBatchBuilder) -> Sealing) -> QueuedBatch {
        let record_count = self.builder.record_count();
        QueuedBatch {
            id: self.id,
            sealed: seal(self.builder),
            record_count,
            completion: self.completion,
            created: self.created,
            reserved: self.reserved,
            flush_gen: self.flush_gen,
            per_record: self.per_record,
        }
    }
}

/// A partition's accumulator state: the open batch and the sealed ones.
/// `repr(C)`: what an append touches first (see [`PartitionSlot`]).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct PartitionQueue {
    /// Bytes the partition's most recent batch holds (or held when it was
    /// taken): sizes the next batch's buffer (see `shared`).
    pub(crate) last_batch_len: usize,
    pub(crate) open: Option<OpenBatch>,
    pub(crate) sealed: VecDeque<QueuedBatch>,
    pub(crate) next_id: u64,
}

impl PartitionQueue {
    /// Batches waiting to be taken into a request, the open one included:
    /// the load the adaptive sticky partitioner compares.
    pub(crate) fn depth(&self) -> usize {
        self.sealed.len() + usize::from(self.open.is_some())
    }

    /// Where the partition's next record will end if it is `len` bytes
    /// long, like the one just appended: a prefetch hint for the driver
    /// (see [`NextWrite`](crate::NextWrite)); none once the batch is
    /// sealed.
    #[inline(always)]
    pub(crate) fn next_write(&self, len: usize) -> crate::NextWrite {
        match &self.open {
            Some(open) => crate::NextWrite::after(open.builder.tail_address(), len),
            None => crate::NextWrite::NONE,
        }
    }

    /// Creation time of the oldest batch (sealed or open).
    pub(crate) fn oldest_created(&self) -> Option<Instant> {
        self.sealed
            .front()
            .map(|b| b.created)
            .or_else(|| self.open.as_ref().map(|b| b.created))
    }
}

/// One partition's slot: its queue, whether it currently has a leader,
/// and whether that leader is stalled (`partitioner.availability.timeout.ms`).
///
/// Why aligned to a cache line, with its fields in a fixed order: with
/// records spread over 10,000 partitions, a partition's slot is cold again
/// by the time its next record comes, so every cache line an append
/// touches is a miss. The lock, `last_batch_len`, the mark that tells an
/// open batch from none ([`Open`]) and the open batch's builder,
/// completion and per-record table take the slot's first three lines
/// (two until the builder cached the record shape, 48 bytes: a
/// smaller `Shape` and `PerRecord` would bring it back to two); the rest
/// (batch id, times, the sealed queue) is touched when a batch opens or
/// is sealed.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct PartitionSlot {
    pub(crate) queue: Mutex<PartitionQueue>,
    pub(crate) available: AtomicBool,
    /// The leader has had batches waiting that it could not take for
    /// longer than `partitioner.availability.timeout.ms`: the adaptive
    /// sticky partitioner does not move to this partition (the I/O thread
    /// sets it, `ProducerCore::node_stalled`).
    pub(crate) leader_stalled: AtomicBool,
}

impl PartitionSlot {
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, PartitionQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What metadata says about a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicStatus {
    /// No usable metadata yet; `last_error` is what the brokers last said
    /// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE while it is
    /// created), if anything.
    Pending { last_error: Option<ErrorCode> },
    /// Partitions known.
    Ready,
    /// A non-retriable error (authorization, invalid name).
    Failed(ErrorCode),
}

/// An immutable snapshot of one topic.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) id: u32,
    /// How many partitions the topic has been known to have: the most any
    /// metadata listed. The latest may list fewer (`partitions`): the
    /// topic was deleted and created again with fewer, or a broker lags
    /// behind a partition increase. An explicit partition in
    /// `partitions.len()..had` then waits for metadata that has it (see
    /// `Shared::wait_for_partition`).
    pub(crate) had: u32,
    pub(crate) name: Arc<str>,
    /// The slots of the partitions the latest metadata lists, in index
    /// order: records go only to these (the partitioner's choice, an
    /// explicit partition). The I/O thread keeps the slots of partitions
    /// no longer listed, and publishes them again if they come back.
    pub(crate) partitions: Arc<[Arc<PartitionSlot>]>,
    /// Partitions with a known leader, ascending.
    pub(crate) available: Arc<[u32]>,
    pub(crate) status: TopicStatus,
}

impl TopicState {
    /// Whether a thread's sticky `partition` can take records now: it
    /// exists and has a known leader — or no partition of the topic has
    /// one, and then every partition is as good as another (the Java
    /// client's sticky partitioner chooses among all of them then).
    #[inline(always)]
    pub(crate) fn sticky_usable(&self, partition: u32) -> bool {
        (partition as usize) < self.partitions.len()
            && (self.available.is_empty()
                || self.partitions[partition as usize]
                    .available
                    .load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// An immutable snapshot of every topic.
#[derive(Debug, Default)]
pub(crate) struct TopicMap {
    pub(crate) by_name: HashMap<Arc<str>, Arc<TopicState>>,
    pub(crate) by_id: Vec<Arc<TopicState>>,
}

static NEXT_TABLE_UID: AtomicU64 = AtomicU64::new(1);

/// The shared, copy-on-write topic table.
#[derive(Debug)]
pub(crate) struct TopicTable {
    uid: u64,
    version: AtomicU64,
    map: Mutex<Arc<TopicMap>>,
    changed: Condvar,
    /// Async senders waiting for a topic's metadata (woken on publish and
    /// close).
    pub(crate) tasks: WaitList,
}

impl TopicTable {
    pub(crate) fn new() -> Self {
        TopicTable {
            uid: NEXT_TABLE_UID.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            map: Mutex::new(Arc::new(TopicMap::default())),
            changed: Condvar::new(),
            tasks: WaitList::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arc<TopicMap>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current map (takes the lock; for slow paths and the I/O thread).
    pub(crate) fn snapshot(&self) -> Arc<TopicMap> {
        self.lock().clone()
    }

    /// Registers `name` if unknown. Returns its state and whether it was
    /// newly registered.
    pub(crate) fn register(&self, name: &str) -> (Arc<TopicState>, bool) {
        let mut g = self.lock();
        if let Some(t) = g.by_name.get(name) {
            return (t.clone(), false);
        }
        let state = Arc::new(TopicState {
            id: g.by_id.len() as u32,
            had: 0,
            name: Arc::from(name),
            partitions: Arc::from(Vec::new()),
            available: Arc::from(Vec::new()),
            status: TopicStatus::Pending { last_error: None },
        });
        let mut next = TopicMap {
            by_name: g.by_name.clone(),
            by_id: g.by_id.clone(),
        };
        next.by_name.insert(state.name.clone(), state.clone());
        next.by_id.push(state.clone());
        *g = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
        drop(g);
        self.changed.notify_all();
        (state, true)
    }

    /// Replaces the states of existing topics (by id) and wakes waiters.
    pub(crate) fn publish(&self, states: Vec<TopicState>) {
        if states.is_empty() {
            return;
        }
        let mut g = self.lock();
        let mut next = TopicMap {
            by_name: g.by_name.clone(),
            by_id: g.by_id.clone(),
        };
        for s in states {
            let s = Arc::new(s);
            let id = s.id as usize;
            debug_assert!(id < next.by_id.len(), "publish of an unregistered topic");
            if id < next.by_id.len() {
                next.by_name.insert(s.name.clone(), s.clone());
                next.by_id[id] = s;
            }
        }
        *g = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
        drop(g);
        self.changed.notify_all();
        self.tasks.wake_all();
    }

    /// Wakes every thread blocked in [`wait_until`](Self::wait_until) so it
    /// re-checks its condition (used at close).
    pub(crate) fn wake_all(&self) {
        drop(self.lock());
        self.changed.notify_all();
        self.tasks.wake_all();
    }

    /// Blocks up to `wait` until `done(map)` holds; returns the map seen
    /// last.
    pub(crate) fn wait_until(
        &self,
        wait: Duration,
        mut done: impl FnMut(&TopicMap) -> bool,
    ) -> Arc<TopicMap> {
        let g = self.lock();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, wait, |m| !done(m))
            .unwrap_or_else(|e| e.into_inner());
        g.clone()
    }
}

/// A producer thread's keyless-partitioning state for one topic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sticky {
    pub(crate) partition: u32,
    pub(crate) bytes: usize,
}

impl Sticky {
    pub(crate) const NONE: Sticky = Sticky {
        partition: u32::MAX,
        bytes: 0,
    };
}

/// A producer thread's keyless-partitioning state for one producer.
#[derive(Debug)]
pub(crate) struct StickyState {
    /// Sticky partition per topic id.
    per_topic: Vec<Sticky>,
    pub(crate) rng: SplitMix64,
}

impl StickyState {
    pub(crate) fn get(&mut self, topic: u32) -> &mut Sticky {
        let i = topic as usize;
        if self.per_topic.len() <= i {
            self.per_topic.resize(i + 1, Sticky::NONE);
        }
        &mut self.per_topic[i]
    }
}

/// What one producer thread caches about one producer's topic table.
#[derive(Debug)]
pub(crate) struct ThreadView {
    uid: u64,
    version: u64,
    map: Arc<TopicMap>,
    /// Last topic looked up, to skip hashing for runs of one topic.
    last: Option<Arc<TopicState>>,
    pub(crate) sticky: StickyState,
}

impl ThreadView {
    /// The topic's current state, or `None` if this producer does not know
    /// the topic yet.
    #[inline]
    #[cfg_attr(not(test), allow(dead_code))] // the hot path uses `split`
    pub(crate) fn lookup(&mut self, name: &str) -> Option<&TopicState> {
        self.split(name).0
    }

    /// The topic's state and, separately borrowable, the sticky state —
    /// no reference counting on the hot path. Always inlined: with two
    /// callers in the fast path (with and without a delivery handle) the
    /// compiler kept it out of line, 13 instructions more per record.
    #[inline(always)]
    pub(crate) fn split(&mut self, name: &str) -> (Option<&TopicState>, &mut StickyState) {
        let hit = matches!(&self.last, Some(t) if same_name(&t.name, name));
        if !hit {
            self.last = self.map.by_name.get(name).cloned();
        }
        (self.last.as_deref(), &mut self.sticky)
    }
}

/// Whether two topic names are equal; the per-`send` check that the topic
/// is the one this thread sent to last. Why not `==`: for a short string
/// that is a call into libc's `memcmp`, measured at 3% of the sending
/// thread. Names are rarely longer than a few words, so compare lengths,
/// then the addresses (a caller passing the table's own name), then eight
/// bytes at a time, inline, the last word overlapping the one before (no
/// byte-by-byte tail).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return true;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if n <= 16 {
        // Most names: the first and the last eight bytes, no loop.
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// How many producers' views one thread keeps (a thread rarely feeds more).
const VIEWS_PER_THREAD: usize = 4;

thread_local! {
    static VIEWS: RefCell<Vec<ThreadView>> = const { RefCell::new(Vec::new()) };
}

static NEXT_THREAD_SEED: AtomicU64 = AtomicU64::new(0x5eed);

/// Random per process (std's `RandomState` keys, from the OS, as every
/// `HashMap` here already draws them): mixed into each thread's sticky
/// seed so that separate producer processes do not all start their
/// keyless records on the same partition and walk the same sequence of
/// partitions (the Java client draws from `ThreadLocalRandom`).
fn process_seed() -> u64 {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::collections::hash_map::RandomState::new().hash_one(0x006b_7269_6e67_u64)
    })
}

impl TopicTable {
    /// Runs `f` with this thread's up-to-date view of the table. `f` must
    /// not call back into `with_view` (it is not re-entrant).
    ///
    /// Always inlined, as is `Shared::append_to_open` around it: the send
    /// path is then one call (the thread-local access with `f` inside)
    /// whose result comes back in two registers (measured: 12 fewer
    /// instructions per record than with either left to the compiler).
    #[inline(always)]
    pub(crate) fn with_view<R>(&self, f: impl FnOnce(&mut ThreadView) -> R) -> R {
        VIEWS.with(|views| {
            let mut views = views.borrow_mut();
            let version = self.version.load(Ordering::Acquire);
            // The thread's first view is nearly always the one: checked
            // before searching.
            let first = views.first().is_some_and(|v| v.uid == self.uid);
            let found = if first {
                Some(0)
            } else {
                views.iter().position(|v| v.uid == self.uid)
            };
            let i = match found {
                Some(i) => i,
                None => {
                    if views.len() >= VIEWS_PER_THREAD {
                        views.remove(0);
                    }
                    let seed =
                        NEXT_THREAD_SEED.fetch_add(0x9e37_79b9, Ordering::Relaxed) ^ process_seed();
                    views.push(ThreadView {
                        uid: self.uid,
                        version: u64::MAX,
                        map: Arc::new(TopicMap::default()),
                        last: None,
                        sticky: StickyState {
                            per_topic: Vec::new(),
                            rng: SplitMix64::new(seed ^ self.uid.rotate_left(32)),
                        },
                    });
                    views.len() - 1
                }
            };
            let v = &mut views[i];
            if v.version != version {
                // Load the map first, then record the version read before:
                // a concurrent publish makes us reload next time.
                v.map = self.snapshot();
                v.version = version;
                v.last = None;
            }
            f(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_publish_and_thread_view() {
        let t = TopicTable::new();
        assert!(t.with_view(|v| v.lookup("a").is_none()));
        let (a, new) = t.register("a");
        assert!(new);
        assert_eq!(a.id, 0);
        let (a2, new2) = t.register("a");
        assert!(!new2);
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(t.register("b").0.id, 1);
        // The view reloads after the version changed.
        assert_eq!(t.with_view(|v| v.lookup("b").map(|s| s.id)), Some(1));
        let slots: Vec<Arc<PartitionSlot>> =
            (0..3).map(|_| Arc::new(PartitionSlot::default())).collect();
        t.publish(vec![TopicState {
            id: 0,
            had: 3,
            name: "a".into(),
            partitions: slots.into(),
            available: vec![0, 1, 2].into(),
            status: TopicStatus::Ready,
        }]);
        let n = t.with_view(|v| v.lookup("a").map(|s| (s.partitions.len(), s.status)));
        assert_eq!(n, Some((3, TopicStatus::Ready)));
        let m = t.wait_until(Duration::ZERO, |m| m.by_id.len() == 2);
        assert_eq!(m.by_id.len(), 2);
    }

    /// One thread feeding several producers keeps a view of each table,
    /// and each sees only its own topics, also past the views a thread
    /// keeps (the oldest is dropped and rebuilt when used again).
    #[test]
    fn one_thread_sees_each_table_through_its_own_view() {
        let tables: Vec<TopicTable> = (0..VIEWS_PER_THREAD + 2)
            .map(|_| TopicTable::new())
            .collect();
        for (i, t) in tables.iter().enumerate() {
            t.register(&format!("topic-of-{i}"));
        }
        for _ in 0..3 {
            for (i, t) in tables.iter().enumerate() {
                t.with_view(|v| {
                    for j in 0..tables.len() {
                        let name = format!("topic-of-{j}");
                        assert_eq!(v.lookup(&name).is_some(), i == j, "table {i}, {name}");
                    }
                });
            }
        }
    }

    #[test]
    fn same_name_compares_every_byte() {
        let names = [
            "",
            "a",
            "b",
            "ab",
            "perf-16",
            "perf-17",
            "topic-0001",
            "topic-0002",
            "topic-1001",
            "abcdefgh",
            "abcdefgX",
            "abcdefghijkl",
            "abcdefXhijkl",
            "orders.v1.events",
            "orders.v2.events",
            "orders.v1.eventz",
            "orders.v1.events!",
            "orders.v1.eventsX",
            "a-much-longer-topic-name.with.dots_and_underscores-and-more",
            "a-much-longer-topic-name.with.dots_and_underscores-and-morf",
            "b-much-longer-topic-name.with.dots_and_underscores-and-more",
        ];
        for a in names {
            for b in names {
                // Equal contents in different memory, too.
                let b = String::from(b);
                assert_eq!(same_name(a, &b), a == b, "{a:?} vs {b:?}");
            }
            assert!(same_name(a, a));
        }
        // Every length up to 70 bytes, every position: a name against
        // itself elsewhere in memory, and against it with that one byte
        // changed.
        for n in 0..=70u8 {
            let a: String = (0..n).map(|i| char::from(b'a' + i % 26)).collect();
            assert!(same_name(&a, &a.clone()), "{a:?}");
            for i in 0..usize::from(n) {
                let mut b = a.clone().into_bytes();
                b[i] = b'#';
                let b = String::from_utf8(b).expect("ASCII");
                assert!(!same_name(&a, &b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn the_last_topic_is_rechecked_by_content() {
        let t = TopicTable::new();
        t.register("orders");
        t.register("orderz");
        let mut name = String::from("orders");
        assert_eq!(t.with_view(|v| v.lookup(&name).map(|s| s.id)), Some(0));
        // Same buffer, same length, other topic: must not hit the cache.
        name.replace_range(5.., "z");
        assert_eq!(t.with_view(|v| v.lookup(&name).map(|s| s.id)), Some(1));
        name.replace_range(5.., "x");
        assert_eq!(t.with_view(|v| v.lookup(&name).map(|s| s.id)), None);
    }

    /// The slot's lock, `last_batch_len`, what tells an open batch from
    /// none and the open batch's fields an append touches stay within the
    /// slot's first three cache lines.
    #[test]
    fn what_an_append_touches_fits_three_cache_lines() {
        assert_eq!(std::mem::align_of::<PartitionSlot>(), 64);
        assert_eq!(
            std::mem::size_of::<Option<OpenBatch>>(),
            std::mem::size_of::<OpenBatch>(),
            "no discriminant before the open batch"
        );
        let s = PartitionSlot::default();
        let base = std::ptr::from_ref(&s) as usize;
        let q = s.lock();
        let open = std::ptr::from_ref(&q.open) as usize - base;
        // `None` is told apart in `OpenBatch::open`, the largest niche
        // (see `Open`), on the first line with the lock.
        assert!(open + std::mem::offset_of!(OpenBatch, open) + 8 <= 64);
        let hot_end = open
            + std::mem::offset_of!(OpenBatch, per_record)
            + crate::delivery::PerRecord::HOT_BYTES;
        assert!(hot_end <= 192, "hot fields end at byte {hot_end}");
        assert!(std::ptr::from_ref(&q.last_batch_len) as usize - base < 64);
    }

    #[test]
    fn views_are_per_table() {
        let t1 = TopicTable::new();
        let t2 = TopicTable::new();
        t1.register("x");
        assert!(t1.with_view(|v| v.lookup("x").is_some()));
        assert!(t2.with_view(|v| v.lookup("x").is_none()));
    }
}
