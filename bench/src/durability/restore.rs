//! `restore_<n>m_{no_snapshot,snapshot}`: time to bring an engine back from disk.
//!
//! [`build`] writes a journal of `n` generated commands (committed `Written` every 1024, one
//! fsync at the end) while an engine applies them, and writes one snapshot near the end
//! (`n - 100,000` by default). Each restore then runs in a fresh child process (this binary
//! re-run with hidden arguments, [`child_main`]): `Journal::open_dir` (which verifies every
//! record of every segment) then `snapshot::restore` with no snapshot store (full replay) or
//! with the store (load the snapshot, replay the tail). The child prints its times and the
//! restored `state_hash`, which must equal the writer's.
//!
//! Page cache warm (the files were just written or read) and, when the page cache can be
//! dropped (`/proc/sys/vm/drop_caches`, root), cold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use engine::{Command, CountingSink, Engine};
use journal::{Durability, Journal, JournalConfig, MmapStorage};
use snapshot::SnapshotStore;

use super::{Ctx, LIMITS};
use crate::machine;
use crate::report::{Percentiles, histogram, summary_line};

/// The snapshot is taken this many commands before the journal's end (or at half the journal,
/// if shorter).
pub const SNAPSHOT_BEFORE_END: u64 = 100_000;
/// Warm restores per variant; the median is the headline.
const WARM_RUNS: usize = 3;
/// Commit group while building the journal.
const BUILD_GROUP: u64 = 1024;

/// A journal of generated commands and a snapshot, on disk.
#[derive(Debug)]
pub struct Built {
    /// The journal's directory.
    pub journal_dir: PathBuf,
    /// The snapshot store's directory.
    pub snapshot_dir: PathBuf,
    /// Commands in the journal (`1..=commands`).
    pub commands: u64,
    /// The writer's `state_hash` after the last command.
    pub final_hash: u64,
    /// Sequence number of the snapshot.
    pub snapshot_seq: u64,
}

/// Writes the journal and the snapshot under `ctx.dir`; returns them and the still-open journal
/// (for the replay case; drop it before restoring: the journal directory is locked).
pub fn build(ctx: &Ctx, commands: u64) -> (Built, Journal<MmapStorage>) {
    let journal_dir = ctx.dir.join("restore").join("journal");
    let snapshot_dir = ctx.dir.join("restore").join("snapshots");
    let snapshot_seq = commands.saturating_sub(SNAPSHOT_BEFORE_END).max(commands / 2).max(1);
    println!(
        "\n== restore: building a journal of {commands} commands (engine::sim::command_stream, seed {:#x}) with an \
         engine applying them, committing written every {BUILD_GROUP} and fsync at the end; snapshot at seq \
         {snapshot_seq}",
        ctx.seed
    );
    let mut journal = Journal::open_dir(&journal_dir, ctx.journal_config()).expect("the scratch journal opens");
    let store = SnapshotStore::open(&snapshot_dir).expect("the scratch snapshot directory opens");
    let mut engine = Engine::new(LIMITS);
    let mut sink = CountingSink::default();
    let mut buf = [0u8; Command::MAX_ENCODED_LEN];
    let started = Instant::now();
    for cmd in super::stream(ctx.seed).take(usize::try_from(commands).expect("command count fits")) {
        let body = cmd.encode(&mut buf).expect("Command::MAX_ENCODED_LEN holds any command");
        journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, body).expect("append on a healthy disk");
        engine.apply(&cmd, &mut sink).expect("the generated stream is numbered consecutively from 1");
        if cmd.seq.is_multiple_of(BUILD_GROUP) {
            journal.commit(Durability::Written).expect("commit on a healthy disk");
        }
        if cmd.seq == snapshot_seq {
            journal.commit(Durability::Fsync).expect("commit on a healthy disk");
            let t = Instant::now();
            let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            let info = store.write(&engine, now_ns).expect("snapshot write on a healthy disk");
            println!(
                "  snapshot at seq {}: {:.2} MiB image ({} live orders), written durably in {:.1} ms",
                info.seq,
                info.image_len_bytes as f64 / (1 << 20) as f64,
                engine.live_orders(),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    journal.commit(Durability::Fsync).expect("commit on a healthy disk");
    let build_s = started.elapsed().as_secs_f64();
    let bytes: u64 = journal.segments().map(|s| s.used_len_bytes).sum();
    println!(
        "  built in {build_s:.2} s ({:.2} M commands/s: generate + encode + append + apply); {} segments, {:.0} MiB of \
         records; {} live orders at the end, {} trades",
        commands as f64 / build_s / 1e6,
        journal.segments().len(),
        bytes as f64 / (1 << 20) as f64,
        engine.live_orders(),
        sink.trades
    );
    let built = Built { journal_dir, snapshot_dir, commands, final_hash: engine.state_hash(), snapshot_seq };
    (built, journal)
}

/// The child side: restores from `journal_dir` (and `snapshot_dir`, if given) and prints one
/// `restore_child key=value...` line.
pub fn child_main(journal_dir: &Path, snapshot_dir: Option<&Path>) -> ExitCode {
    let faults_before = machine::process_page_faults();
    let sched_before = machine::SchedStat::now();
    let started = Instant::now();
    let journal = match Journal::open_dir(journal_dir, JournalConfig::default()) {
        Ok(j) => j,
        Err(err) => {
            eprintln!("restore child: the journal does not open: {err}");
            return ExitCode::FAILURE;
        }
    };
    let open_s = started.elapsed().as_secs_f64();
    let store = match snapshot_dir.map(SnapshotStore::open).transpose() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("restore child: the snapshot store does not open: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (engine, report) = match snapshot::restore(store.as_ref(), &journal, LIMITS) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("restore child: restore failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    let total_s = started.elapsed().as_secs_f64();
    let faults = faults_before.zip(machine::process_page_faults()).map(|((a, b), (c, d))| (c - a, d - b));
    let sched = sched_before.zip(machine::SchedStat::now()).map(|(a, b)| b.since(a)).unwrap_or_default();
    // What creating an empty engine of these capacities costs on its own (part of both
    // restores: `Engine::new` for a replay from scratch, `Engine::load` for a snapshot).
    let t = Instant::now();
    drop(std::hint::black_box(Engine::new(LIMITS)));
    let engine_new_s = t.elapsed().as_secs_f64();
    println!(
        "restore_child total_s={total_s:.6} open_s={open_s:.6} restore_s={:.6} seq={} replayed={} snapshot_seq={} \
         state_hash={:#018x} peak_rss_kib={} minor_faults={} major_faults={} engine_new_s={engine_new_s:.6} \
         on_cpu_s={:.6} runqueue_s={:.6}",
        total_s - open_s,
        engine.seq(),
        report.replayed,
        report.snapshot.as_ref().map_or(0, |s| s.seq),
        engine.state_hash(),
        machine::peak_rss_kib().unwrap_or(0),
        faults.map_or(0, |f| f.0),
        faults.map_or(0, |f| f.1),
        sched.on_cpu_ns as f64 / 1e9,
        sched.runqueue_ns as f64 / 1e9,
    );
    ExitCode::SUCCESS
}

/// One child's report.
struct ChildRun {
    fields: HashMap<String, String>,
    /// Spawn to exit, as the parent saw it.
    process_s: f64,
}

impl ChildRun {
    fn f64(&self, key: &str) -> f64 {
        self.fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }

    fn text(&self, key: &str) -> &str {
        self.fields.get(key).map_or("?", String::as_str)
    }
}

fn run_child(built: &Built, with_snapshot: bool) -> Result<ChildRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--restore-child-journal").arg(&built.journal_dir);
    if with_snapshot {
        cmd.arg("--restore-child-snapshots").arg(&built.snapshot_dir);
    }
    let started = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot run the restore child: {e}"))?;
    let process_s = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("restore child failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let line = stdout.lines().find(|l| l.starts_with("restore_child ")).ok_or("restore child printed no result")?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Ok(ChildRun { fields, process_s })
}

/// Restores `built` in child processes, warm and (if possible) cold, and prints the results.
pub fn run(ctx: &mut Ctx, built: &Built) {
    let n = built.commands;
    let millions = n.div_ceil(1_000_000);
    println!(
        "\n== restore_{millions}m: each restore in a fresh child process (pinned like the main thread, single-threaded): \
         Journal::open_dir (verifies every record) + snapshot::restore; {WARM_RUNS} warm runs per variant (median \
         reported), then one cold run each if the page cache can be dropped"
    );
    let variants = [("no_snapshot", false), ("snapshot", true)];
    let mut warm: [Vec<ChildRun>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..WARM_RUNS {
        for (i, &(_, with_snapshot)) in variants.iter().enumerate() {
            match run_child(built, with_snapshot) {
                Ok(r) => warm[i].push(r),
                Err(e) => println!("  [restore] {e}"),
            }
        }
    }
    let mut cold: [Option<ChildRun>; 2] = [None, None];
    let mut cold_note = String::new();
    for (i, &(_, with_snapshot)) in variants.iter().enumerate() {
        match machine::drop_page_cache() {
            Ok(()) => match run_child(built, with_snapshot) {
                Ok(r) => cold[i] = Some(r),
                Err(e) => println!("  [restore] {e}"),
            },
            Err(e) => {
                cold_note = format!("page cache could not be dropped ({e}): no cold runs");
                break;
            }
        }
    }
    if cold_note.is_empty() {
        cold_note =
            "page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each cold run: it worked".into();
    }
    println!("  {cold_note}");

    for (i, &(variant, _)) in variants.iter().enumerate() {
        let mut runs: Vec<(&ChildRun, &str)> = warm[i].iter().map(|r| (r, "warm")).collect();
        runs.extend(cold[i].iter().map(|r| (r, "cold")));
        for (r, cache) in &runs {
            let ok = r.text("state_hash") == format!("{:#018x}", built.final_hash) && r.text("seq") == n.to_string();
            println!(
                "  [restore_{millions}m_{variant}] {cache}: {:.3} s in the child (open {:.3} s + restore {:.3} s), \
                 {:.3} s spawn to exit; replayed {} from snapshot {}; peak RSS {} KiB; page faults {} minor, {} major; \
                 Engine::new alone {:.3} s; on CPU {:.3} s, waiting for a CPU {:.3} s; state_hash {} {}",
                r.f64("total_s"),
                r.f64("open_s"),
                r.f64("restore_s"),
                r.process_s,
                r.text("replayed"),
                r.text("snapshot_seq"),
                r.text("peak_rss_kib"),
                r.text("minor_faults"),
                r.text("major_faults"),
                r.f64("engine_new_s"),
                r.f64("on_cpu_s"),
                r.f64("runqueue_s"),
                r.text("state_hash"),
                if ok { "= writer's -> OK" } else { "!= writer's -> MISMATCH" }
            );
        }
        for (cache, group) in [("warm", &warm[i][..]), ("cold", cold[i].as_slice())] {
            if group.is_empty() {
                continue;
            }
            let mut h = histogram();
            for r in group {
                h.saturating_record((r.f64("total_s") * 1e9) as u64);
            }
            let p = Percentiles::from_raw(&h);
            let median = |key: &str| {
                let mut v: Vec<f64> = group.iter().map(|r| r.f64(key)).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let total_s = median("total_s");
            let verified = group.iter().all(|r| {
                r.text("state_hash") == format!("{:#018x}", built.final_hash) && r.text("seq") == n.to_string()
            });
            let name = match cache {
                "warm" => format!("restore_{millions}m_{variant}"),
                _ => format!("restore_{millions}m_{variant}_cold"),
            };
            println!(
                "  [{name}] median {total_s:.3} s: {:.2} M commands/s restored ({n} commands, {} runs)",
                n as f64 / total_s / 1e6,
                group.len()
            );
            let line = summary_line(&name, "sable", n, n as f64 / total_s, &p)
                + &format!(
                    " runs={} seconds={total_s:.3} open_s={:.3} restore_s={:.3} replayed={} snapshot_seq={} cache={cache} \
                     verified={}",
                    group.len(),
                    median("open_s"),
                    median("restore_s"),
                    group[0].text("replayed"),
                    group[0].text("snapshot_seq"),
                    if verified { "yes" } else { "NO" }
                );
            ctx.summary(line);
            if variant == "snapshot" {
                let slot = if cache == "warm" {
                    &mut ctx.targets.restore_snapshot_warm_s
                } else {
                    &mut ctx.targets.restore_snapshot_cold_s
                };
                *slot = Some((total_s, n));
            }
        }
    }
}
