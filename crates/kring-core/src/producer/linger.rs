//! The linger queue: one FIFO of open-batch deadlines instead of a timer
//! per partition.
//!
//! `linger.ms` is one constant, so batches opened in notice order have
//! deadlines in (nearly) the same order: a queue in deadline order takes
//! an O(1) push and pop where the deadline heap took two O(log n) sifts per
//! batch (insert, then cancel when the sender took the batch before its
//! deadline). At 10,000 partitions all receiving, every batch paid both.
//!
//! Entries are removed lazily: taking or sealing an open batch only clears
//! the partition's `linger` flag; the entry stays until it reaches the
//! front, where [`prune_lingers`](ProducerCore::prune_lingers) drops it.
//! **Invariant:** after every `&mut self` call the front entry is live, so
//! [`poll_timeout`](ProducerCore::poll_timeout) never names a deadline of a
//! batch already gone (no spurious wake-up). An entry is live when its
//! partition's `open` is its batch and `linger` is set; a partition has at
//! most one live entry and only partitions in the open set
//! (`part_table.rs`) have one, so compaction (when the queue holds more
//! than twice the open set plus a constant) keeps the queue's memory
//! bounded by the open batches, whatever `linger.ms` is.

use std::collections::VecDeque;
use std::time::Instant;

use super::{PartKey, ProducerCore};

/// Open batches waiting for their linger deadline, in deadline order.
#[derive(Debug, Default)]
pub(crate) struct LingerQueue {
    entries: VecDeque<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: Instant,
    part: PartKey,
    batch: u64,
}

/// Stale entries tolerated beyond twice the open batches before a
/// compaction.
const SLACK: usize = 64;

/// How much longer than this a sender waiting for `buffer.memory` lets an
/// open batch linger (see [`ProducerCore::expire_lingers_beyond`]).
pub(crate) const MEMORY_WAIT_LINGER_CAP: std::time::Duration =
    std::time::Duration::from_millis(100);

impl LingerQueue {
    /// The earliest deadline (live: see the module invariant).
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.deadline)
    }

    /// Forgets every entry (the core finished).
    pub(crate) fn clear(&mut self) {
        self.entries = VecDeque::new();
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl ProducerCore {
    fn linger_live(&self, part: PartKey, batch: u64) -> bool {
        self.topics
            .get(part.0 as usize)
            .and_then(|t| t.partitions.get(part.1 as usize))
            .is_some_and(|p| p.linger && p.open() == Some(batch))
    }

    /// Starts the linger wait of `pk`'s open batch `batch` (its `open` and
    /// `linger` already set), due at `deadline`.
    pub(crate) fn arm_linger(&mut self, pk: PartKey, batch: u64, deadline: Instant) {
        let e = Entry {
            deadline,
            part: pk,
            batch,
        };
        let q = &mut self.timers.lingers_mut().entries;
        if q.back().is_none_or(|b| b.deadline <= deadline) {
            q.push_back(e);
        } else {
            // Notices from several producer threads can be slightly out of
            // order: insert after every entry due no later (ties keep
            // notice order).
            let i = q.partition_point(|x| x.deadline <= deadline);
            q.insert(i, e);
        }
        if q.len() > 2 * self.topics.open_len() + SLACK {
            let mut entries = std::mem::take(&mut self.timers.lingers_mut().entries);
            entries.retain(|e| self.linger_live(e.part, e.batch));
            self.timers.lingers_mut().entries = entries;
        }
        self.prune_lingers();
    }

    /// Drops stale entries from the front (keeps the module invariant).
    pub(crate) fn prune_lingers(&mut self) {
        while let Some(&e) = self.timers.lingers().entries.front() {
            if self.linger_live(e.part, e.batch) {
                return;
            }
            self.timers.lingers_mut().entries.pop_front();
        }
    }

    /// A sender waits for `buffer.memory`, which only completed batches
    /// give back: every open batch whose linger would end later than
    /// [`MEMORY_WAIT_LINGER_CAP`] from `now` becomes due now. As after their
    /// linger, the batches stay open, and take records, until drained.
    ///
    /// Why a cap, not all of them (the Java client treats every batch as
    /// ready while a thread waits for memory) nor none (librdkafka): with a
    /// long `linger.ms` a blocked sender would otherwise wait it out, and
    /// fail with `BufferFull` if it exceeds `max.block.ms`; with a short
    /// one, waiting it out costs little, and sending every open batch early
    /// at full speed shrinks batches (at 10,000 partitions, 100 B values and
    /// the default 32 MiB, from about 6 records per batch to 3.5-5, with
    /// 6-25 % fewer msgs/s in 3 alternated pairs).
    pub(crate) fn expire_lingers_beyond(&mut self, now: Instant) {
        let cap = now + MEMORY_WAIT_LINGER_CAP;
        while let Some(&e) = self.timers.lingers().entries.back() {
            if e.deadline <= cap {
                break;
            }
            self.timers.lingers_mut().entries.pop_back();
            if self.linger_live(e.part, e.batch) {
                self.linger_expired(e.part);
            }
        }
        self.prune_lingers();
    }

    /// Every open batch whose linger ended by `now` becomes due.
    pub(crate) fn expire_lingers(&mut self, now: Instant) {
        while let Some(&e) = self.timers.lingers().entries.front() {
            if e.deadline > now {
                break;
            }
            self.timers.lingers_mut().entries.pop_front();
            if self.linger_live(e.part, e.batch) {
                self.linger_expired(e.part);
            }
        }
        self.prune_lingers();
    }
}
