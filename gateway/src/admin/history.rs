//! The dashboard's memory: one [`Sample`] per second (per-stage percentiles of that second,
//! rates, sessions, role, lag, alerts), the last [`HISTORY_SECONDS`] kept in a bounded ring.
//! Only the admin thread samples and reads it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::histogram::HistogramSnapshot;
use super::metrics::stage_histograms;
use super::server::AdminContext;
use super::{ALERT_ACK_P99_NS, ALERT_STANDBY_LAG_RECORDS, HISTORY_SECONDS};

/// One stage's latencies over one second.
#[derive(Clone, Debug, Serialize)]
pub struct StageSample {
    /// The stage (`sequenced`, `matched`, `durable`, `sent`, `ack`).
    pub stage: &'static str,
    /// Values recorded in the second.
    pub count: u64,
    /// Percentiles and maximum, in ns.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Maximum (bucket edge).
    pub max_ns: u64,
}

/// One second of the appliance.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Unix time of the sample, in ms.
    pub t_ms: u64,
    /// Per stage, in pipeline order, then order → ack.
    pub stages: Vec<StageSample>,
    /// Requests received in the second.
    pub requests_per_s: u64,
    /// Reports sent in the second.
    pub reports_per_s: u64,
    /// Rejects (engine and gateway) in the second.
    pub rejects_per_s: u64,
    /// Connections open.
    pub connections: u64,
    /// Sessions logged on.
    pub logged_on: u64,
    /// `primary` or `standby`.
    pub role: &'static str,
    /// Fencing epoch.
    pub epoch: u64,
    /// Whether a standby is attached.
    pub standby_attached: bool,
    /// Records written here and not in the standby's journal.
    pub replication_lag_records: u64,
    /// Whether `/health/ready` passes.
    pub ready: bool,
    /// What is not normal (empty: all normal).
    pub alerts: Vec<String>,
}

#[derive(Default)]
struct Totals {
    requests: u64,
    reports: u64,
    rejects: u64,
    journal_failures: u64,
}

/// The ring of samples and what the next one is computed against.
#[derive(Default)]
pub struct History {
    samples: VecDeque<Sample>,
    previous: Option<(Vec<HistogramSnapshot>, Totals)>,
}

fn totals(ctx: &AdminContext) -> Totals {
    let m = &ctx.shared.metrics;
    let requests = m.gateway.requests.iter().flatten().map(|c| c.get()).sum();
    let reports = m.publisher.reports.iter().map(|c| c.get()).sum();
    let rejects = m.publisher.rejects.iter().map(|c| c.get()).sum::<u64>()
        + m.gateway.gateway_rejects.get()
        + m.gateway.not_authorised.get();
    Totals { requests, reports, rejects, journal_failures: m.journal.failures.get() }
}

impl History {
    /// Takes this second's sample.
    pub fn sample(&mut self, ctx: &AdminContext) {
        let mut snaps: Vec<(&'static str, HistogramSnapshot)> = stage_histograms(ctx).into_iter().collect();
        snaps.push(("ack", ctx.shared.metrics.publisher.order_to_ack.snapshot()));
        let now = totals(ctx);
        let Some((prev_snaps, prev)) = self.previous.take() else {
            self.previous = Some((snaps.into_iter().map(|(_, s)| s).collect(), now));
            return;
        };
        let stages: Vec<StageSample> = snaps
            .iter()
            .zip(&prev_snaps)
            .map(|((stage, s), p)| {
                let d = s.since(p);
                StageSample {
                    stage,
                    count: d.count(),
                    p50_ns: d.quantile_ns(0.5),
                    p99_ns: d.quantile_ns(0.99),
                    p999_ns: d.quantile_ns(0.999),
                    max_ns: d.max_ns,
                }
            })
            .collect();
        let sample = self.build(ctx, stages, &now, &prev);
        if self.samples.len() == HISTORY_SECONDS {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.previous = Some((snaps.into_iter().map(|(_, s)| s).collect(), now));
    }

    fn build(&self, ctx: &AdminContext, stages: Vec<StageSample>, now: &Totals, prev: &Totals) -> Sample {
        let m = &ctx.shared.metrics;
        let health = super::health::readiness(ctx);
        let written = ctx.shared.seq_written.load(Ordering::Acquire);
        let lag = if ctx.replication { written.saturating_sub(m.replication.standby_written_seq.get()) } else { 0 };
        let mut alerts = health.reasons.clone();
        let ack = stages.last().map_or(0, |s| s.p99_ns);
        if ack > ALERT_ACK_P99_NS {
            alerts.push(format!("order → ack p99 {} µs is over {} µs", ack / 1_000, ALERT_ACK_P99_NS / 1_000));
        }
        if lag > ALERT_STANDBY_LAG_RECORDS {
            alerts.push(format!("standby lags {lag} records"));
        }
        if now.journal_failures > prev.journal_failures {
            alerts.push("journal write failed".into());
        }
        let (requests, rejects) =
            (now.requests - prev.requests.min(now.requests), now.rejects.saturating_sub(prev.rejects));
        if rejects > 10 && rejects * 2 > requests {
            alerts.push(format!("{rejects} rejects in the last second"));
        }
        if m.replication.degraded.get() == 1 {
            alerts.push("standby lost: acknowledging at local durability".into());
        }
        Sample {
            t_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            stages,
            requests_per_s: requests,
            reports_per_s: now.reports.saturating_sub(prev.reports),
            rejects_per_s: rejects,
            connections: m.gateway.connections.iter().map(|c| c.get()).sum(),
            logged_on: m.gateway.logged_on.iter().map(|c| c.get()).sum(),
            role: health.role,
            epoch: health.epoch,
            standby_attached: health.standby_attached,
            replication_lag_records: lag,
            ready: health.ready,
            alerts,
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }
}
