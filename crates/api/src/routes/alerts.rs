//! The alert lifecycle over the caller's tenant: `GET /api/v1/alerts` (every pending and
//! firing alert in Prometheus' shape, plus who acknowledged it), one alert with its
//! current episode (`GET /api/v1/alerts/{id}`), acknowledging and resolving it by hand
//! (`POST …/acknowledge`, `POST …/resolve`, body `{"comment": "…"}`, both optional), the
//! history of episodes (`GET /api/v1/alerts/history`: `rule`, `severity`,
//! `state=open|resolved`, `start`, `end`, `limit`, `offset`) and statistics with mean
//! time to acknowledge and to resolve (`GET /api/v1/alerts/stats`: `start`, `end`).
//!
//! An alert's `id` is a fingerprint of its labels; an episode (one firing, from the
//! evaluation that fired it to its resolution) is `<id>-<active ms>`. Acknowledging needs
//! a firing alert; resolving by hand makes the alert inactive at once — if its condition
//! still holds, the next evaluation starts a new one, which must wait out `for` again.
//! Changes are audited (`alert.acknowledge`, `alert.resolve`), and so are reads.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use dozor_model::time::now_ms;
use dozor_rules::{Alert, AlertState};
use dozor_state::alerts::{AlertEpisode, HistoryFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::rules::{alert_json, time};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/alerts",
        Policy::Scope(Scope::Read),
        alerts,
    )
    .route(
        Method::GET,
        "/api/v1/alerts/history",
        Policy::Scope(Scope::Read),
        history,
    )
    .route(
        Method::GET,
        "/api/v1/alerts/stats",
        Policy::Scope(Scope::Read),
        stats,
    )
    .route(
        Method::GET,
        "/api/v1/alerts/{id}",
        Policy::Scope(Scope::Read),
        one,
    )
    .route(
        Method::POST,
        "/api/v1/alerts/{id}/acknowledge",
        Policy::Scope(Scope::Write),
        acknowledge,
    )
    .route(
        Method::POST,
        "/api/v1/alerts/{id}/resolve",
        Policy::Scope(Scope::Write),
        resolve,
    )
}

/// Most history rows one request returns.
const MAX_HISTORY: i64 = 1000;
/// Longest comment accepted, in characters.
const MAX_COMMENT: usize = 2000;

fn episode_json(e: &AlertEpisode) -> Value {
    json!({
        "id": e.id,
        "alertId": e.fingerprint,
        "rule": e.rule,
        "group": e.rule_group,
        "severity": e.severity,
        "service": e.service,
        "labels": e.labels,
        "annotations": e.annotations,
        "value": e.value,
        "state": if e.resolved_ms.is_some() { "resolved" } else { "firing" },
        "activeAt": time(Some(e.active_ms)),
        "firedAt": time(Some(e.fired_ms)),
        "resolvedAt": e.resolved_ms.map(|ms| time(Some(ms))),
        "resolvedBy": e.resolved_by,
        "resolveComment": e.resolve_comment,
        "acknowledgedAt": e.acked_ms.map(|ms| time(Some(ms))),
        "acknowledgedBy": e.acked_by,
        "acknowledgeComment": e.ack_comment,
    })
}

/// `{"at", "by", "comment"}` of an acknowledged episode, else `null`.
fn acknowledgement(e: Option<&AlertEpisode>) -> Value {
    match e {
        Some(AlertEpisode {
            acked_ms: Some(at),
            acked_by,
            ack_comment,
            ..
        }) => json!({"at": time(Some(*at)), "by": acked_by, "comment": ack_comment}),
        _ => Value::Null,
    }
}

/// The tenant's pending and firing alerts.
pub(crate) fn active_alerts(state: &AppState, principal: &Principal) -> Vec<Alert> {
    let mut out = Vec::new();
    for tg in state.rules().of_tenant(&principal.tenant) {
        let g = tg.lock();
        for r in &g.rules {
            out.extend(
                r.alerts_sorted()
                    .into_iter()
                    .filter(|a| a.state != AlertState::Inactive)
                    .cloned(),
            );
        }
    }
    out
}

async fn alerts(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "alerts", params.raw()).await?;
    let out = active_json(&state, &principal).await?;
    Ok(success(json!({"alerts": out})))
}

/// The tenant's pending and firing alerts as `/api/v1/alerts` lists them (with when they
/// fired and who acknowledged them); the live updates of `/api/v1/ws` send the same.
pub(crate) async fn active_json(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<Value>, ApiError> {
    let live = active_alerts(state, principal);
    let open = if live.iter().any(|a| a.state == AlertState::Firing) {
        state.store().open_alerts(&principal.tenant).await?
    } else {
        Vec::new()
    };
    Ok(live
        .iter()
        .map(|a| {
            let mut v = alert_json(a);
            let id = a.id();
            let ep = open.iter().find(|e| e.fingerprint == id);
            if let Some(ep) = ep {
                v["firedAt"] = json!(time(Some(ep.fired_ms)));
            }
            v["acknowledged"] = acknowledgement(ep);
            v
        })
        .collect())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::bad_data(format!(
            "id: {id:?} is not an alert id (16 hex digits)"
        )))
    }
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_id(&id)?;
    audit_read(&state, &principal, source, "alerts", &format!("id={id}")).await?;
    let live = active_alerts(&state, &principal)
        .into_iter()
        .find(|a| a.id() == id);
    let episode = state.store().latest_alert(&principal.tenant, &id).await?;
    if live.is_none() && episode.is_none() {
        return Err(ApiError::not_found(format!("no alert {id}")));
    }
    Ok(success(json!({
        "alert": live.as_ref().map(alert_json),
        "episode": episode.as_ref().map(episode_json),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comment {
    #[serde(default)]
    comment: Option<String>,
}

/// The optional `{"comment": …}` body: an empty body is no comment.
fn comment(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let c: Comment =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_data(format!("body: {e}")))?;
    match c.comment.map(|s| s.trim().to_owned()) {
        Some(s) if s.chars().count() > MAX_COMMENT => Err(ApiError::bad_data(format!(
            "comment: longer than {MAX_COMMENT} characters"
        ))),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

async fn audit_change(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    id: &str,
    comment: Option<&str>,
) -> Result<(), ApiError> {
    let mut entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("alert/{id}"),
        Outcome::Success,
    )
    .source(source);
    if let Some(c) = comment {
        entry = entry.detail("comment", c);
    }
    state.audit_entry(entry).await
}

async fn acknowledge(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    check_id(&id)?;
    let comment = comment(&body)?;
    let acked = state
        .store()
        .alert_acknowledged(
            &principal.tenant,
            &id,
            now_ms(),
            &principal.actor,
            comment.as_deref(),
        )
        .await?;
    let Some(episode) = acked else {
        let pending = active_alerts(&state, &principal)
            .iter()
            .any(|a| a.id() == id && a.state == AlertState::Pending);
        return Err(if pending {
            ApiError::conflict(format!(
                "alert {id} is pending: only a firing alert can be acknowledged"
            ))
        } else {
            ApiError::not_found(format!("no firing alert {id}"))
        });
    };
    audit_change(
        &state,
        &principal,
        source,
        "alert.acknowledge",
        &id,
        comment.as_deref(),
    )
    .await?;
    Ok(success(episode_json(&episode)))
}

async fn resolve(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    check_id(&id)?;
    let comment = comment(&body)?;
    let at = now_ms();
    let live = state
        .rules()
        .of_tenant(&principal.tenant)
        .iter()
        .find_map(|tg| tg.lock().resolve(&id, at));
    let episode = state
        .store()
        .alert_resolved(
            &principal.tenant,
            &id,
            at,
            &principal.actor,
            comment.as_deref(),
        )
        .await?;
    if live.is_none() && episode.is_none() {
        return Err(ApiError::not_found(format!("no active alert {id}")));
    }
    audit_change(
        &state,
        &principal,
        source,
        "alert.resolve",
        &id,
        comment.as_deref(),
    )
    .await?;
    Ok(success(json!({
        "alert": live.as_ref().map(alert_json),
        "episode": episode.as_ref().map(episode_json),
    })))
}

pub(crate) fn non_negative(params: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter \"{name}\": {v:?} is not a non-negative integer"
            ))
        }),
    }
}

/// A non-empty text parameter.
pub(crate) fn text(params: &Params, name: &str) -> Option<String> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `limit` of a paged list: at most [`MAX_HISTORY`], default 100, 0 meaning the most.
pub(crate) fn page_limit(params: &Params) -> Result<i64, ApiError> {
    let limit = non_negative(params, "limit", 100)?;
    if limit > MAX_HISTORY {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"limit\": at most {MAX_HISTORY}"
        )));
    }
    Ok(if limit == 0 { MAX_HISTORY } else { limit })
}

/// A time parameter in ms, if present.
pub(crate) fn optional_time(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(_) => params.time(name, 0).map(Some),
    }
}

/// `start` and `end` in ms; `end` defaults to now, `start` to `end` minus `default_span`.
fn range(params: &Params, default_span_ms: i64) -> Result<(i64, i64), ApiError> {
    let end = params.time("end", now_ms())?;
    let start = params.time("start", end.saturating_sub(default_span_ms))?;
    if start > end {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

async fn history(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let resolved = match params.get("state").unwrap_or("") {
        "" => None,
        "open" | "firing" => Some(false),
        "resolved" => Some(true),
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"state\": {other:?}: state must be open or resolved"
            )));
        }
    };
    let filter = HistoryFilter {
        rule: text(&params, "rule"),
        severity: text(&params, "severity"),
        resolved,
        from_ms: optional_time(&params, "start")?,
        to_ms: optional_time(&params, "end")?,
        limit: page_limit(&params)?,
        offset: non_negative(&params, "offset", 0)?,
    };
    audit_read(&state, &principal, source, "alerts.history", params.raw()).await?;
    let rows = state
        .store()
        .alert_history(&principal.tenant, &filter)
        .await?;
    Ok(success(json!({
        "episodes": rows.iter().map(episode_json).collect::<Vec<_>>(),
    })))
}

async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
    let (start, end) = range(&params, WEEK_MS)?;
    audit_read(&state, &principal, source, "alerts.stats", params.raw()).await?;
    let s = state
        .store()
        .alert_stats(&principal.tenant, start, end)
        .await?;
    let counts = |key: &str, rows: &[(String, i64)]| -> Vec<Value> {
        rows.iter()
            .map(|(k, n)| json!({key: k, "count": n}))
            .collect()
    };
    Ok(success(json!({
        "start": time(Some(start)),
        "end": time(Some(end)),
        "total": s.total,
        "open": s.open,
        "byRule": counts("rule", &s.by_rule),
        "bySeverity": counts("severity", &s.by_severity),
        "byService": counts("service", &s.by_service),
        "mttaSeconds": s.mtta_seconds,
        "mttrSeconds": s.mttr_seconds,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_optional_trimmed_and_bounded() {
        assert_eq!(comment(b"").unwrap(), None);
        assert_eq!(comment(b"  \n").unwrap(), None);
        assert_eq!(comment(b"{}").unwrap(), None);
        assert_eq!(
            comment(br#"{"comment": " on it "}"#).unwrap(),
            Some("on it".into())
        );
        let e = comment(br#"{"coment": "typo"}"#).unwrap_err();
        assert!(e.message().contains("coment"), "{}", e.message());
        assert!(comment(b"{").is_err());
        let long = format!(r#"{{"comment": "{}"}}"#, "x".repeat(MAX_COMMENT + 1));
        assert!(comment(long.as_bytes()).is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("0123456789abcdef").is_ok());
        assert!(check_id("0123456789abcde").is_err());
        assert!(check_id("0123456789abcdeg").is_err());
    }
}
