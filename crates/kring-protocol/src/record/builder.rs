//! Building a record batch v2 in place.
//!
//! Why in place: the producer's hot path is "append a record to the open
//! batch of its partition". Each record is encoded straight into the
//! batch's [`BytesMut`] — varint lengths, timestamp and offset deltas,
//! headers — with no per-record allocation, and the buffer later travels to
//! the I/O driver as [`Bytes`] without a copy.
//!
//! The life of a batch has three steps, each consuming the previous type so
//! a batch cannot be appended to after sealing or sent before stamping:
//! 1. [`RecordBatchBuilder`]: open; [`append`](RecordBatchBuilder::append)
//!    records. [`record_size`](RecordBatchBuilder::record_size) tells what an
//!    append would add, so `batch.size` checks happen before appending.
//! 2. [`SealedBatch`]: closed; records compressed, header filled except the
//!    producer fields and the CRC.
//! 3. [`Bytes`] from [`SealedBatch::stamp`]: producer id, epoch, sequence
//!    and transactional flag written, CRC32C computed once. If a retry
//!    needs new producer fields, [`restamp`] copies once and rewrites them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::primitives::{
    put_unsigned_varint, put_unsigned_varlong, put_varint, unsigned_varint_len,
    unsigned_varlong_len, varint_len, DecodeError, EncodeError,
};

use super::layout::{self, HEADER_LEN};
use super::Compression;

/// A record header, borrowed, for appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header key.
    pub key: &'a str,
    /// Header value; `None` is a null value.
    pub value: Option<&'a [u8]>,
}

/// An open record batch whose records are encoded in place.
///
/// The 61-byte batch header is reserved at creation and filled by
/// [`seal`](Self::seal). Lengths are not checked against Kafka's `i32`
/// limits: callers bound batches with [`record_size`](Self::record_size)
/// against `batch.size` / `max.request.size`, which are far below them.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    /// The batch, header first, in `buf[..len]`; `buf[len..]` is scratch
    /// room the next records are written into (see
    /// [`try_put_plain`](Self::try_put_plain)).
    buf: BytesMut,
    /// The batch's length, header included (`buf.len()` is at least this).
    len: usize,
    base_timestamp: i64,
    /// Largest appended timestamp; `i64::MIN` while empty.
    max_timestamp: i64,
    count: u32,
    /// The shape of the last header-less record (see [`Shape`]).
    shape: Shape,
}

/// A key or value length standing for null in [`Shape`].
const NULL_LEN: usize = usize::MAX;

/// What a header-less record's encoding takes from its key and value
/// lengths alone, kept per batch for the next record with the same
/// lengths.
///
/// Why: a producer's records mostly repeat their shape (no key or a key
/// of one length, values of one size), and then the key's and the value's
/// length varints and the body length less the two deltas are the same
/// for every record. Computing them once per batch instead of per record
/// leaves the timestamp and offset deltas and the length varint as a
/// record's only varints.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Key length, [`NULL_LEN`] for a null key.
    key_len: usize,
    /// Value length, [`NULL_LEN`] for a null value.
    value_len: usize,
    /// The bytes after the offset delta and before the key's (or, for a
    /// null key, the value's) bytes, little-endian: the key length varint,
    /// and for a null key also the value length varint. At most 6 bytes.
    head: u64,
    /// How many bytes of `head` are used.
    head_len: usize,
    /// For a key: the zig-zag value length, whose varint follows the key's
    /// bytes.
    value_zig: u32,
    /// The body's bytes beyond attributes, the two deltas and `head`:
    /// key and value bytes, the value length varint after a key, and the
    /// header count.
    rest: usize,
}

impl Shape {
    /// A shape no record has (no slice is `usize::MAX - 1` long).
    const NONE: Shape = Shape {
        key_len: usize::MAX - 1,
        value_len: usize::MAX - 1,
        head: 0,
        head_len: 0,
        value_zig: 0,
        rest: 0,
    };

    /// The shape of a header-less record with this key and value.
    #[cold]
    #[inline(never)]
    fn of(key: Option<&[u8]>, value: Option<&[u8]>) -> Shape {
        let value_zig = nullable_zig_len(value);
        let value_bytes = value.map_or(0, <[u8]>::len);
        let mut a = [0u8; PREFIX_ARRAY];
        let (head_len, rest) = match key {
            None => {
                let n = put_varint_at(&mut a, 0, 1); // zig-zag -1: null
                (put_varint_at(&mut a, n, value_zig), value_bytes + 1)
            }
            Some(k) => (
                put_varint_at(&mut a, 0, zigzag32(k.len() as i32)),
                k.len() + unsigned_varint_len(value_zig) + value_bytes + 1,
            ),
        };
        let head: [u8; 8] = a[..8].try_into().expect("8 bytes");
        Shape {
            key_len: key.map_or(NULL_LEN, <[u8]>::len),
            value_len: value.map_or(NULL_LEN, <[u8]>::len),
            head: u64::from_le_bytes(head),
            head_len,
            value_zig,
            rest,
        }
    }
}

/// Encoded size of a nullable byte string inside a record: varint length
/// (-1 = null) plus the bytes.
#[inline(always)]
fn nullable_len(v: Option<&[u8]>) -> usize {
    match v {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline(always)]
fn headers_len(headers: &[Header<'_>]) -> usize {
    let mut n = varint_len(headers.len() as i32);
    for h in headers {
        n += varint_len(h.key.len() as i32) + h.key.len() + nullable_len(h.value);
    }
    n
}

#[inline(always)]
fn put_nullable<B: BufMut>(buf: &mut B, v: Option<&[u8]>) {
    match v {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

#[inline(always)]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline(always)]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bytes left free in front of a record's first varints for its length
/// varint (at most 5 bytes).
const LEN_ROOM: usize = 5;

/// The stack array a record's leading varints are gathered in: at most
/// `LEN_ROOM` + attributes 1 + timestamp delta 10 + offset delta 5 + key
/// length 5 + value length 5 = 31 bytes. A power of two, so that indexes
/// are masked rather than bounds-checked.
const PREFIX: usize = 32;

/// The array's length: [`PREFIX`] and 8 more, so that an 8-byte store at
/// any masked index needs no bounds check.
const PREFIX_ARRAY: usize = PREFIX + 8;

/// Writes unsigned varint `v` at `a[at..]`; returns the end. Indexes are
/// masked: callers stay within [`PREFIX`] bytes by construction.
#[inline(always)]
fn put_varint_at(a: &mut [u8; PREFIX_ARRAY], at: usize, v: u32) -> usize {
    put_varlong_at(a, at, u64::from(v))
}

/// [`put_varint_at`] for an unsigned varlong.
#[inline(always)]
fn put_varlong_at(a: &mut [u8; PREFIX_ARRAY], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        a[at & (PREFIX - 1)] = v as u8 | 0x80;
        at += 1;
        v >>= 7;
    }
    a[at & (PREFIX - 1)] = v as u8;
    debug_assert!(at < PREFIX);
    at + 1
}

/// Writes unsigned varint `v` at `b[at..]`; returns the end.
#[inline(always)]
fn put_varint_in(b: &mut [u8], mut at: usize, mut v: u32) -> usize {
    while v >= 0x80 {
        b[at] = v as u8 | 0x80;
        at += 1;
        v >>= 7;
    }
    b[at] = v as u8;
    at + 1
}

/// The least a batch buffer's scratch grows by (see
/// [`RecordBatchBuilder::make_room`]).
const ROOM_STEP: usize = 1024;

/// The zig-zag length of a nullable byte string (-1 for null).
#[inline(always)]
fn nullable_zig_len(v: Option<&[u8]>) -> u32 {
    zigzag32(v.map_or(-1, |b| b.len() as i32))
}

impl RecordBatchBuilder {
    /// Opens a batch whose records' timestamps are deltas to
    /// `base_timestamp` (milliseconds). `capacity` is the initial buffer
    /// reservation, header included (at least the 61 header bytes are
    /// reserved).
    ///
    /// The buffer is made in the shared form of `bytes` (see
    /// `shared_buffer`), so that freezing it never allocates.
    pub fn new(base_timestamp: i64, capacity: usize) -> Self {
        Self::in_buffer(base_timestamp, shared_buffer(capacity.max(HEADER_LEN)))
    }

    /// A builder writing into `buf`: a buffer reused from an earlier batch
    /// instead of a new allocation. Its bytes are not part of the batch:
    /// records are written over them (which spares initializing the
    /// buffer again), and none of them is ever sent. It grows from its
    /// capacity like any other. A buffer in the shared form (one from
    /// [`new`](Self::new), got back from the stamped [`Bytes`] with
    /// `try_into_mut`) keeps it, so the batch is frozen without an
    /// allocation.
    pub fn in_buffer(base_timestamp: i64, mut buf: BytesMut) -> Self {
        if buf.len() < HEADER_LEN {
            buf.clear();
            buf.put_bytes(0, HEADER_LEN);
        } else {
            buf[..HEADER_LEN].fill(0);
        }
        RecordBatchBuilder {
            buf,
            len: HEADER_LEN,
            base_timestamp,
            max_timestamp: i64::MIN,
            count: 0,
            shape: Shape::NONE,
        }
    }

    /// Length of a record's body (everything after its length varint),
    /// with its zig-zag timestamp delta and offset delta already computed.
    #[inline(always)]
    fn body_len(
        zig_ts: u64,
        zig_offset: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> usize {
        1 // attributes
            + unsigned_varlong_len(zig_ts)
            + unsigned_varint_len(zig_offset)
            + nullable_len(key)
            + nullable_len(value)
            + headers_len(headers)
    }

    /// Exact bytes a record with these fields would add to the batch
    /// (uncompressed), for `batch.size` / `max.request.size` checks before
    /// appending.
    #[inline]
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> usize {
        let zig_ts = zigzag64(timestamp.wrapping_sub(self.base_timestamp));
        let body = Self::body_len(zig_ts, zigzag32(self.count as i32), key, value, headers);
        varint_len(body as i32) + body
    }

    /// Appends a record, encoding it in place: length, attributes (0),
    /// timestamp delta, offset delta, key, value and headers. Returns the
    /// record's index in the batch (its offset delta). Allocates only when
    /// the buffer must grow past its capacity.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> u32 {
        match self.try_append(timestamp, key, value, headers, usize::MAX) {
            Ok(index) => index,
            Err(_) => unreachable!("no batch reaches usize::MAX bytes"),
        }
    }

    /// Appends a record (as [`append`](Self::append)) only if the batch,
    /// header included, stays within `limit` bytes with it; otherwise
    /// changes nothing and returns the bytes the record would add (what
    /// [`record_size`](Self::record_size) says).
    ///
    /// Why one call: the producer's hot path checks `batch.size` and the
    /// buffer's capacity before every append, and measuring the record
    /// (five varint lengths) then measuring it again to encode it was a
    /// sixth of the append. With `limit` at most [`capacity`](Self::capacity)
    /// an append never allocates.
    ///
    /// Always inlined: with two callers in the producer's fast path (with
    /// and without a delivery handle) the compiler kept it out of line,
    /// 6 instructions more per record (a call and its register moves).
    #[inline(always)]
    pub fn try_append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
        limit: usize,
    ) -> Result<u32, usize> {
        let index = self.count;
        let zig_ts = zigzag64(timestamp.wrapping_sub(self.base_timestamp));
        let zig_offset = zigzag32(index as i32);
        if headers.is_empty() {
            self.try_put_plain(zig_ts, zig_offset, key, value, limit)?;
        } else {
            self.try_put_general(zig_ts, zig_offset, key, value, headers, limit)?;
        }
        self.count = index + 1;
        if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        Ok(index)
    }

    /// [`try_append`](Self::try_append)'s encoding of a record without
    /// headers, the common case, with as little work per byte as safe code
    /// allows: the varints before the key (or, without a key, before the
    /// value) are written into a stack array after [`LEN_ROOM`] free bytes
    /// — the two deltas, then the key's (and for a null key the value's)
    /// length varints from the batch's [`Shape`] in one 8-byte store — the
    /// body's length is then known from how far they reach, and its varint
    /// is written right-aligned in front of them; that run goes to the
    /// buffer in one copy, then the key, the value's length after a key,
    /// the value and the header count.
    ///
    /// The record is written into the buffer's bytes past the batch
    /// (`buf[len..]`, initialized already: a reused buffer's old bytes, or
    /// zeros from [`make_room`](Self::make_room)) by plain slice copies,
    /// not appended with `BytesMut::extend_from_slice`: that call (a
    /// capacity check, a `memcpy` call and the length update, kept out of
    /// line by the compiler) was made twice per record, and the 16-byte
    /// prefix copy became a `memcpy` inside it. Only a record whose
    /// prefix is longer than 16 bytes, or that needs more than the
    /// capacity, is appended the old way (`put_plain_extending`).
    #[inline(always)]
    fn try_put_plain(
        &mut self,
        zig_ts: u64,
        zig_offset: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        limit: usize,
    ) -> Result<(), usize> {
        let key_len = key.map_or(NULL_LEN, <[u8]>::len);
        let value_len = value.map_or(NULL_LEN, <[u8]>::len);
        if key_len != self.shape.key_len || value_len != self.shape.value_len {
            self.shape = Shape::of(key, value);
        }
        let shape = self.shape;
        let mut a = [0u8; PREFIX_ARRAY];
        // a[LEN_ROOM] is the attributes byte: 0.
        let mut n = put_varlong_at(&mut a, LEN_ROOM + 1, zig_ts);
        n = put_varint_at(&mut a, n, zig_offset);
        // At most 21 here, so the mask changes nothing (and spares the
        // bounds check).
        let at = n & (PREFIX - 1);
        a[at..at + 8].copy_from_slice(&shape.head.to_le_bytes());
        n += shape.head_len;
        // Everything after the length varint.
        let body = (n - LEN_ROOM) + shape.rest;
        let zig_body = zigzag32(body as i32);
        let start = LEN_ROOM - unsigned_varint_len(zig_body);
        let total = LEN_ROOM - start + body;
        let len = self.len;
        if total > limit.saturating_sub(len) {
            return Err(total);
        }
        put_varint_at(&mut a, start, zig_body);
        let head = n - start;
        let end = len + total;
        // The prefix goes in as a fixed 16 bytes (two moves), its excess
        // overwritten by the record's own bytes or left in the scratch.
        let room = end.max(len + 16);
        if head <= 16 && (room <= self.buf.len() || self.make_room(room)) {
            let buf = &mut self.buf[..];
            let chunk: &[u8; 16] = a[start..start + 16].try_into().expect("16 bytes");
            buf[len..len + 16].copy_from_slice(chunk);
            let mut at = len + head;
            if let Some(k) = key {
                buf[at..at + k.len()].copy_from_slice(k);
                at = put_varint_in(buf, at + k.len(), shape.value_zig);
            }
            if let Some(v) = value {
                buf[at..at + v.len()].copy_from_slice(v);
                at += v.len();
            }
            buf[at] = 0; // no headers
            debug_assert_eq!(at + 1, end);
        } else {
            self.put_plain_extending(&a[start..n], key, shape.value_zig, value, total);
        }
        self.len = end;
        Ok(())
    }

    /// Makes `buf[..want]` writable: the scratch past the batch grown by
    /// at least [`ROOM_STEP`] bytes (zeros), within the buffer's capacity.
    /// False, changing nothing, if the capacity is short of `want`.
    ///
    /// Why a step: each growth is a `memset` call; a reused buffer needs
    /// none until the batch outgrows the one before it.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, want: usize) -> bool {
        let (have, cap) = (self.buf.len(), self.buf.capacity());
        if want > cap {
            return false;
        }
        self.buf
            .put_bytes(0, (want - have).max(ROOM_STEP).min(cap - have));
        true
    }

    /// [`try_put_plain`](Self::try_put_plain)'s record appended to the
    /// buffer's end with `BytesMut`'s own calls, growing it if it must
    /// (`append` past the capacity), as the batch's buffer always grew:
    /// `reserve` of the record's size at the batch's length. The prefix
    /// (`prefix`: the varints up to the key's or value's bytes) is copied
    /// as it is.
    #[cold]
    #[inline(never)]
    fn put_plain_extending(
        &mut self,
        prefix: &[u8],
        key: Option<&[u8]>,
        value_zig: u32,
        value: Option<&[u8]>,
        total: usize,
    ) {
        self.buf.truncate(self.len);
        self.buf.reserve(total);
        self.buf.extend_from_slice(prefix);
        if let Some(k) = key {
            self.buf.extend_from_slice(k);
            put_unsigned_varint(&mut self.buf, value_zig);
        }
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.buf.put_u8(0); // no headers
    }

    /// [`try_append`](Self::try_append) for a record with headers.
    #[inline(never)]
    fn try_put_general(
        &mut self,
        zig_ts: u64,
        zig_offset: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
        limit: usize,
    ) -> Result<(), usize> {
        let body = Self::body_len(zig_ts, zig_offset, key, value, headers);
        let total = varint_len(body as i32) + body;
        if total > limit.saturating_sub(self.len) {
            return Err(total);
        }
        let buf = &mut self.buf;
        buf.truncate(self.len);
        buf.reserve(total);
        put_varint(buf, body as i32);
        buf.put_u8(0); // record attributes: unused
        put_unsigned_varlong(buf, zig_ts);
        put_unsigned_varint(buf, zig_offset);
        put_nullable(buf, key);
        put_nullable(buf, value);
        put_varint(buf, headers.len() as i32);
        for h in headers {
            put_varint(buf, h.key.len() as i32);
            buf.put_slice(h.key.as_bytes());
            put_nullable(buf, h.value);
        }
        self.len = buf.len();
        Ok(())
    }

    /// Number of records appended.
    #[inline]
    pub fn record_count(&self) -> u32 {
        self.count
    }

    /// Whether no record has been appended.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Current encoded size including the header, uncompressed.
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        self.len
    }

    /// Where the batch's next bytes go, as a plain address (the end of
    /// the batch in its buffer). For a prefetch hint (kring-core's
    /// `NextWrite`); nothing reads or writes through it.
    #[inline(always)]
    pub fn tail_address(&self) -> usize {
        self.buf.as_ptr() as usize + self.len
    }

    /// The timestamp record timestamps are deltas to.
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// Largest timestamp appended so far (the base timestamp while empty).
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        if self.count == 0 {
            self.base_timestamp
        } else {
            self.max_timestamp
        }
    }

    /// The batch's bytes so far (header not yet filled).
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Bytes reserved by the buffer (for allocation checks and tuning).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Closes the batch: compresses the records section with `compression`
    /// and fills every header field except the producer fields and the CRC
    /// (see [`SealedBatch::stamp`]). Base offset is 0, partition leader
    /// epoch -1, timestamp type CreateTime.
    pub fn seal(self, compression: Compression) -> Result<SealedBatch, EncodeError> {
        self.seal_at(compression, None)
    }

    /// [`seal`](Self::seal) at compression `level` (`None`: the codec's
    /// default; see [`compress_at`](crate::compression::compress_at)).
    pub fn seal_at(
        self,
        compression: Compression,
        level: Option<i32>,
    ) -> Result<SealedBatch, EncodeError> {
        let max_timestamp = self.max_timestamp();
        let count = self.count;
        let mut buf = self.buf;
        buf.truncate(self.len);
        let mut buf = match compression {
            Compression::None => buf,
            codec => {
                let records = &buf[HEADER_LEN..];
                let mut out = shared_buffer(HEADER_LEN + records.len() / 2 + 64);
                out.put_bytes(0, HEADER_LEN);
                crate::compression::compress_at(codec, level, records, &mut out)?;
                out
            }
        };
        let batch_length = buf.len() - layout::LOG_OVERHEAD;
        let batch_length = i32::try_from(batch_length).map_err(|_| EncodeError::TooLong {
            field: "record batch",
            len: batch_length,
        })?;
        let mut h = &mut buf[..HEADER_LEN];
        h.put_i64(0); // base offset
        h.put_i32(batch_length);
        h.put_i32(layout::NO_PARTITION_LEADER_EPOCH);
        h.put_i8(layout::MAGIC_V2);
        h.put_u32(0); // crc, computed by stamp
        h.put_i16(compression.code()); // CreateTime, not transactional, not control
        h.put_i32(count as i32 - 1); // last offset delta
        h.put_i64(self.base_timestamp);
        h.put_i64(max_timestamp);
        h.put_i64(layout::NO_PRODUCER_ID);
        h.put_i16(layout::NO_PRODUCER_EPOCH);
        h.put_i32(layout::NO_SEQUENCE);
        h.put_i32(count as i32);
        debug_assert!(h.is_empty());
        Ok(SealedBatch { buf, count })
    }
}

/// A closed batch: records (compressed if requested) and header written,
/// producer fields and CRC not yet.
#[derive(Debug)]
pub struct SealedBatch {
    buf: BytesMut,
    count: u32,
}

/// An empty buffer of at least `capacity` bytes, in the shared form of
/// `bytes` from the start.
///
/// Why: a batch buffer goes round a cycle — filled, frozen into [`Bytes`]
/// for the request ([`SealedBatch::stamp`]), taken back with
/// `Bytes::try_into_mut` once the batch is finished, and filled again. A
/// plain `BytesMut` frozen with spare capacity allocates a shared header,
/// and getting it back frees that header: one allocation and one free per
/// batch, which is most of a batch's allocator cost when batches hold one
/// record or two (10,000 partitions). A shared buffer freezes and comes
/// back as it is, so the header is allocated once per buffer. This relies
/// on how `bytes` represents buffers, not on its documented contract: if
/// that changed, batches would only cost an allocation again.
fn shared_buffer(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity);
    // Splitting promotes the buffer to the shared form; the empty half is
    // dropped at once, leaving this handle the only owner.
    drop(buf.split_to(0));
    buf
}

/// Writes producer id, epoch and base sequence into a batch's header.
#[inline]
fn write_producer_fields(b: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    b[layout::PRODUCER_ID..layout::PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    b[layout::PRODUCER_EPOCH..layout::PRODUCER_EPOCH + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    b[layout::BASE_SEQUENCE..layout::BASE_SEQUENCE + 4]
        .copy_from_slice(&base_sequence.to_be_bytes());
}

/// Computes the CRC32C over attributes..end and stores it.
#[inline]
fn write_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[layout::ATTRIBUTES..]);
    b[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

impl SealedBatch {
    /// Number of records.
    #[inline]
    pub fn record_count(&self) -> u32 {
        self.count
    }

    /// Size on the wire (compressed), header included.
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Stamps the producer id, epoch, base sequence and transactional flag,
    /// computes the CRC32C once over attributes..end, and returns the wire
    /// bytes (a zero-copy freeze). Without idempotence pass -1, -1, -1.
    pub fn stamp(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) -> Bytes {
        let b = &mut self.buf[..];
        write_producer_fields(b, producer_id, producer_epoch, base_sequence);
        let mut attributes = layout::read_i16(b, layout::ATTRIBUTES);
        if transactional {
            attributes |= layout::ATTR_TRANSACTIONAL;
        } else {
            attributes &= !layout::ATTR_TRANSACTIONAL;
        }
        b[layout::ATTRIBUTES..layout::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        write_crc(b);
        self.buf.freeze()
    }
}

/// Re-stamps an already stamped batch (a retry after an epoch bump or a
/// sequence reset): copies it once, rewrites producer id, epoch and base
/// sequence, and recomputes the CRC. Attributes are kept.
///
/// # Panics
/// If `batch` is not a record batch v2 (shorter than its header, or magic
/// other than 2); it must be a batch this crate built. [`try_restamp`]
/// returns the error instead.
pub fn restamp(batch: &[u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Bytes {
    match try_restamp(batch, producer_id, producer_epoch, base_sequence) {
        Ok(b) => b,
        Err(e) => panic!("restamp: not a record batch v2: {e}"),
    }
}

/// [`restamp`], returning an error for bytes that are not a batch header.
pub fn try_restamp(
    batch: &[u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Bytes, DecodeError> {
    layout::peek_batch_header(batch)?;
    let mut buf = BytesMut::from(batch);
    write_producer_fields(&mut buf, producer_id, producer_epoch, base_sequence);
    write_crc(&mut buf);
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs() -> [Header<'static>; 2] {
        [
            Header {
                key: "trace",
                value: Some(b"abc"),
            },
            Header {
                key: "n",
                value: None,
            },
        ]
    }

    #[test]
    fn record_size_is_exact() {
        let mut b = RecordBatchBuilder::new(1_000, 0);
        assert_eq!(b.size_in_bytes(), HEADER_LEN);
        type Case<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, Vec<Header<'a>>);
        let cases: Vec<Case<'_>> = vec![
            (1_000, None, None, vec![]),
            (999, Some(b"k"), Some(&[7u8; 100]), vec![]),
            (
                5_000_000,
                Some(&[1u8; 200]),
                Some(&[2u8; 10_000]),
                hdrs().to_vec(),
            ),
            (
                i64::MIN,
                None,
                Some(b""),
                vec![Header {
                    key: "",
                    value: Some(b""),
                }],
            ),
        ];
        for _ in 0..70 {
            for (ts, k, v, h) in &cases {
                let want = b.record_size(*ts, *k, *v, h);
                let before = b.size_in_bytes();
                b.append(*ts, *k, *v, h);
                assert_eq!(b.size_in_bytes() - before, want);
            }
        }
        assert_eq!(b.record_count(), 280);
    }

    /// `try_append` appends exactly when the record fits within the limit,
    /// and otherwise reports `record_size` and changes nothing.
    #[test]
    fn try_append_respects_the_limit() {
        let mut b = RecordBatchBuilder::new(1_000, 0);
        let v = [3u8; 100];
        let h = hdrs();
        for (i, (k, hs)) in [(None, &[][..]), (Some(&b"key"[..]), &h[..])]
            .into_iter()
            .cycle()
            .take(40)
            .enumerate()
        {
            let ts = 1_000 + (i as i64) * 37;
            let size = b.record_size(ts, k, Some(&v), hs);
            let before = b.size_in_bytes();
            let count = b.record_count();
            assert_eq!(
                b.try_append(ts, k, Some(&v), hs, before + size - 1),
                Err(size)
            );
            assert_eq!((b.size_in_bytes(), b.record_count()), (before, count));
            assert_eq!(b.try_append(ts, k, Some(&v), hs, before + size), Ok(count));
            assert_eq!(b.size_in_bytes(), before + size);
        }
        // Same bytes as `append`.
        let mut a = RecordBatchBuilder::new(1_000, 0);
        for (i, (k, hs)) in [(None, &[][..]), (Some(&b"key"[..]), &h[..])]
            .into_iter()
            .cycle()
            .take(40)
            .enumerate()
        {
            a.append(1_000 + (i as i64) * 37, k, Some(&v), hs);
        }
        assert_eq!(a.bytes(), b.bytes());
    }

    /// The header-less fast encoding writes the bytes the general one
    /// writes, at every varint width of every field.
    #[test]
    fn plain_and_general_encodings_agree() {
        let long_key = vec![b'k'; 200];
        let big = vec![b'v'; 20_000];
        let keys: [Option<&[u8]>; 4] = [None, Some(b""), Some(b"key"), Some(&long_key)];
        let values: [Option<&[u8]>; 5] =
            [None, Some(b""), Some(b"v"), Some(&[9u8; 100]), Some(&big)];
        let deltas = [
            0i64,
            1,
            63,
            64,
            8191,
            8192,
            -1,
            -65,
            1 << 40,
            i64::MIN,
            i64::MAX,
        ];
        for base in [0i64, 1_700_000_000_000] {
            let mut plain = RecordBatchBuilder::new(base, 0);
            let mut general = RecordBatchBuilder::new(base, 0);
            // Enough records for 1- and 2-byte offset deltas.
            for i in 0..100 {
                for k in keys {
                    for v in values {
                        let ts = base.wrapping_add(deltas[i % deltas.len()]);
                        let size = plain.record_size(ts, k, v, &[]);
                        let before = plain.size_in_bytes();
                        plain.try_append(ts, k, v, &[], usize::MAX).unwrap();
                        assert_eq!(plain.size_in_bytes() - before, size);
                        put_general(&mut general, base, ts, k, v);
                    }
                }
            }
            assert_eq!(plain.bytes(), general.bytes());
        }
    }

    /// Appends one header-less record through the general encoder (the
    /// reference the shape-caching paths are compared with).
    fn put_general(
        b: &mut RecordBatchBuilder,
        base: i64,
        ts: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let zig_ts = zigzag64(ts.wrapping_sub(base));
        let zig_offset = zigzag32(b.count as i32);
        b.try_put_general(zig_ts, zig_offset, key, value, &[], usize::MAX)
            .unwrap();
        b.count += 1;
    }

    /// Runs of records of one shape (the per-batch [`Shape`] reused) and
    /// changes of shape encode as the general encoder does, and each
    /// batch starts without a shape.
    #[test]
    fn repeated_shapes_encode_as_the_general_encoder() {
        let long_key = vec![b'k'; 200];
        let big = vec![b'v'; 20_000];
        type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
        let shapes: [KeyValue<'_>; 7] = [
            (None, Some(&[9u8; 100])),
            (Some(b"key-0001"), Some(&[9u8; 100])),
            (None, None),
            (Some(b""), Some(b"")),
            (Some(&long_key), Some(&big)),
            (None, Some(&[7u8; 100])),
            (Some(b"key-0002"), None),
        ];
        for base in [0i64, 1_700_000_000_000] {
            let mut plain = RecordBatchBuilder::new(base, 0);
            let mut general = RecordBatchBuilder::new(base, 0);
            let mut i = 0i64;
            for _ in 0..3 {
                for (k, v) in shapes {
                    // Enough records of a shape for 1- and 2-byte offset
                    // deltas and timestamp deltas.
                    for _ in 0..40 {
                        let ts = base + i * 13;
                        i += 1;
                        plain.append(ts, k, v, &[]);
                        put_general(&mut general, base, ts, k, v);
                    }
                }
            }
            assert_eq!(plain.bytes(), general.bytes());
            // A new batch computes its shape anew.
            let mut next = RecordBatchBuilder::new(base, 0);
            next.append(base, None, None, &[]);
            let mut want = RecordBatchBuilder::new(base, 0);
            want.try_put_general(0, 0, None, None, &[], usize::MAX)
                .unwrap();
            assert_eq!(next.bytes(), want.bytes());
        }
    }

    /// Records whose varints take their longest forms (a timestamp delta
    /// of ten bytes, long keys and values) encode as the spec says.
    #[test]
    fn long_varints_decode_back() {
        let mut b = RecordBatchBuilder::new(i64::MAX, 0);
        let key = vec![b'k'; 300];
        let value = vec![b'v'; 20_000];
        b.append(i64::MIN, Some(&key), Some(&value), &hdrs());
        b.append(0, None, None, &[]);
        let bytes = b.seal(Compression::None).unwrap().stamp(-1, -1, -1, false);
        let opts = crate::record::decoder::DecodeOptions::default();
        let batch = crate::record::decoder::decode_batch(&mut bytes.clone(), &opts).unwrap();
        let records = batch.records(&opts).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(batch.timestamp_of(&records[0]), i64::MIN);
        assert_eq!(records[0].key.as_deref(), Some(&key[..]));
        assert_eq!(records[0].value.as_deref(), Some(&value[..]));
        assert_eq!(records[0].headers.len(), 2);
        assert_eq!(batch.timestamp_of(&records[1]), 0);
        assert_eq!(records[1].offset_delta, 1);
        assert!(records[1].key.is_none() && records[1].value.is_none());
    }

    /// A reused buffer's old bytes, which records are written over, never
    /// show in the batch: every byte of every record is written, whatever
    /// the buffer held (here 0xAA), at any record shape, past the old
    /// bytes, and when the batch grows past the buffer's capacity.
    #[test]
    fn a_reused_buffers_old_bytes_never_reach_the_batch() {
        let key = vec![b'k'; 200];
        let big = vec![b'v'; 3_000];
        let h = hdrs();
        type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [Header<'a>]);
        let records: [Rec<'_>; 8] = [
            (None, Some(&[9u8; 100]), &[]),
            (None, Some(&[0u8; 100]), &[]),
            (Some(b"key"), Some(&[1u8; 100]), &[]),
            (None, None, &[]),
            (Some(b""), Some(b""), &[]),
            (Some(&key), Some(b"x"), &[]),
            (None, Some(b"h"), &h),
            (None, Some(&big), &[]),
        ];
        // Old lengths: none, shorter than the header, a few records' worth,
        // the whole capacity.
        for (old_len, cap) in [(0, 0), (20, 256), (700, 1024), (4096, 4096)] {
            let mut old = BytesMut::with_capacity(cap);
            old.put_bytes(0xaa, old_len);
            let mut reused = RecordBatchBuilder::in_buffer(1_000, old);
            let mut fresh = RecordBatchBuilder::new(1_000, cap);
            for i in 0..60i64 {
                let (k, v, hs) = records[i as usize % records.len()];
                // Timestamp deltas of one and two bytes, and a negative one.
                let ts = 1_000 + if i % 7 == 6 { -1 } else { i * 3 };
                assert_eq!(reused.append(ts, k, v, hs), fresh.append(ts, k, v, hs));
                assert_eq!(reused.bytes(), fresh.bytes(), "old {old_len}, record {i}");
            }
            let a = reused
                .seal(Compression::None)
                .unwrap()
                .stamp(1, 2, 3, false);
            let b = fresh.seal(Compression::None).unwrap().stamp(1, 2, 3, false);
            assert_eq!(a, b, "old {old_len}");
        }
    }

    /// Records shorter than the 16 bytes the fast path copies at once fill
    /// a buffer up to its last byte, as the producer fills one (the limit
    /// at its capacity), and encode as records appended to a buffer that
    /// grows: the copy never reaches past the buffer.
    #[test]
    fn short_records_fill_a_buffer_to_its_last_byte() {
        let values = [&b""[..], b"a", b"bc", b"defghij", b"klmnopqrs"];
        for cap in 240..=320 {
            let mut full = RecordBatchBuilder::new(7, cap);
            let cap = full.capacity();
            let mut grown = RecordBatchBuilder::new(7, 0);
            for i in 0usize.. {
                let (k, v) = match i % 6 {
                    5 => (Some(&b""[..]), None),
                    j => (None, Some(values[j])),
                };
                let ts = 7 + i as i64 % 3;
                if full.try_append(ts, k, v, &[], cap).is_err() {
                    break;
                }
                grown.append(ts, k, v, &[]);
            }
            assert!(cap - full.size_in_bytes() < 16, "capacity {cap}");
            assert_eq!(full.capacity(), cap);
            assert_eq!(full.bytes(), grown.bytes(), "capacity {cap}");
        }
    }

    #[test]
    fn append_returns_offset_deltas_and_tracks_timestamps() {
        let mut b = RecordBatchBuilder::new(100, 1024);
        assert!(b.is_empty());
        assert_eq!(b.max_timestamp(), 100);
        assert_eq!(b.append(150, None, Some(b"a"), &[]), 0);
        assert_eq!(b.append(90, None, Some(b"b"), &[]), 1);
        assert_eq!(b.append(120, None, Some(b"c"), &[]), 2);
        assert_eq!(b.record_count(), 3);
        assert!(!b.is_empty());
        assert_eq!(b.base_timestamp(), 100);
        assert_eq!(b.max_timestamp(), 150);
    }

    #[test]
    fn append_within_capacity_does_not_reallocate() {
        let mut b = RecordBatchBuilder::new(0, 16 * 1024);
        let cap = b.capacity();
        let ptr = b.buf.as_ptr();
        let value = [0x5au8; 100];
        let h = hdrs();
        while b.size_in_bytes() + b.record_size(7, Some(b"key"), Some(&value), &h) <= cap {
            b.append(7, Some(b"key"), Some(&value), &h);
        }
        assert!(b.record_count() > 100);
        assert_eq!(b.capacity(), cap);
        assert_eq!(b.buf.as_ptr(), ptr);
        // Where the next record goes (the producer's prefetch hint).
        assert_eq!(b.tail_address(), ptr as usize + b.size_in_bytes());
    }

    #[test]
    fn record_encoding_matches_the_spec() {
        let mut b = RecordBatchBuilder::new(1_000, 0);
        b.append(1_001, None, Some(b"v"), &[]);
        b.append(
            1_000,
            Some(b"k"),
            None,
            &[Header {
                key: "h",
                value: Some(b"x"),
            }],
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            // record 0
            0x0e,       // length 7 (zig-zag 14)
            0x00,       // attributes
            0x02,       // timestamp delta 1
            0x00,       // offset delta 0
            0x01,       // key length -1 (null)
            0x02, b'v', // value length 1, "v"
            0x00,       // 0 headers
            // record 1
            0x16,       // length 11
            0x00,       // attributes
            0x00,       // timestamp delta 0
            0x02,       // offset delta 1
            0x02, b'k', // key "k"
            0x01,       // value null
            0x02,       // 1 header
            0x02, b'h', // key "h"
            0x02, b'x', // value "x"
        ];
        assert_eq!(&b.bytes()[HEADER_LEN..], want);
    }

    #[test]
    fn seal_and_stamp_fill_the_header() {
        let mut b = RecordBatchBuilder::new(1_000, 0);
        b.append(1_005, None, Some(b"x"), &[]);
        b.append(1_002, None, Some(b"y"), &[]);
        let sealed = b.seal(Compression::None).unwrap();
        assert_eq!(sealed.record_count(), 2);
        let len = sealed.size_in_bytes();
        let bytes = sealed.stamp(42, 3, 7, true);
        assert_eq!(bytes.len(), len);
        let h = layout::peek_batch_header(&bytes).unwrap();
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.total_len(), bytes.len());
        assert_eq!(h.partition_leader_epoch, -1);
        assert_eq!(h.attributes, layout::ATTR_TRANSACTIONAL);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_005);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 7)
        );
        assert_eq!(h.record_count, 2);
        assert_eq!(h.crc, crc32c::crc32c(&bytes[layout::ATTRIBUTES..]));
    }

    #[test]
    fn restamp_rewrites_producer_fields_and_crc() {
        let mut b = RecordBatchBuilder::new(0, 0);
        b.append(0, None, Some(b"x"), &[]);
        let first = b.seal(Compression::Gzip).unwrap().stamp(1, 0, 0, false);
        let second = restamp(&first, 9, 4, 100);
        let h = layout::peek_batch_header(&second).unwrap();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 4, 100)
        );
        assert_eq!(h.compression().unwrap(), Compression::Gzip);
        assert_eq!(h.crc, crc32c::crc32c(&second[layout::ATTRIBUTES..]));
        assert_eq!(&first[61..], &second[61..]);
        assert!(try_restamp(&first[..60], 1, 1, 1).is_err());
    }

    #[test]
    fn compressed_seal_sets_the_codec_bits() {
        // Every codec this build has (zstd only with the feature).
        for codec in Compression::ALL.into_iter().filter(|c| c.is_built()) {
            let mut b = RecordBatchBuilder::new(0, 0);
            for i in 0..100 {
                b.append(i, None, Some(&[b'a'; 100]), &[]);
            }
            let raw_size = b.size_in_bytes();
            let sealed = b.seal(codec).unwrap();
            if codec != Compression::None {
                assert!(sealed.size_in_bytes() < raw_size / 4, "{codec}");
            }
            let bytes = sealed.stamp(-1, -1, -1, false);
            let h = layout::peek_batch_header(&bytes).unwrap();
            assert_eq!(h.compression().unwrap(), codec);
            assert_eq!(h.total_len(), bytes.len());
            assert_eq!(h.record_count, 100);
            assert_eq!(h.max_timestamp, 99);
        }
    }
}
