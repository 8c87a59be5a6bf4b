//! A batch the broker refuses as too large (MESSAGE_TOO_LARGE, over the
//! topic's `max.message.bytes`) is split in two and the parts are sent
//! again, until every record is written or stands alone; a record too
//! large alone fails with `MessageTooLarge`. Order, offsets and sequences
//! hold, with and without idempotence.

use std::sync::{Arc, Mutex};

use super::*;
use crate::config::Acks;
use crate::delivery::{DeliveryError, DeliveryReport, MessageStatus};
use crate::{Config, DeliveryHandle};
use kring_protocol::record::Compression;
use kring_protocol::ErrorCode;

/// A record value: its number, then `len - 4` filler bytes (varied, so a
/// compressed batch stays large).
pub(super) fn value(i: u32, len: usize) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

fn number(v: &[u8]) -> u32 {
    u32::from_be_bytes(v[..4].try_into().unwrap())
}

fn send_all(sim: &mut MockSim, range: std::ops::Range<u32>, len: usize) -> Vec<DeliveryHandle> {
    range
        .map(|i| sim.send("t", Some(0), None, Some(&value(i, len))).unwrap())
        .collect()
}

/// Every handle resolved `Ok`, the log holds each record once, in send
/// order, at consecutive offsets, and each handle names its record's
/// offset.
fn assert_delivered_in_order(sim: &MockSim, hs: &[DeliveryHandle], first: u32) {
    let log = log(sim, 0);
    let numbers: Vec<u32> = log
        .iter()
        .map(|r| number(r.value.as_deref().unwrap()))
        .collect();
    let want: Vec<u32> = (first..first + hs.len() as u32).collect();
    for w in &want {
        let n = numbers.iter().filter(|&&x| x == *w).count();
        assert_eq!(n, 1, "record {w} stored {n} times: {numbers:?}");
    }
    let start = numbers.iter().position(|&x| x == first).unwrap();
    assert!(
        start + hs.len() <= numbers.len(),
        "not in send order: {numbers:?}"
    );
    assert_eq!(
        &numbers[start..start + hs.len()],
        &want[..],
        "stored in send order"
    );
    let base = log[start].offset;
    for (i, h) in hs.iter().enumerate() {
        let md = h.wait().unwrap_or_else(|e| panic!("record {i}: {e}"));
        let stored = &log[start + i];
        assert_eq!(stored.offset, base + i as i64, "consecutive offsets");
        assert_eq!(
            md.offset, stored.offset,
            "record {i}'s handle names its offset"
        );
    }
}

fn limited(config: Config, max_message_bytes: usize) -> MockSim {
    sim_on(config, cluster(1, 1).max_message_bytes(max_message_bytes))
}

/// The e2e case: 40 records of 500 B lingered into one batch of ~20 KB on
/// a topic taking 4,000 B batches (below `batch.size`, where the Java
/// client's re-packing into `batch.size` pieces would not converge).
#[test]
fn records_that_fit_but_batch_does_not_are_all_delivered() {
    let config = Config {
        linger: ms(50),
        batch_size: 64 * 1024,
        ..cfg()
    };
    let mut sim = limited(config, 4000);
    let hs = send_all(&mut sim, 0..40, 500);
    sim.drive();
    assert_delivered_in_order(&sim, &hs, 0);
    let st = sim.core.stats();
    eprintln!(
        "splits {}, batches ok {}, failed {}",
        st.batches_split, st.batches_ok, st.batches_failed
    );
    // Each split halves the records by size: 40 → 2 × 20 → 4 × 10 → 8 × 5
    // (parts under 4,000 B), 7 splits. Cutting one record off at a time
    // would take 39 requests' worth of refusals.
    assert_eq!(
        st.batches_split, 7,
        "split in halves down to parts under 4000 B"
    );
    assert_eq!(st.batches_failed, 0);
    assert_eq!(sim.shared.buffered_bytes(), 0, "every part's memory back");
}

#[test]
fn split_without_idempotence_keeps_order_with_one_in_flight() {
    let config = Config {
        linger: ms(50),
        enable_idempotence: false,
        acks: Acks::All,
        max_in_flight: 1,
        ..cfg()
    };
    let mut sim = limited(config, 3000);
    let hs = send_all(&mut sim, 0..30, 400);
    sim.drive();
    let more = send_all(&mut sim, 30..60, 400);
    sim.drive();
    assert_delivered_in_order(&sim, &hs, 0);
    assert_delivered_in_order(&sim, &more, 30);
    assert!(sim.core.stats().batches_split > 0);
    assert_eq!(sim.shared.buffered_bytes(), 0);
    // The parts are restamped without producer state, as the batch was.
    for r in log(&sim, 0) {
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.base_sequence),
            (-1, -1, -1)
        );
    }
}

/// With idempotence and requests pipelined: the refused batch is followed
/// by batches already in flight with later sequences. The parts take the
/// refused batch's sequence range; the batches behind get
/// OUT_OF_ORDER_SEQUENCE_NUMBER and are sent again after the parts.
/// Nothing is duplicated, nothing reordered, no epoch bump is needed.
#[test]
fn split_ahead_of_pipelined_batches_keeps_their_sequences() {
    let config = Config {
        linger: ms(0),
        batch_size: 1000,
        max_in_flight: 5,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    // One batch acknowledged first: the partition pipelines from then on.
    let w = send_all(&mut sim, 0..1, 100);
    sim.drive();
    w[0].wait().unwrap();
    // The next attempt (the first of five pipelined batches) is refused.
    fail_produce(&sim, 0, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let hs = send_all(&mut sim, 1..46, 100);
    sim.drive();
    let produce_attempts = requests(&sim, kring_protocol::messages::ApiKey::Produce);
    assert_delivered_in_order(&sim, &hs, 1);
    let st = sim.core.stats();
    eprintln!(
        "produce attempts {produce_attempts}, splits {}, retries {}, epoch bumps {}",
        st.batches_split, st.retries, st.epoch_bumps
    );
    assert_eq!(st.batches_split, 1);
    assert_eq!(st.epoch_bumps, 0, "the sequences stayed valid");
    assert!(
        st.retries > 0,
        "the batches behind the split one were refused and re-sent"
    );
    // Every stored batch kept producer id and epoch; sequences are
    // consecutive across the records.
    let log = log(&sim, 0);
    let epochs: std::collections::BTreeSet<i16> = log.iter().map(|r| r.producer_epoch).collect();
    assert_eq!(epochs.len(), 1, "{epochs:?}");
}

/// A record too large alone among records that fit: the batch is halved
/// until it stands alone; it fails with `MessageTooLarge` (not persisted)
/// and every other record is delivered in order.
#[test]
fn a_record_too_large_alone_fails_and_the_others_are_delivered() {
    for idempotence in [true, false] {
        let config = Config {
            linger: ms(50),
            enable_idempotence: idempotence,
            acks: Acks::All,
            max_in_flight: if idempotence { 5 } else { 1 },
            ..cfg()
        };
        let mut sim = limited(config, 1500);
        let mut hs = send_all(&mut sim, 0..5, 200);
        let big = sim
            .send("t", Some(0), None, Some(&value(999, 3000)))
            .unwrap();
        hs.extend(send_all(&mut sim, 5..10, 200));
        sim.drive();
        match big.wait() {
            Err(e @ DeliveryError::MessageTooLarge { .. }) => {
                assert_eq!(e.status(), MessageStatus::NotPersisted, "{e}");
                eprintln!("idempotence {idempotence}: {e}");
            }
            other => panic!("the big record: {other:?}"),
        }
        assert_delivered_in_order(&sim, &hs, 0);
        // The producer goes on.
        let after = send_all(&mut sim, 10..12, 200);
        sim.drive();
        assert_delivered_in_order(&sim, &after, 10);
        assert_eq!(sim.shared.buffered_bytes(), 0);
    }
}

/// The callback hears of each record exactly once, with its index in the
/// original batch and the offset its handle reports.
#[test]
fn callback_reports_each_record_once_after_a_split() {
    let seen: Arc<Mutex<Vec<(u32, i64)>>> = Arc::default();
    let s2 = seen.clone();
    let config = Config {
        linger: ms(50),
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let off = r.result.as_ref().map(|m| m.offset).unwrap_or(-2);
            s2.lock().unwrap().push((r.index, off));
        })),
        ..cfg()
    };
    let mut sim = limited(config, 2500);
    let hs = send_all(&mut sim, 0..20, 300);
    sim.drive();
    assert_delivered_in_order(&sim, &hs, 0);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    let want: Vec<(u32, i64)> = hs
        .iter()
        .map(|h| (h.index(), h.wait().unwrap().offset))
        .collect();
    assert_eq!(seen, want);
    assert!(sim.core.stats().batches_split > 0);
}

/// Compressed batches are split too (decompressed, halved, compressed
/// again).
#[test]
fn compressed_batches_are_split() {
    for compression in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let config = Config {
            linger: ms(50),
            compression,
            ..cfg()
        };
        let mut sim = limited(config, 3000);
        let hs = send_all(&mut sim, 0..30, 400);
        sim.drive();
        assert_delivered_in_order(&sim, &hs, 0);
        assert!(
            sim.core.stats().batches_split > 0,
            "{compression:?}: incompressible values make the batch too large"
        );
    }
}

/// A flush waits for every part of a split batch.
#[test]
fn flush_waits_for_every_part() {
    let config = Config {
        linger: ms(5_000),
        ..cfg()
    };
    let mut sim = limited(config, 2000);
    let hs = send_all(&mut sim, 0..16, 400);
    let f = sim.flush();
    sim.drive_until(100_000, |_| f.is_done());
    for h in &hs {
        assert!(h.try_result().is_some(), "flush done before a record");
    }
    assert_delivered_in_order(&sim, &hs, 0);
}

/// The answer to a too-large batch is lost (the connection drops after
/// the broker refused it), so its fate is unknown when the retry is
/// refused too. With idempotence it is not split — parts under narrower
/// sequence ranges could duplicate it, were it in the log — and fails as
/// possibly persisted; without idempotence (at least once) it is split
/// and delivered.
#[test]
fn a_refused_batch_of_unknown_fate_is_split_only_without_idempotence() {
    for idempotence in [true, false] {
        let config = Config {
            linger: ms(50),
            enable_idempotence: idempotence,
            acks: Acks::All,
            max_in_flight: if idempotence { 5 } else { 1 },
            ..cfg()
        };
        let mut sim = limited(config, 3000);
        let w = send_all(&mut sim, 0..1, 100);
        sim.drive();
        w[0].wait().unwrap();
        sim.cluster.inject(kring_mock::Fault::drop_after_apply(
            kring_protocol::messages::ApiKey::Produce,
        ));
        let hs = send_all(&mut sim, 1..21, 400);
        sim.drive();
        if idempotence {
            for h in &hs {
                match h.wait() {
                    Err(e @ DeliveryError::MessageTooLarge { .. }) => {
                        assert_eq!(e.status(), MessageStatus::PossiblyPersisted, "{e}")
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(log(&sim, 0).len(), 1);
            // The producer goes on.
            let more = send_all(&mut sim, 21..23, 100);
            sim.drive();
            assert_delivered_in_order(&sim, &more, 21);
        } else {
            assert_delivered_in_order(&sim, &hs, 1);
        }
    }
}

/// Without idempotence, one request in flight: a part of a split batch
/// that fails with a retriable error goes back ahead of the later parts
/// (the retry queue keeps the records' order), so order holds.
#[test]
fn a_retried_part_stays_ahead_of_later_parts_without_idempotence() {
    let config = Config {
        linger: ms(50),
        enable_idempotence: false,
        acks: Acks::All,
        max_in_flight: 1,
        ..cfg()
    };
    let mut sim = limited(config, 3000);
    // The batch is refused (too large), then its first part meets a
    // retriable error.
    fail_produce_in_turn(
        &sim,
        0,
        &[ErrorCode::MESSAGE_TOO_LARGE, ErrorCode::NOT_ENOUGH_REPLICAS],
    );
    let hs = send_all(&mut sim, 0..30, 400);
    sim.drive();
    assert_delivered_in_order(&sim, &hs, 0);
}

/// One record of [`split_keeps_every_field_of_every_record`]: key, value,
/// headers and timestamp, varied (null key, null value, empty key, null
/// header value, timestamps before the batch's first).
type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

fn varied_records(n: u32) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let key = match i % 3 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("key-{i}").into_bytes()),
            };
            let v = value(i, 300);
            let val = if i % 7 == 3 { None } else { Some(v) };
            let headers = (0..(i % 4))
                .map(|h| {
                    (
                        format!("h{h}"),
                        if h == 1 {
                            None
                        } else {
                            Some(vec![h as u8; h as usize * 5])
                        },
                    )
                })
                .collect();
            // Some earlier than the first record's, some far later.
            let ts = 1_700_000_000_000 + i64::from(i % 5) * 1_000 - 2_000 + i64::from(i) * 100_000;
            (key, val, headers, ts)
        })
        .collect()
}

/// A compressed batch of records with null keys and values, headers and
/// out-of-order timestamps is split (decompressed, halved, compressed
/// again) and every record is stored byte for byte as sent, for every
/// codec.
#[test]
fn split_keeps_every_field_of_every_record() {
    for compression in Compression::ALL {
        let config = Config {
            linger: ms(50),
            compression,
            ..cfg()
        };
        let mut sim = limited(config, 2500);
        let w = send_all(&mut sim, 0..1, 10);
        sim.drive();
        w[0].wait().unwrap();
        let recs = varied_records(30);
        let mut hs = Vec::new();
        for (k, v, h, ts) in &recs {
            let headers: Vec<kring_protocol::record::Header<'_>> = h
                .iter()
                .map(|(k, v)| kring_protocol::record::Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            let rec = crate::RecordRef {
                topic: "t",
                partition: Some(0),
                key: k.as_deref(),
                value: v.as_deref(),
                headers: &headers,
                timestamp_ms: *ts,
                context: 0,
            };
            let now = sim.now;
            hs.push(
                sim.shared
                    .append(now, rec, now + ms(60_000))
                    .unwrap()
                    .delivery,
            );
            sim.settle();
        }
        sim.drive();
        for (i, h) in hs.iter().enumerate() {
            h.wait()
                .unwrap_or_else(|e| panic!("{compression:?} record {i}: {e}"));
        }
        assert!(sim.core.stats().batches_split > 0, "{compression:?}");
        let stored = &log(&sim, 0)[1..];
        assert_eq!(stored.len(), recs.len(), "{compression:?}");
        for (i, (s, (k, v, h, ts))) in stored.iter().zip(&recs).enumerate() {
            assert_eq!(s.key.as_deref(), k.as_deref(), "{compression:?} key {i}");
            assert_eq!(
                s.value.as_deref(),
                v.as_deref(),
                "{compression:?} value {i}"
            );
            assert_eq!(s.timestamp, *ts, "{compression:?} timestamp {i}");
            let sh: Vec<(String, Option<Vec<u8>>)> = s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|b| b.to_vec())))
                .collect();
            assert_eq!(&sh, h, "{compression:?} headers {i}");
        }
        assert_eq!(sim.shared.buffered_bytes(), 0);
    }
}

/// A record exactly at `max.request.size` (batch header included) is sent
/// alone and delivered, even compressed past the limit; one byte more is
/// refused at once.
#[test]
fn a_record_exactly_at_max_request_size_is_delivered() {
    use kring_protocol::record::layout::HEADER_LEN;
    for compression in Compression::ALL {
        let config = Config {
            linger: ms(5),
            batch_size: 1000,
            max_request_size: 4000,
            compression,
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        let w = send_all(&mut sim, 0..1, 10);
        sim.drive();
        w[0].wait().unwrap();
        // Record: length varint (2) + attributes + ts delta + offset delta +
        // null key (1) + value length varint (2) + value + header count.
        let len = 4000 - HEADER_LEN - 2 - 1 - 1 - 1 - 1 - 2 - 1;
        let small = send_all(&mut sim, 1..3, 100);
        let h = sim.send("t", Some(0), None, Some(&value(3, len))).unwrap();
        let after = send_all(&mut sim, 4..6, 100);
        let too = sim.send("t", Some(0), None, Some(&value(9, len + 1)));
        assert!(
            matches!(too, Err(crate::SendError::RecordTooLarge { .. })),
            "{compression:?}: {too:?}"
        );
        sim.drive();
        h.wait().unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        for x in small.iter().chain(&after) {
            x.wait().unwrap();
        }
        let numbers: Vec<u32> = log(&sim, 0)
            .iter()
            .map(|r| number(r.value.as_deref().unwrap()))
            .collect();
        assert_eq!(numbers, vec![0, 1, 2, 3, 4, 5], "{compression:?}");
        assert_eq!(sim.shared.buffered_bytes(), 0);
    }
}

/// The callback gets each record's own context and timestamp back after
/// splits (the per-record table is divided between the parts).
#[test]
fn callback_gets_each_records_context_after_splits() {
    type Seen = Arc<Mutex<Vec<(u64, i64, i64)>>>;
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let config = Config {
        linger: ms(50),
        compression: Compression::Lz4,
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            let md = r.result.as_ref().unwrap();
            s2.lock()
                .unwrap()
                .push((r.context, md.offset, md.timestamp_ms));
        })),
        ..cfg()
    };
    let mut sim = limited(config, 2500);
    let w = sim
        .send_with_context("t", Some(0), None, Some(&value(0, 10)), 1000)
        .unwrap();
    sim.drive();
    w.wait().unwrap();
    seen.lock().unwrap().clear();
    for i in 1..41u32 {
        sim.send_with_context(
            "t",
            Some(0),
            None,
            Some(&value(i, 300)),
            1000 + u64::from(i),
        )
        .unwrap();
        // A new millisecond every few records: many timestamp runs.
        if i % 3 == 0 {
            sim.now += ms(1);
        }
    }
    sim.drive();
    assert!(sim.core.stats().batches_split > 0);
    let stored = log(&sim, 0);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable_by_key(|s| s.1);
    assert_eq!(seen.len(), 40);
    for (ctx, off, ts) in seen {
        let r = &stored[off as usize];
        assert_eq!(
            u64::from(number(r.value.as_deref().unwrap())) + 1000,
            ctx,
            "offset {off}"
        );
        assert_eq!(r.timestamp, ts, "offset {off}");
    }
}

/// A record too large alone first or last in its batch, with later
/// batches of the partition pipelined behind it (idempotence, five in
/// flight) and compressed: it fails alone, everything else is delivered in
/// order.
#[test]
fn a_too_large_record_at_either_end_fails_alone_with_batches_behind() {
    for compression in [Compression::None, Compression::Lz4] {
        for big_at in [0usize, 9] {
            let config = Config {
                linger: ms(5),
                batch_size: 2048,
                compression,
                ..cfg()
            };
            let mut sim = limited(config, 1500);
            let w = send_all(&mut sim, 0..1, 10);
            sim.drive();
            w[0].wait().unwrap();
            let mut hs = Vec::new();
            let mut big = None;
            let mut n = 1u32;
            for i in 0..10 {
                if i == big_at {
                    big = Some(
                        sim.send("t", Some(0), None, Some(&value(999, 1800)))
                            .unwrap(),
                    );
                } else {
                    hs.push(sim.send("t", Some(0), None, Some(&value(n, 200))).unwrap());
                    n += 1;
                }
            }
            // Batches behind it, sealed full or lingered, while it is in flight.
            sim.run_for(ms(6));
            for _ in 0..20 {
                hs.push(sim.send("t", Some(0), None, Some(&value(n, 200))).unwrap());
                n += 1;
            }
            sim.drive();
            match big.unwrap().wait() {
                Err(DeliveryError::MessageTooLarge { .. }) => {}
                other => panic!("{compression:?} at {big_at}: {other:?}"),
            }
            assert_delivered_in_order(&sim, &hs, 1);
            assert_eq!(sim.shared.buffered_bytes(), 0);
        }
    }
}
