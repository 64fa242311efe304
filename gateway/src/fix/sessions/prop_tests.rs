//! Property test of the FIX protocol behind the session contract: random mixes of valid,
//! garbled, out-of-order, duplicated and mis-sequenced messages from several connections, with
//! the clock moving, must never panic, never touch another session, keep sable's own sequence
//! numbers gap-free on every logged-on connection, and leave the session so that a clean Logon
//! afterwards gets a normal session: its Logon reply continues sable's sequence, its next
//! message is answered in sequence, and no ResendRequest is sent.
//! A failure prints the seed; rerun it with `PROPTEST_RNG_SEED=<seed>`.

use proptest::prelude::*;

use super::FixSessions;
use crate::config::{Config, FixSessionConfig};
use crate::fix::dictionary::Dictionary;
use crate::fix::frame::next_message;
use crate::fix::message::{FieldTable, parse};
use crate::fix::session::{BEGIN_STRING, FixSession};
use crate::fix::writer::{WRITE_BUFFER_LEN_BYTES, Writer};
use crate::session::{ConnId, Env, Outbox, Protocol};
use crate::store::{MIN_RETAINED_SEGMENTS, MIN_SEGMENT_LEN_BYTES, SessionStore, StoreLimits};

/// Connections the test opens: 0..=2 for the session under test, 3 for the bystander.
const CONNS: usize = 4;
const BYSTANDER: ConnId = ConnId(3);
const START_NS: u64 = 1_800_000_000_000_000_000;

/// How a message's MsgSeqNum relates to the one sable expects.
#[derive(Clone, Copy, Debug)]
enum SeqChoice {
    Expected,
    /// Below it, with PossDupFlag=Y and OrigSendingTime.
    Duplicate,
    /// Below it, without PossDupFlag.
    Low,
    /// Above it by 1..=3.
    High(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Connect(usize),
    Disconnect(usize),
    Logon {
        conn: usize,
        seq: SeqChoice,
        reset: bool,
    },
    Send {
        conn: usize,
        kind: u8,
        seq: SeqChoice,
    },
    Garbage {
        conn: usize,
        bytes: Vec<u8>,
    },
    /// A valid message cut in two deliveries.
    Split {
        conn: usize,
        at: usize,
    },
    Tick {
        ms: u64,
    },
}

fn seq_choice() -> impl Strategy<Value = SeqChoice> {
    prop_oneof![
        4 => Just(SeqChoice::Expected),
        1 => Just(SeqChoice::Duplicate),
        1 => Just(SeqChoice::Low),
        1 => (1u64..=3).prop_map(SeqChoice::High),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly one connection, so logged-on stretches are long; the others compete for the
    // session (a second Logon while it is logged on) and come and go.
    let conn = prop_oneof![6 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)];
    prop_oneof![
        2 => conn.clone().prop_map(Op::Connect),
        1 => conn.clone().prop_map(Op::Disconnect),
        2 => (conn.clone(), seq_choice(), any::<bool>()).prop_map(|(conn, seq, reset)| Op::Logon { conn, seq, reset }),
        8 => (conn.clone(), 0u8..9, seq_choice()).prop_map(|(conn, kind, seq)| Op::Send { conn, kind, seq }),
        1 => (conn.clone(), proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(conn, bytes)| Op::Garbage { conn, bytes }),
        1 => (conn, 1usize..60).prop_map(|(conn, at)| Op::Split { conn, at }),
        1 => (0u64..40_000).prop_map(|ms| Op::Tick { ms }),
    ]
}

/// One message sable sent: MsgType, MsgSeqNum, fields.
type Sent = (String, u64, Vec<(u32, String)>);

struct Harness {
    _dir: tempfile::TempDir,
    fix: FixSessions,
    out: Outbox,
    now_ns: u64,
    next_exec_id: u64,
    open: [bool; CONNS],
    /// Unconsumed input per connection (as the receiver keeps it).
    pending: Vec<Vec<u8>>,
    /// Whether sable accepted a Logon on the connection (its output is then sequenced).
    accepted: [bool; CONNS],
    /// sable's last MsgSeqNum sent on an accepted connection of each session.
    last_out: [Option<u64>; 2],
    /// Every message sable sent on each connection since it opened.
    received: Vec<Vec<Sent>>,
}

fn session_of(conn: usize) -> usize {
    usize::from(conn == BYSTANDER.0)
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::default_config();
        let limits = StoreLimits {
            segment_bytes: MIN_SEGMENT_LEN_BYTES,
            max_retained_bytes: MIN_SEGMENT_LEN_BYTES * MIN_RETAINED_SEGMENTS,
            ..StoreLimits::default()
        };
        let configs: Vec<FixSessionConfig> = cfg.fix_sessions.clone();
        let sessions = configs
            .iter()
            .map(|fc| {
                let store = SessionStore::open(dir.path(), &fc.store_name(), limits).unwrap();
                FixSession::new(fc, fc.effective(&cfg.fix.defaults).unwrap(), store)
            })
            .collect();
        // Session 0 is CLIENT2 (no password), session 1 CLIENT1, the bystander.
        let mut sessions: Vec<FixSession> = sessions;
        sessions.swap(0, 1);
        let comp_ids = vec![
            (configs[1].sender_comp_id.clone(), configs[1].target_comp_id.clone()),
            (configs[0].sender_comp_id.clone(), configs[0].target_comp_id.clone()),
        ];
        // The failed-logon lockout is off here: this property is about what bad input leaves
        // behind, and a lockout would (rightly) refuse the clean Logon after wrong passwords.
        let guard = crate::session::logon_guard::LogonGuard::new(0, std::time::Duration::from_secs(1));
        let fix = FixSessions::new(sessions, comp_ids, Dictionary::sable(), CONNS, 10, guard);
        Harness {
            _dir: dir,
            fix,
            out: Outbox::new(CONNS),
            now_ns: START_NS,
            next_exec_id: 1,
            open: [false; CONNS],
            pending: vec![Vec::new(); CONNS],
            accepted: [false; CONNS],
            last_out: [None; 2],
            received: vec![Vec::new(); CONNS],
        }
    }

    fn expected_in(&self, session: usize) -> u64 {
        self.fix.sessions[session].store().next_target_seq()
    }

    fn next_out(&self, session: usize) -> u64 {
        self.fix.sessions[session].store().next_sender_seq()
    }

    fn connect(&mut self, conn: usize) {
        if !self.open[conn] {
            self.open[conn] = true;
            self.accepted[conn] = false;
            self.pending[conn].clear();
            self.received[conn].clear();
            self.fix.handle_connect(ConnId(conn), None, self.now_ns);
        }
    }

    fn disconnect(&mut self, conn: usize) {
        if self.open[conn] {
            self.open[conn] = false;
            self.fix.handle_disconnect(ConnId(conn), self.now_ns, false, &mut self.out);
            self.settle();
        }
    }

    /// Bytes arriving on `conn`, as the receiver hands them over.
    fn input(&mut self, conn: usize, bytes: &[u8]) {
        if !self.open[conn] {
            return;
        }
        self.pending[conn].extend_from_slice(bytes);
        let data = std::mem::take(&mut self.pending[conn]);
        let mut env = Env { instruments: &[], next_exec_id: &mut self.next_exec_id };
        let used = self.fix.handle_input(ConnId(conn), &data, self.now_ns, &mut env, &mut self.out);
        self.pending[conn] = data[used.min(data.len())..].to_vec();
        self.settle();
    }

    fn tick(&mut self, ms: u64) {
        // In steps, as the receiver's timer would.
        for _ in 0..ms.div_ceil(250) {
            self.now_ns += 250_000_000;
            self.fix.handle_timer(self.now_ns, &mut self.out);
            self.settle();
        }
    }

    /// Collects what sable sent, checks its sequence, and carries out the closes it asked for.
    fn settle(&mut self) {
        while self.out.poll_submit().is_some() {}
        for conn in 0..CONNS {
            let bytes = std::mem::take(self.out.tx(ConnId(conn)));
            if self.open[conn] {
                self.read_output(conn, &bytes);
            }
        }
        while let Some((conn, _, _)) = self.out.poll_close() {
            if self.open[conn.0] {
                self.open[conn.0] = false;
                self.fix.handle_disconnect(conn, self.now_ns, false, &mut self.out);
            }
        }
        while self.out.poll_submit().is_some() {}
    }

    fn read_output(&mut self, conn: usize, mut bytes: &[u8]) {
        let mut table = FieldTable::default();
        while !bytes.is_empty() {
            let (len, m) = next_message(bytes).expect("sable frames what it sends").expect("whole messages");
            let msg = parse(m, &mut table).expect("sable's messages parse");
            Dictionary::sable_shared().validate(&msg, &Default::default()).expect("sable's messages validate");
            let ty = String::from_utf8_lossy(msg.msg_type()).into_owned();
            let seq = msg.seq_num().unwrap();
            let fields: Vec<(u32, String)> =
                msg.iter().map(|(t, v)| (t, String::from_utf8_lossy(v).into_owned())).collect();
            self.check_sequence(conn, &ty, seq, msg.get(43) == Some(b"Y"), msg.get(141) == Some(b"Y"));
            self.received[conn].push((ty, seq, fields));
            bytes = &bytes[len..];
        }
    }

    /// sable's own numbering on a logged-on connection: each new message one above the last,
    /// except a Logon that answers a reset (1) and re-sent messages (PossDupFlag=Y).
    fn check_sequence(&mut self, conn: usize, ty: &str, seq: u64, poss_dup: bool, reset: bool) {
        let s = session_of(conn);
        if ty == "A" {
            self.accepted[conn] = true;
        }
        if !self.accepted[conn] || poss_dup {
            return;
        }
        let want = match (ty, reset, self.last_out[s]) {
            ("A", true, _) => 1,
            (_, _, Some(last)) => last + 1,
            (_, _, None) => seq,
        };
        assert_eq!(seq, want, "sable's MsgSeqNum on conn {conn} ({ty}); sent so far: {:?}", self.received[conn]);
        self.last_out[s] = Some(seq);
    }

    /// A message with the given seq; `kind` picks its type (7 comes from the bystander's CompID).
    fn message(&self, kind: u8, seq: u64, poss_dup: bool) -> Vec<u8> {
        let (sender, msg_type, fields): (&str, &[u8], Vec<(u32, String)>) = match kind {
            0 => ("CLIENT2", b"0", vec![]),
            1 => ("CLIENT2", b"1", vec![(112, format!("t{seq}"))]),
            2 => ("CLIENT2", b"2", vec![(7, "1".into()), (16, "0".into())]),
            3 => ("CLIENT2", b"4", vec![(123, "Y".into()), (36, (seq + 2).to_string())]),
            4 => ("CLIENT2", b"D", order_fields(seq)),
            5 => ("CLIENT2", b"D", vec![(11, "bad".into()), (21, "4".into())]),
            6 => ("CLIENT2", b"ZZ", vec![]),
            7 => ("CLIENT1", b"0", vec![]),
            _ => ("CLIENT2", b"5", vec![]),
        };
        let mut buf = vec![0u8; WRITE_BUFFER_LEN_BYTES];
        let mut w = Writer::new(&mut buf, BEGIN_STRING, msg_type);
        w.str(49, sender).str(56, "SABLE").u64(34, seq).timestamp_ms(52, self.now_ns as i64);
        if poss_dup {
            w.char(43, b'Y').timestamp_ms(122, self.now_ns as i64 - 1_000_000_000);
        }
        for (t, v) in &fields {
            w.str(*t, v);
        }
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn logon(&self, seq: u64, reset: bool, comp: &str) -> Vec<u8> {
        let mut buf = vec![0u8; WRITE_BUFFER_LEN_BYTES];
        let mut w = Writer::new(&mut buf, BEGIN_STRING, b"A");
        w.str(49, comp).str(56, "SABLE").u64(34, seq).timestamp_ms(52, self.now_ns as i64);
        w.u64(98, 0).u64(108, 30);
        if comp == "CLIENT1" {
            w.str(553, "demo").str(554, "demo");
        }
        if reset {
            w.char(141, b'Y');
        }
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn seq_for(&self, choice: SeqChoice) -> (u64, bool) {
        let expected = self.expected_in(0);
        match choice {
            SeqChoice::Expected => (expected, false),
            SeqChoice::Duplicate => (expected.saturating_sub(1).max(1), true),
            SeqChoice::Low => (expected.saturating_sub(2).max(1), false),
            SeqChoice::High(n) => (expected + n, false),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(c) => self.connect(c),
            Op::Disconnect(c) => self.disconnect(c),
            Op::Logon { conn, seq, reset } => {
                let (seq, _) = if reset { (1, false) } else { self.seq_for(seq) };
                let m = self.logon(seq, reset, "CLIENT2");
                self.input(conn, &m);
            }
            Op::Send { conn, kind, seq } => {
                let (seq, poss_dup) = self.seq_for(seq);
                let m = self.message(kind, seq, poss_dup);
                self.input(conn, &m);
            }
            Op::Garbage { conn, ref bytes } => self.input(conn, bytes),
            Op::Split { conn, at } => {
                let m = self.message(1, self.expected_in(0), false);
                let at = at.min(m.len() - 1);
                self.input(conn, &m[..at]);
                self.input(conn, &m[at..]);
            }
            Op::Tick { ms } => self.tick(ms),
        }
    }
}

fn order_fields(seq: u64) -> Vec<(u32, String)> {
    vec![
        (11, format!("o{seq}")),
        (38, "1".into()),
        (40, "2".into()),
        (44, "1".into()),
        (54, "1".into()),
        (55, "DEMO".into()),
        (60, "20261122-10:00:00".into()),
    ]
}

/// Logs `conn` on cleanly for `session` (0: CLIENT2, 1: CLIENT1) and checks it gets a normal
/// session: a Logon reply continuing sable's sequence and a TestRequest answered in sequence.
fn assert_clean_session(h: &mut Harness, conn: usize, session: usize) {
    let comp = if session == 0 { "CLIENT2" } else { "CLIENT1" };
    let (seq, out) = (h.expected_in(session), h.next_out(session));
    h.connect(conn);
    let logon = h.logon(seq, false, comp);
    h.input(conn, &logon);
    let got: Vec<(String, u64)> = h.received[conn].iter().map(|(t, s, _)| (t.clone(), *s)).collect();
    assert_eq!(got, [("A".to_string(), out)], "a clean Logon of {comp} with seq {seq}");
    let mut tr = h.message(1, seq + 1, false);
    if session == 1 {
        tr = String::from_utf8(tr).unwrap().replacen("49=CLIENT2", "49=CLIENT1", 1).into_bytes();
        tr = refix(&tr);
    }
    h.input(conn, &tr);
    let last = h.received[conn]
        .last()
        .map(|(t, s, f)| (t.clone(), *s, f.iter().any(|(t, v)| *t == 112 && *v == format!("t{}", seq + 1))));
    assert_eq!(last, Some(("0".to_string(), out + 1, true)), "{:?}", h.received[conn]);
}

/// Recomputes BodyLength and CheckSum.
fn refix(msg: &[u8]) -> Vec<u8> {
    let first = msg.iter().position(|&b| b == 1).unwrap();
    let body_start = first + 1 + msg[first + 1..].iter().position(|&b| b == 1).unwrap() + 1;
    let body = &msg[body_start..msg.len() - 7];
    let mut out = msg[..=first].to_vec();
    out.extend_from_slice(format!("9={}\x01", body.len()).as_bytes());
    out.extend_from_slice(body);
    let sum = out.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_mix_of_bad_input_leaves_a_clean_logon_a_normal_session(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        // The bystander, another session, logs on first and must never notice.
        assert_clean_session(&mut h, BYSTANDER.0, 1);
        let start = [Op::Connect(0), Op::Logon { conn: 0, seq: SeqChoice::Expected, reset: false }];
        for op in start.iter().chain(&ops) {
            h.apply(op);
            // Keep the bystander alive through long ticks.
            if h.open[BYSTANDER.0] {
                let hb = h.message(7, h.expected_in(1), false);
                h.input(BYSTANDER.0, &hb);
            }
        }
        prop_assert!(h.open[BYSTANDER.0], "the bystander's connection was closed: {:?}", h.received[BYSTANDER.0]);
        let (in1, out1) = (h.expected_in(1), h.next_out(1));
        let tr = refix(&String::from_utf8(h.message(1, in1, false)).unwrap().replacen("49=CLIENT2", "49=CLIENT1", 1).into_bytes());
        h.input(BYSTANDER.0, &tr);
        let last = h.received[BYSTANDER.0].last().map(|(t, s, _)| (t.clone(), *s));
        prop_assert_eq!(last, Some(("0".to_string(), out1)));
        for conn in 0..3 {
            h.disconnect(conn);
        }
        assert_clean_session(&mut h, 0, 0);
    }
}
