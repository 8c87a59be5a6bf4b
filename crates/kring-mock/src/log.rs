//! One partition's in-memory log.
//!
//! Batches are kept whole, as the client sent them, with the broker-assigned
//! base offset and leader epoch written in (both outside the CRC), which is
//! what a Kafka leader stores and what Fetch returns. With a single replica
//! the high watermark is the log end offset: a batch is committed the moment
//! it is appended.

use bytes::Bytes;

use crate::batch::{self, BatchError, BatchHeader};
use crate::idempotence::{ProducerStates, SequenceCheck, SequenceError, UnknownProducerPolicy};

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
    /// Transactional batches need a transaction coordinator, which the mock
    /// does not have.
    #[error("transactional produce is not supported by kring-mock")]
    Transactional,
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
        if header.is_transactional() {
            return Err(AppendError::Transactional);
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
