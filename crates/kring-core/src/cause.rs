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
    Broker(ErrorCode),
    /// SASL authentication failed: the broker refused the mechanism or the
    /// credentials, or the exchange broke. Never carries a secret.
    Authentication {
        /// The SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, ...).
        mechanism: &'static str,
        /// What went wrong (the broker's message when it gave one).
        message: Arc<str>,
    },
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastError::Connect { message, .. } => write!(f, "connect failed: {message}"),
            LastError::Disconnected { message } => write!(f, "disconnected: {message}"),
            LastError::Broker(e) => write!(f, "{} (error code {})", e.name(), e.code()),
            LastError::Authentication { mechanism, message } => {
                write!(f, "SASL {mechanism} authentication failed: {message}")
            }
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
