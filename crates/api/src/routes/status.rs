//! `GET /api/v1/status` (seed 004's status route: version, uptime, storage), the history of
//! self-metrics for the UI chart, and `/metrics`.

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use dozor_model::Scope;
use serde_json::json;

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/status",
        Policy::Scope(Scope::Read),
        status,
    )
    .route(
        Method::GET,
        "/api/v1/status/history",
        Policy::Scope(Scope::Read),
        history,
    )
    .route(Method::GET, "/metrics", Policy::Scope(Scope::Read), metrics)
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<impl IntoResponse, ApiError> {
    let data_dir = state.data_dir();
    let state_db = data_dir.join("state.db");
    let audit_chain = dozor_audit::files::audit_dir(data_dir).join(dozor_audit::files::CHAIN);
    Ok(success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "build": {"profile": if cfg!(debug_assertions) { "debug" } else { "release" }},
        "startedAt": state.started_ms(),
        "uptimeSeconds": state.uptime().as_secs_f64(),
        "tenant": principal.tenant,
        "stateStore": {"backend": format!("{:?}", state.store().backend()).to_lowercase()},
        "storage": {
            "stateDbBytes": file_size(&state_db),
            "auditRecords": state.audit().len(),
            "auditBytes": file_size(&audit_chain),
        },
    })))
}

async fn history(State(state): State<AppState>) -> impl IntoResponse {
    success(json!({"series": state.metrics().history()}))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
