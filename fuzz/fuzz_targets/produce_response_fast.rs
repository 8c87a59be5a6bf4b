//! Differential fuzzing of the hand-written all-OK ProduceResponse decoder
//! (`kring_protocol::produce_fast::decode_produce_response_ok`) against the
//! generated one (`decode_response_frame::<ProduceRequest>`).
//!
//! Why: the fast decoder is hand-tuned code on the response path of every
//! ProduceRequest, and it is only correct if, wherever it answers, it says
//! what the generated decoder says. A wrong answer there (a partition's
//! offset misread, a frame taken as all-OK that carries an error) would
//! complete batches with wrong metadata or hide a broker's error.
//!
//! Input: `[version byte][mode byte][rest...]`. The version byte maps onto
//! ProduceRequest's versions plus one outside each end (-1 and MAX + 1).
//! With the mode byte even, `rest` is the frame itself (raw bytes). With it
//! odd (structured), `rest` is read as a description of an all-OK response
//! (topics with names, partitions with index and offsets, a throttle time,
//! and sometimes one thing beyond the all-OK shape: an error code, a record
//! error, an error message, a leader hint, an unknown tagged field), which
//! is encoded with the generated encoder; the leftover bytes then damage a
//! copy (byte overwrites, a truncation, an extension) so that both intact
//! and nearly-valid frames are tried.
//!
//! Properties:
//! - the fast decoder never panics;
//! - when it returns `Some`, the generated decoder decodes the same frame
//!   (consuming every byte) to the same correlation id, throttle time and
//!   topic names, and every partition has the same index, base offset, log
//!   append time and log start offset, error code 0, no record errors, a
//!   null error message, no leader hint and no unknown tagged field;
//! - an undamaged all-OK frame of a supported version is always answered
//!   (`Some`): the fast path is not silently lost.
#![no_main]

use bytes::{Buf, Bytes, BytesMut};
use kring_protocol::message::{decode_response_frame, encode_response, Request};
use kring_protocol::messages::produce::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, PartitionProduceResponse, ProduceRequest,
    ProduceResponse, TopicProduceResponse,
};
use kring_protocol::primitives::RawTaggedField;
use kring_protocol::produce_fast::{decode_produce_response_ok, PartitionOk};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MIN: i16 = ProduceRequest::MIN_VERSION;
const MAX: i16 = ProduceRequest::MAX_VERSION;

fuzz_target!(|data: &[u8]| {
    let [v, mode, rest @ ..] = data else {
        return;
    };
    // MIN - 1 ..= MAX + 1, so the out-of-range versions are tried too.
    let span = (MAX - MIN + 3) as u8;
    let version = MIN - 1 + i16::from(v % span);
    if mode & 1 == 0 {
        check(rest, version);
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok((response, correlation_id, all_ok)) = response(&mut u, version) else {
        return;
    };
    if !(MIN..=MAX).contains(&version) {
        // Encode with a supported version; the fast decoder is then asked
        // to read it as the unsupported one.
        let enc_version = version.clamp(MIN, MAX);
        if let Some(frame) = encode(&response, correlation_id, enc_version) {
            assert_eq!(decode_produce_response_ok(&frame, version), None);
        }
        return;
    }
    let Some(frame) = encode(&response, correlation_id, version) else {
        return;
    };
    let fast = check(&frame, version);
    if all_ok {
        assert!(
            fast,
            "an all-OK v{version} frame was not answered: {response:?}"
        );
    }
    // Damage a copy with the bytes left.
    let mut damaged = frame.to_vec();
    let Ok(edits) = u.int_in_range(0u8..=4) else {
        return;
    };
    for _ in 0..edits {
        let Ok(kind) = u.int_in_range(0u8..=3) else {
            break;
        };
        match kind {
            0 | 1 if !damaged.is_empty() => {
                let Ok(at) = u.choose_index(damaged.len()) else {
                    break;
                };
                let Ok(b) = u.arbitrary::<u8>() else { break };
                damaged[at] = if kind == 0 {
                    b
                } else {
                    damaged[at] ^ (1 << (b & 7))
                };
            }
            2 => {
                let Ok(keep) = u.int_in_range(0..=damaged.len()) else {
                    break;
                };
                damaged.truncate(keep);
            }
            _ => {
                let Ok(n) = u.int_in_range(1u8..=4) else {
                    break;
                };
                for _ in 0..n {
                    let Ok(b) = u.arbitrary::<u8>() else { break };
                    damaged.push(b);
                }
            }
        }
    }
    if edits > 0 {
        check(&damaged, version);
    }
});

/// Runs the fast decoder on `frame` and, when it answers, compares with the
/// generated decoder. Returns whether the fast decoder answered.
fn check(frame: &[u8], version: i16) -> bool {
    let Some(fast) = decode_produce_response_ok(frame, version) else {
        return false;
    };
    assert!(
        (MIN..=MAX).contains(&version),
        "answered an unsupported version {version}"
    );
    let (correlation_id, generated) =
        match decode_response_frame::<ProduceRequest>(Bytes::copy_from_slice(frame), version) {
            Ok(r) => r,
            Err(e) => panic!("fast decoder answered {fast:?}, generated decoder failed: {e}"),
        };
    assert_eq!(fast.correlation_id, correlation_id, "correlation id");
    assert_eq!(
        fast.throttle_time_ms, generated.throttle_time_ms,
        "throttle time"
    );
    assert!(generated.node_endpoints.is_empty(), "node endpoints");
    assert!(generated.unknown_tagged_fields.is_empty(), "response tags");
    let topics: Vec<&str> = generated
        .responses
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(fast.topics, topics, "topic names");
    let mut partitions = Vec::new();
    for (t, topic) in generated.responses.iter().enumerate() {
        assert!(topic.unknown_tagged_fields.is_empty(), "topic tags");
        for p in &topic.partition_responses {
            assert_eq!(p.error_code, 0, "error code");
            assert!(p.record_errors.is_empty(), "record errors");
            assert_eq!(p.error_message, None, "error message");
            assert_eq!(p.current_leader, LeaderIdAndEpoch::default(), "leader");
            assert!(p.unknown_tagged_fields.is_empty(), "partition tags");
            partitions.push(PartitionOk {
                topic: t,
                index: p.index,
                base_offset: p.base_offset,
                log_append_time_ms: p.log_append_time_ms,
                log_start_offset: p.log_start_offset,
            });
        }
    }
    assert_eq!(fast.partitions, partitions, "partitions");
    true
}

/// The frame without its size prefix, or `None` if the generated encoder
/// refuses the response (a field the version cannot carry).
fn encode(response: &ProduceResponse, correlation_id: i32, version: i16) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    encode_response(&mut buf, correlation_id, version, response).ok()?;
    let mut frame = buf.freeze();
    frame.advance(4);
    Some(frame)
}

/// Offsets as brokers send them, and the extremes.
fn offset(u: &mut Unstructured<'_>) -> ArbResult<i64> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => -1,
        1 => i64::from(u.arbitrary::<u16>()?),
        2 => *u.choose(&[0, i64::MIN, i64::MAX, 1 << 40])?,
        _ => u.arbitrary()?,
    })
}

/// A fuzzer-described response of `version` (fields the version lacks
/// left at their defaults), its correlation id, and whether it is all-OK.
fn response(u: &mut Unstructured<'_>, version: i16) -> ArbResult<(ProduceResponse, i32, bool)> {
    let correlation_id = u.arbitrary()?;
    let mut r = ProduceResponse {
        throttle_time_ms: if version >= 1 { u.arbitrary()? } else { 0 },
        ..Default::default()
    };
    let topics = u.int_in_range(0u8..=4)?;
    for _ in 0..topics {
        let name = match u.int_in_range(0u8..=3)? {
            0 => String::new(),
            1 => "t".repeat(usize::from(u.int_in_range(1u8..=130)?)),
            _ => u.arbitrary::<&str>()?.to_owned(),
        };
        let mut topic = TopicProduceResponse {
            name,
            ..Default::default()
        };
        let parts = u.int_in_range(0u8..=6)?;
        for _ in 0..parts {
            topic.partition_responses.push(PartitionProduceResponse {
                index: if u.arbitrary()? {
                    u.arbitrary()?
                } else {
                    i32::from(u.arbitrary::<u8>()?)
                },
                error_code: 0,
                base_offset: offset(u)?,
                log_append_time_ms: if version >= 2 { offset(u)? } else { -1 },
                log_start_offset: if version >= 5 { offset(u)? } else { -1 },
                ..Default::default()
            });
        }
        r.responses.push(topic);
    }
    // Sometimes one thing beyond the all-OK shape.
    let mut all_ok = true;
    let extra = u.int_in_range(0u8..=7)?;
    // The first partition, if any.
    let first = r
        .responses
        .iter()
        .position(|t| !t.partition_responses.is_empty());
    let has_topics = !r.responses.is_empty();
    match (extra, first) {
        (1, Some(t)) => {
            let p = &mut r.responses[t].partition_responses[0];
            p.error_code = u.arbitrary()?;
            all_ok = p.error_code == 0;
        }
        (2, Some(t)) if version >= 8 => {
            r.responses[t].partition_responses[0]
                .record_errors
                .push(BatchIndexAndErrorMessage {
                    batch_index: u.arbitrary()?,
                    batch_index_error_message: None,
                    ..Default::default()
                });
            all_ok = false;
        }
        (3, Some(t)) if version >= 8 => {
            r.responses[t].partition_responses[0].error_message =
                Some(u.arbitrary::<&str>()?.to_owned());
            all_ok = false;
        }
        (4, Some(t)) if version >= 10 => {
            let p = &mut r.responses[t].partition_responses[0];
            p.current_leader = LeaderIdAndEpoch {
                leader_id: u.arbitrary()?,
                leader_epoch: u.arbitrary()?,
                ..Default::default()
            };
            all_ok = p.current_leader == LeaderIdAndEpoch::default();
        }
        (5, Some(t)) if version >= 9 => {
            let field = tag(u)?;
            r.responses[t].partition_responses[0]
                .unknown_tagged_fields
                .push(field);
            all_ok = false;
        }
        (6, _) if version >= 9 => {
            r.unknown_tagged_fields.push(tag(u)?);
            all_ok = false;
        }
        (7, _) if version >= 9 && has_topics => {
            r.responses[0].unknown_tagged_fields.push(tag(u)?);
            all_ok = false;
        }
        _ => {}
    }
    Ok((r, correlation_id, all_ok))
}

/// An unknown tagged field (tags the versions here do not define).
fn tag(u: &mut Unstructured<'_>) -> ArbResult<RawTaggedField> {
    let tag = u.int_in_range(1..=1000)?;
    let len = usize::from(u.int_in_range(0u8..=3)?);
    Ok(RawTaggedField {
        tag,
        data: Bytes::copy_from_slice(u.bytes(len)?),
    })
}
