//! The I/O thread's loop: completions in, engine calls, submissions out,
//! then one kernel wait until a completion, a wake-up or the next deadline.
//!
//! Every buffer the kernel reads or writes (socket addresses, iovecs and
//! their frames, receive buffers, the eventfd counter) is owned by an entry
//! of the `ops` slab, whose key is the submission's `user_data`. An entry is
//! removed only when its completion is reaped, so no buffer is freed while
//! the kernel may still touch it. That holds on every exit path, panics
//! included: `shutdown` cancels and drains, and if it does not finish (a
//! panic), the `Drop` of [`IoThread`] cancels and drains what is left and
//! leaks, never frees, whatever the kernel did not complete. A socket is
//! closed (its fd dropped) only after every operation on it has completed;
//! closing cancels them explicitly with `IORING_OP_ASYNC_CANCEL`.
//!
//! Engine handlers run only from `reap` at the top of a turn. A submission
//! that must make room (the kernel answered `EBUSY`) only moves completions
//! into a queue; it never handles them, so no handler runs, and no socket
//! is released, in the middle of another driver operation.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

use super::attempts::Attempts;
use super::conn::{SendBatch, SendQueue};
use super::framing::{next_frame, reserve_for_read};
use super::handle::{DriverConfig, DriverMetrics};
use super::resolver::{ConnectError, Lookups, Resolver};
use super::socket::{abort_connection, tcp_socket, RawSockAddr};
use super::tls::{self, Link, TlsConnector, TlsError};
use super::{DriverError, Engine, IoCommand, IoWaker, Transmit};

/// `user_data` of cancellation requests; their completions carry nothing.
const CANCEL_USER_DATA: u64 = u64::MAX;
/// `Op::socket` of operations that belong to no socket.
const NO_SOCKET: usize = usize::MAX;
/// How long shutdown waits for cancelled operations to complete.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// The `msghdr` and iovecs of one `SENDMSG`, boxed so their addresses are
/// stable while the kernel reads them.
struct SendMsgParts {
    iovecs: Vec<libc::iovec>,
    hdr: libc::msghdr,
}

impl SendMsgParts {
    fn empty() -> SendMsgParts {
        SendMsgParts {
            iovecs: Vec::new(),
            // SAFETY: msghdr is plain old data; all-zero is a valid value.
            hdr: unsafe { std::mem::zeroed() },
        }
    }
}

enum OpKind {
    /// Read of the wake-up eventfd's 8-byte counter.
    WakeRead(#[allow(dead_code)] Box<[u8; 8]>), // held only so the kernel can write it
    Connect(#[allow(dead_code)] Box<RawSockAddr>), // held only so the kernel can read it
    ConnectTimeout(#[allow(dead_code)] Box<types::Timespec>), // held only so the kernel can read it
    Send {
        batch: SendBatch,
        #[allow(dead_code)] // held only so the kernel can read it
        parts: Box<SendMsgParts>,
        /// Sent with `SENDMSG_ZC`: a second, notification completion
        /// tells when the kernel no longer reads the frames.
        zero_copy: bool,
    },
    /// A zero-copy send whose result arrived: the part of its frames it
    /// wrote stays here until the notification completion.
    ZeroCopyHold(
        #[allow(dead_code)] Vec<bytes::Bytes>,
        #[allow(dead_code)] Box<SendMsgParts>,
    ),
    Recv(BytesMut),
}

/// One operation in flight in the kernel.
struct Op {
    socket: usize,
    /// The socket's serial number when the op was submitted; a completion
    /// whose serial differs from its socket's belongs to an older socket.
    serial: u64,
    kind: OpKind,
    tracker: OpTracker,
}

/// Tests count operations freed before their completion was reaped (a
/// buffer the kernel might still write into). Nothing in other builds.
struct OpTracker {
    #[cfg(test)]
    metrics: Arc<DriverMetrics>,
    #[cfg(test)]
    reaped: bool,
}

impl OpTracker {
    #[cfg_attr(not(test), allow(unused_variables))]
    fn new(metrics: &Arc<DriverMetrics>) -> OpTracker {
        OpTracker {
            #[cfg(test)]
            metrics: Arc::clone(metrics),
            #[cfg(test)]
            reaped: false,
        }
    }

    /// A completion of the operation was reaped and the operation is
    /// being removed: with `flags` saying another completion follows (a
    /// zero-copy send's result, before its notification), that is too
    /// early, and tests count the operation as freed unreaped.
    #[cfg_attr(not(test), allow(unused_variables))]
    fn reaped(&mut self, flags: u32) {
        #[cfg(test)]
        {
            self.reaped = !io_uring::cqueue::more(flags);
        }
    }
}

#[cfg(test)]
impl Drop for OpTracker {
    fn drop(&mut self) {
        if !self.reaped {
            DriverMetrics::add(&self.metrics.ops_freed_unreaped, 1);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SockState {
    Connecting,
    /// TCP is connected and the TLS handshake runs; the engine still
    /// thinks the connection is being established.
    Handshaking,
    Open,
    /// Cancelled; waiting for its operations to drain before the fd is
    /// closed. Completions are no longer reported to the engine.
    Closing,
}

struct Socket<C> {
    conn: C,
    serial: u64,
    fd: OwnedFd,
    state: SockState,
    in_flight: u32,
    connect_op: Option<usize>,
    send_op: Option<usize>,
    recv_op: Option<usize>,
    /// Frames to write: request frames, or with TLS ciphertext (request
    /// frames queued before the TCP connect finished wait here too, and
    /// move into the TLS link then).
    queue: SendQueue,
    /// The `host:port` asked for (for messages).
    name: String,
    /// The attempt's connect timeout, from its `Connect` command: it
    /// bounds the connect to each address and the TLS handshake.
    timeout: Duration,
    /// Resolved addresses not tried yet: if this connect fails, the next
    /// is tried before the engine hears of a failure.
    untried: VecDeque<SocketAddr>,
    /// Received bytes not yet framed (with TLS: ciphertext not yet handed
    /// to the session). Moved into the receive op while one is in flight.
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
    /// Request frames of an open socket not written yet (queued, in a send
    /// under way, or in the TLS link).
    ///
    /// Only an open socket's: a close drops frames queued while the
    /// connection or its TLS handshake is under way (the core writes none
    /// to a connection before its `handle_connected`; the Sim checks it).
    fn has_unsent(&self) -> bool {
        self.state == SockState::Open
            && (self.send_op.is_some()
                || !self.queue.is_empty()
                || self.tls.as_ref().is_some_and(|l| l.queued_bytes() > 0))
    }
}

/// The I/O thread's state. Field order matters on drop: after the `Drop`
/// guard below has drained (or leaked) every operation, the ring drops
/// first, then the buffers (`ops`, `sockets`) and the eventfd (`waker`).
pub(crate) struct IoThread<E: Engine> {
    ring: IoUring,
    engine: E,
    config: DriverConfig,
    waker: IoWaker,
    metrics: Arc<DriverMetrics>,
    stop: Arc<AtomicBool>,
    ops: Slab<Op>,
    sockets: Slab<Socket<E::Conn>>,
    by_conn: HashMap<E::Conn, usize>,
    next_serial: u64,
    wake_op: Option<usize>,
    /// TLS for every connection, if configured.
    tls: Option<TlsConnector>,
    /// Name lookups running on lookup threads, and attempts that failed
    /// before reaching the kernel (no address, no socket): those are
    /// reported to the engine at the top of the next turn, like
    /// completions, never from inside `pump`.
    attempts: Attempts<E::Conn>,
    /// Completions taken off the ring and not yet handled. A submission
    /// that needs room moves completions here and handles none of them:
    /// engine handlers run only from [`reap`](Self::reap), at the top of
    /// the loop, never nested inside another operation of the driver.
    completions: VecDeque<(u64, i32, u32)>,
    #[cfg(test)]
    submits_for_room: u64,
}

impl<E: Engine> IoThread<E> {
    pub(crate) fn new(
        engine: E,
        config: DriverConfig,
        waker: IoWaker,
        metrics: Arc<DriverMetrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, (E, DriverError)> {
        let ring = match build_ring(config.ring_entries, config.send_zero_copy_from.is_some()) {
            Ok(r) => r,
            Err(e) => return Err((engine, e)),
        };
        #[cfg(test)]
        let resolver = config.resolver.clone().unwrap_or_else(Resolver::system);
        #[cfg(not(test))]
        let resolver = Resolver::system();
        let attempts = Attempts::new(Lookups::new(resolver, waker.clone()));
        let tls = config.tls.clone();
        Ok(IoThread {
            tls,
            ring,
            engine,
            config,
            waker,
            metrics,
            stop,
            ops: Slab::with_capacity(64),
            sockets: Slab::new(),
            by_conn: HashMap::new(),
            next_serial: 0,
            wake_op: None,
            attempts,
            completions: VecDeque::with_capacity(256),
            #[cfg(test)]
            submits_for_room: 0,
        })
    }

    /// Run until the engine is finished or a stop is requested, then close
    /// everything.
    ///
    /// A panic in the loop (a bug in the driver or the engine) is caught
    /// here rather than unwound through the thread: unwinding would free
    /// buffers the kernel may still write into. The engine is aborted (so
    /// every pending record gets a result) and the sockets are drained and
    /// closed as on any other exit.
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
        self.shutdown();
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
            self.pump(now)?;
            if self.engine.is_finished() && !self.close_when_sent()? {
                return Ok(());
            }
            self.publish_held_bytes();
            self.arm_wake()?;
            // Failures found while pumping are reported next turn, at once.
            if self.attempts.has_failures() || !self.engine.prepare_park() {
                self.submit()?;
                continue;
            }
            let deadline = [
                self.engine.poll_timeout(),
                self.attempts.deadline(),
                self.handshake_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            self.wait(deadline)?;
        }
    }

    /// Publish how many bytes of request frames the driver holds: queued
    /// on sockets or on lookups, or owned by a send the kernel has not
    /// finished with.
    fn publish_held_bytes(&self) {
        let queued: usize = self
            .sockets
            .iter()
            .map(|(_, s)| s.queue.bytes() + s.tls.as_ref().map_or(0, Link::queued_bytes))
            .sum::<usize>()
            + self.attempts.queued_bytes();
        let in_kernel: usize = self
            .ops
            .iter()
            .map(|(_, op)| match &op.kind {
                // What the send asks the kernel to write (an earlier send
                // wrote the rest of its first frame).
                OpKind::Send { batch, .. } => batch.total,
                OpKind::ZeroCopyHold(frames, _) => frames.iter().map(bytes::Bytes::len).sum(),
                _ => 0,
            })
            .sum();
        self.metrics
            .request_bytes_held
            .store((queued + in_kernel) as u64, Ordering::Relaxed);
    }

    /// Carry out the engine's socket commands and queue its frames. Building
    /// frames may ask for connections (the core connects to a broker when
    /// it first has a request for it), so socket commands are polled again
    /// after the frames, until a pass yields neither.
    fn pump(&mut self, now: Instant) -> Result<(), DriverError> {
        self.run_io_commands(now)?;
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
                if let Some(link) = sock.tls.as_mut() {
                    link.push(frame);
                } else {
                    sock.queue.push_frame(frame);
                }
                // Most turns write to one connection: start the previous
                // one's send as soon as frames move on to another.
                match touched {
                    Some(prev) if prev != key => self.start_send(prev)?,
                    _ => {}
                }
                touched = Some(key);
            }
            if let Some(key) = touched {
                self.start_send(key)?;
            }
            let commands = self.run_io_commands(now)?;
            if !commands {
                return Ok(());
            }
        }
    }

    /// Performs every pending socket command; returns whether there was
    /// any.
    fn run_io_commands(&mut self, now: Instant) -> Result<bool, DriverError> {
        let mut any = false;
        while let Some(cmd) = self.engine.poll_io() {
            any = true;
            match cmd {
                IoCommand::Connect {
                    conn,
                    addr,
                    timeout,
                } => self.connect(now, conn, &addr, timeout)?,
                IoCommand::Close { conn } => {
                    self.attempts.forget(conn);
                    if let Some(key) = self.by_conn.remove(&conn) {
                        if self.engine.is_finished() && self.sockets[key].has_unsent() {
                            // See `close_when_sent`.
                            self.sockets[key].close_when_sent = true;
                        } else {
                            tracing::debug!(?conn, "closing connection");
                            self.begin_close(key)?;
                        }
                    }
                }
            }
        }
        Ok(any)
    }

    fn connect(
        &mut self,
        now: Instant,
        conn: E::Conn,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        if let Some(old) = self.by_conn.remove(&conn) {
            self.begin_close(old)?;
        }
        // A new attempt supersedes the last one's lookup and unreported
        // failure; IP literals need no lookup.
        match self.attempts.begin(now, conn, addr, timeout) {
            Some(sa) => self.start_connect(
                conn,
                addr.to_owned(),
                VecDeque::from([sa]),
                SendQueue::default(),
                timeout,
            ),
            None => Ok(()),
        }
    }

    /// Connect to the first of `addrs` a socket can be made for, within
    /// `timeout`; the rest are tried in turn (each within `timeout`) if
    /// that connect fails. `queue` holds frames the engine queued before
    /// the socket existed.
    fn start_connect(
        &mut self,
        conn: E::Conn,
        name: String,
        mut addrs: VecDeque<SocketAddr>,
        queue: SendQueue,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let (sa, fd) = loop {
            let Some(sa) = addrs.pop_front() else {
                // Callers pass at least one address; should one not, the
                // engine still hears of the failure.
                self.attempts.fail(conn, &ConnectError::NoAddress { name });
                return Ok(());
            };
            match tcp_socket(&sa, self.config.socket_options) {
                Ok(fd) => break (sa, fd),
                Err(source) if addrs.is_empty() => {
                    self.attempts
                        .fail(conn, &ConnectError::Socket { name, source });
                    return Ok(());
                }
                Err(source) => {
                    tracing::debug!(?conn, addr = %sa, error = %source, "no socket; next address");
                }
            }
        };
        tracing::debug!(?conn, %name, resolved = %sa, "connecting");
        let serial = self.next_serial;
        self.next_serial += 1;
        let raw_fd = fd.as_raw_fd();
        let key = self.sockets.insert(Socket {
            conn,
            serial,
            fd,
            state: SockState::Connecting,
            in_flight: 2,
            connect_op: None,
            send_op: None,
            recv_op: None,
            queue,
            name,
            timeout,
            untried: addrs,
            recv_buf: BytesMut::new(),
            tls: None,
            received_any: false,
            close_when_sent: false,
        });
        self.by_conn.insert(conn, key);

        let raw = Box::new(RawSockAddr::new(sa));
        let (addr_ptr, addr_len) = (raw.as_ptr(), raw.len());
        let ts = Box::new(types::Timespec::from(timeout));
        let ts_ptr: *const types::Timespec = &*ts;
        let c_op = self.ops.insert(Op {
            socket: key,
            serial,
            tracker: OpTracker::new(&self.metrics),
            kind: OpKind::Connect(raw),
        });
        let t_op = self.ops.insert(Op {
            socket: key,
            serial,
            tracker: OpTracker::new(&self.metrics),
            kind: OpKind::ConnectTimeout(ts),
        });
        self.sockets[key].connect_op = Some(c_op);
        let connect = opcode::Connect::new(types::Fd(raw_fd), addr_ptr, addr_len)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(c_op as u64);
        let timeout = opcode::LinkTimeout::new(ts_ptr)
            .build()
            .user_data(t_op as u64);
        // SAFETY: the socket address and timespec are boxed in ops `c_op`
        // and `t_op`, which stay in `self.ops` until their completions are
        // reaped, on every exit path (`shutdown` or `IoThread`'s drop guard
        // drains them, or leaks them); the fd is owned by the socket, closed
        // only after both completed or were leaked (the kernel holds its own
        // reference to the file of a submitted operation).
        unsafe { self.push(&[connect, timeout]) }
    }

    /// A connect failed: try the next resolved address with a new socket,
    /// keeping the queued frames, or, with none left, fail the connection.
    fn connect_next_or_fail(
        &mut self,
        now: Instant,
        key: usize,
        kind: io::ErrorKind,
        reason: &str,
    ) -> Result<(), DriverError> {
        let sock = &mut self.sockets[key];
        if sock.untried.is_empty() {
            let reason = format!("cannot connect to {}: {reason}", sock.name);
            return self.fail_with(now, key, kind, &reason);
        }
        tracing::debug!(conn = ?sock.conn, name = %sock.name, %reason, "connect failed; trying the next address");
        let (conn, name, timeout) = (sock.conn, sock.name.clone(), sock.timeout);
        let untried = std::mem::take(&mut sock.untried);
        // Still connecting: no TLS link yet, the frames are plaintext.
        let queue = std::mem::take(&mut sock.queue);
        self.begin_close(key)?;
        self.start_connect(conn, name, untried, queue, timeout)
    }

    fn arm_recv(&mut self, key: usize) -> Result<(), DriverError> {
        let sock = &mut self.sockets[key];
        debug_assert!(sock.recv_op.is_none());
        let mut buf = std::mem::take(&mut sock.recv_buf);
        if sock.tls.is_some() {
            // Ciphertext: TLS records, not Kafka frames; the session takes
            // all of it after each read.
            Link::reserve_for_read(&mut buf, self.config.min_read);
        } else {
            reserve_for_read(
                &mut buf,
                self.config.min_read,
                self.config.max_response_size,
            );
        }
        let spare = buf.spare_capacity_mut();
        let ptr = spare.as_mut_ptr().cast::<u8>();
        let len = u32::try_from(spare.len()).unwrap_or(u32::MAX);
        let entry = opcode::Recv::new(types::Fd(sock.fd.as_raw_fd()), ptr, len);
        let (serial, _) = (sock.serial, ());
        sock.in_flight += 1;
        let op = self.ops.insert(Op {
            socket: key,
            serial,
            tracker: OpTracker::new(&self.metrics),
            kind: OpKind::Recv(buf),
        });
        self.sockets[key].recv_op = Some(op);
        let entry = entry.build().user_data(op as u64);
        // SAFETY: `ptr..ptr+len` is the spare capacity of the BytesMut now
        // owned by op `op`; moving a BytesMut does not move its heap buffer,
        // and the op (so the buffer) is kept until the completion is reaped
        // on every exit path, panics included (`shutdown` or `IoThread`'s
        // drop guard drains it, or leaks it).
        unsafe { self.push(&[entry]) }
    }

    fn start_send(&mut self, key: usize) -> Result<(), DriverError> {
        let sock = &mut self.sockets[key];
        if !matches!(sock.state, SockState::Open | SockState::Handshaking) || sock.send_op.is_some()
        {
            return Ok(());
        }
        if let Some(link) = sock.tls.as_mut() {
            if let Err(err) = link.seal(&mut sock.queue) {
                return self.fail_tls(Instant::now(), key, err);
            }
        }
        let sock = &mut self.sockets[key];
        if sock.queue.is_empty() {
            return Ok(());
        }
        let batch = sock.queue.take_batch();
        let iovecs: Vec<libc::iovec> = batch
            .slices()
            .map(|s| libc::iovec {
                iov_base: s.as_ptr().cast_mut().cast(),
                iov_len: s.len(),
            })
            .collect();
        let mut parts = Box::new(SendMsgParts {
            iovecs,
            // SAFETY: msghdr is plain old data; all-zero is a valid value
            // (null name and control, no flags).
            hdr: unsafe { std::mem::zeroed() },
        });
        parts.hdr.msg_iov = parts.iovecs.as_mut_ptr();
        parts.hdr.msg_iovlen = parts.iovecs.len() as _;
        let hdr_ptr: *const libc::msghdr = &parts.hdr;
        let zero_copy = self
            .config
            .send_zero_copy_from
            .is_some_and(|min| batch.total >= min);
        let fd = sock.fd.as_raw_fd();
        let serial = sock.serial;
        sock.in_flight += 1;
        let op = self.ops.insert(Op {
            socket: key,
            serial,
            tracker: OpTracker::new(&self.metrics),
            kind: OpKind::Send {
                batch,
                parts,
                zero_copy,
            },
        });
        self.sockets[key].send_op = Some(op);
        let entry = if zero_copy {
            opcode::SendMsgZc::new(types::Fd(fd), hdr_ptr)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        } else {
            opcode::SendMsg::new(types::Fd(fd), hdr_ptr)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        }
        .user_data(op as u64);
        // SAFETY: the msghdr, the iovec array and the frames the iovecs point
        // into are owned by op `op` (boxed or heap-allocated, so stable when
        // the op moves) and kept until its completion is reaped (for a
        // zero-copy send, its notification), on every exit path: `shutdown`
        // or `IoThread`'s drop guard drains the op, or leaks it.
        unsafe { self.push(&[entry]) }
    }

    fn arm_wake(&mut self) -> Result<(), DriverError> {
        if self.wake_op.is_some() {
            return Ok(());
        }
        let mut buf = Box::new([0u8; 8]);
        let ptr = buf.as_mut_ptr();
        let op = self.ops.insert(Op {
            socket: NO_SOCKET,
            serial: 0,
            tracker: OpTracker::new(&self.metrics),
            kind: OpKind::WakeRead(buf),
        });
        self.wake_op = Some(op);
        let entry = opcode::Read::new(types::Fd(self.waker.raw_fd()), ptr, 8)
            .build()
            .user_data(op as u64);
        // SAFETY: the 8-byte buffer is boxed in op `op`, kept until the
        // completion is reaped on every exit path (`shutdown` or
        // `IoThread`'s drop guard drains it, or leaks it); the eventfd is
        // kept open by `self.waker`, which drops after the ring.
        unsafe { self.push(&[entry]) }
    }

    /// Closes the sockets the finished engine asked to close once their
    /// last frames are written, those that are; returns whether any still
    /// writes (the loop goes on for it; `stop` still ends it at once).
    ///
    /// Why: with acks=0 the engine reports a record delivered when its
    /// request is built, and the last requests are built in the turn the
    /// engine finishes; cancelling their writes then lost records reported
    /// delivered. (With acks, every request was answered before the
    /// engine finished.)
    fn close_when_sent(&mut self) -> Result<bool, DriverError> {
        let keys: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.close_when_sent && s.state != SockState::Closing)
            .map(|(k, _)| k)
            .collect();
        let mut writing = false;
        for key in keys {
            if self.sockets[key].has_unsent() {
                writing = true;
            } else {
                self.begin_close(key)?;
            }
        }
        Ok(writing)
    }

    /// Cancel every operation of the socket; it is closed once they drained.
    /// Reports nothing to the engine.
    fn begin_close(&mut self, key: usize) -> Result<(), DriverError> {
        if self.sockets[key].state == SockState::Closing {
            return Ok(());
        }
        // The kernel releases a zero-copy send's frames (and posts its
        // notification) only once the peer acknowledged every byte, which
        // a peer that stopped reading never does: the socket would stay
        // closing, holding its frames, until the peer went away. Abort the
        // connection instead, which drops the data queued in the kernel.
        let serial = self.sockets[key].serial;
        let pinned = self.ops.iter().any(|(_, op)| {
            op.socket == key
                && op.serial == serial
                && matches!(
                    op.kind,
                    OpKind::ZeroCopyHold(..)
                        | OpKind::Send {
                            zero_copy: true,
                            ..
                        }
                )
        });
        let sock = &mut self.sockets[key];
        if pinned {
            if let Err(err) = abort_connection(&sock.fd) {
                tracing::debug!(conn = ?sock.conn, error = %err, "aborting the connection failed");
            }
        }
        sock.state = SockState::Closing;
        sock.queue.clear();
        if self.by_conn.get(&sock.conn) == Some(&key) {
            self.by_conn.remove(&sock.conn);
        }
        let cancels: Vec<squeue::Entry> = [sock.connect_op, sock.send_op, sock.recv_op]
            .into_iter()
            .flatten()
            .map(|op| {
                opcode::AsyncCancel::new(op as u64)
                    .build()
                    .user_data(CANCEL_USER_DATA)
            })
            .collect();
        if !cancels.is_empty() {
            // SAFETY: cancellation entries carry no pointers.
            unsafe { self.push(&cancels)? };
        }
        self.maybe_release(key);
        Ok(())
    }

    /// Drop (and so close) a closing socket whose operations all completed.
    /// The socket may be gone already (a completion that failed the
    /// connection released it).
    fn maybe_release(&mut self, key: usize) {
        let Some(sock) = self.sockets.get(key) else {
            return;
        };
        if sock.state == SockState::Closing && sock.in_flight == 0 {
            let sock = self.sockets.remove(key);
            tracing::trace!(conn = ?sock.conn, "socket closed");
        }
    }

    /// The connection failed: close it and tell the engine.
    fn fail(&mut self, now: Instant, key: usize, reason: &str) -> Result<(), DriverError> {
        self.fail_with(now, key, io::ErrorKind::Other, reason)
    }

    /// As [`fail`](Self::fail), with the kind of failure, which the engine
    /// hears for a connect that failed.
    fn fail_with(
        &mut self,
        now: Instant,
        key: usize,
        kind: io::ErrorKind,
        reason: &str,
    ) -> Result<(), DriverError> {
        let sock = &self.sockets[key];
        let (conn, state) = (sock.conn, sock.state);
        self.begin_close(key)?;
        match state {
            SockState::Connecting | SockState::Handshaking => {
                tracing::warn!(?conn, %reason, "connect failed");
                self.engine.handle_connect_failed(now, conn, kind, reason);
            }
            SockState::Open => {
                tracing::warn!(?conn, %reason, "disconnected");
                self.engine.handle_disconnected(now, conn, reason);
            }
            SockState::Closing => {}
        }
        Ok(())
    }

    /// The TLS layer failed (or a plaintext connection met a TLS listener):
    /// close the socket and tell the engine what kind of failure it was.
    fn fail_tls(&mut self, now: Instant, key: usize, err: TlsError) -> Result<(), DriverError> {
        let sock = &self.sockets[key];
        let (conn, state) = (sock.conn, sock.state);
        let reason = format!("{}: {}", sock.name, err.message);
        self.begin_close(key)?;
        if state != SockState::Closing {
            tracing::warn!(?conn, %reason, "TLS failed");
            self.engine.handle_tls_failed(now, conn, err.kind, &reason);
        }
        Ok(())
    }

    /// The earliest deadline of a handshake still running (a socket being
    /// closed has none: it must not wake the loop).
    fn handshake_deadline(&self) -> Option<Instant> {
        self.tls.as_ref()?;
        self.sockets
            .iter()
            .filter(|(_, s)| s.state == SockState::Handshaking)
            .filter_map(|(_, s)| s.tls.as_ref()?.handshake_deadline())
            .min()
    }

    /// Fail the handshakes that overran their attempt's connect timeout.
    fn expire_handshakes(&mut self, now: Instant) -> Result<(), DriverError> {
        if self.handshake_deadline().is_none_or(|d| d > now) {
            return Ok(());
        }
        let expired: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.state == SockState::Handshaking)
            .filter(|(_, s)| {
                s.tls
                    .as_ref()
                    .and_then(Link::handshake_deadline)
                    .is_some_and(|d| d <= now)
            })
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            let err = tls::handshake_timed_out(self.sockets[key].timeout);
            self.fail_tls(now, key, err)?;
        }
        Ok(())
    }

    /// Move every completion the kernel posted into `self.completions`,
    /// handling none: this is all a submission retry may do.
    fn take_completions(&mut self) {
        self.completions.extend(
            self.ring
                .completion()
                .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
        );
    }

    /// Handle every completion, including those a nested submission takes
    /// off the ring meanwhile.
    fn reap(&mut self, now: Instant) {
        self.take_completions();
        while let Some((user_data, res, flags)) = self.completions.pop_front() {
            if let Err(err) = self.complete(now, user_data, res, flags) {
                // Only pushing cancellations can fail here, and only if
                // io_uring_enter itself fails; the main loop will see it.
                tracing::error!(error = %err, "failed to queue a follow-up operation");
            }
        }
        for r in self.attempts.settle(now) {
            if let Err(err) = self.start_connect(r.conn, r.name, r.addrs, r.queue, r.timeout) {
                tracing::error!(error = %err, "failed to queue a connect");
            }
        }
        if let Err(err) = self.expire_handshakes(now) {
            tracing::error!(error = %err, "failed to close a connection");
        }
        while let Some((conn, kind, reason)) = self.attempts.next_failure() {
            tracing::warn!(?conn, %reason, "connect failed");
            self.engine.handle_connect_failed(now, conn, kind, &reason);
        }
    }

    fn complete(
        &mut self,
        now: Instant,
        user_data: u64,
        res: i32,
        flags: u32,
    ) -> Result<(), DriverError> {
        if user_data == CANCEL_USER_DATA {
            return Ok(());
        }
        if io_uring::cqueue::more(flags) {
            // The result of a zero-copy send; its notification follows under
            // the same user_data, so the op stays, holding the frames.
            return self.complete_zero_copy_result(now, user_data as usize, res);
        }
        let Some(mut op) = self.ops.try_remove(user_data as usize) else {
            tracing::error!(user_data, "completion for an unknown operation");
            return Ok(());
        };
        op.tracker.reaped(flags);
        if op.socket == NO_SOCKET {
            self.wake_op = None;
            if res < 0 && res != -libc::ECANCELED {
                tracing::error!(error = %errno(res), "reading the wake-up eventfd failed");
            }
            return Ok(());
        }
        let key = op.socket;
        let sock = &mut self.sockets[key];
        if sock.serial != op.serial {
            tracing::error!("completion for an operation of an older socket; ignored");
            return Ok(());
        }
        sock.in_flight -= 1;
        let closing = sock.state == SockState::Closing;
        match op.kind {
            OpKind::WakeRead(_) => {}
            OpKind::ConnectTimeout(_) => {}
            // The kernel is done with a zero-copy send's frames.
            OpKind::ZeroCopyHold(..) => {}
            OpKind::Connect(_) => {
                sock.connect_op = None;
                if closing {
                } else if res == 0 {
                    DriverMetrics::add(&self.metrics.connects, 1);
                    if let Some(connector) = &self.tls {
                        // The engine hears of the connection once the
                        // handshake finished.
                        tracing::debug!(conn = ?sock.conn, "TCP connected; TLS handshake");
                        let pending = std::mem::take(&mut sock.queue);
                        let deadline = now + sock.timeout;
                        match Link::start(connector, &sock.name, pending, deadline) {
                            Ok(link) => {
                                sock.tls = Some(link);
                                sock.state = SockState::Handshaking;
                                self.arm_recv(key)?;
                                self.start_send(key)?;
                            }
                            Err(err) => self.fail_tls(now, key, err)?,
                        }
                    } else {
                        sock.state = SockState::Open;
                        let conn = sock.conn;
                        tracing::info!(?conn, "connected");
                        self.engine.handle_connected(now, conn);
                        self.arm_recv(key)?;
                        self.start_send(key)?;
                    }
                } else if res == -libc::ECANCELED {
                    let reason = format!("connect timed out after {:?}", sock.timeout);
                    self.connect_next_or_fail(now, key, io::ErrorKind::TimedOut, &reason)?;
                } else {
                    let err = errno(res);
                    self.connect_next_or_fail(now, key, err.kind(), &err.to_string())?;
                }
            }
            OpKind::Send { batch, .. } => {
                sock.send_op = None;
                if closing {
                } else if res < 0 {
                    self.fail(now, key, &format!("send failed: {}", errno(res)))?;
                } else if res == 0 && batch.total > 0 {
                    self.fail(now, key, "send wrote nothing: connection closed")?;
                } else {
                    let n = res as usize;
                    DriverMetrics::add(&self.metrics.sends, 1);
                    DriverMetrics::add(&self.metrics.bytes_sent, n as u64);
                    sock.queue.complete(batch, n);
                    self.start_send(key)?;
                }
            }
            OpKind::Recv(mut buf) => {
                sock.recv_op = None;
                if closing {
                } else if let Some(err) = (res == 0)
                    .then(|| sock.tls.as_ref()?.closed_error())
                    .flatten()
                {
                    self.fail_tls(now, key, err)?;
                } else if res == 0 && !sock.received_any && sock.tls.is_none() {
                    self.fail(
                        now,
                        key,
                        "connection closed by the broker before it answered (if the listener \
                         expects TLS, set security.protocol=SSL)",
                    )?;
                } else if res == 0 {
                    self.fail(now, key, "connection closed by the broker")?;
                } else if res < 0 {
                    self.fail(now, key, &format!("receive failed: {}", errno(res)))?;
                } else {
                    let n = res as usize;
                    // SAFETY: the kernel wrote `n` bytes (at most the length
                    // we offered) into the spare capacity that starts at
                    // `buf.len()`; the buffer was not touched since.
                    unsafe { buf.set_len(buf.len() + n) };
                    DriverMetrics::add(&self.metrics.bytes_received, n as u64);
                    let first = !std::mem::replace(&mut sock.received_any, true);
                    if sock.tls.is_some() {
                        self.deliver_tls(now, key, buf)?;
                    } else if first && tls::looks_like_tls(&buf) {
                        self.fail_tls(now, key, tls::peer_expects_tls())?;
                    } else {
                        self.deliver(now, key, buf)?;
                    }
                }
            }
        }
        self.maybe_release(key);
        Ok(())
    }

    /// The first completion of a zero-copy send: account for the bytes
    /// written like any send, but keep (clones of) its frames in the op
    /// until the notification completion says the kernel released them.
    fn complete_zero_copy_result(
        &mut self,
        now: Instant,
        op_key: usize,
        res: i32,
    ) -> Result<(), DriverError> {
        let Some(op) = self.ops.get_mut(op_key) else {
            tracing::error!(op_key, "zero-copy result for an unknown operation");
            return Ok(());
        };
        let key = op.socket;
        let placeholder = OpKind::ZeroCopyHold(Vec::new(), Box::new(SendMsgParts::empty()));
        let OpKind::Send {
            batch,
            parts,
            zero_copy: true,
        } = std::mem::replace(&mut op.kind, placeholder)
        else {
            tracing::error!(
                op_key,
                "zero-copy result for an operation that is not a zero-copy send"
            );
            return Ok(());
        };
        // The kernel reads only what it took: a failed send keeps all.
        let held = match usize::try_from(res) {
            Ok(n) if n <= batch.total => batch.written_part(n),
            _ => batch.frames.clone(),
        };
        op.kind = OpKind::ZeroCopyHold(held, parts);
        // The op (and the socket's in-flight count) stays until the
        // notification; the socket may start its next send now.
        let sock = &mut self.sockets[key];
        sock.send_op = None;
        if sock.state == SockState::Closing {
            return Ok(());
        }
        if res < 0 {
            return self.fail(now, key, &format!("send failed: {}", errno(res)));
        }
        if res == 0 && batch.total > 0 {
            return self.fail(now, key, "send wrote nothing: connection closed");
        }
        let n = res as usize;
        DriverMetrics::add(&self.metrics.sends, 1);
        DriverMetrics::add(&self.metrics.bytes_sent, n as u64);
        sock.queue.complete(batch, n);
        self.start_send(key)
    }

    /// Hand every complete response in `buf` to the engine, keep the rest,
    /// and receive again.
    fn deliver(&mut self, now: Instant, key: usize, mut buf: BytesMut) -> Result<(), DriverError> {
        let conn = self.sockets[key].conn;
        let max = self.config.max_response_size;
        loop {
            match next_frame(&mut buf, max) {
                Ok(Some(frame)) => {
                    DriverMetrics::add(&self.metrics.responses, 1);
                    self.engine.handle_response(now, conn, frame);
                }
                Ok(None) => break,
                Err(err) => return self.fail(now, key, &err.to_string()),
            }
        }
        let sock = &mut self.sockets[key];
        sock.recv_buf = buf;
        if sock.state == SockState::Open {
            self.arm_recv(key)?;
        }
        Ok(())
    }

    /// TLS: hand the received ciphertext to the session, finish the
    /// handshake (telling the engine the connection is up), hand every
    /// complete decrypted response to the engine, send what the session
    /// has to say, and receive again.
    fn deliver_tls(
        &mut self,
        now: Instant,
        key: usize,
        mut buf: BytesMut,
    ) -> Result<(), DriverError> {
        let sock = &mut self.sockets[key];
        let Some(link) = sock.tls.as_mut() else {
            return Ok(());
        };
        let result = link.receive(&buf);
        buf.clear();
        sock.recv_buf = buf;
        let progress = match result {
            Ok(p) => p,
            Err(err) => return self.fail_tls(now, key, err),
        };
        let conn = sock.conn;
        if progress.established {
            sock.state = SockState::Open;
            tracing::info!(?conn, "connected (TLS)");
            self.engine.handle_connected(now, conn);
        }
        let max = self.config.max_response_size;
        loop {
            let Some(link) = self.sockets[key].tls.as_mut() else {
                return Ok(());
            };
            match link.next_frame(max) {
                Ok(Some(frame)) => {
                    DriverMetrics::add(&self.metrics.responses, 1);
                    self.engine.handle_response(now, conn, frame);
                }
                Ok(None) => break,
                Err(err) => return self.fail(now, key, &err.to_string()),
            }
        }
        if progress.closed {
            return self.fail(now, key, "the broker closed the TLS session");
        }
        // Handshake replies (or key updates) wait in the session.
        self.start_send(key)?;
        // A send that failed (`fail_tls`) may have released the socket.
        let Some(sock) = self.sockets.get(key) else {
            return Ok(());
        };
        if matches!(sock.state, SockState::Open | SockState::Handshaking) && sock.recv_op.is_none()
        {
            self.arm_recv(key)?;
        }
        Ok(())
    }

    /// Submit without waiting.
    fn submit(&mut self) -> Result<(), DriverError> {
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The completion queue is full, or the kernel could not
                // allocate a request for now: the caller reaps next.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {
                    return Ok(())
                }
                Err(e) => return Err(DriverError::Ring(e)),
            }
        }
    }

    /// Submit and sleep until a completion or `deadline`.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        let now = Instant::now();
        let res = match deadline {
            Some(d) if d <= now => return self.submit(),
            Some(d) => {
                let ts = types::Timespec::from(d - now);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        DriverMetrics::add(&self.metrics.io_wakeups, 1);
        match res {
            Err(e) if !wait_ended_normally(&e) => Err(DriverError::Ring(e)),
            _ => Ok(()),
        }
    }

    /// Queue entries contiguously (linked entries must be adjacent),
    /// submitting first if the queue lacks room.
    ///
    /// # Safety
    /// Every pointer in `entries` must stay valid until the entry's
    /// completion is reaped.
    unsafe fn push(&mut self, entries: &[squeue::Entry]) -> Result<(), DriverError> {
        loop {
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() >= entries.len() {
                for e in entries {
                    // SAFETY: room was checked above; the caller guarantees
                    // the entry's pointers outlive its completion.
                    unsafe { sq.push(e) }.expect("room was checked");
                }
                return Ok(());
            }
            drop(sq);
            match self.submit_for_room() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) =>
                {
                    // Make room in the completion queue, then try again
                    // (EAGAIN, the kernel short of memory for a request,
                    // asks for the same).
                    // The completions are only recorded: handling them here
                    // would run engine handlers (and release sockets) in
                    // the middle of whatever operation is pushing.
                    self.take_completions();
                }
                Err(e) => return Err(DriverError::Ring(e)),
            }
        }
    }

    /// Submit to make room in the submission queue.
    fn submit_for_room(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(every) = self.config.busy_every {
            self.submits_for_room += 1;
            if self.submits_for_room.is_multiple_of(u64::from(every.get())) {
                // What Linux 5.11-5.18 answer while completions overflowed
                // and cannot be flushed (io_uring_enter(2), EBUSY).
                return Err(io::Error::from_raw_os_error(self.config.busy_errno));
            }
        }
        self.ring.submit()
    }

    /// Close every socket and wait for every operation to complete, so no
    /// buffer is released while the kernel may use it.
    fn shutdown(&mut self) {
        let keys: Vec<usize> = self.sockets.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Err(err) = self.begin_close(key) {
                tracing::error!(error = %err, "failed to cancel socket operations");
            }
        }
        #[cfg(test)]
        if self.config.panic_in_shutdown {
            panic!("injected panic in shutdown");
        }
        if let Some(op) = self.wake_op {
            let cancel = opcode::AsyncCancel::new(op as u64)
                .build()
                .user_data(CANCEL_USER_DATA);
            // SAFETY: cancellation entries carry no pointers.
            if let Err(err) = unsafe { self.push(&[cancel]) } {
                tracing::error!(error = %err, "failed to cancel the wake-up read");
            }
        }
        let deadline = Instant::now() + self.drain_bound();
        while !self.ops.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                // Never free memory the kernel may still write: leak it.
                tracing::error!(
                    pending = self.ops.len(),
                    "io_uring operations did not complete after cancellation; leaking their buffers"
                );
                self.leak_ops();
                for (_, sock) in std::mem::take(&mut self.sockets) {
                    std::mem::forget(sock);
                }
                return;
            }
            if let Err(e) = self.wait_for_completion(deadline - now) {
                tracing::error!(error = %e, "io_uring_enter failed during shutdown");
            }
            self.reap_shutdown();
        }
    }

    /// Submits what is queued and waits for one completion, at most `left`
    /// (capped at 100 ms so a drain loop re-checks its deadline). A timeout,
    /// an interrupt or a full completion queue are not errors here: the
    /// caller reaps and loops.
    fn wait_for_completion(&mut self, left: Duration) -> std::io::Result<()> {
        let ts = types::Timespec::from(left.min(Duration::from_millis(100)));
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Err(e) if !wait_ended_normally(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// How long shutdown and the drop guard wait for cancelled operations
    /// to complete before leaking them.
    fn drain_bound(&self) -> Duration {
        #[cfg(test)]
        if let Some(bound) = self.config.drain_sees_nothing_for {
            return bound;
        }
        SHUTDOWN_DRAIN
    }

    /// Takes the completions a drain waits for off the ring (the test hook
    /// `drain_sees_nothing_for` throws them away, as if the kernel kept
    /// every operation).
    fn take_drain_completions(&mut self) {
        self.take_completions();
        #[cfg(test)]
        if self.config.drain_sees_nothing_for.is_some() {
            self.completions.clear();
        }
    }

    /// Leaks every operation left: their buffers are never freed, since
    /// the kernel may still use them.
    fn leak_ops(&mut self) {
        #[cfg(test)]
        DriverMetrics::add(&self.metrics.ops_leaked, self.ops.len() as u64);
        for (_, op) in std::mem::take(&mut self.ops) {
            std::mem::forget(op);
        }
    }

    fn reap_shutdown(&mut self) {
        self.take_drain_completions();
        while let Some((user_data, _, flags)) = self.completions.pop_front() {
            if user_data == CANCEL_USER_DATA {
                continue;
            }
            if io_uring::cqueue::more(flags) {
                // A zero-copy send's result: the op keeps its frames until
                // the notification that follows.
                continue;
            }
            if let Some(mut op) = self.ops.try_remove(user_data as usize) {
                op.tracker.reaped(flags);
                if op.socket == NO_SOCKET {
                    self.wake_op = None;
                } else if let Some(sock) = self.sockets.get_mut(op.socket) {
                    sock.in_flight -= 1;
                    self.maybe_release(op.socket);
                }
            }
        }
    }
}

/// The guard behind every `// SAFETY:` comment that says an operation's
/// buffers are kept until its completion: whatever way the I/O thread ends
/// (`shutdown` returned, or a panic unwound out of it or out of `run`),
/// no operation's buffers are freed while the kernel may still use them.
/// Operations left over are cancelled and waited for (bounded); any that
/// still did not complete are leaked, never freed. Fields drop after this
/// runs, the ring first (it is declared first), so by then `ops` is empty.
impl<E: Engine> Drop for IoThread<E> {
    fn drop(&mut self) {
        if self.ops.is_empty() {
            return;
        }
        tracing::error!(
            pending = self.ops.len(),
            "the I/O thread ended with operations in the kernel; cancelling and draining them"
        );
        if catch_unwind(AssertUnwindSafe(|| self.drain_on_drop())).is_err() {
            tracing::error!("draining the ring panicked");
        }
        if !self.ops.is_empty() {
            tracing::error!(
                pending = self.ops.len(),
                "io_uring operations did not complete; leaking their buffers"
            );
            self.leak_ops();
        }
    }
}

impl<E: Engine> IoThread<E> {
    /// Cancel every operation still in `ops` and wait (up to
    /// [`SHUTDOWN_DRAIN`]) for their completions. Touches nothing but the
    /// ring and `ops`: the rest of the state may be inconsistent after a
    /// panic.
    fn drain_on_drop(&mut self) {
        // Whatever is on the ring, or a submission took off it but nobody
        // handled.
        self.take_drain_completions();
        let mut taken = std::mem::take(&mut self.completions);
        let keys: Vec<usize> = self.ops.iter().map(|(k, _)| k).collect();
        for key in keys {
            let cancel = opcode::AsyncCancel::new(key as u64)
                .build()
                .user_data(CANCEL_USER_DATA);
            // SAFETY: cancellation entries carry no pointers.
            if let Err(err) = unsafe { self.push(&[cancel]) } {
                tracing::error!(error = %err, "failed to queue a cancellation");
                break;
            }
        }
        self.take_drain_completions();
        taken.append(&mut self.completions);
        let deadline = Instant::now() + self.drain_bound();
        loop {
            while let Some((user_data, _, flags)) = taken.pop_front() {
                // A zero-copy send's result is followed by its notification.
                if user_data == CANCEL_USER_DATA || io_uring::cqueue::more(flags) {
                    continue;
                }
                if let Some(mut op) = self.ops.try_remove(user_data as usize) {
                    op.tracker.reaped(flags);
                    #[cfg(test)]
                    DriverMetrics::add(&self.metrics.drop_guard_drained, 1);
                }
            }
            let now = Instant::now();
            if self.ops.is_empty() || now >= deadline {
                return;
            }
            if let Err(e) = self.wait_for_completion(deadline - now) {
                tracing::error!(error = %e, "io_uring_enter failed while draining");
                return;
            }
            self.take_drain_completions();
            taken.append(&mut self.completions);
        }
    }
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn errno(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

/// The fewest submission entries a ring gets: [`IoThread::push`] queues
/// entries that belong together at once (a connect and its linked timeout,
/// a closing socket's up to three cancellations), and a queue with less
/// room could never take them.
const MIN_RING_ENTRIES: u32 = 4;

/// Create the ring, preferring single-issuer and cooperative task running
/// (fewer inter-processor interrupts), and check the features kring uses.
fn build_ring(entries: u32, zero_copy: bool) -> Result<IoUring, DriverError> {
    let entries = entries.max(MIN_RING_ENTRIES);
    let ring = match IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_cqsize(entries.saturating_mul(2))
        .build(entries)
    {
        Ok(r) => r,
        // Older kernels reject the setup flags: retry without them.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(entries.saturating_mul(2))
            .build(entries)
            .map_err(DriverError::from_setup)?,
        Err(e) => return Err(DriverError::from_setup(e)),
    };
    if !ring.params().is_feature_ext_arg() {
        return Err(DriverError::MissingFeature(
            "IORING_FEAT_EXT_ARG (wait timeouts)",
        ));
    }
    if !ring.params().is_feature_nodrop() {
        return Err(DriverError::MissingFeature("IORING_FEAT_NODROP"));
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|_| DriverError::MissingFeature("IORING_REGISTER_PROBE"))?;
    for (code, name) in [
        (opcode::Connect::CODE, "IORING_OP_CONNECT"),
        (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
        (opcode::Recv::CODE, "IORING_OP_RECV"),
        (opcode::Read::CODE, "IORING_OP_READ"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (opcode::LinkTimeout::CODE, "IORING_OP_LINK_TIMEOUT"),
    ] {
        if !probe.is_supported(code) {
            return Err(DriverError::MissingFeature(name));
        }
    }
    if zero_copy && !probe.is_supported(opcode::SendMsgZc::CODE) {
        return Err(DriverError::MissingFeature(
            "IORING_OP_SENDMSG_ZC (Linux >= 6.1), asked for by send_zero_copy_from",
        ));
    }
    Ok(ring)
}

/// Whether this kernel (and sandbox) lets kring use io_uring.
#[cfg(test)]
pub(crate) fn io_uring_usable() -> bool {
    build_ring(8, false).is_ok()
}

/// Whether an `io_uring_enter` that waited ended the ordinary way: its
/// timeout passed (ETIME), a signal interrupted it (EINTR), the completion
/// queue is full (EBUSY) or the kernel could not allocate a request for
/// now (EAGAIN). The caller reaps and goes on.
fn wait_ended_normally(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}
