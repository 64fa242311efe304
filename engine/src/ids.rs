//! Identifier newtypes. Ids that must not mix get their own type.

use serde::{Deserialize, Serialize};

/// Exchange-assigned order id: a gap-free counter starting at 1, never reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

/// Trading account. Indexes the engine's account table directly, so it is bounded by
/// [`crate::EngineLimits::max_accounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId(pub u32);

/// Instrument. Indexes the engine's instrument table directly, so it is bounded by
/// [`crate::EngineLimits::max_instruments`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstrumentId(pub u32);

/// Trade id: a gap-free counter per engine starting at 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TradeId(pub u64);

/// Maximum length of a client order id in bytes (the FIX/iLink `String20` convention).
pub const CL_ORD_ID_MAX_LEN: usize = 20;

/// Client order id: up to 20 printable ASCII bytes, zero-padded. Unique among an account's live
/// orders; the engine keeps the mapping so it survives replay and failover.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct ClOrdId(pub [u8; CL_ORD_ID_MAX_LEN]);

/// Why a string cannot be a [`ClOrdId`] or [`Symbol`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty identifier.
    #[error("identifier is empty")]
    Empty,
    /// Longer than the fixed field.
    #[error("identifier longer than {max} bytes")]
    TooLong {
        /// The maximum length.
        max: usize,
    },
    /// Contains a byte outside printable ASCII (0x21..=0x7e).
    #[error("identifier contains a byte outside printable ASCII")]
    NotPrintable,
}

fn fixed_ascii<const N: usize>(s: &[u8]) -> Result<[u8; N], IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > N {
        return Err(IdError::TooLong { max: N });
    }
    if !s.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(IdError::NotPrintable);
    }
    let mut out = [0u8; N];
    out[..s.len()].copy_from_slice(s);
    Ok(out)
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}

impl ClOrdId {
    /// Parses a client order id from its wire bytes.
    pub fn new(s: &[u8]) -> Result<Self, IdError> {
        fixed_ascii(s).map(Self)
    }

    /// The decimal rendering of `n`, for numeric client ids (LOBSTER streams, benchmarks).
    pub fn from_u64(n: u64) -> Self {
        let mut out = [0u8; CL_ORD_ID_MAX_LEN];
        let mut digits = [0u8; 20];
        let mut len = 0;
        let mut v = n;
        loop {
            digits[len] = b'0' + (v % 10) as u8;
            len += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in 0..len {
            out[i] = digits[len - 1 - i];
        }
        Self(out)
    }

    /// The id's bytes without padding.
    pub fn as_bytes(&self) -> &[u8] {
        trimmed(&self.0)
    }

    /// The id as text (always ASCII by construction, lossless).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl std::fmt::Debug for ClOrdId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClOrdId({:?})", self.as_str())
    }
}

impl std::fmt::Display for ClOrdId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maximum length of an instrument symbol in bytes.
pub const SYMBOL_MAX_LEN: usize = 16;

/// Instrument symbol: up to 16 printable ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Symbol(pub [u8; SYMBOL_MAX_LEN]);

impl Symbol {
    /// Parses a symbol.
    pub fn new(s: &str) -> Result<Self, IdError> {
        fixed_ascii(s.as_bytes()).map(Self)
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(trimmed(&self.0)).unwrap_or("")
    }
}

impl std::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_ord_id_round_trips_and_validates() {
        assert_eq!(ClOrdId::from_u64(0).as_str(), "0");
        assert_eq!(ClOrdId::from_u64(16113575).as_str(), "16113575");
        assert_eq!(ClOrdId::from_u64(u64::MAX).as_str(), u64::MAX.to_string());
        assert_eq!(ClOrdId::new(b"abc-1").unwrap().as_str(), "abc-1");
        assert_eq!(ClOrdId::new(b""), Err(IdError::Empty));
        assert_eq!(ClOrdId::new(&[b'a'; 21]), Err(IdError::TooLong { max: 20 }));
        assert_eq!(ClOrdId::new(b"a b"), Err(IdError::NotPrintable));
        assert_eq!(Symbol::new("AAPL").unwrap().as_str(), "AAPL");
    }
}
