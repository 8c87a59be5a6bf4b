//! The one clock read of kring-core's unit tests: an origin for simulated
//! time. Test-only (`cfg(test)`): the crate itself never reads the clock,
//! so sims and unit tests need a real `Instant` to start from, and after
//! that time only moves when a test moves it.

use std::time::Instant;

/// A real instant to start simulated time from.
#[allow(clippy::disallowed_methods)] // see the module doc: tests only
pub(crate) fn origin() -> Instant {
    Instant::now()
}
