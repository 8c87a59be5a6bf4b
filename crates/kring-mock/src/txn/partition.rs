//! A partition's side of transactions (Kafka's `ProducerStateManager`
//! transaction bookkeeping and transaction index): which producers have a
//! transaction open on it and from which offset, which transactions were
//! aborted, and from those the last stable offset.
//!
//! Why it is kept apart from the idempotent producer state: that state can
//! be forgotten by a test (`forget_producers`, as Kafka expires it), but
//! Kafka never expires a producer with an open transaction, and aborted
//! transactions stay in the index as long as their records do.

use std::collections::BTreeMap;

/// One aborted transaction on a partition: a read_committed consumer
/// drops the producer's transactional records from `first_offset` up to
/// the ABORT marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// The offset of the ABORT marker.
    pub(crate) last_offset: i64,
}

/// Open and aborted transactions of one partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionTxns {
    /// Producer id → offset of its open transaction's first batch here.
    ongoing: BTreeMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
}

impl PartitionTxns {
    /// Whether `producer_id` has a transaction open on this partition
    /// (it wrote a transactional batch and no marker followed yet).
    pub(crate) fn is_ongoing(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// Notes a transactional batch at `offset`: opens the producer's
    /// transaction here if it was not open.
    pub(crate) fn data(&mut self, producer_id: i64, offset: i64) {
        self.ongoing.entry(producer_id).or_insert(offset);
    }

    /// Closes the producer's transaction with a marker at `marker_offset`;
    /// an abort of a transaction that wrote here is remembered.
    pub(crate) fn end(&mut self, producer_id: i64, commit: bool, marker_offset: i64) {
        if let Some(first_offset) = self.ongoing.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: marker_offset,
                });
            }
        }
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, else `high_watermark`.
    pub(crate) fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .map_or(high_watermark, |o| o.min(high_watermark))
    }

    /// The aborted transactions a fetch of `[from, to)` must list (Kafka's
    /// `collectAbortedTransactions`): those ending at or after `from` and
    /// starting before `to`.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Whether the transactional record at `offset` of `producer_id`
    /// belongs to an aborted transaction.
    pub(crate) fn is_aborted(&self, producer_id: i64, offset: i64) -> bool {
        self.aborted.iter().any(|a| {
            a.producer_id == producer_id && a.first_offset <= offset && offset < a.last_offset
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_stable_offset_follows_the_oldest_open_transaction() {
        let mut t = PartitionTxns::default();
        assert_eq!(t.last_stable_offset(10), 10);
        t.data(7, 3);
        t.data(8, 5);
        t.data(7, 6); // still open from 3
        assert_eq!(t.last_stable_offset(10), 3);
        t.end(7, true, 10);
        assert_eq!(t.last_stable_offset(11), 5);
        t.end(8, false, 11);
        assert_eq!(t.last_stable_offset(12), 12);
        assert!(t.is_aborted(8, 5) && !t.is_aborted(7, 5) && !t.is_aborted(8, 11));
        assert_eq!(t.aborted_between(0, 5).len(), 0);
        assert_eq!(t.aborted_between(0, 6).len(), 1);
        assert_eq!(t.aborted_between(12, 20).len(), 0);
    }

    #[test]
    fn a_marker_without_data_records_nothing() {
        let mut t = PartitionTxns::default();
        t.end(7, false, 0);
        assert!(t.aborted_between(0, i64::MAX).is_empty());
    }
}
