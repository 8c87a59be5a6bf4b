//! Stalled brokers and the partitioner (`partitioner.availability.timeout.ms`,
//! KIP-794): a node that has had batches ready for longer than the timeout
//! without taking a request (its connection down or connecting, throttled,
//! or with `max.in.flight` requests unanswered) is *stalled*, and the
//! adaptive sticky partitioner does not move to its partitions
//! (`PartitionSlot::leader_stalled`, read in `Shared::next_sticky`) until
//! it takes a request again. Records already placed there, keyed records
//! and explicit partitions are not affected: only where keyless records go
//! next.
//!
//! Why here and how it stays O(ready): the state changes only where the
//! sender already looks at a node — when it drains one
//! (`ProducerCore::poll_transmit`) — plus one timer per node while it
//! waits; marking a node's partitions walks the partition table once per
//! change of the node's state (a stall begins or ends), not per turn. A
//! partition whose leader changes takes its new leader's state
//! (`sync_leader_stalled`, called wherever metadata or a leader hint sets
//! a leader).
//!
//! The Java client measures the same thing per node (the time since it
//! last drained a node that had data ready) and leaves the partitions of
//! such nodes out of its load statistics.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::timer::TimerHandle;

use super::{PartKey, ProducerCore, TimerKey};

/// One node's stall state.
#[derive(Debug, Default)]
pub(crate) struct NodeStall {
    /// When the node was first found with batches ready that it could not
    /// take, since it last took a request.
    since: Option<Instant>,
    /// Fires at `since` + the timeout.
    timer: Option<TimerHandle>,
    /// Its partitions are marked stalled.
    stalled: bool,
}

impl ProducerCore {
    /// The sender built a request for node `n`: it is not stalled.
    pub(crate) fn node_drained(&mut self, n: i32) {
        if self.cfg.availability_timeout.is_none() {
            return; // nothing is ever marked
        }
        let Some(node) = self.nodes.get_mut(&n) else {
            return;
        };
        let st = std::mem::take(&mut node.stall);
        if let Some(h) = st.timer {
            self.timers.cancel(h);
        }
        if st.stalled {
            tracing::debug!(
                node = n,
                "node takes requests again: its partitions are chosen again"
            );
            self.mark_node_partitions(n, false);
        }
    }

    /// The sender looked at node `n` and built no request. If it has
    /// batches ready, the wait counts from now (unless it already does);
    /// if it has none, it is not stalled if it could take a request now
    /// (batches waiting out a retry backoff leave a dead broker's ready
    /// queue empty, which says nothing about the broker).
    pub(crate) fn node_undrained(&mut self, now: Instant, n: i32) {
        let Some(timeout) = self.cfg.availability_timeout else {
            return;
        };
        let Some(node) = self.nodes.get(&n) else {
            return;
        };
        if node.ready.is_empty() {
            if self.node_could_take(now, n) {
                self.node_drained(n);
            }
            return;
        }
        if node.stall.since.is_some() {
            return;
        }
        let at = now + timeout;
        let h = self.timers.insert(at, TimerKey::NodeStall(n));
        if let Some(node) = self.nodes.get_mut(&n) {
            node.stall.since = Some(now);
            node.stall.timer = Some(h);
        }
    }

    /// Node `n`'s wait reached the timeout: stalled, unless it could take
    /// a request now.
    pub(crate) fn node_stall_timer(&mut self, now: Instant, n: i32) {
        if self.node_could_take(now, n) {
            self.node_drained(n);
            return;
        }
        let Some(node) = self.nodes.get_mut(&n) else {
            return;
        };
        node.stall.timer = None;
        if node.stall.since.is_none() || node.stall.stalled {
            return;
        }
        node.stall.stalled = true;
        tracing::debug!(
            node = n,
            "node has not taken a request within partitioner.availability.timeout.ms: \
             keyless records avoid its partitions"
        );
        self.mark_node_partitions(n, true);
    }

    /// Whether node `n` could take a produce request now: a ready
    /// connection, not throttled, with room for another request.
    fn node_could_take(&self, now: Instant, n: i32) -> bool {
        let Some(c) = self
            .nodes
            .get(&n)
            .and_then(|node| node.conn)
            .and_then(|cid| self.conn(cid))
        else {
            return false;
        };
        c.state == super::conn::ConnState::Ready
            && !c.is_throttled(now)
            && (self.cfg.acks == crate::config::Acks::None
                || c.in_flight.len() < self.cfg.max_in_flight)
    }

    /// Sets the stalled mark of every partition led by `n`.
    fn mark_node_partitions(&mut self, n: i32, stalled: bool) {
        for t in &self.topics {
            for p in &t.partitions {
                if p.leader == Some(n) {
                    p.slot.leader_stalled.store(stalled, Ordering::Relaxed);
                }
            }
        }
    }

    /// Partition `pk` has a new leader (or none): it takes that leader's
    /// stalled mark.
    pub(crate) fn sync_leader_stalled(&mut self, pk: PartKey) {
        let leader = self.part(pk).leader;
        let stalled = leader
            .and_then(|n| self.nodes.get(&n))
            .is_some_and(|node| node.stall.stalled);
        self.part(pk)
            .slot
            .leader_stalled
            .store(stalled, Ordering::Relaxed);
    }
}
