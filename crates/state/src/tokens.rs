//! The `api_tokens` table: long-lived bearer tokens for machines (shippers, Grafana,
//! promtool, scripts).
//!
//! A token is shown once at creation; only its SHA-256 hash is stored. Tokens carry 32
//! random bytes, so a fast hash is safe here (no dictionary to attack), and lookup by hash is
//! one indexed query.

use dozor_model::time::{Millis, now_ms};
use dozor_model::{ScopeSet, TenantId};

use crate::rls::RowScope;
use crate::tenants::insert_tenant;
use crate::{StateError, Store, new_id};

/// An API token as stored (never the secret itself).
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Random identifier, safe to show and log.
    pub id: String,
    /// The tenant the token acts for.
    pub tenant: TenantId,
    /// A human label ("filebeat on pos-7").
    pub name: String,
    /// What the token may do.
    pub scopes: ScopeSet,
    /// Who created it (a user name, or `bootstrap`).
    pub created_by: String,
    /// When it was created.
    pub created_ms: Millis,
    /// When it stops working, if ever.
    pub expires_ms: Option<Millis>,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<Millis>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| now < e)
    }
}

/// What a new token needs.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// The tenant it acts for.
    pub tenant: &'a TenantId,
    /// A human label.
    pub name: &'a str,
    /// What it may do.
    pub scopes: ScopeSet,
    /// Who creates it.
    pub created_by: &'a str,
    /// When it expires, if ever.
    pub expires_ms: Option<Millis>,
    /// SHA-256 of the secret, lowercase hex.
    pub token_hash: &'a str,
}

type TokenRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

const TOKEN_COLUMNS: &str =
    "id, tenant_id, name, scopes, created_by, created_ms, expires_ms, revoked_ms";

fn token_from_row(row: TokenRow) -> Result<ApiToken, StateError> {
    let (id, tenant, name, scopes, created_by, created_ms, expires_ms, revoked_ms) = row;
    Ok(ApiToken {
        id,
        tenant: tenant
            .parse()
            .map_err(|e| StateError::Corrupt(format!("token tenant: {e}")))?,
        name,
        scopes: scopes
            .parse()
            .map_err(|e| StateError::Corrupt(format!("token scopes: {e}")))?,
        created_by,
        created_ms,
        expires_ms,
        revoked_ms,
    })
}

impl Store {
    /// Stores a new token (creating its tenant if needed).
    pub async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken, StateError> {
        let token = ApiToken {
            id: new_id()?,
            tenant: new.tenant.clone(),
            name: new.name.to_owned(),
            scopes: new.scopes,
            created_by: new.created_by.to_owned(),
            created_ms: now_ms(),
            expires_ms: new.expires_ms,
            revoked_ms: None,
        };
        let what = "create API token";
        self.scoped(RowScope::Tenant(new.tenant), what, async |conn| {
            insert_tenant(conn, new.tenant).await?;
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, name, token_hash, scopes, created_by, \
                 created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&token.id)
            .bind(token.tenant.as_str())
            .bind(&token.name)
            .bind(new.token_hash)
            .bind(token.scopes.to_string())
            .bind(&token.created_by)
            .bind(token.created_ms)
            .bind(token.expires_ms)
            .execute(conn)
            .await
            .map_err(StateError::query(what))
        })
        .await?;
        Ok(token)
    }

    /// The token whose secret hashes to `token_hash`, live or not.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiToken>, StateError> {
        let what = "find API token";
        let row: Option<TokenRow> = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query_as(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        row.map(token_from_row).transpose()
    }

    /// The tokens of `tenant`, newest first.
    pub async fn list_api_tokens(&self, tenant: &TenantId) -> Result<Vec<ApiToken>, StateError> {
        let what = "list API tokens";
        let rows: Vec<TokenRow> = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query_as(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = $1 \
                     ORDER BY created_ms DESC, id"
                ))
                .bind(tenant.as_str())
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.into_iter().map(token_from_row).collect()
    }

    /// Revokes a token of `tenant`. Returns `false` when the tenant has no live token with
    /// that id.
    pub async fn revoke_api_token(&self, tenant: &TenantId, id: &str) -> Result<bool, StateError> {
        let what = "revoke API token";
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(
                    "UPDATE api_tokens SET revoked_ms = $1 \
                     WHERE id = $2 AND tenant_id = $3 AND revoked_ms IS NULL",
                )
                .bind(now_ms())
                .bind(id)
                .bind(tenant.as_str())
                .execute(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
