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

/// A ProduceRequest frame written entry by entry (hand-written), for a
/// caller that holds each partition's records as [`Bytes`] rather than as
/// a generated [`ProduceRequest`]: no per-partition struct is built,
/// cloned or dropped, and nothing walks the request twice. The bytes equal
/// [`encode_produce_request_frame`]'s for the same request without unknown
/// tagged fields (a test compares them for every version), and so those of
/// [`encode_request`](crate::message::encode_request).
///
/// The header and every partition entry's fixed part go into one buffer,
/// frozen once at [`finish`](Self::finish) and cut into chunks around the
/// record batches, which are spliced in as chunks of their own (shared,
/// never copied). The size prefix and the correlation id are written at
/// `finish`, so the request can be built before its connection assigns the
/// correlation id.
///
/// Order of calls: [`new`](Self::new) with the number of topics; per
/// topic [`topic`](Self::topic) with its number of partitions, then that
/// many [`partition`](Self::partition) calls; then `finish`. A count that
/// does not match what is written is an [`EncodeError::CountMismatch`],
/// never a malformed frame.
#[derive(Debug)]
pub struct ProduceFrameWriter {
    head: BytesMut,
    /// Where each partition's records go: the head's length when they were
    /// added, and the records.
    cuts: Vec<(usize, Bytes)>,
    records_len: usize,
    flexible: bool,
    /// Topics announced and not yet begun.
    topics_left: usize,
    topics_declared: usize,
    /// The current topic's partitions announced and not yet written, and
    /// how many it announced (`None`: no topic begun).
    parts_left: usize,
    parts_declared: Option<usize>,
}

impl ProduceFrameWriter {
    /// Starts a frame: request header (correlation id and size prefix left
    /// for [`finish`](Self::finish)), transactional id, acks, timeout and
    /// the number of topics. `partitions` (all topics together) and
    /// `head_capacity` (bytes besides the records) only size buffers.
    #[allow(clippy::too_many_arguments)] // the request's fields, each a plain value
    pub fn new(
        client_id: Option<&str>,
        version: i16,
        transactional_id: Option<&str>,
        acks: i16,
        timeout_ms: i32,
        topics: usize,
        partitions: usize,
        head_capacity: usize,
    ) -> Result<ProduceFrameWriter, EncodeError> {
        use crate::message::Request;
        if !(ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION).contains(&version) {
            return Err(EncodeError::UnsupportedVersion {
                api_key: ProduceRequest::API_KEY,
                version,
            });
        }
        let flexible = version >= ProduceRequest::FLEXIBLE_MIN;
        if let Some(id) = client_id {
            // ClientId is a classic (non-compact) string even in header v2.
            p::check_string_len("ClientId", id, false)?;
        }
        if version < 3 && transactional_id.is_some() {
            return Err(EncodeError::FieldNotInVersion {
                field: "TransactionalId",
                version,
            });
        }
        if let Some(t) = transactional_id {
            p::check_string_len("TransactionalId", t, flexible)?;
        }
        w::check_array_len("TopicData", topics, flexible)?;
        let mut head = BytesMut::with_capacity(head_capacity);
        head.put_i32(0); // size, written by `finish`
        head.put_i16(ProduceRequest::API_KEY);
        head.put_i16(version);
        head.put_i32(0); // correlation id, written by `finish`
        p::put_nullable_string(&mut head, client_id, false);
        if flexible {
            p::put_unsigned_varint(&mut head, 0); // header: no tagged fields
        }
        if version >= 3 {
            p::put_nullable_string(&mut head, transactional_id, flexible);
        }
        p::put_i16(&mut head, acks);
        p::put_i32(&mut head, timeout_ms);
        p::put_array_len(&mut head, Some(topics), flexible);
        Ok(ProduceFrameWriter {
            head,
            cuts: Vec::with_capacity(partitions),
            records_len: 0,
            flexible,
            topics_left: topics,
            topics_declared: topics,
            parts_left: 0,
            parts_declared: None,
        })
    }

    /// Ends the current topic, if any: all its partitions written, its
    /// (empty) tagged fields.
    fn end_topic(&mut self) -> Result<(), EncodeError> {
        if let Some(declared) = self.parts_declared.take() {
            if self.parts_left != 0 {
                return Err(EncodeError::CountMismatch {
                    field: "PartitionData",
                    declared,
                    written: declared - self.parts_left,
                });
            }
            if self.flexible {
                self.head.put_u8(0); // topic: no tagged fields
            }
        }
        Ok(())
    }

    /// Begins the next topic, which has `partitions` partition entries.
    pub fn topic(&mut self, name: &str, partitions: usize) -> Result<(), EncodeError> {
        self.end_topic()?;
        if self.topics_left == 0 {
            return Err(EncodeError::CountMismatch {
                field: "TopicData",
                declared: self.topics_declared,
                written: self.topics_declared + 1,
            });
        }
        p::check_string_len("Name", name, self.flexible)?;
        w::check_array_len("PartitionData", partitions, self.flexible)?;
        self.topics_left -= 1;
        p::put_string(&mut self.head, name, self.flexible);
        p::put_array_len(&mut self.head, Some(partitions), self.flexible);
        self.parts_left = partitions;
        self.parts_declared = Some(partitions);
        Ok(())
    }

    /// Adds a partition entry of the current topic: its index and its
    /// records (a record batch, or several back to back), spliced in as
    /// their own chunk.
    pub fn partition(&mut self, index: i32, records: Bytes) -> Result<(), EncodeError> {
        if self.parts_left == 0 {
            // No topic begun, or its partitions all written.
            let declared = self.parts_declared.unwrap_or(0);
            return Err(EncodeError::CountMismatch {
                field: "PartitionData",
                declared,
                written: declared + 1,
            });
        }
        w::check_bytes_len("Records", records.len(), self.flexible)?;
        self.parts_left -= 1;
        let b = &mut self.head;
        b.put_i32(index);
        p::put_nullable_bytes_prefix(b, Some(records.len()), self.flexible);
        if !records.is_empty() {
            self.records_len += records.len();
            self.cuts.push((b.len(), records));
        }
        if self.flexible {
            b.put_u8(0); // partition: no tagged fields
        }
        Ok(())
    }

    /// The frame, with `correlation_id` and the size prefix written.
    pub fn finish(mut self, correlation_id: i32) -> Result<Frame, EncodeError> {
        self.end_topic()?;
        if self.topics_left != 0 {
            return Err(EncodeError::CountMismatch {
                field: "TopicData",
                declared: self.topics_declared,
                written: self.topics_declared - self.topics_left,
            });
        }
        if self.flexible {
            self.head.put_u8(0); // request: no tagged fields
        }
        let total = self.head.len() + self.records_len;
        let size = i32::try_from(total - 4).map_err(|_| EncodeError::TooLong {
            field: "frame",
            len: total - 4,
        })?;
        self.head[..4].copy_from_slice(&size.to_be_bytes());
        self.head[8..12].copy_from_slice(&correlation_id.to_be_bytes());
        let head = self.head.freeze();
        let mut frame = Frame {
            chunks: Vec::with_capacity(2 * self.cuts.len() + 1),
            len: 0,
        };
        let mut from = 0;
        for (at, records) in self.cuts {
            // `at > from` always: a partition entry's fixed part precedes
            // its records.
            frame.push(head.slice(from..at));
            frame.push(records);
            from = at;
        }
        let mut rest = head;
        bytes::Buf::advance(&mut rest, from);
        frame.push(rest);
        debug_assert_eq!(frame.len(), total);
        Ok(frame)
    }
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
                    assert_batches_spliced(&got, req, &format!("v{v} request {i}"));
                }
            }
        }
    }

    /// No empty chunk, and every non-empty batch of `req` is a chunk of
    /// its own sharing the request's buffer (not copied).
    fn assert_batches_spliced(got: &Frame, req: &ProduceRequest, what: &str) {
        assert!(got.chunks().iter().all(|c| !c.is_empty()), "{what}");
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
                "{what}: a batch was copied"
            );
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

    /// `req` through [`ProduceFrameWriter`] (which has no null records and
    /// no unknown tagged fields).
    fn written(
        corr: i32,
        client: Option<&str>,
        v: i16,
        req: &ProduceRequest,
    ) -> Result<Frame, EncodeError> {
        let parts = req.topic_data.iter().map(|t| t.partition_data.len()).sum();
        let mut w = ProduceFrameWriter::new(
            client,
            v,
            req.transactional_id.as_deref(),
            req.acks,
            req.timeout_ms,
            req.topic_data.len(),
            parts,
            64,
        )?;
        for t in &req.topic_data {
            w.topic(&t.name, t.partition_data.len())?;
            for part in &t.partition_data {
                w.partition(part.index, part.records.clone().expect("not null"))?;
            }
        }
        w.finish(corr)
    }

    #[test]
    fn produce_frame_writer_is_byte_identical_for_every_version() {
        for v in ProduceRequest::MIN_VERSION..=ProduceRequest::MAX_VERSION {
            let reqs: Vec<ProduceRequest> = requests(v)
                .into_iter()
                .map(|mut r| {
                    for t in &mut r.topic_data {
                        t.partition_data.retain(|p| p.records.is_some());
                    }
                    r
                })
                .collect();
            for (i, req) in reqs.iter().enumerate() {
                for client in [Some("kring"), None] {
                    let corr = 0x0102_0304 + i as i32;
                    let want = contiguous(corr, client, v, req);
                    let got = written(corr, client, v, req).expect("written");
                    assert_eq!(got.len(), want.len(), "v{v} request {i}");
                    assert_eq!(got.to_bytes(), want, "v{v} request {i}");
                    assert_batches_spliced(&got, req, &format!("v{v} request {i}"));
                }
            }
        }
    }

    #[test]
    fn produce_frame_writer_refuses_what_it_cannot_write() {
        let mut req = requests(3).remove(2);
        req.transactional_id = Some("t".into());
        let mut buf = BytesMut::new();
        let want = encode_request(&mut buf, 1, None, 2, &req).unwrap_err();
        assert_eq!(written(1, None, 2, &req).unwrap_err(), want);
        assert!(matches!(
            written(1, None, 12, &req),
            Err(EncodeError::UnsupportedVersion { version: 12, .. })
        ));
        let mismatch =
            |e: Result<_, EncodeError>| matches!(e, Err(EncodeError::CountMismatch { .. }));
        // The field and the counts a mismatch names.
        let counts = |e: Result<(), EncodeError>| match e {
            Err(EncodeError::CountMismatch {
                field,
                declared,
                written,
            }) => Some((field, declared, written)),
            _ => None,
        };
        let rec = || Bytes::from_static(b"records");
        for v in [2, 9] {
            let new = |topics| ProduceFrameWriter::new(None, v, None, 1, 10, topics, 0, 0);
            // A partition before any topic.
            let mut w = new(1).unwrap();
            assert!(mismatch(w.partition(0, rec())));
            // More partitions than announced.
            let mut w = new(1).unwrap();
            w.topic("a", 2).unwrap();
            w.partition(0, rec()).unwrap();
            w.partition(1, rec()).unwrap();
            assert_eq!(counts(w.partition(2, rec())), Some(("PartitionData", 2, 3)));
            // Fewer partitions than announced, at the next topic and at the end.
            let mut w = new(2).unwrap();
            w.topic("a", 5).unwrap();
            w.partition(0, rec()).unwrap();
            w.partition(1, rec()).unwrap();
            assert_eq!(counts(w.topic("b", 0)), Some(("PartitionData", 5, 2)));
            let mut w = new(1).unwrap();
            w.topic("a", 2).unwrap();
            w.partition(0, rec()).unwrap();
            assert!(mismatch(w.finish(1).map(|_| ())));
            // More topics than announced, and fewer.
            let mut w = new(1).unwrap();
            w.topic("a", 0).unwrap();
            assert_eq!(counts(w.topic("b", 0)), Some(("TopicData", 1, 2)));
            let mut w = new(5).unwrap();
            w.topic("a", 0).unwrap();
            w.topic("b", 0).unwrap();
            assert_eq!(counts(w.finish(1).map(|_| ())), Some(("TopicData", 5, 2)));
            // A topic name too long for its prefix (classic: i16).
            let mut w = new(1).unwrap();
            assert!(
                matches!(
                    w.topic(&"x".repeat(40_000), 0),
                    Err(EncodeError::TooLong { field: "Name", .. })
                ) == (v < 9)
            );
        }
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
        assert!(!a.is_empty() && Frame::default().is_empty());
        assert_eq!(a.into_chunks(), [&b"ab"[..], b"cd"]);
    }

    /// `Debug` shows the api key, version and sizes, never the bytes: a
    /// SaslAuthenticate frame carries a password.
    #[test]
    fn debug_shows_the_header_and_no_bytes() {
        let mut f = Frame::from(Bytes::from_static(b"\0\0\0\x1a\0\x24\0\x02\0\0\0\x07"));
        f.push(Bytes::from_static(b"\0alice\0hunter2"));
        assert_eq!(
            format!("{f:?}"),
            "Frame { api_key: 36, api_version: 2, len: 26, chunks: 2 }"
        );
        // A first chunk too short for the header: sizes only.
        let short = Frame::from(Bytes::from_static(b"\0\0\0\x03abc"));
        assert_eq!(format!("{short:?}"), "Frame { len: 7, chunks: 1 }");
        let eight = Frame::from(Bytes::from_static(b"\0\0\0\x04\0\x03\0\x01"));
        assert_eq!(
            format!("{eight:?}"),
            "Frame { api_key: 3, api_version: 1, len: 8, chunks: 1 }"
        );
    }
}
