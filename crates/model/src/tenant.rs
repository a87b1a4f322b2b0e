//! [`TenantId`]: the validated name of a tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest tenant name we accept; it appears in file names, labels and URLs.
pub const MAX_TENANT_LEN: usize = 64;

/// The name of a tenant: 1–64 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter
/// or digit. Valid by construction, so it is safe in paths, SQL parameters and labels.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// The tenant that single-tenant installations use.
    pub const DEFAULT: &'static str = "default";

    /// The `default` tenant.
    pub fn default_tenant() -> TenantId {
        TenantId(Self::DEFAULT.to_owned())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a tenant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseTenantError {
    /// The name is empty.
    #[error("tenant name is empty")]
    Empty,
    /// The name is longer than [`MAX_TENANT_LEN`].
    #[error("tenant name is longer than {MAX_TENANT_LEN} characters")]
    TooLong,
    /// The name holds a character outside `a-z0-9_-`, or starts with `-`/`_`.
    #[error(
        "tenant name {0:?} may hold only a-z, 0-9, '-' and '_', and must start with a letter or digit"
    )]
    BadCharacter(String),
}

impl FromStr for TenantId {
    type Err = ParseTenantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseTenantError::Empty);
        }
        if s.len() > MAX_TENANT_LEN {
            return Err(ParseTenantError::TooLong);
        }
        let first_ok = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !(first_ok && rest_ok) {
            return Err(ParseTenantError::BadCharacter(s.to_owned()));
        }
        Ok(TenantId(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_digits_dash_underscore() {
        for ok in [
            "default",
            "shop-42",
            "a",
            "0_x",
            &"z".repeat(MAX_TENANT_LEN),
        ] {
            assert_eq!(ok.parse::<TenantId>().map(|t| t.0), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_empty_long_and_unsafe_names() {
        assert_eq!("".parse::<TenantId>(), Err(ParseTenantError::Empty));
        assert_eq!(
            "z".repeat(MAX_TENANT_LEN + 1).parse::<TenantId>(),
            Err(ParseTenantError::TooLong)
        );
        for bad in ["Shop", "../etc", "a b", "-x", "_x", "ténant", "a/b"] {
            assert!(
                matches!(
                    bad.parse::<TenantId>(),
                    Err(ParseTenantError::BadCharacter(_))
                ),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        let err = serde_json::from_str::<TenantId>("\"Not OK\"").unwrap_err();
        assert!(err.to_string().contains("may hold only"), "{err}");
    }
}
