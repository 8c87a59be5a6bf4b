//! One partition's in-memory log.
//!
//! Batches are kept whole, as the client sent them, with the broker-assigned
//! base offset and leader epoch written in (both outside the CRC), which is
//! what a Kafka leader stores and what Fetch returns. With a single replica
//! the high watermark is the log end offset: a batch is committed the moment
//! it is appended. Transactional batches open their producer's transaction
//! on the partition until a marker ([`PartitionLog::append_marker`]) ends
//! it; the last stable offset stops at the oldest open one.

use bytes::Bytes;

use crate::batch::{self, BatchError, BatchHeader};
use crate::idempotence::{ProducerStates, SequenceCheck, SequenceError, UnknownProducerPolicy};
use crate::txn::marker;
use crate::txn::partition::PartitionTxns;

/// One stored record batch, as [`crate::MockCluster::batches`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The header as stored (base offset and leader epoch already assigned).
    pub header: BatchHeader,
    /// The whole batch, byte for byte as a Fetch returns it.
    pub bytes: Bytes,
}

/// Why an append failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AppendError {
    /// The batch failed validation.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// An idempotence check failed.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The batch exceeds the topic's `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// A non-transactional batch from a producer with a transaction open on
    /// the partition (Kafka's `InvalidTxnStateException`): INVALID_TXN_STATE.
    #[error("expected a transactional write from producer {0}: its transaction is open on this partition")]
    InvalidTxnState(i64),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Base offset of the batch (the original one for a duplicate).
    pub(crate) base_offset: i64,
    /// Whether this was a retry of a batch already in the log.
    pub(crate) duplicate: bool,
    /// What Kafka answers as `log_append_time`: -1 for an append to a
    /// CreateTime topic, the original batch's max timestamp for a duplicate
    /// (`UnifiedLog`: `appendInfo.setLogAppendTime(duplicate.timestamp())`).
    pub(crate) log_append_time: i64,
}

/// A partition log.
#[derive(Debug, Default)]
pub(crate) struct PartitionLog {
    batches: Vec<StoredBatch>,
    log_start_offset: i64,
    end_offset: i64,
    producers: ProducerStates,
    txns: PartitionTxns,
}

impl PartitionLog {
    /// First offset still in the log.
    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The high watermark (equal to the log end offset: one replica).
    pub(crate) fn high_watermark(&self) -> i64 {
        self.end_offset
    }

    /// The idempotent producers' state (for the test controls).
    pub(crate) fn producers_mut(&mut self) -> &mut ProducerStates {
        &mut self.producers
    }

    /// Open and aborted transactions.
    pub(crate) fn txns(&self) -> &PartitionTxns {
        &self.txns
    }

    /// The last stable offset: the high watermark, or the first offset of
    /// the oldest transaction still open here.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.txns.last_stable_offset(self.end_offset)
    }

    /// All stored batches in offset order.
    pub(crate) fn batches(&self) -> &[StoredBatch] {
        &self.batches
    }

    /// Validates and appends the `records` of one produce partition.
    pub(crate) fn append(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        max_message_bytes: usize,
        policy: UnknownProducerPolicy,
    ) -> Result<Appended, AppendError> {
        let (header, body) = batch::validate_produce_records(records)?;
        // Kafka (`UnifiedLog.analyzeAndValidateRecords`) refuses a client's
        // v2 batch whose base offset is not 0.
        if header.base_offset != 0 {
            return Err(BatchError::Invalid(format!(
                "the baseOffset of the record batch should be 0, but it is {}",
                header.base_offset
            ))
            .into());
        }
        if body.len() > max_message_bytes {
            return Err(AppendError::TooLarge {
                size: body.len(),
                max: max_message_bytes,
            });
        }
        if batch::has_producer_id(&header) {
            if let SequenceCheck::Duplicate {
                base_offset,
                max_timestamp,
            } = self.producers.check(&header, policy)?
            {
                return Ok(Appended {
                    base_offset,
                    duplicate: true,
                    log_append_time: max_timestamp,
                });
            }
            if !header.is_transactional() && self.txns.is_ongoing(header.producer_id) {
                return Err(AppendError::InvalidTxnState(header.producer_id));
            }
        }
        let base_offset = self.end_offset;
        let stored = batch::assign(&body, base_offset, leader_epoch);
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..header
        };
        if batch::has_producer_id(&header) {
            self.producers.record(&header, base_offset);
            if header.is_transactional() {
                self.txns.data(header.producer_id, base_offset);
            }
        }
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        self.batches.push(StoredBatch {
            base_offset,
            last_offset,
            header,
            bytes: stored,
        });
        self.end_offset = last_offset + 1;
        Ok(Appended {
            base_offset,
            duplicate: false,
            log_append_time: -1,
        })
    }

    /// Appends a transaction marker for `producer_id` (as a leader does on
    /// the coordinator's WriteTxnMarkers): closes its transaction here and
    /// moves its epoch to the marker's (a fencing abort bumped it). The
    /// marker's timestamp is the partition's largest so far (the mock has
    /// no wall clock to take it from). Returns the marker's offset.
    pub(crate) fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
    ) -> i64 {
        let timestamp = self
            .batches
            .iter()
            .map(|b| b.header.max_timestamp)
            .max()
            .unwrap_or(0)
            .max(0);
        let raw = marker::control_batch(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            timestamp,
        );
        let offset = self.end_offset;
        let bytes = batch::assign(&raw, offset, leader_epoch);
        let header = match batch::read_header(&bytes) {
            Ok(h) => h,
            Err(e) => unreachable!("a marker the mock built has a header: {e}"),
        };
        self.batches.push(StoredBatch {
            base_offset: offset,
            last_offset: offset,
            header,
            bytes,
        });
        self.end_offset = offset + 1;
        self.producers.end_txn(producer_id, producer_epoch);
        self.txns.end(producer_id, commit, offset);
        offset
    }

    /// Index of the batch holding `offset` (or the first batch after it).
    pub(crate) fn batch_index_for(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// The batch with the largest max timestamp (the first such on ties),
    /// for ListOffsets' MAX_TIMESTAMP query.
    pub(crate) fn batch_with_max_timestamp(&self) -> Option<&StoredBatch> {
        let mut best: Option<&StoredBatch> = None;
        for b in &self.batches {
            if best.is_none_or(|x| b.header.max_timestamp > x.header.max_timestamp) {
                best = Some(b);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::batch;

    const MAX: usize = 1 << 20;

    #[test]
    fn offsets_are_assigned_in_order() {
        let mut log = PartitionLog::default();
        let a = log
            .append(&batch(-1, -1, -1, 3), 0, MAX, UnknownProducerPolicy::Accept)
            .unwrap();
        let b = log
            .append(&batch(-1, -1, -1, 2), 0, MAX, UnknownProducerPolicy::Accept)
            .unwrap();
        assert_eq!((a.base_offset, b.base_offset), (0, 3));
        assert_eq!(log.high_watermark(), 5);
        assert_eq!(log.batches()[1].header.base_offset, 3);
        assert_eq!(&log.batches()[1].bytes[0..8], &3i64.to_be_bytes());
        assert_eq!(log.batch_index_for(0), 0);
        assert_eq!(log.batch_index_for(2), 0);
        assert_eq!(log.batch_index_for(3), 1);
        assert_eq!(log.batch_index_for(5), 2);
    }

    #[test]
    fn duplicate_returns_original_offset_and_stores_nothing() {
        let mut log = PartitionLog::default();
        log.append(&batch(9, 0, 0, 2), 0, MAX, UnknownProducerPolicy::Accept)
            .unwrap();
        let again = log
            .append(&batch(9, 0, 0, 2), 0, MAX, UnknownProducerPolicy::Accept)
            .unwrap();
        assert_eq!(
            again,
            Appended {
                base_offset: 0,
                duplicate: true,
                log_append_time: 1000,
            }
        );
        assert_eq!(log.batches().len(), 1);
        assert_eq!(log.high_watermark(), 2);
    }

    #[test]
    fn too_large_and_bad_sequence_are_refused() {
        let mut log = PartitionLog::default();
        let b = batch(-1, -1, -1, 2);
        assert!(matches!(
            log.append(&b, 0, b.len() - 1, UnknownProducerPolicy::Accept),
            Err(AppendError::TooLarge { .. })
        ));
        log.append(&batch(9, 0, 0, 2), 0, MAX, UnknownProducerPolicy::Accept)
            .unwrap();
        assert!(matches!(
            log.append(&batch(9, 0, 5, 2), 0, MAX, UnknownProducerPolicy::Accept),
            Err(AppendError::Sequence(SequenceError::OutOfOrder { .. }))
        ));
        assert_eq!(log.high_watermark(), 2);
    }
}
