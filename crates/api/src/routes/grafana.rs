//! Seed 004's Grafana JSON data source (the "simple JSON" protocol) under
//! `/api/v1/grafana`: `GET /` (connection test), `POST /search` (metric names),
//! `POST /query` (each target is PromQL, evaluated by the same engine as
//! `/api/v1/query_range`) and `POST /annotations` (empty until alerts exist). Read scope,
//! the caller's tenant only, audited like the other metric reads.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use dozor_model::labels::METRIC_NAME;
use dozor_model::{Labels, Scope};
use dozor_promql::Value;
use dozor_tsdb::Queryable;
use serde::Deserialize;
use serde_json::json;

use crate::params::parse_time;
use crate::policy::{Policy, Registry};
use crate::routes::query::{QuerySpec, engine_options, parse_query, run};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Longest request body recorded in the audit chain.
const MAX_AUDIT_DETAIL: usize = 4096;

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    r.route(Method::GET, "/api/v1/grafana", read, test_connection)
        .route(Method::GET, "/api/v1/grafana/", read, test_connection)
        .route(Method::POST, "/api/v1/grafana/search", read, search)
        .route(Method::POST, "/api/v1/grafana/query", read, query)
        .route(
            Method::POST,
            "/api/v1/grafana/annotations",
            read,
            annotations,
        )
}

/// Parses a JSON body; an empty body is `T::default()`.
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_data(format!("body: {e}")))
}

/// The body as audit detail, cut to a bounded length.
fn detail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut cut = text.len().min(MAX_AUDIT_DETAIL);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

async fn test_connection() -> impl IntoResponse {
    axum::Json(json!({"status": "ok", "message": "Dozor Grafana JSON data source"}))
}

#[derive(Debug, Default, Deserialize)]
struct SearchRequest {
    #[serde(default)]
    target: Option<String>,
}

/// Metric names of the tenant, those containing `target` when one is given.
async fn search(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: SearchRequest = body(&bytes)?;
    audit_read(
        &state,
        &principal,
        source,
        "grafana_search",
        &detail(&bytes),
    )
    .await?;
    let Some(db) = state.metric_reader(&principal)? else {
        return Ok(axum::Json(Vec::<String>::new()).into_response());
    };
    let mut names =
        tokio::task::spawn_blocking(move || db.label_values(METRIC_NAME, &[], i64::MIN, i64::MAX))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    if let Some(t) = req.target.filter(|t| !t.is_empty()) {
        names.retain(|n| n.contains(&t));
    }
    Ok(axum::Json(names).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryRequest {
    #[serde(default)]
    range: Range,
    #[serde(default)]
    interval_ms: Option<i64>,
    #[serde(default)]
    max_data_points: Option<i64>,
    #[serde(default)]
    targets: Vec<Target>,
}

#[derive(Debug, Default, Deserialize)]
struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Debug, Default, Deserialize)]
struct Target {
    #[serde(default)]
    target: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    hide: bool,
}

/// `up{instance="a", job="api"}`, as Prometheus prints a series.
fn series_name(labels: &Labels, fallback: &str) -> String {
    if labels.is_empty() {
        return fallback.to_owned();
    }
    let mut out = labels.get(METRIC_NAME).unwrap_or("").to_owned();
    let rest: Vec<String> = labels
        .iter()
        .filter(|l| l.name != METRIC_NAME)
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    if !rest.is_empty() || out.is_empty() {
        out.push('{');
        out.push_str(&rest.join(", "));
        out.push('}');
    }
    out
}

/// A number for Grafana: non-finite values become `null`.
fn number(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// Each target as PromQL over `range`: time series (`[{target, datapoints: [[v, ms]]}]`)
/// from a range query whose step is `intervalMs`, widened so that at most `maxDataPoints`
/// points come back, with start and end aligned to it; or, for `"type": "table"`, a table
/// of the instant query at `range.to`.
async fn query(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: QueryRequest = body(&bytes)?;
    let bad_time = |field: &str, v: &str| {
        ApiError::bad_data(format!(
            "range.{field}: cannot parse {v:?} to a valid timestamp"
        ))
    };
    let from = parse_time(&req.range.from).map_err(|_| bad_time("from", &req.range.from))?;
    let to = parse_time(&req.range.to).map_err(|_| bad_time("to", &req.range.to))?;
    if to < from {
        return Err(ApiError::bad_data(
            "range.to: must not be before range.from",
        ));
    }
    let mut step = req.interval_ms.unwrap_or(15_000).max(1);
    if let Some(points) = req.max_data_points.filter(|p| *p > 0) {
        step = step.max((to - from + points - 1) / points);
    }
    if (to - from) / step > 11_000 {
        step = (to - from + 10_999) / 11_000;
    }
    let start = from.div_euclid(step) * step;
    let end = to.div_euclid(step) * step;
    let mut targets = Vec::new();
    for (i, t) in req.targets.iter().enumerate() {
        if t.hide || t.target.trim().is_empty() {
            continue;
        }
        let expr = parse_query(&t.target)
            .map_err(|e| ApiError::bad_data(format!("targets[{i}].target: {}", e.message())))?;
        targets.push((t, expr));
    }
    audit_read(&state, &principal, source, "grafana_query", &detail(&bytes)).await?;
    let opts = engine_options(&state, &crate::params::Params::default())?;
    let mut out = Vec::new();
    for (t, expr) in targets {
        if t.kind.as_deref() == Some("table") {
            let spec = QuerySpec {
                expr,
                start: to,
                end: to,
                step: 0,
                instant: true,
            };
            let res = run(&state, &principal, opts, spec).await?;
            out.push(table(&res.value));
            continue;
        }
        let spec = QuerySpec {
            expr,
            start,
            end,
            step,
            instant: false,
        };
        let res = run(&state, &principal, opts, spec).await?;
        if let Value::Matrix(series) = res.value {
            for s in series {
                let datapoints: Vec<serde_json::Value> = s
                    .samples
                    .iter()
                    .map(|p| json!([number(p.v), p.t]))
                    .collect();
                out.push(json!({
                    "target": series_name(&s.labels, &t.target),
                    "datapoints": datapoints,
                }));
            }
        }
    }
    Ok(axum::Json(out).into_response())
}

/// An instant result as a Grafana table: Time, one column per label, Value.
fn table(value: &Value) -> serde_json::Value {
    let samples: Vec<(&Labels, i64, f64)> = match value {
        Value::Vector(v) => v.iter().map(|s| (&s.labels, s.t, s.v)).collect(),
        Value::Scalar { t, v } => vec![(&EMPTY, *t, *v)],
        Value::Matrix(m) => m
            .iter()
            .filter_map(|s| s.samples.last().map(|p| (&s.labels, p.t, p.v)))
            .collect(),
        Value::String { .. } => Vec::new(),
    };
    let mut names: Vec<&str> = samples
        .iter()
        .flat_map(|(l, _, _)| l.iter().map(|x| x.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut columns = vec![json!({"text": "Time", "type": "time"})];
    columns.extend(names.iter().map(|n| json!({"text": n, "type": "string"})));
    columns.push(json!({"text": "Value", "type": "number"}));
    let rows: Vec<serde_json::Value> = samples
        .iter()
        .map(|(l, t, v)| {
            let mut row = vec![json!(t)];
            row.extend(names.iter().map(|n| json!(l.get(n).unwrap_or(""))));
            row.push(number(*v));
            serde_json::Value::Array(row)
        })
        .collect();
    json!({"type": "table", "columns": columns, "rows": rows})
}

static EMPTY: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(Labels::default);

/// Annotations: none until alerting exists.
async fn annotations(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    audit_read(
        &state,
        &principal,
        source,
        "grafana_annotations",
        &detail(&bytes),
    )
    .await?;
    Ok(axum::Json(Vec::<serde_json::Value>::new()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_as_prometheus_prints_them() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("a", "x\"y")]).unwrap();
        assert_eq!(series_name(&l, "q"), r#"up{a="x\"y", job="api"}"#);
        assert_eq!(series_name(&Labels::default(), "1 + 1"), "1 + 1");
        let l = Labels::from_pairs([("job", "api")]).unwrap();
        assert_eq!(series_name(&l, "q"), r#"{job="api"}"#);
    }
}
