//! Fetch (key 1): v4–v17.
//!
//! Behavior:
//! - Sessions (KIP-227): the mock never creates fetch sessions. A request
//!   with session id 0 is a full fetch and is answered with session id 0,
//!   which tells the client no session exists (what a Kafka broker answers
//!   when its session cache is full), so every request stays a full fetch.
//!   A non-zero session id: FETCH_SESSION_ID_NOT_FOUND (top-level, v7+).
//!   `forgotten_topics_data` is ignored for the same reason.
//! - Per partition: fault error; unknown topic name (v4–v12) or partition:
//!   UNKNOWN_TOPIC_OR_PARTITION; unknown topic id (v13+): UNKNOWN_TOPIC_ID;
//!   not the leader: NOT_LEADER_OR_FOLLOWER with the `current_leader` hint
//!   (v12+) and the leader's endpoint in `node_endpoints` (v16+);
//!   `current_leader_epoch` (v9+) older than the partition's:
//!   FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH; a fetch offset below
//!   the log start or above the high watermark: OFFSET_OUT_OF_RANGE.
//! - Data: whole stored batches, byte for byte as appended (with their
//!   assigned base offsets), starting with the batch that holds the fetch
//!   offset (the client skips the records before it, as with Kafka).
//!   Batches are added while they fit `partition_max_bytes` and the
//!   request's `max_bytes` (v3+), except that the first batch of the
//!   response is returned even if larger (KIP-74), so a consumer always
//!   progresses. Batches are never cut.
//! - Long poll: when the response holds fewer than `min_bytes` bytes of
//!   records and no partition has an error, the broker waits up to
//!   `max_wait_ms` for appends (woken by every Produce), then answers with
//!   whatever there is.
//! - High watermark = log end (one replica). Last stable offset: the first
//!   offset of the oldest transaction still open on the partition, else
//!   the high watermark (reported at both isolation levels, as Kafka
//!   does). read_uncommitted (isolation level 0) reads up to the high
//!   watermark and gets null aborted transactions. read_committed (1)
//!   reads only batches below the last stable offset and gets the aborted
//!   transactions (producer id, first offset) that overlap what it read,
//!   which the consumer uses to drop their records (Kafka's
//!   `collectAbortedTransactions`); transaction markers are returned as
//!   stored, for the consumer to skip. No preferred read replica (-1). Follower fields
//!   (replica id/state, last fetched epoch, log start offset, rack) are
//!   accepted and ignored: the mock's partitions have no followers.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kring_protocol::messages::fetch::{
    AbortedTransaction, FetchRequest, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch,
    NodeEndpoint, PartitionData,
};

use super::list_offsets::check_leader_epoch;
use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::state::State;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 4..=17;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// The partitions a request reads, for fault matching (topic ids resolved
/// to names).
pub(crate) fn partitions(version: i16, req: &FetchRequest, st: &State) -> Vec<(String, i32)> {
    req.topics
        .iter()
        .filter_map(|t| topic_name(version, t.topic.as_str(), &t.topic_id, st).map(|n| (n, t)))
        .flat_map(|(n, t)| t.partitions.iter().map(move |p| (n.clone(), p.partition)))
        .collect()
}

fn topic_name(version: i16, name: &str, id: &[u8; 16], st: &State) -> Option<String> {
    if version >= 13 {
        st.topic_by_id(id).map(|(n, _)| n.to_string())
    } else {
        Some(name.to_string())
    }
}

/// One attempt at the response: the response, the record bytes in it, and
/// whether any partition failed.
fn build(
    ctx: &Ctx<'_>,
    h: &Hdr,
    req: &FetchRequest,
    st: &State,
    fired: &Fired,
) -> (FetchResponse, usize, bool) {
    let read_committed = req.isolation_level == 1;
    let mut budget = if h.version >= 3 && req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut any_error = false;
    let mut leaders: Vec<i32> = Vec::new();
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = topic_name(h.version, &t.topic, &t.topic_id, st);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for q in &t.partitions {
            let index = q.partition;
            let mut pd = PartitionData {
                partition_index: index,
                error_code: 0,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                aborted_transactions: None,
                preferred_read_replica: -1,
                records: Some(Bytes::new()),
                ..Default::default()
            };
            let fail = |mut pd: PartitionData, code: i16| {
                pd.error_code = code;
                pd
            };
            let Some(name) = name.as_deref() else {
                any_error = true;
                parts.push(fail(pd, UNKNOWN_TOPIC_ID));
                continue;
            };
            if let Some(code) = fired.error_for(name, index) {
                any_error = true;
                parts.push(fail(pd, code));
                continue;
            }
            let Some(p) = st.partition(name, index) else {
                any_error = true;
                parts.push(fail(pd, UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            };
            if p.leader != ctx.broker_id {
                any_error = true;
                if h.version >= 12 {
                    pd.current_leader = LeaderIdAndEpoch {
                        leader_id: p.leader,
                        leader_epoch: p.leader_epoch,
                        ..Default::default()
                    };
                }
                if !leaders.contains(&p.leader) {
                    leaders.push(p.leader);
                }
                parts.push(fail(pd, NOT_LEADER_OR_FOLLOWER));
                continue;
            }
            if h.version >= 9 {
                if let Some(code) = check_leader_epoch(p.leader_epoch, q.current_leader_epoch) {
                    any_error = true;
                    parts.push(fail(pd, code));
                    continue;
                }
            }
            let log = &p.log;
            pd.high_watermark = log.high_watermark();
            pd.last_stable_offset = log.last_stable_offset();
            pd.log_start_offset = log.log_start_offset();
            if q.fetch_offset < log.log_start_offset() || q.fetch_offset > log.high_watermark() {
                any_error = true;
                parts.push(fail(pd, OFFSET_OUT_OF_RANGE));
                continue;
            }
            let limit = (q.partition_max_bytes.max(0) as usize).min(budget);
            let upper = if read_committed {
                log.last_stable_offset()
            } else {
                i64::MAX
            };
            let mut chunks: Vec<&Bytes> = Vec::new();
            let mut size = 0usize;
            let mut next_offset = q.fetch_offset;
            for b in &log.batches()[log.batch_index_for(q.fetch_offset)..] {
                if b.base_offset >= upper {
                    break;
                }
                let first_of_response = total == 0 && chunks.is_empty();
                if size + b.bytes.len() > limit && !first_of_response {
                    break;
                }
                size += b.bytes.len();
                chunks.push(&b.bytes);
                next_offset = b.last_offset + 1;
                if size >= limit {
                    break;
                }
            }
            pd.records = Some(match chunks.as_slice() {
                [] => Bytes::new(),
                [one] => (*one).clone(),
                many => {
                    let mut buf = BytesMut::with_capacity(size);
                    for c in many {
                        buf.extend_from_slice(c);
                    }
                    buf.freeze()
                }
            });
            if read_committed {
                pd.aborted_transactions = Some(
                    log.txns()
                        .aborted_between(q.fetch_offset, next_offset)
                        .into_iter()
                        .map(|a| AbortedTransaction {
                            producer_id: a.producer_id,
                            first_offset: a.first_offset,
                            ..Default::default()
                        })
                        .collect(),
                );
            }
            total += size;
            budget = budget.saturating_sub(size);
            parts.push(pd);
        }
        responses.push(FetchableTopicResponse {
            topic: if h.version <= 12 {
                t.topic.clone()
            } else {
                String::new()
            },
            topic_id: if h.version >= 13 { t.topic_id } else { [0; 16] },
            partitions: parts,
            ..Default::default()
        });
    }
    let node_endpoints = if h.version >= 16 {
        leaders
            .iter()
            .filter_map(|id| st.broker(*id))
            .map(|b| NodeEndpoint {
                node_id: b.id,
                host: b.host.clone(),
                port: i32::from(b.port),
                rack: b.rack.clone(),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    let resp = FetchResponse {
        throttle_time_ms: h.throttle_ms,
        error_code: 0,
        session_id: 0,
        responses,
        node_endpoints,
        ..Default::default()
    };
    (resp, total, any_error)
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: FetchRequest, fired: &Fired) -> Answer {
    if h.version >= 7 && req.session_id != 0 {
        let resp = FetchResponse {
            throttle_time_ms: h.throttle_ms,
            error_code: FETCH_SESSION_ID_NOT_FOUND,
            session_id: 0,
            ..Default::default()
        };
        return h.frame(&resp);
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut st = ctx.shared.lock();
    loop {
        let (resp, bytes, any_error) = build(ctx, h, &req, &st, fired);
        if ctx.stop.load(std::sync::atomic::Ordering::Acquire) {
            // The broker is stopping: it answers nothing more.
            return Answer::Close;
        }
        let now = Instant::now();
        if bytes >= min_bytes || any_error || now >= deadline || !ctx.blocking {
            drop(st);
            return h.frame(&resp);
        }
        st = ctx
            .shared
            .changed
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
