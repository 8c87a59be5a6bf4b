//! The driver (on the backend `KRING_TEST_IO_BACKEND` names) against real broker implementations (tansu and
//! kring-mock): many pipelined requests written in coalesced sends, every
//! response framed and matched in order, no wake-ups while idle, a clean
//! exit once the engine is finished.

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kring::driver::{Driver, DriverConfig, Engine, IoCommand, Transmit};
use kring_protocol::message::{decode_response_frame, encode_request};
use kring_protocol::messages::api_versions::ApiVersionsRequest;

const VERSION: i16 = 3;

/// Connects, pipelines `n` ApiVersions requests, decodes the answers.
struct ApiVersionsEngine {
    io: VecDeque<IoCommand<u8>>,
    tx: VecDeque<Transmit<u8>>,
    n: i32,
    next_expected: i32,
    results: mpsc::Sender<Result<i32, String>>,
    finish: Arc<AtomicBool>,
}

impl Engine for ApiVersionsEngine {
    type Conn = u8;
    fn handle_wakeup(&mut self, _: Instant) {}
    fn handle_connected(&mut self, _: Instant, conn: u8) {
        for id in 0..self.n {
            let mut buf = BytesMut::new();
            let req = ApiVersionsRequest {
                client_software_name: "kring-e2e".into(),
                client_software_version: "0".into(),
                ..Default::default()
            };
            encode_request(&mut buf, id, Some("kring-e2e"), VERSION, &req).unwrap();
            self.tx.push_back(Transmit {
                conn,
                frame: buf.freeze().into(),
            });
        }
    }
    fn handle_connect_failed(&mut self, _: Instant, _: u8, _: std::io::ErrorKind, reason: &str) {
        let _ = self.results.send(Err(format!("connect failed: {reason}")));
    }
    fn handle_disconnected(&mut self, _: Instant, _: u8, reason: &str) {
        let _ = self.results.send(Err(format!("disconnected: {reason}")));
    }
    fn handle_response(&mut self, _: Instant, _: u8, frame: Bytes) {
        let r = decode_response_frame::<ApiVersionsRequest>(frame, VERSION)
            .map_err(|e| e.to_string())
            .and_then(|(id, resp)| {
                if id != self.next_expected {
                    return Err(format!(
                        "correlation id {id}, expected {}",
                        self.next_expected
                    ));
                }
                self.next_expected += 1;
                if resp.error_code != 0 {
                    return Err(format!("error code {}", resp.error_code));
                }
                if !resp.api_keys.iter().any(|k| k.api_key == 0) {
                    return Err("Produce not offered".into());
                }
                Ok(id)
            });
        let _ = self.results.send(r);
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_io(&mut self) -> Option<IoCommand<u8>> {
        self.io.pop_front()
    }
    fn poll_transmit(&mut self, _: Instant) -> Option<Transmit<u8>> {
        self.tx.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn prepare_park(&mut self) -> bool {
        true
    }
    fn is_finished(&self) -> bool {
        self.finish.load(Ordering::Acquire)
    }
    fn abort(&mut self, _: Instant, reason: &str) {
        let _ = self.results.send(Err(format!("aborted: {reason}")));
    }
}

fn exercise(bootstrap: &str) {
    let n = 500;
    let (results, rx) = mpsc::channel();
    let finish = Arc::new(AtomicBool::new(false));
    let engine = ApiVersionsEngine {
        io: VecDeque::from([IoCommand::Connect {
            conn: 1,
            addr: bootstrap.to_owned(),
            timeout: Duration::from_secs(10),
        }]),
        tx: VecDeque::new(),
        n,
        next_expected: 0,
        results,
        finish: Arc::clone(&finish),
    };
    let mut config = DriverConfig::default();
    config.backend = support::io_backend();
    let mut driver = Driver::start(engine, config).expect("the I/O backend starts");
    for want in 0..n {
        let got = rx.recv_timeout(Duration::from_secs(30)).expect("response");
        assert_eq!(got, Ok(want));
    }
    let m = driver.metrics();
    assert!(m.sends() < 50, "{n} requests took {} sends", m.sends());
    assert_eq!(m.responses(), n as u64);

    // Connected and idle: the thread sleeps in the kernel.
    support::wait_until_settled(|| driver.metrics().io_wakeups());
    let before = driver.metrics().io_wakeups();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(driver.metrics().io_wakeups(), before, "idle driver woke up");

    finish.store(true, Ordering::Release);
    driver.waker().wake();
    assert!(
        driver.join_timeout(Duration::from_secs(10)),
        "driver did not exit"
    );
    assert!(rx.try_recv().is_err(), "nothing after the end (no abort)");
}

#[test]
fn pipelined_requests_against_tansu() {
    let tansu = support::Tansu::start();
    exercise(&tansu.bootstrap());
}

#[test]
fn pipelined_requests_against_kring_mock() {
    let cluster = kring_mock::MockCluster::builder()
        .brokers(1)
        .build()
        .unwrap();
    exercise(&cluster.bootstrap_servers());
}
