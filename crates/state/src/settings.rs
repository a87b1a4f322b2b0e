//! The `settings` table: small named values shared by every node (e.g. the JWT signing key).

use dozor_model::time::now_ms;

use crate::{StateError, Store};

impl Store {
    /// The value stored under `key`, if any.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StateError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(StateError::query("read setting"))?;
        Ok(row.map(|r| r.0))
    }

    /// The value under `key`; if there is none, stores `init()` first. When several nodes
    /// race, every one of them gets the value that was stored first.
    pub async fn setting_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> Result<String, StateError>,
    ) -> Result<String, StateError> {
        if let Some(v) = self.setting(key).await? {
            return Ok(v);
        }
        sqlx::query(
            "INSERT INTO settings (key, value, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(init()?)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(StateError::query("store setting"))?;
        self.setting(key)
            .await?
            .ok_or_else(|| StateError::Corrupt(format!("setting {key} vanished after insert")))
    }
}
