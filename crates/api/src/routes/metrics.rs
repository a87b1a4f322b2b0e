//! Seed 004's metric read routes: `GET /api/v1/metrics` (the newest sample of each series in
//! a window, filtered by `name` and `service`), `GET /api/v1/metrics/latest` (current
//! values: newest samples within the lookback), `GET /api/v1/metrics/service/{service}` and
//! `GET /api/v1/metrics/export` (current values in Prometheus' text exposition format).
//! `POST /api/v1/metrics` is the JSON push, in `ingest.rs`. Each needs the `read` scope,
//! reads only the caller's tenant and is recorded in the audit chain.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use dozor_model::labels::{METRIC_NAME, is_stale_nan};
use dozor_model::time::now_ms;
use dozor_model::{Labels, MatchOp, Matcher, Scope};
use dozor_tsdb::Queryable;
use serde_json::json;

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::series::{audit_read, json_float};
use crate::{ApiError, AppState, ClientAddr, Principal};

/// The default window of `GET /api/v1/metrics`: the last hour.
const DEFAULT_WINDOW_MS: i64 = 3600 * 1000;

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    r.route(Method::GET, "/api/v1/metrics", read, list)
        .route(Method::GET, "/api/v1/metrics/latest", read, latest)
        .route(
            Method::GET,
            "/api/v1/metrics/service/{service}",
            read,
            by_service,
        )
        .route(Method::GET, "/api/v1/metrics/export", read, export_text)
}

/// One series' newest sample.
struct Latest {
    labels: Labels,
    t: i64,
    v: f64,
}

/// What to read: filters and the window `[start, end]`.
struct Filter {
    name: Option<String>,
    service: Option<String>,
    start: i64,
    end: i64,
    limit: Option<usize>,
}

impl Filter {
    fn matchers(&self) -> Result<Vec<Matcher>, ApiError> {
        let bad = |e: dozor_model::BadRegex| ApiError::internal(e);
        let mut ms = vec![match &self.name {
            Some(n) => Matcher::equal(METRIC_NAME, n.clone()),
            None => Matcher::new(MatchOp::Regex, METRIC_NAME, ".+").map_err(bad)?,
        }];
        if let Some(s) = &self.service {
            ms.push(Matcher::equal("service", s.clone()));
        }
        Ok(ms)
    }
}

/// The filters of the request; the window ends at `end` (default now) and starts `window_ms`
/// before it unless `start` is given.
fn filter(p: &Params, service: Option<String>, window_ms: i64) -> Result<Filter, ApiError> {
    let end = p.time("end", now_ms())?;
    let start = p.time("start", end.saturating_sub(window_ms))?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let non_empty = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
    Ok(Filter {
        name: non_empty("name"),
        service: service.or_else(|| non_empty("service")),
        start,
        end,
        limit: p.limit()?,
    })
}

/// The newest sample of each matching series in the window, sorted by labels; series whose
/// newest sample is a staleness marker (the series ended) are left out.
async fn newest(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    params: &Params,
    f: Filter,
) -> Result<Vec<Latest>, ApiError> {
    let ms = f.matchers()?;
    audit_read(state, principal, source, what, params.raw()).await?;
    let Some(db) = state.metric_reader(principal)? else {
        return Ok(Vec::new());
    };
    let found = tokio::task::spawn_blocking(move || db.select(&ms, f.start, f.end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut out: Vec<Latest> = found
        .into_iter()
        .filter_map(|s| {
            let last = s.samples.last()?;
            let (t, v) = (last.t, last.v);
            (!is_stale_nan(v)).then_some(Latest {
                t,
                v,
                labels: s.labels,
            })
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    if let Some(n) = f.limit {
        out.truncate(n);
    }
    Ok(out)
}

/// Rows of seed 004's shape: `{name, service, labels, value, timestamp}`.
fn rows(found: Vec<Latest>) -> Response {
    let rows: Vec<serde_json::Value> = found
        .into_iter()
        .map(|l| {
            let name = l.labels.get(METRIC_NAME).unwrap_or("").to_owned();
            let service = l.labels.get("service").map(str::to_owned);
            let labels: std::collections::BTreeMap<&str, &str> = l
                .labels
                .iter()
                .filter(|x| x.name != METRIC_NAME)
                .map(|x| (x.name.as_str(), x.value.as_str()))
                .collect();
            json!({
                "name": name,
                "service": service,
                "labels": labels,
                "value": json_float(l.v),
                "timestamp": l.t,
            })
        })
        .collect();
    success(rows).into_response()
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let f = filter(&params, None, DEFAULT_WINDOW_MS)?;
    let found = newest(&state, &principal, source, "list", &params, f).await?;
    Ok(rows(found))
}

async fn latest(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let f = filter(&params, None, state.settings().query.lookback_ms)?;
    let found = newest(&state, &principal, source, "latest", &params, f).await?;
    Ok(rows(found))
}

async fn by_service(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(service): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let f = filter(&params, Some(service), DEFAULT_WINDOW_MS)?;
    let found = newest(&state, &principal, source, "service", &params, f).await?;
    Ok(rows(found))
}

/// Escapes a label value for the text exposition format.
fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Current values (newest samples within the lookback) as text exposition lines
/// `name{labels} value timestamp_ms`, grouped by metric name.
async fn export_text(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let f = filter(&params, None, state.settings().query.lookback_ms)?;
    let found = newest(&state, &principal, source, "export_text", &params, f).await?;
    let mut out = String::new();
    for l in found {
        out.push_str(l.labels.get(METRIC_NAME).unwrap_or(""));
        let rest: Vec<_> = l.labels.iter().filter(|x| x.name != METRIC_NAME).collect();
        if !rest.is_empty() {
            out.push('{');
            for (i, x) in rest.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&x.name);
                out.push_str("=\"");
                escape_label_value(&x.value, &mut out);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&dozor_promql::format_float(l.v));
        out.push(' ');
        out.push_str(&l.t.to_string());
        out.push('\n');
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}
