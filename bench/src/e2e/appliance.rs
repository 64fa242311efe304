//! The appliance under test: the default configuration with one account and one session of
//! the protocol under test per load connection (SBE sessions for the SBE run, FIX sessions
//! `BENCH<n>` for the FIX run), started in-process through `gateway::pipeline::start` on a
//! scratch data directory, both listeners on 127.0.0.1:0. Only the driven protocol's sessions
//! are configured: a configured session that is not connected still gets every report of its
//! account, stored for its resend (nothing acknowledged is lost to a disconnect), and that
//! work — encoding each report a second time in the other protocol — is not what a run of one
//! protocol should measure.
//!
//! The gateway has no builder for configurations; its `Config` has public fields, so this
//! starts from `Config::default_config()` (the embedded default, what `sable run` uses) and
//! changes only what the benchmark needs, listed in [`Setup::describe`].

use std::path::Path;

use gateway::config::{Config, DurabilityPolicy, FixSessionConfig, SessionConfig, StpConfig, ThrottlePolicy, WaitKind};
use gateway::pipeline::{self, Appliance};
use gateway::standby::{self, Standby};

use super::wire::{FIX_TARGET_COMP_ID, fix_sender_comp_id};

/// Most connections one run may open: the default `sessions_limits.max_connections`.
pub const MAX_CONNECTIONS: usize = 64;

/// Per-connection outbound buffer: large enough that a receiver briefly descheduled on the
/// shared 2-core machine is not disconnected as a slow consumer (the default is 1 MiB, ~6,300
/// execution reports).
pub const OUTBOUND_BUFFER_BYTES: usize = 16 << 20;

/// Segment sizes for a run that crosses rollovers: the journal's (`[journal]
/// segment_len_bytes`) and each session store's (`[sessions_limits] store_segment_bytes`,
/// `store_retained_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSizes {
    /// Journal segment file length.
    pub journal_segment_len_bytes: u64,
    /// Session-store segment file length.
    pub store_segment_bytes: u64,
    /// Session-store bytes kept per session (older segments are dropped).
    pub store_retained_bytes: u64,
}

/// The soak's segments, small enough for many rollovers of each in 30 s at 100k orders/s over
/// two connections: a journal record of an order is about 85 bytes (8.5 MB/s, a 16 MiB
/// segment every ~2 s); each SBE session stores about 430 bytes of reports per order
/// (~21 MB/s, a 4 MiB segment every ~0.2 s; the default 16 MiB rolls every ~0.8 s), and
/// retention drops segments beyond 16 MiB.
pub const SOAK_SEGMENTS: SegmentSizes =
    SegmentSizes { journal_segment_len_bytes: 16 << 20, store_segment_bytes: 4 << 20, store_retained_bytes: 16 << 20 };

/// Account and session ids of connection `c` (session ids and accounts start at 1).
pub fn account_of(c: usize) -> u32 {
    c as u32 + 1
}

/// The credentials of connection `c`.
pub fn credentials_of(c: usize) -> (u64, String, String) {
    let id = c as u64 + 1;
    (id, format!("bench{id}"), format!("bench{id}"))
}

/// What the benchmark asks of the appliance.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// When acknowledgements may leave.
    pub durability: DurabilityPolicy,
    /// How idle pipeline threads wait.
    pub wait: WaitKind,
    /// The matcher's core, for `busy-spin`.
    pub matcher_core: Option<usize>,
    /// Load connections, each its own account and session.
    pub connections: usize,
    /// Configure SBE sessions (true) or FIX sessions (false) for the connections.
    pub sbe: bool,
    /// Segment sizes instead of the default configuration's.
    pub segments: Option<SegmentSizes>,
    /// `pipeline.gateway_threads`.
    pub gateway_threads: u8,
    /// What the admin port and the recorders do (`[admin] metrics`, a read token).
    pub metrics: Metrics,
    /// `[feed] enabled`: the market-data feed on, to a multicast group on loopback with a free
    /// port (no subscriber: its cost in the appliance, not a reader's).
    pub feed: bool,
}

/// The metrics arms of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metrics {
    /// `[admin] metrics = false`: nothing recorded, no admin port.
    Off,
    /// Recorded (the default configuration), no admin port.
    On,
    /// Recorded, the admin port on with a read token, and `/metrics` scraped every second.
    Scraped,
    /// As `Scraped`, in windows that alternate with windows of `Off`, in one appliance
    /// ([`super::windows`]).
    Windows,
    /// The control of `Windows`: the same appliance and switching, both arms `Off`.
    WindowsControl,
}

impl Metrics {
    /// The arm's name in `engine=` fields.
    pub fn name(self) -> &'static str {
        match self {
            Metrics::Off => "metrics_off",
            Metrics::On => "metrics_on",
            Metrics::Scraped => "metrics_scraped",
            Metrics::Windows => "metrics_windows",
            Metrics::WindowsControl => "metrics_windows_control",
        }
    }
}

impl Setup {
    /// The configuration: the embedded default plus the changes listed in [`Setup::describe`].
    pub fn config(&self, data_dir: &Path) -> Config {
        assert!((1..=MAX_CONNECTIONS).contains(&self.connections), "connections must be in 1..={MAX_CONNECTIONS}");
        let mut c = Config::default_config();
        c.server.listen = "127.0.0.1:0".into();
        c.fix.listen = "127.0.0.1:0".into();
        c.server.data_dir = data_dir.to_path_buf();
        c.pipeline.durability = self.durability;
        c.pipeline.wait_strategy = self.wait;
        c.pipeline.matcher_core = self.matcher_core;
        c.pipeline.gateway_threads = self.gateway_threads;
        c.sessions_limits.outbound_buffer_bytes = OUTBOUND_BUFFER_BYTES;
        c.sessions_limits.max_connections = MAX_CONNECTIONS;
        c.admin.metrics = self.metrics != Metrics::Off;
        if matches!(self.metrics, Metrics::Scraped | Metrics::Windows | Metrics::WindowsControl) {
            c.admin.listen = "127.0.0.1:0".into();
            c.admin.tokens = vec![gateway::admin::auth::Token {
                name: "bench".into(),
                token: super::scrape::SCRAPE_TOKEN.into(),
                scope: gateway::admin::auth::Scope::Read,
            }];
        }
        c.feed.enabled = self.feed;
        if self.feed {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_or(0, |a| a.port());
            c.feed.group = format!("239.255.70.9:{port}");
        }
        if let Some(seg) = self.segments {
            c.journal.segment_len_bytes = seg.journal_segment_len_bytes;
            c.sessions_limits.store_segment_bytes = seg.store_segment_bytes;
            c.sessions_limits.store_retained_bytes = seg.store_retained_bytes;
        }
        let template = c.accounts.first().cloned().expect("the default configuration has an account");
        c.accounts = (0..self.connections)
            .map(|i| {
                let mut a = template.clone();
                a.id = account_of(i);
                a.stp_group = Some(a.id);
                // The flow's IOC orders may meet the same account's resting orders; they must
                // trade, not be cancelled by self-trade prevention.
                a.default_stp = StpConfig::Allow;
                a.max_open_orders = None;
                a
            })
            .collect();
        let session_template = c.sessions.first().cloned().expect("the default configuration has a session");
        c.sessions = (0..self.connections)
            .map(|i| {
                let (session_id, username, password) = credentials_of(i);
                SessionConfig {
                    session_id,
                    username,
                    password,
                    accounts: vec![account_of(i)],
                    // The benchmark measures the appliance, not its per-session throttle.
                    throttle_per_s: 0,
                    ..session_template.clone()
                }
            })
            .collect();
        if !self.sbe {
            c.sessions.clear();
        }
        c.fix_sessions = (0..if self.sbe { 0 } else { self.connections })
            .map(|i| FixSessionConfig {
                sender_comp_id: fix_sender_comp_id(i),
                target_comp_id: FIX_TARGET_COMP_ID.into(),
                username: String::new(),
                password: String::new(),
                accounts: vec![account_of(i)],
                throttle_per_s: 0,
                throttle_burst: 1,
                throttle_policy: ThrottlePolicy::Reject,
                settings: None,
            })
            .collect();
        c
    }

    /// How this configuration differs from `gateway/config/default.toml`.
    pub fn describe(&self) -> String {
        format!(
            "default.toml except: listen and fix.listen 127.0.0.1:0, scratch data_dir, durability {:?}, wait_strategy {:?}, \
             matcher_core {:?}, gateway_threads {}, metrics {}, feed {}{}, {} accounts (stp allow, no open-order limit), each with {} (no throttle), \
             outbound_buffer_bytes {} MiB{}",
            self.durability,
            self.wait,
            self.matcher_core,
            self.gateway_threads,
            match self.metrics {
                Metrics::Off => "off ([admin] metrics = false)",
                Metrics::On => "on, not scraped",
                Metrics::Scraped => "on, admin port on 127.0.0.1:0, /metrics scraped every second",
                Metrics::Windows =>
                    "admin port on 127.0.0.1:0; windows A B B A: A off, B on, /metrics scraped once a second in B",
                Metrics::WindowsControl =>
                    "admin port on 127.0.0.1:0; windows A B B A, both off, not scraped (the control)",
            },
            if self.feed { "on (group 239.255.70.9:<free port> on loopback, no subscriber)" } else { "off" },
            if self.durability.needs_standby() {
                ", replication.listen 127.0.0.1:0 and a standby in this process (data in <scratch>/standby, default config otherwise)"
            } else {
                ""
            },
            self.connections,
            if self.sbe { "an SBE session" } else { "a FIX session BENCH<n>->SABLE (no password)" },
            OUTBOUND_BUFFER_BYTES >> 20,
            self.segments.map_or(String::new(), |s| format!(
                ", journal segment_len_bytes {} KiB, store_segment_bytes {} KiB, store_retained_bytes {} KiB",
                s.journal_segment_len_bytes >> 10,
                s.store_segment_bytes >> 10,
                s.store_retained_bytes >> 10
            ))
        )
    }

    /// Starts the appliance on `data_dir`; with a `replicated` policy also its standby (in this
    /// process, data in `data_dir/standby`, over loopback), once it follows the primary.
    pub fn start(&self, data_dir: &Path) -> Result<(Appliance, Option<Standby>), String> {
        let mut config = self.config(data_dir);
        if self.durability.needs_standby() {
            config.replication.listen = "127.0.0.1:0".into();
        }
        let validated = config.validate().map_err(|e| format!("benchmark configuration: {e}"))?;
        let app = pipeline::start(validated).map_err(|e| format!("starting the appliance: {e}"))?;
        let Some(primary) = app.replication_addr() else { return Ok((app, None)) };
        let mut config = self.config(&data_dir.join("standby"));
        config.replication.primary = primary.to_string();
        // The standby syncs when the primary's WELCOME says so; its own policy is not used.
        config.pipeline.durability = DurabilityPolicy::Written;
        let validated = config.validate().map_err(|e| format!("standby configuration: {e}"))?;
        let standby = standby::start(validated).map_err(|e| format!("starting the standby: {e}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !standby.status().attached() {
            if std::time::Instant::now() > deadline {
                return Err("the standby did not attach within 10 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok((app, Some(standby)))
    }
}
