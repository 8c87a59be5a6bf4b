//! Idempotent producer state per partition, checked the way a Kafka broker
//! checks it (`ProducerStateManager` / `ProducerAppendInfo`).
//!
//! Per producer id the partition remembers the epoch and the sequence ranges
//! and offsets of the last five batches appended. A batch is then:
//! - a **duplicate** when its epoch matches and its `[first, last]` sequence
//!   range equals one of those five: the broker appends nothing and answers
//!   NONE with the *original* base offset, so a retried request that had
//!   landed resolves as success;
//! - **in sequence** when its first sequence follows the last appended one
//!   (`last + 1`, or 0 after `i32::MAX`): appended;
//! - **out of order** otherwise: OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - from an **older epoch**: INVALID_PRODUCER_EPOCH (Kafka ≥ 2.7; earlier
//!   brokers said PRODUCER_FENCED);
//! - from a **newer epoch**: must start at sequence 0, which resets the state
//!   (an idempotent producer bumps its epoch locally after an error, KIP-360);
//!   anything else is OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - from a producer the partition has **no state for**: Kafka ≥ 2.5
//!   (KIP-360) accepts any first sequence, as the producer's earlier records
//!   may simply have been deleted by retention. Kafka < 2.5 answered
//!   UNKNOWN_PRODUCER_ID for a non-zero first sequence; the mock does that
//!   when built with [`UnknownProducerPolicy::Reject`].

use std::collections::{HashMap, VecDeque};

use crate::batch::{self, BatchHeader};

/// How many recent batches per producer a broker remembers for duplicate
/// detection (Kafka's `NUM_BATCHES_TO_RETAIN`, which is also why clients cap
/// in-flight requests per connection at 5 with idempotence).
pub const RETAINED_BATCHES: usize = 5;

/// What the broker does with a non-zero first sequence from a producer id it
/// has no state for on the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownProducerPolicy {
    /// Kafka ≥ 2.5 (KIP-360): accept the batch and start tracking the
    /// producer from its sequence.
    #[default]
    Accept,
    /// Kafka < 2.5: answer UNKNOWN_PRODUCER_ID.
    Reject,
}

/// The verdict of the sequence check for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended at this base offset: answer success, append nothing.
    Duplicate {
        /// Base offset of the original append.
        base_offset: i64,
        /// Max timestamp of the original batch, which Kafka answers a
        /// duplicate with as its `log_append_time` (`BatchMetadata.timestamp`).
        max_timestamp: i64,
    },
}

/// A sequence or epoch violation, each with the Kafka error it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SequenceError {
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    #[error("out of order sequence {first} from producer {producer_id} (epoch {epoch}); last appended sequence {last}")]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        first: i32,
        last: i32,
    },
    /// UNKNOWN_PRODUCER_ID (59).
    #[error("no state for producer {0} on this partition and its first sequence is not 0")]
    UnknownProducer(i64),
    /// INVALID_PRODUCER_EPOCH (47).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
}

#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    max_timestamp: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<BatchMeta>,
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == kring_protocol::record::increment_sequence(last, 1)
}

impl ProducerStates {
    /// Checks a batch that carries a producer id, before it is appended.
    pub(crate) fn check(
        &self,
        h: &BatchHeader,
        policy: UnknownProducerPolicy,
    ) -> Result<SequenceCheck, SequenceError> {
        let first = h.base_sequence;
        let Some(entry) = self.producers.get(&h.producer_id) else {
            if first != 0 && policy == UnknownProducerPolicy::Reject {
                return Err(SequenceError::UnknownProducer(h.producer_id));
            }
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            if first != 0 {
                return Err(SequenceError::OutOfOrder {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    first,
                    last: -1,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = batch::last_sequence(h);
        if let Some(dup) = entry
            .recent
            .iter()
            .find(|m| m.first_seq == first && m.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
                max_timestamp: dup.max_timestamp,
            });
        }
        let last = entry.recent.back().map_or(-1, |m| m.last_seq);
        if !in_sequence(last, first) {
            return Err(SequenceError::OutOfOrder {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                first,
                last,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Forgets every producer (as after the broker expired their state,
    /// `producer.id.expiration.ms`, or truncated the log).
    pub(crate) fn forget(&mut self) {
        self.producers.clear();
    }

    /// Makes every known producer look as if its last batch ended at
    /// sequence `last`, appended at `offset`.
    pub(crate) fn set_last_sequence(&mut self, last: i32, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.recent.clear();
            entry.recent.push_back(BatchMeta {
                first_seq: last,
                last_seq: last,
                base_offset: offset,
                max_timestamp: -1,
            });
        }
    }

    /// Applies a transaction marker of `producer_id` at `epoch` (Kafka's
    /// `ProducerStateEntry.update`): a new epoch (a fencing abort) replaces
    /// the old one and its batches, so the producer's next batch must
    /// start at sequence 0; the same epoch keeps the sequences running.
    pub(crate) fn end_txn(&mut self, producer_id: i64, epoch: i16) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                recent: VecDeque::with_capacity(RETAINED_BATCHES),
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
    }

    /// Records a batch that [`check`](Self::check) allowed and that was
    /// appended at `base_offset`.
    pub(crate) fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                recent: VecDeque::with_capacity(RETAINED_BATCHES),
            });
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == RETAINED_BATCHES {
            entry.recent.pop_front();
        }
        entry.recent.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: batch::last_sequence(h),
            base_offset,
            max_timestamp: h.max_timestamp,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{read_header, tests::batch};

    fn hdr(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchHeader {
        read_header(&batch(pid, epoch, seq, n)).unwrap()
    }

    fn append(
        s: &mut ProducerStates,
        h: &BatchHeader,
        at: i64,
    ) -> Result<SequenceCheck, SequenceError> {
        let r = s.check(h, UnknownProducerPolicy::Accept)?;
        if r == SequenceCheck::Append {
            s.record(h, at);
        }
        Ok(r)
    }

    #[test]
    fn forgotten_producers_and_a_moved_last_sequence() {
        let mut s = ProducerStates::default();
        append(&mut s, &hdr(1, 0, 0, 3), 0).unwrap();
        s.set_last_sequence(i32::MAX - 1, 2);
        // The next batch must follow MAX-1, across the wrap.
        assert!(append(&mut s, &hdr(1, 0, 3, 1), 3).is_err());
        assert_eq!(
            append(&mut s, &hdr(1, 0, i32::MAX, 2), 3),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            append(&mut s, &hdr(1, 0, 1, 1), 5),
            Ok(SequenceCheck::Append)
        );
        s.forget();
        assert_eq!(
            s.check(&hdr(1, 0, 2, 1), UnknownProducerPolicy::Reject),
            Err(SequenceError::UnknownProducer(1))
        );
        assert_eq!(
            s.check(&hdr(1, 0, 0, 1), UnknownProducerPolicy::Reject),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStates::default();
        assert_eq!(
            append(&mut s, &hdr(1, 0, 0, 3), 0),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            append(&mut s, &hdr(1, 0, 3, 2), 3),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            append(&mut s, &hdr(1, 0, 0, 3), 99),
            Ok(SequenceCheck::Duplicate {
                base_offset: 0,
                max_timestamp: 1000
            })
        );
        assert_eq!(
            append(&mut s, &hdr(1, 0, 3, 2), 99),
            Ok(SequenceCheck::Duplicate {
                base_offset: 3,
                max_timestamp: 1000
            })
        );
    }

    #[test]
    fn a_gap_is_out_of_order() {
        let mut s = ProducerStates::default();
        append(&mut s, &hdr(1, 0, 0, 3), 0).unwrap();
        assert!(matches!(
            append(&mut s, &hdr(1, 0, 4, 1), 3),
            Err(SequenceError::OutOfOrder {
                first: 4,
                last: 2,
                ..
            })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            append(&mut s, &hdr(1, 0, i, 1), i64::from(i)).unwrap();
        }
        // Batch 0 fell out of the window: its retry is no longer recognised.
        assert!(matches!(
            append(&mut s, &hdr(1, 0, 0, 1), 9),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert_eq!(
            append(&mut s, &hdr(1, 0, 1, 1), 9),
            Ok(SequenceCheck::Duplicate {
                base_offset: 1,
                max_timestamp: 1000
            })
        );
    }

    #[test]
    fn epochs() {
        let mut s = ProducerStates::default();
        append(&mut s, &hdr(1, 2, 0, 3), 0).unwrap();
        assert!(matches!(
            append(&mut s, &hdr(1, 1, 3, 1), 3),
            Err(SequenceError::StaleEpoch {
                epoch: 1,
                current: 2,
                ..
            })
        ));
        // A new epoch must restart at 0.
        assert!(matches!(
            append(&mut s, &hdr(1, 3, 3, 1), 3),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert_eq!(
            append(&mut s, &hdr(1, 3, 0, 1), 3),
            Ok(SequenceCheck::Append)
        );
        // The old epoch's batches are forgotten.
        assert!(matches!(
            append(&mut s, &hdr(1, 2, 0, 3), 4),
            Err(SequenceError::StaleEpoch { .. })
        ));
    }

    #[test]
    fn unknown_producer_policy() {
        let s = ProducerStates::default();
        let h = hdr(5, 0, 17, 1);
        assert_eq!(
            s.check(&h, UnknownProducerPolicy::Accept),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            s.check(&h, UnknownProducerPolicy::Reject),
            Err(SequenceError::UnknownProducer(5))
        );
        assert_eq!(
            s.check(&hdr(5, 0, 0, 1), UnknownProducerPolicy::Reject),
            Ok(SequenceCheck::Append)
        );
    }

    /// The duplicate, as Kafka 2.5+ (and 4.x) answers it: a
    /// producer's first batch on a partition is refused before the append,
    /// the second (sequences 5..9) is accepted with no state for the
    /// producer; the retried first batch (0..4) is then out of order, a
    /// retry of the second is a duplicate, and the same batches under the
    /// next epoch from sequence 0 are new appends — the duplicate kring
    /// produced before it stopped rewriting batches of unknown fate.
    #[test]
    fn first_sequence_of_an_unknown_producer_is_accepted() {
        let mut s = ProducerStates::default();
        assert_eq!(
            append(&mut s, &hdr(7, 0, 5, 5), 0),
            Ok(SequenceCheck::Append)
        );
        assert!(matches!(
            append(&mut s, &hdr(7, 0, 0, 5), 5),
            Err(SequenceError::OutOfOrder {
                first: 0,
                last: 9,
                ..
            })
        ));
        assert_eq!(
            append(&mut s, &hdr(7, 0, 5, 5), 5),
            Ok(SequenceCheck::Duplicate {
                base_offset: 0,
                max_timestamp: 1000
            })
        );
        assert_eq!(
            append(&mut s, &hdr(7, 1, 0, 5), 5),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            append(&mut s, &hdr(7, 1, 5, 5), 10),
            Ok(SequenceCheck::Append),
            "a re-sent batch under new sequences is stored again"
        );
    }

    #[test]
    fn sequence_wraps() {
        let mut s = ProducerStates::default();
        append(&mut s, &hdr(1, 0, i32::MAX - 1, 2), 0).unwrap();
        assert_eq!(
            append(&mut s, &hdr(1, 0, 0, 1), 2),
            Ok(SequenceCheck::Append)
        );
    }
}
