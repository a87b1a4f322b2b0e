//! `/readyz` follows the state store; `/healthz` only the process.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_state::Store;
use dozor_state::test_support::TempDatabase;

#[tokio::test]
async fn readyz_fails_when_the_postgres_state_store_goes_away() {
    let db = TempDatabase::create().await.unwrap();
    let app = common::app_on(Store::open(db.url()).await.unwrap()).await;
    let (status, body) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    db.drop_now().await.unwrap();
    let (status, body) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready"))
    );
    let (status, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_fails_when_nothing_listens_at_the_state_url() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Store::open_lazy(&format!("postgres://postgres@127.0.0.1:{port}/none")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_on(store, dir.path());
    let app = common::TestApp {
        router: dozor_api::app(state.clone()),
        state,
        dir,
    };
    let (status, _) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
