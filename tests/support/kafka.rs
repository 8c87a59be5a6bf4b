//! Reading a topic back with the Java consumer (kafka-clients 4.4.0): the
//! `dev.kring.kafka.ReadTopic` program of `tests/kafka/src`, built by
//! `scripts/install-deps` into `kring-kafka-support.jar`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::{parse_line, ReadRecord};

/// Reads partitions `0..partitions` of `topic` from the beginning to their
/// end offsets with the Java consumer (CRC checks on). Sorted by
/// (partition, offset).
pub fn read_java(bootstrap: &str, topic: &str, partitions: i32) -> Vec<ReadRecord> {
    read_java_isolated(bootstrap, topic, partitions, "read_uncommitted")
}

/// [`read_java`] with the consumer's `isolation.level` (`read_committed`:
/// up to the last stable offsets, aborted transactions skipped).
pub fn read_java_isolated(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> Vec<ReadRecord> {
    let java = kring_testcluster::java_binary().unwrap_or_else(|e| panic!("{e}"));
    let libs = kring_testcluster::kafka_libs().unwrap_or_else(|e| panic!("{e}"));
    let jar = kring_testcluster::support_jar().unwrap_or_else(|e| panic!("{e}"));
    let classpath = format!("{}:{}", jar.display(), libs.join("*").display());
    let mut child = Command::new(java)
        .args([
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-cp",
            &classpath,
            "dev.kring.kafka.ReadTopic",
            bootstrap,
            topic,
            &partitions.to_string(),
            "120000",
            isolation,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("java");
    let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut out: Vec<ReadRecord> = stdout
        .lines()
        .map(|l| parse_line(&l.expect("reading the Java reader's output")))
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "the Java reader failed ({status})");
    out.sort();
    out
}
