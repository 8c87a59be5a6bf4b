//! The test controls of the transaction coordinator (see the `txn`
//! module): where a transactional id is coordinated, its state, the
//! cluster's clock its timeouts run on, holding markers back, and what a
//! read_committed consumer sees.

use std::time::Instant;

use super::{MockCluster, MockError};
use crate::records::StoredRecord;
use crate::state::State;
use crate::txn::{self, coordinator, TransactionInfo};

impl MockCluster {
    /// Locks the state with the clock brought to now (the wall clock of a
    /// TCP cluster; an unbound cluster keeps the time it was told) and
    /// timed-out transactions aborted, as a request would find it.
    fn lock_ticked(&self) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.shared.lock();
        let wall = (!self.unbound).then(Instant::now);
        if txn::tick(&mut st, wall) {
            self.shared.changed.notify_all();
        }
        st
    }

    /// Advances the clock to `now` and aborts what timed out (waking
    /// Fetch long-polls if a marker was written).
    pub(super) fn tell_time(&self, now: Instant) {
        if txn::tick(&mut self.shared.lock(), Some(now)) {
            self.shared.changed.notify_all();
        }
    }

    /// Moves the cluster's clock forward to `now` (an earlier time changes
    /// nothing). The transaction coordinator measures transaction timeouts
    /// on this clock: a transaction whose `transaction_timeout_ms` has
    /// passed by then is aborted with its producer's epoch bumped, as
    /// Kafka's coordinator aborts it. An unbound cluster never reads a
    /// clock, so this (or [`screen_sasl`](Self::screen_sasl)'s `now`) is
    /// its only time; a TCP cluster follows the wall clock and this jumps
    /// it ahead, so a test need not sleep through a timeout.
    pub fn advance_clock_to(&self, now: Instant) {
        self.tell_time(now);
    }

    /// The broker coordinating `transactional_id` (what FindCoordinator
    /// with key type 1 answers while that broker runs).
    pub fn transaction_coordinator(&self, transactional_id: &str) -> Option<i32> {
        txn::coordinator_for(&self.shared.lock(), 1, transactional_id).map(|b| b.id)
    }

    /// Moves `transactional_id`'s coordinator to `broker`, as when
    /// Kafka's `__transaction_state` partition changes leader: from now on
    /// FindCoordinator names `broker`, the old coordinator answers
    /// NOT_COORDINATOR, and the transaction's state carries over (the
    /// markers written from now on carry a higher coordinator epoch).
    pub fn move_transaction_coordinator(
        &self,
        transactional_id: &str,
        broker: i32,
    ) -> Result<(), MockError> {
        let mut st = self.shared.lock();
        if st.broker(broker).is_none() {
            return Err(MockError::UnknownBroker(broker));
        }
        st.txn.place(transactional_id, broker);
        Ok(())
    }

    /// `transactional_id`'s state at its coordinator (after aborting it
    /// if it timed out), or `None` if no InitProducerId ever named it.
    pub fn transaction_state(&self, transactional_id: &str) -> Option<TransactionInfo> {
        txn::info(&self.lock_ticked(), transactional_id)
    }

    /// While `hold` is set, ending a transaction (EndTxn, a timeout, a new
    /// producer instance) stops at PrepareCommit/PrepareAbort without
    /// writing markers, as while Kafka's marker writes are slow: the
    /// coordinator answers CONCURRENT_TRANSACTIONS to what the transaction
    /// must wait for, and the partitions' last stable offsets stay. Setting
    /// it back writes the held markers and completes those transactions.
    pub fn hold_transaction_markers(&self, hold: bool) {
        let mut st = self.shared.lock();
        st.txn.hold_markers = hold;
        if !hold {
            coordinator::complete_all(&mut st);
        }
        drop(st);
        self.shared.changed.notify_all();
    }

    /// The last stable offset of a partition: the first offset of its
    /// oldest open transaction, else the high watermark. A read_committed
    /// consumer reads up to it.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock_ticked()
            .partition(topic, partition)
            .map(|p| p.log.last_stable_offset())
    }

    /// Exactly the records a read_committed consumer reading the
    /// partition from offset 0 gets now: non-transactional records and
    /// those of committed transactions, below the last stable offset;
    /// nothing of aborted or still open transactions, no markers.
    pub fn read_committed(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<StoredRecord>, MockError> {
        let st = self.lock_ticked();
        let p = st
            .partition(topic, partition)
            .ok_or_else(|| MockError::UnknownPartition(topic.to_string(), partition))?;
        txn::committed::read_committed(&p.log)
            .map_err(|(offset, source)| MockError::Decode { offset, source })
    }
}
