//! Compression levels (KIP-390, librdkafka's `compression.level`) and
//! `partitioner.ignore.keys` (KIP-794), end to end: a producer built from
//! Java property names against kring-mock, the batches checked as the
//! broker stored them.

use kring_core::partitioner::partition_for_key;
use kring_mock::MockCluster;

use crate::test_support::cluster;
use crate::{Producer, Record};

/// A producer on `c` with the given properties.
fn producer(c: &MockCluster, props: &[(&str, &str)]) -> Producer {
    let bootstrap = c.bootstrap_servers();
    let mut all = vec![("bootstrap.servers", bootstrap.as_str())];
    all.extend_from_slice(props);
    Producer::from_properties(all).unwrap_or_else(|e| panic!("{props:?}: {e}"))
}

/// Compressible but not trivially so: words from a small vocabulary in a
/// pseudo-random order, so higher levels find more than lower ones.
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "partition",
        "leader",
        "batch",
        "record",
        "offset",
        "broker",
        "linger",
        "epoch",
        "sequence",
        "producer",
        "request",
        "topic",
        "replica",
        "metadata",
        "timeout",
        "flush",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(5) { b'\n' } else { b' ' });
        out.extend_from_slice(format!("{}", x % 1000).as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// Sends the same 64 records of 1 KiB to partition 0 of `t`, waits for
/// them, and returns the total stored (compressed) size of their batches,
/// after checking that the broker decodes every record back. Batches are
/// cut the same way every time: by `batch.size` (sealed by this thread),
/// the last one by the flush (on the I/O thread), never by linger.
fn stored_size(props: &[(&str, &str)]) -> usize {
    let c = cluster(1);
    let mut props = props.to_vec();
    props.push(("linger.ms", "60000"));
    let p = producer(&c, &props);
    let values: Vec<Vec<u8>> = (0..64).map(|i| text(i + 1, 1024)).collect();
    let hs: Vec<_> = values
        .iter()
        .map(|v| p.send(Record::new("t", v).partition(0)).unwrap())
        .collect();
    p.flush();
    for h in hs {
        h.wait().unwrap_or_else(|e| panic!("{props:?}: {e}"));
    }
    p.close();
    let stored = c.records("t", 0).unwrap();
    assert_eq!(stored.len(), values.len(), "{props:?}");
    for (r, v) in stored.iter().zip(&values) {
        assert_eq!(r.value.as_deref(), Some(v.as_slice()), "{props:?}");
    }
    c.batches("t", 0)
        .unwrap()
        .iter()
        .map(|b| b.bytes.len())
        .sum()
}

/// `compression.zstd.level` reaches the compressor: the same records are
/// stored smaller at level 19 than at level 1, and both decode. Batches
/// are sealed both by the sending thread (full at `batch.size`) and by the
/// I/O thread (the last, lingered one).
#[cfg(feature = "zstd")]
#[test]
fn zstd_level_is_used() {
    let base = [("compression.type", "zstd"), ("batch.size", "20000")];
    let at = |level: &str| {
        let mut props = base.to_vec();
        props.push(("compression.zstd.level", level));
        stored_size(&props)
    };
    let (low, default, high) = (at("1"), stored_size(&base), at("19"));
    assert!(high < low, "level 19 {high} B, level 1 {low} B");
    assert!(high < default, "level 19 {high} B, default (3) {default} B");
    // librdkafka's compression.level applies to the selected codec.
    let alias = stored_size(&[
        ("compression.codec", "zstd"),
        ("compression.level", "12"),
        ("batch.size", "20000"),
    ]);
    assert!(
        alias < low,
        "compression.level=12 {alias} B, level 1 {low} B"
    );
}

/// `compression.gzip.level` reaches the compressor: level 9 stores less
/// than level 1, and batches at both decode; librdkafka's level 0 (stored,
/// not deflated) decodes too and is larger than either.
#[test]
fn gzip_level_is_used() {
    let at = |level: &str| {
        stored_size(&[
            ("compression.type", "gzip"),
            ("batch.size", "20000"),
            ("compression.gzip.level", level),
        ])
    };
    let (fast, best) = (at("1"), at("9"));
    assert!(best < fast, "level 9 {best} B, level 1 {fast} B");
    let stored = stored_size(&[
        ("compression.codec", "gzip"),
        ("batch.size", "20000"),
        ("compression.level", "0"),
    ]);
    assert!(stored > fast, "level 0 {stored} B, level 1 {fast} B");
}

/// lz4 at the Java client's default level (9, its fast compressor) is
/// what kring writes; any other lz4 level is refused when the producer is
/// built, saying why, rather than silently ignored.
#[test]
fn lz4_levels_other_than_the_fast_one_are_refused() {
    stored_size(&[("compression.type", "lz4"), ("compression.lz4.level", "9")]);
    let c = cluster(1);
    let bootstrap = c.bootstrap_servers();
    for (name, level) in [("compression.lz4.level", "12"), ("compression.level", "5")] {
        let e = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("compression.type", "lz4"),
            (name, level),
        ])
        .err()
        .unwrap_or_else(|| panic!("{name}={level} accepted"));
        let msg = e.to_string();
        assert!(msg.contains("high-compression"), "{name}={level}: {msg}");
    }
}

/// `partitioner.ignore.keys=true`: keyed records are placed like keyless
/// ones, all in the one sticky partition while it has room; `false` (the
/// default) keeps the Java client's murmur2 placement.
#[test]
fn partitioner_ignore_keys() {
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    for ignore in [None, Some("false"), Some("true")] {
        let c = cluster(8);
        let mut props = vec![("linger.ms", "1000")];
        if let Some(v) = ignore {
            props.push(("partitioner.ignore.keys", v));
        }
        let p = producer(&c, &props);
        p.wait_for_metadata("t", std::time::Duration::from_secs(10))
            .unwrap();
        // An open batch in every partition, so each keyed record could be
        // appended wherever it is placed (the append fast path included).
        for q in 0..8 {
            p.produce(Record::new("t", b"open").partition(q)).unwrap();
        }
        let hs: Vec<_> = keys
            .iter()
            .map(|k| p.send(Record::new("t", b"v").key(k.as_bytes())).unwrap())
            .collect();
        p.flush();
        let parts: Vec<i32> = hs
            .into_iter()
            .map(|h| h.wait().unwrap().partition)
            .collect();
        if ignore == Some("true") {
            assert!(
                parts.iter().all(|&q| q == parts[0]),
                "ignore.keys=true: {parts:?}"
            );
        } else {
            for (k, q) in keys.iter().zip(&parts) {
                assert_eq!(
                    *q as u32,
                    partition_for_key(k.as_bytes(), 8),
                    "{ignore:?} {k}"
                );
            }
        }
    }
}
