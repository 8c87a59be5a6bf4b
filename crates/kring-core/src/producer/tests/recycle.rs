//! Finished batches' completions and buffers are reused (`spare_parts`,
//! `memory`): a handle still held keeps its own batch's result, and a
//! completion comes back only once no handle refers to it.

use std::collections::HashSet;

use super::*;
use crate::DeliveryHandle;

#[test]
fn held_handles_keep_their_results_while_completions_are_reused() {
    let mut sim = sim_with(cfg(), 1, 2);
    let mut kept = Vec::new();
    let mut dropped_batches = HashSet::new();
    let mut reused = 0;
    let mut next = [0i64; 2];
    for round in 0..30u8 {
        for p in 0..2i32 {
            for i in 0..3u8 {
                let h = sim
                    .send("t", Some(p), None, Some(&[round, p as u8, i]))
                    .expect("send");
                let offset = next[p as usize];
                next[p as usize] += 1;
                if kept
                    .iter()
                    .any(|(k, _, _): &(DeliveryHandle, i32, i64)| k.batch_addr() == h.batch_addr())
                {
                    // Another record of a batch whose handles are held.
                } else if dropped_batches.contains(&h.batch_addr()) {
                    reused += 1;
                }
                if round % 3 == 0 {
                    // These handles are held to the end: their batches'
                    // completions must never be reused.
                    kept.push((h, p, offset));
                } else {
                    dropped_batches.insert(h.batch_addr());
                }
            }
        }
        sim.drive();
        for (h, p, offset) in &kept {
            let md = h.try_result().expect("done").expect("ok");
            assert_eq!((md.partition, md.offset), (*p, *offset), "round {round}");
        }
    }
    assert!(reused > 0, "completions of dropped handles are reused");
    for p in 0..2 {
        assert_eq!(log(&sim, p).len(), 90);
    }
}
/// Once the producer has closed, nothing of `buffer.memory` is held: the
/// finished batches' buffers kept as spares for later batches (there will
/// be none) are freed and their charge released, so the pool's used bytes
/// are back at 0, not up to half of `buffer.memory` kept until the last
/// reference to the shared state goes.
#[test]
fn close_gives_back_the_spare_buffers() {
    let mut sim = sim_with(cfg(), 1, 4);
    for i in 0..200u32 {
        let v = vec![i as u8; 300];
        sim.send("t", Some((i % 4) as i32), None, Some(&v)).unwrap();
        if i % 20 == 0 {
            sim.drive();
        }
    }
    sim.drive();
    assert_eq!(sim.shared.buffered_bytes(), 0);
    let c = sim.close();
    sim.drive_until(100_000, |_| c.is_done());
    assert!(sim.core.is_finished());
    assert_eq!(
        (sim.shared.pool.used(), sim.shared.pool.spare_bytes()),
        (0, 0),
        "pool used bytes and spares after close"
    );
}

/// A finished batch whose buffer the driver still holds (the kernel may
/// still read its frame) keeps its `buffer.memory` charge until the
/// driver lets go, and then its memory comes back: senders refused while
/// the frames are held can fill `buffer.memory` again, and everything
/// they sent is delivered.
#[test]
fn buffers_the_driver_still_holds_come_back_when_it_lets_go() {
    let config = Config {
        buffer_memory: 64 * 1024,
        batch_size: 4 * 1024,
        linger: ms(1),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    learn_metadata(&mut sim);
    sim.held_frames = Some(Vec::new());
    let first = fill_memory(&sim, 4, 500);
    assert!(first > 0);
    sim.drive();
    let stored = |sim: &MockSim| (0..4).map(|p| log(sim, p).len() as u32).sum::<u32>() - 1;
    assert_eq!(stored(&sim), first, "delivered");
    // Every batch is done, but its buffer is still in a held frame: its
    // memory is not free for new records yet.
    assert_eq!(fill_memory(&sim, 4, 500), 0, "memory held with the frames");
    assert!(sim.shared.buffered_bytes() > 0);

    // The driver lets go; the I/O thread's next turn takes the buffers back.
    sim.held_frames = Some(Vec::new());
    sim.core.handle_wakeup(sim.now);
    let second = fill_memory(&sim, 4, 500);
    assert!(
        second * 2 >= first,
        "buffer.memory is free again: {second} records fit after the frames went, {first} before"
    );
    sim.held_frames = None;
    sim.drive();
    assert_eq!(stored(&sim), first + second);
}

/// A close while the driver still holds frames (the kernel may still read
/// them) leaves nothing of `buffer.memory` charged either: nothing will be
/// appended any more, so the charge of the buffers in those frames goes
/// back when the core finishes, not when the driver lets go.
#[test]
fn close_releases_the_charge_of_buffers_the_driver_still_holds() {
    let mut sim = sim_with(cfg(), 1, 4);
    learn_metadata(&mut sim);
    sim.held_frames = Some(Vec::new());
    for i in 0..40u32 {
        sim.send("t", Some((i % 4) as i32), None, Some(&[7u8; 300]))
            .unwrap();
    }
    sim.drive();
    assert!(sim.shared.buffered_bytes() > 0, "held with the frames");
    let c = sim.close();
    sim.drive_until(100_000, |_| c.is_done());
    assert!(sim.core.is_finished());
    assert_eq!(
        (sim.shared.pool.used(), sim.shared.buffered_bytes()),
        (0, 0),
        "pool used bytes and buffered bytes after close"
    );
    let held = sim.held_frames.take().expect("held");
    assert!(!held.is_empty());
}
