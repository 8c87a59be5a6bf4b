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
//!
//! Why memory is handed over in turn ([`wake_next`](WaitList::wake_next))
//! while metadata wakes everyone ([`wake_all`](WaitList::wake_all)):
//! published metadata lets every waiting sender go on, but memory comes
//! back a batch at a time (a response frees hundreds) and is enough for a
//! few senders at most. Waking every waiting task at every release cost
//! `waiters × releases` wake-ups and re-polls — quadratic in a crowd of
//! tasks each awaiting a send. So, as the Java client's `BufferPool`
//! signals only its first waiter, a release wakes the oldest waiting task
//! unless it was woken already and has not polled since (it holds the
//! turn); a task that leaves the list while holding the turn (it got its
//! memory, failed, or was dropped) passes the turn to the next. A woken
//! task that still finds too little memory registers again, keeps its
//! place, and gives the turn back for the next release.

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
    /// Woken by [`WaitList::wake_next`] and not registered again since:
    /// this task holds the turn.
    woken: bool,
    /// Registration number: tells this entry's place in `order` from a
    /// stale place of an earlier entry in the same slab slot.
    ticket: u64,
}

/// Wakers of tasks waiting for one resource, with their deadlines.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    /// Entries registered; lets the release path skip the lock.
    len: AtomicUsize,
    slots: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    waiters: Slab<Waiter>,
    /// (slab key, ticket) in registration order; places whose entry left
    /// are dropped when they reach the front.
    order: std::collections::VecDeque<(usize, u64)>,
    next_ticket: u64,
}

impl Entries {
    /// The oldest entry not expired (expired ones were woken to fail),
    /// dropping the places of entries that left.
    fn first_waiting(&mut self) -> Option<usize> {
        while let Some(&(k, t)) = self.order.front() {
            if self.waiters.get(k).is_some_and(|w| w.ticket == t) {
                break;
            }
            self.order.pop_front();
        }
        self.order
            .iter()
            .copied()
            .find(|&(k, t)| {
                self.waiters
                    .get(k)
                    .is_some_and(|w| w.ticket == t && !w.expired)
            })
            .map(|(k, _)| k)
    }
}

impl WaitList {
    fn lock(&self) -> MutexGuard<'_, Entries> {
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
            if let Some(w) = g.waiters.get_mut(k) {
                if !w.waker.will_wake(waker) {
                    w.waker = waker.clone();
                }
                // Waiting again: the turn goes back (the caller re-checks
                // its resource next; a release after this lock wakes it).
                w.woken = false;
                return false;
            }
        }
        let ticket = g.next_ticket;
        g.next_ticket += 1;
        let k = g.waiters.insert(Waiter {
            waker: waker.clone(),
            deadline,
            expired: false,
            woken: false,
            ticket,
        });
        g.order.push_back((k, ticket));
        if g.order.len() > 2 * g.waiters.len() + 16 {
            // Places of entries that left behind a long-waiting front.
            let Entries { waiters, order, .. } = &mut *g;
            order.retain(|&(k, t)| waiters.get(k).is_some_and(|w| w.ticket == t));
        }
        *key = Some(k);
        self.len.fetch_add(1, Ordering::SeqCst);
        drop(g);
        // The caller re-checks its resource next; a release that finished
        // before this point is then seen, one after it sees `len > 0`.
        std::sync::atomic::fence(Ordering::SeqCst);
        true
    }

    /// Removes a task's entry (it proceeded, failed or was dropped). An
    /// entry that held the turn passes it to the next waiting task.
    pub(crate) fn remove(&self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            let mut g = self.lock();
            if let Some(w) = g.waiters.try_remove(k) {
                self.len.fetch_sub(1, Ordering::SeqCst);
                if w.woken {
                    let next = Self::take_turn(&mut g);
                    drop(g);
                    if let Some(w) = next {
                        wake_fenced(w);
                    }
                }
            }
        }
    }

    /// Whether the I/O thread found this entry's deadline passed.
    pub(crate) fn expired(&self, key: Option<usize>) -> bool {
        key.is_some_and(|k| self.lock().waiters.get(k).is_some_and(|w| w.expired))
    }

    /// Wakes every registered task (the resource changed). The wakers run
    /// outside the lock, each fenced.
    pub(crate) fn wake_all(&self) {
        if self.is_empty() {
            return;
        }
        let wakers: Vec<Waker> = self
            .lock()
            .waiters
            .iter()
            .map(|(_, w)| w.waker.clone())
            .collect();
        for w in wakers {
            wake_fenced(w);
        }
    }

    /// Some of the resource came back: wakes the oldest waiting task,
    /// unless it holds the turn already (woken, not polled since). See the
    /// module docs for why one, not all.
    pub(crate) fn wake_next(&self) {
        if self.is_empty() {
            return;
        }
        let next = Self::take_turn(&mut self.lock());
        if let Some(w) = next {
            wake_fenced(w);
        }
    }

    /// The waker of the oldest waiting task, marked as holding the turn;
    /// `None` if there is none or it holds the turn already.
    fn take_turn(g: &mut Entries) -> Option<Waker> {
        let k = g.first_waiting()?;
        let w = &mut g.waiters[k];
        if w.woken {
            return None;
        }
        w.woken = true;
        Some(w.waker.clone())
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
            for (_, w) in g.waiters.iter_mut() {
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

    /// `wake_next` wakes the oldest entry that is not expired, once until
    /// it registers again; leaving with the turn hands it on; places of
    /// entries that left behind a long-waiting front are compacted away
    /// without losing the order.
    #[test]
    fn wake_next_goes_in_registration_order() {
        let t0 = kring_testclock::origin();
        let later = t0 + Duration::from_secs(60);
        let l = WaitList::default();
        let counts: Vec<Arc<Count>> = (0..4)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let woken = |i: usize| counts[i].0.load(Ordering::SeqCst);
        let mut keys = [None, None, None, None];
        assert!(l.register(&mut keys[0], &wakers[0], t0));
        for i in 1..3 {
            assert!(l.register(&mut keys[i], &wakers[i], later));
        }
        // The first expired (woken by `expire`): the turn skips it.
        assert_eq!(l.expire(t0), Some(later));
        assert_eq!(woken(0), 1);
        l.wake_next();
        l.wake_next();
        assert_eq!((woken(1), woken(2)), (1, 0), "one turn at a time");
        // Registering again gives the turn back: the next release wakes
        // it again, still first.
        assert!(!l.register(&mut keys[1], &wakers[1], later));
        l.wake_next();
        assert_eq!((woken(1), woken(2)), (2, 0));
        // Leaving with the turn hands it on.
        l.remove(&mut keys[1]);
        assert_eq!(woken(2), 1);
        // Many short waits behind the front: compacted, order kept.
        for _ in 0..1000 {
            assert!(l.register(&mut keys[3], &wakers[3], later));
            l.remove(&mut keys[3]);
        }
        assert!(l.lock().order.len() <= 2 * 2 + 16 + 1);
        assert!(l.register(&mut keys[3], &wakers[3], later));
        l.remove(&mut keys[2]);
        assert_eq!(woken(3), 1, "the last one gets the turn");
        l.remove(&mut keys[0]);
        l.remove(&mut keys[3]);
        assert!(l.is_empty());
    }
}
