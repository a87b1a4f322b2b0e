//! Login, refresh, logout and "who am I".
//!
//! `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh` are public: they are how a
//! client gets credentials. Both answer 401 with one message for every failure, so the
//! answer does not tell which user names exist.
//!
//! Guards (`auth:` in `dozor.yml`, [`crate::auth::AuthPolicy`]): login attempts per client
//! address are rate-limited (429 with `Retry-After`); failed logins of one user name lock
//! it for a while (429 with `Retry-After`, counted whether or not the name exists, and
//! kept in the state store for every node); a refresh token presented after it was rotated
//! away revokes its whole session; logout revokes the session, access tokens included.

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_audit::{Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_state::users::User;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{REFRESH_TOKEN_PREFIX, dummy_hash, new_secret, token_hash, verify_password};
use crate::error::success;
use crate::json::JsonBody;
use crate::params::Params;
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
        .route(
            Method::GET,
            "/api/v1/auth/oidc/login",
            Policy::Public,
            oidc_login,
        )
        .route(
            Method::GET,
            "/api/v1/auth/oidc/callback",
            Policy::Public,
            oidc_callback,
        )
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

/// Issues an access token and a stored refresh token for `user`, in session `family`
/// (a new session when `None`).
async fn issue_session(
    state: &AppState,
    user: &User,
    family: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let now = now_ms();
    let refresh = new_secret(REFRESH_TOKEN_PREFIX)?;
    let ttl_ms = i64::try_from(state.settings().refresh_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let stored = state
        .store()
        .create_refresh_token(&user.id, &token_hash(&refresh), now + ttl_ms, family)
        .await?;
    let access = state.jwt().issue(user, &stored.family_id, now)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.jwt().access_ttl.as_secs(),
        "refresh_token": refresh,
        "user": {"name": user.name, "role": user.role, "tenant": user.tenant},
    }))
}

/// How long after now a session's last access token may still be presented.
fn access_horizon(state: &AppState) -> i64 {
    now_ms() + i64::try_from(state.jwt().access_ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let policy = state.settings().auth;
    let per_minute = f64::from(policy.logins_per_minute);
    if per_minute > 0.0
        && let Err(wait) = state
            .login_limiter()
            .take(&source, per_minute / 60.0, per_minute)
    {
        return Err(ApiError::too_many_requests(
            "too many login attempts from this address",
            wait,
        ));
    }
    let now = now_ms();
    let entry = |tenant: &str, outcome| {
        Entry::new(
            tenant,
            req.username.as_str(),
            "auth.login",
            format!("user/{}", req.username),
            outcome,
        )
        .source(source.as_str())
    };
    if let Some(until) = state.store().login_locked_until(&req.username, now).await? {
        state
            .audit_best_effort(
                entry(dozor_model::TenantId::DEFAULT, Outcome::Denied).detail("locked", true),
            )
            .await;
        return Err(locked(until - now));
    }
    let user = state.store().user_by_name(&req.username).await?;
    let hash = user
        .as_ref()
        .filter(|u| u.disabled_ms.is_none())
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let password = req.password.clone();
    // argon2 costs tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let tenant = user
        .as_ref()
        .map_or(dozor_model::TenantId::DEFAULT, |u| u.tenant.as_str())
        .to_owned();
    let Some(user) = user.filter(|_| ok) else {
        state
            .audit_best_effort(entry(&tenant, Outcome::Failure))
            .await;
        let locked_now = state
            .store()
            .record_login_failure(&req.username, now, policy.lockout)
            .await?;
        if let Some(until) = locked_now {
            state
                .audit_best_effort(
                    Entry::new(
                        tenant.as_str(),
                        "system",
                        "auth.lockout",
                        format!("user/{}", req.username),
                        Outcome::Success,
                    )
                    .source(source.as_str())
                    .detail("failures", policy.lockout.max_failures)
                    .detail("until_ms", until),
                )
                .await;
        }
        return Err(ApiError::unauthorized(BAD_LOGIN));
    };
    state.store().clear_login_failures(&user.name).await?;
    let session = issue_session(&state, &user, None).await?;
    state.audit_entry(entry(&tenant, Outcome::Success)).await?;
    Ok(success(session))
}

/// 429 for a locked user name, retrying when the lock ends.
fn locked(remaining_ms: i64) -> ApiError {
    let secs = u64::try_from(remaining_ms.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1);
    ApiError::too_many_requests(
        "too many failed logins for this user name; try again later",
        secs,
    )
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
        .filter(|t| t.expires_ms > now_ms())
        .ok_or_else(invalid)?;
    // Rotation: the old token dies now. A token that is already dead was rotated away
    // (or logged out) and is being used again: someone holds a copy, so the session ends.
    if stored.revoked_ms.is_some() || !state.store().revoke_refresh_token(&stored.id).await? {
        state
            .store()
            .revoke_session(&stored.family_id, access_horizon(&state))
            .await?;
        state.session_cache().put(&stored.family_id, true);
        let owner = state.store().user_by_id(&stored.user_id).await?;
        let (tenant, actor) = owner
            .as_ref()
            .map_or((dozor_model::TenantId::DEFAULT, "unknown"), |u| {
                (u.tenant.as_str(), u.name.as_str())
            });
        state
            .audit_best_effort(
                Entry::new(
                    tenant,
                    actor,
                    "auth.refresh_reuse",
                    format!("session/{}", stored.family_id),
                    Outcome::Denied,
                )
                .source(source.as_str())
                .detail("revoked_session", stored.family_id.as_str()),
            )
            .await;
        return Err(invalid());
    }
    let user = state
        .store()
        .user_by_id(&stored.user_id)
        .await?
        .filter(|u| u.disabled_ms.is_none())
        .ok_or_else(invalid)?;
    let session = issue_session(&state, &user, Some(&stored.family_id)).await?;
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
    state
        .store()
        .revoke_session(&stored.family_id, access_horizon(&state))
        .await?;
    state.session_cache().put(&stored.family_id, true);
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "auth.logout",
        format!("session/{}", stored.family_id),
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(json!({"revoked": stored.family_id})))
}

/// The caller: tenant, name, role, scopes, and — for the scoped roles — `sees`, the
/// selector every metric and log read of theirs is restricted to.
async fn me(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    let sees = state.visibility(&principal)?.describe();
    let mut body = serde_json::to_value(&principal).map_err(ApiError::internal)?;
    if let Some(sees) = sees {
        body["sees"] = json!(sees);
    }
    Ok(success(body).into_response())
}

/// `GET /api/v1/auth/oidc/login`: sends the browser to the identity provider (404 when
/// `auth.oidc` is not configured).
async fn oidc_login(State(state): State<AppState>) -> Result<Response, ApiError> {
    let oidc = state.oidc().ok_or_else(oidc_off)?;
    let url = oidc.begin().await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

fn oidc_off() -> ApiError {
    ApiError::not_found("OIDC login is not configured (auth.oidc)")
}

/// `GET /api/v1/auth/oidc/callback`: where the identity provider sends the browser back.
/// Verifies the login, makes the user on first login (in `auth.oidc.tenant`, with the role
/// its groups map to), and opens a session: JSON as `POST /api/v1/auth/login` answers, or —
/// for a browser (`Accept: text/html`) — a redirect to the UI with the tokens in the URL
/// fragment, which browsers never send to a server.
async fn oidc_callback(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: axum::http::HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let oidc = state.oidc().ok_or_else(oidc_off)?;
    let tenant = oidc.settings().tenant.clone();
    let failed = |reason: String| {
        Entry::new(
            tenant.as_str(),
            "anonymous",
            "auth.oidc",
            "oidc",
            Outcome::Failure,
        )
        .source(source.as_str())
        .detail("reason", reason)
    };
    if let Some(error) = params.get("error") {
        // The provider's error code (RFC 6749 §4.1.2.1), kept to its alphabet.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        state
            .audit_best_effort(failed(format!("provider: {code}")))
            .await;
        return Err(ApiError::unauthorized(format!(
            "the identity provider refused the login: {code}"
        )));
    }
    let identity = match oidc
        .finish(params.required("code")?, params.required("state")?)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            state.audit_best_effort(failed(e.to_string())).await;
            return Err(e.into());
        }
    };
    crate::routes::users::check_user_name(&identity.username)?;
    let mark = oidc.account_mark(&identity.subject);
    let (user, created) = match state.store().user_by_name(&identity.username).await? {
        Some(u) if u.password_hash == mark => (u, false),
        Some(_) => {
            state
                .audit_best_effort(failed(format!(
                    "user {} exists and was not made by this provider",
                    identity.username
                )))
                .await;
            return Err(ApiError::conflict(
                "a user of this name exists and does not belong to this identity provider",
            ));
        }
        None => (
            state
                .store()
                .create_user(&tenant, &identity.username, &mark, identity.role)
                .await?,
            true,
        ),
    };
    if user.disabled_ms.is_some() {
        state
            .audit_best_effort(failed("user disabled".into()))
            .await;
        return Err(ApiError::forbidden("this user is disabled"));
    }
    let session = issue_session(&state, &user, None).await?;
    state
        .audit_entry(
            Entry::new(
                user.tenant.as_str(),
                user.name.as_str(),
                "auth.oidc",
                format!("user/{}", user.name),
                Outcome::Success,
            )
            .source(source.as_str())
            .detail("created", created)
            .detail("role", user.role.as_str()),
        )
        .await?;
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser {
        let fragment = serde_urlencoded::to_string([
            (
                "access_token",
                session["access_token"].as_str().unwrap_or(""),
            ),
            (
                "refresh_token",
                session["refresh_token"].as_str().unwrap_or(""),
            ),
            ("expires_in", &session["expires_in"].to_string()),
        ])
        .map_err(ApiError::internal)?;
        return Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, format!("/#{fragment}")),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response());
    }
    Ok(success(session).into_response())
}
