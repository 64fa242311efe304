//! Ground truth: the engine's best N levels after each LOBSTER message equal Nasdaq's
//! orderbook file row for row (data and provenance: bench/data/README.md).

use sable_bench::lobster::{parse_orderbook, parse_stream, replay_rows};

fn check(stream: &str, orderbook: &str, depth: usize, expected_rows: usize) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/");
    let cmds = parse_stream(&std::fs::read_to_string(format!("{dir}{stream}")).unwrap()).unwrap();
    let truth = parse_orderbook(&std::fs::read_to_string(format!("{dir}{orderbook}")).unwrap()).unwrap();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    let replayer = replay_rows(&cmds, depth, 1 << 16, |seq, row| {
        // Row 1 is the starting state seq 0 loads; rows from 2 on are the test.
        if seq < 2 {
            return;
        }
        let want = &truth[seq as usize - 1];
        assert_eq!(want.len(), depth * 4, "orderbook row {seq} width");
        compared += 1;
        if row != want.as_slice() && mismatches.len() < 5 {
            mismatches.push(format!("row {seq}:\n  engine {row:?}\n  truth  {want:?}"));
        }
    });
    assert!(mismatches.is_empty(), "{stream}: book differs from ground truth:\n{}", mismatches.join("\n"));
    assert_eq!(compared, expected_rows, "{stream}: rows compared");
    replayer.engine().check_invariants().unwrap();
}

#[test]
fn aapl_depth_10_matches_all_998_rows() {
    check("AAPL_2012-06-21_level10_first999.stream.csv", "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv", 10, 998);
}

#[test]
fn goog_full_day_depth_1_matches_all_49481_rows() {
    check("GOOG_2012-06-21_level1.stream.csv", "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv", 1, 49_481);
}
