//! Kafka's producer sequence arithmetic, shared by the producer core, the
//! `Sim` broker and kring-mock so the three cannot disagree.
//!
//! A producer numbers its records per partition from 0; after `i32::MAX`
//! the next sequence is 0 (never negative). The Java client's
//! `DefaultRecordBatch.incrementSequence` and the broker's
//! `ProducerStateManager` compute it the same way.

/// `seq + by` in sequence space: wraps from `i32::MAX` to 0.
///
/// `seq` is a sequence (0..=`i32::MAX`); -1, "none yet", plus 1 is 0.
pub fn increment_sequence(seq: i32, by: u32) -> i32 {
    const SPACE: i64 = 1 << 31;
    let sum = i64::from(seq) + i64::from(by);
    if sum <= i64::from(i32::MAX) {
        // Fits (seq + by is at least i32::MIN).
        sum as i32
    } else {
        (sum % SPACE) as i32
    }
}

/// The sequence of the last record of a batch of `records` records
/// starting at `base` (`records` of 0 counts as 1).
pub fn last_sequence(base: i32, records: u32) -> i32 {
    increment_sequence(base, records.saturating_sub(1))
}

/// Whether sequence `a` comes after `b`: within half the sequence space
/// ahead of it (so the later of two sequences of one producer's window is
/// after, across the wrap from `i32::MAX` to 0).
pub fn sequence_after(a: i32, b: i32) -> bool {
    const SPACE: i64 = 1 << 31;
    let d = (i64::from(a) - i64::from(b)).rem_euclid(SPACE);
    d != 0 && d < SPACE / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_to_zero_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX, 10), 9);
        assert_eq!(increment_sequence(-1, 1), 0);
        assert_eq!(increment_sequence(5, 0), 5);
        assert_eq!(increment_sequence(i32::MAX - 1, u32::MAX), i32::MAX - 2);
        assert_eq!(last_sequence(i32::MAX - 1, 4), 1);
        assert_eq!(last_sequence(7, 1), 7);
        assert_eq!(last_sequence(7, 0), 7);
    }

    #[test]
    fn after_is_ahead_within_half_the_space() {
        assert!(sequence_after(5, 4));
        assert!(!sequence_after(4, 5));
        assert!(!sequence_after(4, 4));
        assert!(sequence_after(0, i32::MAX));
        assert!(sequence_after(3, i32::MAX - 3));
        assert!(!sequence_after(i32::MAX - 3, 3));
        assert!(sequence_after(1 << 29, 0));
        // Exactly half the space apart, neither is after the other: "after"
        // stays one way round.
        assert!(sequence_after((1 << 30) - 1, 0) && !sequence_after(0, (1 << 30) - 1));
        assert!(!sequence_after(1 << 30, 0) && !sequence_after(0, 1 << 30));
    }

    /// The Java client's formula, for every increment a batch can have.
    #[test]
    fn matches_the_java_formula() {
        fn java(seq: i32, inc: i32) -> i32 {
            if seq > i32::MAX - inc {
                inc - (i32::MAX - seq) - 1
            } else {
                seq + inc
            }
        }
        for seq in [0, 1, 1000, i32::MAX - 100, i32::MAX - 1, i32::MAX] {
            for inc in [0, 1, 2, 99, 100, 101, 5000, i32::MAX] {
                assert_eq!(
                    increment_sequence(seq, inc as u32),
                    java(seq, inc),
                    "{seq} + {inc}"
                );
            }
        }
    }
}
