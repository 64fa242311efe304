//! Epochs in records, and cutting a divergent suffix: what a failover and a rejoin rely on.

mod common;

use common::{append, record_for, small_background_config, small_config};
use journal::{Durability, Journal, JournalError};

const BODY_LEN_BYTES: usize = 1500;

fn epochs_and_seqs(journal: &Journal<journal::MmapStorage>) -> Vec<(u64, u32)> {
    journal.read_from(journal.first_seq()).unwrap().map(|r| r.map(|r| (r.seq, r.epoch)).unwrap()).collect()
}

#[test]
fn records_carry_the_epoch_and_reopening_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(journal.epoch(), 0);
    append(&mut journal, &record_for(1, BODY_LEN_BYTES));
    journal.set_epoch(3).unwrap();
    append(&mut journal, &record_for(2, BODY_LEN_BYTES));
    journal.commit(Durability::Fsync).unwrap();
    assert_eq!(epochs_and_seqs(&journal), vec![(1, 0), (2, 3)]);
    drop(journal);

    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(journal.epoch(), 3, "the epoch of the last record survives a restart");
    assert!(matches!(journal.set_epoch(2), Err(JournalError::StaleEpoch { current: 3, offered: 2 })));
    journal.set_epoch(3).unwrap();
    append(&mut journal, &record_for(3, BODY_LEN_BYTES));
    assert_eq!(epochs_and_seqs(&journal), vec![(1, 0), (2, 3), (3, 3)]);
}

#[test]
fn cutting_after_a_seq_removes_the_suffix_across_segments_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    let records: Vec<_> = (1..=200).map(|seq| record_for(seq, BODY_LEN_BYTES)).collect();
    for r in &records {
        append(&mut journal, r);
    }
    journal.commit(Durability::Fsync).unwrap();
    assert!(journal.segments().len() > 3, "the suffix spans several segments");
    let kept_checksum = journal.read_from(60).unwrap().next().unwrap().unwrap().checksum;
    assert_eq!(journal.cut_after(60).unwrap(), 140);

    let mut journal = Journal::open_dir(dir.path(), small_background_config()).unwrap();
    assert_eq!(journal.next_seq(), 61);
    assert_eq!(journal.last_checksum(), kept_checksum, "the chain ends at the kept record");
    assert!(journal.recovery().torn_tail.is_none(), "the cut left a clean tail, not a torn one");
    let fresh = record_for(61, BODY_LEN_BYTES / 2);
    append(&mut journal, &fresh);
    journal.commit(Durability::Fsync).unwrap();
    drop(journal);
    let journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    let seqs: Vec<u64> = epochs_and_seqs(&journal).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, (1..=61).collect::<Vec<_>>());
    let last = journal.read_from(61).unwrap().next().unwrap().unwrap();
    assert_eq!(last.body, fresh.body.as_slice(), "the new record 61 replaced the cut one");
}

#[test]
fn cutting_nothing_or_before_the_log_is_harmless_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    for seq in 1..=5 {
        append(&mut journal, &record_for(seq, BODY_LEN_BYTES));
    }
    journal.commit(Durability::Fsync).unwrap();
    assert_eq!(journal.cut_after(5).unwrap(), 0);
    let journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(journal.next_seq(), 6);
    assert_eq!(journal.cut_after(0).unwrap(), 5, "cutting everything leaves an empty log");
    let journal = Journal::open_dir(dir.path(), small_config()).unwrap();
    assert_eq!(journal.next_seq(), 1);
}
