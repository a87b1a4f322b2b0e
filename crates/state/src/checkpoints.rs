//! The `source_checkpoints` table: how far each connector has read (a file tail's offset
//! per file), as opaque values under `(source, key)`, saved once what was read is durable.

use dozor_model::time::now_ms;

use crate::rls::RowScope;
use crate::{StateError, Store};

impl Store {
    /// Every `(key, value)` saved for `source`, ordered by key.
    pub async fn checkpoints(&self, source: &str) -> Result<Vec<(String, String)>, StateError> {
        sqlx::query_as("SELECT key, value FROM source_checkpoints WHERE source = $1 ORDER BY key")
            .bind(source)
            .fetch_all(self.pool())
            .await
            .map_err(StateError::query("read checkpoints"))
    }

    /// Saves (`Some`) or deletes (`None`) checkpoints of `source`, in one transaction: all
    /// of them or none.
    pub async fn save_checkpoints(
        &self,
        source: &str,
        entries: &[(String, Option<String>)],
    ) -> Result<(), StateError> {
        let now = now_ms();
        self.scoped(RowScope::Shared, "save checkpoints", async |conn| {
            for (key, value) in entries {
                match value {
                    Some(v) => sqlx::query(
                        "INSERT INTO source_checkpoints (source, key, value, updated_ms) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, \
                         updated_ms = excluded.updated_ms",
                    )
                    .bind(source)
                    .bind(key)
                    .bind(v)
                    .bind(now),
                    None => {
                        sqlx::query("DELETE FROM source_checkpoints WHERE source = $1 AND key = $2")
                            .bind(source)
                            .bind(key)
                    }
                }
                .execute(&mut *conn)
                .await
                .map_err(StateError::query("save a checkpoint"))?;
            }
            Ok(())
        })
        .await
    }
}
