//! `kring perf matrix`: the whole side-by-side grid of BENCHMARKS.md in one
//! command. Every cell runs kring and librdkafka alternately (median of
//! `--runs` each) against the same broker; tables are appended to `--out`
//! as they complete, and every run's raw figures to `<out>.runs` (one
//! `kring-perf-matrix-run` line per run, the format of `super::line`), so an
//! interrupted matrix keeps what it measured.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::orchestrate::{measure, Outcome, Plan};
use super::result::{ratio, RunResult};
use super::workload::{Acks, Compression, Idempotence, Workload};
use super::{all_clients, BrokerKind, ClientKind};
use crate::args::{duration_arg, format_duration};
use crate::error::CliError;

/// Arguments of `kring perf matrix`.
#[derive(Args, Clone, Debug)]
pub struct MatrixArgs {
    /// Brokers to run against (repeatable).
    #[arg(long, value_enum, default_values = ["sink", "tansu"])]
    pub broker: Vec<BrokerKind>,
    /// Runs per client per cell (median reported).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Length of each run.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Record value sizes in bytes (repeatable).
    #[arg(long, default_values_t = [100usize, 1000])]
    pub value_size: Vec<usize>,
    /// Codecs (repeatable).
    #[arg(long, value_enum, default_values = ["none", "lz4", "zstd"])]
    pub compression: Vec<Compression>,
    /// acks settings (repeatable).
    #[arg(long, value_enum, default_values = ["1", "all"])]
    pub acks: Vec<Acks>,
    /// Partition layouts as RECEIVING/TOTAL (repeatable).
    #[arg(long, default_values = ["16/16", "1000/1000", "10000/10000", "10/10000"])]
    pub layout: Vec<String>,
    /// linger.ms for every cell.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Every combination on every broker. Without it, tansu gets every
    /// layout and acks setting uncompressed, but compressed cells only at
    /// 16/16 and 10/10000 with acks=1 (tansu is end to end; the sink is
    /// where the client is measured).
    #[arg(long)]
    pub full: bool,
    /// Clients to measure, comma-separated (kring always, first); e.g.
    /// `kring,librdkafka,java` adds the Java producer's columns.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["kring", "librdkafka"])]
    pub clients: Vec<ClientKind>,
    /// Markdown output (appended); raw runs go to the same path plus `.runs`.
    #[arg(long, default_value = "bench-matrix.md")]
    pub out: PathBuf,
}

/// One partition layout: `active` of `total` partitions receive records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Partitions that receive records.
    pub active: u32,
    /// Partitions of the topic.
    pub total: u32,
}

impl Layout {
    /// Parses `RECEIVING/TOTAL`, or a single number for "all receive".
    pub fn parse(s: &str) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::invalid("layout", s, why);
        let (a, t) = match s.split_once('/') {
            Some((a, t)) => (a, t),
            None => (s, s),
        };
        let active: u32 = a
            .trim()
            .parse()
            .map_err(|_| bad("expected RECEIVING/TOTAL"))?;
        let total: u32 = t
            .trim()
            .parse()
            .map_err(|_| bad("expected RECEIVING/TOTAL"))?;
        if active == 0 || total == 0 || active > total {
            return Err(bad("need 0 < RECEIVING <= TOTAL"));
        }
        Ok(Layout { active, total })
    }
}

fn workload(
    value_size: usize,
    layout: Layout,
    acks: Acks,
    codec: Compression,
    m: &MatrixArgs,
) -> Workload {
    Workload {
        records: None,
        duration: Some(m.duration),
        value_size,
        partitions: layout.total,
        active_partitions: Some(layout.active),
        acks,
        compression: codec,
        linger_ms: m.linger_ms,
        batch_size: 16384,
        max_in_flight: 5,
        idempotence: Idempotence::Auto,
        rate: None,
        topic: format!("perf-{}", layout.total),
        properties: Vec::new(),
        io_backend: None,
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(layout: Layout, acks: Acks, k: Option<&RunResult>, l: Option<&RunResult>) -> String {
    let cell =
        |r: Option<&RunResult>, f: fn(&RunResult) -> String| r.map(f).unwrap_or_else(|| "–".into());
    let rat = |f: fn(&RunResult) -> f64| match (k, l) {
        (Some(k), Some(l)) => format!("{:.2}", ratio(f(k), f(l))),
        _ => "–".into(),
    };
    let lat = |r: &RunResult| format!("{:.1} / {:.1}", r.p50_ms, r.p99_ms);
    let failed = [k, l].iter().flatten().map(|r| r.failed).sum::<u64>();
    format!(
        "| {} / {} | {} | {} | {} | **{}** | {} | {} | **{}** | {} | {} |{}",
        thousands(f64::from(layout.active)),
        thousands(f64::from(layout.total)),
        acks.as_str(),
        cell(k, |r| thousands(r.msgs_per_s)),
        cell(l, |r| thousands(r.msgs_per_s)),
        rat(|r| r.msgs_per_s),
        cell(k, |r| format!("{:.2}", r.cpu_s_per_m)),
        cell(l, |r| format!("{:.2}", r.cpu_s_per_m)),
        rat(|r| r.cpu_s_per_m),
        cell(k, lat),
        cell(l, lat),
        if failed > 0 {
            format!(" {failed} records failed")
        } else {
            String::new()
        }
    )
}

/// A row of the table for any set of clients (kring first): msgs/s, CPU
/// µs/msg, kring's CPU ratio to each peer, and latencies.
fn row_n(layout: Layout, acks: Acks, clients: &[ClientKind], o: &Outcome) -> String {
    let meds: Vec<Option<&RunResult>> = clients.iter().map(|&c| o.median(c)).collect();
    let k = o.median(ClientKind::Kring);
    let mut s = format!(
        "| {} / {} | {} |",
        thousands(f64::from(layout.active)),
        thousands(f64::from(layout.total)),
        acks.as_str()
    );
    let cell = |r: Option<&RunResult>, f: &dyn Fn(&RunResult) -> String| {
        r.map(f).unwrap_or_else(|| "–".into())
    };
    for m in &meds {
        s.push_str(&format!(" {} |", cell(*m, &|r| thousands(r.msgs_per_s))));
    }
    for m in &meds {
        s.push_str(&format!(
            " {} |",
            cell(*m, &|r| format!("{:.2}", r.cpu_s_per_m))
        ));
    }
    for m in meds.iter().skip(1) {
        let rat = match (k, m) {
            (Some(k), Some(p)) => format!("**{:.2}**", ratio(k.cpu_s_per_m, p.cpu_s_per_m)),
            _ => "–".into(),
        };
        s.push_str(&format!(" {rat} |"));
    }
    for m in &meds {
        s.push_str(&format!(
            " {} |",
            cell(*m, &|r| format!("{:.1} / {:.1}", r.p50_ms, r.p99_ms))
        ));
    }
    let failed: u64 = meds.iter().flatten().map(|r| r.failed).sum();
    if failed > 0 {
        s.push_str(&format!(" {failed} records failed"));
    }
    s
}

/// The header of [`row_n`]'s table.
fn table_head_n(clients: &[ClientKind]) -> String {
    let mut h = String::from("| partitions (receiving / total) | acks |");
    let mut cols = 2;
    for c in clients {
        h.push_str(&format!(" {} msgs/s |", c.name()));
        cols += 1;
    }
    for c in clients {
        h.push_str(&format!(" {} CPU µs/msg |", c.name()));
        cols += 1;
    }
    for c in clients.iter().skip(1) {
        h.push_str(&format!(" CPU/msg kring/{} |", c.name()));
        cols += 1;
    }
    for c in clients {
        h.push_str(&format!(" {} p50 / p99 ms |", c.name()));
        cols += 1;
    }
    h.push('\n');
    h.push('|');
    h.push_str(&"---|".repeat(cols));
    h
}

const TABLE_HEAD: &str = "| partitions (receiving / total) | acks | kring msgs/s | librdkafka msgs/s | msgs/s ratio | kring CPU µs/msg | librdkafka CPU µs/msg | CPU/msg ratio | kring p50 / p99 ms | librdkafka p50 / p99 ms |\n|---|---|---|---|---|---|---|---|---|---|";

/// Runs the matrix.
pub fn run(m: MatrixArgs) -> Result<(), CliError> {
    let layouts = m
        .layout
        .iter()
        .map(|s| Layout::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut clients = vec![ClientKind::Kring];
    for &c in &m.clients {
        if !clients.contains(&c) {
            clients.push(c);
        }
    }
    // The classic two-client table (with both ratios) when that is what runs.
    let classic = clients == all_clients();
    let head = if classic {
        TABLE_HEAD.to_string()
    } else {
        table_head_n(&clients)
    };
    let open = |p: &PathBuf| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| CliError::io(format!("opening {}", p.display()), e))
    };
    let mut md = open(&m.out)?;
    let mut runs_log = open(&PathBuf::from(format!("{}.runs", m.out.display())))?;
    let write = |f: &mut std::fs::File, s: &str| {
        f.write_all(s.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| CliError::io("writing the matrix output", e))
    };
    let rows_of = |broker: BrokerKind, codec: Compression| -> Vec<(Layout, Acks)> {
        let all: Vec<(Layout, Acks)> = layouts
            .iter()
            .flat_map(|&l| m.acks.iter().map(move |&a| (l, a)))
            .collect();
        if m.full || broker == BrokerKind::Sink || codec == Compression::None {
            return all;
        }
        let keep = [
            Layout {
                active: 16,
                total: 16,
            },
            Layout {
                active: 10,
                total: 10000,
            },
        ];
        let reduced: Vec<_> = all
            .iter()
            .copied()
            .filter(|(l, a)| keep.contains(l) && *a == Acks::One)
            .collect();
        if reduced.is_empty() {
            all
        } else {
            reduced
        }
    };
    let cells: usize = m
        .broker
        .iter()
        .map(|&b| {
            m.compression
                .iter()
                .map(|&c| rows_of(b, c).len())
                .sum::<usize>()
                * m.value_size.len()
        })
        .sum();
    let started = Instant::now();
    let mut done = 0usize;
    let cmdline: Vec<String> = std::env::args().collect();
    write(
        &mut md,
        &format!(
            "<!-- produced by: {} -->\n<!-- {} runs of {} per client per cell, clients alternating, medians shown -->\n\n",
            cmdline.join(" "),
            m.runs,
            format_duration(m.duration)
        ),
    )?;
    for &broker in &m.broker {
        for &size in &m.value_size {
            for &codec in &m.compression {
                let broker_name = match broker {
                    BrokerKind::Sink => "kring-mock sink",
                    BrokerKind::Tansu => "tansu (memory storage)",
                    BrokerKind::Kafka => "Apache Kafka 4.4.0 (1 node)",
                };
                let mut table = format!(
                    "#### {broker_name}, {size} B values, compression {}, linger.ms {}\n\n{head}\n",
                    codec.as_str(),
                    m.linger_ms
                );
                for (layout, acks) in rows_of(broker, codec) {
                    let w = workload(size, layout, acks, codec, &m);
                    done += 1;
                    eprintln!(
                        "matrix: cell {done}/{cells} ({:.0} min so far): {broker_name}: {}",
                        started.elapsed().as_secs_f64() / 60.0,
                        w.describe()
                    );
                    let plan = Plan {
                        workload: w.clone(),
                        bootstrap: None,
                        broker,
                        clients: clients.clone(),
                        runs: m.runs,
                        verbose: false,
                        tls: false,
                    };
                    let outcome = match measure(&plan) {
                        Ok(o) => o,
                        Err(e) => {
                            eprintln!("matrix: cell failed: {e}");
                            table.push_str(&format!(
                                "| {} / {} | {} | failed: {e} |\n",
                                layout.active,
                                layout.total,
                                acks.as_str()
                            ));
                            continue;
                        }
                    };
                    log_runs(&mut runs_log, &w, broker, &outcome, &write)?;
                    let line = if classic {
                        let k = outcome.median(ClientKind::Kring);
                        let l = outcome.median(ClientKind::Librdkafka);
                        row(layout, acks, k, l)
                    } else {
                        row_n(layout, acks, &clients, &outcome)
                    };
                    eprintln!("matrix: {line}");
                    table.push_str(&line);
                    table.push('\n');
                }
                table.push('\n');
                write(&mut md, &table)?;
            }
        }
    }
    eprintln!(
        "matrix: {cells} cells in {:.0} min; tables in {}",
        started.elapsed().as_secs_f64() / 60.0,
        m.out.display()
    );
    Ok(())
}

/// Tag of a raw run in `<out>.runs`.
pub const RUN_LINE_TAG: &str = "kring-perf-matrix-run";

/// One run of a cell as a `kring-perf-matrix-run` line: the broker and the
/// workload, then the run's fields.
fn run_line(w: &Workload, broker: BrokerKind, r: &RunResult) -> String {
    let mut line = super::line::LineWriter::new(RUN_LINE_TAG);
    line.field("broker", format!("{broker:?}").to_lowercase())
        .field("workload", w.describe());
    r.write_fields(&mut line);
    line.finish()
}

fn log_runs(
    f: &mut std::fs::File,
    w: &Workload,
    broker: BrokerKind,
    o: &Outcome,
    write: &dyn Fn(&mut std::fs::File, &str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    for r in &o.runs {
        write(f, &format!("{}\n", run_line(w, broker, r)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(
            Layout::parse("10/10000").unwrap(),
            Layout {
                active: 10,
                total: 10000
            }
        );
        assert_eq!(
            Layout::parse("16").unwrap(),
            Layout {
                active: 16,
                total: 16
            }
        );
        assert!(Layout::parse("20/10").is_err());
        assert!(Layout::parse("0/10").is_err());
        assert!(Layout::parse("x").is_err());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.4), "1,234,567");
    }

    #[test]
    fn row_shows_ratios() {
        let k = RunResult {
            msgs_per_s: 2e6,
            cpu_s_per_m: 0.5,
            ..Default::default()
        };
        let l = RunResult {
            msgs_per_s: 1e6,
            cpu_s_per_m: 1.0,
            ..Default::default()
        };
        let r = row(
            Layout {
                active: 16,
                total: 16,
            },
            Acks::One,
            Some(&k),
            Some(&l),
        );
        assert!(r.contains("**2.00**"), "{r}");
        assert!(r.contains("**0.50**"), "{r}");
        assert!(
            r.starts_with("| 16 / 16 | 1 | 2,000,000 | 1,000,000 |"),
            "{r}"
        );
    }

    #[test]
    fn three_client_rows() {
        let mk = |client: &str, m: f64, cpu: f64| RunResult {
            client: client.into(),
            msgs_per_s: m,
            cpu_s_per_m: cpu,
            p50_ms: 1.0,
            p99_ms: 2.0,
            ..Default::default()
        };
        let clients = [ClientKind::Kring, ClientKind::Librdkafka, ClientKind::Java];
        let o = Outcome {
            runs: Vec::new(),
            medians: vec![
                mk("kring", 3e5, 0.5),
                mk("librdkafka", 2e5, 1.0),
                mk("java", 1e5, 2.0),
            ],
            broker: String::new(),
        };
        let r = row_n(
            Layout {
                active: 16,
                total: 16,
            },
            Acks::All,
            &clients,
            &o,
        );
        assert_eq!(
            r,
            "| 16 / 16 | all | 300,000 | 200,000 | 100,000 | 0.50 | 1.00 | 2.00 | **0.50** | **0.25** | 1.0 / 2.0 | 1.0 / 2.0 | 1.0 / 2.0 |"
        );
        let head = table_head_n(&clients);
        let (names, rule) = head.split_once('\n').unwrap();
        assert_eq!(names.matches('|').count(), rule.matches('|').count());
        assert!(names.contains("| CPU/msg kring/java |"), "{names}");
    }
}
