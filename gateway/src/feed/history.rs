//! The messages of the current session kept for re-requests: a preallocated ring of the last
//! `capacity` messages, by sequence number. Shared between the feed thread (writes) and the
//! re-request server (reads) behind one mutex, taken once per packet sent and once per request.

use crate::feed::itch::MAX_MESSAGE_LEN;
use crate::feed::mold::SessionName;

/// One retained message.
#[derive(Clone, Copy)]
struct Slot {
    len: u8,
    bytes: [u8; MAX_MESSAGE_LEN],
}

/// The retained messages of one session.
pub struct History {
    session: SessionName,
    slots: Vec<Slot>,
    /// Sequence number the next message will get (messages `first..next` are kept).
    next: u64,
    first: u64,
}

impl History {
    /// An empty history keeping up to `capacity` messages (at least one).
    pub fn new(capacity: usize) -> Self {
        History {
            session: *b"          ",
            slots: vec![Slot { len: 0, bytes: [0; MAX_MESSAGE_LEN] }; capacity.max(1)],
            next: 1,
            first: 1,
        }
    }

    /// Starts a new session: nothing retained, numbering from 1.
    pub fn reset(&mut self, session: SessionName) {
        self.session = session;
        self.next = 1;
        self.first = 1;
    }

    /// The current session.
    pub fn session(&self) -> SessionName {
        self.session
    }

    /// The sequence number of the next message.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Oldest retained sequence number.
    pub fn first_seq(&self) -> u64 {
        self.first
    }

    /// Appends the next message (at most [`MAX_MESSAGE_LEN`] bytes).
    pub fn push(&mut self, msg: &[u8]) {
        let cap = self.slots.len() as u64;
        let slot = &mut self.slots[(self.next % cap) as usize];
        slot.len = msg.len() as u8;
        slot.bytes[..msg.len()].copy_from_slice(msg);
        self.next += 1;
        if self.next - self.first > cap {
            self.first = self.next - cap;
        }
    }

    /// Message `seq`, if retained.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        if seq < self.first || seq >= self.next {
            return None;
        }
        let slot = &self.slots[(seq % self.slots.len() as u64) as usize];
        Some(&slot.bytes[..usize::from(slot.len)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_capacity_messages() {
        let mut h = History::new(3);
        h.reset(*b"S123456789");
        for i in 1..=5u8 {
            h.push(&[i; 3]);
        }
        assert_eq!((h.first_seq(), h.next_seq()), (3, 6));
        assert_eq!(h.get(2), None);
        assert_eq!(h.get(3), Some(&[3u8; 3][..]));
        assert_eq!(h.get(5), Some(&[5u8; 3][..]));
        assert_eq!(h.get(6), None);
        h.reset(*b"S000000000");
        assert_eq!((h.get(3), h.next_seq()), (None, 1));
    }
}
