//! The state store against both engines: embedded SQLite and the machine's PostgreSQL.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use dozor_model::{Role, Scope, ScopeSet, TenantId};
use dozor_state::test_support::TempDatabase;
use dozor_state::tokens::NewApiToken;
use dozor_state::{Backend, StateError, Store};

/// Runs `check` against a fresh SQLite store and a fresh PostgreSQL database.
macro_rules! on_both_engines {
    ($check:ident) => {
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("state.db").display());
                let store = dozor_state::Store::open(&url).await.unwrap();
                assert_eq!(store.backend(), dozor_state::Backend::Sqlite);
                super::$check(&store).await;
                store.close().await;
            }

            #[tokio::test]
            async fn postgres() {
                let db = dozor_state::test_support::TempDatabase::create()
                    .await
                    .unwrap();
                let store = dozor_state::Store::open(db.url()).await.unwrap();
                assert_eq!(store.backend(), dozor_state::Backend::Postgres);
                super::$check(&store).await;
                store.close().await;
                db.drop_now().await.unwrap();
            }
        }
    };
}

on_both_engines!(migrations_are_all_applied);
async fn migrations_are_all_applied(store: &Store) {
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(applied, Store::known_migrations());
    assert!(!applied.is_empty());
}

on_both_engines!(users_are_unique_and_tenant_scoped);
async fn users_are_unique_and_tenant_scoped(store: &Store) {
    let shop: TenantId = "shop".parse().unwrap();
    let mes: TenantId = "mes".parse().unwrap();
    let alice = store
        .create_user(&shop, "alice", "$argon2id$x", Role::Operator)
        .await
        .unwrap();
    store
        .create_user(&mes, "bob", "$argon2id$y", Role::Viewer)
        .await
        .unwrap();

    let again = store.create_user(&mes, "alice", "h", Role::Viewer).await;
    assert!(matches!(again, Err(StateError::Conflict(_))), "{again:?}");

    let found = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.role, &found.tenant),
        (alice.id.as_str(), Role::Operator, &shop)
    );
    let names: Vec<_> = store
        .list_users(&shop)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice"]);
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.list_tenants().await.unwrap(), [mes, shop]);
    assert!(store.user_by_name("carol").await.unwrap().is_none());
}

on_both_engines!(api_tokens_revoke_only_within_their_tenant);
async fn api_tokens_revoke_only_within_their_tenant(store: &Store) {
    let shop: TenantId = "shop".parse().unwrap();
    let other: TenantId = "other".parse().unwrap();
    let scopes = ScopeSet::from_iter([Scope::Ingest, Scope::Read]);
    let token = store
        .create_api_token(NewApiToken {
            tenant: &shop,
            name: "filebeat",
            scopes,
            created_by: "alice",
            expires_ms: Some(i64::MAX),
            token_hash: "abc123",
        })
        .await
        .unwrap();
    let found = store.api_token_by_hash("abc123").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.scopes),
        (token.id.as_str(), scopes)
    );
    assert!(found.is_live(0));

    assert!(
        !store.revoke_api_token(&other, &token.id).await.unwrap(),
        "cross-tenant revoke must fail"
    );
    assert!(store.revoke_api_token(&shop, &token.id).await.unwrap());
    assert!(
        !store.revoke_api_token(&shop, &token.id).await.unwrap(),
        "second revoke is a no-op"
    );
    let revoked = store.api_token_by_hash("abc123").await.unwrap().unwrap();
    assert!(!revoked.is_live(0));
    assert_eq!(store.list_api_tokens(&shop).await.unwrap().len(), 1);
    assert!(store.list_api_tokens(&other).await.unwrap().is_empty());
}

on_both_engines!(refresh_tokens_revoke_once);
async fn refresh_tokens_revoke_once(store: &Store) {
    let t = TenantId::default_tenant();
    let user = store.create_user(&t, "u", "h", Role::Viewer).await.unwrap();
    let rt = store
        .create_refresh_token(&user.id, "hash1", 1_000, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .refresh_token_by_hash("hash1")
            .await
            .unwrap()
            .unwrap()
            .id,
        rt.id
    );
    assert!(store.revoke_refresh_token(&rt.id).await.unwrap());
    assert!(!store.revoke_refresh_token(&rt.id).await.unwrap());
    assert!(
        store
            .refresh_token_by_hash("hash1")
            .await
            .unwrap()
            .unwrap()
            .revoked_ms
            .is_some()
    );
}

on_both_engines!(a_session_is_revoked_as_a_family);
async fn a_session_is_revoked_as_a_family(store: &Store) {
    let t = TenantId::default_tenant();
    let user = store.create_user(&t, "s", "h", Role::Viewer).await.unwrap();
    let far = dozor_model::time::now_ms() + 3_600_000;
    let first = store
        .create_refresh_token(&user.id, "f1", far, None)
        .await
        .unwrap();
    assert_eq!(
        first.family_id, first.id,
        "a login opens a session named by its token"
    );
    let second = store
        .create_refresh_token(&user.id, "f2", far, Some(&first.family_id))
        .await
        .unwrap();
    let other = store
        .create_refresh_token(&user.id, "o1", far, None)
        .await
        .unwrap();
    assert_eq!(store.user_sessions(&user.id).await.unwrap().len(), 2);
    assert!(!store.session_revoked(&first.family_id).await.unwrap());
    store.revoke_session(&first.family_id, far).await.unwrap();
    // Again: harmless.
    store.revoke_session(&first.family_id, far).await.unwrap();
    assert!(store.session_revoked(&first.family_id).await.unwrap());
    assert!(!store.session_revoked(&other.family_id).await.unwrap());
    for hash in ["f1", "f2"] {
        let t = store.refresh_token_by_hash(hash).await.unwrap().unwrap();
        assert!(t.revoked_ms.is_some(), "{hash} survived");
        assert_eq!(t.family_id, first.family_id);
    }
    assert_eq!(second.family_id, first.family_id);
    let o = store.refresh_token_by_hash("o1").await.unwrap().unwrap();
    assert!(o.revoked_ms.is_none(), "another session was revoked");
    assert_eq!(
        store.user_sessions(&user.id).await.unwrap(),
        [other.family_id]
    );
}

on_both_engines!(failed_logins_lock_a_name_for_a_while);
async fn failed_logins_lock_a_name_for_a_while(store: &Store) {
    use dozor_state::lockout::LockoutPolicy;
    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: 10_000,
        lock_ms: 5_000,
    };
    let t0 = 1_000_000;
    assert_eq!(
        store.record_login_failure("eve", t0, policy).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .record_login_failure("eve", t0 + 1, policy)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.login_locked_until("eve", t0 + 2).await.unwrap(), None);
    assert_eq!(
        store
            .record_login_failure("eve", t0 + 2, policy)
            .await
            .unwrap(),
        Some(t0 + 2 + 5_000)
    );
    assert_eq!(
        store.login_locked_until("eve", t0 + 3).await.unwrap(),
        Some(t0 + 5_002)
    );
    assert_eq!(store.login_locked_until("bob", t0 + 3).await.unwrap(), None);
    assert_eq!(
        store.login_locked_until("eve", t0 + 5_003).await.unwrap(),
        None,
        "the lock ends"
    );
    // Failures spread wider than the window never lock.
    for k in 0..5 {
        let at = t0 + 100_000 + k * 20_000;
        assert_eq!(
            store.record_login_failure("ann", at, policy).await.unwrap(),
            None
        );
    }
    store.record_login_failure("bob", t0, policy).await.unwrap();
    store
        .record_login_failure("bob", t0 + 1, policy)
        .await
        .unwrap();
    store.clear_login_failures("bob").await.unwrap();
    assert_eq!(
        store
            .record_login_failure("bob", t0 + 2, policy)
            .await
            .unwrap(),
        None,
        "a successful login clears the count"
    );
}

on_both_engines!(settings_keep_the_first_value);
async fn settings_keep_the_first_value(store: &Store) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert_eq!(
        store
            .setting_or_init("k", || Ok("one".into()))
            .await
            .unwrap(),
        "one"
    );
    assert_eq!(
        store
            .setting_or_init("k", || Ok("two".into()))
            .await
            .unwrap(),
        "one"
    );
}

on_both_engines!(checkpoints_are_saved_and_forgotten_together);
async fn checkpoints_are_saved_and_forgotten_together(store: &Store) {
    assert!(store.checkpoints("files").await.unwrap().is_empty());
    let save = |entries: &[(&str, Option<&str>)]| {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect::<Vec<_>>()
    };
    store
        .save_checkpoints("files", &save(&[("1:2", Some("a")), ("1:3", Some("b"))]))
        .await
        .unwrap();
    store
        .save_checkpoints("other", &save(&[("1:2", Some("x"))]))
        .await
        .unwrap();
    store
        .save_checkpoints("files", &save(&[("1:2", Some("c")), ("1:3", None)]))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoints("files").await.unwrap(),
        [("1:2".to_owned(), "c".to_owned())]
    );
    assert_eq!(
        store.checkpoints("other").await.unwrap(),
        [("1:2".to_owned(), "x".to_owned())]
    );
}

#[tokio::test]
async fn reopening_sqlite_keeps_data_and_does_not_remigrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = Store::open(&url).await.unwrap();
    store
        .create_user(&TenantId::default_tenant(), "kept", "h", Role::Admin)
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    assert!(store.user_by_name("kept").await.unwrap().is_some());
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        Store::known_migrations()
    );
}

#[tokio::test]
async fn ping_fails_when_postgres_database_is_gone() {
    let db = TempDatabase::create().await.unwrap();
    let store = Store::open(db.url()).await.unwrap();
    store.ping().await.unwrap();
    db.drop_now().await.unwrap();
    assert!(store.ping().await.is_err());
    assert_eq!(store.backend(), Backend::Postgres);
}

#[test]
fn unknown_url_schemes_are_refused_without_echoing_the_url() {
    let err = Store::open_lazy("mysql://root:hunter2@db/x").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

on_both_engines!(alert_history_records_episodes_acks_resolutions_and_stats);
async fn alert_history_records_episodes_acks_resolutions_and_stats(store: &Store) {
    use dozor_state::alerts::{FiredAlert, HistoryFilter};
    let shop: TenantId = "shop".parse().unwrap();
    let other: TenantId = "other".parse().unwrap();
    let fire =
        |fp: &'static str, rule: &'static str, severity: &'static str, t: i64, opens: bool| {
            let labels = serde_json::json!({"alertname": rule, "severity": severity, "job": "api"});
            let store = store.clone();
            let tenant = shop.clone();
            async move {
                let opened = store
                    .alert_fired(
                        &tenant,
                        &FiredAlert {
                            fingerprint: fp,
                            rule,
                            rule_group: "g",
                            labels: &labels,
                            annotations: &serde_json::json!({"summary": "s"}),
                            value: 3.5,
                            active_ms: t - 60_000,
                            fired_ms: t,
                        },
                    )
                    .await;
                let opened = opened.unwrap();
                assert_eq!(opened.is_some(), opens, "{fp} at {t}");
                if let Some(id) = opened {
                    assert_eq!(id, format!("{fp}-{}", t - 60_000));
                }
            }
        };
    fire("aaa", "HighCpu", "critical", 1_000_000, true).await;
    // The same episode again (an evaluation retried) is one row; so is the same alert
    // reported firing with a new start while its episode is open (a restarted server).
    fire("aaa", "HighCpu", "critical", 1_000_000, false).await;
    fire("aaa", "HighCpu", "critical", 1_010_000, false).await;
    fire("bbb", "DiskFull", "warning", 2_000_000, true).await;

    let open = store.open_alerts(&shop).await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].rule, "DiskFull", "newest first");
    assert_eq!(open[1].id, "aaa-940000");
    assert_eq!(open[1].service, "api");
    assert_eq!(open[1].labels["severity"], "critical");
    assert!(
        store.open_alerts(&other).await.unwrap().is_empty(),
        "tenant-scoped"
    );
    assert!(
        store
            .alert_acknowledged(&other, "aaa", 1, "x", None)
            .await
            .unwrap()
            .is_none()
    );

    let acked = store
        .alert_acknowledged(&shop, "aaa", 1_030_000, "olga", Some("looking"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (acked.acked_ms, acked.acked_by.as_deref()),
        (Some(1_030_000), Some("olga"))
    );
    let resolved = store
        .alert_resolved(&shop, "aaa", 1_120_000, "condition", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.resolved_ms, Some(1_120_000));
    assert!(
        store
            .alert_resolved(&shop, "aaa", 1_130_000, "olga", None)
            .await
            .unwrap()
            .is_none()
    );
    // Firing again later is a new episode.
    fire("aaa", "HighCpu", "critical", 3_000_000, true).await;
    assert_eq!(
        store
            .latest_alert(&shop, "aaa")
            .await
            .unwrap()
            .unwrap()
            .fired_ms,
        3_000_000
    );
    store
        .alert_resolved(&shop, "aaa", 3_300_000, "olga", Some("fixed the fan"))
        .await
        .unwrap()
        .unwrap();

    let all = store
        .alert_history(
            &shop,
            &HistoryFilter {
                limit: 10,
                ..HistoryFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.fired_ms).collect::<Vec<_>>(),
        [3_000_000, 2_000_000, 1_000_000]
    );
    let cpu = store
        .alert_history(
            &shop,
            &HistoryFilter {
                rule: Some("HighCpu".into()),
                resolved: Some(true),
                from_ms: Some(2_500_000),
                limit: 10,
                ..HistoryFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].resolve_comment.as_deref(), Some("fixed the fan"));
    let page = store
        .alert_history(
            &shop,
            &HistoryFilter {
                limit: 1,
                offset: 1,
                ..HistoryFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page[0].rule, "DiskFull");

    let stats = store.alert_stats(&shop, 0, 10_000_000).await.unwrap();
    assert_eq!((stats.total, stats.open), (3, 1));
    assert_eq!(
        stats.by_rule,
        [("HighCpu".to_owned(), 2), ("DiskFull".to_owned(), 1)]
    );
    assert_eq!(stats.by_severity[0], ("critical".to_owned(), 2));
    assert_eq!(stats.by_service, [("api".to_owned(), 3)]);
    assert_eq!(stats.mtta_seconds, Some(30.0));
    // (120 s + 300 s) / 2.
    assert_eq!(stats.mttr_seconds, Some(210.0));
    let empty = store.alert_stats(&shop, 0, 10).await.unwrap();
    assert_eq!((empty.total, empty.mtta_seconds), (0, None));
}

on_both_engines!(anomaly_events_are_recorded_once_and_filtered);
async fn anomaly_events_are_recorded_once_and_filtered(store: &Store) {
    use dozor_state::anomalies::{AnomalyEvent, AnomalyFilter};
    let shop: TenantId = "shop".parse().unwrap();
    let other: TenantId = "other".parse().unwrap();
    let event = |id: &str, t: i64, kind: &str, level: &str, user: Option<&str>| AnomalyEvent {
        id: id.to_owned(),
        timestamp_ms: t,
        is_alert: true,
        alert_type: kind.to_owned(),
        alert_level: level.to_owned(),
        alert_title: format!("{kind} at {t}"),
        alert_message: "m".to_owned(),
        user_id: user.map(str::to_owned),
        tags: serde_json::json!({"alertname": "A", "user_id": user}),
        metrics: serde_json::json!({"value": 25000.0}),
    };
    let rows = [
        event("a-1", 1_000, "logs", "critical", None),
        event("b-1", 2_000, "transactions", "warning", Some("u7")),
        event("c-1", 3_000, "transactions", "warning", Some("u3")),
        event("d-1", 4_000, "metrics", "warning", None),
    ];
    for e in &rows {
        store.add_anomaly_event(&shop, e).await.unwrap();
    }
    // The same event again changes nothing.
    store.add_anomaly_event(&shop, &rows[1]).await.unwrap();
    let all = |f: AnomalyFilter| {
        let store = store.clone();
        let shop = shop.clone();
        async move {
            store
                .anomaly_events(&shop, &AnomalyFilter { limit: 100, ..f })
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        all(AnomalyFilter::default()).await,
        ["d-1", "c-1", "b-1", "a-1"]
    );
    let got = store
        .anomaly_events(
            &shop,
            &AnomalyFilter {
                limit: 1,
                offset: 2,
                ..AnomalyFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0], rows[1], "every column round-trips");
    assert_eq!(
        all(AnomalyFilter {
            alert_type: Some("transactions".into()),
            ..AnomalyFilter::default()
        })
        .await,
        ["c-1", "b-1"]
    );
    assert_eq!(
        all(AnomalyFilter {
            user_id: Some("u7".into()),
            ..AnomalyFilter::default()
        })
        .await,
        ["b-1"]
    );
    assert_eq!(
        all(AnomalyFilter {
            level: Some("critical".into()),
            ..AnomalyFilter::default()
        })
        .await,
        ["a-1"]
    );
    assert_eq!(
        all(AnomalyFilter {
            from_ms: Some(2_000),
            to_ms: Some(3_000),
            ..AnomalyFilter::default()
        })
        .await,
        ["c-1", "b-1"]
    );
    assert!(
        store
            .anomaly_events(
                &other,
                &AnomalyFilter {
                    limit: 100,
                    ..AnomalyFilter::default()
                }
            )
            .await
            .unwrap()
            .is_empty(),
        "tenant-scoped"
    );
}

on_both_engines!(alert_rules_are_created_updated_listed_and_deleted_per_tenant);
async fn alert_rules_are_created_updated_listed_and_deleted_per_tenant(store: &Store) {
    use dozor_state::alert_rules::RuleWrite;
    let shop: TenantId = "shop".parse().unwrap();
    let other: TenantId = "other".parse().unwrap();
    let w = |name: &'static str, spec: &'static str, by: &'static str, at_ms| RuleWrite {
        name,
        spec,
        enabled: true,
        by,
        at_ms,
    };
    let r = store
        .create_alert_rule(&shop, w("b_rule", r#"{"n":1}"#, "olga", 1_000))
        .await
        .unwrap();
    assert_eq!(
        (r.version, r.created_by.as_str(), r.created_at_ms),
        (1, "olga", 1_000)
    );
    assert_eq!((r.updated_by.as_str(), r.updated_at_ms), ("olga", 1_000));
    assert_eq!(r.id.len(), 32);
    assert_eq!(
        store.alert_rule(&shop, &r.id).await.unwrap().as_ref(),
        Some(&r)
    );
    let r1 = r.id;
    store
        .create_alert_rule(&shop, w("a_rule", "{}", "olga", 1_500))
        .await
        .unwrap();
    let theirs = store
        .create_alert_rule(&other, w("theirs", "{}", "ivan", 1_500))
        .await
        .unwrap()
        .id;
    assert_ne!(theirs, r1);

    let names = |rules: Vec<dozor_state::alert_rules::StoredRule>| {
        rules.into_iter().map(|r| r.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.alert_rules(&shop).await.unwrap()),
        ["a_rule", "b_rule"]
    );
    assert_eq!(names(store.alert_rules(&other).await.unwrap()), ["theirs"]);

    let mut change = w("b_rule", r#"{"n":2}"#, "petr", 3_000);
    change.enabled = false;
    let r = store
        .update_alert_rule(&shop, &r1, change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.version, r.spec.as_str(), r.enabled),
        (2, r#"{"n":2}"#, false)
    );
    assert_eq!(
        (
            r.created_by.as_str(),
            r.updated_by.as_str(),
            r.updated_at_ms
        ),
        ("olga", "petr", 3_000)
    );
    assert!(
        store
            .update_alert_rule(&shop, "nope", change)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .update_alert_rule(&other, &r1, change)
            .await
            .unwrap()
            .is_none(),
        "not across tenants"
    );
    assert_eq!(
        store
            .alert_rule(&other, &theirs)
            .await
            .unwrap()
            .unwrap()
            .name,
        "theirs"
    );
    assert!(store.alert_rule(&other, &r1).await.unwrap().is_none());

    let tenants = store.tenants_with_alert_rules().await.unwrap();
    assert_eq!(tenants, [other.clone(), shop.clone()]);
    assert!(
        !store.delete_alert_rule(&other, &r1).await.unwrap(),
        "not across tenants"
    );
    assert!(store.delete_alert_rule(&shop, &r1).await.unwrap());
    assert!(!store.delete_alert_rule(&shop, &r1).await.unwrap());
    assert!(store.alert_rule(&shop, &r1).await.unwrap().is_none());
    assert_eq!(names(store.alert_rules(&other).await.unwrap()), ["theirs"]);
}

on_both_engines!(silences_log_and_deliveries_round_trip);
async fn silences_log_and_deliveries_round_trip(store: &Store) {
    use dozor_state::notifications::{Delivery, LogRow, NotificationRecord, SilenceRow};
    let shop: TenantId = "shop".parse().unwrap();
    let crm: TenantId = "crm".parse().unwrap();
    let id = dozor_state::new_uuid().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "version 4");
    let mut s = SilenceRow {
        id: id.clone(),
        matchers: r#"[{"name":"a","value":"b","isRegex":false,"isEqual":true}]"#.into(),
        starts_at_ms: 1_000,
        ends_at_ms: 2_000,
        updated_at_ms: 1_000,
        created_by: "ops".into(),
        comment: "deploy".into(),
    };
    store.put_silence(&shop, &s).await.unwrap();
    s.ends_at_ms = 1_500;
    store.put_silence(&shop, &s).await.unwrap();
    let all = store.all_silences().await.unwrap();
    assert_eq!(all, [(shop.clone(), s.clone())], "replaced, not doubled");
    store
        .delete_silences(&crm, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        store.all_silences().await.unwrap().len(),
        1,
        "not across tenants"
    );
    store.delete_silences(&shop, &[id]).await.unwrap();
    assert!(store.all_silences().await.unwrap().is_empty());

    let entry = |key: &str, at: i64| LogRow {
        group_key: key.into(),
        firing: r#"["f1"]"#.into(),
        resolved: "[]".into(),
        sent_at_ms: at,
    };
    // One batch, one transaction: a later entry of a group replaces the earlier one.
    store
        .record_notifications(&[
            NotificationRecord::Log(shop.clone(), entry("g1", 100)),
            NotificationRecord::Log(shop.clone(), entry("g1", 300)),
            NotificationRecord::Log(crm.clone(), entry("g2", 50)),
        ])
        .await
        .unwrap();
    let log = store.notification_log_since(100).await.unwrap();
    assert_eq!(
        log,
        [(shop.clone(), entry("g1", 300))],
        "the old entry is pruned"
    );

    let mut batch = Vec::new();
    for (i, status) in ["sent", "failed"].into_iter().enumerate() {
        let d = Delivery {
            id: String::new(),
            at_ms: 10 + i64::try_from(i).unwrap(),
            receiver: "web".into(),
            integration: "webhook".into(),
            group_key: "g1".into(),
            alerts: 2,
            status: status.into(),
            attempts: 1 + i64::try_from(i).unwrap(),
            error: (status == "failed").then(|| "HTTP 500".to_owned()),
            duration_ms: 5,
        };
        batch.push(NotificationRecord::Delivery(shop.clone(), d));
    }
    store.record_notifications(&batch).await.unwrap();
    let got = store.deliveries(&shop, None, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].status, "failed", "newest first");
    assert_eq!(got[0].error.as_deref(), Some("HTTP 500"));
    assert!(
        store
            .deliveries(&shop, Some("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.deliveries(&crm, None, 10).await.unwrap().is_empty());
    assert_eq!(store.prune_deliveries(11).await.unwrap(), 1);
}

on_both_engines!(dashboards_are_owned_shared_and_tenant_scoped);
async fn dashboards_are_owned_shared_and_tenant_scoped(store: &Store) {
    use dozor_state::dashboards::DashboardWrite;
    let shop: TenantId = "shop".parse().unwrap();
    let crm: TenantId = "crm".parse().unwrap();
    let w = |name: &'static str, by: &'static str, shared: bool| DashboardWrite {
        name,
        description: "d",
        widgets: r#"[{"type":"graph","query":"up"}]"#,
        layout: "{}",
        settings: "{}",
        shared,
        by,
        at_ms: 1_000,
    };
    let mine = store
        .create_dashboard(&shop, w("Mine", "ann", false))
        .await
        .unwrap();
    assert_eq!(
        (mine.version, mine.owner.as_str(), mine.shared),
        (1, "ann", false)
    );
    store
        .create_dashboard(&shop, w("Team", "bob", true))
        .await
        .unwrap();
    store
        .create_dashboard(&shop, w("Bob's", "bob", false))
        .await
        .unwrap();
    let names = |v: Vec<dozor_state::dashboards::StoredDashboard>| {
        v.into_iter().map(|d| d.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.dashboards(&shop, Some("ann")).await.unwrap()),
        ["Mine", "Team"]
    );
    assert_eq!(names(store.dashboards(&shop, None).await.unwrap()).len(), 3);
    assert!(store.dashboards(&crm, None).await.unwrap().is_empty());
    assert!(store.dashboard(&crm, &mine.id).await.unwrap().is_none());
    let changed = store
        .update_dashboard(&shop, &mine.id, w("Mine v2", "admin", true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            changed.version,
            changed.owner.as_str(),
            changed.updated_by.as_str(),
            changed.shared
        ),
        (2, "ann", "admin", true),
        "an update keeps the owner"
    );
    assert!(
        store
            .update_dashboard(&crm, &mine.id, w("x", "eve", true))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.delete_dashboard(&crm, &mine.id).await.unwrap());
    assert!(store.delete_dashboard(&shop, &mine.id).await.unwrap());
    assert!(store.dashboard(&shop, &mine.id).await.unwrap().is_none());
}

on_both_engines!(settled_rows_expire_and_open_ones_stay);
async fn settled_rows_expire_and_open_ones_stay(store: &Store) {
    use dozor_state::alerts::FiredAlert;
    use dozor_state::anomalies::AnomalyEvent;
    use dozor_state::incidents::{Incident, IncidentEvent};
    use dozor_state::retention::Expiring;
    let (shop, other): (TenantId, TenantId) = ("shop".parse().unwrap(), "other".parse().unwrap());
    const DAY: i64 = 86_400_000;
    let now = 400 * DAY;
    // Alert episodes: resolved long ago in both tenants (expire), open since long ago and
    // resolved yesterday (stay).
    let labels = serde_json::json!({"alertname": "A"});
    for (t, fp, fired, resolved) in [
        (&shop, "old", DAY, Some(2 * DAY)),
        (&other, "old", DAY, Some(2 * DAY)),
        (&shop, "open", DAY, None),
        (&shop, "recent", now - 2 * DAY, Some(now - DAY)),
    ] {
        store
            .alert_fired(
                t,
                &FiredAlert {
                    fingerprint: fp,
                    rule: "A",
                    rule_group: "g",
                    labels: &labels,
                    annotations: &serde_json::json!({}),
                    value: 1.0,
                    active_ms: fired,
                    fired_ms: fired,
                },
            )
            .await
            .unwrap();
        if let Some(at) = resolved {
            store.alert_resolved(t, fp, at, "rule", None).await.unwrap();
        }
    }
    for (id, at) in [("old", DAY), ("recent", now - DAY)] {
        let e = AnomalyEvent {
            id: id.into(),
            timestamp_ms: at,
            is_alert: true,
            alert_type: "metrics".into(),
            alert_level: "warning".into(),
            alert_title: "t".into(),
            alert_message: "m".into(),
            user_id: None,
            tags: labels.clone(),
            metrics: serde_json::json!({}),
        };
        store.add_anomaly_event(&shop, &e).await.unwrap();
    }
    // Incidents: one resolved long ago, one open since long ago; each with a timeline.
    let mut incidents = Vec::new();
    for (status, resolved) in [("resolved", Some(2 * DAY)), ("open", None)] {
        let i = store
            .create_incident(
                &shop,
                &Incident {
                    id: String::new(),
                    title: status.into(),
                    description: String::new(),
                    status: status.into(),
                    severity: "critical".into(),
                    service_name: "shop".into(),
                    group_key: None,
                    detected_at_ms: DAY,
                    acknowledged_at_ms: None,
                    acknowledged_by: None,
                    resolved_at_ms: resolved,
                    resolved_by: None,
                    postmortem: String::new(),
                    context: "{}".into(),
                    created_by: "test".into(),
                    updated_at_ms: DAY,
                },
            )
            .await
            .unwrap();
        let event = IncidentEvent {
            seq: 0,
            at_ms: DAY,
            kind: "note".into(),
            actor: "test".into(),
            text: "x".into(),
            data: "{}".into(),
        };
        store
            .add_incident_event(&shop, &i.id, &event)
            .await
            .unwrap();
        incidents.push(i.id);
    }
    let report = store
        .create_report(
            &shop,
            dozor_state::reports::ReportWrite {
                name: "weekly",
                definition: "{}",
                enabled: true,
                next_run_at_ms: None,
                by: "test",
                at_ms: DAY,
            },
        )
        .await
        .unwrap();
    for at in [DAY, now - DAY] {
        let run = dozor_state::reports::RunWrite {
            report_id: &report.id,
            report_name: &report.name,
            trigger: "schedule",
            generated_at_ms: at,
            range: (at - DAY, at),
            status: "delivered",
            recipients: "[]",
            html: "<p>x</p>",
            csv: "",
        };
        store.add_report_run(&shop, run).await.unwrap();
    }
    // Fraud findings from long ago: one investigated (expires), one still open (stays).
    let finding = |user: &str| dozor_state::fraud::FraudEvent {
        id: String::new(),
        user_id: user.into(),
        subject: format!("user:{user}"),
        pattern: "scalper".into(),
        risk_level: "high".into(),
        reason: "16 tickets".into(),
        at_ms: DAY,
        data: "{}".into(),
        investigated: false,
        investigated_by: String::new(),
        investigated_at_ms: None,
        outcome: String::new(),
        note: String::new(),
    };
    let found = store
        .add_fraud_events(&shop, &[finding("a"), finding("b")])
        .await
        .unwrap();
    store
        .investigate_fraud_event(&shop, &found[0].id, "ann", 2 * DAY, "confirmed", "")
        .await
        .unwrap();

    let cut = now - 90 * DAY;
    let mut deleted = Vec::new();
    for table in Expiring::ALL {
        deleted.push((
            table.table(),
            store.prune_expired(table, cut).await.unwrap(),
        ));
    }
    assert_eq!(
        deleted,
        [
            ("alert_history", 2),
            ("anomaly_events", 1),
            ("incidents", 1),
            ("report_history", 1),
            ("fraud_events", 1),
        ]
    );
    // What stays: the open and recent rows, the open incident's timeline.
    assert!(
        store
            .incident(&shop, &incidents[0])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .incident_events(&shop, &incidents[0])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .incident(&shop, &incidents[1])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .incident_events(&shop, &incidents[1])
            .await
            .unwrap()
            .len(),
        1
    );
    let runs = store.report_runs(&shop, &report.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let open = store.open_alerts(&shop).await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(
        store
            .fraud_event(&shop, &found[1].id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .fraud_event(&shop, &found[0].id)
            .await
            .unwrap()
            .is_none()
    );
    // A second run finds nothing more.
    for table in Expiring::ALL {
        assert_eq!(
            store.prune_expired(table, cut).await.unwrap(),
            0,
            "{table:?}"
        );
    }
}
