//! The command line that starts tansu, the single-node broker the tests
//! and `kring perf --broker tansu` use beside Apache Kafka: one place for
//! its flags, which both starters share.

use std::path::Path;
use std::process::{Command, Stdio};

/// `binary` as a broker listening (and advertising itself) on
/// 127.0.0.1:`port`, with in-memory storage and its output discarded.
/// The caller spawns it and waits for the port to accept connections.
pub fn tansu_command(binary: &Path, port: u16) -> Command {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut c = Command::new(binary);
    c.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}
