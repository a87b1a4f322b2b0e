//! Logs: NDJSON ingest (`POST /api/v1/logs/ingest`, scope `ingest`) and search
//! (`GET|POST /api/v1/logs/search`, scope `read`).
//!
//! Ingest decodes the whole body first (a bad line is a 400 naming it, and nothing is
//! stored), masks PII in every message and field with the tenant's salt, leaves out records
//! a `drop` action refuses, and answers once the rest are in the WAL. Every search is
//! recorded in the audit chain before it is answered: who read which streams with what
//! filter, and how many lines came back (seed 002's log-access audit).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_ingest::ndjson::{self, NdjsonOptions};
use dozor_logs::{Direction, LogQuery};
use dozor_model::{LogRecord, Scope, TenantId};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::series::parse_selector;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most records one search returns.
const MAX_LIMIT: usize = 10_000;
/// Records a search returns by default.
const DEFAULT_LIMIT: usize = 100;

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::POST,
        "/api/v1/logs/ingest",
        Policy::Scope(Scope::Ingest),
        ingest,
    )
    .route(
        Method::GET,
        "/api/v1/logs/search",
        Policy::Scope(Scope::Read),
        search,
    )
    .route(
        Method::POST,
        "/api/v1/logs/search",
        Policy::Scope(Scope::Read),
        search,
    )
}

/// Masks PII in the message and every field of each record: `None` for a record a `drop`
/// action refuses; and the findings per kind.
pub(crate) fn mask(
    state: &AppState,
    tenant: &TenantId,
    records: Vec<LogRecord>,
) -> (Vec<Option<LogRecord>>, Map<String, Value>) {
    let salt = dozor_ingest::pii::tenant_salt(&state.settings().pii_salt.0, tenant);
    let mut counts = Default::default();
    let out = records
        .into_iter()
        .map(|mut r| {
            let drop = state.masker().mask_record(&mut r, &salt, &mut counts);
            (!drop).then_some(r)
        })
        .collect();
    let counts = counts
        .into_iter()
        .map(|(k, v)| (k.tag().to_ascii_lowercase(), json!(v)))
        .collect();
    (out, counts)
}

/// Appends (masked) records to the caller's tenant, off the async workers; answers once
/// they are in the WAL.
pub(crate) async fn store(
    state: &AppState,
    principal: &Principal,
    records: Vec<LogRecord>,
) -> Result<dozor_logs::AppendStats, ApiError> {
    if records.is_empty() {
        return Ok(dozor_logs::AppendStats::default());
    }
    let db = state
        .logs()
        .tenant(&principal.tenant)
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || db.append(&records))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            dozor_logs::LogsError::Limit(m) => ApiError::bad_data(m),
            e if e.is_disk_full() => {
                tracing::error!(error = %e, "disk full: refusing log records");
                ApiError::insufficient_storage("the disk is full; records were not stored")
            }
            e => ApiError::internal(e),
        })
}

/// `a,b, c` as field names.
pub(crate) fn field_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut opts = NdjsonOptions::new(dozor_model::time::now_ms().saturating_mul(1_000_000));
    let query = Params::parse("", query.as_deref().unwrap_or(""))?;
    if let Some(fields) = query.get("_stream_fields") {
        opts.stream_fields = field_list(fields);
    }
    let records = ndjson::parse(&body, &opts).map_err(|e| ApiError::bad_data(e.to_string()))?;
    let _permit = state.ingest_permit()?;
    let total = records.len();
    let (records, masked) = mask(&state, &principal.tenant, records);
    let records: Vec<LogRecord> = records.into_iter().flatten().collect();
    let dropped = total - records.len();
    let stats = store(&state, &principal, records).await?;
    Ok(success(json!({
        "accepted": stats.accepted,
        "dropped": dropped,
        "masked": masked,
    }))
    .into_response())
}

async fn search(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let selector = params.required("query")?;
    let not_a_selector = || {
        ApiError::bad_data(format!(
            "invalid parameter \"query\": {selector:?} is not a stream selector such as {{service=\"shop\"}}"
        ))
    };
    if !selector.trim_start().starts_with('{') {
        return Err(not_a_selector());
    }
    let mut groups = parse_selector(selector).map_err(|_| not_a_selector())?;
    if groups.len() != 1 {
        return Err(ApiError::bad_data(
            "invalid parameter \"query\": one stream selector, without `or`",
        ));
    }
    let now_ms = dozor_model::time::now_ms();
    let end_ms = params.time("end", now_ms)?;
    let start_ms = params.time("start", end_ms.saturating_sub(3_600_000))?;
    if start_ms > end_ms {
        return Err(ApiError::bad_data(
            "invalid parameter \"start\": after \"end\"",
        ));
    }
    let limit = params.limit()?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"limit\": at most {MAX_LIMIT}"
        )));
    }
    let mut q = LogQuery::new(
        groups.remove(0),
        start_ms.saturating_mul(1_000_000),
        end_ms.saturating_mul(1_000_000).saturating_add(999_999),
    );
    q.limit = limit;
    for needle in params.all("contains") {
        q = q.containing(needle);
    }
    q.direction = match params.get("direction") {
        None | Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"direction\": {other:?} is neither forward nor backward"
            )));
        }
    };
    let found = match state.logs().existing(&principal.tenant) {
        Some(db) => tokio::task::spawn_blocking(move || db.select(&q))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "logs.search",
        "logs",
        Outcome::Success,
    )
    .source(source)
    .detail("query", params.raw())
    .detail("lines", found.len().to_string());
    state.audit_entry(entry).await?;
    let records: Vec<Value> = found.iter().map(record_json).collect();
    Ok(success(json!({ "records": records })).into_response())
}

fn record_json(r: &LogRecord) -> Value {
    let stream: Map<String, Value> = r
        .stream
        .iter()
        .map(|l| (l.name.clone(), json!(l.value)))
        .collect();
    let fields: Map<String, Value> = r
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "time": rfc3339_ns(r.time_ns),
        "time_ns": r.time_ns.to_string(),
        "stream": stream,
        "message": r.message,
        "fields": fields,
    })
}

/// RFC 3339 with nanoseconds, UTC.
fn rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Ok(secs) = u64::try_from(secs) else {
        return ns.to_string();
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    humantime::format_rfc3339_nanos(t).to_string()
}
