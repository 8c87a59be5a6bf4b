//! The sink's hand-rolled Produce parser and response writer (v3–v11).
//!
//! One pass over the request: it reads the header and the topic/partition
//! lists, hops over each partition's records using only the batch headers
//! (length and record count; no CRC, no decompression), and writes the
//! response as it goes, straight into the connection's output buffer. The
//! response mirrors the request's topic and partition lists, so list counts
//! and topic names (with their length prefixes) are copied as they are.
//! Nothing is allocated in steady state.
//!
//! Produce v3–v8 use the classic encodings (request header v1, response
//! header v0); v9+ are flexible (compact strings and arrays, tagged fields,
//! request header v2, response header v1).

use std::sync::atomic::Ordering;

use super::SinkTopic;

/// Produce versions the sink answers.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 3..=11;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const CORRUPT_MESSAGE: i16 = 2;

/// Why a request could not be parsed; the connection is closed, as a Kafka
/// broker closes a connection that sends a malformed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("request ended early")]
    Eof,
    #[error("invalid length {0}")]
    BadLength(i64),
    #[error("produce version {0} is not supported by the sink (3-11)")]
    Version(i16),
    #[error("varint too long")]
    Varint,
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Eof)?;
        let s = self.b.get(self.pos..end).ok_or(ParseError::Eof)?;
        self.pos = end;
        Ok(s)
    }
    #[inline(always)]
    fn i16(&mut self) -> Result<i16, ParseError> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    #[inline(always)]
    fn i32(&mut self) -> Result<i32, ParseError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    #[inline(always)]
    fn uvarint(&mut self) -> Result<u32, ParseError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = *self.b.get(self.pos).ok_or(ParseError::Eof)?;
            self.pos += 1;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ParseError::Varint)
    }
    /// A classic (i16-prefixed) nullable string or a compact one; returns
    /// its bytes (empty for null).
    #[inline(always)]
    fn string(&mut self, flexible: bool) -> Result<&'a [u8], ParseError> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i16()?)
        };
        match len {
            -1 => Ok(&[]),
            l if l < 0 => Err(ParseError::BadLength(l)),
            l => self.take(l as usize),
        }
    }
    /// An array length (classic i32 or compact); null counts as empty.
    #[inline(always)]
    fn array_len(&mut self, flexible: bool) -> Result<usize, ParseError> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        match len {
            -1 => Ok(0),
            l if l < 0 => Err(ParseError::BadLength(l)),
            // Each element takes at least one byte: a bound that keeps a
            // hostile count from looping for long.
            l if l as usize > self.b.len() - self.pos => Err(ParseError::BadLength(l)),
            l => Ok(l as usize),
        }
    }
    /// Nullable bytes (classic i32 or compact); null is empty.
    #[inline(always)]
    fn bytes(&mut self, flexible: bool) -> Result<&'a [u8], ParseError> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        match len {
            -1 => Ok(&[]),
            l if l < 0 => Err(ParseError::BadLength(l)),
            l => self.take(l as usize),
        }
    }
    #[inline(always)]
    fn skip_tagged_fields(&mut self) -> Result<(), ParseError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.take(size as usize)?;
        }
        Ok(())
    }
}

#[inline(always)]
fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Counts the records in a partition's `records` bytes by walking the batch
/// headers. `None` when the bytes are not whole v2 batches.
#[inline]
fn count_records(mut records: &[u8]) -> Option<i64> {
    let mut n: i64 = 0;
    while !records.is_empty() {
        if records.len() < 61 || records[16] != 2 {
            return None;
        }
        let len = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
        let count = i32::from_be_bytes([records[57], records[58], records[59], records[60]]);
        if len < 49 || count < 0 {
            return None;
        }
        let total = 12 + len as usize;
        if total > records.len() {
            return None;
        }
        n += i64::from(count);
        records = &records[total..];
    }
    Some(n)
}

/// What one request amounted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Handled {
    /// Records acknowledged.
    pub(crate) records: u64,
    /// Whether a response was written (false for acks=0).
    pub(crate) responded: bool,
}

/// Parses one Produce request frame (`frame` excludes the size prefix) and,
/// unless acks=0, appends its response frame to `out`. `topic` resolves a
/// topic name to its partition offsets (creating it if needed); `None`
/// answers UNKNOWN_TOPIC_OR_PARTITION.
/// On error `out` is left as it was.
pub(crate) fn handle(
    frame: &[u8],
    out: &mut Vec<u8>,
    topic: impl FnMut(&[u8]) -> Option<std::sync::Arc<SinkTopic>>,
) -> Result<Handled, ParseError> {
    let start = out.len();
    let r = handle_inner(frame, out, topic);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn handle_inner(
    frame: &[u8],
    out: &mut Vec<u8>,
    mut topic: impl FnMut(&[u8]) -> Option<std::sync::Arc<SinkTopic>>,
) -> Result<Handled, ParseError> {
    let mut c = Cur { b: frame, pos: 0 };
    let _api_key = c.i16()?;
    let version = c.i16()?;
    if !VERSIONS.contains(&version) {
        return Err(ParseError::Version(version));
    }
    let correlation_id = c.i32()?;
    let flexible = version >= 9;
    // client_id stays a classic nullable string in request header v2.
    c.string(false)?;
    if flexible {
        c.skip_tagged_fields()?;
    }
    c.string(flexible)?; // transactional_id
    let acks = c.i16()?;
    c.i32()?; // timeout_ms
    let topics = c.array_len(flexible)?;

    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&correlation_id.to_be_bytes());
    if flexible {
        out.push(0); // response header tagged fields
    }
    put_len(out, topics, flexible);
    let mut handled = Handled::default();
    for _ in 0..topics {
        let name_at = c.pos;
        let name = c.string(flexible)?;
        out.extend_from_slice(&frame[name_at..c.pos]);
        let t = topic(name);
        let partitions = c.array_len(flexible)?;
        put_len(out, partitions, flexible);
        for _ in 0..partitions {
            let index = c.i32()?;
            let records = c.bytes(flexible)?;
            if flexible {
                c.skip_tagged_fields()?;
            }
            let offsets = t.as_ref().and_then(|t| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| t.partitions.get(i))
            });
            let (error, base_offset) = match (offsets, count_records(records)) {
                (None, _) => (UNKNOWN_TOPIC_OR_PARTITION, -1),
                (Some(_), None) => (CORRUPT_MESSAGE, -1),
                (Some(o), Some(n)) => {
                    handled.records += n as u64;
                    (0, o.0.fetch_add(n, Ordering::Relaxed))
                }
            };
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&error.to_be_bytes());
            out.extend_from_slice(&base_offset.to_be_bytes());
            out.extend_from_slice(&(-1i64).to_be_bytes()); // log_append_time_ms
            if version >= 5 {
                out.extend_from_slice(&0i64.to_be_bytes()); // log_start_offset
            }
            if version >= 8 {
                if flexible {
                    out.push(1); // record_errors: empty compact array
                    out.push(0); // error_message: null
                    out.push(0); // tagged fields
                } else {
                    out.extend_from_slice(&0i32.to_be_bytes());
                    out.extend_from_slice(&(-1i16).to_be_bytes());
                }
            }
        }
        if flexible {
            c.skip_tagged_fields()?;
            out.push(0);
        }
    }
    out.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
    if flexible {
        c.skip_tagged_fields()?;
        out.push(0);
    }
    if acks == 0 {
        // Kafka sends no response to acks=0 produce.
        out.truncate(start);
        return Ok(handled);
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    handled.responded = true;
    Ok(handled)
}

#[inline(always)]
fn put_len(out: &mut Vec<u8>, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(out, n as u32 + 1);
    } else {
        out.extend_from_slice(&(n as i32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::PaddedOffset;
    use std::sync::Arc;

    #[test]
    fn counts_records_across_batches() {
        let a = crate::batch::tests::batch(-1, -1, -1, 3);
        let b = crate::batch::tests::batch(-1, -1, -1, 4);
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(count_records(&both), Some(7));
        assert_eq!(count_records(&[]), Some(0));
        assert_eq!(count_records(&both[..both.len() - 1]), None);
        assert_eq!(count_records(&both[..30]), None);
    }

    /// Encodes real requests (with unknown tagged fields at every level in
    /// flexible versions, which the parser must skip) and decodes the sink's
    /// answer with the generated response type.
    #[test]
    fn answers_decode_in_every_version() {
        use bytes::Bytes;
        use kring_protocol::message::{decode_response_frame, encode_request};
        use kring_protocol::messages::produce::{
            PartitionProduceData, ProduceRequest, TopicProduceData,
        };
        use kring_protocol::primitives::RawTaggedField;

        let tags = |v: i16| {
            if v >= 9 {
                vec![RawTaggedField {
                    tag: 99,
                    data: Bytes::from_static(b"xyz"),
                }]
            } else {
                Vec::new()
            }
        };
        let topic = Arc::new(SinkTopic {
            partitions: (0..4).map(|_| PaddedOffset::default()).collect(),
        });
        for v in VERSIONS {
            let req = ProduceRequest {
                transactional_id: Some("tx".into()),
                acks: -1,
                timeout_ms: 100,
                topic_data: ["a", "bb"]
                    .iter()
                    .map(|name| TopicProduceData {
                        name: name.to_string(),
                        partition_data: [3, 0, 9]
                            .iter()
                            .map(|&index| PartitionProduceData {
                                index,
                                records: Some(crate::batch::tests::batch(-1, -1, -1, 2)),
                                unknown_tagged_fields: tags(v),
                            })
                            .collect(),
                        unknown_tagged_fields: tags(v),
                    })
                    .collect(),
                unknown_tagged_fields: tags(v),
            };
            let mut wire = Vec::new();
            encode_request(&mut wire, 77, Some("client"), v, &req).unwrap();
            let mut out = vec![0xAA]; // responses are appended after what is there
            let h = handle(&wire[4..], &mut out, |name| {
                (name != b"bb").then(|| topic.clone())
            })
            .unwrap();
            assert_eq!(
                h,
                Handled {
                    records: 4,
                    responded: true
                }
            );
            let (corr, resp) =
                decode_response_frame::<ProduceRequest>(Bytes::copy_from_slice(&out[5..]), v)
                    .unwrap();
            assert_eq!(corr, 77);
            assert_eq!(resp.responses.len(), 2);
            assert_eq!(resp.responses[0].name, "a");
            assert_eq!(resp.responses[1].name, "bb");
            let got: Vec<(i32, i16, i64)> = resp
                .responses
                .iter()
                .flat_map(|t| {
                    t.partition_responses
                        .iter()
                        .map(|p| (p.index, p.error_code, p.base_offset))
                })
                .collect();
            let base = 2 * i64::from(v - 3);
            assert_eq!(
                got,
                [
                    (3, 0, base),
                    (0, 0, base),
                    (9, 3, -1),
                    (3, 3, -1),
                    (0, 3, -1),
                    (9, 3, -1)
                ],
                "v{v}"
            );
        }
    }

    #[test]
    fn rejects_unsupported_versions_and_short_input() {
        let mut out = Vec::new();
        let mut frame = vec![0, 0, 0, 2, 0, 0, 0, 1];
        assert_eq!(
            handle(&frame, &mut out, |_| None),
            Err(ParseError::Version(2))
        );
        frame[3] = 9;
        assert_eq!(handle(&frame, &mut out, |_| None), Err(ParseError::Eof));
    }
}
