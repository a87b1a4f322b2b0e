//! Prometheus' `/api/v1/rules` and `/api/v1/alerts` over groups evaluated against the
//! app's own metric store: response shapes, filters, tenant separation, scope checks and
//! audit records.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::{RuleGroup, RuleSet};
use serde_json::Value;

use common::{ADMIN_PASSWORD, TestApp};

const RULES: &str = r#"
groups:
  - name: queues
    interval: 10s
    rules:
      - record: job:queue_depth:max
        expr: max by (job) (queue_depth)
      - alert: QueueBacklog
        expr: job:queue_depth:max > 100
        for: 30s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} has {{ $value }} queued"
      - alert: QueueEmpty
        expr: job:queue_depth:max == 0
"#;

const T0: i64 = 1_764_500_000_000;

fn groups(tenant: &str) -> Vec<(dozor_model::TenantId, RuleGroup)> {
    groups_of(RULES, tenant)
}

fn groups_of(rules: &str, tenant: &str) -> Vec<(dozor_model::TenantId, RuleGroup)> {
    dozor_rules::file::parse(rules, &format!("{tenant}.yml"))
        .unwrap()
        .into_iter()
        .map(|g| (tenant.parse().unwrap(), g))
        .collect()
}

async fn app() -> TestApp {
    let mut all = groups("default");
    all.extend(groups("acme"));
    let set = RuleSet::new(all, 60_000, Default::default(), String::new());
    let app = common::app_with_settings(|s| s.rules = set).await;
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    app
}

/// Evaluates every group of `tenant` at `t` against the app's store and records what
/// fired and resolved in the alert history, as the server does.
async fn eval(app: &TestApp, tenant: &str, t: i64) {
    let engine = Engine::new(EngineOptions::default());
    let tenant: dozor_model::TenantId = tenant.parse().unwrap();
    let db = app.state.tsdb().tenant(&tenant).unwrap();
    for tg in app.state.rules().of_tenant(&tenant) {
        let (name, transitions) = {
            let mut g = tg.lock();
            g.eval(t, &engine, db.as_ref(), &mut |batch| {
                db.append(&batch).map(|_| ()).map_err(|e| e.to_string())
            });
            (g.name.clone(), g.take_transitions())
        };
        dozor_api::history::record(app.state.store(), &tenant, &name, &transitions)
            .await
            .unwrap();
    }
}

async fn get(app: &TestApp, path: &str, auth: &str) -> (StatusCode, Value) {
    app.call("GET", path, Some(auth), None).await
}

#[tokio::test]
async fn rules_and_alerts_follow_evaluation_in_prometheus_shape() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    app.append(
        "default",
        &[("__name__", "queue_depth"), ("job", "orders")],
        &[(T0, 150.0), (T0 + 40_000, 150.0)],
    );

    // Before any evaluation: rules with unknown health, no alerts.
    let (s, body) = get(&app, "/api/v1/rules", &admin).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let g = &body["data"]["groups"][0];
    assert_eq!(g["name"], "queues");
    assert_eq!(g["file"], "default.yml");
    assert_eq!(g["interval"], 10.0);
    assert_eq!(g["lastEvaluation"], "0001-01-01T00:00:00Z");
    assert_eq!(g["rules"][0]["health"], "unknown");
    assert_eq!(
        get(&app, "/api/v1/alerts", &admin).await.1["data"]["alerts"],
        Value::Array(vec![])
    );

    eval(&app, "default", T0).await;
    let (_, body) = get(&app, "/api/v1/alerts", &admin).await;
    let alerts = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    let a = &alerts[0];
    assert_eq!(a["state"], "pending");
    assert_eq!(a["labels"]["alertname"], "QueueBacklog");
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["labels"]["job"], "orders");
    assert_eq!(a["annotations"]["summary"], "orders has 150 queued");
    assert_eq!(a["value"], "1.5e+02");
    assert_eq!(a["activeAt"], "2025-11-30T10:53:20Z");
    assert_eq!(a["id"].as_str().unwrap().len(), 16);

    eval(&app, "default", T0 + 30_000).await;
    let (_, body) = get(&app, "/api/v1/rules", &admin).await;
    let rules = &body["data"]["groups"][0]["rules"];
    assert_eq!(rules[0]["type"], "recording");
    assert_eq!(rules[0]["name"], "job:queue_depth:max");
    assert_eq!(rules[0]["query"], "max by (job) (queue_depth)");
    assert_eq!(rules[0]["health"], "ok");
    assert_eq!(rules[0]["lastEvaluation"], "2025-11-30T10:53:50Z");
    assert!(rules[0].get("alerts").is_none());
    let backlog = &rules[1];
    assert_eq!(backlog["type"], "alerting");
    assert_eq!(backlog["state"], "firing");
    assert_eq!(backlog["duration"], 30.0);
    assert_eq!(backlog["keepFiringFor"], 0.0);
    assert_eq!(backlog["labels"]["severity"], "page");
    assert_eq!(
        backlog["annotations"]["summary"],
        "{{ $labels.job }} has {{ $value }} queued"
    );
    assert_eq!(backlog["alerts"][0]["state"], "firing");
    assert_eq!(rules[2]["state"], "inactive");
    assert_eq!(rules[2]["alerts"], Value::Array(vec![]));

    // The recording rule wrote its series, the alerting rule ALERTS.
    let (_, q) = get(
        &app,
        &format!(
            "/api/v1/query?query=job:queue_depth:max&time={}",
            (T0 + 30_000) / 1000
        ),
        &admin,
    )
    .await;
    assert_eq!(q["data"]["result"][0]["value"][1], "150", "{q}");
    let (_, q) = get(
        &app,
        &format!("/api/v1/query?query=ALERTS&time={}", (T0 + 30_000) / 1000),
        &admin,
    )
    .await;
    assert_eq!(
        q["data"]["result"][0]["metric"]["alertstate"], "firing",
        "{q}"
    );

    // Filters, as Prometheus reads them.
    let (_, body) = get(&app, "/api/v1/rules?type=record", &admin).await;
    assert_eq!(
        body["data"]["groups"][0]["rules"].as_array().unwrap().len(),
        1
    );
    let (_, body) = get(
        &app,
        "/api/v1/rules?type=alert&rule_name[]=QueueEmpty",
        &admin,
    )
    .await;
    let rules = body["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["name"], "QueueEmpty");
    let (_, body) = get(&app, "/api/v1/rules?rule_group[]=nope", &admin).await;
    assert_eq!(body["data"]["groups"], Value::Array(vec![]));
    let (_, body) = get(&app, "/api/v1/rules?exclude_alerts=true", &admin).await;
    assert!(
        body["data"]["groups"][0]["rules"][1]
            .get("alerts")
            .is_none()
    );
    let (s, body) = get(&app, "/api/v1/rules?type=bogus", &admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorType"], "bad_data");
    assert!(body["error"].as_str().unwrap().contains("type"), "{body}");

    // Every read is in the audit chain.
    let actions: Vec<String> = app
        .audit_records()
        .iter()
        .filter_map(|r| r["action"].as_str().map(str::to_owned))
        .collect();
    assert!(actions.iter().any(|a| a == "metrics.rules"), "{actions:?}");
    assert!(actions.iter().any(|a| a == "metrics.alerts"), "{actions:?}");
}

#[tokio::test]
async fn tenants_see_only_their_own_rules_and_alerts() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let ann = app.bearer("ann", "acme-password-1").await;
    app.append(
        "default",
        &[("__name__", "queue_depth"), ("job", "orders")],
        &[(T0, 500.0)],
    );
    app.append(
        "acme",
        &[("__name__", "queue_depth"), ("job", "mail")],
        &[(T0, 0.0)],
    );
    eval(&app, "default", T0).await;
    eval(&app, "acme", T0).await;

    let (_, body) = get(&app, "/api/v1/alerts", &ann).await;
    let alerts = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["labels"]["alertname"], "QueueEmpty");
    assert_eq!(alerts[0]["labels"]["job"], "mail");
    assert_eq!(alerts[0]["state"], "firing");
    let (_, body) = get(&app, "/api/v1/rules", &ann).await;
    assert_eq!(body["data"]["groups"][0]["file"], "acme.yml");
    assert_eq!(body["data"]["groups"].as_array().unwrap().len(), 1);

    let (_, body) = get(&app, "/api/v1/alerts", &admin).await;
    let alerts = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["labels"]["job"], "orders");
}

#[tokio::test]
async fn rule_routes_need_credentials_and_the_read_scope() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let ingest_only = app.token_bearer(&admin, "pusher", &["ingest"]).await;
    for path in [
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v1/alerts/history",
        "/api/v1/alerts/stats",
        "/api/v1/alerts/0123456789abcdef",
    ] {
        let (s, _) = app.call("GET", path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, _) = get(&app, path, &ingest_only).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn post(app: &TestApp, path: &str, auth: &str, body: Option<Value>) -> (StatusCode, Value) {
    app.call("POST", path, Some(auth), body).await
}

#[tokio::test]
async fn alerts_are_acknowledged_resolved_and_kept_in_the_history() {
    let app = app().await;
    app.add_user("default", "vic", "viewer-password-1", Role::Viewer)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let vic = app.bearer("vic", "viewer-password-1").await;
    let ann = app.bearer("ann", "acme-password-1").await;
    app.append(
        "default",
        &[("__name__", "queue_depth"), ("job", "orders")],
        &[(T0, 150.0), (T0 + 40_000, 150.0), (T0 + 80_000, 10.0)],
    );

    // Pending: visible, but not yet acknowledgeable.
    eval(&app, "default", T0).await;
    let (_, body) = get(&app, "/api/v1/alerts", &admin).await;
    let id = body["data"]["alerts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["alerts"][0]["acknowledged"], Value::Null);
    let ack = format!("/api/v1/alerts/{id}/acknowledge");
    let (s, body) = post(&app, &ack, &admin, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("pending"),
        "{body}"
    );

    // Firing: an episode opens; a viewer may read it but not acknowledge it.
    eval(&app, "default", T0 + 30_000).await;
    let (s, _) = post(&app, &ack, &vic, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = post(
        &app,
        &ack,
        &admin,
        Some(serde_json::json!({"coment": "typo"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("coment"), "{body}");
    let (s, body) = post(
        &app,
        &ack,
        &admin,
        Some(serde_json::json!({"comment": "looking at the consumer"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["acknowledgedBy"], "admin");
    assert_eq!(
        body["data"]["acknowledgeComment"],
        "looking at the consumer"
    );
    assert_eq!(body["data"]["state"], "firing");
    assert_eq!(body["data"]["firedAt"], "2025-11-30T10:53:50Z");
    let (_, body) = get(&app, "/api/v1/alerts", &vic).await;
    let a = &body["data"]["alerts"][0];
    assert_eq!(a["state"], "firing");
    assert_eq!(a["acknowledged"]["by"], "admin");
    assert_eq!(a["firedAt"], "2025-11-30T10:53:50Z");
    let (s, body) = get(&app, &format!("/api/v1/alerts/{id}"), &vic).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["alert"]["labels"]["job"], "orders");
    assert_eq!(body["data"]["episode"]["acknowledgedBy"], "admin");
    assert_eq!(body["data"]["episode"]["rule"], "QueueBacklog");
    assert_eq!(body["data"]["episode"]["severity"], "page");
    assert_eq!(body["data"]["episode"]["service"], "orders");
    // Another tenant does not see it.
    let (s, _) = get(&app, &format!("/api/v1/alerts/{id}"), &ann).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Resolved by hand: gone from the active list at once.
    let (s, body) = post(
        &app,
        &format!("/api/v1/alerts/{id}/resolve"),
        &admin,
        Some(serde_json::json!({"comment": "restarted the consumer"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["episode"]["resolvedBy"], "admin");
    assert_eq!(body["data"]["alert"]["state"], "firing");
    let (_, body) = get(&app, "/api/v1/alerts", &admin).await;
    assert_eq!(body["data"]["alerts"], Value::Array(vec![]), "{body}");
    let (s, _) = post(&app, &format!("/api/v1/alerts/{id}/resolve"), &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The condition still holds: a new alert waits out `for` again, fires, and then
    // resolves on its own when the queue drains.
    eval(&app, "default", T0 + 40_000).await;
    let (_, body) = get(&app, "/api/v1/alerts", &admin).await;
    assert_eq!(body["data"]["alerts"][0]["state"], "pending", "{body}");
    eval(&app, "default", T0 + 70_000).await;
    eval(&app, "default", T0 + 90_000).await;

    let (_, body) = get(&app, "/api/v1/alerts/history", &admin).await;
    let eps = body["data"]["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{body}");
    assert_eq!(eps[0]["firedAt"], "2025-11-30T10:54:30Z");
    assert_eq!(eps[0]["resolvedAt"], "2025-11-30T10:54:50Z");
    assert_eq!(eps[0]["resolvedBy"], "condition");
    assert_eq!(eps[0]["acknowledgedBy"], Value::Null);
    assert_eq!(eps[1]["resolvedBy"], "admin");
    assert_eq!(eps[1]["resolveComment"], "restarted the consumer");
    assert_eq!(eps[0]["alertId"], id.as_str());
    assert_ne!(eps[0]["id"], eps[1]["id"]);
    for (query, n) in [
        ("state=open", 0),
        ("state=resolved", 2),
        ("rule=QueueBacklog", 2),
        ("rule=QueueEmpty", 0),
        ("severity=page", 2),
        ("severity=info", 0),
        ("limit=1", 1),
        ("limit=1&offset=1", 1),
        ("offset=2", 0),
        ("start=2025-11-30T10:54:00Z", 1),
        ("end=2025-11-30T10:54:00Z", 1),
    ] {
        let (s, body) = get(&app, &format!("/api/v1/alerts/history?{query}"), &vic).await;
        assert_eq!(s, StatusCode::OK, "{query}: {body}");
        assert_eq!(
            body["data"]["episodes"].as_array().unwrap().len(),
            n,
            "{query}"
        );
    }
    let (_, body) = get(&app, "/api/v1/alerts/history?limit=1&offset=1", &vic).await;
    assert_eq!(body["data"]["episodes"][0]["resolvedBy"], "admin");
    for bad in [
        "state=maybe",
        "limit=-1",
        "limit=5000",
        "offset=x",
        "start=yesterday",
    ] {
        let (s, body) = get(&app, &format!("/api/v1/alerts/history?{bad}"), &vic).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        let field = bad.split('=').next().unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(field),
            "{bad}: {body}"
        );
    }

    let (s, body) = get(
        &app,
        &format!(
            "/api/v1/alerts/stats?start={}&end={}",
            T0 / 1000,
            T0 / 1000 + 3600
        ),
        &vic,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let st = &body["data"];
    assert_eq!(st["total"], 2, "{body}");
    assert_eq!(st["open"], 0);
    assert_eq!(st["byRule"][0]["rule"], "QueueBacklog");
    assert_eq!(st["byRule"][0]["count"], 2);
    assert_eq!(st["bySeverity"][0]["severity"], "page");
    assert_eq!(st["byService"][0]["service"], "orders");
    assert!(st["mttaSeconds"].as_f64().unwrap() > 0.0, "{body}");
    assert!(st["mttrSeconds"].as_f64().unwrap() > 20.0, "{body}");
    let (s, _) = get(&app, "/api/v1/alerts/stats?start=10&end=5", &vic).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The other tenant's history is its own.
    let (_, body) = get(&app, "/api/v1/alerts/history", &ann).await;
    assert_eq!(body["data"]["episodes"], Value::Array(vec![]));

    let (s, _) = get(&app, "/api/v1/alerts/0123456789abcdef", &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = get(&app, "/api/v1/alerts/nope", &admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("id"), "{body}");

    let records = app.audit_records();
    for action in ["alert.acknowledge", "alert.resolve"] {
        let r = records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in the audit chain"));
        assert_eq!(r["actor"], "admin");
        assert_eq!(r["target"], format!("alert/{id}"));
    }
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "metrics.alerts.history")
    );
}

const ANOMALY_RULES: &str = r#"
groups:
  - name: payments
    rules:
      - alert: LargeTransaction
        expr: max by (user_id) (tx_amount) > 10000
        labels:
          severity: critical
          anomaly_type: transactions
        annotations:
          summary: "User {{ $labels.user_id }}: transaction of {{ $value }}"
      - alert: SlowCheckout
        expr: checkout_latency_ms > 1000
        labels:
          anomaly_type: metrics
      - alert: NotAnAnomaly
        expr: tx_amount > 10000
"#;

#[tokio::test]
async fn alerts_marked_as_anomalies_become_anomaly_events() {
    let mut all = groups_of(ANOMALY_RULES, "default");
    all.extend(groups_of(ANOMALY_RULES, "acme"));
    let app = common::app_with_settings(|s| {
        s.rules = RuleSet::new(all, 60_000, Default::default(), String::new())
    })
    .await;
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let ann = app.bearer("ann", "acme-password-1").await;
    app.append(
        "default",
        &[("__name__", "tx_amount"), ("user_id", "u7")],
        &[(T0, 25_000.0)],
    );
    app.append(
        "default",
        &[("__name__", "tx_amount"), ("user_id", "u3")],
        &[(T0 + 60_000, 12_500.0)],
    );
    app.append(
        "default",
        &[("__name__", "checkout_latency_ms"), ("service", "shop")],
        &[(T0 + 60_000, 1500.0)],
    );
    eval(&app, "default", T0).await;
    eval(&app, "default", T0 + 30_000).await;
    eval(&app, "default", T0 + 60_000).await;

    let (s, body) = get(&app, "/api/v1/anomalies", &admin).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rows = body["data"]["anomalies"].as_array().unwrap();
    // u7 once (it stayed firing), u3, and the slow checkout; not NotAnAnomaly.
    assert_eq!(rows.len(), 3, "{body}");
    let u7 = rows.iter().find(|r| r["user_id"] == "u7").unwrap();
    assert_eq!(u7["alert_type"], "transactions");
    assert_eq!(u7["alert_level"], "critical");
    assert_eq!(u7["alert_title"], "User u7: transaction of 25000");
    assert_eq!(u7["alert_message"], "User u7: transaction of 25000");
    assert_eq!(u7["is_alert"], true);
    assert_eq!(u7["timestamp"], "2025-11-30T10:53:20Z");
    assert_eq!(u7["tags"]["alertname"], "LargeTransaction");
    assert_eq!(u7["metrics"]["value"], 25_000.0);
    let slow = rows.iter().find(|r| r["alert_type"] == "metrics").unwrap();
    assert_eq!(slow["alert_level"], "warning", "no severity label");
    assert_eq!(slow["alert_title"], "SlowCheckout");
    assert_eq!(slow["user_id"], Value::Null);

    for (query, n) in [
        ("type=transactions", 2),
        ("type=logs", 0),
        ("level=critical", 2),
        ("user=u3", 1),
        ("start=2025-11-30T10:54:00Z", 2),
        ("end=2025-11-30T10:54:00Z", 1),
        ("limit=1", 1),
        ("limit=2&offset=2", 1),
    ] {
        let (s, body) = get(&app, &format!("/api/v1/anomalies?{query}"), &admin).await;
        assert_eq!(s, StatusCode::OK, "{query}: {body}");
        assert_eq!(
            body["data"]["anomalies"].as_array().unwrap().len(),
            n,
            "{query}: {body}"
        );
    }
    for bad in ["limit=x", "offset=-3", "start=soon"] {
        let (s, body) = get(&app, &format!("/api/v1/anomalies?{bad}"), &admin).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        let field = bad.split('=').next().unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(field),
            "{bad}: {body}"
        );
    }
    // Another tenant sees its own (none).
    let (_, body) = get(&app, "/api/v1/anomalies", &ann).await;
    assert_eq!(body["data"]["anomalies"], Value::Array(vec![]));
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "metrics.anomalies")
    );
    let (s, _) = app.call("GET", "/api/v1/anomalies", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn structured_rules_are_managed_evaluated_changed_and_deleted() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let ann = app.bearer("ann", "acme-password-1").await;
    app.append(
        "default",
        &[("__name__", "error_rate"), ("service", "shop")],
        &[(T0, 7.5), (T0 + 60_000, 7.5)],
    );
    let rule = |value: f64| {
        serde_json::json!({
            "name": "high_error_rate",
            "condition": {"type": "threshold", "metric": "error_rate", "operator": ">", "value": value},
            "severity": "critical",
            "description": "Error rate exceeds 5%",
            "channels": ["email", "slack"],
            "cooldown": 300
        })
    };

    // Checked before anything is stored; the error names the field.
    let mut bad = rule(5.0);
    bad["condition"]["operator"] = "=>".into();
    let (s, body) = app
        .call("POST", "/api/v1/alerts/rules", Some(&admin), Some(bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid rule: condition.operator: unknown variant `=>`"),
        "{body}"
    );
    let (s, _) = app
        .call("POST", "/api/v1/alerts/rules", Some(&ann), Some(rule(5.0)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer cannot write rules");

    let (s, body) = app
        .call(
            "POST",
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(rule(5.0)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let created = &body["data"];
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["expression"], "error_rate > 5");
    assert_eq!(
        (created["version"].as_i64(), created["createdBy"].as_str()),
        (Some(1), Some("admin"))
    );
    assert_eq!(created["rule"]["cooldown"], 300.0);
    assert_eq!(created["state"], "inactive");

    // Evaluated with the tenant's groups, shown by Prometheus' /api/v1/rules too.
    eval(&app, "default", T0).await;
    let (_, body) = get(&app, &format!("/api/v1/alerts/rules/{id}"), &admin).await;
    let r = &body["data"];
    assert_eq!(
        (r["state"].as_str(), r["health"].as_str()),
        (Some("firing"), Some("ok")),
        "{body}"
    );
    let alert = &r["alerts"][0];
    assert_eq!(alert["labels"]["rule_id"], id.as_str());
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["service"], "shop");
    assert_eq!(alert["annotations"]["channels"], "email,slack");
    let (_, body) = get(&app, "/api/v1/rules?rule_group[]=dozor-rules", &admin).await;
    let groups = body["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body}");
    assert_eq!(groups[0]["file"], "dozor:api");
    assert_eq!(groups[0]["rules"][0]["query"], "error_rate > 5");

    // Another tenant sees none of it.
    let (_, body) = get(&app, "/api/v1/alerts/rules", &ann).await;
    assert_eq!(body["data"]["rules"], Value::Array(vec![]));
    let (s, _) = get(&app, &format!("/api/v1/alerts/rules/{id}"), &ann).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A changed condition resolves the old alert and no longer fires.
    let (s, body) = app
        .call(
            "PUT",
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&admin),
            Some(rule(10.0)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["data"]["version"].as_i64(),
            body["data"]["expression"].as_str()
        ),
        (Some(2), Some("error_rate > 10"))
    );
    eval(&app, "default", T0 + 60_000).await;
    let (_, body) = get(&app, "/api/v1/alerts/history?rule=high_error_rate", &admin).await;
    let episodes = body["data"]["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 1, "{body}");
    assert_eq!(episodes[0]["resolvedBy"], "condition");
    let (_, body) = get(&app, &format!("/api/v1/alerts/rules/{id}"), &admin).await;
    assert_eq!(body["data"]["state"], "inactive");

    let (s, _) = app
        .call(
            "PUT",
            "/api/v1/alerts/rules/0000",
            Some(&admin),
            Some(rule(1.0)),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = app
        .call(
            "DELETE",
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = get(&app, &format!("/api/v1/alerts/rules/{id}"), &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, body) = get(&app, "/api/v1/rules?rule_group[]=dozor-rules", &admin).await;
    assert_eq!(body["data"]["groups"][0]["rules"], Value::Array(vec![]));

    let records = app.audit_records();
    for action in [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.delete",
    ] {
        let r = records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in the audit chain"));
        assert_eq!(r["actor"], "admin");
        assert_eq!(r["target"], format!("alert_rule/{id}"));
    }
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "metrics.alerts.rules")
    );
}

#[tokio::test]
async fn a_rule_preview_shows_what_it_would_have_fired_over_the_last_day() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let minute = 60_000;
    let now = dozor_model::time::now_ms() / minute * minute;
    // An hour of high errors two hours ago, then a three-minute blip half an hour ago.
    let mut samples = Vec::new();
    for m in (0..=24 * 60).rev() {
        let t = now - m * minute;
        let high = (60..120).contains(&m) || (28..=30).contains(&m);
        samples.push((t, if high { 7.5 } else { 1.0 }));
    }
    app.append(
        "default",
        &[("__name__", "error_rate"), ("service", "shop")],
        &samples,
    );
    let rule = serde_json::json!({
        "name": "high_error_rate",
        "condition": {"type": "threshold", "metric": "error_rate", "operator": ">", "value": 5},
        "severity": "critical",
        "for": "5m"
    });
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/alerts/rules/preview",
            Some(&admin),
            Some(rule.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let d = &body["data"];
    assert_eq!(d["expression"], "error_rate > 5");
    assert_eq!(d["forMs"], 300_000);
    let episodes = d["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 2, "{body}");
    assert_eq!(
        episodes
            .iter()
            .map(|e| e["fired"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [true, false],
        "the hour fires, the blip is shorter than `for`"
    );
    assert_eq!(d["fired"], 1);
    assert_eq!(episodes[0]["labels"]["service"], "shop");
    // Nothing was stored; a bad rule is a 400 naming the field.
    let (_, listed) = app
        .call("GET", "/api/v1/alerts/rules", Some(&admin), None)
        .await;
    assert_eq!(listed["data"]["rules"], serde_json::json!([]));
    let mut bad = rule;
    bad["condition"]["operator"] = "=>".into();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/alerts/rules/preview",
            Some(&admin),
            Some(bad),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("condition.operator"),
        "{body}"
    );
}
