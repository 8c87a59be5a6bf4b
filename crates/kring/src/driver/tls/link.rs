//! [`Link`]: one connection's TLS layer as both event loops drive it — the
//! session, the request frames waiting to be encrypted, the decrypted bytes
//! waiting to be framed, and the handshake's deadline.
//!
//! An event loop owns the socket and the ciphertext queue (the bytes it
//! writes); the link owns everything on the plaintext side. The loop's
//! part, the same on io_uring and epoll:
//!
//! 1. TCP connected: [`Link::start`], moving in the frames queued so far.
//!    The engine does not hear of the connection yet.
//! 2. Whenever the loop may write: [`Link::seal`] into its ciphertext
//!    queue (handshake records first; request frames only once the
//!    handshake finished), then write the queue.
//! 3. Ciphertext received: [`Link::receive`]. If it reports
//!    [`Progress::established`], tell the engine `handle_connected`; then
//!    hand on every frame of [`Link::next_frame`] (decrypted bytes are
//!    framed at once, whatever the next read returns); then, since the
//!    session may have answered (handshake, key update), seal and write
//!    again. [`Progress::closed`] means the broker ended the session.
//! 4. End of stream: [`Link::closed_error`] says whether that is a TLS
//!    failure (mid-handshake) or an ordinary disconnect.
//! 5. [`Link::handshake_deadline`] passed: fail with
//!    [`super::handshake_timed_out`].

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use kring_core::Frame;

use super::{TlsConnector, TlsError, TlsSession};
use crate::driver::conn::SendQueue;
use crate::driver::framing::{next_frame, FrameError};

/// One connection's TLS layer: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Link {
    session: TlsSession,
    /// Request frames not yet encrypted.
    plain_out: SendQueue,
    /// Decrypted bytes not yet framed.
    plain_in: BytesMut,
    /// When the handshake must have finished; `None` once it has.
    deadline: Option<Instant>,
}

/// What [`Link::receive`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub(crate) struct Progress {
    /// The handshake finished with this ciphertext: the connection is up
    /// (exactly once per link).
    pub(crate) established: bool,
    /// The broker ended the TLS session (close_notify).
    pub(crate) closed: bool,
}

impl Link {
    /// Start the handshake with the broker at `addr` (`host:port`, the name
    /// the certificate is checked against). `pending` holds request frames
    /// queued before the connection was up; they are sent once the
    /// handshake finished, which must happen by `deadline`.
    pub(crate) fn start(
        connector: &TlsConnector,
        addr: &str,
        pending: SendQueue,
        deadline: Instant,
    ) -> Result<Link, TlsError> {
        Ok(Link {
            session: connector.start(addr)?,
            plain_out: pending,
            plain_in: BytesMut::new(),
            deadline: Some(deadline),
        })
    }

    /// Whether the handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// When the handshake must have finished, while it runs.
    pub(crate) fn handshake_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Queue a request frame, to be encrypted by the next [`seal`](Self::seal).
    pub(crate) fn push(&mut self, frame: Frame) {
        self.plain_out.push_frame(frame);
    }

    /// Bytes of request frames not yet encrypted.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.plain_out.bytes()
    }

    /// Encrypt the queued request frames (once the handshake finished) and
    /// move every record the session has to send, handshake messages
    /// first, into `wire` (nothing if there is none). Call whenever the
    /// loop could write: after [`start`](Self::start), after
    /// [`push`](Self::push), after [`receive`](Self::receive).
    pub(crate) fn seal(&mut self, wire: &mut SendQueue) -> Result<(), TlsError> {
        let open = !self.session.is_handshaking();
        super::seal(&mut self.session, open, &mut self.plain_out, wire)
    }

    /// Take in ciphertext the broker sent (all of it; the caller may reuse
    /// its buffer). The plaintext is framed by [`next_frame`](Self::next_frame).
    pub(crate) fn receive(&mut self, cipher: &[u8]) -> Result<Progress, TlsError> {
        let was_handshaking = self.deadline.is_some();
        let received = self.session.receive(cipher, &mut self.plain_in)?;
        let established = was_handshaking && !self.session.is_handshaking();
        if established {
            self.deadline = None;
        }
        Ok(Progress {
            established,
            closed: received.closed,
        })
    }

    /// The next complete decrypted response (size prefix stripped).
    pub(crate) fn next_frame(&mut self, max: usize) -> Result<Option<Bytes>, FrameError> {
        next_frame(&mut self.plain_in, max)
    }

    /// The socket reached end of stream: a TLS failure if the handshake
    /// had not finished (a listener that is not TLS, or refused this
    /// client), `None` for an ordinary disconnect.
    pub(crate) fn closed_error(&self) -> Option<TlsError> {
        self.is_handshaking().then(super::closed_during_handshake)
    }

    /// Make room in `buf` for the next read of ciphertext: at least
    /// `min_read` bytes. (Ciphertext is records, not Kafka frames: their
    /// sizes say nothing of the response's.)
    pub(crate) fn reserve_for_read(buf: &mut BytesMut, min_read: usize) {
        if buf.capacity() - buf.len() < min_read {
            buf.reserve(min_read);
        }
    }
}
