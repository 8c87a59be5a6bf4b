//! Request frames made of chunks (hand-written).
//!
//! A [`Frame`] is one complete request (4-byte size prefix included) held as
//! a short list of [`Bytes`] chunks that are written back to back. Most
//! requests are one chunk. A ProduceRequest built by
//! [`encode_produce_request_frame`] is not: its header and the fixed part of
//! every partition entry go into one small buffer, and each partition's
//! record batch is its own chunk — a reference-counted clone of the batch's
//! buffer, never a copy — so a driver can hand every chunk to the kernel as
//! its own iovec of one `sendmsg`.
//!
//! The bytes are exactly those [`encode_request`](crate::message::encode_request)
//! writes for the same request (the tests compare both for every version).

use crate::message::put_size_and_header;
use crate::message::wire as w;
use crate::messages::produce::ProduceRequest;
use crate::primitives as p;
use crate::primitives::EncodeError;
use bytes::{BufMut, Bytes, BytesMut};

/// One request frame, size prefix included, as chunks written in order.
///
/// Equality compares the bytes, not how they are cut into chunks.
///
/// `Debug` shows the request's api key, version and size, never its
/// bytes: a frame may carry credentials (a SaslAuthenticate request holds
/// a PLAIN password, an OAUTHBEARER token or a SCRAM proof).
#[derive(Clone, Default)]
pub struct Frame {
    chunks: Vec<Bytes>,
    len: usize,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Frame");
        // Size prefix, then api key and version: header fields, no payload.
        if let Some(h) = self.chunks.first().filter(|c| c.len() >= 8) {
            d.field("api_key", &i16::from_be_bytes([h[4], h[5]]))
                .field("api_version", &i16::from_be_bytes([h[6], h[7]]));
        }
        d.field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Frame {
    /// The chunks, in wire order. None is empty.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The chunks, in wire order, by value.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.chunks
    }

    /// Total length in bytes (size prefix included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame as one contiguous buffer: the chunk itself when there is
    /// one, else a copy of all of them (for tests and tools; drivers write
    /// the chunks).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut out = BytesMut::with_capacity(self.len);
                for c in many {
                    out.extend_from_slice(c);
                }
                out.freeze()
            }
        }
    }

    /// Appends a chunk (empty ones are skipped).
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }
}

impl From<Bytes> for Frame {
    fn from(b: Bytes) -> Self {
        let mut f = Frame::default();
        f.push(b);
        f
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .chunks
                .iter()
                .flat_map(|c| c.iter())
                .eq(other.chunks.iter().flat_map(|c| c.iter()))
    }
}

impl Eq for Frame {}

/// Builds a [`Frame`]: small fields go into one growing buffer, and
/// [`FrameWriter::splice`] cuts it there and inserts a shared chunk.
struct FrameWriter {
    head: BytesMut,
    frame: Frame,
}

impl FrameWriter {
    fn splice(&mut self, chunk: &Bytes) {
        if chunk.is_empty() {
            return;
        }
        if !self.head.is_empty() {
            // `split` hands over what was written so far without copying;
            // the rest of the allocation stays in `head` for what follows.
            self.frame.push(self.head.split().freeze());
        }
        self.frame.push(chunk.clone());
    }

    fn finish(mut self) -> Frame {
        let rest = self.head.split().freeze();
        self.frame.push(rest);
        self.frame
    }
}

/// Writes the unknown tagged fields of a flexible-version struct (the
/// generated encoders' tail; `encoded_len` has already validated them).
fn put_tags<B: BufMut>(
    buf: &mut B,
    fields: &[crate::primitives::RawTaggedField],
) -> Result<(), EncodeError> {
    let mut unknown = w::UnknownTags::new(fields, |_| false)?;
    p::put_unsigned_varint(buf, w::tag_count(unknown.len())?);
    unknown.put_rest(buf);
    Ok(())
}

/// Encodes a whole ProduceRequest frame (size prefix, request header, body)
/// with every partition's records as its own chunk, shared with the
/// caller's `Bytes` instead of copied. The bytes equal those of
/// [`encode_request`](crate::message::encode_request); everything is
/// validated (by the generated `encoded_len`) before anything is written.
/// `head_capacity` sizes the buffer for everything but the records.
pub fn encode_produce_request_frame(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &ProduceRequest,
    head_capacity: usize,
) -> Result<Frame, EncodeError> {
    let mut fw = FrameWriter {
        head: BytesMut::with_capacity(head_capacity),
        frame: Frame {
            // A head piece and a batch per partition, and the tail.
            chunks: Vec::with_capacity(
                2 * request
                    .topic_data
                    .iter()
                    .map(|t| t.partition_data.len())
                    .sum::<usize>()
                    + 1,
            ),
            len: 0,
        },
    };
    // Checks everything first (see `put_size_and_header`), so what follows
    // cannot fail half-way.
    let flexible = put_size_and_header(&mut fw.head, correlation_id, client_id, version, request)?;
    let size = i32::from_be_bytes(fw.head[..4].try_into().expect("the size prefix"));
    let b = &mut fw.head;
    if version >= 3 {
        p::put_nullable_string(b, request.transactional_id.as_deref(), flexible);
    }
    p::put_i16(b, request.acks);
    p::put_i32(b, request.timeout_ms);
    p::put_array_len(b, Some(request.topic_data.len()), flexible);
    for topic in &request.topic_data {
        p::put_string(&mut fw.head, &topic.name, flexible);
        p::put_array_len(&mut fw.head, Some(topic.partition_data.len()), flexible);
        for part in &topic.partition_data {
            p::put_i32(&mut fw.head, part.index);
            p::put_nullable_bytes_prefix(
                &mut fw.head,
                part.records.as_ref().map(Bytes::len),
                flexible,
            );
            if let Some(records) = &part.records {
                fw.splice(records);
            }
            if flexible {
                put_tags(&mut fw.head, &part.unknown_tagged_fields)?;
            }
        }
        if flexible {
            put_tags(&mut fw.head, &topic.unknown_tagged_fields)?;
        }
    }
    if flexible {
        put_tags(&mut fw.head, &request.unknown_tagged_fields)?;
    }
    let frame = fw.finish();
    debug_assert_eq!(frame.len(), 4 + size as usize);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{encode_request, Request};
    use crate::messages::produce::{PartitionProduceData, TopicProduceData};

    fn contiguous(corr: i32, client: Option<&str>, v: i16, req: &ProduceRequest) -> Bytes {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, corr, client, v, req).expect("encode");
        buf.freeze()
    }

    fn batch(n: usize, seed: u8) -> Bytes {
        Bytes::from(
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect::<Vec<u8>>(),
        )
    }

    /// Requests as kring builds them: 0 topics, 1 topic with 1 partition,
    /// several topics with many partitions, an empty and a null records
    /// field, and a transactional id.
    fn requests(version: i16) -> Vec<ProduceRequest> {
        let topic = |name: &str, parts: std::ops::Range<i32>, size: usize| TopicProduceData {
            name: name.into(),
            partition_data: parts
                .map(|i| PartitionProduceData {
                    index: i,
                    records: Some(batch(size + i as usize, i as u8)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let base = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30_000,
            topic_data: Vec::new(),
            ..Default::default()
        };
        let mut many = base.clone();
        many.topic_data = vec![
            topic("a", 0..50, 100),
            topic("bb", 3..7, 5000),
            topic("c", 0..200, 1),
        ];
        let mut odd = base.clone();
        odd.topic_data = vec![TopicProduceData {
            name: "odd".into(),
            partition_data: vec![
                PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::new()),
                    ..Default::default()
                },
                PartitionProduceData {
                    index: 1,
                    records: None,
                    ..Default::default()
                },
                PartitionProduceData {
                    index: 2,
                    records: Some(batch(10, 7)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }];
        let mut txn = many.clone();
        if version >= 3 {
            txn.transactional_id = Some("txn-1".into());
        }
        let mut one = base.clone();
        one.topic_data = vec![topic("only", 0..1, 1000)];
        vec![base, one, many, odd, txn]
    }

    #[test]
    fn chunked_produce_frame_is_byte_identical_for_every_version() {
        for v in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let mut reqs = requests(v);
            // The generated samples: unknown tagged fields at every level in
            // flexible versions.
            reqs.push(ProduceRequest::sample(v));
            reqs.push(ProduceRequest::sample_with_nulls(v));
            for (i, req) in reqs.iter().enumerate() {
                for client in [Some("kring"), None] {
                    let want = contiguous(i as i32, client, v, req);
                    let got = encode_produce_request_frame(i as i32, client, v, req, 64)
                        .expect("chunked");
                    assert_eq!(got.len(), want.len(), "v{v} request {i}");
                    assert_eq!(got.to_bytes(), want, "v{v} request {i}");
                    assert!(got.chunks().iter().all(|c| !c.is_empty()));
                    // Every non-empty batch is its own chunk, sharing the
                    // request's buffer (no copy).
                    let spliced = req
                        .topic_data
                        .iter()
                        .flat_map(|t| &t.partition_data)
                        .filter_map(|p| p.records.as_ref())
                        .filter(|r| !r.is_empty());
                    for r in spliced {
                        assert!(
                            got.chunks()
                                .iter()
                                .any(|c| c.as_ptr() == r.as_ptr() && c.len() == r.len()),
                            "v{v} request {i}: a batch was copied"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn chunked_produce_frame_fails_like_the_contiguous_encoder() {
        let mut req = requests(3).remove(2);
        req.transactional_id = Some("t".into());
        // v2 has no TransactionalId.
        let mut buf = BytesMut::new();
        let want = encode_request(&mut buf, 1, None, 2, &req).unwrap_err();
        assert_eq!(
            encode_produce_request_frame(1, None, 2, &req, 0).unwrap_err(),
            want
        );
        assert!(matches!(
            encode_produce_request_frame(1, None, 12, &req, 0),
            Err(EncodeError::UnsupportedVersion { version: 12, .. })
        ));
    }

    #[test]
    fn frame_equality_ignores_chunking() {
        let mut a = Frame::default();
        a.push(Bytes::from_static(b"ab"));
        a.push(Bytes::from_static(b"cd"));
        a.push(Bytes::new());
        assert_eq!(a.chunks().len(), 2);
        assert_eq!(a, Frame::from(Bytes::from_static(b"abcd")));
        assert_ne!(a, Frame::from(Bytes::from_static(b"abce")));
        assert_eq!(a.to_bytes(), Bytes::from_static(b"abcd"));
        assert_eq!(a.len(), 4);
    }
}
