//! `kring perf matrix`: the whole side-by-side grid of BENCHMARKS.md in one
//! command. Every cell runs kring and librdkafka alternately (median of
//! `--runs` each) against the same broker; tables are appended to `--out`
//! as they complete, and every run's raw figures to `<out>.runs` (one
//! `kring-perf-matrix-run` line per run, the format of `super::line`), so an
//! interrupted matrix keeps what it measured.
//!
//! Sections (`--sections`): `grid`, every broker × value size × codec ×
//! layout × acks; then the workloads people run, on the first `--broker`:
//! `keyed` (murmur2 in every client, 16 and 1,000 partitions), `mixed`
//! (value sizes drawn from `--mix`) and `latency` (latency at 25/50/90% of
//! the slowest client's maximum, see [`super::sweep`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::orchestrate::{measure, Outcome, Plan};
use super::result::{ratio, RunResult};
use super::sweep;
use super::workload::{size_weight_arg, Acks, Compression, Idempotence, SizeWeight, Workload};
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
    /// Parts of the matrix to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["grid", "keyed", "mixed", "latency"])]
    pub sections: Vec<Section>,
    /// Distinct keys of the keyed section and its latency sweep.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u32,
    /// Value sizes (SIZE:WEIGHT, comma-separated) of the mixed section.
    #[arg(long, value_delimiter = ',', value_parser = size_weight_arg,
          default_values = ["64:8", "512:4", "4096:2", "16384:1"])]
    pub mix: Vec<SizeWeight>,
}

/// A part of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// Every broker, value size, codec, partition layout and acks setting.
    Grid,
    /// Keyed records (`--keys`), 16 and 1,000 partitions, uncompressed.
    Keyed,
    /// Mixed value sizes (`--mix`), 16 and 1,000 partitions.
    Mixed,
    /// Latency at fixed rates: 100 B at 16 and 1,000 partitions, and keyed
    /// at 16 partitions, acks 1.
    Latency,
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
        keys: 0,
        value_sizes: Vec::new(),
        threads: 1,
        compression_threads: None,
    }
}

/// `v` rounded, with thousands separators.
pub fn thousands(v: f64) -> String {
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
    let grid = m.sections.contains(&Section::Grid);
    let cells: usize = m
        .broker
        .iter()
        .filter(|_| grid)
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
    for &broker in m.broker.iter().filter(|_| grid) {
        for &size in &m.value_size {
            for &codec in &m.compression {
                let broker_name = broker_name(broker);
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
    let extra_cells = workloads_people_run(&m, &clients, &mut md, &mut runs_log, &write)?;
    eprintln!(
        "matrix: {} cells in {:.0} min; tables in {}",
        cells + extra_cells,
        started.elapsed().as_secs_f64() / 60.0,
        m.out.display()
    );
    Ok(())
}

fn broker_name(broker: BrokerKind) -> &'static str {
    match broker {
        BrokerKind::Sink => "kring-mock sink",
        BrokerKind::Tansu => "tansu (memory storage)",
        BrokerKind::Kafka => "Apache Kafka 4.4.0 (1 node)",
    }
}

type WriteFn<'a> = &'a dyn Fn(&mut std::fs::File, &str) -> Result<(), CliError>;

/// The keyed, mixed and latency sections on the first `--broker`; returns
/// how many cells (sweeps count as one) ran.
fn workloads_people_run(
    m: &MatrixArgs,
    clients: &[ClientKind],
    md: &mut std::fs::File,
    runs_log: &mut std::fs::File,
    write: WriteFn<'_>,
) -> Result<usize, CliError> {
    let Some(&broker) = m.broker.first() else {
        return Ok(0);
    };
    let size = m.value_size.first().copied().unwrap_or(100);
    let small = Layout {
        active: 16,
        total: 16,
    };
    let large = Layout {
        active: 1000,
        total: 1000,
    };
    let keyed = |w: Workload| Workload {
        keys: m.keys,
        active_partitions: None,
        ..w
    };
    let mut done = 0;
    let mut measure_cell = |w: &Workload, runs_log: &mut std::fs::File| {
        done += 1;
        eprintln!("matrix: {}: {}", broker_name(broker), w.describe());
        let plan = Plan {
            workload: w.clone(),
            bootstrap: None,
            broker,
            clients: clients.to_vec(),
            runs: m.runs,
            verbose: false,
            tls: false,
        };
        match measure(&plan) {
            Ok(o) => log_runs(runs_log, w, broker, &o, write).map(|_| Ok(o)),
            Err(e) => {
                eprintln!("matrix: cell failed: {e}");
                Ok(Err(e))
            }
        }
    };
    if m.sections.contains(&Section::Keyed) {
        let mut table = format!(
            "#### keyed records: {} distinct keys of 16 B, murmur2 in each client, {}, {size} B values, compression none, linger.ms {}\n\n{}\n",
            thousands(f64::from(m.keys)),
            broker_name(broker),
            m.linger_ms,
            head_x(&["partitions", "acks"], clients, false)
        );
        for layout in [small, large] {
            for &acks in &m.acks {
                let w = keyed(workload(size, layout, acks, Compression::None, m));
                let prefix = [layout_cell(layout), acks.as_str().to_string()];
                table.push_str(&match measure_cell(&w, runs_log)? {
                    Ok(o) => row_x(&prefix, clients, &o, false),
                    Err(e) => failed_row(&prefix, &e),
                });
                table.push('\n');
            }
        }
        table.push('\n');
        write(md, &table)?;
    }
    if m.sections.contains(&Section::Mixed) {
        let list: Vec<String> = m.mix.iter().map(|s| s.to_string()).collect();
        let mut table = format!(
            "#### mixed value sizes {} (size:weight), {}, keyless, linger.ms {}\n\n{}\n",
            list.join(", "),
            broker_name(broker),
            m.linger_ms,
            head_x(&["partitions", "acks", "compression"], clients, true)
        );
        let mut cells = Vec::new();
        for layout in [small, large] {
            for &acks in &m.acks {
                cells.push((layout, acks, Compression::None));
            }
        }
        for &codec in m.compression.iter().filter(|&&c| c != Compression::None) {
            cells.push((small, Acks::One, codec));
        }
        for (layout, acks, codec) in cells {
            let w = Workload {
                value_sizes: m.mix.clone(),
                ..workload(size, layout, acks, codec, m)
            };
            let prefix = [
                layout_cell(layout),
                acks.as_str().to_string(),
                codec.as_str().to_string(),
            ];
            table.push_str(&match measure_cell(&w, runs_log)? {
                Ok(o) => row_x(&prefix, clients, &o, true),
                Err(e) => failed_row(&prefix, &e),
            });
            table.push('\n');
        }
        table.push('\n');
        write(md, &table)?;
    }
    if m.sections.contains(&Section::Latency) {
        let sweeps = [
            (
                workload(size, small, Acks::One, Compression::None, m),
                "keyless",
            ),
            (
                workload(size, large, Acks::One, Compression::None, m),
                "keyless",
            ),
            (
                keyed(workload(size, small, Acks::One, Compression::None, m)),
                "keyed",
            ),
        ];
        for (w, kind) in sweeps {
            done += 1;
            eprintln!(
                "matrix: latency sweep: {}: {}",
                broker_name(broker),
                w.describe()
            );
            let plan = Plan {
                workload: w.clone(),
                bootstrap: None,
                broker,
                clients: clients.to_vec(),
                runs: m.runs,
                verbose: false,
                tls: false,
            };
            let title = format!(
                "#### latency at fixed rates: {}, {size} B values, {kind}{}, {} partitions, acks 1, linger.ms {}\n\n",
                broker_name(broker),
                if w.keys > 0 {
                    format!(" ({} keys)", thousands(f64::from(w.keys)))
                } else {
                    String::new()
                },
                thousands(f64::from(w.partitions)),
                m.linger_ms
            );
            let body = match sweep::sweep(&plan, &sweep::DEFAULT_LOADS) {
                Ok(s) => {
                    for o in
                        std::iter::once(&s.full_speed).chain(s.steps.iter().map(|st| &st.outcome))
                    {
                        log_runs(runs_log, &w, broker, o, write)?;
                    }
                    format!(
                        "rates: % of {}'s full-speed {} msgs/s (median)\n\n{}",
                        s.slowest,
                        thousands(s.base_rate),
                        sweep::table(clients, &s)
                    )
                }
                Err(e) => {
                    eprintln!("matrix: sweep failed: {e}");
                    format!("failed: {e}\n")
                }
            };
            eprintln!("matrix: {title}{body}");
            write(md, &format!("{title}{body}\n"))?;
        }
    }
    Ok(done)
}

fn layout_cell(l: Layout) -> String {
    format!(
        "{} / {}",
        thousands(f64::from(l.active)),
        thousands(f64::from(l.total))
    )
}

fn failed_row(prefix: &[String], e: &CliError) -> String {
    format!("| {} | failed: {e} |", prefix.join(" | "))
}

/// Header of [`row_x`]: the `prefix` columns, then (with `bytes`) the
/// average value size and MB/s of each client, msgs/s, CPU µs/msg and
/// latency of each client, and kring's ratios to each peer.
fn head_x(prefix: &[&str], clients: &[ClientKind], bytes: bool) -> String {
    let mut cols: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    if bytes {
        cols.push("avg value B".into());
        cols.extend(clients.iter().map(|c| format!("{} MB/s", c.name())));
    }
    cols.extend(clients.iter().map(|c| format!("{} msgs/s", c.name())));
    cols.extend(
        clients
            .iter()
            .skip(1)
            .map(|c| format!("msgs/s kring/{}", c.name())),
    );
    cols.extend(clients.iter().map(|c| format!("{} CPU µs/msg", c.name())));
    cols.extend(
        clients
            .iter()
            .skip(1)
            .map(|c| format!("CPU/msg kring/{}", c.name())),
    );
    cols.extend(clients.iter().map(|c| format!("{} p50 / p99 ms", c.name())));
    format!("| {} |\n|{}", cols.join(" | "), "---|".repeat(cols.len()))
}

/// One row under [`head_x`].
fn row_x(prefix: &[String], clients: &[ClientKind], o: &Outcome, bytes: bool) -> String {
    let meds: Vec<Option<&RunResult>> = clients.iter().map(|&c| o.median(c)).collect();
    let k = o.median(ClientKind::Kring);
    let each = |f: &dyn Fn(&RunResult) -> String| -> Vec<String> {
        meds.iter()
            .map(|m| m.map(f).unwrap_or_else(|| "–".into()))
            .collect()
    };
    let ratios = |f: fn(&RunResult) -> f64| -> Vec<String> {
        meds.iter()
            .skip(1)
            .map(|m| match (k, m) {
                (Some(k), Some(p)) => format!("**{:.2}**", ratio(f(k), f(p))),
                _ => "–".into(),
            })
            .collect()
    };
    let mut cols: Vec<String> = prefix.to_vec();
    if bytes {
        cols.push(
            k.or(meds.iter().flatten().next().copied())
                .map(|r| format!("{:.0}", r.avg_value_bytes))
                .unwrap_or_else(|| "–".into()),
        );
        cols.extend(each(&|r| format!("{:.1}", r.mb_per_s)));
    }
    cols.extend(each(&|r| thousands(r.msgs_per_s)));
    cols.extend(ratios(|r| r.msgs_per_s));
    cols.extend(each(&|r| format!("{:.2}", r.cpu_s_per_m)));
    cols.extend(ratios(|r| r.cpu_s_per_m));
    cols.extend(each(&|r| format!("{:.1} / {:.1}", r.p50_ms, r.p99_ms)));
    let failed: u64 = meds.iter().flatten().map(|r| r.failed).sum();
    let mut s = format!("| {} |", cols.join(" | "));
    if failed > 0 {
        s.push_str(&format!(" {failed} records failed"));
    }
    s
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
    write: WriteFn<'_>,
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

    #[test]
    fn extra_section_rows_match_their_header() {
        let mk = |client: &str, m: f64, cpu: f64| RunResult {
            client: client.into(),
            msgs_per_s: m,
            mb_per_s: m * 1809.0 / 1e6,
            avg_value_bytes: 1809.0,
            cpu_s_per_m: cpu,
            p50_ms: 1.0,
            p99_ms: 2.0,
            ..Default::default()
        };
        let clients = [ClientKind::Kring, ClientKind::Librdkafka];
        let o = Outcome {
            runs: Vec::new(),
            medians: vec![mk("kring", 2e5, 0.5), mk("librdkafka", 1e5, 1.0)],
            broker: String::new(),
        };
        for bytes in [false, true] {
            let head = head_x(&["partitions", "acks", "compression"], &clients, bytes);
            let (names, rule) = head.split_once('\n').unwrap();
            let prefix = ["16 / 16".to_string(), "1".into(), "zstd".into()];
            let r = row_x(&prefix, &clients, &o, bytes);
            assert_eq!(names.matches('|').count(), rule.matches('|').count());
            assert_eq!(
                names.matches('|').count(),
                r.matches('|').count(),
                "{names}\n{r}"
            );
            assert!(r.contains("**2.00**") && r.contains("**0.50**"), "{r}");
            assert_eq!(r.contains("| 1809 | 361.8 | 180.9 |"), bytes, "{r}");
        }
    }
}
