//! TLS for broker connections: rustls's sans-IO client session, driven by
//! whichever event loop owns the socket.
//!
//! Nothing here knows about io_uring, sockets or submission queues, and
//! nothing here is `unsafe`: an event loop hands in the ciphertext it
//! received ([`TlsSession::receive`], which yields plaintext response
//! bytes), hands in request frames ([`TlsSession::encrypt`]), and collects
//! the ciphertext to write ([`TlsSession::take_ciphertext`]: handshake
//! records, then encrypted requests, in order; [`seal`] does both for a
//! connection's queues). The event loop calls the engine's
//! `handle_connected` once [`TlsSession::is_handshaking`] turns false, so
//! the core only ever sees an established, encrypted byte stream.
//!
//! Both event loops, io_uring (`event_loop.rs`) and epoll
//! (`epoll_loop.rs`), drive it through one type, [`Link`]: a connection's
//! session with its plaintext queues and handshake deadline, and the order
//! in which a loop must call it. A loop keeps only what is its own: the
//! socket, the ciphertext it writes and reads, and when it may write.
//!
//! rustls's buffered `ClientConnection` is used rather than its unbuffered
//! API: each request is encrypted from the request's own `Bytes` into one
//! TLS record buffer (rustls copies the plaintext into the record and seals
//! it in place), and the records are then moved into one driver-owned
//! buffer per send — one extra `memcpy` per byte, small next to AES-GCM,
//! in exchange for rustls keeping the record-layer state machine
//! (fragmentation, key updates, alerts, TLS 1.2 and 1.3) that the
//! unbuffered API leaves to the caller.
//!
//! Crypto comes from `ring` (the provider is passed explicitly, so kring
//! never depends on, or changes, the process-wide default provider).

use kring_core::TlsFailure;

use super::conn::SendQueue;

mod link;
pub(crate) use link::Link;

#[cfg(feature = "tls")]
pub(crate) mod encrypted_key;
#[cfg(feature = "tls")]
mod pkcs12;
#[cfg(feature = "tls")]
mod session;
/// Test helpers of the session (a self-signed rustls server).
#[cfg(all(test, feature = "tls"))]
pub(crate) use session::tests as session_tests;
#[cfg(feature = "tls")]
pub(crate) use session::{ca_certs, crypto_provider, TlsConnector, TlsSession};

#[cfg(not(feature = "tls"))]
mod disabled;
#[cfg(not(feature = "tls"))]
pub(crate) use disabled::{TlsConnector, TlsSession};

/// A TLS failure, classified for the core, with a message fit for users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsError {
    pub(crate) kind: TlsFailure,
    pub(crate) message: String,
}

impl TlsError {
    pub(crate) fn new(kind: TlsFailure, message: impl Into<String>) -> Self {
        TlsError {
            kind,
            message: message.into(),
        }
    }
}

/// What [`TlsSession::receive`] found besides plaintext.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// The broker ended the TLS session (close_notify).
    pub(crate) closed: bool,
}

/// The broker closed the connection before the handshake finished.
pub(crate) fn closed_during_handshake() -> TlsError {
    TlsError::new(
        TlsFailure::PeerNotTls,
        "the broker closed the connection during the TLS handshake: the listener is \
         probably not TLS (PLAINTEXT or SASL_PLAINTEXT; set security.protocol to match), \
         or it refused this client",
    )
}

/// The handshake did not finish in time.
pub(crate) fn handshake_timed_out(after: std::time::Duration) -> TlsError {
    TlsError::new(
        TlsFailure::HandshakeTimeout,
        format!(
            "the TLS handshake did not finish within {after:?} (the attempt's connect \
             timeout: socket.connection.setup.timeout.ms, grown per failed attempt up to \
             socket.connection.setup.timeout.max.ms); is this a TLS listener?"
        ),
    )
}

/// A plaintext connection received a TLS record.
pub(crate) fn peer_expects_tls() -> TlsError {
    TlsError::new(
        TlsFailure::PeerExpectsTls,
        "the broker answered with TLS: this listener expects security.protocol=SSL \
         (or SASL_SSL)",
    )
}

/// Whether `bytes` (the first bytes a plaintext connection received) are a
/// TLS record header: handshake or alert content type, major version 3.
pub(crate) fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, minor, ..] if *minor <= 0x04)
}

/// TLS: encrypt the queued request frames (once the handshake finished)
/// and move every record the session has to send, handshake messages
/// first, into `wire` as one buffer.
pub(crate) fn seal(
    session: &mut TlsSession,
    open: bool,
    plain: &mut SendQueue,
    wire: &mut SendQueue,
) -> Result<(), TlsError> {
    // Room for the records' headers and tags (≤ 22 bytes per 16 KiB
    // record in TLS 1.3, a little more in 1.2), so the buffer grows once.
    let plain_bytes = if open { plain.bytes() } else { 0 };
    let mut out = Vec::with_capacity(plain_bytes + plain_bytes / 256 + 512);
    if open {
        while !plain.is_empty() {
            // Each chunk of the queued frames as it is (a ProduceRequest's
            // record batches are shared, not copied): rustls copies the
            // plaintext into its records anyway.
            let batch = plain.take_batch();
            session.encrypt(batch.slices())?;
        }
    }
    session.take_ciphertext(&mut out);
    wire.push(bytes::Bytes::from(out));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_record_headers_are_recognised() {
        assert!(looks_like_tls(&[0x15, 0x03, 0x03, 0x00, 0x02]));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
        // A Kafka response: a 4-byte size of a small frame.
        assert!(!looks_like_tls(&[0x00, 0x00, 0x01, 0x2c]));
        assert!(!looks_like_tls(&[0x15]));
    }
}
