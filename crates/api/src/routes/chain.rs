//! Seed 004's chain monitoring: the NFT mints and transfers behind the tickets, watched —
//! never submitted — through the chain events the marketplace reports (business events of
//! type `chain-events` and its spellings, `dozor_ingest::events::CHAIN_TYPES`; one event
//! per step of a transaction's life, identified by its `signature`):
//!
//! - `GET /api/v1/chain/transactions?range=24h&status=&operation=&token=&address=&limit=100`:
//!   seed 004's `nft_transfers` — each transaction of the range in its latest state
//!   (status, error, token, from and to address, amount, confirmation time, when it was
//!   first and last reported), newest first; `status` and `address` (either side) filter
//!   on that latest state;
//! - `GET /api/v1/chain/transactions/{signature}?range=7d`: one transaction's state and
//!   every event of it (seed 004's `getTransactionStatus`);
//! - `GET /api/v1/chain/metrics?range=1h`: per operation, the events by status, the settled
//!   transactions (confirmed or failed), the failure ratio, the median and 95th percentile
//!   of the confirmation time; the commonest errors; and the chain RPC nodes' health from
//!   the `jsonrpc` probes (`probe_success`, `probe_duration_seconds`).
//!
//! All are read scope and audited; the events are read as the caller sees them (a scoped
//! role sees the events of its data classes and services). The `pack:ticketing` rules alert
//! on the same events through the series `deploy/rules/ticketing-chain.yml` records.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_ingest::events::{CHAIN_STATUSES, chain_selector};
use dozor_logs::Direction;
use dozor_logs::logql::{self, Range, pipeline::Line};
use dozor_model::Scope;
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::series::audit_read_of;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most events one listing reads; past it the answer says `truncated`.
const MAX_SCAN: usize = 200_000;
/// Most transactions one listing returns.
const MAX_LIMIT: usize = 10_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

pub(crate) fn register(r: Registry) -> Registry {
    let read = || Policy::Scope(Scope::Read);
    r.route(
        Method::GET,
        "/api/v1/chain/transactions",
        read(),
        transactions,
    )
    .route(
        Method::GET,
        "/api/v1/chain/transactions/{signature}",
        read(),
        transaction,
    )
    .route(Method::GET, "/api/v1/chain/metrics", read(), metrics)
}

/// A transaction as its events tell it: the newest non-empty value of each field.
#[derive(Debug, Default)]
struct Tx {
    signature: String,
    status: String,
    /// When the status was reported, and its place in a transaction's life (for events of
    /// the same time).
    status_at: (i64, usize),
    first_ns: i64,
    fields: BTreeMap<&'static str, String>,
    events: usize,
}

/// The fields of a transaction the answers carry, as stored (snake_case) and as shown.
const FIELDS: [(&str, &str); 8] = [
    ("operation", "operation"),
    ("error", "error"),
    ("token_address", "tokenAddress"),
    ("from_address", "fromAddress"),
    ("to_address", "toAddress"),
    ("amount", "amount"),
    ("confirmation_ms", "confirmationMs"),
    ("service", "service"),
];

impl Tx {
    fn new(signature: &str) -> Tx {
        Tx {
            signature: signature.to_owned(),
            first_ns: i64::MAX,
            status_at: (i64::MIN, 0),
            ..Tx::default()
        }
    }

    /// Takes one event of the transaction, in any order.
    fn add(&mut self, line: &Line) {
        self.events += 1;
        self.first_ns = self.first_ns.min(line.time_ns);
        let status = line.labels.get("status");
        let at = (
            line.time_ns,
            CHAIN_STATUSES
                .iter()
                .position(|s| *s == status)
                .unwrap_or(0),
        );
        let newer = at >= self.status_at;
        if newer {
            self.status_at = at;
            self.status = status.to_owned();
        }
        for (name, _) in FIELDS {
            let v = line.labels.get(name);
            if !v.is_empty() && (newer || !self.fields.contains_key(name)) {
                self.fields.insert(name, v.to_owned());
            }
        }
    }

    fn json(&self) -> Value {
        let mut v = json!({
            "signature": self.signature,
            "status": self.status,
            "events": self.events,
            "firstSeen": logql::rfc3339_ns(self.first_ns),
            "lastSeen": logql::rfc3339_ns(self.status_at.0),
        });
        for (name, shown) in FIELDS {
            v[shown] = self
                .fields
                .get(name)
                .map_or(Value::Null, |s| field_json(name, s));
        }
        v
    }

    fn involves(&self, address: &str) -> bool {
        ["from_address", "to_address"]
            .iter()
            .any(|k| self.fields.get(k).is_some_and(|a| a == address))
    }
}

/// A field's value as the answers carry it: the numeric ones as numbers where they parse.
fn field_json(name: &str, value: &str) -> Value {
    match name {
        "amount" | "confirmation_ms" => value.parse::<f64>().map_or(json!(value), |n| json!(n)),
        _ => json!(value),
    }
}

/// `| label = "value"` for each given `(label, value)`: a LogQL label filter with the value
/// quoted as JSON quotes strings, which LogQL reads back unchanged.
fn filters(pairs: &[(&str, Option<&str>)]) -> Result<String, ApiError> {
    let mut out = String::new();
    for (label, value) in pairs {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            let quoted = serde_json::to_string(v).map_err(ApiError::internal)?;
            out.push_str(&format!(" | {label} = {quoted}"));
        }
    }
    Ok(out)
}

/// The chain events matching `pipeline` over the last `range_ms`, up to `limit`.
async fn events(
    state: &AppState,
    principal: &Principal,
    pipeline: &str,
    range_ms: i64,
    limit: usize,
    direction: Direction,
) -> Result<Vec<Line>, ApiError> {
    let query = format!("{} | signature != \"\"{pipeline}", chain_selector());
    let log = match logql::parse(&query) {
        Ok(logql::Expr::Log(log)) => log,
        Ok(logql::Expr::Metric(_)) => return Err(ApiError::internal("not a log query")),
        Err(e) => return Err(ApiError::internal(format!("{query}: {e}"))),
    };
    let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
    let range = Range {
        start_ns: now_ns.saturating_sub(range_ms.saturating_mul(1_000_000)),
        end_ns: now_ns,
        step_ns: 0,
        limit,
        direction,
    };
    super::loki_query::select_lines(state, principal, log, range).await
}

async fn transactions(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(
        &state,
        &principal,
        source,
        "chain",
        "transactions",
        params.raw(),
    )
    .await?;
    let (_, range_ms) = params.range("range", DAY_MS, 60_000, 30 * DAY_MS)?;
    let status = params.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !CHAIN_STATUSES.contains(&s)
    {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"status\": {s:?} is not one of {}",
            CHAIN_STATUSES.join(", ")
        )));
    }
    let limit = params.limit()?.unwrap_or(100);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"limit\": at most {MAX_LIMIT}"
        )));
    }
    let pipeline = filters(&[
        ("operation", params.get("operation")),
        ("token_address", params.get("token")),
    ])?;
    let lines = events(
        &state,
        &principal,
        &pipeline,
        range_ms,
        MAX_SCAN,
        Direction::Backward,
    )
    .await?;
    let truncated = lines.len() == MAX_SCAN;
    let mut txs: HashMap<String, Tx> = HashMap::new();
    for line in &lines {
        let signature = line.labels.get("signature");
        txs.entry(signature.to_owned())
            .or_insert_with(|| Tx::new(signature))
            .add(line);
    }
    let address = params.get("address").filter(|a| !a.is_empty());
    let mut list: Vec<Tx> = txs
        .into_values()
        .filter(|t| status.is_none_or(|s| t.status == s))
        .filter(|t| address.is_none_or(|a| t.involves(a)))
        .collect();
    list.sort_by(|a, b| {
        b.status_at
            .0
            .cmp(&a.status_at.0)
            .then_with(|| a.signature.cmp(&b.signature))
    });
    let total = list.len();
    if limit > 0 {
        list.truncate(limit);
    }
    Ok(success(json!({
        "transactions": list.iter().map(Tx::json).collect::<Vec<_>>(),
        "total": total,
        "truncated": truncated,
    })))
}

async fn transaction(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(signature): Path<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(
        &state,
        &principal,
        source,
        "chain",
        "transaction",
        &signature,
    )
    .await?;
    let (_, range_ms) = params.range("range", 7 * DAY_MS, 60_000, 90 * DAY_MS)?;
    let pipeline = filters(&[("signature", Some(signature.as_str()))])?;
    let lines = events(
        &state,
        &principal,
        &pipeline,
        range_ms,
        10_000,
        Direction::Forward,
    )
    .await?;
    if lines.is_empty() {
        return Err(ApiError::not_found(format!(
            "no chain events of transaction {signature} in the last {}",
            params.get("range").unwrap_or("7d")
        )));
    }
    let mut tx = Tx::new(&signature);
    let history: Vec<Value> = lines
        .iter()
        .map(|l| {
            tx.add(l);
            let mut e = json!({
                "time": logql::rfc3339_ns(l.time_ns),
                "status": l.labels.get("status"),
            });
            for (name, shown) in [("error", "error"), ("confirmation_ms", "confirmationMs")] {
                let v = l.labels.get(name);
                if !v.is_empty() {
                    e[shown] = field_json(name, v);
                }
            }
            e
        })
        .collect();
    let mut v = tx.json();
    v["history"] = json!(history);
    Ok(success(v))
}

async fn metrics(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "chain", "metrics", params.raw()).await?;
    let (range, _) = params.range("range", HOUR_MS, 60_000, 30 * DAY_MS)?;
    let now = dozor_model::time::now_ms();
    let sel = chain_selector();
    let log = |q: String| super::analytics::log_vector(&state, &principal, q, now);
    // Per operation: events by status, then the settled ones and the confirmation times.
    let mut ops: BTreeMap<String, Value> = BTreeMap::new();
    for s in log(format!(
        "sum by (operation, status) (count_over_time({sel}[{range}]))"
    ))
    .await?
    {
        operation(&mut ops, &s)["events"][label(&s.labels, "status")] = json!(last(&s));
    }
    for (q, key) in [(0.5, "p50"), (0.95, "p95")] {
        for s in log(format!(
            "quantile_over_time({q}, {sel} | status=\"confirmed\" | confirmation_ms != \"\" | unwrap confirmation_ms [{range}]) by (operation)"
        ))
        .await?
        {
            operation(&mut ops, &s)["confirmationMs"][key] = json!(last(&s).round());
        }
    }
    let operations: Vec<Value> = ops
        .into_values()
        .map(|mut e| {
            let n = |s: &str| e["events"][s].as_f64().unwrap_or(0.0);
            let (failed, settled) = (n("failed"), n("failed") + n("confirmed"));
            e["settled"] = json!(settled);
            e["failed"] = json!(failed);
            e["failureRatio"] = if settled > 0.0 {
                json!(failed / settled)
            } else {
                Value::Null
            };
            if e.get("confirmationMs").is_none() {
                e["confirmationMs"] = Value::Null;
            }
            e
        })
        .collect();
    let mut errors: Vec<Value> = log(format!(
        "sum by (operation, error) (count_over_time({sel} | status=\"failed\" [{range}]))"
    ))
    .await?
    .iter()
    .map(|s| {
        json!({
            "operation": label(&s.labels, "operation"),
            "error": label(&s.labels, "error"),
            "count": last(s),
        })
    })
    .collect();
    errors.sort_by(|a, b| {
        b["count"]
            .as_f64()
            .partial_cmp(&a["count"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    errors.truncate(10);
    // The chain's RPC nodes, from the `jsonrpc` probes.
    let up = super::dashboard::by_label(
        &state,
        &principal,
        "probe_success{kind=\"jsonrpc\"}".into(),
        "probe",
        now,
        0,
    )
    .await?;
    let took = super::dashboard::by_label(
        &state,
        &principal,
        "probe_duration_seconds{kind=\"jsonrpc\"}".into(),
        "probe",
        now,
        0,
    )
    .await?;
    let rpc: Vec<Value> = up
        .iter()
        .map(|(probe, v)| json!({"probe": probe, "up": *v == 1.0, "durationSeconds": took.get(probe)}))
        .collect();
    Ok(success(json!({
        "range": params.get("range").unwrap_or("1h"),
        "operations": operations,
        "errors": errors,
        "rpc": rpc,
    })))
}

/// The entry of the operation `s` is about.
fn operation<'a>(ops: &'a mut BTreeMap<String, Value>, s: &logql::Series) -> &'a mut Value {
    let name = label(&s.labels, "operation");
    ops.entry(name.to_owned())
        .or_insert_with(|| json!({"operation": name, "events": {}}))
}

fn label<'a>(key: &'a logql::Key, name: &str) -> &'a str {
    key.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn last(s: &logql::Series) -> f64 {
    s.points.last().map_or(0.0, |p| p.1)
}
