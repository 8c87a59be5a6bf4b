//! What the generated code promises beyond round trips: version gating of
//! fields, nullability, spec defaults, tagged fields (known, unknown, order),
//! zero-copy records, and bounded decoding of hostile input.

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{Decodable, Encodable};
use kring_protocol::messages::create_topics::CreatableTopicResult;
use kring_protocol::messages::fetch::{FetchPartition, FetchTopic, ReplicaState};
use kring_protocol::messages::metadata::MetadataRequestTopic;
use kring_protocol::messages::produce::{
    LeaderIdAndEpoch, PartitionProduceData, PartitionProduceResponse, TopicProduceData,
    TopicProduceResponse,
};
use kring_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, CreateTopicsResponse, FetchRequest,
    InitProducerIdResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader,
};
use kring_protocol::primitives::RawTaggedField;
use kring_protocol::{DecodeError, EncodeError};

fn encode<E: Encodable>(value: &E, version: i16) -> Result<Bytes, EncodeError> {
    let len = value.encoded_len(version)?;
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version)?;
    assert_eq!(buf.len(), len);
    Ok(buf.freeze())
}

#[test]
fn defaults_come_from_the_spec() {
    let m = MetadataRequest::default();
    assert!(m.allow_auto_topic_creation, "default true");
    assert_eq!(
        m.topics,
        Some(vec![]),
        "nullable array without default: empty, not null"
    );
    let f = FetchRequest::default();
    assert_eq!(f.replica_id, -1);
    assert_eq!(f.max_bytes, 0x7fff_ffff);
    assert_eq!(f.session_epoch, -1);
    assert_eq!(f.cluster_id, None, "default null");
    assert_eq!(
        f.replica_state,
        ReplicaState {
            replica_id: -1,
            replica_epoch: -1,
            ..Default::default()
        }
    );
    assert_eq!(FetchPartition::default().last_fetched_epoch, -1);
    assert_eq!(CreateTopicsRequest::default().timeout_ms, 60_000);
    assert_eq!(InitProducerIdResponse::default().producer_id, -1);
    assert_eq!(MetadataResponse::default().cluster_id, None);
    assert_eq!(RequestHeader::default().client_id.as_deref(), Some(""));
    assert_eq!(PartitionProduceResponse::default().log_append_time_ms, -1);
    assert_eq!(PartitionProduceData::default().records, None);
}

#[test]
fn a_non_default_value_in_a_missing_non_ignorable_field_is_an_error() {
    // AllowAutoTopicCreation exists from v4 and is not ignorable.
    let mut req = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert_eq!(
        encode(&req, 3),
        Err(EncodeError::FieldNotInVersion {
            field: "AllowAutoTopicCreation",
            version: 3
        })
    );
    assert!(encode(&req, 4).is_ok());
    req.allow_auto_topic_creation = true; // the default: fine in v3
    assert!(encode(&req, 3).is_ok());
    // IncludeClusterAuthorizedOperations exists in v8-10 only.
    let req = MetadataRequest {
        include_cluster_authorized_operations: true,
        ..Default::default()
    };
    assert!(encode(&req, 10).is_ok());
    assert!(matches!(
        encode(&req, 11),
        Err(EncodeError::FieldNotInVersion { .. })
    ));
    assert!(matches!(
        encode(&req, 7),
        Err(EncodeError::FieldNotInVersion { .. })
    ));
    // TransactionalId (v3+) in a v2 ProduceRequest.
    let req = ProduceRequest {
        transactional_id: Some("tx".into()),
        ..Default::default()
    };
    assert_eq!(
        encode(&req, 2),
        Err(EncodeError::FieldNotInVersion {
            field: "TransactionalId",
            version: 2
        })
    );
}

#[test]
fn ignorable_fields_are_dropped_silently() {
    // ThrottleTimeMs is v1+ and ignorable; ClientSoftwareName v3+ and ignorable.
    let resp = ProduceResponse {
        throttle_time_ms: 100,
        ..Default::default()
    };
    let bytes = encode(&resp, 0).unwrap();
    assert_eq!(
        &bytes[..],
        &[0, 0, 0, 0],
        "v0: just an empty responses array"
    );
    let req = ApiVersionsRequest {
        client_software_name: "kring".into(),
        ..Default::default()
    };
    assert!(encode(&req, 2).unwrap().is_empty());
}

#[test]
fn tagged_fields_in_missing_versions_are_checked_too() {
    // CurrentLeader is a tagged field of v10+ and not ignorable.
    let part = PartitionProduceResponse {
        current_leader: LeaderIdAndEpoch {
            leader_id: 3,
            leader_epoch: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![part],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(matches!(
        encode(&resp, 9),
        Err(EncodeError::FieldNotInVersion {
            field: "CurrentLeader",
            ..
        })
    ));
    let bytes = encode(&resp, 10).unwrap();
    let back = ProduceResponse::decode(&mut bytes.clone(), 10).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn null_is_checked_per_version() {
    // Metadata topic names are nullable from v10 only.
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: None,
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert_eq!(
        encode(&req, 9),
        Err(EncodeError::NullNotAllowed {
            field: "Name",
            version: 9
        })
    );
    assert!(encode(&req, 10).is_ok());
    // The topics array itself is nullable from v1.
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        encode(&all, 0),
        Err(EncodeError::NullNotAllowed {
            field: "Topics",
            version: 0
        })
    );
    // Decoding a null where the version forbids it is an error, too:
    // v0 topics array with length -1.
    let mut buf = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        MetadataRequest::decode(&mut buf, 0),
        Err(DecodeError::UnexpectedNull("Topics"))
    );
    // v9 topic with a null name (i16 -1 is a classic null... v9 is compact: 0).
    let mut buf = Bytes::from_static(&[2, 0, 0, 1, 0, 0]);
    assert_eq!(
        MetadataRequest::decode(&mut buf, 9),
        Err(DecodeError::UnexpectedNull("Name"))
    );
    // CreateTopicsResponse ErrorMessage: nullableVersions 0+ but only present from v1.
    let resp = CreateTopicsResponse {
        topics: vec![CreatableTopicResult {
            name: "t".into(),
            error_message: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    // It is ignorable, so v0 drops it; v1+ writes the null.
    assert_eq!(
        &encode(&resp, 0).unwrap()[..],
        &[0, 0, 0, 1, 0, 1, b't', 0, 0]
    );
    assert_eq!(
        &encode(&resp, 1).unwrap()[7..],
        &[0, 0, 0xff, 0xff],
        "error code, null message"
    );
}

fn produce_v9() -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(b"batch")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn unknown_tagged_fields_survive_a_round_trip_at_every_level() {
    let mut req = produce_v9();
    req.unknown_tagged_fields = vec![
        RawTaggedField {
            tag: 7,
            data: Bytes::from_static(b"top"),
        },
        RawTaggedField {
            tag: 90,
            data: Bytes::new(),
        },
    ];
    req.topic_data[0].unknown_tagged_fields = vec![RawTaggedField {
        tag: 0,
        data: Bytes::from_static(b"t"),
    }];
    req.topic_data[0].partition_data[0].unknown_tagged_fields = vec![RawTaggedField {
        tag: 300,
        data: Bytes::from_static(&[1; 200]),
    }];
    let bytes = encode(&req, 9).unwrap();
    // The request ends with its tagged fields: count 2, tag 7 size 3 "top", tag 90 size 0.
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[2, 7, 3, b't', b'o', b'p', 90, 0]
    );
    let back = ProduceRequest::decode(&mut bytes.clone(), 9).unwrap();
    assert_eq!(back, req);
    assert_eq!(encode(&back, 9).unwrap(), bytes);
    // Not expressible in a non-flexible version.
    assert_eq!(
        encode(&req, 8),
        Err(EncodeError::FieldNotInVersion {
            field: "unknown_tagged_fields",
            version: 8
        })
    );
}

#[test]
fn unknown_tagged_fields_are_written_in_tag_order_merged_with_known_ones() {
    // CreatableTopicResult knows tag 0 (TopicConfigErrorCode) in v5+.
    let mut topic = CreatableTopicResult {
        name: "t".into(),
        topic_config_error_code: 9,
        ..Default::default()
    };
    topic.unknown_tagged_fields = vec![
        RawTaggedField {
            tag: 5,
            data: Bytes::from_static(b"b"),
        },
        RawTaggedField {
            tag: 2,
            data: Bytes::from_static(b"a"),
        },
    ];
    let bytes = encode(&topic, 5).unwrap();
    let tail = [3, 0, 2, 0, 9, 2, 1, b'a', 5, 1, b'b'];
    assert_eq!(&bytes[bytes.len() - tail.len()..], &tail);
    let back = CreatableTopicResult::decode(&mut bytes.clone(), 5).unwrap();
    assert_eq!(back.topic_config_error_code, 9);
    assert_eq!(
        back.unknown_tagged_fields
            .iter()
            .map(|f| f.tag)
            .collect::<Vec<_>>(),
        [2, 5]
    );
    // A known tag, or the same tag twice, cannot be written as unknown.
    topic.unknown_tagged_fields = vec![RawTaggedField {
        tag: 0,
        data: Bytes::from_static(&[0, 1]),
    }];
    assert_eq!(encode(&topic, 5), Err(EncodeError::DuplicateTag { tag: 0 }));
    topic.unknown_tagged_fields = vec![
        RawTaggedField {
            tag: 4,
            data: Bytes::new()
        };
        2
    ];
    assert_eq!(encode(&topic, 5), Err(EncodeError::DuplicateTag { tag: 4 }));
}

#[test]
fn default_tagged_fields_are_not_written() {
    let topic = CreatableTopicResult {
        name: "t".into(),
        ..Default::default()
    };
    let bytes = encode(&topic, 5).unwrap();
    assert_eq!(*bytes.last().unwrap(), 0, "no tagged fields");
}

#[test]
fn tagged_fields_out_of_order_or_with_extra_bytes_are_rejected() {
    let mut topic = CreatableTopicResult {
        name: "t".into(),
        ..Default::default()
    };
    topic.unknown_tagged_fields = vec![RawTaggedField {
        tag: 3,
        data: Bytes::new(),
    }];
    let good = encode(&topic, 5).unwrap();
    let body = &good[..good.len() - 3]; // without the tagged section [1, 3, 0]
    let with = |section: &[u8]| Bytes::from([body, section].concat());
    // Two fields, tag 3 before tag 1.
    let err = CreatableTopicResult::decode(&mut with(&[2, 3, 0, 1, 0]), 5).unwrap_err();
    assert!(
        matches!(err, DecodeError::InvalidValue { value: 1, .. }),
        "{err}"
    );
    // Same tag twice.
    assert!(CreatableTopicResult::decode(&mut with(&[2, 3, 0, 3, 0]), 5).is_err());
    // Known tag 0 (int16) with 3 bytes of data.
    assert_eq!(
        CreatableTopicResult::decode(&mut with(&[1, 0, 3, 0, 7, 9]), 5),
        Err(DecodeError::TrailingBytes(1))
    );
    // Known tag 0 with too few bytes.
    assert!(CreatableTopicResult::decode(&mut with(&[1, 0, 1, 0]), 5).is_err());
    // And the well-formed one decodes.
    assert_eq!(
        CreatableTopicResult::decode(&mut with(&[1, 0, 2, 0, 7]), 5)
            .unwrap()
            .topic_config_error_code,
        7
    );
}

#[test]
fn records_are_split_from_the_input_without_copying() {
    let bytes = encode(&produce_v9(), 9).unwrap();
    let back = ProduceRequest::decode(&mut bytes.clone(), 9).unwrap();
    let records = back.topic_data[0].partition_data[0]
        .records
        .clone()
        .unwrap();
    assert_eq!(&records[..], b"batch");
    let start = records.as_ptr() as usize - bytes.as_ptr() as usize;
    assert!(start < bytes.len(), "records point into the input buffer");
    assert_eq!(&bytes[start..start + 5], b"batch");
}

#[test]
fn hostile_array_lengths_fail_without_allocating() {
    // FetchRequest v4: replica_id, max_wait, min_bytes, max_bytes, isolation,
    // then topics claiming i32::MAX elements with 2 bytes left.
    let mut input = vec![
        0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0,
    ];
    input.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
    let err = FetchRequest::decode(&mut Bytes::from(input), 4).unwrap_err();
    assert!(matches!(err, DecodeError::UnexpectedEof { .. }), "{err}");
    // Same in a compact array (v12): count 2^32-2 as a varint.
    let topics = FetchTopic::default();
    let _ = topics; // the element type, for the reader
    let mut input = vec![
        0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff,
        0xff, 0xff,
    ];
    input.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
    assert!(FetchRequest::decode(&mut Bytes::from(input), 12).is_err());
}

#[test]
fn strings_too_long_for_their_prefix_are_an_encode_error() {
    let req = ProduceRequest {
        transactional_id: Some("x".repeat(40_000)),
        ..Default::default()
    };
    assert!(matches!(
        encode(&req, 3),
        Err(EncodeError::TooLong {
            field: "TransactionalId",
            ..
        })
    ));
    assert!(encode(&req, 9).is_ok(), "compact strings can be longer");
}
