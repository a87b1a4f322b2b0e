//! Reading stored series: `GET /api/v1/export` (VictoriaMetrics' JSON-lines export) and the
//! Prometheus metadata routes `series`, `labels` and `label/{name}/values` (GET, and POST
//! with a form body as Prometheus allows). Each needs the `read` scope, sees only the
//! caller's tenant, and is recorded in the audit chain.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_model::{Matcher, Scope};
use dozor_tsdb::{Queryable, Series};

use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::promjson;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    r.route(Method::GET, "/api/v1/export", read, export)
        .route(Method::GET, "/api/v1/series", read, series)
        .route(Method::POST, "/api/v1/series", read, series)
        .route(Method::GET, "/api/v1/labels", read, labels)
        .route(Method::POST, "/api/v1/labels", read, labels)
        .route(
            Method::GET,
            "/api/v1/label/{name}/values",
            read,
            label_values,
        )
        .route(
            Method::POST,
            "/api/v1/label/{name}/values",
            read,
            label_values,
        )
}

/// The parameters these routes share.
pub(crate) struct SeriesParams {
    pub(crate) selectors: Vec<Vec<Matcher>>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) limit: Option<usize>,
}

pub(crate) fn parse_params(params: &Params) -> Result<SeriesParams, ApiError> {
    let mut p = SeriesParams {
        selectors: Vec::new(),
        start: params.time("start", i64::MIN)?,
        end: params.time("end", i64::MAX)?,
        limit: params.limit()?,
    };
    for m in params.all("match[]") {
        p.selectors.extend(parse_selector(m)?);
    }
    if p.start > p.end {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    Ok(p)
}

/// Parses a series selector (`up{job="api"}`) into matcher groups (one per `or` branch),
/// with the PromQL engine's parser and matcher conversion.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let bad = |m: String| ApiError::bad_data(format!("invalid parameter \"match[]\": {m}"));
    let expr = dozor_promql::parse(s).map_err(|e| bad(e.to_string()))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(bad(format!("{s:?} is not a series selector")));
    };
    let groups = dozor_promql::selector_matchers(&vs).map_err(bad)?;
    for ms in &groups {
        if ms.iter().all(Matcher::matches_empty) {
            return Err(bad(format!(
                "{s:?} matches every series; add a matcher that needs a value"
            )));
        }
    }
    Ok(groups)
}

/// Series matching any selector, merged.
fn select_all(db: &dyn Queryable, p: &SeriesParams) -> Result<Vec<Series>, ApiError> {
    let mut out: Vec<Series> = Vec::new();
    for ms in &p.selectors {
        out.extend(db.select(ms, p.start, p.end).map_err(ApiError::internal)?);
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out.dedup_by(|a, b| a.labels == b.labels);
    Ok(out)
}

/// Records a read of the caller's metrics (`metrics.<what>`) with its parameters.
pub(crate) async fn audit_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    query: &str,
) -> Result<(), ApiError> {
    audit_read_of(state, principal, source, "metrics", what, query).await
}

/// Records a read of the caller's `area` (`<area>.<what>`, target `area`) with its
/// parameters.
pub(crate) async fn audit_read_of(
    state: &AppState,
    principal: &Principal,
    source: String,
    area: &str,
    what: &str,
    query: &str,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        format!("{area}.{what}"),
        area,
        Outcome::Success,
    )
    .source(source)
    .detail("query", query);
    state.audit_entry(entry).await
}

/// The series the request's selectors match in the caller's tenant, after recording the
/// read in the audit chain; export and series share it.
async fn selected(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    params: &Params,
) -> Result<(Vec<Series>, Option<usize>), ApiError> {
    let p = parse_params(params)?;
    if p.selectors.is_empty() {
        return Err(ApiError::bad_data(
            "invalid parameter \"match[]\": at least one series selector is required",
        ));
    }
    audit_read(state, principal, source, what, params.raw()).await?;
    let limit = p.limit;
    let Some(db) = state.metric_reader(principal)? else {
        return Ok((Vec::new(), limit));
    };
    let found = tokio::task::spawn_blocking(move || select_all(&db, &p))
        .await
        .map_err(ApiError::internal)??;
    Ok((found, limit))
}

/// Label names or values (`list`) of the series each selector matches (all series without
/// one), merged, sorted and deduplicated; labels and label values share it.
async fn listed(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    params: &Params,
    list: impl Fn(&dyn Queryable, &[Matcher], i64, i64) -> Result<Vec<String>, dozor_tsdb::TsdbError>
    + Send
    + 'static,
) -> Result<(Vec<String>, Option<usize>), ApiError> {
    let p = parse_params(params)?;
    audit_read(state, principal, source, what, params.raw()).await?;
    let limit = p.limit;
    let Some(db) = state.metric_reader(principal)? else {
        return Ok((Vec::new(), limit));
    };
    let all = tokio::task::spawn_blocking(move || {
        let no_selector = [Vec::new()];
        let selectors: &[Vec<Matcher>] = if p.selectors.is_empty() {
            &no_selector
        } else {
            &p.selectors
        };
        let mut all = Vec::new();
        for ms in selectors {
            all.extend(list(&db, ms, p.start, p.end).map_err(ApiError::internal)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok::<_, ApiError>(all)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((all, limit))
}

/// Cuts `items` to `limit`, returning Prometheus' warning when it did.
fn truncate<T>(items: &mut Vec<T>, limit: Option<usize>) -> Vec<String> {
    match limit {
        Some(n) if items.len() > n => {
            items.truncate(n);
            vec!["results truncated due to limit".to_owned()]
        }
        _ => Vec::new(),
    }
}

async fn export(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let (mut found, limit) = selected(&state, &principal, source, "export", &params).await?;
    truncate(&mut found, limit);
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
pub(crate) fn json_float(v: f64) -> serde_json::Value {
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
    params: Params,
) -> Result<Response, ApiError> {
    let (mut found, limit) = selected(&state, &principal, source, "series", &params).await?;
    let warnings = truncate(&mut found, limit);
    let data = promjson::label_sets(found.iter().map(|s| &s.labels));
    Ok(promjson::response(promjson::envelope(
        &data,
        &warnings,
        &[],
    )))
}

async fn labels(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let (mut names, limit) = listed(
        &state,
        &principal,
        source,
        "labels",
        &params,
        |db, ms, start, end| db.label_names(ms, start, end),
    )
    .await?;
    let warnings = truncate(&mut names, limit);
    let data = promjson::string_list(names.iter().map(String::as_str));
    Ok(promjson::response(promjson::envelope(
        &data,
        &warnings,
        &[],
    )))
}

async fn label_values(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (mut values, limit) = listed(
        &state,
        &principal,
        source,
        "label_values",
        &params,
        move |db, ms, start, end| db.label_values(&name, ms, start, end),
    )
    .await?;
    let warnings = truncate(&mut values, limit);
    let data = promjson::string_list(values.iter().map(String::as_str));
    Ok(promjson::response(promjson::envelope(
        &data,
        &warnings,
        &[],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::MatchOp;

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
        assert_eq!(parse_selector(r#"{job="a" or job="b"}"#).unwrap().len(), 2);
    }
}
