//! Compression off the I/O thread: the hand-off of batches the I/O thread
//! seals (lingered, flushed, closed) to compression workers.
//!
//! Why: a full batch is sealed and compressed by the producer thread that
//! filled it, so that work spreads over the sending threads; a batch the
//! I/O thread takes because linger expired (or a flush or close sealed it)
//! would otherwise be compressed on the one I/O thread, which then limits
//! the whole producer with zstd or gzip and many partitions.
//!
//! How, without giving up a guarantee:
//! - The I/O thread moves the batch out of the open slot into its
//!   partition's queue of sealed batches as *queued for compression*
//!   ([`Sealing::Queued`]), under the slot's lock, exactly where it would
//!   have put the compressed batch. Producer threads only ever add behind
//!   it, so a full batch sealed meanwhile by a producer thread waits
//!   behind it: the I/O thread takes a partition's batches from the front
//!   only, and not while the front is still being compressed. Order per
//!   partition holds, and so do sequence numbers, which are assigned when
//!   the I/O thread takes a batch.
//! - It then posts a job (slot, batch id) here and goes on; it never waits
//!   for a worker. A worker ([`Shared::run_compression_jobs`], on a thread
//!   the driver starts) takes the builder out under the slot's lock,
//!   compresses without it (appends to the partition's new batch do not
//!   wait), puts the result back and posts a `Sealed` notice, which wakes
//!   the I/O thread as a producer thread's full batch does.
//! - The batch keeps its `buffer.memory` charge while it is compressed, and
//!   its records stay in the accumulator: flush, close, purge, delivery
//!   timeouts and aborts see and finish it as any other accumulated batch
//!   (a worker that then finds its batch gone drops the result; while it
//!   still compresses such a batch, its buffer is no longer charged: at
//!   most one batch per compressing thread, worker or blocked sender,
//!   beyond `buffer.memory`, for that moment).
//! - Offloading is on only once a driver has started a worker
//!   ([`Shared::enable_compression_offload`]); without one, the I/O thread
//!   compresses as before. Batches smaller than the threshold are
//!   compressed in place: below it, the hand-off costs the I/O thread about
//!   what compressing does.
//! - While the workers are `max.request.size` behind, the I/O thread
//!   compresses itself too (see [`CompressQueue::wants`]).
//! - The I/O thread compresses itself within a small budget refilled with
//!   time (`kring`: 4 MiB/s of uncompressed batches, a few percent of a
//!   core) and hands off only the rest: at low rates nothing is handed off
//!   and no latency is added.
//!
//! Without compression threads, producer threads blocked for
//! `buffer.memory` can be the workers ([`Shared::enable_compression_help`];
//! `kring` turns it on for gzip, where it pays).
//! Why: with many partitions and a slow codec, lingered batches are all
//! the I/O thread compresses, it becomes the limit, memory fills, and the
//! sending threads sleep until batches complete — a core idles while the
//! one thread that could free memory is busy compressing. A blocked
//! thread has nothing else to do: it compresses instead of sleeping,
//! keeping its place in the line for memory (`memory/blocked.rs`). How no job is
//! left behind: the I/O thread hands a batch off only while a thread is
//! blocked; after posting a job it looks again at the count of blocked
//! threads and does the jobs itself if there are none, and a thread that
//! stops waiting with jobs left nudges the next blocked thread or, the
//! last, does them itself (both sides sequentially consistent: one of
//! them sees the other).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use kring_protocol::record::{Compression, RecordBatchBuilder, SealedBatch};
use kring_protocol::EncodeError;

use crate::delivery::panic_message;
use crate::notice::Notice;
use crate::shared::Shared;
use crate::topics::PartitionSlot;

/// Where a batch in a partition's sealed queue stands.
#[derive(Debug)]
pub(crate) enum Sealing {
    /// Sealed (compressed if the codec asks): ready to send, or the
    /// codec's failure, which fails the batch when the I/O thread takes it.
    Done(Result<SealedBatch, EncodeError>),
    /// Closed to appends, waiting for a compression worker.
    Queued(RecordBatchBuilder),
    /// A worker has the builder and is compressing it.
    Running,
}

impl Sealing {
    /// The sealed batch, if sealing finished (`None` while queued or
    /// running).
    pub(crate) fn done(&self) -> Option<&Result<SealedBatch, EncodeError>> {
        match self {
            Sealing::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Bytes the batch holds: sealed, or uncompressed while queued (0
    /// while a worker holds it, or after a codec failure).
    pub(crate) fn size_in_bytes(&self) -> usize {
        match self {
            Sealing::Done(Ok(s)) => s.size_in_bytes(),
            Sealing::Queued(b) => b.size_in_bytes(),
            Sealing::Done(Err(_)) | Sealing::Running => 0,
        }
    }
}

/// One batch to compress: its partition's slot, the notice coordinates and
/// its id (the batch is found again by id, so a batch that left the queue
/// meanwhile is simply not there).
#[derive(Debug)]
struct Job {
    slot: Arc<PartitionSlot>,
    topic: u32,
    partition: u32,
    batch: u64,
    /// Uncompressed bytes, counted in the backlog until done.
    size: usize,
}

/// The I/O thread's own compression budget: a token bucket of
/// uncompressed bytes, `burst` at most, refilled at `per_sec`.
#[derive(Debug, Default)]
struct InlineBudget {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    last: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: VecDeque<Job>,
    /// Workers blocked in [`Shared::wait_for_compression_jobs`].
    waiting: u32,
    stopped: bool,
}

/// Jobs from the I/O thread to compression workers.
#[derive(Debug)]
pub(crate) struct CompressQueue {
    /// Batches at least this large (uncompressed bytes) are handed off;
    /// `usize::MAX`: offloading off.
    min_bytes: AtomicUsize,
    /// No compression threads: producer threads blocked for memory are
    /// the workers ([`Shared::enable_compression_help`]).
    by_blocked: AtomicBool,
    /// Producer threads blocked for memory, as the I/O thread's routing
    /// reads it (kept here, on a line nothing writes while no thread
    /// blocks: the pool's own count shares its line with the counter every
    /// append updates, and reading it for every lingered batch cost the I/O
    /// thread a cache miss each). It may lag; nothing depends on it being
    /// exact (see [`Shared::offload`]).
    blocked: AtomicUsize,
    /// Jobs posted and not yet taken (what a blocked thread looks at).
    queued: AtomicUsize,
    /// Jobs done by blocked producer threads.
    helped: AtomicU64,
    /// Uncompressed bytes handed off and not compressed yet.
    backlog: AtomicUsize,
    /// While the backlog is at least this, the I/O thread compresses
    /// itself (see [`CompressQueue::wants`]).
    backlog_cap: usize,
    /// How much the I/O thread may compress itself (a token bucket of
    /// uncompressed bytes, refilled with time; only the I/O thread uses
    /// it, the lock is never contended).
    inline: Mutex<InlineBudget>,
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl CompressQueue {
    /// A queue whose backlog is capped at `backlog_cap` bytes
    /// (`max.request.size`), offloading off until enabled.
    pub(crate) fn new(backlog_cap: usize) -> Self {
        CompressQueue {
            min_bytes: AtomicUsize::new(usize::MAX),
            by_blocked: AtomicBool::new(false),
            blocked: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            helped: AtomicU64::new(0),
            backlog: AtomicUsize::new(0),
            backlog_cap: backlog_cap.max(1),
            inline: Mutex::new(InlineBudget::default()),
            inner: Mutex::new(Inner::default()),
            cv: Condvar::new(),
        }
    }
}

impl CompressQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a batch of `size` uncompressed bytes sealed by the I/O
    /// thread with `compression` goes to a worker.
    ///
    /// Not while the workers are a request's worth behind: the I/O thread
    /// then compresses itself, sharing the work. Handing off regardless
    /// would let the I/O thread take batches ever sooner (it no longer
    /// pays for them) while the workers fall behind: smaller batches,
    /// more compression per record, and requests waiting on the workers.
    /// Nor does the I/O thread leave the batch open until they catch up
    /// (tried: with `buffer.memory` full the batches hardly grew, the
    /// workers alone compressed every lingered batch while the I/O
    /// thread's core idled, and 10,000 partitions with zstd ran 20-30 %
    /// slower in many small requests; BENCHMARKS.md, "Compression and
    /// producer threads").
    ///
    /// Nor while the I/O thread's own budget covers it: at a low rate (idle
    /// producer threads) compressing costs it little, less than the two
    /// thread hand-offs would add to the batch's latency.
    ///
    /// Without compression threads, only while producer threads wait for
    /// memory (they are the workers then).
    pub(crate) fn wants(&self, compression: Compression, size: usize) -> bool {
        if compression == Compression::None
            || (self.by_blocked.load(Ordering::Relaxed)
                && self.blocked.load(Ordering::Relaxed) == 0)
            || size < self.min_bytes.load(Ordering::Relaxed)
            || self.backlog.load(Ordering::Relaxed) >= self.backlog_cap
        {
            return false;
        }
        let mut b = self.inline.lock().unwrap_or_else(|e| e.into_inner());
        if b.tokens >= size as f64 {
            b.tokens -= size as f64;
            return false;
        }
        true
    }

    /// The I/O thread is about to build requests at `now`: its own
    /// compression budget refills for the time passed.
    pub(crate) fn refill(&self, now: Instant) {
        let mut b = self.inline.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = b
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        b.last = Some(now);
        b.tokens = (b.tokens + elapsed * b.per_sec).min(b.burst);
    }

    /// Posts a job and wakes one waiting worker (only if one waits); gives
    /// the job back once the workers are stopped.
    fn post(&self, job: Job) -> Result<(), Job> {
        let mut g = self.lock();
        if g.stopped {
            return Err(job);
        }
        g.jobs.push_back(job);
        self.queued.fetch_add(1, Ordering::SeqCst);
        let wake = g.waiting > 0;
        drop(g);
        if wake {
            self.cv.notify_one();
        }
        Ok(())
    }

    fn next(&self) -> Option<Job> {
        let job = self.lock().jobs.pop_front();
        if job.is_some() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
        job
    }

    /// A producer thread is about to block for memory (`true`) or is done
    /// waiting (`false`): counted for [`wants`](Self::wants), when they
    /// are the workers.
    pub(crate) fn note_blocked(&self, blocked: bool) {
        if self.by_blocked.load(Ordering::Relaxed) {
            if blocked {
                self.blocked.fetch_add(1, Ordering::Relaxed);
            } else {
                self.blocked.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Workers asleep waiting for jobs.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> u32 {
        self.lock().waiting
    }

    /// Whether a producer thread blocked for memory has a job to do.
    pub(crate) fn has_help_wanted(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0 && self.by_blocked.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Hands the batch `batch` of the partition (`topic`, `partition`),
    /// just queued as [`Sealing::Queued`] in `slot`, to the workers. Called
    /// by the I/O thread without the slot's lock. Should the workers have
    /// stopped, it is compressed here and now instead (the `Sealed` notice
    /// is read at the I/O thread's next turn).
    pub(crate) fn offload(
        &self,
        slot: Arc<PartitionSlot>,
        topic: u32,
        partition: u32,
        batch: u64,
        size: usize,
    ) {
        let job = Job {
            slot,
            topic,
            partition,
            batch,
            size,
        };
        self.compress.backlog.fetch_add(size, Ordering::Relaxed);
        if let Err(job) = self.compress.post(job) {
            self.compress.backlog.fetch_sub(size, Ordering::Relaxed);
            if self.compress_one(&job, self.cfg.compression).is_some() {
                self.announce(&mut vec![job]);
            }
            return;
        }
        if self.compress.by_blocked.load(Ordering::Relaxed) {
            // The job is visible (SeqCst): a thread blocked now does it,
            // or, leaving, finds it; with none blocked, it is done here.
            if self.pool.waiters() == 0 {
                self.run_compression_jobs();
            } else {
                self.pool.nudge();
            }
        }
    }

    /// Without compression threads (`compression.threads` 0), lets
    /// producer threads blocked for `buffer.memory` compress the batches
    /// the I/O thread seals (lingered, flushed, closed) of at least
    /// `min_batch_bytes` uncompressed bytes, instead of sleeping: the I/O
    /// thread hands a batch off only while such a thread waits, and still
    /// compresses itself within its budget (`inline_burst`,
    /// `inline_per_sec`, as in
    /// [`enable_compression_offload`](Self::enable_compression_offload)).
    /// Async senders waiting for memory do not help. Has no effect with
    /// `compression.type=none`; call it once, before the first append.
    pub fn enable_compression_help(
        &self,
        min_batch_bytes: usize,
        inline_burst: usize,
        inline_per_sec: usize,
    ) {
        self.compress.by_blocked.store(true, Ordering::Relaxed);
        self.enable_compression_offload(min_batch_bytes, inline_burst, inline_per_sec);
    }

    /// How many compression jobs producer threads blocked for memory have
    /// done ([`enable_compression_help`](Self::enable_compression_help)).
    pub fn compression_jobs_by_blocked_senders(&self) -> u64 {
        self.compress.helped.load(Ordering::Relaxed)
    }

    /// Runs the compression jobs posted so far (not those posted while it
    /// runs: a blocked thread goes back to look at its memory in between)
    /// on a producer thread blocked for memory: the `help` of its wait.
    pub(crate) fn help_compress(&self) {
        let n = self.run_jobs(self.compress.queued.load(Ordering::SeqCst));
        self.compress.helped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Hands batches the I/O thread seals (lingered, flushed, closed) of at
    /// least `min_batch_bytes` uncompressed bytes to compression workers
    /// instead of compressing them on the I/O thread. Call it once a worker
    /// runs: a thread looping on
    /// [`wait_for_compression_jobs`](Self::wait_for_compression_jobs) and
    /// [`run_compression_jobs`](Self::run_compression_jobs) until
    /// [`stop_compression_workers`](Self::stop_compression_workers). Without
    /// a worker nothing handed off would ever be sent. Has no effect with
    /// `compression.type=none`.
    ///
    /// `inline_burst` and `inline_per_sec`: the I/O thread still
    /// compresses such batches itself within a budget of uncompressed
    /// bytes, refilled at `inline_per_sec` up to `inline_burst` (0, 0: hand
    /// off every batch). At a low rate, compressing costs it little, less
    /// than the two thread hand-offs would add to each batch's latency.
    pub fn enable_compression_offload(
        &self,
        min_batch_bytes: usize,
        inline_burst: usize,
        inline_per_sec: usize,
    ) {
        {
            let mut b = self
                .compress
                .inline
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            b.burst = inline_burst as f64;
            b.tokens = inline_burst as f64;
            b.per_sec = inline_per_sec as f64;
        }
        self.compress
            .min_bytes
            .store(min_batch_bytes.min(usize::MAX - 1), Ordering::Relaxed);
    }

    /// Compresses every batch handed off so far, on the calling thread,
    /// and tells the I/O thread about them (waking it through the installed
    /// [`IoWaker`](crate::IoWaker) when it is parked). Returns how many
    /// batches were compressed. Never blocks except on a partition's lock
    /// for a moment.
    ///
    /// The I/O thread hears of finished batches together: when no job is
    /// left, or once a request's worth (`max.request.size`) is ready. Told
    /// of each batch alone, it would send each in a request of its own
    /// while its connection has free slots: many small requests where one
    /// large one would do.
    pub fn run_compression_jobs(&self) -> usize {
        self.run_jobs(usize::MAX)
    }

    /// [`run_compression_jobs`](Self::run_compression_jobs), taking at most
    /// `limit` jobs.
    fn run_jobs(&self, limit: usize) -> usize {
        let compression = self.cfg.compression;
        let mut done = 0;
        let mut ready = Vec::new();
        let mut bytes = 0usize;
        for _ in 0..limit {
            let Some(job) = self.compress.next() else {
                break;
            };
            let sealed = self.compress_one(&job, compression);
            self.compress.backlog.fetch_sub(job.size, Ordering::Relaxed);
            if let Some(size) = sealed {
                done += 1;
                ready.push(job);
                bytes += size;
                if bytes >= self.cfg.max_request_size {
                    self.announce(&mut ready);
                    bytes = 0;
                }
            }
        }
        self.announce(&mut ready);
        done
    }

    /// Posts a `Sealed` notice for each job in `ready` (emptied), and wakes
    /// the I/O thread if it is parked.
    fn announce(&self, ready: &mut Vec<Job>) {
        if ready.is_empty() {
            return;
        }
        let ((), wake) = self.notices.with(|n| {
            n.list.extend(ready.drain(..).map(|job| Notice::Compressed {
                topic: job.topic,
                partition: job.partition,
            }))
        });
        if wake {
            self.wake_io();
        }
    }

    /// Compresses one job's batch, if it is still queued; returns its size.
    fn compress_one(&self, job: &Job, compression: Compression) -> Option<usize> {
        let builder = {
            let mut q = job.slot.lock();
            let b = q.sealed.iter_mut().find(|b| b.id == job.batch)?;
            match std::mem::replace(&mut b.sealed, Sealing::Running) {
                Sealing::Queued(builder) => builder,
                other => {
                    b.sealed = other;
                    return None;
                }
            }
        };
        // Without the lock: appends to the partition's next batch go on.
        let result = catch_unwind(AssertUnwindSafe(|| {
            builder.seal_at(compression, self.cfg.compression_level)
        }))
        .unwrap_or_else(|panic| {
            Err(EncodeError::Compression {
                codec: compression.name(),
                message: format!("panicked: {}", panic_message(&*panic)),
            })
        });
        let size = result.as_ref().map_or(0, SealedBatch::size_in_bytes);
        let mut q = job.slot.lock();
        // Gone meanwhile (purged, timed out, aborted): its records already
        // have their result; the bytes are dropped.
        let b = q.sealed.iter_mut().find(|b| b.id == job.batch)?;
        b.sealed = Sealing::Done(result);
        Some(size)
    }

    /// Blocks the calling compression worker until a job is posted or the
    /// workers are stopped. Returns false once stopped (the worker should
    /// return); jobs posted before the stop are still reported first.
    pub fn wait_for_compression_jobs(&self) -> bool {
        let mut g = self.compress.lock();
        loop {
            if !g.jobs.is_empty() {
                return true;
            }
            if g.stopped {
                return false;
            }
            g.waiting += 1;
            g = self.compress.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            g.waiting -= 1;
        }
    }

    /// Stops the compression workers: each returns from
    /// [`wait_for_compression_jobs`](Self::wait_for_compression_jobs) once
    /// no job is left. From now on the I/O thread compresses itself.
    pub fn stop_compression_workers(&self) {
        self.compress.min_bytes.store(usize::MAX, Ordering::Relaxed);
        self.compress.lock().stopped = true;
        self.compress.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A queue handing off batches of at least `min` bytes, with an I/O
    /// thread budget of `burst` bytes refilled at `per_sec`.
    fn queue(cap: usize, min: usize, burst: usize, per_sec: usize) -> CompressQueue {
        let q = CompressQueue::new(cap);
        q.min_bytes.store(min, Ordering::Relaxed);
        let mut b = q.inline.lock().unwrap();
        (b.burst, b.tokens, b.per_sec) = (burst as f64, burst as f64, per_sec as f64);
        drop(b);
        q
    }

    /// Which batches go to a worker: compressed ones of at least the
    /// threshold, while the backlog is under a request's worth — and,
    /// when blocked senders are the workers, only while one is blocked.
    #[test]
    fn batches_handed_off_are_compressed_large_and_not_too_many() {
        let zstd = Compression::Zstd;
        let q = queue(1_000, 100, 0, 0);
        assert!(!q.wants(Compression::None, 500), "nothing to compress");
        assert!(!q.wants(zstd, 99), "below the threshold");
        assert!(q.wants(zstd, 100), "at the threshold");
        q.backlog.store(999, Ordering::Relaxed);
        assert!(q.wants(zstd, 100));
        q.backlog.store(1_000, Ordering::Relaxed);
        assert!(!q.wants(zstd, 100), "workers a request's worth behind");
        q.backlog.store(0, Ordering::Relaxed);
        q.by_blocked.store(true, Ordering::Relaxed);
        assert!(!q.wants(zstd, 500), "no blocked sender to do it");
        q.note_blocked(true);
        assert!(q.wants(zstd, 500));
        q.note_blocked(false);
        assert!(!q.wants(zstd, 500));
        let off = CompressQueue::new(1_000);
        assert!(!off.wants(zstd, usize::MAX - 1), "offloading off");
    }

    /// A thread blocked for memory is offered work only when blocked
    /// senders are the workers and a job is queued (else it would spin
    /// through its wait instead of sleeping).
    #[test]
    fn blocked_senders_see_work_only_when_a_job_is_queued() {
        let q = queue(1_000, 100, 0, 0);
        q.queued.store(1, Ordering::SeqCst);
        assert!(!q.has_help_wanted(), "compression threads do the jobs");
        q.by_blocked.store(true, Ordering::Relaxed);
        assert!(q.has_help_wanted());
        q.queued.store(0, Ordering::SeqCst);
        assert!(!q.has_help_wanted(), "no job queued");
    }

    /// The I/O thread compresses itself what its budget covers (which
    /// spends it), hands off the rest, and the budget refills with time,
    /// up to its burst.
    #[test]
    fn the_io_threads_budget_spends_and_refills() {
        let zstd = Compression::Zstd;
        let q = queue(usize::MAX, 1, 1_000, 500);
        let t0 = kring_testclock::origin();
        q.refill(t0);
        assert!(!q.wants(zstd, 600), "within the budget");
        assert!(q.wants(zstd, 600), "400 left");
        assert!(!q.wants(zstd, 400));
        assert!(q.wants(zstd, 1));
        q.refill(t0 + Duration::from_millis(500));
        assert!(!q.wants(zstd, 250), "250 refilled in half a second");
        assert!(q.wants(zstd, 1));
        q.refill(t0 + Duration::from_secs(60));
        assert!(!q.wants(zstd, 1_000), "refilled to the burst");
        assert!(q.wants(zstd, 1), "not past it");
        q.refill(t0);
        assert!(q.wants(zstd, 1), "a clock going back refills nothing");
    }
}
