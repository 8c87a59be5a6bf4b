//! kring against a real broker (tansu), read back by two independent
//! readers with CRC checks on — librdkafka (the rdkafka crate) and
//! kafka-python — and compared field by field with what was sent and with
//! where kring said each record landed.
//!
//! - one million records over 16 partitions (lz4, keyed, with headers);
//! - every codec, keyed and keyless records, with headers;
//! - idempotence on (the default) and off;
//! - close delivers everything buffered;
//! - an idle producer does not wake its I/O thread.

mod support;

use std::time::{Duration, Instant};

use kring::{Acks, Compression, ProducerBuilder};
use support::{
    read_kafka_python_each, read_rdkafka_each, wait_until_settled, Checker, Keys, Tansu, Workload,
};

fn producer(tansu: &Tansu) -> ProducerBuilder {
    support::trace::init();
    support::producer_builder().bootstrap(&tansu.bootstrap())
}

/// Reads `topic` back with both readers and checks every record.
fn read_back_both(
    tansu: &Tansu,
    topic: &str,
    partitions: i32,
    w: &Workload,
    landed: &[(i32, i64)],
) {
    let mut c = Checker::new("librdkafka", w, Some(landed));
    read_rdkafka_each(&tansu.bootstrap(), topic, partitions, w.n, |r| c.check(&r));
    c.finish();
    let mut c = Checker::new("kafka-python", w, Some(landed));
    read_kafka_python_each(&tansu.bootstrap(), topic, partitions, w.n, |r| c.check(&r));
    c.finish();
}

#[test]
fn million_records_lz4_keyed_with_headers() {
    let tansu = Tansu::start();
    tansu.create_topic("million", 16);
    let p = producer(&tansu)
        .compression(Compression::Lz4)
        .linger(Duration::from_millis(5))
        .build()
        .unwrap();
    let w = Workload::new(1_000_000);
    let t = Instant::now();
    let landed = w.send_all(&p, "million");
    eprintln!(
        "kring: 1M records sent and acknowledged in {:?}",
        t.elapsed()
    );
    let used: std::collections::BTreeSet<i32> = landed.iter().map(|l| l.0).collect();
    assert_eq!(used.len(), 16, "keys spread over every partition");
    assert!(p.close());

    let t = Instant::now();
    let mut c = Checker::new("librdkafka", &w, Some(&landed));
    read_rdkafka_each(&tansu.bootstrap(), "million", 16, w.n, |r| c.check(&r));
    c.finish();
    eprintln!("librdkafka read 1M in {:?}", t.elapsed());
    let t = Instant::now();
    let mut c = Checker::new("kafka-python", &w, Some(&landed));
    read_kafka_python_each(&tansu.bootstrap(), "million", 16, w.n, |r| c.check(&r));
    c.finish();
    eprintln!("kafka-python read 1M in {:?}", t.elapsed());
}

/// 20,000 records with `codec`, keyed and keyless alternating, with
/// headers, over 4 partitions.
fn codec_round_trip(codec: Compression, topic: &str) {
    codec_round_trip_with(codec, topic, 0);
}

/// [`codec_round_trip`] with `compression.threads` set to `threads`.
fn codec_round_trip_with(codec: Compression, topic: &str, threads: u32) {
    let tansu = Tansu::start();
    tansu.create_topic(topic, 4);
    let p = producer(&tansu)
        .compression(codec)
        .compression_threads(threads)
        .build()
        .unwrap();
    let w = Workload {
        keys: Keys::Alternate,
        ..Workload::new(20_000)
    };
    let landed = w.send_all(&p, topic);
    assert!(p.close());
    read_back_both(&tansu, topic, 4, &w, &landed);
}

#[test]
fn codec_none() {
    codec_round_trip(Compression::None, "codec-none");
}

#[test]
fn codec_gzip() {
    codec_round_trip(Compression::Gzip, "codec-gzip");
}

#[test]
fn codec_snappy() {
    codec_round_trip(Compression::Snappy, "codec-snappy");
}

#[test]
fn codec_lz4() {
    codec_round_trip(Compression::Lz4, "codec-lz4");
}

#[test]
fn codec_zstd() {
    codec_round_trip(Compression::Zstd, "codec-zstd");
}

/// Batches the I/O thread seals (lingered, and the last ones at close)
/// compressed by compression threads: read back identically by both
/// readers, in order.
#[test]
fn codecs_with_compression_threads() {
    codec_round_trip_with(Compression::Zstd, "codec-zstd-threads", 2);
    codec_round_trip_with(Compression::Gzip, "codec-gzip-threads", 1);
}

/// Without idempotence (acks=1, more requests in flight than idempotence
/// allows), a fault-free run still stores each record once, in order.
#[test]
fn idempotence_off_acks_1() {
    let tansu = Tansu::start();
    tansu.create_topic("no-idempotence", 4);
    let p = producer(&tansu)
        .idempotence(false)
        .acks(Acks::Leader)
        .max_in_flight(10)
        .compression(Compression::Zstd)
        .build()
        .unwrap();
    let w = Workload {
        keys: Keys::None,
        ..Workload::new(20_000)
    };
    let landed = w.send_all(&p, "no-idempotence");
    assert!(p.close());
    read_back_both(&tansu, "no-idempotence", 4, &w, &landed);
}

/// lessons.md #3: records can only leave through the final drain (linger
/// and batch.size far beyond the test), and close delivers all of them.
#[test]
fn close_delivers_everything_buffered() {
    let tansu = Tansu::start();
    tansu.create_topic("close", 4);
    let p = producer(&tansu)
        .linger(Duration::from_secs(3600))
        .batch_size(16 << 20)
        .max_request_size(64 << 20)
        // One 16 MiB batch reserved per partition.
        .buffer_memory(256 << 20)
        .build()
        .unwrap();
    let w = Workload {
        keys: Keys::All,
        ..Workload::new(10_000)
    };
    let futures: Vec<_> = (0..w.n as u64).map(|i| w.send(&p, "close", i)).collect();
    assert!(
        futures.iter().all(|f| f.try_result().is_none()),
        "nothing may leave before close"
    );
    let t = Instant::now();
    assert!(p.close(), "close completed");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let landed = support::landed(&futures);
    let mut c = Checker::new("librdkafka", &w, Some(&landed));
    read_rdkafka_each(&tansu.bootstrap(), "close", 4, w.n, |r| c.check(&r));
    c.finish();
}

/// lessons.md #4: a connected, idle producer sleeps in the kernel. This
/// test waits real time on purpose: it measures real parking.
#[test]
fn idle_producer_makes_no_wakeups_in_10_s() {
    let tansu = Tansu::start();
    tansu.create_topic("idle", 2);
    let p = producer(&tansu).build().unwrap();
    // Connected, metadata known, producer id acquired, a batch delivered.
    let w = Workload::new(100);
    w.send_all(&p, "idle");
    // Let the last responses and the linger of nothing settle.
    wait_until_settled(|| p.metrics().io_wakeups);
    let before = p.metrics();
    std::thread::sleep(Duration::from_secs(10));
    let after = p.metrics();
    assert_eq!(
        after.io_wakeups - before.io_wakeups,
        0,
        "idle I/O thread woke up: {before:?} -> {after:?}"
    );
    assert_eq!(after.sends, before.sends);
    assert!(p.close());
}
