//! The producer-thread side: [`Shared::append`] (the accumulator's hot
//! path), flush and close requests.
//!
//! Why there is no global lock: a record goes to its partition's slot,
//! found through the thread's cached topic map (see `topics`), and is
//! encoded in place into that slot's open batch under the slot's own mutex.
//! Threads writing to different partitions never touch the same lock;
//! keyless records stick to a per-thread partition, so even keyless
//! traffic from several threads spreads over different slots. Memory is
//! charged per batch buffer, when it opens and when it grows (see
//! `memory`), never per record. The I/O thread hears about batches, never
//! about records (see `notice`).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use kring_protocol::primitives::{varint_len, varlong_len};
use kring_protocol::record::{layout::HEADER_LEN, Compression, Header, RecordBatchBuilder};
use kring_protocol::ErrorCode;

use crate::config::Config;
use crate::delivery::{panic_message, DeliveryHandle, Push};
use crate::error::SendError;
use crate::memory::{remaining, BufferPool};
use crate::next_write::NextWrite;
use crate::notice::{FlushRequest, Notice, NoticeQueue};
use crate::partitioner::{PartitionView, Partitioner};
use crate::reply::{NoHandle, Reply, WithHandle};
use crate::signal::{FlushHandle, Signal};
use crate::topics::{OpenBatch, PartitionSlot, TopicState, TopicStatus, TopicTable};
use crate::wait::WaitList;

/// A record to send, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Explicit partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// Key (`None` is a null key).
    pub key: Option<&'a [u8]>,
    /// Value (`None` is a null value, a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [Header<'a>],
    /// Create timestamp in milliseconds since the epoch (the caller reads
    /// the wall clock; the core never does). Must be non-negative: a
    /// negative one fails the append with [`SendError::InvalidTimestamp`].
    pub timestamp_ms: i64,
    /// The caller's opaque value for this record, given back to the
    /// delivery callback ([`DeliveryReport::context`](crate::DeliveryReport::context));
    /// 0 for none. Kept only when a callback is set.
    pub context: u64,
}

/// A record accepted by [`Shared::append`] (with its [`DeliveryHandle`]),
/// or by [`Shared::produce`] (`D` = `()`: the result goes only to the
/// delivery callback).
#[derive(Debug)]
#[must_use = "`wake` must be acted on, and the delivery handle (if any) is the only way to learn the record's fate without a callback"]
pub struct AppendOutcome<D = DeliveryHandle> {
    /// The record's pending result.
    pub delivery: D,
    /// The partition chosen.
    pub partition: i32,
    /// The I/O thread is parked and this append gave it new work: the
    /// caller must wake it (the io_uring driver writes its eventfd). False
    /// for the common case of appending to an open batch.
    pub wake: bool,
    /// The cache lines the partition's next record will write: a driver
    /// prefetches them (see [`NextWrite`]); ignoring it changes nothing
    /// but speed.
    pub next_write: NextWrite,
    /// The first lines of the spare buffer this thread's next new batch
    /// will likely take, when this append opened a batch in a spare: a
    /// driver prefetches them too.
    pub next_buffer: NextWrite,
}

/// What [`Shared::append_to_open`]'s work inside the thread's topic view
/// returns: two words, so that it comes back in registers; the
/// [`AppendOutcome`] is made from it outside, where the caller uses it.
///
/// Why: an `AppendOutcome` (four words) returned from inside the view was
/// stored and copied three times on its way out, a tenth of the fast
/// path's instructions.
struct OpenAppend<B> {
    /// The batch's completion, for the record's handle (see [`Reply`]).
    batch: B,
    /// The record's index in its batch (bits 0-31), its partition (bits
    /// 32-62: partitions are below 2^31) and whether the I/O thread must
    /// be woken (bit 63).
    bits: u64,
    /// The partition's next record's lines (see [`NextWrite`]).
    next: NextWrite,
}

impl<B> OpenAppend<B> {
    #[inline(always)]
    fn new(batch: B, index: u32, partition: u32, wake: bool, next: NextWrite) -> Self {
        debug_assert!(partition < 1 << 31);
        OpenAppend {
            batch,
            bits: u64::from(index) | u64::from(partition) << 32 | u64::from(wake) << 63,
            next,
        }
    }

    #[inline(always)]
    fn partition(&self) -> i32 {
        ((self.bits >> 32) as u32 & 0x7fff_ffff) as i32
    }

    #[inline(always)]
    fn wake(&self) -> bool {
        self.bits >> 63 != 0
    }
}

/// Settings the producer threads need.
#[derive(Debug)]
pub(crate) struct SharedConfig {
    pub(crate) batch_size: usize,
    /// `batch.num.messages`: a batch is sealed at this many records.
    pub(crate) batch_records: u32,
    pub(crate) max_request_size: usize,
    pub(crate) compression: Compression,
    /// The level batches are compressed at (`None`: the codec's default).
    pub(crate) compression_level: Option<i32>,
    pub(crate) keep_timestamps: bool,
    pub(crate) partitioner: Arc<dyn Partitioner>,
    /// The partitioner is kring's default (murmur2 for keys, sticky
    /// otherwise) or its key-ignoring form (`partitioner.ignore.keys`):
    /// [`Shared::append_to_open`] may apply it itself.
    pub(crate) default_partitioner: bool,
    /// `partitioner.ignore.keys`: keyed records go where keyless ones do.
    pub(crate) ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable`: the sticky partitioner
    /// weighs its next partition against the queues (see `next_sticky`).
    pub(crate) adaptive: bool,
    /// `batch.size` is within `max.request.size` and `buffer.memory`: a
    /// record that fits an open batch cannot be too large, so
    /// [`Shared::append_to_open`] skips the size check.
    pub(crate) batch_within_limits: bool,
}

/// State shared between producer threads and the I/O thread: the
/// accumulator (topic table with per-partition slots), the buffer pool,
/// the notice queue and the parked flag.
#[derive(Debug)]
pub struct Shared {
    pub(crate) cfg: SharedConfig,
    pub(crate) topics: TopicTable,
    pub(crate) notices: NoticeQueue,
    pub(crate) pool: BufferPool,
    /// Completions and per-record tables of finished batches, for reuse.
    pub(crate) parts: crate::spare_parts::SpareParts,
    io_waker: IoWakerSlot,
    clock: OnceLock<fn() -> Instant>,
    /// Delivery callback calls that panicked (caught), counted by the I/O
    /// thread.
    pub(crate) callback_panics: std::sync::atomic::AtomicU64,
    /// The I/O thread's last connection failure while no broker connection
    /// is ready: the cause a metadata timeout reports when the brokers
    /// said nothing about the topic.
    pub(crate) conn_error: std::sync::Mutex<Option<crate::LastError>>,
    /// The core's last statistics snapshot, kept when it finished (only if
    /// statistics were used).
    pub(crate) final_statistics: OnceLock<crate::producer::Statistics>,
    /// The idempotent producer's fatal error, once the I/O thread hit one
    /// (`ProducerCore::enter_fatal`): every later send is refused with it.
    pub(crate) fatal: OnceLock<crate::delivery::DeliveryError>,
    /// Authentication failures while no connection was usable: a send
    /// waiting for metadata fails when this moves.
    pub(crate) auth_failures: std::sync::atomic::AtomicU64,
    /// Batches the I/O thread hands to compression workers (see
    /// `compress`).
    pub(crate) compress: crate::compress::CompressQueue,
}

/// Wakes the parked I/O thread from a producer thread (the io_uring
/// driver writes its eventfd). See [`Shared::set_io_waker`].
pub type IoWaker = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct IoWakerSlot(OnceLock<IoWaker>);

impl fmt::Debug for IoWakerSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "IoWaker"
        } else {
            "None"
        })
    }
}

/// The smallest buffer a new batch starts with.
const MIN_BATCH_CAPACITY: usize = 256;

/// The buffer a new batch starts with: what the partition's previous batch
/// reached plus room for one more record like this one (or a quarter
/// more, if that is larger); at least
/// [`MIN_BATCH_CAPACITY`] and the first record, at most `batch.size`
/// (unless the record alone is larger), rounded up to a size class of the
/// buffer pool (so a finished batch's buffer fits the next batches of its
/// class; see `memory`).
///
/// Why adaptive: memory is charged by buffer capacity, so a fixed start
/// either wastes `buffer.memory` on sparse partitions (10,000 partitions
/// with one record each and a 4 KiB start need 40 MiB, more than the 32 MiB
/// default, and senders starve) or makes every batch of a busy partition
/// regrow from small. A partition's next batch is usually like its last.
/// Why the headroom: at 10,000 partitions a batch holds one record or two,
/// and a buffer sized for the last batch exactly (or to the power of two
/// just above it) had to grow on the next one's second record — a
/// `realloc`, a copy and a charge, measured at a quarter of the sending
/// thread's cache misses.
fn initial_capacity(last_len: usize, first: usize, batch_size: usize) -> usize {
    let last = last_len.max(first);
    let want = last
        .saturating_add(first.max(last / 4))
        .max(MIN_BATCH_CAPACITY);
    crate::memory::round_up_to_class(want)
        .min(batch_size)
        .max(first)
}

/// The capacity a batch buffer of capacity `cap` has after growing to hold
/// `len` bytes: `BytesMut` (like `Vec`) at least doubles.
fn grown_capacity(cap: usize, len: usize) -> usize {
    cap.saturating_mul(2).max(len)
}

/// What the locked part of an append asks the unlocked part to do.
enum Step<D> {
    Done(AppendOutcome<D>),
    NeedTopic,
    /// An explicit partition the topic had, missing from its latest
    /// metadata (`count` partitions): wait for metadata that has it.
    NeedPartition {
        partition: i32,
        count: u32,
    },
    /// `bytes` of `buffer.memory` for a record of partition `target`
    /// (`topic << 32 | partition`).
    NeedMemory {
        bytes: usize,
        target: u64,
    },
}

/// Exact size of a record as the first record of a fresh batch (offset
/// and timestamp deltas 0), for the size limits checked before anything is
/// queued.
fn first_record_size(rec: &RecordRef<'_>) -> usize {
    fn nullable(v: Option<&[u8]>) -> usize {
        v.map_or(1, |b| varint_len(b.len() as i32) + b.len())
    }
    let mut body = 1 + varlong_len(0) + varint_len(0) + nullable(rec.key) + nullable(rec.value);
    body += varint_len(rec.headers.len() as i32);
    for h in rec.headers {
        body += varint_len(h.key.len() as i32) + h.key.len() + nullable(h.value);
    }
    varint_len(body as i32) + body
}

/// An upper bound of [`first_record_size`], in two additions for a record
/// without headers (each of its varints takes at most 5 bytes; the deltas
/// and the header count of a first record take 1). The size limits need
/// the exact figure only for a record that could be near them.
fn first_record_size_bound(rec: &RecordRef<'_>) -> usize {
    if !rec.headers.is_empty() {
        return first_record_size(rec);
    }
    let len = |v: Option<&[u8]>| v.map_or(0, <[u8]>::len);
    // length + attributes + timestamp delta + offset delta + key length +
    // value length + header count
    5 + 1 + 1 + 1 + 5 + 5 + 1 + len(rec.key) + len(rec.value)
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Shared {
        Shared {
            cfg: SharedConfig {
                batch_size: config.batch_size,
                batch_records: config.batch_num_messages,
                max_request_size: config.max_request_size,
                compression: config.compression,
                compression_level: config.compression_level,
                keep_timestamps: config.on_delivery.is_some(),
                partitioner: config.partitioner.build(),
                default_partitioner: matches!(
                    config.partitioner,
                    crate::config::PartitionerChoice::Default
                        | crate::config::PartitionerChoice::UniformSticky
                ),
                ignore_keys: matches!(
                    config.partitioner,
                    crate::config::PartitionerChoice::UniformSticky
                ),
                adaptive: config.partitioner_adaptive,
                batch_within_limits: config.batch_size
                    <= config.max_request_size.min(config.buffer_memory),
            },
            topics: TopicTable::new(),
            notices: NoticeQueue::default(),
            pool: BufferPool::new(config.buffer_memory),
            parts: Default::default(),
            io_waker: IoWakerSlot::default(),
            clock: OnceLock::new(),
            callback_panics: std::sync::atomic::AtomicU64::new(0),
            conn_error: std::sync::Mutex::new(None),
            final_statistics: OnceLock::new(),
            fatal: OnceLock::new(),
            auth_failures: std::sync::atomic::AtomicU64::new(0),
            compress: crate::compress::CompressQueue::new(config.max_request_size),
        }
    }

    /// Wakes the I/O thread through the installed waker, if any (a
    /// compression worker whose notice found it parked).
    pub(crate) fn wake_io(&self) {
        if let Some(w) = self.io_waker.0.get() {
            w();
        }
    }

    /// Installs the clock a producer thread reads after blocking, so that
    /// `max.block.ms` bounds a whole [`append`](Self::append) however many
    /// times it blocks (for metadata, then for memory). The core never reads
    /// the clock itself; the driver passes `Instant::now`. Set once, before
    /// the first append; later calls are ignored. Without it each blocking
    /// step may use what was left of the budget at the start of the append.
    pub fn set_clock(&self, clock: fn() -> Instant) {
        let _ = self.clock.set(clock);
    }

    /// What is left of the block budget: measured with the installed clock,
    /// or from `start` (the append's `now`) without one.
    fn left(&self, start: Instant, deadline: Instant) -> std::time::Duration {
        let now = self.clock.get().map_or(start, |c| c().max(start));
        remaining(now, deadline)
    }

    /// Installs how a producer thread wakes the I/O thread when `append`
    /// must block (for metadata or buffer memory) after giving it work: that
    /// wake-up cannot wait for `append` to return, since what the thread
    /// waits for is the I/O thread's doing. Set once, by the driver, before
    /// the first append; later calls are ignored. Without it, such a wake-up
    /// is only reported through [`AppendOutcome::wake`] after the wait, and
    /// is lost if the append then fails: a driver must install it.
    pub fn set_io_waker(&self, waker: IoWaker) {
        let _ = self.io_waker.0.set(waker);
    }

    /// Charges `n` bytes to `buffer.memory`, from `reserved` (what this
    /// append obtained while blocked; any surplus goes back) or from the
    /// pool. False if the pool has no room.
    fn charge(&self, reserved: &mut usize, n: usize) -> bool {
        let have = std::mem::take(reserved);
        if have >= n {
            self.pool.release(have - n);
            return true;
        }
        self.pool.release(have);
        self.pool.try_reserve(n)
    }

    /// Brings a batch's charge (`charged`) up to its buffer's actual
    /// capacity if the buffer grew more than predicted (another allocator
    /// policy): charged even past the limit, so the pool never under-counts.
    fn charge_capacity(&self, charged: &mut usize, capacity: usize) {
        if capacity > *charged {
            self.pool.charge(capacity - *charged);
            *charged = capacity;
        }
    }

    /// Wakes the I/O thread now if `wake` says it is owed a wake-up, before
    /// this thread blocks.
    fn wake_before_blocking(&self, wake: &mut bool) {
        if *wake {
            if let Some(w) = self.io_waker.0.get() {
                w();
                *wake = false;
            }
        }
    }

    /// Appends a record to its partition's open batch.
    ///
    /// Never performs I/O and never waits for the network. It blocks only
    /// in three cases, together at most until `block_deadline` (the caller's
    /// `now + max.block.ms`; see [`set_clock`](Self::set_clock)): the topic
    /// has no metadata yet (the I/O thread is asked for it), an explicit
    /// partition the topic had is missing from its latest metadata (a
    /// broker lagging behind a partition increase, or the topic created
    /// again with fewer partitions: metadata is asked for until it lists
    /// the partition, else the send fails with
    /// [`SendError::InvalidPartition`] at the deadline), or
    /// `buffer.memory` is exhausted (until batches complete). Records too
    /// large for `max.request.size` or `buffer.memory` fail at once, and so
    /// does a partition the topic never had (explicit, or chosen by the
    /// partitioner; the partitioner chooses among the partitions the latest
    /// metadata lists), with [`SendError::InvalidPartition`]. The
    /// partitioner runs fenced: if it panics, the record fails with
    /// [`SendError::PartitionerPanicked`].
    ///
    /// If [`AppendOutcome::wake`] is true the caller must wake the I/O
    /// thread.
    #[inline]
    pub fn append(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome, SendError> {
        match self.append_to_open(&rec) {
            Some(o) => Ok(o),
            None => self.append_general(now, rec, block_deadline),
        }
    }

    /// [`append`](Self::append) without a delivery handle: the record's
    /// result goes only to the delivery callback (if one is set), and the
    /// batch makes no completion for it (see `reply`).
    #[inline]
    pub fn produce(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome<()>, SendError> {
        match self.produce_to_open(&rec) {
            Some(o) => Ok(o),
            None => self.produce_general(now, rec, block_deadline),
        }
    }

    /// The common case of every append, on its own: the record goes into
    /// its partition's open batch, which has room for it in its buffer as
    /// it is (no memory to charge, no batch to open, nothing to wait for,
    /// no error to report), with an explicit partition or kring's default
    /// partitioner. Returns `None`, having changed nothing, whenever
    /// anything else is needed; [`append`](Self::append) (which tries this
    /// first) then does the whole work. A driver may call it before
    /// computing what only the other cases need (the block deadline).
    ///
    /// Why a separate path: this is what nearly every record does, and the
    /// general path's layers (size check, blocking loop, results carrying
    /// every outcome) were more than half of a send's instructions.
    #[inline(always)]
    pub fn append_to_open(&self, rec: &RecordRef<'_>) -> Option<AppendOutcome> {
        self.to_open::<WithHandle>(rec)
    }

    /// [`append_to_open`](Self::append_to_open) without a delivery handle
    /// (see [`produce`](Self::produce)).
    #[inline(always)]
    pub fn produce_to_open(&self, rec: &RecordRef<'_>) -> Option<AppendOutcome<()>> {
        self.to_open::<NoHandle>(rec)
    }

    #[inline(always)]
    fn to_open<R: Reply>(&self, rec: &RecordRef<'_>) -> Option<AppendOutcome<R::Delivery>> {
        // A negative timestamp goes to the general path, which refuses it.
        if !self.cfg.batch_within_limits || self.notices.is_closed() || rec.timestamp_ms < 0 {
            return None;
        }
        let a = self.topics.with_view(|v| {
            let (topic, sticky) = v.split(rec.topic);
            let topic = topic?;
            if topic.status != TopicStatus::Ready {
                return None;
            }
            let n = topic.partitions.len() as u32;
            let (partition, is_sticky) = match (rec.partition, rec.key) {
                (Some(p), _) if (p as u32) < n => (p as u32, false),
                (Some(_), _) => return None,
                _ if !self.cfg.default_partitioner => return None,
                (None, Some(_)) if n == 0 => return None,
                (None, Some(key)) if !self.cfg.ignore_keys => {
                    (crate::partitioner::partition_for_key(key, n), false)
                }
                (None, _) => {
                    let s = *sticky.get(topic.id);
                    if !topic.sticky_usable(s.partition) {
                        return None;
                    }
                    (s.partition, true)
                }
            };
            let slot = &topic.partitions[partition as usize];
            let mut q = slot.lock();
            let open = q.open.as_mut()?;
            // A per-record table that must grow is charged first, on the
            // general path (rarely: its vectors double).
            let push = if self.cfg.keep_timestamps {
                open.per_record.plan_push(rec.timestamp_ms, rec.context)?
            } else {
                Push::Other
            };
            let size = open.builder.size_in_bytes();
            let index = open
                .builder
                .try_append(
                    rec.timestamp_ms,
                    rec.key,
                    rec.value,
                    rec.headers,
                    self.cfg.batch_size.min(open.builder.capacity()),
                )
                .ok()?;
            let added = open.builder.size_in_bytes() - size;
            let (batch, full, wake) =
                self.appended_to::<R>(&mut q, topic.id, partition, rec, index, push);
            let next = q.next_write(added);
            drop(q);
            if is_sticky {
                self.after_sticky_append(sticky, topic, n, added, full);
            }
            Some(OpenAppend::new(batch, index, partition, wake, next))
        })?;
        Some(AppendOutcome {
            partition: a.partition(),
            wake: a.wake(),
            delivery: R::delivery(a.batch, a.bits as u32, rec.timestamp_ms),
            next_write: a.next,
            next_buffer: NextWrite::NONE,
        })
    }

    /// What follows a record's append into the open batch, under the slot
    /// lock: its per-record entry, a reference to the batch's completion
    /// (its handle's, if it wants one), and sealing the batch once no further record can
    /// fit (so the I/O thread sends it without waiting for the next
    /// append). Returns the completion, whether the batch was sealed, and
    /// whether the I/O thread must be woken. `push` is the per-record
    /// entry [`PerRecord::plan_push`](crate::delivery::PerRecord::plan_push)
    /// planned before the append ([`Push::Other`] where nothing was
    /// planned).
    #[inline(always)]
    fn appended_to<R: Reply>(
        &self,
        q: &mut crate::topics::PartitionQueue,
        topic: u32,
        partition: u32,
        rec: &RecordRef<'_>,
        index: u32,
        push: Push,
    ) -> (R::Batch, bool, bool) {
        let open = q.open.as_mut().expect("open batch");
        if self.cfg.keep_timestamps {
            open.per_record
                .push_planned(push, rec.timestamp_ms, rec.context);
            debug_assert!(open.per_record.heap_bytes() <= open.table_charged);
        }
        let batch = R::batch(&mut open.completion, &self.parts, partition as i32);
        let len = open.builder.size_in_bytes();
        let full = len >= self.cfg.batch_size || index + 1 >= self.cfg.batch_records;
        let mut wake = false;
        if full {
            let b = q
                .open
                .take()
                .expect("open batch")
                .seal(self.cfg.compression, self.cfg.compression_level);
            q.sealed.push_back(b);
            wake = self.notices.push(Notice::Sealed { topic, partition });
        }
        q.last_batch_len = len;
        (batch, full, wake)
    }

    /// Keyless sticky partitioning after an append of `added` bytes, as the
    /// Java client's built-in partitioner does (KIP-794): move on once
    /// `batch.size` bytes went to the partition and the record's batch is
    /// full (`full`: sealed by this record), or once twice that went there
    /// whatever the batch. Not when the record only sealed the batch before
    /// it (it did not fit): its own new batch would go out alone with it.
    #[inline(always)]
    fn after_sticky_append(
        &self,
        sticky: &mut crate::topics::StickyState,
        topic: &TopicState,
        n: u32,
        added: usize,
        full: bool,
    ) {
        let st = sticky.get(topic.id);
        st.bytes += added;
        let b = self.cfg.batch_size;
        if (full && st.bytes >= b) || st.bytes >= 2 * b {
            let cur = st.partition;
            let p = self.next_sticky(&mut sticky.rng, topic, n, cur);
            *sticky.get(topic.id) = crate::topics::Sticky {
                partition: p,
                bytes: 0,
            };
        }
    }

    /// The sticky partitioner's next partition, other than `current` where
    /// there is a choice, among those with a leader.
    ///
    /// Adaptive (`partitioner.adaptive.partitioning.enable`, the Java
    /// default): of two candidates drawn at random, the one with fewer
    /// batches waiting in its queue (open and sealed, not yet taken into a
    /// request). A broker that answers slowly, or whose connection is down
    /// or throttled, leaves its partitions' batches queued, so its
    /// partitions are chosen less often and the faster brokers take more
    /// of the keyless records, while equal queues keep the choice uniform.
    /// The Java client weighs every partition of the topic by its queue
    /// (probability falling linearly with the queue's length); two random
    /// choices give the same preference for the cost of two slot locks per
    /// switch (the classic "power of two choices": the longest queue stays
    /// within a small constant of the shortest), where reading every queue
    /// would cost a lock per partition (10,000 of them at a switch every
    /// `batch.size` bytes). The locks are taken one at a time, after the
    /// record's own slot lock was released.
    #[cold]
    #[inline(never)]
    fn next_sticky(
        &self,
        rng: &mut crate::backoff::SplitMix64,
        topic: &TopicState,
        n: u32,
        current: u32,
    ) -> u32 {
        let first = pick_sticky(rng, n, &topic.available, current);
        if !self.cfg.adaptive {
            return first;
        }
        // Partitions of a stalled leader (`partitioner.availability.timeout.ms`)
        // are passed over: a few draws find another, or a walk from a
        // random place does (rarely: each draw misses with the stalled
        // share); with every partition stalled the first stands (Java
        // falls back to a uniform choice when all are left out).
        let stalled = |p: u32| {
            topic
                .partitions
                .get(p as usize)
                .is_some_and(|s| s.leader_stalled.load(std::sync::atomic::Ordering::Relaxed))
        };
        let draw = |rng: &mut crate::backoff::SplitMix64, not: u32| {
            (0..4)
                .map(|_| pick_sticky(rng, n, &topic.available, current))
                .find(|&p| p != not && !stalled(p))
        };
        let walk = |rng: &mut crate::backoff::SplitMix64| {
            let len = if topic.available.is_empty() {
                n
            } else {
                topic.available.len() as u32
            };
            let start = rng.below(len.max(1));
            (0..len)
                .map(|i| {
                    let k = (start + i) % len;
                    topic.available.get(k as usize).copied().unwrap_or(k)
                })
                .find(|&p| p != current && !stalled(p))
        };
        let Some(a) = (!stalled(first))
            .then_some(first)
            .or_else(|| draw(rng, u32::MAX))
            .or_else(|| walk(rng))
        else {
            return first;
        };
        // A second candidate, also not `current` (left on purpose) and
        // not `a`: a few draws, where a partition of two has no second.
        let Some(b) = draw(rng, a) else {
            return a;
        };
        let depth = |p: u32| topic.partitions.get(p as usize).map(|s| s.lock().depth());
        match (depth(a), depth(b)) {
            (Some(da), Some(db)) if db < da => b,
            _ => a,
        }
    }

    /// [`append`](Self::append) beyond [`append_to_open`](Self::append_to_open),
    /// for a caller that has just tried that itself (a driver's `send`):
    /// every case, the open batch with room included, without trying the
    /// fast path a second time.
    #[inline(never)]
    pub fn append_general(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome, SendError> {
        self.general::<WithHandle>(now, rec, block_deadline)
    }

    /// [`append_general`](Self::append_general) without a delivery handle
    /// (see [`produce`](Self::produce)).
    #[inline(never)]
    pub fn produce_general(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome<()>, SendError> {
        self.general::<NoHandle>(now, rec, block_deadline)
    }

    #[inline(always)]
    fn general<R: Reply>(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome<R::Delivery>, SendError> {
        self.precheck(&rec)?;
        let mut wake = false;
        let mut reserved = 0usize;
        let result = loop {
            let step = match self.attempt::<R>(now, &rec, &mut reserved) {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            match step {
                Step::Done(mut o) => {
                    o.wake |= wake;
                    break Ok(o);
                }
                Step::NeedTopic => {
                    if let Err(e) = self.wait_for_topic(now, rec.topic, block_deadline, &mut wake) {
                        break Err(e);
                    }
                }
                Step::NeedPartition { partition, .. } => {
                    if let Err(e) = self.wait_for_partition(
                        now,
                        rec.topic,
                        partition,
                        block_deadline,
                        &mut wake,
                    ) {
                        break Err(e);
                    }
                }
                Step::NeedMemory { bytes: n, .. } => {
                    debug_assert_eq!(reserved, 0);
                    // Memory comes back when batches complete: the I/O
                    // thread sends the open ones now, not at their linger
                    // deadline, and must know of those sealed so far.
                    wake |= self.notices.push_memory_wanted();
                    self.wake_before_blocking(&mut wake);
                    // Without compression threads, it compresses what the
                    // I/O thread hands off meanwhile (`compress.rs`).
                    let pending = || self.compress.has_help_wanted();
                    let run = || self.help_compress();
                    self.compress.note_blocked(true);
                    let got = self.pool.reserve_blocking_helping(
                        n,
                        &|| self.left(now, block_deadline),
                        Some((&pending, &run)),
                    );
                    self.compress.note_blocked(false);
                    if !got {
                        if self.notices.is_closed() {
                            break Err(SendError::Closed);
                        }
                        break Err(SendError::BufferFull {
                            limit: self.pool.limit(),
                            waited: remaining(now, block_deadline),
                        });
                    }
                    reserved = n;
                }
            }
        };
        // A reservation obtained by blocking but not used (another thread
        // opened a batch with room meanwhile) goes back.
        self.pool.release(reserved);
        result
    }

    /// What fails a record before anything is tried: a closed producer, a
    /// producer in a fatal state, a topic name that cannot be sent, a
    /// negative timestamp, a record too large.
    ///
    /// The append fast path (`to_open`) does not look at the fatal state:
    /// entering it takes every open batch out of the accumulator, so the
    /// fast path finds none and comes here.
    fn precheck(&self, rec: &RecordRef<'_>) -> Result<(), SendError> {
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        if let Some(e) = self.fatal.get() {
            return Err(SendError::Fatal(e.clone()));
        }
        if rec.topic.is_empty() || rec.topic.len() > i16::MAX as usize {
            return Err(SendError::InvalidTopic(Arc::from(rec.topic)));
        }
        if rec.timestamp_ms < 0 {
            return Err(SendError::InvalidTimestamp(rec.timestamp_ms));
        }
        self.check_record_size(rec)
    }

    /// One non-blocking try: appended, or what to wait for.
    fn attempt<R: Reply>(
        &self,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<Step<R::Delivery>, SendError> {
        self.topics
            .with_view(|v| self.try_append::<R>(v, now, rec, reserved))
    }

    /// Appends a record without ever blocking and without a delivery
    /// handle (its result goes only to the delivery callback, as with
    /// [`produce`](Self::produce)): fails at once where
    /// [`append`](Self::append) would wait, with
    /// [`SendError::BufferFull`] (`waited` zero) when `buffer.memory` is
    /// full (the I/O thread is asked to send the lingering batches now, as
    /// for a blocked sender, so memory comes back as they complete), or
    /// [`SendError::NoMetadataYet`] when the topic's partitions
    /// are not known yet (the metadata is requested, and the I/O thread
    /// woken for it, so a later try succeeds once it arrives). Every other
    /// outcome is [`append`](Self::append)'s, including an immediate
    /// [`SendError::InvalidPartition`] for a partition the topic's latest
    /// metadata does not list (where `append` waits for one that does, if
    /// the topic had the partition).
    pub fn try_produce_now(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
    ) -> Result<AppendOutcome<()>, SendError> {
        self.precheck(&rec)?;
        // Twice at most: metadata may arrive between the first try and the
        // registration below.
        for _ in 0..2 {
            let mut reserved = 0usize;
            let step = self.attempt::<NoHandle>(now, &rec, &mut reserved);
            debug_assert_eq!(reserved, 0, "nothing reserved outside a wait");
            match step? {
                Step::Done(o) => return Ok(o),
                Step::NeedMemory { .. } => {
                    // Refused without waiting, but memory is wanted all the
                    // same: the I/O thread sends the open batches now, not
                    // at their linger deadline, so a later try finds
                    // memory as soon as they complete (as for a blocked
                    // sender; one request however many refusals).
                    let mut wake = self.notices.push_memory_wanted();
                    self.wake_before_blocking(&mut wake);
                    return Err(SendError::BufferFull {
                        limit: self.pool.limit(),
                        waited: std::time::Duration::ZERO,
                    });
                }
                Step::NeedPartition { partition, count } => {
                    // Not there now: ask for metadata (a later try may
                    // find it) and fail without waiting.
                    let (state, _) = self.topics.register(rec.topic);
                    let mut wake = self.notices.push(Notice::TopicWanted {
                        topic: state.id,
                        seen: count,
                    });
                    self.wake_before_blocking(&mut wake);
                    return Err(SendError::InvalidPartition {
                        topic: state.name.clone(),
                        partition,
                        num_partitions: count,
                    });
                }
                Step::NeedTopic => {
                    let (state, _) = self.topics.register(rec.topic);
                    match state.status {
                        TopicStatus::Ready => continue,
                        TopicStatus::Failed(error) => return Err(self.topic_failed(&state, error)),
                        TopicStatus::Pending { last_error } => {
                            let mut wake = self.notices.push(Notice::TopicWanted {
                                topic: state.id,
                                seen: state.partitions.len() as u32,
                            });
                            self.wake_before_blocking(&mut wake);
                            return Err(SendError::NoMetadataYet {
                                topic: state.name.clone(),
                                last_error: self.metadata_cause(last_error),
                            });
                        }
                    }
                }
            }
        }
        Err(SendError::NoMetadataYet {
            topic: Arc::from(rec.topic),
            last_error: None,
        })
    }

    /// Starts an append that waits by yielding instead of blocking: poll it
    /// with [`AsyncAppend::poll_append`]. `now` is the send's clock reading
    /// and `block_deadline` its `now + max.block.ms`; the I/O thread wakes
    /// the task at that deadline (no timer of the caller's executor is
    /// needed).
    pub fn append_async(&self, now: Instant, block_deadline: Instant) -> AsyncAppend<'_> {
        AsyncAppend {
            shared: self,
            start: now,
            deadline: block_deadline,
            reserved: 0,
            wake: false,
            waiting: None,
            target: 0,
            checked: false,
            auth_gen: self.auth_gen(),
        }
    }

    /// Fails a record too large for `max.request.size` or `buffer.memory`
    /// as the only record of a batch. Exact only when the cheap bound says
    /// it could be (this runs on every append).
    fn check_record_size(&self, rec: &RecordRef<'_>) -> Result<(), SendError> {
        let limit = self.cfg.max_request_size.min(self.pool.limit());
        if HEADER_LEN + first_record_size_bound(rec) <= limit {
            return Ok(());
        }
        let size = HEADER_LEN + first_record_size(rec);
        if size > self.cfg.max_request_size {
            return Err(SendError::RecordTooLarge {
                size,
                limit: self.cfg.max_request_size,
                setting: "max.request.size",
            });
        }
        if size > self.pool.limit() {
            return Err(SendError::RecordTooLarge {
                size,
                limit: self.pool.limit(),
                setting: "buffer.memory",
            });
        }
        Ok(())
    }

    /// The locked part: choose the partition and append, or say what to
    /// wait for.
    fn try_append<R: Reply>(
        &self,
        v: &mut crate::topics::ThreadView,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<Step<R::Delivery>, SendError> {
        let (topic, sticky) = v.split(rec.topic);
        let Some(topic) = topic else {
            return Ok(Step::NeedTopic);
        };
        match topic.status {
            TopicStatus::Ready => {}
            TopicStatus::Pending { .. } => return Ok(Step::NeedTopic),
            TopicStatus::Failed(error) => return Err(self.topic_failed(topic, error)),
        }
        let n = topic.partitions.len() as u32;
        let requested = match rec.partition {
            Some(p) => Some(p),
            None => {
                let view = PartitionView {
                    num_partitions: n,
                    available: &topic.available,
                };
                // User code runs fenced: a panic fails this record only.
                let chosen = catch_unwind(AssertUnwindSafe(|| {
                    self.cfg
                        .partitioner
                        .partition(rec.topic, rec.key, rec.value, &view)
                }));
                match chosen {
                    Ok(p) => p.map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
                    Err(panic) => {
                        return Err(SendError::PartitionerPanicked {
                            topic: topic.name.clone(),
                            message: Arc::from(panic_message(&*panic)),
                        })
                    }
                }
            }
        };
        let (partition, is_sticky) = match requested {
            Some(p) if p < 0 || p as u32 >= n => {
                if rec.partition.is_some() && p >= 0 && (p as u32) < topic.had {
                    // A partition the topic had: the latest metadata may
                    // come from a broker lagging behind a partition
                    // increase, or the topic was created again with fewer
                    // partitions. Wait for metadata that has it, as the
                    // Java client does (within max.block.ms).
                    return Ok(Step::NeedPartition {
                        partition: p,
                        count: n,
                    });
                }
                if rec.partition.is_some() && p >= 0 {
                    // The topic may have grown since the count was learnt:
                    // refresh, so a later send sees it. This one fails now
                    // rather than wait out max.block.ms for a partition
                    // that usually does not exist.
                    if self.notices.push(Notice::TopicWanted {
                        topic: topic.id,
                        seen: n,
                    }) {
                        if let Some(w) = self.io_waker.0.get() {
                            w();
                        }
                    }
                }
                return Err(SendError::InvalidPartition {
                    topic: topic.name.clone(),
                    partition: p,
                    num_partitions: n,
                });
            }
            Some(p) => (p as u32, false),
            None => {
                let s = *sticky.get(topic.id);
                let p = if topic.sticky_usable(s.partition) {
                    s.partition
                } else {
                    let p = self.next_sticky(&mut sticky.rng, topic, n, u32::MAX);
                    *sticky.get(topic.id) = crate::topics::Sticky {
                        partition: p,
                        bytes: 0,
                    };
                    p
                };
                (p, true)
            }
        };
        let slot = &topic.partitions[partition as usize];
        let (step, full, added) =
            self.append_to_slot::<R>(slot, topic.id, partition, now, rec, reserved)?;
        if is_sticky && matches!(step, Step::Done(_)) {
            self.after_sticky_append(sticky, topic, n, added, full);
        }
        Ok(step)
    }

    /// Appends under the slot's lock. Returns the step, whether the
    /// record's batch is full (sealed after it), and the bytes added.
    fn append_to_slot<R: Reply>(
        &self,
        slot: &PartitionSlot,
        topic: u32,
        partition: u32,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<(Step<R::Delivery>, bool, usize), SendError> {
        let batch_size = self.cfg.batch_size;
        let mut q = slot.lock();
        if let Some(open) = q.open.as_mut() {
            // The per-record table's growth is charged before anything is
            // appended (a wait for memory appends nothing): its vectors are
            // the one part of a batch beside its buffer that grows with its
            // records (8 B a context, 16 B a timestamp run). A growth that
            // could never be had seals the batch, as a buffer growth does.
            let mut table_fits = true;
            if self.cfg.keep_timestamps {
                let after = open
                    .per_record
                    .heap_bytes_after_push(rec.timestamp_ms, rec.context);
                let extra = after.saturating_sub(open.table_charged);
                if extra > 0 {
                    if open.reserved + extra > self.pool.limit() {
                        table_fits = false;
                    } else if !self.charge(reserved, extra) {
                        return Ok((
                            Step::NeedMemory {
                                bytes: extra,
                                target: target(topic, partition),
                            },
                            false,
                            0,
                        ));
                    } else {
                        open.reserved += extra;
                        open.table_charged += extra;
                    }
                }
            }
            if table_fits {
                let size = open.builder.size_in_bytes();
                // The common case in one step: the record fits the batch and
                // the buffer as it is (no growth, nothing to charge).
                let appended = open.builder.try_append(
                    rec.timestamp_ms,
                    rec.key,
                    rec.value,
                    rec.headers,
                    batch_size.min(open.builder.capacity()),
                );
                let (index, rs) = match appended {
                    Ok(index) => (Some(index), open.builder.size_in_bytes() - size),
                    Err(rs) => (None, rs),
                };
                // Memory is charged by buffer capacity: when this record makes
                // the buffer grow, the growth is charged first (one atomic per
                // regrowth, none per record). A batch that could never get the
                // growth is sealed and the record goes to a new batch.
                let mut fits = size + rs <= batch_size;
                if index.is_none() && fits {
                    let want = grown_capacity(open.builder.capacity(), size + rs);
                    let extra = want.saturating_sub(open.reserved - open.table_charged);
                    if open.reserved + extra > self.pool.limit() {
                        fits = false;
                    } else if extra > 0 {
                        if !self.charge(reserved, extra) {
                            return Ok((
                                Step::NeedMemory {
                                    bytes: extra,
                                    target: target(topic, partition),
                                },
                                false,
                                0,
                            ));
                        }
                        open.reserved += extra;
                    }
                }
                if fits {
                    let index = match index {
                        Some(index) => index,
                        None => {
                            let index = open.builder.append(
                                rec.timestamp_ms,
                                rec.key,
                                rec.value,
                                rec.headers,
                            );
                            let mut buffer = open.reserved - open.table_charged;
                            self.charge_capacity(&mut buffer, open.builder.capacity());
                            open.reserved = buffer + open.table_charged;
                            index
                        }
                    };
                    let (batch, full, wake) =
                        self.appended_to::<R>(&mut q, topic, partition, rec, index, Push::Other);
                    let next_write = q.next_write(rs);
                    drop(q);
                    let outcome = AppendOutcome {
                        delivery: R::delivery(batch, index, rec.timestamp_ms),
                        partition: partition as i32,
                        wake,
                        next_write,
                        next_buffer: NextWrite::NONE,
                    };
                    return Ok((Step::Done(outcome), full, rs));
                }
            }
        }
        // A new batch is needed: charge its initial buffer first, sized
        // like the partition's previous batch (see `initial_capacity`);
        // it grows from there, each growth charged as it happens.
        let rs = first_record_size(rec);
        let need = initial_capacity(q.last_batch_len, HEADER_LEN + rs, batch_size);
        // A finished batch's buffer of about that size if one is spare
        // (charged already, by its capacity; see `memory`).
        let mut next_buffer = NextWrite::NONE;
        let (need, spare) = match self.pool.take_spare_hinted(need) {
            Some((buf, next)) => {
                self.pool.release(std::mem::take(reserved));
                next_buffer = next;
                (buf.capacity(), Some(buf))
            }
            None => {
                if !self.charge(reserved, need) {
                    return Ok((
                        Step::NeedMemory {
                            bytes: need,
                            target: target(topic, partition),
                        },
                        false,
                        0,
                    ));
                }
                (need, None)
            }
        };

        let old = q
            .open
            .take()
            .map(|o| o.seal(self.cfg.compression, self.cfg.compression_level));
        let id = q.next_id;
        let mut builder = match spare {
            Some(buf) => RecordBatchBuilder::in_buffer(rec.timestamp_ms, buf),
            None => RecordBatchBuilder::new(rec.timestamp_ms, need),
        };
        let index = builder.append(rec.timestamp_ms, rec.key, rec.value, rec.headers);
        let mut need = need;
        self.charge_capacity(&mut need, builder.capacity());
        let full = builder.size_in_bytes() >= batch_size || self.cfg.batch_records <= 1;
        let (mut completion, per_record) = R::open(&self.parts, partition as i32);
        // The table (a kept one may have capacity, up to
        // `spare_parts::MAX_TABLE_BYTES`) with room for this record,
        // charged even past the limit as a buffer's surprise growth is:
        // a few hundred bytes at most, and the next charge then waits.
        let table_charged = if self.cfg.keep_timestamps {
            per_record.heap_bytes_after_push(rec.timestamp_ms, rec.context)
        } else {
            0
        };
        let with_table = need + table_charged;
        self.charge_capacity(&mut need, with_table);
        let batch = R::batch(&mut completion, &self.parts, partition as i32);
        let delivery = R::delivery(batch, index, rec.timestamp_ms);
        let old_sealed = old.map(|b| q.sealed.push_back(b)).is_some();
        let (r, wake) = self.notices.with(|n| {
            if old_sealed {
                n.list.push(Notice::Sealed { topic, partition });
            }
            if n.closed {
                return None;
            }
            n.list.push(Notice::Opened {
                topic,
                partition,
                created: now,
            });
            if full {
                n.list.push(Notice::Sealed { topic, partition });
            }
            Some(n.flush_gen)
        });
        let Some(gen) = r else {
            // Closed meanwhile. The old batch is sealed and announced; the
            // I/O thread reaches it without a wake-up from us, because the
            // Close notice precedes this Sealed notice and close seals and
            // readies every partition it knows to have a batch (this one
            // announced its batch before the close).
            drop(q);
            self.pool.release(need);
            return Err(SendError::Closed);
        };
        self.commit_new(
            &mut q,
            id,
            builder,
            completion,
            per_record,
            now,
            (need, table_charged),
            gen,
            rec,
            full,
        );
        let next_write = q.next_write(rs);
        drop(q);
        Ok((
            Step::Done(AppendOutcome {
                delivery,
                partition: partition as i32,
                wake,
                next_write,
                next_buffer,
            }),
            full,
            rs,
        ))
    }

    #[allow(clippy::too_many_arguments)] // the pieces of a new batch, assembled under the slot lock
    #[inline(always)]
    fn commit_new(
        &self,
        q: &mut crate::topics::PartitionQueue,
        id: u64,
        builder: RecordBatchBuilder,
        completion: Option<Arc<crate::delivery::BatchCompletion>>,
        mut per_record: crate::delivery::PerRecord,
        now: Instant,
        (reserved, table_charged): (usize, usize),
        flush_gen: u64,
        rec: &RecordRef<'_>,
        full: bool,
    ) {
        q.next_id = id + 1;
        q.last_batch_len = builder.size_in_bytes();
        if self.cfg.keep_timestamps {
            per_record.push(rec.timestamp_ms, rec.context);
            debug_assert!(per_record.heap_bytes() <= table_charged);
        }
        let open = OpenBatch {
            open: crate::topics::Open::Yes,
            id,
            builder,
            completion,
            created: now,
            reserved,
            table_charged,
            flush_gen,
            per_record,
        };
        if full {
            q.sealed
                .push_back(open.seal(self.cfg.compression, self.cfg.compression_level));
        } else {
            q.open = Some(open);
        }
    }

    /// The error for a send to a topic metadata refused. The refusal may
    /// not last: a topic that did not exist (UNKNOWN_TOPIC_OR_PARTITION
    /// past its propagation window) may have been created since, and one
    /// the user could not see (TOPIC_AUTHORIZATION_FAILED) may have been
    /// granted to them. So each such send fails with the answer known and
    /// asks the I/O thread for fresh metadata (which it spaces by its
    /// backoff): the topic is used as soon as the cluster allows it, not
    /// at the next `metadata.max.age.ms`. The Java client's
    /// `waitOnMetadata` asks again at every send too. A name the broker
    /// calls invalid cannot change, and is not asked about again.
    fn topic_failed(&self, topic: &TopicState, error: ErrorCode) -> SendError {
        if error != ErrorCode::INVALID_TOPIC_EXCEPTION
            && self.notices.push(Notice::TopicWanted {
                topic: topic.id,
                seen: 0,
            })
        {
            if let Some(w) = self.io_waker.0.get() {
                w();
            }
        }
        SendError::TopicError {
            topic: topic.name.clone(),
            error,
        }
    }

    /// Registers the topic (asking the I/O thread for its metadata) and
    /// waits until it is known, failed, or the deadline passes.
    fn wait_for_topic(
        &self,
        now: Instant,
        topic: &str,
        deadline: Instant,
        wake: &mut bool,
    ) -> Result<(), SendError> {
        let (state, _) = self.topics.register(topic);
        let id = state.id;
        let seen = state.partitions.len() as u32;
        let auth_gen = self.auth_gen();
        *wake |= self.notices.push(Notice::TopicWanted { topic: id, seen });
        self.wake_before_blocking(wake);
        let map = self.topics.wait_until(self.left(now, deadline), |m| {
            !matches!(m.by_id[id as usize].status, TopicStatus::Pending { .. })
                || self.notices.is_closed()
                || self.auth_gen() != auth_gen
        });
        let st = &map.by_id[id as usize];
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        match st.status {
            TopicStatus::Ready => Ok(()),
            TopicStatus::Failed(error) => Err(SendError::TopicError {
                topic: st.name.clone(),
                error,
            }),
            TopicStatus::Pending { last_error } => Err(self
                .auth_error(&st.name, auth_gen)
                .unwrap_or_else(|| SendError::MetadataTimeout {
                    topic: st.name.clone(),
                    waited: remaining(now, deadline),
                    last_error: self.metadata_cause(last_error),
                })),
        }
    }

    /// Waits until the latest metadata of `topic` (known, ready) lists
    /// `partition`, which it had before, or the deadline passes: the Java
    /// client's `waitOnMetadata` for a partition beyond the current count.
    /// A smaller count than before comes from a broker lagging behind a
    /// partition increase (the partition comes back) or from the topic's
    /// deletion and creation with fewer partitions (it does not). Returns
    /// `Ok` when the send should be tried again (the partition is listed,
    /// or the topic's status changed); at the deadline,
    /// [`SendError::InvalidPartition`] with the count metadata then has.
    fn wait_for_partition(
        &self,
        now: Instant,
        topic: &str,
        partition: i32,
        deadline: Instant,
        wake: &mut bool,
    ) -> Result<(), SendError> {
        let (state, _) = self.topics.register(topic);
        let id = state.id as usize;
        *wake |= self.notices.push(Notice::TopicWanted {
            topic: state.id,
            seen: state.partitions.len() as u32,
        });
        self.wake_before_blocking(wake);
        let listed = |t: &TopicState| {
            t.status != TopicStatus::Ready || t.partitions.len() > partition as usize
        };
        let map = self.topics.wait_until(self.left(now, deadline), |m| {
            listed(&m.by_id[id]) || self.notices.is_closed()
        });
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        let st = &map.by_id[id];
        if listed(st) {
            return Ok(());
        }
        Err(SendError::InvalidPartition {
            topic: st.name.clone(),
            partition,
            num_partitions: st.partitions.len() as u32,
        })
    }

    /// Whether a send of `partition` to `topic` waits for metadata that
    /// lists it: the topic had it, its latest metadata does not (for the
    /// simulator, which plays a blocking send's wait by stepping).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn awaits_partition(&self, topic: &str, partition: i32) -> bool {
        partition >= 0
            && self.topics.with_view(|v| {
                v.lookup(topic).is_some_and(|t| {
                    t.status == TopicStatus::Ready
                        && partition as usize >= t.partitions.len()
                        && (partition as u32) < t.had
                })
            })
    }

    fn auth_gen(&self) -> u64 {
        self.auth_failures
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`SendError::AuthenticationFailed`] if authentication failed since
    /// `since` and that is still the last connection error.
    fn auth_error(&self, topic: &Arc<str>, since: u64) -> Option<SendError> {
        if self.auth_gen() == since {
            return None;
        }
        match self
            .conn_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(cause @ crate::LastError::Authentication { .. }) => {
                Some(SendError::AuthenticationFailed {
                    topic: topic.clone(),
                    cause,
                })
            }
            _ => None,
        }
    }

    /// The cause reported when a topic's metadata is missing: the brokers'
    /// error for the topic if they gave one, else the last connection
    /// failure while no broker connection was ready.
    fn metadata_cause(
        &self,
        topic_error: Option<kring_protocol::ErrorCode>,
    ) -> Option<crate::LastError> {
        topic_error.map(crate::LastError::broker).or_else(|| {
            self.conn_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
    }

    /// Requests a flush: every batch open now is sealed at once, and the
    /// returned handle completes when every record appended before this
    /// call has its final result. Wake the I/O thread if
    /// [`FlushHandle::wake`] is set.
    pub fn begin_flush(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(move |n| {
            if n.finished {
                return true;
            }
            n.flush_gen += 1;
            let gen = n.flush_gen;
            n.list
                .push(Notice::Flush(Box::new(FlushRequest { gen, signal: s2 })));
            false
        });
        settled_if(signal, finished, wake)
    }

    /// Requests a purge (librdkafka's `rd_kafka_purge` with
    /// `RD_KAFKA_PURGE_F_QUEUE`): every record still buffered in the
    /// accumulator when the I/O thread reads the request — open and sealed
    /// batches not yet taken into a request — fails with
    /// [`DeliveryError::Purged`](crate::DeliveryError::Purged) (not
    /// persisted) and its memory is released. Records on the wire or
    /// waiting for a retry are not touched: they complete as usual. The
    /// producer stays usable. The handle completes once the purge is done.
    /// Wake the I/O thread if [`FlushHandle::wake`] is set.
    pub fn begin_purge(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(move |n| {
            if n.finished {
                return true;
            }
            n.list.push(Notice::Purge { signal: s2 });
            false
        });
        settled_if(signal, finished, wake)
    }

    /// Requests close: flush, then stop. Appends from now on fail with
    /// [`SendError::Closed`]. The handle completes when the core has
    /// finished (every record has its result and connections are closed).
    pub fn begin_close(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(|n| {
            if n.finished {
                return true;
            }
            if n.closed {
                // Closing already: a second close waits for the same end.
                n.list.push(Notice::Close(Box::new(FlushRequest {
                    gen: n.flush_gen,
                    signal: s2,
                })));
                return false;
            }
            self.notices.set_closed(n);
            n.flush_gen += 1;
            let gen = n.flush_gen;
            n.list
                .push(Notice::Close(Box::new(FlushRequest { gen, signal: s2 })));
            false
        });
        self.pool.close();
        settled_if(signal, finished, wake)
    }

    /// How many calls of the delivery callback panicked (each caught; see
    /// [`DeliveryCallback`](crate::DeliveryCallback)).
    pub fn callback_panics(&self) -> u64 {
        self.callback_panics
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether close was requested.
    pub fn is_closed(&self) -> bool {
        self.notices.is_closed()
    }

    /// Waits on the caller's thread, until `deadline`, for `topic`'s
    /// partitions to be known, without sending anything: the I/O thread is
    /// asked for the metadata if it does not have it. Returns the partition
    /// count, or the error a blocking [`append`](Self::append) of a record
    /// to the topic would give by then: [`SendError::MetadataTimeout`]
    /// with the last cause (for example connection refused),
    /// [`SendError::TopicError`], [`SendError::InvalidTopic`] or
    /// [`SendError::Closed`].
    pub fn wait_for_metadata(
        &self,
        now: Instant,
        topic: &str,
        deadline: Instant,
    ) -> Result<u32, SendError> {
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        if topic.is_empty() || topic.len() > i16::MAX as usize {
            return Err(SendError::InvalidTopic(Arc::from(topic)));
        }
        if let Some(n) = self.partition_count(topic) {
            return Ok(n);
        }
        let mut wake = false;
        self.wait_for_topic(now, topic, deadline, &mut wake)?;
        // Ready now: read the count from the same published view.
        self.partition_count(topic)
            .ok_or_else(|| SendError::MetadataTimeout {
                topic: Arc::from(topic),
                waited: remaining(now, deadline),
                last_error: None,
            })
    }

    /// Bytes of `buffer.memory` currently reserved by batches (not by
    /// finished buffers kept for reuse).
    pub fn buffered_bytes(&self) -> usize {
        self.pool.held()
    }

    /// How many times producer threads asked for the I/O thread to be woken
    /// (appends, flushes and closes that found it parked).
    pub fn wake_requests(&self) -> u64 {
        self.notices.wake_count()
    }

    /// The topic's partition count as its latest metadata lists it, if
    /// known; never waits (see [`wait_for_metadata`](Self::wait_for_metadata)
    /// for that). After the topic was created again with fewer partitions
    /// (or while a broker lags behind a partition increase) this is the
    /// smaller count.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.with_view(|v| {
            v.lookup(topic)
                .filter(|t| t.status == TopicStatus::Ready)
                .map(|t| t.partitions.len() as u32)
        })
    }

    /// The last error metadata reported for a topic that is not usable yet.
    pub fn topic_error(&self, topic: &str) -> Option<ErrorCode> {
        self.topics.with_view(|v| {
            v.lookup(topic).and_then(|t| match t.status {
                TopicStatus::Pending { last_error } => last_error,
                TopicStatus::Failed(e) => Some(e),
                TopicStatus::Ready => None,
            })
        })
    }
}

/// The handle of a flush, purge or close request: complete already if the
/// core had `finished` (no notice was queued; every record has its
/// result).
fn settled_if(signal: Arc<Signal>, finished: bool, wake: bool) -> FlushHandle {
    if finished {
        signal.set();
    }
    FlushHandle { signal, wake }
}

/// What an [`AsyncAppend`] is registered to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitOn {
    Memory,
    Topic,
}

/// An append that waits for `buffer.memory` or metadata by returning
/// `Pending` (from [`Shared::append_async`]).
///
/// While it waits, its task's waker sits in the wait list of what it waits
/// for (woken when memory is released, when metadata is published, at
/// close), and the I/O thread holds its deadline and wakes it then: after
/// that the append fails with the same error a blocking append gives at
/// `max.block.ms` ([`SendError::BufferFull`] or
/// [`SendError::MetadataTimeout`]). Dropping it cancels the append: its
/// registration and any memory it reserved go back.
#[derive(Debug)]
#[must_use = "an AsyncAppend does nothing unless polled"]
pub struct AsyncAppend<'s> {
    shared: &'s Shared,
    start: Instant,
    deadline: Instant,
    /// Memory obtained after waiting, not used yet.
    reserved: usize,
    /// The I/O thread is owed a wake-up.
    wake: bool,
    waiting: Option<(WaitOn, Option<usize>)>,
    /// The partition (`topic << 32 | partition`) of the record when it
    /// last waited for memory.
    target: u64,
    checked: bool,
    /// [`Shared::auth_failures`] when the send began.
    auth_gen: u64,
}

impl AsyncAppend<'_> {
    /// Tries to append `rec` (the same record on every poll); `now` is the
    /// caller's current clock reading. `Pending` means the task's waker is
    /// registered and will be woken. Once it returned `Ready`, do not poll
    /// it again: a poll after `Ready(Ok)` appends the record a second time
    /// (kring's futures refuse to be polled after completing).
    pub fn poll_append(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome, SendError>> {
        self.poll_with::<WithHandle>(now, rec, cx)
    }

    /// [`poll_append`](Self::poll_append) for a record whose result only
    /// the delivery callback needs: no handle (see [`Shared::produce`]).
    /// An append is polled one way or the other throughout.
    pub fn poll_produce(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<()>, SendError>> {
        self.poll_with::<NoHandle>(now, rec, cx)
    }

    fn poll_with<R: Reply>(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<R::Delivery>, SendError>> {
        let r = self.step::<R>(now, rec, cx);
        if r.is_ready() {
            self.finish();
        }
        r
    }

    fn step<R: Reply>(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<R::Delivery>, SendError>> {
        let sh = self.shared;
        if !self.checked {
            if let Err(e) = sh.precheck(rec) {
                return Poll::Ready(Err(e));
            }
            self.checked = true;
        }
        loop {
            if sh.notices.is_closed() {
                return Poll::Ready(Err(SendError::Closed));
            }
            let step = match sh.attempt::<R>(now, rec, &mut self.reserved) {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            match step {
                Step::Done(mut o) => {
                    o.wake |= std::mem::take(&mut self.wake);
                    if let Some((WaitOn::Memory, Some(_))) = self.waiting {
                        // It waited for memory and got it: the tasks
                        // waiting with records for the same partition may
                        // fit in the batch it opened.
                        sh.pool.tasks.wake_target(self.target);
                    }
                    return Poll::Ready(Ok(o));
                }
                Step::NeedTopic => {
                    let (state, _) = sh.topics.register(rec.topic);
                    let id = state.id as usize;
                    if self.register(WaitOn::Topic, 0, 0, cx) {
                        self.wake |= sh.notices.push(Notice::TopicWanted {
                            topic: state.id,
                            seen: state.partitions.len() as u32,
                        });
                    }
                    // Re-checked under the table's lock, after registering:
                    // a publish either came before (seen here) or wakes us.
                    let map = sh.topics.snapshot();
                    let st = &map.by_id[id];
                    if sh.notices.is_closed() {
                        return Poll::Ready(Err(SendError::Closed));
                    }
                    match st.status {
                        TopicStatus::Ready => continue,
                        TopicStatus::Failed(error) => {
                            return Poll::Ready(Err(SendError::TopicError {
                                topic: st.name.clone(),
                                error,
                            }))
                        }
                        TopicStatus::Pending { last_error } => {
                            if let Some(e) = sh.auth_error(&st.name, self.auth_gen) {
                                return Poll::Ready(Err(e));
                            }
                            if self.timed_out(now) {
                                return Poll::Ready(Err(SendError::MetadataTimeout {
                                    topic: st.name.clone(),
                                    waited: remaining(self.start, self.deadline),
                                    last_error: sh.metadata_cause(last_error),
                                }));
                            }
                            sh.wake_before_blocking(&mut self.wake);
                            return Poll::Pending;
                        }
                    }
                }
                Step::NeedPartition { partition, count } => {
                    // As `wait_for_partition`, by yielding.
                    let (state, _) = sh.topics.register(rec.topic);
                    let id = state.id as usize;
                    if self.register(WaitOn::Topic, 0, 0, cx) {
                        self.wake |= sh.notices.push(Notice::TopicWanted {
                            topic: state.id,
                            seen: count,
                        });
                    }
                    // Re-checked after registering, as for a topic.
                    let map = sh.topics.snapshot();
                    let st = &map.by_id[id];
                    if sh.notices.is_closed() {
                        return Poll::Ready(Err(SendError::Closed));
                    }
                    if st.status != TopicStatus::Ready || st.partitions.len() > partition as usize {
                        continue;
                    }
                    if self.timed_out(now) {
                        return Poll::Ready(Err(SendError::InvalidPartition {
                            topic: st.name.clone(),
                            partition,
                            num_partitions: st.partitions.len() as u32,
                        }));
                    }
                    sh.wake_before_blocking(&mut self.wake);
                    return Poll::Pending;
                }
                Step::NeedMemory { bytes: n, target } => {
                    debug_assert_eq!(self.reserved, 0);
                    self.target = target;
                    self.register(WaitOn::Memory, n, target, cx);
                    // Memory released before the registration is seen here;
                    // released after it, it wakes us.
                    if sh.pool.try_reserve(n) {
                        self.reserved = n;
                        continue;
                    }
                    if self.timed_out(now) {
                        return Poll::Ready(Err(SendError::BufferFull {
                            limit: sh.pool.limit(),
                            waited: remaining(self.start, self.deadline),
                        }));
                    }
                    // Memory comes back when batches complete: the I/O
                    // thread sends the open ones now, not at their linger
                    // deadline, and must know of those sealed so far.
                    self.wake |= sh.notices.push_memory_wanted();
                    sh.wake_before_blocking(&mut self.wake);
                    return Poll::Pending;
                }
            }
        }
    }

    /// The deadline passed: by the caller's clock, or the I/O thread said
    /// so.
    fn timed_out(&self, now: Instant) -> bool {
        if now >= self.deadline {
            return true;
        }
        match self.waiting {
            Some((on, key)) => self.list(on).expired(key),
            None => false,
        }
    }

    fn list(&self, on: WaitOn) -> &WaitList {
        match on {
            WaitOn::Memory => &self.shared.pool.tasks,
            WaitOn::Topic => &self.shared.topics.tasks,
        }
    }

    /// What `on`'s resource has free now (memory; metadata has no amount).
    fn free(&self, on: WaitOn) -> usize {
        match on {
            WaitOn::Memory => self.shared.pool.free_now(),
            WaitOn::Topic => 0,
        }
    }

    /// Registers the task's waker in `on`'s list (moving it from the other
    /// list if needed), waiting for `need` of it (bytes of memory).
    /// Returns whether this is a new wait; a new wait's deadline is
    /// announced to the I/O thread.
    fn register(&mut self, on: WaitOn, need: usize, target: u64, cx: &mut Context<'_>) -> bool {
        let mut key = match self.waiting.take() {
            Some((was, key)) if was == on => key,
            Some((was, mut key)) => {
                self.list(was).remove(&mut key, || self.free(was));
                None
            }
            None => None,
        };
        let new = self
            .list(on)
            .register(&mut key, cx.waker(), self.deadline, need, target);
        self.waiting = Some((on, key));
        if new {
            let deadline = self.deadline;
            self.wake |= self
                .shared
                .notices
                .with(|n| {
                    let deadline = n.stamp(deadline);
                    n.list.push(Notice::Waiting { deadline });
                })
                .1;
        }
        new
    }

    /// Ends the wait: the registration goes, unused memory goes back, an
    /// owed wake-up is delivered.
    fn finish(&mut self) {
        if let Some((on, mut key)) = self.waiting.take() {
            self.list(on).remove(&mut key, || self.free(on));
        }
        self.shared.pool.release(std::mem::take(&mut self.reserved));
        self.shared.wake_before_blocking(&mut self.wake);
    }
}

impl Drop for AsyncAppend<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A new sticky partition: uniformly among the available partitions (all
/// partitions while none is), different from `current` when possible.
/// A partition as a wait list's target.
fn target(topic: u32, partition: u32) -> u64 {
    u64::from(topic) << 32 | u64::from(partition)
}

fn pick_sticky(
    rng: &mut crate::backoff::SplitMix64,
    n: u32,
    available: &[u32],
    current: u32,
) -> u32 {
    if available.is_empty() {
        if n <= 1 {
            return 0;
        }
        let mut p = rng.below(n);
        if p == current {
            p = (p + 1 + rng.below(n - 1)) % n;
        }
        return p;
    }
    if available.len() == 1 {
        return available[0];
    }
    let len = available.len() as u32;
    let mut i = rng.below(len);
    if available[i as usize] == current {
        i = (i + 1 + rng.below(len - 1)) % len;
    }
    available[i as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::SplitMix64;

    /// A new batch has room for its previous batch's bytes and one more
    /// record (no regrowth when a sparse partition's batches grow by a
    /// record), within `batch.size`, and always for its first record.
    #[test]
    fn a_new_batch_has_room_for_one_record_more_than_the_last() {
        let rec = HEADER_LEN + 110;
        // First batch of a partition: room for two such records.
        assert_eq!(initial_capacity(0, rec, 16384), 384);
        assert_eq!(initial_capacity(0, HEADER_LEN + 10, 16384), 256);
        // The last batch held one record: two fit without growing.
        assert!(initial_capacity(rec, rec, 16384) >= 2 * rec - HEADER_LEN);
        let two = rec + 110;
        assert!(initial_capacity(two, rec, 16384) >= two + 110);
        for last in [0, 1, 100, 1000, 5000, 16383, 16384, 100_000] {
            let c = initial_capacity(last, rec, 16384);
            assert_eq!(c % 64, 0, "a whole number of cache lines");
            assert!(c <= 16384 && c >= rec, "{last}: {c}");
        }
        // A large first record is always room for itself.
        assert_eq!(initial_capacity(0, 20_000, 16384), 20_000);
    }

    /// A sender that blocks for metadata while the I/O thread is parked
    /// must wake it before blocking: what it waits for is the I/O thread's
    /// doing (found by kring's end-to-end tests: without this, the first
    /// send to a topic after the producer went idle waited `max.block.ms`
    /// and failed).
    #[test]
    fn blocking_for_metadata_wakes_a_parked_io_thread_first() {
        let now = kring_testclock::origin();
        let config = Config {
            bootstrap: vec!["127.0.0.1:9".into()],
            ..Config::default()
        };
        let (mut core, shared) = crate::ProducerCore::new(config, now).unwrap();
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w2 = woken.clone();
        shared.set_io_waker(Arc::new(move || {
            w2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        assert!(core.prepare_park());
        let rec = RecordRef {
            topic: "t",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        };
        // A deadline of `now`: the wait ends at once, with the wake-up done.
        let err = shared.append(now, rec, now).unwrap_err();
        assert!(matches!(err, SendError::MetadataTimeout { .. }), "{err}");
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    use crate::test_wake::CountWake;

    /// An async append waiting for metadata is woken by the core at its
    /// deadline (its own executor has no timer) and then fails as a
    /// blocking append would: the core's word that the deadline passed
    /// decides, whatever clock reading the poll brings.
    #[test]
    fn async_append_is_expired_by_the_cores_deadline_queue() {
        let now = kring_testclock::origin();
        let config = Config {
            bootstrap: vec!["127.0.0.1:9".into()],
            ..Config::default()
        };
        let (mut core, shared) = crate::ProducerCore::new(config, now).unwrap();
        let deadline = now + std::time::Duration::from_secs(3);
        let rec = RecordRef {
            topic: "t",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        };
        let count = Arc::new(CountWake(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = shared.append_async(now, deadline);
        assert!(a.poll_append(now, &rec, &mut cx).is_pending());
        assert!(!shared.topics.tasks.is_empty());
        core.handle_wakeup(now);
        assert!(core.poll_timeout().is_some_and(|t| t <= deadline));
        // Run the core's timers up to the deadline.
        while let Some(t) = core.poll_timeout().filter(|&t| t <= deadline) {
            core.handle_timeout(t);
        }
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        match a.poll_append(now, &rec, &mut cx) {
            Poll::Ready(Err(SendError::MetadataTimeout { waited, .. })) => {
                assert_eq!(waited, std::time::Duration::from_secs(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(shared.topics.tasks.is_empty(), "deregistered");
    }

    #[test]
    fn first_record_size_bound_is_an_upper_bound() {
        let big = vec![1u8; 3 << 20];
        for (k, v) in [
            (None, None),
            (Some(&b""[..]), Some(&b"x"[..])),
            (Some(&b"key"[..]), Some(&big[..200])),
            (Some(&big[..70_000]), Some(&big[..])),
        ] {
            let rec = RecordRef {
                topic: "t",
                partition: None,
                key: k,
                value: v,
                headers: &[],
                timestamp_ms: 0,
                context: 0,
            };
            let (bound, exact) = (first_record_size_bound(&rec), first_record_size(&rec));
            assert!(bound >= exact && bound <= exact + 16, "{bound} vs {exact}");
        }
    }

    #[test]
    fn first_record_size_matches_builder() {
        let headers = [Header {
            key: "h",
            value: Some(b"v"),
        }];
        for (k, v, h) in [
            (None, None, &[][..]),
            (Some(&b"key"[..]), Some(&[7u8; 300][..]), &headers[..]),
            (Some(&b""[..]), Some(&b"x"[..]), &[][..]),
        ] {
            let rec = RecordRef {
                topic: "t",
                partition: None,
                key: k,
                value: v,
                headers: h,
                timestamp_ms: 123,
                context: 0,
            };
            let b = RecordBatchBuilder::new(123, 0);
            assert_eq!(first_record_size(&rec), b.record_size(123, k, v, h));
        }
    }

    #[test]
    fn pick_sticky_avoids_current_and_stays_available() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..100 {
            let p = pick_sticky(&mut rng, 10, &[1, 4, 6], 4);
            assert!(p == 1 || p == 6);
            let q = pick_sticky(&mut rng, 3, &[], 2);
            assert!(q < 2);
        }
        assert_eq!(pick_sticky(&mut rng, 5, &[3], 3), 3);
        assert_eq!(pick_sticky(&mut rng, 1, &[], 0), 0);
    }
}
