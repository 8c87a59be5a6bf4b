//! The last real failure behind a timeout, as a typed value: a record that
//! times out because its broker is unreachable says so.

use std::fmt;
use std::io;
use std::sync::Arc;

use kring_protocol::ErrorCode;

/// What last went wrong for a batch or its broker before a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastError {
    /// Connecting to the broker failed (refused, unreachable, name not
    /// resolved, connect timeout).
    Connect {
        /// The kind of failure (`ConnectionRefused`, `TimedOut`, ...).
        kind: io::ErrorKind,
        /// The driver's description.
        message: Arc<str>,
    },
    /// An established connection was lost.
    Disconnected {
        /// The driver's description.
        message: Arc<str>,
    },
    /// The broker answered with an error.
    Broker {
        /// The error.
        code: ErrorCode,
        /// The broker's error message for it, when it sent one (a
        /// ProduceResponse partition's `error_message`), or kring's
        /// description of a failure it reports under a Kafka code (a
        /// lost connection as NETWORK_EXCEPTION).
        message: Option<Arc<str>>,
    },
    /// SASL authentication failed: the broker refused the mechanism or the
    /// credentials, or the exchange broke. Never carries a secret.
    Authentication {
        /// The SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, ...).
        mechanism: &'static str,
        /// What went wrong (the broker's message when it gave one).
        message: Arc<str>,
    },
    /// The TLS layer failed: the handshake was refused or did not finish,
    /// the broker's certificate was not trusted, or one side did not speak
    /// TLS.
    Tls {
        /// What kind of TLS failure.
        kind: TlsFailure,
        /// The driver's description.
        message: Arc<str>,
    },
}

/// The kind of a [`LastError::Tls`] failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate chain does not lead to a trusted CA
    /// (`ssl.ca.location` / the system trust store).
    UntrustedCertificate,
    /// The broker's certificate is not valid for the name (or IP address)
    /// kring connected to (`ssl.endpoint.identification.algorithm=https`).
    HostnameMismatch,
    /// The broker's certificate is otherwise unacceptable (expired, not yet
    /// valid, wrong usage, revoked, malformed).
    InvalidCertificate,
    /// The broker refused the handshake with a TLS alert (for example it
    /// requires a client certificate, or does not trust ours).
    Refused,
    /// kring speaks TLS but the broker does not: it answered with bytes
    /// that are not TLS, or closed the connection during the handshake
    /// (a `PLAINTEXT` listener, or `security.protocol` should not be `SSL`).
    PeerNotTls,
    /// kring speaks plaintext but the broker answered with TLS: the
    /// listener expects `security.protocol=SSL` (or `SASL_SSL`).
    PeerExpectsTls,
    /// The handshake did not finish within the attempt's connect timeout
    /// (`socket.connection.setup.timeout.ms`, grown per failed attempt up
    /// to `socket.connection.setup.timeout.max.ms`).
    HandshakeTimeout,
    /// Any other TLS protocol error.
    Protocol,
}

impl LastError {
    /// A broker error without a message.
    pub fn broker(code: ErrorCode) -> Self {
        LastError::Broker {
            code,
            message: None,
        }
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastError::Connect { message, .. } => write!(f, "connect failed: {message}"),
            LastError::Disconnected { message } => write!(f, "disconnected: {message}"),
            LastError::Broker { code, message } => {
                write!(f, "{} (error code {})", code.name(), code.code())?;
                match message {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            LastError::Authentication { mechanism, message } => {
                write!(f, "SASL {mechanism} authentication failed: {message}")
            }
            LastError::Tls { message, .. } => write!(f, "TLS failed: {message}"),
        }
    }
}

/// `Some(e)` as "e", `None` as "none", for error messages.
pub(crate) struct OrNone<'a>(pub(crate) &'a Option<LastError>);

impl fmt::Display for OrNone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => e.fmt(f),
            None => f.write_str("none"),
        }
    }
}
