//! InitProducerId (key 22): v0–v5.
//!
//! Behavior:
//! - A producer id without an epoch, or an epoch without a producer id
//!   (v3+): INVALID_REQUEST, as Kafka's KafkaApis answers.
//! - Without a transactional id (an idempotent producer): a fresh producer
//!   id (cluster-wide counter from 1000) with epoch 0, on any broker. The
//!   producer id and epoch a v3+ request may carry (KIP-360) are ignored,
//!   exactly as Kafka's transaction coordinator ignores them for a null
//!   transactional id: an idempotent producer bumps its epoch locally and
//!   only asks for a new id when it must.
//! - With a transactional id, Kafka's `TransactionCoordinator` (see the
//!   `txn` module): an empty id is INVALID_REQUEST; a
//!   `transaction_timeout_ms` ≤ 0 or above 15 minutes
//!   ([`MAX_TRANSACTION_TIMEOUT_MS`])
//!   INVALID_TRANSACTION_TIMEOUT; a broker that does not coordinate the id
//!   NOT_COORDINATOR. Then the id keeps one producer id and every init
//!   bumps its epoch, fencing the previous holder; the timeout is kept
//!   for the transactions to come. An ongoing transaction is fenced and
//!   aborted (markers written) and the answer is CONCURRENT_TRANSACTIONS —
//!   the client retries, and the retry gets the next epoch. v3+ with the
//!   producer id and epoch (KIP-360, bumping after an abortable error):
//!   the current pair bumps, a retry of the bump that succeeded gets the
//!   same epoch again, an older epoch or another producer id is
//!   PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4). A transaction
//!   being completed (markers held): CONCURRENT_TRANSACTIONS.
//! - Faults: an injected error is the response's error code (producer id
//!   -1, epoch -1); `Lie::ProducerId` rewrites a successful answer's id.
//!
//! Version notes: v2 is flexible; v3 adds producer_id/producer_epoch to
//! the request; v4 may answer PRODUCER_FENCED; v5 may answer
//! TRANSACTION_ABORTABLE (the mock never does). Nothing else changes on
//! the wire.

use kring_protocol::error_code::ErrorCode;
use kring_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};

use super::{fenced_for_version, Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::txn::{self, MAX_TRANSACTION_TIMEOUT_MS};

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

/// The transactional path: `(producer id, epoch)` or the error code.
fn transactional(
    ctx: &Ctx<'_>,
    h: &Hdr,
    id: &str,
    req: &InitProducerIdRequest,
) -> Result<(i64, i16), i16> {
    if id.is_empty() {
        return Err(ErrorCode::INVALID_REQUEST.code());
    }
    if !(1..=MAX_TRANSACTION_TIMEOUT_MS).contains(&req.transaction_timeout_ms) {
        return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT.code());
    }
    let mut st = ctx.shared.lock();
    if !txn::is_coordinator(&st, ctx.broker_id, id) {
        return Err(ErrorCode::NOT_COORDINATOR.code());
    }
    let expected = (req.producer_id != -1).then_some((req.producer_id, req.producer_epoch));
    let r = txn::coordinator::init_producer_id(&mut st, id, req.transaction_timeout_ms, expected);
    drop(st);
    // An abort of an ongoing transaction wrote markers: wake long-polls.
    ctx.shared.changed.notify_all();
    r.map_err(|e| fenced_for_version(e, h.version, 4))
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: InitProducerIdRequest, fired: &Fired) -> Answer {
    // Kafka's KafkaApis: a producer id without an epoch (or the reverse) is
    // INVALID_REQUEST before the coordinator sees it.
    let half = (req.producer_id == -1) != (req.producer_epoch == -1);
    let result = match (fired.error_for_request(), &req.transactional_id) {
        (Some(code), _) => Err(code),
        (None, _) if half => Err(ErrorCode::INVALID_REQUEST.code()),
        (None, None) => Ok((ctx.shared.lock().allocate_producer_id(), 0)),
        (None, Some(id)) => transactional(ctx, h, id, &req),
    };
    let mut resp = match result {
        Err(code) => InitProducerIdResponse {
            throttle_time_ms: h.throttle_ms,
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
            throttle_time_ms: h.throttle_ms,
            error_code: 0,
            producer_id,
            producer_epoch,
            ..Default::default()
        },
    };
    crate::lie::init_producer_id(&mut resp, &fired.lies);
    h.frame(&resp)
}
