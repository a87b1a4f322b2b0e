//! Reports (seed 004's `/api/v1/reports`): definitions (`crate::reports`) stored per tenant
//! with the time of their next scheduled run; generation on demand; each generation's
//! history with its HTML and CSV.
//!
//! - `GET /api/v1/reports`, `POST /api/v1/reports`: list, create (write scope);
//! - `GET`, `PUT`, `DELETE /api/v1/reports/{id}`;
//! - `POST /api/v1/reports/{id}/generate`: renders it now as its owner sees the data, stores
//!   the run, and with `{"deliver": true}` queues it for the scheduler to e-mail;
//! - `GET /api/v1/reports/{id}/history`: its runs, newest first;
//! - `GET /api/v1/reports/history/{id}`: one run; `?format=html|csv` answers the document;
//! - `GET /api/v1/reports/scheduled`: the enabled scheduled reports by next run.
//!
//! A run holds what its owner may see. Roles that see the whole tenant (admin, operator,
//! viewer, API tokens) read and manage every report; the scoped roles (support,
//! developer, business) only their own, others answering 404. Changes and generations
//! are audited; reads are audited as data reads.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use dozor_model::time::now_ms;
use dozor_state::reports::{ReportWrite, RunWrite, StoredReport, StoredRun};
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::reports::{ReportSpec, check, next_run, render, run_as};
use crate::routes::rules::time;
use crate::routes::series::audit_read_of;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    let write = Policy::Scope(Scope::Write);
    r.route(Method::GET, "/api/v1/reports", read, list)
        .route(Method::POST, "/api/v1/reports", write, create)
        .route(Method::GET, "/api/v1/reports/scheduled", read, scheduled)
        .route(Method::GET, "/api/v1/reports/{id}", read, one)
        .route(Method::PUT, "/api/v1/reports/{id}", write, update)
        .route(Method::DELETE, "/api/v1/reports/{id}", write, delete)
        .route(
            Method::POST,
            "/api/v1/reports/{id}/generate",
            write,
            generate,
        )
        .route(Method::GET, "/api/v1/reports/{id}/history", read, history)
        .route(Method::GET, "/api/v1/reports/history/{id}", read, run_one)
}

fn report_json(r: &StoredReport) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "definition": serde_json::from_str::<Value>(&r.definition).unwrap_or(Value::Null),
        "enabled": r.enabled,
        "nextRunAt": r.next_run_at_ms.map(|t| time(Some(t))),
        "owner": r.owner,
        "version": r.version,
        "createdAt": time(Some(r.created_at_ms)),
        "updatedBy": r.updated_by,
        "updatedAt": time(Some(r.updated_at_ms)),
    })
}

fn run_json(r: &StoredRun) -> Value {
    json!({
        "id": r.id,
        "reportId": r.report_id,
        "reportName": r.report_name,
        "trigger": r.trigger,
        "generatedAt": time(Some(r.generated_at_ms)),
        "rangeStart": time(Some(r.range_start_ms)),
        "rangeEnd": time(Some(r.range_end_ms)),
        "status": r.status,
        "recipients": serde_json::from_str::<Value>(&r.recipients).unwrap_or(Value::Null),
        "error": r.error,
        "deliveredAt": r.delivered_at_ms.map(|t| time(Some(t))),
    })
}

/// The stored form of a checked definition, and its next run from `now`.
fn write<'a>(spec: &'a ReportSpec, definition: &'a str, by: &'a str, now: i64) -> ReportWrite<'a> {
    ReportWrite {
        name: spec.name.trim(),
        definition,
        enabled: spec.enabled,
        next_run_at_ms: spec
            .schedule
            .as_ref()
            .filter(|_| spec.enabled)
            .and_then(|s| next_run(s, now)),
        by,
        at_ms: now,
    }
}

async fn audit(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    id: &str,
    name: &str,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("report/{id}"),
        Outcome::Success,
    )
    .source(source)
    .detail("name", name);
    state.audit_entry(entry).await
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "reports", "list", "").await?;
    let reports = state.store().reports(&principal.tenant).await?;
    Ok(success(json!({
        "reports": reports
            .iter()
            .filter(|r| may_see(&principal, r))
            .map(report_json)
            .collect::<Vec<_>>()
    })))
}

async fn scheduled(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "reports", "scheduled", "").await?;
    let mut reports: Vec<StoredReport> = state
        .store()
        .reports(&principal.tenant)
        .await?
        .into_iter()
        .filter(|r| r.enabled && r.next_run_at_ms.is_some() && may_see(&principal, r))
        .collect();
    reports.sort_by_key(|r| r.next_run_at_ms);
    Ok(success(json!({
        "reports": reports.iter().map(report_json).collect::<Vec<_>>()
    })))
}

/// Whether `principal` may read and manage `report`: its owner, or anyone who sees the
/// whole tenant (a run shows what its owner sees).
fn may_see(principal: &Principal, report: &StoredReport) -> bool {
    principal
        .role
        .is_none_or(|r| r.sees() == dozor_model::Sight::All)
        || report.owner == principal.actor
}

async fn stored(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<StoredReport, ApiError> {
    state
        .store()
        .report(&principal.tenant, id)
        .await?
        .filter(|r| may_see(principal, r))
        .ok_or_else(|| ApiError::not_found(format!("no report {id}")))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "reports", "read", &id).await?;
    Ok(success(report_json(
        &stored(&state, &principal, &id).await?,
    )))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let spec = check(&body)?;
    let definition = serde_json::to_string(&spec).map_err(ApiError::internal)?;
    let r = state
        .store()
        .create_report(
            &principal.tenant,
            write(&spec, &definition, &principal.actor, now_ms()),
        )
        .await?;
    audit(&state, &principal, source, "report.create", &r.id, &r.name).await?;
    Ok((StatusCode::CREATED, success(report_json(&r))))
}

async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let spec = check(&body)?;
    stored(&state, &principal, &id).await?;
    let definition = serde_json::to_string(&spec).map_err(ApiError::internal)?;
    let r = state
        .store()
        .update_report(
            &principal.tenant,
            &id,
            write(&spec, &definition, &principal.actor, now_ms()),
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report {id}")))?;
    audit(&state, &principal, source, "report.update", &r.id, &r.name).await?;
    Ok(success(report_json(&r)))
}

async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let r = stored(&state, &principal, &id).await?;
    state.store().delete_report(&principal.tenant, &id).await?;
    audit(&state, &principal, source, "report.delete", &id, &r.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renders `report` now as its owner sees the data, and stores the run: `pending` when it
/// is to be e-mailed (the scheduler sends it), `generated` otherwise.
pub async fn generate_run(
    state: &AppState,
    report: &StoredReport,
    tenant: &dozor_model::TenantId,
    trigger: &str,
    deliver: bool,
) -> Result<StoredRun, ApiError> {
    let spec: ReportSpec = serde_json::from_str(&report.definition).map_err(ApiError::internal)?;
    let principal = run_as(state, tenant, &report.owner).await?;
    let now = now_ms();
    let rendered = render(state, &principal, &spec, now).await?;
    let deliver = deliver && !spec.recipients.is_empty();
    let recipients = serde_json::to_string(&spec.recipients).map_err(ApiError::internal)?;
    let run = state
        .store()
        .add_report_run(
            tenant,
            RunWrite {
                report_id: &report.id,
                report_name: &report.name,
                trigger,
                generated_at_ms: now,
                range: rendered.range,
                status: if deliver { "pending" } else { "generated" },
                recipients: &recipients,
                html: &rendered.html,
                csv: &rendered.csv,
            },
        )
        .await?;
    Ok(run)
}

async fn generate(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let deliver = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_data(format!("invalid body: {e}")))?;
        match v.get("deliver") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad_data("deliver: true or false")),
        }
    };
    let r = stored(&state, &principal, &id).await?;
    let run = generate_run(&state, &r, &principal.tenant, "manual", deliver).await?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "report.generate",
        format!("report/{id}"),
        Outcome::Success,
    )
    .source(source)
    .detail("run", run.id.as_str())
    .detail("deliver", deliver);
    state.audit_entry(entry).await?;
    Ok((StatusCode::CREATED, success(run_json(&run))))
}

async fn history(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read_of(&state, &principal, source, "reports", "history", &id).await?;
    let limit = params.limit()?.unwrap_or(50).min(1000);
    stored(&state, &principal, &id).await?;
    let runs = state
        .store()
        .report_runs(&principal.tenant, &id, i64::try_from(limit).unwrap_or(1000))
        .await?;
    Ok(success(json!({
        "runs": runs.iter().map(run_json).collect::<Vec<_>>()
    })))
}

async fn run_one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    audit_read_of(&state, &principal, source, "reports", "run", &id).await?;
    let run = state
        .store()
        .report_run(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report run {id}")))?;
    // A scoped role reads only the runs of its own reports (a deleted report's runs are
    // for those who see everything).
    let owner_ok = match state
        .store()
        .report(&principal.tenant, &run.report_id)
        .await?
    {
        Some(r) => may_see(&principal, &r),
        None => principal
            .role
            .is_none_or(|r| r.sees() == dozor_model::Sight::All),
    };
    if !owner_ok {
        return Err(ApiError::not_found(format!("no report run {id}")));
    }
    let file = |ext: &str| {
        let name: String = run
            .report_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("attachment; filename=\"{name}-{}.{ext}\"", run.id)
    };
    Ok(match params.get("format") {
        None | Some("") => success(run_json(&run)).into_response(),
        Some("html") => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file("html")),
                // The document is shown as a download's content, never run here.
                (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
            ],
            run.html,
        )
            .into_response(),
        Some("csv") => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file("csv")),
            ],
            run.csv,
        )
            .into_response(),
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"format\": {other:?} is neither html nor csv"
            )));
        }
    })
}
