//! [`Storage`] over real files: preallocated segment files in one directory, mapped shared.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::layout::{parse_segment_file_name, parse_spare_file_name, segment_file_name, spare_file_name};
use crate::storage::{SegmentStorage, Storage};

/// Segment files in a directory, mapped with `mmap(MAP_SHARED)`.
///
/// A writable `MmapStorage` holds an exclusive `flock` on the directory for its lifetime, so two
/// writers can never map the same journal. Segment files are never truncated or shrunk while
/// mapped (a mapping past end of file would fault with SIGBUS); operators must not do so either.
#[derive(Debug)]
pub struct MmapStorage {
    dir: PathBuf,
    /// Kept open for fsync of the directory and to hold the lock.
    dir_file: File,
    read_only: bool,
}

impl MmapStorage {
    /// Opens (creating if missing) the journal directory for writing and locks it.
    /// Fails with [`io::ErrorKind::WouldBlock`] if another writer holds the lock.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let dir_file = File::open(&dir)?;
        // SAFETY: `dir_file` is an open descriptor for the lifetime of this call; flock does not
        // touch memory.
        let rc = unsafe { libc::flock(dir_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(MmapStorage { dir, dir_file, read_only: false })
    }

    /// Opens the journal directory for inspection only: no lock (a live writer may be running),
    /// read-only mappings, and every write or sync fails.
    pub fn open_read_only(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let dir_file = File::open(&dir)?;
        Ok(MmapStorage { dir, dir_file, read_only: true })
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the segment file for `base_seq`.
    pub fn segment_path(&self, base_seq: u64) -> PathBuf {
        self.dir.join(segment_file_name(base_seq))
    }

    /// Path of spare `spare_id`.
    pub fn spare_path(&self, spare_id: u64) -> PathBuf {
        self.dir.join(spare_file_name(spare_id))
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.read_only { Err(read_only_error()) } else { Ok(()) }
    }

    /// Creates `path`, then makes its directory entry durable; removes it again on failure.
    fn create_durably(
        &mut self,
        path: &Path,
        make: impl FnOnce(&Path) -> io::Result<MmapSegment>,
    ) -> io::Result<MmapSegment> {
        self.check_writable()?;
        match make(path).and_then(|segment| self.sync_dir().map(|()| segment)) {
            Ok(segment) => Ok(segment),
            Err(err) => {
                // Do not leave a half-made file behind; recovery could cope, but an operator
                // looking at the directory should not have to.
                let _ = fs::remove_file(path);
                Err(err)
            }
        }
    }

    fn list_named(&self, parse: fn(&str) -> Option<u64>) -> io::Result<Vec<u64>> {
        let mut numbers = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(number) = entry.file_name().to_str().and_then(parse) {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn open_mapped(&self, path: &Path) -> io::Result<MmapSegment> {
        let file = OpenOptions::new().read(true).write(!self.read_only).open(path)?;
        let len_bytes = file.metadata()?.len();
        map_segment(&file, len_bytes, self.read_only)
    }

    fn create_segment_file(path: &Path, len_bytes: u64) -> io::Result<MmapSegment> {
        let file = Self::create_preallocated(path, len_bytes)?;
        // The new size and allocation must be durable before records rely on them.
        file.sync_all()?;
        map_segment(&file, len_bytes, false)
    }

    /// A spare is faulted in for writing, page by page, so the writer's first write to each
    /// costs nothing. Its zeros are not synced: the writer overwrites them before the kernel's
    /// flusher would write them (it writes pages dirty for 30 s), so a spare costs no disk
    /// bandwidth. Its size needs no sync of its own either: the sync of its header (an fdatasync
    /// of that range, before the spare is renamed) makes the size durable with it, as the size
    /// is needed to read the header back.
    fn create_spare_file(path: &Path, len_bytes: u64) -> io::Result<MmapSegment> {
        let file = Self::create_preallocated(path, len_bytes)?;
        let mut segment = map_segment(&file, len_bytes, false)?;
        segment.prefault()?;
        Ok(segment)
    }

    fn create_preallocated(path: &Path, len_bytes: u64) -> io::Result<File> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        let len_off =
            libc::off_t::try_from(len_bytes).map_err(|_| io::Error::other("segment length overflows off_t"))?;
        // Preallocate so that appends never extend the file (no metadata update per fsync) and
        // never hit ENOSPC as a SIGBUS in the middle of a copy into the mapping. glibc emulates
        // posix_fallocate on file systems without fallocate by writing zeros.
        // SAFETY: `file` is an open descriptor; posix_fallocate does not touch our memory.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len_off) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(file)
    }
}

impl Storage for MmapStorage {
    type Segment = MmapSegment;
    type Helper = MmapStorage;

    fn helper(&self) -> io::Result<MmapStorage> {
        Ok(MmapStorage { dir: self.dir.clone(), dir_file: File::open(&self.dir)?, read_only: self.read_only })
    }

    fn list_segments(&self) -> io::Result<Vec<u64>> {
        self.list_named(parse_segment_file_name)
    }

    fn create_segment(&mut self, base_seq: u64, len_bytes: u64) -> io::Result<MmapSegment> {
        let path = self.segment_path(base_seq);
        self.create_durably(&path, |path| Self::create_segment_file(path, len_bytes))
    }

    fn open_segment(&self, base_seq: u64) -> io::Result<MmapSegment> {
        self.open_mapped(&self.segment_path(base_seq))
    }

    fn remove_segment(&mut self, base_seq: u64) -> io::Result<()> {
        self.check_writable()?;
        fs::remove_file(self.segment_path(base_seq))
    }

    fn archive_segment(&mut self, base_seq: u64, dest_dir: &Path) -> io::Result<()> {
        self.check_writable()?;
        fs::create_dir_all(dest_dir)?;
        let name = segment_file_name(base_seq);
        let source = self.segment_path(base_seq);
        let dest = dest_dir.join(&name);
        match fs::rename(&source, &dest) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
                // Another file system: copy under a temporary name, make it durable, then
                // publish it with a rename so a crash never leaves a partial archive segment.
                let temp = dest_dir.join(format!("{name}.tmp"));
                fs::copy(&source, &temp)?;
                File::open(&temp)?.sync_all()?;
                fs::rename(&temp, &dest)?;
                File::open(dest_dir)?.sync_all()?;
                fs::remove_file(&source)?;
                return Ok(());
            }
            Err(err) => return Err(err),
        }
        File::open(dest_dir)?.sync_all()
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.dir_file.sync_all()
    }

    fn list_spares(&self) -> io::Result<Vec<u64>> {
        self.list_named(parse_spare_file_name)
    }

    fn create_spare(&mut self, spare_id: u64, len_bytes: u64) -> io::Result<MmapSegment> {
        let path = self.spare_path(spare_id);
        self.create_durably(&path, |path| Self::create_spare_file(path, len_bytes))
    }

    fn open_spare(&self, spare_id: u64) -> io::Result<MmapSegment> {
        self.open_mapped(&self.spare_path(spare_id))
    }

    fn reuse_spare(&mut self, spare_id: u64, len_bytes: u64) -> io::Result<Option<MmapSegment>> {
        self.check_writable()?;
        let mut spare = self.open_spare(spare_id)?;
        let bytes = spare.bytes();
        if bytes.len() as u64 != len_bytes || crate::layout::end_of_non_zero(bytes).is_some() {
            return Ok(None);
        }
        spare.prefault()?;
        Ok(Some(spare))
    }

    fn remove_spare(&mut self, spare_id: u64) -> io::Result<()> {
        self.check_writable()?;
        fs::remove_file(self.spare_path(spare_id))
    }

    fn install_spare(&mut self, spare_id: u64, base_seq: u64) -> io::Result<()> {
        self.check_writable()?;
        rename_no_replace(&self.spare_path(spare_id), &self.segment_path(base_seq))
    }
}

/// Renames `from` to `to`, failing with [`io::ErrorKind::AlreadyExists`] instead of replacing
/// an existing `to`: installing a spare must never overwrite a segment.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c_path = |path: &Path| CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from_c, to_c) = (c_path(from)?, c_path(to)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, from_c.as_ptr(), libc::AT_FDCWD, to_c.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // A file system without RENAME_NOREPLACE: check, then rename. Only the journal's own
        // threads write this directory, and they install one spare at a time.
        Some(libc::EINVAL | libc::ENOSYS) => {
            if to.exists() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "segment file exists"));
            }
            fs::rename(from, to)
        }
        _ => Err(err),
    }
}

fn read_only_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "journal storage opened read-only")
}

fn map_segment(file: &File, len_bytes: u64, read_only: bool) -> io::Result<MmapSegment> {
    let len = usize::try_from(len_bytes).map_err(|_| io::Error::other("segment length overflows usize"))?;
    let mut options = MmapOptions::new();
    options.len(len);
    // SAFETY: the mapping is only sound while nobody truncates or rewrites the file behind our
    // back. The journal never truncates a mapped segment, writers lock the directory, and the
    // crate docs tell operators not to touch live segment files.
    let map = unsafe {
        if read_only { SegmentMap::ReadOnly(options.map(file)?) } else { SegmentMap::ReadWrite(options.map_mut(file)?) }
    };
    Ok(MmapSegment { map, file: file.try_clone()? })
}

/// One segment file mapped into memory.
#[derive(Debug)]
pub struct MmapSegment {
    map: SegmentMap,
    /// Kept for `sync_file_range`, which works on a descriptor, not a mapping.
    file: File,
}

#[derive(Debug)]
enum SegmentMap {
    ReadWrite(MmapMut),
    ReadOnly(Mmap),
}

/// Granularity of [`MmapSegment::prefault`]'s fallback: the smallest page size Linux uses.
const PREFAULT_PAGE_LEN_BYTES: usize = 4096;

impl MmapSegment {
    /// Faults in every page of a writable mapping for writing, so that the writer's first copy
    /// into each page costs no fault (a fault on a fresh page of a preallocated file costs
    /// microseconds: allocate the page, zero it, mark the extent). `MADV_POPULATE_WRITE`
    /// (Linux 5.14) does it without touching the bytes; older kernels get one write per page.
    fn prefault(&mut self) -> io::Result<()> {
        let SegmentMap::ReadWrite(map) = &mut self.map else {
            return Err(read_only_error());
        };
        if map.is_empty() {
            return Ok(());
        }
        // SAFETY: the range is exactly our own live mapping; the advice changes no contents.
        let rc = unsafe { libc::madvise(map.as_mut_ptr().cast(), map.len(), libc::MADV_POPULATE_WRITE) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        for offset in (0..map.len()).step_by(PREFAULT_PAGE_LEN_BYTES) {
            // The spare is all zeros and nobody else writes it yet: writing a zero changes
            // nothing but the page table. Volatile, so the store is not optimised away.
            // SAFETY: `offset` is inside the mapping.
            unsafe { map.as_mut_ptr().add(offset).write_volatile(0) };
        }
        Ok(())
    }
}

impl SegmentStorage for MmapSegment {
    fn reopen_read_only(&self) -> io::Result<MmapSegment> {
        map_segment(&self.file, self.bytes().len() as u64, true)
    }

    /// Both mappings are `MAP_SHARED` views of the same page cache, so the twin sees every write.
    fn read_only_twin(&self) -> io::Result<Option<MmapSegment>> {
        self.reopen_read_only().map(Some)
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.map {
            SegmentMap::ReadWrite(map) => map,
            SegmentMap::ReadOnly(map) => map,
        }
    }

    #[inline]
    fn write_at(&mut self, offset: usize, data: &[u8]) -> io::Result<()> {
        match &mut self.map {
            SegmentMap::ReadWrite(map) => {
                map[offset..offset + data.len()].copy_from_slice(data);
                Ok(())
            }
            SegmentMap::ReadOnly(_) => Err(read_only_error()),
        }
    }

    fn sync_range(&mut self, offset: usize, len_bytes: usize) -> io::Result<()> {
        match &self.map {
            // memmap2 widens the range to page boundaries and calls msync(MS_SYNC).
            SegmentMap::ReadWrite(map) => map.flush_range(offset, len_bytes),
            SegmentMap::ReadOnly(_) => Err(read_only_error()),
        }
    }

    fn start_writeback(&mut self, offset: usize, len_bytes: usize) -> io::Result<()> {
        let to_off =
            |value: usize| libc::off64_t::try_from(value).map_err(|_| io::Error::other("range overflows off64_t"));
        // SYNC_FILE_RANGE_WRITE queues the dirty pages for writeback and returns; it neither
        // waits nor flushes the device cache, so it is a hint, not a sync. It does not consume
        // the file's write-back error state, so a later msync still reports any I/O error.
        // SAFETY: `self.file` is an open descriptor; the call does not touch our memory.
        let rc = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                to_off(offset)?,
                to_off(len_bytes)?,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
