//! Stage: the feed's SoupBinTCP 3.0 snapshot/replay port (`sable-feed-soup`, a thread per
//! connection, at most [`MAX_SOUP_SESSIONS`]). A login with requested sequence number 0 gets a
//! snapshot of the book as the feed shows it — taken by the feed thread between two commands
//! (`Snapshots`): Stock Directory and Trading Action of every instrument, an Add Order for
//! every visible order in priority order, then an end-of-snapshot message (`G` and the feed
//! sequence number it represents) — and then the live messages from that number on. A login
//! with a retained sequence number N gets the messages from N on. Heartbeats once a second
//! when idle; end of session (`Z`) when the feed's session changes or the client fell behind
//! what is retained. The connection threads poll the retained history every
//! [`SOUP_POLL`]: this port is for recovery, the multicast feed is the fast path.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::feed::history::History;
use crate::feed::mold::SessionName;
use crate::feed::soup;

/// Most SoupBinTCP connections at once; more are closed at once.
pub const MAX_SOUP_SESSIONS: usize = 32;
/// How often an idle connection looks for new messages (and reads its client).
pub const SOUP_POLL: Duration = Duration::from_millis(10);
/// Heartbeat period of an idle connection.
pub const SOUP_HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a client has to log in, and the feed thread to take a snapshot.
pub const SOUP_LOGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Most messages copied out of the history per lock.
const SOUP_BATCH: u64 = 1024;

/// A snapshot the feed thread took between two commands.
#[derive(Clone)]
pub(crate) struct Snapshot {
    /// The session.
    pub(crate) session: SessionName,
    /// The sequence number of the first message after it.
    pub(crate) next_seq: u64,
    /// Its messages, encoded.
    pub(crate) messages: Vec<Vec<u8>>,
}

/// Snapshot requests, answered by the feed thread.
#[derive(Default)]
pub(crate) struct Snapshots {
    /// Set when someone waits.
    pub(crate) wanted: AtomicBool,
    /// Who waits.
    pub(crate) waiting: Mutex<Vec<mpsc::Sender<Snapshot>>>,
}

/// The port's acceptor thread.
pub(crate) struct SoupThread {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl SoupThread {
    /// Stops accepting and tells the connections to end.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.handle.join();
    }
}

/// Starts the acceptor on `listener`.
pub(crate) fn spawn(
    listener: TcpListener,
    history: Arc<Mutex<History>>,
    snapshots: Arc<Snapshots>,
    feed_thread: Thread,
) -> std::io::Result<SoupThread> {
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let handle = std::thread::Builder::new().name("sable-feed-soup".into()).spawn(move || {
        let live = Arc::new(AtomicUsize::new(0));
        while !s.load(Ordering::Acquire) {
            let Ok((stream, peer)) = listener.accept() else {
                std::thread::sleep(SOUP_POLL);
                continue;
            };
            if live.fetch_add(1, Ordering::AcqRel) >= MAX_SOUP_SESSIONS {
                live.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!(%peer, "feed snapshot port: MAX_SOUP_SESSIONS reached; connection closed");
                continue;
            }
            let conn = Conn {
                stream,
                history: Arc::clone(&history),
                snapshots: Arc::clone(&snapshots),
                feed_thread: feed_thread.clone(),
                stop: Arc::clone(&s),
            };
            let live = Arc::clone(&live);
            let spawned = std::thread::Builder::new().name("sable-feed-soup".into()).spawn(move || {
                if let Err(e) = conn.serve() {
                    tracing::debug!(%peer, error = %e, "feed snapshot connection ended");
                }
                live.fetch_sub(1, Ordering::AcqRel);
            });
            if spawned.is_err() {
                tracing::warn!(%peer, "feed snapshot port: cannot spawn a connection thread");
            }
        }
    })?;
    Ok(SoupThread { handle, stop })
}

struct Conn {
    stream: TcpStream,
    history: Arc<Mutex<History>>,
    snapshots: Arc<Snapshots>,
    feed_thread: Thread,
    stop: Arc<AtomicBool>,
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_string())
}

impl Conn {
    fn serve(mut self) -> std::io::Result<()> {
        self.stream.set_nodelay(true)?;
        self.stream.set_read_timeout(Some(SOUP_LOGIN_TIMEOUT))?;
        self.stream.set_write_timeout(Some(SOUP_LOGIN_TIMEOUT))?;
        let mut buf = Vec::with_capacity(256);
        let login = loop {
            if let Some((kind, payload, _)) = soup::next_packet(&buf) {
                match (kind, soup::parse_login(payload)) {
                    (b'L', Some(l)) => break l,
                    _ => return Ok(()),
                }
            }
            let mut chunk = [0u8; 64];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let (session, mut cursor) = match login.seq {
            0 => self.send_snapshot()?,
            n => {
                let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
                let session = h.session();
                let blank = login.session == *b"          ";
                if (!blank && login.session != session) || n < h.first_seq() || n > h.next_seq() {
                    drop(h);
                    return self.stream.write_all(&soup::packet(b'J', b"S"));
                }
                drop(h);
                self.stream.write_all(&soup::login_accepted(&session, n))?;
                (session, n)
            }
        };
        self.stream.set_read_timeout(Some(SOUP_POLL))?;
        self.stream_live(session, &mut cursor)
    }

    fn send_snapshot(&mut self) -> std::io::Result<(SessionName, u64)> {
        let (tx, rx) = mpsc::channel();
        self.snapshots.waiting.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        self.snapshots.wanted.store(true, Ordering::Release);
        self.feed_thread.unpark();
        let snap = rx.recv_timeout(SOUP_LOGIN_TIMEOUT).map_err(|_| timed_out("no snapshot from the feed thread"))?;
        let mut out = soup::login_accepted(&snap.session, 1);
        for m in &snap.messages {
            out.extend_from_slice(&soup::packet(b'S', m));
        }
        out.extend_from_slice(&soup::packet(b'S', &soup::end_of_snapshot(snap.next_seq)));
        self.stream.write_all(&out)?;
        Ok((snap.session, snap.next_seq))
    }

    fn stream_live(&mut self, session: SessionName, cursor: &mut u64) -> std::io::Result<()> {
        let mut last_sent = Instant::now();
        let mut out = Vec::with_capacity(64 * 1024);
        while !self.stop.load(Ordering::Acquire) {
            {
                let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
                if h.session() != session || *cursor < h.first_seq() {
                    drop(h);
                    return self.stream.write_all(&soup::packet(b'Z', b""));
                }
                let end = h.next_seq().min(*cursor + SOUP_BATCH);
                while *cursor < end {
                    let m = h.get(*cursor).expect("between first and next: retained");
                    out.extend_from_slice(&soup::packet(b'S', m));
                    *cursor += 1;
                }
            }
            if !out.is_empty() {
                self.stream.write_all(&out)?;
                out.clear();
                last_sent = Instant::now();
                continue;
            }
            if last_sent.elapsed() >= SOUP_HEARTBEAT {
                self.stream.write_all(&soup::packet(b'H', b""))?;
                last_sent = Instant::now();
            }
            // The idle wait: a read with the poll timeout (client heartbeats, logout, close).
            let mut chunk = [0u8; 64];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) if chunk[..n].contains(&b'O') && soup::next_packet(&chunk[..n]).is_some_and(|p| p.0 == b'O') => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
