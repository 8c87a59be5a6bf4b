//! Keyless records without a custom partitioner: which partition they
//! stick to, and when they move on (KIP-794, the Java client's built-in
//! partitioner, with its adaptive choice by queue depth).
//!
//! Why here, apart from the append: the switch runs once per
//! `batch.size` bytes, not per record, and reads other partitions' slots;
//! the append path only adds the bytes and calls in when a switch is due.

use crate::topics::TopicState;

use super::*;

impl Shared {
    /// Keyless sticky partitioning after an append of `added` bytes, as the
    /// Java client's built-in partitioner does (KIP-794): move on once
    /// `batch.size` bytes went to the partition and the record's batch is
    /// full (`full`: sealed by this record), or once twice that went there
    /// whatever the batch. Not when the record only sealed the batch before
    /// it (it did not fit): its own new batch would go out alone with it.
    #[inline(always)]
    pub(super) fn after_sticky_append(
        &self,
        sticky: &mut crate::topics::StickyState,
        topic: &TopicState,
        n: u32,
        added: usize,
        full: bool,
    ) {
        let st = sticky.get(topic.id);
        st.bytes += added;
        let b = self.cfg.batch_size;
        if (full && st.bytes >= b) || st.bytes >= 2 * b {
            let cur = st.partition;
            let p = self.next_sticky(&mut sticky.rng, topic, n, cur);
            *sticky.get(topic.id) = crate::topics::Sticky {
                partition: p,
                bytes: 0,
            };
        }
    }

    /// The sticky partitioner's next partition, other than `current` where
    /// there is a choice, among those with a leader (and, adaptive, not
    /// stalled: `current` again if it is the only such one).
    ///
    /// Adaptive (`partitioner.adaptive.partitioning.enable`, the Java
    /// default): of two candidates drawn at random, the one with fewer
    /// batches waiting in its queue (open and sealed, not yet taken into a
    /// request). A broker that answers slowly, or whose connection is down
    /// or throttled, leaves its partitions' batches queued, so its
    /// partitions are chosen less often and the faster brokers take more
    /// of the keyless records, while equal queues keep the choice uniform.
    /// The Java client weighs every partition of the topic by its queue
    /// (probability falling linearly with the queue's length); two random
    /// choices give the same preference for the cost of two slot locks per
    /// switch (the classic "power of two choices": the longest queue stays
    /// within a small constant of the shortest), where reading every queue
    /// would cost a lock per partition (10,000 of them at a switch every
    /// `batch.size` bytes). The locks are taken one at a time, after the
    /// record's own slot lock was released.
    #[cold]
    #[inline(never)]
    pub(super) fn next_sticky(
        &self,
        rng: &mut crate::backoff::SplitMix64,
        topic: &TopicState,
        n: u32,
        current: u32,
    ) -> u32 {
        let first = pick_sticky(rng, n, &topic.available, current);
        if !self.cfg.adaptive {
            return first;
        }
        // Partitions of a stalled leader (`partitioner.availability.timeout.ms`)
        // are passed over: a few draws find another, or a walk from a
        // random place does (rarely: each draw misses with the stalled
        // share); with every partition stalled the first stands (Java
        // falls back to a uniform choice when all are left out).
        let stalled = |p: u32| {
            topic
                .partitions
                .get(p as usize)
                .is_some_and(|s| s.leader_stalled.load(std::sync::atomic::Ordering::Relaxed))
        };
        let draw = |rng: &mut crate::backoff::SplitMix64, not: u32| {
            (0..4)
                .map(|_| pick_sticky(rng, n, &topic.available, current))
                .find(|&p| p != not && !stalled(p))
        };
        let walk = |rng: &mut crate::backoff::SplitMix64| {
            let len = if topic.available.is_empty() {
                n
            } else {
                topic.available.len() as u32
            };
            let start = rng.below(len.max(1));
            (0..len)
                .map(|i| {
                    let k = (start + i) % len;
                    topic.available.get(k as usize).copied().unwrap_or(k)
                })
                .find(|&p| p != current && !stalled(p))
        };
        // Only the current partition is not stalled: it stays (the Java
        // client chooses among the partitions not left out, the current
        // one included), rather than move to a stalled one.
        let Some(a) = (!stalled(first))
            .then_some(first)
            .or_else(|| draw(rng, u32::MAX))
            .or_else(|| walk(rng))
            .or_else(|| (topic.sticky_usable(current) && !stalled(current)).then_some(current))
        else {
            return first;
        };
        // A second candidate, also not `current` (left on purpose) and
        // not `a`: a few draws, where a partition of two has no second.
        let Some(b) = draw(rng, a) else {
            return a;
        };
        let depth = |p: u32| topic.partitions.get(p as usize).map(|s| s.lock().depth());
        match (depth(a), depth(b)) {
            (Some(da), Some(db)) if db < da => b,
            _ => a,
        }
    }
}

/// A new sticky partition: uniformly among the available partitions (all
/// partitions while none is), different from `current` when possible.
fn pick_sticky(
    rng: &mut crate::backoff::SplitMix64,
    n: u32,
    available: &[u32],
    current: u32,
) -> u32 {
    if available.is_empty() {
        if n <= 1 {
            return 0;
        }
        let mut p = rng.below(n);
        if p == current {
            p = (p + 1 + rng.below(n - 1)) % n;
        }
        return p;
    }
    if available.len() == 1 {
        return available[0];
    }
    let len = available.len() as u32;
    let mut i = rng.below(len);
    if available[i as usize] == current {
        i = (i + 1 + rng.below(len - 1)) % len;
    }
    available[i as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::SplitMix64;
    use crate::topics::{PartitionSlot, TopicStatus};
    use std::sync::atomic::Ordering::Relaxed;

    /// Topic `t` with `n` partitions, each with a leader; those in
    /// `stalled` are led by a stalled broker.
    fn topic(n: u32, stalled: &[u32]) -> TopicState {
        let partitions: Arc<[Arc<PartitionSlot>]> = (0..n)
            .map(|p| {
                let slot = PartitionSlot::default();
                slot.available.store(true, Relaxed);
                slot.leader_stalled.store(stalled.contains(&p), Relaxed);
                Arc::new(slot)
            })
            .collect();
        TopicState {
            id: 0,
            had: n,
            name: Arc::from("t"),
            partitions,
            available: (0..n).collect(),
            status: TopicStatus::Ready,
        }
    }

    /// One partition of ten not stalled: the four random draws mostly miss
    /// it, and the walk over the partitions finds it, from any current
    /// partition (itself included: it stays).
    #[test]
    fn the_one_partition_not_stalled_is_found() {
        let shared = Shared::new(&crate::Config::default());
        let mut rng = SplitMix64::new(5);
        let t = topic(10, &[0, 1, 2, 3, 4, 5, 6, 8, 9]);
        for current in 0..10 {
            for _ in 0..50 {
                assert_eq!(shared.next_sticky(&mut rng, &t, 10, current), 7);
            }
        }
        // Every partition stalled: the first draw stands (as Java falls
        // back to a uniform choice), never the current one.
        let all = topic(3, &[0, 1, 2]);
        for _ in 0..50 {
            let p = shared.next_sticky(&mut rng, &all, 3, 1);
            assert!(p == 0 || p == 2, "{p}");
        }
    }

    /// Uniform over the available partitions other than the current one
    /// (over all partitions while none is available).
    #[test]
    fn pick_sticky_avoids_current_and_stays_available() {
        let mut rng = SplitMix64::new(3);
        let (mut available, mut all) = ([0; 10], [0; 3]);
        for _ in 0..600 {
            available[pick_sticky(&mut rng, 10, &[1, 4, 6], 4) as usize] += 1;
            all[pick_sticky(&mut rng, 3, &[], 2) as usize] += 1;
        }
        let picked: Vec<usize> = (0..10).filter(|&p| available[p] > 0).collect();
        assert_eq!(picked, [1, 6], "{available:?}");
        // 300 each expected; a skew to one side (2:1) would give 200.
        assert!(available[1] > 250 && available[6] > 250, "{available:?}");
        assert!(all[0] > 250 && all[1] > 250 && all[2] == 0, "{all:?}");
        assert_eq!(pick_sticky(&mut rng, 5, &[3], 3), 3);
        assert_eq!(pick_sticky(&mut rng, 1, &[], 0), 0);
    }
}
