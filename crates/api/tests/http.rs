//! HTTP plumbing every route shares: response compression and its negotiation.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get_encoded(
    app: &common::TestApp,
    auth: &str,
    accept: Option<&str>,
) -> (StatusCode, Option<String>, usize) {
    let mut req = Request::builder()
        .uri("/metrics")
        .header(header::AUTHORIZATION, auth);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT_ENCODING, a);
    }
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let encoding = res
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_owned());
    let len = res.into_body().collect().await.unwrap().to_bytes().len();
    (status, encoding, len)
}

#[tokio::test]
async fn responses_are_compressed_as_the_client_asks() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let (status, plain, plain_len) = get_encoded(&app, &admin, None).await;
    assert_eq!((status, plain), (StatusCode::OK, None));
    let (_, gzip, gzip_len) = get_encoded(&app, &admin, Some("gzip")).await;
    assert_eq!(gzip.as_deref(), Some("gzip"));
    let (_, zstd, zstd_len) = get_encoded(&app, &admin, Some("zstd")).await;
    assert_eq!(zstd.as_deref(), Some("zstd"));
    assert!(
        gzip_len < plain_len && zstd_len < plain_len,
        "plain {plain_len}, gzip {gzip_len}, zstd {zstd_len}"
    );
}
