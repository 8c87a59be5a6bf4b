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

/// The CPU's time-stamp counter, where it is a clock to trust: on x86-64,
/// when the kernel itself keeps time with it (its clocksource is `tsc`,
/// which it picks only for a counter that is invariant and in step across
/// CPUs). `None` elsewhere; callers then read [`monotonic_ns`].
///
/// Why: reading `CLOCK_MONOTONIC` costs ~23 ns here (the vDSO orders its
/// counter read with a fence and scales it), about a fifth of a record's
/// whole cost at 16 partitions; a bare counter read is under half that,
/// and a record's millisecond timestamp needs only to know whether the
/// millisecond has changed (see the producer's `wall_clock`).
#[inline(always)]
pub(crate) fn tsc() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        if tsc_is_clock() {
            // SAFETY: RDTSC exists on every x86-64 CPU, reads a register and
            // touches no memory; `_rdtsc` is unsafe only as an intrinsic.
            #[allow(unused_unsafe)]
            return Some(unsafe { core::arch::x86_64::_rdtsc() });
        }
    }
    None
}

/// Whether the kernel's clocksource is the TSC: 0 not read yet, 1 the
/// TSC, 2 something else.
#[cfg(target_arch = "x86_64")]
static TSC_STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether the kernel's clocksource is the TSC (read once).
///
/// Always inlined, its first call's file read kept out of line: with the
/// read inside, the sending thread's timestamp (`WallClock::now_ms`, on
/// every record) was a call of its own instead of being inlined into
/// `Producer::produce` (BENCHMARKS.md, "Per-record cost").
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tsc_is_clock() -> bool {
    match TSC_STATE.load(std::sync::atomic::Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => read_tsc_is_clock(),
    }
}

/// [`tsc_is_clock`]'s first call: reads the clocksource.
#[cfg(target_arch = "x86_64")]
#[cold]
#[inline(never)]
fn read_tsc_is_clock() -> bool {
    let tsc =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc");
    TSC_STATE.store(
        if tsc { 1 } else { 2 },
        std::sync::atomic::Ordering::Relaxed,
    );
    tsc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Work the optimizer cannot fold away: tens of microseconds.
    fn busy() {
        for i in 0..100_000u64 {
            std::hint::black_box(i);
        }
    }

    /// Readings advance with `Instant`, within the time between the reads.
    #[test]
    fn follows_instant() {
        let i0 = Instant::now();
        let m0 = monotonic_ns();
        busy();
        let m1 = monotonic_ns();
        let i1 = Instant::now();
        let mono = Duration::from_nanos(m1 - m0);
        assert!(mono <= i1 - i0, "{mono:?} > {:?}", i1 - i0);
        assert!(m1 > m0, "a nanosecond clock moves over 100,000 iterations");
    }

    /// The counter is read exactly where the kernel keeps time with it,
    /// and it counts.
    #[test]
    fn the_tsc_is_read_where_the_kernel_keeps_time_with_it() {
        let source = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .unwrap_or_default();
        let t0 = tsc();
        assert_eq!(
            t0.is_some(),
            cfg!(target_arch = "x86_64") && source.trim() == "tsc",
            "clocksource {source:?}"
        );
        if let Some(t0) = t0 {
            busy();
            let t1 = tsc().expect("still the clock");
            assert!(t1 > t0 + 1_000, "{t0} then {t1}");
        }
    }
}
