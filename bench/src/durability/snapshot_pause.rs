//! `snapshot_pause`: does a snapshot pause the matcher?
//!
//! The matcher thread applies pre-generated commands and publishes each into a ring consumed by
//! a follower thread ([`snapshot::Follower`]: a second engine that applies the same commands and
//! writes a snapshot every N). The same run is made twice, snapshots disabled
//! (`every = u64::MAX`, `snapshot_pause_off`) and enabled (`snapshot_pause`), and the matcher's
//! per-command distributions are compared. The follower timestamps each snapshot, so the
//! matcher's commands that started while one was being written are also reported on their own.
//!
//! On two cores the follower's snapshot work (serialising the image, the write, the fsync's
//! kernel work) competes with everything else the machine runs; the ring decouples the matcher
//! from the follower only while it has free slots.

use std::sync::{Arc, mpsc};
use std::time::Instant;

use disruptor::wait_strategies::WaitStrategy;
use disruptor::{BusySpin, ProcessorSettings, Sequence, build_single_producer};
use engine::{Command, Engine};
use hdrhistogram::Histogram;
use snapshot::{Follower, Retention, SnapshotStore};

use super::matcher::{LAG_SAMPLE_EVERY, MatcherRun, RingHook, run_matcher};
use super::ring::{Ready, RingFull, SharedSeq, Slot, empty_slot};
use super::{Ctx, LIMITS};
use crate::machine::{self, SchedStat};
use crate::report::{Percentiles, histogram, summary_line};
use crate::timing::{self, Ticker};
use crate::wait::{Wait, Yield};

/// Snapshots kept by the follower's retention.
const KEEP_SNAPSHOTS: usize = 2;

/// One snapshot as the follower saw it.
#[derive(Clone, Copy, Debug)]
struct SnapshotTiming {
    seq: u64,
    start_tick: u64,
    end_tick: u64,
    image_len_bytes: u64,
}

/// The follower thread's state.
struct FollowerState {
    follower: Follower,
    applied_seq: Arc<SharedSeq>,
    stats: Option<FollowerStats>,
    out: mpsc::Sender<FollowerStats>,
}

struct FollowerStats {
    /// How pinning the follower thread went.
    pinned: String,
    /// The follower thread's scheduler counters when it started; replaced by the difference
    /// when it stops.
    sched: Option<SchedStat>,
    snapshots: Vec<SnapshotTiming>,
    failure: Option<String>,
    /// The follower engine's `state_hash` when it stopped.
    final_hash: u64,
}

impl Drop for FollowerState {
    fn drop(&mut self) {
        if let Some(mut stats) = self.stats.take() {
            stats.sched = stats.sched.zip(SchedStat::now()).map(|(start, end)| end.since(start));
            stats.final_hash = self.follower.engine().state_hash();
            // The receiver is gone only if the matcher's side already gave up; nothing to do.
            let _ = self.out.send(stats);
        }
    }
}

fn follow_one(f: &mut FollowerState, slot: &Slot, _ring_seq: Sequence, end_of_batch: bool) {
    let Some(stats) = f.stats.as_mut() else { return };
    if stats.failure.is_some() {
        return;
    }
    let t0 = timing::start();
    match f.follower.apply(&slot.cmd) {
        Ok(None) => {}
        Ok(Some(info)) => stats.snapshots.push(SnapshotTiming {
            seq: info.seq,
            start_tick: t0,
            end_tick: timing::stop(),
            image_len_bytes: info.image_len_bytes,
        }),
        Err(err) => stats.failure = Some(format!("at seq {}: {err}", slot.cmd.seq)),
    }
    if end_of_batch {
        f.applied_seq.store(slot.cmd.seq);
    }
}

struct PauseRun {
    run: MatcherRun,
    full: RingFull,
    lag: Histogram<u64>,
    follower: FollowerStats,
}

fn run_once<W: WaitStrategy + 'static>(ctx: &Ctx, cmds: &[Command], every: u64, wait: W) -> PauseRun {
    let dir = tempfile::Builder::new().prefix("snapshot_pause-").tempdir_in(&ctx.dir).expect("scratch dir");
    let store = SnapshotStore::open(dir.path()).expect("the scratch snapshot directory opens");
    let follower =
        Follower::new(Engine::new(LIMITS), store, every, Retention { keep_last: KEEP_SNAPSHOTS, max_age_ns: None });
    let applied_seq = Arc::new(SharedSeq::default());
    let (tx, rx) = mpsc::channel();
    let ready = Arc::new(Ready::default());
    let init = {
        let applied_seq = Arc::clone(&applied_seq);
        let ready = Arc::clone(&ready);
        let core = ctx.placement.consumer;
        // Pinned here, on the follower thread: the thread inherits the matcher's one-core mask,
        // and disruptor's `pin_at_core` refuses cores outside the calling thread's mask.
        move || {
            let state = FollowerState {
                follower,
                applied_seq,
                stats: Some(FollowerStats {
                    pinned: core.map_or_else(|| "unpinned".to_string(), machine::pin_current),
                    sched: SchedStat::now(),
                    snapshots: Vec::with_capacity(1024),
                    failure: None,
                    final_hash: 0,
                }),
                out: tx,
            };
            ready.set();
            state
        }
    };
    let builder = build_single_producer(ctx.ring_slots, empty_slot, wait).thread_name("follower");
    let producer = builder.handle_events_and_state_with(follow_one, init).build();
    ready.wait();
    let mut hook = RingHook::new(producer, applied_seq);
    let run = run_matcher(cmds, &mut hook);
    let RingHook { producer, full, lag, .. } = hook;
    drop(producer);
    let follower = rx.recv().expect("the follower reports when it stops");
    PauseRun { run, full, lag, follower }
}

fn run_with(ctx: &Ctx, cmds: &[Command], every: u64) -> PauseRun {
    match ctx.wait {
        Wait::Yield => run_once(ctx, cmds, every, Yield),
        Wait::Spin => run_once(ctx, cmds, every, BusySpin),
    }
}

/// Splits the matcher's commands into those whose window opened while the follower was writing
/// a snapshot and the others.
fn split_by_snapshots(run: &MatcherRun, snapshots: &[SnapshotTiming]) -> (Histogram<u64>, Histogram<u64>) {
    let (mut during, mut outside) = (histogram(), histogram());
    let mut windows = snapshots.iter().peekable();
    // Both sequences are in tick order: walk them together.
    for &(start, ticks) in &run.timeline {
        while windows.peek().is_some_and(|w| w.end_tick < start) {
            windows.next();
        }
        let inside = windows.peek().is_some_and(|w| w.start_tick <= start);
        if inside { &mut during } else { &mut outside }.saturating_record(ticks.max(1));
    }
    (during, outside)
}

fn describe_run(ticker: &Ticker, case: &str, r: &PauseRun, p: &Percentiles) {
    println!(
        "  [{case}] matcher per-command ns (publish + apply): {}; throughput {:.2} M commands/s",
        p.describe(),
        r.run.ops_per_s() / 1e6
    );
    println!(
        "  [{case}] ring full at publish: {} times, matcher waited {:.2} ms in total, longest {:.3} ms; follower lag \
         (records, sampled every {LAG_SAMPLE_EVERY}): {}",
        r.full.events,
        ticker.ns(r.full.waited_ticks) / 1e6,
        ticker.ns(r.full.longest_wait_ticks) / 1e6,
        Percentiles::from_raw(&r.lag).describe()
    );
    let none = || "unknown".to_string();
    println!(
        "  [{case}] matcher thread: {}; follower thread: {}",
        r.run.sched.map_or_else(none, |s| s.describe()),
        r.follower.sched.map_or_else(none, |s| s.describe())
    );
    let hash = r.run.engine.state_hash();
    let verdict = if r.follower.final_hash == hash && r.follower.failure.is_none() { "OK" } else { "MISMATCH" };
    println!(
        "  [{case}] follower thread pinned: {}; follower state_hash {:#018x} vs matcher {hash:#018x} -> {verdict}{}",
        r.follower.pinned,
        r.follower.final_hash,
        r.follower.failure.as_ref().map_or(String::new(), |f| format!(" (follower failed: {f})"))
    );
}

/// Runs `snapshot_pause_off` then `snapshot_pause` over `commands` commands, snapshotting every
/// `every` commands in the second run.
pub fn run(ctx: &mut Ctx, commands: u64, every: u64) {
    println!(
        "\n== snapshot_pause: {commands} commands; follower (snapshot::Follower, {}) snapshots every {every} commands \
         into a scratch directory on the data directory's file system, keeping {KEEP_SNAPSHOTS}; threads: {}; ring of \
         {} slots; the same run with snapshots disabled (every = u64::MAX) first",
        ctx.wait.describe(),
        ctx.placement.describe(),
        ctx.ring_slots
    );
    let t = Instant::now();
    let cmds = super::pregenerate(ctx.seed, commands);
    println!("  generated in {:.2} s", t.elapsed().as_secs_f64());
    let ticker = ctx.ticker;

    let off = run_with(ctx, &cmds, u64::MAX);
    let p_off = Percentiles::from_ticks(&off.run.histogram(), &ticker);
    describe_run(&ticker, "snapshot_pause_off", &off, &p_off);
    let mut line = summary_line("snapshot_pause_off", "sable", commands, off.run.ops_per_s(), &p_off);
    line.push_str(&format!(" p999_ns={:.0} ring_full={} snapshots=0", p_off.p999_ns, off.full.events));
    ctx.summary(line);

    let on = run_with(ctx, &cmds, every);
    let p_on = Percentiles::from_ticks(&on.run.histogram(), &ticker);
    describe_run(&ticker, "snapshot_pause", &on, &p_on);
    let snaps = &on.follower.snapshots;
    let mut snap_ms = histogram();
    for s in snaps {
        snap_ms.saturating_record((ticker.ns(s.end_tick - s.start_tick) / 1e3).max(1.0) as u64);
    }
    let snap_us = Percentiles::from_raw(&snap_ms);
    let detail: Vec<String> = snaps
        .iter()
        .map(|s| {
            format!(
                "{}: {:.1} ms {:.2} MiB",
                s.seq,
                ticker.ns(s.end_tick - s.start_tick) / 1e6,
                s.image_len_bytes as f64 / (1 << 20) as f64
            )
        })
        .collect();
    println!(
        "  [snapshot_pause] {} snapshots written by the follower (Engine::save + write + fsync + rename + dir fsync + \
         retention): {}",
        snaps.len(),
        detail.join("; ")
    );
    println!(
        "  [snapshot_pause] snapshot time on the follower ms: p50 {:.1}  max {:.1}",
        snap_us.p50_ns / 1e3,
        snap_us.max_ns / 1e3
    );
    let (during, outside) = split_by_snapshots(&on.run, snaps);
    let (p_during, p_outside) = (Percentiles::from_ticks(&during, &ticker), Percentiles::from_ticks(&outside, &ticker));
    println!(
        "  [snapshot_pause] matcher commands whose window opened while the follower was writing a snapshot: {} of {}; \
         their ns: {}",
        p_during.count,
        commands,
        p_during.describe()
    );
    println!("  [snapshot_pause] the other commands' ns: {}", p_outside.describe());
    println!(
        "  [snapshot_pause] on - off: p50 {:+.0} ns, p99 {:+.0} ns, p99.9 {:+.0} ns, p99.99 {:+.0} ns, max {:+.0} ns \
         (ratios {:.3} / {:.3} / {:.3} / {:.3} / {:.3})",
        p_on.p50_ns - p_off.p50_ns,
        p_on.p99_ns - p_off.p99_ns,
        p_on.p999_ns - p_off.p999_ns,
        p_on.p9999_ns - p_off.p9999_ns,
        p_on.max_ns - p_off.max_ns,
        p_on.p50_ns / p_off.p50_ns,
        p_on.p99_ns / p_off.p99_ns,
        p_on.p999_ns / p_off.p999_ns,
        p_on.p9999_ns / p_off.p9999_ns,
        p_on.max_ns / p_off.max_ns,
    );
    let mut line = summary_line("snapshot_pause", "sable", commands, on.run.ops_per_s(), &p_on);
    line.push_str(&format!(
        " p999_ns={:.0} d_p999_ns={:+.0} d_p9999_ns={:+.0} d_max_ns={:+.0} ring_full={} snapshots={} \
         snapshot_ms_p50={:.1} snapshot_ms_max={:.1} snapshot_bytes_last={} during_snapshot_p99_ns={:.0} \
         during_snapshot_max_ns={:.0}",
        p_on.p999_ns,
        p_on.p999_ns - p_off.p999_ns,
        p_on.p9999_ns - p_off.p9999_ns,
        p_on.max_ns - p_off.max_ns,
        on.full.events,
        snaps.len(),
        snap_us.p50_ns / 1e3,
        snap_us.max_ns / 1e3,
        snaps.last().map_or(0, |s| s.image_len_bytes),
        p_during.p99_ns,
        p_during.max_ns
    ));
    ctx.summary(line);
}
