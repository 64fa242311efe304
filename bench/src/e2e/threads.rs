//! CPU time of every thread of this process (`/proc/self/task/*/{comm,schedstat}`), sampled
//! before and after a run: the appliance's threads (`sable-*`) and the generator's (`e2e-*`)
//! share two cores, and who used how much says what limited the run.

/// One thread's counters.
#[derive(Clone, Debug)]
pub struct ThreadCpu {
    /// Thread id.
    pub tid: u32,
    /// Thread name.
    pub name: String,
    /// Time on a CPU, ns.
    pub on_cpu_ns: u64,
    /// Time runnable but waiting for a CPU, ns.
    pub runqueue_ns: u64,
}

/// Every thread of the process now (empty if `/proc` is unavailable).
pub fn sample() -> Vec<ThreadCpu> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else { continue };
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm")).map(|s| s.trim().to_string()).unwrap_or_default();
        let Ok(sched) = std::fs::read_to_string(path.join("schedstat")) else { continue };
        let mut f = sched.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        let (on_cpu_ns, runqueue_ns) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        out.push(ThreadCpu { tid, name, on_cpu_ns, runqueue_ns });
    }
    out
}

/// Per-thread CPU between two samples, as `name cpu% (waited X ms)` lines, busiest first.
/// Threads that started after `before` count from zero; `wall_ns` is the interval.
pub fn describe(before: &[ThreadCpu], after: &[ThreadCpu], wall_ns: u64) -> Vec<String> {
    let mut rows: Vec<(String, u64, u64)> = after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.tid == a.tid);
            let on = a.on_cpu_ns.saturating_sub(b.map_or(0, |b| b.on_cpu_ns));
            let rq = a.runqueue_ns.saturating_sub(b.map_or(0, |b| b.runqueue_ns));
            (a.name.clone(), on, rq)
        })
        .filter(|(_, on, _)| *on > 0)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let wall = wall_ns.max(1) as f64;
    rows.into_iter()
        .map(|(name, on, rq)| {
            format!(
                "{name:<16} {:5.1}% of a core  (runnable but waiting for a CPU {:.1} ms)",
                on as f64 * 100.0 / wall,
                rq as f64 / 1e6
            )
        })
        .collect()
}
