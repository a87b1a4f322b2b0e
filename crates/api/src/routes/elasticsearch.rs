//! The Elasticsearch-compatible ingest API, mounted under `/insert/elasticsearch/` (clients
//! take `http://host:9470/insert/elasticsearch` as their base URL), as VictoriaLogs mounts
//! its own: `_bulk` and `<index>/_bulk`, plus the handshake calls shippers make first —
//! `GET /` (version), `_license`, `_xpack`, and index template, ILM policy, data stream
//! and ingest pipeline calls, which are acknowledged and otherwise ignored (Dozor keeps no
//! Elasticsearch indices).
//!
//! Every answer carries `X-Elastic-Product: Elasticsearch`, without which the official
//! clients refuse the server. `_bulk` answers in Elasticsearch's shape, item by item: good
//! documents land (PII masked first, as for every log) while bad ones are reported with an
//! `error` and status 400, and `errors` says whether any failed.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use dozor_ingest::es_bulk;
use dozor_ingest::ndjson::NdjsonOptions;
use dozor_model::Scope;
use serde_json::{Value, json};

use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::logs::{mask, store};
use crate::{ApiError, AppState, Principal};

/// The Elasticsearch version Dozor answers as: recent enough for 8.x clients.
const VERSION: &str = "8.11.0";

/// Paths under the mount point (the registry wants `'static` paths).
macro_rules! es_path {
    ($p:literal) => {
        concat!("/insert/elasticsearch", $p)
    };
}

pub(crate) fn register(r: Registry) -> Registry {
    let ingest = || Policy::Scope(Scope::Ingest);
    let mut r = r
        .route(Method::GET, es_path!(""), ingest(), info)
        .route(Method::GET, es_path!("/"), ingest(), info)
        .route(Method::GET, es_path!("/_license"), ingest(), license)
        .route(Method::GET, es_path!("/_xpack"), ingest(), xpack)
        .route(Method::POST, es_path!("/_bulk"), ingest(), bulk)
        .route(Method::PUT, es_path!("/_bulk"), ingest(), bulk)
        .route(
            Method::POST,
            es_path!("/{index}/_bulk"),
            ingest(),
            bulk_index,
        )
        .route(
            Method::PUT,
            es_path!("/{index}/_bulk"),
            ingest(),
            bulk_index,
        );
    for path in [
        es_path!("/_index_template/{name}"),
        es_path!("/_template/{name}"),
        es_path!("/_ilm/policy/{name}"),
        es_path!("/_data_stream/{name}"),
        es_path!("/_ingest/pipeline/{name}"),
    ] {
        r = r
            .route(Method::GET, path, ingest(), exists)
            .route(Method::PUT, path, ingest(), acknowledged)
            .route(Method::POST, path, ingest(), acknowledged);
    }
    r
}

/// `result` as a response with the product header, errors included.
fn es(result: Result<Response, ApiError>) -> Response {
    let mut res = result.unwrap_or_else(IntoResponse::into_response);
    res.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    res
}

fn ok(body: Value) -> Result<Response, ApiError> {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn info() -> Response {
    es(ok(json!({
        "name": "dozor",
        "cluster_name": "dozor",
        "cluster_uuid": "dozor",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "dozor",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_date": "2026-01-01T00:00:00.000Z",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })))
}

async fn license() -> Response {
    es(ok(json!({
        "license": {"status": "active", "uid": "dozor", "type": "basic", "mode": "basic"}
    })))
}

async fn xpack() -> Response {
    es(ok(json!({
        "build": {"hash": env!("CARGO_PKG_VERSION"), "date": "2026-01-01T00:00:00.000Z"},
        "license": {"uid": "dozor", "type": "basic", "mode": "basic", "status": "active"},
        "features": {}
    })))
}

async fn exists() -> Response {
    es(ok(json!({})))
}

async fn acknowledged() -> Response {
    es(ok(json!({"acknowledged": true})))
}

async fn bulk(
    state: State<AppState>,
    principal: Principal,
    query: RawQuery,
    body: Bytes,
) -> Response {
    es(bulk_into(state, principal, None, query, body).await)
}

async fn bulk_index(
    state: State<AppState>,
    principal: Principal,
    Path(index): Path<String>,
    query: RawQuery,
    body: Bytes,
) -> Response {
    es(bulk_into(state, principal, Some(index), query, body).await)
}

async fn bulk_into(
    State(state): State<AppState>,
    principal: Principal,
    index: Option<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut opts = NdjsonOptions::new(dozor_model::time::now_ms().saturating_mul(1_000_000));
    let query = Params::parse("", query.as_deref().unwrap_or(""))?;
    if let Some(fields) = query.get("_stream_fields") {
        opts.stream_fields = crate::routes::logs::field_list(fields);
    }
    let items = es_bulk::parse(&body, index.as_deref(), &opts)
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let _permit = state.ingest_permit()?;
    // The good documents go to masking together; each item remembers whether it was one.
    let mut good = Vec::new();
    let judged: Vec<_> = items
        .into_iter()
        .map(|item| {
            let error = match item.outcome {
                Ok(r) => {
                    good.push(r);
                    None
                }
                Err(e) => Some(e),
            };
            (item.action, item.index, error)
        })
        .collect();
    let (masked, _) = mask(&state, &principal.tenant, good);
    let mut masked = masked.into_iter();
    let mut keep = Vec::new();
    let mut results = Vec::with_capacity(judged.len());
    let mut errors = false;
    for (action, index, error) in judged {
        let item = match error {
            Some((kind, reason)) => {
                errors = true;
                json!({"_index": index, "status": 400,
                       "error": {"type": kind, "reason": reason}})
            }
            None => match masked.next().flatten() {
                Some(r) => {
                    keep.push(r);
                    json!({"_index": index, "_id": format!("dozor-{}", keep.len()),
                           "_version": 1, "result": "created", "status": 201,
                           "_shards": {"total": 1, "successful": 1, "failed": 0}})
                }
                // Refused by a PII `drop` action: not stored, not an error of the client.
                None => json!({"_index": index, "result": "noop", "status": 200}),
            },
        };
        results.push(json!({ action: item }));
    }
    store(&state, &principal, keep).await?;
    ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": results,
    }))
}
