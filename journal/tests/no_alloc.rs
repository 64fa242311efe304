//! The steady-state append and commit path allocates nothing (a counting global allocator
//! proves it). Own test binary, because the global allocator is per binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use journal::{Durability, Journal, JournalConfig};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only the measuring thread counts: the test harness may allocate on its own threads.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; counting has no effect on the
// memory returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn append_commit_and_replay_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_dir(dir.path(), JournalConfig::default()).unwrap();
    let body = [7u8; 64];
    COUNTING.with(|counting| counting.set(true));
    // The counter works: one allocation is seen.
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(ALLOCATIONS.swap(0, Ordering::Relaxed), 1, "counting allocator is not counting");
    for seq in 1..=5_000u64 {
        journal.append(seq, seq, 1, &body).unwrap();
        let durability = if seq % 1000 == 0 { Durability::Fsync } else { Durability::Written };
        journal.commit(durability).unwrap();
    }
    let mut replayed = 0u64;
    for record in journal.read_from(2_500).unwrap() {
        replayed += record.unwrap().body.len() as u64;
    }
    COUNTING.with(|counting| counting.set(false));
    assert_eq!(replayed, 2_501 * 64);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "steady-state journal calls allocated");
}
