//! The NATS JetStream source over TLS against a real `nats-server` started here with a TLS
//! listener and JetStream: with the test CA trusted messages arrive; with the system's roots
//! the source stays down and says why.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dozor_ingest::nats::NatsConfig;
use dozor_ingest::source::{BusSink, SourceStats};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_over_tls_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let key = rcgen::KeyPair::try_from(cert.key.as_slice()).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert.pem).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls", "-js"])
            .arg("--tlscert")
            .arg(&cert_file)
            .arg("--tlskey")
            .arg(&key_file)
            .arg("-sd")
            .arg(dir.path().join("js"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian's package) is on this machine"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }

    let config = |name: &str, tls: &str| -> NatsConfig {
        let c: NatsConfig = serde_saphyr::from_str(&format!(
            "name: {name}\nurl: nats://localhost:{port}\nstream: {}\ntls: {tls}\nsubjects: [{{name: 'kkt.>', format: lines}}]\n",
            name.to_uppercase()
        ))
        .unwrap();
        c.check().unwrap();
        c
    };
    let trusted = config("tls", &format!("{{ca_file: {}}}", cert_file.display()));
    let untrusted = config("untrusted", "{}");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let sink = Arc::new(common::Recorder::default());
    let (good, bad) = (
        Arc::new(SourceStats::default()),
        Arc::new(SourceStats::default()),
    );
    let tasks = [
        tokio::spawn(dozor_ingest::nats::run(
            trusted,
            Arc::clone(&sink) as Arc<dyn BusSink>,
            Arc::clone(&good),
            stop.clone(),
        )),
        tokio::spawn(dozor_ingest::nats::run(
            untrusted,
            Arc::clone(&sink) as Arc<dyn BusSink>,
            Arc::clone(&bad),
            stop.clone(),
        )),
    ];
    // Connected means the stream exists: publishing can start.
    common::wait("the TLS connection", || {
        good.connected.load(Ordering::Relaxed) == 1
    })
    .await;
    let publisher = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(cert_file.clone())
        .connect(format!("nats://localhost:{port}"))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(publisher);
    for i in 0..30 {
        js.publish("kkt.0001.log", format!("fn {i} nearly full").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    common::wait("30 records over TLS", || sink.0.lock().unwrap().len() >= 30).await;
    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records[3].message, "fn 3 nearly full");
    assert_eq!(records[3].stream.get("topic"), Some("kkt.0001.log"));

    common::wait("the untrusted source's error", || {
        bad.last_error().is_some()
    })
    .await;
    assert_eq!(bad.connected.load(Ordering::Relaxed), 0);
    let reason = bad.last_error().unwrap();
    assert!(
        reason.to_lowercase().contains("certificate") || reason.to_lowercase().contains("tls"),
        "{reason}"
    );

    stop_tx.send(true).unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(15), t)
            .await
            .unwrap()
            .unwrap();
    }
}
