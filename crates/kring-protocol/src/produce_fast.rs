//! A hand-written fast path for the common ProduceResponse: every
//! partition accepted, nothing optional present.
//!
//! Why: at 10,000 partitions all receiving, a response answers thousands of
//! one-record batches, and the generated decoder builds a `String` per
//! topic and, per partition, a struct with three `Vec`s and an `Option` —
//! a visible share of the per-batch cost. This decoder reads the same
//! bytes into a flat list of numbers borrowing the topic names from the
//! frame, and gives up (`None`) on anything beyond the all-OK shape: an
//! error code, record errors, an error message, any tagged field (leader
//! hints, node endpoints, unknown fields), a null, invalid UTF-8, a short
//! or long frame. The caller then uses the generated decoder, which handles
//! (or rejects) everything; so this one need only be exact where it
//! answers. Tests compare it with the generated decoder field by field on
//! every version, and check it never panics on damaged input.

use crate::message::Request;
use crate::messages::produce::ProduceRequest;

/// One partition of an all-OK produce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOk {
    /// Position of its topic in [`ProduceResponseOk::topics`].
    pub topic: usize,
    /// Partition index.
    pub index: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// LogAppendTime, or -1 (also before v2).
    pub log_append_time_ms: i64,
    /// Log start offset, or -1 (also before v5).
    pub log_start_offset: i64,
}

/// An all-OK produce response, decoded without allocating per partition
/// beyond one flat list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResponseOk<'a> {
    /// The response header's correlation id.
    pub correlation_id: i32,
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// Topic names, in response order (borrowed from the frame).
    pub topics: Vec<&'a str>,
    /// Every partition, in response order.
    pub partitions: Vec<PartitionOk>,
}

struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn uvarint(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = *self.take(1)?.first()?;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A length prefix (string `short`: i16, else i32; compact: varint
    /// n + 1). `None` for a null or a negative length: not the all-OK
    /// shape, or malformed.
    fn len(&mut self, compact: bool, short: bool) -> Option<usize> {
        if compact {
            let n = self.uvarint()?;
            return usize::try_from(n.checked_sub(1)?).ok();
        }
        let n = if short {
            i32::from(self.i16()?)
        } else {
            self.i32()?
        };
        usize::try_from(n).ok()
    }

    /// A null string or an empty array: what an OK partition carries.
    fn null_string(&mut self, compact: bool) -> Option<()> {
        let null = if compact {
            self.uvarint()? == 0
        } else {
            self.i16()? == -1
        };
        null.then_some(())
    }

    fn no_tags(&mut self) -> Option<()> {
        (self.uvarint()? == 0).then_some(())
    }
}

/// Decodes a produce response frame (size prefix stripped) of `version` if
/// it is all-OK: every partition with error code 0, no record errors, no
/// error message, no tagged field. `None` otherwise — use the generated
/// decoder ([`decode_response_frame`](crate::message::decode_response_frame))
/// then. Where this answers, the values equal the generated decoder's.
pub fn decode_produce_response_ok(frame: &[u8], version: i16) -> Option<ProduceResponseOk<'_>> {
    if !(ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION).contains(&version) {
        return None;
    }
    let flexible = version >= ProduceRequest::FLEXIBLE_MIN;
    let mut c = Cur { b: frame };
    let correlation_id = c.i32()?;
    if flexible {
        c.no_tags()?;
    }
    let topic_count = c.len(flexible, false)?;
    // Each topic takes at least 2 bytes, each partition 14: never trust a
    // count for more than the frame can hold.
    let mut topics = Vec::with_capacity(topic_count.min(c.b.len() / 2));
    let mut partitions = Vec::new();
    for t in 0..topic_count {
        let name_len = c.len(flexible, true)?;
        let name = std::str::from_utf8(c.take(name_len)?).ok()?;
        topics.push(name);
        let n = c.len(flexible, false)?;
        partitions.reserve(n.min(c.b.len() / 14));
        for _ in 0..n {
            let index = c.i32()?;
            if c.i16()? != 0 {
                return None;
            }
            let base_offset = c.i64()?;
            let log_append_time_ms = if version >= 2 { c.i64()? } else { -1 };
            let log_start_offset = if version >= 5 { c.i64()? } else { -1 };
            if version >= 8 {
                // Record errors: an empty array.
                if c.len(flexible, false)? != 0 {
                    return None;
                }
                c.null_string(flexible)?;
            }
            if flexible {
                c.no_tags()?;
            }
            partitions.push(PartitionOk {
                topic: t,
                index,
                base_offset,
                log_append_time_ms,
                log_start_offset,
            });
        }
        if flexible {
            c.no_tags()?;
        }
    }
    let throttle_time_ms = if version >= 1 { c.i32()? } else { 0 };
    if flexible {
        c.no_tags()?;
    }
    if !c.b.is_empty() {
        return None;
    }
    Some(ProduceResponseOk {
        correlation_id,
        throttle_time_ms,
        topics,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{decode_response_frame, encode_response};
    use crate::messages::produce::{
        BatchIndexAndErrorMessage, LeaderIdAndEpoch, PartitionProduceResponse, ProduceResponse,
        TopicProduceResponse,
    };
    use bytes::{Buf, Bytes, BytesMut};

    fn frame(r: &ProduceResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 77, version, r).unwrap();
        let mut b = buf.freeze();
        b.advance(4); // size prefix
        b
    }

    fn part(index: i32, base: i64, version: i16) -> PartitionProduceResponse {
        PartitionProduceResponse {
            index,
            error_code: 0,
            base_offset: base,
            log_append_time_ms: if version >= 2 { base * 3 } else { -1 },
            log_start_offset: if version >= 5 { base / 2 } else { -1 },
            ..Default::default()
        }
    }

    fn all_ok(version: i16) -> ProduceResponse {
        ProduceResponse {
            responses: vec![
                TopicProduceResponse {
                    name: "orders".into(),
                    partition_responses: (0..5)
                        .map(|i| part(i, 1000 + i64::from(i), version))
                        .collect(),
                    ..Default::default()
                },
                TopicProduceResponse {
                    name: "ünïcode".into(),
                    partition_responses: vec![part(7, 1 << 40, version)],
                    ..Default::default()
                },
                TopicProduceResponse {
                    name: String::new(),
                    partition_responses: vec![],
                    ..Default::default()
                },
            ],
            throttle_time_ms: if version >= 1 { 12 } else { 0 },
            ..Default::default()
        }
    }

    /// The fast decoder's view of the generated decoder's result.
    fn expected(r: &ProduceResponse) -> (Vec<&str>, Vec<PartitionOk>) {
        let topics = r.responses.iter().map(|t| t.name.as_str()).collect();
        let parts = r
            .responses
            .iter()
            .enumerate()
            .flat_map(|(t, tr)| {
                tr.partition_responses.iter().map(move |p| PartitionOk {
                    topic: t,
                    index: p.index,
                    base_offset: p.base_offset,
                    log_append_time_ms: p.log_append_time_ms,
                    log_start_offset: p.log_start_offset,
                })
            })
            .collect();
        (topics, parts)
    }

    /// Where the fast decoder answers, it equals the generated one; it
    /// answers every all-OK response.
    #[test]
    fn all_ok_responses_decode_as_the_generated_decoder_does() {
        for version in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let f = frame(&all_ok(version), version);
            let (corr, generated) =
                decode_response_frame::<ProduceRequest>(f.clone(), version).unwrap();
            let fast = decode_produce_response_ok(&f, version).expect("all-OK");
            let (topics, parts) = expected(&generated);
            assert_eq!(fast.correlation_id, corr, "v{version}");
            assert_eq!(
                fast.throttle_time_ms, generated.throttle_time_ms,
                "v{version}"
            );
            assert_eq!(fast.topics, topics, "v{version}");
            assert_eq!(fast.partitions, parts, "v{version}");
        }
    }

    /// What a response at many partitions looks like: counts and a name
    /// length past 127, two-byte varints in the flexible versions (a
    /// topic of 10,000 partitions answered at once). The fast decoder
    /// must still answer, exactly as the generated one.
    #[test]
    fn long_lists_and_long_names_are_decoded_too() {
        for version in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let mut r = all_ok(version);
            r.responses[0].name = "t".repeat(200);
            r.responses[0].partition_responses = (0..300)
                .map(|i| part(i, 1 << 20 | i64::from(i), version))
                .collect();
            r.responses.extend((0..130).map(|i| TopicProduceResponse {
                name: format!("topic-{i}"),
                partition_responses: vec![part(i, 5, version)],
                ..Default::default()
            }));
            let f = frame(&r, version);
            let (_, generated) =
                decode_response_frame::<ProduceRequest>(f.clone(), version).unwrap();
            let fast = decode_produce_response_ok(&f, version).expect("all-OK");
            let (topics, parts) = expected(&generated);
            assert_eq!(fast.topics, topics, "v{version}");
            assert_eq!(fast.partitions, parts, "v{version}");
            assert_eq!(fast.partitions.len(), 300 + 1 + 130);
        }
    }

    /// Anything beyond the all-OK shape is left to the generated decoder.
    #[test]
    fn anything_else_is_left_to_the_generated_decoder() {
        type Edit = fn(&mut ProduceResponse);
        let edits: [(i16, Edit); 5] = [
            (0, |r| r.responses[0].partition_responses[2].error_code = 6),
            (8, |r| {
                r.responses[0].partition_responses[0].record_errors =
                    vec![BatchIndexAndErrorMessage::default()]
            }),
            (8, |r| {
                r.responses[1].partition_responses[0].error_message = Some("no".into())
            }),
            (10, |r| {
                r.responses[0].partition_responses[4].current_leader = LeaderIdAndEpoch {
                    leader_id: 3,
                    leader_epoch: 4,
                    ..Default::default()
                }
            }),
            (10, |r| r.node_endpoints = vec![Default::default()]),
        ];
        for (min, edit) in edits {
            for version in min..=ProduceRequest::MAX_VERSION {
                let mut r = all_ok(version);
                edit(&mut r);
                let f = frame(&r, version);
                assert!(decode_response_frame::<ProduceRequest>(f.clone(), version).is_ok());
                assert_eq!(decode_produce_response_ok(&f, version), None, "v{version}");
            }
        }
        // Samples carry unknown tagged fields (flexible versions) and
        // non-zero error codes.
        for version in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let f = frame(&ProduceResponse::sample(version), version);
            assert_eq!(
                decode_produce_response_ok(&f, version),
                None,
                "sample v{version}"
            );
        }
        assert_eq!(decode_produce_response_ok(&frame(&all_ok(3), 3), 12), None);
    }

    /// Cut short, lengthened or with any byte changed, a frame is never a
    /// panic, and whatever the fast decoder still answers equals the
    /// generated decoder's result.
    #[test]
    fn damaged_frames_never_panic_and_never_disagree() {
        for version in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let f = frame(&all_ok(version), version);
            for cut in 0..f.len() {
                assert_eq!(decode_produce_response_ok(&f[..cut], version), None);
            }
            let mut longer = f.to_vec();
            longer.push(0);
            assert_eq!(decode_produce_response_ok(&longer, version), None);
            for i in 0..f.len() {
                for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut d = f.to_vec();
                    d[i] = v;
                    let Some(fast) = decode_produce_response_ok(&d, version) else {
                        continue;
                    };
                    let (corr, generated) =
                        decode_response_frame::<ProduceRequest>(Bytes::from(d.clone()), version)
                            .expect("the fast decoder answered: the generated one must too");
                    let (topics, parts) = expected(&generated);
                    assert_eq!(
                        (
                            fast.correlation_id,
                            fast.throttle_time_ms,
                            fast.topics,
                            fast.partitions
                        ),
                        (corr, generated.throttle_time_ms, topics, parts),
                        "v{version}, byte {i} = {v:#x}"
                    );
                }
            }
        }
    }
}
