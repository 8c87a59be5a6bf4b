//! The `kring` binary: parses the command line and runs it (see the
//! `kring_cli` library for everything else).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    kring_cli::log::init_from_env();
    match kring_cli::run(kring_cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kring: {e}");
            ExitCode::FAILURE
        }
    }
}
