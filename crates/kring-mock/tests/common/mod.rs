//! A raw Kafka client for the tests: encodes real requests with
//! kring-protocol, writes them to a broker over TCP and decodes the answers,
//! so every test sees exactly what goes over the wire.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::record::{Compression, Header, RecordBatchBuilder};

/// One connection to one broker.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

/// What came back for one request.
#[derive(Debug)]
pub enum Reply {
    /// A complete frame (without its size prefix).
    Frame(Vec<u8>),
    /// The broker closed the connection before a whole frame arrived;
    /// holds the bytes that did arrive (size prefix included).
    Closed(Vec<u8>),
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends a request; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut buf = Vec::new();
        encode_request(&mut buf, id, Some("kring-mock-test"), version, req).expect("encode");
        self.stream.write_all(&buf).expect("write");
        id
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one frame, or what arrived before the connection closed.
    pub fn read_reply(&mut self) -> Reply {
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            if got.len() >= 4 {
                let size = i32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
                if got.len() >= 4 + size {
                    // Push back anything beyond this frame: tests read one
                    // frame at a time, so keep it simple and require none.
                    assert_eq!(got.len(), 4 + size, "more than one frame arrived at once");
                    return Reply::Frame(got[4..].to_vec());
                }
                let want = 4 + size - got.len();
                let n = self.read_some(&mut chunk[..want.min(65536)]);
                if n == 0 {
                    return Reply::Closed(got);
                }
                got.extend_from_slice(&chunk[..n]);
            } else {
                let n = self.read_some(&mut chunk[..4 - got.len()]);
                if n == 0 {
                    return Reply::Closed(got);
                }
                got.extend_from_slice(&chunk[..n]);
            }
        }
    }

    fn read_some(&mut self, buf: &mut [u8]) -> usize {
        match self.stream.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads one frame and decodes it as the response to `R` at `version`.
    pub fn recv<R: Request>(&mut self, version: i16) -> (i32, R::Response) {
        match self.read_reply() {
            Reply::Frame(f) => {
                decode_response_frame::<R>(Bytes::from(f), version).expect("decode response")
            }
            Reply::Closed(b) => panic!("connection closed after {} bytes", b.len()),
        }
    }

    /// Sends and receives, checking the correlation id.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let id = self.send(version, req);
        let (got, resp) = self.recv::<R>(version);
        assert_eq!(got, id, "correlation id");
        resp
    }

    /// Whether the broker closed the connection (reads EOF within 5 s).
    pub fn is_closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 1];
        let closed = match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                false
            }
            Err(e) => panic!("read: {e}"),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        closed
    }
}

/// A record batch of `n` records `key-{i}` / `value-{i}` with one header,
/// timestamps `ts + i`.
pub fn batch(
    n: usize,
    ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let mut b = RecordBatchBuilder::new(ts, 1024);
    for i in 0..n {
        let k = format!("key-{i}");
        let v = format!("value-{i}");
        let hv = format!("h{i}");
        b.append(
            ts + i as i64,
            Some(k.as_bytes()),
            Some(v.as_bytes()),
            &[Header {
                key: "hdr",
                value: Some(hv.as_bytes()),
            }],
        );
    }
    let sealed = b.seal(compression).expect("seal");
    match producer {
        Some((id, epoch, seq)) => sealed.stamp(id, epoch, seq, false),
        None => sealed.stamp(-1, -1, -1, false),
    }
}

use kring_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};

/// A Produce request writing `records` to one partition.
pub fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The address of the leader of `topic`/`partition`.
pub fn leader_addr(cluster: &kring_mock::MockCluster, topic: &str, partition: i32) -> SocketAddr {
    let id = cluster.leader(topic, partition).expect("partition exists");
    cluster.broker_addr(id).expect("leader is a broker")
}
pub mod txn;
