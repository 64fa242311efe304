//! Lookup of live orders by exchange id and by (account, client id).
//!
//! Exchange ids are a counter, so they index a direct-mapped ring (`id & mask`, twice the pool
//! size) with no hashing: one load and a check of the order's id. An order that outlives a whole
//! ring cycle while its entry is needed moves to a small overflow table. Client ids go through
//! a hash table that stores only the slot (4 bytes + 1 control byte per bucket) and reads keys
//! back from the order record. Hashes are fixed mixing functions, never randomly seeded, so the
//! engine behaves the same on every run and machine. All memory is reserved and touched at
//! start-up, so no page fault lands inside `apply`.

use hashbrown::HashTable;

use crate::ids::ClOrdId;
use crate::order::{NIL, Order, OrderPool, Slot};

/// splitmix64's finaliser: a bijective mix, good enough to spread sequential ids.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn hash_id(id: u64) -> u64 {
    mix(id)
}

#[inline]
fn hash_client(account: u32, c: &ClOrdId) -> u64 {
    let b = &c.0;
    let w0 = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let w1 = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    let w2 = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")) as u64;
    mix(mix(mix(w0 ^ ((account as u64) << 32)) ^ w1) ^ w2)
}

pub(crate) struct OrderIndex {
    /// Slot of the live order whose id maps here, or `NIL`.
    id_ring: Vec<Slot>,
    id_mask: u64,
    /// Orders displaced from the ring by a newer id with the same ring position.
    id_overflow: HashTable<Slot>,
    by_client: HashTable<Slot>,
    live: usize,
}

/// Inserts and removes `count` placeholder entries so the table's memory is touched now rather
/// than on first use inside `apply`.
fn pre_touch(table: &mut HashTable<Slot>, count: usize) {
    for i in 0..count as u64 {
        table.insert_unique(mix(i), 0, |_| unreachable!("capacity reserved"));
    }
    table.clear();
}

impl OrderIndex {
    pub fn with_capacity(capacity: u32) -> Self {
        let ring_len = (capacity as usize).next_power_of_two() * 2;
        let mut by_client = HashTable::with_capacity(capacity as usize);
        pre_touch(&mut by_client, capacity as usize);
        OrderIndex {
            id_ring: vec![NIL; ring_len],
            id_mask: ring_len as u64 - 1,
            // Displacement needs an order to survive `ring_len` newer ids: rare, but it must never
            // allocate, so the table is reserved for the whole pool (and left untouched until used).
            id_overflow: HashTable::with_capacity(capacity as usize),
            by_client,
            live: 0,
        }
    }

    pub fn insert(&mut self, pool: &OrderPool, slot: Slot) {
        let id = pool.get(slot).id;
        let at = (id & self.id_mask) as usize;
        let displaced = self.id_ring[at];
        if displaced != NIL {
            let old = pool.get(displaced).id;
            self.id_overflow.insert_unique(hash_id(old), displaced, |&s| hash_id(pool.get(s).id));
        }
        self.id_ring[at] = slot;
        self.insert_client(pool, slot);
        self.live += 1;
    }

    pub fn insert_client(&mut self, pool: &OrderPool, slot: Slot) {
        let o = pool.get(slot);
        self.by_client.insert_unique(hash_client(o.account, &o.cl_ord_id), slot, |&s| {
            let o: &Order = pool.get(s);
            hash_client(o.account, &o.cl_ord_id)
        });
    }

    pub fn remove(&mut self, pool: &OrderPool, slot: Slot) {
        let id = pool.get(slot).id;
        let at = (id & self.id_mask) as usize;
        if self.id_ring[at] == slot {
            self.id_ring[at] = NIL;
        } else if let Ok(e) = self.id_overflow.find_entry(hash_id(id), |&s| s == slot) {
            e.remove();
        } else {
            panic!("order {id} missing from the id index");
        }
        self.remove_client(pool, slot);
        self.live -= 1;
    }

    pub fn remove_client(&mut self, pool: &OrderPool, slot: Slot) {
        let o = pool.get(slot);
        match self.by_client.find_entry(hash_client(o.account, &o.cl_ord_id), |&s| s == slot) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => panic!("order {} missing from the client index", o.id),
        }
    }

    #[inline]
    pub fn find_id(&self, pool: &OrderPool, id: u64) -> Option<Slot> {
        let s = self.id_ring[(id & self.id_mask) as usize];
        if s != NIL && pool.get(s).id == id {
            return Some(s);
        }
        if self.id_overflow.is_empty() {
            return None;
        }
        self.id_overflow.find(hash_id(id), |&s| pool.get(s).id == id).copied()
    }

    #[inline]
    pub fn find_client(&self, pool: &OrderPool, account: u32, c: &ClOrdId) -> Option<Slot> {
        self.by_client
            .find(hash_client(account, c), |&s| {
                let o = pool.get(s);
                o.account == account && o.cl_ord_id == *c
            })
            .copied()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Bytes of the id ring, the overflow table and the client table.
    pub fn allocated_bytes(&self) -> usize {
        let bucket = std::mem::size_of::<Slot>() + 1;
        self.id_ring.len() * std::mem::size_of::<Slot>()
            + (self.id_overflow.capacity() + self.by_client.capacity()) * bucket
    }
}
