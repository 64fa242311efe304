//! `sable`: the appliance (`sable run`), an example client (`sable client`) and the operator
//! tools (`sable journal …`, `sable snapshot …`, `sable tune check`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use gateway::client::{Client, describe};
use gateway::config::{Config, Validated};
use gateway::election::{Election, Held, WATCH_PERIOD, Won};
use gateway::pipeline::Appliance;
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{
    ExecType, NewOrderSingle, OrdType, OrderCancelRequest, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, Side,
    TimeInForce, char_field,
};
use gateway::service::Service;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use snapshot::cli::{JournalCmd, SnapshotCmd, run_journal, run_snapshot};
use tuning::cli::{CheckArgs, TuneCmd};
use zerocopy::little_endian::{I64, U32, U64};

#[derive(Parser)]
#[command(name = "sable", version, about = "sable: an LMAX-style order-matching appliance")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the appliance (SBE order entry over TCP). SIGTERM/SIGINT: drain, final snapshot, exit 0.
    Run {
        /// Configuration file; the built-in demo configuration when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run as a hot standby of `[replication] primary`: follow its journal and session stores
    /// into this data dir and engine, verify its state hashes. SIGUSR1: promote (stop
    /// following, start as primary on this data dir; the old primary must be down: nothing
    /// fences it yet). SIGTERM/SIGINT: commit and exit 0.
    Standby {
        /// Configuration file; the built-in demo configuration when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Example client: log in, send one request, print the reports.
    Client(ClientArgs),
    /// Journal tools (run with the appliance stopped, except read-only ones).
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Snapshot tools.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Host tuning (`sable tune check`: is this host tuned for the matcher core?).
    #[command(subcommand)]
    Tune(TuneCmd),
    /// Print a salted Argon2 hash (PHC string) of a password, for a session's `password` in
    /// the configuration. The password is read from standard input (one line), or prompted for
    /// twice without echo on a terminal; never from the command line.
    Passwd,
    /// Join the market-data feed (ITCH 5.0 over MoldUDP64), recover gaps by re-request, print
    /// trades and the book.
    Feed(gateway::feed::cli::FeedArgs),
    /// Act on a running appliance through its admin port (token from SABLE_ADMIN_TOKEN or
    /// --token-file): halt/resume/close, mass-cancel, kill/release, reload, audit, step-down, promote,
    /// snapshot, status.
    Admin(gateway::admin::cli::AdminArgs),
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Configuration the server runs with (for symbols, tick sizes and defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Server address; default: the configuration's listen address.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// FIXP session id.
    #[arg(long, default_value_t = 1)]
    session: u64,
    /// Username.
    #[arg(long, default_value = "demo")]
    user: String,
    /// Password.
    #[arg(long, default_value = "demo")]
    password: String,
    /// How long to wait for further reports after the last one, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    wait_ms: u64,
    #[command(subcommand)]
    request: ClientRequest,
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Subcommand)]
enum ClientRequest {
    /// A limit GTC order.
    Order {
        /// Buy or sell.
        #[arg(long)]
        side: SideArg,
        /// Limit price (decimal).
        #[arg(long)]
        price: Decimal,
        /// Quantity (decimal, instrument units).
        #[arg(long)]
        qty: Decimal,
        /// Instrument symbol.
        #[arg(long, default_value = "DEMO")]
        symbol: String,
        /// Account; default: the session's first configured account.
        #[arg(long)]
        account: Option<u32>,
        /// Client order id; default: derived from the clock.
        #[arg(long)]
        cl_ord_id: Option<String>,
    },
    /// Cancel an order by its client order id.
    Cancel {
        /// Client order id of the order to cancel.
        #[arg(long)]
        orig_cl_ord_id: String,
        /// Instrument symbol.
        #[arg(long, default_value = "DEMO")]
        symbol: String,
        /// Account; default: the session's first configured account.
        #[arg(long)]
        account: Option<u32>,
        /// The cancel request's own client id; default: derived from the clock.
        #[arg(long)]
        cl_ord_id: Option<String>,
    },
}

/// What `sable client` sends.
enum Request {
    Order(NewOrderSingle),
    Cancel(OrderCancelRequest),
}

fn load_config(path: Option<&PathBuf>) -> Result<Validated, String> {
    let cfg = match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default_config(),
    };
    cfg.validate().map_err(|e| format!("configuration: {e}"))
}

fn run(config: Option<PathBuf>) -> Result<(), String> {
    let cfg = load_config(config.as_ref())?;
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term)).map_err(|e| format!("installing signal handler: {e}"))?;
    }
    let election = Election::from_config(&cfg.raw.election);
    let won = election.as_ref().map(|e| e.lead(&cfg.raw.server.data_dir)).transpose()?;
    // The lease is kept from the win on: a start slower than the TTL must not lose it.
    let held = keep(election.as_ref(), won)?;
    let appliance = gateway::pipeline::start(cfg).map_err(|e| e.to_string())?;
    eprintln!("sable: listening on {}", appliance.local_addr());
    if let Some(addr) = appliance.fix_addr() {
        eprintln!("sable: FIX listening on {addr}");
    }
    if let Some(addr) = appliance.admin_addr() {
        eprintln!("sable: admin port on http://{addr} (dashboard: http://{addr}/dashboard#token=...)");
    }
    if let Some(h) = &held {
        h.attach(&appliance);
    }
    serve(appliance, &term, held, config.as_deref())
}

/// Starts keeping a won election's lease alive.
fn keep(election: Option<&Election>, won: Option<Won>) -> Result<Option<Held>, String> {
    match (election, won) {
        (Some(e), Some(won)) => e.keep(won).map(Some).map_err(|e| format!("starting the lease thread: {e}")),
        _ => Ok(None),
    }
}

/// How often `sable standby` looks for a promotion (SIGUSR1 or a handover).
const STANDBY_POLL: Duration = Duration::from_millis(5);
/// With an election, how often it asks etcd once there is news (asked, handed over, or the
/// primary gone): sooner than every `WATCH_PERIOD`, without calling etcd every poll.
const NEWS_PERIOD: Duration = Duration::from_millis(10);

/// Runs a started appliance until SIGTERM/SIGINT (or a stage failure), then drains it; on
/// SIGUSR2 it steps down instead (a planned switchover to its standby). SIGHUP reloads the
/// session credentials and certificates from `config` (the file it started from).
fn serve(appliance: Appliance, term: &AtomicBool, held: Option<Held>, config: Option<&Path>) -> Result<(), String> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(|e| format!("installing signal handler: {e}"))?;
    let step_down = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, Arc::clone(&step_down))
        .map_err(|e| format!("installing signal handler: {e}"))?;
    if let Some(path) = config {
        appliance.desk().set_config_path(path);
    }
    let mut status = format!("running: SBE on {}", appliance.local_addr());
    if let Some(addr) = appliance.fix_addr() {
        status.push_str(&format!(", FIX on {addr}"));
    }
    // Recovery is done and the listeners are bound: only now is the service ready.
    let service = Service::ready(appliance.progress(), &status);
    loop {
        while !term.load(Ordering::Acquire) && !appliance.is_finished() && !step_down.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
            if hup.swap(false, Ordering::AcqRel) {
                reload(&appliance, config);
            }
            if appliance.take_step_down_request() {
                step_down.store(true, Ordering::Release);
            }
        }
        match appliance.can_step_down() {
            Err(e) if step_down.load(Ordering::Acquire) && !term.load(Ordering::Acquire) => {
                eprintln!("sable: {e}; still running");
                step_down.store(false, Ordering::Release);
            }
            _ => break,
        }
    }
    service.stopping();
    let stopped = if step_down.load(Ordering::Acquire) && !term.load(Ordering::Acquire) {
        appliance.step_down().inspect(|_| eprintln!("sable: stepped down; the standby takes over"))
    } else {
        appliance.shutdown()
    };
    // Only a clean stop gives the leadership up at once; a failed primary lets it expire.
    if let (Ok(_), Some(held)) = (&stopped, held) {
        held.release();
    }
    let report = stopped.map_err(|e| e.to_string())?;
    eprintln!(
        "sable: stopped at seq {} state_hash {:016x} (final snapshot {})",
        report.last_seq, report.state_hash, report.snapshot_seq
    );
    Ok(())
}

/// SIGHUP: credentials, certificates and accounts from the configuration file, as `POST
/// /admin/reload` does (audited as operator `sighup`).
fn reload(appliance: &gateway::pipeline::Appliance, config: Option<&Path>) {
    if config.is_none() {
        return tracing::warn!("SIGHUP ignored: running the built-in demo configuration, no file to reload");
    }
    match appliance.desk().reload("sighup") {
        Ok(r) => {
            eprintln!(
                "sable: reloaded credentials: {} changed; accounts: {} changed",
                r.credentials_changed, r.accounts_changed
            );
            for l in r.later {
                eprintln!("sable: reload: {l}");
            }
        }
        Err(e) => tracing::error!(error = %e, "reload refused; the running credentials are kept"),
    }
}

fn standby(config: Option<PathBuf>) -> Result<(), String> {
    let cfg = load_config(config.as_ref())?;
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term)).map_err(|e| format!("installing signal handler: {e}"))?;
    }
    let promote = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&promote))
        .map_err(|e| format!("installing signal handler: {e}"))?;
    let primary = cfg.raw.replication.primary.clone();
    let standby = gateway::standby::start(cfg.clone()).map_err(|e| e.to_string())?;
    eprintln!("sable: standby of {primary}, from seq {}", standby.status().next_seq());
    let admin = gateway::admin::standby::StandbyAdmin::start(&cfg, standby.status_handle(), Arc::clone(&promote))?;
    if let Some(a) = &admin {
        eprintln!("sable: admin port on http://{} (role standby)", a.local_addr());
    }
    let status = standby.status_handle();
    let mut beats = status.beats();
    let service = Service::ready_with(&format!("standby of {primary}"), move || {
        let now = status.beats();
        let alive = now > beats;
        beats = now;
        if alive { Ok(()) } else { Err("the standby thread made no progress".into()) }
    });
    let election = Election::from_config(&cfg.raw.election);
    let mut asked_etcd: Option<Instant> = None;
    let won = loop {
        if term.load(Ordering::Acquire) || standby.is_finished() {
            break None;
        }
        let status = standby.status();
        let news =
            promote.load(Ordering::Acquire) || status.handed_over() || status.primary_gone_holding_nothing_more();
        let period = if news { NEWS_PERIOD } else { WATCH_PERIOD };
        if election.is_none() || asked_etcd.is_none_or(|t| t.elapsed() >= period) {
            asked_etcd = Some(Instant::now());
            if let Some(won) =
                gateway::election::ready_to_lead(&standby, election.as_ref(), &promote, &cfg.raw.server.data_dir)
            {
                break Some(won);
            }
        }
        std::thread::sleep(STANDBY_POLL);
    };
    service.stopping();
    if let Some(a) = admin {
        a.stop();
    }
    if let Some(won) = won {
        let held = keep(election.as_ref(), won)?;
        let appliance = standby.promote_at(cfg, won.map(|w| w.epoch)).map_err(|e| e.to_string())?;
        eprintln!("sable: promoted; listening on {}", appliance.local_addr());
        if let Some(h) = &held {
            h.attach(&appliance);
        }
        return serve(appliance, &term, held, config.as_deref());
    }
    let diverged = standby.status().diverged();
    let report = standby.shutdown().map_err(|e| e.to_string())?;
    eprintln!("sable: standby stopped at seq {} state_hash {:016x}", report.last_seq, report.state_hash);
    match diverged {
        Some(why) => Err(format!("this standby diverged from its primary: {why}")),
        None => Ok(()),
    }
}

/// `sable tune check`: the matcher core from `--core`, else the configuration file (parsed, not
/// validated: the file may be meant for another host). A failing knob is an error exit.
/// `sable passwd`: reads a password (prompt on a terminal, else one line of stdin) and prints
/// its PHC string.
fn passwd() -> Result<(), String> {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| format!("reading the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| format!("reading the password: {e}"))?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading the password: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err("an empty password is no password".into());
    }
    let phc = gateway::credentials::hash_password(password.as_bytes()).map_err(|e| e.to_string())?;
    println!("{phc}");
    Ok(())
}

fn tune_check(args: &CheckArgs) -> Result<(), String> {
    let core = match (args.core, &args.config) {
        (Some(core), _) => Some(core),
        (None, Some(path)) => Config::load(path).map_err(|e| e.to_string())?.pipeline.matcher_core,
        (None, None) => Config::default_config().pipeline.matcher_core,
    };
    if tuning::cli::run_check(args, core, &mut std::io::stdout())? {
        Ok(())
    } else {
        Err("host tuning check: at least one knob FAILs (see the report)".into())
    }
}

fn clock_id(prefix: &str) -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{prefix}-{ms}")
}

fn build_request(cfg: &Validated, session: u64, request: ClientRequest) -> Result<(Request, String), String> {
    let default_account = |account: Option<u32>| {
        account
            .or_else(|| cfg.session(session).and_then(|s| s.accounts.first().copied()))
            .ok_or("no --account and the session is not in the configuration")
    };
    match request {
        ClientRequest::Order { side, price, qty, symbol, account, cl_ord_id } => {
            let spec = cfg.instrument_by_symbol(&symbol).ok_or_else(|| format!("unknown symbol {symbol}"))?;
            let account = default_account(account)?;
            let price9 = (price * Decimal::from(1_000_000_000u64))
                .to_i64()
                .filter(|v| *v != PRICE9_NULL)
                .ok_or("price does not fit Price9")?;
            let qty4 = (qty * Decimal::from(10_000u64))
                .to_u64()
                .filter(|v| *v != QTY4_NULL)
                .ok_or("quantity does not fit Qty4")?;
            let cl = cl_ord_id.unwrap_or_else(|| clock_id("cli"));
            let order = NewOrderSingle {
                cl_ord_id: char_field(cl.as_bytes()).map_err(|e| format!("cl_ord_id: {e}"))?,
                account: U32::new(account),
                security_id: U32::new(spec.id.0),
                side: match side {
                    SideArg::Buy => Side::Buy,
                    SideArg::Sell => Side::Sell,
                }
                .to_u8(),
                ord_type: OrdType::Limit.to_u8(),
                time_in_force: TimeInForce::GoodTillCancel.to_u8(),
                exec_inst: 0,
                self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
                price: I64::new(price9),
                stop_px: I64::new(PRICE9_NULL),
                order_qty: U64::new(qty4),
                display_qty: U64::new(QTY4_NULL),
                expire_time: U64::new(0),
            };
            Ok((
                Request::Order(order),
                format!("NewOrderSingle cl_ord_id={cl} account={account} {symbol} {price} x {qty}"),
            ))
        }
        ClientRequest::Cancel { orig_cl_ord_id, symbol, account, cl_ord_id } => {
            let spec = cfg.instrument_by_symbol(&symbol).ok_or_else(|| format!("unknown symbol {symbol}"))?;
            let account = default_account(account)?;
            let cl = cl_ord_id.unwrap_or_else(|| clock_id("cxl"));
            let cancel = OrderCancelRequest {
                cl_ord_id: char_field(cl.as_bytes()).map_err(|e| format!("cl_ord_id: {e}"))?,
                orig_cl_ord_id: char_field(orig_cl_ord_id.as_bytes()).map_err(|e| format!("orig_cl_ord_id: {e}"))?,
                order_id: U64::new(0),
                account: U32::new(account),
                security_id: U32::new(spec.id.0),
            };
            Ok((Request::Cancel(cancel), format!("OrderCancelRequest cl_ord_id={cl} orig_cl_ord_id={orig_cl_ord_id}")))
        }
    }
}

fn client(args: ClientArgs) -> Result<(), String> {
    let cfg = load_config(args.config.as_ref())?;
    let addr = args.addr.unwrap_or(cfg.listen);
    let (request, summary) = build_request(&cfg, args.session, args.request)?;
    let mut c = Client::login(addr, args.session, &args.user, &args.password).map_err(|e| e.to_string())?;
    println!("connected to {addr} as session {} ({})", args.session, args.user);
    let cl_ord_id = match &request {
        Request::Order(o) => {
            c.send(o).map_err(|e| e.to_string())?;
            o.cl_ord_id
        }
        Request::Cancel(x) => {
            c.send(x).map_err(|e| e.to_string())?;
            x.cl_ord_id
        }
    };
    println!("sent {summary}");
    loop {
        let frame = match c.recv(Duration::from_millis(args.wait_ms)) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        let msg = decode_outbound(&frame[6..]).map_err(|e| e.to_string())?;
        if matches!(msg, Outbound::Sequence(_)) {
            continue;
        }
        println!("{}", describe(&msg));
        let finished = match msg {
            Outbound::ExecutionReport(r) => {
                r.cl_ord_id == cl_ord_id && (r.leaves_qty.get() == 0 || r.exec_type == ExecType::Rejected.to_u8())
            }
            Outbound::OrderCancelReject(r) => r.cl_ord_id == cl_ord_id,
            Outbound::BusinessMessageReject(_) | Outbound::Terminate(_) => true,
            _ => false,
        };
        if finished {
            break;
        }
    }
    c.terminate().map_err(|e| e.to_string())?;
    Ok(())
}

/// Log lines to stderr, filtered by `RUST_LOG` (default `info`), as `[log] format` says (a file
/// that does not load logs as text; loading it again reports the error).
fn init_logging(config: Option<&PathBuf>) {
    let format = match config {
        Some(p) => Config::load(p).map(|c| c.log.format).unwrap_or_default(),
        None => Config::default_config().log.format,
    };
    gateway::logging::init(format);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run { config } => {
            init_logging(config.as_ref());
            run(config)
        }
        Cmd::Standby { config } => {
            init_logging(config.as_ref());
            standby(config)
        }
        Cmd::Client(args) => client(args),
        Cmd::Journal(cmd) => run_journal(cmd, &mut std::io::stdout()),
        Cmd::Snapshot(cmd) => run_snapshot(cmd, &mut std::io::stdout()),
        Cmd::Tune(TuneCmd::Check(args)) => tune_check(&args),
        Cmd::Passwd => passwd(),
        Cmd::Feed(args) => gateway::feed::cli::run(&args, &mut std::io::stdout()),
        Cmd::Admin(args) => gateway::admin::cli::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sable: {e}");
            ExitCode::FAILURE
        }
    }
}
