//! Point 2: batching in the accumulator, size limits, buffer memory,
//! concurrent appends.

use super::*;
use crate::error::SendError;
use crate::{Config, RecordRef};
use std::sync::Arc;

#[test]
fn full_batches_are_sent_without_waiting_for_linger() {
    let config = Config {
        linger: ms(10_000),
        batch_size: 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    // 108-byte records: 8 per 1 KiB batch (61-byte header), sealed when
    // the 9th does not fit. 44 records: 5 full batches and 4 lingering.
    let hs: Vec<_> = (0..44)
        .map(|_| sim.send("t", Some(0), None, Some(&[7u8; 100])).unwrap())
        .collect();
    let t0 = sim.now;
    // Full batches go at once; the last, partial one waits for its linger.
    sim.drive_until(1000, |_| {
        hs.iter().filter(|h| h.try_result().is_some()).count() >= 40
    });
    assert!(
        sim.now - t0 < ms(1000),
        "full batches waited: {:?}",
        sim.now - t0
    );
    assert_eq!(hs.iter().filter(|h| h.try_result().is_some()).count(), 40);
    sim.drive();
    assert!(
        sim.now - t0 >= ms(10_000),
        "the partial batch honours linger"
    );
    assert_eq!(log(&sim, 0).len(), 44);
    assert!(sim.core.stats().batches_sent >= 5);
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, i as i64);
    }
}

#[test]
fn records_too_large_fail_at_send() {
    let config = Config {
        max_request_size: 1000,
        batch_size: 1000,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    match sim.send("t", Some(0), None, Some(&[0u8; 2000])) {
        Err(SendError::RecordTooLarge {
            size,
            limit,
            setting,
        }) => {
            assert!(size > 2000);
            assert_eq!(limit, 1000);
            assert_eq!(setting, "max.request.size");
        }
        other => panic!("{other:?}"),
    }
    let config = Config {
        buffer_memory: 20_000,
        batch_size: 1000,
        max_request_size: 100_000,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    assert!(matches!(
        sim.send("t", Some(0), None, Some(&[0u8; 30_000])),
        Err(SendError::RecordTooLarge {
            setting: "buffer.memory",
            ..
        })
    ));
    // A record larger than batch.size but within limits gets its own batch.
    let h = sim.send("t", Some(0), None, Some(&[1u8; 5000])).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 0);
    assert_eq!(sim.shared.buffered_bytes(), 0, "memory returned");
}

/// At the edge of `buffer.memory`: a record whose one-record batch is
/// exactly the pool's size is sent (it can be charged), one byte more
/// fails at once with `RecordTooLarge`, and no size in between blocks or
/// reports a size within the limit.
#[test]
fn a_record_as_large_as_buffer_memory_is_sent() {
    const LIMIT: usize = 20_000;
    let config = Config {
        buffer_memory: LIMIT,
        batch_size: 1000,
        max_request_size: 100_000,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    learn_metadata(&mut sim);
    let (mut sent, mut refused) = (None, None);
    for len in (LIMIT - 100..LIMIT).rev() {
        let t0 = sim.now;
        match sim.send("t", Some(0), None, Some(&vec![1u8; len])) {
            Ok(h) => {
                assert_eq!(sim.now, t0, "{len}: waited for memory");
                sim.drive();
                h.wait().expect("delivered");
                sent = Some(len);
                break;
            }
            Err(SendError::RecordTooLarge {
                size,
                limit,
                setting: "buffer.memory",
            }) => {
                assert_eq!(limit, LIMIT);
                assert!(size > LIMIT, "{len}: refused at {size}");
                refused = Some((len, size));
            }
            Err(e) => panic!("{len}: {e:?}"),
        }
    }
    let (sent, (refused, size)) = (sent.expect("one fits"), refused.expect("one is refused"));
    assert_eq!(refused, sent + 1);
    assert_eq!(size, LIMIT + 1, "the largest sent is exactly the limit");
    assert_eq!(sim.shared.buffered_bytes(), 0, "memory returned");
}

/// A batch whose buffer doubles to exactly `buffer.memory` may grow (the
/// growth fits), so one batch takes the whole pool: 16 KiB of memory and
/// of `batch.size`, 100-byte records into one partition, all in one batch
/// until it is full.
#[test]
fn a_batch_may_grow_to_all_of_buffer_memory() {
    const LIMIT: usize = 16 * 1024;
    let config = Config {
        buffer_memory: LIMIT,
        batch_size: LIMIT,
        linger: ms(1000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    learn_metadata(&mut sim);
    let now = sim.now;
    let mut hs = Vec::new();
    for i in 0..140 {
        match sim.shared.append(now, record_ref(0, &[3u8; 100]), now) {
            Ok(o) => hs.push(o.delivery),
            Err(e) => panic!("record {i}: {e:?}"),
        }
    }
    assert_eq!(sim.shared.buffered_bytes(), LIMIT);
    sim.drive();
    for h in &hs {
        h.wait().expect("delivered");
    }
    let batches = sim.cluster.batches("t", 0).unwrap();
    let records: Vec<i64> = batches
        .iter()
        .map(|b| b.last_offset - b.base_offset + 1)
        .collect();
    assert_eq!(records, [1, 140], "the warm-up's batch, then one");
}

#[test]
fn buffer_memory_is_accounted_per_batch_and_returned() {
    let config = Config {
        buffer_memory: 4096,
        batch_size: 1024,
        linger: ms(50),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    // Four partitions, one batch each: a one-record batch is charged a
    // small buffer, not batch.size...
    for p in 0..4 {
        sim.send("t", Some(p), None, Some(b"x")).unwrap();
    }
    assert_eq!(sim.shared.buffered_bytes(), 4 * 256);
    // ...and grows with its records, until the four fill most of the pool
    // (a new batch for a 1,000-byte record needs more than 1 KiB).
    for p in 0..4 {
        sim.send("t", Some(p), None, Some(&[7u8; 800])).unwrap();
    }
    let used = sim.shared.buffered_bytes();
    assert!(used > 3 * 1024 && used <= 4096, "{used}");
    // A fifth batch does not fit: with a deadline of "now" it fails.
    let now = sim.now;
    let r = sim.shared.append(
        now,
        RecordRef {
            topic: "t",
            partition: Some(0),
            key: None,
            value: Some(&[0u8; 1000]),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        },
        now,
    );
    assert!(
        matches!(r, Err(SendError::BufferFull { limit: 4096, .. })),
        "{r:?}"
    );
    // Appending into an open batch needs no new memory.
    sim.send("t", Some(1), None, Some(b"y")).unwrap();
    sim.drive();
    assert_eq!(sim.shared.buffered_bytes(), 0);
    // The blocked path: the sim plays the wait by running the I/O side.
    sim.send("t", Some(0), None, Some(&[0u8; 1000])).unwrap();
}

/// A producer thread blocked on buffer.memory is released when batches
/// complete (the condvar, not a poll loop).
#[test]
fn blocked_append_is_released_by_completion() {
    let config = Config {
        buffer_memory: 2048,
        batch_size: 1024,
        linger: ms(50),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    // Two batches of about 1 KiB each fill the 2 KiB pool.
    sim.send("t", Some(0), None, Some(&[1u8; 900])).unwrap();
    sim.send("t", Some(1), None, Some(&[2u8; 900])).unwrap();
    assert_eq!(sim.shared.buffered_bytes(), 2048);
    let shared = sim.shared.clone();
    let now = sim.now;
    let far = now + std::time::Duration::from_secs(3600);
    let t = std::thread::spawn(move || {
        shared
            .append(
                now,
                RecordRef {
                    topic: "t",
                    partition: Some(0),
                    key: None,
                    value: Some(&[9u8; 1000]),
                    headers: &[],
                    timestamp_ms: 0,
                    context: 0,
                },
                far,
            )
            .map(|o| o.partition)
    });
    // Wait (without sleeping) until the thread is blocked on the pool...
    while sim.shared.pool.waiters() == 0 {
        assert!(!t.is_finished(), "the append did not block");
        std::thread::yield_now();
    }
    // ...then let the batches complete: that releases it.
    sim.drive();
    assert_eq!(t.join().unwrap().unwrap(), 0);
    sim.drive();
}

/// Several threads appending concurrently: every record is delivered
/// exactly once, in per-thread order within each partition.
#[test]
fn concurrent_appends_deliver_everything_once() {
    let config = Config {
        linger: ms(1),
        batch_size: 4096,
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 16);
    sim.send("t", Some(0), None, Some(b"warm-up")).unwrap();
    sim.drive();
    let shared = sim.shared.clone();
    let now = sim.now;
    let threads: Vec<_> = (0..4u8)
        .map(|tid| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut hs = Vec::new();
                for i in 0..2000u32 {
                    let mut v = vec![tid];
                    v.extend_from_slice(&i.to_be_bytes());
                    let o = shared
                        .append(
                            now,
                            RecordRef {
                                topic: "t",
                                partition: Some((i % 16) as i32),
                                key: None,
                                value: Some(&v),
                                headers: &[],
                                timestamp_ms: 0,
                                context: 0,
                            },
                            now,
                        )
                        .expect("append");
                    hs.push(o.delivery);
                }
                hs
            })
        })
        .collect();
    let handles: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    sim.drive();
    for h in &handles {
        h.try_result().expect("has a result").expect("delivered");
    }
    let mut total = 0;
    for p in 0..16 {
        let log = log(&sim, p);
        total += log.len();
        let mut last = [None::<u32>; 4];
        for r in log
            .iter()
            .filter(|r| r.value.as_deref() != Some(&b"warm-up"[..]))
        {
            let v = r.value.as_ref().unwrap();
            let (tid, i) = (v[0] as usize, u32::from_be_bytes([v[1], v[2], v[3], v[4]]));
            assert!(
                last[tid].is_none_or(|l| l < i),
                "order within a partition per thread"
            );
            last[tid] = Some(i);
        }
    }
    assert_eq!(total, 8001);
}

#[test]
fn keyless_records_stick_to_a_partition_then_switch() {
    let config = Config {
        linger: ms(1000),
        batch_size: 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    let hs: Vec<_> = (0..120)
        .map(|_| sim.send("t", None, None, Some(&[0u8; 100])).unwrap())
        .collect();
    sim.drive();
    let parts: Vec<i32> = hs.iter().map(|h| h.wait().unwrap().partition).collect();
    // Runs: the partition changes only after batches' worth of bytes.
    let mut runs = vec![1usize];
    for w in parts.windows(2) {
        if w[0] == w[1] {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
        }
    }
    assert!(runs.len() >= 4, "it switches: {parts:?}");
    // 108-byte records: 8 fill a 1,024-byte batch short of full, so the
    // 9th opens a batch of its own, which is never full by size either;
    // the switch comes at twice batch.size (KIP-794): runs of 19, the last
    // leaving a batch of 3 (the last run may be shorter).
    for r in &runs[..runs.len() - 1] {
        assert!((17..=20).contains(r), "run lengths {runs:?}");
    }
}

#[test]
fn keyed_records_follow_murmur2() {
    let mut sim = sim_with(cfg(), 1, 7);
    let h = sim.send("t", None, Some(b"foobar"), Some(b"v")).unwrap();
    sim.drive();
    let want = crate::partitioner::partition_for_key(b"foobar", 7) as i32;
    assert_eq!(h.wait().unwrap().partition, want);
}
