//! `GET /api/v1/status` (seed 004's status route: version, uptime, storage), the history of
//! self-metrics for the UI chart, `/metrics`, and Prometheus' status routes
//! `/api/v1/status/buildinfo`, `/api/v1/status/runtimeinfo` and `/api/v1/status/tsdb` (head
//! statistics of the caller's tenant, audited).

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use dozor_model::Scope;
use serde_json::json;

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/status",
        Policy::Scope(Scope::Read),
        status,
    )
    .route(
        Method::GET,
        "/api/v1/status/history",
        Policy::Scope(Scope::Read),
        history,
    )
    .route(Method::GET, "/metrics", Policy::Scope(Scope::Read), metrics)
    .route(
        Method::GET,
        "/api/v1/status/buildinfo",
        Policy::Scope(Scope::Read),
        buildinfo,
    )
    .route(
        Method::GET,
        "/api/v1/status/runtimeinfo",
        Policy::Scope(Scope::Read),
        runtimeinfo,
    )
    .route(
        Method::GET,
        "/api/v1/status/tsdb",
        Policy::Scope(Scope::Read),
        tsdb_status,
    )
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<impl IntoResponse, ApiError> {
    let data_dir = state.data_dir();
    let state_db = data_dir.join("state.db");
    let audit_chain = dozor_audit::files::audit_dir(data_dir).join(dozor_audit::files::CHAIN);
    Ok(success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "build": {"profile": if cfg!(debug_assertions) { "debug" } else { "release" }},
        "startedAt": state.started_ms(),
        "uptimeSeconds": state.uptime().as_secs_f64(),
        "tenant": principal.tenant,
        "stateStore": {"backend": format!("{:?}", state.store().backend()).to_lowercase()},
        "storage": {
            "stateDbBytes": file_size(&state_db),
            "auditRecords": state.audit().len(),
            "auditBytes": file_size(&audit_chain),
        },
    })))
}

async fn history(State(state): State<AppState>) -> impl IntoResponse {
    success(json!({"series": state.metrics().history()}))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Prometheus' build information, with Dozor's version (Go-specific fields empty).
async fn buildinfo() -> impl IntoResponse {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// Formats a time (ms) as RFC 3339 with milliseconds, UTC.
fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(t).to_string()
}

/// Prometheus' runtime information, with what Dozor knows (no Go runtime: counts are 0).
async fn runtimeinfo(State(state): State<AppState>) -> impl IntoResponse {
    let retention = state.tsdb().options().retention_ms.map_or_else(
        || "0s".to_owned(),
        |ms| {
            promql_parser::util::duration::display_duration(&std::time::Duration::from_millis(
                ms.max(0).unsigned_abs(),
            ))
        },
    );
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    success(json!({
        "startTime": rfc3339(state.started_ms()),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": rfc3339(state.started_ms()),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map_or(1, usize::from),
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": retention,
    }))
}

/// Head statistics of the caller's tenant, in Prometheus' shape: series count, label pairs,
/// time range, and the ten labels with the most values. Counts that need a scan of every
/// series (series per metric name, memory per label, series per label pair) are empty
/// lists; `chunkCount` is left out (not tracked).
async fn tsdb_status(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    if state.visibility(&principal)?.is_restricted() {
        return Err(ApiError::forbidden(
            "head statistics cover every service and data class; this role sees only part",
        ));
    }
    audit_read(&state, &principal, source, "tsdb_status", "").await?;
    let db = state.tsdb().existing(&principal.tenant);
    let stats = tokio::task::spawn_blocking(move || {
        let Some(db) = db else {
            return (0, 0, None, Vec::new());
        };
        let head = db.head();
        let mut counts: Vec<(String, usize)> = head
            .label_names()
            .into_iter()
            .map(|n| {
                let c = head.label_values(&n).len();
                (n, c)
            })
            .collect();
        let pairs = counts.iter().map(|(_, c)| c).sum::<usize>();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(10);
        (head.num_series(), pairs, head.time_range(), counts)
    })
    .await
    .map_err(ApiError::internal)?;
    let (num_series, pairs, range, counts) = stats;
    // Prometheus reports an empty head as minTime > maxTime (math.MaxInt64, math.MinInt64).
    let (min_t, max_t) = range.unwrap_or((i64::MAX, i64::MIN));
    Ok(success(json!({
        "headStats": {
            "numSeries": num_series,
            "numLabelPairs": pairs,
            "minTime": min_t,
            "maxTime": max_t,
        },
        "seriesCountByMetricName": [],
        "labelValueCountByLabelName": counts
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect::<Vec<_>>(),
        "memoryInBytesByLabelName": [],
        "seriesCountByLabelValuePair": [],
    })))
}
