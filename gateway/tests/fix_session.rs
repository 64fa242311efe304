//! The FIX 4.4 acceptor end to end over real TCP with a deliberately raw client (it writes
//! exactly the bytes each case needs, including wrong ones), against the in-process appliance.
//! The QuickFIX-driven tests (`fix_quickfix.rs`) prove interoperability; these pin down each
//! session rule and reject path byte for byte. No timing assertions: every wait is bounded.

#[path = "support/raw_fix.rs"]
mod raw_fix;

use std::time::Instant;

use raw_fix::{Msg, Raw, WAIT, refix, start};

fn sell(cl: &str, account: &str, qty: &str, px: &str) -> Vec<(u32, String)> {
    order(cl, account, "2", qty, px)
}

fn order(cl: &str, account: &str, side: &str, qty: &str, px: &str) -> Vec<(u32, String)> {
    vec![
        (11, cl.into()),
        (1, account.into()),
        (55, "DEMO".into()),
        (54, side.into()),
        (60, "20261122-10:00:00.000".into()),
        (38, qty.into()),
        (40, "2".into()),
        (44, px.into()),
        (59, "1".into()),
    ]
}

fn refs(v: &[(u32, String)]) -> Vec<(u32, &str)> {
    v.iter().map(|(t, s)| (*t, s.as_str())).collect()
}

#[test]
fn orders_trade_between_two_fix_sessions_with_exact_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().expect("FIX is on");
    let mut a = Raw::connect(addr, "CLIENT1");
    let logon = a.logon(&[(553, "demo"), (554, "demo")]);
    assert_eq!(logon.get(108), Some("30"));
    assert_eq!(logon.get(49), Some("SABLE"));
    let mut b = Raw::connect(addr, "CLIENT2");
    b.logon(&[]);

    a.send("D", &refs(&sell("s1", "1", "10", "100.50")));
    let ack = a.expect("8");
    assert_eq!((ack.get(150), ack.get(39), ack.get(11)), (Some("0"), Some("0"), Some("s1")));
    assert_eq!(ack.get(44), Some("100.5"));
    assert_eq!(ack.get(151), Some("10"));
    let maker_order_id = ack.get(37).unwrap().to_string();

    b.send("D", &refs(&order("b1", "2", "1", "4", "100.5000")));
    let b_ack = b.expect("8");
    assert_eq!(b_ack.get(150), Some("0"));
    let b_fill = b.expect("8");
    assert_eq!((b_fill.get(150), b_fill.get(39)), (Some("F"), Some("2")), "{b_fill:?}");
    assert_eq!((b_fill.get(32), b_fill.get(31)), (Some("4"), Some("100.5")));
    assert_eq!((b_fill.get(14), b_fill.get(151), b_fill.get(6)), (Some("4"), Some("0"), Some("100.5")));
    assert_eq!(b_fill.get(1057), Some("Y"), "the buyer took liquidity");
    let a_fill = a.expect("8");
    assert_eq!((a_fill.get(150), a_fill.get(39)), (Some("F"), Some("1")));
    assert_eq!(
        (a_fill.get(37), a_fill.get(14), a_fill.get(151)),
        (Some(maker_order_id.as_str()), Some("4"), Some("6"))
    );
    assert_eq!(a_fill.get(1057), Some("N"));
    assert_eq!(a_fill.get(1003), b_fill.get(1003), "both sides name the same trade");

    // Order status by ClOrdID: ExecutionReport 150=I with the order's state.
    a.send("H", &[(11, "s1"), (1, "1"), (55, "DEMO"), (54, "2")]);
    let st = a.expect("8");
    assert_eq!(
        (st.get(150), st.get(39), st.get(14), st.get(151)),
        (Some("I"), Some("1"), Some("4"), Some("6")),
        "{st:?}"
    );

    // A replace the engine refuses (above the instrument's maximum quantity) leaves the order as
    // it was: OrderCancelReject with 39=1, partially filled, CxlRejResponseTo 2 (replace).
    a.send(
        "G",
        &[
            (11, "s1big"),
            (41, "s1"),
            (1, "1"),
            (55, "DEMO"),
            (54, "2"),
            (60, "20261122-10:00:00"),
            (38, "2000000"),
            (40, "2"),
            (44, "101"),
        ],
    );
    let rej = a.expect("9");
    assert_eq!(
        (rej.get(39), rej.get(434), rej.get(11), rej.get(41)),
        (Some("1"), Some("2"), Some("s1big"), Some("s1")),
        "{rej:?}"
    );
    assert_eq!(rej.get(37), Some(maker_order_id.as_str()), "{rej:?}");

    // Replace down to 8 (fills included: 4 left open), then cancel.
    a.send(
        "G",
        &[
            (11, "s1r"),
            (41, "s1"),
            (1, "1"),
            (55, "DEMO"),
            (54, "2"),
            (60, "20261122-10:00:00"),
            (38, "8"),
            (40, "2"),
            (44, "101"),
        ],
    );
    let rep = a.expect("8");
    assert_eq!((rep.get(150), rep.get(11), rep.get(41)), (Some("5"), Some("s1r"), Some("s1")), "{rep:?}");
    assert_eq!((rep.get(44), rep.get(151)), (Some("101"), Some("4")));
    a.send("F", &[(11, "s1c"), (41, "s1r"), (1, "1"), (55, "DEMO"), (54, "2"), (60, "20261122-10:00:00")]);
    let cxl = a.expect("8");
    assert_eq!((cxl.get(150), cxl.get(39), cxl.get(151)), (Some("4"), Some("4"), Some("0")));
    // Cancelling it again: OrderCancelReject with CxlRejReason 1 (unknown order).
    a.send("F", &[(11, "s1c2"), (41, "s1r"), (1, "1"), (55, "DEMO"), (54, "2"), (60, "20261122-10:00:00")]);
    let rej = a.expect("9");
    assert_eq!((rej.get(102), rej.get(434), rej.get(41)), (Some("1"), Some("1"), Some("s1r")), "{rej:?}");
    assert_eq!(rej.get(39), Some("8"), "an unknown order's status is Rejected: {rej:?}");
    // Mass cancel of the account's orders in DEMO: each order's cancel, then the report.
    for i in 0..3 {
        a.send("D", &refs(&sell(&format!("m{i}"), "1", "1", "105")));
        assert_eq!(a.expect("8").get(150), Some("0"));
    }
    a.send("q", &[(11, "mass1"), (1, "1"), (530, "1"), (55, "DEMO"), (60, "20261122-10:00:00")]);
    for _ in 0..3 {
        let c = a.expect("8");
        assert_eq!((c.get(150), c.get(11)), (Some("4"), Some("mass1")), "{c:?}");
    }
    let r = a.expect("r");
    assert_eq!((r.get(531), r.get(533), r.get(530)), (Some("1"), Some("3"), Some("1")), "{r:?}");
    app.shutdown().expect("clean shutdown");
}

#[test]
fn logon_problems_end_the_connection_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();

    let mut c = Raw::connect(addr, "CLIENT1");
    c.send("A", &[(98, "0"), (108, "30"), (553, "demo"), (554, "wrong")]);
    let lo = c.expect("5");
    assert!(lo.get(58).unwrap().contains("Password"), "{lo:?}");
    c.expect_closed();

    let mut c = Raw::connect(addr, "CLIENT1");
    c.send("A", &[(98, "0"), (108, "100000"), (553, "demo"), (554, "demo")]);
    let lo = c.expect("5");
    assert!(lo.get(58).unwrap().contains("HeartBtInt"), "{lo:?}");
    c.expect_closed();

    // First message not a Logon: disconnected without a reply.
    let mut c = Raw::connect(addr, "CLIENT2");
    c.send("0", &[]);
    c.expect_closed();
    assert!(c.log.is_empty(), "no reply before Logon: {:?}", c.log);

    // Unknown CompIDs: disconnected.
    let mut c = Raw::connect(addr, "NOBODY");
    c.send("A", &[(98, "0"), (108, "30")]);
    c.expect_closed();

    // A second connection for a session that is logged on is refused.
    let mut first = Raw::connect(addr, "CLIENT2");
    first.logon(&[]);
    let mut second = Raw::connect(addr, "CLIENT2");
    second.seq = 100;
    second.send("A", &[(98, "0"), (108, "30")]);
    second.expect_closed();
    first.send("1", &[(112, "still-here")]);
    assert_eq!(first.expect("0").get(112), Some("still-here"));
    app.shutdown().unwrap();
}

/// A Logon refused for any reason closes only that connection: the next, correct Logon of the
/// same session is answered as if the refused one had never come (it used to find the session
/// stuck "logging out" after a Logon with a bad SendingTime, and refused until restart).
#[test]
fn a_refused_logon_never_locks_the_session_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let refusals: [(&str, Vec<(u32, &str)>); 3] = [
        ("SendingTime years in the past", vec![(98, "0"), (108, "30")]),
        ("HeartBtInt out of bounds", vec![(98, "0"), (108, "100000")]),
        ("no ResetSeqNumFlag with MsgSeqNum 1", vec![(98, "0"), (108, "30"), (141, "Y")]),
    ];
    let mut next_seq = 1;
    for (why, fields) in &refusals {
        let mut bad = Raw::connect(addr, "CLIENT2");
        let mut msg = bad.build("A", if why.contains("ResetSeqNum") { 7 } else { 1 }, fields);
        if why.starts_with("SendingTime") {
            // Same clock time, five years back: far outside max_latency_s.
            let at = String::from_utf8(msg.clone()).unwrap().find("\x0152=").unwrap() + 4;
            msg[at..at + 4].copy_from_slice(b"2021");
            msg = refix(&msg);
        }
        bad.send_raw(&msg);
        bad.expect_closed();
        // The next connection of the same session logs on normally, its sequence numbers going
        // on from the last good connection's: the refused Logon took none of them.
        let mut good = Raw::connect(addr, "CLIENT2");
        good.seq = next_seq;
        let ack = good.logon(&[]);
        assert_eq!(ack.ty(), "A", "after a Logon refused for {why}: {:?}", good.log);
        good.send("1", &[(112, "alive")]);
        assert_eq!(good.expect("0").get(112), Some("alive"), "after {why}");
        good.send("5", &[]);
        good.expect("5");
        good.expect_closed();
        next_seq = good.seq;
    }
    app.shutdown().unwrap();
}

/// Sends one bad message and returns the Reject it earns (the session stays up).
fn reject_of(c: &mut Raw, msg_type: &str, fields: &[(u32, &str)]) -> Msg {
    let seq = c.seq;
    c.send(msg_type, fields);
    let r = c.expect("3");
    assert_eq!(r.get(45), Some(seq.to_string().as_str()), "RefSeqNum names the message: {r:?}");
    r
}

#[test]
fn every_session_reject_path_answers_with_its_reason_and_consumes_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = Raw::connect(app.fix_addr().unwrap(), "CLIENT1");
    c.logon(&[(553, "demo"), (554, "demo")]);
    let good = sell("ok", "1", "1", "100");
    let with = |extra: &[(u32, &str)], drop_tag: Option<u32>| -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = good.iter().filter(|(t, _)| Some(*t) != drop_tag).cloned().collect();
        v.extend(extra.iter().map(|(t, s)| (*t, s.to_string())));
        v
    };
    // (MsgType, body, SessionRejectReason, RefTagID, Text)
    type Case<'a> = (&'a str, Vec<(u32, String)>, &'a str, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        ("D", with(&[], Some(11)), "1", Some("11"), "Required tag missing"),
        ("D", with(&[(112, "x")], None), "2", Some("112"), "Tag not defined for this message type"),
        ("D", with(&[(4999, "x")], None), "0", Some("4999"), "Invalid tag number"),
        ("D", with(&[(54, "9")], Some(54)), "5", Some("54"), "Value is incorrect (out of range) for this tag"),
        ("D", with(&[(38, "ten")], Some(38)), "6", Some("38"), "Incorrect data format for value"),
        ("D", with(&[(58, "a"), (58, "b")], None), "13", Some("58"), "Tag appears more than once"),
        (
            "D",
            with(&[(453, "2"), (448, "P1"), (447, "D"), (452, "3")], None),
            "16",
            Some("453"),
            "Incorrect NumInGroup count for repeating group",
        ),
        // QuickFIX names no tag for an invalid MsgType.
        ("ZZ", vec![], "11", None, "Invalid MsgType"),
    ];
    for (ty, fields, reason, ref_tag, text) in cases {
        let r = reject_of(&mut c, ty, &refs(&fields));
        assert_eq!(r.get(373), Some(reason), "{ty} {fields:?} → {r:?}");
        assert_eq!(r.get(371), ref_tag, "{r:?}");
        assert_eq!(r.get(58), Some(text), "{r:?}");
        if ty != "ZZ" {
            assert_eq!(r.get(372), Some(ty), "{r:?}");
        }
    }
    // An empty value (the writer refuses to produce one, so patch it in).
    let raw = c.build("D", c.seq, &refs(&with(&[(58, "EMPTY")], None)));
    let raw = String::from_utf8(raw).unwrap().replace("\x0158=EMPTY\x01", "\x0158=\x01");
    let seq = c.seq;
    c.seq += 1;
    c.send_raw(&refix(raw.as_bytes()));
    let r = c.expect("3");
    assert_eq!((r.get(45), r.get(373), r.get(371)), (Some(seq.to_string().as_str()), Some("4"), Some("58")), "{r:?}");
    assert_eq!(r.get(58), Some("Tag specified without a value"));

    // A header field after the body: out of order.
    let mut raw = c.build("D", c.seq, &refs(&good));
    let body_end = raw.len() - 7;
    let inject = b"97=N\x01";
    raw.splice(body_end..body_end, inject.iter().copied());
    let raw = refix(&raw);
    let seq = c.seq;
    c.seq += 1;
    c.send_raw(&raw);
    let r = c.expect("3");
    assert_eq!((r.get(45), r.get(373), r.get(371)), (Some(seq.to_string().as_str()), Some("14"), Some("97")), "{r:?}");

    // A valid FIX 4.4 message type sable does not take: BusinessMessageReject 380=3.
    c.send("AE", &[]);
    let j = c.expect("j");
    assert_eq!((j.get(380), j.get(372)), (Some("3"), Some("AE")), "{j:?}");
    // An account the session may not trade: 380=6.
    c.send("D", &refs(&sell("acc2", "2", "1", "100")));
    let j = c.expect("j");
    assert_eq!((j.get(380), j.get(379)), (Some("6"), Some("acc2")), "{j:?}");
    // Off the tick grid: ExecutionReport rejected, never rounded.
    c.send("D", &refs(&sell("grid", "1", "1", "100.005")));
    let er = c.expect("8");
    assert_eq!((er.get(150), er.get(39), er.get(103)), (Some("8"), Some("8"), Some("99")), "{er:?}");
    assert!(er.get(58).unwrap().contains("tick size"), "{er:?}");
    // Duplicate ClOrdID among live orders: OrdRejReason 6.
    c.send("D", &refs(&sell("dup", "1", "1", "100")));
    assert_eq!(c.expect("8").get(150), Some("0"));
    c.send("D", &refs(&sell("dup", "1", "1", "100")));
    let er = c.expect("8");
    assert_eq!((er.get(150), er.get(103)), (Some("8"), Some("6")), "{er:?}");

    // Every reject consumed its seq: a TestRequest with the next seq is answered, no resend.
    c.send("1", &[(112, "after-rejects")]);
    let hb = c.expect("0");
    assert_eq!(hb.get(112), Some("after-rejects"), "{:?}", c.log);
    assert!(!c.log.iter().any(|m| m.ty() == "2"), "no ResendRequest expected: {:?}", c.log);
    app.shutdown().unwrap();
}

#[test]
fn sequence_rules_gap_fill_too_low_garbled_compid_and_sending_time() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let mut c = Raw::connect(addr, "CLIENT2");
    c.logon(&[]);

    // Garbled (bad checksum): ignored, the seq is not consumed.
    let mut bad = c.build("1", c.seq, &[(112, "garbled")]);
    let n = bad.len();
    bad[n - 2] = if bad[n - 2] == b'0' { b'1' } else { b'0' };
    c.send_raw(&bad);
    c.send("1", &[(112, "clean")]);
    assert_eq!(c.expect("0").get(112), Some("clean"));

    // Too high: ResendRequest from the expected seq to infinity; the client gap-fills.
    let expected = c.seq;
    c.seq += 3;
    c.send("1", &[(112, "ahead")]);
    let rr = c.expect("2");
    assert_eq!((rr.get(7), rr.get(16)), (Some(expected.to_string().as_str()), Some("0")), "{rr:?}");
    let fill_to = c.seq;
    let gf =
        c.build("4", expected, &[(43, "Y"), (122, "20261122-10:00:00.000"), (123, "Y"), (36, &fill_to.to_string())]);
    c.send_raw(&gf);
    // The held-back TestRequest, which the gap fill covers, is still answered.
    assert_eq!(c.expect("0").get(112), Some("ahead"));
    c.send("1", &[(112, "after-gap")]);
    assert_eq!(c.expect("0").get(112), Some("after-gap"));

    // SequenceReset-Reset (no GapFillFlag) moves the expected seq whatever its own seq.
    let reset_to = c.seq + 5;
    let rs = c.build("4", 1, &[(36, &reset_to.to_string())]);
    c.send_raw(&rs);
    c.seq = reset_to;
    c.send("1", &[(112, "after-reset")]);
    assert_eq!(c.expect("0").get(112), Some("after-reset"));
    // ... but never backwards: Reject 373=5, without RefTagID (as QuickFIX).
    let rs = c.build("4", 1, &[(36, "2")]);
    c.send_raw(&rs);
    let r = c.expect("3");
    assert_eq!((r.get(373), r.get(371), r.get(45)), (Some("5"), None, Some("1")), "{r:?}");

    // A PossDup duplicate below the expected seq is ignored.
    let dup = c.build("1", 2, &[(43, "Y"), (122, "20261122-10:00:00.000"), (112, "dup")]);
    c.send_raw(&dup);
    c.send("1", &[(112, "after-dup")]);
    assert_eq!(c.expect("0").get(112), Some("after-dup"));

    // Too low without PossDup: Logout with the standard text, then disconnect.
    let expected = c.seq;
    let low = c.build("1", 2, &[(112, "low")]);
    c.send_raw(&low);
    let lo = c.expect("5");
    assert_eq!(lo.get(58), Some(format!("MsgSeqNum too low, expecting {expected} but received 2").as_str()));
    c.expect_closed();

    // Wrong TargetCompID: Reject 373=9, then Logout.
    let mut c = Raw::connect(addr, "CLIENT2");
    c.seq = expected;
    c.logon(&[]);
    c.target = "NOT-SABLE".into();
    c.send("1", &[(112, "x")]);
    let r = c.expect("3");
    assert_eq!((r.get(373), r.get(371), r.get(58)), (Some("9"), None, Some("CompID problem")), "{r:?}");
    assert_eq!(c.expect("5").get(58), None, "QuickFIX's Logout after a CompID problem has no Text");
    c.expect_closed();

    // SendingTime two hours off: Reject 373=10, then Logout.
    let mut c = Raw::connect(addr, "CLIENT2");
    c.seq = expected + 2;
    c.logon(&[]);
    let mut m = c.build("1", c.seq, &[(112, "late")]);
    c.seq += 1;
    let s = String::from_utf8(m.clone()).unwrap();
    let at = s.find("\x0152=").unwrap() + 4;
    m[at..at + 8].copy_from_slice(b"20200101");
    c.send_raw(&refix(&m));
    let r = c.expect("3");
    assert_eq!((r.get(373), r.get(371)), (Some("10"), None), "{r:?}");
    assert_eq!(c.expect("5").get(58), None);
    c.expect_closed();

    // Wrong BeginString: Logout and disconnect.
    let mut c = Raw::connect(addr, "CLIENT2");
    c.seq = 1;
    c.logon(&[(141, "Y")]);
    let m = c.build("1", c.seq, &[(112, "old")]);
    let s = String::from_utf8(m).unwrap().replacen("8=FIX.4.4", "8=FIX.4.2", 1);
    c.send_raw(&refix(s.as_bytes()));
    let lo = c.expect("5");
    assert_eq!(lo.get(58), Some("Incorrect BeginString"), "{lo:?}");
    c.expect_closed();
    app.shutdown().unwrap();
}

#[test]
fn reports_missed_while_offline_and_across_a_restart_come_back_through_resend() {
    let dir = tempfile::tempdir().unwrap();
    let (a_next, server_next) = {
        let app = start(dir.path(), |_| {});
        let addr = app.fix_addr().unwrap();
        let mut a = Raw::connect(addr, "CLIENT1");
        a.logon(&[(553, "demo"), (554, "demo")]);
        a.send("D", &refs(&sell("rest", "1", "5", "99")));
        let ack = a.expect("8");
        let a_next = a.seq;
        let server_next = ack.seq() + 1;
        a.send("5", &[]);
        a.expect("5");
        a.expect_closed();
        // While CLIENT1 is away, CLIENT2 trades against its order.
        let mut b = Raw::connect(addr, "CLIENT2");
        b.logon(&[]);
        b.send("D", &refs(&order("take", "2", "1", "2", "99")));
        b.expect("8");
        assert_eq!(b.expect("8").get(150), Some("F"));
        app.shutdown().unwrap();
        (a_next, server_next)
    };
    // Restart on the same data dir: CLIENT1 logs on with its next seq, no reset.
    let app = start(dir.path(), |_| {});
    let mut a = Raw::connect(app.fix_addr().unwrap(), "CLIENT1");
    a.seq = a_next + 1; // its Logout took a_next
    let logon = a.logon(&[(553, "demo"), (554, "demo")]);
    assert!(logon.seq() > server_next, "the server's seq continued across the restart: {logon:?}");
    // The client noticed the gap (its next expected is server_next) and asks for it.
    a.send("2", &[(7, &server_next.to_string()), (16, "0")]);
    let mut fill = None;
    let deadline = Instant::now() + WAIT;
    let mut next = server_next;
    // EndSeqNo 0 = everything sent so far, the new Logon included (gap-filled: admin).
    while next <= logon.seq() && Instant::now() < deadline {
        let m = a.recv(WAIT).expect("resent messages arrive");
        assert_eq!(m.seq(), next, "resent in order without holes: {:?}", a.log);
        assert_eq!(m.get(43), Some("Y"), "PossDupFlag on every resent message: {m:?}");
        match m.ty() {
            "4" => {
                assert_eq!(m.get(123), Some("Y"));
                next = m.get(36).unwrap().parse().unwrap();
            }
            "8" => {
                assert!(m.get(122).is_some(), "OrigSendingTime on a resent report: {m:?}");
                if m.get(150) == Some("F") {
                    fill = Some(m.clone());
                }
                next += 1;
            }
            other => panic!("unexpected resent message type {other}: {m:?}"),
        }
    }
    let fill = fill.expect("the fill that happened while CLIENT1 was offline is resent");
    assert_eq!((fill.get(11), fill.get(32), fill.get(151)), (Some("rest"), Some("2"), Some("3")), "{fill:?}");
    // And the session goes on with new seqs.
    a.send("1", &[(112, "resumed")]);
    let hb = a.expect("0");
    assert_eq!((hb.get(112), hb.seq()), (Some("resumed"), logon.seq() + 1));
    app.shutdown().unwrap();
}

#[test]
fn cancel_on_disconnect_asked_at_logon_cancels_through_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let mut b = Raw::connect(addr, "CLIENT2");
    b.logon(&[(8013, "Y")]);
    b.send("D", &refs(&order("cod1", "2", "1", "3", "98")));
    assert_eq!(b.expect("8").get(150), Some("0"));
    drop(b);
    // Reconnect: the cancel happened while it was away and comes back through resend.
    let mut b = Raw::connect(addr, "CLIENT2");
    b.seq = 3;
    b.logon(&[]);
    // The cancel is journaled when the server sees the disconnect; its report reaches the
    // client either through the resend of what it missed or live after the Logon.
    b.send("2", &[(7, "3"), (16, "0")]);
    let deadline = Instant::now() + WAIT;
    let mut cancelled = false;
    while !cancelled && Instant::now() < deadline {
        let Some(m) = b.recv(deadline.saturating_duration_since(Instant::now())) else { break };
        // A mass cancel's report: ClOrdID is the cancel's, OrigClOrdID the order's.
        cancelled = m.ty() == "8" && m.get(150) == Some("4") && m.get(41) == Some("cod1");
    }
    assert!(cancelled, "cancel-on-disconnect cancelled cod1: {:?}", b.log);
    app.shutdown().unwrap();
}

#[test]
fn a_silent_client_gets_a_test_request_then_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = Raw::connect(app.fix_addr().unwrap(), "CLIENT2");
    c.send("A", &[(98, "0"), (108, "1")]);
    c.expect("A");
    // HeartBtInt 1 s: sable heartbeats while the client says nothing, sends a TestRequest after
    // 1.2 s of silence and disconnects after 2.4 s.
    let tr = c.expect("1");
    assert_eq!(tr.get(112), Some("TEST"), "as QuickFIX: {tr:?}");
    // No Heartbeat while it waits for the answer; then the connection closes.
    c.expect_closed();
    let after: Vec<&str> = c.log.iter().skip_while(|m| m.ty() != "1").skip(1).map(Msg::ty).collect();
    assert!(after.is_empty(), "nothing after the TestRequest: {:?}", c.log);
    // Answering the TestRequest keeps the session up.
    let mut c = Raw::connect(app.fix_addr().unwrap(), "CLIENT2");
    c.seq = 2;
    c.send("A", &[(98, "0"), (108, "1")]);
    c.expect("A");
    for _ in 0..2 {
        let tr = c.expect("1");
        let id = tr.get(112).unwrap().to_string();
        c.send("0", &[(112, &id)]);
    }
    c.send("1", &[(112, "alive")]);
    assert_eq!(c.expect("0").get(112), Some("alive"), "{:?}", c.log);
    app.shutdown().unwrap();
}

#[test]
fn the_throttle_rejects_or_logs_out_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |c| {
        c.fix_sessions[1].throttle_per_s = 1;
        c.fix_sessions[1].throttle_burst = 2;
    });
    let mut c = Raw::connect(app.fix_addr().unwrap(), "CLIENT2");
    c.logon(&[]);
    for i in 0..2 {
        c.send("D", &refs(&order(&format!("t{i}"), "2", "1", "1", "90")));
        assert_eq!(c.expect("8").get(150), Some("0"));
    }
    c.send("D", &refs(&order("t2", "2", "1", "1", "90")));
    let j = c.expect("j");
    assert_eq!((j.get(380), j.get(379)), (Some("0"), Some("t2")), "{j:?}");
    assert!(j.get(58).unwrap().contains("throttled"), "{j:?}");
    // The throttled message consumed its seq: the session goes on in sequence.
    c.send("1", &[(112, "after-throttle")]);
    assert_eq!(c.expect("0").get(112), Some("after-throttle"));
    drop(c);
    app.shutdown().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |c| {
        c.fix_sessions[1].throttle_per_s = 1;
        c.fix_sessions[1].throttle_burst = 1;
        c.fix_sessions[1].throttle_policy = gateway::config::ThrottlePolicy::Disconnect;
    });
    let mut c = Raw::connect(app.fix_addr().unwrap(), "CLIENT2");
    c.logon(&[]);
    c.send("D", &refs(&order("u0", "2", "1", "1", "90")));
    assert_eq!(c.expect("8").get(150), Some("0"));
    c.send("D", &refs(&order("u1", "2", "1", "1", "90")));
    let lo = c.expect("5");
    assert!(lo.get(58).unwrap().contains("throttled"), "{lo:?}");
    c.expect_closed();
    app.shutdown().unwrap();
}
