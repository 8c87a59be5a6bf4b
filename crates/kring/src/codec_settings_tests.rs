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
