//! The dashboard builder's backend: create, read, change, share, duplicate and delete
//! dashboards; their JSON checked with the bad field named; owners change their own, others
//! see only what is shared, admins all; tenants never see each other's; every step audited.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

const PASSWORD: &str = "dashboard-password-1";

fn board(name: &str) -> Value {
    json!({
        "name": name,
        "description": "shop at a glance",
        "widgets": [
            {"type": "graph", "title": "Requests", "query": "sum(rate(http_requests_total[5m]))"},
            {"type": "stat", "title": "Up", "query": "up"},
            {"type": "logs", "title": "Errors", "query": "{service=\"shop\"} |= \"error\""},
            {"type": "alert-list", "title": "Alerts"}
        ],
        "layout": {"columns": 2},
        "settings": {"range": "24h", "refresh": "30s", "variables": [{"name": "service", "query": "label_values(up, service)"}]}
    })
}

#[tokio::test]
async fn owners_share_duplicate_and_delete_their_dashboards() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    for (name, role) in [
        ("ann", Role::Operator),
        ("bob", Role::Operator),
        ("vic", Role::Viewer),
    ] {
        app.add_user("default", name, PASSWORD, role).await;
    }
    app.add_user("acme", "eve", PASSWORD, Role::Admin).await;
    let ann = app.bearer("ann", PASSWORD).await;
    let bob = app.bearer("bob", PASSWORD).await;
    let vic = app.bearer("vic", PASSWORD).await;
    let eve = app.bearer("eve", PASSWORD).await;

    let (s, made) = app
        .call(
            "POST",
            "/api/v1/dashboards",
            Some(&ann),
            Some(board("Shop")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let d = &made["data"];
    assert_eq!(
        (
            d["owner"].as_str(),
            d["shared"].as_bool(),
            d["version"].as_i64()
        ),
        (Some("ann"), Some(false), Some(1))
    );
    assert_eq!(d["widgets"].as_array().unwrap().len(), 4);
    assert_eq!(d["settings"]["refresh"], "30s");
    let id = d["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/dashboards/{id}");

    // Private: only its owner and admins see it; a viewer cannot make one.
    for (who, status) in [
        (&ann, StatusCode::OK),
        (&admin, StatusCode::OK),
        (&bob, StatusCode::NOT_FOUND),
        (&eve, StatusCode::NOT_FOUND),
    ] {
        let (s, _) = app.call("GET", &path, Some(who), None).await;
        assert_eq!(s, status);
    }
    let (s, _) = app
        .call(
            "POST",
            "/api/v1/dashboards",
            Some(&vic),
            Some(board("Mine")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let names = |v: &Value| -> Vec<String> {
        v["data"]["dashboards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, listed) = app
        .call("GET", "/api/v1/dashboards", Some(&bob), None)
        .await;
    assert!(names(&listed).is_empty());

    // Shared: the tenant sees it, only the owner (or an admin) changes it.
    let mut shared = board("Shop");
    shared["shared"] = json!(true);
    let (s, body) = app
        .call("PUT", &path, Some(&ann), Some(shared.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    let (_, listed) = app
        .call("GET", "/api/v1/dashboards", Some(&vic), None)
        .await;
    assert_eq!(names(&listed), ["Shop"]);
    let (s, _) = app
        .call("PUT", &path, Some(&bob), Some(shared.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.call("DELETE", &path, Some(&bob), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.call("GET", &path, Some(&eve), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "never across tenants");
    let (_, listed) = app
        .call("GET", "/api/v1/dashboards", Some(&eve), None)
        .await;
    assert!(names(&listed).is_empty());

    // Anyone who sees it may copy it; the copy is theirs and private.
    let (s, copy) = app
        .call("POST", &format!("{path}/duplicate"), Some(&bob), None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{copy}");
    assert_eq!(
        (
            copy["data"]["name"].as_str(),
            copy["data"]["owner"].as_str(),
            copy["data"]["shared"].as_bool()
        ),
        (Some("Shop (copy)"), Some("bob"), Some(false))
    );
    assert_eq!(copy["data"]["widgets"], made["data"]["widgets"]);
    let (_, listed) = app
        .call("GET", "/api/v1/dashboards", Some(&bob), None)
        .await;
    assert_eq!(names(&listed), ["Shop", "Shop (copy)"]);
    let (_, listed) = app
        .call("GET", "/api/v1/dashboards", Some(&ann), None)
        .await;
    assert_eq!(names(&listed), ["Shop"]);

    // A bad body is refused before anything is stored, naming the field.
    let mut bad = board("Broken");
    bad["widgets"][2]["query"] = json!("rate(");
    let (s, body) = app.call("PUT", &path, Some(&ann), Some(bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("widgets[2].query:"),
        "{body}"
    );
    let (_, same) = app.call("GET", &path, Some(&ann), None).await;
    assert_eq!(same["data"]["version"], 2);

    // The owner deletes it; then it is gone.
    let (s, _) = app.call("DELETE", &path, Some(&ann), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let actions: Vec<String> = app
        .audit_records()
        .iter()
        .filter_map(|r| {
            r["action"]
                .as_str()
                .filter(|a| a.starts_with("dashboard."))
                .map(str::to_owned)
        })
        .collect();
    for a in [
        "dashboard.create",
        "dashboard.read",
        "dashboard.update",
        "dashboard.list",
        "dashboard.duplicate",
        "dashboard.delete",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}
