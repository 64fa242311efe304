//! TLS on the order-entry listeners (rustls), an option per listener (`[server.tls]` for SBE,
//! `[fix.tls]` for FIX); plain TCP stays the default for co-located use.
//!
//! A [`TlsAcceptor`] holds the listener's rustls `ServerConfig`, built from a certificate chain
//! file and a private key file (PEM), and, with a client CA file, requiring a client
//! certificate signed by that CA. The edge wraps each accepted socket of a TLS listener in a
//! `rustls::ServerConnection` and drives it without blocking (`edge.rs`): TLS records in through
//! `read_tls`/`process_new_packets`, plaintext out of `reader()` into the session's receive
//! buffer; the session's output into `writer()` and records out through `write_tls`.
//!
//! [`TlsAcceptor::reload`] re-reads the files at the configured paths and swaps the new
//! configuration in at once (SIGHUP, the admin port): connections made from then on use the new
//! certificate; live ones keep the one they were made with. A reload that fails keeps the old.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use serde::Deserialize;

/// `[server.tls]` / `[fix.tls]`: TLS on a listener.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// With it, clients must present a certificate signed by one of these CAs (PEM); without
    /// it, clients are not asked for one.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// Why a TLS configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// rustls refused the certificates or key.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_path_buf(), why: why.to_string() }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in it"));
    }
    Ok(certs)
}

/// Builds the rustls configuration `cfg` describes.
fn server_config(cfg: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let chain = certs(&cfg.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file).map_err(|e| file_error(&cfg.key_file, e))?;
    // ring, not aws-lc-rs: no C/cmake build; rustls 0.23.48 deprecates it only for lacking
    // post-quantum key exchange, which order entry on a private link does not need yet.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &cfg.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| TlsError::Rustls(e.to_string()))
}

/// A listener's TLS configuration, replaceable while the appliance runs.
#[derive(Debug)]
pub struct TlsAcceptor {
    name: &'static str,
    files: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Loads `files` for the listener `name` (for logs).
    pub fn load(name: &'static str, files: &TlsConfig) -> Result<Self, TlsError> {
        let config = server_config(files)?;
        tracing::info!(listener = name, cert = %files.cert_file.display(), client_certs = files.client_ca_file.is_some(), "TLS on");
        Ok(TlsAcceptor { name, files: files.clone(), current: RwLock::new(Arc::new(config)) })
    }

    /// The listener's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Re-reads the certificate, key and client CA files at the configured paths and, if they
    /// make a valid configuration, uses it for every new connection.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        tracing::info!(listener = self.name, cert = %self.files.cert_file.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// A server-side TLS connection for a newly accepted socket.
    pub(crate) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()));
        ServerConnection::new(config)
    }
}

/// Re-reads every acceptor's certificate, key and client CA files: new connections get the new
/// certificate; an acceptor whose files are bad keeps its old one (logged).
pub fn reload_all(acceptors: &[Arc<TlsAcceptor>]) {
    for acceptor in acceptors {
        if let Err(e) = acceptor.reload() {
            tracing::error!(listener = acceptor.name(), error = %e, "TLS reload refused; the old certificate stays");
        }
    }
}
