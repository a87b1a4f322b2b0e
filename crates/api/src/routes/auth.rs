//! Login, refresh, logout and "who am I".
//!
//! `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh` are public: they are how a
//! client gets credentials. Both answer 401 with one message for every failure, so the
//! answer does not tell which user names exist.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_state::users::User;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{REFRESH_TOKEN_PREFIX, dummy_hash, new_secret, token_hash, verify_password};
use crate::error::success;
use crate::json::JsonBody;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(Method::POST, "/api/v1/auth/login", Policy::Public, login)
        .route(
            Method::POST,
            "/api/v1/auth/refresh",
            Policy::Public,
            refresh,
        )
        .route(
            Method::POST,
            "/api/v1/auth/logout",
            Policy::Authenticated,
            logout,
        )
        .route(Method::GET, "/api/v1/auth/me", Policy::Authenticated, me)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

const BAD_LOGIN: &str = "invalid username or password";

/// Issues an access token and a stored refresh token for `user`.
async fn issue_session(state: &AppState, user: &User) -> Result<serde_json::Value, ApiError> {
    let now = now_ms();
    let access = state.jwt().issue(user, now)?;
    let refresh = new_secret(REFRESH_TOKEN_PREFIX)?;
    let ttl_ms = i64::try_from(state.settings().refresh_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    state
        .store()
        .create_refresh_token(&user.id, &token_hash(&refresh), now + ttl_ms)
        .await?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.jwt().access_ttl.as_secs(),
        "refresh_token": refresh,
        "user": {"name": user.name, "role": user.role, "tenant": user.tenant},
    }))
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let user = state.store().user_by_name(&req.username).await?;
    let hash = user
        .as_ref()
        .filter(|u| u.disabled_ms.is_none())
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let password = req.password;
    // argon2 costs tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let tenant = user
        .as_ref()
        .map_or(dozor_model::TenantId::DEFAULT, |u| u.tenant.as_str());
    let entry = Entry::new(
        tenant,
        req.username.as_str(),
        "auth.login",
        format!("user/{}", req.username),
        Outcome::Success,
    )
    .source(source);
    let Some(user) = user.filter(|_| ok) else {
        state
            .audit_best_effort(Entry {
                outcome: Outcome::Failure,
                ..entry
            })
            .await;
        return Err(ApiError::unauthorized(BAD_LOGIN));
    };
    let session = issue_session(&state, &user).await?;
    state.audit_entry(entry).await?;
    Ok(success(session))
}

async fn refresh(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let invalid = || ApiError::unauthorized("invalid or expired refresh token");
    let stored = state
        .store()
        .refresh_token_by_hash(&token_hash(&req.refresh_token))
        .await?
        .filter(|t| t.revoked_ms.is_none() && t.expires_ms > now_ms())
        .ok_or_else(invalid)?;
    // Rotation: the old token dies now; of two racing refreshes only one wins.
    if !state.store().revoke_refresh_token(&stored.id).await? {
        return Err(invalid());
    }
    let user = state
        .store()
        .user_by_id(&stored.user_id)
        .await?
        .filter(|u| u.disabled_ms.is_none())
        .ok_or_else(invalid)?;
    let session = issue_session(&state, &user).await?;
    let entry = Entry::new(
        user.tenant.as_str(),
        user.name.as_str(),
        "auth.refresh",
        format!("user/{}", user.name),
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(session))
}

async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let stored = state
        .store()
        .refresh_token_by_hash(&token_hash(&req.refresh_token))
        .await?
        .filter(|t| principal.user_id.as_deref() == Some(t.user_id.as_str()))
        .ok_or_else(|| ApiError::not_found("no such session for this user"))?;
    state.store().revoke_refresh_token(&stored.id).await?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "auth.logout",
        format!("session/{}", stored.id),
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(json!({"revoked": stored.id})))
}

async fn me(principal: Principal) -> impl IntoResponse {
    success(principal)
}
