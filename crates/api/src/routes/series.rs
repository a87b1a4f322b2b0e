//! Reading stored series: `GET /api/v1/export` (VictoriaMetrics' JSON-lines export) and the
//! Prometheus metadata routes `series`, `labels` and `label/{name}/values`. Each needs the
//! `read` scope, sees only the caller's tenant, and is recorded in the audit chain.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_model::{MatchOp, Matcher, Scope};
use dozor_tsdb::{Queryable, Series};

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/export",
        Policy::Scope(Scope::Read),
        export,
    )
    .route(
        Method::GET,
        "/api/v1/series",
        Policy::Scope(Scope::Read),
        series,
    )
    .route(
        Method::GET,
        "/api/v1/labels",
        Policy::Scope(Scope::Read),
        labels,
    )
    .route(
        Method::GET,
        "/api/v1/label/{name}/values",
        Policy::Scope(Scope::Read),
        label_values,
    )
}

/// The query parameters these routes share.
struct Params {
    selectors: Vec<Vec<Matcher>>,
    start: i64,
    end: i64,
}

fn parse_params(query: Option<&str>) -> Result<Params, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_data(format!("query string: {e}")))?;
    let mut p = Params {
        selectors: Vec::new(),
        start: i64::MIN,
        end: i64::MAX,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "match[]" => p.selectors.extend(parse_selector(&v)?),
            "start" => {
                p.start = parse_time(&v).map_err(|e| ApiError::bad_data(format!("start: {e}")))?
            }
            "end" => p.end = parse_time(&v).map_err(|e| ApiError::bad_data(format!("end: {e}")))?,
            _ => {}
        }
    }
    if p.start > p.end {
        return Err(ApiError::bad_data("end: must not be before start"));
    }
    Ok(p)
}

/// Parses a time as Prometheus does: RFC 3339 or (fractional) Unix seconds. Returns ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("{s:?} is not a finite time"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor Unix seconds ({e})"))?;
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Ok(ms)
}

/// Parses a series selector (`up{job="api"}`) into matcher groups (one per `or` branch).
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let bad = |m: String| ApiError::bad_data(format!("match[]: {m}"));
    let expr = promql_parser::parser::parse(s).map_err(bad)?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(bad(format!("{s:?} is not a series selector")));
    };
    let groups: Vec<Vec<promql_parser::label::Matcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers
    };
    let mut out = Vec::new();
    for group in groups {
        let mut ms = Vec::with_capacity(group.len() + 1);
        if let Some(name) = &vs.name {
            ms.push(Matcher::equal(
                dozor_model::labels::METRIC_NAME,
                name.clone(),
            ));
        }
        for m in group {
            let op = match m.op {
                promql_parser::label::MatchOp::Equal => MatchOp::Equal,
                promql_parser::label::MatchOp::NotEqual => MatchOp::NotEqual,
                promql_parser::label::MatchOp::Re(_) => MatchOp::Regex,
                promql_parser::label::MatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            ms.push(Matcher::new(op, m.name, m.value).map_err(|e| bad(e.to_string()))?);
        }
        if ms.iter().all(Matcher::matches_empty) {
            return Err(bad(format!(
                "{s:?} matches every series; add a matcher that needs a value"
            )));
        }
        out.push(ms);
    }
    Ok(out)
}

/// Series matching any selector, merged.
fn select_all(db: &dyn Queryable, p: &Params) -> Result<Vec<Series>, ApiError> {
    let mut out: Vec<Series> = Vec::new();
    for ms in &p.selectors {
        out.extend(db.select(ms, p.start, p.end).map_err(ApiError::internal)?);
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out.dedup_by(|a, b| a.labels == b.labels);
    Ok(out)
}

async fn audit_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    query: Option<&str>,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        format!("metrics.{what}"),
        "metrics",
        Outcome::Success,
    )
    .source(source)
    .detail("query", query.unwrap_or(""));
    state.audit_entry(entry).await
}

/// The series the request's selectors match in the caller's tenant, after recording the
/// read in the audit chain; export and series share it.
async fn selected(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    q: Option<&str>,
) -> Result<Vec<Series>, ApiError> {
    let p = parse_params(q)?;
    if p.selectors.is_empty() {
        return Err(ApiError::bad_data(
            "match[]: at least one series selector is required",
        ));
    }
    audit_read(state, principal, source, what, q).await?;
    let Some(db) = state.tsdb().existing(&principal.tenant) else {
        return Ok(Vec::new());
    };
    tokio::task::spawn_blocking(move || select_all(db.as_ref(), &p))
        .await
        .map_err(ApiError::internal)?
}

/// Label names or values (`list`) of the series each selector matches (all series without
/// one), merged, sorted and deduplicated; labels and label values share it.
async fn listed(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    q: Option<&str>,
    list: impl Fn(&dyn Queryable, &[Matcher], i64, i64) -> Result<Vec<String>, dozor_tsdb::TsdbError>
    + Send
    + 'static,
) -> Result<Vec<String>, ApiError> {
    let p = parse_params(q)?;
    audit_read(state, principal, source, what, q).await?;
    let Some(db) = state.tsdb().existing(&principal.tenant) else {
        return Ok(Vec::new());
    };
    tokio::task::spawn_blocking(move || {
        let no_selector = [Vec::new()];
        let selectors: &[Vec<Matcher>] = if p.selectors.is_empty() {
            &no_selector
        } else {
            &p.selectors
        };
        let mut all = Vec::new();
        for ms in selectors {
            all.extend(list(db.as_ref(), ms, p.start, p.end).map_err(ApiError::internal)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    })
    .await
    .map_err(ApiError::internal)?
}

async fn export(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let found = selected(&state, &principal, source, "export", q.as_deref()).await?;
    let mut out = String::new();
    for s in found {
        let values: Vec<serde_json::Value> = s.samples.iter().map(|x| json_float(x.v)).collect();
        let timestamps: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
        out.push_str(
            &serde_json::json!({"metric": s.labels, "values": values, "timestamps": timestamps})
                .to_string(),
        );
        out.push('\n');
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(r)
}

/// Floats as JSON numbers, with NaN and infinities as strings (JSON has no literal for them).
fn json_float(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else if v.is_nan() {
        serde_json::json!("NaN")
    } else if v > 0.0 {
        serde_json::json!("+Inf")
    } else {
        serde_json::json!("-Inf")
    }
}

async fn series(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let found = selected(&state, &principal, source, "series", q.as_deref()).await?;
    Ok(success(found.into_iter().map(|s| s.labels).collect::<Vec<_>>()).into_response())
}

async fn labels(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let names = listed(
        &state,
        &principal,
        source,
        "labels",
        q.as_deref(),
        |db, ms, start, end| db.label_names(ms, start, end),
    )
    .await?;
    Ok(success(names).into_response())
}

async fn label_values(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let values = listed(
        &state,
        &principal,
        source,
        "label_values",
        q.as_deref(),
        move |db, ms, start, end| db.label_values(&name, ms, start, end),
    )
    .await?;
    Ok(success(values).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matchers() {
        let g = parse_selector(r#"up{job=~"api|web", instance!="a"}"#).unwrap();
        assert_eq!(g.len(), 1);
        let names: Vec<_> = g[0].iter().map(|m| (m.name.as_str(), m.op)).collect();
        assert!(names.contains(&("__name__", MatchOp::Equal)));
        assert!(names.contains(&("job", MatchOp::Regex)));
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector("up{").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }
}
