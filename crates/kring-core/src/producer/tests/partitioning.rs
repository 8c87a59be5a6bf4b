//! Partitioning, record validation and protocol versions against the
//! Java client's behaviour (literal expectations, not kring's own
//! functions).

use super::*;
use crate::error::SendError;

/// Keyed records land where the Java client puts them:
/// `toPositive(murmur2(key)) % 7`, with the hashes of librdkafka's
/// `java_murmur2_results` (`rdmurmur2.c`) worked out by hand. An empty key
/// is a key (hashed), not a null key (sticky).
#[test]
fn keyed_records_land_in_the_java_clients_partitions() {
    let cases: &[(&[u8], i32)] = &[
        (b"kafka", 3),
        (b"giberish123456789", 5),
        (b"1234", 0),
        (b"234", 4),
        (b"34", 6),
        (b"4", 6),
        (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 1),
        (b"reAmbleWillBeRemoved,ThePrePartThatIs", 6),
        (b"eAmbleWillBeRemoved,ThePrePartThatIs", 3),
        (b"AmbleWillBeRemoved,ThePrePartThatIs", 3),
        (b"", 2),
    ];
    let mut sim = sim_with(cfg(), 1, 7);
    let hs: Vec<_> = cases
        .iter()
        .map(|(k, _)| sim.send("t", None, Some(k), Some(b"v")).unwrap())
        .collect();
    sim.drive();
    for ((k, want), h) in cases.iter().zip(hs) {
        let md = h.wait().unwrap();
        assert_eq!(md.partition, *want, "key {:?}", String::from_utf8_lossy(k));
    }
    for (k, want) in cases {
        assert!(log(&sim, *want)
            .iter()
            .any(|r| r.key.as_deref() == Some(*k)));
    }
}

/// Topic names Kafka rejects (INVALID_TOPIC_EXCEPTION: bad characters,
/// longer than 249, "." and "..") fail the send with a typed error at once,
/// without waiting out max.block.ms, as the Java client's
/// `InvalidTopicException` does.
#[test]
fn invalid_topic_names_fail_at_once() {
    let long = "a".repeat(250);
    for name in ["bad topic!", long.as_str(), ".", "..", "t/1"] {
        let mut sim = sim_with(cfg(), 1, 1);
        let t0 = sim.now;
        let r = sim.send(name, None, None, Some(b"v"));
        match r {
            Err(SendError::TopicError { error, .. }) => {
                assert_eq!(error, ErrorCode::INVALID_TOPIC_EXCEPTION, "{name:?}")
            }
            Err(SendError::InvalidTopic(_)) => {}
            other => panic!("{name:?}: {other:?}"),
        }
        assert!(
            sim.now - t0 < ms(1000),
            "{name:?} waited {:?}",
            sim.now - t0
        );
    }
}

/// A topic name longer than a request can carry (an `i16` length: 32,767
/// bytes) fails before anything is sent; one of exactly that length is
/// asked for and refused by the broker (names longer than 249 are invalid).
#[test]
fn topic_names_beyond_the_wire_limit_fail_before_a_request() {
    let at_limit = "a".repeat(i16::MAX as usize);
    let beyond = "a".repeat(i16::MAX as usize + 1);
    let mut sim = sim_with(cfg(), 1, 1);
    let asked = requests(&sim, ApiKey::Metadata);
    match sim.send(&beyond, None, None, Some(b"v")) {
        Err(SendError::InvalidTopic(t)) => assert_eq!(t.len(), beyond.len()),
        other => panic!("{other:?}"),
    }
    sim.settle();
    assert_eq!(requests(&sim, ApiKey::Metadata), asked, "nothing asked");
    match sim.send(&at_limit, None, None, Some(b"v")) {
        Err(SendError::TopicError { error, .. }) => {
            assert_eq!(error, ErrorCode::INVALID_TOPIC_EXCEPTION)
        }
        other => panic!("{other:?}"),
    }
    assert!(requests(&sim, ApiKey::Metadata) > asked);
}

/// Keyless records avoid partitions without a leader while others have
/// one (KIP-794), and never pick a partition the topic does not have.
#[test]
fn keyless_records_avoid_leaderless_partitions() {
    let config = Config {
        linger: ms(1000),
        batch_size: 256,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    for p in [0, 1, 3] {
        sim.cluster.inject(
            Fault::error(ApiKey::Metadata, ErrorCode::LEADER_NOT_AVAILABLE)
                .on_partition("t", p)
                .always(),
        );
    }
    let hs: Vec<_> = (0..40)
        .map(|_| sim.send("t", None, None, Some(&[0u8; 100])).unwrap())
        .collect();
    sim.drive();
    for h in hs {
        assert_eq!(h.wait().unwrap().partition, 2);
    }
}

/// A Kafka 2.3-era broker (ApiVersions v0-2, Produce v0-7, Metadata v0-8,
/// InitProducerId v0-1): the handshake falls back to ApiVersions v0 and
/// idempotent records are delivered with the versions it speaks.
#[test]
fn kafka_2_x_broker_versions() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.cluster.set_max_version(ApiKey::ApiVersions, Some(2));
    sim.cluster.set_max_version(ApiKey::Produce, Some(7));
    sim.cluster.set_max_version(ApiKey::Metadata, Some(8));
    sim.cluster.set_max_version(ApiKey::InitProducerId, Some(1));
    let hs: Vec<_> = (0..10u8)
        .map(|i| {
            sim.send("t", Some(i32::from(i % 2)), Some(&[i]), Some(&[i]))
                .unwrap()
        })
        .collect();
    sim.drive();
    for h in hs {
        h.wait().unwrap();
    }
    let l = log(&sim, 0);
    assert_eq!(l.len(), 5);
    assert!(l[0].producer_id >= 0);
}

/// A Kafka 0.11 broker (ApiVersions v0-1, Produce v0-3, Metadata v0-4,
/// InitProducerId v0): the oldest with record batch v2 and idempotence.
#[test]
fn kafka_0_11_broker_versions() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.cluster.set_max_version(ApiKey::ApiVersions, Some(1));
    sim.cluster.set_max_version(ApiKey::Produce, Some(3));
    sim.cluster.set_max_version(ApiKey::Metadata, Some(4));
    sim.cluster.set_max_version(ApiKey::InitProducerId, Some(0));
    let h = sim.send("t", None, Some(b"k"), Some(b"v")).unwrap();
    sim.drive();
    h.wait().unwrap();
    assert_eq!(log(&sim, 0).len(), 1);
}

/// A broker older than record batch v2 (Produce v2 at most): sends fail
/// with an error, they do not hang.
#[test]
fn broker_without_produce_v3_fails_records() {
    let config = Config {
        delivery_timeout: ms(5_000),
        request_timeout: ms(2_000),
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.cluster.set_max_version(ApiKey::Produce, Some(2));
    let r = sim.send("t", Some(0), None, Some(b"v"));
    sim.drive_bounded(10_000);
    match r {
        Err(_) => {}
        Ok(h) => {
            let res = h.try_result().expect("a result, not a hang");
            assert!(res.is_err(), "{res:?}");
        }
    }
}

/// Timestamps at the extremes of what is valid (zero and i64::MAX), and
/// headers with empty keys, null and empty values, many of them,
/// round-trip.
#[test]
fn extreme_timestamps_and_headers_round_trip() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.send("t", Some(1), None, None).unwrap();
    sim.drive();
    let many: Vec<kring_protocol::record::Header<'_>> = (0..500)
        .map(|i| kring_protocol::record::Header {
            key: if i % 2 == 0 { "" } else { "k" },
            value: match i % 3 {
                0 => None,
                1 => Some(&b""[..]),
                _ => Some(&b"v"[..]),
            },
        })
        .collect();
    let ts = [1_700_000_000_000, i64::MAX, 0, 1];
    let now = sim.now;
    let hs: Vec<_> = ts
        .iter()
        .map(|&t| {
            sim.shared
                .append(
                    now,
                    crate::RecordRef {
                        topic: "t",
                        partition: Some(0),
                        key: None,
                        value: None,
                        headers: &many,
                        timestamp_ms: t,
                        context: 0,
                    },
                    now,
                )
                .map(|o| o.delivery)
        })
        .collect();
    sim.drive();
    let results: Vec<_> = hs.into_iter().map(|h| h.map(|h| h.wait())).collect();
    let l = log(&sim, 0);
    for r in &l {
        assert_eq!(r.headers.len(), 500);
        assert_eq!(r.key, None);
        assert_eq!(r.value, None);
    }
    let stored: Vec<i64> = l.iter().map(|r| r.timestamp).collect();
    eprintln!("results {results:?}");
    eprintln!("stored {stored:?}");
    assert_eq!(stored, ts.to_vec());
}

/// A broker that does not serve kring's ApiVersions version answers
/// UNSUPPORTED_VERSION listing the ApiVersions versions it does serve
/// (KIP-511); kring asks again with the highest of those it speaks, as the
/// Java client's `NetworkClient.handleApiVersionsResponse` does, not with
/// v0. Every connection's handshake: the first try, then the broker's
/// highest version.
#[test]
fn unsupported_api_versions_retries_with_the_brokers_highest_version() {
    for (cap, expected) in [
        (0i16, &[3i16, 0][..]),
        (1, &[3, 1]),
        (2, &[3, 2]),
        (3, &[3]),
        (4, &[3]),
    ] {
        let mut sim = sim_with(cfg(), 2, 3);
        sim.cluster.set_max_version(ApiKey::ApiVersions, Some(cap));
        let h = sim.send("t", Some(0), None, Some(b"v")).unwrap();
        sim.drive_bounded(10_000);
        h.try_result()
            .expect("done")
            .unwrap_or_else(|e| panic!("cap {cap}: {e}"));
        let mut per_conn: std::collections::BTreeMap<_, Vec<i16>> = Default::default();
        for (conn, _, k, v) in &sim.transmitted {
            if *k == ApiKey::ApiVersions.key() {
                per_conn.entry(*conn).or_default().push(*v);
            }
        }
        assert!(!per_conn.is_empty());
        for (conn, versions) in per_conn {
            assert_eq!(versions, expected, "cap {cap}, connection {conn:?}");
        }
    }
}

/// A negative timestamp fails the send at once with a typed error and is
/// never written, as the Java client's `ProducerRecord` rejects it
/// ("Invalid timestamp: -5. Timestamp should always be non-negative or
/// null."). Kafka reads -1 on the wire as "no timestamp"; the caller stamps
/// a record without one, so the core never sees a legitimate negative.
#[test]
fn negative_timestamps_fail_at_once() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"warm")).unwrap();
    sim.drive();
    // An open batch with room: the fast path must refuse too.
    sim.send("t", Some(0), None, Some(b"open")).unwrap();
    let now = sim.now;
    for t in [-1, -5, i64::MIN] {
        let r = sim.shared.append(
            now,
            crate::RecordRef {
                topic: "t",
                partition: Some(0),
                key: None,
                value: Some(b"v"),
                headers: &[],
                timestamp_ms: t,
                context: 0,
            },
            now,
        );
        let e = r
            .map(|o| o.partition)
            .expect_err("a negative timestamp is refused");
        assert_eq!(e, SendError::InvalidTimestamp(t));
        assert_eq!(
            e.to_string(),
            format!("invalid timestamp {t}: timestamps must be non-negative"),
        );
    }
    sim.drive();
    assert_eq!(log(&sim, 0).len(), 2, "only the valid records are written");
}

/// Every Produce version kring speaks (v3-v11, across the flexible
/// boundary at v9) against every Metadata version (v1-v12, flexible from
/// v9) and ApiVersions v0-v4: idempotent records, keyed and keyless, are
/// delivered with exactly the capped versions.
#[test]
fn every_version_combination_delivers() {
    for api in [0i16, 2, 3, 4] {
        for produce in 3i16..=11 {
            for metadata in [1i16, 4, 7, 8, 9, 12] {
                let mut sim = sim_with(cfg(), 2, 3);
                sim.cluster.set_max_version(ApiKey::ApiVersions, Some(api));
                sim.cluster.set_max_version(ApiKey::Produce, Some(produce));
                sim.cluster
                    .set_max_version(ApiKey::Metadata, Some(metadata));
                let hs: Vec<_> = (0..6u8)
                    .map(|i| {
                        let key = [i];
                        sim.send("t", None, (i % 2 == 0).then_some(&key[..]), Some(&[i]))
                            .unwrap()
                    })
                    .collect();
                sim.drive_bounded(10_000);
                for h in hs {
                    h.try_result().expect("done").unwrap_or_else(|e| {
                        panic!("api {api} produce {produce} metadata {metadata}: {e}")
                    });
                }
                let total: usize = (0..3).map(|p| log(&sim, p).len()).sum();
                assert_eq!(total, 6);
                for (_, _, k, v) in &sim.transmitted {
                    if *k == ApiKey::Produce.key() {
                        assert_eq!(*v, produce);
                    }
                    if *k == ApiKey::Metadata.key() {
                        assert_eq!(*v, metadata);
                    }
                }
            }
        }
    }
}

/// The first keyless record's partition in a fresh process (the child
/// mode of the test below).
fn first_keyless_partition() -> i32 {
    let mut sim = sim_with(cfg(), 1, 1000);
    let h = sim.send("t", None, None, Some(b"v")).unwrap();
    sim.drive();
    h.wait().unwrap().partition
}

/// Separate producer processes must not all start their keyless records
/// on the same partition and then walk the same sequence of partitions:
/// the Java client draws its sticky partition from `ThreadLocalRandom`
/// (random per JVM), librdkafka from a seeded PRNG. Runs this test binary
/// four times as a child process; each reports the partition its first
/// keyless record went to (1,000 partitions: four equal draws by chance is
/// one in a billion).
#[test]
fn keyless_sticky_partition_differs_between_processes() {
    const CHILD: &str = "KRING_TEST_STICKY_CHILD";
    if std::env::var_os(CHILD).is_some() {
        println!("STICKY={}", first_keyless_partition());
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let picks: Vec<i32> = (0..4)
        .map(|_| {
            let out = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "producer::tests::partitioning::keyless_sticky_partition_differs_between_processes",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .output()
                .expect("run child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout
                .lines()
                .find_map(|l| l.split_once("STICKY=").map(|(_, n)| n))
                .unwrap_or_else(|| panic!("child output: {stdout}"))
                .split_whitespace()
                .next()
                .expect("a number")
                .parse()
                .expect("a partition")
        })
        .collect();
    assert!(
        picks.windows(2).any(|w| w[0] != w[1]),
        "every process started keyless records on the same partition: {picks:?}"
    );
}

/// KIP-794 (the Java client's `BuiltInPartitioner`): a keyless record that
/// opens a new batch in the sticky partition does not make the thread
/// switch away at once — it switches only once its batches there are
/// full (or twice `batch.size` went there), so no one-record batch is left
/// behind to be sent alone at linger. 108-byte records, 8 per 1,024-byte
/// batch: 16 records sent back to back make two full batches, not a full
/// one, a lone record's batch and a partial one elsewhere.
#[test]
fn sticky_switch_leaves_no_one_record_batch_behind() {
    let config = Config {
        batch_size: 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    let hs: Vec<_> = (0..16)
        .map(|_| sim.send("t", None, None, Some(&[0u8; 100])).unwrap())
        .collect();
    sim.drive();
    let parts: Vec<i32> = hs.iter().map(|h| h.wait().unwrap().partition).collect();
    let mut sizes = Vec::new();
    for p in 0..8 {
        for b in sim.cluster.batches("t", p).unwrap() {
            sizes.push((p, b.last_offset - b.base_offset + 1));
        }
    }
    assert!(
        !sizes.iter().any(|&(_, n)| n == 1),
        "batches (partition, records): {sizes:?}; record partitions {parts:?}"
    );
}

/// The sticky partition changes once at least `batch.size` bytes went to
/// it and its batch is full (KIP-794, as the Java client's built-in
/// partitioner does), not at the first full batch. Here `batch.size` is
/// exactly eight records' batch: each partition takes 16 records, two
/// full batches (the first full at fewer bytes than `batch.size`, the
/// batch header not counted).
#[test]
fn the_sticky_partition_changes_after_batch_size_bytes_and_a_full_batch() {
    let rec = record_ref(0, &[0u8; 100]);
    let config = Config {
        batch_size: eight_records_batch(&rec),
        linger: ms(1000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    learn_metadata(&mut sim);
    let now = sim.now;
    let parts: Vec<i32> = (0..64)
        .map(|_| {
            let rec = crate::RecordRef {
                partition: None,
                ..rec
            };
            sim.shared.append(now, rec, now).unwrap().partition
        })
        .collect();
    let runs: Vec<usize> = parts.chunk_by(|a, b| a == b).map(<[i32]>::len).collect();
    assert_eq!(runs, [16, 16, 16, 16], "{parts:?}");
}

/// One broker and `t` with `partitions` partitions, its metadata known;
/// `batch.size` 1,024 and `linger.ms` 1,000, so that batches wait to be
/// counted.
fn lingering(partitions: u32) -> MockSim {
    let config = Config {
        batch_size: 1024,
        linger: ms(1000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, partitions);
    learn_metadata(&mut sim);
    sim
}

/// `partitioner.ignore.keys` (the uniform sticky partitioner): keyed
/// records go where keyless ones do, to the sticky partition, never by
/// their key's hash, also when their key's partition has an open batch.
#[test]
fn keys_are_ignored_by_the_uniform_sticky_partitioner() {
    let config = Config {
        partitioner: crate::config::PartitionerChoice::UniformSticky,
        batch_size: 16_384,
        linger: ms(1000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    learn_metadata(&mut sim);
    let now = sim.now;
    for p in 0..4 {
        let o = sim.shared.append(now, record_ref(p, b"open"), now);
        assert_eq!(o.unwrap().partition, p);
    }
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    let hashed: std::collections::BTreeSet<u32> = keys
        .iter()
        .map(|k| crate::partitioner::partition_for_key(k.as_bytes(), 4))
        .collect();
    assert!(hashed.len() > 1, "the keys hash to several partitions");
    let placed: std::collections::BTreeSet<i32> = keys
        .iter()
        .map(|k| {
            let rec = crate::RecordRef {
                partition: None,
                key: Some(k.as_bytes()),
                ..record_ref(0, &[0u8; 100])
            };
            sim.shared.append(now, rec, now).unwrap().partition
        })
        .collect();
    assert_eq!(placed.len(), 1, "{placed:?}");
}

/// Only keyless records count toward the sticky partition's bytes (the
/// Java client's `BuiltInPartitioner` is told only of the records it
/// placed): records sent to explicit partitions between them, here three
/// batches of 900 bytes (more than twice `batch.size`), do not make
/// keyless records switch.
#[test]
fn records_to_explicit_partitions_do_not_move_the_sticky_partition() {
    let mut sim = lingering(4);
    let keyless = |sim: &MockSim| {
        let rec = crate::RecordRef {
            partition: None,
            ..record_ref(0, &[0u8; 100])
        };
        sim.shared.append(sim.now, rec, sim.now).unwrap()
    };
    let first = keyless(&sim);
    let s = first.partition;
    let mut hs = vec![first.delivery];
    for p in (0..4).filter(|&p| p != s) {
        sim.send("t", Some(p), None, Some(&[1u8; 900])).unwrap();
    }
    for _ in 0..3 {
        let o = keyless(&sim);
        assert_eq!(o.partition, s, "keyless records moved");
        hs.push(o.delivery);
    }
    sim.drive();
    let parts: Vec<i32> = hs.iter().map(|h| h.wait().unwrap().partition).collect();
    assert_eq!(parts, [s; 4], "keyless records moved");
}

/// The round-robin partitioner keeps a counter per topic, as the Java
/// client's `RoundRobinPartitioner` does: records sent to two topics in
/// turn still go round each topic's partitions. With one counter shared
/// by every topic, a topic that got every second record of two-partition
/// topics had all of its records land in one partition.
#[test]
fn round_robin_goes_round_each_topic_when_topics_interleave() {
    let config = Config {
        partitioner: crate::config::PartitionerChoice::RoundRobin,
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(1, 2).topic("u", 2));
    let mut parts = std::collections::BTreeMap::<&str, Vec<i32>>::new();
    let mut hs = Vec::new();
    for _ in 0..4 {
        for topic in ["t", "u"] {
            hs.push((topic, sim.send(topic, None, None, Some(b"v")).unwrap()));
        }
    }
    sim.drive();
    for (topic, h) in hs {
        parts
            .entry(topic)
            .or_default()
            .push(h.wait().unwrap().partition);
    }
    for (topic, ps) in &parts {
        let first = ps[0];
        let want: Vec<i32> = (0..4).map(|i| (first + i) % 2).collect();
        assert_eq!(ps, &want, "topic {topic}: {parts:?}");
    }
}

/// Keyless records sent while one of three brokers answers Produce
/// a second late: the share of records each broker's partitions got.
/// Batches of about four records (`batch.size` 512), so the sticky
/// partitioner moves on every few records; a record every millisecond.
fn keyless_shares_with_a_slow_broker(adaptive: bool) -> [f64; 3] {
    let config = Config {
        linger: ms(2),
        batch_size: 512,
        partitioner_adaptive: adaptive,
        ..cfg()
    };
    let mut sim = sim_with(config, 3, 6);
    sim.cluster.inject(
        Fault::delay(ApiKey::Produce, ms(1000))
            .on_broker(2)
            .always(),
    );
    let mut handles = Vec::new();
    for _ in 0..6000 {
        handles.push(sim.send("t", None, None, Some(&[7u8; 100])).unwrap());
        sim.run_for(ms(1));
    }
    sim.drive();
    let mut per_broker = [0usize; 3];
    for h in handles {
        let md = h.wait().unwrap();
        let leader = sim.cluster.leader("t", md.partition).unwrap();
        per_broker[(leader - 1) as usize] += 1;
    }
    let total: usize = per_broker.iter().sum();
    assert_eq!(total, 6000);
    per_broker.map(|n| n as f64 / total as f64)
}

/// With adaptive partitioning (the Java default, KIP-794), the sticky
/// partitioner sends fewer keyless records to the partitions of a broker
/// that answers slowly: their batches wait in the queue, and the next
/// partition is the less loaded of two candidates. Uniform choice gives
/// every broker about a third.
#[test]
fn adaptive_sticky_partitioning_sends_less_to_a_slow_broker() {
    let adaptive = keyless_shares_with_a_slow_broker(true);
    assert!(
        adaptive[1] < 0.17,
        "the slow broker's partitions got {:.3} of the records",
        adaptive[1]
    );
    assert!(adaptive[0] > 0.3 && adaptive[2] > 0.3, "{adaptive:?}");
    let uniform = keyless_shares_with_a_slow_broker(false);
    for share in uniform {
        assert!((0.26..0.41).contains(&share), "{uniform:?}");
    }
}

/// Keyless records every millisecond for 6 s while broker 2 swallows
/// every request from 0.5 s to 3.5 s (its connection stays open, so its
/// partitions keep their leader), with adaptive partitioning and
/// `partitioner.availability.timeout.ms` = `timeout`. Returns how many
/// records sent in [1.5 s, 3.5 s) and in [5 s, 6 s) went to broker 2's
/// partitions, out of how many.
fn keyless_to_a_black_hole(timeout: Duration) -> ((usize, usize), (usize, usize)) {
    let config = Config {
        linger: ms(2),
        batch_size: 512,
        request_timeout: ms(1000),
        partitioner_availability_timeout: timeout,
        ..cfg()
    };
    let mut sim = sim_with(config, 3, 6);
    let mut handles = Vec::new();
    let mut hole = Vec::new();
    for i in 0..6000u32 {
        if i == 500 {
            hole = black_hole(&sim, 2);
        }
        if i == 3500 {
            heal(&sim, std::mem::take(&mut hole));
        }
        handles.push(sim.send("t", None, None, Some(&[7u8; 100])).unwrap());
        sim.run_for(ms(1));
    }
    sim.drive();
    let mut during = (0, 0);
    let mut after = (0, 0);
    for (i, h) in handles.into_iter().enumerate() {
        let md = h.wait().unwrap();
        let on_2 = usize::from(sim.cluster.leader("t", md.partition) == Some(2));
        if (1500..3500).contains(&i) {
            during.0 += on_2;
            during.1 += 1;
        } else if i >= 5000 {
            after.0 += on_2;
            after.1 += 1;
        }
    }
    (during, after)
}

/// Appends `n` keyless 100 B records to `t`, one a millisecond, without
/// blocking; returns the partition each went to.
fn keyless(sim: &mut MockSim, n: usize) -> Vec<i32> {
    (0..n)
        .map(|_| {
            let now = sim.now;
            let rec = crate::RecordRef {
                partition: None,
                ..record_ref(0, &[7u8; 100])
            };
            let o = sim.shared.append(now, rec, now).unwrap();
            sim.run_for(ms(1));
            o.partition
        })
        .collect()
}

/// The load the adaptive partitioner compares is the batches a partition
/// has waiting: the sealed ones and the open one. 108-byte records, 8 per
/// 1,024-byte batch: 30 records lingering are three full batches and an
/// open one.
#[test]
fn a_partitions_queue_depth_counts_sealed_and_open_batches() {
    let mut sim = lingering(2);
    let depth = |sim: &mut MockSim| sim.core.part((0, 1)).slot.lock().depth();
    assert_eq!(depth(&mut sim), 0);
    let now = sim.now;
    for _ in 0..30 {
        let o = sim.shared.append(now, record_ref(1, &[0u8; 100]), now);
        assert_eq!(o.unwrap().partition, 1);
    }
    assert_eq!(depth(&mut sim), 4);
    sim.drive();
    assert_eq!(depth(&mut sim), 0);
}

/// Small batches that go out at once, and a broker stalled after 200 ms
/// (`partitioner.availability.timeout.ms`); requests never time out.
fn stalls_after_200ms() -> Config {
    Config {
        linger: ms(2),
        batch_size: 512,
        request_timeout: ms(60_000),
        partitioner_availability_timeout: ms(200),
        ..cfg()
    }
}

/// With two partitions and one of them led by a stalled broker, the
/// other is the only one to stick to: a switch due on it stays on it
/// rather than move to the stalled one (as the Java client's built-in
/// partitioner chooses among the partitions it has not left out, the
/// current one included).
#[test]
fn the_only_partition_not_stalled_keeps_the_keyless_records() {
    let mut sim = sim_with(stalls_after_200ms(), 2, 2);
    learn_metadata(&mut sim);
    let _hole = black_hole(&sim, 2);
    let _ = keyless(&mut sim, 1000);
    let during = keyless(&mut sim, 500);
    let to_stalled = during.iter().filter(|&&p| p == 1).count();
    assert_eq!(to_stalled, 0, "of {} records", during.len());
}

/// A partition led by a stalled broker (no keyless records for it, KIP-794)
/// that moves to a healthy leader takes that leader's mark: keyless records
/// go to it again while the old leader is still stalled.
#[test]
fn a_partition_moved_off_a_stalled_broker_gets_keyless_records_again() {
    let mut sim = sim_on(stalls_after_200ms(), cluster(3, 6).topic("other", 1));
    learn_metadata(&mut sim);
    let _hole = black_hole(&sim, 2);
    // Broker 2 stalls: after the timeout, its partitions get nothing.
    let _ = keyless(&mut sim, 1000);
    let moved: Vec<i32> = (0..6)
        .filter(|&p| sim.cluster.leader("t", p) == Some(2))
        .collect();
    assert!(!moved.is_empty());
    let during = keyless(&mut sim, 500);
    assert!(during.iter().all(|p| !moved.contains(p)), "{during:?}");
    // Its partitions move to broker 1; a metadata response says so.
    for &p in &moved {
        sim.cluster.move_leader("t", p, 1).unwrap();
    }
    let m0 = requests(&sim, ApiKey::Metadata);
    let _ = sim.send("other", Some(0), None, Some(b"o"));
    sim.drive_until(10_000, |s| requests(s, ApiKey::Metadata) > m0);
    sim.settle();
    let after = keyless(&mut sim, 1000);
    let back = after.iter().filter(|p| moved.contains(p)).count();
    assert!(
        back * 10 > after.len(),
        "{back} of {} on the moved partitions",
        after.len()
    );
}

/// A broker that cannot take a request for less than
/// `partitioner.availability.timeout.ms` at a time (here throttled for
/// 300 ms after each answer, against a 1 s timeout) is never marked
/// stalled: its partitions keep their share of keyless records.
#[test]
fn a_broker_busy_for_less_than_the_availability_timeout_is_not_stalled() {
    let config = Config {
        linger: ms(2),
        batch_size: 512,
        partitioner_availability_timeout: ms(1_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 2);
    learn_metadata(&mut sim);
    sim.cluster
        .inject(Fault::throttle(ApiKey::Produce, ms(300)).on_broker(2));
    let mut to_2 = 0;
    for i in 0..3_000 {
        let now = sim.now;
        let rec = crate::RecordRef {
            partition: None,
            ..record_ref(0, &[7u8; 100])
        };
        let o = sim.shared.append(now, rec, now).unwrap();
        to_2 += usize::from(o.partition == 1);
        sim.run_for(ms(1));
        let stalled = sim
            .core
            .part((0, 1))
            .slot
            .leader_stalled
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(!stalled, "broker 2 marked stalled after {i} ms");
    }
    assert!(to_2 > 300, "{to_2} of 3000 to broker 2's partition");
}

/// `partitioner.availability.timeout.ms` (KIP-794): a broker that has had
/// batches waiting longer than the timeout without taking a request gets
/// no more keyless records until it takes one again; every record is
/// still delivered once it does. Without the timeout, adaptive choice
/// alone still sends it some (when both candidates are its partitions).
#[test]
fn a_stalled_broker_gets_no_keyless_records_after_the_availability_timeout() {
    let ((on_2, of), (back, of_after)) = keyless_to_a_black_hole(ms(200));
    assert_eq!(
        on_2, 0,
        "records sent to the stalled broker's partitions (of {of})"
    );
    assert!(
        back * 5 > of_after,
        "after it recovers, its partitions take a share again: {back} of {of_after}"
    );
    let ((on_2, of), _) = keyless_to_a_black_hole(Duration::ZERO);
    assert!(
        on_2 * 100 > of,
        "without the timeout, adaptive choice alone: {on_2} of {of}"
    );
}
