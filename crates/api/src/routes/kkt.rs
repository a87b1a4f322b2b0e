//! The cash-register fleet (`kkt:` in `dozor.yml`, `dozor_kkt`): `GET /api/v1/kkt/fleet`
//! (every register with its health, FN, OFD queue and shift, and a summary),
//! `GET /api/v1/kkt/registers/{kkt}` (one in detail: error counts, the OFD's views) and
//! `GET /api/v1/kkt/registers/{kkt}/documents` (its fiscal documents, read from the driver
//! log in the log store). Read scope; the pack's tenant only; scoped roles see the fleet
//! when the pack's labels (`service`, `data_class`) are within their sight. Each read is
//! audited, the documents as a log read with the number of lines.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_logs::logql;
use dozor_model::{Scope, TenantId};
use serde_json::json;

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::loki_query::audit_log_read;
use crate::routes::series::audit_read_of;
use crate::visibility::Visibility;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Documents one call returns by default, and at most.
const DEFAULT_DOCUMENTS: usize = 100;
const MAX_DOCUMENTS: usize = 1000;

/// The pack as the API sees it.
#[derive(Clone)]
pub struct KktSettings {
    /// The tenant the fleet belongs to.
    pub tenant: TenantId,
    /// The fleet.
    pub fleet: Arc<dozor_kkt::Fleet>,
    /// Stream labels of the driver log.
    pub stream: Vec<(String, String)>,
    /// The labels scoped roles are judged by (`service`, `data_class`).
    pub labels: Vec<(String, String)>,
    /// The registers' default UTC offset, minutes.
    pub utc_offset_min: i32,
}

impl std::fmt::Debug for KktSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KktSettings")
            .field("tenant", &self.tenant)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/kkt/fleet",
        Policy::Scope(Scope::Read),
        fleet,
    )
    .route(
        Method::GET,
        "/api/v1/kkt/registers/{kkt}",
        Policy::Scope(Scope::Read),
        one,
    )
    .route(
        Method::GET,
        "/api/v1/kkt/registers/{kkt}/documents",
        Policy::Scope(Scope::Read),
        documents,
    )
}

/// The pack, if the caller may see it: its tenant, and the pack's labels within sight.
fn visible<'a>(
    state: &'a AppState,
    principal: &Principal,
) -> Result<Option<&'a KktSettings>, ApiError> {
    let Some(k) = state.settings().kkt.as_ref() else {
        return Ok(None);
    };
    if k.tenant != principal.tenant {
        return Ok(None);
    }
    let seen = match state.visibility(principal)? {
        Visibility::All => true,
        Visibility::Nothing => false,
        Visibility::Only(matchers) => matchers.iter().all(|m| {
            let value = k
                .labels
                .iter()
                .find(|(n, _)| *n == m.name)
                .map_or("", |(_, v)| v.as_str());
            m.matches(value)
        }),
    };
    Ok(seen.then_some(k))
}

/// The registers counted by status, and their total.
fn summary(registers: &[serde_json::Value]) -> serde_json::Value {
    let mut summary = serde_json::Map::new();
    for s in ["ok", "warning", "critical", "blocked", "down", "unknown"] {
        summary.insert(s.to_owned(), json!(0));
    }
    for r in registers {
        if let Some(n) = r["status"].as_str().and_then(|s| summary.get_mut(s)) {
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
    }
    summary.insert("total".to_owned(), json!(registers.len()));
    serde_json::Value::Object(summary)
}

/// The fleet's counts by status, when the caller may see the pack.
pub(crate) fn fleet_summary(
    state: &AppState,
    principal: &Principal,
) -> Result<Option<serde_json::Value>, ApiError> {
    Ok(visible(state, principal)?.map(|k| summary(&k.fleet.list(dozor_model::time::now_ms()))))
}

async fn fleet(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "kkt", "fleet", "").await?;
    let now = dozor_model::time::now_ms();
    let (registers, providers) = match visible(&state, &principal)? {
        Some(k) => (k.fleet.list(now), k.fleet.providers()),
        None => (Vec::new(), Vec::new()),
    };
    let summary = summary(&registers);
    Ok(success(json!({
        "summary": summary,
        "registers": registers,
        "ofd": providers,
    })))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(kkt): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "kkt", "register", &kkt).await?;
    let now = dozor_model::time::now_ms();
    visible(&state, &principal)?
        .and_then(|k| k.fleet.get(&kkt, now))
        .map(success)
        .ok_or_else(|| ApiError::not_found(format!("no register {kkt:?}")))
}

async fn documents(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(kkt): Path<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let limit = params.limit()?.unwrap_or(DEFAULT_DOCUMENTS);
    if limit > MAX_DOCUMENTS {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"limit\": at most {MAX_DOCUMENTS}"
        )));
    }
    let now = dozor_model::time::now_ms();
    let end = params.time("end", now)?;
    let start = params.time("start", end.saturating_sub(86_400_000))?;
    if start > end {
        return Err(ApiError::bad_data(
            "invalid parameter \"start\": after \"end\"",
        ));
    }
    let Some(k) = visible(&state, &principal)?.cloned() else {
        audit_log_read(
            &state,
            &principal,
            source,
            "kkt.documents",
            &kkt,
            "lines",
            0,
        )
        .await?;
        return Err(ApiError::not_found(format!("no register {kkt:?}")));
    };
    // The selector of the driver log, and the register's number and the event as needles
    // (the bloom filters skip the blocks without them).
    let selector: Vec<String> = k
        .stream
        .iter()
        .map(|(n, v)| format!("{n}={}", quote(v)))
        .collect();
    let query = format!(
        "{{{}}} |= {} |= {}",
        selector.join(","),
        quote(&kkt),
        quote("\"document\"")
    );
    let log = match logql::parse(&query) {
        Ok(logql::Expr::Log(log)) => log,
        _ => {
            return Err(ApiError::bad_data(format!(
                "invalid register number {kkt:?}"
            )));
        }
    };
    let range = logql::Range {
        start_ns: start.saturating_mul(1_000_000),
        end_ns: end.saturating_mul(1_000_000).saturating_add(999_999),
        step_ns: 0,
        // Lines that mention the register without being its documents are filtered below.
        limit: limit.saturating_mul(2),
        direction: dozor_logs::Direction::Backward,
    };
    let lines = super::loki_query::select_lines(&state, &principal, log, range).await?;
    let mut out = Vec::new();
    for line in &lines {
        let Ok(event) = dozor_kkt::parse_line(line.line.as_bytes(), k.utc_offset_min) else {
            continue;
        };
        if event.kkt.reg_number != kkt {
            continue;
        }
        if let dozor_kkt::event::Body::Document(d) = event.body {
            out.push(json!({
                "at": dozor_model::time::rfc3339_ns(event.ts.saturating_mul(1_000_000)),
                "fd_number": d.fd_number,
                "kind": d.kind,
                "kind_code": d.kind.code(),
                "datetime": d.datetime,
                "fpd": d.fpd,
                "shift": d.shift,
                "operation": d.operation,
                "total_kop": d.total_kop,
                "cash_kop": d.cash_kop,
                "cashless_kop": d.cashless_kop,
            }));
            if out.len() == limit {
                break;
            }
        }
    }
    audit_log_read(
        &state,
        &principal,
        source,
        "kkt.documents",
        &kkt,
        "lines",
        out.len() as u64,
    )
    .await?;
    Ok(success(json!({ "kkt": kkt, "documents": out })))
}

/// A LogQL string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_escapes() {
        assert_eq!(super::quote("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
