//! Connections: which exist, their handshake (ApiVersions, then SASL when
//! configured: [`super::sasl`]), in-flight requests, request timeouts and
//! reconnect backoff.
//!
//! The connection id space is the core's: bootstrap addresses are
//! connected to find the cluster, then one connection per broker node that
//! leads a partition with work (or serves metadata). Kafka answers requests
//! on a connection in order, so in-flight requests are a FIFO and each
//! response must carry the correlation id at its head; anything else is a
//! protocol violation and the connection is dropped.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::messages::add_offsets_to_txn::AddOffsetsToTxnRequest;
use kring_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnRequest;
use kring_protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use kring_protocol::messages::end_txn::EndTxnRequest;
use kring_protocol::messages::find_coordinator::FindCoordinatorRequest;
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::metadata::MetadataRequest;
use kring_protocol::messages::produce::ProduceRequest;
use kring_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
use kring_protocol::messages::sasl_handshake::SaslHandshakeRequest;
use kring_protocol::messages::txn_offset_commit::TxnOffsetCommitRequest;
use kring_protocol::{EncodeError, ErrorCode, Frame};

use crate::timer::TimerHandle;

use super::{BatchKey, ProducerCore, TimerKey, Transmit};

pub use super::conns::ConnId;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Bootstrap(usize),
    Node(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    Connecting,
    Handshaking,
    /// SASL exchange in progress (first authentication or KIP-368
    /// re-authentication): no new requests besides SASL ones.
    Authenticating,
    Ready,
}

/// Negotiated request versions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Versions {
    pub(crate) produce: i16,
    pub(crate) metadata: i16,
    pub(crate) init_pid: i16,
    /// Transactions (-1: not supported).
    pub(crate) find_coordinator: i16,
    pub(crate) add_partitions: i16,
    pub(crate) end_txn: i16,
    pub(crate) add_offsets: i16,
    pub(crate) txn_offset_commit: i16,
}

/// What an in-flight request was.
#[derive(Debug)]
pub(crate) enum ReqKind {
    ApiVersions,
    Metadata,
    InitProducerId,
    SaslHandshake,
    SaslAuthenticate,
    /// `(batch key, batch serial)` of every batch in the request.
    Produce(Vec<(BatchKey, u64)>),
    /// FindCoordinator for the transaction.
    FindCoordinator,
    /// A transactional request (`transaction`).
    Txn(super::transaction::TxnRequest),
}

#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) corr: i32,
    pub(crate) kind: ReqKind,
    pub(crate) version: i16,
    pub(crate) deadline: Instant,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    pub(crate) target: Target,
    pub(crate) state: ConnState,
    pub(crate) next_corr: i32,
    pub(crate) in_flight: VecDeque<InFlight>,
    pub(crate) timer: Option<TimerHandle>,
    pub(crate) versions: Versions,
    pub(crate) api_versions_version: i16,
    pub(crate) sasl: super::sasl::ConnSasl,
    /// The broker throttled this connection (KIP-219) until then: no
    /// request of any kind is written to it before.
    pub(crate) throttled_until: Option<Instant>,
    /// When a request was last written to it or a response read from it
    /// (`None`: neither yet): `connections.max.idle.ms` counts from here.
    pub(crate) last_active: Option<Instant>,
}

impl Conn {
    /// A new connection, connecting.
    pub(crate) fn new(id: ConnId, target: Target) -> Self {
        Conn {
            id,
            target,
            state: ConnState::Connecting,
            next_corr: 0,
            in_flight: VecDeque::new(),
            timer: None,
            versions: Versions::default(),
            api_versions_version: API_VERSIONS_FIRST,
            sasl: super::sasl::ConnSasl::default(),
            throttled_until: None,
            last_active: None,
        }
    }

    /// Whether the broker's throttle (KIP-219) still mutes this connection
    /// at `now`: nothing may be written to it, as the Java client's
    /// `NetworkClient` sends nothing to a throttled node
    /// (`ClusterConnectionStates.isReady` is false until the throttle
    /// ends).
    pub(crate) fn is_throttled(&self, now: Instant) -> bool {
        self.throttled_until.is_some_and(|t| t > now)
    }
}

/// Reconnect backoff and connect timeout of a target (a bootstrap
/// address or a broker node: each counts its own failures).
#[derive(Debug, Default)]
pub(crate) struct Reconnect {
    /// Connections to the target lost or failed since one was last ready:
    /// the reconnect backoff grows with them.
    pub(crate) failures: u32,
    /// Consecutive attempts to the target that failed while being set up:
    /// before the driver connected them (refused, unreachable, name not
    /// resolved, timed out, TLS handshake failed) or, with SASL, before
    /// their first authentication succeeded. The next attempt's connect
    /// timeout grows with them. Zero again once a connection got that far
    /// (it is lost later, or becomes ready), as the Java client's
    /// `failedConnectAttempts`.
    pub(crate) connect_failures: u32,
    pub(crate) timer: Option<TimerHandle>,
    /// Why the last connection to this target failed or was lost; cleared
    /// when a connection is ready again.
    pub(crate) last_error: Option<crate::LastError>,
}

/// A bootstrap address.
#[derive(Debug)]
pub(crate) struct BootEntry {
    pub(crate) addr: String,
    pub(crate) conn: Option<ConnId>,
    pub(crate) reconnect: Reconnect,
    pub(crate) stats: super::stats::BrokerCounters,
}

impl BootEntry {
    pub(crate) fn new(addr: String) -> Self {
        BootEntry {
            addr,
            conn: None,
            reconnect: Reconnect::default(),
            stats: Default::default(),
        }
    }
}

/// Produce versions kring speaks (v3 is the first with record batch v2).
const PRODUCE_VERSIONS: (i16, i16) = (3, 11);
/// Metadata versions kring speaks (v1+: an empty topic list means none).
const METADATA_VERSIONS: (i16, i16) = (1, 12);
const INIT_PID_VERSIONS: (i16, i16) = (0, 5);
/// FindCoordinator: v1 added the key type; v4 batches keys.
const FIND_COORDINATOR_VERSIONS: (i16, i16) = (1, 4);
/// AddPartitionsToTxn: v4+ are broker-to-broker (KIP-890).
const ADD_PARTITIONS_VERSIONS: (i16, i16) = (0, 3);
/// EndTxn: v5 is transaction version 2 (KIP-890 part 2), not spoken.
const END_TXN_VERSIONS: (i16, i16) = (0, 4);
/// AddOffsetsToTxn.
const ADD_OFFSETS_VERSIONS: (i16, i16) = (0, 4);
/// TxnOffsetCommit: v5 is transaction version 2 (it adds the group itself).
const TXN_OFFSET_COMMIT_VERSIONS: (i16, i16) = (0, 4);
/// The ApiVersions version tried first (and the highest kring speaks); a
/// broker that refuses it is asked again with the highest version it lists,
/// or v0 ([`api_versions_retry_version`]).
const API_VERSIONS_FIRST: i16 = 3;

/// The ApiVersions version to ask again with after the UNSUPPORTED_VERSION
/// answer `frame` (correlation id first) to a request of version `refused`:
/// the highest version at most [`API_VERSIONS_FIRST`] in the ApiVersions
/// entry the broker lists (KIP-511, read as a v0 body), as the Java client
/// does. v0 when the body does not decode, lists no ApiVersions entry, or
/// lists only versions not below `refused` (asking again with one of those
/// could loop).
fn api_versions_retry_version(frame: Bytes, refused: i16) -> i16 {
    let Ok((_, resp)) = decode_response_frame::<ApiVersionsRequest>(frame, 0) else {
        return 0;
    };
    let resp: ApiVersionsResponse = resp;
    resp.api_keys
        .iter()
        .find(|k| k.api_key == ApiVersionsRequest::API_KEY)
        .map(|k| k.max_version.min(API_VERSIONS_FIRST))
        .filter(|&v| (0..refused).contains(&v))
        .unwrap_or(0)
}

impl ProducerCore {
    pub(crate) fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id)
    }

    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id)
    }

    fn reconnect_mut(&mut self, t: Target) -> Option<&mut Reconnect> {
        match t {
            Target::Bootstrap(i) => self.conns.boot_mut(i).map(|b| &mut b.reconnect),
            Target::Node(n) => self.nodes.get_mut(&n).map(|n| &mut n.reconnect),
        }
    }

    fn target_conn_slot(&mut self, t: Target) -> Option<&mut Option<ConnId>> {
        match t {
            Target::Bootstrap(i) => self.conns.boot_mut(i).map(|b| &mut b.conn),
            Target::Node(n) => self.nodes.get_mut(&n).map(|n| &mut n.conn),
        }
    }

    /// Opens a connection to `t` unless it has one or is backing off. The
    /// attempt's connect timeout grows with the target's consecutive
    /// failed attempts ([`Reconnect::connect_failures`]).
    pub(crate) fn connect(&mut self, t: Target) -> bool {
        let (addr, failed) = match t {
            Target::Bootstrap(i) => match self.conns.bootstrap().get(i) {
                Some(b) if b.conn.is_none() && b.reconnect.timer.is_none() => {
                    (b.addr.clone(), b.reconnect.connect_failures)
                }
                _ => return false,
            },
            Target::Node(n) => match self.nodes.get(&n) {
                Some(nd) if nd.conn.is_none() && nd.reconnect.timer.is_none() => {
                    (nd.addr.clone(), nd.reconnect.connect_failures)
                }
                _ => return false,
            },
        };
        if self.life.is_finished() {
            return false;
        }
        let timeout = self.cfg.connect_timeout.attempt(failed, &mut self.rng);
        let id = self.conns.open(t, addr, timeout);
        *self.target_conn_slot(t).expect("target exists") = Some(id);
        self.stats.connects += 1;
        if let Some(b) = self.broker_counters(t) {
            b.connects += 1;
        }
        true
    }

    /// Makes sure some connection can carry a control request (metadata,
    /// InitProducerId): returns the least loaded ready one with room and
    /// not throttled (the Java client's `leastLoadedNode` skips a
    /// throttled node), or starts one when none is open. While every open
    /// connection is busy or throttled, none: the request waits (the
    /// throttle's timer ends the wait).
    pub(crate) fn control_conn(&mut self, now: Instant) -> Option<ConnId> {
        let max = self.cfg.max_in_flight;
        let mut best: Option<(usize, ConnId)> = None;
        let mut connecting = false;
        for c in self.conns.iter() {
            match c.state {
                ConnState::Ready if c.in_flight.len() < max && !c.is_throttled(now) => {
                    let load = c.in_flight.len();
                    if best.is_none_or(|(l, _)| load < l) {
                        best = Some((load, c.id));
                    }
                }
                ConnState::Ready => {}
                _ => connecting = true,
            }
        }
        if let Some((_, id)) = best {
            return Some(id);
        }
        if connecting || !self.conns.is_empty() {
            return None;
        }
        // Nothing open: a known broker first, else the next bootstrap address.
        let mut ids: Vec<i32> = self.nodes.keys().copied().collect();
        ids.sort_unstable();
        if !ids.is_empty() {
            let start = self.conns.boot_cursor() % ids.len();
            for k in 0..ids.len() {
                let n = ids[(start + k) % ids.len()];
                if self.connect(Target::Node(n)) {
                    let next = self.conns.boot_cursor().wrapping_add(1);
                    self.conns.set_boot_cursor(next);
                    return None;
                }
            }
        }
        let len = self.conns.bootstrap().len();
        for k in 0..len {
            let i = (self.conns.boot_cursor() + k) % len;
            if self.connect(Target::Bootstrap(i)) {
                self.conns.set_boot_cursor(i + 1);
                return None;
            }
        }
        None
    }

    /// Encodes a request on `conn`, records it in flight (unless no response
    /// is expected) and arms the request timeout.
    #[allow(clippy::too_many_arguments)] // one request's facts
    pub(crate) fn send_request<R: Request>(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        req: &R,
        kind: ReqKind,
        expects_response: bool,
        size_hint: usize,
    ) -> Result<Transmit, EncodeError> {
        self.send_frame(
            now,
            id,
            version,
            kind,
            expects_response,
            |corr, client_id| {
                let mut buf = BytesMut::with_capacity(size_hint);
                encode_request(&mut buf, corr, Some(client_id), version, req)?;
                Ok(Frame::from(buf.freeze()))
            },
        )
    }

    /// Like [`ProducerCore::send_request`], with the frame built by
    /// `encode(correlation id, client id)`: the ProduceRequest's encoder
    /// splices record batches in as chunks instead of copying them.
    pub(crate) fn send_frame(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        kind: ReqKind,
        expects_response: bool,
        encode: impl FnOnce(i32, &str) -> Result<Frame, EncodeError>,
    ) -> Result<Transmit, EncodeError> {
        let deadline = now + self.cfg.request_timeout;
        let c = self.conns.get_mut(id).expect("live connection");
        let corr = c.next_corr;
        let frame = encode(corr, &self.cfg.client_id)?;
        c.next_corr = c.next_corr.wrapping_add(1) & i32::MAX;
        let target = c.target;
        if let Some(b) = self.broker_counters(target) {
            b.requests += 1;
            b.bytes_sent += frame.len() as u64;
        }
        let c = self.conn_mut(id).expect("live connection");
        c.last_active = Some(now);
        if expects_response {
            let first = c.in_flight.is_empty();
            c.in_flight.push_back(InFlight {
                corr,
                kind,
                version,
                deadline,
            });
            // The timer watches the oldest request's deadline; with nothing
            // in flight it watched for idleness (later than any deadline).
            match c.timer {
                Some(h) if first => {
                    let live = self.timers.reschedule(h, deadline);
                    debug_assert!(live, "a connection's timer is live while it holds it");
                }
                Some(_) => {}
                None => {
                    self.arm_conn_timer(id, deadline);
                }
            }
        }
        Ok(Transmit { conn: id, frame })
    }

    /// Builds the ApiVersions request of a connection that just connected.
    pub(crate) fn poll_handshake(&mut self, now: Instant) -> Option<Transmit> {
        while let Some(id) = self.conns.pop_handshake() {
            let Some(c) = self.conn(id) else { continue };
            let version = c.api_versions_version;
            let req = ApiVersionsRequest {
                client_software_name: "kring".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            };
            match self.send_request(now, id, version, &req, ReqKind::ApiVersions, true, 256) {
                Ok(t) => return Some(t),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode ApiVersions");
                    self.drop_conn(now, id, "cannot encode ApiVersions", true);
                }
            }
        }
        None
    }

    pub(crate) fn handle_api_versions(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        frame: Bytes,
    ) {
        // A broker that does not support our version answers
        // UNSUPPORTED_VERSION (KIP-511), in a body meant to be read as v0
        // but not always decodable as such (librdkafka's mock cluster
        // writes a flexible-style array into it). The error code sits right
        // after the correlation id in every version: go by it, and ask
        // again on the same connection with the highest ApiVersions
        // version the body lists that we speak, as the Java client's
        // `NetworkClient.handleApiVersionsResponse` does; v0 when the body
        // does not decode or lists none.
        if version > 0
            && frame.get(4..6) == Some(&ErrorCode::UNSUPPORTED_VERSION.code().to_be_bytes()[..])
        {
            let retry = api_versions_retry_version(frame, version);
            if let Some(c) = self.conn_mut(id) {
                c.api_versions_version = retry;
            }
            self.conns.queue_handshake(id);
            return;
        }
        let resp = decode_response_frame::<ApiVersionsRequest>(frame.clone(), version)
            .or_else(|_| decode_response_frame::<ApiVersionsRequest>(frame, 0))
            .map(|(_, r)| r);
        let resp: ApiVersionsResponse = match resp {
            Ok(r) => r,
            Err(e) => {
                self.drop_conn(
                    now,
                    id,
                    &format!("undecodable ApiVersions response: {e}"),
                    true,
                );
                return;
            }
        };
        let err = ErrorCode(resp.error_code);
        if !err.is_ok() && err != ErrorCode::UNSUPPORTED_VERSION {
            self.drop_conn(
                now,
                id,
                &format!("ApiVersions failed: {}", err.name()),
                true,
            );
            return;
        }
        let pick = |key: i16, (lo, hi): (i16, i16)| -> Option<i16> {
            resp.api_keys
                .iter()
                .find(|k| k.api_key == key)
                .and_then(|k| {
                    let v = k.max_version.min(hi);
                    (v >= lo.max(k.min_version)).then_some(v)
                })
        };
        let produce = pick(ProduceRequest::API_KEY, PRODUCE_VERSIONS);
        let metadata = pick(MetadataRequest::API_KEY, METADATA_VERSIONS);
        let init_pid = pick(InitProducerIdRequest::API_KEY, INIT_PID_VERSIONS);
        let find_coordinator = pick(FindCoordinatorRequest::API_KEY, FIND_COORDINATOR_VERSIONS);
        let add_partitions = pick(AddPartitionsToTxnRequest::API_KEY, ADD_PARTITIONS_VERSIONS);
        let end_txn = pick(EndTxnRequest::API_KEY, END_TXN_VERSIONS);
        let add_offsets = pick(AddOffsetsToTxnRequest::API_KEY, ADD_OFFSETS_VERSIONS);
        let txn_offset_commit = pick(TxnOffsetCommitRequest::API_KEY, TXN_OFFSET_COMMIT_VERSIONS);
        let (Some(produce), Some(metadata)) = (produce, metadata) else {
            self.drop_conn(
                now,
                id,
                "broker supports no Produce v3-11 or Metadata v1-12",
                true,
            );
            return;
        };
        let Some(c) = self.conn_mut(id) else { return };
        c.versions = Versions {
            produce,
            metadata,
            init_pid: init_pid.unwrap_or(-1),
            find_coordinator: find_coordinator.unwrap_or(-1),
            add_partitions: add_partitions.unwrap_or(-1),
            end_txn: end_txn.unwrap_or(-1),
            add_offsets: add_offsets.unwrap_or(-1),
            txn_offset_commit: txn_offset_commit.unwrap_or(-1),
        };
        if self.sasl.is_some() {
            let range = |key: i16| {
                resp.api_keys
                    .iter()
                    .find(|k| k.api_key == key)
                    .map(|k| (k.min_version, k.max_version))
            };
            let handshake = range(SaslHandshakeRequest::API_KEY);
            let authenticate = range(SaslAuthenticateRequest::API_KEY);
            self.start_sasl(now, id, handshake, authenticate);
            return;
        }
        self.conn_ready(id);
    }

    /// The connection can carry requests: reset its target's backoff and
    /// clear the connection error senders report. Called while a response
    /// (ApiVersions, or SASL's last) is handled.
    pub(crate) fn conn_ready(&mut self, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        c.state = ConnState::Ready;
        let (produce, metadata) = (c.versions.produce, c.versions.metadata);
        let target = c.target;
        if let Some(r) = self.reconnect_mut(target) {
            r.failures = 0;
            r.connect_failures = 0;
            r.last_error = None;
        }
        *self
            .shared
            .conn_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        tracing::debug!(%id, produce, metadata, "connection ready");
        // What waits for it is sent when the response that made it ready
        // is done (`handle_response` puts a node with queued partitions
        // back on the work list after every response).
    }

    /// The driver connected `id`.
    pub fn handle_connected(&mut self, _now: Instant, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        if c.state != ConnState::Connecting {
            return;
        }
        c.state = ConnState::Handshaking;
        self.conns.queue_handshake(id);
    }

    /// The driver could not connect `id` (refused, unreachable, name not
    /// resolved). The core backs off and tries again when needed.
    pub fn handle_connect_failed(&mut self, now: Instant, id: ConnId, reason: &str) {
        self.handle_connect_error(now, id, std::io::ErrorKind::Other, reason);
    }

    /// As [`handle_connect_failed`](Self::handle_connect_failed), with the
    /// kind of failure (`ConnectionRefused`, `TimedOut`, ...): records that
    /// time out while the broker is unreachable name it as their cause
    /// ([`LastError::Connect`](crate::LastError::Connect)).
    pub fn handle_connect_error(
        &mut self,
        now: Instant,
        id: ConnId,
        kind: std::io::ErrorKind,
        reason: &str,
    ) {
        let Some(c) = self.conn(id) else {
            return;
        };
        let target = c.target;
        tracing::debug!(%id, reason, "connect failed");
        self.record_conn_error(
            target,
            crate::LastError::Connect {
                kind,
                message: reason.into(),
            },
        );
        self.drop_conn(now, id, reason, false);
    }

    /// The TLS layer of `id` failed (handshake refused or timed out, an
    /// untrusted certificate, a peer that does not speak the expected
    /// protocol): like a failed connect, the core backs off before trying
    /// again, and records that time out name it
    /// ([`LastError::Tls`](crate::LastError::Tls)).
    pub fn handle_tls_error(
        &mut self,
        now: Instant,
        id: ConnId,
        kind: crate::TlsFailure,
        reason: &str,
    ) {
        let Some(c) = self.conn(id) else {
            return;
        };
        let target = c.target;
        tracing::debug!(%id, reason, "TLS failed");
        self.record_conn_error(
            target,
            crate::LastError::Tls {
                kind,
                message: reason.into(),
            },
        );
        self.drop_conn(now, id, reason, false);
    }

    /// The driver lost `id` (peer closed, I/O error, bad framing). Its
    /// in-flight requests are retried (produce) or re-issued (metadata,
    /// producer id), and metadata is refreshed.
    pub fn handle_disconnected(&mut self, now: Instant, id: ConnId, reason: &str) {
        let Some(c) = self.conn(id) else {
            return;
        };
        let target = c.target;
        tracing::debug!(%id, reason, "disconnected");
        self.record_conn_error(
            target,
            crate::LastError::Disconnected {
                message: reason.into(),
            },
        );
        self.drop_conn(now, id, reason, false);
    }

    pub(crate) fn record_conn_error(&mut self, target: Target, e: crate::LastError) {
        if let Some(r) = self.reconnect_mut(target) {
            r.last_error = Some(e.clone());
        }
        if !self
            .conns
            .iter()
            .any(|c| c.state == ConnState::Ready && c.target != target)
        {
            *self
                .shared
                .conn_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        }
        self.conns.set_last_error(e);
    }

    /// The cause to report for a batch of `pk` that timed out before it
    /// was answered: its leader's last connection failure (or, without a
    /// known leader, the last one to any broker).
    pub(crate) fn conn_cause(&self, pk: super::PartKey) -> Option<crate::LastError> {
        let leader = self
            .topics
            .get(pk.0 as usize)
            .and_then(|t| t.partitions.get(pk.1 as usize))
            .and_then(|p| p.leader);
        match leader.and_then(|n| self.nodes.get(&n)) {
            Some(node) => node.reconnect.last_error.clone(),
            None => self.conns.last_error().cloned(),
        }
    }

    /// Removes the connection from every table and cancels its timer.
    pub(crate) fn forget_conn(&mut self, id: ConnId) -> Option<Conn> {
        let c = self.conns.remove(id)?;
        if let Some(h) = c.timer {
            self.timers.cancel(h);
        }
        if let Some(h) = c.sasl.reauth_timer {
            self.timers.cancel(h);
        }
        if let Some(slot) = self.target_conn_slot(c.target) {
            if *slot == Some(id) {
                *slot = None;
            }
        }
        Some(c)
    }

    /// Drops a connection: in-flight requests are failed over (batches
    /// retried), the target backs off before reconnecting, metadata is
    /// refreshed. `close` asks the driver to close the socket (when the
    /// core, not the driver, decided to drop it).
    pub(crate) fn drop_conn(&mut self, now: Instant, id: ConnId, reason: &str, close: bool) {
        let Some(c) = self.forget_conn(id) else {
            return;
        };
        if close {
            self.conns.push_close(id);
        }
        if let Some(b) = self.broker_counters(c.target) {
            if c.state == ConnState::Connecting {
                b.connect_failures += 1;
            } else {
                b.disconnects += 1;
            }
        }
        // Back off before reconnecting this target. A connection still
        // being set up is one more failed attempt, and the next one gets a
        // longer connect timeout; one that got further ends the run (the
        // Java client's `ClusterConnectionStates.disconnected`). Set up
        // means not connected yet, or, with SASL, not authenticated yet:
        // the Java client authenticates (with its own ApiVersions) before
        // the connection leaves CONNECTING, so a refused login does not
        // reset the run there either. A re-authentication's failure ends a
        // connection that was ready.
        let in_setup = match c.state {
            ConnState::Connecting => true,
            ConnState::Handshaking | ConnState::Authenticating => {
                self.sasl.is_some() && !c.sasl.reauth
            }
            _ => false,
        };
        let failures = {
            let r = self.reconnect_mut(c.target);
            match r {
                Some(r) => {
                    r.failures += 1;
                    if in_setup {
                        r.connect_failures = r.connect_failures.saturating_add(1);
                    } else {
                        r.connect_failures = 0;
                    }
                    r.failures
                }
                None => 1,
            }
        };
        let d = self.cfg.reconnect.backoff(failures - 1, &mut self.rng);
        let h = self.timers.insert(now + d, TimerKey::Reconnect(c.target));
        if let Some(r) = self.reconnect_mut(c.target) {
            if let Some(old) = r.timer.replace(h) {
                self.timers.cancel(old);
            }
        } else {
            self.timers.cancel(h);
        }
        let had_requests = !c.in_flight.is_empty();
        for inf in c.in_flight {
            match inf.kind {
                ReqKind::ApiVersions | ReqKind::SaslHandshake | ReqKind::SaslAuthenticate => {}
                ReqKind::Metadata => self.metadata_lost(now),
                ReqKind::InitProducerId => self.init_pid_lost(now),
                ReqKind::FindCoordinator => {
                    self.txn_request_lost(now, &super::transaction::TxnRequest::FindCoordinator)
                }
                ReqKind::Txn(req) => self.txn_request_lost(now, &req),
                ReqKind::Produce(batches) => {
                    for (bk, serial) in batches {
                        self.batch_lost(now, bk, serial, reason);
                    }
                }
            }
        }
        if let Target::Node(n) = c.target {
            self.txn_node_lost(now, n);
        }
        if had_requests || matches!(c.target, Target::Node(_)) {
            self.request_metadata_soon(now);
        }
    }

    /// A request timed out: drop the connection (its batches are retried).
    pub(crate) fn request_timer(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        c.timer = None;
        match c.in_flight.front().map(|f| f.deadline) {
            Some(d) if d <= now => {
                tracing::debug!(%id, "request timed out");
                let target = c.target;
                if let Some(b) = self.broker_counters(target) {
                    b.request_timeouts += 1;
                }
                self.drop_conn(now, id, "request timed out", true);
            }
            Some(d) => {
                self.arm_conn_timer(id, d);
            }
            None => self.idle_timer(now, id),
        }
    }

    /// Arms the timer of connection `id`, which has none, for `at`.
    fn arm_conn_timer(&mut self, id: ConnId, at: Instant) {
        let h = self.timers.insert(at, TimerKey::Request(id));
        self.conn_mut(id).expect("live connection").timer = Some(h);
    }

    /// The timer of a connection with nothing in flight fired: close it if
    /// it has been idle for `connections.max.idle.ms` (Java's `Selector`
    /// closes such connections too), else watch again from its last
    /// activity. Only a ready connection whose broker has no partition
    /// ready to send is closed: a connection still in its handshake is
    /// watched by its requests' deadlines, and work waiting for a node
    /// (muted by a throttle, say) keeps its connection. Not a failure: no
    /// reconnect backoff, no metadata refresh; the next request for the
    /// broker connects again.
    fn idle_timer(&mut self, now: Instant, id: ConnId) {
        let Some(idle) = self.cfg.connections_max_idle else {
            return;
        };
        let Some(c) = self.conn(id) else { return };
        let due = c.last_active.unwrap_or(now) + idle;
        if now < due {
            self.arm_conn_timer(id, due);
            return;
        }
        let wanted = match c.target {
            Target::Node(n) => self.nodes.get(&n).is_some_and(|nd| !nd.ready.is_empty()),
            Target::Bootstrap(_) => false,
        };
        if c.state != ConnState::Ready || wanted {
            self.arm_conn_timer(id, now + idle);
            return;
        }
        tracing::debug!(%id, idle_ms = idle.as_millis() as u64, "closing an idle connection");
        self.forget_conn(id);
        self.conns.push_close(id);
        self.stats.idle_closes += 1;
    }

    /// Reconnect backoff over: reconnect if there is a reason to.
    pub(crate) fn reconnect_timer(&mut self, _now: Instant, t: Target) {
        if let Some(r) = self.reconnect_mut(t) {
            r.timer = None;
        }
        if let Target::Node(n) = t {
            if self.nodes.get(&n).is_some_and(|nd| !nd.ready.is_empty()) {
                self.connect(t);
                self.add_work(n);
            }
        }
        // Control requests (metadata, producer id) pick a connection when
        // polled; nothing else to do here.
    }

    /// Pops the in-flight request a response answers, checking the
    /// correlation id. Re-arms the connection's request timer.
    pub(crate) fn pop_in_flight(
        &mut self,
        now: Instant,
        id: ConnId,
        corr: i32,
    ) -> Option<InFlight> {
        let c = self.conn_mut(id)?;
        match c.in_flight.front() {
            Some(f) if f.corr == corr => {}
            Some(f) => {
                let want = f.corr;
                self.drop_conn(
                    now,
                    id,
                    &format!(
                        "response correlation id {corr} does not match the oldest request {want}"
                    ),
                    true,
                );
                return None;
            }
            None => {
                self.drop_conn(
                    now,
                    id,
                    &format!("unexpected response (correlation id {corr})"),
                    true,
                );
                return None;
            }
        }
        let inf = c.in_flight.pop_front().expect("front");
        let next = c.in_flight.front().map(|f| f.deadline);
        let timer = c.timer.take();
        match (timer, next) {
            (Some(h), Some(d)) => {
                self.timers.reschedule(h, d);
                self.conn_mut(id).expect("conn").timer = Some(h);
            }
            (Some(h), None) => match self.cfg.connections_max_idle {
                // Nothing in flight: the same timer now watches for
                // `connections.max.idle.ms` (`request_timer`).
                Some(idle) => {
                    self.timers.reschedule(h, now + idle);
                    self.conn_mut(id).expect("conn").timer = Some(h);
                }
                None => {
                    self.timers.cancel(h);
                }
            },
            (None, Some(d)) => {
                self.arm_conn_timer(id, d);
            }
            (None, None) => {
                if let Some(idle) = self.cfg.connections_max_idle {
                    self.arm_conn_timer(id, now + idle);
                }
            }
        }
        self.conn_mut(id).expect("conn").last_active = Some(now);
        self.record_rtt(id, now, inf.deadline);
        Some(inf)
    }
}
