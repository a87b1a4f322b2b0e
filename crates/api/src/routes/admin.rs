//! Administrative operations on the engines: `POST /api/v1/admin/tsdb/flush` writes every
//! tenant's in-memory head into blocks now (before a backup, a benchmark or an upgrade),
//! like VictoriaMetrics' `/internal/force_flush`.

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
        flush,
    )
}

async fn flush(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let tsdb = std::sync::Arc::clone(state.tsdb());
    // Flushing is installation-wide (it changes no data, only where it lives); it needs the
    // admin scope and is audited.
    let flushed = tokio::task::spawn_blocking(move || -> Result<usize, dozor_tsdb::TsdbError> {
        let all = tsdb.all();
        for (_, db) in &all {
            db.flush()?;
        }
        Ok(all.len())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "tsdb.flush",
        "tsdb",
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(json!({"tenants": flushed})))
}
