//! Many partitions, random transient faults, epoch bumps across partitions:
//! a deterministic randomized check of the idempotent producer's
//! guarantees (one result per record, nothing stored twice, per-partition
//! order, nothing failed as not persisted is stored, no stall).

use super::*;
use crate::{Config, DeliveryError, MessageStatus};
use kring_mock::Fault;
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

/// The core's seeded PRNG with the two draws the schedule uses.
struct Rng(crate::backoff::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(crate::backoff::SplitMix64::new(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

thread_local! {
    static TIMEOUTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static BUMPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static PIDS: std::cell::Cell<Vec<i64>> = const { std::cell::Cell::new(Vec::new()) };
}

const PARTITIONS: u32 = 50;
const NODES: i32 = 3;

fn record(p: u32, i: u32) -> Vec<u8> {
    let mut v = p.to_be_bytes().to_vec();
    v.extend_from_slice(&i.to_be_bytes());
    v.resize(40, 0);
    v
}

fn decode(r: &StoredRecord) -> (u32, u32) {
    let v = r.value.as_deref().unwrap();
    (
        u32::from_be_bytes(v[..4].try_into().unwrap()),
        u32::from_be_bytes(v[4..8].try_into().unwrap()),
    )
}

/// One random transient fault.
fn random_fault(sim: &mut MockSim, rng: &mut Rng, reject: bool, log: &mut Vec<String>) {
    let p = rng.below(PARTITIONS as u64) as i32;
    let node = 1 + rng.below(NODES as u64) as i32;
    let k = rng.below(13);
    let f = match k {
        0 => Fault::error(ApiKey::Produce, ErrorCode::NOT_ENOUGH_REPLICAS).on_partition("t", p),
        1 => Fault::error(ApiKey::Produce, ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
            .on_partition("t", p),
        2 => Fault::error(ApiKey::Produce, ErrorCode::REQUEST_TIMED_OUT).on_partition("t", p),
        3 => Fault::error(ApiKey::Produce, ErrorCode::MESSAGE_TOO_LARGE).on_partition("t", p),
        4 => Fault::drop_after_apply(ApiKey::Produce).on_broker(node),
        5 => Fault::drop_before_apply(ApiKey::Produce).on_broker(node),
        6 => Fault::swallow(ApiKey::Produce).on_broker(node),
        7 => Fault::delay(ApiKey::Produce, ms(rng.below(3_000))).on_broker(node),
        8 => Fault::error(ApiKey::InitProducerId, ErrorCode::COORDINATOR_NOT_AVAILABLE),
        9 => Fault::delay(ApiKey::InitProducerId, ms(rng.below(3_000))),
        10 => Fault::swallow(ApiKey::InitProducerId),
        11 => {
            // The broker loses the producer's state (KIP-360). A broker
            // that accepts any first sequence could take the re-send of a
            // written batch of unknown fate as new, and one before KIP-360
            // a re-send at sequence 0: no client can prevent that, so then
            // only between batches.
            let core = &sim.core;
            let busy = core
                .topics
                .first()
                .and_then(|t| t.partitions.get(p as usize))
                .is_some_and(|q| {
                    !reject && !q.seq.pending.is_empty()
                        || q.seq.pending.iter().any(|&b| core.ledger[b].seq() == 0)
                });
            if busy {
                return;
            }
            sim.cluster.forget_producers("t", p).unwrap();
            log.push(format!("forget p{p}"));
            return;
        }
        _ => Fault::error(ApiKey::Produce, ErrorCode::CORRUPT_MESSAGE).on_partition("t", p),
    };
    let times = 1 + rng.below(2) as u32;
    log.push(format!("{f:?} x{times}"));
    sim.cluster.inject(f.times(times));
}

/// Runs one seed; returns a description of the first violated guarantee.
fn run_seed(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    // Some seeds have delivery timeouts shorter than the faults last:
    // batches expire mid-sequence (possibly persisted), and the partition
    // must go on.
    let short = rng.chance(40);
    let config = Config {
        linger: ms(rng.below(3)),
        batch_size: if rng.chance(50) { 100 } else { 300 },
        request_timeout: ms(2_000),
        delivery_timeout: ms(if short {
            2_500 + rng.below(4_000)
        } else {
            120_000
        }),
        ..cfg()
    };
    let reject = rng.chance(50);
    let builder = if reject {
        cluster(NODES, PARTITIONS)
    } else {
        cluster(NODES, PARTITIONS).unknown_producer_policy(UnknownProducerPolicy::Accept)
    };
    let mut sim = sim_on(config, builder);
    // Some seeds start two bumps short of an exhausted epoch: a bump then
    // needs a new producer id (InitProducerId) while batches are pending.
    if rng.chance(30) {
        sim.drive_until(10_000, |s| s.core.idem.ready());
        sim.core.idem.force_epoch(i16::MAX - rng.below(3) as i16);
    }
    let mut sent: Vec<Vec<crate::DeliveryHandle>> = (0..PARTITIONS).map(|_| Vec::new()).collect();
    let mut faults = Vec::new();
    let start = sim.now;
    let rounds = 4 + rng.below(4);
    for _ in 0..rounds {
        for _ in 0..rng.below(6) {
            random_fault(&mut sim, &mut rng, reject, &mut faults);
        }
        for _ in 0..rng.below(40) {
            let p = rng.below(PARTITIONS as u64) as u32;
            let i = sent[p as usize].len() as u32;
            let h = sim
                .send("t", Some(p as i32), None, Some(&record(p, i)))
                .map_err(|e| format!("send: {e}"))?;
            sent[p as usize].push(h);
        }
        sim.run_for(ms(rng.below(1_500)));
    }
    sim.drive();
    // Everything healed: one more record per partition must be delivered
    // (no partition stalls for good after expiries and bumps).
    sim.cluster.clear_faults();
    let probe_at = sent.iter().map(|v| v.len()).collect::<Vec<_>>();
    for p in 0..PARTITIONS {
        let i = sent[p as usize].len() as u32;
        let h = sim
            .send("t", Some(p as i32), None, Some(&record(p, i)))
            .map_err(|e| format!("send: {e}"))?;
        sent[p as usize].push(h);
    }
    sim.drive();
    let took = sim.now - start;
    for p in 0..PARTITIONS {
        let stored: Vec<(u32, u32)> = log(&sim, p).iter().map(decode).collect();
        let ctx = || {
            format!(
                "seed {seed} p{p} stored {stored:?} batches {:?} faults {faults:?}",
                log(&sim, p)
                    .iter()
                    .map(|r| (r.producer_id, r.producer_epoch, r.base_sequence))
                    .collect::<Vec<_>>()
            )
        };
        let _ = &faults;
        let idx: Vec<u32> = stored
            .iter()
            .map(|&(q, i)| {
                assert_eq!(q, p);
                i
            })
            .collect();
        let mut sorted = idx.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != idx.len() {
            return Err(format!("stored twice: {}", ctx()));
        }
        if sorted != idx {
            return Err(format!("out of order: {}", ctx()));
        }
        for (i, h) in sent[p as usize].iter().enumerate() {
            let Some(r) = h.try_result() else {
                return Err(format!("record {i} has no result: {}", ctx()));
            };
            match r {
                Ok(md) => {
                    if md.offset >= 0 && stored.get(md.offset as usize) != Some(&(p, i as u32)) {
                        return Err(format!(
                            "record {i} acked at {} but not there: {}",
                            md.offset,
                            ctx()
                        ));
                    }
                    if !idx.contains(&(i as u32)) {
                        return Err(format!("record {i} acked but not stored: {}", ctx()));
                    }
                }
                Err(e) => {
                    if matches!(e, DeliveryError::Timeout { .. }) {
                        TIMEOUTS.with(|b| b.set(b.get() + 1));
                    }
                    if i >= probe_at[p as usize] {
                        return Err(format!(
                            "probe record {i} failed after healing ({e}): {}",
                            ctx()
                        ));
                    }
                    if !short && matches!(e, DeliveryError::Timeout { .. }) {
                        return Err(format!(
                            "record {i} timed out ({e}) after {took:?}: {}",
                            ctx()
                        ));
                    }
                    if e.status() == MessageStatus::NotPersisted && idx.contains(&(i as u32)) {
                        return Err(format!(
                            "record {i} failed as not persisted but stored ({e}): {}",
                            ctx()
                        ));
                    }
                }
            }
        }
    }
    BUMPS.with(|b| b.set(b.get() + sim.core.stats().epoch_bumps));
    PIDS.with(|b| {
        let mut v = b.take();
        v.push(sim.core.idem.current().0);
        b.set(v)
    });
    if took > ms(60_000) {
        return Err(format!("seed {seed}: took {took:?}; faults {faults:?}"));
    }
    Ok(())
}

#[test]
fn many_partitions_with_random_faults_keep_the_guarantees() {
    let mut failures = Vec::new();
    for seed in 0..std::env::var("EPOCH_CHAOS_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u64)
    {
        if let Err(e) = run_seed(seed) {
            failures.push(e);
        }
    }
    // The seeds reach what the test is about.
    let (timeouts, bumps) = (TIMEOUTS.with(|b| b.get()), BUMPS.with(|b| b.get()));
    let new_pids = PIDS
        .with(|b| b.take())
        .iter()
        .filter(|&&p| p > 1000)
        .count();
    assert!(
        timeouts > 0 && bumps > 0 && new_pids > 0,
        "timeouts {timeouts} bumps {bumps} new producer ids {new_pids}"
    );
    assert!(
        failures.is_empty(),
        "{} seeds failed; first: {}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn pinned() -> Config {
    Config {
        linger: ms(0),
        batch_size: 100,
        delivery_timeout: ms(60_000),
        ..cfg()
    }
}

fn send_to(sim: &mut MockSim, p: u32, range: std::ops::Range<u32>) -> Vec<crate::DeliveryHandle> {
    range
        .map(|i| {
            sim.send("t", Some(p as i32), None, Some(&record(p, i)))
                .unwrap()
        })
        .collect()
}

/// (producer id, epoch, base sequence, record index) of partition `p`'s log.
fn stamped(sim: &MockSim, p: u32) -> Vec<(i64, i16, i32, u32)> {
    log(sim, p)
        .iter()
        .map(|r| {
            (
                r.producer_id,
                r.producer_epoch,
                r.base_sequence,
                decode(r).1,
            )
        })
        .collect()
}

/// Partition 0 needs a bump (a fatal error) while partition 1 has batches
/// in flight under epoch 0: those land under epoch 0 with their sequences,
/// and partition 1's later batches start again at 0 under epoch 1.
#[test]
fn a_bump_for_one_partition_lets_the_other_finish_its_epoch_first() {
    let mut sim = sim_with(pinned(), 2, 2);
    let mut h1 = send_to(&mut sim, 1, 0..1);
    let w = send_to(&mut sim, 0, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    h1[0].wait().unwrap();
    slow(&sim, 2, ms(50)); // partition 1's leader
    fail_produce(&sim, 0, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let h0 = send_to(&mut sim, 0, 1..4);
    h1.extend(send_to(&mut sim, 1, 1..4));
    sim.run_for(ms(20));
    h1.extend(send_to(&mut sim, 1, 4..7));
    sim.drive();
    assert!(h0[0].wait().is_err());
    for h in h0[1..].iter().chain(&h1) {
        h.wait().unwrap();
    }
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    let p1 = stamped(&sim, 1);
    let idx: Vec<u32> = p1.iter().map(|r| r.3).collect();
    assert_eq!(idx, (0..7).collect::<Vec<_>>(), "{p1:?}");
    // Monotonic (epoch, sequence) per producer id.
    for w in p1.windows(2) {
        assert!((w[0].1, w[0].2) < (w[1].1, w[1].2), "{p1:?}");
    }
    assert_eq!(p1.last().unwrap().1, 1, "{p1:?}");
    let p0 = stamped(&sim, 0);
    assert_eq!(p0.iter().map(|r| r.3).collect::<Vec<_>>(), vec![0, 2, 3]);
}

/// The epoch is exhausted when partition 0 needs a bump, while partition 1
/// has batches in flight; the InitProducerId for a new producer id fails
/// twice and its third answer comes late. Partition 1's in-flight batches
/// land under the old producer id, everything after under the new one, in
/// order, once each.
#[test]
fn an_exhausted_epoch_gets_a_new_producer_id_while_batches_are_pending() {
    let mut sim = sim_with(pinned(), 2, 2);
    sim.drive_until(10_000, |s| s.core.idem.ready());
    sim.core.idem.force_epoch(i16::MAX);
    let mut h1 = send_to(&mut sim, 1, 0..1);
    let w = send_to(&mut sim, 0, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    h1[0].wait().unwrap();
    let old_pid = sim.core.idem.current().0;
    slow(&sim, 2, ms(50));
    fail_produce(&sim, 0, ErrorCode::MESSAGE_TOO_LARGE, 1);
    sim.cluster.inject(
        Fault::error(ApiKey::InitProducerId, ErrorCode::COORDINATOR_NOT_AVAILABLE).times(2),
    );
    let h0 = send_to(&mut sim, 0, 1..4);
    h1.extend(send_to(&mut sim, 1, 1..4));
    sim.run_for(ms(20));
    sim.cluster
        .inject(Fault::delay(ApiKey::InitProducerId, ms(1_500)).times(3));
    h1.extend(send_to(&mut sim, 1, 4..7));
    sim.drive();
    assert!(h0[0].wait().is_err());
    for h in h0[1..].iter().chain(&h1) {
        h.wait().unwrap();
    }
    let new_pid = sim.core.idem.current().0;
    assert_ne!(new_pid, old_pid);
    for p in 0..2 {
        let s = stamped(&sim, p);
        let idx: Vec<u32> = s.iter().map(|r| r.3).collect();
        let want: Vec<u32> = if p == 0 {
            vec![0, 2, 3]
        } else {
            (0..7).collect()
        };
        assert_eq!(idx, want, "{s:?}");
        assert_eq!(s.last().unwrap().0, new_pid, "{s:?}");
    }
}
