//! Seed 004's health routes over the probe registry: overall, one service, all services,
//! dependencies; tenant separation, scope checks, audit records, and the probe collector
//! feeding the routes and the metric store for real.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use dozor_ingest::probe::{self, Probe, ProbeKind, ProbeSpec, ProbeStatus};
use dozor_model::{Role, TenantId};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

const ROUTES: [&str; 4] = [
    "/api/v1/health",
    "/api/v1/health/shop",
    "/api/v1/health/services/all",
    "/api/v1/health/dependencies",
];

fn status(name: &str, service: &str, kind: ProbeKind, success: Option<bool>) -> ProbeStatus {
    ProbeStatus {
        name: name.into(),
        service: service.into(),
        kind,
        target: format!("{name}.internal:1"),
        dependency: kind.is_dependency_by_default(),
        tenant: TenantId::default_tenant(),
        success,
        duration_seconds: success.map(|_| 0.012),
        error: (success == Some(false)).then(|| "cannot connect to 10.0.0.7:6379".to_owned()),
        checked_at: success.map(|_| 1_764_470_000_000),
        http_status_code: (kind == ProbeKind::Http).then_some(200),
        cert_expiry: None,
        result: None,
    }
}

/// shop: two passing HTTP probes; cache: a failing Redis (a dependency); db: a passing
/// PostgreSQL (a dependency); search: not checked yet.
fn seed(app: &TestApp) {
    let p = app.state.probes();
    p.set(status("shop-api", "shop", ProbeKind::Http, Some(true)));
    p.set(status("shop-web", "shop", ProbeKind::Http, Some(true)));
    p.set(status("cache", "cache", ProbeKind::Redis, Some(false)));
    p.set(status("db", "db", ProbeKind::Postgres, Some(true)));
    p.set(status("search", "search", ProbeKind::Tcp, None));
}

async fn get(app: &TestApp, path: &str, auth: &str) -> (StatusCode, Value) {
    app.call("GET", path, Some(auth), None).await
}

async fn overall(app: &TestApp, auth: &str) -> Value {
    get(app, "/api/v1/health", auth).await.1["data"]["status"].clone()
}

#[tokio::test]
async fn overall_health_is_degraded_when_a_service_is_down() {
    let app = common::app().await;
    seed(&app);
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (code, body) = get(&app, "/api/v1/health", &admin).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let d = &body["data"];
    assert_eq!(d["status"], "degraded");
    assert_eq!(d["dozor"]["status"], "ok");
    assert_eq!(
        d["services"],
        json!({"total": 4, "ok": 2, "degraded": 0, "down": 1, "unknown": 1})
    );
    assert_eq!(d["dependencies"], json!({"total": 2, "status": "degraded"}));
    assert!(d["checkedAt"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn overall_health_is_ok_without_probes_or_when_all_pass_and_down_when_all_fail() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    assert_eq!(overall(&app, &admin).await, "ok", "no probes: Dozor alone");
    app.state
        .probes()
        .set(status("search", "search", ProbeKind::Tcp, None));
    assert_eq!(overall(&app, &admin).await, "ok", "nothing checked yet");
    app.state
        .probes()
        .set(status("shop-api", "shop", ProbeKind::Http, Some(true)));
    assert_eq!(overall(&app, &admin).await, "ok");
    app.state
        .probes()
        .set(status("shop-api", "shop", ProbeKind::Http, Some(false)));
    assert_eq!(overall(&app, &admin).await, "down");
}

#[tokio::test]
async fn one_service_shows_its_probes_and_unknown_services_are_404() {
    let app = common::app().await;
    seed(&app);
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (code, body) = get(&app, "/api/v1/health/shop", &admin).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let d = &body["data"];
    assert_eq!(
        (d["service"].as_str(), d["status"].as_str()),
        (Some("shop"), Some("ok"))
    );
    let probes = d["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    assert_eq!(
        probes[0],
        json!({
            "name": "shop-api", "service": "shop", "kind": "http",
            "target": "shop-api.internal:1", "dependency": false, "success": true,
            "durationSeconds": 0.012, "error": null, "checkedAt": 1_764_470_000_000_i64,
            "httpStatusCode": 200,
        })
    );

    let (code, body) = get(&app, "/api/v1/health/cache", &admin).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["data"]["status"], "down");
    assert_eq!(
        body["data"]["probes"][0]["error"],
        "cannot connect to 10.0.0.7:6379"
    );
    let (_, body) = get(&app, "/api/v1/health/search", &admin).await;
    assert_eq!(body["data"]["status"], "unknown");

    let (code, body) = get(&app, "/api/v1/health/billing", &admin).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "not_found");
    assert!(body["error"].as_str().unwrap().contains("billing"));
}

#[tokio::test]
async fn all_services_and_dependencies_are_listed_by_their_own_routes() {
    let app = common::app().await;
    seed(&app);
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (code, body) = get(&app, "/api/v1/health/services/all", &admin).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let services: Vec<(String, String)> = body["data"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            ("cache".into(), "down".into()),
            ("db".into(), "ok".into()),
            ("search".into(), "unknown".into()),
            ("shop".into(), "ok".into()),
        ]
    );
    assert_eq!(body["data"]["status"], "degraded");

    // Not captured by `{service}`: the dependencies route answers with its own shape.
    let (code, body) = get(&app, "/api/v1/health/dependencies", &admin).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["data"]["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cache", "db"]);
    assert_eq!(body["data"]["status"], "degraded");
}

#[tokio::test]
async fn health_routes_need_credentials_and_the_read_scope() {
    let app = common::app().await;
    seed(&app);
    for path in ROUTES {
        let (code, body) = app.call("GET", path, None, None).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    app.add_user("default", "vera", "viewer-password-1", Role::Viewer)
        .await;
    let viewer = app.bearer("vera", "viewer-password-1").await;
    for path in ROUTES {
        assert_eq!(get(&app, path, &viewer).await.0, StatusCode::OK, "{path}");
    }
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let pusher = app.token_bearer(&admin, "pusher", &["ingest"]).await;
    for path in ROUTES {
        assert_eq!(
            get(&app, path, &pusher).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_probes() {
    let app = common::app().await;
    seed(&app);
    let mut other = status("billing-api", "billing", ProbeKind::Http, Some(false));
    other.tenant = "acme".parse().unwrap();
    app.state.probes().set(other);
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    let ann = app.bearer("ann", "acme-password-1").await;
    let (_, body) = get(&app, "/api/v1/health/services/all", &ann).await;
    let services = body["data"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["service"], "billing");
    assert_eq!(
        get(&app, "/api/v1/health/shop", &ann).await.0,
        StatusCode::NOT_FOUND
    );
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        get(&app, "/api/v1/health/billing", &admin).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn connectors_show_in_readyz_and_in_their_tenants_health() {
    let app = common::app().await;
    let sources = app.state.sources();
    let kafka = sources.register("pipeline", "kafka", &TenantId::default_tenant());
    kafka.set_connected(true);
    kafka.delivered(1200, 90_000);
    let rabbit = sources.register("crm", "rabbitmq", &"acme".parse().unwrap());
    rabbit.error("cannot connect: connection refused");
    // Public readiness: up or down, no counters and no error text.
    let (code, body) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "a connector down does not make Dozor unready"
    );
    assert_eq!(
        body["sources"],
        json!([
            {"name": "pipeline", "kind": "kafka", "status": "up"},
            {"name": "crm", "kind": "rabbitmq", "status": "down"},
        ])
    );
    // Authenticated health: the caller's tenant's sources, with counters.
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (_, body) = get(&app, "/api/v1/health", &admin).await;
    let listed = body["data"]["sources"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["name"], "pipeline");
    assert_eq!(listed[0]["records"], 1200);
    assert_eq!(listed[0]["lastError"], Value::Null);
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    let ann = app.bearer("ann", "acme-password-1").await;
    let (_, body) = get(&app, "/api/v1/health", &ann).await;
    let listed = body["data"]["sources"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["name"], "crm");
    assert_eq!(listed[0]["status"], "down");
    assert_eq!(listed[0]["lastError"], "cannot connect: connection refused");
}

#[tokio::test]
async fn health_reads_are_recorded_in_the_audit_chain() {
    let app = common::app().await;
    seed(&app);
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    for path in ROUTES {
        get(&app, path, &admin).await;
    }
    let reads: Vec<(String, String)> = app
        .audit_records()
        .iter()
        .filter(|r| r["action"] == "health.read")
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reads,
        [
            ("admin".into(), "health".into()),
            ("admin".into(), "health/shop".into()),
            ("admin".into(), "health/services".into()),
            ("admin".into(), "health/dependencies".into()),
        ]
    );
}

/// Stores probe samples in the app's metric store, as the binary does.
struct TsdbAppender(Arc<dozor_tsdb::Tsdb>);

impl dozor_ingest::scrape::Appender for TsdbAppender {
    fn append(&self, tenant: &TenantId, batch: dozor_ingest::Batch) -> Result<(), String> {
        let db = self.0.tenant(tenant).map_err(|e| e.to_string())?;
        db.append(&batch).map(|_| ()).map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn running_probes_feed_the_health_routes_and_the_metric_store() {
    let app = common::app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let spec = |name: &str, target: String| {
        let mut s = ProbeSpec::new(name, ProbeKind::Tcp, target);
        s.service = "queue".into();
        s.interval = Duration::from_millis(200);
        s.timeout = Duration::from_millis(150);
        s
    };
    let probes = vec![
        Probe::new(spec("queue-a", up.to_string())).unwrap(),
        Probe::new(spec("queue-b", closed.to_string())).unwrap(),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let appender = Arc::new(TsdbAppender(Arc::clone(app.state.tsdb())));
    let task = tokio::spawn(probe::run(
        probes,
        appender,
        app.state.probes().clone(),
        stop_rx,
    ));
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let mut body = Value::Null;
    for _ in 0..100 {
        body = get(&app, "/api/v1/health/queue", &admin).await.1;
        if body["data"]["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body["data"]["status"], "degraded", "{body}");
    assert_eq!(body["data"]["probes"][0]["success"], true);
    assert_eq!(body["data"]["probes"][1]["success"], false);

    let q = "/api/v1/export?match%5B%5D=probe_success%7Bservice%3D%22queue%22%7D";
    let (code, _, bytes) = app.call_raw("GET", q, Some(&admin), None).await;
    assert_eq!(code, StatusCode::OK);
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        let expected = if l["metric"]["probe"] == "queue-a" {
            1.0
        } else {
            0.0
        };
        assert_eq!(l["values"][0].as_f64(), Some(expected), "{l}");
        assert_eq!(l["metric"]["job"], "probe");
        assert_eq!(l["metric"]["kind"], "tcp");
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    drop(listener);
}
