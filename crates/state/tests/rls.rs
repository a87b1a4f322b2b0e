//! Row-level security on PostgreSQL: a role that is neither superuser nor `BYPASSRLS` sees,
//! in its own sessions, only the rows of the tenant it names in `dozor.tenant`, and writes no
//! other; the store, connected as that role, still serves each tenant its rows and still finds
//! users and tokens across tenants.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::future::Future;

use dozor_model::{Role, Scope, ScopeSet, TenantId};
use dozor_state::alert_rules::RuleWrite;
use dozor_state::alerts::{FiredAlert, HistoryFilter};
use dozor_state::anomalies::{AnomalyEvent, AnomalyFilter};
use dozor_state::incidents::{Incident, IncidentEvent, IncidentFilter};
use dozor_state::notifications::{Delivery, LogRow, NotificationRecord, SilenceRow};
use dozor_state::test_support::{TempDatabase, pg_admin_url};
use dozor_state::tokens::NewApiToken;
use dozor_state::{RowSecurity, Store};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// Every table that holds tenants' rows, with its tenant column: what the policies must cover.
const TENANT_TABLES: [(&str, &str); 15] = [
    ("alert_history", "tenant"),
    ("alert_rules", "tenant"),
    ("anomaly_events", "tenant"),
    ("api_tokens", "tenant_id"),
    ("dashboards", "tenant"),
    ("fraud_events", "tenant"),
    ("incident_events", "tenant"),
    ("incidents", "tenant"),
    ("notification_deliveries", "tenant"),
    ("notification_log", "tenant"),
    ("report_history", "tenant"),
    ("reports", "tenant"),
    ("silences", "tenant"),
    ("tenants", "id"),
    ("users", "tenant_id"),
];

/// URLs of a throw-away database owned by a throw-away login role.
#[derive(Debug, Clone)]
struct Urls {
    /// The database, as the role.
    role: String,
    /// The database, as the admin (a superuser).
    admin: String,
    /// The role's name.
    role_name: String,
}

/// `db_url` with `role` as its user (no password: the test server trusts local logins).
fn url_as(role: &str, db_url: &str) -> String {
    let (scheme, rest) = db_url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{host}")
}

/// Runs `body` against a fresh database owned by a fresh role with no privilege beyond
/// logging in, then drops both, whether `body` passed or not.
async fn with_role_database<F, Fut>(body: F)
where
    F: FnOnce(Urls) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let role = format!(
        "dozor_rls_{}",
        hex::encode(dozor_state::random_bytes::<6>().unwrap())
    );
    let mut admin = PgConnection::connect(&pg_admin_url()).await.unwrap();
    admin
        .execute(
            format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
                .as_str(),
        )
        .await
        .unwrap();
    let db = TempDatabase::create().await.unwrap();
    // The owner may create tables in `public` (PostgreSQL 15 grants that to the database
    // owner only) and owns what it migrates, as Dozor's role does in production.
    admin
        .execute(format!("ALTER DATABASE {} OWNER TO {role}", db.name()).as_str())
        .await
        .unwrap();
    let urls = Urls {
        role: url_as(&role, db.url()),
        admin: db.url().to_owned(),
        role_name: role.clone(),
    };
    let outcome = tokio::spawn(body(urls)).await;
    db.drop_now().await.unwrap();
    admin
        .execute(format!("DROP ROLE {role}").as_str())
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn tenant(name: &str) -> TenantId {
    name.parse().unwrap()
}

/// What [`seed`] stored for one tenant.
struct Seeded {
    user_id: String,
    token_id: String,
    incident_id: String,
}

/// One row of `t` in every tenant table, through the store's API.
async fn seed(store: &Store, t: &TenantId) -> Seeded {
    let name = t.as_str();
    let user = store
        .create_user(t, &format!("user-{name}"), "$argon2id$x", Role::Operator)
        .await
        .unwrap();
    let token = store
        .create_api_token(NewApiToken {
            tenant: t,
            name: "shipper",
            scopes: ScopeSet::from_iter([Scope::Ingest]),
            created_by: "test",
            expires_ms: None,
            token_hash: &format!("hash-{name}"),
        })
        .await
        .unwrap();
    let labels = serde_json::json!({"alertname": "HighLatency", "severity": "critical"});
    let fired = store
        .alert_fired(
            t,
            &FiredAlert {
                fingerprint: "fp1",
                rule: "HighLatency",
                rule_group: "g",
                labels: &labels,
                annotations: &serde_json::json!({}),
                value: 1.5,
                active_ms: 1_000,
                fired_ms: 2_000,
            },
        )
        .await
        .unwrap();
    assert!(fired.is_some());
    store
        .add_anomaly_event(
            t,
            &AnomalyEvent {
                id: "e1".into(),
                timestamp_ms: 2_000,
                is_alert: true,
                alert_type: "metrics".into(),
                alert_level: "critical".into(),
                alert_title: "spike".into(),
                alert_message: "latency spike".into(),
                user_id: None,
                tags: labels.clone(),
                metrics: serde_json::json!({"value": 1.5}),
            },
        )
        .await
        .unwrap();
    store
        .create_alert_rule(
            t,
            RuleWrite {
                name: &format!("rule-{name}"),
                spec: "{}",
                enabled: true,
                by: "test",
                at_ms: 1_000,
            },
        )
        .await
        .unwrap();
    store
        .create_dashboard(
            t,
            dozor_state::dashboards::DashboardWrite {
                name: &format!("board-{name}"),
                description: "",
                widgets: "[]",
                layout: "{}",
                settings: "{}",
                shared: true,
                by: "test",
                at_ms: 1_000,
            },
        )
        .await
        .unwrap();
    let report = store
        .create_report(
            t,
            dozor_state::reports::ReportWrite {
                name: &format!("report-{name}"),
                definition: "{}",
                enabled: true,
                next_run_at_ms: Some(5_000),
                by: "test",
                at_ms: 1_000,
            },
        )
        .await
        .unwrap();
    store
        .add_report_run(
            t,
            dozor_state::reports::RunWrite {
                report_id: &report.id,
                report_name: &report.name,
                trigger: "schedule",
                generated_at_ms: 5_000,
                range: (1_000, 5_000),
                status: "pending",
                recipients: "[]",
                html: "<p>x</p>",
                csv: "section,series,time,value\n",
            },
        )
        .await
        .unwrap();
    store
        .add_fraud_events(
            t,
            &[dozor_state::fraud::FraudEvent {
                id: String::new(),
                user_id: format!("buyer-{name}"),
                subject: format!("user:buyer-{name}"),
                pattern: "scalper".into(),
                risk_level: "high".into(),
                reason: "16 tickets".into(),
                at_ms: 2_000,
                data: "{}".into(),
                investigated: false,
                investigated_by: String::new(),
                investigated_at_ms: None,
                outcome: String::new(),
                note: String::new(),
            }],
        )
        .await
        .unwrap();
    store
        .put_silence(
            t,
            &SilenceRow {
                id: dozor_state::new_uuid().unwrap(),
                matchers: "[]".into(),
                starts_at_ms: 1_000,
                ends_at_ms: 9_000,
                updated_at_ms: 1_000,
                created_by: "test".into(),
                comment: "maintenance".into(),
            },
        )
        .await
        .unwrap();
    let incident = store
        .create_incident(
            t,
            &Incident {
                id: String::new(),
                title: format!("outage of {name}"),
                description: String::new(),
                status: "open".into(),
                severity: "critical".into(),
                service_name: "shop".into(),
                group_key: Some("g1".into()),
                detected_at_ms: 2_000,
                acknowledged_at_ms: None,
                acknowledged_by: None,
                resolved_at_ms: None,
                resolved_by: None,
                postmortem: String::new(),
                context: "{}".into(),
                created_by: "alerting".into(),
                updated_at_ms: 2_000,
            },
        )
        .await
        .unwrap();
    let event = store
        .add_incident_event(
            t,
            &incident.id,
            &IncidentEvent {
                seq: 0,
                at_ms: 2_000,
                kind: "alert".into(),
                actor: "alerting".into(),
                text: "HighLatency fired".into(),
                data: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(event.seq, 1);
    Seeded {
        user_id: user.id,
        token_id: token.id,
        incident_id: incident.id,
    }
}

/// Notification log entries and deliveries of both tenants, in one batch (one transaction).
async fn seed_notifications(store: &Store, tenants: &[&TenantId]) {
    let mut batch = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let at = 100 + i64::try_from(i).unwrap();
        batch.push(NotificationRecord::Log(
            (*t).clone(),
            LogRow {
                group_key: "g1".into(),
                firing: r#"["fp1"]"#.into(),
                resolved: "[]".into(),
                sent_at_ms: at,
            },
        ));
        batch.push(NotificationRecord::Delivery(
            (*t).clone(),
            Delivery {
                id: String::new(),
                at_ms: at,
                receiver: "web".into(),
                integration: "webhook".into(),
                group_key: "g1".into(),
                alerts: 1,
                status: "sent".into(),
                attempts: 1,
                error: None,
                duration_ms: 3,
            },
        ));
    }
    store.record_notifications(&batch).await.unwrap();
}

/// `(all rows, rows of another tenant than `mine`)` of each tenant table, as `conn` sees them.
async fn visible(conn: &mut PgConnection, mine: &str) -> Vec<(&'static str, i64, i64)> {
    let mut out = Vec::new();
    for (table, column) in TENANT_TABLES {
        let (all, others): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE {column} <> $1) FROM {table}"
        ))
        .bind(mine)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        out.push((table, all, others));
    }
    out
}

/// Sets `dozor.tenant` for the rest of the session.
async fn name_tenant(conn: &mut PgConnection, value: &str) {
    sqlx::query("SELECT set_config('dozor.tenant', $1, false)")
        .bind(value)
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Whether `result` failed on a row-level security policy (SQLSTATE 42501).
fn refused_by_policy<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> bool {
    match result {
        Err(sqlx::Error::Database(e)) => {
            e.code().as_deref() == Some("42501") && e.message().contains("row-level security")
        }
        other => panic!("expected a policy violation, got {other:?}"),
    }
}

#[tokio::test]
async fn the_role_sees_and_writes_only_the_tenant_it_names() {
    with_role_database(|urls: Urls| async move {
        let (a, b) = (tenant("a"), tenant("b"));
        let store = Store::open(&urls.role).await.unwrap();
        seed(&store, &a).await;
        seed(&store, &b).await;
        seed_notifications(&store, &[&a, &b]).await;
        store.close().await;

        let mut conn = PgConnection::connect(&urls.role).await.unwrap();
        for (table, all, _) in visible(&mut conn, "a").await {
            assert_eq!(all, 0, "{table}: rows visible without dozor.tenant");
        }
        let refused = sqlx::query(
            "INSERT INTO alert_rules (tenant, id, name, spec, enabled, version, created_by, \
             created_at, updated_by, updated_at) VALUES ('a', 'x', 'x', '{}', 1, 1, 't', 0, 't', 0)",
        )
        .execute(&mut conn)
        .await;
        assert!(refused_by_policy(refused), "a write without dozor.tenant");

        name_tenant(&mut conn, "a").await;
        for (table, all, others) in visible(&mut conn, "a").await {
            assert!(all > 0, "{table}: tenant a's rows are hidden from it");
            assert_eq!(others, 0, "{table}: another tenant's rows are visible to a");
        }
        // WITH CHECK: no new row for b, and no row of a handed to b.
        let insert_b = sqlx::query(
            "INSERT INTO alert_rules (tenant, id, name, spec, enabled, version, created_by, \
             created_at, updated_by, updated_at) VALUES ('b', 'x', 'x', '{}', 1, 1, 't', 0, 't', 0)",
        )
        .execute(&mut conn)
        .await;
        assert!(refused_by_policy(insert_b), "a wrote a row of b");
        let new_tenant = sqlx::query("INSERT INTO tenants (id, created_ms) VALUES ('c', 0)")
            .execute(&mut conn)
            .await;
        assert!(refused_by_policy(new_tenant), "a created tenant c");
        let hand_over = sqlx::query("UPDATE incidents SET tenant = 'b'")
            .execute(&mut conn)
            .await;
        assert!(refused_by_policy(hand_over), "a moved its incident to b");
        // USING: b's rows cannot be changed or deleted, as if they did not exist.
        for sql in [
            "UPDATE users SET role = 'admin' WHERE tenant_id = 'b'",
            "DELETE FROM alert_rules WHERE tenant = 'b'",
            "DELETE FROM incident_events WHERE tenant = 'b'",
        ] {
            let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
            assert_eq!(done.rows_affected(), 0, "{sql}");
        }

        // `*` is the system scope: every tenant.
        name_tenant(&mut conn, "*").await;
        for (table, all, others) in visible(&mut conn, "a").await {
            assert!(others > 0 && all > others, "{table}: `*` hides a tenant");
        }
        // Set transaction-locally, as the store does, the tenant ends with the transaction.
        name_tenant(&mut conn, "").await;
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT set_config('dozor.tenant', 'a', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let (inside,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (after,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!((inside, after), (1, 0));
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_store_as_that_role_serves_each_tenant_its_rows_and_finds_across_tenants() {
    with_role_database(|urls: Urls| async move {
        let (a, b) = (tenant("a"), tenant("b"));
        let store = Store::open(&urls.role).await.unwrap();
        assert_eq!(store.row_security().await.unwrap(), RowSecurity::Enforced);
        let sa = seed(&store, &a).await;
        let sb = seed(&store, &b).await;
        seed_notifications(&store, &[&a, &b]).await;

        // Tenant-scoped reads: each tenant its own rows.
        for (t, other) in [(&a, &b), (&b, &a)] {
            let users = store.list_users(t).await.unwrap();
            assert_eq!(users.len(), 1);
            assert_eq!(users[0].tenant, *t);
            let tokens = store.list_api_tokens(t).await.unwrap();
            assert_eq!(tokens.len(), 1);
            assert_eq!(tokens[0].tenant, *t);
            let rules = store.alert_rules(t).await.unwrap();
            assert_eq!(rules.len(), 1);
            assert_eq!(rules[0].name, format!("rule-{t}"));
            let history = store
                .alert_history(
                    t,
                    &HistoryFilter {
                        limit: 100,
                        ..HistoryFilter::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(history.len(), 1);
            assert_eq!(store.alert_stats(t, 0, 10_000).await.unwrap().total, 1);
            let anomalies = store
                .anomaly_events(
                    t,
                    &AnomalyFilter {
                        limit: 100,
                        ..AnomalyFilter::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(anomalies.len(), 1);
            let incidents = store
                .incidents(
                    t,
                    &IncidentFilter {
                        limit: 100,
                        ..IncidentFilter::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(incidents.len(), 1);
            assert_eq!(incidents[0].title, format!("outage of {t}"));
            assert_eq!(
                store
                    .incident_events(t, &incidents[0].id)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert_eq!(store.deliveries(t, None, 10).await.unwrap().len(), 1);
            assert!(
                store
                    .open_incident_of_group(t, "g1")
                    .await
                    .unwrap()
                    .is_some()
            );
            // Another tenant's ids lead nowhere.
            let theirs = if other == &b { &sb } else { &sa };
            assert!(
                store
                    .incident(t, &theirs.incident_id)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(!store.revoke_api_token(t, &theirs.token_id).await.unwrap());
            assert!(!store.delete_incident(t, &theirs.incident_id).await.unwrap());
        }

        // The system scope: paths that come before a tenant is known, or span them all.
        let bob = store.user_by_name("user-b").await.unwrap().unwrap();
        assert_eq!(
            (bob.tenant.as_str(), bob.id.as_str()),
            ("b", sb.user_id.as_str())
        );
        assert_eq!(
            store.user_by_id(&sa.user_id).await.unwrap().unwrap().tenant,
            a
        );
        assert!(
            store
                .set_password(&sb.user_id, "$argon2id$new")
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .user_by_name("user-b")
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "$argon2id$new"
        );
        let token = store.api_token_by_hash("hash-a").await.unwrap().unwrap();
        assert_eq!((token.tenant, token.id), (a.clone(), sa.token_id.clone()));
        assert_eq!(store.count_users().await.unwrap(), 2);
        assert_eq!(store.list_tenants().await.unwrap(), [a.clone(), b.clone()]);
        assert_eq!(
            store.tenants_with_alert_rules().await.unwrap(),
            [a.clone(), b.clone()]
        );
        assert_eq!(store.all_silences().await.unwrap().len(), 2);
        assert_eq!(store.open_incident_groups().await.unwrap().len(), 2);
        let log = store.notification_log_since(101).await.unwrap();
        assert_eq!(log.len(), 1, "a's older entry is pruned: {log:?}");
        assert_eq!(log[0].0, b);
        assert_eq!(store.prune_deliveries(i64::MAX).await.unwrap(), 2);

        // A name taken in another tenant is still a conflict.
        let taken = store
            .create_user(&a, "user-b", "$argon2id$y", Role::Viewer)
            .await;
        assert!(
            matches!(taken, Err(dozor_state::StateError::Conflict(_))),
            "{taken:?}"
        );

        // Installation-wide tables, untouched by the policies, work as before.
        let far = dozor_model::time::now_ms() + 3_600_000;
        let rt = store
            .create_refresh_token(&sa.user_id, "rt-a", far, None)
            .await
            .unwrap();
        assert_eq!(store.user_sessions(&sa.user_id).await.unwrap().len(), 1);
        store.revoke_session(&rt.family_id, far).await.unwrap();
        assert!(store.session_revoked(&rt.family_id).await.unwrap());
        store
            .save_checkpoints("files", &[("k".into(), Some("v".into()))])
            .await
            .unwrap();
        assert_eq!(store.checkpoints("files").await.unwrap().len(), 1);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn every_tenant_table_gets_a_forced_policy_once_even_when_nodes_start_together() {
    with_role_database(|urls: Urls| async move {
        // Three nodes start at once on an empty database, then one restarts.
        let (x, y, z) = tokio::join!(
            Store::open(&urls.role),
            Store::open(&urls.role),
            Store::open(&urls.role)
        );
        for store in [x.unwrap(), y.unwrap(), z.unwrap()] {
            store.close().await;
        }
        Store::open(&urls.role).await.unwrap().close().await;

        let mut conn = PgConnection::connect(&urls.role).await.unwrap();
        // Found from the schema, not from the store's list: a new tenant table with no
        // policy fails here.
        let tenant_tables: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT c.table_name::text FROM information_schema.columns c \
             JOIN information_schema.tables t USING (table_schema, table_name) \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             AND (c.column_name IN ('tenant', 'tenant_id') OR c.table_name = 'tenants') \
             ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let expected: Vec<String> = TENANT_TABLES.iter().map(|(t, _)| (*t).to_owned()).collect();
        assert_eq!(
            tenant_tables.into_iter().map(|(t,)| t).collect::<Vec<_>>(),
            expected
        );
        let secured: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, \
             (SELECT COUNT(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relrowsecurity AND c.relforcerowsecurity ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let want: Vec<(String, i64)> = expected.iter().map(|t| (t.clone(), 1)).collect();
        assert_eq!(
            secured, want,
            "forced RLS and one policy on each tenant table only"
        );
        let (policies,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_policies WHERE schemaname = current_schema() \
             AND policyname = 'dozor_tenant' AND cmd = 'ALL' AND qual IS NOT NULL \
             AND with_check IS NOT NULL",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(policies, TENANT_TABLES.len() as i64);
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn row_security_says_whether_the_policies_bind_the_connected_role() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let sqlite = Store::open(&url).await.unwrap();
    assert_eq!(
        sqlite.row_security().await.unwrap(),
        RowSecurity::NotApplicable
    );
    sqlite.close().await;

    with_role_database(|urls: Urls| async move {
        let role = Store::open(&urls.role).await.unwrap();
        assert_eq!(role.row_security().await.unwrap(), RowSecurity::Enforced);
        // The superuser opens the database the role migrated: nothing left to do, and
        // nothing binds it.
        let admin = Store::open(&urls.admin).await.unwrap();
        assert_eq!(admin.row_security().await.unwrap(), RowSecurity::Bypassed);
        let mut conn = PgConnection::connect(&urls.admin).await.unwrap();
        conn.execute(format!("ALTER ROLE {} BYPASSRLS", urls.role_name).as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(role.row_security().await.unwrap(), RowSecurity::Bypassed);
        role.close().await;
        admin.close().await;
    })
    .await;
}
