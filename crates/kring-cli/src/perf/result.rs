//! The figures of one run, as the child process reports them (one
//! `key=value` line on stdout, see [`super::line`]), and how runs are
//! summarised: medians and the kring/librdkafka ratios.

use std::fmt::Write as _;

use super::line::{Fields, LineError, LineWriter, FLOAT, TEXT, UINT};

/// The figures of one measured run of one client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunResult {
    /// `kring` or `librdkafka`.
    pub client: String,
    /// Records sent in the measured window (warm-up excluded).
    pub records: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records that failed.
    pub failed: u64,
    /// The first delivery error, if any.
    pub first_error: Option<String>,
    /// Seconds from the first send to the last delivery result.
    pub elapsed_s: f64,
    /// Acknowledged records per second.
    pub msgs_per_s: f64,
    /// Acknowledged value bytes per second, in MB (10^6 bytes).
    pub mb_per_s: f64,
    /// Mean value size of the records sent, bytes (the value size, unless
    /// sizes are mixed).
    pub avg_value_bytes: f64,
    /// User CPU seconds of the client process in the window.
    pub cpu_user_s: f64,
    /// System CPU seconds of the client process in the window.
    pub cpu_sys_s: f64,
    /// (user + system) CPU seconds per million acknowledged records.
    pub cpu_s_per_m: f64,
    /// Median delivery latency (send call to delivery callback), ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Peak resident memory of the client process, MB.
    pub max_rss_mb: f64,
    /// kring only: I/O thread wake-ups in the window (its own counter).
    pub io_wakeups: Option<u64>,
    /// kring only: responses received in the window (≈ produce requests).
    pub responses: Option<u64>,
}

impl RunResult {
    /// Tag of a [`RunResult`] line.
    pub const TAG: &'static str = "kring-perf-run";

    /// The result as one line (no newline), see [`super::line`].
    pub fn to_line(&self) -> String {
        let mut w = LineWriter::new(Self::TAG);
        self.write_fields(&mut w);
        w.finish()
    }

    /// Appends every field to `w`.
    pub fn write_fields(&self, w: &mut LineWriter) {
        w.field("client", &self.client)
            .field("records", self.records)
            .field("acked", self.acked)
            .field("failed", self.failed)
            .opt("first_error", self.first_error.as_ref())
            .field("elapsed_s", self.elapsed_s)
            .field("msgs_per_s", self.msgs_per_s)
            .field("mb_per_s", self.mb_per_s)
            .field("avg_value_bytes", self.avg_value_bytes)
            .field("cpu_user_s", self.cpu_user_s)
            .field("cpu_sys_s", self.cpu_sys_s)
            .field("cpu_s_per_m", self.cpu_s_per_m)
            .field("p50_ms", self.p50_ms)
            .field("p99_ms", self.p99_ms)
            .field("p999_ms", self.p999_ms)
            .field("max_ms", self.max_ms)
            .field("max_rss_mb", self.max_rss_mb)
            .opt("io_wakeups", self.io_wakeups)
            .opt("responses", self.responses);
    }

    /// Reads the last [`RunResult`] line of a child's `output`.
    pub fn from_output(output: &str) -> Result<Self, LineError> {
        let mut f = Fields::find(Self::TAG, output)?;
        let r = RunResult {
            client: f.req("client", TEXT)?,
            records: f.req("records", UINT)?,
            acked: f.req("acked", UINT)?,
            failed: f.req("failed", UINT)?,
            first_error: f.opt("first_error", TEXT)?,
            elapsed_s: f.req("elapsed_s", FLOAT)?,
            msgs_per_s: f.req("msgs_per_s", FLOAT)?,
            mb_per_s: f.req("mb_per_s", FLOAT)?,
            avg_value_bytes: f.req("avg_value_bytes", FLOAT)?,
            cpu_user_s: f.req("cpu_user_s", FLOAT)?,
            cpu_sys_s: f.req("cpu_sys_s", FLOAT)?,
            cpu_s_per_m: f.req("cpu_s_per_m", FLOAT)?,
            p50_ms: f.req("p50_ms", FLOAT)?,
            p99_ms: f.req("p99_ms", FLOAT)?,
            p999_ms: f.req("p999_ms", FLOAT)?,
            max_ms: f.req("max_ms", FLOAT)?,
            max_rss_mb: f.req("max_rss_mb", FLOAT)?,
            io_wakeups: f.opt("io_wakeups", UINT)?,
            responses: f.opt("responses", UINT)?,
        };
        f.finish()?;
        Ok(r)
    }

    /// Fills the derived rates from the raw figures; `avg_value_size` is
    /// the mean value size of the records sent.
    pub fn derive(&mut self, avg_value_size: f64) {
        let secs = self.elapsed_s.max(1e-9);
        self.avg_value_bytes = avg_value_size;
        self.msgs_per_s = self.acked as f64 / secs;
        self.mb_per_s = self.acked as f64 * avg_value_size / secs / 1e6;
        self.cpu_s_per_m = if self.acked == 0 {
            0.0
        } else {
            (self.cpu_user_s + self.cpu_sys_s) * 1e6 / self.acked as f64
        };
    }
}

/// Median of `v` (mean of the middle two for an even count); 0 when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The per-metric medians of several runs of one client.
pub fn median_of(client: &str, runs: &[&RunResult]) -> RunResult {
    let m = |f: fn(&RunResult) -> f64| median(&runs.iter().map(|r| f(r)).collect::<Vec<_>>());
    RunResult {
        client: client.to_string(),
        records: m(|r| r.records as f64) as u64,
        acked: m(|r| r.acked as f64) as u64,
        failed: runs.iter().map(|r| r.failed).sum(),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
        elapsed_s: m(|r| r.elapsed_s),
        msgs_per_s: m(|r| r.msgs_per_s),
        mb_per_s: m(|r| r.mb_per_s),
        avg_value_bytes: m(|r| r.avg_value_bytes),
        cpu_user_s: m(|r| r.cpu_user_s),
        cpu_sys_s: m(|r| r.cpu_sys_s),
        cpu_s_per_m: m(|r| r.cpu_s_per_m),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        p999_ms: m(|r| r.p999_ms),
        max_ms: m(|r| r.max_ms),
        max_rss_mb: m(|r| r.max_rss_mb),
        io_wakeups: if runs.iter().all(|r| r.io_wakeups.is_some()) && !runs.is_empty() {
            Some(m(|r| r.io_wakeups.unwrap_or(0) as f64) as u64)
        } else {
            None
        },
        responses: if runs.iter().all(|r| r.responses.is_some()) && !runs.is_empty() {
            Some(m(|r| r.responses.unwrap_or(0) as f64) as u64)
        } else {
            None
        },
    }
}

/// kring's figure divided by librdkafka's (0 when librdkafka's is 0).
pub fn ratio(kring: f64, librdkafka: f64) -> f64 {
    if librdkafka == 0.0 {
        0.0
    } else {
        kring / librdkafka
    }
}

/// The two ratio lines of kring against `peer` (named by its `client`),
/// exactly as scripts grep for them: `ratio msgs/s kring/librdkafka: 2.31`.
pub fn ratio_lines(kring: &RunResult, peer: &RunResult) -> String {
    let p = &peer.client;
    format!(
        "ratio msgs/s kring/{p}: {:.2}\nratio cpu/msg kring/{p}: {:.2}\n",
        ratio(kring.msgs_per_s, peer.msgs_per_s),
        ratio(kring.cpu_s_per_m, peer.cpu_s_per_m)
    )
}

/// Header of the human-readable result table.
pub fn table_header() -> String {
    format!(
        "{:<12} {:>5} {:>11} {:>8} {:>13} {:>8} {:>8} {:>9} {:>7}",
        "client", "run", "msgs/s", "MB/s", "CPU s/1M msg", "p50 ms", "p99 ms", "p99.9 ms", "RSS MB"
    )
}

/// One row of the human-readable result table.
pub fn table_row(run: &str, r: &RunResult) -> String {
    let mut s = format!(
        "{:<12} {:>5} {:>11.0} {:>8.1} {:>13.3} {:>8.2} {:>8.2} {:>9.2} {:>7.0}",
        r.client,
        run,
        r.msgs_per_s,
        r.mb_per_s,
        r.cpu_s_per_m,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.max_rss_mb
    );
    if r.failed > 0 {
        let _ = write!(
            s,
            "  FAILED {} ({})",
            r.failed,
            r.first_error.as_deref().unwrap_or("?")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn derive_rates() {
        let mut r = RunResult {
            acked: 2_000_000,
            elapsed_s: 2.0,
            cpu_user_s: 1.5,
            cpu_sys_s: 0.5,
            ..Default::default()
        };
        r.derive(100.0);
        assert_eq!(r.msgs_per_s, 1e6);
        assert_eq!(r.mb_per_s, 100.0);
        assert_eq!(r.cpu_s_per_m, 1.0);
    }

    #[test]
    fn ratio_line_format() {
        let k = RunResult {
            msgs_per_s: 2.31e6,
            cpu_s_per_m: 0.42,
            ..Default::default()
        };
        let l = RunResult {
            client: "librdkafka".into(),
            msgs_per_s: 1e6,
            cpu_s_per_m: 1.0,
            ..Default::default()
        };
        assert_eq!(
            ratio_lines(&k, &l),
            "ratio msgs/s kring/librdkafka: 2.31\nratio cpu/msg kring/librdkafka: 0.42\n"
        );
    }

    #[test]
    fn line_round_trip() {
        let full = RunResult {
            client: "kring".into(),
            records: 12_345_678_901,
            acked: 5,
            failed: 2,
            first_error: Some("topic `t` not present in metadata after 60s\nnext line".into()),
            elapsed_s: 2.000_000_123,
            msgs_per_s: 1.0 / 3.0,
            mb_per_s: 1e-12,
            avg_value_bytes: 1809.0666666666667,
            cpu_user_s: 0.1 + 0.2,
            cpu_sys_s: 0.0,
            cpu_s_per_m: 123_456.789,
            p50_ms: 0.5,
            p99_ms: f64::MAX,
            p999_ms: f64::MIN_POSITIVE,
            max_ms: 7.25,
            max_rss_mb: 26.5,
            io_wakeups: Some(3),
            responses: Some(u64::MAX),
        };
        let sparse = RunResult {
            client: "librdkafka".into(),
            ..Default::default()
        };
        for r in [full, sparse] {
            let line = r.to_line();
            assert!(!line.contains('\n'), "{line}");
            // Among other output, as a child prints it.
            let out = format!("[kring] progress\n{line}\n");
            assert_eq!(RunResult::from_output(&out).unwrap(), r);
        }
    }

    #[test]
    fn malformed_child_output_is_a_clear_error() {
        let good = RunResult::default().to_line();
        let cases: [(&str, String); 5] = [
            (
                "thread 'main' panicked at x.rs:1",
                "no `kring-perf-run` result line".into(),
            ),
            (
                &good.replace(" acked=0", ""),
                "field `acked` is missing".into(),
            ),
            (
                &good.replace("acked=0", "acked=lots"),
                "field `acked`: \"lots\" is not an unsigned integer".into(),
            ),
            (
                &format!("{good} colour=red"),
                "unknown field `colour`".into(),
            ),
            (
                &format!("{good} acked=1"),
                "field `acked` appears more than once".into(),
            ),
        ];
        for (out, want) in cases {
            let e = RunResult::from_output(out).unwrap_err().to_string();
            assert!(e.contains(&want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn median_of_runs() {
        let mk = |m: f64| RunResult {
            msgs_per_s: m,
            io_wakeups: Some(m as u64),
            ..Default::default()
        };
        let (a, b, c) = (mk(1.0), mk(5.0), mk(3.0));
        let m = median_of("kring", &[&a, &b, &c]);
        assert_eq!(m.msgs_per_s, 3.0);
        assert_eq!(m.io_wakeups, Some(3));
    }
}
