//! Health: `/healthz` (the process answers) and `/readyz` (and its state store does), both
//! public; and seed 004's health routes, which read the probe collector's latest results
//! ([`crate::ProbeRegistry`]) for the caller's tenant (`read` scope, audited):
//!
//! - `GET /api/v1/health`: overall `ok`, `degraded` or `down`, from the services and
//!   Dozor's own readiness;
//! - `GET /api/v1/health/{service}`: one service and its probes (404 when unknown);
//! - `GET /api/v1/health/services/all`: every service;
//! - `GET /api/v1/health/dependencies`: the probes flagged as dependencies (databases,
//!   caches).
//!
//! A service is `ok` when every checked probe succeeded, `down` when every one failed,
//! `degraded` in between, and `unknown` before its first check. The static routes win over
//! `{service}` (the router prefers static segments), so no service can be named
//! `dependencies`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_ingest::probe::ProbeStatus;
use dozor_model::Scope;
use serde::Serialize;
use serde_json::json;

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    r.route(Method::GET, "/healthz", Policy::Public, healthz)
        .route(Method::GET, "/readyz", Policy::Public, readyz)
        .route(Method::GET, "/api/v1/health", read, overall)
        .route(Method::GET, "/api/v1/health/services/all", read, services)
        .route(
            Method::GET,
            "/api/v1/health/dependencies",
            read,
            dependencies,
        )
        .route(Method::GET, "/api/v1/health/{service}", read, service)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Whether the state store answers within 2 s; the error says why not.
async fn store_ready(state: &AppState) -> Result<(), &'static str> {
    match tokio::time::timeout(Duration::from_secs(2), state.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            Err("state store unreachable")
        }
        Err(_) => Err("state store did not answer within 2s"),
    }
}

/// The connectors' state; given a tenant, only its sources with their counters and last
/// error (`/readyz` is public and says no more than up or down).
fn sources_json(
    state: &AppState,
    tenant: Option<&dozor_model::TenantId>,
) -> Vec<serde_json::Value> {
    let detail = tenant.is_some();
    state
        .sources()
        .entries()
        .iter()
        .filter(|e| tenant.is_none_or(|t| *t == e.tenant))
        .map(|e| {
            let mut v = json!({"name": e.name, "kind": e.kind, "status": e.status()});
            if detail {
                let s = &e.stats;
                let n =
                    |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
                v["records"] = n(&s.records).into();
                v["errors"] = n(&s.errors).into();
                v["deadLetters"] = n(&s.dead_letters).into();
                v["lag"] = n(&s.lag).into();
                v["lastSuccessMs"] = n(&s.last_success_ms).into();
                v["lastError"] = s.last_error().into();
            }
            v
        })
        .collect()
}

/// Ready when the state store answers; a connector that is down does not make Dozor
/// unready (its HTTP ingest still works) but is listed as `down` under `sources`.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let sources = sources_json(&state, None);
    match store_ready(&state).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "sources": sources})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "error": e, "sources": sources})),
        ),
    }
}

/// The health of a service, of the dependencies, or of everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Health {
    Ok,
    Degraded,
    Down,
    Unknown,
}

/// Health of a set of probes: `ok` when every checked one succeeded, `down` when every one
/// failed, `degraded` in between, `unknown` when none was checked yet.
fn health_of<'a>(probes: impl IntoIterator<Item = &'a ProbeStatus>) -> Health {
    let (mut up, mut down) = (0, 0);
    for p in probes {
        match p.success {
            Some(true) => up += 1,
            Some(false) => down += 1,
            None => {}
        }
    }
    match (up, down) {
        (0, 0) => Health::Unknown,
        (_, 0) => Health::Ok,
        (0, _) => Health::Down,
        _ => Health::Degraded,
    }
}

/// Health of several services: as [`health_of`], over services rather than probes
/// (unknown ones left out); a degraded service degrades the whole.
fn combine(healths: impl IntoIterator<Item = Health>) -> Health {
    let (mut ok, mut down, mut other) = (0, 0, 0);
    for h in healths {
        match h {
            Health::Ok => ok += 1,
            Health::Down => down += 1,
            Health::Degraded => other += 1,
            Health::Unknown => {}
        }
    }
    match (ok, down, other) {
        (0, 0, 0) => Health::Unknown,
        (_, 0, 0) => Health::Ok,
        (0, _, 0) => Health::Down,
        _ => Health::Degraded,
    }
}

/// The services' combined health and their counts by health (`total`, `ok`, `degraded`,
/// `down`, `unknown`).
fn summary(services: &BTreeMap<String, Vec<ProbeStatus>>) -> (Health, serde_json::Value) {
    let mut counts: BTreeMap<&str, usize> =
        [("ok", 0), ("degraded", 0), ("down", 0), ("unknown", 0)].into();
    let mut healths = Vec::new();
    for probes in services.values() {
        let h = health_of(probes);
        healths.push(h);
        let key = match h {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::Unknown => "unknown",
        };
        *counts.entry(key).or_default() += 1;
    }
    let mut v = json!(counts);
    v["total"] = json!(services.len());
    (combine(healths), v)
}

/// The caller's services: their combined health (unknown when nothing was probed yet) and
/// the counts by health, for the overview dashboard.
pub(crate) fn services_summary(state: &AppState, principal: &Principal) -> serde_json::Value {
    let (status, mut counts) = summary(&by_service(state, principal));
    counts["status"] = json!(status);
    counts
}

/// The caller's probes grouped by service.
fn by_service(state: &AppState, principal: &Principal) -> BTreeMap<String, Vec<ProbeStatus>> {
    let mut out: BTreeMap<String, Vec<ProbeStatus>> = BTreeMap::new();
    for p in state.probes().for_tenant(&principal.tenant) {
        out.entry(p.service.clone()).or_default().push(p);
    }
    out
}

fn service_json(name: &str, probes: &[ProbeStatus]) -> serde_json::Value {
    json!({"service": name, "status": health_of(probes), "probes": probes})
}

async fn audit_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    target: String,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "health.read",
        target,
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await
}

async fn overall(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "health".into()).await?;
    let ready = store_ready(&state).await;
    let services = by_service(&state, &principal);
    let (combined, counts) = summary(&services);
    // Dozor itself not ready is down whatever the probes say; no probe checked yet is ok.
    let status = match (ready.is_ok(), combined) {
        (false, _) => Health::Down,
        (true, Health::Unknown) => Health::Ok,
        (true, h) => h,
    };
    let dependencies: Vec<ProbeStatus> = services
        .values()
        .flatten()
        .filter(|p| p.dependency)
        .cloned()
        .collect();
    Ok(success(json!({
        "status": status,
        "checkedAt": dozor_model::time::now_ms(),
        "dozor": {
            "status": if ready.is_ok() { Health::Ok } else { Health::Down },
            "error": ready.err(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSeconds": state.uptime().as_secs_f64(),
        },
        "services": counts,
        "dependencies": {
            "total": dependencies.len(),
            "status": health_of(&dependencies),
        },
        "sources": sources_json(&state, Some(&principal.tenant)),
    })))
}

async fn service(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, format!("health/{name}")).await?;
    let services = by_service(&state, &principal);
    let probes = services
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("service {name:?} has no probe")))?;
    Ok(success(service_json(&name, probes)))
}

async fn services(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "health/services".into()).await?;
    let services = by_service(&state, &principal);
    let all: Vec<serde_json::Value> = services
        .iter()
        .map(|(name, probes)| service_json(name, probes))
        .collect();
    Ok(success(json!({
        "status": combine(services.values().map(health_of)),
        "services": all,
    })))
}

async fn dependencies(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "health/dependencies".into()).await?;
    let deps: Vec<ProbeStatus> = state
        .probes()
        .for_tenant(&principal.tenant)
        .into_iter()
        .filter(|p| p.dependency)
        .collect();
    Ok(success(json!({
        "status": health_of(&deps),
        "dependencies": deps,
    })))
}
