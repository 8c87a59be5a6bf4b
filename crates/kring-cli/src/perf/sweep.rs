//! Latency at fixed rates (`kring perf --latency-sweep`, and the matrix's
//! latency section): at full speed, latency mostly shows how much each
//! client lets queue up, so latencies are compared at loads every client
//! sustains. The sweep first measures every client's maximum for the
//! workload, takes the slowest client's msgs/s, then runs every client at
//! fixed fractions of it (25%, 50% and 90% by default, `--rate`) and
//! reports p50 / p99 / p99.9 side by side.

use super::orchestrate::{measure, Outcome, Plan};
use super::result::{ratio, RunResult};
use super::ClientKind;
use crate::error::CliError;

/// The loads of a sweep, in percent of the slowest client's maximum.
pub const DEFAULT_LOADS: [u32; 3] = [25, 50, 90];

/// One fixed-rate step of a sweep.
#[derive(Clone, Debug)]
pub struct Step {
    /// Load in percent of the base rate.
    pub load_pct: u32,
    /// The rate every client was paced to, records per second.
    pub rate: u64,
    /// The runs at that rate.
    pub outcome: Outcome,
}

/// A whole sweep: the full-speed runs, the base they set, and each step.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Every client at full speed.
    pub full_speed: Outcome,
    /// The slowest client at full speed (its median msgs/s is the base).
    pub slowest: String,
    /// Its median msgs/s.
    pub base_rate: f64,
    /// The fixed-rate steps, in the order of the loads asked for.
    pub steps: Vec<Step>,
}

/// The rate of `load_pct` percent of `base` records per second (at least 1).
pub fn rate_at(base: f64, load_pct: u32) -> u64 {
    ((base * f64::from(load_pct) / 100.0).round() as u64).max(1)
}

/// Runs the sweep of `plan` (its workload's own `rate` is ignored) at
/// `loads` percent of the slowest client's maximum.
pub fn sweep(plan: &Plan, loads: &[u32]) -> Result<Sweep, CliError> {
    let mut full = plan.clone();
    full.workload.rate = None;
    if plan.verbose {
        println!("latency sweep: every client at full speed first");
    }
    let full_speed = measure(&full)?;
    let (slowest, base_rate) = full_speed
        .medians
        .iter()
        .map(|r| (r.client.clone(), r.msgs_per_s))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| CliError::Child("the sweep measured no client".into()))?;
    if base_rate <= 0.0 {
        return Err(CliError::Child(format!(
            "{slowest} acknowledged nothing at full speed; no rate to sweep"
        )));
    }
    let mut steps = Vec::new();
    for &load_pct in loads {
        let rate = rate_at(base_rate, load_pct);
        if plan.verbose {
            println!(
                "latency sweep: {load_pct}% of {slowest}'s {base_rate:.0} msgs/s = {rate} msgs/s"
            );
        }
        let mut p = plan.clone();
        p.workload.rate = Some(rate);
        steps.push(Step {
            load_pct,
            rate,
            outcome: measure(&p)?,
        });
    }
    Ok(Sweep {
        full_speed,
        slowest,
        base_rate,
        steps,
    })
}

/// The header of [`table`]'s markdown.
pub fn table_head(clients: &[ClientKind]) -> String {
    let mut h = String::from("| load | rate msgs/s |");
    let mut cols = 2;
    for c in clients {
        h.push_str(&format!(" {} msgs/s |", c.name()));
        cols += 1;
    }
    for c in clients {
        h.push_str(&format!(" {} p50 / p99 / p99.9 ms |", c.name()));
        cols += 1;
    }
    for c in clients.iter().skip(1) {
        h.push_str(&format!(" p99 kring/{} |", c.name()));
        cols += 1;
    }
    h.push_str("\n|");
    h.push_str(&"---|".repeat(cols));
    h
}

fn lat(r: &RunResult) -> String {
    format!("{:.2} / {:.2} / {:.2}", r.p50_ms, r.p99_ms, r.p999_ms)
}

fn row(label: &str, rate: &str, clients: &[ClientKind], o: &Outcome) -> String {
    let meds: Vec<Option<&RunResult>> = clients.iter().map(|&c| o.median(c)).collect();
    let cell = |r: Option<&RunResult>, f: &dyn Fn(&RunResult) -> String| {
        r.map(f).unwrap_or_else(|| "–".into())
    };
    let mut s = format!("| {label} | {rate} |");
    for m in &meds {
        s.push_str(&format!(
            " {} |",
            cell(*m, &|r| super::matrix::thousands(r.msgs_per_s))
        ));
    }
    for m in &meds {
        s.push_str(&format!(" {} |", cell(*m, &lat)));
    }
    let k = o.median(ClientKind::Kring);
    for m in meds.iter().skip(1) {
        let rat = match (k, m) {
            (Some(k), Some(p)) => format!("**{:.2}**", ratio(k.p99_ms, p.p99_ms)),
            _ => "–".into(),
        };
        s.push_str(&format!(" {rat} |"));
    }
    let failed: u64 = meds.iter().flatten().map(|r| r.failed).sum();
    if failed > 0 {
        s.push_str(&format!(" {failed} records failed"));
    }
    s
}

/// The sweep as markdown rows under [`table_head`]: full speed first, then
/// each step.
pub fn table(clients: &[ClientKind], s: &Sweep) -> String {
    let mut t = table_head(clients);
    t.push('\n');
    t.push_str(&row("max", "unpaced", clients, &s.full_speed));
    t.push('\n');
    for step in &s.steps {
        t.push_str(&row(
            &format!("{}%", step.load_pct),
            &super::matrix::thousands(step.rate as f64),
            clients,
            &step.outcome,
        ));
        t.push('\n');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(client: &str, m: f64, p99: f64) -> RunResult {
        RunResult {
            client: client.into(),
            msgs_per_s: m,
            p50_ms: 1.0,
            p99_ms: p99,
            p999_ms: 9.0,
            ..Default::default()
        }
    }

    #[test]
    fn rates_are_fractions_of_the_base() {
        assert_eq!(rate_at(1_757_951.0, 25), 439_488);
        assert_eq!(rate_at(1_757_951.0, 90), 1_582_156);
        assert_eq!(rate_at(0.1, 25), 1);
    }

    #[test]
    fn table_shows_every_client_and_the_p99_ratio() {
        let clients = [ClientKind::Kring, ClientKind::Librdkafka];
        let o = |k: f64, l: f64| Outcome {
            runs: Vec::new(),
            medians: vec![mk("kring", 4e6, k), mk("librdkafka", 1e6, l)],
            broker: String::new(),
        };
        let s = Sweep {
            full_speed: o(0.7, 80.0),
            slowest: "librdkafka".into(),
            base_rate: 1e6,
            steps: vec![Step {
                load_pct: 25,
                rate: 250_000,
                outcome: o(6.0, 8.0),
            }],
        };
        let t = table(&clients, &s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(lines[0].matches('|').count(), lines[1].matches('|').count());
        assert_eq!(
            lines[3],
            "| 25% | 250,000 | 4,000,000 | 1,000,000 | 1.00 / 6.00 / 9.00 | 1.00 / 8.00 / 9.00 | **0.75** |"
        );
        assert!(lines[2].starts_with("| max | unpaced |"), "{t}");
    }
}
