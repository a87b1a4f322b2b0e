//! The NATS JetStream source over TLS against a real `nats-server` started here with a TLS
//! listener and JetStream: with the test CA trusted messages arrive; with the system's roots
//! the source stays down and says why.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::process::Command;

use dozor_ingest::nats::NatsConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_over_tls_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let (cert_file, key_file) = common::write_cert_files(dir.path(), &cert);
    let port = common::free_port();
    let mut nats = Command::new("nats-server");
    nats.args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls", "-js"])
        .arg("--tlscert")
        .arg(&cert_file)
        .arg("--tlskey")
        .arg(&key_file)
        .arg("-sd")
        .arg(dir.path().join("js"));
    let _server = common::start_server(nats, port);

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
    let pair = common::TrustPair::start(dozor_ingest::nats::run, trusted, untrusted);
    // Connected means the stream exists: publishing can start.
    pair.wait_trusted_connected().await;
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
    let sink = &pair.sink;
    common::wait("30 records over TLS", || sink.0.lock().unwrap().len() >= 30).await;
    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records[3].message, "fn 3 nearly full");
    assert_eq!(records[3].stream.get("topic"), Some("kkt.0001.log"));

    pair.assert_untrusted_refused().await;
    pair.stop().await;
}
