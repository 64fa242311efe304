//! The admin port of `sable standby`: the same routes, reporting role `standby`. A mirror
//! thread (`sable-admin-mirror`) copies the standby's status into a [`Shared`] of its own every
//! [`MIRROR_PERIOD`], so health, metrics and the dashboard read it as they read a primary's:
//! `sable_standby_attached` is 1 while the primary streams to this standby,
//! `sable_sequence_number{stage="written"}` is how far its journal got, and a divergence is
//! the failure `/health/ready` reports. On promotion it stops before the new primary's own
//! admin port binds the same address.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::role::Role;
use super::{AdminContext, AdminServer};
use crate::config::Validated;
use crate::rings::Shared;
use crate::standby::StandbyStatus;

/// How often the standby's status is copied for the admin port.
pub const MIRROR_PERIOD: Duration = Duration::from_millis(100);

/// A standby's admin port and its mirror thread.
pub struct StandbyAdmin {
    server: AdminServer,
    stop: Arc<AtomicBool>,
    mirror: Option<JoinHandle<()>>,
}

impl StandbyAdmin {
    /// Starts the admin port of a standby when tokens are configured (`None` otherwise);
    /// `POST /admin/promote` raises `promote` (as SIGUSR1 does).
    pub fn start(
        cfg: &Validated,
        status: Arc<StandbyStatus>,
        promote: Arc<AtomicBool>,
    ) -> Result<Option<StandbyAdmin>, String> {
        let section = &cfg.raw.admin;
        let tokens = section.resolve_tokens().map_err(|e| e.to_string())?;
        if tokens.is_empty() {
            return Ok(None);
        }
        let addr = section.listen_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared::default());
        shared.role.set_role(Role::Standby);
        let durability = format!("{:?}", cfg.raw.pipeline.durability).to_lowercase();
        let slots = cfg.raw.pipeline.input_ring_slots as u64;
        let mut ctx = AdminContext::new(Arc::clone(&shared), tokens, slots, durability, true);
        ctx.follower = false;
        ctx.promote = Some(promote);
        let server = AdminServer::start(addr, ctx).map_err(|e| format!("starting the admin port: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mirror = std::thread::Builder::new()
            .name("sable-admin-mirror".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    mirror(&status, &shared);
                    std::thread::sleep(MIRROR_PERIOD);
                }
            })
            .map_err(|e| format!("spawning the admin mirror: {e}"))?;
        Ok(Some(StandbyAdmin { server, stop, mirror: Some(mirror) }))
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Stops the mirror and the port (before a promoted primary binds the address).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for StandbyAdmin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(m) = self.mirror.take()
            && m.join().is_err()
        {
            tracing::error!("the admin mirror thread panicked");
        }
        // `server` stops when this drop returns.
    }
}

fn mirror(status: &StandbyStatus, shared: &Shared) {
    let held = status.next_seq().saturating_sub(1);
    for position in [&shared.seq_written, &shared.seq_durable, &shared.seq_applied.0] {
        position.store(held, Ordering::Release);
    }
    let r = &shared.metrics.replication;
    r.enabled.set(1);
    r.standby_attached.set(u64::from(status.attached()));
    r.standby_written_seq.set(held);
    if let Some(why) = status.diverged() {
        shared.fail(format!("diverged from the primary: {why}"));
    }
}
