//! `sable feed`: joins the multicast feed, recovers gaps by re-request, and prints trades as
//! they happen and the book (top levels of every instrument) every so often.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::feed::itch::Message;
use crate::feed::subscriber::{Book, Subscriber};

/// Levels printed per side.
const BOOK_DEPTH: usize = 5;

/// `sable feed` arguments.
#[derive(clap::Args, Debug)]
pub struct FeedArgs {
    /// Configuration file whose `[feed]` section names the group, interface and re-request
    /// address; the built-in configuration when omitted.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Multicast group:port (overrides the configuration).
    #[arg(long)]
    pub group: Option<SocketAddrV4>,
    /// Interface address to join on (overrides the configuration).
    #[arg(long)]
    pub interface: Option<Ipv4Addr>,
    /// Re-request server address (overrides the configuration's `rerequest_listen`).
    #[arg(long)]
    pub rerequest: Option<SocketAddr>,
    /// Print the book every this many milliseconds (0: never).
    #[arg(long, default_value_t = 1000)]
    pub book_every_ms: u64,
    /// Stop after this many seconds (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
}

/// Runs `sable feed`.
pub fn run(args: &FeedArgs, out: &mut impl Write) -> Result<(), String> {
    let cfg = match &args.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default_config(),
    };
    let f = &cfg.feed;
    let group = match args.group {
        Some(g) => g,
        None => f.group.parse().map_err(|e| format!("feed.group {:?}: {e}", f.group))?,
    };
    let interface = match args.interface {
        Some(i) => i,
        None => f.interface.parse().map_err(|e| format!("feed.interface {:?}: {e}", f.interface))?,
    };
    let rerequest = match (args.rerequest, f.rerequest_listen.as_str()) {
        (Some(a), _) => Some(a),
        (None, "") => None,
        (None, s) => Some(s.parse().map_err(|e| format!("feed.rerequest_listen {s:?}: {e}"))?),
    };
    let mut sub = Subscriber::join(group, interface, rerequest).map_err(|e| format!("joining {group}: {e}"))?;
    writeln!(out, "joined {group} on {interface}; re-requests to {rerequest:?}").map_err(|e| e.to_string())?;
    let mut book = Book::default();
    let started = Instant::now();
    let mut last_book = Instant::now();
    let mut lines: Vec<String> = Vec::new();
    loop {
        sub.poll(Duration::from_millis(50), &mut |seq, m| {
            if let Some((locate, shares, price, match_number)) = book.apply(m) {
                let symbol = book.symbols.get(&locate).cloned().unwrap_or_default();
                lines.push(format!("#{seq} trade {symbol} {shares} @ {} (match {match_number})", price4(price)));
            }
            if let Message::SystemEvent { event_code, .. } = m {
                lines.push(format!("#{seq} system event {}", *event_code as char));
            }
        })
        .map_err(|e| e.to_string())?;
        for l in lines.drain(..) {
            writeln!(out, "{l}").map_err(|e| e.to_string())?;
        }
        if args.book_every_ms > 0 && last_book.elapsed() >= Duration::from_millis(args.book_every_ms) {
            print_book(&book, &sub, out).map_err(|e| e.to_string())?;
            last_book = Instant::now();
        }
        if args.seconds > 0 && started.elapsed() >= Duration::from_secs(args.seconds) {
            return Ok(());
        }
    }
}

fn price4(p: u32) -> String {
    format!("{}.{:04}", p / 10_000, p % 10_000)
}

fn print_book(book: &Book, sub: &Subscriber, out: &mut impl Write) -> std::io::Result<()> {
    let session = sub.session().map(|s| String::from_utf8_lossy(&s).to_string()).unwrap_or_default();
    writeln!(
        out,
        "-- session {session} next #{} ({} orders, {} re-requests)",
        sub.next_seq(),
        book.len(),
        sub.requests
    )?;
    let mut locates: Vec<(&u16, &String)> = book.symbols.iter().collect();
    locates.sort();
    for (locate, symbol) in locates {
        let bids = book.levels(*locate, b'B');
        let asks = book.levels(*locate, b'S');
        writeln!(out, "   {symbol:<8} {:>22} | {:<22}", "bids (shares @ price)", "asks")?;
        for i in 0..BOOK_DEPTH.min(bids.len().max(asks.len())) {
            let side = |l: Option<&(u32, u64, u32)>| l.map_or(String::new(), |l| format!("{} @ {}", l.1, price4(l.0)));
            writeln!(out, "   {:<8} {:>22} | {:<22}", "", side(bids.get(i)), side(asks.get(i)))?;
        }
    }
    Ok(())
}
