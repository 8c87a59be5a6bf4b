//! ListOffsets (key 2): v1–v10.
//!
//! Behavior, per partition:
//! - Fault error, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER as for
//!   Produce. From v4 a `current_leader_epoch` ≥ 0 is checked: older than
//!   the partition's is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
//! - Timestamp -1 (latest): the high watermark; for read_committed
//!   (isolation level 1, v2+) the last stable offset, which stops at the
//!   oldest open transaction, as Kafka's `fetchOffsetForTimestamp` does.
//!   -2 (earliest) and -4 (earliest local, v8+): the log start offset.
//!   -3 (max timestamp, v7+): the offset and timestamp of the first record
//!   with the largest timestamp. -5 (latest tiered, v9+): offset -1, as
//!   there is no tiered storage. Any other timestamp t ≥ 0: the first
//!   record whose timestamp is ≥ t, or offset -1 when none is.
//! - The returned leader epoch (v4+) is the epoch stamped into the batch
//!   holding the offset, or the partition's current epoch for the log end.
//!
//! v0 (old-style offset lists) is not served.

use kring_protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::log::StoredBatch;
use crate::records::{self, StoredRecord};
use crate::state::PartitionState;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 1..=10;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 76;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// The partitions a request asks about, for fault matching.
pub(crate) fn partitions(req: &ListOffsetsRequest) -> Vec<(String, i32)> {
    req.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index))
        })
        .collect()
}

/// Checks a client's idea of the leader epoch against the partition's.
pub(crate) fn check_leader_epoch(current: i32, requested: i32) -> Option<i16> {
    if requested < 0 || requested == current {
        None
    } else if requested < current {
        Some(FENCED_LEADER_EPOCH)
    } else {
        Some(UNKNOWN_LEADER_EPOCH)
    }
}

fn decoded(b: &StoredBatch) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    // Batches were fully decoded when appended; this cannot fail.
    let _ = records::decode_into(b, &mut out);
    out
}

/// `(offset, timestamp, leader epoch)` for a timestamp query.
fn lookup(p: &PartitionState, ts: i64, read_committed: bool) -> (i64, i64, i32) {
    let log = &p.log;
    let epoch_of = |b: &StoredBatch| b.header.partition_leader_epoch;
    match ts {
        LATEST if read_committed => (log.last_stable_offset(), -1, p.leader_epoch),
        LATEST => (log.high_watermark(), -1, p.leader_epoch),
        EARLIEST | EARLIEST_LOCAL => {
            let epoch = log.batches().first().map_or(p.leader_epoch, epoch_of);
            (log.log_start_offset(), -1, epoch)
        }
        MAX_TIMESTAMP => match log.batch_with_max_timestamp() {
            Some(b) => {
                let recs = decoded(b);
                match recs.iter().find(|r| r.timestamp == b.header.max_timestamp) {
                    Some(r) => (r.offset, r.timestamp, epoch_of(b)),
                    None => (b.base_offset, b.header.max_timestamp, epoch_of(b)),
                }
            }
            None => (-1, -1, -1),
        },
        LATEST_TIERED => (-1, -1, -1),
        t if t >= 0 => {
            // Batch max timestamps bound the search; the record is found
            // inside the first batch that can hold it, or a later one
            // (record timestamps need not be ordered).
            let start = log
                .batches()
                .iter()
                .position(|b| b.header.max_timestamp >= t);
            if let Some(start) = start {
                for b in &log.batches()[start..] {
                    if b.header.max_timestamp < t {
                        continue;
                    }
                    if let Some(r) = decoded(b).into_iter().find(|r| r.timestamp >= t) {
                        return (r.offset, r.timestamp, epoch_of(b));
                    }
                }
            }
            (-1, -1, -1)
        }
        _ => (-1, -1, -1),
    }
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: ListOffsetsRequest, fired: &Fired) -> Answer {
    let st = ctx.shared.lock();
    let failed = |index: i32, code: i16| ListOffsetsPartitionResponse {
        partition_index: index,
        error_code: code,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..Default::default()
    };
    let topics = req
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|q| {
                    let index = q.partition_index;
                    if let Some(code) = fired.error_for(&t.name, index) {
                        return failed(index, code);
                    }
                    let Some(p) = st.partition(&t.name, index) else {
                        return failed(index, UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    if p.leader != ctx.broker_id {
                        return failed(index, NOT_LEADER_OR_FOLLOWER);
                    }
                    if h.version >= 4 {
                        if let Some(code) =
                            check_leader_epoch(p.leader_epoch, q.current_leader_epoch)
                        {
                            return failed(index, code);
                        }
                    }
                    let (offset, timestamp, epoch) =
                        lookup(p, q.timestamp, h.version >= 2 && req.isolation_level == 1);
                    ListOffsetsPartitionResponse {
                        partition_index: index,
                        error_code: 0,
                        timestamp,
                        offset,
                        leader_epoch: epoch,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    drop(st);
    let mut resp = ListOffsetsResponse {
        throttle_time_ms: h.throttle_ms,
        topics,
        ..Default::default()
    };
    if h.version < 4 {
        for t in &mut resp.topics {
            for p in &mut t.partitions {
                p.leader_epoch = -1;
            }
        }
    }
    h.frame(&resp)
}
