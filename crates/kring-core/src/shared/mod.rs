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
//!
//! This file holds the types and the fast path (a record into its
//! partition's open batch, inlined into the caller); the rest is split by
//! concern: `general` (new batches, size checks, the partitioner, blocking
//! for memory), `sticky` (keyless partition choice), `metadata_wait`
//! (sends that wait for metadata, and their errors), `async_append` (the
//! same waits as futures) and `control` (flush, purge, close, queries).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use kring_protocol::primitives::{varint_len, varlong_len};
use kring_protocol::record::layout::HEADER_LEN;
use kring_protocol::record::{Compression, Header, RecordBatchBuilder};

use crate::config::Config;
use crate::delivery::{DeliveryHandle, Push};
use crate::error::SendError;
use crate::memory::{remaining, BufferPool};
use crate::next_write::NextWrite;
use crate::notice::{Notice, NoticeQueue};
use crate::partitioner::Partitioner;
use crate::reply::{NoHandle, Reply, WithHandle};
use crate::topics::{TopicStatus, TopicTable};

mod async_append;
mod control;
mod general;
mod metadata_wait;
mod sticky;
mod txn;

pub use async_append::AsyncAppend;

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

/// What most of the core's tests send: `value` to `topic`, no key,
/// partition or headers, timestamp 0.
#[cfg(test)]
impl<'a> RecordRef<'a> {
    pub(crate) fn plain(topic: &'a str, value: &'a [u8]) -> Self {
        RecordRef {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        }
    }
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
    /// The transaction's state, with a `transactional.id` (`crate::txn`).
    pub(crate) txn: Option<crate::txn::Txn>,
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
        let shared = Shared {
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
            txn: config
                .transactional_id
                .as_ref()
                .map(|_| crate::txn::Txn::new()),
        };
        if shared.txn.is_some() {
            // No batch before the first transaction begins.
            shared
                .notices
                .with(|n| n.txn_gate = crate::notice::TxnGate::Closed);
        }
        shared
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
}

/// A core that knows no broker it can reach, and its shared side, for
/// the tests of sends that wait (`metadata_wait`, `async_append`).
#[cfg(test)]
fn core_without_brokers(now: Instant) -> (crate::ProducerCore, Arc<Shared>) {
    let config = Config {
        bootstrap: vec!["127.0.0.1:9".into()],
        ..Config::default()
    };
    crate::ProducerCore::new(config, now).unwrap()
}

/// A partition as a wait list's target.
fn target(topic: u32, partition: u32) -> u64 {
    u64::from(topic) << 32 | u64::from(partition)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A larger batch: a quarter more room than it held.
        assert!(initial_capacity(5000, rec, 16384) >= 6250);
        for last in [0, 1, 100, 1000, 5000, 16383, 16384, 100_000] {
            let c = initial_capacity(last, rec, 16384);
            assert_eq!(c % 64, 0, "a whole number of cache lines");
            assert!(c <= 16384 && c >= rec, "{last}: {c}");
        }
        // A large first record is always room for itself.
        assert_eq!(initial_capacity(0, 20_000, 16384), 20_000);
    }

    #[test]
    fn first_record_size_bound_is_an_upper_bound() {
        let big = vec![1u8; 3 << 20];
        let headers = [Header {
            key: "trace",
            value: Some(&big[..5_000]),
        }];
        for (k, v, h) in [
            (None, None, &[][..]),
            (Some(&b""[..]), Some(&b"x"[..]), &[][..]),
            (Some(&b"key"[..]), Some(&big[..200]), &[][..]),
            (Some(&big[..70_000]), Some(&big[..]), &[][..]),
            // Headers count too.
            (Some(&b"key"[..]), Some(&big[..200]), &headers[..]),
        ] {
            let rec = RecordRef {
                topic: "t",
                partition: None,
                key: k,
                value: v,
                headers: h,
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
}
