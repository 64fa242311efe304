//! A Negotiate whose session's password is hashed, sans-IO: held while the auth thread verifies
//! it (no reply, nothing after it read), then answered by the verdict.

use super::SbeSessions;
use crate::config::Config;
use crate::sbe::codec::{Outbound, decode_outbound, encode};
use crate::sbe::frame::next_frame;
use crate::sbe::messages::{Establish, Negotiate, NegotiationRejectCode, char_field};
use crate::session::auth::Verdict;
use crate::session::credentials::hash_password;
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol};
use crate::store::{MIN_RETAINED_SEGMENTS, MIN_SEGMENT_LEN_BYTES, SessionStore, StoreLimits};

fn frame<M: crate::sbe::SbeMessage>(m: &M) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = encode(m, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn negotiate(password: &str) -> Vec<u8> {
    frame(&Negotiate {
        session_id: 1u64.into(),
        timestamp: 5u64.into(),
        username: char_field(b"demo").unwrap(),
        password: char_field(password.as_bytes()).unwrap(),
    })
}

fn establish() -> Vec<u8> {
    frame(&Establish {
        session_id: 1u64.into(),
        timestamp: 6u64.into(),
        keepalive_interval: 1000u32.into(),
        next_seq_no: 1u64.into(),
    })
}

/// What was sent on `conn`, by name (NegotiationReject with its code).
fn sent(out: &mut Outbox, conn: usize) -> Vec<String> {
    let bytes = std::mem::take(out.tx(ConnId(conn)));
    let mut at = 0;
    let mut names = Vec::new();
    while let Ok(Some((len, f))) = next_frame(&bytes[at..]) {
        names.push(match decode_outbound(f).unwrap() {
            Outbound::NegotiationReject(r) => format!("NegotiationReject({})", r.code),
            Outbound::NegotiationResponse(_) => "NegotiationResponse".into(),
            Outbound::EstablishmentAck(_) => "EstablishmentAck".into(),
            other => format!("{other:?}"),
        });
        at += len;
    }
    names
}

fn sessions(dir: &std::path::Path) -> SbeSessions {
    let mut cfg = Config::default_config();
    cfg.sessions[0].password = hash_password(b"right").unwrap();
    let limits = StoreLimits {
        segment_bytes: MIN_SEGMENT_LEN_BYTES,
        max_retained_bytes: MIN_SEGMENT_LEN_BYTES * MIN_RETAINED_SEGMENTS,
        ..StoreLimits::default()
    };
    let stores = cfg
        .sessions
        .iter()
        .map(|s| SessionStore::open(dir, &format!("sbe-{}", s.session_id), limits).unwrap())
        .collect();
    SbeSessions::new(cfg.sessions.clone(), cfg.sessions_limits.clone(), stores, 4)
}

#[test]
fn a_hashed_negotiate_waits_for_its_verdict_and_the_establish_behind_it_waits_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut sbe = sessions(dir.path());
    let (mut out, mut exec) = (Outbox::new(4), 1u64);
    let mut input = |sbe: &mut SbeSessions, out: &mut Outbox, conn: usize, bytes: &[u8]| {
        let mut env = Env { instruments: &[], next_exec_id: &mut exec };
        sbe.handle_input(ConnId(conn), bytes, 0, &mut env, out)
    };
    sbe.handle_connect(ConnId(0), None, 0);
    let (nego, est) = (negotiate("right"), establish());
    let both = [nego.clone(), est.clone()].concat();
    assert_eq!(input(&mut sbe, &mut out, 0, &both), nego.len(), "the Establish stays unread");
    assert_eq!(sent(&mut out, 0), Vec::<String>::new(), "no answer before the verdict");
    let req = out.poll_auth().expect("a password to verify");
    assert_eq!((req.conn, req.offered.as_slice()), (ConnId(0), &b"right"[..]));
    assert_eq!(input(&mut sbe, &mut out, 0, &est), 0, "still held");

    let mut exec2 = 1u64;
    let mut env = Env { instruments: &[], next_exec_id: &mut exec2 };
    sbe.handle_verdict(ConnId(0), req.attempt, Verdict::Accepted, 0, &mut env, &mut out);
    assert_eq!(sent(&mut out, 0), vec!["NegotiationResponse".to_string()]);
    assert_eq!(input(&mut sbe, &mut out, 0, &est), est.len());
    assert_eq!(sent(&mut out, 0), vec!["EstablishmentAck".to_string()]);

    sbe.handle_connect(ConnId(1), None, 0);
    input(&mut sbe, &mut out, 1, &negotiate("wrong"));
    let req = out.poll_auth().expect("a password to verify");
    let mut env = Env { instruments: &[], next_exec_id: &mut exec2 };
    sbe.handle_verdict(ConnId(1), req.attempt, Verdict::Refused, 0, &mut env, &mut out);
    let code = NegotiationRejectCode::Credentials.to_u8();
    assert_eq!(sent(&mut out, 1), vec![format!("NegotiationReject({code})")]);
    assert!(matches!(out.poll_close(), Some((ConnId(1), CloseKind::AfterFlush, _))));
}
