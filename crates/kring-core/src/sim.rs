//! A deterministic simulation harness: the real [`ProducerCore`] against a
//! scripted in-memory Kafka cluster, with simulated time.
//!
//! Why: linger, retries, timeouts, leader moves and idempotence are about
//! time and failures. Here they are tested without sockets and without
//! sleeping: [`Sim::step`] plays one turn of a driver (what the io_uring
//! driver does), and when nothing is left to do *now* it jumps the clock
//! to the next deadline (the core's [`poll_timeout`](ProducerCore::poll_timeout)
//! or the next scripted broker event). The brokers decode the core's real
//! request frames with kring-protocol and answer with real encoded
//! responses, so the wire code is exercised too.
//!
//! The cluster (like `kring-mock`, but single-threaded and scripted):
//! nodes with addresses, topics with partitions and leaders, logs that keep
//! decoded records, broker-side idempotence checks (duplicates, sequence
//! gaps, epochs), and faults: per-partition error scripts, response
//! delays, dropped connections (before or after the write), black holes,
//! nodes down, leader moves with or without KIP-951 hints.
//!
//! The broker side is a [`SimBroker`]: this scripted [`SimCluster`], or
//! (with the `sim` feature) kring-mock's own request dispatch — a
//! `kring_mock::MockCluster` built with `build_unbound` answers through
//! the code its TCP server runs, with kring-mock's fault injection — so
//! the Sim need not drift from the mock. [`chaos`] runs whole fuzzer- or
//! seed-chosen fault schedules over the latter and checks the delivery
//! guarantees.
//!
//! Plan: the unit tests still script `SimCluster` (error queues, drops,
//! black holes, rewrite hooks); each of those has a kring-mock counterpart
//! (a counted `Fault::error` on a partition, `drop_before_apply` /
//! `drop_after_apply`, a `Delay` longer than the request timeout, `Lie`),
//! so they can move over file by file, after which `SimCluster` goes.
//!
//! Behind `cfg(test)` or the `sim` feature, so the driver crate can reuse it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_request_frame, encode_response, RequestKind};
use kring_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use kring_protocol::messages::init_producer_id::InitProducerIdResponse;
use kring_protocol::messages::metadata::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kring_protocol::messages::produce::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceResponse,
};
use kring_protocol::messages::ApiKey;
use kring_protocol::record::{decode_batch, increment_sequence, last_sequence, DecodeOptions};
use kring_protocol::ErrorCode;

use crate::config::Config;
use crate::delivery::DeliveryHandle;
use crate::error::SendError;
use crate::producer::{ConnId, IoCommand, ProducerCore};
use crate::shared::{RecordRef, Shared};
pub use sasl::SimSasl;
use sasl::Verdict;

#[cfg(feature = "sim")]
pub mod chaos;
#[cfg(feature = "sim")]
mod mock;
mod sasl;

/// A record as a simulated broker stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Create timestamp.
    pub timestamp: i64,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Producer id and base sequence of its batch.
    pub producer: (i64, i16, i32),
}

#[derive(Debug, Default)]
struct ProducerState {
    epoch: i16,
    /// Recent batches: (first seq, last seq, base offset), at most 5.
    recent: VecDeque<(i32, i32, i64)>,
}

/// One simulated partition.
#[derive(Debug)]
pub struct SimPartition {
    /// The next offset to assign.
    pub next_offset: i64,
    /// Leader node id (-1: none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Records written, in offset order.
    pub log: Vec<StoredRecord>,
    /// Errors to answer the next produce attempts with, in order.
    pub errors: VecDeque<ErrorCode>,
    /// Produce attempts seen (including failed ones).
    pub attempts: u64,
    /// The topic's `max.message.bytes`: a larger batch is answered
    /// MESSAGE_TOO_LARGE, as Kafka does. `None`: no limit.
    pub max_message_bytes: Option<usize>,
    producers: HashMap<i64, ProducerState>,
}

impl SimPartition {
    fn new(leader: i32) -> Self {
        SimPartition {
            next_offset: 0,
            leader,
            leader_epoch: 0,
            log: Vec::new(),
            errors: VecDeque::new(),
            attempts: 0,
            max_message_bytes: None,
            producers: HashMap::new(),
        }
    }
}

/// One simulated broker node.
#[derive(Debug, Clone)]
pub struct SimNode {
    /// Node id.
    pub id: i32,
    /// `host:port` it listens on.
    pub addr: String,
    /// Refuses connections and drops existing ones when false.
    pub up: bool,
    /// Response latency.
    pub latency: Duration,
    /// Swallows requests without answering.
    pub black_hole: bool,
}

/// A one-shot connection fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropWhen {
    /// Drop the connection when this request arrives, before handling it.
    BeforeHandling,
    /// Handle the request (a produce is written) but drop the connection
    /// instead of answering: the client must retry and the broker sees a
    /// duplicate.
    AfterHandling,
}

/// The scripted cluster.
#[derive(Debug)]
pub struct SimCluster {
    /// Nodes by id.
    pub nodes: BTreeMap<i32, SimNode>,
    /// Topics by name.
    pub topics: BTreeMap<String, Vec<SimPartition>>,
    /// Partitions for topics created on first metadata request, or `None`
    /// to answer UNKNOWN_TOPIC_OR_PARTITION.
    pub auto_create: Option<u32>,
    /// Highest Produce version advertised.
    pub produce_max_version: i16,
    /// Send KIP-951 leader hints with NOT_LEADER_OR_FOLLOWER (v10+).
    pub leader_hints: bool,
    /// One-shot connection drops: (node, api key) → when.
    pub drops: Vec<(i32, i16, DropWhen)>,
    /// Requests received: (node, api key, version).
    pub requests: Vec<(i32, i16, i16)>,
    /// Keep written records in the logs (benchmarks turn this off; offsets
    /// still advance).
    pub store_records: bool,
    /// Rewrites every Metadata response before it is encoded: a broker
    /// that lies (absurd partition indexes, ...).
    pub metadata_rewrite: Option<Rewrite<MetadataResponse>>,
    /// Rewrites every Produce response before it is encoded (absurd
    /// offsets, ...).
    pub produce_rewrite: Option<Rewrite<ProduceResponse>>,
    /// Accept any first sequence from a producer a partition has no state
    /// for, as Kafka 2.5 and later do (KIP-360); off: answer
    /// UNKNOWN_PRODUCER_ID unless it is 0, as older brokers did.
    pub accept_any_first_sequence: bool,
    /// SASL on every node (`None`: plaintext brokers).
    pub sasl: Option<SimSasl>,
    next_pid: i64,
}

/// A function that rewrites a response of a [`SimCluster`] before it is
/// encoded, to make the broker lie.
pub struct Rewrite<T>(pub Box<dyn FnMut(&mut T) + Send>);

impl<T> std::fmt::Debug for Rewrite<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrite")
    }
}

impl SimCluster {
    /// `n` nodes, ids 1..=n, at `sim-N:9092`.
    pub fn new(n: i32) -> Self {
        let nodes = (1..=n)
            .map(|id| {
                (
                    id,
                    SimNode {
                        id,
                        addr: format!("sim-{id}:9092"),
                        up: true,
                        latency: Duration::from_millis(1),
                        black_hole: false,
                    },
                )
            })
            .collect();
        SimCluster {
            nodes,
            topics: BTreeMap::new(),
            auto_create: None,
            produce_max_version: 11,
            leader_hints: true,
            drops: Vec::new(),
            accept_any_first_sequence: false,
            requests: Vec::new(),
            store_records: true,
            metadata_rewrite: None,
            produce_rewrite: None,
            sasl: None,
            next_pid: 1000,
        }
    }

    /// Creates a topic; partition `i` is led by node `1 + i % nodes`.
    pub fn create_topic(&mut self, name: &str, partitions: u32) {
        let n = self.nodes.len() as i32;
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        let parts = (0..partitions)
            .map(|i| SimPartition::new(ids[(i as i32 % n) as usize]))
            .collect();
        self.topics.insert(name.to_owned(), parts);
    }

    /// Adds `n` partitions to a topic (led like `create_topic`'s).
    pub fn add_partitions(&mut self, topic: &str, n: u32) {
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        let parts = self.topics.get_mut(topic).expect("topic");
        for _ in 0..n {
            let i = parts.len();
            parts.push(SimPartition::new(ids[i % ids.len()]));
        }
    }

    /// Makes every producer known to a partition look as if its last
    /// appended batch ended at sequence `last` (to test the wrap).
    pub fn set_last_sequence(&mut self, topic: &str, p: u32, last: i32) {
        let part = self.partition(topic, p);
        let offset = part.next_offset - 1;
        for st in part.producers.values_mut() {
            st.recent.clear();
            st.recent.push_back((last, last, offset));
        }
    }

    /// A partition.
    pub fn partition(&mut self, topic: &str, p: u32) -> &mut SimPartition {
        &mut self.topics.get_mut(topic).expect("topic")[p as usize]
    }

    /// Moves a partition's leadership to `leader` (bumping its epoch).
    pub fn move_leader(&mut self, topic: &str, p: u32, leader: i32) {
        let part = self.partition(topic, p);
        part.leader = leader;
        part.leader_epoch += 1;
    }

    /// Forgets every producer's state on a partition (as after log
    /// truncation): the next non-zero sequence gets UNKNOWN_PRODUCER_ID.
    pub fn forget_producers(&mut self, topic: &str, p: u32) {
        self.partition(topic, p).producers.clear();
    }

    /// Every record of a partition.
    pub fn records(&self, topic: &str, p: u32) -> &[StoredRecord] {
        &self.topics[topic][p as usize].log
    }

    /// Handles one request frame (size prefix included) on `node`.
    /// Returns the response frame (size prefix included), if any.
    fn handle(&mut self, node: i32, frame: Bytes) -> Result<Option<Bytes>, String> {
        if frame.len() < 4 {
            return Err("frame shorter than its size".into());
        }
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if size as usize != frame.len() - 4 {
            return Err(format!(
                "size prefix {size} but {} bytes follow",
                frame.len() - 4
            ));
        }
        let (header, body) =
            decode_request_frame(frame.slice(4..)).map_err(|e| format!("bad request: {e}"))?;
        let corr = header.correlation_id;
        let v = header.request_api_version;
        self.requests.push((node, header.request_api_key, v));
        let mut out = BytesMut::new();
        let r = match body {
            RequestKind::ApiVersions(_) => {
                let keys = [
                    (ApiKey::Produce.key(), 0, self.produce_max_version),
                    (ApiKey::Metadata.key(), 0, 12),
                    (ApiKey::ApiVersions.key(), 0, 4),
                    (ApiKey::InitProducerId.key(), 0, 5),
                    (ApiKey::SaslHandshake.key(), 0, 1),
                    (ApiKey::SaslAuthenticate.key(), 0, 2),
                ];
                let resp = ApiVersionsResponse {
                    api_keys: keys
                        .iter()
                        .map(|&(k, lo, hi)| ApiVersion {
                            api_key: k,
                            min_version: lo,
                            max_version: hi,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                encode_response(&mut out, corr, v, &resp)
            }
            RequestKind::Metadata(req) => {
                let mut resp = self.metadata(&req, v);
                if let Some(r) = &mut self.metadata_rewrite {
                    (r.0)(&mut resp);
                }
                encode_response(&mut out, corr, v, &resp)
            }
            RequestKind::InitProducerId(_) => {
                let pid = self.next_pid;
                self.next_pid += 1;
                let resp = InitProducerIdResponse {
                    producer_id: pid,
                    producer_epoch: 0,
                    ..Default::default()
                };
                encode_response(&mut out, corr, v, &resp)
            }
            RequestKind::Produce(req) => {
                let mut resp = self.produce(node, &req, v)?;
                if let Some(r) = &mut self.produce_rewrite {
                    (r.0)(&mut resp);
                }
                if req.acks == 0 {
                    return Ok(None);
                }
                encode_response(&mut out, corr, v, &resp)
            }
            other => return Err(format!("unexpected request {:?}", other.api_key())),
        };
        r.map_err(|e| format!("sim cannot encode its response: {e}"))?;
        Ok(Some(out.freeze()))
    }

    fn metadata(
        &mut self,
        req: &kring_protocol::messages::metadata::MetadataRequest,
        v: i16,
    ) -> MetadataResponse {
        let brokers = self
            .nodes
            .values()
            .map(|n| {
                let (host, port) = n.addr.rsplit_once(':').expect("host:port");
                MetadataResponseBroker {
                    node_id: n.id,
                    host: host.to_owned(),
                    port: port.parse().expect("port"),
                    ..Default::default()
                }
            })
            .collect();
        let names: Vec<String> = req
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.clone())
            .collect();
        let mut topics = Vec::new();
        for name in names {
            if !self.topics.contains_key(&name) {
                if let Some(n) = self.auto_create {
                    self.create_topic(&name, n);
                }
            }
            match self.topics.get(&name) {
                None => topics.push(MetadataResponseTopic {
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                    name: Some(name),
                    ..Default::default()
                }),
                Some(parts) => topics.push(MetadataResponseTopic {
                    name: Some(name),
                    partitions: parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| MetadataResponsePartition {
                            error_code: if p.leader < 0 {
                                ErrorCode::LEADER_NOT_AVAILABLE.code()
                            } else {
                                0
                            },
                            partition_index: i as i32,
                            leader_id: p.leader,
                            leader_epoch: if v >= 7 { p.leader_epoch } else { -1 },
                            replica_nodes: vec![p.leader],
                            isr_nodes: vec![p.leader],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
            }
        }
        MetadataResponse {
            brokers,
            controller_id: 1,
            topics,
            ..Default::default()
        }
    }

    fn produce(
        &mut self,
        node: i32,
        req: &ProduceRequest,
        v: i16,
    ) -> Result<ProduceResponse, String> {
        let mut responses = Vec::new();
        let mut endpoints: Vec<i32> = Vec::new();
        let accept_any_first = self.accept_any_first_sequence;
        for t in &req.topic_data {
            let mut prs = Vec::new();
            for pd in &t.partition_data {
                let mut pr = PartitionProduceResponse {
                    index: pd.index,
                    base_offset: -1,
                    log_start_offset: if v >= 5 { 0 } else { -1 },
                    ..Default::default()
                };
                let Some(part) = self
                    .topics
                    .get_mut(&t.name)
                    .and_then(|ps| ps.get_mut(pd.index.max(0) as usize))
                else {
                    pr.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
                    prs.push(pr);
                    continue;
                };
                part.attempts += 1;
                if part.leader != node {
                    pr.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
                    if v >= 10 && self.leader_hints && part.leader >= 0 {
                        pr.current_leader = LeaderIdAndEpoch {
                            leader_id: part.leader,
                            leader_epoch: part.leader_epoch,
                            ..Default::default()
                        };
                        if !endpoints.contains(&part.leader) {
                            endpoints.push(part.leader);
                        }
                    }
                    prs.push(pr);
                    continue;
                }
                if let Some(e) = part.errors.pop_front() {
                    pr.error_code = e.code();
                    prs.push(pr);
                    continue;
                }
                let mut data = pd.records.clone().ok_or("null records")?;
                if part.max_message_bytes.is_some_and(|max| data.len() > max) {
                    pr.error_code = ErrorCode::MESSAGE_TOO_LARGE.code();
                    prs.push(pr);
                    continue;
                }
                let batch = decode_batch(&mut data, &DecodeOptions::default())
                    .map_err(|e| format!("bad batch: {e}"))?;
                if !data.is_empty() {
                    return Err("more than one batch per partition".into());
                }
                let records = batch
                    .records(&DecodeOptions::default())
                    .map_err(|e| format!("bad records: {e}"))?;
                if records.len() as i32 != batch.record_count {
                    return Err("record count mismatch".into());
                }
                let count = batch.record_count;
                let (pid, epoch, seq) =
                    (batch.producer_id, batch.producer_epoch, batch.base_sequence);
                let next_offset = part.next_offset;
                if pid >= 0 {
                    let last_seq = last_sequence(seq, count as u32);
                    match part.producers.get_mut(&pid) {
                        None if seq != 0 && !accept_any_first => {
                            pr.error_code = ErrorCode::UNKNOWN_PRODUCER_ID.code();
                            prs.push(pr);
                            continue;
                        }
                        None => {}
                        Some(st) if epoch < st.epoch => {
                            pr.error_code = ErrorCode::INVALID_PRODUCER_EPOCH.code();
                            prs.push(pr);
                            continue;
                        }
                        Some(st) if epoch > st.epoch => {
                            if seq != 0 {
                                pr.error_code = ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code();
                                prs.push(pr);
                                continue;
                            }
                            st.epoch = epoch;
                            st.recent.clear();
                        }
                        Some(st) => {
                            if let Some(&(_, _, off)) =
                                st.recent.iter().find(|r| r.0 == seq && r.1 == last_seq)
                            {
                                // A duplicate: answer with the original offset,
                                // as Kafka does.
                                pr.base_offset = off;
                                prs.push(pr);
                                continue;
                            }
                            let expect = st.recent.back().map_or(0, |r| increment_sequence(r.1, 1));
                            if seq != expect {
                                pr.error_code = ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code();
                                prs.push(pr);
                                continue;
                            }
                        }
                    }
                    let st = part.producers.entry(pid).or_insert_with(|| ProducerState {
                        epoch,
                        recent: VecDeque::new(),
                    });
                    st.recent.push_back((seq, last_seq, next_offset));
                    if st.recent.len() > 5 {
                        st.recent.pop_front();
                    }
                }
                part.next_offset += i64::from(count);
                for r in records.into_iter().filter(|_| self.store_records) {
                    part.log.push(StoredRecord {
                        offset: next_offset + i64::from(r.offset_delta),
                        key: r.key,
                        value: r.value,
                        timestamp: batch.base_timestamp + r.timestamp_delta,
                        headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
                        producer: (pid, epoch, seq),
                    });
                }
                pr.base_offset = next_offset;
                prs.push(pr);
            }
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: prs,
                ..Default::default()
            });
        }
        let node_endpoints = endpoints
            .into_iter()
            .filter_map(|id| self.nodes.get(&id))
            .map(|n| {
                let (host, port) = n.addr.rsplit_once(':').expect("host:port");
                NodeEndpoint {
                    node_id: n.id,
                    host: host.to_owned(),
                    port: port.parse().expect("port"),
                    ..Default::default()
                }
            })
            .collect();
        Ok(ProduceResponse {
            responses,
            node_endpoints,
            ..Default::default()
        })
    }
}

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

/// A cluster the [`Sim`] drives the core against: the scripted
/// [`SimCluster`], or kring-mock's own dispatch (`kring_mock::MockCluster`
/// built with `build_unbound`, behind the `sim` feature), so the Sim and
/// the wire-level mock answer with the same code.
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

impl SimBroker for SimCluster {
    type Session = sasl::ConnAuth;

    fn bootstrap(&self) -> String {
        self.nodes.values().next().expect("a node").addr.clone()
    }

    fn accept(&mut self, addr: &str) -> Option<i32> {
        self.nodes
            .values()
            .find(|n| n.addr == addr && n.up)
            .map(|n| n.id)
    }

    fn latency(&self, node: i32) -> Duration {
        self.nodes[&node].latency
    }

    fn screen(
        &mut self,
        node: i32,
        session: &mut sasl::ConnAuth,
        now: Instant,
        frame: &Bytes,
    ) -> Screen {
        let n = &self.nodes[&node];
        if !n.up || n.black_hole {
            return Screen::Pass;
        }
        let Some(sasl) = self.sasl.clone() else {
            return Screen::Pass;
        };
        match sasl.check(session, now, frame) {
            Verdict::Pass => Screen::Pass,
            Verdict::Answer(resp) => {
                if let Ok((h, _)) = decode_request_frame(frame.slice(4..)) {
                    self.requests
                        .push((node, h.request_api_key, h.request_api_version));
                }
                Screen::Answer(resp)
            }
            Verdict::Close => Screen::Close,
        }
    }

    fn handle(&mut self, node: i32, frame: Bytes) -> BrokerStep {
        let key = if frame.len() >= 6 {
            i16::from_be_bytes([frame[4], frame[5]])
        } else {
            -1
        };
        let n = self.nodes[&node].clone();
        if !n.up {
            return BrokerStep::Close {
                after: Duration::from_millis(1),
                discard_queued: false,
            };
        }
        if let Some(i) = self
            .drops
            .iter()
            .position(|&(dn, k, _)| dn == node && k == key)
        {
            let (_, _, when) = self.drops.remove(i);
            if when == DropWhen::AfterHandling {
                let _ = SimCluster::handle(self, node, frame);
            }
            return BrokerStep::Close {
                after: n.latency,
                discard_queued: true,
            };
        }
        if n.black_hole {
            return BrokerStep::Silent;
        }
        match SimCluster::handle(self, node, frame) {
            Ok(Some(frame)) => BrokerStep::Respond {
                frame,
                delay: Duration::ZERO,
                mute: Duration::ZERO,
            },
            Ok(None) => BrokerStep::Silent,
            Err(e) => panic!("sim broker rejected a request from the core: {e}"),
        }
    }
}

#[derive(Debug)]
enum SimEvent {
    Connected(ConnId),
    ConnectFailed(ConnId),
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
}

/// The harness: a core, its shared state, a cluster and simulated time.
pub struct Sim<B: SimBroker = SimCluster> {
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
    /// Every connect the core asked for.
    pub connects: Vec<String>,
    /// Every close the core asked for.
    pub closes: Vec<ConnId>,
    /// Connections a SASL broker closed (a request before authentication
    /// or after the session expired).
    pub sasl_closes: u64,
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
            connects: Vec::new(),
            closes: Vec::new(),
            sasl_closes: 0,
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
            IoCommand::Connect { conn, addr } => {
                self.connects.push(addr.clone());
                match self.cluster.accept(&addr) {
                    Some(n) => {
                        self.conns.insert(
                            conn,
                            SimConn {
                                node: n,
                                muted_until: None,
                                session: Default::default(),
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
                    SimEvent::ConnectFailed(c) => *c != conn,
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
                SimEvent::Connected(c) => self.core.handle_connected(now, c),
                SimEvent::ConnectFailed(c) => {
                    self.conns.remove(&c);
                    self.core.handle_connect_failed(now, c, "sim: refused")
                }
                SimEvent::Response(c, f) => self.core.handle_response(now, c, f),
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
            match self.shared.append(self.now, rec, self.now) {
                Ok(o) => {
                    if o.wake {
                        self.wakes += 1;
                    }
                    return Ok(o.delivery);
                }
                Err(SendError::MetadataTimeout { .. }) | Err(SendError::BufferFull { .. })
                    if self.now < deadline =>
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

    /// Requests close (counting the wake-up it asks for).
    pub fn close(&mut self) -> crate::FlushHandle {
        let h = self.shared.begin_close();
        if h.wake {
            self.wakes += 1;
        }
        h
    }
}
