//! What CI runs in place of the cargo-fuzz target (`gateway/fuzz`, nightly only): random and
//! mutated-valid byte strings through the frame splitter, both decoders and the inbound
//! conversions. Nothing may panic, and the results must agree with each other:
//!
//! - a split frame lies inside the buffer, within the limits, and its message is bytes 6..len;
//! - the one-call frame decoder agrees with splitting then decoding;
//! - a message that decodes re-encodes to exactly the bytes it came from (so decoding accepted
//!   nothing that the encoder would not produce), and `decode_as` agrees;
//! - only session messages (Sequence, Terminate) decode in both directions;
//! - a prefix of a valid stream never errors: it yields the same frames or asks for more;
//! - a NewOrderSingle that converts gives back its own prices and quantities exactly.
//!
//! The seed is printed; rerun a failure with `PROPTEST_RNG_SEED=<seed>`.

mod sbe_support;

use engine::{InstrumentId, InstrumentSpec, Symbol};
use gateway::sbe::convert::{self, lots_to_qty4, ticks_to_price9};
use gateway::sbe::frame::MIN_FRAME_LEN_BYTES;
use gateway::sbe::messages::*;
use gateway::sbe::{
    Inbound, MAX_FRAME_LEN_BYTES, Outbound, decode_as, decode_inbound, decode_inbound_frame, decode_outbound,
    next_frame,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::sync::OnceLock;

fn valid() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| sbe_support::valid_frames(6))
}

fn spec() -> InstrumentSpec {
    InstrumentSpec::unlimited(InstrumentId(0), Symbol::new("FUZZ").unwrap(), Decimal::new(5, 3), Decimal::new(1, 2))
}

/// Runs every consistency check over a byte stream.
fn check_stream(mut buf: &[u8]) {
    let spec = spec();
    let mut out = [0u8; MAX_FRAME_LEN_BYTES];
    loop {
        let split = next_frame(buf);
        let whole = decode_inbound_frame(buf);
        match (split, whole) {
            (Ok(None), Ok(None)) => return,
            (Err(a), Err(b)) => {
                assert_eq!(a, b);
                return;
            }
            (Ok(Some((len, msg))), Ok(Some((len2, decoded)))) => {
                assert_eq!(len, len2);
                assert!((MIN_FRAME_LEN_BYTES..=MAX_FRAME_LEN_BYTES).contains(&len));
                assert!(len <= buf.len());
                assert_eq!(msg, &buf[6..len]);
                assert_eq!(decoded, decode_inbound(msg));
                let inbound = decode_inbound(msg);
                let outbound = decode_outbound(msg);
                if let Ok(m) = &inbound {
                    let n = m.encode(&mut out).expect("fits");
                    assert_eq!(&out[..n], &buf[..len], "inbound {} must re-encode identically", m.name());
                    check_inbound(m, msg, &spec);
                }
                if let Ok(m) = &outbound {
                    let n = m.encode(&mut out).expect("fits");
                    assert_eq!(&out[..n], &buf[..len], "outbound {} must re-encode identically", m.name());
                    check_outbound(m, msg);
                }
                if inbound.is_ok() && outbound.is_ok() {
                    let both = inbound.as_ref().map(|m| m.name()).unwrap();
                    assert!(matches!(both, "Sequence" | "Terminate"), "{both} decoded in both directions");
                }
                buf = &buf[len..];
            }
            (a, b) => panic!("splitter and frame decoder disagree: {a:?} vs {b:?}"),
        }
    }
}

fn check_inbound(m: &Inbound<'_>, msg: &[u8], spec: &InstrumentSpec) {
    match m {
        Inbound::NewOrderSingle(n) => {
            assert_eq!(decode_as::<NewOrderSingle>(msg), Ok(*n));
            if let Ok(o) = convert::new_order(n, spec) {
                if n.price.get() != PRICE9_NULL {
                    assert_eq!(ticks_to_price9(o.price_ticks, spec), Some(n.price.get()));
                }
                if n.stop_px.get() != PRICE9_NULL {
                    assert_eq!(ticks_to_price9(o.stop_ticks, spec), Some(n.stop_px.get()));
                }
                assert_eq!(lots_to_qty4(o.qty_lots, spec), Some(n.order_qty.get()));
            }
        }
        Inbound::OrderCancelRequest(c) => {
            assert_eq!(decode_as::<OrderCancelRequest>(msg), Ok(*c));
            let _ = convert::cancel(c);
        }
        Inbound::OrderCancelReplaceRequest(r) => {
            if let Ok(p) = convert::replace(r, spec) {
                assert_eq!(ticks_to_price9(p.price_ticks, spec), Some(r.price.get()));
                assert_eq!(lots_to_qty4(p.qty_lots, spec), Some(r.order_qty.get()));
            }
        }
        Inbound::OrderMassCancelRequest(r) => {
            let _ = convert::mass_cancel(r);
        }
        Inbound::OrderStatusRequest(r) => {
            let _ = convert::order_status(r);
        }
        Inbound::Negotiate(_)
        | Inbound::Establish(_)
        | Inbound::Sequence(_)
        | Inbound::RetransmitRequest(_)
        | Inbound::Terminate(_) => {}
    }
    let _ = convert::command_body(m, |id| (id == spec.id).then_some(spec));
}

fn check_outbound(m: &Outbound<'_>, msg: &[u8]) {
    if let Outbound::ExecutionReport(er) = m {
        assert_eq!(decode_as::<ExecutionReport>(msg), Ok(*er));
    }
}

/// A mutation of a valid stream.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite one byte.
    Set(usize, u8),
    /// Flip one bit.
    Flip(usize, u8),
    /// Cut the stream.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Overwrite a little-endian u16 (header fields, enum neighbours).
    SetU16(usize, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..20).prop_map(Mutation::Extend),
        (any::<usize>(), any::<u16>()).prop_map(|(i, v)| Mutation::SetU16(i, v)),
    ]
}

fn apply(stream: &mut Vec<u8>, m: &Mutation) {
    if stream.is_empty() {
        return;
    }
    let n = stream.len();
    match m {
        Mutation::Set(i, b) => stream[i % n] = *b,
        Mutation::Flip(i, bit) => stream[i % n] ^= 1 << bit,
        Mutation::Truncate(i) => stream.truncate(i % n),
        Mutation::Extend(bytes) => stream.extend_from_slice(bytes),
        Mutation::SetU16(i, v) => {
            let i = i % n;
            let end = (i + 2).min(n);
            stream[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
        }
    }
}

proptest! {
    #![proptest_config(sbe_support::proptest_config("sbe_fuzz", 10_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_stream(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_sofh_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        header in (any::<u16>(), 0u16..300, prop_oneof![Just(7301u16), any::<u16>()], prop_oneof![Just(1u16), any::<u16>()]),
    ) {
        // Plausible headers get past the cheap checks, so the field validation is exercised.
        let (template, block, schema, version) = header;
        let template = if template % 2 == 0 { [1u16, 7, 11, 101, 102, 103, 104, 105, 201, 204][template as usize % 10] } else { template };
        let mut stream = ((6 + 8 + body.len()) as u32).to_be_bytes().to_vec();
        stream.extend_from_slice(&0xEB50u16.to_be_bytes());
        for v in [block, template, schema, version] {
            stream.extend_from_slice(&v.to_le_bytes());
        }
        stream.extend_from_slice(&body);
        check_stream(&stream);
    }

    #[test]
    fn mutated_valid_streams_never_panic(
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        mutations in proptest::collection::vec(mutation(), 0..6),
    ) {
        let frames = valid();
        let mut stream = Vec::new();
        for p in &picks {
            stream.extend_from_slice(p.get::<Vec<u8>>(frames));
        }
        for m in &mutations {
            apply(&mut stream, m);
        }
        check_stream(&stream);
    }

    #[test]
    fn prefixes_of_valid_streams_yield_the_same_frames_or_wait(
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames = valid();
        let mut stream = Vec::new();
        for p in &picks {
            stream.extend_from_slice(p.get::<Vec<u8>>(frames));
        }
        let cut = cut.index(stream.len() + 1);
        let mut buf = &stream[..cut];
        let mut at = 0;
        for p in &picks {
            let frame = p.get::<Vec<u8>>(frames);
            match next_frame(buf) {
                Ok(Some((len, _))) => {
                    prop_assert_eq!(&buf[..len], &frame[..]);
                    prop_assert!(decode_inbound(&frame[6..]).is_ok() || decode_outbound(&frame[6..]).is_ok());
                    buf = &buf[len..];
                    at += len;
                }
                Ok(None) => {
                    prop_assert!(at + frame.len() > cut);
                    break;
                }
                Err(e) => prop_assert!(false, "valid prefix errored: {e}"),
            }
        }
        check_stream(&stream[..cut]);
    }
}
