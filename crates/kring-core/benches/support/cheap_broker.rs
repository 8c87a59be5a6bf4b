//! The benches' cheapest broker: kring-mock's own dispatch (an unbound
//! `MockCluster`) answers the handshake, Metadata and InitProducerId, and
//! Produce is answered here with a hand-rolled walk of the request header
//! and the topic/partition lists (records skipped by length, never decoded
//! or stored) and a response written directly, the same approach as
//! kring-mock's sink: a sender-cycle bench measures the core, not the
//! broker.
#![allow(dead_code)] // each bench uses a different part

use std::time::Duration;

use bytes::Bytes;
use kring_core::sim::{BrokerStep, SimBroker};
use kring_mock::MockCluster;

const PRODUCE: i16 = 0;

/// kring-mock's dispatch (an unbound `MockCluster`) for everything but
/// Produce, which it answers itself.
pub(crate) struct CheapBroker {
    inner: MockCluster,
    /// Next offset of each partition of the one topic.
    offsets: Vec<i64>,
    /// Produce frames seen, while capturing (for `broker_only`).
    pub(crate) captured: Option<Vec<Bytes>>,
}

impl CheapBroker {
    /// One broker, topic `t` with `partitions` partitions.
    pub(crate) fn new(partitions: u32) -> CheapBroker {
        let inner = MockCluster::builder()
            .topic("t", partitions as i32)
            .build_unbound()
            .expect("mock cluster");
        CheapBroker {
            inner,
            offsets: vec![0; partitions as usize],
            captured: None,
        }
    }
}

/// A cursor over a request frame. Panics on a malformed frame: the core
/// under bench wrote it.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn uvarint(&mut self) -> u32 {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.b[self.pos];
            self.pos += 1;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long")
    }
    /// Length of a string, array or bytes field (classic prefix of
    /// `width` bytes or compact); -1 for null.
    fn len(&mut self, flexible: bool, width: usize) -> i64 {
        if flexible {
            i64::from(self.uvarint()) - 1
        } else if width == 2 {
            i64::from(self.i16())
        } else {
            i64::from(self.i32())
        }
    }
    fn skip(&mut self, flexible: bool, width: usize) {
        let l = self.len(flexible, width);
        if l > 0 {
            self.take(l as usize);
        }
    }
    fn skip_tags(&mut self) {
        for _ in 0..self.uvarint() {
            self.uvarint();
            let n = self.uvarint() as usize;
            self.take(n);
        }
    }
}

fn put_len(out: &mut Vec<u8>, n: usize, flexible: bool) {
    if flexible {
        let mut v = n as u32 + 1;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    } else {
        out.extend_from_slice(&(n as i32).to_be_bytes());
    }
}

/// Answers one Produce request frame (size prefix included): every
/// partition accepted, its records counted from the batch header.
pub(crate) fn answer_produce(frame: &[u8], offsets: &mut [i64]) -> Bytes {
    let mut c = Cur { b: frame, pos: 4 };
    c.i16(); // api key
    let version = c.i16();
    assert!((3..=12).contains(&version), "produce v{version}");
    let corr = c.i32();
    let flexible = version >= 9;
    c.skip(false, 2); // client_id
    if flexible {
        c.skip_tags();
    }
    c.skip(flexible, 2); // transactional_id
    let acks = c.i16();
    assert_ne!(acks, 0, "the bench expects answers");
    c.i32(); // timeout
    let topics = c.len(flexible, 4) as usize;
    let mut out = Vec::with_capacity(frame.len() / 4 + 64);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&corr.to_be_bytes());
    if flexible {
        out.push(0);
    }
    put_len(&mut out, topics, flexible);
    for _ in 0..topics {
        let at = c.pos;
        c.skip(flexible, 2);
        out.extend_from_slice(&frame[at..c.pos]);
        let parts = c.len(flexible, 4) as usize;
        put_len(&mut out, parts, flexible);
        for _ in 0..parts {
            let index = c.i32();
            let len = c.len(flexible, 4);
            let records = c.take(len.max(0) as usize);
            if flexible {
                c.skip_tags();
            }
            // One batch per partition: its record count at byte 57.
            let count = i32::from_be_bytes(records[57..61].try_into().unwrap());
            let o = &mut offsets[index as usize];
            let base = *o;
            *o += i64::from(count);
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&0i16.to_be_bytes());
            out.extend_from_slice(&base.to_be_bytes());
            out.extend_from_slice(&(-1i64).to_be_bytes()); // log_append_time
            if version >= 5 {
                out.extend_from_slice(&0i64.to_be_bytes()); // log_start_offset
            }
            if version >= 8 {
                if flexible {
                    out.extend_from_slice(&[1, 0, 0]); // record_errors, message, tags
                } else {
                    out.extend_from_slice(&0i32.to_be_bytes());
                    out.extend_from_slice(&(-1i16).to_be_bytes());
                }
            }
        }
        if flexible {
            c.skip_tags();
            out.push(0);
        }
    }
    out.extend_from_slice(&0i32.to_be_bytes()); // throttle
    if flexible {
        c.skip_tags();
        out.push(0);
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Bytes::from(out)
}

impl SimBroker for CheapBroker {
    type Session = ();

    fn bootstrap(&self) -> String {
        self.inner.bootstrap()
    }
    fn accept(&mut self, addr: &str) -> Option<i32> {
        self.inner.accept(addr)
    }
    fn latency(&self, node: i32) -> Duration {
        self.inner.latency(node)
    }
    fn handle(&mut self, node: i32, frame: Bytes) -> BrokerStep {
        if i16::from_be_bytes([frame[4], frame[5]]) != PRODUCE {
            return SimBroker::handle(&mut self.inner, node, frame);
        }
        let resp = answer_produce(&frame, &mut self.offsets);
        if let Some(c) = &mut self.captured {
            c.push(frame);
        }
        BrokerStep::Respond {
            frame: resp,
            delay: Duration::ZERO,
            mute: Duration::ZERO,
        }
    }
}
