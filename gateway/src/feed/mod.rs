//! Market data: an order-by-order Nasdaq TotalView-ITCH 5.0 feed over MoldUDP64 multicast,
//! with a re-request server for gaps. Built from the engine's events after they are durable,
//! on the feed's own thread (`stage/feed.rs`), never on the matcher's.
//!
//! - [`itch`]: the ITCH 5.0 message layouts (encode, decode), pure.
//! - [`mold`]: MoldUDP64 packets (downstream, heartbeat, end of session, request), pure.
//! - [`translate`]: engine events → ITCH messages, a deterministic state machine.
//! - [`session`]: numbering, the session per UTC day, packing into packets, retention.
//! - [`history`]: the retained messages the re-request server answers from.
//! - [`rebuild`]: at start, replays the journal through a scratch engine so the feed continues
//!   with the sequence numbers and bytes an uninterrupted primary would have sent.
//! - [`subscriber`]: the receiving side (`sable feed`, tests): join, detect gaps, re-request,
//!   rebuild the book.
//! - [`soup`]: SoupBinTCP 3.0 framing for the snapshot/replay port (`stage/feed_snapshot.rs`).
//! - [`cli`]: `sable feed`.
//! - `tap.rs`: how the publisher hands durable output to the feed thread.
//! - `live.rs`: the translator's table of the orders the feed shows, by engine order id.

pub mod cli;
pub mod history;
pub mod itch;
mod live;
pub mod mold;
pub mod rebuild;
pub mod session;
pub mod soup;
pub mod subscriber;
pub(crate) mod tap;
pub mod translate;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::Deserialize;

// ------------------------------------------------------------------ limits

/// Default largest datagram (MoldUDP64 header included): fits a 1,500-byte Ethernet MTU with
/// IP and UDP headers and room for tunnels.
pub const DEFAULT_MAX_DATAGRAM_BYTES: usize = 1400;
/// Smallest `feed.max_datagram_bytes`: the header and the longest message block.
pub const MIN_DATAGRAM_BYTES: usize = mold::HEADER_LEN + 2 + itch::MAX_MESSAGE_LEN;
/// Largest `feed.max_datagram_bytes`: what one UDP datagram over IPv4 can carry.
pub const MAX_DATAGRAM_BYTES: usize = 65_507;
/// Most messages `feed.retained_messages` may keep for re-requests (48 bytes each: 768 MiB).
pub const MAX_RETAINED_MESSAGES: usize = 1 << 24;
/// Most messages one re-request is answered with; a larger count is cut to this (the
/// subscriber asks again for the rest), as MoldUDP64 servers do.
pub const MAX_REREQUEST_MESSAGES: u16 = 1024;
/// Fewest and most slots of the publisher → feed ring (`feed.ring_slots`).
pub const MIN_FEED_RING_SLOTS: usize = 64;
/// See [`MIN_FEED_RING_SLOTS`].
pub const MAX_FEED_RING_SLOTS: usize = 1 << 22;
/// How long the feed thread sleeps, at most, when it holds output not yet durable (`memory`
/// durability only: otherwise the publisher forwards only durable output).
pub const GATE_RECHECK_US: u64 = 100;
/// How long the re-request server waits on its socket before it checks for shutdown.
pub const REREQUEST_POLL_MS: u64 = 200;
/// Slots the feed thread takes from its ring at once.
pub const FEED_BATCH: u64 = 1024;
/// Fewest entries of the feed's direct-mapped table of live orders (`feed/live.rs`).
pub const MIN_LIVE_DIRECT: usize = 1 << 10;
/// Most entries of that table (56 bytes each, reserved at start, touched as order ids reach
/// them: 224 MiB at most); orders beyond it share entries and the rest go to its overflow map.
pub const MAX_LIVE_DIRECT: usize = 1 << 22;

// ------------------------------------------------------------------ configuration

/// `[feed]`: the market-data feed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Publish the feed.
    pub enabled: bool,
    /// Multicast group and port the MoldUDP64 packets go to.
    pub group: String,
    /// IPv4 address of the interface multicast leaves from (`127.0.0.1`: loopback).
    pub interface: String,
    /// Multicast TTL (1: the local network only).
    pub ttl: u32,
    /// Deliver the multicast to subscribers on this host too (IP_MULTICAST_LOOP).
    pub loopback: bool,
    /// Unicast UDP address of the re-request server; "" turns it off.
    pub rerequest_listen: String,
    /// TCP address of the SoupBinTCP snapshot/replay port; "" turns it off.
    pub snapshot_listen: String,
    /// Largest datagram in bytes, MoldUDP64 header included.
    pub max_datagram_bytes: usize,
    /// Messages of the current session kept for re-requests.
    pub retained_messages: usize,
    /// Heartbeat period when idle, in milliseconds.
    pub heartbeat_ms: u64,
    /// Slots of the publisher → feed ring. Power of two.
    pub ring_slots: usize,
    /// Accounts whose orders show an MPID (`F` Add Order with attribution).
    pub attribution: Vec<Attribution>,
}

/// `[[feed.attribution]]`: an account's orders are attributed to an MPID.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    /// Account id.
    pub account: u32,
    /// Four-character market participant id.
    pub mpid: String,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            enabled: false,
            group: "239.255.70.1:9400".into(),
            interface: "127.0.0.1".into(),
            ttl: 1,
            loopback: true,
            rerequest_listen: String::new(),
            snapshot_listen: String::new(),
            max_datagram_bytes: DEFAULT_MAX_DATAGRAM_BYTES,
            retained_messages: 1 << 18,
            heartbeat_ms: 1000,
            ring_slots: 1 << 16,
            attribution: Vec::new(),
        }
    }
}

/// A `[feed]` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("feed.{key}: {reason}")]
pub struct FeedConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The checked `[feed]` addresses.
#[derive(Clone, Copy, Debug)]
pub struct FeedAddrs {
    /// Multicast group and port.
    pub group: SocketAddrV4,
    /// Interface address.
    pub interface: Ipv4Addr,
    /// Re-request server address.
    pub rerequest: Option<SocketAddr>,
    /// Snapshot/replay port address.
    pub snapshot: Option<SocketAddr>,
}

impl FeedConfig {
    /// Checks every value; the addresses when enabled.
    pub fn validate(&self) -> Result<Option<FeedAddrs>, FeedConfigError> {
        let bad = |key, reason: String| FeedConfigError { key, reason };
        if !(MIN_DATAGRAM_BYTES..=MAX_DATAGRAM_BYTES).contains(&self.max_datagram_bytes) {
            let why = format!(
                "must be in {MIN_DATAGRAM_BYTES}..={MAX_DATAGRAM_BYTES} (MIN_DATAGRAM_BYTES..=MAX_DATAGRAM_BYTES)"
            );
            return Err(bad("max_datagram_bytes", why));
        }
        if !(1..=MAX_RETAINED_MESSAGES).contains(&self.retained_messages) {
            return Err(bad(
                "retained_messages",
                format!("must be in 1..={MAX_RETAINED_MESSAGES} (MAX_RETAINED_MESSAGES)"),
            ));
        }
        if !self.ring_slots.is_power_of_two() || !(MIN_FEED_RING_SLOTS..=MAX_FEED_RING_SLOTS).contains(&self.ring_slots)
        {
            let why = format!("must be a power of two in {MIN_FEED_RING_SLOTS}..={MAX_FEED_RING_SLOTS}");
            return Err(bad("ring_slots", why));
        }
        if self.heartbeat_ms == 0 {
            return Err(bad("heartbeat_ms", "must be at least 1".into()));
        }
        for a in &self.attribution {
            if a.mpid.len() != 4 || !a.mpid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("attribution", format!("mpid {:?} is not 4 ASCII letters or digits", a.mpid)));
            }
        }
        if !self.enabled {
            return Ok(None);
        }
        let group: SocketAddrV4 =
            self.group.parse().map_err(|e| bad("group", format!("not an IPv4:port address: {e}")))?;
        if !group.ip().is_multicast() {
            return Err(bad("group", format!("{} is not a multicast address", group.ip())));
        }
        let interface = self.interface.parse().map_err(|e| bad("interface", format!("not an IPv4 address: {e}")))?;
        let rerequest = match self.rerequest_listen.as_str() {
            "" => None,
            s => Some(s.parse().map_err(|e| bad("rerequest_listen", format!("not an IP:port address: {e}")))?),
        };
        let snapshot = match self.snapshot_listen.as_str() {
            "" => None,
            s => Some(s.parse().map_err(|e| bad("snapshot_listen", format!("not an IP:port address: {e}")))?),
        };
        Ok(Some(FeedAddrs { group, interface, rerequest, snapshot }))
    }

    /// The attribution table (account → MPID).
    pub fn attribution_map(&self) -> Vec<(u32, [u8; 4])> {
        let mut map = Vec::with_capacity(self.attribution.len());
        for a in &self.attribution {
            let mut mpid = [b' '; 4];
            mpid.copy_from_slice(&a.mpid.as_bytes()[..4]);
            map.push((a.account, mpid));
        }
        map
    }
}
