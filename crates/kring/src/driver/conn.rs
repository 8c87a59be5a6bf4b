//! Per-connection write queue: frames waiting for the wire, gathered into
//! one `SENDMSG` with many iovecs, and advanced after partial writes.

use std::collections::VecDeque;

use super::Frame;
use bytes::Bytes;

/// Linux's `IOV_MAX`: the most iovecs one `sendmsg` accepts.
pub(crate) const MAX_IOVECS: usize = 1024;

/// Frames queued on a connection, the first possibly partly written.
/// `Debug` shows sizes only: queued requests may carry credentials (a
/// SaslAuthenticate frame, in plaintext until TLS encrypts it).
#[derive(Default)]
pub(crate) struct SendQueue {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already on the wire.
    offset: usize,
    /// Total unwritten bytes (for metrics and back-pressure checks).
    bytes: usize,
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("buffers", &self.frames.len())
            .field("offset", &self.offset)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl SendQueue {
    /// Queue a frame: each chunk becomes an entry of its own (one iovec of
    /// a later `SENDMSG`), shared with its owner, not copied.
    pub(crate) fn push_frame(&mut self, frame: Frame) {
        for chunk in frame.into_chunks() {
            self.push(chunk);
        }
    }

    /// Queue one buffer.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Unwritten bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.offset = 0;
        self.bytes = 0;
    }

    /// Move up to [`MAX_IOVECS`] frames into a batch for one `SENDMSG`.
    pub(crate) fn take_batch(&mut self) -> SendBatch {
        let n = self.frames.len().min(MAX_IOVECS);
        let frames: Vec<Bytes> = self.frames.drain(..n).collect();
        let offset = std::mem::take(&mut self.offset);
        let total = frames.iter().map(Bytes::len).sum::<usize>() - offset;
        self.bytes -= total;
        SendBatch {
            frames,
            offset,
            total,
        }
    }

    /// Account for a completed write of `written` bytes of `batch`: frames
    /// fully written are released, the rest go back to the front of the
    /// queue, ahead of anything queued meanwhile.
    pub(crate) fn complete(&mut self, batch: SendBatch, written: usize) {
        debug_assert!(written <= batch.total);
        let mut skip = batch.offset + written;
        let mut unsent = Vec::new();
        for frame in batch.frames {
            if !unsent.is_empty() {
                unsent.push(frame);
            } else if skip >= frame.len() {
                skip -= frame.len();
            } else {
                unsent.push(frame);
            }
        }
        if unsent.is_empty() {
            return;
        }
        // `skip` is now the offset into the first unsent frame.
        let returned = unsent.iter().map(Bytes::len).sum::<usize>() - skip;
        self.bytes += returned;
        debug_assert_eq!(self.offset, 0, "one send in flight at a time");
        for frame in unsent.into_iter().rev() {
            self.frames.push_front(frame);
        }
        self.offset = skip;
    }
}

/// Frames owned by one in-flight `SENDMSG`: they must stay alive until its
/// completion arrives. `Debug` shows sizes only, as [`SendQueue`]'s.
pub(crate) struct SendBatch {
    pub(crate) frames: Vec<Bytes>,
    /// Bytes of `frames[0]` already written by an earlier send.
    pub(crate) offset: usize,
    /// Bytes this batch asks the kernel to write.
    pub(crate) total: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("buffers", &self.frames.len())
            .field("offset", &self.offset)
            .field("total", &self.total)
            .finish()
    }
}

impl SendBatch {
    /// The first `written` bytes this batch asked to write, as slices of
    /// its frames (sharing their buffers): what a zero-copy send that
    /// wrote `written` bytes left the kernel reading, and all it must
    /// keep alive until its notification. The unwritten rest goes back to
    /// the queue ([`SendQueue::complete`]), which holds it from then on,
    /// so the two are never counted twice.
    pub(crate) fn written_part(&self, written: usize) -> Vec<Bytes> {
        debug_assert!(written <= self.total);
        let mut left = written;
        let mut part = Vec::new();
        for (i, frame) in self.frames.iter().enumerate() {
            if left == 0 {
                break;
            }
            let start = if i == 0 { self.offset } else { 0 };
            let end = frame.len().min(start + left);
            part.push(frame.slice(start..end));
            left -= end - start;
        }
        part
    }

    /// The unwritten part of each frame, in order.
    pub(crate) fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, f)| if i == 0 { &f[self.offset..] } else { &f[..] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(batch: &SendBatch, n: usize) -> Vec<u8> {
        batch.slices().flatten().copied().take(n).collect()
    }

    /// A queued SaslAuthenticate frame (PLAIN: the password in the clear,
    /// before TLS) never shows in `Debug`.
    #[test]
    fn debug_shows_no_queued_bytes() {
        let mut q = SendQueue::default();
        q.push_frame(Frame::from(Bytes::from_static(
            b"\0\0\0\x26\0\x24\0\x02\0\0\0\x02\0\x05kring\0\x15\0alice\0hunter2-secret\0",
        )));
        let b = q.take_batch();
        let shown_batch = format!("{b:?}");
        q.complete(b, 3);
        for shown in [format!("{q:?}"), format!("{q:#?}"), shown_batch] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("alice"),
                "{shown}"
            );
            assert!(shown.contains("buffers"), "{shown}");
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut q = SendQueue::default();
        for f in [&b"abc"[..], b"defg", b"hi"] {
            q.push(Bytes::copy_from_slice(f));
        }
        let mut out = Vec::new();
        // Write 1, then 3, then 2, then the rest: crossing frame boundaries.
        for n in [1, 3, 2, usize::MAX] {
            let b = q.take_batch();
            let n = n.min(b.total);
            out.extend(written(&b, n));
            q.complete(b, n);
        }
        assert_eq!(out, b"abcdefghi");
        assert!(q.is_empty());
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn frames_queued_during_a_send_follow_the_unsent_rest() {
        let mut q = SendQueue::default();
        q.push(Bytes::from_static(b"12345"));
        let b = q.take_batch();
        q.push(Bytes::from_static(b"678"));
        q.complete(b, 2);
        let b = q.take_batch();
        assert_eq!(b.slices().flatten().copied().collect::<Vec<_>>(), b"345678");
        assert_eq!(b.total, 6);
    }

    /// A zero-copy send's hold covers exactly the bytes it wrote, across
    /// frame boundaries and after an earlier partial write; the queue
    /// holds exactly the rest.
    #[test]
    fn the_written_part_and_the_requeued_rest_split_the_batch() {
        let mut q = SendQueue::default();
        for f in [&b"abc"[..], b"defg", b"hi"] {
            q.push(Bytes::copy_from_slice(f));
        }
        let mut held = Vec::new();
        for n in [1, 3, 0, 2, usize::MAX] {
            let b = q.take_batch();
            let n = n.min(b.total);
            let part = b.written_part(n);
            assert_eq!(part.concat(), written(&b, n), "{n}");
            held.extend(part);
            q.complete(b, n);
            let queued: usize = held.iter().map(Bytes::len).sum::<usize>() + q.bytes;
            assert_eq!(queued, 9, "after writing {n}");
        }
        assert_eq!(held.concat(), b"abcdefghi");
    }

    #[test]
    fn batches_are_capped_at_iov_max() {
        let mut q = SendQueue::default();
        for _ in 0..MAX_IOVECS + 5 {
            q.push(Bytes::from_static(b"x"));
        }
        assert_eq!(q.take_batch().frames.len(), MAX_IOVECS);
        assert_eq!(q.take_batch().frames.len(), 5);
    }
}
