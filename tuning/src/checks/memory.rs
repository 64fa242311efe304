//! Memory: transparent huge pages, swap and the memlock limit.

use crate::host::Host;
use crate::report::{Finding, Status};

/// Highest `vm.swappiness` tolerated while swap is on (then WARN, not FAIL).
pub const MAX_SWAPPINESS: u32 = 1;

/// Memlock limit that counts as enough without being unlimited: 1 GiB, more than the default
/// engine's pools and rings.
pub const MIN_MEMLOCK_BYTES: u64 = 1 << 30;

const WHY_THP: &str = "the engine asks for huge pages for its order and level pools \
    (madvise(MADV_HUGEPAGE)): fewer TLB misses on a book that does not fit in cache; THP \
    defrag=always would instead stall page faults in direct compaction";
const WHY_SWAP: &str = "a swapped-out page of the engine costs a disk read on the matcher's hot \
    path; sable does not lock its memory yet, so swap must be off or nearly never used";
const WHY_MEMLOCK: &str = "locking sable's memory keeps its pages resident; the unit sets \
    LimitMEMLOCK=infinity. This reads the checker's own limit: under systemd the unit's applies \
    (systemctl show sable -p LimitMEMLOCK). sable does not lock memory yet, so this never fails";

/// The bracketed choice of a sysfs selector (`always [madvise] never` → `madvise`).
fn selected(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

/// THP is `madvise` or `always`, and defrag does not stall faults.
pub fn transparent_hugepages(host: &Host) -> Finding {
    let fix = "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled and echo madvise > \
        /sys/kernel/mm/transparent_hugepage/defrag (tuning/tuned/sable sets both)"
        .to_string();
    let enabled = host.read("sys/kernel/mm/transparent_hugepage/enabled");
    let defrag = host.read("sys/kernel/mm/transparent_hugepage/defrag");
    let Some(enabled_text) = enabled else {
        return Finding::new("transparent_hugepages", Status::Warn, "no THP in this kernel".into(), WHY_THP, fix);
    };
    let mode = selected(&enabled_text).unwrap_or("?");
    let defrag_mode = defrag.as_deref().and_then(selected).unwrap_or("?").to_string();
    let observed = format!("enabled={mode} defrag={defrag_mode}");
    let status = match (mode, defrag_mode.as_str()) {
        ("never", _) | ("?", _) => Status::Warn,
        (_, "always") => Status::Warn,
        _ => Status::Pass,
    };
    Finding::new("transparent_hugepages", status, observed, WHY_THP, fix)
}

/// No swap, or swap with `vm.swappiness` ≤ [`MAX_SWAPPINESS`].
pub fn swap(host: &Host) -> Finding {
    let fix = format!(
        "swapoff -a and remove swap from /etc/fstab, or at least vm.swappiness={MAX_SWAPPINESS} (tuning/sysctl.d/90-sable.conf)"
    );
    let Some(swaps) = host.read("proc/swaps") else {
        return Finding::new("swap", Status::Warn, "cannot read /proc/swaps".into(), WHY_SWAP, fix);
    };
    let devices: Vec<&str> = swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    if devices.is_empty() {
        return Finding::new("swap", Status::Pass, "no swap".into(), WHY_SWAP, fix);
    }
    let swappiness: Option<u32> = host.read("proc/sys/vm/swappiness").and_then(|t| t.parse().ok());
    let observed = format!(
        "swap on {} (vm.swappiness={})",
        devices.join(" "),
        swappiness.map_or_else(|| "?".into(), |s| s.to_string())
    );
    let status = if swappiness.is_some_and(|s| s <= MAX_SWAPPINESS) { Status::Warn } else { Status::Fail };
    Finding::new("swap", status, observed, WHY_SWAP, fix)
}

/// The soft `Max locked memory` limit is unlimited or at least [`MIN_MEMLOCK_BYTES`].
pub fn memlock(host: &Host) -> Finding {
    let fix = "LimitMEMLOCK=infinity in the unit (systemd/sable.service has it); for a shell start, \
        memlock in /etc/security/limits.d"
        .to_string();
    let line = host
        .read("proc/self/limits")
        .and_then(|t| t.lines().find(|l| l.starts_with("Max locked memory")).map(str::to_string));
    let Some(line) = line else {
        return Finding::new("memlock", Status::Warn, "cannot read /proc/self/limits".into(), WHY_MEMLOCK, fix);
    };
    let soft = line.trim_start_matches("Max locked memory").split_whitespace().next().unwrap_or("?").to_string();
    let enough = soft == "unlimited" || soft.parse::<u64>().is_ok_and(|b| b >= MIN_MEMLOCK_BYTES);
    let status = if enough { Status::Pass } else { Status::Warn };
    let observed = if soft == "unlimited" { "unlimited".to_string() } else { format!("{soft} bytes") };
    Finding::new("memlock", status, observed, WHY_MEMLOCK, fix)
}
