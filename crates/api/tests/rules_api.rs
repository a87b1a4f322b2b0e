//! Prometheus' `/api/v1/rules` and `/api/v1/alerts` over groups evaluated against the
//! app's own metric store: response shapes, filters, tenant separation, scope checks and
//! audit records.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::{Group, RuleSet};
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

fn groups(tenant: &str) -> Vec<(dozor_model::TenantId, Group)> {
    dozor_rules::file::parse(RULES, &format!("{tenant}.yml"))
        .unwrap()
        .into_iter()
        .map(|g| (tenant.parse().unwrap(), Group::new(g, 60_000)))
        .collect()
}

async fn app() -> TestApp {
    let mut all = groups("default");
    all.extend(groups("acme"));
    let set = RuleSet::new(all);
    let app = common::app_with_settings(|s| s.rules = set).await;
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    app
}

/// Evaluates every group of `tenant` at `t` against the app's store, as the server does.
fn eval(app: &TestApp, tenant: &str, t: i64) {
    let engine = Engine::new(EngineOptions::default());
    let db = app.state.tsdb().tenant(&tenant.parse().unwrap()).unwrap();
    for tg in app.state.rules().of_tenant(&tenant.parse().unwrap()) {
        tg.lock().eval(t, &engine, db.as_ref(), &mut |batch| {
            db.append(&batch).map(|_| ()).map_err(|e| e.to_string())
        });
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

    eval(&app, "default", T0);
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

    eval(&app, "default", T0 + 30_000);
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
    eval(&app, "default", T0);
    eval(&app, "acme", T0);

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
    for path in ["/api/v1/rules", "/api/v1/alerts"] {
        let (s, _) = app.call("GET", path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, _) = get(&app, path, &ingest_only).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
}
