//! `kring mock-sink` (hidden): a kring-mock sink in its own process, so
//! that `kring perf` measures a client whose broker's CPU is not its own.
//! `kring perf` starts it by re-executing itself, which needs no second
//! binary on the path. Prints the bootstrap address as the first stdout
//! line and serves until its stdin closes (so it dies with its parent).

use std::io::{Read, Write};

use clap::Args;
use kring_mock::MockCluster;

use crate::error::CliError;

/// Arguments of `kring mock-sink`.
#[derive(Args, Clone, Debug)]
pub struct MockSinkArgs {
    /// Topic to create (other topics are created on first use).
    #[arg(long, default_value = "kring-perf")]
    pub topic: String,
    /// Partitions of `--topic` and of auto-created topics.
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
    /// Print the sink's counters to stderr when it stops.
    #[arg(long)]
    pub stats: bool,
    /// Serve TLS with this certificate chain (PEM file); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM file).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Runs the sink until stdin reaches end of file.
pub fn run(a: MockSinkArgs) -> Result<(), CliError> {
    let n = i32::try_from(a.partitions)
        .map_err(|_| CliError::invalid("--partitions", a.partitions.to_string(), "too large"))?;
    let mut builder = MockCluster::sink()
        .default_partitions(n)
        .topic(a.topic.clone(), n);
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| CliError::io("reading a TLS PEM file", e))
        };
        builder = builder.tls(read(cert)?, read(key)?);
    }
    let cluster = builder
        .build()
        .map_err(|e| CliError::Child(format!("kring-mock sink: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", cluster.bootstrap_servers())
            .and_then(|_| out.flush())
            .map_err(|e| CliError::io("printing the bootstrap address", e))?;
    }
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    if a.stats {
        if let Some(s) = cluster.sink_stats() {
            eprintln!(
                "kring-mock sink: {} produce requests, {} records, {} bytes",
                s.requests, s.records, s.bytes
            );
        }
    }
    Ok(())
}
