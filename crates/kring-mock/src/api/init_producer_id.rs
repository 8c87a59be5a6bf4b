//! InitProducerId (key 22): v0–v5.
//!
//! Behavior:
//! - Without a transactional id (an idempotent producer): a fresh producer
//!   id (cluster-wide counter from 1000) with epoch 0, on any broker. The
//!   producer id and epoch a v3+ request may carry (KIP-360) are ignored,
//!   exactly as Kafka's transaction coordinator ignores them for a null
//!   transactional id: an idempotent producer bumps its epoch locally and
//!   only asks for a new id when it must.
//! - With a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED. The
//!   mock has no transaction coordinator (no FindCoordinator, no
//!   AddPartitionsToTxn, no EndTxn), and a non-retriable answer tells the
//!   client so at once instead of letting it retry forever.
//! - A producer id without an epoch, or an epoch without a producer id
//!   (v3+): INVALID_REQUEST, as Kafka's KafkaApis answers.
//! - Faults: an injected error is the response's error code (producer id
//!   -1, epoch -1); `Lie::ProducerId` rewrites a successful answer's id.
//!
//! Version notes: v2 is flexible; v3 adds producer_id/producer_epoch to
//! the request; v4 and v5 add nothing on the wire.

use kring_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};

use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

const INVALID_REQUEST: i16 = 42;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: InitProducerIdRequest, fired: &Fired) -> Answer {
    // Kafka's KafkaApis: a producer id without an epoch (or the reverse) is
    // INVALID_REQUEST before the coordinator sees it.
    let half = (req.producer_id == -1) != (req.producer_epoch == -1);
    let error = fired.error_for_request().or_else(|| {
        if half {
            return Some(INVALID_REQUEST);
        }
        req.transactional_id
            .as_ref()
            .map(|_| TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    });
    let mut resp = match error {
        Some(code) => InitProducerIdResponse {
            throttle_time_ms: h.throttle_ms,
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        None => InitProducerIdResponse {
            throttle_time_ms: h.throttle_ms,
            error_code: 0,
            producer_id: ctx.shared.lock().allocate_producer_id(),
            producer_epoch: 0,
            ..Default::default()
        },
    };
    crate::lie::init_producer_id(&mut resp, &fired.lies);
    h.frame(&resp)
}
