//! EndTxn (key 26): v0–v4.
//!
//! A transactional producer commits or aborts its ongoing transaction
//! here; the coordinator then has a COMMIT or ABORT marker written into
//! every partition of the transaction.
//!
//! Behavior (Kafka's `TransactionCoordinator.endTransaction` for a client
//! of transaction version 1):
//! 1. An injected error (fault) is the response's error code.
//! 2. An empty transactional id: INVALID_REQUEST. A broker that does not
//!    coordinate the id: NOT_COORDINATOR.
//! 3. An id never initialised, or another producer id:
//!    INVALID_PRODUCER_ID_MAPPING. An epoch other than the current one:
//!    PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2).
//! 4. Ongoing: the markers are written at once (unless a test holds them:
//!    [`MockCluster::hold_transaction_markers`](crate::MockCluster::hold_transaction_markers))
//!    and the state becomes CompleteCommit/CompleteAbort: NONE.
//! 5. A retry of the completed transaction's result (CompleteCommit and
//!    commit, CompleteAbort and abort): NONE, nothing written again. The
//!    same result while its markers are held: CONCURRENT_TRANSACTIONS.
//!    The opposite result, or no transaction begun (Empty):
//!    INVALID_TXN_STATE.
//!
//! Version notes: v2 may answer PRODUCER_FENCED; v3 is flexible; v4 may
//! answer TRANSACTION_ABORTABLE (KIP-890; the mock never does). v5
//! (transaction version 2: an epoch bump on every commit) is not served.

use kring_protocol::error_code::ErrorCode;
use kring_protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};

use super::{fenced_for_version, Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::txn;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: EndTxnRequest, fired: &Fired) -> Answer {
    let result = match fired.error_for_request() {
        Some(code) => Err(code),
        None => {
            let id = req.transactional_id.as_str();
            let mut st = ctx.shared.lock();
            let r = if id.is_empty() {
                Err(ErrorCode::INVALID_REQUEST)
            } else if !txn::is_coordinator(&st, ctx.broker_id, id) {
                Err(ErrorCode::NOT_COORDINATOR)
            } else {
                txn::coordinator::end_txn(
                    &mut st,
                    id,
                    req.producer_id,
                    req.producer_epoch,
                    req.committed,
                )
            };
            drop(st);
            // Markers may have moved last stable offsets: wake long-polls.
            ctx.shared.changed.notify_all();
            r.map_err(|e| fenced_for_version(e, h.version, 2))
        }
    };
    let resp = EndTxnResponse {
        throttle_time_ms: h.throttle_ms,
        error_code: result.err().unwrap_or(0),
        ..Default::default()
    };
    h.frame(&resp)
}
