//! CPU time of every thread of this process (`/proc/self/task/*/{comm,schedstat}`), sampled
//! before and after a run: the appliance's threads (`sable-*`) and the generator's (`e2e-*`)
//! share two cores, and who used how much says what limited the run. Per order, the appliance's
//! threads are grouped by name (`sable-<group>…`), so a gateway split into receiver, sequencer
//! and publisher threads reads the same way as one `sable-gateway` thread.

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

/// Name prefix of the appliance's threads (`sable-gateway`, `sable-journal`, ...).
pub const APPLIANCE_THREAD_PREFIX: &str = "sable-";

/// Appliance thread groups that are not the gateway's own: the journaler, the matcher, the
/// follower, and any snapshot helper (a group starting with [`SNAPSHOT_GROUP_PREFIX`]).
pub const NOT_GATEWAY_GROUPS: [&str; 3] = ["journal", "matcher", "follower"];

/// Groups starting with this are snapshot helpers, not the gateway's.
pub const SNAPSHOT_GROUP_PREFIX: &str = "snap";

/// Clock ticks of `/proc/self/stat` (`USER_HZ`, 100 on every Linux ABI) in ns.
const USER_HZ_TICK_NS: u64 = 10_000_000;

/// The group of an appliance thread: the word after `sable-` (`sable-receiver-2` →
/// `receiver`, `sable-store-pre` → `store`); `None` for threads that are not the appliance's.
pub fn appliance_group(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(APPLIANCE_THREAD_PREFIX)?;
    let word = rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    (!word.is_empty()).then_some(word)
}

/// Whether an appliance thread group is the gateway's own (receiver, sequencer, publisher,
/// its store helpers...): every group but [`NOT_GATEWAY_GROUPS`] and snapshot helpers.
pub fn is_gateway_group(group: &str) -> bool {
    !NOT_GATEWAY_GROUPS.contains(&group) && !group.starts_with(SNAPSHOT_GROUP_PREFIX)
}

/// On-CPU ns of each appliance thread group between two samples, by group name. Threads that
/// started after `before` count from zero; threads that ended before `after` are not seen
/// (see [`process_cpu_ns`]).
pub fn appliance_cpu_ns(before: &[ThreadCpu], after: &[ThreadCpu]) -> Vec<(String, u64)> {
    let mut groups: Vec<(String, u64)> = Vec::new();
    for a in after {
        let Some(group) = appliance_group(&a.name) else { continue };
        let b = before.iter().find(|b| b.tid == a.tid).map_or(0, |b| b.on_cpu_ns);
        let on = a.on_cpu_ns.saturating_sub(b);
        match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, ns)) => *ns += on,
            None => groups.push((group.to_string(), on)),
        }
    }
    groups.sort();
    groups
}

/// On-CPU ns of all live threads between two samples (every thread of the process).
pub fn live_cpu_ns(before: &[ThreadCpu], after: &[ThreadCpu]) -> u64 {
    after
        .iter()
        .map(|a| a.on_cpu_ns.saturating_sub(before.iter().find(|b| b.tid == a.tid).map_or(0, |b| b.on_cpu_ns)))
        .sum()
}

/// CPU time of the whole process so far, threads that have exited included (`utime + stime`
/// of `/proc/self/stat`, which the kernel scales to the scheduler's runtime), in ns with a
/// resolution of one clock tick (10 ms). `None` if `/proc` is unavailable.
pub fn process_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is the first, utime the 12th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * USER_HZ_TICK_NS)
}

/// The `cpu_ns_per_order_<group>=…` fields of the summary line: each appliance thread group's
/// on-CPU ns divided by `orders`, then `cpu_ns_per_order_gateway_total=…` (the sum over the
/// gateway's own groups, [`is_gateway_group`]) and `cpu_ns_per_order_exited=…` (`exited_ns`:
/// threads that ended within the interval, which no group can claim).
pub fn per_order_fields(groups: &[(String, u64)], exited_ns: u64, orders: u64) -> String {
    let per_order = |ns: u64| ns as f64 / orders.max(1) as f64;
    let mut out: Vec<String> =
        groups.iter().map(|(g, ns)| format!("cpu_ns_per_order_{g}={:.0}", per_order(*ns))).collect();
    let gateway_ns: u64 = groups.iter().filter(|(g, _)| is_gateway_group(g)).map(|(_, ns)| ns).sum();
    out.push(format!("cpu_ns_per_order_gateway_total={:.0}", per_order(gateway_ns)));
    out.push(format!("cpu_ns_per_order_exited={:.0}", per_order(exited_ns)));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(tid: u32, name: &str, on_cpu_ns: u64) -> ThreadCpu {
        ThreadCpu { tid, name: name.into(), on_cpu_ns, runqueue_ns: 0 }
    }

    #[test]
    fn groups_by_the_word_after_the_prefix() {
        assert_eq!(appliance_group("sable-receiver-2"), Some("receiver"));
        assert_eq!(appliance_group("sable-store-pre"), Some("store"));
        assert_eq!(appliance_group("sable-gateway"), Some("gateway"));
        assert_eq!(appliance_group("e2e-sender"), None);
        assert_eq!(appliance_group("sable-"), None);
        assert!(is_gateway_group("publisher") && is_gateway_group("store"));
        assert!(!is_gateway_group("matcher") && !is_gateway_group("snapshot"));
    }

    #[test]
    fn per_order_sums_the_gateway_threads() {
        let before = [thread(1, "sable-receiver", 100), thread(2, "sable-matcher", 0)];
        let after = [
            thread(1, "sable-receiver", 1_100),
            thread(2, "sable-matcher", 500),
            thread(3, "sable-publisher", 2_000),
            thread(4, "e2e-receiver", 9_000),
        ];
        let groups = appliance_cpu_ns(&before, &after);
        assert_eq!(live_cpu_ns(&before, &after), 12_500);
        assert_eq!(
            per_order_fields(&groups, 100, 10),
            "cpu_ns_per_order_matcher=50 cpu_ns_per_order_publisher=200 cpu_ns_per_order_receiver=100 \
             cpu_ns_per_order_gateway_total=300 cpu_ns_per_order_exited=10"
        );
    }
}
