//! Helpers shared by the journal's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use journal::{Durability, Journal, JournalConfig, JournalError, MIN_SEGMENT_LEN_BYTES, Storage};

/// Smallest legal segment, so tests roll over often.
pub const SMALL_SEGMENT_LEN_BYTES: u64 = MIN_SEGMENT_LEN_BYTES;

/// Config with the smallest segments, rolling over without a background thread so that every
/// sync happens at a deterministic point.
pub fn small_config() -> JournalConfig {
    JournalConfig { segment_len_bytes: SMALL_SEGMENT_LEN_BYTES, background_rollover: false, ..JournalConfig::default() }
}

/// [`small_config`] with the background thread.
pub fn small_background_config() -> JournalConfig {
    JournalConfig { background_rollover: true, ..small_config() }
}

/// A record as the tests remember appending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub kind: u16,
    pub body: Vec<u8>,
}

/// Deterministic body for `seq` of `len_bytes` bytes, never all zeros unless empty.
pub fn body_for(seq: u64, len_bytes: usize) -> Vec<u8> {
    (0..len_bytes).map(|i| (seq as usize * 31 + i * 7 + 1) as u8 | 1).collect()
}

/// Deterministic record for `seq`.
pub fn record_for(seq: u64, len_bytes: usize) -> Appended {
    Appended { seq, timestamp_ns: 1_000_000 + seq * 10, kind: (seq % 7) as u16, body: body_for(seq, len_bytes) }
}

/// Appends `record`, panicking on error.
pub fn append<S: Storage>(journal: &mut Journal<S>, record: &Appended) {
    journal.append(record.seq, record.timestamp_ns, record.kind, &record.body).expect("append");
}

/// Appends records `next_seq..next_seq + count` with bodies of `len_bytes`, committing at
/// `durability` after each, and returns them.
pub fn append_many<S: Storage>(
    journal: &mut Journal<S>,
    count: u64,
    len_bytes: usize,
    durability: Durability,
) -> Vec<Appended> {
    let first = journal.next_seq();
    (first..first + count)
        .map(|seq| {
            let record = record_for(seq, len_bytes);
            append(journal, &record);
            journal.commit(durability).expect("commit");
            record
        })
        .collect()
}

/// Every record from `seq` on, as replay yields them.
pub fn replay_from<S: Storage>(journal: &Journal<S>, seq: u64) -> Result<Vec<Appended>, JournalError> {
    journal
        .read_from(seq)?
        .map(|record| {
            record.map(|record| Appended {
                seq: record.seq,
                timestamp_ns: record.timestamp_ns,
                kind: record.kind,
                body: record.body.to_vec(),
            })
        })
        .collect()
}

/// Every record in the journal.
pub fn replay_all<S: Storage>(journal: &Journal<S>) -> Vec<Appended> {
    replay_from(journal, journal.first_seq()).expect("replay")
}
