//! Exponential backoff with jitter, and the small seeded PRNG behind it.
//!
//! Why jitter: when a broker fails, every partition it led fails at once;
//! without jitter their retries would arrive together again. Why a seeded
//! PRNG of our own: the core must be deterministic under the `Sim` harness
//! (same seed, same schedule), and SplitMix64 is ten lines.

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, well-mixed 64-bit
/// generator. Not cryptographic; used for jitter and partition choice.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, n)` (`n > 0`), by multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// A uniform float in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `initial * 2^attempt`, capped at `max`, then multiplied by a random
/// factor in `[1 - jitter, 1 + jitter]` (and capped at `max` again), as the
/// Java client's `ExponentialBackoff` with multiplier 2 and jitter 0.2. With
/// no room to grow (`max` not above `initial`) every backoff is exactly
/// `max`, without jitter, as in Java.
#[derive(Debug, Clone, Copy)]
pub struct ExponentialBackoff {
    /// The first backoff (`retry.backoff.ms`).
    pub initial: Duration,
    /// The cap (`retry.backoff.max.ms`).
    pub max: Duration,
    /// Relative jitter, 0.2 for ±20%.
    pub jitter: f64,
}

impl ExponentialBackoff {
    /// The backoff before retry number `attempt` (0 for the first retry).
    pub fn backoff(&self, attempt: u32, rng: &mut SplitMix64) -> Duration {
        // No room to grow: the Java client's `ExponentialBackoff` then
        // gives `max` every time, unjittered (checked against
        // kafka-clients 4.4: initial 60 s or 30 s, max 30 s, give 30 s).
        if self.max <= self.initial {
            return self.max;
        }
        let (initial, max) = (self.initial, self.max);
        if initial.is_zero() {
            return Duration::ZERO;
        }
        let exp = attempt.min(32);
        let term = initial.as_secs_f64() * f64::powi(2.0, exp as i32);
        let term = term.min(max.as_secs_f64());
        let factor = 1.0 - self.jitter + rng.unit() * 2.0 * self.jitter;
        let v = (term * factor).min(max.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(v)
    }
}

/// The connect timeout of each attempt to one broker address, as the Java
/// client's connection setup timeout (`ClusterConnectionStates`): `base`
/// (`socket.connection.setup.timeout.ms`) for an attempt after none
/// failed, doubled for each consecutive failed attempt, with ±20 % jitter,
/// capped at `max` (`socket.connection.setup.timeout.max.ms`). A `max` not
/// above `base` is every attempt's timeout, without jitter: the Java
/// client's `ExponentialBackoff` then gives a constant `max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectTimeout {
    /// `socket.connection.setup.timeout.ms`.
    pub(crate) base: Duration,
    /// `socket.connection.setup.timeout.max.ms`.
    pub(crate) max: Duration,
}

impl ConnectTimeout {
    /// The timeout of an attempt that follows `failed` consecutive failed
    /// attempts to the same address.
    pub(crate) fn attempt(&self, failed: u32, rng: &mut SplitMix64) -> Duration {
        ExponentialBackoff {
            initial: self.base,
            max: self.max,
            jitter: 0.2,
        }
        .backoff(failed, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_spread() {
        let mut a = SplitMix64::new(1);
        let mut b = SplitMix64::new(1);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // Reference value of SplitMix64 seeded with 0: first output.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut hist = [0u32; 8];
        let mut r = SplitMix64::new(99);
        for _ in 0..80_000 {
            hist[r.below(8) as usize] += 1;
        }
        for h in hist {
            assert!((9_000..11_000).contains(&h), "{hist:?}");
        }
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_within_20_percent() {
        let b = ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            jitter: 0.2,
        };
        let mut rng = SplitMix64::new(5);
        for (attempt, base_ms) in [(0u32, 100.0f64), (1, 200.0), (2, 400.0), (3, 800.0)] {
            let (mut lo, mut hi) = (f64::MAX, 0.0f64);
            for _ in 0..200 {
                let d = b.backoff(attempt, &mut rng).as_secs_f64() * 1000.0;
                assert!(
                    d >= base_ms * 0.8 - 1e-6 && d <= base_ms * 1.2 + 1e-6,
                    "{attempt}: {d}"
                );
                (lo, hi) = (lo.min(d), hi.max(d));
            }
            // The whole ±20 % is used, both sides of the base.
            assert!(
                lo < base_ms * 0.85 && hi > base_ms * 1.15,
                "{attempt}: {lo}..{hi}"
            );
        }
        let mut seen_low = false;
        for _ in 0..200 {
            let d = b.backoff(10, &mut rng);
            assert!(d <= Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(800));
            seen_low |= d < Duration::from_millis(900);
        }
        assert!(seen_low, "jitter applies at the cap too");
        let zero = ExponentialBackoff {
            initial: Duration::ZERO,
            ..b
        };
        assert_eq!(zero.backoff(3, &mut rng), Duration::ZERO);
        // No room to grow: exactly the max, every attempt.
        for initial in [1000, 2000] {
            let flat = ExponentialBackoff {
                initial: Duration::from_millis(initial),
                ..b
            };
            for attempt in [0, 1, 9] {
                assert_eq!(flat.backoff(attempt, &mut rng), Duration::from_millis(1000));
            }
        }
    }

    /// The connect timeout doubles per failed attempt within ±20 %, stays
    /// at its cap (jittered below it), and is a constant `max` when `max`
    /// is not above `base` (Java's rule: no growth, no jitter).
    #[test]
    fn connect_timeout_doubles_to_its_cap_and_is_constant_without_room() {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let t = ConnectTimeout {
            base: Duration::from_millis(1000),
            max: Duration::from_millis(30_000),
        };
        let mut rng = SplitMix64::new(7);
        for (failed, nominal) in [(0u32, 1000.0), (1, 2000.0), (2, 4000.0), (3, 8000.0)] {
            for _ in 0..100 {
                let d = ms(t.attempt(failed, &mut rng));
                assert!(
                    (nominal * 0.8 - 1e-6..=nominal * 1.2 + 1e-6).contains(&d),
                    "{failed}: {d}"
                );
            }
        }
        for failed in [5, 6, 40, u32::MAX] {
            let d = ms(t.attempt(failed, &mut rng));
            assert!((24_000.0 - 1e-6..=30_000.0).contains(&d), "{failed}: {d}");
        }
        for (base, max) in [(60_000, 30_000), (30_000, 30_000)] {
            let t = ConnectTimeout {
                base: Duration::from_millis(base),
                max: Duration::from_millis(max),
            };
            for failed in [0, 1, 7] {
                assert_eq!(t.attempt(failed, &mut rng), Duration::from_millis(max));
            }
        }
    }
}
