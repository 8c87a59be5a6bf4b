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

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

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
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// Compresses `input` with `codec`, appending the compressed bytes to `out`.
/// [`Compression::None`] copies.
pub fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let err = |e: &dyn fmt::Display| EncodeError::Compression {
        codec: codec.name(),
        message: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(GZIP_LEVEL));
            enc.write_all(input).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))?;
        }
        Compression::Snappy => snappy_xerial_compress(input, out).map_err(|e| err(&e))?,
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
            enc.write_all(input).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))?;
        }
        Compression::Zstd => {
            // The bulk API writes the content size into the frame header, so a
            // reader can size its output exactly.
            let bound = zstd::zstd_safe::compress_bound(input.len());
            let start = out.len();
            out.resize(start + bound, 0);
            let n = zstd::bulk::compress_to_buffer(input, &mut out[start..], ZSTD_LEVEL)
                .map_err(|e| err(&e))?;
            out.truncate(start + n);
        }
    }
    Ok(())
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

#[cfg(test)]
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
