//! The session rules every protocol shares, written once: the throttle, which accounts a
//! session may act on, and the mass cancels cancel-on-disconnect sequences. Each protocol maps
//! a [`Refusal`] onto its own message (SBE BusinessMessageReject / Terminate, FIX
//! BusinessMessageReject 380 / Logout).

use engine::{AccountId, ClOrdId, CommandBody, MassCancel, MassCancelTarget};

use crate::config::{FixSessionConfig, SessionConfig, ThrottlePolicy};
use crate::throttle::Gcra;

/// The configuration fields every session has, whatever its protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionCommon {
    /// Accounts the session may act on.
    pub accounts: Vec<u32>,
    /// Application messages per second on average; 0 = no throttle.
    pub throttle_per_s: u32,
    /// Messages back to back above the average rate.
    pub throttle_burst: u32,
    /// What a message over the limit gets.
    pub throttle_policy: ThrottlePolicy,
}

impl From<&SessionConfig> for SessionCommon {
    fn from(c: &SessionConfig) -> Self {
        SessionCommon {
            accounts: c.accounts.clone(),
            throttle_per_s: c.throttle_per_s,
            throttle_burst: c.throttle_burst,
            throttle_policy: c.throttle_policy,
        }
    }
}

impl From<&FixSessionConfig> for SessionCommon {
    fn from(c: &FixSessionConfig) -> Self {
        SessionCommon {
            accounts: c.accounts.clone(),
            throttle_per_s: c.throttle_per_s,
            throttle_burst: c.throttle_burst,
            throttle_policy: c.throttle_policy,
        }
    }
}

/// Why an application message is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over the throttle; `disconnect` says whether the policy ends the session.
    Throttled {
        /// The session ends (policy `disconnect`) instead of rejecting the message.
        disconnect: bool,
        /// The text for the client.
        reason: String,
    },
    /// The session may not act on the message's account.
    NotAuthorized {
        /// The account asked for.
        account: u32,
    },
}

/// A session's throttle and account checks, in that order (a throttled message is refused
/// before anything else is looked at; it still consumes its sequence number).
#[derive(Clone, Debug)]
pub(crate) struct Admission {
    common: SessionCommon,
    throttle: Gcra,
    /// Messages the throttle refused (for `sable_throttled_messages_total`).
    throttled: u64,
    /// Messages refused for naming an account the session may not act on.
    not_authorised: u64,
    /// The session's kill switch is engaged (an operator action): new orders and replaces are
    /// refused until it is released.
    killed: bool,
}

impl Admission {
    /// The checks of a session configured with `common`.
    pub(crate) fn new(common: SessionCommon) -> Self {
        Admission { common, throttle: Gcra::default(), throttled: 0, not_authorised: 0, killed: false }
    }

    /// Whether the session may act on `account`.
    pub(crate) fn may_act_on(&self, account: u32) -> bool {
        self.common.accounts.contains(&account)
    }

    /// Messages the throttle refused so far.
    pub(crate) fn throttled(&self) -> u64 {
        self.throttled
    }

    /// Messages refused so far for naming an account the session may not act on.
    pub(crate) fn not_authorised(&self) -> u64 {
        self.not_authorised
    }

    /// Whether the session may act on `account`, counting a refusal.
    pub(crate) fn authorise(&mut self, account: u32) -> bool {
        let ok = self.may_act_on(account);
        self.not_authorised += u64::from(!ok);
        ok
    }

    /// Engages or releases the session's kill switch.
    pub(crate) fn set_killed(&mut self, killed: bool) {
        self.killed = killed;
    }

    /// Whether the kill switch refuses the session's new orders and replaces.
    pub(crate) fn killed(&self) -> bool {
        self.killed
    }

    /// The accounts the session may act on (a session kill switch cancels their orders).
    pub(crate) fn accounts(&self) -> &[u32] {
        &self.common.accounts
    }

    /// Starts the throttle afresh (a new logon).
    pub(crate) fn restart(&mut self) {
        self.throttle = Gcra::default();
    }

    /// Counts one application message at `now_ns` against the throttle.
    pub(crate) fn throttle(&mut self, now_ns: u64) -> Result<(), Refusal> {
        let c = &self.common;
        if self.throttle.admit(now_ns, c.throttle_per_s, c.throttle_burst) {
            return Ok(());
        }
        self.throttled += 1;
        Err(Refusal::Throttled {
            disconnect: c.throttle_policy == ThrottlePolicy::Disconnect,
            reason: format!("throttled: over {} messages/s (burst {})", c.throttle_per_s, c.throttle_burst),
        })
    }

    /// Counts one application message for `account` at `now_ns`: throttle first, then the
    /// account.
    pub(crate) fn admit(&mut self, account: u32, now_ns: u64) -> Result<(), Refusal> {
        self.throttle(now_ns)?;
        if self.authorise(account) { Ok(()) } else { Err(Refusal::NotAuthorized { account }) }
    }

    /// The commands cancel-on-disconnect sequences: one mass cancel of each of the session's
    /// accounts. `counter` numbers them (their ClOrdIDs are `cod-<n>`).
    pub(crate) fn cancel_on_disconnect(&self, counter: &mut u64, submit: &mut impl FnMut(CommandBody)) {
        for &account in &self.common.accounts {
            *counter += 1;
            submit(CommandBody::MassCancel(MassCancel {
                account: AccountId(account),
                cl_ord_id: cod_cl_ord_id(*counter),
                target: MassCancelTarget::Account(AccountId(account), None),
            }));
        }
    }
}

fn cod_cl_ord_id(n: u64) -> ClOrdId {
    let mut buf = [0u8; 24];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = std::io::Write::write_fmt(&mut cur, format_args!("cod-{n}"));
    let len = cur.position() as usize;
    ClOrdId::new(&buf[..len]).expect("cod-<u64> is a valid client order id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(per_s: u32, burst: u32, policy: ThrottlePolicy) -> SessionCommon {
        SessionCommon { accounts: vec![7, 9], throttle_per_s: per_s, throttle_burst: burst, throttle_policy: policy }
    }

    #[test]
    fn throttle_comes_before_the_account_check() {
        let mut a = Admission::new(common(1, 1, ThrottlePolicy::Reject));
        assert_eq!(a.admit(8, 0), Err(Refusal::NotAuthorized { account: 8 }));
        let e = a.admit(8, 1).expect_err("second message within the interval");
        assert!(matches!(e, Refusal::Throttled { disconnect: false, .. }), "{e:?}");
        assert_eq!(a.admit(7, 2_000_000_000), Ok(()));
    }

    #[test]
    fn disconnect_policy_is_reported() {
        let mut a = Admission::new(common(10, 2, ThrottlePolicy::Disconnect));
        assert!(a.admit(7, 0).is_ok() && a.admit(7, 0).is_ok());
        assert!(matches!(a.admit(7, 0), Err(Refusal::Throttled { disconnect: true, .. })));
        a.restart();
        assert!(a.admit(7, 0).is_ok());
    }

    #[test]
    fn cancel_on_disconnect_cancels_every_account_with_fresh_ids() {
        let a = Admission::new(common(0, 1, ThrottlePolicy::Reject));
        let mut n = 4;
        let mut bodies = Vec::new();
        a.cancel_on_disconnect(&mut n, &mut |b| bodies.push(b));
        assert_eq!(n, 6);
        let got: Vec<(u32, Vec<u8>)> = bodies
            .iter()
            .map(|b| match b {
                CommandBody::MassCancel(m) => (m.account.0, m.cl_ord_id.as_bytes().to_vec()),
                other => panic!("not a mass cancel: {other:?}"),
            })
            .collect();
        assert_eq!(got, vec![(7, b"cod-5".to_vec()), (9, b"cod-6".to_vec())]);
    }
}
