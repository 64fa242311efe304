//! `matcher_path_*`: what journaling adds to the matcher thread's per-command time.
//!
//! - `none`: the matcher applies each command, nothing else.
//! - `written_thread`, `fsync_thread`: the matcher, which is also the sequencer and so the
//!   ring's single producer, publishes each command into a `disruptor` ring, then applies it. A
//!   journaler thread, the single consumer, encodes each command (`Command::encode`), appends it
//!   (`Command::RECORD_KIND`) and commits at the end of every batch the ring hands it, at
//!   `Written` or `Fsync`: group commit, a batch being whatever was published while the
//!   previous commit ran.
//! - `written_inline`: the matcher encodes, appends and commits (`Written`) each command itself.
//!
//! The machine is shared, so the cases run in several rounds, interleaved, and each journaled
//! case's p50 is compared with the `none` run of the same round.
//!
//! The matcher's timed window is publish (or the inline append) + apply. Holding outputs until
//! their command is durable (the gateway's job) is not modelled: the matcher never waits for the
//! journal here, so how far the journal lagged is reported instead. At the end the journal is
//! reopened from disk and replayed into a fresh engine, whose `state_hash` must equal the
//! matcher's.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use disruptor::wait_strategies::WaitStrategy;
use disruptor::{BusySpin, ProcessorSettings, Sequence, build_single_producer};
use engine::{Command, Engine};
use hdrhistogram::Histogram;
use journal::{Durability, Journal, MmapStorage};

use super::matcher::{Bare, Hook, LAG_SAMPLE_EVERY, MatcherRun, RingHook, run_matcher};
use super::ring::{Ready, RingFull, SharedSeq, Slot, empty_slot};
use super::{Ctx, LIMITS};
use crate::machine::{self, SchedStat};
use crate::report::{Percentiles, histogram, summary_line};
use crate::timing;
use crate::wait::{Wait, Yield};

/// How a case journals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not at all.
    None,
    /// On a journaler thread fed through the ring, committing at this level.
    Thread(Durability),
    /// On the matcher thread, committing every command at this level.
    Inline(Durability),
}

/// The cases; `none` first (the others are compared with it).
pub const CASES: [(&str, Mode); 4] = [
    ("none", Mode::None),
    ("written_thread", Mode::Thread(Durability::Written)),
    ("fsync_thread", Mode::Thread(Durability::Fsync)),
    ("written_inline", Mode::Inline(Durability::Written)),
];

/// The journaler thread's state: the journal and what it measures.
struct Journaler {
    journal: Journal<MmapStorage>,
    durability: Durability,
    buf: [u8; Command::MAX_ENCODED_LEN],
    durable_seq: Arc<SharedSeq>,
    segments: usize,
    /// Taken and sent to the matcher's side when the thread stops.
    stats: Option<JournalerStats>,
    out: mpsc::Sender<JournalerStats>,
}

/// What the journaler measured.
struct JournalerStats {
    /// How pinning the journaler thread went.
    pinned: String,
    /// The journaler thread's scheduler counters when it started; replaced by the difference
    /// when it stops.
    sched: Option<SchedStat>,
    /// Publish ticks of the records appended since the last commit (capacity: the ring's size,
    /// the largest batch the ring can hand over).
    pending: Vec<u64>,
    /// Ticks per record: encode + append.
    append: Histogram<u64>,
    /// Ticks per commit.
    commit: Histogram<u64>,
    /// Records per commit.
    batch: Histogram<u64>,
    /// Ticks from the matcher's publish to the end of the commit covering the record.
    ack: Histogram<u64>,
    /// (first seq of the new segment, ticks of the append that rolled over).
    rollovers: Vec<(u64, u64)>,
    last_durable_tick: u64,
    records: u64,
    failure: Option<String>,
}

impl Drop for Journaler {
    fn drop(&mut self) {
        if let Some(mut stats) = self.stats.take() {
            stats.sched = stats.sched.zip(SchedStat::now()).map(|(start, end)| end.since(start));
            // The receiver is gone only if the matcher's side already gave up; nothing to do.
            let _ = self.out.send(stats);
        }
    }
}

/// The journaler's event handler: append every command, commit at the end of each batch.
fn journal_one(j: &mut Journaler, slot: &Slot, _ring_seq: Sequence, end_of_batch: bool) {
    let Some(stats) = j.stats.as_mut() else { return };
    if stats.failure.is_some() {
        return;
    }
    let t0 = timing::start();
    let body = slot.cmd.encode(&mut j.buf).expect("Command::MAX_ENCODED_LEN holds any command");
    if let Err(err) = j.journal.append(slot.cmd.seq, slot.cmd.ts_ns, Command::RECORD_KIND, body) {
        stats.failure = Some(format!("append {}: {err}", slot.cmd.seq));
        return;
    }
    let t1 = timing::stop();
    stats.append.saturating_record((t1 - t0).max(1));
    stats.records += 1;
    stats.pending.push(slot.published_tick);
    let segments = j.journal.segments().len();
    if segments != j.segments {
        j.segments = segments;
        stats.rollovers.push((slot.cmd.seq, t1 - t0));
    }
    if end_of_batch {
        let c0 = timing::start();
        if let Err(err) = j.journal.commit(j.durability) {
            stats.failure = Some(format!("commit at {}: {err}", slot.cmd.seq));
            return;
        }
        let c1 = timing::stop();
        stats.commit.saturating_record((c1 - c0).max(1));
        stats.batch.saturating_record(stats.pending.len() as u64);
        for &published in &stats.pending {
            stats.ack.saturating_record(c1.saturating_sub(published).max(1));
        }
        stats.pending.clear();
        stats.last_durable_tick = c1;
        j.durable_seq.store(slot.cmd.seq);
    }
}

/// Journals on the matcher thread itself.
struct InlineHook {
    journal: Journal<MmapStorage>,
    durability: Durability,
    buf: [u8; Command::MAX_ENCODED_LEN],
    segments: usize,
    rollovers: Vec<(u64, u64)>,
}

impl Hook for InlineHook {
    #[inline(always)]
    fn before_apply(&mut self, cmd: &Command, _t0: u64) {
        let body = cmd.encode(&mut self.buf).expect("Command::MAX_ENCODED_LEN holds any command");
        self.journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, body).expect("append on a healthy disk");
        self.journal.commit(self.durability).expect("commit on a healthy disk");
    }

    #[inline(always)]
    fn after_window(&mut self, cmd: &Command, ticks: u64) {
        let segments = self.journal.segments().len();
        if segments != self.segments {
            self.segments = segments;
            self.rollovers.push((cmd.seq, ticks));
        }
    }
}

/// One case's outcome.
struct CaseResult {
    run: MatcherRun,
    full: RingFull,
    lag: Option<Histogram<u64>>,
    journaler: Option<JournalerStats>,
    inline_rollovers: Vec<(u64, u64)>,
}

/// Runs the threaded case with the consumer waiting by `wait`.
fn run_threaded<W: WaitStrategy + 'static>(
    ctx: &Ctx,
    cmds: &[Command],
    durability: Durability,
    dir: &Path,
    wait: W,
) -> CaseResult {
    let journal = Journal::open_dir(dir, ctx.journal_config()).expect("the scratch journal opens");
    let durable_seq = Arc::new(SharedSeq::default());
    let (tx, rx) = mpsc::channel();
    let ready = Arc::new(Ready::default());
    let ring_slots = ctx.ring_slots;
    let init = {
        let durable_seq = Arc::clone(&durable_seq);
        let segments = journal.segments().len();
        let ready = Arc::clone(&ready);
        let core = ctx.placement.consumer;
        // Pinned here, on the journaler thread: the thread inherits the matcher's one-core mask,
        // and disruptor's `pin_at_core` refuses cores outside the calling thread's mask.
        move || {
            let state = Journaler {
                segments,
                journal,
                durability,
                buf: [0; Command::MAX_ENCODED_LEN],
                durable_seq,
                stats: Some(JournalerStats {
                    pinned: core.map_or_else(|| "unpinned".to_string(), machine::pin_current),
                    sched: SchedStat::now(),
                    pending: Vec::with_capacity(ring_slots),
                    append: histogram(),
                    commit: histogram(),
                    batch: histogram(),
                    ack: histogram(),
                    rollovers: Vec::with_capacity(64),
                    last_durable_tick: 0,
                    records: 0,
                    failure: None,
                }),
                out: tx,
            };
            ready.set();
            state
        }
    };
    let builder = build_single_producer(ring_slots, empty_slot, wait).thread_name("journaler");
    let producer = builder.handle_events_and_state_with(journal_one, init).build();
    ready.wait();
    let mut hook = RingHook::new(producer, durable_seq);
    let run = run_matcher(cmds, &mut hook);
    let RingHook { producer, full, lag, .. } = hook;
    // Dropping the producer lets the journaler drain the ring, then joins it.
    drop(producer);
    let stats = rx.recv().expect("the journaler reports when it stops");
    CaseResult { run, full, lag: Some(lag), journaler: Some(stats), inline_rollovers: Vec::new() }
}

/// Reopens the journal in `dir` and replays it into a fresh engine: it must hold exactly
/// `1..=n` and reproduce `expected_hash`. Returns (ok, description).
fn verify(dir: &Path, n: u64, expected_hash: u64) -> (bool, String) {
    let journal = match Journal::open_dir(dir, journal::JournalConfig::default()) {
        Ok(j) => j,
        Err(err) => return (false, format!("the journal does not reopen: {err}")),
    };
    let (first, last) = (journal.first_seq(), journal.appended_seq());
    let mut engine = Engine::new(LIMITS);
    let t = Instant::now();
    let replayed = match snapshot::replay_journal(&mut engine, &journal) {
        Ok(r) => r,
        Err(err) => return (false, format!("replay failed: {err}")),
    };
    let replay_s = t.elapsed().as_secs_f64();
    let hash = engine.state_hash();
    let ok = first == 1 && last == n && replayed == n && hash == expected_hash;
    let verdict = if ok { "OK" } else { "MISMATCH" };
    (
        ok,
        format!(
            "journal holds seq {first}..={last} ({replayed} records replayed in {replay_s:.2} s, expected {n}); replayed \
             state_hash {hash:#018x} vs matcher {expected_hash:#018x} -> {verdict}"
        ),
    )
}

fn ms(ticker: &timing::Ticker, ticks: u64) -> f64 {
    ticker.ns(ticks) / 1e6
}

/// What one case accumulates over the rounds.
struct Agg {
    /// Matcher per-command ticks, every round.
    hist: Histogram<u64>,
    /// Matcher p50 (ns) per round, in round order.
    p50_ns: Vec<f64>,
    ops_per_s: Vec<f64>,
    minor_faults: u64,
    trades: u64,
    full: RingFull,
    lag: Histogram<u64>,
    append: Histogram<u64>,
    commit: Histogram<u64>,
    batch: Histogram<u64>,
    ack: Histogram<u64>,
    /// (round, seq, ticks).
    rollovers: Vec<(usize, u64, u64)>,
    durable_ops_per_s: Vec<f64>,
    pinned: Vec<String>,
    failures: Vec<String>,
    verified: Vec<(bool, String)>,
    matcher_sched: SchedStat,
    journaler_sched: SchedStat,
}

impl Agg {
    fn new() -> Self {
        Agg {
            hist: histogram(),
            p50_ns: Vec::new(),
            ops_per_s: Vec::new(),
            minor_faults: 0,
            trades: 0,
            full: RingFull::default(),
            lag: histogram(),
            append: histogram(),
            commit: histogram(),
            batch: histogram(),
            ack: histogram(),
            rollovers: Vec::new(),
            durable_ops_per_s: Vec::new(),
            pinned: Vec::new(),
            failures: Vec::new(),
            verified: Vec::new(),
            matcher_sched: SchedStat::default(),
            journaler_sched: SchedStat::default(),
        }
    }

    fn add(&mut self, ctx: &Ctx, round: usize, result: CaseResult) {
        let h = result.run.histogram();
        self.p50_ns.push(ctx.ticker.ns(h.value_at_quantile(0.5)));
        self.hist.add(&h).expect("same bounds");
        self.ops_per_s.push(result.run.ops_per_s());
        self.minor_faults += result.run.minor_faults.unwrap_or(0);
        self.trades = result.run.trades;
        add_sched(&mut self.matcher_sched, result.run.sched);
        self.full.events += result.full.events;
        self.full.waited_ticks += result.full.waited_ticks;
        self.full.longest_wait_ticks = self.full.longest_wait_ticks.max(result.full.longest_wait_ticks);
        if let Some(lag) = &result.lag {
            self.lag.add(lag).expect("same bounds");
        }
        self.rollovers.extend(result.inline_rollovers.iter().map(|&(seq, t)| (round, seq, t)));
        if let Some(j) = &result.journaler {
            for (into, from) in [
                (&mut self.append, &j.append),
                (&mut self.commit, &j.commit),
                (&mut self.batch, &j.batch),
                (&mut self.ack, &j.ack),
            ] {
                into.add(from).expect("same bounds");
            }
            self.rollovers.extend(j.rollovers.iter().map(|&(seq, t)| (round, seq, t)));
            let durable_s = ctx.ticker.ns(j.last_durable_tick.saturating_sub(result.run.first_tick())) / 1e9;
            self.durable_ops_per_s.push(j.records as f64 / durable_s);
            self.pinned.push(j.pinned.clone());
            self.failures.extend(j.failure.clone());
            add_sched(&mut self.journaler_sched, j.sched);
        }
    }
}

fn add_sched(into: &mut SchedStat, from: Option<SchedStat>) {
    if let Some(s) = from {
        into.on_cpu_ns += s.on_cpu_ns;
        into.runqueue_ns += s.runqueue_ns;
        into.preemptions += s.preemptions;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn list(values: &[f64], precision: usize) -> String {
    values.iter().map(|v| format!("{v:.precision$}")).collect::<Vec<_>>().join(" / ")
}

/// Runs every case `rounds` times over the same `commands` pre-generated commands, the cases'
/// order rotating each round so that none always runs first or last, and prints the results.
/// `added_p50_ns` is the median over rounds of (case p50 - `none` p50 of the same round).
pub fn run(ctx: &mut Ctx, commands: u64, rounds: usize) {
    let rounds = rounds.max(1);
    println!(
        "\n== matcher_path: {commands} commands of engine::sim::command_stream (seed {:#x}); {rounds} rounds of the \
         {} cases, order rotated each round, each run on a fresh engine and journal; ring of {} slots",
        ctx.seed,
        CASES.len(),
        ctx.ring_slots
    );
    println!(
        "  threads: matcher = this thread ({}) publishes + applies (waits only when the ring is full: disruptor's \
         publish busy-spins); journaler = disruptor-managed thread ({}), wait strategy {}; timed window per command \
         = publish (or inline append + commit) + apply; journal lag = published seq - durable seq, sampled every {} \
         commands outside the window; append->durable = matcher's publish tick to the journaler's tick after the \
         commit covering the record (TSC read on two cores: assumes synchronised constant TSCs)",
        ctx.placement.matcher.map_or("unpinned".into(), |c| format!("core {}", c.id)),
        ctx.placement.consumer.map_or("unpinned".into(), |c| format!("core {}", c.id)),
        ctx.wait.describe(),
        LAG_SAMPLE_EVERY
    );
    let t = Instant::now();
    let cmds = super::pregenerate(ctx.seed, commands);
    println!("  generated in {:.2} s", t.elapsed().as_secs_f64());

    let ticker = ctx.ticker;
    let mut aggs: Vec<Agg> = CASES.iter().map(|_| Agg::new()).collect();
    for round in 0..rounds {
        let mut order = Vec::new();
        for k in 0..CASES.len() {
            let index = (k + round) % CASES.len();
            let (name, mode) = CASES[index];
            order.push(name);
            let dir = tempfile::Builder::new().prefix("matcher_path-").tempdir_in(&ctx.dir).expect("scratch dir");
            let result = match mode {
                Mode::None => CaseResult {
                    run: run_matcher(&cmds, &mut Bare),
                    full: RingFull::default(),
                    lag: None,
                    journaler: None,
                    inline_rollovers: Vec::new(),
                },
                Mode::Thread(durability) => match ctx.wait {
                    Wait::Yield => run_threaded(ctx, &cmds, durability, dir.path(), Yield),
                    Wait::Spin => run_threaded(ctx, &cmds, durability, dir.path(), BusySpin),
                },
                Mode::Inline(durability) => {
                    let journal =
                        Journal::open_dir(dir.path(), ctx.journal_config()).expect("the scratch journal opens");
                    let segments = journal.segments().len();
                    let mut hook = InlineHook {
                        segments,
                        journal,
                        durability,
                        buf: [0; Command::MAX_ENCODED_LEN],
                        rollovers: Vec::with_capacity(64),
                    };
                    let run = run_matcher(&cmds, &mut hook);
                    let rollovers = std::mem::take(&mut hook.rollovers);
                    drop(hook);
                    CaseResult {
                        run,
                        full: RingFull::default(),
                        lag: None,
                        journaler: None,
                        inline_rollovers: rollovers,
                    }
                }
            };
            if mode != Mode::None {
                let verified = verify(dir.path(), commands, result.run.engine.state_hash());
                aggs[index].verified.push(verified);
            }
            aggs[index].add(ctx, round, result);
        }
        println!("  round {}: {} (load average {})", round + 1, order.join(", "), machine::loadavg());
    }

    let none_p50 = aggs[0].p50_ns.clone();
    for ((name, mode), agg) in CASES.iter().zip(&aggs) {
        let case = format!("matcher_path_{name}");
        let p = Percentiles::from_ticks(&agg.hist, &ticker);
        let added: Vec<f64> = agg.p50_ns.iter().zip(&none_p50).map(|(c, n)| c - n).collect();
        let (added_ns, ratio) = (median(&added), median(&agg.p50_ns) / median(&none_p50));
        let ops = median(&agg.ops_per_s);
        println!(
            "  [{case}] matcher per-command ns (window), {rounds} rounds merged: {}; throughput (median of rounds) {:.2} \
             M commands/s; minor page faults in loops: {}",
            p.describe(),
            ops / 1e6,
            agg.minor_faults
        );
        println!("  [{case}] p50 per round ns: {}", list(&agg.p50_ns, 0));
        println!("  [{case}] matcher thread, all rounds: {}", agg.matcher_sched.describe());
        if *mode != Mode::None {
            println!(
                "  [{case}] added to the matcher's p50 vs matcher_path_none, per round: {} ns; median {added_ns:+.0} ns \
                 (ratio of median p50s {ratio:.3})",
                list(&added, 0)
            );
        }
        let mut line = summary_line(&case, "sable", commands, ops, &p);
        line.push_str(&format!(
            " p999_ns={:.0} added_p50_ns={added_ns:.0} ratio_p50_vs_none={ratio:.3} rounds={rounds} trades={}",
            p.p999_ns, agg.trades
        ));
        if *mode == Mode::Thread(Durability::Written) {
            ctx.targets.written_added_p50_ns = Some(added_ns);
        }
        if let Mode::Thread(durability) = mode {
            let lag = Percentiles::from_raw(&agg.lag);
            let ack = Percentiles::from_ticks(&agg.ack, &ticker);
            let batch = Percentiles::from_raw(&agg.batch);
            println!(
                "  [{case}] ring full at publish: {} times over {rounds} rounds, matcher waited {:.2} ms in total, \
                 longest {:.3} ms",
                agg.full.events,
                ms(&ticker, agg.full.waited_ticks),
                ms(&ticker, agg.full.longest_wait_ticks)
            );
            println!(
                "  [{case}] journaler thread pinned: {}; append (encode + append) ns: {}",
                agg.pinned.first().map_or("?", String::as_str),
                Percentiles::from_ticks(&agg.append, &ticker).describe()
            );
            println!(
                "  [{case}] journaler commit ({durability:?}) ns: {}",
                Percentiles::from_ticks(&agg.commit, &ticker).describe()
            );
            println!(
                "  [{case}] group-commit batch (records per commit, {} commits): {}",
                agg.commit.len(),
                batch.describe()
            );
            println!("  [{case}] append->durable per record ns: {}", ack.describe());
            println!("  [{case}] journal lag (records): {}", lag.describe());
            println!("  [{case}] journaler thread, all rounds: {}", agg.journaler_sched.describe());
            let durable = median(&agg.durable_ops_per_s);
            println!(
                "  [{case}] records durable per second, first publish to last commit, per round: {} M/s",
                list(&agg.durable_ops_per_s.iter().map(|v| v / 1e6).collect::<Vec<_>>(), 2)
            );
            if *mode == Mode::Thread(Durability::Fsync) {
                ctx.targets.fsync_thread_durable_ops_per_s = Some(durable);
            }
            for failure in &agg.failures {
                println!("  [{case}] JOURNALER FAILED: {failure}");
            }
            line.push_str(&format!(
                " ring_full={} ring_wait_max_ns={:.0} lag_p99={:.0} lag_max={:.0} ack_p50_ns={:.0} ack_p99_ns={:.0} \
                 ack_p9999_ns={:.0} ack_max_ns={:.0} batch_p50={:.0} batch_max={:.0} durable_ops_per_s={durable:.0}",
                agg.full.events,
                ticker.ns(agg.full.longest_wait_ticks),
                lag.p99_ns,
                lag.max_ns,
                ack.p50_ns,
                ack.p99_ns,
                ack.p9999_ns,
                ack.max_ns,
                batch.p50_ns,
                batch.max_ns
            ));
        }
        if *mode != Mode::None {
            let where_ = if matches!(mode, Mode::Inline(_)) { "matcher" } else { "journaler" };
            let roll: Vec<String> = agg
                .rollovers
                .iter()
                .map(|&(round, seq, ticks)| format!("round {} seq {seq}: {:.1} ms", round + 1, ms(&ticker, ticks)))
                .collect();
            let roll_max_ns = agg.rollovers.iter().map(|&(_, _, t)| ticker.ns(t)).fold(0.0, f64::max);
            println!(
                "  [{case}] segment rollovers on the {where_} thread (the append that rolled over): {}{}",
                agg.rollovers.len(),
                if roll.is_empty() { String::new() } else { format!(" ({})", roll.join(", ")) }
            );
            for (ok, text) in &agg.verified {
                println!("  [{case}] verify: {text}{}", if *ok { "" } else { " <- FAILED" });
            }
            let all_ok = agg.verified.iter().all(|(ok, _)| *ok);
            line.push_str(&format!(
                " rollovers={} rollover_max_ns={roll_max_ns:.0} verified={}",
                agg.rollovers.len(),
                if all_ok { "yes" } else { "NO" }
            ));
        }
        ctx.summary(line);
    }
}
