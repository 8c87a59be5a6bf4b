//! `kring produce` end to end: records from stdin land in a kring-mock
//! cluster with the keys, values and headers the flags describe, and
//! records the broker rejects make the command fail and name them.

use std::io::Write;
use std::process::{Command, Stdio};

use kring_mock::MockCluster;

/// A record's key and value as stored.
type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn produce(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kring"))
        .arg("produce")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kring produce");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_records_with_keys_and_headers_land_in_order() {
    let cluster = MockCluster::builder().topic("t", 2).build().unwrap();
    let out = produce(
        &[
            "-b",
            &cluster.bootstrap_servers(),
            "-t",
            "t",
            "-p",
            "1",
            "-K",
            ":",
            "-H",
            "h1=x",
            "-H",
            "h2=y=z",
            "-X",
            "linger.ms=1",
        ],
        b"k1:v1\nv2\n:v3\nk4:v:4",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = cluster.records("t", 1).unwrap();
    let kv: Vec<KeyValue<'_>> = recs
        .iter()
        .map(|r| (r.key.as_deref(), r.value.as_deref()))
        .collect();
    assert_eq!(
        kv,
        vec![
            (Some(&b"k1"[..]), Some(&b"v1"[..])),
            (None, Some(&b"v2"[..])),
            (Some(&b""[..]), Some(&b"v3"[..])),
            (Some(&b"k4"[..]), Some(&b"v:4"[..])),
        ]
    );
    for r in &recs {
        assert_eq!(
            r.headers,
            vec![
                ("h1".to_string(), Some(bytes::Bytes::from_static(b"x"))),
                ("h2".to_string(), Some(bytes::Bytes::from_static(b"y=z"))),
            ]
        );
    }
    assert!(cluster.records("t", 0).unwrap().is_empty());
}

#[test]
fn custom_record_delimiter_and_file_input() {
    let cluster = MockCluster::builder().topic("d", 1).build().unwrap();
    let dir = std::env::temp_dir().join(format!("kring-produce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("in.txt");
    std::fs::write(&file, b"a;;b\nc;;").unwrap();
    let out = produce(
        &[
            "-b",
            &cluster.bootstrap_servers(),
            "-t",
            "d",
            "-D",
            ";;",
            "-f",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: Vec<Vec<u8>> = cluster
        .records("d", 0)
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap().to_vec())
        .collect();
    assert_eq!(values, vec![b"a".to_vec(), b"b\nc".to_vec()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_record_is_named_and_the_exit_code_is_non_zero() {
    let cluster = MockCluster::builder().topic("f", 1).build().unwrap();
    // Partition 5 does not exist: that record fails, the others land.
    let out = produce(
        &[
            "-b",
            &cluster.bootstrap_servers(),
            "-t",
            "f",
            "-p",
            "5",
            "-X",
            "max.block.ms=2000",
        ],
        b"only\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record 0 failed"), "{stderr}");
}

/// `-X transactional.id=...`: the whole input is one transaction,
/// committed when every record was written; when one fails, the rest is
/// aborted and read_committed sees none of it.
#[test]
fn a_transactional_input_commits_whole_or_aborts() {
    let cluster = MockCluster::builder().topic("tx", 2).build().unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let args = |partition: &'static str| {
        vec![
            "-b".to_owned(),
            bootstrap.clone(),
            "-t".to_owned(),
            "tx".to_owned(),
            "-p".to_owned(),
            partition.to_owned(),
            "-X".to_owned(),
            "transactional.id=cli-tx".to_owned(),
            "-X".to_owned(),
            "max.block.ms=2000".to_owned(),
        ]
    };
    let run = |partition: &'static str, input: &[u8]| {
        let a = args(partition);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        produce(&a, input)
    };
    let ok = run("0", b"a\nb\nc\n");
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(stderr.contains("transaction committed"), "{stderr}");
    let committed: Vec<Vec<u8>> = cluster
        .read_committed("tx", 0)
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap().to_vec())
        .collect();
    assert_eq!(committed, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);

    // Partition 7 does not exist: the record fails and the transaction is
    // aborted.
    let bad = run("7", b"x\n");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{stderr}");
    assert!(stderr.contains("transaction aborted"), "{stderr}");
    assert_eq!(cluster.read_committed("tx", 0).unwrap().len(), 3);
    assert!(cluster.read_committed("tx", 1).unwrap().is_empty());
}
