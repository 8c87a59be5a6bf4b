//! Running measured clients in child processes and summarising them.
//!
//! Each run is `kring perf --client NAME --result-line --bootstrap ADDR <workload>`
//! in a fresh process; clients alternate run by run so slow drifts of a
//! noisy machine hit both alike. The broker lives in yet another process:
//! one kring-mock sink for all runs (it stores nothing), or a fresh tansu
//! per run (its in-memory log grows with every record).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::broker::{ensure_topic, find_tansu, BrokerProcess};
use super::idle::IdleResult;
use super::line::LineError;
use super::result::{median_of, ratio_lines, table_header, table_row, RunResult};
use super::tls::TlsFiles;
use super::workload::Workload;
use super::{java_client, kring_client, rdkafka_client, sweep, BrokerKind, ClientKind, PerfArgs};
use crate::error::CliError;

/// What to measure: the workload, where, which clients, how often.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The workload every client runs.
    pub workload: Workload,
    /// An existing broker, or `None` to start `broker`.
    pub bootstrap: Option<String>,
    /// Broker to start when `bootstrap` is `None`.
    pub broker: BrokerKind,
    /// Clients, in the order they alternate.
    pub clients: Vec<ClientKind>,
    /// Runs per client.
    pub runs: u32,
    /// Print each run's row as it completes (to stdout).
    pub verbose: bool,
    /// Over TLS, to a kring-mock sink serving TLS (`--tls`).
    pub tls: bool,
}

/// Every run and the per-client medians.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each run in the order it ran.
    pub runs: Vec<RunResult>,
    /// One median row per client, in `Plan::clients` order.
    pub medians: Vec<RunResult>,
    /// The broker, for reports.
    pub broker: String,
}

impl Outcome {
    /// The median row of `client`.
    pub fn median(&self, client: ClientKind) -> Option<&RunResult> {
        self.medians.iter().find(|r| r.client == client.name())
    }
}

/// The clients an orchestrated `kring perf` measures.
fn clients_for(args: &PerfArgs) -> Vec<ClientKind> {
    let mut clients = vec![ClientKind::Kring];
    for &vs in &args.vs {
        if !clients.contains(&vs) {
            clients.push(vs);
        }
    }
    clients
}

/// A broker for the runs: either the user's, or one this process started.
struct Broker {
    process: Option<BrokerProcess>,
    bootstrap: String,
    description: String,
}

fn start_broker(
    w: &Workload,
    bootstrap: &Option<String>,
    kind: BrokerKind,
    tls: Option<&TlsFiles>,
) -> Result<Broker, CliError> {
    if let Some(b) = bootstrap {
        ensure_topic(b, &w.topic, w.partitions, &w.properties)?;
        return Ok(Broker {
            process: None,
            bootstrap: b.clone(),
            description: format!("broker at {b}"),
        });
    }
    let p = match kind {
        BrokerKind::Sink => BrokerProcess::mock_sink(&w.topic, w.partitions, tls)?,
        BrokerKind::Tansu => {
            let bin = find_tansu().ok_or_else(|| {
                CliError::Child(
                    "tansu not found: set $TANSU, or run scripts/install-deps to cache it in ~/.cache/kring/bin"
                        .into(),
                )
            })?;
            let p = BrokerProcess::tansu(&bin)?;
            ensure_topic(&p.bootstrap, &w.topic, w.partitions, &w.properties)?;
            p
        }
        BrokerKind::Kafka => {
            let p = BrokerProcess::kafka()?;
            ensure_topic(&p.bootstrap, &w.topic, w.partitions, &w.properties)?;
            p
        }
    };
    Ok(Broker {
        bootstrap: p.bootstrap.clone(),
        description: p.description.clone(),
        process: Some(p),
    })
}

/// Runs one measured run of `client` in a fresh child process: the Java
/// client is its own JVM; kring and librdkafka run in `kring perf --client`.
fn run_measured(client: ClientKind, bootstrap: &str, w: &Workload) -> Result<RunResult, CliError> {
    match client {
        ClientKind::Java => java_client::run(w, bootstrap),
        _ => run_child(client, bootstrap, w, &[], RunResult::from_output),
    }
}

/// Runs one client in a fresh child process and returns the result line it
/// printed on stdout, read by `parse`.
fn run_child<T>(
    client: ClientKind,
    bootstrap: &str,
    w: &Workload,
    extra: &[String],
    parse: fn(&str) -> Result<T, LineError>,
) -> Result<T, CliError> {
    let exe =
        std::env::current_exe().map_err(|e| CliError::io("locating the kring executable", e))?;
    let mut child = Command::new(exe)
        .args([
            "perf",
            "--client",
            client.name(),
            "--result-line",
            "--bootstrap",
            bootstrap,
        ])
        .args(w.to_args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::io(format!("starting the {} client process", client.name()), e))?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .map_err(|e| CliError::io("reading the client's result", e))?;
    let status = child
        .wait()
        .map_err(|e| CliError::io("waiting for the client process", e))?;
    if !status.success() {
        return Err(CliError::Child(format!(
            "the {} client process failed ({status})",
            client.name()
        )));
    }
    parse(&out).map_err(|e| {
        CliError::Child(format!(
            "the {} client printed no readable result: {e}",
            client.name()
        ))
    })
}

/// Measures `plan`: alternating clients, `plan.runs` runs each.
pub fn measure(plan: &Plan) -> Result<Outcome, CliError> {
    let tls = if plan.tls {
        if plan.bootstrap.is_some() || plan.broker != BrokerKind::Sink {
            return Err(CliError::Child(
                "--tls starts the kring-mock sink with TLS; for another broker give \
                 --bootstrap and -X security.protocol=SSL -X ssl.ca.location=..."
                    .into(),
            ));
        }
        if plan.clients.contains(&ClientKind::Java) {
            return Err(CliError::Child(
                "--tls measures kring and librdkafka only".into(),
            ));
        }
        Some(TlsFiles::create()?)
    } else {
        None
    };
    let mut workload = plan.workload.clone();
    if let Some(t) = &tls {
        workload.properties.extend(t.client_properties());
    }
    let w = &workload;
    // A fresh tansu per run: its in-memory log only grows.
    let fresh_per_run = plan.bootstrap.is_none() && plan.broker == BrokerKind::Tansu;
    let mut shared = if fresh_per_run {
        None
    } else {
        Some(start_broker(w, &plan.bootstrap, plan.broker, tls.as_ref())?)
    };
    let mut description = shared
        .as_ref()
        .map(|b| b.description.clone())
        .unwrap_or_default();
    if plan.verbose {
        println!("workload: {}", w.describe());
        if let Some(b) = &shared {
            println!("broker:   {}", b.description);
        } else {
            println!("broker:   a fresh tansu (in-memory storage) per run");
        }
        println!("{}", table_header());
    }
    if plan.clients.contains(&ClientKind::Java) {
        // Build it (once) before anything is measured.
        java_client::ensure_built()?;
    }
    let mut runs = Vec::new();
    for i in 0..plan.runs {
        for &client in &plan.clients {
            let fresh = if fresh_per_run {
                Some(start_broker(w, &None, plan.broker, None)?)
            } else {
                None
            };
            let broker = fresh.as_ref().or(shared.as_ref()).expect("a broker");
            if fresh.is_some() {
                description = "tansu, in-memory storage, a fresh process per run".into();
            }
            let r = run_measured(client, &broker.bootstrap, w)?;
            if plan.verbose {
                println!("{}", table_row(&(i + 1).to_string(), &r));
                let _ = std::io::stdout().flush();
            }
            runs.push(r);
            drop(fresh);
        }
    }
    if let Some(b) = shared.as_mut() {
        if let Some(p) = b.process.take() {
            drop(p);
        }
    }
    let medians: Vec<RunResult> = plan
        .clients
        .iter()
        .map(|c| {
            let mine: Vec<&RunResult> = runs.iter().filter(|r| r.client == c.name()).collect();
            median_of(c.name(), &mine)
        })
        .collect();
    Ok(Outcome {
        runs,
        medians,
        broker: description,
    })
}

/// `kring perf` without `--client`: measure and print.
pub fn orchestrate(args: &PerfArgs) -> Result<(), CliError> {
    let clients = clients_for(args);
    if let Some(window) = args.idle {
        return idle_children(args, &clients, window);
    }
    let runs = args
        .runs
        .unwrap_or(if args.vs.is_empty() { 1 } else { 3 })
        .max(1);
    let plan = Plan {
        workload: args.workload.clone(),
        bootstrap: args.bootstrap.clone(),
        broker: args.broker,
        clients: clients.clone(),
        runs,
        verbose: true,
        tls: args.tls,
    };
    if args.latency_sweep {
        let s = sweep::sweep(&plan, &sweep::DEFAULT_LOADS)?;
        println!(
            "latency at fixed rates (medians of {runs} run(s); rates are % of {}'s {:.0} msgs/s):",
            s.slowest, s.base_rate
        );
        print!("{}", sweep::table(&clients, &s));
        let failed: u64 = std::iter::once(&s.full_speed)
            .chain(s.steps.iter().map(|st| &st.outcome))
            .flat_map(|o| o.runs.iter())
            .map(|r| r.failed)
            .sum();
        if failed > 0 {
            return Err(CliError::Child(format!(
                "{failed} records failed across the runs"
            )));
        }
        return Ok(());
    }
    let outcome = measure(&plan)?;
    if runs > 1 || clients.len() > 1 {
        println!("median of {runs} run(s):");
        for m in &outcome.medians {
            println!("{}", table_row("med", m));
        }
    }
    print_ratios(&outcome);
    let failed: u64 = outcome.runs.iter().map(|r| r.failed).sum();
    if failed > 0 {
        return Err(CliError::Child(format!(
            "{failed} records failed across the runs"
        )));
    }
    Ok(())
}

fn print_ratios(outcome: &Outcome) {
    let Some(k) = outcome.median(ClientKind::Kring) else {
        return;
    };
    for peer in [ClientKind::Librdkafka, ClientKind::Java] {
        if let Some(p) = outcome.median(peer) {
            print!("{}", ratio_lines(k, p));
        }
    }
}

fn idle_children(
    args: &PerfArgs,
    clients: &[ClientKind],
    window: Duration,
) -> Result<(), CliError> {
    let broker = start_broker(&args.workload, &args.bootstrap, args.broker, None)?;
    println!("broker: {}", broker.description);
    let extra = vec![
        "--idle".to_string(),
        super::super::args::format_duration(window),
    ];
    if clients.contains(&ClientKind::Java) {
        return Err(CliError::invalid(
            "--vs",
            "java",
            "--idle measures kring and librdkafka only",
        ));
    }
    for &c in clients {
        let r = run_child(
            c,
            &broker.bootstrap,
            &args.workload,
            &extra,
            IdleResult::from_output,
        )?;
        print!("{}", r.report());
    }
    Ok(())
}

/// `kring perf --client NAME`: one run (or idle measurement) in this process.
pub fn run_in_process(args: &PerfArgs, client: ClientKind) -> Result<(), CliError> {
    let broker = start_broker(&args.workload, &args.bootstrap, args.broker, None)?;
    let w = &args.workload;
    if let Some(window) = args.idle {
        let r = match client {
            ClientKind::Kring => kring_client::idle(w, &broker.bootstrap, window)?,
            ClientKind::Librdkafka => rdkafka_client::idle(w, &broker.bootstrap, window)?,
            ClientKind::Java => {
                return Err(CliError::invalid(
                    "--client",
                    "java",
                    "--idle measures kring and librdkafka only",
                ))
            }
        };
        if args.result_line {
            println!("{}", r.to_line());
        } else {
            print!("{}", r.report());
        }
        return Ok(());
    }
    let r = match client {
        ClientKind::Kring => kring_client::run(w, &broker.bootstrap, true)?,
        ClientKind::Librdkafka => rdkafka_client::run(w, &broker.bootstrap, true)?,
        ClientKind::Java => java_client::run(w, &broker.bootstrap)?,
    };
    if args.result_line {
        println!("{}", r.to_line());
    } else {
        println!("workload: {}", w.describe());
        println!("broker:   {}", broker.description);
        println!("{}", table_header());
        println!("{}", table_row("1", &r));
        if r.failed > 0 {
            return Err(CliError::Child(format!("{} records failed", r.failed)));
        }
    }
    Ok(())
}
