//! Record timestamps without a second clock read per `send`.
//!
//! Why: `send` needs the monotonic clock anyway (for `max.block.ms` and the
//! core's linger deadlines), and a record sent without a timestamp needs the
//! wall clock in milliseconds, as the Java client's
//! `System.currentTimeMillis()`. Reading both per record was an eighth of
//! the sending thread's time. Instead the wall clock is *derived* from the
//! monotonic reading: `wall = mono + offset`, with the offset measured at an
//! anchor (one `SystemTime::now()` next to an `Instant`) and re-measured
//! when the anchor is [`REANCHOR`] old.
//!
//! How close it stays: Linux slews `CLOCK_MONOTONIC` and `CLOCK_REALTIME`
//! at the same NTP-adjusted rate, so between anchors the two do not drift
//! apart; the derived value is within the anchor's own read gap (well under
//! a microsecond) of `SystemTime::now()`, i.e. the same millisecond or, at a
//! millisecond boundary, one off. Only a *step* of the wall clock
//! (`settimeofday`, an NTP step) shows late: for at most [`REANCHOR`] the
//! timestamps keep to the old time base. That is the trade: Kafka tolerates
//! far larger skew (`message.timestamp.difference.max.ms`).
//!
//! Shared by every sending thread without a lock: the anchor is an atomic
//! offset plus the atomic time it was taken. A reader that sees a new time
//! with the old offset (or the reverse) still gets a valid estimate, since
//! both offsets are; only one thread re-anchors at a time.
//!
//! Why a record's timestamp usually reads no clock at all
//! ([`now_ms`](WallClock::now_ms)): even one `CLOCK_MONOTONIC` read per
//! record was ~23 ns on the 2-core VM, a fifth of a record's whole cost at
//! 16 partitions, and the timestamp changes only once a millisecond. Where
//! the CPU's time-stamp counter is the kernel's own clock (see
//! `driver::clock::tsc`), each thread remembers the millisecond it last
//! read and the counter value at which the next one starts (a little
//! early: the counter's rate is measured once, and taken a per cent
//! slower); until then a record costs a counter read and a compare. A
//! send that opens a batch or blocks reads the monotonic clock itself (it
//! needs an `Instant`).

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::driver::clock;

/// How old an anchor may get before the next reading re-measures it.
pub(crate) const REANCHOR: Duration = Duration::from_secs(1);

/// Wall-clock milliseconds derived from monotonic readings.
#[derive(Debug)]
pub(crate) struct WallClock {
    /// Monotonic readings are kept as nanoseconds since this instant.
    base: Instant,
    /// Wall-clock ns since the Unix epoch minus monotonic ns since `base`,
    /// at the last anchor.
    offset_ns: AtomicI64,
    /// Monotonic ns since `base` when the anchor was taken.
    anchored_at_ns: AtomicU64,
    /// The raw `CLOCK_MONOTONIC` reading (ns) taken right after `base`:
    /// [`read`](Self::read) is ns since `base` without an `Instant`.
    base_raw_ns: u64,
}

/// The millisecond a thread last read, and the time-stamp counter values
/// between which it holds.
#[derive(Debug, Clone, Copy)]
struct MsSpan {
    /// The [`WallClock`] that read it (its address).
    clock: usize,
    from: u64,
    until: u64,
    ms: i64,
}

thread_local! {
    static SPAN: Cell<MsSpan> = const {
        Cell::new(MsSpan { clock: 0, from: 0, until: 0, ms: 0 })
    };
}

/// Time-stamp counter ticks per millisecond, a per cent under the rate
/// measured (so a span ends early rather than late); 0 until measured.
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

/// The first (counter, raw monotonic ns) pair read, to measure the rate
/// against once [`CALIBRATION`] has passed.
static FIRST_READING: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// How far apart the two readings that measure the counter's rate are, at
/// least.
const CALIBRATION: Duration = Duration::from_millis(50);

/// The counter's ticks per millisecond (see [`TICKS_PER_MS`]) given a
/// reading of the counter `tsc` taken just before the raw monotonic clock
/// read `raw_ns`; 0 while not known yet.
fn ticks_per_ms(tsc: u64, raw_ns: u64) -> u64 {
    let known = TICKS_PER_MS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let mut first = FIRST_READING.lock().unwrap_or_else(|e| e.into_inner());
    let Some((tsc0, raw0)) = *first else {
        *first = Some((tsc, raw_ns));
        return 0;
    };
    let elapsed_ns = raw_ns.saturating_sub(raw0);
    if elapsed_ns < CALIBRATION.as_nanos() as u64 || tsc <= tsc0 {
        return 0;
    }
    let per_ms = u128::from(tsc - tsc0) * 1_000_000 / u128::from(elapsed_ns);
    let per_ms = u64::try_from(per_ms * 99 / 100).unwrap_or(0);
    TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    per_ms
}

/// The span of counter values, from `tsc` on, within the millisecond that
/// `wall_ns` (read just after `tsc`) is in, at `per_ms` ticks per ms: it
/// ends no later than that millisecond does.
fn span_until(tsc: u64, wall_ns: i64, per_ms: u64) -> u64 {
    let left_ns = 1_000_000 - wall_ns.rem_euclid(1_000_000) as u64;
    tsc.saturating_add((u128::from(left_ns) * u128::from(per_ms) / 1_000_000) as u64)
}

/// Nanoseconds since the Unix epoch; negative before 1970, saturating far
/// outside ±292 years.
fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// An `Instant` and a raw monotonic reading (ns) no earlier than it:
/// the raw clock is read on both sides of the `Instant` and the later
/// reading kept, so an `Instant` derived from raw readings never leads the
/// real one; of a few tries, the one with the smallest gap (a preemption
/// between the reads makes one wide).
fn base_pair() -> (Instant, u64) {
    let mut best: Option<(Instant, u64, u64)> = None;
    for _ in 0..8 {
        let r1 = crate::driver::clock::monotonic_ns();
        let i = Instant::now();
        let r2 = crate::driver::clock::monotonic_ns();
        let gap = r2.saturating_sub(r1);
        if best.is_none_or(|(_, _, g)| gap < g) {
            best = Some((i, r2, gap));
        }
        if gap <= 1_000 {
            break;
        }
    }
    let (i, r, _) = best.expect("at least one try");
    (i, r)
}

impl WallClock {
    /// A clock anchored at `now` / `wall`.
    #[cfg(test)]
    pub(crate) fn new(now: Instant, wall: SystemTime) -> Self {
        WallClock::new_raw(now, crate::driver::clock::monotonic_ns(), wall)
    }

    /// A clock anchored at `now` / `wall`, `raw_ns` being the raw monotonic
    /// reading at `now`.
    fn new_raw(now: Instant, raw_ns: u64, wall: SystemTime) -> Self {
        WallClock {
            base: now,
            offset_ns: AtomicI64::new(unix_ns(wall)),
            anchored_at_ns: AtomicU64::new(0),
            base_raw_ns: raw_ns,
        }
    }

    /// A clock anchored at the current time.
    pub(crate) fn start() -> Self {
        let (base, raw) = base_pair();
        WallClock::new_raw(base, raw, SystemTime::now())
    }

    /// The monotonic clock now, as ns since the base: one
    /// `clock_gettime`, no `Instant` arithmetic (see `driver::clock`). It
    /// trails `Instant::now()` by the gap measured around the base
    /// `Instant` at start (about a microsecond, see `base_pair`), never
    /// leads it. Record timestamps do not depend on that gap (the
    /// wall-clock anchor is taken against these readings).
    #[inline]
    pub(crate) fn read(&self) -> u64 {
        crate::driver::clock::monotonic_ns().saturating_sub(self.base_raw_ns)
    }

    /// The `Instant` of a [`read`](Self::read).
    pub(crate) fn instant(&self, mono: u64) -> Instant {
        self.base + Duration::from_nanos(mono)
    }

    /// Wall-clock milliseconds since the Unix epoch at a
    /// [`read`](Self::read) (see [`unix_ms`](Self::unix_ms)).
    #[cfg(test)]
    pub(crate) fn unix_ms_at(&self, mono: u64) -> i64 {
        self.unix_ms_at_with(mono, SystemTime::now)
    }

    fn mono_ns(&self, now: Instant) -> u64 {
        // Before `base` cannot happen for readings taken after `new`, but an
        // `Instant` from elsewhere could be earlier: clamp, don't panic.
        u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Wall-clock milliseconds since the Unix epoch at `now` (0 before
    /// 1970, as records cannot carry earlier times). Reads the system
    /// clock only when the anchor is [`REANCHOR`] old.
    #[inline]
    pub(crate) fn unix_ms(&self, now: Instant) -> i64 {
        self.unix_ms_with(now, SystemTime::now)
    }

    /// [`unix_ms`](Self::unix_ms) with the wall clock supplied (tests drive
    /// it).
    pub(crate) fn unix_ms_with(&self, now: Instant, wall: impl FnOnce() -> SystemTime) -> i64 {
        self.unix_ms_at_with(self.mono_ns(now), wall)
    }

    /// Wall-clock milliseconds since the Unix epoch now, for a record
    /// without a timestamp: from the thread's remembered millisecond while
    /// the time-stamp counter says it still holds (see the module docs),
    /// else from a clock read.
    ///
    /// Always inlined: on every record, and as a call of its own (it was,
    /// with `tsc_is_clock`'s file read inside) it cost the call, its frame
    /// and the caller's record fields saved around it.
    #[inline(always)]
    pub(crate) fn now_ms(&self) -> i64 {
        match clock::tsc() {
            Some(t) => {
                let s = SPAN.get();
                if s.clock == self.id() && t >= s.from && t < s.until {
                    s.ms
                } else {
                    self.now_ms_read(Some(t))
                }
            }
            None => self.now_ms_read(None),
        }
    }

    /// [`now_ms`](Self::now_ms) from a clock read; remembers the
    /// millisecond for the thread when the counter `tsc` (read just
    /// before) can tell when it ends.
    #[cold]
    #[inline(never)]
    fn now_ms_read(&self, tsc: Option<u64>) -> i64 {
        let raw = clock::monotonic_ns();
        let wall_ns = self.unix_ns_at_with(raw.saturating_sub(self.base_raw_ns), SystemTime::now);
        let ms = wall_ns.max(0) / 1_000_000;
        if let Some(t) = tsc {
            let per_ms = ticks_per_ms(t, raw);
            if per_ms != 0 {
                SPAN.set(MsSpan {
                    clock: self.id(),
                    from: t,
                    until: span_until(t, wall_ns, per_ms),
                    ms,
                });
            }
        }
        ms
    }

    /// Tells this clock's remembered milliseconds from another's (each
    /// producer anchors its own).
    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Wall-clock milliseconds since the Unix epoch at a [`read`](Self::read),
    /// the wall clock supplied (see [`unix_ms`](Self::unix_ms)).
    #[inline]
    fn unix_ms_at_with(&self, mono: u64, wall: impl FnOnce() -> SystemTime) -> i64 {
        self.unix_ns_at_with(mono, wall).max(0) / 1_000_000
    }

    /// Wall-clock nanoseconds since the Unix epoch at a
    /// [`read`](Self::read), the wall clock supplied.
    #[inline]
    fn unix_ns_at_with(&self, mono: u64, wall: impl FnOnce() -> SystemTime) -> i64 {
        let anchored = self.anchored_at_ns.load(Ordering::Relaxed);
        let offset = if mono.saturating_sub(anchored) >= REANCHOR.as_nanos() as u64
            && self
                .anchored_at_ns
                .compare_exchange(anchored, mono, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // This thread won the re-anchor; others keep the old offset
            // meanwhile. `now` was read just before `wall()`: the offset is
            // off by their gap, nanoseconds.
            let offset = unix_ns(wall()).saturating_sub(mono as i64);
            self.offset_ns.store(offset, Ordering::Relaxed);
            offset
        } else {
            self.offset_ns.load(Ordering::Relaxed)
        };
        (mono as i64).saturating_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0_MS: u64 = 1_700_000_000_123;

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn derives_wall_time_from_the_monotonic_clock() {
        let base = Instant::now();
        // Anchor 0.4 ms into a millisecond.
        let clock = WallClock::new(base, at_ms(T0_MS) + Duration::from_micros(400));
        let no_wall = || -> SystemTime { panic!("read the wall clock before REANCHOR") };
        assert_eq!(clock.unix_ms_with(base, no_wall), T0_MS as i64);
        // 0.5 ms later: still the same millisecond; 0.6 ms: the next.
        let at = |us| base + Duration::from_micros(us);
        assert_eq!(clock.unix_ms_with(at(500), no_wall), T0_MS as i64);
        assert_eq!(clock.unix_ms_with(at(600), no_wall), T0_MS as i64 + 1);
        assert_eq!(
            clock.unix_ms_with(at(999_999), no_wall),
            T0_MS as i64 + 1000
        );
    }

    #[test]
    fn reanchors_once_the_anchor_is_a_second_old() {
        let base = Instant::now();
        let clock = WallClock::new(base, at_ms(T0_MS));
        let reads = Cell::new(0);
        // The wall clock was stepped forward an hour meanwhile.
        let stepped = |ms| {
            let reads = &reads;
            move || {
                reads.set(reads.get() + 1);
                at_ms(ms)
            }
        };
        let hour = 3_600_000;
        let t = |ms| base + Duration::from_millis(ms);
        assert_eq!(
            clock.unix_ms_with(t(999), stepped(T0_MS + hour + 999)),
            (T0_MS + 999) as i64,
            "before REANCHOR the old time base holds"
        );
        assert_eq!(reads.get(), 0);
        assert_eq!(
            clock.unix_ms_with(t(1000), stepped(T0_MS + hour + 1000)),
            (T0_MS + hour + 1000) as i64
        );
        assert_eq!(reads.get(), 1);
        // The new anchor is used without another read until it is old.
        assert_eq!(
            clock.unix_ms_with(t(1500), stepped(0)),
            (T0_MS + hour + 1500) as i64
        );
        assert_eq!(reads.get(), 1);
        assert_eq!(
            clock.unix_ms_with(t(2000), stepped(T0_MS + hour + 2000)),
            (T0_MS + hour + 2000) as i64
        );
        assert_eq!(reads.get(), 2);
    }

    /// A raw reading and the `Instant`s taken around it give the same
    /// monotonic time and the same millisecond, give or take one.
    #[test]
    fn raw_readings_agree_with_instants() {
        let clock = WallClock::start();
        for _ in 0..1000 {
            let t0 = Instant::now();
            let lo = clock.unix_ms(t0);
            let before = clock.mono_ns(t0);
            let raw = clock.read();
            let t1 = Instant::now();
            let after = clock.mono_ns(t1);
            // Trailing by the start-up gap (about a microsecond; a
            // millisecond allows for a loaded machine), never leading.
            assert!(
                before <= raw + 1_000_000 && raw <= after,
                "{before} {raw} {after}"
            );
            let i = clock.instant(raw);
            assert!(clock.mono_ns(i) == raw);
            // Bracketed by the instants around the reading, so that the
            // thread being preempted widens the window instead of failing.
            let ms = clock.unix_ms_at(raw);
            let hi = clock.unix_ms(t1);
            assert!(lo - 1 <= ms && ms <= hi + 1, "{lo} {ms} {hi}");
        }
    }

    #[test]
    fn times_before_the_epoch_and_before_the_base_clamp() {
        let base = Instant::now() + Duration::from_secs(5);
        let clock = WallClock::new(base, UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(clock.unix_ms_with(base, SystemTime::now), 0);
        // An instant before the base counts as the base.
        let clock = WallClock::new(base, at_ms(T0_MS));
        assert_eq!(
            clock.unix_ms_with(base - Duration::from_secs(1), SystemTime::now),
            T0_MS as i64
        );
    }

    /// A remembered millisecond ends where the millisecond does: at most
    /// the span's share of a millisecond at the counter's rate.
    #[test]
    fn spans_end_with_their_millisecond() {
        // 0.4 ms into a millisecond, 3,000 ticks a ms: 1,800 ticks left.
        assert_eq!(span_until(10, 1_700_000_000_400_000, 3_000), 1_810);
        // On the boundary: the whole millisecond.
        assert_eq!(span_until(10, 1_700_000_000_000_000, 3_000), 3_010);
        assert_eq!(span_until(10, 999_999, 3_000), 10);
        assert_eq!(span_until(u64::MAX - 5, 0, 3_000), u64::MAX);
    }

    /// `now_ms` agrees with a clock read before and after it, over enough
    /// milliseconds that the counter's rate is measured and remembered
    /// milliseconds are used and end (a span that ended late would return
    /// the previous millisecond after a read already saw the next).
    #[test]
    fn now_ms_keeps_to_the_clock_across_milliseconds() {
        let clock = WallClock::start();
        let read = || clock.unix_ms_at(clock.read());
        let start = read();
        let mut seen = 0u32;
        let mut last = 0;
        while read() < start + 150 {
            let before = read();
            let now = clock.now_ms();
            let after = read();
            assert!(
                before <= now && now <= after,
                "{before} <= {now} <= {after}"
            );
            seen += u32::from(now != last);
            last = now;
        }
        assert!(seen >= 20, "only {seen} milliseconds seen");
        if clock::tsc().is_some() {
            assert_ne!(TICKS_PER_MS.load(Ordering::Relaxed), 0, "rate measured");
            assert_eq!(SPAN.get().clock, clock.id(), "a millisecond remembered");
        }
    }

    #[test]
    fn stays_within_a_millisecond_of_the_system_clock() {
        let clock = WallClock::start();
        for _ in 0..1000 {
            let before = unix_ns(SystemTime::now()) / 1_000_000;
            let derived = clock.unix_ms(Instant::now());
            let after = unix_ns(SystemTime::now()) / 1_000_000;
            // Preemption between the reads widens [before, after], never
            // breaks it; the 1 ms slack is the anchor's own read gap landing
            // on a millisecond boundary.
            assert!(
                before - 1 <= derived && derived <= after + 1,
                "{before} <= {derived} <= {after}"
            );
        }
    }
}
