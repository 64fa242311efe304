//! The codec against an independent SBE implementation that reads the schema XML: the Python
//! `sbe` package (install with `gateway/scripts/install-test-deps.sh`).
//!
//! 1. The schema as Python parses it has exactly our messages, block lengths, field names,
//!    offsets and sizes.
//! 2. Rust → Python: sable encodes samples of every message (non-trivial values, nulls, full-
//!    length text); Python decodes each and every field value must match.
//! 3. Python → Rust: Python encodes the same values; sable decodes them strictly and produces
//!    byte-identical frames.
//! 4. Hand-written expectations for the two busiest messages, independent of the field tables.

mod sbe_support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::sbe::messages::*;
use gateway::sbe::{
    Inbound, Outbound, SbeMessage, decode_inbound, decode_inbound_frame, decode_outbound, decode_outbound_frame,
};
use sbe_support::{Visit, fill, for_each_message, frame_of, render};
use serde_json::{Value, json};
use zerocopy::FromZeros;
use zerocopy::little_endian::{I64, U16, U32, U64};

const SEEDS: u64 = 4;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path() -> PathBuf {
    manifest_dir().join("schema/sable-sbe.xml")
}

/// Runs the cross-check script; panics with its stderr on failure.
fn python(args: &[&str]) -> Value {
    require_python_sbe();
    let script = manifest_dir().join("scripts/sbe_crosscheck.py");
    let out = Command::new("python3").arg(&script).args(args).output().expect("run python3");
    assert!(out.status.success(), "sbe_crosscheck.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("script prints JSON")
}

/// The independent implementation must be there: a missing one is a failure, not a skip.
fn require_python_sbe() {
    let ok = Command::new("python3").args(["-c", "import sbe"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python package `sbe` (0.4.x) is not importable by python3; \
         run gateway/scripts/install-test-deps.sh first"
    );
}

fn schema_str() -> String {
    schema_path().to_str().expect("utf-8 path").to_string()
}

#[test]
fn python_reads_the_same_schema_layout() {
    let schema = python(&["schema", &schema_str()]);
    struct Check<'a>(&'a Value, usize);
    impl Visit for Check<'_> {
        fn visit<M: SbeMessage + FromZeros + Debug + PartialEq>(&mut self) {
            let m = &self.0[M::TEMPLATE_ID.to_string()];
            assert_eq!(m["name"], json!(M::NAME), "template {}", M::TEMPLATE_ID);
            assert_eq!(m["blockLength"], json!(M::BLOCK_LENGTH), "{}", M::NAME);
            let ours: Vec<Value> = M::FIELDS.iter().map(|f| json!([f.name, f.offset, f.kind.size()])).collect();
            assert_eq!(m["fields"], Value::Array(ours), "{} field layout", M::NAME);
            self.1 += 1;
        }
    }
    let mut check = Check(&schema, 0);
    for_each_message(&mut check);
    assert_eq!(check.1, schema.as_object().unwrap().len(), "the schema has messages sable does not mirror");
}

/// One sample: file name, what it is, its frame and the field values as JSON.
struct Sample {
    file: String,
    template: u16,
    name: &'static str,
    frame: Vec<u8>,
    fields: Value,
}

fn samples() -> Vec<Sample> {
    struct Collect(Vec<Sample>);
    impl Visit for Collect {
        fn visit<M: SbeMessage + FromZeros + Debug + PartialEq>(&mut self) {
            for seed in 0..SEEDS {
                let m = fill::<M>(seed);
                self.0.push(Sample {
                    file: format!("{}-{seed}.bin", M::NAME),
                    template: M::TEMPLATE_ID,
                    name: M::NAME,
                    frame: frame_of(&m),
                    fields: Value::Object(render(M::FIELDS, m.as_bytes())),
                });
            }
        }
    }
    let mut c = Collect(Vec::new());
    for_each_message(&mut c);
    c.0
}

fn write_frames(dir: &Path, frames: impl IntoIterator<Item = (String, Vec<u8>)>) {
    for (file, frame) in frames {
        std::fs::write(dir.join(file), frame).unwrap();
    }
}

#[test]
fn python_decodes_every_field_sable_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let samples = samples();
    write_frames(dir.path(), samples.iter().map(|s| (s.file.clone(), s.frame.clone())));
    let decoded = python(&["decode", &schema_str(), dir.path().to_str().unwrap()]);
    assert_eq!(decoded.as_object().unwrap().len(), samples.len());
    for s in &samples {
        let d = &decoded[&s.file];
        assert_eq!(d["name"], json!(s.name), "{}", s.file);
        let header = json!({"blockLength": s.frame.len() - 14, "templateId": s.template, "schemaId": SCHEMA_ID, "version": SCHEMA_VERSION});
        assert_eq!(d["header"], header, "{}", s.file);
        assert_fields_eq(&s.file, &d["fields"], &s.fields);
    }
}

#[test]
fn sable_decodes_what_python_encodes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let samples = samples();
    let spec: Vec<Value> =
        samples.iter().map(|s| json!({"file": s.file, "template": s.template, "fields": s.fields})).collect();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = dir.path().join("py");
    std::fs::create_dir(&out).unwrap();
    let written = python(&["encode", &schema_str(), spec_path.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(written["written"], json!(samples.len()));

    for s in &samples {
        let bytes = std::fs::read(out.join(&s.file)).unwrap();
        assert_eq!(bytes, s.frame, "{}: Python's encoding differs from sable's", s.file);
        // Strict decode in whichever direction the message travels, and re-encode.
        let mut decoded_somewhere = false;
        let mut again = [0u8; 512];
        if let Some((len, m)) = decode_inbound_frame(&bytes).unwrap() {
            assert_eq!(len, bytes.len());
            if let Ok(m) = m {
                assert_eq!(m.name(), s.name);
                let n = m.encode(&mut again).unwrap();
                assert_eq!(&again[..n], &bytes[..], "{} inbound re-encode", s.file);
                decoded_somewhere = true;
            }
        }
        if let Some((_, Ok(m))) = decode_outbound_frame(&bytes).unwrap() {
            assert_eq!(m.name(), s.name);
            let n = m.encode(&mut again).unwrap();
            assert_eq!(&again[..n], &bytes[..], "{} outbound re-encode", s.file);
            decoded_somewhere = true;
        }
        assert!(decoded_somewhere, "{}: sable refused Python's encoding", s.file);
        let block = &bytes[14..];
        assert_fields_eq(&s.file, &Value::Object(render(template_fields(s.template), block)), &s.fields);
    }
}

fn template_fields(template: u16) -> &'static [FieldSpec] {
    struct Find(u16, Option<&'static [FieldSpec]>);
    impl Visit for Find {
        fn visit<M: SbeMessage + FromZeros + Debug + PartialEq>(&mut self) {
            if M::TEMPLATE_ID == self.0 {
                self.1 = Some(M::FIELDS);
            }
        }
    }
    let mut f = Find(template, None);
    for_each_message(&mut f);
    f.1.expect("known template")
}

/// Field-by-field comparison with a message naming the field.
fn assert_fields_eq(what: &str, got: &Value, want: &Value) {
    let got: BTreeMap<_, _> = got.as_object().expect("object").iter().collect();
    let want: BTreeMap<_, _> = want.as_object().expect("object").iter().collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: field names");
    for (k, w) in &want {
        assert_eq!(got[k], *w, "{what}: field {k}");
    }
}

/// Hand-written expectations, independent of the field tables: each typed struct field must
/// land where Python reads the schema field of that name.
#[test]
fn typed_fields_land_where_the_schema_says() {
    let nos = NewOrderSingle {
        cl_ord_id: char_field(b"ORD-0001").unwrap(),
        account: U32::new(4_000_000_001),
        security_id: U32::new(17),
        side: Side::Sell.to_u8(),
        ord_type: OrdType::StopLimit.to_u8(),
        time_in_force: TimeInForce::GoodTillDate.to_u8(),
        exec_inst: ExecInst::POST_ONLY,
        self_trade_prevention: SelfTradePrevention::DecrementAndCancel.to_u8(),
        price: I64::new(-12_345_678_901),
        stop_px: I64::new(99_999_999_999),
        order_qty: U64::new(1_2345),
        display_qty: U64::new(QTY4_NULL),
        expire_time: U64::new(1_767_225_600_000_000_123),
    };
    let mut er = ExecutionReport::new_zeroed();
    er.order_id = U64::new(u64::MAX - 1);
    er.exec_id = U64::new(77);
    er.cl_ord_id = char_field(b"new id").unwrap();
    er.orig_cl_ord_id = char_field(b"old id").unwrap();
    er.account = U32::new(5);
    er.security_id = U32::new(6);
    er.exec_type = ExecType::Trade.to_u8();
    er.ord_status = OrdStatus::PartiallyFilled.to_u8();
    er.side = Side::Buy.to_u8();
    er.ord_type = OrdType::Limit.to_u8();
    er.time_in_force = TimeInForce::ImmediateOrCancel.to_u8();
    er.aggressor = Side::Sell.to_u8();
    er.reject_code = U16::new(0);
    er.price = I64::new(101_250_000_000);
    er.stop_px = I64::new(PRICE9_NULL);
    er.order_qty = U64::new(10_0000);
    er.last_px = I64::new(101_000_000_000);
    er.last_qty = U64::new(3_0000);
    er.leaves_qty = U64::new(7_0000);
    er.cum_qty = U64::new(3_0000);
    er.avg_px = I64::new(101_000_000_000);
    er.trade_id = U64::new(0);
    er.transact_time = U64::new(1_700_000_000_000_000_000);

    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), [("a-nos.bin".to_string(), frame_of(&nos)), ("b-er.bin".to_string(), frame_of(&er))]);
    let decoded = python(&["decode", &schema_str(), dir.path().to_str().unwrap()]);
    assert_fields_eq(
        "NewOrderSingle",
        &decoded["a-nos.bin"]["fields"],
        &json!({
            "ClOrdId": "ORD-0001", "Account": 4_000_000_001u32, "SecurityId": 17, "Side": "Sell",
            "OrdType": "StopLimit", "TimeInForce": "GoodTillDate", "ExecInst": ["PostOnly"],
            "SelfTradePrevention": "DecrementAndCancel", "Price": -12_345_678_901i64, "StopPx": 99_999_999_999i64,
            "OrderQty": 12_345, "DisplayQty": null, "ExpireTime": 1_767_225_600_000_000_123u64,
        }),
    );
    assert_fields_eq(
        "ExecutionReport",
        &decoded["b-er.bin"]["fields"],
        &json!({
            "OrderId": u64::MAX - 1, "ExecId": 77, "ClOrdId": "new id", "OrigClOrdId": "old id", "Account": 5,
            "SecurityId": 6, "ExecType": "Trade", "OrdStatus": "PartiallyFilled", "Side": "Buy", "OrdType": "Limit",
            "TimeInForce": "ImmediateOrCancel", "Aggressor": "Sell", "RejectCode": null, "Price": 101_250_000_000i64,
            "StopPx": null, "OrderQty": 100_000, "LastPx": 101_000_000_000i64, "LastQty": 30_000, "LeavesQty": 70_000,
            "CumQty": 30_000, "AvgPx": 101_000_000_000i64, "TradeId": null,
            "TransactTime": 1_700_000_000_000_000_000u64,
        }),
    );
    // And the typed decode of the same bytes gives the same structs back.
    let f = frame_of(&nos);
    assert_eq!(decode_inbound(&f[6..]), Ok(Inbound::NewOrderSingle(&nos)));
    let f = frame_of(&er);
    assert_eq!(decode_outbound(&f[6..]), Ok(Outbound::ExecutionReport(&er)));
}
