//! Cluster metadata: brokers, partition leaders, topic existence.
//!
//! Refreshed periodically (`metadata.max.age.ms`) and early when something
//! says it is stale: a topic a sender waits for, a partition with work and
//! no leader, NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION answers,
//! a lost connection. Early refreshes are spaced by the retry backoff so a
//! broken cluster is not hammered. Processing a response is O(partitions in
//! it) — the one place that looks at every partition, once per refresh,
//! never per send cycle.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kring_protocol::message::decode_response_frame;
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use kring_protocol::ErrorCode;

use crate::delivery::DeliveryError;
use crate::timer::TimerHandle;
use crate::topics::{PartitionSlot, TopicState, TopicStatus};

use super::conn::{ConnId, ReqKind};
use super::partition::PartCore;
use super::{ProducerCore, TimerKey, Transmit};

/// Metadata request scheduling. Its fields are private to this module:
/// other parts of the core only say that a refresh is wanted
/// ([`MetadataState::set_want_soon`], `request_metadata(_soon)`) and
/// never touch the in-flight request, the refresh timer or the backoff
/// counters, so at most one Metadata request is in flight and at most one
/// refresh timer is armed.
#[derive(Debug, Default)]
pub(crate) struct MetadataState {
    in_flight: Option<ConnId>,
    /// Send as soon as a connection can carry it.
    due: bool,
    timer: Option<TimerHandle>,
    last_sent: Option<Instant>,
    failures: u32,
    /// Consecutive responses that still lacked a wanted topic or leader
    /// (spaces early refreshes exponentially).
    unresolved: u32,
    /// Something wants a refresh soon (set where `now` is not at hand).
    want_soon: bool,
    /// Refresh again soon after the in-flight request returns (it was
    /// built before what is now wanted, such as a topic a sender just
    /// asked for).
    again: bool,
}

impl MetadataState {
    /// Refresh soon (where `now` is not at hand: the next poll schedules it).
    pub(crate) fn set_want_soon(&mut self) {
        self.want_soon = true;
    }
}

impl ProducerCore {
    /// Asks for metadata now.
    pub(crate) fn request_metadata(&mut self, _now: Instant) {
        if self.meta.in_flight.is_some() {
            self.meta.again = true;
            return;
        }
        if let Some(h) = self.meta.timer.take() {
            self.timers.cancel(h);
        }
        self.meta.due = true;
    }

    /// Asks for metadata soon: now, or when the backoff since the last
    /// request allows.
    pub(crate) fn request_metadata_soon(&mut self, now: Instant) {
        if self.life.is_finished() {
            return;
        }
        if self.meta.in_flight.is_some() {
            self.meta.again = true;
            return;
        }
        if self.meta.due {
            return;
        }
        let attempt = self
            .meta
            .failures
            .max(self.meta.unresolved.saturating_sub(1));
        let backoff = self.cfg.retry.backoff(attempt, &mut self.rng);
        let at = self.meta.last_sent.map_or(now, |l| (l + backoff).max(now));
        self.schedule_metadata(at);
    }

    fn schedule_metadata(&mut self, at: Instant) {
        match self.meta.timer {
            Some(h) => {
                if self.timers.deadline(h).is_some_and(|d| d > at) {
                    self.timers.reschedule(h, at);
                }
            }
            None => {
                let h = self.timers.insert(at, TimerKey::Metadata);
                self.meta.timer = Some(h);
            }
        }
    }

    pub(crate) fn metadata_timer(&mut self) {
        self.meta.timer = None;
        self.meta.due = true;
    }

    /// The metadata request was lost with its connection.
    pub(crate) fn metadata_lost(&mut self, now: Instant) {
        self.meta.in_flight = None;
        self.meta.failures += 1;
        self.request_metadata_soon(now);
    }

    /// Builds a metadata request if one is due and a connection can carry
    /// it (starting a connection otherwise).
    pub(crate) fn poll_metadata(&mut self, now: Instant) -> Option<Transmit> {
        if std::mem::take(&mut self.meta.want_soon) {
            self.request_metadata_soon(now);
        }
        if !self.meta.due || self.meta.in_flight.is_some() || self.life.is_finished() {
            return None;
        }
        let id = self.control_conn(now)?;
        let version = self.conn(id)?.versions.metadata;
        self.mark_idle_topics(now);
        let req = MetadataRequest {
            // Never `None`, which asks for every topic in the cluster: with
            // every topic idle, an empty list still brings the brokers.
            topics: Some(
                self.topics
                    .iter()
                    .filter(|t| !t.idle)
                    .map(|t| MetadataRequestTopic {
                        name: Some(t.name.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        match self.send_request(now, id, version, &req, ReqKind::Metadata, true, 256) {
            Ok(t) => {
                self.meta.due = false;
                self.meta.again = false;
                self.meta.in_flight = Some(id);
                self.meta.last_sent = Some(now);
                self.stats.metadata_requests += 1;
                tracing::debug!(%id, topics = self.topics.len(), "metadata request sent");
                Some(t)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a metadata request");
                self.meta.due = false;
                self.meta.failures += 1;
                self.request_metadata_soon(now);
                None
            }
        }
    }

    pub(crate) fn handle_metadata(&mut self, now: Instant, id: ConnId, version: i16, frame: Bytes) {
        self.meta.in_flight = None;
        let resp: MetadataResponse = match decode_response_frame::<MetadataRequest>(frame, version)
        {
            Ok((_, r)) => r,
            Err(e) => {
                tracing::warn!(%id, error = %e, "undecodable metadata response");
                self.meta.failures += 1;
                self.drop_conn(
                    now,
                    id,
                    &format!("undecodable metadata response: {e}"),
                    true,
                );
                // Nothing else asks again (a bootstrap connection's loss
                // does not): without this, senders waiting for a topic
                // would wait out max.block.ms.
                self.request_metadata_soon(now);
                return;
            }
        };
        self.meta.failures = 0;
        self.count_throttle(id, resp.throttle_time_ms);
        self.throttle_conn(now, id, version >= 6, resp.throttle_time_ms);
        tracing::debug!(
            %id,
            brokers = resp.brokers.len(),
            topics = resp.topics.len(),
            "metadata response"
        );
        let again = std::mem::take(&mut self.meta.again);
        let mut soon = false;

        // Brokers.
        for b in &resp.brokers {
            let addr = format!("{}:{}", b.host, b.port);
            match self.nodes.get_mut(&b.node_id) {
                Some(n) if n.addr == addr => {}
                Some(n) => {
                    n.addr = addr;
                    if let Some(c) = n.conn {
                        self.drop_conn(now, c, "broker address changed", true);
                    }
                }
                None => {
                    self.nodes.add(b.node_id, addr);
                }
            }
        }

        // Topics.
        let mut publish = Vec::new();
        // Topics created again (a new topic id) since the last response.
        let mut gone = Vec::new();
        for t in &resp.topics {
            let Some(name) = t.name.as_deref() else {
                continue;
            };
            let Some(tid) = self.topics.id_of(name) else {
                continue;
            };
            let err = ErrorCode(t.error_code);
            let ti = tid as usize;
            if err.is_ok() {
                let mut recreated = false;
                if t.topic_id != [0; 16] {
                    let known = std::mem::replace(&mut self.topics[ti].topic_id, t.topic_id);
                    if known != [0; 16] && known != t.topic_id {
                        // Deleted and created again: the new topic's
                        // leader epochs start over, and must not be taken
                        // for stale ones (KIP-516; the Java client's
                        // `Metadata.updateLatestMetadata`).
                        tracing::info!(
                            topic = name,
                            "topic id changed (topic recreated); forgetting its leader epochs"
                        );
                        for p in &mut self.topics[ti].partitions {
                            p.leader_epoch = -1;
                        }
                        recreated = true;
                    }
                }
                let (changed, need) = self.apply_partitions(now, tid, t);
                soon |= need;
                if recreated {
                    gone.push(tid);
                }
                // A partition the topic had is missing (recreated with
                // fewer, or a broker lagging behind an increase): while a
                // sender waits for it, keep asking.
                soon |= self.missing_partition_wanted(now, tid);
                if self.topics[ti].partitions.is_empty() {
                    // Nothing usable listed (no partitions, or only
                    // invalid indexes): not ready; ask again while a
                    // sender waits.
                    soon |= self.topics[ti]
                        .wanted_at
                        .is_some_and(|w| now < w + self.cfg.max_block);
                } else if changed || self.topics[ti].status != TopicStatus::Ready {
                    self.topics[ti].status = TopicStatus::Ready;
                    publish.push(self.topic_state(tid));
                }
            } else if err.is_retriable() || err == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
                let wanted = self.topics[ti]
                    .wanted_at
                    .is_some_and(|w| now < w + self.cfg.max_block);
                let missing = err == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    && self.topics[ti]
                        .first_wanted
                        .is_some_and(|f| now >= f + self.cfg.topic_metadata_propagation);
                match self.topics[ti].status {
                    TopicStatus::Ready => {
                        // Known before (maybe being deleted or moved): keep
                        // the partitions; batches retry until their deadline.
                        soon |= self.topic_has_work(tid);
                    }
                    _ if missing => {
                        // Past its propagation window: the topic does not
                        // exist. Waiting senders fail now; later sends fail
                        // at once and ask again (`topic_wanted`).
                        let st = TopicStatus::Failed(err);
                        if self.topics[ti].status != st {
                            tracing::warn!(
                                topic = name,
                                "topic does not exist (UNKNOWN_TOPIC_OR_PARTITION past topic.metadata.propagation.max.ms)"
                            );
                            self.topics[ti].status = st;
                            publish.push(self.topic_state(tid));
                        }
                    }
                    _ => {
                        let st = TopicStatus::Pending {
                            last_error: Some(err),
                        };
                        if self.topics[ti].status != st {
                            self.topics[ti].status = st;
                            publish.push(self.topic_state(tid));
                        }
                        soon |= wanted;
                    }
                }
            } else {
                tracing::warn!(topic = name, error = err.name(), "topic is not usable");
                if self.topics[ti].status != TopicStatus::Failed(err) {
                    self.topics[ti].status = TopicStatus::Failed(err);
                    publish.push(self.topic_state(tid));
                }
            }
        }
        self.shared.topics.publish(publish);
        // After the publish: producer threads no longer choose the
        // partitions these topics lost (one that read the table just
        // before may still append to one: that batch waits for a leader
        // until its delivery timeout).
        for tid in gone {
            self.fail_vanished(tid);
        }

        // Bootstrap connections served their purpose once brokers are known.
        if !self.nodes.is_empty() {
            for i in 0..self.conns.bootstrap().len() {
                if let Some(c) = self.conns.bootstrap()[i].conn {
                    if self.conn(c).is_some_and(|c| c.in_flight.is_empty()) {
                        self.forget_conn(c);
                        self.conns.push_close(c);
                    }
                }
            }
        }

        soon |= again && self.wants_fast_refresh(now);
        if soon {
            self.meta.unresolved += 1;
            self.request_metadata_soon(now);
        } else if !self.life.is_finished() {
            self.meta.unresolved = 0;
            // Fresh metadata: the next refresh is the periodic one.
            if let Some(h) = self.meta.timer.take() {
                self.timers.cancel(h);
            }
            let h = self
                .timers
                .insert(now + self.cfg.metadata_max_age, TimerKey::Metadata);
            self.meta.timer = Some(h);
        }
    }

    /// Whether an early refresh asked for during the request is still
    /// useful: a sender waits for a topic that is still unknown.
    /// (Partitions without a leader are found while applying the response.)
    fn wants_fast_refresh(&self, now: Instant) -> bool {
        self.topics.iter().any(|t| {
            (!matches!(t.status, TopicStatus::Ready) || (t.count as usize) < t.partitions.len())
                && t.wanted_at.is_some_and(|w| now < w + self.cfg.max_block)
        })
    }

    /// Whether topic `tid` lacks a partition it had while a sender asked
    /// for its metadata within `max.block.ms` (a send to an explicit
    /// partition in `count..` waits for it).
    fn missing_partition_wanted(&self, now: Instant, tid: u32) -> bool {
        let t = &self.topics[tid as usize];
        (t.count as usize) < t.partitions.len()
            && t.wanted_at.is_some_and(|w| now < w + self.cfg.max_block)
    }

    /// Topic `tid` was deleted and created again (a new topic id) with
    /// fewer partitions: the batches still buffered for the partitions it
    /// no longer has can never be sent, and fail now with
    /// [`DeliveryError::UnknownPartition`] rather than at their delivery
    /// timeout. Only buffered ones, never sent (as a purge takes them): a
    /// batch on the wire or waiting for a retry keeps its course (with
    /// idempotence it holds a sequence) and fails at its delivery timeout.
    fn fail_vanished(&mut self, tid: u32) {
        let t = &self.topics[tid as usize];
        let (name, count, len) = (t.name.clone(), t.count, t.partitions.len() as u32);
        for pi in count..len {
            let err = DeliveryError::UnknownPartition {
                topic: name.clone(),
                partition: pi as i32,
            };
            let failed = self.fail_buffered((tid, pi), &err);
            if failed > 0 {
                tracing::warn!(
                    topic = &*name,
                    partition = pi,
                    records = failed,
                    "topic recreated without this partition: its buffered records fail"
                );
            }
        }
    }

    /// Marks idle the topics nothing was sent to for `metadata.max.idle.ms`
    /// and that have nothing buffered or in flight nor a sender that may
    /// still wait for their metadata (`max.block.ms`), so that metadata
    /// requests leave them out (the Java client's `metadata.max.idle.ms`:
    /// a producer that wrote to many short-lived topics does not ask for
    /// all of them at every refresh). What the core keeps of them
    /// (partitions, idempotent sequences, the published table) stays, so
    /// the next send needs no metadata first; it clears the mark
    /// (`batch_opened`, `topic_wanted`). O(partitions of topics not yet
    /// idle), at each metadata request.
    fn mark_idle_topics(&mut self, now: Instant) {
        let max_idle = self.cfg.metadata_max_idle;
        for tid in 0..self.topics.len() as u32 {
            let t = &mut self.topics[tid as usize];
            if t.idle {
                continue;
            }
            let Some(used) = t.last_used else {
                t.last_used = Some(now);
                continue;
            };
            // A sender may still wait for it: a topic not known yet (a
            // failed one fails its senders at once), or a partition a
            // lagging broker left out (`missing_partition_wanted`).
            let waited_for = t.wanted_at.is_some_and(|w| now < w + self.cfg.max_block)
                && (matches!(t.status, TopicStatus::Pending { .. })
                    || (t.count as usize) < t.partitions.len());
            if now.saturating_duration_since(used) < max_idle
                || waited_for
                || self.topic_has_work(tid)
            {
                continue;
            }
            let t = &mut self.topics[tid as usize];
            t.idle = true;
            tracing::debug!(
                topic = &*t.name,
                "topic idle: left out of metadata requests"
            );
        }
    }

    fn topic_has_work(&self, tid: u32) -> bool {
        self.topics[tid as usize]
            .partitions
            .iter()
            .any(|p| p.has_unsent_work() || p.in_flight > 0)
    }

    /// Applies partition leaders. Returns (snapshot changed, refresh soon).
    ///
    /// A topic's partitions are numbered from 0 and a response lists each
    /// once, so an index outside `0..listed` (`listed`: the entries the
    /// response holds) is a protocol error: that entry is ignored and
    /// logged. Nothing is ever sized by an index the broker sent, only by
    /// the number of entries it actually sent.
    fn apply_partitions(
        &mut self,
        _now: Instant,
        tid: u32,
        t: &kring_protocol::messages::metadata::MetadataResponseTopic,
    ) -> (bool, bool) {
        let ti = tid as usize;
        let listed = t.partitions.len();
        let valid = |i: i32| usize::try_from(i).is_ok_and(|i| i < listed);
        let invalid = t
            .partitions
            .iter()
            .filter(|p| !valid(p.partition_index))
            .count();
        if invalid > 0 {
            tracing::warn!(
                topic = t.name.as_deref().unwrap_or(""),
                listed,
                invalid,
                "metadata lists partition indexes outside 0..{listed}; ignoring them"
            );
        }
        let count = t
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .filter(|&i| valid(i))
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut changed = false;
        let mut need = false;
        // Nodes whose ready queue holds a partition that now has another
        // leader.
        let mut left: Vec<i32> = Vec::new();
        while self.topics[ti].partitions.len() < count {
            let slot = Arc::new(PartitionSlot::default());
            self.topics[ti].partitions.push(PartCore::new(slot));
            changed = true;
        }
        // The table never shrinks (slots are shared with producer threads
        // and batches); a smaller count is published beside it. Nothing
        // listed at all changes nothing (the caller keeps the topic as it
        // was).
        if count > 0 && self.topics[ti].count != count as u32 {
            self.topics[ti].count = count as u32;
            changed = true;
        }
        // Partitions the response does not list have no leader now (the
        // Java client's accumulator holds their batches the same way):
        // nothing is sent to them until metadata lists them again.
        let known = self.topics[ti].count;
        for pi in known..self.topics[ti].partitions.len() as u32 {
            let pk = (tid, pi);
            let part = self.part(pk);
            if part.has_unsent_work() || part.in_flight > 0 {
                // As for a listed partition without a leader: ask again.
                need = true;
            }
            let Some(old) = part.leader.take() else {
                continue;
            };
            part.slot.available.store(false, Ordering::Relaxed);
            part.slot.leader_stalled.store(false, Ordering::Relaxed);
            changed = true;
            if part.queued && !left.contains(&old) {
                left.push(old);
            }
        }
        for p in &t.partitions {
            if !valid(p.partition_index) {
                continue;
            }
            let pk = (tid, p.partition_index as u32);
            let leader =
                (p.leader_id >= 0 && self.nodes.contains_key(&p.leader_id)).then_some(p.leader_id);
            let part = self.part(pk);
            if p.leader_epoch >= 0 && part.leader_epoch >= 0 && p.leader_epoch < part.leader_epoch {
                continue; // older than what we know (KIP-320)
            }
            if p.leader_epoch >= 0 {
                part.leader_epoch = p.leader_epoch;
            }
            let old = part.leader;
            part.leader = leader;
            part.slot
                .available
                .store(leader.is_some(), Ordering::Relaxed);
            if old.is_some() != leader.is_some() {
                changed = true;
            }
            if leader != old {
                self.sync_leader_stalled(pk);
            }
            let part = self.part(pk);
            let work = part.has_unsent_work();
            if leader.is_none() && (work || part.in_flight > 0) {
                need = true;
            }
            if leader != old && part.queued {
                if let Some(o) = old {
                    if !left.contains(&o) {
                        left.push(o);
                    }
                }
            }
            if leader != old && leader.is_some() && work {
                self.mark_ready(pk);
            }
        }
        for n in left {
            self.forward_moved(n);
        }
        (changed, need)
    }

    /// The snapshot producer threads see for topic `tid`.
    pub(crate) fn topic_state(&self, tid: u32) -> TopicState {
        let t = &self.topics[tid as usize];
        let listed = &t.partitions[..t.count as usize];
        let partitions: Arc<[Arc<PartitionSlot>]> = listed.iter().map(|p| p.slot.clone()).collect();
        let available: Arc<[u32]> = listed
            .iter()
            .enumerate()
            .filter(|(_, p)| p.leader.is_some())
            .map(|(i, _)| i as u32)
            .collect();
        TopicState {
            id: tid,
            had: t.partitions.len() as u32,
            name: t.name.clone(),
            partitions,
            available,
            status: t.status,
        }
    }

    /// Applies a leader hint (KIP-951) from a produce response. Returns
    /// whether the partition now has a different, known leader.
    pub(crate) fn apply_leader_hint(&mut self, pk: (u32, u32), leader: i32, epoch: i32) -> bool {
        if leader < 0 || !self.nodes.contains_key(&leader) {
            return false;
        }
        let part = self.part(pk);
        if epoch >= 0 && part.leader_epoch >= 0 && epoch < part.leader_epoch {
            return false; // older than what we know (KIP-320)
        }
        if epoch >= 0 {
            part.leader_epoch = epoch;
        }
        let old = part.leader;
        let changed = old != Some(leader);
        part.leader = Some(leader);
        part.slot.available.store(true, Ordering::Relaxed);
        if changed {
            self.sync_leader_stalled(pk);
        }
        let part = self.part(pk);
        if changed && part.queued {
            // Waiting in the old leader's ready queue, which only a ready
            // connection to it drains: it follows the new leader once the
            // response is read, as after a metadata update.
            if let Some(o) = old {
                if !self.hinted_away.contains(&o) {
                    self.hinted_away.push(o);
                }
            }
        }
        changed
    }
}
