//! The `refresh_tokens` table: one row per login session.
//!
//! A login yields a short-lived JWT access token and a refresh token; the refresh token's
//! SHA-256 hash is stored here. Refreshing rotates it: the old row is revoked and a new one
//! stored, in one transaction. Logout revokes it.

use dozor_model::time::{Millis, now_ms};

use crate::{StateError, Store, new_id};

/// A stored refresh token (never the secret itself).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Random identifier.
    pub id: String,
    /// Whose session this is.
    pub user_id: String,
    /// When it stops working.
    pub expires_ms: Millis,
    /// When it was revoked (by logout or rotation), if it was.
    pub revoked_ms: Option<Millis>,
}

type RefreshRow = (String, String, i64, Option<i64>);

impl Store {
    /// Stores a refresh token for `user_id`.
    pub async fn create_refresh_token(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_ms: Millis,
    ) -> Result<RefreshToken, StateError> {
        let id = new_id()?;
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, token_hash, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(self.pool())
        .await
        .map_err(StateError::query("create refresh token"))?;
        Ok(RefreshToken {
            id,
            user_id: user_id.to_owned(),
            expires_ms,
            revoked_ms: None,
        })
    }

    /// The refresh token whose secret hashes to `token_hash`.
    pub async fn refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StateError> {
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT id, user_id, expires_ms, revoked_ms FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(StateError::query("find refresh token"))?;
        Ok(
            row.map(|(id, user_id, expires_ms, revoked_ms)| RefreshToken {
                id,
                user_id,
                expires_ms,
                revoked_ms,
            }),
        )
    }

    /// Revokes a live refresh token. Returns `false` if it was already revoked, so that of
    /// two concurrent refreshes with one token only one wins.
    pub async fn revoke_refresh_token(&self, id: &str) -> Result<bool, StateError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(StateError::query("revoke refresh token"))?;
        Ok(done.rows_affected() == 1)
    }
}
