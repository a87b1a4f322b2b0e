//! Seed 004's Grafana JSON data source routes (`/api/v1/grafana`) and metric read routes
//! (`GET /api/v1/metrics`, `/latest`, `/service/{service}`, `/export`): shapes, filters,
//! scopes, audit and tenants.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use dozor_model::time::now_ms;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

const T0: i64 = 1_700_000_000_000;

async fn setup() -> (TestApp, String) {
    let app = common::app().await;
    let samples: Vec<(i64, f64)> = (0..=8).map(|i| (T0 + i * 15_000, i as f64 * 3.0)).collect();
    app.append(
        "default",
        &[
            ("__name__", "ticket_sales_total"),
            ("service", "shop"),
            ("event", "e1"),
        ],
        &samples,
    );
    app.append(
        "default",
        &[("__name__", "queue_depth"), ("service", "payments")],
        &[(T0, 4.0), (T0 + 60_000, 5.0)],
    );
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    (app, admin)
}

async fn post_json(app: &TestApp, auth: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.call("POST", path, Some(auth), Some(body)).await
}

#[tokio::test]
async fn grafana_connection_test_and_search() {
    let (app, admin) = setup().await;
    for path in ["/api/v1/grafana", "/api/v1/grafana/"] {
        let (status, body) = app.call("GET", path, Some(&admin), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["status"], "ok");
    }
    let (status, body) = post_json(
        &app,
        &admin,
        "/api/v1/grafana/search",
        json!({"target": ""}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(["queue_depth", "ticket_sales_total"]));
    let (_, body) = post_json(
        &app,
        &admin,
        "/api/v1/grafana/search",
        json!({"target": "sales"}),
    )
    .await;
    assert_eq!(body, json!(["ticket_sales_total"]));
    let (status, _, bytes) = app
        .call_raw("POST", "/api/v1/grafana/search", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!(["queue_depth", "ticket_sales_total"])
    );
    let (_, body) = post_json(
        &app,
        &admin,
        "/api/v1/grafana/annotations",
        json!({"annotation": {"name": "x"}}),
    )
    .await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn grafana_query_evaluates_promql_targets_into_datapoints() {
    let (app, admin) = setup().await;
    let request = json!({
        "range": {"from": "2023-11-14T22:13:20.000Z", "to": "2023-11-14T22:15:20.000Z"},
        "intervalMs": 20000,
        "maxDataPoints": 100,
        "targets": [
            {"target": "ticket_sales_total", "refId": "A", "type": "timeserie"},
            {"target": "sum(queue_depth)", "refId": "B"},
            {"target": "hidden", "refId": "C", "hide": true},
            {"target": "queue_depth", "refId": "D", "type": "table"}
        ]
    });
    let (status, body) = post_json(&app, &admin, "/api/v1/grafana/query", request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = body.as_array().unwrap();
    assert_eq!(out.len(), 3, "{body}");
    assert_eq!(
        out[0],
        json!({
            "target": "ticket_sales_total{event=\"e1\", service=\"shop\"}",
            "datapoints": [
                [0.0, T0], [3.0, T0 + 20_000], [6.0, T0 + 40_000], [12.0, T0 + 60_000],
                [15.0, T0 + 80_000], [18.0, T0 + 100_000], [24.0, T0 + 120_000]
            ]
        })
    );
    assert_eq!(out[1]["target"], "sum(queue_depth)");
    assert_eq!(out[1]["datapoints"][0], json!([4.0, T0]));
    assert_eq!(out[1]["datapoints"][3], json!([5.0, T0 + 60_000]));
    assert_eq!(
        out[2],
        json!({
            "type": "table",
            "columns": [
                {"text": "Time", "type": "time"},
                {"text": "__name__", "type": "string"},
                {"text": "service", "type": "string"},
                {"text": "Value", "type": "number"}
            ],
            "rows": [[T0 + 120_000, "queue_depth", "payments", 5.0]]
        })
    );
    // A bad target names itself; a bad range names the field.
    let (status, body) = post_json(
        &app,
        &admin,
        "/api/v1/grafana/query",
        json!({"range": {"from": "2023-11-14T22:13:20Z", "to": "2023-11-14T22:15:20Z"}, "targets": [{"target": "up{"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("targets[0].target"),
        "{body}"
    );
    let (status, body) = post_json(
        &app,
        &admin,
        "/api/v1/grafana/query",
        json!({"range": {"from": "then", "to": "2023-11-14T22:15:20Z"}, "targets": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("range.from"),
        "{body}"
    );
}

#[tokio::test]
async fn metric_routes_list_latest_values_by_name_and_service() {
    let app = common::app().await;
    let now = now_ms();
    app.append(
        "default",
        &[
            ("__name__", "ticket_sales_total"),
            ("service", "shop"),
            ("event", "e1"),
        ],
        &[(now - 120_000, 10.0), (now - 1_000, 12.0)],
    );
    app.append(
        "default",
        &[("__name__", "queue_depth"), ("service", "payments")],
        &[(now - 20 * 60_000, 4.0)],
    );
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;

    let (status, body) = app.call("GET", "/api/v1/metrics", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([
            {"name": "queue_depth", "service": "payments", "labels": {"service": "payments"}, "value": 4.0, "timestamp": now - 20 * 60_000},
            {"name": "ticket_sales_total", "service": "shop", "labels": {"event": "e1", "service": "shop"}, "value": 12.0, "timestamp": now - 1_000}
        ])
    );
    let (_, body) = app
        .call(
            "GET",
            "/api/v1/metrics?name=queue_depth",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["name"], "queue_depth");
    let (_, body) = app
        .call("GET", "/api/v1/metrics?service=shop", Some(&admin), None)
        .await;
    assert_eq!(body["data"][0]["name"], "ticket_sales_total");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    // Latest: only values within the 5-minute lookback.
    let (_, body) = app
        .call("GET", "/api/v1/metrics/latest", Some(&admin), None)
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["value"], 12.0);
    let (_, body) = app
        .call(
            "GET",
            "/api/v1/metrics/service/payments",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"][0]["value"], 4.0, "{body}");
    let (_, body) = app
        .call("GET", "/api/v1/metrics/service/nobody", Some(&admin), None)
        .await;
    assert_eq!(body["data"], json!([]));

    let (status, headers, text) = app
        .call_raw("GET", "/api/v1/metrics/export", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        String::from_utf8(text).unwrap(),
        format!(
            "ticket_sales_total{{event=\"e1\",service=\"shop\"}} 12 {}\n",
            now - 1_000
        )
    );
    // The exposition parses back with the ingest decoder.
    let (_, _, text) = app
        .call_raw("GET", "/api/v1/metrics/export", Some(&admin), None)
        .await;
    let batch = dozor_ingest::exposition::parse(
        std::str::from_utf8(&text).unwrap(),
        dozor_ingest::exposition::Format::Prometheus,
        0,
        &dozor_ingest::Limits::default(),
    )
    .unwrap();
    assert_eq!(batch.len(), 1);

    let (status, body) = app
        .call("GET", "/api/v1/metrics?start=then", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("\"start\""),
        "{body}"
    );
}

#[tokio::test]
async fn grafana_and_metric_routes_need_read_scope_are_audited_and_tenant_scoped() {
    let (app, admin) = setup().await;
    for (method, path) in [
        ("GET", "/api/v1/grafana"),
        ("POST", "/api/v1/grafana/query"),
        ("GET", "/api/v1/metrics/export"),
    ] {
        let (status, _) = app.call(method, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let ingest = app.token_bearer(&admin, "shipper", &["ingest"]).await;
    let (status, _) = post_json(&app, &ingest, "/api/v1/grafana/search", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call("GET", "/api/v1/metrics", Some(&ingest), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    app.add_user("other", "olga", "olga-password", Role::Viewer)
        .await;
    let olga = app.bearer("olga", "olga-password").await;
    let (status, body) = post_json(&app, &olga, "/api/v1/grafana/search", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    let (_, body) = post_json(
        &app,
        &olga,
        "/api/v1/grafana/query",
        json!({"range": {"from": "2023-11-14T22:13:20Z", "to": "2023-11-14T22:15:20Z"}, "targets": [{"target": "ticket_sales_total"}]}),
    )
    .await;
    assert_eq!(body, json!([]));

    post_json(
        &app,
        &admin,
        "/api/v1/grafana/search",
        json!({"target": "q"}),
    )
    .await;
    let records = app.audit_records();
    for action in ["metrics.grafana_search", "metrics.grafana_query"] {
        assert!(records.iter().any(|r| r["action"] == action), "{action}");
    }
}
