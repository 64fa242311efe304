//! What the benchmarks say about the machine they ran on, and the few things they change in it:
//! CPU count and load, thread pinning, the file system under a data directory, the page cache.
//! Linux only in substance; elsewhere the probes answer "unknown".

use std::path::Path;

use core_affinity::CoreId;

/// Logical CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The 1, 5 and 15 minute load averages: other work on a shared machine competes for the cores
/// the benchmark runs on.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Cores this process may be pinned to, in the order the OS lists them (empty if unknown).
pub fn cores() -> Vec<CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

/// Pins the calling thread to `core`; says how it went (`yes, core N` or `no (why)`).
pub fn pin_current(core: CoreId) -> String {
    if core_affinity::set_for_current(core) {
        format!("yes, core {}", core.id)
    } else {
        format!("no (set_for_current({}) failed)", core.id)
    }
}

/// Runs `f` with the calling thread pinned to `core` (threads `f` spawns inherit it, unless
/// they pin themselves elsewhere), then gives the thread back the CPUs it had. `None` when
/// the thread's CPU mask cannot be read or set.
pub fn pinned<T>(core: CoreId, f: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: `cpu_set_t` is plain data; the calls get its exact size and act on this thread.
    unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut before) != 0 || !core_affinity::set_for_current(core) {
            return None;
        }
        let out = f();
        (libc::sched_setaffinity(0, size, &before) == 0).then_some(out)
    }
}

/// Pins every thread of this process but those named `except` to `core` (threads they spawn
/// later inherit it); how many were pinned.
pub fn pin_threads_but(except: &str, core: CoreId) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut pinned = 0;
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else { continue };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.trim() == except {
            continue;
        }
        // SAFETY: plain data, its exact size, and a thread id of this process.
        let ok = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core.id, &mut set);
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        };
        pinned += usize::from(ok);
    }
    pinned
}

/// Pins the calling thread to the last listed core (the one the OS least likely fills first).
pub fn pin_to_last_core() -> String {
    match cores().last() {
        Some(&core) => pin_current(core),
        None => "no (core list unavailable)".into(),
    }
}

/// The file system holding `path`, from `/proc/self/mountinfo`: type, device, mount point and
/// mount options, e.g. `ext4 on /dev/vda mounted at / (rw,relatime)`.
pub fn filesystem_of(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else { return format!("unknown ({} not found)", path.display()) };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return "unknown".into() };
    // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(mount_point), Some(options), Some(fstype), Some(source)) =
            (fields.get(4), fields.get(5), fields.get(dash + 1), fields.get(dash + 2))
        else {
            continue;
        };
        let mount_point = Path::new(mount_point);
        let depth = mount_point.components().count();
        // The deepest mount point containing the path wins; a later one at equal depth
        // shadows an earlier one.
        if path.starts_with(mount_point) && best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, format!("{fstype} on {source} mounted at {} ({options})", mount_point.display())));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// Writes back dirty pages and drops the clean page cache, dentries and inodes
/// (`sync; echo 3 > /proc/sys/vm/drop_caches`), so that the next reads come from the device.
/// Needs root and a writable `/proc/sys`.
pub fn drop_page_cache() -> Result<(), String> {
    let synced = std::process::Command::new("sync").status().map_err(|e| format!("sync: {e}"))?;
    if !synced.success() {
        return Err(format!("sync exited with {synced}"));
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| format!("/proc/sys/vm/drop_caches: {e}"))
}

/// Peak resident set size of this process in KiB (`VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Minor and major page faults of this process so far (`/proc/self/stat`). Major faults read
/// from the device: a restore from a cold page cache shows them.
pub fn process_page_faults() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, minflt 10, majflt 12.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some((rest.get(7)?.parse().ok()?, rest.get(9)?.parse().ok()?))
}

/// Scheduler accounting of the calling thread (`/proc/thread-self/schedstat` and `status`):
/// how long it ran, how long it was runnable but waiting for a CPU, and how often the scheduler
/// took the CPU away from it. On a shared machine, the second and third say when a thread fell
/// behind for want of a core rather than for its own work.
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedStat {
    /// Time on a CPU.
    pub on_cpu_ns: u64,
    /// Time runnable but waiting on a run queue.
    pub runqueue_ns: u64,
    /// Involuntary context switches: switched out while still runnable (preempted, or a
    /// `sched_yield` that let another task run).
    pub preemptions: u64,
}

impl SchedStat {
    /// The calling thread's counters now, if the kernel exposes them.
    pub fn now() -> Option<SchedStat> {
        let sched = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = sched.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (on_cpu_ns, runqueue_ns) = (fields.next()??, fields.next()??);
        let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
        let preemptions = status
            .lines()
            .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())?;
        Some(SchedStat { on_cpu_ns, runqueue_ns, preemptions })
    }

    /// The counters accumulated since `earlier`.
    pub fn since(self, earlier: SchedStat) -> SchedStat {
        SchedStat {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(earlier.on_cpu_ns),
            runqueue_ns: self.runqueue_ns.saturating_sub(earlier.runqueue_ns),
            preemptions: self.preemptions.saturating_sub(earlier.preemptions),
        }
    }

    /// `on CPU X ms, runnable but waiting for a CPU Y ms, switched out while runnable N times`.
    pub fn describe(&self) -> String {
        format!(
            "on CPU {:.1} ms, runnable but waiting for a CPU {:.1} ms, switched out while runnable {} times",
            self.on_cpu_ns as f64 / 1e6,
            self.runqueue_ns as f64 / 1e6,
            self.preemptions
        )
    }
}
