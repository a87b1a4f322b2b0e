//! Seed 004's SLA and performance dashboards over the metric store: uptime, p95 and hourly
//! violations per probed service; requests per second, latency quantiles and error ratio
//! per endpoint of a latency histogram; parameters checked; another tenant sees nothing.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::Value;

fn service<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["data"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))
}

#[tokio::test]
async fn sla_and_performance_come_from_the_series() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms() / 60_000 * 60_000;
    // Two hours of probes a minute: shop down for 30 minutes of the first hour, crm always up.
    for (svc, down) in [("shop", 30..60), ("crm", 0..0)] {
        let success: Vec<(i64, f64)> = (0..120)
            .map(|m| {
                (
                    now - (120 - m) * 60_000,
                    if down.contains(&m) { 0.0 } else { 1.0 },
                )
            })
            .collect();
        app.append(
            "default",
            &[
                ("__name__", "probe_success"),
                ("service", svc),
                ("probe", svc),
            ],
            &success,
        );
        let duration: Vec<(i64, f64)> = (0..120)
            .map(|m| {
                (
                    now - (120 - m) * 60_000,
                    if m % 10 == 0 { 2.0 } else { 0.1 },
                )
            })
            .collect();
        app.append(
            "default",
            &[
                ("__name__", "probe_duration_seconds"),
                ("service", svc),
                ("probe", svc),
            ],
            &duration,
        );
    }
    let (s, v) = app
        .call(
            "GET",
            "/api/v1/dashboard/sla?window=2h&target=99",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let shop = service(&v, "shop");
    let up = shop["uptimePercent"].as_f64().unwrap();
    assert!((74.0..=76.0).contains(&up), "{shop}");
    assert_eq!(shop["met"], false);
    assert!(shop["violations"].as_f64().unwrap() >= 1.0, "{shop}");
    assert!(
        shop["errorBudgetRemaining"].as_f64().unwrap() < 0.0,
        "overspent: {shop}"
    );
    let crm = service(&v, "crm");
    assert_eq!(crm["uptimePercent"], 100.0);
    assert_eq!(crm["violations"], 0.0);
    assert_eq!(crm["met"], true);
    // One probe in ten took 2 s: the 95th percentile is 2 s.
    assert!(crm["p95ResponseSeconds"].as_f64().unwrap() > 1.0, "{crm}");

    // A latency histogram: /fast under 100 ms; /slow mostly over, 10 % errors.
    for m in 0..61i64 {
        let t = now - (60 - m) * 60_000;
        let n = m as f64 * 60.0;
        for (endpoint, fast_share) in [("/fast", 1.0), ("/slow", 0.2)] {
            for (le, share) in [("0.1", fast_share), ("0.5", 1.0), ("+Inf", 1.0)] {
                app.append(
                    "default",
                    &[
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("endpoint", endpoint),
                        ("le", le),
                    ],
                    &[(t, n * share)],
                );
            }
            let errors = if endpoint == "/slow" { 0.1 } else { 0.0 };
            for (code, share) in [("200", 1.0 - errors), ("500", errors)] {
                app.append(
                    "default",
                    &[
                        ("__name__", "http_request_duration_seconds_count"),
                        ("endpoint", endpoint),
                        ("code", code),
                    ],
                    &[(t, n * share)],
                );
            }
        }
    }
    let (s, p) = app
        .call(
            "GET",
            "/api/v1/dashboard/performance?range=30m",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let eps = p["data"]["endpoints"].as_array().unwrap();
    let ep = |name: &str| eps.iter().find(|e| e["endpoint"] == name).unwrap();
    assert!(
        (ep("/fast")["requestsPerSecond"].as_f64().unwrap() - 1.0).abs() < 0.05,
        "{p}"
    );
    assert!(ep("/fast")["p95Seconds"].as_f64().unwrap() <= 0.1, "{p}");
    assert!(ep("/slow")["p50Seconds"].as_f64().unwrap() > 0.1, "{p}");
    assert!(
        (ep("/slow")["errorRatio"].as_f64().unwrap() - 0.1).abs() < 0.01,
        "{p}"
    );
    assert_eq!(ep("/fast")["errorRatio"], 0.0);

    // Parameters are checked.
    for bad in [
        "/api/v1/dashboard/sla?window=soon",
        "/api/v1/dashboard/sla?window=1m",
        "/api/v1/dashboard/sla?target=100",
        "/api/v1/dashboard/performance?by=no-such",
        "/api/v1/dashboard/performance?metric=1x",
        "/api/v1/dashboard/performance?errors=code%3D%3D",
    ] {
        let (s, body) = app.call("GET", bad, Some(&admin), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid parameter"),
            "{bad}: {body}"
        );
    }

    // Another tenant's view is empty.
    app.add_user("other", "oadmin", "a-long-password-1", Role::Admin)
        .await;
    let other = app.bearer("oadmin", "a-long-password-1").await;
    let (_, v) = app
        .call("GET", "/api/v1/dashboard/sla?window=2h", Some(&other), None)
        .await;
    assert_eq!(v["data"]["services"], serde_json::json!([]));
}

#[tokio::test]
async fn overview_and_business_sum_up_the_tenant() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms() / 60_000 * 60_000;
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/incidents",
            Some(&admin),
            Some(serde_json::json!({"title": "checkout down", "severity": "critical"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, o) = app
        .call("GET", "/api/v1/dashboard/overview", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["data"]["incidents"]["open"], 1, "{o}");
    assert_eq!(o["data"]["alerts"]["firing"], 0);
    assert_eq!(o["data"]["services"]["total"], 0);
    assert_eq!(o["data"]["fraud"]["open"], 0, "{o}");
    // The test settings' cash registers belong to tenant `other`.
    assert_eq!(o["data"]["cashRegisters"], Value::Null);

    // An hour of shop orders (2 a minute, recorded by pack:shop) and of till takings
    // (1000 RUB a minute).
    let minutes: Vec<(i64, f64)> = (0..61).map(|m| (now - (60 - m) * 60_000, 2.0)).collect();
    app.append(
        "default",
        &[("__name__", "shop:orders_created:per_minute")],
        &minutes,
    );
    let takings: Vec<(i64, f64)> = (0..61)
        .map(|m| (now - (60 - m) * 60_000, m as f64 * 100_000.0))
        .collect();
    app.append(
        "default",
        &[
            ("__name__", "kkt_receipts_amount_kopecks_total"),
            ("kkt", "1"),
            ("operation", "sale"),
        ],
        &takings,
    );
    let (s, b) = app
        .call(
            "GET",
            "/api/v1/dashboard/business?range=1h",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["shop"]["orders"], 120.0, "{b}");
    assert_eq!(
        b["data"]["shop"]["revenue"],
        Value::Null,
        "no such series: {b}"
    );
    let rub = b["data"]["cashRegisters"]["salesRevenue"].as_f64().unwrap();
    assert!((59_000.0..=61_000.0).contains(&rub), "{b}");
    assert_eq!(b["data"]["ticketSales"]["sales"], 0.0);

    // Roles that do not see fraud findings get none in the overview.
    app.add_user("default", "biz", "a-long-password-1", Role::Business)
        .await;
    let biz = app.bearer("biz", "a-long-password-1").await;
    let (_, o) = app
        .call("GET", "/api/v1/dashboard/overview", Some(&biz), None)
        .await;
    assert_eq!(o["data"]["fraud"], Value::Null, "{o}");
}
