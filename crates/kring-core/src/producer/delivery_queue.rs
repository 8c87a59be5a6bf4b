//! The delivery-timeout queue: one FIFO of per-partition delivery
//! deadlines for the common case, the deadline heap for the rest.
//!
//! A partition's delivery timer is armed when a batch is opened and none
//! is armed (due at the batch's creation + `delivery.timeout.ms`), and
//! disarmed when nothing of the partition waits unsent. At 10,000
//! partitions all receiving, every batch paid a heap insert and a cancel
//! (two O(log n) sifts over ~10,000 entries, cache-missing), as the linger
//! timers did before `linger.rs`. `delivery.timeout.ms` is one constant
//! and batches are opened in (nearly) creation order, so these deadlines
//! arrive in order too: a queue in deadline order takes an O(1) push and
//! pop, and a disarm only clears the partition's mark.
//!
//! Re-arming for an *older* batch (a retry, a split, the oldest batch left
//! after an expiry: [`arm_delivery`](ProducerCore::arm_delivery)) can ask
//! for a deadline far ahead of the queue's back; those go to the deadline
//! heap as before. A partition has at
//! most one armed timer, in one of the two ([`DeliveryTimer`]).
//!
//! A queued timer is named by its entry's position counted from the first
//! entry ever pushed (`at`), so a disarm marks the entry dead in place
//! (one store, no look-up of the partition) and popping the front needs no
//! look-up either. Entries are only pushed at the back (a deadline earlier
//! than the back's, as notices from several producer threads can be, goes
//! to the heap) and popped at the front, so positions stay valid; a
//! compaction renumbers the entries it keeps and their partitions' timers.
//!
//! **Invariant:** as in the linger queue, after every `&mut self` call the
//! front entry is live (its partition's timer is `Queued` at its
//! position), so [`poll_timeout`](ProducerCore::poll_timeout) never names
//! a deadline nobody waits for; the queue holds at most twice the armed
//! entries plus a constant (compaction), so its memory is bounded by the
//! partitions with unsent work. Expiry runs
//! [`delivery_expired`](ProducerCore::delivery_expired) exactly as a heap
//! timer firing did, and in deadline order with the heap's timers
//! ([`handle_timeout`](ProducerCore::handle_timeout) merges the two).

use std::collections::VecDeque;
use std::time::Instant;

use crate::timer::TimerHandle;

use super::{PartKey, ProducerCore, TimerKey};

/// The armed delivery timer of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum DeliveryTimer {
    /// None armed.
    #[default]
    None,
    /// In the deadline heap.
    Heap(TimerHandle),
    /// In the delivery queue.
    Queued {
        /// The entry's position (see the module docs).
        at: u64,
        /// The entry's deadline.
        deadline: Instant,
    },
}

impl DeliveryTimer {
    /// Whether a timer is armed.
    pub(crate) fn is_armed(self) -> bool {
        self != DeliveryTimer::None
    }
}

/// Delivery deadlines of partitions, in deadline order.
#[derive(Debug, Default)]
pub(crate) struct DeliveryQueue {
    entries: VecDeque<Entry>,
    /// The position of `entries[0]`.
    head: u64,
    /// Entries still armed (the rest are dead, dropped lazily).
    live: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: Instant,
    part: PartKey,
    /// Still armed (a disarm clears it in place).
    live: bool,
}

/// Dead entries tolerated beyond twice the live ones before a compaction.
const SLACK: usize = 64;

impl DeliveryQueue {
    /// The earliest deadline (live: see the module invariant).
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.deadline)
    }

    /// Forgets every entry (the core finished).
    pub(crate) fn clear(&mut self) {
        self.head += self.entries.len() as u64;
        self.entries = VecDeque::new();
        self.live = 0;
    }

    /// Entries held, dead ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries still armed.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Drops dead entries from the front (keeps the module invariant).
    fn prune(&mut self) {
        while self.entries.front().is_some_and(|e| !e.live) {
            self.entries.pop_front();
            self.head += 1;
        }
    }
}

impl ProducerCore {
    /// Arms `pk`'s delivery timer at `deadline` (none armed): at the back
    /// of the queue when no earlier than the back's deadline, else in the
    /// heap.
    pub(crate) fn arm_delivery_new(&mut self, pk: PartKey, deadline: Instant) {
        debug_assert!(!self.part(pk).delivery.is_armed());
        let q = self.timers.deliveries_mut();
        if q.entries.back().is_some_and(|b| b.deadline > deadline) {
            let h = self.timers.insert(deadline, TimerKey::Delivery(pk));
            self.part(pk).delivery = DeliveryTimer::Heap(h);
            return;
        }
        let at = q.head + q.entries.len() as u64;
        q.entries.push_back(Entry {
            deadline,
            part: pk,
            live: true,
        });
        q.live += 1;
        let compact = q.entries.len() > 2 * q.live + SLACK;
        self.part(pk).delivery = DeliveryTimer::Queued { at, deadline };
        if compact {
            self.compact_deliveries();
        }
    }

    /// Keeps only the live entries, renumbered after every position used
    /// so far, and points their partitions at the new positions.
    fn compact_deliveries(&mut self) {
        let q = self.timers.deliveries_mut();
        let old = std::mem::take(&mut q.entries);
        q.head += old.len() as u64;
        let head = q.head;
        q.entries = old.into_iter().filter(|e| e.live).collect();
        for i in 0..self.timers.deliveries().entries.len() {
            let e = self.timers.deliveries().entries[i];
            self.part(e.part).delivery = DeliveryTimer::Queued {
                at: head + i as u64,
                deadline: e.deadline,
            };
        }
    }

    /// Disarms `pk`'s queued delivery timer: its entry is marked dead (and
    /// dropped once it reaches the front, see the module invariant).
    pub(crate) fn unqueue_delivery(&mut self, pk: PartKey) {
        let DeliveryTimer::Queued { at, .. } = self.part(pk).delivery else {
            debug_assert!(false, "no queued delivery timer for {pk:?}");
            return;
        };
        self.part(pk).delivery = DeliveryTimer::None;
        let q = self.timers.deliveries_mut();
        let i = (at - q.head) as usize;
        debug_assert!(q.entries[i].live && q.entries[i].part == pk);
        q.entries[i].live = false;
        q.live -= 1;
        if i == 0 {
            q.prune();
        }
    }

    /// Pops the front entry if it is due at `now`, disarming its
    /// partition's timer; returns the partition.
    pub(crate) fn pop_due_delivery(&mut self, now: Instant) -> Option<PartKey> {
        let q = self.timers.deliveries_mut();
        let e = *q.entries.front()?;
        if e.deadline > now {
            return None;
        }
        // The front is live (module invariant).
        debug_assert!(e.live);
        q.entries.pop_front();
        q.head += 1;
        q.live -= 1;
        q.prune();
        self.part(e.part).delivery = DeliveryTimer::None;
        Some(e.part)
    }
}
