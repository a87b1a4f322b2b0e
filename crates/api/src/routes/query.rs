//! Prometheus' query API: `/api/v1/query`, `/api/v1/query_range` (GET, and POST with a form
//! body), `/api/v1/format_query`, `/api/v1/metadata` and `/api/v1/query_exemplars`. Queries
//! need the `read` scope, read only the caller's tenant (a tenant without data sees an empty
//! store, so `1 + 1` still answers 2), are recorded in the audit chain, and answer in
//! Prometheus' JSON, byte for byte (`promjson`).
//!
//! A query runs on a blocking thread with a cancellation flag, set when the client goes
//! away (the handler's future is dropped) or the timeout passes; the engine checks it in
//! its step loops. Limits come from [`crate::ApiSettings::query`]; the `timeout` and
//! `lookback_delta` parameters can only lower the configured timeout and change the
//! lookback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use dozor_model::time::now_ms;
use dozor_model::{Matcher, Scope};
use dozor_promql::{Engine, EngineOptions, PromqlError, Query, QueryResult};
use dozor_tsdb::{Queryable, Series, TsdbError};
use promql_parser::parser::Expr;

use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::promjson;
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most points per series a range query may return (Prometheus' limit).
const MAX_POINTS: i64 = 11_000;

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    r.route(Method::GET, "/api/v1/query", read, instant)
        .route(Method::POST, "/api/v1/query", read, instant)
        .route(Method::GET, "/api/v1/query_range", read, range)
        .route(Method::POST, "/api/v1/query_range", read, range)
        .route(Method::GET, "/api/v1/format_query", read, format_query)
        .route(Method::POST, "/api/v1/format_query", read, format_query)
        .route(Method::GET, "/api/v1/metadata", read, metadata)
        .route(Method::GET, "/api/v1/query_exemplars", read, exemplars)
        .route(Method::POST, "/api/v1/query_exemplars", read, exemplars)
}

/// The store of a tenant that has no data yet: every selector is empty.
struct NoData;

impl Queryable for NoData {
    fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>, TsdbError> {
        Ok(Vec::new())
    }
    fn label_names(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>, TsdbError> {
        Ok(Vec::new())
    }
    fn label_values(
        &self,
        _: &str,
        _: &[Matcher],
        _: i64,
        _: i64,
    ) -> Result<Vec<String>, TsdbError> {
        Ok(Vec::new())
    }
}

/// Sets the flag when dropped: the handler's future is dropped when the client goes away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A parsed query request.
pub(crate) struct QuerySpec {
    pub(crate) expr: Expr,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    pub(crate) instant: bool,
}

/// The engine limits of this request: configured ones, with `timeout` (lower only) and
/// `lookback_delta` from the parameters.
pub(crate) fn engine_options(state: &AppState, p: &Params) -> Result<EngineOptions, ApiError> {
    let mut opts = state.settings().query;
    if let Some(ms) = p.duration("timeout")? {
        if ms <= 0 {
            return Err(ApiError::bad_data(
                "invalid parameter \"timeout\": must be positive",
            ));
        }
        opts.timeout = opts.timeout.min(Duration::from_millis(ms.unsigned_abs()));
    }
    if let Some(ms) = p.duration("lookback_delta")? {
        if ms < 0 {
            return Err(ApiError::bad_data(
                "invalid parameter \"lookback_delta\": must not be negative",
            ));
        }
        if ms > 0 {
            opts.lookback_ms = ms;
        }
    }
    Ok(opts)
}

/// Parses a query text; errors are `bad_data` naming the `query` parameter.
pub(crate) fn parse_query(text: &str) -> Result<Expr, ApiError> {
    dozor_promql::parse(text).map_err(ApiError::query)
}

/// Runs a query on the caller's tenant, on a blocking thread, canceled when the caller goes
/// away or the timeout passes.
pub(crate) async fn run(
    state: &AppState,
    principal: &Principal,
    opts: EngineOptions,
    spec: QuerySpec,
) -> Result<QueryResult, ApiError> {
    let db = state.metric_reader(principal)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(Arc::clone(&cancel));
    let flag = Arc::clone(&cancel);
    let timeout = opts.timeout;
    let mut task = tokio::task::spawn_blocking(move || {
        let store: &dyn Queryable = match &db {
            Some(db) => db,
            None => &NoData,
        };
        let query = Query {
            expr: "",
            start: spec.start,
            end: spec.end,
            step: spec.step,
            instant: spec.instant,
            cancel: Some(&flag),
        };
        Engine::new(opts).eval_expr(store, &spec.expr, &query)
    });
    let result = tokio::select! {
        joined = &mut task => joined.map_err(ApiError::internal)?,
        () = tokio::time::sleep(timeout) => {
            cancel.store(true, Ordering::Relaxed);
            Err(PromqlError::Timeout("query execution"))
        }
    };
    drop(guard);
    result.map_err(ApiError::query)
}

/// `query` and `time` (default: now) → an instant query.
pub(crate) fn instant_spec(p: &Params) -> Result<QuerySpec, ApiError> {
    let expr = parse_query(p.required("query")?)?;
    let t = p.time("time", now_ms())?;
    Ok(QuerySpec {
        expr,
        start: t,
        end: t,
        step: 0,
        instant: true,
    })
}

/// `query`, `start`, `end`, `step` → a range query, checked as Prometheus checks it.
pub(crate) fn range_spec(p: &Params) -> Result<QuerySpec, ApiError> {
    let text = p.required("query")?;
    let start = time_required(p, "start")?;
    let end = time_required(p, "end")?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let Some(step) = p.duration("step")? else {
        return Err(ApiError::bad_data("invalid parameter \"step\": missing"));
    };
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = parse_query(text)?;
    Ok(QuerySpec {
        expr,
        start,
        end,
        step,
        instant: false,
    })
}

fn time_required(p: &Params, name: &str) -> Result<i64, ApiError> {
    p.required(name)?;
    p.time(name, 0)
}

async fn instant(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let spec = instant_spec(&params)?;
    let opts = engine_options(&state, &params)?;
    audit_read(&state, &principal, source, "query", params.raw()).await?;
    let res = run(&state, &principal, opts, spec).await?;
    Ok(promjson::query_response(&res))
}

async fn range(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    let spec = range_spec(&params)?;
    let opts = engine_options(&state, &params)?;
    audit_read(&state, &principal, source, "query_range", params.raw()).await?;
    let res = run(&state, &principal, opts, spec).await?;
    Ok(promjson::query_response(&res))
}

/// The query pretty-printed as Prometheus' `promql.Prettify` does (promql-parser's port).
async fn format_query(params: Params) -> Result<Response, ApiError> {
    let expr = parse_query(params.required("query")?)?;
    let mut data = String::new();
    promjson::push_str(&mut data, &expr.prettify());
    Ok(promjson::response(promjson::envelope(&data, &[], &[])))
}

/// Metric metadata (type, help, unit). The store keeps samples only, so the answer is an
/// empty object, as Prometheus answers for metrics it knows no metadata of.
async fn metadata(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    params.limit()?;
    audit_read(&state, &principal, source, "metadata", params.raw()).await?;
    Ok(promjson::response(promjson::envelope("{}", &[], &[])))
}

/// Exemplars: none are stored, so the list is empty (the query is still checked).
async fn exemplars(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<Response, ApiError> {
    parse_query(params.required("query")?)?;
    let start = params.time("start", i64::MIN)?;
    let end = params.time("end", i64::MAX)?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    audit_read(&state, &principal, source, "query_exemplars", params.raw()).await?;
    Ok(promjson::response(promjson::envelope("[]", &[], &[])))
}
