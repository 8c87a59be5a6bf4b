//! `kring perf`: the producer benchmark harness.
//!
//! Three roles share this command:
//! - **orchestrator** (no `--client`): starts the broker in its own process,
//!   then runs each measured client in a fresh child process per run
//!   (`kring perf --client NAME --result-line ...`), alternating clients, and
//!   prints every run, the medians and the kring/librdkafka ratios;
//! - **client** (`--client NAME`): runs the workload once in this process and
//!   reports it (one `key=value` line with `--result-line`, see [`mod@line`]), or measures idle wake-ups (`--idle`);
//! - **matrix** (`kring perf matrix`): the whole benchmark grid, as markdown.
//!
//! Separate processes make CPU and memory attributable (getrusage of the
//! client's own process) and keep runs from disturbing one another.

pub mod broker;
pub mod idle;
pub mod java_client;
pub mod kring_client;
pub mod line;
pub mod matrix;
pub mod measure;
pub mod orchestrate;
pub mod rdkafka_client;
pub mod result;
pub mod sweep;
pub mod tls;
pub mod workload;

#[cfg(test)]
mod keyed_tests;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::args::duration_arg;
use crate::error::CliError;
use workload::Workload;

/// A producer client the harness can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    /// kring (this project's producer).
    Kring,
    /// librdkafka (bundled, via the rdkafka crate's BaseProducer).
    Librdkafka,
    /// The Apache Kafka Java producer (kafka-clients), in a JVM of its own.
    Java,
}

impl ClientKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Kring => "kring",
            ClientKind::Librdkafka => "librdkafka",
            ClientKind::Java => "java",
        }
    }
}

/// The clients the benchmark matrix measures by default, in the order runs
/// alternate (`--clients` adds the Java producer).
pub fn all_clients() -> Vec<ClientKind> {
    vec![ClientKind::Kring, ClientKind::Librdkafka]
}

/// Which broker to start when no `--bootstrap` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// kring-mock in sink mode: acknowledges produce requests without storing.
    Sink,
    /// tansu with in-memory storage (found via $TANSU, ~/.cache/kring/bin, /work/tools or $PATH).
    Tansu,
    /// Apache Kafka (one KRaft node in its own JVM, via kring-testcluster;
    /// needs $KRING_KAFKA_LIBS from scripts/install-deps).
    Kafka,
}

/// Arguments of `kring perf`.
#[derive(Args, Clone, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PerfArgs {
    /// The benchmark matrix instead of a single workload.
    #[command(subcommand)]
    pub command: Option<PerfCommand>,
    /// The workload.
    #[command(flatten)]
    pub workload: Workload,
    /// Broker to produce to (host:port); default: start one (see --broker).
    #[arg(long, short = 'b')]
    pub bootstrap: Option<String>,
    /// Broker to start when no --bootstrap is given, in its own process.
    #[arg(long, value_enum, default_value = "sink")]
    pub broker: BrokerKind,
    /// Also run the same workload through these clients (comma-separated,
    /// e.g. `librdkafka,java`) and print kring's ratios to each.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub vs: Vec<ClientKind>,
    /// Connect over TLS: the kring-mock sink serves TLS with a certificate
    /// made for this run, and every client gets `security.protocol=SSL`
    /// and `ssl.ca.location` (kring and librdkafka only).
    #[arg(long)]
    pub tls: bool,
    /// Runs per client (median reported); default 1, or 3 with --vs.
    #[arg(long)]
    pub runs: Option<u32>,
    /// Latency at fixed rates: measure every client's maximum, then run
    /// them all at 25%, 50% and 90% of the slowest one's msgs/s (--rate)
    /// and print p50 / p99 / p99.9 side by side.
    #[arg(long, conflicts_with_all = ["rate", "idle", "client"])]
    pub latency_sweep: bool,
    /// Run this client in this process instead of orchestrating child processes.
    #[arg(long, value_enum)]
    pub client: Option<ClientKind>,
    /// With --client: print the result as one `key=value` line on stdout
    /// (what the orchestrating parent reads).
    #[arg(long, requires = "client")]
    pub result_line: bool,
    /// Measure an idle producer's wake-ups over this long (e.g. 10s) instead of throughput.
    #[arg(long, value_parser = duration_arg)]
    pub idle: Option<Duration>,
}

/// Subcommands of `kring perf`.
#[derive(Subcommand, Clone, Debug)]
pub enum PerfCommand {
    /// Run the whole benchmark matrix and write markdown tables.
    Matrix(matrix::MatrixArgs),
}

/// Runs `kring perf`.
pub fn run(args: PerfArgs) -> Result<(), CliError> {
    if let Some(PerfCommand::Matrix(m)) = args.command {
        return matrix::run(m);
    }
    match args.client {
        Some(client) => orchestrate::run_in_process(&args, client),
        None => orchestrate::orchestrate(&args).map(|_| ()),
    }
}
