//! Users of the caller's tenant: list and create.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::{Role, Scope};
use serde::Deserialize;
use serde_json::json;

use crate::auth::hash_password;
use crate::error::success;
use crate::json::JsonBody;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/users",
        Policy::Scope(Scope::Admin),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/users",
        Policy::Scope(Scope::Admin),
        create,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    password: String,
    role: Role,
}

/// Checks a user name: 1–64 visible ASCII characters without `:` (basic auth's separator).
pub fn check_user_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_data(
            "name: 1 to 64 visible ASCII characters, no ':'",
        ))
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let users = state.store().list_users(&principal.tenant).await?;
    state
        .audit_listing(&principal, source, "user.list", "users", users.len())
        .await?;
    Ok(success(
        users
            .iter()
            .map(|u| json!({"id": u.id, "name": u.name, "role": u.role, "createdAt": u.created_ms, "disabledAt": u.disabled_ms}))
            .collect::<Vec<_>>(),
    ))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    check_user_name(&req.name)?;
    crate::auth::check_password(&state.settings().auth, &req.name, &req.password)
        .map_err(|why| ApiError::bad_data(format!("password: {why}")))?;
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    let user = state
        .store()
        .create_user(&principal.tenant, &req.name, &hash, req.role)
        .await?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "user.create",
        format!("user/{}", user.name),
        Outcome::Success,
    )
    .source(source)
    .detail("role", user.role.as_str());
    state.audit_entry(entry).await?;
    Ok((
        StatusCode::CREATED,
        success(json!({"id": user.id, "name": user.name, "role": user.role})),
    ))
}
