//! The MQTT source over TLS against a real Mosquitto started here with a TLS listener and a
//! certificate made for the test: messages arrive through the `BusSink` when the CA is
//! trusted, and an untrusted certificate keeps the source down with the reason.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dozor_ingest::mqtt::MqttConfig;
use dozor_ingest::source::{BusSink, SourceStats};

struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn source(yaml: &str) -> MqttConfig {
    let c: MqttConfig = serde_saphyr::from_str(yaml).unwrap();
    c.check().unwrap();
    c
}

#[tokio::test]
async fn mqtt_over_tls_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let key = rcgen::KeyPair::try_from(cert.key.as_slice()).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert.pem).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let port = free_port();
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
    let _broker = Mosquitto(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian's package) is on this machine"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let sink = Arc::new(common::Recorder::default());
    let trusted = source(&format!(
        "name: tls\naddress: 127.0.0.1:{port}\nclient_id: dozor-tls-test\ntls: {{ca_file: {}}}\ntopics: [{{name: 'kkt/#', format: lines}}]\n",
        cert_file.display()
    ));
    let untrusted = source(&format!(
        "name: untrusted\naddress: 127.0.0.1:{port}\nclient_id: dozor-untrusted-test\ntls: {{}}\ntopics: [{{name: 'kkt/#'}}]\n"
    ));
    let (good, bad) = (
        Arc::new(SourceStats::default()),
        Arc::new(SourceStats::default()),
    );
    let tasks = [
        tokio::spawn(dozor_ingest::mqtt::run(
            trusted,
            Arc::clone(&sink) as Arc<dyn BusSink>,
            Arc::clone(&good),
            stop.clone(),
        )),
        tokio::spawn(dozor_ingest::mqtt::run(
            untrusted,
            Arc::clone(&sink) as Arc<dyn BusSink>,
            Arc::clone(&bad),
            stop.clone(),
        )),
    ];
    common::wait("the TLS connection", || {
        good.connected.load(Ordering::Relaxed) == 1
    })
    .await;
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
    common::wait("50 records", || sink.0.lock().unwrap().len() >= 50).await;
    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records.len(), 50);
    assert_eq!(records[7].message, "document 7 sent");
    assert_eq!(records[7].stream.get("topic"), Some("kkt/0001/log"));

    // The system roots do not know the test CA: down, with the reason.
    common::wait("the untrusted source's error", || {
        bad.last_error().is_some()
    })
    .await;
    assert_eq!(bad.connected.load(Ordering::Relaxed), 0);
    let reason = bad.last_error().unwrap();
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");

    stop_tx.send(true).unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap();
    }
}
