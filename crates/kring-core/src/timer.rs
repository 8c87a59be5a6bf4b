//! The deadline queue: every timer of the core (linger, retry backoff,
//! delivery timeout, request timeout, reconnect backoff, metadata refresh)
//! in one indexed binary min-heap.
//!
//! Why a heap with handles rather than a plain `BinaryHeap`: a waiting
//! partition must be removable when the event it waits for happens early (a
//! batch fills before its linger expires; a response arrives before its
//! request times out). With lazy deletion a busy producer would accumulate
//! one dead entry per batch; here `cancel` and `reschedule` are
//! `O(log n)` and the heap only ever holds live timers, so
//! [`peek`](DeadlineQueue::peek) is exact (an idle producer reports only the
//! timers it really has, lessons.md #4).
//!
//! Handles carry a generation, so cancelling a timer that already fired (or
//! whose slot was reused) is a harmless no-op rather than cancelling a
//! stranger.

use std::time::Instant;

/// A handle to a scheduled timer. Stale handles (fired or cancelled) are
/// detected by generation and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TimerHandle {
    slot: u32,
    gen: u32,
}

const FREE: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<K> {
    deadline: Instant,
    key: Option<K>,
    /// Position in `heap`, or `FREE`.
    pos: u32,
    gen: u32,
}

/// Indexed min-heap of `(deadline, key)` with cancellable handles.
#[derive(Debug)]
pub(crate) struct DeadlineQueue<K> {
    slots: Vec<Slot<K>>,
    free: Vec<u32>,
    heap: Vec<u32>,
}

impl<K: Copy> DeadlineQueue<K> {
    pub(crate) fn new() -> Self {
        DeadlineQueue {
            slots: Vec::new(),
            free: Vec::new(),
            heap: Vec::new(),
        }
    }

    /// Number of live timers.
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and debug assertions
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Schedules `key` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, key: K) -> TimerHandle {
        let slot = match self.free.pop() {
            Some(s) => {
                let e = &mut self.slots[s as usize];
                e.deadline = deadline;
                e.key = Some(key);
                s
            }
            None => {
                self.slots.push(Slot {
                    deadline,
                    key: Some(key),
                    pos: FREE,
                    gen: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let pos = self.heap.len();
        self.heap.push(slot);
        self.slots[slot as usize].pos = pos as u32;
        self.sift_up(pos);
        TimerHandle {
            slot,
            gen: self.slots[slot as usize].gen,
        }
    }

    fn live(&self, h: TimerHandle) -> bool {
        self.slots
            .get(h.slot as usize)
            .is_some_and(|s| s.gen == h.gen && s.pos != FREE)
    }

    /// The deadline of a live timer.
    pub(crate) fn deadline(&self, h: TimerHandle) -> Option<Instant> {
        self.live(h).then(|| self.slots[h.slot as usize].deadline)
    }

    /// Cancels a timer; returns its key if it was still live.
    pub(crate) fn cancel(&mut self, h: TimerHandle) -> Option<K> {
        if !self.live(h) {
            return None;
        }
        let pos = self.slots[h.slot as usize].pos as usize;
        Some(self.remove_at(pos))
    }

    /// Moves a live timer to `deadline`; returns false for a stale handle.
    pub(crate) fn reschedule(&mut self, h: TimerHandle, deadline: Instant) -> bool {
        if !self.live(h) {
            return false;
        }
        let s = &mut self.slots[h.slot as usize];
        let earlier = deadline < s.deadline;
        s.deadline = deadline;
        let pos = s.pos as usize;
        if earlier {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
        true
    }

    /// The earliest deadline.
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.first().map(|&s| self.slots[s as usize].deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &first = self.heap.first()?;
        if self.slots[first as usize].deadline > now {
            return None;
        }
        Some(self.remove_at(0))
    }

    fn remove_at(&mut self, pos: usize) -> K {
        let slot = self.heap[pos];
        let last = self.heap.pop().expect("non-empty heap");
        if pos < self.heap.len() {
            self.heap[pos] = last;
            self.slots[last as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        let s = &mut self.slots[slot as usize];
        s.pos = FREE;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
        s.key.take().expect("live slot has a key")
    }

    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        self.slots[self.heap[a] as usize].deadline < self.slots[self.heap[b] as usize].deadline
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slots[self.heap[a] as usize].pos = a as u32;
        self.slots[self.heap[b] as usize].pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.less(pos, parent) {
                self.swap(pos, parent);
                pos = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * pos + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let child = if r < n && self.less(r, l) { r } else { l };
            if self.less(child, pos) {
                self.swap(child, pos);
                pos = child;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t0() -> Instant {
        // The tests' one clock read (kring-core itself never reads it).
        kring_testclock::origin()
    }

    #[test]
    fn pops_in_deadline_order() {
        let base = t0();
        let mut q = DeadlineQueue::new();
        for (i, ms) in [50u64, 10, 40, 20, 30].iter().enumerate() {
            q.insert(base + Duration::from_millis(*ms), i);
        }
        assert_eq!(q.peek(), Some(base + Duration::from_millis(10)));
        assert_eq!(q.pop_due(base + Duration::from_millis(5)), None);
        let mut got = vec![];
        while let Some(k) = q.pop_due(base + Duration::from_millis(100)) {
            got.push(k);
        }
        assert_eq!(got, vec![1, 3, 4, 2, 0]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.peek(), None);
    }

    #[test]
    fn cancel_and_stale_handles() {
        let base = t0();
        let mut q = DeadlineQueue::new();
        let a = q.insert(base + Duration::from_millis(10), 'a');
        let b = q.insert(base + Duration::from_millis(20), 'b');
        assert_eq!(q.cancel(a), Some('a'));
        assert_eq!(q.cancel(a), None, "double cancel is a no-op");
        // The freed slot is reused; the old handle must not touch the new timer.
        let c = q.insert(base + Duration::from_millis(5), 'c');
        assert_eq!(q.cancel(a), None);
        assert!(!q.reschedule(a, base));
        assert_eq!(q.deadline(c), Some(base + Duration::from_millis(5)));
        assert_eq!(q.pop_due(base + Duration::from_millis(30)), Some('c'));
        assert_eq!(q.cancel(c), None, "fired timers are stale");
        assert_eq!(q.pop_due(base + Duration::from_millis(30)), Some('b'));
        assert_eq!(q.cancel(b), None);
    }

    #[test]
    fn reschedule_both_directions() {
        let base = t0();
        let mut q = DeadlineQueue::new();
        let hs: Vec<_> = (0..20u64)
            .map(|i| q.insert(base + Duration::from_millis(100 + i), i))
            .collect();
        assert!(q.reschedule(hs[15], base + Duration::from_millis(1)));
        assert!(q.reschedule(hs[0], base + Duration::from_millis(1000)));
        assert_eq!(q.pop_due(base + Duration::from_secs(5)), Some(15));
        let mut rest = vec![];
        while let Some(k) = q.pop_due(base + Duration::from_secs(5)) {
            rest.push(k);
        }
        assert_eq!(rest.last(), Some(&0));
        assert_eq!(rest.len(), 19);
        let mut sorted = rest.clone();
        sorted[..18].sort();
        assert_eq!(rest, sorted);
    }

    /// Random operations checked against a simple model.
    #[test]
    fn matches_model_under_random_ops() {
        let base = t0();
        let mut rng = crate::backoff::SplitMix64::new(7);
        let mut q = DeadlineQueue::new();
        let mut model: Vec<(Instant, u32, TimerHandle)> = vec![];
        let mut next = 0u32;
        for _ in 0..20_000 {
            match rng.next_u64() % 5 {
                0 | 1 => {
                    let d = base + Duration::from_micros(rng.next_u64() % 10_000);
                    let h = q.insert(d, next);
                    model.push((d, next, h));
                    next += 1;
                }
                2 if !model.is_empty() => {
                    let i = (rng.next_u64() % model.len() as u64) as usize;
                    let (_, k, h) = model.swap_remove(i);
                    assert_eq!(q.cancel(h), Some(k));
                }
                3 if !model.is_empty() => {
                    let i = (rng.next_u64() % model.len() as u64) as usize;
                    let d = base + Duration::from_micros(rng.next_u64() % 10_000);
                    assert!(q.reschedule(model[i].2, d));
                    model[i].0 = d;
                }
                _ => {
                    let min = model.iter().map(|m| m.0).min();
                    assert_eq!(q.peek(), min);
                    if let Some(min) = min {
                        let k = q.pop_due(min).unwrap();
                        let i = model.iter().position(|m| m.1 == k).unwrap();
                        assert_eq!(model[i].0, min);
                        model.swap_remove(i);
                    }
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.peek(), model.iter().map(|m| m.0).min());
        }
    }
}
