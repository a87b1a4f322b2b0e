//! Row-level security: PostgreSQL itself keeps tenants' rows apart, beside the store's own
//! `WHERE tenant = …`.
//!
//! Every tenant table ([`TENANT_TABLES`]) gets `ENABLE` and `FORCE ROW LEVEL SECURITY` (FORCE
//! because Dozor's role owns the tables it migrated, and owners are otherwise exempt) and one
//! policy, `dozor_tenant`: a row is visible and writable only when its tenant equals the
//! transaction's `dozor.tenant` setting, or that setting is `*`. A session that never set it
//! sees no rows and can write none. [`Store::scoped`] runs a method's statements in a
//! transaction that sets it first, transaction-locally, so a pooled connection never carries a
//! tenant to its next user. SQLite has no row-level security: there the scope is a no-op.

use sqlx::{AnyConnection, Executor};

use crate::{Backend, StateError, Store, TenantId};

/// The tables that hold tenants' rows, with the column naming the tenant: each one gets the
/// `dozor_tenant` policy. `tenants` is keyed by the tenant itself. Installation-wide tables
/// have none: `settings`, `source_checkpoints`, `login_failures` (per name, whether or not a
/// user has it), `revoked_sessions`, and `refresh_tokens` (no tenant column; only ever found
/// by hash, id, session or user id, before any tenant is known).
pub(crate) const TENANT_TABLES: [(&str, &str); 15] = [
    ("tenants", "id"),
    ("users", "tenant_id"),
    ("api_tokens", "tenant_id"),
    ("alert_history", "tenant"),
    ("anomaly_events", "tenant"),
    ("alert_rules", "tenant"),
    ("silences", "tenant"),
    ("notification_log", "tenant"),
    ("notification_deliveries", "tenant"),
    ("incidents", "tenant"),
    ("incident_events", "tenant"),
    ("dashboards", "tenant"),
    ("reports", "tenant"),
    ("report_history", "tenant"),
    ("fraud_events", "tenant"),
];

/// The PostgreSQL setting a transaction names its tenant in.
pub(crate) const TENANT_SETTING: &str = "dozor.tenant";

/// The value of [`TENANT_SETTING`] that lets a transaction see every tenant's rows.
pub(crate) const ALL_TENANTS: &str = "*";

/// The name of the policy on every tenant table.
const POLICY: &str = "dozor_tenant";

/// Serialises nodes applying the policies at once (`CREATE POLICY` is not `IF NOT EXISTS`):
/// "dozor_rl" in ASCII. Advisory locks are per database, so several installations sharing a
/// server do not wait for each other.
const LOCK_KEY: i64 = 0x646f_7a6f_725f_726c;

/// Whether PostgreSQL's row-level security binds a store's connections; see
/// [`Store::row_security`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSecurity {
    /// PostgreSQL, and the connected role is subject to the tenant policies.
    Enforced,
    /// PostgreSQL, but the connected role is a superuser or has `BYPASSRLS`: the policies do
    /// not bind it, and only the store's own `WHERE tenant = …` keeps tenants apart.
    Bypassed,
    /// SQLite, which has no row-level security: only the store's own `WHERE tenant = …` keeps
    /// tenants apart.
    NotApplicable,
}

/// Whose rows a transaction of [`Store::scoped`] may see and write.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowScope<'a> {
    /// One tenant's rows: every method that takes a [`TenantId`].
    Tenant(&'a TenantId),
    /// Every tenant's rows (`dozor.tenant` = `*`), for the paths that must work before a
    /// tenant is known or on behalf of the whole installation:
    /// - [`Store::user_by_name`]: a login names a user, not a tenant (names are unique
    ///   installation-wide); [`Store::user_by_id`] and [`Store::set_password`]: a session
    ///   names its user by id, and the user's row says its tenant.
    /// - [`Store::api_token_by_hash`]: a bearer token is all a request brings; the token's
    ///   row says its tenant.
    /// - [`Store::count_users`]: the bootstrap admin is made only when no user exists
    ///   anywhere; [`Store::list_tenants`]: every tenant, for administrators and start-up.
    /// - Start-up restores of every tenant's state: [`Store::tenants_with_alert_rules`],
    ///   [`Store::all_silences`], [`Store::notification_log_since`] (which also prunes old
    ///   entries), [`Store::open_incident_groups`].
    /// - Retention across tenants: [`Store::prune_deliveries`], [`Store::prune_expired`].
    /// - The report scheduler, which serves every tenant: [`Store::due_reports`],
    ///   [`Store::pending_report_deliveries`].
    System,
    /// Installation-wide tables only (sessions, lock-outs, checkpoints): `dozor.tenant` stays
    /// unset, so a tenant table would show no rows and take none. Also the start of
    /// [`Store::record_notifications`]' batch, whose statements each name their own tenant.
    Shared,
}

impl Store {
    /// Runs `f` in one transaction limited to `scope`, committed when `f` succeeds and rolled
    /// back otherwise; `what` names the work in the begin and commit errors.
    pub(crate) async fn scoped<R>(
        &self,
        scope: RowScope<'_>,
        what: &'static str,
        f: impl AsyncFnOnce(&mut AnyConnection) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let mut tx = self.pool().begin().await.map_err(StateError::query(what))?;
        self.set_scope(&mut tx, scope)
            .await
            .map_err(StateError::query(what))?;
        let out = f(&mut tx).await?;
        tx.commit().await.map_err(StateError::query(what))?;
        Ok(out)
    }

    /// The rows `sql` selects in `tenant` (`$1`, then `args` as `$2`…, all text), each
    /// read by `map`: the common shape of a tenant table's reads.
    pub(crate) async fn tenant_rows<T>(
        &self,
        tenant: &TenantId,
        what: &'static str,
        sql: &str,
        args: &[&str],
        map: fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StateError> {
        let rows = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                let mut q = sqlx::query(sql).bind(tenant.as_str());
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_all(conn).await.map_err(StateError::query(what))
            })
            .await?;
        rows.iter()
            .map(map)
            .collect::<Result<_, _>>()
            .map_err(StateError::query(what))
    }

    /// Runs `sql` in `tenant` (`$1`, then `args` as `$2`…, all text); the rows it touched.
    pub(crate) async fn tenant_execute(
        &self,
        tenant: &TenantId,
        what: &'static str,
        sql: &str,
        args: &[&str],
    ) -> Result<u64, StateError> {
        let done = self
            .scoped(RowScope::Tenant(tenant), what, async |conn| {
                let mut q = sqlx::query(sql).bind(tenant.as_str());
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(conn).await.map_err(StateError::query(what))
            })
            .await?;
        Ok(done.rows_affected())
    }

    /// Limits the rest of the transaction open on `conn` to `scope` (PostgreSQL only).
    pub(crate) async fn set_scope(
        &self,
        conn: &mut AnyConnection,
        scope: RowScope<'_>,
    ) -> Result<(), sqlx::Error> {
        let value = match (self.backend(), scope) {
            (Backend::Sqlite, _) | (_, RowScope::Shared) => return Ok(()),
            (Backend::Postgres, RowScope::Tenant(t)) => t.as_str(),
            (Backend::Postgres, RowScope::System) => ALL_TENANTS,
        };
        // `true`: transaction-local, gone at commit or rollback.
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(TENANT_SETTING)
            .bind(value)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Enables and forces row-level security on every tenant table and creates its policy,
    /// where that is not done yet (PostgreSQL only; after the migrations). Changes nothing
    /// when all is in place, so a restart takes no table lock; nodes starting at once take
    /// turns.
    pub(crate) async fn secure_rows(&self) -> Result<(), StateError> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        let matches = format!("current_setting('{TENANT_SETTING}', true) = '{ALL_TENANTS}'");
        let mut body = format!("PERFORM pg_advisory_xact_lock({LOCK_KEY});\n");
        for (table, column) in TENANT_TABLES {
            let rule =
                format!("({column} = current_setting('{TENANT_SETTING}', true) OR {matches})");
            body.push_str(&format!(
                "IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = '{table}'::regclass \
                     AND relrowsecurity AND relforcerowsecurity) THEN\n\
                   ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\n\
                 END IF;\n\
                 IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = '{table}'::regclass \
                     AND polname = '{POLICY}') THEN\n\
                   CREATE POLICY {POLICY} ON {table} USING {rule} WITH CHECK {rule};\n\
                 END IF;\n"
            ));
        }
        // One statement, one implicit transaction: the lock is held until all is done.
        self.pool()
            .execute(format!("DO $$\nBEGIN\n{body}END\n$$").as_str())
            .await
            .map_err(|e| StateError::Migrate(format!("row-level security: {e}")))?;
        Ok(())
    }

    /// Whether PostgreSQL's row-level security binds this store's connections: on
    /// PostgreSQL, [`RowSecurity::Enforced`] unless the connected role is a superuser or has
    /// `BYPASSRLS` ([`RowSecurity::Bypassed`], which deserves a warning: tenants are then
    /// kept apart by the store's queries alone); on SQLite [`RowSecurity::NotApplicable`].
    pub async fn row_security(&self) -> Result<RowSecurity, StateError> {
        if self.backend() != Backend::Postgres {
            return Ok(RowSecurity::NotApplicable);
        }
        let (bypass,): (bool,) = sqlx::query_as(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(self.pool())
        .await
        .map_err(StateError::query("read the role's row-level security"))?;
        Ok(if bypass {
            RowSecurity::Bypassed
        } else {
            RowSecurity::Enforced
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is the failure report.

    use dozor_model::{Role, ScopeSet};

    use crate::Store;
    use crate::alert_rules::RuleWrite;
    use crate::alerts::{FiredAlert, HistoryFilter};
    use crate::anomalies::{AnomalyEvent, AnomalyFilter};
    use crate::incidents::{Incident, IncidentEvent, IncidentFilter};
    use crate::lockout::LockoutPolicy;
    use crate::notifications::SilenceRow;
    use crate::tokens::NewApiToken;

    /// Compiles only for a `Send` future.
    fn send<T: Send>(_: T) {}

    /// The API holds these futures across `.await` in `Send` tasks: running them through
    /// [`Store::scoped`]'s async closures must keep them `Send`. A compile-time check; the
    /// futures are never polled.
    #[tokio::test]
    async fn scoped_futures_stay_send() {
        let store = Store::open_lazy("sqlite::memory:").unwrap();
        let t = crate::TenantId::default_tenant();
        let json = serde_json::Value::Null;
        let rule = RuleWrite {
            name: "",
            spec: "",
            enabled: true,
            by: "",
            at_ms: 0,
        };
        let fired = FiredAlert {
            fingerprint: "",
            rule: "",
            rule_group: "",
            labels: &json,
            annotations: &json,
            value: 0.0,
            active_ms: 0,
            fired_ms: 0,
        };
        let anomaly = AnomalyEvent {
            id: String::new(),
            timestamp_ms: 0,
            is_alert: true,
            alert_type: String::new(),
            alert_level: String::new(),
            alert_title: String::new(),
            alert_message: String::new(),
            user_id: None,
            tags: json.clone(),
            metrics: json.clone(),
        };
        let incident = Incident {
            id: String::new(),
            title: String::new(),
            description: String::new(),
            status: String::new(),
            severity: String::new(),
            service_name: String::new(),
            group_key: None,
            detected_at_ms: 0,
            acknowledged_at_ms: None,
            acknowledged_by: None,
            resolved_at_ms: None,
            resolved_by: None,
            postmortem: String::new(),
            context: String::new(),
            created_by: String::new(),
            updated_at_ms: 0,
        };
        let event = IncidentEvent {
            seq: 0,
            at_ms: 0,
            kind: String::new(),
            actor: String::new(),
            text: String::new(),
            data: String::new(),
        };
        let silence = SilenceRow {
            id: String::new(),
            matchers: String::new(),
            starts_at_ms: 0,
            ends_at_ms: 0,
            updated_at_ms: 0,
            created_by: String::new(),
            comment: String::new(),
        };
        let lockout = LockoutPolicy {
            max_failures: 0,
            window_ms: 0,
            lock_ms: 0,
        };
        send(store.ensure_tenant(&t));
        send(store.list_tenants());
        send(store.create_user(&t, "", "", Role::Viewer));
        send(store.user_by_name(""));
        send(store.user_by_id(""));
        send(store.list_users(&t));
        send(store.set_password("", ""));
        send(store.count_users());
        send(store.create_api_token(NewApiToken {
            tenant: &t,
            name: "",
            scopes: ScopeSet::default(),
            created_by: "",
            expires_ms: None,
            token_hash: "",
        }));
        send(store.api_token_by_hash(""));
        send(store.list_api_tokens(&t));
        send(store.revoke_api_token(&t, ""));
        send(store.revoke_session("", 0));
        send(store.record_login_failure("", 0, lockout));
        send(store.save_checkpoints("", &[]));
        send(store.alert_fired(&t, &fired));
        send(store.alert_resolved(&t, "", 0, "", None));
        send(store.alert_acknowledged(&t, "", 0, "", None));
        send(store.open_alerts(&t));
        send(store.latest_alert(&t, ""));
        send(store.alert_history(&t, &HistoryFilter::default()));
        send(store.alert_stats(&t, 0, 0));
        send(store.add_anomaly_event(&t, &anomaly));
        send(store.anomaly_events(&t, &AnomalyFilter::default()));
        send(store.create_alert_rule(&t, rule));
        send(store.update_alert_rule(&t, "", rule));
        send(store.delete_alert_rule(&t, ""));
        send(store.alert_rule(&t, ""));
        send(store.alert_rules(&t));
        send(store.tenants_with_alert_rules());
        send(store.put_silence(&t, &silence));
        send(store.delete_silences(&t, &[]));
        send(store.all_silences());
        send(store.record_notifications(&[]));
        send(store.notification_log_since(0));
        send(store.deliveries(&t, None, 0));
        send(store.prune_deliveries(0));
        send(store.create_incident(&t, &incident));
        send(store.update_incident(&t, &incident));
        send(store.incident(&t, ""));
        send(store.open_incident_of_group(&t, ""));
        send(store.latest_incident_of_group(&t, ""));
        send(store.open_incident_groups());
        send(store.incidents(&t, &IncidentFilter::default()));
        send(store.delete_incident(&t, ""));
        send(store.add_incident_event(&t, "", &event));
        send(store.incident_events(&t, ""));
        send(store.row_security());
    }
}
