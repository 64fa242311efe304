//! The snapshot directory: atomic writes, listing, verification, loading and retention.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use engine::Engine;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"SABLESNP";
/// Version of the file layout (the header below); the engine image carries its own version.
pub const FORMAT_VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN_BYTES: usize = 48;
/// Largest image accepted, so a damaged length field cannot make a reader allocate wildly.
pub const MAX_IMAGE_LEN_BYTES: u64 = 64 << 30;

/// The fixed file header (little-endian).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SnapshotHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub format_version: U16,
    /// Zero.
    pub reserved: U16,
    /// `engine::state::STATE_FORMAT_VERSION` of the image.
    pub engine_format: U32,
    /// Sequence number of the last command applied to the imaged engine.
    pub seq: U64,
    /// Wall clock when written, ns since the Unix epoch (for retention by age only).
    pub created_ns: U64,
    /// Image length in bytes.
    pub image_len_bytes: U64,
    /// CRC32C of the image.
    pub image_checksum: U32,
    /// CRC32C of header bytes 0..44.
    pub header_checksum: U32,
}

const _: () = assert!(std::mem::size_of::<SnapshotHeader>() == HEADER_LEN_BYTES);

impl SnapshotHeader {
    fn computed_checksum(&self) -> u32 {
        crc32c::crc32c(&self.as_bytes()[..HEADER_LEN_BYTES - 4])
    }
}

/// A snapshot file as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Sequence number the image is at.
    pub seq: u64,
    /// When it was written, ns since the Unix epoch.
    pub created_ns: u64,
    /// Image length in bytes.
    pub image_len_bytes: u64,
    /// The file.
    pub path: PathBuf,
}

/// What is wrong with a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Header unreadable, wrong magic or version, or checksum mismatch.
    #[error("{path}: bad header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The image's checksum does not match: the file is damaged.
    #[error("{path}: image checksum mismatch (file damaged)")]
    BadImage {
        /// The file.
        path: PathBuf,
    },
    /// The image checks out but the engine refuses it.
    #[error("{path}: engine refused the image: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        source: engine::LoadError,
    },
    /// No snapshot at that sequence number.
    #[error("no snapshot at seq {0}")]
    NotFound(u64),
}

/// How many snapshots to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Always keep the newest `keep_last` (at least 1).
    pub keep_last: usize,
    /// Also delete snapshots older than this, except the newest one; `None` = no age limit.
    pub max_age_ns: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { keep_last: 3, max_age_ns: None }
    }
}

/// A directory of snapshot files `snapshot-<seq, 20 digits>.snap`.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SnapshotStore {
    /// Opens (creating) the directory and removes temporary files of interrupted writes.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(SnapshotStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{seq:020}.snap"))
    }

    /// Writes the engine's image durably: to a temporary file, fsync, rename, fsync of the
    /// directory. A crash at any point leaves either no snapshot or a complete one.
    pub fn write(&self, engine: &Engine, created_ns: u64) -> Result<SnapshotInfo, SnapshotError> {
        self.write_image(engine.seq(), &engine.save(), created_ns)
    }

    /// Writes an image previously produced by `Engine::save` at `seq`.
    pub fn write_image(&self, seq: u64, image: &[u8], created_ns: u64) -> Result<SnapshotInfo, SnapshotError> {
        let mut header = SnapshotHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION.into(),
            reserved: 0.into(),
            engine_format: engine::state::STATE_FORMAT_VERSION.into(),
            seq: seq.into(),
            created_ns: created_ns.into(),
            image_len_bytes: (image.len() as u64).into(),
            image_checksum: crc32c::crc32c(image).into(),
            header_checksum: 0.into(),
        };
        header.header_checksum = header.computed_checksum().into();
        let path = self.path_for(seq);
        let tmp = self.dir.join(format!(".snapshot-{seq:020}.tmp"));
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(header.as_bytes()).map_err(io_err(&tmp))?;
        f.write_all(image).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(SnapshotInfo { seq, created_ns, image_len_bytes: image.len() as u64, path })
    }

    /// Snapshot files present, oldest first, by the header they claim (not verified).
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(seq) = name.strip_prefix("snapshot-").and_then(|s| s.strip_suffix(".snap")) else { continue };
            let Ok(seq) = seq.parse::<u64>() else { continue };
            let (created_ns, image_len_bytes) = match read_header(&path) {
                Ok(h) => (h.created_ns.get(), h.image_len_bytes.get()),
                Err(_) => (0, 0), // listed anyway so `verify` can say what is wrong
            };
            out.push(SnapshotInfo { seq, created_ns, image_len_bytes, path });
        }
        out.sort_by_key(|s| s.seq);
        Ok(out)
    }

    /// Reads and checks the snapshot at `seq`, returning its image bytes.
    pub fn read_image(&self, seq: u64) -> Result<(SnapshotInfo, Vec<u8>), SnapshotError> {
        let path = self.path_for(seq);
        if !path.exists() {
            return Err(SnapshotError::NotFound(seq));
        }
        read_verified(&path, seq)
    }

    /// Checks the snapshot at `seq` completely: header, image checksum, and that the engine
    /// loads it (every invariant holds).
    pub fn verify(&self, seq: u64) -> Result<SnapshotInfo, SnapshotError> {
        self.load(seq).map(|(info, _)| info)
    }

    /// Loads the engine imaged at `seq`.
    pub fn load(&self, seq: u64) -> Result<(SnapshotInfo, Engine), SnapshotError> {
        let (info, image) = self.read_image(seq)?;
        let engine = Engine::load(&image).map_err(|source| SnapshotError::Load { path: info.path.clone(), source })?;
        if engine.seq() != seq {
            return Err(SnapshotError::BadHeader { path: info.path, reason: "image seq differs from header seq" });
        }
        Ok((info, engine))
    }

    /// Deletes snapshots the policy does not keep; returns what was deleted. The newest
    /// snapshot is always kept.
    pub fn retain(&self, policy: Retention, now_ns: u64) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut all = self.list()?;
        all.reverse(); // newest first
        let mut removed = Vec::new();
        for (rank, s) in all.into_iter().enumerate() {
            let too_many = rank >= policy.keep_last.max(1);
            let too_old = rank > 0 && policy.max_age_ns.is_some_and(|age| now_ns.saturating_sub(s.created_ns) > age);
            if too_many || too_old {
                fs::remove_file(&s.path).map_err(io_err(&s.path))?;
                removed.push(s);
            }
        }
        if !removed.is_empty() {
            sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok(removed)
    }
}

fn read_header(path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut buf = [0u8; HEADER_LEN_BYTES];
    f.read_exact(&mut buf)
        .map_err(|_| SnapshotError::BadHeader { path: path.into(), reason: "file shorter than a header" })?;
    let h = SnapshotHeader::read_from_bytes(&buf).expect("buffer has the header's size");
    let bad = |reason| Err(SnapshotError::BadHeader { path: path.into(), reason });
    if h.magic != MAGIC {
        return bad("wrong magic");
    }
    if h.header_checksum.get() != h.computed_checksum() {
        return bad("header checksum mismatch");
    }
    if h.format_version.get() != FORMAT_VERSION {
        return bad("unsupported format version");
    }
    if h.image_len_bytes.get() > MAX_IMAGE_LEN_BYTES {
        return bad("image length out of range");
    }
    Ok(h)
}

fn read_verified(path: &Path, seq: u64) -> Result<(SnapshotInfo, Vec<u8>), SnapshotError> {
    let h = read_header(path)?;
    if h.seq.get() != seq {
        return Err(SnapshotError::BadHeader { path: path.into(), reason: "header seq differs from file name" });
    }
    let bytes = fs::read(path).map_err(io_err(path))?;
    let image = &bytes[HEADER_LEN_BYTES..];
    if image.len() as u64 != h.image_len_bytes.get() || crc32c::crc32c(image) != h.image_checksum.get() {
        return Err(SnapshotError::BadImage { path: path.into() });
    }
    let info =
        SnapshotInfo { seq, created_ns: h.created_ns.get(), image_len_bytes: image.len() as u64, path: path.into() };
    Ok((info, image.to_vec()))
}
