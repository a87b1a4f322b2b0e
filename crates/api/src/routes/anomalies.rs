//! Seed 001's anomaly events over the caller's tenant: `GET /api/v1/anomalies` with
//! filters `type`, `level`, `user`, `start`, `end` and paging (`limit` ≤ 1000, default
//! 100; `offset`), newest first. Rows are written when an alert labelled `anomaly_type`
//! fires (`crate::history`). Reads are audited.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_model::Scope;
use dozor_state::anomalies::{AnomalyEvent, AnomalyFilter};
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::alerts::{non_negative, optional_time, page_limit, text};
use crate::routes::rules::time;
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/anomalies",
        Policy::Scope(Scope::Read),
        anomalies,
    )
}

fn event_json(e: &AnomalyEvent) -> Value {
    json!({
        "id": e.id,
        "timestamp": time(Some(e.timestamp_ms)),
        "is_alert": e.is_alert,
        "alert_type": e.alert_type,
        "alert_level": e.alert_level,
        "alert_title": e.alert_title,
        "alert_message": e.alert_message,
        "user_id": e.user_id,
        "tags": e.tags,
        "metrics": e.metrics,
    })
}

async fn anomalies(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let filter = AnomalyFilter {
        alert_type: text(&params, "type"),
        level: text(&params, "level"),
        user_id: text(&params, "user"),
        from_ms: optional_time(&params, "start")?,
        to_ms: optional_time(&params, "end")?,
        limit: page_limit(&params)?,
        offset: non_negative(&params, "offset", 0)?,
    };
    audit_read(&state, &principal, source, "anomalies", params.raw()).await?;
    let rows = state
        .store()
        .anomaly_events(&principal.tenant, &filter)
        .await?;
    Ok(success(json!({
        "anomalies": rows.iter().map(event_json).collect::<Vec<_>>(),
    })))
}
