//! The `kring` command-line tool as a library: a kcat-like producer
//! (`kring produce`) and the producer benchmark harness (`kring perf`),
//! which measures kring and librdkafka side by side. `main.rs` only parses
//! the command line and calls [`run`]; the library form keeps every piece
//! testable on its own.

pub mod args;
pub mod error;
pub mod log;
pub mod metadata;
pub mod mock_sink;
pub mod perf;
pub mod produce;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// kring: a Kafka producer on io_uring.
#[derive(Parser, Debug)]
#[command(
    name = "kring",
    version,
    about,
    after_help = "Environment:\n  KRING_LOG=LEVEL  kring's log on stderr: error, warn, info, debug or trace \
                  (off by default; -v on `produce` does the same)"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `kring`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Benchmark producing: throughput, CPU per message, delivery latency.
    Perf(Box<perf::PerfArgs>),
    /// Produce records from stdin or files (kcat -P).
    #[command(
        after_help = "Environment:\n  KRING_LOG=LEVEL  kring's log on stderr: error, warn, info, \
                            debug or trace (off by default)"
    )]
    Produce(Box<produce::ProduceArgs>),
    /// List brokers, topics, partitions and leaders (kcat -L).
    Metadata(metadata::MetadataArgs),
    /// Run a kring-mock sink broker until stdin closes (used by `kring perf`).
    #[command(hide = true)]
    MockSink(mock_sink::MockSinkArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Perf(a) => perf::run(*a),
        Command::Produce(a) => produce::run(*a),
        Command::Metadata(a) => metadata::run(a),
        Command::MockSink(a) => mock_sink::run(a),
    }
}
