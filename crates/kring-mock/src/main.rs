//! `kring-mock`: runs a mock Kafka cluster (or a sink) as its own process,
//! for benchmarks and tools such as kcat. Prints the bootstrap address on
//! the first line of stdout, then serves until killed or until stdin closes.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use kring_mock::MockCluster;

/// Run a kring-mock Kafka cluster on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Number of brokers.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// A topic to create, as NAME:PARTITIONS (repeatable).
    #[arg(long = "topic", value_parser = parse_topic)]
    topics: Vec<(String, i32)>,
    /// Sink mode: acknowledge Produce without storing anything.
    #[arg(long)]
    sink: bool,
    /// Listen on PORT_BASE+1, PORT_BASE+2, … instead of ephemeral ports.
    #[arg(long)]
    port_base: Option<u16>,
    /// Partitions of auto-created topics.
    #[arg(long, default_value_t = 1)]
    default_partitions: i32,
    /// Replicas listed per partition in Metadata.
    #[arg(long, default_value_t = 1)]
    replication_factor: i16,
    /// Serve TLS only, with this certificate chain (PEM file; needs
    /// --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM file).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// With --tls-cert: require client certificates signed by a CA in this
    /// PEM file (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Keep running when stdin closes (run until killed).
    #[arg(long)]
    ignore_stdin: bool,
}

fn parse_topic(s: &str) -> Result<(String, i32), String> {
    let (name, n) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}': expected NAME:PARTITIONS"))?;
    let n: i32 = n
        .parse()
        .map_err(|_| format!("'{n}' is not a partition count"))?;
    if name.is_empty() || n < 1 {
        return Err(format!(
            "'{s}': expected NAME:PARTITIONS with PARTITIONS >= 1"
        ));
    }
    Ok((name.to_string(), n))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut b = MockCluster::builder()
        .brokers(args.brokers)
        .sink(args.sink)
        .default_partitions(args.default_partitions)
        .replication_factor(args.replication_factor);
    if let Some(p) = args.port_base {
        b = b.port_base(p);
    }
    for (name, n) in &args.topics {
        b = b.topic(name.clone(), *n);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let pems = read(cert).and_then(|c| Ok((c, read(key)?)));
        let client_ca = args.tls_client_ca.as_deref().map(read).transpose();
        match (pems, client_ca) {
            (Ok((c, k)), Ok(ca)) => {
                b = b.tls(c, k);
                if let Some(ca) = ca {
                    b = b.tls_client_auth(ca);
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("kring-mock: reading TLS files: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let cluster = match b.build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kring-mock: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", cluster.bootstrap_servers());
        let _ = out.flush();
    }
    if args.ignore_stdin {
        loop {
            std::thread::park();
        }
    }
    // Serve until stdin reaches EOF (the parent closed it or exited).
    let mut line = String::new();
    let mut stdin = std::io::stdin().lock();
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
    let elapsed = started.elapsed();
    if let Some(s) = cluster.sink_stats() {
        let cpu = kring_mock::procstat::cpu_time(None).unwrap_or_default();
        eprintln!(
            "kring-mock sink: {} requests, {} records, {} bytes in {:.1}s; cpu user {:.2}s system {:.2}s",
            s.requests,
            s.records,
            s.bytes,
            elapsed.as_secs_f64(),
            cpu.user.as_secs_f64(),
            cpu.system.as_secs_f64()
        );
    }
    drop(cluster);
    ExitCode::SUCCESS
}
