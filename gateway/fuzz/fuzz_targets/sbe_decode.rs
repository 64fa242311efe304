//! Arbitrary bytes through the SOFH frame splitter, both SBE decoders and the inbound
//! conversions. Nothing may panic; a message that decodes must re-encode to exactly its own
//! bytes. `gateway/tests/sbe_fuzz.rs` runs the same checks under proptest on stable.
//!
//! The first input byte picks the mode: even = the rest is a raw byte stream; odd = the rest
//! is a message block, framed with a correct SOFH and a header for one of the schema's
//! templates, so libFuzzer reaches field validation without having to discover the 0xEB50
//! encoding type and the schema id first.

#![no_main]

use engine::{InstrumentId, InstrumentSpec, Symbol};
use gateway::sbe::convert;
use gateway::sbe::messages::{SCHEMA_ID, SCHEMA_VERSION};
use gateway::sbe::{MAX_FRAME_LEN_BYTES, decode_inbound, decode_outbound, next_frame};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fuzz_target!(|data: &[u8]| {
    let spec = InstrumentSpec::unlimited(
        InstrumentId(0),
        Symbol::new("FUZZ").expect("valid symbol"),
        Decimal::new(5, 3),
        Decimal::new(1, 2),
    );
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut framed = Vec::new();
    let mut buf = rest;
    if mode & 1 == 1 {
        const TEMPLATES: [u16; 21] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 101, 102, 103, 104, 105, 201, 202, 203, 204, 999];
        let template = TEMPLATES[usize::from(mode >> 1) % TEMPLATES.len()];
        let body = &rest[..rest.len().min(MAX_FRAME_LEN_BYTES - 14)];
        framed.extend_from_slice(&((14 + body.len()) as u32).to_be_bytes());
        framed.extend_from_slice(&0xEB50u16.to_be_bytes());
        for v in [body.len() as u16, template, SCHEMA_ID, SCHEMA_VERSION] {
            framed.extend_from_slice(&v.to_le_bytes());
        }
        framed.extend_from_slice(body);
        buf = &framed;
    }
    let mut out = [0u8; MAX_FRAME_LEN_BYTES];
    while let Ok(Some((len, msg))) = next_frame(buf) {
        assert!(len <= buf.len() && msg == &buf[6..len]);
        if let Ok(m) = decode_inbound(msg) {
            let n = m.encode(&mut out).expect("a decoded message fits the frame limit");
            assert_eq!(&out[..n], &buf[..len], "inbound re-encode");
            let _ = convert::command_body(&m, |id| (id == spec.id).then_some(&spec));
        }
        if let Ok(m) = decode_outbound(msg) {
            let n = m.encode(&mut out).expect("a decoded message fits the frame limit");
            assert_eq!(&out[..n], &buf[..len], "outbound re-encode");
        }
        buf = &buf[len..];
    }
});
