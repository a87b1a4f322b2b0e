//! Loki's push API (`POST /loki/api/v1/push`, scope `ingest`), so Promtail, Grafana Alloy,
//! Vector and Docker's Loki driver ship to Dozor unchanged: snappy-compressed protobuf, or
//! JSON when the `Content-Type` says so. Records are masked and stored like every log; the
//! answer is Loki's 204.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_ingest::loki;
use dozor_model::Scope;

use crate::policy::{Policy, Registry};
use crate::routes::logs::{mask_kept, store};
use crate::{ApiError, AppState, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::POST,
        "/loki/api/v1/push",
        Policy::Scope(Scope::Ingest),
        push,
    )
}

async fn push(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let records = if json {
        loki::decode_json(&body)
    } else {
        loki::decode_protobuf(&body, &state.ingest_limits())
    }
    .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let _permit = state.ingest_permit()?;
    let (records, _) = mask_kept(&state, &principal.tenant, records);
    store(&state, &principal, records).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
