//! The `reports` and `report_history` tables: report definitions (seed 004's report
//! builder) with the time the scheduler runs each next, and every generation with its
//! rendered HTML and CSV and its delivery.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Sections, range, schedule, recipients, formats: JSON the API checks.
    pub definition: String,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// When the scheduler generates it next, ms; `None`: not scheduled.
    pub next_run_at_ms: Option<i64>,
    /// Who made it.
    pub owner: String,
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
pub struct ReportWrite<'a> {
    /// The name.
    pub name: &'a str,
    /// The definition (JSON).
    pub definition: &'a str,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// Its next run, ms.
    pub next_run_at_ms: Option<i64>,
    /// Who writes (the owner, when creating).
    pub by: &'a str,
    /// When, ms.
    pub at_ms: i64,
}

/// One generation of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// Its id.
    pub id: String,
    /// The report.
    pub report_id: String,
    /// The report's name then.
    pub report_name: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// When it was generated, ms.
    pub generated_at_ms: i64,
    /// The time range it covers, ms.
    pub range_start_ms: i64,
    /// Its end, ms.
    pub range_end_ms: i64,
    /// `generated`, `pending`, `delivered` or `failed`.
    pub status: String,
    /// Where it goes: a JSON array of addresses.
    pub recipients: String,
    /// Why the delivery failed.
    pub error: String,
    /// When it was delivered, ms.
    pub delivered_at_ms: Option<i64>,
    /// The HTML document (empty in listings).
    pub html: String,
    /// The CSV document (empty in listings).
    pub csv: String,
}

/// What a generation writes.
#[derive(Debug, Clone, Copy)]
pub struct RunWrite<'a> {
    /// The report.
    pub report_id: &'a str,
    /// Its name.
    pub report_name: &'a str,
    /// `schedule` or `manual`.
    pub trigger: &'a str,
    /// When, ms.
    pub generated_at_ms: i64,
    /// The range covered, ms.
    pub range: (i64, i64),
    /// `generated` or `pending`.
    pub status: &'a str,
    /// JSON array of addresses.
    pub recipients: &'a str,
    /// The HTML.
    pub html: &'a str,
    /// The CSV.
    pub csv: &'a str,
}

const COLUMNS: &str = "id, name, definition, enabled, next_run_at, owner, version, created_at, updated_by, updated_at";
const RUN_SUMMARY: &str = "id, report_id, report_name, trigger_kind, generated_at, range_start, \
                           range_end, status, recipients, error, delivered_at, '' AS html, '' AS csv";
const RUN_FULL: &str = "id, report_id, report_name, trigger_kind, generated_at, range_start, \
                        range_end, status, recipients, error, delivered_at, html, csv";

fn stored(row: &AnyRow) -> Result<StoredReport, sqlx::Error> {
    let enabled: i32 = row.try_get("enabled")?;
    Ok(StoredReport {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        definition: row.try_get("definition")?,
        enabled: enabled != 0,
        next_run_at_ms: row.try_get("next_run_at")?,
        owner: row.try_get("owner")?,
        version: row.try_get("version")?,
        created_at_ms: row.try_get("created_at")?,
        updated_by: row.try_get("updated_by")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

fn run(row: &AnyRow) -> Result<StoredRun, sqlx::Error> {
    Ok(StoredRun {
        id: row.try_get("id")?,
        report_id: row.try_get("report_id")?,
        report_name: row.try_get("report_name")?,
        trigger: row.try_get("trigger_kind")?,
        generated_at_ms: row.try_get("generated_at")?,
        range_start_ms: row.try_get("range_start")?,
        range_end_ms: row.try_get("range_end")?,
        status: row.try_get("status")?,
        recipients: row.try_get("recipients")?,
        error: row.try_get("error")?,
        delivered_at_ms: row.try_get("delivered_at")?,
        html: row.try_get("html")?,
        csv: row.try_get("csv")?,
    })
}

fn tenant_of(row: &AnyRow) -> Result<TenantId, sqlx::Error> {
    let t: String = row.try_get("tenant")?;
    t.parse::<TenantId>()
        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

impl Store {
    /// Stores a new report owned by `w.by`, under a fresh random id.
    pub async fn create_report(
        &self,
        tenant: &TenantId,
        w: ReportWrite<'_>,
    ) -> Result<StoredReport, StateError> {
        let sql = format!(
            "INSERT INTO reports (tenant, id, name, definition, enabled, next_run_at, owner, \
             version, created_at, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $7, $8) RETURNING {COLUMNS}"
        );
        let what = "create a report";
        self.write_report(&sql, tenant, &crate::new_id()?, w, what)
            .await?
            .ok_or_else(|| StateError::query(what)(sqlx::Error::RowNotFound))
    }

    /// Replaces a report's definition (its owner stays); `None` when there is none.
    pub async fn update_report(
        &self,
        tenant: &TenantId,
        id: &str,
        w: ReportWrite<'_>,
    ) -> Result<Option<StoredReport>, StateError> {
        let sql = format!(
            "UPDATE reports SET name = $3, definition = $4, enabled = $5, next_run_at = $6, \
             updated_by = $7, updated_at = $8, version = version + 1 \
             WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        self.write_report(&sql, tenant, id, w, "update a report")
            .await
    }

    /// Runs `sql`, a write of one report taking tenant, id, name, definition, enabled,
    /// next run, by and at as `$1`…`$8` and returning its columns.
    async fn write_report(
        &self,
        sql: &str,
        tenant: &TenantId,
        id: &str,
        w: ReportWrite<'_>,
        what: &'static str,
    ) -> Result<Option<StoredReport>, StateError> {
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(id)
                    .bind(w.name)
                    .bind(w.definition)
                    .bind(i32::from(w.enabled))
                    .bind(w.next_run_at_ms)
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

    /// Deletes a report (its history stays); whether it existed.
    pub async fn delete_report(&self, tenant: &TenantId, id: &str) -> Result<bool, StateError> {
        let sql = "DELETE FROM reports WHERE tenant = $1 AND id = $2";
        Ok(self
            .tenant_execute(tenant, "delete a report", sql, &[id])
            .await?
            > 0)
    }

    /// One report.
    pub async fn report(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredReport>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM reports WHERE tenant = $1 AND id = $2");
        let rows = self
            .tenant_rows(tenant, "read a report", &sql, &[id], stored)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// A tenant's reports by name.
    pub async fn reports(&self, tenant: &TenantId) -> Result<Vec<StoredReport>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM reports WHERE tenant = $1 ORDER BY name, id");
        self.tenant_rows(tenant, "list reports", &sql, &[], stored)
            .await
    }

    /// Every tenant's enabled reports due at `now_ms`, oldest first.
    pub async fn due_reports(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(TenantId, StoredReport)>, StateError> {
        let what = "list due reports";
        let sql = format!(
            "SELECT tenant, {COLUMNS} FROM reports WHERE enabled = 1 AND next_run_at IS NOT NULL \
             AND next_run_at <= $1 ORDER BY next_run_at LIMIT 100"
        );
        let rows = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query(&sql)
                    .bind(now_ms)
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| Ok((tenant_of(r)?, stored(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query(what))
    }

    /// Moves a report's next run from `expected` to `next`, only if no one else did: a node
    /// that gets `true` owns this run (several nodes share one store).
    pub async fn claim_report_run(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_ms: i64,
        next_ms: Option<i64>,
    ) -> Result<bool, StateError> {
        let what = "claim a report run";
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(
                    "UPDATE reports SET next_run_at = $3 \
                     WHERE tenant = $1 AND id = $2 AND next_run_at = $4",
                )
                .bind(tenant.as_str())
                .bind(id)
                .bind(next_ms)
                .bind(expected_ms)
                .execute(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a generation under a fresh random id.
    pub async fn add_report_run(
        &self,
        tenant: &TenantId,
        w: RunWrite<'_>,
    ) -> Result<StoredRun, StateError> {
        let what = "store a report run";
        let id = crate::new_id()?;
        let sql = format!(
            "INSERT INTO report_history (tenant, id, report_id, report_name, trigger_kind, \
             generated_at, range_start, range_end, status, recipients, error, delivered_at, \
             html, csv) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', NULL, $11, $12) \
             RETURNING {RUN_FULL}"
        );
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(&sql)
                    .bind(tenant.as_str())
                    .bind(&id)
                    .bind(w.report_id)
                    .bind(w.report_name)
                    .bind(w.trigger)
                    .bind(w.generated_at_ms)
                    .bind(w.range.0)
                    .bind(w.range.1)
                    .bind(w.status)
                    .bind(w.recipients)
                    .bind(w.html)
                    .bind(w.csv)
                    .fetch_one(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        run(&row).map_err(StateError::query(what))
    }

    /// A report's generations, newest first, without their documents.
    pub async fn report_runs(
        &self,
        tenant: &TenantId,
        report_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredRun>, StateError> {
        let sql = format!(
            "SELECT {RUN_SUMMARY} FROM report_history WHERE tenant = $1 AND report_id = $2 \
             ORDER BY generated_at DESC, id LIMIT {}",
            limit.clamp(1, 1000)
        );
        self.tenant_rows(tenant, "list report runs", &sql, &[report_id], run)
            .await
    }

    /// One generation with its documents.
    pub async fn report_run(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredRun>, StateError> {
        let sql = format!("SELECT {RUN_FULL} FROM report_history WHERE tenant = $1 AND id = $2");
        let rows = self
            .tenant_rows(tenant, "read a report run", &sql, &[id], run)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Every tenant's generations waiting to be sent, oldest first, with their documents.
    pub async fn pending_report_deliveries(
        &self,
    ) -> Result<Vec<(TenantId, StoredRun)>, StateError> {
        let what = "list pending report deliveries";
        let sql = format!(
            "SELECT tenant, {RUN_FULL} FROM report_history WHERE status = 'pending' \
             ORDER BY generated_at LIMIT 20"
        );
        let rows = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query(&sql)
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| Ok((tenant_of(r)?, run(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query(what))
    }

    /// Records how a pending generation's delivery went.
    pub async fn finish_report_delivery(
        &self,
        tenant: &TenantId,
        id: &str,
        outcome: Result<i64, &str>,
    ) -> Result<(), StateError> {
        let what = "record a report delivery";
        let (status, error, at) = match outcome {
            Ok(at) => ("delivered", "", Some(at)),
            Err(e) => ("failed", e, None),
        };
        self.scoped(RowScope::Tenant(tenant), what, async |conn| {
            sqlx::query(
                "UPDATE report_history SET status = $3, error = $4, delivered_at = $5 \
                 WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(at)
            .execute(conn)
            .await
            .map_err(StateError::query(what))
        })
        .await?;
        Ok(())
    }
}
