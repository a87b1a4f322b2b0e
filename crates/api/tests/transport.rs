//! Transport settings through the real router: secure headers on API and UI answers (HSTS
//! only over TLS, CORS never), the request rate per principal (`server.rate_limit`), and
//! `X-Scope-OrgID` honoured only from `server.trusted_proxies`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// GET `path` as `auth`, from `from` (`None`: no address), with an optional
/// `X-Scope-OrgID`: status, headers and JSON body.
async fn get(
    app: &common::TestApp,
    path: &str,
    auth: &str,
    from: Option<&str>,
    org: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, auth);
    if let Some(o) = org {
        req = req.header("x-scope-orgid", o);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(ip) = from {
        let addr = SocketAddr::new(ip.parse().unwrap(), 40_000);
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let response = app.router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_answer_carries_the_secure_headers_and_no_cors() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    for (path, auth) in [
        ("/api/v1/status", admin.as_str()),
        ("/api/v1/status", "Bearer wrong"),
        ("/", ""),
        ("/healthz", ""),
    ] {
        let (status, h, _) = get(&app, path, auth, None, None).await;
        assert!(status != StatusCode::NOT_FOUND, "{path}: {status}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(
            h.get("strict-transport-security").is_none(),
            "HSTS only over TLS"
        );
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "CORS is off"
        );
    }
    // A cross-origin preflight gets no CORS grant either.
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/api/v1/status")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(req).await.unwrap();
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let tls = common::app_with_settings(|s| s.transport.https = true).await;
    let (_, h, _) = get(&tls, "/healthz", "", None, None).await;
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
}

#[tokio::test]
async fn each_principal_has_its_own_request_rate() {
    let app = common::app_with_settings(|s| {
        s.transport.rate_limit = dozor_api::transport::RateLimit {
            per_second: 1,
            burst: 3,
        };
    })
    .await;
    app.add_user(
        "default",
        "bob",
        "bob-password-long",
        dozor_model::Role::Viewer,
    )
    .await;
    // Logins are not API calls of a principal: they have their own limit.
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let bob = app.bearer("bob", "bob-password-long").await;
    for i in 0..3 {
        let (status, _, _) = get(&app, "/api/v1/auth/me", &admin, None, None).await;
        assert_eq!(status, StatusCode::OK, "request {i} within the burst");
    }
    let (status, h, body) = get(&app, "/api/v1/auth/me", &admin, None, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h[header::RETRY_AFTER], "1");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("server.rate_limit")
    );
    // Another principal is not slowed by the first.
    let (status, _, _) = get(&app, "/api/v1/auth/me", &bob, None, None).await;
    assert_eq!(status, StatusCode::OK);
    // The bucket refills at one a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, _) = get(&app, "/api/v1/auth/me", &admin, None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn x_scope_orgid_switches_the_tenant_only_from_trusted_proxies() {
    let app = common::app_with_settings(|s| {
        s.transport.trusted_proxies =
            vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
    })
    .await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let me = "/api/v1/auth/me";

    for proxy in ["10.2.3.4", "fd00::7", "::ffff:10.9.9.9"] {
        let (status, _, body) = get(&app, me, &admin, Some(proxy), Some("shop")).await;
        assert_eq!(status, StatusCode::OK, "{proxy}");
        assert_eq!(body["data"]["tenant"], "shop", "{proxy}");
    }
    // Without the header, or naming one's own tenant from anywhere: one's own tenant.
    let (_, _, body) = get(&app, me, &admin, Some("10.2.3.4"), None).await;
    assert_eq!(body["data"]["tenant"], "default");
    let (status, _, body) = get(&app, me, &admin, Some("192.168.1.5"), Some("default")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["tenant"], "default");

    // Another tenant from an untrusted peer: refused and audited.
    for peer in [Some("192.168.1.5"), Some("2001:db8::1"), None] {
        let (status, _, body) = get(&app, me, &admin, peer, Some("shop")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{peer:?}");
        assert!(body["error"].as_str().unwrap().contains("trusted_proxies"));
    }
    let denied = app
        .audit_records()
        .into_iter()
        .filter(|r| r["action"] == "auth.tenant" && r["outcome"] == "denied")
        .count();
    assert_eq!(denied, 3);

    // A header that is no tenant id is a 400 naming it.
    let (status, _, body) = get(&app, me, &admin, Some("10.2.3.4"), Some("Shop!")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("X-Scope-OrgID"));

    // Data written through the proxy lands in the asserted tenant only.
    let req = |org: Option<&str>| {
        let mut r = Request::builder()
            .method("POST")
            .uri("/api/v1/logs/ingest")
            .header(header::AUTHORIZATION, admin.as_str())
            .header(header::CONTENT_TYPE, "application/x-ndjson");
        if let Some(o) = org {
            r = r.header("x-scope-orgid", o);
        }
        let mut r = r
            .body(Body::from(
                "{\"_time\":1796119200,\"service\":\"shopfront\",\"_msg\":\"via proxy\"}\n",
            ))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 2, 3, 4], 5000))));
        r
    };
    let response = app.router.clone().oneshot(req(Some("shop"))).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let search =
        "/api/v1/logs/search?query=%7Bservice%3D%22shopfront%22%7D&start=1796119190&end=1796119210";
    let (_, _, shop) = get(&app, search, &admin, Some("10.2.3.4"), Some("shop")).await;
    let (_, _, own) = get(&app, search, &admin, Some("10.2.3.4"), None).await;
    assert_eq!(
        shop["data"]["records"].as_array().unwrap().len(),
        1,
        "{shop}"
    );
    assert_eq!(own["data"]["records"].as_array().unwrap().len(), 0, "{own}");
}
