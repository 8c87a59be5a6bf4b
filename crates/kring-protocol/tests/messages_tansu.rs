//! Responses captured from a real broker (tansu 0.6.0 on 127.0.0.1), decoded.
//!
//! The fixtures are response frames without the 4-byte size prefix, captured
//! by sending hand-built requests over a TCP socket:
//! - `tansu_api_versions_v3_response.bin`: ApiVersions v3, correlation id 1;
//! - `tansu_create_topics_v7_response.bin`: CreateTopics v7 creating
//!   `kring-fixture` with 3 partitions, correlation id 2;
//! - `tansu_metadata_v12_response.bin`: Metadata v12 for `kring-fixture` and
//!   the missing `kring-missing`, correlation id 3.

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_response_frame, encode_response, Decodable, Encodable};
use kring_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, MetadataRequest,
};

fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

#[test]
fn tansu_api_versions_v3_response() {
    let frame = fixture("tansu_api_versions_v3_response.bin");
    // Header v0 although v3 is flexible: decoding with header v1 would take
    // the error code's first byte as the tagged-field count.
    let (corr, resp) = decode_response_frame::<ApiVersionsRequest>(frame.clone(), 3).unwrap();
    assert_eq!(corr, 1);
    assert_eq!(resp.error_code, 0);
    let range = |key: i16| {
        let k = resp.api_keys.iter().find(|k| k.api_key == key).unwrap();
        (k.min_version, k.max_version)
    };
    assert_eq!(range(0), (0, 11), "Produce");
    assert_eq!(range(3), (0, 12), "Metadata");
    assert_eq!(range(18), (0, 4), "ApiVersions");
    assert_eq!(resp.api_keys.len(), 36);
    assert!(resp.unknown_tagged_fields.is_empty());
    assert_eq!(resp.finalized_features_epoch, -1);
    assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());
    assert!(!resp.zk_migration_ready);

    // tansu writes all four tagged fields although each holds its default
    // (Kafka omits them). kring decodes them fine but, like Kafka, does not
    // write default tagged fields: re-encoding is shorter by exactly those
    // 4 fields, and decodes to the same value.
    let mut again = BytesMut::new();
    encode_response(&mut again, corr, 3, &resp).unwrap();
    let again = again.freeze().slice(4..);
    let defaults_len = (2 + 1) + (2 + 8) + (2 + 1) + (2 + 1); // tag, size, data for tags 0-3
    assert_eq!(again.len() + defaults_len, frame.len());
    assert_eq!(
        decode_response_frame::<ApiVersionsRequest>(again, 3).unwrap(),
        (1, resp.clone())
    );
    // The body alone decodes the same way through the trait.
    let mut body = frame.slice(4..);
    assert_eq!(ApiVersionsResponse::decode(&mut body, 3).unwrap(), resp);
}

#[test]
fn tansu_create_topics_v7_response() {
    let frame = fixture("tansu_create_topics_v7_response.bin");
    let (corr, resp) = decode_response_frame::<CreateTopicsRequest>(frame.clone(), 7).unwrap();
    assert_eq!(corr, 2);
    let [topic] = &resp.topics[..] else {
        panic!("{resp:?}")
    };
    assert_eq!(topic.name, "kring-fixture");
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.num_partitions, 3);
    assert_eq!(topic.replication_factor, 1);
    assert_ne!(topic.topic_id, [0; 16]);
    assert_eq!(topic.topic_config_error_code, 0);
    // tansu writes the tagged TopicConfigErrorCode although it holds its
    // default 0 (tag 0, size 2, int16 0); kring leaves it out, the rest is
    // byte for byte the same.
    let mut again = BytesMut::new();
    encode_response(&mut again, corr, 7, &resp).unwrap();
    let again = again.freeze().slice(4..);
    let tail = frame.len() - 6; // topic tagged fields: count 1, tag 0, size 2, 0x0000; then top-level count 0
    assert_eq!(&frame[tail..], &[1, 0, 2, 0, 0, 0]);
    assert_eq!(&again[..tail], &frame[..tail]);
    assert_eq!(
        &again[tail..],
        &[0, 0],
        "no topic tagged fields, no top-level tagged fields"
    );
    assert_eq!(
        decode_response_frame::<CreateTopicsRequest>(again, 7).unwrap(),
        (2, resp)
    );
}

#[test]
fn tansu_metadata_v12_response() {
    let frame = fixture("tansu_metadata_v12_response.bin");
    let (corr, resp) = decode_response_frame::<MetadataRequest>(frame.clone(), 12).unwrap();
    assert_eq!(corr, 3);
    let [broker] = &resp.brokers[..] else {
        panic!("{resp:?}")
    };
    assert_eq!(broker.host, "127.0.0.1");
    assert_eq!(broker.port, 39471);
    assert_eq!(broker.rack, None);
    assert_eq!(resp.cluster_id.as_deref(), Some("tansu_cluster"));
    assert_eq!(resp.controller_id, broker.node_id);

    let fixture_topic = resp
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some("kring-fixture"))
        .unwrap();
    assert_eq!(fixture_topic.error_code, 0);
    assert_ne!(fixture_topic.topic_id, [0; 16]);
    let mut indexes: Vec<i32> = fixture_topic
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    for p in &fixture_topic.partitions {
        assert_eq!(p.error_code, 0);
        assert_eq!(p.leader_id, broker.node_id);
        assert_eq!(p.replica_nodes, [broker.node_id]);
        assert_eq!(p.isr_nodes, [broker.node_id]);
    }

    let missing = resp
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some("kring-missing"))
        .unwrap();
    assert_eq!(missing.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(missing.partitions.is_empty());

    let mut again = BytesMut::new();
    resp.encode(&mut again, 12).unwrap();
    assert_eq!(
        &again[..],
        &frame[5..],
        "canonical input re-encodes to the captured body"
    );
}
