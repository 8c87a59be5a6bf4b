//! The contract between the driver and the producer core.
//!
//! The trait mirrors the driver-facing half of `kring_core::ProducerCore`
//! one to one, so the glue is a thin forwarding impl, and the driver can be
//! exercised with a test engine over real sockets.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use kring_core::Frame;

/// A socket operation the engine asks the driver to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoCommand<C> {
    /// Open a TCP connection to `addr` (`"host:port"`) and report the result
    /// with [`Engine::handle_connected`] or [`Engine::handle_connect_failed`].
    /// A `Connect` for a connection that is still open replaces it.
    Connect {
        /// The engine's name for the connection.
        conn: C,
        /// `"host:port"`; IP literals are used as is, names are resolved.
        addr: String,
        /// The attempt's connect timeout (the core's, which grows it per
        /// failed attempt): it bounds the name lookup, the TCP connect to
        /// each resolved address in turn and, with TLS, the handshake;
        /// running out fails the attempt as `TimedOut` (a handshake's as
        /// [`TlsFailure::HandshakeTimeout`](kring_core::TlsFailure::HandshakeTimeout)),
        /// with a reason that names it.
        timeout: Duration,
    },
    /// Close the connection. The driver reports nothing back for it; frames
    /// still queued for it are dropped (the engine owns their fate).
    Close {
        /// The connection to close.
        conn: C,
    },
}

/// A request frame to write to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<C> {
    /// The connection to write to.
    pub conn: C,
    /// One complete request, 4-byte size prefix included, as chunks (a
    /// ProduceRequest's record batches are chunks of their own, shared with
    /// the batches). Each chunk is written as its own iovec and kept alive
    /// until the kernel is done with it. Frames of one connection reach the
    /// wire in the order they were handed over.
    pub frame: Frame,
}

/// What the I/O thread drives: the sans-IO producer core, or a test double.
///
/// The driver calls, on every turn of its loop: the `handle_*` methods for
/// what happened since the last turn, [`handle_wakeup`](Engine::handle_wakeup),
/// [`handle_timeout`](Engine::handle_timeout) when
/// [`poll_timeout`](Engine::poll_timeout) is due, then drains
/// [`poll_io`](Engine::poll_io) and [`poll_transmit`](Engine::poll_transmit)
/// until `None`, repeating both until `poll_io` yields nothing (building
/// frames may ask for a connection), and finally parks in the kernel if
/// [`prepare_park`](Engine::prepare_park) allows it, until a completion, a
/// wake-up or the deadline of [`poll_timeout`](Engine::poll_timeout).
pub trait Engine: Send + 'static {
    /// The engine's connection identifier.
    type Conn: Copy + Eq + Hash + Debug + Send + 'static;

    /// Drain notices from producer threads (new or sealed batches, flush,
    /// close, metadata wanted). Called on every turn of the loop.
    fn handle_wakeup(&mut self, now: Instant);
    /// The connection asked for with [`IoCommand::Connect`] is established.
    fn handle_connected(&mut self, now: Instant, conn: Self::Conn);
    /// The connection could not be established (refused, unreachable,
    /// timed out, name not resolved). The socket is already closed. `kind`
    /// classifies the failure (`ConnectionRefused`, `TimedOut`, ...).
    fn handle_connect_failed(
        &mut self,
        now: Instant,
        conn: Self::Conn,
        kind: std::io::ErrorKind,
        reason: &str,
    );
    /// An established connection broke (peer closed, I/O error, malformed
    /// response framing). The socket is being closed; frames not yet written
    /// were dropped.
    fn handle_disconnected(&mut self, now: Instant, conn: Self::Conn, reason: &str);
    /// The TLS layer of the connection failed: during the handshake
    /// (untrusted certificate, name mismatch, refused, timed out, a peer
    /// that does not speak TLS) or later; or a plaintext connection got a
    /// TLS answer. The socket is already closed. The default reports it as
    /// [`handle_disconnected`](Engine::handle_disconnected).
    fn handle_tls_failed(
        &mut self,
        now: Instant,
        conn: Self::Conn,
        kind: kring_core::TlsFailure,
        reason: &str,
    ) {
        let _ = kind;
        self.handle_disconnected(now, conn, reason);
    }
    /// One complete response, size prefix stripped.
    fn handle_response(&mut self, now: Instant, conn: Self::Conn, frame: Bytes);
    /// The deadline returned by [`poll_timeout`](Engine::poll_timeout) has
    /// passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next socket operation to perform. Called until `None` after the
    /// `handle_*` calls of a turn, and again after
    /// [`poll_transmit`](Engine::poll_transmit) returned `None`.
    #[must_use]
    fn poll_io(&mut self) -> Option<IoCommand<Self::Conn>>;
    /// The next frame to write. Called until `None` after
    /// [`poll_io`](Engine::poll_io).
    #[must_use]
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Self::Conn>>;
    /// The earliest instant at which [`handle_timeout`](Engine::handle_timeout)
    /// must be called; `None` means no deadline (the driver may sleep until
    /// an I/O completion or a wake-up).
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
    /// Mark the engine parked, so producer threads know a wake-up is needed.
    /// Returns `false` if notices arrived meanwhile: the driver must not
    /// sleep and runs another turn instead.
    #[must_use]
    fn prepare_park(&mut self) -> bool;
    /// `true` once the engine has nothing left to do and never will (it was
    /// closed and every record has its final result). The I/O thread then
    /// closes every socket and exits.
    #[must_use]
    fn is_finished(&self) -> bool;
    /// The driver is stopping before the engine finished (a forced stop or a
    /// fatal ring error): fail everything still pending with `reason`, so no
    /// record is left without a final result.
    fn abort(&mut self, now: Instant, reason: &str);
}
