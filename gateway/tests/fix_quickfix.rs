//! sable's FIX 4.4 acceptor driven by a real, independent FIX engine: QuickFIX C++ as the client
//! (`sable-fix-client`, tests/quickfix/), loaded with sable's own data dictionary so QuickFIX
//! validates every message sable sends. The raw-socket tests (`fix_session.rs`) pin each rule
//! down byte for byte; these prove that a standard engine logs on, trades, recovers gaps in both
//! directions, resumes across a restart of sable and understands every reject.
//!
//! Every test ends by checking QuickFIX's transcript: no message from sable was rejected by
//! QuickFIX (and, outside the reject test, sable rejected nothing QuickFIX sent). All waits are
//! on events with a timeout; nothing sleeps.
//! Needs `gateway/scripts/install-test-deps.sh` (run by `.ci/test`).

mod common;

#[path = "support/small_appliance.rs"]
mod small_appliance;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::quickfix::{DEFAULT_TIMEOUT, Event, FixMsg, QuickFixClient, QuickFixOpts};
use gateway::pipeline::{self, Appliance};

const T: Duration = DEFAULT_TIMEOUT;

/// Any TransactTime: sable does not check it against its clock.
const TRANSACT_TIME: &str = "20261122-10:00:00.000";

fn start(dir: &Path) -> Appliance {
    let c = small_appliance::config(dir);
    pipeline::start(c.validate().expect("test config validates")).expect("appliance starts")
}

fn fix_port(app: &Appliance) -> u16 {
    app.fix_addr().expect("FIX is on").port()
}

fn dictionary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fix/FIX44-sable.xml")
}

/// CLIENT1 (account 1, username/password demo/demo in the default configuration).
fn client1(port: u16) -> QuickFixOpts {
    QuickFixOpts {
        data_dictionary: Some(dictionary()),
        ..QuickFixOpts::new(port, "CLIENT1", "SABLE").credentials("demo", "demo")
    }
}

/// CLIENT2 (account 2, no password configured).
fn client2(port: u16) -> QuickFixOpts {
    QuickFixOpts { data_dictionary: Some(dictionary()), ..QuickFixOpts::new(port, "CLIENT2", "SABLE") }
}

/// A day limit order on DEMO, as `send` takes it.
fn order(cl: &str, account: &str, side: &str, qty: &str, px: &str) -> String {
    format!("35=D|11={cl}|1={account}|55=DEMO|54={side}|60={TRANSACT_TIME}|38={qty}|40=2|44={px}|59=0")
}

fn cancel(cl: &str, orig: &str, account: &str, side: &str) -> String {
    format!("35=F|41={orig}|11={cl}|1={account}|55=DEMO|54={side}|60={TRANSACT_TIME}")
}

/// The next application message QuickFIX accepted, whatever else (heartbeats, sent lines)
/// came before it: each test reads the reports in the order sable sends them, so an extra or
/// missing report fails the field assertions that follow.
#[track_caller]
fn next_app(c: &mut QuickFixClient) -> FixMsg {
    match c.expect(|e| matches!(e, Event::RecvApp(_)), T) {
        Event::RecvApp(m) => m,
        other => unreachable!("predicate matched {other:?}"),
    }
}

/// `(tag, value)` pairs of `m` for the given tags, for one-line assertions.
fn pick<'m>(m: &'m FixMsg, tags: &[u32]) -> Vec<(u32, Option<&'m str>)> {
    tags.iter().map(|&t| (t, m.get(t))).collect()
}

fn want<'a>(pairs: &[(u32, &'a str)]) -> Vec<(u32, Option<&'a str>)> {
    pairs.iter().map(|&(t, v)| (t, Some(v))).collect()
}

/// Asserts `m` carries exactly these values.
#[track_caller]
fn assert_fields(m: &FixMsg, pairs: &[(u32, &str)]) {
    let tags: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    assert_eq!(pick(m, &tags), want(pairs), "{m}");
}

/// QuickFIX took every message sable sent: no `reject` line and no Reject (35=3) of its own.
/// With `sable_rejected_nothing`, sable did not send a Reject either.
#[track_caller]
fn assert_clean(c: &mut QuickFixClient, sable_rejected_nothing: bool) {
    let report = c.report();
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| {
            l.starts_with("reject ")
                || (l.starts_with("sent_admin ") && l.contains("|35=3|"))
                || (sable_rejected_nothing && l.starts_with("recv_admin ") && l.contains("|35=3|"))
        })
        .collect();
    assert!(bad.is_empty(), "rejects in the session: {bad:?}\n{report}");
}

/// A TestRequest answered by its Heartbeat: the session is up and in sequence both ways.
#[track_caller]
fn ping(c: &mut QuickFixClient, id: &str) -> FixMsg {
    c.send(&format!("35=1|112={id}"));
    let hb = c.expect(|e| matches!(e, Event::RecvAdmin(m) if m.msg_type() == "0" && m.get(112) == Some(id)), T);
    hb.msg().cloned().expect("a recv_admin event carries a message")
}

#[test]
fn logon_with_and_without_credentials_and_a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let port = fix_port(&app);

    // A wrong password: Logout with the reason, then the connection ends (QuickFIX: logout).
    let mut bad = QuickFixClient::spawn(&QuickFixOpts { password: Some("wrong".into()), ..client1(port) });
    let logon = bad.expect_sent("A", T);
    assert_eq!((logon.get(553), logon.get(554)), (Some("demo"), Some("wrong")));
    let logout = bad.expect_admin("5", T);
    assert_eq!(logout.get(58), Some("Invalid Username or Password"), "{logout}");
    bad.expect(|e| *e == Event::Logout, T);
    assert_eq!(bad.try_command("wait_logon 0"), Err("timed out after 0 s".to_string()));
    assert_clean(&mut bad, true);
    bad.kill(); // it would retry every second

    // The right credentials.
    let mut c1 = QuickFixClient::spawn(&client1(port));
    let logon = c1.expect_sent("A", T);
    assert_fields(&logon, &[(553, "demo"), (554, "demo"), (108, "30"), (98, "0")]);
    let reply = c1.expect_admin("A", T);
    assert_fields(&reply, &[(49, "SABLE"), (56, "CLIENT1"), (98, "0"), (108, "30")]);
    assert_eq!(reply.get(141), None, "no reset was asked: {reply}");
    // The refusal Logout was numbered but neither stored nor counted: a refused Logon changes
    // nothing of the session, so this Logon is answered with seq 1 and nothing is missing.
    assert_eq!(reply.seq_num(), 1, "{reply}");
    c1.expect(|e| *e == Event::Logon, T);

    // No password configured: a Logon without credentials is accepted.
    let mut c2 = QuickFixClient::spawn(&client2(port));
    let logon = c2.expect_sent("A", T);
    assert_eq!((logon.get(553), logon.get(554)), (None, None));
    let reply = c2.expect_admin("A", T);
    assert_eq!((reply.seq_num(), reply.get(56)), (1, Some("CLIENT2")));
    c2.expect(|e| *e == Event::Logon, T);

    // Both sessions are live at once and answer in sequence.
    ping(&mut c1, "c1");
    ping(&mut c2, "c2");
    assert_clean(&mut c1, true);

    // A clean Logout is confirmed by sable's Logout.
    let rest = c2.quit();
    assert!(
        rest.iter().any(|e| matches!(e, Event::RecvAdmin(m) if m.msg_type() == "5")),
        "sable confirms the Logout: {rest:?}"
    );
    drop(c1);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn orders_fill_on_both_sides_then_replace_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let port = fix_port(&app);
    let mut a = QuickFixClient::spawn(&client1(port));
    a.wait_logon();
    let mut b = QuickFixClient::spawn(&client2(port));
    b.wait_logon();

    // A sells 10 at 100.50; B buys 4 at 100.5000 (same price, other scale).
    a.send(&order("s1", "1", "2", "10", "100.50"));
    let ack = next_app(&mut a);
    assert_fields(
        &ack,
        &[(35, "8"), (150, "0"), (39, "0"), (11, "s1"), (1, "1"), (55, "DEMO"), (54, "2"), (44, "100.5")],
    );
    assert_fields(&ack, &[(38, "10"), (151, "10"), (14, "0"), (6, "0")]);
    let s1_order_id = ack.req(37).to_string();

    b.send(&order("b1", "2", "1", "4", "100.5000"));
    assert_fields(&next_app(&mut b), &[(150, "0"), (39, "0"), (11, "b1"), (151, "4")]);
    let b_fill = next_app(&mut b);
    assert_fields(
        &b_fill,
        &[(150, "F"), (39, "2"), (11, "b1"), (32, "4"), (31, "100.5"), (14, "4"), (151, "0"), (6, "100.5")],
    );
    assert_eq!(b_fill.get(1057), Some("Y"), "the buyer took liquidity: {b_fill}");
    let a_fill = next_app(&mut a);
    assert_fields(
        &a_fill,
        &[(150, "F"), (39, "1"), (11, "s1"), (32, "4"), (31, "100.5"), (14, "4"), (151, "6"), (6, "100.5")],
    );
    assert_eq!((a_fill.get(37), a_fill.get(1057)), (Some(s1_order_id.as_str()), Some("N")));
    assert_eq!(a_fill.get(1003), b_fill.get(1003), "both sides name the same trade");
    assert_ne!(a_fill.get(17), b_fill.get(17), "ExecIDs are unique");

    // Replace the partly filled s1: new total 8 (4 filled, 4 open) at 100.52.
    a.send(&format!("35=G|41=s1|11=s1r|1=1|55=DEMO|54=2|60={TRANSACT_TIME}|38=8|40=2|44=100.52"));
    let rep = next_app(&mut a);
    assert_fields(
        &rep,
        &[(150, "5"), (11, "s1r"), (41, "s1"), (38, "8"), (44, "100.52"), (14, "4"), (151, "4"), (6, "100.5")],
    );
    assert_eq!(rep.get(37), Some(s1_order_id.as_str()), "a replace keeps the OrderID: {rep}");
    assert_eq!(rep.get(39), Some("1"), "OrdStatus of a replaced, partly filled order: {rep}");

    // A second resting sell below it; B sweeps both: 4 at 100.51 then 4 at 100.52.
    a.send(&order("s2", "1", "2", "4", "100.51"));
    assert_fields(&next_app(&mut a), &[(150, "0"), (11, "s2")]);
    b.send(&order("b2", "2", "1", "8", "100.52"));
    assert_fields(&next_app(&mut b), &[(150, "0"), (11, "b2"), (151, "8")]);
    let f1 = next_app(&mut b);
    assert_fields(&f1, &[(150, "F"), (39, "1"), (32, "4"), (31, "100.51"), (14, "4"), (151, "4"), (6, "100.51")]);
    let f2 = next_app(&mut b);
    assert_fields(&f2, &[(150, "F"), (39, "2"), (32, "4"), (31, "100.52"), (14, "8"), (151, "0"), (6, "100.515")]);
    let s2_fill = next_app(&mut a);
    assert_fields(
        &s2_fill,
        &[(150, "F"), (39, "2"), (11, "s2"), (32, "4"), (31, "100.51"), (14, "4"), (151, "0"), (6, "100.51")],
    );
    let s1r_fill = next_app(&mut a);
    assert_fields(
        &s1r_fill,
        &[(150, "F"), (39, "2"), (11, "s1r"), (32, "4"), (31, "100.52"), (14, "8"), (151, "0"), (6, "100.51")],
    );

    // G then F on a resting order, then F again and F of an order that never existed:
    // OrderCancelReject, CxlRejReason 1 (unknown order), CxlRejResponseTo 1 (cancel).
    a.send(&order("s3", "1", "2", "5", "101"));
    assert_fields(&next_app(&mut a), &[(150, "0"), (11, "s3")]);
    a.send(&format!("35=G|41=s3|11=s3r|1=1|55=DEMO|54=2|60={TRANSACT_TIME}|38=3|40=2|44=101.5"));
    assert_fields(
        &next_app(&mut a),
        &[(150, "5"), (39, "0"), (11, "s3r"), (41, "s3"), (38, "3"), (44, "101.5"), (151, "3")],
    );
    a.send(&cancel("s3c", "s3r", "1", "2"));
    assert_fields(&next_app(&mut a), &[(150, "4"), (39, "4"), (11, "s3c"), (41, "s3r"), (151, "0"), (14, "0")]);
    a.send(&cancel("s3c2", "s3r", "1", "2"));
    let rej = next_app(&mut a);
    assert_fields(&rej, &[(35, "9"), (11, "s3c2"), (41, "s3r"), (102, "1"), (434, "1")]);
    a.send(&cancel("c9", "never-sent", "1", "2"));
    let rej = next_app(&mut a);
    assert_fields(&rej, &[(35, "9"), (11, "c9"), (41, "never-sent"), (102, "1"), (434, "1")]);

    assert_clean(&mut a, true);
    assert_clean(&mut b, true);
    drop((a, b));
    app.shutdown().expect("clean shutdown");
}

#[test]
fn sequence_gaps_in_both_directions_are_healed_by_resend() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    // A FileStore: QuickFIX's MemoryStore returns nothing for a resend range whose first number
    // it never stored (the hole set_next_sender_seq makes), so it would gap-fill over the order.
    let store = tempfile::tempdir().unwrap();
    let mut c =
        QuickFixClient::spawn(&QuickFixOpts { store_dir: Some(store.path().to_path_buf()), ..client2(fix_port(&app)) });
    c.wait_logon();
    c.send(&order("g0", "2", "1", "1", "90"));
    assert_fields(&next_app(&mut c), &[(150, "0"), (11, "g0")]);

    // (a) The client skips 5 numbers: sable asks from the expected one to infinity, QuickFIX
    // gap-fills and re-sends the order (sable dropped it as too high); it is executed once.
    let (next_sender, _) = c.seqnums();
    c.command(&format!("set_next_sender_seq {}", next_sender + 5));
    let d = c.send(&order("g1", "2", "1", "1", "91"));
    assert_eq!(d.seq_num(), next_sender + 5);
    let rr = c.expect_admin("2", T);
    assert_fields(&rr, &[(7, &next_sender.to_string()), (16, "0")]);
    let gap_fill = c.expect_sent("4", T);
    assert_fields(&gap_fill, &[(34, &next_sender.to_string()), (123, "Y"), (36, &(next_sender + 5).to_string())]);
    let resent = c.expect_sent("D", T);
    assert!(resent.poss_dup() && resent.seq_num() == next_sender + 5, "{resent}");
    let ack = next_app(&mut c);
    assert_fields(&ack, &[(150, "0"), (11, "g1"), (44, "91")]);
    ping(&mut c, "after-a");
    let dup_acks = c.drain().iter().filter(|e| matches!(e, Event::RecvApp(_))).count();
    assert_eq!(dup_acks, 0, "g1 is acknowledged once\n{}", c.report());

    // (b) The client pretends it missed sable's last three messages (the ResendRequest, g1's
    // ack, the Heartbeat): the next one is too high, QuickFIX asks for a resend, sable re-sends
    // the ack with PossDupFlag=Y and OrigSendingTime, and gap-fills the admin messages.
    let (_, next_target) = c.seqnums();
    let from = next_target - 3;
    c.command(&format!("set_next_target_seq {from}"));
    c.send("35=1|112=trigger");
    let rr = c.expect_sent("2", T);
    assert_eq!(rr.get(7), Some(from.to_string().as_str()), "{rr}");
    // The ResendRequest sable sent at `from` is admin: a gap fill stands for it.
    let gf = c.expect_admin("4", T);
    assert_fields(&gf, &[(34, &from.to_string()), (43, "Y"), (123, "Y"), (36, &ack.seq_num().to_string())]);
    let again = next_app(&mut c);
    assert!(again.poss_dup(), "re-sent report carries PossDupFlag=Y: {again}");
    assert_fields(&again, &[(150, "0"), (11, "g1"), (17, ack.req(17)), (37, ack.req(37))]);
    assert_eq!(again.get(122), ack.get(52), "OrigSendingTime = the first SendingTime: {again}");
    assert_eq!(again.seq_num(), ack.seq_num());
    // Then the Heartbeat and the one that triggered the request: gap-filled too.
    let gf = c.expect_admin("4", T);
    assert_fields(&gf, &[(34, &(ack.seq_num() + 1).to_string()), (43, "Y"), (123, "Y")]);
    // The session goes on in sequence both ways.
    let hb = ping(&mut c, "after-b");
    assert_eq!(c.seqnums().1, hb.seq_num() + 1);
    assert_clean(&mut c, true);
    drop(c);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn restart_of_sable_resumes_sequences_and_delivers_what_was_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let with_store = |port| QuickFixOpts { store_dir: Some(store.path().to_path_buf()), ..client1(port) };

    let app = start(dir.path());
    let mut a = QuickFixClient::spawn(&with_store(fix_port(&app)));
    a.wait_logon();
    a.send(&order("rest", "1", "2", "5", "99"));
    let rest_ack = next_app(&mut a);
    assert_fields(&rest_ack, &[(150, "0"), (11, "rest")]);
    a.send(&order("keep", "1", "2", "3", "101"));
    assert_fields(&next_app(&mut a), &[(150, "0"), (11, "keep")]);

    // sable stops: it logs the session out; QuickFIX sees the Logout and the connection end.
    app.shutdown().expect("clean shutdown");
    let logout = a.expect_admin("5", T);
    assert_eq!(logout.get(58), Some("server shutting down"), "{logout}");
    a.expect(|e| *e == Event::Logout, T);
    let (sender_before, target_before) = a.seqnums();
    assert_clean(&mut a, true);
    a.kill(); // it would keep reconnecting to the old port

    // sable comes back on the same data dir (new port). While CLIENT1 is away, CLIENT2 buys
    // 2 of its resting order: the fill is stored for CLIENT1 and takes its next seq.
    let app = start(dir.path());
    let port = fix_port(&app);
    let mut b = QuickFixClient::spawn(&client2(port));
    b.wait_logon();
    b.send(&order("take", "2", "1", "2", "99"));
    assert_fields(&next_app(&mut b), &[(150, "0"), (11, "take")]);
    assert_fields(&next_app(&mut b), &[(150, "F"), (39, "2"), (32, "2"), (31, "99")]);

    // A new QuickFIX process with the same FileStore: no reset, both sides continue.
    let mut a = QuickFixClient::spawn(&with_store(port));
    let logon = a.expect_sent("A", T);
    assert_eq!((logon.seq_num(), logon.get(141)), (sender_before, None), "{logon}");
    let reply = a.expect_admin("A", T);
    assert_eq!(reply.get(141), None, "{reply}");
    assert_eq!(reply.seq_num(), target_before + 1, "the fill stored offline took {target_before}: {reply}");
    // QuickFIX sees the higher seq and asks for what it missed (before it reports the logon):
    // the fill, as a PossDup.
    let rr = a.expect_sent("2", T);
    assert_eq!(rr.get(7), Some(target_before.to_string().as_str()), "{rr}");
    a.expect(|e| *e == Event::Logon, T);
    let fill = next_app(&mut a);
    assert!(fill.poss_dup() && fill.get(122).is_some(), "{fill}");
    assert_eq!(fill.seq_num(), target_before);
    assert_fields(
        &fill,
        &[(150, "F"), (39, "1"), (11, "rest"), (32, "2"), (31, "99"), (14, "2"), (151, "3"), (6, "99")],
    );
    assert_eq!(fill.get(37), rest_ack.get(37));

    // The order placed before the restart can be cancelled after it.
    a.send(&cancel("keep-c", "keep", "1", "2"));
    let cxl = next_app(&mut a);
    assert_fields(&cxl, &[(150, "4"), (39, "4"), (11, "keep-c"), (41, "keep"), (151, "0")]);
    assert!(!cxl.poss_dup(), "{cxl}");
    // sable closed the connection right after its shutdown Logout, so it never counted
    // QuickFIX's confirming Logout: it asked for it after the Logon (ResendRequest 7=4) and
    // QuickFIX gap-filled it. Both sides are in sequence now.
    let hb = ping(&mut a, "resumed");
    assert_eq!(a.seqnums().1, hb.seq_num() + 1);
    assert_clean(&mut a, true);
    assert_clean(&mut b, true);
    drop((a, b));
    app.shutdown().expect("clean shutdown");
}

/// Sends `fields` and returns sable's session Reject for it, checking its RefSeqNum.
#[track_caller]
fn session_reject(c: &mut QuickFixClient, fields: &str) -> FixMsg {
    let sent = c.send(fields);
    let r = c.expect_admin("3", T);
    assert_eq!(r.get(45), Some(sent.seq_num().to_string().as_str()), "RefSeqNum names the message: {r}");
    r
}

#[test]
fn every_reject_path_quickfix_can_send_is_answered_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let mut c = QuickFixClient::spawn(&client1(fix_port(&app)));
    c.wait_logon();
    let d = |extra: &str| format!("35=D|11=r|1=1|55=DEMO|54=2|60={TRANSACT_TIME}|38=1|40=2|44=100{extra}");

    // Session-level: (message, SessionRejectReason, RefTagID, Text).
    // Not here: a header field after the body (373=14), because `send` always puts header
    // tags into the header; fix_session.rs writes that one byte by byte.
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (format!("35=D|1=1|55=DEMO|54=2|60={TRANSACT_TIME}|38=1|40=2|44=100"), "1", "11", "Required tag missing"),
        (d("|112=x"), "2", "112", "Tag not defined for this message type"),
        (d("|4999=x"), "0", "4999", "Invalid tag number"),
        (
            format!("35=D|11=r|1=1|55=DEMO|54=9|60={TRANSACT_TIME}|38=1|40=2|44=100"),
            "5",
            "54",
            "Value is incorrect (out of range) for this tag",
        ),
        (
            format!("35=D|11=r|1=1|55=DEMO|54=2|60={TRANSACT_TIME}|38=ten|40=2|44=100"),
            "6",
            "38",
            "Incorrect data format for value",
        ),
        (d("|58=a|58=b"), "13", "58", "Tag appears more than once"),
        (d("|453=2|448=P1|447=D|452=3"), "16", "453", "Incorrect NumInGroup count for repeating group"),
        (d("|58="), "4", "58", "Tag specified without a value"),
        // QuickFIX names no tag for an invalid MsgType.
        ("35=ZZ".to_string(), "11", "", "Invalid MsgType"),
    ];
    for (fields, reason, ref_tag, text) in &cases {
        let r = session_reject(&mut c, fields);
        assert_fields(&r, &[(373, reason), (58, text)]);
        assert_eq!(r.get(371), Some(*ref_tag).filter(|t| !t.is_empty()), "RefTagID: {r}");
        let msg_type = fields.split('|').next().and_then(|f| f.strip_prefix("35=")).expect("35 first");
        assert_eq!(r.get(372), Some(msg_type), "RefMsgType: {r}");
    }

    // Business level: a FIX 4.4 message type sable does not take → BusinessMessageReject 380=3.
    let sent = c.send("35=AE");
    let j = next_app(&mut c);
    assert_fields(&j, &[(35, "j"), (380, "3"), (372, "AE"), (45, &sent.seq_num().to_string())]);
    // An account the session may not trade → 380=6, naming the ClOrdID.
    let sent = c.send(&order("acc2", "2", "2", "1", "100"));
    let j = next_app(&mut c);
    assert_fields(&j, &[(35, "j"), (380, "6"), (372, "D"), (379, "acc2"), (45, &sent.seq_num().to_string())]);
    // Off the tick grid (0.01): rejected, never rounded.
    c.send(&order("grid", "1", "2", "1", "100.005"));
    let er = next_app(&mut c);
    assert_fields(&er, &[(35, "8"), (150, "8"), (39, "8"), (11, "grid"), (103, "99")]);
    assert!(er.req(58).contains("tick size"), "{er}");
    // A ClOrdID already used by a live order: OrdRejReason 6 (duplicate order).
    c.send(&order("dup", "1", "2", "1", "100"));
    assert_fields(&next_app(&mut c), &[(150, "0"), (11, "dup")]);
    c.send(&order("dup", "1", "2", "1", "100"));
    let er = next_app(&mut c);
    assert_fields(&er, &[(150, "8"), (39, "8"), (11, "dup"), (103, "6")]);

    // Every reject consumed its seq: no ResendRequest, and the session is in sequence.
    ping(&mut c, "after-rejects");
    let report = c.report();
    assert!(!report.lines().any(|l| l.starts_with("recv_admin ") && l.contains("|35=2|")), "{report}");
    assert_clean(&mut c, false);
    drop(c);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn cancel_on_disconnect_asked_at_logon_cancels_resting_orders() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let port = fix_port(&app);
    let mut b = QuickFixClient::spawn(&QuickFixOpts { logon_fields: vec![(8013, "Y".into())], ..client2(port) });
    let logon = b.expect_sent("A", T);
    assert_eq!(logon.get(8013), Some("Y"));
    b.wait_logon();
    b.send(&order("cod1", "2", "1", "3", "98"));
    let ack = next_app(&mut b);
    assert_fields(&ack, &[(150, "0"), (11, "cod1")]);

    // The connection drops without a Logout; QuickFIX reconnects a second later (same process,
    // so the same sequence numbers) and logs on again.
    b.command("disconnect");
    b.expect(|e| *e == Event::Logout, T);
    b.expect(|e| *e == Event::Logon, T);
    // The cancel happened while it was away: it arrives re-sent (PossDup) through QuickFIX's
    // ResendRequest, or live if sable produced it after the new Logon.
    // sable cancels through a mass cancel of the session's account: the order's cancel, then
    // the OrderMassCancelReport (530=7 all orders, 531=7 done, 533=1 order affected).
    let cxl = next_app(&mut b);
    assert_fields(&cxl, &[(35, "8"), (150, "4"), (39, "4"), (41, "cod1"), (151, "0"), (37, ack.req(37))]);
    let mass = next_app(&mut b);
    assert_fields(&mass, &[(35, "r"), (1, "2"), (530, "7"), (531, "7"), (533, "1"), (11, cxl.req(11))]);

    // The book agrees: a sell at that price rests instead of trading.
    let mut a = QuickFixClient::spawn(&client1(port));
    a.wait_logon();
    a.send(&order("probe", "1", "2", "3", "98"));
    assert_fields(&next_app(&mut a), &[(150, "0"), (11, "probe"), (151, "3")]);
    a.send("35=H|37=NONE|11=probe|1=1|55=DEMO|54=2");
    let status = next_app(&mut a);
    assert_fields(&status, &[(150, "I"), (39, "0"), (11, "probe"), (14, "0"), (151, "3")]);
    assert_clean(&mut a, true);
    assert_clean(&mut b, true);
    drop((a, b));
    app.shutdown().expect("clean shutdown");
}

/// A gap seen at Logon by both sides at once (as after any outage in which each side missed the
/// other's last messages): sable asks for its gap once; QuickFIX's own ResendRequest, which
/// arrives while sable's is outstanding, must not make sable ask again for the same range.
#[test]
fn one_resend_request_per_gap_when_both_sides_have_one_at_logon() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let store = tempfile::tempdir().unwrap();
    let mut c =
        QuickFixClient::spawn(&QuickFixOpts { store_dir: Some(store.path().to_path_buf()), ..client2(fix_port(&app)) });
    c.wait_logon();
    ping(&mut c, "before");
    let (next_sender, next_target) = c.seqnums();
    // The client's next Logon skips 2 of its numbers, and it forgets sable's last message.
    c.command(&format!("set_next_sender_seq {}", next_sender + 2));
    c.command(&format!("set_next_target_seq {}", next_target - 1));
    c.command("disconnect");
    c.expect(|e| *e == Event::Logout, T);
    let logon = c.expect_sent("A", T);
    assert_eq!(logon.seq_num(), next_sender + 2);
    c.expect(|e| *e == Event::Logon, T);
    // QuickFIX answers sable's ResendRequest with a gap fill; a TestRequest sent after it is in
    // sequence for sable (one sent before would be dropped: see the test below).
    let gf = c.expect_sent("4", T);
    assert_eq!(gf.get(36), Some((logon.seq_num() + 2).to_string().as_str()), "{gf}");
    ping(&mut c, "after");
    let report = c.report();
    let requests: Vec<&str> = report.lines().filter(|l| l.starts_with("recv_admin ") && l.contains("|35=2|")).collect();
    assert_eq!(requests.len(), 1, "sable's ResendRequests: {requests:#?}\n{report}");
    assert!(requests[0].contains(&format!("|7={next_sender}|16=0|")), "{report}");
    assert_clean(&mut c, true);
    drop(c);
    app.shutdown().expect("clean shutdown");
}

/// A TestRequest that arrives with a sequence number above the expected one. sable holds it
/// back and asks for the gap, as QuickFIX does; the sender gap-fills administrative messages
/// instead of re-sending them (FIX 4.4 Vol. 2, Message Recovery), so the gap fill covers the
/// TestRequest itself. sable then answers it anyway, rather than leave the counterparty waiting
/// for its Heartbeat (QuickFIX in sable's place leaves it unanswered).
#[test]
fn test_request_received_across_a_gap_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let mut c = QuickFixClient::spawn(&client2(fix_port(&app)));
    c.wait_logon();
    let (next_sender, _) = c.seqnums();
    c.command(&format!("set_next_sender_seq {}", next_sender + 3));
    c.send("35=1|112=across-gap");
    // sable asks for the gap; QuickFIX gap-fills it, TestRequest included; sable answers.
    let rr = c.expect_admin("2", T);
    assert_eq!(rr.get(7), Some(next_sender.to_string().as_str()), "{rr}");
    let gf = c.expect_sent("4", T);
    assert_eq!(gf.get(36), Some((next_sender + 4).to_string().as_str()), "the TestRequest is gap-filled: {gf}");
    let hb =
        c.expect(|e| matches!(e, Event::RecvAdmin(m) if m.msg_type() == "0" && m.get(112) == Some("across-gap")), T);
    assert!(hb.msg().is_some());
    assert_clean(&mut c, true);
    drop(c);
    app.shutdown().expect("clean shutdown");
}
