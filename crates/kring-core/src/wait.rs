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
//! Why memory is handed out in turn ([`wake_next`](WaitList::wake_next))
//! while metadata wakes everyone ([`wake_all`](WaitList::wake_all)):
//! published metadata lets every waiting sender go on, but memory comes
//! back a batch at a time (a response frees hundreds) and is enough for a
//! few senders at most. Waking every waiting task at every release cost
//! `waiters × releases` wake-ups and re-polls — quadratic in a crowd of
//! tasks each awaiting a send (200 tasks: 22,000 wake-ups). So a release
//! wakes the oldest waiting tasks whose needs fit in what is free, less
//! what tasks woken earlier and not polled since still claim — and at
//! least the oldest one if no woken task holds a claim, so that a wait
//! never depends on that estimate. A woken task that leaves the list (it
//! got its memory, failed, or was dropped) gives up its claim, and the
//! next ones are woken if it leaves room; one that still finds too little
//! memory registers again and keeps its place. The Java client's
//! `BufferPool` also serves its waiters first come, first served.
//!
//! But a waiting task does not only need memory: a batch opened for its
//! partition by another sender has room it can use without any. Waking
//! only by memory left those tasks asleep while the batches they could
//! fill waited out their linger half empty (with 64 KiB of
//! `buffer.memory`, a third more wall time than waking everyone). So a
//! task that got its memory and appended wakes the oldest task waiting
//! with a record for the same partition
//! ([`wake_target`](WaitList::wake_target)), which does the same if it
//! fits. `benches/async_crowd.rs` in the `kring` crate measures both.

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
    /// it holds a claim on `need`.
    woken: bool,
    /// What the task waits for (bytes of memory; 0 for metadata).
    need: usize,
    /// The partition its record goes to (`topic << 32 | partition`), for
    /// [`WaitList::wake_target`].
    target: u64,
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
    /// The needs of the woken entries, summed.
    claimed: usize,
    /// How many entries are woken.
    woken: usize,
    /// Places by target, oldest first (stale ones dropped lazily, as in
    /// `order`).
    by_target: std::collections::HashMap<u64, TargetPlaces>,
}

/// The places of the entries waiting with a record for one partition.
///
/// Why a deque with a compaction threshold: a crowd of tasks waiting for
/// one partition (a hot key) registers and leaves one by one, and
/// [`WaitList::wake_target`] runs once per task that waited and appended.
/// Walking every place at each of those (as a `Vec::retain` did) cost
/// `tasks²` (10,000 tasks over 16 partitions: a quarter of the
/// `async_crowd` bench's samples). Places of entries that left are
/// popped from the front as they reach it, and the rest are compacted
/// when the deque doubles past what was live at the last compaction: a
/// registration costs O(1) amortized, and a wake walks only the places
/// ahead of the task it wakes (tasks woken and not polled yet, and places
/// of tasks that left behind one of them, which the compaction bounds).
#[derive(Debug, Default)]
struct TargetPlaces {
    places: std::collections::VecDeque<(usize, u64)>,
    /// Compact when `places` grows past this (at least 64).
    compact_above: usize,
}

impl TargetPlaces {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.places.len()
    }
}

impl Entries {
    /// Marks entries woken, oldest first, while their needs fit in
    /// `free` less what woken entries claim — at least the oldest one if
    /// none is woken — and returns their wakers. Expired entries (woken
    /// to fail) are passed over; places of entries that left are dropped
    /// from the front.
    fn take_turns(&mut self, free: usize, at_least_one: bool) -> Vec<Waker> {
        while let Some(&(k, t)) = self.order.front() {
            if self.waiters.get(k).is_some_and(|w| w.ticket == t) {
                break;
            }
            self.order.pop_front();
        }
        let mut budget = free.saturating_sub(self.claimed);
        let mut none_woken = at_least_one || self.woken == 0;
        let mut out = Vec::new();
        for &(k, t) in &self.order {
            let Some(w) = self.waiters.get_mut(k) else {
                continue;
            };
            if w.ticket != t || w.expired || w.woken {
                continue;
            }
            if w.need > budget && !none_woken {
                break;
            }
            none_woken = false;
            budget = budget.saturating_sub(w.need);
            w.woken = true;
            self.woken += 1;
            self.claimed += w.need;
            out.push(w.waker.clone());
            if budget == 0 {
                break;
            }
        }
        out
    }

    /// Notes entry `k` (registration `ticket`) under `target`.
    fn index_target(&mut self, target: u64, k: usize, ticket: u64) {
        let t = self.by_target.entry(target).or_default();
        t.places.push_back((k, ticket));
        if t.places.len() > t.compact_above.max(64) {
            let waiters = &self.waiters;
            t.places
                .retain(|&(k, ticket)| is_waiting(waiters, k, ticket, target));
            t.compact_above = 2 * t.places.len();
        }
    }

    /// Gives up a woken entry's claim (it polled again, or left).
    fn unclaim(&mut self, need: usize) {
        self.woken -= 1;
        self.claimed -= need;
    }
}

/// Whether place `(k, ticket)` still holds an entry waiting for `target`
/// (it has not left, and its record has not moved to another partition).
fn is_waiting(waiters: &Slab<Waiter>, k: usize, ticket: u64, target: u64) -> bool {
    waiters
        .get(k)
        .is_some_and(|w| w.ticket == ticket && w.target == target)
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
        need: usize,
        target: u64,
    ) -> bool {
        let mut g = self.lock();
        if let Some(k) = *key {
            if let Some(w) = g.waiters.get_mut(k) {
                if !w.waker.will_wake(waker) {
                    w.waker = waker.clone();
                }
                // Waiting again: its claim goes (the caller re-checks its
                // resource next; a release after this lock wakes it).
                let was_woken = std::mem::take(&mut w.woken);
                let old = std::mem::replace(&mut w.need, need);
                let moved = std::mem::replace(&mut w.target, target) != target;
                let ticket = w.ticket;
                if was_woken {
                    g.unclaim(old);
                }
                if moved {
                    g.index_target(target, k, ticket);
                }
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
            need,
            target,
            ticket,
        });
        g.order.push_back((k, ticket));
        g.index_target(target, k, ticket);
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

    /// Removes a task's entry (it proceeded, failed or was dropped). A
    /// woken entry gives up its claim: the next waiting tasks are woken
    /// if that leaves room in `free()` (what is free now).
    pub(crate) fn remove(&self, key: &mut Option<usize>, free: impl FnOnce() -> usize) {
        if let Some(k) = key.take() {
            let mut g = self.lock();
            if let Some(w) = g.waiters.try_remove(k) {
                self.len.fetch_sub(1, Ordering::SeqCst);
                if g.waiters.is_empty() {
                    // Every place left is stale.
                    g.order.clear();
                    g.by_target.clear();
                }
                if w.woken {
                    g.unclaim(w.need);
                    let next = g.take_turns(free(), false);
                    drop(g);
                    for w in next {
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

    /// A task that waited for memory appended its record for `target` (see
    /// [`Waiter::target`]), likely into a batch it opened: wakes the
    /// oldest task waiting with a record for the same partition, which
    /// may fit in the batch's room without memory of its own (and, if it
    /// does, wakes the next one the same way). Without this, memory
    /// handed out in turn went to new batches that the tasks able to fill
    /// them slept through, and the batches waited out their linger half
    /// empty.
    pub(crate) fn wake_target(&self, target: u64) {
        if self.is_empty() {
            return;
        }
        let waker = {
            let mut g = self.lock();
            let Entries {
                waiters, by_target, ..
            } = &mut *g;
            let Some(t) = by_target.get_mut(&target) else {
                return;
            };
            while let Some(&(k, ticket)) = t.places.front() {
                if is_waiting(waiters, k, ticket, target) {
                    break;
                }
                t.places.pop_front();
            }
            if t.places.is_empty() {
                by_target.remove(&target);
                return;
            }
            // The oldest not woken already (woken or expired entries
            // ahead of it keep their places until they leave).
            let next = t.places.iter().find_map(|&(k, ticket)| {
                if !is_waiting(waiters, k, ticket, target) {
                    return None;
                }
                let w = &waiters[k];
                (!w.woken && !w.expired).then_some(k)
            });
            let Some(k) = next else {
                return;
            };
            let w = &mut waiters[k];
            w.woken = true;
            let (waker, need) = (w.waker.clone(), w.need);
            g.woken += 1;
            g.claimed += need;
            waker
        };
        wake_fenced(waker);
    }

    /// Some of the resource came back (`free()` is what is free now):
    /// wakes the oldest waiting tasks whose needs fit, or the oldest one
    /// if no woken task holds a claim. See the module docs for why not
    /// all.
    pub(crate) fn wake_next(&self, free: impl FnOnce() -> usize) {
        if self.is_empty() {
            return;
        }
        let next = self.lock().take_turns(free(), false);
        for w in next {
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
    use std::time::Duration;

    use crate::test_wake::CountWake as Count;

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
        assert!(l.register(&mut k1, &w1, t0 + Duration::from_millis(10), 0, 0));
        assert!(l.register(&mut k2, &w2, t0 + Duration::from_millis(20), 0, 0));
        assert!(
            !l.register(&mut k1, &w1, t0, 0, 0),
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
        l.remove(&mut k1, || 0);
        l.remove(&mut k2, || 0);
        assert!(l.is_empty() && k1.is_none());
        assert_eq!(l.expire(t0 + Duration::from_secs(1)), None);
    }

    /// `wake_next` wakes the oldest entries that are not expired while
    /// their needs fit in what is free less what woken ones claim (at
    /// least the oldest if none is woken); registering again or leaving
    /// gives the claim up; places of entries that left behind a
    /// long-waiting front are compacted away without losing the order.
    #[test]
    fn wake_next_goes_in_registration_order_within_what_is_free() {
        let t0 = kring_testclock::origin();
        let later = t0 + Duration::from_secs(60);
        let l = WaitList::default();
        let counts: Vec<Arc<Count>> = (0..5)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let woken = |i: usize| counts[i].0.load(Ordering::SeqCst);
        let mut keys = [None; 5];
        assert!(l.register(&mut keys[0], &wakers[0], t0, 10, 0));
        for i in 1..4 {
            assert!(l.register(&mut keys[i], &wakers[i], later, 10, 0));
        }
        // The first expired (woken by `expire`): it is passed over.
        assert_eq!(l.expire(t0), Some(later));
        assert_eq!(woken(0), 1);
        // Nothing free, nobody woken: the oldest anyway.
        l.wake_next(|| 0);
        assert_eq!((woken(1), woken(2)), (1, 0));
        // 25 free, 10 claimed by the woken one: room for one more.
        l.wake_next(|| 25);
        assert_eq!((woken(1), woken(2), woken(3)), (1, 1, 0));
        // Both still claim theirs: nothing more.
        l.wake_next(|| 25);
        assert_eq!(woken(3), 0);
        // The first woken found too little and waits again (keeping its
        // place): its claim goes, and the next release wakes it first.
        assert!(!l.register(&mut keys[1], &wakers[1], later, 10, 0));
        l.wake_next(|| 20);
        assert_eq!((woken(1), woken(3)), (2, 0));
        // Leaving with a claim wakes the next if it fits (10 of 25 free
        // still claimed by the first).
        l.remove(&mut keys[2], || 15);
        assert_eq!(woken(3), 0, "does not fit");
        assert!(l.register(&mut keys[2], &wakers[2], later, 10, 0));
        l.remove(&mut keys[2], || 0);
        l.wake_next(|| 25);
        assert_eq!(woken(3), 1);
        // Many short waits behind the front: compacted, order kept.
        for _ in 0..1000 {
            assert!(l.register(&mut keys[4], &wakers[4], later, 10, 0));
            l.remove(&mut keys[4], || 0);
        }
        assert!(l.lock().order.len() <= 2 * 3 + 16 + 1);
        assert!(l.register(&mut keys[4], &wakers[4], later, 10, 0));
        l.remove(&mut keys[1], || 0);
        l.remove(&mut keys[3], || 0);
        assert_eq!(woken(4), 1, "the last one is woken once the others left");
        l.remove(&mut keys[0], || 0);
        l.remove(&mut keys[4], || 0);
        assert!(l.is_empty());
        let g = l.lock();
        assert_eq!((g.woken, g.claimed), (0, 0));
    }

    /// `wake_target` wakes the oldest task waiting with a record for that
    /// partition (not one woken already), whatever its place among the
    /// others, and follows a task whose record moved to another partition.
    #[test]
    fn wake_target_wakes_the_oldest_of_that_partition() {
        let later = kring_testclock::origin() + Duration::from_secs(60);
        let l = WaitList::default();
        let counts: Vec<Arc<Count>> = (0..4)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let woken = |i: usize| counts[i].0.load(Ordering::SeqCst);
        let mut keys = [None; 4];
        for (i, target) in [7, 9, 7, 7].into_iter().enumerate() {
            assert!(l.register(&mut keys[i], &wakers[i], later, 10, target));
        }
        l.wake_target(7);
        assert_eq!([woken(0), woken(1), woken(2), woken(3)], [1, 0, 0, 0]);
        l.wake_target(7);
        assert_eq!([woken(0), woken(2), woken(3)], [1, 1, 0]);
        // The fourth's record now goes to partition 9; the second, woken,
        // is passed over.
        assert!(!l.register(&mut keys[3], &wakers[3], later, 10, 9));
        l.wake_target(9);
        assert_eq!([woken(1), woken(3)], [1, 0]);
        l.wake_target(9);
        assert_eq!(woken(3), 1);
        l.wake_target(7);
        assert_eq!(woken(3), 1, "no longer waiting for 7");
        for k in &mut keys {
            l.remove(k, || 0);
        }
        let g = l.lock();
        assert_eq!((g.woken, g.claimed), (0, 0));
    }

    /// One release wakes every waiting task whose need fits, not only the
    /// first: three tasks of 10 in 30 free are woken at once.
    #[test]
    fn a_release_wakes_everyone_that_fits() {
        let later = kring_testclock::origin() + Duration::from_secs(60);
        let l = WaitList::default();
        let (counts, wakers) = crate::test_wake::counted_wakers(4);
        let mut keys = [None; 4];
        for i in 0..4 {
            assert!(l.register(&mut keys[i], &wakers[i], later, 10, 0));
        }
        l.wake_next(|| 30);
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 1, 1, 0]);
        assert_eq!(l.lock().claimed, 30);
        for k in &mut keys {
            l.remove(k, || 0);
        }
    }

    /// A task polled again with another waker (it moved to another
    /// executor task, or its future was re-polled from a `select`) is
    /// woken through the new one, and the old one is not woken.
    #[test]
    fn a_refreshed_entry_is_woken_through_its_new_waker() {
        let later = kring_testclock::origin() + Duration::from_secs(60);
        let l = WaitList::default();
        let (counts, wakers) = crate::test_wake::counted_wakers(2);
        let mut key = None;
        assert!(l.register(&mut key, &wakers[0], later, 10, 3));
        assert!(!l.register(&mut key, &wakers[1], later, 10, 3));
        l.wake_next(|| 0);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 0);
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 1);
        assert!(!l.register(&mut key, &wakers[1], later, 10, 3));
        l.wake_target(3);
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 2);
        l.expire(later);
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 3);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 0);
        l.remove(&mut key, || 0);
    }

    /// A task whose record moved to another partition before it was
    /// woken is not woken for the old one.
    #[test]
    fn a_moved_task_is_not_woken_for_its_old_partition() {
        let later = kring_testclock::origin() + Duration::from_secs(60);
        let l = WaitList::default();
        let (counts, wakers) = crate::test_wake::counted_wakers(1);
        let mut key = None;
        assert!(l.register(&mut key, &wakers[0], later, 10, 7));
        assert!(!l.register(&mut key, &wakers[0], later, 10, 9));
        l.wake_target(7);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 0);
        l.wake_target(9);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 1);
        l.remove(&mut key, || 0);
    }

    /// Places of entries that left stay bounded by the entries still
    /// waiting, in registration order and by partition, even when many
    /// leave at once behind a long-waiting front and when more than the
    /// compaction threshold wait for one partition; the compaction keeps
    /// the live ones (each is still woken for its partition, oldest
    /// first).
    #[test]
    fn places_of_entries_that_left_stay_bounded() {
        let later = kring_testclock::origin() + Duration::from_secs(60);
        let l = WaitList::default();
        let (counts, wakers) = crate::test_wake::counted_wakers(201);
        let mut keys = [None; 201];
        // 70 wait for partition 7, then 130 for 8, which leave at once.
        for i in 0..200 {
            let target = if i < 70 { 7 } else { 8 };
            assert!(l.register(&mut keys[i], &wakers[i], later, 10, target));
        }
        for k in &mut keys[70..200] {
            l.remove(k, || 0);
        }
        let bounds_hold = |live: usize| {
            let g = l.lock();
            let order = g.order.len();
            let by_target = g.by_target.get(&7).map_or(0, |p| p.len());
            assert!(order <= 2 * live + 16 + 1, "order {order}, live {live}");
            assert!(
                by_target <= 2 * live + 64 + 1,
                "by target {by_target}, live {live}"
            );
        };
        for _ in 0..1000 {
            assert!(l.register(&mut keys[200], &wakers[200], later, 10, 7));
            bounds_hold(71);
            l.remove(&mut keys[200], || 0);
        }
        for i in 0..70 {
            l.wake_target(7);
            let woken: Vec<usize> = counts[..70]
                .iter()
                .map(|c| c.0.load(Ordering::SeqCst))
                .collect();
            assert!(woken[..=i].iter().all(|&n| n == 1), "{i}: {woken:?}");
            assert!(woken[i + 1..].iter().all(|&n| n == 0), "{i}: {woken:?}");
        }
        for k in &mut keys {
            l.remove(k, || 0);
        }
        let g = l.lock();
        assert_eq!((g.woken, g.claimed), (0, 0));
        assert!(g.order.is_empty() && g.by_target.is_empty());
    }

    /// A task whose deadline passed (woken by `expire` to fail) is passed
    /// over by `wake_target`: the next one waiting for the partition is
    /// woken.
    #[test]
    fn wake_target_passes_over_an_expired_task() {
        let t0 = kring_testclock::origin();
        let later = t0 + Duration::from_secs(60);
        let l = WaitList::default();
        let (counts, wakers) = crate::test_wake::counted_wakers(2);
        let (mut k0, mut k1) = (None, None);
        assert!(l.register(&mut k0, &wakers[0], t0, 10, 7));
        assert!(l.register(&mut k1, &wakers[1], later, 10, 7));
        assert_eq!(l.expire(t0), Some(later));
        l.wake_target(7);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 1, "by expire only");
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 1);
        assert_eq!(l.lock().claimed, 10);
        l.remove(&mut k0, || 0);
        l.remove(&mut k1, || 0);
    }
}
