//! Choosing a partition for a record.
//!
//! Keyed records must land where the Java client would put them, so that
//! kring and Java producers writing the same keys agree on partitions:
//! `to_positive(murmur2(key)) % partitions`, with Kafka's murmur2 variant
//! (seed `0x9747b28c`) and `to_positive(x) = x & 0x7fffffff`.
//!
//! Keyless records use the "sticky" strategy of KIP-480/KIP-794: a producer
//! thread keeps writing to one partition until it has appended about
//! `batch.size` bytes there (or its batch was sealed), then switches to
//! another available partition. Batches fill up instead of every partition
//! receiving a trickle. With `partitioner.adaptive.partitioning.enable`
//! (the default) the next partition is the less loaded of two random
//! candidates (`Shared::next_sticky` says why two). The sticky state is per producer thread (see
//! `accumulator`), so threads do not contend on a shared counter.
//!
//! A [`Partitioner`] can override both decisions; returning `None` asks for
//! the sticky behaviour.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{PoisonError, RwLock};

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`), seed
/// `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // The Java code falls through from case 3 to 1.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's `Utils.toPositive`: clears the sign bit (not `abs`, so
/// `i32::MIN` maps to 0).
#[inline]
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition the Java client's default partitioner picks for `key`
/// among `num_partitions` (which must be non-zero).
#[inline]
pub fn partition_for_key(key: &[u8], num_partitions: u32) -> u32 {
    debug_assert!(num_partitions > 0);
    (to_positive(murmur2(key)) as u32) % num_partitions.max(1)
}

/// What a partitioner may look at: the topic's partition count and which
/// partitions currently have a known leader.
#[derive(Debug, Clone, Copy)]
pub struct PartitionView<'a> {
    /// Number of partitions of the topic (at least 1).
    pub num_partitions: u32,
    /// Partitions with a known leader, ascending. May be empty while every
    /// leader is unknown.
    pub available: &'a [u32],
}

/// Chooses partitions for records. Called on the producer thread inside
/// `send`, so it must be cheap and must not block.
///
/// It runs fenced: a partitioner that panics fails only that record, at
/// once, with `SendError::PartitionerPanicked` (the panic is caught; the
/// process's panic hook still reports it), and later records are
/// partitioned as usual.
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The partition for this record, or `None` to use the sticky keyless
    /// strategy. A returned partition `>= num_partitions` fails the send at
    /// once with `SendError::InvalidPartition` (nothing waits for the topic
    /// to grow).
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        view: &PartitionView<'_>,
    ) -> Option<u32>;
}

/// The Java client's default: murmur2 of the key when there is one (over all
/// partitions, available or not, so a key's partition never changes while
/// the partition count stays the same); sticky for keyless records.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    #[inline]
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        view: &PartitionView<'_>,
    ) -> Option<u32> {
        key.map(|k| partition_for_key(k, view.num_partitions))
    }
}

/// Ignores keys: every record is placed by the sticky strategy (the Java
/// client's `partitioner.ignore.keys=true`).
#[derive(Debug, Default, Clone, Copy)]
pub struct UniformStickyPartitioner;

impl Partitioner for UniformStickyPartitioner {
    #[inline]
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        _view: &PartitionView<'_>,
    ) -> Option<u32> {
        None
    }
}

/// Spreads records one by one over the available partitions (all partitions
/// while none is available), ignoring keys, like the Java client's
/// `RoundRobinPartitioner`, with a counter per topic as it has (records
/// sent to several topics in turn still go round each topic's partitions).
/// A map lookup under a read lock and an atomic increment per record, so
/// prefer the sticky default for throughput.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: RwLock<HashMap<Box<str>, AtomicU32>>,
}

impl RoundRobinPartitioner {
    /// The topic's counter value before this record's increment.
    fn next(&self, topic: &str) -> u32 {
        // Nothing panics while the lock is held: a poisoned lock is intact.
        let counters = self.counters.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = counters.get(topic) {
            return c.fetch_add(1, Ordering::Relaxed);
        }
        drop(counters);
        self.counters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(Box::from(topic))
            .or_default()
            .fetch_add(1, Ordering::Relaxed)
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(
        &self,
        topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        view: &PartitionView<'_>,
    ) -> Option<u32> {
        let n = self.next(topic);
        if view.available.is_empty() {
            Some(n % view.num_partitions.max(1))
        } else {
            Some(view.available[n as usize % view.available.len()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from the Java client's `UtilsTest.testMurmur2` (also quoted
    /// by kafka_ex, kafkabr and ClickHouse's `kafkaMurmurHash` tests).
    #[test]
    fn murmur2_matches_java_utils_test() {
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2(s.as_bytes()), *want, "murmur2({s:?})");
        }
    }

    /// More vectors quoted from the Java implementation (akka's Murmur2Spec),
    /// covering every tail length 1..=3 and an exact 4-byte block.
    #[test]
    fn murmur2_tail_lengths() {
        let cases: &[(&str, i32)] = &[
            ("1", -1_993_445_489),
            ("12", 126_087_238),
            ("123", -267_702_483),
            ("1234", -1_614_185_708),
            ("12345", -1_188_365_604),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2(s.as_bytes()), *want, "murmur2({s:?})");
        }
    }

    #[test]
    fn to_positive_clears_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-973_932_308), -973_932_308 & 0x7fff_ffff);
    }

    #[test]
    fn keyed_partition_matches_java_formula() {
        // toPositive(murmur2("foobar")) % 7, computed by hand:
        let h = to_positive(-790_332_482) as u32;
        assert_eq!(partition_for_key(b"foobar", 7), h % 7);
        let view = PartitionView {
            num_partitions: 7,
            available: &[],
        };
        assert_eq!(
            DefaultPartitioner.partition("t", Some(b"foobar"), None, &view),
            Some(h % 7)
        );
        assert_eq!(DefaultPartitioner.partition("t", None, None, &view), None);
        assert_eq!(
            UniformStickyPartitioner.partition("t", Some(b"foobar"), None, &view),
            None
        );
    }

    #[test]
    fn round_robin_cycles_over_available() {
        let rr = RoundRobinPartitioner::default();
        let view = PartitionView {
            num_partitions: 10,
            available: &[2, 5, 7],
        };
        let got: Vec<_> = (0..6)
            .map(|_| rr.partition("t", None, None, &view).unwrap())
            .collect();
        assert_eq!(got, vec![2, 5, 7, 2, 5, 7]);
        let none = PartitionView {
            num_partitions: 3,
            available: &[],
        };
        assert_eq!(rr.partition("t", None, None, &none), Some(6 % 3));
    }
}
