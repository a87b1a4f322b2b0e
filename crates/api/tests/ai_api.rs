//! `/api/v1/ai/error-clusters`: error lines grouped by template with counts, first and last
//! seen, samples, services and registers; `min_cluster_size` and the role's view apply.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;

use axum::http::StatusCode;
use dozor_api::visibility::AccessPolicy;
use dozor_model::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn error_lines_cluster_by_template_with_their_services_and_registers() {
    let app = common::app_with_settings(|s| {
        s.access = AccessPolicy {
            owners: HashMap::from([("dev".to_owned(), vec!["shop".to_owned()])]),
            ..AccessPolicy::default()
        };
    })
    .await;
    app.add_user("default", "dev", "developer-password-1", Role::Developer)
        .await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms() / 1000;
    let mut lines = Vec::new();
    for i in 0..8 {
        lines.push(
            json!({"_time": now - 100 + i, "_stream": {"service": "shop", "level": "error"},
            "_msg": format!("payment failed for order {} after {} ms", 1000 + i, 200 + 17 * i)}),
        );
    }
    for i in 0..6 {
        lines.push(json!({"_time": now - 50 + i, "_stream": {"service": "kkt", "level": "error", "register": format!("000{}", i % 3)},
            "_msg": format!("fiscal drive memory {}% full on register 000{}", 90 + i, i % 3)}));
    }
    for i in 0..2 {
        lines.push(json!({"_time": now - 10 + i, "_stream": {"service": "crm", "level": "error"}, "_msg": "disk quota exceeded"}));
    }
    lines.push(json!({"_time": now - 5, "_stream": {"service": "shop", "level": "info"}, "_msg": "order 7 paid"}));
    let body = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let (s, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = app
        .call("GET", "/api/v1/ai/error-clusters", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let d = &body["data"];
    assert_eq!(d["linesScanned"], 16, "info lines are not errors");
    let clusters = d["clusters"].as_array().unwrap();
    assert_eq!(
        clusters.len(),
        2,
        "the rare error is under min_cluster_size: {body}"
    );
    let (pay, fn_) = (&clusters[0], &clusters[1]);
    assert_eq!(pay["count"], 8);
    assert!(
        pay["template"]
            .as_str()
            .unwrap()
            .starts_with("payment failed for order"),
        "{pay}"
    );
    assert!(pay["template"].as_str().unwrap().contains("<*>"), "{pay}");
    assert_eq!(pay["services"], json!(["shop"]));
    assert_eq!(pay["samples"].as_array().unwrap().len(), 3);
    assert!(pay["firstSeen"].as_str() < pay["lastSeen"].as_str());
    assert_eq!(fn_["count"], 6);
    assert_eq!(fn_["services"], json!(["kkt"]));
    assert_eq!(fn_["registers"], json!(["0000", "0001", "0002"]));

    // Ids stay from one call to the next; a smaller minimum shows the rare error.
    let (_, again) = app
        .call(
            "GET",
            "/api/v1/ai/error-clusters?min_cluster_size=1",
            Some(&admin),
            None,
        )
        .await;
    let again = again["data"]["clusters"].as_array().unwrap().clone();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0]["id"], pay["id"]);
    assert_eq!(again[2]["template"], "disk quota exceeded");

    // A developer of the shop sees the shop's cluster only.
    let dev = app.bearer("dev", "developer-password-1").await;
    let (_, theirs) = app
        .call(
            "GET",
            "/api/v1/ai/error-clusters?min_cluster_size=1",
            Some(&dev),
            None,
        )
        .await;
    let theirs = theirs["data"]["clusters"].as_array().unwrap().clone();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["id"], pay["id"]);

    // Bad parameters are named; the read is audited.
    for (q, name) in [
        ("since=1s", "since"),
        ("min_cluster_size=0", "min_cluster_size"),
        (
            "query=sum%28rate%28%7Ba%3D%22b%22%7D%5B1m%5D%29%29",
            "query",
        ),
    ] {
        let (s, body) = app
            .call(
                "GET",
                &format!("/api/v1/ai/error-clusters?{q}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert!(body["error"].as_str().unwrap().contains(name), "{body}");
    }
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "logs.error_clusters")
    );
}
