//! The `dashboards` table: the UI builder's dashboards (seed 004), their panels, layout and
//! settings as JSON the API checks, who owns them and whether the tenant shares them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One stored dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDashboard {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it shows, in words.
    pub description: String,
    /// The panels, a JSON array.
    pub widgets: String,
    /// Where the panels go, JSON.
    pub layout: String,
    /// Time range, refresh and variables, a JSON object.
    pub settings: String,
    /// The user who made it.
    pub owner: String,
    /// Whether every user of the tenant sees it.
    pub shared: bool,
    /// 1 when created, one more at each change.
    pub version: i64,
    /// When it was made, ms.
    pub created_at_ms: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When, ms.
    pub updated_at_ms: i64,
}

/// What a create or update writes.
#[derive(Debug, Clone, Copy)]
pub struct DashboardWrite<'a> {
    /// The name.
    pub name: &'a str,
    /// The description.
    pub description: &'a str,
    /// The panels (JSON).
    pub widgets: &'a str,
    /// The layout (JSON).
    pub layout: &'a str,
    /// The settings (JSON).
    pub settings: &'a str,
    /// Whether the tenant shares it.
    pub shared: bool,
    /// Who writes (the owner, when creating).
    pub by: &'a str,
    /// When, ms.
    pub at_ms: i64,
}

const COLUMNS: &str = "id, name, description, widgets, layout, settings, owner, shared, version, \
                       created_at, updated_by, updated_at";

fn stored(row: &AnyRow) -> Result<StoredDashboard, sqlx::Error> {
    let shared: i32 = row.try_get("shared")?;
    Ok(StoredDashboard {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        widgets: row.try_get("widgets")?,
        layout: row.try_get("layout")?,
        settings: row.try_get("settings")?,
        owner: row.try_get("owner")?,
        shared: shared != 0,
        version: row.try_get("version")?,
        created_at_ms: row.try_get("created_at")?,
        updated_by: row.try_get("updated_by")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Stores a new dashboard owned by `w.by`, under a fresh random id.
    pub async fn create_dashboard(
        &self,
        tenant: &TenantId,
        w: DashboardWrite<'_>,
    ) -> Result<StoredDashboard, StateError> {
        let sql = format!(
            "INSERT INTO dashboards (tenant, id, name, description, widgets, layout, settings, \
             shared, owner, version, created_at, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $9, $10) RETURNING {COLUMNS}"
        );
        let what = "create a dashboard";
        self.write_dashboard(&sql, tenant, &crate::new_id()?, w, what)
            .await?
            .ok_or_else(|| StateError::query(what)(sqlx::Error::RowNotFound))
    }

    /// Replaces a dashboard's content and sharing (its owner stays); `None` when there is
    /// no such dashboard.
    pub async fn update_dashboard(
        &self,
        tenant: &TenantId,
        id: &str,
        w: DashboardWrite<'_>,
    ) -> Result<Option<StoredDashboard>, StateError> {
        let sql = format!(
            "UPDATE dashboards SET name = $3, description = $4, widgets = $5, layout = $6, \
             settings = $7, shared = $8, updated_by = $9, updated_at = $10, \
             version = version + 1 WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        self.write_dashboard(&sql, tenant, id, w, "update a dashboard")
            .await
    }

    /// Runs `sql`, a write of one dashboard taking tenant, id, name, description, widgets,
    /// layout, settings, shared, by and at as `$1`…`$10` and returning its columns.
    async fn write_dashboard(
        &self,
        sql: &str,
        tenant: &TenantId,
        id: &str,
        w: DashboardWrite<'_>,
        what: &'static str,
    ) -> Result<Option<StoredDashboard>, StateError> {
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(id)
                    .bind(w.name)
                    .bind(w.description)
                    .bind(w.widgets)
                    .bind(w.layout)
                    .bind(w.settings)
                    .bind(i32::from(w.shared))
                    .bind(w.by)
                    .bind(w.at_ms)
                    .fetch_optional(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        row.as_ref()
            .map(stored)
            .transpose()
            .map_err(StateError::query(what))
    }

    /// Deletes a dashboard; whether it existed.
    pub async fn delete_dashboard(&self, tenant: &TenantId, id: &str) -> Result<bool, StateError> {
        let sql = "DELETE FROM dashboards WHERE tenant = $1 AND id = $2";
        Ok(self
            .tenant_execute(tenant, "delete a dashboard", sql, &[id])
            .await?
            > 0)
    }

    /// One dashboard.
    pub async fn dashboard(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredDashboard>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM dashboards WHERE tenant = $1 AND id = $2");
        let rows = self
            .tenant_rows(tenant, "read a dashboard", &sql, &[id], stored)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// A tenant's dashboards by name: those `owner` made and the shared ones (`None`:
    /// all of them, for administrators).
    pub async fn dashboards(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
    ) -> Result<Vec<StoredDashboard>, StateError> {
        let (sql, args) = match owner {
            Some(o) => (
                format!(
                    "SELECT {COLUMNS} FROM dashboards WHERE tenant = $1 \
                     AND (owner = $2 OR shared = 1) ORDER BY name, id"
                ),
                vec![o],
            ),
            None => (
                format!("SELECT {COLUMNS} FROM dashboards WHERE tenant = $1 ORDER BY name, id"),
                Vec::new(),
            ),
        };
        self.tenant_rows(tenant, "list dashboards", &sql, &args, stored)
            .await
    }
}
