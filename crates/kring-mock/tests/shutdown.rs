//! Dropping a cluster stops every thread, even ones blocked in a Fetch
//! long-poll, a delay fault or a throttle mute, promptly.

mod common;

use std::time::{Duration, Instant};

use common::{batch, leader_addr, produce_req, Client};
use kring_mock::{Fault, MockCluster};
use kring_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn drop_joins_every_thread_promptly() {
    let baseline = threads();
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .topic("quiet", 1)
        .build()
        .unwrap();
    let addr = leader_addr(&c, "t", 0);
    // An idle connection.
    let _idle = Client::connect(c.broker_addr(2).unwrap());
    // A Fetch waiting up to 60 s for data that never comes.
    let mut fetcher = Client::connect(leader_addr(&c, "quiet", 0));
    fetcher.send(
        12,
        &FetchRequest {
            replica_id: -1,
            max_wait_ms: 60_000,
            min_bytes: 1,
            max_bytes: 1 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: "quiet".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    // A Produce whose answer is delayed by a minute.
    c.inject(Fault::delay(ApiKey::Produce, Duration::from_secs(60)).on_partition("t", 0));
    let mut delayed = Client::connect(addr);
    delayed.send(
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), 1),
    );
    // A muted (throttled) connection.
    c.inject(Fault::throttle(ApiKey::Produce, Duration::from_secs(60)).on_partition("t", 1));
    let mut muted = Client::connect(leader_addr(&c, "t", 1));
    muted.call(
        9,
        &produce_req("t", 1, batch(1, 0, None, Compression::None), 1),
    );
    // Let every connection reach its wait.
    while c.connection_count() < 4 || c.request_count(0) < 2 || c.request_count(1) < 1 {
        std::thread::yield_now();
    }
    assert!(threads() > baseline);
    let started = Instant::now();
    drop(c);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        started.elapsed()
    );
    // A joined thread can stay listed in /proc/self/task for a moment
    // after `join` returns (the kernel wakes the joiner before it reaps
    // the task): wait for the count to settle, within the same bound.
    while threads() > baseline && started.elapsed() < Duration::from_secs(5) {
        std::thread::yield_now();
    }
    assert_eq!(threads(), baseline, "threads left behind");
    assert!(fetcher.is_closed());
    assert!(delayed.is_closed());
}
