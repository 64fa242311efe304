//! What every protocol does with its outbound sequence, written once: an application message
//! is recorded in the session's store under its sequence number before its bytes can reach a
//! socket (and is only recorded while the client is away: it reaches the client through a
//! resend after it comes back), and a resend walks the store in sequence order, handing the
//! protocol each stored message and each run of sequence numbers with nothing stored (admin
//! messages, or messages no longer retained), which the protocol answers in its own way (FIX
//! gap fills; SBE refuses ranges it cannot serve whole).

use crate::store::{SessionStore, StoreError};

/// Records one outbound message under `seq` (its bytes when it is an application message,
/// which a resend can return; a session-level message only consumes the seq) and appends it to
/// the live connection's send buffer, if there is one. A store failure is logged: the message
/// still goes out, since refusing it would hold back the client's view of its orders, and the
/// failure shows up again at the next write (a failed store stays failed).
pub(crate) fn emit(store: &mut SessionStore, seq: u64, bytes: &[u8], app: bool, tx: Option<&mut Vec<u8>>) {
    if let Err(e) = store.record_sent(seq, app.then_some(bytes)) {
        tracing::error!(session = store.name(), seq, error = %e, "session store write failed");
    }
    if let Some(tx) = tx {
        tx.extend_from_slice(bytes);
    }
}

/// The sent part of a resend request for `begin..=end` (`end` 0 = everything sent so far):
/// `None` when nothing in it was ever sent.
pub(crate) fn sent_range(store: &SessionStore, begin: u64, end: u64) -> Option<(u64, u64)> {
    let last_sent = store.next_sender_seq().saturating_sub(1);
    let end = if end == 0 || end > last_sent { last_sent } else { end };
    let begin = begin.max(1);
    (begin <= end).then_some((begin, end))
}

/// Whether every seq of `begin..=end` was sent and is still retained.
pub(crate) fn fully_retained(store: &SessionStore, begin: u64, end: u64) -> bool {
    begin >= store.oldest_retained_seq().max(1) && begin <= end && end < store.next_sender_seq()
}

/// One step of a resend, in sequence order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Replayed<'a> {
    /// A stored application message.
    Message {
        /// Its sequence number.
        seq: u64,
        /// Its bytes as first sent.
        bytes: &'a [u8],
    },
    /// Seqs `from..to` with nothing stored.
    Gap {
        /// First seq of the run.
        from: u64,
        /// One past the last.
        to: u64,
    },
}

/// Walks `begin..=end` (a range [`sent_range`] returned) in order: every stored message and
/// every run of seqs between them with nothing stored.
pub(crate) fn replay(
    store: &SessionStore,
    begin: u64,
    end: u64,
    mut f: impl FnMut(Replayed<'_>),
) -> Result<(), StoreError> {
    let mut next = begin;
    store.for_each_sent(begin, end, |seq, bytes| {
        if seq > next {
            f(Replayed::Gap { from: next, to: seq });
        }
        next = seq + 1;
        f(Replayed::Message { seq, bytes });
    })?;
    if next <= end {
        f(Replayed::Gap { from: next, to: end + 1 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreLimits;

    fn store(dir: &std::path::Path) -> SessionStore {
        SessionStore::open(dir, "replay-test", StoreLimits::default()).expect("store opens")
    }

    fn walk(s: &SessionStore, begin: u64, end: u64) -> Vec<String> {
        let mut steps = Vec::new();
        replay(s, begin, end, |r| {
            steps.push(match r {
                Replayed::Message { seq, bytes } => format!("{seq}:{}", String::from_utf8_lossy(bytes)),
                Replayed::Gap { from, to } => format!("gap {from}..{to}"),
            })
        })
        .expect("replay");
        steps
    }

    #[test]
    fn emit_records_then_queues_only_for_a_live_connection() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let mut tx = Vec::new();
        emit(&mut s, 1, b"hb", false, Some(&mut tx));
        emit(&mut s, 2, b"er-a", true, Some(&mut tx));
        emit(&mut s, 3, b"er-b", true, None);
        assert_eq!(tx, b"hber-a");
        assert_eq!(s.next_sender_seq(), 4);
        assert_eq!(walk(&s, 1, 3), vec!["gap 1..2", "2:er-a", "3:er-b"]);
    }

    #[test]
    fn replay_reports_gaps_between_and_after_stored_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        for (seq, app) in [(1, true), (2, false), (3, false), (4, true), (5, false)] {
            emit(&mut s, seq, format!("m{seq}").as_bytes(), app, None);
        }
        assert_eq!(walk(&s, 1, 5), vec!["1:m1", "gap 2..4", "4:m4", "gap 5..6"]);
        assert_eq!(walk(&s, 2, 3), vec!["gap 2..4"]);
    }

    #[test]
    fn sent_range_and_retention_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        assert_eq!(sent_range(&s, 1, 0), None, "nothing sent yet");
        for seq in 1..=3 {
            emit(&mut s, seq, b"x", true, None);
        }
        assert_eq!(sent_range(&s, 0, 0), Some((1, 3)));
        assert_eq!(sent_range(&s, 2, 99), Some((2, 3)));
        assert_eq!(sent_range(&s, 4, 0), None);
        assert!(fully_retained(&s, 1, 3));
        assert!(!fully_retained(&s, 2, 4), "4 was never sent");
        assert!(!fully_retained(&s, 0, 1), "seq 0 does not exist");
    }
}
