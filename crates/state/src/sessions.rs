//! The `refresh_tokens` table: one row per refresh token; `revoked_sessions`: sessions
//! whose access tokens must stop before they expire.
//!
//! A login yields a short-lived JWT access token and a refresh token, and opens a
//! *session* (a family of refresh tokens, named by the first one's id). Refreshing rotates
//! the token: the old row is revoked and a new one stored in the same family. Presenting a
//! revoked token again means it was copied — a thief or the owner is using a stale copy —
//! so the whole family is revoked ([`Store::revoke_session`]), as OAuth 2.0's security
//! best practice (RFC 9700 §4.14.2) asks. Logout revokes the session the same way.

use dozor_model::time::{Millis, now_ms};

use crate::rls::RowScope;
use crate::{StateError, Store, new_id};

/// A stored refresh token (never the secret itself).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Random identifier.
    pub id: String,
    /// Whose session this is.
    pub user_id: String,
    /// The session: the id of the family's first token.
    pub family_id: String,
    /// When it stops working.
    pub expires_ms: Millis,
    /// When it was revoked (by logout or rotation), if it was.
    pub revoked_ms: Option<Millis>,
}

type RefreshRow = (String, String, String, i64, Option<i64>);

impl Store {
    /// Stores a refresh token for `user_id`, in the session `family_id` (a new session,
    /// named by this token's id, when `None`).
    pub async fn create_refresh_token(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_ms: Millis,
        family_id: Option<&str>,
    ) -> Result<RefreshToken, StateError> {
        let id = new_id()?;
        let family_id = family_id.unwrap_or(&id).to_owned();
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, token_hash, created_ms, expires_ms, family_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .bind(&family_id)
        .execute(self.pool())
        .await
        .map_err(StateError::query("create refresh token"))?;
        Ok(RefreshToken {
            id,
            user_id: user_id.to_owned(),
            family_id,
            expires_ms,
            revoked_ms: None,
        })
    }

    /// The refresh token whose secret hashes to `token_hash`, revoked or not.
    pub async fn refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StateError> {
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT id, user_id, COALESCE(family_id, id), expires_ms, revoked_ms \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(StateError::query("find refresh token"))?;
        Ok(row.map(
            |(id, user_id, family_id, expires_ms, revoked_ms)| RefreshToken {
                id,
                user_id,
                family_id,
                expires_ms,
                revoked_ms,
            },
        ))
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

    /// Ends the session `family_id`: revokes its refresh tokens and records it as revoked
    /// until `until_ms` (when the last access token it issued expires), so those access
    /// tokens stop now. Sessions whose record has expired are forgotten on the way.
    pub async fn revoke_session(
        &self,
        family_id: &str,
        until_ms: Millis,
    ) -> Result<(), StateError> {
        let now = now_ms();
        self.scoped(RowScope::Shared, "revoke a session", async |conn| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_ms = $1 \
                 WHERE (family_id = $2 OR id = $2) AND revoked_ms IS NULL",
            )
            .bind(now)
            .bind(family_id)
            .execute(&mut *conn)
            .await
            .map_err(StateError::query("revoke session tokens"))?;
            sqlx::query(
                "INSERT INTO revoked_sessions (family_id, revoked_ms, expires_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (family_id) DO NOTHING",
            )
            .bind(family_id)
            .bind(now)
            .bind(until_ms)
            .execute(&mut *conn)
            .await
            .map_err(StateError::query("record revoked session"))?;
            sqlx::query("DELETE FROM revoked_sessions WHERE expires_ms < $1")
                .bind(now)
                .execute(conn)
                .await
                .map_err(StateError::query("forget expired revocations"))?;
            Ok(())
        })
        .await
    }

    /// Whether the session `family_id` was revoked.
    pub async fn session_revoked(&self, family_id: &str) -> Result<bool, StateError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT revoked_ms FROM revoked_sessions WHERE family_id = $1")
                .bind(family_id)
                .fetch_optional(self.pool())
                .await
                .map_err(StateError::query("find revoked session"))?;
        Ok(row.is_some())
    }

    /// The live sessions (refresh-token families) of `user_id`.
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<String>, StateError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT COALESCE(family_id, id) FROM refresh_tokens \
             WHERE user_id = $1 AND revoked_ms IS NULL AND expires_ms > $2",
        )
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(StateError::query("list sessions"))?;
        Ok(rows.into_iter().map(|(f,)| f).collect())
    }
}
