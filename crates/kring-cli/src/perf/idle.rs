//! `kring perf --idle`: how often an idle producer's threads wake up. kring
//! reports its I/O thread's own wake-up counter; for both clients the
//! voluntary context switches of every thread (from /proc) cross-check it.

use std::fmt::Write as _;
use std::time::Duration;

use super::line::{Fields, LineError, LineWriter, FLOAT, TEXT, UINT};
use super::measure::ThreadSwitches;

/// How long an idle measurement waits after the warm-up before its window
/// opens.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Wake-ups of one thread in the idle window.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadWakeups {
    /// Thread name.
    pub name: String,
    /// Voluntary context switches (blocked, then woken).
    pub voluntary: u64,
    /// Involuntary context switches (preempted).
    pub involuntary: u64,
}

/// Reads a `thread` field, `NAME/VOLUNTARY/INVOLUNTARY`.
fn parse_thread(v: &str) -> Result<ThreadWakeups, LineError> {
    let bad = || LineError::BadValue {
        key: "thread".into(),
        value: v.to_string(),
        expected: "NAME/VOLUNTARY/INVOLUNTARY",
    };
    let mut parts = v.rsplitn(3, '/');
    let involuntary = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let voluntary = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok(ThreadWakeups {
        name,
        voluntary,
        involuntary,
    })
}

/// The outcome of an idle measurement.
#[derive(Clone, Debug, PartialEq)]
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

    /// Tag of an [`IdleResult`] line.
    pub const TAG: &'static str = "kring-perf-idle";

    /// The result as one line (no newline), see [`super::line`]. Each
    /// thread is a `thread` field, `NAME/VOLUNTARY/INVOLUNTARY`: the counts
    /// are the last two `/`-separated parts, so the name may hold `/`.
    pub fn to_line(&self) -> String {
        let mut w = LineWriter::new(Self::TAG);
        w.field("client", &self.client)
            .field("seconds", self.seconds)
            .opt("io_wakeups", self.io_wakeups);
        for t in &self.threads {
            w.field(
                "thread",
                format!("{}/{}/{}", t.name, t.voluntary, t.involuntary),
            );
        }
        w.finish()
    }

    /// Reads the last [`IdleResult`] line of a child's `output`.
    pub fn from_output(output: &str) -> Result<Self, LineError> {
        let mut f = Fields::find(Self::TAG, output)?;
        let client = f.req("client", TEXT)?;
        let seconds = f.req("seconds", FLOAT)?;
        let io_wakeups = f.opt("io_wakeups", UINT)?;
        let threads = f
            .take_all("thread")
            .into_iter()
            .map(|v| parse_thread(&v))
            .collect::<Result<_, _>>()?;
        f.finish()?;
        Ok(IdleResult {
            client,
            seconds,
            io_wakeups,
            threads,
        })
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

    #[test]
    fn line_round_trip() {
        let t = |name: &str, v| ThreadSwitches {
            tid: 1,
            name: name.into(),
            voluntary: v,
            involuntary: 2,
        };
        let with = IdleResult::new(
            "kring",
            Duration::from_millis(10_250),
            Some(0),
            vec![t("kring-io", 0), t("rdk:broker/1 x", 7)],
        );
        let without = IdleResult::new("librdkafka", Duration::from_secs(1), None, vec![]);
        for r in [with, without] {
            assert_eq!(IdleResult::from_output(&r.to_line()).unwrap(), r);
        }
    }

    #[test]
    fn malformed_thread_field() {
        let e = IdleResult::from_output("kring-perf-idle client=k seconds=1 thread=io/x/2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not NAME/VOLUNTARY/INVOLUNTARY"), "{e}");
        let e = IdleResult::from_output("kring-perf-idle client=k thread=io/1/2")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "field `seconds` is missing");
    }
}
