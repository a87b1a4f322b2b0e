//! Clean-up of expired rows (seed 004's cleanup workers), in every tenant: what is over and
//! older than its table's limit. Open alerts, open incidents and findings not investigated
//! yet never expire — only what is settled ages out.

use crate::rls::RowScope;
use crate::{StateError, Store};

/// A table whose rows expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expiring {
    /// Alert episodes, once resolved.
    AlertHistory,
    /// Seed 001's anomaly events.
    AnomalyEvents,
    /// Resolved incidents, with their timelines.
    Incidents,
    /// Report runs (with their documents).
    ReportHistory,
    /// Investigated fraud findings (seed 004's `cleanup_old_fraud_events`).
    FraudEvents,
}

impl Expiring {
    /// Every one, in order.
    pub const ALL: [Expiring; 5] = [
        Expiring::AlertHistory,
        Expiring::AnomalyEvents,
        Expiring::Incidents,
        Expiring::ReportHistory,
        Expiring::FraudEvents,
    ];

    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            Expiring::AlertHistory => "alert_history",
            Expiring::AnomalyEvents => "anomaly_events",
            Expiring::Incidents => "incidents",
            Expiring::ReportHistory => "report_history",
            Expiring::FraudEvents => "fraud_events",
        }
    }

    /// The statements deleting its rows settled before `$1` (ms since the epoch); the last
    /// one deletes the table's own rows.
    fn statements(self) -> &'static [&'static str] {
        match self {
            Expiring::AlertHistory => {
                &["DELETE FROM alert_history WHERE resolved_ms IS NOT NULL AND resolved_ms < $1"]
            }
            Expiring::AnomalyEvents => &["DELETE FROM anomaly_events WHERE timestamp < $1"],
            // The timeline first: it names its incident.
            Expiring::Incidents => &[
                "DELETE FROM incident_events WHERE EXISTS (SELECT 1 FROM incidents i \
                 WHERE i.tenant = incident_events.tenant AND i.id = incident_events.incident \
                 AND i.status = 'resolved' AND i.resolved_at < $1)",
                "DELETE FROM incidents WHERE status = 'resolved' AND resolved_at < $1",
            ],
            Expiring::ReportHistory => &["DELETE FROM report_history WHERE generated_at < $1"],
            Expiring::FraudEvents => {
                &["DELETE FROM fraud_events WHERE investigated = 1 AND at < $1"]
            }
        }
    }
}

impl Store {
    /// Deletes the rows of `table` settled before `before_ms`, in every tenant, in one
    /// transaction; how many of the table's own rows went.
    pub async fn prune_expired(&self, table: Expiring, before_ms: i64) -> Result<u64, StateError> {
        let what = "prune expired rows";
        self.scoped(RowScope::System, what, async |conn| {
            let mut last = 0;
            for sql in table.statements() {
                last = sqlx::query(sql)
                    .bind(before_ms)
                    .execute(&mut *conn)
                    .await
                    .map_err(StateError::query(what))?
                    .rows_affected();
            }
            Ok(last)
        })
        .await
    }
}
