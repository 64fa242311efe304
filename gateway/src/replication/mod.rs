//! Replication to a hot standby: the stream's frames ([`wire`]), the primary's replicator stage
//! (`stage/replicator.rs`) and the standby (`standby.rs`) share what is here.
//!
//! The primary streams its journal's records to one standby over TCP, from the standby's own
//! next sequence number (catch-up from the journal's segments) on into the live tail, read with
//! [`journal::Tail`] up to what the journaler has written, so the input ring never waits for a
//! standby. The standby writes each record to its own journal, applies it to its own engine and
//! reports how far it got; with a `replicated` durability policy the publisher releases output
//! only once the standby holds its input. Every `verify_every_commands` the primary's snapshot
//! follower hashes its engine and the standby compares ([`HashCheck`]): a standby whose state
//! differs is caught within that many commands and refuses to go on.

pub mod fence;
pub(crate) mod wire;

use std::collections::VecDeque;
use std::time::Duration;

/// Version of the replication protocol in `HELLO`.
pub(crate) const PROTOCOL_VERSION: u16 = 3;
/// Largest frame (length field) either side accepts.
pub(crate) const MAX_FRAME_LEN_BYTES: usize = 1 << 20;
/// Record bytes the primary puts in one `RECORDS` frame, at most.
pub(crate) const RECORDS_BATCH_BYTES: usize = 256 * 1024;
/// The primary sends a heartbeat when it has sent nothing for this long.
pub(crate) const HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);
/// A link silent for this long is dead (several heartbeats missed).
pub(crate) const LINK_TIMEOUT: Duration = Duration::from_secs(2);
/// State hashes either side keeps while waiting for the other's.
pub(crate) const HASHES_KEPT: usize = 64;

const _: () = assert!(RECORDS_BATCH_BYTES + journal::MAX_RECORD_LEN_BYTES < MAX_FRAME_LEN_BYTES);

/// A state hash that differs between primary and standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The sequence number both hashed after.
    pub seq: u64,
    /// The primary's hash.
    pub primary: u64,
    /// The standby's.
    pub standby: u64,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state after seq {} differs: primary {:016x}, standby {:016x}", self.seq, self.primary, self.standby)
    }
}

/// Matches the primary's state hashes with the standby's own, whichever arrives first.
#[derive(Debug, Default)]
pub(crate) struct HashCheck {
    ours: VecDeque<(u64, u64)>,
    theirs: VecDeque<(u64, u64)>,
    verified_seq: u64,
}

impl HashCheck {
    /// The standby hashed its engine after `seq`.
    pub(crate) fn ours(&mut self, seq: u64, hash: u64) -> Result<(), Divergence> {
        match take(&mut self.theirs, seq) {
            Some(primary) => self.compare(seq, primary, hash),
            None => {
                keep(&mut self.ours, seq, hash);
                Ok(())
            }
        }
    }

    /// The primary's hash after `seq`.
    pub(crate) fn theirs(&mut self, seq: u64, hash: u64) -> Result<(), Divergence> {
        match take(&mut self.ours, seq) {
            Some(standby) => self.compare(seq, hash, standby),
            None => {
                keep(&mut self.theirs, seq, hash);
                Ok(())
            }
        }
    }

    /// Highest sequence number whose hashes matched.
    pub(crate) fn verified_seq(&self) -> u64 {
        self.verified_seq
    }

    fn compare(&mut self, seq: u64, primary: u64, standby: u64) -> Result<(), Divergence> {
        if primary != standby {
            return Err(Divergence { seq, primary, standby });
        }
        self.verified_seq = self.verified_seq.max(seq);
        Ok(())
    }
}

fn take(list: &mut VecDeque<(u64, u64)>, seq: u64) -> Option<u64> {
    let i = list.iter().position(|(s, _)| *s == seq)?;
    list.remove(i).map(|(_, h)| h)
}

fn keep(list: &mut VecDeque<(u64, u64)>, seq: u64, hash: u64) {
    if list.len() == HASHES_KEPT {
        list.pop_front();
    }
    list.push_back((seq, hash));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_in_either_order_and_a_difference_is_named() {
        let mut check = HashCheck::default();
        assert_eq!(check.ours(10, 0xa), Ok(()));
        assert_eq!(check.theirs(10, 0xa), Ok(()));
        assert_eq!(check.theirs(20, 0xb), Ok(()));
        assert_eq!(check.ours(20, 0xb), Ok(()));
        assert_eq!(check.verified_seq(), 20);
        assert_eq!(check.theirs(30, 0xc), Ok(()));
        assert_eq!(check.ours(30, 0xd), Err(Divergence { seq: 30, primary: 0xc, standby: 0xd }));
        assert_eq!(check.verified_seq(), 20, "a mismatch verifies nothing");
    }

    #[test]
    fn unmatched_hashes_are_bounded() {
        let mut check = HashCheck::default();
        for seq in 0..(HASHES_KEPT as u64 * 3) {
            check.ours(seq, seq).unwrap();
        }
        assert_eq!(check.ours.len(), HASHES_KEPT);
        let last = HASHES_KEPT as u64 * 3 - 1;
        assert_eq!(check.theirs(last, 1), Err(Divergence { seq: last, primary: 1, standby: last }));
    }
}
