//! The sink allocates nothing per request in steady state: a counting
//! global allocator watches the whole process while a connection streams
//! pipelined Produce requests through it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use common::batch;
use kring_mock::MockCluster;
use kring_protocol::message::encode_request;
use kring_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kring_protocol::record::Compression;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Writes `n` copies of `frame` and reads back `n` response frames, without
/// allocating (fixed buffers, frames counted by hand).
fn burst(s: &mut TcpStream, frames: &[u8], n: usize, buf: &mut [u8]) {
    s.write_all(frames).unwrap();
    let (mut have, mut start, mut seen) = (0usize, 0usize, 0usize);
    while seen < n {
        // Count complete frames in buf[start..have].
        while have - start >= 4 {
            let size = i32::from_be_bytes(buf[start..start + 4].try_into().unwrap()) as usize;
            if have - start < 4 + size {
                break;
            }
            start += 4 + size;
            seen += 1;
        }
        if seen == n {
            break;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        start = 0;
        let r = s.read(&mut buf[have..]).unwrap();
        assert!(r > 0, "sink closed the connection");
        have += r;
    }
}

#[test]
fn sink_steady_state_allocates_nothing() {
    let c = MockCluster::sink().default_partitions(4).build().unwrap();
    let mut s = TcpStream::connect(c.broker_addr(1).unwrap()).unwrap();
    s.set_nodelay(true).unwrap();
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: (0..4)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(batch(20, 0, None, Compression::None)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    const BURST: usize = 64;
    let mut frames = Vec::new();
    for i in 0..BURST {
        encode_request(
            &mut frames,
            i as i32,
            Some("alloc"),
            if i % 2 == 0 { 8 } else { 11 },
            &req,
        )
        .unwrap();
    }
    let mut buf = vec![0u8; 1 << 20];
    // Warm up: topic creation, caches, buffers grow to their steady size.
    for _ in 0..20 {
        burst(&mut s, &frames, BURST, &mut buf);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..200 {
        burst(&mut s, &frames, BURST, &mut buf);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations during 12,800 sink requests");
    assert_eq!(c.sink_stats().unwrap().requests, 220 * BURST as u64);
}
