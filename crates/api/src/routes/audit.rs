//! The audit chain over the API: verify it, search it, export it, and let applications
//! record their own audit events in it (seed 003's `log_audit_event`).
//!
//! - `GET /api/v1/audit/verify` (scope `audit`): what `dozor audit verify` says.
//! - `GET /api/v1/audit/records` (scope `audit`): the caller's tenant's records, newest
//!   first, filtered by `actor`, `action` (`auth.*` for an area), `target` (a prefix),
//!   `outcome`, `category`, `request_id`, `start`/`end`; `limit` (≤ 1000, default 100)
//!   and `before` (a `seq`, the cursor of the next page).
//! - `GET /api/v1/audit/export` (scope `audit`): the same filters, every match as JSON
//!   lines, oldest first, exactly as stored (each line still verifies against its hash).
//! - `POST /api/v1/audit/events` (scope `ingest`): one event or an array; each passes the
//!   category's filter (`audit.filters`: least severity, actions, resources) or is
//!   dropped and counted, and the fields named in `audit.masked_fields` (and the
//!   compliance presets') are masked in its details before it is chained.
//!
//! Reading the chain is itself audited (`audit.search`, `audit.export`, with counts).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Filter, Outcome};
use dozor_model::Scope;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::success;
use crate::json::JsonBody;
use crate::params::{Params, parse_time};
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/audit/verify",
        Policy::Scope(Scope::Audit),
        verify,
    )
    .route(
        Method::GET,
        "/api/v1/audit/records",
        Policy::Scope(Scope::Audit),
        records,
    )
    .route(
        Method::GET,
        "/api/v1/audit/export",
        Policy::Scope(Scope::Audit),
        export,
    )
    .route(
        Method::POST,
        "/api/v1/audit/events",
        Policy::Scope(Scope::Ingest),
        events,
    )
}

/// How bad an application's event is, in ascending order (syslog's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Detail for debugging.
    Debug,
    /// Normal.
    Info,
    /// Normal but worth noticing.
    Notice,
    /// Something may be wrong.
    Warning,
    /// Something failed.
    Error,
    /// Act now.
    Critical,
}

impl Severity {
    /// Every severity, ascending.
    pub const ALL: [Severity; 6] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// The severity named `s`.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Which events of one category are kept (seed 003's `audit_filters.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryFilter {
    /// Events below this are dropped.
    pub min_severity: Severity,
    /// Actions kept (empty: all).
    pub actions: Vec<String>,
    /// Resources kept (empty: all); an event without a resource passes only when empty.
    pub resources: Vec<String>,
}

/// What applications' audit events are kept and masked (`audit:` in `dozor.yml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPolicy {
    /// Filters by category; a category without one keeps every event.
    pub filters: HashMap<String, CategoryFilter>,
    /// Keys of `details` whose values are masked (lowercase; at any depth).
    pub masked_fields: Vec<String>,
}

impl AuditPolicy {
    /// Whether `e` is kept.
    fn keeps(&self, e: &AppEvent, severity: Severity) -> bool {
        let Some(f) = self.filters.get(&e.event_type) else {
            return true;
        };
        severity >= f.min_severity
            && (f.actions.is_empty() || f.actions.contains(&e.action))
            && (f.resources.is_empty()
                || e.resource.as_ref().is_some_and(|r| f.resources.contains(r)))
    }

    /// Masks the values of the masked fields in `details`, at any depth: a value becomes
    /// `masked:` and the first 12 hex digits of its SHA-256 with the tenant (equal values
    /// stay comparable within a tenant, and cannot be read back).
    fn mask(&self, details: &mut Map<String, Value>, tenant: &str) -> usize {
        let mut masked = 0;
        for (key, value) in details.iter_mut() {
            if self.masked_fields.contains(&key.to_lowercase()) {
                let text = match &*value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let digest = Sha256::digest(format!("{tenant}\u{0}{text}").as_bytes());
                *value = Value::String(format!("masked:{}", &hex::encode(digest)[..12]));
                masked += 1;
            } else if let Value::Object(inner) = value {
                masked += self.mask(inner, tenant);
            } else if let Value::Array(items) = value {
                for item in items {
                    if let Value::Object(inner) = item {
                        masked += self.mask(inner, tenant);
                    }
                }
            }
        }
        masked
    }
}

/// A compliance preset: categories whose events are kept from `info` up, and fields masked
/// (`audit.compliance`; `docs/compliance.md` says why each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// EU General Data Protection Regulation.
    Gdpr,
    /// US Health Insurance Portability and Accountability Act.
    Hipaa,
    /// US Sarbanes-Oxley Act.
    Sox,
    /// Payment Card Industry Data Security Standard.
    PciDss,
}

impl Preset {
    /// The preset named `s` (`gdpr`, `hipaa`, `sox`, `pci_dss`).
    pub fn parse(s: &str) -> Option<Preset> {
        match s {
            "gdpr" => Some(Preset::Gdpr),
            "hipaa" => Some(Preset::Hipaa),
            "sox" => Some(Preset::Sox),
            "pci_dss" => Some(Preset::PciDss),
            _ => None,
        }
    }

    /// The categories it keeps from `info` up.
    pub fn categories(self) -> &'static [&'static str] {
        match self {
            Preset::Gdpr => &["data_access", "data_export", "data_deletion", "consent"],
            Preset::Hipaa => &["authentication", "data_access", "data_export"],
            Preset::Sox => &[
                "authentication",
                "configuration",
                "financial",
                "access_control",
            ],
            Preset::PciDss => &[
                "authentication",
                "data_access",
                "access_control",
                "configuration",
            ],
        }
    }

    /// The shortest time the rule asks the audit trail to be kept, in days (`None`: no
    /// minimum): HIPAA 6 years, SOX 7, PCI DSS 12 months.
    pub fn min_retention_days(self) -> Option<u64> {
        match self {
            Preset::Gdpr => None,
            Preset::Hipaa => Some(6 * 365 + 2),
            Preset::Sox => Some(7 * 365 + 2),
            Preset::PciDss => Some(365),
        }
    }

    /// The preset's name in `dozor.yml`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Gdpr => "gdpr",
            Preset::Hipaa => "hipaa",
            Preset::Sox => "sox",
            Preset::PciDss => "pci_dss",
        }
    }

    /// The `details` keys it masks.
    pub fn masked_fields(self) -> &'static [&'static str] {
        match self {
            Preset::Gdpr => &[
                "email",
                "phone",
                "name",
                "full_name",
                "address",
                "date_of_birth",
                "ip_address",
            ],
            Preset::Hipaa => &[
                "patient_name",
                "ssn",
                "mrn",
                "medical_record_number",
                "diagnosis",
                "date_of_birth",
            ],
            Preset::Sox => &["account_number", "salary"],
            Preset::PciDss => &["card_number", "pan", "cvv", "cvc", "track_data", "pin"],
        }
    }
}

impl AuditPolicy {
    /// The policy of `presets` with `filters` and `masked` on top: a category's own filter
    /// replaces a preset's, masked fields add up.
    pub fn build(
        presets: &[Preset],
        filters: HashMap<String, CategoryFilter>,
        masked: &[String],
    ) -> AuditPolicy {
        let mut policy = AuditPolicy::default();
        for p in presets {
            for c in p.categories() {
                policy.filters.insert(
                    (*c).to_owned(),
                    CategoryFilter {
                        min_severity: Severity::Info,
                        actions: Vec::new(),
                        resources: Vec::new(),
                    },
                );
            }
            policy
                .masked_fields
                .extend(p.masked_fields().iter().map(|f| (*f).to_owned()));
        }
        policy.filters.extend(filters);
        policy
            .masked_fields
            .extend(masked.iter().map(|f| f.to_lowercase()));
        policy.masked_fields.sort();
        policy.masked_fields.dedup();
        policy
    }
}

async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let data_dir = state.data_dir().to_owned();
    let report = tokio::task::spawn_blocking(move || dozor_audit::verify(&data_dir))
        .await
        .map_err(ApiError::internal)??;
    let outcome = if report.problem.is_none() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "audit.verify",
        "audit/chain",
        outcome,
    )
    .source(source)
    .detail("records", report.records);
    state.audit_entry(entry).await?;
    Ok(success(report))
}

/// Most records one search returns.
const MAX_LIMIT: usize = 1000;

/// The filter of a search or export: the caller's tenant, and the parameters.
fn filter_of(principal: &Principal, params: &Params) -> Result<Filter, ApiError> {
    let text = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        text(name)
            .map(|v| parse_time(&v).map_err(|e| ApiError::bad_data(format!("{name}: {e}"))))
            .transpose()
    };
    let outcome = match text("outcome").as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("denied") => Some(Outcome::Denied),
        Some(_) => {
            return Err(ApiError::bad_data(
                "outcome: one of success, failure, denied",
            ));
        }
    };
    Ok(Filter {
        tenant: Some(principal.tenant.as_str().to_owned()),
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        outcome,
        category: text("category"),
        request_id: text("request_id"),
        from_ms: time("start")?,
        to_ms: time("end")?,
    })
}

async fn records(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let filter = filter_of(&principal, &params)?;
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_data(format!("{name}: a whole number")))
            })
            .transpose()
    };
    let limit = number("limit")?.map_or(100, |l| usize::try_from(l).unwrap_or(MAX_LIMIT));
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_data(format!("limit: 1 to {MAX_LIMIT}")));
    }
    let before = number("before")?;
    let data_dir = state.data_dir().to_owned();
    let wanted = filter.clone();
    let found =
        tokio::task::spawn_blocking(move || dozor_audit::search(&data_dir, &wanted, before, limit))
            .await
            .map_err(ApiError::internal)??;
    let next = (found.len() == limit)
        .then(|| found.last().map(|r| r.seq))
        .flatten();
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "audit.search",
        "audit/chain",
        Outcome::Success,
    )
    .source(source)
    .detail("records", found.len())
    .detail("filter", describe(&filter));
    state.audit_entry(entry).await?;
    Ok(success(json!({"records": found, "next_before": next})))
}

/// The filter as a short text for the audit record of a search.
fn describe(f: &Filter) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("actor", &f.actor);
    add("action", &f.action);
    add("target", &f.target);
    add("category", &f.category);
    add("request_id", &f.request_id);
    parts.join(" ")
}

async fn export(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let filter = filter_of(&principal, &params)?;
    let data_dir = state.data_dir().to_owned();
    let wanted = filter.clone();
    // The export is written to a temporary file first: the count goes into the audit
    // record before the answer starts, and a failure is a clean 500, not a cut stream.
    let (file, count) = tokio::task::spawn_blocking(move || {
        let mut file = tempfile_in(&data_dir)?;
        let mut out = std::io::BufWriter::new(&mut file);
        let n = dozor_audit::export(&data_dir, &wanted, &mut out)?;
        drop(out);
        Ok::<_, ApiError>((file, n))
    })
    .await
    .map_err(ApiError::internal)??;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "audit.export",
        "audit/chain",
        Outcome::Success,
    )
    .source(source)
    .detail("records", count)
    .detail("filter", describe(&filter));
    state.audit_entry(entry).await?;
    let body = tokio::fs::File::from_std(file);
    let stream = tokio_util_stream(body);
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// An anonymous temporary file under the data directory (removed when closed).
fn tempfile_in(data_dir: &std::path::Path) -> Result<std::fs::File, ApiError> {
    use std::io::Seek as _;
    let dir = data_dir.join("tmp");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let name = format!(
        "audit-export-{}",
        hex::encode(dozor_state::random_bytes::<8>().map_err(ApiError::internal)?)
    );
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(ApiError::internal)?;
    // Unlinked at once: the open handle is all that keeps it.
    std::fs::remove_file(&path).map_err(ApiError::internal)?;
    file.rewind().map_err(ApiError::internal)?;
    Ok(file)
}

/// The file from its start, as a stream of chunks.
fn tokio_util_stream(
    mut file: tokio::fs::File,
) -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        if let Err(e) = file.rewind().await {
            let _ = tx.send(Err(e)).await;
            return;
        }
        loop {
            let mut buf = vec![0; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(axum::body::Bytes::from(buf))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Chunks(rx)
}

/// A receiver of chunks as a stream.
struct Chunks(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// An application's audit event (seed 003's `log_audit_event`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEvent {
    /// The category (`authentication`, `data_access`…).
    event_type: String,
    /// What was done (`login`, `read`…).
    action: String,
    /// Who did it, in the application's terms.
    user_id: String,
    /// How bad (default `info`).
    #[serde(default)]
    severity: Option<String>,
    /// What it was done to.
    #[serde(default)]
    resource: Option<String>,
    /// How it ended (default `success`).
    #[serde(default)]
    outcome: Option<Outcome>,
    /// Anything else.
    #[serde(default)]
    details: Map<String, Value>,
}

/// Most events one request may carry.
const MAX_EVENTS: usize = 1000;

/// Checks a short text field: 1 to 200 characters without control characters.
fn short(field: String, v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
        return Err(ApiError::bad_data(format!(
            "{field}: 1 to 200 characters without control characters"
        )));
    }
    Ok(())
}

async fn events(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    // One event or an array of them; each decoded alone, so an error names its index.
    let (items, many) = match body {
        Value::Array(items) => (items, true),
        one @ Value::Object(_) => (vec![one], false),
        _ => {
            return Err(ApiError::bad_data(
                "the body must be an event object or an array of them",
            ));
        }
    };
    if items.len() > MAX_EVENTS {
        return Err(ApiError::bad_data(format!(
            "at most {MAX_EVENTS} events per request"
        )));
    }
    let list = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<AppEvent>(v).map_err(|e| {
                let at = if many {
                    format!("[{i}]: ")
                } else {
                    String::new()
                };
                ApiError::bad_data(format!("{at}{e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy: Arc<AuditPolicy> = Arc::new(state.settings().audit.clone());
    let mut kept = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        let at = |f: &str| {
            if many {
                format!("[{i}].{f}")
            } else {
                f.to_owned()
            }
        };
        short(at("event_type"), &e.event_type)?;
        short(at("action"), &e.action)?;
        short(at("user_id"), &e.user_id)?;
        if let Some(r) = &e.resource {
            short(at("resource"), r)?;
        }
        let severity = match e.severity.as_deref() {
            None => Severity::Info,
            Some(s) => Severity::parse(s).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "{}: one of debug, info, notice, warning, error, critical",
                    at("severity")
                ))
            })?,
        };
        kept.push((e, severity));
    }
    let mut recorded = 0;
    let mut filtered = 0;
    let mut masked = 0;
    for (mut e, severity) in kept {
        if !policy.keeps(&e, severity) {
            filtered += 1;
            continue;
        }
        masked += policy.mask(&mut e.details, principal.tenant.as_str());
        let mut entry = Entry::new(
            principal.tenant.as_str(),
            e.user_id.as_str(),
            e.action.as_str(),
            e.resource.clone().unwrap_or_default(),
            e.outcome.unwrap_or(Outcome::Success),
        )
        .source(source.as_str())
        .detail("reported_by", principal.actor.as_str());
        entry.category = Some(e.event_type);
        entry.severity = Some(severity.as_str().to_owned());
        for (k, v) in e.details {
            entry.details.entry(k).or_insert(v);
        }
        state.audit_entry(entry).await?;
        recorded += 1;
    }
    Ok(success(
        json!({"recorded": recorded, "filtered": filtered, "masked_fields": masked}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: &str, action: &str, resource: Option<&str>) -> AppEvent {
        AppEvent {
            event_type: t.into(),
            action: action.into(),
            user_id: "u1".into(),
            severity: None,
            resource: resource.map(str::to_owned),
            outcome: None,
            details: Map::new(),
        }
    }

    #[test]
    fn filters_keep_by_severity_action_and_resource() {
        let policy = AuditPolicy {
            filters: HashMap::from([(
                "authentication".to_owned(),
                CategoryFilter {
                    min_severity: Severity::Info,
                    actions: vec!["login".into(), "logout".into()],
                    resources: vec!["auth".into()],
                },
            )]),
            masked_fields: vec![],
        };
        let login = event("authentication", "login", Some("auth"));
        assert!(policy.keeps(&login, Severity::Info));
        assert!(!policy.keeps(&login, Severity::Debug));
        assert!(!policy.keeps(
            &event("authentication", "sudo", Some("auth")),
            Severity::Critical
        ));
        assert!(!policy.keeps(&event("authentication", "login", None), Severity::Info));
        assert!(!policy.keeps(
            &event("authentication", "login", Some("data")),
            Severity::Info
        ));
        // A category without a filter keeps everything.
        assert!(policy.keeps(&event("billing", "refund", None), Severity::Debug));
    }

    #[test]
    fn masked_fields_are_hashed_at_any_depth_per_tenant() {
        let policy = AuditPolicy {
            filters: HashMap::new(),
            masked_fields: vec!["card_number".into(), "ssn".into()],
        };
        let mut d: Map<String, Value> = serde_json::from_value(json!({
            "Card_Number": "4111 1111 1111 1111",
            "nested": {"ssn": "123-45-6789", "ok": "kept"},
            "list": [{"ssn": 123456789}],
            "amount": 10
        }))
        .unwrap();
        let mut again = d.clone();
        assert_eq!(policy.mask(&mut d, "shop"), 3);
        let text = Value::Object(d.clone()).to_string();
        assert!(!text.contains("4111") && !text.contains("6789"), "{text}");
        assert!(text.contains("kept") && text.contains("\"amount\":10"));
        assert!(d["Card_Number"].as_str().unwrap().starts_with("masked:"));
        policy.mask(&mut again, "other");
        assert_ne!(
            d["Card_Number"], again["Card_Number"],
            "the tenant keys the hash"
        );
    }
}
