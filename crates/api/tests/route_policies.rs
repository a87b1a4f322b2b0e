//! Every route has the policy the fixture says, every non-public route refuses anonymous
//! callers, and a route that bypassed the registry is refused even to an administrator.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::routing::get;

fn fixture() -> BTreeSet<(String, String, String)> {
    include_str!("fixtures/route_policies.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad fixture line {l:?}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

fn registered() -> BTreeSet<(String, String, String)> {
    dozor_api::routes::registry()
        .specs()
        .iter()
        .map(|s| {
            (
                s.method.to_string(),
                s.path.to_owned(),
                s.policy.to_string(),
            )
        })
        .collect()
}

#[test]
fn every_registered_route_matches_the_fixture() {
    let fixture = fixture();
    let registered = registered();
    let unlisted: Vec<_> = registered.difference(&fixture).collect();
    let missing: Vec<_> = fixture.difference(&registered).collect();
    assert!(
        unlisted.is_empty(),
        "routes registered but not in fixtures/route_policies.txt (or with another policy): {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "routes in the fixture but not registered: {missing:?}"
    );
}

/// Only health checks and the endpoints that hand out credentials are public.
#[test]
fn the_public_routes_are_exactly_the_expected_few() {
    let public: Vec<String> = registered()
        .into_iter()
        .filter(|(_, _, p)| p == "public")
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        public,
        [
            "GET /api/v1/auth/oidc/callback",
            "GET /api/v1/auth/oidc/login",
            "GET /healthz",
            "GET /readyz",
            "POST /api/v1/auth/login",
            "POST /api/v1/auth/refresh",
            // Authenticated by the chats' own signatures and secret tokens.
            "POST /api/v1/integrations/slack/interactions",
            "POST /api/v1/integrations/telegram"
        ]
    );
}

#[tokio::test]
async fn every_non_public_route_refuses_anonymous_requests() {
    let app = common::app().await;
    let mut checked = 0;
    for (method, path, policy) in registered() {
        let concrete = path.replace("{id}", "0123456789abcdef");
        let (status, headers, body) = app
            .call_raw(&method, &concrete, None, Some("{}".into()))
            .await;
        if policy == "public" {
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is public"
            );
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} answered {status} to an anonymous caller"
        );
        assert!(headers.contains_key("www-authenticate"), "{method} {path}");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errorType"], "unauthorized");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} routes checked");
}

#[tokio::test]
async fn garbage_credentials_are_refused_on_every_non_public_route() {
    let app = common::app().await;
    for (method, path, policy) in registered() {
        if policy == "public" {
            continue;
        }
        let concrete = path.replace("{id}", "x");
        for auth in [
            "Bearer not.a.jwt",
            "Bearer dzr_unknown",
            "Basic Zm9vOmJhcg==",
            "Token abc",
        ] {
            let (status, _, _) = app.call_raw(&method, &concrete, Some(auth), None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_route_that_bypassed_the_registry_is_refused_even_to_an_admin() {
    let base = common::app().await;
    let (policies, router) = dozor_api::routes::registry().into_parts();
    let sneaky = router.route("/api/v1/sneaky", get(|| async { "secret data" }));
    let router = dozor_api::app_from_parts(base.state.clone(), policies, sneaky);
    let app = common::TestApp { router, ..base };
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let (status, body) = app.call("GET", "/api/v1/sneaky", Some(&admin), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no access policy"));
    // The registered routes still work for the same admin.
    assert_eq!(
        app.call("GET", "/api/v1/status", Some(&admin), None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_api_paths_get_json_404_and_ui_paths_get_html() {
    let app = common::app().await;
    let (status, body) = app.call("GET", "/api/v1/does-not-exist", None, None).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, headers, _) = app.call_raw("GET", "/status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (status, _, _) = app.call_raw("GET", "/assets/missing.js", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
