//! Arbitrary bytes through the FIX frame splitter, the parser and dictionary validation (with
//! QuickFIX's default options and with every option relaxed). Nothing may panic; a framed
//! message lies inside the buffer; a message that validates re-encodes through the writer to
//! exactly its own bytes. `gateway/tests/fix_codec.rs` runs the same checks under proptest on
//! stable.
//!
//! The first input byte picks the mode: even = the rest is a raw byte stream; odd = the rest
//! is a message body (from `35=`), framed with a correct BeginString, BodyLength and CheckSum,
//! so libFuzzer reaches parsing and validation without having to discover the checksum.

#![no_main]

use gateway::fix::dictionary::{Dictionary, ValidationOptions};
use gateway::fix::frame::{BEGIN_STRING, MAX_MESSAGE_LEN_BYTES, SOH, checksum, next_message};
use gateway::fix::message::{FieldTable, parse};
use gateway::fix::tags::tag as t;
use gateway::fix::writer::{WRITE_BUFFER_LEN_BYTES, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dict = Dictionary::sable_shared();
    let strict = ValidationOptions::default();
    let relaxed = ValidationOptions {
        validate_fields_out_of_order: false,
        validate_fields_have_values: false,
        validate_user_defined_fields: false,
        allow_unknown_msg_fields: true,
    };
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut framed = Vec::new();
    let mut buf = rest;
    if mode & 1 == 1 {
        let body = &rest[..rest.len().min(MAX_MESSAGE_LEN_BYTES - 32)];
        framed.extend_from_slice(format!("8=FIX.4.4\x019={}\x01", body.len()).as_bytes());
        framed.extend_from_slice(body);
        let sum = checksum(&framed);
        framed.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        buf = &framed;
    }
    let mut table = FieldTable::new();
    let mut out = [0u8; WRITE_BUFFER_LEN_BYTES];
    loop {
        match next_message(buf) {
            Ok(Some((len, msg))) => {
                assert!(len <= buf.len() && msg == &buf[..len]);
                if let Ok(m) = parse(msg, &mut table) {
                    let _ = dict.validate(&m, &relaxed);
                    let canonical = m.get(t::BODY_LENGTH).is_some_and(|v| !v.starts_with(b"0"))
                        && m.iter().all(|(_, v)| !v.contains(&SOH));
                    if dict.validate(&m, &strict).is_ok() && canonical {
                        let mut w = Writer::new(&mut out, BEGIN_STRING, m.msg_type());
                        for (tag, value) in m.iter() {
                            if ![t::BEGIN_STRING, t::BODY_LENGTH, t::MSG_TYPE, t::CHECKSUM].contains(&tag) {
                                w.bytes(tag, value);
                            }
                        }
                        let n = w.finish().expect("a valid message fits the limit");
                        assert_eq!(&out[..n], msg, "re-encode");
                    }
                }
                buf = &buf[len..];
            }
            Ok(None) => return,
            Err(g) => {
                assert!(g.skip >= 1 && g.skip <= buf.len());
                buf = &buf[g.skip..];
            }
        }
    }
});
