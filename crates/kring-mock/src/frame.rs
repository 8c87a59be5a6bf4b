//! Kafka framing: every request and response is a big-endian `i32` size
//! followed by that many bytes.
//!
//! [`FrameReader`] owns one reusable read buffer per connection. A `read`
//! may bring in many pipelined requests at once; the caller takes every
//! complete frame out of the buffer, answers them all, and writes the answers
//! in one go. Nothing is allocated per frame: frames are handed out as
//! ranges of the buffer, and the buffer is compacted only when the frame at
//! its tail would not fit in the space left.

use std::io::{self, Read};
use std::ops::Range;

/// Kafka's default `socket.request.max.bytes` (100 MiB): a size prefix
/// above it (or negative) is treated as a broken client and the connection
/// is closed, as a broker does.
pub const MAX_FRAME: usize = 100 * 1024 * 1024;

const MIN_READ: usize = 64 * 1024;

/// Why a connection's byte stream cannot be framed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A size prefix was negative or above [`MAX_FRAME`].
    #[error("invalid frame size {0}")]
    BadSize(i32),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A reusable read buffer that yields complete frames.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    /// A reader whose buffer starts at `capacity` bytes (at least 64 KiB).
    pub fn new(capacity: usize) -> Self {
        FrameReader {
            buf: vec![0; capacity.max(MIN_READ)],
            start: 0,
            end: 0,
        }
    }

    /// The buffer the ranges from [`next_frame`](Self::next_frame) index.
    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes buffered but not yet taken as frames.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Reads once from `r` into the buffer. Returns the number of bytes
    /// read; 0 means the peer closed the connection.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> Result<usize, FrameError> {
        self.make_room()?;
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes the next complete frame (without its size prefix), as a range
    /// of [`buf`](Self::buf). `None` when the buffer holds no complete frame.
    pub fn next_frame(&mut self) -> Result<Option<Range<usize>>, FrameError> {
        let avail = self.end - self.start;
        if avail < 4 {
            return Ok(None);
        }
        let size = self.frame_size()?;
        if avail < 4 + size {
            return Ok(None);
        }
        let body = self.start + 4..self.start + 4 + size;
        self.start = body.end;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(body))
    }

    fn frame_size(&self) -> Result<usize, FrameError> {
        let s = i32::from_be_bytes([
            self.buf[self.start],
            self.buf[self.start + 1],
            self.buf[self.start + 2],
            self.buf[self.start + 3],
        ]);
        if s < 0 || s as usize > MAX_FRAME {
            return Err(FrameError::BadSize(s));
        }
        Ok(s as usize)
    }

    /// Ensures there is room to read into: at least the rest of the
    /// partial frame at the tail, and at least [`MIN_READ`] bytes when its
    /// size is not known yet.
    fn make_room(&mut self) -> Result<(), FrameError> {
        let avail = self.end - self.start;
        let needed = if avail >= 4 {
            (4 + self.frame_size()?).saturating_sub(avail).max(1)
        } else {
            MIN_READ
        };
        if self.buf.len() - self.end >= needed {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = avail;
            self.start = 0;
        }
        if self.buf.len() - self.end < needed {
            let want = (self.end + needed).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
        Ok(())
    }
}

/// Appends a frame to `out`: reserves the size prefix, lets `body` write
/// the frame's contents, then fills the prefix in.
pub fn write_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out the input in fixed-size pieces.
    struct Chunks<'a>(&'a [u8], usize);
    impl Read for Chunks<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn frames(sizes: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            write_frame(&mut v, |o| o.extend(std::iter::repeat_n(i as u8, s)));
        }
        v
    }

    #[test]
    fn splits_pipelined_and_partial_frames() {
        let sizes = [0, 1, 5, 70_000, 3, 200_000, 9];
        let input = frames(&sizes);
        for chunk in [1, 3, 1000, 65_536, 1 << 20] {
            let mut r = FrameReader::new(0);
            let mut src = Chunks(&input, chunk);
            let mut got = Vec::new();
            while r.read_from(&mut src).unwrap() > 0 {
                while let Some(f) = r.next_frame().unwrap() {
                    let body = &r.buf()[f];
                    assert!(body.iter().all(|&b| b == got.len() as u8));
                    got.push(body.len());
                }
            }
            assert_eq!(got, sizes, "chunk {chunk}");
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [-1i32, (MAX_FRAME + 1) as i32] {
            let mut r = FrameReader::new(0);
            let input = bad.to_be_bytes();
            r.read_from(&mut Chunks(&input, 4)).unwrap();
            assert!(matches!(r.next_frame(), Err(FrameError::BadSize(s)) if s == bad));
        }
    }
}
