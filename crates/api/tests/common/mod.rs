//! A Dozor API in process, on a fresh SQLite state store and audit chain, driven with
//! `tower::ServiceExt::oneshot` (no sockets needed for routing and policy checks).

#![allow(dead_code, clippy::unwrap_used)] // Shared by several test crates; a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dozor_api::{ApiSettings, AppState, JwtKeys, SelfMetrics};
use dozor_audit::AuditLog;
use dozor_model::{Role, TenantId};
use dozor_state::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub router: Router,
}

/// An app over `store`, with an admin `admin` in tenant `default`.
pub async fn app_on(store: Store) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on(store, dir.path());
    let router = dozor_api::app(state.clone());
    let app = TestApp { dir, state, router };
    app.add_user("default", "admin", ADMIN_PASSWORD, Role::Admin)
        .await;
    app
}

/// A second node over the same state store (its own audit chain and caches, no new users).
pub async fn app_on_shared(store: Store) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on(store, dir.path());
    let router = dozor_api::app(state.clone());
    TestApp { dir, state, router }
}

/// Test settings: small bodies, default limits.
pub fn settings(dir: &std::path::Path) -> ApiSettings {
    ApiSettings {
        data_dir: dir.to_owned(),
        max_body_bytes: 64 * 1024,
        refresh_ttl: Duration::from_secs(3600),
        auth: dozor_api::AuthPolicy::default(),
        metrics_access: Default::default(),
        transport: Default::default(),
        access: Default::default(),
        oidc: None,
        llm: None,
        slos: Vec::new(),
        audit: Default::default(),
        ingest_limits: dozor_api::IngestLimits::default(),
        max_concurrent_ingest: 4,
        query: dozor_api::QueryLimits::default(),
        pii: dozor_ingest::pii::PiiConfig::default(),
        pii_salt: dozor_api::Secret(b"test-salt".to_vec()),
        pipeline: Default::default(),
        sources: Default::default(),
        rules: Default::default(),
        forward: Default::default(),
        notifications: Default::default(),
        chat: Default::default(),
        incident_changes: tokio::sync::broadcast::channel(16).0,
        kkt: Some(other_tenants_fleet()),
    }
}

/// A cash-register fleet of tenant `other`, with one register named
/// `othertenantsecretmarker`: no principal of another tenant may see it.
pub fn other_tenants_fleet() -> dozor_api::routes::kkt::KktSettings {
    let fleet = dozor_kkt::Fleet::new(dozor_kkt::FleetOptions::default());
    let line = br#"{"ts":1796119200,"kkt":{"reg_number":"othertenantsecretmarker"},"event":"status","ofd_queue":{"unsent":0}}"#;
    fleet.apply(dozor_kkt::parse_line(line, 180).unwrap(), 1_796_119_200_000);
    dozor_api::routes::kkt::KktSettings {
        tenant: "other".parse().unwrap(),
        fleet: Arc::new(fleet),
        stream: vec![("job".into(), "kkt".into())],
        labels: vec![("service".into(), "kkt".into())],
        utc_offset_min: 180,
    }
}

/// State over `store`, with the audit chain and tsdb in `dir`.
pub fn state_on(store: Store, dir: &std::path::Path) -> AppState {
    state_with(store, dir, settings(dir))
}

/// State over `store` with these settings.
pub fn state_with(store: Store, dir: &std::path::Path, settings: ApiSettings) -> AppState {
    let audit = Arc::new(AuditLog::open(dir).unwrap());
    let tsdb_opts = dozor_tsdb::Options {
        fsync: dozor_tsdb::FsyncPolicy::Never,
        ..dozor_tsdb::Options::default()
    };
    let tsdb = Arc::new(dozor_tsdb::Tsdb::open(&dir.join("tsdb"), tsdb_opts).unwrap());
    let logs_opts = dozor_logs::Options {
        fsync: dozor_logs::FsyncPolicy::Never,
        ..dozor_logs::Options::default()
    };
    let logs = Arc::new(dozor_logs::Logs::open(&dir.join("logs"), logs_opts).unwrap());
    AppState::new(
        dozor_api::Engines {
            store,
            audit,
            tsdb,
            logs,
        },
        JwtKeys::new(
            b"test-secret-test-secret-test-sec",
            Duration::from_secs(900),
        ),
        settings,
        SelfMetrics::builder().build(),
    )
}

/// An app on a fresh SQLite store whose queries have these limits.
pub async fn app_with_query_limits(limits: dozor_api::QueryLimits) -> TestApp {
    app_with_settings(|s| s.query = limits).await
}

/// An app on a fresh SQLite store, with `edit` applied to the test settings.
pub async fn app_with_settings(edit: impl FnOnce(&mut ApiSettings)) -> TestApp {
    let db_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db_dir.path().join("state.db").display());
    let store = Store::open(&url).await.unwrap();
    std::mem::forget(db_dir);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    edit(&mut s);
    let state = state_with(store, dir.path(), s);
    let router = dozor_api::app(state.clone());
    let app = TestApp { dir, state, router };
    app.add_user("default", "admin", ADMIN_PASSWORD, Role::Admin)
        .await;
    app
}

/// An app on a fresh SQLite store.
pub async fn app() -> TestApp {
    let db_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db_dir.path().join("state.db").display());
    let store = Store::open(&url).await.unwrap();
    // Keep the database directory alive as long as the process.
    std::mem::forget(db_dir);
    app_on(store).await
}

impl TestApp {
    pub async fn add_user(&self, tenant: &str, name: &str, password: &str, role: Role) {
        let tenant: TenantId = tenant.parse().unwrap();
        let hash = dozor_api::auth::hash_password(password).unwrap();
        self.state
            .store()
            .create_user(&tenant, name, &hash, role)
            .await
            .unwrap();
    }

    /// Serves the router on a free local port (for WebSockets and real sockets); its
    /// address.
    pub async fn listen(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        addr
    }

    /// Sends a request; `auth` is a full `Authorization` header value.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .call_raw(method, path, auth, body.map(|b| b.to_string()))
            .await;
        let json = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, bytes)
    }

    /// Sends a form-encoded body (`application/x-www-form-urlencoded`); returns the status,
    /// headers and body text.
    pub async fn call_form(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        form: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req.body(Body::from(form.to_owned())).unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A GET; returns the status and body text.
    pub async fn get_text(&self, path: &str, auth: &str) -> (StatusCode, String) {
        let (status, _, bytes) = self.call_raw("GET", path, Some(auth), None).await;
        (status, String::from_utf8(bytes).unwrap())
    }

    /// Stores samples `(t_ms, v)` of the series `pairs` in `tenant`, directly in the tsdb.
    pub fn append(&self, tenant: &str, pairs: &[(&str, &str)], samples: &[(i64, f64)]) {
        let labels = dozor_model::Labels::from_pairs(pairs.iter().copied()).unwrap();
        let samples = samples
            .iter()
            .map(|&(t, v)| dozor_model::Sample { t, v })
            .collect();
        let db = self.state.tsdb().tenant(&tenant.parse().unwrap()).unwrap();
        db.append(&[(labels, samples)]).unwrap();
    }

    /// Logs in; returns the whole `data` object.
    pub async fn login(&self, user: &str, password: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": user, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// `Bearer <access token>` of a fresh login.
    pub async fn bearer(&self, user: &str, password: &str) -> String {
        format!(
            "Bearer {}",
            self.login(user, password).await["access_token"]
                .as_str()
                .unwrap()
        )
    }

    /// `Bearer <token>` of a new API token with `scopes`, created by `admin`.
    pub async fn token_bearer(&self, admin: &str, name: &str, scopes: &[&str]) -> String {
        let (status, created) = self
            .call(
                "POST",
                "/api/v1/tokens",
                Some(admin),
                Some(serde_json::json!({"name": name, "scopes": scopes})),
            )
            .await;
        assert!(status.is_success(), "{created}");
        format!("Bearer {}", created["data"]["token"].as_str().unwrap())
    }

    /// The audit records appended so far, as JSON values.
    pub fn audit_records(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("audit/chain.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
