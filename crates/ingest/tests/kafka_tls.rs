//! The Kafka source over TLS: a `tansu` broker (installed by `scripts/setup-deps`) behind a
//! TLS-terminating proxy started here, which the broker advertises as itself — what a
//! client sees of a broker with an `SSL://` listener. With the test CA trusted
//! (`security.protocol: ssl`, `ssl.ca.location`) messages arrive; with the system's roots the
//! source never connects and says why.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use dozor_ingest::kafka::KafkaConfig;

fn tansu() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("DOZOR_TANSU") {
        return p.into();
    }
    let tools = std::env::var("DOZOR_TOOLS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/dozor-tools")
    });
    std::path::PathBuf::from(tools).join("bin/tansu")
}

/// Accepts TLS on `listener` and relays each connection to the broker on `broker`.
async fn tls_proxy(listener: tokio::net::TcpListener, broker: u16, cert: &common::TestCert) {
    let acceptor = common::acceptor(cert);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate aborts the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", broker)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_over_tls_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let bin = tansu();
    assert!(
        bin.exists(),
        "{} missing: scripts/setup-deps installs the tansu Kafka broker",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let (cert_file, _) = common::write_cert_files(dir.path(), &cert);
    let broker = common::free_port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = listener.local_addr().unwrap().port();
    tls_proxy(listener, broker, &cert).await;
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "broker",
        "--listener-url",
        &format!("tcp://127.0.0.1:{broker}"),
        "--advertised-listener-url",
        &format!("tcp://localhost:{tls_port}"),
        "--storage-engine",
        "memory://tansu/",
    ]);
    let _tansu = common::start_server(cmd, broker);

    let ssl = |ca: Option<&std::path::Path>| {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", format!("localhost:{tls_port}"))
            .set("security.protocol", "ssl");
        if let Some(ca) = ca {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        c
    };
    // The topic and its messages, made over TLS too.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ssl(Some(&cert_file)).create().unwrap();
    let created = admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "kkt-logs",
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: rdkafka::producer::FutureProducer = ssl(Some(&cert_file))
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    for i in 0..20 {
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to("kkt-logs")
                    .payload(&format!("register R{i} shift opened")),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
    }

    let config = |name: &str, ca: &str| -> KafkaConfig {
        let c: KafkaConfig = serde_saphyr::from_str(&format!(
            "name: {name}\nbrokers: localhost:{tls_port}\ngroup: {name}\ntopics: [{{name: kkt-logs, format: lines}}]\noptions: {{security.protocol: ssl{ca}}}\n"
        ))
        .unwrap();
        c.check().unwrap();
        c
    };
    let trusted = config(
        "trusted",
        &format!(", ssl.ca.location: '{}'", cert_file.display()),
    );
    let untrusted = config("untrusted", "");
    let pair = common::TrustPair::start(dozor_ingest::kafka::run, trusted, untrusted);
    common::wait("20 records over TLS", || {
        pair.sink.0.lock().unwrap().len() >= 20
    })
    .await;
    let records = pair.sink.0.lock().unwrap().clone();
    assert_eq!(records.len(), 20);
    assert!(
        records
            .iter()
            .any(|r| r.message == "register R7 shift opened")
    );
    // The untrusted consumer never got a message; its error says why.
    common::wait("the untrusted source's error", || {
        pair.untrusted
            .last_error()
            .is_some_and(|e| e.contains("certificate"))
    })
    .await;
    assert_eq!(pair.untrusted.records.load(Ordering::Relaxed), 0);
    let reason = pair.untrusted.last_error().unwrap();
    assert!(reason.contains("certificate verify failed"), "{reason}");
    pair.stop().await;
}
