//! Notices from producer threads to the I/O thread, and the wake-up
//! protocol.
//!
//! Why notices are about batches, not records: the I/O thread only needs to
//! know when a partition gets its first pending batch (to schedule a linger
//! deadline), when a batch is sealed (the partition becomes ready), when a
//! topic needs metadata, and when flush or close is requested. Appending to
//! an already open batch produces no notice and no wake-up.
//!
//! The wake-up protocol (lessons.md #4, librdkafka's "signalled" flag): the
//! I/O thread sets `parked` before it sleeps, after one last look at the
//! queue; a producer thread that pushes a notice swaps `parked` to false and
//! only if it *was* true tells its caller to wake the I/O thread. So an I/O
//! thread that is awake is never woken, and a parked one is woken once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::signal::Signal;

/// One event for the I/O thread.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A topic needs metadata (first use, or a sender is waiting for it).
    /// `seen` is the partition count the sender saw (0 while unknown), so
    /// the I/O thread can tell a stale request from a real one.
    TopicWanted { topic: u32, seen: u32 },
    /// A partition opened a batch: its next one (a partition's batches
    /// are announced in the order of their ids, each once, so the I/O
    /// thread counts them), in the flush generation of the last `Flush`
    /// or `Close` notice before it.
    ///
    /// Why no batch id and no generation: at many partitions a batch holds
    /// a record or two, and every new batch stores its notice into a line
    /// the I/O thread read last. A notice is 24 bytes (2.7 a line; it was
    /// 40, 1.6 a line, with both): `Opened` is the variant that sets the
    /// size, and the others fit beside its `Instant`'s unused nanosecond
    /// values (which also tell the variants apart), so whatever does not
    /// fit in 8 bytes is boxed (`Flush`, `Close`: rare) or made smaller
    /// (`Waiting`). A test holds the size.
    Opened {
        topic: u32,
        partition: u32,
        created: Instant,
    },
    /// A partition sealed the batch it announced last (it is ready to
    /// send). Pushed under the partition's lock, as `Opened` is, so it
    /// follows that batch's `Opened` and precedes the next one.
    Sealed { topic: u32, partition: u32 },
    /// A compression worker finished one of the partition's batches (the
    /// I/O thread sealed it before: it is not the open one): the
    /// partition is ready again.
    Compressed { topic: u32, partition: u32 },
    /// A sender is waiting for `buffer.memory`, which comes back only as
    /// batches complete: open batches whose linger would last much longer
    /// become due now (`ProducerCore::expire_lingers_beyond`).
    MemoryWanted,
    /// An async sender started waiting (for memory or metadata) until
    /// `deadline` (its `max.block.ms`, as a [`Stamp`]: see
    /// [`NoticeInner::stamp`]): the I/O thread wakes it then.
    Waiting { deadline: Stamp },
    /// A `Statistics` snapshot is wanted.
    Statistics(Arc<crate::producer::StatisticsRequest>),
    /// Flush every batch of a generation below the request's `gen`.
    Flush(Box<FlushRequest>),
    /// Flush everything (generations below `gen`), then stop.
    Close(Box<FlushRequest>),
    /// Fail every batch still in the accumulator with `Purged`.
    Purge { signal: Arc<Signal> },
    /// A transactional call (`crate::txn`).
    Txn(Box<TxnNotice>),
}

/// What a transactional call asks of the I/O thread.
#[derive(Debug)]
pub(crate) enum TxnNotice {
    /// Get the producer id for the `transactional.id` (init_transactions).
    Init(Arc<crate::txn::TxnOp>),
    /// A transaction began: batches announced from now belong to it.
    Begin,
    /// Commit consumer offsets with the transaction.
    Offsets {
        group: crate::txn::ConsumerGroupMetadata,
        offsets: Vec<crate::txn::OffsetToCommit>,
        op: Arc<crate::txn::TxnOp>,
    },
    /// Commit or abort the transaction: every batch of a generation below
    /// `gen` belongs to it (the gate closed with this notice).
    End {
        commit: bool,
        gen: u64,
        op: Arc<crate::txn::TxnOp>,
    },
}

/// Whether a batch may open now (see `crate::txn`): always without a
/// `transactional.id`; with one, only inside a transaction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnGate {
    #[default]
    Open,
    Closed,
}

/// A flush or close: the generation it waits for, and what to set when
/// done.
#[derive(Debug)]
pub(crate) struct FlushRequest {
    pub(crate) gen: u64,
    pub(crate) signal: Arc<Signal>,
}

/// A time as signed nanoseconds from the notice queue's base (the first
/// time ever stamped): 8 bytes where an `Instant` takes 16, and exact for
/// ±292 years around the base. For notices not sent per batch
/// (`Waiting`): stamping costs a few dozen instructions.
pub(crate) type Stamp = i64;

#[derive(Debug, Default)]
pub(crate) struct NoticeInner {
    pub(crate) list: Vec<Notice>,
    /// What [`Stamp`]s count from: the first time stamped (set under the
    /// lock, never changed after).
    base: Option<Instant>,
    /// Batches opened now belong to this flush generation.
    pub(crate) flush_gen: u64,
    pub(crate) closed: bool,
    /// Whether a batch may open (transactions: `crate::txn`).
    pub(crate) txn_gate: TxnGate,
    /// The core finished: nobody reads notices any more, so a flush,
    /// purge or close asked for now completes at once (see
    /// `ProducerCore::check_finished`).
    pub(crate) finished: bool,
}

impl NoticeInner {
    /// `t` as a [`Stamp`] (the first call sets the base).
    pub(crate) fn stamp(&mut self, t: Instant) -> Stamp {
        let base = *self.base.get_or_insert(t);
        match t.checked_duration_since(base) {
            Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            None => i64::try_from(base.duration_since(t).as_nanos()).map_or(i64::MIN, |n| -n),
        }
    }
}

/// The time `stamp` stands for, given the queue's `base`.
pub(crate) fn unstamp(base: Instant, stamp: Stamp) -> Instant {
    let d = std::time::Duration::from_nanos(stamp.unsigned_abs());
    if stamp >= 0 {
        base.checked_add(d).unwrap_or(base)
    } else {
        base.checked_sub(d).unwrap_or(base)
    }
}

/// The notice queue plus the parked flag.
#[derive(Debug, Default)]
pub(crate) struct NoticeQueue {
    inner: Mutex<NoticeInner>,
    parked: AtomicBool,
    closed: AtomicBool,
    /// A `MemoryWanted` notice is queued and not read yet: senders refused
    /// memory meanwhile do not queue another (see `push_memory_wanted`).
    memory_wanted: AtomicBool,
    /// How many times a producer thread asked for the I/O thread to be woken.
    wakes: AtomicU64,
}

impl NoticeQueue {
    fn lock(&self) -> MutexGuard<'_, NoticeInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the queue lock; if it pushed anything, returns
    /// whether the caller must wake the I/O thread.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut NoticeInner) -> R) -> (R, bool) {
        let mut g = self.lock();
        let before = g.list.len();
        let r = f(&mut g);
        let pushed = g.list.len() > before;
        drop(g);
        (r, pushed && self.unpark())
    }

    /// Pushes one notice; returns whether to wake the I/O thread.
    pub(crate) fn push(&self, n: Notice) -> bool {
        self.with(|i| i.list.push(n)).1
    }

    /// Whether this push found the I/O thread parked (and now owns its
    /// wake-up). Called after the push's lock was released.
    ///
    /// Why a load before the swap: the swap is a locked write to a line the
    /// I/O thread also writes, paid by every notice (at 10,000 partitions,
    /// a notice per record or two) although the I/O thread is rarely
    /// parked. The load is enough to see a park that matters: the I/O
    /// thread sets `parked` before it takes the queue lock to look for
    /// notices (`prepare_park`), so either it took the lock after this
    /// push and sees the notice, or before, and this load (after this
    /// push took the same lock) sees `parked`.
    fn unpark(&self) -> bool {
        if !self.parked.load(Ordering::SeqCst) {
            return false;
        }
        let was = self.parked.swap(false, Ordering::SeqCst);
        if was {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
        was
    }

    /// Asks the I/O thread for `buffer.memory` (`Notice::MemoryWanted`)
    /// unless a request is already queued and not read yet: a sender
    /// refused memory again and again (`try_send` in a loop, an async
    /// send re-polled) queues one notice and wakes the I/O thread at most
    /// once until the I/O thread reads it. The queued request covers
    /// every later one: the I/O thread acts on it after reading every
    /// notice of its turn (`ProducerCore::handle_wakeup`), so on every
    /// batch announced before it. Returns whether to wake the I/O thread.
    pub(crate) fn push_memory_wanted(&self) -> bool {
        if self.memory_wanted.load(Ordering::Acquire)
            || self.memory_wanted.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        self.push(Notice::MemoryWanted)
    }

    /// Takes every pending notice, swapping buffers with `into` (which
    /// must be empty) to keep allocations. Returns the base of their
    /// [`Stamp`]s.
    pub(crate) fn drain_into(&self, into: &mut Vec<Notice>) -> Option<Instant> {
        debug_assert!(into.is_empty());
        let mut g = self.lock();
        // Under the lock: a request pushed after this drain is read at the
        // next one; one whose flag was set before but pushed after is
        // read then too (a second request meanwhile is harmless).
        self.memory_wanted.store(false, Ordering::Release);
        std::mem::swap(&mut g.list, into);
        g.base
    }

    /// Marks the I/O thread parked unless notices are pending. Returns
    /// false (and stays unparked) if there are notices to handle.
    pub(crate) fn prepare_park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        let pending = !self.lock().list.is_empty();
        if pending {
            self.parked.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Clears the parked flag (the I/O thread woke up for another reason).
    pub(crate) fn unparked(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// Wake-ups requested by producer threads so far.
    pub(crate) fn wake_count(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Fast, lock-free check of the closed flag (authoritative check is
    /// under the lock, in `with`).
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_closed(&self, inner: &mut NoticeInner) {
        inner.closed = true;
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_only_when_parked_and_once() {
        let q = NoticeQueue::default();
        assert!(
            !q.push(Notice::TopicWanted { topic: 0, seen: 0 }),
            "awake: no wake"
        );
        assert!(!q.prepare_park(), "pending notices: do not park");
        let mut v = vec![];
        q.drain_into(&mut v);
        assert_eq!(v.len(), 1);
        assert!(q.prepare_park());
        assert!(
            q.push(Notice::TopicWanted { topic: 1, seen: 0 }),
            "parked: wake"
        );
        assert!(
            !q.push(Notice::TopicWanted { topic: 2, seen: 0 }),
            "second push: already woken"
        );
        assert_eq!(q.wake_count(), 1);
        let (_, wake) = q.with(|_| ());
        assert!(!wake, "nothing pushed, no wake");
        // Parked again: a call that pushes nothing neither wakes it nor
        // takes the wake-up from the next push.
        v.clear();
        q.drain_into(&mut v);
        assert!(q.prepare_park());
        let (_, wake) = q.with(|_| ());
        assert!(!wake, "parked, nothing pushed: no wake");
        assert!(q.push(Notice::TopicWanted { topic: 3, seen: 0 }));
        assert_eq!(q.wake_count(), 2);
    }

    /// The notice every new batch stores into a line the I/O thread read
    /// last: 24 bytes, 2.7 a line (see `Notice::Opened`).
    #[test]
    fn a_notice_takes_24_bytes() {
        assert!(
            std::mem::size_of::<Notice>() <= 24,
            "{} bytes",
            std::mem::size_of::<Notice>()
        );
    }

    /// Stamps come back as the times they stand for, before the base as
    /// well as after it (a sender may read its clock before another that
    /// stamps first).
    #[test]
    fn stamps_round_trip_around_the_base() {
        let base = kring_testclock::origin() + std::time::Duration::from_secs(3600);
        let mut inner = NoticeInner::default();
        assert_eq!(inner.stamp(base), 0);
        for ns in [1u64, 999_999_999, 1_000_000_001, 3_600_000_000_123] {
            let d = std::time::Duration::from_nanos(ns);
            for t in [base + d, base - d] {
                let s = inner.stamp(t);
                assert_eq!(s.unsigned_abs(), ns);
                assert_eq!(unstamp(base, s), t);
            }
        }
    }

    /// A producer racing with the I/O thread going to sleep: either the I/O
    /// thread sees the notice in prepare_park, or the producer sees the
    /// parked flag. Never neither.
    #[test]
    fn no_lost_wakeup_under_race() {
        for _ in 0..200 {
            let q = Arc::new(NoticeQueue::default());
            let q2 = q.clone();
            let t = std::thread::spawn(move || q2.push(Notice::TopicWanted { topic: 0, seen: 0 }));
            let parked = q.prepare_park();
            let woke = t.join().unwrap();
            assert!(!parked || woke, "parked without being woken");
        }
    }
}
