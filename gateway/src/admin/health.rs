//! `/health/live` (the admin thread answers: the process is up) and `/health/ready` (this
//! process can take orders and acknowledge them at its durability policy): 200 with the state,
//! 503 with the reasons otherwise.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::role::Role;
use super::server::AdminContext;

/// What `/health/ready` answers.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// `primary` or `standby`.
    pub role: &'static str,
    /// Fencing epoch (0 until fencing exists).
    pub epoch: u64,
    /// The durability policy.
    pub durability: String,
    /// Primary: whether a standby is attached; standby: whether it is attached to its primary.
    pub standby_attached: bool,
    /// Highest sequence number durable at the policy's level.
    pub seq_durable: u64,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
}

/// The readiness checks: pipeline running (no failure, no stop), journal healthy; a primary
/// has a standby attached when the policy waits for one; a standby is attached to its primary
/// (and has not diverged: that is its failure).
pub fn readiness(ctx: &AdminContext) -> Readiness {
    let shared = &ctx.shared;
    let mut reasons = Vec::new();
    if let Some(f) = shared.failure() {
        reasons.push(format!("pipeline stopped: {f}"));
    }
    if shared.stop.load(Ordering::Acquire) {
        reasons.push("shutting down".into());
    }
    if shared.metrics.journal.failures.get() > 0 {
        reasons.push("the journal failed a write".into());
    }
    let role = shared.role.role();
    let attached = shared.metrics.replication.standby_attached.get() == 1;
    match role {
        Role::Primary if shared.needs_standby.load(Ordering::Acquire) && !attached => {
            reasons.push(format!("no standby attached and the durability policy ({}) needs one", ctx.durability));
        }
        Role::Standby if !attached => reasons.push("standby: not attached to its primary".into()),
        _ => {}
    }
    Readiness {
        ready: reasons.is_empty(),
        role: role.as_str(),
        epoch: shared.role.epoch(),
        durability: ctx.durability.clone(),
        standby_attached: attached,
        seq_durable: shared.seq_durable.load(Ordering::Acquire),
        reasons,
    }
}

/// `GET /health/live`.
pub async fn live() -> &'static str {
    "live\n"
}

/// `GET /health/ready`.
pub async fn ready(State(ctx): State<Arc<AdminContext>>) -> (StatusCode, Json<Readiness>) {
    let r = readiness(&ctx);
    let status = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(r))
}
