//! The epoll backend: the same loop as the io_uring one ([`super::event_loop`])
//! over non-blocking sockets, for kernels and sandboxes that refuse
//! io_uring (seccomp profiles such as Docker's default,
//! `kernel.io_uring_disabled`, kernels older than 5.19).
//!
//! Each turn handles the readiness events of the last wait (reads, writes,
//! connects finishing), the producer wake-up, and the engine's deadline,
//! then carries out `poll_io` and `poll_transmit` and sleeps in one
//! `epoll_wait` whose timeout is the earliest of the engine's deadline, a
//! name lookup's and a connect's (no tick: with none, it blocks until an
//! event). Producer threads wake it through the same eventfd, registered
//! level-triggered. Sockets are registered edge-triggered once, for reading
//! and writing: a read loops until the socket is drained (a short read or
//! `EAGAIN`), a write gathers every queued frame of the connection into one
//! `sendmsg` of up to 1,024 iovecs and, when the kernel takes only part of
//! it, waits for the socket to become writable again before resuming where
//! it stopped.
//!
//! TLS (`security.protocol=SSL|SASL_SSL`) runs through a connection's
//! [`Link`]: after the TCP connect the socket is `Handshaking` (bounded by
//! the attempt's connect timeout) and its frames wait in the link; every read's
//! ciphertext goes to the link at once, so decrypted responses are handed
//! on before the next read, whatever it returns; and since edge-triggered
//! epoll will raise no event for it, whatever the session then has to send
//! (handshake replies, key updates) is sealed and written at once. TLS
//! failures reach the engine as `handle_tls_failed`, typed as on io_uring.
//!
//! What both backends share: the per-connection write queue
//! ([`super::conn`]), response framing ([`super::framing`]), name lookups
//! and connection attempts ([`super::attempts`], [`super::resolver`]),
//! socket creation ([`super::socket`]), TLS ([`super::tls`]).
//!
//! Nothing the kernel reads or writes outlives a syscall here, so unlike
//! io_uring there is nothing to drain on shutdown: closing a socket is
//! dropping its fd (which also removes it from the epoll set).
//!
//! Engine handlers run only from [`reap`](EpollThread::reap) at the top of
//! a turn: a write that fails while `pump` runs is only recorded, and the
//! engine hears of it on the next turn, which starts at once.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slab::Slab;

use super::attempts::Attempts;
use super::conn::SendQueue;
use super::event_loop::panic_message;
use super::framing::{next_frame, reserve_for_read};
use super::handle::{DriverConfig, DriverMetrics};
use super::resolver::{ConnectError, Lookups, Resolver};
use super::socket::{tcp_socket, RawSockAddr, SocketOptions};
use super::tls::{self, Link, TlsConnector, TlsError};
use super::{DriverError, Engine, IoCommand, IoWaker, Transmit};

/// The epoll token of the wake-up eventfd. Socket tokens are their slab
/// key in the low 32 bits and their serial in the high 32 bits, so an
/// event of a socket closed (and its key reused) in the same batch is
/// recognised and ignored; `u64::MAX` is never one (keys stay far below
/// `u32::MAX`).
const WAKE_TOKEN: u64 = u64::MAX;
/// Events that say the peer closed or the socket failed.
const HANGUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Events taken from the kernel per wait.
const MAX_EVENTS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The non-blocking connect is under way; it fails at `deadline`.
    Connecting {
        deadline: Instant,
    },
    /// TCP is connected and the TLS handshake runs (its deadline is the
    /// link's); the engine still thinks the connection is being
    /// established.
    Handshaking,
    Open,
}

/// Why a write failed, found while pumping and reported next turn.
enum WriteFailure {
    Io(String),
    Tls(TlsError),
}

struct Socket<C> {
    conn: C,
    serial: u32,
    fd: OwnedFd,
    state: State,
    /// Frames not yet (fully) written, in order: request frames, or with
    /// TLS ciphertext (request frames queued before the TCP connect
    /// finished wait here too, and move into the TLS link then).
    queue: SendQueue,
    /// The kernel took only part of the last write: wait for `EPOLLOUT`.
    write_blocked: bool,
    /// A write failed; the engine hears of it next turn. Nothing more is
    /// written.
    broken: bool,
    /// The `host:port` asked for (for messages).
    name: String,
    /// The attempt's connect timeout, from its `Connect` command: it
    /// bounds the connect to each address and the TLS handshake.
    timeout: Duration,
    /// Resolved addresses not tried yet: if this connect fails, the next
    /// is tried before the engine hears of a failure.
    untried: VecDeque<SocketAddr>,
    /// Received bytes not yet framed (with TLS: ciphertext, handed to the
    /// session after every read).
    recv_buf: BytesMut,
    /// With TLS, from the TCP connect on: the session and its plaintext
    /// side.
    tls: Option<Link>,
    /// Whether anything was received yet (a plaintext connection whose
    /// first bytes are a TLS record is talking to a TLS listener).
    received_any: bool,
    /// The engine finished and asked for the close with request frames
    /// still unwritten: they are written first (see `close_when_sent`).
    close_when_sent: bool,
}

impl<C> Socket<C> {
    /// Request frames of an open socket not written yet (queued or in the
    /// TLS link), unless a write failed.
    ///
    /// Only an open socket's: a close drops frames queued while the
    /// connection or its TLS handshake is under way (the core writes none
    /// to a connection before its `handle_connected`; the Sim checks it).
    fn has_unsent(&self) -> bool {
        self.state == State::Open
            && !self.broken
            && (!self.queue.is_empty() || self.tls.as_ref().is_some_and(|l| l.queued_bytes() > 0))
    }

    /// When the connect or TLS handshake under way must have finished.
    fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Connecting { deadline } => Some(deadline),
            State::Handshaking => self.tls.as_ref()?.handshake_deadline(),
            State::Open => None,
        }
    }
}

/// The I/O thread's state on the epoll backend.
pub(crate) struct EpollThread<E: Engine> {
    epoll: OwnedFd,
    engine: E,
    config: DriverConfig,
    waker: IoWaker,
    metrics: Arc<DriverMetrics>,
    stop: Arc<AtomicBool>,
    sockets: Slab<Socket<E::Conn>>,
    by_conn: HashMap<E::Conn, usize>,
    next_serial: u32,
    /// Name lookups, and attempts that failed before a socket existed
    /// (reported at the top of the next turn).
    attempts: Attempts<E::Conn>,
    /// Filled by `epoll_wait`; the first `ready` are handled by the next
    /// `reap`.
    events: Vec<libc::epoll_event>,
    ready: usize,
    /// Writes that failed while pumping: (key, serial, reason), reported
    /// to the engine at the top of the next turn.
    broken: VecDeque<(usize, u32, WriteFailure)>,
    /// TLS for every connection, if configured.
    tls: Option<TlsConnector>,
}

impl<E: Engine> EpollThread<E> {
    pub(crate) fn new(
        engine: E,
        config: DriverConfig,
        waker: IoWaker,
        metrics: Arc<DriverMetrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, (E, DriverError)> {
        // SAFETY: epoll_create1 takes no pointers; the flag is a valid
        // constant.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err((engine, DriverError::Start(io::Error::last_os_error())));
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by
        // nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        // Level-triggered: a wake-up not read in one turn is seen again.
        if let Err(e) = epoll_ctl(
            &epoll,
            libc::EPOLL_CTL_ADD,
            waker.raw_fd(),
            libc::EPOLLIN as u32,
            WAKE_TOKEN,
        ) {
            return Err((engine, DriverError::Start(e)));
        }
        #[cfg(test)]
        let resolver = config.resolver.clone().unwrap_or_else(Resolver::system);
        #[cfg(not(test))]
        let resolver = Resolver::system();
        let attempts = Attempts::new(Lookups::new(resolver, waker.clone()));
        let tls = config.tls.clone();
        Ok(EpollThread {
            tls,
            epoll,
            engine,
            config,
            waker,
            metrics,
            stop,
            sockets: Slab::new(),
            by_conn: HashMap::new(),
            next_serial: 0,
            attempts,
            // SAFETY: epoll_event is plain old data; all-zero is valid.
            events: vec![unsafe { std::mem::zeroed() }; MAX_EVENTS],
            ready: 0,
            broken: VecDeque::new(),
        })
    }

    /// Run until the engine is finished or a stop is requested, then close
    /// every socket. A panic in the loop is caught: the engine is aborted,
    /// so every pending record gets a result, and the sockets are closed.
    pub(crate) fn run(&mut self) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run_loop()))
            .unwrap_or_else(|panic| Err(DriverError::Panicked(panic_message(&*panic))));
        if let Err(err) = &outcome {
            tracing::error!(error = %err, "kring I/O thread failed");
        }
        let finished =
            catch_unwind(AssertUnwindSafe(|| self.engine.is_finished())).unwrap_or(false);
        if !finished {
            let reason = match &outcome {
                Err(err) => format!("the I/O thread failed: {err}"),
                Ok(()) => "the producer was stopped before the record was delivered".to_owned(),
            };
            let engine = &mut self.engine;
            if catch_unwind(AssertUnwindSafe(|| engine.abort(Instant::now(), &reason))).is_err() {
                tracing::error!("aborting the engine panicked; some records may have no result");
            }
        }
        // Dropping the fds closes the sockets and removes them from the
        // epoll set.
        self.by_conn.clear();
        self.sockets.clear();
    }

    fn run_loop(&mut self) -> Result<(), DriverError> {
        loop {
            let now = Instant::now();
            self.reap(now);
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            self.engine.handle_wakeup(now);
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            self.pump(now);
            if self.engine.is_finished() && !self.close_when_sent() {
                return Ok(());
            }
            self.publish_held_bytes();
            // Failures found while pumping are reported next turn, at once.
            if self.attempts.has_failures()
                || !self.broken.is_empty()
                || !self.engine.prepare_park()
            {
                self.wait(Some(now))?;
                continue;
            }
            let deadline = [
                self.engine.poll_timeout(),
                self.attempts.deadline(),
                self.connect_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            self.wait(deadline)?;
        }
    }

    /// Publish how many bytes of request frames the driver holds.
    fn publish_held_bytes(&self) {
        let queued = self
            .sockets
            .iter()
            .map(|(_, s)| s.queue.bytes() + s.tls.as_ref().map_or(0, Link::queued_bytes))
            .sum::<usize>()
            + self.attempts.queued_bytes();
        self.metrics
            .request_bytes_held
            .store(queued as u64, Ordering::Relaxed);
    }

    /// Sleep until an event or `deadline` (not at all if it has passed),
    /// keeping the events for the next `reap`.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        let timeout: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Rounded up: waking before the deadline would only spin.
                let ms = left.as_nanos().div_ceil(1_000_000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `events` is a live, initialised buffer of `MAX_EVENTS`
        // entries that the kernel fills; nothing else borrows it meanwhile.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                timeout,
            )
        };
        if timeout != 0 {
            DriverMetrics::add(&self.metrics.io_wakeups, 1);
        }
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                self.ready = 0;
                return Ok(());
            }
            return Err(DriverError::Poll(err));
        }
        self.ready = n as usize;
        Ok(())
    }

    /// The earliest deadline of a connect or TLS handshake.
    fn connect_deadline(&self) -> Option<Instant> {
        self.sockets.iter().filter_map(|(_, s)| s.deadline()).min()
    }

    /// Handle what happened since the last turn: readiness events, writes
    /// that failed, finished lookups, connects that overran their timeout,
    /// and failures of attempts that never got a socket.
    fn reap(&mut self, now: Instant) {
        let ready = std::mem::take(&mut self.ready);
        for i in 0..ready {
            let ev = self.events[i];
            let (flags, token) = (ev.events, ev.u64);
            if token == WAKE_TOKEN {
                self.drain_wake();
                continue;
            }
            if let Some(key) = self.live(token) {
                self.on_event(now, key, flags);
            }
        }
        while let Some((key, serial, failure)) = self.broken.pop_front() {
            if self.sockets.get(key).is_some_and(|s| s.serial == serial) {
                match failure {
                    WriteFailure::Io(reason) => self.fail(now, key, io::ErrorKind::Other, &reason),
                    WriteFailure::Tls(err) => self.fail_tls(now, key, err),
                }
            }
        }
        for r in self.attempts.settle(now) {
            self.start_connect(now, r.conn, r.name, r.addrs, r.queue, r.timeout);
        }
        let expired: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| matches!(s.state, State::Connecting { deadline } if deadline <= now))
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            let reason = format!("connect timed out after {:?}", self.sockets[key].timeout);
            self.connect_next_or_fail(now, key, io::ErrorKind::TimedOut, &reason);
        }
        let overran: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| {
                s.state == State::Handshaking && s.deadline().is_some_and(|d| d <= now)
            })
            .map(|(k, _)| k)
            .collect();
        for key in overran {
            let err = tls::handshake_timed_out(self.sockets[key].timeout);
            self.fail_tls(now, key, err);
        }
        while let Some((conn, kind, reason)) = self.attempts.next_failure() {
            tracing::warn!(?conn, %reason, "connect failed");
            self.engine.handle_connect_failed(now, conn, kind, &reason);
        }
    }

    /// The socket an event's token names, if it is still the same socket.
    fn live(&self, token: u64) -> Option<usize> {
        let key = (token & u64::from(u32::MAX)) as usize;
        let serial = (token >> 32) as u32;
        self.sockets
            .get(key)
            .filter(|s| s.serial == serial)
            .map(|_| key)
    }

    fn drain_wake(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: the eventfd is kept open by `self.waker`; the buffer is
        // a live 8-byte array that outlives the call.
        let n = unsafe { libc::read(self.waker.raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!(error = %err, "reading the wake-up eventfd failed");
            }
        }
    }

    fn on_event(&mut self, now: Instant, key: usize, flags: u32) {
        let sock = &mut self.sockets[key];
        let serial = sock.serial;
        match sock.state {
            State::Connecting { .. } => {
                let done = (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32;
                if flags & done == 0 {
                    return;
                }
                match socket_error(sock.fd.as_raw_fd()) {
                    Err(err) => {
                        self.connect_next_or_fail(now, key, err.kind(), &err.to_string());
                    }
                    Ok(()) if flags & libc::EPOLLHUP as u32 != 0 => {
                        self.connect_next_or_fail(
                            now,
                            key,
                            io::ErrorKind::ConnectionReset,
                            "connection closed while connecting",
                        );
                    }
                    Ok(()) if flags & libc::EPOLLOUT as u32 != 0 => {
                        let conn = sock.conn;
                        DriverMetrics::add(&self.metrics.connects, 1);
                        if let Some(connector) = &self.tls {
                            // The engine hears of the connection once the
                            // handshake finished; the frames queued so far
                            // wait in the link until then.
                            tracing::debug!(?conn, "TCP connected; TLS handshake");
                            let pending = std::mem::take(&mut sock.queue);
                            let deadline = now + sock.timeout;
                            match Link::start(connector, &sock.name, pending, deadline) {
                                Ok(link) => {
                                    sock.tls = Some(link);
                                    sock.state = State::Handshaking;
                                }
                                Err(err) => {
                                    self.fail_tls(now, key, err);
                                    return;
                                }
                            }
                        } else {
                            sock.state = State::Open;
                            tracing::info!(?conn, "connected");
                            self.engine.handle_connected(now, conn);
                        }
                        // The ClientHello, with TLS.
                        self.flush(key);
                        let readable = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLERR) as u32;
                        if flags & readable != 0
                            && self.sockets.get(key).is_some_and(|s| s.serial == serial)
                        {
                            self.read(now, key, flags & HANGUP != 0);
                        }
                    }
                    Ok(()) => {}
                }
            }
            State::Handshaking | State::Open => {
                let readable =
                    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if flags & readable != 0 {
                    self.read(now, key, flags & HANGUP != 0);
                }
                if flags & libc::EPOLLOUT as u32 != 0 {
                    if let Some(sock) = self.sockets.get_mut(key).filter(|s| s.serial == serial) {
                        sock.write_blocked = false;
                        self.flush(key);
                    }
                }
            }
        }
    }

    /// Read until the socket is drained, handing every complete response
    /// to the engine. A failure closes the socket (and tells the engine).
    /// A short read means drained (new data raises a new edge), except
    /// after a hang-up (`hangup`): the peer's close raises no further edge,
    /// so reading goes on until it is seen (0) or `EAGAIN`.
    ///
    /// With TLS every read's ciphertext goes to the session at once, so
    /// the responses it decrypts are handed on before the next read
    /// (whatever that returns), and what the session answers (handshake
    /// messages) is written at once.
    fn read(&mut self, now: Instant, key: usize, hangup: bool) {
        let (min_read, max) = (self.config.min_read, self.config.max_response_size);
        loop {
            let sock = &mut self.sockets[key];
            if sock.tls.is_some() {
                Link::reserve_for_read(&mut sock.recv_buf, min_read);
            } else {
                reserve_for_read(&mut sock.recv_buf, min_read, max);
            }
            let filled = sock.recv_buf.len();
            let spare = sock.recv_buf.spare_capacity_mut();
            let (ptr, len) = (spare.as_mut_ptr(), spare.len());
            // SAFETY: `ptr..ptr+len` is the spare capacity of the socket's
            // receive buffer, which nothing else touches during the call;
            // the fd is a live socket owned by `sock`.
            let n = unsafe { libc::recv(sock.fd.as_raw_fd(), ptr.cast(), len, 0) };
            if n > 0 {
                let n = n as usize;
                // SAFETY: the kernel wrote `n <= len` bytes at the start of
                // the spare capacity, right after the `filled` bytes.
                unsafe { sock.recv_buf.set_len(filled + n) };
                DriverMetrics::add(&self.metrics.bytes_received, n as u64);
                let first = !std::mem::replace(&mut sock.received_any, true);
                let delivered = if sock.tls.is_some() {
                    self.deliver_tls(now, key)
                } else if first && tls::looks_like_tls(&sock.recv_buf) {
                    self.fail_tls(now, key, tls::peer_expects_tls());
                    false
                } else {
                    self.deliver(now, key)
                };
                if !delivered {
                    return;
                }
                if n < len && !hangup {
                    // Drained for now; new data raises a new edge.
                    return;
                }
            } else if n == 0 {
                if let Some(err) = sock.tls.as_ref().and_then(Link::closed_error) {
                    self.fail_tls(now, key, err);
                } else if !sock.received_any && sock.tls.is_none() {
                    self.fail(
                        now,
                        key,
                        io::ErrorKind::Other,
                        "connection closed by the broker before it answered (if the listener \
                         expects TLS, set security.protocol=SSL)",
                    );
                } else {
                    self.fail(
                        now,
                        key,
                        io::ErrorKind::Other,
                        "connection closed by the broker",
                    );
                }
                return;
            } else {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) => {}
                    _ => {
                        let reason = format!("receive failed: {err}");
                        self.fail(now, key, io::ErrorKind::Other, &reason);
                        return;
                    }
                }
            }
        }
    }

    /// Hand every complete response in the socket's buffer to the engine,
    /// keeping the rest. `false` if the framing was bad (the connection
    /// was then failed).
    fn deliver(&mut self, now: Instant, key: usize) -> bool {
        let max = self.config.max_response_size;
        loop {
            let sock = &mut self.sockets[key];
            match next_frame(&mut sock.recv_buf, max) {
                Ok(Some(frame)) => {
                    let conn = sock.conn;
                    DriverMetrics::add(&self.metrics.responses, 1);
                    self.engine.handle_response(now, conn, frame);
                }
                Ok(None) => return true,
                Err(err) => {
                    self.fail(now, key, io::ErrorKind::Other, &err.to_string());
                    return false;
                }
            }
        }
    }

    /// TLS: hand the ciphertext just read to the session, finish the
    /// handshake (telling the engine the connection is up), hand every
    /// complete decrypted response to the engine, and write what the
    /// session has to say (handshake replies, then frames queued while it
    /// ran). `false` if the connection was failed.
    fn deliver_tls(&mut self, now: Instant, key: usize) -> bool {
        let sock = &mut self.sockets[key];
        let Some(link) = sock.tls.as_mut() else {
            return true;
        };
        let result = link.receive(&sock.recv_buf);
        sock.recv_buf.clear();
        let progress = match result {
            Ok(p) => p,
            Err(err) => {
                self.fail_tls(now, key, err);
                return false;
            }
        };
        let conn = sock.conn;
        if progress.established {
            sock.state = State::Open;
            tracing::info!(?conn, "connected (TLS)");
            self.engine.handle_connected(now, conn);
        }
        let max = self.config.max_response_size;
        loop {
            let Some(link) = self.sockets[key].tls.as_mut() else {
                return true;
            };
            match link.next_frame(max) {
                Ok(Some(frame)) => {
                    DriverMetrics::add(&self.metrics.responses, 1);
                    self.engine.handle_response(now, conn, frame);
                }
                Ok(None) => break,
                Err(err) => {
                    self.fail(now, key, io::ErrorKind::Other, &err.to_string());
                    return false;
                }
            }
        }
        if progress.closed {
            self.fail(
                now,
                key,
                io::ErrorKind::Other,
                "the broker closed the TLS session",
            );
            return false;
        }
        // Edge-triggered: no event will say the session has something to
        // write, so write now (a failure is reported next turn).
        self.flush(key);
        true
    }

    /// Write what is queued on the socket: every queued frame gathered into
    /// one `sendmsg` (up to 1,024 at a time), until the queue is empty or
    /// the kernel takes only part; then wait for `EPOLLOUT`. A failed write
    /// is reported to the engine next turn.
    ///
    /// With TLS the link first seals what it has (handshake records, and
    /// once the handshake finished the queued request frames) into the
    /// queue; a sealing failure is reported like a failed write.
    fn flush(&mut self, key: usize) {
        let sock = &mut self.sockets[key];
        if !matches!(sock.state, State::Open | State::Handshaking)
            || sock.write_blocked
            || sock.broken
        {
            return;
        }
        if let Some(link) = sock.tls.as_mut() {
            if let Err(err) = link.seal(&mut sock.queue) {
                sock.broken = true;
                self.broken
                    .push_back((key, sock.serial, WriteFailure::Tls(err)));
                return;
            }
        }
        while !sock.queue.is_empty() {
            let batch = sock.queue.take_batch();
            let iovecs: Vec<libc::iovec> = batch
                .slices()
                .map(|s| libc::iovec {
                    iov_base: s.as_ptr().cast_mut().cast(),
                    iov_len: s.len(),
                })
                .collect();
            // SAFETY: msghdr is plain old data; all-zero is a valid value
            // (no name, no control data, no flags).
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_iov = iovecs.as_ptr().cast_mut();
            hdr.msg_iovlen = iovecs.len() as _;
            // SAFETY: the msghdr, its iovecs and the frames they point into
            // (owned by `batch`) are live for the whole call, which only
            // reads them; the fd is a live socket owned by `sock`.
            let n = unsafe { libc::sendmsg(sock.fd.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) };
            drop(iovecs);
            if n > 0 || (n == 0 && batch.total == 0) {
                let n = n as usize;
                DriverMetrics::add(&self.metrics.sends, 1);
                DriverMetrics::add(&self.metrics.bytes_sent, n as u64);
                let short = n < batch.total;
                sock.queue.complete(batch, n);
                if short {
                    sock.write_blocked = true;
                    return;
                }
                continue;
            }
            sock.queue.complete(batch, 0);
            let err = if n == 0 {
                io::Error::new(io::ErrorKind::WriteZero, "wrote nothing: connection closed")
            } else {
                io::Error::last_os_error()
            };
            match err.raw_os_error() {
                Some(libc::EAGAIN) => {
                    sock.write_blocked = true;
                    return;
                }
                Some(libc::EINTR) => {}
                _ => {
                    sock.broken = true;
                    let serial = sock.serial;
                    self.broken.push_back((
                        key,
                        serial,
                        WriteFailure::Io(format!("send failed: {err}")),
                    ));
                    return;
                }
            }
        }
    }

    /// Carry out the engine's socket commands and write its frames, until
    /// a pass yields neither (building frames may ask for a connection).
    fn pump(&mut self, now: Instant) {
        self.run_io_commands(now);
        loop {
            let mut touched: Option<usize> = None;
            while let Some(Transmit { conn, frame }) = self.engine.poll_transmit(now) {
                let Some(&key) = self.by_conn.get(&conn) else {
                    // Still resolving: the frame waits for the socket.
                    if self.attempts.queue_frame(conn, frame).is_err() {
                        tracing::warn!(?conn, "frame for a connection that is not open; dropped");
                    }
                    continue;
                };
                let sock = &mut self.sockets[key];
                match sock.tls.as_mut() {
                    Some(link) => link.push(frame),
                    None => sock.queue.push_frame(frame),
                }
                // Write a connection's frames as soon as frames move on to
                // another connection.
                match touched {
                    Some(prev) if prev != key => self.flush(prev),
                    _ => {}
                }
                touched = Some(key);
            }
            if let Some(key) = touched {
                self.flush(key);
            }
            if !self.run_io_commands(now) {
                return;
            }
        }
    }

    /// Performs every pending socket command; returns whether there was
    /// any.
    fn run_io_commands(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(cmd) = self.engine.poll_io() {
            any = true;
            match cmd {
                IoCommand::Connect {
                    conn,
                    addr,
                    timeout,
                } => {
                    if let Some(old) = self.by_conn.remove(&conn) {
                        self.close(old);
                    }
                    // A new attempt supersedes the last one's lookup and
                    // unreported failure; IP literals need no lookup.
                    if let Some(sa) = self.attempts.begin(now, conn, &addr, timeout) {
                        let addrs = VecDeque::from([sa]);
                        let queue = SendQueue::default();
                        self.start_connect(now, conn, addr, addrs, queue, timeout);
                    }
                }
                IoCommand::Close { conn } => {
                    self.attempts.forget(conn);
                    if let Some(key) = self.by_conn.remove(&conn) {
                        if self.engine.is_finished() && self.sockets[key].has_unsent() {
                            // See `close_when_sent`.
                            self.sockets[key].close_when_sent = true;
                        } else {
                            tracing::debug!(?conn, "closing connection");
                            self.close(key);
                        }
                    }
                }
            }
        }
        any
    }

    /// Start a non-blocking connect to the first of `addrs` a socket can
    /// be made for, failing after `timeout`; the rest are tried in turn
    /// (each within `timeout`) if it fails. `queue` holds frames the
    /// engine queued before the socket existed. A failure with no address
    /// left is queued for the engine (next turn).
    fn start_connect(
        &mut self,
        now: Instant,
        conn: E::Conn,
        name: String,
        mut addrs: VecDeque<SocketAddr>,
        queue: SendQueue,
        timeout: Duration,
    ) {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let entry = self.sockets.vacant_entry();
        let key = entry.key();
        let token = (u64::from(serial) << 32) | key as u64;
        let (sa, fd) = loop {
            let Some(sa) = addrs.pop_front() else {
                self.attempts.fail(conn, &ConnectError::NoAddress { name });
                return;
            };
            match connecting_socket(&self.epoll, sa, self.config.socket_options, token) {
                Ok(fd) => break (sa, fd),
                Err(source) if addrs.is_empty() => {
                    self.attempts
                        .fail(conn, &ConnectError::Socket { name, source });
                    return;
                }
                Err(source) => {
                    tracing::debug!(?conn, addr = %sa, error = %source, "cannot connect; next address");
                }
            }
        };
        tracing::debug!(?conn, %name, resolved = %sa, "connecting");
        entry.insert(Socket {
            conn,
            serial,
            fd,
            state: State::Connecting {
                deadline: now + timeout,
            },
            queue,
            write_blocked: false,
            broken: false,
            name,
            timeout,
            untried: addrs,
            recv_buf: BytesMut::new(),
            tls: None,
            received_any: false,
            close_when_sent: false,
        });
        self.by_conn.insert(conn, key);
    }

    /// A connect failed: try the next resolved address with a new socket,
    /// keeping the queued frames, or, with none left, fail the connection.
    fn connect_next_or_fail(
        &mut self,
        now: Instant,
        key: usize,
        kind: io::ErrorKind,
        reason: &str,
    ) {
        let sock = &mut self.sockets[key];
        if sock.untried.is_empty() {
            let reason = format!("cannot connect to {}: {reason}", sock.name);
            self.fail(now, key, kind, &reason);
            return;
        }
        tracing::debug!(conn = ?sock.conn, name = %sock.name, %reason, "connect failed; trying the next address");
        let (conn, name, timeout) = (sock.conn, std::mem::take(&mut sock.name), sock.timeout);
        let untried = std::mem::take(&mut sock.untried);
        let queue = std::mem::take(&mut sock.queue);
        self.close(key);
        self.start_connect(now, conn, name, untried, queue, timeout);
        // A socket failure of the next address is reported with the
        // attempts' failures at the end of this `reap`.
    }

    /// Closes the sockets the finished engine asked to close once their
    /// last frames are written, those that are; returns whether any still
    /// writes (the loop goes on for it; `stop` still ends it at once).
    /// Why: see the io_uring loop's `close_when_sent`.
    fn close_when_sent(&mut self) -> bool {
        let keys: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.close_when_sent)
            .map(|(k, _)| k)
            .collect();
        let mut writing = false;
        for key in keys {
            if self.sockets[key].has_unsent() {
                writing = true;
            } else {
                self.close(key);
            }
        }
        writing
    }

    /// Close the socket (dropping its fd removes it from the epoll set).
    /// Reports nothing to the engine.
    fn close(&mut self, key: usize) {
        let sock = self.sockets.remove(key);
        if self.by_conn.get(&sock.conn) == Some(&key) {
            self.by_conn.remove(&sock.conn);
        }
        tracing::trace!(conn = ?sock.conn, "socket closed");
    }

    /// The connection failed: close it and tell the engine.
    fn fail(&mut self, now: Instant, key: usize, kind: io::ErrorKind, reason: &str) {
        let (conn, state) = {
            let s = &self.sockets[key];
            (s.conn, s.state)
        };
        self.close(key);
        match state {
            State::Connecting { .. } | State::Handshaking => {
                tracing::warn!(?conn, %reason, "connect failed");
                self.engine.handle_connect_failed(now, conn, kind, reason);
            }
            State::Open => {
                tracing::warn!(?conn, %reason, "disconnected");
                self.engine.handle_disconnected(now, conn, reason);
            }
        }
    }

    /// The TLS layer failed (or a plaintext connection met a TLS listener):
    /// close the socket and tell the engine what kind of failure it was.
    fn fail_tls(&mut self, now: Instant, key: usize, err: TlsError) {
        let sock = &self.sockets[key];
        let conn = sock.conn;
        let reason = format!("{}: {}", sock.name, err.message);
        self.close(key);
        tracing::warn!(?conn, %reason, "TLS failed");
        self.engine.handle_tls_failed(now, conn, err.kind, &reason);
    }
}

fn epoll_ctl(
    epoll: &OwnedFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: both fds are live; `ev` is a valid epoll_event that outlives
    // the call (the kernel copies it).
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking socket with its connect to `sa` under way, registered
/// edge-triggered for reading and writing under `token`.
fn connecting_socket(
    epoll: &OwnedFd,
    sa: SocketAddr,
    buffers: SocketOptions,
    token: u64,
) -> io::Result<OwnedFd> {
    let fd = tcp_socket(&sa, buffers)?;
    let raw = RawSockAddr::new(sa);
    // SAFETY: the address points into `raw`, live for the call, with its
    // length; the fd is a live socket.
    let rc = unsafe { libc::connect(fd.as_raw_fd(), raw.as_ptr(), raw.len()) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), events, token)?;
    Ok(fd)
}

/// The socket's pending error (`SO_ERROR`), which also clears it: how a
/// non-blocking connect reports its outcome.
fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the fd is a live socket; `err` and `len` are live, properly
    // sized locals the kernel writes during the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}
