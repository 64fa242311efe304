//! Automatic failover through etcd (an existing coordination service; sable holds no election
//! of its own). Two keys under `[election] prefix`:
//!
//! - `<prefix>/leader`: the leading node's name, attached to its lease (`lease_ttl_s`). It
//!   disappears when the leader stops refreshing the lease: it died, or it is cut off.
//! - `<prefix>/epoch`: the epoch of the newest leadership, changed only by compare-and-swap in
//!   the same transaction that creates the leader key: two nodes can never lead at one epoch.
//!
//! A primary (`sable run`) campaigns before it starts and leads at the epoch it won; a thread
//! (`sable-lease`) refreshes the lease every quarter TTL and, when it cannot, fails the
//! pipeline before the lease can have expired in etcd (at sent + TTL − TTL/4): nothing is
//! acknowledged or journaled after a successor could exist. A standby (`sable standby`) watches
//! the leader key and, once it is gone (or its primary handed over), campaigns and promotes
//! itself at the epoch it won. It need not wait out the lease of a primary whose process is gone
//! (its link dropped, every reconnect refused) when that primary halts without a standby: such a
//! primary acknowledged nothing the standby does not hold, so the standby revokes its lease
//! (`depose_on_refusal`) and campaigns at once; were that primary alive after all, it fails
//! itself at its next refresh. Without `[election] etcd` promotion is manual only.

pub mod etcd;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::path::Path;

use crate::config::ElectionSection;
use crate::pipeline::Appliance;
use crate::replication::fence::NodeState;
use crate::rings::Shared;
use crate::standby::Standby;
use etcd::{Etcd, EtcdError};

/// How long one etcd call may take.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a standby looks at the leader key.
pub const WATCH_PERIOD: Duration = Duration::from_millis(100);

/// A won election: the lease that holds the leader key, and the epoch to lead at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Won {
    /// The lease id.
    pub lease: i64,
    /// The epoch this node leads at.
    pub epoch: u32,
    /// When the lease was granted (its TTL counts from no earlier than this).
    pub granted_at: Instant,
}

/// One node's view of the election.
#[derive(Clone, Debug)]
pub struct Election {
    etcd: Etcd,
    section: ElectionSection,
}

impl Election {
    /// The election `section` describes, or `None` when `etcd` is empty (manual promotion).
    pub fn from_config(section: &ElectionSection) -> Option<Election> {
        (!section.etcd.is_empty())
            .then(|| Election { etcd: Etcd::new(&section.etcd, CALL_TIMEOUT), section: section.clone() })
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.section.prefix.trim_end_matches('/'))
    }

    /// Who leads now, if anyone.
    pub fn leader(&self) -> Result<Option<String>, EtcdError> {
        let leader = self.etcd.get(&self.key("leader"))?;
        Ok(leader.map(|v| String::from_utf8_lossy(&v.value).into_owned()))
    }

    /// Tries once to lead, at an epoch above both etcd's and `node_epoch`. `None`: another
    /// node leads (or won the race).
    pub fn campaign(&self, node_epoch: u32) -> Result<Option<Won>, EtcdError> {
        let (leader_key, epoch_key) = (self.key("leader"), self.key("epoch"));
        if self.etcd.get(&leader_key)?.is_some() {
            return Ok(None);
        }
        let current = self.etcd.get(&epoch_key)?;
        let (etcd_epoch, revision) = match &current {
            Some(v) => {
                let text = String::from_utf8_lossy(&v.value);
                let epoch =
                    text.trim().parse::<u32>().map_err(|_| EtcdError::Answer(format!("{epoch_key} = {text:?}")))?;
                (epoch, v.mod_revision)
            }
            None => (0, 0),
        };
        let epoch = etcd_epoch.max(node_epoch) + 1;
        let granted_at = Instant::now();
        let lease = self.etcd.grant(self.section.lease_ttl_s)?;
        let me = (leader_key.as_str(), self.section.node.as_bytes(), lease);
        if self.etcd.create_and_swap(me, (&epoch_key, epoch.to_string().as_bytes(), revision))? {
            tracing::warn!(epoch, node = self.section.node, "won the election");
            return Ok(Some(Won { lease, epoch, granted_at }));
        }
        let _ = self.etcd.revoke(lease);
        Ok(None)
    }

    /// Revokes the lease of the leader at `epoch` (the primary this standby followed: the epoch
    /// key and the leader key are written in one transaction), so its key goes now instead of
    /// when the lease runs out. True if a lease was revoked; false if etcd's epoch has moved on
    /// or no leader key is left.
    pub fn depose(&self, epoch: u32) -> Result<bool, EtcdError> {
        let current = self.etcd.get(&self.key("epoch"))?;
        if current.is_none_or(|v| String::from_utf8_lossy(&v.value).trim() != epoch.to_string()) {
            return Ok(false);
        }
        let Some(leader) = self.etcd.get(&self.key("leader"))?.filter(|l| l.lease != 0) else { return Ok(false) };
        self.etcd.revoke(leader.lease)?;
        let name = String::from_utf8_lossy(&leader.value);
        tracing::warn!(epoch, leader = %name, "deposed the leader: its process is gone (reconnects refused) and, halting without a standby, it acknowledged nothing this standby does not hold");
        Ok(true)
    }

    /// A primary's start: it leads only after winning, at the epoch it won (written to
    /// node-state for the pipeline); refused on a superseded node or while another leads.
    pub fn lead(&self, data_dir: &Path) -> Result<Won, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let state = NodeState::load(data_dir).map_err(|e| format!("node-state: {e}"))?;
        if let Some(newer) = state.superseded_by {
            return Err(format!("this node was superseded by epoch {newer}: start it as a standby"));
        }
        let Some(won) = self.campaign(state.epoch).map_err(|e| format!("election: {e}"))? else {
            let leader = self.leader().ok().flatten().unwrap_or_else(|| "another node".into());
            return Err(format!("election: {leader} leads: start this node as a standby"));
        };
        NodeState::update(data_dir, |s| s.epoch = won.epoch).map_err(|e| format!("node-state: {e}"))?;
        Ok(won)
    }

    /// Starts keeping `won`'s lease alive at once, on a thread of its own (`sable-lease`), so
    /// it outlives a slow start; [`Held::attach`] names the appliance to fail when the lease
    /// could have expired, [`Held::release`] gives it up.
    pub fn keep(&self, won: Won) -> std::io::Result<Held> {
        let (etcd, ttl) = (self.etcd.clone(), Duration::from_secs(self.section.lease_ttl_s));
        let lease = Arc::new(LeaseState::default());
        let state = Arc::clone(&lease);
        let thread =
            std::thread::Builder::new().name("sable-lease".into()).spawn(move || keep(&etcd, won, ttl, &state))?;
        Ok(Held { etcd: self.etcd.clone(), won, lease, thread })
    }

    /// [`Election::keep`] and [`Held::attach`] in one.
    pub fn hold(&self, won: Won, appliance: &Appliance) -> std::io::Result<Held> {
        let held = self.keep(won)?;
        held.attach(appliance);
        Ok(held)
    }
}

/// Whether `standby` should lead now, and after which won election (`Some(None)`: by hand,
/// without an election). By hand: `asked` (SIGUSR1) or a handover. With an election: once no
/// one leads (the primary's lease expired, or it handed over and released it, or this standby
/// deposed it: see [`Election::depose`] and `depose_on_refusal`) and this node wins; being asked
/// then also needs the win. A standby that never followed a primary in this
/// run may lack what the last one acknowledged: it campaigns only when asked.
pub fn ready_to_lead(
    standby: &Standby,
    election: Option<&Election>,
    asked: &AtomicBool,
    data_dir: &Path,
) -> Option<Option<Won>> {
    let asked_now = asked.load(Ordering::Acquire) || standby.status().handed_over();
    let Some(election) = election else { return asked_now.then_some(None) };
    if standby.status().diverged().is_some() || !(asked_now || standby.status().followed()) {
        return None;
    }
    let node_epoch = NodeState::load(data_dir).map(|s| s.epoch).unwrap_or_default();
    if election.section.depose_on_refusal
        && standby.status().primary_gone_holding_nothing_more()
        && let Err(e) = election.depose(node_epoch)
    {
        tracing::warn!(error = %e, "election: deposing the gone primary failed; waiting for its lease");
    }
    match election.campaign(node_epoch) {
        Ok(Some(won)) => Some(Some(won)),
        Ok(None) => {
            if asked_now {
                asked.store(false, Ordering::Release);
                tracing::warn!("not promoted: another node leads in etcd");
            }
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "election: etcd unreachable; staying a standby");
            None
        }
    }
}

/// What the lease thread and its owner share.
#[derive(Default)]
struct LeaseState {
    released: AtomicBool,
    /// Set when the lease could have expired.
    lost: AtomicBool,
    /// The appliance to fail then, once attached.
    target: Mutex<Option<Arc<Shared>>>,
}

impl LeaseState {
    fn fence(&self, epoch: u32) {
        let target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = target.as_ref() {
            shared.fail(lost_lease(epoch));
        }
    }
}

fn lost_lease(epoch: u32) -> String {
    format!("lost the etcd lease (epoch {epoch}): another node may lead now; fenced, nothing more is acknowledged")
}

/// A lease being kept alive.
pub struct Held {
    etcd: Etcd,
    won: Won,
    lease: Arc<LeaseState>,
    thread: std::thread::JoinHandle<()>,
}

impl Held {
    /// The appliance that leads on this lease: it fails when the lease could have expired
    /// (at once, if that has already happened).
    pub fn attach(&self, appliance: &Appliance) {
        let shared = appliance.stop_flag();
        *self.lease.target.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&shared));
        if self.lease.lost.load(Ordering::Acquire) {
            shared.fail(lost_lease(self.won.epoch));
        }
    }

    /// After the appliance has stopped: stops refreshing and revokes the lease, so a standby
    /// takes over at once instead of after the TTL.
    pub fn release(self) {
        self.lease.released.store(true, Ordering::Release);
        let _ = self.thread.join();
        match self.etcd.revoke(self.won.lease) {
            Ok(()) => tracing::info!(epoch = self.won.epoch, "released the leadership"),
            Err(e) => tracing::warn!(error = %e, "revoking the etcd lease failed; it expires on its own"),
        }
    }
}

/// The lease thread: refresh every TTL/4; past `valid_until − TTL/4` without a refresh, fence.
/// A failed appliance is left to lose the lease.
fn keep(etcd: &Etcd, won: Won, ttl: Duration, lease: &LeaseState) {
    let margin = ttl / 4;
    let mut valid_until = won.granted_at + ttl;
    let failed = || {
        let target = lease.target.lock().unwrap_or_else(|p| p.into_inner());
        target.as_ref().is_some_and(|s| s.failed.load(Ordering::Acquire))
    };
    while !lease.released.load(Ordering::Acquire) && !failed() {
        let sent = Instant::now();
        match etcd.keep_alive(won.lease) {
            Ok(left_s) if left_s > 0 => valid_until = sent + ttl,
            Ok(_) => tracing::error!(lease = won.lease, "the etcd lease has expired"),
            Err(e) => tracing::warn!(error = %e, "refreshing the etcd lease failed"),
        }
        if Instant::now() + margin >= valid_until {
            lease.lost.store(true, Ordering::Release);
            lease.fence(won.epoch);
            return;
        }
        std::thread::sleep(margin.min(valid_until.saturating_duration_since(Instant::now() + margin)));
    }
}
