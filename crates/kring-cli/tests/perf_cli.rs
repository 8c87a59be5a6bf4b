//! End-to-end checks of the `kring` binary: the hidden mock sink, one
//! measured librdkafka run reported as a result line, and the orchestrator's
//! table.
//! Each run is small (a few thousand records) so the suite stays fast.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kring_cli::perf::result::RunResult;

fn kring() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kring"))
}

#[test]
fn mock_sink_prints_its_address_and_stops_when_stdin_closes() {
    let mut child = kring()
        .args(["mock-sink", "--topic", "t", "--partitions", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kring mock-sink");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().expect("a socket address");
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn one_librdkafka_run_reports_a_result_line() {
    let out = kring()
        .args([
            "perf",
            "--client",
            "librdkafka",
            "--result-line",
            "--records",
            "5000",
            "--partitions",
            "4",
            "--value-size",
            "50",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run kring perf");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v = RunResult::from_output(&stdout).expect("one result line");
    assert_eq!(v.client, "librdkafka");
    assert_eq!(v.records, 5000);
    assert_eq!(v.acked, 5000);
    assert_eq!(v.failed, 0);
    assert!(v.msgs_per_s > 0.0);
    assert!(v.cpu_s_per_m > 0.0);
    let (p50, p99) = (v.p50_ms, v.p99_ms);
    assert!(p50 > 0.0 && p50 <= p99, "p50 {p50} p99 {p99}");
}

#[test]
fn in_process_run_prints_the_workload_and_a_row() {
    let out = kring()
        .args([
            "perf",
            "--client",
            "librdkafka",
            "--records",
            "3000",
            "--partitions",
            "2",
            "--compression",
            "lz4",
            "--acks",
            "all",
        ])
        .output()
        .expect("run kring perf");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("acks=all"), "{stdout}");
    assert!(stdout.contains("idempotence=on"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("librdkafka")),
        "{stdout}"
    );
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = kring()
        .args(["perf", "--duration", "ten"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("duration"), "{stderr}");
}

#[test]
fn latency_sweep_paces_every_client_at_fractions_of_the_slowest() {
    let out = kring()
        .args([
            "perf",
            "--latency-sweep",
            "--vs",
            "librdkafka",
            "--runs",
            "1",
            "--records",
            "4000",
            "--keys",
            "500",
            "--value-sizes",
            "50:3,500:1",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run kring perf --latency-sweep");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("500 distinct keys"), "{stdout}");
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table.len(), 5, "{stdout}");
    assert!(table[1].starts_with("| max | unpaced |"), "{stdout}");
    for (row, load) in table[2..].iter().zip(["25%", "50%", "90%"]) {
        assert!(row.starts_with(&format!("| {load} | ")), "{stdout}");
        // Every client's p50 / p99 / p99.9 and kring's p99 ratio.
        assert_eq!(row.matches(" / ").count(), 4, "{row}");
        assert!(row.contains("**"), "{row}");
    }
}
