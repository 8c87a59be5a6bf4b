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
//! - UNKNOWN_PRODUCER_ID is retried after an epoch bump (unless the broker
//!   did not know the log start offset), the bump waiting, like any other,
//!   until nothing of the partition is in flight or of unknown fate; a
//!   batch of unknown fate answered so fails as possibly persisted (no
//!   re-send could be recognised as a duplicate), as librdkafka fails it;
//! - a batch that fails for good after being sent (a fatal broker error)
//!   bumps the epoch; one that expired after being sent leaves the
//!   partition "unresolved": no new batch is drained until its in-flight
//!   batches finish, then the epoch is bumped unless the sequences line up;
//! - CLUSTER_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
//!   PRODUCER_FENCED and UNSUPPORTED_VERSION in a Produce answer end the
//!   producer (`fatal_to_idempotence`, `enter_fatal`), as a refused
//!   InitProducerId does: every batch not on the wire fails with the
//!   error and every later send is refused with it.
//!
//! One rule is added to the Java client's (which re-sends every incomplete
//! batch under new sequences at a bump, duplicating a batch whose answer
//! was lost after the broker wrote it): **a batch whose fate is unknown is
//! never re-sent under a new epoch or sequence.** A batch's fate is
//! unknown (`InBatch::maybe_written`) once an attempt went unanswered
//! (lost connection, request timeout, undecodable answer) or was answered
//! with an error a broker raises after appending (REQUEST_TIMED_OUT,
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...). It is re-sent with its original
//! producer id, epoch and sequence until the broker answers (success, or a
//! duplicate: success), or proves it absent (an OUT_OF_ORDER_SEQUENCE_NUMBER
//! while fewer batches than the broker's window of five can have been
//! written after it), or its delivery timeout fails it as possibly
//! persisted. So a partition bumps only when nothing of it is in flight
//! and no batch of it has an unknown fate; until then it is on **hold**
//! (`SeqState::hold`): nothing new is drained, and only the batches of
//! unknown fate are re-sent, lowest sequence first, one at a time.
//!
//! A second addition: **until the broker acknowledged a batch of the
//! current epoch, a partition has one batch in flight.** A broker with no
//! state for the producer accepts any first sequence (KIP-360), so with
//! pipelining a later batch could be appended before a refused first one,
//! which could then never be written in order (the Java client retries it
//! until the delivery timeout). It costs one round trip per partition at
//! the start and after an epoch bump.
//!
//! OUT_OF_ORDER_SEQUENCE_NUMBER for a batch:
//! - not the partition's lowest incomplete sequence: retried after the
//!   earlier batches (Java's "not the next sequence");
//! - the lowest, of unknown fate, and the broker acknowledged later
//!   sequences of this producer id and epoch: it is in the log (a broker
//!   that knows the producer takes sequences only in order), beyond the
//!   five batches the broker remembers, so no retry can be answered as a
//!   duplicate; it ends at once as possibly persisted (librdkafka fails it
//!   so too, and raises a fatal error; the Java client retries it until
//!   the delivery timeout) and the partition goes on. Possibly, not
//!   surely: a broker that lost the producer's state (KIP-360) accepts any
//!   sequence;
//! - the lowest, of unknown fate, nothing later acknowledged: retried as
//!   it is;
//! - the lowest, known absent, and the broker acknowledged later
//!   sequences (a broker with no state for the producer accepts any first
//!   sequence, KIP-360): it can never be written in order under this
//!   epoch (possible only if the broker lost the producer's state
//!   mid-stream), so it fails at once as not persisted (as librdkafka
//!   fails it; the Java client retries it until the delivery timeout) and
//!   the partition goes on with the sequences after it;
//! - the lowest, known absent, a gap before it: the epoch is bumped (the
//!   Java client's KIP-360 bump) — once the partition is not busy; if it
//!   is, it goes on hold and the retry after the hold decides again.
//!
//! An epoch bump is local (epoch + 1; a new producer id only when the epoch
//! is exhausted) and restarts the affected partitions' sequences at 0,
//! rewriting their incomplete batches (none of them in flight or of
//! unknown fate); other partitions switch to the new epoch when their
//! in-flight batches are done.

use std::time::Instant;

use kring_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use kring_protocol::ErrorCode;

use crate::delivery::{DeliveryError, MessageStatus};
use crate::timer::TimerHandle;

use super::ledger::Stamp;
use super::{BatchKey, PartKey, ProducerCore, TimerKey};

/// Kafka's sequence arithmetic (sequences wrap from `i32::MAX` to 0), the
/// one helper the core, the Sim and kring-mock share.
pub(crate) use kring_protocol::record::increment_sequence;
use kring_protocol::record::sequence_after as seq_after;

/// How many recent batches per producer a Kafka broker remembers for
/// duplicate detection (`NUM_BATCHES_TO_RETAIN`).
const BROKER_RETAINED_BATCHES: usize = 5;

/// Whether a Produce answer `err` ends an idempotent producer: the
/// errors the Java client's `TransactionManager.handleFailedBatch` turns
/// into a fatal error (`maybeTransitionToErrorState`): the producer is not
/// allowed to produce (CLUSTER_AUTHORIZATION_FAILED,
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), another producer took its id
/// (PRODUCER_FENCED), or the broker cannot take idempotent batches
/// (UNSUPPORTED_VERSION). No retry or epoch bump can help, and a bump
/// would only let later batches land after a gap.
///
/// librdkafka differs: without `enable.gapless.guarantee` it fails only
/// the batch and bumps the epoch (`rd_kafka_handle_Produce_error`, the
/// "message sequence gap" drain and bump) — what kring did before; only
/// sequence desynchronisation, or a permanent error with the gapless
/// guarantee, is fatal there (`rd_kafka_idemp_set_fatal_error`). kring
/// follows the Java client: every later batch would meet the same refusal,
/// and failing them at once says so instead of failing each after a
/// round trip. Without idempotence these stay errors of their batch (as in
/// both clients).
pub(crate) fn fatal_to_idempotence(err: ErrorCode) -> bool {
    matches!(
        err,
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | ErrorCode::PRODUCER_FENCED
            | ErrorCode::UNSUPPORTED_VERSION
    )
}

/// What a partition waits for before it decides about its sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Then resume: the batch that triggered the hold is retried and its
    /// answer decides.
    Retry,
    /// Then bump the epoch and rewrite the remaining batches.
    Bump,
}

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
    /// Waiting until no batch is in flight and no batch's fate is unknown
    /// (`InBatch::maybe_written`) before deciding about the sequences:
    /// meanwhile only batches of unknown fate are re-sent, one at a time,
    /// with their original sequence, and nothing new is drained.
    pub(crate) hold: Option<Hold>,
    /// Base sequences of the highest batches of the current epoch that are
    /// or may be in the log (acknowledged, or failed after an attempt that
    /// may have been written), at most the broker's window, to tell whether
    /// an OUT_OF_ORDER_SEQUENCE_NUMBER proves a batch absent.
    pub(crate) acked_recent: Window,
}

/// The broker's window of recent base sequences, lowest first, kept inline
/// (a partition's sequence state is read at every acknowledgement: a
/// vector's heap block was one more cache line per batch at 10,000
/// partitions).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    seqs: [i32; BROKER_RETAINED_BATCHES],
    len: u8,
}

impl Window {
    /// The sequences held, lowest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &i32> {
        self.seqs[..usize::from(self.len)].iter()
    }

    /// Forgets every sequence.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

impl SeqState {
    /// `bk` is no longer incomplete. Usually the oldest: acknowledged in
    /// order.
    fn forget_pending(&mut self, bk: BatchKey) {
        if self.pending.front() == Some(&bk) {
            self.pending.pop_front();
        } else {
            self.pending.retain(|&x| x != bk);
        }
    }

    /// Notes a batch of the current epoch that is or may be in the log,
    /// keeping the broker's window of the highest sequences (a batch may
    /// end after a later one: it is not simply the last ones noted). The
    /// window is kept in sequence order (Kafka's, which wraps), lowest
    /// first, so the usual case — acknowledged in order — is a push and a
    /// pop.
    fn note_in_log(&mut self, base: i32) {
        let w = &mut self.acked_recent;
        let [a, b, c, d, e] = w.seqs;
        if usize::from(w.len) == BROKER_RETAINED_BATCHES && seq_after(base, a) && seq_after(base, e)
        {
            // The usual case: above the whole window.
            w.seqs = [b, c, d, e, base];
            return;
        }
        if usize::from(w.len) == BROKER_RETAINED_BATCHES {
            if !seq_after(base, w.seqs[0]) {
                return; // below the whole window
            }
            w.seqs.copy_within(1.., 0);
            w.len -= 1;
        }
        let n = usize::from(w.len);
        let at = if n == 0 || seq_after(base, w.seqs[n - 1]) {
            n
        } else {
            w.seqs[..n]
                .iter()
                .rposition(|&q| !seq_after(q, base))
                .map_or(0, |i| i + 1)
        };
        w.seqs.copy_within(at..n, at + 1);
        w.seqs[at] = base;
        w.len += 1;
    }
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
            hold: None,
            acked_recent: Window::default(),
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

/// The producer-wide idempotence state. Its fields are private to this
/// module: only the sequence and epoch logic here (`impl ProducerCore`
/// below) changes the producer id, epoch and request state; the rest of
/// the core asks through methods.
#[derive(Debug)]
pub(crate) struct Idempotence {
    enabled: bool,
    /// With a `transactional.id` the producer id comes from the
    /// transaction coordinator, when `init_transactions` asks for it
    /// (`transaction`), and the epoch is never bumped locally.
    transactional: bool,
    pid: i64,
    epoch: i16,
    state: PidState,
    failures: u32,
    timer: Option<TimerHandle>,
    bump_required: bool,
    rewrite: Vec<PartKey>,
}

impl Idempotence {
    /// Off, or waiting for a producer id.
    pub(crate) fn new(enabled: bool, transactional: bool) -> Self {
        Idempotence {
            enabled,
            transactional,
            pid: -1,
            epoch: -1,
            state: PidState::Needed,
            failures: 0,
            timer: None,
            bump_required: false,
            rewrite: Vec::new(),
        }
    }

    /// Whether idempotence is on (`enable.idempotence`).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether produce requests may be built.
    pub(crate) fn ready(&self) -> bool {
        !self.enabled || self.state == PidState::Ready
    }

    /// Tests: pretends the current epoch is `epoch` (to reach exhaustion).
    #[cfg(test)]
    pub(crate) fn force_epoch(&mut self, epoch: i16) {
        self.epoch = epoch;
    }

    /// The current producer id and epoch (tests).
    #[cfg(test)]
    pub(crate) fn current(&self) -> (i64, i16) {
        (self.pid, self.epoch)
    }

    /// Whether an InitProducerId should be sent now.
    pub(crate) fn wants_request(&self) -> bool {
        self.enabled && !self.transactional && self.state == PidState::Needed
    }

    /// The producer id and epoch now.
    pub(crate) fn current_pid(&self) -> (i64, i16) {
        (self.pid, self.epoch)
    }

    /// `init_transactions` was called: batches wait for its producer id.
    pub(crate) fn await_transactional_init(&mut self) {
        if self.state == PidState::Ready {
            // A second init (the first was answered): nothing changes
            // until the new answer.
            return;
        }
        self.state = PidState::Requesting;
    }

    /// The InitProducerId backoff timer fired.
    pub(crate) fn timer_fired(&mut self) {
        self.timer = None;
        if self.state == PidState::Backoff {
            self.state = PidState::Needed;
        }
    }

    /// The InitProducerId request (no transactional id).
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
            self.wake_nodes_with_ready();
        } else if err.is_retriable() || err == ErrorCode::UNKNOWN_SERVER_ERROR || err.is_ok() {
            self.init_pid_backoff(now);
        } else {
            // Authorization and similar: the producer cannot work.
            let e = DeliveryError::Broker {
                code: err.code(),
                name: err.name(),
                message: Some("InitProducerId failed; the idempotent producer cannot send".into()),
                status: MessageStatus::NotPersisted,
            };
            self.enter_fatal(now, e);
        }
    }

    /// The idempotent producer cannot go on: the one path every fatal
    /// error takes (an InitProducerId refused for good or unsupported, a
    /// batch answered with an error [`fatal_to_idempotence`] names).
    /// Following the Java client (`TransactionManager.transitionToFatalError`,
    /// then `Sender.runOnce` aborting the undrained batches and
    /// `failIfNotReadyForSend` refusing sends): every batch not on the
    /// wire — retry queues, sealed and open batches — fails now with
    /// `err` (its status from its own history: a batch waiting for a
    /// retry after an unanswered attempt is possibly persisted), every
    /// later send is refused with it (`SendError::Fatal`), and nothing is
    /// sent any more: no producer id, no epoch bump, no produce request.
    /// A batch on the wire keeps the fate its own answer gives (written,
    /// or failed; retriable answers then fail with `err` when the retry
    /// would be taken). The first fatal error is the one reported. Visits
    /// every partition once, as a purge does.
    pub(crate) fn enter_fatal(&mut self, now: Instant, err: DeliveryError) {
        if self.life.fatal().is_some() {
            return;
        }
        tracing::error!(error = %err, "the idempotent producer failed fatally: every pending and later record fails with this error");
        self.life.set_fatal(err.clone());
        let _ = self.shared.fatal.set(err.clone());
        self.shared.txn_fatal(&err);
        if let Some(t) = self.txn.as_mut() {
            t.fail_offsets(&crate::txn::TransactionError::Fatal(err.clone()));
        }
        self.idem.state = PidState::Backoff;
        self.idem.bump_required = false;
        self.idem.rewrite.clear();
        if let Some(h) = self.idem.timer.take() {
            self.timers.cancel(h);
        }
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].partitions.len() {
                self.fail_partition(now, (ti as u32, pi as u32), &err);
            }
        }
    }

    /// The transaction coordinator gave the producer id and epoch (at
    /// `init_transactions`, or bumped at the end of an abort): every
    /// partition's sequences restart at 0 under it (lazily, as each
    /// takes its next batch: `seq_may_take_new`), which needs no partition
    /// on hold any more (nothing of the transaction is in flight).
    pub(crate) fn set_transactional_pid(&mut self, pid: i64, epoch: i16) {
        self.idem.pid = pid;
        self.idem.epoch = epoch;
        self.idem.state = PidState::Ready;
        self.idem.failures = 0;
        self.idem.bump_required = false;
        self.idem.rewrite.clear();
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].partitions.len() {
                let s = &mut self.part((ti as u32, pi as u32)).seq;
                s.unresolved = None;
                s.hold = None;
            }
        }
        self.wake_nodes_with_ready();
    }

    /// Every node with queued partitions can go now (a producer id
    /// arrived).
    fn wake_nodes_with_ready(&mut self) {
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

    /// Asks for an epoch bump that restarts `pk`'s sequences. A
    /// transactional producer cannot bump locally: its transaction must
    /// be aborted, and the abort bumps (`transaction`).
    pub(crate) fn request_epoch_bump(&mut self, pk: PartKey) {
        if self.idem.transactional {
            self.txn_needs_bump(DeliveryError::Aborted {
                reason: std::sync::Arc::from(
                    "a partition's sequences need an epoch bump, which only aborting the transaction makes",
                ),
                status: MessageStatus::NotPersisted,
            });
            return;
        }
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
            let b = &mut self.ledger[bk];
            b.restamp_after_bump(pid, epoch, seq);
            seq = increment_sequence(seq, b.records());
        }
        let s = &mut self.part(pk).seq;
        s.pid = pid;
        s.epoch = epoch;
        s.next = seq;
        s.last_acked = -1;
        s.unresolved = None;
        s.hold = None;
        s.acked_recent.clear();
        if self.part(pk).has_unsent_work() {
            self.mark_ready(pk);
        }
    }

    /// Whether `pk` may take a *new* batch now; resets a partition whose
    /// sequences belong to an old epoch once it has nothing in flight.
    pub(crate) fn seq_may_take_new(&mut self, pk: PartKey) -> bool {
        if self.bump_pending(pk) {
            return false;
        }
        let (pid, epoch) = (self.idem.pid, self.idem.epoch);
        let s = &mut self.part(pk).seq;
        if s.unresolved.is_some() || s.hold.is_some() {
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
            s.acked_recent.clear();
        }
        // Until the broker acknowledged a batch of this epoch, one batch at
        // a time: a broker with no state for the producer accepts any first
        // sequence (KIP-360), so a later batch could land before a refused
        // first one, which could then never be written in order.
        s.last_acked >= 0 || s.pending.is_empty()
    }

    /// Which batch of `pk`'s retry queue may be re-sent now (its index), if
    /// any: normally only the lowest incomplete sequence of the partition;
    /// while the partition is on hold, the lowest batch of unknown fate,
    /// once nothing of the partition is in flight.
    pub(crate) fn seq_pick_resend(&mut self, pk: PartKey) -> Option<usize> {
        self.maybe_release_hold(pk);
        if self.bump_pending(pk) {
            return None;
        }
        let batches = &self.ledger;
        let p = &self.topics[pk.0 as usize].partitions[pk.1 as usize];
        let front = *p.retry.front()?;
        if p.seq.hold.is_some() {
            if p.in_flight > 0 {
                return None;
            }
            return p.retry.iter().position(|&b| batches[b].maybe_written());
        }
        p.seq
            .pending
            .front()
            .is_none_or(|&f| f == front)
            .then_some(0)
    }

    /// Whether `pk` waits for a requested epoch bump to rewrite its
    /// sequences (performed before the next request is built).
    fn bump_pending(&self, pk: PartKey) -> bool {
        self.idem.rewrite.contains(&pk)
    }

    /// Whether something of `pk` is in flight or of unknown fate.
    fn seq_busy(&self, pk: PartKey) -> bool {
        let p = &self.topics[pk.0 as usize].partitions[pk.1 as usize];
        p.in_flight > 0
            || p.seq
                .pending
                .iter()
                .any(|&b| self.ledger[b].maybe_written())
    }

    /// Puts `pk` on hold (see [`SeqState::hold`]) if it is busy, else acts
    /// now: a `Bump` is requested at once, a `Retry` needs nothing.
    fn hold_or(&mut self, pk: PartKey, then: Hold) {
        if self.seq_busy(pk) {
            let s = &mut self.part(pk).seq;
            if s.hold != Some(Hold::Bump) {
                s.hold = Some(then);
            }
            tracing::debug!(
                partition = pk.1,
                ?then,
                "sequences on hold until in-flight batches resolve"
            );
        } else if then == Hold::Bump {
            self.request_epoch_bump(pk);
        }
    }

    /// Ends the hold of `pk` once nothing is in flight and no batch's fate
    /// is unknown.
    pub(crate) fn maybe_release_hold(&mut self, pk: PartKey) {
        let Some(h) = self.part(pk).seq.hold else {
            return;
        };
        if self.seq_busy(pk) {
            return;
        }
        self.part(pk).seq.hold = None;
        if h == Hold::Bump {
            self.request_epoch_bump(pk);
        }
        if self.part(pk).has_unsent_work() {
            self.mark_ready(pk);
        }
    }

    /// The stamp of `pk`'s next new batch of `records` records: the
    /// partition's next sequence, which this advances. The caller holds
    /// the batch with it and reports its key ([`sequence_held`](Self::sequence_held)).
    pub(crate) fn assign_sequence(&mut self, pk: PartKey, records: u32) -> Stamp {
        let (pid, epoch) = (self.idem.pid, self.idem.epoch);
        let s = &mut self.part(pk).seq;
        let seq = s.next;
        s.next = increment_sequence(seq, records);
        Stamp { pid, epoch, seq }
    }

    /// The batch stamped by [`assign_sequence`](Self::assign_sequence) is
    /// held as `bk`: it is the partition's newest pending sequence.
    pub(crate) fn sequence_held(&mut self, pk: PartKey, bk: BatchKey) {
        self.part(pk).seq.pending.push_back(bk);
    }

    /// Sequence bookkeeping for a successful batch.
    pub(crate) fn seq_batch_ok(&mut self, pk: PartKey, bk: BatchKey) {
        let b = &self.ledger[bk];
        if b.seq() < 0 {
            return;
        }
        let last = kring_protocol::record::last_sequence(b.seq(), b.records());
        let (bpid, bepoch, base) = (b.pid(), b.epoch(), b.seq());
        let s = &mut self.part(pk).seq;
        s.forget_pending(bk);
        if bpid == s.pid && bepoch == s.epoch {
            if s.last_acked == -1 || seq_after(last, s.last_acked) {
                s.last_acked = last;
            }
            s.note_in_log(base);
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
        let b = &self.ledger[bk];
        let (seq, records) = (b.seq(), b.records());
        let (bpid, bepoch, maybe_written) = (b.pid(), b.epoch(), b.maybe_written());
        let s = &mut self.part(pk).seq;
        s.forget_pending(bk);
        if maybe_written && bpid == s.pid && bepoch == s.epoch {
            // It may be in the log: it counts among the batches the broker
            // may remember after an earlier one (`out_of_order_proves_absent`).
            s.note_in_log(seq);
        }
        if timed_out_after_send {
            let next = increment_sequence(seq, records);
            s.unresolved = Some(s.unresolved.map_or(next, |u| u.max(next)));
        } else if broker_fatal {
            // A gap: bump the epoch, but not before every batch behind it
            // has a known fate (a bump re-sends them under new sequences).
            self.hold_or(pk, Hold::Bump);
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

    /// Whether the broker's OUT_OF_ORDER_SEQUENCE_NUMBER for `bk` proves
    /// that no attempt of it was written: had it been, it would be among
    /// the last batches the broker remembers (fewer than its window of
    /// this partition's batches can have been written after it) and the
    /// broker would have answered it as a duplicate.
    fn out_of_order_proves_absent(&self, pk: PartKey, bk: BatchKey) -> bool {
        let b = &self.ledger[bk];
        let s = &self.topics[pk.0 as usize].partitions[pk.1 as usize].seq;
        if b.pid() != s.pid || b.epoch() != s.epoch {
            return false;
        }
        let acked_after = s
            .acked_recent
            .iter()
            .filter(|&&q| seq_after(q, b.seq()))
            .count();
        let pending_after = s
            .pending
            .iter()
            .position(|&x| x == bk)
            .map_or(0, |i| s.pending.len() - i - 1);
        acked_after + pending_after < BROKER_RETAINED_BATCHES
    }

    /// Decides what to do with an idempotent batch the broker answered
    /// with a sequence error, following the Java client's
    /// `TransactionManager.canRetry` with one rule added: sequences are
    /// never rewritten (epoch bump) while a batch of the partition is in
    /// flight or of unknown fate, since that batch may be in the log under
    /// its old sequence. `None` means "use the generic retriable rule".
    pub(crate) fn seq_can_retry(
        &mut self,
        pk: PartKey,
        bk: BatchKey,
        err: ErrorCode,
        log_start_offset: i64,
    ) -> Option<SeqVerdict> {
        if !self.idem.enabled || self.ledger[bk].seq() < 0 {
            return None;
        }
        let seq = self.ledger[bk].seq();
        if err == ErrorCode::UNKNOWN_PRODUCER_ID {
            if log_start_offset == -1 {
                return Some(SeqVerdict::Retry);
            }
            // The broker lost the producer's state: it refuses this
            // sequence under this epoch on every retry, and can recognise
            // no duplicate. The sequences restart under a new epoch, once
            // nothing of the partition is in flight or of unknown fate (a
            // bump rewrites every pending batch; bumps happen only then, so
            // no attempt from before a bump can come back with this error
            // after it).
            self.hold_or(pk, Hold::Bump);
            if self.ledger[bk].maybe_written() {
                // It may be in the log, and no re-send could be recognised
                // as a duplicate: it ends now, possibly persisted (as
                // librdkafka fails a retried batch answered so).
                return Some(SeqVerdict::Abandon);
            }
            return Some(SeqVerdict::Retry);
        }
        if err != ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER {
            return None;
        }
        if self.ledger[bk].maybe_written() && self.out_of_order_proves_absent(pk, bk) {
            self.ledger[bk].set_maybe_written(false);
        }
        let s = &self.topics[pk.0 as usize].partitions[pk.1 as usize].seq;
        if s.pending.front() != Some(&bk) {
            // An earlier batch is not written yet; this one follows it.
            return Some(SeqVerdict::Retry);
        }
        let b = &self.ledger[bk];
        let later_acked = s.last_acked >= 0
            && !seq_after(seq, s.last_acked)
            && b.pid() == s.pid
            && b.epoch() == s.epoch;
        if b.maybe_written() {
            if later_acked {
                // The broker acknowledged sequences after it, which it
                // takes only in order while it knows the producer: it is
                // in the log, beyond the broker's memory of duplicates
                // (unless the broker lost the producer's state meanwhile,
                // KIP-360). No retry can ever be answered otherwise, so it
                // ends now, possibly persisted, and the partition goes on.
                return Some(SeqVerdict::Abandon);
            }
            // It may be in the log beyond the broker's memory: only its
            // own sequence may be re-sent, until the broker answers
            // otherwise or the delivery timeout.
            return Some(SeqVerdict::Retry);
        }
        // The first incomplete batch, not in the log.
        if later_acked {
            // The broker acknowledged later sequences (a broker without
            // state for the producer accepts any first sequence): it can
            // never take this batch in order under this epoch.
            return Some(SeqVerdict::Abandon);
        }
        // A gap before it: bump the epoch once the batches behind it have
        // a known fate; if they turn out written, the retry decides again.
        if self.seq_busy(pk) {
            self.hold_or(pk, Hold::Retry);
        } else {
            self.request_epoch_bump(pk);
        }
        Some(SeqVerdict::Retry)
    }
}

/// What to do with an idempotent batch after a sequence error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// Retry it (with its sequence, or a rewritten one after a bump).
    Retry,
    /// Fail it: the broker holds later sequences of the partition, so the
    /// batch can no longer be written in order — not persisted if it is
    /// known absent, possibly persisted if an attempt may have been written
    /// (`InBatch::status`). The sequences after it stay valid.
    Abandon,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(bases: &[i32]) -> Vec<i32> {
        let mut s = SeqState::default();
        for &b in bases {
            s.note_in_log(b);
        }
        s.acked_recent.iter().copied().collect()
    }

    #[test]
    fn the_window_keeps_the_five_highest_sequences_in_order() {
        assert_eq!(window(&[0, 10, 20, 30, 40, 50, 60]), [20, 30, 40, 50, 60]);
        // Noted out of order (a batch that failed after a later one was
        // acknowledged): still the five highest, lowest first.
        assert_eq!(window(&[0, 10, 30, 40, 50, 20, 60]), [20, 30, 40, 50, 60]);
        assert_eq!(window(&[10, 20, 30, 40, 50, 5]), [10, 20, 30, 40, 50]);
        // Not full yet: anywhere, the lowest included.
        assert_eq!(window(&[10, 30, 20]), [10, 20, 30]);
        assert_eq!(window(&[10, 30, 5, 20]), [5, 10, 20, 30]);
        assert_eq!(window(&[10, 20, 30, 40, 15]), [10, 15, 20, 30, 40]);
        // Full, one in the middle: the lowest goes.
        assert_eq!(window(&[10, 20, 30, 40, 50, 35]), [20, 30, 35, 40, 50]);
        assert_eq!(window(&[10, 20, 30, 40, 50, 15]), [15, 20, 30, 40, 50]);
        // A sequence already held (a part of a split batch ends after its
        // sibling with the same base only when not idempotent; kept as
        // the vector kept it).
        assert_eq!(window(&[10, 20, 20]), [10, 20, 20]);
        // Across the wrap from i32::MAX to 0, Kafka's order.
        let m = i32::MAX;
        assert_eq!(
            window(&[m - 20, m - 10, 3, m, 13, 23]),
            [m - 10, m, 3, 13, 23]
        );
    }
}
