//! Unit tests: recorded Redis 7.0 traffic (`tests/fixtures/redis`, see its
//! `record.py`), then cut, broken and foreign bytes.

use super::*;
use causeway_model::ResponseStatus::{ClientError, Ok as Fine, ServerError};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/redis/", $name))
    };
}

const REQ: MessageKind = MessageKind::Request;
const RESP: MessageKind = MessageKind::Response;

/// One recorded exchange: what the request and the reply must parse to.
struct Case {
    name: &'static str,
    req: &'static [u8],
    resp: &'static [u8],
    /// `(command, key)` of every request in the write, in order.
    commands: &'static [(&'static str, &'static str)],
    /// Status and exception prefix of every paired reply, in order.
    replies: &'static [(ResponseStatus, &'static str)],
    /// Unpaired messages (pushes) among the replies.
    unpaired: usize,
}

const OK: (ResponseStatus, &str) = (Fine, "");

macro_rules! case {
    ($name:literal, [$(($c:literal, $k:literal)),*], [$($r:expr),*]) => {
        case!($name, [$(($c, $k)),*], [$($r),*], 0)
    };
    ($name:literal, [$(($c:literal, $k:literal)),*], [$($r:expr),*], $unpaired:literal) => {
        Case {
            name: $name,
            req: include_bytes!(concat!("../../tests/fixtures/redis/", $name, ".req")),
            resp: include_bytes!(concat!("../../tests/fixtures/redis/", $name, ".resp")),
            commands: &[$(($c, $k)),*],
            replies: &[$($r),*],
            unpaired: $unpaired,
        }
    };
}

fn cases() -> Vec<Case> {
    vec![
        case!("set", [("SET", "user:1000")], [OK]),
        case!("get", [("GET", "user:1000")], [OK]),
        case!("get_nil", [("GET", "missing:key")], [OK]),
        case!("del", [("DEL", "user:1000")], [OK]),
        case!("incr", [("INCR", "counter:visits")], [OK]),
        case!("lpush", [("LPUSH", "queue:jobs")], [OK]),
        case!("lrange", [("LRANGE", "queue:jobs")], [OK]),
        case!("hset", [("HSET", "user:42")], [OK]),
        case!("hgetall", [("HGETALL", "user:42")], [OK]),
        case!("mset", [("MSET", "k1")], [OK]),
        case!(
            "wrongtype",
            [("GET", "queue:jobs")],
            [(ClientError, "WRONGTYPE Operation against a key")]
        ),
        case!(
            "unknown_command",
            [("FOOBAR", "")],
            [(ClientError, "ERR unknown command 'FOOBAR'")]
        ),
        case!(
            "wrong_args",
            [("GET", "")],
            [(ClientError, "ERR wrong number of arguments for 'get'")]
        ),
        case!(
            "auth_no_password",
            [("AUTH", "")],
            [(ClientError, "ERR AUTH <password> called without")]
        ),
        case!("lowercase", [("HGET", "user:42")], [OK]),
        case!("client_setname", [("CLIENT SETNAME", "")], [OK]),
        case!("config_get", [("CONFIG GET", "")], [OK]),
        case!("eval", [("EVAL", "counter:visits")], [OK]),
        case!("xadd", [("XADD", "stream:events")], [OK]),
        case!("xread", [("XREAD", "stream:events")], [OK]),
        case!(
            "noscript",
            [("EVALSHA", "")],
            [(ClientError, "NOSCRIPT No matching script")]
        ),
        case!("set_big", [("SET", "blob:1")], [OK]),
        case!("get_big", [("GET", "blob:1")], [OK]),
        case!("inline_ping", [("PING", "")], [OK]),
        case!("inline_set", [("SET", "inline:key")], [OK]),
        case!(
            "multi_exec",
            [
                ("MULTI", ""),
                ("INCR", "tx:counter"),
                ("INCR", "tx:counter"),
                ("EXEC", "")
            ],
            [OK, OK, OK, OK]
        ),
        case!(
            "noperm",
            [("GET", "user:42")],
            [(ClientError, "NOPERM this user has no permissions")]
        ),
        case!(
            "oom",
            [("SET", "oom:key")],
            [(ServerError, "OOM command not allowed")]
        ),
        case!(
            "busy",
            [("GET", "user:1000")],
            [(ServerError, "BUSY Redis is busy running a script")]
        ),
        case!("resp3_hello", [("HELLO", "")], [OK]),
        case!("resp3_hgetall_map", [("HGETALL", "user:42")], [OK]),
        case!("resp3_smembers_set", [("SMEMBERS", "tags")], [OK]),
        case!("resp3_zscore_double", [("ZSCORE", "board")], [OK]),
        case!("resp3_get_null", [("GET", "missing:key")], [OK]),
        case!("resp3_exists_boolean", [("EVAL", "")], [OK]),
        case!("resp3_info_verbatim", [("INFO", "")], [OK]),
        case!("resp3_bignum", [("EVAL", "")], [OK]),
        case!("resp3_debug_attrib", [("DEBUG", "")], [OK]),
        case!("resp3_debug_push", [("DEBUG", "")], [OK], 1),
        case!("resp3_debug_map", [("DEBUG", "")], [OK]),
        case!("resp3_debug_false", [("DEBUG", "")], [OK]),
        case!("resp3_subscribe", [("SUBSCRIBE", "news")], [], 1),
        case!(
            "pipeline_set",
            [
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__"),
                ("SET", "key:__rand_int__")
            ],
            [OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK]
        ),
        case!(
            "pipeline_get",
            [
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__"),
                ("GET", "key:__rand_int__")
            ],
            [OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK]
        ),
    ]
}

/// Replies recorded without a request of their own.
const SCRIPT_KILLED: &[u8] = fixture!("script_killed.resp");
const PUSHED_MESSAGE: &[u8] = fixture!("resp3_message.resp");

/// Every message in `buf`, split at `message_len` as the agent does; the
/// last must end exactly at the end.
fn split(buf: &[u8], kind: MessageKind) -> Vec<Head<'_>> {
    let mut heads = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let h = parse(&buf[pos..], kind).unwrap_or_else(|e| panic!("at {pos}: {e:?}"));
        let len = h
            .message_len
            .unwrap_or_else(|| panic!("no length at {pos}: {h:?}"));
        assert!(len > 0);
        pos += len as usize;
        heads.push(h);
    }
    assert_eq!(pos, buf.len(), "messages overrun the buffer");
    heads
}

#[test]
fn fixture_requests() {
    for c in cases() {
        let heads = split(c.req, REQ);
        let got: Vec<(&str, &str)> = heads
            .iter()
            .map(|h| (h.request_type.as_ref(), h.request_resource.as_ref()))
            .collect();
        assert_eq!(got, c.commands, "{}", c.name);
        for h in &heads {
            assert!(!h.unpaired, "{}", c.name);
            assert_eq!(h.response_status, None, "{}", c.name);
        }
        assert_eq!(infer(c.req), Some(REQ), "{}", c.name);
    }
}

#[test]
fn fixture_replies() {
    for c in cases() {
        let heads = split(c.resp, RESP);
        assert_eq!(
            heads.iter().filter(|h| h.unpaired).count(),
            c.unpaired,
            "{}",
            c.name
        );
        let paired: Vec<_> = heads.iter().filter(|h| !h.unpaired).collect();
        assert_eq!(paired.len(), c.replies.len(), "{}", c.name);
        for (h, (status, exception)) in paired.iter().zip(c.replies) {
            assert_eq!(h.response_status, Some(*status), "{}", c.name);
            assert!(
                h.exception.starts_with(exception),
                "{}: {:?}",
                c.name,
                h.exception
            );
            assert_eq!(h.exception.is_empty(), exception.is_empty(), "{}", c.name);
            assert_eq!(h.response_code, None);
        }
        // Arrays of list items and field names are no commands.
        assert_eq!(infer(c.resp), Some(RESP), "{}", c.name);
        // A reply that is one value ends its write.
        if heads.len() == 1 {
            assert!(ends_message(c.resp, RESP), "{}", c.name);
        }
    }
}

#[test]
fn fixtures_without_request() {
    let h = parse(SCRIPT_KILLED, RESP).unwrap();
    // Killed by an operator: not the caller's doing.
    assert_eq!(h.response_status, Some(ServerError));
    assert!(h.exception.starts_with("ERR Script killed by user"));
    assert_eq!(h.message_len, Some(SCRIPT_KILLED.len() as u64));

    let h = parse(PUSHED_MESSAGE, RESP).unwrap();
    assert!(h.unpaired);
    assert_eq!(h.version, "3");
    assert_eq!(h.message_len, Some(PUSHED_MESSAGE.len() as u64));
}

#[test]
fn versions() {
    let hello = parse(fixture!("resp3_hello.req"), REQ).unwrap();
    assert_eq!(hello.version, "3");
    let reply = parse(fixture!("resp3_hello.resp"), RESP).unwrap();
    assert_eq!(reply.version, "3");
    // RESP2 types say nothing.
    assert_eq!(parse(fixture!("get.resp"), RESP).unwrap().version, "");
    assert_eq!(
        parse(b"*3\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$4\r\nAUTH\r\n", REQ)
            .unwrap()
            .version,
        "2"
    );
    // The attribute makes it RESP3; the reply proper is a bulk string.
    let attrib = parse(fixture!("resp3_debug_attrib.resp"), RESP).unwrap();
    assert_eq!(attrib.version, "3");
    assert_eq!(attrib.response_status, Some(Fine));
}

#[test]
fn secrets_stay_out() {
    for (req, secret) in [
        (&fixture!("auth_no_password.req")[..], "s3cret-pass"),
        (b"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$6\r\nhunter\r\n", "hunter"),
        (b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$6\r\nhunter\r\n", "hunter"),
        (b"AUTH hunter\r\n", "hunter"),
        (b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$6\r\nhunter\r\n", "hunter"),
        (b"*4\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$1\r\nu\r\n$7\r\n>hunter\r\n", "hunter"),
        (
            b"*8\r\n$7\r\nMIGRATE\r\n$4\r\nhost\r\n$4\r\n6379\r\n$0\r\n\r\n$1\r\n0\r\n$4\r\n5000\r\n$4\r\nAUTH\r\n$6\r\nhunter\r\n",
            "hunter",
        ),
    ] {
        let h = parse(req, REQ).unwrap();
        let shown = format!("{h:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
    // The password of the recorded NOPERM session's AUTH.
    let auth = b"*3\r\n$4\r\nAUTH\r\n$9\r\ncwlimited\r\n$7\r\ncw-pass\r\n";
    assert!(!format!("{:?}", parse(auth, REQ).unwrap()).contains("cw"));
}

#[test]
fn keys_by_command() {
    for (req, ty, key) in [
        (&b"*4\r\n$5\r\nBITOP\r\n$3\r\nAND\r\n$4\r\ndest\r\n$1\r\na\r\n"[..], "BITOP", "dest"),
        (b"*3\r\n$6\r\nOBJECT\r\n$8\r\nencoding\r\n$3\r\nkey\r\n", "OBJECT ENCODING", "key"),
        (b"*3\r\n$6\r\nmemory\r\n$5\r\nusage\r\n$3\r\nkey\r\n", "MEMORY USAGE", "key"),
        (b"*3\r\n$5\r\nXINFO\r\n$6\r\nSTREAM\r\n$1\r\ns\r\n", "XINFO STREAM", "s"),
        (b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n", "COMMAND DOCS", ""),
        (b"*1\r\n$7\r\nCOMMAND\r\n", "COMMAND", ""),
        (b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$6\r\nreturn\r\n", "SCRIPT LOAD", ""),
        (b"*3\r\n$7\r\nCLUSTER\r\n$7\r\nKEYSLOT\r\n$1\r\nk\r\n", "CLUSTER KEYSLOT", ""),
        // A subcommand newer than the table: two words all the same.
        (b"*2\r\n$6\r\nCLIENT\r\n$8\r\nnewthing\r\n", "CLIENT NEWTHING", ""),
        (b"*2\r\n$6\r\nCLIENT\r\n$3\r\n\x00\x01\x02\r\n", "CLIENT", ""),
        (b"*4\r\n$6\r\nZUNION\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n", "ZUNION", "a"),
        (b"*5\r\n$6\r\nBLMPOP\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\nl\r\n$4\r\nLEFT\r\n", "BLMPOP", "l"),
        (b"*3\r\n$4\r\nEVAL\r\n$6\r\nreturn\r\n$1\r\n0\r\n", "EVAL", ""),
        (b"*4\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\n1\r\n$2\r\nk1\r\n", "FCALL", "k1"),
        (
            b"*10\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$1\r\ng\r\n$1\r\nc\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n$7\r\nstreams\r\n$2\r\ns1\r\n$2\r\ns2\r\n$1\r\n>\r\n",
            "XREADGROUP",
            "s1",
        ),
        (b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$2\r\nhi\r\n", "PUBLISH", "news"),
        (b"*3\r\n$8\r\nJSON.GET\r\n$3\r\ndoc\r\n$1\r\n$\r\n", "JSON.GET", "doc"),
        (b"*2\r\n$8\r\njson.get\r\n$3\r\ndoc\r\n", "JSON.GET", "doc"),
        (b"*2\r\n$6\r\nNEWCMD\r\n$3\r\narg\r\n", "NEWCMD", ""),
        (b"*2\r\n$4\r\nHTTL\r\n$1\r\nh\r\n", "HTTL", "h"),
        (b"*2\r\n$3\r\nSeT\r\n$1\r\nk\r\n", "SET", "k"),
        (b"*2\r\n$3\r\nGET\r\n$2\r\n\xff\xfe\r\n", "GET", "\u{fffd}\u{fffd}"),
        (b"*1\r\n$0\r\n\r\n", "", ""),
    ] {
        let h = parse(req, REQ).unwrap_or_else(|e| panic!("{e:?}: {:?}", String::from_utf8_lossy(req)));
        assert_eq!((h.request_type.as_ref(), h.request_resource.as_ref()), (ty, key));
        assert_eq!(h.message_len, Some(req.len() as u64));
    }
}

#[test]
fn names_are_borrowed_when_they_can_be() {
    let h = parse(b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n", REQ).unwrap();
    assert!(matches!(h.request_type, Cow::Borrowed("GET")));
    assert!(matches!(h.request_resource, Cow::Borrowed("k")));
    let h = parse(b"*3\r\n$6\r\nclient\r\n$7\r\nsetname\r\n$1\r\nx\r\n", REQ).unwrap();
    assert!(matches!(h.request_type, Cow::Borrowed("CLIENT SETNAME")));
    let h = parse(b"*1\r\n$6\r\nNEWCMD\r\n", REQ).unwrap();
    assert!(matches!(h.request_type, Cow::Borrowed("NEWCMD")));
    let h = parse(fixture!("wrongtype.resp"), RESP).unwrap();
    assert!(matches!(h.exception, Cow::Borrowed(_)));
}

#[test]
fn command_table_is_sorted() {
    for pair in COMMANDS.windows(2) {
        assert!(
            pair[0].name < pair[1].name,
            "{} {}",
            pair[0].name,
            pair[1].name
        );
    }
    for c in COMMANDS {
        if let Key::Sub(subs) = c.key {
            for pair in subs.windows(2) {
                assert!(pair[0].name < pair[1].name, "{}", pair[1].name);
            }
            for s in subs {
                assert!(s.name.starts_with(c.name) && s.name.as_bytes()[c.name.len()] == b' ');
                assert!(!matches!(s.key, Key::Sub(_)));
            }
        }
        assert!(c.name.len() <= 32 && !c.name.bytes().any(|b| b.is_ascii_lowercase()));
    }
    assert!(COMMANDS.len() > 240);
}

#[test]
fn inline_commands() {
    for (req, ty, key, len) in [
        (&b"PING\r\n"[..], "PING", "", Some(6)),
        (b"PING\n", "PING", "", Some(5)),
        (b"ping\r\n", "PING", "", Some(6)),
        (b"  GET  k  \r\n", "GET", "k", Some(12)),
        (b"SET \"my key\" v\r\n", "SET", "my key", Some(16)),
        (b"SET 'a b' v\r\n", "SET", "a b", Some(13)),
        (b"SET \"a\\\"b\" v\r\n", "SET", "a\\\"b", Some(14)),
        // Cut: the last word may be cut, so it is not kept.
        (b"GET some", "GET", "", None),
        (b"GET some ", "GET", "some", None),
        (b"PING\r\nPING\r\n", "PING", "", Some(6)),
    ] {
        let h = parse(req, REQ).unwrap();
        assert_eq!(
            (
                h.request_type.as_ref(),
                h.request_resource.as_ref(),
                h.message_len
            ),
            (ty, key, len),
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
    // Empty lines: read and ignored by Redis, no reply.
    let h = parse(b"\r\n", REQ).unwrap();
    assert!(h.unpaired);
    assert_eq!(h.message_len, Some(2));
    assert_eq!(parse(b"GET", REQ), Err(ParseError::Incomplete));
    assert_eq!(parse(b"   ", REQ), Err(ParseError::Incomplete));
    assert_eq!(parse(b"+OK\r\n", REQ), Err(ParseError::Mismatch));
    assert_eq!(parse(b"$3\r\nfoo\r\n", REQ), Err(ParseError::Mismatch));
    assert_eq!(
        parse(b"GET \x00\x01\r\n", REQ),
        Err(ParseError::Invalid("inline command"))
    );
}

#[test]
fn empty_arrays_are_unpaired() {
    for req in [&b"*0\r\n"[..], b"*-1\r\n"] {
        let h = parse(req, REQ).unwrap();
        assert!(h.unpaired);
        assert_eq!(h.message_len, Some(req.len() as u64));
    }
}

#[test]
fn replies_of_every_type() {
    for (resp, len) in [
        (&b"+OK\r\n"[..], 5),
        (b"-ERR x\r\n", 8),
        (b":0\r\n", 4),
        (b":-42\r\n", 6),
        (b":-9223372036854775808\r\n", 23),
        (b":9223372036854775807\r\n", 22),
        (b"$0\r\n\r\n", 6),
        (b"$-1\r\n", 5),
        (b"*-1\r\n", 5),
        (b"*0\r\n", 4),
        (b"_\r\n", 3),
        (b",1.5\r\n", 6),
        (b",-inf\r\n", 7),
        (b",nan\r\n", 6),
        (b",1e-10\r\n", 8),
        (b"#t\r\n", 4),
        (b"#f\r\n", 4),
        (b"(-123456789012345678901234567890\r\n", 34),
        (b"!21\r\nSYNTAX invalid syntax\r\n", 28),
        (b"=15\r\ntxt:Some string\r\n", 22),
        (b"%1\r\n+a\r\n:1\r\n", 12),
        (b"~2\r\n+a\r\n+b\r\n", 12),
        (b">2\r\n+a\r\n+b\r\n", 12),
        (b"|1\r\n+a\r\n+b\r\n:7\r\n", 16),
        (b"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:7\r\n", 28),
        (b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", 36),
        (b"*?\r\n:1\r\n:2\r\n.\r\n", 15),
        (b"%?\r\n+a\r\n:1\r\n.\r\n", 15),
        (b"*2\r\n*1\r\n:1\r\n%1\r\n$1\r\nk\r\n~1\r\n_\r\n", 30),
        // Trailing bytes are the next message's.
        (b"+OK\r\n+OK\r\n", 5),
    ] {
        let h = parse(resp, RESP).unwrap_or_else(|e| panic!("{e:?}: {resp:?}"));
        assert_eq!(
            h.message_len,
            Some(len),
            "{:?}",
            String::from_utf8_lossy(resp)
        );
    }
    let h = parse(b"!21\r\nSYNTAX invalid syntax\r\n", RESP).unwrap();
    assert_eq!(h.response_status, Some(ServerError));
    assert_eq!(h.exception, "SYNTAX invalid syntax");
    assert_eq!(h.version, "3");
    let h = parse(b"!13\r\nNOAUTH needed\r\n", RESP).unwrap();
    assert_eq!(h.response_status, Some(ClientError));
    // A push before nothing else still answers nothing.
    assert!(
        parse(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", RESP)
            .unwrap()
            .unpaired
    );
}

#[test]
fn resp2_pubsub_deliveries_are_unpaired() {
    for (resp, unpaired) in [
        (
            &b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"[..],
            true,
        ),
        (
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n",
            true,
        ),
        (b"*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n", true),
        // The confirmation answers SUBSCRIBE.
        (b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", false),
    ] {
        assert_eq!(parse(resp, RESP).unwrap().unpaired, unpaired);
    }
}

#[test]
fn error_classes() {
    for (line, status) in [
        (
            &b"-ERR wrong number of arguments for 'get' command\r\n"[..],
            ClientError,
        ),
        (
            b"-ERR unknown command 'x', with args beginning with: \r\n",
            ClientError,
        ),
        (
            b"-ERR unknown subcommand 'x'. Try CLIENT HELP.\r\n",
            ClientError,
        ),
        (b"-ERR syntax error\r\n", ClientError),
        (
            b"-ERR value is not an integer or out of range\r\n",
            ClientError,
        ),
        (
            b"-ERR invalid expire time in 'set' command\r\n",
            ClientError,
        ),
        (
            b"-ERR Protocol error: invalid multibulk length\r\n",
            ClientError,
        ),
        (b"-ERR EXEC without MULTI\r\n", ClientError),
        (
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ClientError,
        ),
        (b"-NOAUTH Authentication required.\r\n", ClientError),
        (
            b"-NOPERM User default has no permissions to run the 'get' command\r\n",
            ClientError,
        ),
        (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
            ClientError,
        ),
        (
            b"-EXECABORT Transaction discarded because of previous errors.\r\n",
            ClientError,
        ),
        (b"-MOVED 3999 127.0.0.1:6381\r\n", ClientError),
        (b"-ASK 3999 127.0.0.1:6381\r\n", ClientError),
        (
            b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            ClientError,
        ),
        (
            b"-LOADING Redis is loading the dataset in memory\r\n",
            ServerError,
        ),
        (b"-BUSY Redis is busy running a script.\r\n", ServerError),
        (b"-MASTERDOWN Link with MASTER is down\r\n", ServerError),
        (
            b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
            ServerError,
        ),
        (
            b"-READONLY You can't write against a read only replica.\r\n",
            ServerError,
        ),
        (
            b"-MISCONF Redis is configured to save RDB snapshots\r\n",
            ServerError,
        ),
        (
            b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
            ServerError,
        ),
        (b"-CLUSTERDOWN The cluster is down\r\n", ServerError),
        (b"-ERR max number of clients reached\r\n", ServerError),
        (b"-ERR Background save already in progress\r\n", ServerError),
        (b"-SOMETHINGNEW happened\r\n", ServerError),
        (b"-ERR\r\n", ServerError),
        (b"-\r\n", ServerError),
    ] {
        let h = parse(line, RESP).unwrap();
        assert_eq!(
            h.response_status,
            Some(status),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(h.exception.as_bytes(), &line[1..line.len() - 2]);
    }
}

#[test]
fn cut_error_lines() {
    // The class is known once the code is.
    let h = parse(b"-WRONGTYPE Operation aga", RESP).unwrap();
    assert_eq!(h.response_status, Some(ClientError));
    assert_eq!(h.exception, "WRONGTYPE Operation aga");
    assert_eq!(h.message_len, None);
    assert_eq!(parse(b"-WRONGTY", RESP), Err(ParseError::Incomplete));
    assert_eq!(parse(b"-", RESP), Err(ParseError::Incomplete));
    assert_eq!(parse(b"!30\r\nNOAU", RESP), Err(ParseError::Incomplete));
    let h = parse(b"!30\r\nNOAUTH a", RESP).unwrap();
    assert_eq!(h.response_status, Some(ClientError));
    assert_eq!(h.message_len, Some(37));
}

/// Every prefix of every recorded message: no panic, a length that is
/// either unknown or the true one, the command and key once their bulk
/// strings are complete (never a cut key), the reply's class.
#[test]
fn truncated_at_every_byte() {
    for c in cases() {
        let first_req = &c.req[..split_len(c.req, REQ)];
        let full = parse(first_req, REQ).unwrap();
        for cut in 0..=first_req.len() {
            let p = &first_req[..cut];
            let _ = infer(p);
            assert!(
                !ends_message(p, REQ) || cut == first_req.len(),
                "{} at {cut}",
                c.name
            );
            match parse(p, REQ) {
                Ok(h) => {
                    assert!(
                        h.message_len.is_none() || h.message_len == full.message_len,
                        "{} at {cut}: {h:?}",
                        c.name
                    );
                    assert!(
                        full.request_type.starts_with(h.request_type.as_ref()),
                        "{} at {cut}: {h:?}",
                        c.name
                    );
                    assert!(
                        h.request_resource.is_empty()
                            || h.request_resource == full.request_resource,
                        "{} at {cut}: {h:?}",
                        c.name
                    );
                }
                Err(e) => assert_eq!(e, ParseError::Incomplete, "{} at {cut}", c.name),
            }
        }
        // From the end of the command's bulk string on, the command is
        // known; from the end of the key's, a key at argument 1.
        if c.req[0] == b'*' {
            let key_at_1 = matches!(
                lookup(COMMANDS, full.request_type.as_bytes(), 0).map(|c| c.key),
                Some(Key::At(1))
            );
            let (cmd_end, key_end) = (nth_bulk_end(first_req, 1), nth_bulk_end(first_req, 2));
            for cut in cmd_end..=first_req.len() {
                let h = parse(&first_req[..cut], REQ).unwrap();
                if !full.request_type.contains(' ') {
                    assert_eq!(h.request_type, full.request_type, "{} at {cut}", c.name);
                }
                if key_at_1 && cut >= key_end {
                    assert_eq!(
                        h.request_resource, full.request_resource,
                        "{} at {cut}",
                        c.name
                    );
                }
            }
        }

        let first_resp = &c.resp[..split_len(c.resp, RESP)];
        let full = parse(first_resp, RESP).unwrap();
        for cut in 0..=first_resp.len() {
            let p = &first_resp[..cut];
            let _ = infer(p);
            assert!(
                !ends_message(p, RESP) || cut == first_resp.len(),
                "{} at {cut}",
                c.name
            );
            match parse(p, RESP) {
                Ok(h) => {
                    assert!(
                        h.message_len.is_none() || h.message_len == full.message_len,
                        "{} at {cut}: {h:?}",
                        c.name
                    );
                    if h.response_status.is_some() {
                        let class = |s: Option<ResponseStatus>| s == Some(Fine);
                        assert_eq!(
                            class(h.response_status),
                            class(full.response_status),
                            "{} at {cut}",
                            c.name
                        );
                    }
                    assert!(full.exception.starts_with(h.exception.as_ref()));
                    assert_eq!(h.unpaired, full.unpaired, "{} at {cut}", c.name);
                }
                Err(e) => assert_eq!(e, ParseError::Incomplete, "{} at {cut}", c.name),
            }
        }
    }
}

/// Length of the first message.
fn split_len(buf: &[u8], kind: MessageKind) -> usize {
    parse(buf, kind).unwrap().message_len.unwrap() as usize
}

/// Offset after the `n`th bulk string of a command array (or its end).
fn nth_bulk_end(req: &[u8], n: usize) -> usize {
    let (_, mut pos) = int_line(req, 1, "").unwrap().unwrap();
    for _ in 0..n {
        match bulk_arg(req, pos) {
            Ok(Bulk::Whole(_, next)) => pos = next,
            _ => return req.len(),
        }
    }
    pos
}

#[test]
fn length_known_when_the_last_string_is_cut() {
    // As captured: the first 1024 bytes.
    let set = fixture!("set_big.req");
    let h = parse(&set[..1024], REQ).unwrap();
    assert_eq!(
        (h.request_type.as_ref(), h.request_resource.as_ref()),
        ("SET", "blob:1")
    );
    assert_eq!(h.message_len, Some(set.len() as u64));
    let get = fixture!("get_big.resp");
    let h = parse(&get[..1024], RESP).unwrap();
    assert_eq!(h.message_len, Some(get.len() as u64));
    // Not the last element: unknown.
    let mut mset = b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$3000\r\n".to_vec();
    mset.extend_from_slice(&[b'v'; 500]);
    let h = parse(&mset, REQ).unwrap();
    assert_eq!(h.message_len, None);
    assert_eq!(h.request_resource, "a");
    // Nested, last at every level.
    let h = parse(b"*2\r\n:1\r\n*2\r\n:2\r\n$100\r\nabc", RESP).unwrap();
    assert_eq!(h.message_len, Some(22 + 100 + 2));
    let h = parse(b"*2\r\n*2\r\n:2\r\n$100\r\nabc", RESP).unwrap();
    assert_eq!(h.message_len, None);
}

#[test]
fn pipelined_batches_split_exactly() {
    let set = fixture!("pipeline_set.req");
    let heads = split(set, REQ);
    assert_eq!(heads.len(), 16);
    // The agent restarts at each length; so does `ends_message`.
    assert!(ends_message(set, REQ));
    assert!(!ends_message(&set[..set.len() - 1], REQ));
    let get = fixture!("pipeline_get.resp");
    assert_eq!(split(get, RESP).len(), 16);
    assert!(ends_message(get, RESP));
    // A whole syscall of the tail of a value is not an end we can tell.
    assert!(!ends_message(&get[1..], RESP));
    assert!(!ends_message(b"", RESP));
}

#[test]
fn garbage_is_rejected_without_panic() {
    for (buf, kind, err) in [
        (
            &b"*99999999999\r\n"[..],
            REQ,
            ParseError::Invalid("array length"),
        ),
        (
            b"*99999999999\r\n",
            RESP,
            ParseError::Invalid("aggregate length"),
        ),
        (
            b"*99999999999999999999999\r\n",
            RESP,
            ParseError::Invalid("aggregate length"),
        ),
        (
            b"$99999999999999999999\r\n",
            RESP,
            ParseError::Invalid("length"),
        ),
        (
            b"*2\r\n$-5\r\nGET\r\n",
            REQ,
            ParseError::Invalid("bulk length"),
        ),
        (b"*2\r\n$-1\r\n", REQ, ParseError::Invalid("bulk length")),
        (b"*2\r\n:1\r\n", REQ, ParseError::Invalid("bulk string")),
        (b"$-2\r\n", RESP, ParseError::Invalid("length")),
        (b"*-2\r\n", RESP, ParseError::Invalid("aggregate length")),
        (b"%-1\r\n", RESP, ParseError::Invalid("aggregate length")),
        (b"!-1\r\n", RESP, ParseError::Invalid("length")),
        (b"*01\r\n", RESP, ParseError::Invalid("aggregate length")),
        (b"*+1\r\n", RESP, ParseError::Invalid("aggregate length")),
        (b":-0\r\n", RESP, ParseError::Invalid("integer")),
        (
            b":9223372036854775808\r\n",
            RESP,
            ParseError::Invalid("integer"),
        ),
        (
            b":-9223372036854775809\r\n",
            RESP,
            ParseError::Invalid("integer"),
        ),
        (b":-\r\n", RESP, ParseError::Invalid("integer")),
        (b":1x\r\n", RESP, ParseError::Invalid("integer")),
        (b"$3\r\nabcd\r\n", RESP, ParseError::Invalid("string end")),
        (b"+OK\rX", RESP, ParseError::Invalid("line ending")),
        (b"+OK\n", RESP, ParseError::Invalid("line ending")),
        (b"_x\r\n", RESP, ParseError::Invalid("null")),
        (b"#x\r\n", RESP, ParseError::Invalid("boolean")),
        (b",abc\r\n", RESP, ParseError::Invalid("double")),
        (b"(12a\r\n", RESP, ParseError::Invalid("big number")),
        (
            b"=3\r\nabc\r\n",
            RESP,
            ParseError::Invalid("verbatim format"),
        ),
        (b"*1\r\n?\r\n", RESP, ParseError::Invalid("type byte")),
        (b"$?\r\nx", RESP, ParseError::Invalid("string chunk")),
        (b"\x16\x03\x01\x02\x00", RESP, ParseError::Mismatch),
        (b"\x16\x03\x01\x02\x00", REQ, ParseError::Mismatch),
        (b"", RESP, ParseError::Incomplete),
        (b"", REQ, ParseError::Incomplete),
        (b"*", REQ, ParseError::Incomplete),
        (b"*3\r\n$3\r\nGE", REQ, ParseError::Incomplete),
    ] {
        assert_eq!(
            parse(buf, kind),
            Err(err),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
        assert!(!ends_message(buf, kind));
    }
    // Huge but well-formed counts: a value longer than the buffer.
    assert_eq!(
        parse(b"*2147483647\r\n:1\r\n", RESP).unwrap().message_len,
        None
    );
    assert_eq!(parse(b"*2147483647\r\n", REQ), Err(ParseError::Incomplete));
    assert_eq!(
        parse(b"*2147483648\r\n", REQ),
        Err(ParseError::Invalid("array length"))
    );
    let h = parse(b"*2147483647\r\n$3\r\nGET\r\n$1\r\nk\r\n", REQ).unwrap();
    assert_eq!((h.request_type.as_ref(), h.message_len), ("GET", None));
}

#[test]
fn deep_nesting_is_bounded() {
    for open in [
        &b"*1\r\n"[..],
        b"%1\r\n",
        b"~1\r\n",
        b">1\r\n",
        b"*?\r\n",
        b"|1\r\n:1\r\n",
    ] {
        let deep: Vec<u8> = open.repeat(10_000).into_iter().chain(*b":1\r\n").collect();
        assert_eq!(
            parse(&deep, RESP),
            Err(ParseError::Invalid("nesting depth"))
        );
        assert!(!ends_message(&deep, RESP));
        let _ = infer(&deep);
    }
    // 32 levels are fine.
    let ok: Vec<u8> = b"*1\r\n"
        .repeat(MAX_DEPTH)
        .into_iter()
        .chain(*b":1\r\n")
        .collect();
    assert_eq!(parse(&ok, RESP).unwrap().message_len, Some(ok.len() as u64));
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"*$+-:_,#!=(%~>|?.;0123456789\r\n\r\nabcSETGET ";
    for round in 0..20_000 {
        let len = (next() % 64) as usize;
        let buf: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if round % 2 == 0 {
                    r as u8
                } else {
                    alphabet[(r % alphabet.len() as u64) as usize]
                }
            })
            .collect();
        let _ = infer(&buf);
        for kind in [REQ, RESP] {
            if let Ok(h) = parse(&buf, kind) {
                if let Some(n) = h.message_len {
                    // A whole value's length never overruns what it saw,
                    // unless a bulk string's header announced more.
                    assert!(n > 0);
                }
            }
            let _ = ends_message(&buf, kind);
        }
    }
}

#[test]
fn infer_recognises() {
    for p in [
        &b"*1\r\n$4\r\nPING\r\n"[..],
        b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n",
        b"*2\r\n$8\r\njson.get\r\n$1\r\nk\r\n",
        b"*2\r\n$6\r\nNEWCMD\r\n$1\r\nk\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\nvvv",
        b"*3\r\n$3\r\nSE",
        b"*3\r\n$",
        b"PING\r\n",
        b"PING\n",
        b"INFO server\r\n",
        b"SET k v\r\n",
    ] {
        assert_eq!(infer(p), Some(REQ), "{:?}", String::from_utf8_lossy(p));
    }
    for p in [
        &b"+OK\r\n"[..],
        b"+PONG\r\n",
        b"-ERR unknown command 'x'\r\n",
        b"-WRONGTYPE Operation\r\n",
        b":12\r\n",
        b":-1\r\n",
        b"$5\r\n",
        b"$5\r\nhel",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*2\r\n:1\r\n:2\r\n",
        b"*2\r\n$-1\r\n$1\r\na\r\n",
        b"*2\r\n$4\r\nname\r\n$3\r\nbob\r\n",
        b"*1\r\n$9\r\nuser:1000\r\n",
        b"_\r\n",
        b",1.5\r\n",
        b"#t\r\n",
        b"%1\r\n",
        b"~2\r\n$1\r\na\r\n",
        b">3\r\n$7\r\nmessage\r\n",
        b"|1\r\n+a\r\n+b\r\n:1\r\n",
        b"(123\r\n",
        b"!5\r\nERR x\r\n",
        b"=5\r\ntxt:a\r\n",
    ] {
        assert_eq!(infer(p), Some(RESP), "{:?}", String::from_utf8_lossy(p));
    }
}

#[test]
fn infer_rejects_other_protocols() {
    let mysql_greeting: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00\x2a\x3b\x0c\x5e\x01\x11\x22\x33\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x4c\x19\x1a\x34\x6b\x7b\x04\x62\x11\x55\x01\x2a\x00caching_sha2_password\x00";
    let mysql_query: &[u8] = b"\x2a\x00\x00\x00\x03select * from users where id = 1";
    let pg_ssl: &[u8] = b"\x00\x00\x00\x08\x04\xd2\x16\x2f";
    let pg_startup: &[u8] =
        b"\x00\x00\x00\x25\x00\x03\x00\x00user\x00postgres\x00database\x00app\x00\x00";
    let pg_query: &[u8] = b"Q\x00\x00\x00\x0dSELECT 1;\x00";
    let pg_ready: &[u8] = b"Z\x00\x00\x00\x05I";
    let tls_hello: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x11\x22";
    for p in [
        &b""[..],
        b"*",
        b"*3\r\n",
        b"*3",
        b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /index.html\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"POST /api HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        mysql_greeting,
        mysql_query,
        pg_ssl,
        pg_startup,
        pg_query,
        pg_ready,
        tls_hello,
        b"+OK POP3 server ready\r\n",
        b"+OK",
        b"+\r\n",
        b"+\x00\x01\r\n",
        b"-err lower\r\n",
        b"-\x00\x00\x00\x01",
        b":\r\n",
        b":abc\r\n",
        b"$\x00\x00\x00",
        b"$12",
        b"_\x00",
        b"QUIT\r\n",
        b"AUTH PLAIN dGVzdA==\r\n",
        b"TYPE I\r\n",
        b"get foo\r\n",
        b"PING",
        b"PINGX\r\n",
        b"EHLO mail.example.com\r\n",
        b"220 smtp.example.com ESMTP\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"\x00\x00\x00\x00\x00\x00\x00\x00",
    ] {
        assert_eq!(infer(p), None, "{:?}", String::from_utf8_lossy(p));
    }
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let buf: Vec<u8> = (0..256)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        assert_eq!(infer(&buf), None, "{buf:?}");
    }
}
