//! The cluster model every broker thread reads and writes: brokers, topics,
//! partitions with their leaders and logs, and the producer id allocator.
//!
//! One mutex guards it all ([`Shared::state`]). A mock cluster serves tests
//! and a handful of client connections; one lock keeps every request atomic
//! with respect to leader moves and fault changes made from the test thread,
//! which is worth more here than parallel appends. The sink's produce path
//! does not take it (see [`crate::sink`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::faults::FaultTable;
use crate::idempotence::UnknownProducerPolicy;
use crate::log::PartitionLog;
use crate::sink::SinkTopics;
use crate::txn::Coordinators;

/// Kafka's default `max.message.bytes` (1 MiB + 12 bytes of log overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Settings fixed when the cluster is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Partitions of a topic created without a count (auto-creation,
    /// CreateTopics with -1).
    pub(crate) default_partitions: i32,
    /// Whether Metadata creates unknown topics (when the request allows it).
    pub(crate) auto_create_topics: bool,
    /// Replicas listed per partition (the leader first), capped at the
    /// number of brokers. Data is never replicated: a partition has one log.
    pub(crate) default_replication_factor: i16,
    pub(crate) unknown_producer: UnknownProducerPolicy,
    pub(crate) max_message_bytes: usize,
    /// Sink mode: produce is acknowledged without storing (see [`crate::sink`]).
    pub(crate) sink: bool,
    pub(crate) cluster_id: String,
}

/// A broker as the metadata describes it.
#[derive(Debug, Clone)]
pub(crate) struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) rack: Option<String>,
    /// Whether it is listening. A stopped broker stays in the metadata, as a
    /// crashed Kafka broker does until its session times out; its partitions
    /// keep it as leader until a test moves them.
    pub(crate) up: bool,
}

/// One partition: its leader and its log.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub(crate) leader: i32,
    /// Bumped on every leader move.
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) log: PartitionLog,
}

/// One topic.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) id: [u8; 16],
    pub(crate) partitions: Vec<PartitionState>,
    pub(crate) max_message_bytes: usize,
}

/// Why a topic cannot be created, with Kafka's error code for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateTopicError {
    /// TOPIC_ALREADY_EXISTS (36).
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    /// INVALID_TOPIC_EXCEPTION (17).
    #[error("invalid topic name '{0}': {1}")]
    InvalidName(String, &'static str),
    /// INVALID_PARTITIONS (37).
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    /// INVALID_REPLICATION_FACTOR (38).
    #[error("invalid replication factor {0}")]
    InvalidReplicationFactor(i16),
    /// INVALID_REPLICA_ASSIGNMENT (39).
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
}

impl CreateTopicError {
    /// The Kafka error code for this failure.
    pub fn code(&self) -> i16 {
        match self {
            CreateTopicError::AlreadyExists(_) => 36,
            CreateTopicError::InvalidName(..) => 17,
            CreateTopicError::InvalidPartitions(_) => 37,
            CreateTopicError::InvalidReplicationFactor(_) => 38,
            CreateTopicError::InvalidReplicaAssignment(_) => 39,
        }
    }
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), CreateTopicError> {
    let bad = |why| Err(CreateTopicError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return bad("only ASCII alphanumerics, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Everything behind the state lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) brokers: Vec<BrokerInfo>,
    pub(crate) topics: BTreeMap<String, TopicState>,
    /// Highest version served per API key, below what the mock implements
    /// ([`crate::MockCluster::set_max_version`]).
    pub(crate) version_caps: BTreeMap<i16, i16>,
    /// The transaction coordinator's state (every broker's share of it).
    pub(crate) txn: Coordinators,
    next_producer_id: i64,
    topics_created: u64,
    /// Round-robin cursor spreading partition leaders over brokers.
    next_leader: usize,
}

impl State {
    /// A cluster model whose clock starts at `start`.
    pub(crate) fn new(config: Config, brokers: Vec<BrokerInfo>, start: Instant) -> Self {
        State {
            config,
            brokers,
            topics: BTreeMap::new(),
            version_caps: BTreeMap::new(),
            txn: Coordinators::new(start),
            next_producer_id: 1000,
            topics_created: 0,
            next_leader: 0,
        }
    }

    pub(crate) fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.iter().find(|b| b.id == id)
    }

    /// The controller the metadata names: the lowest broker id that is up,
    /// else the lowest id.
    pub(crate) fn controller_id(&self) -> i32 {
        self.brokers
            .iter()
            .filter(|b| b.up)
            .map(|b| b.id)
            .min()
            .or_else(|| self.brokers.iter().map(|b| b.id).min())
            .unwrap_or(-1)
    }

    pub(crate) fn allocate_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }

    pub(crate) fn topic_by_id(&self, id: &[u8; 16]) -> Option<(&str, &TopicState)> {
        self.topics
            .iter()
            .find(|(_, t)| &t.id == id)
            .map(|(n, t)| (n.as_str(), t))
    }

    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    pub(crate) fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Option<&mut PartitionState> {
        self.topics
            .get_mut(topic)?
            .partitions
            .get_mut(usize::try_from(partition).ok()?)
    }

    /// Creates a topic; `partitions`/`replication_factor` of -1 take the
    /// defaults. Leaders are spread round-robin over the brokers.
    pub(crate) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        validate_only: bool,
    ) -> Result<(), CreateTopicError> {
        self.create_topic_with(
            name,
            TopicSpec {
                partitions,
                replication_factor,
                ..TopicSpec::default()
            },
            validate_only,
        )
    }

    /// Creates a topic from a full specification (CreateTopics).
    pub(crate) fn create_topic_with(
        &mut self,
        name: &str,
        spec: TopicSpec,
        validate_only: bool,
    ) -> Result<(), CreateTopicError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(CreateTopicError::AlreadyExists(name.to_string()));
        }
        let replica_lists = if spec.assignments.is_empty() {
            self.spread(spec.partitions, spec.replication_factor)?
        } else {
            self.check_assignments(&spec.assignments)?;
            spec.assignments
        };
        if validate_only {
            return Ok(());
        }
        let parts = replica_lists
            .into_iter()
            .map(|replicas| PartitionState {
                leader: replicas[0],
                leader_epoch: 0,
                replicas,
                log: PartitionLog::default(),
            })
            .collect();
        self.topics_created += 1;
        let id = topic_id(name, self.topics_created);
        self.topics.insert(
            name.to_string(),
            TopicState {
                id,
                partitions: parts,
                max_message_bytes: spec
                    .max_message_bytes
                    .unwrap_or(self.config.max_message_bytes),
            },
        );
        Ok(())
    }

    /// Adds `n` partitions to a topic (Kafka's CreatePartitions), leaders
    /// spread round-robin like a new topic's, with the topic's replication
    /// factor. `Ok(false)`: no such topic.
    pub(crate) fn add_partitions(&mut self, name: &str, n: i32) -> Result<bool, CreateTopicError> {
        let Some(rf) = self
            .topics
            .get(name)
            .map(|t| t.partitions.first().map_or(1, |p| p.replicas.len() as i16))
        else {
            return Ok(false);
        };
        let lists = self.spread(n, rf)?;
        let Some(t) = self.topics.get_mut(name) else {
            return Ok(false);
        };
        t.partitions
            .extend(lists.into_iter().map(|replicas| PartitionState {
                leader: replicas[0],
                leader_epoch: 0,
                replicas,
                log: PartitionLog::default(),
            }));
        Ok(true)
    }

    /// The versions of `api_key` served: the mock's range, capped by
    /// [`version_caps`](Self::version_caps).
    pub(crate) fn served(&self, api_key: i16) -> Option<std::ops::RangeInclusive<i16>> {
        let v = crate::api::served_versions(api_key)?;
        match self.version_caps.get(&api_key) {
            Some(&cap) if cap < *v.start() => None,
            Some(&cap) => Some(*v.start()..=cap.min(*v.end())),
            None => Some(v),
        }
    }

    /// Replica lists for `partitions` partitions, leaders round-robin.
    fn spread(
        &mut self,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<Vec<Vec<i32>>, CreateTopicError> {
        let partitions = if partitions == -1 {
            self.config.default_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(CreateTopicError::InvalidPartitions(partitions));
        }
        let rf = if replication_factor == -1 {
            self.config
                .default_replication_factor
                .min(self.brokers.len() as i16)
        } else {
            replication_factor
        };
        if rf <= 0 || rf as usize > self.brokers.len() {
            return Err(CreateTopicError::InvalidReplicationFactor(
                replication_factor,
            ));
        }
        let n = self.brokers.len();
        let mut lists = Vec::with_capacity(partitions as usize);
        for _ in 0..partitions {
            let first = self.next_leader % n;
            self.next_leader += 1;
            lists.push(
                (0..rf as usize)
                    .map(|i| self.brokers[(first + i) % n].id)
                    .collect(),
            );
        }
        Ok(lists)
    }

    fn check_assignments(&self, lists: &[Vec<i32>]) -> Result<(), CreateTopicError> {
        let rf = lists[0].len();
        for l in lists {
            let mut seen = Vec::with_capacity(l.len());
            for id in l {
                if self.broker(*id).is_none() || seen.contains(id) {
                    return Err(CreateTopicError::InvalidReplicaAssignment(format!(
                        "replica list {l:?} names an unknown or repeated broker"
                    )));
                }
                seen.push(*id);
            }
            if l.is_empty() || l.len() != rf {
                return Err(CreateTopicError::InvalidReplicaAssignment(
                    "every partition needs the same, non-zero number of replicas".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What CreateTopics asks for.
#[derive(Debug, Clone)]
pub(crate) struct TopicSpec {
    /// -1: the default.
    pub(crate) partitions: i32,
    /// -1: the default.
    pub(crate) replication_factor: i16,
    /// Explicit replica lists, one per partition (partition i = list i).
    pub(crate) assignments: Vec<Vec<i32>>,
    /// The topic's `max.message.bytes`, if set.
    pub(crate) max_message_bytes: Option<usize>,
}

impl Default for TopicSpec {
    fn default() -> Self {
        TopicSpec {
            partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            max_message_bytes: None,
        }
    }
}

/// A deterministic, non-zero topic id (a UUID's 16 bytes) from the name and
/// a counter: stable across runs, distinct within a cluster.
fn topic_id(name: &str, n: u64) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(h ^ n);
    let b = mix(a ^ 0x9e37_79b9_7f4a_7c15);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    // UUID v4 layout bits, so tools that print it recognise it; never zero.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

/// Request counters per API key, for tests ("how many Produce requests did
/// the client send?").
#[derive(Debug)]
pub(crate) struct Counters {
    per_api: [AtomicU64; 128],
    pub(crate) connections: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            per_api: std::array::from_fn(|_| AtomicU64::new(0)),
            connections: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn count(&self, api_key: i16) {
        if let Some(c) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.per_api.get(k))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, api_key: i16) -> u64 {
        usize::try_from(api_key)
            .ok()
            .and_then(|k| self.per_api.get(k))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// State shared by the cluster handle and every broker and connection
/// thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled on every append and every broker stop: Fetch long-polls and
    /// fault delays wait on it.
    pub(crate) changed: Condvar,
    pub(crate) faults: Mutex<FaultTable>,
    pub(crate) counters: Counters,
    /// Per-partition offsets of the sink (present in sink mode).
    pub(crate) sink: Option<SinkTopics>,
    /// SASL on every broker.
    /// SASL settings (users can change while the cluster runs).
    pub(crate) sasl: Option<Mutex<crate::sasl::MockSasl>>,
}

impl Shared {
    /// Locks the state. A panic in another thread while holding the lock
    /// (a bug) must not cascade into every connection: the state is plain
    /// data and stays usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultTable> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiter (Fetch long-polls, delays) to re-check.
    pub(crate) fn notify(&self) {
        let _g = self.lock();
        self.changed.notify_all();
    }

    /// Blocks until `deadline` or until `stop` is set, whichever is first.
    pub(crate) fn sleep_until(&self, deadline: Instant, stop: &AtomicBool) {
        let mut g = self.lock();
        loop {
            let now = Instant::now();
            if stop.load(Ordering::Acquire) || now >= deadline {
                return;
            }
            g = self
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Blocks for `d` unless `stop` is set first.
    pub(crate) fn sleep(&self, d: Duration, stop: &AtomicBool) {
        if !d.is_zero() {
            self.sleep_until(Instant::now() + d, stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(brokers: i32) -> State {
        State::new(
            Config {
                default_partitions: 3,
                auto_create_topics: true,
                default_replication_factor: 3,
                unknown_producer: UnknownProducerPolicy::Accept,
                max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                sink: false,
                cluster_id: "c".into(),
            },
            (1..=brokers)
                .map(|id| BrokerInfo {
                    id,
                    host: "127.0.0.1".into(),
                    port: 0,
                    rack: None,
                    up: true,
                })
                .collect(),
            Instant::now(),
        )
    }

    #[test]
    fn leaders_spread_round_robin() {
        let mut s = state(3);
        s.create_topic("t", 6, -1, false).unwrap();
        let leaders: Vec<i32> = s.topics["t"].partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, [1, 2, 3, 1, 2, 3]);
        assert_eq!(s.topics["t"].partitions[1].replicas, [2, 3, 1]);
    }

    #[test]
    fn added_partitions_continue_the_spread() {
        let mut s = state(3);
        s.create_topic("t", 2, 2, false).unwrap();
        assert_eq!(s.add_partitions("t", 2), Ok(true));
        let t = &s.topics["t"];
        let leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, [1, 2, 3, 1]);
        assert!(t.partitions.iter().all(|p| p.replicas.len() == 2));
        assert_eq!(s.add_partitions("none", 1), Ok(false));
        assert!(s.add_partitions("t", 0).is_err());
    }

    #[test]
    fn version_caps_narrow_what_is_served() {
        let mut s = state(1);
        assert_eq!(s.served(0), Some(3..=11));
        s.version_caps.insert(0, 7);
        assert_eq!(s.served(0), Some(3..=7));
        s.version_caps.insert(0, 99);
        assert_eq!(s.served(0), Some(3..=11));
        s.version_caps.insert(0, 2);
        assert_eq!(s.served(0), None);
        assert_eq!(s.served(999), None);
    }

    #[test]
    fn create_topic_errors() {
        let mut s = state(2);
        s.create_topic("t", -1, 1, false).unwrap();
        assert_eq!(s.topics["t"].partitions.len(), 3);
        assert_eq!(s.create_topic("t", 1, 1, false).unwrap_err().code(), 36);
        assert_eq!(
            s.create_topic("bad name", 1, 1, false).unwrap_err().code(),
            17
        );
        assert_eq!(s.create_topic("..", 1, 1, false).unwrap_err().code(), 17);
        assert_eq!(s.create_topic("u", 0, 1, false).unwrap_err().code(), 37);
        assert_eq!(s.create_topic("u", 1, 3, false).unwrap_err().code(), 38);
        s.create_topic("v", 1, 1, true).unwrap();
        assert!(!s.topics.contains_key("v"));
    }

    #[test]
    fn topic_ids_are_distinct_and_non_zero() {
        let mut s = state(1);
        s.create_topic("a", 1, 1, false).unwrap();
        s.create_topic("b", 1, 1, false).unwrap();
        assert_ne!(s.topics["a"].id, s.topics["b"].id);
        assert_ne!(s.topics["a"].id, [0; 16]);
        let id = s.topics["b"].id;
        assert_eq!(s.topic_by_id(&id).map(|(n, _)| n), Some("b"));
    }
}
