//! Driver tests: a scripted engine over real loopback sockets.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

type Conn = u32;

/// The connect timeout of the tests' `Connect` commands, unless a test
/// gives its own.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq)]
enum Event {
    Connected(Conn),
    ConnectFailed(Conn, String),
    Disconnected(Conn, String),
    /// `handle_tls_failed`: the kind the core would see.
    TlsFailed(Conn, kring_core::TlsFailure, String),
    Response(Conn, Bytes),
    Timeout,
    Aborted(String),
    /// An engine handler ran while the driver was still draining
    /// `poll_io`/`poll_transmit` of the same turn: the driver re-entered
    /// the engine from inside a submission.
    Reentered(&'static str),
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Connected(c) => write!(f, "Connected({c})"),
            Event::ConnectFailed(c, r) => write!(f, "ConnectFailed({c}, {r})"),
            Event::Disconnected(c, r) => write!(f, "Disconnected({c}, {r})"),
            Event::TlsFailed(c, k, r) => write!(f, "TlsFailed({c}, {k:?}, {r})"),
            Event::Response(c, b) if b.len() > 32 => write!(f, "Response({c}, {} bytes)", b.len()),
            Event::Response(c, b) => write!(f, "Response({c}, {b:?})"),
            Event::Timeout => write!(f, "Timeout"),
            Event::Aborted(r) => write!(f, "Aborted({r})"),
            Event::Reentered(h) => write!(f, "Reentered({h})"),
        }
    }
}

enum Cmd {
    Io(IoCommand<Conn>),
    Send(Conn, Frame),
    Deadline(Instant),
    /// A socket command the engine produces while building frames (the
    /// core asks for a connection when it first has a request for a
    /// broker).
    IoWhenTransmitting(IoCommand<Conn>),
    /// Panic inside the engine (standing for a bug).
    Panic,
    Finish,
}

#[derive(Default)]
struct Script {
    inbox: Mutex<VecDeque<Cmd>>,
    parked: AtomicBool,
    /// `prepare_park` calls: the driver's turns that ended in a wait.
    parks: AtomicUsize,
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

/// An engine that does what the test thread tells it and records what the
/// driver reports.
struct TestEngine {
    script: Arc<Script>,
    io: VecDeque<IoCommand<Conn>>,
    tx: VecDeque<Transmit<Conn>>,
    io_when_transmitting: VecDeque<IoCommand<Conn>>,
    deadline: Option<Instant>,
    finished: bool,
    /// Set while the driver drains `poll_io`/`poll_transmit`; a handler
    /// called meanwhile is a re-entry.
    draining: bool,
    /// Where (and within what timeout) each connection was last asked to
    /// connect, to reconnect it after a drop (with `echo_back`).
    addrs: std::collections::HashMap<Conn, (String, Duration)>,
    /// Echo every response back as a new request on the same connection.
    echo_back: bool,
}

impl TestEngine {
    fn record(&self, e: Event) {
        self.script.events.lock().unwrap().push(e);
        self.script.changed.notify_all();
    }
    /// Connect `conn` again and queue [`PIPELINE`] requests on it.
    fn reconnect(&mut self, conn: Conn) {
        let Some((addr, timeout)) = self.addrs.get(&conn).cloned() else {
            return;
        };
        self.io.push_back(IoCommand::Connect {
            conn,
            addr,
            timeout,
        });
        for i in 0..PIPELINE {
            self.tx.push_back(Transmit {
                conn,
                frame: framed(&[i as u8; 100]).into(),
            });
        }
    }
    fn check_reentry(&self, handler: &'static str) {
        if self.draining {
            self.record(Event::Reentered(handler));
        }
    }
}

impl Engine for TestEngine {
    type Conn = Conn;
    fn handle_wakeup(&mut self, _now: Instant) {
        self.script.parked.store(false, Ordering::SeqCst);
        for cmd in self.script.inbox.lock().unwrap().drain(..) {
            match cmd {
                Cmd::Io(c) => self.io.push_back(c),
                Cmd::Send(conn, frame) => self.tx.push_back(Transmit { conn, frame }),
                Cmd::Deadline(d) => self.deadline = Some(d),
                Cmd::IoWhenTransmitting(c) => self.io_when_transmitting.push_back(c),
                Cmd::Panic => panic!("engine bug"),
                Cmd::Finish => self.finished = true,
            }
        }
    }
    fn handle_connected(&mut self, _: Instant, conn: Conn) {
        self.check_reentry("handle_connected");
        self.record(Event::Connected(conn));
    }
    fn handle_connect_failed(
        &mut self,
        _: Instant,
        conn: Conn,
        _: std::io::ErrorKind,
        reason: &str,
    ) {
        self.check_reentry("handle_connect_failed");
        self.record(Event::ConnectFailed(conn, reason.to_owned()));
    }
    fn handle_disconnected(&mut self, _: Instant, conn: Conn, reason: &str) {
        self.check_reentry("handle_disconnected");
        if self.echo_back {
            self.reconnect(conn);
        }
        self.record(Event::Disconnected(conn, reason.to_owned()));
    }
    fn handle_tls_failed(
        &mut self,
        _: Instant,
        conn: Conn,
        kind: kring_core::TlsFailure,
        reason: &str,
    ) {
        self.check_reentry("handle_tls_failed");
        self.record(Event::TlsFailed(conn, kind, reason.to_owned()));
    }
    fn handle_response(&mut self, _: Instant, conn: Conn, frame: Bytes) {
        self.check_reentry("handle_response");
        if self.echo_back {
            self.tx.push_back(Transmit {
                conn,
                frame: framed(&frame).into(),
            });
        }
        self.record(Event::Response(conn, frame));
    }
    fn handle_timeout(&mut self, now: Instant) {
        assert!(now >= self.deadline.unwrap(), "timeout before the deadline");
        self.deadline = None;
        self.record(Event::Timeout);
    }
    fn poll_io(&mut self) -> Option<IoCommand<Conn>> {
        let c = self.io.pop_front();
        self.draining |= c.is_some();
        if let Some(IoCommand::Connect {
            conn,
            addr,
            timeout,
        }) = &c
        {
            self.addrs.insert(*conn, (addr.clone(), *timeout));
        }
        c
    }
    fn poll_transmit(&mut self, _: Instant) -> Option<Transmit<Conn>> {
        let t = self.tx.pop_front();
        if t.is_none() {
            self.io.extend(self.io_when_transmitting.drain(..));
            self.draining = false;
        } else {
            self.draining = true;
        }
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
    fn prepare_park(&mut self) -> bool {
        self.draining = false;
        self.script.parks.fetch_add(1, Ordering::SeqCst);
        self.script.parked.store(true, Ordering::SeqCst);
        if self.script.inbox.lock().unwrap().is_empty() {
            true
        } else {
            self.script.parked.store(false, Ordering::SeqCst);
            false
        }
    }
    fn is_finished(&self) -> bool {
        self.finished
    }
    fn abort(&mut self, _: Instant, reason: &str) {
        self.record(Event::Aborted(reason.to_owned()));
    }
}

struct Harness {
    script: Arc<Script>,
    driver: Driver,
    /// The timeout of the connects [`connect`](Self::connect) and
    /// [`connect_name`] ask for.
    timeout: Duration,
}

impl Harness {
    fn start() -> Harness {
        Self::with_config(DriverConfig::default())
    }
    /// A harness on `backend`, otherwise the default configuration.
    fn on(backend: crate::IoBackend) -> Harness {
        Self::with_config(DriverConfig {
            backend,
            ..DriverConfig::default()
        })
    }
    fn with_config(config: DriverConfig) -> Harness {
        Self::with_engine(config, false)
    }
    fn with_engine(config: DriverConfig, echo_back: bool) -> Harness {
        let script = Arc::new(Script::default());
        let engine = TestEngine {
            script: Arc::clone(&script),
            io: VecDeque::new(),
            tx: VecDeque::new(),
            io_when_transmitting: VecDeque::new(),
            deadline: None,
            finished: false,
            draining: false,
            addrs: std::collections::HashMap::new(),
            echo_back,
        };
        let asked = config.backend;
        let driver = Driver::start(engine, config).expect("the I/O backend starts");
        if asked != crate::IoBackend::Auto {
            assert_eq!(driver.backend(), asked, "the backend asked for runs");
        }
        Harness {
            script,
            driver,
            timeout: CONNECT_TIMEOUT,
        }
    }
    /// This harness, its connects asking for `timeout`.
    fn connecting_within(self, timeout: Duration) -> Harness {
        Harness { timeout, ..self }
    }
    fn cmd(&self, c: Cmd) {
        self.script.inbox.lock().unwrap().push_back(c);
        // Wake only a parked engine, as producer threads do.
        if self.script.parked.swap(false, Ordering::SeqCst) {
            self.driver.waker().wake();
        }
    }
    /// Several commands the engine takes in one turn.
    fn cmds(&self, cs: impl IntoIterator<Item = Cmd>) {
        self.script.inbox.lock().unwrap().extend(cs);
        if self.script.parked.swap(false, Ordering::SeqCst) {
            self.driver.waker().wake();
        }
    }
    fn connect(&self, conn: Conn, addr: SocketAddr) {
        self.cmd(Cmd::Io(IoCommand::Connect {
            conn,
            addr: addr.to_string(),
            timeout: self.timeout,
        }));
    }
    fn send(&self, conn: Conn, payload: &[u8]) {
        self.cmd(Cmd::Send(conn, framed(payload).into()));
    }
    /// Wait until `pred` holds for the events so far (bounded, so a broken
    /// driver fails the test instead of hanging it).
    fn wait_for(&self, what: &str, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = self.script.events.lock().unwrap();
        while !pred(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; events: {events:?}"
            );
            events = self.script.changed.wait_timeout(events, left).unwrap().0;
        }
        events.clone()
    }
    fn events(&self) -> Vec<Event> {
        self.script.events.lock().unwrap().clone()
    }
}

/// The backends to run on: epoll always, io_uring where usable.
fn backends() -> Vec<crate::IoBackend> {
    let mut all = vec![crate::IoBackend::Epoll];
    if crate::driver::io_uring_usable() {
        all.push(crate::IoBackend::IoUring);
    }
    all
}

fn framed(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + payload.len());
    b.put_i32(payload.len() as i32);
    b.put_slice(payload);
    b.freeze()
}

fn responses(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response(_, b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// A server that echoes each framed request back as a response.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || echo_frames(&mut s, usize::MAX));
        }
    });
    addr
}

/// Echoes each framed request on `s` back as a response, for at most `n`
/// requests or until the connection ends.
fn echo_frames(s: &mut TcpStream, n: usize) {
    for _ in 0..n {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let mut out = len.to_vec();
        out.extend_from_slice(&body);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// A server that runs `f` on its first connection.
fn one_shot_server(f: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            f(s);
        }
    });
    addr
}

#[test]
fn echoes_many_frames_in_order_and_coalesces_sends() {
    let addr = echo_server();
    let h = Harness::start();
    // Queue everything before the connection is up: one SENDMSG can carry
    // all of it.
    h.connect(1, addr);
    let payloads: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| i.to_be_bytes().repeat((i % 50) as usize + 1))
        .collect();
    for p in &payloads {
        h.send(1, p);
    }
    let events = h.wait_for("1000 responses", |e| responses(e).len() == 1000);
    assert_eq!(events[0], Event::Connected(1));
    let got = responses(&events);
    for (g, p) in got.iter().zip(&payloads) {
        assert_eq!(&g[..], &p[..]);
    }
    let sends = h.driver.metrics().sends();
    assert!(sends < 100, "1000 frames took {sends} sends: not coalesced");
}

/// Frames an engine turn builds for one open connection leave in one
/// send, not one per frame or a first send cut short, on both backends.
#[test]
fn one_turns_frames_for_a_connection_leave_in_one_send() {
    for backend in backends() {
        let h = Harness::on(backend);
        h.connect(1, echo_server());
        h.wait_for("connected", |e| e.len() == 1);
        h.cmds((0..200u32).map(|i| Cmd::Send(1, framed(&i.to_be_bytes()).into())));
        let events = h.wait_for("200 responses", |e| responses(e).len() == 200);
        assert_eq!(
            responses(&events)[199][..],
            199u32.to_be_bytes(),
            "{backend:?}"
        );
        assert_eq!(h.driver.metrics().sends(), 1, "{backend:?}");
    }
}

/// A signal the process handles, delivered while the I/O thread sleeps in
/// the kernel (profilers, runtimes and applications install handlers),
/// interrupts the wait with `EINTR`: the loop waits again, it does not
/// end. On both backends.
#[test]
fn a_handled_signal_during_the_wait_does_not_stop_the_loop() {
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: `act` is fully initialised (zeroed, then handler and empty
    // mask set); the handler does nothing, so it is async-signal-safe. No
    // SA_RESTART: the kernel wait returns EINTR, as it would for any
    // handler of the application's.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut act.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()),
            0
        );
    }
    for (i, backend) in backends().into_iter().enumerate() {
        let name = format!("kring-sig-{i}");
        let h = Harness::with_config(DriverConfig {
            backend,
            thread_name: name.clone(),
            ..DriverConfig::default()
        });
        h.connect(1, echo_server());
        h.wait_for("connected", |e| e.len() == 1);
        let tid = thread_id(&name);
        for round in 1..=10 {
            while !h.script.parked.load(Ordering::SeqCst) {
                std::thread::yield_now(); // polls a flag
            }
            // Parked: let it reach the kernel wait (not a timer).
            std::thread::sleep(Duration::from_millis(2));
            // SAFETY: a plain syscall on this process's own thread id.
            let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR2) };
            assert_eq!(rc, 0, "tgkill");
            h.send(1, b"still there");
            h.wait_for("the echo", |e| responses(e).len() == round);
        }
        assert!(
            h.driver.metrics().io_wakeups() >= 10,
            "{backend:?}: the signals woke the loop"
        );
    }
}

/// The kernel's id of this process's thread named `name`.
fn thread_id(name: &str) -> libc::pid_t {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return task.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("no thread named {name}");
}

/// A read that fills the buffer's free room exactly is followed by one
/// that finds nothing yet (`EAGAIN` on epoll): that is "drained for now",
/// not a failed connection. Tiny reads (`min_read` 1) and responses of 8
/// bytes make every read end so, on both backends.
#[test]
fn a_read_that_fills_the_buffer_exactly_is_not_a_failure() {
    for backend in backends() {
        let h = Harness::with_config(DriverConfig {
            backend,
            min_read: 1,
            ..DriverConfig::default()
        });
        h.connect(1, echo_server());
        h.wait_for("connected", |e| e.len() == 1);
        for round in 1..=20u32 {
            h.send(1, &round.to_be_bytes());
            // The echo, or whatever came instead of it.
            let events = h.wait_for("an event", |e| e.len() > round as usize);
            assert_eq!(
                responses(&events).len(),
                round as usize,
                "{backend:?}: {events:?}"
            );
        }
    }
}

/// Whether `f` holds within `bound`, polled every 50 µs: for an
/// effect of the kernel that no event of the harness announces.
fn holds_within(bound: Duration, f: impl Fn() -> bool) -> bool {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    f()
}

/// With a small send buffer (`send.buffer.bytes`) and a peer that does not
/// read yet, frames written one per turn fill the kernel's buffers until a
/// write finds no room: on epoll that is `sendmsg` failing with `EAGAIN`
/// after earlier writes went out whole, which must wait for room, not fail
/// the connection. Once the peer reads, every frame arrives, in order.
#[test]
fn a_full_send_buffer_waits_for_room_and_loses_nothing() {
    for backend in backends() {
        let gate = Arc::new(Gate::default());
        let opened = Arc::clone(&gate);
        let addr = one_shot_server(move |mut s| {
            opened.wait();
            echo_frames(&mut s, usize::MAX);
        });
        let h = Harness::with_config(DriverConfig {
            backend,
            socket_options: SocketOptions {
                send: 4096,
                receive: 4096,
                ..SocketOptions::default()
            },
            ..DriverConfig::default()
        });
        h.connect(1, addr);
        h.wait_for("connected", |e| e.len() == 1);
        let payload = |i: u32| -> Vec<u8> {
            let mut p = i.to_be_bytes().to_vec();
            p.resize(1000, i as u8);
            p
        };
        let m = Arc::clone(h.driver.metrics());
        let mut sent = 0u32;
        // One frame per turn, each written whole, until one is not.
        while sent < 10_000 {
            let before = m.sends();
            h.send(1, &payload(sent));
            sent += 1;
            if !holds_within(Duration::from_millis(300), || m.sends() > before) {
                break;
            }
        }
        // About 170 frames of 1 KB fill 8 KiB of send buffer (4096 asked
        // for, doubled) and the peer's receive buffer; the kernel's own
        // send buffer, which grows to megabytes, would take thousands.
        assert!(
            sent < 1_000,
            "{backend:?}: {sent} frames did not fill the buffers; is send.buffer.bytes set?"
        );
        // More while the connection waits for room.
        for _ in 0..50 {
            h.send(1, &payload(sent));
            sent += 1;
        }
        gate.open();
        let events = h.wait_for("every echo, or a failure", |e| {
            responses(e).len() == sent as usize || e.len() > 1 + responses(e).len()
        });
        let got = responses(&events);
        assert_eq!(got.len(), sent as usize, "{backend:?}: {:?}", &events[..2]);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(&r[..], &payload(i as u32)[..], "{backend:?}: frame {i}");
        }
    }
}

#[test]
fn large_frames_survive_partial_writes_and_reads() {
    let addr = echo_server();
    let h = Harness::start();
    h.connect(1, addr);
    let big: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    h.send(1, &big);
    h.send(1, b"after");
    let events = h.wait_for("2 responses", |e| responses(e).len() == 2);
    let got = responses(&events);
    assert!(got[0][..] == big[..], "large frame corrupted");
    assert_eq!(&got[1][..], b"after");
    let m = h.driver.metrics();
    assert_eq!(m.bytes_sent(), (4 + big.len() + 4 + 5) as u64);
    assert_eq!(m.bytes_received(), m.bytes_sent());
    // 24 MiB cannot fit the socket buffer: the write went out in parts,
    // each resumed from where the previous one stopped.
    assert!(m.sends() >= 2, "{} sends", m.sends());
}

/// One frame of `chunks` chunks (more than `IOV_MAX`), as a ProduceRequest
/// of that many partitions is: small pieces between large shared ones, of
/// odd sizes so that partial writes stop inside chunks.
fn chunked_frame(chunks: usize) -> (Frame, Vec<u8>) {
    let mut body = Vec::new();
    let mut parts = Vec::new();
    for i in 0..chunks {
        let len = if i % 2 == 0 {
            7 + i % 5
        } else {
            9_001 + i % 13
        };
        let part: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        body.extend_from_slice(&part);
        parts.push(Bytes::from(part));
    }
    let mut frame = Frame::from(Bytes::copy_from_slice(&(body.len() as i32).to_be_bytes()));
    for p in parts {
        frame.push(p);
    }
    (frame, body)
}

/// A frame of more chunks than one `SENDMSG` takes, and larger than the
/// socket buffers: it goes out over several sends, each resuming inside a
/// chunk where the previous one stopped, and arrives intact.
fn chunked_frame_goes_out_whole(h: Harness) {
    let addr = echo_server();
    h.connect(1, addr);
    let (frame, body) = chunked_frame(2 * conn::MAX_IOVECS + 501);
    assert!(frame.chunks().len() > 2 * conn::MAX_IOVECS);
    let len = frame.len();
    h.cmd(Cmd::Send(1, frame));
    h.send(1, b"after");
    let events = h.wait_for("2 responses", |e| responses(e).len() == 2);
    let got = responses(&events);
    assert!(got[0][..] == body[..], "chunked frame corrupted");
    assert_eq!(&got[1][..], b"after");
    let m = h.driver.metrics();
    assert_eq!(m.bytes_sent(), (len + 4 + 5) as u64);
    // At most IOV_MAX chunks per send: at least three sends.
    assert!(m.sends() >= 3, "{} sends", m.sends());
}

#[test]
fn frames_of_more_chunks_than_iov_max_survive_partial_writes() {
    chunked_frame_goes_out_whole(Harness::start());
}

#[test]
fn chunked_frames_survive_partial_zero_copy_writes() {
    chunked_frame_goes_out_whole(Harness::with_config(DriverConfig {
        send_zero_copy_from: Some(64 * 1024),
        backend: crate::IoBackend::IoUring,
        ..DriverConfig::default()
    }));
}

#[test]
fn zero_copy_sends_deliver_the_same_bytes() {
    let addr = echo_server();
    let h = Harness::with_config(DriverConfig {
        send_zero_copy_from: Some(64 * 1024),
        backend: crate::IoBackend::IoUring,
        ..DriverConfig::default()
    });
    h.connect(1, addr);
    let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    h.send(1, &big);
    h.send(1, b"small");
    h.send(1, &big[..100_000]);
    let events = h.wait_for("3 responses", |e| responses(e).len() == 3);
    let got = responses(&events);
    assert!(got[0][..] == big[..], "large frame corrupted");
    assert_eq!(&got[1][..], b"small");
    assert!(got[2][..] == big[..100_000]);
    // Every notification arrived: shutdown finds nothing left to drain
    // (otherwise it waits out its 5 s bound).
    let start = Instant::now();
    drop(h);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn many_responses_in_one_read_and_one_split_across_reads() {
    let addr = one_shot_server(|mut s| {
        let mut all = Vec::new();
        for i in 0..50u8 {
            all.extend_from_slice(&framed(&[i; 3]));
        }
        s.write_all(&all).unwrap();
        let split = framed(b"split response");
        s.write_all(&split[..6]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50)); // let the first part be read alone
        s.write_all(&split[6..]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let h = Harness::start();
    h.connect(7, addr);
    let events = h.wait_for("51 responses", |e| responses(e).len() == 51);
    let got = responses(&events);
    for (i, g) in got[..50].iter().enumerate() {
        assert_eq!(&g[..], &[i as u8; 3]);
    }
    assert_eq!(&got[50][..], b"split response");
}

#[test]
fn connect_asked_for_while_transmitting_is_carried_out_in_the_same_turn() {
    let addr = echo_server();
    let h = Harness::start();
    h.cmd(Cmd::IoWhenTransmitting(IoCommand::Connect {
        conn: 5,
        addr: addr.to_string(),
        timeout: CONNECT_TIMEOUT,
    }));
    let events = h.wait_for("the connection", |e| !e.is_empty());
    assert_eq!(events, vec![Event::Connected(5)]);
}

#[test]
fn a_panic_on_the_io_thread_aborts_the_engine_and_closes_sockets() {
    let addr = echo_server();
    let mut h = Harness::start();
    h.connect(1, addr);
    h.wait_for("the connection", |e| !e.is_empty());
    h.cmd(Cmd::Panic);
    let events = h.wait_for("the abort", |e| e.len() >= 2);
    match &events[1] {
        Event::Aborted(reason) => assert!(reason.contains("panicked: engine bug"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(h.driver.join_timeout(Duration::from_secs(10)));
}

#[test]
fn refused_connect_is_reported() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = Harness::start();
    h.connect(3, addr);
    let events = h.wait_for("connect failure", |e| !e.is_empty());
    match &events[0] {
        Event::ConnectFailed(3, reason) => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unresolvable_address_is_a_connect_failure() {
    let h = Harness::start();
    h.cmd(Cmd::Io(IoCommand::Connect {
        conn: 4,
        addr: "not an address".to_owned(),
        timeout: CONNECT_TIMEOUT,
    }));
    let events = h.wait_for("connect failure", |e| !e.is_empty());
    assert!(matches!(&events[0], Event::ConnectFailed(4, r) if r.contains("not an address")));
}

/// Each connect times out after the timeout its own `Connect` command
/// carries (the core grows it per failed attempt), named in the reason:
/// two connects to a broker that never answers, asked for together with
/// different timeouts, fail in the order of their timeouts, each no
/// sooner than its own. On both backends.
#[test]
fn a_connect_times_out_after_its_own_timeout() {
    // A listener whose accept queue is full drops further SYNs, so a new
    // connect hangs until its timeout ends it.
    let listener = full_backlog_listener();
    let addr = listener.0.to_string();
    let (short, long) = (Duration::from_millis(150), Duration::from_millis(600));
    for backend in backends() {
        let h = Harness::on(backend);
        let start = Instant::now();
        h.cmds([(5, long), (6, short)].map(|(conn, timeout)| {
            Cmd::Io(IoCommand::Connect {
                conn,
                addr: addr.clone(),
                timeout,
            })
        }));
        let events = h.wait_for("the first failure", |e| !e.is_empty());
        let first = start.elapsed();
        let events_2 = h.wait_for("the second failure", |e| e.len() == 2);
        let second = start.elapsed();
        match (&events[0], &events_2[1]) {
            (Event::ConnectFailed(6, a), Event::ConnectFailed(5, b)) => {
                assert!(a.contains("timed out after 150ms"), "{backend:?}: {a}");
                assert!(b.contains("timed out after 600ms"), "{backend:?}: {b}");
            }
            _ => panic!("{backend:?}: {events_2:?}"),
        }
        assert!(first >= short && first < long, "{backend:?}: {first:?}");
        assert!(second >= long, "{backend:?}: {second:?}");
    }
    drop(listener);
}

/// The producer's connect attempts to a broker that never answers get
/// the timeouts the core grows (`socket.connection.setup.timeout.ms`
/// 100 ms, doubled per failed attempt up to `.max.ms` 400 ms), each
/// enforced by the driver: by the end of a 2 s wait for metadata the last
/// attempt failed after more than the start could be. On both backends.
#[test]
fn the_producers_connect_attempts_get_the_growing_timeout() {
    let listener = full_backlog_listener();
    for backend in backends() {
        let p = crate::Producer::builder()
            .bootstrap(&listener.0.to_string())
            .io_backend(backend)
            .connect_timeout(Duration::from_millis(100))
            .connect_timeout_max(Duration::from_millis(400))
            .max_block(Duration::from_secs(2))
            .build()
            .unwrap();
        let err = p.send(crate::Record::new("t", b"x")).map(drop).unwrap_err();
        let crate::SendError::MetadataTimeout {
            last_error: Some(crate::LastError::Connect { kind, message }),
            ..
        } = &err
        else {
            panic!("{backend:?}: {err:?}");
        };
        assert_eq!(
            *kind,
            std::io::ErrorKind::TimedOut,
            "{backend:?}: {message}"
        );
        // "... connect timed out after 345.678ms"
        let after = message
            .rsplit_once("timed out after ")
            .and_then(|(_, d)| d.strip_suffix("ms"))
            .and_then(|ms| ms.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{backend:?}: {message}"));
        assert!(
            after > 120.0 && after <= 400.0,
            "{backend:?}: grown past 100 ms ± 20 %, at most 400 ms: {message}"
        );
    }
    drop(listener);
}

/// A listening socket with backlog 0, its accept queue already filled.
fn full_backlog_listener() -> (SocketAddr, std::os::fd::OwnedFd, Vec<std::os::fd::OwnedFd>) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let fd = socket::tcp_socket(&any, socket::SocketOptions::default()).unwrap();
    let raw = socket::RawSockAddr::new(any);
    // SAFETY: fd is a live socket; the address is valid for its length.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) };
    assert_eq!(rc, 0);
    // SAFETY: fd is a live, bound socket.
    assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 0) }, 0);
    // SAFETY: sockaddr_in is plain old data.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: sin and len are valid for writes of the given size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sin as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    let addr: SocketAddr = format!("127.0.0.1:{}", u16::from_be(sin.sin_port))
        .parse()
        .unwrap();
    // Fill the queue with blocking connects that complete (backlog 0 holds
    // one); stop at the first that would hang.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            // SAFETY: into_raw_fd hands over sole ownership of the fd.
            Ok(s) => fillers
                .push(unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(s)) }),
            Err(_) => break,
        }
    }
    (addr, fd, fillers)
}

#[test]
fn peer_close_is_a_disconnect() {
    let addr = one_shot_server(drop);
    let h = Harness::start();
    h.connect(2, addr);
    let events = h.wait_for("disconnect", |e| e.len() == 2);
    assert_eq!(events[0], Event::Connected(2));
    assert!(matches!(&events[1], Event::Disconnected(2, r) if r.contains("closed by the broker")));
}

/// A plaintext broker that closes before sending a byte may be a TLS
/// listener: the reason says so. One that answered first gets no such
/// hint. Both backends.
#[test]
fn a_close_before_any_answer_hints_at_tls_and_a_later_one_does_not() {
    for backend in backends() {
        let h = Harness::on(backend);
        h.connect(1, one_shot_server(drop));
        // Answers one request, then closes.
        h.connect(
            2,
            one_shot_server(|mut s| {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).unwrap();
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                s.read_exact(&mut body).unwrap();
                s.write_all(&framed(&body)).unwrap();
            }),
        );
        h.send(2, b"one");
        let events = h.wait_for("both closes", |e| {
            e.iter()
                .filter(|e| matches!(e, Event::Disconnected(..)))
                .count()
                == 2
        });
        let reason = |conn| {
            events
                .iter()
                .find_map(|e| match e {
                    Event::Disconnected(c, r) if *c == conn => Some(r.clone()),
                    _ => None,
                })
                .unwrap()
        };
        assert!(
            reason(1).contains("before it answered") && reason(1).contains("security.protocol=SSL"),
            "{backend:?}: {}",
            reason(1)
        );
        assert_eq!(reason(2), "connection closed by the broker", "{backend:?}");
    }
}

/// A response cut short by the broker's close, the last bytes and the FIN
/// in one segment (TCP_CORK): the driver reads the bytes and must still see
/// the close. On epoll both arrive as one edge-triggered event, and a short
/// read alone would have ended reading there with the close never noticed.
#[test]
fn a_close_arriving_with_the_last_bytes_is_a_disconnect() {
    let (request_read_tx, request_read_rx) = std::sync::mpsc::channel::<()>();
    let addr = one_shot_server(move |mut s| {
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        let one: libc::c_int = 1;
        // SAFETY: a live socket; the option value is a c_int that outlives
        // the call.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        // Half of a 100-byte response, then the close, in one segment.
        let mut partial = 100i32.to_be_bytes().to_vec();
        partial.extend_from_slice(&[7; 50]);
        s.write_all(&partial).unwrap();
        drop(s);
        let _ = request_read_tx.send(());
    });
    let h = Harness::start();
    h.connect(3, addr);
    h.wait_for("connected", |e| e.len() == 1);
    h.send(3, b"request");
    request_read_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server answered");
    let events = h.wait_for("disconnect", |e| e.len() == 2);
    assert_eq!(events[0], Event::Connected(3));
    assert!(
        matches!(&events[1], Event::Disconnected(3, r) if r.contains("closed by the broker")),
        "{events:?}"
    );
}

#[test]
fn malformed_size_prefix_is_a_disconnect() {
    let addr = one_shot_server(|mut s| {
        s.write_all(&(-5i32).to_be_bytes()).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let h = Harness::start();
    h.connect(2, addr);
    let events = h.wait_for("disconnect", |e| e.len() == 2);
    assert!(matches!(&events[1], Event::Disconnected(2, r) if r.contains("negative size")));
}

#[test]
fn close_cancels_and_closes_the_socket_and_the_id_can_reconnect() {
    let (eof_tx, eof_rx) = std::sync::mpsc::channel();
    let addr = one_shot_server(move |mut s| {
        let mut rest = Vec::new();
        let r = s.read_to_end(&mut rest);
        eof_tx.send(r.is_ok()).unwrap();
    });
    let h = Harness::start();
    h.connect(9, addr);
    h.wait_for("connected", |e| e.len() == 1);
    // The receive armed on the socket must be cancelled and the fd closed.
    h.cmd(Cmd::Io(IoCommand::Close { conn: 9 }));
    assert!(
        eof_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "server saw EOF"
    );
    // Same id, new socket: completions of the old one are not reported.
    let echo = echo_server();
    h.connect(9, echo);
    h.send(9, b"again");
    let events = h.wait_for("response", |e| !responses(e).is_empty());
    assert_eq!(
        events,
        vec![
            Event::Connected(9),
            Event::Connected(9),
            Event::Response(9, Bytes::from_static(b"again"))
        ]
    );
}

#[test]
fn close_while_connecting_reports_nothing() {
    let listener = full_backlog_listener();
    let h = Harness::start();
    h.connect(6, listener.0);
    h.cmd(Cmd::Io(IoCommand::Close { conn: 6 }));
    let echo = echo_server();
    h.connect(8, echo);
    h.send(8, b"x");
    let events = h.wait_for("response", |e| !responses(e).is_empty());
    assert_eq!(
        events[0],
        Event::Connected(8),
        "nothing reported for conn 6"
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::ConnectFailed(6, _))));
}

/// A deadline ends the kernel wait, which sleeps until it rather than
/// ticking or spinning, on both backends.
#[test]
fn engine_deadline_ends_the_wait() {
    for backend in backends() {
        let h = Harness::on(backend);
        let before = h.driver.metrics().io_wakeups();
        let parks = h.script.parks.load(Ordering::SeqCst);
        let start = Instant::now();
        h.cmd(Cmd::Deadline(start + Duration::from_millis(30)));
        h.wait_for("timeout", |e| e.contains(&Event::Timeout));
        assert!(start.elapsed() >= Duration::from_millis(30));
        // One wake-up for the command, one (rarely two, if the kernel timer
        // fires a hair early) for the deadline: no tick.
        let wakeups = h.driver.metrics().io_wakeups() - before;
        assert!(
            (1..=4).contains(&wakeups),
            "{backend:?}: {wakeups} wake-ups"
        );
        // And as few turns: a loop that did not sleep would turn without
        // counting wake-ups.
        let turns = h.script.parks.load(Ordering::SeqCst) - parks;
        assert!(turns <= 6, "{backend:?}: {turns} turns");
    }
}

/// An idle driver sleeps: no wake-up at all while nothing happens, and
/// none after a producer's wake-up was handled (its eventfd count is
/// consumed; left unread, the loop would see it again and spin), on both
/// backends.
#[test]
fn idle_driver_does_not_wake_up() {
    for backend in backends() {
        let h = Harness::on(backend);
        // Real time is the point here: nothing at all may happen meanwhile.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(h.driver.metrics().io_wakeups(), 0, "{backend:?}");
        // The engine is parked: the command comes with a wake-up.
        assert!(h.script.parked.load(Ordering::SeqCst));
        h.cmd(Cmd::Deadline(Instant::now()));
        h.wait_for("timeout", |e| e.contains(&Event::Timeout));
        let woken = h.driver.metrics().io_wakeups();
        assert!(woken >= 1, "{backend:?}");
        std::thread::sleep(Duration::from_millis(200));
        let more = h.driver.metrics().io_wakeups() - woken;
        assert!(more <= 1, "{backend:?}: {more} wake-ups with nothing to do");
    }
}

#[test]
fn finished_engine_stops_the_thread_and_drop_aborts_an_unfinished_one() {
    let mut h = Harness::start();
    h.connect(1, echo_server());
    h.wait_for("connected", |e| e.len() == 1);
    h.cmd(Cmd::Finish);
    assert!(h.driver.join_timeout(Duration::from_secs(10)));
    assert!(h.driver.has_exited());
    assert!(!h.events().iter().any(|e| matches!(e, Event::Aborted(_))));

    let h = Harness::start();
    h.connect(1, echo_server());
    h.wait_for("connected", |e| e.len() == 1);
    let script = Arc::clone(&h.script);
    drop(h);
    let events = script.events.lock().unwrap().clone();
    assert!(matches!(events.last(), Some(Event::Aborted(r)) if r.contains("stopped")));
}

/// Bytes read until the peer closes (or resets: the count so far).
fn bytes_until_the_end(s: &mut impl Read) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        total += n;
    }
    total
}

/// A finished engine that closes a connection in the turn it builds its
/// last frame (acks=0: the records count as delivered once written) gets
/// every byte of it written before the socket closes, on both backends.
#[test]
fn a_finished_engines_close_waits_for_its_last_frame_to_be_written() {
    // More than the socket buffers take in one write.
    let payload = vec![5u8; 32 * 1024 * 1024];
    for backend in backends() {
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let addr = one_shot_server(move |mut s| {
            let _ = tx.send(bytes_until_the_end(&mut s));
        });
        let h = Harness::on(backend);
        h.connect(1, addr);
        h.wait_for("connected", |e| e.len() == 1);
        assert_eq!(h.driver.metrics().connects(), 1, "{backend:?}");
        every_byte_before_the_close(h, &rx, &payload, Duration::from_secs(20), backend);
    }
}

/// In one engine turn: a frame of `payload` on connection 1 of `h`, its
/// close asked for while transmitting, and the engine finished. Then: the
/// server (which sends on `rx` the bytes it read before the connection
/// ended) read the whole frame within `within`, and the driver stopped.
fn every_byte_before_the_close(
    mut h: Harness,
    rx: &std::sync::mpsc::Receiver<usize>,
    payload: &[u8],
    within: Duration,
    backend: crate::IoBackend,
) {
    h.cmds([
        Cmd::Send(1, framed(payload).into()),
        Cmd::IoWhenTransmitting(IoCommand::Close { conn: 1 }),
        Cmd::Finish,
    ]);
    let got = rx
        .recv_timeout(within)
        .expect("the server saw the connection end");
    assert_eq!(got, 4 + payload.len(), "{backend:?}");
    assert!(
        h.driver.join_timeout(Duration::from_secs(10)),
        "{backend:?}"
    );
}

/// Requests each connection keeps in flight in the load test.
const PIPELINE: usize = 8;

/// An echo server that closes each connection after `n` responses.
fn dropping_echo_server(n: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || echo_frames(&mut s, n));
        }
    });
    addr
}

/// A ring of 4 entries (8 completion slots) under many connections with
/// pipelined traffic and dropping peers: the submission queue is full and
/// the completion queue overflows all the time. Engine handlers must still
/// run only from the top of the loop, never from inside a submission that
/// made room by reaping, and nothing may panic.
#[test]
fn a_tiny_ring_under_load_never_reenters_the_engine() {
    let h = Harness::with_engine(
        DriverConfig {
            ring_entries: 4,
            // Today's kernels rarely refuse a submission; older ones
            // answer EBUSY while completions overflow. Do it often.
            busy_every: std::num::NonZeroU32::new(3),
            ..DriverConfig::default()
        },
        true,
    );
    let servers: Vec<SocketAddr> = (0..4).map(|_| echo_server()).collect();
    let dropper = dropping_echo_server(20);
    let conns: Conn = 32;
    for conn in 0..conns {
        let addr = if conn % 4 == 3 {
            dropper
        } else {
            servers[conn as usize % 4]
        };
        h.connect(conn, addr);
        for i in 0..PIPELINE {
            h.send(conn, &[i as u8; 100]);
        }
    }
    let events = h.wait_for("20,000 responses or a failure", |e| {
        responses(e).len() >= 20_000
            || e.iter()
                .any(|e| matches!(e, Event::Reentered(_) | Event::Aborted(_)))
    });
    let bad: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Reentered(_) | Event::Aborted(_)))
        .take(5)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let drops = events
        .iter()
        .filter(|e| matches!(e, Event::Disconnected(..)))
        .count();
    assert!(drops > 10, "only {drops} connection drops");
}

/// `io_uring_enter` answers `EAGAIN` when the kernel cannot allocate
/// memory for a request ("wait for some completions and try again",
/// io_uring_enter(2)): a transient refusal, like `EBUSY`, that must not
/// end the I/O thread and abort every pending record.
#[test]
fn a_submission_refused_with_eagain_is_retried_not_fatal() {
    let h = Harness::with_config(DriverConfig {
        ring_entries: 4,
        busy_every: std::num::NonZeroU32::new(2),
        busy_errno: libc::EAGAIN,
        backend: crate::IoBackend::IoUring,
        ..DriverConfig::default()
    });
    let addr = echo_server();
    let conns: Conn = 8;
    for conn in 0..conns {
        h.connect(conn, addr);
        for i in 0..PIPELINE {
            h.send(conn, &[i as u8; 100]);
        }
    }
    let want = conns as usize * PIPELINE;
    let events = h.wait_for("every response or an abort", |e| {
        responses(e).len() == want || e.iter().any(|e| matches!(e, Event::Aborted(_)))
    });
    assert!(
        !events.iter().any(|e| matches!(e, Event::Aborted(_))),
        "{:?}",
        events.iter().find(|e| matches!(e, Event::Aborted(_)))
    );
}

/// A connect is two linked entries (the connect and its timeout), which
/// must be queued together: a ring of one entry could never take them,
/// and the I/O thread would spin in the submission forever.
#[test]
fn a_ring_of_one_entry_still_connects() {
    let h = Harness::with_config(DriverConfig {
        ring_entries: 1,
        backend: crate::IoBackend::IoUring,
        ..DriverConfig::default()
    });
    h.connect(1, echo_server());
    h.send(1, b"one entry");
    let events = h.wait_for("the echo", |e| !responses(e).is_empty());
    assert_eq!(events[0], Event::Connected(1));
}

/// A server that accepts every connection and never writes to it.
fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            });
        }
    });
    addr
}

/// A panic inside shutdown, after the sockets' receives were cancelled but
/// before their completions arrived, must not free the receive buffers:
/// the ring's drop guard drains every operation first (or leaks it).
#[test]
fn a_panic_in_shutdown_frees_no_buffer_before_its_completion() {
    let metrics = stop_with_receives_in_the_kernel(DriverConfig {
        panic_in_shutdown: true,
        ..DriverConfig::default()
    });
    // 8 receives and the wake-up read were in the kernel.
    assert!(metrics.drop_guard_drained.load(Ordering::Relaxed) >= 8);
    assert_eq!(metrics.ops_leaked.load(Ordering::Relaxed), 0);
    // The process carries on: a new driver works.
    let h = Harness::start();
    h.connect(1, echo_server());
    h.send(1, b"still alive");
    h.wait_for("response", |e| !responses(e).is_empty());
}

/// Operations whose completions never come are leaked, never freed, when
/// the drain bound runs out: by shutdown itself, and by the ring's drop
/// guard when shutdown panicked first. The kernel may still write into
/// their buffers (the test hook only hides the completions; the leak is
/// what a stuck operation would get).
#[test]
fn operations_that_never_complete_are_leaked_not_freed() {
    for panic_in_shutdown in [false, true] {
        let metrics = stop_with_receives_in_the_kernel(DriverConfig {
            panic_in_shutdown,
            drain_sees_nothing_for: Some(Duration::from_millis(200)),
            ..DriverConfig::default()
        });
        assert!(
            metrics.ops_leaked.load(Ordering::Relaxed) >= 8,
            "panic {panic_in_shutdown}: leaked {}",
            metrics.ops_leaked.load(Ordering::Relaxed)
        );
        assert_eq!(metrics.drop_guard_drained.load(Ordering::Relaxed), 0);
    }
}

/// Opens 8 connections to a server that never writes (each with a receive
/// in the kernel), stops the driver, waits for its thread to end within
/// 4 s (below the 5 s drain bound, `SHUTDOWN_DRAIN`: cancelled operations
/// complete at once) and checks no operation's buffers were freed before
/// its completion was reaped. On io_uring, with `config`.
fn stop_with_receives_in_the_kernel(config: DriverConfig) -> Arc<DriverMetrics> {
    let silent = silent_server();
    let mut h = Harness::with_config(DriverConfig {
        backend: crate::IoBackend::IoUring,
        ..config
    });
    for conn in 0..8 {
        h.connect(conn, silent);
    }
    h.wait_for("8 connections", |e| e.len() == 8);
    let metrics = Arc::clone(h.driver.metrics());
    h.driver.stop();
    assert!(h.driver.join_timeout(Duration::from_secs(4)));
    assert_eq!(
        metrics.ops_freed_unreaped.load(Ordering::Relaxed),
        0,
        "buffers freed while the kernel could still write into them"
    );
    metrics
}

/// A gate a test resolver blocks on until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// A driver whose resolver maps each name through `f`, its connects
/// asking for `connect_timeout`.
fn with_resolver(
    connect_timeout: Duration,
    f: impl Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
) -> Harness {
    Harness::with_config(DriverConfig {
        resolver: Some(resolver::Resolver::new(f)),
        ..DriverConfig::default()
    })
    .connecting_within(connect_timeout)
}

fn connect_name(h: &Harness, conn: Conn, name: &str) {
    h.cmd(Cmd::Io(IoCommand::Connect {
        conn,
        addr: name.to_owned(),
        timeout: h.timeout,
    }));
}

/// An address nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A lookup that hangs must not hold up other connections' traffic or the
/// engine's deadlines; frames queued for the resolving connection go out
/// once it connects.
#[test]
fn a_slow_name_lookup_delays_nothing_else() {
    let echo = echo_server();
    let gate = Arc::new(Gate::default());
    let g = Arc::clone(&gate);
    let h = with_resolver(Duration::from_secs(30), move |name| {
        assert_eq!(name, "slow.broker:9092");
        g.wait();
        Ok(vec![echo])
    });
    connect_name(&h, 1, "slow.broker:9092");
    h.send(1, b"queued while resolving");
    let held = vec![7u8; 1000];
    h.send(1, &held);
    h.connect(2, echo);
    h.send(2, b"fast");
    h.cmd(Cmd::Deadline(Instant::now() + Duration::from_millis(20)));
    let events = h.wait_for("the other broker's response and the deadline", |e| {
        !responses(e).is_empty() && e.contains(&Event::Timeout)
    });
    // Frames queued on a lookup count among the bytes the driver holds
    // (published by the turn that queued them, turns before these events).
    let queued = 2 * 4 + b"queued while resolving".len() + held.len();
    let now_held = h.driver.metrics().request_bytes_held();
    assert!(now_held >= queued as u64, "{now_held} < {queued}");
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Connected(1) | Event::ConnectFailed(1, _) | Event::Response(1, _)
        )),
        "{events:?}"
    );
    gate.open();
    let events = h.wait_for("the slow broker's response", |e| {
        e.contains(&Event::Response(
            1,
            Bytes::from_static(b"queued while resolving"),
        ))
    });
    assert!(events.contains(&Event::Connected(1)));
}

/// A lookup that overruns the connect timeout fails the attempt; its late
/// answer is ignored.
#[test]
fn a_name_lookup_that_overruns_the_connect_timeout_fails_the_attempt() {
    let gate = Arc::new(Gate::default());
    let g = Arc::clone(&gate);
    let echo = echo_server();
    let h = with_resolver(Duration::from_millis(200), move |_| {
        g.wait();
        Ok(vec![echo])
    });
    let start = Instant::now();
    connect_name(&h, 3, "hanging.broker:9092");
    let events = h.wait_for("the failure", |e| !e.is_empty());
    let waited = start.elapsed();
    match &events[0] {
        Event::ConnectFailed(3, r) => {
            assert!(
                r.contains("resolving hanging.broker:9092 timed out after 200ms"),
                "{r}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The late answer connects nothing.
    gate.open();
    h.connect(4, echo);
    h.send(4, b"x");
    let events = h.wait_for("a response", |e| !responses(e).is_empty());
    assert!(!events.contains(&Event::Connected(3)), "{events:?}");
}

/// A connection closed while its name is being looked up hears nothing
/// of the lookup: its answer connects nothing, and the id is free for a
/// new attempt.
#[test]
fn a_connection_closed_during_its_lookup_hears_nothing_of_it() {
    let gate = Arc::new(Gate::default());
    let g = Arc::clone(&gate);
    let echo = echo_server();
    let h = with_resolver(Duration::from_secs(30), move |name| {
        if name == "slow.broker:1" {
            g.wait();
        }
        Ok(vec![echo])
    });
    connect_name(&h, 1, "slow.broker:1");
    h.send(1, b"never sent");
    h.cmd(Cmd::Io(IoCommand::Close { conn: 1 }));
    gate.open();
    // The lookup's thread has answered once the resolver returned; a turn
    // later its answer has been taken in (or dropped).
    connect_name(&h, 2, "fast.broker:1");
    h.send(2, b"x");
    h.wait_for("a response on 2", |e| !responses(e).is_empty());
    connect_name(&h, 3, "fast.broker:1");
    h.send(3, b"y");
    let events = h.wait_for("a response on 3", |e| responses(e).len() == 2);
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Connected(1) | Event::ConnectFailed(1, _) | Event::Response(1, _)
        )),
        "{events:?}"
    );
    // The id connects again, to a name looked up anew, and only its new
    // frame goes out.
    connect_name(&h, 1, "fast.broker:1");
    h.send(1, b"z");
    let events = h.wait_for("a response on 1", |e| {
        e.contains(&Event::Response(1, Bytes::from_static(b"z")))
    });
    let on_1: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Connected(1) | Event::ConnectFailed(1, _) | Event::Response(1, _)
            )
        })
        .collect();
    assert_eq!(
        on_1,
        [
            &Event::Connected(1),
            &Event::Response(1, Bytes::from_static(b"z"))
        ]
    );
}

/// A resolver that hangs holds at most [`resolver::MAX_LOOKUPS`] threads:
/// the next name fails at once, naming the cap. A failure queued for a
/// connection closed in the same turn is dropped; another connection's is
/// reported. Once the lookups return, names resolve again.
#[test]
fn hung_lookups_are_capped_and_only_a_closed_connections_failure_is_dropped() {
    let gate = Arc::new(Gate::default());
    let g = Arc::clone(&gate);
    let echo = echo_server();
    let h = with_resolver(Duration::from_secs(30), move |_| {
        g.wait();
        Ok(vec![echo])
    });
    let cap = resolver::MAX_LOOKUPS as Conn;
    h.cmds((0..cap).map(|c| {
        Cmd::Io(IoCommand::Connect {
            conn: c,
            addr: "hung.broker:1".to_owned(),
            timeout: h.timeout,
        })
    }));
    let over = |conn| {
        Cmd::Io(IoCommand::Connect {
            conn,
            addr: "one.more:1".to_owned(),
            timeout: h.timeout,
        })
    };
    h.cmds([
        over(cap),
        over(cap + 1),
        Cmd::Io(IoCommand::Close { conn: cap + 1 }),
    ]);
    let events = h.wait_for("the failure", |e| !e.is_empty());
    match &events[..] {
        [Event::ConnectFailed(c, r)] if *c == cap => assert!(
            r.contains("cannot resolve one.more:1: 16 name lookups are still running"),
            "{r}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    gate.open();
    let events = h.wait_for("the hung lookups connect", |e| {
        e.iter()
            .filter(|e| matches!(e, Event::Connected(_)))
            .count()
            == cap as usize
    });
    connect_name(&h, cap + 2, "one.more:1");
    h.send(cap + 2, b"after");
    let later = h.wait_for("a response", |e| !responses(e).is_empty());
    assert!(later.contains(&Event::Connected(cap + 2)), "{later:?}");
    assert_eq!(
        later
            .iter()
            .filter(|e| matches!(e, Event::ConnectFailed(..)))
            .count(),
        1,
        "{events:?}"
    );
}

/// Every resolved address is tried in order; the engine hears of a failure
/// only when all failed.
#[test]
fn every_resolved_address_is_tried_in_order() {
    let echo = echo_server();
    let (bad1, bad2) = (closed_port(), closed_port());
    let h = with_resolver(Duration::from_secs(5), move |name| match name {
        "moved.broker:1" => Ok(vec![bad1, echo]),
        "gone.broker:1" => Ok(vec![bad1, bad2]),
        _ => Ok(vec![]),
    });
    connect_name(&h, 1, "moved.broker:1");
    h.send(1, b"to the good one");
    let events = h.wait_for("response", |e| !responses(e).is_empty());
    assert_eq!(events[0], Event::Connected(1));
    connect_name(&h, 2, "gone.broker:1");
    connect_name(&h, 3, "nothing.broker:1");
    let events = h.wait_for("two failures", |e| {
        e.iter()
            .filter(|e| matches!(e, Event::ConnectFailed(..)))
            .count()
            == 2
    });
    assert!(events.iter().any(
        |e| matches!(e, Event::ConnectFailed(2, r) if r.contains("gone.broker:1") && r.contains("refused"))
    ), "{events:?}");
    assert!(
        events.iter().any(
            |e| matches!(e, Event::ConnectFailed(3, r) if r.contains("resolved to no address"))
        ),
        "{events:?}"
    );
}

/// An address the kernel refuses at once (`connect` fails before any
/// packet: here the broadcast address, "network unreachable") is skipped
/// for the next one like an address that refused later; with none left
/// the failure names the broker and the kernel's reason. On both backends.
#[test]
fn an_address_refused_at_once_is_skipped_for_the_next() {
    for backend in backends() {
        let echo = echo_server();
        let unreachable: SocketAddr = "255.255.255.255:9".parse().unwrap();
        let h = Harness::with_config(DriverConfig {
            backend,
            resolver: Some(resolver::Resolver::new(move |name| match name {
                "moved.broker:1" => Ok(vec![unreachable, echo]),
                _ => Ok(vec![unreachable]),
            })),
            ..DriverConfig::default()
        });
        connect_name(&h, 1, "moved.broker:1");
        h.send(1, b"to the good one");
        let events = h.wait_for("the response or a failure", |e| {
            e.iter()
                .any(|e| matches!(e, Event::Response(..) | Event::ConnectFailed(..)))
        });
        assert!(
            matches!(&events[..], [Event::Connected(1), Event::Response(1, _)]),
            "{backend:?}: {events:?}"
        );
        connect_name(&h, 2, "gone.broker:1");
        let events = h.wait_for("the failure", |e| e.len() == 3);
        assert!(
            matches!(&events[2], Event::ConnectFailed(2, r)
                if r.contains("gone.broker:1") && r.contains("unreachable")),
            "{backend:?}: {events:?}"
        );
    }
}

/// Each connection attempt resolves the name again: a broker that moved
/// is found at its new address.
#[test]
fn every_attempt_resolves_the_name_again() {
    let (first, second) = (echo_server(), echo_server());
    let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = Arc::clone(&lookups);
    let h = with_resolver(Duration::from_secs(5), move |_| {
        let addr = if n.fetch_add(1, Ordering::SeqCst) == 0 {
            first
        } else {
            second
        };
        Ok(vec![addr])
    });
    connect_name(&h, 1, "broker:1");
    h.wait_for("connected", |e| e.len() == 1);
    h.cmd(Cmd::Io(IoCommand::Close { conn: 1 }));
    connect_name(&h, 1, "broker:1");
    h.send(1, b"again");
    h.wait_for("response", |e| !responses(e).is_empty());
    assert_eq!(lookups.load(Ordering::SeqCst), 2);
    assert_eq!(h.driver.metrics().connects(), 2);
}

/// The system resolver, end to end: `localhost` (which may list `::1`
/// first, where nothing listens, before 127.0.0.1).
#[test]
fn localhost_connects_through_the_system_resolver() {
    let echo = echo_server();
    let h = Harness::start();
    connect_name(&h, 1, &format!("localhost:{}", echo.port()));
    h.send(1, b"hello");
    let events = h.wait_for("response", |e| !responses(e).is_empty());
    assert_eq!(events[0], Event::Connected(1));
}

/// `send.buffer.bytes`, `receive.buffer.bytes` and
/// `socket.keepalive.enable` reach every broker connection of a producer,
/// on each backend, and with buffers far smaller
/// than its requests (each write and read then goes in many parts) every
/// record is delivered.
#[test]
fn socket_properties_reach_every_broker_connection() {
    use kring_mock::MockCluster;
    use std::os::fd::RawFd;
    // The process's TCP sockets whose buffers are the doubled sizes asked
    // for and whose keepalive is as asked (fds are read from /proc; one
    // closing meanwhile is skipped).
    let sockets_with = |send: i32, receive: i32, keepalive: bool| -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
                continue;
            };
            let of = |o| socket::int_option(fd, libc::SOL_SOCKET, o).ok();
            if is_socket
                && of(libc::SO_SNDBUF) == Some(send)
                && of(libc::SO_RCVBUF) == Some(receive)
                && of(libc::SO_KEEPALIVE) == Some(i32::from(keepalive))
            {
                n += 1;
            }
        }
        n
    };
    let runs = backends().into_iter().flat_map(|b| [(b, false), (b, true)]);
    for (backend, keepalive) in runs {
        let cluster = MockCluster::builder()
            .brokers(2)
            .topic("t", 4)
            .build()
            .unwrap();
        let config = crate::ProducerConfig::default()
            .bootstrap(&cluster.bootstrap_servers())
            .set("send.buffer.bytes", "6000")
            .and_then(|c| c.set("socket.receive.buffer.bytes", "7000"))
            .and_then(|c| {
                // The default is on; off only when asked.
                if keepalive {
                    Ok(c)
                } else {
                    c.set("socket.keepalive.enable", "false")
                }
            })
            .unwrap()
            .batch_size(64 * 1024)
            .linger(Duration::from_millis(2));
        let mut builder = crate::Producer::builder().config(config);
        builder.driver = Some(DriverConfig {
            backend,
            ..DriverConfig::default()
        });
        let producer = builder.build().unwrap();
        let value = vec![7u8; 1000];
        let handles: Vec<_> = (0..4_000)
            .map(|_| producer.send(crate::Record::new("t", &value[..])).unwrap())
            .collect();
        for h in handles {
            h.wait().unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        }
        let stored: i64 = (0..4)
            .map(|p| cluster.high_watermark("t", p).unwrap())
            .sum();
        assert_eq!(stored, 4_000, "{backend:?}");
        // Both brokers lead partitions; the bootstrap connection may be one
        // of them or a third.
        let found = sockets_with(12_000, 14_000, keepalive);
        assert!(
            found >= 2,
            "{backend:?}: {found} sockets with the sizes asked for"
        );
        producer.close();
    }
}

/// A cluster replaced behind its bootstrap name: every broker the
/// producer knows is gone for good, and the name now leads to other
/// brokers with other ids. kring goes back to the bootstrap name when no
/// known broker can be reached (Java's `metadata.recovery.strategy=
/// rebootstrap`), learns the new cluster from it, and delivers there,
/// on each backend.
#[test]
fn a_cluster_replaced_behind_its_bootstrap_name_is_found_again() {
    use kring_mock::MockCluster;
    for backend in backends() {
        let old = MockCluster::builder()
            .brokers(2)
            .topic("t", 2)
            .build()
            .unwrap();
        let new = MockCluster::builder()
            .brokers(2)
            .first_node_id(10)
            .topic("t", 2)
            .build()
            .unwrap();
        let behind_name = Arc::new(Mutex::new(old.broker_addr(old.broker_ids()[0]).unwrap()));
        let name = Arc::clone(&behind_name);
        let mut builder = crate::Producer::builder()
            .bootstrap("kafka.test:9092")
            .linger(Duration::from_millis(1))
            .reconnect_backoff(Duration::from_millis(10))
            .reconnect_backoff_max(Duration::from_millis(100))
            // Without the way back, records fail at this bound.
            .request_timeout(Duration::from_secs(5))
            .delivery_timeout(Duration::from_secs(15));
        builder.driver = Some(DriverConfig {
            backend,
            resolver: Some(resolver::Resolver::new(move |host: &str| {
                if host == "kafka.test:9092" {
                    Ok(vec![*name.lock().unwrap()])
                } else {
                    // The brokers' advertised "127.0.0.1:port".
                    host.parse()
                        .map(|a| vec![a])
                        .map_err(|_| std::io::Error::other(format!("unknown host {host}")))
                }
            })),
            ..DriverConfig::default()
        });
        let producer = builder.build().unwrap();
        let send_all = |n: usize| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    producer
                        .send(crate::Record::new("t", format!("{i}").as_bytes()))
                        .unwrap()
                })
                .collect();
            for h in handles {
                h.wait().unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            }
        };
        send_all(100);
        let stored =
            |c: &MockCluster| -> i64 { (0..2).map(|p| c.high_watermark("t", p).unwrap()).sum() };
        assert_eq!(stored(&old), 100, "{backend:?}");
        for id in old.broker_ids() {
            old.stop_broker(id).unwrap();
        }
        *behind_name.lock().unwrap() = new.broker_addr(new.broker_ids()[0]).unwrap();
        send_all(100);
        assert_eq!(stored(&new), 100, "{backend:?}");
        producer.close();
    }
}

/// The producer end to end on a 4-entry ring with injected `EBUSY`
/// (submissions that must reap), against three brokers with partitions
/// spread over them and connections dropped under load: every record gets
/// its result, and every record lands exactly once.
#[test]
fn the_producer_on_a_tiny_ring_delivers_everything_once() {
    use kring_mock::{Fault, MockCluster};
    const PRODUCE: i16 = 0;
    const PER_SENDER: u32 = 10_000;
    const PARTITIONS: i32 = 24;
    let cluster = MockCluster::builder()
        .brokers(3)
        .topic("t", PARTITIONS)
        .build()
        .unwrap();
    // Each closes a connection before applying the request: retried, and
    // nothing lands twice.
    cluster.inject(Fault::drop_before_apply(PRODUCE).times(40));
    let mut builder = crate::Producer::builder()
        .bootstrap(&cluster.bootstrap_servers())
        .linger(Duration::from_millis(1))
        .batch_size(4096)
        .retry_backoff(Duration::from_millis(5));
    builder.driver = Some(DriverConfig {
        ring_entries: 4,
        busy_every: std::num::NonZeroU32::new(3),
        ..DriverConfig::default()
    });
    let producer = Arc::new(builder.build().unwrap());
    let senders: Vec<_> = (0..2u32)
        .map(|sender| {
            let p = Arc::clone(&producer);
            std::thread::spawn(move || {
                let handles: Vec<_> = (0..PER_SENDER)
                    .map(|seq| {
                        let value = format!("{sender}:{seq}:{}", "x".repeat(150));
                        p.send(crate::Record::new("t", value.as_bytes())).unwrap()
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.wait().err().map(|e| e.to_string()))
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let failures: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(producer.close());
    let mut seen = std::collections::HashSet::new();
    for partition in 0..PARTITIONS {
        for r in cluster.records("t", partition).unwrap() {
            let v = r.value.expect("value");
            assert!(seen.insert(v.clone()), "stored twice: {:?}", &v[..10]);
        }
    }
    assert_eq!(seen.len(), 2 * PER_SENDER as usize);
    assert!(cluster.faults_fired() >= 40);
}

/// Frames a peer does not read stay with the driver, counted in
/// `request_bytes_held`, and are released when the connection closes.
#[test]
fn frames_held_for_a_peer_that_never_reads_are_counted_and_released() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // Accepts, never reads, closes when told.
    let addr = one_shot_server(move |s| {
        let _ = rx.recv();
        drop(s);
    });
    let h = Harness::start();
    h.connect(1, addr);
    h.wait_for("connected", |e| e.len() == 1);
    // More than the kernel's socket buffers take: some stays with us.
    held_until_closed(&h, 16 << 20, 64 * (4 + (1 << 20)), Duration::from_secs(20));
    let _ = tx.send(());
}

/// Sends 64 frames of 1 MiB on connection 1 of `h`, whose peer reads
/// none; waits until `request_bytes_held` is at least `least` (and checks
/// it is at most `most`), then closes the connection and waits at most
/// `release` for it to be 0.
fn held_until_closed(h: &Harness, least: u64, most: u64, release: Duration) {
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..64 {
        h.send(1, &chunk);
    }
    let m = h.driver.metrics();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.request_bytes_held() < least {
        assert!(Instant::now() < deadline, "held {}", m.request_bytes_held());
        std::thread::sleep(Duration::from_millis(5)); // polls a gauge
    }
    assert!(
        m.request_bytes_held() <= most,
        "held {}",
        m.request_bytes_held()
    );
    h.cmd(Cmd::Io(IoCommand::Close { conn: 1 }));
    let deadline = Instant::now() + release;
    while m.request_bytes_held() != 0 {
        assert!(
            Instant::now() < deadline,
            "held {} after the close",
            m.request_bytes_held()
        );
        std::thread::sleep(Duration::from_millis(5)); // polls a gauge
    }
}

/// As above with zero-copy sends: the kernel pins the frames of a
/// `SENDMSG_ZC` until the peer has acknowledged every byte, which a peer
/// that never reads never does. Closing the connection must still release
/// them (and the socket) at once, not when the peer eventually goes away,
/// and stopping the driver must not wait out its drain bound and leak.
#[test]
fn zero_copy_frames_held_for_a_peer_that_never_reads_are_released_on_close() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // Accepts, never reads, closes when told.
    let addr = one_shot_server(move |s| {
        let _ = rx.recv();
        drop(s);
    });
    let h = Harness::with_config(DriverConfig {
        send_zero_copy_from: Some(1),
        backend: crate::IoBackend::IoUring,
        ..DriverConfig::default()
    });
    h.connect(1, addr);
    h.wait_for("connected", |e| e.len() == 1);
    // After a partial zero-copy send its hold counts what it wrote and the
    // queue the rest: never more than was sent.
    held_until_closed(&h, 16 << 20, 64 * (4 + (1 << 20)), Duration::from_secs(3));
    let m = Arc::clone(h.driver.metrics());
    let start = Instant::now();
    drop(h);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for zero-copy notifications",
        start.elapsed()
    );
    assert_eq!(m.ops_freed_unreaped.load(Ordering::Relaxed), 0);
    let _ = tx.send(());
}

/// A zero-copy send still in the kernel when the driver stops: shutdown's
/// drain, and the ring's drop guard when shutdown panicked, skip its
/// result (which says a notification follows) and remove it only at the
/// notification, the kernel's word that it no longer reads the frames.
#[test]
fn a_zero_copy_send_in_the_kernel_is_held_until_its_notification_at_shutdown() {
    for panic_in_shutdown in [false, true] {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Accepts, never reads, closes when told.
        let addr = one_shot_server(move |s| {
            let _ = rx.recv();
            drop(s);
        });
        let mut h = Harness::with_config(DriverConfig {
            send_zero_copy_from: Some(1),
            panic_in_shutdown,
            backend: crate::IoBackend::IoUring,
            ..DriverConfig::default()
        });
        h.connect(1, addr);
        h.wait_for("connected", |e| e.len() == 1);
        let chunk = vec![1u8; 1 << 20];
        for _ in 0..64 {
            h.send(1, &chunk);
        }
        // The peer's and our socket buffers are full: a send waits in the
        // kernel.
        let m = Arc::clone(h.driver.metrics());
        let deadline = Instant::now() + Duration::from_secs(20);
        while m.request_bytes_held() < 16 << 20 {
            assert!(Instant::now() < deadline, "held {}", m.request_bytes_held());
            std::thread::sleep(Duration::from_millis(5)); // polls a gauge
        }
        h.driver.stop();
        assert!(h.driver.join_timeout(Duration::from_secs(4)));
        assert_eq!(
            m.drop_guard_drained.load(Ordering::Relaxed) > 0,
            panic_in_shutdown,
            "the drop guard drains only after a panic"
        );
        assert_eq!(
            m.ops_freed_unreaped.load(Ordering::Relaxed),
            0,
            "panic {panic_in_shutdown}: an operation removed before its last completion"
        );
        let _ = tx.send(());
    }
}

/// TLS on both backends: the same scripted engine and a rustls server on
/// loopback, each test run on io_uring (where the kernel allows it) and on
/// epoll.
#[cfg(feature = "tls")]
mod tls {
    use std::sync::Arc;

    use kring_core::TlsFailure;

    use super::*;
    use crate::config::{Pem, SslSettings};
    use crate::driver::tls::TlsConnector;
    use crate::IoBackend;

    /// A self-signed certificate for `name`, as the server's config and
    /// its PEM (to trust it).
    fn identity(name: &str) -> (Arc<rustls::ServerConfig>, String) {
        crate::driver::tls::session_tests::self_signed_server(name)
    }

    fn harness(backend: IoBackend, ca_pem: &str, verify_hostname: bool) -> Harness {
        let settings = SslSettings {
            ca: Some(Pem::Inline(ca_pem.to_owned())),
            verify_hostname,
            ..SslSettings::default()
        };
        let config = DriverConfig {
            backend,
            tls: Some(TlsConnector::new(&settings).unwrap()),
            ..DriverConfig::default()
        };
        Harness::with_config(config)
    }

    /// A TLS server that echoes each framed request back as a response.
    fn tls_echo_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { return };
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                std::thread::spawn(move || loop {
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                    if s.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut out = len.to_vec();
                    out.extend_from_slice(&body);
                    if s.write_all(&out).is_err() || s.flush().is_err() {
                        return;
                    }
                });
            }
        });
        addr
    }

    /// Over TLS too, a finished engine's close waits until its last frame
    /// has left the TLS link and the socket: the server decrypts every
    /// byte of it.
    #[test]
    fn a_finished_engines_close_waits_for_its_last_frame_over_tls() {
        let (server, pem) = identity("127.0.0.1");
        let payload = vec![5u8; 32 * 1024 * 1024];
        for backend in backends() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<usize>();
            let config = server.clone();
            std::thread::spawn(move || {
                let (tcp, _) = listener.accept().unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let _ = tx.send(bytes_until_the_end(&mut s));
            });
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            h.wait_for("connected", |e| e.len() == 1);
            every_byte_before_the_close(h, &rx, &payload, Duration::from_secs(30), backend);
        }
    }

    /// Frames waiting in the TLS link for the send under way count toward
    /// `request_bytes_held` beside that send's ciphertext; a close releases
    /// them all.
    #[test]
    fn frames_waiting_in_the_tls_link_count_as_held() {
        let (server, pem) = identity("127.0.0.1");
        for backend in backends() {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let config = server.clone();
            // Finishes the handshake, then reads nothing until told.
            std::thread::spawn(move || {
                let (mut tcp, _) = listener.accept().unwrap();
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut tcp).is_err() {
                        return;
                    }
                }
                let _ = rx.recv();
            });
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            h.wait_for("connected", |e| e.len() == 1);
            // The socket's buffers take a few MiB and the send under way
            // holds one sealing's ciphertext (records add under 0.2 %);
            // the rest waits in the link.
            held_until_closed(&h, 48 << 20, 65 << 20, Duration::from_secs(5));
            let _ = tx.send(());
        }
    }

    /// Waits for the connection's TLS failure, which must be `want`;
    /// returns the events so far.
    fn expect_tls_failure(h: &Harness, want: TlsFailure, backend: IoBackend) -> Vec<Event> {
        let events = h.wait_for("a TLS failure", |ev| tls_failure(ev).is_some());
        assert_eq!(tls_failure(&events), Some(want), "{backend:?}: {events:?}");
        events
    }

    fn tls_failure(events: &[Event]) -> Option<TlsFailure> {
        events.iter().find_map(|e| match e {
            Event::TlsFailed(_, kind, _) => Some(*kind),
            _ => None,
        })
    }

    /// Frames queued before the connection is up wait for the handshake;
    /// a request larger than the socket buffers (written in parts, resumed
    /// on writability on epoll) and many pipelined ones come back intact
    /// and in order; the engine hears `handle_connected` once, before any
    /// response.
    #[test]
    fn round_trip_with_a_large_request_and_many_small_ones() {
        let (server, pem) = identity("127.0.0.1");
        let addr = tls_echo_server(server);
        for backend in backends() {
            let h = harness(backend, &pem, true);
            let big: Vec<u8> = (0..8 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
            // Queued in the same turn as the connect: before the socket
            // (and its handshake) exists.
            h.connect(1, addr);
            h.send(1, b"early");
            h.send(1, &big);
            const MANY: usize = 2_000;
            for i in 0..MANY {
                h.send(1, format!("record {i}").as_bytes());
            }
            let events = h.wait_for("every echo", |ev| responses(ev).len() == MANY + 2);
            assert_eq!(events[0], Event::Connected(1), "{backend:?}: {events:?}");
            assert_eq!(
                events
                    .iter()
                    .filter(|e| matches!(e, Event::Connected(_)))
                    .count(),
                1,
                "{backend:?}"
            );
            let got = responses(&events);
            assert_eq!(&got[0][..], b"early", "{backend:?}");
            assert!(
                got[1][..] == big[..],
                "{backend:?}: the large response differs"
            );
            for (i, r) in got[2..].iter().enumerate() {
                assert_eq!(r, format!("record {i}").as_bytes(), "{backend:?}");
            }
            let m = h.driver.metrics();
            // Ciphertext is larger than the plaintext it carries.
            assert!(m.bytes_sent() > big.len() as u64, "{backend:?}");
            assert!(m.bytes_received() > big.len() as u64, "{backend:?}");
            assert_eq!(m.responses(), MANY as u64 + 2, "{backend:?}");
        }
    }

    /// A certificate signed by nobody the client trusts.
    #[test]
    fn an_untrusted_certificate_is_typed() {
        let (server, _) = identity("127.0.0.1");
        let (_, other_pem) = identity("127.0.0.1");
        let addr = tls_echo_server(server);
        for backend in backends() {
            let h = harness(backend, &other_pem, true);
            h.connect(1, addr);
            h.send(1, b"never sent");
            let events = expect_tls_failure(&h, TlsFailure::UntrustedCertificate, backend);
            assert!(!events.contains(&Event::Connected(1)), "{backend:?}");
        }
    }

    /// A trusted certificate past its validity: rejected, and typed as an
    /// invalid certificate (neither untrusted nor a name mismatch).
    #[test]
    fn an_expired_certificate_is_typed() {
        let (server, pem) =
            crate::driver::tls::session_tests::self_signed_server_with("127.0.0.1", |p| {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            });
        let addr = tls_echo_server(server);
        for backend in backends() {
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            let events = expect_tls_failure(&h, TlsFailure::InvalidCertificate, backend);
            assert!(!events.contains(&Event::Connected(1)), "{backend:?}");
        }
    }

    /// A trusted certificate for another name; accepted without the check.
    #[test]
    fn a_hostname_mismatch_is_typed_unless_not_checked() {
        let (server, pem) = identity("broker.test");
        let addr = tls_echo_server(server);
        for backend in backends() {
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            expect_tls_failure(&h, TlsFailure::HostnameMismatch, backend);
            let h = harness(backend, &pem, false);
            h.connect(1, addr);
            h.send(1, b"ping");
            let events = h.wait_for("the echo", |ev| !responses(ev).is_empty());
            assert_eq!(&responses(&events)[0][..], b"ping", "{backend:?}");
        }
    }

    /// A broker that ends an established TLS connection after answering,
    /// with close_notify or with a bare FIN: an ordinary disconnect, not
    /// a TLS failure, whose message would blame the listener.
    #[test]
    fn a_close_after_the_handshake_is_a_disconnect() {
        let (server, pem) = identity("127.0.0.1");
        for (backend, notify) in backends().into_iter().flat_map(|b| [(b, true), (b, false)]) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let config = server.clone();
            std::thread::spawn(move || {
                let (tcp, _) = listener.accept().unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut frame = [0u8; 8];
                s.read_exact(&mut frame).unwrap();
                s.write_all(&frame).unwrap();
                if notify {
                    s.conn.send_close_notify();
                }
                s.flush().unwrap();
                s.sock.shutdown(std::net::Shutdown::Write).unwrap();
                let _ = s.sock.read_to_end(&mut Vec::new());
            });
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            h.send(1, b"ping");
            let events = h.wait_for("the disconnect", |ev| {
                ev.iter()
                    .any(|e| matches!(e, Event::Disconnected(..) | Event::TlsFailed(..)))
            });
            let what = format!("{backend:?}, close_notify {notify}: {events:?}");
            assert_eq!(&responses(&events)[0][..], b"ping", "{what}");
            assert_eq!(tls_failure(&events), None, "{what}");
        }
    }

    /// The broker reads the ClientHello and closes: not a TLS listener.
    #[test]
    fn the_peer_closing_mid_handshake_is_typed() {
        for backend in backends() {
            let (_, pem) = identity("127.0.0.1");
            let addr = one_shot_server(|mut s| {
                let mut hello = [0u8; 5];
                // The whole record, so the close is a FIN, not a reset.
                s.read_exact(&mut hello).unwrap();
                let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
                let mut rest = vec![0u8; len];
                s.read_exact(&mut rest).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let _ = s.read_to_end(&mut Vec::new());
            });
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            expect_tls_failure(&h, TlsFailure::PeerNotTls, backend);
        }
    }

    /// A plaintext listener answers the ClientHello with a Kafka frame.
    #[test]
    fn a_plaintext_answer_to_the_handshake_is_typed() {
        for backend in backends() {
            let (_, pem) = identity("127.0.0.1");
            let addr = one_shot_server(|mut s| {
                let mut some = [0u8; 5];
                s.read_exact(&mut some).unwrap();
                s.write_all(b"\0\0\0\x02ok").unwrap();
                let _ = s.read_to_end(&mut Vec::new());
            });
            let h = harness(backend, &pem, true);
            h.connect(1, addr);
            expect_tls_failure(&h, TlsFailure::PeerNotTls, backend);
        }
    }

    /// A listener that accepts and never answers: the handshake times out
    /// (the driver's own deadline; the test only waits for the event).
    #[test]
    fn a_silent_listener_times_the_handshake_out() {
        for backend in backends() {
            let (_, pem) = identity("127.0.0.1");
            let addr = one_shot_server(|mut s| {
                let _ = s.read_to_end(&mut Vec::new());
            });
            let settings = SslSettings {
                ca: Some(Pem::Inline(pem)),
                verify_hostname: true,
                ..SslSettings::default()
            };
            let h = Harness::with_config(DriverConfig {
                backend,
                tls: Some(TlsConnector::new(&settings).unwrap()),
                ..DriverConfig::default()
            })
            .connecting_within(Duration::from_millis(200));
            h.connect(1, addr);
            let events = expect_tls_failure(&h, TlsFailure::HandshakeTimeout, backend);
            let reason = events.iter().find_map(|e| match e {
                Event::TlsFailed(1, _, r) => Some(r),
                _ => None,
            });
            assert!(
                reason.is_some_and(|r| r.contains("within 200ms")),
                "the attempt's own timeout: {backend:?}: {events:?}"
            );
        }
    }

    /// A plaintext client meets a TLS listener: its first bytes are a TLS
    /// alert.
    #[test]
    fn a_plaintext_client_at_a_tls_listener_is_typed() {
        let (server, _) = identity("127.0.0.1");
        let addr = tls_echo_server(server);
        for backend in backends() {
            let h = Harness::on(backend);
            h.connect(1, addr);
            h.send(1, b"a Kafka request");
            expect_tls_failure(&h, TlsFailure::PeerExpectsTls, backend);
        }
    }
}
