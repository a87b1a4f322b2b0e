//! `/healthz` (the process answers) and `/readyz` (and its state store does).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;
use crate::policy::{Policy, Registry};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(Method::GET, "/healthz", Policy::Public, healthz)
        .route(Method::GET, "/readyz", Policy::Public, readyz)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.store().ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "error": "state store unreachable"})),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "error": "state store did not answer within 2s"})),
        ),
    }
}
