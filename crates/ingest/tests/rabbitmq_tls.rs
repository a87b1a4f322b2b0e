//! The RabbitMQ source over `amqps://`: a TLS endpoint made for the test (a terminating
//! proxy with a test certificate, as stunnel or a load balancer would be) in front of this
//! machine's RabbitMQ. With the CA in `ca_file` messages arrive; with the system's roots
//! the source stays down and says why.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::sync::atomic::Ordering;

use dozor_ingest::rabbitmq::RabbitConfig;

/// Accepts TLS with `cert` and forwards the plain bytes to RabbitMQ on 5672.
async fn tls_proxy(cert: &common::TestCert) -> u16 {
    let acceptor = common::acceptor(cert);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut broker) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_delivers_with_a_trusted_ca_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert = common::test_cert();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.pem).unwrap();
    let port = tls_proxy(&cert).await;
    let queue = format!("dozor-tls-test-{}", std::process::id());

    // The queue and its messages, over plain AMQP.
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
    let plain = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let conn = lapin::Connection::connect(plain, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.as_str().into(), durable, Default::default())
        .await
        .unwrap();
    for i in 0..40 {
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            format!("shift {i} closed").as_bytes(),
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    }

    let config = |name: &str, ca_file: &str| -> RabbitConfig {
        let c: RabbitConfig = serde_saphyr::from_str(&format!(
            "name: {name}\nurl: amqps://guest:guest@localhost:{port}/%2f\n{ca_file}queues: [{{name: {queue}, format: lines}}]\n"
        ))
        .unwrap();
        c.check().unwrap();
        c
    };
    let trusted = config("tls", &format!("ca_file: {}\n", ca.display()));
    let untrusted = config("untrusted", "");
    let pair = common::TrustPair::start(dozor_ingest::rabbitmq::run, trusted, untrusted);
    let sink = &pair.sink;
    common::wait("40 records over amqps", || {
        sink.0.lock().unwrap().len() >= 40
    })
    .await;
    assert_eq!(pair.trusted.connected.load(Ordering::Relaxed), 1);
    let mut messages: Vec<String> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.message.clone())
        .collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 40);
    pair.assert_untrusted_refused().await;
    pair.stop().await;
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;
}
