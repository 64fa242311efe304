//! Replays a neutral LOBSTER-derived command stream through the engine and writes the book after
//! each seq in LOBSTER orderbook layout:
//!
//! `cargo run --release -p bench --bin replay -- --depth N STREAM.csv > BOOK.csv`

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use sable_bench::lobster::{parse_stream, replay_rows};

/// Replay a neutral command stream and print one LOBSTER orderbook row per seq.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Levels per side in each row.
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Live-order capacity of the engine.
    #[arg(long, default_value_t = 1 << 20)]
    max_orders: u32,
    /// The stream (`seq,action,order_id,side,price,qty`).
    stream: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.stream) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("replay: cannot read {}: {e}", args.stream.display());
            return ExitCode::FAILURE;
        }
    };
    let cmds = match parse_stream(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("replay: {}: {e}", args.stream.display());
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = None;
    let mut line = String::new();
    replay_rows(&cmds, args.depth, args.max_orders, |_, row| {
        if failed.is_some() {
            return;
        }
        line.clear();
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&v.to_string());
        }
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed.or_else(|| out.flush().err()) {
        eprintln!("replay: write failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
