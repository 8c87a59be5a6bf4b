//! Record batch compression: gzip, snappy, lz4 and zstd.
//!
//! Why a module of its own: the codecs are where untrusted bytes turn into
//! large allocations. Every decompressor here takes an output `limit` and
//! fails with [`DecodeError::DecompressedTooLarge`] instead of growing past
//! it, so a 1 KiB "decompression bomb" cannot make a broker or client
//! allocate gigabytes.
//!
//! Wire formats follow what the Java client writes for magic v2, since that
//! is what brokers and every other client expect to read:
//! - gzip: RFC 1952 members (several concatenated members are accepted).
//! - snappy: the *xerial* framing of snappy-java — an 8-byte magic
//!   `\x82SNAPPY\0`, version and compatible version (`i32` BE), then
//!   `[len: i32 BE][raw snappy block]*`. Plain raw snappy is accepted on
//!   decode too (some clients write it).
//! - lz4: the LZ4 *frame* format with 64 KiB independent blocks and no
//!   checksums, like Kafka's `KafkaLZ4BlockOutputStream`.
//! - zstd: a standard zstd frame (level 3, the Java client's default).
//!
//! Levels ([`compress_at`]): gzip 0-9 (default 6, zlib's), zstd its own
//! range (default 3); snappy has none, and lz4 only the fast compressor
//! (`lz4_flex` has no high-compression mode), so neither takes a level.
//!   Only with the `zstd` feature (on by default; it builds the C library
//!   libzstd): without it, compressing or decompressing zstd is a typed
//!   error ([`EncodeError::CodecNotBuilt`], [`DecodeError::CodecNotBuilt`])
//!   and [`Compression::is_built`] says so up front.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::thread::LocalKey;

use bytes::{BufMut, Bytes, BytesMut};

use crate::primitives::{DecodeError, EncodeError};

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (code 0).
    #[default]
    None,
    /// gzip (code 1).
    Gzip,
    /// snappy, xerial framing (code 2).
    Snappy,
    /// LZ4 frame format (code 3).
    Lz4,
    /// zstd (code 4).
    Zstd,
}

/// A compression name that is not one of `none`, `gzip`, `snappy`, `lz4`, `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression codec `{0}` (expected none, gzip, snappy, lz4 or zstd)")]
pub struct UnknownCompression(pub String);

impl Compression {
    /// Every codec, in attribute-code order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The attribute code (bits 0-2 of a batch's attributes).
    #[inline]
    pub const fn code(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec named by a batch's attributes; codes 5-7 are errors.
    #[inline]
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(DecodeError::InvalidValue {
                field: "compression codec",
                value: other as i64,
            }),
        }
    }

    /// Whether this build can compress and decompress the codec: all of
    /// them, except zstd without the `zstd` feature.
    pub const fn is_built(self) -> bool {
        cfg!(feature = "zstd") || !matches!(self, Compression::Zstd)
    }

    /// The compression levels [`compress_at`] accepts for this codec:
    /// gzip 0 (stored, not deflated) to 9, zstd its own range
    /// (-131072 to 22; 0 is its default). `None`: the codec takes no level
    /// (none, snappy, and lz4: `lz4_flex` has only the fast compressor,
    /// what the Java client uses at its default lz4 level).
    pub const fn levels(self) -> Option<RangeInclusive<i32>> {
        match self {
            Compression::Gzip => Some(0..=9),
            Compression::Zstd => Some(ZSTD_MIN_LEVEL..=ZSTD_MAX_LEVEL),
            Compression::None | Compression::Snappy | Compression::Lz4 => None,
        }
    }

    /// The config name (`compression.type`).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCompression(s.to_owned()))
    }
}

/// The xerial snappy stream header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block (snappy-java's default block size).
const XERIAL_BLOCK: usize = 32 * 1024;
/// gzip's default level (zlib's, which the Java client's -1 means too).
const GZIP_LEVEL: u32 = 6;
#[cfg(feature = "zstd")]
const ZSTD_LEVEL: i32 = 3;
/// zstd's level range (`ZSTD_minCLevel()`, `ZSTD_maxCLevel()`), the one
/// the Java client accepts for `compression.zstd.level`.
const ZSTD_MIN_LEVEL: i32 = -(1 << 17);
const ZSTD_MAX_LEVEL: i32 = 22;

/// Compresses `input` with `codec`, appending the compressed bytes to `out`.
/// [`Compression::None`] copies.
///
/// gzip, lz4 and zstd reuse a compressor kept per thread (`with_cached`):
/// a producer seals many small batches (one per partition per linger tick),
/// and building a codec's state per batch cost more than compressing it.
pub fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    compress_at(codec, None, input, out)
}

/// [`compress`] at compression `level` (`None`: the codec's default).
/// A level outside [`Compression::levels`] (any level, for a codec without
/// levels) is an [`EncodeError::Compression`].
///
/// The per-thread compressor is made for a level and kept while batches
/// ask for that level: a producer compresses at one level, so it is made
/// once, not per batch.
pub fn compress_at(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let err = |e: &dyn fmt::Display| EncodeError::Compression {
        codec: codec.name(),
        message: e.to_string(),
    };
    if let Some(l) = level {
        match codec.levels() {
            Some(range) if range.contains(&l) => {}
            Some(range) => {
                return Err(err(&format_args!(
                    "level {l} is outside {}..={}",
                    range.start(),
                    range.end()
                )))
            }
            None => return Err(err(&format_args!("takes no level (got {l})"))),
        }
    }
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let level = level.map_or(GZIP_LEVEL, |l| l as u32);
            with_cached(
                &GZIP,
                |st: &GzipState| st.level == level,
                || GzipState::new(level),
                |st| st.compress(input, out),
            )
            .map_err(|e| err(&e))?
        }
        Compression::Snappy => snappy_xerial_compress(input, out).map_err(|e| err(&e))?,
        Compression::Lz4 if input.is_empty() => {
            // A reused frame encoder cannot write an empty frame (it only
            // opens a frame on the first non-empty write), so the rare empty
            // section gets a fresh one.
            let mut enc = lz4_frame_encoder(Vec::new());
            enc.try_finish().map_err(|e| err(&e))?;
            out.extend_from_slice(enc.get_ref());
        }
        Compression::Lz4 => with_cached(
            &LZ4,
            |_: &Lz4State| true,
            || Ok(Lz4State::new()),
            |st| st.compress(input, out),
        )
        .map_err(|e| err(&e))?,
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let level = level.unwrap_or(ZSTD_LEVEL);
            with_cached(
                &ZSTD,
                |st: &ZstdState| st.level == level,
                || ZstdState::new(level),
                |st| st.compress(input, out),
            )
            .map_err(|e| err(&e))?
        }
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => {
            return Err(EncodeError::CodecNotBuilt {
                codec: codec.name(),
            })
        }
    }
    Ok(())
}

/// Scratch buffers larger than this are released after use rather than
/// kept per thread (a batch is `batch.size`, 16 KiB by default; the odd
/// 1 MiB batch should not pin 1 MiB on every sealing thread).
const SCRATCH_KEEP: usize = 256 * 1024;

thread_local! {
    static GZIP: RefCell<Option<GzipState>> = const { RefCell::new(None) };
    static LZ4: RefCell<Option<Lz4State>> = const { RefCell::new(None) };
    #[cfg(feature = "zstd")]
    static ZSTD: RefCell<Option<ZstdState>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's cached codec state, creating it with `make` on
/// first use or when the cached one does not `fit` (made for another
/// level). Why per thread: batches are sealed on whichever thread fills
/// them (a sender) or lingers them out (the I/O thread), so there is no
/// single owner to hand a compressor to, and a lock would serialise the
/// senders. A state whose job failed is dropped, never reused. Should the
/// cache be unavailable (re-entered, or the thread is exiting) a throwaway
/// state does the job.
fn with_cached<T, R>(
    key: &'static LocalKey<RefCell<Option<T>>>,
    fits: impl Fn(&T) -> bool,
    make: impl Fn() -> io::Result<T>,
    mut f: impl FnMut(&mut T) -> io::Result<R>,
) -> io::Result<R> {
    let cached = key
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.as_ref().is_some_and(|st| !fits(st)) {
                *slot = None;
            }
            let state = match slot.as_mut() {
                Some(state) => state,
                None => match make() {
                    Ok(state) => slot.insert(state),
                    Err(e) => return Some(Err(e)),
                },
            };
            let r = f(state);
            if r.is_err() {
                *slot = None;
            }
            Some(r)
        })
        .ok()
        .flatten();
    match cached {
        Some(r) => r,
        None => f(&mut make()?),
    }
}

/// gzip: a raw deflate stream between a fixed 10-byte header and the
/// CRC-32/length trailer, byte for byte what `flate2::write::GzEncoder`
/// writes (mtime 0, OS 255), but with the deflate state (hundreds of KiB in
/// miniz_oxide) reset instead of allocated per batch.
struct GzipState {
    deflate: flate2::Compress,
    /// The level `deflate` compresses at.
    level: u32,
    scratch: Vec<u8>,
}

/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=255 (unknown), with XFL as
/// flate2 (and gzip(1)) set it: 2 at the best level, 4 at the fastest
/// (and 0), else 0. Informational only; readers ignore it.
const fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = if level >= 9 {
        2
    } else if level <= 1 {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

impl GzipState {
    /// `level`: 0-9 (checked by [`compress_at`]).
    fn new(level: u32) -> io::Result<Self> {
        Ok(GzipState {
            deflate: flate2::Compress::new(flate2::Compression::new(level), false),
            level,
            scratch: Vec::new(),
        })
    }

    fn compress(&mut self, input: &[u8], out: &mut BytesMut) -> io::Result<()> {
        self.deflate.reset();
        self.scratch.clear();
        // Deflate's worst case is a few bytes per 16 KiB stored block.
        self.scratch.reserve(input.len() + input.len() / 1024 + 64);
        loop {
            let consumed = self.deflate.total_in() as usize;
            let status = self
                .deflate
                .compress_vec(
                    &input[consumed..],
                    &mut self.scratch,
                    flate2::FlushCompress::Finish,
                )
                .map_err(io::Error::other)?;
            match status {
                flate2::Status::StreamEnd => break,
                // Out of room (the reserve above is an estimate): grow, go on.
                flate2::Status::Ok | flate2::Status::BufError => {
                    self.scratch.reserve(self.scratch.capacity().max(1024))
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(input);
        let header = gzip_header(self.level);
        out.reserve(header.len() + self.scratch.len() + 8);
        out.put_slice(&header);
        out.put_slice(&self.scratch);
        out.put_u32_le(crc.sum());
        out.put_u32_le(input.len() as u32); // ISIZE: the length modulo 2^32
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}

/// lz4: the frame settings Kafka uses (64 KiB independent blocks, no
/// checksums).
fn lz4_frame_encoder<W: Write>(w: W) -> lz4_flex::frame::FrameEncoder<W> {
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    lz4_flex::frame::FrameEncoder::with_frame_info(info, w)
}

/// lz4: one frame encoder per thread, writing frame after frame into its
/// own buffer; its 64 KiB block buffers and hash table are allocated once.
struct Lz4State {
    enc: lz4_flex::frame::FrameEncoder<Vec<u8>>,
}

impl Lz4State {
    fn new() -> Self {
        Lz4State {
            enc: lz4_frame_encoder(Vec::new()),
        }
    }

    /// `input` must not be empty (see [`compress`]).
    fn compress(&mut self, input: &[u8], out: &mut BytesMut) -> io::Result<()> {
        debug_assert!(!input.is_empty());
        self.enc.get_mut().clear();
        self.enc.write_all(input)?;
        self.enc.try_finish().map_err(io::Error::other)?;
        out.extend_from_slice(self.enc.get_ref());
        let buf = self.enc.get_mut();
        buf.clear();
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        Ok(())
    }
}

/// zstd: one context per thread. Creating and initialising a context per
/// batch was most of the cost of compressing a small batch; reused, zstd
/// only resets it. Output is the same frame (content size in the header).
#[cfg(feature = "zstd")]
struct ZstdState {
    cctx: zstd::bulk::Compressor<'static>,
    /// The level `cctx` compresses at.
    level: i32,
    scratch: Vec<u8>,
}

#[cfg(feature = "zstd")]
impl ZstdState {
    fn new(level: i32) -> io::Result<Self> {
        Ok(ZstdState {
            cctx: zstd::bulk::Compressor::new(level)?,
            level,
            scratch: Vec::new(),
        })
    }

    fn compress(&mut self, input: &[u8], out: &mut BytesMut) -> io::Result<()> {
        // Into the scratch buffer's spare capacity: no zero-filling of the
        // worst-case bound, and `out` grows once, by the compressed size.
        self.scratch.clear();
        self.scratch
            .reserve(zstd::zstd_safe::compress_bound(input.len()));
        let n = self.cctx.compress_to_buffer(input, &mut self.scratch)?;
        out.extend_from_slice(&self.scratch[..n]);
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}

fn snappy_xerial_compress(input: &[u8], out: &mut BytesMut) -> Result<(), snap::Error> {
    out.reserve(XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len()));
    out.put_slice(&XERIAL_MAGIC);
    out.put_i32(1); // version
    out.put_i32(1); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK) {
        let len_at = out.len();
        let bound = snap::raw::max_compress_len(chunk.len());
        out.resize(len_at + 4 + bound, 0);
        let n = enc.compress(chunk, &mut out[len_at + 4..])?;
        out[len_at..len_at + 4].copy_from_slice(&(n as i32).to_be_bytes());
        out.truncate(len_at + 4 + n);
    }
    Ok(())
}

/// Decompresses `input` (the records section of a batch) written with
/// `codec`. Output larger than `limit` bytes is
/// [`DecodeError::DecompressedTooLarge`]; no allocation exceeds `limit`
/// plus a codec's fixed working buffers.
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let out = match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            input.to_vec()
        }
        Compression::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            input.len(),
            limit,
        )?,
        Compression::Snappy => snappy_decompress(input, limit)?,
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            input.len(),
            limit,
        )?,
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => {
            return Err(DecodeError::CodecNotBuilt {
                codec: codec.name(),
            })
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| codec_error(codec, &e))?;
            read_bounded(codec, dec, input.len(), limit)?
        }
    };
    Ok(Bytes::from(out))
}

fn codec_error(codec: Compression, e: &dyn fmt::Display) -> DecodeError {
    DecodeError::Decompression {
        codec: codec.name(),
        message: e.to_string(),
    }
}

/// Reads a streaming decoder to its end, but never more than `limit + 1`
/// bytes: reading one byte past the limit is how a bomb is told apart from
/// output of exactly `limit` bytes.
fn read_bounded<R: Read>(
    codec: Compression,
    reader: R,
    input_len: usize,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    // Records compress a few times over; start there and let the Vec grow
    // (geometrically, and never past what was actually produced).
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(limit).min(1 << 20));
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| codec_error(codec, &e))?;
    if out.len() > limit {
        return Err(DecodeError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let codec = Compression::Snappy;
    let mut dec = snap::raw::Decoder::new();
    let mut out = Vec::new();
    // Decompresses one raw block onto `out`, checking its declared length
    // against what the limit still allows before allocating.
    let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), DecodeError> {
        let n = snap::raw::decompress_len(block).map_err(|e| codec_error(codec, &e))?;
        if n > limit - out.len() {
            return Err(DecodeError::DecompressedTooLarge { limit });
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| codec_error(codec, &e))?;
        out.truncate(start + written);
        Ok(())
    };
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        let mut rest = &input[XERIAL_HEADER_LEN..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(codec_error(codec, &"truncated xerial block length"));
            }
            let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            rest = &rest[4..];
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= rest.len())
                .ok_or_else(|| {
                    codec_error(
                        codec,
                        &format_args!(
                            "xerial block length {len} exceeds the {} bytes left",
                            rest.len()
                        ),
                    )
                })?;
            block(&rest[..len], &mut out)?;
            rest = &rest[len..];
        }
    } else {
        block(input, &mut out)?;
    }
    Ok(out)
}

// These tests exercise every codec, zstd included.
#[cfg(all(test, feature = "zstd"))]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial: repeating text with a counter.
        let mut v = Vec::with_capacity(n);
        let mut i = 0u32;
        while v.len() < n {
            v.extend_from_slice(format!("record-{i} value payload ").as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn names_parse_and_display() {
        for c in Compression::ALL {
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
            assert_eq!(c.to_string(), c.name());
            assert_eq!(Compression::from_attributes(c.code()).unwrap(), c);
        }
        assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
        assert!("brotli".parse::<Compression>().is_err());
        for bad in 5..8 {
            assert!(Compression::from_attributes(bad).is_err());
        }
        // Only bits 0-2 name the codec.
        assert_eq!(
            Compression::from_attributes(0x18 | 2).unwrap(),
            Compression::Snappy
        );
    }

    /// The tests over "every codec this build has" skip what `is_built`
    /// denies: with the feature on, that must be none of them, or they
    /// would pass over nothing. (Without it, `without_zstd` checks the rest.)
    #[cfg(feature = "zstd")]
    #[test]
    fn with_the_zstd_feature_every_codec_is_built() {
        for c in Compression::ALL {
            assert!(c.is_built(), "{c}");
        }
    }

    #[test]
    fn every_codec_round_trips() {
        for n in [0, 1, 100, XERIAL_BLOCK, XERIAL_BLOCK + 1, 200_000] {
            let data = sample(n);
            for c in Compression::ALL {
                let mut out = BytesMut::new();
                compress(c, &data, &mut out).unwrap();
                let back = decompress(c, &out, data.len()).unwrap();
                assert_eq!(&back[..], &data[..], "{c} n={n}");
            }
        }
    }

    /// What each codec's library writes with a fresh encoder: the reused
    /// per-thread state must produce exactly these bytes, batch after batch.
    fn fresh(codec: Compression, input: &[u8]) -> Vec<u8> {
        match codec {
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
                enc.write_all(input).unwrap();
                enc.finish().unwrap()
            }
            Compression::Lz4 => {
                let mut enc = lz4_frame_encoder(Vec::new());
                enc.write_all(input).unwrap();
                enc.finish().unwrap()
            }
            Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL).unwrap(),
            Compression::None | Compression::Snappy => unreachable!("not cached"),
        }
    }

    #[test]
    fn reused_compressors_write_what_fresh_ones_write() {
        // Sizes in an order that shrinks and grows the state between jobs,
        // including more than one lz4 block and a scratch past SCRATCH_KEEP.
        let sizes = [
            100,
            1,
            16 * 1024,
            0,
            300,
            70_000,
            2 * SCRATCH_KEEP,
            100,
            5000,
        ];
        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            for (round, &n) in sizes.iter().enumerate() {
                let data = sample(n + round);
                let mut out = BytesMut::new();
                compress(c, &data, &mut out).unwrap();
                assert_eq!(&out[..], &fresh(c, &data)[..], "{c} n={n}");
                assert_eq!(&decompress(c, &out, data.len()).unwrap()[..], &data[..]);
            }
        }
    }

    /// The next number of a xorshift sequence (test data, not randomness).
    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// The capacity of this thread's cached output buffer for `codec`
    /// (`None`: no state cached).
    fn scratch_capacity(codec: Compression) -> Option<usize> {
        match codec {
            Compression::Gzip => GZIP.with(|g| g.borrow().as_ref().map(|st| st.scratch.capacity())),
            Compression::Lz4 => {
                LZ4.with(|g| g.borrow().as_ref().map(|st| st.enc.get_ref().capacity()))
            }
            Compression::Zstd => ZSTD.with(|g| g.borrow().as_ref().map(|st| st.scratch.capacity())),
            Compression::None | Compression::Snappy => None,
        }
    }

    #[test]
    fn each_thread_keeps_a_small_scratch_buffer_and_releases_a_large_one() {
        // Nearly incompressible bytes, so the output is as large as the input.
        let noise = |n: usize| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            (0..n).map(|_| xorshift(&mut x) as u8).collect::<Vec<u8>>()
        };
        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            // A thread of its own: its cached state starts empty.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let mut out = BytesMut::new();
                    compress(c, &noise(16 * 1024), &mut out).unwrap();
                    let kept = scratch_capacity(c).unwrap();
                    assert!((16 * 1024..=SCRATCH_KEEP).contains(&kept), "{c}: {kept}");
                    compress(c, &noise(SCRATCH_KEEP + 1), &mut out).unwrap();
                    assert_eq!(scratch_capacity(c), Some(0), "{c}");
                    compress(c, &noise(100), &mut out).unwrap();
                    assert!(scratch_capacity(c).unwrap() > 0, "{c}");
                });
            });
        }
    }

    /// A level reaches the compressor: the bytes are what a fresh encoder
    /// at that level writes, also when one thread alternates levels (its
    /// cached compressor is remade for the new level), higher levels write
    /// less, and a level the codec does not have is an error, not a panic.
    #[test]
    fn levels_reach_the_compressor() {
        // Words in a pseudo-random order: higher levels find more in it
        // than lower ones (in `sample`'s runs every level finds it all).
        let words = [
            "leader", "batch", "offset", "broker", "epoch", "topic", "flush",
        ];
        let mut x = 0x9e37_79b9_u64;
        let mut data = Vec::new();
        while data.len() < 32 * 1024 {
            xorshift(&mut x);
            data.extend_from_slice(words[(x % 7) as usize].as_bytes());
            data.extend_from_slice(format!(" {} ", x % 1000).as_bytes());
        }
        let at = |c: Compression, level: Option<i32>| {
            let mut out = BytesMut::new();
            compress_at(c, level, &data, &mut out).unwrap();
            assert_eq!(&decompress(c, &out, data.len()).unwrap()[..], &data[..]);
            out
        };
        for round in 0..2 {
            for level in [1, 9, 0, 6] {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(level as u32),
                );
                enc.write_all(&data).unwrap();
                let want = enc.finish().unwrap();
                let got = at(Compression::Gzip, Some(level));
                assert_eq!(&got[..], &want[..], "gzip {level} round {round}");
            }
            for level in [1, 19, -5, 3] {
                let want = zstd::bulk::compress(&data, level).unwrap();
                let got = at(Compression::Zstd, Some(level));
                assert_eq!(&got[..], &want[..], "zstd {level} round {round}");
            }
        }
        assert_eq!(at(Compression::Gzip, None), at(Compression::Gzip, Some(6)));
        assert_eq!(at(Compression::Zstd, None), at(Compression::Zstd, Some(3)));
        assert!(at(Compression::Gzip, Some(9)).len() < at(Compression::Gzip, Some(1)).len());
        assert!(at(Compression::Zstd, Some(19)).len() < at(Compression::Zstd, Some(1)).len());
        for (c, bad) in [
            (Compression::Gzip, -1),
            (Compression::Gzip, 10),
            (Compression::Zstd, 23),
            (Compression::Zstd, i32::MIN),
            (Compression::Lz4, 9),
            (Compression::Snappy, 0),
            (Compression::None, 1),
        ] {
            let e = compress_at(c, Some(bad), &data, &mut BytesMut::new()).unwrap_err();
            assert!(e.to_string().contains(&bad.to_string()), "{c} {bad}: {e}");
        }
    }

    #[test]
    fn zstd_frames_carry_the_content_size() {
        for n in [1, 100, 20_000] {
            let data = sample(n);
            let mut out = BytesMut::new();
            compress(Compression::Zstd, &data, &mut out).unwrap();
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&out).ok(),
                Some(Some(n as u64))
            );
        }
    }

    #[test]
    fn threads_compress_independently() {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let data = sample(100 * (t + 1) + i);
                        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
                            let mut out = BytesMut::new();
                            compress(c, &data, &mut out).unwrap();
                            assert_eq!(&decompress(c, &out, data.len()).unwrap()[..], &data[..]);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn compression_appends_after_existing_bytes() {
        let data = sample(5000);
        for c in Compression::ALL {
            let mut out = BytesMut::from(&b"head"[..]);
            compress(c, &data, &mut out).unwrap();
            assert_eq!(&out[..4], b"head");
            assert_eq!(&decompress(c, &out[4..], 1 << 20).unwrap()[..], &data[..]);
        }
    }

    #[test]
    fn snappy_uses_xerial_framing_and_reads_raw_too() {
        let data = sample(70_000);
        let mut out = BytesMut::new();
        compress(Compression::Snappy, &data, &mut out).unwrap();
        assert_eq!(&out[..8], &XERIAL_MAGIC);
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // 70,000 bytes → 3 blocks of at most 32 KiB each.
        let mut rest = &out[16..];
        let mut blocks = 0;
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4 + len..];
            blocks += 1;
        }
        assert_eq!(blocks, 3);

        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            &decompress(Compression::Snappy, &raw, data.len()).unwrap()[..],
            &data[..]
        );
    }

    #[test]
    fn bombs_hit_the_limit_for_every_codec() {
        let data = vec![0u8; 1 << 20];
        for c in Compression::ALL {
            let mut out = BytesMut::new();
            compress(c, &data, &mut out).unwrap();
            assert_eq!(
                decompress(c, &out, 64 * 1024),
                Err(DecodeError::DecompressedTooLarge { limit: 64 * 1024 }),
                "{c}"
            );
            // Exactly at the limit is fine.
            assert_eq!(
                decompress(c, &out, data.len()).unwrap().len(),
                data.len(),
                "{c}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk: &[&[u8]] = &[
            b"",
            b"\x00",
            b"not compressed at all, just text",
            &[0xff; 64],
            &[
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff,
                0xff, 0xff,
            ],
            &[
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
            ],
            &[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7],
            &[0x28, 0xb5, 0x2f, 0xfd, 0x00],
        ];
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            for j in junk {
                if let Ok(out) = decompress(c, j, 1024) {
                    assert!(out.len() <= 1024);
                }
            }
        }
        assert!(decompress(Compression::Gzip, b"junk", 10).is_err());
        assert!(decompress(Compression::Snappy, junk[4], 10).is_err());
    }
}

/// Without the `zstd` feature (`cargo test -p kring-protocol
/// --no-default-features --lib`): zstd is refused with a typed error both
/// ways, and the other codecs still work.
#[cfg(all(test, not(feature = "zstd")))]
mod without_zstd {
    use super::*;

    #[test]
    fn zstd_is_a_typed_error_and_the_rest_still_works() {
        assert!(!Compression::Zstd.is_built());
        let mut out = BytesMut::new();
        assert_eq!(
            compress(Compression::Zstd, b"abc", &mut out),
            Err(EncodeError::CodecNotBuilt { codec: "zstd" })
        );
        // A real zstd frame of "abc" (as a broker would send it).
        let frame = [
            0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x03, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63,
        ];
        assert_eq!(
            decompress(Compression::Zstd, &frame, 1 << 20),
            Err(DecodeError::CodecNotBuilt { codec: "zstd" })
        );
        for c in Compression::ALL.into_iter().filter(|c| c.is_built()) {
            let mut out = BytesMut::new();
            compress(c, b"hello hello hello", &mut out).unwrap();
            assert_eq!(&decompress(c, &out, 100).unwrap()[..], b"hello hello hello");
        }
    }
}

#[cfg(test)]
mod lz4_frame {
    use super::*;

    /// The lz4 frame header is what Kafka's `KafkaLZ4BlockInputStream`
    /// reads: magic, FLG version 1 with independent blocks and nothing
    /// else (no content size, no checksums, no dictionary), BD 64 KiB, and
    /// the xxh32 header checksum; then blocks and the end mark.
    #[test]
    fn lz4_frame_header_is_kafkas() {
        for input in [
            vec![7u8; 10],
            (0..200_000u32)
                .map(|i| i.wrapping_mul(2_654_435_761) as u8)
                .collect(),
        ] {
            let mut out = BytesMut::new();
            compress(Compression::Lz4, &input, &mut out).unwrap();
            assert_eq!(&out[..4], &[0x04, 0x22, 0x4d, 0x18]);
            assert_eq!(out[4], 0x60, "FLG");
            assert_eq!(out[5], 0x40, "BD");
            assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0], "end mark");
        }
    }
}
