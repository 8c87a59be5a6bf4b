//! The monotonic clock read directly, for the one clock read of a `send`.
//!
//! Why not `Instant::now()`: a send needs the time as a number (the
//! record's wall-clock timestamp is derived from it, see the producer's
//! `wall_clock`), and an `Instant` can only be turned into one through
//! `duration_since`, which with the `Instant::now` around it was a tenth of
//! a send's instructions. `Instant` reads the same clock
//! (`CLOCK_MONOTONIC` on Linux), so readings taken here and `Instant`s
//! agree up to the constant offset measured once at start.

/// `CLOCK_MONOTONIC` in nanoseconds.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
    // call, and `clock_gettime` writes nothing else. CLOCK_MONOTONIC exists
    // on every Linux kernel, so the call cannot fail (a failure would leave
    // `ts` at zero, a reading in the past, never memory unsafety).
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(r, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Readings advance with `Instant`, within the time between the reads.
    #[test]
    fn follows_instant() {
        let i0 = Instant::now();
        let m0 = monotonic_ns();
        std::hint::black_box((0..100_000u64).sum::<u64>());
        let m1 = monotonic_ns();
        let i1 = Instant::now();
        let mono = Duration::from_nanos(m1 - m0);
        assert!(mono <= i1 - i0, "{mono:?} > {:?}", i1 - i0);
        assert!(m1 >= m0);
    }
}
