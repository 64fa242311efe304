//! `/metrics`: every recorder in the Prometheus text exposition format (version 0.0.4). Names
//! follow Prometheus' conventions: one `sable_` prefix, base units (`_seconds`, `_bytes`),
//! `_total` on counters, `sable_build_info` for version and role. Rendering happens on the
//! admin thread from atomic reads.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::histogram::{BUCKETS, HistogramSnapshot, bucket_upper_ns};
use super::recorder::{PROTOCOLS, REJECT_REASONS, REQUEST_TYPES};
use super::server::AdminContext;

/// Names of the engine's reject reasons by code (`RejectReason as usize`); 0 is unused.
pub const REJECT_REASON_NAMES: [&str; REJECT_REASONS] = [
    "none",
    "unknown_instrument",
    "instrument_not_open",
    "unknown_account",
    "duplicate_cl_ord_id",
    "unknown_order",
    "qty_below_min",
    "qty_above_max",
    "price_outside_band",
    "no_reference_price",
    "invalid_display_qty",
    "expire_time_in_past",
    "notional_above_max",
    "account_max_order_qty",
    "account_max_order_notional",
    "account_max_open_orders",
    "account_open_buy_notional",
    "account_open_sell_notional",
    "would_take_liquidity",
    "invalid_post_only",
    "order_capacity",
    "level_capacity",
    "instrument_exists",
    "instrument_has_orders",
    "invalid_spec",
    "id_out_of_range",
    "not_replaceable",
    "kill_switch",
    "too_many_kill_switches",
];

/// Smallest and largest histogram bucket edges exported (about 100 ns and 134 ms).
const EXPORT_MIN_NS: u64 = 96;
const EXPORT_MAX_NS: u64 = 134_217_728;

/// The exported `le` edges, in ns: every second internal edge (four per power of two, steps of
/// at most 25 %), from [`EXPORT_MIN_NS`] to [`EXPORT_MAX_NS`].
pub fn exported_edges_ns() -> Vec<u64> {
    (0..BUCKETS)
        .filter(|i| i % 2 == 1)
        .map(bucket_upper_ns)
        .filter(|e| (EXPORT_MIN_NS..=EXPORT_MAX_NS).contains(e))
        .collect()
}

/// `GET /metrics`.
pub async fn handler(State(ctx): State<Arc<AdminContext>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&ctx))
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: u64) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    fn histogram(&mut self, name: &str, labels: &str, h: &HistogramSnapshot, edges: &[u64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for &e in edges {
            let le = e as f64 / 1e9;
            let _ = writeln!(self.0, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}", h.count_below(e));
        }
        let count = h.count();
        let _ = writeln!(self.0, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = h.sum_ns as f64 / 1e9;
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name}_sum {sum}\n{name}_count {count}");
        } else {
            let _ = writeln!(self.0, "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}");
        }
    }
}

/// The whole exposition.
pub fn render(ctx: &AdminContext) -> String {
    let mut out = Out(String::with_capacity(64 * 1024));
    info(&mut out, ctx);
    gateway(&mut out, ctx);
    pipeline(&mut out, ctx);
    journal(&mut out, ctx);
    replication(&mut out, ctx);
    feed(&mut out, ctx);
    latencies(&mut out, ctx);
    out.0
}

fn info(out: &mut Out, ctx: &AdminContext) {
    let role = ctx.shared.role.role().as_str();
    out.family("sable_build_info", "gauge", "Version and role of this sable process (always 1).");
    let labels = format!("version=\"{}\",role=\"{role}\"", env!("CARGO_PKG_VERSION"));
    out.sample("sable_build_info", &labels, 1);
    out.one(
        "sable_epoch",
        "gauge",
        "Leadership epoch of this node (raised by every promotion; fences a superseded primary).",
        ctx.shared.role.epoch(),
    );
    let ready = u64::from(super::health::readiness(ctx).ready);
    out.one("sable_ready", "gauge", "1 when /health/ready passes.", ready);
}

fn gateway(out: &mut Out, ctx: &AdminContext) {
    let g = &ctx.shared.metrics.gateway;
    let p = &ctx.shared.metrics.publisher;
    out.family("sable_requests_received_total", "counter", "Requests the sessions accepted and sequenced, by protocol and type (refusals count in sable_rejects_total and sable_throttled_messages_total).");
    for (pi, proto) in PROTOCOLS.iter().enumerate() {
        for (ti, ty) in REQUEST_TYPES.iter().enumerate() {
            out.sample(
                "sable_requests_received_total",
                &format!("protocol=\"{proto}\",type=\"{ty}\""),
                g.requests[pi][ti].get(),
            );
        }
    }
    let per_protocol = |out: &mut Out, name: &str, kind: &str, help: &str, get: &dyn Fn(usize) -> u64| {
        out.family(name, kind, help);
        for (pi, proto) in PROTOCOLS.iter().enumerate() {
            out.sample(name, &format!("protocol=\"{proto}\""), get(pi));
        }
    };
    per_protocol(
        out,
        "sable_execution_reports_sent_total",
        "counter",
        "Reports (execution, cancel reject, mass cancel) handed to sessions.",
        &|i| p.reports[i].get(),
    );
    per_protocol(out, "sable_connections", "gauge", "Client connections open.", &|i| g.connections[i].get());
    per_protocol(out, "sable_connections_accepted_total", "counter", "Client connections accepted.", &|i| {
        g.connections_accepted[i].get()
    });
    per_protocol(out, "sable_sessions_logged_on", "gauge", "Configured sessions logged on.", &|i| g.logged_on[i].get());
    per_protocol(
        out,
        "sable_logon_failures_total",
        "counter",
        "Logons refused for wrong credentials (each also a log line).",
        &|i| g.logon_failures[i].get(),
    );
    per_protocol(
        out,
        "sable_throttled_messages_total",
        "counter",
        "Application messages refused by a session's throttle.",
        &|i| g.throttled[i].get(),
    );
    out.family(
        "sable_rejects_total",
        "counter",
        "Requests rejected, by reason: the engine's, not_authorised (account), gateway (fields that do not convert).",
    );
    for (code, name) in REJECT_REASON_NAMES.iter().enumerate().skip(1) {
        out.sample("sable_rejects_total", &format!("reason=\"{name}\""), p.rejects[code].get());
    }
    out.sample("sable_rejects_total", "reason=\"not_authorised\"", g.not_authorised.get());
    out.sample("sable_rejects_total", "reason=\"gateway\"", g.gateway_rejects.get());
    out.one("sable_trades_total", "counter", "Trades (fills) executed.", p.trades.get());
}

fn pipeline(out: &mut Out, ctx: &AdminContext) {
    let s = &ctx.shared;
    let sequenced = s.metrics.gateway.seq_sequenced.get();
    let applied = s.seq_applied.0.load(Ordering::Acquire);
    let written = s.seq_written.load(Ordering::Acquire);
    let published = s.seq_published.load(Ordering::Acquire);
    let durable = s.seq_durable.load(Ordering::Acquire);
    out.family("sable_sequence_number", "gauge", "Highest sequence number at each point of the pipeline.");
    for (stage, v) in [
        ("sequenced", sequenced),
        ("written", written),
        ("durable", durable),
        ("applied", applied),
        ("published", published),
    ] {
        out.sample("sable_sequence_number", &format!("stage=\"{stage}\""), v);
    }
    let input = sequenced.saturating_sub(applied.min(written));
    out.one(
        "sable_input_ring_used_slots",
        "gauge",
        "Commands in the input ring not yet both journaled and applied.",
        input,
    );
    out.one("sable_input_ring_capacity_slots", "gauge", "Slots of the input ring.", ctx.input_ring_slots);
    out.one(
        "sable_output_ring_pending_commands",
        "gauge",
        "Commands applied whose output is not yet published.",
        applied.saturating_sub(published),
    );
}

fn journal(out: &mut Out, ctx: &AdminContext) {
    let j = &ctx.shared.metrics.journal;
    let sn = &ctx.shared.metrics.snapshots;
    out.one(
        "sable_journal_appended_bytes_total",
        "counter",
        "Journal record bytes appended (headers included).",
        j.appended_bytes.get(),
    );
    out.one("sable_journal_records_total", "counter", "Journal records appended.", j.records.get());
    out.one("sable_journal_commits_total", "counter", "Journal commits (one per batch).", j.commits.get());
    out.one(
        "sable_journal_failures_total",
        "counter",
        "Failed journal writes or syncs (the appliance stops on the first).",
        j.failures.get(),
    );
    out.family(
        "sable_journal_commit_duration_seconds",
        "histogram",
        "Duration of each journal commit (write-out, or sync under fsync).",
    );
    out.histogram("sable_journal_commit_duration_seconds", "", &j.commit_duration.snapshot(), &exported_edges_ns());
    out.one("sable_snapshots_written_total", "counter", "Engine snapshots written.", sn.written.get());
    out.one("sable_snapshot_failures_total", "counter", "Engine snapshots that failed.", sn.failures.get());
    out.one(
        "sable_snapshot_last_sequence_number",
        "gauge",
        "Sequence number of the last snapshot written.",
        sn.last_seq.get(),
    );
}

fn replication(out: &mut Out, ctx: &AdminContext) {
    let r = &ctx.shared.metrics.replication;
    let written = ctx.shared.seq_written.load(Ordering::Acquire);
    let attached = r.standby_attached.get();
    out.one(
        "sable_replication_enabled",
        "gauge",
        "1 when a replication port is configured.",
        u64::from(ctx.replication),
    );
    out.one("sable_standby_attached", "gauge", "1 while a standby is attached.", attached);
    out.one(
        "sable_standby_written_sequence_number",
        "gauge",
        "The standby's last reported written sequence number.",
        r.standby_written_seq.get(),
    );
    let lag = if ctx.replication { written.saturating_sub(r.standby_written_seq.get()) } else { 0 };
    out.one(
        "sable_replication_lag_records",
        "gauge",
        "Records written here and not yet in the standby's journal.",
        lag,
    );
    out.one(
        "sable_replication_degraded",
        "gauge",
        "1 while acknowledging at local durability because the standby was lost.",
        r.degraded.get(),
    );
}

fn feed(out: &mut Out, ctx: &AdminContext) {
    let f = &ctx.shared.metrics.feed;
    out.one("sable_feed_enabled", "gauge", "1 while the market-data feed runs.", f.enabled.get());
    out.one(
        "sable_feed_sequence_number",
        "gauge",
        "MoldUDP64 sequence number of the last ITCH message the feed sent.",
        f.sequence.get(),
    );
    out.one(
        "sable_feed_input_sequence_number",
        "gauge",
        "Input sequence number of the last command the feed published.",
        f.input_seq.get(),
    );
}

fn latencies(out: &mut Out, ctx: &AdminContext) {
    let m = &ctx.shared.metrics;
    let edges = exported_edges_ns();
    let name = "sable_stage_latency_seconds";
    out.family(
        name,
        "histogram",
        "Latency to each pipeline stage: sequenced from received, the others from sequenced.",
    );
    for (stage, h) in stage_histograms(ctx) {
        out.histogram(name, &format!("stage=\"{stage}\""), &h, &edges);
    }
    out.family(
        "sable_order_ack_latency_seconds",
        "histogram",
        "New order or cancel received to its acknowledgement written to the socket.",
    );
    out.histogram("sable_order_ack_latency_seconds", "", &m.publisher.order_to_ack.snapshot(), &edges);
}

/// The per-stage histograms, in pipeline order, as the dashboard names them.
pub fn stage_histograms(ctx: &AdminContext) -> [(&'static str, HistogramSnapshot); 4] {
    let m = &ctx.shared.metrics;
    [
        ("sequenced", m.gateway.received_to_sequenced.snapshot()),
        ("matched", m.publisher.sequenced_to_matched.snapshot()),
        ("durable", m.journal.sequenced_to_durable.snapshot()),
        ("sent", m.publisher.sequenced_to_sent.snapshot()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_names_follow_the_engine_codes() {
        use engine::RejectReason as R;
        for (r, name) in [
            (R::UnknownInstrument, "unknown_instrument"),
            (R::PriceOutsideBand, "price_outside_band"),
            (R::NotReplaceable, "not_replaceable"),
        ] {
            assert_eq!(REJECT_REASON_NAMES[r as usize], name);
        }
    }

    #[test]
    fn exported_edges_span_100ns_to_100ms_in_small_steps() {
        let e = exported_edges_ns();
        assert!(e[0] <= 100 && *e.last().unwrap() >= 100_000_000);
        assert!(e.windows(2).all(|w| w[1] * 4 <= w[0] * 5), "steps of at most 25 %");
    }
}
