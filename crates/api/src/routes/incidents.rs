//! Incidents over the caller's tenant (seed 004's `incidents` and its routes), opened by
//! hand here or from critical alert groups by the binary:
//!
//! - `GET /api/v1/incidents` (`status`, `severity`, `service`, `limit` default 100,
//!   `offset`), newest first; `POST /api/v1/incidents` (`title`, `description`, `severity`,
//!   `service_name`) opens one by hand.
//! - `GET /api/v1/incidents/{id}`: the incident with its timeline and collected context;
//!   `PUT` changes `title`, `description`, `severity`, `service_name`, `postmortem`;
//!   `DELETE` removes it with its timeline.
//! - `POST …/acknowledge`, `POST …/resolve`, `POST …/reopen` (body `{"comment": …}`,
//!   optional) and `POST …/notes` (`{"text": …}`): status changes and notes, each on the
//!   timeline with who did it.
//! - `GET /api/v1/dashboard/incidents`: counts by status and severity, mean time to
//!   acknowledge and to resolve over `since` (default 30 days), the open ones.
//!
//! Changes are audited (`incident.create`, `incident.update`, `incident.delete`,
//! `incident.acknowledge`, `incident.resolve`, `incident.reopen`, `incident.note`), and so
//! are reads.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use dozor_model::time::now_ms;
use dozor_state::incidents::{Incident, IncidentEvent, IncidentFilter};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::rules::time;
use crate::{ApiError, AppState, ClientAddr, Principal};

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
const STATUSES: [&str; 3] = ["open", "acknowledged", "resolved"];

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/incidents",
        Policy::Scope(Scope::Read),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/incidents",
        Policy::Scope(Scope::Write),
        create,
    )
    .route(
        Method::GET,
        "/api/v1/incidents/{id}",
        Policy::Scope(Scope::Read),
        one,
    )
    .route(
        Method::PUT,
        "/api/v1/incidents/{id}",
        Policy::Scope(Scope::Write),
        update,
    )
    .route(
        Method::DELETE,
        "/api/v1/incidents/{id}",
        Policy::Scope(Scope::Write),
        delete,
    )
    .route(
        Method::POST,
        "/api/v1/incidents/{id}/acknowledge",
        Policy::Scope(Scope::Write),
        acknowledge,
    )
    .route(
        Method::POST,
        "/api/v1/incidents/{id}/resolve",
        Policy::Scope(Scope::Write),
        resolve,
    )
    .route(
        Method::POST,
        "/api/v1/incidents/{id}/reopen",
        Policy::Scope(Scope::Write),
        reopen,
    )
    .route(
        Method::POST,
        "/api/v1/incidents/{id}/notes",
        Policy::Scope(Scope::Write),
        note,
    )
    .route(
        Method::GET,
        "/api/v1/dashboard/incidents",
        Policy::Scope(Scope::Read),
        dashboard,
    )
}

fn incident_json(i: &Incident) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "description": i.description,
        "status": i.status,
        "severity": i.severity,
        "service_name": i.service_name,
        "group_key": i.group_key,
        "detected_at": time(Some(i.detected_at_ms)),
        "acknowledged_at": i.acknowledged_at_ms.map(|t| time(Some(t))),
        "acknowledged_by": i.acknowledged_by,
        "resolved_at": i.resolved_at_ms.map(|t| time(Some(t))),
        "resolved_by": i.resolved_by,
        "postmortem": i.postmortem,
        "created_by": i.created_by,
        "updated_at": time(Some(i.updated_at_ms)),
    })
}

fn event_json(e: &IncidentEvent) -> Value {
    json!({
        "seq": e.seq,
        "at": time(Some(e.at_ms)),
        "kind": e.kind,
        "actor": e.actor,
        "text": e.text,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
    })
}

async fn audit(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    id: &str,
    detail: &str,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("incident/{id}"),
        Outcome::Success,
    )
    .source(source)
    .detail("detail", detail);
    state.audit_entry(entry).await
}

/// The body as a JSON object (an empty body is an empty object).
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_data("body: a JSON object")),
        Err(e) => Err(ApiError::bad_data(format!("body: not JSON ({e})"))),
    }
}

/// A string field: `None` when absent; an error naming it when not a string or too long.
fn text(m: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::bad_data(format!(
            "{field}: at most {max} characters"
        ))),
        Some(_) => Err(ApiError::bad_data(format!("{field}: a string"))),
    }
}

fn severity(m: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match text(m, "severity", 16)? {
        Some(s) if !SEVERITIES.contains(&s.as_str()) => Err(ApiError::bad_data(format!(
            "severity: one of {}",
            SEVERITIES.join(", ")
        ))),
        other => Ok(other),
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let status = params.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(ApiError::bad_data(format!(
            "status: one of {}",
            STATUSES.join(", ")
        )));
    }
    let offset = match params.get("offset") {
        None | Some("") => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::bad_data("offset: a number ≥ 0"))?,
    };
    let filter = IncidentFilter {
        status: status.map(str::to_owned),
        severity: params
            .get("severity")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        service: params
            .get("service")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        since_ms: None,
        limit: i64::try_from(params.limit()?.unwrap_or(100).min(1000)).unwrap_or(1000),
        offset,
    };
    audit(
        &state,
        &principal,
        source,
        "incident.list",
        "",
        params.raw(),
    )
    .await?;
    let rows = state.store().incidents(&principal.tenant, &filter).await?;
    Ok(success(json!({
        "incidents": rows.iter().map(incident_json).collect::<Vec<_>>(),
    })))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let m = object(&body)?;
    let title = text(&m, "title", 200)?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_data("title: required"))?;
    let now = now_ms();
    let i = state
        .store()
        .create_incident(
            &principal.tenant,
            &Incident {
                id: String::new(),
                title,
                description: text(&m, "description", 10_000)?.unwrap_or_default(),
                status: "open".into(),
                severity: severity(&m)?.unwrap_or_else(|| "warning".into()),
                service_name: text(&m, "service_name", 200)?.unwrap_or_default(),
                group_key: None,
                detected_at_ms: now,
                acknowledged_at_ms: None,
                acknowledged_by: None,
                resolved_at_ms: None,
                resolved_by: None,
                postmortem: String::new(),
                context: "{}".into(),
                created_by: principal.actor.clone(),
                updated_at_ms: now,
            },
        )
        .await?;
    add_event(&state, &principal, &i.id, "status", "opened by hand".into()).await?;
    audit(
        &state,
        &principal,
        source,
        "incident.create",
        &i.id,
        &i.title,
    )
    .await?;
    Ok((axum::http::StatusCode::CREATED, success(incident_json(&i))))
}

async fn found(state: &AppState, principal: &Principal, id: &str) -> Result<Incident, ApiError> {
    state
        .store()
        .incident(&principal.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} not found")))
}

async fn add_event(
    state: &AppState,
    principal: &Principal,
    id: &str,
    kind: &str,
    text: String,
) -> Result<IncidentEvent, ApiError> {
    Ok(state
        .store()
        .add_incident_event(
            &principal.tenant,
            id,
            &IncidentEvent {
                seq: 0,
                at_ms: now_ms(),
                kind: kind.to_owned(),
                actor: principal.actor.clone(),
                text,
                data: "{}".into(),
            },
        )
        .await?)
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit(&state, &principal, source, "incident.read", &id, "").await?;
    let i = found(&state, &principal, &id).await?;
    let events = state
        .store()
        .incident_events(&principal.tenant, &id)
        .await?;
    let mut v = incident_json(&i);
    v["timeline"] = events.iter().map(event_json).collect();
    v["context"] = serde_json::from_str(&i.context).unwrap_or(Value::Null);
    Ok(success(v))
}

async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let m = object(&body)?;
    if let Some(k) = m.keys().find(|k| {
        ![
            "title",
            "description",
            "severity",
            "service_name",
            "postmortem",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiError::bad_data(format!(
            "{k}: not a field that can be changed (status changes through acknowledge, resolve and reopen)"
        )));
    }
    let mut i = found(&state, &principal, &id).await?;
    if let Some(t) = text(&m, "title", 200)? {
        if t.trim().is_empty() {
            return Err(ApiError::bad_data("title: must not be empty"));
        }
        i.title = t;
    }
    if let Some(d) = text(&m, "description", 10_000)? {
        i.description = d;
    }
    if let Some(s) = severity(&m)? {
        i.severity = s;
    }
    if let Some(s) = text(&m, "service_name", 200)? {
        i.service_name = s;
    }
    let postmortem = text(&m, "postmortem", 100_000)?;
    if let Some(p) = &postmortem {
        i.postmortem.clone_from(p);
    }
    i.updated_at_ms = now_ms();
    state.store().update_incident(&principal.tenant, &i).await?;
    if postmortem.is_some() {
        add_event(
            &state,
            &principal,
            &id,
            "postmortem",
            "postmortem written".into(),
        )
        .await?;
    }
    let fields: Vec<&str> = m.keys().map(String::as_str).collect();
    audit(
        &state,
        &principal,
        source,
        "incident.update",
        &id,
        &fields.join(","),
    )
    .await?;
    Ok(success(incident_json(&i)))
}

async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !state
        .store()
        .delete_incident(&principal.tenant, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("incident {id} not found")));
    }
    audit(&state, &principal, source, "incident.delete", &id, "").await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A status change: `to`, from the statuses in `from`.
pub(crate) async fn transition(
    state: &AppState,
    principal: &Principal,
    source: String,
    id: &str,
    body: &[u8],
    to: &str,
) -> Result<Value, ApiError> {
    let m = object(body)?;
    let comment = text(&m, "comment", 10_000)?;
    let mut i = found(state, principal, id).await?;
    let allowed = match to {
        "acknowledged" => i.status == "open",
        "resolved" => i.status != "resolved",
        _ => i.status == "resolved",
    };
    if !allowed {
        return Err(ApiError::conflict(format!(
            "incident {id} is {}: it cannot become {to}",
            i.status
        )));
    }
    let now = now_ms();
    match to {
        "acknowledged" => {
            i.acknowledged_at_ms = Some(now);
            i.acknowledged_by = Some(principal.actor.clone());
        }
        "resolved" => {
            i.resolved_at_ms = Some(now);
            i.resolved_by = Some(principal.actor.clone());
        }
        _ => {
            i.resolved_at_ms = None;
            i.resolved_by = None;
        }
    }
    i.status = if to == "reopened" {
        "open".into()
    } else {
        to.into()
    };
    i.updated_at_ms = now;
    state.store().update_incident(&principal.tenant, &i).await?;
    // No one listening (no alerting configured) is fine.
    let _ = state
        .settings()
        .incident_changes
        .send(dozor_alerting::incident::Change {
            tenant: principal.tenant.clone(),
            id: i.id.clone(),
            group_key: i.group_key.clone(),
            status: i.status.clone(),
        });
    let sentence = match &comment {
        Some(c) => format!("{to}: {c}"),
        None => to.to_owned(),
    };
    let kind = if to == "acknowledged" {
        "acknowledged"
    } else {
        "status"
    };
    add_event(state, principal, id, kind, sentence).await?;
    let action = match to {
        "acknowledged" => "incident.acknowledge",
        "resolved" => "incident.resolve",
        _ => "incident.reopen",
    };
    audit(
        state,
        principal,
        source,
        action,
        id,
        comment.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(incident_json(&i))
}

async fn acknowledge(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    transition(&state, &principal, source, &id, &body, "acknowledged")
        .await
        .map(success)
}

async fn resolve(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    transition(&state, &principal, source, &id, &body, "resolved")
        .await
        .map(success)
}

async fn reopen(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    transition(&state, &principal, source, &id, &body, "reopened")
        .await
        .map(success)
}

async fn note(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let m = object(&body)?;
    let note = text(&m, "text", 10_000)?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_data("text: required"))?;
    found(&state, &principal, &id).await?;
    let e = add_event(&state, &principal, &id, "note", note).await?;
    audit(&state, &principal, source, "incident.note", &id, "").await?;
    Ok((axum::http::StatusCode::CREATED, success(event_json(&e))))
}

async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let since = match params.duration("since")? {
        Some(d) => now - d,
        None => now - 30 * 24 * 3600 * 1000,
    };
    audit(
        &state,
        &principal,
        source,
        "incident.dashboard",
        "",
        params.raw(),
    )
    .await?;
    let rows = state
        .store()
        .incidents(
            &principal.tenant,
            &IncidentFilter {
                since_ms: Some(since),
                limit: 100_000,
                ..IncidentFilter::default()
            },
        )
        .await?;
    let mut by_status: Map<String, Value> = STATUSES
        .iter()
        .map(|s| ((*s).to_owned(), json!(0)))
        .collect();
    let mut by_severity: Map<String, Value> = SEVERITIES
        .iter()
        .map(|s| ((*s).to_owned(), json!(0)))
        .collect();
    for i in &rows {
        for (map, key) in [(&mut by_status, &i.status), (&mut by_severity, &i.severity)] {
            let n = map.get(key.as_str()).and_then(Value::as_i64).unwrap_or(0);
            map.insert(key.clone(), json!(n + 1));
        }
    }
    let mean = |xs: Vec<i64>| {
        (!xs.is_empty()).then(|| xs.iter().sum::<i64>() as f64 / xs.len() as f64 / 1000.0)
    };
    let mtta = mean(
        rows.iter()
            .filter_map(|i| Some(i.acknowledged_at_ms? - i.detected_at_ms))
            .collect(),
    );
    let mttr = mean(
        rows.iter()
            .filter_map(|i| Some(i.resolved_at_ms? - i.detected_at_ms))
            .collect(),
    );
    let open: Vec<Value> = rows
        .iter()
        .filter(|i| i.status != "resolved")
        .take(50)
        .map(incident_json)
        .collect();
    Ok(success(json!({
        "since": time(Some(since)),
        "total": rows.len(),
        "by_status": by_status,
        "by_severity": by_severity,
        "mtta_seconds": mtta,
        "mttr_seconds": mttr,
        "open": open,
    })))
}
