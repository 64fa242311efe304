//! Bearer tokens of the admin port: each has an identity name and a scope. `read` may look
//! (health, metrics, dashboard data), `admin` may also act (the POST routes). Tokens come from
//! `[admin] tokens` and `[admin] token_file`; comparison is constant-time (`subtle`), over every
//! configured token, so neither a token's bytes nor which token matched leak through timing.

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Health, metrics, dashboard.
    Read,
    /// Everything `read` may, and admin actions.
    Admin,
}

impl Scope {
    /// The scope named `s` (`read`, `admin`).
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// One configured token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it (logged with every admin action).
    pub name: String,
    /// The secret.
    pub token: String,
    /// What it may do.
    pub scope: Scope,
}

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No `Authorization: Bearer` header, or no token matches: 401.
    Unauthenticated,
    /// The token's scope is below the route's: 403.
    Forbidden,
}

/// The configured tokens.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// The tokens.
    pub fn new(tokens: Vec<Token>) -> Self {
        Tokens(tokens)
    }

    /// Whether any token is configured (the admin port runs only then).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks an `Authorization` header value against the tokens and `needed`.
    pub fn check(&self, authorization: Option<&[u8]>, needed: Scope) -> Result<Identity, Refused> {
        let presented = authorization.and_then(|h| h.strip_prefix(b"Bearer ")).ok_or(Refused::Unauthenticated)?;
        let mut found: Option<&Token> = None;
        for t in &self.0 {
            // Every token is compared, whatever matched before: timing says nothing.
            if bool::from(t.token.as_bytes().ct_eq(presented)) {
                found = Some(t);
            }
        }
        let t = found.ok_or(Refused::Unauthenticated)?;
        if t.scope < needed {
            return Err(Refused::Forbidden);
        }
        Ok(Identity { name: t.name.clone(), scope: t.scope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(vec![
            Token { name: "grafana".into(), token: "r".repeat(32), scope: Scope::Read },
            Token { name: "ops".into(), token: "a".repeat(32), scope: Scope::Admin },
        ])
    }

    #[test]
    fn scopes_are_enforced() {
        let t = tokens();
        let read = format!("Bearer {}", "r".repeat(32));
        let admin = format!("Bearer {}", "a".repeat(32));
        assert_eq!(t.check(Some(read.as_bytes()), Scope::Read).map(|i| i.name), Ok("grafana".into()));
        assert_eq!(t.check(Some(read.as_bytes()), Scope::Admin), Err(Refused::Forbidden));
        assert_eq!(t.check(Some(admin.as_bytes()), Scope::Admin).map(|i| i.scope), Ok(Scope::Admin));
        assert_eq!(t.check(None, Scope::Read), Err(Refused::Unauthenticated));
        assert_eq!(t.check(Some(b"Bearer nope"), Scope::Read), Err(Refused::Unauthenticated));
        let prefix = format!("Bearer {}", "r".repeat(31));
        assert_eq!(t.check(Some(prefix.as_bytes()), Scope::Read), Err(Refused::Unauthenticated));
        assert_eq!(t.check(Some("r".repeat(32).as_bytes()), Scope::Read), Err(Refused::Unauthenticated));
    }
}
