//! The notification tables: `silences`, `notification_log` (what each alert group last
//! announced, so a restart does not announce it again) and `notification_deliveries` (every
//! call of a receiver's integration with its outcome). Rows are plain: matchers and
//! fingerprints are JSON text the alerting crate reads and writes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One stored silence.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    /// Its id.
    pub id: String,
    /// JSON array of `{name, value, isRegex, isEqual}`.
    pub matchers: String,
    /// From, ms.
    pub starts_at_ms: i64,
    /// Until, ms.
    pub ends_at_ms: i64,
    /// Last change, ms.
    pub updated_at_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// One group's entry of the notification log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// The group's key.
    pub group_key: String,
    /// JSON array of the fingerprints of the firing alerts sent.
    pub firing: String,
    /// JSON array of the fingerprints of the resolved alerts seen.
    pub resolved: String,
    /// When, ms.
    pub sent_at_ms: i64,
}

/// One row of [`Store::record_notifications`].
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationRecord {
    /// A group's notification log entry.
    Log(TenantId, LogRow),
    /// A delivery.
    Delivery(TenantId, Delivery),
}

/// One call of an integration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    /// Its id.
    pub id: String,
    /// When the first attempt began, ms.
    pub at_ms: i64,
    /// The receiver.
    pub receiver: String,
    /// The integration (`webhook`, `slack`, `email`…).
    pub integration: String,
    /// The alert group.
    pub group_key: String,
    /// Alerts in the notification.
    pub alerts: i64,
    /// `sent` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error, if any (never the URL: it may hold a token).
    pub error: Option<String>,
    /// From the first attempt to the outcome, ms.
    pub duration_ms: i64,
}

fn tenant_of(row: &AnyRow) -> Result<TenantId, sqlx::Error> {
    let t: String = row.try_get("tenant")?;
    t.parse::<TenantId>()
        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

fn silence_row(row: &AnyRow) -> Result<SilenceRow, sqlx::Error> {
    Ok(SilenceRow {
        id: row.try_get("id")?,
        matchers: row.try_get("matchers")?,
        starts_at_ms: row.try_get("starts_at")?,
        ends_at_ms: row.try_get("ends_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        comment: row.try_get("comment")?,
    })
}

impl Store {
    /// Stores a silence, replacing the one with its id.
    pub async fn put_silence(&self, tenant: &TenantId, s: &SilenceRow) -> Result<(), StateError> {
        let what = "store a silence";
        self.scoped(RowScope::Tenant(tenant), what, async |conn| {
            sqlx::query(
                "INSERT INTO silences (tenant, id, matchers, starts_at, ends_at, updated_at, \
                 created_by, comment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant, id) DO UPDATE SET matchers = $3, starts_at = $4, \
                 ends_at = $5, updated_at = $6, created_by = $7, comment = $8",
            )
            .bind(tenant.as_str())
            .bind(&s.id)
            .bind(&s.matchers)
            .bind(s.starts_at_ms)
            .bind(s.ends_at_ms)
            .bind(s.updated_at_ms)
            .bind(&s.created_by)
            .bind(&s.comment)
            .execute(conn)
            .await
            .map_err(StateError::query(what))?;
            Ok(())
        })
        .await
    }

    /// Deletes silences (expired past their retention).
    pub async fn delete_silences(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<(), StateError> {
        let what = "delete a silence";
        self.scoped(RowScope::Tenant(tenant), what, async |conn| {
            for id in ids {
                sqlx::query("DELETE FROM silences WHERE tenant = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StateError::query(what))?;
            }
            Ok(())
        })
        .await
    }

    /// Every tenant's silences (read once at start).
    pub async fn all_silences(&self) -> Result<Vec<(TenantId, SilenceRow)>, StateError> {
        let what = "list silences";
        let rows = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query(
                    "SELECT tenant, id, matchers, starts_at, ends_at, updated_at, created_by, \
                     comment FROM silences ORDER BY tenant, id",
                )
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| Ok((tenant_of(r)?, silence_row(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query(what))
    }

    /// Writes notification log entries and deliveries in one transaction (one sync to
    /// disk for a batch): all of them or none.
    pub async fn record_notifications(
        &self,
        records: &[NotificationRecord],
    ) -> Result<(), StateError> {
        let what = "record a notification";
        // Each record's statement runs scoped to its own tenant, in the batch's transaction.
        self.scoped(RowScope::Shared, what, async |conn| {
            let mut scope: Option<&TenantId> = None;
            for r in records {
                let (NotificationRecord::Log(tenant, _) | NotificationRecord::Delivery(tenant, _)) =
                    r;
                if scope != Some(tenant) {
                    self.set_scope(conn, RowScope::Tenant(tenant))
                        .await
                        .map_err(StateError::query(what))?;
                    scope = Some(tenant);
                }
                match r {
                    NotificationRecord::Log(tenant, e) => sqlx::query(
                        "INSERT INTO notification_log (tenant, group_key, firing, resolved, \
                         sent_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, group_key) \
                         DO UPDATE SET firing = $3, resolved = $4, sent_at = $5",
                    )
                    .bind(tenant.as_str())
                    .bind(e.group_key.clone())
                    .bind(e.firing.clone())
                    .bind(e.resolved.clone())
                    .bind(e.sent_at_ms),
                    NotificationRecord::Delivery(tenant, d) => sqlx::query(
                        "INSERT INTO notification_deliveries (tenant, id, at, receiver, \
                         integration, group_key, alerts, status, attempts, error, duration_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(tenant.as_str())
                    .bind(if d.id.is_empty() {
                        crate::new_id()?
                    } else {
                        d.id.clone()
                    })
                    .bind(d.at_ms)
                    .bind(d.receiver.clone())
                    .bind(d.integration.clone())
                    .bind(d.group_key.clone())
                    .bind(d.alerts)
                    .bind(d.status.clone())
                    .bind(d.attempts)
                    .bind(d.error.clone())
                    .bind(d.duration_ms),
                }
                .execute(&mut *conn)
                .await
                .map_err(StateError::query(what))?;
            }
            Ok(())
        })
        .await
    }

    /// Every tenant's notification log entries sent after `since_ms`; older ones are
    /// deleted.
    pub async fn notification_log_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(TenantId, LogRow)>, StateError> {
        let rows = self
            .scoped(
                RowScope::System,
                "read the notification log",
                async |conn| {
                    sqlx::query("DELETE FROM notification_log WHERE sent_at < $1")
                        .bind(since_ms)
                        .execute(&mut *conn)
                        .await
                        .map_err(StateError::query("prune the notification log"))?;
                    sqlx::query(
                        "SELECT tenant, group_key, firing, resolved, sent_at FROM notification_log \
                     ORDER BY tenant, group_key",
                    )
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query("read the notification log"))
                },
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    tenant_of(r)?,
                    LogRow {
                        group_key: r.try_get("group_key")?,
                        firing: r.try_get("firing")?,
                        resolved: r.try_get("resolved")?,
                        sent_at_ms: r.try_get("sent_at")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query("read the notification log"))
    }

    /// A tenant's latest deliveries, newest first, optionally of one receiver.
    pub async fn deliveries(
        &self,
        tenant: &TenantId,
        receiver: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StateError> {
        let what = "list deliveries";
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(
                    "SELECT id, at, receiver, integration, group_key, alerts, status, attempts, \
                     error, duration_ms FROM notification_deliveries WHERE tenant = $1 \
                     AND ($2 = '' OR receiver = $2) ORDER BY at DESC, id LIMIT $3",
                )
                .bind(tenant.as_str())
                .bind(receiver.unwrap_or(""))
                .bind(limit)
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at")?,
                    receiver: r.try_get("receiver")?,
                    integration: r.try_get("integration")?,
                    group_key: r.try_get("group_key")?,
                    alerts: r.try_get("alerts")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    error: r.try_get("error")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query("list deliveries"))
    }

    /// Deletes deliveries older than `before_ms`; how many.
    pub async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StateError> {
        let what = "prune deliveries";
        let done = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query("DELETE FROM notification_deliveries WHERE at < $1")
                    .bind(before_ms)
                    .execute(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected())
    }
}
