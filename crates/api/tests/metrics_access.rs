//! `server.metrics_access`: the metrics exports (`/metrics`, `/api/v1/metrics/export`)
//! admit only allowed client addresses (CIDR ranges, v4 and v6), and accept a configured
//! basic-auth account besides tokens (seed 004's IP-allow-listed, basic-auth export).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use dozor_api::auth::{BasicAccount, MetricsAccess};
use tower::ServiceExt;

fn access() -> MetricsAccess {
    MetricsAccess {
        allow: ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect(),
        basic: Some(BasicAccount {
            username: "prometheus".into(),
            password: dozor_api::Secret(b"scrape-secret".to_vec()),
            tenant: dozor_api::TenantId::default_tenant(),
        }),
    }
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// GET `path` as if from `from` (`None`: no address known, as in process).
async fn get(app: &common::TestApp, path: &str, from: Option<&str>, auth: &str) -> StatusCode {
    let mut req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .body(Body::empty())
        .unwrap();
    if let Some(ip) = from {
        let addr = SocketAddr::new(ip.parse().unwrap(), 40_000);
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    app.router.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn only_allowed_addresses_read_the_exports_v4_and_v6() {
    let app = common::app_with_settings(|s| s.metrics_access = access()).await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let cases = [
        (Some("10.1.2.3"), StatusCode::OK),
        (Some("127.0.0.1"), StatusCode::OK),
        (Some("127.0.0.2"), StatusCode::FORBIDDEN),
        (Some("192.168.1.1"), StatusCode::FORBIDDEN),
        (Some("2001:db8::5"), StatusCode::OK),
        (Some("2001:db9::1"), StatusCode::FORBIDDEN),
        (Some("::ffff:10.9.9.9"), StatusCode::OK),
        (Some("::1"), StatusCode::FORBIDDEN),
        (None, StatusCode::FORBIDDEN),
    ];
    for path in ["/metrics", "/api/v1/metrics/export"] {
        for (from, want) in cases {
            assert_eq!(
                get(&app, path, from, &admin).await,
                want,
                "{path} from {from:?}"
            );
        }
    }
    // Other routes are not the export's: the list does not apply to them.
    assert_eq!(
        get(&app, "/api/v1/status", Some("192.168.1.1"), &admin).await,
        StatusCode::OK
    );
    app.state.audit().close().unwrap();
    let chain = std::fs::read_to_string(app.dir.path().join("audit/chain.jsonl")).unwrap();
    let refusals = chain
        .lines()
        .filter(|l| l.contains("\"metrics.export\"") && l.contains("\"denied\""))
        .count();
    assert_eq!(refusals, 10, "every refusal is audited");
    assert!(chain.contains("192.168.1.1"));
}

#[tokio::test]
async fn the_basic_auth_account_reads_the_exports_and_nothing_else() {
    let app = common::app_with_settings(|s| s.metrics_access = access()).await;
    let from = Some("10.0.0.7");
    let good = basic("prometheus", "scrape-secret");
    assert_eq!(get(&app, "/metrics", from, &good).await, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/metrics/export", from, &good).await,
        StatusCode::OK
    );
    for bad in [
        basic("prometheus", "scrape-secreT"),
        basic("Prometheus", "scrape-secret"),
        basic("prometheus", ""),
    ] {
        assert_eq!(
            get(&app, "/metrics", from, &bad).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The account is the export's only.
    assert_eq!(
        get(&app, "/api/v1/status", from, &good).await,
        StatusCode::UNAUTHORIZED
    );
    // From a refused address, even the right account is refused.
    assert_eq!(
        get(&app, "/metrics", Some("172.16.0.1"), &good).await,
        StatusCode::FORBIDDEN
    );
    // Without the setting, the account means nothing.
    let plain = common::app().await;
    assert_eq!(
        get(&plain, "/metrics", from, &good).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn over_real_sockets_the_client_address_decides() {
    let app = common::app_with_settings(|s| {
        s.metrics_access = MetricsAccess {
            allow: vec!["::1/128".parse().unwrap()],
            ..access()
        };
    })
    .await;
    let mut urls = Vec::new();
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app.router.clone();
        tokio::spawn(dozor_api::serve(listener, router, std::future::pending()));
        urls.push(format!("http://{addr}/metrics"));
    }
    let client = reqwest::Client::new();
    let status = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(url)
                .basic_auth("prometheus", Some("scrape-secret"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        status(urls[0].clone()).await,
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(status(urls[1].clone()).await, reqwest::StatusCode::OK);
}
