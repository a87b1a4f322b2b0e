//! The `anomaly_events` table (seed 001): one row per firing of an alert that marks an
//! anomaly, with seed 001's columns, and the filtered, paged reads behind
//! `GET /api/v1/anomalies`.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One anomaly event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnomalyEvent {
    /// The alert episode's id.
    pub id: String,
    /// When the anomaly was detected (the alert fired), ms.
    pub timestamp_ms: i64,
    /// Whether an alert was raised for it (always, for rule-made events).
    pub is_alert: bool,
    /// `logs`, `metrics`, `transactions`… (the alert's `anomaly_type` label).
    pub alert_type: String,
    /// The alert's severity.
    pub alert_level: String,
    /// A one-line title.
    pub alert_title: String,
    /// The message.
    pub alert_message: String,
    /// The user concerned, when the alert has one.
    pub user_id: Option<String>,
    /// The alert's labels, a JSON object.
    pub tags: serde_json::Value,
    /// The measured values, a JSON object.
    pub metrics: serde_json::Value,
}

/// Filters of [`Store::anomaly_events`].
#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    /// Only this `alert_type`.
    pub alert_type: Option<String>,
    /// Only this `alert_level`.
    pub level: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// At or after, ms.
    pub from_ms: Option<i64>,
    /// At or before, ms.
    pub to_ms: Option<i64>,
    /// Most rows (newest first).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

fn event(row: &AnyRow) -> Result<AnomalyEvent, sqlx::Error> {
    let json = |name: &str| -> Result<serde_json::Value, sqlx::Error> {
        let text: String = row.try_get(name)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let is_alert: i32 = row.try_get("is_alert")?;
    Ok(AnomalyEvent {
        id: row.try_get("id")?,
        timestamp_ms: row.try_get("timestamp")?,
        is_alert: is_alert != 0,
        alert_type: row.try_get("alert_type")?,
        alert_level: row.try_get("alert_level")?,
        alert_title: row.try_get("alert_title")?,
        alert_message: row.try_get("alert_message")?,
        user_id: row.try_get("user_id")?,
        tags: json("tags")?,
        metrics: json("metrics")?,
    })
}

impl Store {
    /// Records an anomaly event; the same `id` again changes nothing.
    pub async fn add_anomaly_event(
        &self,
        tenant: &TenantId,
        e: &AnomalyEvent,
    ) -> Result<(), StateError> {
        let what = "record an anomaly event";
        self.scoped(RowScope::Tenant(tenant), what, async |conn| {
            sqlx::query(
                "INSERT INTO anomaly_events (tenant, id, timestamp, is_alert, alert_type, \
                 alert_level, alert_title, alert_message, user_id, tags, metrics) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (tenant, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&e.id)
            .bind(e.timestamp_ms)
            .bind(i32::from(e.is_alert))
            .bind(&e.alert_type)
            .bind(&e.alert_level)
            .bind(&e.alert_title)
            .bind(&e.alert_message)
            .bind(e.user_id.as_deref())
            .bind(e.tags.to_string())
            .bind(e.metrics.to_string())
            .execute(conn)
            .await
            .map_err(StateError::query(what))?;
            Ok(())
        })
        .await
    }

    /// Anomaly events matching `filter`, newest first.
    pub async fn anomaly_events(
        &self,
        tenant: &TenantId,
        filter: &AnomalyFilter,
    ) -> Result<Vec<AnomalyEvent>, StateError> {
        let mut sql = String::from(
            "SELECT id, timestamp, is_alert, alert_type, alert_level, alert_title, \
             alert_message, user_id, tags, metrics FROM anomaly_events WHERE tenant = $1",
        );
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        let texts = [
            ("alert_type", &filter.alert_type),
            ("alert_level", &filter.level),
            ("user_id", &filter.user_id),
        ];
        for (column, v) in texts {
            if v.is_some() {
                sql.push_str(&format!(" AND {column} = ${}", next()));
            }
        }
        if filter.from_ms.is_some() {
            sql.push_str(&format!(" AND timestamp >= ${}", next()));
        }
        if filter.to_ms.is_some() {
            sql.push_str(&format!(" AND timestamp <= ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY timestamp DESC, id LIMIT ${} OFFSET ${}",
            next(),
            next()
        ));
        let what = "read anomaly events";
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                let mut q = sqlx::query(&sql).bind(tenant.as_str());
                for (_, v) in texts {
                    if let Some(v) = v {
                        q = q.bind(v.as_str());
                    }
                }
                for v in [filter.from_ms, filter.to_ms].into_iter().flatten() {
                    q = q.bind(v);
                }
                q.bind(filter.limit.max(0))
                    .bind(filter.offset.max(0))
                    .fetch_all(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(event)
            .collect::<Result<_, _>>()
            .map_err(StateError::query("read anomaly events"))
    }
}
