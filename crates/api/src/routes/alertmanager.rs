//! Alertmanager's API v2, the part its clients use, over the caller's tenant: Prometheus and
//! vmalert post alerts (`POST /api/v2/alerts`), `amtool` and Grafana read alerts and groups
//! and manage silences. Shapes follow Alertmanager's OpenAPI specification
//! (`api/v2/openapi.yaml`): camelCase fields, RFC 3339 times, a silence's matchers as
//! `{name, value, isRegex, isEqual}`.
//!
//! - `GET /api/v2/alerts`: unresolved alerts with `status.state` (`active`, `suppressed`),
//!   `silencedBy`, `inhibitedBy` and `receivers`; filters `filter` (matchers, repeatable),
//!   `receiver` (a regex), `active`, `silenced`, `inhibited` (booleans, default true).
//! - `POST /api/v2/alerts`: a JSON array of `{labels, annotations, startsAt, endsAt,
//!   generatorURL}`; an alert without `endsAt` fires until `resolve_timeout` after it was
//!   last posted (Prometheus re-sends firing alerts, so they stay up while it does).
//! - `GET /api/v2/alerts/groups`: the dispatcher's groups with their receiver and alerts.
//! - `GET/POST /api/v2/silences`, `GET/DELETE /api/v2/silence/{id}`: silences, stored in
//!   the state store before the answer, changed as Alertmanager changes them (see
//!   `dozor_alerting::silence`).
//! - `GET /api/v2/status`, `GET /api/v2/receivers`: the configuration as loaded.
//! - `GET /api/v1/alerts/deliveries` (Dozor's): the delivery log, newest first —
//!   receiver, integration, group, alerts, `sent`/`failed`, attempts, last error, duration;
//!   `receiver` and `limit` (default 100, at most 1000).
//!
//! Posting alerts needs the ingest scope, silences the write scope, reads the read scope.
//! Silence changes are audited (`silence.create`, `silence.update`, `silence.expire`), and
//! so are reads; posted alerts are data, like ingested samples, and are not.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_alerting::manager::AlertView;
use dozor_alerting::matchers::parse_matchers;
use dozor_alerting::silence::{Silence, Upserted, matchers_from_json, matchers_json};
use dozor_audit::{Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_model::{Labels, Matcher, Scope};
use dozor_state::notifications::SilenceRow;
use serde_json::{Map, Value, json};

use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::rules::time;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v2/alerts",
        Policy::Scope(Scope::Read),
        list_alerts,
    )
    .route(
        Method::POST,
        "/api/v2/alerts",
        Policy::Scope(Scope::Ingest),
        post_alerts,
    )
    .route(
        Method::GET,
        "/api/v2/alerts/groups",
        Policy::Scope(Scope::Read),
        groups,
    )
    .route(
        Method::GET,
        "/api/v2/silences",
        Policy::Scope(Scope::Read),
        list_silences,
    )
    .route(
        Method::POST,
        "/api/v2/silences",
        Policy::Scope(Scope::Write),
        post_silence,
    )
    .route(
        Method::GET,
        "/api/v2/silence/{id}",
        Policy::Scope(Scope::Read),
        one_silence,
    )
    .route(
        Method::DELETE,
        "/api/v2/silence/{id}",
        Policy::Scope(Scope::Write),
        expire_silence,
    )
    .route(
        Method::GET,
        "/api/v2/status",
        Policy::Scope(Scope::Read),
        status,
    )
    .route(
        Method::GET,
        "/api/v2/receivers",
        Policy::Scope(Scope::Read),
        receivers,
    )
    .route(
        Method::GET,
        "/api/v1/alerts/deliveries",
        Policy::Scope(Scope::Read),
        deliveries,
    )
}

/// Records a read (`alertmanager.<what>`, with the query) in the audit chain.
async fn audit_read(
    state: &AppState,
    principal: &Principal,
    source: String,
    what: &str,
    query: &str,
) -> Result<(), ApiError> {
    crate::routes::series::audit_read_of(state, principal, source, "alertmanager", what, query)
        .await
}

fn labels_json(labels: &Labels) -> Value {
    labels
        .iter()
        .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
        .collect::<Map<_, _>>()
        .into()
}

fn alert_json(v: &AlertView) -> Value {
    json!({
        "labels": labels_json(&v.alert.labels),
        "annotations": v.alert.annotations,
        "startsAt": time(Some(v.alert.starts_at_ms)),
        "endsAt": time(v.alert.ends_at_ms),
        "updatedAt": time(Some(v.updated_ms)),
        "generatorURL": v.alert.generator_url,
        "fingerprint": v.fingerprint,
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": v.state(),
            "silencedBy": v.silenced_by,
            "inhibitedBy": v.inhibited_by,
            "mutedBy": [],
        },
    })
}

/// Alertmanager's boolean query parameters.
fn flag(params: &Params, name: &str) -> Result<bool, ApiError> {
    match params.get(name) {
        None => Ok(true),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ApiError::bad_data(format!(
            "{name}: true or false, not {other:?}"
        ))),
    }
}

fn filters(params: &Params) -> Result<Vec<Matcher>, ApiError> {
    let mut out = Vec::new();
    for f in params.all("filter") {
        out.extend(parse_matchers(f).map_err(|e| ApiError::bad_data(format!("filter: {e}")))?);
    }
    Ok(out)
}

fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

async fn list_alerts(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let matchers = filters(&params)?;
    let (active, silenced, inhibited) = (
        flag(&params, "active")?,
        flag(&params, "silenced")?,
        flag(&params, "inhibited")?,
    );
    flag(&params, "unprocessed")?;
    let receiver = params
        .get("receiver")
        .map(|r| {
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| ApiError::bad_data(format!("receiver: {e}")))
        })
        .transpose()?;
    audit_read(&state, &principal, source, "alerts", params.raw()).await?;
    let now = now_ms();
    let views = state
        .notifications()
        .with(&principal.tenant, |m| m.alerts(now));
    let out: Vec<Value> = views
        .iter()
        .filter(|v| matches_all(&matchers, &v.alert.labels))
        .filter(|v| {
            receiver
                .as_ref()
                .is_none_or(|re| v.receivers.iter().any(|r| re.is_match(r)))
        })
        .filter(|v| {
            let (s, i) = (!v.silenced_by.is_empty(), !v.inhibited_by.is_empty());
            (active || s || i) && (silenced || !s) && (inhibited || !i)
        })
        .map(alert_json)
        .collect();
    Ok(axum::Json(Value::Array(out)))
}

/// Alerts posted by Prometheus or vmalert are data, like remote_write samples: not
/// audited (a rule evaluation every few seconds would flood the chain); what they cause —
/// notifications, incidents, actions — is recorded where it happens.
async fn post_alerts(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let alerts = dozor_alerting::api::parse_alerts(&body, now).map_err(ApiError::bad_data)?;
    state
        .notifications()
        .put(&principal.tenant, alerts, true, now);
    Ok(axum::Json(Value::Null))
}

async fn groups(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let matchers = filters(&params)?;
    audit_read(&state, &principal, source, "groups", params.raw()).await?;
    let now = now_ms();
    let out = state.notifications().with(&principal.tenant, |m| {
        m.groups(now)
            .into_iter()
            .filter_map(|(g, alerts)| {
                let alerts: Vec<Value> = alerts
                    .iter()
                    .filter(|a| matches_all(&matchers, &a.alert.labels))
                    .map(alert_json)
                    .collect();
                (!alerts.is_empty()).then(|| {
                    let labels: Map<String, Value> = g
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    json!({"labels": labels, "receiver": {"name": g.receiver}, "alerts": alerts})
                })
            })
            .collect::<Vec<_>>()
    });
    Ok(axum::Json(Value::Array(out)))
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": time(Some(s.updated_at_ms)),
        "matchers": matchers_json(&s.matchers),
        "startsAt": time(Some(s.starts_at_ms)),
        "endsAt": time(Some(s.ends_at_ms)),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// A silence as the state store keeps it.
pub(crate) fn silence_row(s: &Silence) -> SilenceRow {
    SilenceRow {
        id: s.id.clone(),
        matchers: matchers_json(&s.matchers).to_string(),
        starts_at_ms: s.starts_at_ms,
        ends_at_ms: s.ends_at_ms,
        updated_at_ms: s.updated_at_ms,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

async fn list_silences(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let matchers = filters(&params)?;
    audit_read(&state, &principal, source, "silences", params.raw()).await?;
    let now = now_ms();
    // Alertmanager's filter keeps a silence when a label set made of its equality
    // matchers fits every filter.
    let out = state.notifications().with(&principal.tenant, |m| {
        let mut all: Vec<&Silence> = m
            .silences
            .all()
            .filter(|s| {
                let pairs: Vec<(&str, &str)> = s
                    .matchers
                    .iter()
                    .filter(|x| x.op == dozor_model::MatchOp::Equal)
                    .map(|x| (x.name.as_str(), x.value.as_str()))
                    .collect();
                Labels::from_pairs(pairs).is_ok_and(|l| matches_all(&matchers, &l))
            })
            .collect();
        // Active first, then pending, then expired; within each, by end.
        all.sort_by_key(|s| {
            let rank = match s.state(now) {
                dozor_alerting::silence::SilenceState::Active => 0,
                dozor_alerting::silence::SilenceState::Pending => 1,
                dozor_alerting::silence::SilenceState::Expired => 2,
            };
            (rank, s.ends_at_ms)
        });
        all.into_iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>()
    });
    Ok(axum::Json(Value::Array(out)))
}

async fn audit_silence(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    s: &Silence,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("silence/{}", s.id),
        Outcome::Success,
    )
    .source(source)
    .detail("matchers", matchers_json(&s.matchers).to_string())
    .detail("ends_at", time(Some(s.ends_at_ms)))
    .detail("comment", s.comment.as_str());
    state.audit_entry(entry).await
}

async fn post_silence(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let silence = dozor_alerting::api::parse_silence(&body, now).map_err(ApiError::bad_data)?;
    let fresh = dozor_state::new_uuid()?;
    let tenant = &principal.tenant;
    // Applied in memory, stored, and undone if the store refuses: nothing is answered
    // before it is durable.
    let (done, before, changed) = state.notifications().with(tenant, |m| {
        let before = (!silence.id.is_empty())
            .then(|| m.silences.get(&silence.id).cloned())
            .flatten();
        let done = m.silences.upsert(silence, now, || fresh).map_err(|e| {
            if e.contains("not found") {
                ApiError::not_found(e)
            } else {
                ApiError::bad_data(e)
            }
        })?;
        let mut changed: Vec<Silence> = Vec::new();
        if let Some(s) = m.silences.get(done.id()) {
            changed.push(s.clone());
        }
        if let Upserted::Created(_, Some(old)) = &done
            && let Some(s) = m.silences.get(old)
        {
            changed.push(s.clone());
        }
        Ok::<_, ApiError>((done, before, changed))
    })?;
    for s in &changed {
        if let Err(e) = state.store().put_silence(tenant, &silence_row(s)).await {
            state.notifications().with(tenant, |m| {
                m.silences.forget(done.id());
                if let Some(b) = before.clone() {
                    m.silences.restore(b);
                }
            });
            return Err(e.into());
        }
    }
    let action = match &done {
        Upserted::Created(..) => "silence.create",
        Upserted::Updated(_) => "silence.update",
    };
    audit_silence(&state, &principal, source, action, &changed[0]).await?;
    Ok(axum::Json(json!({ "silenceID": done.id() })))
}

async fn one_silence(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "silence", &id).await?;
    let now = now_ms();
    state
        .notifications()
        .with(&principal.tenant, |m| {
            m.silences.get(&id).map(|s| silence_json(s, now))
        })
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("silence {id} not found")))
}

async fn expire_silence(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let tenant = &principal.tenant;
    let (before, after) = state.notifications().with(tenant, |m| {
        let before = m.silences.get(&id).cloned();
        let after = m.silences.expire(&id, now).cloned().map_err(|e| {
            if e.contains("not found") {
                ApiError::not_found(e)
            } else {
                ApiError::bad_data(e)
            }
        })?;
        Ok::<_, ApiError>((before, after))
    })?;
    if let Err(e) = state
        .store()
        .put_silence(tenant, &silence_row(&after))
        .await
    {
        if let Some(b) = before {
            state
                .notifications()
                .with(tenant, |m| m.silences.restore(b));
        }
        return Err(e.into());
    }
    audit_silence(&state, &principal, source, "silence.expire", &after).await?;
    Ok(axum::Json(Value::Null))
}

async fn status(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "status", "").await?;
    let config = state.notifications().config(&principal.tenant);
    Ok(axum::Json(json!({
        "cluster": {"name": "", "status": "disabled", "peers": []},
        "config": {"original": config.original},
        "uptime": time(Some(state.started_ms())),
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "dozor",
            "buildDate": "",
            "goVersion": "none (Dozor is written in Rust)",
        },
    })))
}

async fn receivers(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "receivers", "").await?;
    let config = state.notifications().config(&principal.tenant);
    let names: Vec<Value> = config
        .loaded
        .receivers
        .iter()
        .map(|r| json!({"name": r.name}))
        .collect();
    Ok(axum::Json(Value::Array(names)))
}

/// Loads every tenant's silences and notification log from the state store into
/// `notifications` (at start, before the API serves).
pub async fn restore(
    store: &dozor_state::Store,
    notifications: &dozor_alerting::shared::Notifications,
) -> Result<(), dozor_state::StateError> {
    let now = now_ms();
    for (tenant, row) in store.all_silences().await? {
        let matchers = serde_json::from_str::<Value>(&row.matchers)
            .map_err(|e| e.to_string())
            .and_then(|v| matchers_from_json(&v));
        match matchers {
            Ok(matchers) => notifications.with(&tenant, |m| {
                m.silences.restore(Silence {
                    id: row.id,
                    matchers,
                    starts_at_ms: row.starts_at_ms,
                    ends_at_ms: row.ends_at_ms,
                    updated_at_ms: row.updated_at_ms,
                    created_by: row.created_by,
                    comment: row.comment,
                });
            }),
            Err(e) => {
                tracing::error!(%tenant, silence = %row.id, error = %e, "a stored silence does not load");
            }
        }
    }
    let since = now.saturating_sub(dozor_alerting::dispatch::LOG_RETENTION_MS);
    for (tenant, row) in store.notification_log_since(since).await? {
        let ids = |text: &str| serde_json::from_str::<Vec<String>>(text).unwrap_or_default();
        let entry = dozor_alerting::dispatch::LogEntry {
            group_key: row.group_key,
            firing: ids(&row.firing),
            resolved: ids(&row.resolved),
            at_ms: row.sent_at_ms,
        };
        notifications.with(&tenant, |m| m.restore_log([entry], now));
    }
    Ok(())
}

async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let limit = params.limit()?.unwrap_or(100).min(1000);
    audit_read(&state, &principal, source, "deliveries", params.raw()).await?;
    let rows = state
        .store()
        .deliveries(
            &principal.tenant,
            params.get("receiver"),
            i64::try_from(limit).unwrap_or(1000),
        )
        .await?;
    let out: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({
                "at": time(Some(d.at_ms)),
                "receiver": d.receiver,
                "integration": d.integration,
                "groupKey": d.group_key,
                "alerts": d.alerts,
                "status": d.status,
                "attempts": d.attempts,
                "error": d.error,
                "durationMs": d.duration_ms,
            })
        })
        .collect();
    Ok(crate::error::success(json!({ "deliveries": out })))
}
