//! Shared helpers of the end-to-end tests: a tansu broker on a free port,
//! and two independent readers (librdkafka through the rdkafka crate, and
//! kafka-python) that read a topic back with CRC checks on.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

mod kafka;
#[allow(dead_code)]
pub mod pki;
#[allow(dead_code)] // only the SASL tests use it
pub mod token_server;
pub mod trace;
mod workload;
#[allow(unused_imports)] // not every test binary reads with Java
pub use kafka::*;
#[allow(unused_imports)] // not every test binary uses the workload helpers
pub use workload::*;

/// The I/O backend the end-to-end tests run on: `KRING_TEST_IO_BACKEND`
/// (`auto`, `io_uring`, `epoll`; scripts/test runs the suite on epoll a
/// second time), else `auto`. An explicit backend never falls back, so
/// `epoll` really tests epoll.
pub fn io_backend() -> kring::IoBackend {
    match std::env::var("KRING_TEST_IO_BACKEND") {
        Ok(v) if v.is_empty() => kring::IoBackend::Auto,
        Ok(v) => kring::IoBackend::parse(&v).unwrap_or_else(|| {
            panic!("KRING_TEST_IO_BACKEND={v}: expected auto, io_uring or epoll")
        }),
        Err(_) => kring::IoBackend::Auto,
    }
}

/// Waits until an I/O thread has settled after its last activity: its
/// wake-up count (read by `wakeups`) unchanged for 300 ms. The kernel may
/// still wake a thread that just finished writing (a TCP acknowledgement
/// freeing send-buffer space raises an edge-triggered `EPOLLOUT`, delayed
/// by up to 200 ms), which is not an idle wake-up; an idle test measures
/// from here. Panics if the count never holds still within 10 s.
pub fn wait_until_settled(wakeups: impl Fn() -> u64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut last = wakeups();
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(300) {
        assert!(Instant::now() < give_up, "the I/O thread never settled");
        std::thread::sleep(Duration::from_millis(10));
        let now = wakeups();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// `Producer::builder()` on the backend of [`io_backend`].
pub fn producer_builder() -> kring::ProducerBuilder {
    kring::Producer::builder().io_backend(io_backend())
}

/// A producer builder for `c`'s SASL_PLAINTEXT listener (the credentials
/// are the caller's), tracing on, 2 ms linger.
#[allow(dead_code)] // only the SASL and ACL binaries use it
pub fn sasl_plaintext_builder(c: &kring_testcluster::KafkaCluster) -> kring::ProducerBuilder {
    trace::init();
    producer_builder()
        .bootstrap(&c.secured_bootstrap().expect("secured listener"))
        .security_protocol(kring::SecurityProtocol::SaslPlaintext)
        .linger(std::time::Duration::from_millis(2))
}

/// `Producer::builder().config(config)` on the backend of [`io_backend`]
/// (set after the configuration, which would otherwise replace it).
#[allow(dead_code)] // not every test binary builds from properties
pub fn producer_builder_from(config: kring::ProducerConfig) -> kring::ProducerBuilder {
    kring::Producer::builder()
        .config(config)
        .io_backend(io_backend())
}

/// One record as a reader saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A tansu broker with in-memory storage, killed on drop.
pub struct Tansu {
    child: Child,
    port: u16,
    binary: PathBuf,
}

/// The tansu binary: `$KRING_TANSU_BIN`, else `tansu` on `PATH`, else
/// `/work/tools/tansu`.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KRING_TANSU_BIN") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("tansu");
            if p.is_file() {
                return p;
            }
        }
    }
    let fallback = PathBuf::from("/work/tools/tansu");
    assert!(
        fallback.is_file(),
        "tansu not found: set KRING_TANSU_BIN or put `tansu` on PATH \
         (cargo install tansu --version 0.6.0 --locked --features dynostore)"
    );
    fallback
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Tansu {
    /// Starts tansu on a free port and waits until it accepts connections.
    /// The port is found free and then given to tansu, so another process
    /// may take it in between: a tansu that exits before it listens is
    /// started again on another port (as the Kafka harness retries a port
    /// clash), a few times at most.
    pub fn start() -> Tansu {
        let binary = tansu_binary();
        let mut exits = Vec::new();
        for _attempt in 0..5 {
            let port = free_port();
            let child = kring_testcluster::tansu_command(&binary, port)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut t = Tansu {
                child,
                port,
                binary: binary.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = t.child.try_wait() {
                    exits.push(format!("port {port}: {status}"));
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return t;
                }
                assert!(Instant::now() < deadline, "tansu did not listen on {port}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("tansu exited before listening, every time: {exits:?}");
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.binary)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `expected` records of `topic` (partitions `0..partitions`) with
/// librdkafka, CRC checks on. Sorted by (partition, offset).
pub fn read_rdkafka(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<ReadRecord> {
    let mut out = Vec::with_capacity(expected);
    read_rdkafka_each(bootstrap, topic, partitions, expected, |r| out.push(r));
    out.sort();
    out
}

/// Read `expected` records of `topic` with librdkafka, CRC checks on,
/// handing each to `f` as it arrives (in offset order per partition), then
/// check that nothing more is there.
pub fn read_rdkafka_each(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    mut f: impl FnMut(ReadRecord),
) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kring-e2e-reader")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen < expected {
        assert!(
            Instant::now() < deadline,
            "rdkafka read {seen} of {expected} records"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("rdkafka consumer error: {e}"),
            Some(Ok(m)) => {
                seen += 1;
                f(ReadRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
    }
    // Nothing beyond what was expected (no duplicates).
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
        panic!(
            "rdkafka read more than {expected} records: extra at partition {} offset {}",
            m.partition(),
            m.offset()
        );
    }
}

/// Read `expected` records with kafka-python (an independent record-batch
/// decoder), CRC checks on. Sorted by (partition, offset).
pub fn read_kafka_python(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<ReadRecord> {
    let mut out = Vec::with_capacity(expected);
    read_kafka_python_each(bootstrap, topic, partitions, expected, |r| out.push(r));
    out.sort();
    out
}

/// Read `expected` records with kafka-python, CRC checks on, handing each
/// to `f` as it arrives; the reader fails if there are more.
pub fn read_kafka_python_each(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    mut f: impl FnMut(ReadRecord),
) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/read_kafka_python.py"
    );
    let python = std::env::var("KRING_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut child = Command::new(python)
        .args([
            script,
            bootstrap,
            topic,
            &partitions.to_string(),
            &expected.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with kafka-python (pip install kafka-python)");
    let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut seen = 0;
    for line in stdout.lines() {
        f(parse_line(&line.unwrap()));
        seen += 1;
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "kafka-python reader failed ({status})");
    assert_eq!(seen, expected, "kafka-python read {seen} records");
}

fn parse_line(line: &str) -> ReadRecord {
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f.len(), 6, "bad reader line {line:?}");
    let opt = |s: &str| (s != "-").then(|| unhex(s));
    ReadRecord {
        partition: f[0].parse().unwrap(),
        offset: f[1].parse().unwrap(),
        timestamp: f[2].parse().unwrap(),
        key: opt(f[3]),
        value: opt(f[4]),
        headers: if f[5].is_empty() {
            Vec::new()
        } else {
            f[5].split(',')
                .map(|h| {
                    let (k, v) = h.split_once('=').unwrap();
                    (String::from_utf8(unhex(k)).unwrap(), opt(v))
                })
                .collect()
        },
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
