//! Helpers shared by the ingest integration tests: a self-signed certificate and a TLS
//! server that answers every request with a fixed body.

#![allow(dead_code, clippy::unwrap_used)] // Each test file uses part of it.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for 127.0.0.1 and localhost expiring on 2031-05-17, and its
/// `notAfter` in Unix seconds.
pub struct TestCert {
    pub cert: CertificateDer<'static>,
    pub key: Vec<u8>,
    pub pem: String,
    pub not_after: i64,
}

pub fn test_cert() -> TestCert {
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let not_after = rcgen::date_time_ymd(2031, 5, 17);
    params.not_after = not_after;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        cert: cert.der().clone(),
        key: key.serialize_der(),
        pem: cert.pem(),
        not_after: not_after.unix_timestamp(),
    }
}

/// A TLS acceptor presenting `cert` (ring).
pub fn acceptor(cert: &TestCert) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A bus sink that keeps the log records it is given.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<dozor_model::LogRecord>>);

impl dozor_ingest::source::BusSink for Recorder {
    fn store(
        &self,
        _tenant: &dozor_model::TenantId,
        logs: Vec<dozor_model::LogRecord>,
        _metrics: dozor_ingest::Batch,
    ) -> Result<(), String> {
        self.0.lock().unwrap().extend(logs);
        Ok(())
    }
}

/// A child process killed (and reaped) on drop: a broker started for one test.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd` (a Debian package's server) and waits until it listens on `port`.
pub fn start_server(mut cmd: std::process::Command, port: u16) -> ChildGuard {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let guard = ChildGuard(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{cmd:?} did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    guard
}

/// Writes the test certificate and its key as PEM files into `dir`.
pub fn write_cert_files(
    dir: &std::path::Path,
    cert: &TestCert,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::try_from(cert.key.as_slice()).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, &cert.pem).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

/// Two runs of one bus source, one trusting the test CA and one the system's roots, into
/// one recording sink.
pub struct TrustPair {
    pub sink: Arc<Recorder>,
    pub trusted: Arc<dozor_ingest::source::SourceStats>,
    pub untrusted: Arc<dozor_ingest::source::SourceStats>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TrustPair {
    /// Spawns `run` for both configurations.
    pub fn start<C, F, Fut>(run: F, trusted: C, untrusted: C) -> TrustPair
    where
        F: Fn(
            C,
            Arc<dyn dozor_ingest::source::BusSink>,
            Arc<dozor_ingest::source::SourceStats>,
            tokio::sync::watch::Receiver<bool>,
        ) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let sink = Arc::new(Recorder::default());
        let stats = [Arc::default(), Arc::default()];
        let tasks = [trusted, untrusted]
            .into_iter()
            .zip(&stats)
            .map(|(c, s)| tokio::spawn(run(c, Arc::clone(&sink) as _, Arc::clone(s), rx.clone())))
            .collect();
        let [trusted, untrusted] = stats;
        TrustPair {
            sink,
            trusted,
            untrusted,
            stop,
            tasks,
        }
    }

    /// Waits until the trusted run is connected.
    pub async fn wait_trusted_connected(&self) {
        wait("the TLS connection", || {
            self.trusted
                .connected
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1
        })
        .await;
    }

    /// The untrusted run stays down, its last error naming the certificate.
    pub async fn assert_untrusted_refused(&self) {
        wait("the untrusted source's error", || {
            self.untrusted.last_error().is_some()
        })
        .await;
        assert_eq!(
            self.untrusted
                .connected
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        let reason = self.untrusted.last_error().unwrap();
        assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    }

    /// Stops both runs and waits for them.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            tokio::time::timeout(std::time::Duration::from_secs(15), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

/// Waits up to 20 s for `until`.
pub async fn wait(what: &str, until: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !until() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A TLS server answering every request with `200` and `body`; returns its address.
pub async fn tls_server(cert: &TestCert, body: &'static str) -> std::net::SocketAddr {
    let acceptor = acceptor(cert);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}
