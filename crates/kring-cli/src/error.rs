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
