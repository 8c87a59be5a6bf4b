//! A whole chaos schedule read from bytes: the body of the `producer_sim`
//! fuzz target, and of a seeded smoke test that runs in `cargo test`.
//!
//! The bytes choose the producer configuration (linger, batch size, max
//! in flight, idempotence, acks, codec, timeouts), a workload (records
//! carrying `(sender, sequence)` over a few partitions, flushes, time
//! passing) and the brokers' behaviour (kring-mock's fault injection per
//! request: retriable and fatal errors, delays, drops before and after
//! apply, throttles, truncated, corrupt and cut responses, metadata lies;
//! leader moves; brokers stopped and started). The core runs through the
//! [`Sim`] over kring-mock's own request dispatch
//! (`MockCluster::build_unbound`): no sockets, no clock, no threads, so a
//! schedule replays exactly.
//!
//! After the producer is closed, [`run`] checks the guarantees:
//! - every accepted record has exactly one result (the delivery callback
//!   ran once for it, and its handle, if it was sent with one, agrees);
//! - close finishes, within a bound of simulated time;
//! - every acknowledged record is stored at the offset its result named,
//!   on the partition it named;
//! - nothing is stored that was not sent, or whose send was refused;
//! - a record failed as *not persisted* is not stored;
//! - with idempotence: nothing is stored twice, and per partition each
//!   sender's records are stored in the order they were sent.
//!
//! A violation is returned as `Err` (the fuzz target panics with it); a
//! panic inside the core propagates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kring_mock::{Fault, FaultAction, Lie, MockCluster};
use kring_protocol::record::Compression;

use super::Sim;
use crate::config::{Acks, Config};
use crate::delivery::{DeliveryHandle, DeliveryReport, MessageStatus};

const TOPIC: &str = "chaos";

/// Produce errors a broker raises: retriable first, then fatal ones. The
/// answers of the idempotence check (OUT_OF_ORDER_SEQUENCE_NUMBER,
/// DUPLICATE_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH)
/// are left out: injected, they would lie about what the log holds (a
/// stored batch called out of order), which no broker does; kring-mock's
/// logs give them for real.
const PRODUCE_ERRORS: [i16; 14] = [
    6,  // NOT_LEADER_OR_FOLLOWER
    19, // NOT_ENOUGH_REPLICAS
    20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND (appended first)
    7,  // REQUEST_TIMED_OUT
    56, // KAFKA_STORAGE_ERROR
    3,  // UNKNOWN_TOPIC_OR_PARTITION
    5,  // LEADER_NOT_AVAILABLE
    2,  // CORRUPT_MESSAGE
    13, // NETWORK_EXCEPTION
    10, // MESSAGE_TOO_LARGE
    87, // INVALID_RECORD
    29, // TOPIC_AUTHORIZATION_FAILED
    -1, // UNKNOWN_SERVER_ERROR
    31, // CLUSTER_AUTHORIZATION_FAILED
];

/// How many of [`PRODUCE_ERRORS`] are retriable.
const RETRIABLE_PRODUCE: usize = 9;

/// How many of [`OTHER_ERRORS`] are retriable.
const RETRIABLE_OTHER: usize = 6;

/// Errors for the other APIs (Metadata, InitProducerId, ApiVersions).
const OTHER_ERRORS: [i16; 8] = [
    3,  // UNKNOWN_TOPIC_OR_PARTITION
    5,  // LEADER_NOT_AVAILABLE
    14, // COORDINATOR_LOAD_IN_PROGRESS
    15, // COORDINATOR_NOT_AVAILABLE
    51, // CONCURRENT_TRANSACTIONS
    7,  // REQUEST_TIMED_OUT
    31, // CLUSTER_AUTHORIZATION_FAILED
    35, // UNSUPPORTED_VERSION
];

/// What a schedule did, for printing.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Records the producer accepted.
    pub sent: u64,
    /// Sends refused at once (no result expected).
    pub refused: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records failed.
    pub failed: u64,
    /// Records stored in the mock's logs.
    pub stored: u64,
    /// Faults that fired.
    pub faults: u64,
    /// Simulated time the schedule took.
    pub elapsed: Duration,
}

/// Reads choices from the fuzzer's bytes; zeros once they run out.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

#[derive(Debug)]
struct Sent {
    sender: u32,
    seq: u32,
    partition: i32,
    /// `None`: sent without a handle (`produce`), the callback alone
    /// reports it.
    handle: Option<DeliveryHandle>,
}

type Results = HashMap<u64, Vec<Result<(i32, i64), MessageStatus>>>;

fn context(sender: u32, seq: u32) -> u64 {
    (u64::from(sender) << 32 | u64::from(seq)) + 1
}

/// Runs the schedule `data` describes, with simulated time starting at
/// `start`, and checks the guarantees (see the module docs).
pub fn run(data: &[u8], start: Instant) -> Result<Summary, String> {
    run_traced(data, start, None)
}

/// [`run`], telling `trace` what the schedule does (configuration, each
/// step, each fault, the stored batches): to read a fuzzer's finding.
pub fn run_traced(
    data: &[u8],
    start: Instant,
    mut trace: Option<&mut dyn FnMut(String)>,
) -> Result<Summary, String> {
    let mut say = |f: &dyn Fn() -> String| {
        if let Some(t) = trace.as_mut() {
            t(f())
        }
    };
    let mut input = Input { data, pos: 0 };
    // Brokers are numbered from 0 or from 1 (many real clusters number
    // theirs from 0), chosen by the same byte as their count, so that every
    // other choice of a schedule stays where it was.
    let first_byte = input.byte();
    let brokers = 1 + i32::from(first_byte % 3);
    let first = i32::from(first_byte / 3 % 2);
    let partitions = 1 + input.below(4) as i32;
    let senders = 1 + input.below(3) as u32;
    let idempotent = !input.byte().is_multiple_of(4);
    let acks = if idempotent {
        Acks::All
    } else {
        input.pick(&[Acks::All, Acks::Leader, Acks::None])
    };
    let linger = Duration::from_millis(input.pick(&[0, 1, 5, 20, 100]));
    let batch_size = input.pick(&[128, 512, 2048, 16384]);
    let max_in_flight = 1 + input.below(5);
    let compression = input.pick(&[
        Compression::None,
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]);
    let request_timeout = Duration::from_millis(input.pick(&[1_000, 5_000, 30_000]));
    let delivery_timeout =
        Duration::from_millis(input.pick(&[5_000, 30_000, 120_000])).max(linger + request_timeout);

    let results: Arc<Mutex<Results>> = Arc::default();
    let sink = results.clone();
    let config = Config {
        jitter_seed: u64::from(input.byte()),
        acks,
        linger,
        batch_size,
        max_in_flight,
        enable_idempotence: idempotent,
        compression,
        request_timeout,
        delivery_timeout,
        // The shortest, not read from the schedule (which keeps every
        // stored input meaning what it did): the topic goes idle in the
        // pauses between steps, and comes back with its leaders maybe
        // moved meanwhile.
        metadata_max_idle: crate::METADATA_MAX_IDLE_MIN,
        // Short, for the same reason: connections are closed as idle in
        // the pauses and opened again under the faults that follow.
        connections_max_idle: Some(Duration::from_secs(10)),
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let res = match &r.result {
                Ok(m) => Ok((m.partition, m.offset)),
                Err(e) => Err(e.status()),
            };
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(r.context)
                .or_default()
                .push(res);
        })),
        ..Config::default()
    };
    let cluster = MockCluster::builder()
        .brokers(brokers)
        .first_node_id(first)
        .replication_factor(brokers as i16)
        .topic(TOPIC, partitions)
        .build_unbound()
        .map_err(|e| format!("mock cluster: {e}"))?;
    let mut sim = Sim::new(config, cluster, start);

    let mut sent: Vec<Sent> = Vec::new();
    let mut refused: Vec<(u32, u32)> = Vec::new();
    let mut next_seq = vec![0u32; senders as usize];
    let mut ops = 0;
    say(&|| {
        format!(
            "{brokers} brokers from node {first}, {partitions} partitions, {senders} senders, idempotence {idempotent}, \
             acks {acks:?}, linger {linger:?}, batch.size {batch_size}, in flight {max_in_flight}, \
             {compression:?}, request timeout {request_timeout:?}, delivery timeout {delivery_timeout:?}"
        )
    });
    while !input.done() && ops < 250 && sent.len() < 600 {
        ops += 1;
        let (op, at, n) = (
            input.data.get(input.pos).copied().unwrap_or(0) % 16,
            sim.elapsed(),
            sent.len(),
        );
        say(&|| format!("{at:?}: step {op}, {n} records sent"));
        match input.below(16) {
            // Sends, the most common step.
            0..=6 => {
                let n = 1 + input.below(8);
                let sender = input.below(senders as usize) as u32;
                let partition = input.below(partitions as usize) as i32;
                let pad = input.pick(&[0usize, 10, 100, 700]);
                // A quarter of the steps send without handles: batches
                // mix both kinds, and some make no completion.
                let with_handle = input.below(4) != 0;
                for _ in 0..n {
                    let seq = next_seq[sender as usize];
                    next_seq[sender as usize] += 1;
                    let mut value = Vec::with_capacity(8 + pad);
                    value.extend_from_slice(&sender.to_be_bytes());
                    value.extend_from_slice(&seq.to_be_bytes());
                    value.resize(8 + pad, 0xab);
                    let ctx = context(sender, seq);
                    let r = if with_handle {
                        sim.send_with_context(TOPIC, Some(partition), None, Some(&value), ctx)
                            .map(Some)
                    } else {
                        sim.produce_with_context(TOPIC, Some(partition), None, Some(&value), ctx)
                            .map(|()| None)
                    };
                    match r {
                        Ok(handle) => sent.push(Sent {
                            sender,
                            seq,
                            partition,
                            handle,
                        }),
                        Err(_) => refused.push((sender, seq)),
                    }
                }
            }
            // Let time pass.
            7 | 8 => {
                let ms = input.pick(&[0u64, 1, 10, 100, 1_000, 10_000]);
                sim.run_for(Duration::from_millis(ms));
            }
            // A flush, waited for.
            9 => {
                let h = sim.flush();
                sim.drive_until(500_000, |_| h.is_done());
            }
            // A fault on the next request(s) of some API.
            10..=13 => {
                let fault = fault(&mut input, first, brokers, partitions);
                say(&|| format!("  fault {fault:?}"));
                sim.cluster.inject(fault);
            }
            // A leader move.
            14 => {
                let p = input.below(partitions as usize) as i32;
                let to = first + input.below(brokers as usize) as i32;
                sim.cluster
                    .move_leader(TOPIC, p, to)
                    .map_err(|e| format!("move_leader: {e}"))?;
            }
            // A broker stops (its connections drop) or starts.
            _ => {
                let id = first + input.below(brokers as usize) as i32;
                if sim.cluster.is_broker_running(id) {
                    sim.cluster
                        .stop_broker(id)
                        .map_err(|e| format!("stop: {e}"))?;
                    sim.disconnect_node(id);
                } else {
                    sim.cluster
                        .start_broker(id)
                        .map_err(|e| format!("start: {e}"))?;
                }
            }
        }
    }

    // Close, bounded in simulated time: every record expires by its
    // delivery timeout, an in-flight request by its request timeout.
    let close = sim.close();
    let closing = sim.now;
    sim.drive_until(2_000_000, |s| {
        close.is_done() && s.core.pending_batches() == 0
    });
    let took = sim.now - closing;
    let bound = delivery_timeout + 2 * request_timeout + Duration::from_secs(60);
    if took > bound {
        return Err(format!(
            "close took {took:?} of simulated time (bound {bound:?})"
        ));
    }

    // Exactly one result per accepted record, and the handle agrees.
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    let mut summary = Summary {
        sent: sent.len() as u64,
        refused: refused.len() as u64,
        faults: sim.cluster.faults_fired(),
        elapsed: sim.elapsed(),
        ..Summary::default()
    };
    // (sender, seq) -> what the producer said.
    let mut outcome: HashMap<(u32, u32), Result<(i32, i64), MessageStatus>> = HashMap::new();
    for s in &sent {
        let got = results.get(&context(s.sender, s.seq));
        let r = match got.map(Vec::as_slice) {
            Some([r]) => *r,
            other => {
                return Err(format!(
                    "record ({}, {}) got {} results: {other:?}",
                    s.sender,
                    s.seq,
                    other.map_or(0, <[_]>::len)
                ))
            }
        };
        match (s.handle.as_ref().map(DeliveryHandle::try_result), r) {
            (None, _) => {}
            (Some(Some(Ok(m))), Ok((p, o))) if m.partition == p && m.offset == o => {}
            (Some(Some(Err(e))), Err(st)) if e.status() == st => {}
            (h, r) => {
                return Err(format!(
                    "record ({}, {}): handle says {h:?}, callback {r:?}",
                    s.sender, s.seq
                ))
            }
        }
        if let Ok((p, _)) = r {
            if p != s.partition {
                return Err(format!(
                    "record ({}, {}) sent to partition {} acked on {p}",
                    s.sender, s.seq, s.partition
                ));
            }
        }
        match r {
            Ok(_) => summary.acked += 1,
            Err(_) => summary.failed += 1,
        }
        outcome.insert((s.sender, s.seq), r);
    }
    if results.len() != sent.len() {
        return Err(format!(
            "{} records have results, {} were accepted",
            results.len(),
            sent.len()
        ));
    }

    // What the brokers stored.
    let mut stored: HashMap<(u32, u32), Vec<(i32, i64)>> = HashMap::new();
    for p in 0..partitions {
        let records = sim
            .cluster
            .records(TOPIC, p)
            .map_err(|e| format!("reading partition {p}: {e}"))?;
        let mut last_seq: HashMap<u32, u32> = HashMap::new();
        for b in sim.cluster.batches(TOPIC, p).unwrap_or_default() {
            say(&|| {
                format!(
                    "p{p}: batch {}..{} {:?}",
                    b.base_offset, b.last_offset, b.header
                )
            });
        }
        for r in records {
            let v = r.value.as_deref().unwrap_or_default();
            if v.len() < 8 {
                return Err(format!("p{p}@{}: a record nobody sent: {v:?}", r.offset));
            }
            let sender = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            let seq = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
            summary.stored += 1;
            if idempotent {
                if let Some(&before) = last_seq.get(&sender) {
                    if seq <= before {
                        return Err(format!(
                            "p{p}@{}: sender {sender}'s record {seq} stored after its record {before}",
                            r.offset
                        ));
                    }
                }
                last_seq.insert(sender, seq);
            }
            stored.entry((sender, seq)).or_default().push((p, r.offset));
        }
    }
    for (&(sender, seq), places) in &stored {
        let Some(r) = outcome.get(&(sender, seq)) else {
            return Err(format!(
                "record ({sender}, {seq}) stored at {places:?} but its send was {}",
                if refused.contains(&(sender, seq)) {
                    "refused"
                } else {
                    "never made"
                }
            ));
        };
        if idempotent && places.len() > 1 {
            return Err(format!(
                "record ({sender}, {seq}) stored {} times: {places:?} (result {r:?})",
                places.len()
            ));
        }
        if let Err(MessageStatus::NotPersisted) = r {
            return Err(format!(
                "record ({sender}, {seq}) failed as not persisted but is stored at {places:?}"
            ));
        }
    }
    for (&(sender, seq), r) in &outcome {
        if let Ok((p, offset)) = *r {
            if offset < 0 && acks == Acks::None {
                continue;
            }
            let places = stored.get(&(sender, seq)).map_or(&[][..], Vec::as_slice);
            if !places.contains(&(p, offset)) {
                return Err(format!(
                    "record ({sender}, {seq}) acked at p{p}@{offset} but stored at {places:?}"
                ));
            }
        }
    }
    Ok(summary)
}

/// A fault for the next request(s) of some API, on one of the brokers
/// numbered `first..first + brokers` or on any.
fn fault(input: &mut Input<'_>, first: i32, brokers: i32, partitions: i32) -> Fault {
    let api: i16 = input.pick(&[0, 0, 0, 0, 3, 3, 22, 18]);
    // Fatal errors end a schedule's interesting part early: one in four.
    let fatal = input.byte().is_multiple_of(4);
    let errors: &[i16] = match (api, fatal) {
        (0, false) => &PRODUCE_ERRORS[..RETRIABLE_PRODUCE],
        (0, true) => &PRODUCE_ERRORS[RETRIABLE_PRODUCE..],
        (_, false) => &OTHER_ERRORS[..RETRIABLE_OTHER],
        (_, true) => &OTHER_ERRORS[RETRIABLE_OTHER..],
    };
    let action = match input.below(11) {
        0..=2 => FaultAction::Error(input.pick(errors)),
        3 => FaultAction::Delay(Duration::from_millis(
            input.pick(&[5, 50, 500, 5_000, 40_000]),
        )),
        4 => FaultAction::DropBeforeApply,
        5 => FaultAction::DropAfterApply,
        6 => FaultAction::Throttle(Duration::from_millis(input.pick(&[10, 200, 2_000]))),
        7 => FaultAction::TruncateResponse {
            keep: input.below(40),
        },
        8 => FaultAction::CorruptResponse,
        9 => FaultAction::CutResponse,
        _ if api == 3 => FaultAction::Lie(Lie::ExtraPartitionIndex(input.pick(&[
            -5,
            7,
            1 << 30,
            i32::MAX,
        ]))),
        _ => FaultAction::Error(input.pick(errors)),
    };
    let mut f = Fault::new(api, action).times(1 + input.below(4) as u32);
    if input.byte().is_multiple_of(2) {
        f = f.on_broker(first + input.below(brokers as usize) as i32);
    }
    if matches!(api, 0 | 3) && input.byte().is_multiple_of(2) {
        f = f.on_partition(TOPIC, input.below(partitions as usize) as i32);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of seeded schedule `seed`.
    fn schedule(seed: u32) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (u64::from(seed) << 17 | 1);
        let len = 64 + (seed as usize * 7) % 700;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    fn run_seeds(seeds: impl Iterator<Item = u32>) -> (Summary, Vec<(u32, String)>) {
        let mut total = Summary::default();
        let mut failures = Vec::new();
        for seed in seeds {
            match run(&schedule(seed), kring_testclock::origin()) {
                Ok(s) => {
                    total.sent += s.sent;
                    total.acked += s.acked;
                    total.failed += s.failed;
                    total.stored += s.stored;
                    total.faults += s.faults;
                    total.elapsed += s.elapsed;
                }
                Err(e) => failures.push((seed, e)),
            }
        }
        (total, failures)
    }

    /// Tracing a schedule changes nothing about its run. (A fuzzer
    /// artifact is replayed with its trace by `tests/e2e_chaos.rs`
    /// `replay_sim_chaos_file`: kring-core itself reads no files.)
    #[test]
    fn tracing_changes_nothing() {
        let data = schedule(7);
        let mut lines = 0;
        let traced = run_traced(
            &data,
            kring_testclock::origin(),
            Some(&mut |l| {
                lines += 1;
                eprintln!("{l}")
            }),
        );
        eprintln!("{traced:?}");
        let plain = run(&data, kring_testclock::origin());
        assert_eq!(format!("{traced:?}"), format!("{plain:?}"));
        assert!(lines > 1);
    }

    /// Fixed pseudo-random schedules: the fuzz target's body, run in CI.
    #[test]
    fn seeded_schedules_keep_the_guarantees() {
        let (total, failures) = run_seeds(0..400);
        eprintln!("400 schedules: {total:?}");
        for (seed, e) in &failures {
            eprintln!("schedule {seed}: {e}");
        }
        assert!(failures.is_empty(), "{} schedules failed", failures.len());
        assert!(total.acked > 0 && total.failed > 0 && total.faults > 0);
    }
}
