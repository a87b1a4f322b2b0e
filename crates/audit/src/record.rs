//! [`Record`]: one line of the chain, and the [`Entry`] callers fill in.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first record: 32 zero bytes in hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was attempted and failed (a wrong password, say).
    Failure,
    /// It was refused by policy.
    Denied,
}

/// What a caller records: who did what to which object, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The tenant whose data or settings were touched.
    pub tenant: String,
    /// Who acted: a user name, `token:<id>`, `anonymous` or `system`.
    pub actor: String,
    /// What was done, as `area.verb` (`auth.login`, `token.create`, `config.load`).
    pub action: String,
    /// What it was done to (`user/alice`, `token/3f2a…`).
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Where the request came from, if over the network.
    pub source: Option<String>,
    /// The request that did it (`X-Request-Id`), to correlate records of one request.
    pub request_id: Option<String>,
    /// An application's category of the event (`authentication`, `data_access`…); `None`
    /// for Dozor's own records.
    pub category: Option<String>,
    /// An application's severity of the event (`debug` … `critical`).
    pub severity: Option<String>,
    /// Anything else worth keeping (never a secret).
    pub details: Map<String, Value>,
}

impl Entry {
    /// An entry with no source and no details.
    pub fn new(
        tenant: impl Into<String>,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: Outcome,
    ) -> Entry {
        Entry {
            tenant: tenant.into(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome,
            source: None,
            request_id: None,
            category: None,
            severity: None,
            details: Map::new(),
        }
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Entry {
        self.request_id = Some(id.into());
        self
    }

    /// Sets where the request came from.
    pub fn source(mut self, source: impl Into<String>) -> Entry {
        self.source = Some(source.into());
        self
    }

    /// Adds one detail.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Entry {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// One record of the chain as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended, ms since the Unix epoch.
    pub ts_ms: i64,
    /// See [`Entry::tenant`].
    pub tenant: String,
    /// See [`Entry::actor`].
    pub actor: String,
    /// See [`Entry::action`].
    pub action: String,
    /// See [`Entry::target`].
    pub target: String,
    /// See [`Entry::outcome`].
    pub outcome: Outcome,
    /// See [`Entry::source`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// See [`Entry::request_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// See [`Entry::category`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// See [`Entry::severity`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// See [`Entry::details`].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 of this record's canonical form, lowercase hex.
    pub hash: String,
}

impl Record {
    /// Builds the record that follows `prev_hash` at `seq`, computing its hash.
    pub(crate) fn seal(entry: Entry, seq: u64, ts_ms: i64, prev_hash: &str) -> Record {
        let mut record = Record {
            seq,
            ts_ms,
            tenant: entry.tenant,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            outcome: entry.outcome,
            source: entry.source,
            request_id: entry.request_id,
            category: entry.category,
            severity: entry.severity,
            details: entry.details,
            prev: prev_hash.to_owned(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    /// SHA-256 over the canonical form: the record as JSON with keys sorted and without
    /// `hash`. `serde_json`'s map is a `BTreeMap`, so the form is the same on every machine.
    pub fn compute_hash(&self) -> String {
        let mut value = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings and integers always serializes to an object.
            _ => unreachable!("BUG: audit record did not serialize to a JSON object"),
        };
        value.remove("hash");
        let canonical = Value::Object(value).to_string();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}
