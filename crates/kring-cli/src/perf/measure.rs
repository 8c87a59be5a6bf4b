//! What a run measures about its own process: CPU time (getrusage
//! RUSAGE_SELF, so every thread of the client and nothing of the broker),
//! peak RSS, per-thread context switches from /proc, and the delivery
//! counters and latency histogram the delivery callbacks feed.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// User and system CPU time of this whole process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// User-mode CPU seconds.
    pub user: f64,
    /// Kernel-mode CPU seconds.
    pub sys: f64,
}

fn usage() -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru
}

fn tv_secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6
}

impl CpuTime {
    /// CPU time used by every thread of this process so far.
    pub fn now() -> Self {
        let ru = usage();
        CpuTime {
            user: tv_secs(ru.ru_utime),
            sys: tv_secs(ru.ru_stime),
        }
    }

    /// CPU time spent since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }

    /// User plus system seconds.
    pub fn total(self) -> f64 {
        self.user + self.sys
    }
}

/// Peak resident set size of this process, in bytes.
pub fn max_rss_bytes() -> u64 {
    // ru_maxrss is in kilobytes on Linux.
    (usage().ru_maxrss.max(0) as u64) * 1024
}

/// Context switches of one thread of this process, from /proc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSwitches {
    /// Kernel thread id.
    pub tid: u32,
    /// Thread name (`comm`).
    pub name: String,
    /// Times the thread blocked and was woken (a wake-up, for an event loop).
    pub voluntary: u64,
    /// Times it was preempted.
    pub involuntary: u64,
}

/// Every live thread of this process: its kernel id and its
/// `/proc/self/task/<tid>` directory (none if /proc is unreadable).
fn threads() -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
}

/// Reads voluntary and involuntary context switches of every thread of
/// this process from /proc/self/task/*/status.
pub fn thread_switches() -> Vec<ThreadSwitches> {
    let mut out = Vec::new();
    for (tid, path) in threads() {
        let name = std::fs::read_to_string(path.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue;
        };
        let (voluntary, involuntary) = parse_switches(&status);
        out.push(ThreadSwitches {
            tid,
            name,
            voluntary,
            involuntary,
        });
    }
    out.sort_by_key(|t| t.tid);
    out
}

fn parse_switches(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// Per-thread switches between two snapshots; threads that exist in both.
pub fn switch_deltas(before: &[ThreadSwitches], after: &[ThreadSwitches]) -> Vec<ThreadSwitches> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.tid == a.tid)?;
            Some(ThreadSwitches {
                tid: a.tid,
                name: a.name.clone(),
                voluntary: a.voluntary - b.voluntary.min(a.voluntary),
                involuntary: a.involuntary - b.involuntary.min(a.involuntary),
            })
        })
        .collect()
}

/// CPU time (user + system) of one thread of this process, from /proc.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadCpu {
    /// Kernel thread id.
    pub tid: u32,
    /// Thread name (`comm`).
    pub name: String,
    /// Seconds of CPU so far.
    pub seconds: f64,
}

/// Reads the CPU time of every live thread of this process from
/// /proc/self/task/*/stat (clock-tick resolution, 10 ms on most kernels).
pub fn thread_cpu() -> Vec<ThreadCpu> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = Vec::new();
    for (tid, path) in threads() {
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if let Some((name, ticks)) = parse_stat(&stat) {
            out.push(ThreadCpu {
                tid,
                name,
                seconds: ticks as f64 / tick,
            });
        }
    }
    out.sort_by_key(|t| t.tid);
    out
}

/// The name and utime + stime (in ticks) of a `/proc/.../stat` line.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// One line of per-thread CPU between two snapshots, for stderr: each
/// thread alive at the end with its seconds and share of `total` (the
/// process's CPU over the same window), then what threads that exited
/// meanwhile used (the rest of `total`).
pub fn thread_cpu_report(before: &[ThreadCpu], after: &[ThreadCpu], total: f64) -> String {
    let mut parts = Vec::new();
    let mut listed = 0.0;
    for a in after {
        let b = before
            .iter()
            .find(|b| b.tid == a.tid)
            .map_or(0.0, |b| b.seconds);
        let d = (a.seconds - b).max(0.0);
        listed += d;
        if d > 0.0 {
            parts.push(format!("{}={:.2}s", a.name, d));
        }
    }
    let exited = (total - listed).max(0.0);
    if exited >= 0.01 {
        parts.push(format!("exited-threads={exited:.2}s"));
    }
    format!("thread cpu (of {total:.2}s): {}", parts.join(" "))
}

/// Counters and the latency histogram shared by the sending thread, the
/// delivery callbacks and the progress printer.
///
/// Latency is sampled: the records sent right after the sending loop reads
/// the clock (one in [`SendLoop::CLOCK_EVERY`](super::workload::SendLoop::CLOCK_EVERY))
/// carry their send time and are timed at delivery; the others are only
/// counted. Both clients are measured the same way, so neither pays a
/// clock read per record for the harness's sake.
///
/// `sent` (the sending thread's, once per record) and `acked` (the
/// delivery thread's, once per record) sit on cache lines of their own:
/// side by side, an increment of one would take the line from the other
/// thread's core, a cost per record the harness would add to both
/// clients.
pub struct Stats {
    /// The instant every latency and timestamp is measured from.
    pub epoch: Instant,
    /// Records handed to the client.
    pub sent: OwnLine<AtomicU64>,
    /// Records acknowledged by the broker.
    pub acked: OwnLine<AtomicU64>,
    /// Records that failed.
    pub failed: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

/// A value alone on its cache lines (128 bytes: the line and the one the
/// adjacent-line prefetcher pairs with it).
#[repr(align(128))]
pub struct OwnLine<T>(pub T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Stats {
    /// Fresh counters, with `epoch` = now, living for the rest of the
    /// process: a measuring process runs one measurement, and delivery
    /// callbacks on other threads then hold a plain reference instead of
    /// touching a reference count per record.
    pub fn leak() -> &'static Self {
        Box::leak(Box::new(Stats {
            epoch: Instant::now(),
            sent: OwnLine(AtomicU64::new(0)),
            acked: OwnLine(AtomicU64::new(0)),
            failed: AtomicU64::new(0),
            // 1 µs to 10 min at 3 significant digits.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            ),
            first_error: Mutex::new(None),
        }))
    }

    /// Nanoseconds from `epoch` to now: what a send stamps on its record.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Records one successful delivery of a record whose latency is not
    /// sampled.
    #[inline]
    pub fn acked(&self) {
        self.acked.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one successful delivery of a sampled record sent at
    /// `sent_ns` (nanoseconds after `epoch`): its latency goes into the
    /// histogram.
    #[inline]
    pub fn delivered_sample(&self, sent_ns: u64) {
        let us = (self.now_ns().saturating_sub(sent_ns) / 1000).max(1);
        self.acked.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.latency.lock() {
            h.saturating_record(us);
        }
    }

    /// Records a failed delivery and keeps the first error's text.
    pub fn failed(&self, error: impl FnOnce() -> String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.first_error.lock() {
            if e.is_none() {
                *e = Some(error());
            }
        }
    }

    /// The first delivery error, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Latency percentiles in milliseconds: (p50, p99, p99.9, max).
    pub fn latency_ms(&self) -> (f64, f64, f64, f64) {
        let h = self.latency.lock().expect("latency histogram lock");
        if h.is_empty() {
            return (0.0, 0.0, 0.0, 0.0);
        }
        let ms = |us: u64| us as f64 / 1000.0;
        (
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        )
    }

    /// Waits until every sent record has a result, or `timeout` passes;
    /// returns whether all arrived.
    pub fn wait_all_done(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.acked.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
            if done >= self.sent.load(Ordering::Relaxed) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Prints a progress line to stderr about once a second until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing for `label` (the client name) from `stats`.
    pub fn start(label: &str, stats: &'static Stats) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let label = label.to_string();
        let handle = std::thread::Builder::new()
            .name("perf-progress".into())
            .spawn(move || {
                let tty = std::io::stderr().is_terminal();
                let start = Instant::now();
                let mut last_acked = 0;
                let mut last = start;
                let mut printed = false;
                while !stop2.load(Ordering::Relaxed) {
                    // Sleep in short steps so that the end of a run is not delayed.
                    let tick = last + Duration::from_secs(1);
                    while Instant::now() < tick && !stop2.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let now = Instant::now();
                    let acked = stats.acked.load(Ordering::Relaxed);
                    let rate = (acked - last_acked) as f64 / now.duration_since(last).as_secs_f64();
                    let line = format!(
                        "[{label}] {:5.1}s  sent {:>11}  acked {:>11}  failed {}  {:>9.0} msgs/s",
                        now.duration_since(start).as_secs_f64(),
                        stats.sent.load(Ordering::Relaxed),
                        acked,
                        stats.failed.load(Ordering::Relaxed),
                        rate
                    );
                    let mut err = std::io::stderr().lock();
                    let _ = if tty {
                        write!(err, "\r{line}\x1b[K")
                    } else {
                        writeln!(err, "{line}")
                    };
                    let _ = err.flush();
                    printed = true;
                    last_acked = acked;
                    last = now;
                }
                if tty && printed {
                    let _ = writeln!(std::io::stderr());
                }
            })
            .ok();
        Progress { stop, handle }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let line = "4242 (kring io) S 1 2 3 4 5 6 7 8 9 10 170 33 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("kring io".to_string(), 203)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn own_thread_cpu_is_read() {
        let me = thread_cpu();
        assert!(!me.is_empty());
        let report = thread_cpu_report(&[], &me, 1e6);
        assert!(report.contains("exited-threads="), "{report}");
    }

    #[test]
    fn parses_proc_status() {
        let s = "Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_switches(s), (17, 3));
        assert_eq!(parse_switches(""), (0, 0));
    }

    #[test]
    fn own_threads_are_listed() {
        let t = thread_switches();
        let me = std::process::id();
        assert!(t.iter().any(|t| t.tid == me), "main thread missing: {t:?}");
    }

    #[test]
    fn deltas_match_threads_by_id() {
        let a = |tid, v| ThreadSwitches {
            tid,
            name: "n".into(),
            voluntary: v,
            involuntary: 0,
        };
        let d = switch_deltas(&[a(1, 5), a(2, 9)], &[a(1, 8), a(3, 4)]);
        assert_eq!(d, vec![a(1, 3)]);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let t0 = CpuTime::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(CpuTime::now().since(t0).total() > 0.0);
    }

    #[test]
    fn stats_count_and_percentiles() {
        let s = Stats::leak();
        s.sent.store(3, Ordering::Relaxed);
        s.delivered_sample(0);
        s.acked();
        s.failed(|| "boom".into());
        s.failed(|| "second".into());
        assert_eq!(s.acked.load(Ordering::Relaxed), 2);
        assert_eq!(s.first_error().as_deref(), Some("boom"));
        assert!(s.wait_all_done(Duration::ZERO));
        let (p50, p99, p999, max) = s.latency_ms();
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max);
    }
}
