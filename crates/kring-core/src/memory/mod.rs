//! `buffer.memory` accounting.
//!
//! Why by buffer capacity, not per record and not by `batch.size`: a batch
//! is charged its buffer's capacity — when it opens (a small buffer) and
//! again each time the buffer grows — and returns exactly that when it
//! completes. Charging `batch.size` per batch (the Java client's
//! `BufferPool`) lets a thousand mostly-empty batches of sparse partitions
//! exhaust the pool while holding a few KiB of records; charging per
//! record would put an atomic operation on every append. A buffer grows by
//! doubling, so a batch costs a few atomic operations however many records
//! it holds, and producer threads do not fight over the counter.
//!
//! When the pool is exhausted the producer thread blocks until batches
//! complete or its deadline passes; an async sender instead registers its
//! waker in `tasks` and returns `Pending` (see `wait`). The wait is the
//! producer thread's, not the I/O thread's; the deadline is computed by
//! the caller (this crate never reads the clock).
//!
//!
//! The line blocked threads wait in is `blocked`; the finished buffers
//! kept for reuse, and their size classes, are `spares`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::wait::WaitList;

mod blocked;
mod spares;

use blocked::Blocked;
pub(crate) use spares::round_up_to_class;
use spares::{Returned, Spares};

/// The byte budget shared by every open and queued batch.
#[derive(Debug)]
pub(crate) struct BufferPool {
    used: AtomicUsize,
    limit: usize,
    waiters: AtomicUsize,
    /// Threads blocked in [`reserve_blocking_helping`](Self::reserve_blocking_helping),
    /// in the order they blocked.
    blocked: Mutex<Blocked>,
    /// Async senders waiting for memory (woken by `release`).
    pub(crate) tasks: WaitList,
    /// Finished batch buffers kept for reuse, each charged by its capacity.
    spares: Mutex<Spares>,
    /// Capacity held in `spares` (all of it charged in `used`).
    spare_bytes: AtomicUsize,
    /// At most this much capacity is kept in `spares`.
    spare_limit: usize,
    /// Buffers the I/O thread handed back since it last sorted them into
    /// `spares`.
    returned: Returned,
    /// The producer is closing: blocked senders stop waiting.
    closed: AtomicBool,
    /// How many times a blocked thread went to sleep (tests count
    /// wake-ups with it).
    #[cfg(test)]
    sleeps: AtomicUsize,
}

impl BufferPool {
    pub(crate) fn new(limit: usize) -> Self {
        BufferPool {
            used: AtomicUsize::new(0),
            limit,
            waiters: AtomicUsize::new(0),
            blocked: Mutex::new(Blocked::default()),
            tasks: WaitList::default(),
            spares: Mutex::new(Spares::default()),
            spare_bytes: AtomicUsize::new(0),
            spare_limit: limit / 2,
            returned: Returned::default(),
            closed: AtomicBool::new(false),
            #[cfg(test)]
            sleeps: AtomicUsize::new(0),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently reserved (spares included).
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes reserved by batches: [`used`](Self::used) without the spares.
    pub(crate) fn held(&self) -> usize {
        self.used().saturating_sub(self.all_spare_bytes())
    }

    /// Threads blocked in
    /// [`reserve_blocking_helping`](Self::reserve_blocking_helping).
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    /// Reserves `n` bytes if they fit, giving up the spares if that makes
    /// them fit.
    pub(crate) fn try_reserve(&self, n: usize) -> bool {
        if self.try_reserve_unspared(n) {
            return true;
        }
        if self.all_spare_bytes() == 0 {
            return false;
        }
        self.drop_spares();
        self.try_reserve_unspared(n)
    }

    /// Reserves `n` bytes if they fit beside what is charged now.
    fn try_reserve_unspared(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }

    /// Charges `n` bytes even past the limit (a buffer that already grew
    /// more than predicted: the pool must never under-count).
    pub(crate) fn charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Returns `n` bytes and wakes blocked producers whose turn it is.
    /// Inlined for its test: a new batch that takes a spare releases
    /// nothing (twice), in a call each before.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        if n != 0 {
            self.release_some(n);
        }
    }

    fn release_some(&self, n: usize) {
        // SeqCst: pairs with the fence of a task registering in `tasks`,
        // and with a blocking thread's `waiters` increment (same
        // instruction as AcqRel on x86).
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_blocked();
        }
        self.tasks.wake_next(|| self.free_now());
    }

    /// What a reservation could get now: the unreserved bytes and the
    /// spares (which a reservation that does not fit gives up).
    pub(crate) fn free_now(&self) -> usize {
        self.limit.saturating_sub(self.used()) + self.all_spare_bytes()
    }
}

/// Remaining time until `deadline` as seen at `now`.
pub(crate) fn remaining(now: Instant, deadline: Instant) -> Duration {
    deadline.saturating_duration_since(now)
}

/// A thread blocked reserving `n` bytes of `p` (a long wait: a test
/// ends as soon as memory comes), returned once it counts as a waiter
/// (spinning on the counter with yields, no sleeping). Shared, as are
/// `sleeping_reserver` and `outcome`, by the tests of `blocked` and
/// `spares`.
#[cfg(test)]
fn blocked_reserver(p: &Arc<BufferPool>, n: usize) -> std::thread::JoinHandle<bool> {
    let p2 = Arc::clone(p);
    let t = std::thread::spawn(move || p2.reserve_blocking(n, Duration::from_secs(600)));
    while p.waiters.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    t
}

/// A thread blocked reserving `n` bytes of `p` for up to `wait`,
/// returned once it sleeps in its wait (the pool's `sleeps` reached
/// `asleep`); its result comes on the receiver (tests wait for it
/// with a bound: a thread left asleep fails the test, not hangs it).
#[cfg(test)]
fn sleeping_reserver(
    p: &Arc<BufferPool>,
    n: usize,
    wait: Duration,
    asleep: usize,
) -> std::sync::mpsc::Receiver<bool> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = Arc::clone(p);
    let t = std::thread::spawn(move || {
        let _ = tx.send(p2.reserve_blocking(n, wait));
    });
    while p.sleeps.load(Ordering::SeqCst) < asleep {
        assert!(!t.is_finished(), "the reserver did not block");
        std::thread::yield_now();
    }
    rx
}

/// The result of a [`sleeping_reserver`].
#[cfg(test)]
fn outcome(rx: &std::sync::mpsc::Receiver<bool>) -> bool {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a blocked thread was left waiting")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_release() {
        let p = BufferPool::new(100);
        assert!(p.try_reserve(60));
        assert!(!p.try_reserve(41));
        assert!(p.try_reserve(40));
        assert_eq!(p.used(), 100);
        p.release(60);
        assert_eq!(p.used(), 40);
        assert!(!p.reserve_blocking(61, Duration::ZERO));
        assert!(p.reserve_blocking(60, Duration::ZERO));
    }
}
