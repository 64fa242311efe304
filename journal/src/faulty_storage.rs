//! [`Storage`] in memory that keeps durable and volatile bytes apart, for crash and fault tests.
//!
//! Modelled on the page cache under a shared mapping: a write lands in the volatile copy (it
//! survives a process crash) and marks its bytes dirty; a sync copies dirty bytes in its range to
//! the durable copy. [`FaultyStorage::crash`] builds the storage a restarted process would find.
//!
//! Files are inodes with names, like a real directory: a rename moves the name, open handles
//! follow the inode, and after power loss a file comes back under the name it had at the last
//! directory sync (or not at all, if it was created since).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::storage::{SegmentStorage, Storage};

/// Page size used by [`CrashMode::Random`] to model out-of-order writeback.
pub const FAULTY_PAGE_LEN_BYTES: usize = 4096;
/// Sector size used by [`CrashMode::Random`] to model a page torn mid-write.
pub const FAULTY_SECTOR_LEN_BYTES: usize = 512;

/// What survives [`FaultyStorage::crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The process died, the machine did not: everything written survives, synced or not.
    Process,
    /// Power loss: only synced bytes survive, and only files whose directory entry was synced.
    PowerLoss,
    /// Power loss while the unsynced tail was being written back in order: in each file, the
    /// dirty bytes within `persisted_len_bytes` of the first dirty byte survive, later ones do
    /// not. Tears the last write at a chosen byte.
    TornTail {
        /// How far past the first unsynced byte the write-back got.
        persisted_len_bytes: usize,
    },
    /// Power loss with write-back in no particular order: each dirty page of each file survives
    /// whole, not at all, or up to a random sector, as drawn from `seed`.
    Random {
        /// Seed of the draw; print it in the test that uses it.
        seed: u64,
    },
}

/// In-memory segment files with injectable faults. Clones share the same "disk", so a test can
/// keep one to inject faults into the storage a journal owns.
///
/// A test can hold the syncs the journal's background thread makes
/// ([`FaultyStorage::pause_background_syncs`]) and crash while they are outstanding.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    disk: Arc<SharedDisk>,
}

#[derive(Debug, Default)]
struct SharedDisk {
    disk: Mutex<Disk>,
    /// Signalled when background syncs are resumed or one starts waiting.
    gate: Condvar,
}

/// A file's name in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    Segment(u64),
    Spare(u64),
}

#[derive(Debug, Default)]
struct Disk {
    /// Directory entries: name to inode.
    names: BTreeMap<Name, u64>,
    inodes: BTreeMap<u64, FaultyFile>,
    next_inode: u64,
    archived: BTreeMap<(PathBuf, u64), Vec<u8>>,
    /// `Some(n)`: the next `n` syncs succeed, every one after fails.
    syncs_until_failure: Option<u64>,
    sync_count: u64,
    writeback_hint_count: u64,
    /// Syncs made on the journal's background thread wait while this is set.
    background_syncs_paused: bool,
    background_syncs_waiting: usize,
}

#[derive(Debug, Clone)]
struct FaultyFile {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    /// Bytes written since they were last synced.
    dirty: Vec<bool>,
    /// The name the file has after power loss: the one it had at the last directory sync.
    durable_name: Option<Name>,
}

impl FaultyFile {
    fn zeroed(len_bytes: usize) -> Self {
        FaultyFile {
            durable: vec![0; len_bytes],
            volatile: vec![0; len_bytes],
            dirty: vec![false; len_bytes],
            durable_name: None,
        }
    }

    fn settled(contents: Vec<u8>, name: Name) -> Self {
        let len_bytes = contents.len();
        FaultyFile {
            durable: contents.clone(),
            volatile: contents,
            dirty: vec![false; len_bytes],
            durable_name: Some(name),
        }
    }

    /// Contents after a crash in `mode`; `rng` feeds [`CrashMode::Random`].
    fn survivor(&self, mode: CrashMode, rng: &mut SplitMix64) -> Vec<u8> {
        let mut contents = self.durable.clone();
        let dirty_at = |index: usize| self.dirty[index];
        match mode {
            CrashMode::Process => contents.clone_from(&self.volatile),
            CrashMode::PowerLoss => {}
            CrashMode::TornTail { persisted_len_bytes } => {
                if let Some(first_dirty) = self.dirty.iter().position(|dirty| *dirty) {
                    let end = first_dirty.saturating_add(persisted_len_bytes).min(contents.len());
                    for index in (first_dirty..end).filter(|index| dirty_at(*index)) {
                        contents[index] = self.volatile[index];
                    }
                }
            }
            CrashMode::Random { .. } => {
                for page_start in (0..contents.len()).step_by(FAULTY_PAGE_LEN_BYTES) {
                    let page_end = (page_start + FAULTY_PAGE_LEN_BYTES).min(contents.len());
                    if !self.dirty[page_start..page_end].iter().any(|dirty| *dirty) {
                        continue;
                    }
                    let sectors_per_page = (FAULTY_PAGE_LEN_BYTES / FAULTY_SECTOR_LEN_BYTES) as u64;
                    let persisted_end = match rng.next() % 3 {
                        0 => page_start,
                        1 => page_end,
                        _ => (page_start + (rng.next() % sectors_per_page) as usize * FAULTY_SECTOR_LEN_BYTES)
                            .min(page_end),
                    };
                    for index in (page_start..persisted_end).filter(|index| dirty_at(*index)) {
                        contents[index] = self.volatile[index];
                    }
                }
            }
        }
        contents
    }
}

impl Disk {
    fn file(&self, name: Name) -> Option<&FaultyFile> {
        self.names.get(&name).and_then(|inode| self.inodes.get(inode))
    }

    fn file_mut(&mut self, name: Name) -> Option<&mut FaultyFile> {
        let inode = *self.names.get(&name)?;
        self.inodes.get_mut(&inode)
    }

    /// Adds a zeroed file under `name`; fails if the name is taken.
    fn create(&mut self, name: Name, len_bytes: usize) -> io::Result<u64> {
        if self.names.contains_key(&name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        let inode = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(inode, FaultyFile::zeroed(len_bytes));
        self.names.insert(name, inode);
        Ok(inode)
    }

    /// Unlinks `name`. An open handle keeps its view but its writes and syncs go nowhere, like
    /// writes to an unlinked mapped file.
    fn unlink(&mut self, name: Name) -> io::Result<FaultyFile> {
        let inode = self.names.remove(&name).ok_or_else(not_found)?;
        Ok(self.inodes.remove(&inode).expect("every name points at an inode"))
    }

    fn open(&self, name: Name) -> io::Result<(u64, Vec<u8>)> {
        let inode = *self.names.get(&name).ok_or_else(not_found)?;
        Ok((inode, self.inodes[&inode].volatile.clone()))
    }

    fn list(&self, pick: fn(Name) -> Option<u64>) -> Vec<u64> {
        self.names.keys().copied().filter_map(pick).collect()
    }

    /// Counts a sync and says whether it fails.
    fn take_sync(&mut self) -> io::Result<()> {
        self.sync_count += 1;
        match &mut self.syncs_until_failure {
            Some(0) => Err(io::Error::other("injected sync failure")),
            Some(remaining) => {
                *remaining -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

fn segment_base(name: Name) -> Option<u64> {
    match name {
        Name::Segment(base_seq) => Some(base_seq),
        Name::Spare(_) => None,
    }
}

fn spare_id(name: Name) -> Option<u64> {
    match name {
        Name::Spare(spare_id) => Some(spare_id),
        Name::Segment(_) => None,
    }
}

impl SharedDisk {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().expect("FaultyStorage mutex poisoned: a test already panicked")
    }

    /// Locks the disk for a sync; a sync on the journal's background thread first waits while
    /// those are paused.
    fn lock_for_sync(&self) -> MutexGuard<'_, Disk> {
        let mut disk = self.lock();
        if disk.background_syncs_paused && crate::rollover::on_background_thread() {
            disk.background_syncs_waiting += 1;
            self.gate.notify_all();
            disk = self
                .gate
                .wait_while(disk, |disk| disk.background_syncs_paused)
                .expect("FaultyStorage mutex poisoned: a test already panicked");
            disk.background_syncs_waiting -= 1;
        }
        disk
    }
}

impl FaultyStorage {
    /// An empty storage with no faults armed.
    pub fn new() -> Self {
        FaultyStorage::default()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock()
    }

    /// Makes every later sync made on the journal's background thread wait until [`FaultyStorage::resume_background_syncs`]: a test can then crash while the
    /// background thread's work is outstanding.
    pub fn pause_background_syncs(&self) {
        self.disk().background_syncs_paused = true;
    }

    /// Lets paused background syncs go on.
    pub fn resume_background_syncs(&self) {
        self.disk().background_syncs_paused = false;
        self.disk.gate.notify_all();
    }

    /// Blocks until at least one background sync is waiting on
    /// [`FaultyStorage::pause_background_syncs`].
    pub fn wait_for_paused_background_sync(&self) {
        let disk = self.disk();
        let _waiting = self
            .disk
            .gate
            .wait_while(disk, |disk| disk.background_syncs_waiting == 0)
            .expect("FaultyStorage mutex poisoned: a test already panicked");
    }

    /// The storage a restarted process finds after a crash in `mode`. Journals still holding
    /// this storage keep writing to the old, now detached, disk.
    pub fn crash(&self, mode: CrashMode) -> FaultyStorage {
        let disk = self.disk();
        let seed = match mode {
            CrashMode::Random { seed } => seed,
            _ => 0,
        };
        let mut rng = SplitMix64(seed);
        let mut after = Disk { archived: disk.archived.clone(), ..Disk::default() };
        for (name, inode) in &disk.names {
            let file = &disk.inodes[inode];
            let surviving_name = if mode == CrashMode::Process { Some(*name) } else { file.durable_name };
            if let Some(name) = surviving_name {
                let inode = after.next_inode;
                after.next_inode += 1;
                after.inodes.insert(inode, FaultyFile::settled(file.survivor(mode, &mut rng), name));
                after.names.insert(name, inode);
            }
        }
        FaultyStorage { disk: Arc::new(SharedDisk { disk: Mutex::new(after), gate: Condvar::new() }) }
    }

    /// Lets the next `successful_syncs` syncs (of ranges or of the directory) succeed and makes
    /// every later one fail.
    pub fn fail_syncs_after(&self, successful_syncs: u64) {
        self.disk().syncs_until_failure = Some(successful_syncs);
    }

    /// Disarms [`FaultyStorage::fail_syncs_after`].
    pub fn heal_syncs(&self) {
        self.disk().syncs_until_failure = None;
    }

    /// Number of syncs attempted so far.
    pub fn sync_count(&self) -> u64 {
        self.disk().sync_count
    }

    /// Number of [`SegmentStorage::start_writeback`] hints received so far.
    pub fn writeback_hint_count(&self) -> u64 {
        self.disk().writeback_hint_count
    }

    /// Number of bytes written but not yet synced, over all files.
    pub fn unsynced_len_bytes(&self) -> usize {
        self.disk().inodes.values().map(|file| file.dirty.iter().filter(|dirty| **dirty).count()).sum()
    }

    /// Base sequence numbers of the segment files present.
    pub fn segment_bases(&self) -> Vec<u64> {
        self.disk().list(segment_base)
    }

    /// Ids of the spare files present.
    pub fn spare_ids(&self) -> Vec<u64> {
        self.disk().list(spare_id)
    }

    /// The volatile contents of a segment file (what a process would see), if it exists.
    pub fn read_segment(&self, base_seq: u64) -> Option<Vec<u8>> {
        self.disk().file(Name::Segment(base_seq)).map(|file| file.volatile.clone())
    }

    /// The volatile contents of a spare file, if it exists.
    pub fn read_spare(&self, spare_id: u64) -> Option<Vec<u8>> {
        self.disk().file(Name::Spare(spare_id)).map(|file| file.volatile.clone())
    }

    /// Overwrites bytes in both the durable and the volatile copy: tampering or media damage,
    /// for tests. Open segment handles keep the view they had.
    ///
    /// # Panics
    /// If the segment does not exist or the range runs past its end.
    pub fn write_raw(&self, base_seq: u64, offset: usize, data: &[u8]) {
        let mut disk = self.disk();
        let file = disk.file_mut(Name::Segment(base_seq)).expect("write_raw: no such segment");
        file.durable[offset..offset + data.len()].copy_from_slice(data);
        file.volatile[offset..offset + data.len()].copy_from_slice(data);
    }

    /// Flips one bit (0 = least significant) of one byte, in both copies.
    ///
    /// # Panics
    /// If the segment does not exist or `offset` is past its end.
    pub fn flip_bit(&self, base_seq: u64, offset: usize, bit: u8) {
        let mut disk = self.disk();
        let file = disk.file_mut(Name::Segment(base_seq)).expect("flip_bit: no such segment");
        let mask = 1u8 << (bit % 8);
        file.durable[offset] ^= mask;
        file.volatile[offset] ^= mask;
    }

    /// Segments moved away by [`Storage::archive_segment`]: destination directory and base seq.
    pub fn archived(&self) -> Vec<(PathBuf, u64)> {
        self.disk().archived.keys().cloned().collect()
    }
}

impl Storage for FaultyStorage {
    type Segment = FaultySegment;
    type Helper = FaultyStorage;

    fn helper(&self) -> io::Result<FaultyStorage> {
        Ok(self.clone())
    }

    fn list_segments(&self) -> io::Result<Vec<u64>> {
        Ok(self.segment_bases())
    }

    fn create_segment(&mut self, base_seq: u64, len_bytes: u64) -> io::Result<FaultySegment> {
        self.create(Name::Segment(base_seq), len_bytes)
    }

    fn open_segment(&self, base_seq: u64) -> io::Result<FaultySegment> {
        self.open(Name::Segment(base_seq))
    }

    fn remove_segment(&mut self, base_seq: u64) -> io::Result<()> {
        self.disk().unlink(Name::Segment(base_seq)).map(drop)
    }

    fn archive_segment(&mut self, base_seq: u64, dest_dir: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        let file = disk.unlink(Name::Segment(base_seq))?;
        disk.archived.insert((dest_dir.to_path_buf(), base_seq), file.volatile);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock_for_sync();
        disk.take_sync()?;
        let Disk { names, inodes, .. } = &mut *disk;
        for (name, inode) in names.iter() {
            inodes.get_mut(inode).expect("every name points at an inode").durable_name = Some(*name);
        }
        Ok(())
    }

    fn list_spares(&self) -> io::Result<Vec<u64>> {
        Ok(self.spare_ids())
    }

    /// Spares need no pre-faulting in memory: creating one is creating a zeroed file.
    fn create_spare(&mut self, spare_id: u64, len_bytes: u64) -> io::Result<FaultySegment> {
        self.create(Name::Spare(spare_id), len_bytes)
    }

    fn open_spare(&self, spare_id: u64) -> io::Result<FaultySegment> {
        self.open(Name::Spare(spare_id))
    }

    fn remove_spare(&mut self, spare_id: u64) -> io::Result<()> {
        self.disk().unlink(Name::Spare(spare_id)).map(drop)
    }

    fn install_spare(&mut self, spare_id: u64, base_seq: u64) -> io::Result<()> {
        let mut disk = self.disk();
        if disk.names.contains_key(&Name::Segment(base_seq)) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "segment exists"));
        }
        let inode = disk.names.remove(&Name::Spare(spare_id)).ok_or_else(not_found)?;
        disk.names.insert(Name::Segment(base_seq), inode);
        Ok(())
    }
}

impl FaultyStorage {
    /// Creates a zeroed file under `name` and syncs the directory, like a real create.
    fn create(&mut self, name: Name, len_bytes: u64) -> io::Result<FaultySegment> {
        let len = usize::try_from(len_bytes).map_err(|_| io::Error::other("segment length overflows usize"))?;
        let inode = self.disk().create(name, len)?;
        self.sync_dir()?;
        Ok(FaultySegment { inode, view: vec![0; len], disk: Arc::clone(&self.disk) })
    }

    fn open(&self, name: Name) -> io::Result<FaultySegment> {
        let (inode, view) = self.disk().open(name)?;
        Ok(FaultySegment { inode, view, disk: Arc::clone(&self.disk) })
    }
}

/// An open in-memory file. Its view is its own "mapping": writes go to it and to the shared
/// disk's volatile copy of its inode.
#[derive(Debug)]
pub struct FaultySegment {
    inode: u64,
    view: Vec<u8>,
    disk: Arc<SharedDisk>,
}

impl SegmentStorage for FaultySegment {
    fn reopen_read_only(&self) -> io::Result<FaultySegment> {
        Ok(FaultySegment { inode: self.inode, view: self.view.clone(), disk: Arc::clone(&self.disk) })
    }

    fn bytes(&self) -> &[u8] {
        &self.view
    }

    fn write_at(&mut self, offset: usize, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len()).filter(|end| *end <= self.view.len());
        let Some(end) = end else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "write past end of segment"));
        };
        self.view[offset..end].copy_from_slice(data);
        let mut disk = self.disk.lock();
        // A removed or archived file takes no more writes, like an unlinked mapped file.
        if let Some(file) = disk.inodes.get_mut(&self.inode) {
            file.volatile[offset..end].copy_from_slice(data);
            file.dirty[offset..end].fill(true);
        }
        Ok(())
    }

    fn sync_range(&mut self, offset: usize, len_bytes: usize) -> io::Result<()> {
        let mut disk = self.disk.lock_for_sync();
        disk.take_sync()?;
        if let Some(file) = disk.inodes.get_mut(&self.inode) {
            let end = (offset + len_bytes).min(file.volatile.len());
            for index in offset.min(end)..end {
                if file.dirty[index] {
                    file.durable[index] = file.volatile[index];
                    file.dirty[index] = false;
                }
            }
        }
        Ok(())
    }

    /// Only counted: whether unsynced bytes survive is up to the crash mode.
    fn start_writeback(&mut self, _offset: usize, _len_bytes: usize) -> io::Result<()> {
        self.disk.lock().writeback_hint_count += 1;
        Ok(())
    }
}

/// Tiny deterministic generator (SplitMix64) so crash draws replay from a printed seed without a
/// dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_keeps_only_synced_bytes() {
        let mut storage = FaultyStorage::new();
        let mut segment = storage.create_segment(1, 64).unwrap();
        segment.write_at(0, &[1; 8]).unwrap();
        segment.sync_range(0, 8).unwrap();
        segment.write_at(8, &[2; 8]).unwrap();
        assert_eq!(storage.unsynced_len_bytes(), 8);
        let after = storage.crash(CrashMode::PowerLoss).read_segment(1).unwrap();
        assert_eq!(&after[..16], &[1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let after = storage.crash(CrashMode::Process).read_segment(1).unwrap();
        assert_eq!(&after[8..16], &[2; 8]);
        let after = storage.crash(CrashMode::TornTail { persisted_len_bytes: 3 }).read_segment(1).unwrap();
        assert_eq!(&after[8..16], &[2, 2, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn unsynced_directory_entries_vanish_on_power_loss() {
        let mut storage = FaultyStorage::new();
        storage.fail_syncs_after(0);
        assert!(storage.create_segment(5, 64).is_err());
        assert_eq!(storage.segment_bases(), vec![5]);
        assert!(storage.crash(CrashMode::PowerLoss).segment_bases().is_empty());
        assert_eq!(storage.crash(CrashMode::Process).segment_bases(), vec![5]);
    }

    #[test]
    fn failed_sync_keeps_bytes_dirty() {
        let mut storage = FaultyStorage::new();
        let mut segment = storage.create_segment(1, 64).unwrap();
        segment.write_at(0, &[9; 4]).unwrap();
        storage.fail_syncs_after(0);
        assert!(segment.sync_range(0, 4).is_err());
        assert_eq!(storage.crash(CrashMode::PowerLoss).read_segment(1).unwrap()[0], 0);
    }
}
