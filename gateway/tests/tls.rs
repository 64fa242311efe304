//! TLS on the order-entry listeners, checked with an independent TLS client (`openssl
//! s_client`, installed by gateway/scripts/install-sec-test-deps.sh) and certificates made by
//! `openssl req`/`openssl x509` in a temp dir:
//!
//! - a FIX Logon over TLS gets its Logon reply, the server's certificate verifying against the
//!   test CA; plain TCP to that listener gets nothing;
//! - after the certificate files are replaced and the appliance reloads, new connections see
//!   the new certificate;
//! - with a client CA configured, a client without a certificate is refused, one with a
//!   certificate the CA signed logs on;
//! - SBE over TLS (a rustls client): Negotiate and Establish succeed.

#[path = "support/raw_fix.rs"]
mod raw_fix;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::tls::TlsConfig;

fn openssl(dir: &Path, args: &[&str]) {
    let out =
        Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (install-sec-test-deps.sh)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A P-256 key and a certificate for `name` signed by the test CA, with `ext` (v3 extensions).
fn issue(dir: &Path, name: &str, cn: &str, ext: &str) {
    let (key, csr, crt, extfile) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
    std::fs::write(dir.join(&extfile), ext).unwrap();
    openssl(
        dir,
        &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            .into_iter()
            .chain(["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={cn}")])
            .collect::<Vec<_>>(),
    );
    openssl(
        dir,
        &["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]
            .into_iter()
            .chain(["-out", &crt, "-days", "2", "-extfile", &extfile])
            .collect::<Vec<_>>(),
    );
}

const SERVER_EXT: &str =
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n";
const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n";

/// The test CA, a server certificate (CN `cn`) and a client certificate, in `dir`.
fn make_pki(dir: &Path, cn: &str) {
    openssl(
        dir,
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            .into_iter()
            .chain(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sable-test-ca"])
            .chain(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .collect::<Vec<_>>(),
    );
    issue(dir, "server", cn, SERVER_EXT);
    issue(dir, "client", "sable-test-client", CLIENT_EXT);
}

fn tls_files(dir: &Path, client_ca: bool) -> TlsConfig {
    TlsConfig {
        cert_file: dir.join("server.crt"),
        key_file: dir.join("server.key"),
        client_ca_file: client_ca.then(|| dir.join("ca.crt")),
    }
}

fn fix_logon() -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = gateway::fix::writer::Writer::new(&mut buf, "FIX.4.4", b"A");
    w.str(49, "CLIENT2").str(56, "SABLE").u64(34, 1).timestamp_ms(52, raw_fix::now_ns());
    w.str(98, "0").str(108, "30").str(141, "Y");
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

/// Runs `openssl s_client` against `addr`, sends a FIX Logon, and returns what it printed once
/// a Logon reply arrived, or when it ended (or after a bound).
fn s_client(addr: SocketAddr, pki: &Path, with_cert: bool) -> String {
    let mut args: Vec<String> = ["s_client", "-connect", &addr.to_string(), "-CAfile", "ca.crt"]
        .into_iter()
        .chain(["-verify_return_error", "-verify_ip", "127.0.0.1", "-ign_eof"])
        .map(String::from)
        .collect();
    if with_cert {
        args.extend(["-cert", "client.crt", "-key", "client.key"].map(String::from));
    }
    let mut child = Command::new("openssl")
        .args(&args)
        .current_dir(pki)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client runs");
    let mut stdin = child.stdin.take().unwrap();
    // s_client sends what it reads from stdin once the handshake is done.
    let _ = stdin.write_all(&fix_logon());
    let _ = stdin.flush();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(bytes) => out.extend(bytes),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) => {}
        }
        if out.windows(5).any(|w| w == b"\x0135=A") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    String::from_utf8_lossy(&out).into_owned()
}

fn logged_on(output: &str) -> bool {
    output.contains("\u{1}35=A\u{1}")
}

fn start(data: &Path, fix_tls: Option<TlsConfig>, sbe_tls: Option<TlsConfig>) -> gateway::pipeline::Appliance {
    raw_fix::start(data, |c| {
        c.fix.tls = fix_tls;
        c.server.tls = sbe_tls;
    })
}

#[test]
fn a_fix_logon_over_tls_is_answered_and_a_reload_brings_the_new_certificate() {
    let (pki, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_pki(pki.path(), "sable-first");
    let app = start(data.path(), Some(tls_files(pki.path(), false)), None);
    let fix = app.fix_addr().unwrap();

    let out = s_client(fix, pki.path(), false);
    assert!(logged_on(&out), "Logon reply over TLS: {out}");
    assert!(out.contains("sable-first") && out.contains("Verify return code: 0"), "{out}");

    // Plain TCP to the TLS listener: the Logon is not FIX to it, nothing FIX comes back.
    let mut plain = TcpStream::connect(fix).unwrap();
    plain.write_all(&fix_logon()).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!buf.windows(4).any(|w| w == b"35=A"), "no Logon reply in the clear");

    issue(pki.path(), "server", "sable-rotated", SERVER_EXT);
    let config = data.path().join("reload.toml");
    std::fs::write(&config, gateway::config::DEFAULT_TOML).unwrap();
    app.reload(&config).expect("reloads");
    let out = s_client(fix, pki.path(), false);
    assert!(logged_on(&out) && out.contains("sable-rotated"), "the new certificate: {out}");
    app.shutdown().unwrap();
}

#[test]
fn a_required_client_certificate_refuses_a_client_without_one() {
    let (pki, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_pki(pki.path(), "sable-mtls");
    let app = start(data.path(), Some(tls_files(pki.path(), true)), None);
    let fix = app.fix_addr().unwrap();
    let without = s_client(fix, pki.path(), false);
    assert!(!logged_on(&without), "refused without a certificate: {without}");
    let with = s_client(fix, pki.path(), true);
    assert!(logged_on(&with), "a certificate the CA signed logs on: {with}");
    app.shutdown().unwrap();
}

#[test]
fn sbe_negotiates_and_establishes_over_tls() {
    let (pki, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_pki(pki.path(), "sable-sbe");
    let app = start(data.path(), None, Some(tls_files(pki.path(), false)));
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(pki.path().join("ca.crt")).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(&ca).expect("the CA parses");
    roots.add(ca).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(app.local_addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut frame = [0u8; 512];
    let nego = gateway::sbe::messages::Negotiate {
        session_id: 1u64.into(),
        timestamp: 1u64.into(),
        username: gateway::sbe::messages::char_field(b"demo").unwrap(),
        password: gateway::sbe::messages::char_field(b"demo").unwrap(),
    };
    let n = gateway::sbe::codec::encode(&nego, &mut frame).unwrap();
    tls.write_all(&frame[..n]).unwrap();
    let reply = read_frame(&mut tls);
    let msg = gateway::sbe::codec::decode_outbound(&reply[6..]).expect("decodes");
    assert!(
        matches!(msg, gateway::sbe::codec::Outbound::NegotiationResponse(_)),
        "{}",
        gateway::client::describe(&msg)
    );
    let establish = gateway::sbe::messages::Establish {
        session_id: 1u64.into(),
        timestamp: 2u64.into(),
        keepalive_interval: 10_000u32.into(),
        next_seq_no: 1u64.into(),
    };
    let n = gateway::sbe::codec::encode(&establish, &mut frame).unwrap();
    tls.write_all(&frame[..n]).unwrap();
    let reply = read_frame(&mut tls);
    let msg = gateway::sbe::codec::decode_outbound(&reply[6..]).expect("decodes");
    assert!(matches!(msg, gateway::sbe::codec::Outbound::EstablishmentAck(_)), "{}", gateway::client::describe(&msg));
    app.shutdown().unwrap();
}

/// One SOFH frame from `r`.
fn read_frame(r: &mut impl Read) -> Vec<u8> {
    let mut head = [0u8; 6];
    r.read_exact(&mut head).expect("a frame header");
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut frame = head.to_vec();
    frame.resize(len, 0);
    r.read_exact(&mut frame[6..]).expect("the frame body");
    frame
}
