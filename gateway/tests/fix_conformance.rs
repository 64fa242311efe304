//! The FIX session behaviours QuickFIX's own acceptance suite checks (gateway/tests/quickfix-at/,
//! run by `gateway/scripts/quickfix-at.sh`), each pinned down over a raw socket against the
//! in-process appliance, so a regression names the rule it breaks. Every message received is
//! also checked for QuickFIX's field order by the raw client (`support/raw_fix.rs`).

#[path = "support/raw_fix.rs"]
mod raw_fix;

use std::net::SocketAddr;
use std::time::Duration;

use raw_fix::{Msg, Raw, refix, start};

/// The tags of a message after the standard header (8, 9, 35, 34, 49, 52, 56) and before 10.
fn body_tags(m: &Msg) -> Vec<u32> {
    m.0.iter().map(|(t, _)| *t).filter(|t| ![8, 9, 35, 34, 49, 52, 56, 10].contains(t)).collect()
}

/// Logs CLIENT2 on with `seq`, checks sable's Logon carries `out_seq`, logs out cleanly.
/// Returns the next seqs (client's, sable's).
fn clean_session(addr: SocketAddr, seq: u64, out_seq: u64) -> (u64, u64) {
    let mut c = Raw::connect(addr, "CLIENT2");
    c.seq = seq;
    let ack = c.logon(&[]);
    assert_eq!(ack.seq(), out_seq, "sable's Logon continues its sequence: {:?}", c.log);
    c.send("1", &[(112, "alive")]);
    let hb = c.expect("0");
    assert_eq!((hb.get(112), hb.seq()), (Some("alive"), out_seq + 1), "{:?}", c.log);
    assert!(!c.log.iter().any(|m| m.ty() == "2"), "no ResendRequest: {:?}", c.log);
    c.send("5", &[]);
    assert_eq!(c.expect("5").seq(), out_seq + 2);
    c.expect_closed();
    (c.seq, out_seq + 3)
}

/// A Logon refused the way QuickFIX refuses it: the connection closes without one byte in
/// reply, and the next Logon of the session finds both sequence numbers where they were.
fn refused_silently(bad: impl FnOnce(&Raw, u64) -> Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let (seq, out_seq) = clean_session(addr, 1, 1);
    let mut c = Raw::connect(addr, "CLIENT2");
    let bytes = bad(&c, seq);
    c.send_raw(&bytes);
    c.expect_closed();
    assert!(c.log.is_empty(), "no reply to a refused Logon: {:?}", c.log);
    clean_session(addr, seq, out_seq);
    app.shutdown().unwrap();
}

fn logon_bytes(c: &Raw, seq: u64) -> Vec<u8> {
    c.build("A", seq, &[(98, "0"), (108, "30")])
}

#[test]
fn logon_with_a_bad_sending_time_is_dropped_without_a_reply() {
    refused_silently(|c, seq| {
        let mut m = logon_bytes(c, seq);
        let at = String::from_utf8(m.clone()).unwrap().find("\x0152=").unwrap() + 4;
        m[at..at + 4].copy_from_slice(b"2001");
        refix(&m)
    });
}

#[test]
fn logon_with_a_wrong_begin_string_is_dropped_and_takes_no_sequence_number() {
    refused_silently(|c, seq| {
        let m = String::from_utf8(logon_bytes(c, seq)).unwrap().replacen("8=FIX.4.4", "8=FIX.3.9", 1);
        refix(m.as_bytes())
    });
}

#[test]
fn logon_with_a_bad_body_length_is_dropped_without_a_reply() {
    refused_silently(|c, seq| {
        let m = String::from_utf8(logon_bytes(c, seq)).unwrap();
        let len_at = m.find("\x019=").unwrap() + 3;
        let len_end = len_at + m[len_at..].find('\x01').unwrap();
        format!("{}40{}", &m[..len_at], &m[len_end..]).into_bytes()
    });
}

#[test]
fn logon_with_unknown_comp_ids_is_dropped_without_a_reply() {
    refused_silently(|c, seq| {
        let m = String::from_utf8(logon_bytes(c, seq)).unwrap().replacen("\x0156=SABLE\x01", "\x0156=ELBAS\x01", 1);
        refix(m.as_bytes())
    });
    refused_silently(|c, seq| {
        let m = String::from_utf8(logon_bytes(c, seq)).unwrap().replacen("\x0149=CLIENT2\x01", "\x0149=CLIENT9\x01", 1);
        refix(m.as_bytes())
    });
}

#[test]
fn a_first_message_that_is_not_a_logon_is_dropped_without_a_reply() {
    refused_silently(|c, seq| c.build("0", seq, &[]));
}

/// Logs CLIENT1 (one account) on at a fresh appliance.
fn client1(addr: SocketAddr) -> Raw {
    let mut c = Raw::connect(addr, "CLIENT1");
    c.logon(&[(553, "demo"), (554, "demo")]);
    c
}

fn reject_fields(r: &Msg) -> Vec<(u32, &str)> {
    r.0.iter().filter(|(t, _)| [45, 58, 371, 372, 373].contains(t)).map(|(t, v)| (*t, v.as_str())).collect()
}

#[test]
fn format_and_enumeration_are_checked_before_required_fields() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    // No ClOrdID (11, required) in either; HandlInst 4 is no HandlInst, +200.00 no quantity.
    let base = [(1, "1"), (21, "1"), (38, "200"), (40, "1"), (54, "1"), (55, "DEMO"), (60, "20261122-10:00:00")];
    let with = |t: u32, v: &'static str| -> Vec<(u32, &'static str)> {
        base.iter().map(|&(bt, bv)| if bt == t { (bt, v) } else { (bt, bv) }).collect()
    };
    let seq = c.seq;
    c.send("D", &with(21, "4"));
    let r = c.expect("3");
    let s = seq.to_string();
    let want = vec![
        (45, s.as_str()),
        (58, "Value is incorrect (out of range) for this tag"),
        (371, "21"),
        (372, "D"),
        (373, "5"),
    ];
    assert_eq!(reject_fields(&r), want);
    let seq = c.seq;
    c.send("D", &with(38, "+200.00"));
    let r = c.expect("3");
    let s = seq.to_string();
    let want = vec![(45, s.as_str()), (58, "Incorrect data format for value"), (371, "38"), (372, "D"), (373, "6")];
    assert_eq!(reject_fields(&r), want);
    // With both fixed, the missing ClOrdID is what is wrong.
    let seq = c.seq;
    c.send("D", &base);
    let r = c.expect("3");
    let s = seq.to_string();
    assert_eq!(
        reject_fields(&r),
        vec![(45, s.as_str()), (58, "Required tag missing"), (371, "11"), (372, "D"), (373, "1")]
    );
    app.shutdown().unwrap();
}

#[test]
fn invalid_tag_numbers_are_rejected_with_the_tag_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    for tag in ["999", "0", "-1", "5000"] {
        // The writer refuses tags that are no tags, so write 9999 and patch it.
        let seq = c.seq;
        let m = String::from_utf8(c.build("0", seq, &[(9999, "HI")])).unwrap();
        let m = m.replacen("\x019999=HI\x01", &format!("\x01{tag}=HI\x01"), 1);
        c.seq += 1;
        c.send_raw(&refix(m.as_bytes()));
        let r = c.expect("3");
        let s = seq.to_string();
        let want = vec![(45, s.as_str()), (58, "Invalid tag number"), (371, tag), (372, "0"), (373, "0")];
        assert_eq!(reject_fields(&r), want, "tag {tag}");
        assert_eq!(body_tags(&r), [45, 58, 371, 372, 373], "{r:?}");
    }
    // Each reject counted its message: the next one is in sequence.
    c.send("1", &[(112, "next")]);
    assert_eq!(c.expect("0").get(112), Some("next"));
    app.shutdown().unwrap();
}

#[test]
fn messages_above_the_expected_seq_wait_for_the_gap_and_one_resend_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    let gap = c.seq;
    c.seq = gap + 2;
    c.send("1", &[(112, "first")]);
    c.send("1", &[(112, "second")]);
    let rr = c.expect("2");
    assert_eq!((rr.get(7), rr.get(16)), (Some(gap.to_string().as_str()), Some("0")), "{rr:?}");
    // Nothing is answered while the gap is open.
    assert!(c.recv(Duration::from_millis(300)).is_none(), "{:?}", c.log);
    let after = c.seq;
    c.seq = gap;
    c.send("0", &[]);
    c.send("0", &[]);
    c.seq = after;
    // The held-back TestRequests are answered in order once the gap is filled.
    assert_eq!(c.expect("0").get(112), Some("first"));
    assert_eq!(c.expect("0").get(112), Some("second"));
    c.send("1", &[(112, "third")]);
    assert_eq!(c.expect("0").get(112), Some("third"));
    assert_eq!(c.log.iter().filter(|m| m.ty() == "2").count(), 1, "one ResendRequest: {:?}", c.log);
    app.shutdown().unwrap();
}

#[test]
fn a_resent_message_that_fails_validation_is_rejected_and_the_queue_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    let gap = c.seq;
    c.seq = gap + 1;
    c.send("1", &[(112, "HELLO1")]);
    assert_eq!(c.expect("2").get(7), Some(gap.to_string().as_str()));
    // The missing message comes again, with a malformed ExpireTime.
    let bad = [
        (43, "Y"),
        (122, "20261122-10:00:00"),
        (11, "ID"),
        (38, "100"),
        (40, "1"),
        (54, "1"),
        (55, "DEMO"),
        (60, "20261122-10:00:00"),
        (126, "20040415"),
    ];
    let m = c.build("D", gap, &bad);
    c.send_raw(&m);
    let r = c.expect("3");
    let s = gap.to_string();
    let want = vec![(45, s.as_str()), (58, "Incorrect data format for value"), (371, "126"), (372, "D"), (373, "6")];
    assert_eq!(reject_fields(&r), want);
    assert_eq!(c.expect("0").get(112), Some("HELLO1"), "the held-back TestRequest follows");
    c.send("1", &[(112, "HELLO2")]);
    assert_eq!(c.expect("0").get(112), Some("HELLO2"));
    app.shutdown().unwrap();
}

#[test]
fn a_resend_request_is_honoured_whatever_its_own_seq() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    c.send("1", &[(112, "a")]);
    c.expect("0");
    // Too low, no PossDupFlag: answered (one gap fill over sable's admin messages 1..=2).
    let low = c.build("2", 1, &[(7, "1"), (16, "0")]);
    c.send_raw(&low);
    let gf = c.expect("4");
    assert_eq!((gf.seq(), gf.get(36), gf.get(123), gf.get(43)), (1, Some("3"), Some("Y"), Some("Y")), "{gf:?}");
    c.send("1", &[(112, "b")]);
    let b = c.expect("0");
    assert_eq!(b.get(112), Some("b"), "the session goes on");
    // Too high: answered too, and sable asks for the gap.
    let expected = c.seq;
    let high = c.build("2", expected + 5, &[(7, "1"), (16, "0")]);
    c.send_raw(&high);
    assert_eq!(c.expect("4").get(36), Some((b.seq() + 1).to_string().as_str()));
    let rr = c.expect("2");
    assert_eq!(rr.get(7), Some(expected.to_string().as_str()), "{rr:?}");
    app.shutdown().unwrap();
}

#[test]
fn a_logout_with_a_too_low_seq_is_still_answered_with_a_logout() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    c.send("1", &[(112, "a")]);
    let hb = c.expect("0");
    let low = c.build("5", 1, &[]);
    c.send_raw(&low);
    let lo = c.expect("5");
    assert_eq!((lo.seq(), lo.get(58)), (hb.seq() + 1, None), "{lo:?}");
    c.expect_closed();
    app.shutdown().unwrap();
}

#[test]
fn a_logon_with_reset_mid_session_resets_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    for _ in 0..3 {
        c.send("0", &[]);
    }
    c.send("1", &[(112, "before")]);
    assert!(c.expect("0").seq() > 1);
    c.seq = 1;
    c.send("A", &[(98, "0"), (108, "30"), (141, "Y")]);
    let ack = c.expect("A");
    assert_eq!((ack.seq(), ack.get(141)), (1, Some("Y")), "{ack:?}");
    c.send("1", &[(112, "after")]);
    let hb = c.expect("0");
    assert_eq!((hb.seq(), hb.get(112)), (2, Some("after")), "{hb:?}");
    app.shutdown().unwrap();
}

#[test]
fn the_logon_reply_carries_reset_seq_num_flag_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // reset_on_logon resets either way, but the reply says so only when the Logon asked.
    let app = start(dir.path(), |c| c.fix.defaults.reset_on_logon = true);
    let addr = app.fix_addr().unwrap();
    let mut c = Raw::connect(addr, "CLIENT2");
    let ack = c.logon(&[]);
    assert_eq!((ack.seq(), ack.get(141)), (1, None), "{ack:?}");
    assert_eq!(body_tags(&ack), [98, 108]);
    c.send("5", &[]);
    c.expect("5");
    c.expect_closed();
    let mut c = Raw::connect(addr, "CLIENT2");
    let ack = c.logon(&[(141, "Y")]);
    assert_eq!((ack.seq(), ack.get(141)), (1, Some("Y")), "{ack:?}");
    assert_eq!(body_tags(&ack), [98, 108, 141]);
    app.shutdown().unwrap();
}

#[test]
fn rejects_carry_exactly_the_fields_quickfix_sends() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let mut c = client1(addr);
    // SequenceReset-Reset backwards: no RefTagID.
    let m = c.build("4", 0, &[(36, "1")]);
    c.send_raw(&m);
    let r = c.expect("3");
    assert_eq!(body_tags(&r), [45, 58, 372, 373], "{r:?}");
    assert_eq!((r.get(45), r.get(373)), (Some("0"), Some("5")));
    // An invalid MsgType: no RefTagID.
    c.send("*", &[]);
    let r = c.expect("3");
    assert_eq!(body_tags(&r), [45, 58, 372, 373], "{r:?}");
    assert_eq!((r.get(58), r.get(372), r.get(373)), (Some("Invalid MsgType"), Some("*"), Some("11")));
    // Routing fields come back reversed in the header; an empty one does not.
    c.send(
        "D",
        &[
            (115, "JCD"),
            (116, "CS"),
            (11, "r"),
            (38, "1"),
            (40, "w"),
            (54, "1"),
            (55, "DEMO"),
            (60, "20261122-10:00:00"),
        ],
    );
    let r = c.expect("3");
    assert_eq!((r.get(128), r.get(129), r.get(115), r.get(371)), (Some("JCD"), Some("CS"), None, Some("40")), "{r:?}");
    // SendingTime off by more than max_latency_s: no RefTagID, Logout without Text.
    let mut m = c.build("0", c.seq, &[]);
    c.seq += 1;
    let at = String::from_utf8(m.clone()).unwrap().find("\x0152=").unwrap() + 4;
    m[at..at + 4].copy_from_slice(b"2001");
    c.send_raw(&refix(&m));
    let r = c.expect("3");
    assert_eq!(body_tags(&r), [45, 58, 372, 373], "{r:?}");
    assert_eq!(r.get(373), Some("10"));
    let lo = c.expect("5");
    assert_eq!(body_tags(&lo), Vec::<u32>::new(), "{lo:?}");
    // sable waits for the counterparty's Logout, then closes.
    c.send("5", &[]);
    c.expect_closed();
    // A CompID problem: no RefTagID either.
    let next = c.seq;
    let mut c = Raw::connect(addr, "CLIENT1");
    c.seq = next;
    c.logon(&[(553, "demo"), (554, "demo")]);
    c.target = "ELBAS".into();
    c.send("0", &[]);
    let r = c.expect("3");
    assert_eq!(body_tags(&r), [45, 58, 372, 373], "{r:?}");
    assert_eq!((r.get(58), r.get(373)), (Some("CompID problem"), Some("9")));
    assert_eq!(body_tags(&c.expect("5")), Vec::<u32>::new());
    app.shutdown().unwrap();
}

// The TestRequest after a silent HeartBtInt (112=TEST, nothing after it, then the close):
// `a_silent_client_gets_a_test_request_then_is_disconnected` in fix_session.rs.

#[test]
fn outgoing_fields_are_in_quickfix_order_in_resent_and_echoed_messages_too() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let mut c = client1(app.fix_addr().unwrap());
    // An ExecutionReport (its body is written in no particular order and sorted on the way).
    c.send("D", &[(11, "o1"), (38, "5"), (40, "2"), (44, "100"), (54, "1"), (55, "DEMO"), (60, "20261122-10:00:00")]);
    let er = c.expect("8");
    let tags = body_tags(&er);
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(tags, sorted, "{er:?}");
    // The same report re-sent: PossDupFlag and OrigSendingTime in the header, in order.
    c.send("2", &[(7, &er.seq().to_string()), (16, &er.seq().to_string())]);
    let again = c.expect("8");
    let header: Vec<u32> = again.0.iter().map(|(t, _)| *t).take(9).collect();
    assert_eq!(header, [8, 9, 35, 34, 43, 49, 52, 56, 122], "{again:?}");
    assert_eq!(body_tags(&again).into_iter().filter(|t| ![43, 122].contains(t)).collect::<Vec<_>>(), tags);
    // An echoed TestReqID.
    c.send("1", &[(112, "echo")]);
    assert_eq!(body_tags(&c.expect("0")), [112]);
    app.shutdown().unwrap();
}

#[test]
fn a_session_with_one_account_may_leave_account_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |c| c.fix_sessions[1].accounts = vec![1, 2]);
    let addr = app.fix_addr().unwrap();
    let order = |account: Option<&'static str>, cl: &'static str| {
        let mut v =
            vec![(11, cl), (38, "1"), (40, "2"), (44, "100"), (54, "2"), (55, "DEMO"), (60, "20261122-10:00:00")];
        if let Some(a) = account {
            v.push((1, a));
        }
        v
    };
    // CLIENT1 trades account 1 only: no Account means account 1.
    let mut one = client1(addr);
    one.send("D", &order(None, "n1"));
    let er = one.expect("8");
    assert_eq!((er.get(150), er.get(1)), (Some("0"), Some("1")), "{er:?}");
    // When present it is still checked.
    one.send("D", &order(Some("2"), "n2"));
    let j = one.expect("j");
    assert_eq!((j.get(380), j.get(379)), (Some("6"), Some("n2")), "{j:?}");
    // No OrderQty: conditionally required.
    one.send("D", &[(11, "n3"), (40, "2"), (44, "100"), (54, "2"), (55, "DEMO"), (60, "20261122-10:00:00")]);
    let j = one.expect("j");
    assert_eq!((j.get(380), j.get(58)), (Some("5"), Some("Conditionally Required Field Missing (38)")), "{j:?}");
    // CLIENT2, now with two accounts, must say which.
    let mut two = Raw::connect(addr, "CLIENT2");
    two.logon(&[]);
    two.send("D", &order(None, "t1"));
    let j = two.expect("j");
    assert_eq!((j.get(380), j.get(58)), (Some("5"), Some("Conditionally Required Field Missing (1)")), "{j:?}");
    two.send("D", &order(Some("2"), "t2"));
    assert_eq!(two.expect("8").get(1), Some("2"));
    app.shutdown().unwrap();
}

#[test]
fn a_logon_refused_with_a_logout_takes_no_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    for attempt in 0..3 {
        let mut bad = Raw::connect(addr, "CLIENT1");
        bad.send("A", &[(98, "0"), (108, "30"), (553, "demo"), (554, "wrong"), (8013, "Y")]);
        let lo = bad.expect("5");
        assert_eq!((lo.seq(), lo.get(58)), (1, Some("Invalid Username or Password")), "attempt {attempt}");
        bad.expect_closed();
    }
    // The refusals were neither stored nor counted: the real client starts at 1 on both sides.
    let mut c = client1(addr);
    assert_eq!(c.log.last().map(Msg::seq), Some(1), "{:?}", c.log);
    c.send("1", &[(112, "in-sequence")]);
    let hb = c.expect("0");
    assert_eq!((hb.seq(), hb.get(112)), (2, Some("in-sequence")));
    assert!(!c.log.iter().any(|m| m.ty() == "2" || m.ty() == "4"), "nothing to recover: {:?}", c.log);
    app.shutdown().unwrap();
}
