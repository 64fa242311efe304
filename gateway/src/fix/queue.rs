//! Messages a FIX session holds back while a gap before them is being filled.
//!
//! A message whose MsgSeqNum is above the expected one is not lost: FIX (and QuickFIX) keep it,
//! ask for the gap with one ResendRequest, and process it in order once the messages before it
//! have arrived. [`GapQueue`] keeps such messages by MsgSeqNum, at most
//! [`MAX_FIX_QUEUED_MESSAGES`] of them (one more is dropped: the ResendRequest asked for
//! everything from the gap on, so it comes again).

use std::collections::BTreeMap;

pub use crate::limits::MAX_FIX_QUEUED_MESSAGES;

/// Held-back messages by MsgSeqNum (the whole message bytes, as framed).
#[derive(Debug, Default)]
pub struct GapQueue {
    by_seq: BTreeMap<u64, Vec<u8>>,
}

impl GapQueue {
    /// Keeps `bytes` as message `seq` (replacing an earlier copy of the same seq). Returns
    /// false when the queue is full and the message was dropped.
    pub fn push(&mut self, seq: u64, bytes: &[u8]) -> bool {
        if self.by_seq.len() >= MAX_FIX_QUEUED_MESSAGES && !self.by_seq.contains_key(&seq) {
            return false;
        }
        self.by_seq.insert(seq, bytes.to_vec());
        true
    }

    /// The message `expected` if it is held. Messages below `expected` (received again
    /// since, or covered by a gap fill) leave the queue through `skipped`.
    pub fn take(&mut self, expected: u64, mut skipped: impl FnMut(Vec<u8>)) -> Option<Vec<u8>> {
        while let Some(entry) = self.by_seq.first_entry() {
            if *entry.key() >= expected {
                break;
            }
            skipped(entry.remove());
        }
        self.by_seq.remove(&expected)
    }

    /// Drops everything (a sequence reset or a new connection).
    pub fn clear(&mut self) {
        self.by_seq.clear();
    }

    /// How many messages are held.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_in_order_and_drops_what_fell_behind() {
        let mut q = GapQueue::default();
        assert!(q.push(7, b"seven") && q.push(5, b"five") && q.push(9, b"nine"));
        let mut skipped = Vec::new();
        assert_eq!(q.take(4, |m| skipped.push(m)), None);
        assert_eq!(q.take(5, |m| skipped.push(m)).as_deref(), Some(&b"five"[..]));
        assert_eq!(q.take(6, |m| skipped.push(m)), None);
        // 7 fell behind (a gap fill jumped past it): it leaves as skipped, 9 stays.
        assert_eq!(q.take(8, |m| skipped.push(m)), None);
        assert_eq!(skipped, [b"seven".to_vec()]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.take(9, |m| skipped.push(m)).as_deref(), Some(&b"nine"[..]));
        assert!(q.is_empty());
    }

    #[test]
    fn is_bounded() {
        let mut q = GapQueue::default();
        for seq in 0..MAX_FIX_QUEUED_MESSAGES as u64 {
            assert!(q.push(seq + 2, b"m"));
        }
        assert!(!q.push(1, b"one too many"), "a full queue drops");
        assert!(q.push(2, b"same seq replaces"));
        assert_eq!(q.len(), MAX_FIX_QUEUED_MESSAGES);
        q.clear();
        assert!(q.is_empty());
    }
}
