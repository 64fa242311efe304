//! The QuickFIX test harness checked without sable: `sable-fix-client` (driven through
//! tests/common/quickfix.rs) against `sable-fix-echo-acceptor`, the reference counterparty in
//! tests/quickfix/. Logon with credentials, NewOrderSingle answered by an ExecutionReport,
//! sequence gaps in both directions healed by ResendRequest and SequenceReset-GapFill, sequence
//! numbers resumed from the FileStore after a client restart, and QuickFIX's own rejects.
//! Needs `gateway/scripts/install-test-deps.sh` (run by `.ci/test`).

mod common;

use common::quickfix::{DEFAULT_TIMEOUT, EchoAcceptor, Event, QuickFixClient, QuickFixOpts};

const T: std::time::Duration = DEFAULT_TIMEOUT;

#[test]
fn orders_gaps_and_restart_with_file_store() {
    let acceptor = EchoAcceptor::spawn("SABLE", "CLIENT1", Some(("alice", "s3cret")));
    let store = tempfile::tempdir().expect("temp dir");
    let opts = QuickFixOpts {
        store_dir: Some(store.path().to_path_buf()),
        logon_fields: vec![(8013, "Y".to_string())],
        ..QuickFixOpts::new(acceptor.port, "CLIENT1", "SABLE").credentials("alice", "s3cret")
    };
    let mut client = QuickFixClient::spawn(&opts);

    // 1. Logon carries the credentials and the extra field; the acceptor accepts it.
    let logon = client.expect_sent("A", T);
    assert_eq!((logon.get(553), logon.get(554), logon.get(8013)), (Some("alice"), Some("s3cret"), Some("Y")));
    assert_eq!(logon.seq_num(), 1);
    client.expect(|e| *e == Event::Logon, T);

    // 2. D -> 8.
    let d = client.send("35=D|11=ord1|55=ACME|54=1|38=100|40=2|44=10.5|60=20240101-00:00:00");
    assert_eq!(d.seq_num(), 2);
    let er = client.expect_app("8", T);
    assert_eq!((er.get(11), er.get(150), er.get(39), er.get(151)), (Some("ord1"), Some("0"), Some("0"), Some("100")));

    // 3. Our sequence jumps ahead: the acceptor asks for the gap, QuickFIX gap-fills it, and the
    //    order behind the gap is still executed once.
    let (next_sender, _) = client.seqnums();
    client.command(&format!("set_next_sender_seq {}", next_sender + 5));
    let d = client.send("35=D|11=ord2|55=ACME|54=2|38=5|40=1|60=20240101-00:00:00");
    assert_eq!(d.seq_num(), next_sender + 5);
    let rr = client.expect_admin("2", T);
    assert_eq!(rr.req(7), next_sender.to_string());
    let gap_fill = client.expect_sent("4", T);
    assert_eq!((gap_fill.get(123), gap_fill.get(36)), (Some("Y"), Some((next_sender + 5).to_string().as_str())));
    let er = client.expect_app("8", T);
    assert_eq!(er.get(11), Some("ord2"));
    assert!(!er.poss_dup(), "first delivery: {er}");

    // 4. We pretend to have missed the acceptor's last two messages: the next one it sends (the
    //    Heartbeat answering our TestRequest) is too high, so QuickFIX asks for a resend and gets
    //    the ExecutionReport again as a PossDup. The client prints recv_app only once QuickFIX
    //    has counted the message, so `seqnums` already includes it.
    let next_target = er.seq_num() + 1;
    assert_eq!(client.seqnums().1, next_target);
    client.command(&format!("set_next_target_seq {}", next_target - 2));
    client.send("35=1|112=gap");
    let rr = client.expect_sent("2", T);
    assert_eq!(rr.req(7), (next_target - 2).to_string());
    let again = client.expect_app("8", T);
    assert!(again.poss_dup() && again.get(11) == Some("ord2"), "resent report: {again}");
    let hb = client.expect_admin("0", T);
    assert_eq!(hb.get(112), Some("gap"));

    // 5. Restart: the FileStore carries both sequence numbers over (no 141=Y reset).
    let rest = client.quit();
    let last = |pred: &dyn Fn(&Event) -> bool| {
        rest.iter().rev().find(|e| pred(e)).and_then(Event::msg).cloned().expect("logout exchange")
    };
    let sent_logout = last(&|e| matches!(e, Event::SentAdmin(m) if m.msg_type() == "5"));
    let recv_logout = last(&|e| matches!(e, Event::RecvAdmin(m) if m.msg_type() == "5"));
    let mut client = QuickFixClient::spawn(&opts);
    let logon = client.expect_sent("A", T);
    assert_eq!(logon.seq_num(), sent_logout.seq_num() + 1, "{logon}");
    assert_eq!(logon.get(141), None);
    let logon_reply = client.expect_admin("A", T);
    assert_eq!(logon_reply.seq_num(), recv_logout.seq_num() + 1);
    client.expect(|e| *e == Event::Logon, T);
    client.send("35=D|11=ord3|55=ACME|54=1|38=1|40=1|60=20240101-00:00:00");
    assert_eq!(client.expect_app("8", T).get(11), Some("ord3"));
    client.quit();
}

#[test]
fn wrong_password_is_refused_with_logout() {
    let acceptor = EchoAcceptor::spawn("SABLE", "CLIENT2", Some(("bob", "right")));
    let opts = QuickFixOpts::new(acceptor.port, "CLIENT2", "SABLE").credentials("bob", "wrong");
    let mut client = QuickFixClient::spawn(&opts);
    let logout = client.expect_admin("5", T);
    assert_eq!(logout.get(58), Some("Rejected Logon Attempt: bad username or password"));
    client.expect(|e| *e == Event::Logout, T);
    assert_eq!(client.try_command("wait_logon 0"), Err("timed out after 0 s".to_string()));
}

#[test]
fn header_overrides_reach_the_wire_and_quickfix_rejects_are_reported() {
    let mut acceptor = EchoAcceptor::spawn("SABLE", "CLIENT3", None);
    let mut client = QuickFixClient::spawn(&QuickFixOpts::new(acceptor.port, "CLIENT3", "SABLE"));
    client.wait_logon();

    // PossDupFlag and OrigSendingTime, which QuickFIX strips from sendToTarget, go out as given,
    // and body fields keep their order, repeated tags included.
    let sent = client
        .send("35=D|43=Y|122=20240101-00:00:00|11=dup|55=X|54=1|38=1|40=1|60=20240101-00:00:00|453=2|448=A|448=B");
    assert!(sent.poss_dup() && sent.get(122) == Some("20240101-00:00:00"), "{sent}");
    assert_eq!(sent.get_all(448), ["A", "B"]);
    // The acceptor has no data dictionary, so the repeated 448 is a duplicate tag to it.
    let reject = client.expect_admin("3", T);
    assert_eq!((reject.get(371), reject.get(373)), (Some("448"), Some("13")), "{reject}");
    match acceptor.expect(|e| matches!(e, Event::Reject(_)), T) {
        Event::Reject(text) => assert!(text.contains("Tag appears more than once"), "{text}"),
        other => unreachable!("{other:?}"),
    }

    // A wrong SenderCompID: QuickFIX rejects (CompID problem) and logs out.
    client.send("35=D|49=WRONG|11=x|55=X|54=1|38=1|40=1|60=20240101-00:00:00");
    let reject = client.expect_admin("3", T);
    assert_eq!(reject.get(373), Some("9"), "{reject}");
    client.expect_admin("5", T);
    client.expect(|e| *e == Event::Logout, T);
}
