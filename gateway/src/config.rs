//! The appliance's configuration: TOML, with a built-in default (`gateway/config/default.toml`,
//! where every key is documented) so `sable run` works on a fresh machine.
//!
//! [`Config::parse`] reads the text; [`Config::validate`] turns it into a [`Validated`] config
//! with engine-ready instrument and account specs, or fails with the first problem, naming the
//! key (`instruments[0].tick_size: ...`).

use std::net::SocketAddr;
use std::path::PathBuf;

use engine::{AccountId, AccountSpec, EngineLimits, InstrumentId, InstrumentSpec, RiskLimits, StpMode, Symbol};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

pub use crate::limits::{MAX_COMP_ID_LEN, MAX_CONFIG_ENTRIES};
use crate::limits::{
    MAX_CONNECTIONS, MAX_GATEWAY_THREADS, MAX_HEARTBEAT_S, MAX_RING_SLOTS, MAX_SLEEP_US, MIN_OUTBOUND_BUFFER_BYTES,
    MIN_RING_SLOTS, MIN_SLEEP_US,
};

/// The built-in configuration text.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not match the schema (unknown key, wrong type).
    #[error("parsing configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// When an acknowledgement may leave the appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityPolicy {
    /// As soon as the matcher produced it.
    Memory,
    /// Once the command is in the journal's page cache.
    Written,
    /// Once the command is on stable storage.
    Fsync,
    /// Once the command is in the local journal's page cache and in the standby's journal
    /// (its page cache).
    Replicated,
    /// Once the command is on the local stable storage and on the standby's.
    #[serde(rename = "replicated+fsync")]
    ReplicatedFsync,
}

impl DurabilityPolicy {
    /// Whether acknowledgements wait for a standby.
    pub fn needs_standby(self) -> bool {
        matches!(self, DurabilityPolicy::Replicated | DurabilityPolicy::ReplicatedFsync)
    }

    /// Whether the local journal commits with a sync.
    pub fn syncs(self) -> bool {
        matches!(self, DurabilityPolicy::Fsync | DurabilityPolicy::ReplicatedFsync)
    }
}

/// What a primary does when a `replicated` policy's standby is gone or stops keeping up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandbyLoss {
    /// After `standby_timeout_ms`, acknowledge at local durability (and say so in the log)
    /// until a standby has caught up again.
    Degrade,
    /// Stop acknowledging until a standby has caught up (orders wait; nothing is lost).
    Halt,
}

/// `[replication]`: the primary's replication port and the standby's primary.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSection {
    /// Primary: the address standbys connect to; empty turns replication off.
    #[serde(default)]
    pub listen: String,
    /// Standby (`sable standby`): the primary's replication address.
    #[serde(default)]
    pub primary: String,
    /// The primary sends its state hash every this many commands; the standby compares (0: off).
    #[serde(default = "default_verify_every")]
    pub verify_every_commands: u64,
    /// With a `replicated` policy: how long a standby may be gone or behind without progress.
    #[serde(default = "default_standby_timeout_ms")]
    pub standby_timeout_ms: u64,
    /// With a `replicated` policy: what happens after that.
    #[serde(default = "default_standby_loss")]
    pub on_standby_loss: StandbyLoss,
}

fn default_verify_every() -> u64 {
    10_000
}

fn default_standby_timeout_ms() -> u64 {
    2_000
}

fn default_standby_loss() -> StandbyLoss {
    StandbyLoss::Degrade
}

impl Default for ReplicationSection {
    fn default() -> Self {
        ReplicationSection {
            listen: String::new(),
            primary: String::new(),
            verify_every_commands: default_verify_every(),
            standby_timeout_ms: default_standby_timeout_ms(),
            on_standby_loss: default_standby_loss(),
        }
    }
}

/// `[election]`: automatic failover through etcd (`election/mod.rs`); off when `etcd` is empty.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionSection {
    /// etcd client URL (`http://127.0.0.1:2379`); empty: promotion is manual only.
    #[serde(default)]
    pub etcd: String,
    /// Key prefix of this cluster's leader and epoch keys.
    #[serde(default = "default_election_prefix")]
    pub prefix: String,
    /// Leader lease TTL in seconds: a dead primary is replaced after about this long.
    #[serde(default = "default_lease_ttl_s")]
    pub lease_ttl_s: u64,
    /// This node's name in the leader key.
    #[serde(default = "default_node_name")]
    pub node: String,
    /// A standby whose `halt` primary's process is gone (the link dropped and every reconnect
    /// since was refused) revokes that primary's lease instead of waiting for it to run out.
    #[serde(default = "default_depose_on_refusal")]
    pub depose_on_refusal: bool,
}

fn default_depose_on_refusal() -> bool {
    true
}

fn default_election_prefix() -> String {
    "/sable".into()
}

/// Shortest leader lease: etcd counts TTLs in whole seconds.
const MIN_LEASE_TTL_S: u64 = 1;
/// Longest leader lease: a dead primary stays unreplaced this long at most.
const MAX_LEASE_TTL_S: u64 = 60;

fn default_lease_ttl_s() -> u64 {
    2
}

fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "sable".into(), |h| h.trim().to_owned())
}

impl Default for ElectionSection {
    fn default() -> Self {
        ElectionSection {
            etcd: String::new(),
            prefix: default_election_prefix(),
            lease_ttl_s: default_lease_ttl_s(),
            node: default_node_name(),
            depose_on_refusal: default_depose_on_refusal(),
        }
    }
}

/// How idle pipeline threads wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    /// Never sleeps (dedicated cores only).
    BusySpin,
    /// `sched_yield` in a loop.
    Yield,
    /// Sleeps between checks.
    Sleep,
    /// Yields a while, then sleeps.
    Backoff,
}

/// Self-trade prevention mode as written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StpConfig {
    /// [`StpMode::Allow`].
    Allow,
    /// [`StpMode::CancelNewest`].
    CancelNewest,
    /// [`StpMode::CancelOldest`].
    CancelOldest,
    /// [`StpMode::CancelBoth`].
    CancelBoth,
    /// [`StpMode::DecrementAndCancel`].
    DecrementAndCancel,
}

impl From<StpConfig> for StpMode {
    fn from(s: StpConfig) -> Self {
        match s {
            StpConfig::Allow => StpMode::Allow,
            StpConfig::CancelNewest => StpMode::CancelNewest,
            StpConfig::CancelOldest => StpMode::CancelOldest,
            StpConfig::CancelBoth => StpMode::CancelBoth,
            StpConfig::DecrementAndCancel => StpMode::DecrementAndCancel,
        }
    }
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address of the SBE order-entry port.
    pub listen: String,
    /// Data directory (journal and snapshots).
    pub data_dir: PathBuf,
    /// `[server.tls]`: TLS on the SBE listener (none: plain TCP).
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
}

/// `[pipeline]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Durability policy.
    pub durability: DurabilityPolicy,
    /// Wait strategy of idle pipeline threads.
    pub wait_strategy: WaitKind,
    /// Sleep between checks, microseconds.
    pub sleep_us: u64,
    /// Yields before sleeping (`backoff`).
    pub backoff_yields: u32,
    /// Sleep of a `backoff` waiter that has been idle for long, microseconds.
    pub idle_sleep_us: u64,
    /// Core to pin the matcher to.
    #[serde(default)]
    pub matcher_core: Option<usize>,
    /// Input ring slots (power of two).
    pub input_ring_slots: usize,
    /// Output ring slots (power of two).
    pub output_ring_slots: usize,
    /// Gateway threads: 1 runs receiver, sequencer and publisher on one thread; 2 gives the
    /// publisher a thread of its own.
    #[serde(default = "one_gateway_thread")]
    pub gateway_threads: u8,
}

fn one_gateway_thread() -> u8 {
    1
}

/// `[engine]`: the matcher's fixed capacities.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// [`EngineLimits::max_orders`].
    pub max_orders: u32,
    /// [`EngineLimits::max_levels`].
    pub max_levels: u32,
    /// [`EngineLimits::max_levels_per_side`].
    pub max_levels_per_side: u32,
    /// [`EngineLimits::max_instruments`].
    pub max_instruments: u32,
    /// [`EngineLimits::max_accounts`].
    pub max_accounts: u32,
}

/// `[journal]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Segment file size in bytes.
    pub segment_len_bytes: u64,
}

/// `[snapshot]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// Periodic snapshot interval in commands; 0 = off.
    pub every_commands: u64,
    /// Snapshots kept.
    pub keep_last: usize,
}

/// `[sessions_limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLimits {
    /// Most connections at once.
    pub max_connections: usize,
    /// Unsent output bytes per connection before it is disconnected.
    pub outbound_buffer_bytes: usize,
    /// Smallest keepalive interval a client may ask for, ms.
    pub keepalive_min_ms: u32,
    /// Largest keepalive interval a client may ask for, ms.
    pub keepalive_max_ms: u32,
    /// Preallocated length of each session-store segment file (sent messages and sequence
    /// numbers); see [`crate::store::StoreLimits::segment_bytes`].
    #[serde(default = "default_store_segment_bytes")]
    pub store_segment_bytes: u64,
    /// Session-store bytes kept on disk per session before the oldest segments are dropped;
    /// see [`crate::store::StoreLimits::max_retained_bytes`].
    #[serde(default = "default_store_retained_bytes")]
    pub store_retained_bytes: u64,
    /// Failed logons in a row, per session and per source address, before logons there are
    /// refused for `logon_lockout_ms` (0 turns the lockout off).
    #[serde(default = "default_logon_failures")]
    pub logon_failures_before_lockout: u32,
    /// The first lockout, ms; each further failure doubles it (up to five minutes).
    #[serde(default = "default_logon_lockout_ms")]
    pub logon_lockout_ms: u64,
}

fn default_logon_failures() -> u32 {
    5
}

fn default_logon_lockout_ms() -> u64 {
    1_000
}

fn default_store_segment_bytes() -> u64 {
    crate::store::StoreLimits::default().segment_bytes
}

fn default_store_retained_bytes() -> u64 {
    crate::store::StoreLimits::default().max_retained_bytes
}

impl SessionLimits {
    /// The failed-logon guard every protocol's sessions share the settings of.
    pub(crate) fn logon_guard(&self) -> crate::session::logon_guard::LogonGuard {
        let lockout = std::time::Duration::from_millis(self.logon_lockout_ms);
        crate::session::logon_guard::LogonGuard::new(self.logon_failures_before_lockout, lockout)
    }

    /// The store bounds every session store is opened with.
    pub fn store_limits(&self) -> crate::store::StoreLimits {
        crate::store::StoreLimits {
            segment_bytes: self.store_segment_bytes,
            max_retained_bytes: self.store_retained_bytes,
            ..crate::store::StoreLimits::default()
        }
    }
}

/// `[[instruments]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// Instrument id (SBE SecurityId).
    pub id: u32,
    /// Symbol.
    pub symbol: String,
    /// Tick size (decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    pub tick_size: Decimal,
    /// Lot size (decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    pub lot_size: Decimal,
    /// Smallest order, lots.
    pub min_qty_lots: u64,
    /// Largest order, lots.
    pub max_qty_lots: u64,
    /// Largest order notional in currency units; `None` = no limit.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub max_notional: Option<Decimal>,
    /// Price band in basis points; 0 = off.
    #[serde(default)]
    pub band_bps: u32,
    /// Band reference price before the first trade.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub reference_price: Option<Decimal>,
}

/// `[[accounts]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Account id.
    pub id: u32,
    /// STP group; defaults to the account id.
    #[serde(default)]
    pub stp_group: Option<u32>,
    /// Default STP mode.
    #[serde(default = "default_stp")]
    pub default_stp: StpConfig,
    /// Live orders limit.
    #[serde(default)]
    pub max_open_orders: Option<u32>,
    /// Order quantity limit in lots.
    #[serde(default)]
    pub max_order_qty_lots: Option<u64>,
    /// Order notional limit in currency units.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub max_order_notional: Option<Decimal>,
    /// Live buy notional limit in currency units.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub max_open_buy_notional: Option<Decimal>,
    /// Live sell notional limit in currency units.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub max_open_sell_notional: Option<Decimal>,
}

fn default_stp() -> StpConfig {
    StpConfig::CancelNewest
}

/// `[[sessions]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// FIXP session id.
    pub session_id: u64,
    /// Username (Negotiate `Username`).
    pub username: String,
    /// Password (Negotiate `Password`): an Argon2 PHC string from `sable passwd`, or plain text
    /// (warned about at start-up).
    pub password: String,
    /// Accounts the session may act on.
    pub accounts: Vec<u32>,
    /// Application messages per second the session may send on average; 0 (the default) = no
    /// throttle.
    #[serde(default = "default_throttle_per_s")]
    pub throttle_per_s: u32,
    /// Messages the session may send back to back above the average rate.
    #[serde(default = "default_throttle_burst")]
    pub throttle_burst: u32,
    /// What a message over the limit gets.
    #[serde(default)]
    pub throttle_policy: ThrottlePolicy,
}

fn default_throttle_per_s() -> u32 {
    0
}

fn default_throttle_burst() -> u32 {
    1_000
}

/// `[fix]`: the FIX 4.4 acceptor. Settings carry the names and meanings FIX operators know
/// from QuickFIX; each `[[fix_sessions]]` entry may override the session-level ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixSection {
    /// TCP address of the FIX acceptor; empty turns FIX off.
    #[serde(default = "default_fix_listen")]
    pub listen: String,
    /// Defaults of every FIX session.
    #[serde(flatten)]
    pub defaults: FixSettings,
    /// `[fix.tls]`: TLS on the FIX listener (none: plain TCP).
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
}

fn default_fix_listen() -> String {
    "127.0.0.1:9200".into()
}

impl Default for FixSection {
    fn default() -> Self {
        FixSection { listen: default_fix_listen(), defaults: FixSettings::default(), tls: None }
    }
}

/// QuickFIX-style session settings (`[fix]` defaults, overridable per `[[fix_sessions]]`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FixSettings {
    /// QuickFIX `ResetOnLogon`: start both sequence numbers at 1 on every Logon.
    pub reset_on_logon: bool,
    /// QuickFIX `ResetOnLogout`: start both sequence numbers at 1 after a clean Logout.
    pub reset_on_logout: bool,
    /// QuickFIX `ResetOnDisconnect`: start both sequence numbers at 1 after any disconnect.
    pub reset_on_disconnect: bool,
    /// Smallest HeartBtInt (108) a Logon may ask for, in seconds.
    pub heartbeat_min_s: u32,
    /// Largest HeartBtInt (108) a Logon may ask for, in seconds.
    pub heartbeat_max_s: u32,
    /// QuickFIX `LogonTimeout`: seconds a new connection may take to send its Logon.
    pub logon_timeout_s: u32,
    /// QuickFIX `LogoutTimeout`: seconds to wait for the counterparty's Logout reply.
    pub logout_timeout_s: u32,
    /// QuickFIX `CheckLatency`: refuse messages whose SendingTime (52) is off by more than
    /// `max_latency_s` (SessionRejectReason 10, then Logout).
    pub check_latency: bool,
    /// QuickFIX `MaxLatency`, in seconds.
    pub max_latency_s: u32,
    /// QuickFIX `ValidateFieldsOutOfOrder`: header fields must come first, trailer last.
    pub validate_fields_out_of_order: bool,
    /// QuickFIX `ValidateFieldsHaveValues`: an empty value is a reject (373=4).
    pub validate_fields_have_values: bool,
    /// QuickFIX `ValidateUserDefinedFields`: user-defined tags (5000-9999) must be in the
    /// dictionary for the message type.
    pub validate_user_defined_fields: bool,
    /// QuickFIX `AllowUnknownMsgFields`: tags unknown to the dictionary are let through.
    pub allow_unknown_msg_fields: bool,
    /// Cancel every live order of the session's accounts when its connection ends (after a
    /// Logout or not); a Logon may also ask for it with tag 8013=Y.
    pub cancel_on_disconnect: bool,
}

impl Default for FixSettings {
    fn default() -> Self {
        FixSettings {
            reset_on_logon: false,
            reset_on_logout: false,
            reset_on_disconnect: false,
            heartbeat_min_s: 1,
            heartbeat_max_s: 120,
            logon_timeout_s: 10,
            logout_timeout_s: 2,
            check_latency: true,
            max_latency_s: 120,
            validate_fields_out_of_order: true,
            validate_fields_have_values: true,
            validate_user_defined_fields: true,
            allow_unknown_msg_fields: false,
            cancel_on_disconnect: false,
        }
    }
}

/// `[[fix_sessions]]`: one FIX session, named by its CompIDs as the client sends them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixSessionConfig {
    /// The client's SenderCompID (49) — sable's TargetCompID.
    pub sender_comp_id: String,
    /// The client's TargetCompID (56) — sable's SenderCompID.
    pub target_comp_id: String,
    /// Username (553) the Logon must carry; empty = none checked.
    #[serde(default)]
    pub username: String,
    /// Password (554) the Logon must carry; empty = none checked. An Argon2 PHC string from
    /// `sable passwd`, or plain text (warned about at start-up).
    #[serde(default)]
    pub password: String,
    /// Accounts the session may act on.
    pub accounts: Vec<u32>,
    /// Application messages per second on average; 0 = no throttle.
    #[serde(default = "default_throttle_per_s")]
    pub throttle_per_s: u32,
    /// Messages back to back above the average rate.
    #[serde(default = "default_throttle_burst")]
    pub throttle_burst: u32,
    /// What a message over the limit gets (BusinessMessageReject, or Logout).
    #[serde(default)]
    pub throttle_policy: ThrottlePolicy,
    /// Overrides of the `[fix]` defaults, spelled like them (`reset_on_logon = true`, ...).
    #[serde(default)]
    pub settings: Option<toml::Table>,
}

impl FixSessionConfig {
    /// The session's effective settings: `[fix]` defaults with this session's overrides.
    pub fn effective(&self, defaults: &FixSettings) -> Result<FixSettings, ConfigError> {
        let Some(over) = &self.settings else { return Ok(*defaults) };
        let mut table = toml::Table::try_from(DefaultsView(defaults))
            .map_err(|e| invalid("fix", format!("cannot merge session settings: {e}")))?;
        for (k, v) in over {
            table.insert(k.clone(), v.clone());
        }
        table.try_into().map_err(|e: toml::de::Error| invalid("fix_sessions.settings", e.to_string()))
    }

    /// The key of the session's persistent store (`fix-<sender>-<target>`).
    pub fn store_name(&self) -> String {
        format!("fix-{}-{}", self.sender_comp_id, self.target_comp_id)
    }
}

/// Serializes [`FixSettings`] for merging (keeps `FixSettings` itself `Deserialize`-only).
struct DefaultsView<'a>(&'a FixSettings);

impl serde::Serialize for DefaultsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let f = self.0;
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("reset_on_logon", &f.reset_on_logon)?;
        m.serialize_entry("reset_on_logout", &f.reset_on_logout)?;
        m.serialize_entry("reset_on_disconnect", &f.reset_on_disconnect)?;
        m.serialize_entry("heartbeat_min_s", &f.heartbeat_min_s)?;
        m.serialize_entry("heartbeat_max_s", &f.heartbeat_max_s)?;
        m.serialize_entry("logon_timeout_s", &f.logon_timeout_s)?;
        m.serialize_entry("logout_timeout_s", &f.logout_timeout_s)?;
        m.serialize_entry("check_latency", &f.check_latency)?;
        m.serialize_entry("max_latency_s", &f.max_latency_s)?;
        m.serialize_entry("validate_fields_out_of_order", &f.validate_fields_out_of_order)?;
        m.serialize_entry("validate_fields_have_values", &f.validate_fields_have_values)?;
        m.serialize_entry("validate_user_defined_fields", &f.validate_user_defined_fields)?;
        m.serialize_entry("allow_unknown_msg_fields", &f.allow_unknown_msg_fields)?;
        m.serialize_entry("cancel_on_disconnect", &f.cancel_on_disconnect)?;
        m.end()
    }
}

/// What happens to an application message beyond a session's throttle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottlePolicy {
    /// Refused with BusinessMessageReject(Throttled); the session stays up.
    #[default]
    Reject,
    /// The session is terminated with Terminate(Throttled).
    Disconnect,
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[engine]`.
    pub engine: EngineConfig,
    /// `[journal]`.
    pub journal: JournalSection,
    /// `[snapshot]`.
    pub snapshot: SnapshotSection,
    /// `[sessions_limits]`.
    pub sessions_limits: SessionLimits,
    /// `[[instruments]]`.
    #[serde(default)]
    pub instruments: Vec<InstrumentConfig>,
    /// `[[accounts]]`.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// `[[sessions]]`.
    #[serde(default)]
    pub sessions: Vec<SessionConfig>,
    /// `[fix]`.
    #[serde(default)]
    pub fix: FixSection,
    /// `[replication]`.
    #[serde(default)]
    pub replication: ReplicationSection,
    /// Automatic failover through etcd (off by default: promotion by hand).
    #[serde(default)]
    pub election: ElectionSection,
    /// `[[fix_sessions]]`.
    #[serde(default)]
    pub fix_sessions: Vec<FixSessionConfig>,
    /// `[admin]`: the admin port.
    #[serde(default)]
    pub admin: crate::admin::config::AdminSection,
    /// `[log]`: log format.
    #[serde(default)]
    pub log: crate::logging::LogSection,
    /// `[feed]`: the market-data feed (`crate::feed::FeedConfig`).
    #[serde(default)]
    pub feed: crate::feed::FeedConfig,
}

/// A checked configuration with engine-ready specs.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The file as read.
    pub raw: Config,
    /// The listen address.
    pub listen: SocketAddr,
    /// Engine capacities.
    pub limits: EngineLimits,
    /// Instrument specs, in file order.
    pub instruments: Vec<InstrumentSpec>,
    /// Account specs, in file order.
    pub accounts: Vec<AccountSpec>,
    /// The FIX listen address (`None` when `[fix] listen` is empty).
    pub fix_listen: Option<SocketAddr>,
    /// Effective settings of each `[[fix_sessions]]` entry, in file order.
    pub fix_settings: Vec<FixSettings>,
    /// The primary's replication listen address (`None` when `[replication] listen` is empty).
    pub replication_listen: Option<SocketAddr>,
}

fn nanos(d: Decimal, key: &str) -> Result<u128, ConfigError> {
    if d.is_sign_negative() {
        return Err(invalid(key, "must not be negative"));
    }
    let n = d.checked_mul(Decimal::from(1_000_000_000u64)).ok_or_else(|| invalid(key, "too large"))?;
    if !n.fract().is_zero() {
        return Err(invalid(key, "finer than 10^-9 currency units"));
    }
    n.to_u128().ok_or_else(|| invalid(key, "too large"))
}

fn opt_nanos(d: Option<Decimal>, key: &str) -> Result<u128, ConfigError> {
    d.map_or(Ok(u128::MAX), |d| nanos(d, key))
}

impl Config {
    /// Parses TOML text (unknown keys are errors).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// The built-in default.
    pub fn default_config() -> Config {
        Config::parse(DEFAULT_TOML).expect("the embedded default configuration parses (tested)")
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text)
    }

    /// Checks every value and builds the engine specs: one validator per section, in file
    /// order; the first problem found is the error.
    pub fn validate(self) -> Result<Validated, ConfigError> {
        let listen = self.validate_server()?;
        self.validate_pipeline()?;
        let limits = self.validate_engine()?;
        self.validate_journal()?;
        self.validate_snapshot()?;
        self.validate_sessions_limits()?;
        let instruments = self.validate_instruments(&limits)?;
        let accounts = self.validate_accounts(&limits)?;
        self.validate_sessions(&accounts)?;
        let fix_listen = self.validate_fix()?;
        let fix_settings = self.validate_fix_sessions(&accounts)?;
        let replication_listen = self.validate_replication()?;
        self.validate_election()?;
        self.admin.listen_addr()?;
        self.admin.resolve_tokens()?;
        self.feed.validate().map_err(|e| invalid(format!("feed.{}", e.key), e.reason))?;
        Ok(Validated { raw: self, listen, limits, instruments, accounts, fix_listen, fix_settings, replication_listen })
    }

    /// `[replication]`: addresses, and a `replicated` policy needs a replication port.
    fn validate_replication(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let r = &self.replication;
        if !r.primary.is_empty() {
            r.primary
                .parse::<SocketAddr>()
                .map_err(|e| invalid("replication.primary", format!("not an IP:port address: {e}")))?;
        }
        if r.standby_timeout_ms == 0 {
            return Err(invalid("replication.standby_timeout_ms", "must be at least 1"));
        }
        if r.listen.is_empty() {
            if self.pipeline.durability.needs_standby() {
                return Err(invalid("pipeline.durability", "a replicated policy needs replication.listen"));
            }
            return Ok(None);
        }
        if r.verify_every_commands > 0 && self.snapshot.every_commands == 0 {
            return Err(invalid(
                "replication.verify_every_commands",
                "the state hash comes from the snapshot follower: set snapshot.every_commands too, or 0 here",
            ));
        }
        let addr =
            r.listen.parse().map_err(|e| invalid("replication.listen", format!("not an IP:port address: {e}")))?;
        Ok(Some(addr))
    }

    /// `[election]`: an http URL, a key prefix, a TTL etcd grants, a node name.
    fn validate_election(&self) -> Result<(), ConfigError> {
        let e = &self.election;
        if e.etcd.is_empty() {
            return Ok(());
        }
        if !e.etcd.starts_with("http://") {
            return Err(invalid(
                "election.etcd",
                "an http:// URL of an etcd client endpoint (TLS is not supported yet)",
            ));
        }
        if !e.prefix.starts_with('/') {
            return Err(invalid("election.prefix", "must start with /"));
        }
        if !(MIN_LEASE_TTL_S..=MAX_LEASE_TTL_S).contains(&e.lease_ttl_s) {
            return Err(invalid("election.lease_ttl_s", format!("must be {MIN_LEASE_TTL_S}..={MAX_LEASE_TTL_S}")));
        }
        if e.node.is_empty() {
            return Err(invalid("election.node", "must not be empty"));
        }
        Ok(())
    }

    /// `[server]`: the listen address.
    fn validate_server(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|e| invalid("server.listen", format!("not an IP:port address: {e}")))
    }

    /// `[pipeline]`: sleeps, wait strategy, matcher core, ring sizes.
    fn validate_pipeline(&self) -> Result<(), ConfigError> {
        let p = &self.pipeline;
        if !(MIN_SLEEP_US..=MAX_SLEEP_US).contains(&p.sleep_us) {
            return Err(invalid("pipeline.sleep_us", format!("must be in {MIN_SLEEP_US}..={MAX_SLEEP_US}")));
        }
        if !(p.sleep_us..=MAX_SLEEP_US).contains(&p.idle_sleep_us) {
            return Err(invalid("pipeline.idle_sleep_us", format!("must be in sleep_us..={MAX_SLEEP_US}")));
        }
        if p.wait_strategy == WaitKind::BusySpin && p.matcher_core.is_none() {
            return Err(invalid(
                "pipeline.wait_strategy",
                "busy-spin needs a dedicated core: set pipeline.matcher_core (or use backoff/sleep/yield)",
            ));
        }
        if let Some(core) = p.matcher_core {
            let cores = core_affinity::get_core_ids().unwrap_or_default();
            if !cores.iter().any(|c| c.id == core) {
                return Err(invalid("pipeline.matcher_core", format!("core {core} does not exist on this machine")));
            }
        }
        if !(1..=MAX_GATEWAY_THREADS).contains(&p.gateway_threads) {
            return Err(invalid("pipeline.gateway_threads", format!("must be in 1..={MAX_GATEWAY_THREADS}")));
        }
        for (key, n) in
            [("pipeline.input_ring_slots", p.input_ring_slots), ("pipeline.output_ring_slots", p.output_ring_slots)]
        {
            if !n.is_power_of_two() || !(MIN_RING_SLOTS..=MAX_RING_SLOTS).contains(&n) {
                return Err(invalid(key, format!("must be a power of two in {MIN_RING_SLOTS}..={MAX_RING_SLOTS}")));
            }
        }
        Ok(())
    }

    /// `[engine]`: the matcher's capacities, checked by the engine's own
    /// [`EngineLimits::validate`].
    fn validate_engine(&self) -> Result<EngineLimits, ConfigError> {
        let e = &self.engine;
        let limits = EngineLimits {
            max_orders: e.max_orders,
            max_levels: e.max_levels,
            max_levels_per_side: e.max_levels_per_side,
            max_instruments: e.max_instruments,
            max_accounts: e.max_accounts,
        };
        limits.validate().map_err(|err| invalid(format!("engine.{}", err.field()), err.to_string()))?;
        Ok(limits)
    }

    /// `[journal]`: the segment size, within the journal's own bounds.
    fn validate_journal(&self) -> Result<(), ConfigError> {
        let seg = self.journal.segment_len_bytes;
        if !(journal::MIN_SEGMENT_LEN_BYTES..=journal::MAX_SEGMENT_LEN_BYTES).contains(&seg) || !seg.is_multiple_of(8) {
            return Err(invalid(
                "journal.segment_len_bytes",
                format!(
                    "must be a multiple of 8 in {}..={}",
                    journal::MIN_SEGMENT_LEN_BYTES,
                    journal::MAX_SEGMENT_LEN_BYTES
                ),
            ));
        }
        Ok(())
    }

    /// `[snapshot]`: at least one snapshot kept.
    fn validate_snapshot(&self) -> Result<(), ConfigError> {
        if self.snapshot.keep_last == 0 {
            return Err(invalid("snapshot.keep_last", "must be at least 1"));
        }
        Ok(())
    }

    /// `[sessions_limits]`: connections, output allowance, keepalive range, session stores.
    fn validate_sessions_limits(&self) -> Result<(), ConfigError> {
        let s = &self.sessions_limits;
        if s.max_connections == 0 || s.max_connections > MAX_CONNECTIONS {
            return Err(invalid("sessions_limits.max_connections", format!("must be in 1..={MAX_CONNECTIONS}")));
        }
        if s.outbound_buffer_bytes < MIN_OUTBOUND_BUFFER_BYTES {
            return Err(invalid(
                "sessions_limits.outbound_buffer_bytes",
                format!("must be at least {MIN_OUTBOUND_BUFFER_BYTES}"),
            ));
        }
        if s.keepalive_min_ms == 0 || s.keepalive_min_ms > s.keepalive_max_ms {
            return Err(invalid("sessions_limits.keepalive_min_ms", "must be at least 1 and at most keepalive_max_ms"));
        }
        if let Err(e) = s.store_limits().validate() {
            return Err(invalid("sessions_limits.store_segment_bytes", e.to_string()));
        }
        let max_ms = crate::session::logon_guard::MAX_LOCKOUT.as_millis() as u64;
        if s.logon_lockout_ms == 0 || s.logon_lockout_ms > max_ms {
            return Err(invalid("sessions_limits.logon_lockout_ms", format!("must be in 1..={max_ms}")));
        }
        Ok(())
    }

    /// `[[instruments]]`: each entry becomes an engine spec; ids and symbols are unique.
    fn validate_instruments(&self, limits: &EngineLimits) -> Result<Vec<InstrumentSpec>, ConfigError> {
        check_entries("instruments", self.instruments.len())?;
        let mut instruments = Vec::with_capacity(self.instruments.len());
        for (i, ic) in self.instruments.iter().enumerate() {
            // Before the entry's own checks: an id listed twice passed the range check once.
            if instruments.iter().any(|s: &InstrumentSpec| s.id.0 == ic.id) {
                return Err(invalid(format!("instruments[{i}].id"), format!("instrument {} is listed twice", ic.id)));
            }
            instruments.push(instrument_spec(i, ic, limits)?);
        }
        if instruments.iter().map(|s| s.symbol).collect::<std::collections::BTreeSet<_>>().len() != instruments.len() {
            return Err(invalid("instruments", "two instruments share a symbol"));
        }
        Ok(instruments)
    }

    /// `[[accounts]]`: each entry becomes an engine spec; ids are unique.
    fn validate_accounts(&self, limits: &EngineLimits) -> Result<Vec<AccountSpec>, ConfigError> {
        check_entries("accounts", self.accounts.len())?;
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for (i, ac) in self.accounts.iter().enumerate() {
            if accounts.iter().any(|s: &AccountSpec| s.account.0 == ac.id) {
                return Err(invalid(format!("accounts[{i}].id"), format!("account {} is listed twice", ac.id)));
            }
            accounts.push(account_spec(i, ac, limits)?);
        }
        Ok(accounts)
    }

    /// `[[sessions]]`: unique ids and usernames, SBE credentials, configured accounts.
    fn validate_sessions(&self, accounts: &[AccountSpec]) -> Result<(), ConfigError> {
        check_entries("sessions", self.sessions.len())?;
        for (i, sc) in self.sessions.iter().enumerate() {
            let key = |k: &str| format!("sessions[{i}].{k}");
            if self.sessions[..i].iter().any(|o| o.session_id == sc.session_id) {
                return Err(invalid(key("session_id"), format!("session {} is listed twice", sc.session_id)));
            }
            if self.sessions[..i].iter().any(|o| o.username == sc.username) {
                return Err(invalid(key("username"), format!("username {:?} is used twice", sc.username)));
            }
            crate::session::credentials::Credential::new(&sc.username, &sc.password)
                .map_err(|err| invalid(key("password"), err.to_string()))?;
            let hashed = sc.password.starts_with(crate::session::credentials::PHC_PREFIX);
            for (k, v) in [("username", &sc.username), ("password", &sc.password)] {
                if k == "password" && hashed {
                    continue;
                }
                crate::sbe::messages::char_field::<20>(v.as_bytes())
                    .map_err(|err| invalid(key(k), format!("not an SBE credential: {err}")))?;
                if v.is_empty() {
                    return Err(invalid(key(k), "must not be empty"));
                }
            }
            check_session_accounts(&key, &sc.accounts, accounts)?;
            check_throttle(&key, sc.throttle_per_s, sc.throttle_burst)?;
        }
        Ok(())
    }

    /// `[fix]`: the acceptor's address (empty: no FIX) and the session defaults.
    fn validate_fix(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let fix_listen = if self.fix.listen.is_empty() {
            None
        } else {
            Some(self.fix.listen.parse().map_err(|e| invalid("fix.listen", format!("not an IP:port address: {e}")))?)
        };
        check_fix_settings("fix", &self.fix.defaults)?;
        Ok(fix_listen)
    }

    /// `[[fix_sessions]]`: CompIDs, unique pairs, configured accounts, throttle, and each
    /// session's effective settings.
    fn validate_fix_sessions(&self, accounts: &[AccountSpec]) -> Result<Vec<FixSettings>, ConfigError> {
        check_entries("fix_sessions", self.fix_sessions.len())?;
        let mut fix_settings = Vec::with_capacity(self.fix_sessions.len());
        for (i, fc) in self.fix_sessions.iter().enumerate() {
            let key = |k: &str| format!("fix_sessions[{i}].{k}");
            for (k, v) in [("sender_comp_id", &fc.sender_comp_id), ("target_comp_id", &fc.target_comp_id)] {
                check_comp_id(&key(k), v)?;
            }
            if self.fix_sessions[..i]
                .iter()
                .any(|o| o.sender_comp_id == fc.sender_comp_id && o.target_comp_id == fc.target_comp_id)
            {
                return Err(invalid(key("sender_comp_id"), "this CompID pair is listed twice"));
            }
            crate::session::credentials::Credential::new(&fc.username, &fc.password)
                .map_err(|err| invalid(key("password"), err.to_string()))?;
            check_session_accounts(&key, &fc.accounts, accounts)?;
            check_throttle(&key, fc.throttle_per_s, fc.throttle_burst)?;
            let eff = fc.effective(&self.fix.defaults).map_err(|e| invalid(key("settings"), e.to_string()))?;
            check_fix_settings(&key("settings"), &eff)?;
            fix_settings.push(eff);
        }
        Ok(fix_settings)
    }
}

/// A section lists at most [`MAX_CONFIG_ENTRIES`] entries.
fn check_entries(section: &str, n: usize) -> Result<(), ConfigError> {
    if n > MAX_CONFIG_ENTRIES {
        return Err(invalid(section, format!("at most {MAX_CONFIG_ENTRIES} entries")));
    }
    Ok(())
}

/// The engine spec of `[[instruments]]` entry `i`.
fn instrument_spec(i: usize, ic: &InstrumentConfig, limits: &EngineLimits) -> Result<InstrumentSpec, ConfigError> {
    let key = |k: &str| format!("instruments[{i}].{k}");
    if ic.id >= limits.max_instruments {
        return Err(invalid(key("id"), format!("must be below engine.max_instruments ({})", limits.max_instruments)));
    }
    let symbol = Symbol::new(&ic.symbol).map_err(|err| invalid(key("symbol"), err.to_string()))?;
    let mut spec = InstrumentSpec {
        id: InstrumentId(ic.id),
        symbol,
        tick_size: ic.tick_size,
        lot_size: ic.lot_size,
        min_qty_lots: ic.min_qty_lots,
        max_qty_lots: ic.max_qty_lots,
        max_notional_nanos: opt_nanos(ic.max_notional, &key("max_notional"))?,
        band_bps: ic.band_bps,
        reference_ticks: None,
        status: engine::TradingStatus::Open,
    };
    if let Some(px) = ic.reference_price {
        spec.reference_ticks = Some(
            spec.price_to_ticks(px)
                .map_err(|err| invalid(key("reference_price"), format!("{err} (tick size {})", ic.tick_size)))?,
        );
    }
    spec.validate().map_err(|reason| invalid(format!("instruments[{i}]"), reason))?;
    crate::sbe::convert::check_wire_grid(&spec)
        .map_err(|err| invalid(format!("instruments[{i}]"), format!("not tradable over SBE: {err}")))?;
    Ok(spec)
}

/// The engine spec of `[[accounts]]` entry `i`.
fn account_spec(i: usize, ac: &AccountConfig, limits: &EngineLimits) -> Result<AccountSpec, ConfigError> {
    let key = |k: &str| format!("accounts[{i}].{k}");
    if ac.id >= limits.max_accounts {
        return Err(invalid(key("id"), format!("must be below engine.max_accounts ({})", limits.max_accounts)));
    }
    Ok(AccountSpec {
        account: AccountId(ac.id),
        stp_group: ac.stp_group.unwrap_or(ac.id),
        default_stp: ac.default_stp.into(),
        limits: RiskLimits {
            max_open_orders: ac.max_open_orders.unwrap_or(u32::MAX),
            max_order_qty_lots: ac.max_order_qty_lots.unwrap_or(u64::MAX),
            max_order_notional_nanos: opt_nanos(ac.max_order_notional, &key("max_order_notional"))?,
            max_open_buy_notional_nanos: opt_nanos(ac.max_open_buy_notional, &key("max_open_buy_notional"))?,
            max_open_sell_notional_nanos: opt_nanos(ac.max_open_sell_notional, &key("max_open_sell_notional"))?,
        },
    })
}

/// A session (SBE or FIX) acts on at least one account, each configured in `[[accounts]]`.
fn check_session_accounts(
    key: &dyn Fn(&str) -> String,
    session_accounts: &[u32],
    accounts: &[AccountSpec],
) -> Result<(), ConfigError> {
    if session_accounts.is_empty() {
        return Err(invalid(key("accounts"), "a session needs at least one account"));
    }
    for a in session_accounts {
        if !accounts.iter().any(|s| s.account.0 == *a) {
            return Err(invalid(key("accounts"), format!("account {a} is not configured in [[accounts]]")));
        }
    }
    Ok(())
}

/// A throttle with a rate needs a burst of at least one message.
fn check_throttle(key: &dyn Fn(&str) -> String, per_s: u32, burst: u32) -> Result<(), ConfigError> {
    if per_s > 0 && burst == 0 {
        return Err(invalid(key("throttle_burst"), "must be at least 1 when throttle_per_s is set"));
    }
    Ok(())
}

/// A CompID is 1..=[`MAX_COMP_ID_LEN`] characters of `A-Z a-z 0-9 _ - .`.
fn check_comp_id(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.is_empty()
        || v.len() > MAX_COMP_ID_LEN
        || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(invalid(key, format!("must be 1..={MAX_COMP_ID_LEN} characters of A-Z a-z 0-9 _ - .")));
    }
    Ok(())
}

fn check_fix_settings(key: &str, f: &FixSettings) -> Result<(), ConfigError> {
    if f.heartbeat_min_s == 0 || f.heartbeat_min_s > f.heartbeat_max_s || f.heartbeat_max_s > MAX_HEARTBEAT_S {
        return Err(invalid(key, format!("need 1 <= heartbeat_min_s <= heartbeat_max_s <= {MAX_HEARTBEAT_S}")));
    }
    if f.logon_timeout_s == 0 || f.logout_timeout_s == 0 || f.max_latency_s == 0 {
        return Err(invalid(key, "logon_timeout_s, logout_timeout_s and max_latency_s must be at least 1"));
    }
    Ok(())
}

impl Validated {
    /// The instrument spec with this symbol.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&InstrumentSpec> {
        self.instruments.iter().find(|s| s.symbol.as_str() == symbol)
    }

    /// Index of the FIX session a client names with its (SenderCompID, TargetCompID).
    pub fn fix_session(&self, sender_comp_id: &[u8], target_comp_id: &[u8]) -> Option<usize> {
        self.raw.fix_sessions.iter().position(|s| {
            s.sender_comp_id.as_bytes() == sender_comp_id && s.target_comp_id.as_bytes() == target_comp_id
        })
    }

    /// The session with this id.
    pub fn session(&self, session_id: u64) -> Option<&SessionConfig> {
        self.raw.sessions.iter().find(|s| s.session_id == session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let v = Config::default_config().validate().expect("default validates");
        assert_eq!(v.instruments.len(), 1);
        assert_eq!(v.instrument_by_symbol("DEMO").map(|s| s.id), Some(InstrumentId(1)));
        assert_eq!(v.raw.pipeline.durability, DurabilityPolicy::Written);
        assert_ne!(v.raw.pipeline.wait_strategy, WaitKind::BusySpin, "nothing busy-spins by default");
        assert_eq!(v.accounts[0].limits.max_order_notional_nanos, 100_000_000 * 1_000_000_000);
        assert_eq!(v.accounts[1].limits.max_order_notional_nanos, u128::MAX);
    }

    fn with(edit: impl FnOnce(&mut Config)) -> Result<Validated, ConfigError> {
        let mut c = Config::default_config();
        edit(&mut c);
        c.validate()
    }

    fn err_key(r: Result<Validated, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn precise_errors_name_the_key() {
        assert_eq!(err_key(with(|c| c.server.listen = "nowhere".into())), "server.listen");
        assert_eq!(err_key(with(|c| c.pipeline.wait_strategy = WaitKind::BusySpin)), "pipeline.wait_strategy");
        assert_eq!(err_key(with(|c| c.pipeline.input_ring_slots = 1000)), "pipeline.input_ring_slots");
        assert_eq!(err_key(with(|c| c.instruments[0].tick_size = Decimal::ZERO)), "instruments[0]");
        assert_eq!(
            err_key(with(|c| c.instruments[0].reference_price = Some(Decimal::new(1001, 3)))),
            "instruments[0].reference_price"
        );
        assert_eq!(err_key(with(|c| c.accounts[1].id = 1)), "accounts[1].id");
        assert_eq!(err_key(with(|c| c.sessions[0].accounts = vec![99])), "sessions[0].accounts");
        assert_eq!(err_key(with(|c| c.sessions[1].session_id = 1)), "sessions[1].session_id");
        assert_eq!(err_key(with(|c| c.sessions[0].password = "x".repeat(21))), "sessions[0].password");
        assert_eq!(
            err_key(with(|c| c.accounts[0].max_order_notional = Some(Decimal::new(1, 10)))),
            "accounts[0].max_order_notional"
        );
    }

    fn err_key_reason(r: Result<Validated, ConfigError>) -> (String, String) {
        match r {
            Err(ConfigError::Invalid { key, reason }) => (key, reason),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    /// The error names `key` and prints every value in `constants`.
    fn assert_limit(r: Result<Validated, ConfigError>, key: &str, constants: &[&dyn std::fmt::Display]) {
        let (got, reason) = err_key_reason(r);
        assert_eq!(got, key, "{reason}");
        for c in constants {
            assert!(reason.contains(&c.to_string()), "{key}: {reason:?} does not print {c}");
        }
    }

    #[test]
    fn pipeline_limit_messages_print_the_constants() {
        assert_limit(with(|c| c.pipeline.sleep_us = 0), "pipeline.sleep_us", &[&MIN_SLEEP_US, &MAX_SLEEP_US]);
        assert_limit(with(|c| c.pipeline.sleep_us = MAX_SLEEP_US + 1), "pipeline.sleep_us", &[&MAX_SLEEP_US]);
        assert_limit(with(|c| c.pipeline.idle_sleep_us = MAX_SLEEP_US + 1), "pipeline.idle_sleep_us", &[&MAX_SLEEP_US]);
        assert_limit(
            with(|c| c.pipeline.input_ring_slots = MIN_RING_SLOTS / 2),
            "pipeline.input_ring_slots",
            &[&MIN_RING_SLOTS, &MAX_RING_SLOTS],
        );
        assert_limit(
            with(|c| c.pipeline.output_ring_slots = MAX_RING_SLOTS * 2),
            "pipeline.output_ring_slots",
            &[&MIN_RING_SLOTS, &MAX_RING_SLOTS],
        );
        assert_limit(with(|c| c.pipeline.gateway_threads = 0), "pipeline.gateway_threads", &[&MAX_GATEWAY_THREADS]);
        assert_limit(
            with(|c| c.pipeline.gateway_threads = MAX_GATEWAY_THREADS + 1),
            "pipeline.gateway_threads",
            &[&MAX_GATEWAY_THREADS],
        );
    }

    #[test]
    fn engine_limit_messages_come_from_the_engine_and_print_its_constants() {
        use engine::limits::{MAX_INSTRUMENTS, MAX_LEVELS, MAX_ORDERS};
        assert_limit(
            with(|c| c.engine.max_instruments = MAX_INSTRUMENTS + 1),
            "engine.max_instruments",
            &[&MAX_INSTRUMENTS],
        );
        assert_limit(with(|c| c.engine.max_instruments = 0), "engine.max_instruments", &[&MAX_INSTRUMENTS]);
        assert_limit(with(|c| c.engine.max_orders = u32::MAX), "engine.max_orders", &[&MAX_ORDERS]);
        assert_limit(with(|c| c.engine.max_levels = 0), "engine.max_levels", &[&MAX_LEVELS]);
        assert_limit(with(|c| c.engine.max_levels_per_side = 0), "engine.max_levels_per_side", &[&"at least 1"]);
        assert_limit(with(|c| c.engine.max_accounts = 0), "engine.max_accounts", &[&"at least 1"]);
    }

    #[test]
    fn session_limit_messages_print_the_constants() {
        assert_limit(
            with(|c| c.sessions_limits.max_connections = MAX_CONNECTIONS + 1),
            "sessions_limits.max_connections",
            &[&MAX_CONNECTIONS],
        );
        assert_limit(
            with(|c| c.sessions_limits.outbound_buffer_bytes = MIN_OUTBOUND_BUFFER_BYTES - 1),
            "sessions_limits.outbound_buffer_bytes",
            &[&MIN_OUTBOUND_BUFFER_BYTES],
        );
        let max_lockout_ms = crate::session::logon_guard::MAX_LOCKOUT.as_millis() as u64;
        assert_limit(
            with(|c| c.sessions_limits.logon_lockout_ms = max_lockout_ms + 1),
            "sessions_limits.logon_lockout_ms",
            &[&max_lockout_ms],
        );
        assert_limit(with(|c| c.fix.defaults.heartbeat_max_s = MAX_HEARTBEAT_S + 1), "fix", &[&MAX_HEARTBEAT_S]);
        let long = "C".repeat(MAX_COMP_ID_LEN + 1);
        assert_limit(
            with(|c| c.fix_sessions[0].target_comp_id = long),
            "fix_sessions[0].target_comp_id",
            &[&MAX_COMP_ID_LEN],
        );
        assert!(with(|c| c.fix_sessions[0].sender_comp_id = "C".repeat(MAX_COMP_ID_LEN)).is_ok());
    }

    #[test]
    fn entry_counts_are_bounded_per_section() {
        let over = MAX_CONFIG_ENTRIES + 1;
        assert_limit(
            with(|c| c.instruments = vec![c.instruments[0].clone(); over]),
            "instruments",
            &[&MAX_CONFIG_ENTRIES],
        );
        assert_limit(with(|c| c.accounts = vec![c.accounts[0].clone(); over]), "accounts", &[&MAX_CONFIG_ENTRIES]);
        assert_limit(with(|c| c.sessions = vec![c.sessions[0].clone(); over]), "sessions", &[&MAX_CONFIG_ENTRIES]);
        assert_limit(
            with(|c| c.fix_sessions = vec![c.fix_sessions[0].clone(); over]),
            "fix_sessions",
            &[&MAX_CONFIG_ENTRIES],
        );
    }

    #[test]
    fn fix_sessions_merge_their_overrides_with_the_defaults() {
        let v = Config::default_config().validate().expect("default validates");
        assert_eq!(v.fix_listen.map(|a| a.port()), Some(9200));
        assert_eq!(v.fix_settings.len(), 2);
        assert_eq!(v.fix_settings[0], FixSettings::default());
        assert_eq!(v.fix_session(b"CLIENT2", b"SABLE"), Some(1));
        let text = DEFAULT_TOML.replace(
            "# settings = { cancel_on_disconnect = true }",
            "settings = { cancel_on_disconnect = true, heartbeat_max_s = 30 }",
        );
        let v = Config::parse(&text).expect("parses").validate().expect("validates");
        assert!(v.fix_settings[1].cancel_on_disconnect);
        assert_eq!(v.fix_settings[1].heartbeat_max_s, 30);
        assert!(!v.fix_settings[0].cancel_on_disconnect);
        let bad = DEFAULT_TOML.replace("# settings = { cancel_on_disconnect = true }", "settings = { no_such = 1 }");
        assert_eq!(err_key(Config::parse(&bad).expect("parses").validate()), "fix_sessions[1].settings");
        let bad = DEFAULT_TOML.replace("reset_on_logout = false", "reset_on_logout = false\nreset_on_lunch = true");
        assert!(Config::parse(&bad).is_err(), "unknown [fix] keys are refused");
        assert_eq!(
            err_key(with(|c| c.fix_sessions[1].sender_comp_id = "CLIENT1".into())),
            "fix_sessions[1].sender_comp_id"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = DEFAULT_TOML.replace("[server]\n", "[server]\nlisten_port = 1\n");
        assert!(matches!(Config::parse(&text), Err(ConfigError::Parse(_))));
    }
}
