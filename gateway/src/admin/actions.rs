//! Admin actions: POST routes that change what the appliance does, admin scope only, each
//! logged with the caller's identity. Add an action here: a handler and one line in
//! [`register`].
//!
//! Market actions (halt/resume/close, mass cancel, kill switches, reload) go through the
//! operator [`Desk`]: they are sequenced and journaled like orders, and the answer is their
//! audit records (JSON), once durable and applied: 200 when applied, 422 when the engine
//! refused (the record says why), 409 when nothing was sequenced (not the primary, no such
//! session, stopping).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use engine::{AccountId, InstrumentId, MassCancelTarget, OperatorAction, TradingStatus};

use super::auth::Identity;
use super::desk::{Desk, DeskAction};
use super::server::{AdminContext, Routes};
use crate::audit::{AuditRecord, Filter};

/// Adds the admin actions to `routes`.
pub fn register(routes: Routes) -> Routes {
    routes
        .admin("/admin/snapshot", post(snapshot))
        .admin("/admin/step-down", post(step_down))
        .admin("/admin/promote", post(promote))
        .admin("/admin/instruments/:id/:status", post(trading_status))
        .admin("/admin/mass-cancel", post(mass_cancel))
        .admin("/admin/kill/:kind/:name", post(kill))
        .admin("/admin/release/:kind/:name", post(release))
        .admin("/admin/reload", post(reload))
        .read("/admin/audit", get(audit))
}

/// Runs `f` with the desk on the blocking pool (the desk waits for the gateway thread).
async fn with_desk<T: Send + 'static>(
    ctx: &AdminContext,
    f: impl FnOnce(&Desk) -> Result<T, String> + Send + 'static,
) -> Result<T, Response> {
    let Some(desk) = ctx.desk.clone() else {
        return Err(
            (StatusCode::CONFLICT, "not the primary: market actions go to the primary's admin port\n").into_response()
        );
    };
    match tokio::task::spawn_blocking(move || f(&desk)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::CONFLICT, format!("{e}\n")).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

/// Submits `action` by `who` and answers with its audit records.
async fn act(ctx: Arc<AdminContext>, who: Identity, action: DeskAction) -> Response {
    tracing::warn!(by = %who.name, ?action, "admin: market action");
    match with_desk(&ctx, move |d| d.submit(&who.name, action)).await {
        Ok(records) => answer(records, Vec::new()),
        Err(r) => r,
    }
}

fn answer(records: Vec<AuditRecord>, later: Vec<String>) -> Response {
    let refused = records.iter().any(|r| r.entry.result != "ok");
    let code = if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (code, Json(serde_json::json!({ "records": records, "later": later }))).into_response()
}

/// `POST /admin/instruments/{id}/{halt|resume|close}`.
async fn trading_status(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
    Path((id, status)): Path<(u32, String)>,
) -> Response {
    let status = match status.as_str() {
        "halt" => TradingStatus::Halted,
        "resume" => TradingStatus::Open,
        "close" => TradingStatus::Closed,
        other => return (StatusCode::NOT_FOUND, format!("{other}: halt, resume or close\n")).into_response(),
    };
    let action = OperatorAction::SetTradingStatus { instrument: InstrumentId(id), status };
    act(ctx, who, DeskAction::Engine(action)).await
}

/// `POST /admin/mass-cancel?account=&instrument=` (`?all=true` for every order).
#[derive(serde::Deserialize)]
struct Scope {
    account: Option<u32>,
    instrument: Option<u32>,
    #[serde(default)]
    all: bool,
}

async fn mass_cancel(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
    Query(q): Query<Scope>,
) -> Response {
    let target = match (q.account, q.instrument, q.all) {
        (Some(a), i, false) => MassCancelTarget::Account(AccountId(a), i.map(InstrumentId)),
        (None, Some(i), false) => MassCancelTarget::Instrument(InstrumentId(i)),
        (None, None, true) => MassCancelTarget::All,
        _ => {
            let why = "name an account, an instrument, both, or all=true alone\n";
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    act(ctx, who, DeskAction::Engine(OperatorAction::MassCancel(target))).await
}

/// `POST /admin/kill/{account|session}/{id or name}`: cancel all, refuse new orders.
async fn kill(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    switch(ctx, who, &kind, name, true).await
}

/// `POST /admin/release/{account|session}/{id or name}`: take new orders again.
async fn release(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    switch(ctx, who, &kind, name, false).await
}

async fn switch(ctx: Arc<AdminContext>, who: Identity, kind: &str, name: String, engaged: bool) -> Response {
    let action = match (kind, name.parse::<u32>()) {
        ("account", Ok(a)) => DeskAction::Engine(OperatorAction::KillAccount { account: AccountId(a), engaged }),
        ("session", _) => DeskAction::Session { name, engaged },
        _ => return (StatusCode::NOT_FOUND, "account/<id> or session/<name>\n").into_response(),
    };
    act(ctx, who, action).await
}

/// `POST /admin/reload`: credentials, certificates and accounts from the configuration file.
async fn reload(State(ctx): State<Arc<AdminContext>>, Extension(who): Extension<Identity>) -> Response {
    tracing::warn!(by = %who.name, "admin: reload requested");
    match with_desk(&ctx, move |d| d.reload(&who.name)).await {
        Ok(r) => answer(r.records, r.later),
        Err(r) => r,
    }
}

/// `GET /admin/audit?by=&action=&target=&since_seq=&since_ns=&limit=`: the audit records, as
/// JSON lines.
async fn audit(State(ctx): State<Arc<AdminContext>>, Query(filter): Query<Filter>) -> Response {
    let Some(desk) = ctx.desk.clone() else {
        return (StatusCode::CONFLICT, "not the primary: the audit log is served by the primary\n").into_response();
    };
    let mut body = String::new();
    for r in desk.audit().select(&filter) {
        body.push_str(&serde_json::to_string(&r).unwrap_or_default());
        body.push('\n');
    }
    (StatusCode::OK, body).into_response()
}

/// `POST /admin/promote` (standby only): promote this standby now, as SIGUSR1 does.
async fn promote(
    State(ctx): State<Arc<AdminContext>>,
    Extension(who): Extension<Identity>,
) -> (StatusCode, &'static str) {
    let Some(flag) = &ctx.promote else {
        return (StatusCode::CONFLICT, "not a standby\n");
    };
    tracing::warn!(by = %who.name, "admin: promotion requested");
    flag.store(true, Ordering::Release);
    (StatusCode::ACCEPTED, "promotion requested\n")
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
