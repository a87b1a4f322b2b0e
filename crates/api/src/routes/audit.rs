//! `GET /api/v1/audit/verify`: verify the audit chain from the API, as `dozor audit verify`
//! does from the command line.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/audit/verify",
        Policy::Scope(Scope::Admin),
        verify,
    )
}

async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let data_dir = state.data_dir().to_owned();
    let report = tokio::task::spawn_blocking(move || dozor_audit::verify(&data_dir))
        .await
        .map_err(ApiError::internal)??;
    let outcome = if report.problem.is_none() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "audit.verify",
        "audit/chain",
        outcome,
    )
    .source(source)
    .detail("records", report.records);
    state.audit_entry(entry).await?;
    Ok(success(report))
}
