use engine::{AccountId, InstrumentId, OperatorAction, OperatorCommand, OperatorName, OperatorOutcome, ScopeState};
use engine::{MassCancelTarget, TradingStatus};

use super::*;

fn entry(seq: u64, by: &str, action: OperatorAction) -> AuditEntry {
    let outcome = OperatorOutcome {
        before: ScopeState { live_orders: Some(3), status: Some(TradingStatus::Open), kill_switch: None },
        after: ScopeState { live_orders: Some(3), status: Some(TradingStatus::Halted), kill_switch: None },
        cancelled: 0,
        refused: None,
    };
    AuditEntry::new(
        seq,
        1_765_000_000_000_000_000 + seq,
        &OperatorCommand { by: OperatorName::new(by), action },
        &outcome,
    )
}

fn halt(seq: u64) -> AuditEntry {
    entry(seq, "alice", OperatorAction::SetTradingStatus { instrument: InstrumentId(1), status: TradingStatus::Halted })
}

fn log_with(dir: &Path, entries: &[AuditEntry]) -> PathBuf {
    let path = dir.join(FILE_NAME);
    let mut log = AuditLog::open(&path).unwrap();
    for e in entries {
        log.append(e.clone()).unwrap();
    }
    path
}

#[test]
fn records_chain_and_reopen_verified() {
    let dir = tempfile::tempdir().unwrap();
    let kill = entry(9, "bob", OperatorAction::KillAccount { account: AccountId(7), engaged: true });
    let path = log_with(dir.path(), &[halt(4), kill.clone()]);
    let log = AuditLog::open(&path).unwrap();
    let r = log.records();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].prev.as_str(), r[1].prev.as_str()), (GENESIS, r[0].hash.as_str()));
    assert_eq!(r[1].entry, kill);
    assert_eq!(r[0].entry.time, "2025-12-06T05:46:40.000000004Z");
    assert_eq!((r[0].entry.action.as_str(), r[1].entry.action.as_str()), ("halt", "kill_account"));
}

#[test]
fn an_edited_record_breaks_the_chain_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), &[halt(4), halt(5), halt(6)]);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"by\":\"alice\"", "\"by\":\"mallory\"", 2).replacen("mallory", "alice", 1))
        .unwrap();
    match AuditLog::open(&path) {
        Err(AuditError::Broken { line: 2, why, .. }) => assert!(why.contains("hash does not match"), "{why}"),
        other => panic!("expected line 2 to break the chain, got {:?}", other.map(|l| l.records().len())),
    }
}

#[test]
fn a_removed_record_breaks_the_link_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), &[halt(4), halt(5), halt(6)]);
    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    assert!(matches!(AuditLog::open(&path), Err(AuditError::Broken { line: 2, .. })));
}

#[test]
fn a_rehashed_forgery_passes_the_chain_but_not_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut forged = halt(4);
    forged.by = "mallory".into();
    let path = log_with(dir.path(), &[forged]);
    let mut log = AuditLog::open(&path).expect("a consistently rehashed chain is well formed");
    match log.reconcile(Some(Derived { from: 0, before: 0, entries: &[halt(4)] }), 10) {
        Err(AuditError::Journal { seq: 4, .. }) => {}
        other => panic!("expected the journal to disagree at seq 4, got {other:?}"),
    }
}

#[test]
fn reconcile_appends_what_the_log_missed_and_drops_what_never_became_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), &[halt(4), halt(12)]);
    let mut log = AuditLog::open(&path).unwrap();
    let cancel = entry(8, "bob", OperatorAction::MassCancel(MassCancelTarget::Instrument(InstrumentId(1))));
    let all = [halt(4), cancel.clone()];
    let done = log.reconcile(Some(Derived { from: 0, before: 0, entries: &all }), 10).unwrap();
    assert_eq!(done, Reconciled { verified: 1, appended: 1, dropped: 1 });
    let reopened = AuditLog::open(&path).unwrap();
    let seqs: Vec<u64> = reopened.records().iter().map(|r| r.entry.seq).collect();
    assert_eq!(seqs, vec![4, 8]);
}

#[test]
fn filters_select_by_operator_action_target_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let kill = entry(9, "bob", OperatorAction::KillAccount { account: AccountId(7), engaged: true });
    let kill17 = entry(10, "bob", OperatorAction::KillAccount { account: AccountId(17), engaged: true });
    let path = log_with(dir.path(), &[halt(4), kill, kill17]);
    let shared = SharedAudit::new(AuditLog::open(&path).unwrap());
    let seqs = |f: Filter| shared.select(&f).iter().map(|r| r.entry.seq).collect::<Vec<_>>();
    assert_eq!(seqs(Filter { by: Some("bob".into()), ..Filter::default() }), vec![9, 10]);
    assert_eq!(seqs(Filter { action: Some("halt".into()), ..Filter::default() }), vec![4]);
    assert_eq!(seqs(Filter { target: Some("account 7".into()), ..Filter::default() }), vec![9]);
    assert_eq!(seqs(Filter { since_seq: Some(5), limit: Some(1), ..Filter::default() }), vec![9]);
    assert_eq!(shared.wait_for(&[4, 10], Duration::from_millis(1)).len(), 2);
}

#[test]
fn after_a_snapshot_only_the_replayed_tail_is_compared_and_the_count_before_it_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), &[halt(4), halt(9), halt(15)]);
    let mut log = AuditLog::open(&path).unwrap();
    let tail = [halt(15), halt(18)];
    let done = log.reconcile(Some(Derived { from: 10, before: 2, entries: &tail }), 20).unwrap();
    assert_eq!(done, Reconciled { verified: 1, appended: 1, dropped: 0 });
    let mut short = AuditLog::open(&path).unwrap();
    match short.reconcile(Some(Derived { from: 10, before: 3, entries: &tail }), 20) {
        Err(AuditError::Short { have: 2, want: 3, upto: 10, .. }) => {}
        other => panic!("a log short of records before the snapshot must say so, got {other:?}"),
    }
}

#[test]
fn a_torn_last_line_is_dropped_and_the_log_goes_on_from_the_record_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), &[halt(4), halt(5)]);
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() - 40;
    std::fs::write(&path, &text[..cut]).unwrap();
    let mut log = AuditLog::open(&path).expect("a torn tail is a crash mid-write, not an edit");
    assert_eq!(log.records().len(), 1);
    log.append(halt(6)).unwrap();
    let reopened = read_verified(&path).unwrap();
    assert_eq!(reopened.iter().map(|r| r.entry.seq).collect::<Vec<_>>(), vec![4, 6]);
    assert_eq!(reopened[1].prev, reopened[0].hash);
}
