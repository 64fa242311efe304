//! A fixed-capacity array with cheap insertion anywhere: a *tiered vector*.
//!
//! A ladder keeps its levels sorted in one array, best last. In a flat `Vec`, a new price far
//! from the touch shifts every entry above it: 30 µs for a new worst level under 100,000 bid
//! levels, 3 µs under 10,000 (measured on this VM), paid by whoever sends the order and by
//! everyone queued behind it. Here the array is cut into blocks of `B` entries (a power of two
//! near 2√capacity), each a ring with its own start. Every block but the last is full, so
//! element `i` is in block `i / B` and a lookup costs one more load than a `Vec`. Inserting at
//! `i` moves at most `B / 2` entries inside `i`'s block, pushes that block's last entry to the
//! front of the next one, and so on up to the last block, one entry rotated per block: at most
//! `B / 2 + capacity / B` moves, 640 for 131,072 levels, and the in-block part is one
//! `memmove` unless it crosses the ring's wrap. Appending and removing at the end (the touch)
//! move nothing (`cargo run --release -p bench --bin levels` measures all three).

/// Sorted-array storage for a ladder: `len` elements in logical order `0..len`.
pub(crate) struct Tiered<T: Copy> {
    /// `blocks × B` slots; block `k` owns `k·B .. (k+1)·B`, its element `j` sits at
    /// `k·B + (starts[k] + j) mod B`.
    slots: Vec<T>,
    /// Ring start of every block, `< B`.
    starts: Vec<u32>,
    len: usize,
    /// A copy of element `len - 1` (when `len > 0`): the best level, read on every command,
    /// costs one load, as in a `Vec`.
    top: T,
    capacity: usize,
    /// log2 B.
    shift: u32,
}

impl<T: Copy> Tiered<T> {
    /// Room for `capacity` elements, every slot written once now (no page is first touched
    /// later, inside `apply`).
    pub fn with_capacity(capacity: usize, fill: T) -> Self {
        // B ≈ √capacity would balance the two costs of an insert, moves inside one block and
        // rotations across the blocks after it; but a rotation touches a new cache line per
        // block while the in-block moves are one memmove, so blocks are twice that (measured:
        // a new worst level under 100,000 levels 2.1 → 1.2 µs).
        let shift = (capacity.isqrt().next_power_of_two().trailing_zeros() + 1).max(3);
        let blocks = capacity.div_ceil(1 << shift);
        Tiered {
            slots: crate::hugepage::filled_vec(blocks << shift, fill),
            starts: vec![0; blocks],
            len: 0,
            top: fill,
            capacity,
            shift,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        (1 << self.shift) - 1
    }

    /// Slot of element `j` of block `k`.
    #[inline]
    fn slot(&self, k: usize, j: usize) -> usize {
        (k << self.shift) | ((self.starts[k] as usize + j) & self.mask())
    }

    /// Slot of element `i`.
    #[inline]
    fn slot_of(&self, i: usize) -> usize {
        self.slot(i >> self.shift, i & self.mask())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Element `i < len`.
    #[inline]
    pub fn get(&self, i: usize) -> T {
        debug_assert!(i < self.len);
        self.slots[self.slot_of(i)]
    }

    #[inline]
    fn set(&mut self, i: usize, v: T) {
        let s = self.slot_of(i);
        self.slots[s] = v;
    }

    /// The last element.
    #[inline]
    pub fn last(&self) -> Option<T> {
        (self.len > 0).then_some(self.top)
    }

    /// Appends; the caller checked there is room.
    #[inline]
    pub fn push(&mut self, v: T) {
        assert!(self.len < self.capacity, "tiered array full");
        self.len += 1;
        self.set(self.len - 1, v);
        self.top = v;
    }

    /// Removes the last element.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let v = self.last()?;
        self.len -= 1;
        if self.len > 0 {
            self.top = self.get(self.len - 1);
        }
        Some(v)
    }

    /// Inserts `v` at `i ≤ len`, shifting the elements from `i` up by one; the caller checked
    /// there is room.
    pub fn insert(&mut self, i: usize, v: T) {
        assert!(i <= self.len && self.len < self.capacity, "insert out of bounds or full");
        let mask = self.mask();
        let (k, j) = (i >> self.shift, i & mask);
        let last = self.len >> self.shift; // the block that gains a slot
        if k == last {
            self.insert_in_block(k, j, self.len & mask, v);
        } else {
            // Block k is full: its last element moves on, to the front of the next block.
            let mut carry = self.get(((k + 1) << self.shift) - 1);
            self.insert_in_block(k, j, mask + 1, v);
            for m in k + 1..last {
                // A full block takes `carry` at its front and gives up its last element, which
                // sits in the slot just before its start: rotate the start back, swap.
                let s = (self.starts[m] as usize).wrapping_sub(1) & mask;
                self.starts[m] = s as u32;
                let slot = (m << self.shift) | s;
                carry = std::mem::replace(&mut self.slots[slot], carry);
            }
            self.insert_in_block(last, 0, self.len & mask, carry);
        }
        if i == self.len {
            self.top = v;
        }
        self.len += 1;
    }

    /// Inserts `v` at position `j` of block `k`, which holds `n` elements. A full block
    /// (`n == B`) loses its last element (the caller has taken it). Moves the shorter side.
    fn insert_in_block(&mut self, k: usize, j: usize, n: usize, v: T) {
        let mask = self.mask();
        let keep = n.min(mask); // elements that stay in the block, besides `v`
        let base = k << self.shift;
        if j < keep - j {
            // Start one slot earlier (the free or given-up slot), then move `0..j` down by one.
            let start = (self.starts[k] as usize).wrapping_sub(1) & mask;
            self.starts[k] = start as u32;
            if start + j < mask + 1 {
                // No wrap inside the moved range: one memmove.
                self.slots.copy_within(base + start + 1..base + start + 1 + j, base + start);
            } else {
                for q in 0..j {
                    let (from, to) = (self.slot(k, q + 1), self.slot(k, q));
                    self.slots[to] = self.slots[from];
                }
            }
        } else {
            // Move `j..keep` up by one.
            let first = (self.starts[k] as usize + j) & mask;
            if first + keep - j < mask + 1 {
                self.slots.copy_within(base + first..base + first + keep - j, base + first + 1);
            } else {
                for q in (j..keep).rev() {
                    let (from, to) = (self.slot(k, q), self.slot(k, q + 1));
                    self.slots[to] = self.slots[from];
                }
            }
        }
        let s = self.slot(k, j);
        self.slots[s] = v;
    }

    /// Binary search by `cmp(element)` ordering, as [`slice::binary_search_by`].
    pub fn binary_search_by(&self, mut cmp: impl FnMut(&T) -> std::cmp::Ordering) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match cmp(&self.get(mid)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// Keeps, in order, the elements `keep` returns true for (it sees every element once, in
    /// order).
    pub fn retain(&mut self, mut keep: impl FnMut(T) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let v = self.get(i);
            if keep(v) {
                self.set(kept, v);
                kept += 1;
            }
        }
        self.len = kept;
        if kept > 0 {
            self.top = self.get(kept - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(usize, u32),
        Push(u32),
        Pop,
        Retain(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Insert(i, v)),
            2 => any::<u32>().prop_map(Op::Push),
            3 => Just(Op::Pop),
            1 => (2u32..6).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Every operation leaves the same elements in the same order as a `Vec`, for
        /// capacities that fill the last block partly, exactly, or are smaller than a block.
        #[test]
        fn behaves_like_a_vec(capacity in 1usize..300, ops in proptest::collection::vec(op(), 1..600)) {
            let mut t = Tiered::with_capacity(capacity, 0u32);
            let mut v: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i, x) if v.len() < capacity => {
                        let i = i % (v.len() + 1);
                        t.insert(i, x);
                        v.insert(i, x);
                    }
                    Op::Push(x) if v.len() < capacity => {
                        t.push(x);
                        v.push(x);
                    }
                    Op::Pop => prop_assert_eq!(t.pop(), v.pop()),
                    Op::Retain(d) => {
                        let mut dropped = Vec::new();
                        t.retain(|x| {
                            if x % d == 0 {
                                dropped.push(x);
                            }
                            x % d != 0
                        });
                        let expect: Vec<u32> = v.iter().copied().filter(|x| x % d == 0).collect();
                        v.retain(|x| x % d != 0);
                        prop_assert_eq!(dropped, expect);
                    }
                    _ => {}
                }
                prop_assert_eq!(t.len(), v.len());
                prop_assert_eq!(t.iter().collect::<Vec<_>>(), v.clone());
                prop_assert_eq!(t.last(), v.last().copied());
                prop_assert!(t.starts.iter().all(|&s| (s as usize) < 1 << t.shift));
            }
        }
    }

    #[test]
    fn binary_search_matches_a_slice() {
        let mut t = Tiered::with_capacity(100, 0i64);
        let v: Vec<i64> = (0..100).map(|x| x * 3).collect();
        // Built by inserting at the front, so every block's ring start has moved.
        for &x in v.iter().rev() {
            t.insert(0, x);
        }
        for probe in -2..305 {
            assert_eq!(t.binary_search_by(|e| e.cmp(&probe)), v.binary_search(&probe), "probe {probe}");
        }
    }
}
