//! A Logon whose password is hashed, sans-IO: held as pending while the auth thread verifies
//! it (nothing about the session changes, no reply, input behind it unread, the session
//! reserved), then completed or refused by the verdict.

use super::FixSessions;
use crate::config::Config;
use crate::fix::dictionary::Dictionary;
use crate::fix::frame::next_message;
use crate::fix::message::{FieldTable, parse};
use crate::fix::session::FixSession;
use crate::fix::writer::Writer;
use crate::session::auth::Verdict;
use crate::session::credentials::hash_password;
use crate::session::logon_guard::LogonGuard;
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol};
use crate::store::{MIN_RETAINED_SEGMENTS, MIN_SEGMENT_LEN_BYTES, SessionStore, StoreLimits};

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn msg(ty: &str, seq: u64, fields: &[(u32, &str)]) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf, "FIX.4.4", ty.as_bytes());
    w.str(49, "CLIENT1").str(56, "SABLE").u64(34, seq).timestamp_ms(52, now_ns() as i64);
    for (t, v) in fields {
        w.str(*t, v);
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn logon(password: &str) -> Vec<u8> {
    msg("A", 1, &[(98, "0"), (108, "30"), (553, "demo"), (554, password)])
}

/// Message types (35) in `bytes`.
fn types(bytes: &[u8]) -> Vec<(String, Option<String>)> {
    let mut at = 0;
    let mut found = Vec::new();
    while let Ok(Some((len, m))) = next_message(&bytes[at..]) {
        let mut table = FieldTable::default();
        let m = parse(m, &mut table).unwrap();
        let text = m.get(58).map(|v| String::from_utf8_lossy(v).into_owned());
        found.push((String::from_utf8_lossy(m.msg_type()).into_owned(), text));
        at += len;
    }
    found
}

struct Harness {
    _dir: tempfile::TempDir,
    fix: FixSessions,
    out: Outbox,
    exec: u64,
}

impl Harness {
    /// CLIENT1 (session 0) with a hashed password "right"; failed logons lock out after 2.
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default_config();
        cfg.fix_sessions[0].password = hash_password(b"right").unwrap();
        let limits = StoreLimits {
            segment_bytes: MIN_SEGMENT_LEN_BYTES,
            max_retained_bytes: MIN_SEGMENT_LEN_BYTES * MIN_RETAINED_SEGMENTS,
            ..StoreLimits::default()
        };
        let sessions: Vec<FixSession> = cfg
            .fix_sessions
            .iter()
            .map(|fc| {
                let store = SessionStore::open(dir.path(), &fc.store_name(), limits).unwrap();
                FixSession::new(fc, fc.effective(&cfg.fix.defaults).unwrap(), store)
            })
            .collect();
        let comp_ids = cfg.fix_sessions.iter().map(|f| (f.sender_comp_id.clone(), f.target_comp_id.clone())).collect();
        let guard = LogonGuard::new(2, std::time::Duration::from_secs(60));
        let fix = FixSessions::new(sessions, comp_ids, Dictionary::sable(), 4, 10, guard);
        Harness { _dir: dir, fix, out: Outbox::new(4), exec: 1 }
    }

    fn input(&mut self, conn: usize, bytes: &[u8]) -> usize {
        let mut env = Env { instruments: &[], next_exec_id: &mut self.exec };
        self.fix.handle_input(ConnId(conn), bytes, now_ns(), &mut env, &mut self.out)
    }

    fn verdict(&mut self, conn: usize, attempt: u64, verdict: Verdict) {
        let mut env = Env { instruments: &[], next_exec_id: &mut self.exec };
        self.fix.handle_verdict(ConnId(conn), attempt, verdict, now_ns(), &mut env, &mut self.out);
    }

    fn sent(&mut self, conn: usize) -> Vec<(String, Option<String>)> {
        types(&std::mem::take(self.out.tx(ConnId(conn))))
    }

    /// The one auth request queued: (conn, attempt, offered password).
    fn auth(&mut self) -> (usize, u64, Vec<u8>) {
        let req = self.out.poll_auth().expect("a password to verify");
        assert!(self.out.poll_auth().is_none(), "one request per Logon");
        (req.conn.0, req.attempt, req.offered)
    }

    fn seqs(&self) -> (u64, u64) {
        let store = self.fix.sessions[0].store();
        (store.next_sender_seq(), store.next_target_seq())
    }
}

#[test]
fn a_hashed_logon_waits_for_its_verdict_and_changes_nothing_before_it() {
    let mut h = Harness::new();
    h.fix.handle_connect(ConnId(0), None, now_ns());
    let logon_bytes = logon("right");
    let mut bytes = logon_bytes.clone();
    bytes.extend_from_slice(&msg("1", 2, &[(112, "early")]));
    assert_eq!(h.input(0, &bytes), logon_bytes.len(), "what follows the Logon stays unread");
    assert_eq!(h.sent(0), vec![], "no reply before the verdict");
    let (conn, attempt, offered) = h.auth();
    assert_eq!((conn, offered.as_slice()), (0, &b"right"[..]));
    assert_eq!(h.seqs(), (1, 1), "nothing consumed while pending");
    assert_eq!(h.input(0, &bytes[logon_bytes.len()..]), 0, "still held while pending");

    // Another connection for the same session meanwhile is refused without a reply.
    h.fix.handle_connect(ConnId(1), None, now_ns());
    h.input(1, &logon("right"));
    assert!(matches!(h.out.poll_close(), Some((ConnId(1), CloseKind::Now, _))));
    assert!(h.out.poll_auth().is_none());

    h.verdict(0, attempt + 1, Verdict::Accepted);
    assert_eq!(h.sent(0), vec![], "a verdict for another attempt is ignored");
    h.verdict(0, attempt, Verdict::Accepted);
    assert_eq!(h.sent(0), vec![("A".into(), None)]);
    let rest = &bytes[logon_bytes.len()..];
    assert_eq!(h.input(0, rest), rest.len(), "the held TestRequest is processed after the Logon");
    assert_eq!(h.sent(0), vec![("0".into(), None)]);
    assert_eq!(h.seqs(), (3, 3));
}

#[test]
fn a_refused_verdict_answers_as_a_wrong_password_and_counts_as_a_failure() {
    let mut h = Harness::new();
    for conn in 0..2 {
        h.fix.handle_connect(ConnId(conn), None, now_ns());
        h.input(conn, &logon("wrong"));
        let (_, attempt, offered) = h.auth();
        assert_eq!(offered, b"wrong");
        h.verdict(conn, attempt, Verdict::Refused);
        assert_eq!(h.sent(conn), vec![("5".into(), Some("Invalid Username or Password".into()))]);
        assert!(matches!(h.out.poll_close(), Some((c, CloseKind::AfterFlush, _)) if c == ConnId(conn)));
        assert_eq!(h.seqs(), (1, 1), "a refused Logon consumes nothing");
        h.fix.handle_disconnect(ConnId(conn), now_ns(), false, &mut h.out);
    }
    // Two failures lock the session out: the right password is refused at once, unverified.
    h.fix.handle_connect(ConnId(2), None, now_ns());
    h.input(2, &logon("right"));
    assert!(h.out.poll_auth().is_none(), "no verification spent during a lockout");
    assert_eq!(h.sent(2), vec![("5".into(), Some("Invalid Username or Password".into()))]);
}

#[test]
fn an_unavailable_verdict_drops_the_connection_and_a_disconnect_frees_the_session() {
    let mut h = Harness::new();
    h.fix.handle_connect(ConnId(0), None, now_ns());
    h.input(0, &logon("right"));
    let (_, attempt, _) = h.auth();
    h.verdict(0, attempt, Verdict::Unavailable);
    assert!(matches!(h.out.poll_close(), Some((ConnId(0), CloseKind::Now, _))));
    assert_eq!(h.sent(0), vec![]);
    h.fix.handle_disconnect(ConnId(0), now_ns(), false, &mut h.out);

    h.fix.handle_connect(ConnId(1), None, now_ns());
    h.input(1, &logon("right"));
    let (_, attempt, _) = h.auth();
    h.fix.handle_disconnect(ConnId(1), now_ns(), false, &mut h.out);
    h.verdict(1, attempt, Verdict::Accepted);
    assert_eq!(h.sent(1), vec![], "the verdict of a gone connection does nothing");
    h.fix.handle_connect(ConnId(2), None, now_ns());
    h.input(2, &logon("right"));
    let (_, attempt, _) = h.auth();
    h.verdict(2, attempt, Verdict::Accepted);
    assert_eq!(h.sent(2), vec![("A".into(), None)], "the session was freed by the disconnect");
}
