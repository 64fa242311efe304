//! Files the appliance creates in its data directory during a run, counted by polling: journal
//! segments (`journal/*.seg`, one per journal rollover) and session-store files (any file under
//! `sessions/`, recursively, each new segment file of a store being one rollover). The count
//! does not depend on the store's API or layout, which is being rewritten (flat
//! `sessions/<name>-<index>.store` files today, `sessions/<name>/*.seg` after): a store drops
//! its oldest segments under retention, so the directory is polled during the run, and a file
//! seen at any poll and not there at the start counts once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Time between two scans: far shorter than a segment's life in the soak (a store segment of
/// [`super::appliance::SOAK_SEGMENTS`] lives about a second, retention keeps several).
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Extension of journal segment files.
pub const JOURNAL_SEGMENT_EXTENSION: &str = "seg";

/// Files created during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewFiles {
    /// New `*.seg` files under `journal/`: journal rollovers.
    pub journal_segments: u64,
    /// New files anywhere under `sessions/`: session-store rollovers, over all sessions.
    pub store_files: u64,
}

/// A polling watch on a data directory, started before the run and finished after it.
pub struct FileWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<NewFiles>,
}

impl FileWatch {
    /// Records the files there now, then polls on a thread (`e2e-files`) until [`finish`].
    ///
    /// [`finish`]: FileWatch::finish
    pub fn start(data_dir: &Path) -> Result<FileWatch, String> {
        let dirs = [gateway::pipeline::journal_dir(data_dir), gateway::pipeline::sessions_dir(data_dir)];
        let baseline = dirs.clone().map(|d| scan(&d));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("e2e-files".into())
            .spawn(move || watch(&dirs, baseline, &stopped))
            .map_err(|e| format!("spawning the file watch: {e}"))?;
        Ok(FileWatch { stop, handle })
    }

    /// Stops polling after one last scan; the files created since [`FileWatch::start`].
    pub fn finish(self) -> NewFiles {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

/// Polls `dirs` (journal, sessions) until `stop`; counts files not in `baseline`.
fn watch(dirs: &[PathBuf; 2], baseline: [HashSet<PathBuf>; 2], stop: &AtomicBool) -> NewFiles {
    let mut seen: [HashSet<PathBuf>; 2] = [HashSet::new(), HashSet::new()];
    loop {
        let last = stop.load(Ordering::Acquire);
        for ((dir, old), new) in dirs.iter().zip(&baseline).zip(&mut seen) {
            new.extend(scan(dir).into_iter().filter(|p| !old.contains(p)));
        }
        if last {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let is_segment = |p: &&PathBuf| p.extension().is_some_and(|e| e == JOURNAL_SEGMENT_EXTENSION);
    NewFiles { journal_segments: seen[0].iter().filter(is_segment).count() as u64, store_files: seen[1].len() as u64 }
}

/// Every file under `dir`, recursively (empty if it does not exist).
fn scan(dir: &Path) -> HashSet<PathBuf> {
    let mut files = HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry.path()),
                Ok(_) => {
                    files.insert(entry.path());
                }
                Err(_) => {}
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_new_files_in_both_layouts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = gateway::pipeline::journal_dir(dir.path());
        let sessions = gateway::pipeline::sessions_dir(dir.path());
        std::fs::create_dir_all(sessions.join("fix-a")).expect("mkdir");
        std::fs::create_dir_all(&journal).expect("mkdir");
        std::fs::write(journal.join("1.seg"), b"").expect("write");
        std::fs::write(sessions.join("sbe-1-1.store"), b"").expect("write");
        let w = FileWatch::start(dir.path()).expect("start");
        std::fs::write(journal.join("2.seg"), b"").expect("write");
        std::fs::write(journal.join("notes.txt"), b"").expect("write");
        std::fs::write(sessions.join("sbe-1-2.store"), b"").expect("write");
        std::fs::write(sessions.join("fix-a").join("1.seg"), b"").expect("write");
        std::thread::sleep(POLL_INTERVAL * 3);
        // Deleted after a poll saw it: still counted.
        std::fs::remove_file(sessions.join("sbe-1-2.store")).expect("remove");
        assert_eq!(w.finish(), NewFiles { journal_segments: 1, store_files: 2 });
    }
}
