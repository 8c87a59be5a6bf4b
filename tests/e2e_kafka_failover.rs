//! Failover against a real 3-node Apache Kafka cluster (KRaft, one JVM per
//! node), with the delivery guarantees checked record by record.
//!
//! Every scenario runs on a fresh topic (6 partitions, replication factor
//! 3, `min.insync.replicas` 2) of one cluster: several sender threads send
//! keyed records whose value names them (`sender`, `sequence`) with
//! `acks=all` and idempotence on, while the schedule breaks the cluster:
//!
//! - (a) SIGKILL the leader of partition 0 mid-run, restart it later;
//! - (b) a rolling restart of all three nodes (SIGTERM, restart, wait until
//!   the replicas are back in sync, next);
//! - (c) SIGSTOP a leader for longer than `request.timeout.ms` but shorter
//!   than the controller's session timeout (it keeps its leadership and,
//!   once resumed, reads the requests that were waiting in its socket
//!   buffers), then again for longer than the session timeout (it is
//!   fenced and its partitions move);
//! - (d) two of three nodes shut down, so the survivor answers
//!   NOT_ENOUGH_REPLICAS, for longer than `delivery.timeout.ms` (records
//!   fail), then both back;
//! - (e) a seeded random schedule (`random_schedule`): two to four of
//!   SIGKILL/SIGTERM and restart, SIGSTOP shorter or longer than the
//!   session timeout, two nodes down at once, a node killed while another
//!   is stopped, on a partition leader or any node, at random moments.
//!   `failover_kring` plays seed `KRING_KAFKA_CHAOS_SEED` (default 1);
//!   `kafka_chaos_soak` (ignored; `scripts/soak --kafka N [start]`) plays
//!   N seeds and prints the failing ones.
//!
//! Afterwards the topic is read back to the end of every partition with
//! librdkafka and checked: every record got exactly one delivery result;
//! every acknowledged record is in the log exactly once, at the partition
//! and offset its result named; no record is in the log twice (failed ones
//! included); per partition each sender's records are in send order. The
//! lost / misplaced / duplicated / reordered counts are printed and must be
//! 0, with the time to recover from each event: from the moment the fault
//! is in place (the node is gone or stopped) or the repair is done (the
//! node is back in Metadata) to the first successful acknowledgement of a
//! record sent after it, on the first and on the last partition to get one.
//! Records that fail (the delivery timeout of (a)–(c) is long enough that
//! none should) are printed with their errors but are not a violation.
//!
//! `failover_kring` runs in CI. `failover_kring_beside_librdkafka` (ignored;
//! run it by hand with `cargo nextest run --run-ignored only -E
//! 'test(failover_kring_beside_librdkafka)'`) runs librdkafka
//! (enable.idempotence=true, acks=all) under the same schedule at the same
//! time, each client on its own topic, and prints both clients' counts;
//! only kring's are asserted.
//!
//! `KRING_TEST_TRACE=1` prints kring's events (see tests/support/trace.rs);
//! `KRING_KEEP_KAFKA=1` keeps the nodes' directories and logs.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kring::{DeliveryFuture, Producer, ProducerConfig, Record};
use kring_testcluster::{ClusterConfig, KafkaCluster};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

/// Partitions of every scenario's topic.
const PARTITIONS: i32 = 6;
/// Sender threads per client.
const SENDERS: u32 = 4;
/// Records per second per sender thread.
const RATE: u64 = 500;
/// Bytes per record value.
const VALUE_LEN: usize = 64;
/// Distinct keys per sender.
const KEYS: u64 = 64;

/// The controller fences a broker that has not heartbeaten for this long.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// The producers' `request.timeout.ms`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster every scenario runs on, with the controller's session
/// timeout shortened so that a dead broker is fenced in seconds.
fn start_cluster() -> KafkaCluster {
    let cfg = ClusterConfig::new(3)
        .prop(
            "broker.session.timeout.ms",
            SESSION_TIMEOUT.as_millis().to_string(),
        )
        .prop("broker.heartbeat.interval.ms", "500");
    KafkaCluster::start(cfg).unwrap_or_else(|e| panic!("cannot start a 3-node Kafka cluster: {e}"))
}

// ---------------------------------------------------------------------------
// Records that name themselves

/// The value of record `seq` of `sender`: `s<sender>-<seq>` padded with
/// bytes derived from both, so a record read back names itself.
fn value(sender: u32, seq: u64) -> Vec<u8> {
    let mut v = format!("s{sender:03}-{seq:012}-").into_bytes();
    let mut x = (u64::from(sender) << 40 ^ seq).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < VALUE_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// Reads `(sender, seq)` back from a value; `None` if it is not one of ours
/// or its padding is wrong.
fn parse_value(v: &[u8]) -> Option<(u32, u64)> {
    let s = std::str::from_utf8(v.get(..18)?).ok()?;
    let sender = s.get(1..4)?.parse().ok()?;
    let seq = s.get(5..17)?.parse().ok()?;
    (s.starts_with('s') && value(sender, seq) == v).then_some((sender, seq))
}

fn key(sender: u32, seq: u64) -> Vec<u8> {
    format!("k{sender}-{}", seq % KEYS).into_bytes()
}

/// A record's identity: sender in the high bits, sequence in the low 40.
fn rec_id(sender: u32, seq: u64) -> u64 {
    (u64::from(sender) << 40) | seq
}

// ---------------------------------------------------------------------------
// What the clients report

/// One record's delivery result.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged at this partition and offset.
    Acked { partition: i32, offset: i64 },
    /// Failed with this error.
    Failed(String),
}

/// Everything one client knows about one record after the run.
#[derive(Debug, Clone)]
struct RecordResult {
    sender: u32,
    seq: u64,
    sent_at: Instant,
    /// Every result the client gave (exactly one is right).
    results: Vec<Outcome>,
    /// When the (first) result arrived, if known.
    done_at: Option<Instant>,
}

/// A producer under test, driven by sender threads.
trait Client: Send + Sync {
    fn name(&self) -> &'static str;
    /// Sends one record; the client records it and its result.
    fn send(&self, sender: u32, seq: u64, key: &[u8], value: &[u8]);
    /// Nanoseconds since `epoch` of the last successful acknowledgement on
    /// each partition (0: none yet).
    fn last_ack_ns(&self) -> Vec<u64>;
    /// Waits for every result (up to `timeout`) and returns them, with
    /// notes on anything the client reported inconsistently.
    fn finish(&self, timeout: Duration) -> (Vec<RecordResult>, Vec<String>);
}

/// Producer settings both clients get.
fn common_props(bootstrap: &str, delivery_timeout: Duration) -> Vec<(String, String)> {
    [
        ("bootstrap.servers", bootstrap.to_string()),
        ("acks", "all".into()),
        ("enable.idempotence", "true".into()),
        ("max.in.flight.requests.per.connection", "5".into()),
        ("linger.ms", "5".into()),
        (
            "request.timeout.ms",
            REQUEST_TIMEOUT.as_millis().to_string(),
        ),
        (
            "delivery.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        ),
        ("retry.backoff.ms", "100".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

// --- kring --------------------------------------------------------------------

/// What kring's delivery callback saw (it runs on the I/O thread, once per
/// record): successes with their partition, offset and time, and failures.
struct KringProbe {
    epoch: Instant,
    acks: Mutex<Vec<(i32, i64, Instant)>>,
    failures: AtomicU64,
    last_ack_ns: Vec<AtomicU64>,
}

/// One record kring took: (seq, sent at, the handle or the send error).
type KringSent = (u64, Instant, Result<DeliveryFuture, String>);

struct KringClient {
    producer: Producer,
    probe: Arc<KringProbe>,
    /// Per sender: (seq, sent at, the handle or the send error).
    sent: Vec<Mutex<Vec<KringSent>>>,
}

impl KringClient {
    fn new(bootstrap: &str, delivery_timeout: Duration, epoch: Instant) -> KringClient {
        let probe = Arc::new(KringProbe {
            epoch,
            acks: Mutex::new(Vec::new()),
            failures: AtomicU64::new(0),
            last_ack_ns: (0..PARTITIONS).map(|_| AtomicU64::new(0)).collect(),
        });
        let p2 = probe.clone();
        let config = ProducerConfig::from_properties(common_props(bootstrap, delivery_timeout))
            .expect("kring configuration");
        let producer = support::producer_builder()
            .config(config)
            .on_delivery(move |r| {
                let now = Instant::now();
                match &r.result {
                    Ok(md) => {
                        if let Some(a) = p2.last_ack_ns.get(md.partition as usize) {
                            a.fetch_max(
                                now.duration_since(p2.epoch).as_nanos() as u64,
                                Ordering::Relaxed,
                            );
                        }
                        p2.acks.lock().unwrap().push((md.partition, md.offset, now));
                    }
                    Err(_) => {
                        p2.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .build()
            .expect("kring producer");
        KringClient {
            producer,
            probe,
            sent: (0..SENDERS).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }
}

impl Client for KringClient {
    fn name(&self) -> &'static str {
        "kring"
    }

    fn send(&self, sender: u32, seq: u64, key: &[u8], value: &[u8]) {
        let topic = TOPIC.with(|t| t.borrow().clone());
        let now = Instant::now();
        let r = self
            .producer
            .send(Record::new(&topic, value).key(key))
            .map_err(|e| format!("send: {e}"));
        self.sent[sender as usize]
            .lock()
            .unwrap()
            .push((seq, now, r));
    }

    fn last_ack_ns(&self) -> Vec<u64> {
        self.probe
            .last_ack_ns
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }

    fn finish(&self, timeout: Duration) -> (Vec<RecordResult>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut notes = Vec::new();
        if !self.producer.flush_timeout(timeout) {
            notes.push(format!("flush did not complete within {timeout:?}"));
        }
        // The callback's view, to check that each record was reported once
        // and to time the acknowledgements.
        let acks = std::mem::take(&mut *self.probe.acks.lock().unwrap());
        let mut ack_at: HashMap<(i32, i64), Vec<Instant>> = HashMap::new();
        for (p, o, t) in &acks {
            ack_at.entry((*p, *o)).or_default().push(*t);
        }
        let mut out = Vec::new();
        let (mut ok, mut failed) = (0u64, 0u64);
        for (sender, sent) in self.sent.iter().enumerate() {
            for (seq, sent_at, r) in sent.lock().unwrap().drain(..) {
                let (results, done_at) = match r {
                    Err(e) => (vec![Outcome::Failed(e)], None),
                    Ok(f) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match f.wait_timeout(left) {
                            None => (Vec::new(), None),
                            Some(Ok(md)) => {
                                ok += 1;
                                let at = ack_at
                                    .get(&(md.partition, md.offset))
                                    .and_then(|v| v.first().copied());
                                (
                                    vec![Outcome::Acked {
                                        partition: md.partition,
                                        offset: md.offset,
                                    }],
                                    at,
                                )
                            }
                            Some(Err(e)) => {
                                failed += 1;
                                (vec![Outcome::Failed(e.to_string())], None)
                            }
                        }
                    }
                };
                out.push(RecordResult {
                    sender: sender as u32,
                    seq,
                    sent_at,
                    results,
                    done_at,
                });
            }
        }
        // Each record's future holds one result; the callback must have
        // been called once per record too, with the same outcomes.
        let cb_failed = self.probe.failures.load(Ordering::Relaxed);
        if acks.len() as u64 != ok || cb_failed != failed {
            notes.push(format!(
                "callback reported {} acks and {cb_failed} failures, the futures {ok} acks and {failed} failures",
                acks.len()
            ));
        }
        let twice = ack_at
            .iter()
            .filter(|(k, v)| k.1 >= 0 && v.len() > 1)
            .count();
        if twice > 0 {
            notes.push(format!(
                "{twice} (partition, offset) pairs acknowledged more than once by the callback"
            ));
        }
        (out, notes)
    }
}

thread_local! {
    /// The topic the current sender thread sends to (set by the scenario).
    static TOPIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

// --- librdkafka -----------------------------------------------------------------

struct RdCtx {
    epoch: Instant,
    results: Mutex<Vec<(u64, Outcome, Instant)>>,
    last_ack_ns: Vec<AtomicU64>,
}

impl ClientContext for RdCtx {}

impl ProducerContext for RdCtx {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, r: &DeliveryResult<'_>, id: Box<u64>) {
        let now = Instant::now();
        let outcome = match r {
            Ok(m) => {
                if let Some(a) = self.last_ack_ns.get(m.partition() as usize) {
                    a.fetch_max(
                        now.duration_since(self.epoch).as_nanos() as u64,
                        Ordering::Relaxed,
                    );
                }
                Outcome::Acked {
                    partition: m.partition(),
                    offset: m.offset(),
                }
            }
            Err((e, _)) => Outcome::Failed(e.to_string()),
        };
        self.results.lock().unwrap().push((*id, outcome, now));
    }
}

/// Why librdkafka's `send` refused a record, if it did.
type SendRefused = Option<String>;

struct RdClient {
    producer: Arc<BaseProducer<RdCtx>>,
    polling: Arc<AtomicBool>,
    poller: Mutex<Option<JoinHandle<()>>>,
    /// Per sender: (seq, sent at, the send error if `send` refused it).
    sent: Vec<Mutex<Vec<(u64, Instant, SendRefused)>>>,
}

impl RdClient {
    fn new(bootstrap: &str, delivery_timeout: Duration, epoch: Instant) -> RdClient {
        let mut cfg = ClientConfig::new();
        for (k, v) in common_props(bootstrap, delivery_timeout) {
            cfg.set(k, v);
        }
        // Java's (and kring's) key hashing.
        cfg.set("partitioner", "murmur2_random");
        let producer: BaseProducer<RdCtx> = cfg
            .create_with_context(RdCtx {
                epoch,
                results: Mutex::new(Vec::new()),
                last_ack_ns: (0..PARTITIONS).map(|_| AtomicU64::new(0)).collect(),
            })
            .expect("librdkafka producer");
        let producer = Arc::new(producer);
        let polling = Arc::new(AtomicBool::new(true));
        let (p, run) = (producer.clone(), polling.clone());
        let poller = std::thread::Builder::new()
            .name("rd-poll".into())
            .spawn(move || {
                while run.load(Ordering::Relaxed) {
                    p.poll(Duration::from_millis(50));
                }
            })
            .unwrap();
        RdClient {
            producer,
            polling,
            poller: Mutex::new(Some(poller)),
            sent: (0..SENDERS).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }
}

impl Client for RdClient {
    fn name(&self) -> &'static str {
        "librdkafka"
    }

    fn send(&self, sender: u32, seq: u64, key: &[u8], value: &[u8]) {
        let topic = TOPIC.with(|t| t.borrow().clone());
        let now = Instant::now();
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new(rec_id(sender, seq)))
            .key(key)
            .payload(value);
        let err = loop {
            match self.producer.send(record) {
                Ok(()) => break None,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => break Some(format!("send: {e}")),
            }
        };
        self.sent[sender as usize]
            .lock()
            .unwrap()
            .push((seq, now, err));
    }

    fn last_ack_ns(&self) -> Vec<u64> {
        self.producer
            .context()
            .last_ack_ns
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }

    fn finish(&self, timeout: Duration) -> (Vec<RecordResult>, Vec<String>) {
        let mut notes = Vec::new();
        if let Err(e) = self.producer.flush(timeout) {
            notes.push(format!("flush: {e}"));
        }
        self.polling.store(false, Ordering::Relaxed);
        if let Some(h) = self.poller.lock().unwrap().take() {
            let _ = h.join();
        }
        // Serve any report the poll thread left.
        self.producer.poll(Duration::ZERO);
        let mut by_id: HashMap<u64, (Vec<Outcome>, Option<Instant>)> = HashMap::new();
        for (id, o, t) in std::mem::take(&mut *self.producer.context().results.lock().unwrap()) {
            let e = by_id.entry(id).or_default();
            e.0.push(o);
            e.1.get_or_insert(t);
        }
        let mut out = Vec::new();
        for (sender, sent) in self.sent.iter().enumerate() {
            for (seq, sent_at, err) in sent.lock().unwrap().drain(..) {
                let (results, done_at) = match err {
                    Some(e) => (vec![Outcome::Failed(e)], None),
                    None => by_id
                        .remove(&rec_id(sender as u32, seq))
                        .unwrap_or_default(),
                };
                out.push(RecordResult {
                    sender: sender as u32,
                    seq,
                    sent_at,
                    results,
                    done_at,
                });
            }
        }
        if !by_id.is_empty() {
            notes.push(format!(
                "{} delivery reports for records never sent",
                by_id.len()
            ));
        }
        (out, notes)
    }
}

impl Drop for RdClient {
    fn drop(&mut self) {
        self.polling.store(false, Ordering::Relaxed);
        if let Some(h) = self.poller.lock().unwrap().take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the log back

/// One record of the log.
#[derive(Debug, Clone, Copy)]
struct LogRecord {
    partition: i32,
    offset: i64,
    /// `(sender, seq)`, or `None` for a record that is not one of ours.
    id: Option<(u32, u64)>,
}

/// Every record of every partition of `topic`, up to each partition's high
/// watermark at the time of the call, read with librdkafka (CRC checks on).
fn read_to_end(bootstrap: &str, topic: &str) -> Vec<LogRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kring-failover-reader")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()
        .expect("rdkafka consumer");
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
        if high > 0 {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    let mut next: BTreeMap<i32, i64> = ends.keys().map(|&p| (p, 0)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while next.iter().any(|(p, n)| *n < ends[p]) {
        assert!(
            Instant::now() < deadline,
            "reading {topic}: at {next:?} of {ends:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                if m.offset() >= ends[&m.partition()] {
                    continue;
                }
                next.insert(m.partition(), m.offset() + 1);
                out.push(LogRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    id: m.payload().and_then(parse_value),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The checks

/// A fault (or a repair) the schedule applied, and when.
#[derive(Debug, Clone)]
struct Event {
    at: Instant,
    what: String,
    /// A fault rather than a repair (recovery is measured from both).
    fault: bool,
}

/// The guarantees of one client in one scenario.
#[derive(Debug, Default)]
struct Verdict {
    sent: usize,
    acked: usize,
    failed: usize,
    /// Records with no delivery result.
    no_result: usize,
    /// Records with more than one delivery result.
    many_results: usize,
    /// Acknowledged but not in the log.
    lost: usize,
    /// Acknowledged, in the log, but not at the partition and offset the
    /// result named (offset -1 included).
    misplaced: usize,
    /// Extra copies in the log (acknowledged or failed records).
    duplicated: usize,
    /// Records of one sender in one partition at a lower offset than an
    /// earlier-sent one.
    reordered: usize,
    /// Log records that name no record this client sent.
    unknown: usize,
    /// Failed records that are nevertheless in the log (once): allowed.
    failed_but_written: usize,
    /// The distinct failure messages (up to a few).
    failure_kinds: Vec<String>,
    /// Inconsistencies the client's own reports showed.
    notes: Vec<String>,
    /// Examples of each violation, for the report.
    examples: Vec<String>,
    /// Per event: (what, first partition to acknowledge a record sent
    /// after it, last partition to), `None` if none (or not every one) did.
    recovery: Vec<(String, Option<Duration>, Option<Duration>)>,
}

impl Verdict {
    fn violations(&self) -> usize {
        self.no_result
            + self.many_results
            + self.lost
            + self.misplaced
            + self.duplicated
            + self.reordered
            + self.unknown
            + self.notes.len()
    }

    fn example(&mut self, s: String) {
        if self.examples.len() < 12 {
            self.examples.push(s);
        }
    }
}

fn check(
    results: &[RecordResult],
    notes: Vec<String>,
    log: &[LogRecord],
    events: &[Event],
) -> Verdict {
    let mut v = Verdict {
        sent: results.len(),
        notes,
        ..Verdict::default()
    };
    // Where each record is in the log.
    let mut found: HashMap<(u32, u64), Vec<(i32, i64)>> = HashMap::new();
    for r in log {
        match r.id {
            Some(id) => found.entry(id).or_default().push((r.partition, r.offset)),
            None => {
                v.unknown += 1;
                v.example(format!("unreadable record at {}@{}", r.partition, r.offset));
            }
        }
    }
    let sent: HashMap<(u32, u64), &RecordResult> =
        results.iter().map(|r| ((r.sender, r.seq), r)).collect();
    for (id, places) in &found {
        if !sent.contains_key(id) {
            v.unknown += places.len();
            v.example(format!(
                "record {id:?} in the log at {places:?} was never sent"
            ));
        } else if places.len() > 1 {
            v.duplicated += places.len() - 1;
            let state = match sent[id].results.first() {
                Some(Outcome::Acked { .. }) => "acknowledged",
                Some(Outcome::Failed(_)) => "failed",
                None => "unresolved",
            };
            v.example(format!(
                "{state} record {id:?} is in the log {} times: {places:?}",
                places.len()
            ));
        }
    }
    for r in results {
        let id = (r.sender, r.seq);
        match r.results.len() {
            0 => {
                v.no_result += 1;
                v.example(format!("record {id:?} got no delivery result"));
            }
            1 => {}
            n => {
                v.many_results += 1;
                v.example(format!(
                    "record {id:?} got {n} delivery results: {:?}",
                    r.results
                ));
            }
        }
        let places = found.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        match r.results.first() {
            Some(Outcome::Acked { partition, offset }) => {
                v.acked += 1;
                if places.is_empty() {
                    v.lost += 1;
                    v.example(format!(
                        "record {id:?} acknowledged at {partition}@{offset} is not in the log"
                    ));
                } else if !places.contains(&(*partition, *offset)) {
                    v.misplaced += 1;
                    v.example(format!(
                        "record {id:?} acknowledged at {partition}@{offset} is in the log at {places:?}"
                    ));
                }
            }
            Some(Outcome::Failed(e)) => {
                v.failed += 1;
                if !places.is_empty() {
                    v.failed_but_written += 1;
                }
                if v.failure_kinds.len() < 4 && !v.failure_kinds.contains(e) {
                    v.failure_kinds.push(e.clone());
                }
            }
            None => {}
        }
    }
    // Send order per (partition, sender), in offset order.
    let mut by_part: BTreeMap<i32, Vec<(i64, u32, u64)>> = BTreeMap::new();
    for r in log {
        if let Some((s, q)) = r.id {
            by_part
                .entry(r.partition)
                .or_default()
                .push((r.offset, s, q));
        }
    }
    for (p, mut recs) in by_part {
        recs.sort_unstable();
        let mut last: HashMap<u32, (u64, i64)> = HashMap::new();
        for (offset, s, q) in recs {
            if let Some(&(prev, prev_off)) = last.get(&s) {
                if q <= prev {
                    v.reordered += 1;
                    v.example(format!(
                        "partition {p}: sender {s}'s record {q} at offset {offset} after its record {prev} at {prev_off}"
                    ));
                }
            }
            last.insert(s, (q, offset));
        }
    }
    // Recovery: from each event to the first acknowledgement, on each
    // partition, of a record sent after it.
    for e in events {
        let mut first_ack: BTreeMap<i32, Instant> = BTreeMap::new();
        for r in results {
            if let (Some(Outcome::Acked { partition, .. }), Some(done)) =
                (r.results.first(), r.done_at)
            {
                if r.sent_at >= e.at {
                    let f = first_ack.entry(*partition).or_insert(done);
                    *f = (*f).min(done);
                }
            }
        }
        let times: Vec<Duration> = first_ack.values().map(|t| t.duration_since(e.at)).collect();
        let first = times.iter().min().copied();
        let last = if first_ack.len() == PARTITIONS as usize {
            times.iter().max().copied()
        } else {
            None
        };
        let what = if e.fault {
            e.what.clone()
        } else {
            format!("{} (repair)", e.what)
        };
        v.recovery.push((what, first, last));
    }
    v
}

// ---------------------------------------------------------------------------
// Running a scenario

/// What a scenario's schedule can do while the senders run.
struct Ctx<'a> {
    cluster: &'a KafkaCluster,
    /// The topic of each client, in the order of `clients`.
    topics: Vec<String>,
    clients: &'a [Arc<dyn Client>],
    epoch: Instant,
    events: Mutex<Vec<Event>>,
}

impl Ctx<'_> {
    fn log(&self, what: &str) {
        eprintln!(
            "[failover {:7.2}s] {what}",
            self.epoch.elapsed().as_secs_f64()
        );
    }

    /// Applies a fault, noting when it is in place.
    fn fault(&self, what: String, f: impl FnOnce()) {
        self.log(&what);
        f();
        // From here on the fault is in place (the node is gone, stopped).
        let at = Instant::now();
        self.events.lock().unwrap().push(Event {
            at,
            what,
            fault: true,
        });
    }

    /// Applies a repair, noting when it is done.
    fn repair(&self, what: String, f: impl FnOnce()) {
        self.log(&what);
        f();
        // From here on the node is back (in Metadata again).
        let at = Instant::now();
        self.log(&format!("{what}: done"));
        self.events.lock().unwrap().push(Event {
            at,
            what,
            fault: false,
        });
    }

    /// The leader of partition `p` of the first client's topic.
    fn leader_of(&self, p: i32) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.cluster.leader_of(&self.topics[0], p) {
                Ok(l) if l >= 0 => return l,
                r => {
                    assert!(
                        Instant::now() < deadline,
                        "no leader for {}-{p}: {r:?}",
                        self.topics[0]
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Waits until every client has had an acknowledgement on every
    /// partition since `since`.
    fn wait_acks_since(&self, since: Instant, timeout: Duration) {
        let since_ns = since.duration_since(self.epoch).as_nanos() as u64;
        let deadline = Instant::now() + timeout;
        loop {
            let behind: Vec<String> = self
                .clients
                .iter()
                .filter_map(|c| {
                    let stale: Vec<usize> = c
                        .last_ack_ns()
                        .iter()
                        .enumerate()
                        .filter(|(_, &t)| t <= since_ns)
                        .map(|(p, _)| p)
                        .collect();
                    (!stale.is_empty()).then(|| format!("{}: partitions {stale:?}", c.name()))
                })
                .collect();
            if behind.is_empty() {
                self.log("every partition acknowledges again");
                return;
            }
            if Instant::now() >= deadline {
                self.log(&format!(
                    "still no acknowledgement after {timeout:?}: {behind:?}; the cluster says {}",
                    self.describe()
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Leaders and in-sync replicas of every topic, for the log.
    fn describe(&self) -> String {
        let mut s = String::new();
        for t in &self.topics {
            match self.cluster.describe_topic(t) {
                Ok(parts) => {
                    for p in parts {
                        let _ = write!(
                            s,
                            "[{t}-{}: leader {} epoch {} isr {:?}] ",
                            p.partition, p.leader, p.leader_epoch, p.isr
                        );
                    }
                }
                Err(e) => {
                    let _ = write!(s, "[{t}: {e}] ");
                }
            }
        }
        s
    }

    /// Waits until every partition of every client's topic has all three
    /// replicas in sync.
    fn wait_isr_full(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let short: Vec<String> = self
                .topics
                .iter()
                .flat_map(|t| match self.cluster.describe_topic(t) {
                    Ok(parts) => parts
                        .iter()
                        .filter(|p| p.isr.len() < 3 || p.leader < 0)
                        .map(|p| {
                            format!("{t}-{}: leader {} isr {:?}", p.partition, p.leader, p.isr)
                        })
                        .collect(),
                    Err(e) => vec![format!("{t}: {e}")],
                })
                .collect();
            if short.is_empty() {
                self.log("every replica in sync");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas still out of sync after {timeout:?}: {short:?}\n{}",
                self.cluster.log_tails(20)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lets the senders run for `d` (the schedule's pace).
    fn run_for(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Which clients run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Kring,
    Librdkafka,
}

/// One scenario's parameters.
struct Scenario {
    name: String,
    delivery_timeout: Duration,
    schedule: Box<dyn Fn(&Ctx<'_>)>,
}

/// Runs `scenario` with `peers` side by side; returns each peer's verdict.
fn run_scenario(
    cluster: &KafkaCluster,
    scenario: &Scenario,
    peers: &[Peer],
) -> Vec<(Peer, Verdict, Duration)> {
    let started = Instant::now();
    let epoch = Instant::now();
    let bootstrap = cluster.bootstrap();
    let mut topics = Vec::new();
    let mut clients: Vec<Arc<dyn Client>> = Vec::new();
    for peer in peers {
        let topic = format!("failover-{}-{:?}", scenario.name, peer).to_lowercase();
        cluster
            .create_topic(&topic, PARTITIONS, 3, &[("min.insync.replicas", "2")])
            .unwrap_or_else(|e| panic!("creating {topic}: {e}"));
        topics.push(topic);
        clients.push(match peer {
            Peer::Kring => Arc::new(KringClient::new(
                &bootstrap,
                scenario.delivery_timeout,
                epoch,
            )),
            Peer::Librdkafka => {
                Arc::new(RdClient::new(&bootstrap, scenario.delivery_timeout, epoch))
            }
        });
    }
    let ctx = Ctx {
        cluster,
        topics: topics.clone(),
        clients: &clients,
        epoch,
        events: Mutex::new(Vec::new()),
    };
    ctx.log(&format!("scenario {}: topics {topics:?}", scenario.name));

    // The senders: each client gets SENDERS threads, paced at RATE.
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (client, topic) in clients.iter().zip(&topics) {
        for s in 0..SENDERS {
            let (client, topic, stop) = (client.clone(), topic.clone(), stop.clone());
            senders.push(
                std::thread::Builder::new()
                    .name(format!("send-{}-{s}", client.name()))
                    .spawn(move || {
                        TOPIC.with(|t| *t.borrow_mut() = topic);
                        let start = Instant::now();
                        let mut seq = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let due = start + Duration::from_secs_f64(seq as f64 / RATE as f64);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            client.send(s, seq, &key(s, seq), &value(s, seq));
                            seq += 1;
                        }
                    })
                    .unwrap(),
            );
        }
    }
    // Traffic flows before the first fault.
    ctx.wait_acks_since(epoch, Duration::from_secs(60));
    (scenario.schedule)(&ctx);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    ctx.log("senders stopped; waiting for every result");
    let events = ctx.events.lock().unwrap().clone();
    let mut out = Vec::new();
    for ((peer, client), topic) in peers.iter().zip(&clients).zip(&topics) {
        let (results, notes) = client.finish(scenario.delivery_timeout + Duration::from_secs(30));
        let log = read_to_end(&bootstrap, topic);
        let v = check(&results, notes, &log, &events);
        out.push((*peer, v, started.elapsed()));
    }
    ctx.log(&format!(
        "scenario {} done in {:.1}s",
        scenario.name,
        started.elapsed().as_secs_f64()
    ));
    out
}

fn report(scenario: &str, peer: Peer, v: &Verdict, wall: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{scenario:<16} {:<10} sent {:>6} acked {:>6} failed {:>5} | no-result {} many-results {} lost {} misplaced {} duplicated {} reordered {} unknown {} | failed-but-written {} | {:.0}s",
        format!("{peer:?}").to_lowercase(),
        v.sent,
        v.acked,
        v.failed,
        v.no_result,
        v.many_results,
        v.lost,
        v.misplaced,
        v.duplicated,
        v.reordered,
        v.unknown,
        v.failed_but_written,
        wall.as_secs_f64()
    );
    for (what, first, last) in &v.recovery {
        let ms = |d: &Option<Duration>| {
            d.map_or("never".to_string(), |d| format!("{} ms", d.as_millis()))
        };
        let _ = writeln!(
            s,
            "    recovery from `{what}`: first partition {}, all partitions {}",
            ms(first),
            ms(last)
        );
    }
    for f in &v.failure_kinds {
        let _ = writeln!(s, "    failure: {f}");
    }
    for n in &v.notes {
        let _ = writeln!(s, "    NOTE: {n}");
    }
    for e in &v.examples {
        let _ = writeln!(s, "    example: {e}");
    }
    s
}

// ---------------------------------------------------------------------------
// The schedules

/// (a) SIGKILL the leader of partition 0, restart it later.
fn kill_leader(c: &Ctx<'_>) {
    c.run_for(Duration::from_secs(2));
    let v = c.leader_of(0);
    let at = Instant::now();
    c.log(&format!("before: {}", c.describe()));
    c.fault(format!("SIGKILL node {v} (leader of partition 0)"), || {
        c.cluster.kill(v)
    });
    c.wait_acks_since(at, Duration::from_secs(60));
    c.log(&format!("after: {}", c.describe()));
    c.run_for(Duration::from_secs(2));
    c.repair(format!("restart node {v}"), || {
        c.cluster
            .restart(v)
            .unwrap_or_else(|e| panic!("restart node {v}: {e}"))
    });
    c.wait_isr_full(Duration::from_secs(90));
    c.run_for(Duration::from_secs(2));
}

/// (b) SIGTERM and restart each node in turn.
fn rolling_restart(c: &Ctx<'_>) {
    c.run_for(Duration::from_secs(2));
    for node in c.cluster.node_ids() {
        let at = Instant::now();
        c.fault(format!("SIGTERM node {node}"), || c.cluster.terminate(node));
        c.wait_acks_since(at, Duration::from_secs(60));
        c.repair(format!("restart node {node}"), || {
            c.cluster
                .restart(node)
                .unwrap_or_else(|e| panic!("restart node {node}: {e}"))
        });
        c.wait_isr_full(Duration::from_secs(90));
        c.run_for(Duration::from_secs(1));
    }
    c.run_for(Duration::from_secs(1));
}

/// (c) SIGSTOP a leader past the request timeout but within the session
/// timeout, then another past the session timeout.
fn pause_leader(c: &Ctx<'_>) {
    c.run_for(Duration::from_secs(2));
    let v = c.leader_of(0);
    let short = REQUEST_TIMEOUT * 7 / 4;
    assert!(short > REQUEST_TIMEOUT && short + Duration::from_secs(1) < SESSION_TIMEOUT);
    c.fault(
        format!("SIGSTOP node {v} (leader of partition 0) for {short:?}"),
        || c.cluster.pause(v),
    );
    c.run_for(short);
    let at = Instant::now();
    c.repair(format!("SIGCONT node {v}"), || c.cluster.resume(v));
    c.wait_acks_since(at, Duration::from_secs(60));
    c.wait_isr_full(Duration::from_secs(60));
    c.run_for(Duration::from_secs(2));

    let v = c.leader_of(0);
    let long = SESSION_TIMEOUT + Duration::from_secs(3);
    c.fault(
        format!("SIGSTOP node {v} (leader of partition 0) for {long:?}"),
        || c.cluster.pause(v),
    );
    c.run_for(long);
    let at = Instant::now();
    c.repair(format!("SIGCONT node {v}"), || c.cluster.resume(v));
    c.wait_acks_since(at, Duration::from_secs(60));
    c.wait_isr_full(Duration::from_secs(90));
    c.run_for(Duration::from_secs(2));
}

/// The NOT_ENOUGH_REPLICAS window of (d); longer than its delivery timeout.
const TWO_DOWN_FOR: Duration = Duration::from_secs(12);
/// (d)'s delivery timeout: records waiting out the window fail.
const TWO_DOWN_DELIVERY_TIMEOUT: Duration = Duration::from_secs(8);

/// (d) Two of three nodes shut down (the leader of partition 0 survives),
/// then both back.
fn two_down(c: &Ctx<'_>) {
    c.run_for(Duration::from_secs(2));
    let survivor = c.leader_of(0);
    let down: Vec<i32> = c
        .cluster
        .node_ids()
        .into_iter()
        .filter(|&n| n != survivor)
        .collect();
    for &n in &down {
        c.fault(format!("SIGTERM node {n}"), || c.cluster.terminate(n));
    }
    c.log(&format!(
        "only node {survivor} is up (since the last SIGTERM returned): acks=all must fail with NOT_ENOUGH_REPLICAS"
    ));
    c.run_for(TWO_DOWN_FOR);
    let at = Instant::now();
    for &n in &down {
        c.repair(format!("restart node {n}"), || {
            c.cluster
                .restart(n)
                .unwrap_or_else(|e| panic!("restart node {n}: {e}"))
        });
    }
    c.wait_acks_since(at, Duration::from_secs(60));
    c.wait_isr_full(Duration::from_secs(90));
    c.run_for(Duration::from_secs(2));
}

/// A small seeded generator (splitmix64) for the random schedules.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A duration in `[lo, hi)`, in whole milliseconds.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(lo + self.below((hi - lo).max(1)))
    }
}

/// The seed of the random scenario `failover_kring` runs
/// (`KRING_KAFKA_CHAOS_SEED`, default 1).
fn random_seed_from_env() -> u64 {
    std::env::var("KRING_KAFKA_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// (e) A seeded random schedule: [`random_schedule`] with `seed`. Its
/// delivery timeout is longer than any outage it plays, so no record
/// should fail; every violation counts.
fn random_scenario(seed: u64) -> Scenario {
    Scenario {
        name: format!("e-random-{seed}"),
        delivery_timeout: Duration::from_secs(40),
        schedule: Box::new(move |c| random_schedule(c, seed)),
    }
}

/// Two to four faults drawn from `seed`, each on a partition's leader or
/// on any node, at random moments: SIGKILL or SIGTERM and a restart after
/// a random while (sometimes before, sometimes after traffic recovered),
/// SIGSTOP shorter or longer than the controller's session timeout, two
/// nodes down at once (NOT_ENOUGH_REPLICAS) for up to 8 s, or a node
/// killed while another one is stopped. The cluster's replicas are back in
/// sync before the next fault.
fn random_schedule(c: &Ctx<'_>, seed: u64) {
    let mut rng = SplitMix(seed);
    let steps = 2 + rng.below(3);
    c.log(&format!("random schedule, seed {seed}: {steps} faults"));
    let restart = |n: i32| {
        c.repair(format!("restart node {n}"), || {
            c.cluster
                .restart(n)
                .unwrap_or_else(|e| panic!("restart node {n}: {e}"))
        })
    };
    for _ in 0..steps {
        c.run_for(rng.between(Duration::from_millis(300), Duration::from_secs(3)));
        let nodes = c.cluster.node_ids();
        let target = if rng.below(2) == 0 {
            c.leader_of(rng.below(PARTITIONS as u64) as i32)
        } else {
            nodes[rng.below(nodes.len() as u64) as usize]
        };
        let others: Vec<i32> = nodes.iter().copied().filter(|&n| n != target).collect();
        let other = others[rng.below(others.len() as u64) as usize];
        match rng.below(6) {
            0 | 1 => {
                let kill = rng.below(2) == 0;
                let at = Instant::now();
                if kill {
                    c.fault(format!("SIGKILL node {target}"), || c.cluster.kill(target));
                } else {
                    c.fault(format!("SIGTERM node {target}"), || {
                        c.cluster.terminate(target)
                    });
                }
                if rng.below(2) == 0 {
                    c.wait_acks_since(at, Duration::from_secs(60));
                }
                c.run_for(rng.between(Duration::ZERO, Duration::from_secs(3)));
                restart(target);
            }
            2 => {
                let d = rng.between(Duration::from_millis(500), SESSION_TIMEOUT);
                c.fault(format!("SIGSTOP node {target} for {d:?}"), || {
                    c.cluster.pause(target)
                });
                c.run_for(d);
                c.repair(format!("SIGCONT node {target}"), || {
                    c.cluster.resume(target)
                });
            }
            3 => {
                let d =
                    SESSION_TIMEOUT + rng.between(Duration::from_secs(1), Duration::from_secs(4));
                c.fault(
                    format!("SIGSTOP node {target} for {d:?} (past the session timeout)"),
                    || c.cluster.pause(target),
                );
                c.run_for(d);
                c.repair(format!("SIGCONT node {target}"), || {
                    c.cluster.resume(target)
                });
            }
            4 => {
                let d = rng.between(Duration::from_secs(1), Duration::from_secs(8));
                for n in [target, other] {
                    if rng.below(2) == 0 {
                        c.fault(format!("SIGKILL node {n}"), || c.cluster.kill(n));
                    } else {
                        c.fault(format!("SIGTERM node {n}"), || c.cluster.terminate(n));
                    }
                }
                c.log(&format!("two nodes down for {d:?}: NOT_ENOUGH_REPLICAS"));
                c.run_for(d);
                restart(target);
                restart(other);
            }
            _ => {
                let d = rng.between(Duration::from_millis(500), REQUEST_TIMEOUT * 2);
                c.fault(format!("SIGKILL node {target}"), || c.cluster.kill(target));
                c.fault(format!("SIGSTOP node {other} for {d:?}"), || {
                    c.cluster.pause(other)
                });
                c.run_for(d);
                c.repair(format!("SIGCONT node {other}"), || c.cluster.resume(other));
                c.run_for(rng.between(Duration::ZERO, Duration::from_secs(2)));
                restart(target);
            }
        }
        c.wait_isr_full(Duration::from_secs(90));
    }
    c.run_for(Duration::from_secs(2));
}

fn scenarios() -> Vec<Scenario> {
    // Far beyond any outage of (a)–(c): no record should fail there.
    let generous = Duration::from_secs(40);
    vec![
        Scenario {
            name: "a-kill-leader".into(),
            delivery_timeout: generous,
            schedule: Box::new(kill_leader),
        },
        Scenario {
            name: "b-rolling-restart".into(),
            delivery_timeout: generous,
            schedule: Box::new(rolling_restart),
        },
        Scenario {
            name: "c-pause-leader".into(),
            delivery_timeout: generous,
            schedule: Box::new(pause_leader),
        },
        Scenario {
            name: "d-two-down".into(),
            delivery_timeout: TWO_DOWN_DELIVERY_TIMEOUT,
            schedule: Box::new(two_down),
        },
        random_scenario(random_seed_from_env()),
    ]
}

/// Runs every scenario with `peers` and asserts kring's guarantees.
fn run_all(peers: &[Peer]) {
    support::trace::init();
    let t0 = Instant::now();
    let cluster = start_cluster();
    eprintln!(
        "[failover] 3-node cluster up in {:.1}s at {}",
        t0.elapsed().as_secs_f64(),
        cluster.bootstrap()
    );
    let mut summary = String::new();
    let mut failures = Vec::new();
    // KRING_FAILOVER_ONLY=a-kill-leader,c-pause-leader runs just those.
    let only = std::env::var("KRING_FAILOVER_ONLY").ok();
    for sc in scenarios() {
        if only.as_ref().is_some_and(|o| {
            !o.split(',')
                .any(|n| n == sc.name || (n == "e-random" && sc.name.starts_with("e-random")))
        }) {
            continue;
        }
        for (peer, v, wall) in run_scenario(&cluster, &sc, peers) {
            let r = report(&sc.name, peer, &v, wall);
            eprint!("{r}");
            summary.push_str(&r);
            if peer == Peer::Kring && v.violations() > 0 {
                failures.push(format!("{}: {} violations", sc.name, v.violations()));
            }
            if peer == Peer::Kring && v.acked == 0 {
                failures.push(format!("{}: nothing was acknowledged", sc.name));
            }
        }
    }
    eprintln!(
        "\n=== failover summary ({:.0}s in all) ===\n{summary}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "kring broke a delivery guarantee: {failures:?}\n{summary}"
    );
}

#[test]
fn failover_kring() {
    run_all(&[Peer::Kring]);
}

#[test]
#[ignore = "comparison run by hand: librdkafka beside kring under the same schedule"]
fn failover_kring_beside_librdkafka() {
    run_all(&[Peer::Kring, Peer::Librdkafka]);
}

/// `KRING_KAFKA_CHAOS_SOAK=<n>` random schedules (seeds from
/// `KRING_KAFKA_CHAOS_START`, default 1000) on one 3-node cluster, each on
/// a topic of its own; prints every seed's verdict, the records covered and
/// the failing seeds (rerun one with `KRING_KAFKA_CHAOS_SEED=<seed>
/// KRING_FAILOVER_ONLY=e-random` and `failover_kring`). Run it with
/// `scripts/soak --kafka N [start]`.
#[test]
#[ignore = "soak: run with scripts/soak --kafka N"]
fn kafka_chaos_soak() {
    support::trace::init();
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let n = env("KRING_KAFKA_CHAOS_SOAK", 3);
    let start = env("KRING_KAFKA_CHAOS_START", 1000);
    let t0 = Instant::now();
    let cluster = start_cluster();
    let (mut sent, mut acked, mut failed) = (0, 0, 0);
    let mut failing = Vec::new();
    let mut summary = String::new();
    for seed in start..start + n {
        for (_, v, wall) in run_scenario(&cluster, &random_scenario(seed), &[Peer::Kring]) {
            let r = report(&format!("e-random-{seed}"), Peer::Kring, &v, wall);
            eprint!("{r}");
            summary.push_str(&r);
            sent += v.sent;
            acked += v.acked;
            failed += v.failed;
            if v.violations() > 0 || v.acked == 0 {
                failing.push(seed);
            }
        }
    }
    eprintln!(
        "\n=== KAFKA CHAOS SOAK seeds {start}..{}: {n} seeds, {sent} records ({acked} acked, {failed} failed), {} violating seeds, {:.0}s ===\n{summary}failing seeds: {failing:?}",
        start + n,
        failing.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(failing.is_empty(), "failing seeds: {failing:?}");
}
