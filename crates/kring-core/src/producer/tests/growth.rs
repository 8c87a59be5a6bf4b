//! Batches that keep growing after linger while their broker has no free
//! in-flight slot, and `buffer.memory` charged by buffer capacity.

use super::*;
use crate::error::SendError;
use crate::topics::TopicStatus;
use crate::{Config, RecordRef};
use kring_mock::StoredRecord;
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;

fn produce_count(sim: &MockSim) -> usize {
    requests(sim, ApiKey::Produce) as usize
}

/// Sum of the buffer capacities of the open batches of topic `t`.
fn open_capacity(sim: &MockSim) -> usize {
    let map = sim.shared.topics.snapshot();
    let t = map.by_name.get("t").expect("topic");
    assert_eq!(t.status, TopicStatus::Ready);
    t.partitions
        .iter()
        .map(|s| s.lock().open.as_ref().map_or(0, |o| o.builder.capacity()))
        .sum()
}

/// Warms up (metadata, connection, producer id) and slows the broker down,
/// then fills the connection's five in-flight slots with one request each
/// (partitions 1..=5, one linger apart). Returns the sim with node 1 slow.
fn sim_with_full_connection(config: Config) -> MockSim {
    let mut sim = sim_with(config, 1, 8);
    sim.send("t", Some(0), None, Some(b"warm-up")).unwrap();
    sim.drive();
    slow(&sim, 1, ms(1000));
    let before = produce_count(&sim);
    for p in 1..=5 {
        sim.send("t", Some(p), None, Some(b"busy")).unwrap();
        sim.run_for(ms(10));
    }
    assert_eq!(produce_count(&sim) - before, 5, "five requests in flight");
    sim
}

fn growth_case(compression: Compression) {
    let config = Config {
        linger: ms(5),
        compression,
        ..cfg()
    };
    let mut sim = sim_with_full_connection(config);
    let sent0 = sim.core.stats().batches_sent;
    let reqs0 = produce_count(&sim);
    // Partition 6's batch lingers out while no slot is free...
    let mut hs = vec![sim.send("t", Some(6), None, Some(b"r0")).unwrap()];
    sim.run_for(ms(50));
    assert_eq!(produce_count(&sim), reqs0, "no slot: nothing sent");
    // ...and keeps taking records while it waits.
    for i in 1..40u32 {
        hs.push(
            sim.send("t", Some(6), None, Some(format!("r{i}").as_bytes()))
                .unwrap(),
        );
        sim.run_for(ms(5));
    }
    assert_eq!(produce_count(&sim), reqs0, "still no slot");
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        let md = h.wait().expect("delivered");
        assert_eq!(md.offset, i as i64);
    }
    // One batch for partition 6: every record shares its base sequence.
    let log = log(&sim, 6);
    assert_eq!(log.len(), 40);
    let producer = |r: &StoredRecord| (r.producer_id, r.producer_epoch, r.base_sequence);
    assert!(
        log.iter().all(|r| producer(r) == producer(&log[0])),
        "{log:?}"
    );
    assert_eq!(
        sim.core.stats().batches_sent - sent0,
        1,
        "one batch, sent once"
    );
    assert_eq!(sim.shared.buffered_bytes(), 0, "memory returned");
}

#[test]
fn lingered_batch_grows_while_the_connection_is_full() {
    growth_case(Compression::None);
}

#[test]
fn lingered_batch_grows_and_is_compressed_when_taken() {
    growth_case(Compression::Lz4);
}

/// A due batch that grew stays bounded by `batch.size` (a full one is
/// sealed and the next one opens), and requests still respect
/// `max.request.size`: each takes the batches that fit.
#[test]
fn grown_batches_respect_batch_size_and_max_request_size() {
    let config = Config {
        linger: ms(5),
        batch_size: 2000,
        max_request_size: 3000,
        ..cfg()
    };
    let mut sim = sim_with_full_connection(config);
    let reqs0 = produce_count(&sim);
    let sent0 = sim.core.stats().batches_sent;
    let mut hs = Vec::new();
    // Two partitions, 30 records of 100 B each while nothing can be sent:
    // ~1,900 bytes per 2,000-byte batch, so two batches each (one sealed
    // full, one open and due).
    for i in 0..30u32 {
        for p in [6, 7] {
            hs.push(sim.send("t", Some(p), None, Some(&[i as u8; 100])).unwrap());
        }
        sim.run_for(ms(2));
    }
    assert_eq!(produce_count(&sim), reqs0);
    sim.drive();
    for h in &hs {
        h.wait().expect("delivered");
    }
    let batches = sim.core.stats().batches_sent - sent0;
    let requests = produce_count(&sim) - reqs0;
    assert_eq!(batches, 4, "two per partition");
    // Batches of ~1,900 and ~1,470 bytes: no two fit in a 3,000-byte
    // request, so each goes in its own.
    assert_eq!(requests, 4, "{requests} requests for the 4 new batches");
    for p in [6u32, 7] {
        let log = log(&sim, p);
        assert_eq!(log.len(), 30);
        let mut seqs: Vec<i32> = log.iter().map(|r| r.base_sequence).collect();
        seqs.dedup();
        assert_eq!(seqs.len(), 2, "partition {p}: two batches");
        for (i, r) in log.iter().enumerate() {
            assert_eq!(r.value.as_deref(), Some(&[i as u8; 100][..]));
        }
    }
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// Flush still seals a due batch that is waiting for a slot, and close
/// delivers it.
#[test]
fn flush_and_close_deliver_a_due_batch_waiting_for_a_slot() {
    let config = Config {
        linger: ms(5),
        ..cfg()
    };
    let mut sim = sim_with_full_connection(config);
    let h = sim.send("t", Some(6), None, Some(b"due")).unwrap();
    sim.run_for(ms(20));
    let flush = sim.flush();
    sim.settle();
    let after = sim.send("t", Some(6), None, Some(b"after")).unwrap();
    sim.drive_until(10_000, |_| flush.is_done());
    assert_eq!(h.wait().unwrap().offset, 0);
    let close = sim.close();
    sim.drive_until(10_000, |_| close.is_done());
    assert_eq!(after.wait().unwrap().offset, 1);
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// `buffer.memory` is charged by what a batch's buffer holds: a small
/// buffer when a batch opens, more only as it grows — not `batch.size` up
/// front.
#[test]
fn memory_charged_grows_with_bytes_not_batch_size() {
    let config = Config {
        linger: ms(60_000),
        batch_size: 64 * 1024,
        buffer_memory: 1024 * 1024,
        delivery_timeout: ms(120_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    for p in 0..8 {
        sim.send("t", Some(p), None, Some(b"x")).unwrap();
    }
    let small = sim.shared.buffered_bytes();
    assert_eq!(small, open_capacity(&sim), "charged = buffer capacity");
    assert!(
        small <= 8 * 4096,
        "8 one-record batches charged {small} (batch.size would be 8 x 65536)"
    );
    // Partition 0 grows: the charge follows its buffer.
    let mut last = small;
    let mut grew = 0;
    for _ in 0..50 {
        sim.send("t", Some(0), None, Some(&[5u8; 1000])).unwrap();
        let now = sim.shared.buffered_bytes();
        assert!(now >= last);
        if now > last {
            grew += 1;
        }
        last = now;
        assert_eq!(now, open_capacity(&sim), "charged = buffer capacity");
    }
    // ~51 KB written from a 256-byte start: the buffer grew a few times
    // (doubling: at most log2(64 KiB / 256) = 8), not per record.
    assert!((2..=8).contains(&grew), "grew {grew} times");
    assert!(last >= 7 * 61 + 50 * 1000);
    assert!(last < 8 * 4096 + 128 * 1024);
    let close = sim.close();
    sim.drive_until(10_000, |_| close.is_done());
    assert_eq!(sim.shared.buffered_bytes(), 0, "released exactly");
}

/// A partition's next batch starts with a buffer the size its previous
/// batch reached plus a quarter (whole cache lines, at most batch.size): a busy partition
/// allocates once per batch, a sparse one stays small.
#[test]
fn a_new_batch_is_sized_like_the_partitions_last() {
    let config = Config {
        linger: ms(5),
        batch_size: 16 * 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    let cap = |sim: &MockSim, p: usize| {
        let map = sim.shared.topics.snapshot();
        let t = map.by_name.get("t").expect("topic");
        let q = t.partitions[p].lock();
        q.open.as_ref().map(|o| o.builder.capacity())
    };
    sim.send("t", Some(0), None, Some(b"first")).unwrap();
    assert_eq!(cap(&sim, 0), Some(256), "no history: the smallest buffer");
    for _ in 0..60 {
        sim.send("t", Some(0), None, Some(&[4u8; 100])).unwrap();
    }
    sim.drive();
    // The last batch held ~6.7 KB: the next wants room for a quarter more
    // (8,320 B, rounded up to the pool's size class: 10,240 B). The last
    // batch's own buffer (grown to 8,192 B) is spare and over half that:
    // reused, charged by its capacity.
    sim.send("t", Some(0), None, Some(b"next")).unwrap();
    assert_eq!(cap(&sim, 0), Some(8192));
    sim.send("t", Some(1), None, Some(b"other")).unwrap();
    assert_eq!(
        cap(&sim, 1),
        Some(256),
        "another partition's history is its own"
    );
    assert_eq!(sim.shared.buffered_bytes(), 8192 + 256);
    sim.drive();
    // That one-record batch is the history now: back to small.
    sim.send("t", Some(0), None, Some(b"sparse")).unwrap();
    assert_eq!(cap(&sim, 0), Some(256));
    sim.drive();
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// A batch that must grow while the pool is full blocks (or fails with
/// BufferFull at its deadline) like a new batch does, and proceeds once
/// memory comes back.
#[test]
fn growth_blocks_on_buffer_memory() {
    let config = Config {
        linger: ms(50),
        batch_size: 8192,
        buffer_memory: 8192,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    sim.send("t", Some(0), None, Some(b"a")).unwrap();
    sim.send("t", Some(1), None, Some(b"b")).unwrap();
    assert_eq!(sim.shared.buffered_bytes(), 512, "two 256-byte buffers");
    let big = [3u8; 3000];
    // Each partition grows to hold 3 KB (about 6.3 KiB charged in all); a
    // second 3 KB in partition 0 must grow it again, past the 8 KiB pool.
    sim.send("t", Some(0), None, Some(&big)).unwrap();
    sim.send("t", Some(1), None, Some(&big)).unwrap();
    assert_eq!(sim.shared.buffered_bytes(), open_capacity(&sim));
    let now = sim.now;
    let r = sim.shared.append(
        now,
        RecordRef {
            topic: "t",
            partition: Some(0),
            key: None,
            value: Some(&big),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        },
        now,
    );
    assert!(
        matches!(r, Err(SendError::BufferFull { limit: 8192, .. })),
        "{r:?}"
    );
    // Played blocking: the sim runs the I/O side until memory is free.
    let h = sim.send("t", Some(0), None, Some(&big)).unwrap();
    sim.drive();
    h.wait().unwrap();
    assert_eq!(log(&sim, 0).len(), 3);
    assert_eq!(log(&sim, 1).len(), 2);
    assert_eq!(sim.shared.buffered_bytes(), 0);
}
/// `t` with 8 partitions and a record delivered; `buffer.memory` 64 KiB,
/// batches of 16 KiB that linger 30 s (so `fill_memory` fills it).
fn lingering_8_partitions_64k() -> MockSim {
    let config = Config {
        linger: ms(30_000),
        buffer_memory: 64 * 1024,
        batch_size: 16 * 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    sim.send("t", Some(0), None, Some(b"warm")).unwrap();
    sim.drive();
    sim
}

/// `buffer.memory` is taken by lingering batches (linger.ms 30 s) and a
/// sender blocks for memory: batches lingering more than 100 ms longer
/// become due at once to make room
/// (`Notice::MemoryWanted`), as the Java client's accumulator treats every
/// batch as ready while a sender waits for memory
/// (`RecordAccumulator.ready`: `exhausted`). Before, the sender stayed
/// blocked until linger.ms expired (and with linger.ms above max.block.ms
/// failed with BufferFull though nothing was wrong). The blocked sender is
/// a real thread (`Sim::send` never blocks); the test waits for it to
/// block, not for a timer.
#[test]
fn a_sender_blocked_for_memory_does_not_wait_out_linger() {
    let mut sim = lingering_8_partitions_64k();
    let sent = fill_memory(&sim, 8, 2000);
    assert!(sent > 8, "memory full after {sent} records");
    sim.settle();
    // To the partition whose next record found no memory.
    let (t, rx) = blocked_sender(&sim, (sent % 8) as i32, 2000, Duration::from_secs(20));
    sim.run_for(ms(1_000));
    let got = rx.recv_timeout(Duration::from_secs(10)).map(|r| r.is_ok());
    // Let linger expire so the blocked thread ends either way.
    sim.run_for(ms(31_000));
    t.join().unwrap();
    assert_eq!(
        got,
        Ok(true),
        "blocked for memory 1 s after the sender began waiting (linger.ms 30 s)"
    );
    // What the blocked sender reserved was charged exactly: once all is
    // delivered and the producer closed, the pool holds nothing.
    let c = sim.close();
    sim.drive_until(100_000, |_| c.is_done());
    assert!(sim.core.is_finished());
    assert_eq!(
        (sim.shared.pool.used(), sim.shared.pool.spare_bytes()),
        (0, 0)
    );
}

/// The clock a driver installs (`Shared::set_clock`) bounds the whole of an
/// append by `max.block.ms`: a wait for memory gets only what is left of
/// the budget when it begins (here nothing: the clock reads past the
/// deadline, as after a long wait for metadata), not the budget the append
/// started with. The append runs on a thread of its own: without the
/// clock it would block for the whole minute.
#[test]
fn a_wait_for_memory_gets_only_what_is_left_of_max_block() {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    static AHEAD_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    fn clock() -> std::time::Instant {
        *BASE.get().expect("set") + ms(AHEAD_MS.load(std::sync::atomic::Ordering::SeqCst))
    }
    let sim = lingering_8_partitions_64k();
    BASE.set(sim.now).unwrap();
    sim.shared.set_clock(clock);
    let sent = fill_memory(&sim, 8, 2000);
    assert!(sent > 8, "memory full after {sent} records");
    // 61 s of the append's 60 s budget are gone.
    AHEAD_MS.store(61_000, std::sync::atomic::Ordering::SeqCst);
    let shared = sim.shared.clone();
    let (now, p) = (sim.now, (sent % 8) as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let v = vec![8u8; 2000];
        let r = shared.append(now, record_ref(p, &v), now + ms(60_000));
        let _ = tx.send(r.map(|o| o.partition));
    });
    let r = rx.recv_timeout(Duration::from_secs(10));
    assert!(matches!(r, Ok(Err(SendError::BufferFull { .. }))), "{r:?}");
    t.join().unwrap();
}

/// The same with a non-blocking send (`try_produce_now`, behind
/// `Producer::try_send`): refused with `BufferFull`, it asks the I/O
/// thread for memory as a blocked sender does, so the lingering batches
/// (linger.ms 10 s) go now and memory is back within milliseconds, not
/// at their linger. Refused again and again before the I/O thread read
/// the request, it asks once: one notice, however many refusals.
#[test]
fn a_refused_try_send_asks_for_memory_once() {
    let config = Config {
        linger: ms(10_000),
        buffer_memory: 16 * 1024,
        batch_size: 4 * 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    sim.send("t", Some(0), None, Some(b"warm")).unwrap();
    sim.flush();
    sim.drive();
    let sent = fill_memory(&sim, 4, 1000);
    assert!(sent > 4, "memory full after {sent} records");
    let full = sim.shared.buffered_bytes();
    sim.settle(); // the batches are announced (and, asked for, sent)
    let v = vec![7u8; 1000];
    let notices = sim.core.stats().notices;
    for _ in 0..100 {
        let r = sim.shared.try_produce_now(sim.now, record_ref(0, &v));
        assert!(matches!(r, Err(SendError::BufferFull { .. })), "{r:?}");
    }
    sim.settle();
    assert_eq!(
        sim.core.stats().notices - notices,
        1,
        "one memory request for 101 refusals (and no other notice)"
    );
    sim.run_for(ms(50));
    assert!(
        sim.shared.buffered_bytes() < full,
        "{} of {full} bytes still held 50 ms after the refusal (linger.ms 10 s)",
        sim.shared.buffered_bytes()
    );
    let again = sim.shared.try_produce_now(sim.now, record_ref(0, &v));
    assert!(again.is_ok(), "memory is back: {again:?}");
}

/// A batch's per-record table (kept with a delivery callback: each
/// record's context, and its timestamp when it differs from the one
/// before) is charged to `buffer.memory` with the batch's buffer: tiny
/// records, each with a context and a millisecond of its own, cost 24 B
/// of table beside the ~10 B they add to the buffer, so an uncharged
/// table let 64 KiB of `buffer.memory` hold ~6,500 records and ~200 KiB
/// of tables. Now the table's growth is charged first, and the buffer
/// refuses records once buffer and tables fill it.
#[test]
fn per_record_tables_are_charged_to_buffer_memory() {
    let limit = 64 * 1024;
    let config = Config {
        buffer_memory: limit,
        batch_size: 16 * 1024,
        linger: ms(10_000),
        on_delivery: Some(std::sync::Arc::new(|_: &crate::DeliveryReport<'_>| {})),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    sim.send("t", Some(0), None, Some(b"warm-up")).unwrap();
    sim.drive();
    let base_ts = 1_700_000_000_000i64;
    let mut accepted = 0usize;
    for i in 0..100_000u64 {
        let rec = RecordRef {
            topic: "t",
            partition: Some((i % 4) as i32),
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: base_ts + i as i64,
            context: i + 1,
        };
        match sim.shared.try_produce_now(sim.now, rec) {
            Ok(_) => accepted += 1,
            Err(SendError::BufferFull { .. }) => break,
            Err(e) => panic!("record {i}: {e}"),
        }
    }
    // Each record holds a context (8 B) and a timestamp run (16 B) of its
    // own in its batch's table, beside its bytes in the buffer.
    assert!(
        accepted * 24 <= limit,
        "{accepted} records accepted: their tables alone hold at least {} B, \
         beyond buffer.memory ({limit} B)",
        accepted * 24
    );
    assert!(accepted > 1000, "only {accepted} records accepted");
    assert!(sim.shared.pool.used() <= limit + 1024);
}

/// A finished batch's per-record table is kept for a later batch (up to
/// `spare_parts::MAX_TABLE_BYTES` of it) with its capacity, and the batch
/// that takes it is charged that capacity when it opens: the same records
/// with and without a callback (which keeps tables) differ in
/// `buffer.memory` by the kept table, no more and no less.
#[test]
fn a_kept_per_record_table_is_charged_to_the_batch_that_takes_it() {
    let used_by_second_batch = |callback: bool| {
        let config = Config {
            linger: ms(10_000),
            on_delivery: callback
                .then(|| std::sync::Arc::new(|_: &crate::DeliveryReport<'_>| {}) as _),
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        learn_metadata(&mut sim);
        let base_ts = 1_700_000_000_000i64;
        let rec = |i: u64| RecordRef {
            timestamp_ms: base_ts + i as i64,
            context: i + 1,
            ..record_ref(0, b"v")
        };
        // A first batch whose table grows past its inline runs.
        for i in 0..30 {
            let _ = sim.shared.try_produce_now(sim.now, rec(i)).unwrap();
        }
        let flush = sim.flush();
        sim.drive();
        assert!(flush.is_done());
        assert_eq!(sim.shared.buffered_bytes(), 0);
        let _ = sim.shared.try_produce_now(sim.now, rec(100)).unwrap();
        sim.shared.buffered_bytes()
    };
    let (with, without) = (used_by_second_batch(true), used_by_second_batch(false));
    let table = with.checked_sub(without).expect("with a table, more");
    assert!(
        table > 0 && table <= crate::spare_parts::MAX_TABLE_BYTES,
        "{with} B with a kept table, {without} B without"
    );
}

/// A request for memory covers the batches opened after it in the same
/// I/O turn too (their senders counted on it): memory runs short for a
/// large record to partition 3, a small one then opens a batch there in
/// what is left, and both that batch and the ones before go at once, not
/// at their linger (10 s).
#[test]
fn a_memory_request_covers_batches_opened_after_it() {
    let mut sim = three_batches_and_a_refusal(ms(10_000), true);
    let now = sim.now;
    let _ = sim
        .shared
        .try_produce_now(now, record_ref(3, b"small"))
        .unwrap();
    sim.run_for(ms(100));
    let sent: Vec<usize> = (0..4).map(|p| log(&sim, p).len()).collect();
    assert_eq!(sent, [2, 1, 1, 1], "records stored per partition");
}

/// 4 KiB of `buffer.memory` over four partitions (batches of 1 KiB,
/// linger.ms `linger`): a 900-byte record opens a batch in each of
/// partitions 0 to 2 (announced to the I/O thread first if `announced`),
/// then a 2,000-byte record for partition 3 is refused memory, which asks
/// the I/O thread for it.
fn three_batches_and_a_refusal(linger: Duration, announced: bool) -> MockSim {
    let config = Config {
        linger,
        buffer_memory: 4096,
        batch_size: 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    learn_metadata(&mut sim);
    let now = sim.now;
    for p in 0..3 {
        let _ = sim
            .shared
            .try_produce_now(now, record_ref(p, &[1u8; 900]))
            .unwrap();
    }
    if announced {
        sim.settle();
    }
    let r = sim.shared.try_produce_now(now, record_ref(3, &[2u8; 2000]));
    assert!(matches!(r, Err(SendError::BufferFull { .. })), "{r:?}");
    sim
}

/// A request for memory leaves alone the batches whose linger ends soon
/// anyway (within `MEMORY_WAIT_LINGER_CAP`, 100 ms): with linger.ms 50
/// nothing goes before its linger, however short memory is.
#[test]
fn a_memory_request_leaves_batches_about_to_go_alone() {
    let mut sim = three_batches_and_a_refusal(ms(50), false);
    sim.run_for(ms(40));
    let sent: usize = (1..3).map(|p| log(&sim, p).len()).sum();
    assert_eq!(sent, 0, "sent before their linger");
    sim.run_for(ms(20));
    let sent: usize = (1..3).map(|p| log(&sim, p).len()).sum();
    assert_eq!(sent, 2, "sent at their linger");
}
