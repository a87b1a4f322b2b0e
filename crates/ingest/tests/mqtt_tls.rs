//! The MQTT source over TLS against a real Mosquitto started here with a TLS listener and a
//! certificate made for the test: messages arrive through the `BusSink` when the CA is
//! trusted, and an untrusted certificate keeps the source down with the reason.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dozor_ingest::mqtt::MqttConfig;

fn source(yaml: &str) -> MqttConfig {
    let c: MqttConfig = serde_saphyr::from_str(yaml).unwrap();
    c.check().unwrap();
    c
}

#[tokio::test]
async fn mqtt_over_tls_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let (cert_file, key_file) = common::write_cert_files(dir.path(), &cert);
    let port = common::free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\ncafile {c}\ncertfile {c}\nkeyfile {k}\nallow_anonymous true\npersistence false\n",
            c = cert_file.display(),
            k = key_file.display()
        ),
    )
    .unwrap();
    let mut mosquitto = Command::new("mosquitto");
    mosquitto.arg("-c").arg(&conf);
    let _broker = common::start_server(mosquitto, port);

    let trusted = source(&format!(
        "name: tls\naddress: 127.0.0.1:{port}\nclient_id: dozor-tls-test\ntls: {{ca_file: {}}}\ntopics: [{{name: 'kkt/#', format: lines}}]\n",
        cert_file.display()
    ));
    let untrusted = source(&format!(
        "name: untrusted\naddress: 127.0.0.1:{port}\nclient_id: dozor-untrusted-test\ntls: {{}}\ntopics: [{{name: 'kkt/#'}}]\n"
    ));
    let pair = common::TrustPair::start(dozor_ingest::mqtt::run, trusted, untrusted);
    pair.wait_trusted_connected().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the subscription

    // A device publishing over TLS, trusting the same CA.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut opts = rumqttc::MqttOptions::new("device-1", "127.0.0.1", port);
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(Arc::new(client_tls)),
    ));
    let (device, mut events) = rumqttc::AsyncClient::new(opts, 100);
    for i in 0..50 {
        device
            .publish(
                "kkt/0001/log",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("document {i} sent"),
            )
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < 50 {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = events.poll().await.unwrap() {
            acked += 1;
        }
    }
    let sink = &pair.sink;
    common::wait("50 records", || sink.0.lock().unwrap().len() >= 50).await;
    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records.len(), 50);
    assert_eq!(records[7].message, "document 7 sent");
    assert_eq!(records[7].stream.get("topic"), Some("kkt/0001/log"));

    // The system roots do not know the test CA: down, with the reason.
    pair.assert_untrusted_refused().await;
    pair.stop().await;
}
