//! Metric ingest: Prometheus remote_write, text exposition push and JSON push. Each needs the
//! `ingest` scope and writes into the caller's tenant only.
//!
//! A body is decoded whole before anything is stored, so a bad request (400, naming the
//! field or line) changes nothing. Concurrent ingest requests are bounded; past the bound the
//! answer is 429 with `Retry-After`, not a growing queue.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_ingest::{IngestError, exposition, json, remote_write};
use dozor_model::time::now_ms;
use dozor_model::{Scope, SeriesBatch};
use serde_json::{Value, json};

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::POST,
        "/api/v1/write",
        Policy::Scope(Scope::Ingest),
        write,
    )
    .route(
        Method::POST,
        "/api/v1/import/prometheus",
        Policy::Scope(Scope::Ingest),
        import_prometheus,
    )
    .route(
        Method::POST,
        "/api/v1/metrics",
        Policy::Scope(Scope::Ingest),
        push_json,
    )
}

/// The answer when the Kafka forwarding outbox cannot take a request (full, or its disk
/// failing): try again later, nothing was stored.
pub(crate) fn outbox_refused(e: &str) -> ApiError {
    tracing::warn!(error = %e, "forwarding outbox refused a request");
    ApiError::too_many_requests(format!("cannot forward to Kafka now: {e}"), 5)
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        ApiError::bad_data(e.to_string())
    }
}

/// Stores a decoded batch in the principal's tenant, off the async workers (the WAL write
/// may `fsync`).
async fn store(
    state: &AppState,
    principal: &Principal,
    batch: SeriesBatch,
) -> Result<dozor_tsdb::AppendStats, ApiError> {
    let _permit = state.ingest_permit()?;
    let db = state
        .tsdb()
        .tenant(&principal.tenant)
        .map_err(ApiError::internal)?;
    let forward = Arc::clone(&state.settings().forward);
    let tenant = principal.tenant.clone();
    let stats = tokio::task::spawn_blocking(move || {
        // Forwarded samples are in the Kafka outbox before they are stored and acknowledged.
        if !forward.is_empty() {
            forward
                .series(&tenant, || {
                    batch.iter().filter_map(|(packed, samples)| {
                        Some((dozor_model::packed::unpack_pairs(packed)?, samples))
                    })
                })
                .map_err(|e| Err(outbox_refused(&e)))?;
        }
        db.append_batch(&batch).map_err(Ok)
    })
    .await
    .map_err(ApiError::internal)?;
    stats.map_err(|e| match e {
        Err(refused) => refused,
        Ok(e) if e.is_disk_full() => {
            tracing::error!(error = %e, "disk full: refusing samples");
            ApiError::insufficient_storage("the disk is full; samples were not stored")
        }
        Ok(e) => ApiError::internal(e),
    })
}

async fn write(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let limits = state.ingest_limits();
    let compressed = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.eq_ignore_ascii_case("snappy"));
    let (batch, _extras) = if compressed {
        remote_write::decode(&body, &limits)?
    } else {
        remote_write::decode_protobuf(&body, &limits)?
    };
    let stats = store(&state, &principal, batch).await?;
    refused(&stats)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Prometheus' answer to a remote write with samples the store cannot take (out of order,
/// or older than the data already cut into blocks): 400 naming how many, once the others
/// are stored — never a bare 2xx for what was not kept. A sender drops the batch rather
/// than retry it (it would be refused again). The imports answer 200 with the counts
/// instead ([`import_answer`]).
fn refused(stats: &dozor_tsdb::AppendStats) -> Result<(), ApiError> {
    let n = stats.out_of_order + stats.too_old;
    if n == 0 {
        return Ok(());
    }
    Err(ApiError::bad_data(format!(
        "{n} samples refused ({} out of order, {} older than the stored blocks); the other {} were stored",
        stats.out_of_order, stats.too_old, stats.accepted
    )))
}

/// An import's answer: 204 when every sample was stored; otherwise 200 with how many were
/// stored and refused (a backfill older than the store's head is refused: an import is
/// told, not silently acknowledged). The same counts as the JSON push.
fn import_answer(stats: &dozor_tsdb::AppendStats) -> Response {
    if stats.out_of_order + stats.too_old == 0 {
        return StatusCode::NO_CONTENT.into_response();
    }
    (StatusCode::OK, counts(stats)).into_response()
}

fn counts(stats: &dozor_tsdb::AppendStats) -> axum::Json<Value> {
    success(json!({
        "accepted": stats.accepted,
        "rejectedOutOfOrder": stats.out_of_order,
        "rejectedTooOld": stats.too_old,
    }))
}

async fn import_prometheus(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_data(format!("body: not UTF-8 ({e})")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut format = exposition::Format::from_content_type(content_type);
    if text.trim_end().ends_with("# EOF") {
        format = exposition::Format::OpenMetrics;
    }
    let batch = exposition::parse(text, format, now_ms(), &state.ingest_limits())?;
    let stats = store(&state, &principal, SeriesBatch::from(&batch[..])).await?;
    Ok(import_answer(&stats))
}

async fn push_json(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let batch = json::parse(&body, now_ms(), &state.ingest_limits())?;
    let stats = store(&state, &principal, SeriesBatch::from(&batch[..])).await?;
    Ok((StatusCode::OK, counts(&stats)).into_response())
}
