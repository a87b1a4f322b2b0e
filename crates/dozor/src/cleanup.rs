//! The hourly clean-up of the state store (seed 004's cleanup workers): rows settled longer
//! ago than `state.retention` allows — resolved alert episodes and incidents, anomaly
//! events, report runs, investigated fraud findings — are deleted in every tenant, and each
//! table's deletion is an audit record (`state.prune`: the table, the rows, the cut-off), so
//! the chain tells what went and why. Several nodes sharing the store may all run it: a
//! deletion finds nothing left the second time.

use std::sync::Arc;
use std::time::Duration;

use dozor_audit::{AuditLog, Entry, Outcome};
use dozor_model::TenantId;
use dozor_state::Store;
use dozor_state::retention::Expiring;

use crate::config::StateRetention;

/// How often the clean-up runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs the clean-up at start and then every hour until `stop` turns true.
pub async fn run(
    store: Store,
    retention: StateRetention,
    audit: Arc<AuditLog>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        prune(&store, &retention, &audit, dozor_model::time::now_ms()).await;
    }
}

/// One clean-up as of `now_ms`: what each table lost (tables with nothing to delete, or kept
/// forever, are left out).
pub async fn prune(
    store: &Store,
    retention: &StateRetention,
    audit: &Arc<AuditLog>,
    now_ms: i64,
) -> Vec<(&'static str, u64)> {
    let mut deleted = Vec::new();
    for table in Expiring::ALL {
        let Some(keep) = retention.keep(table) else {
            continue;
        };
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms.saturating_sub(keep_ms);
        match store.prune_expired(table, before).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(table = table.table(), rows = n, "expired rows deleted");
                let entry = Entry::new(
                    TenantId::DEFAULT,
                    "dozor",
                    "state.prune",
                    table.table(),
                    Outcome::Success,
                )
                .detail("rows", n)
                .detail("before_ms", before)
                .detail("retention_days", keep.as_secs() / 86_400);
                crate::notify::audit_system(audit, entry).await;
                deleted.push((table.table(), n));
            }
            Err(e) => {
                tracing::warn!(table = table.table(), error = %e, "cannot delete expired rows")
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_rows_go_and_the_chain_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = Store::open(&url).await.unwrap();
        let audit = Arc::new(AuditLog::open(dir.path()).unwrap());
        const DAY: i64 = 86_400_000;
        let now = 1_000 * DAY;
        let tenant = TenantId::default_tenant();
        for (id, at) in [("old", now - 100 * DAY), ("new", now - DAY)] {
            let e = dozor_state::anomalies::AnomalyEvent {
                id: id.into(),
                timestamp_ms: at,
                is_alert: true,
                alert_type: "logs".into(),
                alert_level: "warning".into(),
                alert_title: "t".into(),
                alert_message: "m".into(),
                user_id: None,
                tags: serde_json::json!({}),
                metrics: serde_json::json!({}),
            };
            store.add_anomaly_event(&tenant, &e).await.unwrap();
        }
        // Kept forever: nothing goes.
        let forever = StateRetention {
            anomaly_events: Duration::ZERO,
            ..StateRetention::default()
        };
        assert!(prune(&store, &forever, &audit, now).await.is_empty());
        assert_eq!(audit.len(), 0);
        // 90 days: the old one goes, once, and the chain records it.
        let retention = StateRetention::default();
        let deleted = prune(&store, &retention, &audit, now).await;
        assert_eq!(deleted, [("anomaly_events", 1)]);
        assert!(prune(&store, &retention, &audit, now).await.is_empty());
        assert_eq!(audit.len(), 1);
        let chain = std::fs::read_dir(audit.dir())
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .collect::<String>();
        assert!(chain.contains("\"state.prune\""), "{chain}");
        assert!(chain.contains("anomaly_events"), "{chain}");
    }
}
