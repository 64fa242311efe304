//! Lookup of live orders by exchange id and by (account, client id). Both tables store only the
//! slot (4 bytes + 1 control byte per bucket); keys are read back from the order record. Hashes
//! are fixed mixing functions, never randomly seeded, so the engine behaves the same on every
//! run and machine. Capacity is reserved at start-up for the whole order pool.

use hashbrown::HashTable;

use crate::ids::ClOrdId;
use crate::order::{Order, OrderPool, Slot};

/// splitmix64's finaliser: a bijective mix, good enough to spread sequential ids.
#[inline]
fn mix(mut x: u64) -> u64 {
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
    by_id: HashTable<Slot>,
    by_client: HashTable<Slot>,
}

impl OrderIndex {
    pub fn with_capacity(capacity: u32) -> Self {
        OrderIndex {
            by_id: HashTable::with_capacity(capacity as usize),
            by_client: HashTable::with_capacity(capacity as usize),
        }
    }

    pub fn insert(&mut self, pool: &OrderPool, slot: Slot) {
        let o = pool.get(slot);
        self.by_id.insert_unique(hash_id(o.id), slot, |&s| hash_id(pool.get(s).id));
        self.insert_client(pool, slot);
    }

    pub fn insert_client(&mut self, pool: &OrderPool, slot: Slot) {
        let o = pool.get(slot);
        self.by_client.insert_unique(hash_client(o.account, &o.cl_ord_id), slot, |&s| {
            let o: &Order = pool.get(s);
            hash_client(o.account, &o.cl_ord_id)
        });
    }

    pub fn remove(&mut self, pool: &OrderPool, slot: Slot) {
        let o = pool.get(slot);
        let id = o.id;
        if let Ok(e) = self.by_id.find_entry(hash_id(id), |&s| s == slot) {
            e.remove();
        } else {
            panic!("order {id} missing from the id index");
        }
        self.remove_client(pool, slot);
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
        self.by_id.find(hash_id(id), |&s| pool.get(s).id == id).copied()
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
        self.by_id.len()
    }

    /// Heap bytes of both tables (buckets × (slot + control byte)).
    pub fn allocated_bytes(&self) -> usize {
        (self.by_id.capacity() + self.by_client.capacity()) * (std::mem::size_of::<Slot>() + 1)
    }
}
