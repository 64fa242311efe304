//! Every benchmarked engine, through its adapter, must reproduce the reference book's trade
//! count on each workload (matchcore only where no order trades through its limit, see
//! `engines::matchcore`). Small versions of the `matcher` workloads; seeds are printed.

use sable_bench::engines::matchcore::MatchcoreAdapter;
use sable_bench::engines::naive::NaiveAdapter;
use sable_bench::engines::orderbook_rs::ObAdapter;
use sable_bench::engines::sable::{RefMode, SableAdapter, limits_for};
use sable_bench::engines::{Adapter, Book, translate_all};
use sable_bench::ops::Workload;
use sable_bench::workloads::deep_book::{self, DeepParams};
use sable_bench::workloads::exchange_core_mix::{self, MixParams};
use sable_bench::workloads::goog_day;

fn trades<A: Adapter>(mut adapter: A, w: &Workload) -> (u64, u64) {
    let cmds = translate_all(&mut adapter, w);
    let mut book = adapter.new_book();
    for seg in &cmds {
        for c in seg {
            book.apply(c);
        }
    }
    (book.trades(), book.rejects())
}

fn check(w: &Workload) {
    let expected = w.reference.trades_total;
    assert!(expected > 0, "{}: the workload should trade", w.name);
    for mode in [RefMode::Id, RefMode::Client] {
        let (t, rejects) = trades(SableAdapter::new(w.ids, w.accounts, mode, limits_for(1 << 17)), w);
        assert_eq!(t, expected, "{}: sable ({mode:?}) trades", w.name);
        assert_eq!(rejects, w.reference.noop_commands_timed, "{}: sable ({mode:?}) rejects", w.name);
    }
    assert_eq!(trades(NaiveAdapter, w).0, expected, "{}: naive trades", w.name);
    assert_eq!(trades(ObAdapter, w).0, expected, "{}: orderbook-rs trades", w.name);
    if w.reference.through_limit_orders == 0 {
        assert_eq!(trades(MatchcoreAdapter::new(w.ids), w).0, expected, "{}: matchcore trades", w.name);
    }
}

#[test]
fn exchange_core_mix_trades_agree() {
    let seed = 0x5AB1E;
    println!("seed {seed:#x}");
    check(&exchange_core_mix::generate(MixParams::exchange_core(20_000, seed)));
}

#[test]
fn deep_book_trades_agree() {
    let seed = 0xDEE9;
    println!("seed {seed:#x}");
    check(&deep_book::generate(DeepParams { commands: 10_000, seed, resting_orders: 20_000, span_ticks: 500 }));
}

#[test]
fn goog_day_trades_agree() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/GOOG_2012-06-21_level1.stream.csv");
    let w = goog_day::load(&path, 1).expect("the GOOG stream is in bench/data");
    assert_eq!(w.reference.through_limit_orders, 0, "LOBSTER executions never trade through their limit");
    check(&w);
}
