//! Tasks waiting without blocking: the async side of `buffer.memory` and
//! metadata waits.
//!
//! Why lists of wakers beside the condvars: a blocking sender parks its
//! thread on a condvar; an async sender must instead return `Pending` and
//! be woken by whoever frees what it waits for. Each resource keeps one
//! [`WaitList`]: the buffer pool's is woken when memory is released, the
//! topic table's when metadata is published, both at close. Every entry
//! also carries its `max.block.ms` deadline, and since the core never reads
//! the clock and an async sender must not need its executor's timer, the
//! I/O thread keeps that deadline: the sender announces it with a notice,
//! the core arms one timer at the earliest deadline, and when it fires
//! [`expire`](WaitList::expire) marks and wakes the entries that are due.
//!
//! Wake-ups are spurious-safe: a woken task re-runs its append and, if it
//! still cannot proceed, registers again. Nothing here allocates per record;
//! only a send that actually waits takes a slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use slab::Slab;

use crate::delivery::wake_fenced;

#[derive(Debug)]
struct Waiter {
    waker: Waker,
    deadline: Instant,
    /// The I/O thread saw the deadline pass.
    expired: bool,
}

/// Wakers of tasks waiting for one resource, with their deadlines.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    /// Entries registered; lets the release path skip the lock.
    len: AtomicUsize,
    slots: Mutex<Slab<Waiter>>,
}

impl WaitList {
    fn lock(&self) -> MutexGuard<'_, Slab<Waiter>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any task is registered (a `SeqCst` load: pairs with the
    /// fence a registering task issues before re-checking its resource).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Registers (or refreshes) a waiting task. `key` is its slot, `None`
    /// the first time. Returns whether the entry is new.
    pub(crate) fn register(
        &self,
        key: &mut Option<usize>,
        waker: &Waker,
        deadline: Instant,
    ) -> bool {
        let mut g = self.lock();
        if let Some(k) = *key {
            if let Some(w) = g.get_mut(k) {
                if !w.waker.will_wake(waker) {
                    w.waker = waker.clone();
                }
                return false;
            }
        }
        *key = Some(g.insert(Waiter {
            waker: waker.clone(),
            deadline,
            expired: false,
        }));
        self.len.fetch_add(1, Ordering::SeqCst);
        drop(g);
        // The caller re-checks its resource next; a release that finished
        // before this point is then seen, one after it sees `len > 0`.
        std::sync::atomic::fence(Ordering::SeqCst);
        true
    }

    /// Removes a task's entry (it proceeded, failed or was dropped).
    pub(crate) fn remove(&self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            let mut g = self.lock();
            if g.try_remove(k).is_some() {
                self.len.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Whether the I/O thread found this entry's deadline passed.
    pub(crate) fn expired(&self, key: Option<usize>) -> bool {
        key.is_some_and(|k| self.lock().get(k).is_some_and(|w| w.expired))
    }

    /// Wakes every registered task (the resource changed). The wakers run
    /// outside the lock, each fenced.
    pub(crate) fn wake_all(&self) {
        if self.is_empty() {
            return;
        }
        let wakers: Vec<Waker> = self.lock().iter().map(|(_, w)| w.waker.clone()).collect();
        for w in wakers {
            wake_fenced(w);
        }
    }

    /// Marks and wakes the tasks whose deadline is at or before `now`;
    /// returns the earliest deadline still to come.
    pub(crate) fn expire(&self, now: Instant) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        {
            let mut g = self.lock();
            for (_, w) in g.iter_mut() {
                if w.expired {
                    continue;
                }
                if w.deadline <= now {
                    w.expired = true;
                    due.push(w.waker.clone());
                } else {
                    next = Some(next.map_or(w.deadline, |n| n.min(w.deadline)));
                }
            }
        }
        for w in due {
            wake_fenced(w);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn expire_wakes_only_due_entries_and_reports_the_next() {
        let t0 = kring_testclock::origin();
        let l = WaitList::default();
        let (c1, c2) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (w1, w2) = (Waker::from(c1.clone()), Waker::from(c2.clone()));
        let (mut k1, mut k2) = (None, None);
        assert!(l.register(&mut k1, &w1, t0 + Duration::from_millis(10)));
        assert!(l.register(&mut k2, &w2, t0 + Duration::from_millis(20)));
        assert!(
            !l.register(&mut k1, &w1, t0),
            "a refresh is not a new entry"
        );
        assert_eq!(l.expire(t0), Some(t0 + Duration::from_millis(10)));
        let next = l.expire(t0 + Duration::from_millis(10));
        assert_eq!(next, Some(t0 + Duration::from_millis(20)));
        assert_eq!(c1.0.load(Ordering::SeqCst), 1);
        assert_eq!(c2.0.load(Ordering::SeqCst), 0);
        assert!(l.expired(k1) && !l.expired(k2));
        l.wake_all();
        assert_eq!(c2.0.load(Ordering::SeqCst), 1);
        l.remove(&mut k1);
        l.remove(&mut k2);
        assert!(l.is_empty() && k1.is_none());
        assert_eq!(l.expire(t0 + Duration::from_secs(1)), None);
    }
}
