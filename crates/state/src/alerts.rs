//! The `alert_history` table: every episode of every alert — when it became active and
//! fired, who acknowledged it, when and how it resolved — and the statistics read from it
//! (counts per rule, severity and service; mean time to acknowledge and to resolve).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One episode of an alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertEpisode {
    /// `<fingerprint>-<active_ms>`.
    pub id: String,
    /// A hash of the alert's labels: the API's alert id.
    pub fingerprint: String,
    /// The alerting rule (`alertname`).
    pub rule: String,
    /// The rule's group.
    pub rule_group: String,
    /// The `severity` label ("" without one).
    pub severity: String,
    /// The `service` label, else `job` ("" without either).
    pub service: String,
    /// The alert's labels, a JSON object.
    pub labels: serde_json::Value,
    /// Its annotations when it fired, a JSON object.
    pub annotations: serde_json::Value,
    /// The expression's value when it fired.
    pub value: f64,
    /// When the condition started to hold, ms.
    pub active_ms: i64,
    /// When it fired, ms.
    pub fired_ms: i64,
    /// When it resolved, ms.
    pub resolved_ms: Option<i64>,
    /// Who resolved it: a user, or `condition` when its condition cleared.
    pub resolved_by: Option<String>,
    /// The resolver's comment.
    pub resolve_comment: Option<String>,
    /// When it was acknowledged, ms.
    pub acked_ms: Option<i64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// The acknowledger's comment.
    pub ack_comment: Option<String>,
}

/// What [`Store::alert_fired`] records.
#[derive(Debug, Clone)]
pub struct FiredAlert<'a> {
    /// Fingerprint of the labels.
    pub fingerprint: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// The group.
    pub rule_group: &'a str,
    /// Labels, a JSON object.
    pub labels: &'a serde_json::Value,
    /// Annotations, a JSON object.
    pub annotations: &'a serde_json::Value,
    /// Value.
    pub value: f64,
    /// Became active, ms.
    pub active_ms: i64,
    /// Fired, ms.
    pub fired_ms: i64,
}

/// Filters of [`Store::alert_history`].
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Only open (`Some(false)`) or resolved (`Some(true)`) episodes.
    pub resolved: Option<bool>,
    /// Fired at or after, ms.
    pub from_ms: Option<i64>,
    /// Fired at or before, ms.
    pub to_ms: Option<i64>,
    /// Most rows (newest first).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Alert statistics over a time range.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertStats {
    /// Episodes that fired in the range.
    pub total: i64,
    /// Of which still open.
    pub open: i64,
    /// Episodes per rule, most first.
    pub by_rule: Vec<(String, i64)>,
    /// Episodes per severity, most first.
    pub by_severity: Vec<(String, i64)>,
    /// Episodes per service, most first.
    pub by_service: Vec<(String, i64)>,
    /// Mean time from firing to acknowledgement, seconds (none acknowledged: `None`).
    pub mtta_seconds: Option<f64>,
    /// Mean time from firing to resolution, seconds (none resolved: `None`).
    pub mttr_seconds: Option<f64>,
}

const COLUMNS: &str = "id, fingerprint, rule, rule_group, severity, service, labels, annotations, \
     value, active_ms, fired_ms, resolved_ms, resolved_by, resolve_comment, acked_ms, acked_by, \
     ack_comment";

fn episode(row: &AnyRow) -> Result<AlertEpisode, sqlx::Error> {
    let json = |name: &str| -> Result<serde_json::Value, sqlx::Error> {
        let text: String = row.try_get(name)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    Ok(AlertEpisode {
        id: row.try_get("id")?,
        fingerprint: row.try_get("fingerprint")?,
        rule: row.try_get("rule")?,
        rule_group: row.try_get("rule_group")?,
        severity: row.try_get("severity")?,
        service: row.try_get("service")?,
        labels: json("labels")?,
        annotations: json("annotations")?,
        value: row.try_get("value")?,
        active_ms: row.try_get("active_ms")?,
        fired_ms: row.try_get("fired_ms")?,
        resolved_ms: row.try_get("resolved_ms")?,
        resolved_by: row.try_get("resolved_by")?,
        resolve_comment: row.try_get("resolve_comment")?,
        acked_ms: row.try_get("acked_ms")?,
        acked_by: row.try_get("acked_by")?,
        ack_comment: row.try_get("ack_comment")?,
    })
}

impl Store {
    /// Records that an alert fired; returns the id of the episode it opened
    /// (`<fingerprint>-<active ms>`), `None` when it opened none. While an
    /// episode of the same alert is open (it fired before a restart, and a restarted
    /// server reports it firing again) or when the same episode is recorded again, nothing
    /// changes.
    pub async fn alert_fired(
        &self,
        tenant: &TenantId,
        a: &FiredAlert<'_>,
    ) -> Result<Option<String>, StateError> {
        let id = format!("{}-{}", a.fingerprint, a.active_ms);
        let label = |name: &str| a.labels.get(name).and_then(|v| v.as_str()).unwrap_or("");
        let service = match label("service") {
            "" => label("job"),
            s => s,
        };
        let what = "record a fired alert";
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(
                    "INSERT INTO alert_history (tenant, id, fingerprint, rule, rule_group, \
                     severity, service, labels, annotations, value, active_ms, fired_ms) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
                     WHERE NOT EXISTS (SELECT 1 FROM alert_history \
                         WHERE tenant = $1 AND fingerprint = $3 AND resolved_ms IS NULL) \
                     ON CONFLICT (tenant, id) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(&id)
                .bind(a.fingerprint)
                .bind(a.rule)
                .bind(a.rule_group)
                .bind(label("severity"))
                .bind(service)
                .bind(a.labels.to_string())
                .bind(a.annotations.to_string())
                .bind(a.value)
                .bind(a.active_ms)
                .bind(a.fired_ms)
                .execute(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// Closes the open episode of `fingerprint`: `by` is a user, or `condition`. Returns
    /// the closed episode, `None` when none was open.
    pub async fn alert_resolved(
        &self,
        tenant: &TenantId,
        fingerprint: &str,
        at_ms: i64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Option<AlertEpisode>, StateError> {
        let sql = format!(
            "UPDATE alert_history SET resolved_ms = $3, resolved_by = $4, resolve_comment = $5 \
             WHERE tenant = $1 AND fingerprint = $2 AND resolved_ms IS NULL RETURNING {COLUMNS}"
        );
        self.close_or_ack(
            tenant,
            &sql,
            (fingerprint, at_ms, by, comment),
            "resolve an alert",
        )
        .await
    }

    /// Acknowledges the open episode of `fingerprint` (again: the newer acknowledgement
    /// wins). `None` when no episode is open.
    pub async fn alert_acknowledged(
        &self,
        tenant: &TenantId,
        fingerprint: &str,
        at_ms: i64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Option<AlertEpisode>, StateError> {
        let sql = format!(
            "UPDATE alert_history SET acked_ms = $3, acked_by = $4, ack_comment = $5 \
             WHERE tenant = $1 AND fingerprint = $2 AND resolved_ms IS NULL RETURNING {COLUMNS}"
        );
        self.close_or_ack(
            tenant,
            &sql,
            (fingerprint, at_ms, by, comment),
            "acknowledge an alert",
        )
        .await
    }

    /// Runs `sql`, an update of the open episode of a fingerprint taking tenant, fingerprint,
    /// time, who and comment as `$1`…`$5` and returning its columns.
    async fn close_or_ack(
        &self,
        tenant: &TenantId,
        sql: &str,
        (fingerprint, at_ms, by, comment): (&str, i64, &str, Option<&str>),
        what: &'static str,
    ) -> Result<Option<AlertEpisode>, StateError> {
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(fingerprint)
                    .bind(at_ms)
                    .bind(by)
                    .bind(comment)
                    .fetch_optional(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        row.as_ref()
            .map(episode)
            .transpose()
            .map_err(StateError::query("read an alert"))
    }

    /// The open episodes of a tenant, newest first.
    pub async fn open_alerts(&self, tenant: &TenantId) -> Result<Vec<AlertEpisode>, StateError> {
        self.alert_history(
            tenant,
            &HistoryFilter {
                resolved: Some(false),
                limit: 10_000,
                ..HistoryFilter::default()
            },
        )
        .await
    }

    /// The newest episode of `fingerprint`, open or not.
    pub async fn latest_alert(
        &self,
        tenant: &TenantId,
        fingerprint: &str,
    ) -> Result<Option<AlertEpisode>, StateError> {
        let what = "read an alert";
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM alert_history WHERE tenant = $1 AND fingerprint = $2 \
                     ORDER BY fired_ms DESC LIMIT 1"
                ))
                .bind(tenant.as_str())
                .bind(fingerprint)
                .fetch_optional(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        row.as_ref()
            .map(episode)
            .transpose()
            .map_err(StateError::query("read an alert"))
    }

    /// Episodes matching `filter`, newest first.
    pub async fn alert_history(
        &self,
        tenant: &TenantId,
        filter: &HistoryFilter,
    ) -> Result<Vec<AlertEpisode>, StateError> {
        let mut sql = format!("SELECT {COLUMNS} FROM alert_history WHERE tenant = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.rule.is_some() {
            sql.push_str(&format!(" AND rule = ${}", next()));
        }
        if filter.severity.is_some() {
            sql.push_str(&format!(" AND severity = ${}", next()));
        }
        match filter.resolved {
            Some(true) => sql.push_str(" AND resolved_ms IS NOT NULL"),
            Some(false) => sql.push_str(" AND resolved_ms IS NULL"),
            None => {}
        }
        if filter.from_ms.is_some() {
            sql.push_str(&format!(" AND fired_ms >= ${}", next()));
        }
        if filter.to_ms.is_some() {
            sql.push_str(&format!(" AND fired_ms <= ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY fired_ms DESC, id LIMIT ${} OFFSET ${}",
            next(),
            next()
        ));
        let what = "read the alert history";
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                let mut q = sqlx::query(&sql).bind(tenant.as_str());
                for v in [&filter.rule, &filter.severity].into_iter().flatten() {
                    q = q.bind(v.as_str());
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
            .map(episode)
            .collect::<Result<_, _>>()
            .map_err(StateError::query("read the alert history"))
    }

    /// Statistics of the episodes that fired in `[from_ms, to_ms]`.
    pub async fn alert_stats(
        &self,
        tenant: &TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<AlertStats, StateError> {
        let what = "summarise alerts";
        let range = (tenant, from_ms, to_ms);
        // One transaction: the counts and the means see the same rows.
        let (by_rule, by_severity, by_service, (total, open, mtta, mttr)) = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                let by_rule = count_by(conn, "rule", range).await?;
                let by_severity = count_by(conn, "severity", range).await?;
                let by_service = count_by(conn, "service", range).await?;
                let summary: (i64, i64, Option<f64>, Option<f64>) = sqlx::query_as(&format!(
                    "SELECT COUNT(*), COUNT(*) - COUNT(resolved_ms), \
                     CAST(AVG(acked_ms - fired_ms) AS DOUBLE PRECISION) / 1000.0, \
                     CAST(AVG(resolved_ms - fired_ms) AS DOUBLE PRECISION) / 1000.0 \
                     FROM alert_history WHERE {STATS_RANGE}"
                ))
                .bind(tenant.as_str())
                .bind(from_ms)
                .bind(to_ms)
                .fetch_one(conn)
                .await
                .map_err(StateError::query(what))?;
                Ok((by_rule, by_severity, by_service, summary))
            })
            .await?;
        Ok(AlertStats {
            total,
            open,
            by_rule,
            by_severity,
            by_service,
            mtta_seconds: mtta,
            mttr_seconds: mttr,
        })
    }
}

/// The episodes [`Store::alert_stats`] counts: `$1` tenant, `$2`…`$3` when they fired.
const STATS_RANGE: &str = "tenant = $1 AND fired_ms >= $2 AND fired_ms <= $3";

/// Episodes per value of `column` in `(tenant, from_ms, to_ms)`, most first.
async fn count_by(
    conn: &mut AnyConnection,
    column: &'static str,
    (tenant, from_ms, to_ms): (&TenantId, i64, i64),
) -> Result<Vec<(String, i64)>, StateError> {
    sqlx::query_as(&format!(
        "SELECT {column}, COUNT(*) AS n FROM alert_history WHERE {STATS_RANGE} \
         GROUP BY {column} ORDER BY n DESC, {column}"
    ))
    .bind(tenant.as_str())
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
    .map_err(StateError::query("count alerts"))
}
