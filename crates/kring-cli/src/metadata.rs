//! `kring metadata` (kcat `-L`): the cluster's brokers and, for every topic
//! (or the ones named with `-t`), its partitions with leader, replicas, ISR
//! and errors. Plain text in kcat's layout, or JSON with `-J`.
//!
//! The `kring` producer keeps no listing of the whole cluster, so this asks
//! a bootstrap broker directly: one Metadata request (v12, Kafka 2.8+)
//! encoded with kring-protocol over a blocking `TcpStream`, every step
//! bounded by `-m`. Bootstrap brokers are tried in order until one answers.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Args;
use kring::ErrorCode;
use kring_protocol::message::{decode_response_frame, encode_request};
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};

use crate::args::duration_arg;
use crate::error::CliError;

/// Metadata v12: Kafka 2.8 and later (4.x serves 4-13), and kring-mock.
const METADATA_VERSION: i16 = 12;
/// A response larger than this is refused rather than allocated.
const MAX_RESPONSE: usize = 64 << 20;

/// Arguments of `kring metadata`.
#[derive(Args, Clone, Debug)]
pub struct MetadataArgs {
    /// Accepted for kcat compatibility (`kcat -L`): `metadata` is it.
    #[arg(short = 'L')]
    pub list_mode: bool,
    /// Bootstrap brokers, host:port[,host:port...]; tried in order.
    #[arg(short = 'b', long = "brokers")]
    pub brokers: String,
    /// Only these topics (repeatable). Default: every topic.
    #[arg(short = 't', long = "topic")]
    pub topics: Vec<String>,
    /// How long to wait for an answer, in seconds (or 500ms, 10s, ...).
    #[arg(short = 'm', value_name = "SECS", default_value = "5", value_parser = duration_arg)]
    pub timeout: Duration,
    /// JSON output instead of text.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
}

/// Runs `kring metadata`, printing to stdout.
pub fn run(a: MetadataArgs) -> Result<(), CliError> {
    let (from, response) = fetch(&a.brokers, &a.topics, a.timeout)?;
    let text = if a.json {
        to_json(&from, &response)
    } else {
        to_text(&from, &response, a.topics.is_empty())
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| CliError::io("writing to stdout", e))
}

/// Asks the bootstrap brokers in order, within `timeout` in total, for the
/// metadata of `topics` (empty: all). Returns which broker answered
/// (`host:port`) and its answer; if none did, every broker's failure.
pub fn fetch(
    brokers: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<(String, MetadataResponse), CliError> {
    let deadline = Instant::now() + timeout;
    let mut failures = Vec::new();
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let addr = broker
            .strip_prefix("PLAINTEXT://")
            .or_else(|| broker.strip_prefix("plaintext://"))
            .unwrap_or(broker);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            failures.push(format!("{addr}: not tried, {timeout:?} passed"));
            continue;
        }
        match call(addr, topics, left) {
            Ok(r) => return Ok((addr.to_owned(), r)),
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    if failures.is_empty() {
        return Err(CliError::invalid("brokers", brokers, "no host:port given"));
    }
    Err(CliError::Kring(format!(
        "no broker answered the metadata request: {}",
        failures.join("; ")
    )))
}

/// One Metadata request on a fresh connection to `addr`.
fn call(addr: &str, topics: &[String], timeout: Duration) -> Result<MetadataResponse, String> {
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolving: {e}"))?
        .next()
        .ok_or("resolving: no address")?;
    let mut stream =
        TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect: {e}"))?;
    let set = |s: &TcpStream| {
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))
    };
    set(&stream).map_err(|e| format!("socket: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request = MetadataRequest {
        topics: (!topics.is_empty()).then(|| {
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some(t.clone()),
                    ..MetadataRequestTopic::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..MetadataRequest::default()
    };
    let mut frame = BytesMut::new();
    encode_request(&mut frame, 1, Some("kring-cli"), METADATA_VERSION, &request)
        .map_err(|e| format!("encoding the request: {e}"))?;
    stream
        .write_all(&frame)
        .map_err(|e| format!("sending: {e}"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("reading: {e}"))?;
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_RESPONSE)
        .ok_or_else(|| format!("the broker sent a frame size of {size}"))?;
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("reading: {e}"))?;
    let (correlation_id, response) =
        decode_response_frame::<MetadataRequest>(Bytes::from(body), METADATA_VERSION)
            .map_err(|e| format!("decoding the response: {e}"))?;
    if correlation_id != 1 {
        return Err(format!(
            "answered correlation id {correlation_id}, expected 1"
        ));
    }
    Ok(response)
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn error_name(code: i16) -> Option<&'static str> {
    let e = ErrorCode::from_i16(code);
    (!e.is_ok()).then(|| e.name())
}

/// kcat's `-L` layout.
pub fn to_text(from: &str, r: &MetadataResponse, all: bool) -> String {
    let mut s = String::new();
    let from_id = r
        .brokers
        .iter()
        .find(|b| format!("{}:{}", b.host, b.port) == from)
        .map(|b| b.node_id.to_string())
        .unwrap_or_else(|| "bootstrap".into());
    s.push_str(&format!(
        "Metadata for {} (from broker {from_id}: {from}):\n",
        if all {
            "all topics"
        } else {
            "the given topics"
        }
    ));
    if let Some(id) = &r.cluster_id {
        s.push_str(&format!(" cluster id {id}\n"));
    }
    s.push_str(&format!(" {} brokers:\n", r.brokers.len()));
    for b in &r.brokers {
        s.push_str(&format!("  broker {} at {}:{}", b.node_id, b.host, b.port));
        if b.node_id == r.controller_id {
            s.push_str(" (controller)");
        }
        if let Some(rack) = &b.rack {
            s.push_str(&format!(" rack {rack}"));
        }
        s.push('\n');
    }
    s.push_str(&format!(" {} topics:\n", r.topics.len()));
    for t in &r.topics {
        let name = t.name.as_deref().unwrap_or("?");
        s.push_str(&format!(
            "  topic \"{name}\" with {} partitions:",
            t.partitions.len()
        ));
        if let Some(e) = error_name(t.error_code) {
            s.push_str(&format!(" error {e}"));
        }
        s.push('\n');
        let mut parts: Vec<_> = t.partitions.iter().collect();
        parts.sort_by_key(|p| p.partition_index);
        for p in parts {
            s.push_str(&format!(
                "    partition {}, leader {}, replicas: {}, isrs: {}",
                p.partition_index,
                p.leader_id,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            ));
            if !p.offline_replicas.is_empty() {
                s.push_str(&format!(", offline: {}", ids(&p.offline_replicas)));
            }
            if let Some(e) = error_name(p.error_code) {
                s.push_str(&format!(", error {e}"));
            }
            s.push('\n');
        }
    }
    s
}

/// The same as JSON (close to kcat's `-L -J`).
pub fn to_json(from: &str, r: &MetadataResponse) -> String {
    let brokers: Vec<_> = r
        .brokers
        .iter()
        .map(|b| {
            serde_json::json!({
                "id": b.node_id,
                "name": format!("{}:{}", b.host, b.port),
                "rack": b.rack,
                "controller": b.node_id == r.controller_id,
            })
        })
        .collect();
    let topics: Vec<_> = r
        .topics
        .iter()
        .map(|t| {
            let mut parts: Vec<_> = t.partitions.iter().collect();
            parts.sort_by_key(|p| p.partition_index);
            serde_json::json!({
                "topic": t.name,
                "error": error_name(t.error_code),
                "partitions": parts.iter().map(|p| serde_json::json!({
                    "partition": p.partition_index,
                    "leader": p.leader_id,
                    "replicas": p.replica_nodes,
                    "isrs": p.isr_nodes,
                    "offline": p.offline_replicas,
                    "error": error_name(p.error_code),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = serde_json::json!({
        "originating_broker": from,
        "cluster_id": r.cluster_id,
        "controller_id": r.controller_id,
        "brokers": brokers,
        "topics": topics,
    });
    format!("{v}\n")
}
