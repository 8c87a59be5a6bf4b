//! Seeded chaos against kring-mock: one seed picks a cluster shape, a
//! producer configuration, a workload for several sender threads and a
//! fault schedule; [`run`] plays it and checks the delivery guarantees on
//! the mock's stored logs.
//!
//! Every record's value starts with `(sender: u32, seq: u64)` big-endian,
//! so a stored record names itself. Invariants checked after `close()`:
//! - every record has exactly one result: each future is resolved, and the
//!   `on_delivery` callback ran once per record (counted per topic);
//! - every acknowledged record is stored exactly at the partition and offset
//!   its result named;
//! - nothing is stored twice (failed records included): `(sender, seq)` is
//!   unique across every log;
//! - per partition, each sender's records are stored in send order;
//! - a record fails only on a partition the schedule gave a non-retriable
//!   error (every other fault is retriable and ends well before
//!   `delivery.timeout.ms`);
//! - a send is refused only where the seed's partitioner lies, at once,
//!   with the error the lie calls for, and nothing of it is stored;
//! - `close()` returns `true` within its bound; nothing panics but the
//!   delivery callback where the seed has it panic on purpose, and kring
//!   counts exactly those (`Metrics::callback_panics`).
//!
//! Steps of the schedule fire when the senders together have sent `at`
//! records (steps at 0 are installed before the producer starts). Runs are
//! not bit-for-bit deterministic (threads and sockets interleave freely), but
//! the seed fixes everything the test chooses; a failing seed is printed
//! with its configuration and schedule and reruns with
//! `KRING_CHAOS_SEED=<seed>`; `KRING_CHAOS_SKIP=3,5` drops steps, and
//! `KRING_CHAOS_SHRINK=1` searches for the steps a violation needs.
#![allow(dead_code)] // the CI and soak tests use different parts

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use kring::{Acks, Compression, DeliveryError, DeliveryFuture, Producer, Record, SendError};
use kring_mock::{Fault, FaultAction, MockCluster};
use kring_protocol::ErrorCode;

const PRODUCE: i16 = 0;
const SASL_HANDSHAKE: i16 = 17;
const METADATA: i16 = 3;
const INIT_PRODUCER_ID: i16 = 22;

/// splitmix64: tiny, seedable, good enough to pick test parameters.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c908)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// How many records a seed sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The CI seed set: a few hundred records per sender.
    Ci,
    /// The soak: thousands per sender.
    Soak,
}

impl Scale {
    pub fn from_env() -> Scale {
        match std::env::var("KRING_CHAOS_SCALE").as_deref() {
            Ok("soak") => Scale::Soak,
            _ => Scale::Ci,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scale::Ci => "ci",
            Scale::Soak => "soak",
        }
    }
}

/// Everything a seed chooses except the fault schedule.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub seed: u64,
    pub scale: Scale,
    pub brokers: i32,
    /// The first broker's node id (0 or 1: many real clusters number theirs
    /// from 0); the others follow.
    pub first_node_id: i32,
    pub topics: Vec<(String, i32)>,
    pub senders: u32,
    pub records_per_sender: u64,
    pub linger: Duration,
    pub batch_size: usize,
    pub max_in_flight: usize,
    pub codec: Compression,
    /// Values are 12 bytes of identity plus up to this much padding.
    pub max_pad: usize,
    /// Distinct keys (records are keyed with 80% probability).
    pub keyspace: u64,
    pub retry_backoff: Duration,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    /// `compression.threads` (drawn last: the draws before it, and so
    /// each seed's earlier settings, are those of before it existed).
    pub compression_threads: u32,
    /// `buffer.memory`, `None` for the default (drawn after
    /// `compression_threads`, for the same reason). A small one keeps the
    /// senders blocked for memory through the faults, and with gzip and
    /// no compression threads has them compress lingered batches while
    /// they wait.
    pub buffer_memory: Option<usize>,
    /// TLS between kring and kring-mock (this and the fields below are
    /// drawn after the ones above, each in turn): the faults, drops
    /// and restarts then cut TLS sessions mid-record, and every reconnect
    /// handshakes again. The librdkafka-mock runs ignore it (that mock has
    /// no TLS listener).
    pub tls: bool,
    /// SASL/SCRAM-SHA-512 with this session lifetime (KIP-368): kring
    /// re-authenticates connections in place through the faults (over TLS
    /// too when `tls`); a lifetime under kring's one-second floor between
    /// authentications has the mock close expired sessions instead.
    /// Ignored by the librdkafka-mock runs, like `tls`.
    pub sasl_lifetime: Option<Duration>,
    /// Every this many calls the delivery callback panics, after noting
    /// its report: kring must catch each panic, count it in
    /// `Metrics::callback_panics`, and still give every record its one
    /// result.
    pub panic_every: Option<u64>,
    /// A custom partitioner that lies: for some records it
    /// names a partition past the topic's end or panics
    /// ([`ChaosPartitioner`]). Those sends must fail at once with
    /// `InvalidPartition` or `PartitionerPanicked` and nothing of them be
    /// stored; every other record is delivered as usual.
    pub lying_partitioner: bool,
}

impl ChaosConfig {
    pub fn generate(seed: u64, scale: Scale) -> ChaosConfig {
        let mut rng = Rng::new(seed);
        let topics = (0..rng.range(2, 3))
            .map(|i| (format!("chaos-{i}"), rng.range(2, 4) as i32))
            .collect();
        let records_per_sender = match scale {
            Scale::Ci => rng.range(200, 800),
            Scale::Soak => rng.range(2_000, 8_000),
        };
        ChaosConfig {
            seed,
            scale,
            brokers: 3,
            // From the seed, not the generator: every other choice of a
            // seed stays what it was before node ids varied.
            first_node_id: (seed % 2) as i32,
            topics,
            senders: rng.range(2, 3) as u32,
            records_per_sender,
            linger: Duration::from_millis(rng.pick(&[0, 0, 1, 5, 20])),
            batch_size: rng.pick(&[512, 2_048, 16_384, 65_536]),
            max_in_flight: rng.range(1, 5) as usize,
            codec: rng.pick(&[
                Compression::None,
                Compression::Gzip,
                Compression::Snappy,
                Compression::Lz4,
                Compression::Zstd,
            ]),
            max_pad: rng.pick(&[0, 40, 200, 1_000]),
            keyspace: rng.pick(&[0, 7, 1_000]),
            retry_backoff: Duration::from_millis(rng.pick(&[5, 10, 20])),
            request_timeout: Duration::from_secs(2),
            delivery_timeout: Duration::from_secs(12),
            compression_threads: rng.pick(&[0, 0, 1, 2]),
            buffer_memory: rng.pick(&[None, None, None, Some(64 << 10), Some(256 << 10)]),
            tls: rng.chance(25),
            sasl_lifetime: rng.pick(&[
                None,
                None,
                None,
                Some(Duration::from_millis(300)),
                Some(Duration::from_millis(1_500)),
            ]),
            panic_every: rng.pick(&[None, None, None, Some(97), Some(1_000)]),
            lying_partitioner: rng.chance(30),
        }
    }

    pub fn total_records(&self) -> u64 {
        u64::from(self.senders) * self.records_per_sender
    }

    fn producer(&self, bootstrap: &str) -> kring::ProducerBuilder {
        let b = Producer::builder()
            .io_backend(
                std::env::var("KRING_TEST_IO_BACKEND")
                    .ok()
                    .and_then(|v| kring::IoBackend::parse(&v))
                    .unwrap_or_default(),
            )
            .bootstrap(bootstrap)
            .acks(Acks::All)
            .idempotence(true)
            .linger(self.linger)
            .batch_size(self.batch_size)
            .max_in_flight(self.max_in_flight)
            .compression(self.codec)
            .compression_threads(self.compression_threads)
            .retry_backoff(self.retry_backoff)
            .retry_backoff_max(Duration::from_millis(200))
            .reconnect_backoff(Duration::from_millis(10))
            .reconnect_backoff_max(Duration::from_millis(200))
            .request_timeout(self.request_timeout)
            .delivery_timeout(self.delivery_timeout)
            // Twice the delivery timeout: a sender blocked for memory
            // through an outage gets it back when the batches holding it
            // expire (a refused send counts as a violation).
            .max_block(2 * self.delivery_timeout);
        let b = match self.buffer_memory {
            Some(bytes) => b.buffer_memory(bytes),
            None => b,
        };
        if self.lying_partitioner {
            b.custom_partitioner(Arc::new(ChaosPartitioner))
        } else {
            b
        }
    }
}

impl fmt::Display for ChaosConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|(t, p)| format!("{t}x{p}"))
            .collect();
        write!(
            f,
            "scale={} brokers={} first.node.id={} topics=[{}] senders={} records/sender={} linger={:?} \
             batch.size={} max.in.flight={} codec={:?} pad<={} keys={} backoff={:?} \
             request.timeout={:?} delivery.timeout={:?} compression.threads={} \
             buffer.memory={:?} tls={} sasl.lifetime={:?} callback.panics.every={:?} \
             lying.partitioner={}",
            self.scale.name(),
            self.brokers,
            self.first_node_id,
            topics.join(","),
            self.senders,
            self.records_per_sender,
            self.linger,
            self.batch_size,
            self.max_in_flight,
            self.codec,
            self.max_pad,
            self.keyspace,
            self.retry_backoff,
            self.request_timeout,
            self.delivery_timeout,
            self.compression_threads,
            self.buffer_memory,
            self.tls,
            self.sasl_lifetime,
            self.panic_every,
            self.lying_partitioner,
        )
    }
}

/// One thing the schedule does to the cluster.
#[derive(Debug, Clone)]
pub enum Action {
    Fault {
        api: i16,
        action: FaultAction,
        broker: Option<i32>,
        partition: Option<(String, i32)>,
        times: u32,
    },
    MoveLeader {
        topic: String,
        partition: i32,
        to: i32,
    },
    /// Stop a broker, start it again after `down`.
    Restart { broker: i32, down: Duration },
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Fires once this many records were sent.
    pub at: u64,
    pub action: Action,
}

fn api_name(api: i16) -> &'static str {
    match api {
        PRODUCE => "Produce",
        METADATA => "Metadata",
        INIT_PRODUCER_ID => "InitProducerId",
        _ => "api?",
    }
}

fn code_name(code: i16) -> &'static str {
    ErrorCode::from(code).name()
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{} ", self.at)?;
        match &self.action {
            Action::Fault {
                api,
                action,
                broker,
                partition,
                times,
            } => {
                write!(f, "{} ", api_name(*api))?;
                match action {
                    FaultAction::Error(c) => write!(f, "error {}", code_name(*c))?,
                    FaultAction::Delay(d) => write!(f, "delay {d:?}")?,
                    FaultAction::DropBeforeApply => write!(f, "drop-before-apply")?,
                    FaultAction::DropAfterApply => write!(f, "drop-after-apply")?,
                    FaultAction::Throttle(d) => write!(f, "throttle {d:?}")?,
                    FaultAction::TruncateResponse { keep } => write!(f, "truncate keep={keep}")?,
                    FaultAction::CorruptResponse => write!(f, "corrupt")?,
                    FaultAction::CutResponse => write!(f, "cut")?,
                    other => write!(f, "{other:?}")?,
                }
                if let Some(b) = broker {
                    write!(f, " broker={b}")?;
                }
                if let Some((t, p)) = partition {
                    write!(f, " on={t}/{p}")?;
                }
                write!(f, " x{times}")
            }
            Action::MoveLeader {
                topic,
                partition,
                to,
            } => write!(f, "move-leader {topic}/{partition} -> {to}"),
            Action::Restart { broker, down } => {
                write!(f, "stop broker {broker}, start after {down:?}")
            }
        }
    }
}

/// Errors a broker may answer Produce with that a producer must retry.
const RETRIABLE_PRODUCE: &[i16] = &[
    6,  // NOT_LEADER_OR_FOLLOWER
    19, // NOT_ENOUGH_REPLICAS
    20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
    7,  // REQUEST_TIMED_OUT
    5,  // LEADER_NOT_AVAILABLE
    56, // KAFKA_STORAGE_ERROR
    3,  // UNKNOWN_TOPIC_OR_PARTITION
    2,  // CORRUPT_MESSAGE
    13, // NETWORK_EXCEPTION
];

/// Non-retriable Produce errors: they fail the batch they hit.
const FATAL_PRODUCE: &[i16] = &[
    87, // INVALID_RECORD
    32, // INVALID_TIMESTAMP
    18, // RECORD_LIST_TOO_LARGE
];

/// Retriable InitProducerId errors.
const RETRIABLE_INIT: &[i16] = &[
    14, // COORDINATOR_LOAD_IN_PROGRESS
    15, // COORDINATOR_NOT_AVAILABLE
];

/// The fault schedule of a seed.
pub fn generate_schedule(cfg: &ChaosConfig) -> Vec<Step> {
    let mut rng = Rng::new(cfg.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5c4e_d01e);
    let total = cfg.total_records();
    let mut steps = Vec::new();
    let mut fatal = 0;
    let n = rng.range(5, 14);
    for _ in 0..n {
        let at = if rng.chance(12) {
            0
        } else {
            rng.below(total * 9 / 10)
        };
        let (topic, parts) = cfg.topics[rng.below(cfg.topics.len() as u64) as usize].clone();
        let partition = (topic, rng.below(parts as u64) as i32);
        let broker = cfg.first_node_id + rng.below(cfg.brokers as u64) as i32;
        let some_broker = if rng.chance(40) { Some(broker) } else { None };
        let some_partition = if rng.chance(50) {
            Some(partition.clone())
        } else {
            None
        };
        let times = rng.range(1, 3) as u32;
        let kind = rng.below(100);
        let fault = |api, action, broker, partition, times| Action::Fault {
            api,
            action,
            broker,
            partition,
            times,
        };
        let action = match kind {
            0..=21 => fault(
                PRODUCE,
                FaultAction::Error(rng.pick(RETRIABLE_PRODUCE)),
                some_broker,
                some_partition,
                rng.range(1, 4) as u32,
            ),
            22..=25 => fault(
                METADATA,
                FaultAction::Error(5), // LEADER_NOT_AVAILABLE
                None,
                Some(partition),
                times,
            ),
            26..=29 if fatal < 2 => {
                fatal += 1;
                fault(
                    PRODUCE,
                    FaultAction::Error(rng.pick(FATAL_PRODUCE)),
                    None,
                    Some(partition),
                    1,
                )
            }
            26..=37 => fault(
                if rng.chance(75) { PRODUCE } else { METADATA },
                FaultAction::DropBeforeApply,
                some_broker,
                some_partition,
                times,
            ),
            38..=47 => fault(
                PRODUCE,
                FaultAction::DropAfterApply,
                some_broker,
                some_partition,
                times,
            ),
            48..=55 => {
                let api = rng.pick(&[PRODUCE, PRODUCE, METADATA, INIT_PRODUCER_ID]);
                // One in four answered only after the request timeout, as
                // by a broker stalled in a long pause: the client gives up
                // on the connection although the request was applied, and
                // what it sent behind it was applied too.
                let (ms, times) = if rng.chance(25) {
                    (rng.range(2_200, 3_000), rng.range(1, 2) as u32)
                } else {
                    (rng.range(5, 800), times)
                };
                fault(
                    api,
                    FaultAction::Delay(Duration::from_millis(ms)),
                    some_broker,
                    None,
                    times,
                )
            }
            56..=61 => fault(
                PRODUCE,
                FaultAction::Throttle(Duration::from_millis(rng.range(10, 300))),
                some_broker,
                None,
                times,
            ),
            62..=69 => fault(
                if rng.chance(75) { PRODUCE } else { METADATA },
                FaultAction::CorruptResponse,
                some_broker,
                some_partition,
                times,
            ),
            70..=75 => fault(
                if rng.chance(75) { PRODUCE } else { METADATA },
                FaultAction::TruncateResponse {
                    keep: rng.below(40) as usize,
                },
                some_broker,
                some_partition,
                times,
            ),
            76..=81 => fault(
                if rng.chance(75) { PRODUCE } else { METADATA },
                FaultAction::CutResponse,
                some_broker,
                some_partition,
                times,
            ),
            82..=86 => fault(
                INIT_PRODUCER_ID,
                FaultAction::Error(rng.pick(RETRIABLE_INIT)),
                None,
                None,
                times,
            ),
            87..=94 => Action::MoveLeader {
                topic: partition.0,
                partition: partition.1,
                to: broker,
            },
            _ => Action::Restart {
                broker,
                down: Duration::from_millis(rng.range(50, 1_500)),
            },
        };
        steps.push(Step { at, action });
    }
    steps.sort_by_key(|s| s.at);
    steps
}

/// Partitions whose records may legitimately fail: those a non-retriable
/// error was scheduled on.
fn fatal_partitions(steps: &[Step]) -> HashSet<(String, i32)> {
    steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Fault {
                api: PRODUCE,
                action: FaultAction::Error(c),
                partition: Some(p),
                ..
            } if FATAL_PRODUCE.contains(c) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// What one run found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: u64,
    pub acked: u64,
    /// Records that failed on a partition with a scheduled fatal error.
    pub failed_expected: u64,
    /// Failed records that are nevertheless in the log (allowed: "possibly
    /// persisted").
    pub failed_but_stored: u64,
    /// Records failed at once with OUT_OF_ORDER_SEQUENCE_NUMBER although
    /// every fault on their partition was retriable (see `run`).
    pub failed_out_of_order: u64,
    pub close_time: Duration,
    pub run_time: Duration,
    /// Batches the senders compressed while blocked for `buffer.memory`
    /// (`Metrics::batches_compressed_while_blocked`): whether the seed
    /// reached that path.
    pub compressed_while_blocked: u64,
    /// Panics the delivery callback threw on purpose (`panic_every`).
    pub callback_panics: u64,
    /// Sends refused at once because the partitioner lied
    /// (`lying_partitioner`), as they must be.
    pub refused_as_expected: u64,
    /// Authentications (SaslHandshake requests) and connections the mock
    /// took (SASL seeds): more authentications than connections means
    /// connections re-authenticated in place.
    pub authentications: u64,
    pub connections: u64,
    /// Violations by kind, with a few examples each.
    pub violations: BTreeMap<&'static str, (u64, Vec<String>)>,
}

impl Outcome {
    fn violation(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        let e = self.violations.entry(kind).or_default();
        e.0 += 1;
        if e.1.len() < 4 {
            e.1.push(detail());
        }
    }

    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn summary(&self) -> String {
        self.violations
            .iter()
            .map(|(k, (n, _))| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic (on any thread, the I/O thread included).
fn install_panic_counter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<IntendedPanic>().is_some() {
                return;
            }
            PANICS.fetch_add(1, Ordering::SeqCst);
            prev(info);
        }));
    });
}

fn value_of(sender: u32, seq: u64, pad: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + pad);
    v.extend_from_slice(&sender.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    let mut x = (u64::from(sender) << 40 ^ seq).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < 12 + pad {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 8) as u8);
    }
    v
}

fn parse_value(v: &[u8]) -> Option<(u32, u64)> {
    if v.len() < 12 {
        return None;
    }
    Some((
        u32::from_be_bytes(v[..4].try_into().ok()?),
        u64::from_be_bytes(v[4..12].try_into().ok()?),
    ))
}

/// A record read back: offset and value.
type ReadBack = (i64, Option<Vec<u8>>);

/// Where a record was stored: (topic index, partition, offset).
type Place = (usize, i32, i64);

enum Sent {
    Future(DeliveryFuture),
    /// Sent with `Producer::produce` (no handle) and this context: the
    /// delivery callback alone reports it.
    Produced(u64),
    Refused(kring::SendError),
}

/// One callback report: the partition and the result.
type Report = (i32, Result<kring::RecordMetadata, DeliveryError>);

/// What the delivery callback saw: reports per topic, and each report of a
/// record sent without a handle (by its context).
#[derive(Default)]
pub struct Callbacks {
    per_topic: HashMap<String, u64>,
    produced: HashMap<u64, Vec<Report>>,
    /// Panic at every this many calls (`ChaosConfig::panic_every`).
    panic_every: Option<u64>,
    calls: u64,
    /// Panics thrown on purpose so far.
    panicked: u64,
}

/// The payload of a panic the chaos callback or partitioner throws on
/// purpose: the panic hook neither prints nor counts it as a violation.
struct IntendedPanic;

/// How [`ChaosPartitioner`] lies about a record of sequence number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// A partition three past the topic's last.
    PastTheEnd,
    /// A panic.
    Panic,
}

fn lie_for(seq: u64) -> Option<Lie> {
    match (seq % 101, seq % 211) {
        (5, _) => Some(Lie::PastTheEnd),
        (_, 9) => Some(Lie::Panic),
        _ => None,
    }
}

/// A partitioner that lies for the records [`lie_for`] names (read from
/// the value's sequence number) and otherwise hashes the key (FNV-1a) or
/// leaves keyless records to the sticky strategy.
#[derive(Debug)]
struct ChaosPartitioner;

impl kring::Partitioner for ChaosPartitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        view: &kring::PartitionView<'_>,
    ) -> Option<u32> {
        match value
            .and_then(parse_value)
            .and_then(|(_, seq)| lie_for(seq))
        {
            Some(Lie::PastTheEnd) => return Some(view.num_partitions + 2),
            Some(Lie::Panic) => std::panic::panic_any(IntendedPanic),
            None => {}
        }
        let key = key?;
        let h = key.iter().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        });
        Some(h % view.num_partitions)
    }
}

impl Callbacks {
    fn new(panic_every: Option<u64>) -> Arc<Mutex<Callbacks>> {
        Arc::new(Mutex::new(Callbacks {
            panic_every,
            ..Callbacks::default()
        }))
    }

    /// The producer's `on_delivery`: counts and keeps `r`, then panics if
    /// this call is one of every `panic_every`.
    fn record(this: &Mutex<Callbacks>, r: &kring::DeliveryReport<'_>) {
        let mut g = this.lock().unwrap_or_else(|e| e.into_inner());
        *g.per_topic.entry(r.topic.to_string()).or_default() += 1;
        if r.context != 0 {
            let result = r.result.clone().map_err(Clone::clone);
            g.produced
                .entry(r.context)
                .or_default()
                .push((r.partition, result));
        }
        g.calls += 1;
        let panic = g.panic_every.is_some_and(|n| g.calls.is_multiple_of(n));
        if panic {
            g.panicked += 1;
        }
        drop(g);
        if panic {
            std::panic::panic_any(IntendedPanic);
        }
    }
}

/// The context a record sent without a handle carries (never 0).
fn produced_context(sender: u32, seq: u64) -> u64 {
    (u64::from(sender) << 32 | seq) + 1
}

/// Steps to leave out, from `KRING_CHAOS_SKIP=1,4`.
pub fn skip_from_env() -> HashSet<usize> {
    std::env::var("KRING_CHAOS_SKIP")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Does one step to the cluster, unless it is a restart (returns false).
fn apply_now(c: &MockCluster, s: &Step) -> bool {
    match &s.action {
        Action::Fault {
            api,
            action,
            broker,
            partition,
            times,
        } => {
            let mut f = Fault::new(*api, action.clone()).times(*times);
            if let Some(b) = broker {
                f = f.on_broker(*b);
            }
            if let Some((t, p)) = partition {
                f = f.on_partition(t.clone(), *p);
            }
            c.inject(f);
        }
        Action::MoveLeader {
            topic,
            partition,
            to,
        } => {
            c.move_leader(topic, *partition, *to).expect("move leader");
        }
        Action::Restart { .. } => return false,
    }
    true
}

/// A restart step: stops the broker now and starts it again from a thread
/// of `scope` (skipped while the broker is down).
fn restart<'scope>(
    c: &'scope MockCluster,
    down: &'scope [AtomicBool],
    s: &Step,
    scope: &'scope std::thread::Scope<'scope, '_>,
) {
    match &s.action {
        Action::Restart { broker, down: d } => {
            let flag = &down[*broker as usize];
            if !flag.swap(true, Ordering::SeqCst) {
                c.stop_broker(*broker).expect("stop broker");
                let (d, b) = (*d, *broker);
                scope.spawn(move || {
                    // The broker's downtime is the fault itself: a wall
                    // clock wait is the point here.
                    std::thread::sleep(d);
                    c.start_broker(b).expect("start broker");
                    flag.store(false, Ordering::SeqCst);
                });
            }
        }
        _ => unreachable!("not a restart"),
    }
}

/// One sender thread: `records_per_sender` records, each to a random topic,
/// keyed or not, in sequence order.
fn send_records(
    cfg: &ChaosConfig,
    s: u32,
    p: &Producer,
    sent_total: &AtomicU64,
    senders_done: &AtomicUsize,
) -> Vec<(usize, Sent)> {
    let mut rng = Rng::new(cfg.seed ^ (u64::from(s) + 1).wrapping_mul(0xd1b5_4a32));
    let mut sent = Vec::with_capacity(cfg.records_per_sender as usize);
    for seq in 0..cfg.records_per_sender {
        let t = rng.below(cfg.topics.len() as u64) as usize;
        let pad = rng.below(cfg.max_pad as u64 + 1) as usize;
        let value = value_of(s, seq, pad);
        let key =
            (cfg.keyspace > 0 && rng.chance(80)).then(|| format!("k{}", rng.below(cfg.keyspace)));
        let mut rec = Record::new(&cfg.topics[t].0, &value);
        if let Some(k) = &key {
            rec = rec.key(k.as_bytes());
        }
        // A quarter of the records go without a handle: their results
        // are checked from the delivery callback alone.
        let r = if rng.chance(25) {
            let ctx = produced_context(s, seq);
            match p.produce(rec.context(ctx)) {
                Ok(()) => Sent::Produced(ctx),
                Err(e) => Sent::Refused(e),
            }
        } else {
            match p.send(rec) {
                Ok(f) => Sent::Future(f),
                Err(e) => Sent::Refused(e),
            }
        };
        sent.push((t, r));
        sent_total.fetch_add(1, Ordering::Relaxed);
    }
    senders_done.fetch_add(1, Ordering::SeqCst);
    sent
}

/// The SCRAM user of the SASL seeds.
const SASL_USER: &str = "chaos";
const SASL_PASSWORD: &str = "ch4os-pa55";

/// The test CA and the brokers' certificate (for 127.0.0.1) of the TLS
/// seeds, made once per process.
fn tls_identities() -> &'static (crate::pki::TestCa, crate::pki::Identity) {
    static IDS: std::sync::OnceLock<(crate::pki::TestCa, crate::pki::Identity)> =
        std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let ca = crate::pki::TestCa::new("kring chaos CA");
        let server = ca.server(&["localhost"], true);
        (ca, server)
    })
}

/// Plays one seed (with the steps in `skip` left out) and checks the
/// invariants.
pub fn run(cfg: &ChaosConfig, steps: &[Step], skip: &HashSet<usize>) -> Outcome {
    install_panic_counter();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut out = Outcome {
        records: cfg.total_records(),
        ..Outcome::default()
    };
    let mut builder = MockCluster::builder()
        .brokers(cfg.brokers)
        .first_node_id(cfg.first_node_id);
    for (t, p) in &cfg.topics {
        builder = builder.topic(t, *p);
    }
    if cfg.tls {
        let (_, server) = tls_identities();
        builder = builder.tls(server.cert_pem.clone(), server.key_pem.clone());
    }
    if let Some(lifetime) = cfg.sasl_lifetime {
        builder = builder.sasl(
            kring_mock::MockSasl::default()
                .user(SASL_USER, SASL_PASSWORD)
                .session_lifetime(lifetime),
        );
    }
    let c = builder.build().expect("mock cluster");
    let steps: Vec<&Step> = steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, s)| s)
        .collect();
    let fatal = fatal_partitions(&steps.iter().map(|s| (*s).clone()).collect::<Vec<_>>());

    // Indexed by node id.
    let down: Vec<AtomicBool> = (0..cfg.first_node_id + cfg.brokers)
        .map(|_| AtomicBool::new(false))
        .collect();

    let callbacks = Callbacks::new(cfg.panic_every);
    let cb = callbacks.clone();
    let sent_total = AtomicU64::new(0);
    let senders_done = AtomicUsize::new(0);
    // Steps at 0 apply before the producer starts (restarts right after).
    let mut idx = 0;
    let mut early_restarts = Vec::new();
    while idx < steps.len() && steps[idx].at == 0 {
        if matches!(steps[idx].action, Action::Restart { .. }) {
            early_restarts.push(steps[idx]);
        } else {
            apply_now(&c, steps[idx]);
        }
        idx += 1;
    }
    let mut producer = cfg.producer(&c.bootstrap_servers());
    if cfg.tls {
        producer = producer.ssl_ca_pem(&tls_identities().0.cert_pem);
    }
    if cfg.sasl_lifetime.is_some() {
        producer = producer.sasl_scram_sha512(SASL_USER, SASL_PASSWORD);
    }
    producer = producer.security_protocol(match (cfg.tls, cfg.sasl_lifetime.is_some()) {
        (false, false) => kring::SecurityProtocol::Plaintext,
        (true, false) => kring::SecurityProtocol::Ssl,
        (false, true) => kring::SecurityProtocol::SaslPlaintext,
        (true, true) => kring::SecurityProtocol::SaslSsl,
    });
    let producer = producer
        .on_delivery(move |r| Callbacks::record(&cb, r))
        .build()
        .expect("producer");
    let sent = std::thread::scope(|scope| {
        let apply = |s: &Step| {
            if !apply_now(&c, s) {
                restart(&c, &down, s, scope);
            }
        };
        for s in early_restarts {
            apply(s);
        }
        let handles: Vec<_> = (0..cfg.senders)
            .map(|s| {
                let (p, sent_total, senders_done) = (&producer, &sent_total, &senders_done);
                scope.spawn(move || send_records(cfg, s, p, sent_total, senders_done))
            })
            .collect();
        // The schedule: fire each step once enough records were sent.
        while idx < steps.len() {
            let n = sent_total.load(Ordering::Relaxed);
            while idx < steps.len() && steps[idx].at <= n {
                apply(steps[idx]);
                idx += 1;
            }
            if senders_done.load(Ordering::SeqCst) == cfg.senders as usize {
                while idx < steps.len() {
                    apply(steps[idx]);
                    idx += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let sent: Vec<Vec<(usize, Sent)>> = handles
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect();
        sent
    });

    close_and_check(
        cfg,
        &producer,
        sent,
        &callbacks,
        &fatal,
        &mut out,
        true,
        |ti, p| {
            let t = &cfg.topics[ti].0;
            c.records(t, p)
                .map(|rs| {
                    rs.into_iter()
                        .map(|r| (r.offset, r.value.map(|v| v.to_vec())))
                        .collect()
                })
                .map_err(|e| e.to_string())
        },
    );
    if cfg.sasl_lifetime.is_some() {
        out.authentications = c.request_count(SASL_HANDSHAKE);
        out.connections = c.connection_count();
    }
    let panics = PANICS.load(Ordering::SeqCst) - panics_before;
    if panics > 0 {
        out.violation("panic", || format!("{panics} panics"));
    }
    out.run_time = started.elapsed();
    out
}

/// Closes the producer within its bound, reads every partition back with
/// `read` (offset and value of each record, in offset order) and checks the
/// invariants. With `dedup` off (a broker that does not deduplicate
/// idempotent batches), copies and their order are not checked, and an
/// acknowledged record must be found at its offset among its copies.
#[allow(clippy::too_many_arguments)]
fn close_and_check(
    cfg: &ChaosConfig,
    producer: &Producer,
    sent: Vec<Vec<(usize, Sent)>>,
    callbacks: &Mutex<Callbacks>,
    fatal: &HashSet<(String, i32)>,
    out: &mut Outcome,
    dedup: bool,
    mut read: impl FnMut(usize, i32) -> Result<Vec<ReadBack>, String>,
) {
    let bound = cfg.delivery_timeout + cfg.request_timeout + Duration::from_secs(5);
    let t = Instant::now();
    let closed = producer.close_timeout(bound);
    out.close_time = t.elapsed();
    let metrics = producer.metrics();
    out.compressed_while_blocked = metrics.batches_compressed_while_blocked;
    // Every panic the callback threw was caught and counted, and no other.
    let panicked = callbacks.lock().unwrap_or_else(|e| e.into_inner()).panicked;
    out.callback_panics = panicked;
    if metrics.callback_panics != panicked {
        let caught = metrics.callback_panics;
        out.violation("callback_panics_counted", || {
            format!("the callback panicked {panicked} times, kring counted {caught}")
        });
    }
    if !closed {
        out.violation("close_incomplete", || {
            format!("close_timeout({bound:?}) returned false")
        });
    }
    if out.close_time > bound + Duration::from_secs(2) {
        let took = out.close_time;
        out.violation("close_slow", || format!("close took {took:?}"));
    }

    // What landed: (sender, seq) -> [(topic, partition, offset)].
    let mut stored: HashMap<(u32, u64), Vec<Place>> = HashMap::new();
    for (ti, (t, parts)) in cfg.topics.iter().enumerate() {
        for p in 0..*parts {
            let records = match read(ti, p) {
                Ok(r) => r,
                Err(e) => {
                    out.violation("log_undecodable", || format!("{t}/{p}: {e}"));
                    continue;
                }
            };
            let mut last: HashMap<u32, u64> = HashMap::new();
            for r in &records {
                let (offset, value) = r;
                let Some((s, seq)) = value.as_deref().and_then(parse_value) else {
                    out.violation("foreign_record", || format!("{t}/{p}@{offset}"));
                    continue;
                };
                if s >= cfg.senders || seq >= cfg.records_per_sender {
                    out.violation("foreign_record", || format!("{t}/{p}@{offset}"));
                    continue;
                }
                if !dedup {
                    stored.entry((s, seq)).or_default().push((ti, p, *offset));
                    continue;
                }
                if let Some(&prev) = last.get(&s) {
                    if seq <= prev {
                        out.violation("out_of_order", || {
                            format!("{t}/{p}@{offset}: sender {s} seq {seq} after seq {prev}")
                        });
                    }
                }
                last.insert(s, seq);
                stored.entry((s, seq)).or_default().push((ti, p, *offset));
            }
        }
    }
    for ((s, seq), at) in &stored {
        if dedup && at.len() > 1 {
            out.violation("stored_twice", || {
                let places: Vec<String> = at
                    .iter()
                    .map(|(t, p, o)| format!("{}/{p}@{o}", cfg.topics[*t].0))
                    .collect();
                format!("sender {s} seq {seq} at {}", places.join(", "))
            });
        }
    }

    let mut per_topic: HashMap<String, u64> = HashMap::new();
    let callbacks = std::mem::take(&mut *callbacks.lock().unwrap_or_else(|e| e.into_inner()));
    for (s, records) in sent.iter().enumerate() {
        let s = s as u32;
        for (seq, (t, r)) in records.iter().enumerate() {
            let seq = seq as u64;
            let topic = &cfg.topics[*t].0;
            let here = stored.get(&(s, seq));
            let (partition, result) = match r {
                Sent::Future(f) => match f.try_result() {
                    Some(result) => (f.partition(), result),
                    None => {
                        *per_topic.entry(topic.clone()).or_default() += 1;
                        out.violation("no_result", || format!("sender {s} seq {seq}"));
                        continue;
                    }
                },
                Sent::Produced(ctx) => match callbacks.produced.get(ctx).map(Vec::as_slice) {
                    Some([(p, result)]) => (*p, result.clone()),
                    other => {
                        *per_topic.entry(topic.clone()).or_default() += 1;
                        let n = other.map_or(0, <[_]>::len);
                        out.violation("produced_results", || {
                            format!("sender {s} seq {seq} (no handle): {n} callback reports")
                        });
                        continue;
                    }
                },
                Sent::Refused(e) => {
                    let lie = cfg.lying_partitioner.then(|| lie_for(seq)).flatten();
                    let expected = matches!(
                        (lie, e),
                        (Some(Lie::PastTheEnd), SendError::InvalidPartition { .. })
                            | (Some(Lie::Panic), SendError::PartitionerPanicked { .. })
                    );
                    if !expected {
                        out.violation("send_refused", || format!("sender {s} seq {seq}: {e}"));
                    } else if let Some(at) = here {
                        out.violation("refused_but_stored", || {
                            format!("sender {s} seq {seq} refused ({e}) but stored at {at:?}")
                        });
                    } else {
                        out.refused_as_expected += 1;
                    }
                    continue;
                }
            };
            if cfg.lying_partitioner && lie_for(seq).is_some() {
                out.violation("partitioner_lie_accepted", || {
                    format!("sender {s} seq {seq}: the partitioner lied, the send was taken")
                });
            }
            *per_topic.entry(topic.clone()).or_default() += 1;
            if let Some(at) = here {
                if at.iter().any(|(ti, p, _)| *ti != *t || *p != partition) {
                    out.violation("wrong_partition", || {
                        format!(
                            "sender {s} seq {seq} appended to {topic}/{partition} stored at {at:?}"
                        )
                    });
                }
            }
            match result {
                Ok(meta) => {
                    out.acked += 1;
                    let want = (*t, meta.partition, meta.offset);
                    match here {
                        None => out.violation("acked_not_stored", || {
                            format!(
                                "sender {s} seq {seq} acked at {topic}/{}@{}",
                                meta.partition, meta.offset
                            )
                        }),
                        Some(at) if !at.contains(&want) => {
                            out.violation("acked_wrong_offset", || {
                                format!(
                                    "sender {s} seq {seq} acked at {topic}/{}@{}, stored at {at:?}",
                                    meta.partition, meta.offset
                                )
                            })
                        }
                        Some(_) => {}
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if here.is_some() {
                        out.failed_but_stored += 1;
                        // Where the error carries librdkafka-style message
                        // status (idem's branch), "not persisted" is a
                        // promise the log can check.
                        if text.ends_with("(not persisted)") {
                            out.violation("not_persisted_but_stored", || {
                                format!("sender {s} seq {seq} on {topic}/{partition}: {text}")
                            });
                        }
                    }
                    if matches!(e, DeliveryError::Aborted { .. }) {
                        out.violation("aborted", || format!("sender {s} seq {seq}: {text}"));
                    } else if fatal.contains(&(topic.clone(), partition)) {
                        out.failed_expected += 1;
                    } else if matches!(e, DeliveryError::Timeout { .. }) {
                        // Every fault here is retriable and over long before
                        // delivery.timeout.ms: a timeout is a stall.
                        out.violation("failed_timeout_retriable_only", || {
                            format!("sender {s} seq {seq} on {topic}/{partition}: {text}")
                        });
                    } else if matches!(e, DeliveryError::Broker { code: 45, .. }) {
                        // OUT_OF_ORDER_SEQUENCE_NUMBER at once: the broker
                        // took later sequences of a partition whose first
                        // batch failed (Kafka >= 2.5 accepts any first
                        // sequence from an unknown producer); failing the
                        // batch keeps order. Or the batch was written, but
                        // so long ago that the broker no longer remembers
                        // it to answer a retry as a duplicate (possibly
                        // persisted). Allowed, counted.
                        out.failed_out_of_order += 1;
                    } else {
                        out.violation("failed_retriable_only", || {
                            format!("sender {s} seq {seq} on {topic}/{partition}: {text}")
                        });
                    }
                }
            }
        }
    }
    for (topic, _) in &cfg.topics {
        let want = per_topic.get(topic).copied().unwrap_or(0);
        let got = callbacks.per_topic.get(topic).copied().unwrap_or(0);
        if want != got {
            out.violation("callback_count", || {
                format!("{topic}: {got} callbacks for {want} records")
            });
        }
    }
}

/// The repro block printed for a failing seed.
pub fn describe(cfg: &ChaosConfig, steps: &[Step], skip: &HashSet<usize>, out: &Outcome) -> String {
    let mut s = format!(
        "CHAOS VIOLATION seed={} [{}]\n  rerun: KRING_CHAOS_SEED={} KRING_CHAOS_SCALE={} cargo test --release --test e2e_chaos chaos_seed -- --ignored --nocapture\n  config: {cfg}\n  schedule:\n",
        cfg.seed,
        out.summary(),
        cfg.seed,
        cfg.scale.name()
    );
    for (i, st) in steps.iter().enumerate() {
        let mark = if skip.contains(&i) { " (skipped)" } else { "" };
        s.push_str(&format!("    {i:2}: {st}{mark}\n"));
    }
    for (kind, (n, examples)) in &out.violations {
        s.push_str(&format!("  {kind} x{n}:\n"));
        for e in examples {
            s.push_str(&format!("    {e}\n"));
        }
    }
    s
}

/// Runs `seed`; on a violation, prints the repro block.
pub fn run_seed(seed: u64, scale: Scale, skip: &HashSet<usize>) -> Outcome {
    let cfg = ChaosConfig::generate(seed, scale);
    let steps = generate_schedule(&cfg);
    let out = run(&cfg, &steps, skip);
    if !out.ok() {
        eprintln!("{}", describe(&cfg, &steps, skip, &out));
    }
    out
}

/// Violations of safety (what landed, what was reported) rather than of
/// liveness (records failed although every fault was retriable).
const SAFETY: &[&str] = &[
    "stored_twice",
    "out_of_order",
    "acked_not_stored",
    "acked_wrong_offset",
    "wrong_partition",
    "foreign_record",
    "no_result",
    "callback_count",
    "aborted",
    "panic",
    "close_incomplete",
    "close_slow",
];

/// Greedy one-at-a-time reduction: drops each step whose removal keeps a
/// violation of the same class as the full run's (safety if it had one,
/// else any), in any of `tries` runs since runs are timing dependent.
/// Returns the steps kept.
pub fn shrink(seed: u64, scale: Scale, tries: u32) -> Vec<Step> {
    let cfg = ChaosConfig::generate(seed, scale);
    let steps = generate_schedule(&cfg);
    let mut skip = HashSet::new();
    let full = (0..tries)
        .map(|_| run(&cfg, &steps, &skip))
        .find(|o| !o.ok());
    let Some(full) = full else {
        eprintln!("shrink seed {seed}: no violation in {tries} runs");
        return steps;
    };
    let safety = full.violations.keys().any(|k| SAFETY.contains(k));
    eprintln!(
        "shrink seed {seed}: full run [{}], keeping {} violations",
        full.summary(),
        if safety { "safety" } else { "any" }
    );
    let fails = |o: &Outcome| {
        if safety {
            o.violations.keys().any(|k| SAFETY.contains(k))
        } else {
            !o.ok()
        }
    };
    for i in 0..steps.len() {
        skip.insert(i);
        let still = (0..tries).any(|_| {
            let out = run(&cfg, &steps, &skip);
            eprintln!("shrink seed {seed}: without step {i}: [{}]", out.summary());
            fails(&out)
        });
        if !still {
            skip.remove(&i);
        }
    }
    let kept: Vec<Step> = steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, s)| s.clone())
        .collect();
    let skipped: Vec<String> = {
        let mut v: Vec<usize> = skip.iter().copied().collect();
        v.sort();
        v.iter().map(|i| i.to_string()).collect()
    };
    eprintln!(
        "SHRUNK seed {seed} [{}] ({cfg}); KRING_CHAOS_SKIP={}; steps kept:",
        full.summary(),
        skipped.join(",")
    );
    for (i, s) in steps.iter().enumerate() {
        if !skip.contains(&i) {
            eprintln!("    {i:2}: {s}");
        }
    }
    kept
}

/// The same seeds against librdkafka's mock cluster (`rdkafka::mocking`),
/// where its fault injection reaches: Produce and InitProducerId errors
/// (for the next requests, on any broker and partition), dropped
/// connections (`_TRANSPORT`, for every kind of lost or garbled answer),
/// leader moves and broker down/up. Steps it cannot express (delays,
/// throttles, Metadata faults, errors on one partition, the fatal errors
/// that need one) are left out. That mock does not deduplicate an
/// idempotent producer's batches nor check their sequences (only a
/// transactional producer's), so copies and order are not checked; every
/// other invariant is.
pub mod rdkafka_mock {
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster as RdMock;
    use rdkafka::producer::DefaultProducerContext;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    fn rd_err(code: i16) -> Option<RDKafkaRespErr> {
        use RDKafkaRespErr::*;
        Some(match code {
            2 => RD_KAFKA_RESP_ERR_INVALID_MSG,
            3 => RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            5 => RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            6 => RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            7 => RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            13 => RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
            14 => RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            15 => RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            19 => RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            20 => RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            56 => RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
            _ => return None,
        })
    }

    /// The steps this mock can play.
    pub fn applicable(steps: &[Step]) -> Vec<Step> {
        steps
            .iter()
            .filter(|s| match &s.action {
                Action::Fault {
                    api,
                    action,
                    broker: None,
                    partition: None,
                    ..
                } => match action {
                    FaultAction::Error(c) => {
                        (*api == PRODUCE || *api == INIT_PRODUCER_ID) && rd_err(*c).is_some()
                    }
                    FaultAction::DropBeforeApply
                    | FaultAction::DropAfterApply
                    | FaultAction::CutResponse
                    | FaultAction::CorruptResponse
                    | FaultAction::TruncateResponse { .. } => *api == PRODUCE,
                    _ => false,
                },
                Action::Fault { .. } => false,
                Action::MoveLeader { .. } | Action::Restart { .. } => true,
            })
            .cloned()
            .collect()
    }

    /// Plays step `s`; `first` is the node id the schedule's brokers start
    /// at (librdkafka's mock numbers its own from 1).
    fn apply(c: &RdMock<'static, DefaultProducerContext>, first: i32, s: &Step) {
        let rd_id = |id: i32| id - first + 1;
        match &s.action {
            Action::Fault {
                api, action, times, ..
            } => {
                let err = match action {
                    FaultAction::Error(code) => rd_err(*code).expect("applicable"),
                    _ => RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
                };
                let key = if *api == PRODUCE {
                    RDKafkaApiKey::Produce
                } else {
                    RDKafkaApiKey::InitProducerId
                };
                c.request_errors(key, &vec![err; *times as usize]);
            }
            Action::MoveLeader {
                topic,
                partition,
                to,
            } => c
                .partition_leader(topic, *partition, Some(rd_id(*to)))
                .expect("move leader"),
            Action::Restart { broker, down } => {
                c.broker_down(rd_id(*broker)).expect("broker down");
                // The downtime is the fault: a wall-clock wait on purpose
                // (the mock's handle is not Send, so it runs here).
                std::thread::sleep(*down);
                c.broker_up(rd_id(*broker)).expect("broker up");
            }
        }
    }

    /// Plays the applicable steps of `cfg`'s seed and checks the
    /// invariants that hold for this mock.
    pub fn run(cfg: &ChaosConfig, steps: &[Step]) -> Outcome {
        install_panic_counter();
        let panics_before = PANICS.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut out = Outcome {
            records: cfg.total_records(),
            ..Outcome::default()
        };
        let c: RdMock<'static, DefaultProducerContext> =
            RdMock::new(cfg.brokers).expect("librdkafka mock cluster");
        for (t, p) in &cfg.topics {
            c.create_topic(t, *p, cfg.brokers).expect("create topic");
        }
        // Metadata v9+ from librdkafka 2.12's mock carries a stray byte
        // (see e2e_rdkafka_mock.rs); v8 has everything kring uses.
        c.apiversion(RDKafkaApiKey::Metadata, Some(0), Some(8))
            .expect("apiversion");
        let bootstrap = c.bootstrap_servers();
        let mut idx = 0;
        while idx < steps.len() && steps[idx].at == 0 {
            apply(&c, cfg.first_node_id, &steps[idx]);
            idx += 1;
        }
        let callbacks = Callbacks::new(cfg.panic_every);
        let cb = callbacks.clone();
        let producer = cfg
            .producer(&bootstrap)
            .metadata_max_age(Duration::from_secs(1))
            .on_delivery(move |r| Callbacks::record(&cb, r))
            .build()
            .expect("producer");
        let sent_total = AtomicU64::new(0);
        let senders_done = AtomicUsize::new(0);
        let sent = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..cfg.senders)
                .map(|s| {
                    let (p, sent_total, senders_done) = (&producer, &sent_total, &senders_done);
                    scope.spawn(move || send_records(cfg, s, p, sent_total, senders_done))
                })
                .collect();
            while idx < steps.len() {
                let n = sent_total.load(Ordering::Relaxed);
                while idx < steps.len()
                    && (steps[idx].at <= n
                        || senders_done.load(Ordering::SeqCst) == cfg.senders as usize)
                {
                    apply(&c, cfg.first_node_id, &steps[idx]);
                    idx += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            handles
                .into_iter()
                .map(|h| h.join().expect("sender thread"))
                .collect::<Vec<_>>()
        });
        let fatal = HashSet::new();
        close_and_check(
            cfg,
            &producer,
            sent,
            &callbacks,
            &fatal,
            &mut out,
            false,
            |ti, p| read_partition(&bootstrap, &cfg.topics[ti].0, p),
        );
        let panics = PANICS.load(Ordering::SeqCst) - panics_before;
        if panics > 0 {
            out.violation("panic", || format!("{panics} panics"));
        }
        out.run_time = started.elapsed();
        out
    }

    /// Every record of one partition, read with librdkafka's consumer
    /// (CRC checks on).
    fn read_partition(
        bootstrap: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ReadBack>, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "kring-chaos-reader")
            .set("enable.auto.commit", "false")
            .set("check.crcs", "true")
            .create()
            .map_err(|e| e.to_string())?;
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (out.len() as i64) < high {
            if Instant::now() > deadline {
                return Err(format!("read {} of {high} records", out.len()));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(m)) => out.push((m.offset(), m.payload().map(<[u8]>::to_vec))),
            }
        }
        Ok(out)
    }

    /// Runs `seed` against librdkafka's mock; prints the repro block on a
    /// violation.
    pub fn run_seed(seed: u64, scale: Scale) -> Outcome {
        let cfg = ChaosConfig::generate(seed, scale);
        let steps = applicable(&generate_schedule(&cfg));
        let out = run(&cfg, &steps);
        if !out.ok() {
            eprintln!(
                "(librdkafka mock) {}",
                describe(&cfg, &steps, &HashSet::new(), &out)
            );
        }
        out
    }
}
