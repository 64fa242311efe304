//! Snapshot files and restore: round trip, damage detection, fallback, retention, archiving.

use std::fs;

use engine::sim::command_stream;
use engine::{Command, CountingSink, Engine, EngineLimits, InstrumentId};
use journal::{Durability, Journal, JournalConfig, MmapStorage};
use snapshot::{Follower, RestoreError, Retention, SnapshotError, SnapshotStore, restore};

const SEED: u64 = 42;

/// A journal of `n` generated commands plus the engine that applied them, with a snapshot
/// written every `every` commands by a follower.
fn setup(dir: &std::path::Path, n: usize, every: u64) -> (Journal<MmapStorage>, Engine, SnapshotStore) {
    let config = JournalConfig { segment_len_bytes: 1 << 20, ..JournalConfig::default() };
    let mut j = Journal::open_dir(dir.join("journal"), config).unwrap();
    let mut engine = Engine::new(EngineLimits::SMALL);
    let mut follower = Follower::new(
        Engine::new(EngineLimits::SMALL),
        SnapshotStore::open(dir.join("snapshots")).unwrap(),
        every,
        Retention { keep_last: 100, max_age_ns: None },
    );
    let mut buf = [0u8; Command::MAX_ENCODED_LEN];
    for cmd in command_stream(SEED, InstrumentId(0), 6, 1_000).take(n) {
        j.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, cmd.encode(&mut buf).unwrap()).unwrap();
        engine.apply(&cmd, &mut CountingSink::default()).unwrap();
        j.commit(Durability::Written).unwrap();
        follower.apply(&cmd).unwrap();
    }
    assert_eq!(follower.engine().state_hash(), engine.state_hash(), "the follower tracks the primary exactly");
    (j, engine, SnapshotStore::open(dir.join("snapshots")).unwrap())
}

#[test]
fn restore_uses_the_newest_snapshot_and_matches_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (j, engine, store) = setup(dir.path(), 25_000, 10_000);
    let seqs: Vec<u64> = store.list().unwrap().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [10_000, 20_000]);
    let (restored, report) = restore(Some(&store), &j, EngineLimits::SMALL).unwrap();
    assert_eq!(report.snapshot.unwrap().seq, 20_000);
    assert_eq!(report.replayed, 5_000);
    assert_eq!(restored.state_hash(), engine.state_hash());
    // Any retained version restores on its own to the state the writer had at that seq.
    let (_, at_10k) = store.load(10_000).unwrap();
    let mut replay = Engine::new(EngineLimits::SMALL);
    for cmd in command_stream(SEED, InstrumentId(0), 6, 1_000).take(10_000) {
        replay.apply(&cmd, &mut CountingSink::default()).unwrap();
    }
    assert_eq!(at_10k.state_hash(), replay.state_hash());
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let (j, engine, store) = setup(dir.path(), 25_000, 10_000);
    let newest = store.list().unwrap().last().unwrap().path.clone();
    let mut bytes = fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&newest, &bytes).unwrap();
    assert!(matches!(store.verify(20_000), Err(SnapshotError::BadImage { .. })));
    let (restored, report) = restore(Some(&store), &j, EngineLimits::SMALL).unwrap();
    assert_eq!(report.snapshot.unwrap().seq, 10_000);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.replayed, 15_000);
    assert_eq!(restored.state_hash(), engine.state_hash());

    // A header flip is caught too.
    let oldest = store.list().unwrap()[0].path.clone();
    let mut bytes = fs::read(&oldest).unwrap();
    bytes[17] ^= 1;
    fs::write(&oldest, &bytes).unwrap();
    assert!(matches!(store.verify(10_000), Err(SnapshotError::BadHeader { .. })));
    let (restored, report) = restore(Some(&store), &j, EngineLimits::SMALL).unwrap();
    assert!(report.snapshot.is_none(), "no good snapshot: replay everything");
    assert_eq!(restored.state_hash(), engine.state_hash());
}

#[test]
fn a_snapshot_beyond_the_journal_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = setup(dir.path(), 12_000, 5_000);
    // A journal that lost its tail: only the first 7,000 commands.
    let other = tempfile::tempdir().unwrap();
    let (short, engine, _) = setup(other.path(), 7_000, u64::MAX);
    let (restored, report) = restore(Some(&store), &short, EngineLimits::SMALL).unwrap();
    assert_eq!(report.snapshot.unwrap().seq, 5_000);
    assert_eq!(report.skipped[0].0, 10_000);
    assert_eq!(restored.state_hash(), engine.state_hash());
}

#[test]
fn retention_keeps_the_newest_and_archiving_keeps_what_restore_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, engine, store) = setup(dir.path(), 60_000, 5_000);
    assert_eq!(store.list().unwrap().len(), 12);
    let removed = store.retain(Retention { keep_last: 3, max_age_ns: None }, 0).unwrap();
    assert_eq!(removed.len(), 9);
    let kept: Vec<u64> = store.list().unwrap().iter().map(|s| s.seq).collect();
    assert_eq!(kept, [50_000, 55_000, 60_000]);
    // By age: everything older than the newest goes once it is old enough.
    let newest_ns = store.list().unwrap().last().unwrap().created_ns;
    assert!(
        store
            .retain(Retention { keep_last: 3, max_age_ns: Some(3_600 * 1_000_000_000) }, newest_ns)
            .unwrap()
            .is_empty()
    );
    let far_future = newest_ns + 7_200 * 1_000_000_000;
    let removed =
        store.retain(Retention { keep_last: 3, max_age_ns: Some(3_600 * 1_000_000_000) }, far_future).unwrap();
    assert_eq!(removed.len(), 2);

    // Segments wholly before the oldest snapshot can go; restore still works.
    let oldest = store.list().unwrap()[0].seq;
    let archive = dir.path().join("archive");
    let moved = j.archive_before(oldest + 1, &archive).unwrap();
    assert!(!moved.is_empty());
    assert!(j.first_seq() <= oldest + 1);
    let (restored, _) = restore(Some(&store), &j, EngineLimits::SMALL).unwrap();
    assert_eq!(restored.state_hash(), engine.state_hash());
    // Without snapshots the archived history is needed: restore refuses to guess.
    let empty = SnapshotStore::open(dir.path().join("none")).unwrap();
    assert!(matches!(restore(Some(&empty), &j, EngineLimits::SMALL), Err(RestoreError::NoStartingPoint { .. })));
}

#[test]
fn interrupted_writes_leave_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    fs::write(dir.path().join(".snapshot-00000000000000000007.tmp"), b"partial").unwrap();
    let store2 = SnapshotStore::open(dir.path()).unwrap();
    assert!(store2.list().unwrap().is_empty());
    assert!(!dir.path().join(".snapshot-00000000000000000007.tmp").exists());
    let e = Engine::new(EngineLimits::SMALL);
    store.write(&e, 1).unwrap();
    fs::write(dir.path().join("snapshot-00000000000000000009.snap"), b"short").unwrap();
    assert!(matches!(store.verify(9), Err(SnapshotError::BadHeader { .. })));
    assert!(store.verify(0).is_ok());
}
