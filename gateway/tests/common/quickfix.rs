//! Drives `sable-fix-client`, a QuickFIX C++ FIX 4.4 initiator (gateway/tests/quickfix/), so that
//! integration tests talk to sable through a real, independent FIX engine.
//!
//! The client reads one command per line and prints one event per line (protocol in
//! gateway/tests/quickfix/README.md). [`QuickFixClient`] writes the commands, parses the events into
//! [`Event`]s, and waits for them with a timeout: no sleeps. Every wait that fails panics with
//! everything the process printed so far, stdout and stderr.
//!
//! The binaries are built by `gateway/scripts/install-test-deps.sh` into
//! `<cargo target dir>/quickfix/`; this module finds them through `CARGO_TARGET_TMPDIR` (whose
//! parent is the target dir, `CARGO_TARGET_DIR` included) or by walking up from the test binary.

// Each test file includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a wait lasts unless the caller says otherwise: generous, because a failing test
/// should fail on the assertion rather than on a loaded CI machine.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The initiator program.
pub const CLIENT_BIN: &str = "sable-fix-client";
/// The reference acceptor used by the harness's own tests.
pub const ECHO_ACCEPTOR_BIN: &str = "sable-fix-echo-acceptor";

/// A FIX message as printed by the tools: every field in wire order, header and trailer
/// included (8, 9, 35, 34, 49, 52, 56, ... 10).
#[derive(Clone, PartialEq, Eq)]
pub struct FixMsg {
    /// `(tag, value)` in the order they were on the wire; a repeated tag appears repeatedly.
    pub fields: Vec<(u32, String)>,
}

impl FixMsg {
    /// Parses `8=FIX.4.4|9=..|35=D|...` (`|` or SOH separated). Panics on a malformed field:
    /// the tools never print one, so it would be a harness bug.
    pub fn parse(text: &str) -> FixMsg {
        let fields = text
            .split(['|', '\x01'])
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (tag, value) = f.split_once('=').unwrap_or_else(|| panic!("field without '=': {f:?} in {text:?}"));
                let tag = tag.parse::<u32>().unwrap_or_else(|_| panic!("bad tag {tag:?} in {text:?}"));
                (tag, value.to_string())
            })
            .collect();
        FixMsg { fields }
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&str> {
        self.fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| v.as_str())
    }

    /// Every value of `tag`, in order (repeating groups).
    pub fn get_all(&self, tag: u32) -> Vec<&str> {
        self.fields.iter().filter(|(t, _)| *t == tag).map(|(_, v)| v.as_str()).collect()
    }

    /// The first value of `tag`, panicking with the whole message when it is absent.
    #[track_caller]
    pub fn req(&self, tag: u32) -> &str {
        self.get(tag).unwrap_or_else(|| panic!("tag {tag} missing from {self}"))
    }

    /// MsgType (35).
    pub fn msg_type(&self) -> &str {
        self.get(35).unwrap_or("")
    }

    /// MsgSeqNum (34).
    #[track_caller]
    pub fn seq_num(&self) -> u64 {
        self.req(34).parse().unwrap_or_else(|_| panic!("MsgSeqNum is not a number in {self}"))
    }

    /// PossDupFlag (43) is `Y`.
    pub fn poss_dup(&self) -> bool {
        self.get(43) == Some("Y")
    }
}

impl fmt::Display for FixMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (tag, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{tag}={value}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FixMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FixMsg({self})")
    }
}

/// One line the tool printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session is logged on (QuickFIX `onLogon`).
    Logon,
    /// The session left the logged-on or logging-on state (QuickFIX `onLogout`): after a Logout
    /// exchange, a dropped connection, or a refused Logon attempt.
    Logout,
    /// An application message the session accepted (`fromApp`), after QuickFIX's validation.
    RecvApp(FixMsg),
    /// An admin message the session accepted (`fromAdmin`): Logon, Heartbeat, ResendRequest, ...
    RecvAdmin(FixMsg),
    /// An application message written to the socket (resends included, with 43=Y).
    SentApp(FixMsg),
    /// An admin message written to the socket.
    SentAdmin(FixMsg),
    /// QuickFIX rejected or could not parse an incoming message (it answers with a Reject by
    /// itself); the text is QuickFIX's, e.g. `Message 7 Rejected: Value is incorrect ...:54`.
    Reject(String),
    /// A command finished: `<command> [detail]`.
    Ok(String),
    /// A command failed, or start-up failed: `<command>: <why>`.
    Error(String),
    /// A QuickFIX session log event (`Connecting to ...`, `Sent ResendRequest FROM: 3 TO: 0`).
    Session(String),
    /// Any other line (`created`, `started`, `listening <port>`).
    Other {
        /// The first word.
        kind: String,
        /// The rest of the line.
        text: String,
    },
    /// Standard output closed: the process exited.
    Exited,
}

impl Event {
    fn parse(line: &str) -> Event {
        let (kind, text) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "logon" => Event::Logon,
            "logout" => Event::Logout,
            "recv_app" => Event::RecvApp(FixMsg::parse(text)),
            "recv_admin" => Event::RecvAdmin(FixMsg::parse(text)),
            "sent_app" => Event::SentApp(FixMsg::parse(text)),
            "sent_admin" => Event::SentAdmin(FixMsg::parse(text)),
            "reject" => Event::Reject(text.to_string()),
            "ok" => Event::Ok(text.to_string()),
            "error" => Event::Error(text.to_string()),
            "event" => Event::Session(text.to_string()),
            _ => Event::Other { kind: kind.to_string(), text: text.to_string() },
        }
    }

    /// The message carried by a `Recv*`/`Sent*` event.
    pub fn msg(&self) -> Option<&FixMsg> {
        match self {
            Event::RecvApp(m) | Event::RecvAdmin(m) | Event::SentApp(m) | Event::SentAdmin(m) => Some(m),
            _ => None,
        }
    }
}

/// The directory the install script builds the tools into, given a test binary's target dir.
fn tools_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SABLE_QUICKFIX_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    // <target dir>/tmp, set by cargo for integration tests, CARGO_TARGET_DIR included.
    if let Some(target) = Path::new(env!("CARGO_TARGET_TMPDIR")).parent() {
        dirs.push(target.join("quickfix"));
    }
    // <target dir>[/<triple>]/<profile>/deps/<test binary>
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|a| a.join("quickfix")));
    }
    dirs
}

/// The path of one of the QuickFIX tools; panics with the fix when it has not been built.
#[track_caller]
pub fn tool_path(name: &str) -> PathBuf {
    let dirs = tools_dirs();
    if let Some(path) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return path;
    }
    panic!(
        "{name} not found (looked in {dirs:?}); run gateway/scripts/install-test-deps.sh from the \
         workspace root, with the same CARGO_TARGET_DIR as cargo test, to install QuickFIX and build it"
    );
}

/// A tool process: commands on stdin, events from stdout through a reader thread.
struct LineProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<(String, Event)>,
    /// Received and not yet consumed by an `expect`.
    pending: VecDeque<(String, Event)>,
    /// Every line received, for failure reports.
    history: Vec<String>,
    stderr: Arc<Mutex<String>>,
    exited: bool,
}

impl LineProcess {
    #[track_caller]
    fn spawn(name: &str, args: &[String]) -> LineProcess {
        let path = tool_path(name);
        let mut child = Command::new(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", path.display()));
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr was piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = Event::parse(&line);
                if tx.send((line, event)).is_err() {
                    return;
                }
            }
            let _ = tx.send(("<stdout closed>".to_string(), Event::Exited));
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("stderr lock").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        LineProcess {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            events: rx,
            pending: VecDeque::new(),
            history: Vec::new(),
            stderr,
            exited: false,
        }
    }

    #[track_caller]
    fn write_line(&mut self, line: &str) {
        assert!(!line.contains('\n'), "a command is one line: {line:?}");
        let result = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => self.fail(format!("stdin already closed, cannot write {line:?}")),
        };
        if let Err(e) = result {
            self.fail(format!("writing {line:?}: {e}"));
        }
    }

    /// Moves one event from the channel into `pending`, waiting until `deadline`; false on timeout.
    fn pull(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok((line, event)) => {
                if event == Event::Exited {
                    self.exited = true;
                }
                self.history.push(line.clone());
                self.pending.push_back((line, event));
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            // The reader thread ends right after queueing Exited.
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Consumes events up to and including the first one that matches.
    #[track_caller]
    fn expect(&mut self, what: &str, pred: &mut dyn FnMut(&Event) -> bool, timeout: Duration) -> Event {
        let deadline = Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            while scanned < self.pending.len() {
                if pred(&self.pending[scanned].1) {
                    self.pending.drain(..scanned);
                    return self.pending.pop_front().expect("matched event is there").1;
                }
                scanned += 1;
            }
            if self.exited {
                self.fail(format!("exited while waiting for {what}"));
            }
            if !self.pull(deadline) {
                self.fail(format!("no {what} within {timeout:?}"));
            }
        }
    }

    /// Sends a command and waits for its `ok`/`error`, leaving other events pending. Returns the
    /// `ok` detail (after the command name) or the error text, and the lines seen meanwhile.
    #[track_caller]
    fn command(&mut self, line: &str, timeout: Duration) -> (Result<String, String>, Vec<Event>) {
        let name = line.split_whitespace().next().unwrap_or("").to_string();
        let first_new = self.pending.len();
        self.write_line(line);
        let deadline = Instant::now() + timeout;
        let mut scanned = first_new;
        loop {
            while scanned < self.pending.len() {
                let answer = match &self.pending[scanned].1 {
                    Event::Ok(text) if text.split(' ').next() == Some(name.as_str()) => {
                        Some(Ok(text[name.len()..].trim_start().to_string()))
                    }
                    Event::Error(text) if text.starts_with(&format!("{name}:")) => {
                        Some(Err(text[name.len() + 1..].trim_start().to_string()))
                    }
                    _ => None,
                };
                if let Some(answer) = answer {
                    let meanwhile = self.pending.range(first_new..scanned).map(|(_, e)| e.clone()).collect();
                    self.pending.remove(scanned);
                    return (answer, meanwhile);
                }
                scanned += 1;
            }
            if self.exited {
                self.fail(format!("exited before answering {line:?}"));
            }
            if !self.pull(deadline) {
                self.fail(format!("no answer to {line:?} within {timeout:?}"));
            }
        }
    }

    fn drain(&mut self) -> Vec<Event> {
        while let Ok((line, event)) = self.events.try_recv() {
            if event == Event::Exited {
                self.exited = true;
            }
            self.history.push(line.clone());
            self.pending.push_back((line, event));
        }
        self.pending.drain(..).map(|(_, e)| e).collect()
    }

    /// Closes stdin and waits for the process to end (the tools leave on EOF).
    #[track_caller]
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        while !self.exited {
            if !self.pull(deadline) {
                self.fail(format!("did not exit within {timeout:?}"));
            }
        }
        // stdout is closed, so the process has exited or is about to: wait() does not hang.
        self.child.wait().unwrap_or_else(|e| panic!("{}: wait: {e}", self.name))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }

    /// Panics with `what` and everything the process printed.
    #[track_caller]
    fn fail(&mut self, what: String) -> ! {
        let report = self.report();
        panic!("{}: {what}\n{report}", self.name)
    }

    fn report(&mut self) -> String {
        // Pick up whatever already arrived, without waiting.
        while let Ok((line, event)) = self.events.try_recv() {
            if event == Event::Exited {
                self.exited = true;
            }
            self.history.push(line.clone());
            self.pending.push_back((line, event));
        }
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!(
            "--- {} stdout ({} lines) ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.history.len(),
            self.history.join("\n"),
            self.name,
            stderr
        )
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How to start a [`QuickFixClient`]; [`QuickFixOpts::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct QuickFixOpts {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Our SenderCompID (49).
    pub sender: String,
    /// The counterparty's CompID (56).
    pub target: String,
    /// HeartBtInt (108) in the Logon.
    pub heartbeat_s: u32,
    /// Username (553) in the Logon.
    pub username: Option<String>,
    /// Password (554) in the Logon.
    pub password: Option<String>,
    /// More Logon fields, e.g. `(8013, "Y")` for cancel-on-disconnect.
    pub logon_fields: Vec<(u32, String)>,
    /// ResetOnLogon: send 141=Y and start both sequences at 1.
    pub reset_on_logon: bool,
    /// FileStore directory (sequence numbers survive a restart); `None`: MemoryStore.
    pub store_dir: Option<PathBuf>,
    /// QuickFIX FileLog directory; `None`: no log files.
    pub log_dir: Option<PathBuf>,
    /// Validate incoming messages against this QuickFIX data dictionary; `None`: no dictionary.
    pub data_dictionary: Option<PathBuf>,
    /// Seconds between reconnect attempts after a disconnect.
    pub reconnect_interval_s: u32,
    /// Any other QuickFIX session setting, e.g. `("ValidateUserDefinedFields", "N")`.
    pub settings: Vec<(String, String)>,
}

impl QuickFixOpts {
    /// Connect to `127.0.0.1:port` as `sender` talking to `target`, HeartBtInt 30, MemoryStore,
    /// no log files, no data dictionary, reconnect after 1 s.
    pub fn new(port: u16, sender: &str, target: &str) -> QuickFixOpts {
        QuickFixOpts {
            host: "127.0.0.1".to_string(),
            port,
            sender: sender.to_string(),
            target: target.to_string(),
            heartbeat_s: 30,
            username: None,
            password: None,
            logon_fields: Vec::new(),
            reset_on_logon: false,
            store_dir: None,
            log_dir: None,
            data_dictionary: None,
            reconnect_interval_s: 1,
            settings: Vec::new(),
        }
    }

    /// Sets username (553) and password (554).
    pub fn credentials(mut self, username: &str, password: &str) -> QuickFixOpts {
        self.username = Some(username.to_string());
        self.password = Some(password.to_string());
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            a.push(name.to_string());
            a.push(value);
        };
        flag("--host", self.host.clone());
        flag("--port", self.port.to_string());
        flag("--sender", self.sender.clone());
        flag("--target", self.target.clone());
        flag("--heartbeat", self.heartbeat_s.to_string());
        flag("--reconnect-interval", self.reconnect_interval_s.to_string());
        flag("--reset-on-logon", if self.reset_on_logon { "Y" } else { "N" }.to_string());
        if let Some(u) = &self.username {
            flag("--username", u.clone());
        }
        if let Some(p) = &self.password {
            flag("--password", p.clone());
        }
        for (tag, value) in &self.logon_fields {
            flag("--logon-field", format!("{tag}={value}"));
        }
        if let Some(d) = &self.store_dir {
            flag("--store-dir", d.display().to_string());
        }
        if let Some(d) = &self.log_dir {
            flag("--log-dir", d.display().to_string());
        }
        if let Some(d) = &self.data_dictionary {
            flag("--data-dictionary", d.display().to_string());
        }
        for (key, value) in &self.settings {
            flag("--setting", format!("{key}={value}"));
        }
        a
    }
}

/// A running `sable-fix-client`. Killed (no Logout) when dropped; [`QuickFixClient::quit`] leaves
/// politely.
pub struct QuickFixClient {
    proc: LineProcess,
}

impl QuickFixClient {
    /// Starts the client; it connects and sends Logon at once. Panics if the binary is missing
    /// (the message says to run gateway/scripts/install-test-deps.sh).
    #[track_caller]
    pub fn spawn(opts: &QuickFixOpts) -> QuickFixClient {
        QuickFixClient { proc: LineProcess::spawn(CLIENT_BIN, &opts.args()) }
    }

    /// The client's process id.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Runs one command (`logout bye`, `set_next_sender_seq 10`, ...) and returns its `ok`
    /// detail (e.g. `next_sender=5 next_target=3` for `seqnums`); panics if it fails.
    #[track_caller]
    pub fn command(&mut self, line: &str) -> String {
        match self.proc.command(line, DEFAULT_TIMEOUT).0 {
            Ok(detail) => detail,
            Err(why) => panic!("command {line:?} failed: {why}\n{}", self.proc.report()),
        }
    }

    /// Runs one command, returning its error instead of panicking.
    #[track_caller]
    pub fn try_command(&mut self, line: &str) -> Result<String, String> {
        self.proc.command(line, DEFAULT_TIMEOUT).0
    }

    /// Sends a message given as `35=D|11=..|...` (QuickFIX fills 8, 9, 34, 49, 52, 56, 10;
    /// header tags given here override its values) and returns it as it went on the wire.
    #[track_caller]
    pub fn send(&mut self, fields: &str) -> FixMsg {
        let msg_type = fields.split(['|', '\x01']).find_map(|f| f.strip_prefix("35=")).map(str::to_string);
        let (answer, meanwhile) = self.proc.command(&format!("send {fields}"), DEFAULT_TIMEOUT);
        if let Err(why) = answer {
            panic!("send {fields:?} failed: {why}\n{}", self.proc.report());
        }
        // The client prints sent_* before ok, from the same thread; a heartbeat sent by QuickFIX's
        // own thread may land in between, hence the MsgType filter.
        meanwhile
            .iter()
            .rev()
            .filter_map(|e| match e {
                Event::SentApp(m) | Event::SentAdmin(m) if m.get(35).map(str::to_string) == msg_type => Some(m.clone()),
                _ => None,
            })
            .next()
            .unwrap_or_else(|| panic!("send {fields:?}: ok without a sent_* line\n{}", self.proc.report()))
    }

    /// Waits (client side) until the session is logged on.
    #[track_caller]
    pub fn wait_logon(&mut self) {
        self.command(&format!("wait_logon {}", DEFAULT_TIMEOUT.as_secs()));
    }

    /// `(next sender MsgSeqNum, next expected target MsgSeqNum)` from QuickFIX's store.
    #[track_caller]
    pub fn seqnums(&mut self) -> (u64, u64) {
        let detail = self.command("seqnums");
        let value = |key: &str| -> u64 {
            detail
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad seqnums answer {detail:?}"))
        };
        (value("next_sender="), value("next_target="))
    }

    /// Consumes events up to and including the first for which `pred` holds; panics with
    /// everything received if none does within `timeout`.
    #[track_caller]
    pub fn expect(&mut self, pred: impl FnMut(&Event) -> bool, timeout: Duration) -> Event {
        let mut pred = pred;
        self.proc.expect("matching event", &mut pred, timeout)
    }

    /// Waits for a received application message of type `msg_type` (35).
    #[track_caller]
    pub fn expect_app(&mut self, msg_type: &str, timeout: Duration) -> FixMsg {
        let what = format!("recv_app 35={msg_type}");
        let mut pred = |e: &Event| matches!(e, Event::RecvApp(m) if m.msg_type() == msg_type);
        match self.proc.expect(&what, &mut pred, timeout) {
            Event::RecvApp(m) => m,
            other => unreachable!("predicate matched {other:?}"),
        }
    }

    /// Waits for a received admin message of type `msg_type` (35).
    #[track_caller]
    pub fn expect_admin(&mut self, msg_type: &str, timeout: Duration) -> FixMsg {
        let what = format!("recv_admin 35={msg_type}");
        let mut pred = |e: &Event| matches!(e, Event::RecvAdmin(m) if m.msg_type() == msg_type);
        match self.proc.expect(&what, &mut pred, timeout) {
            Event::RecvAdmin(m) => m,
            other => unreachable!("predicate matched {other:?}"),
        }
    }

    /// Waits for a sent message (app or admin) of type `msg_type` (35).
    #[track_caller]
    pub fn expect_sent(&mut self, msg_type: &str, timeout: Duration) -> FixMsg {
        let what = format!("sent_* 35={msg_type}");
        let mut pred = |e: &Event| matches!(e, Event::SentApp(m) | Event::SentAdmin(m) if m.msg_type() == msg_type);
        self.proc.expect(&what, &mut pred, timeout).msg().cloned().expect("a sent event carries a message")
    }

    /// Takes every event received so far without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        self.proc.drain()
    }

    /// Everything the client printed so far, and its stderr: for assertion messages.
    pub fn report(&mut self) -> String {
        self.proc.report()
    }

    /// Logs out (waiting for the counterparty's Logout, at most 5 s), stops, checks the exit
    /// status is success, and returns the events not consumed yet (the Logout exchange among them).
    #[track_caller]
    pub fn quit(mut self) -> Vec<Event> {
        self.command("quit");
        let status = self.proc.wait_exit(DEFAULT_TIMEOUT);
        if !status.success() {
            self.proc.fail(format!("exited with {status} after quit"));
        }
        self.proc.drain()
    }

    /// Kills the process (SIGKILL): the connection drops without a Logout, like a crash.
    pub fn kill(mut self) {
        self.proc.kill();
    }
}

/// A running `sable-fix-echo-acceptor`: the reference counterparty for the harness's own tests.
/// Answers each NewOrderSingle with an ExecutionReport (150=0, 39=0) echoing 11, 55, 54, 38, 44,
/// 40 and 1.
pub struct EchoAcceptor {
    proc: LineProcess,
    /// The port it listens on (an ephemeral one).
    pub port: u16,
}

impl EchoAcceptor {
    /// Starts the acceptor as `sender` (its own CompID) for the client `target` on a free port,
    /// requiring `credentials` in the Logon when given.
    #[track_caller]
    pub fn spawn(sender: &str, target: &str, credentials: Option<(&str, &str)>) -> EchoAcceptor {
        let mut args = vec!["--port".to_string(), "0".to_string()];
        args.extend(["--sender".to_string(), sender.to_string(), "--target".to_string(), target.to_string()]);
        if let Some((u, p)) = credentials {
            args.extend(["--username".to_string(), u.to_string(), "--password".to_string(), p.to_string()]);
        }
        let mut proc = LineProcess::spawn(ECHO_ACCEPTOR_BIN, &args);
        let mut pred = |e: &Event| matches!(e, Event::Other { kind, .. } if kind == "listening");
        let port = match proc.expect("listening <port>", &mut pred, DEFAULT_TIMEOUT) {
            Event::Other { text, .. } => text.parse().unwrap_or_else(|_| panic!("bad listening line {text:?}")),
            other => unreachable!("predicate matched {other:?}"),
        };
        EchoAcceptor { proc, port }
    }

    /// Consumes events up to and including the first for which `pred` holds.
    #[track_caller]
    pub fn expect(&mut self, pred: impl FnMut(&Event) -> bool, timeout: Duration) -> Event {
        let mut pred = pred;
        self.proc.expect("matching event", &mut pred, timeout)
    }

    /// Everything the acceptor printed so far, and its stderr.
    pub fn report(&mut self) -> String {
        self.proc.report()
    }
}
