//! Segment rollover with the seal and install off the writer: crashes at every step of a
//! rollover, crashes while the background thread's seal is outstanding, power loss with unsynced
//! pages in the previous segment, and failing background syncs. On the in-memory FaultyStorage.

mod common;

use common::{Appended, append, record_for, replay_all, small_background_config, small_config};
use journal::{CrashMode, Durability, FaultyStorage, IoOp, Journal, JournalError};

/// Body length that puts 63 records (1,040 bytes each) in a minimum-size segment.
const BODY_LEN_BYTES: usize = 1000;
/// Records that fill the first minimum-size segment: the next one rolls over.
const FIRST_SEGMENT_RECORDS: u64 = 63;

/// Reopens crashed storage without a background thread (so nothing changes behind the test).
fn reopen(storage: &FaultyStorage) -> Result<Journal<FaultyStorage>, JournalError> {
    Journal::open(storage.clone(), small_config())
}

/// Appends `count` records with [`BODY_LEN_BYTES`] bodies, committing each at `durability`.
fn append_committed(
    journal: &mut Journal<FaultyStorage>,
    count: u64,
    durability: Durability,
    log: &mut Vec<Appended>,
) -> Result<(), JournalError> {
    for _ in 0..count {
        let record = record_for(journal.next_seq(), BODY_LEN_BYTES);
        journal.append(record.seq, record.timestamp_ns, record.kind, &record.body)?;
        log.push(record);
        journal.commit(durability)?;
    }
    Ok(())
}

/// Checks a reopened journal: a prefix of `log` at least `at_least` records long, then appends
/// one more record and syncs it, so the recovered journal is usable.
fn check_recovered(reopened: &mut Journal<FaultyStorage>, log: &[Appended], at_least: u64, what: &str) {
    let survived = replay_all(reopened);
    assert!(
        survived.len() as u64 >= at_least,
        "{what}: {} records survived, {at_least} were acknowledged",
        survived.len()
    );
    assert_eq!(survived[..], log[..survived.len()], "{what}: not a prefix of what was appended");
    let next = record_for(reopened.next_seq(), 8);
    append(reopened, &next);
    reopened.commit(Durability::Fsync).unwrap_or_else(|err| panic!("{what}: appending after recovery: {err}"));
}

/// Without a background thread every step of a rollover happens at a known sync: fail the n-th
/// sync for every n (a crash right after the steps before it), crash, and recover. Nothing
/// acknowledged may be lost, at either durability, in either crash mode.
#[test]
fn crash_after_every_rollover_step_loses_nothing_acknowledged() {
    // A run of 200 records in minimum-size segments takes far fewer syncs than this.
    const MAX_SYNCS: u64 = 1000;
    for durability in [Durability::Written, Durability::Fsync] {
        let mut completed = false;
        for successful_syncs in 0..MAX_SYNCS {
            let storage = FaultyStorage::new();
            let mut journal = Journal::open(storage.clone(), small_config()).unwrap();
            storage.fail_syncs_after(successful_syncs);
            let mut log = Vec::new();
            // About three rollovers.
            let outcome = append_committed(&mut journal, 200, durability, &mut log);
            let (written_seq, synced_seq) = (journal.written_seq(), journal.synced_seq());
            let what = format!("{durability:?}, sync {successful_syncs} fails");
            for mode in [CrashMode::Process, CrashMode::PowerLoss] {
                let what = format!("{what}, {mode:?}");
                let mut reopened = reopen(&storage.crash(mode)).unwrap_or_else(|err| panic!("{what}: {err}"));
                let acknowledged = if mode == CrashMode::Process { written_seq } else { synced_seq };
                check_recovered(&mut reopened, &log, acknowledged, &what);
                assert!(reopened.storage().spare_ids().is_empty(), "{what}: a spare outlived recovery");
            }
            if outcome.is_ok() {
                assert!(journal.segments().len() >= 4, "the run rolled over");
                completed = true;
                break;
            }
        }
        assert!(completed);
    }
}

/// The rename of an installed spare was not durable (the directory sync after it failed): after
/// power loss the file is a spare again, holding the next segment's header. Recovery installs it.
#[test]
fn spare_whose_rename_was_not_durable_is_installed_at_open() {
    let storage = FaultyStorage::new();
    let mut journal = Journal::open(storage.clone(), small_config()).unwrap();
    let mut log = Vec::new();
    append_committed(&mut journal, FIRST_SEGMENT_RECORDS, Durability::Fsync, &mut log).unwrap();
    // Rollover, inline: spare creation (directory sync), seal (full segment, new header), rename,
    // directory sync. Fail the last one.
    storage.fail_syncs_after(3);
    let err = append_committed(&mut journal, 10, Durability::Fsync, &mut log).unwrap_err();
    assert!(matches!(err, JournalError::Io { op: IoOp::SyncDir, .. }), "{err}");
    assert_eq!(journal.synced_seq(), FIRST_SEGMENT_RECORDS);
    let crashed = storage.crash(CrashMode::PowerLoss);
    assert_eq!(crashed.segment_bases(), vec![1]);
    assert_eq!(crashed.spare_ids(), vec![1], "the rename was lost with the power");
    let mut reopened = reopen(&crashed).unwrap();
    assert_eq!(reopened.recovery().installed_spares, 1);
    assert_eq!(reopened.storage().segment_bases(), vec![1, FIRST_SEGMENT_RECORDS + 1]);
    check_recovered(&mut reopened, &log, FIRST_SEGMENT_RECORDS, "rename lost");
}

/// A spare prepared ahead and never used is removed at open.
#[test]
fn unused_spare_is_removed_at_open() {
    let storage = FaultyStorage::new();
    let journal = Journal::open(storage.clone(), small_background_config()).unwrap();
    journal.wait_for_background().unwrap();
    assert_eq!(storage.spare_ids(), vec![1, 2], "the background thread prepared two spares");
    drop(journal);
    let reopened = reopen(&storage.crash(CrashMode::PowerLoss)).unwrap();
    assert_eq!(reopened.recovery().removed_spares, 2);
    assert!(reopened.storage().spare_ids().is_empty());
    assert_eq!(reopened.storage().segment_bases(), vec![1]);
}

/// With the background thread, a blank spare survives a power loss and is reused: the journal
/// rolls over into it, and another power loss after that recovers every synced record.
#[test]
fn a_blank_spare_is_kept_at_open_and_reused_across_power_loss() {
    let storage = FaultyStorage::new();
    let journal = Journal::open(storage.clone(), small_background_config()).unwrap();
    journal.wait_for_background().unwrap();
    drop(journal);
    let crashed = storage.crash(CrashMode::PowerLoss);
    let mut reopened = Journal::open(crashed.clone(), small_background_config()).unwrap();
    reopened.wait_for_background().unwrap();
    assert_eq!((reopened.recovery().kept_spares, reopened.recovery().removed_spares), (2, 0));
    assert_eq!(crashed.spare_ids(), vec![1, 2], "no new spare made");
    let mut log = Vec::new();
    append_committed(&mut reopened, FIRST_SEGMENT_RECORDS + 5, Durability::Fsync, &mut log).unwrap();
    reopened.wait_for_background().unwrap();
    assert_eq!(crashed.segment_bases(), vec![1, FIRST_SEGMENT_RECORDS + 1], "rolled over into a kept spare");
    assert_eq!(crashed.spare_ids().len(), 2, "the other kept spare and the one made after the rollover");
    let after = crashed.crash(CrashMode::PowerLoss);
    drop(reopened);
    let mut recovered = reopen(&after).unwrap();
    check_recovered(&mut recovered, &log, log.len() as u64, "power loss after reusing a spare");
}

/// Lets held background syncs go when dropped, so that a failing assertion unwinds instead of
/// waiting forever for the journal's background thread. Declare it after the journal.
struct ResumeOnDrop(FaultyStorage);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        self.0.resume_background_syncs();
    }
}

/// Sets up a rollover whose seal the background thread cannot finish: fills the first segment
/// committing at `before`, pauses background syncs, then appends `after` records (the first
/// rolls over) committing at `Written`. Returns the journal, its storage and the log.
fn rollover_with_seal_outstanding(
    before: Durability,
    uncommitted_before: u64,
    after: u64,
) -> (Journal<FaultyStorage>, FaultyStorage, Vec<Appended>) {
    let storage = FaultyStorage::new();
    let mut journal = Journal::open(storage.clone(), small_background_config()).unwrap();
    let mut log = Vec::new();
    append_committed(&mut journal, FIRST_SEGMENT_RECORDS - uncommitted_before, before, &mut log).unwrap();
    for _ in 0..uncommitted_before {
        let record = record_for(journal.next_seq(), BODY_LEN_BYTES);
        append(&mut journal, &record);
        log.push(record);
    }
    journal.wait_for_background().unwrap();
    storage.pause_background_syncs();
    let segments_before = journal.segments().len();
    append_committed(&mut journal, after, Durability::Written, &mut log).unwrap();
    assert_eq!(journal.segments().len(), segments_before + 1, "rolled over");
    storage.wait_for_paused_background_sync();
    (journal, storage, log)
}

/// A process crash while the background seal is outstanding: the new segment is still a spare,
/// but everything acknowledged at `written` is in the page cache, and recovery installs it.
#[test]
fn process_crash_while_the_seal_is_outstanding_loses_nothing_written() {
    let (journal, storage, log) = rollover_with_seal_outstanding(Durability::Written, 0, 10);
    let _resume = ResumeOnDrop(storage.clone());
    assert_eq!(journal.written_seq(), FIRST_SEGMENT_RECORDS + 10);
    assert_eq!(storage.segment_bases(), vec![1], "the new segment is not installed yet");
    let crashed = storage.crash(CrashMode::Process);
    storage.resume_background_syncs();
    drop(journal);
    let mut reopened = reopen(&crashed).unwrap();
    assert_eq!(reopened.recovery().installed_spares, 1);
    check_recovered(&mut reopened, &log, FIRST_SEGMENT_RECORDS + 10, "process crash, seal outstanding");
}

/// The rollover's `append` returns without syncing the full segment: with the background syncs
/// held, power loss takes the full segment's unsynced records with it. Recovery drops the spare
/// behind the torn segment and opens on what was synced.
#[test]
fn rollover_leaves_the_seal_to_the_background_and_power_loss_recovers() {
    let (journal, storage, log) = rollover_with_seal_outstanding(Durability::Written, 0, 10);
    let _resume = ResumeOnDrop(storage.clone());
    assert_eq!(journal.synced_seq(), 0);
    let crashed = storage.crash(CrashMode::PowerLoss);
    storage.resume_background_syncs();
    drop(journal);
    assert!(
        crashed.read_segment(1).unwrap()[journal::SEGMENT_HEADER_LEN_BYTES..].iter().all(|byte| *byte == 0),
        "the writer synced the full segment itself"
    );
    let mut reopened = reopen(&crashed).unwrap();
    assert_eq!(reopened.recovery().removed_spares, 2, "the used spare behind the lost tail and the next one");
    check_recovered(&mut reopened, &log, 0, "power loss, seal outstanding");
}

/// Power loss with unsynced records in the previous segment and its seal outstanding, with
/// pages written back in any order: at `fsync` (records since the last commit unsynced) and at
/// `written` (nothing synced). Every synced record survives; where recovery refuses, the damage
/// is past the synced records (the documented limit for unsynced records).
#[test]
fn power_loss_with_unsynced_pages_in_the_previous_segment() {
    let (mut recovered, mut refused) = (0, 0);
    for (before, uncommitted) in [(Durability::Fsync, 7), (Durability::Written, 0)] {
        let (journal, storage, log) = rollover_with_seal_outstanding(before, uncommitted, 5);
        let _resume = ResumeOnDrop(storage.clone());
        let synced_seq = journal.synced_seq();
        for seed in 0..24u64 {
            let what = format!("{before:?}, seed {seed}");
            println!("{what}");
            match reopen(&storage.crash(CrashMode::Random { seed })) {
                Ok(mut reopened) => {
                    check_recovered(&mut reopened, &log, synced_seq, &what);
                    recovered += 1;
                }
                Err(JournalError::Corrupt { seq, .. }) => {
                    assert!(seq > synced_seq, "{what}: corruption reported in synced data");
                    refused += 1;
                }
                Err(other) => panic!("{what}: {other}"),
            }
        }
        storage.resume_background_syncs();
        drop(journal);
    }
    println!("recovered {recovered} times, refused {refused} times");
    assert!(recovered > 0);
}

/// At `fsync`, a commit after a rollover returns only once the previous segment is synced whole
/// and the new one's name is durable; a crash before that keeps every record it acknowledged
/// before, and a crash after it keeps every record.
#[test]
fn fsync_commit_after_a_rollover_waits_for_the_seal() {
    let (mut journal, storage, log) = rollover_with_seal_outstanding(Durability::Fsync, 3, 1);
    let _resume = ResumeOnDrop(storage.clone());
    let synced_before = journal.synced_seq();
    assert_eq!(synced_before, FIRST_SEGMENT_RECORDS - 3);
    let crashed_while_waiting = std::thread::scope(|scope| {
        let (returned, committed) = std::sync::mpsc::channel();
        let committer = scope.spawn(move || {
            journal.commit(Durability::Fsync).unwrap();
            returned.send(journal.synced_seq()).unwrap();
        });
        storage.wait_for_paused_background_sync();
        // Were the commit not waiting for the seal, it would return at once.
        let early = committed.recv_timeout(std::time::Duration::from_millis(200));
        let crashed = storage.crash(CrashMode::PowerLoss);
        storage.resume_background_syncs();
        assert!(early.is_err(), "the commit returned before the seal was durable: {early:?}");
        assert_eq!(committed.recv().unwrap(), FIRST_SEGMENT_RECORDS + 1);
        committer.join().unwrap();
        crashed
    });
    let mut reopened = reopen(&crashed_while_waiting).unwrap();
    check_recovered(&mut reopened, &log, synced_before, "power loss while the commit waited");
    let mut reopened = reopen(&storage.crash(CrashMode::PowerLoss)).unwrap();
    assert_eq!(reopened.recovery().installed_spares, 0, "the commit waited for the install");
    check_recovered(&mut reopened, &log, FIRST_SEGMENT_RECORDS + 1, "power loss after the commit");
}

/// A failing sync on the background thread fails the writer for good: the next call reports it,
/// every later one repeats it, and nothing more is claimed durable.
#[test]
fn failing_background_sync_fails_the_writer_for_good() {
    for durability in [Durability::Written, Durability::Fsync] {
        let storage = FaultyStorage::new();
        let mut journal = Journal::open(storage.clone(), small_background_config()).unwrap();
        let mut log = Vec::new();
        append_committed(&mut journal, FIRST_SEGMENT_RECORDS, durability, &mut log).unwrap();
        journal.wait_for_background().unwrap();
        let synced_before = journal.synced_seq();
        // The writer itself only syncs at `fsync`; let those through and fail the seal.
        storage.pause_background_syncs();
        let _resume = ResumeOnDrop(storage.clone());
        let record = record_for(journal.next_seq(), BODY_LEN_BYTES);
        append(&mut journal, &record);
        storage.wait_for_paused_background_sync();
        storage.fail_syncs_after(0);
        storage.resume_background_syncs();
        let err = journal.wait_for_background().unwrap_err();
        assert!(matches!(err, JournalError::Io { op: IoOp::Sync, segment: Some(1), .. }), "{durability:?}: {err}");
        storage.heal_syncs();
        // The next writer call reports it, and fails the writer for good.
        let next = record_for(journal.next_seq(), 8);
        let reported = journal.append(next.seq, next.timestamp_ns, next.kind, &next.body).unwrap_err();
        assert_eq!(reported.to_string(), err.to_string(), "{durability:?}");
        assert!(journal.failure().is_some());
        for later in [
            journal.commit(durability),
            journal.commit(Durability::Fsync),
            journal.append(record.seq + 1, 0, 0, b"late"),
            journal.remove_segments_before(record.seq).map(|_| ()),
        ] {
            assert_eq!(later.unwrap_err().to_string(), err.to_string(), "{durability:?}");
        }
        assert_eq!(journal.synced_seq(), synced_before, "{durability:?}: nothing more claimed durable");
        log.push(record);
        let crashed = storage.crash(CrashMode::Process);
        drop(journal);
        let mut reopened = reopen(&crashed).unwrap();
        check_recovered(&mut reopened, &log, FIRST_SEGMENT_RECORDS, &format!("{durability:?}"));
    }
}

/// The background thread keeps up with a long run: every segment but the active one ends up
/// installed, no spare but the prepared one is left, and the log replays whole.
#[test]
fn background_rollover_keeps_the_log_whole_over_many_segments() {
    let storage = FaultyStorage::new();
    let mut journal = Journal::open(storage.clone(), small_background_config()).unwrap();
    let mut log = Vec::new();
    // Ends with a round committed at `fsync`.
    for round in 0..10u64 {
        let durability = if round % 2 == 0 { Durability::Written } else { Durability::Fsync };
        append_committed(&mut journal, 50, durability, &mut log).unwrap();
    }
    journal.wait_for_background().unwrap();
    let bases: Vec<u64> = journal.segments().map(|info| info.base_seq).collect();
    assert!(bases.len() >= 8, "{bases:?}");
    assert_eq!(storage.segment_bases(), bases, "every segment is installed under its name");
    assert_eq!(storage.spare_ids().len(), 2, "two spares prepared ahead");
    assert_eq!(replay_all(&journal), log);
    let removed = journal.remove_segments_before(bases[3]).unwrap();
    assert_eq!(removed.len(), 3);
    let synced_seq = journal.synced_seq();
    assert_eq!(synced_seq, 500);
    drop(journal);
    let mut reopened = reopen(&storage.crash(CrashMode::PowerLoss)).unwrap();
    assert_eq!(reopened.first_seq(), bases[3]);
    let survived = replay_all(&reopened);
    assert_eq!(survived[..], log[(bases[3] - 1) as usize..(bases[3] - 1) as usize + survived.len()]);
    assert_eq!(reopened.appended_seq(), synced_seq, "every fsync-committed record survived");
    let next = record_for(reopened.next_seq(), 8);
    append(&mut reopened, &next);
}

/// A background thread that cannot be placed where the configuration says fails the writer
/// (with a reason) instead of running somewhere else.
#[test]
fn unplaceable_background_thread_fails_the_writer() {
    let storage = FaultyStorage::new();
    let config = journal::JournalConfig { background_cpu: Some(1 << 20), ..small_background_config() };
    let mut journal = Journal::open(storage, config).unwrap();
    let err = journal.wait_for_background().unwrap_err();
    assert!(matches!(err, JournalError::Io { op: IoOp::StartBackground, .. }), "{err}");
    let later = journal.append(1, 0, 0, b"x").unwrap_err();
    assert_eq!(later.to_string(), err.to_string());
}

/// Once installed, a segment's header is durable, whether the writer's first `fsync` commit
/// synced it or the background thread had to (at `written` the writer never syncs).
#[test]
fn an_installed_segment_has_a_durable_header() {
    for durability in [Durability::Written, Durability::Fsync] {
        let storage = FaultyStorage::new();
        let mut journal = Journal::open(storage.clone(), small_background_config()).unwrap();
        let mut log = Vec::new();
        append_committed(&mut journal, FIRST_SEGMENT_RECORDS + 5, durability, &mut log).unwrap();
        journal.wait_for_background().unwrap();
        let crashed = storage.crash(CrashMode::PowerLoss);
        let summaries: Vec<_> = journal::inspect(&crashed).unwrap().summaries().collect();
        assert_eq!(summaries.len(), 2, "{durability:?}");
        assert!(
            summaries[1].info.created_at_ns.is_some(),
            "{durability:?}: the installed header was lost: {summaries:?}"
        );
        let reopened = reopen(&crashed).unwrap();
        assert_eq!(reopened.recovery().replaced_segment, None, "{durability:?}");
        drop(journal);
    }
}
