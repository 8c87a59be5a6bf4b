//! Keyed workloads: every client must put each key where the harness's
//! key→partition table says (the latency probes of kring's side rely on
//! it, and the clients are only comparable if they spread records alike).
//! Checked on what a storing kring-mock cluster received from a short run
//! of each client.

use std::io::Read;
use std::process::Stdio;

use clap::Parser;
use kring_mock::MockCluster;

use super::result::RunResult;
use super::workload::{Keys, Workload};
use super::{java_client, kring_client, rdkafka_client};

#[derive(Parser)]
struct W {
    #[command(flatten)]
    w: Workload,
}

const PARTITIONS: u32 = 16;
const KEYS: u32 = 1000;
const RECORDS: u64 = 3000;

fn workload(topic: &str) -> Workload {
    W::try_parse_from([
        "t",
        "--topic",
        topic,
        "--partitions",
        &PARTITIONS.to_string(),
        "--keys",
        &KEYS.to_string(),
        "--records",
        &RECORDS.to_string(),
        "--value-sizes",
        "10:3,200:1",
    ])
    .unwrap()
    .w
}

/// Every keyed record stored in `topic` is in its key's partition of the
/// table; returns how many keyed records there are and how many
/// partitions hold one.
fn check_placement(cluster: &MockCluster, topic: &str, keys: &Keys) -> (u64, usize) {
    let mut keyed = 0;
    let mut used = 0;
    for p in 0..PARTITIONS as i32 {
        let mut here = 0;
        for r in cluster.records(topic, p).unwrap() {
            // Warm-up records carry no key and go to explicit partitions.
            let Some(k) = r.key else { continue };
            let i: usize = std::str::from_utf8(&k[4..])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("{topic}: unexpected key {k:?}"));
            assert_eq!(keys.key(i), &k[..], "{topic}: key bytes");
            assert_eq!(
                keys.partition(i),
                p,
                "{topic}: key {i} stored in partition {p}, the table says {}",
                keys.partition(i)
            );
            here += 1;
        }
        keyed += here;
        used += usize::from(here > 0);
    }
    (keyed, used)
}

#[test]
fn every_client_puts_each_key_where_the_table_says() {
    let n = PARTITIONS as i32;
    let cluster = MockCluster::builder()
        .topic("keyed-kring", n)
        .topic("keyed-librdkafka", n)
        .topic("keyed-java", n)
        .build()
        .unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let keys = Keys::new(KEYS, PARTITIONS);

    let r = kring_client::run(&workload("keyed-kring"), &bootstrap, false).unwrap();
    assert_eq!((r.acked, r.failed), (RECORDS, 0), "{r:?}");
    let (keyed, used) = check_placement(&cluster, "keyed-kring", &keys);
    assert_eq!(keyed, RECORDS);
    assert_eq!(used, PARTITIONS as usize);
    // Mixed sizes: 3 in 4 values of 10 B, 1 in 4 of 200 B.
    assert!(
        (40.0..=65.0).contains(&r.avg_value_bytes),
        "{}",
        r.avg_value_bytes
    );

    let r = rdkafka_client::run(&workload("keyed-librdkafka"), &bootstrap, false).unwrap();
    assert_eq!((r.acked, r.failed), (RECORDS, 0), "{r:?}");
    assert_eq!(
        check_placement(&cluster, "keyed-librdkafka", &keys),
        (RECORDS, PARTITIONS as usize)
    );

    // The Java producer, when its peer can be built here (a JDK and
    // Maven; CI has both for the Apache Kafka tests).
    let dir = match java_client::ensure_built() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("the Java peer is not available, its placement is not checked: {e}");
            return;
        }
    };
    let mut cmd = java_client::command(&dir, &workload("keyed-java"), &bootstrap);
    // No JIT warm-up phase: its keyed records would only add more of the same.
    cmd.args(["--warm-up-ms", "0"]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the Java peer");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    let r = RunResult::from_output(&out).unwrap();
    assert_eq!((r.acked, r.failed), (RECORDS, 0), "{r:?}");
    assert_eq!(
        check_placement(&cluster, "keyed-java", &keys),
        (RECORDS, PARTITIONS as usize)
    );
}
