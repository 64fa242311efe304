//! The storage the journal runs on, behind a small trait so tests can inject faults.
//!
//! [`crate::MmapStorage`] is the real one (preallocated files, shared mappings, msync);
//! [`crate::FaultyStorage`] is an in-memory one that can lose unsynced bytes, tear writes, flip
//! bits and fail syncs. The journal is generic over [`Storage`] (no `dyn`), so the append path
//! compiles down to a copy into the mapping.

use std::io;
use std::path::Path;

/// A directory of segment files, each named by the sequence number of its first record.
pub trait Storage {
    /// An open segment file.
    type Segment: SegmentStorage;

    /// Base sequence numbers of the segment files present, ascending. Other files are ignored.
    fn list_segments(&self) -> io::Result<Vec<u64>>;

    /// Creates the segment file for `base_seq`, preallocated to `len_bytes` zero bytes, opens
    /// it, and makes its directory entry durable before returning. Fails if it already exists.
    fn create_segment(&mut self, base_seq: u64, len_bytes: u64) -> io::Result<Self::Segment>;

    /// Opens an existing segment file. Its length is whatever the file holds, possibly not what
    /// its header says: the journal checks.
    fn open_segment(&self, base_seq: u64) -> io::Result<Self::Segment>;

    /// Deletes a segment file. The journal calls [`Storage::sync_dir`] afterwards.
    fn remove_segment(&mut self, base_seq: u64) -> io::Result<()>;

    /// Moves a segment file into `dest_dir` (created if missing), durable there before it is
    /// gone from here. The journal calls [`Storage::sync_dir`] afterwards.
    fn archive_segment(&mut self, base_seq: u64, dest_dir: &Path) -> io::Result<()>;

    /// Makes creations and removals of segment files durable (fsync of the directory).
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// One open segment: bytes that can be read in place, written at an offset and synced by range.
pub trait SegmentStorage {
    /// The whole segment as currently visible to this process (for a mapping: the page cache),
    /// including every earlier [`SegmentStorage::write_at`] through this handle.
    fn bytes(&self) -> &[u8];

    /// Copies `data` to `offset`. After it returns, the bytes survive a crash of this process
    /// but not of the machine. `offset + data.len()` must be within the segment.
    fn write_at(&mut self, offset: usize, data: &[u8]) -> io::Result<()>;

    /// Makes the bytes in `offset..offset + len_bytes` durable (msync with `MS_SYNC`, which is an
    /// fdatasync of that range). An error means the state of the range on disk is unknown.
    fn sync_range(&mut self, offset: usize, len_bytes: usize) -> io::Result<()>;

    /// Starts writing `offset..offset + len_bytes` back to stable storage without waiting for
    /// it: a hint that keeps the dirty range small, so that a later
    /// [`SegmentStorage::sync_range`] has little left to do. Promises no durability. An error
    /// means the storage is in trouble. The default does nothing.
    fn start_writeback(&mut self, offset: usize, len_bytes: usize) -> io::Result<()> {
        let _ = (offset, len_bytes);
        Ok(())
    }
}
