//! The `incidents` and `incident_events` tables: incidents (seed 004) with their status,
//! who acknowledged and resolved them, the context collected when they opened and a
//! postmortem, and each incident's timeline.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rls::RowScope;
use crate::{StateError, Store, TenantId};

/// One incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// A one-line title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// The service it concerns ("" when unknown).
    pub service_name: String,
    /// The alert group that opened it; `None` for one opened by hand.
    pub group_key: Option<String>,
    /// When it began, ms.
    pub detected_at_ms: i64,
    /// When it was acknowledged, ms.
    pub acknowledged_at_ms: Option<i64>,
    /// By whom.
    pub acknowledged_by: Option<String>,
    /// When it was resolved, ms.
    pub resolved_at_ms: Option<i64>,
    /// By whom (`alerts` when its alerts resolved).
    pub resolved_by: Option<String>,
    /// The postmortem.
    pub postmortem: String,
    /// Collected context, JSON.
    pub context: String,
    /// Who opened it (`alerting` for an alert group).
    pub created_by: String,
    /// Last change, ms.
    pub updated_at_ms: i64,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    /// Its place in the timeline, from 1.
    pub seq: i64,
    /// When, ms.
    pub at_ms: i64,
    /// `alert`, `acknowledged`, `note`, `action`, `status`, `context`…
    pub kind: String,
    /// Who (a user, `alerting`, an action's name).
    pub actor: String,
    /// A sentence for people.
    pub text: String,
    /// Details, JSON.
    pub data: String,
}

/// Which incidents a listing returns.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Only this service.
    pub service: Option<String>,
    /// Detected at or after, ms.
    pub since_ms: Option<i64>,
    /// Most rows.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

const COLUMNS: &str = "id, title, description, status, severity, service_name, group_key, \
     detected_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, postmortem, \
     context, created_by, updated_at";

fn incident(row: &AnyRow) -> Result<Incident, sqlx::Error> {
    Ok(Incident {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        severity: row.try_get("severity")?,
        service_name: row.try_get("service_name")?,
        group_key: row.try_get("group_key")?,
        detected_at_ms: row.try_get("detected_at")?,
        acknowledged_at_ms: row.try_get("acknowledged_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        resolved_at_ms: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolved_by")?,
        postmortem: row.try_get("postmortem")?,
        context: row.try_get("context")?,
        created_by: row.try_get("created_by")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Stores a new incident under a fresh id (`i.id` is ignored); returns it.
    pub async fn create_incident(
        &self,
        tenant: &TenantId,
        i: &Incident,
    ) -> Result<Incident, StateError> {
        let mut stored = i.clone();
        stored.id = crate::new_id()?;
        self.write_incident(
            tenant,
            &stored,
            &format!(
                "INSERT INTO incidents (tenant, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
            ),
            "create an incident",
        )
        .await?;
        Ok(stored)
    }

    /// Writes every column of an existing incident; whether it existed.
    pub async fn update_incident(
        &self,
        tenant: &TenantId,
        i: &Incident,
    ) -> Result<bool, StateError> {
        self.write_incident(
            tenant,
            i,
            "UPDATE incidents SET title = $3, description = $4, status = $5, severity = $6, \
             service_name = $7, group_key = $8, detected_at = $9, acknowledged_at = $10, \
             acknowledged_by = $11, resolved_at = $12, resolved_by = $13, postmortem = $14, \
             context = $15, created_by = $16, updated_at = $17 WHERE tenant = $1 AND id = $2",
            "update an incident",
        )
        .await
    }

    async fn write_incident(
        &self,
        tenant: &TenantId,
        i: &Incident,
        sql: &str,
        what: &'static str,
    ) -> Result<bool, StateError> {
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(&i.id)
                    .bind(&i.title)
                    .bind(&i.description)
                    .bind(&i.status)
                    .bind(&i.severity)
                    .bind(&i.service_name)
                    .bind(i.group_key.as_deref())
                    .bind(i.detected_at_ms)
                    .bind(i.acknowledged_at_ms)
                    .bind(i.acknowledged_by.as_deref())
                    .bind(i.resolved_at_ms)
                    .bind(i.resolved_by.as_deref())
                    .bind(&i.postmortem)
                    .bind(&i.context)
                    .bind(&i.created_by)
                    .bind(i.updated_at_ms)
                    .execute(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One incident.
    pub async fn incident(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Incident>, StateError> {
        self.one_incident(tenant, id, "id = $2", "read an incident")
            .await
    }

    /// The first incident of `tenant` where `condition` (on `$2`, bound to `key`) holds.
    async fn one_incident(
        &self,
        tenant: &TenantId,
        key: &str,
        condition: &str,
        what: &'static str,
    ) -> Result<Option<Incident>, StateError> {
        let row = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM incidents WHERE tenant = $1 AND {condition}"
                ))
                .bind(tenant.as_str())
                .bind(key)
                .fetch_optional(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        row.as_ref()
            .map(incident)
            .transpose()
            .map_err(StateError::query(what))
    }

    /// The latest incident of an alert group that is not resolved.
    pub async fn open_incident_of_group(
        &self,
        tenant: &TenantId,
        group_key: &str,
    ) -> Result<Option<Incident>, StateError> {
        self.one_incident(
            tenant,
            group_key,
            "group_key = $2 AND status <> 'resolved' ORDER BY detected_at DESC LIMIT 1",
            "find an open incident",
        )
        .await
    }

    /// The latest incident of an alert group, whatever its status.
    pub async fn latest_incident_of_group(
        &self,
        tenant: &TenantId,
        group_key: &str,
    ) -> Result<Option<Incident>, StateError> {
        self.one_incident(
            tenant,
            group_key,
            "group_key = $2 ORDER BY detected_at DESC LIMIT 1",
            "find a group's incident",
        )
        .await
    }

    /// Every tenant's alert groups that have an incident not resolved (read at start).
    pub async fn open_incident_groups(&self) -> Result<Vec<(TenantId, String)>, StateError> {
        let what = "list open incident groups";
        let rows = self
            .scoped(RowScope::System, what, async |conn| {
                sqlx::query(
                    "SELECT DISTINCT tenant, group_key FROM incidents \
                     WHERE status <> 'resolved' AND group_key IS NOT NULL",
                )
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| {
                let t: String = r.try_get("tenant")?;
                let tenant = t
                    .parse::<TenantId>()
                    .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
                Ok((tenant, r.try_get("group_key")?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query(what))
    }

    /// A tenant's incidents, newest first.
    pub async fn incidents(
        &self,
        tenant: &TenantId,
        f: &IncidentFilter,
    ) -> Result<Vec<Incident>, StateError> {
        let what = "list incidents";
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM incidents WHERE tenant = $1 \
                     AND ($2 = '' OR status = $2) AND ($3 = '' OR severity = $3) \
                     AND ($4 = '' OR service_name = $4) AND detected_at >= $5 \
                     ORDER BY detected_at DESC, id LIMIT $6 OFFSET $7"
                ))
                .bind(tenant.as_str())
                .bind(f.status.as_deref().unwrap_or(""))
                .bind(f.severity.as_deref().unwrap_or(""))
                .bind(f.service.as_deref().unwrap_or(""))
                .bind(f.since_ms.unwrap_or(i64::MIN))
                .bind(f.limit)
                .bind(f.offset)
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(incident)
            .collect::<Result<_, _>>()
            .map_err(StateError::query(what))
    }

    /// Deletes an incident and its timeline; whether it existed.
    pub async fn delete_incident(&self, tenant: &TenantId, id: &str) -> Result<bool, StateError> {
        let what = "delete an incident";
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query("DELETE FROM incident_events WHERE tenant = $1 AND incident = $2")
                    .bind(tenant.as_str())
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StateError::query("delete an incident's timeline"))?;
                sqlx::query("DELETE FROM incidents WHERE tenant = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id)
                    .execute(conn)
                    .await
                    .map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Appends to an incident's timeline (`e.seq` is ignored: the next one is taken);
    /// returns the entry as stored.
    pub async fn add_incident_event(
        &self,
        tenant: &TenantId,
        incident: &str,
        e: &IncidentEvent,
    ) -> Result<IncidentEvent, StateError> {
        let what = "add to an incident's timeline";
        // Two writers may draw the same number on PostgreSQL; the loser tries again, in a
        // new transaction (a failed statement spoils its own).
        let mut last = None;
        for _ in 0..3 {
            let row = self
                .scoped(RowScope::Tenant(tenant), what, async |conn| {
                    sqlx::query(
                        "INSERT INTO incident_events (tenant, incident, seq, at, kind, actor, \
                         text, data) SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, \
                         $7 FROM incident_events WHERE tenant = $1 AND incident = $2 \
                         RETURNING seq",
                    )
                    .bind(tenant.as_str())
                    .bind(incident)
                    .bind(e.at_ms)
                    .bind(&e.kind)
                    .bind(&e.actor)
                    .bind(&e.text)
                    .bind(&e.data)
                    .fetch_one(conn)
                    .await
                    .map_err(StateError::query(what))
                })
                .await;
            match row {
                Ok(r) => {
                    let seq: i64 = r.try_get("seq").map_err(StateError::query(what))?;
                    return Ok(IncidentEvent { seq, ..e.clone() });
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| StateError::query(what)(sqlx::Error::RowNotFound)))
    }

    /// An incident's timeline, in order.
    pub async fn incident_events(
        &self,
        tenant: &TenantId,
        incident: &str,
    ) -> Result<Vec<IncidentEvent>, StateError> {
        let what = "read an incident's timeline";
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                sqlx::query(
                    "SELECT seq, at, kind, actor, text, data FROM incident_events \
                     WHERE tenant = $1 AND incident = $2 ORDER BY seq",
                )
                .bind(tenant.as_str())
                .bind(incident)
                .fetch_all(conn)
                .await
                .map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentEvent {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor: r.try_get("actor")?,
                    text: r.try_get("text")?,
                    data: r.try_get("data")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::query(what))
    }
}
