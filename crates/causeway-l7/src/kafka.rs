//! Kafka: requests and responses of the Kafka wire protocol, read from
//! their first bytes.
//!
//! **Framing.** Every message is a 4-byte big-endian length and that many
//! bytes, so [`Head::message_len`] is always `4 + length`, exactly, as soon
//! as the length is visible; the agent splits a syscall that holds several
//! messages (a client pipelining requests, a broker answering several) at
//! it. A request starts with its header: API key (`int16`), API version
//! (`int16`), correlation id (`int32`), then, from request header v1 on, the
//! client id (a nullable string with an `int16` length, even in flexible
//! versions) and, in header v2, tagged fields. A response header is the
//! correlation id alone (v0), or followed by tagged fields (v1). Header v2
//! and v1 go with the *flexible* versions of each API (KIP-482: compact
//! strings and arrays with unsigned-varint lengths, tagged fields closing
//! every structure), with two exceptions kept here: ApiVersions responses
//! always use header v0 (a client must read them before it knows what the
//! broker speaks), and ControlledShutdown v0 requests use header v0 (no
//! client id).
//!
//! **A response does not say what it answers.** Only its correlation id
//! links it to a request; its body's layout, and so where its error codes
//! are, depends on the request's API key and version, and even whether its
//! header has tagged fields. So [`parse_response`] takes the request's
//! [`RequestApi`] when the caller knows it: the agent keeps, per
//! connection, the API of each request still waiting (read with
//! [`request_header`]) and looks it up by the response's
//! [`correlation_id`]. Without it a response gives its length and
//! correlation id only. Kafka answers in order on a connection, but pairing
//! is by correlation id ([`Head::request_id`]).
//!
//! **Facts.**
//! - `request_type`: the API's name (`Produce`, `Fetch`, `Metadata`,
//!   `ApiVersions`, ...; every key Kafka 4.1 defines, 0 to 92, see
//!   [`api_name`]). Keys past the table are reported by number.
//! - `version`: the API version.
//! - `request_domain`: the client id (as DeepFlow's `client_id`; the
//!   topic, which a request may name several of, is the resource).
//! - `request_resource`: the topics a request names, in order, joined by
//!   `,`: Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
//!   CreateTopics, DeleteTopics, DeleteRecords, OffsetForLeaderEpoch,
//!   TxnOffsetCommit and CreatePartitions, in every version whose layout is
//!   known, flexible ones included. Versions that name topics by id only
//!   (Produce 13, Fetch 13 and later, OffsetCommit 10, OffsetFetch 10, a
//!   DeleteTopics 6 entry without a name) give none: an id is not a name.
//!   For the group APIs (FindCoordinator, JoinGroup, Heartbeat, LeaveGroup,
//!   SyncGroup, DescribeGroups, DeleteGroups) it is the group id(s), or the
//!   coordinator key. A name is reported only when it is whole in the
//!   captured prefix; a list cut by the end of the prefix gives the names
//!   before the cut (the names of a cut Produce after the first are
//!   usually beyond a 1024-byte capture, behind the records).
//! - `request_id`: the correlation id (as an unsigned 32-bit number), for
//!   requests and responses.
//! - A Produce with `acks = 0` gets no response: it is `unpaired`.
//! - Responses: the error code goes to `response_code`, its class to
//!   `response_status` ([`error_status`]) and its name to `exception`
//!   (`UNKNOWN_TOPIC_OR_PARTITION`, [`error_name`]). Many responses hold
//!   several codes (a top-level one, one per topic, per partition, per
//!   group): the first non-zero one in wire order is reported, or 0 (`Ok`)
//!   when every code read was 0. The codes are found for the APIs listed
//!   in [`reads_errors`]; where the prefix ends before any code, or the API
//!   or version is not one of them, there is no code and no status.
//!
//! **Status mapping.** 0 is `Ok`. A non-zero code is a `ServerError` when
//! it is about the broker's or cluster's state (`UNKNOWN_SERVER_ERROR`,
//! leadership moving or unavailable, replicas, timeouts, coordinators
//! loading or moved, rebalancing, controller, storage, sessions the server
//! evicted, transactions it must abort) or unknown, and a `ClientError`
//! when it names something wrong with the request or the client's own
//! state (unknown topics and ids, invalid values and names, unsupported
//! versions and mechanisms, authorization and authentication, sizes and
//! quotas, the client's epochs and sequence numbers, things that already
//! exist). DeepFlow counts every non-zero code as a server error; a
//! producer asking for a topic that does not exist is the caller's fault,
//! as an HTTP 404 is.
//!
//! **Inference.** [`infer`] claims requests only, strictly: see its doc.
//! A broker's first bytes say nothing a random 4-byte length would not,
//! so they are never inferred, except where the caller knows the port is
//! Kafka's ([`looks_like_response`], [`DEFAULT_PORT`]).
//!
//! **Cut input.** The payload is the prefix captured from the first
//! syscall, cut anywhere. A request's header must be whole (else
//! [`ParseError::Incomplete`], so that the agent can complete a head that a
//! broker read in pieces: brokers read the 4-byte length alone, then the
//! rest), a response's length and correlation id too. Beyond that the head
//! holds what the visible bytes tell.
//!
//! **Cost.** No allocation except to join several topic names, for text
//! that is not UTF-8 (made lossy) and for versions above 31 and unknown
//! keys (formatted). Every loop consumes input, and array counts are
//! bounded by the bytes left in the message, so the work is linear in the
//! visible bytes.

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::{Head, ParseError};

#[cfg(test)]
mod tests;

/// The port Kafka brokers listen on by default.
pub const DEFAULT_PORT: u16 = 9092;

/// Largest request [`infer`] believes: the broker's default
/// `socket.request.max.bytes` (100 MiB).
pub const MAX_INFER_REQUEST: u32 = 104_857_600;

/// `infer` believes a request cut by the end of the bytes only when this
/// many bytes are visible: real requests are cut by the capture cap (1024
/// bytes by default), while a short payload whose length field points past
/// its end is more likely another protocol.
const MIN_INFER_CUT_PAYLOAD: usize = 256;

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

// --- APIs ----------------------------------------------------------------------

/// One API key: its name, the newest version known, and the first flexible
/// version (`NEVER` when it has none).
struct ApiInfo {
    name: &'static str,
    max: i16,
    flexible: i16,
}

const NEVER: i16 = i16::MAX;

const fn api(name: &'static str, max: i16, flexible: i16) -> ApiInfo {
    ApiInfo {
        name,
        max,
        flexible,
    }
}

/// Every API key Kafka 4.1 defines, by key, with the newest version its
/// message definitions (`clients/src/main/resources/common/message`) give
/// and the first flexible version. Versions that 4.0 removed (Produce 0-2,
/// Fetch 0-3, ...) are still read: older clients and brokers speak them.
const APIS: [ApiInfo; 93] = [
    api("Produce", 13, 9),
    api("Fetch", 18, 12),
    api("ListOffsets", 11, 6),
    api("Metadata", 13, 9),
    api("LeaderAndIsr", 7, 4),
    api("StopReplica", 4, 2),
    api("UpdateMetadata", 8, 6),
    api("ControlledShutdown", 3, 3),
    api("OffsetCommit", 10, 8),
    api("OffsetFetch", 10, 6),
    api("FindCoordinator", 6, 3),
    api("JoinGroup", 9, 6),
    api("Heartbeat", 4, 4),
    api("LeaveGroup", 5, 4),
    api("SyncGroup", 5, 4),
    api("DescribeGroups", 6, 5),
    api("ListGroups", 5, 3),
    api("SaslHandshake", 1, NEVER),
    api("ApiVersions", 4, 3),
    api("CreateTopics", 7, 5),
    api("DeleteTopics", 6, 4),
    api("DeleteRecords", 2, 2),
    api("InitProducerId", 6, 2),
    api("OffsetForLeaderEpoch", 4, 4),
    api("AddPartitionsToTxn", 5, 3),
    api("AddOffsetsToTxn", 4, 3),
    api("EndTxn", 5, 3),
    api("WriteTxnMarkers", 2, 1),
    api("TxnOffsetCommit", 5, 3),
    api("DescribeAcls", 3, 2),
    api("CreateAcls", 3, 2),
    api("DeleteAcls", 3, 2),
    api("DescribeConfigs", 4, 4),
    api("AlterConfigs", 2, 2),
    api("AlterReplicaLogDirs", 2, 2),
    api("DescribeLogDirs", 5, 2),
    api("SaslAuthenticate", 2, 2),
    api("CreatePartitions", 3, 2),
    api("CreateDelegationToken", 3, 2),
    api("RenewDelegationToken", 2, 2),
    api("ExpireDelegationToken", 2, 2),
    api("DescribeDelegationToken", 3, 2),
    api("DeleteGroups", 2, 2),
    api("ElectLeaders", 2, 2),
    api("IncrementalAlterConfigs", 1, 1),
    api("AlterPartitionReassignments", 1, 0),
    api("ListPartitionReassignments", 0, 0),
    api("OffsetDelete", 0, NEVER),
    api("DescribeClientQuotas", 1, 1),
    api("AlterClientQuotas", 1, 1),
    api("DescribeUserScramCredentials", 0, 0),
    api("AlterUserScramCredentials", 0, 0),
    api("Vote", 2, 0),
    api("BeginQuorumEpoch", 1, 1),
    api("EndQuorumEpoch", 1, 1),
    api("DescribeQuorum", 2, 0),
    api("AlterPartition", 3, 0),
    api("UpdateFeatures", 2, 0),
    api("Envelope", 0, 0),
    api("FetchSnapshot", 1, 0),
    api("DescribeCluster", 2, 0),
    api("DescribeProducers", 0, 0),
    api("BrokerRegistration", 4, 0),
    api("BrokerHeartbeat", 1, 0),
    api("UnregisterBroker", 0, 0),
    api("DescribeTransactions", 0, 0),
    api("ListTransactions", 2, 0),
    api("AllocateProducerIds", 0, 0),
    api("ConsumerGroupHeartbeat", 1, 0),
    api("ConsumerGroupDescribe", 1, 0),
    api("ControllerRegistration", 0, 0),
    api("GetTelemetrySubscriptions", 0, 0),
    api("PushTelemetry", 0, 0),
    api("AssignReplicasToDirs", 0, 0),
    api("ListConfigResources", 1, 0),
    api("DescribeTopicPartitions", 0, 0),
    api("ShareGroupHeartbeat", 1, 0),
    api("ShareGroupDescribe", 1, 0),
    api("ShareFetch", 1, 0),
    api("ShareAcknowledge", 1, 0),
    api("AddRaftVoter", 0, 0),
    api("RemoveRaftVoter", 0, 0),
    api("UpdateRaftVoter", 0, 0),
    api("InitializeShareGroupState", 0, 0),
    api("ReadShareGroupState", 0, 0),
    api("WriteShareGroupState", 0, 0),
    api("DeleteShareGroupState", 0, 0),
    api("ReadShareGroupStateSummary", 0, 0),
    api("StreamsGroupHeartbeat", 0, 0),
    api("StreamsGroupDescribe", 0, 0),
    api("DescribeShareGroupOffsets", 1, 0),
    api("AlterShareGroupOffsets", 0, 0),
    api("DeleteShareGroupOffsets", 0, 0),
];

// API keys whose bodies are read.
const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;
const METADATA: i16 = 3;
const CONTROLLED_SHUTDOWN: i16 = 7;
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const FIND_COORDINATOR: i16 = 10;
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;
const DESCRIBE_GROUPS: i16 = 15;
const LIST_GROUPS: i16 = 16;
const SASL_HANDSHAKE: i16 = 17;
const API_VERSIONS: i16 = 18;
const CREATE_TOPICS: i16 = 19;
const DELETE_TOPICS: i16 = 20;
const DELETE_RECORDS: i16 = 21;
const INIT_PRODUCER_ID: i16 = 22;
const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
const ADD_PARTITIONS_TO_TXN: i16 = 24;
const ADD_OFFSETS_TO_TXN: i16 = 25;
const END_TXN: i16 = 26;
const TXN_OFFSET_COMMIT: i16 = 28;
const CREATE_ACLS: i16 = 30;
const DESCRIBE_CONFIGS: i16 = 32;
const ALTER_CONFIGS: i16 = 33;
const DESCRIBE_LOG_DIRS: i16 = 35;
const SASL_AUTHENTICATE: i16 = 36;
const CREATE_PARTITIONS: i16 = 37;
const DELETE_GROUPS: i16 = 42;
const ELECT_LEADERS: i16 = 43;
const INCREMENTAL_ALTER_CONFIGS: i16 = 44;

fn api_info(key: i16) -> Option<&'static ApiInfo> {
    usize::try_from(key).ok().and_then(|k| APIS.get(k))
}

/// The name of an API key (`Produce` for 0); `None` past the keys known.
pub fn api_name(key: i16) -> Option<&'static str> {
    api_info(key).map(|a| a.name)
}

/// The newest version of an API key known here.
pub fn max_version(key: i16) -> Option<i16> {
    api_info(key).map(|a| a.max)
}

/// Whether this API version uses flexible encoding (compact strings and
/// arrays, tagged fields; request header v2, response header v1 except
/// ApiVersions). Keys past the table are taken as flexible: every API added
/// since KIP-482 is flexible from version 0.
pub fn is_flexible(key: i16, version: i16) -> bool {
    api_info(key).is_none_or(|a| version >= a.flexible)
}

/// Version labels without formatting.
const VERSION_LABELS: [&str; 32] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

fn version_label(v: i16) -> Cow<'static, str> {
    match usize::try_from(v).ok().and_then(|i| VERSION_LABELS.get(i)) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(v.to_string()),
    }
}

// --- errors --------------------------------------------------------------------

/// Kafka's error names (`org.apache.kafka.common.protocol.Errors`), from
/// code -1 on (index: code + 1).
const ERROR_NAMES: [&str; 135] = [
    "UNKNOWN_SERVER_ERROR",
    "NONE",
    "OFFSET_OUT_OF_RANGE",
    "CORRUPT_MESSAGE",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "INVALID_FETCH_SIZE",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
    "BROKER_NOT_AVAILABLE",
    "REPLICA_NOT_AVAILABLE",
    "MESSAGE_TOO_LARGE",
    "STALE_CONTROLLER_EPOCH",
    "OFFSET_METADATA_TOO_LARGE",
    "NETWORK_EXCEPTION",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "INVALID_TOPIC_EXCEPTION",
    "RECORD_LIST_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "INVALID_REQUIRED_ACKS",
    "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL",
    "INVALID_GROUP_ID",
    "UNKNOWN_MEMBER_ID",
    "INVALID_SESSION_TIMEOUT",
    "REBALANCE_IN_PROGRESS",
    "INVALID_COMMIT_OFFSET_SIZE",
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "INVALID_TIMESTAMP",
    "UNSUPPORTED_SASL_MECHANISM",
    "ILLEGAL_SASL_STATE",
    "UNSUPPORTED_VERSION",
    "TOPIC_ALREADY_EXISTS",
    "INVALID_PARTITIONS",
    "INVALID_REPLICATION_FACTOR",
    "INVALID_REPLICA_ASSIGNMENT",
    "INVALID_CONFIG",
    "NOT_CONTROLLER",
    "INVALID_REQUEST",
    "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    "POLICY_VIOLATION",
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "DUPLICATE_SEQUENCE_NUMBER",
    "INVALID_PRODUCER_EPOCH",
    "INVALID_TXN_STATE",
    "INVALID_PRODUCER_ID_MAPPING",
    "INVALID_TRANSACTION_TIMEOUT",
    "CONCURRENT_TRANSACTIONS",
    "TRANSACTION_COORDINATOR_FENCED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "SECURITY_DISABLED",
    "OPERATION_NOT_ATTEMPTED",
    "KAFKA_STORAGE_ERROR",
    "LOG_DIR_NOT_FOUND",
    "SASL_AUTHENTICATION_FAILED",
    "UNKNOWN_PRODUCER_ID",
    "REASSIGNMENT_IN_PROGRESS",
    "DELEGATION_TOKEN_AUTH_DISABLED",
    "DELEGATION_TOKEN_NOT_FOUND",
    "DELEGATION_TOKEN_OWNER_MISMATCH",
    "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_EXPIRED",
    "INVALID_PRINCIPAL_TYPE",
    "NON_EMPTY_GROUP",
    "GROUP_ID_NOT_FOUND",
    "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH",
    "LISTENER_NOT_FOUND",
    "TOPIC_DELETION_DISABLED",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "STALE_BROKER_EPOCH",
    "OFFSET_NOT_AVAILABLE",
    "MEMBER_ID_REQUIRED",
    "PREFERRED_LEADER_NOT_AVAILABLE",
    "GROUP_MAX_SIZE_REACHED",
    "FENCED_INSTANCE_ID",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE",
    "ELECTION_NOT_NEEDED",
    "NO_REASSIGNMENT_IN_PROGRESS",
    "GROUP_SUBSCRIBED_TO_TOPIC",
    "INVALID_RECORD",
    "UNSTABLE_OFFSET_COMMIT",
    "THROTTLING_QUOTA_EXCEEDED",
    "PRODUCER_FENCED",
    "RESOURCE_NOT_FOUND",
    "DUPLICATE_RESOURCE",
    "UNACCEPTABLE_CREDENTIAL",
    "INCONSISTENT_VOTER_SET",
    "INVALID_UPDATE_VERSION",
    "FEATURE_UPDATE_FAILED",
    "PRINCIPAL_DESERIALIZATION_FAILURE",
    "SNAPSHOT_NOT_FOUND",
    "POSITION_OUT_OF_RANGE",
    "UNKNOWN_TOPIC_ID",
    "DUPLICATE_BROKER_REGISTRATION",
    "BROKER_ID_NOT_REGISTERED",
    "INCONSISTENT_TOPIC_ID",
    "INCONSISTENT_CLUSTER_ID",
    "TRANSACTIONAL_ID_NOT_FOUND",
    "FETCH_SESSION_TOPIC_ID_ERROR",
    "INELIGIBLE_REPLICA",
    "NEW_LEADER_ELECTED",
    "OFFSET_MOVED_TO_TIERED_STORAGE",
    "FENCED_MEMBER_EPOCH",
    "UNRELEASED_INSTANCE_ID",
    "UNSUPPORTED_ASSIGNOR",
    "STALE_MEMBER_EPOCH",
    "MISMATCHED_ENDPOINT_TYPE",
    "UNSUPPORTED_ENDPOINT_TYPE",
    "UNKNOWN_CONTROLLER_ID",
    "UNKNOWN_SUBSCRIPTION_ID",
    "TELEMETRY_TOO_LARGE",
    "INVALID_REGISTRATION",
    "TRANSACTION_ABORTABLE",
    "INVALID_RECORD_STATE",
    "SHARE_SESSION_NOT_FOUND",
    "INVALID_SHARE_SESSION_EPOCH",
    "FENCED_STATE_EPOCH",
    "INVALID_VOTER_KEY",
    "DUPLICATE_VOTER",
    "VOTER_NOT_FOUND",
    "INVALID_REGULAR_EXPRESSION",
    "REBOOTSTRAP_REQUIRED",
    "STREAMS_INVALID_TOPOLOGY",
    "STREAMS_INVALID_TOPOLOGY_EPOCH",
    "STREAMS_TOPOLOGY_FENCED",
    "SHARE_SESSION_LIMIT_REACHED",
];

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION` for 3,
/// `NONE` for 0); `None` for codes it does not define.
pub fn error_name(code: i16) -> Option<&'static str> {
    usize::try_from(i32::from(code) + 1)
        .ok()
        .and_then(|i| ERROR_NAMES.get(i))
        .copied()
}

/// The outcome class of an error code (see the module doc).
pub fn error_status(code: i16) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        // The broker's or cluster's state, and codes not known.
        -1
        | 5..=9
        | 11
        | 13..=16
        | 19
        | 20
        | 27
        | 41
        | 51
        | 52
        | 55
        | 56
        | 60
        | 70
        | 72
        | 75
        | 78
        | 80
        | 83
        | 88
        | 94
        | 96
        | 97
        | 108
        | 109
        | 120
        | 122
        | 133 => ResponseStatus::ServerError,
        c if error_name(c).is_some() => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

// --- public functions ----------------------------------------------------------

/// What a request's header says about the response it expects: the
/// response's layout depends on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestApi {
    /// The API key.
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
}

/// Whether the bytes start Kafka requests.
///
/// Every visible request, from the first byte on, must be well formed: a
/// length of at least a header and at most [`MAX_INFER_REQUEST`]; an API
/// key Kafka defines and a version of it no newer than Kafka 4.1's; a
/// client id that is null or printable UTF-8, whole; in flexible versions,
/// header tagged fields within the message; and, for the APIs whose bodies
/// are read (see [`parse_request`]), a body that fits the version's layout,
/// topic names Kafka would accept (`[a-zA-Z0-9._-]`, 1 to 249 bytes), a
/// Produce `acks` of -1, 0 or 1, and nothing left over. Each request must
/// end where the next starts; only the last may be cut by the end of the
/// bytes, and then only when at least 256 bytes are visible (as the capture
/// cap cuts; a client writes a request in one syscall). Responses are not
/// inferred: a correlation id and a length are too little to tell.
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let mut pos = 0;
    while pos < payload.len() {
        let rest = &payload[pos..];
        match read_request(rest, true) {
            Ok(r) if r.len <= rest.len() => pos += r.len,
            Ok(_) => {
                if payload.len() < MIN_INFER_CUT_PAYLOAD {
                    return None;
                }
                break;
            }
            Err(ParseError::Incomplete) if pos > 0 && payload.len() >= MIN_INFER_CUT_PAYLOAD => {
                break
            }
            Err(_) => return None,
        }
    }
    (!payload.is_empty()).then_some(MessageKind::Request)
}

/// Whether the bytes are whole Kafka responses, one after another, ending
/// exactly at the end: only worth asking where the port says Kafka (a
/// response has nothing else to check).
pub fn looks_like_response(payload: &[u8]) -> bool {
    let mut pos = 0;
    while pos < payload.len() {
        let Some(len) = frame_len(&payload[pos..]) else {
            return false;
        };
        if len < 8 {
            return false;
        }
        pos = pos.saturating_add(len);
    }
    pos == payload.len() && pos > 0
}

/// The head of the message at the start of `payload`: [`parse_request`]
/// for a request, [`parse_response`] without the request's API for a
/// response.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    match kind {
        MessageKind::Request => parse_request(payload),
        MessageKind::Response => parse_response(payload, None),
    }
}

/// The head of the request at the start of `payload` (see the module doc
/// for its facts).
///
/// Errors: [`ParseError::Incomplete`] when the bytes end inside the header
/// (length, key, version, correlation id, client id, header tagged
/// fields); [`ParseError::Invalid`] when the length is too small for a
/// header, the API key or version negative, or the client id or header
/// tagged fields overrun the message. A known API's body that does not fit
/// its layout gives no topics, but the head stands.
pub fn parse_request(payload: &[u8]) -> Result<Head<'_>, ParseError> {
    read_request(payload, false).map(|r| r.head)
}

/// The head of the response at the start of `payload`. `request` is the
/// API of the request it answers (found by its correlation id): with it,
/// the header's tagged fields are skipped where the version has them and
/// the error codes are read ([`reads_errors`]); without it, only the length
/// and correlation id are known.
///
/// Errors: [`ParseError::Incomplete`] when the length or correlation id is
/// not whole; [`ParseError::Invalid`] when the length is below 4 (no room
/// for a correlation id). A body that does not fit the request's layout
/// gives no code, but the head stands.
pub fn parse_response(payload: &[u8], request: Option<RequestApi>) -> Result<Head<'_>, ParseError> {
    let length = read_length(payload)?;
    if length < 4 {
        return Err(ParseError::Invalid("length"));
    }
    let corr = correlation_id(payload, MessageKind::Response).ok_or(ParseError::Incomplete)?;
    let mut head = Head {
        message_len: Some(4 + u64::from(length)),
        request_id: Some(u64::from(corr as u32)),
        ..Head::default()
    };
    let Some(api) = request else {
        return Ok(head);
    };
    if let Some(name) = api_name(api.api_key) {
        head.request_type = Cow::Borrowed(name);
    }
    let flexible = is_flexible(api.api_key, api.api_version);
    let mut r = Reader::new(payload, 8, length, flexible);
    let mut errs = Errors::default();
    let read = (|| {
        if flexible && api.api_key != API_VERSIONS {
            r.tagged("response header tagged fields")?;
        }
        response_errors(&mut r, api, &mut errs)
    })();
    let code = match read {
        // Read to its end (or as far as the codes go): the first failure,
        // else success.
        Ok(Walk::Done) => errs.first_failure.or(Some(0)),
        // Cut by the capture: what was seen.
        Err(Stop::Cut) if errs.seen => errs.first_failure.or(Some(0)),
        Err(Stop::Cut) => None,
        Ok(Walk::NotRead) | Err(Stop::Bad(_)) => None,
    };
    if let Some(code) = code {
        head.response_code = Some(i32::from(code));
        head.response_status = Some(error_status(code));
        if code != 0 {
            head.exception = Cow::Borrowed(error_name(code).unwrap_or("UNKNOWN_ERROR_CODE"));
        }
    }
    Ok(head)
}

/// The correlation id and API of the request at the start of `payload`,
/// without reading its body; `None` when they are not visible or the key
/// or version is negative.
pub fn request_header(payload: &[u8]) -> Option<(i32, RequestApi)> {
    let api_key = i16::from_be_bytes([*payload.get(4)?, *payload.get(5)?]);
    let api_version = i16::from_be_bytes([*payload.get(6)?, *payload.get(7)?]);
    let corr = correlation_id(payload, MessageKind::Request)?;
    (api_key >= 0 && api_version >= 0).then_some((
        corr,
        RequestApi {
            api_key,
            api_version,
        },
    ))
}

/// The correlation id of the message at the start of `payload`: bytes 8 to
/// 12 of a request, 4 to 8 of a response.
pub fn correlation_id(payload: &[u8], kind: MessageKind) -> Option<i32> {
    let at = match kind {
        MessageKind::Request => 8,
        MessageKind::Response => 4,
    };
    let b = payload.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether a whole syscall's bytes end a Kafka message: they are one or
/// more whole messages (by their lengths), ending exactly at the end. The
/// head always gives the length, so the agent hardly needs this.
pub fn ends_message(payload: &[u8], _kind: MessageKind) -> bool {
    let mut pos = 0;
    while pos < payload.len() {
        let Some(len) = frame_len(&payload[pos..]) else {
            return false;
        };
        pos = pos.saturating_add(len);
    }
    pos == payload.len() && pos > 0
}

/// Whether [`parse_response`] finds the error codes of responses to this
/// API and version: the APIs whose response layouts are read here, in the
/// versions known.
///
/// Every code in wire order: Produce, Fetch, ListOffsets, Metadata,
/// OffsetCommit, OffsetFetch, FindCoordinator, LeaveGroup, DescribeGroups,
/// CreateTopics, DeleteTopics, DeleteRecords, OffsetForLeaderEpoch,
/// TxnOffsetCommit, CreateAcls, DescribeConfigs, AlterConfigs,
/// CreatePartitions, DeleteGroups, IncrementalAlterConfigs, AddPartitionsToTxn
/// 0-3. The top-level code only (the response has one, or nested ones
/// follow that are not read): ApiVersions, SaslHandshake, SaslAuthenticate,
/// JoinGroup, Heartbeat, SyncGroup, ListGroups, InitProducerId,
/// AddOffsetsToTxn, EndTxn, AddPartitionsToTxn 4+, DescribeLogDirs 3+,
/// ElectLeaders 1+, and the other APIs whose response starts with a code,
/// alone or after the throttle time.
pub fn reads_errors(api: RequestApi) -> bool {
    api.api_version >= 0
        && max_version(api.api_key).is_some_and(|max| api.api_version <= max)
        && !matches!(top_level(api), TopLevel::None)
}

// --- reading -------------------------------------------------------------------

/// Why reading stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The visible bytes end; the message goes on.
    Cut,
    /// The message breaks its layout here.
    Bad(&'static str),
}

/// A cursor over the visible part of one message, which knows where the
/// whole message ends: reading past the visible bytes is a cut, reading
/// past the message's end is malformed. Positions count from the message's
/// first byte (its length field).
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    /// A reader at `pos` of the message at the start of `payload`, whose
    /// length field says `length`.
    fn new(payload: &'a [u8], pos: usize, length: u32, flexible: bool) -> Reader<'a> {
        let end = 4usize.saturating_add(length as usize);
        Reader {
            buf: &payload[..payload.len().min(end)],
            pos,
            end,
            flexible,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Stop> {
        let next = self.pos.saturating_add(n);
        if next > self.end {
            return Err(Stop::Bad(what));
        }
        let s = self.buf.get(self.pos..next).ok_or(Stop::Cut)?;
        self.pos = next;
        Ok(s)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Stop> {
        let next = self.pos.saturating_add(n);
        if next > self.end {
            return Err(Stop::Bad(what));
        }
        if next > self.buf.len() {
            return Err(Stop::Cut);
        }
        self.pos = next;
        Ok(())
    }

    fn i8(&mut self, what: &'static str) -> Result<i8, Stop> {
        self.take(1, what).map(|s| s[0] as i8)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, Stop> {
        self.take(2, what).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, Stop> {
        self.take(4, what)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// An unsigned varint of at most five bytes (32 bits).
    fn uvarint(&mut self, what: &'static str) -> Result<u32, Stop> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.take(1, what)?[0];
            if i == 4 && b > 0x0f {
                return Err(Stop::Bad(what));
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Stop::Bad(what))
    }

    /// A length of a string, bytes or array: compact (varint N + 1, 0 for
    /// null) in flexible versions, else `int16` or `int32` with -1 for null.
    fn length(&mut self, wide: bool, what: &'static str) -> Result<Option<usize>, Stop> {
        if self.flexible {
            let n = self.uvarint(what)?;
            return Ok(n.checked_sub(1).map(|n| n as usize));
        }
        let n = if wide {
            self.i32(what)?
        } else {
            i32::from(self.i16(what)?)
        };
        match n {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| Stop::Bad(what)),
        }
    }

    /// A (nullable) string.
    fn string(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, Stop> {
        match self.length(false, what)? {
            None => Ok(None),
            Some(n) => self.take(n, what).map(Some),
        }
    }

    /// A (nullable) byte string or record set, skipped.
    fn bytes(&mut self, what: &'static str) -> Result<(), Stop> {
        match self.length(true, what)? {
            None => Ok(()),
            Some(n) => self.skip(n, what),
        }
    }

    /// The element count of a (nullable) array; a count that could not fit
    /// in the bytes left (every element takes at least one) is malformed,
    /// which bounds every loop over elements.
    fn array(&mut self, what: &'static str) -> Result<Option<usize>, Stop> {
        let n = self.length(true, what)?;
        if n.is_some_and(|n| n > self.end.saturating_sub(self.pos)) {
            return Err(Stop::Bad(what));
        }
        Ok(n)
    }

    /// An array of fixed-size elements (`[]int32`, `[]int64`), skipped.
    fn skip_array(&mut self, size: usize, what: &'static str) -> Result<(), Stop> {
        let n = self.array(what)?.unwrap_or(0);
        self.skip(n.saturating_mul(size), what)
    }

    /// An array of strings, each given to `f`.
    fn strings(
        &mut self,
        what: &'static str,
        mut f: impl FnMut(&'a [u8]) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let n = self.array(what)?.unwrap_or(0);
        for _ in 0..n {
            if let Some(s) = self.string(what)? {
                f(s)?;
            }
        }
        Ok(())
    }

    /// The tagged fields that close a structure in flexible versions
    /// (nothing otherwise): a count, then tag, size and data for each.
    fn tagged(&mut self, what: &'static str) -> Result<(), Stop> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.uvarint(what)? as usize;
        if n > self.end.saturating_sub(self.pos) {
            return Err(Stop::Bad(what));
        }
        for _ in 0..n {
            self.uvarint(what)?;
            let size = self.uvarint(what)? as usize;
            self.skip(size, what)?;
        }
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.pos == self.end
    }
}

/// The 4-byte length at the start of a message (negative lengths are
/// malformed).
fn read_length(payload: &[u8]) -> Result<u32, ParseError> {
    let b = payload.get(..4).ok_or(ParseError::Incomplete)?;
    let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    u32::try_from(n).map_err(|_| ParseError::Invalid("length"))
}

/// Bytes of the message at the start of `payload`, by its length field.
fn frame_len(payload: &[u8]) -> Option<usize> {
    read_length(payload).ok().map(|n| 4 + n as usize)
}

/// Bytes as text: borrowed when UTF-8, made lossy otherwise.
fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Printable UTF-8: what `infer` wants of a client id.
fn printable(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// A topic name Kafka would create.
fn legal_topic(b: &[u8]) -> bool {
    (1..=MAX_TOPIC_NAME).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

// --- requests ------------------------------------------------------------------

/// What reading one request gave.
struct Request<'a> {
    head: Head<'a>,
    /// The length field plus 4.
    len: usize,
}

/// The names a request gives as its resource (topics, or groups), in order,
/// joined by `,`; consecutive repeats are dropped. Borrows while there is
/// one.
#[derive(Default)]
struct Names<'a> {
    first: Option<&'a [u8]>,
    last: Option<&'a [u8]>,
    joined: Option<String>,
}

impl<'a> Names<'a> {
    fn add(&mut self, name: &'a [u8]) {
        if self.last == Some(name) {
            return;
        }
        self.last = Some(name);
        match (&mut self.joined, self.first) {
            (_, None) => self.first = Some(name),
            (None, Some(first)) => {
                let mut s = text(first).into_owned();
                s.push(',');
                s.push_str(&text(name));
                self.joined = Some(s);
            }
            (Some(s), Some(_)) => {
                s.push(',');
                s.push_str(&text(name));
            }
        }
    }

    fn into_text(self) -> Cow<'a, str> {
        match (self.joined, self.first) {
            (Some(s), _) => Cow::Owned(s),
            (None, Some(first)) => text(first),
            (None, None) => Cow::Borrowed(""),
        }
    }
}

/// Reading state for one request body.
struct ReqCtx<'a> {
    version: i16,
    strict: bool,
    names: Names<'a>,
    acks: Option<i16>,
}

impl<'a> ReqCtx<'a> {
    /// A topic name: kept, and in `infer` checked.
    fn topic(&mut self, name: &'a [u8]) -> Result<(), Stop> {
        if self.strict && !legal_topic(name) {
            return Err(Stop::Bad("topic name"));
        }
        self.names.add(name);
        Ok(())
    }

    /// A group id or coordinator key: kept as is.
    fn group(&mut self, name: &'a [u8]) -> Result<(), Stop> {
        self.names.add(name);
        Ok(())
    }
}

fn read_request(payload: &[u8], strict: bool) -> Result<Request<'_>, ParseError> {
    let bad = |what| {
        if strict {
            ParseError::Mismatch
        } else {
            ParseError::Invalid(what)
        }
    };
    let length = read_length(payload).map_err(|e| match e {
        ParseError::Invalid(w) => bad(w),
        e => e,
    })?;
    if strict && length > MAX_INFER_REQUEST {
        return Err(ParseError::Mismatch);
    }
    let (corr, api) = request_header(payload).ok_or(if payload.len() < 12 {
        ParseError::Incomplete
    } else {
        bad("api key or version")
    })?;
    let info = api_info(api.api_key);
    if strict && info.is_none_or(|i| api.api_version > i.max) {
        return Err(ParseError::Mismatch);
    }
    let flexible = is_flexible(api.api_key, api.api_version);
    // Header v0 (ControlledShutdown v0 only) has no client id.
    let has_client_id = !(api.api_key == CONTROLLED_SHUTDOWN && api.api_version == 0);
    let min_length = if has_client_id { 10 } else { 8 };
    if length < min_length {
        return Err(bad("length"));
    }
    let mut r = Reader::new(payload, 12, length, false);
    let header_err = |s: Stop| match s {
        Stop::Cut => ParseError::Incomplete,
        Stop::Bad(w) => bad(w),
    };
    let mut client_id = None;
    if has_client_id {
        // A nullable string with an int16 length, even in header v2.
        client_id = r.string("client id").map_err(header_err)?;
        if strict && client_id.is_some_and(|c| !printable(c)) {
            return Err(ParseError::Mismatch);
        }
    }
    r.flexible = flexible;
    r.tagged("request header tagged fields")
        .map_err(header_err)?;
    let mut head = Head {
        version: version_label(api.api_version),
        request_type: match info {
            Some(i) => Cow::Borrowed(i.name),
            None => Cow::Owned(api.api_key.to_string()),
        },
        request_domain: client_id.map(text).unwrap_or_default(),
        message_len: Some(4 + u64::from(length)),
        request_id: Some(u64::from(corr as u32)),
        ..Head::default()
    };
    let mut c = ReqCtx {
        version: api.api_version,
        strict,
        names: Names::default(),
        acks: None,
    };
    let known = info.is_some_and(|i| api.api_version <= i.max);
    let read = if known {
        request_body(&mut r, api.api_key, &mut c)
    } else {
        Ok(Walk::NotRead)
    };
    let fits = match read {
        Ok(Walk::Done) => r.at_end(),
        Ok(Walk::NotRead) | Err(Stop::Cut) => true,
        Err(Stop::Bad(_)) => false,
    };
    if !fits {
        if strict {
            return Err(ParseError::Mismatch);
        }
    } else {
        head.request_resource = c.names.into_text();
        // acks 0: the broker sends nothing back.
        head.unpaired = api.api_key == PRODUCE && c.acks == Some(0);
    }
    Ok(Request {
        head,
        len: 4usize.saturating_add(length as usize),
    })
}

/// How far a body walk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// To the end of the message (requests) or of what holds codes.
    Done,
    /// The layout is not read here.
    NotRead,
}

/// Reads the body of a request of a known version, collecting its names.
fn request_body<'a>(r: &mut Reader<'a>, key: i16, c: &mut ReqCtx<'a>) -> Result<Walk, Stop> {
    let v = c.version;
    match key {
        PRODUCE => {
            if v >= 3 {
                r.string("transactional id")?;
            }
            let acks = r.i16("acks")?;
            if c.strict && !matches!(acks, -1..=1) {
                return Err(Stop::Bad("acks"));
            }
            c.acks = Some(acks);
            r.i32("timeout")?;
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, v <= 12)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    r.bytes("records")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        FETCH => {
            if v <= 14 {
                r.i32("replica id")?;
            }
            r.skip(8, "max wait and min bytes")?;
            if v >= 3 {
                r.i32("max bytes")?;
            }
            if v >= 4 {
                r.i8("isolation level")?;
            }
            if v >= 7 {
                r.skip(8, "session")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, v <= 12)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    let size = 4
                        + if v >= 9 { 4 } else { 0 }
                        + 8
                        + if v >= 12 { 4 } else { 0 }
                        + if v >= 5 { 8 } else { 0 }
                        + 4;
                    r.skip(size, "partition")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
            if v >= 7 {
                for _ in 0..r.array("forgotten topics")?.unwrap_or(0) {
                    if v <= 12 {
                        r.string("forgotten topic")?;
                    } else {
                        r.skip(16, "forgotten topic id")?;
                    }
                    r.skip_array(4, "forgotten partitions")?;
                    r.tagged("forgotten topic tagged fields")?;
                }
            }
            if v >= 11 {
                r.string("rack id")?;
            }
        }
        LIST_OFFSETS => {
            r.i32("replica id")?;
            if v >= 2 {
                r.i8("isolation level")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    let size = 4 + if v >= 4 { 4 } else { 0 } + 8 + if v == 0 { 4 } else { 0 };
                    r.skip(size, "partition")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
            if v >= 10 {
                r.i32("timeout")?;
            }
        }
        METADATA => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                if v >= 10 {
                    r.skip(16, "topic id")?;
                }
                if let Some(name) = r.string("topic name")? {
                    c.topic(name)?;
                }
                r.tagged("topic tagged fields")?;
            }
            let flags =
                usize::from(v >= 4) + usize::from((8..=10).contains(&v)) + usize::from(v >= 8);
            r.skip(flags, "flags")?;
        }
        OFFSET_COMMIT => {
            r.string("group id")?;
            if v >= 1 {
                r.i32("generation id")?;
                r.string("member id")?;
            }
            if v >= 7 {
                r.string("group instance id")?;
            }
            if (2..=4).contains(&v) {
                r.skip(8, "retention time")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, v <= 9)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    let size = 4 + 8 + if v >= 6 { 4 } else { 0 } + if v == 1 { 8 } else { 0 };
                    r.skip(size, "partition")?;
                    r.string("committed metadata")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        OFFSET_FETCH => {
            if v <= 7 {
                r.string("group id")?;
                offset_fetch_topics(r, c, true)?;
            } else {
                for _ in 0..r.array("groups")?.unwrap_or(0) {
                    r.string("group id")?;
                    if v >= 9 {
                        r.string("member id")?;
                        r.i32("member epoch")?;
                    }
                    offset_fetch_topics(r, c, v <= 9)?;
                    r.tagged("group tagged fields")?;
                }
            }
            if v >= 7 {
                r.i8("require stable")?;
            }
        }
        FIND_COORDINATOR => {
            if v <= 3 {
                if let Some(k) = r.string("key")? {
                    c.group(k)?;
                }
                if v >= 1 {
                    r.i8("key type")?;
                }
            } else {
                r.i8("key type")?;
                r.strings("coordinator keys", |k| c.group(k))?;
            }
        }
        JOIN_GROUP | HEARTBEAT | LEAVE_GROUP | SYNC_GROUP => {
            // The group id comes first; the rest is not read.
            if let Some(g) = r.string("group id")? {
                c.group(g)?;
            }
            return Ok(Walk::NotRead);
        }
        DESCRIBE_GROUPS => {
            r.strings("groups", |g| c.group(g))?;
            if v >= 3 {
                r.i8("include authorized operations")?;
            }
        }
        DELETE_GROUPS => {
            r.strings("groups", |g| c.group(g))?;
        }
        CREATE_TOPICS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                r.skip(6, "partitions and replication factor")?;
                for _ in 0..r.array("assignments")?.unwrap_or(0) {
                    r.i32("partition")?;
                    r.skip_array(4, "broker ids")?;
                    r.tagged("assignment tagged fields")?;
                }
                for _ in 0..r.array("configs")?.unwrap_or(0) {
                    r.string("config name")?;
                    r.string("config value")?;
                    r.tagged("config tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
            r.i32("timeout")?;
            if v >= 1 {
                r.i8("validate only")?;
            }
        }
        DELETE_TOPICS => {
            if v >= 6 {
                for _ in 0..r.array("topics")?.unwrap_or(0) {
                    if let Some(name) = r.string("topic name")? {
                        c.topic(name)?;
                    }
                    r.skip(16, "topic id")?;
                    r.tagged("topic tagged fields")?;
                }
            } else {
                r.strings("topic names", |t| c.topic(t))?;
            }
            r.i32("timeout")?;
        }
        DELETE_RECORDS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.skip(12, "partition")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
            r.i32("timeout")?;
        }
        OFFSET_FOR_LEADER_EPOCH => {
            if v >= 3 {
                r.i32("replica id")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.skip(if v >= 2 { 12 } else { 8 }, "partition")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        TXN_OFFSET_COMMIT => {
            r.string("transactional id")?;
            r.string("group id")?;
            r.skip(10, "producer id and epoch")?;
            if v >= 3 {
                r.i32("generation id")?;
                r.string("member id")?;
                r.string("group instance id")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.skip(if v >= 2 { 16 } else { 12 }, "partition")?;
                    r.string("committed metadata")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        CREATE_PARTITIONS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                topic_name_or_id(r, c, true)?;
                r.i32("count")?;
                for _ in 0..r.array("assignments")?.unwrap_or(0) {
                    r.skip_array(4, "broker ids")?;
                    r.tagged("assignment tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
            r.i32("timeout")?;
            r.i8("validate only")?;
        }
        _ => return Ok(Walk::NotRead),
    }
    r.tagged("tagged fields")?;
    Ok(Walk::Done)
}

/// A topic's name (kept), or in versions that name topics by id, its id
/// (skipped).
fn topic_name_or_id<'a>(r: &mut Reader<'a>, c: &mut ReqCtx<'a>, by_name: bool) -> Result<(), Stop> {
    if by_name {
        match r.string("topic name")? {
            Some(name) => c.topic(name),
            None => Err(Stop::Bad("topic name")),
        }
    } else {
        r.skip(16, "topic id")
    }
}

/// OffsetFetch's (nullable) list of topics and partition indexes.
fn offset_fetch_topics<'a>(
    r: &mut Reader<'a>,
    c: &mut ReqCtx<'a>,
    by_name: bool,
) -> Result<(), Stop> {
    for _ in 0..r.array("topics")?.unwrap_or(0) {
        topic_name_or_id(r, c, by_name)?;
        r.skip_array(4, "partition indexes")?;
        r.tagged("topic tagged fields")?;
    }
    Ok(())
}

// --- responses -----------------------------------------------------------------

/// The error codes a response walk met.
#[derive(Debug, Default)]
struct Errors {
    /// A code was read.
    seen: bool,
    first_failure: Option<i16>,
}

impl Errors {
    fn code(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        let c = r.i16("error code")?;
        self.seen = true;
        if c != 0 && self.first_failure.is_none() {
            self.first_failure = Some(c);
        }
        Ok(())
    }
}

/// Where a response's codes are, by API and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopLevel {
    /// The body is walked by [`response_errors`].
    Walked,
    /// A code first.
    First,
    /// The throttle time, then a code.
    AfterThrottle,
    /// Not read.
    None,
}

fn top_level(api: RequestApi) -> TopLevel {
    let v = api.api_version;
    match api.api_key {
        PRODUCE
        | FETCH
        | LIST_OFFSETS
        | METADATA
        | OFFSET_COMMIT
        | OFFSET_FETCH
        | FIND_COORDINATOR
        | LEAVE_GROUP
        | DESCRIBE_GROUPS
        | CREATE_TOPICS
        | DELETE_TOPICS
        | DELETE_RECORDS
        | OFFSET_FOR_LEADER_EPOCH
        | TXN_OFFSET_COMMIT
        | CREATE_ACLS
        | DESCRIBE_CONFIGS
        | ALTER_CONFIGS
        | CREATE_PARTITIONS
        | DELETE_GROUPS
        | INCREMENTAL_ALTER_CONFIGS => TopLevel::Walked,
        ADD_PARTITIONS_TO_TXN if v <= 3 => TopLevel::Walked,
        ADD_PARTITIONS_TO_TXN => TopLevel::AfterThrottle,
        // Since version 1 (JoinGroup: 2) after the throttle time.
        HEARTBEAT | SYNC_GROUP | LIST_GROUPS if v == 0 => TopLevel::First,
        JOIN_GROUP if v <= 1 => TopLevel::First,
        HEARTBEAT | SYNC_GROUP | LIST_GROUPS | JOIN_GROUP => TopLevel::AfterThrottle,
        // A code first (OffsetDelete: then the throttle time).
        4..=7 | SASL_HANDSHAKE | API_VERSIONS | SASL_AUTHENTICATE | 38..=41 | 47 | 52..=55 => {
            TopLevel::First
        }
        DESCRIBE_LOG_DIRS if v >= 3 => TopLevel::AfterThrottle,
        ELECT_LEADERS if v >= 1 => TopLevel::AfterThrottle,
        INIT_PRODUCER_ID
        | ADD_OFFSETS_TO_TXN
        | END_TXN
        | 29
        | 45
        | 46
        | 48
        | 50
        | 56
        | 57
        | 59
        | 60
        | 62..=64
        | 66..=68
        | 70..=74
        | 76
        | 78..=82 => TopLevel::AfterThrottle,
        _ => TopLevel::None,
    }
}

/// Reads the codes of a response body (after its header) to the request
/// `api`; `Walk::Done` when the codes were all read.
fn response_errors(r: &mut Reader<'_>, api: RequestApi, e: &mut Errors) -> Result<Walk, Stop> {
    let v = api.api_version;
    if max_version(api.api_key).is_none_or(|max| v > max) {
        return Ok(Walk::NotRead);
    }
    match top_level(api) {
        TopLevel::None => return Ok(Walk::NotRead),
        TopLevel::First => {
            e.code(r)?;
            return Ok(Walk::Done);
        }
        TopLevel::AfterThrottle => {
            r.i32("throttle time")?;
            e.code(r)?;
            return Ok(Walk::Done);
        }
        TopLevel::Walked => {}
    }
    // Throttle time first, from a version on (Produce: last).
    let throttle_from = match api.api_key {
        PRODUCE => i16::MAX,
        FETCH | FIND_COORDINATOR | LEAVE_GROUP | DESCRIBE_GROUPS | DELETE_TOPICS => 1,
        LIST_OFFSETS | CREATE_TOPICS | OFFSET_FOR_LEADER_EPOCH => 2,
        METADATA | OFFSET_COMMIT | OFFSET_FETCH => 3,
        _ => 0,
    };
    if v >= throttle_from {
        r.i32("throttle time")?;
    }
    match api.api_key {
        PRODUCE => {
            for _ in 0..r.array("responses")?.unwrap_or(0) {
                name_or_id(r, v <= 12)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    e.code(r)?;
                    let size = 8 + if v >= 2 { 8 } else { 0 } + if v >= 5 { 8 } else { 0 };
                    r.skip(size, "offsets")?;
                    if v >= 8 {
                        for _ in 0..r.array("record errors")?.unwrap_or(0) {
                            r.i32("batch index")?;
                            r.string("record error message")?;
                            r.tagged("record error tagged fields")?;
                        }
                        r.string("error message")?;
                    }
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        FETCH => {
            if v >= 7 {
                e.code(r)?;
                r.i32("session id")?;
            }
            for _ in 0..r.array("responses")?.unwrap_or(0) {
                name_or_id(r, v <= 12)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    e.code(r)?;
                    let size = 8 + if v >= 4 { 8 } else { 0 } + if v >= 5 { 8 } else { 0 };
                    r.skip(size, "offsets")?;
                    if v >= 4 {
                        for _ in 0..r.array("aborted transactions")?.unwrap_or(0) {
                            r.skip(16, "aborted transaction")?;
                            r.tagged("aborted transaction tagged fields")?;
                        }
                    }
                    if v >= 11 {
                        r.i32("preferred read replica")?;
                    }
                    r.bytes("records")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        LIST_OFFSETS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                name_or_id(r, true)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    e.code(r)?;
                    if v == 0 {
                        r.skip_array(8, "old style offsets")?;
                    } else {
                        r.skip(16 + if v >= 4 { 4 } else { 0 }, "offset")?;
                    }
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        METADATA => {
            for _ in 0..r.array("brokers")?.unwrap_or(0) {
                r.i32("node id")?;
                r.string("host")?;
                r.i32("port")?;
                if v >= 1 {
                    r.string("rack")?;
                }
                r.tagged("broker tagged fields")?;
            }
            if v >= 2 {
                r.string("cluster id")?;
            }
            if v >= 1 {
                r.i32("controller id")?;
            }
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                e.code(r)?;
                r.string("topic name")?;
                if v >= 10 {
                    r.skip(16, "topic id")?;
                }
                if v >= 1 {
                    r.i8("is internal")?;
                }
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    e.code(r)?;
                    r.skip(8 + if v >= 7 { 4 } else { 0 }, "partition")?;
                    r.skip_array(4, "replicas")?;
                    r.skip_array(4, "isr")?;
                    if v >= 5 {
                        r.skip_array(4, "offline replicas")?;
                    }
                    r.tagged("partition tagged fields")?;
                }
                if v >= 8 {
                    r.i32("topic authorized operations")?;
                }
                r.tagged("topic tagged fields")?;
            }
            if (8..=10).contains(&v) {
                r.i32("cluster authorized operations")?;
            }
            if v >= 13 {
                e.code(r)?;
            }
        }
        OFFSET_COMMIT | TXN_OFFSET_COMMIT => {
            let by_name = api.api_key == TXN_OFFSET_COMMIT || v <= 9;
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                name_or_id(r, by_name)?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    e.code(r)?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        OFFSET_FETCH => {
            if v <= 7 {
                offset_fetch_response_topics(r, e, v, true)?;
                if v >= 2 {
                    e.code(r)?;
                }
            } else {
                for _ in 0..r.array("groups")?.unwrap_or(0) {
                    r.string("group id")?;
                    offset_fetch_response_topics(r, e, v, v <= 9)?;
                    e.code(r)?;
                    r.tagged("group tagged fields")?;
                }
            }
        }
        FIND_COORDINATOR => {
            if v <= 3 {
                e.code(r)?;
                return Ok(Walk::Done);
            }
            for _ in 0..r.array("coordinators")?.unwrap_or(0) {
                r.string("key")?;
                r.i32("node id")?;
                r.string("host")?;
                r.i32("port")?;
                e.code(r)?;
                r.string("error message")?;
                r.tagged("coordinator tagged fields")?;
            }
        }
        LEAVE_GROUP => {
            e.code(r)?;
            if v >= 3 {
                for _ in 0..r.array("members")?.unwrap_or(0) {
                    r.string("member id")?;
                    r.string("group instance id")?;
                    e.code(r)?;
                    r.tagged("member tagged fields")?;
                }
            }
        }
        DESCRIBE_GROUPS => {
            for _ in 0..r.array("groups")?.unwrap_or(0) {
                e.code(r)?;
                if v >= 6 {
                    r.string("error message")?;
                }
                for what in ["group id", "group state", "protocol type", "protocol data"] {
                    r.string(what)?;
                }
                for _ in 0..r.array("members")?.unwrap_or(0) {
                    r.string("member id")?;
                    if v >= 4 {
                        r.string("group instance id")?;
                    }
                    r.string("client id")?;
                    r.string("client host")?;
                    r.bytes("member metadata")?;
                    r.bytes("member assignment")?;
                    r.tagged("member tagged fields")?;
                }
                if v >= 3 {
                    r.i32("authorized operations")?;
                }
                r.tagged("group tagged fields")?;
            }
        }
        CREATE_TOPICS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                r.string("topic name")?;
                if v >= 7 {
                    r.skip(16, "topic id")?;
                }
                e.code(r)?;
                if v >= 1 {
                    r.string("error message")?;
                }
                if v >= 5 {
                    r.skip(6, "partitions and replication factor")?;
                    for _ in 0..r.array("configs")?.unwrap_or(0) {
                        r.string("config name")?;
                        r.string("config value")?;
                        r.skip(3, "config flags")?;
                        r.tagged("config tagged fields")?;
                    }
                }
                r.tagged("topic tagged fields")?;
            }
        }
        DELETE_TOPICS => {
            for _ in 0..r.array("responses")?.unwrap_or(0) {
                r.string("topic name")?;
                if v >= 6 {
                    r.skip(16, "topic id")?;
                }
                e.code(r)?;
                if v >= 5 {
                    r.string("error message")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        DELETE_RECORDS => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                r.string("topic name")?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.skip(12, "partition")?;
                    e.code(r)?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        OFFSET_FOR_LEADER_EPOCH => {
            for _ in 0..r.array("topics")?.unwrap_or(0) {
                r.string("topic name")?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    e.code(r)?;
                    r.skip(4 + if v >= 1 { 4 } else { 0 } + 8, "partition")?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        ADD_PARTITIONS_TO_TXN => {
            for _ in 0..r.array("results")?.unwrap_or(0) {
                r.string("topic name")?;
                for _ in 0..r.array("partitions")?.unwrap_or(0) {
                    r.i32("partition")?;
                    e.code(r)?;
                    r.tagged("partition tagged fields")?;
                }
                r.tagged("topic tagged fields")?;
            }
        }
        CREATE_ACLS => {
            for _ in 0..r.array("results")?.unwrap_or(0) {
                e.code(r)?;
                r.string("error message")?;
                r.tagged("result tagged fields")?;
            }
        }
        DESCRIBE_CONFIGS => {
            for _ in 0..r.array("results")?.unwrap_or(0) {
                e.code(r)?;
                r.string("error message")?;
                r.i8("resource type")?;
                r.string("resource name")?;
                for _ in 0..r.array("configs")?.unwrap_or(0) {
                    r.string("config name")?;
                    r.string("config value")?;
                    // read only, then is default (v0) or source (v1+), then
                    // is sensitive.
                    r.skip(3, "config flags")?;
                    if v >= 1 {
                        for _ in 0..r.array("synonyms")?.unwrap_or(0) {
                            r.string("synonym name")?;
                            r.string("synonym value")?;
                            r.i8("synonym source")?;
                            r.tagged("synonym tagged fields")?;
                        }
                    }
                    if v >= 3 {
                        r.i8("config type")?;
                        r.string("documentation")?;
                    }
                    r.tagged("config tagged fields")?;
                }
                r.tagged("result tagged fields")?;
            }
        }
        ALTER_CONFIGS | INCREMENTAL_ALTER_CONFIGS => {
            for _ in 0..r.array("responses")?.unwrap_or(0) {
                e.code(r)?;
                r.string("error message")?;
                r.i8("resource type")?;
                r.string("resource name")?;
                r.tagged("response tagged fields")?;
            }
        }
        CREATE_PARTITIONS => {
            for _ in 0..r.array("results")?.unwrap_or(0) {
                r.string("topic name")?;
                e.code(r)?;
                r.string("error message")?;
                r.tagged("result tagged fields")?;
            }
        }
        DELETE_GROUPS => {
            for _ in 0..r.array("results")?.unwrap_or(0) {
                r.string("group id")?;
                e.code(r)?;
                r.tagged("result tagged fields")?;
            }
        }
        _ => return Ok(Walk::NotRead),
    }
    Ok(Walk::Done)
}

/// A topic's name or id in a response, skipped.
fn name_or_id(r: &mut Reader<'_>, by_name: bool) -> Result<(), Stop> {
    if by_name {
        r.string("topic name").map(|_| ())
    } else {
        r.skip(16, "topic id")
    }
}

/// OffsetFetch response topics, with a code per partition.
fn offset_fetch_response_topics(
    r: &mut Reader<'_>,
    e: &mut Errors,
    v: i16,
    by_name: bool,
) -> Result<(), Stop> {
    for _ in 0..r.array("topics")?.unwrap_or(0) {
        name_or_id(r, by_name)?;
        for _ in 0..r.array("partitions")?.unwrap_or(0) {
            r.skip(12 + if v >= 5 { 4 } else { 0 }, "partition")?;
            r.string("metadata")?;
            e.code(r)?;
            r.tagged("partition tagged fields")?;
        }
        r.tagged("topic tagged fields")?;
    }
    Ok(())
}
