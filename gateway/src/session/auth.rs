//! The `sable-auth` thread: verifies offered passwords against hashed credentials off the
//! gateway thread (an Argon2 verification takes milliseconds; on the gateway thread it would
//! stall every client's orders).
//!
//! Sessions hold a logon whose credential is hashed as pending and put an [`AuthRequest`] in
//! the [`crate::session::Outbox`]; the edge hands it to this thread through a bounded queue
//! ([`MAX_PENDING_AUTH`]) and the verdict comes back through a channel and the receiver's mio
//! waker, to [`crate::session::Protocol::handle_verdict`]. A full queue answers at once with
//! [`Verdict::Unavailable`]: the logon is dropped without a reply, not counted as a failure.
//!
//! The thread runs in the `SCHED_IDLE` scheduling class: on a host with few cores a burst of
//! verifications (each about a core for tens of milliseconds) uses only CPU time the pipeline's
//! threads leave, instead of competing with them as an equal. Under a sustained full load,
//! logons wait (bounded by the queue and the logon timeout); orders do not.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use crate::limits::MAX_PENDING_AUTH;
use crate::session::ConnId;
use crate::session::credentials::verify_password;

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on CPU time no normal
/// thread wants, and a waking pipeline thread preempts it at once (a merely "nicer" thread can
/// hold a CPU for the scheduler's wake-up granularity, milliseconds, first). A failure (not
/// Linux, not permitted) leaves it at the process's priority, with a warning.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that outlives the
        // call, which only changes this thread's scheduling class.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower the auth thread's priority");
        }
    }
}

/// A password to verify for the logon pending on `conn`.
pub(crate) struct AuthRequest {
    /// The connection whose logon waits.
    pub conn: ConnId,
    /// The protocol's number for this logon (a verdict for an older one is ignored).
    pub attempt: u64,
    /// The configured PHC string.
    pub phc: Arc<str>,
    /// The password the logon offered.
    pub offered: Vec<u8>,
}

/// The answer to an [`AuthRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The password matches.
    Accepted,
    /// It does not.
    Refused,
    /// It could not be verified (the queue was full, or the thread is gone).
    Unavailable,
}

/// A verdict for the logon pending on `conn`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuthVerdict {
    /// The connection.
    pub conn: ConnId,
    /// The logon's number.
    pub attempt: u64,
    /// The answer.
    pub verdict: Verdict,
}

/// The gateway thread's end of the auth thread.
pub(crate) struct AuthClient {
    requests: SyncSender<AuthRequest>,
    verdicts: Receiver<AuthVerdict>,
}

impl AuthClient {
    /// Starts the `sable-auth` thread; it wakes `waker` after each verdict and ends when this
    /// client is dropped.
    pub(crate) fn spawn(waker: Arc<mio::Waker>) -> std::io::Result<Self> {
        let (requests, inbox) = sync_channel::<AuthRequest>(MAX_PENDING_AUTH);
        let (outbox, verdicts) = sync_channel::<AuthVerdict>(MAX_PENDING_AUTH);
        std::thread::Builder::new().name("sable-auth".into()).spawn(move || {
            lower_priority();
            for req in inbox {
                let verdict =
                    if verify_password(&req.phc, &req.offered) { Verdict::Accepted } else { Verdict::Refused };
                if outbox.send(AuthVerdict { conn: req.conn, attempt: req.attempt, verdict }).is_err() {
                    return;
                }
                // A failed wake only delays the verdict until the gateway's next timer tick.
                let _ = waker.wake();
            }
        })?;
        Ok(AuthClient { requests, verdicts })
    }

    /// Queues `req`; when the queue is full (or the thread is gone) the verdict is
    /// [`Verdict::Unavailable`], at once.
    pub(crate) fn submit(&self, req: AuthRequest) -> Result<(), AuthVerdict> {
        let unavailable =
            |r: AuthRequest| AuthVerdict { conn: r.conn, attempt: r.attempt, verdict: Verdict::Unavailable };
        match self.requests.try_send(req) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(r)) => {
                tracing::warn!(
                    conn = r.conn.0,
                    max = MAX_PENDING_AUTH,
                    "password verification queue full; logon dropped"
                );
                Err(unavailable(r))
            }
            Err(TrySendError::Disconnected(r)) => {
                tracing::error!(conn = r.conn.0, "the auth thread is gone; logon dropped");
                Err(unavailable(r))
            }
        }
    }

    /// The next verdict, if one is ready.
    pub(crate) fn poll(&self) -> Option<AuthVerdict> {
        self.verdicts.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::credentials::hash_password;
    use std::time::{Duration, Instant};

    #[test]
    fn verdicts_come_back_through_the_waker() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let client = AuthClient::spawn(waker).unwrap();
        let phc: Arc<str> = hash_password(b"right").unwrap().into();
        for (attempt, offered) in [(1, &b"right"[..]), (2, &b"wrong"[..])] {
            let req = AuthRequest { conn: ConnId(3), attempt, phc: Arc::clone(&phc), offered: offered.to_vec() };
            assert!(client.submit(req).is_ok());
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut events = mio::Events::with_capacity(4);
        while got.len() < 2 && Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_secs(1))).unwrap();
            while let Some(v) = client.poll() {
                got.push((v.conn, v.attempt, v.verdict));
            }
        }
        assert_eq!(got, vec![(ConnId(3), 1, Verdict::Accepted), (ConnId(3), 2, Verdict::Refused)]);
    }
}
