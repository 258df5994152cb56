//! SmartEncoding's tag ids: rows store integers, dictionaries hold the
//! strings (DESIGN.md, section 4).
//!
//! An id is a pure function of the tag's kind and its string, so the agent
//! encodes without a round trip to the server, several servers writing one
//! store agree without coordinating, and a re-sent batch encodes to the same
//! ids. 64-bit hashes make a collision among the strings one deployment
//! sees negligible (about 1 in 10^7 at a million strings of one kind).

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What a tag names. The numbers are stored: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagKind {
    /// The host an agent runs on (its host name).
    Host = 1,
    /// A process by its command name (`nginx`, `redis-server`).
    Process = 2,
    /// What users group by: the process name where the process is known,
    /// else the address (`10.0.0.7:6379` for a server, `10.0.0.7` for a
    /// client); later issues put workloads and services here.
    Service = 3,
    /// The agent that observed a span (`--agent-id`, default the host name).
    Agent = 4,
    /// A span's endpoint (the resource folded for aggregation:
    /// `/users/{id}`, `SELECT * FROM t WHERE id = ?`, `GET`), as metric
    /// rows key it.
    Endpoint = 5,
}

impl TagKind {
    pub const ALL: [TagKind; 5] = [
        TagKind::Host,
        TagKind::Process,
        TagKind::Service,
        TagKind::Agent,
        TagKind::Endpoint,
    ];

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<TagKind> {
        TagKind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TagKind::Host => "host",
            TagKind::Process => "process",
            TagKind::Service => "service",
            TagKind::Agent => "agent",
            TagKind::Endpoint => "endpoint",
        }
    }

    pub fn from_name(name: &str) -> Option<TagKind> {
        TagKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The id of `value` as a tag of `kind`; 0 (unknown) for the empty string,
/// never 0 otherwise.
pub fn tag_id(kind: TagKind, value: &str) -> u64 {
    if value.is_empty() {
        return 0;
    }
    xxh3_64_with_seed(value.as_bytes(), kind.code() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_kind_and_value_only() {
        assert_eq!(tag_id(TagKind::Process, ""), 0);
        let a = tag_id(TagKind::Process, "nginx");
        assert_ne!(a, 0);
        assert_eq!(a, tag_id(TagKind::Process, "nginx"));
        assert_ne!(a, tag_id(TagKind::Service, "nginx"));
        assert_ne!(a, tag_id(TagKind::Process, "nginx2"));
        // Stored ids must never change between releases.
        assert_eq!(tag_id(TagKind::Host, "h"), xxh3_64_with_seed(b"h", 1));
        for k in TagKind::ALL {
            assert_eq!(TagKind::from_code(k.code()), Some(k));
            assert_eq!(TagKind::from_name(k.as_str()), Some(k));
        }
    }
}
