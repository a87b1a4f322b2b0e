//! Logs: NDJSON ingest (`POST /api/v1/logs/ingest`, scope `ingest`), business events
//! (`POST /api/v1/events`, scope `ingest`) and search (`GET|POST /api/v1/logs/search`,
//! scope `read`).
//!
//! Ingest decodes the whole body first (a bad line is a 400 naming it, and nothing is
//! stored), masks PII in every message and field with the tenant's salt, leaves out records
//! a `drop` action refuses, and answers once the rest are in the WAL. Every search is
//! recorded in the audit chain before it is answered: who read which streams with what
//! filter, and how many lines came back (seed 002's log-access audit).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use dozor_ingest::ndjson::{self, NdjsonOptions};
use dozor_logs::Direction;
use dozor_logs::logql::{
    self,
    ast::{LineFilter, LineOp, LineValue, Stage},
    pipeline::Origin,
};
use dozor_model::{LogRecord, Scope, TenantId};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::loki_query::audit_log_read;
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
        Method::POST,
        "/api/v1/events",
        Policy::Scope(Scope::Ingest),
        events,
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

/// Parses each record by the pipeline (`logs.pipeline`, level normalisation), then masks
/// PII in the message and every field: `None` for a record a `drop` action refuses; and the
/// findings per kind. For callers that answer per record (`_bulk`); the others take
/// [`mask_kept`].
pub(crate) fn mask(
    state: &AppState,
    tenant: &TenantId,
    records: Vec<LogRecord>,
) -> (Vec<Option<LogRecord>>, Map<String, Value>) {
    let mut masking = Masking::new(state, tenant);
    let out = records.into_iter().map(|r| masking.one(r)).collect();
    (out, masking.counts())
}

/// [`mask`], keeping only the records to store. They stay in the vector they came in (a
/// `filter_map` over it is collected in place): a second vector per request was fresh
/// pages to fault in, about 1 % of ingest CPU.
pub(crate) fn mask_kept(
    state: &AppState,
    tenant: &TenantId,
    records: Vec<LogRecord>,
) -> (Vec<LogRecord>, Map<String, Value>) {
    let mut masking = Masking::new(state, tenant);
    let out = records.into_iter().filter_map(|r| masking.one(r)).collect();
    (out, masking.counts())
}

/// The pipeline and the masker over one request's records, counting findings.
struct Masking<'s> {
    state: &'s AppState,
    salt: Vec<u8>,
    counts: std::collections::BTreeMap<dozor_ingest::pii::PiiKind, u64>,
}

impl<'s> Masking<'s> {
    fn new(state: &'s AppState, tenant: &TenantId) -> Masking<'s> {
        Masking {
            state,
            salt: dozor_ingest::pii::tenant_salt(&state.settings().pii_salt.0, tenant),
            counts: Default::default(),
        }
    }

    /// The record parsed and masked, or `None` when a `drop` action refuses it.
    fn one(&mut self, mut r: LogRecord) -> Option<LogRecord> {
        self.state.settings().pipeline.apply(&mut r);
        let drop = self
            .state
            .masker()
            .mask_record(&mut r, &self.salt, &mut self.counts);
        (!drop).then_some(r)
    }

    fn counts(self) -> Map<String, Value> {
        self.counts
            .into_iter()
            .map(|(k, v)| (k.tag().to_ascii_lowercase(), json!(v)))
            .collect()
    }
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
    let forward = Arc::clone(&state.settings().forward);
    let tenant = principal.tenant.clone();
    tokio::task::spawn_blocking(move || {
        // Forwarded records are in the Kafka outbox before they are stored and acknowledged.
        if !forward.is_empty() {
            forward
                .logs(&tenant, &records)
                .map_err(|e| Err(crate::routes::ingest::outbox_refused(&e)))?;
        }
        let stats = db.append(records).map_err(Ok)?;
        // The records are durable in the WAL: a failed flush is retried by maintenance and
        // must not turn an accepted request into an error (the client would resend).
        if let Err(e) = db.flush_if_full() {
            tracing::warn!(error = %e, "log head flush failed; maintenance retries it");
        }
        Ok::<_, Result<dozor_logs::LogsError, ApiError>>(stats)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        Err(refused) => refused,
        Ok(e) => logs_error(e),
    })
}

/// A log store error as the answer to an ingest request.
fn logs_error(e: dozor_logs::LogsError) -> ApiError {
    match e {
        dozor_logs::LogsError::Limit(m) => ApiError::bad_data(m),
        e if e.is_disk_full() => {
            tracing::error!(error = %e, "disk full: refusing log records");
            ApiError::insufficient_storage("the disk is full; records were not stored")
        }
        e => ApiError::internal(e),
    }
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
    let _permit = state.ingest_permit()?;
    // Each record is parsed by the pipeline and masked as soon as it is read.
    let mut masking = Masking::new(&state, &principal.tenant);
    let mut total = 0;
    let records = ndjson::parse_with(&body, &opts, |r| {
        total += 1;
        masking.one(r)
    })
    .map_err(|e| ApiError::bad_data(e.to_string()))?;
    store_and_answer(&state, &principal, total, records, masking.counts()).await
}

/// Business events (`dozor_ingest::events`): decoded whole, masked and stored like logs.
async fn events(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
    let records = dozor_ingest::events::parse(&body, now_ns, None)
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    ingest_records(&state, &principal, records).await
}

/// Masks, stores and answers `{accepted, dropped, masked}`.
async fn ingest_records(
    state: &AppState,
    principal: &Principal,
    records: Vec<LogRecord>,
) -> Result<Response, ApiError> {
    let _permit = state.ingest_permit()?;
    let total = records.len();
    let (records, masked) = mask_kept(state, &principal.tenant, records);
    store_and_answer(state, principal, total, records, masked).await
}

/// Stores masked records (`total` were read) and answers `{accepted, dropped, masked}`.
async fn store_and_answer(
    state: &AppState,
    principal: &Principal,
    total: usize,
    records: Vec<LogRecord>,
    masked: Map<String, Value>,
) -> Result<Response, ApiError> {
    let dropped = total - records.len();
    let stats = store(state, principal, records).await?;
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
    let query = params.required("query")?;
    let mut log = match logql::parse(query) {
        Ok(logql::Expr::Log(log)) => log,
        Ok(logql::Expr::Metric(_)) => {
            return Err(ApiError::bad_data(
                "invalid parameter \"query\": a log query such as {service=\"shop\"} |= \"failed\", not a metric query",
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"query\": {e} (a log query is a stream selector such as {{service=\"shop\"}}, then an optional pipeline)"
            )));
        }
    };
    // `contains=` needles are `|=` filters in front of the pipeline.
    let needles: Vec<Stage> = params
        .all("contains")
        .filter(|n| !n.is_empty())
        .map(|n| {
            Stage::Line(LineFilter {
                op: LineOp::Contains,
                values: vec![LineValue::Text(n.to_owned())],
            })
        })
        .collect();
    log.pipeline.splice(0..0, needles);
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
    let direction = match params.get("direction") {
        None | Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"direction\": {other:?} is neither forward nor backward"
            )));
        }
    };
    let mut range = logql::Range {
        start_ns: start_ms.saturating_mul(1_000_000),
        end_ns: end_ms.saturating_mul(1_000_000).saturating_add(999_999),
        step_ns: 0,
        limit,
        direction,
    };
    // A cursor `<time_ns>.<n>` continues a page: from that time on (in the direction), the
    // first n lines at exactly that time were already returned.
    let cursor = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter \"cursor\": {c:?} is not a cursor from a previous page"
            ))
        })?),
    };
    if let Some((t, skip)) = cursor {
        match direction {
            Direction::Backward => range.end_ns = range.end_ns.min(t),
            Direction::Forward => range.start_ns = range.start_ns.max(t),
        }
        range.limit = limit.saturating_add(skip);
    }
    let mut lines = super::loki_query::select_lines(&state, &principal, log, range).await?;
    if let Some((t, skip)) = cursor {
        let at_cursor = lines.iter().take_while(|l| l.time_ns == t).count();
        lines.drain(..skip.min(at_cursor));
        lines.truncate(limit);
    }
    let next = (lines.len() == limit).then(|| {
        let last = lines[lines.len() - 1].time_ns;
        let mut n = lines.iter().rev().take_while(|l| l.time_ns == last).count();
        if let Some((t, skip)) = cursor
            && t == last
            && n == lines.len()
        {
            n += skip;
        }
        format!("{last}.{n}")
    });
    let count = lines.len() as u64;
    audit_log_read(
        &state,
        &principal,
        source,
        "logs.search",
        params.raw(),
        "lines",
        count,
    )
    .await?;
    let records: Vec<Value> = lines.iter().map(line_json).collect();
    Ok(success(json!({ "records": records, "next": next })).into_response())
}

fn parse_cursor(c: &str) -> Option<(i64, usize)> {
    let (t, n) = c.split_once('.')?;
    Some((t.parse().ok()?, n.parse().ok()?))
}

/// A line as the search returns it: the stream's labels apart from the fields and what
/// parsers extracted.
fn line_json(l: &logql::pipeline::Line) -> Value {
    let mut stream = Map::new();
    let mut fields = Map::new();
    for (name, value, origin) in l.labels.with_origin() {
        match origin {
            Origin::Stream => stream.insert(name.to_owned(), json!(value)),
            Origin::Field | Origin::Extracted => fields.insert(name.to_owned(), json!(value)),
        };
    }
    json!({
        "time": rfc3339_ns(l.time_ns),
        "time_ns": l.time_ns.to_string(),
        "stream": stream,
        "message": l.line,
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
