//! The `kring` binary end to end: `produce` and `metadata` against an
//! in-process kring-mock cluster (real wire protocol over TCP), checked in
//! the records the mock stored.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kring_mock::MockCluster;
use kring_protocol::record::Compression;

fn kring(args: &[&str], stdin: &[u8]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kring"))
        .args(args)
        .env_remove("KRING_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kring");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().expect("wait for kring");
    (out, start.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn values(mock: &MockCluster, topic: &str, partition: i32) -> Vec<(Option<String>, String)> {
    mock.records(topic, partition)
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.key.map(|k| text(&k)),
                text(&r.value.expect("non-null value")),
            )
        })
        .collect()
}

/// A port with nothing listening: bound, then released.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn produce_fails_fast_with_the_cause_when_no_broker_answers() {
    let brokers = format!("127.0.0.1:{}", dead_port());
    let (out, took) = kring(
        &["produce", "-b", &brokers, "-t", "t", "-m", "2"],
        b"one\ntwo\nthree\n",
    );
    let err = text(&out.stderr);
    println!("took {took:?}; stderr: {err}");
    assert!(!out.status.success(), "must fail: {err}");
    // -m 2 plus process start and close; max.block.ms (60 s) per record
    // before -m existed.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        err.contains("Connection refused") || err.contains("connection refused"),
        "the cause is named: {err}"
    );
    assert!(err.contains(&brokers), "{err}");
}

#[test]
fn produce_fails_fast_for_a_topic_the_brokers_refuse() {
    let mock = MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .unwrap();
    let (out, took) = kring(
        &[
            "produce",
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "nope",
            "-m",
            "1",
        ],
        b"x\n",
    );
    let err = text(&out.stderr);
    println!("took {took:?}; stderr: {err}");
    assert!(!out.status.success());
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn keys_delimiters_partition_headers_and_codec_reach_the_broker() {
    let mock = MockCluster::builder().topic("t", 3).build().unwrap();
    let (out, _) = kring(
        &[
            "produce",
            "-P",
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "t",
            "-p",
            "2",
            "-D",
            ";;",
            "-K",
            ":",
            "-k",
            "fixed",
            "-H",
            "h=1",
            "-z",
            "lz4",
            "-T",
        ],
        b"k1:v1;;k2:v:2;;no key;;",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        values(&mock, "t", 2),
        vec![
            (Some("k1".into()), "v1".into()),
            (Some("k2".into()), "v:2".into()),
            (Some("fixed".into()), "no key".into()),
        ]
    );
    for r in mock.records("t", 2).unwrap() {
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].0, "h");
        assert_eq!(r.headers[0].1.as_deref(), Some(&b"1"[..]));
    }
    assert!(mock.records("t", 0).unwrap().is_empty());
    assert!(mock.records("t", 1).unwrap().is_empty());
    for b in mock.batches("t", 2).unwrap() {
        assert_eq!(b.header.compression().unwrap(), Compression::Lz4);
    }
    // -T echoes what was sent, with the delimiter.
    assert_eq!(text(&out.stdout), "k1:v1;;k2:v:2;;no key;;");
}

#[test]
fn minus_one_is_the_partitioner_and_c_stops_after_count() {
    let mock = MockCluster::builder().topic("t", 4).build().unwrap();
    let input: String = (0..20).map(|i| format!("key{i}:v{i}\n")).collect();
    let (out, _) = kring(
        &[
            "produce",
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "t",
            "-p",
            "-1",
            "-K",
            ":",
            "-c",
            "12",
            "-q",
        ],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "-q prints no summary");
    let per_partition: Vec<usize> = (0..4).map(|p| values(&mock, "t", p).len()).collect();
    assert_eq!(per_partition.iter().sum::<usize>(), 12, "{per_partition:?}");
    assert!(
        per_partition.iter().filter(|&&n| n > 0).count() > 1,
        "keys spread over partitions: {per_partition:?}"
    );
    // Same key, same partition: each key went where murmur2 puts it.
    for p in 0..4 {
        for (k, v) in values(&mock, "t", p) {
            assert_eq!(k.unwrap().replace("key", "v"), v);
        }
    }
}

#[test]
fn files_are_one_record_each_and_l_splits_one() {
    let dir = std::env::temp_dir().join(format!("kring-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a: PathBuf = dir.join("a.txt");
    let b: PathBuf = dir.join("b.txt");
    std::fs::write(&a, "line 1\nline 2\n").unwrap();
    std::fs::write(&b, "other").unwrap();
    let mock = MockCluster::builder().topic("t", 1).build().unwrap();
    let bs = mock.bootstrap_servers();
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (out, _) = kring(&["produce", "-b", &bs, "-t", "t", a_s, b_s], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (out, _) = kring(&["produce", "-b", &bs, "-t", "t", "-l", a_s], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (out, _) = kring(&["produce", "-b", &bs, "-t", "t", "-l", a_s, b_s], b"");
    assert!(!out.status.success(), "-l takes one file");
    let got: Vec<String> = values(&mock, "t", 0).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, vec!["line 1\nline 2\n", "other", "line 1", "line 2"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn x_list_prints_every_property_and_help_mentions_kring_log() {
    let (out, _) = kring(&["produce", "-X", "list"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for name in kring::config::PROPERTY_NAMES {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from -X list"));
        assert!(line.len() > name.len() + 10, "{line}");
    }
    for args in [&["--help"][..], &["produce", "--help"][..]] {
        let (out, _) = kring(args, b"");
        assert!(text(&out.stdout).contains("KRING_LOG"), "{args:?}");
    }
    // A bad property is still refused, naming it.
    let (out, _) = kring(
        &[
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-X",
            "lingr.ms=5",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("linger.ms"));
}

#[test]
fn metadata_lists_what_the_cluster_serves() {
    let mock = MockCluster::builder()
        .brokers(3)
        .replication_factor(2)
        .topic("alpha", 3)
        .topic("beta", 1)
        .build()
        .unwrap();
    let bs = mock.bootstrap_servers();
    let (out, _) = kring(&["metadata", "-b", &bs], b"");
    let listing = text(&out.stdout);
    println!("{listing}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(listing.contains(" 3 brokers:"), "{listing}");
    for id in mock.broker_ids() {
        let addr = mock.broker_addr(id).unwrap();
        assert!(
            listing.contains(&format!("broker {id} at {addr}")),
            "{listing}"
        );
    }
    assert!(listing.contains("broker 1 at") && listing.contains("(controller)"));
    assert!(
        listing.contains("topic \"alpha\" with 3 partitions:"),
        "{listing}"
    );
    assert!(
        listing.contains("topic \"beta\" with 1 partitions:"),
        "{listing}"
    );
    for p in 0..3 {
        let leader = mock.leader("alpha", p).unwrap();
        assert!(
            listing.contains(&format!("partition {p}, leader {leader}, replicas: ")),
            "{listing}"
        );
    }

    // -t restricts; an unknown topic shows its error.
    let (out, _) = kring(&["metadata", "-b", &bs, "-t", "beta", "-t", "gamma"], b"");
    let listing = text(&out.stdout);
    assert!(out.status.success());
    assert!(!listing.contains("alpha"), "{listing}");
    assert!(listing.contains("topic \"beta\""), "{listing}");
    assert!(
        listing.contains("topic \"gamma\" with 0 partitions: error UNKNOWN_TOPIC_OR_PARTITION"),
        "{listing}"
    );

    // JSON.
    let (out, _) = kring(&["metadata", "-b", &bs, "-J"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["brokers"].as_array().unwrap().len(), 3);
    let alpha = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "alpha")
        .unwrap();
    assert_eq!(alpha["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        alpha["partitions"][0]["leader"],
        mock.leader("alpha", 0).unwrap()
    );
    assert_eq!(
        alpha["partitions"][0]["replicas"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn metadata_with_no_broker_fails_with_the_cause() {
    let brokers = format!("127.0.0.1:{}", dead_port());
    let (out, took) = kring(&["metadata", "-b", &brokers, "-m", "2"], b"");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refused"), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
