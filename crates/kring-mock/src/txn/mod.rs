//! The transaction coordinator: transactional ids, their producer ids and
//! epochs, and the state machine Kafka's `TransactionCoordinator` runs
//! ("transaction version 1": the client adds partitions with
//! AddPartitionsToTxn v0–3 and ends with EndTxn v0–4; the epoch is bumped
//! only by InitProducerId).
//!
//! Why the mock has one: a transactional producer is only as correct as
//! the broker it is tested against lets it be. Fencing, a transaction
//! aborted behind the producer's back (a timeout, a new instance), the
//! CONCURRENT_TRANSACTIONS retries while markers are written and what a
//! read_committed consumer finally sees are all broker behaviour; a client
//! test can only check them against a broker that has them.
//!
//! How it follows Kafka (4.x, `TransactionCoordinator`,
//! `TransactionMetadata`, `ProducerStateManager`):
//! - Every transactional id has one coordinator broker: a hash of the id
//!   over the brokers (the "partition of `__transaction_state`"), unless a
//!   test moved it ([`MockCluster::move_transaction_coordinator`]). Only it
//!   serves the id's InitProducerId, AddPartitionsToTxn and EndTxn; the
//!   others answer NOT_COORDINATOR. State is not lost by a move (Kafka
//!   reloads it from `__transaction_state`), but the coordinator epoch the
//!   markers carry grows.
//! - States: Empty → Ongoing (first AddPartitionsToTxn) → PrepareCommit /
//!   PrepareAbort (EndTxn) → CompleteCommit / CompleteAbort (markers
//!   written) → Ongoing again. Markers are written at once, so the
//!   Prepare states are normally never seen; a test holds them with
//!   [`MockCluster::hold_transaction_markers`] to exercise
//!   CONCURRENT_TRANSACTIONS, as when Kafka's marker writes are slow.
//! - A transaction older than its timeout is aborted by the coordinator
//!   with its epoch bumped (fencing the producer). Kafka checks every 10 s
//!   (`transaction.abort.timed.out.transaction.cleanup.interval.ms`); the
//!   mock checks at every request and control call, so the abort happens
//!   at the first moment Kafka could do it. Time is the cluster's clock
//!   ([`Clock`]), never read here.
//!
//! The partition side (ongoing transactions per producer, aborted
//! transactions, the last stable offset) lives with each log, in
//! [`partition`]; control batches are built in [`marker`]; what a
//! read_committed consumer sees is computed in [`committed`].
//!
//! [`MockCluster::move_transaction_coordinator`]: crate::MockCluster::move_transaction_coordinator
//! [`MockCluster::hold_transaction_markers`]: crate::MockCluster::hold_transaction_markers

pub(crate) mod committed;
pub(crate) mod coordinator;
pub(crate) mod marker;
pub(crate) mod partition;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::state::{BrokerInfo, State};

/// Kafka's default `transaction.max.timeout.ms` (15 minutes): a longer
/// `transaction_timeout_ms` is INVALID_TRANSACTION_TIMEOUT.
pub const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;

/// A transaction's state at its coordinator, as Kafka names them
/// (`DescribeTransactions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TxnState {
    /// A producer id and epoch, no transaction begun.
    Empty,
    /// Partitions were added; records may be written.
    Ongoing,
    /// EndTxn(commit) accepted; the COMMIT markers are not all written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a new producer instance aborts; the
    /// ABORT markers are not all written.
    PrepareAbort,
    /// The last transaction committed (every marker written).
    CompleteCommit,
    /// The last transaction aborted (every marker written).
    CompleteAbort,
}

/// A snapshot of one transactional id at its coordinator
/// ([`MockCluster::transaction_state`](crate::MockCluster::transaction_state)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionInfo {
    /// Where the transaction stands.
    pub state: TxnState,
    /// The producer id bound to the transactional id.
    pub producer_id: i64,
    /// The current epoch; a producer with an older one is fenced.
    pub producer_epoch: i16,
    /// The `transaction_timeout_ms` of the last InitProducerId.
    pub timeout_ms: i32,
    /// The partitions of the ongoing (or preparing) transaction, sorted;
    /// empty once it completed, as Kafka clears them.
    pub partitions: Vec<(String, i32)>,
    /// The broker coordinating it.
    pub coordinator: i32,
}

/// The coordinator's record of one transactional id (Kafka's
/// `TransactionMetadata`).
#[derive(Debug, Clone)]
pub(crate) struct TxnMeta {
    pub(crate) producer_id: i64,
    /// The id before the last rotation (epoch exhausted), so a retried
    /// InitProducerId of the old id is recognised.
    pub(crate) previous_producer_id: i64,
    /// -1 until the first InitProducerId completes.
    pub(crate) epoch: i16,
    /// The epoch before the last KIP-360 bump, so a retried bump returns
    /// the same epoch; -1 after any other change.
    pub(crate) last_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    pub(crate) partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction began (its first AddPartitionsToTxn).
    pub(crate) started: Instant,
}

/// The cluster's time for the coordinator. The mock never reads a clock in
/// its logic: a TCP cluster's connections read the wall clock per request,
/// an unbound one hears the caller's time (`screen_sasl`,
/// `advance_clock_to`); the clock keeps the latest it was told. Until it
/// is first told, it stands at the build time; the first time it hears is
/// taken as it is, so a harness whose simulated time began before the
/// cluster was built is followed from its first request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now: Instant,
    told: bool,
}

impl Clock {
    pub(crate) fn new(start: Instant) -> Self {
        Clock {
            now: start,
            told: false,
        }
    }

    /// Moves the clock to `t` if that is later (or if it was never told).
    pub(crate) fn advance(&mut self, t: Instant) {
        self.now = if self.told { self.now.max(t) } else { t };
        self.told = true;
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }
}

/// Every transactional id the cluster knows, and where each is
/// coordinated.
#[derive(Debug)]
pub(crate) struct Coordinators {
    pub(crate) txns: BTreeMap<String, TxnMeta>,
    /// Transactional ids a test moved to another broker.
    placement: BTreeMap<String, i32>,
    /// Bumped by every move: the coordinator epoch markers carry.
    pub(crate) coordinator_epoch: i32,
    pub(crate) clock: Clock,
    /// While set, ending a transaction stops at PrepareCommit/PrepareAbort.
    pub(crate) hold_markers: bool,
}

impl Coordinators {
    pub(crate) fn new(start: Instant) -> Self {
        Coordinators {
            txns: BTreeMap::new(),
            placement: BTreeMap::new(),
            coordinator_epoch: 0,
            clock: Clock::new(start),
            hold_markers: false,
        }
    }

    /// Moves `txn_id`'s coordination to broker `to`.
    pub(crate) fn place(&mut self, txn_id: &str, to: i32) {
        self.placement.insert(txn_id.to_string(), to);
        self.coordinator_epoch += 1;
    }
}

/// The broker coordinating `key` of `key_type` (0: group, 1: transaction):
/// a transactional id a test moved stays where it was put; otherwise a
/// stable FNV-1a hash of the key over the brokers.
pub(crate) fn coordinator_for<'a>(
    st: &'a State,
    key_type: i8,
    key: &str,
) -> Option<&'a BrokerInfo> {
    if key_type == 1 {
        if let Some(id) = st.txn.placement.get(key) {
            return st.broker(*id);
        }
    }
    if st.brokers.is_empty() {
        return None;
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes().chain([key_type as u8]) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    st.brokers.get(h as usize % st.brokers.len())
}

/// Whether `broker` coordinates transactional id `txn_id`.
pub(crate) fn is_coordinator(st: &State, broker: i32, txn_id: &str) -> bool {
    coordinator_for(st, 1, txn_id).is_some_and(|b| b.id == broker)
}

/// Advances the clock to `now` (if given) and aborts every ongoing
/// transaction whose timeout has passed, as Kafka's periodic
/// `abortTimedOutTransactions` does: the epoch is bumped first (fencing
/// the producer), then the transaction is aborted under the new epoch.
/// Returns whether it aborted any.
pub(crate) fn tick(st: &mut State, now: Option<Instant>) -> bool {
    if let Some(t) = now {
        st.txn.clock.advance(t);
    }
    let now = st.txn.clock.now();
    let expired: Vec<String> = st
        .txn
        .txns
        .iter()
        .filter(|(_, m)| {
            m.state == TxnState::Ongoing
                && now > m.started + Duration::from_millis(m.timeout_ms.max(0) as u64)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        coordinator::fence_and_abort(st, id);
    }
    !expired.is_empty()
}

/// A snapshot of `txn_id`, if the cluster knows it.
pub(crate) fn info(st: &State, txn_id: &str) -> Option<TransactionInfo> {
    let m = st.txn.txns.get(txn_id)?;
    Some(TransactionInfo {
        state: m.state,
        producer_id: m.producer_id,
        producer_epoch: m.epoch,
        timeout_ms: m.timeout_ms,
        partitions: m.partitions.iter().cloned().collect(),
        coordinator: coordinator_for(st, 1, txn_id).map_or(-1, |b| b.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_takes_its_first_time_as_it_is_then_only_moves_forward() {
        let built = Instant::now();
        let mut c = Clock::new(built + Duration::from_secs(10));
        c.advance(built);
        assert_eq!(c.now(), built);
        c.advance(built + Duration::from_secs(3));
        c.advance(built + Duration::from_secs(1));
        assert_eq!(c.now(), built + Duration::from_secs(3));
    }
}
