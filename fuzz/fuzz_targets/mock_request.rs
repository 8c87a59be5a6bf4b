//! Arbitrary request frames into kring-mock's request dispatch (the same
//! code its TCP server runs, through `MockCluster::handle`): it must never
//! panic, whatever the frames; run with `-malloc_limit_mb` to catch an
//! allocation sized by the input.
//!
//! Input: up to eight requests, each `[key][version][len: u16 LE][bytes]`.
//! `key` picks one of the served API keys (or, past the list, a raw one) and
//! `version` one of its versions or one past either end; the frame is then
//! api key, version, and `bytes` (correlation id, client id, body). Several
//! requests share one cluster, so state built by one (a produced batch, a
//! created topic) meets the next.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use kring_mock::api::SERVED;
use kring_mock::{MockCluster, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cluster) = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .build_unbound()
    else {
        return;
    };
    let mut rest = data;
    for _ in 0..8 {
        let [key, version, lo, hi, tail @ ..] = rest else {
            return;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let (api_key, version) = match SERVED.get(usize::from(*key) % (SERVED.len() + 1)) {
            Some((k, v)) => {
                let span = (v.end() - v.start() + 3) as u8;
                (*k, v.start() - 1 + i16::from(version % span))
            }
            None => (i16::from(*key), i16::from(*version)),
        };
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i16(api_key);
        frame.put_i16(version);
        frame.put_slice(body);
        let broker = 1 + i32::from(*key & 1);
        if let Step::Reply(r) = cluster.handle(broker, Bytes::from(frame)) {
            // A response frame carries its own size.
            assert!(r.frame.len() >= 4);
            let size = i32::from_be_bytes([r.frame[0], r.frame[1], r.frame[2], r.frame[3]]);
            assert_eq!(size as usize, r.frame.len() - 4);
        }
    }
});
