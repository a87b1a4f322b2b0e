//! Roles and scopes: the access vocabulary shared by the state store and the API.
//!
//! A route needs one [`Scope`]. A user's [`Role`] grants a fixed set of scopes; an API token
//! carries an explicit [`ScopeSet`] that its creator chose (never more than the creator has).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a request may do. Routes declare the scope they need in the policy registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Push data in: metrics, logs, events.
    Ingest,
    /// Read data and status.
    Read,
    /// Change configuration that is not security-relevant: rules, dashboards, silences.
    Write,
    /// Search, export and verify the audit chain.
    Audit,
    /// Manage users, tokens, tenants and security settings.
    Admin,
}

impl Scope {
    /// Every scope, in ascending order of power.
    pub const ALL: [Scope; 5] = [
        Scope::Ingest,
        Scope::Read,
        Scope::Write,
        Scope::Audit,
        Scope::Admin,
    ];

    /// The scope's name as used in the API and the state store.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Audit => "audit",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Who a user is: the scopes the role grants, and (for the scoped roles) which part of the
/// tenant's data it sees — see [`Role::sees`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads, writes configuration, ingests; no user or token management.
    Operator,
    /// Reads.
    Viewer,
    /// Pushes data only: the role of shippers and collectors.
    Ingest,
    /// Searches, exports and verifies the audit chain; nothing else.
    Auditor,
    /// Ingests and reads (seed 004's monitoring role: collectors that also query).
    Monitoring,
    /// Reads and writes configuration, but never data classified `security`.
    Support,
    /// Reads only the services the service-ownership map gives the user, and never
    /// `security` or `personal` data.
    Developer,
    /// Reads business data only (metrics, events and streams classified `business`).
    Business,
}

/// Which data classes and services a role sees inside query results (metrics, logs,
/// events); the routes it may call follow from its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// The whole tenant.
    All,
    /// Everything but data classified `security`.
    NotSecurity,
    /// Only the user's own services, without `security` or `personal` data.
    OwnServices,
    /// Only data classified `business`.
    Business,
}

/// The data classes a series, stream or event carries in its `data_class` label; absent
/// means [`DataClass::Technical`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataClass {
    /// How systems run (the default).
    Technical,
    /// Orders, payments, sales, receipts.
    Business,
    /// Logins, access, audit-relevant events.
    Security,
    /// Data about people (already masked at ingest, still restricted).
    Personal,
}

impl DataClass {
    /// The label that carries the class.
    pub const LABEL: &'static str = "data_class";

    /// The class's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Technical => "technical",
            DataClass::Business => "business",
            DataClass::Security => "security",
            DataClass::Personal => "personal",
        }
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Ingest,
        Role::Auditor,
        Role::Monitoring,
        Role::Support,
        Role::Developer,
        Role::Business,
    ];

    /// The role's name as used in the API and the state store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
            Role::Auditor => "auditor",
            Role::Monitoring => "monitoring",
            Role::Support => "support",
            Role::Developer => "developer",
            Role::Business => "business",
        }
    }

    /// The scopes this role grants.
    pub fn scopes(self) -> ScopeSet {
        match self {
            Role::Admin => ScopeSet::from_iter(Scope::ALL),
            Role::Operator => ScopeSet::from_iter([Scope::Ingest, Scope::Read, Scope::Write]),
            Role::Viewer | Role::Developer | Role::Business => ScopeSet::from_iter([Scope::Read]),
            Role::Ingest => ScopeSet::from_iter([Scope::Ingest]),
            Role::Auditor => ScopeSet::from_iter([Scope::Audit]),
            Role::Monitoring => ScopeSet::from_iter([Scope::Ingest, Scope::Read]),
            Role::Support => ScopeSet::from_iter([Scope::Read, Scope::Write]),
        }
    }

    /// What the role sees inside query results.
    pub fn sees(self) -> Sight {
        match self {
            Role::Admin
            | Role::Operator
            | Role::Viewer
            | Role::Ingest
            | Role::Auditor
            | Role::Monitoring => Sight::All,
            Role::Support => Sight::NotSecurity,
            Role::Developer => Sight::OwnServices,
            Role::Business => Sight::Business,
        }
    }

    /// Whether this role grants `scope`.
    pub fn grants(self, scope: Scope) -> bool {
        self.scopes().contains(scope)
    }
}

/// A set of scopes, stored as a bit set and written as a comma-separated list
/// (`"ingest,read"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// Whether the set holds `scope`.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn is_superset(self, other: ScopeSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

/// Why a string is not a role, scope or scope list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct ParseAccessError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Scope {
    type Err = ParseAccessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseAccessError {
                kind: "scope",
                value: s.to_owned(),
                expected: "ingest, read, write, audit, admin",
            })
    }
}

impl FromStr for Role {
    type Err = ParseAccessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseAccessError {
                kind: "role",
                value: s.to_owned(),
                expected: "admin, operator, viewer, ingest, auditor, monitoring, support, developer, \
                           business",
            })
    }
}

impl FromStr for ScopeSet {
    type Err = ParseAccessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_via_str!(Scope, Role, ScopeSet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_nested_powers() {
        assert!(Role::Admin.scopes().is_superset(Role::Operator.scopes()));
        assert!(Role::Operator.scopes().is_superset(Role::Viewer.scopes()));
        assert!(!Role::Viewer.grants(Scope::Ingest));
        assert!(!Role::Ingest.grants(Scope::Read));
        assert!(!Role::Operator.grants(Scope::Admin));
    }

    #[test]
    fn scoped_roles_read_part_of_the_data_and_change_no_security() {
        assert_eq!(
            Role::Monitoring.scopes(),
            ScopeSet::from_iter([Scope::Ingest, Scope::Read])
        );
        assert_eq!(
            Role::Support.scopes(),
            ScopeSet::from_iter([Scope::Read, Scope::Write])
        );
        for r in [Role::Developer, Role::Business] {
            assert_eq!(r.scopes(), ScopeSet::from_iter([Scope::Read]), "{r}");
        }
        for r in [
            Role::Monitoring,
            Role::Support,
            Role::Developer,
            Role::Business,
        ] {
            assert!(!r.grants(Scope::Admin) && !r.grants(Scope::Audit), "{r}");
        }
        assert_eq!(Role::Support.sees(), Sight::NotSecurity);
        assert_eq!(Role::Developer.sees(), Sight::OwnServices);
        assert_eq!(Role::Business.sees(), Sight::Business);
        assert_eq!(Role::Viewer.sees(), Sight::All);
        assert_eq!("developer".parse::<Role>().unwrap(), Role::Developer);
    }

    #[test]
    fn scope_sets_round_trip_as_text() {
        let set: ScopeSet = "read, ingest".parse().unwrap();
        assert_eq!(set.to_string(), "ingest,read");
        assert_eq!(set.to_string().parse::<ScopeSet>().unwrap(), set);
        assert!("".parse::<ScopeSet>().unwrap().is_empty());
        let err = "read,root".parse::<ScopeSet>().unwrap_err();
        assert!(err.to_string().contains("\"root\""), "{err}");
    }

    #[test]
    fn roles_round_trip_as_json() {
        for r in Role::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), r);
        }
        assert!(serde_json::from_str::<Role>("\"superuser\"").is_err());
    }
}
