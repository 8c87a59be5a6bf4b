//! Wire primitives: the building blocks every message and record batch is
//! made of.
//!
//! Decoding reads from a [`Bytes`] cursor (`&mut Bytes`), so byte fields such
//! as a ProduceRequest's records are split off without copying. Every read is
//! bounds-checked and returns a [`DecodeError`] instead of panicking.
//! Encoding writes into any [`BufMut`]; `*_len` functions give the exact
//! number of bytes the matching `put_*` writes, so callers can size buffers
//! (and `encoded_len` of a message is exact).
//!
//! Kafka's "compact" forms (flexible versions) encode lengths as unsigned
//! varints of `length + 1`, with `0` meaning null; the classic forms use
//! `i16` (strings) or `i32` (bytes, arrays) with `-1` meaning null.

use bytes::{Buf, BufMut, Bytes};

/// Why decoding failed. Decoding never panics; every malformed input maps to
/// one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} remaining")]
    UnexpectedEof {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint ran past its maximum encoded length.
    #[error("varint is longer than {max_bytes} bytes")]
    VarintTooLong {
        /// The maximum number of bytes for this varint type.
        max_bytes: usize,
    },
    /// A length prefix was negative (other than the null marker) or otherwise impossible.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A string field held bytes that are not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A null was found where the field is not nullable in this version.
    #[error("null value for non-nullable field `{0}`")]
    UnexpectedNull(&'static str),
    /// The version is outside the message's valid range.
    #[error("api key {api_key} does not support version {version}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
    /// The API key is not one kring knows.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// A field held a value that is structurally invalid (for example a
    /// record batch with magic other than 2).
    #[error("invalid {field}: {value}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// A record batch failed its CRC32C check.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the batch header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// Decompressed output would exceed the configured bound (decompression bomb guard).
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The bound that was hit.
        limit: usize,
    },
    /// The compression codec reported an error.
    #[error("{codec} decompression failed: {message}")]
    Decompression {
        /// Codec name.
        codec: &'static str,
        /// The codec's message.
        message: String,
    },
    /// Bytes were left over where the format requires an exact fit.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// The data uses a compression codec this build does not include
    /// (zstd without kring-protocol's `zstd` feature).
    #[error("{codec} is not supported by this build (built without the `{codec}` feature)")]
    CodecNotBuilt {
        /// Codec name.
        codec: &'static str,
    },
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is outside the message's valid range.
    #[error("api key {api_key} does not support version {version}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
    /// A field that does not exist in this version holds a non-default value
    /// (and is not ignorable), so encoding would silently drop data.
    #[error("field `{field}` is not supported in version {version} but has a non-default value")]
    FieldNotInVersion {
        /// Field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A null value for a field that is not nullable in this version.
    #[error("null value for non-nullable field `{field}` in version {version}")]
    NullNotAllowed {
        /// Field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A string, bytes or array is longer than its length prefix can express.
    #[error("`{field}` is too long: {len}")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// Two tagged fields with the same tag: an unknown tagged field repeats
    /// a tag, or uses a tag the message knows in this version.
    #[error("tagged field {tag} appears twice")]
    DuplicateTag {
        /// The tag.
        tag: u32,
    },
    /// Compression failed.
    #[error("{codec} compression failed: {message}")]
    Compression {
        /// Codec name.
        codec: &'static str,
        /// The codec's message.
        message: String,
    },
    /// An array was written with a different number of elements than its
    /// length prefix declared (a caller of an incremental writer such as
    /// [`ProduceFrameWriter`](crate::frame::ProduceFrameWriter) wrote more
    /// or fewer entries than it announced).
    #[error("`{field}` declared {declared} elements but {written} were written")]
    CountMismatch {
        /// Field name.
        field: &'static str,
        /// The length written in the prefix.
        declared: usize,
        /// The elements written (so far, when too many).
        written: usize,
    },
    /// The codec is not in this build (zstd without kring-protocol's
    /// `zstd` feature).
    #[error("{codec} is not supported by this build (built without the `{codec}` feature)")]
    CodecNotBuilt {
        /// Codec name.
        codec: &'static str,
    },
}

/// Result of a decode.
pub type DecodeResult<T> = Result<T, DecodeError>;

#[inline]
fn need(buf: &Bytes, n: usize) -> DecodeResult<()> {
    if buf.remaining() < n {
        Err(DecodeError::UnexpectedEof {
            needed: n,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

macro_rules! fixed {
    ($get:ident, $put:ident, $ty:ty, $bget:ident, $bput:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $get(buf: &mut Bytes) -> DecodeResult<$ty> {
            need(buf, std::mem::size_of::<$ty>())?;
            Ok(buf.$bget())
        }
        #[doc = concat!("Writes a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $put<B: BufMut>(buf: &mut B, v: $ty) {
            buf.$bput(v)
        }
    };
}

fixed!(get_i8, put_i8, i8, get_i8, put_i8);
fixed!(get_i16, put_i16, i16, get_i16, put_i16);
fixed!(get_u16, put_u16, u16, get_u16, put_u16);
fixed!(get_i32, put_i32, i32, get_i32, put_i32);
fixed!(get_u32, put_u32, u32, get_u32, put_u32);
fixed!(get_i64, put_i64, i64, get_i64, put_i64);
fixed!(get_f64, put_f64, f64, get_f64, put_f64);

/// Reads a boolean (one byte, non-zero is true).
#[inline]
pub fn get_bool(buf: &mut Bytes) -> DecodeResult<bool> {
    let b = get_i8(buf)?;
    #[cfg(fuzzing)]
    if b != 0 && b != 1 {
        canonical::mark();
    }
    Ok(b != 0)
}

/// Writes a boolean as one byte.
#[inline]
pub fn put_bool<B: BufMut>(buf: &mut B, v: bool) {
    buf.put_u8(v as u8)
}

/// Reads a 16-byte UUID.
#[inline]
pub fn get_uuid(buf: &mut Bytes) -> DecodeResult<[u8; 16]> {
    need(buf, 16)?;
    let mut out = [0u8; 16];
    buf.copy_to_slice(&mut out);
    Ok(out)
}

/// Writes a 16-byte UUID.
#[inline]
pub fn put_uuid<B: BufMut>(buf: &mut B, v: &[u8; 16]) {
    buf.put_slice(v)
}

/// Fuzzing aid: decoders note input that decodes fine but that the encoder
/// would write differently (a non-minimal varint, a boolean byte other than
/// 0 or 1, a tagged field holding its default), so a round-trip target can
/// demand byte equality exactly for canonical input. Only built with
/// `--cfg fuzzing`.
#[cfg(fuzzing)]
pub mod canonical {
    use std::cell::Cell;

    thread_local! {
        static NON_CANONICAL: Cell<bool> = const { Cell::new(false) };
    }

    /// Notes that the input being decoded is not in canonical form.
    pub fn mark() {
        NON_CANONICAL.with(|c| c.set(true));
    }

    /// Returns whether anything was marked since the last call, and clears it.
    pub fn take() -> bool {
        NON_CANONICAL.with(|c| c.replace(false))
    }
}

// ---- varints -------------------------------------------------------------

/// Reads an unsigned LEB128 varint of at most 5 bytes (Kafka `UNSIGNED_VARINT`).
#[inline]
pub fn get_unsigned_varint(buf: &mut Bytes) -> DecodeResult<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1)?;
        let b = buf.get_u8();
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            // A zero last byte (non-minimal) or bits beyond 32 decode fine
            // but do not re-encode to the same bytes.
            #[cfg(fuzzing)]
            if (i > 0 && b == 0) || (i == 4 && b > 0x0f) {
                canonical::mark();
            }
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong { max_bytes: 5 })
}

/// Reads an unsigned LEB128 varint of at most 10 bytes.
#[inline]
pub fn get_unsigned_varlong(buf: &mut Bytes) -> DecodeResult<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(buf, 1)?;
        let b = buf.get_u8();
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            #[cfg(fuzzing)]
            if (i > 0 && b == 0) || (i == 9 && b > 0x01) {
                canonical::mark();
            }
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong { max_bytes: 10 })
}

/// Reads a zig-zag encoded signed varint (Kafka `VARINT`).
#[inline]
pub fn get_varint(buf: &mut Bytes) -> DecodeResult<i32> {
    let v = get_unsigned_varint(buf)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Reads a zig-zag encoded signed varlong (Kafka `VARLONG`).
#[inline]
pub fn get_varlong(buf: &mut Bytes) -> DecodeResult<i64> {
    let v = get_unsigned_varlong(buf)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Writes an unsigned varint.
#[inline]
pub fn put_unsigned_varint<B: BufMut>(buf: &mut B, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8)
}

/// Writes an unsigned varlong.
#[inline]
pub fn put_unsigned_varlong<B: BufMut>(buf: &mut B, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8)
}

/// Writes a zig-zag signed varint.
#[inline]
pub fn put_varint<B: BufMut>(buf: &mut B, v: i32) {
    put_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32)
}

/// Writes a zig-zag signed varlong.
#[inline]
pub fn put_varlong<B: BufMut>(buf: &mut B, v: i64) {
    put_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64)
}

/// Encoded size of an unsigned varint.
#[inline]
pub const fn unsigned_varint_len(v: u32) -> usize {
    // 1 byte per started group of 7 bits; at least 1: with `top` the index
    // of the highest set bit, ceil((top + 1) / 7) = (top * 9 + 73) / 64 for
    // every top in 0..64 (a multiply and a shift instead of a division;
    // this runs several times per record).
    let top = 31 - (v | 1).leading_zeros() as usize;
    (top * 9 + 73) >> 6
}

/// Encoded size of an unsigned varlong.
#[inline]
pub const fn unsigned_varlong_len(v: u64) -> usize {
    let top = 63 - (v | 1).leading_zeros() as usize;
    (top * 9 + 73) >> 6
}

/// Encoded size of a zig-zag varint.
#[inline]
pub const fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Encoded size of a zig-zag varlong.
#[inline]
pub const fn varlong_len(v: i64) -> usize {
    unsigned_varlong_len(((v << 1) ^ (v >> 63)) as u64)
}

// ---- lengths -------------------------------------------------------------

/// Reads a length prefix: `compact` → unsigned varint N+1 (0 = null),
/// otherwise a signed `i32` (or `i16` when `short`) with -1 = null. Returns
/// `None` for null; negative lengths other than -1 are errors.
#[inline]
fn get_len(buf: &mut Bytes, compact: bool, short: bool) -> DecodeResult<Option<usize>> {
    if compact {
        let n = get_unsigned_varint(buf)?;
        Ok(if n == 0 { None } else { Some((n - 1) as usize) })
    } else {
        let n = if short {
            get_i16(buf)? as i32
        } else {
            get_i32(buf)?
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::InvalidLength(n as i64)),
            n => Ok(Some(n as usize)),
        }
    }
}

/// Reads `len` bytes without copying.
#[inline]
fn take(buf: &mut Bytes, len: usize) -> DecodeResult<Bytes> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads a nullable string (`compact` selects COMPACT_NULLABLE_STRING).
pub fn get_nullable_string(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<String>> {
    match get_len(buf, compact, true)? {
        None => Ok(None),
        Some(len) => {
            let raw = take(buf, len)?;
            String::from_utf8(raw.to_vec())
                .map(Some)
                .map_err(|_| DecodeError::InvalidUtf8)
        }
    }
}

/// Reads a non-nullable string; a null is an error naming `field`.
pub fn get_string(buf: &mut Bytes, compact: bool, field: &'static str) -> DecodeResult<String> {
    get_nullable_string(buf, compact)?.ok_or(DecodeError::UnexpectedNull(field))
}

/// Reads nullable bytes without copying.
pub fn get_nullable_bytes(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<Bytes>> {
    match get_len(buf, compact, false)? {
        None => Ok(None),
        Some(len) => take(buf, len).map(Some),
    }
}

/// Reads non-nullable bytes without copying; a null is an error naming `field`.
pub fn get_bytes(buf: &mut Bytes, compact: bool, field: &'static str) -> DecodeResult<Bytes> {
    get_nullable_bytes(buf, compact)?.ok_or(DecodeError::UnexpectedNull(field))
}

/// Reads an array length prefix; `None` is a null array. The caller should
/// not trust the length for allocation: use [`bounded_capacity`].
pub fn get_array_len(buf: &mut Bytes, compact: bool) -> DecodeResult<Option<usize>> {
    get_len(buf, compact, false)
}

/// A safe `Vec` capacity for `len` elements when `remaining` input bytes are
/// left: a hostile length prefix must not allocate gigabytes.
#[inline]
pub fn bounded_capacity(len: usize, remaining: usize) -> usize {
    len.min(remaining)
}

/// Writes a length prefix (see [`get_nullable_string`] for the forms).
#[inline]
fn put_len<B: BufMut>(buf: &mut B, len: Option<usize>, compact: bool, short: bool) {
    match (compact, len) {
        (true, None) => put_unsigned_varint(buf, 0),
        (true, Some(n)) => put_unsigned_varint(buf, n as u32 + 1),
        (false, None) if short => buf.put_i16(-1),
        (false, None) => buf.put_i32(-1),
        (false, Some(n)) if short => buf.put_i16(n as i16),
        (false, Some(n)) => buf.put_i32(n as i32),
    }
}

#[inline]
fn len_len(len: Option<usize>, compact: bool, short: bool) -> usize {
    match (compact, len) {
        (true, None) => 1,
        (true, Some(n)) => unsigned_varint_len(n as u32 + 1),
        (false, _) if short => 2,
        (false, _) => 4,
    }
}

/// Checks that a string fits its length prefix.
pub fn check_string_len(field: &'static str, s: &str, compact: bool) -> Result<(), EncodeError> {
    let max = if compact {
        u32::MAX as usize - 1
    } else {
        i16::MAX as usize
    };
    if s.len() > max {
        Err(EncodeError::TooLong {
            field,
            len: s.len(),
        })
    } else {
        Ok(())
    }
}

/// Writes a nullable string.
pub fn put_nullable_string<B: BufMut>(buf: &mut B, s: Option<&str>, compact: bool) {
    put_len(buf, s.map(str::len), compact, true);
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
}

/// Writes a non-null string.
pub fn put_string<B: BufMut>(buf: &mut B, s: &str, compact: bool) {
    put_nullable_string(buf, Some(s), compact)
}

/// Encoded size of a nullable string.
pub fn nullable_string_len(s: Option<&str>, compact: bool) -> usize {
    len_len(s.map(str::len), compact, true) + s.map_or(0, str::len)
}

/// Encoded size of a string.
pub fn string_len(s: &str, compact: bool) -> usize {
    nullable_string_len(Some(s), compact)
}

/// Writes nullable bytes.
pub fn put_nullable_bytes<B: BufMut>(buf: &mut B, b: Option<&[u8]>, compact: bool) {
    put_len(buf, b.map(<[u8]>::len), compact, false);
    if let Some(b) = b {
        buf.put_slice(b);
    }
}

/// Writes only the length prefix of nullable bytes of length `len`
/// (`None` = null), for a caller that writes the bytes themselves
/// elsewhere (a chunked frame splicing in a record batch).
pub fn put_nullable_bytes_prefix<B: BufMut>(buf: &mut B, len: Option<usize>, compact: bool) {
    put_len(buf, len, compact, false);
}

/// Writes bytes.
pub fn put_bytes<B: BufMut>(buf: &mut B, b: &[u8], compact: bool) {
    put_nullable_bytes(buf, Some(b), compact)
}

/// Encoded size of nullable bytes.
pub fn nullable_bytes_len(b: Option<&[u8]>, compact: bool) -> usize {
    len_len(b.map(<[u8]>::len), compact, false) + b.map_or(0, <[u8]>::len)
}

/// Encoded size of bytes.
pub fn bytes_len(b: &[u8], compact: bool) -> usize {
    nullable_bytes_len(Some(b), compact)
}

/// Writes an array length prefix (`None` = null array).
pub fn put_array_len<B: BufMut>(buf: &mut B, len: Option<usize>, compact: bool) {
    put_len(buf, len, compact, false)
}

/// Encoded size of an array length prefix.
pub fn array_len_len(len: Option<usize>, compact: bool) -> usize {
    len_len(len, compact, false)
}

// ---- tagged fields --------------------------------------------------------

/// A tagged field this version of kring does not know. Kept on decode and
/// written back on encode, so a message round-trips byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTaggedField {
    /// The tag.
    pub tag: u32,
    /// The field's raw bytes.
    pub data: Bytes,
}

/// Reads one tagged field header `(tag, size)` and splits off its data.
pub fn get_tagged_field(buf: &mut Bytes) -> DecodeResult<(u32, Bytes)> {
    let tag = get_unsigned_varint(buf)?;
    let size = get_unsigned_varint(buf)? as usize;
    Ok((tag, take(buf, size)?))
}

/// Writes one tagged field header and data.
pub fn put_tagged_field<B: BufMut>(buf: &mut B, tag: u32, data: &[u8]) {
    put_unsigned_varint(buf, tag);
    put_unsigned_varint(buf, data.len() as u32);
    buf.put_slice(data);
}

/// Encoded size of one tagged field with `size` data bytes.
pub fn tagged_field_len(tag: u32, size: usize) -> usize {
    unsigned_varint_len(tag) + unsigned_varint_len(size as u32) + size
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn roundtrip_varint(v: i32) {
        let mut b = BytesMut::new();
        put_varint(&mut b, v);
        assert_eq!(b.len(), varint_len(v), "len of {v}");
        let mut r = b.freeze();
        assert_eq!(get_varint(&mut r).unwrap(), v);
        assert!(r.is_empty());
    }

    fn roundtrip_varlong(v: i64) {
        let mut b = BytesMut::new();
        put_varlong(&mut b, v);
        assert_eq!(b.len(), varlong_len(v), "len of {v}");
        let mut r = b.freeze();
        assert_eq!(get_varlong(&mut r).unwrap(), v);
    }

    #[test]
    fn varints_roundtrip_at_boundaries() {
        for v in [0, 1, -1, 63, -64, 64, -65, 8191, 8192, i32::MAX, i32::MIN] {
            roundtrip_varint(v);
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 35, -(1 << 35)] {
            roundtrip_varlong(v);
        }
    }

    /// The length formulas agree with the bytes the writers produce at
    /// every bit width (each power of two and its neighbours).
    #[test]
    fn varint_lengths_at_every_width() {
        for top in 0..64u32 {
            let p = 1u64 << top;
            for v in [p - 1, p, p | (p - 1), p.wrapping_add(1)] {
                let mut b = BytesMut::new();
                put_unsigned_varlong(&mut b, v);
                assert_eq!(b.len(), unsigned_varlong_len(v), "varlong {v}");
                if let Ok(v32) = u32::try_from(v) {
                    let mut b = BytesMut::new();
                    put_unsigned_varint(&mut b, v32);
                    assert_eq!(b.len(), unsigned_varint_len(v32), "varint {v32}");
                }
            }
        }
        assert_eq!(unsigned_varlong_len(u64::MAX), 10);
        assert_eq!(unsigned_varint_len(u32::MAX), 5);
    }

    #[test]
    fn varint_golden_bytes() {
        // Zig-zag: 0→0, -1→1, 1→2, -64→127, 64→128 (0x80 0x01), 300→600 (0xd8 0x04).
        let cases: [(i32, &[u8]); 6] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
        ];
        for (v, want) in cases {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(&b[..], want, "{v}");
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(
            get_unsigned_varint(&mut r),
            Err(DecodeError::VarintTooLong { max_bytes: 5 })
        );
    }

    #[test]
    fn truncated_inputs_are_errors() {
        assert!(get_i32(&mut Bytes::from_static(&[0, 0, 1])).is_err());
        assert!(get_unsigned_varint(&mut Bytes::from_static(&[0x80])).is_err());
        // string claiming 5 bytes, 2 present
        assert!(get_nullable_string(&mut Bytes::from_static(&[0, 5, b'a', b'b']), false).is_err());
        // negative non-null length
        assert_eq!(
            get_nullable_bytes(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]), false),
            Err(DecodeError::InvalidLength(-2))
        );
    }

    #[test]
    fn compact_and_classic_strings() {
        for compact in [false, true] {
            for s in [None, Some(""), Some("kring")] {
                let mut b = BytesMut::new();
                put_nullable_string(&mut b, s, compact);
                assert_eq!(b.len(), nullable_string_len(s, compact));
                let mut r = b.freeze();
                assert_eq!(get_nullable_string(&mut r, compact).unwrap().as_deref(), s);
            }
        }
        let mut b = BytesMut::new();
        put_string(&mut b, "ab", true);
        assert_eq!(&b[..], &[3, b'a', b'b']);
    }

    #[test]
    fn a_string_may_fill_its_int16_prefix_exactly() {
        let longest = "s".repeat(i16::MAX as usize);
        assert_eq!(check_string_len("f", &longest, false), Ok(()));
        let mut b = BytesMut::new();
        put_string(&mut b, &longest, false);
        assert_eq!(get_string(&mut b.freeze(), false, "f").unwrap(), longest);
        let over = "s".repeat(i16::MAX as usize + 1);
        assert_eq!(
            check_string_len("f", &over, false),
            Err(EncodeError::TooLong {
                field: "f",
                len: 32_768
            })
        );
        assert_eq!(check_string_len("f", &over, true), Ok(()));
    }

    #[test]
    fn bytes_are_split_without_copy() {
        let mut b = BytesMut::new();
        put_bytes(&mut b, b"hello", false);
        let src = b.freeze();
        let mut r = src.clone();
        let got = get_bytes(&mut r, false, "x").unwrap();
        assert_eq!(&got[..], b"hello");
        assert_eq!(got.as_ptr(), src[4..].as_ptr());
    }
}
