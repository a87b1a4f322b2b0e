//! The `fraud_events` table (seed 004): each finding of the fraud detectors with the event
//! that revealed it, and its investigation — who closed it, when, with what outcome.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FraudEvent {
    /// Its id.
    pub id: String,
    /// The account the event was about.
    pub user_id: String,
    /// Who the finding names: `user:<id>`, `card:<id>`, `ip:<address>`.
    pub subject: String,
    /// The pattern (`scalper`, `bot`, …).
    pub pattern: String,
    /// `medium` or `high`.
    pub risk_level: String,
    /// Why, for a person.
    pub reason: String,
    /// When the event happened, ms.
    pub at_ms: i64,
    /// The event, JSON.
    pub data: String,
    /// Whether someone closed it.
    pub investigated: bool,
    /// Who.
    pub investigated_by: String,
    /// When, ms.
    pub investigated_at_ms: Option<i64>,
    /// `confirmed`, `false_positive` or `inconclusive` (empty while open).
    pub outcome: String,
    /// The investigator's note.
    pub note: String,
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FraudFilter {
    /// One pattern.
    pub pattern: Option<String>,
    /// One risk level.
    pub risk_level: Option<String>,
    /// One account.
    pub user_id: Option<String>,
    /// Open (`false`) or closed (`true`) only.
    pub investigated: Option<bool>,
    /// From this time on, ms.
    pub since_ms: Option<i64>,
    /// Most rows.
    pub limit: i64,
}

/// Counts of findings, for the metrics route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FraudCounts {
    /// (pattern, risk level, investigated, outcome) → count.
    pub rows: Vec<(String, String, bool, String, i64)>,
}

const COLUMNS: &str = "id, user_id, subject, pattern, risk_level, reason, at, data, investigated, \
                       investigated_by, investigated_at, outcome, note";

fn stored(row: &AnyRow) -> Result<FraudEvent, sqlx::Error> {
    let investigated: i32 = row.try_get("investigated")?;
    Ok(FraudEvent {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        subject: row.try_get("subject")?,
        pattern: row.try_get("pattern")?,
        risk_level: row.try_get("risk_level")?,
        reason: row.try_get("reason")?,
        at_ms: row.try_get("at")?,
        data: row.try_get("data")?,
        investigated: investigated != 0,
        investigated_by: row.try_get("investigated_by")?,
        investigated_at_ms: row.try_get("investigated_at")?,
        outcome: row.try_get("outcome")?,
        note: row.try_get("note")?,
    })
}

impl Store {
    /// Stores findings (ids assigned here); the stored rows.
    pub async fn add_fraud_events(
        &self,
        tenant: &TenantId,
        events: &[FraudEvent],
    ) -> Result<Vec<FraudEvent>, StateError> {
        let what = "store fraud events";
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(FraudEvent {
                id: crate::new_id()?,
                ..e.clone()
            });
        }
        let rows = out.clone();
        self.scoped(RowScope::Tenant(tenant), what, async |conn| {
            for e in &rows {
                sqlx::query(
                    "INSERT INTO fraud_events (tenant, id, user_id, subject, pattern, risk_level, \
                     reason, at, data, investigated, investigated_by, investigated_at, outcome, \
                     note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, '', NULL, '', '')",
                )
                .bind(tenant.as_str())
                .bind(&e.id)
                .bind(&e.user_id)
                .bind(&e.subject)
                .bind(&e.pattern)
                .bind(&e.risk_level)
                .bind(&e.reason)
                .bind(e.at_ms)
                .bind(&e.data)
                .execute(&mut *conn)
                .await
                .map_err(StateError::query(what))?;
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Findings by `filter`, newest first.
    pub async fn fraud_events(
        &self,
        tenant: &TenantId,
        filter: &FraudFilter,
    ) -> Result<Vec<FraudEvent>, StateError> {
        let mut sql = format!("SELECT {COLUMNS} FROM fraud_events WHERE tenant = $1");
        let mut args: Vec<String> = Vec::new();
        let mut add = |column: &str, value: &Option<String>, sql: &mut String| {
            if let Some(v) = value {
                args.push(v.clone());
                sql.push_str(&format!(" AND {column} = ${}", args.len() + 1));
            }
        };
        add("pattern", &filter.pattern, &mut sql);
        add("risk_level", &filter.risk_level, &mut sql);
        add("user_id", &filter.user_id, &mut sql);
        if let Some(i) = filter.investigated {
            sql.push_str(if i {
                " AND investigated = 1"
            } else {
                " AND investigated = 0"
            });
        }
        if let Some(s) = filter.since_ms {
            sql.push_str(&format!(" AND at >= {s}"));
        }
        sql.push_str(&format!(
            " ORDER BY at DESC, id LIMIT {}",
            filter.limit.clamp(1, 10_000)
        ));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tenant_rows(tenant, "list fraud events", &sql, &args, stored)
            .await
    }

    /// One finding.
    pub async fn fraud_event(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<FraudEvent>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM fraud_events WHERE tenant = $1 AND id = $2");
        let rows = self
            .tenant_rows(tenant, "read a fraud event", &sql, &[id], stored)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Closes a finding; the row, or `None` when there is none.
    pub async fn investigate_fraud_event(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        at_ms: i64,
        outcome: &str,
        note: &str,
    ) -> Result<Option<FraudEvent>, StateError> {
        let what = "investigate a fraud event";
        let sql = format!(
            "UPDATE fraud_events SET investigated = 1, investigated_by = $3, investigated_at = $4, \
             outcome = $5, note = $6 WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(&sql)
                    .bind(tenant.as_str())
                    .bind(id)
                    .bind(by)
                    .bind(at_ms)
                    .bind(outcome)
                    .bind(note)
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

    /// Counts by pattern, risk, state and outcome since `since_ms`.
    pub async fn fraud_counts(
        &self,
        tenant: &TenantId,
        since_ms: i64,
    ) -> Result<FraudCounts, StateError> {
        let sql = format!(
            "SELECT pattern, risk_level, investigated, outcome, COUNT(*) AS n FROM fraud_events \
             WHERE tenant = $1 AND at >= {since_ms} \
             GROUP BY pattern, risk_level, investigated, outcome ORDER BY pattern, risk_level"
        );
        let rows = self
            .tenant_rows(tenant, "count fraud events", &sql, &[], |r| {
                let investigated: i32 = r.try_get("investigated")?;
                Ok((
                    r.try_get("pattern")?,
                    r.try_get("risk_level")?,
                    investigated != 0,
                    r.try_get("outcome")?,
                    r.try_get("n")?,
                ))
            })
            .await?;
        Ok(FraudCounts { rows })
    }
}
