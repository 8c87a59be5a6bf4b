//! Golden bytes written by hand from the Kafka protocol specs, field by
//! field, not produced by running the encoder. Each test checks both
//! directions: encoding the value gives exactly these bytes, and decoding the
//! bytes gives exactly the value.

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{
    decode_response_frame, encode_request, encode_response, Decodable, Encodable,
};
use kring_protocol::messages::api_versions::{ApiVersion, FinalizedFeatureKey};
use kring_protocol::messages::metadata::{
    MetadataRequestTopic, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kring_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use kring_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
};

/// Concatenates byte pieces, so goldens can be written one field per line.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn encode<E: Encodable>(value: &E, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).unwrap();
    assert_eq!(buf.len(), value.encoded_len(version).unwrap());
    buf.to_vec()
}

/// Both directions for a message body.
fn golden<T: Encodable + Decodable + PartialEq + std::fmt::Debug>(
    value: &T,
    version: i16,
    want: &[u8],
) {
    assert_eq!(encode(value, version), want, "encode v{version}");
    let mut buf = Bytes::copy_from_slice(want);
    assert_eq!(
        &T::decode(&mut buf, version).unwrap(),
        value,
        "decode v{version}"
    );
    assert!(buf.is_empty());
}

fn request_frame<R: kring_protocol::message::Request>(req: &R, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 7, Some("kring"), version, req).unwrap();
    buf.to_vec()
}

// ---- ApiVersions -------------------------------------------------------------

#[test]
fn api_versions_v0_request_frame() {
    let want = cat(&[
        &[0, 0, 0, 15], // size: 15 bytes follow
        &[0, 18],       // request_api_key: 18 (ApiVersions)
        &[0, 0],        // request_api_version: 0
        &[0, 0, 0, 7],  // correlation_id: 7
        &[0, 5, b'k', b'r', b'i', b'n', b'g'], // client_id: i16 length 5, "kring" (header v1)
                        // body: no fields in v0
    ]);
    assert_eq!(request_frame(&ApiVersionsRequest::default(), 0), want);
    golden(&ApiVersionsRequest::default(), 0, &[]);
}

#[test]
fn api_versions_v3_request_frame() {
    let req = ApiVersionsRequest {
        client_software_name: "kring".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    };
    let body = cat(&[
        &[6, b'k', b'r', b'i', b'n', b'g'], // client_software_name: compact, length+1 = 6
        &[6, b'0', b'.', b'1', b'.', b'0'], // client_software_version: compact
        &[0],                               // tagged fields: none
    ]);
    let want = cat(&[
        &[0, 0, 0, 29],                        // size: 16 header + 13 body
        &[0, 18],                              // request_api_key
        &[0, 3],                               // request_api_version: 3 (flexible)
        &[0, 0, 0, 7],                         // correlation_id
        &[0, 5, b'k', b'r', b'i', b'n', b'g'], // client_id: still an i16-length string in header v2
        &[0],                                  // header v2 tagged fields: none
        &body,
    ]);
    assert_eq!(request_frame(&req, 3), want);
    golden(&req, 3, &body);
}

#[test]
fn api_versions_v0_response() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 11,
                ..Default::default()
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let body = cat(&[
        &[0, 0],              // error_code: 0
        &[0, 0, 0, 2],        // api_keys: i32 count 2
        &[0, 0, 0, 0, 0, 11], // Produce: key 0, min 0, max 11
        &[0, 18, 0, 0, 0, 4], // ApiVersions: key 18, min 0, max 4
                              // throttle_time_ms: only v1+
    ]);
    golden(&resp, 0, &body);
    let frame = cat(&[&[0, 0, 0, 7], &body]); // response header v0: correlation_id only
    let (corr, decoded) =
        decode_response_frame::<ApiVersionsRequest>(Bytes::from(frame.clone()), 0).unwrap();
    assert_eq!((corr, &decoded), (7, &resp));
    let mut out = BytesMut::new();
    encode_response(&mut out, 7, 0, &resp).unwrap();
    assert_eq!(out.to_vec(), cat(&[&[0, 0, 0, 22], &frame])); // size: 4 + 18
}

#[test]
fn api_versions_v3_response_uses_header_v0() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 11,
                ..Default::default()
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                ..Default::default()
            },
        ],
        throttle_time_ms: 10,
        finalized_features_epoch: 5,
        finalized_features: vec![FinalizedFeatureKey {
            name: "mv".into(),
            max_version_level: 7,
            min_version_level: 1,
            ..Default::default()
        }],
        zk_migration_ready: true,
        ..Default::default()
    };
    let body = cat(&[
        &[0, 0],                         // error_code
        &[3],                            // api_keys: compact count 2+1
        &[0, 0, 0, 0, 0, 11, 0],         // Produce 0..11, no tagged fields
        &[0, 18, 0, 0, 0, 4, 0],         // ApiVersions 0..4, no tagged fields
        &[0, 0, 0, 10],                  // throttle_time_ms: 10
        &[3], // tagged fields: 3 (SupportedFeatures empty = default, not written)
        &[1, 8, 0, 0, 0, 0, 0, 0, 0, 5], // tag 1 FinalizedFeaturesEpoch, size 8, int64 5
        &[2, 9], // tag 2 FinalizedFeatures, size 9 = 1 + 3 + 4 + 1:
        &[2], //   compact array of 1
        &[3, b'm', b'v'], //   name "mv"
        &[0, 7, 0, 1], //   max_version_level 7, min_version_level 1
        &[0], //   no tagged fields
        &[3, 1, 1], // tag 3 ZkMigrationReady, size 1, true
    ]);
    golden(&resp, 3, &body);
    // Header v0: correlation id and no tagged-field byte, although v3 is flexible.
    let frame = cat(&[&[0, 0, 0, 9], &body]);
    let (corr, decoded) =
        decode_response_frame::<ApiVersionsRequest>(Bytes::from(frame.clone()), 3).unwrap();
    assert_eq!((corr, &decoded), (9, &resp));
    let mut out = BytesMut::new();
    encode_response(&mut out, 9, 3, &resp).unwrap();
    assert_eq!(&out[4..], &frame[..]);
}

// ---- Produce -----------------------------------------------------------------

fn produce(
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    index: i32,
) -> ProduceRequest {
    ProduceRequest {
        transactional_id: transactional_id.map(String::from),
        acks,
        timeout_ms,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index,
                records: Some(Bytes::from_static(&[1, 2, 3])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn produce_v3_request() {
    let req = produce(None, -1, 30_000, 0);
    let body = cat(&[
        &[0xff, 0xff],          // transactional_id: null (i16 length -1)
        &[0xff, 0xff],          // acks: -1
        &[0, 0, 0x75, 0x30],    // timeout_ms: 30000
        &[0, 0, 0, 1],          // topic_data: 1 topic
        &[0, 1, b't'],          //   name "t"
        &[0, 0, 0, 1],          //   partition_data: 1 partition
        &[0, 0, 0, 0],          //     index 0
        &[0, 0, 0, 3, 1, 2, 3], //   records: i32 length 3, bytes
    ]);
    golden(&req, 3, &body);
    let want = cat(&[
        &[0, 0, 0, (15 + body.len()) as u8],
        &[0, 0, 0, 3, 0, 0, 0, 7], // api key 0, version 3, correlation id 7
        &[0, 5, b'k', b'r', b'i', b'n', b'g'],
        &body,
    ]);
    assert_eq!(request_frame(&req, 3), want);
}

#[test]
fn produce_v9_request_is_flexible() {
    let req = produce(Some("tx"), 1, 5000, 2);
    let body = cat(&[
        &[3, b't', b'x'],    // transactional_id: compact nullable, length+1 = 3
        &[0, 1],             // acks: 1
        &[0, 0, 0x13, 0x88], // timeout_ms: 5000
        &[2],                // topic_data: compact count 1+1
        &[2, b't'],          //   name: compact "t"
        &[2],                //   partition_data: compact count 1+1
        &[0, 0, 0, 2],       //     index 2
        &[4, 1, 2, 3],       //     records: compact nullable bytes, length+1 = 4
        &[0],                //     partition tagged fields
        &[0],                //   topic tagged fields
        &[0],                // request tagged fields
    ]);
    golden(&req, 9, &body);
    let want = cat(&[
        &[0, 0, 0, (16 + body.len()) as u8],
        &[0, 0, 0, 9, 0, 0, 0, 7],
        &[0, 5, b'k', b'r', b'i', b'n', b'g'],
        &[0], // header v2 tagged fields
        &body,
    ]);
    assert_eq!(request_frame(&req, 9), want);
}

// ---- Metadata ----------------------------------------------------------------

#[test]
fn metadata_v1_request() {
    let some = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("a".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    golden(
        &some,
        1,
        &cat(&[
            &[0, 0, 0, 1], // topics: 1
            &[0, 1, b'a'], //   name "a"
                           // allow_auto_topic_creation: only v4+ (default true, so no error)
        ]),
    );
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    golden(&all, 1, &[0xff, 0xff, 0xff, 0xff]); // topics: null = all topics (nullable from v1)
}

#[test]
fn metadata_v12_request() {
    let id: [u8; 16] = std::array::from_fn(|i| i as u8);
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: id,
            name: None,
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        include_topic_authorized_operations: true,
        ..Default::default()
    };
    golden(
        &req,
        12,
        &cat(&[
            &[2], // topics: compact count 1+1
            &id,  //   topic_id: uuid
            &[0], //   name: compact nullable null (nullable from v10)
            &[0], //   topic tagged fields
            &[0], // allow_auto_topic_creation: false
            &[1], // include_topic_authorized_operations: true
            // include_cluster_authorized_operations: v8-10 only
            &[0], // tagged fields
        ]),
    );
}

#[test]
fn metadata_v1_response() {
    let resp = MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
            ..Default::default()
        }],
        controller_id: 1,
        topics: vec![MetadataResponseTopic {
            error_code: 0,
            name: Some("t".into()),
            is_internal: false,
            partitions: vec![MetadataResponsePartition {
                error_code: 0,
                partition_index: 0,
                leader_id: 1,
                replica_nodes: vec![1],
                isr_nodes: vec![1],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = cat(&[
        // throttle_time_ms: v3+
        &[0, 0, 0, 1],       // brokers: 1
        &[0, 0, 0, 1],       //   node_id 1
        &[0, 1, b'h'],       //   host "h"
        &[0, 0, 0x23, 0x84], //   port 9092
        &[0xff, 0xff],       //   rack: null (v1+)
        // cluster_id: v2+
        &[0, 0, 0, 1], // controller_id: 1 (v1+)
        &[0, 0, 0, 1], // topics: 1
        &[0, 0],       //   error_code 0
        &[0, 1, b't'], //   name "t"
        &[0],          //   is_internal false (v1+)
        &[0, 0, 0, 1], //   partitions: 1
        &[0, 0],       //     error_code
        &[0, 0, 0, 0], //     partition_index 0
        &[0, 0, 0, 1], //     leader_id 1
        //     leader_epoch: v7+
        &[0, 0, 0, 1, 0, 0, 0, 1], // replica_nodes [1]
        &[0, 0, 0, 1, 0, 0, 0, 1], // isr_nodes [1]
    ]);
    golden(&resp, 1, &body);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(
        p.leader_epoch, -1,
        "absent fields decode to their spec default"
    );
    assert_eq!(resp.topics[0].topic_authorized_operations, i32::MIN);
    assert_eq!(resp.cluster_id, None);
}

#[test]
fn metadata_v12_response() {
    let resp = MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
            ..Default::default()
        }],
        cluster_id: None,
        controller_id: 1,
        topics: vec![
            MetadataResponseTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [0x11; 16],
                is_internal: false,
                partitions: vec![MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: 5,
                    replica_nodes: vec![1],
                    isr_nodes: vec![1],
                    offline_replicas: vec![],
                    ..Default::default()
                }],
                ..Default::default()
            },
            MetadataResponseTopic {
                error_code: 100, // UNKNOWN_TOPIC_ID: queried by id, so no name
                name: None,
                topic_id: [0x22; 16],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let body = cat(&[
        &[0, 0, 0, 0],       // throttle_time_ms
        &[2],                // brokers: compact 1
        &[0, 0, 0, 1],       //   node_id
        &[2, b'h'],          //   host: compact "h"
        &[0, 0, 0x23, 0x84], //   port 9092
        &[0],                //   rack: compact null
        &[0],                //   tagged fields
        &[0],                // cluster_id: compact null
        &[0, 0, 0, 1],       // controller_id
        &[3],                // topics: compact 2
        &[0, 0],             //   error_code
        &[2, b't'],          //   name "t"
        &[0x11; 16],         //   topic_id
        &[0],                //   is_internal
        &[2],                //   partitions: compact 1
        &[0, 0],             //     error_code
        &[0, 0, 0, 0],       //     partition_index
        &[0, 0, 0, 1],       //     leader_id
        &[0, 0, 0, 5],       //     leader_epoch 5
        &[2, 0, 0, 0, 1],    //     replica_nodes: compact [1]
        &[2, 0, 0, 0, 1],    //     isr_nodes: compact [1]
        &[1],                //     offline_replicas: compact []
        &[0],                //     tagged fields
        &[0x80, 0, 0, 0],    //   topic_authorized_operations: default i32::MIN
        &[0],                //   tagged fields
        &[0, 0x64],          //   error_code 100
        &[0],                //   name: null (nullable from v12)
        &[0x22; 16],         //   topic_id
        &[0],                //   is_internal
        &[1],                //   partitions: compact []
        &[0x80, 0, 0, 0],    //   topic_authorized_operations
        &[0],                //   tagged fields
        // cluster_authorized_operations: v8-10 only
        &[0], // tagged fields
    ]);
    golden(&resp, 12, &body);
    // Header v1 in flexible versions: correlation id, then tagged fields.
    let frame = cat(&[&[0, 0, 0, 3], &[0], &body]);
    let (corr, decoded) = decode_response_frame::<MetadataRequest>(Bytes::from(frame), 12).unwrap();
    assert_eq!((corr, decoded), (3, resp));
}
