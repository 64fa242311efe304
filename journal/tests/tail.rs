//! `Tail`: following a journal another writer appends to, on real files.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Appended, append, append_many, record_for, small_background_config, small_config};
use journal::{
    CorruptReason, Durability, Journal, JournalConfig, JournalError, MAX_RECORD_BODY_LEN_BYTES, MIN_SEGMENT_LEN_BYTES,
    MmapStorage, Tail, segment_file_name, spare_file_name,
};

const BODY_LEN_BYTES: usize = 2000;

/// Reads what `tail` has up to `up_to_seq`.
fn drain(tail: &mut Tail<MmapStorage>, up_to_seq: u64, into: &mut Vec<Appended>) -> Result<(), JournalError> {
    while let Some(r) = tail.next(up_to_seq)? {
        into.push(Appended { seq: r.seq, timestamp_ns: r.timestamp_ns, kind: r.kind, body: r.body.to_vec() });
    }
    Ok(())
}

#[test]
fn a_tail_follows_a_live_journal_across_rollovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, written, done) = (dir.path().to_path_buf(), Arc::clone(&written), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut tail = Tail::open(MmapStorage::open_read_only(&path).unwrap(), 1).unwrap();
            let mut got = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                drain(&mut tail, written.load(Ordering::Acquire), &mut got).unwrap();
                if finished {
                    return got;
                }
                std::thread::yield_now();
            }
        })
    };
    let mut appended = Vec::new();
    for _ in 0..300 {
        let batch: Vec<_> = (0..7).map(|i| record_for(journal.next_seq() + i, BODY_LEN_BYTES)).collect();
        for r in &batch {
            append(&mut journal, r);
        }
        journal.commit(Durability::Written).unwrap();
        written.store(journal.written_seq(), Ordering::Release);
        appended.extend(batch);
    }
    done.store(true, Ordering::Release);
    let got = reader.join().unwrap();
    assert!(journal.segments().len() > 10, "the run crossed rollovers");
    assert_eq!(got, appended);
}

/// `next_available` (no bound: the session stores' tails) finds each committed record on the
/// very next call, across rollovers into spares, although an idle call looks for a next segment
/// only where a record of the largest size no longer fits: a record the writer put in a new
/// segment is never waited for.
#[test]
fn an_unbounded_tail_finds_every_record_at_once_across_rollovers() {
    let dir = tempfile::tempdir().unwrap();
    let segment_len_bytes = (4 * MIN_SEGMENT_LEN_BYTES).next_multiple_of(4096);
    let config = JournalConfig { segment_len_bytes, background_rollover: true, ..JournalConfig::default() };
    let mut journal = Journal::open_dir(dir.path(), config).unwrap();
    let mut tail = Tail::open(MmapStorage::open_read_only(dir.path()).unwrap(), 1).unwrap();
    for batch in 0..300u64 {
        let first = journal.next_seq();
        let records: Vec<_> = (first..first + 1 + batch % 4)
            .map(|seq| record_for(seq, if seq % 9 == 0 { MAX_RECORD_BODY_LEN_BYTES } else { BODY_LEN_BYTES }))
            .collect();
        records.iter().for_each(|r| append(&mut journal, r));
        journal.commit(Durability::Written).unwrap();
        for expected in &records {
            let r = tail.next_available().unwrap().unwrap_or_else(|| panic!("seq {} not found at once", expected.seq));
            assert_eq!((r.seq, r.body), (expected.seq, &expected.body[..]));
        }
        assert!(tail.next_available().unwrap().is_none(), "nothing past the last record");
    }
    assert!(journal.segments().len() > 10, "the run crossed rollovers");
}

#[test]
fn a_tail_starts_mid_log_and_refuses_what_retention_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let appended = append_many(&mut journal, 400, BODY_LEN_BYTES, Durability::Written);
    let third_base = journal.segments().nth(2).unwrap().base_seq;
    let from = third_base + 3;
    let mut tail = Tail::open(MmapStorage::open_read_only(dir.path()).unwrap(), from).unwrap();
    assert_eq!(tail.next_seq(), from);
    let mut got = Vec::new();
    drain(&mut tail, journal.written_seq(), &mut got).unwrap();
    assert_eq!(got, appended[(from - 1) as usize..]);

    journal.remove_segments_before(third_base).unwrap();
    match Tail::open(MmapStorage::open_read_only(dir.path()).unwrap(), 1) {
        Err(JournalError::SeqNotInJournal { seq: 1, first_seq, .. }) => assert_eq!(first_seq, third_base),
        other => panic!("expected SeqNotInJournal, got {other:?}"),
    }
}

#[test]
fn a_tail_finds_the_next_segment_while_it_is_still_a_spare() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let appended = append_many(&mut journal, 150, BODY_LEN_BYTES, Durability::Written);
    let newest = journal.segments().last().unwrap().base_seq;
    assert!(newest > 1, "the run rolled over");
    drop(journal);
    // What the directory holds between a rollover and its seal: the writer appends to a file
    // that still has its spare name.
    fs::rename(dir.path().join(segment_file_name(newest)), dir.path().join(spare_file_name(99))).unwrap();
    let mut tail = Tail::open(MmapStorage::open_read_only(dir.path()).unwrap(), 1).unwrap();
    let mut got = Vec::new();
    drain(&mut tail, appended.last().unwrap().seq, &mut got).unwrap();
    assert_eq!(got, appended);
}

#[test]
fn a_tail_stops_at_a_flipped_bit_and_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    append_many(&mut journal, 20, BODY_LEN_BYTES, Durability::Written);
    let up_to = journal.written_seq();
    drop(journal);
    let path = dir.path().join(segment_file_name(1));
    let mut bytes = fs::read(&path).unwrap();
    // Inside the body of the fifth record.
    let offset = journal::SEGMENT_HEADER_LEN_BYTES + 4 * journal::record_len_bytes(BODY_LEN_BYTES) + 100;
    bytes[offset] ^= 0x10;
    fs::write(&path, bytes).unwrap();
    let mut tail = Tail::open(MmapStorage::open_read_only(dir.path()).unwrap(), 1).unwrap();
    let mut got = Vec::new();
    match drain(&mut tail, up_to, &mut got) {
        Err(JournalError::Corrupt { seq: 5, reason: CorruptReason::BodyChecksum { .. }, .. }) => {}
        other => panic!("expected a body checksum error at seq 5, got {other:?}"),
    }
    assert_eq!(got.len(), 4, "the records before it were yielded");
}
