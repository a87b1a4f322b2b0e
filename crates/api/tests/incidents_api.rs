//! Incidents through the API in process: opened by hand, acknowledged, annotated, resolved
//! and reopened with each step on the timeline and in the audit chain; changes checked
//! field by field; tenants kept apart; the dashboard's counts and mean times.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use common::{ADMIN_PASSWORD, app};
use dozor_model::Role;
use serde_json::json;

#[tokio::test]
async fn an_incident_goes_through_its_life_on_the_timeline() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, created) = app
        .call(
            "POST",
            "/api/v1/incidents",
            Some(&admin),
            Some(json!({"title": "Checkout fails", "description": "5xx on /pay", "severity": "critical", "service_name": "shop"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["status"], "open");
    assert_eq!(created["data"]["created_by"], "admin");

    let path = |p: &str| format!("/api/v1/incidents/{id}{p}");
    let (status, acked) = app
        .call(
            "POST",
            &path("/acknowledge"),
            Some(&admin),
            Some(json!({"comment": "looking"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["data"]["status"], "acknowledged");
    assert_eq!(acked["data"]["acknowledged_by"], "admin");
    let (status, _) = app
        .call("POST", &path("/acknowledge"), Some(&admin), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only an open incident is acknowledged"
    );
    let (status, _) = app
        .call(
            "POST",
            &path("/notes"),
            Some(&admin),
            Some(json!({"text": "rolled back v2.3"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .call(
            "PUT",
            &path(""),
            Some(&admin),
            Some(json!({"postmortem": "a bad deploy", "severity": "warning"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, resolved) = app
        .call("POST", &path("/resolve"), Some(&admin), None)
        .await;
    assert_eq!(resolved["data"]["status"], "resolved");
    let (_, reopened) = app
        .call(
            "POST",
            &path("/reopen"),
            Some(&admin),
            Some(json!({"comment": "again"})),
        )
        .await;
    assert_eq!(reopened["data"]["status"], "open");
    assert_eq!(reopened["data"]["resolved_at"], serde_json::Value::Null);

    let (_, one) = app.call("GET", &path(""), Some(&admin), None).await;
    let d = &one["data"];
    assert_eq!(d["postmortem"], "a bad deploy");
    assert_eq!(d["severity"], "warning");
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "status",
            "acknowledged",
            "note",
            "postmortem",
            "status",
            "status"
        ]
    );
    assert_eq!(d["timeline"][2]["text"], "rolled back v2.3");
    assert_eq!(d["timeline"][2]["actor"], "admin");
    assert_eq!(d["timeline"][5]["text"], "reopened: again");

    let log = std::fs::read_to_string(app.dir.path().join("audit").join("chain.jsonl")).unwrap();
    for action in [
        "incident.create",
        "incident.acknowledge",
        "incident.note",
        "incident.update",
        "incident.resolve",
        "incident.reopen",
        "incident.read",
    ] {
        assert!(log.contains(action), "{action} audited");
    }

    // The dashboard counts it; another tenant sees nothing of it.
    let (_, dash) = app
        .call("GET", "/api/v1/dashboard/incidents", Some(&admin), None)
        .await;
    assert_eq!(dash["data"]["total"], 1);
    assert_eq!(dash["data"]["by_status"]["open"], 1);
    assert_eq!(dash["data"]["by_severity"]["warning"], 1);
    assert!(dash["data"]["mtta_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(dash["data"]["open"][0]["id"], id.as_str());
    app.add_user("acme", "ann", "acme-password-1", Role::Admin)
        .await;
    let ann = app.bearer("ann", "acme-password-1").await;
    let (status, _) = app.call("GET", &path(""), Some(&ann), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = app.call("GET", "/api/v1/incidents", Some(&ann), None).await;
    assert_eq!(theirs["data"]["incidents"], json!([]));
    let (status, _) = app.call("DELETE", &path(""), Some(&ann), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not across tenants");

    let (status, _) = app.call("DELETE", &path(""), Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call("GET", &path(""), Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_incident_input_names_the_field_and_readers_cannot_write() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    for (body, want) in [
        (json!({}), "title: required"),
        (json!({"title": 5}), "title: a string"),
        (
            json!({"title": "x", "severity": "loud"}),
            "severity: one of",
        ),
        (json!([1]), "body: a JSON object"),
    ] {
        let (status, got) = app
            .call(
                "POST",
                "/api/v1/incidents",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            got["error"].as_str().unwrap().contains(want),
            "{body}: {got}"
        );
    }
    let (_, created) = app
        .call(
            "POST",
            "/api/v1/incidents",
            Some(&admin),
            Some(json!({"title": "x"})),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    let (status, got) = app
        .call(
            "PUT",
            &format!("/api/v1/incidents/{id}"),
            Some(&admin),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        got["error"].as_str().unwrap().starts_with("status:"),
        "{got}"
    );
    let (status, _) = app
        .call("GET", "/api/v1/incidents?status=closed", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/notes"),
            Some(&admin),
            Some(json!({"text": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reader = app.token_bearer(&admin, "viewer", &["read"]).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/incidents",
            Some(&reader),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = app
        .call("GET", "/api/v1/incidents?status=open", Some(&reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"]["incidents"].as_array().unwrap().len(), 1);
}
