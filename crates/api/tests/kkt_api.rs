//! The cash-register routes (`/api/v1/kkt/…`) over a fleet fed with driver events and a log
//! store holding the driver log: the fleet's health and summary, one register, its
//! documents read back from the stored lines; scoped roles see the fleet only when the
//! pack's labels are within their sight; another tenant sees nothing; every read is
//! audited.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn line(ts_ms: i64, reg: &str, rest: &str) -> String {
    format!(
        r#"{{"ts":"{}","kkt":{{"reg_number":"{reg}","driver":"atol10"}},{rest}}}"#,
        dozor_model::time::rfc3339_ns(ts_ms * 1_000_000)
    )
}

#[tokio::test]
async fn fleet_register_documents_and_who_sees_them() {
    let now = dozor_model::time::now_ms();
    let iso = |ms: i64| dozor_model::time::rfc3339_ns(ms * 1_000_000);
    let lines = [
        line(
            now - 60_000,
            "0000000000000001",
            &format!(
                r#""event":"status","fn":{{"number":"9960440300000001","expires_at":"{}","memory_used_ratio":0.4}},"ofd_queue":{{"unsent":40,"first_unsent_at":"{}","last_ack_at":"{}"}},"shift":{{"number":7,"open":true,"opened_at":"{}","receipts":2}}"#,
                iso(now + 200 * DAY_MS),
                iso(now - 26 * DAY_MS),
                iso(now - 26 * DAY_MS),
                iso(now - 3_600_000)
            ),
        ),
        line(
            now - 30_000,
            "0000000000000001",
            r#""event":"document","document":{"fd_number":101,"kind":3,"datetime":"2026-12-07T12:00:00","operation":1,"total_kop":125050,"cash_kop":0,"cashless_kop":125050}"#,
        ),
        line(
            now - 20_000,
            "0000000000000001",
            r#""event":"error","error":{"code":"139"}"#,
        ),
        line(
            now - 10_000,
            "0000000000000002",
            &format!(
                r#""event":"status","fn":{{"expires_at":"{}"}},"ofd_queue":{{"unsent":0}}"#,
                iso(now + 300 * DAY_MS)
            ),
        ),
        // Another register's document mentioning register 1's number in its message.
        line(
            now - 5_000,
            "0000000000000002",
            r#""event":"document","document":{"fd_number":5,"kind":3,"operation":1,"total_kop":1,"datetime":"0000000000000001"}"#,
        ),
    ];
    let fleet = dozor_kkt::Fleet::new(dozor_kkt::FleetOptions::default());
    for l in &lines {
        fleet.apply(dozor_kkt::parse_line(l.as_bytes(), 180).unwrap(), now);
    }
    let settings = dozor_api::routes::kkt::KktSettings {
        tenant: "default".parse().unwrap(),
        fleet: Arc::new(fleet),
        stream: vec![("job".into(), "kkt".into())],
        labels: vec![
            ("data_class".into(), "business".into()),
            ("service".into(), "kkt".into()),
        ],
        utc_offset_min: 180,
    };
    let app = common::app_with_settings(|s| {
        s.kkt = Some(settings);
        s.access.owners.insert("tills".into(), vec!["kkt".into()]);
    })
    .await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    // The driver log in the log store, as the file tail would put it there.
    let body: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({"_time": (now - 60_000 + i as i64 * 1000) * 1_000_000, "job": "kkt", "service": "kkt", "data_class": "business", "_msg": l}).to_string()
        })
        .collect();
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            "/api/v1/logs/ingest?_stream_fields=job,service,data_class",
            Some(&admin),
            Some(body.join("\n")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );

    let (status, v) = app
        .call("GET", "/api/v1/kkt/fleet", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let d = &v["data"];
    assert_eq!(d["summary"]["total"], 2);
    assert_eq!(d["summary"]["critical"], 1, "{d}");
    assert_eq!(d["summary"]["ok"], 1, "{d}");
    let first = &d["registers"][0];
    assert_eq!(first["kkt"], "0000000000000001");
    assert!(
        first["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("OFD backlog 26.0 days"),
        "{first}"
    );

    let (status, one) = app
        .call(
            "GET",
            "/api/v1/kkt/registers/0000000000000001",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["errors"][0]["code"], "139");
    assert_eq!(one["data"]["errors"][0]["category"], "ofd");
    assert_eq!(one["data"]["receipts_amount_kopecks"]["sale"], 125050.0);
    assert_eq!(
        one["data"]["last_error"]["advice"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("deliver")
    );
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/kkt/registers/0000000000000009",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, docs) = app
        .call(
            "GET",
            "/api/v1/kkt/registers/0000000000000001/documents",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{docs}");
    let list = docs["data"]["documents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "only register 1's document: {docs}");
    assert_eq!(list[0]["fd_number"], 101);
    assert_eq!(list[0]["kind"], "receipt");
    assert_eq!(list[0]["operation"], "sale");
    assert_eq!(list[0]["total_kop"], 125050);
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/kkt/registers/0000000000000001/documents?limit=5000",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Scoped roles: business data is the business role's; a developer sees it only when
    // they own the `kkt` service; support sees it.
    for (name, role, sees) in [
        ("biz", Role::Business, true),
        ("tills", Role::Developer, true),
        ("dev", Role::Developer, false),
        ("sup", Role::Support, true),
        ("viewer", Role::Viewer, true),
    ] {
        app.add_user("default", name, "a-long-password-1", role)
            .await;
        let auth = app.bearer(name, "a-long-password-1").await;
        let (status, v) = app
            .call("GET", "/api/v1/kkt/fleet", Some(&auth), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(
            v["data"]["summary"]["total"],
            if sees { 2 } else { 0 },
            "{name}: {v}"
        );
        let (status, docs) = app
            .call(
                "GET",
                "/api/v1/kkt/registers/0000000000000001/documents",
                Some(&auth),
                None,
            )
            .await;
        if sees {
            assert_eq!(
                docs["data"]["documents"].as_array().unwrap().len(),
                1,
                "{name}: {docs}"
            );
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
        }
    }
    // Another tenant's administrator sees none of it.
    app.add_user("other", "oadmin", "a-long-password-1", Role::Admin)
        .await;
    let other = app.bearer("oadmin", "a-long-password-1").await;
    let (_, v) = app
        .call("GET", "/api/v1/kkt/fleet", Some(&other), None)
        .await;
    assert_eq!(v["data"]["registers"], json!([]));
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/kkt/registers/0000000000000001",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every read is in the audit chain, the documents as a log read with its line count.
    let (_, audit) = app
        .call(
            "GET",
            "/api/v1/audit/records?action=kkt.documents",
            Some(&admin),
            None,
        )
        .await;
    let records: Vec<Value> = audit["data"]["records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        records
            .iter()
            .any(|r| r.to_string().contains("\"lines\"") && r["actor"] == "admin"),
        "{audit}"
    );
}
