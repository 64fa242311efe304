//! # sable-snapshot: engine snapshots and restore
//!
//! A snapshot is the engine's full image ([`engine::Engine::save`]) at a sequence number, in a
//! file written atomically (temp file, fsync, rename, directory fsync) with a checksummed header.
//! Restore is the newest snapshot that verifies and that the journal can continue, falling back
//! to older ones, plus journal replay from its sequence number ([`restore()`]). Snapshots are taken
//! by a [`Follower`] — a second engine fed the same durable commands on another thread — so the
//! primary matcher never pauses for one.
//!
//! # File layout (`snapshot-<seq, 20 digits>.snap`, little-endian)
//!
//! | offset | size | field             | meaning                                              |
//! |-------:|-----:|-------------------|------------------------------------------------------|
//! | 0      | 8    | `magic`           | `b"SABLESNP"`                                        |
//! | 8      | 2    | `format_version`  | [`store::FORMAT_VERSION`] (1)                        |
//! | 10     | 2    | `reserved`        | zero                                                 |
//! | 12     | 4    | `engine_format`   | the image's `engine::state::STATE_FORMAT_VERSION`    |
//! | 16     | 8    | `seq`             | last command applied; equals the file name           |
//! | 24     | 8    | `created_ns`      | wall clock at writing (retention by age only)        |
//! | 32     | 8    | `image_len_bytes` | length of the image                                  |
//! | 40     | 4    | `image_checksum`  | CRC32C of the image                                  |
//! | 44     | 4    | `header_checksum` | CRC32C of bytes 0..44                                |
//! | 48     | n    | image             | `Engine::save` bytes (postcard, canonical order)     |
//!
//! # Invariants
//! - A snapshot is complete or absent: readers never see a partial file under the final name.
//! - Every load re-checks both checksums and every engine invariant.
//! - Restore never uses a snapshot beyond the journal's end (it could hold unacknowledged
//!   commands the journal lost) and never guesses across an archived gap.

pub mod cli;
pub mod follower;
pub mod restore;
pub mod store;

pub use follower::{Follower, FollowerError};
pub use restore::{RestoreError, RestoreReport, replay_journal, replay_journal_observed, restore, restore_observed};
pub use store::{Retention, SnapshotError, SnapshotInfo, SnapshotStore};
