//! Admin actions: POST routes that change what the appliance does, admin scope only, each
//! logged with the caller's identity. Add an action here: a handler and one line in
//! [`register`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use super::auth::Identity;
use super::server::{AdminContext, Routes};

/// Adds the admin actions to `routes`.
pub fn register(routes: Routes) -> Routes {
    routes.admin("/admin/snapshot", post(snapshot)).admin("/admin/step-down", post(step_down))
}

/// `POST /admin/step-down`: a planned switchover (as SIGUSR2): the process that owns the
/// appliance stops taking input, drains, hands over to the standby once it holds every record,
/// and exits; the standby promotes itself. 202 Accepted; 409 without an attached standby.
async fn step_down(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
) -> (StatusCode, &'static str) {
    if !ctx.shared.standby_attached.load(Ordering::Acquire) {
        return (StatusCode::CONFLICT, "no standby is attached to take over\n");
    }
    tracing::warn!(by = %who.name, "admin: step-down requested");
    ctx.shared.step_down_requested.store(true, Ordering::Release);
    (StatusCode::ACCEPTED, "step-down requested\n")
}

/// `POST /admin/snapshot`: asks the snapshot follower for a snapshot now (it takes it at the
/// next command it follows; an idle appliance sequences a Tick every second). 202 Accepted;
/// 409 when no follower runs (`snapshot.every_commands = 0`).
async fn snapshot(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
) -> (StatusCode, &'static str) {
    if !ctx.follower {
        return (StatusCode::CONFLICT, "no snapshot follower runs (snapshot.every_commands = 0)\n");
    }
    tracing::info!(by = %who.name, "admin: snapshot requested");
    ctx.shared.snapshot_requested.store(true, Ordering::Release);
    (StatusCode::ACCEPTED, "snapshot requested\n")
}

/// The snapshot follower's half of `POST /admin/snapshot` (on its thread, after a command).
pub(crate) fn take_requested_snapshot(follower: &mut snapshot::Follower, m: &super::recorder::SnapshotMetrics) {
    match follower.snapshot_now() {
        Ok(info) => {
            m.written.add(1);
            m.last_seq.set(info.seq);
            tracing::info!(seq = info.seq, "snapshot written (asked for on the admin port)");
        }
        Err(e) => {
            m.failures.add(1);
            tracing::error!(error = %e, "the snapshot asked for on the admin port failed");
        }
    }
}
