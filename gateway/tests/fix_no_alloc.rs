//! The FIX hot path allocates nothing in steady state: framing, parsing, dictionary
//! validation, conversion into an engine command, the session's sequence bookkeeping and store,
//! and writing ExecutionReports, counted by a global allocator that records allocations made on
//! this test's thread while measuring.

use std::time::{SystemTime, UNIX_EPOCH};

use engine::{CommandBody, InstrumentSpec};
use gateway::config::{Config, FixSettings};
use gateway::fix::dictionary::Dictionary;
use gateway::fix::frame::next_message;
use gateway::fix::session::{Action, FixEnv, FixSession, InstrumentTable};
use gateway::fix::writer::Writer;
use gateway::sbe::convert::Report;
use gateway::sbe::messages::ExecutionReport;
use gateway::store::SessionStore;

#[path = "support/alloc_counter.rs"]
mod alloc_counter;
use alloc_counter::measure;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn message(msg_type: &[u8], seq: u64, body: &[(u32, &str)]) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf, "FIX.4.4", msg_type);
    w.str(49, "CLIENT1").str(56, "SABLE").u64(34, seq).timestamp_ms(52, now_ns() as i64);
    for (t, v) in body {
        w.str(*t, v);
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn fix_session_parse_validate_convert_and_report_allocate_nothing() {
    assert_eq!(measure(|| drop(std::hint::black_box(vec![1u8; 10]))), 1, "the counter works");
    let cfg = Config::default_config().validate().unwrap();
    let fc = &cfg.raw.fix_sessions[0];
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), &fc.store_name(), Default::default()).unwrap();
    let mut session = FixSession::new(fc, FixSettings::default(), store);
    let dictionary = Dictionary::sable();
    let instruments: Vec<Option<InstrumentSpec>> = gateway::pipeline::instrument_table(&cfg.instruments);
    let table = InstrumentTable(&instruments);
    let mut exec_id = 1u64;
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut submitted: Vec<CommandBody> = Vec::with_capacity(1 << 16);

    // Logon (set-up: allocates freely).
    let logon = message(b"A", 1, &[(98, "0"), (108, "30"), (553, "demo"), (554, "demo")]);
    let mut table_buf = gateway::fix::message::FieldTable::default();
    let msg = gateway::fix::message::parse(&logon, &mut table_buf).unwrap();
    let mut env = FixEnv {
        dictionary: &dictionary,
        instruments: &table,
        next_exec_id: &mut exec_id,
        logon_locked: false,
        password_verified: None,
    };
    assert_eq!(session.on_logon(&msg, now_ns(), &mut env, &mut out), Action::Continue);

    // A stream of orders (valid, and some the gateway rejects itself), prebuilt.
    const ORDERS: u64 = 20_000;
    let mut stream = Vec::new();
    for i in 0..ORDERS {
        let cl = format!("o{i}");
        let px = if i % 10 == 9 { "100.005" } else { "100.25" };
        stream.extend(message(
            b"D",
            i + 2,
            &[
                (11, &cl),
                (1, "1"),
                (55, "DEMO"),
                (54, "1"),
                (60, "20261122-10:00:00.000"),
                (38, "3"),
                (40, "2"),
                (44, px),
                (59, "1"),
            ],
        ));
    }
    // The report the publisher would send for each accepted order (its content does not
    // matter here, its path does).
    let mut er = <ExecutionReport as zerocopy::FromZeros>::new_zeroed();
    er.order_id = 7.into();
    er.cl_ord_id = gateway::sbe::messages::char_field(b"o1").unwrap();
    er.account = 1.into();
    er.security_id = 1.into();
    er.side = gateway::sbe::messages::Side::Buy.to_u8();
    er.ord_type = gateway::sbe::messages::OrdType::Limit.to_u8();
    er.time_in_force = gateway::sbe::messages::TimeInForce::GoodTillCancel.to_u8();
    er.price = 100_250_000_000i64.into();
    er.stop_px = gateway::sbe::messages::PRICE9_NULL.into();
    er.order_qty = 30_000u64.into();
    er.leaves_qty = 30_000u64.into();
    er.avg_px = gateway::sbe::messages::PRICE9_NULL.into();
    out.clear();

    let mut rejected = 0u64;
    let allocations = measure(|| {
        let mut buf = &stream[..];
        while let Ok(Some((len, bytes))) = next_message(buf) {
            let mut env = FixEnv {
                dictionary: &dictionary,
                instruments: &table,
                next_exec_id: &mut exec_id,
                logon_locked: false,
                password_verified: None,
            };
            let before = out.len();
            let a = session.on_message(bytes, now_ns(), &mut env, &mut out, &mut |b| submitted.push(b));
            assert_eq!(a, Action::Continue);
            if out.len() > before {
                rejected += 1;
            }
            // Acknowledge every accepted order the way the publisher does.
            if matches!(submitted.last(), Some(CommandBody::NewOrder(_))) && out.len() == before {
                er.transact_time = now_ns().into();
                session.send_report(&Report::Execution(er), b"DEMO", now_ns(), Some(&mut out));
            }
            if out.len() > (1 << 20) - 4096 {
                out.clear();
            }
            buf = &buf[len..];
        }
    });
    assert_eq!(submitted.len() as u64, ORDERS - ORDERS / 10, "every valid order became a command");
    assert_eq!(rejected, ORDERS / 10, "every off-grid order got the gateway's reject");
    assert_eq!(allocations, 0, "the FIX path allocated {allocations} times for {ORDERS} orders");
}
