//! Idempotent production: producer id, per-partition sequence numbers,
//! ordering across retries, and epoch bumps.
//!
//! Follows the Java client's `TransactionManager` for the non-transactional
//! idempotent producer (KIP-98, KIP-360):
//! - an InitProducerId request gets the producer id and epoch before any
//!   batch is sent;
//! - a batch gets its sequence when first drained; the partition tracks its
//!   sent-but-incomplete batches in sequence order;
//! - a batch being retried is resent only when it is the lowest incomplete
//!   sequence of its partition, and no new batch is drained while retries
//!   are queued, so order holds with up to 5 requests in flight;
//! - DUPLICATE_SEQUENCE_NUMBER counts as success;
//! - OUT_OF_ORDER_SEQUENCE_NUMBER is retried; if the batch is the one right
//!   after the last acknowledged sequence (a real gap), the epoch is bumped;
//! - UNKNOWN_PRODUCER_ID is retried, bumping the epoch (unless the broker
//!   did not know the log start offset, or the sequence was already reset);
//! - a batch that fails for good after being sent (a fatal broker error)
//!   bumps the epoch; one that expired after being sent leaves the
//!   partition "unresolved": no new batch is drained until its in-flight
//!   batches finish, then the epoch is bumped unless the sequences line up.
//!
//! An epoch bump is local (epoch + 1; a new producer id only when the epoch
//! is exhausted) and restarts the affected partitions' sequences at 0,
//! rewriting their incomplete batches; other partitions switch to the new
//! epoch when their in-flight batches are done.

use std::time::Instant;

use kring_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use kring_protocol::ErrorCode;

use crate::delivery::DeliveryError;
use crate::timer::TimerHandle;

use super::{BatchKey, PartKey, ProducerCore, TimerKey};

/// Kafka's sequence arithmetic (sequences wrap from `i32::MAX` to 0), the
/// one helper the core, the Sim and kring-mock share.
pub(crate) use kring_protocol::record::increment_sequence;

/// A partition's sequence state.
#[derive(Debug)]
pub(crate) struct SeqState {
    /// Producer id and epoch the sequences below belong to.
    pub(crate) pid: i64,
    pub(crate) epoch: i16,
    pub(crate) next: i32,
    pub(crate) last_acked: i32,
    /// Sent batches not yet complete, in sequence order.
    pub(crate) pending: std::collections::VecDeque<BatchKey>,
    /// After a sent batch expired: the sequence after it.
    pub(crate) unresolved: Option<i32>,
}

impl Default for SeqState {
    fn default() -> Self {
        SeqState {
            pid: -1,
            epoch: -1,
            next: 0,
            last_acked: -1,
            pending: std::collections::VecDeque::new(),
            unresolved: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    /// Needs an InitProducerId.
    Needed,
    /// Waiting for the retry backoff.
    Backoff,
    /// Request in flight.
    Requesting,
    Ready,
}

/// The producer-wide idempotence state.
#[derive(Debug)]
pub(crate) struct Idempotence {
    pub(crate) enabled: bool,
    pub(crate) pid: i64,
    pub(crate) epoch: i16,
    pub(crate) state: PidState,
    pub(crate) failures: u32,
    pub(crate) timer: Option<TimerHandle>,
    pub(crate) bump_required: bool,
    pub(crate) rewrite: Vec<PartKey>,
}

impl Idempotence {
    pub(crate) fn new(enabled: bool) -> Self {
        Idempotence {
            enabled,
            pid: -1,
            epoch: -1,
            state: PidState::Needed,
            failures: 0,
            timer: None,
            bump_required: false,
            rewrite: Vec::new(),
        }
    }

    /// Whether produce requests may be built.
    pub(crate) fn ready(&self) -> bool {
        !self.enabled || self.state == PidState::Ready
    }

    /// Whether an InitProducerId should be sent now.
    pub(crate) fn wants_request(&self) -> bool {
        self.enabled && self.state == PidState::Needed
    }

    pub(crate) fn timer_fired(&mut self) {
        self.timer = None;
        if self.state == PidState::Backoff {
            self.state = PidState::Needed;
        }
    }

    pub(crate) fn request(&self) -> InitProducerIdRequest {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
    }
}

impl ProducerCore {
    pub(crate) fn init_pid_sent(&mut self) {
        self.idem.state = PidState::Requesting;
    }

    /// The InitProducerId request was lost (connection failure).
    pub(crate) fn init_pid_lost(&mut self, now: Instant) {
        if self.idem.state == PidState::Requesting {
            self.init_pid_backoff(now);
        }
    }

    fn init_pid_backoff(&mut self, now: Instant) {
        let d = self.cfg.retry.backoff(self.idem.failures, &mut self.rng);
        self.idem.failures += 1;
        self.idem.state = PidState::Backoff;
        let h = self.timers.insert(now + d, TimerKey::ProducerId);
        self.idem.timer = Some(h);
    }

    pub(crate) fn handle_init_pid(&mut self, now: Instant, resp: InitProducerIdResponse) {
        let err = ErrorCode(resp.error_code);
        if err.is_ok() && resp.producer_id >= 0 {
            self.idem.pid = resp.producer_id;
            self.idem.epoch = resp.producer_epoch;
            self.idem.state = PidState::Ready;
            self.idem.failures = 0;
            tracing::debug!(
                pid = resp.producer_id,
                epoch = resp.producer_epoch,
                "producer id acquired"
            );
            // Partitions waiting for a rewrite after an exhausted epoch.
            let rewrite = std::mem::take(&mut self.idem.rewrite);
            for pk in rewrite {
                self.start_sequences_at_beginning(pk);
            }
            self.idem.bump_required = false;
            // Every node with queued partitions can go now.
            let ns: Vec<i32> = self
                .nodes
                .iter()
                .filter(|(_, n)| !n.ready.is_empty())
                .map(|(&id, _)| id)
                .collect();
            for n in ns {
                self.add_work(n);
            }
        } else if err.is_retriable() || err == ErrorCode::UNKNOWN_SERVER_ERROR || err.is_ok() {
            self.init_pid_backoff(now);
        } else {
            // Authorization and similar: the producer cannot work.
            let e = DeliveryError::Broker {
                code: err.code(),
                name: err.name(),
                message: Some("InitProducerId failed; the idempotent producer cannot send".into()),
            };
            tracing::error!(error = err.name(), "InitProducerId failed fatally");
            self.fatal = Some(e);
            self.idem.state = PidState::Backoff;
            let ns: Vec<i32> = self
                .nodes
                .iter()
                .filter(|(_, n)| !n.ready.is_empty())
                .map(|(&id, _)| id)
                .collect();
            for n in ns {
                self.add_work(n);
            }
        }
    }

    /// Asks for an epoch bump that restarts `pk`'s sequences.
    pub(crate) fn request_epoch_bump(&mut self, pk: PartKey) {
        self.idem.bump_required = true;
        if !self.idem.rewrite.contains(&pk) {
            self.idem.rewrite.push(pk);
        }
    }

    /// Performs a requested epoch bump (called before building requests).
    pub(crate) fn maybe_bump_epoch(&mut self) {
        if !self.idem.bump_required || self.idem.state != PidState::Ready {
            return;
        }
        self.stats.epoch_bumps += 1;
        if self.idem.epoch == i16::MAX {
            // Exhausted: get a new producer id; partitions are rewritten
            // when it arrives.
            self.idem.pid = -1;
            self.idem.epoch = -1;
            self.idem.state = PidState::Needed;
            return;
        }
        self.idem.epoch += 1;
        tracing::info!(
            pid = self.idem.pid,
            epoch = self.idem.epoch,
            "bumped producer epoch"
        );
        let rewrite = std::mem::take(&mut self.idem.rewrite);
        for pk in rewrite {
            self.start_sequences_at_beginning(pk);
        }
        self.idem.bump_required = false;
    }

    /// Restarts `pk`'s sequences at 0 under the current epoch, rewriting its
    /// incomplete batches in order.
    fn start_sequences_at_beginning(&mut self, pk: PartKey) {
        let (pid, epoch) = (self.idem.pid, self.idem.epoch);
        let pending: Vec<BatchKey> = self.part(pk).seq.pending.iter().copied().collect();
        let mut seq = 0i32;
        for bk in pending {
            let b = &mut self.batches[bk];
            b.stamp(pid, epoch, seq);
            b.seq_reset = true;
            seq = increment_sequence(seq, b.records);
        }
        let s = &mut self.part(pk).seq;
        s.pid = pid;
        s.epoch = epoch;
        s.next = seq;
        s.last_acked = -1;
        s.unresolved = None;
        if self.part(pk).has_unsent_work() {
            self.mark_ready(pk);
        }
    }

    /// Whether `pk` may take a *new* batch now; resets a partition whose
    /// sequences belong to an old epoch once it has nothing in flight.
    pub(crate) fn seq_may_take_new(&mut self, pk: PartKey) -> bool {
        let (pid, epoch) = (self.idem.pid, self.idem.epoch);
        let s = &mut self.part(pk).seq;
        if s.unresolved.is_some() {
            return false;
        }
        if s.pid != pid || s.epoch != epoch {
            if !s.pending.is_empty() {
                return false;
            }
            s.pid = pid;
            s.epoch = epoch;
            s.next = 0;
            s.last_acked = -1;
        }
        true
    }

    /// Whether retry batch `bk` may be resent: only as the lowest incomplete
    /// sequence of its partition.
    pub(crate) fn seq_may_resend(&mut self, pk: PartKey, bk: BatchKey) -> bool {
        let s = &self.part(pk).seq;
        s.pending.front().is_none_or(|&f| f == bk)
    }

    /// Assigns the next sequence to a new batch and stamps it.
    pub(crate) fn assign_sequence(&mut self, pk: PartKey, bk: BatchKey) {
        let (pid, epoch) = (self.idem.pid, self.idem.epoch);
        let records = self.batches[bk].records;
        let s = &mut self.part(pk).seq;
        let seq = s.next;
        s.next = increment_sequence(seq, records);
        s.pending.push_back(bk);
        self.batches[bk].stamp(pid, epoch, seq);
    }

    /// Sequence bookkeeping for a successful batch.
    pub(crate) fn seq_batch_ok(&mut self, pk: PartKey, bk: BatchKey) {
        let b = &self.batches[bk];
        if b.seq < 0 {
            return;
        }
        let last = increment_sequence(b.seq, b.records).wrapping_sub(1);
        let last = if last < 0 { i32::MAX } else { last };
        let (bpid, bepoch) = (b.pid, b.epoch);
        let s = &mut self.part(pk).seq;
        s.pending.retain(|&x| x != bk);
        if bpid == s.pid && bepoch == s.epoch && (s.last_acked < last || s.last_acked == -1) {
            s.last_acked = last;
        }
    }

    /// Sequence bookkeeping for a batch that failed for good.
    pub(crate) fn seq_batch_failed(
        &mut self,
        pk: PartKey,
        bk: BatchKey,
        timed_out_after_send: bool,
        broker_fatal: bool,
    ) {
        let (seq, records) = (self.batches[bk].seq, self.batches[bk].records);
        let s = &mut self.part(pk).seq;
        s.pending.retain(|&x| x != bk);
        if timed_out_after_send {
            let next = increment_sequence(seq, records);
            s.unresolved = Some(s.unresolved.map_or(next, |u| u.max(next)));
        } else if broker_fatal {
            self.request_epoch_bump(pk);
        }
    }

    /// A partition with an unresolved sequence and nothing in flight:
    /// resolved if the acknowledged sequences line up, else bump the epoch.
    pub(crate) fn maybe_resolve_sequences(&mut self, pk: PartKey) {
        let s = &self.part(pk).seq;
        if s.unresolved.is_none() || !s.pending.is_empty() {
            return;
        }
        let lined_up =
            increment_sequence(s.last_acked, 1) == s.next || (s.last_acked == -1 && s.next == 0);
        self.part(pk).seq.unresolved = None;
        if !lined_up {
            self.request_epoch_bump(pk);
        }
    }

    /// Decides whether a failed idempotent batch may be retried, bumping the
    /// epoch where the Java client does. `None` means "use the generic
    /// retriable rule".
    pub(crate) fn seq_can_retry(
        &mut self,
        pk: PartKey,
        bk: BatchKey,
        err: ErrorCode,
        log_start_offset: i64,
    ) -> Option<bool> {
        if !self.idem.enabled || self.batches[bk].seq < 0 {
            return None;
        }
        let (seq, reset) = (self.batches[bk].seq, self.batches[bk].seq_reset);
        if err == ErrorCode::UNKNOWN_PRODUCER_ID {
            if log_start_offset == -1 || reset {
                return Some(true);
            }
            self.request_epoch_bump(pk);
            return Some(true);
        }
        if err == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER {
            let s = &self.part(pk).seq;
            let next_expected = increment_sequence(s.last_acked, 1);
            let unresolved = s.unresolved;
            if unresolved.is_none() && (reset || seq != next_expected) {
                // An earlier batch failed; this one follows it.
                return Some(true);
            }
            if unresolved.is_none() || unresolved == Some(seq) {
                self.request_epoch_bump(pk);
            }
            return Some(true);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::increment_sequence;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX, 10), 9);
        assert_eq!(increment_sequence(-1, 1), 0);
    }
}
