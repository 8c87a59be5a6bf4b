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
//! When the pool is exhausted the producer thread blocks on a condvar
//! until batches complete or its deadline passes; an async sender instead
//! registers its waker in `tasks` and returns `Pending` (see `wait`). The wait is the producer
//! thread's, not the I/O thread's; the deadline is computed by the caller
//! (this crate never reads the clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::wait::WaitList;

/// The byte budget shared by every open and queued batch.
#[derive(Debug)]
pub(crate) struct BufferPool {
    used: AtomicUsize,
    limit: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
    /// Async senders waiting for memory (woken by `release`).
    pub(crate) tasks: WaitList,
}

impl BufferPool {
    pub(crate) fn new(limit: usize) -> Self {
        BufferPool {
            used: AtomicUsize::new(0),
            limit,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
            tasks: WaitList::default(),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently reserved.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Threads blocked in [`reserve_blocking`](Self::reserve_blocking).
    #[cfg_attr(not(test), allow(dead_code))] // tests observe blocking
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    /// Reserves `n` bytes if they fit.
    pub(crate) fn try_reserve(&self, n: usize) -> bool {
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

    /// Reserves `n` bytes, blocking until they fit or `wait` has passed.
    /// Returns false on timeout.
    pub(crate) fn reserve_blocking(&self, n: usize, wait: Duration) -> bool {
        if self.try_reserve(n) {
            return true;
        }
        if wait.is_zero() {
            return false;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // The condition is evaluated under `lock`; `release` takes `lock`
        // before notifying, so a release between the check and the sleep
        // cannot be missed.
        let (_g, res) = self
            .cond
            .wait_timeout_while(guard, wait, |_| !self.try_reserve(n))
            .unwrap_or_else(|e| e.into_inner());
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        !res.timed_out()
    }

    /// Charges `n` bytes even past the limit (a buffer that already grew
    /// more than predicted: the pool must never under-count).
    pub(crate) fn charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Returns `n` bytes and wakes blocked producers.
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        // SeqCst: pairs with the fence of a task registering in `tasks`
        // (same instruction as AcqRel on x86).
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
            self.cond.notify_all();
        }
        self.tasks.wake_all();
    }
}

/// Remaining time until `deadline` as seen at `now`.
pub(crate) fn remaining(now: Instant, deadline: Instant) -> Duration {
    deadline.saturating_duration_since(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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

    #[test]
    fn blocked_reserver_is_released_by_another_thread() {
        let p = Arc::new(BufferPool::new(10));
        assert!(p.try_reserve(10));
        let p2 = p.clone();
        // A long wait: the test finishes as soon as the release happens.
        let t = std::thread::spawn(move || p2.reserve_blocking(5, Duration::from_secs(600)));
        // Wait until the thread is registered as a waiter (no sleeping; spin
        // on the counter with yields).
        while p.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        p.release(10);
        assert!(t.join().unwrap());
        assert_eq!(p.used(), 5);
    }
}
