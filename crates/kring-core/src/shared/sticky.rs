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
    /// there is a choice, among those with a leader.
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
        let Some(a) = (!stalled(first))
            .then_some(first)
            .or_else(|| draw(rng, u32::MAX))
            .or_else(|| walk(rng))
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

    #[test]
    fn pick_sticky_avoids_current_and_stays_available() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..100 {
            let p = pick_sticky(&mut rng, 10, &[1, 4, 6], 4);
            assert!(p == 1 || p == 6);
            let q = pick_sticky(&mut rng, 3, &[], 2);
            assert!(q < 2);
        }
        assert_eq!(pick_sticky(&mut rng, 5, &[3], 3), 3);
        assert_eq!(pick_sticky(&mut rng, 1, &[], 0), 0);
    }
}
