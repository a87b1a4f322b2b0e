//! Scoped roles see part of their tenant inside 200 answers, not only at the route: a
//! developer's PromQL, LogQL, search, label lists, series, exports and live tail hold only
//! the services they own (and no security or personal data), support sees everything but
//! security data, business only business data; viewers see all.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use dozor_api::visibility::AccessPolicy;
use dozor_model::Role;
use futures_util::StreamExt as _;
use serde_json::{Value, json};

/// 2026-12-01T10:00:00Z.
const T0: i64 = 1_796_119_200;
const PASSWORD: &str = "role-test-password-42";

/// Words that mark each kind of data in metric names and log lines.
const SHOP: &str = "shopfront";
const CRM: &str = "crmdesk";
const SECURITY: &str = "loginfail";
const PERSONAL: &str = "customerfile";
const BUSINESS: &str = "orderbook";

async fn setup() -> common::TestApp {
    let app = common::app_with_settings(|s| {
        s.access = AccessPolicy {
            owners: HashMap::from([("dev".to_owned(), vec!["shop".to_owned()])]),
            ..AccessPolicy::default()
        };
    })
    .await;
    for (name, role) in [
        ("dev", Role::Developer),
        ("lonely", Role::Developer),
        ("sup", Role::Support),
        ("biz", Role::Business),
        ("view", Role::Viewer),
    ] {
        app.add_user("default", name, PASSWORD, role).await;
    }
    let t = T0 * 1000;
    for (pairs, v) in [
        (
            vec![("__name__", "shopfront_requests"), ("service", "shop")],
            1.0,
        ),
        (
            vec![("__name__", "crmdesk_requests"), ("service", "crm")],
            10.0,
        ),
        (
            vec![
                ("__name__", "loginfail_total"),
                ("service", "shop"),
                ("data_class", "security"),
            ],
            100.0,
        ),
        (
            vec![
                ("__name__", "customerfile_rows"),
                ("service", "shop"),
                ("data_class", "personal"),
            ],
            1000.0,
        ),
        (
            vec![
                ("__name__", "orderbook_total"),
                ("service", "crm"),
                ("data_class", "business"),
            ],
            10000.0,
        ),
    ] {
        app.append("default", &pairs, &[(t, v)]);
    }
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let lines = [
        json!({"_time": T0, "service": "shop", "_msg": "shopfront page served"}),
        json!({"_time": T0, "service": "crm", "_msg": "crmdesk ticket opened"}),
        json!({"_time": T0, "service": "shop", "data_class": "security", "_msg": "loginfail for account 7"}),
        json!({"_time": T0, "service": "shop", "data_class": "personal", "_msg": "customerfile exported"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(lines))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A business event (events are business data unless they say otherwise).
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/events",
            Some(&admin),
            Some(json!([{"type": "order", "service": "crm", "time": T0, "message": "orderbook entry 1", "amount": 5}])),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app
}

/// Which marker words `text` holds.
fn marks(text: &str) -> Vec<&'static str> {
    [SHOP, CRM, SECURITY, PERSONAL, BUSINESS]
        .into_iter()
        .filter(|w| text.contains(w))
        .collect()
}

fn q(params: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(params).unwrap()
}

#[tokio::test]
async fn each_role_reads_only_its_part_of_metrics_and_logs() {
    let app = setup().await;
    let t = T0.to_string();
    let (s, e) = ((T0 - 60).to_string(), (T0 + 60).to_string());
    let reads: Vec<String> = vec![
        format!(
            "/api/v1/query?{}",
            q(&[("query", "{__name__=~\".+\"}"), ("time", &t)])
        ),
        format!(
            "/api/v1/query_range?{}",
            q(&[
                ("query", "{__name__=~\".+\"}"),
                ("start", &s),
                ("end", &e),
                ("step", "30")
            ])
        ),
        format!(
            "/api/v1/series?{}",
            q(&[
                ("match[]", "{__name__=~\".+\"}"),
                ("start", &s),
                ("end", &e)
            ])
        ),
        format!(
            "/api/v1/label/__name__/values?{}",
            q(&[("start", &s), ("end", &e)])
        ),
        format!(
            "/api/v1/metrics/latest?{}",
            q(&[("start", &s), ("end", &e)])
        ),
        format!(
            "/api/v1/metrics/export?{}",
            q(&[("start", &s), ("end", &e)])
        ),
        format!(
            "/loki/api/v1/query_range?{}",
            q(&[
                ("query", "{service=~\".+\"}"),
                ("start", &s),
                ("end", &e),
                ("limit", "100")
            ])
        ),
        format!(
            "/loki/api/v1/query_range?{}",
            q(&[
                ("query", "{event=~\".+\"}"),
                ("start", &s),
                ("end", &e),
                ("limit", "100")
            ])
        ),
        format!(
            "/api/v1/logs/search?{}",
            q(&[("query", "{service=~\".+\"}"), ("start", &s), ("end", &e)])
        ),
        format!(
            "/loki/api/v1/series?{}",
            q(&[("match[]", "{service=~\".+\"}"), ("start", &s), ("end", &e)])
        ),
    ];
    // What each role may see of the five kinds.
    let expected: [(&str, &[&str]); 5] = [
        ("view", &[SHOP, CRM, SECURITY, PERSONAL, BUSINESS]),
        ("sup", &[SHOP, CRM, PERSONAL, BUSINESS]),
        ("biz", &[BUSINESS]),
        ("dev", &[SHOP]),
        ("lonely", &[]),
    ];
    for (user, allowed) in expected {
        let auth = app.bearer(user, PASSWORD).await;
        let mut seen = Vec::new();
        for path in &reads {
            let (status, text) = app.get_text(path, &auth).await;
            assert_eq!(status, StatusCode::OK, "{user} {path}: {text}");
            let found = marks(&text);
            for m in &found {
                assert!(allowed.contains(m), "{user} saw {m} in {path}: {text}");
            }
            seen.extend(found);
        }
        seen.sort_unstable();
        seen.dedup();
        let mut want = allowed.to_vec();
        want.sort_unstable();
        assert_eq!(seen, want, "{user} sees all it may");
    }

    // Aggregations cannot reach past the restriction: the developer's sum is its own.
    let sum = format!(
        "/api/v1/query?{}",
        q(&[("query", "sum({__name__=~\".+_requests\"})"), ("time", &t)])
    );
    for (user, value) in [("dev", "1"), ("view", "11"), ("biz", "")] {
        let auth = app.bearer(user, PASSWORD).await;
        let (_, body) = app.call("GET", &sum, Some(&auth), None).await;
        let result = body["data"]["result"].as_array().unwrap();
        match value {
            "" => assert!(result.is_empty(), "{user}: {body}"),
            v => assert_eq!(result[0]["value"][1], v, "{user}: {body}"),
        }
    }

    // The restriction is told to the user, and unfilterable statistics are refused.
    let dev = app.bearer("dev", PASSWORD).await;
    let (_, me) = app.call("GET", "/api/v1/auth/me", Some(&dev), None).await;
    assert_eq!(
        me["data"]["sees"],
        r#"{service=~"shop",data_class!~"security|personal"}"#
    );
    let (status, _) = app
        .call("GET", "/api/v1/status/tsdb", Some(&dev), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let view = app.bearer("view", PASSWORD).await;
    let (_, me) = app.call("GET", "/api/v1/auth/me", Some(&view), None).await;
    assert!(me["data"].get("sees").is_none());
    let (status, _) = app
        .call("GET", "/api/v1/status/tsdb", Some(&view), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_live_tail_streams_only_a_developers_services() {
    let app = setup().await;
    let addr = app.listen().await;
    let dev = app.bearer("dev", PASSWORD).await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let query = q(&[
        ("query", "{service=~\".+\"}"),
        ("start", &(T0 - 60).to_string()),
    ]);
    let mut req = format!("ws://{addr}/loki/api/v1/tail?{query}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", dev.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let frame = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            break t.to_string();
        }
    };
    assert_eq!(marks(&frame), vec![SHOP], "{frame}");
}
