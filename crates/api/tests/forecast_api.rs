//! `GET /api/v1/forecast` over HTTP: a filling disk's trend extended with intervals and the
//! time it fills; a daily cycle forecast by season; bad parameters answered 400 naming them;
//! tenants, scopes and the audit of the read.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::Value;

use common::{ADMIN_PASSWORD, TestApp};

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// A disk filling 2 GB an hour from 10 GB for two days (hourly), and a daily cycle of
/// requests for a week (hourly).
fn load(app: &TestApp) {
    let disk: Vec<(i64, f64)> = (0..48)
        .map(|h| {
            (
                T0 + h * HOUR,
                10.0 + 2.0 * h as f64 + if h % 2 == 0 { 0.3 } else { -0.3 },
            )
        })
        .collect();
    app.append(
        "default",
        &[("__name__", "disk_used_gb"), ("host", "db")],
        &disk,
    );
    let cycle: Vec<(i64, f64)> = (0..24 * 7)
        .map(|h| {
            let hour = (h % 24) as f64;
            (
                T0 + h * HOUR,
                100.0 + 30.0 * (hour * std::f64::consts::TAU / 24.0).sin(),
            )
        })
        .collect();
    app.append(
        "default",
        &[("__name__", "requests"), ("job", "shop")],
        &cycle,
    );
}

async fn get(app: &TestApp, auth: &str, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let q = serde_urlencoded::to_string(pairs).unwrap();
    app.call("GET", &format!("/api/v1/forecast?{q}"), Some(auth), None)
        .await
}

fn secs(ms: i64) -> String {
    (ms / 1000).to_string()
}

#[tokio::test]
async fn trends_seasons_errors_and_scopes() {
    let app = common::app().await;
    load(&app);
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (start, end) = (secs(T0), secs(T0 + 47 * HOUR));
    let (status, body) = get(
        &app,
        &admin,
        &[
            ("query", "disk_used_gb"),
            ("start", &start),
            ("end", &end),
            ("step", "1h"),
            ("horizon", "12h"),
            ("threshold", "500"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["method"], "linear");
    assert_eq!(data["level"], 0.95);
    let s = &data["series"][0];
    assert_eq!(s["metric"]["host"], "db");
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 12);
    let first = points[0].as_array().unwrap();
    let t = first[0].as_f64().unwrap();
    assert_eq!(
        t,
        ((T0 + 48 * HOUR) / 1000) as f64,
        "one step after the history"
    );
    let (v, lo, hi) = (
        first[1].as_f64().unwrap(),
        first[2].as_f64().unwrap(),
        first[3].as_f64().unwrap(),
    );
    assert!((v - 106.0).abs() < 1.0 && lo < v && v < hi, "{first:?}");
    // 500 GB at 10 + 2h: hour 245.
    let full = s["crossing"].as_f64().unwrap();
    assert!(
        (full - ((T0 + 245 * HOUR) / 1000) as f64).abs() < 2.0 * 3600.0,
        "{full}"
    );

    let (status, body) = get(
        &app,
        &admin,
        &[
            ("query", "requests"),
            ("start", &secs(T0)),
            ("end", &secs(T0 + (24 * 7 - 1) * HOUR)),
            ("step", "1h"),
            ("horizon", "1d"),
            ("method", "holt_winters"),
            ("period", "1d"),
            ("level", "0.9"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let points = body["data"]["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    for (h, p) in points.iter().enumerate() {
        let hour = h as f64; // the forecast starts at hour 0 of day 8
        let truth = 100.0 + 30.0 * (hour * std::f64::consts::TAU / 24.0).sin();
        let v = p[1].as_f64().unwrap();
        assert!((v - truth).abs() < 5.0, "hour {h}: {v} vs {truth}");
    }

    // A history too short for two seasons: the series says why.
    let (_, body) = get(
        &app,
        &admin,
        &[
            ("query", "disk_used_gb"),
            ("start", &start),
            ("end", &end),
            ("step", "1h"),
            ("method", "holt_winters"),
            ("period", "2d"),
        ],
    )
    .await;
    let e = body["data"]["series"][0]["error"].as_str().unwrap();
    assert!(e.contains("two seasons"), "{e}");

    for (pairs, name) in [
        (vec![("method", "arima")], "method"),
        (vec![("method", "holt_winters")], "period"),
        (vec![("level", "1.5")], "level"),
        (vec![("threshold", "lots")], "threshold"),
        (vec![("horizon", "-1h")], "horizon"),
    ] {
        let mut all = vec![
            ("query", "disk_used_gb"),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", "1h"),
        ];
        all.extend(pairs);
        let (status, body) = get(&app, &admin, &all).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{name}\"")),
            "{name}: {body}"
        );
    }

    // Another tenant forecasts its own (no) data; the read is audited.
    app.add_user("acme", "ann", "acme-password-1", Role::Viewer)
        .await;
    let ann = app.bearer("ann", "acme-password-1").await;
    let (status, body) = get(
        &app,
        &ann,
        &[
            ("query", "disk_used_gb"),
            ("start", &start),
            ("end", &end),
            ("step", "1h"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["series"], Value::Array(vec![]));
    let chain = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    assert!(chain.contains("forecast"), "the read is in the audit chain");
}
