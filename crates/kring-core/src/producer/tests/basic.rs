//! The happy path: metadata, producer id, linger, batching, offsets.

use super::*;

#[test]
fn records_are_delivered_with_offsets_after_linger() {
    let mut sim = sim_with(cfg(), 1, 1);
    let hs: Vec<_> = (0..10u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).expect("send"))
        .collect();
    let t0 = sim.now;
    sim.drive_bounded(200);
    for (i, h) in hs.iter().enumerate() {
        let md = h.try_result().expect("done").expect("ok");
        assert_eq!(md.partition, 0);
        assert_eq!(md.offset, i as i64);
    }
    let log = sim.cluster.records("t", 0);
    assert_eq!(log.len(), 10);
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(&[i as u8][..]));
    }
    // One batch, sent when linger (5 ms) expired, not before.
    assert_eq!(sim.core.stats().batches_sent, 1);
    assert!(sim.now - t0 >= ms(5));
    // Idempotent by default: a producer id and sequence 0.
    assert!(log[0].producer.0 >= 0);
    assert_eq!(log[0].producer.2, 0);
}
