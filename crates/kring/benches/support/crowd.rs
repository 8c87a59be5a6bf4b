//! What the crowd benches (`async_crowd`, `handle_crowd`) share: their
//! arguments, an in-process sink with a producer on it, the process's CPU
//! clock.

use std::sync::Arc;
use std::time::Duration;

use kring::Producer;

/// The numeric arguments after `--bench`, and whether this is a smoke run
/// (`cargo test --benches` runs benches without `--bench`: a short run
/// that only checks it works). `None` when a test runner asks for the
/// list of tests (there are none).
pub(crate) fn args() -> Option<(Vec<u64>, bool)> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "--list") {
        return None;
    }
    let smoke = !raw.iter().any(|a| a == "--bench");
    Some((raw.iter().filter_map(|a| a.parse().ok()).collect(), smoke))
}

/// A kring-mock sink with `partitions` per topic, and a producer on it
/// with `props` set, the topic's metadata known. Keep the sink alive as
/// long as the producer.
pub(crate) fn sink_producer(
    partitions: i32,
    topic: &str,
    props: &[(&str, String)],
) -> (kring_mock::MockCluster, Arc<Producer>) {
    let mock = kring_mock::MockCluster::sink()
        .brokers(1)
        .default_partitions(partitions)
        .build()
        .expect("sink");
    let mut all = vec![("bootstrap.servers", mock.bootstrap_servers())];
    all.extend(props.iter().map(|(k, v)| (*k, v.clone())));
    let config = kring::ProducerConfig::from_properties(all).expect("config");
    let producer = Arc::new(
        Producer::builder()
            .config(config)
            .build()
            .expect("producer"),
    );
    producer
        .wait_for_metadata(topic, Duration::from_secs(10))
        .expect("metadata");
    (mock, producer)
}

/// CPU time the process has used.
pub(crate) fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
