//! The probe collector against real local targets: an HTTP server (200, 500, body regex), a
//! TLS server with a certificate of known expiry, a TCP listener and a closed port,
//! PostgreSQL (`DOZOR_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! Redis (`DOZOR_TEST_REDIS_ADDR`, default 127.0.0.1:6379), and a JSON-RPC server answering
//! `getHealth` and `getSlot`.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_ingest::Batch;
use dozor_ingest::probe::{self, Hidden, Probe, ProbeKind, ProbeRegistry, ProbeSpec, TlsSettings};
use dozor_ingest::scrape::Appender;
use dozor_model::TenantId;
use dozor_model::labels::is_stale_nan;
use serde_json::{Value, json};
use tokio::sync::watch;

mod common;
use common::{test_cert, tls_server};

/// The value of the one sample of `metric` in `batch`, if present.
fn value(batch: &Batch, metric: &str) -> Option<f64> {
    let name = format!("{metric}{{");
    batch
        .iter()
        .find(|(l, _)| l.to_string().starts_with(&name))
        .map(|(_, s)| s[0].v)
}

async fn check(spec: ProbeSpec) -> (probe::ProbeStatus, Batch) {
    Probe::new(spec).unwrap().check_once().await
}

fn spec(kind: ProbeKind, target: &str) -> ProbeSpec {
    let mut s = ProbeSpec::new("t", kind, target);
    s.timeout = Duration::from_secs(3);
    s
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// `/ok` answers 200 `{"status":"ok"}`, `/fail` 500.
async fn http_server() -> String {
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::get(|| async { r#"{"status":"ok","version":"1.2.3"}"# }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_probes_report_success_status_and_latency() {
    let base = http_server().await;
    let (status, batch) = check(spec(ProbeKind::Http, &format!("{base}/ok"))).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_success"), Some(1.0));
    assert_eq!(value(&batch, "probe_http_status_code"), Some(200.0));
    let d = value(&batch, "probe_duration_seconds").unwrap();
    assert!(d > 0.0 && d < 3.0, "{d}");
    assert!(value(&batch, "probe_dns_lookup_time_seconds").is_some());
    assert_eq!(value(&batch, "probe_ssl_earliest_cert_expiry"), None);
    let labels = batch[0].0.to_string();
    assert!(
        labels.contains(&format!("instance=\"{base}/ok\""))
            && labels.contains("job=\"probe\"")
            && labels.contains("kind=\"http\"")
            && labels.contains("probe=\"t\"")
            && labels.contains("service=\"t\""),
        "{labels}"
    );

    let (status, batch) = check(spec(ProbeKind::Http, &format!("{base}/fail"))).await;
    assert_eq!(status.success, Some(false));
    assert_eq!(status.error.as_deref(), Some("unexpected HTTP status 500"));
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert_eq!(value(&batch, "probe_http_status_code"), Some(500.0));

    let mut s = spec(ProbeKind::Http, &format!("{base}/fail"));
    s.expected_status = vec![500, 503];
    let (status, _) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
}

#[tokio::test]
async fn http_probes_check_the_body_against_a_regex() {
    let base = http_server().await;
    let mut s = spec(ProbeKind::Http, &format!("{base}/ok"));
    s.body_regex = Some(r#""status":\s*"ok""#.into());
    let (status, batch) = check(s.clone()).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_success"), Some(1.0));

    s.body_regex = Some(r#""status":\s*"degraded""#.into());
    let (status, batch) = check(s).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert_eq!(value(&batch, "probe_http_status_code"), Some(200.0));
    assert!(status.error.unwrap().contains("body does not match"));
}

#[tokio::test]
async fn http_probes_fail_on_a_closed_port_and_time_out() {
    let port = closed_port().await;
    let (status, batch) = check(spec(ProbeKind::Http, &format!("http://127.0.0.1:{port}/"))).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert_eq!(value(&batch, "probe_http_status_code"), None);
    assert!(status.error.unwrap().contains("cannot connect"));

    // A listener that accepts and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let mut s = spec(ProbeKind::Http, &format!("http://{addr}/"));
    s.timeout = Duration::from_millis(300);
    let (status, batch) = check(s).await;
    assert_eq!(status.error.as_deref(), Some("timed out after 300ms"));
    let d = value(&batch, "probe_duration_seconds").unwrap();
    assert!((0.3..1.0).contains(&d), "{d}");
}

fn trusting(pem: &str, dir: &tempfile::TempDir) -> TlsSettings {
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, pem).unwrap();
    TlsSettings {
        ca_file: Some(file),
        ..TlsSettings::default()
    }
}

#[tokio::test]
async fn https_and_tls_probes_report_the_certificate_expiry() {
    let cert = test_cert();
    let addr = tls_server(&cert, "ok").await;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(probe::not_after(&cert.cert), Some(cert.not_after));

    let mut s = spec(ProbeKind::Http, &format!("https://{addr}/"));
    s.tls = Some(trusting(&cert.pem, &dir));
    let (status, batch) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_http_status_code"), Some(200.0));
    assert_eq!(
        value(&batch, "probe_ssl_earliest_cert_expiry"),
        Some(cert.not_after as f64)
    );
    assert_eq!(status.cert_expiry, Some(cert.not_after));

    // A plain TLS probe, verifying the name `localhost` against the certificate.
    let mut s = spec(ProbeKind::Tls, &addr.to_string());
    s.tls = Some(TlsSettings {
        server_name: Some("localhost".into()),
        ..trusting(&cert.pem, &dir)
    });
    let (status, batch) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(
        value(&batch, "probe_ssl_earliest_cert_expiry"),
        Some(cert.not_after as f64)
    );
    assert_eq!(value(&batch, "probe_http_status_code"), None);
}

#[tokio::test]
async fn tls_probes_fail_on_an_untrusted_certificate_unless_told_to_skip_verification() {
    let cert = test_cert();
    let addr = tls_server(&cert, "ok").await;
    let (status, batch) = check(spec(ProbeKind::Tls, &addr.to_string())).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    let error = status.error.unwrap();
    assert!(error.contains("TLS handshake failed"), "{error}");

    let mut s = spec(ProbeKind::Tls, &addr.to_string());
    s.tls = Some(TlsSettings {
        insecure_skip_verify: true,
        ..TlsSettings::default()
    });
    let (status, batch) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(
        value(&batch, "probe_ssl_earliest_cert_expiry"),
        Some(cert.not_after as f64)
    );

    // A certificate for another name fails verification even when trusted.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(ProbeKind::Tls, &addr.to_string());
    s.tls = Some(TlsSettings {
        server_name: Some("shop.example".into()),
        ..trusting(&cert.pem, &dir)
    });
    let (status, _) = check(s).await;
    assert_eq!(status.success, Some(false));
}

#[tokio::test]
async fn tcp_probes_connect_or_fail() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (status, batch) = check(spec(ProbeKind::Tcp, &addr.to_string())).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_success"), Some(1.0));
    assert!(value(&batch, "probe_dns_lookup_time_seconds").is_some());

    let port = closed_port().await;
    let (status, batch) = check(spec(ProbeKind::Tcp, &format!("127.0.0.1:{port}"))).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert!(
        status
            .error
            .unwrap()
            .contains("cannot connect to 127.0.0.1")
    );
    drop(l);
}

fn pg_url() -> String {
    std::env::var("DOZOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test]
async fn postgres_probes_select_one_and_never_leak_the_password() {
    let (status, batch) = check(spec(ProbeKind::Postgres, &pg_url())).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_success"), Some(1.0));
    assert!(
        status.dependency,
        "postgres probes are dependencies by default"
    );

    let port = closed_port().await;
    let url = format!("postgres://dozor:Sup3r-s3cret@127.0.0.1:{port}/test");
    let mut s = spec(ProbeKind::Postgres, &url);
    s.password = Some(Hidden::new("another-s3cret"));
    let (status, batch) = check(s).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    let shown = format!("{status:?} {batch:?}");
    assert!(!shown.contains("Sup3r-s3cret"), "{shown}");
    assert!(!shown.contains("another-s3cret"), "{shown}");
    assert_eq!(
        status.target,
        format!("postgres://dozor@127.0.0.1:{port}/test")
    );
    assert!(status.error.unwrap().contains("cannot connect"));
}

fn redis_addr() -> String {
    std::env::var("DOZOR_TEST_REDIS_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".to_owned())
}

#[tokio::test]
async fn redis_probes_ping_and_report_refusals() {
    let (status, batch) = check(spec(ProbeKind::Redis, &redis_addr())).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_success"), Some(1.0));

    let port = closed_port().await;
    let (status, _) = check(spec(ProbeKind::Redis, &format!("127.0.0.1:{port}"))).await;
    assert_eq!(status.success, Some(false));

    // The local Redis has no password: AUTH is refused, and the error holds no secret.
    let mut s = spec(ProbeKind::Redis, &redis_addr());
    s.password = Some(Hidden::new("r3dis-pass"));
    let (status, _) = check(s).await;
    assert_eq!(status.success, Some(false));
    let error = status.error.unwrap();
    assert!(error.starts_with("AUTH refused"), "{error}");
    assert!(!error.contains("r3dis-pass"), "{error}");

    // Something that is not Redis.
    let base = http_server().await;
    let (status, _) = check(spec(ProbeKind::Redis, base.trim_start_matches("http://"))).await;
    assert_eq!(status.success, Some(false));
}

/// A JSON-RPC server: `getHealth` → "ok", `getSlot` → 287654321, `getBroken` → an error;
/// it records the requests it got.
async fn jsonrpc_server(seen: Arc<Mutex<Vec<Value>>>) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |axum::Json(req): axum::Json<Value>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(req.clone());
                let id = req["id"].clone();
                axum::Json(match req["method"].as_str() {
                    Some("getHealth") => json!({"jsonrpc": "2.0", "id": id, "result": "ok"}),
                    Some("getSlot") => json!({"jsonrpc": "2.0", "id": id, "result": 287654321}),
                    _ => json!({"jsonrpc": "2.0", "id": id,
                                "error": {"code": -32005, "message": "Node is behind by 42 slots"}}),
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

fn rpc(url: &str, method: &str) -> ProbeSpec {
    let mut s = spec(ProbeKind::Jsonrpc, url);
    s.method = Some(method.into());
    s
}

#[tokio::test]
async fn jsonrpc_probes_call_check_and_record_numeric_results() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = jsonrpc_server(Arc::clone(&seen)).await;

    let mut s = rpc(&url, "getHealth");
    s.expected_result = Some(json!("ok"));
    let (status, batch) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_http_status_code"), Some(200.0));
    assert_eq!(value(&batch, "probe_jsonrpc_result"), None, "not a number");
    assert_eq!(
        seen.lock().unwrap()[0],
        json!({"jsonrpc": "2.0", "id": 1, "method": "getHealth", "params": []})
    );

    let mut s = rpc(&url, "getSlot");
    s.params = Some(json!([{"commitment": "finalized"}]));
    let (status, batch) = check(s).await;
    assert_eq!(status.success, Some(true), "{:?}", status.error);
    assert_eq!(value(&batch, "probe_jsonrpc_result"), Some(287654321.0));
    assert_eq!(status.result, Some(json!(287654321)));
    assert_eq!(
        seen.lock().unwrap()[1]["params"],
        json!([{"commitment": "finalized"}])
    );

    let mut s = rpc(&url, "getSlot");
    s.expected_result = Some(json!("ok"));
    let (status, batch) = check(s).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert_eq!(
        status.error.as_deref(),
        Some("result 287654321, expected \"ok\"")
    );

    let (status, batch) = check(rpc(&url, "getBroken")).await;
    assert_eq!(value(&batch, "probe_success"), Some(0.0));
    assert_eq!(
        status.error.as_deref(),
        Some("JSON-RPC error: Node is behind by 42 slots")
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(TenantId, Batch)>>);

impl Appender for Recorder {
    fn append(&self, tenant: &TenantId, batch: Batch) -> Result<(), String> {
        self.0.lock().unwrap().push((tenant.clone(), batch));
        Ok(())
    }
}

#[tokio::test]
async fn run_checks_on_the_interval_fills_the_registry_and_marks_series_stale_at_shutdown() {
    let base = http_server().await;
    let mut ok = ProbeSpec::new("shop-api", ProbeKind::Http, format!("{base}/ok"));
    ok.service = "shop".into();
    ok.interval = Duration::from_millis(200);
    ok.timeout = Duration::from_millis(150);
    ok.tenant = "shop".parse().unwrap();
    let mut down = ProbeSpec::new(
        "cache",
        ProbeKind::Tcp,
        format!("127.0.0.1:{}", closed_port().await),
    );
    down.interval = Duration::from_millis(200);
    down.timeout = Duration::from_millis(150);
    let probes = vec![Probe::new(ok).unwrap(), Probe::new(down).unwrap()];
    let rec = Arc::new(Recorder::default());
    let registry = ProbeRegistry::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(probe::run(probes, rec.clone(), registry.clone(), stop_rx));

    let checks = |name: &str| {
        rec.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| {
                b.iter().any(|(l, s)| {
                    let l = l.to_string();
                    l.starts_with("probe_success{") && l.contains(name) && !is_stale_nan(s[0].v)
                })
            })
            .count()
    };
    for _ in 0..100 {
        if checks("shop-api") >= 2 && checks("cache") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(checks("shop-api") >= 2, "the probe runs on its interval");
    let all = registry.all();
    assert_eq!(all.len(), 2);
    let api = all.iter().find(|s| s.name == "shop-api").unwrap();
    assert_eq!((api.service.as_str(), api.success), ("shop", Some(true)));
    assert_eq!(api.tenant.as_str(), "shop");
    let cache = all.iter().find(|s| s.name == "cache").unwrap();
    assert_eq!(cache.success, Some(false));
    assert!(cache.error.is_some() && cache.checked_at.is_some());
    assert_eq!(registry.for_tenant(&"shop".parse().unwrap()).len(), 1);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let recorded = rec.0.lock().unwrap();
    let (tenant, last) = recorded
        .iter()
        .rev()
        .find(|(_, b)| b.iter().any(|(l, _)| l.to_string().contains("shop-api")))
        .unwrap();
    assert_eq!(tenant.as_str(), "shop");
    assert!(
        last.iter().all(|(_, s)| is_stale_nan(s[0].v)),
        "the last batch marks every series stale: {last:?}"
    );
    assert!(
        last.iter()
            .any(|(l, _)| l.to_string().starts_with("probe_http_status_code{"))
    );
}
