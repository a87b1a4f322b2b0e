//! The audit chain over the API: applications' events through the filters and masks,
//! search by user, action, resource, time and request id, export as JSON lines, the
//! auditor role, and the tenant boundary.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::ADMIN_PASSWORD;
use dozor_api::routes::audit::{AuditPolicy, CategoryFilter, Preset, Severity};
use dozor_model::Role;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Seed 003's `audit_filters.yaml`, with the PCI DSS preset.
fn policy() -> AuditPolicy {
    let filters = HashMap::from([
        (
            "authentication".to_owned(),
            CategoryFilter {
                min_severity: Severity::Info,
                actions: vec!["login".into(), "logout".into(), "token_refresh".into()],
                resources: vec!["auth".into()],
            },
        ),
        (
            "data_access".to_owned(),
            CategoryFilter {
                min_severity: Severity::Info,
                actions: vec!["read".into(), "write".into(), "delete".into()],
                resources: vec!["data".into()],
            },
        ),
    ]);
    AuditPolicy::build(&[Preset::PciDss], filters, &["Customer_Email".to_owned()])
}

async fn records(app: &common::TestApp, auth: &str, query: &str) -> (StatusCode, Value) {
    app.call(
        "GET",
        &format!("/api/v1/audit/records?{query}"),
        Some(auth),
        None,
    )
    .await
}

#[tokio::test]
async fn applications_events_pass_the_filters_are_masked_and_found_again() {
    let app = common::app_with_settings(|s| s.audit = policy()).await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let shop = app.token_bearer(&admin, "shop-backend", &["ingest"]).await;
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/audit/events",
            Some(&shop),
            Some(json!({
                "event_type": "authentication", "action": "login", "user_id": "user123",
                "severity": "info", "resource": "auth",
                "details": {"ip_address": "192.168.1.1", "success": true}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["recorded"], 1);
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/audit/events",
            Some(&shop),
            Some(json!([
                // Kept: payment data, with the card and the e-mail masked.
                {"event_type": "data_access", "action": "read", "user_id": "clerk7",
                 "resource": "data", "severity": "warning",
                 "details": {"card_number": "4111111111111111", "customer": {"customer_email": "a@b.ru"}, "rows": 3}},
                // Dropped: below the category's least severity.
                {"event_type": "authentication", "action": "login", "user_id": "u2",
                 "resource": "auth", "severity": "debug"},
                // Dropped: an action the filter does not list.
                {"event_type": "data_access", "action": "export", "user_id": "u3", "resource": "data"},
                // Kept: a category without a filter.
                {"event_type": "billing", "action": "refund", "user_id": "u4", "outcome": "failure"}
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"recorded": 2, "filtered": 2, "masked_fields": 2})
    );

    // An ingest token cannot read the chain back.
    let (status, _) = records(&app, &shop, "category=data_access").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, found) = records(&app, &admin, "category=data_access").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let list = found["data"]["records"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let r = &list[0];
    assert_eq!(r["actor"], "clerk7");
    assert_eq!(r["severity"], "warning");
    assert_eq!(r["target"], "data");
    assert!(
        r["details"]["reported_by"]
            .as_str()
            .unwrap()
            .starts_with("token:")
    );
    let text = r.to_string();
    assert!(
        !text.contains("4111111111111111") && !text.contains("a@b.ru"),
        "{text}"
    );
    assert!(
        r["details"]["card_number"]
            .as_str()
            .unwrap()
            .starts_with("masked:")
    );
    assert_eq!(r["details"]["rows"], 3);
    let (_, failed) = records(&app, &admin, "outcome=failure&actor=u4").await;
    assert_eq!(failed["data"]["records"][0]["category"], "billing");
    // Nothing of the dropped events reached the chain.
    app.state.audit().close().unwrap();
    let chain = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    assert!(!chain.contains("\"u2\"") && !chain.contains("\"u3\""));
    assert!(!chain.contains("4111111111111111"));
}

#[tokio::test]
async fn bad_events_get_400_naming_the_field() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let cases = [
        (
            json!([{"event_type": "a", "action": "b", "user_id": "c"},
                   {"event_type": "a", "action": "b", "user_id": "c", "severity": "loud"}]),
            "[1].severity",
        ),
        (
            json!({"event_type": "", "action": "b", "user_id": "c"}),
            "event_type",
        ),
        (json!({"event_type": "a", "action": "b"}), "user_id"),
        (
            json!({"event_type": "a", "action": "b", "user_id": "c", "colour": 1}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app
            .call(
                "POST",
                "/api/v1/audit/events",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(field), "{body}: {error}");
    }
}

#[tokio::test]
async fn a_request_id_correlates_the_records_of_one_request() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/tokens")
        .header(header::AUTHORIZATION, &admin)
        .header("x-request-id", "corr-42")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"name": "ci", "scopes": ["read"]}).to_string(),
        ))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()["x-request-id"], "corr-42");
    // Without one, the server makes one up and says which.
    let req = Request::builder()
        .uri("/api/v1/auth/me")
        .header(header::AUTHORIZATION, &admin)
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 32, "{made}");
    let (_, found) = records(&app, &admin, "request_id=corr-42").await;
    let list = found["data"]["records"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{found}");
    assert_eq!(list[0]["action"], "token.create");
}

#[tokio::test]
async fn search_pages_filters_by_time_and_action_area_and_stays_in_its_tenant() {
    let app = common::app().await;
    app.add_user("other", "olga", "olga-password-1", Role::Admin)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    for _ in 0..3 {
        app.login("admin", ADMIN_PASSWORD).await;
    }
    let olga = app.bearer("olga", "olga-password-1").await;
    let (_, all) = records(&app, &admin, "action=auth.*&limit=2").await;
    let page = all["data"]["records"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|r| r["tenant"] == "default"));
    let before = all["data"]["next_before"].as_u64().unwrap();
    let (_, next) = records(
        &app,
        &admin,
        &format!("action=auth.*&limit=100&before={before}"),
    )
    .await;
    let rest = next["data"]["records"].as_array().unwrap();
    // Four logins of admin in all (the bearer's and three more), two on the first page.
    assert_eq!(page.len() + rest.len(), 4, "{next}");
    assert!(rest.iter().all(|r| r["seq"].as_u64().unwrap() < before));
    // Olga's tenant sees only its own records.
    let (_, hers) = records(&app, &olga, "action=auth.login").await;
    let hers = hers["data"]["records"].as_array().unwrap();
    assert_eq!(hers.len(), 1);
    assert_eq!(hers[0]["actor"], "olga");
    // A time window in the future holds nothing; a bad time is a 400 naming it.
    let (_, none) = records(&app, &admin, "start=4102444800").await;
    assert!(none["data"]["records"].as_array().unwrap().is_empty());
    let (status, bad) = records(&app, &admin, "start=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().starts_with("start:"));
    let (status, _) = records(&app, &admin, "limit=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Searching is itself on the record.
    let (_, searches) = records(&app, &admin, "action=audit.search").await;
    assert!(!searches["data"]["records"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_export_is_json_lines_that_still_verify_and_auditors_read_only_the_chain() {
    let app = common::app().await;
    app.add_user("default", "ada", "ada-auditor-pass", Role::Auditor)
        .await;
    app.add_user("default", "vic", "vic-viewer-pass", Role::Viewer)
        .await;
    let auditor = app.bearer("ada", "ada-auditor-pass").await;
    let viewer = app.bearer("vic", "vic-viewer-pass").await;
    let req = Request::builder()
        .uri("/api/v1/audit/export?action=auth.login")
        .header(header::AUTHORIZATION, &auditor)
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/x-ndjson");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in lines {
        let r: dozor_audit::Record = serde_json::from_str(line).unwrap();
        assert_eq!(r.action, "auth.login");
        assert_eq!(
            r.compute_hash(),
            r.hash,
            "an exported record no longer verifies"
        );
    }
    for path in ["/api/v1/audit/verify", "/api/v1/audit/records"] {
        let (status, _) = app.call("GET", path, Some(&auditor), None).await;
        assert_eq!(status, StatusCode::OK, "auditor on {path}");
        let (status, _) = app.call("GET", path, Some(&viewer), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer on {path}");
    }
    for (method, path) in [
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/audit/events"),
    ] {
        let (status, _) = app
            .call(method, path, Some(&auditor), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "auditor on {method} {path}");
    }
    let (_, exports) = records(&app, &auditor, "action=audit.export").await;
    let e = &exports["data"]["records"][0];
    assert_eq!(e["actor"], "ada");
    assert_eq!(e["details"]["records"], 2);
}
