//! Incidents opened from alert groups (`alerting.incidents`). Every notification the
//! dispatcher makes passes through one worker, in order: a group whose firing alerts match
//! the selector (default `severity="critical"`) opens an incident unless one of the group is
//! still open; each alert's firing and resolving is added to the incident's timeline once;
//! when every alert of the group has resolved, the incident resolves (`resolved_by:
//! alerts`). A new incident's context is collected at once: log lines of the alerts'
//! services from 10 minutes before the first alert until now, a 30-minute snapshot of each
//! alert's expression (from its `generatorURL`), and the other firing alerts of the same
//! service, job, host or instance; `recollect_after` (default 10 minutes) later it is
//! collected again, so it holds the minutes after the alert too. The automatic actions of a
//! notification run after its incident side. E-mails of the group attach the context
//! (`notify.rs`).

use std::sync::Arc;

use dozor_alerting::Notification;
use dozor_alerting::incident::{self, IncidentPolicy};
use dozor_alerting::shared::Notifications;
use dozor_audit::{AuditLog, Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_model::{Matcher, TenantId};
use dozor_promql::Engine;
use dozor_state::incidents::{Incident, IncidentEvent};
use dozor_state::{StateError, Store};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Notifications waiting for the worker; beyond it the incident side of one is skipped
/// (logged) — the notification itself is still delivered.
const QUEUE: usize = 10_000;
/// Most alerts whose expression and logs are collected.
const CONTEXT_ALERTS: usize = 5;
/// Most log lines per alert.
const CONTEXT_LOG_LINES: usize = 50;
/// Most series per expression.
const CONTEXT_SERIES: usize = 20;

/// Alert groups with an incident that is not resolved, so a notification of any other
/// group that opens nothing costs no query.
type OpenGroups = std::sync::Mutex<std::collections::HashSet<(TenantId, String)>>;

/// What the worker uses.
pub struct Incidents {
    /// The state store.
    pub store: Store,
    /// The audit chain (openings and automatic resolutions are recorded).
    pub audit: Arc<AuditLog>,
    /// Metrics, for the expressions' snapshots.
    pub tsdb: Arc<dozor_tsdb::Tsdb>,
    /// Logs, for the lines around the start.
    pub logs: Arc<dozor_logs::Logs>,
    /// PromQL.
    pub engine: Engine,
    /// The alerts, for related ones.
    pub notifications: Arc<Notifications>,
    /// Which alerts open incidents.
    pub policy: IncidentPolicy,
    /// The automatic actions, run after the incident side of each notification (so their
    /// runs land on the timeline of the incident it opened).
    pub actions: Arc<crate::actions::Actions>,
    /// Filled by the worker from the store when it starts.
    pub open_groups: OpenGroups,
    /// When the context is collected again (zero: never).
    pub recollect_after: std::time::Duration,
}

/// The dispatcher's side: hands notifications to the worker without waiting.
#[derive(Debug, Clone)]
pub struct IncidentQueue {
    tx: mpsc::Sender<(TenantId, Notification)>,
    /// Which alerts open incidents (an e-mail of such a group waits for the context).
    pub policy: IncidentPolicy,
}

impl IncidentQueue {
    /// Queues a notification; a full queue skips it (logged).
    pub fn send(&self, tenant: &TenantId, n: &Notification) {
        if self.tx.try_send((tenant.clone(), n.clone())).is_err() {
            tracing::error!(%tenant, group = %n.group_key, "the incident queue is full; a notification was not looked at");
        }
    }
}

/// Starts the worker.
pub fn start(incidents: Incidents) -> (IncidentQueue, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(TenantId, Notification)>(QUEUE);
    let policy = incidents.policy.clone();
    let me = Arc::new(incidents);
    let task = tokio::spawn(async move {
        match me.store.open_incident_groups().await {
            Ok(groups) => me.open_groups().extend(groups),
            Err(e) => tracing::error!(error = %e, "cannot read the open incidents' groups"),
        }
        while let Some((tenant, n)) = rx.recv().await {
            if let Err(e) = me.handle(&tenant, &n).await {
                tracing::error!(%tenant, group = %n.group_key, error = %e, "incident handling failed");
            }
            me.actions.on_notification(&tenant, &n);
        }
    });
    (IncidentQueue { tx, policy }, task)
}

fn event(kind: &str, actor: &str, text: String, data: Value) -> IncidentEvent {
    IncidentEvent {
        seq: 0,
        at_ms: now_ms(),
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        text,
        data: data.to_string(),
    }
}

impl Incidents {
    fn open_groups(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(TenantId, String)>> {
        self.open_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn audit(&self, tenant: &TenantId, action: &str, id: &str, detail: &str) {
        let entry = Entry::new(
            tenant.as_str(),
            "alerting",
            action,
            format!("incident/{id}"),
            Outcome::Success,
        )
        .detail("detail", detail);
        crate::notify::audit_system(&self.audit, entry).await;
    }

    async fn handle(
        self: &Arc<Self>,
        tenant: &TenantId,
        n: &Notification,
    ) -> Result<(), StateError> {
        let key = (tenant.clone(), n.group_key.clone());
        if !self.policy.opens(n) && !self.open_groups().contains(&key) {
            return Ok(());
        }
        let mut opened = false;
        let mut incident = match self
            .store
            .open_incident_of_group(tenant, &n.group_key)
            .await?
        {
            Some(i) => i,
            None if self.policy.opens(n) => {
                let o = incident::opening(n);
                let now = now_ms();
                let i = self
                    .store
                    .create_incident(
                        tenant,
                        &Incident {
                            id: String::new(),
                            title: o.title,
                            description: o.description,
                            status: "open".into(),
                            severity: o.severity,
                            service_name: o.service,
                            group_key: Some(n.group_key.clone()),
                            detected_at_ms: o.detected_at_ms,
                            acknowledged_at_ms: None,
                            acknowledged_by: None,
                            resolved_at_ms: None,
                            resolved_by: None,
                            postmortem: String::new(),
                            context: "{}".into(),
                            created_by: "alerting".into(),
                            updated_at_ms: now,
                        },
                    )
                    .await?;
                tracing::info!(%tenant, incident = %i.id, title = %i.title, "incident opened");
                self.open_groups().insert(key.clone());
                self.audit(tenant, "incident.open", &i.id, &i.title).await;
                opened = true;
                i
            }
            None => {
                // Resolved by hand meanwhile.
                self.open_groups().remove(&key);
                return Ok(());
            }
        };
        let seen: Vec<(String, String)> = self
            .store
            .incident_events(tenant, &incident.id)
            .await?
            .into_iter()
            .filter(|e| e.kind == "alert")
            .filter_map(|e| {
                let d: Value = serde_json::from_str(&e.data).ok()?;
                Some((
                    d["fingerprint"].as_str()?.to_owned(),
                    d["state"].as_str()?.to_owned(),
                ))
            })
            .collect();
        for e in incident::entries(n, &seen) {
            let mut ev = event(
                "alert",
                "alerting",
                e.text,
                json!({"fingerprint": e.fingerprint, "state": e.state}),
            );
            ev.at_ms = e.at_ms;
            self.store
                .add_incident_event(tenant, &incident.id, &ev)
                .await?;
        }
        if opened {
            // After the alert entries, so the timeline reads: the alerts, then their context.
            let me = Arc::clone(self);
            let (t, id, n) = (tenant.clone(), incident.id.clone(), n.clone());
            tokio::spawn(async move {
                if let Err(e) = me.collect(&t, &id, &n).await {
                    tracing::warn!(tenant = %t, incident = %id, error = %e, "cannot collect an incident's context");
                }
                if me.recollect_after.is_zero() {
                    return;
                }
                // Not kept across a restart: the context of the opening stays.
                tokio::time::sleep(me.recollect_after).await;
                if let Err(e) = me.collect(&t, &id, &n).await {
                    tracing::warn!(tenant = %t, incident = %id, error = %e, "cannot collect an incident's context again");
                }
            });
        }
        if n.status() == "resolved" && incident.status != "resolved" {
            let now = now_ms();
            incident.status = "resolved".into();
            incident.resolved_at_ms = Some(now);
            incident.resolved_by = Some("alerts".into());
            incident.updated_at_ms = now;
            self.store.update_incident(tenant, &incident).await?;
            self.store
                .add_incident_event(
                    tenant,
                    &incident.id,
                    &event(
                        "status",
                        "alerting",
                        "resolved: every alert of the group resolved".into(),
                        json!({"status": "resolved"}),
                    ),
                )
                .await?;
            self.audit(
                tenant,
                "incident.resolve",
                &incident.id,
                "every alert resolved",
            )
            .await;
            self.open_groups().remove(&key);
        }
        Ok(())
    }

    /// Collects and stores the context of a new incident.
    async fn collect(
        &self,
        tenant: &TenantId,
        id: &str,
        n: &Notification,
    ) -> Result<(), StateError> {
        let now = now_ms();
        let firing: Vec<dozor_alerting::Alert> = n
            .alerts
            .iter()
            .filter(|a| !a.resolved(n.at_ms))
            .take(CONTEXT_ALERTS)
            .cloned()
            .collect();
        let detected = firing.iter().map(|a| a.starts_at_ms).min().unwrap_or(now);
        let (tsdb, logs, engine) = (
            Arc::clone(&self.tsdb),
            Arc::clone(&self.logs),
            self.engine.clone(),
        );
        let (t, alerts) = (tenant.clone(), firing.clone());
        let (metrics, lines) = tokio::task::spawn_blocking(move || {
            (
                snapshots(&tsdb, &engine, &t, &alerts, detected, now),
                log_lines(&logs, &t, &alerts, detected, now),
            )
        })
        .await
        .map_err(|e| StateError::Corrupt(format!("context collection panicked: {e}")))?;
        let own: Vec<String> = n
            .alerts
            .iter()
            .map(dozor_alerting::Alert::fingerprint)
            .collect();
        let related: Vec<Value> = self.notifications.with(tenant, |m| {
            m.alerts(now)
                .into_iter()
                .filter(|v| !own.contains(&v.fingerprint))
                .filter(|v| firing.iter().any(|a| incident::related(&a.labels, &v.alert.labels)))
                .take(20)
                .map(|v| {
                    json!({
                        "fingerprint": v.fingerprint,
                        "labels": v.alert.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                        "startsAt": v.alert.starts_at_ms,
                        "state": v.state(),
                    })
                })
                .collect()
        });
        let text = format!(
            "context collected: {} log lines, {} series, {} related alerts",
            lines.len(),
            metrics
                .iter()
                .map(|m| m["series"].as_array().map_or(0, Vec::len))
                .sum::<usize>(),
            related.len()
        );
        let context = json!({
            "collectedAt": now,
            "window": {"logsFrom": detected - 10 * 60_000, "metricsFrom": detected - 30 * 60_000, "to": now},
            "logs": lines,
            "metrics": metrics,
            "relatedAlerts": related,
        });
        let Some(mut i) = self.store.incident(tenant, id).await? else {
            return Ok(()); // deleted meanwhile
        };
        i.context = context.to_string();
        i.updated_at_ms = now_ms();
        self.store.update_incident(tenant, &i).await?;
        self.store
            .add_incident_event(tenant, id, &event("context", "alerting", text, json!({})))
            .await?;
        Ok(())
    }
}

/// Each alert's expression over the 30 minutes before it started until now, a point a
/// minute.
fn snapshots(
    tsdb: &dozor_tsdb::Tsdb,
    engine: &Engine,
    tenant: &TenantId,
    alerts: &[dozor_alerting::Alert],
    detected: i64,
    now: i64,
) -> Vec<Value> {
    let Ok(db) = tsdb.tenant(tenant) else {
        return Vec::new();
    };
    let mut exprs: Vec<String> = alerts
        .iter()
        .filter_map(|a| incident::expression(&a.generator_url))
        .collect();
    exprs.dedup();
    exprs
        .into_iter()
        .map(|expr| {
            let start = detected - 30 * 60_000;
            match engine.range(db.as_ref(), &expr, start, now.max(start), 60_000) {
                Ok(r) => {
                    let series: Vec<Value> = match r.value {
                        dozor_promql::Value::Matrix(m) => m
                            .into_iter()
                            .take(CONTEXT_SERIES)
                            .map(|s| {
                                json!({
                                    "labels": s.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                                    "points": s.samples.iter().map(|p| json!([p.t, p.v])).collect::<Vec<_>>(),
                                })
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    json!({"expr": expr, "series": series})
                }
                Err(e) => json!({"expr": expr, "series": [], "error": e.to_string()}),
            }
        })
        .collect()
}

/// Log lines of the alerts' services (their first place label), from 10 minutes before
/// the first alert until now, newest first.
fn log_lines(
    logs: &dozor_logs::Logs,
    tenant: &TenantId,
    alerts: &[dozor_alerting::Alert],
    detected: i64,
    now: i64,
) -> Vec<Value> {
    let Some(db) = logs.existing(tenant) else {
        return Vec::new();
    };
    let mut places: Vec<(&str, String)> = alerts
        .iter()
        .filter_map(|a| incident::place(&a.labels).map(|(k, v)| (k, v.to_owned())))
        .collect();
    places.sort();
    places.dedup();
    let mut out = Vec::new();
    for (k, v) in places {
        let mut q = dozor_logs::LogQuery::new(
            vec![Matcher::equal(k, v.clone())],
            (detected - 10 * 60_000).saturating_mul(1_000_000),
            now.saturating_mul(1_000_000),
        );
        q.limit = CONTEXT_LOG_LINES;
        let scanned = db.scan(&q, &mut |r| {
            out.push(json!({
                "time": r.time_ns / 1_000_000,
                "stream": r.stream.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                "message": r.message,
            }));
        });
        if let Err(e) = scanned {
            tracing::warn!(%tenant, error = %e, "cannot read logs for an incident");
        }
    }
    out
}
