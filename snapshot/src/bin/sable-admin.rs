//! Journal and snapshot tools until they join the `sable` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use snapshot::cli::{JournalCmd, SnapshotCmd, run_journal, run_snapshot};

/// sable journal and snapshot tools.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Inspect, verify, dump or archive a journal.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// List, verify, restore or take snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
}

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = match Args::parse().cmd {
        Cmd::Journal(c) => run_journal(c, &mut out),
        Cmd::Snapshot(c) => run_snapshot(c, &mut out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sable-admin: {e}");
            ExitCode::FAILURE
        }
    }
}
