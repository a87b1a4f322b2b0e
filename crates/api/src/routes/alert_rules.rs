//! Structured alert rules (seed 003's threshold, trend, anomaly and composite kinds;
//! seed 004's `/alerts/rules` CRUD) over the caller's tenant:
//!
//! - `GET /api/v1/alerts/rules`: every rule, with the expression it compiled to and its
//!   evaluation state;
//! - `POST /api/v1/alerts/rules`: a new rule (the body is the rule, see
//!   `dozor_rules::structured`), 201 with it; a rule that does not check is a 400 naming
//!   the field (`invalid rule: condition.conditions[1].window: …`);
//! - `GET`, `PUT`, `DELETE /api/v1/alerts/rules/{id}`.
//!
//! Rules live in the state store; every change rebuilds the tenant's group of structured
//! rules in the shared `RuleSet` ([`reload`]), which the next evaluation runs. Rules whose
//! condition and labels did not change keep their alerts; the firing alerts of a changed
//! or deleted rule resolve. Changes are audited (`alert_rule.create`, `.update`,
//! `.delete`, target `alert_rule/<id>`), and so are reads.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use dozor_model::time::now_ms;
use dozor_rules::structured::{self, RuleSpec};
use dozor_rules::{AlertState, RuleSet};
use dozor_state::alert_rules::{RuleWrite, StoredRule};
use dozor_state::{StateError, Store, TenantId};
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::rules::time;
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/alerts/rules",
        Policy::Scope(Scope::Read),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/alerts/rules",
        Policy::Scope(Scope::Write),
        create,
    )
    .route(
        Method::GET,
        "/api/v1/alerts/rules/{id}",
        Policy::Scope(Scope::Read),
        one,
    )
    .route(
        Method::PUT,
        "/api/v1/alerts/rules/{id}",
        Policy::Scope(Scope::Write),
        update,
    )
    .route(
        Method::DELETE,
        "/api/v1/alerts/rules/{id}",
        Policy::Scope(Scope::Write),
        delete,
    )
    .route(
        Method::POST,
        "/api/v1/alerts/rules/preview",
        Policy::Scope(Scope::Read),
        preview,
    )
}

/// How far back a preview looks.
const PREVIEW_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Its evaluation step.
const PREVIEW_STEP_MS: i64 = 60_000;

/// `POST /api/v1/alerts/rules/preview`: what a rule (the body, as for a create) would have
/// done over the last day, evaluated every minute on the data as the caller sees it —
/// each episode where its condition held, from when, until when, and whether it held
/// long enough (`for`) to fire. Nothing is stored. Rules of anomaly detectors, evaluated
/// by Dozor natively with state, are not previewed (400).
async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let (spec, _) = checked(&body)?;
    let rule = spec
        .compile("preview")
        .map_err(|e| ApiError::bad_data(format!("invalid rule: {e}")))?;
    let dozor_rules::Expression::Promql(expr) = rule.parsed else {
        return Err(ApiError::bad_data(
            "condition: only PromQL conditions (threshold, trend, composite of them) are \
             previewed; anomaly detectors and log patterns learn as they run",
        ));
    };
    let for_ms = match rule.kind {
        dozor_rules::RuleKind::Alerting { for_ms, .. } => for_ms,
        dozor_rules::RuleKind::Recording => 0,
    };
    audit_read(
        &state,
        &principal,
        source,
        "alerts.rules.preview",
        &rule.expr,
    )
    .await?;
    let end = now_ms() / PREVIEW_STEP_MS * PREVIEW_STEP_MS;
    let spec = crate::routes::query::QuerySpec {
        expr,
        start: end - PREVIEW_SPAN_MS,
        end,
        step: PREVIEW_STEP_MS,
        instant: false,
    };
    let res = crate::routes::query::run(&state, &principal, state.settings().query, spec).await?;
    let series = match res.value {
        dozor_promql::Value::Matrix(m) => m,
        _ => Vec::new(),
    };
    let mut episodes = Vec::new();
    for s in &series {
        for (from, to) in holding_spans(s.samples.iter().map(|x| x.t), PREVIEW_STEP_MS) {
            let fired = to - from >= for_ms;
            episodes.push(json!({
                "labels": crate::routes::rules::map(&s.labels),
                "from": time(Some(from)),
                "until": time(Some(to)),
                "fired": fired,
                "firedAt": fired.then(|| time(Some(from + for_ms))),
            }));
        }
    }
    let fired = episodes.iter().filter(|e| e["fired"] == true).count();
    Ok(success(json!({
        "expression": rule.expr,
        "forMs": for_ms,
        "start": time(Some(end - PREVIEW_SPAN_MS)),
        "end": time(Some(end)),
        "stepMs": PREVIEW_STEP_MS,
        "fired": fired,
        "episodes": episodes,
    })))
}

/// The spans of consecutive evaluation steps at which a series had a value (its
/// condition held), as `(first, last)` times.
fn holding_spans(times: impl Iterator<Item = i64>, step: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for t in times {
        match out.last_mut() {
            Some((_, last)) if t - *last <= step => *last = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// Serialises changes within this process, so the group installed last is built from the
/// store as the last change left it.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Rebuilds `tenant`'s group of structured rules from the store and installs it in `set`.
/// A stored rule that no longer compiles is left out and logged.
pub async fn reload(store: &Store, set: &RuleSet, tenant: &TenantId) -> Result<(), StateError> {
    let rows = store.alert_rules(tenant).await?;
    let mut specs = Vec::with_capacity(rows.len());
    for row in &rows {
        match structured::from_json(row.spec.as_bytes()) {
            Ok(spec) => specs.push((row.id.as_str(), spec)),
            Err(e) => {
                tracing::error!(%tenant, rule = %row.id, error = %e, "a stored alert rule does not load");
            }
        }
    }
    let (group, failed) = structured::managed_group(specs.iter().map(|(id, s)| (*id, s)), None);
    for (id, e) in failed {
        tracing::error!(%tenant, rule = %id, error = %e, "a stored alert rule does not compile");
    }
    set.put_managed(tenant, group, now_ms());
    Ok(())
}

/// The rule in a request body, checked and compiled; the spec as stored.
fn checked(body: &[u8]) -> Result<(RuleSpec, String), ApiError> {
    let spec = structured::from_json(body)
        .and_then(|s| s.compile("check").map(|_| s))
        .map_err(|e| ApiError::bad_data(format!("invalid rule: {e}")))?;
    let text = serde_json::to_string(&spec).map_err(ApiError::internal)?;
    Ok((spec, text))
}

/// What storing `spec` (as `text`) by `principal` now writes.
fn rule_write<'a>(spec: &'a RuleSpec, text: &'a str, principal: &'a Principal) -> RuleWrite<'a> {
    RuleWrite {
        name: spec.name.trim(),
        spec: text,
        enabled: spec.enabled,
        by: principal.actor.as_str(),
        at_ms: now_ms(),
    }
}

fn rule_json(row: &StoredRule, set: &RuleSet, tenant: &TenantId) -> Value {
    let spec: Value = serde_json::from_str(&row.spec).unwrap_or(Value::Null);
    let mut v = json!({
        "id": row.id,
        "name": row.name,
        "enabled": row.enabled,
        "version": row.version,
        "createdBy": row.created_by,
        "createdAt": time(Some(row.created_at_ms)),
        "updatedBy": row.updated_by,
        "updatedAt": time(Some(row.updated_at_ms)),
        "rule": spec,
        "expression": structured::from_json(row.spec.as_bytes())
            .and_then(|s| s.compile(&row.id))
            .map_or(Value::Null, |r| Value::String(r.expr)),
        "state": "inactive",
        "health": "unknown",
        "lastError": "",
        "alerts": [],
    });
    for tg in set.of_tenant(tenant).into_iter().filter(|tg| tg.managed) {
        let g = tg.lock();
        let Some(r) = g
            .rules
            .iter()
            .find(|r| r.rule.labels.get("rule_id") == Some(&row.id))
        else {
            continue;
        };
        let active: Vec<_> = r
            .alerts_sorted()
            .into_iter()
            .filter(|a| a.state != AlertState::Inactive)
            .collect();
        let state = if active.iter().any(|a| a.state == AlertState::Firing) {
            "firing"
        } else if active.is_empty() {
            "inactive"
        } else {
            "pending"
        };
        v["state"] = json!(state);
        v["health"] = json!(r.health.as_str());
        v["lastError"] = json!(r.last_error.clone().unwrap_or_default());
        v["alerts"] = active
            .into_iter()
            .map(crate::routes::rules::alert_json)
            .collect();
    }
    v
}

async fn audit_change(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    row: &StoredRule,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("alert_rule/{}", row.id),
        Outcome::Success,
    )
    .source(source)
    .detail("name", row.name.as_str())
    .detail("version", row.version);
    state.audit_entry(entry).await
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "alerts.rules", params.raw()).await?;
    let rows = state.store().alert_rules(&principal.tenant).await?;
    let rules: Vec<Value> = rows
        .iter()
        .map(|r| rule_json(r, state.rules(), &principal.tenant))
        .collect();
    Ok(success(json!({ "rules": rules })))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "alerts.rules", &id).await?;
    let row = state
        .store()
        .alert_rule(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert rule {id}")))?;
    Ok(success(rule_json(&row, state.rules(), &principal.tenant)))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let (spec, text) = checked(&body)?;
    let _serial = CHANGES.lock().await;
    let write = rule_write(&spec, &text, &principal);
    let row = state
        .store()
        .create_alert_rule(&principal.tenant, write)
        .await?;
    reload(state.store(), state.rules(), &principal.tenant).await?;
    audit_change(&state, &principal, source, "alert_rule.create", &row).await?;
    Ok((
        StatusCode::CREATED,
        success(rule_json(&row, state.rules(), &principal.tenant)),
    ))
}

async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let (spec, text) = checked(&body)?;
    let _serial = CHANGES.lock().await;
    let write = rule_write(&spec, &text, &principal);
    let row = state
        .store()
        .update_alert_rule(&principal.tenant, &id, write)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert rule {id}")))?;
    reload(state.store(), state.rules(), &principal.tenant).await?;
    audit_change(&state, &principal, source, "alert_rule.update", &row).await?;
    Ok(success(rule_json(&row, state.rules(), &principal.tenant)))
}

async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let _serial = CHANGES.lock().await;
    let row = state
        .store()
        .alert_rule(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert rule {id}")))?;
    if !state
        .store()
        .delete_alert_rule(&principal.tenant, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("no alert rule {id}")));
    }
    reload(state.store(), state.rules(), &principal.tenant).await?;
    audit_change(&state, &principal, source, "alert_rule.delete", &row).await?;
    Ok(success(json!({ "id": id, "deleted": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_runs_of_consecutive_steps() {
        let at = |m: &[i64]| m.iter().map(|x| x * 60_000).collect::<Vec<_>>();
        let spans = holding_spans(at(&[1, 2, 3, 7, 9, 10]).into_iter(), 60_000);
        assert_eq!(
            spans,
            [(60_000, 180_000), (420_000, 420_000), (540_000, 600_000)]
        );
        assert!(holding_spans(std::iter::empty(), 60_000).is_empty());
    }
}
