//! CreateTopics (key 19): v0–v7.
//!
//! Behavior:
//! - Any broker accepts it (as KRaft brokers forward it to the controller);
//!   topics exist the moment the response is written, so `timeout_ms` is
//!   never waited on.
//! - `num_partitions`/`replication_factor` of -1 take the cluster defaults.
//!   Explicit `assignments` give each partition's replicas (the first is
//!   the leader); then both counts must be -1 (else INVALID_REQUEST), the
//!   partitions must be numbered 0..n, and every replica must be a known
//!   broker, listed once (else INVALID_REPLICA_ASSIGNMENT).
//! - Errors per topic: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION (name
//!   rules), INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (more than the
//!   brokers), INVALID_REQUEST for a name given twice in one request (both
//!   entries fail, as in Kafka), with `error_message` (v1+).
//! - A request whose topics add up to more than 10,000 partitions (a count
//!   of -1 taking the default, an assignment list its length) fails every
//!   topic with POLICY_VIOLATION, creating nothing, as Kafka's controller
//!   does (KAFKA-17870): the count comes off the wire, and the mock would
//!   otherwise allocate a partition list of that size (up to `i32::MAX`).
//! - Configs: `max.message.bytes` is applied (a non-numeric value is
//!   INVALID_CONFIG); other names are accepted and ignored.
//! - `validate_only` (v1+) checks everything and creates nothing.
//! - v5+ responses carry the partition count and replication factor, and an
//!   empty config list (the mock keeps no per-topic configuration to
//!   describe); v7 adds the topic id.
//! - Faults: an injected error answers every topic with it (with a
//!   partition filter: only the filtered topic), creating nothing for them.

use kring_protocol::messages::create_topics::{
    CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};

use super::{Answer, Hdr};
use crate::conn::Ctx;
use crate::faults::Fired;
use crate::state::TopicSpec;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=7;

const INVALID_REQUEST: i16 = 42;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_CONFIG: i16 = 40;
const POLICY_VIOLATION: i16 = 44;

/// Kafka's controller refuses a CreateTopics request creating more
/// partitions than this in all (`MAX_PARTITIONS_PER_BATCH`).
const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// The topics named, for fault matching (as partition -1 never matches a
/// partition filter, a filter on `(topic, 0)` matches the topic).
pub(crate) fn partitions(req: &CreateTopicsRequest) -> Vec<(String, i32)> {
    req.topics.iter().map(|t| (t.name.clone(), 0)).collect()
}

fn result(name: &str, code: i16, message: Option<String>) -> CreatableTopicResult {
    CreatableTopicResult {
        name: name.to_string(),
        error_code: code,
        error_message: message,
        num_partitions: -1,
        replication_factor: -1,
        configs: None,
        ..Default::default()
    }
}

pub(crate) fn handle(ctx: &Ctx<'_>, h: &Hdr, req: CreateTopicsRequest, fired: &Fired) -> Answer {
    let mut st = ctx.shared.lock();
    let default_partitions = st.config.default_partitions;
    let total: i64 = req
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(default_partitions),
            (0, n) => i64::from(n.max(0)),
            (n, _) => n as i64,
        })
        .sum();
    let too_many = total > MAX_PARTITIONS_PER_REQUEST;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        if let Some(code) = fired.error_for(&t.name, 0) {
            topics.push(result(&t.name, code, Some("injected by kring-mock".into())));
            continue;
        }
        if req.topics.iter().filter(|o| o.name == t.name).count() > 1 {
            topics.push(result(
                &t.name,
                INVALID_REQUEST,
                Some(format!(
                    "topic '{}' appears more than once in the request",
                    t.name
                )),
            ));
            continue;
        }
        if too_many {
            topics.push(result(
                &t.name,
                POLICY_VIOLATION,
                Some("Excessively large number of partitions per request.".into()),
            ));
            continue;
        }
        let mut spec = TopicSpec {
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            ..TopicSpec::default()
        };
        if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                topics.push(result(
                    &t.name,
                    INVALID_REQUEST,
                    Some(
                        "both assignments and num_partitions/replication_factor were given".into(),
                    ),
                ));
                continue;
            }
            let mut a: Vec<_> = t.assignments.iter().collect();
            a.sort_by_key(|a| a.partition_index);
            if a.iter()
                .enumerate()
                .any(|(i, a)| a.partition_index != i as i32)
            {
                topics.push(result(
                    &t.name,
                    INVALID_REPLICA_ASSIGNMENT,
                    Some("partitions must be numbered 0..n".into()),
                ));
                continue;
            }
            spec.assignments = a.into_iter().map(|a| a.broker_ids.clone()).collect();
        }
        let mut config_error = None;
        for c in &t.configs {
            if c.name == "max.message.bytes" {
                match c.value.as_deref().map(str::parse::<usize>) {
                    Some(Ok(n)) => spec.max_message_bytes = Some(n),
                    _ => config_error = Some(format!("invalid max.message.bytes {:?}", c.value)),
                }
            }
        }
        if let Some(msg) = config_error {
            topics.push(result(&t.name, INVALID_CONFIG, Some(msg)));
            continue;
        }
        match st.create_topic_with(&t.name, spec, req.validate_only) {
            Err(e) => topics.push(result(&t.name, e.code(), Some(e.to_string()))),
            Ok(()) => {
                let (partitions, rf, id) = match st.topics.get(&t.name) {
                    Some(created) => (
                        created.partitions.len() as i32,
                        created.partitions[0].replicas.len() as i16,
                        created.id,
                    ),
                    // validate_only: report what was asked for.
                    None => (t.num_partitions, t.replication_factor, [0; 16]),
                };
                topics.push(CreatableTopicResult {
                    name: t.name.clone(),
                    topic_id: id,
                    error_code: 0,
                    error_message: None,
                    num_partitions: partitions,
                    replication_factor: rf,
                    configs: Some(Vec::new()),
                    ..Default::default()
                });
            }
        }
    }
    drop(st);
    let resp = CreateTopicsResponse {
        throttle_time_ms: h.throttle_ms,
        topics,
        ..Default::default()
    };
    h.frame(&resp)
}
