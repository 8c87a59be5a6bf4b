//! A purge right after a broker stopped, before the producer has read the
//! broker's close: the state behind the intermittent failure of
//! kring-suite's `e2e_mock_purge::purge_behind_a_stopped_broker`.
//!
//! A broker's close reaches the I/O thread asynchronously; until it does,
//! the connection looks up, and full batches sealed meanwhile are taken
//! into requests and written to it. Those batches are on the wire when the
//! close is read (their fate unknown, possibly in the log), so they wait
//! for a retry and a purge leaves them alone, with their `buffer.memory`:
//! right after such a purge the buffered bytes are not zero, by design.
//! Nothing is stuck, though: with the broker never back they fail at
//! `delivery.timeout.ms` (possibly persisted), and that returns their
//! memory — the e2e test's 120 s "hang" was this timeout, run by the
//! producer's `Drop` after the assertion had failed.

use std::time::Duration;

use super::*;
use crate::delivery::{DeliveryError, MessageStatus};
use crate::Config;

/// Full batches written to a broker that already stopped (its close not yet
/// read) wait for a retry through a purge, keep their memory, and return
/// it when they time out; everything else buffered is purged at once.
#[test]
fn batches_written_before_the_close_was_read_outlive_a_purge_and_then_time_out() {
    let delivery_timeout = Duration::from_secs(120);
    let config = Config {
        linger: Duration::from_secs(30),
        batch_size: 1024,
        delivery_timeout,
        reconnect_backoff: ms(10),
        reconnect_backoff_max: ms(100),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    for p in 0..4 {
        sim.send("t", Some(p), None, Some(b"warm")).unwrap();
    }
    let warm = sim.flush();
    sim.drive();
    assert!(warm.is_done());

    // The broker stops; the producer has not read the close yet, so the
    // connection still looks up. Full batches are sealed by the producer
    // thread and leave at once: the broker drops the connection when they
    // arrive.
    stop(&sim, 1);
    let send = |sim: &mut MockSim, i: u32| {
        sim.send("t", Some((i % 4) as i32), None, Some(&[7u8; 100]))
            .unwrap()
    };
    let mut handles: Vec<_> = (0..40).map(|i| send(&mut sim, i)).collect();
    sim.settle();
    // The close arrives (1 ms later); reconnecting is refused from now on.
    sim.run_for(ms(5));
    // The rest is buffered behind the stopped broker.
    handles.extend((40..400).map(|i| send(&mut sim, i)));
    sim.run_for(ms(200));

    let purge = sim.shared.begin_purge();
    sim.settle();
    assert!(purge.is_done());
    let mut on_wire = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        match h.try_result() {
            Some(Err(DeliveryError::Purged)) => {}
            None => on_wire.push(i),
            other => panic!("record {i}: {other:?}"),
        }
    }
    assert!(
        !on_wire.is_empty() && on_wire.iter().all(|&i| i < 40),
        "the records written before the close was read, only, outlive the purge: {on_wire:?}"
    );
    assert_eq!(
        sim.core.stats().records_purged,
        (handles.len() - on_wire.len()) as u64
    );
    assert!(
        sim.shared.buffered_bytes() > 0,
        "a batch waiting for a retry keeps its memory through a purge"
    );

    // The broker never returns: the retried batches fail at the delivery
    // timeout, possibly persisted, and their memory comes back.
    sim.run_for(delivery_timeout);
    for &i in &on_wire {
        match handles[i].try_result() {
            Some(Err(e @ DeliveryError::Timeout { .. })) => {
                assert_eq!(e.status(), MessageStatus::PossiblyPersisted, "record {i}")
            }
            other => panic!("record {i}: {other:?}"),
        }
    }
    assert_eq!(sim.shared.buffered_bytes(), 0, "every batch's memory back");
    let close = sim.close();
    sim.drive();
    assert!(close.is_done());
}
