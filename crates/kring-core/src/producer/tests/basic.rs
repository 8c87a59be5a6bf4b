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
    let log = log(&sim, 0);
    assert_eq!(log.len(), 10);
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(&[i as u8][..]));
    }
    // One batch, sent when linger (5 ms) expired, not before.
    assert_eq!(sim.core.stats().batches_sent, 1);
    assert_eq!(
        (sim.core.stats().batches_ok, sim.core.stats().batches_failed),
        (1, 0)
    );
    assert!(sim.now - t0 >= ms(5));
    // Idempotent by default: a producer id and sequence 0.
    assert!(log[0].producer_id >= 0);
    assert_eq!(log[0].base_sequence, 0);
}

/// Without idempotence a batch carries no producer state: producer id,
/// epoch and base sequence are all -1 (a broker reads any other producer
/// id as an idempotent producer's and checks its sequences).
#[test]
fn without_idempotence_batches_carry_no_producer_state() {
    let config = crate::Config {
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    let hs: Vec<_> = (0..6u8)
        .map(|i| {
            sim.send("t", Some(i32::from(i % 2)), None, Some(&[i]))
                .expect("send")
        })
        .collect();
    sim.drive_bounded(200);
    for h in &hs {
        h.try_result().expect("done").expect("ok");
    }
    for p in 0..2 {
        let log = log(&sim, p);
        assert_eq!(log.len(), 3);
        for r in &log {
            assert_eq!(
                (r.producer_id, r.producer_epoch, r.base_sequence),
                (-1, -1, -1),
                "partition {p}"
            );
        }
    }
}

/// Without idempotence nothing waits for a producer id: records for a
/// broker the producer has no connection to yet leave as soon as that
/// connection is ready (its handshake done), not at some later event.
#[test]
fn records_leave_when_their_brokers_connection_is_ready() {
    let config = crate::Config {
        enable_idempotence: false,
        linger: ms(0),
        ..cfg()
    };
    // t/1 at node 2, which nothing has connected to.
    let mut sim = sim_with(config, 2, 2);
    learn_metadata(&mut sim);
    let t0 = sim.now;
    let h = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.drive_until(100_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 0);
    // A connect, ApiVersions and Produce: a few 1 ms round trips.
    assert!(sim.now - t0 < ms(20), "{:?}", sim.now - t0);
}

/// The configured compression level is the one batches are written at,
/// whichever thread seals them: the same records are stored smaller at a
/// higher gzip or zstd level, and the broker decodes them all.
#[test]
fn compression_level_reaches_the_broker() {
    // Words in a pseudo-random order: compressible, and more so at
    // higher levels.
    let words = [
        "leader", "batch", "offset", "broker", "epoch", "topic", "flush",
    ];
    let mut x = 0x2545_f491_u64;
    let values: Vec<Vec<u8>> = (0..60)
        .map(|_| {
            let mut v = Vec::new();
            while v.len() < 700 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(words[(x % 7) as usize].as_bytes());
                v.extend_from_slice(format!(" {} ", x % 1000).as_bytes());
            }
            v
        })
        .collect();
    let stored = |compression, level| {
        let config = crate::Config {
            compression,
            compression_level: level,
            batch_size: 8 * 1024,
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        let hs: Vec<_> = values
            .iter()
            .map(|v| sim.send("t", Some(0), None, Some(v)).unwrap())
            .collect();
        sim.drive();
        for h in hs {
            h.wait().unwrap();
        }
        let log = log(&sim, 0);
        assert_eq!(log.len(), values.len(), "{compression} {level:?}");
        for (r, v) in log.iter().zip(&values) {
            assert_eq!(r.value.as_deref(), Some(&v[..]), "{compression} {level:?}");
        }
        let batches = sim.cluster.batches("t", 0).unwrap();
        assert!(batches.len() > 1, "full batches and a lingered one");
        batches.iter().map(|b| b.bytes.len()).sum::<usize>()
    };
    for (codec, low, high) in [
        (crate::Compression::Gzip, 1, 9),
        (crate::Compression::Zstd, 1, 19),
    ] {
        let (l, d, h) = (
            stored(codec, Some(low)),
            stored(codec, None),
            stored(codec, Some(high)),
        );
        assert!(
            h < l && h <= d,
            "{codec}: level {high} {h} B, default {d} B, level {low} {l} B"
        );
    }
}

#[test]
fn every_codec_reaches_the_broker_intact() {
    for codec in crate::Compression::ALL {
        let config = crate::Config {
            compression: codec,
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        let hs: Vec<_> = (0..50u32)
            .map(|i| {
                let v = format!("value-{i}-{}", "x".repeat(i as usize));
                sim.send("t", Some(0), Some(&i.to_be_bytes()), Some(v.as_bytes()))
                    .unwrap()
            })
            .collect();
        sim.drive();
        for h in hs {
            h.wait().unwrap();
        }
        let log = log(&sim, 0);
        assert_eq!(log.len(), 50, "{codec:?}");
        for (i, r) in log.iter().enumerate() {
            assert_eq!(r.key.as_deref(), Some(&(i as u32).to_be_bytes()[..]));
            let want = format!("value-{i}-{}", "x".repeat(i));
            assert_eq!(r.value.as_deref(), Some(want.as_bytes()), "{codec:?}");
        }
    }
}

#[test]
fn headers_timestamps_and_null_values_reach_the_broker() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, None).unwrap();
    sim.drive();
    let headers = [kring_protocol::record::Header {
        key: "h1",
        value: Some(b"v1"),
    }];
    let now = sim.now;
    let o = sim
        .shared
        .append(
            now,
            crate::RecordRef {
                topic: "t",
                partition: Some(0),
                key: Some(b"k"),
                value: None,
                headers: &headers,
                timestamp_ms: 1_234_567,
                context: 0,
            },
            now,
        )
        .unwrap();
    sim.drive();
    let md = o.delivery.wait().unwrap();
    assert_eq!(md.timestamp_ms, 1_234_567);
    let log = log(&sim, 0);
    assert_eq!(log[0].value, None);
    assert_eq!(log[1].value, None);
    assert_eq!(log[1].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(log[1].timestamp, 1_234_567);
    assert_eq!(
        log[1].headers,
        vec![("h1".to_string(), Some(bytes::Bytes::from_static(b"v1")))]
    );
}

#[test]
fn core_and_shared_cross_threads() {
    fn send<T: Send + 'static>() {}
    fn sync<T: Send + Sync + 'static>() {}
    send::<crate::ProducerCore>();
    sync::<crate::Shared>();
    sync::<crate::DeliveryHandle>();
    sync::<crate::FlushHandle>();
}

/// `batch.num.messages` caps the records per batch: 10 records with a cap
/// of 3 go as batches of 3, 3, 3 and 1, in order.
#[test]
fn batch_num_messages_caps_records_per_batch() {
    let config = crate::Config {
        batch_num_messages: 3,
        linger: ms(50),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let hs: Vec<_> = (0..10u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).expect("send"))
        .collect();
    sim.drive_bounded(500);
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.try_result().expect("done").expect("ok").offset, i as i64);
    }
    assert_eq!(sim.core.stats().batches_sent, 4);
    let log = log(&sim, 0);
    assert_eq!(log.len(), 10);
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(&[i as u8][..]));
    }
}
