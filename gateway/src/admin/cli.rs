//! `sable admin …`: the admin port's actions from a shell. The token comes from the
//! environment (`SABLE_ADMIN_TOKEN`) or a file (`--token-file`), never from the command line
//! (it would show in `ps` and the shell history).

use std::path::PathBuf;
use std::time::Duration;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "SABLE_ADMIN_TOKEN";

/// `sable admin` arguments.
#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// The admin port's address; default: `[admin] listen` of the configuration.
    #[arg(long)]
    pub addr: Option<String>,
    /// Configuration the server runs with (for its admin address).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A file holding the bearer token (else `SABLE_ADMIN_TOKEN`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: AdminAction,
}

/// An admin action.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminAction {
    /// Planned switchover: drain, hand over to the standby, exit (needs an admin token).
    StepDown,
    /// Promote this standby now, as SIGUSR1 does (a standby's admin port).
    Promote,
    /// Take a snapshot now (needs an admin token).
    Snapshot,
    /// Print `/health/ready` (role, epoch, why not ready).
    Status,
    /// Halt an instrument: new orders and replaces are rejected, cancels accepted.
    Halt {
        /// Instrument id.
        instrument: u32,
    },
    /// Resume (open) a halted or closed instrument.
    Resume {
        /// Instrument id.
        instrument: u32,
    },
    /// Close an instrument for the day.
    Close {
        /// Instrument id.
        instrument: u32,
    },
    /// Cancel every live order of an account, an instrument, both, or (`--all`) everything.
    MassCancel {
        /// Only this account's orders.
        #[arg(long)]
        account: Option<u32>,
        /// Only this instrument's orders.
        #[arg(long)]
        instrument: Option<u32>,
        /// Every order in the engine.
        #[arg(long)]
        all: bool,
    },
    /// Engage a kill switch: cancel every order of the account (or the session's accounts) and
    /// refuse new orders until released.
    Kill {
        /// `account` or `session`.
        kind: SwitchKind,
        /// Account id, or session name (SBE username, FIX SenderCompID).
        name: String,
    },
    /// Release a kill switch.
    Release {
        /// `account` or `session`.
        kind: SwitchKind,
        /// Account id, or session name.
        name: String,
    },
    /// Reload credentials, certificates, accounts and instruments from the configuration file.
    Reload,
    /// List the audit log, filtered; `--file` reads and verifies a log on disk instead.
    Audit(AuditArgs),
}

/// What a kill switch covers.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum SwitchKind {
    /// One account.
    Account,
    /// One configured session.
    Session,
}

/// `sable admin audit` filters.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuditArgs {
    /// Only this operator's actions.
    #[arg(long)]
    pub by: Option<String>,
    /// Only this action (halt, resume, close, mass_cancel, kill_account, release_account,
    /// kill_session, release_session, reload).
    #[arg(long)]
    pub action: Option<String>,
    /// Only actions on this target (`instrument 1`, `account 7`).
    #[arg(long)]
    pub target: Option<String>,
    /// Only from this sequence number on.
    #[arg(long)]
    pub since_seq: Option<u64>,
    /// At most this many records.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Read this audit log file (verifying its chain) instead of asking the server.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

impl AuditArgs {
    fn filter(&self) -> crate::audit::Filter {
        crate::audit::Filter {
            by: self.by.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            since_seq: self.since_seq,
            since_ns: None,
            limit: self.limit,
        }
    }

    fn query(&self) -> String {
        let mut q = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push(format!("{k}={}", encode(&v)));
            }
        };
        put("by", self.by.clone());
        put("action", self.action.clone());
        put("target", self.target.clone());
        put("since_seq", self.since_seq.map(|v| v.to_string()));
        put("limit", self.limit.map(|v| v.to_string()));
        if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) }
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request an action makes: method and path.
fn request(action: &AdminAction) -> (&'static str, String) {
    let post = |p: String| ("POST", p);
    match action {
        AdminAction::StepDown => post("/admin/step-down".into()),
        AdminAction::Promote => post("/admin/promote".into()),
        AdminAction::Snapshot => post("/admin/snapshot".into()),
        AdminAction::Status => ("GET", "/health/ready".into()),
        AdminAction::Halt { instrument } => post(format!("/admin/instruments/{instrument}/halt")),
        AdminAction::Resume { instrument } => post(format!("/admin/instruments/{instrument}/resume")),
        AdminAction::Close { instrument } => post(format!("/admin/instruments/{instrument}/close")),
        AdminAction::MassCancel { account, instrument, all } => {
            let mut q = vec![];
            q.extend(account.map(|a| format!("account={a}")));
            q.extend(instrument.map(|i| format!("instrument={i}")));
            if *all {
                q.push("all=true".into());
            }
            post(format!("/admin/mass-cancel?{}", q.join("&")))
        }
        AdminAction::Kill { kind, name } => post(format!("/admin/kill/{}/{}", kind_path(*kind), encode(name))),
        AdminAction::Release { kind, name } => post(format!("/admin/release/{}/{}", kind_path(*kind), encode(name))),
        AdminAction::Reload => post("/admin/reload".into()),
        AdminAction::Audit(a) => ("GET", format!("/admin/audit{}", a.query())),
    }
}

fn kind_path(k: SwitchKind) -> &'static str {
    match k {
        SwitchKind::Account => "account",
        SwitchKind::Session => "session",
    }
}

/// `sable admin audit --file`: the log's records after its chain checks out, as JSON lines.
fn audit_file(path: &std::path::Path, a: &AuditArgs) -> Result<(), String> {
    let records = crate::audit::read_verified(path).map_err(|e| e.to_string())?;
    let filter = a.filter();
    for r in records.iter().filter(|r| filter.matches(r)).take(filter.limit()) {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
    }
    eprintln!("{}: {} records, chain verified", path.display(), records.len());
    Ok(())
}

/// Runs `args`; the server's answer goes to standard output.
pub fn run(args: &AdminArgs) -> Result<(), String> {
    if let AdminAction::Audit(a) = &args.action
        && let Some(path) = &a.file
    {
        return audit_file(path, a);
    }
    let addr = match &args.addr {
        Some(a) => a.clone(),
        None => {
            let cfg = match &args.config {
                Some(p) => crate::config::Config::load(p).map_err(|e| e.to_string())?,
                None => crate::config::Config::default_config(),
            };
            cfg.admin.listen.clone()
        }
    };
    let token = token(args)?;
    let (method, path) = request(&args.action);
    let agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build();
    let request =
        agent.request(method, &format!("http://{addr}{path}")).set("Authorization", &format!("Bearer {token}"));
    let (status, body) = match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => return Err(format!("admin port at {addr}: {e}")),
    };
    print!("{body}");
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("{method} {path}: HTTP {status}")) }
}

fn token(args: &AdminArgs) -> Result<String, String> {
    let raw = match &args.token_file {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => std::env::var(TOKEN_ENV).map_err(|_| format!("no token: set {TOKEN_ENV} or pass --token-file"))?,
    };
    let token = raw.trim().to_owned();
    if token.is_empty() {
        return Err("the admin token is empty".into());
    }
    Ok(token)
}
