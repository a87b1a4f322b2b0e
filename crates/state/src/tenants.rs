//! The `tenants` table: every tenant that owns data.

use dozor_model::TenantId;
use dozor_model::time::now_ms;

use crate::{StateError, Store};

impl Store {
    /// Creates the tenant if it does not exist yet.
    pub async fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StateError> {
        // `ON CONFLICT DO NOTHING` is spelled the same in SQLite and PostgreSQL.
        sqlx::query("INSERT INTO tenants (id, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(StateError::query("create tenant"))?;
        Ok(())
    }

    /// All tenants, by name.
    pub async fn list_tenants(&self) -> Result<Vec<TenantId>, StateError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM tenants ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(StateError::query("list tenants"))?;
        rows.into_iter()
            .map(|(id,)| {
                id.parse()
                    .map_err(|e| StateError::Corrupt(format!("tenant id: {e}")))
            })
            .collect()
    }
}
