//! Response framing: Kafka responses are a 4-byte big-endian size followed by
//! that many bytes. One read may hold a fraction of a response or many.

use bytes::{Buf, Bytes, BytesMut};

/// A size prefix the driver refuses: the connection is then closed, since
/// nothing after it can be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// A negative size prefix.
    #[error("malformed response: negative size prefix {0}")]
    Negative(i32),
    /// A size prefix above the configured maximum.
    #[error("response of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
}

/// Split the next complete response (prefix stripped) off the front of
/// `buf`, without copying: the response shares `buf`'s allocation.
pub(crate) fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = declared_size(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < 4 + size {
        return Ok(None);
    }
    let mut frame = buf.split_to(4 + size);
    frame.advance(4);
    Ok(Some(frame.freeze()))
}

/// Make room for the next read: at least `min_read` bytes, and for a large
/// response whose prefix has arrived, room for as much of its rest as has
/// arrived already (the buffer at most doubles per read), so a large
/// response takes a few reads more than one but memory follows the bytes
/// that came, never the size the prefix claims: a peer declaring a
/// response of hundreds of megabytes and sending a few bytes of it costs a
/// few bytes, not an allocation of its choosing.
pub(crate) fn reserve_for_read(buf: &mut BytesMut, min_read: usize, max: usize) {
    let rest = match declared_size(buf, max) {
        Ok(Some(size)) => (4 + size).saturating_sub(buf.len()),
        _ => 0,
    };
    let want = rest.min(buf.len()).max(min_read);
    if buf.capacity() - buf.len() < want {
        buf.reserve(want);
    }
}

fn declared_size(buf: &BytesMut, max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn framed(payloads: &[&[u8]]) -> BytesMut {
        let mut b = BytesMut::new();
        for p in payloads {
            b.put_i32(p.len() as i32);
            b.put_slice(p);
        }
        b
    }

    #[test]
    fn many_frames_in_one_read() {
        let mut b = framed(&[b"one", b"", b"three"]);
        assert_eq!(next_frame(&mut b, 100).unwrap().unwrap(), &b"one"[..]);
        assert_eq!(next_frame(&mut b, 100).unwrap().unwrap(), &b""[..]);
        assert_eq!(next_frame(&mut b, 100).unwrap().unwrap(), &b"three"[..]);
        assert_eq!(next_frame(&mut b, 100).unwrap(), None);
        assert!(b.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let all = framed(&[b"hello world"]);
        for cut in 0..all.len() {
            let mut b = BytesMut::from(&all[..cut]);
            assert_eq!(next_frame(&mut b, 100).unwrap(), None, "cut at {cut}");
            assert_eq!(b.len(), cut, "nothing consumed");
            b.extend_from_slice(&all[cut..]);
            assert_eq!(
                next_frame(&mut b, 100).unwrap().unwrap(),
                &b"hello world"[..]
            );
        }
    }

    /// A response of exactly the limit is framed; one byte more is not.
    #[test]
    fn a_response_of_the_limit_is_framed() {
        let mut b = framed(&[&[9; 100]]);
        assert_eq!(next_frame(&mut b, 100).unwrap().unwrap(), &[9; 100][..]);
    }

    #[test]
    fn bad_prefixes_are_errors() {
        let mut b = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(next_frame(&mut b, 100), Err(FrameError::Negative(-1)));
        let mut b = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            next_frame(&mut b, 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn reserve_grows_with_what_arrived_of_a_large_frame() {
        // No spare room before the call: what there is after it was
        // reserved for the rest of the frame.
        let mut b = BytesMut::with_capacity(500_004);
        b.put_i32(1_000_000);
        b.put_slice(&[0; 500_000]);
        assert_eq!(b.capacity(), b.len());
        reserve_for_read(&mut b, 4096, 2_000_000);
        assert!(b.capacity() - b.len() >= 1_000_000 - 500_000);
        let mut e = BytesMut::new();
        reserve_for_read(&mut e, 4096, 2_000_000);
        assert!(e.capacity() >= 4096);
    }

    /// The size prefix is the peer's claim: room follows the bytes that
    /// came (the minimum read, or what arrived), not the claim.
    #[test]
    fn a_declared_size_is_not_reserved_before_its_bytes_arrive() {
        let mut b = BytesMut::new();
        b.put_i32(400_000_000);
        b.put_slice(&[0; 10]);
        reserve_for_read(&mut b, 4096, 512 * 1024 * 1024);
        assert!(b.capacity() - b.len() >= 4096);
        assert!(
            b.capacity() < 64 * 1024,
            "reserved {} bytes for 14 received",
            b.capacity()
        );
    }
}
