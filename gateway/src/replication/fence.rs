//! A node's leadership record (`<data_dir>/node-state`): the epoch it is at, from which input
//! sequence number it may have acknowledged without a standby holding the input, and whether a
//! newer primary superseded it. Small, rarely written (at promotion, at a degrade, when fenced),
//! and always written whole: a temporary file, fsync, rename, fsync of the directory.
//!
//! - `epoch`: raised by one at every promotion; a node never takes records or frames of a lower
//!   one, and journals its own records at it.
//! - `local_acks_from`: the first sequence number this node may have acknowledged on local
//!   durability alone (a non-replicated policy, or a `degrade` after losing the standby). A
//!   returning old primary may cut its unreplicated suffix only below it: those records were
//!   never acknowledged.
//! - `superseded_by`: a primary of a higher epoch exists. This node refuses to run as primary
//!   again and must rejoin as a standby.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::replication::wire;
use crate::rings::Shared;

/// How often a promoted primary tells its predecessor's replication port about its epoch.
/// Shorter than any sensible `standby_timeout_ms`: an old primary that comes back is fenced
/// before it could start acknowledging on local durability.
pub(crate) const FENCE_PERIOD: Duration = Duration::from_millis(500);

/// The file's name in the data directory.
const FILE_NAME: &str = "node-state";

/// What the file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    /// The node's leadership epoch.
    pub epoch: u32,
    /// First sequence number possibly acknowledged without the standby, if any.
    pub local_acks_from: Option<u64>,
    /// The epoch of the primary that superseded this node, if one did.
    pub superseded_by: Option<u32>,
}

impl NodeState {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// Reads the node state (the default when the file does not exist yet).
    pub fn load(data_dir: &Path) -> std::io::Result<NodeState> {
        let text = match std::fs::read_to_string(Self::path(data_dir)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeState::default()),
            Err(e) => return Err(e),
        };
        let bad = |line: &str| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{FILE_NAME}: bad line {line:?}"))
        };
        let mut state = NodeState::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line.split_once('=').ok_or_else(|| bad(line))?;
            match key.trim() {
                "epoch" => state.epoch = value.trim().parse().map_err(|_| bad(line))?,
                "local_acks_from" => state.local_acks_from = Some(value.trim().parse().map_err(|_| bad(line))?),
                "superseded_by" => state.superseded_by = Some(value.trim().parse().map_err(|_| bad(line))?),
                _ => return Err(bad(line)),
            }
        }
        Ok(state)
    }

    /// Writes the node state durably (write, fsync, rename, fsync the directory).
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let mut text = format!("epoch={}\n", self.epoch);
        if let Some(seq) = self.local_acks_from {
            text.push_str(&format!("local_acks_from={seq}\n"));
        }
        if let Some(epoch) = self.superseded_by {
            text.push_str(&format!("superseded_by={epoch}\n"));
        }
        let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, Self::path(data_dir))?;
        std::fs::File::open(data_dir)?.sync_all()
    }

    /// Loads, changes with `edit`, stores; returns the new state.
    pub fn update(data_dir: &Path, edit: impl FnOnce(&mut NodeState)) -> std::io::Result<NodeState> {
        let mut state = NodeState::load(data_dir)?;
        edit(&mut state);
        state.store(data_dir)?;
        Ok(state)
    }

    /// Whether cutting this node's records after `keep_through` (up to `last_seq`) could remove
    /// an acknowledged one.
    pub fn cut_would_lose_acks(&self, keep_through: u64, last_seq: u64) -> bool {
        // The cut removes (keep_through, last_seq]; every one of them at or after
        // `local_acks_from` may have been acknowledged.
        keep_through < last_seq && self.local_acks_from.is_some_and(|from| from <= last_seq)
    }
}

/// Starts `sable-fencer`: until `shared` stops, every [`FENCE_PERIOD`] it connects to the old
/// primary's replication port and says `HELLO` at `epoch`. An old primary that hears it is
/// superseded: it records that, fails its pipeline and never acknowledges or journals again.
pub(crate) fn notify_superseded(old_primary: SocketAddr, epoch: u32, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new().name("sable-fencer".into()).spawn(move || {
        let mut told = false;
        while !shared.stop.load(Ordering::Acquire) && !shared.failed.load(Ordering::Acquire) {
            if tell(old_primary, epoch).is_ok() && !told {
                told = true;
                tracing::warn!(%old_primary, epoch, "told the old primary it is superseded");
            }
            std::thread::sleep(FENCE_PERIOD);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the fencer: the old primary is not told of the new epoch");
    }
}

/// One attempt: connect, `HELLO` at `epoch`, read the answer (a refusal naming the epoch).
fn tell(old_primary: SocketAddr, epoch: u32) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&old_primary, FENCE_PERIOD)?;
    stream.set_read_timeout(Some(FENCE_PERIOD))?;
    stream.set_write_timeout(Some(FENCE_PERIOD))?;
    let mut out = Vec::with_capacity(32);
    wire::encode(epoch, &wire::hello(0, epoch), &mut out);
    stream.write_all(&out)?;
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer)?;
    match wire::decode(&answer[..n]) {
        Ok(Some(wire::Received { frame: wire::Frame::Refuse(why), .. })) if why.contains(&epoch.to_string()) => Ok(()),
        _ => Err(std::io::Error::other("the old primary did not acknowledge the new epoch")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NodeState::load(dir.path()).unwrap(), NodeState::default());
        let state = NodeState { epoch: 4, local_acks_from: Some(17), superseded_by: Some(5) };
        state.store(dir.path()).unwrap();
        assert_eq!(NodeState::load(dir.path()).unwrap(), state);
        let raised = NodeState::update(dir.path(), |s| s.epoch += 1).unwrap();
        assert_eq!(NodeState::load(dir.path()).unwrap(), raised);
        assert_eq!(raised.epoch, 5);
    }

    #[test]
    fn a_cut_is_refused_only_when_it_reaches_a_locally_acknowledged_record() {
        let never = NodeState::default();
        assert!(!never.cut_would_lose_acks(10, 20), "everything was replicated before its ack");
        let degraded = NodeState { local_acks_from: Some(15), ..NodeState::default() };
        assert!(degraded.cut_would_lose_acks(10, 20), "records 15..=20 may have been acknowledged");
        assert!(!degraded.cut_would_lose_acks(14, 14), "nothing to cut");
        assert!(degraded.cut_would_lose_acks(14, 15));
        let later = NodeState { local_acks_from: Some(30), ..NodeState::default() };
        assert!(!later.cut_would_lose_acks(10, 20), "the degrade came after the last record");
    }
}
