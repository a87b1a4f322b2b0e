//! Seed 004's ticketing analytics and fraud detection:
//!
//! - `POST /api/v1/analytics/sales/track` (ingest): ticket sales (one object or an array:
//!   `eventId`, `userId`, `price`, `quantity`, `ip`, `card`, `timestamp`…) stored as
//!   `ticket_sale` business events — masked and queryable like any event — and run through
//!   the tenant's fraud detectors (`dozor_detect::fraud`: scalpers, bots, odd hours, amount
//!   outliers, shared addresses); each finding is a row of `fraud_events`;
//! - `POST /api/v1/analytics/fraud/check` (ingest): purchases or requests run through the
//!   detectors without storing the events: the risk (`none`, `medium`, `high`) and the
//!   reasons, findings stored;
//! - `GET /api/v1/analytics/sales/{eventId}` (read): tickets, sales, revenue and buyers of
//!   one event over `range` (default 24h), from the stored events as the caller sees them;
//! - `GET /api/v1/analytics/fraud/metrics`, `GET /api/v1/fraud/events`,
//!   `GET /api/v1/fraud/events/{id}` (read) and `POST /api/v1/fraud/events/{id}/investigate`
//!   (write): the findings and their investigation (who, when, outcome, note);
//! - `GET /api/v1/analytics/dashboard` (read): sales of the range and, for those who may
//!   see them, the findings' counts.
//!
//! Findings name accounts, cards and addresses: they are security data, read only by roles
//! that see the whole tenant (admin, operator, viewer, auditor-free tokens). Each
//! finding also counts in the tenant's `fraud_findings_total{pattern, risk}` series, so
//! rules can alert on them. The detectors' windows live in memory: after a restart they
//! start empty.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_detect::fraud::{Event, FraudDetector, Kind, Risk};
use dozor_model::{Scope, Sight, TenantId};
use dozor_state::fraud::{FraudEvent, FraudFilter};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::rules::time;
use crate::routes::series::audit_read_of;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most events one call takes.
const MAX_EVENTS: usize = 10_000;

/// The fraud detectors of every tenant, and the counts behind `fraud_findings_total`.
#[derive(Default)]
pub struct FraudState {
    tenants: Mutex<HashMap<TenantId, TenantFraud>>,
}

impl std::fmt::Debug for FraudState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FraudState")
    }
}

#[derive(Default)]
struct TenantFraud {
    detector: Option<FraudDetector>,
    counts: HashMap<(&'static str, &'static str), u64>,
}

pub(crate) fn register(r: Registry) -> Registry {
    let ingest = Policy::Scope(Scope::Ingest);
    let read = Policy::Scope(Scope::Read);
    let write = Policy::Scope(Scope::Write);
    r.route(Method::POST, "/api/v1/analytics/sales/track", ingest, track)
        .route(Method::POST, "/api/v1/analytics/fraud/check", ingest, check)
        .route(Method::GET, "/api/v1/analytics/sales/{event}", read, sales)
        .route(
            Method::GET,
            "/api/v1/analytics/fraud/metrics",
            read,
            metrics,
        )
        .route(Method::GET, "/api/v1/analytics/dashboard", read, dashboard)
        .route(Method::GET, "/api/v1/fraud/events", read, list)
        .route(Method::GET, "/api/v1/fraud/events/{id}", read, one)
        .route(
            Method::POST,
            "/api/v1/fraud/events/{id}/investigate",
            write,
            investigate,
        )
}

/// Findings are security data: only roles that see the whole tenant read them.
pub(crate) fn sees_findings(principal: &Principal) -> bool {
    principal.role.is_none_or(|r| r.sees() == Sight::All)
}

fn require_findings(principal: &Principal) -> Result<(), ApiError> {
    if sees_findings(principal) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "fraud findings name accounts, cards and addresses: security data this role does not see",
        ))
    }
}

/// The items of a body: one object, an array, or `{"events": [...]}`.
fn items(body: &[u8]) -> Result<Vec<Map<String, Value>>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_data(format!("body: invalid JSON: {e}")))?;
    let list = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("events") {
            Some(Value::Array(a)) if o.is_empty() => a,
            Some(other) => {
                o.insert("events".into(), other);
                vec![Value::Object(o)]
            }
            None => vec![Value::Object(o)],
        },
        _ => {
            return Err(ApiError::bad_data(
                "body: expected an object or an array of them",
            ));
        }
    };
    if list.is_empty() || list.len() > MAX_EVENTS {
        return Err(ApiError::bad_data(format!(
            "body: 1 to {MAX_EVENTS} events"
        )));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => Ok(o),
            _ => Err(ApiError::bad_data(format!("[{i}]: expected an object"))),
        })
        .collect()
}

/// The first present member of `keys` as text.
fn text(o: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match o.get(*k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn number(o: &Map<String, Value>, keys: &[&str], field: &str) -> Result<Option<f64>, ApiError> {
    for k in keys {
        match o.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => return Ok(n.as_f64().filter(|x| x.is_finite())),
            Some(Value::String(s)) => {
                return s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| ApiError::bad_data(format!("{field}.{k}: expected a number")));
            }
            Some(_) => {
                return Err(ApiError::bad_data(format!(
                    "{field}.{k}: expected a number"
                )));
            }
        }
    }
    Ok(None)
}

/// A detector event from an item; `kind` when the item does not say.
fn detector_event(
    o: &Map<String, Value>,
    i: usize,
    kind: Kind,
    at_ms: i64,
) -> Result<Event, ApiError> {
    let field = format!("[{i}]");
    let user = text(o, &["userId", "user_id", "user", "buyerId", "buyer_id"])
        .ok_or_else(|| ApiError::bad_data(format!("{field}.userId: required")))?;
    let kind = match text(o, &["kind"]).as_deref() {
        None => kind,
        Some("purchase") => Kind::Purchase,
        Some("request") => Kind::Request,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "{field}.kind: {other:?} is neither purchase nor request"
            )));
        }
    };

    let quantity = number(o, &["quantity", "tickets", "count"], &field)?.unwrap_or(1.0);
    if !(1.0..=100_000.0).contains(&quantity) {
        return Err(ApiError::bad_data(format!(
            "{field}.quantity: from 1 to 100000"
        )));
    }
    let price = number(o, &["amount", "total", "price"], &field)?;
    Ok(Event {
        at_ms,
        kind,
        user,
        ip: text(
            o,
            &["ip", "clientIp", "client_ip", "ipAddress", "ip_address"],
        )
        .unwrap_or_default(),
        card: text(
            o,
            &[
                "card",
                "cardId",
                "card_id",
                "paymentMethodId",
                "payment_method_id",
            ],
        ),
        item: text(o, &["eventId", "event_id", "item", "itemId"]),
        quantity: quantity as u32,
        amount: price,
        merchant: text(
            o,
            &[
                "merchant",
                "merchantId",
                "organizerId",
                "organizer_id",
                "venueId",
            ],
        ),
        endpoint: text(o, &["endpoint", "path", "route"]),
    })
}

/// The items as business events (`dozor_ingest::events`: times read, types checked), one
/// record per item, in order.
fn times_and_records(
    body: &[u8],
    now_ms: i64,
    default_type: &str,
) -> Result<Vec<dozor_model::LogRecord>, ApiError> {
    dozor_ingest::events::parse(body, now_ms.saturating_mul(1_000_000), Some(default_type))
        .map_err(|e| ApiError::bad_data(e.to_string()))
}

fn risk_name(r: Risk) -> &'static str {
    match r {
        Risk::Medium => "medium",
        Risk::High => "high",
    }
}

/// Runs `events` through the tenant's detectors, stores the findings and counts them in
/// `fraud_findings_total`; the stored rows.
async fn detect(
    state: &AppState,
    tenant: &TenantId,
    events: Vec<(Event, Value)>,
) -> Result<Vec<FraudEvent>, ApiError> {
    let mut found = Vec::new();
    // Keys counted for the first time: written at 0 just before, so that `increase` sees
    // the first finding too.
    let mut fresh = Vec::new();
    let counts = {
        let mut all = state
            .fraud()
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = all.entry(tenant.clone()).or_default();
        let detector = t
            .detector
            .get_or_insert_with(|| FraudDetector::new(dozor_detect::fraud::Config::default()));
        let mut sorted = events;
        // The detectors take events in time order.
        sorted.sort_by_key(|(e, _)| e.at_ms);
        for (e, data) in &sorted {
            for f in detector.observe(e) {
                found.push(FraudEvent {
                    id: String::new(),
                    user_id: e.user.clone(),
                    subject: f.subject.clone(),
                    pattern: f.pattern.name().to_owned(),
                    risk_level: risk_name(f.risk).to_owned(),
                    reason: f.reason.clone(),
                    at_ms: e.at_ms,
                    data: data.to_string(),
                    investigated: false,
                    investigated_by: String::new(),
                    investigated_at_ms: None,
                    outcome: String::new(),
                    note: String::new(),
                });
                let key = (f.pattern.name(), risk_name(f.risk));
                let n = t.counts.entry(key).or_insert_with(|| {
                    fresh.push(key);
                    0
                });
                *n += 1;
            }
        }
        (!found.is_empty()).then(|| t.counts.clone())
    };
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let stored = state.store().add_fraud_events(tenant, &found).await?;
    if let Some(counts) = counts {
        let now = dozor_model::time::now_ms();
        let batch: Vec<(dozor_model::Labels, Vec<dozor_model::Sample>)> = counts
            .into_iter()
            .filter_map(|((pattern, risk), n)| {
                let l = dozor_model::Labels::from_pairs([
                    ("__name__", "fraud_findings_total"),
                    ("pattern", pattern),
                    ("risk", risk),
                    ("data_class", "security"),
                ])
                .ok()?;
                let mut samples = Vec::with_capacity(2);
                if fresh.contains(&(pattern, risk)) {
                    samples.push(dozor_model::Sample { t: now - 1, v: 0.0 });
                }
                samples.push(dozor_model::Sample {
                    t: now,
                    v: n as f64,
                });
                Some((l, samples))
            })
            .collect();
        let db = state.tsdb().tenant(tenant).map_err(ApiError::internal)?;
        match tokio::task::spawn_blocking(move || db.append(&batch)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot store fraud_findings_total"),
            Err(e) => tracing::warn!(error = %e, "cannot store fraud_findings_total"),
        }
    }
    Ok(stored)
}

fn finding_json(f: &FraudEvent) -> Value {
    json!({
        "id": f.id,
        "userId": f.user_id,
        "subject": f.subject,
        "pattern": f.pattern,
        "riskLevel": f.risk_level,
        "reason": f.reason,
        "timestamp": time(Some(f.at_ms)),
        "data": serde_json::from_str::<Value>(&f.data).unwrap_or(Value::Null),
        "investigated": f.investigated,
        "investigatedBy": (!f.investigated_by.is_empty()).then_some(&f.investigated_by),
        "investigatedAt": f.investigated_at_ms.map(|t| time(Some(t))),
        "outcome": (!f.outcome.is_empty()).then_some(&f.outcome),
        "note": f.note,
    })
}

fn overall(findings: &[FraudEvent]) -> &'static str {
    if findings.iter().any(|f| f.risk_level == "high") {
        "high"
    } else if findings.is_empty() {
        "none"
    } else {
        "medium"
    }
}

async fn track(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let now = dozor_model::time::now_ms();
    let mut list = items(&body)?;
    let mut events = Vec::with_capacity(list.len());
    for o in &mut list {
        if !["type", "event_type", "eventType", "event"]
            .iter()
            .any(|k| o.contains_key(*k))
        {
            o.insert("type".into(), json!("ticket_sale"));
        }
    }
    // Checked as events (the time, the price), stored (masked, durable), then judged.
    let body = serde_json::to_vec(&list).map_err(ApiError::internal)?;
    let records = times_and_records(&body, now, "ticket_sale")?;
    for (i, o) in list.iter().enumerate() {
        let mut e = detector_event(o, i, Kind::Purchase, records[i].time_ns / 1_000_000)?;
        e.kind = Kind::Purchase;
        events.push((e, Value::Object(o.clone())));
    }
    let accepted = records.len();
    let _permit = state.ingest_permit()?;
    let (masked, _) = super::logs::mask_kept(&state, &principal.tenant, records);
    super::logs::store(&state, &principal, masked).await?;
    let findings = detect(&state, &principal.tenant, events).await?;
    Ok(success(json!({
        "accepted": accepted,
        "riskLevel": overall(&findings),
        "fraud": findings.iter().map(finding_json).collect::<Vec<_>>(),
    })))
}

async fn check(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let now = dozor_model::time::now_ms();
    let mut list = items(&body)?;
    for o in &mut list {
        o.entry("type").or_insert(json!("fraud_check"));
    }
    let records = times_and_records(
        &serde_json::to_vec(&list).map_err(ApiError::internal)?,
        now,
        "fraud_check",
    )?;
    let events = list
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let at = records[i].time_ns / 1_000_000;
            Ok((
                detector_event(o, i, Kind::Purchase, at)?,
                Value::Object(o.clone()),
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let findings = detect(&state, &principal.tenant, events).await?;
    let reasons: Vec<&str> = findings.iter().map(|f| f.reason.as_str()).collect();
    Ok(success(json!({
        "riskLevel": overall(&findings),
        "isFraud": findings.iter().any(|f| f.risk_level == "high"),
        "reasons": reasons,
        "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
    })))
}

/// A LogQL metric query's series at `t` over the caller's logs.
pub(crate) async fn log_vector(
    state: &AppState,
    principal: &Principal,
    query: String,
    t: i64,
) -> Result<Vec<dozor_logs::logql::Series>, ApiError> {
    use dozor_logs::logql::{QueryResult, Range, parse};
    let expr = parse(&query).map_err(|e| ApiError::internal(format!("{query}: {e}")))?;
    let ns = t.saturating_mul(1_000_000);
    let range = Range {
        start_ns: ns,
        end_ns: ns,
        step_ns: 0,
        limit: 0,
        direction: dozor_logs::Direction::Backward,
    };
    let (result, _) = super::loki_query::run(state, principal, expr, range).await?;
    Ok(match result {
        QueryResult::Vector(s) | QueryResult::Matrix(s) => s,
        _ => Vec::new(),
    })
}

/// A LogQL metric query's single number at `t` over the caller's logs.
async fn log_number(
    state: &AppState,
    principal: &Principal,
    query: String,
    t: i64,
) -> Result<f64, ApiError> {
    let series = log_vector(state, principal, query, t).await?;
    Ok(series
        .first()
        .and_then(|s| s.points.last())
        .map_or(0.0, |p| p.1))
}

/// The `range` parameter (default 24h, 1m to 90d): as a LogQL range and in ms.
fn range_param(params: &Params) -> Result<(String, i64), ApiError> {
    params.range("range", 86_400_000, 60_000, 90 * 86_400_000)
}

/// The selector of ticket sales (every spelling the events route takes).
const SALES: &str = r#"{event=~"ticket_sale|ticket-sale|ticket-sales|ticket_sales"}"#;

pub(crate) async fn sales_of(
    state: &AppState,
    principal: &Principal,
    filter: &str,
    range: &str,
    now: i64,
) -> Result<Value, ApiError> {
    let q = |inner: String| log_number(state, principal, inner, now);
    let sales = q(format!("sum(count_over_time({SALES}{filter} [{range}]))")).await?;
    let tickets = q(format!(
        "sum(sum_over_time({SALES}{filter} | quantity != \"\" | unwrap quantity [{range}]))"
    ))
    .await?;
    let single = q(format!(
        "sum(count_over_time({SALES}{filter} | quantity = \"\" [{range}]))"
    ))
    .await?;
    // What each sale paid: `price`, or `amount` where there is no price.
    let revenue = q(format!(
        "sum(sum_over_time({SALES}{filter} | price != \"\" | unwrap price [{range}]))"
    ))
    .await?
        + q(format!(
            "sum(sum_over_time({SALES}{filter} | price = \"\" | amount != \"\" | unwrap amount [{range}]))"
        ))
        .await?;
    let buyers = q(format!(
        "count(sum by (user_id) (count_over_time({SALES}{filter} | user_id != \"\" [{range}])))"
    ))
    .await?;
    Ok(json!({
        "sales": sales,
        "tickets": tickets + single,
        "revenue": (revenue * 100.0).round() / 100.0,
        "buyers": buyers,
    }))
}

async fn sales(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(event): Path<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "analytics", "sales", &event).await?;
    let (range, _) = range_param(&params)?;
    let quoted = serde_json::to_string(&event).map_err(ApiError::internal)?;
    let filter = format!(" | event_id = {quoted}");
    let now = dozor_model::time::now_ms();
    let mut v = sales_of(&state, &principal, &filter, &range, now).await?;
    v["eventId"] = json!(event);
    v["range"] = json!(params.get("range").unwrap_or("24h"));
    Ok(success(v))
}

pub(crate) async fn fraud_metrics_json(
    state: &AppState,
    principal: &Principal,
    since: i64,
) -> Result<Value, ApiError> {
    let counts = state.store().fraud_counts(&principal.tenant, since).await?;
    let (mut by_pattern, mut by_risk, mut by_outcome) = (Map::new(), Map::new(), Map::new());
    let (mut total, mut open) = (0i64, 0i64);
    for (pattern, risk, investigated, outcome, n) in &counts.rows {
        total += n;
        if !investigated {
            open += n;
        }
        for (map, key) in [(&mut by_pattern, pattern), (&mut by_risk, risk)] {
            let e = map.entry(key.clone()).or_insert(json!(0));
            *e = json!(e.as_i64().unwrap_or(0) + n);
        }
        if *investigated {
            let e = by_outcome.entry(outcome.clone()).or_insert(json!(0));
            *e = json!(e.as_i64().unwrap_or(0) + n);
        }
    }
    Ok(json!({
        "total": total,
        "open": open,
        "byPattern": by_pattern,
        "byRisk": by_risk,
        "byOutcome": by_outcome,
    }))
}

/// The start of the `range` parameter's span, ms.
fn since(params: &Params) -> Result<i64, ApiError> {
    Ok(dozor_model::time::now_ms() - range_param(params)?.1)
}

async fn metrics(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "fraud", "metrics", params.raw()).await?;
    require_findings(&principal)?;
    Ok(success(
        fraud_metrics_json(&state, &principal, since(&params)?).await?,
    ))
}

async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(
        &state,
        &principal,
        source,
        "analytics",
        "dashboard",
        params.raw(),
    )
    .await?;
    let (range, _) = range_param(&params)?;
    let now = dozor_model::time::now_ms();
    let sales = sales_of(&state, &principal, "", &range, now).await?;
    let fraud = if sees_findings(&principal) {
        fraud_metrics_json(&state, &principal, since(&params)?).await?
    } else {
        Value::Null
    };
    Ok(success(json!({
        "range": params.get("range").unwrap_or("24h"),
        "sales": sales,
        "fraud": fraud,
    })))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "fraud", "events", params.raw()).await?;
    require_findings(&principal)?;
    let opt = |k: &str| params.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
    let investigated = match params.get("investigated") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"investigated\": {other:?} is neither true nor false"
            )));
        }
    };
    let filter = FraudFilter {
        pattern: opt("pattern"),
        risk_level: opt("riskLevel").or_else(|| opt("risk_level")),
        user_id: opt("userId").or_else(|| opt("user_id")),
        investigated,
        since_ms: params
            .get("since")
            .map(|_| params.time("since", 0))
            .transpose()?,
        limit: i64::try_from(params.limit()?.unwrap_or(100).min(10_000)).unwrap_or(100),
    };
    let rows = state
        .store()
        .fraud_events(&principal.tenant, &filter)
        .await?;
    Ok(success(json!({
        "events": rows.iter().map(finding_json).collect::<Vec<_>>()
    })))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "fraud", "event", &id).await?;
    require_findings(&principal)?;
    let e = state
        .store()
        .fraud_event(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no fraud event {id}")))?;
    Ok(success(finding_json(&e)))
}

const OUTCOMES: [&str; 3] = ["confirmed", "false_positive", "inconclusive"];

async fn investigate(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_findings(&principal)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_data(format!("body: invalid JSON: {e}")))?;
    let outcome = v
        .get("outcome")
        .and_then(Value::as_str)
        .filter(|o| OUTCOMES.contains(o))
        .ok_or_else(|| ApiError::bad_data("outcome: confirmed, false_positive or inconclusive"))?;
    let note = match v.get("note") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) if s.chars().count() <= 2000 => s.as_str(),
        Some(_) => {
            return Err(ApiError::bad_data(
                "note: a text of at most 2000 characters",
            ));
        }
    };
    let now = dozor_model::time::now_ms();
    let e = state
        .store()
        .investigate_fraud_event(&principal.tenant, &id, &principal.actor, now, outcome, note)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no fraud event {id}")))?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "fraud.investigate",
        format!("fraud_event/{id}"),
        Outcome::Success,
    )
    .source(source)
    .detail("outcome", outcome)
    .detail("pattern", e.pattern.as_str());
    state.audit_entry(entry).await?;
    Ok((StatusCode::OK, success(finding_json(&e))))
}
