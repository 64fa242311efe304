//! The steady state allocates nothing: after warm-up, one million mixed commands (limit, IOC,
//! FOK, market, iceberg, stop, post-only, cancel, replace, self-trade, status, expiry) go through
//! `apply` without a single heap allocation, counted by a global allocator on this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use engine::*;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INST: InstrumentId = InstrumentId(0);

#[test]
fn one_million_commands_after_warm_up_allocate_nothing() {
    let mut e = Engine::new(EngineLimits {
        max_orders: 1 << 17,
        max_levels: 1 << 14,
        max_levels_per_side: 1 << 12,
        max_instruments: 4,
        max_accounts: 16,
    });
    let mut out: Vec<Event> = Vec::with_capacity(1 << 12);
    let run = |e: &mut Engine, body: CommandBody, out: &mut Vec<Event>| {
        let seq = e.seq() + 1;
        out.clear();
        e.apply(&Command { seq, ts_ns: seq * 10, body }, out).expect("consecutive sequence");
    };
    let mut flow = engine::sim::FlowGen::new(0x5ab1e, INST, 8);
    for b in flow.setup() {
        run(&mut e, b, &mut out);
    }
    let (warm_up, measured) = (200_000u64, 1_000_000u64);
    let (mut trades, mut rejects, mut max_events) = (0u64, 0u64, 0usize);
    for n in 0..warm_up + measured {
        if n == warm_up {
            ARMED.with(|a| a.set(true));
        }
        let b = flow.next_body(e.seq() * 10);
        run(&mut e, b, &mut out);
        max_events = max_events.max(out.len());
        for ev in &out {
            match ev {
                Event::Trade(_) => trades += 1,
                Event::Rejected(r) if matches!(r.reason, RejectReason::OrderCapacity | RejectReason::LevelCapacity) => {
                    rejects += 1
                }
                _ => {}
            }
        }
    }
    ARMED.with(|a| a.set(false));
    let allocs = ALLOCS.with(Cell::get);
    eprintln!(
        "{measured} commands after {warm_up} warm-up: {allocs} allocations; {trades} trades, {rejects} capacity rejects, \
         {} live orders, largest event batch {max_events}",
        e.live_orders()
    );
    // The mix must really exercise matching, or zero allocations would prove little.
    assert!(trades > measured / 20, "too few trades: {trades}");
    assert!(e.live_orders() > 100, "book too thin: {}", e.live_orders());
    assert!(rejects < measured / 100, "a full book exercises little: {rejects} capacity rejects");
    assert_eq!(allocs, 0, "the steady state must not allocate");
    e.check_invariants().unwrap();
}
