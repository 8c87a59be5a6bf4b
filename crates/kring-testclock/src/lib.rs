//! A real `Instant` to start simulated time from.
//!
//! Why a crate of its own: kring-core and kring-protocol never read the
//! clock (time comes in as `now: Instant`, and their `clippy.toml` forbids
//! `Instant::now`), yet std can only make an `Instant` by reading the clock.
//! Their tests and benches need one real instant as the origin of simulated
//! time; after that, time moves only when a test moves it. Keeping that one
//! read here, as a dev-dependency, keeps it out of the sans-IO crates'
//! source entirely.

use std::time::Instant;

/// A real instant, for the origin of simulated time.
pub fn origin() -> Instant {
    Instant::now()
}
