//! Every deadline of the core in one place: the indexed deadline heap
//! ([`DeadlineQueue`]), the linger FIFO ([`LingerQueue`]), the delivery
//! FIFO ([`DeliveryQueue`]) and the one block-deadline timer of waiting
//! async senders.
//!
//! Why one owner: [`ProducerCore::poll_timeout`](super::ProducerCore::poll_timeout)
//! must name the earliest of all of them, and finishing must drop all of
//! them at once. **Invariant:** [`Timers::next_deadline`] is the earliest
//! live deadline of the heap and the two queues (each keeps its front
//! live, see [`super::linger`] and [`super::delivery_queue`]); there is at most one
//! `TimerKey::BlockDeadline` timer, due no later than the earliest deadline
//! announced since it last fired; after [`Timers::clear`] nothing is
//! scheduled. The fields are private, so no code can replace a queue and
//! leave a handle (the block timer's) pointing into the old one.

use std::time::Instant;

use crate::timer::{DeadlineQueue, TimerHandle};

use super::delivery_queue::DeliveryQueue;
use super::linger::LingerQueue;
use super::TimerKey;

/// The core's timers.
#[derive(Debug)]
pub(crate) struct Timers {
    queue: DeadlineQueue<TimerKey>,
    /// Linger deadlines of open batches (one FIFO, not a timer each).
    lingers: LingerQueue,
    /// Delivery deadlines armed in creation order (`delivery_queue.rs`).
    deliveries: DeliveryQueue,
    /// The timer at the earliest deadline of a waiting async sender.
    block: Option<TimerHandle>,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            queue: DeadlineQueue::new(),
            lingers: LingerQueue::default(),
            deliveries: DeliveryQueue::default(),
            block: None,
        }
    }

    /// Schedules `key` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, key: TimerKey) -> TimerHandle {
        self.queue.insert(deadline, key)
    }

    /// The deadline of a live timer.
    pub(crate) fn deadline(&self, h: TimerHandle) -> Option<Instant> {
        self.queue.deadline(h)
    }

    /// Cancels a timer; returns its key if it was still live.
    pub(crate) fn cancel(&mut self, h: TimerHandle) -> Option<TimerKey> {
        self.queue.cancel(h)
    }

    /// Moves a live timer to `deadline`; returns false for a stale handle.
    pub(crate) fn reschedule(&mut self, h: TimerHandle, deadline: Instant) -> bool {
        self.queue.reschedule(h, deadline)
    }

    /// Removes and returns the earliest heap timer if it is due at `now`
    /// (linger deadlines are expired through [`Timers::lingers_mut`]).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let key = self.queue.pop_due(now)?;
        if key == TimerKey::BlockDeadline {
            self.block = None;
        }
        Some(key)
    }

    /// The earliest heap timer's deadline.
    pub(crate) fn heap_peek(&self) -> Option<Instant> {
        self.queue.peek()
    }

    /// The earliest deadline of all: heap, linger and delivery queues.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.queue.peek(),
            self.lingers.peek(),
            self.deliveries.peek(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Makes sure the block-deadline timer fires no later than `deadline`.
    pub(crate) fn arm_block_deadline(&mut self, deadline: Instant) {
        match self.block {
            Some(h) => match self.queue.deadline(h) {
                Some(at) if at <= deadline => {}
                Some(_) => {
                    self.queue.reschedule(h, deadline);
                }
                None => self.block = Some(self.queue.insert(deadline, TimerKey::BlockDeadline)),
            },
            None => self.block = Some(self.queue.insert(deadline, TimerKey::BlockDeadline)),
        }
    }

    /// The linger deadlines.
    pub(crate) fn lingers(&self) -> &LingerQueue {
        &self.lingers
    }

    /// The linger deadlines, to arm, prune and expire (`linger.rs`).
    pub(crate) fn lingers_mut(&mut self) -> &mut LingerQueue {
        &mut self.lingers
    }

    /// The delivery deadlines.
    pub(crate) fn deliveries(&self) -> &DeliveryQueue {
        &self.deliveries
    }

    /// The delivery deadlines, to arm, prune and expire
    /// (`delivery_queue.rs`).
    pub(crate) fn deliveries_mut(&mut self) -> &mut DeliveryQueue {
        &mut self.deliveries
    }

    /// Forgets every timer (the core finished).
    pub(crate) fn clear(&mut self) {
        self.queue = DeadlineQueue::new();
        self.lingers.clear();
        self.deliveries.clear();
        self.block = None;
    }

    /// Live heap timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// At most one block-deadline timer: arming again moves it earlier or
    /// leaves it, whatever other timers fired meanwhile; once it fired, the
    /// next arming schedules a new one.
    #[test]
    fn one_block_deadline_timer() {
        let base = kring_testclock::origin();
        let at = |ms: u64| base + Duration::from_millis(ms);
        let mut t = Timers::new();
        t.arm_block_deadline(at(50));
        t.insert(at(5), TimerKey::Metadata);
        assert_eq!(t.pop_due(at(5)), Some(TimerKey::Metadata));
        t.arm_block_deadline(at(80));
        t.arm_block_deadline(at(30));
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(at(30)));
        assert_eq!(t.pop_due(at(30)), Some(TimerKey::BlockDeadline));
        t.arm_block_deadline(at(90));
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(at(90)));
        t.clear();
        assert_eq!(t.next_deadline(), None);
    }
}
