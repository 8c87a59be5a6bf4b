//! FindCoordinator (key 10): v0–v6.
//!
//! Why a mock without consumer groups serves it: clients infer broker
//! features from the APIs a broker advertises, and librdkafka (2.x,
//! `rdkafka_feature.c`) enables LZ4 compression only when the broker lists
//! FindCoordinator — its marker for brokers ≥ 0.8.2. Without it,
//! librdkafka silently produces uncompressed batches when asked for LZ4.
//! A transactional producer finds its transaction coordinator here.
//!
//! Behavior:
//! - Key type 0 (group) or 1 (transaction); any other: INVALID_REQUEST. An
//!   empty key: INVALID_REQUEST.
//! - The coordinator is a broker chosen by a hash of the key (stable for a
//!   key while the cluster lives, spread over the brokers); a
//!   transactional id a test moved
//!   ([`MockCluster::move_transaction_coordinator`](crate::MockCluster::move_transaction_coordinator))
//!   is where it was put. If that broker is stopped:
//!   COORDINATOR_NOT_AVAILABLE, as while the coordinator partition has no
//!   leader (the mock elects none: a test moves the id to fail over).
//! - Transaction coordinators serve InitProducerId, AddPartitionsToTxn and
//!   EndTxn (see the `txn` module). Group coordinators' APIs (JoinGroup,
//!   OffsetCommit, …) are **not** served: requests for them close the
//!   connection.
//! - v0–v3 answer one key in the top-level fields; v4+ answer every key in
//!   `coordinators`. Faults: an injected error is every key's error code.

use kring_protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse,
};

use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::state::State;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=6;

const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_REQUEST: i16 = 42;

/// `(error, node id, host, port)` for one key.
fn coordinator(st: &State, key_type: i8, key: &str, fired: &Fired) -> (i16, i32, String, i32) {
    let none = |code| (code, -1, String::new(), -1);
    if let Some(code) = fired.error_for_request() {
        return none(code);
    }
    if !(0..=1).contains(&key_type) || key.is_empty() || st.brokers.is_empty() {
        return none(INVALID_REQUEST);
    }
    let Some(b) = crate::txn::coordinator_for(st, key_type, key) else {
        return none(INVALID_REQUEST);
    };
    if !b.up {
        return none(COORDINATOR_NOT_AVAILABLE);
    }
    (0, b.id, b.host.clone(), i32::from(b.port))
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: FindCoordinatorRequest, fired: &Fired) -> Answer {
    let st = ctx.shared.lock();
    let key_type = if h.version >= 1 { req.key_type } else { 0 };
    let resp = if h.version < 4 {
        let (error_code, node_id, host, port) = coordinator(&st, key_type, &req.key, fired);
        FindCoordinatorResponse {
            throttle_time_ms: h.throttle_ms,
            error_code,
            error_message: None,
            node_id,
            host,
            port,
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            throttle_time_ms: h.throttle_ms,
            coordinators: req
                .coordinator_keys
                .iter()
                .map(|key| {
                    let (error_code, node_id, host, port) = coordinator(&st, key_type, key, fired);
                    Coordinator {
                        key: key.clone(),
                        node_id,
                        host,
                        port,
                        error_code,
                        error_message: None,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    };
    drop(st);
    h.frame(&resp)
}
