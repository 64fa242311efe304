//! The journal on real files: preallocation, rollover, reopen, replay, locking, archive.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};

use common::{
    SMALL_SEGMENT_LEN_BYTES, append, append_many, record_for, replay_all, replay_from, small_background_config,
    small_config,
};
use journal::{
    CorruptReason, Durability, Journal, JournalError, MmapStorage, RECORD_HEADER_LEN_BYTES, SEGMENT_HEADER_LEN_BYTES,
    SegmentStatus, SegmentStorage, Storage, inspect, parse_segment_file_name, record_len_bytes, segment_file_name,
};

const BODY_LEN_BYTES: usize = 1000;

fn segment_files(dir: &std::path::Path) -> Vec<u64> {
    let mut bases: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| parse_segment_file_name(entry.unwrap().file_name().to_str()?))
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn rollover_across_segments_reopen_and_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let mut records = Vec::new();
    for _ in 0..5 {
        records.extend(append_many(&mut journal, 63, BODY_LEN_BYTES, Durability::Written));
        journal.commit(Durability::Fsync).unwrap();
    }
    let infos: Vec<_> = journal.segments().collect();
    assert!(infos.len() >= 5, "{infos:?}");
    // Segments are contiguous, named by their first seq, and preallocated.
    for pair in infos.windows(2) {
        assert_eq!(pair[0].last_seq().unwrap() + 1, pair[1].base_seq);
    }
    assert_eq!(segment_files(dir.path()), infos.iter().map(|info| info.base_seq).collect::<Vec<_>>());
    for info in &infos {
        let metadata = fs::metadata(dir.path().join(segment_file_name(info.base_seq))).unwrap();
        assert_eq!(metadata.len(), SMALL_SEGMENT_LEN_BYTES);
        assert!(metadata.blocks() * 512 >= SMALL_SEGMENT_LEN_BYTES, "segment file is not preallocated");
    }
    drop(journal);

    let mut reopened = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.recovery(), &journal::RecoveryReport::default());
    assert_eq!((reopened.appended_seq(), reopened.synced_seq()), (315, 315));
    assert_eq!(reopened.segments().collect::<Vec<_>>(), infos);
    records.extend(append_many(&mut reopened, 100, BODY_LEN_BYTES, Durability::Fsync));
    drop(reopened);

    let reopened = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(replay_all(&reopened), records);
}

#[test]
fn replay_from_any_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let records = append_many(&mut journal, 200, 700, Durability::Written);
    journal.commit(Durability::Fsync).unwrap();
    let boundaries: Vec<u64> = journal.segments().map(|info| info.base_seq).collect();
    assert!(boundaries.len() >= 3);
    let mut starts = vec![1, 2, 57, 199, 200, 201];
    for base in &boundaries {
        starts.extend([base - 1, *base, base + 1]);
    }
    for start in starts.into_iter().filter(|seq| *seq >= 1) {
        assert_eq!(replay_from(&journal, start).unwrap(), records[start as usize - 1..], "from {start}");
    }
    assert!(matches!(
        journal.read_from(202),
        Err(JournalError::SeqNotInJournal { seq: 202, first_seq: 1, next_seq: 201 })
    ));
    assert!(matches!(journal.read_from(0), Err(JournalError::SeqNotInJournal { .. })));
    let replay = journal.read_from(150).unwrap();
    assert_eq!(replay.next_seq(), 150);
}

#[test]
fn a_second_writer_is_locked_out_but_inspection_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    append_many(&mut journal, 10, 50, Durability::Fsync);
    let err = Journal::open_dir(dir.path(), small_config()).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }), "{err}");

    let read_only = MmapStorage::open_read_only(dir.path()).unwrap();
    let inspection = inspect(&read_only).unwrap();
    inspection.verdict().unwrap();
    let summaries: Vec<_> = inspection.summaries().collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].status, SegmentStatus::Clean);
    assert_eq!((summaries[0].info.first_seq(), summaries[0].info.last_seq()), (Some(1), Some(10)));
    let dumped: Vec<_> = inspection.dump().map(|entry| (entry.offset, entry.record.seq)).collect();
    assert_eq!(dumped.len(), 10);
    assert_eq!(dumped[0], (SEGMENT_HEADER_LEN_BYTES as u64, 1));
    assert_eq!(dumped[1].0, (SEGMENT_HEADER_LEN_BYTES + record_len_bytes(50)) as u64);
}

#[test]
fn torn_tail_on_a_real_file_is_cut_and_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let records = append_many(&mut journal, 5, 100, Durability::Fsync);
    let end = journal.segments().next().unwrap().used_len_bytes;
    drop(journal);
    // Half a header and a little body, as a crash mid-copy would leave.
    let path = dir.path().join(segment_file_name(1));
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xAB; 20], end).unwrap();
    file.write_all_at(&[0xCD; 30], end + RECORD_HEADER_LEN_BYTES as u64).unwrap();
    drop(file);

    let mut reopened = Journal::open_dir(dir.path(), small_config()).unwrap();
    let (segment, status) = reopened.recovery().torn_tail.expect("torn tail reported");
    assert_eq!(segment, 1);
    assert!(
        matches!(status, SegmentStatus::TornTail { offset, reason: CorruptReason::HeaderChecksum { .. }, .. } if offset == end)
    );
    assert_eq!(replay_all(&reopened), records);
    let bytes = fs::read(&path).unwrap();
    assert!(bytes[end as usize..].iter().all(|byte| *byte == 0), "the cut tail is zeroed");
    append(&mut reopened, &record_for(6, 9));
    reopened.commit(Durability::Fsync).unwrap();
    assert_eq!(replay_all(&reopened).len(), 6);
}

#[test]
fn corruption_in_the_middle_of_a_real_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    append_many(&mut journal, 5, 100, Durability::Fsync);
    drop(journal);
    let file = OpenOptions::new().write(true).open(dir.path().join(segment_file_name(1))).unwrap();
    let third = SEGMENT_HEADER_LEN_BYTES + 2 * record_len_bytes(100);
    file.write_all_at(&[0xFF], (third + RECORD_HEADER_LEN_BYTES + 3) as u64).unwrap();
    drop(file);
    match Journal::open_dir(dir.path(), small_config()) {
        Err(JournalError::Corrupt { segment: 1, offset, seq: 3, reason: CorruptReason::BodyChecksum { .. } }) => {
            assert_eq!(offset as usize, third);
        }
        other => panic!("expected corruption at seq 3, got {other:?}"),
    }
}

#[test]
fn replay_checks_records_again_on_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    append_many(&mut journal, 5, 100, Durability::Fsync);
    // Damage behind the journal's back: the shared mapping sees the file's page cache.
    let file = OpenOptions::new().write(true).open(dir.path().join(segment_file_name(1))).unwrap();
    let fourth = SEGMENT_HEADER_LEN_BYTES + 3 * record_len_bytes(100);
    file.write_all_at(&[0x00], (fourth + RECORD_HEADER_LEN_BYTES) as u64).unwrap();
    let results: Vec<_> = journal.read_from(1).unwrap().collect();
    assert_eq!(results.len(), 4, "three good records, then the error, then nothing");
    assert!(results[..3].iter().all(Result::is_ok));
    assert!(matches!(results[3], Err(JournalError::Corrupt { seq: 4, .. })));
}

#[test]
fn archive_and_remove_move_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let archive_dir = archive.path().join("cold");
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let records = append_many(&mut journal, 260, BODY_LEN_BYTES, Durability::Written);
    journal.commit(Durability::Fsync).unwrap();
    let infos: Vec<_> = journal.segments().collect();
    assert!(infos.len() >= 4);

    // Nothing is wholly older than the first segment's last record.
    assert!(journal.archive_before(infos[0].last_seq().unwrap(), &archive_dir).unwrap().is_empty());
    let archived = journal.archive_before(infos[2].base_seq, &archive_dir).unwrap();
    assert_eq!(archived, infos[..2]);
    assert_eq!(segment_files(&archive_dir), vec![infos[0].base_seq, infos[1].base_seq]);
    let removed = journal.remove_segments_before(infos[3].base_seq).unwrap();
    assert_eq!(removed, infos[2..3]);
    assert_eq!(segment_files(dir.path())[0], infos[3].base_seq);
    drop(journal);

    let reopened = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.first_seq(), infos[3].base_seq);
    assert_eq!(replay_all(&reopened), records[infos[3].base_seq as usize - 1..]);
    // The archived segments are whole and still verify on their own.
    let cold = MmapStorage::open_read_only(&archive_dir).unwrap();
    let inspection = inspect(&cold).unwrap();
    inspection.verdict().unwrap();
    assert_eq!(inspection.dump().count() as u64, infos[0].record_count + infos[1].record_count);
}

#[test]
fn empty_journal_directory_gets_a_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new");
    let journal = Journal::open_dir(&path, small_config()).unwrap();
    assert!(journal.recovery().created_first_segment);
    assert_eq!(segment_files(&path), vec![1]);
    assert_eq!(journal.read_from(1).unwrap().count(), 0);
}

/// Names of the spare files in `dir`, sorted.
fn spare_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter(|name| name.ends_with(".spare"))
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn background_rollover_on_real_files_installs_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    let mut records = Vec::new();
    for round in 0..6 {
        let durability = if round % 2 == 0 { Durability::Written } else { Durability::Fsync };
        records.extend(append_many(&mut journal, 63, BODY_LEN_BYTES, durability));
    }
    journal.wait_for_background().unwrap();
    let bases: Vec<u64> = journal.segments().map(|info| info.base_seq).collect();
    assert!(bases.len() >= 6, "{bases:?}");
    assert_eq!(segment_files(dir.path()), bases, "every segment installed under its name");
    assert_eq!(spare_files(dir.path()).len(), 2, "two spares prepared ahead");
    for base_seq in &bases {
        let len = fs::metadata(dir.path().join(segment_file_name(*base_seq))).unwrap().len();
        assert_eq!(len, SMALL_SEGMENT_LEN_BYTES);
    }
    assert_eq!(replay_all(&journal), records);
    drop(journal);

    let mut reopened = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.recovery().removed_spares, 2);
    assert!(spare_files(dir.path()).is_empty());
    assert_eq!(replay_all(&reopened), records);
    let next = record_for(reopened.next_seq(), 8);
    append(&mut reopened, &next);
    reopened.commit(Durability::Fsync).unwrap();
}

/// Spare file names of `ids`.
fn spare_names(ids: &[u64]) -> Vec<String> {
    ids.iter().map(|id| journal::spare_file_name(*id)).collect()
}

/// A restart with the background thread keeps the blank spares the last run prepared (no file
/// removed, none made) and rolls over into them; the chain replays whole.
#[test]
fn a_restart_reuses_the_blank_spares_the_last_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    let mut records = append_many(&mut journal, 100, BODY_LEN_BYTES, Durability::Written);
    journal.wait_for_background().unwrap();
    let left = spare_files(dir.path());
    assert_eq!(left.len(), 2);
    drop(journal);

    let mut reopened = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    reopened.wait_for_background().unwrap();
    assert_eq!((reopened.recovery().kept_spares, reopened.recovery().removed_spares), (2, 0));
    assert_eq!(spare_files(dir.path()), left, "the same two files, reused");
    let before = segment_files(dir.path()).len();
    records.extend(append_many(&mut reopened, 150, BODY_LEN_BYTES, Durability::Fsync));
    reopened.wait_for_background().unwrap();
    assert!(segment_files(dir.path()).len() >= before + 2, "rolled over into both kept spares");
    assert_eq!(replay_all(&reopened), records);
}

/// A kept spare with a byte that is not zero past its blank header (a page of records that
/// outlived its header's page in a power loss) is never written into: the background thread
/// removes it and makes a new spare; the kept blank one is reused.
#[test]
fn a_kept_spare_that_is_not_all_zero_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    let mut records = append_many(&mut journal, 10, BODY_LEN_BYTES, Durability::Written);
    journal.wait_for_background().unwrap();
    drop(journal);
    assert_eq!(spare_files(dir.path()), spare_names(&[1, 2]));
    let dirty = OpenOptions::new().write(true).open(dir.path().join(journal::spare_file_name(1))).unwrap();
    dirty.write_all_at(&[0x5a], 3 * 4096 + 17).unwrap();
    drop(dirty);

    let mut reopened = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    reopened.wait_for_background().unwrap();
    assert_eq!(reopened.recovery().kept_spares, 2, "both headers are blank");
    assert_eq!(spare_files(dir.path()), spare_names(&[2, 3]), "spare 1 replaced by a new one");
    records.extend(append_many(&mut reopened, 200, BODY_LEN_BYTES, Durability::Fsync));
    reopened.wait_for_background().unwrap();
    assert_eq!(replay_all(&reopened), records);
    drop(reopened);
    let again = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(replay_all(&again), records, "every segment scans clean");
}

#[test]
fn a_spare_is_installed_by_rename_and_never_over_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = MmapStorage::open(dir.path()).unwrap();
    let mut spare = storage.create_spare(7, 8192).unwrap();
    assert_eq!(storage.list_spares().unwrap(), vec![7]);
    assert!(storage.list_segments().unwrap().is_empty(), "a spare is not a segment");
    assert!(spare.bytes().iter().all(|byte| *byte == 0));
    spare.write_at(100, b"kept").unwrap();
    storage.create_segment(50, 8192).unwrap();
    let refused = storage.install_spare(7, 50).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(storage.list_spares().unwrap(), vec![7], "a refused install changes nothing");
    storage.install_spare(7, 60).unwrap();
    storage.sync_dir().unwrap();
    assert!(storage.list_spares().unwrap().is_empty());
    assert_eq!(storage.list_segments().unwrap(), vec![50, 60]);
    // The handle follows the file through the rename.
    spare.write_at(200, b"also").unwrap();
    let contents = fs::read(dir.path().join(segment_file_name(60))).unwrap();
    assert_eq!((&contents[100..104], &contents[200..204]), (&b"kept"[..], &b"also"[..]));
    storage.remove_segment(60).unwrap();
    storage.create_spare(8, 8192).unwrap();
    storage.remove_spare(8).unwrap();
    assert!(storage.list_spares().unwrap().is_empty());
}
