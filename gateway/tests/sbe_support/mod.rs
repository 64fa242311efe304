//! Shared by the SBE integration tests: every message type, sample messages with non-trivial
//! values generated from the schema field tables, and a JSON rendering of a block that matches
//! what the independent Python decoder prints.

#![allow(dead_code)] // each test crate uses a different part

use std::fmt::Debug;

use gateway::sbe::messages::*;
use gateway::sbe::{SbeMessage, encode, encoded_len};
use serde_json::{Map, Value, json};
use zerocopy::FromZeros;

/// Something done once per message type.
pub trait Visit {
    /// Called with each message type of the schema.
    fn visit<M: SbeMessage + FromZeros + Debug + PartialEq>(&mut self);
}

/// Calls `v.visit::<M>()` for every message of the schema, in template id order.
pub fn for_each_message(v: &mut impl Visit) {
    v.visit::<Negotiate>();
    v.visit::<NegotiationResponse>();
    v.visit::<NegotiationReject>();
    v.visit::<Establish>();
    v.visit::<EstablishmentAck>();
    v.visit::<EstablishmentReject>();
    v.visit::<Sequence>();
    v.visit::<RetransmitRequest>();
    v.visit::<Retransmission>();
    v.visit::<RetransmitReject>();
    v.visit::<Terminate>();
    v.visit::<NewOrderSingle>();
    v.visit::<OrderCancelRequest>();
    v.visit::<OrderCancelReplaceRequest>();
    v.visit::<OrderMassCancelRequest>();
    v.visit::<OrderStatusRequest>();
    v.visit::<ExecutionReport>();
    v.visit::<OrderCancelReject>();
    v.visit::<OrderMassCancelReport>();
    v.visit::<BusinessMessageReject>();
}

/// A valid message of type `M` whose every field holds a non-trivial value derived from
/// `seed`: large and negative integers, nulls now and then, every enum value over the seeds,
/// ASCII text with spaces, full-length char fields.
pub fn fill<M: SbeMessage + FromZeros>(seed: u64) -> M {
    let mut m = M::new_zeroed();
    let bytes = m.as_mut_bytes();
    for (i, f) in M::FIELDS.iter().enumerate() {
        let k = seed.wrapping_mul(7).wrapping_add(i as u64);
        let slot = &mut bytes[f.offset..f.offset + f.kind.size()];
        match &f.kind {
            FieldKind::U16 { null } => {
                let v = match null {
                    Some(n) if k.is_multiple_of(4) => *n,
                    _ => 1_000 + (k % 60_000) as u16,
                };
                slot.copy_from_slice(&v.to_le_bytes());
            }
            FieldKind::U32 => {
                slot.copy_from_slice(&(3_000_000_000u32.wrapping_add((k as u32).wrapping_mul(977))).to_le_bytes())
            }
            FieldKind::U64 { null } => {
                let v = match null {
                    Some(n) if k.is_multiple_of(4) => *n,
                    // Above 2^53: JSON consumers that use doubles would lose these.
                    _ => (1u64 << 60) + k * 1_000_003,
                };
                slot.copy_from_slice(&v.to_le_bytes());
            }
            FieldKind::I64 { null } => {
                let v = match null {
                    Some(n) if k.is_multiple_of(4) => *n,
                    _ if k % 2 == 1 => -(123_456_789_012_345 + k as i64),
                    _ => 987_654_321_000 + k as i64,
                };
                slot.copy_from_slice(&v.to_le_bytes());
            }
            FieldKind::Char { len } => {
                let text = if k.is_multiple_of(3) {
                    // Fill the whole field: no padding at all.
                    (0..*len).map(|j| b'A' + ((j as u64 + k) % 26) as u8).collect::<Vec<u8>>()
                } else {
                    format!("{}#{} x-{}", f.name, seed, k).into_bytes()
                };
                let n = text.len().min(*len);
                slot[..n].copy_from_slice(&text[..n]);
                // Never end on a space: the Python decoder strips whitespace.
                if slot[n - 1] == b' ' {
                    slot[n - 1] = b'z';
                }
            }
            FieldKind::Enum { spec, optional } => {
                slot[0] = if *optional && k.is_multiple_of(3) {
                    ENUM_U8_NULL
                } else {
                    spec.values[(k % spec.values.len() as u64) as usize].1
                };
            }
            FieldKind::Set(spec) => slot[0] = if k.is_multiple_of(2) { spec.valid_mask() } else { 0 },
        }
    }
    m
}

/// `m` as a complete frame.
pub fn frame_of<M: SbeMessage>(m: &M) -> Vec<u8> {
    let mut buf = vec![0u8; encoded_len::<M>()];
    encode(m, &mut buf).expect("buffer sized for the message");
    buf
}

/// The block's fields as JSON, in the Python decoder's conventions: null values as `null`,
/// enums by name, sets as lists of choice names, char fields as text up to the first NUL.
pub fn render(fields: &[FieldSpec], block: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        let raw = &block[f.offset..f.offset + f.kind.size()];
        let v = match &f.kind {
            FieldKind::U16 { null } => {
                let v = u16::from_le_bytes(raw.try_into().unwrap());
                if Some(v) == *null { Value::Null } else { json!(v) }
            }
            FieldKind::U32 => json!(u32::from_le_bytes(raw.try_into().unwrap())),
            FieldKind::U64 { null } => {
                let v = u64::from_le_bytes(raw.try_into().unwrap());
                if Some(v) == *null { Value::Null } else { json!(v) }
            }
            FieldKind::I64 { null } => {
                let v = i64::from_le_bytes(raw.try_into().unwrap());
                if Some(v) == *null { Value::Null } else { json!(v) }
            }
            FieldKind::Char { .. } => json!(char_field_str(raw).expect("validated char field")),
            FieldKind::Enum { spec, .. } => spec.name_of(raw[0]).map_or(Value::Null, |n| json!(n)),
            FieldKind::Set(spec) => Value::Array(
                spec.choices.iter().filter(|(_, bit)| raw[0] & (1 << bit) != 0).map(|(n, _)| json!(n)).collect(),
            ),
        };
        out.insert(f.name.to_string(), v);
    }
    out
}

/// Valid frames of every message type for seeds `0..seeds`.
pub fn valid_frames(seeds: u64) -> Vec<Vec<u8>> {
    struct Collect(u64, Vec<Vec<u8>>);
    impl Visit for Collect {
        fn visit<M: SbeMessage + FromZeros + Debug + PartialEq>(&mut self) {
            for seed in 0..self.0 {
                self.1.push(frame_of(&fill::<M>(seed)));
            }
        }
    }
    let mut c = Collect(seeds, Vec::new());
    for_each_message(&mut c);
    c.1
}

/// Proptest configuration with a printed seed: `PROPTEST_RNG_SEED=<seed>` reruns a failure.
pub fn proptest_config(name: &str, cases: u32) -> proptest::test_runner::Config {
    let seed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("{name}: PROPTEST_RNG_SEED={seed}");
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
