//! The storage the journal runs on, behind a small trait so tests can inject faults.
//!
//! [`crate::MmapStorage`] is the real one (preallocated files, shared mappings, msync);
//! [`crate::FaultyStorage`] is an in-memory one that can lose unsynced bytes, tear writes, flip
//! bits and fail syncs. The journal is generic over [`Storage`] (no `dyn`), so the append path
//! compiles down to a copy into the mapping.
//!
//! Segments come into being in two ways. The first segment of a log is created under its final
//! name ([`Storage::create_segment`]). Every later one starts as a *spare*: a file under a
//! temporary name, numbered by a spare id, prepared ahead by the journal's background thread
//! ([`Storage::create_spare`]) and given its segment name by [`Storage::install_spare`] once the
//! segment before it is durable. A spare's name never parses as a segment's, so listing,
//! inspection and tools see only installed segments.

use std::io;
use std::path::Path;

/// A directory of segment files, each named by the sequence number of its first record.
pub trait Storage {
    /// An open segment file. `Send`, because spares are prepared on the journal's background
    /// thread and handed to the writer.
    type Segment: SegmentStorage + Send + 'static;
    /// A second handle on the same directory, for the journal's background thread.
    type Helper: Storage<Segment = Self::Segment> + Send + 'static;

    /// A handle on the same directory for the journal's background thread: it prepares spares,
    /// syncs full segments and installs spares while the writer goes on appending. It takes no
    /// lock of its own (the writer's handle holds it).
    fn helper(&self) -> io::Result<Self::Helper>;

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

    /// Makes creations, renames and removals of segment and spare files durable (fsync of the
    /// directory).
    fn sync_dir(&mut self) -> io::Result<()>;

    /// Spare ids of the spare files present, ascending.
    fn list_spares(&self) -> io::Result<Vec<u64>>;

    /// Creates spare `spare_id`: a file under a temporary name, preallocated to `len_bytes` zero
    /// bytes, opened, with every page touched so that the first write into each costs no page
    /// fault, and its directory entry durable before returning. Fails if it already exists.
    fn create_spare(&mut self, spare_id: u64, len_bytes: u64) -> io::Result<Self::Segment>;

    /// Opens an existing spare file.
    fn open_spare(&self, spare_id: u64) -> io::Result<Self::Segment>;

    /// Spare `spare_id` (left by an earlier process), ready to be written as a fresh one would
    /// be ([`Storage::create_spare`]) if it is exactly `len_bytes` long and every byte is zero;
    /// `None` if not. Reading it whole is cheaper than making a new one (no allocation, no
    /// zeroing, no zeros written to disk again).
    fn reuse_spare(&mut self, spare_id: u64, len_bytes: u64) -> io::Result<Option<Self::Segment>> {
        let spare = self.open_spare(spare_id)?;
        let bytes = spare.bytes();
        let blank = bytes.len() as u64 == len_bytes && crate::layout::end_of_non_zero(bytes).is_none();
        Ok(blank.then_some(spare))
    }

    /// Deletes a spare file. The journal calls [`Storage::sync_dir`] afterwards.
    fn remove_spare(&mut self, spare_id: u64) -> io::Result<()>;

    /// Gives spare `spare_id` the segment name of `base_seq` (a rename). Open handles on the
    /// spare stay valid and now refer to the segment. Fails, changing nothing, if a segment file
    /// of that name exists. Not durable until [`Storage::sync_dir`].
    fn install_spare(&mut self, spare_id: u64, base_seq: u64) -> io::Result<()>;
}

/// One open segment: bytes that can be read in place, written at an offset and synced by range.
pub trait SegmentStorage {
    /// The whole segment as currently visible to this process (for a mapping: the page cache),
    /// including every earlier [`SegmentStorage::write_at`] through this handle.
    fn bytes(&self) -> &[u8];

    /// Copies `data` to `offset`. After it returns, the bytes survive a crash of this process
    /// but not of the machine. `offset + data.len()` must be within the segment.
    fn write_at(&mut self, offset: usize, data: &[u8]) -> io::Result<()>;

    /// A second, read-only handle of the same segment file, seeing the same bytes. The writer
    /// reads a full segment through it after a rollover, so that no writable mapping of the
    /// segment is left when it is written back.
    fn reopen_read_only(&self) -> io::Result<Self>
    where
        Self: Sized;

    /// A read-only handle made ahead of need: like [`SegmentStorage::reopen_read_only`], but it
    /// must go on seeing every later write through this handle (a second shared mapping of the
    /// same file does). The rollover thread makes it with each spare, so the writer swaps it in
    /// when the segment is full instead of mapping the file on its own thread. `None` (the
    /// default): the storage cannot, and the writer reopens at rollover.
    fn read_only_twin(&self) -> io::Result<Option<Self>>
    where
        Self: Sized,
    {
        Ok(None)
    }

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
