//! Loki's query API over HTTP, in the shapes Grafana's Loki data source reads: instant and
//! range metric queries, log queries with pipelines, labels, label values, series, index
//! stats, bad queries as 400s naming the parameter, audited reads, tenants apart, and the
//! live tail over a real WebSocket.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use dozor_model::Role;
use futures_util::StreamExt;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

/// 2026-12-01T10:00:00Z in seconds.
const T0: i64 = 1_796_119_200;

async fn ingest(app: &TestApp, auth: &str, lines: &[Value]) {
    let body = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let (status, _, bytes) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(auth), Some(body))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

async fn get(
    app: &TestApp,
    auth: &str,
    path: &str,
    params: &[(&str, &str)],
) -> (StatusCode, Value) {
    let q = serde_urlencoded::to_string(params).unwrap();
    app.call("GET", &format!("{path}?{q}"), Some(auth), None)
        .await
}

/// 30 checkout errors (users 0/1 alternating, one every 10 s) and 20 shop infos.
fn corpus() -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..30 {
        out.push(json!({"_time": T0 + i * 10, "service": "checkout", "level": "error",
            "_msg": format!("level=error msg=\"payment failed\" user={} amount={}", i % 2, 1000 * i)}));
    }
    for i in 0..20 {
        out.push(json!({"_time": T0 + i * 15, "service": "shop", "level": "info",
            "_msg": format!("{{\"path\":\"/cart\",\"status\":{}}}", if i == 7 { 503 } else { 200 }), "user_id": format!("u{}", i % 4)}));
    }
    out
}

#[tokio::test]
async fn metric_and_log_queries_answer_in_lokis_shapes() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    ingest(&app, &admin, &corpus()).await;
    let t = |s: i64| (T0 + s).to_string();

    // Instant: errors per user in the last 5 minutes at T0+299 s (lines at 0..=290 s).
    let (status, body) = get(&app, &admin, "/loki/api/v1/query", &[
        ("query", r#"sum by (user) (count_over_time({service="checkout"} |= "failed" | logfmt [5m]))"#),
        ("time", &t(299)),
    ]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"user": "0"}, "value": [T0 + 299, "15"]},
            {"metric": {"user": "1"}, "value": [T0 + 299, "15"]},
        ])
    );
    assert!(
        body["data"]["stats"]["summary"]["totalLinesProcessed"]
            .as_u64()
            .unwrap()
            >= 30
    );

    // The seed rule "transaction amount > 10 000", as one expression.
    let (_, body) = get(
        &app,
        &admin,
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sum(count_over_time({service="checkout"} | logfmt | amount > 10000 [10m])) > 5"#,
            ),
            ("time", &t(299)),
        ],
    )
    .await;
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {}, "value": [T0 + 299, "19"]}])
    );

    // Range: one point per minute; times in seconds, values as strings.
    let (status, body) = get(
        &app,
        &admin,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"sum(count_over_time({level="error"}[1m]))"#),
            ("start", &format!("{}000000000", T0 + 59)),
            ("end", &format!("{}000000000", T0 + 299)),
            ("step", "60s"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([
            [T0 + 59, "6"],
            [T0 + 119, "6"],
            [T0 + 179, "6"],
            [T0 + 239, "6"],
            [T0 + 299, "6"],
        ])
    );

    // A log query: newest first, limited, JSON fields and fields (structured metadata) as labels.
    let (status, body) = get(
        &app,
        &admin,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{service="shop"} | json | status >= 500"#),
            ("start", &t(0)),
            ("end", &t(400)),
            ("limit", "10"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["resultType"], "streams");
    assert_eq!(
        body["data"]["result"],
        json!([{
            "stream": {"level": "info", "path": "/cart", "service": "shop", "status": "503", "user_id": "u3"},
            "values": [[format!("{}000000000", T0 + 105), "{\"path\":\"/cart\",\"status\":503}"]],
        }])
    );
    let (_, body) = get(
        &app,
        &admin,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"{service="checkout"} | logfmt | line_format "{{.user}}:{{.amount}}""#,
            ),
            ("start", &t(0)),
            ("end", &t(400)),
            ("limit", "3"),
            ("direction", "forward"),
        ],
    )
    .await;
    let lines: Vec<&str> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[1].as_str().unwrap())
        })
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines.contains(&"0:0") && lines.contains(&"1:1000") && lines.contains(&"0:2000"),
        "{lines:?}"
    );

    // Metadata: labels, values, series, index stats, build info.
    let window = [("start", &*t(0)), ("end", &*t(400))];
    let (_, body) = get(&app, &admin, "/loki/api/v1/labels", &window).await;
    assert_eq!(body["data"], json!(["level", "service"]));
    let (_, body) = get(&app, &admin, "/loki/api/v1/label/service/values", &window).await;
    assert_eq!(body["data"], json!(["checkout", "shop"]));
    let (_, body) = get(
        &app,
        &admin,
        "/loki/api/v1/series",
        &[&window[..], &[("match[]", r#"{level="error"}"#)][..]].concat(),
    )
    .await;
    assert_eq!(
        body["data"],
        json!([{"level": "error", "service": "checkout"}])
    );
    let (status, body) = get(
        &app,
        &admin,
        "/loki/api/v1/index/stats",
        &[&window[..], &[("query", r#"{service="shop"}"#)][..]].concat(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["streams"], 1);
    assert_eq!(body["entries"], 20);
    let (status, body) = get(&app, &admin, "/loki/api/v1/status/buildinfo", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["version"].as_str().unwrap().starts_with('3'));

    // Every data read is in the audit chain with its query.
    let reads: Vec<Value> = app
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "logs.query")
        .collect();
    assert!(reads.len() >= 7, "{reads:?}");
    assert!(
        reads
            .iter()
            .any(|r| r.to_string().contains("amount > 10000"))
    );
}

#[tokio::test]
async fn bad_queries_are_400s_and_tenants_stay_apart() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    ingest(&app, &admin, &corpus()).await;
    for (path, params, needle) in [
        (
            "/loki/api/v1/query_range",
            vec![("query", "{service=\"shop\"")],
            "query",
        ),
        ("/loki/api/v1/query_range", vec![], "query"),
        (
            "/loki/api/v1/query_range",
            vec![("query", "{a=\"b\"}"), ("start", "yesterday")],
            "start",
        ),
        (
            "/loki/api/v1/query_range",
            vec![("query", "{a=\"b\"}"), ("step", "0")],
            "step",
        ),
        (
            "/loki/api/v1/query_range",
            vec![
                ("query", "count_over_time({a=\"b\"}[1m])"),
                ("start", "0"),
                ("end", "100000000"),
                ("step", "1"),
            ],
            "steps",
        ),
        (
            "/loki/api/v1/query_range",
            vec![("query", "{a=\"b\"}"), ("direction", "up")],
            "direction",
        ),
        (
            "/loki/api/v1/query_range",
            vec![("query", "{a=\"b\"}"), ("limit", "99999999")],
            "limit",
        ),
        (
            "/loki/api/v1/query",
            vec![("query", "{a=\"b\"}")],
            "instant",
        ),
        (
            "/loki/api/v1/series",
            vec![("match[]", "sum(vector(1))")],
            "match[]",
        ),
    ] {
        let (status, body) = get(&app, &admin, path, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {params:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path} {params:?}: {body}"
        );
    }
    // Another tenant's reader sees nothing; a reader without a token is refused.
    app.add_user("acme", "ann", "ann-password-1", Role::Viewer)
        .await;
    let ann = app.bearer("ann", "ann-password-1").await;
    let (status, body) = get(
        &app,
        &ann,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{service=~".+"}"#),
            ("start", &T0.to_string()),
            ("end", &(T0 + 400).to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["result"], json!([]));
    let (_, body) = get(
        &app,
        &ann,
        "/loki/api/v1/labels",
        &[("start", &*T0.to_string())],
    )
    .await;
    assert_eq!(body["data"], json!([]));
    let (status, _) = app.call("GET", "/loki/api/v1/labels", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tail_streams_new_lines_over_a_websocket() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let addr = app.listen().await;
    let now = dozor_model::time::now_ms() / 1000;
    ingest(&app, &admin, &[json!({"_time": now - 5, "service": "shop", "level": "error", "_msg": "before the tail"})]).await;

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let q = serde_urlencoded::to_string([
        ("query", r#"{service="shop"} |= "tail""#),
        ("start", &(now - 60).to_string()),
    ])
    .unwrap();
    let mut req = format!("ws://{addr}/loki/api/v1/tail?{q}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", admin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let mut next_lines = async || -> Vec<String> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame within 10 s")
                .unwrap()
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                return v["streams"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| {
                        s["values"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e[1].as_str().unwrap().to_owned())
                    })
                    .collect();
            }
        }
    };
    assert_eq!(next_lines().await, ["before the tail"]);
    ingest(&app, &admin, &[
        json!({"_time": now, "service": "shop", "level": "error", "_msg": "after the tail opened"}),
        json!({"_time": now, "service": "shop", "level": "error", "_msg": "filtered out"}),
        json!({"_time": now, "service": "crm", "level": "error", "_msg": "other stream tail"}),
    ]).await;
    // Each line once, though the overlap reads it again on later polls.
    assert_eq!(next_lines().await, ["after the tail opened"]);
    ingest(
        &app,
        &admin,
        &[json!({"_time": now + 1, "service": "shop", "level": "info", "_msg": "tail again"})],
    )
    .await;
    assert_eq!(next_lines().await, ["tail again"]);
    ws.close(None).await.unwrap();

    // A browser cannot set headers on a WebSocket: it offers the token as a sub-protocol,
    // and the server answers with Dozor's. A wrong token is refused.
    let q = serde_urlencoded::to_string([("query", r#"{service="shop"}"#)]).unwrap();
    let token = admin.trim_start_matches("Bearer ");
    for (offered, ok) in [
        (format!("dozor, bearer.{token}"), true),
        ("dozor, bearer.nope".to_owned(), false),
    ] {
        let mut req = format!("ws://{addr}/loki/api/v1/tail?{q}")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", offered.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Ok((mut ws, response)) => {
                assert!(ok, "a wrong token was let in");
                assert_eq!(response.headers()["sec-websocket-protocol"], "dozor");
                ws.close(None).await.unwrap();
            }
            Err(e) => assert!(!ok, "refused: {e}"),
        }
    }

    // A tail without a log query is refused before the upgrade.
    let q = serde_urlencoded::to_string([("query", "vector(1)")]).unwrap();
    let mut req = format!("ws://{addr}/loki/api/v1/tail?{q}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", admin.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "logs.query" && r.to_string().contains("|= \\\"tail\\\""))
    );
}
