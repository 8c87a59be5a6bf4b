//! Records appended without a handle (`Shared::produce`, see `reply`):
//! their results reach the callback once each, their batches make no
//! completion, and a handle taken on a batch opened without one still
//! resolves to its own record's result, also when the batch is split.

use std::sync::{Arc, Mutex};

use super::*;
use crate::delivery::DeliveryReport;
use crate::Config;

/// (partition, context, offset) per callback call.
type Calls = Arc<Mutex<Vec<(i32, u64, i64)>>>;

fn with_callback(config: Config) -> (Config, Calls) {
    let calls: Calls = Arc::default();
    let c2 = calls.clone();
    let config = Config {
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let offset = r.result.as_ref().map_or(-1, |m| m.offset);
            c2.lock().unwrap().push((r.partition, r.context, offset));
        })),
        ..config
    };
    (config, calls)
}

#[test]
fn produced_records_are_reported_once_and_make_no_completion() {
    let (config, calls) = with_callback(cfg());
    let mut sim = sim_with(config, 1, 2);
    for round in 0..3u64 {
        for i in 0..4u64 {
            let p = (i % 2) as i32;
            let ctx = round * 4 + i;
            sim.produce_with_context("t", Some(p), None, Some(b"v"), ctx)
                .expect("produce");
        }
        sim.drive();
    }
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_by_key(|c| c.1);
    let expected: Vec<_> = (0..12u64)
        .map(|ctx| ((ctx % 2) as i32, ctx, (ctx / 2) as i64))
        .collect();
    assert_eq!(calls, expected, "each record once, with its offset");
    assert_eq!((log(&sim, 0).len(), log(&sim, 1).len()), (6, 6));
    assert_eq!(
        sim.shared.parts.len().0,
        0,
        "no batch made a completion (only tables come back)"
    );
    assert!(sim.shared.parts.len().1 > 0);
}

#[test]
fn a_handle_on_a_batch_opened_without_one_resolves_to_its_record() {
    let (config, calls) = with_callback(cfg());
    let mut sim = sim_with(config, 1, 1);
    let mut handles = Vec::new();
    for ctx in 0..6u64 {
        if ctx == 2 || ctx == 4 {
            handles.push(
                sim.send_with_context("t", Some(0), None, Some(b"v"), ctx)
                    .unwrap(),
            );
        } else {
            sim.produce_with_context("t", Some(0), None, Some(b"v"), ctx)
                .unwrap();
        }
    }
    sim.drive();
    assert_eq!(sim.core.stats().batches_sent, 1, "one batch of six");
    let offsets: Vec<i64> = handles
        .iter()
        .map(|h| h.try_result().expect("done").expect("ok").offset)
        .collect();
    assert_eq!(offsets, vec![2, 4]);
    assert_eq!(calls.lock().unwrap().len(), 6);
}

#[test]
fn a_split_batch_opened_without_a_handle_resolves_its_handles() {
    let (config, calls) = with_callback(Config {
        linger: ms(20),
        ..cfg()
    });
    // Batches over 2,000 B are refused: ten 300 B records split.
    let mut sim = sim_on(config, cluster(1, 1).max_message_bytes(2_000));
    let mut handles = Vec::new();
    for ctx in 0..10u64 {
        let v = Some(&[7u8; 300][..]);
        if ctx == 7 {
            handles.push(sim.send_with_context("t", Some(0), None, v, ctx).unwrap());
        } else {
            sim.produce_with_context("t", Some(0), None, v, ctx)
                .unwrap();
        }
    }
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    assert!(sim.core.stats().batches_split > 0, "the batch was split");
    let md = handles[0].try_result().expect("done").expect("ok");
    assert_eq!(md.offset, 7);
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_by_key(|c| c.1);
    let expected: Vec<_> = (0..10u64).map(|c| (0, c, c as i64)).collect();
    assert_eq!(calls, expected);
    assert_eq!(log(&sim, 0).len(), 10);
}

/// An async append polled with `poll_produce` (kring's `produce_async`)
/// is `produce`: reported once through the callback, no completion made.
#[test]
fn async_produce_makes_no_completion() {
    let (config, calls) = with_callback(cfg());
    let mut sim = sim_with(config, 1, 2);
    let shared = sim.shared.clone();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for ctx in 1..=4u64 {
        let rec = crate::RecordRef {
            topic: "t",
            partition: Some((ctx % 2) as i32),
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
            context: ctx,
        };
        let now = sim.now;
        let mut a = shared.append_async(now, now + std::time::Duration::from_secs(60));
        // Pending until the topic's metadata is in (the first record).
        let mut polls = 0;
        let o = loop {
            match a.poll_produce(sim.now, &rec, &mut cx) {
                std::task::Poll::Ready(r) => break r.expect("appended"),
                std::task::Poll::Pending => sim.drive(),
            }
            polls += 1;
            assert!(polls < 100, "never appended");
        };
        assert_eq!(o.partition, (ctx % 2) as i32);
    }
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_by_key(|c| c.1);
    assert_eq!(calls, vec![(1, 1, 0), (0, 2, 0), (1, 3, 1), (0, 4, 1)]);
    assert_eq!(sim.shared.parts.len().0, 0, "no completion made");
}
