//! Seed 004's dashboard routes computed from the metric store, as the caller sees it:
//!
//! - `GET /api/v1/dashboard/sla?window=30d&target=99.9`: per service of the probes
//!   (`probes:` in `dozor.yml`), the uptime over the window (`probe_success`), the 95th
//!   percentile of the probes' response time, the hours whose uptime fell below the target
//!   (violations), and the error budget spent;
//! - `GET /api/v1/dashboard/performance?range=1h&by=endpoint&metric=http_request_duration_seconds`:
//!   per endpoint of an ingested latency histogram, requests per second, p50, p95 and p99,
//!   and the share of errors (`errors`, a matcher, default `code=~"5.."`).
//!
//! - `GET /api/v1/dashboard/overview`: the alerts firing and pending (by severity), open
//!   incidents, the probed services' health, the cash-register fleet by status and the
//!   open fraud findings (each for those who may see it);
//! - `GET /api/v1/dashboard/business?range=24h`: ticket sales, shop orders and revenue
//!   (`pack:shop`'s recorded series) and cash-register takings over the range.
//!
//! All are read scope and audited. Seed 004 kept these numbers in `sla_metrics` and
//! `performance_metrics` tables filled by workers; here they are queries over the series
//! themselves, so they are never stale and cost no storage. The metric store's roll-ups
//! (1 m, 5 m, 1 h and 1 d aggregates of data older than about two days, kept past the raw
//! retention) are those tables: a window longer than [`RAW_WINDOW_MS`] is read from them
//! at up to hourly resolution ([`by_label`]), so a 30-day SLA still counts every probe
//! after the raw samples of its first weeks are gone (its first hour may take in up to an
//! hour before the window). The percentiles read raw samples only.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_model::Scope;
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/dashboard/sla",
        Policy::Scope(Scope::Read),
        sla,
    )
    .route(
        Method::GET,
        "/api/v1/dashboard/performance",
        Policy::Scope(Scope::Read),
        performance,
    )
    .route(
        Method::GET,
        "/api/v1/dashboard/overview",
        Policy::Scope(Scope::Read),
        overview,
    )
    .route(
        Method::GET,
        "/api/v1/dashboard/business",
        Policy::Scope(Scope::Read),
        business,
    )
}

async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "dashboard.overview", "").await?;
    let (mut firing, mut pending) = (0, 0);
    let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
    for a in super::alerts::active_alerts(&state, &principal) {
        if a.state == dozor_rules::AlertState::Firing {
            firing += 1;
            let severity = a.labels.get("severity").unwrap_or("none").to_owned();
            *by_severity.entry(severity).or_default() += 1;
        } else {
            pending += 1;
        }
    }
    let open = |status: &str| dozor_state::incidents::IncidentFilter {
        status: Some(status.to_owned()),
        severity: None,
        service: None,
        since_ms: None,
        limit: 10_000,
        offset: 0,
    };
    let incidents_open = state
        .store()
        .incidents(&principal.tenant, &open("open"))
        .await?
        .len();
    let incidents_acked = state
        .store()
        .incidents(&principal.tenant, &open("acknowledged"))
        .await?
        .len();
    let fraud = if super::analytics::sees_findings(&principal) {
        let m = super::analytics::fraud_metrics_json(&state, &principal, 0).await?;
        json!({"open": m["open"]})
    } else {
        Value::Null
    };
    Ok(success(json!({
        "alerts": {"firing": firing, "pending": pending, "firingBySeverity": by_severity},
        "incidents": {"open": incidents_open, "acknowledged": incidents_acked},
        "services": super::health::services_summary(&state, &principal),
        "cashRegisters": super::kkt::fleet_summary(&state, &principal)?,
        "fraud": fraud,
    })))
}

async fn business(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(
        &state,
        &principal,
        source,
        "dashboard.business",
        params.raw(),
    )
    .await?;
    let (range, range_ms) = params.range("range", DAY_MS, 60_000, 90 * DAY_MS)?;
    let minutes = range_ms as f64 / 60_000.0;
    let now = dozor_model::time::now_ms();
    let state = &state;
    let principal = &principal;
    let number = async |q: String| super::ai::instant_number(state, principal, &q, now).await;
    let per_range = |series: &str| format!("sum(avg_over_time({series}[{range}])) * {minutes}");
    let round2 = |v: Option<f64>| v.map(|v| round(v, 2));
    Ok(success(json!({
        "range": params.get("range").filter(|v| !v.is_empty()).unwrap_or("24h"),
        "ticketSales": super::analytics::sales_of(state, principal, "", &range, now).await?,
        "shop": {
            "orders": round2(number(per_range("shop:orders_created:per_minute")).await),
            "ordersPaid": round2(number(per_range("shop:orders_paid:per_minute")).await),
            "revenue": round2(number(per_range("shop:order_revenue:per_minute")).await),
            "checkoutConversion": round2(number("avg(shop:checkout_conversion:ratio)".to_owned()).await),
        },
        "cashRegisters": {
            "salesRevenue": round2(number(format!(
                "sum(increase(kkt_receipts_amount_kopecks_total{{operation=\"sale\"}}[{range}])) / 100"
            )).await),
            "receipts": round2(number(format!(
                "sum(increase(kkt_documents_total{{kind=\"receipt\"}}[{range}]))"
            )).await),
        },
    })))
}

const DAY_MS: i64 = 86_400_000;

/// Windows up to this long are read from raw samples; longer ones from the roll-ups.
const RAW_WINDOW_MS: i64 = 2 * DAY_MS;
/// The coarsest roll-up a long window reads: hourly (a query step of 5 h lets the engine
/// read aggregates of up to a fifth of it).
const ROLLUP_STEP_MS: i64 = 5 * 3_600_000;

/// A query's samples at `t`, by the value of `label`. A query over a window longer than
/// [`RAW_WINDOW_MS`] is run as a one-step range query, which lets the engine answer from
/// the store's hourly (or finer) roll-ups where the raw samples are summarised or gone.
pub(crate) async fn by_label(
    state: &AppState,
    principal: &Principal,
    query: String,
    label: &str,
    t: i64,
    window_ms: i64,
) -> Result<BTreeMap<String, f64>, ApiError> {
    let long = window_ms > RAW_WINDOW_MS;
    let spec = crate::routes::query::QuerySpec {
        expr: crate::routes::query::parse_query(&query)?,
        start: t,
        end: t,
        step: if long { ROLLUP_STEP_MS } else { 0 },
        instant: !long,
    };
    let res = crate::routes::query::run(state, principal, state.settings().query, spec).await?;
    let samples: Vec<(dozor_model::Labels, f64)> = match res.value {
        dozor_promql::Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
        dozor_promql::Value::Matrix(m) => m
            .into_iter()
            .filter_map(|s| Some((s.labels, s.samples.last()?.v)))
            .collect(),
        _ => Vec::new(),
    };
    Ok(samples
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(l, v)| (l.get(label).unwrap_or("").to_owned(), v))
        .collect())
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

async fn sla(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "dashboard.sla", params.raw()).await?;
    let (window, window_ms) = params.range("window", 30 * DAY_MS, 3_600_000, 366 * DAY_MS)?;
    let target = match params.get("target").filter(|v| !v.is_empty()) {
        None => 99.9,
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|t| (0.0..100.0).contains(t))
            .ok_or_else(|| {
                ApiError::bad_data("invalid parameter \"target\": a percentage below 100")
            })?,
    };
    let now = dozor_model::time::now_ms();
    // Uptime weighted by probe results (several probes of a service count together), as
    // sums and counts, which the roll-ups keep.
    let uptime_of = |w: &str| {
        format!(
            "sum by (service) (sum_over_time(probe_success[{w}])) / sum by (service) (count_over_time(probe_success[{w}])) * 100"
        )
    };
    let uptime = by_label(
        &state,
        &principal,
        uptime_of(&window),
        "service",
        now,
        window_ms,
    )
    .await?;
    let p95 = by_label(
        &state,
        &principal,
        format!("max by (service) (quantile_over_time(0.95, probe_duration_seconds[{window}]))"),
        "service",
        now,
        window_ms.min(RAW_WINDOW_MS),
    )
    .await?;
    // Violations: the hours of the window whose uptime fell below the target — the whole
    // hours (PromQL's subquery steps fall on them), and the hour under way.
    let mut violations = by_label(
        &state,
        &principal,
        format!(
            "sum by (service) (sum_over_time(({} < bool {target})[{window}:1h]))",
            uptime_of("1h")
        ),
        "service",
        now,
        window_ms,
    )
    .await?;
    let this_hour_ms = now.rem_euclid(3_600_000);
    if this_hour_ms > 0 {
        let current = by_label(
            &state,
            &principal,
            format!("{} < {target}", uptime_of(&format!("{this_hour_ms}ms"))),
            "service",
            now,
            this_hour_ms,
        )
        .await?;
        for service in current.keys() {
            *violations.entry(service.clone()).or_default() += 1.0;
        }
    }
    let allowed_ms = (100.0 - target) / 100.0 * window_ms as f64;
    let services: Vec<Value> = uptime
        .iter()
        .map(|(service, up)| {
            let down_ms = (100.0 - up) / 100.0 * window_ms as f64;
            json!({
                "service": service,
                "uptimePercent": round(*up, 4),
                "p95ResponseSeconds": p95.get(service).map(|v| round(*v, 4)),
                "violations": violations.get(service).copied().unwrap_or(0.0),
                "met": *up >= target,
                "downtimeSeconds": round(down_ms / 1000.0, 1),
                "errorBudgetRemaining": if allowed_ms > 0.0 { round(1.0 - down_ms / allowed_ms, 4) } else { 0.0 },
            })
        })
        .collect();
    Ok(success(json!({
        "window": params.get("window").filter(|v| !v.is_empty()).unwrap_or("30d"),
        "targetPercent": target,
        "services": services,
    })))
}

async fn performance(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(
        &state,
        &principal,
        source,
        "dashboard.performance",
        params.raw(),
    )
    .await?;
    let (range, range_ms) = params.range("range", 3_600_000, 60_000, 31 * DAY_MS)?;
    let by = params
        .get("by")
        .filter(|v| !v.is_empty())
        .unwrap_or("endpoint");
    if !dozor_model::labels::is_valid_label_name(by) {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"by\": {by:?} is not a label name"
        )));
    }
    let metric = params
        .get("metric")
        .filter(|v| !v.is_empty())
        .unwrap_or("http_request_duration_seconds");
    if !metric
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || metric.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"metric\": {metric:?} is not a metric name"
        )));
    }
    let errors = params
        .get("errors")
        .filter(|v| !v.is_empty())
        .unwrap_or("code=~\"5..\"");
    // The matcher is checked by parsing the query it goes into.
    let error_query = format!(
        "sum by ({by}) (rate({metric}_count{{{errors}}}[{range}])) / sum by ({by}) (rate({metric}_count[{range}]))"
    );
    if dozor_promql::parse(&error_query).is_err() {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"errors\": {errors:?} is not a label matcher"
        )));
    }
    let now = dozor_model::time::now_ms();
    let rate = by_label(
        &state,
        &principal,
        format!("sum by ({by}) (rate({metric}_count[{range}]))"),
        by,
        now,
        range_ms,
    )
    .await?;
    let mut quantiles: Vec<(&str, BTreeMap<String, f64>)> = Vec::new();
    for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        let v = by_label(
            &state,
            &principal,
            format!("histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[{range}])))"),
            by,
            now,
            range_ms,
        )
        .await?;
        quantiles.push((name, v));
    }
    let error_ratio = by_label(&state, &principal, error_query, by, now, range_ms).await?;
    let endpoints: Vec<Value> = rate
        .iter()
        .map(|(endpoint, rps)| {
            let mut m = Map::new();
            m.insert(by.to_owned(), json!(endpoint));
            m.insert("requestsPerSecond".into(), json!(round(*rps, 4)));
            for (name, v) in &quantiles {
                m.insert(
                    format!("{name}Seconds"),
                    json!(v.get(endpoint).map(|x| round(*x, 4))),
                );
            }
            m.insert(
                "errorRatio".into(),
                json!(round(error_ratio.get(endpoint).copied().unwrap_or(0.0), 4)),
            );
            Value::Object(m)
        })
        .collect();
    Ok(success(json!({
        "range": params.get("range").filter(|v| !v.is_empty()).unwrap_or("1h"),
        "by": by,
        "metric": metric,
        "endpoints": endpoints,
    })))
}
