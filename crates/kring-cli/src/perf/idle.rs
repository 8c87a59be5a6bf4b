//! `kring perf --idle`: how often an idle producer's threads wake up. kring
//! reports its I/O thread's own wake-up counter; for both clients the
//! voluntary context switches of every thread (from /proc) cross-check it.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::measure::ThreadSwitches;

/// How long an idle measurement waits after the warm-up before its window
/// opens.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Wake-ups of one thread in the idle window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadWakeups {
    /// Thread name.
    pub name: String,
    /// Voluntary context switches (blocked, then woken).
    pub voluntary: u64,
    /// Involuntary context switches (preempted).
    pub involuntary: u64,
}

/// The outcome of an idle measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleResult {
    /// `kring` or `librdkafka`.
    pub client: String,
    /// Length of the idle window, seconds.
    pub seconds: f64,
    /// kring's own count of I/O-thread wake-ups in the window.
    pub io_wakeups: Option<u64>,
    /// Every thread of the client process except the harness's main thread.
    pub threads: Vec<ThreadWakeups>,
}

impl IdleResult {
    /// Builds the result from per-thread switch deltas.
    pub fn new(
        client: &str,
        window: Duration,
        io_wakeups: Option<u64>,
        threads: Vec<ThreadSwitches>,
    ) -> Self {
        IdleResult {
            client: client.into(),
            seconds: window.as_secs_f64(),
            io_wakeups,
            threads: threads
                .into_iter()
                .map(|t| ThreadWakeups {
                    name: t.name,
                    voluntary: t.voluntary,
                    involuntary: t.involuntary,
                })
                .collect(),
        }
    }

    /// Voluntary switches of all listed threads together.
    pub fn total_voluntary(&self) -> u64 {
        self.threads.iter().map(|t| t.voluntary).sum()
    }

    /// Human-readable report.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let per_s = |n: u64| n as f64 / self.seconds.max(1e-9);
        let _ = writeln!(s, "{} idle for {:.1}s:", self.client, self.seconds);
        if let Some(w) = self.io_wakeups {
            let _ = writeln!(
                s,
                "  I/O thread wake-ups (kring's counter): {w} ({:.2}/s)",
                per_s(w)
            );
        }
        for t in &self.threads {
            let _ = writeln!(
                s,
                "  thread {:<16} voluntary switches {:>6} ({:.2}/s), involuntary {}",
                t.name,
                t.voluntary,
                per_s(t.voluntary),
                t.involuntary
            );
        }
        let total = self.total_voluntary();
        let _ = writeln!(
            s,
            "  all client threads: {total} wake-ups ({:.2}/s)",
            per_s(total)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_report() {
        let t = |name: &str, v| ThreadSwitches {
            tid: 1,
            name: name.into(),
            voluntary: v,
            involuntary: 1,
        };
        let r = IdleResult::new(
            "librdkafka",
            Duration::from_secs(10),
            None,
            vec![t("rdk:main", 10), t("rdk:broker1", 30)],
        );
        assert_eq!(r.total_voluntary(), 40);
        let text = r.report();
        assert!(
            text.contains("all client threads: 40 wake-ups (4.00/s)"),
            "{text}"
        );
    }
}
