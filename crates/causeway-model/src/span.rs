//! A span: one request paired with its response, as one observation point saw
//! it (DeepFlow's `l7_flow_log`).

use serde::Serialize;
use std::fmt;

/// The application protocol of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum L7Protocol {
    #[default]
    Unknown,
    /// HTTP/1.0 and HTTP/1.1.
    Http,
    /// HTTP/2, cleartext (h2c) or over TLS (h2).
    Http2,
    /// gRPC over HTTP/2.
    Grpc,
    Dns,
    Mysql,
    Postgresql,
    /// RESP2 and RESP3.
    Redis,
    Kafka,
    /// MQTT 3.1.1 and 5.
    Mqtt,
    /// Dubbo 2 protocol with hessian2 bodies.
    Dubbo,
    /// SOFARPC over the Bolt protocol (`sofarpc`, as `as_str` spells it).
    #[serde(rename = "sofarpc")]
    SofaRpc,
    /// RPC frames whose header is a protobuf message.
    ProtobufRpc,
}

impl L7Protocol {
    /// Every protocol by name (all but `Unknown`).
    pub const ALL: [L7Protocol; 12] = [
        L7Protocol::Http,
        L7Protocol::Http2,
        L7Protocol::Grpc,
        L7Protocol::Dns,
        L7Protocol::Mysql,
        L7Protocol::Postgresql,
        L7Protocol::Redis,
        L7Protocol::Kafka,
        L7Protocol::Mqtt,
        L7Protocol::Dubbo,
        L7Protocol::SofaRpc,
        L7Protocol::ProtobufRpc,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            L7Protocol::Unknown => "unknown",
            L7Protocol::Http => "http",
            L7Protocol::Http2 => "http2",
            L7Protocol::Grpc => "grpc",
            L7Protocol::Dns => "dns",
            L7Protocol::Redis => "redis",
            L7Protocol::Mysql => "mysql",
            L7Protocol::Postgresql => "postgresql",
            L7Protocol::Kafka => "kafka",
            L7Protocol::Mqtt => "mqtt",
            L7Protocol::Dubbo => "dubbo",
            L7Protocol::SofaRpc => "sofarpc",
            L7Protocol::ProtobufRpc => "protobuf_rpc",
        }
    }

    /// The number stored for this protocol (never renumber).
    pub fn code(self) -> u32 {
        match self {
            L7Protocol::Unknown => 0,
            L7Protocol::Http => 1,
            L7Protocol::Http2 => 2,
            L7Protocol::Grpc => 3,
            L7Protocol::Dns => 4,
            L7Protocol::Mysql => 5,
            L7Protocol::Postgresql => 6,
            L7Protocol::Redis => 7,
            L7Protocol::Kafka => 8,
            L7Protocol::Mqtt => 9,
            L7Protocol::Dubbo => 10,
            L7Protocol::SofaRpc => 11,
            L7Protocol::ProtobufRpc => 12,
        }
    }

    /// The protocol stored as `code` (unknown codes are `Unknown`).
    pub fn from_code(code: u32) -> L7Protocol {
        L7Protocol::ALL
            .into_iter()
            .find(|p| p.code() == code)
            .unwrap_or(L7Protocol::Unknown)
    }

    /// Parses the names users type (`http`, `redis`, `mysql`, `postgresql`/`pgsql`).
    pub fn from_name(name: &str) -> Option<L7Protocol> {
        match name.to_ascii_lowercase().as_str() {
            "http" | "http1" | "http/1" | "http/1.1" => Some(L7Protocol::Http),
            "redis" | "resp" => Some(L7Protocol::Redis),
            "mysql" | "mariadb" => Some(L7Protocol::Mysql),
            "postgresql" | "postgres" | "pgsql" | "pg" => Some(L7Protocol::Postgresql),
            "http2" | "h2" | "h2c" | "http/2" => Some(L7Protocol::Http2),
            "grpc" => Some(L7Protocol::Grpc),
            "dns" => Some(L7Protocol::Dns),
            "kafka" => Some(L7Protocol::Kafka),
            "mqtt" => Some(L7Protocol::Mqtt),
            "dubbo" => Some(L7Protocol::Dubbo),
            "sofarpc" | "sofa_rpc" | "sofa" | "bolt" => Some(L7Protocol::SofaRpc),
            "protobuf_rpc" | "protobufrpc" | "protobuf-rpc" => Some(L7Protocol::ProtobufRpc),
            "unknown" => Some(L7Protocol::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for L7Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the span was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationPoint {
    /// In the process that sent the request.
    Client,
    /// In the process that received the request.
    Server,
    /// On the wire (packet capture).
    Network,
}

impl ObservationPoint {
    pub const ALL: [ObservationPoint; 3] = [
        ObservationPoint::Client,
        ObservationPoint::Server,
        ObservationPoint::Network,
    ];

    /// The number stored (never renumber).
    pub fn code(self) -> u32 {
        match self {
            ObservationPoint::Client => 0,
            ObservationPoint::Server => 1,
            ObservationPoint::Network => 2,
        }
    }

    pub fn from_code(code: u32) -> Option<ObservationPoint> {
        ObservationPoint::ALL.into_iter().find(|o| o.code() == code)
    }

    pub fn from_name(name: &str) -> Option<ObservationPoint> {
        ObservationPoint::ALL
            .into_iter()
            .find(|o| o.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ObservationPoint::Client => "client",
            ObservationPoint::Server => "server",
            ObservationPoint::Network => "network",
        }
    }
}

/// The outcome class of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Ok,
    ClientError,
    ServerError,
    /// No response arrived within the pairing window.
    Timeout,
    Unknown,
}

impl ResponseStatus {
    pub const ALL: [ResponseStatus; 5] = [
        ResponseStatus::Ok,
        ResponseStatus::ClientError,
        ResponseStatus::ServerError,
        ResponseStatus::Timeout,
        ResponseStatus::Unknown,
    ];

    /// The number stored (never renumber).
    pub fn code(self) -> u32 {
        match self {
            ResponseStatus::Ok => 0,
            ResponseStatus::ClientError => 1,
            ResponseStatus::ServerError => 2,
            ResponseStatus::Timeout => 3,
            ResponseStatus::Unknown => 4,
        }
    }

    pub fn from_code(code: u32) -> ResponseStatus {
        ResponseStatus::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or(ResponseStatus::Unknown)
    }

    pub fn from_name(name: &str) -> Option<ResponseStatus> {
        ResponseStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ResponseStatus::Ok => "ok",
            ResponseStatus::ClientError => "client_error",
            ResponseStatus::ServerError => "server_error",
            ResponseStatus::Timeout => "timeout",
            ResponseStatus::Unknown => "unknown",
        }
    }
}

/// One request and its response, seen at one observation point.
///
/// `src` is always the client side and `dst` the server side, whichever
/// process observed the span. Times are wall-clock microseconds since the
/// Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub protocol: L7Protocol,
    /// Protocol version as it appeared (`1.1`).
    pub version: String,
    pub observation_point: ObservationPoint,
    pub pid: u32,
    pub comm: String,
    /// The process at the other end, when it is on this host and the
    /// agent saw its socket (loopback, or both ends traced); else 0 and "".
    pub peer_pid: u32,
    pub peer_comm: String,
    pub tid_req: u32,
    pub tid_resp: u32,
    /// Goroutine ids of request and response (Go TLS), else 0.
    pub coroutine_id_req: u64,
    pub coroutine_id_resp: u64,
    pub socket_id: u64,
    pub l4_protocol: crate::L4Protocol,
    /// Seen as plaintext at a TLS library's boundary (OpenSSL uprobes).
    pub is_tls: bool,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    /// Method, command or API name.
    pub request_type: String,
    /// Host, database, topic.
    pub request_domain: String,
    /// Path, statement, key.
    pub request_resource: String,
    /// The resource folded for aggregation: ids in paths and SQL literals
    /// become placeholders, Redis keeps its command.
    pub endpoint: String,
    /// What paired the response with the request when not their order: DNS
    /// transaction id, HTTP/2 stream id, Kafka correlation id, MQTT packet
    /// id, Dubbo/Bolt request id.
    pub request_id: Option<u64>,
    /// Error text the response carried (Redis error, SQL error message).
    pub exception: String,
    /// What the response answered, briefly (DNS: the answers' data).
    pub result: String,
    pub user_agent: String,
    pub response_code: Option<i32>,
    pub response_status: ResponseStatus,
    pub start_time_us: u64,
    pub end_time_us: u64,
    pub duration_us: u64,
    /// Bytes of the whole request message (head and body), over all syscalls.
    pub request_length: u64,
    /// Bytes of the whole response message.
    pub response_length: u64,
    pub req_tcp_seq: u32,
    pub resp_tcp_seq: u32,
    pub syscall_trace_id_req: u64,
    pub syscall_trace_id_resp: u64,
    /// X-Request-ID of the request.
    pub x_request_id: String,
    /// X-Request-ID of the response.
    pub x_request_id_resp: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_names_users_type() {
        for p in L7Protocol::ALL {
            let json = serde_json::to_string(&p).expect("serialize");
            assert_eq!(json.trim_matches('"'), p.as_str());
            assert_eq!(L7Protocol::from_name(p.as_str()), Some(p));
        }
    }
}
