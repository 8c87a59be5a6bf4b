//! Metadata (key 3): v0–v12.
//!
//! Behavior:
//! - Brokers: every broker of the cluster, including stopped ones (a
//!   crashed Kafka broker stays in the metadata until its session times
//!   out). The controller is the lowest broker id that is running.
//! - Topics: all of them when the request's list is null (v1+) or empty
//!   (v0, where empty means all); otherwise the requested ones, by name, or
//!   by topic id from v12 on when the name is null. As from Kafka, v10 and
//!   v11 requests naming a topic id or a null name get INVALID_REQUEST on
//!   every requested topic.
//! - An unknown topic is created on the spot, with the default partition
//!   count, when the cluster allows auto-creation and the request does
//!   (`allow_auto_topic_creation`, v4+; always before v4), and always in
//!   sink mode. It
//!   is returned with its leaders at once: the mock has no election delay,
//!   so the LEADER_NOT_AVAILABLE a real broker may answer first never
//!   happens here. Otherwise UNKNOWN_TOPIC_OR_PARTITION; an invalid name is
//!   INVALID_TOPIC_EXCEPTION; an unknown topic id UNKNOWN_TOPIC_ID.
//! - Partitions: leader and leader epoch (v7+), replicas (the leader first),
//!   ISR = the replicas whose broker runs, offline replicas (v5+) = the
//!   others. A partition whose leader is stopped keeps that leader until a
//!   test moves it ([`crate::MockCluster::move_leader`]).
//! - Authorized operations (v8+) are not computed: always the "not
//!   requested" sentinel `i32::MIN`.
//! - Faults: an injected error without a partition filter becomes every
//!   returned topic's error code (with no partitions, as Kafka sends topic
//!   errors); with a filter, that partition's error code, with leader -1.

use kring_protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};

use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::state::{validate_topic_name, State};

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=12;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// Which topics a request asks for.
enum Wanted {
    All,
    Some(Vec<WantedTopic>),
}

enum WantedTopic {
    Name(String),
    Id([u8; 16]),
}

fn wanted(version: i16, req: &MetadataRequest) -> Wanted {
    match &req.topics {
        None => Wanted::All,
        Some(t) if t.is_empty() && version == 0 => Wanted::All,
        Some(t) => Wanted::Some(
            t.iter()
                .map(|t| match &t.name {
                    Some(n) => WantedTopic::Name(n.clone()),
                    None => WantedTopic::Id(t.topic_id),
                })
                .collect(),
        ),
    }
}

/// The partitions the request would describe, for fault matching.
pub(crate) fn partitions(version: i16, req: &MetadataRequest, st: &State) -> Vec<(String, i32)> {
    let names: Vec<String> = match wanted(version, req) {
        Wanted::All => st.topics.keys().cloned().collect(),
        Wanted::Some(w) => w
            .into_iter()
            .filter_map(|w| match w {
                WantedTopic::Name(n) => Some(n),
                WantedTopic::Id(id) => st.topic_by_id(&id).map(|(n, _)| n.to_string()),
            })
            .collect(),
    };
    names
        .into_iter()
        .flat_map(|n| {
            let count = st.topics.get(&n).map_or(0, |t| t.partitions.len() as i32);
            (0..count).map(move |p| (n.clone(), p))
        })
        .collect()
}

fn describe(st: &State, name: &str, fired: &Fired) -> MetadataResponseTopic {
    let Some(t) = st.topics.get(name) else {
        return MetadataResponseTopic {
            error_code: UNKNOWN_TOPIC_OR_PARTITION,
            name: Some(name.to_string()),
            ..Default::default()
        };
    };
    let up = |id: &i32| st.broker(*id).is_some_and(|b| b.up);
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let index = i as i32;
            let mut part = MetadataResponsePartition {
                error_code: 0,
                partition_index: index,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.replicas.iter().copied().filter(up).collect(),
                offline_replicas: p.replicas.iter().copied().filter(|r| !up(r)).collect(),
                ..Default::default()
            };
            if let Some(code) = fired.error_for(name, index) {
                part.error_code = code;
                part.leader_id = -1;
            }
            part
        })
        .collect();
    MetadataResponseTopic {
        error_code: 0,
        name: Some(name.to_string()),
        topic_id: t.id,
        is_internal: false,
        partitions,
        topic_authorized_operations: i32::MIN,
        ..Default::default()
    }
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: MetadataRequest, fired: &Fired) -> Answer {
    // Kafka's KafkaApis refuses topic ids (and null names) before v12 with
    // InvalidRequestException; `MetadataRequest.getErrorResponse` puts
    // INVALID_REQUEST on every requested topic and nothing else.
    if (10..12).contains(&h.version) {
        if let Some(t) = &req.topics {
            if t.iter().any(|t| t.name.is_none() || t.topic_id != [0; 16]) {
                let resp = MetadataResponse {
                    throttle_time_ms: h.throttle_ms,
                    controller_id: -1,
                    topics: t
                        .iter()
                        .map(|t| MetadataResponseTopic {
                            error_code: INVALID_REQUEST,
                            name: Some(t.name.clone().unwrap_or_default()),
                            topic_id: t.topic_id,
                            ..Default::default()
                        })
                        .collect(),
                    cluster_authorized_operations: i32::MIN,
                    ..Default::default()
                };
                return h.frame(&resp);
            }
        }
    }
    let mut st = ctx.shared.lock();
    // A sink serves benchmarks of any client: it creates every topic asked
    // for, whatever the request's flag says.
    let allow_create = st.config.sink
        || ((h.version < 4 || req.allow_auto_topic_creation) && st.config.auto_create_topics);
    let mut topics = Vec::new();
    match wanted(h.version, &req) {
        Wanted::All => {
            let names: Vec<String> = st.topics.keys().cloned().collect();
            topics.extend(names.iter().map(|n| describe(&st, n, fired)));
        }
        Wanted::Some(w) => {
            for w in w {
                match w {
                    WantedTopic::Name(n) => {
                        if validate_topic_name(&n).is_err() {
                            topics.push(MetadataResponseTopic {
                                error_code: INVALID_TOPIC_EXCEPTION,
                                name: Some(n),
                                ..Default::default()
                            });
                            continue;
                        }
                        if allow_create && !st.topics.contains_key(&n) {
                            // Creation can only fail on the name, checked above.
                            let _ = st.create_topic(&n, -1, -1, false);
                        }
                        topics.push(describe(&st, &n, fired));
                    }
                    WantedTopic::Id(id) => match st.topic_by_id(&id).map(|(n, _)| n.to_string()) {
                        Some(n) => topics.push(describe(&st, &n, fired)),
                        None => topics.push(MetadataResponseTopic {
                            error_code: UNKNOWN_TOPIC_ID,
                            // The name is nullable only from v12.
                            name: (h.version < 12).then(String::new),
                            topic_id: id,
                            ..Default::default()
                        }),
                    },
                }
            }
        }
    }
    if let Some(code) = fired.error_for_request() {
        for t in &mut topics {
            t.error_code = code;
            t.partitions.clear();
        }
    }
    let resp = MetadataResponse {
        throttle_time_ms: h.throttle_ms,
        brokers: st
            .brokers
            .iter()
            .map(|b| MetadataResponseBroker {
                node_id: b.id,
                host: b.host.clone(),
                port: i32::from(b.port),
                rack: b.rack.clone(),
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(st.config.cluster_id.clone()),
        controller_id: st.controller_id(),
        topics,
        cluster_authorized_operations: i32::MIN,
        ..Default::default()
    };
    drop(st);
    let mut resp = resp;
    crate::lie::metadata(&mut resp, &fired.lies);
    h.frame(&resp)
}
