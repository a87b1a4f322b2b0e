//! The `tenants` table: every tenant that owns data.

use dozor_model::TenantId;
use dozor_model::time::now_ms;
use sqlx::AnyConnection;

use crate::rls::RowScope;
use crate::{StateError, Store};

impl Store {
    /// Creates the tenant if it does not exist yet.
    pub async fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StateError> {
        self.scoped(RowScope::Tenant(tenant), "create tenant", async |conn| {
            insert_tenant(conn, tenant).await
        })
        .await
    }

    /// All tenants, by name.
    pub async fn list_tenants(&self) -> Result<Vec<TenantId>, StateError> {
        let what = "list tenants";
        let rows: Vec<(String,)> = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query_as("SELECT id FROM tenants ORDER BY id")
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        rows.into_iter()
            .map(|(id,)| {
                id.parse()
                    .map_err(|e| StateError::Corrupt(format!("tenant id: {e}")))
            })
            .collect()
    }
}

/// Creates the tenant if it does not exist yet, in the caller's transaction (scoped to it).
pub(crate) async fn insert_tenant(
    conn: &mut AnyConnection,
    tenant: &TenantId,
) -> Result<(), StateError> {
    // `ON CONFLICT DO NOTHING` is spelled the same in SQLite and PostgreSQL.
    sqlx::query("INSERT INTO tenants (id, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant.as_str())
        .bind(now_ms())
        .execute(conn)
        .await
        .map_err(StateError::query("create tenant"))?;
    Ok(())
}
