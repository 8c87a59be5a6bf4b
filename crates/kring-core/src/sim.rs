//! A deterministic simulation harness: the real [`ProducerCore`] against a
//! Kafka cluster answering in-process, with simulated time.
//!
//! Why: linger, retries, timeouts, leader moves and idempotence are about
//! time and failures. Here they are tested without sockets and without
//! sleeping: [`Sim::step`] plays one turn of a driver (what the io_uring
//! driver does), and when nothing is left to do *now* it jumps the clock
//! to the next deadline (the core's [`poll_timeout`](ProducerCore::poll_timeout)
//! or the next broker event). The broker decodes the core's real request
//! frames and answers with real encoded responses, so the wire code is
//! exercised too.
//!
//! The broker side is a [`SimBroker`]. The one the tests use (with the
//! `sim` feature) is kring-mock's own request dispatch: a
//! `kring_mock::MockCluster` built with `build_unbound` answers through
//! the code its TCP server runs — topics, leaders, logs validated and
//! deduplicated as Kafka does, its SASL listener (screened per Sim
//! connection on simulated time) — so the Sim cannot drift from the mock.
//! Faults are the mock's own: counted `Fault::error`s on a partition,
//! `drop_before_apply` / `drop_after_apply`, delays and throttles (played
//! as simulated latency), `Fault::swallow` (a black hole), addresses whose
//! connects go unanswered ([`Sim::unanswered`]: each times out after the
//! timeout its `Connect` carries), `Lie`s
//! (absurd metadata or offsets), hooks, leader moves, broker stop/start,
//! and the test controls (`forget_producers`, `set_last_sequence`,
//! `set_max_version`, `add_partitions`, `set_sasl_user`). [`chaos`] runs
//! whole fuzzer- or seed-chosen fault schedules over it and checks the
//! delivery guarantees. A caller may bring its own broker (the benches
//! answer Produce with a minimal hand-written one, everything else through
//! kring-mock).
//!
//! Behind `cfg(test)` or the `sim` feature, so other crates' tests (and the
//! fuzz target) can reuse it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::delivery::DeliveryHandle;
use crate::error::SendError;
use crate::producer::{ConnId, IoCommand, ProducerCore};
use crate::shared::{AppendOutcome, RecordRef, Shared};

#[cfg(feature = "sim")]
pub mod chaos;
#[cfg(feature = "sim")]
mod mock;

/// What a simulated broker does with one request frame.
#[derive(Debug)]
pub enum BrokerStep {
    /// Answer with `frame` (size prefix included) after the node's latency
    /// plus `delay`, in order with the connection's earlier responses; then
    /// hold every later response on the connection back by `mute` (a
    /// throttled, muted channel).
    Respond {
        /// The response frame, size prefix included.
        frame: Bytes,
        /// Extra delay (a delay fault).
        delay: Duration,
        /// Mute after answering (a throttle).
        mute: Duration,
    },
    /// Answer nothing (acks=0, a black hole).
    Silent,
    /// Drop the connection `after` this long.
    Close {
        /// When the driver hears of the loss.
        after: Duration,
        /// Discard responses already queued on the connection (else they
        /// arrive first, as from a broker that answers in order).
        discard_queued: bool,
    },
}

/// A cluster the [`Sim`] drives the core against: kring-mock's own
/// dispatch (`kring_mock::MockCluster` built with `build_unbound`, behind
/// the `sim` feature), so the Sim and the wire-level mock answer with the
/// same code, or a broker of the caller's (the benches' cheapest Produce
/// broker).
pub trait SimBroker {
    /// One connection's state of the broker's SASL screen (`()` for a
    /// broker without SASL).
    type Session: Default;
    /// The `host:port` the core bootstraps from.
    fn bootstrap(&self) -> String;
    /// The node listening at `addr`, if it accepts a connection now.
    fn accept(&mut self, addr: &str) -> Option<i32>;
    /// One-way latency to `node` (connects and responses take this long).
    fn latency(&self, node: i32) -> Duration;
    /// Handles one request frame (size prefix included) sent to `node`.
    fn handle(&mut self, node: i32, frame: Bytes) -> BrokerStep;
    /// Screens a request frame (size prefix included) on a connection to
    /// `node` before [`handle`](Self::handle): a SASL listener answers the
    /// SASL exchange itself and closes a connection that sends anything
    /// else before authenticating or after its session expired. `session`
    /// is the connection's screening state, `now` the simulated time.
    /// Default: everything passes.
    fn screen(
        &mut self,
        node: i32,
        session: &mut Self::Session,
        now: Instant,
        frame: &Bytes,
    ) -> Screen {
        let _ = (node, session, now, frame);
        Screen::Pass
    }
}

/// What a broker's SASL screen does with a request
/// ([`SimBroker::screen`]).
#[derive(Debug)]
pub enum Screen {
    /// Hand it to the broker.
    Pass,
    /// Answer with this frame (size prefix included).
    Answer(Bytes),
    /// Answer with this frame, then close the connection (a failed
    /// authentication).
    AnswerAndClose(Bytes),
    /// Close the connection without answering.
    Close,
}

#[derive(Debug)]
enum SimEvent {
    Connected(ConnId),
    ConnectFailed(ConnId),
    /// A connect nothing answered, failed when its timeout ran out.
    ConnectTimedOut(ConnId, Duration),
    Response(ConnId, Bytes),
    Disconnected(ConnId),
}

#[derive(Debug)]
struct SimConn<S> {
    node: i32,
    /// A throttled connection answers nothing before this.
    muted_until: Option<Instant>,
    /// The broker's SASL screening state for the connection.
    session: S,
    /// The core has heard `handle_connected`: before it, a frame written
    /// to the connection is a core bug (drivers drop such frames on close).
    connected: bool,
}

/// The harness: a core, its shared state, a cluster and simulated time.
pub struct Sim<B: SimBroker> {
    /// The core under test.
    pub core: ProducerCore,
    /// Its shared state (what producer threads use).
    pub shared: Arc<Shared>,
    /// The cluster.
    pub cluster: B,
    /// Simulated now.
    pub now: Instant,
    /// Where simulated time started.
    pub start: Instant,
    events: BTreeMap<(Instant, u64), SimEvent>,
    seq: u64,
    conns: HashMap<ConnId, SimConn<B::Session>>,
    /// Wake-ups producer calls asked for (appends, flushes, closes).
    pub wakes: u64,
    /// Times the harness let the core park.
    pub parks: u64,
    /// Every frame the core transmitted: (connection, node, api key, api
    /// version).
    pub transmitted: Vec<(ConnId, i32, i16, i16)>,
    /// Bytes of every response handed to the core, size prefixes
    /// included.
    pub received_bytes: u64,
    /// Every connect the core asked for.
    pub connects: Vec<String>,
    /// The timeout of each connect in [`connects`](Self::connects), index
    /// for index.
    pub connect_timeouts: Vec<Duration>,
    /// Addresses whose connects nothing answers (a host that drops the
    /// SYN): each attempt fails as timed out when the timeout its
    /// `Connect` carries runs out, as the I/O driver fails it. Checked
    /// when the connect is asked for; empty by default.
    pub unanswered: BTreeSet<String>,
    /// Every close the core asked for.
    pub closes: Vec<ConnId>,
    /// Connections a SASL broker closed (a request before authentication
    /// or after the session expired).
    pub sasl_closes: u64,
    /// `Some`: every transmitted frame is kept here, its chunks (the
    /// batches' buffers among them) still referenced, as a driver keeps a
    /// frame while the kernel may still read it; dropping them is the
    /// kernel letting go. `None` (the default): frames are dropped once
    /// handed to the broker.
    pub held_frames: Option<Vec<kring_protocol::frame::Frame>>,
}

impl<B: SimBroker> std::fmt::Debug for Sim<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &(self.now - self.start))
            .field("core", &self.core)
            .field("events", &self.events.len())
            .finish()
    }
}

impl<B: SimBroker> Sim<B> {
    /// A sim with `config` (bootstrap set to the cluster's first node),
    /// whose simulated time starts at `start`. Any instant will do (the
    /// caller reads the clock once, or reuses one): kring-core never reads
    /// the clock, and after `start` time only moves when the harness moves
    /// it.
    pub fn new(mut config: Config, cluster: B, start: Instant) -> Sim<B> {
        if config.bootstrap.is_empty() {
            config.bootstrap = vec![cluster.bootstrap()];
        }
        let (core, shared) = ProducerCore::new(config, start).expect("valid config");
        Sim {
            core,
            shared,
            cluster,
            now: start,
            start,
            events: BTreeMap::new(),
            seq: 0,
            conns: HashMap::new(),
            wakes: 0,
            parks: 0,
            transmitted: Vec::new(),
            received_bytes: 0,
            connects: Vec::new(),
            connect_timeouts: Vec::new(),
            unanswered: BTreeSet::new(),
            closes: Vec::new(),
            sasl_closes: 0,
            held_frames: None,
        }
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn schedule(&mut self, at: Instant, ev: SimEvent) {
        self.seq += 1;
        self.events.insert((at, self.seq), ev);
    }

    /// Drops every connection to `node` now (the driver reports them).
    pub fn disconnect_node(&mut self, node: i32) {
        let mut ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.node == node)
            .map(|(&id, _)| id)
            .collect();
        // In connection order, whatever the map's: a schedule replays
        // exactly.
        ids.sort_unstable();
        for id in ids {
            self.conns.remove(&id);
            self.events
                .retain(|_, e| !matches!(e, SimEvent::Response(c, _) if *c == id));
            self.core
                .handle_disconnected(self.now, id, "sim: node dropped the connection");
        }
    }

    fn handle_io(&mut self, cmd: IoCommand) {
        match cmd {
            IoCommand::Connect {
                conn,
                addr,
                timeout,
            } => {
                self.connects.push(addr.clone());
                self.connect_timeouts.push(timeout);
                if self.unanswered.contains(&addr) {
                    self.schedule(self.now + timeout, SimEvent::ConnectTimedOut(conn, timeout));
                    return;
                }
                match self.cluster.accept(&addr) {
                    Some(n) => {
                        self.conns.insert(
                            conn,
                            SimConn {
                                node: n,
                                muted_until: None,
                                session: Default::default(),
                                connected: false,
                            },
                        );
                        let at = self.now + self.cluster.latency(n);
                        self.schedule(at, SimEvent::Connected(conn));
                    }
                    None => {
                        let at = self.now + Duration::from_millis(1);
                        self.schedule(at, SimEvent::ConnectFailed(conn));
                    }
                }
            }
            IoCommand::Close { conn } => {
                self.closes.push(conn);
                self.conns.remove(&conn);
                self.events.retain(|_, e| match e {
                    SimEvent::Response(c, _)
                    | SimEvent::Connected(c)
                    | SimEvent::Disconnected(c) => *c != conn,
                    SimEvent::ConnectFailed(c) | SimEvent::ConnectTimedOut(c, _) => *c != conn,
                });
            }
        }
    }

    fn handle_transmit(&mut self, conn: ConnId, frame: Bytes) {
        let Some(c) = self.conns.get(&conn) else {
            // A connection the "network" already dropped: its loss is
            // reported later; until then frames written to it vanish (as a
            // real driver drops frames of a broken socket).
            let pending_loss = self
                .events
                .values()
                .any(|e| matches!(e, SimEvent::Disconnected(c) if *c == conn));
            assert!(
                pending_loss,
                "transmit on a connection the driver does not have: {conn}"
            );
            return;
        };
        assert!(
            c.connected,
            "transmit on connection {conn} before handle_connected"
        );
        let node = c.node;
        let (key, version) = if frame.len() >= 8 {
            (
                i16::from_be_bytes([frame[4], frame[5]]),
                i16::from_be_bytes([frame[6], frame[7]]),
            )
        } else {
            (-1, -1)
        };
        self.transmitted.push((conn, node, key, version));
        let latency = self.cluster.latency(node);
        // Responses on one connection keep their order: none is scheduled
        // earlier than the last one queued for it.
        let last = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, SimEvent::Response(c, _) if *c == conn))
            .map(|(k, _)| k.0)
            .max();
        // A SASL listener screens each connection's requests before the
        // broker sees them (the connection, not the broker, is
        // authenticated).
        let now = self.now;
        let session = &mut self.conns.get_mut(&conn).expect("conn").session;
        match self.cluster.screen(node, session, now, &frame) {
            Screen::Pass => {}
            Screen::Answer(resp) => {
                self.schedule_response(conn, latency, resp);
                return;
            }
            Screen::AnswerAndClose(resp) => {
                let at = self.schedule_response(conn, latency, resp);
                self.conns.remove(&conn);
                // After the answer (events at one instant keep their order).
                self.schedule(at, SimEvent::Disconnected(conn));
                return;
            }
            Screen::Close => {
                self.sasl_closes += 1;
                self.conns.remove(&conn);
                self.events
                    .retain(|_, e| !matches!(e, SimEvent::Response(c, _) if *c == conn));
                let at = self.now + latency;
                self.schedule(at, SimEvent::Disconnected(conn));
                return;
            }
        }
        match self.cluster.handle(node, frame) {
            BrokerStep::Respond { frame, delay, mute } => {
                let muted = self.conns.get(&conn).and_then(|c| c.muted_until);
                let at = (self.now + latency + delay)
                    .max(last.unwrap_or(self.now))
                    .max(muted.unwrap_or(self.now));
                if !mute.is_zero() {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.muted_until = Some(at + mute);
                    }
                }
                self.schedule(at, SimEvent::Response(conn, frame.slice(4..)));
            }
            BrokerStep::Silent => {}
            BrokerStep::Close {
                after,
                discard_queued,
            } => {
                self.conns.remove(&conn);
                let at = if discard_queued {
                    self.events
                        .retain(|_, e| !matches!(e, SimEvent::Response(c, _) if *c == conn));
                    self.now + after
                } else {
                    (self.now + after).max(last.unwrap_or(self.now))
                };
                self.schedule(at, SimEvent::Disconnected(conn));
            }
        }
    }

    fn schedule_response(&mut self, conn: ConnId, latency: Duration, resp: Bytes) -> Instant {
        // Responses on one connection keep their order: schedule no
        // earlier than the last one queued for it.
        let last = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, SimEvent::Response(c, _) if *c == conn))
            .map(|(k, _)| k.0)
            .max();
        let at = (self.now + latency).max(last.unwrap_or(self.now));
        self.schedule(at, SimEvent::Response(conn, resp.slice(4..)));
        at
    }

    /// One driver turn at the current time: deliver due broker events,
    /// drain notices, run due timers, then drain `poll_io` and
    /// `poll_transmit`. Returns whether anything happened.
    fn turn(&mut self) -> bool {
        let now = self.now;
        let due: Vec<(Instant, u64)> = self
            .events
            .range(..=(now, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let mut progressed = !due.is_empty();
        for k in due {
            let Some(ev) = self.events.remove(&k) else {
                continue;
            };
            match ev {
                SimEvent::Connected(c) => {
                    if let Some(sc) = self.conns.get_mut(&c) {
                        sc.connected = true;
                    }
                    self.core.handle_connected(now, c)
                }
                SimEvent::ConnectFailed(c) => {
                    self.conns.remove(&c);
                    self.core.handle_connect_failed(now, c, "sim: refused")
                }
                SimEvent::ConnectTimedOut(c, after) => self.core.handle_connect_error(
                    now,
                    c,
                    std::io::ErrorKind::TimedOut,
                    &format!("sim: connect timed out after {after:?}"),
                ),
                SimEvent::Response(c, f) => {
                    self.received_bytes += 4 + f.len() as u64;
                    self.core.handle_response(now, c, f)
                }
                SimEvent::Disconnected(c) => {
                    self.conns.remove(&c);
                    self.core
                        .handle_disconnected(now, c, "sim: connection lost")
                }
            }
        }
        let notices = self.core.stats().notices;
        self.core.handle_wakeup(now);
        progressed |= self.core.stats().notices != notices;
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
            progressed = true;
        }
        loop {
            let mut any = false;
            while let Some(cmd) = self.core.poll_io() {
                any = true;
                self.handle_io(cmd);
            }
            while let Some(t) = self.core.poll_transmit(now) {
                any = true;
                if let Some(held) = &mut self.held_frames {
                    held.push(t.frame.clone());
                }
                self.handle_transmit(t.conn, t.frame.to_bytes());
            }
            // poll_transmit may have asked for connections.
            while let Some(cmd) = self.core.poll_io() {
                any = true;
                self.handle_io(cmd);
            }
            if !any {
                break;
            }
            progressed = true;
        }
        progressed
    }

    /// The next instant something is scheduled: a broker event or a core
    /// deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let next_event = self.events.keys().next().map(|k| k.0);
        match (next_event, self.core.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One step: a driver turn; if it had nothing to do, park and jump
    /// simulated time to the next deadline. Returns false when there is
    /// nothing to do and no deadline at all.
    pub fn step(&mut self) -> bool {
        if self.turn() {
            return true;
        }
        if !self.core.prepare_park() {
            return true;
        }
        self.parks += 1;
        match self.next_deadline() {
            Some(t) => {
                self.now = t.max(self.now);
                true
            }
            None => false,
        }
    }

    /// Runs turns at the current time until nothing happens.
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.turn() {
                return;
            }
        }
        panic!("livelock: the core keeps working without time passing: {self:?}");
    }

    /// Steps until `done` holds; panics after `max_steps` (a livelock
    /// fails the test instead of hanging it).
    pub fn drive_until(&mut self, max_steps: usize, mut done: impl FnMut(&Sim<B>) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            if !self.step() && !done(self) {
                panic!("sim went idle before the condition held: {self:?}");
            }
        }
        if !done(self) {
            panic!("condition not reached within {max_steps} steps: {self:?}");
        }
    }

    /// Steps until every batch has its result and no broker event is
    /// pending, at most `n` steps.
    pub fn drive_bounded(&mut self, n: usize) {
        // Producer notices count only once the core has read them.
        self.settle();
        self.drive_until(n, |s| s.core.pending_batches() == 0 && s.events.is_empty());
    }

    /// [`drive_bounded`](Self::drive_bounded) with a generous bound.
    pub fn drive(&mut self) {
        self.drive_bounded(100_000);
    }

    /// Runs for `d` of simulated time, handling every deadline on the way.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            match self.next_deadline() {
                Some(t) if t <= end => {
                    if self.core.prepare_park() {
                        self.parks += 1;
                    }
                    self.now = t.max(self.now);
                }
                _ => {
                    if self.core.prepare_park() {
                        self.parks += 1;
                    }
                    self.now = end;
                    self.settle();
                    return;
                }
            }
        }
    }

    /// Appends a record as a producer thread would. Blocking for metadata
    /// (or memory) is played by stepping the sim, up to `max_block` of
    /// simulated time.
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<DeliveryHandle, SendError> {
        self.send_with_context(topic, partition, key, value, 0)
    }

    /// [`send`](Self::send) with a [`RecordRef::context`] the delivery
    /// callback gets back.
    pub fn send_with_context(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        context: u64,
    ) -> Result<DeliveryHandle, SendError> {
        self.append_with(topic, partition, key, value, context, |s, now, rec| {
            s.append(now, rec, now)
        })
    }

    /// [`send_with_context`](Self::send_with_context) without a handle
    /// ([`Shared::produce`]): the result goes only to the callback.
    pub fn produce_with_context(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        context: u64,
    ) -> Result<(), SendError> {
        self.append_with(topic, partition, key, value, context, |s, now, rec| {
            s.produce(now, rec, now)
        })
    }

    /// The blocking append of `send` and `produce`, played by stepping the
    /// sim.
    fn append_with<D>(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        context: u64,
        append: impl Fn(&Shared, Instant, RecordRef<'_>) -> Result<AppendOutcome<D>, SendError>,
    ) -> Result<D, SendError> {
        let deadline = self.now + Duration::from_secs(60);
        let mut settled = false;
        loop {
            let ts = (self.now - self.start).as_millis() as i64 + 1_700_000_000_000;
            let rec = RecordRef {
                topic,
                partition,
                key,
                value,
                headers: &[],
                timestamp_ms: ts,
                context,
            };
            match append(&self.shared, self.now, rec) {
                Ok(o) => {
                    if o.wake {
                        self.wakes += 1;
                    }
                    return Ok(o.delivery);
                }
                Err(e)
                    if self.now < deadline
                        && match e {
                            SendError::MetadataTimeout { .. } | SendError::BufferFull { .. } => {
                                true
                            }
                            // A partition the topic had, missing from its
                            // latest metadata: a blocking send waits for it.
                            SendError::InvalidPartition { partition, .. } => {
                                self.shared.awaits_partition(topic, partition)
                            }
                            _ => false,
                        } =>
                {
                    // The producer thread would block: let the I/O side do
                    // everything it can now and try again; if that was not
                    // enough, let time pass.
                    if !settled {
                        self.settle();
                        settled = true;
                        continue;
                    }
                    settled = false;
                    if self.core.prepare_park() {
                        self.parks += 1;
                    }
                    match self.next_deadline() {
                        Some(t) => self.now = t.max(self.now).min(deadline),
                        None => return Err(SendError::Closed),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Requests a flush (counting the wake-up it asks for).
    pub fn flush(&mut self) -> crate::FlushHandle {
        let h = self.shared.begin_flush();
        if h.wake {
            self.wakes += 1;
        }
        h
    }

    /// Starts `init_transactions` (counting the wake-up it asks for).
    pub fn init_transactions(
        &mut self,
    ) -> Result<crate::TransactionHandle, crate::TransactionError> {
        let h = self.shared.init_transactions()?;
        if h.wake {
            self.wakes += 1;
        }
        Ok(h)
    }

    /// Begins a transaction (counting the wake-up it asks for).
    pub fn begin_transaction(&mut self) -> Result<(), crate::TransactionError> {
        if self.shared.begin_transaction()? {
            self.wakes += 1;
        }
        Ok(())
    }

    /// Starts committing the transaction.
    pub fn commit_transaction(
        &mut self,
    ) -> Result<crate::TransactionHandle, crate::TransactionError> {
        let h = self.shared.commit_transaction()?;
        if h.wake {
            self.wakes += 1;
        }
        Ok(h)
    }

    /// Starts aborting the transaction.
    pub fn abort_transaction(
        &mut self,
    ) -> Result<crate::TransactionHandle, crate::TransactionError> {
        let h = self.shared.abort_transaction()?;
        if h.wake {
            self.wakes += 1;
        }
        Ok(h)
    }

    /// Requests close (counting the wake-up it asks for).
    pub fn close(&mut self) -> crate::FlushHandle {
        let h = self.shared.begin_close();
        if h.wake {
            self.wakes += 1;
        }
        h
    }
}
