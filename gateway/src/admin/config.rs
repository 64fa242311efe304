//! `[admin]`: the admin port's listener, its tokens and whether the pipeline records metrics.
//! The port runs only when at least one token is configured: there is no unauthenticated mode.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::auth::{Scope, Token, Tokens};
use super::{MAX_TOKENS, MIN_TOKEN_LEN_BYTES};
use crate::config::ConfigError;

/// `[admin]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Listen address (localhost by default: expose it further only behind a proxy).
    pub listen: String,
    /// Tokens, each `{ name, token, scope }` with scope `read` or `admin`.
    pub tokens: Vec<Token>,
    /// A file of more tokens, one `name scope token` per line (`#` comments); empty: none.
    pub token_file: String,
    /// Whether the pipeline records metrics and stage latencies (off: every counter but the
    /// connection counts stays 0 and no stage reads a clock for them; the benchmarks compare
    /// both).
    pub metrics: bool,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection { listen: "127.0.0.1:9400".into(), tokens: Vec::new(), token_file: String::new(), metrics: true }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

impl AdminSection {
    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| invalid("admin.listen", format!("not an IP:port address: {e}")))
    }

    /// Every token, from the file and the file's `token_file`, checked: names unique, secrets
    /// at least [`MIN_TOKEN_LEN_BYTES`] long, at most [`MAX_TOKENS`].
    pub fn resolve_tokens(&self) -> Result<Tokens, ConfigError> {
        let mut all = self.tokens.clone();
        if !self.token_file.is_empty() {
            all.extend(read_token_file(&PathBuf::from(&self.token_file))?);
        }
        if all.len() > MAX_TOKENS {
            return Err(invalid("admin.tokens", format!("more than MAX_TOKENS ({MAX_TOKENS})")));
        }
        for (i, t) in all.iter().enumerate() {
            if t.name.is_empty() || t.name.chars().any(char::is_whitespace) {
                return Err(invalid("admin.tokens", format!("token {i}: the name must be non-empty, without spaces")));
            }
            if t.token.len() < MIN_TOKEN_LEN_BYTES || !t.token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "admin.tokens",
                    format!("token {}: at least MIN_TOKEN_LEN_BYTES ({MIN_TOKEN_LEN_BYTES}) printable bytes", t.name),
                ));
            }
            if all[..i].iter().any(|o| o.name == t.name) {
                return Err(invalid("admin.tokens", format!("token name {} is used twice", t.name)));
            }
            if all[..i].iter().any(|o| o.token == t.token) {
                return Err(invalid("admin.tokens", format!("token {} repeats another token's secret", t.name)));
            }
        }
        Ok(Tokens::new(all))
    }
}

fn read_token_file(path: &PathBuf) -> Result<Vec<Token>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("admin.token_file", format!("reading {}: {e}", path.display())))?;
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, scope, token] = fields[..] else {
            return Err(invalid("admin.token_file", format!("line {}: expected `name scope token`", n + 1)));
        };
        let scope = Scope::parse(scope)
            .ok_or_else(|| invalid("admin.token_file", format!("line {}: scope must be read or admin", n + 1)))?;
        tokens.push(Token { name: name.into(), token: token.into(), scope });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_the_file_join_the_configured_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("# SREs\nops admin {}\n\n", "x".repeat(24))).unwrap();
        let section = AdminSection {
            tokens: vec![Token { name: "grafana".into(), token: "y".repeat(24), scope: Scope::Read }],
            token_file: path.display().to_string(),
            ..AdminSection::default()
        };
        let tokens = section.resolve_tokens().unwrap();
        let header = format!("Bearer {}", "x".repeat(24));
        assert_eq!(tokens.check(Some(header.as_bytes()), Scope::Admin).unwrap().name, "ops");
    }

    #[test]
    fn short_or_repeated_tokens_are_refused() {
        let short = AdminSection {
            tokens: vec![Token { name: "a".into(), token: "short".into(), scope: Scope::Read }],
            ..AdminSection::default()
        };
        assert!(short.resolve_tokens().unwrap_err().to_string().contains("MIN_TOKEN_LEN_BYTES"));
        let t = Token { name: "a".into(), token: "z".repeat(20), scope: Scope::Read };
        let twice = AdminSection { tokens: vec![t.clone(), t], ..AdminSection::default() };
        assert!(twice.resolve_tokens().is_err());
    }
}
