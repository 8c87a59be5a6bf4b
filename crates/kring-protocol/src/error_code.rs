//! The Kafka error code table.
//!
//! Why one table: every response carries `i16` error codes, and what a
//! client does with one (retry, refresh metadata, fail the batch) hinges on
//! two facts about it — its name for logs and whether it is *retriable*.
//! Keeping code, name, retriable flag and a short description in one row
//! (like franz-go's `kerr`) makes the mapping reviewable at a glance.
//!
//! [`ErrorCode`] is a newtype over the wire `i16`, so codes newer than this
//! table survive a round trip and print as `unknown(<code>)` instead of
//! being mapped to something else. The retriable flags follow the Java
//! client: a code is retriable when its exception class extends
//! `RetriableException` (Kafka 4.x). Retriable does not mean "safe to
//! retry blindly" for every request: an idempotent producer still decides
//! per error (for example OUT_OF_ORDER_SEQUENCE_NUMBER is not retriable).

use std::fmt;

/// A Kafka protocol error code, as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(pub i16);

/// `(code, name, retriable, short description)`, one row per code from -1
/// upwards without gaps, so a code's row is at `code + 1`.
const TABLE: [(i16, &str, bool, &str); 135] = [
    (-1, "UNKNOWN_SERVER_ERROR", false, "unexpected server error"),
    (0, "NONE", false, "no error"),
    (
        1,
        "OFFSET_OUT_OF_RANGE",
        false,
        "offset outside the partition's range",
    ),
    (
        2,
        "CORRUPT_MESSAGE",
        true,
        "corrupt message (CRC, size or null key on a compacted topic)",
    ),
    (
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        true,
        "topic or partition not hosted by this broker",
    ),
    (4, "INVALID_FETCH_SIZE", false, "invalid fetch size"),
    (
        5,
        "LEADER_NOT_AVAILABLE",
        true,
        "no leader for the partition (election in progress)",
    ),
    (
        6,
        "NOT_LEADER_OR_FOLLOWER",
        true,
        "broker is not the leader or a follower of the partition",
    ),
    (7, "REQUEST_TIMED_OUT", true, "request timed out"),
    (8, "BROKER_NOT_AVAILABLE", false, "broker not available"),
    (9, "REPLICA_NOT_AVAILABLE", true, "replica not available"),
    (
        10,
        "MESSAGE_TOO_LARGE",
        false,
        "message larger than the broker accepts",
    ),
    (
        11,
        "STALE_CONTROLLER_EPOCH",
        false,
        "stale controller epoch",
    ),
    (
        12,
        "OFFSET_METADATA_TOO_LARGE",
        false,
        "offset commit metadata too large",
    ),
    (
        13,
        "NETWORK_EXCEPTION",
        true,
        "server disconnected before responding",
    ),
    (
        14,
        "COORDINATOR_LOAD_IN_PROGRESS",
        true,
        "coordinator is still loading",
    ),
    (
        15,
        "COORDINATOR_NOT_AVAILABLE",
        true,
        "coordinator not available",
    ),
    (16, "NOT_COORDINATOR", true, "not the coordinator"),
    (17, "INVALID_TOPIC_EXCEPTION", false, "invalid topic"),
    (
        18,
        "RECORD_LIST_TOO_LARGE",
        false,
        "batch larger than the log segment size",
    ),
    (
        19,
        "NOT_ENOUGH_REPLICAS",
        true,
        "fewer in-sync replicas than min.insync.replicas",
    ),
    (
        20,
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        true,
        "written, but to fewer in-sync replicas than required",
    ),
    (21, "INVALID_REQUIRED_ACKS", false, "invalid required acks"),
    (22, "ILLEGAL_GENERATION", false, "illegal group generation"),
    (
        23,
        "INCONSISTENT_GROUP_PROTOCOL",
        false,
        "inconsistent group protocol",
    ),
    (24, "INVALID_GROUP_ID", false, "invalid group id"),
    (25, "UNKNOWN_MEMBER_ID", false, "unknown member id"),
    (
        26,
        "INVALID_SESSION_TIMEOUT",
        false,
        "session timeout outside the broker's range",
    ),
    (27, "REBALANCE_IN_PROGRESS", false, "group is rebalancing"),
    (
        28,
        "INVALID_COMMIT_OFFSET_SIZE",
        false,
        "invalid commit offset size",
    ),
    (
        29,
        "TOPIC_AUTHORIZATION_FAILED",
        false,
        "topic authorization failed",
    ),
    (
        30,
        "GROUP_AUTHORIZATION_FAILED",
        false,
        "group authorization failed",
    ),
    (
        31,
        "CLUSTER_AUTHORIZATION_FAILED",
        false,
        "cluster authorization failed",
    ),
    (
        32,
        "INVALID_TIMESTAMP",
        false,
        "timestamp out of the acceptable range",
    ),
    (
        33,
        "UNSUPPORTED_SASL_MECHANISM",
        false,
        "unsupported SASL mechanism",
    ),
    (34, "ILLEGAL_SASL_STATE", false, "illegal SASL state"),
    (35, "UNSUPPORTED_VERSION", false, "unsupported API version"),
    (36, "TOPIC_ALREADY_EXISTS", false, "topic already exists"),
    (
        37,
        "INVALID_PARTITIONS",
        false,
        "invalid number of partitions",
    ),
    (
        38,
        "INVALID_REPLICATION_FACTOR",
        false,
        "invalid replication factor",
    ),
    (
        39,
        "INVALID_REPLICA_ASSIGNMENT",
        false,
        "invalid replica assignment",
    ),
    (40, "INVALID_CONFIG", false, "invalid configuration"),
    (41, "NOT_CONTROLLER", true, "not the controller"),
    (42, "INVALID_REQUEST", false, "invalid (malformed) request"),
    (
        43,
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        false,
        "unsupported for the message format",
    ),
    (
        44,
        "POLICY_VIOLATION",
        false,
        "request violates the configured policy",
    ),
    (
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        false,
        "out-of-order sequence number",
    ),
    (
        46,
        "DUPLICATE_SEQUENCE_NUMBER",
        false,
        "duplicate sequence number",
    ),
    (
        47,
        "INVALID_PRODUCER_EPOCH",
        false,
        "producer epoch is stale",
    ),
    (48, "INVALID_TXN_STATE", false, "invalid transaction state"),
    (
        49,
        "INVALID_PRODUCER_ID_MAPPING",
        false,
        "producer id not mapped to this transactional id",
    ),
    (
        50,
        "INVALID_TRANSACTION_TIMEOUT",
        false,
        "invalid transaction timeout",
    ),
    (
        51,
        "CONCURRENT_TRANSACTIONS",
        true,
        "another transaction operation is in progress",
    ),
    (
        52,
        "TRANSACTION_COORDINATOR_FENCED",
        false,
        "transaction coordinator fenced",
    ),
    (
        53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        false,
        "transactional id authorization failed",
    ),
    (
        54,
        "SECURITY_DISABLED",
        false,
        "security features are disabled",
    ),
    (
        55,
        "OPERATION_NOT_ATTEMPTED",
        false,
        "operation not attempted",
    ),
    (
        56,
        "KAFKA_STORAGE_ERROR",
        true,
        "storage error on the broker",
    ),
    (57, "LOG_DIR_NOT_FOUND", false, "log directory not found"),
    (
        58,
        "SASL_AUTHENTICATION_FAILED",
        false,
        "SASL authentication failed",
    ),
    (59, "UNKNOWN_PRODUCER_ID", false, "unknown producer id"),
    (
        60,
        "REASSIGNMENT_IN_PROGRESS",
        false,
        "partition reassignment in progress",
    ),
    (
        61,
        "DELEGATION_TOKEN_AUTH_DISABLED",
        false,
        "delegation token auth disabled",
    ),
    (
        62,
        "DELEGATION_TOKEN_NOT_FOUND",
        false,
        "delegation token not found",
    ),
    (
        63,
        "DELEGATION_TOKEN_OWNER_MISMATCH",
        false,
        "delegation token owner mismatch",
    ),
    (
        64,
        "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        false,
        "delegation token request not allowed",
    ),
    (
        65,
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        false,
        "delegation token authorization failed",
    ),
    (
        66,
        "DELEGATION_TOKEN_EXPIRED",
        false,
        "delegation token expired",
    ),
    (
        67,
        "INVALID_PRINCIPAL_TYPE",
        false,
        "invalid principal type",
    ),
    (68, "NON_EMPTY_GROUP", false, "group is not empty"),
    (69, "GROUP_ID_NOT_FOUND", false, "group id not found"),
    (
        70,
        "FETCH_SESSION_ID_NOT_FOUND",
        true,
        "fetch session id not found",
    ),
    (
        71,
        "INVALID_FETCH_SESSION_EPOCH",
        true,
        "invalid fetch session epoch",
    ),
    (
        72,
        "LISTENER_NOT_FOUND",
        true,
        "listener not found on the leader",
    ),
    (
        73,
        "TOPIC_DELETION_DISABLED",
        false,
        "topic deletion disabled",
    ),
    (
        74,
        "FENCED_LEADER_EPOCH",
        true,
        "leader epoch in the request is older than the broker's",
    ),
    (
        75,
        "UNKNOWN_LEADER_EPOCH",
        true,
        "leader epoch in the request is newer than the broker's",
    ),
    (
        76,
        "UNSUPPORTED_COMPRESSION_TYPE",
        false,
        "unsupported compression type",
    ),
    (77, "STALE_BROKER_EPOCH", false, "stale broker epoch"),
    (
        78,
        "OFFSET_NOT_AVAILABLE",
        true,
        "offset not yet available after a leader change",
    ),
    (79, "MEMBER_ID_REQUIRED", false, "member id required"),
    (
        80,
        "PREFERRED_LEADER_NOT_AVAILABLE",
        true,
        "preferred leader not available",
    ),
    (
        81,
        "GROUP_MAX_SIZE_REACHED",
        false,
        "group max size reached",
    ),
    (
        82,
        "FENCED_INSTANCE_ID",
        false,
        "fenced static member instance id",
    ),
    (
        83,
        "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        true,
        "eligible leaders not available",
    ),
    (
        84,
        "ELECTION_NOT_NEEDED",
        true,
        "leader election not needed",
    ),
    (
        85,
        "NO_REASSIGNMENT_IN_PROGRESS",
        false,
        "no partition reassignment in progress",
    ),
    (
        86,
        "GROUP_SUBSCRIBED_TO_TOPIC",
        false,
        "group is subscribed to the topic",
    ),
    (
        87,
        "INVALID_RECORD",
        false,
        "record failed broker validation",
    ),
    (
        88,
        "UNSTABLE_OFFSET_COMMIT",
        true,
        "unstable offsets pending",
    ),
    (
        89,
        "THROTTLING_QUOTA_EXCEEDED",
        true,
        "throttling quota exceeded",
    ),
    (
        90,
        "PRODUCER_FENCED",
        false,
        "producer fenced by a newer instance",
    ),
    (91, "RESOURCE_NOT_FOUND", false, "resource not found"),
    (92, "DUPLICATE_RESOURCE", false, "duplicate resource"),
    (
        93,
        "UNACCEPTABLE_CREDENTIAL",
        false,
        "unacceptable credential",
    ),
    (
        94,
        "INCONSISTENT_VOTER_SET",
        false,
        "inconsistent voter set",
    ),
    (
        95,
        "INVALID_UPDATE_VERSION",
        false,
        "invalid update version",
    ),
    (96, "FEATURE_UPDATE_FAILED", false, "feature update failed"),
    (
        97,
        "PRINCIPAL_DESERIALIZATION_FAILURE",
        false,
        "principal deserialization failed",
    ),
    (98, "SNAPSHOT_NOT_FOUND", false, "snapshot not found"),
    (99, "POSITION_OUT_OF_RANGE", false, "position out of range"),
    (100, "UNKNOWN_TOPIC_ID", true, "unknown topic id"),
    (
        101,
        "DUPLICATE_BROKER_REGISTRATION",
        false,
        "duplicate broker registration",
    ),
    (
        102,
        "BROKER_ID_NOT_REGISTERED",
        false,
        "broker id not registered",
    ),
    (103, "INCONSISTENT_TOPIC_ID", true, "inconsistent topic id"),
    (
        104,
        "INCONSISTENT_CLUSTER_ID",
        false,
        "inconsistent cluster id",
    ),
    (
        105,
        "TRANSACTIONAL_ID_NOT_FOUND",
        false,
        "transactional id not found",
    ),
    (
        106,
        "FETCH_SESSION_TOPIC_ID_ERROR",
        true,
        "fetch session topic id error",
    ),
    (107, "INELIGIBLE_REPLICA", false, "ineligible replica"),
    (108, "NEW_LEADER_ELECTED", false, "new leader elected"),
    (
        109,
        "OFFSET_MOVED_TO_TIERED_STORAGE",
        false,
        "offset moved to tiered storage",
    ),
    (110, "FENCED_MEMBER_EPOCH", false, "fenced member epoch"),
    (
        111,
        "UNRELEASED_INSTANCE_ID",
        false,
        "unreleased instance id",
    ),
    (112, "UNSUPPORTED_ASSIGNOR", false, "unsupported assignor"),
    (113, "STALE_MEMBER_EPOCH", false, "stale member epoch"),
    (
        114,
        "MISMATCHED_ENDPOINT_TYPE",
        false,
        "mismatched endpoint type",
    ),
    (
        115,
        "UNSUPPORTED_ENDPOINT_TYPE",
        false,
        "unsupported endpoint type",
    ),
    (116, "UNKNOWN_CONTROLLER_ID", false, "unknown controller id"),
    (
        117,
        "UNKNOWN_SUBSCRIPTION_ID",
        false,
        "unknown subscription id",
    ),
    (
        118,
        "TELEMETRY_TOO_LARGE",
        false,
        "telemetry payload too large",
    ),
    (119, "INVALID_REGISTRATION", false, "invalid registration"),
    (
        120,
        "TRANSACTION_ABORTABLE",
        false,
        "transaction must be aborted",
    ),
    (121, "INVALID_RECORD_STATE", false, "invalid record state"),
    (
        122,
        "SHARE_SESSION_NOT_FOUND",
        true,
        "share session not found",
    ),
    (
        123,
        "INVALID_SHARE_SESSION_EPOCH",
        true,
        "invalid share session epoch",
    ),
    (124, "FENCED_STATE_EPOCH", false, "fenced state epoch"),
    (125, "INVALID_VOTER_KEY", false, "invalid voter key"),
    (126, "DUPLICATE_VOTER", false, "duplicate voter"),
    (127, "VOTER_NOT_FOUND", false, "voter not found"),
    (
        128,
        "INVALID_REGULAR_EXPRESSION",
        false,
        "invalid regular expression",
    ),
    (
        129,
        "REBOOTSTRAP_REQUIRED",
        false,
        "client must rebootstrap its metadata",
    ),
    (
        130,
        "STREAMS_INVALID_TOPOLOGY",
        false,
        "invalid streams topology",
    ),
    (
        131,
        "STREAMS_INVALID_TOPOLOGY_EPOCH",
        false,
        "invalid streams topology epoch",
    ),
    (
        132,
        "STREAMS_TOPOLOGY_FENCED",
        false,
        "streams topology fenced",
    ),
    (
        133,
        "SHARE_SESSION_LIMIT_REACHED",
        true,
        "share session limit reached",
    ),
];

impl ErrorCode {
    /// -1: unexpected server error.
    pub const UNKNOWN_SERVER_ERROR: ErrorCode = ErrorCode(-1);
    /// 0: no error.
    pub const NONE: ErrorCode = ErrorCode(0);
    /// 1: offset outside the partition's range.
    pub const OFFSET_OUT_OF_RANGE: ErrorCode = ErrorCode(1);
    /// 2: corrupt message (CRC, size or null key on a compacted topic).
    pub const CORRUPT_MESSAGE: ErrorCode = ErrorCode(2);
    /// 3: topic or partition not hosted by this broker.
    pub const UNKNOWN_TOPIC_OR_PARTITION: ErrorCode = ErrorCode(3);
    /// 4: invalid fetch size.
    pub const INVALID_FETCH_SIZE: ErrorCode = ErrorCode(4);
    /// 5: no leader for the partition (election in progress).
    pub const LEADER_NOT_AVAILABLE: ErrorCode = ErrorCode(5);
    /// 6: broker is not the leader or a follower of the partition.
    pub const NOT_LEADER_OR_FOLLOWER: ErrorCode = ErrorCode(6);
    /// 7: request timed out.
    pub const REQUEST_TIMED_OUT: ErrorCode = ErrorCode(7);
    /// 8: broker not available.
    pub const BROKER_NOT_AVAILABLE: ErrorCode = ErrorCode(8);
    /// 9: replica not available.
    pub const REPLICA_NOT_AVAILABLE: ErrorCode = ErrorCode(9);
    /// 10: message larger than the broker accepts.
    pub const MESSAGE_TOO_LARGE: ErrorCode = ErrorCode(10);
    /// 11: stale controller epoch.
    pub const STALE_CONTROLLER_EPOCH: ErrorCode = ErrorCode(11);
    /// 12: offset commit metadata too large.
    pub const OFFSET_METADATA_TOO_LARGE: ErrorCode = ErrorCode(12);
    /// 13: server disconnected before responding.
    pub const NETWORK_EXCEPTION: ErrorCode = ErrorCode(13);
    /// 14: coordinator is still loading.
    pub const COORDINATOR_LOAD_IN_PROGRESS: ErrorCode = ErrorCode(14);
    /// 15: coordinator not available.
    pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode(15);
    /// 16: not the coordinator.
    pub const NOT_COORDINATOR: ErrorCode = ErrorCode(16);
    /// 17: invalid topic.
    pub const INVALID_TOPIC_EXCEPTION: ErrorCode = ErrorCode(17);
    /// 18: batch larger than the log segment size.
    pub const RECORD_LIST_TOO_LARGE: ErrorCode = ErrorCode(18);
    /// 19: fewer in-sync replicas than min.insync.replicas.
    pub const NOT_ENOUGH_REPLICAS: ErrorCode = ErrorCode(19);
    /// 20: written, but to fewer in-sync replicas than required.
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode = ErrorCode(20);
    /// 21: invalid required acks.
    pub const INVALID_REQUIRED_ACKS: ErrorCode = ErrorCode(21);
    /// 22: illegal group generation.
    pub const ILLEGAL_GENERATION: ErrorCode = ErrorCode(22);
    /// 23: inconsistent group protocol.
    pub const INCONSISTENT_GROUP_PROTOCOL: ErrorCode = ErrorCode(23);
    /// 24: invalid group id.
    pub const INVALID_GROUP_ID: ErrorCode = ErrorCode(24);
    /// 25: unknown member id.
    pub const UNKNOWN_MEMBER_ID: ErrorCode = ErrorCode(25);
    /// 26: session timeout outside the broker's range.
    pub const INVALID_SESSION_TIMEOUT: ErrorCode = ErrorCode(26);
    /// 27: group is rebalancing.
    pub const REBALANCE_IN_PROGRESS: ErrorCode = ErrorCode(27);
    /// 28: invalid commit offset size.
    pub const INVALID_COMMIT_OFFSET_SIZE: ErrorCode = ErrorCode(28);
    /// 29: topic authorization failed.
    pub const TOPIC_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(29);
    /// 30: group authorization failed.
    pub const GROUP_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(30);
    /// 31: cluster authorization failed.
    pub const CLUSTER_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(31);
    /// 32: timestamp out of the acceptable range.
    pub const INVALID_TIMESTAMP: ErrorCode = ErrorCode(32);
    /// 33: unsupported SASL mechanism.
    pub const UNSUPPORTED_SASL_MECHANISM: ErrorCode = ErrorCode(33);
    /// 34: illegal SASL state.
    pub const ILLEGAL_SASL_STATE: ErrorCode = ErrorCode(34);
    /// 35: unsupported API version.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(35);
    /// 36: topic already exists.
    pub const TOPIC_ALREADY_EXISTS: ErrorCode = ErrorCode(36);
    /// 37: invalid number of partitions.
    pub const INVALID_PARTITIONS: ErrorCode = ErrorCode(37);
    /// 38: invalid replication factor.
    pub const INVALID_REPLICATION_FACTOR: ErrorCode = ErrorCode(38);
    /// 39: invalid replica assignment.
    pub const INVALID_REPLICA_ASSIGNMENT: ErrorCode = ErrorCode(39);
    /// 40: invalid configuration.
    pub const INVALID_CONFIG: ErrorCode = ErrorCode(40);
    /// 41: not the controller.
    pub const NOT_CONTROLLER: ErrorCode = ErrorCode(41);
    /// 42: invalid (malformed) request.
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(42);
    /// 43: unsupported for the message format.
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: ErrorCode = ErrorCode(43);
    /// 44: request violates the configured policy.
    pub const POLICY_VIOLATION: ErrorCode = ErrorCode(44);
    /// 45: out-of-order sequence number.
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: ErrorCode = ErrorCode(45);
    /// 46: duplicate sequence number.
    pub const DUPLICATE_SEQUENCE_NUMBER: ErrorCode = ErrorCode(46);
    /// 47: producer epoch is stale.
    pub const INVALID_PRODUCER_EPOCH: ErrorCode = ErrorCode(47);
    /// 48: invalid transaction state.
    pub const INVALID_TXN_STATE: ErrorCode = ErrorCode(48);
    /// 49: producer id not mapped to this transactional id.
    pub const INVALID_PRODUCER_ID_MAPPING: ErrorCode = ErrorCode(49);
    /// 50: invalid transaction timeout.
    pub const INVALID_TRANSACTION_TIMEOUT: ErrorCode = ErrorCode(50);
    /// 51: another transaction operation is in progress.
    pub const CONCURRENT_TRANSACTIONS: ErrorCode = ErrorCode(51);
    /// 52: transaction coordinator fenced.
    pub const TRANSACTION_COORDINATOR_FENCED: ErrorCode = ErrorCode(52);
    /// 53: transactional id authorization failed.
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(53);
    /// 54: security features are disabled.
    pub const SECURITY_DISABLED: ErrorCode = ErrorCode(54);
    /// 55: operation not attempted.
    pub const OPERATION_NOT_ATTEMPTED: ErrorCode = ErrorCode(55);
    /// 56: storage error on the broker.
    pub const KAFKA_STORAGE_ERROR: ErrorCode = ErrorCode(56);
    /// 57: log directory not found.
    pub const LOG_DIR_NOT_FOUND: ErrorCode = ErrorCode(57);
    /// 58: SASL authentication failed.
    pub const SASL_AUTHENTICATION_FAILED: ErrorCode = ErrorCode(58);
    /// 59: unknown producer id.
    pub const UNKNOWN_PRODUCER_ID: ErrorCode = ErrorCode(59);
    /// 60: partition reassignment in progress.
    pub const REASSIGNMENT_IN_PROGRESS: ErrorCode = ErrorCode(60);
    /// 61: delegation token auth disabled.
    pub const DELEGATION_TOKEN_AUTH_DISABLED: ErrorCode = ErrorCode(61);
    /// 62: delegation token not found.
    pub const DELEGATION_TOKEN_NOT_FOUND: ErrorCode = ErrorCode(62);
    /// 63: delegation token owner mismatch.
    pub const DELEGATION_TOKEN_OWNER_MISMATCH: ErrorCode = ErrorCode(63);
    /// 64: delegation token request not allowed.
    pub const DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: ErrorCode = ErrorCode(64);
    /// 65: delegation token authorization failed.
    pub const DELEGATION_TOKEN_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(65);
    /// 66: delegation token expired.
    pub const DELEGATION_TOKEN_EXPIRED: ErrorCode = ErrorCode(66);
    /// 67: invalid principal type.
    pub const INVALID_PRINCIPAL_TYPE: ErrorCode = ErrorCode(67);
    /// 68: group is not empty.
    pub const NON_EMPTY_GROUP: ErrorCode = ErrorCode(68);
    /// 69: group id not found.
    pub const GROUP_ID_NOT_FOUND: ErrorCode = ErrorCode(69);
    /// 70: fetch session id not found.
    pub const FETCH_SESSION_ID_NOT_FOUND: ErrorCode = ErrorCode(70);
    /// 71: invalid fetch session epoch.
    pub const INVALID_FETCH_SESSION_EPOCH: ErrorCode = ErrorCode(71);
    /// 72: listener not found on the leader.
    pub const LISTENER_NOT_FOUND: ErrorCode = ErrorCode(72);
    /// 73: topic deletion disabled.
    pub const TOPIC_DELETION_DISABLED: ErrorCode = ErrorCode(73);
    /// 74: leader epoch in the request is older than the broker's.
    pub const FENCED_LEADER_EPOCH: ErrorCode = ErrorCode(74);
    /// 75: leader epoch in the request is newer than the broker's.
    pub const UNKNOWN_LEADER_EPOCH: ErrorCode = ErrorCode(75);
    /// 76: unsupported compression type.
    pub const UNSUPPORTED_COMPRESSION_TYPE: ErrorCode = ErrorCode(76);
    /// 77: stale broker epoch.
    pub const STALE_BROKER_EPOCH: ErrorCode = ErrorCode(77);
    /// 78: offset not yet available after a leader change.
    pub const OFFSET_NOT_AVAILABLE: ErrorCode = ErrorCode(78);
    /// 79: member id required.
    pub const MEMBER_ID_REQUIRED: ErrorCode = ErrorCode(79);
    /// 80: preferred leader not available.
    pub const PREFERRED_LEADER_NOT_AVAILABLE: ErrorCode = ErrorCode(80);
    /// 81: group max size reached.
    pub const GROUP_MAX_SIZE_REACHED: ErrorCode = ErrorCode(81);
    /// 82: fenced static member instance id.
    pub const FENCED_INSTANCE_ID: ErrorCode = ErrorCode(82);
    /// 83: eligible leaders not available.
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: ErrorCode = ErrorCode(83);
    /// 84: leader election not needed.
    pub const ELECTION_NOT_NEEDED: ErrorCode = ErrorCode(84);
    /// 85: no partition reassignment in progress.
    pub const NO_REASSIGNMENT_IN_PROGRESS: ErrorCode = ErrorCode(85);
    /// 86: group is subscribed to the topic.
    pub const GROUP_SUBSCRIBED_TO_TOPIC: ErrorCode = ErrorCode(86);
    /// 87: record failed broker validation.
    pub const INVALID_RECORD: ErrorCode = ErrorCode(87);
    /// 88: unstable offsets pending.
    pub const UNSTABLE_OFFSET_COMMIT: ErrorCode = ErrorCode(88);
    /// 89: throttling quota exceeded.
    pub const THROTTLING_QUOTA_EXCEEDED: ErrorCode = ErrorCode(89);
    /// 90: producer fenced by a newer instance.
    pub const PRODUCER_FENCED: ErrorCode = ErrorCode(90);
    /// 91: resource not found.
    pub const RESOURCE_NOT_FOUND: ErrorCode = ErrorCode(91);
    /// 92: duplicate resource.
    pub const DUPLICATE_RESOURCE: ErrorCode = ErrorCode(92);
    /// 93: unacceptable credential.
    pub const UNACCEPTABLE_CREDENTIAL: ErrorCode = ErrorCode(93);
    /// 94: inconsistent voter set.
    pub const INCONSISTENT_VOTER_SET: ErrorCode = ErrorCode(94);
    /// 95: invalid update version.
    pub const INVALID_UPDATE_VERSION: ErrorCode = ErrorCode(95);
    /// 96: feature update failed.
    pub const FEATURE_UPDATE_FAILED: ErrorCode = ErrorCode(96);
    /// 97: principal deserialization failed.
    pub const PRINCIPAL_DESERIALIZATION_FAILURE: ErrorCode = ErrorCode(97);
    /// 98: snapshot not found.
    pub const SNAPSHOT_NOT_FOUND: ErrorCode = ErrorCode(98);
    /// 99: position out of range.
    pub const POSITION_OUT_OF_RANGE: ErrorCode = ErrorCode(99);
    /// 100: unknown topic id.
    pub const UNKNOWN_TOPIC_ID: ErrorCode = ErrorCode(100);
    /// 101: duplicate broker registration.
    pub const DUPLICATE_BROKER_REGISTRATION: ErrorCode = ErrorCode(101);
    /// 102: broker id not registered.
    pub const BROKER_ID_NOT_REGISTERED: ErrorCode = ErrorCode(102);
    /// 103: inconsistent topic id.
    pub const INCONSISTENT_TOPIC_ID: ErrorCode = ErrorCode(103);
    /// 104: inconsistent cluster id.
    pub const INCONSISTENT_CLUSTER_ID: ErrorCode = ErrorCode(104);
    /// 105: transactional id not found.
    pub const TRANSACTIONAL_ID_NOT_FOUND: ErrorCode = ErrorCode(105);
    /// 106: fetch session topic id error.
    pub const FETCH_SESSION_TOPIC_ID_ERROR: ErrorCode = ErrorCode(106);
    /// 107: ineligible replica.
    pub const INELIGIBLE_REPLICA: ErrorCode = ErrorCode(107);
    /// 108: new leader elected.
    pub const NEW_LEADER_ELECTED: ErrorCode = ErrorCode(108);
    /// 109: offset moved to tiered storage.
    pub const OFFSET_MOVED_TO_TIERED_STORAGE: ErrorCode = ErrorCode(109);
    /// 110: fenced member epoch.
    pub const FENCED_MEMBER_EPOCH: ErrorCode = ErrorCode(110);
    /// 111: unreleased instance id.
    pub const UNRELEASED_INSTANCE_ID: ErrorCode = ErrorCode(111);
    /// 112: unsupported assignor.
    pub const UNSUPPORTED_ASSIGNOR: ErrorCode = ErrorCode(112);
    /// 113: stale member epoch.
    pub const STALE_MEMBER_EPOCH: ErrorCode = ErrorCode(113);
    /// 114: mismatched endpoint type.
    pub const MISMATCHED_ENDPOINT_TYPE: ErrorCode = ErrorCode(114);
    /// 115: unsupported endpoint type.
    pub const UNSUPPORTED_ENDPOINT_TYPE: ErrorCode = ErrorCode(115);
    /// 116: unknown controller id.
    pub const UNKNOWN_CONTROLLER_ID: ErrorCode = ErrorCode(116);
    /// 117: unknown subscription id.
    pub const UNKNOWN_SUBSCRIPTION_ID: ErrorCode = ErrorCode(117);
    /// 118: telemetry payload too large.
    pub const TELEMETRY_TOO_LARGE: ErrorCode = ErrorCode(118);
    /// 119: invalid registration.
    pub const INVALID_REGISTRATION: ErrorCode = ErrorCode(119);
    /// 120: transaction must be aborted.
    pub const TRANSACTION_ABORTABLE: ErrorCode = ErrorCode(120);
    /// 121: invalid record state.
    pub const INVALID_RECORD_STATE: ErrorCode = ErrorCode(121);
    /// 122: share session not found.
    pub const SHARE_SESSION_NOT_FOUND: ErrorCode = ErrorCode(122);
    /// 123: invalid share session epoch.
    pub const INVALID_SHARE_SESSION_EPOCH: ErrorCode = ErrorCode(123);
    /// 124: fenced state epoch.
    pub const FENCED_STATE_EPOCH: ErrorCode = ErrorCode(124);
    /// 125: invalid voter key.
    pub const INVALID_VOTER_KEY: ErrorCode = ErrorCode(125);
    /// 126: duplicate voter.
    pub const DUPLICATE_VOTER: ErrorCode = ErrorCode(126);
    /// 127: voter not found.
    pub const VOTER_NOT_FOUND: ErrorCode = ErrorCode(127);
    /// 128: invalid regular expression.
    pub const INVALID_REGULAR_EXPRESSION: ErrorCode = ErrorCode(128);
    /// 129: client must rebootstrap its metadata.
    pub const REBOOTSTRAP_REQUIRED: ErrorCode = ErrorCode(129);
    /// 130: invalid streams topology.
    pub const STREAMS_INVALID_TOPOLOGY: ErrorCode = ErrorCode(130);
    /// 131: invalid streams topology epoch.
    pub const STREAMS_INVALID_TOPOLOGY_EPOCH: ErrorCode = ErrorCode(131);
    /// 132: streams topology fenced.
    pub const STREAMS_TOPOLOGY_FENCED: ErrorCode = ErrorCode(132);
    /// 133: share session limit reached.
    pub const SHARE_SESSION_LIMIT_REACHED: ErrorCode = ErrorCode(133);
    /// The code for a wire value. Every `i16` is accepted; codes this table
    /// does not know stay as they are (see [`is_known`](Self::is_known)).
    #[inline]
    pub const fn from_i16(code: i16) -> Self {
        ErrorCode(code)
    }

    /// The wire value.
    #[inline]
    pub const fn code(self) -> i16 {
        self.0
    }

    #[inline]
    fn row(self) -> Option<&'static (i16, &'static str, bool, &'static str)> {
        let index = self.0 as i32 + 1;
        if index < 0 {
            return None;
        }
        TABLE.get(index as usize)
    }

    /// Whether the code is in this table.
    #[inline]
    pub fn is_known(self) -> bool {
        self.row().is_some()
    }

    /// Whether this is [`ErrorCode::NONE`] (success).
    #[inline]
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// `Ok(())` for [`ErrorCode::NONE`], otherwise `Err(self)`.
    #[inline]
    pub const fn into_result(self) -> Result<(), ErrorCode> {
        if self.0 == 0 {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The protocol name (`NOT_LEADER_OR_FOLLOWER`), or `"UNKNOWN"` for a
    /// code this table does not know.
    #[inline]
    pub fn name(self) -> &'static str {
        self.row().map_or("UNKNOWN", |r| r.1)
    }

    /// A short description, or `"unknown error code"`.
    #[inline]
    pub fn description(self) -> &'static str {
        self.row().map_or("unknown error code", |r| r.3)
    }

    /// Whether the Java client treats the error as retriable (its exception
    /// extends `RetriableException`). Unknown codes are not retriable.
    #[inline]
    pub fn is_retriable(self) -> bool {
        self.row().is_some_and(|r| r.2)
    }

    /// Every code this table knows, in code order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|r| ErrorCode(r.0))
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

impl fmt::Display for ErrorCode {
    /// `NAME (code): description`, or `unknown(code)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row() {
            Some(r) => write!(f, "{} ({}): {}", r.1, r.0, r.3),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_sit_at_code_plus_one() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.0 as i32 + 1, i as i32, "{}", row.1);
        }
        assert_eq!(TABLE[0].0, -1);
        assert_eq!(ErrorCode::all().count(), 135);
        let mut names: Vec<_> = TABLE.iter().map(|r| r.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len(), "names are unique");
    }

    #[test]
    fn well_known_codes() {
        let cases = [
            (ErrorCode::UNKNOWN_SERVER_ERROR, -1, "UNKNOWN_SERVER_ERROR"),
            (ErrorCode::NONE, 0, "NONE"),
            (
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                6,
                "NOT_LEADER_OR_FOLLOWER",
            ),
            (ErrorCode::MESSAGE_TOO_LARGE, 10, "MESSAGE_TOO_LARGE"),
            (
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                45,
                "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ),
            (ErrorCode::UNKNOWN_PRODUCER_ID, 59, "UNKNOWN_PRODUCER_ID"),
            (ErrorCode::PRODUCER_FENCED, 90, "PRODUCER_FENCED"),
            (
                ErrorCode::TRANSACTION_ABORTABLE,
                120,
                "TRANSACTION_ABORTABLE",
            ),
            (
                ErrorCode::SHARE_SESSION_LIMIT_REACHED,
                133,
                "SHARE_SESSION_LIMIT_REACHED",
            ),
        ];
        for (c, code, name) in cases {
            assert_eq!(c.code(), code);
            assert_eq!(ErrorCode::from_i16(code), c);
            assert_eq!(c.name(), name);
            assert!(c.is_known());
        }
    }

    #[test]
    fn retriable_matches_the_java_client() {
        let retriable = [
            ErrorCode::CORRUPT_MESSAGE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::LEADER_NOT_AVAILABLE,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::REQUEST_TIMED_OUT,
            ErrorCode::REPLICA_NOT_AVAILABLE,
            ErrorCode::NETWORK_EXCEPTION,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ErrorCode::NOT_COORDINATOR,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            ErrorCode::NOT_CONTROLLER,
            ErrorCode::CONCURRENT_TRANSACTIONS,
            ErrorCode::KAFKA_STORAGE_ERROR,
            ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
            ErrorCode::INVALID_FETCH_SESSION_EPOCH,
            ErrorCode::LISTENER_NOT_FOUND,
            ErrorCode::FENCED_LEADER_EPOCH,
            ErrorCode::UNKNOWN_LEADER_EPOCH,
            ErrorCode::OFFSET_NOT_AVAILABLE,
            ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE,
            ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE,
            ErrorCode::ELECTION_NOT_NEEDED,
            ErrorCode::UNSTABLE_OFFSET_COMMIT,
            ErrorCode::THROTTLING_QUOTA_EXCEEDED,
            ErrorCode::UNKNOWN_TOPIC_ID,
            ErrorCode::INCONSISTENT_TOPIC_ID,
            ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR,
            ErrorCode::SHARE_SESSION_NOT_FOUND,
            ErrorCode::INVALID_SHARE_SESSION_EPOCH,
            ErrorCode::SHARE_SESSION_LIMIT_REACHED,
        ];
        for c in ErrorCode::all() {
            assert_eq!(c.is_retriable(), retriable.contains(&c), "{c}");
        }
        for fatal in [
            ErrorCode::NONE,
            ErrorCode::UNKNOWN_SERVER_ERROR,
            ErrorCode::MESSAGE_TOO_LARGE,
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            ErrorCode::INVALID_PRODUCER_EPOCH,
            ErrorCode::PRODUCER_FENCED,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ] {
            assert!(!fatal.is_retriable(), "{fatal}");
        }
    }

    #[test]
    fn unknown_codes_never_panic() {
        for code in [i16::MIN, -2, 134, 999, i16::MAX] {
            let c = ErrorCode::from_i16(code);
            assert!(!c.is_known());
            assert!(!c.is_retriable());
            assert_eq!(c.name(), "UNKNOWN");
            assert_eq!(c.to_string(), format!("unknown({code})"));
            assert_eq!(c.code(), code);
        }
    }

    #[test]
    fn display_and_result() {
        assert_eq!(
            ErrorCode::NOT_LEADER_OR_FOLLOWER.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6): broker is not the leader or a follower of the partition"
        );
        assert_eq!(ErrorCode::NONE.into_result(), Ok(()));
        assert_eq!(
            ErrorCode::from(19).into_result(),
            Err(ErrorCode::NOT_ENOUGH_REPLICAS)
        );
        assert!(ErrorCode::NONE.is_ok());
        for c in ErrorCode::all().filter(|&c| c != ErrorCode::NONE) {
            assert!(!c.is_ok(), "{c}");
            assert_eq!(c.into_result(), Err(c));
        }
        assert!(!ErrorCode::from_i16(i16::MAX).is_ok());
        assert_eq!(i16::from(ErrorCode::INVALID_RECORD), 87);
    }

    /// The description is the table's, the one `Display` shows; a code the
    /// table does not know says so.
    #[test]
    fn descriptions_come_from_the_table() {
        assert_eq!(
            ErrorCode::MESSAGE_TOO_LARGE.description(),
            "message larger than the broker accepts"
        );
        for c in ErrorCode::all() {
            let shown = c.to_string();
            assert!(!c.description().is_empty(), "{shown}");
            assert!(
                shown.ends_with(&format!("): {}", c.description())),
                "{shown}"
            );
        }
        assert_eq!(ErrorCode::from_i16(999).description(), "unknown error code");
    }
}
