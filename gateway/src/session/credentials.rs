//! Session credentials, shared by every protocol: what a configured session's Logon (FIX) or
//! Negotiate (SBE) must carry, how it is checked, and how the set is replaced while the
//! appliance runs.
//!
//! A password in the configuration is either a PHC string from [`hash_password`] (`sable
//! passwd`: Argon2id, salted) or plain text (the demo configuration; warned about at start-up).
//! A plain one is compared in constant time right away; a hash is verified on the `sable-auth`
//! thread ([`crate::session::auth`]), never on the gateway thread, because a verification takes
//! milliseconds. [`Credential::check`] says which: accepted, refused, or needs verification.
//!
//! [`CredentialStore`] holds the current set for both protocols behind a lock and a generation
//! number: a reload ([`CredentialStore::reload`]) validates a whole new set first and swaps it
//! in at once; the protocols pick it up at their next logon (one atomic load per logon), so live
//! sessions are never touched and a changed password applies from its session's next logon.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use subtle::ConstantTimeEq;

use crate::config::{Config, FixSessionConfig, SessionConfig};

/// What marks a configured password as a PHC hash string rather than plain text.
pub const PHC_PREFIX: &str = "$argon2";

/// Why a credential or a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A password that starts like a hash but is not a valid Argon2 PHC string.
    #[error("not a valid Argon2 PHC string: {0}")]
    BadHash(String),
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hashing(String),
    /// The configuration file could not be read or is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

/// A configured password.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    /// None configured: any password is accepted (FIX sessions without one).
    Any,
    /// Plain text (compared in constant time).
    Plain(Vec<u8>),
    /// An Argon2 PHC string, verified on the auth thread.
    Hashed(Arc<str>),
    /// Nothing matches (a credential that could not be read).
    Never,
}

/// What a session's logon must carry: a username (empty: any) and a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    username: Vec<u8>,
    secret: Secret,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.secret {
            Secret::Any => "none",
            Secret::Plain(_) => "plain",
            Secret::Hashed(_) => "hashed",
            Secret::Never => "never",
        };
        write!(f, "Credential {{ username: {:?}, password: {kind} }}", String::from_utf8_lossy(&self.username))
    }
}

/// What [`Credential::check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The credentials match.
    Accepted,
    /// They do not.
    Refused,
    /// The password must be verified against this PHC string (off the gateway thread); the
    /// answer then goes back in as `verified`.
    Verify(Arc<str>),
}

impl Credential {
    /// The credential of `username` (empty: any) and `password` as configured: empty (any),
    /// a PHC string (starts with [`PHC_PREFIX`]) or plain text.
    pub fn new(username: &str, password: &str) -> Result<Self, CredentialError> {
        let secret = if password.is_empty() {
            Secret::Any
        } else if password.starts_with(PHC_PREFIX) {
            let parsed = PasswordHash::new(password).map_err(|e| CredentialError::BadHash(e.to_string()))?;
            argon2::Algorithm::try_from(parsed.algorithm).map_err(|e| CredentialError::BadHash(e.to_string()))?;
            argon2::Params::try_from(&parsed).map_err(|e| CredentialError::BadHash(e.to_string()))?;
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err(CredentialError::BadHash("no salt or no hash".into()));
            }
            Secret::Hashed(password.into())
        } else {
            Secret::Plain(password.as_bytes().to_vec())
        };
        Ok(Credential { username: username.as_bytes().to_vec(), secret })
    }

    /// A credential nothing matches (what a session gets if its configured one cannot be read,
    /// which validation prevents).
    pub fn never() -> Self {
        Credential { username: Vec::new(), secret: Secret::Never }
    }

    /// `new`, or [`Credential::never`] with an error logged.
    pub fn or_never(username: &str, password: &str, session: &str) -> Self {
        Credential::new(username, password).unwrap_or_else(|e| {
            tracing::error!(session, error = %e, "unreadable credential: every logon of this session is refused");
            Credential::never()
        })
    }

    /// Whether the password is configured in plain text.
    pub fn is_plain(&self) -> bool {
        matches!(self.secret, Secret::Plain(_))
    }

    /// Whether the password is a hash that must be verified off the gateway thread.
    pub fn is_hashed(&self) -> bool {
        matches!(self.secret, Secret::Hashed(_))
    }

    /// The PHC string to verify a password against, when the password is hashed.
    pub fn phc(&self) -> Option<Arc<str>> {
        match &self.secret {
            Secret::Hashed(phc) => Some(Arc::clone(phc)),
            _ => None,
        }
    }

    /// Checks an offered username and password. With a hashed password and `verified` not yet
    /// known the answer is [`Check::Verify`]; `verified` is the auth thread's verdict. The
    /// username is compared in every case, so a wrong one costs the same time as a wrong
    /// password.
    pub fn check(&self, username: &[u8], password: &[u8], verified: Option<bool>) -> Check {
        let user_ok = self.username.is_empty() || bool::from(self.username.as_slice().ct_eq(username));
        let pass_ok = match &self.secret {
            Secret::Any => true,
            Secret::Never => false,
            Secret::Plain(p) => bool::from(p.as_slice().ct_eq(password)),
            Secret::Hashed(phc) => match verified {
                Some(ok) => ok,
                None => return Check::Verify(Arc::clone(phc)),
            },
        };
        if user_ok && pass_ok { Check::Accepted } else { Check::Refused }
    }
}

/// A salted Argon2id PHC string of `password` (what `sable passwd` prints).
pub fn hash_password(password: &[u8]) -> Result<String, CredentialError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (milliseconds: never on the gateway thread).
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// Every configured session's credential, in configuration order per protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialSet {
    /// `[[sessions]]` (SBE).
    pub sbe: Vec<Credential>,
    /// `[[fix_sessions]]`.
    pub fix: Vec<Credential>,
}

fn sbe_name(s: &SessionConfig) -> String {
    format!("sbe session {}", s.session_id)
}

fn fix_name(f: &FixSessionConfig) -> String {
    format!("fix session {}->{}", f.sender_comp_id, f.target_comp_id)
}

/// What a reload changed (names only, never secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Sessions whose username or password changed.
    pub changed: Vec<String>,
    /// Sessions whose credential is the same.
    pub unchanged: usize,
    /// Sessions in the file that are not running (a restart adds them).
    pub not_running: Vec<String>,
    /// Running sessions missing from the file (their credential is kept).
    pub missing: Vec<String>,
}

/// The credentials the appliance runs with, replaceable at run time.
#[derive(Debug)]
pub struct CredentialStore {
    generation: AtomicU64,
    current: RwLock<Arc<CredentialSet>>,
    /// The running sessions' identities, which a reload matches by.
    sbe_ids: Vec<u64>,
    fix_ids: Vec<(String, String)>,
}

impl CredentialStore {
    /// The credentials of a validated configuration; one warning per plain-text password.
    pub fn new(cfg: &Config) -> Self {
        let set = CredentialSet {
            sbe: cfg.sessions.iter().map(|s| Credential::or_never(&s.username, &s.password, &sbe_name(s))).collect(),
            fix: cfg
                .fix_sessions
                .iter()
                .map(|f| Credential::or_never(&f.username, &f.password, &fix_name(f)))
                .collect(),
        };
        let names = cfg.sessions.iter().map(sbe_name).chain(cfg.fix_sessions.iter().map(fix_name));
        for (name, c) in names.zip(set.sbe.iter().chain(&set.fix)) {
            if c.is_plain() {
                tracing::warn!(session = %name, "plain-text password in the configuration; store a hash from `sable passwd`");
            }
        }
        CredentialStore {
            generation: AtomicU64::new(0),
            current: RwLock::new(Arc::new(set)),
            sbe_ids: cfg.sessions.iter().map(|s| s.session_id).collect(),
            fix_ids: cfg.fix_sessions.iter().map(|f| (f.sender_comp_id.clone(), f.target_comp_id.clone())).collect(),
        }
    }

    /// Bumped by every reload that changed something.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current set.
    pub fn current(&self) -> Arc<CredentialSet> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads the configuration file at `path` and swaps in its credentials (see
    /// [`CredentialStore::reload`]).
    pub fn reload_file(&self, path: &Path) -> Result<ReloadReport, CredentialError> {
        let cfg = Config::load(path).map_err(|e| CredentialError::Config(e.to_string()))?;
        self.reload(cfg)
    }

    /// Validates `cfg` as a whole and, only if it is valid, swaps in the credentials of the
    /// running sessions (matched by session id and CompIDs) at once. Sessions the file adds
    /// need a restart; running sessions it lacks keep their credential. Logs what changed.
    pub fn reload(&self, cfg: Config) -> Result<ReloadReport, CredentialError> {
        let cfg = cfg.validate().map_err(|e| CredentialError::Config(e.to_string()))?.raw;
        let old = self.current();
        let mut new = (*old).clone();
        let mut report = ReloadReport::default();
        for s in &cfg.sessions {
            let c = Credential::new(&s.username, &s.password)?;
            match self.sbe_ids.iter().position(|id| *id == s.session_id) {
                Some(i) => note_change(&mut new.sbe[i], c, sbe_name(s), &mut report),
                None => report.not_running.push(sbe_name(s)),
            }
        }
        for f in &cfg.fix_sessions {
            let c = Credential::new(&f.username, &f.password)?;
            let id = (f.sender_comp_id.clone(), f.target_comp_id.clone());
            match self.fix_ids.iter().position(|x| *x == id) {
                Some(i) => note_change(&mut new.fix[i], c, fix_name(f), &mut report),
                None => report.not_running.push(fix_name(f)),
            }
        }
        let sbe_missing = self.sbe_ids.iter().filter(|id| !cfg.sessions.iter().any(|s| s.session_id == **id));
        report.missing.extend(sbe_missing.map(|id| format!("sbe session {id}")));
        let fix_missing = self
            .fix_ids
            .iter()
            .filter(|(s, t)| !cfg.fix_sessions.iter().any(|f| f.sender_comp_id == *s && f.target_comp_id == *t));
        report.missing.extend(fix_missing.map(|(s, t)| format!("fix session {s}->{t}")));
        if !report.changed.is_empty() {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        tracing::info!(
            changed = ?report.changed,
            unchanged = report.unchanged,
            not_running = ?report.not_running,
            missing = ?report.missing,
            "credentials reloaded"
        );
        Ok(report)
    }
}

fn note_change(slot: &mut Credential, new: Credential, name: String, report: &mut ReloadReport) {
    if *slot == new {
        report.unchanged += 1;
        return;
    }
    if new.is_plain() {
        tracing::warn!(session = %name, "plain-text password in the configuration; store a hash from `sable passwd`");
    }
    *slot = new;
    report.changed.push(name);
}

/// A protocol's view of the store: the set it checks logons against, refreshed when a reload
/// bumped the generation.
#[derive(Debug)]
pub(crate) struct CredentialView {
    store: Option<Arc<CredentialStore>>,
    seen: u64,
    set: Arc<CredentialSet>,
}

impl CredentialView {
    /// A fixed set (no reloads), for sessions built without a store (tests).
    pub(crate) fn fixed(set: CredentialSet) -> Self {
        CredentialView { store: None, seen: 0, set: Arc::new(set) }
    }

    /// A view following `store`.
    pub(crate) fn following(store: Arc<CredentialStore>) -> Self {
        let seen = store.generation();
        let set = store.current();
        CredentialView { store: Some(store), seen, set }
    }

    /// The current set; true in the second element if it changed since the last call.
    pub(crate) fn refresh(&mut self) -> (&CredentialSet, bool) {
        let changed = match &self.store {
            Some(store) if store.generation() != self.seen => {
                self.seen = store.generation();
                self.set = store.current();
                true
            }
            _ => false,
        };
        (&self.set, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hashed_and_open_credentials_check_as_configured() {
        let plain = Credential::new("u", "secret").unwrap();
        assert!(plain.is_plain());
        assert_eq!(plain.check(b"u", b"secret", None), Check::Accepted);
        assert_eq!(plain.check(b"u", b"secreT", None), Check::Refused);
        assert_eq!(plain.check(b"v", b"secret", None), Check::Refused);
        let open = Credential::new("", "").unwrap();
        assert_eq!(open.check(b"anyone", b"anything", None), Check::Accepted);
        let phc = hash_password(b"secret").unwrap();
        assert!(phc.starts_with(PHC_PREFIX), "{phc}");
        let hashed = Credential::new("u", &phc).unwrap();
        assert!(hashed.is_hashed() && !hashed.is_plain());
        let Check::Verify(to_verify) = hashed.check(b"u", b"secret", None) else { panic!("must verify") };
        assert!(verify_password(&to_verify, b"secret"));
        assert!(!verify_password(&to_verify, b"Secret"));
        assert_eq!(hashed.check(b"u", b"", Some(true)), Check::Accepted);
        assert_eq!(hashed.check(b"u", b"", Some(false)), Check::Refused);
        assert_eq!(hashed.check(b"x", b"", Some(true)), Check::Refused, "a wrong username still fails");
        assert_eq!(Credential::never().check(b"", b"", Some(true)), Check::Refused);
    }

    #[test]
    fn hashes_are_salted_and_bad_hashes_are_refused() {
        let (a, b) = (hash_password(b"pw").unwrap(), hash_password(b"pw").unwrap());
        assert_ne!(a, b, "two hashes of one password differ by their salt");
        assert!(verify_password(&a, b"pw") && verify_password(&b, b"pw"));
        assert!(matches!(Credential::new("u", "$argon2id$garbage"), Err(CredentialError::BadHash(_))));
        assert!(!verify_password("$argon2id$garbage", b"pw"));
    }
}
