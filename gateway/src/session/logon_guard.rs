//! Failed-logon throttling, shared by every protocol: an unauthenticated peer can do nothing
//! but fail, slowly, and be seen.
//!
//! Failures are counted per configured session and per source address. After
//! `logon_failures_before_lockout` failures in a row on either key, every logon on that key is
//! refused, whatever its credentials, for `logon_lockout_ms`; each further failure after it
//! ends doubles the next lockout, up to [`MAX_LOCKOUT`] (logons refused during a lockout are not
//! counted, so a client that merely retries is not shut out for longer). A successful logon clears both of its keys. The refusal looks
//! exactly like a wrong password, so it reveals nothing, and a connection that is already
//! authenticated is never touched. Each failure is a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::limits::MAX_LOGON_GUARD_ENTRIES;

/// The longest a lockout grows to.
pub(crate) const MAX_LOCKOUT: Duration = Duration::from_secs(300);

/// What failures are counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum GuardKey {
    /// A configured session, by its index in its protocol's list.
    Session(usize),
    /// A source address.
    Addr(IpAddr),
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    failures: u32,
    locked_until_ns: u64,
}

/// Failed logons of one protocol's sessions.
#[derive(Debug)]
pub(crate) struct LogonGuard {
    max_failures: u32,
    lockout_ns: u64,
    entries: HashMap<GuardKey, Entry>,
    /// Failed logons since start (metrics).
    failures_total: u64,
}

impl LogonGuard {
    /// A guard locking out after `max_failures` failures (0: never) for `lockout` and more.
    pub(crate) fn new(max_failures: u32, lockout: Duration) -> Self {
        let lockout_ns = u64::try_from(lockout.as_nanos()).unwrap_or(u64::MAX);
        LogonGuard { max_failures, lockout_ns, entries: HashMap::new(), failures_total: 0 }
    }

    /// Whether a logon with these keys is refused now, whatever its credentials.
    pub(crate) fn locked(&self, keys: &[GuardKey], now_ns: u64) -> bool {
        keys.iter().any(|k| self.entries.get(k).is_some_and(|e| e.locked_until_ns > now_ns))
    }

    /// A logon with these keys failed authentication (not one refused for a lockout).
    pub(crate) fn failed(&mut self, keys: &[GuardKey], now_ns: u64) {
        self.failures_total += 1;
        if self.max_failures == 0 {
            return;
        }
        if self.entries.len() + keys.len() > MAX_LOGON_GUARD_ENTRIES {
            self.entries.retain(|_, e| e.locked_until_ns > now_ns);
        }
        for key in keys {
            if !self.entries.contains_key(key) && self.entries.len() >= MAX_LOGON_GUARD_ENTRIES {
                tracing::warn!(?key, "failed-logon table full: this key's failures are not counted");
                continue;
            }
            let e = self.entries.entry(*key).or_default();
            e.failures = e.failures.saturating_add(1);
            if e.failures >= self.max_failures {
                let doublings = (e.failures - self.max_failures).min(16);
                let max_ns = u64::try_from(MAX_LOCKOUT.as_nanos()).unwrap_or(u64::MAX);
                let lockout_ns = self.lockout_ns.saturating_mul(1 << doublings).min(max_ns);
                e.locked_until_ns = now_ns.saturating_add(lockout_ns);
                tracing::warn!(?key, failures = e.failures, lockout_ms = lockout_ns / 1_000_000, "logons locked out");
            }
        }
        tracing::warn!(?keys, "logon failed");
    }

    /// Logons that failed authentication since start.
    pub(crate) fn failures_total(&self) -> u64 {
        self.failures_total
    }

    /// A logon with these keys succeeded: their failures are forgiven.
    pub(crate) fn succeeded(&mut self, keys: &[GuardKey]) {
        for key in keys {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn failures_lock_out_for_a_growing_time_and_success_forgives() {
        let mut g = LogonGuard::new(3, Duration::from_millis(100));
        let keys = [GuardKey::Session(0), GuardKey::Addr("10.0.0.1".parse().unwrap())];
        g.failed(&keys, 0);
        g.failed(&keys, MS);
        assert!(!g.locked(&keys, 2 * MS), "two failures lock nothing");
        assert_eq!(g.failures_total(), 2, "every failure is counted");
        g.failed(&keys, 2 * MS);
        assert!(g.locked(&keys, 3 * MS) && g.locked(&keys[1..], 3 * MS), "each key is locked");
        assert!(!g.locked(&keys, 103 * MS), "the first lockout lasts 100 ms");
        g.failed(&keys, 103 * MS);
        assert!(g.locked(&keys, 250 * MS) && !g.locked(&keys, 304 * MS), "the next one 200 ms");
        let other = [GuardKey::Session(1), GuardKey::Addr("10.0.0.2".parse().unwrap())];
        assert!(!g.locked(&other, 250 * MS), "other sessions and addresses are not touched");
        g.succeeded(&keys);
        assert!(!g.locked(&keys, 250 * MS));
    }

    #[test]
    fn lockouts_stop_growing_and_zero_turns_the_guard_off() {
        let mut g = LogonGuard::new(1, Duration::from_secs(1));
        let key = [GuardKey::Session(0)];
        for _ in 0..40 {
            g.failed(&key, 0);
        }
        let max_ns = MAX_LOCKOUT.as_nanos() as u64;
        assert!(g.locked(&key, max_ns - 1) && !g.locked(&key, max_ns));
        let mut off = LogonGuard::new(0, Duration::from_secs(1));
        off.failed(&key, 0);
        assert!(!off.locked(&key, 1));
    }
}
