//! Errors at the public boundary.
//!
//! Sending and delivery errors are the core's own types (re-exported from
//! the crate root: `SendError`, `DeliveryError`); only building a producer
//! can fail in ways that belong to this crate (configuration, io_uring).

use crate::config::ConfigError;
use crate::driver::DriverError;

/// Why a [`Producer`](crate::Producer) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The I/O thread could not start (for example, io_uring is blocked).
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// No OAUTHBEARER token could be fetched from the token endpoint
    /// (`sasl.oauthbearer.token.endpoint.url`) within
    /// `sasl.login.retry.backoff.max.ms`: the endpoint refused the
    /// client's credentials, could not be reached, or answered with no
    /// valid token. The message never shows the client secret or a token.
    #[error("OAUTHBEARER login failed: {0}")]
    Login(String),
}

impl From<kring_core::ConfigError> for BuildError {
    fn from(e: kring_core::ConfigError) -> Self {
        BuildError::Config(e.into())
    }
}
