#![no_main]
//! Arbitrary bytes through the Dubbo parser and the Hessian 2 reader (both
//! dialects): never a panic, and what infer claims, parse reads.
use causeway_l7::dubbo;
use causeway_l7::hessian2::{Dialect, Reader};
use causeway_l7::infer::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(kind) = dubbo::infer(data) {
        assert!(dubbo::parse(data, kind).is_ok());
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        let _ = dubbo::parse(data, kind);
    }
    for d in [Dialect::V2, Dialect::Draft] {
        let mut r = Reader::new(data, d);
        while r.skip().is_ok() && !r.rest().is_empty() {}
        let mut r = Reader::new(data, d);
        if let Ok(Some(c)) = r.begin_object() {
            let _ = r.field_names(c).count();
            let _ = r.object_fields(c, |r, _| r.read_str().map(|_| true));
        }
        let mut r = Reader::new(data, d);
        if let Ok(true) = r.begin_map() {
            let _ = r.map_entries(|_, _| Ok(false));
        }
    }
});
