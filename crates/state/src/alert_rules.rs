//! The `alert_rules` table: structured alert rules as their owners wrote them (JSON the
//! rules engine checks and compiles), with who created and last changed them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    /// Its id.
    pub id: String,
    /// Its name (also inside `spec`; kept apart for listing).
    pub name: String,
    /// The rule as JSON.
    pub spec: String,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// 1 when created, one more at each change.
    pub version: i64,
    /// Who created it.
    pub created_by: String,
    /// When, ms.
    pub created_at_ms: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When, ms.
    pub updated_at_ms: i64,
}

/// What a create or update writes.
#[derive(Debug, Clone, Copy)]
pub struct RuleWrite<'a> {
    /// The rule's name.
    pub name: &'a str,
    /// The rule as JSON.
    pub spec: &'a str,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Who writes.
    pub by: &'a str,
    /// When, ms.
    pub at_ms: i64,
}

const COLUMNS: &str =
    "id, name, spec, enabled, version, created_by, created_at, updated_by, updated_at";

fn stored(row: &AnyRow) -> Result<StoredRule, sqlx::Error> {
    let enabled: i32 = row.try_get("enabled")?;
    Ok(StoredRule {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        spec: row.try_get("spec")?,
        enabled: enabled != 0,
        version: row.try_get("version")?,
        created_by: row.try_get("created_by")?,
        created_at_ms: row.try_get("created_at")?,
        updated_by: row.try_get("updated_by")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Stores a new rule under a fresh random id (`version` 1, created and updated by
    /// `w.by` at `w.at_ms`).
    pub async fn create_alert_rule(
        &self,
        tenant: &TenantId,
        w: RuleWrite<'_>,
    ) -> Result<StoredRule, StateError> {
        let sql = format!(
            "INSERT INTO alert_rules (tenant, id, name, spec, enabled, version, created_by, \
             created_at, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $6, $7) \
             RETURNING {COLUMNS}"
        );
        let what = "create an alert rule";
        self.write_alert_rule(&sql, tenant, &crate::new_id()?, w, what)
            .await?
            .ok_or_else(|| StateError::query(what)(sqlx::Error::RowNotFound))
    }

    /// Replaces a rule's name, spec and switch; `None` when there is no such rule.
    pub async fn update_alert_rule(
        &self,
        tenant: &TenantId,
        id: &str,
        w: RuleWrite<'_>,
    ) -> Result<Option<StoredRule>, StateError> {
        let sql = format!(
            "UPDATE alert_rules SET name = $3, spec = $4, enabled = $5, version = version + 1, \
             updated_by = $6, updated_at = $7 WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        self.write_alert_rule(&sql, tenant, id, w, "update an alert rule")
            .await
    }

    /// Runs `sql`, a write of one rule taking tenant, id, name, spec, enabled, by and at as
    /// `$1`…`$7` and returning the rule's columns; the rule as written, `None` when the
    /// statement touched no row.
    async fn write_alert_rule(
        &self,
        sql: &str,
        tenant: &TenantId,
        id: &str,
        w: RuleWrite<'_>,
        what: &'static str,
    ) -> Result<Option<StoredRule>, StateError> {
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(id)
                    .bind(w.name)
                    .bind(w.spec)
                    .bind(i32::from(w.enabled))
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

    /// Deletes a rule; whether it existed.
    pub async fn delete_alert_rule(&self, tenant: &TenantId, id: &str) -> Result<bool, StateError> {
        let sql = "DELETE FROM alert_rules WHERE tenant = $1 AND id = $2";
        Ok(self
            .tenant_execute(tenant, "delete an alert rule", sql, &[id])
            .await?
            > 0)
    }

    /// One rule.
    pub async fn alert_rule(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredRule>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM alert_rules WHERE tenant = $1 AND id = $2");
        let rows = self
            .tenant_rows(tenant, "read an alert rule", &sql, &[id], stored)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// A tenant's rules, by name.
    pub async fn alert_rules(&self, tenant: &TenantId) -> Result<Vec<StoredRule>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM alert_rules WHERE tenant = $1 ORDER BY name, id");
        self.tenant_rows(tenant, "list alert rules", &sql, &[], stored)
            .await
    }

    /// The tenants that have rules (a server loads their rules at start).
    pub async fn tenants_with_alert_rules(&self) -> Result<Vec<TenantId>, StateError> {
        let what = "list alert rule tenants";
        let rows = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query("SELECT DISTINCT tenant FROM alert_rules ORDER BY tenant")
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| {
                let t: String = r.try_get("tenant")?;
                t.parse::<TenantId>()
                    .map_err(|e| sqlx::Error::Decode(e.to_string().into()))
            })
            .collect::<Result<_, _>>()
            .map_err(StateError::query("list alert rule tenants"))
    }
}
