//! Per-partition and per-node state, and the events that move a partition
//! into a node's ready queue.
//!
//! A partition is in at most one ready queue at a time (`queued`). It gets
//! there only by an event: a sealed batch, linger expiry, retry backoff
//! expiry, a response for it, its leader becoming known, a flush. A
//! partition that cannot send when popped (backoff, waiting for an earlier
//! sequence, no leader) simply drops out; the event that unblocks it puts
//! it back. So the sender never re-scans waiting partitions.
//!
//! Why linger expiry does not seal: a partition whose leader has no free
//! in-flight slot would otherwise seal a batch of a record or two, and the
//! records arriving while it waits would start more tiny batches (against
//! a broker that pays per partition batch, that caps throughput). Instead
//! linger expiry marks the open batch *due* and queues the partition; the
//! batch stays open and keeps growing until the sender takes it into a
//! request (`take_batch` seals it then), it fills, or a flush or close
//! seals it. This is the Java client's "ready but still appendable" batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::delivery::{DeliveryError, MessageStatus};
use crate::timer::TimerHandle;
use crate::topics::{PartitionSlot, TopicStatus};

use super::delivery_queue::DeliveryTimer;
use super::idempotence::SeqState;
use super::part_table::OpenPos;
use super::{BatchKey, PartKey, ProducerCore, TimerKey};

/// What the core knows about one partition.
///
/// Laid out by hand in five cache lines (aligned, so every partition of
/// the table has the same lines): what a successful response reads —
/// sequence state, in-flight count, unsent work, the delivery timer, the
/// retry queue's length and the acknowledged-records counter — on the
/// first three, so completing a batch costs the partition three lines, not
/// the five or six its fields spread over in the compiler's order (at
/// 10,000 partitions each is a miss: the response comes long after the
/// request was built).
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct PartCore {
    // Lines 0-1: the response path.
    pub(crate) seq: SeqState,
    /// Batches of this partition on the wire.
    pub(crate) in_flight: u32,
    /// In some node's ready queue.
    pub(crate) queued: bool,
    /// The last announced batch is open (see [`open`](Self::open)). A
    /// flag, not the id: the struct stays within five cache lines.
    pub(crate) has_open: bool,
    /// `open` waits for its linger deadline in the core's linger queue
    /// (`linger.rs`).
    pub(crate) linger: bool,
    /// The open batch `open` has lingered long enough: the sender takes it
    /// (sealing it) when it drains this partition. Until then producer
    /// threads keep appending to it.
    pub(crate) open_due: bool,
    /// Batches announced minus batches drained (may dip below zero briefly
    /// when a batch is drained before its notice is read).
    pub(crate) unsent: i64,
    /// The armed delivery timer (`delivery_queue.rs`).
    pub(crate) delivery: DeliveryTimer,
    // Line 2: the response path (the statistics' `acked` first).
    /// Batches to send again, in sequence order.
    pub(crate) retry: VecDeque<BatchKey>,
    /// Statistics counters (I/O thread only).
    pub(crate) stats: super::stats::PartCounters,
    // Lines 3-4.
    pub(crate) slot: Arc<PartitionSlot>,
    pub(crate) leader: Option<i32>,
    /// Batches announced so far: the id of the next one (ids start at 0
    /// and every id is announced, in order: `Notice::Opened`).
    pub(crate) announced: u64,
    /// Highest batch id drained from the accumulator (+1), to recognise
    /// notices about batches already gone.
    pub(crate) drained_below: u64,
    /// Batches below this id were sealed by the core (linger, flush): a
    /// late "opened" notice for one of them must not arm a linger timer.
    pub(crate) sealed_below: u64,
    /// Position in the open set (`part_table.rs`).
    pub(crate) open_pos: OpenPos,
    pub(crate) backoff: Option<TimerHandle>,
    pub(crate) leader_epoch: i32,
}

impl PartCore {
    pub(crate) fn new(slot: Arc<PartitionSlot>) -> Self {
        PartCore {
            slot,
            leader: None,
            leader_epoch: -1,
            queued: false,
            announced: 0,
            has_open: false,
            drained_below: 0,
            sealed_below: 0,
            linger: false,
            open_due: false,
            open_pos: OpenPos::default(),
            unsent: 0,
            retry: VecDeque::new(),
            backoff: None,
            delivery: DeliveryTimer::None,
            in_flight: 0,
            seq: SeqState::default(),
            stats: Default::default(),
        }
    }

    /// The open batch announced by producer threads, if any: only ever
    /// the last one announced (an older one was drained or sealed, which
    /// cleared it, before a newer one could be announced).
    pub(crate) fn open(&self) -> Option<u64> {
        self.has_open.then(|| self.announced - 1)
    }

    /// Whether anything of this partition waits to be sent.
    pub(crate) fn has_unsent_work(&self) -> bool {
        self.unsent > 0 || !self.retry.is_empty()
    }
}

/// What the core knows about one topic.
#[derive(Debug)]
pub(crate) struct TopicCore {
    pub(crate) name: Arc<str>,
    /// Every partition ever known (only grows: see `part_table`).
    pub(crate) partitions: Vec<PartCore>,
    /// Partitions the latest metadata listed (at most `partitions.len()`;
    /// smaller after a topic was created again with fewer partitions, or
    /// while a broker lags behind a partition increase). Partitions at
    /// `count` and above have no leader. The published
    /// [`TopicState`](crate::topics::TopicState) lists only the first
    /// `count` slots.
    pub(crate) count: u32,
    pub(crate) status: TopicStatus,
    /// When a producer thread last asked for this topic's metadata.
    pub(crate) wanted_at: Option<Instant>,
    /// When a producer thread first asked for it: the start of its
    /// `topic.metadata.propagation.max.ms` window.
    pub(crate) first_wanted: Option<Instant>,
    /// The produce request being built that already counts this topic.
    pub(crate) request_mark: u64,
    /// When a batch of this topic was last opened, or a sender last asked
    /// for its metadata (`None`: not since the core learnt of it; the
    /// first metadata request starts the clock). `metadata.max.idle.ms`
    /// counts from here.
    pub(crate) last_used: Option<Instant>,
    /// Left out of metadata requests: idle for `metadata.max.idle.ms`
    /// with nothing buffered or in flight (see `metadata.rs`). Cleared by
    /// the next batch or metadata wish for it.
    pub(crate) idle: bool,
    /// The topic id metadata last named (all zero: none yet, or a broker
    /// before Metadata v10). A new one means the topic was deleted and
    /// created again: its leader epochs start over.
    pub(crate) topic_id: [u8; 16],
}

impl TopicCore {
    pub(crate) fn clear_timers(&mut self) {
        for p in &mut self.partitions {
            p.linger = false;
            p.backoff = None;
            p.delivery = DeliveryTimer::None;
        }
    }
}

impl ProducerCore {
    pub(crate) fn part(&mut self, pk: PartKey) -> &mut PartCore {
        &mut self.topics[pk.0 as usize].partitions[pk.1 as usize]
    }

    pub(crate) fn has_part(&self, pk: PartKey) -> bool {
        self.topics
            .get(pk.0 as usize)
            .is_some_and(|t| (pk.1 as usize) < t.partitions.len())
    }

    /// Creates core state for topics registered by producer threads up to
    /// `id`.
    pub(crate) fn ensure_topic(&mut self, id: u32) {
        if (id as usize) < self.topics.len() {
            return;
        }
        let map = self.shared.topics.snapshot();
        self.topics.extend_to(id, &map);
    }

    pub(crate) fn topic_wanted(&mut self, now: Instant, topic: u32, seen: u32) {
        self.ensure_topic(topic);
        if self
            .topics
            .get(topic as usize)
            .is_some_and(|t| t.status == TopicStatus::Ready && t.count > seen)
        {
            // Stale: metadata arrived after the sender looked.
            return;
        }
        let Some(t) = self.topics.get_mut(topic as usize) else {
            return;
        };
        let first = t.wanted_at.is_none();
        t.wanted_at = Some(now);
        t.first_wanted.get_or_insert(now);
        t.last_used = Some(now);
        if std::mem::take(&mut t.idle) {
            tracing::debug!(topic = &*t.name, "idle topic wanted again");
        }
        if first {
            // A topic the core has never asked about: ask now.
            self.request_metadata(now);
        } else {
            // Asked before (a sender still waiting, or a partition beyond
            // the known count): respect the backoff.
            self.request_metadata_soon(now);
        }
    }

    pub(crate) fn batch_opened(&mut self, now: Instant, pk: PartKey, created: Instant) {
        // Counted into the ledger once per run of `Opened` notices
        // (`ProducerCore::handle_wakeup`).
        self.unannounced += 1;
        if !self.has_part(pk) {
            // Cannot happen: a batch exists only for partitions the core
            // published. Keep the accounting consistent anyway.
            debug_assert!(false, "batch for unknown partition {pk:?}");
            return;
        }
        if self.txn.is_some() {
            self.txn_batch_opened(pk);
        }
        let linger = self.cfg.linger;
        let dt = self.cfg.delivery_timeout;
        let t = &mut self.topics[pk.0 as usize];
        t.last_used = Some(created);
        if t.idle {
            // Sent to again after `metadata.max.idle.ms`: back in metadata
            // requests, and its leaders, unrefreshed while it was idle,
            // are asked for soon (the Java client asks before sending; the
            // batch may go to the last known leader meanwhile, which
            // redirects or refuses it if that changed).
            t.idle = false;
            tracing::debug!(topic = &*t.name, "idle topic sent to again");
            self.request_metadata_soon(now);
        }
        let p = self.part(pk);
        p.unsent += 1;
        // A partition's batches are announced once each, in id order.
        let batch = p.announced;
        p.announced += 1;
        if batch < p.drained_below.max(p.sealed_below) {
            // Already drained (and maybe completed) before we read this
            // notice: nothing to schedule.
            return;
        }
        // The batch is now the last announced: `open` names it (a batch
        // open before it was sealed or drained, or is this one's
        // predecessor, whose linger entry goes stale).
        p.has_open = true;
        p.open_due = false;
        p.linger = true;
        self.arm_linger(pk, batch, created + linger);
        self.topics.mark_open(pk);
        if !self.part(pk).delivery.is_armed() {
            self.arm_delivery_new(pk, created + dt);
        }
        if let Some(err) = self.life.fatal().cloned() {
            // Opened by a sender that got past the fatal check just before
            // the error: no request will ever take it.
            self.fail_buffered(pk, &err);
        }
    }

    /// Forgets the open batch of `pk` (sealed or failed): no linger timer,
    /// not due, not in `open_parts`.
    pub(crate) fn remove_open(&mut self, pk: PartKey) {
        let p = self.part(pk);
        p.has_open = false;
        p.open_due = false;
        if std::mem::take(&mut p.linger) {
            self.prune_lingers();
        }
        self.topics.unmark_open(pk);
    }

    /// A producer thread sealed the partition's last announced batch.
    pub(crate) fn batch_sealed(&mut self, pk: PartKey) {
        if !self.has_part(pk) {
            return;
        }
        let p = self.part(pk);
        // `Sealed` follows its batch's `Opened` (both pushed under the
        // partition's lock): the batch is the last one announced.
        if p.has_open {
            self.remove_open(pk);
        }
        self.mark_ready(pk);
    }

    /// A compression worker finished a batch of `pk`, which the core
    /// sealed (so it is not the open one): the partition is ready again.
    pub(crate) fn batch_compressed(&mut self, pk: PartKey) {
        if self.has_part(pk) {
            self.mark_ready(pk);
        }
    }

    /// Seals the open batch of `pk` now (flush, close).
    fn seal_open(&mut self, pk: PartKey) {
        let compression = self.shared.cfg.compression;
        let level = self.shared.cfg.compression_level;
        self.remove_open(pk);
        let slot = self.part(pk).slot.clone();
        {
            let mut q = slot.lock();
            if let Some(open) = q.open.take() {
                let id = open.id;
                let size = open.builder.size_in_bytes();
                let offload = self.shared.compress.wants(compression, size);
                let b = if offload {
                    open.seal_later()
                } else {
                    open.seal(compression, level)
                };
                q.sealed.push_back(b);
                drop(q);
                let p = self.part(pk);
                p.sealed_below = p.sealed_below.max(id + 1);
                if offload {
                    self.shared.offload(slot.clone(), pk.0, pk.1, id, size);
                }
            }
        }
        self.mark_ready(pk);
    }

    /// Seals every batch the core knows to be open (flush and close).
    pub(crate) fn seal_all_open(&mut self) {
        while let Some(pk) = self.topics.last_open() {
            self.seal_open(pk);
        }
    }

    /// The open batch has lingered: the partition becomes ready, and the
    /// batch stays open (and appendable) until the sender takes it.
    pub(crate) fn linger_expired(&mut self, pk: PartKey) {
        let p = self.part(pk);
        p.linger = false;
        if p.has_open {
            p.open_due = true;
        }
        self.mark_ready(pk);
    }

    pub(crate) fn backoff_expired(&mut self, pk: PartKey) {
        self.part(pk).backoff = None;
        self.mark_ready(pk);
    }

    /// Puts `pk` into its leader's ready queue unless it is there already,
    /// backing off, or without a leader (then metadata is asked for and the
    /// update re-adds it).
    pub(crate) fn mark_ready(&mut self, pk: PartKey) {
        let p = self.part(pk);
        if p.queued || p.backoff.is_some() {
            return;
        }
        let leader = p.leader;
        match leader {
            Some(n) if self.nodes.push_ready(n, pk) => {
                self.part(pk).queued = true;
            }
            _ => {
                self.meta.set_want_soon();
            }
        }
    }

    /// Takes the partitions whose leader is no longer `n` out of `n`'s
    /// ready queue and queues them at their new leader (or asks for
    /// metadata if they have none). A queue is otherwise drained only over
    /// a ready connection to its node, so without this a partition that
    /// was waiting at a leader that died would wait for that node to come
    /// back instead of following its new leader. Costs one pass over `n`'s
    /// queue, once per metadata response that moved its partitions.
    pub(crate) fn forward_moved(&mut self, n: i32) {
        let Some(node) = self.nodes.get_mut(&n) else {
            return;
        };
        let topics = &self.topics;
        let mut moved = Vec::new();
        node.ready.retain(|&pk| {
            let stays = topics[pk.0 as usize].partitions[pk.1 as usize].leader == Some(n);
            if !stays {
                moved.push(pk);
            }
            stays
        });
        for pk in moved {
            self.part(pk).queued = false;
            self.mark_ready(pk);
        }
    }

    /// Puts `n` on the work list (once) and makes sure it has a connection.
    pub(crate) fn add_work(&mut self, n: i32) {
        self.nodes.add_work(n);
    }

    /// Arms the delivery timer of `pk` no later than `deadline`.
    /// (An older batch came back: a retry, a split, the oldest batch left
    /// after an expiry. Such a deadline goes to the heap, not the queue.)
    pub(crate) fn arm_delivery(&mut self, pk: PartKey, deadline: Instant) {
        match self.part(pk).delivery {
            DeliveryTimer::Heap(h) => {
                if self.timers.deadline(h).is_some_and(|d| d > deadline) {
                    self.timers.reschedule(h, deadline);
                }
            }
            DeliveryTimer::Queued { deadline: d, .. } => {
                if d > deadline {
                    self.unqueue_delivery(pk);
                    let h = self.timers.insert(deadline, TimerKey::Delivery(pk));
                    self.part(pk).delivery = DeliveryTimer::Heap(h);
                }
            }
            DeliveryTimer::None => {
                let h = self.timers.insert(deadline, TimerKey::Delivery(pk));
                self.part(pk).delivery = DeliveryTimer::Heap(h);
            }
        }
    }

    /// Cancels the delivery timer once nothing of `pk` waits unsent.
    pub(crate) fn maybe_disarm_delivery(&mut self, pk: PartKey) {
        let p = self.part(pk);
        if p.has_unsent_work() {
            return;
        }
        match p.delivery {
            DeliveryTimer::None => {}
            DeliveryTimer::Heap(h) => {
                p.delivery = DeliveryTimer::None;
                self.timers.cancel(h);
            }
            DeliveryTimer::Queued { .. } => self.unqueue_delivery(pk),
        }
    }

    /// The delivery timer of `pk` fired: fail what has waited longer than
    /// `delivery.timeout.ms` (in the retry queue or the accumulator), then
    /// re-arm for the oldest remaining batch.
    pub(crate) fn delivery_expired(&mut self, now: Instant, pk: PartKey) {
        debug_assert!(!matches!(
            self.part(pk).delivery,
            DeliveryTimer::Queued { .. }
        ));
        self.part(pk).delivery = DeliveryTimer::None;
        let dt = self.cfg.delivery_timeout;
        let mut oldest: Option<Instant> = None;
        // Retry queue.
        let retry: Vec<BatchKey> = self.part(pk).retry.iter().copied().collect();
        for bk in retry {
            let created = self.ledger[bk].created();
            if created + dt <= now {
                self.part(pk).retry.retain(|&b| b != bk);
                let err = self.timeout_error(bk, "waiting to be retried");
                self.fail_batch(now, bk, err, false);
            } else {
                oldest = Some(oldest.map_or(created, |o| o.min(created)));
            }
        }
        // Accumulator.
        let slot = self.part(pk).slot.clone();
        let mut expired = Vec::new();
        let mut open_expired = None;
        {
            let mut q = slot.lock();
            while q.sealed.front().is_some_and(|b| b.created + dt <= now) {
                expired.push(q.sealed.pop_front().expect("front"));
            }
            if q.sealed.is_empty() && q.open.as_ref().is_some_and(|b| b.created + dt <= now) {
                open_expired = q.open.take();
            }
            if let Some(c) = q.oldest_created() {
                oldest = Some(oldest.map_or(c, |o| o.min(c)));
            }
        }
        let timeout_ms = dt.as_millis() as u64;
        for b in expired {
            let p = self.part(pk);
            p.unsent -= 1;
            p.drained_below = p.drained_below.max(b.id + 1);
            let err = DeliveryError::Timeout {
                timeout_ms,
                stage: "in the accumulator",
                last_error: self.conn_cause(pk),
                status: MessageStatus::NotPersisted,
            };
            self.fail_queued(pk, b, err);
        }
        if let Some(o) = open_expired {
            // A due batch lingered and waited to be sent (no connection, no
            // free slot); one that is not due waited for linger itself.
            let due = {
                let p = self.part(pk);
                p.open() == Some(o.id) && p.open_due
            };
            if self.part(pk).open() == Some(o.id) {
                self.remove_open(pk);
            }
            let p = self.part(pk);
            p.unsent -= 1;
            p.drained_below = p.drained_below.max(o.id + 1);
            let err = DeliveryError::Timeout {
                timeout_ms,
                stage: if due {
                    "in the accumulator"
                } else {
                    "in an open batch (linger.ms longer than delivery.timeout.ms?)"
                },
                last_error: self.conn_cause(pk),
                status: MessageStatus::NotPersisted,
            };
            self.fail_open(pk, o, err);
        }
        if let Some(o) = oldest {
            self.arm_delivery(pk, o + dt);
        }
    }

    /// A purge: fails every batch still in the accumulator (open or
    /// sealed, not yet taken into a request) with `Purged` and releases
    /// its memory. One pass over every partition, once per purge call.
    ///
    /// Batches on the wire or in a retry queue are left alone, as
    /// librdkafka's purge without `PURGE_F_INFLIGHT` leaves in-flight
    /// messages. With idempotence that is also what keeps the guarantees:
    /// a batch gets its sequence only when a request takes it
    /// (`take_batch`), so a purged batch never had one and purging leaves
    /// no gap; a batch waiting for a retry has its sequence and may even be
    /// in the log (a lost answer), so it must be re-sent with it.
    pub(crate) fn purge_buffered(&mut self, _now: Instant) {
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].partitions.len() {
                let pk = (ti as u32, pi as u32);
                self.stats.records_purged += self.fail_buffered(pk, &DeliveryError::Purged);
            }
        }
    }

    /// Takes `pk`'s sealed and open batches out of the accumulator and
    /// fails each with `err` (a purge, a fatal producer state); returns how
    /// many records failed. The open batch is dropped unsealed (not
    /// compressed).
    pub(crate) fn fail_buffered(&mut self, pk: PartKey, err: &DeliveryError) -> u64 {
        let slot = self.part(pk).slot.clone();
        let (sealed, open) = {
            let mut q = slot.lock();
            if q.sealed.is_empty() && q.open.is_none() {
                return 0;
            }
            (std::mem::take(&mut q.sealed), q.open.take())
        };
        if let Some(o) = &open {
            if self.part(pk).open() == Some(o.id) {
                self.remove_open(pk);
            }
            let p = self.part(pk);
            p.sealed_below = p.sealed_below.max(o.id + 1);
        }
        let mut records = 0;
        for b in sealed {
            let p = self.part(pk);
            p.unsent -= 1;
            p.drained_below = p.drained_below.max(b.id + 1);
            records += u64::from(b.record_count);
            self.fail_queued(pk, b, err.clone());
        }
        if let Some(o) = open {
            let p = self.part(pk);
            p.unsent -= 1;
            p.drained_below = p.drained_below.max(o.id + 1);
            records += u64::from(self.fail_open(pk, o, err.clone()));
        }
        records
    }

    /// Fails every pending batch (abort). Visits every partition: this is
    /// the one O(all) path, taken once, at a forced close.
    pub(crate) fn fail_everything(&mut self, now: Instant, err: &DeliveryError) {
        // In flight and retry queues: every batch the core holds.
        for bk in self.ledger.keys() {
            let pk = self.ledger[bk].part();
            let before = self.part(pk).retry.len();
            self.part(pk).retry.retain(|&b| b != bk);
            if self.part(pk).retry.len() == before {
                // Not waiting for a retry: on the wire, its fate unknown.
                self.ledger[bk].set_maybe_written(true);
            }
            self.fail_batch(now, bk, err.clone(), false);
        }
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].partitions.len() {
                let pk = (ti as u32, pi as u32);
                let slot = self.part(pk).slot.clone();
                let (sealed, open) = {
                    let mut q = slot.lock();
                    (std::mem::take(&mut q.sealed), q.open.take())
                };
                for b in sealed {
                    self.part(pk).unsent -= 1;
                    self.fail_queued(pk, b, err.clone());
                }
                if let Some(o) = open {
                    self.part(pk).unsent -= 1;
                    self.fail_open(pk, o, err.clone());
                }
                if self.part(pk).has_open {
                    self.remove_open(pk);
                }
            }
        }
        // Pending in-flight records are failed above; connections stay
        // until check_finished closes them.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The I/O thread touches a partition's state a few times per batch,
    /// and at many partitions each touch is a miss: at 320 bytes aligned
    /// to a line (five lines) every partition of the table has the same
    /// lines, so the fields a batch needs span as few lines as the
    /// layout allows for all of them. (At 328 bytes the I/O thread's
    /// median was 7 % higher in 8 alternated pairs of the 4-records-per-
    /// batch run, within a noisy session.)
    #[test]
    fn partition_state_stays_within_five_cache_lines() {
        assert!(
            std::mem::size_of::<PartCore>() <= 320,
            "{} bytes",
            std::mem::size_of::<PartCore>()
        );
    }

    /// What a successful response reads of its partition (sequence state,
    /// in-flight count, unsent work, delivery timer, retry queue, the
    /// acknowledged-records counter) is on the partition's first three
    /// lines, and every partition starts on a line.
    #[test]
    fn the_response_path_reads_three_lines_of_a_partition() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<PartCore>(), 64);
        let end = |offset: usize, size: usize| offset + size;
        let hot = [
            end(offset_of!(PartCore, seq), size_of::<SeqState>()),
            end(offset_of!(PartCore, in_flight), 4),
            end(offset_of!(PartCore, unsent), 8),
            end(offset_of!(PartCore, delivery), size_of::<DeliveryTimer>()),
            end(offset_of!(PartCore, retry), size_of::<VecDeque<BatchKey>>()),
            end(offset_of!(PartCore, stats.acked), 8),
        ];
        for (i, e) in hot.iter().enumerate() {
            assert!(*e <= 3 * 64, "field {i} ends at {e}");
        }
    }
}
