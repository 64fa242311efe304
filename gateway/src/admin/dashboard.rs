//! The live latency dashboard: `GET /dashboard` is a self-contained page (no external script,
//! style or font: hosts without internet run it) that holds no data; it takes the token from
//! the URL fragment (`/dashboard#token=…`, never sent to the server) and polls
//! `GET /dashboard/data` (read scope) every second for the per-second history.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde::Serialize;

use super::history::Sample;
use super::server::AdminContext;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// What `/dashboard/data` answers.
#[derive(Serialize)]
pub struct DashboardData {
    /// sable's version.
    pub version: &'static str,
    /// The durability policy.
    pub durability: String,
    /// Per-second samples, oldest first.
    pub samples: Vec<Sample>,
}

/// `GET /dashboard`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /dashboard/data`.
pub async fn data(State(ctx): State<Arc<AdminContext>>) -> Json<DashboardData> {
    let samples = ctx.history.lock().unwrap_or_else(|p| p.into_inner()).samples().cloned().collect();
    Json(DashboardData { version: env!("CARGO_PKG_VERSION"), durability: ctx.durability.clone(), samples })
}
