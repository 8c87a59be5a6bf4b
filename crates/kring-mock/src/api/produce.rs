//! Produce (key 0): v3–v11.
//!
//! Behavior, per partition, in this order:
//! 1. An injected error (fault) answers that error (with the fault's
//!    error message and record errors, `Fault::error_with_records`);
//!    nothing is appended — except NOT_ENOUGH_REPLICAS_AFTER_APPEND, which, as from Kafka, means
//!    the leader appended the batch and could not replicate it: the steps
//!    below run as usual, and an append that succeeded (or was a duplicate)
//!    is answered with that error instead of NONE.
//! 2. Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//! 3. This broker is not the partition's leader: NOT_LEADER_OR_FOLLOWER.
//!    From v10 on the partition carries the KIP-951 `current_leader` hint
//!    (leader id and epoch) and the response lists the leader's endpoint in
//!    `node_endpoints`, so a client can redirect without a Metadata request.
//! 4. The records are validated like a Kafka leader validates them:
//!    exactly one batch (v3+), magic 2, the length field agrees with the
//!    bytes, CRC32C, record count and offset deltas, every record decodes
//!    (compressed batches are decompressed), no control batches. Broken
//!    framing or CRC: CORRUPT_MESSAGE; a well-formed batch breaking a rule:
//!    INVALID_RECORD (87); larger than the topic's `max.message.bytes`:
//!    MESSAGE_TOO_LARGE.
//! 5. Transactional batches (KIP-890 part 1 verification, as Kafka 4.x):
//!    a request with transactional batches but no `transactional_id` is
//!    TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition. Before a
//!    producer's first transactional batch on a partition in a
//!    transaction, the leader asks the id's coordinator whether the
//!    partition was added (AddPartitionsToTxn): not added is
//!    INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v11, Kafka's
//!    `genericError` for clients that know it); another producer id or no
//!    such transactional id INVALID_PRODUCER_ID_MAPPING; another epoch
//!    INVALID_PRODUCER_EPOCH; a transaction being completed, or its
//!    coordinator stopped, NOT_ENOUGH_REPLICAS (Kafka's retriable stand-in
//!    for coordinator errors older clients would not retry). Later batches
//!    of the open transaction are checked by step 6 only. A
//!    non-transactional batch from a producer whose transaction is open on
//!    the partition: INVALID_TXN_STATE.
//! 6. Idempotence (batches with a producer id), as Kafka ≥ 2.7 checks it:
//!    the partition keeps the last 5 batches' sequence ranges and offsets per
//!    producer id. A retry of one of them (same epoch, same first and last
//!    sequence) is a **duplicate**: nothing is appended and the answer is
//!    NONE with the original base offset, which is how Kafka lets a client
//!    treat a retried request that had landed as a success. A first sequence
//!    that does not follow the last one: OUT_OF_ORDER_SEQUENCE_NUMBER. An
//!    older epoch: INVALID_PRODUCER_EPOCH (Kafka < 2.7 said
//!    PRODUCER_FENCED). A newer epoch must start at sequence 0.
//!    A producer id the partition has no state for: Kafka ≥ 2.5 (KIP-360)
//!    accepts any first sequence — the producer's earlier records may have
//!    been deleted by retention — and so does the mock by default; Kafka
//!    < 2.5 answered UNKNOWN_PRODUCER_ID for a non-zero first sequence,
//!    which the mock does with
//!    [`UnknownProducerPolicy::Reject`](crate::UnknownProducerPolicy).
//!    Appended transactional batches stay beyond the last stable offset
//!    until their transaction's marker (see `MockCluster::read_committed`).
//! 7. Appended: NONE, the base offset, log_append_time -1 (topics use
//!    CreateTime; a duplicate answers the original batch's max timestamp,
//!    as Kafka's `BatchMetadata` does), log_start_offset (v5+). A refusal by step 6 (or a
//!    non-transactional write into an open transaction), or an
//!    invalid record, also reports log_start_offset, as Kafka's
//!    ReplicaManager does (KIP-360 clients read it with
//!    UNKNOWN_PRODUCER_ID); the other errors report -1.
//!
//! acks must be -1, 0 or 1 (else INVALID_REQUIRED_ACKS for every
//! partition). With one replica, acks=-1 and acks=1 behave the same and
//! `timeout_ms` is never waited on. acks=0 gets no response at all, as from
//! Kafka; if any partition failed, the connection is closed instead, which
//! is how Kafka tells an acks=0 client that something went wrong.
//!
//! Version notes: v5 adds log_start_offset; v8 record_errors and
//! error_message (set for validation errors); v9 is flexible; v10 adds the
//! KIP-951 tagged fields; v11 (KIP-890 part 1 client side) is the same on
//! the wire and gets TRANSACTION_ABORTABLE where older versions get
//! INVALID_TXN_STATE (step 5).

use kring_protocol::messages::produce::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    ProduceRequest, ProduceResponse, TopicProduceResponse,
};

use kring_protocol::error_code::ErrorCode;

use super::{Answer, Hdr};
use crate::batch::BatchError;
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::idempotence::SequenceError;
use crate::log::AppendError;
use crate::state::State;
use crate::txn;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 3..=11;

const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const MESSAGE_TOO_LARGE: i16 = 10;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
const INVALID_REQUIRED_ACKS: i16 = 21;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const UNKNOWN_PRODUCER_ID: i16 = 59;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

/// The partitions a request writes to, for fault matching.
pub(crate) fn partitions(req: &ProduceRequest) -> Vec<(String, i32)> {
    req.topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter().map(|p| (t.name.clone(), p.index)))
        .collect()
}

fn append_error(e: &AppendError) -> i16 {
    match e {
        AppendError::Batch(BatchError::Corrupt(_)) => CORRUPT_MESSAGE,
        AppendError::Batch(BatchError::Invalid(_)) => INVALID_RECORD,
        AppendError::Sequence(SequenceError::OutOfOrder { .. }) => OUT_OF_ORDER_SEQUENCE_NUMBER,
        AppendError::Sequence(SequenceError::UnknownProducer(_)) => UNKNOWN_PRODUCER_ID,
        AppendError::Sequence(SequenceError::StaleEpoch { .. }) => INVALID_PRODUCER_EPOCH,
        AppendError::TooLarge { .. } => MESSAGE_TOO_LARGE,
        AppendError::InvalidTxnState(_) => INVALID_TXN_STATE,
    }
}

/// Whether a partition's records are a transactional batch.
fn is_transactional(records: Option<&bytes::Bytes>) -> bool {
    records.is_some_and(|r| crate::batch::read_header(r).is_ok_and(|h| h.is_transactional()))
}

/// KIP-890 part 1: the leader's check with the coordinator before a
/// producer's first transactional batch of a transaction on a partition,
/// mapped as Kafka's `ReplicaManager` maps the coordinator's answer.
/// `None`: append (not transactional, already open here, or verified).
fn verify(
    st: &State,
    txn_id: Option<&str>,
    topic: &str,
    index: i32,
    records: Option<&bytes::Bytes>,
    version: i16,
) -> Option<(i16, &'static str)> {
    let h = crate::batch::read_header(records?).ok()?;
    if !h.is_transactional() {
        return None;
    }
    let p = st.partition(topic, index)?;
    if p.log.txns().is_ongoing(h.producer_id) {
        return None;
    }
    let e = txn::coordinator::verify(st, txn_id?, h.producer_id, h.producer_epoch, topic, index)
        .err()?;
    Some(match e {
        ErrorCode::TRANSACTION_ABORTABLE if version >= 11 => {
            (e.code(), "partition was not added to the transaction")
        }
        ErrorCode::TRANSACTION_ABORTABLE => (
            INVALID_TXN_STATE,
            "partition was not added to the transaction",
        ),
        ErrorCode::PRODUCER_FENCED => (INVALID_PRODUCER_EPOCH, "producer epoch is fenced"),
        ErrorCode::INVALID_PRODUCER_ID_MAPPING => {
            (e.code(), "the producer id is not the transactional id's")
        }
        _ => (
            NOT_ENOUGH_REPLICAS,
            "unable to verify the partition has been added to the transaction",
        ),
    })
}

fn failed(index: i32, code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        ..Default::default()
    }
}

/// Answers one partition, appending if everything checks out.
#[allow(clippy::too_many_arguments)] // one partition's facts
fn produce_partition(
    st: &mut State,
    broker_id: i32,
    topic: &str,
    index: i32,
    records: Option<&bytes::Bytes>,
    version: i16,
    txn_id: Option<&str>,
    fired: &Fired,
    leaders: &mut Vec<i32>,
) -> PartitionProduceResponse {
    let after_append = match fired.error_detail_for(topic, index) {
        Some((NOT_ENOUGH_REPLICAS_AFTER_APPEND, _)) => true,
        Some((code, None)) => return failed(index, code),
        Some((code, Some(d))) => {
            return PartitionProduceResponse {
                error_message: d.message.clone(),
                record_errors: d
                    .record_errors
                    .iter()
                    .map(|(i, m)| BatchIndexAndErrorMessage {
                        batch_index: *i,
                        batch_index_error_message: m.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..failed(index, code)
            }
        }
        None => false,
    };
    let policy = st.config.unknown_producer;
    let unverified = verify(st, txn_id, topic, index, records, version);
    let Some(t) = st.topics.get_mut(topic) else {
        return failed(index, UNKNOWN_TOPIC_OR_PARTITION);
    };
    let max = t.max_message_bytes;
    let Some(p) = usize::try_from(index)
        .ok()
        .and_then(|i| t.partitions.get_mut(i))
    else {
        return failed(index, UNKNOWN_TOPIC_OR_PARTITION);
    };
    if p.leader != broker_id {
        if !leaders.contains(&p.leader) {
            leaders.push(p.leader);
        }
        return PartitionProduceResponse {
            current_leader: LeaderIdAndEpoch {
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                ..Default::default()
            },
            ..failed(index, NOT_LEADER_OR_FOLLOWER)
        };
    }
    let Some(records) = records else {
        return PartitionProduceResponse {
            error_message: Some("null records".into()),
            ..failed(index, CORRUPT_MESSAGE)
        };
    };
    // Kafka's `ProduceRequest.validateRecords`: no zstd before v7.
    if version < 7
        && crate::batch::read_header(records)
            .is_ok_and(|h| h.compression() == Ok(kring_protocol::record::Compression::Zstd))
    {
        return PartitionProduceResponse {
            error_message: Some(format!(
                "produce requests with version {version} are not allowed to use ZStandard compression"
            )),
            ..failed(index, UNSUPPORTED_COMPRESSION_TYPE)
        };
    }
    if let Some((code, why)) = unverified {
        return PartitionProduceResponse {
            error_message: Some(why.into()),
            ..failed(index, code)
        };
    }
    match p.log.append(records, p.leader_epoch, max, policy) {
        Ok(_) if after_append => failed(index, NOT_ENOUGH_REPLICAS_AFTER_APPEND),
        Ok(a) => PartitionProduceResponse {
            index,
            error_code: 0,
            base_offset: a.base_offset,
            log_append_time_ms: a.log_append_time,
            log_start_offset: p.log.log_start_offset(),
            ..Default::default()
        },
        Err(e) => PartitionProduceResponse {
            error_message: Some(e.to_string()),
            // Kafka's ReplicaManager reports the log start offset with the
            // errors the log itself raises (a producer's sequence or epoch,
            // an invalid record), -1 with those found before it.
            log_start_offset: match e {
                AppendError::Sequence(_)
                | AppendError::Batch(BatchError::Invalid(_))
                | AppendError::InvalidTxnState(_) => p.log.log_start_offset(),
                AppendError::Batch(BatchError::Corrupt(_)) | AppendError::TooLarge { .. } => -1,
            },
            ..failed(index, append_error(&e))
        },
    }
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: ProduceRequest, fired: &Fired) -> Answer {
    let acks_ok = matches!(req.acks, -1..=1);
    // Kafka's KafkaApis: transactional records need a transactional id
    // the client may write to; without one the whole request fails.
    let unauthorized = req.transactional_id.is_none()
        && req
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .any(|p| is_transactional(p.records.as_ref()));
    let mut leaders = Vec::new();
    let mut any_error = false;
    let mut st = ctx.shared.lock();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for t in &req.topic_data {
        let mut parts = Vec::with_capacity(t.partition_data.len());
        for p in &t.partition_data {
            let r = if unauthorized {
                failed(p.index, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            } else if acks_ok {
                produce_partition(
                    &mut st,
                    ctx.broker_id,
                    &t.name,
                    p.index,
                    p.records.as_ref(),
                    h.version,
                    req.transactional_id.as_deref(),
                    fired,
                    &mut leaders,
                )
            } else {
                failed(p.index, INVALID_REQUIRED_ACKS)
            };
            any_error |= r.error_code != 0;
            parts.push(r);
        }
        responses.push(TopicProduceResponse {
            name: t.name.clone(),
            partition_responses: parts,
            ..Default::default()
        });
    }
    let node_endpoints = leaders
        .iter()
        .filter_map(|id| st.broker(*id))
        .map(|b| NodeEndpoint {
            node_id: b.id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            ..Default::default()
        })
        .collect();
    drop(st);
    ctx.shared.changed.notify_all();
    if req.acks == 0 {
        return if any_error {
            Answer::Close
        } else {
            Answer::Nothing
        };
    }
    let mut resp = ProduceResponse {
        responses,
        throttle_time_ms: h.throttle_ms,
        ..Default::default()
    };
    if h.version >= 10 {
        resp.node_endpoints = node_endpoints;
    } else {
        // The hint fields do not exist before v10.
        for t in &mut resp.responses {
            for p in &mut t.partition_responses {
                p.current_leader = LeaderIdAndEpoch::default();
            }
        }
    }
    if h.version < 8 {
        for t in &mut resp.responses {
            for p in &mut t.partition_responses {
                p.error_message = None;
                p.record_errors.clear();
            }
        }
    }
    crate::lie::produce(&mut resp, h.version, &fired.lies);
    h.frame(&resp)
}
