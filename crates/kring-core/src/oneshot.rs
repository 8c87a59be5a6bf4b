//! The one "set once, wake every waiter" primitive.
//!
//! Why one: a flush/close/purge signal ([`Signal`](crate::signal)), a
//! batch's result ([`BatchCompletion`](crate::delivery::BatchCompletion))
//! and a statistics request ([`StatisticsRequest`](crate::StatisticsRequest))
//! are all "a value the I/O thread settles once; threads block on it with
//! or without a timeout, tasks await it". Three hand-written copies of the
//! mutex + condvar + waker list could each get the lost-wake-up or
//! double-completion detail wrong in its own way; here it is written once:
//!
//! - the value and the wakers share one mutex, so a waiter that checked
//!   "not settled" under the lock cannot miss the wake-up;
//! - [`settle`](OneShot::settle) runs its closure only while unsettled: a
//!   second completion is rejected (`None`), never applied;
//! - wakers are run outside the lock and fenced ([`wake_fenced`]): an
//!   executor's panicking waker cannot unwind into the I/O thread;
//! - [`is_settled`](OneShot::is_settled) is one atomic load, no lock.
//!
//! The closure decides whether an update settles it: a batch split in parts
//! is updated once per part and settled by the last one.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Waker};
use std::time::Duration;

use crate::delivery::wake_fenced;

/// A poller's registration before its first poll (see
/// [`OneShot::poll_settled_in`]).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The value and the registered wakers, under one lock.
#[derive(Debug, Default)]
pub(crate) struct Slot<T> {
    /// The value being settled.
    pub(crate) value: T,
    wakers: Vec<Waker>,
    /// Threads blocked on the condition variable. Settling notifies it
    /// only when one is: `Condvar::notify_all` is a futex syscall even with
    /// nobody waiting, and most batches never have a blocked waiter.
    sleepers: u32,
}

/// A value settled once by one side and waited for by any number of
/// threads (blocking) and tasks (wakers). See the module docs.
pub(crate) struct OneShot<T> {
    settled: AtomicBool,
    slot: Mutex<Slot<T>>,
    cond: Condvar,
}

impl<T: Default> Default for OneShot<T> {
    fn default() -> Self {
        OneShot::new(T::default())
    }
}

impl<T> fmt::Debug for OneShot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneShot")
            .field("settled", &self.is_settled())
            .finish()
    }
}

impl<T> OneShot<T> {
    /// Unsettled, holding `value`.
    pub(crate) fn new(value: T) -> Self {
        OneShot {
            settled: AtomicBool::new(false),
            slot: Mutex::new(Slot {
                value,
                wakers: Vec::new(),
                sleepers: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// Whether it was settled (one atomic load).
    pub(crate) fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// The value, locked (poisoning ignored: the value is plain data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the value while unsettled: `f` returns whether this update
    /// settles it, and a result. Settling wakes every blocked thread and
    /// registered task, once. Returns `None` without calling `f` when it
    /// was settled already.
    pub(crate) fn settle<R>(&self, f: impl FnOnce(&mut T) -> (bool, R)) -> Option<R> {
        let (r, wakers, sleepers) = {
            let mut s = self.lock();
            if self.is_settled() {
                return None;
            }
            let (done, r) = f(&mut s.value);
            if !done {
                return Some(r);
            }
            self.settled.store(true, Ordering::Release);
            // Read under the lock that stored the result: a thread that saw
            // it unsettled counted itself before releasing the lock.
            (r, std::mem::take(&mut s.wakers), s.sleepers > 0)
        };
        if sleepers {
            self.cond.notify_all();
        }
        for w in wakers {
            wake_fenced(w);
        }
        Some(r)
    }

    /// Blocks until settled; returns the value locked.
    pub(crate) fn wait(&self) -> MutexGuard<'_, Slot<T>> {
        let mut g = self.lock();
        while !self.is_settled() {
            g.sleepers += 1;
            g = self.cond.wait(g).unwrap_or_else(|e| e.into_inner());
            g.sleepers -= 1;
        }
        g
    }

    /// Blocks up to `timeout`; returns the value locked and whether it is
    /// settled.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> (MutexGuard<'_, Slot<T>>, bool) {
        let mut g = self.lock();
        g.sleepers += 1;
        let (mut g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |_| !self.is_settled())
            .unwrap_or_else(|e| e.into_inner());
        g.sleepers -= 1;
        let done = self.is_settled();
        (g, done)
    }

    /// For a `Future::poll`: the value locked if settled, else registers
    /// the task's waker (once per task) and returns `None`.
    pub(crate) fn poll_settled(&self, cx: &mut Context<'_>) -> Option<MutexGuard<'_, Slot<T>>> {
        let mut g = self.lock();
        if self.is_settled() {
            return Some(g);
        }
        if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            g.wakers.push(cx.waker().clone());
        }
        None
    }

    /// [`poll_settled`](Self::poll_settled) for a poller that keeps its
    /// registration in `slot` (its index in the waker list, [`NO_SLOT`]
    /// before the first): a re-poll replaces that waker if it changed, and
    /// never searches the list.
    ///
    /// Why: every record's delivery handle of a batch waits on the batch's
    /// one `OneShot`. With a task per record (the common async shape),
    /// `poll_settled`'s search for an equal waker made registering the
    /// `n` records of a batch cost `n²/2` comparisons — 5 million for a
    /// batch of 3,000 small records — under the lock the I/O thread takes
    /// to settle the batch.
    pub(crate) fn poll_settled_in(
        &self,
        cx: &mut Context<'_>,
        slot: &mut u32,
    ) -> Option<MutexGuard<'_, Slot<T>>> {
        let mut g = self.lock();
        if self.is_settled() {
            return Some(g);
        }
        match g.wakers.get_mut(*slot as usize) {
            Some(w) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
            }
            None => {
                *slot = g.wakers.len() as u32;
                g.wakers.push(cx.waker().clone());
            }
        }
        None
    }

    /// Tasks registered and not woken yet (tests).
    #[cfg(test)]
    pub(crate) fn waiting_tasks(&self) -> usize {
        self.lock().wakers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use crate::test_wake::CountWake;

    /// A blocked thread and a registered task are each woken exactly once
    /// by the settling update; an update that does not settle wakes
    /// nobody; a second settle is rejected and leaves the value alone.
    #[test]
    fn wakes_sync_and_async_waiters_once_and_rejects_a_second_settle() {
        let o: Arc<OneShot<u32>> = Arc::new(OneShot::new(0));
        let count = Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(o.poll_settled(&mut cx).is_none());
        assert!(o.poll_settled(&mut cx).is_none(), "registered once");
        assert_eq!(o.waiting_tasks(), 1);
        let (g, done) = o.wait_timeout(Duration::ZERO);
        assert!(!done);
        drop(g);
        let o2 = o.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let v = o2.wait().value;
            let _ = tx.send(v);
        });
        asleep(&o, 1);

        // Not settling: the value changes, nobody wakes.
        assert_eq!(o.settle(|v| (false, std::mem::replace(v, 1))), Some(0));
        assert!(!o.is_settled());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);

        assert_eq!(
            o.settle(|v| {
                *v += 41;
                (true, "first")
            }),
            Some("first")
        );
        let seen = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(seen, Ok(42), "the blocked thread woke and saw the value");
        t.join().unwrap();
        assert_eq!(o.lock().sleepers, 0, "it counted itself out");
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task woke once");
        assert_eq!(o.waiting_tasks(), 0);

        let mut ran = false;
        assert_eq!(
            o.settle(|v| {
                ran = true;
                *v = 7;
                (true, "second")
            }),
            None
        );
        assert!(!ran, "a second settle is rejected before it runs");
        assert_eq!(o.lock().value, 42);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "no second wake-up");
        assert!(o.poll_settled(&mut cx).is_some());
        assert!(o.wait_timeout(Duration::ZERO).1);
    }

    /// Waits until `n` threads sleep on `o`'s condition variable (so that
    /// a settle finds them asleep, not about to look).
    fn asleep<T>(o: &OneShot<T>, n: u32) {
        for spins in 0.. {
            if o.lock().sleepers == n {
                return;
            }
            assert!(spins < 10_000_000, "the thread never blocked");
            std::thread::yield_now();
        }
    }

    /// A thread waiting with a timeout sleeps until the value settles (not
    /// returning before it), is woken by the settle, and counts itself out.
    #[test]
    fn a_wait_with_a_timeout_is_woken_by_the_settle() {
        let o: Arc<OneShot<u32>> = Arc::new(OneShot::new(0));
        let o2 = o.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let (g, done) = o2.wait_timeout(Duration::from_secs(600));
            let _ = tx.send((g.value, done));
        });
        asleep(&o, 1);
        assert!(rx.try_recv().is_err(), "returned before the settle");
        o.settle(|v| {
            *v = 5;
            (true, ())
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok((5, true)));
        t.join().unwrap();
        assert_eq!(o.lock().sleepers, 0);
    }
}
