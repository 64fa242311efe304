//! Lookup of live orders by exchange id and by (account, client id).
//!
//! The client index is a [`SlotTable`]: open addressing with linear probing over 4-byte entries
//! that hold the order's pool slot and, in the bits the slot does not need, its distance from its
//! home bucket and a tag taken from the key's hash. Keys are never stored: a tag match is
//! confirmed against the order record. A table has `ceil(4/3 × capacity) + 1` buckets (any
//! count, not a power of two: the home bucket is a multiply-shift of the hash), so it holds every
//! order the pool can hold at a load of at most 3/4 and never needs an overflow, a reject of its
//! own or a resize: 5.3 bytes per order slot. Removal shifts the rest of the probe run back (no
//! tombstones), so the table stays as fast as if it had been built from scratch, with no
//! periodic clean-up.
//!
//! The id index is an [`IdTable`]: exchange ids are the engine's own counter, so a direct-mapped
//! array on the id's low bits finds almost every order with one read, and a [`SlotTable`] at load
//! 7/8 takes the orders whose array entry an older live order holds (8.6 bytes per slot in all
//! for a power-of-two capacity).
//!
//! Hashes are fixed mixing functions, never randomly seeded, so the engine behaves the same on
//! every run and machine. All memory is written at start-up, so no page fault lands inside
//! `apply`.

use crate::ids::ClOrdId;
use crate::order::{Order, OrderPool, Slot};

/// splitmix64's finaliser: a bijective mix, good enough to spread sequential ids.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fibonacci hashing: one multiply. Exchange ids are a counter, and multiplying by 2^64/φ spreads
/// consecutive ids evenly over the table (the home takes the product's high bits).
#[inline]
fn hash_id(id: u64) -> u64 {
    id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hash of an (account, client order id) key. Computed once per new order: the duplicate check
/// and the insert share it ([`OrderIndex::insert_new`]).
#[inline]
pub(crate) fn hash_client(account: u32, c: &ClOrdId) -> u64 {
    let b = &c.0;
    let w0 = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let w1 = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    let w2 = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")) as u64;
    // Three independent multiplies (they overlap in the pipeline), then one finaliser: about a
    // third of the latency of chaining the finaliser three times, which showed in profiles as
    // the client index's main cost. Each word times an odd constant is a bijection, the
    // rotations keep the words' bits apart, and the finaliser mixes them into every output bit.
    let a = w0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let b = w1.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    let c = (w2 | ((account as u64) << 32)).wrapping_mul(0x1656_67b1_9e37_79f9);
    mix(a ^ b.rotate_left(21) ^ c.rotate_left(42))
}

#[inline]
fn hash_order_client(o: &Order) -> u64 {
    hash_client(o.account, &o.cl_ord_id)
}

#[inline]
fn hash_order_id(o: &Order) -> u64 {
    hash_id(o.id)
}

/// A free bucket. Never a valid entry: slots are below the pool capacity, which needs fewer than
/// the slot field's bits set (see [`SlotTable::with_capacity`]).
const EMPTY: u32 = u32::MAX;

/// Most entries per bucket a table is sized for: 3 entries per 4 buckets. At that load, linear
/// probing reads ~2.5 entries for a hit and ~8.5 for a miss (contiguous 4-byte entries; the tag
/// keeps most wrong entries from reading their record); the benchmark's deep book sits at about
/// half of it.
const MAX_LOAD_NUM: u64 = 3;
const MAX_LOAD_DEN: u64 = 4;

/// Bits of an entry that record how far it sits from its home bucket, so that removal can shift
/// later entries back without reading their records and rehashing their keys. The field's top
/// value means "this far or farther": only such entries are rehashed.
const DIST_BITS: u32 = 3;

/// Open-addressing table of order slots, keyed by a hash of something in the order record.
///
/// An entry is `slot | dist << slot_bits | tag`: the slot in the low bits, then (space
/// permitting) the distance from the home bucket ([`DIST_BITS`]), then the hash tag in what is
/// left (10 − 3 = 7 bits for a 2M-order pool; none for pools above 2^31 orders, where every
/// candidate is checked against its record).
pub(crate) struct SlotTable {
    entries: Vec<u32>,
    /// The bits of an entry holding the slot.
    slot_mask: u32,
    /// Where the distance field starts, and its largest value (0: no distance field).
    dist_shift: u32,
    dist_max: u32,
    /// The bits of an entry holding the hash's tag.
    tag_mask: u32,
    /// Most entries the table may hold (the pool capacity).
    capacity: u32,
    len: u32,
}

impl SlotTable {
    /// A table for up to `capacity` slots (`0..capacity`), at most 3/4 full.
    pub fn with_capacity(capacity: u32) -> Self {
        Self::with_load(capacity, MAX_LOAD_NUM, MAX_LOAD_DEN)
    }

    /// A table for up to `capacity` slots that is at most `num/den` full when it holds them all.
    pub fn with_load(capacity: u32, num: u64, den: u64) -> Self {
        assert!(capacity < u32::MAX, "slot u32::MAX is the empty marker");
        assert!(num > 0 && num < den, "a load below 1");
        // One bucket more than the load bound guarantees that a probe always meets EMPTY.
        let buckets = (capacity as u64 * den).div_ceil(num) + 1;
        // Enough bits to write `capacity` itself, so a slot (< capacity) never fills its field
        // and an entry is never EMPTY, whatever its other fields hold.
        let slot_bits = u32::BITS - capacity.leading_zeros();
        let spare = u32::BITS - slot_bits;
        let dist_bits = spare.min(DIST_BITS);
        let mask = |bits: u32| if bits == 0 { 0 } else { u32::MAX >> (u32::BITS - bits) };
        let slot_mask = mask(slot_bits);
        let dist_max = mask(dist_bits);
        let tag_mask = !(slot_mask | dist_max.checked_shl(slot_bits).unwrap_or(0));
        SlotTable {
            entries: crate::hugepage::filled_vec(buckets as usize, EMPTY),
            slot_mask,
            dist_shift: slot_bits.min(u32::BITS - 1),
            dist_max,
            tag_mask,
            capacity,
            len: 0,
        }
    }

    /// Home bucket: the high bits of the hash, scaled to the bucket count.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((hash as u128 * self.entries.len() as u128) >> 64) as usize
    }

    /// Tag: low bits of the hash (independent of the home's high bits), in the tag field.
    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        hash as u32 & self.tag_mask
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.entries.len() { 0 } else { i + 1 }
    }

    /// Buckets from `from` forward to `to`, wrapping.
    #[inline]
    fn gap(&self, from: usize, to: usize) -> usize {
        if to >= from { to - from } else { to + self.entries.len() - from }
    }

    #[inline]
    fn with_dist(&self, e: u32, dist: usize) -> u32 {
        let d = (dist as u32).min(self.dist_max);
        (e & !(self.dist_max << self.dist_shift)) | (d << self.dist_shift)
    }

    /// The slot with this hash for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(Slot) -> bool) -> Option<Slot> {
        let tag = self.tag(hash);
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if e & self.tag_mask == tag && eq(e & self.slot_mask) {
                return Some(e & self.slot_mask);
            }
            i = self.next(i);
        }
    }

    /// Starts loading the bucket where a search for `hash` begins.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::prefetch::prefetch(&self.entries[self.home(hash)]);
    }

    /// The first slot whose tag matches `hash`, without confirming it against a record: a guess
    /// for prefetching, which must not wait for the record it is about to load.
    #[inline]
    pub fn candidate(&self, hash: u64) -> Option<Slot> {
        self.find(hash, |_| true)
    }

    /// Adds `slot` under `hash`; the caller has checked that its key is not present.
    #[inline]
    pub fn insert(&mut self, hash: u64, slot: Slot) {
        assert!(self.len < self.capacity, "slot table holds at most the pool capacity");
        debug_assert!(slot & !self.slot_mask == 0);
        let mut i = self.home(hash);
        let mut dist = 0;
        while self.entries[i] != EMPTY {
            i = self.next(i);
            dist += 1;
        }
        self.entries[i] = self.with_dist(slot | self.tag(hash), dist);
        self.len += 1;
    }

    /// Removes `slot` stored under `hash`; `hash_of` gives the hash of another slot's key, needed
    /// only for an entry that shifts back from [`DIST_BITS`]' limit or farther. Returns whether
    /// it was present.
    #[inline]
    pub fn remove(&mut self, hash: u64, slot: Slot, hash_of: impl Fn(Slot) -> u64) -> bool {
        let want = slot | self.tag(hash);
        let key_mask = self.slot_mask | self.tag_mask;
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return false;
            }
            if e & key_mask == want {
                break;
            }
            i = self.next(i);
        }
        // Backward shift: move up every later entry of the run whose home is at or before the
        // hole, i.e. whose distance from home is at least its gap to the hole.
        let mut hole = i;
        let mut j = self.next(i);
        let mut gap = 1; // from the hole to j
        loop {
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            let stored = (e >> self.dist_shift) & self.dist_max;
            let dist = if stored < self.dist_max {
                stored as usize
            } else {
                self.gap(self.home(hash_of(e & self.slot_mask)), j)
            };
            if dist >= gap {
                self.entries[hole] = self.with_dist(e, dist - gap);
                hole = j;
                gap = 0;
            }
            j = self.next(j);
            gap += 1;
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Bytes of the bucket array.
    pub fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<u32>()
    }

    /// Checks that every entry's distance field agrees with its key's hash (tests and
    /// `check_invariants`).
    pub fn check(&self, hash_of: impl Fn(Slot) -> u64) -> Result<(), String> {
        let mut n = 0;
        for (i, &e) in self.entries.iter().enumerate() {
            if e == EMPTY {
                continue;
            }
            n += 1;
            let h = hash_of(e & self.slot_mask);
            let dist = self.gap(self.home(h), i);
            if e != self.with_dist((e & self.slot_mask) | self.tag(h), dist) {
                return Err(format!("slot table entry {i} ({e:#x}) disagrees with its key (distance {dist})"));
            }
            // Linear probing: every bucket from home to here is occupied.
            let mut k = self.home(h);
            while k != i {
                if self.entries[k] == EMPTY {
                    return Err(format!("slot table entry {i} is cut off from its home {}", self.home(h)));
                }
                k = self.next(k);
            }
        }
        if n != self.len {
            return Err(format!("slot table holds {n} entries, counts {}", self.len));
        }
        Ok(())
    }
}

/// Exchange order ids → slots. Ids are the engine's own counter, so the live orders of a
/// moment mostly hold a narrow band of recent ids: a direct-mapped array indexed by the id's low
/// bits finds them with one read, no hashing, and keeps a small book's entries on a few cache
/// lines however large the engine is. An order whose array entry is taken when it arrives (an
/// order at least one array length older is still live: a long-lived GTC order) goes to an
/// overflow [`SlotTable`] instead; the array entry is never moved, so lookups check the array and
/// then, only if the overflow holds anything, the overflow.
///
/// The overflow can, in a contrived flow, hold every live order, so it is sized for the whole
/// pool; it is almost always nearly empty, so it runs at a higher load (7/8) than the client
/// table to keep the index's memory down.
pub(crate) struct IdTable {
    /// `direct[id & mask]`: the slot of a live order with those low id bits, or [`EMPTY`].
    direct: Vec<u32>,
    mask: u64,
    overflow: SlotTable,
    len: u32,
}

impl IdTable {
    fn with_capacity(capacity: u32) -> Self {
        let size = (capacity as u64).next_power_of_two().max(1);
        IdTable {
            direct: crate::hugepage::filled_vec(size as usize, EMPTY),
            mask: size - 1,
            overflow: SlotTable::with_load(capacity, 7, 8),
            len: 0,
        }
    }

    #[inline]
    fn bucket(&self, id: u64) -> usize {
        (id & self.mask) as usize
    }

    #[inline]
    fn insert(&mut self, id: u64, slot: Slot) {
        let b = self.bucket(id);
        if self.direct[b] == EMPTY {
            self.direct[b] = slot;
        } else {
            self.overflow.insert(hash_id(id), slot);
        }
        self.len += 1;
    }

    /// Removes order `id`, held in `slot`; returns whether it was present.
    #[inline]
    fn remove(&mut self, pool: &OrderPool, id: u64, slot: Slot) -> bool {
        let b = self.bucket(id);
        let found = if self.direct[b] == slot {
            self.direct[b] = EMPTY;
            true
        } else {
            self.overflow.remove(hash_id(id), slot, |s| hash_order_id(pool.get(s)))
        };
        self.len -= found as u32;
        found
    }

    #[inline]
    fn find(&self, pool: &OrderPool, id: u64) -> Option<Slot> {
        let s = self.direct[self.bucket(id)];
        if s != EMPTY && pool.get(s).id == id {
            return Some(s);
        }
        if self.overflow.len() == 0 {
            return None;
        }
        self.overflow.find(hash_id(id), |s| pool.get(s).id == id)
    }

    /// The slot probably holding `id`: the array's entry, unconfirmed (for prefetching).
    #[inline]
    fn candidate(&self, id: u64) -> Option<Slot> {
        let s = self.direct[self.bucket(id)];
        if s != EMPTY {
            Some(s)
        } else if self.overflow.len() == 0 {
            None
        } else {
            self.overflow.candidate(hash_id(id))
        }
    }

    #[inline]
    fn prefetch(&self, id: u64) {
        crate::prefetch::prefetch(&self.direct[self.bucket(id)]);
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn allocated_bytes(&self) -> usize {
        self.direct.capacity() * std::mem::size_of::<u32>() + self.overflow.allocated_bytes()
    }

    /// Every array entry holds an order with its low bits, the overflow's layout agrees with its
    /// keys, and the two together count `len`.
    fn check(&self, pool: &OrderPool) -> Result<(), String> {
        let mut n = 0;
        for (b, &s) in self.direct.iter().enumerate() {
            if s == EMPTY {
                continue;
            }
            n += 1;
            let id = pool.get(s).id;
            if self.bucket(id) != b {
                return Err(format!("id table bucket {b} holds order {id}"));
            }
        }
        self.overflow.check(|s| hash_order_id(pool.get(s)))?;
        if n + self.overflow.len() != self.len() {
            return Err(format!("id table holds {} entries, counts {}", n + self.overflow.len(), self.len));
        }
        Ok(())
    }
}

pub(crate) struct OrderIndex {
    by_id: IdTable,
    by_client: SlotTable,
    /// The slot whose client-key hash was computed last, and that hash: an order's removal
    /// usually follows its insert (a filled IOC) or a prefetch (a cancel, a filled maker) and
    /// reuses it instead of hashing the 20-byte key again. A cache of the key, never state:
    /// cleared whenever the slot's key leaves the table.
    recent: (Slot, u64),
}

impl OrderIndex {
    pub fn with_capacity(capacity: u32) -> Self {
        OrderIndex {
            by_id: IdTable::with_capacity(capacity),
            by_client: SlotTable::with_capacity(capacity),
            recent: (crate::order::NIL, 0),
        }
    }

    /// Indexes the order in `slot` (restores and tests; new orders use [`Self::insert_new`]).
    pub fn insert(&mut self, pool: &OrderPool, slot: Slot) {
        let h = hash_order_client(pool.get(slot));
        self.insert_new(pool, slot, h);
    }

    /// Indexes a new order whose client key hashes to `client_hash` (from the duplicate check).
    #[inline]
    pub fn insert_new(&mut self, pool: &OrderPool, slot: Slot, client_hash: u64) {
        let o = pool.get(slot);
        debug_assert_eq!(client_hash, hash_order_client(o));
        self.by_id.insert(o.id, slot);
        self.by_client.insert(client_hash, slot);
        self.recent = (slot, client_hash);
    }

    pub fn insert_client(&mut self, pool: &OrderPool, slot: Slot) {
        let h = hash_order_client(pool.get(slot));
        self.by_client.insert(h, slot);
        self.recent = (slot, h);
    }

    /// The client-key hash of the order in `slot`, from [`Self::recent`] when it is that slot's.
    #[inline]
    fn client_hash_of(&self, pool: &OrderPool, slot: Slot) -> u64 {
        let o = pool.get(slot);
        if self.recent.0 == slot {
            debug_assert_eq!(self.recent.1, hash_order_client(o), "stale client hash for slot {slot}");
            self.recent.1
        } else {
            hash_order_client(o)
        }
    }

    pub fn remove(&mut self, pool: &OrderPool, slot: Slot) {
        let id = pool.get(slot).id;
        let found = self.by_id.remove(pool, id, slot);
        assert!(found, "order {id} missing from the id index");
        self.remove_client(pool, slot);
    }

    pub fn remove_client(&mut self, pool: &OrderPool, slot: Slot) {
        let h = self.client_hash_of(pool, slot);
        if self.recent.0 == slot {
            self.recent = (crate::order::NIL, 0);
        }
        let found = self.by_client.remove(h, slot, |s| hash_order_client(pool.get(s)));
        assert!(found, "order {} missing from the client index", pool.get(slot).id);
    }

    /// Starts loading the id-table bucket of `id` (see [`crate::prefetch`]).
    #[inline]
    pub fn prefetch_id(&self, id: u64) {
        self.by_id.prefetch(id);
    }

    /// Starts loading the client-table bucket for a key hashing to `hash`.
    #[inline]
    pub fn prefetch_client(&self, hash: u64) {
        self.by_client.prefetch(hash);
    }

    /// The slot probably holding order `id` (unconfirmed: for prefetching only).
    #[inline]
    pub fn candidate_id(&self, id: u64) -> Option<Slot> {
        self.by_id.candidate(id)
    }

    /// The slot probably holding the order whose client key hashes to `hash` (unconfirmed).
    #[inline]
    pub fn candidate_client(&self, hash: u64) -> Option<Slot> {
        self.by_client.candidate(hash)
    }

    /// Starts loading both buckets of the order in `slot`, ahead of [`Self::remove`], which
    /// reuses the client hash computed here.
    #[inline]
    pub fn prefetch_order(&mut self, pool: &OrderPool, slot: Slot) {
        let h = self.client_hash_of(pool, slot);
        self.by_id.prefetch(pool.get(slot).id);
        self.by_client.prefetch(h);
        self.recent = (slot, h);
    }

    #[inline]
    pub fn find_id(&self, pool: &OrderPool, id: u64) -> Option<Slot> {
        self.by_id.find(pool, id)
    }

    #[inline]
    pub fn find_client(&self, pool: &OrderPool, account: u32, c: &ClOrdId) -> Option<Slot> {
        self.find_client_hashed(pool, hash_client(account, c), account, c)
    }

    /// [`Self::find_client`] with the key's hash already computed.
    #[inline]
    pub fn find_client_hashed(&self, pool: &OrderPool, hash: u64, account: u32, c: &ClOrdId) -> Option<Slot> {
        self.by_client.find(hash, |s| {
            let o = pool.get(s);
            o.account == account && o.cl_ord_id == *c
        })
    }

    /// Live orders indexed (by id; the client table holds the same orders).
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.by_id.len(), self.by_client.len());
        self.by_id.len()
    }

    /// Checks both tables' layout against the records they point to.
    pub fn check(&self, pool: &OrderPool) -> Result<(), String> {
        self.by_id.check(pool)?;
        self.by_client.check(|s| hash_order_client(pool.get(s)))
    }

    /// Bytes of both tables.
    pub fn allocated_bytes(&self) -> usize {
        self.by_id.allocated_bytes() + self.by_client.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AccountId;
    use crate::order::OrderInit;
    use crate::{OrdType, Side, StpMode, TimeInForce};

    fn order(id: u64) -> OrderInit {
        OrderInit {
            id,
            account: AccountId(0),
            cl_ord_id: ClOrdId::from_u64(id),
            instrument: 0,
            side: Side::Buy,
            ord_type: OrdType::Limit,
            tif: TimeInForce::Gtc,
            price_ticks: 1,
            stop_ticks: 0,
            qty_lots: 1,
            display_lots: 0,
            post_only: false,
            stp: StpMode::Allow,
        }
    }

    /// Orders arrive with rising ids and leave at random, some living for many array lengths,
    /// so ids keep landing on array entries that are taken: every lookup (live ids, departed
    /// ids, ids never issued) must agree with a plain map, and the table's own check must hold.
    #[test]
    fn id_table_matches_a_map() {
        let seed = 0x1d7a_b1e5_u64;
        println!("seed {seed:#x}");
        let capacity = 24u32; // an array of 32
        let mut pool = OrderPool::with_capacity(capacity);
        let mut t = IdTable::with_capacity(capacity);
        let mut live: std::collections::BTreeMap<u64, Slot> = Default::default();
        let (mut next_id, mut rng, mut overflowed) = (1u64, seed, 0usize);
        for _ in 0..20_000 {
            rng = mix(rng);
            // Leave the oldest order alone most of the time, so it outlives many wraps.
            let remove = live.len() == capacity as usize || (!live.is_empty() && rng % 5 < 2);
            if remove {
                // Any live order but the oldest, unless it is the only one.
                let keys: Vec<u64> = live.keys().copied().collect();
                let skip = usize::from(keys.len() > 1);
                let id = keys[skip + (rng >> 8) as usize % (keys.len() - skip)];
                let slot = live.remove(&id).unwrap();
                assert!(t.remove(&pool, id, slot), "order {id} missing");
                pool.free(slot);
            } else {
                let slot = pool.alloc(&order(next_id)).unwrap();
                t.insert(next_id, slot);
                live.insert(next_id, slot);
                next_id += 1;
            }
            overflowed = overflowed.max(t.overflow.len());
            for id in next_id.saturating_sub(100)..next_id + 3 {
                assert_eq!(t.find(&pool, id), live.get(&id).copied(), "id {id}");
            }
            assert_eq!(t.len(), live.len());
            t.check(&pool).unwrap();
        }
        assert!(next_id > 1_000, "ids wrapped the array many times");
        assert!(overflowed > 3, "the overflow was exercised (peak {overflowed})");
    }

    /// Drives a small table through random inserts and removes with a deliberately bad hash
    /// (few distinct homes, so runs are long and wrap) against a plain list.
    #[test]
    fn slot_table_matches_a_list() {
        let seed = 0x5107_7ab1e_u64;
        println!("seed {seed:#x}");
        let capacity = 61u32;
        let keys: Vec<u64> = (0..capacity as u64).map(|s| mix(s % 7 + seed) ^ (s << 3)).collect();
        let hash_of = |s: Slot| keys[s as usize];
        let mut t = SlotTable::with_capacity(capacity);
        let mut live = vec![false; capacity as usize];
        let mut rng = seed;
        for _ in 0..20_000 {
            rng = mix(rng);
            let s = (rng % capacity as u64) as Slot;
            if live[s as usize] {
                assert!(t.remove(hash_of(s), s, hash_of));
            } else {
                t.insert(hash_of(s), s);
            }
            live[s as usize] = !live[s as usize];
            for (k, &l) in live.iter().enumerate() {
                let k = k as Slot;
                assert_eq!(t.find(hash_of(k), |x| x == k), l.then_some(k), "slot {k}");
            }
            assert_eq!(t.len(), live.iter().filter(|&&l| l).count());
            t.check(hash_of).unwrap();
        }
    }
}
