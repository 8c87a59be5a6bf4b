//! [`MockCluster`]: the handle a test holds. It builds the brokers, and
//! everything a test does to a running cluster goes through it: read the
//! logs back, inject faults, stop and start brokers, move leaders.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::api::Step;
use crate::conn::Ctx;

use crate::faults::{Fault, FaultAction, FaultId, FaultTable, RequestInfo};
use crate::idempotence::UnknownProducerPolicy;
use crate::log::StoredBatch;
use crate::records::{self, StoredRecord};
use crate::sasl::{SaslSession, SaslStep, Verdict};
use crate::server::BrokerServer;
use crate::sink::{SinkStats, SinkTopics};
use crate::state::{
    BrokerInfo, Config, Counters, CreateTopicError, Shared, State, DEFAULT_MAX_MESSAGE_BYTES,
};
use crate::tls::TlsSettings;

mod transactions;

/// Errors of the cluster's control API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// No broker has this id.
    #[error("no broker with id {0}")]
    UnknownBroker(i32),
    /// The topic or partition does not exist.
    #[error("no partition {1} of topic '{0}'")]
    UnknownPartition(String, i32),
    /// Topic creation failed.
    #[error(transparent)]
    CreateTopic(#[from] CreateTopicError),
    /// A stored batch could not be decoded (only possible if a client sent
    /// records whose batch header validated but whose contents do not
    /// decode; the broker, like Kafka's, checks the CRC but not every
    /// record).
    #[error("stored batch at offset {offset} does not decode: {source}")]
    Decode {
        /// Base offset of the batch.
        offset: i64,
        /// What the decoder said.
        source: kring_protocol::DecodeError,
    },
    /// Binding or spawning failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The builder was given an impossible setting.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Builds a [`MockCluster`].
#[derive(Debug, Clone)]
pub struct MockClusterBuilder {
    brokers: i32,
    first_node_id: i32,
    topics: Vec<(String, i32)>,
    default_partitions: i32,
    auto_create_topics: bool,
    replication_factor: i16,
    unknown_producer: UnknownProducerPolicy,
    max_message_bytes: usize,
    sink: bool,
    port_base: Option<u16>,
    cluster_id: String,
    sasl: Option<crate::sasl::MockSasl>,
    tls: Option<TlsSettings>,
}

impl Default for MockClusterBuilder {
    fn default() -> Self {
        MockClusterBuilder {
            brokers: 1,
            first_node_id: 1,
            topics: Vec::new(),
            default_partitions: 1,
            auto_create_topics: true,
            replication_factor: 1,
            unknown_producer: UnknownProducerPolicy::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            sink: false,
            port_base: None,
            cluster_id: "kring-mock-cluster".into(),
            sasl: None,
            tls: None,
        }
    }
}

impl MockClusterBuilder {
    /// Number of brokers (ids 1..=n, or from
    /// [`first_node_id`](Self::first_node_id)). Default 1.
    pub fn brokers(mut self, n: i32) -> Self {
        self.brokers = n;
        self
    }

    /// The first broker's node id; the others follow in order. Default 1.
    /// Many real clusters (Strimzi, those set up in ZooKeeper days) number
    /// their brokers from 0, an id a client could mistake for "none".
    pub fn first_node_id(mut self, id: i32) -> Self {
        self.first_node_id = id;
        self
    }

    /// A topic to create at start, with `partitions` partitions whose leaders
    /// are spread round-robin over the brokers.
    pub fn topic(mut self, name: impl Into<String>, partitions: i32) -> Self {
        self.topics.push((name.into(), partitions));
        self
    }

    /// Partitions of topics created without a count: auto-created topics,
    /// CreateTopics with -1, the sink's topics. Default 1.
    pub fn default_partitions(mut self, n: i32) -> Self {
        self.default_partitions = n;
        self
    }

    /// Whether a Metadata request that allows it creates unknown topics
    /// (Kafka's `auto.create.topics.enable`). Default true.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Replicas listed per partition in Metadata (capped at the broker
    /// count). Data is not replicated; this only shapes the metadata.
    /// Default 1.
    pub fn replication_factor(mut self, rf: i16) -> Self {
        self.replication_factor = rf;
        self
    }

    /// What a non-zero first sequence from an unknown producer gets.
    /// Default: accepted, as Kafka ≥ 2.5 does.
    pub fn unknown_producer_policy(mut self, p: UnknownProducerPolicy) -> Self {
        self.unknown_producer = p;
        self
    }

    /// Largest batch a topic accepts (Kafka's `max.message.bytes`); larger
    /// ones get MESSAGE_TOO_LARGE. Default 1,048,588.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Sink mode: Produce is acknowledged without storing (see
    /// [`crate::sink`](crate#sink-mode)).
    pub fn sink(mut self, on: bool) -> Self {
        self.sink = on;
        self
    }

    /// Listen on `port_base + i` for the `i`-th broker (counted from 1,
    /// whatever its node id) instead of ephemeral ports.
    pub fn port_base(mut self, port: u16) -> Self {
        self.port_base = Some(port);
        self
    }

    /// Serve TLS only (like a Kafka `SSL` listener): `cert_chain_pem` is the
    /// brokers' certificate chain (leaf first), `key_pem` its private key
    /// (PKCS#8, PKCS#1 or SEC1). Clients must trust the chain's CA and
    /// connect by a name (here: the IP address 127.0.0.1) it lists.
    pub fn tls(mut self, cert_chain_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some(TlsSettings {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: None,
        });
        self
    }

    /// With [`tls`](Self::tls): require a client certificate signed by a CA
    /// in `ca_pem` (mutual TLS, Kafka's `ssl.client.auth=required`).
    pub fn tls_client_auth(mut self, ca_pem: impl Into<String>) -> Self {
        if let Some(t) = &mut self.tls {
            t.client_ca_pem = Some(ca_pem.into());
        }
        self
    }

    /// The cluster id Metadata reports.
    pub fn cluster_id(mut self, id: impl Into<String>) -> Self {
        self.cluster_id = id.into();
        self
    }

    /// Every broker is a SASL listener with these users and mechanisms:
    /// requests before authentication close the connection.
    pub fn sasl(mut self, sasl: crate::sasl::MockSasl) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Binds every broker and starts serving.
    pub fn build(self) -> Result<MockCluster, MockError> {
        self.build_inner(true)
    }

    /// Builds the cluster without sockets or threads: brokers are
    /// named `mock-<id>:9092` and answer only through
    /// [`MockCluster::handle`], which runs the same request dispatch as
    /// the TCP server. For deterministic harnesses (kring-core's `Sim`,
    /// fuzzing). [`stop_broker`](MockCluster::stop_broker) and
    /// [`start_broker`](MockCluster::start_broker) only mark the broker
    /// down or up (a down broker's [`handle`](MockCluster::handle) closes
    /// the connection). SASL is screened by the caller, per connection
    /// ([`MockCluster::screen_sasl`]). Sink mode needs connections and is
    /// refused.
    pub fn build_unbound(self) -> Result<MockCluster, MockError> {
        if self.sink {
            return Err(MockError::Config("sink mode needs sockets".into()));
        }
        self.build_inner(false)
    }

    fn build_inner(self, bind: bool) -> Result<MockCluster, MockError> {
        if self.brokers < 1 {
            return Err(MockError::Config(format!("{} brokers", self.brokers)));
        }
        let last_node_id = self
            .first_node_id
            .checked_add(self.brokers - 1)
            .filter(|_| self.first_node_id >= 0)
            .ok_or_else(|| {
                MockError::Config(format!(
                    "{} brokers from node id {}",
                    self.brokers, self.first_node_id
                ))
            })?;
        if self.default_partitions < 1 {
            return Err(MockError::Config(format!(
                "default partitions {}",
                self.default_partitions
            )));
        }
        let tls = match &self.tls {
            Some(t) => Some(t.server_config()?),
            None => None,
        };
        let config = Config {
            default_partitions: self.default_partitions,
            auto_create_topics: self.auto_create_topics,
            default_replication_factor: self.replication_factor.max(1),
            unknown_producer: self.unknown_producer,
            max_message_bytes: self.max_message_bytes,
            sink: self.sink,
            cluster_id: self.cluster_id,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config, Vec::new(), Instant::now())),
            changed: Condvar::new(),
            faults: Mutex::new(FaultTable::default()),
            counters: Counters::default(),
            sink: self.sink.then(SinkTopics::default),
            sasl: self.sasl.map(Mutex::new),
        });
        let mut servers = Vec::new();
        for id in self.first_node_id..=last_node_id {
            if !bind {
                shared.lock().brokers.push(BrokerInfo {
                    id,
                    host: format!("mock-{id}"),
                    port: 9092,
                    rack: None,
                    up: true,
                });
                continue;
            }
            let port = match self.port_base {
                Some(base) => u16::try_from(id - self.first_node_id + 1)
                    .ok()
                    .and_then(|nth| base.checked_add(nth))
                    .ok_or_else(|| MockError::Config(format!("port base {base} too high")))?,
                None => 0,
            };
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let server = match BrokerServer::start(shared.clone(), id, addr, tls.clone()) {
                Ok(s) => s,
                Err(e) => {
                    for mut s in servers {
                        BrokerServer::stop(&mut s, &shared);
                    }
                    return Err(e.into());
                }
            };
            shared.lock().brokers.push(BrokerInfo {
                id,
                host: server.addr.ip().to_string(),
                port: server.addr.port(),
                rack: None,
                up: true,
            });
            servers.push(server);
        }
        let cluster = MockCluster {
            shared,
            servers: Mutex::new(servers),
            unbound: !bind,
        };
        for (name, partitions) in &self.topics {
            cluster.create_topic(name, *partitions)?;
        }
        Ok(cluster)
    }
}

/// An in-process Kafka cluster on 127.0.0.1. Dropping it stops every broker
/// and joins every thread.
#[derive(Debug)]
pub struct MockCluster {
    shared: Arc<Shared>,
    servers: Mutex<Vec<BrokerServer>>,
    /// Built by [`MockClusterBuilder::build_unbound`]: no servers.
    unbound: bool,
}

impl MockCluster {
    /// A builder with one broker, no topics, auto-creation on.
    pub fn builder() -> MockClusterBuilder {
        MockClusterBuilder::default()
    }

    /// A builder for a sink: acknowledges Produce without storing.
    pub fn sink() -> MockClusterBuilder {
        MockClusterBuilder::default().sink(true)
    }

    fn servers(&self) -> MutexGuard<'_, Vec<BrokerServer>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `host:port` of every broker, comma-separated: a client's
    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        if self.unbound {
            return self
                .shared
                .lock()
                .brokers
                .iter()
                .map(|b| format!("{}:{}", b.host, b.port))
                .collect::<Vec<_>>()
                .join(",");
        }
        self.servers()
            .iter()
            .map(|s| s.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Broker ids, in order.
    pub fn broker_ids(&self) -> Vec<i32> {
        if self.unbound {
            return self.shared.lock().brokers.iter().map(|b| b.id).collect();
        }
        self.servers().iter().map(|s| s.id).collect()
    }

    /// The address broker `id` listens on (also while it is stopped);
    /// `None` for an [unbound](MockClusterBuilder::build_unbound) cluster.
    pub fn broker_addr(&self, id: i32) -> Option<SocketAddr> {
        self.servers().iter().find(|s| s.id == id).map(|s| s.addr)
    }

    /// Creates a topic with leaders spread over the brokers.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), MockError> {
        self.shared
            .lock()
            .create_topic(name, partitions, -1, false)?;
        Ok(())
    }

    /// Adds `n` partitions to an existing topic, as Kafka's
    /// CreatePartitions does: the new ones are empty, led round-robin like a
    /// new topic's, and Metadata lists them from now on.
    pub fn add_partitions(&self, topic: &str, n: i32) -> Result<(), MockError> {
        if !self.shared.lock().add_partitions(topic, n)? {
            return Err(MockError::UnknownPartition(topic.to_string(), n));
        }
        self.shared.notify();
        Ok(())
    }

    /// Topic names.
    pub fn topics(&self) -> Vec<String> {
        self.shared.lock().topics.keys().cloned().collect()
    }

    /// Number of partitions of `topic`.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.shared
            .lock()
            .topics
            .get(topic)
            .map(|t| t.partitions.len())
    }

    /// Leader of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.leader)
    }

    /// Leader epoch of a partition (bumped by every leader move).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.leader_epoch)
    }

    /// Moves a partition's leadership to `broker` and bumps its leader
    /// epoch. Metadata reports the new leader at once; the old leader
    /// answers NOT_LEADER_OR_FOLLOWER, with a KIP-951 current-leader hint on
    /// Produce v10+.
    pub fn move_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<(), MockError> {
        {
            let mut st = self.shared.lock();
            if st.broker(broker).is_none() {
                return Err(MockError::UnknownBroker(broker));
            }
            let p = st
                .partition_mut(topic, partition)
                .ok_or_else(|| MockError::UnknownPartition(topic.to_string(), partition))?;
            p.leader = broker;
            p.leader_epoch += 1;
            if !p.replicas.contains(&broker) {
                p.replicas.insert(0, broker);
            }
        }
        self.shared.notify();
        Ok(())
    }

    /// Forgets every idempotent producer's state on a partition, as a
    /// broker does when the state expires (`producer.id.expiration.ms`) or
    /// the log is truncated: the next batch of such a producer is taken as
    /// its first (see
    /// [`UnknownProducerPolicy`] for a
    /// non-zero first sequence).
    pub fn forget_producers(&self, topic: &str, partition: i32) -> Result<(), MockError> {
        let mut st = self.shared.lock();
        let p = st
            .partition_mut(topic, partition)
            .ok_or_else(|| MockError::UnknownPartition(topic.to_string(), partition))?;
        p.log.producers_mut().forget();
        Ok(())
    }

    /// Makes every idempotent producer known to a partition look as if its
    /// last batch ended at sequence `last` (at the partition's last
    /// offset): its next batch must start at `last + 1`, or 0 after
    /// `i32::MAX`. For testing a client's sequence wrap-around without
    /// writing 2^31 records first; the client must be moved near the wrap
    /// too.
    pub fn set_last_sequence(
        &self,
        topic: &str,
        partition: i32,
        last: i32,
    ) -> Result<(), MockError> {
        let mut st = self.shared.lock();
        let p = st
            .partition_mut(topic, partition)
            .ok_or_else(|| MockError::UnknownPartition(topic.to_string(), partition))?;
        let offset = p.log.high_watermark() - 1;
        p.log.producers_mut().set_last_sequence(last, offset);
        Ok(())
    }

    /// Serves `api_key` (an `i16` or a `kring_protocol::messages::ApiKey`)
    /// up to version `max` only, as an older broker would: ApiVersions
    /// advertises the narrower range and a request of a higher version
    /// closes the connection. `None` restores the full range. A cap above
    /// what the mock implements changes nothing; one below its lowest
    /// version stops serving the key (unadvertised).
    pub fn set_max_version(&self, api_key: impl Into<i16>, max: Option<i16>) {
        let mut st = self.shared.lock();
        match max {
            Some(v) => st.version_caps.insert(api_key.into(), v),
            None => st.version_caps.remove(&api_key.into()),
        };
    }

    /// Stops broker `id`: closes its listener (connects are refused) and its
    /// connections, and joins its threads. Its partitions keep it as leader.
    pub fn stop_broker(&self, id: i32) -> Result<(), MockError> {
        if self.unbound {
            return self.set_up(id, false);
        }
        let mut servers = self.servers();
        let s = servers
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(MockError::UnknownBroker(id))?;
        s.stop(&self.shared);
        if let Some(b) = self.shared.lock().brokers.iter_mut().find(|b| b.id == id) {
            b.up = false;
        }
        Ok(())
    }

    /// Starts a stopped broker again on the same port.
    pub fn start_broker(&self, id: i32) -> Result<(), MockError> {
        if self.unbound {
            return self.set_up(id, true);
        }
        let mut servers = self.servers();
        let s = servers
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(MockError::UnknownBroker(id))?;
        s.restart(self.shared.clone())?;
        if let Some(b) = self.shared.lock().brokers.iter_mut().find(|b| b.id == id) {
            b.up = true;
        }
        Ok(())
    }

    fn set_up(&self, id: i32, up: bool) -> Result<(), MockError> {
        let mut st = self.shared.lock();
        let b = st
            .brokers
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(MockError::UnknownBroker(id))?;
        b.up = up;
        Ok(())
    }

    /// Whether broker `id` is listening (unbound: whether it is up).
    pub fn is_broker_running(&self, id: i32) -> bool {
        if self.unbound {
            return self.shared.lock().broker(id).is_some_and(|b| b.up);
        }
        self.servers().iter().any(|s| s.id == id && s.is_running())
    }

    /// Installs a fault; it applies from the next matching request on.
    pub fn inject(&self, fault: Fault) -> FaultId {
        self.shared.faults().insert(fault)
    }

    /// Removes a fault. Returns whether it was still installed.
    pub fn remove_fault(&self, id: FaultId) -> bool {
        self.shared.faults().remove(id)
    }

    /// Installs a hook for `api_key`: it is called with every such request
    /// (after decoding, before applying) and returns actions to apply to it,
    /// as if faults had fired — for conditions a [`Fault`] cannot express
    /// ("fail every third request", "delay requests from client X").
    /// Replaces an earlier hook for the key. The hook runs on broker
    /// threads and may call back into the cluster (for example to inject
    /// faults or move leaders).
    pub fn set_hook(
        &self,
        api_key: impl Into<i16>,
        hook: impl Fn(&RequestInfo<'_>) -> Vec<FaultAction> + Send + Sync + 'static,
    ) {
        self.shared
            .faults()
            .set_hook(api_key.into(), Some(std::sync::Arc::new(hook)));
    }

    /// Removes the hook for `api_key`.
    pub fn remove_hook(&self, api_key: impl Into<i16>) {
        self.shared.faults().set_hook(api_key.into(), None);
    }

    /// Removes every fault and hook.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Whether a fault is still installed (a counted fault is removed when
    /// it has fired its last time).
    pub fn fault_pending(&self, id: FaultId) -> bool {
        self.shared.faults().is_pending(id)
    }

    /// How many times faults have fired in total.
    pub fn faults_fired(&self) -> u64 {
        self.shared.faults().fired_total()
    }

    /// Requests of `api_key` received by all brokers so far.
    pub fn request_count(&self, api_key: i16) -> u64 {
        self.shared.counters.get(api_key)
    }

    /// Connections accepted by all brokers so far.
    pub fn connection_count(&self) -> u64 {
        self.shared
            .counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The stored batches of a partition, in offset order.
    pub fn batches(&self, topic: &str, partition: i32) -> Result<Vec<StoredBatch>, MockError> {
        let st = self.shared.lock();
        let p = st
            .partition(topic, partition)
            .ok_or_else(|| MockError::UnknownPartition(topic.to_string(), partition))?;
        Ok(p.log.batches().to_vec())
    }

    /// Every record of a partition, decoded (and decompressed), in offset
    /// order: what a read_uncommitted consumer reading from offset 0 would
    /// get — records of open and aborted transactions included,
    /// transaction markers (control batches) left out, as consumers never
    /// return them. See [`read_committed`](Self::read_committed) for the
    /// other isolation level.
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<StoredRecord>, MockError> {
        let batches = self.batches(topic, partition)?;
        let mut out = Vec::new();
        for b in batches.iter().filter(|b| !b.header.is_control()) {
            records::decode_into(b, &mut out).map_err(|source| MockError::Decode {
                offset: b.base_offset,
                source,
            })?;
        }
        Ok(out)
    }

    /// The high watermark (next offset) of a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.log.high_watermark())
    }

    /// Handles one request frame (without its 4-byte size prefix) as
    /// broker `broker_id` would on a connection, without sockets: the same
    /// dispatch the TCP server runs (decode, faults and hooks, the API's
    /// handler), returning what the connection would do. Nothing here
    /// blocks or reads the clock: delays and throttles come back in the
    /// [`Reply`](crate::api::Reply) for the caller to play, and a Fetch
    /// answers at once with what is stored. An unknown or stopped broker
    /// closes the connection. In sink mode Produce takes the regular path
    /// (the sink's fast path lives in the connection).
    pub fn handle(&self, broker_id: i32, frame: Bytes) -> Step {
        if !self.shared.lock().broker(broker_id).is_some_and(|b| b.up) {
            return Step::Close;
        }
        let stop = AtomicBool::new(false);
        let ctx = Ctx {
            shared: &self.shared,
            broker_id,
            stop: &stop,
            blocking: false,
        };
        crate::api::handle(&ctx, frame)
    }

    /// Screens one request frame (without its size prefix) on a connection
    /// the caller runs over [`handle`](Self::handle), as a SASL listener's
    /// connection does before the dispatch: ApiVersions passes,
    /// SaslHandshake and SaslAuthenticate are answered here, anything else
    /// passes only once `session` authenticated and before its session
    /// lifetime ran out (measured on the caller's clock, `now`). Every
    /// request passes when the cluster is not a SASL listener. `now` also
    /// advances the cluster's clock, as
    /// [`advance_clock_to`](Self::advance_clock_to) does: a harness
    /// screening every request keeps the transaction coordinator on its
    /// time. A request
    /// answered or refused here is counted like a dispatched one.
    pub fn screen_sasl(&self, session: &mut SaslSession, now: Instant, frame: &[u8]) -> SaslStep {
        self.tell_time(now);
        let Some(sasl) = &self.shared.sasl else {
            return SaslStep::Pass;
        };
        let verdict = {
            let sasl = sasl.lock().unwrap_or_else(|e| e.into_inner());
            session.0.check(&sasl, now, frame)
        };
        if !matches!(verdict, Verdict::Pass) && frame.len() >= 2 {
            self.shared
                .counters
                .count(i16::from_be_bytes([frame[0], frame[1]]));
        }
        match verdict {
            Verdict::Pass => SaslStep::Pass,
            Verdict::Answer(f) => SaslStep::Reply(f),
            Verdict::AnswerAndClose(f) => SaslStep::ReplyAndClose(f),
            Verdict::Close => SaslStep::Close,
        }
    }

    /// Adds a SASL user, or changes its password: authentications from
    /// now on use it; connections already authenticated stay so (until
    /// their session lifetime ends). An error if the cluster is not a SASL
    /// listener.
    pub fn set_sasl_user(&self, name: &str, password: &str) -> Result<(), MockError> {
        let sasl = self
            .shared
            .sasl
            .as_ref()
            .ok_or_else(|| MockError::Config("not a SASL cluster".into()))?;
        sasl.lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_user(name, password);
        Ok(())
    }

    /// Sink totals, in sink mode.
    pub fn sink_stats(&self) -> Option<SinkStats> {
        self.shared.sink.as_ref().map(|s| s.stats())
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        for s in servers.iter_mut() {
            s.stop(&self.shared);
        }
    }
}
