//! Deterministic simulation harness (placeholder for base instant).
use std::time::Instant;
/// A fixed starting instant for simulated time.
#[allow(clippy::disallowed_methods)] // the one clock read: the origin of simulated time
pub fn base_instant() -> Instant {
    Instant::now()
}
