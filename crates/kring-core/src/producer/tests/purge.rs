//! Purge (librdkafka's `rd_kafka_purge` with `PURGE_F_QUEUE`): every
//! record still in the accumulator fails with `Purged`, exactly once, and
//! its memory is released; records on the wire or waiting for a retry
//! complete as usual; the producer goes on, with valid sequences.

use std::sync::{Arc, Mutex};

use super::*;
use crate::delivery::{DeliveryError, DeliveryReport, MessageStatus};
use crate::Config;

fn down(sim: &mut MockSim) {
    stop(sim, 1);
    sim.disconnect_node(1);
}

/// Records buffered behind a broker that went away are purged; the one
/// batch that was on the wire when it went (now waiting for a retry, its
/// fate unknown) is not, and is delivered once the broker is back, as are
/// later records — under the same epoch, sequences unbroken.
#[test]
fn purge_fails_buffered_records_once_and_keeps_retrying_batches() {
    let reports: Arc<Mutex<Vec<(i32, u32, bool)>>> = Arc::default();
    let r2 = reports.clone();
    let config = Config {
        linger: ms(5),
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let purged = matches!(r.result, Err(DeliveryError::Purged));
            r2.lock().unwrap().push((r.partition, r.index, purged));
        })),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    for p in 0..4 {
        sim.send("t", Some(p), None, Some(b"warm")).unwrap();
    }
    sim.drive();
    // One batch on the wire when the broker goes away: lost, re-queued.
    let on_wire = sim.send("t", Some(0), None, Some(b"on-wire")).unwrap();
    sim.run_for(ms(5));
    assert!(on_wire.try_result().is_none());
    down(&mut sim);
    sim.settle();
    let held = sim.shared.buffered_bytes();
    assert!(held > 0, "the re-queued batch holds its memory");
    // Many records buffered behind the missing broker.
    let buffered: Vec<_> = (0..400u32)
        .map(|i| {
            let v = vec![i as u8; 100];
            sim.send("t", Some((i % 4) as i32), None, Some(&v)).unwrap()
        })
        .collect();
    sim.run_for(ms(200));
    assert!(sim.shared.buffered_bytes() > held);
    assert!(buffered.iter().all(|h| h.try_result().is_none()));

    let h = sim.shared.begin_purge();
    sim.settle();
    assert!(h.is_done(), "the purge completes on the next turn");
    for (i, b) in buffered.iter().enumerate() {
        match b.try_result() {
            Some(Err(e @ DeliveryError::Purged)) => {
                assert_eq!(e.status(), MessageStatus::NotPersisted)
            }
            other => panic!("buffered record {i}: {other:?}"),
        }
    }
    assert_eq!(sim.core.stats().records_purged, 400);
    assert_eq!(
        sim.shared.buffered_bytes(),
        held,
        "only the re-queued batch still holds memory"
    );
    assert!(
        on_wire.try_result().is_none(),
        "not purged: it may be in the log"
    );
    // The callback heard of each purged record once.
    {
        let r = reports.lock().unwrap();
        let purged = r.iter().filter(|x| x.2).count();
        assert_eq!(purged, 400);
        let mut keys: Vec<(i32, u32)> = r.iter().filter(|x| x.2).map(|x| (x.0, x.1)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 400, "no record reported twice");
    }

    // The broker returns: the re-queued batch and later records go through.
    start(&sim, 1);
    let later: Vec<_> = (0..4)
        .map(|p| sim.send("t", Some(p), None, Some(b"later")).unwrap())
        .collect();
    sim.drive();
    on_wire.wait().unwrap();
    for h in &later {
        h.wait().unwrap();
    }
    let stored = log(&sim, 0);
    let values: Vec<&[u8]> = stored.iter().map(|r| r.value.as_deref().unwrap()).collect();
    assert_eq!(values, vec![&b"warm"[..], b"on-wire", b"later"]);
    for p in 1..4 {
        assert_eq!(log(&sim, p).len(), 2, "warm + later");
    }
    assert_eq!(sim.core.stats().epoch_bumps, 0, "no sequence gap");
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// A purge takes sealed and open batches off the partitions' books:
/// nothing left unsent, none open, every batch known gone, and the purged
/// open batch known sealed (a late notice of it arms no linger).
#[test]
fn a_purge_leaves_the_partitions_books_straight() {
    let config = Config {
        batch_size: 4096,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    for p in 0..2 {
        sim.send("t", Some(p), None, Some(b"warm")).unwrap();
    }
    sim.drive();
    down(&mut sim);
    // `n` records of 100 B to each partition.
    let buffer = |sim: &mut MockSim, n: u32| {
        for i in 0..2 * n {
            let v = vec![i as u8; 100];
            sim.send("t", Some((i % 2) as i32), None, Some(&v)).unwrap();
        }
    };
    // Each partition's sealed batches, and whether one is open.
    let queued = |sim: &mut MockSim, sealed: usize, open: bool| {
        for p in 0..2u32 {
            let q = sim.core.part((0, p)).slot.lock();
            assert_eq!(
                (q.sealed.len(), q.open.is_some()),
                (sealed, open),
                "partition {p}"
            );
        }
    };
    // 100 records per partition: two full batches and an open one each.
    buffer(&mut sim, 100);
    sim.run_for(ms(200));
    queued(&mut sim, 2, true);
    let h = sim.shared.begin_purge();
    sim.settle();
    assert!(h.is_done());
    assert_eq!(sim.core.stats().records_purged, 200);
    let books = |sim: &mut MockSim, batches: u64| {
        for p in 0..2u32 {
            let part = sim.core.part((0, p));
            assert_eq!((part.unsent, part.open()), (0, None), "partition {p}");
            assert_eq!(part.announced, batches, "partition {p}");
            assert_eq!(part.drained_below, batches, "partition {p}");
            assert_eq!(part.sealed_below, batches, "partition {p}");
        }
        assert_eq!(sim.shared.buffered_bytes(), 0);
    };
    books(&mut sim, 4);
    // Again with every batch sealed (by a flush) when the purge comes.
    buffer(&mut sim, 40);
    let flush = sim.flush();
    sim.settle();
    queued(&mut sim, 2, false);
    let h = sim.shared.begin_purge();
    sim.settle();
    assert!(h.is_done() && flush.is_done());
    books(&mut sim, 6);
}

/// Purging with nothing buffered completes and changes nothing; a flush
/// waiting for purged records completes; a purge after close begins still
/// completes.
#[test]
fn purge_completes_flushes_and_is_harmless_when_empty() {
    let config = Config {
        linger: ms(60_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.shared.begin_purge();
    sim.settle();
    assert!(h.is_done());
    let hs: Vec<_> = (0..10)
        .map(|_| sim.send("t", Some(0), None, Some(b"x")).unwrap())
        .collect();
    sim.settle();
    // Lingering (60 s): buffered. A flush would send them; purge first.
    let p = sim.shared.begin_purge();
    let f = sim.flush();
    sim.settle();
    assert!(p.is_done() && f.is_done());
    assert!(hs
        .iter()
        .all(|h| matches!(h.try_result(), Some(Err(DeliveryError::Purged)))));
    assert_eq!(log(&sim, 0).len(), 0);
    assert_eq!(sim.shared.buffered_bytes(), 0);
    let after = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let c = sim.close();
    sim.drive_until(100_000, |_| c.is_done());
    after.wait().unwrap();
    assert_eq!(log(&sim, 0).len(), 1);
}
