//! `server.tls`: the API served over TLS with a generated certificate — a real handshake
//! and request over a socket, the client address still known (the metrics allow-list
//! admits it), the certificate swapped when its files change, a bad renewal kept out,
//! plain HTTP refused, a silent client holding nobody up, and load errors that name the
//! file.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dozor_api::tls::{ReloadingCert, TlsFiles};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for localhost: its PEM and its key's PEM.
fn generate() -> (String, String, CertificateDer<'static>) {
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// Writes `text` to `path` and moves its modification time `ahead` seconds into the
/// future, so a rewrite within the same clock tick still counts as a change.
fn write(path: &Path, text: &str, ahead: u64) {
    std::fs::write(path, text).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(ahead))
        .unwrap();
}

fn files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        check_every: Duration::from_secs(3600),
    }
}

/// A client trusting exactly `root`.
fn connector(root: &CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    store.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET path` over TLS with `authorization` (a whole header value, or empty): the whole
/// answer as text, and the leaf certificate the server presented.
async fn https_get(
    addr: std::net::SocketAddr,
    root: &CertificateDer<'static>,
    path: &str,
    authorization: &str,
) -> Result<(String, CertificateDer<'static>), std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector(root).connect(name, tcp).await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: {authorization}\r\n\
         connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    // A peer that closes without close_notify is fine here: the answer is complete.
    let _ = tls.read_to_end(&mut answer).await;
    Ok((String::from_utf8_lossy(&answer).into_owned(), leaf))
}

#[tokio::test]
async fn the_api_answers_over_tls_and_takes_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (pem1, key1, der1) = generate();
    write(&dir.path().join("tls.crt"), &pem1, 0);
    write(&dir.path().join("tls.key"), &key1, 0);
    let cert = ReloadingCert::new(files(dir.path())).unwrap();
    let config = dozor_api::tls::server_config(Arc::clone(&cert)).unwrap();

    let app = common::app_with_settings(|s| {
        s.transport.https = true;
        s.metrics_access.allow = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dozor_api::tls::serve_tls(
        listener,
        config,
        app.router.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    // A client that connects and says nothing does not hold the others up.
    let _silent = TcpStream::connect(addr).await.unwrap();

    let (answer, leaf) = https_get(addr, &der1, "/healthz", "").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(leaf, der1);
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert!(
        lower.contains("content-security-policy: default-src 'self'"),
        "{answer}"
    );
    assert!(
        !lower.contains("access-control-allow-origin"),
        "CORS stays off"
    );

    // The client address reaches the policy check: the allow-list admits 127.0.0.1.
    let (answer, _) = https_get(addr, &der1, "/metrics", &admin).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("dozor_"), "{answer}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // Unchanged files: nothing reloaded.
    assert!(!cert.reload_if_changed().unwrap());

    // A renewal written half-way (new certificate, old key) does not load; the old
    // certificate stays in service.
    let (pem2, key2, der2) = generate();
    write(&dir.path().join("tls.crt"), &pem2, 5);
    let e = cert.reload_if_changed().unwrap_err();
    assert!(e.contains("does not serve the certificate"), "{e}");
    let (_, leaf) = https_get(addr, &der1, "/healthz", "").await.unwrap();
    assert_eq!(leaf, der1);

    // The key arrives: the next connection gets the new certificate, and a client that
    // trusts only the old one no longer connects.
    write(&dir.path().join("tls.key"), &key2, 6);
    assert!(cert.reload_if_changed().unwrap());
    let (answer, leaf) = https_get(addr, &der2, "/healthz", "").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(leaf, der2);
    assert!(https_get(addr, &der1, "/healthz", "").await.is_err());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_watcher_reloads_changed_files_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (pem1, key1, der1) = generate();
    write(&dir.path().join("tls.crt"), &pem1, 0);
    write(&dir.path().join("tls.key"), &key1, 0);
    let mut f = files(dir.path());
    f.check_every = Duration::from_millis(100);
    let cert = ReloadingCert::new(f).unwrap();
    let watcher = cert.watch();
    assert_eq!(cert.chain()[0], der1);
    let (pem2, key2, der2) = generate();
    write(&dir.path().join("tls.key"), &key2, 5);
    write(&dir.path().join("tls.crt"), &pem2, 5);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while cert.chain()[0] != der2 {
        assert!(std::time::Instant::now() < until, "not reloaded in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
}

#[test]
fn files_that_do_not_load_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    let e = dozor_api::tls::load(&f).unwrap_err();
    assert!(e.starts_with("server.tls.cert_file"), "{e}");

    let (pem, _, _) = generate();
    write(&f.cert_file, &pem, 0);
    write(
        &f.key_file,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        0,
    );
    let e = dozor_api::tls::load(&f).unwrap_err();
    assert!(e.contains("tls.key"), "{e}");

    write(&f.cert_file, "not a certificate", 0);
    let e = dozor_api::tls::load(&f).unwrap_err();
    assert!(
        e.starts_with("server.tls.cert_file") && e.contains("no certificate"),
        "{e}"
    );
}
