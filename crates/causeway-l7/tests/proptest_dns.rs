//! Property tests for the DNS parser: no input makes it panic, over UDP or
//! TCP; generated queries come back with their id, name and type, whole,
//! pipelined over TCP, and at every cut.

use causeway_l7::dns::{infer, parse, Transport};
use causeway_l7::infer::MessageKind;
use proptest::prelude::*;

fn query(id: u16, labels: &[String], qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in labels {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

proptest! {
    #[test]
    fn any_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        for t in [Transport::Udp, Transport::Tcp] {
            let _ = infer(&b, t);
            for kind in [MessageKind::Request, MessageKind::Response] {
                let _ = parse(&b, kind, t);
            }
        }
    }

    #[test]
    fn generated_queries_round_trip(
        id in any::<u16>(),
        labels in proptest::collection::vec("[a-z0-9-]{1,20}", 1..5),
        qtype in prop_oneof![Just(1u16), Just(28), Just(15), Just(16), Just(33), 1u16..300],
    ) {
        let m = query(id, &labels, qtype);
        let name = labels.join(".");
        prop_assert_eq!(infer(&m, Transport::Udp), Some(MessageKind::Request));
        let h = parse(&m, MessageKind::Request, Transport::Udp).unwrap();
        prop_assert_eq!(h.request_id, Some(u64::from(id)));
        prop_assert_eq!(&*h.request_resource, name.as_str());
        prop_assert_eq!(h.request_type, causeway_l7::dns::type_name(qtype));
        // Over TCP, two pipelined queries split at message_len.
        let mut tcp = (m.len() as u16).to_be_bytes().to_vec();
        tcp.extend_from_slice(&m);
        let one = tcp.len();
        tcp.extend_from_slice(&tcp.clone());
        let h = parse(&tcp, MessageKind::Request, Transport::Tcp).unwrap();
        prop_assert_eq!(h.message_len, Some(one as u64));
        let h2 = parse(&tcp[one..], MessageKind::Request, Transport::Tcp).unwrap();
        prop_assert_eq!(h2.request_id, Some(u64::from(id)));
        for cut in 0..m.len() {
            if let Ok(h) = parse(&m[..cut], MessageKind::Request, Transport::Udp) {
                prop_assert_eq!(h.request_id, Some(u64::from(id)));
                if !h.request_resource.is_empty() {
                    prop_assert_eq!(&*h.request_resource, name.as_str());
                }
            }
        }
    }
}
