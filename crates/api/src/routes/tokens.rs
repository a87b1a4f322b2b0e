//! API tokens: create (the secret is shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_model::{Scope, ScopeSet};
use dozor_state::tokens::{ApiToken, NewApiToken};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{API_TOKEN_PREFIX, new_secret, token_hash};
use crate::error::success;
use crate::json::JsonBody;
use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/tokens",
        Policy::Scope(Scope::Admin),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/tokens",
        Policy::Scope(Scope::Admin),
        create,
    )
    .route(
        Method::DELETE,
        "/api/v1/tokens/{id}",
        Policy::Scope(Scope::Admin),
        revoke,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    scopes: Vec<Scope>,
    /// Lifetime in seconds; none means the token does not expire.
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

fn describe(t: &ApiToken) -> serde_json::Value {
    json!({
        "id": t.id, "name": t.name, "scopes": t.scopes.iter().collect::<Vec<_>>(),
        "createdBy": t.created_by, "createdAt": t.created_ms,
        "expiresAt": t.expires_ms, "revokedAt": t.revoked_ms,
    })
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let tokens = state.store().list_api_tokens(&principal.tenant).await?;
    state
        .audit_listing(&principal, source, "token.list", "tokens", tokens.len())
        .await?;
    Ok(success(tokens.iter().map(describe).collect::<Vec<_>>()))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::bad_data("name: must be 1 to 200 characters"));
    }
    let scopes = ScopeSet::from_iter(req.scopes);
    if scopes.is_empty() {
        return Err(ApiError::bad_data(
            "scopes: at least one of ingest, read, write, audit, admin",
        ));
    }
    if !principal.scopes.is_superset(scopes) {
        return Err(ApiError::forbidden(
            "scopes: a token cannot have scopes its creator lacks",
        ));
    }
    let expires_ms = match req.expires_in_seconds {
        Some(0) => return Err(ApiError::bad_data("expires_in_seconds: must be positive")),
        Some(s) => {
            Some(now_ms().saturating_add(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)))
        }
        None => None,
    };
    let secret = new_secret(API_TOKEN_PREFIX)?;
    let token = state
        .store()
        .create_api_token(NewApiToken {
            tenant: &principal.tenant,
            name,
            scopes,
            created_by: &principal.actor,
            expires_ms,
            token_hash: &token_hash(&secret),
        })
        .await?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "token.create",
        format!("token/{}", token.id),
        Outcome::Success,
    )
    .source(source)
    .detail("scopes", scopes.to_string())
    .detail("name", name);
    state.audit_entry(entry).await?;
    let mut body = describe(&token);
    body["token"] = json!(secret);
    Ok((StatusCode::CREATED, success(body)))
}

async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !state
        .store()
        .revoke_api_token(&principal.tenant, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("no live token {id}")));
    }
    state.token_cache().clear();
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "token.revoke",
        format!("token/{id}"),
        Outcome::Success,
    )
    .source(source);
    state.audit_entry(entry).await?;
    Ok(success(json!({"revoked": id})))
}
