//! Compression off the I/O thread: batches the I/O thread seals (linger,
//! flush, close) are compressed by a worker, here played by the test
//! calling `run_compression_jobs` at chosen moments of simulated time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::compress::Sealing;
use crate::delivery::{DeliveryError, DeliveryReport};
use kring_mock::StoredRecord;
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;

type Results = Arc<Mutex<HashMap<u64, u32>>>;

/// A config with `compression` and linger 5 ms whose callback counts the
/// results of each record by its context.
fn counted(compression: Compression) -> (Config, Results) {
    let results: Results = Arc::default();
    let r2 = results.clone();
    let config = Config {
        linger: ms(5),
        compression,
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            *r2.lock().unwrap().entry(r.context).or_insert(0) += 1;
        })),
        ..cfg()
    };
    (config, results)
}

fn produce_count(sim: &MockSim) -> usize {
    requests(sim, ApiKey::Produce) as usize
}

/// How partition `p`'s sealed queue stands: one letter per batch, `D`
/// done, `Q` queued for a worker, `R` running.
fn queue_states(sim: &MockSim, p: usize) -> String {
    let map = sim.shared.topics.snapshot();
    let t = map.by_name.get("t").expect("topic");
    let q = t.partitions[p].lock();
    q.sealed
        .iter()
        .map(|b| match b.sealed {
            Sealing::Done(_) => 'D',
            Sealing::Queued(_) => 'Q',
            Sealing::Running => 'R',
        })
        .collect()
}

/// Drives the sim with a worker that compresses whatever was handed off
/// before every step, until every batch has its result.
fn drive_with_worker(sim: &mut MockSim) {
    for _ in 0..100_000 {
        sim.shared.run_compression_jobs();
        sim.settle();
        sim.shared.run_compression_jobs();
        if sim.core.pending_batches() == 0 {
            sim.drive();
            return;
        }
        assert!(sim.step(), "went idle with batches pending: {sim:?}");
    }
    panic!("not finished: {sim:?}");
}

/// Warm-up record to every partition (metadata, connection, producer id),
/// delivered.
fn warm_up(sim: &mut MockSim, partitions: u32) {
    for p in 0..partitions {
        sim.send_with_context(
            "t",
            Some(p as i32),
            None,
            Some(b"warm"),
            1_000_000 + u64::from(p),
        )
        .unwrap();
    }
    drive_with_worker(sim);
}

fn value(i: u32) -> Vec<u8> {
    format!("record {i:05} of a text-like value that compresses").into_bytes()
}

/// The stored log of partition `p`, timestamps zeroed: two schedules
/// spend different simulated time waiting for their deliveries, so later
/// rounds are sent at different instants; everything else must match.
fn log(sim: &MockSim, p: u32) -> Vec<StoredRecord> {
    let mut log = super::log(sim, p);
    for r in &mut log {
        r.timestamp = 0;
    }
    log
}

/// The schedule of [`lingered_batches_are_compressed_by_the_worker`]: 3
/// rounds of 20 records to each of 4 partitions, each round left to linger
/// out. Returns the sim after everything was delivered.
fn lingered_schedule(offload: bool, compression: Compression) -> (MockSim, Results) {
    let (config, results) = counted(compression);
    let mut sim = sim_with(config, 1, 4);
    if offload {
        sim.shared.enable_compression_offload(0, 0, 0);
    }
    warm_up(&mut sim, 4);
    let mut n = 0u32;
    for _round in 0..3 {
        for i in 0..20u32 {
            let v = value(n + i);
            sim.send_with_context("t", Some((i % 4) as i32), None, Some(&v), u64::from(n + i))
                .unwrap();
        }
        n += 20;
        let before = produce_count(&sim);
        sim.run_for(ms(6));
        if offload {
            // Every partition's batch lingered out and waits for the
            // worker: the I/O thread sent nothing and compressed nothing.
            assert_eq!(
                produce_count(&sim),
                before,
                "nothing sent before compression"
            );
            for p in 0..4 {
                assert_eq!(queue_states(&sim, p), "Q", "partition {p}");
            }
            assert_eq!(sim.shared.run_compression_jobs(), 4);
            for p in 0..4 {
                assert_eq!(queue_states(&sim, p), "D", "partition {p}");
            }
            sim.settle();
            assert!(produce_count(&sim) > before, "sent once compressed");
        }
        drive_with_worker(&mut sim);
    }
    (sim, results)
}

/// Lingered batches go to the worker; the stored records are exactly those
/// of the same schedule compressed on the I/O thread (same offsets, values,
/// timestamps, producer sequences), each record has exactly one result,
/// and no memory stays charged.
#[test]
fn lingered_batches_are_compressed_by_the_worker() {
    for compression in [Compression::Gzip, Compression::Lz4] {
        let (off, off_results) = lingered_schedule(true, compression);
        let (inline, inline_results) = lingered_schedule(false, compression);
        for p in 0..4 {
            let a = log(&off, p);
            assert_eq!(a.len(), 1 + 15, "{compression:?} partition {p}");
            assert_eq!(a, log(&inline, p), "{compression:?} partition {p}");
            // In send order: the i-th record sent to p is at offset i + 1.
            for (k, r) in a.iter().skip(1).enumerate() {
                let i = (k as u32) * 4 + p;
                assert_eq!(r.value.as_deref(), Some(&value(i)[..]));
            }
        }
        for results in [&off_results, &inline_results] {
            let r = results.lock().unwrap();
            assert_eq!(r.len(), 60 + 4, "every record has a result");
            assert!(r.values().all(|&c| c == 1), "exactly one each: {r:?}");
        }
        assert_eq!(off.shared.buffered_bytes(), 0, "memory returned");
        assert_eq!(
            off.core.stats().batches_sent,
            inline.core.stats().batches_sent
        );
    }
}

/// A full batch a producer thread seals while the partition's lingered
/// batch is still being compressed waits behind it: the partition's
/// records land in send order, under increasing sequences.
#[test]
fn full_batch_does_not_overtake_a_lingered_batch_in_compression() {
    let (config, results) = counted(Compression::Gzip);
    let config = Config {
        batch_size: 1024,
        ..config
    };
    let mut sim = sim_with(config, 1, 2);
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 2);
    let before = produce_count(&sim);
    let mut ctx = 0u64;
    let mut send = |sim: &mut MockSim, i: u32| {
        let v = value(i);
        sim.send_with_context("t", Some(0), None, Some(&v), ctx)
            .unwrap();
        ctx += 1;
    };
    for i in 0..3 {
        send(&mut sim, i);
    }
    sim.run_for(ms(6));
    assert_eq!(queue_states(&sim, 0), "Q", "lingered, handed to the worker");
    // Records enough for more than one full batch, sealed (compressed) by
    // the sending thread behind the lingered one.
    for i in 3..40 {
        send(&mut sim, i);
    }
    sim.settle();
    let states = queue_states(&sim, 0);
    assert!(states.starts_with("QD"), "{states}");
    assert_eq!(
        produce_count(&sim),
        before,
        "the full batch did not overtake"
    );
    // Time passes, the worker is slow: still nothing for partition 0.
    sim.run_for(ms(20));
    assert!(queue_states(&sim, 0).starts_with("QD"));
    assert_eq!(log(&sim, 0).len(), 1, "only the warm-up");
    drive_with_worker(&mut sim);
    let log = log(&sim, 0);
    assert_eq!(log.len(), 41);
    for (i, r) in log.iter().skip(1).enumerate() {
        assert_eq!(
            r.value.as_deref(),
            Some(&value(i as u32)[..]),
            "offset {}",
            i + 1
        );
    }
    // Sequences increase batch by batch (idempotence is on).
    let mut seqs: Vec<i32> = log.iter().skip(1).map(|r| r.base_sequence).collect();
    seqs.dedup();
    assert!(seqs.len() >= 3, "lingered batch plus full ones: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 40 + 2);
    assert!(r.values().all(|&c| c == 1), "{r:?}");
}

/// Flush and close seal open batches through the worker too, and complete
/// as soon as the worker has compressed them: no deadline has to pass.
#[test]
fn flush_and_close_with_batches_in_compression_complete_promptly() {
    let (config, results) = counted(Compression::Gzip);
    let config = Config {
        linger: ms(10_000),
        ..config
    };
    let mut sim = sim_with(config, 1, 8);
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 8);
    let mut ctx = 0;
    for round in 0..2 {
        for p in 0..8 {
            let v = value(ctx as u32);
            sim.send_with_context("t", Some(p), None, Some(&v), ctx)
                .unwrap();
            ctx += 1;
        }
        let t0 = sim.now;
        let h = if round == 0 { sim.flush() } else { sim.close() };
        sim.settle();
        assert!(!h.is_done());
        for p in 0..8 {
            assert_eq!(queue_states(&sim, p), "Q", "sealed for the worker");
        }
        assert_eq!(sim.shared.run_compression_jobs(), 8);
        sim.drive_until(1_000, |_| h.is_done());
        assert!(
            sim.now - t0 <= ms(5),
            "completed after {:?}: no linger or timeout waited for",
            sim.now - t0
        );
    }
    sim.drive_until(1_000, |s| s.core.is_finished());
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 16 + 8);
    assert!(r.values().all(|&c| c == 1), "{r:?}");
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// A batch purged while it waits for the worker fails once with `Purged`,
/// its memory is returned, and the worker then finds nothing to do.
#[test]
fn purge_takes_a_batch_waiting_for_the_worker() {
    let purged = Arc::new(Mutex::new(0u32));
    let p2 = purged.clone();
    let config = Config {
        linger: ms(5),
        compression: Compression::Gzip,
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            if matches!(r.result, Err(DeliveryError::Purged)) {
                *p2.lock().unwrap() += 1;
            }
        })),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 1);
    let hs: Vec<_> = (0..5)
        .map(|i| sim.send("t", Some(0), None, Some(&value(i))).unwrap())
        .collect();
    sim.run_for(ms(6));
    assert_eq!(queue_states(&sim, 0), "Q");
    assert!(sim.shared.buffered_bytes() > 0);
    let h = sim.shared.begin_purge();
    sim.settle();
    assert!(h.is_done());
    assert_eq!(*purged.lock().unwrap(), 5);
    assert!(hs
        .iter()
        .all(|h| matches!(h.try_result(), Some(Err(DeliveryError::Purged)))));
    assert_eq!(sim.shared.buffered_bytes(), 0);
    assert_eq!(
        sim.shared.run_compression_jobs(),
        0,
        "nothing left to compress"
    );
    sim.settle();
    assert_eq!(log(&sim, 0).len(), 1, "only the warm-up");
}

/// A worker asleep waiting for jobs is woken by the one the I/O thread
/// posts (else a lingered batch would wait for a worker that sleeps on).
#[test]
fn a_sleeping_worker_is_woken_by_a_job() {
    let (config, results) = counted(Compression::Gzip);
    let mut sim = sim_with(config, 1, 2);
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 2);
    let (shared, (tx, rx)) = (sim.shared.clone(), std::sync::mpsc::channel());
    let worker = std::thread::spawn(move || {
        let _ = tx.send(shared.wait_for_compression_jobs());
    });
    let mut spins = 0u64;
    while sim.shared.compress.waiting() == 0 {
        assert!(!worker.is_finished(), "the worker did not wait");
        spins += 1;
        assert!(spins < 1 << 24, "the worker never counted itself asleep");
        std::thread::yield_now();
    }
    sim.send_with_context("t", Some(0), None, Some(&value(0)), 7)
        .unwrap();
    sim.run_for(ms(6));
    assert_eq!(queue_states(&sim, 0), "Q");
    let woken = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(woken, Ok(true), "the worker slept on with a job posted");
    assert_eq!(sim.shared.compress.waiting(), 0, "counted asleep still");
    drive_with_worker(&mut sim);
    assert_eq!(results.lock().unwrap().get(&7), Some(&1));
}

/// Once the workers are stopped (or small batches below the threshold),
/// the I/O thread compresses by itself: nothing waits for a worker that
/// will never come.
#[test]
fn without_workers_the_io_thread_compresses() {
    let (config, results) = counted(Compression::Gzip);
    let mut sim = sim_with(config, 1, 2);
    // Jobs posted before the stop are still handed out.
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 2);
    sim.send_with_context("t", Some(0), None, Some(&value(0)), 0)
        .unwrap();
    sim.run_for(ms(6));
    assert_eq!(queue_states(&sim, 0), "Q");
    sim.shared.stop_compression_workers();
    assert!(sim.shared.wait_for_compression_jobs(), "a job is left");
    assert_eq!(sim.shared.run_compression_jobs(), 1);
    assert!(!sim.shared.wait_for_compression_jobs(), "stopped");
    // After the stop: plain driving delivers, no worker involved.
    for i in 1..10u32 {
        sim.send_with_context(
            "t",
            Some((i % 2) as i32),
            None,
            Some(&value(i)),
            u64::from(i),
        )
        .unwrap();
    }
    sim.drive();
    // A threshold above the batch size keeps small batches on the I/O
    // thread, too.
    let (config, _) = counted(Compression::Gzip);
    let mut small = sim_with(config, 1, 1);
    small.shared.enable_compression_offload(1 << 20, 0, 0);
    small.send("t", Some(0), None, Some(b"x")).unwrap();
    small.drive();
    assert_eq!(log(&small, 0).len(), 1);
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 10 + 2);
    assert!(r.values().all(|&c| c == 1), "{r:?}");
}

/// Within its budget the I/O thread compresses lingered batches itself
/// (sent at once, no worker involved); past it, batches go to the worker,
/// and the budget comes back with (simulated) time.
#[test]
fn the_io_thread_compresses_within_its_budget() {
    let (config, results) = counted(Compression::Gzip);
    let mut sim = sim_with(config, 1, 4);
    // About two batches of 2 records; refilled at 2 batches per 100 ms.
    // (header + 2 records, each a little more than its value)
    let batch = kring_protocol::record::layout::HEADER_LEN + 2 * (value(0).len() + 12);
    sim.shared
        .enable_compression_offload(0, 2 * batch, 20 * batch);
    warm_up(&mut sim, 4);
    let mut ctx = 0u64;
    let mut round = |sim: &mut MockSim| {
        for i in 0..8u32 {
            let v = value(i);
            sim.send_with_context("t", Some((i % 4) as i32), None, Some(&v), ctx)
                .unwrap();
            ctx += 1;
        }
        sim.run_for(ms(6));
        let queued = (0..4).filter(|&p| queue_states(sim, p) == "Q").count();
        drive_with_worker(sim);
        queued
    };
    // The warm-up used the budget; the first round's batches: some inline
    // (what refilled meanwhile), the rest handed off.
    let first = round(&mut sim);
    assert!((1..=4).contains(&first), "{first} of 4 handed off");
    // A second later the budget is full again: two inline, two handed off.
    sim.run_for(ms(1000));
    assert_eq!(round(&mut sim), 2);
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 16 + 4);
    assert!(r.values().all(|&c| c == 1), "{r:?}");
}

/// Batches compressed by the worker, refused as too large and split, with
/// later batches of the partition in flight or still with the worker:
/// every record is stored once, in send order, for every codec, and each
/// gets one result.
#[test]
fn split_batches_compressed_by_the_worker_keep_order() {
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for idempotence in [true, false] {
            let (config, results) = counted(compression);
            let config = Config {
                enable_idempotence: idempotence,
                acks: crate::config::Acks::All,
                max_in_flight: if idempotence { 5 } else { 1 },
                ..config
            };
            let mut sim = sim_on(config, cluster(1, 1).max_message_bytes(1500));
            sim.shared.enable_compression_offload(0, 0, 0);
            warm_up(&mut sim, 1);
            let mut n = 0u32;
            for round in 0..6u32 {
                for _ in 0..(3 + round * 2) {
                    sim.send_with_context(
                        "t",
                        Some(0),
                        None,
                        Some(&super::split::value(n, 250)),
                        u64::from(n),
                    )
                    .unwrap();
                    n += 1;
                }
                sim.run_for(ms(6));
                if round % 2 == 1 {
                    sim.shared.run_compression_jobs();
                }
                sim.settle();
            }
            drive_with_worker(&mut sim);
            let log = super::log(&sim, 0);
            let got: Vec<u32> = log
                .iter()
                .skip(1)
                .map(|r| u32::from_be_bytes(r.value.as_deref().unwrap()[..4].try_into().unwrap()))
                .collect();
            let want: Vec<u32> = (0..n).collect();
            assert_eq!(got, want, "{compression:?} idempotence {idempotence}");
            assert!(sim.core.stats().batches_split > 0);
            let r = results.lock().unwrap();
            assert_eq!(r.len() as u32, n + 1);
            assert!(r.values().all(|&c| c == 1), "{r:?}");
            assert_eq!(sim.shared.buffered_bytes(), 0);
        }
    }
}

/// Sends `n` records (contexts from `*ctx` on) to partition `p`.
fn send_n(sim: &mut MockSim, p: u32, n: u32, ctx: &mut u64) {
    for _ in 0..n {
        let v = value(*ctx as u32);
        sim.send_with_context("t", Some(p as i32), None, Some(&v), *ctx)
            .unwrap();
        *ctx += 1;
    }
}

/// The uncompressed size of a batch of `n` of these test records, about.
fn batch_of(n: usize) -> usize {
    kring_protocol::record::layout::HEADER_LEN + n * (value(0).len() + 10)
}

/// While the workers are a request's worth behind, the I/O thread
/// compresses lingered batches itself and sends them, while the batches
/// handed off earlier still wait for the worker; every record then has
/// exactly one result, in send order per partition, and no memory stays
/// charged.
#[test]
fn the_io_thread_compresses_while_the_workers_are_behind() {
    let (config, results) = counted(Compression::Gzip);
    // The workers are behind once they hold about one and a quarter
    // batches of 10 records: two lingered batches are handed off.
    let cap = batch_of(10) * 5 / 4;
    let config = Config {
        max_request_size: cap,
        batch_size: cap,
        ..config
    };
    let mut sim = sim_with(config, 1, 5);
    sim.shared.enable_compression_offload(0, 0, 0);
    warm_up(&mut sim, 5);
    let mut ctx = 0u64;
    for p in 0..5 {
        send_n(&mut sim, p, 10, &mut ctx);
    }
    sim.run_for(ms(6));
    let states: Vec<String> = (0..5).map(|p| queue_states(&sim, p)).collect();
    assert_eq!(states, ["Q", "Q", "", "", ""], "two handed off");
    let stored: Vec<usize> = (0..5).map(|p| log(&sim, p).len() - 1).collect();
    assert_eq!(stored, [0, 0, 10, 10, 10], "three compressed and sent");
    assert_eq!(sim.shared.run_compression_jobs(), 2);
    drive_with_worker(&mut sim);
    for p in 0..5u32 {
        let values: Vec<Vec<u8>> = log(&sim, p)
            .iter()
            .skip(1)
            .map(|r| r.value.as_deref().unwrap().to_vec())
            .collect();
        let want: Vec<Vec<u8>> = (10 * p..10 * p + 10).map(value).collect();
        assert_eq!(values, want, "partition {p}");
    }
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 50 + 5);
    assert!(r.values().all(|&c| c == 1), "{r:?}");
    assert_eq!(sim.shared.buffered_bytes(), 0, "memory returned");
}

/// Without compression threads, a producer thread blocked for
/// `buffer.memory` compresses the lingered batches the I/O thread hands
/// off (while it waits, keeping its place), they are sent, their
/// completion frees memory and the blocked thread's record goes in. With
/// no thread blocked, the I/O thread compresses lingered batches itself:
/// nothing is handed to a worker that does not exist.
#[test]
fn threads_blocked_for_memory_compress_lingered_batches() {
    let (config, results) = counted(Compression::Gzip);
    let config = Config {
        buffer_memory: 2048,
        batch_size: 1024,
        ..config
    };
    let mut sim = sim_with(config, 1, 2);
    sim.shared.enable_compression_help(0, 0, 0);
    warm_up(&mut sim, 2);
    // Nobody blocked: the I/O thread compresses the lingered batch.
    sim.send_with_context("t", Some(0), None, Some(&value(0)), 10)
        .unwrap();
    sim.run_for(ms(6));
    assert_eq!(queue_states(&sim, 0), "", "compressed and sent at once");
    assert_eq!(log(&sim, 0).len(), 2);
    sim.drive();
    // Two batches of about 1 KiB: a third one does not fit in the pool.
    let big = |i: u8| {
        let mut v = value(u32::from(i));
        v.resize(900, b'x');
        v
    };
    sim.send_with_context("t", Some(0), None, Some(&big(1)), 11)
        .unwrap();
    sim.send_with_context("t", Some(1), None, Some(&big(2)), 12)
        .unwrap();
    let (t, rx) = blocked_sender(&sim, 0, 1000, ms(3_600_000));
    // Partition 0's batch, full, was sealed by the blocked thread before it
    // blocked; partition 1's lingers out and is handed to it.
    sim.run_for(ms(6));
    // (Spinning, bounded: kring-core's tests do not read the clock.)
    let mut spins = 0u64;
    while sim.shared.compression_jobs_by_blocked_senders() < 1 {
        spins += 1;
        assert!(spins < 1 << 28, "the blocked thread compressed nothing");
        std::thread::yield_now();
    }
    // (Whether the blocked thread still waits now, and whether the batch
    // was sent while the sim ran, depends on the two threads' timing: the
    // compressed batch's old buffer may already have freed its memory.)
    sim.drive();
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the blocked thread got its memory");
    assert_eq!(r.unwrap(), 0);
    t.join().unwrap();
    sim.drive();
    assert_eq!(log(&sim, 0).len(), 4);
    assert_eq!(log(&sim, 1).len(), 2);
    assert_eq!(log(&sim, 0)[2].value.as_deref(), Some(&big(1)[..]));
    let r = results.lock().unwrap();
    // Ours, the blocked thread's (context 0) and the warm-up's.
    assert_eq!(r.len(), 3 + 1 + 2, "{r:?}");
    assert!(r.values().all(|&c| c == 1), "{r:?}");
    drop(r);
    assert_eq!(sim.shared.buffered_bytes(), 0);
}
