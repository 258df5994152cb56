//! Property tests for the MQTT parser: no input panics it; every control
//! packet a generator writes (3.1.1 and 5, with properties, wills, users,
//! several filters and codes) comes back with its facts and exact length,
//! alone, pipelined and at every truncation point; reading without the
//! connection's version never contradicts reading with it; and what
//! `infer` accepts, `parse` reads.

use causeway_l7::infer::MessageKind::{self, Request, Response};
use causeway_l7::mqtt::{
    ends_message, infer, message_kind, parse, parse_with_version, publish_flags, reason_status,
    sender, topic_alias, PublishFlags, Version,
};
use causeway_l7::{Head, ParseError};
use causeway_model::ResponseStatus;
use proptest::prelude::*;

const VERSIONS: [Option<Version>; 4] = [
    None,
    Some(Version::V3_1),
    Some(Version::V3_1_1),
    Some(Version::V5),
];

// --- any bytes ---------------------------------------------------------------------

fn exercise(buf: &[u8]) {
    let inferred = infer(buf);
    for kind in [Request, Response] {
        for v in VERSIONS {
            if let Ok(h) = parse_with_version(buf, kind, v) {
                assert!(h.message_len.is_some_and(|n| n >= 2));
            }
        }
        let _ = ends_message(buf, kind);
    }
    let _ = (message_kind(buf), sender(buf), publish_flags(buf));
    let _ = (topic_alias(buf, None), topic_alias(buf, Some(Version::V5)));
    if let Some(kind) = inferred {
        // What infer claims, parse reads, and the roles agree.
        assert!(parse(buf, kind).is_ok(), "{buf:02x?}");
        assert_eq!(message_kind(buf), Some(kind));
    }
}

/// Pieces of MQTT, so that random strings reach into the grammar.
const TOKENS: &[&[u8]] = &[
    b"\x10",
    b"\x20",
    b"\x30",
    b"\x32",
    b"\x34",
    b"\x40",
    b"\x50",
    b"\x62",
    b"\x70",
    b"\x82",
    b"\x90",
    b"\xa2",
    b"\xb0",
    b"\xc0",
    b"\xd0",
    b"\xe0",
    b"\xf0",
    b"\x00",
    b"\x01",
    b"\x02",
    b"\x03",
    b"\x04",
    b"\x05",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\x00\x04MQTT\x04",
    b"\x00\x04MQTT\x05",
    b"\x00\x06MQIsdp\x03",
    b"\x00\x03a/b",
    b"\x1f\x00\x02no",
    b"\x26\x00\x01k\x00\x01v",
    b"\x0b\x07",
    b"\x23\x00\x03",
    b"\x87",
    b"\x10",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..1100)) {
        exercise(&buf);
    }

    #[test]
    fn mqtt_like_bytes_never_panic(parts in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
        exercise(&parts.concat());
    }
}

// --- a model of the control packets ---------------------------------------------------

/// The properties a generated MQTT 5 packet may carry.
#[derive(Debug, Clone, Default)]
struct Props {
    reason: Option<String>,
    user: Vec<(String, String)>,
    topic_alias: Option<u16>,
    subscription_id: Option<u32>,
    session_expiry: Option<u32>,
}

impl Props {
    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        if let Some(s) = self.session_expiry {
            p.push(0x11);
            p.extend_from_slice(&s.to_be_bytes());
        }
        if let Some(a) = self.topic_alias {
            p.push(0x23);
            p.extend_from_slice(&a.to_be_bytes());
        }
        if let Some(id) = self.subscription_id {
            p.push(0x0b);
            p.extend(varint(id as usize));
        }
        if let Some(r) = &self.reason {
            p.push(0x1f);
            p.extend(string(r.as_bytes()));
        }
        for (k, v) in &self.user {
            p.push(0x26);
            p.extend(string(k.as_bytes()));
            p.extend(string(v.as_bytes()));
        }
        [varint(p.len()), p].concat()
    }
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

fn string(b: &[u8]) -> Vec<u8> {
    [(b.len() as u16).to_be_bytes().to_vec(), b.to_vec()].concat()
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    [vec![first], varint(body.len()), body.to_vec()].concat()
}

#[derive(Debug, Clone)]
enum Packet {
    Connect {
        version: Version,
        client_id: String,
        will: Option<(u8, String, Vec<u8>)>,
        user: Option<String>,
        password: Option<Vec<u8>>,
        props: Props,
    },
    Connack {
        v5: Option<Props>,
        code: u8,
    },
    Publish {
        qos: u8,
        retain: bool,
        dup: bool,
        topic: String,
        id: u16,
        v5: Option<Props>,
        payload: Vec<u8>,
    },
    /// PUBACK, PUBREC, PUBREL, PUBCOMP; in MQTT 5 a code and properties.
    Ack {
        ptype: u8,
        id: u16,
        v5: Option<(u8, Option<Props>)>,
    },
    Subscribe {
        id: u16,
        v5: Option<Props>,
        filters: Vec<(String, u8)>,
    },
    Suback {
        id: u16,
        v5: Option<Props>,
        codes: Vec<u8>,
    },
    Unsubscribe {
        id: u16,
        v5: Option<Props>,
        filters: Vec<String>,
    },
    Unsuback {
        id: u16,
        v5: Option<(Props, Vec<u8>)>,
    },
    Ping(bool),
    Disconnect(Option<(u8, Option<Props>)>),
    Auth(Option<(u8, Props)>),
}

const NAMES: [&str; 16] = [
    "",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// What the parser must report for a packet, with the version known.
#[derive(Debug, Default)]
struct Facts {
    request_type: &'static str,
    domain: String,
    resource: String,
    id: Option<u64>,
    code: Option<u8>,
    status: Option<ResponseStatus>,
    exception: Option<String>,
    unpaired: bool,
    /// The packet identifies MQTT on its own (infer claims it).
    strong: bool,
    kind: Option<MessageKind>,
    /// Its version when it is a CONNECT, or the one it was written for.
    version: Option<Version>,
}

fn first_code(codes: &[u8]) -> Option<u8> {
    codes
        .iter()
        .copied()
        .find(|&c| c >= 0x80)
        .or(codes.first().copied())
}

impl Packet {
    /// The version the packet is written in (what the connection says).
    fn version(&self) -> Version {
        let v5 = match self {
            Packet::Connect { version, .. } => return *version,
            Packet::Connack { v5, .. } | Packet::Subscribe { v5, .. } => v5.is_some(),
            Packet::Suback { v5, .. } | Packet::Unsubscribe { v5, .. } => v5.is_some(),
            Packet::Publish { v5, .. } => v5.is_some(),
            Packet::Ack { v5, .. } | Packet::Disconnect(v5) => v5.is_some(),
            Packet::Unsuback { v5, .. } => v5.is_some(),
            Packet::Ping(_) => false,
            Packet::Auth(_) => true,
        };
        if v5 {
            Version::V5
        } else {
            Version::V3_1_1
        }
    }

    fn encode(&self) -> Vec<u8> {
        let props = |p: &Option<Props>| p.as_ref().map(Props::encode).unwrap_or_default();
        match self {
            Packet::Connect {
                version,
                client_id,
                will,
                user,
                password,
                props: p,
            } => {
                let (name, level): (&[u8], u8) = match version {
                    Version::V3_1 => (b"MQIsdp", 3),
                    Version::V3_1_1 => (b"MQTT", 4),
                    Version::V5 => (b"MQTT", 5),
                };
                let v5 = *version == Version::V5;
                let mut flags = 0x02;
                if let Some((qos, _, _)) = will {
                    flags |= 0x04 | (qos << 3);
                }
                if user.is_some() {
                    flags |= 0x80;
                }
                if password.is_some() {
                    flags |= 0x40;
                }
                let mut b = [string(name), vec![level, flags, 0, 60]].concat();
                if v5 {
                    b.extend(p.encode());
                }
                b.extend(string(client_id.as_bytes()));
                if let Some((_, topic, payload)) = will {
                    if v5 {
                        b.extend(Props::default().encode());
                    }
                    b.extend(string(topic.as_bytes()));
                    b.extend(string(payload));
                }
                if let Some(u) = user {
                    b.extend(string(u.as_bytes()));
                }
                if let Some(pw) = password {
                    b.extend(string(pw));
                }
                packet(0x10, &b)
            }
            Packet::Connack { v5, code } => packet(0x20, &[vec![0, *code], props(v5)].concat()),
            Packet::Publish {
                qos,
                retain,
                dup,
                topic,
                id,
                v5,
                payload,
            } => {
                let first = 0x30 | (u8::from(*dup) << 3) | (qos << 1) | u8::from(*retain);
                let mut b = string(topic.as_bytes());
                if *qos > 0 {
                    b.extend(id.to_be_bytes());
                }
                b.extend(props(v5));
                b.extend(payload);
                packet(first, &b)
            }
            Packet::Ack { ptype, id, v5 } => {
                let first = (ptype << 4) | if *ptype == 6 { 2 } else { 0 };
                let mut b = id.to_be_bytes().to_vec();
                if let Some((code, p)) = v5 {
                    b.push(*code);
                    b.extend(props(p));
                }
                packet(first, &b)
            }
            Packet::Subscribe { id, v5, filters } => {
                let mut b = [id.to_be_bytes().to_vec(), props(v5)].concat();
                for (f, o) in filters {
                    b.extend(string(f.as_bytes()));
                    b.push(*o);
                }
                packet(0x82, &b)
            }
            Packet::Suback { id, v5, codes } => packet(
                0x90,
                &[id.to_be_bytes().to_vec(), props(v5), codes.clone()].concat(),
            ),
            Packet::Unsubscribe { id, v5, filters } => {
                let mut b = [id.to_be_bytes().to_vec(), props(v5)].concat();
                for f in filters {
                    b.extend(string(f.as_bytes()));
                }
                packet(0xa2, &b)
            }
            Packet::Unsuback { id, v5 } => {
                let mut b = id.to_be_bytes().to_vec();
                if let Some((p, codes)) = v5 {
                    b.extend(p.encode());
                    b.extend(codes);
                }
                packet(0xb0, &b)
            }
            Packet::Ping(req) => vec![if *req { 0xc0 } else { 0xd0 }, 0],
            Packet::Disconnect(v5) => {
                let b = match v5 {
                    Some((code, p)) => [vec![*code], props(p)].concat(),
                    None => Vec::new(),
                };
                packet(0xe0, &b)
            }
            Packet::Auth(a) => {
                let b = match a {
                    Some((code, p)) => [vec![*code], p.encode()].concat(),
                    None => Vec::new(),
                };
                packet(0xf0, &b)
            }
        }
    }

    fn facts(&self) -> Facts {
        let buf = self.encode();
        let t = buf[0] >> 4;
        let mut f = Facts {
            request_type: NAMES[usize::from(t)],
            kind: message_kind(&buf),
            version: Some(self.version()),
            ..Facts::default()
        };
        let reason = |f: &mut Facts, code: u8, p: Option<&Props>| {
            f.code = Some(code);
            f.status = Some(reason_status(code));
            if code >= 0x80 {
                f.exception = p.and_then(|p| p.reason.clone());
            }
        };
        match self {
            Packet::Connect {
                client_id, user, ..
            } => {
                f.domain = client_id.clone();
                f.resource = user
                    .as_ref()
                    .map(|u| format!("user={u}"))
                    .unwrap_or_default();
                f.strong = true;
            }
            Packet::Connack { v5, code } => match v5 {
                Some(p) => reason(&mut f, *code, Some(p)),
                None => {
                    f.code = Some(*code);
                    f.status = Some(match code {
                        0 => ResponseStatus::Ok,
                        3 => ResponseStatus::ServerError,
                        _ => ResponseStatus::ClientError,
                    });
                }
            },
            Packet::Publish { qos, topic, id, .. } => {
                f.resource = topic.clone();
                f.unpaired = *qos == 0;
                f.id = (*qos > 0).then_some(u64::from(*id));
                f.strong = !topic.is_empty() && !topic.contains(['+', '#']);
            }
            Packet::Ack { ptype, id, v5 } => {
                f.id = Some(u64::from(*id));
                match v5 {
                    Some((code, p)) => reason(&mut f, *code, p.as_ref()),
                    None if *ptype != 6 => f.status = Some(ResponseStatus::Ok),
                    None => {}
                }
            }
            Packet::Subscribe { id, filters, .. } => {
                f.id = Some(u64::from(*id));
                f.resource = filters[0].0.clone();
                f.strong = true;
            }
            Packet::Unsubscribe { id, filters, .. } => {
                f.id = Some(u64::from(*id));
                f.resource = filters[0].clone();
                f.strong = true;
            }
            Packet::Suback { id, v5, codes } => {
                f.id = Some(u64::from(*id));
                let code = first_code(codes).unwrap();
                match v5 {
                    Some(p) => reason(&mut f, code, Some(p)),
                    None => {
                        f.code = Some(code);
                        f.status = Some(if code >= 0x80 {
                            ResponseStatus::ClientError
                        } else {
                            ResponseStatus::Ok
                        });
                    }
                }
            }
            Packet::Unsuback { id, v5 } => {
                f.id = Some(u64::from(*id));
                match v5 {
                    Some((p, codes)) => reason(&mut f, first_code(codes).unwrap(), Some(p)),
                    None => f.status = Some(ResponseStatus::Ok),
                }
            }
            Packet::Ping(req) => {
                // Claimed alone only (see the tests below).
                if !req {
                    f.status = Some(ResponseStatus::Ok);
                }
            }
            Packet::Disconnect(v5) => {
                f.unpaired = true;
                if let Some((code, p)) = v5 {
                    reason(&mut f, *code, p.as_ref());
                }
            }
            Packet::Auth(a) => {
                if let Some((code, p)) = a {
                    reason(&mut f, *code, Some(p));
                }
            }
        }
        f
    }
}

// --- generators ------------------------------------------------------------------

/// Topic names: printable, any script, sometimes with wildcards (which
/// parse but are not inferred).
fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,8}(/[a-z0-9_-]{1,8}){0,4}",
        "\\PC{1,40}",
        Just("a/+/c".to_owned()),
    ]
}

/// Topic filters with wildcards where they may stand.
fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof!["[a-z0-9]{1,6}", Just("+".to_owned())], 1..5),
        any::<bool>(),
    )
        .prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            f
        })
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}

fn props(alias: bool) -> impl Strategy<Value = Props> {
    (
        prop::option::of(text()),
        prop::collection::vec((text(), text()), 0..3),
        prop::option::of(1u16..),
        prop::option::of(1u32..268_435_455),
        prop::option::of(any::<u32>()),
    )
        .prop_map(
            move |(reason, user, topic_alias, subscription_id, session_expiry)| Props {
                reason,
                user,
                topic_alias: topic_alias.filter(|_| alias),
                subscription_id,
                session_expiry,
            },
        )
}

fn maybe_v5(alias: bool) -> impl Strategy<Value = Option<Props>> {
    prop::option::of(props(alias))
}

/// Codes the specification lets each packet carry.
const ACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const REL_CODES: &[u8] = &[0x00, 0x92];
const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
    0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
];
const SUBACK_V5_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2,
];
const SUBACK_V3_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91];
const DISCONNECT_CODES: &[u8] = &[0x00, 0x04, 0x80, 0x81, 0x87, 0x8b, 0x8e, 0x93, 0x98, 0xa2];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn code(codes: &'static [u8]) -> impl Strategy<Value = u8> {
    prop::sample::select(codes)
}

fn control_packet() -> impl Strategy<Value = Packet> {
    let version = prop::sample::select(&[Version::V3_1, Version::V3_1_1, Version::V5][..]);
    prop_oneof![
        (
            version,
            "[a-zA-Z0-9_-]{0,23}",
            prop::option::of((0u8..3, topic(), prop::collection::vec(any::<u8>(), 0..20))),
            prop::option::of("[a-z]{1,10}"),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
            props(false),
        )
            .prop_map(|(version, client_id, will, user, password, props)| {
                // 3.1.x: a password needs a user name.
                let password = password.filter(|_| user.is_some() || version == Version::V5);
                Packet::Connect {
                    version,
                    client_id,
                    will,
                    user,
                    password,
                    props,
                }
            }),
        prop_oneof![
            (0u8..=5).prop_map(|code| Packet::Connack { v5: None, code }),
            (props(false), code(CONNACK_CODES))
                .prop_map(|(p, code)| Packet::Connack { v5: Some(p), code }),
        ],
        (
            0u8..3,
            any::<bool>(),
            any::<bool>(),
            topic(),
            1u16..,
            maybe_v5(true),
            prop::collection::vec(any::<u8>(), 0..1500),
        )
            .prop_map(
                |(qos, retain, dup, topic, id, v5, payload)| Packet::Publish {
                    qos,
                    retain,
                    dup: dup && qos > 0,
                    topic,
                    id,
                    v5,
                    payload,
                }
            ),
        (
            4u8..=7,
            1u16..,
            prop::option::of((any::<prop::sample::Index>(), prop::option::of(props(false))))
        )
            .prop_map(|(ptype, id, v5)| Packet::Ack {
                ptype,
                id,
                v5: v5.map(|(i, p)| {
                    let codes = if ptype <= 5 { ACK_CODES } else { REL_CODES };
                    (*i.get(codes), p)
                }),
            }),
        (
            1u16..,
            maybe_v5(false),
            prop::collection::vec((filter(), 0u8..3), 1..4)
        )
            .prop_map(|(id, v5, filters)| Packet::Subscribe { id, v5, filters }),
        (
            1u16..,
            maybe_v5(false),
            prop::collection::vec(any::<prop::sample::Index>(), 1..4)
        )
            .prop_map(|(id, v5, picks)| {
                let table = if v5.is_some() {
                    SUBACK_V5_CODES
                } else {
                    SUBACK_V3_CODES
                };
                let codes = picks.iter().map(|i| *i.get(table)).collect();
                Packet::Suback { id, v5, codes }
            }),
        (
            1u16..,
            maybe_v5(false),
            prop::collection::vec(filter(), 1..4)
        )
            .prop_map(|(id, v5, filters)| Packet::Unsubscribe { id, v5, filters }),
        (
            1u16..,
            prop::option::of((
                props(false),
                prop::collection::vec(code(UNSUBACK_CODES), 1..4)
            ))
        )
            .prop_map(|(id, v5)| Packet::Unsuback { id, v5 }),
        any::<bool>().prop_map(Packet::Ping),
        prop::option::of((code(DISCONNECT_CODES), prop::option::of(props(false))))
            .prop_map(Packet::Disconnect),
        prop::option::of((code(AUTH_CODES), props(false))).prop_map(Packet::Auth),
    ]
}

// --- checks ----------------------------------------------------------------------

fn check_facts(h: &Head<'_>, f: &Facts, len: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(h.request_type.as_ref(), f.request_type);
    prop_assert_eq!(h.message_len, Some(len as u64));
    prop_assert_eq!(h.request_domain.as_ref(), f.domain.as_str());
    prop_assert_eq!(h.request_resource.as_ref(), f.resource.as_str());
    prop_assert_eq!(h.request_id, f.id);
    prop_assert_eq!(h.response_code, f.code.map(i32::from));
    prop_assert_eq!(h.response_status, f.status);
    prop_assert_eq!(h.unpaired, f.unpaired);
    let failure = matches!(
        f.status,
        Some(ResponseStatus::ClientError | ResponseStatus::ServerError)
    );
    match &f.exception {
        Some(e) if !e.is_empty() => prop_assert_eq!(h.exception.as_ref(), e.as_str()),
        // No reason string: the code's name, for failures only.
        _ => prop_assert_eq!(!h.exception.is_empty(), failure),
    }
    Ok(())
}

/// Every field of `cut` is unset or equal to `whole`'s.
fn check_within(cut: &Head<'_>, whole: &Head<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(&cut.request_type, &whole.request_type);
    prop_assert_eq!(cut.message_len, whole.message_len);
    prop_assert_eq!(cut.unpaired, whole.unpaired);
    prop_assert!(cut.version.is_empty() || cut.version == whole.version);
    prop_assert!(cut.request_domain.is_empty() || cut.request_domain == whole.request_domain);
    prop_assert!(
        cut.request_resource.is_empty() || cut.request_resource == whole.request_resource,
        "{:?} vs {:?}",
        cut.request_resource,
        whole.request_resource
    );
    prop_assert!(cut.request_id.is_none() || cut.request_id == whole.request_id);
    prop_assert!(cut.response_code.is_none() || cut.response_code == whole.response_code);
    prop_assert!(cut.response_status.is_none() || cut.response_status == whole.response_status);
    prop_assert!(
        cut.exception.is_empty()
            || cut.exception == whole.exception
            || whole.response_code.is_some_and(|c| c >= 0x80),
        "{:?} vs {:?}",
        cut.exception,
        whole.exception
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn packets_give_their_facts(p in control_packet()) {
        let buf = p.encode();
        let f = p.facts();
        let h = parse_with_version(&buf, Request, f.version).unwrap();
        check_facts(&h, &f, buf.len())?;
        if matches!(p, Packet::Connect { .. }) {
            prop_assert_eq!(h.version.as_ref(), f.version.unwrap().as_str());
        }
        // Without the version: never a contradiction.
        let plain = parse(&buf, Response).unwrap();
        check_within(&plain, &h)?;
        // The role, and what infer says.
        prop_assert_eq!(message_kind(&buf), f.kind);
        let inferred = infer(&buf);
        if f.strong || matches!(p, Packet::Ping(_)) {
            prop_assert_eq!(inferred, f.kind);
        } else {
            prop_assert_eq!(inferred, None);
        }
        prop_assert!(ends_message(&buf, Request));
        if let Packet::Publish { qos, retain, dup, v5: Some(props), .. } = &p {
            prop_assert_eq!(publish_flags(&buf), Some(PublishFlags { qos: *qos, retain: *retain, dup: *dup }));
            prop_assert_eq!(topic_alias(&buf, Some(Version::V5)), props.topic_alias);
        }
    }

    #[test]
    fn cut_packets_never_contradict(p in control_packet(), cut in any::<prop::sample::Index>()) {
        let buf = p.encode();
        let version = p.facts().version;
        let whole = parse_with_version(&buf, Request, version).unwrap();
        let cut = cut.index(buf.len());
        for v in [version, None] {
            match parse_with_version(&buf[..cut], Request, v) {
                Ok(h) => check_within(&h, &whole)?,
                Err(e) => {
                    prop_assert_eq!(e, ParseError::Incomplete);
                    prop_assert!(cut <= 5);
                }
            }
        }
        prop_assert!(!ends_message(&buf[..cut], Request));
        // A short cut is never inferred; a long one only as the packet's role.
        let inferred = infer(&buf[..cut]);
        prop_assert!(inferred.is_none() || inferred == message_kind(&buf));
    }

    #[test]
    fn pipelined_packets_split_exactly(ps in prop::collection::vec(control_packet(), 1..10)) {
        let bufs: Vec<Vec<u8>> = ps.iter().map(Packet::encode).collect();
        let all = bufs.concat();
        let mut pos = 0;
        for (p, b) in ps.iter().zip(&bufs) {
            let h = parse_with_version(&all[pos..], Request, p.facts().version).unwrap();
            prop_assert_eq!(h.message_len, Some(b.len() as u64));
            pos += b.len();
        }
        prop_assert_eq!(pos, all.len());
        prop_assert!(ends_message(&all, Response));
        // A batch is claimed when one of its packets says MQTT, as the
        // first packet's role.
        let inferred = infer(&all);
        prop_assert!(inferred.is_none() || inferred == message_kind(&all));
        let strong = ps.iter().any(|p| p.facts().strong);
        let auth_first = all[0] >> 4 == 15;
        let lone_ping = matches!(ps.as_slice(), [Packet::Ping(_)]);
        // A wildcard in a topic name is malformed: infer gives up on the batch.
        let malformed = ps.iter().any(
            |p| matches!(p, Packet::Publish { topic, .. } if topic.contains(['+', '#'])),
        );
        if (!strong && !lone_ping) || malformed {
            prop_assert_eq!(inferred, None);
        } else if !auth_first {
            prop_assert_eq!(inferred, message_kind(&all));
        }
    }
}

// --- recorded traffic, cut and damaged ----------------------------------------------

const RECORDED: &[&[u8]] = &[
    include_bytes!("fixtures/mqtt/v311_sub.rec"),
    include_bytes!("fixtures/mqtt/v5_sub.rec"),
    include_bytes!("fixtures/mqtt/v5_pub_props.rec"),
    include_bytes!("fixtures/mqtt/v311_pipelined_qos1.rec"),
    include_bytes!("fixtures/mqtt/v5_unsubscribe.rec"),
    include_bytes!("fixtures/mqtt/v5_admin_disconnect.rec"),
    include_bytes!("fixtures/mqtt/v5_sub_denied.rec"),
    include_bytes!("fixtures/mqtt/v311_bad_password.rec"),
];

/// Every recorded chunk (direction, connection, u32 length, bytes).
fn chunks() -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    for mut b in RECORDED.iter().copied() {
        while !b.is_empty() {
            let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
            out.push(&b[6..6 + n]);
            b = &b[6 + n..];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn recorded_chunks_cut_and_damaged_never_panic(
        pick in any::<prop::sample::Index>(),
        start in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let all = chunks();
        let chunk = all[pick.index(all.len())];
        let start = start.index(chunk.len());
        let mut buf = chunk[start..].to_vec();
        let cut = cut.index(buf.len() + 1);
        buf.truncate(cut);
        exercise(&buf);
        if !buf.is_empty() {
            for (at, byte) in damage {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
            exercise(&buf);
        }
    }
}
