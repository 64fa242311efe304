//! The physical floor: a blocking TCP echo over loopback of one frame the size of an order
//! (an SBE NewOrderSingle, [`FRAME_BYTES`], or a FIX one), one connection, `TCP_NODELAY` on
//! both ends, the echo on its own thread. No order-entry path over this machine's loopback can
//! answer faster than this round trip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use gateway::sbe::codec::encoded_len;
use gateway::sbe::messages::NewOrderSingle;
use hdrhistogram::Histogram;

use super::Clock;
use crate::report;

/// Bytes each way of the SBE floor: a NewOrderSingle frame (SOFH + message header + block).
pub const FRAME_BYTES: usize = encoded_len::<NewOrderSingle>();

/// Round trips before measuring (connection warm-up, page faults, caches).
const WARMUP_ROUND_TRIPS: u64 = 2_000;

/// Largest frame [`measure`] echoes.
pub const MAX_FRAME_BYTES: usize = 4096;

/// Measures `round_trips` echoes of `frame_bytes` (1..=[`MAX_FRAME_BYTES`]) each way; returns
/// their latencies in ns.
pub fn measure(frame_bytes: usize, round_trips: u64) -> Result<Histogram<u64>, String> {
    if !(1..=MAX_FRAME_BYTES).contains(&frame_bytes) {
        return Err(format!("floor frame of {frame_bytes} bytes: must be in 1..={MAX_FRAME_BYTES}"));
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = std::thread::Builder::new()
        .name("floor-echo".into())
        .spawn(move || -> Result<(), String> {
            let (mut s, _) = listener.accept().map_err(|e| format!("accepting: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; frame_bytes];
            loop {
                match s.read_exact(&mut buf) {
                    Ok(()) => s.write_all(&buf).map_err(|e| format!("echo write: {e}"))?,
                    // The client closed: done.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(format!("echo read: {e}")),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let out = vec![0x5Au8; frame_bytes];
    let mut back = vec![0u8; frame_bytes];
    let clock = Clock::new();
    let mut h = report::histogram();
    for k in 0..WARMUP_ROUND_TRIPS + round_trips {
        let t0 = clock.now_ns();
        s.write_all(&out).map_err(|e| format!("write: {e}"))?;
        s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
        let t1 = clock.now_ns();
        if k >= WARMUP_ROUND_TRIPS {
            h.saturating_record((t1 - t0).max(1));
        }
    }
    assert_eq!(out, back, "the echo returns the bytes sent");
    drop(s);
    echo.join().map_err(|_| "the echo thread panicked".to_string())??;
    Ok(h)
}

/// `fdatasync` latency of a 4 KiB overwrite in `dir` (what `fsync` durability pays per
/// group commit, at best), in ns.
pub fn fdatasync(dir: &std::path::Path, samples: u32) -> Result<Histogram<u64>, String> {
    let path = dir.join("fdatasync-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let block = [0xA5u8; 4096];
    f.write_all(&block).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    let clock = Clock::new();
    let mut h = report::histogram();
    for _ in 0..samples {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        f.write_all(&block).map_err(|e| e.to_string())?;
        let t0 = clock.now_ns();
        f.sync_data().map_err(|e| e.to_string())?;
        h.saturating_record((clock.now_ns() - t0).max(1));
    }
    drop(f);
    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    Ok(h)
}
