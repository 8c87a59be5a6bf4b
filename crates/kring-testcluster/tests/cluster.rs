//! The harness against real Apache Kafka nodes: start, produce with kring,
//! SIGKILL and restart on the same storage, SIGSTOP/SIGCONT seen through
//! Metadata, controlled shutdown and leader moves on three nodes, and
//! teardown both by `Drop` and by the watchdog when the test process is
//! SIGKILLed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kring::{Acks, Producer, Record};
use kring_testcluster::{ClusterConfig, ClusterError, KafkaCluster};

/// Sends `n` records to `topic`/`partition` and returns their offsets.
fn produce(bootstrap: &str, topic: &str, partition: i32, n: usize) -> Vec<i64> {
    // Not idempotent: these tests are about the harness, and an idempotent
    // kring producer can lose records written to a topic created a moment
    // before (see e2e_kafka_interop's idempotent_writes_to_just_created_topics).
    let p = Producer::builder()
        .bootstrap(bootstrap)
        .idempotence(false)
        .acks(Acks::All)
        .linger(Duration::from_millis(1))
        .delivery_timeout(Duration::from_secs(60))
        .build()
        .expect("producer");
    let futures: Vec<_> = (0..n)
        .map(|i| {
            let v = format!("value-{i}");
            p.send(Record::new(topic, v.as_bytes()).partition(partition))
                .expect("send")
        })
        .collect();
    let offsets = futures
        .iter()
        .map(|f| {
            f.wait_timeout(Duration::from_secs(90))
                .expect("a delivery result")
                .expect("delivered")
                .offset
        })
        .collect();
    assert!(p.close_timeout(Duration::from_secs(30)));
    offsets
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_node_produce_kill_restart_pause_resume() {
    let t = Instant::now();
    let cluster = KafkaCluster::start(ClusterConfig::new(1)).unwrap();
    eprintln!("1-node cluster up in {:?}", t.elapsed());
    assert_eq!(cluster.node_ids(), vec![0]);
    assert_eq!(cluster.bootstrap(), cluster.broker_addr(0).to_string());
    let dir = cluster.node_dir(0);
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());

    cluster.create_topic("harness", 2, 1, &[]).unwrap();
    assert_eq!(cluster.leader_of("harness", 0).unwrap(), 0);
    assert_eq!(cluster.leader_of("harness", 1).unwrap(), 0);
    match cluster.create_topic("harness", 2, 1, &[]) {
        Err(ClusterError::Kafka { code, .. }) => assert_eq!(code.name(), "TOPIC_ALREADY_EXISTS"),
        other => panic!("creating a topic twice: {other:?}"),
    }
    assert_eq!(
        produce(&cluster.bootstrap(), "harness", 1, 50),
        (0..50).collect::<Vec<i64>>()
    );

    // SIGKILL: the JVM is gone and the port refuses.
    let pid = cluster.pid(0).unwrap();
    assert!(pid_alive(pid));
    cluster.kill(0);
    assert!(!pid_alive(pid), "java {pid} survived SIGKILL");
    assert!(!cluster.is_running(0));
    assert!(cluster.ping(0, Duration::from_secs(2)).is_err());
    assert!(matches!(
        cluster.wait_all_brokers(Duration::from_secs(1)),
        Err(ClusterError::NotRunning(0))
    ));

    // Restart on the same storage: the log continues where it was.
    let t = Instant::now();
    cluster.restart(0).unwrap();
    eprintln!("node restarted in {:?}", t.elapsed());
    assert_ne!(cluster.pid(0), Some(pid));
    cluster.wait_all_brokers(Duration::from_secs(30)).unwrap();
    assert_eq!(
        produce(&cluster.bootstrap(), "harness", 1, 10),
        (50..60).collect::<Vec<i64>>()
    );

    // SIGSTOP: Metadata goes unanswered; SIGCONT: answered again.
    cluster.pause(0);
    assert!(cluster.is_running(0));
    match cluster.ping(0, Duration::from_millis(1500)) {
        Err(ClusterError::Io { .. }) => {}
        other => panic!("a paused node answered Metadata: {other:?}"),
    }
    cluster.resume(0);
    assert_eq!(cluster.ping(0, Duration::from_secs(30)).unwrap(), vec![0]);

    // Drop kills the JVM and removes the files.
    let pid = cluster.pid(0).unwrap();
    let log = cluster.node_log(0);
    assert!(
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
        "{} is empty",
        log.display()
    );
    drop(cluster);
    assert!(!pid_alive(pid), "java {pid} survived Drop");
    assert!(!dir.exists(), "{} survived Drop", dir.display());
}

#[test]
fn three_nodes_replicated_topic_and_controlled_shutdown() {
    let t = Instant::now();
    let cluster = KafkaCluster::start(ClusterConfig::new(3)).unwrap();
    eprintln!("3-node cluster up in {:?}", t.elapsed());
    assert_eq!(cluster.node_ids(), vec![0, 1, 2]);
    for id in [0, 1, 2] {
        assert_eq!(cluster.brokers_seen_by(id).unwrap(), vec![0, 1, 2]);
    }
    cluster
        .create_topic("replicated", 3, 3, &[("min.insync.replicas", "2")])
        .unwrap();
    for p in cluster.describe_topic("replicated").unwrap() {
        let mut replicas = p.replicas.clone();
        replicas.sort_unstable();
        assert_eq!(replicas, vec![0, 1, 2], "{p:?}");
        assert_eq!(p.isr.len(), 3, "{p:?}");
    }
    assert_eq!(
        produce(&cluster.bootstrap(), "replicated", 0, 20),
        (0..20).collect::<Vec<i64>>()
    );

    // Controlled shutdown of partition 0's leader moves leadership away.
    let leader = cluster.leader_of("replicated", 0).unwrap();
    let t = Instant::now();
    cluster.terminate(leader);
    eprintln!(
        "controlled shutdown of node {leader} took {:?}",
        t.elapsed()
    );
    assert!(!cluster.is_running(leader));
    let moved = eventually(Duration::from_secs(30), || {
        cluster
            .leader_of("replicated", 0)
            .is_ok_and(|l| l != leader)
    });
    assert!(moved, "leadership of replicated-0 stayed on node {leader}");
    // Still writable with min.insync.replicas=2 and one node down.
    assert_eq!(
        produce(&cluster.bootstrap(), "replicated", 0, 5),
        (20..25).collect::<Vec<i64>>()
    );

    let t = Instant::now();
    cluster.restart(leader).unwrap();
    eprintln!("node {leader} rejoined in {:?}", t.elapsed());
    cluster.wait_all_brokers(Duration::from_secs(60)).unwrap();
    for id in [0, 1, 2] {
        assert_eq!(cluster.brokers_seen_by(id).unwrap(), vec![0, 1, 2]);
    }
}

/// Not a test on its own (hence ignored): starts a cluster, prints java's
/// pid and the node directory, and blocks until killed.
/// `watchdog_kills_java_when_the_test_process_dies` runs it.
#[test]
#[ignore = "the child process of watchdog_kills_java_when_the_test_process_dies"]
fn orphan_child() {
    let cluster = KafkaCluster::shared(1);
    // Straight to stdout: libtest captures `println!` unless --nocapture.
    let mut out = std::io::stdout();
    writeln!(
        out,
        "PID {} DIR {}",
        cluster.pid(0).unwrap(),
        cluster.node_dir(0).display()
    )
    .unwrap();
    out.flush().unwrap();
    // Block until the parent SIGKILLs us.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    unreachable!("the parent kills this process");
}

#[test]
fn watchdog_kills_java_when_the_test_process_dies() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "orphan_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            // libtest may have written "test orphan_child ... " first.
            if let Some((_, rest)) = line.trim().split_once("PID ") {
                let (pid, dir) = rest.split_once(" DIR ").unwrap();
                let _ = tx.send((pid.parse::<u32>().unwrap(), PathBuf::from(dir)));
            }
        }
    });
    let Ok((pid, dir)) = rx.recv_timeout(Duration::from_secs(180)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child did not report a running cluster");
    };
    assert!(pid_alive(pid));
    assert!(dir.is_dir());
    child.kill().unwrap(); // SIGKILL: no Drop, no atexit
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || !pid_alive(pid)),
        "java {pid} outlived its test process"
    );
    assert!(
        eventually(Duration::from_secs(20), || !Path::new(&dir).exists()),
        "{} outlived its test process",
        dir.display()
    );
}

#[test]
fn a_node_that_cannot_start_fails_the_start_with_its_log() {
    let t = Instant::now();
    let err = KafkaCluster::start(ClusterConfig::new(1).prop("num.io.threads", "not-a-number"))
        .expect_err("a broker with num.io.threads=not-a-number started");
    eprintln!("start failed after {:?}: {err}", t.elapsed());
    match &err {
        ClusterError::NodeStart { node, tail, .. } => {
            assert_eq!(*node, 0);
            assert!(
                tail.contains("num.io.threads"),
                "the log tail does not say why: {tail}"
            );
        }
        other => panic!("expected NodeStart, got {other:?}"),
    }
    // Reported as soon as the JVM exits, not after the start timeout.
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
}
