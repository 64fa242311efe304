//! The gateway's limits in one place: every bound on a queue, a table, a buffer, a message or a
//! wait, with what it bounds and why it has its value. Configuration validation
//! ([`crate::config`]) checks the operator's values against the first group and prints these
//! constants in its messages; the codecs, sessions and stages use the rest. Relations between
//! limits are asserted at compile time at the end of the file.
//!
//! Protocol constants (tags, template ids, field widths fixed by a schema) stay with their
//! protocol; the engine's capacities are [`engine::limits`]; the session store's bounds are
//! [`crate::store::StoreLimits`].
//!
//! Items other crates use are `pub` and re-exported where they always were
//! (`config::MAX_COMP_ID_LEN`, `sbe::frame::MAX_FRAME_LEN_BYTES`, ...); this module is private.

use std::time::Duration;

// ------------------------------------------------------------------ configuration

/// Most entries each of `[[instruments]]`, `[[accounts]]`, `[[sessions]]` and
/// `[[fix_sessions]]` may list. Validation compares entries pairwise (duplicate ids, names,
/// CompID pairs), so the bound keeps a start-up check in the milliseconds; an exchange
/// configures far fewer.
pub const MAX_CONFIG_ENTRIES: usize = 4096;

/// Longest SenderCompID / TargetCompID (`[[fix_sessions]]`) sable accepts. Bounds the session
/// header every FIX message carries and the store name (`fix-<sender>-<target>`) on disk; real
/// CompIDs are a few characters.
pub const MAX_COMP_ID_LEN: usize = 32;

/// Most client connections at once (`sessions_limits.max_connections`). Each has a mio token,
/// an outbox slot and a [`RECV_BUF_BYTES`] receive buffer, so this caps receive buffers at
/// 4 GiB; one appliance serving more clients than this is a deployment to split.
pub(crate) const MAX_CONNECTIONS: usize = 1 << 16;

/// Smallest per-connection output allowance (`sessions_limits.outbound_buffer_bytes`): a page.
/// Less would disconnect a healthy client as a slow consumer on the first burst of reports.
pub(crate) const MIN_OUTBOUND_BUFFER_BYTES: usize = 4096;

/// Fewest slots of the input and output rings (`pipeline.input_ring_slots`,
/// `output_ring_slots`). A command takes one output slot per event plus an end marker, so a
/// smaller ring would make the matcher wait on the publisher within a single burst.
pub(crate) const MIN_RING_SLOTS: usize = 64;

/// Most slots of either ring: rings are preallocated, and 2^24 slots of commands or events
/// (a hundred bytes and more each) are already gigabytes.
pub(crate) const MAX_RING_SLOTS: usize = 1 << 24;

/// Shortest sleep of an idle pipeline thread (`pipeline.sleep_us`), in microseconds: zero
/// would be a spin, which is `busy-spin`'s job.
pub(crate) const MIN_SLEEP_US: u64 = 1;

/// Longest sleep of an idle pipeline thread (`pipeline.sleep_us`, `idle_sleep_us`), in
/// microseconds: 100 ms. The first command after an idle spell may wait this long in each
/// sleeping stage.
pub(crate) const MAX_SLEEP_US: u64 = 100_000;

/// Largest FIX HeartBtInt (108) a Logon may ask for (`fix.heartbeat_max_s`), in seconds: an
/// hour. A dead peer is noticed only after two intervals of silence.
pub(crate) const MAX_HEARTBEAT_S: u32 = 3600;

// ------------------------------------------------------------------ messages

/// Largest SBE frame accepted or sent, SOFH included. The biggest message today
/// (ExecutionReport) needs 166 bytes; the margin leaves room for later schema versions while
/// bounding what a peer can make a session buffer.
pub const MAX_FRAME_LEN_BYTES: usize = 512;

/// Largest acceptable FIX message in bytes, from `8=` to the SOH after the checksum. Bounds
/// what a peer can make a session buffer; sable's largest message (an ExecutionReport with
/// every optional field and a long Text) is well under 1 KiB.
pub const MAX_MESSAGE_LEN_BYTES: usize = 8192;

/// Most fields one FIX message may hold, header and trailer included: the size of the parser's
/// preallocated field table. An order message has about 20.
pub const MAX_FIELDS: usize = 128;

/// Most messages a FIX session holds back while it waits for a gap to be filled (each arrived
/// with a MsgSeqNum above the expected one and is processed once the gap is filled). Bounds a
/// session's queue at this many messages of at most [`MAX_MESSAGE_LEN_BYTES`]; one beyond it
/// is dropped, which is safe: the ResendRequest sable sent asks for everything from the gap on
/// (EndSeqNo 0), so the counterparty sends it again.
pub const MAX_FIX_QUEUED_MESSAGES: usize = 1024;

/// Most fields (members, flattened) one repeating group of the FIX dictionary may define:
/// instance bookkeeping is a 64-bit mask.
pub const MAX_GROUP_MEMBERS: usize = 64;

/// Deepest nesting of components and groups accepted in a FIX dictionary: catches cycles, and
/// FIX 4.4's own nesting is shallower.
pub const MAX_DEFINITION_DEPTH: usize = 8;

// ------------------------------------------------------------------ sessions and stages

/// Most messages one SBE RetransmitRequest may ask for: one request cannot make the gateway
/// read and send more than this from a session's store at once.
pub const MAX_RETRANSMIT_COUNT: u32 = 10_000;

/// How long a new SBE connection may take to negotiate and establish, in nanoseconds (10 s):
/// a connection that never does gives its slot back.
pub const HANDSHAKE_TIMEOUT_NS: u64 = 10_000_000_000;

/// Receive buffer per connection: a whole frame of either protocol always fits
/// (asserted below), with room for a batch of small ones per read.
pub(crate) const RECV_BUF_BYTES: usize = 64 * 1024;

/// Keys (sessions and source addresses) the failed-logon guard of one protocol tracks at once:
/// bounds its memory under a flood of logons from many addresses.
pub(crate) const MAX_LOGON_GUARD_ENTRIES: usize = 65_536;

/// Logons whose password waits for the auth thread (session/auth.rs), across every protocol:
/// one Argon2 verification takes milliseconds, so a longer queue only delays every logon; a
/// logon beyond it is dropped without a reply.
pub(crate) const MAX_PENDING_AUTH: usize = 64;

/// Most gateway threads (`pipeline.gateway_threads`): 1 for receiver, sequencer and publisher
/// together, 2 with the publisher on its own.
pub(crate) const MAX_GATEWAY_THREADS: u8 = 2;

/// Output slots the publisher takes from the output ring at a time: bounds its held queue and
/// how long it goes between checks of durability and the sockets.
pub(crate) const PUBLISH_BATCH: u64 = 256;

/// Most records the journaler appends between commits: a burst larger than this (a large
/// `input_ring_slots` arriving as one batch) is made durable, and so released to clients, in
/// steps instead of only once the whole batch is written. The default input ring (4,096
/// slots) never holds more.
pub(crate) const JOURNAL_COMMIT_EVERY_RECORDS: usize = 4096;

/// How long a shutdown waits for in-flight commands to be published before it gives up.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Threads that open session stores at start (a promotion waits for every store).
pub(crate) const MAX_PARALLEL_STORE_OPENS: usize = 4;
/// Under a `replicated` policy with no standby attached, how long a shutdown waits for one
/// before it stops with the in-flight commands journaled but not acknowledged.
pub(crate) const STANDBY_DRAIN_GRACE: Duration = Duration::from_secs(1);

// ------------------------------------------------------------------ relations

const _: () = assert!(MAX_FRAME_LEN_BYTES < RECV_BUF_BYTES, "an SBE frame must fit the receive buffer");
const _: () = assert!(MAX_MESSAGE_LEN_BYTES < RECV_BUF_BYTES, "a FIX message must fit the receive buffer");
const _: () = assert!(
    MIN_OUTBOUND_BUFFER_BYTES >= MAX_FRAME_LEN_BYTES,
    "the smallest output allowance must hold the largest SBE frame"
);
const _: () = assert!(MIN_RING_SLOTS.is_power_of_two() && MAX_RING_SLOTS.is_power_of_two());
const _: () = assert!(MIN_RING_SLOTS <= MAX_RING_SLOTS && MIN_SLEEP_US <= MAX_SLEEP_US);
const _: () = assert!(MAX_FIELDS <= 128, "the FIX dictionary marks top-level fields in a u128");
const _: () = assert!(MAX_GROUP_MEMBERS <= u64::BITS as usize, "group instances are tracked in a u64 mask");
const _: () = assert!(MAX_CONNECTIONS * RECV_BUF_BYTES <= 1 << 32, "receive buffers stay within 4 GiB");
const _: () = assert!(PUBLISH_BATCH as usize <= MAX_RING_SLOTS);
const _: () = assert!(JOURNAL_COMMIT_EVERY_RECORDS >= MIN_RING_SLOTS);
const _: () = assert!(
    "fix--".len() + 2 * MAX_COMP_ID_LEN <= crate::store::MAX_NAME_LEN_BYTES,
    "a FIX session's store name (fix-<sender>-<target>) must be a valid store name"
);
