//! Per-session message throttle: GCRA (the generic cell rate algorithm), which is a token bucket
//! kept as one timestamp. Integer nanoseconds, no floating point, no allocation.

/// Throttle state of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gcra {
    /// Theoretical arrival time of the next conforming message, in nanoseconds.
    tat_ns: u64,
}

impl Gcra {
    /// Whether a message at `now_ns` conforms to `per_s` messages per second on average with
    /// bursts of `burst`; counts it if so. `per_s == 0` admits everything.
    pub fn admit(&mut self, now_ns: u64, per_s: u32, burst: u32) -> bool {
        if per_s == 0 {
            return true;
        }
        let interval_ns = (1_000_000_000 / u64::from(per_s)).max(1);
        let tolerance_ns = interval_ns.saturating_mul(u64::from(burst.max(1)) - 1);
        let tat = self.tat_ns.max(now_ns);
        if tat - now_ns > tolerance_ns {
            return false;
        }
        self.tat_ns = tat + interval_ns;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_the_average_rate() {
        let mut g = Gcra::default();
        let t0 = 1_000_000_000;
        // A burst of 5 at 10/s passes at once, the 6th does not.
        assert!((0..5).all(|_| g.admit(t0, 10, 5)));
        assert!(!g.admit(t0, 10, 5));
        // One interval (100 ms) later exactly one more fits.
        assert!(g.admit(t0 + 100_000_000, 10, 5));
        assert!(!g.admit(t0 + 100_000_000, 10, 5));
        // After a long quiet period the full burst is available again, not more.
        let later = t0 + 10_000_000_000;
        assert_eq!((0..10).filter(|_| g.admit(later, 10, 5)).count(), 5);
        // Rejected messages do not use up capacity.
        let mut h = Gcra::default();
        assert!(h.admit(0, 1, 1));
        assert!(!h.admit(1, 1, 1));
        assert!(!h.admit(2, 1, 1));
        assert!(h.admit(1_000_000_000, 1, 1));
        // Off means off.
        assert!((0..1000).all(|_| h.admit(5, 0, 0)));
    }
}
