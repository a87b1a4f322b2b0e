//! Every route of the live router × every role (and an API token) × own and other tenant,
//! against the hand-written `fixtures/role_matrix.txt`: `y` must pass the policy (never
//! 401/403), `n` must be refused with 403. Routes with ids get the ids of tenant `other`'s
//! objects, which no principal of tenant `default` may read or change (404, never 2xx), and
//! no answer may carry tenant `other`'s data; afterwards `other`'s objects are checked
//! untouched.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

const PASSWORD: &str = "matrix-password-2026";
/// A word only tenant `other`'s data holds.
const MARKER: &str = "othertenantsecretmarker";

/// Principals in the fixture's column order.
const COLUMNS: [&str; 10] = [
    "admin",
    "operator",
    "viewer",
    "ingest",
    "auditor",
    "monitoring",
    "support",
    "developer",
    "business",
    "token",
];

struct Row {
    method: String,
    path: String,
    allowed: Vec<bool>,
}

fn fixture() -> Vec<Row> {
    let text = include_str!("fixtures/role_matrix.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 2 + COLUMNS.len(), "bad fixture line: {l}");
            Row {
                method: f[0].to_owned(),
                path: f[1].to_owned(),
                allowed: f[2..]
                    .iter()
                    .map(|c| match *c {
                        "y" => true,
                        "n" => false,
                        other => panic!("bad cell {other:?} in: {l}"),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Ids of tenant `other`'s objects.
struct Theirs {
    rule: String,
    incident: String,
    silence: String,
    token: String,
    dashboard: String,
    report: String,
    report_run: String,
    fraud_event: String,
}

async fn other_tenant(app: &common::TestApp) -> Theirs {
    app.add_user("other", "oadmin", PASSWORD, Role::Admin).await;
    let admin = app.bearer("oadmin", PASSWORD).await;
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(json!({
                "name": format!("{MARKER}_rule"),
                "condition": {"type": "threshold", "metric": "error_rate", "operator": ">", "value": 5},
                "severity": "critical",
                "description": MARKER,
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let rule = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/incidents",
            Some(&admin),
            Some(json!({"title": MARKER, "description": MARKER, "severity": "critical"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let incident = body["data"]["id"].as_str().unwrap().to_owned();
    let ends = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let (s, body) = app
        .call(
            "POST",
            "/api/v2/silences",
            Some(&admin),
            Some(
                json!({"matchers": [{"name": "service", "value": MARKER, "isRegex": false}],
                        "endsAt": ends, "createdBy": MARKER, "comment": MARKER}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let silence = body["silenceID"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": MARKER, "scopes": ["read"]})),
        )
        .await;
    assert!(s.is_success(), "{body}");
    let token = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/dashboards",
            Some(&admin),
            Some(json!({"name": MARKER, "shared": true, "widgets": [{"type": "graph", "query": "up"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let dashboard = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/reports",
            Some(&admin),
            Some(
                json!({"name": MARKER, "description": MARKER, "schedule": {"every": "daily"},
                        "sections": [{"title": MARKER, "kind": "stat", "query": "1"}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let report = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            "POST",
            &format!("/api/v1/reports/{report}/generate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let report_run = body["data"]["id"].as_str().unwrap().to_owned();
    // A scalper of tenant `other`: four purchases of four tickets, a fraud finding.
    let mut fraud_event = String::new();
    for i in 0..4 {
        let (s, body) = app
            .call(
                "POST",
                "/api/v1/analytics/sales/track",
                Some(&admin),
                Some(json!({"eventId": MARKER, "userId": MARKER, "price": 10, "quantity": 4, "ip": "192.0.2.1", "timestamp": 1_796_119_200_000i64 + i})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        if let Some(id) = body["data"]["fraud"][0]["id"].as_str() {
            fraud_event = id.to_owned();
        }
    }
    assert!(!fraud_event.is_empty(), "tenant other has a fraud finding");
    // Metrics and logs only tenant `other` holds.
    let now = dozor_model::time::now_ms();
    app.append(
        "other",
        &[
            ("__name__", "othertenantsecretmarker_total"),
            ("service", MARKER),
        ],
        &[(now - 1000, 1.0)],
    );
    let line = json!({"service": MARKER, "_msg": MARKER}).to_string();
    let (s, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(line))
        .await;
    assert_eq!(s, StatusCode::OK);
    Theirs {
        rule,
        incident,
        silence,
        token,
        dashboard,
        report,
        report_run,
        fraud_event,
    }
}

/// `path` with its parameters filled: ids of tenant `other`'s objects where the route
/// takes one, a plain word elsewhere.
fn concrete(path: &str, theirs: &Theirs) -> String {
    let id = if path.starts_with("/api/v1/alerts/rules/") {
        theirs.rule.as_str()
    } else if path.starts_with("/api/v1/incidents/") {
        theirs.incident.as_str()
    } else if path.starts_with("/api/v2/silence/") {
        theirs.silence.as_str()
    } else if path.starts_with("/api/v1/tokens/") {
        theirs.token.as_str()
    } else if path.starts_with("/api/v1/dashboards/") {
        theirs.dashboard.as_str()
    } else if path.starts_with("/api/v1/fraud/events/") {
        theirs.fraud_event.as_str()
    } else if path.starts_with("/api/v1/reports/history/") {
        theirs.report_run.as_str()
    } else if path.starts_with("/api/v1/reports/") {
        theirs.report.as_str()
    } else {
        // Alerts exist only while a rule fires; any id is another tenant's or none.
        "0123456789abcdef"
    };
    path.replace("{id}", id)
        .replace("{name}", "service")
        .replace("{service}", "shop")
        .replace("{index}", "logs")
        .replace("{signature}", "5VfYtOtherTenantsTransaction")
        // Tenant `other`'s register (common::other_tenants_fleet).
        .replace("{kkt}", MARKER)
}

#[tokio::test]
async fn every_route_for_every_role_and_tenant_matches_the_fixture() {
    let app = common::app().await;
    let theirs = other_tenant(&app).await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let mut principals = Vec::new();
    for name in COLUMNS {
        let auth = match name {
            "admin" => admin.clone(),
            "token" => {
                app.token_bearer(&admin, "matrix", &["ingest", "read"])
                    .await
            }
            role => {
                app.add_user("default", role, PASSWORD, role.parse().unwrap())
                    .await;
                app.bearer(role, PASSWORD).await
            }
        };
        principals.push((name, auth));
    }
    let rows = fixture();

    // The fixture names every route of the live router, and only those.
    let listed: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let live: BTreeSet<(String, String)> = dozor_api::routes::registry()
        .specs()
        .iter()
        .map(|s| (s.method.to_string(), s.path.to_string()))
        .collect();
    assert_eq!(
        listed.difference(&live).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in the fixture, not in the router"
    );
    assert_eq!(
        live.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in the router, not in the fixture"
    );

    let mut wrong = Vec::new();
    for row in &rows {
        let path = concrete(&row.path, &theirs);
        let has_id = row.path.contains("{id}");
        for (i, (name, auth)) in principals.iter_mut().enumerate() {
            let name: &str = name;
            let body =
                matches!(row.method.as_str(), "POST" | "PUT" | "PATCH").then(|| "{}".to_owned());
            let (status, _, bytes) = app
                .call_raw(&row.method, &path, Some(auth.as_str()), body)
                .await;
            let text = String::from_utf8_lossy(&bytes);
            let refused = status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED;
            if row.allowed[i] == refused || (!row.allowed[i] && status != StatusCode::FORBIDDEN) {
                wrong.push(format!(
                    "{} {} as {name}: {status} (fixture: {}) {text:.200}",
                    row.method,
                    path,
                    if row.allowed[i] { "y" } else { "n" }
                ));
            }
            if status.is_success()
                && (text.contains(MARKER)
                    || (has_id && !row.path.starts_with("/api/v1/alerts/{id}")))
            {
                wrong.push(format!(
                    "{} {} as {name}: {status} reached tenant other: {text:.200}",
                    row.method, path
                ));
            }
            // Logging out ends the session: log in again for the next routes.
            if row.path == "/api/v1/auth/logout" && status.is_success() && name != "token" {
                let password = if name == "admin" {
                    common::ADMIN_PASSWORD
                } else {
                    PASSWORD
                };
                *auth = app.bearer(name, password).await;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls differ from fixtures/role_matrix.txt:\n{}",
        wrong.len(),
        rows.len() * principals.len(),
        wrong.join("\n")
    );

    // Tenant `other`'s objects are all still there, unchanged.
    let oadmin = app.bearer("oadmin", PASSWORD).await;
    for path in [
        format!("/api/v1/alerts/rules/{}", theirs.rule),
        format!("/api/v1/incidents/{}", theirs.incident),
        format!("/api/v2/silence/{}", theirs.silence),
        format!("/api/v1/dashboards/{}", theirs.dashboard),
        format!("/api/v1/reports/{}", theirs.report),
        format!("/api/v1/reports/history/{}", theirs.report_run),
        format!("/api/v1/fraud/events/{}", theirs.fraud_event),
    ] {
        let (status, body) = app.call("GET", &path, Some(&oadmin), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.to_string().contains(MARKER), "{path}: {body}");
    }
    let (_, incident) = app
        .call(
            "GET",
            &format!("/api/v1/incidents/{}", theirs.incident),
            Some(&oadmin),
            None,
        )
        .await;
    assert_eq!(incident["data"]["status"], "open", "{incident}");
    let (_, silence) = app
        .call(
            "GET",
            &format!("/api/v2/silence/{}", theirs.silence),
            Some(&oadmin),
            None,
        )
        .await;
    assert_eq!(silence["status"]["state"], "active", "{silence}");
    let (_, tokens) = app.call("GET", "/api/v1/tokens", Some(&oadmin), None).await;
    let listed: Vec<Value> = tokens["data"].as_array().cloned().unwrap_or_default();
    assert!(
        listed
            .iter()
            .any(|t| t["id"] == theirs.token.as_str()
                && t.get("revokedAt").is_some_and(Value::is_null)),
        "{tokens}"
    );
}
