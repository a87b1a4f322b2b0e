//! Administrative operations on the engines: `POST /api/v1/admin/tsdb/flush` and
//! `POST /api/v1/admin/logs/flush` write every tenant's in-memory head into blocks or parts
//! now (before a backup, a benchmark or an upgrade), like VictoriaMetrics'
//! `/internal/force_flush`; the logs flush also merges each day's parts.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use serde_json::json;

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::POST,
        "/api/v1/admin/tsdb/flush",
        Policy::Scope(Scope::Admin),
        flush_tsdb,
    )
    .route(
        Method::POST,
        "/api/v1/admin/logs/flush",
        Policy::Scope(Scope::Admin),
        flush_logs,
    )
}

async fn flush_tsdb(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let tsdb = std::sync::Arc::clone(state.tsdb());
    let flushed = tokio::task::spawn_blocking(move || -> Result<usize, dozor_tsdb::TsdbError> {
        let all = tsdb.all();
        for (_, db) in &all {
            db.flush()?;
        }
        Ok(all.len())
    });
    flushed_and_audited(&state, &principal, source, "tsdb", flushed).await
}

async fn flush_logs(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let logs = std::sync::Arc::clone(state.logs());
    let flushed = tokio::task::spawn_blocking(move || -> Result<usize, dozor_logs::LogsError> {
        let all = logs.all();
        for (_, db) in &all {
            db.flush()?;
            db.merge()?;
        }
        Ok(all.len())
    });
    flushed_and_audited(&state, &principal, source, "logs", flushed).await
}

/// Waits for a flush of every tenant of `store`, audits it, answers with the tenant count.
/// Flushing is installation-wide (it changes no data, only where it lives); it needs the
/// admin scope.
async fn flushed_and_audited<E: std::error::Error + Send + Sync + 'static>(
    state: &AppState,
    principal: &Principal,
    source: String,
    store: &str,
    flushed: tokio::task::JoinHandle<Result<usize, E>>,
) -> Result<impl IntoResponse + use<E>, ApiError> {
    let flushed = flushed
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        format!("{store}.flush"),
        store,
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(json!({"tenants": flushed})))
}
