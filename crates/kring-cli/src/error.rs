//! The CLI's error type: every failure a user can cause ends here with a
//! message that says what to fix, and `main` turns it into a non-zero exit.

use std::io;

/// Everything that can make a `kring` subcommand fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A command-line value could not be understood.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArg {
        /// Which argument (for example "duration").
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Reading input or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// librdkafka refused a configuration or an operation.
    #[error("librdkafka: {0}")]
    Rdkafka(String),
    /// The kring producer failed to start or to finish.
    #[error("kring: {0}")]
    Kring(String),
    /// The command line is incomplete or contradicts itself.
    #[error("{0} (see --help)")]
    Usage(String),
    /// The topic's metadata did not arrive within `-m`: no broker answered,
    /// or the brokers refused the topic. The cause is in `error`.
    #[error("no usable metadata from {brokers} within {waited:?}: {error}")]
    Metadata {
        /// The bootstrap brokers asked.
        brokers: String,
        /// How long `kring produce` waited (`-m`).
        waited: std::time::Duration,
        /// kring's error, with the last cause (for example connection
        /// refused) as a typed [`kring::LastError`].
        #[source]
        error: kring::SendError,
    },
    /// A child process (broker or measured client) misbehaved.
    #[error("{0}")]
    Child(String),
    /// Some records of `kring produce` were not delivered (details already printed).
    #[error("{failed} of {total} records failed")]
    RecordsFailed {
        /// Records that got an error.
        failed: u64,
        /// Records read from the input.
        total: u64,
    },
}

impl CliError {
    /// Wraps an I/O error with what was being done when it happened.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// A rejected command-line value.
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        CliError::InvalidArg {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
