//! Admin requests over a blocking `TcpStream`, encoded with kring-protocol's
//! generated messages: one connection per call, no JVM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::messages::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest, CreateTopicsResponse,
};
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};

use crate::ClusterError;

/// Metadata v12 (Kafka 2.8+; 4.x serves 4-13).
const METADATA_VERSION: i16 = 12;
/// CreateTopics v7 (Kafka 2.8+; 4.x serves 2-7).
const CREATE_TOPICS_VERSION: i16 = 7;
/// A response larger than this is refused rather than allocated.
const MAX_RESPONSE: usize = 64 << 20;

/// One request, one response, on a fresh connection; every step bounded by
/// `timeout`.
fn call<R: Request>(
    addr: SocketAddr,
    version: i16,
    request: &R,
    timeout: Duration,
) -> Result<R::Response, ClusterError> {
    let io = |what: &'static str| {
        move |source: std::io::Error| ClusterError::Io {
            context: format!("{what} {addr}"),
            source,
        }
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("set timeout on"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(io("set timeout on"))?;
    let _ = stream.set_nodelay(true);
    let mut frame = BytesMut::new();
    encode_request(&mut frame, 1, Some("kring-testcluster"), version, request)
        .map_err(|e| ClusterError::Protocol(format!("encoding request: {e}")))?;
    stream.write_all(&frame).map_err(io("write to"))?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).map_err(io("read from"))?;
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_RESPONSE)
        .ok_or_else(|| ClusterError::Protocol(format!("{addr} sent a frame size of {size}")))?;
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).map_err(io("read from"))?;
    let (correlation_id, response) = decode_response_frame::<R>(Bytes::from(body), version)
        .map_err(|e| ClusterError::Protocol(format!("decoding response from {addr}: {e}")))?;
    if correlation_id != 1 {
        return Err(ClusterError::Protocol(format!(
            "{addr} answered correlation id {correlation_id}, expected 1"
        )));
    }
    Ok(response)
}

/// Metadata for `topics` (`None`: no topics, only brokers).
pub(crate) fn metadata(
    addr: SocketAddr,
    topics: Option<&[&str]>,
    timeout: Duration,
) -> Result<MetadataResponse, ClusterError> {
    let request = MetadataRequest {
        topics: Some(
            topics
                .unwrap_or_default()
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..MetadataRequestTopic::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..MetadataRequest::default()
    };
    call(addr, METADATA_VERSION, &request, timeout)
}

/// CreateTopics for one topic.
pub(crate) fn create_topic(
    addr: SocketAddr,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<CreateTopicsResponse, ClusterError> {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: replication,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: (*k).to_owned(),
                    value: Some((*v).to_owned()),
                    ..CreatableTopicConfig::default()
                })
                .collect(),
            ..CreatableTopic::default()
        }],
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        ..CreateTopicsRequest::default()
    };
    call(addr, CREATE_TOPICS_VERSION, &request, timeout)
}
