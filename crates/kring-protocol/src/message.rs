//! The message traits, header versions and request/response framing.
//!
//! Hand-written; the messages themselves are generated into
//! [`crate::messages`]. A Kafka frame on the wire is a 4-byte big-endian size,
//! then a header, then the body:
//!
//! ```text
//! request:  size | api_key i16 | api_version i16 | correlation_id i32 | client_id (i16-length string)
//!                | [tagged fields, header v2] | body
//! response: size | correlation_id i32 | [tagged fields, header v1] | body
//! ```
//!
//! The header version follows from the API's flexible versions, with one
//! exception that trips up every client once: an ApiVersions *response* always
//! uses header v0 (no tagged fields), even in flexible versions, because the
//! client cannot yet know which versions the broker speaks.

use crate::messages::header::{RequestHeader, ResponseHeader};
use crate::primitives::{self as p, DecodeError, EncodeError};
use bytes::{BufMut, Bytes};

pub use crate::messages::{ApiKey, RequestKind, ResponseKind};

/// A value with a Kafka wire encoding that depends on the API version.
pub trait Encodable {
    /// Writes `self` as `version`. Fails, without writing anything the
    /// caller should send, when a value cannot be expressed in `version`:
    /// a non-default value in a field the version lacks, a null where the
    /// version does not allow one, an unsupported version. On error `buf`
    /// may hold a partial encoding; [`Encodable::encoded_len`] runs the same
    /// checks without writing, and the framing functions call it first.
    fn encode<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<(), EncodeError>;

    /// The exact number of bytes [`Encodable::encode`] writes for `version`.
    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError>;
}

/// A value decodable from the Kafka wire encoding of a version.
pub trait Decodable: Sized {
    /// Reads one value from the front of `buf` and advances it. Byte fields
    /// (records, auth bytes) are split off `buf` without copying. Never
    /// panics: malformed input gives a [`DecodeError`].
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A request message: its API key, supported versions and response type.
pub trait Request: Encodable + Decodable {
    /// The API key.
    const API_KEY: i16;
    /// The lowest supported version.
    const MIN_VERSION: i16;
    /// The highest supported version.
    const MAX_VERSION: i16;
    /// The first flexible version, `i16::MAX` if none.
    const FLEXIBLE_MIN: i16;
    /// The matching response.
    type Response: Response;
}

/// A response message: its API key and supported versions.
pub trait Response: Encodable + Decodable {
    /// The API key.
    const API_KEY: i16;
    /// The lowest supported version.
    const MIN_VERSION: i16;
    /// The highest supported version.
    const MAX_VERSION: i16;
    /// The first flexible version, `i16::MAX` if none.
    const FLEXIBLE_MIN: i16;
}

/// The request header version for `version` of `api_key`: v2 (with tagged
/// fields) for flexible versions, v1 otherwise.
pub fn request_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key.is_flexible(version) {
        2
    } else {
        1
    }
}

/// The response header version for `version` of `api_key`: v1 (with tagged
/// fields) for flexible versions, v0 otherwise, and always v0 for
/// ApiVersions.
pub fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    response_header_version_raw(api_key.key(), api_key.is_flexible(version))
}

fn response_header_version_raw(api_key: i16, flexible: bool) -> i16 {
    if flexible && api_key != ApiKey::ApiVersions.key() {
        1
    } else {
        0
    }
}

/// The size prefix for a frame of `len` bytes after the prefix.
fn frame_size(len: usize) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong {
        field: "frame",
        len,
    })
}

/// Writes a whole request frame: the 4-byte size, the request header
/// (v1, or v2 in flexible versions) and the body. Everything is validated
/// before the first byte is written.
pub fn encode_request<B: BufMut, R: Request>(
    buf: &mut B,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<(), EncodeError> {
    put_size_and_header(buf, correlation_id, client_id, version, request)?;
    request.encode(buf, version)
}

/// Validates `request` for `version` (the version range, the client id,
/// and the generated `encoded_len`, which runs every check the encoder
/// runs) and writes the frame's 4-byte size and the request header:
/// everything before the body, after which encoding cannot fail half-way.
/// Returns whether the version is flexible. Shared by [`encode_request`]
/// and the chunked produce frame
/// ([`encode_produce_request_frame`](crate::frame::encode_produce_request_frame)).
pub(crate) fn put_size_and_header<B: BufMut, R: Request>(
    buf: &mut B,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<bool, EncodeError> {
    if !(R::MIN_VERSION..=R::MAX_VERSION).contains(&version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: R::API_KEY,
            version,
        });
    }
    let flexible = version >= R::FLEXIBLE_MIN;
    if let Some(id) = client_id {
        // ClientId is a classic (non-compact) string even in header v2.
        p::check_string_len("ClientId", id, false)?;
    }
    let header_len = 8 + p::nullable_string_len(client_id, false) + usize::from(flexible);
    let body_len = request.encoded_len(version)?;
    let size = frame_size(header_len + body_len)?;
    buf.put_i32(size);
    buf.put_i16(R::API_KEY);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    p::put_nullable_string(buf, client_id, false);
    if flexible {
        p::put_unsigned_varint(buf, 0); // no tagged fields
    }
    Ok(flexible)
}

/// The correlation id of a response frame (without its size prefix): the
/// first four bytes in every response header version, so a connection can
/// match a response to its request before knowing how to decode it.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame.first_chunk::<4>() {
        Some(b) => Ok(i32::from_be_bytes(*b)),
        None => Err(DecodeError::UnexpectedEof {
            needed: 4,
            remaining: frame.len(),
        }),
    }
}

/// Decodes a response frame (without its size prefix) to request `R` sent
/// as `version`: the header (v0 or v1 by the rules above) and the body,
/// which must use the whole frame. Returns the correlation id and the body.
pub fn decode_response_frame<R: Request>(
    frame: Bytes,
    version: i16,
) -> Result<(i32, R::Response), DecodeError> {
    if !(R::MIN_VERSION..=R::MAX_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key: R::API_KEY,
            version,
        });
    }
    let header_version = response_header_version_raw(R::API_KEY, version >= R::FLEXIBLE_MIN);
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, header_version)?;
    let body = R::Response::decode(&mut buf, version)?;
    ensure_empty(&buf)?;
    Ok((header.correlation_id, body))
}

fn ensure_empty(buf: &Bytes) -> Result<(), DecodeError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes(buf.len()))
    }
}

/// Decodes the request header at the front of `buf` (a frame without its
/// size prefix), choosing the header version from the API key and version it
/// starts with. Works for versions kring does not support, so a broker can
/// still answer them with an error; an unknown API key is an error.
pub fn decode_request_header(buf: &mut Bytes) -> Result<RequestHeader, DecodeError> {
    let mut peek = buf.clone();
    let api_key = ApiKey::try_from(p::get_i16(&mut peek)?)?;
    let version = p::get_i16(&mut peek)?;
    RequestHeader::decode(buf, request_header_version(api_key, version))
}

/// Decodes a whole request frame (without its size prefix): header and body,
/// which must use the whole frame.
pub fn decode_request_frame(frame: Bytes) -> Result<(RequestHeader, RequestKind), DecodeError> {
    let mut buf = frame;
    let header = decode_request_header(&mut buf)?;
    let body = RequestKind::decode(header.request_api_key, header.request_api_version, &mut buf)?;
    ensure_empty(&buf)?;
    Ok((header, body))
}

/// Writes a whole response frame: size, response header and body.
pub fn encode_response<B: BufMut, R: Response>(
    buf: &mut B,
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<(), EncodeError> {
    if !(R::MIN_VERSION..=R::MAX_VERSION).contains(&version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: R::API_KEY,
            version,
        });
    }
    let header_version = response_header_version_raw(R::API_KEY, version >= R::FLEXIBLE_MIN);
    put_response_frame(buf, correlation_id, header_version, version, response)
}

/// Writes a whole response frame for a [`ResponseKind`].
pub fn encode_response_frame<B: BufMut>(
    buf: &mut B,
    correlation_id: i32,
    version: i16,
    response: &ResponseKind,
) -> Result<(), EncodeError> {
    let key = response.api_key();
    if !key.supports(version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: key.key(),
            version,
        });
    }
    let header_version = response_header_version(key, version);
    put_response_frame(buf, correlation_id, header_version, version, response)
}

fn put_response_frame<B: BufMut, E: Encodable>(
    buf: &mut B,
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &E,
) -> Result<(), EncodeError> {
    let header_len = 4 + usize::from(header_version >= 1);
    let size = frame_size(header_len + body.encoded_len(version)?)?;
    buf.put_i32(size);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        p::put_unsigned_varint(buf, 0); // no tagged fields
    }
    body.encode(buf, version)
}

/// Helpers the generated code calls; not part of the public API.
pub(crate) mod wire {
    use crate::primitives::{self as p, DecodeError, EncodeError, RawTaggedField};
    use bytes::{Buf, BufMut, Bytes};

    fn check_len(field: &'static str, len: usize, compact: bool) -> Result<(), EncodeError> {
        let max = if compact {
            u32::MAX as usize - 1
        } else {
            i32::MAX as usize
        };
        if len > max {
            Err(EncodeError::TooLong { field, len })
        } else {
            Ok(())
        }
    }

    /// Checks that a byte string fits its length prefix.
    pub(crate) fn check_bytes_len(
        field: &'static str,
        len: usize,
        compact: bool,
    ) -> Result<(), EncodeError> {
        check_len(field, len, compact)
    }

    /// Checks that an array fits its length prefix.
    pub(crate) fn check_array_len(
        field: &'static str,
        len: usize,
        compact: bool,
    ) -> Result<(), EncodeError> {
        check_len(field, len, compact)
    }

    /// The number of tagged fields as written.
    pub(crate) fn tag_count(n: usize) -> Result<u32, EncodeError> {
        u32::try_from(n).map_err(|_| EncodeError::TooLong {
            field: "tagged fields",
            len: n,
        })
    }

    /// The size of one tagged field's data as written.
    pub(crate) fn tag_size(n: usize) -> Result<u32, EncodeError> {
        u32::try_from(n).map_err(|_| EncodeError::TooLong {
            field: "tagged field",
            len: n,
        })
    }

    /// A decoded null is only valid where the version allows it.
    pub(crate) fn null_check<T>(
        v: Option<T>,
        nullable: bool,
        field: &'static str,
    ) -> Result<Option<T>, DecodeError> {
        if v.is_none() && !nullable {
            Err(DecodeError::UnexpectedNull(field))
        } else {
            Ok(v)
        }
    }

    /// Reads an array (`None` when null). Every element takes at least
    /// `min_len` bytes, so a count the remaining input cannot hold is
    /// rejected before anything is allocated.
    pub(crate) fn get_array<T>(
        buf: &mut Bytes,
        compact: bool,
        min_len: usize,
        mut elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(n) = p::get_array_len(buf, compact)? else {
            return Ok(None);
        };
        let needed = n.saturating_mul(min_len);
        if needed > buf.remaining() {
            return Err(DecodeError::UnexpectedEof {
                needed,
                remaining: buf.remaining(),
            });
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(elem(buf)?);
        }
        Ok(Some(items))
    }

    /// Reads a tagged-field section. `known(tag, data)` decodes a tag the
    /// message knows from `data` and returns `Ok(true)`, or `Ok(false)` for a
    /// tag it does not know, which is kept raw. Tags must be strictly
    /// ascending (KIP-482), and a known field must use all of its data.
    pub(crate) fn decode_tagged_fields(
        buf: &mut Bytes,
        mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
    ) -> Result<Vec<RawTaggedField>, DecodeError> {
        let n = p::get_unsigned_varint(buf)?;
        let mut unknown = Vec::new();
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let (tag, mut data) = p::get_tagged_field(buf)?;
            if prev.is_some_and(|prev| tag <= prev) {
                return Err(DecodeError::InvalidValue {
                    field: "tag (tagged fields must be in strictly ascending order)",
                    value: tag.into(),
                });
            }
            prev = Some(tag);
            // `known` leaves `data` untouched when it returns `false`.
            if known(tag, &mut data)? {
                if !data.is_empty() {
                    return Err(DecodeError::TrailingBytes(data.len()));
                }
            } else {
                unknown.push(RawTaggedField { tag, data });
            }
        }
        Ok(unknown)
    }

    /// Called by generated code after decoding a known tagged field;
    /// `non_default` tells whether the value differs from its default. A
    /// default value is legal on the wire but not canonical (kring would not
    /// write it), which the fuzz round-trip needs to know.
    #[inline]
    pub(crate) fn known_tag(non_default: bool) -> Result<bool, DecodeError> {
        #[cfg(fuzzing)]
        if !non_default {
            p::canonical::mark();
        }
        let _ = non_default;
        Ok(true)
    }

    /// Unknown tagged fields in tag order, for merging with the known ones.
    pub(crate) struct UnknownTags<'a> {
        sorted: Vec<&'a RawTaggedField>,
        next: usize,
    }

    impl<'a> UnknownTags<'a> {
        /// Sorts and validates: no tag twice, none equal to a tag the message
        /// knows at this version (`is_known`).
        pub(crate) fn new(
            fields: &'a [RawTaggedField],
            is_known: impl Fn(u32) -> bool,
        ) -> Result<Self, EncodeError> {
            let mut sorted: Vec<&RawTaggedField> = fields.iter().collect();
            sorted.sort_by_key(|f| f.tag);
            for (i, f) in sorted.iter().enumerate() {
                if is_known(f.tag) || (i > 0 && sorted[i - 1].tag == f.tag) {
                    return Err(EncodeError::DuplicateTag { tag: f.tag });
                }
            }
            Ok(UnknownTags { sorted, next: 0 })
        }

        /// The number of unknown fields.
        pub(crate) fn len(&self) -> usize {
            self.sorted.len()
        }

        /// Writes the unknown fields with tags below `tag`.
        pub(crate) fn put_before<B: BufMut>(&mut self, buf: &mut B, tag: u32) {
            while let Some(f) = self.sorted.get(self.next).filter(|f| f.tag < tag) {
                p::put_tagged_field(buf, f.tag, &f.data);
                self.next += 1;
            }
        }

        /// Writes the remaining unknown fields.
        pub(crate) fn put_rest<B: BufMut>(&mut self, buf: &mut B) {
            self.put_before(buf, u32::MAX);
            if let Some(f) = self.sorted.get(self.next) {
                // Only tag u32::MAX itself can be left.
                p::put_tagged_field(buf, f.tag, &f.data);
                self.next += 1;
            }
        }
    }

    /// The encoded size of the unknown tagged fields, with the same checks as
    /// [`UnknownTags::new`].
    pub(crate) fn unknown_tags_len(
        fields: &[RawTaggedField],
        is_known: impl Fn(u32) -> bool,
    ) -> Result<usize, EncodeError> {
        if fields.is_empty() {
            return Ok(0);
        }
        UnknownTags::new(fields, is_known)?;
        Ok(fields
            .iter()
            .map(|f| p::tagged_field_len(f.tag, f.data.len()))
            .sum())
    }
}

#[cfg(test)]
mod tests {
    use super::wire;
    use crate::primitives::EncodeError;

    /// A length fits its prefix up to the prefix's largest count: an
    /// `int32` for classic fields, an unsigned varint holding length + 1
    /// for compact ones; one more is `TooLong`, naming the field. Only
    /// lengths are checked, so no buffer of that size is needed.
    #[test]
    fn lengths_fit_their_prefix_up_to_its_largest_count() {
        let classic = i32::MAX as usize;
        let compact = u32::MAX as usize - 1;
        for check in [wire::check_bytes_len, wire::check_array_len] {
            assert_eq!(check("f", 0, false), Ok(()));
            assert_eq!(check("f", classic, false), Ok(()));
            assert_eq!(
                check("f", classic + 1, false),
                Err(EncodeError::TooLong {
                    field: "f",
                    len: classic + 1
                })
            );
            assert_eq!(check("f", classic + 1, true), Ok(()));
            assert_eq!(check("f", compact, true), Ok(()));
            assert_eq!(
                check("f", compact + 1, true),
                Err(EncodeError::TooLong {
                    field: "f",
                    len: compact + 1
                })
            );
        }
    }
}
