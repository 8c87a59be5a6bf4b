//! AddPartitionsToTxn (key 24): v0–v3.
//!
//! A transactional producer names each partition here before its first
//! record to it in a transaction; the transaction begins with the first
//! one (its timeout starts then).
//!
//! Behavior, in Kafka's order (`KafkaApis` checks the partitions, then the
//! `TransactionCoordinator` the transaction):
//! 1. An injected error without a partition filter: every partition
//!    answers it; nothing is added.
//! 2. An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION (an
//!    error injected on a partition answers in its place); if any
//!    partition failed, the others answer OPERATION_NOT_ATTEMPTED and
//!    nothing is added.
//! 3. The transaction, every partition answering the same code: an empty
//!    transactional id is INVALID_REQUEST; a broker that does not
//!    coordinate the id NOT_COORDINATOR; an id never initialised or
//!    another producer id INVALID_PRODUCER_ID_MAPPING; another epoch
//!    PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2); a transaction
//!    being completed (markers held) CONCURRENT_TRANSACTIONS. Otherwise
//!    the partitions join the transaction: NONE.
//!
//! Version notes: v2 may answer PRODUCER_FENCED; v3 is flexible. v4+
//! (brokers batching transactions, `verify_only`) is not served: the
//! mock's partition leaders ask the coordinator in-process, and a
//! transaction-version-1 client never sends it.

use kring_protocol::error_code::ErrorCode;
use kring_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopicResult,
};

use super::{fenced_for_version, Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::txn;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

/// The partitions a request adds, for fault matching.
pub(crate) fn partitions(req: &AddPartitionsToTxnRequest) -> Vec<(String, i32)> {
    req.v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
        .collect()
}

/// The response with `code(topic, partition)` for every partition.
fn answer(
    h: &Hdr,
    req: &AddPartitionsToTxnRequest,
    code: impl Fn(&str, i32) -> i16,
) -> AddPartitionsToTxnResponse {
    AddPartitionsToTxnResponse {
        throttle_time_ms: h.throttle_ms,
        results_by_topic_v3_and_below: req
            .v3_and_below_topics
            .iter()
            .map(|t| AddPartitionsToTxnTopicResult {
                name: t.name.clone(),
                results_by_partition: t
                    .partitions
                    .iter()
                    .map(|p| AddPartitionsToTxnPartitionResult {
                        partition_index: *p,
                        partition_error_code: code(&t.name, *p),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn handle(
    ctx: &Ctx<'_>,
    h: &Hdr,
    req: AddPartitionsToTxnRequest,
    fired: &Fired,
) -> Answer {
    if let Some(code) = fired.error_for_request() {
        return h.frame(&answer(h, &req, |_, _| code));
    }
    let mut st = ctx.shared.lock();
    let failed = |t: &str, p: i32| {
        fired.error_for(t, p).or_else(|| {
            st.partition(t, p)
                .is_none()
                .then_some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code())
        })
    };
    if partitions(&req)
        .iter()
        .any(|(t, p)| failed(t, *p).is_some())
    {
        let resp = answer(h, &req, |t, p| {
            failed(t, p).unwrap_or(ErrorCode::OPERATION_NOT_ATTEMPTED.code())
        });
        drop(st);
        return h.frame(&resp);
    }
    let id = req.v3_and_below_transactional_id.as_str();
    let result = if id.is_empty() {
        Err(ErrorCode::INVALID_REQUEST)
    } else if !txn::is_coordinator(&st, ctx.broker_id, id) {
        Err(ErrorCode::NOT_COORDINATOR)
    } else {
        txn::coordinator::add_partitions(
            &mut st,
            id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            &partitions(&req),
        )
    };
    drop(st);
    let code = match result {
        Ok(()) => 0,
        Err(e) => fenced_for_version(e, h.version, 2),
    };
    h.frame(&answer(h, &req, |_, _| code))
}
