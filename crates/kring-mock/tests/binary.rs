//! The `kring-mock` binary: prints its bootstrap address first, serves,
//! and exits when stdin closes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::Client;
use kring_protocol::messages::metadata::MetadataRequest;

#[test]
fn serves_until_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kring-mock"))
        .args(["--brokers", "2", "--topic", "t:3", "--topic", "u:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addrs: Vec<&str> = line.trim().split(',').collect();
    assert_eq!(addrs.len(), 2);
    let mut cl = Client::connect(addrs[1].parse().unwrap());
    let md = cl.call(
        9,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    let mut topics: Vec<(String, usize)> = md
        .topics
        .iter()
        .map(|t| (t.name.clone().unwrap(), t.partitions.len()))
        .collect();
    topics.sort();
    assert_eq!(topics, [("t".to_string(), 3), ("u".to_string(), 1)]);
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(cl.is_closed());
}

#[test]
fn rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_kring-mock"))
        .args(["--topic", "nopartitions"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME:PARTITIONS"));
}
