//! Loki's query API (scope `read`), so Grafana's Loki data source, `logcli` and Loki
//! clients read Dozor's logs: `query` (instant), `query_range`, `labels`,
//! `label/{name}/values`, `series`, `index/stats`, `status/buildinfo`, and `tail` (see
//! [`super::loki_tail`]).
//!
//! Times are Loki's: nanoseconds since the epoch, Unix seconds (ten digits or fewer, or
//! with a fraction), or RFC 3339. Answers have Loki's shapes: `streams` results as
//! `[["<ns>", "<line>"], …]`, `matrix`/`vector` values as `[<seconds>, "<value>"]`. Every
//! read is recorded in the audit chain (action `logs.query`: who, which query, how many
//! lines or series), as the log search is.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_logs::Direction;
use dozor_logs::logql::{self, EvalError, QueryResult, Range};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};
use dozor_model::Scope;

/// Lines a log query returns by default (Loki's default).
const DEFAULT_LIMIT: usize = 100;
/// Most lines one log query returns.
const MAX_LIMIT: usize = 10_000;
/// The Loki version whose API this mirrors (Grafana picks features by it).
pub(crate) const LOKI_VERSION: &str = "3.0.0";

pub(crate) fn register(r: Registry) -> Registry {
    let read = || Policy::Scope(Scope::Read);
    let mut r = r;
    for method in [Method::GET, Method::POST] {
        r = r
            .route(method.clone(), "/loki/api/v1/query", read(), query)
            .route(
                method.clone(),
                "/loki/api/v1/query_range",
                read(),
                query_range,
            )
            .route(method.clone(), "/loki/api/v1/labels", read(), labels)
            .route(method.clone(), "/loki/api/v1/series", read(), series)
            .route(
                method.clone(),
                "/loki/api/v1/index/stats",
                read(),
                index_stats,
            );
    }
    r.route(
        Method::GET,
        "/loki/api/v1/label/{name}/values",
        read(),
        label_values,
    )
    .route(
        Method::GET,
        "/loki/api/v1/status/buildinfo",
        read(),
        buildinfo,
    )
}

/// A Loki time parameter, in ns.
pub(crate) fn loki_time(params: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => parse_loki_time(v).ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter \"{name}\": cannot parse {v:?} as nanoseconds, Unix seconds or RFC 3339"
            ))
        }),
    }
}

/// Loki's rule: a number with a fraction is seconds; an integer of ten digits or fewer is
/// seconds, a longer one nanoseconds; anything else RFC 3339.
pub(crate) fn parse_loki_time(v: &str) -> Option<i64> {
    if v.contains('.')
        && let Ok(secs) = v.parse::<f64>()
    {
        let ns = secs * 1e9;
        return (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64);
    }
    if let Ok(n) = v.parse::<i64>() {
        let digits = v.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(1_000_000_000)
        } else {
            Some(n)
        };
    }
    crate::params::parse_time(v).ok()?.checked_mul(1_000_000)
}

fn now_ns() -> i64 {
    dozor_model::time::now_ms().saturating_mul(1_000_000)
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    let limit = params.limit()?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"limit\": at most {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

fn direction(params: &Params) -> Result<Direction, ApiError> {
    match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(ApiError::bad_data(format!(
            "invalid parameter \"direction\": {other:?} is neither forward nor backward"
        ))),
    }
}

/// The parsed `query` parameter, or a 400 naming it.
pub(crate) fn parse_query(params: &Params) -> Result<logql::Expr, ApiError> {
    let q = params.required("query")?;
    logql::parse(q).map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// Runs a query off the async workers over the caller's tenant.
pub(crate) async fn run(
    state: &AppState,
    principal: &Principal,
    expr: logql::Expr,
    range: Range,
) -> Result<(QueryResult, logql::Stats), ApiError> {
    let db = state.log_reader(principal)?;
    tokio::task::spawn_blocking(move || match &db {
        Some(db) => logql::evaluate(db, &expr, range),
        None => logql::evaluate(&logql::Empty, &expr, range),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(eval_error)
}

/// The lines of a log query over the caller's logs (no lines where it has no log store).
pub(crate) async fn select_lines(
    state: &AppState,
    principal: &Principal,
    log: logql::ast::LogExpr,
    range: Range,
) -> Result<Vec<logql::pipeline::Line>, ApiError> {
    let db = state.log_reader(principal)?;
    tokio::task::spawn_blocking(move || {
        let mut stats = logql::Stats::default();
        match &db {
            Some(db) => logql::select_lines(db, &log, range, &mut stats),
            None => Ok(Vec::new()),
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(eval_error)
}

fn eval_error(e: EvalError) -> ApiError {
    match e {
        EvalError::Bad(m) => ApiError::bad_data(format!("invalid parameter \"query\": {m}")),
        EvalError::Store(e) => ApiError::internal(e),
    }
}

/// Records a read in the audit chain.
pub(crate) async fn audit_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    query: &str,
    returned: u64,
) -> Result<(), ApiError> {
    audit_log_read(
        state,
        principal,
        source,
        "logs.query",
        query,
        "returned",
        returned,
    )
    .await
}

/// Appends a read of logs to the audit chain: who, the action, the query, and how many
/// lines or series (under `count_name`) came back.
pub(crate) async fn audit_log_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    query: &str,
    count_name: &str,
    count: u64,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        "logs",
        Outcome::Success,
    )
    .source(source)
    .detail("query", query)
    .detail(count_name, count.to_string());
    state.audit_entry(entry).await
}

async fn query(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    if matches!(expr, logql::Expr::Log(_)) {
        return Err(ApiError::bad_data(
            "invalid parameter \"query\": log queries are not supported as an instant query; use query_range",
        ));
    }
    let at = loki_time(&params, "time", now_ns())?;
    let range = Range {
        start_ns: at,
        end_ns: at,
        step_ns: 0,
        limit: limit(&params)?,
        direction: direction(&params)?,
    };
    answer(&state, &principal, source, &params, expr, range).await
}

async fn query_range(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    let end = loki_time(&params, "end", now_ns())?;
    let since = params
        .duration("since")?
        .unwrap_or(3_600_000)
        .saturating_mul(1_000_000);
    let start = loki_time(&params, "start", end.saturating_sub(since))?;
    if start > end {
        return Err(ApiError::bad_data(
            "invalid parameter \"start\": after \"end\"",
        ));
    }
    let step_ns = match params.duration("step")? {
        Some(ms) if ms <= 0 => {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted",
            ));
        }
        Some(ms) => ms.saturating_mul(1_000_000),
        // Loki's default: about 250 points, at least a second.
        None => ((end - start) / 250).max(1_000_000_000),
    };
    let range = Range {
        start_ns: start,
        end_ns: end,
        step_ns,
        limit: limit(&params)?,
        direction: direction(&params)?,
    };
    answer(&state, &principal, source, &params, expr, range).await
}

async fn answer(
    state: &AppState,
    principal: &Principal,
    source: String,
    params: &Params,
    expr: logql::Expr,
    range: Range,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let (result, stats) = run(state, principal, expr, range).await?;
    audit_read(
        state,
        principal,
        source,
        params.get("query").unwrap_or(""),
        stats.returned,
    )
    .await?;
    let mut data = result_json(&result);
    data["stats"] = json!({
        "summary": {
            "totalLinesProcessed": stats.lines_scanned,
            "totalBytesProcessed": stats.bytes_scanned,
            "execTime": started.elapsed().as_secs_f64(),
        }
    });
    Ok(success(data).into_response())
}

/// A label set as a JSON object.
pub(crate) fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

fn seconds(ns: i64) -> Value {
    // Whole seconds print as integers, as Loki's do; else milliseconds as a fraction.
    if ns % 1_000_000_000 == 0 {
        json!(ns / 1_000_000_000)
    } else {
        json!(ns as f64 / 1e9)
    }
}

/// A number as Prometheus prints it.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// A query result in Loki's shape (`resultType` and `result`).
pub(crate) fn result_json(r: &QueryResult) -> Value {
    match r {
        QueryResult::Streams(streams) => json!({
            "resultType": "streams",
            "result": streams.iter().map(streams_json).collect::<Vec<_>>(),
        }),
        QueryResult::Matrix(series) => json!({
            "resultType": "matrix",
            "result": series.iter().map(|s| json!({
                "metric": labels_json(&s.labels),
                "values": s.points.iter().map(|(t, v)| json!([seconds(*t), value_text(*v)])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        QueryResult::Vector(series) => json!({
            "resultType": "vector",
            "result": series.iter().map(|s| json!({
                "metric": labels_json(&s.labels),
                "value": [seconds(s.points[0].0), value_text(s.points[0].1)],
            })).collect::<Vec<_>>(),
        }),
        QueryResult::Scalar(t, v) => json!({
            "resultType": "scalar",
            "result": [seconds(*t), value_text(*v)],
        }),
    }
}

/// One stream in Loki's shape.
pub(crate) fn streams_json(s: &logql::Stream) -> Value {
    json!({
        "stream": labels_json(&s.labels),
        "values": s.entries.iter().map(|(t, l)| json!([t.to_string(), l])).collect::<Vec<_>>(),
    })
}

/// The time range of a metadata request (default: the last 6 hours, as Loki).
fn meta_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let end = loki_time(params, "end", now_ns())?;
    let since = params
        .duration("since")?
        .unwrap_or(6 * 3_600_000)
        .saturating_mul(1_000_000);
    let start = loki_time(params, "start", end.saturating_sub(since))?;
    Ok((start, end))
}

/// The stream selectors of parameter `name` (repeatable), or a 400 naming it.
fn selectors(params: &Params, name: &str) -> Result<Vec<Vec<dozor_model::Matcher>>, ApiError> {
    params
        .all(name)
        .map(|s| match logql::parse(s) {
            Ok(logql::Expr::Log(l)) => Ok(l.selector),
            Ok(logql::Expr::Metric(_)) => Err(ApiError::bad_data(format!(
                "invalid parameter \"{name}\": a stream selector such as {{service=\"shop\"}}"
            ))),
            Err(e) => Err(ApiError::bad_data(format!(
                "invalid parameter \"{name}\": {e}"
            ))),
        })
        .collect()
}

/// Streams of the caller's tenant in the range, selected by the `query` or `match[]`
/// selectors (none: all).
async fn streams(
    state: &AppState,
    principal: &Principal,
    params: &Params,
    selector_param: &str,
) -> Result<Vec<dozor_model::Labels>, ApiError> {
    let (start, end) = meta_range(params)?;
    let selectors = selectors(params, selector_param)?;
    let Some(db) = state.log_reader(principal)? else {
        return Ok(Vec::new());
    };
    tokio::task::spawn_blocking(move || {
        if selectors.is_empty() {
            return db.streams(&[], start, end);
        }
        let mut all: Vec<dozor_model::Labels> = selectors
            .iter()
            .flat_map(|m| db.streams(m, start, end))
            .collect();
        all.sort();
        all.dedup();
        all
    })
    .await
    .map_err(ApiError::internal)
}

async fn labels(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let found = streams(&state, &principal, &params, "query").await?;
    let mut names: Vec<&str> = found
        .iter()
        .flat_map(|l| l.iter().map(|l| l.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    audit_read(&state, &principal, source, "labels", names.len() as u64).await?;
    Ok(success(names).into_response())
}

async fn label_values(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let found = streams(&state, &principal, &params, "query").await?;
    let mut values: Vec<&str> = found.iter().filter_map(|l| l.get(&name)).collect();
    values.sort_unstable();
    values.dedup();
    audit_read(
        &state,
        &principal,
        source,
        &format!("label {name} values"),
        values.len() as u64,
    )
    .await?;
    Ok(success(values).into_response())
}

async fn series(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let found = streams(&state, &principal, &params, "match[]").await?;
    let out: Vec<Value> = found
        .iter()
        .map(|l| Value::Object(l.iter().map(|l| (l.name.clone(), json!(l.value))).collect()))
        .collect();
    audit_read(&state, &principal, source, params.raw(), out.len() as u64).await?;
    Ok(success(out).into_response())
}

/// Grafana asks for index statistics before a query (to show how much it will read): the
/// streams, and the records and bytes of the head and the blocks the selector and range
/// touch, from block headers alone.
async fn index_stats(
    State(state): State<AppState>,
    principal: Principal,
    params: Params,
) -> Result<Response, ApiError> {
    let (start, end) = meta_range(&params)?;
    let matchers = selectors(&params, "query")?
        .into_iter()
        .next()
        .unwrap_or_default();
    let (streams, (entries, bytes)) = match state.log_reader(&principal)? {
        Some(db) => tokio::task::spawn_blocking(move || {
            (
                db.streams(&matchers, start, end).len(),
                db.estimate(&matchers, start, end),
            )
        })
        .await
        .map_err(ApiError::internal)?,
        None => (0, (0, 0)),
    };
    Ok(axum::Json(json!({
        "streams": streams,
        "chunks": streams,
        "entries": entries,
        "bytes": bytes,
    }))
    .into_response())
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": LOKI_VERSION,
        "revision": concat!("dozor-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}
