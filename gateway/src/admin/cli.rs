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
#[derive(clap::Subcommand, Debug, Clone, Copy)]
pub enum AdminAction {
    /// Planned switchover: drain, hand over to the standby, exit (needs an admin token).
    StepDown,
    /// Take a snapshot now (needs an admin token).
    Snapshot,
    /// Print `/health/ready` (role, epoch, why not ready).
    Status,
}

/// Runs `args`; the server's answer goes to standard output.
pub fn run(args: &AdminArgs) -> Result<(), String> {
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
    let (method, path) = match args.action {
        AdminAction::StepDown => ("POST", "/admin/step-down"),
        AdminAction::Snapshot => ("POST", "/admin/snapshot"),
        AdminAction::Status => ("GET", "/health/ready"),
    };
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
