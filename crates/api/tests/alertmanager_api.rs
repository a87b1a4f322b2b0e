//! Alertmanager's API v2 in process: alerts posted and read back with their state,
//! silences created, changed and expired as Alertmanager changes them, each tenant seeing
//! only its own, scopes enforced, bad input answered 400 naming the field, and every change
//! stored before the answer.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use common::{ADMIN_PASSWORD, TestApp, app};
use dozor_model::Role;
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(method, path, Some(auth), body).await
}

fn in_an_hour() -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    t.to_string()
}

fn silence(matchers: Value) -> Value {
    json!({"matchers": matchers, "endsAt": in_an_hour(), "createdBy": "ops", "comment": "deploy"})
}

#[tokio::test]
async fn alerts_and_silences_per_tenant_with_alertmanagers_rules() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    app.add_user("acme", "ann", "acme-password-1", Role::Admin)
        .await;
    let ann = app.bearer("ann", "acme-password-1").await;

    let alerts = json!([
        {"labels": {"alertname": "Down", "service": "shop"}, "annotations": {"summary": "s"}},
        {"labels": {"alertname": "Slow", "service": "crm"}},
    ]);
    let (status, _) = call(&app, "POST", "/api/v2/alerts", &admin, Some(alerts)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = call(&app, "GET", "/api/v2/alerts", &admin, None).await;
    assert_eq!(got.as_array().unwrap().len(), 2);
    let down = got
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "Down")
        .unwrap();
    assert_eq!(down["status"]["state"], "active");
    assert_eq!(
        down["receivers"],
        json!([{"name": "null"}]),
        "the silent fallback"
    );
    assert_eq!(down["annotations"]["summary"], "s");
    assert_eq!(down["fingerprint"].as_str().unwrap().len(), 16);
    let (_, theirs) = call(&app, "GET", "/api/v2/alerts", &ann, None).await;
    assert_eq!(theirs, json!([]), "another tenant sees none of them");

    // A silence: created, visible only to its tenant, muting its alert.
    let (status, created) = call(
        &app,
        "POST",
        "/api/v2/silences",
        &admin,
        Some(silence(
            json!([{"name": "service", "value": "shop", "isRegex": false}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["silenceID"].as_str().unwrap().to_owned();
    let (_, got) = call(&app, "GET", "/api/v2/alerts?silenced=false", &admin, None).await;
    let names: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Slow"],
        "silenced=false leaves the silenced alert out"
    );
    let (_, got) = call(
        &app,
        "GET",
        "/api/v2/alerts?filter=alertname%3D%22Down%22",
        &admin,
        None,
    )
    .await;
    assert_eq!(got[0]["status"]["silencedBy"], json!([id]));
    assert_eq!(got[0]["status"]["state"], "suppressed");
    let (status, _) = call(&app, "GET", &format!("/api/v2/silence/{id}"), &ann, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not across tenants");
    let (status, _) = call(&app, "DELETE", &format!("/api/v2/silence/{id}"), &ann, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not across tenants");
    let stored = app.state.store().all_silences().await.unwrap();
    assert_eq!(stored.len(), 1, "stored before the answer");
    assert_eq!(stored[0].0.as_str(), "default");

    // Extending in place keeps the id; changing the matchers of an active silence makes a
    // new one and expires the old.
    let mut longer = silence(json!([{"name": "service", "value": "shop"}]));
    longer["id"] = json!(id);
    let (_, one) = call(&app, "GET", &format!("/api/v2/silence/{id}"), &admin, None).await;
    longer["startsAt"] = one["startsAt"].clone();
    let (_, same) = call(&app, "POST", "/api/v2/silences", &admin, Some(longer)).await;
    assert_eq!(same["silenceID"], id.as_str());
    let mut other = silence(json!([{"name": "service", "value": "crm"}]));
    other["id"] = json!(id);
    let (_, changed) = call(&app, "POST", "/api/v2/silences", &admin, Some(other)).await;
    let new_id = changed["silenceID"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (_, old) = call(&app, "GET", &format!("/api/v2/silence/{id}"), &admin, None).await;
    assert_eq!(old["status"]["state"], "expired");
    let (_, list) = call(
        &app,
        "GET",
        "/api/v2/silences?filter=service%3D%22crm%22",
        &admin,
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], new_id);

    // Expire, then expire again.
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/api/v2/silence/{new_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/api/v2/silence/{new_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let stored = app.state.store().all_silences().await.unwrap();
    assert!(
        stored
            .iter()
            .all(|(_, s)| s.ends_at_ms <= dozor_model::time::now_ms()),
        "both expired in the store"
    );

    // The audit chain holds the changes and the reads.
    let log = std::fs::read_to_string(app.dir.path().join("audit").join("chain.jsonl")).unwrap();
    assert!(
        !log.contains("alerts.post"),
        "posted alerts are data, not audited"
    );
    for action in [
        "silence.create",
        "silence.update",
        "silence.expire",
        "alertmanager.silences",
    ] {
        assert!(log.contains(action), "{action} audited");
    }
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_scopes_hold() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    for (body, want) in [
        (json!({"labels": {}}), "body: a JSON array"),
        (json!([{"labels": {}}]), "[0].labels"),
        (json!([{"labels": {"a": 1}}]), "[0].labels.a"),
        (
            json!([{"labels": {"a": "b"}, "startsAt": "soon"}]),
            "[0].startsAt",
        ),
        (
            json!([{"labels": {"a": "b"}, "startsAt": "2026-12-07T10:00:00Z", "endsAt": "2026-12-07T09:00:00Z"}]),
            "[0].endsAt",
        ),
        (
            json!([{"labels": {"a": "b"}, "generatorURL": 5}]),
            "[0].generatorURL",
        ),
    ] {
        let (status, got) = call(&app, "POST", "/api/v2/alerts", &admin, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            got["error"].as_str().unwrap().contains(want),
            "{body}: {got}"
        );
    }
    for (body, want) in [
        (
            json!({"matchers": [], "endsAt": in_an_hour(), "createdBy": "a", "comment": "c"}),
            "matchers",
        ),
        (
            json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}], "endsAt": in_an_hour(), "createdBy": "a", "comment": "c"}),
            "empty string",
        ),
        (
            json!({"matchers": [{"name": "a", "value": "b"}], "createdBy": "a", "comment": "c"}),
            "endsAt",
        ),
        (
            json!({"matchers": [{"name": "a", "value": "b"}], "endsAt": in_an_hour(), "comment": "c"}),
            "createdBy",
        ),
        (
            json!({"matchers": [{"value": "b"}], "endsAt": in_an_hour(), "createdBy": "a", "comment": "c"}),
            "matchers[0].name",
        ),
        (
            json!({"id": "nope", "matchers": [{"name": "a", "value": "b"}], "endsAt": in_an_hour(), "createdBy": "a", "comment": "c"}),
            "not found",
        ),
    ] {
        let (status, got) =
            call(&app, "POST", "/api/v2/silences", &admin, Some(body.clone())).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{body}: {status}"
        );
        assert!(
            got["error"].as_str().unwrap().contains(want),
            "{body}: {got}"
        );
    }
    let (status, got) = call(&app, "GET", "/api/v2/alerts?filter=%7Ba%3D", &admin, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
    assert!(
        app.state.store().all_silences().await.unwrap().is_empty(),
        "nothing stored"
    );

    // An ingest token posts alerts but neither reads them nor silences.
    let pusher = app.token_bearer(&admin, "prometheus", &["ingest"]).await;
    let (status, _) = call(
        &app,
        "POST",
        "/api/v2/alerts",
        &pusher,
        Some(json!([{"labels": {"a": "b"}}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "GET", "/api/v2/alerts", &pusher, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reader = app.token_bearer(&admin, "grafana", &["read"]).await;
    let (status, _) = call(
        &app,
        "POST",
        "/api/v2/silences",
        &reader,
        Some(silence(json!([{"name": "a", "value": "b"}]))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, groups) = call(&app, "GET", "/api/v2/alerts/groups", &reader, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups[0]["receiver"]["name"], "null");
    assert_eq!(groups[0]["alerts"][0]["labels"]["a"], "b");
    let (_, status_body) = call(&app, "GET", "/api/v2/status", &reader, None).await;
    assert_eq!(status_body["cluster"]["status"], "disabled");
    assert!(
        status_body["config"]["original"]
            .as_str()
            .unwrap()
            .contains("null")
    );
}

#[tokio::test]
async fn a_change_the_store_refuses_is_undone_and_answered_with_an_error() {
    let app = app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, kept) = call(
        &app,
        "POST",
        "/api/v2/silences",
        &admin,
        Some(silence(
            json!([{"name": "service", "value": "crm", "isRegex": false}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let kept = kept["silenceID"].as_str().unwrap().to_owned();

    // The state store breaks (a closed pool refuses every query); access tokens are
    // checked without it, so requests still reach the silences.
    app.state.store().close().await;
    let (status, body) = call(
        &app,
        "POST",
        "/api/v2/silences",
        &admin,
        Some(silence(
            json!([{"name": "service", "value": "shop", "isRegex": false}]),
        )),
    )
    .await;
    assert!(status.is_server_error(), "{status}: {body}");
    let mut changed = silence(json!([{"name": "service", "value": "crm", "isRegex": false}]));
    changed["id"] = json!(kept);
    changed["comment"] = json!("changed");
    let (status, body) = call(&app, "POST", "/api/v2/silences", &admin, Some(changed)).await;
    assert!(status.is_server_error(), "{status}: {body}");
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/api/v2/silence/{kept}"),
        &admin,
        None,
    )
    .await;
    assert!(status.is_server_error(), "{status}: {body}");

    // None of the three took: what is served is what was stored.
    let (status, list) = call(&app, "GET", "/api/v2/silences", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "the refused silence is gone: {list:?}");
    assert_eq!(list[0]["id"], kept);
    assert_eq!(list[0]["comment"], "deploy", "the refused change is undone");
    assert_eq!(
        list[0]["status"]["state"], "active",
        "the refused expiry is undone"
    );
}
