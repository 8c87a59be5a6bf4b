//! The batch ledger's accounting: after any mix of final results —
//! acknowledged, split then acknowledged, purged, timed out in the
//! accumulator and in the retry queue — nothing is owed (no batch held or
//! pending, no flush generation incomplete), every reserved byte of
//! `buffer.memory` is back, and every record was reported exactly once
//! (sent with a handle or without).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::delivery::{DeliveryError, DeliveryReport};
use crate::Config;

/// One callback call: partition, the record's context, its result kind.
type Call = (i32, u64, &'static str);

#[test]
fn ledger_accounting_returns_to_zero_after_complete_fail_split_purge() {
    // (partition, index of the record in its batch, batch base offset or
    // error kind) per callback call; the count per record is what matters.
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let c2 = calls.clone();
    let config = Config {
        linger: ms(20),
        delivery_timeout: ms(10_000),
        request_timeout: ms(1_000),
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let kind = match &r.result {
                Ok(_) => "ok",
                Err(DeliveryError::Purged) => "purged",
                Err(DeliveryError::Timeout { .. }) => "timeout",
                Err(_) => "other",
            };
            c2.lock().unwrap().push((r.partition, r.context, kind));
        })),
        ..cfg()
    };
    // The topic refuses batches over 2,000 B: partition 0's lingered batch
    // (20 records) splits, partition 1's (5) fits.
    let mut sim = sim_on(config, cluster(1, 2).max_message_bytes(2_000));
    let mut handles = Vec::new();
    let mut sent = 0u64;
    // Every third record goes without a handle (`produce`): batches mix
    // both kinds, and some have no completion at all.
    let mut send = |sim: &mut MockSim, p: i32, n: usize| {
        for _ in 0..n {
            let ctx = sent;
            sent += 1;
            let v = Some(&[7u8; 300][..]);
            if ctx % 3 == 2 {
                sim.produce_with_context("t", Some(p), None, v, ctx)
                    .unwrap();
            } else {
                handles.push(sim.send_with_context("t", Some(p), None, v, ctx).unwrap());
            }
        }
    };

    // 1. Acknowledged, and split then acknowledged, under a flush.
    send(&mut sim, 0, 20);
    send(&mut sim, 1, 5);
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    assert!(sim.core.stats().batches_split > 0, "partition 0 split");
    assert!(sim.core.ledger.is_settled(), "{:?}", sim.core.ledger);
    assert_eq!(sim.shared.buffered_bytes(), 0);

    // 2. The broker goes away with a batch on the wire (re-queued, then
    //    timed out in the retry queue), records pile up behind it, part of
    //    them purged, the rest timed out in the accumulator.
    send(&mut sim, 1, 1);
    sim.run_for(ms(20));
    stop(&sim, 1);
    sim.disconnect_node(1);
    sim.settle();
    send(&mut sim, 0, 10);
    send(&mut sim, 1, 10);
    sim.run_for(ms(100));
    let purge = sim.shared.begin_purge();
    sim.settle();
    assert!(purge.is_done());
    send(&mut sim, 0, 3);
    let flush = sim.flush();
    sim.run_for(ms(11_000));
    assert!(flush.is_done(), "every batch timed out or was purged");
    assert!(sim.core.ledger.is_settled(), "{:?}", sim.core.ledger);
    assert_eq!(sim.shared.buffered_bytes(), 0, "every byte released");

    // 3. Close: finished, nothing owed (the debug assertion in the
    //    ledger's close path checks it too).
    let close = sim.close();
    sim.drive();
    assert!(close.is_done() && sim.core.is_finished());
    assert_eq!(sim.core.pending_batches(), 0);

    // Every record reported exactly once, and each handle resolved.
    let calls = calls.lock().unwrap();
    let mut per_record: HashMap<u64, u32> = HashMap::new();
    for &(_, ctx, _) in calls.iter() {
        *per_record.entry(ctx).or_default() += 1;
    }
    assert_eq!(per_record.len() as u64, sent, "a record never reported");
    assert!(
        per_record.values().all(|&n| n == 1),
        "a record reported twice"
    );
    let kinds = |k| calls.iter().filter(|c| c.2 == k).count();
    assert!(kinds("ok") >= 25 && kinds("purged") > 0 && kinds("timeout") > 0);
    assert_eq!(kinds("other"), 0);
    assert!(handles.iter().all(|h| h.try_result().is_some()));
}
