//! Request dispatch, and one module per API key, each opening with the
//! versions it serves and how it behaves (franz-go kfake style).
//!
//! A request goes through `dispatch`: the header is decoded (an unknown
//! API key or an unserved version closes the connection, as a Kafka broker
//! does, except ApiVersions which answers UNSUPPORTED_VERSION per KIP-511),
//! the body is decoded (malformed: close), the fault table is consulted with
//! the partitions the request touches, and the API's handler builds the
//! response. Connection-level fault effects (delay, drop, mangle) are
//! returned to the connection as a `Step`.

pub mod add_partitions_to_txn;
pub mod api_versions;
pub mod create_topics;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kring_protocol::message::{decode_request_header, encode_response, Response};
use kring_protocol::messages::{ApiKey, RequestKind};

use crate::conn::Ctx;
use crate::faults::{Fired, RequestInfo};

/// The API keys and versions the mock implements, as ApiVersions
/// advertises them unless [`MockCluster::set_max_version`](crate::MockCluster::set_max_version)
/// capped one.
pub const SERVED: [(i16, RangeInclusive<i16>); 10] = [
    (0, produce::VERSIONS),
    (1, fetch::VERSIONS),
    (2, list_offsets::VERSIONS),
    (3, metadata::VERSIONS),
    (10, find_coordinator::VERSIONS),
    (18, api_versions::VERSIONS),
    (19, create_topics::VERSIONS),
    (22, init_producer_id::VERSIONS),
    (24, add_partitions_to_txn::VERSIONS),
    (26, end_txn::VERSIONS),
];

/// The versions of `api_key` the mock implements (before any cap).
pub fn served_versions(api_key: i16) -> Option<RangeInclusive<i16>> {
    SERVED
        .iter()
        .find(|(k, _)| *k == api_key)
        .map(|(_, v)| v.clone())
}

/// What the connection does after a request: the result of
/// [`MockCluster::handle`](crate::MockCluster::handle), the same dispatch
/// the TCP server runs.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Send this response.
    Reply(Reply),
    /// Send nothing (acks=0).
    Silent,
    /// Close the connection without answering.
    Close,
}

/// A response frame and how to send it.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Reply {
    /// The whole frame, size prefix included.
    pub frame: Vec<u8>,
    /// Hold it back this long (a delay fault).
    pub delay: Duration,
    /// After sending, read nothing from the connection for this long (a
    /// throttle: the channel is muted).
    pub mute: Duration,
    /// Send half of it, then close the connection.
    pub cut: bool,
}

/// A handler's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response frame (size prefix included).
    Frame(Vec<u8>),
    /// No response (acks=0).
    Nothing,
    /// Close the connection (acks=0 with errors, or a response that cannot
    /// be encoded).
    Close,
}

/// What a handler needs from the request header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hdr {
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
    /// `throttle_time_ms` to report (from a throttle fault).
    pub(crate) throttle_ms: i32,
}

impl Hdr {
    /// Encodes `resp` as a whole response frame.
    pub(crate) fn frame<R: Response>(&self, resp: &R) -> Answer {
        let mut out = Vec::new();
        match encode_response(&mut out, self.correlation_id, self.version, resp) {
            Ok(()) => Answer::Frame(out),
            // A response the mock cannot encode is a bug in the mock; closing
            // the connection makes it visible to the test instead of hanging it.
            Err(_) => Answer::Close,
        }
    }
}

/// Handles one request frame (without its size prefix) on a broker: counts
/// it and dispatches it. The one entry point of both the TCP connections
/// and [`MockCluster::handle`](crate::MockCluster::handle).
pub(crate) fn handle(ctx: &Ctx<'_>, frame: Bytes) -> Step {
    if frame.len() < 8 {
        return Step::Close;
    }
    ctx.shared
        .counters
        .count(i16::from_be_bytes([frame[0], frame[1]]));
    // The transaction coordinator's timeouts run on the request's time:
    // the wall clock where there are sockets, the caller's otherwise.
    let wall = ctx.blocking.then(Instant::now);
    if crate::txn::tick(&mut ctx.shared.lock(), wall) {
        ctx.shared.changed.notify_all();
    }
    dispatch(ctx, frame)
}

/// Decodes and answers one request frame (without its size prefix).
fn dispatch(ctx: &Ctx<'_>, frame: Bytes) -> Step {
    let mut buf = frame;
    if buf.len() < 8 {
        return Step::Close;
    }
    let api_key = i16::from_be_bytes([buf[0], buf[1]]);
    let version = i16::from_be_bytes([buf[2], buf[3]]);
    let correlation_id = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Step::Close;
    };
    let Ok(header) = decode_request_header(&mut buf) else {
        return Step::Close;
    };
    let Some(versions) = ctx.shared.lock().served(api_key) else {
        return Step::Close;
    };
    if !versions.contains(&version) {
        if key == ApiKey::ApiVersions {
            let keys = api_versions::api_keys(&ctx.shared.lock());
            return finish(
                api_versions::unsupported(correlation_id, keys),
                &Fired::default(),
            );
        }
        return Step::Close;
    }
    let Ok(req) = RequestKind::decode(api_key, version, &mut buf) else {
        return Step::Close;
    };
    let touched = {
        let st = ctx.shared.lock();
        match &req {
            RequestKind::Produce(r) => produce::partitions(r),
            RequestKind::Fetch(r) => fetch::partitions(version, r, &st),
            RequestKind::ListOffsets(r) => list_offsets::partitions(r),
            RequestKind::Metadata(r) => metadata::partitions(version, r, &st),
            RequestKind::CreateTopics(r) => create_topics::partitions(r),
            RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn::partitions(r),
            _ => Vec::new(),
        }
    };
    let refs: Vec<(&str, i32)> = touched.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let (mut fired, hook) = {
        let mut faults = ctx.shared.faults();
        (
            faults.fire(api_key, ctx.broker_id, &refs),
            faults.hook(api_key),
        )
    };
    if let Some(hook) = hook {
        let info = RequestInfo {
            broker_id: ctx.broker_id,
            api_key,
            api_version: version,
            correlation_id,
            client_id: header.client_id.as_deref(),
            partitions: &refs,
        };
        for action in hook(&info) {
            fired.add(None, &action);
        }
    }
    if fired.drop_before {
        return Step::Close;
    }
    if fired.swallow {
        return Step::Silent;
    }
    let h = Hdr {
        version,
        correlation_id,
        throttle_ms: i32::try_from(fired.throttle.as_millis()).unwrap_or(i32::MAX),
    };
    let answer = match req {
        RequestKind::ApiVersions(r) => {
            let keys = api_versions::api_keys(&ctx.shared.lock());
            api_versions::handle(&h, r, &fired, keys, ctx.shared.sasl.is_some())
        }
        RequestKind::Metadata(r) => metadata::handle(ctx, &h, r, &fired),
        RequestKind::Produce(r) => produce::handle(ctx, &h, r, &fired),
        RequestKind::InitProducerId(r) => init_producer_id::handle(ctx, &h, r, &fired),
        RequestKind::CreateTopics(r) => create_topics::handle(ctx, &h, r, &fired),
        RequestKind::ListOffsets(r) => list_offsets::handle(ctx, &h, r, &fired),
        RequestKind::Fetch(r) => fetch::handle(ctx, &h, r, &fired),
        RequestKind::FindCoordinator(r) => find_coordinator::handle(ctx, &h, r, &fired),
        RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn::handle(ctx, &h, r, &fired),
        RequestKind::EndTxn(r) => end_txn::handle(ctx, &h, r, &fired),
        _ => Answer::Close,
    };
    finish(answer, &fired)
}

/// Applies the connection-level effects of the faults that fired.
fn finish(answer: Answer, fired: &Fired) -> Step {
    let mut frame = match answer {
        Answer::Close => return Step::Close,
        Answer::Nothing => {
            return if fired.drop_after {
                Step::Close
            } else {
                Step::Silent
            }
        }
        Answer::Frame(f) => f,
    };
    if fired.drop_after {
        return Step::Close;
    }
    if let Some(keep) = fired.truncate {
        let keep = keep.min(frame.len() - 4);
        frame.truncate(4 + keep);
        frame[..4].copy_from_slice(&(keep as i32).to_be_bytes());
    }
    if fired.corrupt {
        garble(&mut frame);
    }
    Step::Reply(Reply {
        frame,
        delay: fired.delay,
        mute: fired.throttle,
        cut: fired.cut,
    })
}

/// Overwrites everything after the size prefix and correlation id with
/// deterministic pseudo-random bytes (xorshift seeded by the correlation
/// id), keeping the frame's length.
fn garble(frame: &mut [u8]) {
    if frame.len() <= 8 {
        return;
    }
    let mut x = u64::from(u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])) | 1;
    for b in &mut frame[8..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
}

/// Kafka's answer to a client too old for PRODUCER_FENCED: a request of a
/// version before `since` (the one that added the code) gets
/// INVALID_PRODUCER_EPOCH instead, which such clients treat the same way.
pub(crate) fn fenced_for_version(
    code: kring_protocol::error_code::ErrorCode,
    version: i16,
    since: i16,
) -> i16 {
    use kring_protocol::error_code::ErrorCode;
    if code == ErrorCode::PRODUCER_FENCED && version < since {
        ErrorCode::INVALID_PRODUCER_EPOCH.code()
    } else {
        code.code()
    }
}
