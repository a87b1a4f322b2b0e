//! The bus sources through the real binary against the real brokers of this machine:
//! RabbitMQ (127.0.0.1:5672), Mosquitto (1883), NATS JetStream (4222) and a `tansu` Kafka
//! broker this test starts (installed by `scripts/setup-deps`). Each test publishes
//! numbered messages, kills Dozor with `kill -9` mid-stream, restarts it, and checks that
//! every message is stored, that duplicates stay within the unacknowledged window, and
//! that a poison message becomes a dead letter with a reason instead of blocking the
//! stream. Broker connections are cut while Dozor runs (RabbitMQ: `rabbitmqctl
//! close_all_connections`; Kafka, MQTT and NATS: every connection dropped and refused by a
//! proxy for a few seconds), and Dozor reconnects.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

const TOKEN: &str = "dzr_bus-test-token-0123456789abc";

/// A name no other run of these tests uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}x{}", std::process::id(), nanos % 1_000_000_000)
}

fn payload(service: &str, i: usize) -> String {
    format!(r#"{{"message":"msg-{i} stored","service":"{service}","level":"info"}}"#)
}

fn start(dir: &std::path::Path, yaml: &str) -> Server {
    let config = dir.join("dozor.yml");
    std::fs::write(&config, yaml).unwrap();
    Server::start_with(
        &dir.join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", config.to_str().unwrap()],
    )
}

fn kill_9(server: Server) {
    let _ = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    drop(server);
}

/// Records matching `query` in the last hour.
fn search(server: &Server, query: &str) -> Vec<serde_json::Value> {
    let now = dozor_model::time::now_ms() / 1000;
    let (start, end) = ((now - 3600).to_string(), (now + 3600).to_string());
    server.search_logs(
        TOKEN,
        &[
            ("query", query),
            ("start", &start),
            ("end", &end),
            ("limit", "10000"),
        ],
    )
}

/// How many times each `msg-N` of `service` is stored.
fn stored(server: &Server, service: &str) -> HashMap<usize, usize> {
    let mut seen = HashMap::new();
    for r in search(server, &format!("{{service=\"{service}\"}}")) {
        let msg = r["message"].as_str().unwrap_or("");
        if let Some(n) = msg
            .strip_prefix("msg-")
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse::<usize>().ok())
        {
            *seen.entry(n).or_default() += 1;
        }
    }
    seen
}

fn wait_for(server: &Server, service: &str, n: usize) -> HashMap<usize, usize> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = stored(server, service);
        if seen.len() >= n || Instant::now() > until {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every one of `0..n` stored, none more than once beyond `max_twice` of them.
fn assert_complete(seen: &HashMap<usize, usize>, n: usize, max_twice: usize) {
    let lost: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        lost.is_empty(),
        "{} messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice = seen.values().filter(|c| **c > 1).count();
    assert!(twice <= max_twice, "{twice} messages stored twice");
}

/// Dead letters of source `name`, waiting until at least `n` are there.
fn dead_letters(server: &Server, name: &str, n: usize) -> Vec<serde_json::Value> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let found = search(server, &format!("{{dead_letter=\"{name}\"}}"));
        if found.len() >= n || Instant::now() > until {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn field<'a>(record: &'a serde_json::Value, name: &str) -> &'a str {
    record["fields"][name]
        .as_str()
        .or_else(|| record[name].as_str())
        .unwrap_or("")
}

/// An instant PromQL query's first value.
fn query_value(server: &Server, promql: &str) -> Option<f64> {
    let query = serde_urlencoded::to_string([("query", promql)]).unwrap();
    let body = server.get_json(&format!("/api/v1/query?{query}"), TOKEN);
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// A sample of Dozor's own `/metrics` whose line starts with `prefix`.
fn self_metric(server: &Server, prefix: &str) -> Option<f64> {
    server
        .get_text("/metrics", TOKEN)
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn readyz(server: &Server) -> serde_json::Value {
    common::block_on(async {
        reqwest::get(server.url("/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn wait_source_up(server: &Server, name: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = readyz(server);
        let up = r["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name && s["status"] == "up");
        if up {
            return;
        }
        assert!(Instant::now() < until, "source {name} never up: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------------------- RabbitMQ

mod amqp {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    pub async fn channel() -> (Connection, lapin::Channel) {
        let conn = Connection::connect(URL, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        (conn, ch)
    }

    pub async fn declare(ch: &lapin::Channel, queue: &str) {
        let opts = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        ch.queue_declare(queue.into(), opts, FieldTable::default())
            .await
            .unwrap();
    }

    pub async fn publish(ch: &lapin::Channel, queue: &str, bodies: impl Iterator<Item = String>) {
        for body in bodies {
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    }

    pub async fn delete(ch: &lapin::Channel, queue: &str) {
        let _ = ch
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await;
    }
}

#[test]
fn rabbitmq_queue_survives_kill_9_and_lost_connections() {
    let dir = tempfile::tempdir().unwrap();
    // One runtime for the test's AMQP connections: they live in its tasks.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let queue = unique("dozor-test-");
    let dlq = format!("{queue}.dlq");
    let (conn, ch) = rt.block_on(amqp::channel());
    rt.block_on(async {
        amqp::declare(&ch, &queue).await;
        amqp::declare(&ch, &dlq).await;
        amqp::publish(&ch, &dlq, (0..3).map(|i| format!("dead {i}"))).await;
        amqp::publish(&ch, &queue, (0..2000).map(|i| payload("rmq", i))).await;
        amqp::publish(&ch, &queue, std::iter::once("{not json".to_owned())).await;
    });
    let yaml = format!(
        "sources:\n  rabbitmq:\n    - name: rmq\n      url: {}\n      queues: [{{name: {queue}, format: ndjson}}]\n      watch: [{queue}]\n      dead_letter_queues: [{dlq}]\n      watch_interval: 1s\n      batch: 200\n",
        amqp::URL
    );
    let server = start(dir.path(), &yaml);
    let seen = wait_for(&server, "rmq", 500);
    assert!(seen.len() >= 500);
    // kill -9 while messages keep coming.
    rt.block_on(amqp::publish(
        &ch,
        &queue,
        (2000..3000).map(|i| payload("rmq", i)),
    ));
    kill_9(server);
    rt.block_on(amqp::publish(
        &ch,
        &queue,
        (3000..3500).map(|i| payload("rmq", i)),
    ));
    let server = start(dir.path(), &yaml);
    wait_source_up(&server, "rmq");
    // Every connection cut, as a broker restart would: Dozor reconnects and reads on.
    let closed = Command::new("rabbitmqctl")
        .args(["close_all_connections", "test: broker gone"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(closed.success());
    let (conn2, ch2) = rt.block_on(amqp::channel());
    rt.block_on(amqp::publish(
        &ch2,
        &queue,
        (3500..4000).map(|i| payload("rmq", i)),
    ));
    let seen = wait_for(&server, "rmq", 4000);
    // At-least-once: what was delivered but not acknowledged at the kill (a batch plus
    // the prefetch window of 400) may come twice.
    assert_complete(&seen, 4000, 600);
    let dead = dead_letters(&server, "rmq", 1);
    assert!(!dead.is_empty(), "the poison message is a dead letter");
    assert!(
        field(&dead[0], "reason").contains("invalid JSON"),
        "{}",
        dead[0]
    );
    assert_eq!(field(&dead[0], "topic"), queue);
    // The watch: the dead-letter queue's depth, as rabbitmq_queue_messages.
    let until = Instant::now() + Duration::from_secs(20);
    let dlq_depth = loop {
        let v = query_value(
            &server,
            &format!("rabbitmq_queue_messages{{queue=\"{dlq}\",dead_letter=\"true\"}}"),
        );
        if v.is_some() || Instant::now() > until {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(dlq_depth, Some(3.0));
    let r = readyz(&server);
    assert_eq!(r["sources"][0]["kind"], "rabbitmq", "{r}");
    let reconnects = self_metric(&server, "dozor_source_reconnects_total{source=\"rmq\"");
    assert!(reconnects >= Some(1.0), "reconnects: {reconnects:?}");
    let dead = self_metric(&server, "dozor_source_dead_letters_total{source=\"rmq\"");
    // The poison message was read before the kill or after it (then counted by this run).
    assert!(dead.is_some(), "dead letters counter missing");
    rt.block_on(async {
        amqp::delete(&ch2, &queue).await;
        amqp::delete(&ch2, &dlq).await;
        let _ = conn2.close(200, "done".into()).await;
        let _ = conn.close(200, "done".into()).await;
    });
}

/// A PromQL query's first value, waiting up to 30 s until `ok` holds for it.
fn wait_value(server: &Server, promql: &str, ok: impl Fn(f64) -> bool) -> Option<f64> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let v = query_value(server, promql);
        if v.is_some_and(&ok) || Instant::now() > until {
            return v;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn rabbitmq_management_api_gives_queue_counters() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let queue = unique("dozor-mgmt-");
    let dlq = format!("{queue}.dlq");
    let (conn, ch) = rt.block_on(amqp::channel());
    rt.block_on(async {
        amqp::declare(&ch, &queue).await;
        amqp::declare(&ch, &dlq).await;
        amqp::publish(&ch, &dlq, (0..4).map(|i| format!("dead {i}"))).await;
        amqp::publish(&ch, &queue, (0..300).map(|i| payload("mgmt", i))).await;
    });
    let yaml = format!(
        "sources:\n  rabbitmq:\n    - name: mgmt\n      url: {}\n      queues: [{{name: {queue}, format: ndjson}}]\n      watch: [{queue}]\n      dead_letter_queues: [{dlq}]\n      management_url: http://127.0.0.1:15672\n      watch_interval: 1s\n      batch: 100\n",
        amqp::URL
    );
    let server = start(dir.path(), &yaml);
    assert_complete(&wait_for(&server, "mgmt", 300), 300, 0);
    // The management plugin publishes its statistics every 5 s: wait for them to count
    // what was published, delivered and acknowledged.
    let q = format!("{{queue=\"{queue}\",source=\"mgmt\"}}");
    for name in [
        "rabbitmq_queue_messages_published_total",
        "rabbitmq_queue_messages_delivered_total",
        "rabbitmq_queue_messages_acked_total",
    ] {
        let v = wait_value(&server, &format!("{name}{q}"), |v| v >= 300.0);
        assert_eq!(v, Some(300.0), "{name}");
    }
    let ready = wait_value(
        &server,
        &format!("rabbitmq_queue_messages_ready{{queue=\"{dlq}\",dead_letter=\"true\"}}"),
        |v| v >= 4.0,
    );
    assert_eq!(ready, Some(4.0), "the dead-letter queue's ready messages");
    let depth = wait_value(
        &server,
        &format!("rabbitmq_queue_messages{{queue=\"{dlq}\",dead_letter=\"true\"}}"),
        |v| v >= 4.0,
    );
    assert_eq!(
        depth,
        Some(4.0),
        "the shipped DLQ alert's series is still there"
    );
    assert_eq!(
        wait_value(&server, &format!("rabbitmq_queue_consumers{q}"), |v| v
            >= 1.0),
        Some(1.0),
        "Dozor's own consumer"
    );
    drop(server);
    // A wrong password: the watch reports the refusal instead of going silent.
    let bad = format!(
        "sources:\n  rabbitmq:\n    - name: badlogin\n      url: amqp://guest:wrong@127.0.0.1:5672/%2f\n      watch: [{queue}]\n      management_url: http://127.0.0.1:15672\n      watch_interval: 1s\n"
    );
    let dir2 = tempfile::tempdir().unwrap();
    let server = start(dir2.path(), &bad);
    let until = Instant::now() + Duration::from_secs(20);
    let (error, r) = loop {
        // /api/v1/health details each of the tenant's sources, the last error among them.
        let r: serde_json::Value = common::block_on(async {
            reqwest::Client::new()
                .get(server.url("/api/v1/health"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        let e = r["data"]["sources"][0]["lastError"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !e.is_empty() || Instant::now() > until {
            break (e, r);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(error.contains("HTTP 401"), "{r}");
    rt.block_on(async {
        amqp::delete(&ch, &queue).await;
        amqp::delete(&ch, &dlq).await;
        let _ = conn.close(200, "done".into()).await;
    });
}

// ------------------------------------------------------------------------- MQTT

/// Publishes with QoS 1 and waits until the broker acknowledged every message.
fn mqtt_publish(topic: &str, bodies: Vec<String>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    common::block_on(async {
        let mut opts = MqttOptions::new(unique("pub"), "127.0.0.1", 1883);
        opts.set_clean_session(true);
        let (client, mut events) = AsyncClient::new(opts, 100);
        let n = bodies.len();
        let publisher = {
            let client = client.clone();
            let topic = topic.to_owned();
            tokio::spawn(async move {
                for b in bodies {
                    client
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, b)
                        .await
                        .unwrap();
                }
            })
        };
        let mut acked = 0;
        while acked < n {
            match events.poll().await.unwrap() {
                Event::Incoming(Packet::PubAck(_)) => acked += 1,
                Event::Outgoing(Outgoing::Disconnect) => break,
                _ => {}
            }
        }
        publisher.await.unwrap();
        client.disconnect().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
    });
}

#[test]
fn mqtt_persistent_session_survives_kill_9_and_broker_outage() {
    let dir = tempfile::tempdir().unwrap();
    let root = unique("dozor-test-");
    // Dozor reaches Mosquitto through a proxy that can cut it off.
    let proxy = Proxy::start(1883);
    let yaml = format!(
        "sources:\n  mqtt:\n    - name: devices\n      address: 127.0.0.1:{}\n      client_id: {root}\n      topics:\n        - {{name: {root}/+/telemetry, format: record, metric_prefix: device_}}\n        - {{name: {root}/+/log, format: ndjson}}\n      batch: 100\n",
        proxy.port
    );
    let server = start(dir.path(), &yaml);
    wait_source_up(&server, "devices");
    // Subscriptions are made on connect; give the broker a moment to register them.
    std::thread::sleep(Duration::from_millis(300));
    let log = format!("{root}/kkt-1/log");
    // Debian's Mosquitto queues at most 1000 messages per client (max_queued_messages) and
    // drops the rest: what is unread at the kill plus what comes while Dozor is down stays
    // below that.
    mqtt_publish(&log, (0..600).map(|i| payload("mqtt", i)).collect());
    mqtt_publish(
        &format!("{root}/kkt-1/telemetry"),
        vec![
            r#"{"register":"kkt-1","fn_days_left":12}"#.to_owned(),
            "oops".to_owned(),
        ],
    );
    assert!(wait_for(&server, "mqtt", 300).len() >= 300);
    kill_9(server);
    // Published while Dozor is down: kept by the broker for the persistent session.
    mqtt_publish(&log, (600..900).map(|i| payload("mqtt", i)).collect());
    let server = start(dir.path(), &yaml);
    let seen = wait_for(&server, "mqtt", 900);
    // Unacknowledged at the kill: at most the broker's in-flight window per batch.
    assert_complete(&seen, 900, 200);
    let until = Instant::now() + Duration::from_secs(20);
    while query_value(&server, "device_fn_days_left{register=\"kkt-1\"}").is_none() {
        assert!(
            Instant::now() < until,
            "the telemetry record is not a metric"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        query_value(&server, "device_fn_days_left{register=\"kkt-1\"}"),
        Some(12.0)
    );
    let dead = dead_letters(&server, "devices", 1);
    assert!(
        field(&dead[0], "reason").contains("invalid JSON"),
        "{}",
        dead[0]
    );
    // The broker unreachable for 3 s while devices publish: the session keeps their
    // messages and Dozor reads them once it is back.
    std::thread::scope(|s| {
        s.spawn(|| proxy.outage(Duration::from_secs(3)));
        std::thread::sleep(Duration::from_millis(500));
        mqtt_publish(&log, (900..1000).map(|i| payload("mqtt", i)).collect());
    });
    let seen = wait_for(&server, "mqtt", 1000);
    assert_complete(&seen, 1000, 200);
    drop(server);
    // Leave no session behind on the broker.
    common::block_on(async {
        let mut opts = rumqttc::MqttOptions::new(root.clone(), "127.0.0.1", 1883);
        opts.set_clean_session(true);
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 10);
        let _ = tokio::time::timeout(Duration::from_secs(2), events.poll()).await;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
    });
}

// ------------------------------------------------------------------------- NATS

fn nats_publish(subject: &str, bodies: Vec<String>) {
    common::block_on(async {
        let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
        let js = async_nats::jetstream::new(client);
        for b in bodies {
            js.publish(subject.to_owned(), b.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
}

#[test]
fn nats_jetstream_survives_kill_9_and_server_outage() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique("DOZORTEST");
    let prefix = stream.to_lowercase();
    let proxy = Proxy::start(4222);
    let yaml = format!(
        "sources:\n  nats:\n    - name: js\n      url: nats://127.0.0.1:{}\n      stream: {stream}\n      subjects:\n        - {{name: '{prefix}.events.>', format: events, event_type: sale}}\n        - {{name: '{prefix}.logs', format: ndjson}}\n      batch: 200\n      ack_wait: 3s\n",
        proxy.port
    );
    let server = start(dir.path(), &yaml);
    wait_source_up(&server, "js");
    nats_publish(
        &format!("{prefix}.logs"),
        (0..1000).map(|i| payload("nats", i)).collect(),
    );
    nats_publish(
        &format!("{prefix}.events.shop"),
        vec![
            r#"{"user_id":"u1","amount":120,"service":"shop"}"#.to_owned(),
            r#"{"type":"transaction","user_id":"u1","amount":"ten"}"#.to_owned(),
        ],
    );
    assert!(wait_for(&server, "nats", 300).len() >= 300);
    kill_9(server);
    nats_publish(
        &format!("{prefix}.logs"),
        (1000..1500).map(|i| payload("nats", i)).collect(),
    );
    let server = start(dir.path(), &yaml);
    let seen = wait_for(&server, "nats", 1500);
    assert_complete(&seen, 1500, 400);
    // Delivered but not acknowledged at the kill: back after ack_wait.
    let until = Instant::now() + Duration::from_secs(20);
    let sales = loop {
        let sales = search(&server, "{event=\"sale\"}");
        if !sales.is_empty() || Instant::now() > until {
            break sales;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sales.len(), 1, "{sales:?}");
    let dead = dead_letters(&server, "js", 1);
    assert!(field(&dead[0], "reason").contains("amount"), "{}", dead[0]);
    assert!(
        field(&dead[0], "position").starts_with("stream sequence"),
        "{}",
        dead[0]
    );
    // The server unreachable for 3 s while publishers go on: JetStream keeps the messages
    // and Dozor reads them once it is back.
    std::thread::scope(|s| {
        s.spawn(|| proxy.outage(Duration::from_secs(3)));
        std::thread::sleep(Duration::from_millis(500));
        nats_publish(
            &format!("{prefix}.logs"),
            (1500..1600).map(|i| payload("nats", i)).collect(),
        );
    });
    let seen = wait_for(&server, "nats", 1600);
    assert_complete(&seen, 1600, 400);
    drop(server);
    common::block_on(async {
        let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
        let js = async_nats::jetstream::new(client);
        let _ = js.delete_stream(&stream).await;
    });
}

// ------------------------------------------------------------------------- Kafka

/// A `tansu` broker on a free port, in memory; stopped on drop.
struct Tansu {
    child: std::process::Child,
}

impl Tansu {
    fn bin() -> std::path::PathBuf {
        if let Ok(p) = std::env::var("DOZOR_TANSU") {
            return p.into();
        }
        let tools = std::env::var("DOZOR_TOOLS").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            format!("{home}/.cache/dozor-tools")
        });
        let p = std::path::PathBuf::from(tools).join("bin/tansu");
        assert!(
            p.exists(),
            "{} missing: scripts/setup-deps installs the tansu Kafka broker",
            p.display()
        );
        p
    }

    /// A broker listening on `port` that tells clients to come through `advertised`.
    fn start(port: u16, advertised: u16) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(Tansu::bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tansu { child }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of the broker that can drop every connection and refuse new ones
/// for a while: what a broker restart looks like to its clients, with its data kept (tansu
/// keeps data in memory only, so restarting it would not be a restart of the same broker).
struct Proxy {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, c) = (down.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut all = c.lock().unwrap();
                all.push(client.try_clone().unwrap());
                all.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, down, conns }
    }

    /// Drops every connection and refuses new ones for `d`.
    fn outage(&self, d: Duration) {
        use std::sync::atomic::Ordering;
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        std::thread::sleep(d);
        self.down.store(false, Ordering::SeqCst);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kafka_produce(port: u16, topic: &str, bodies: Vec<String>) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    common::block_on(async {
        for b in bodies {
            producer
                .send(
                    FutureRecord::<(), _>::to(topic).payload(&b),
                    Duration::from_secs(20),
                )
                .await
                .unwrap();
        }
    });
}

fn kafka_create_topic(port: u16, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .create()
        .unwrap();
    common::block_on(async {
        admin
            .create_topics(
                &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
    });
}

#[test]
fn kafka_consumer_group_survives_kill_9_and_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let proxy = Proxy::start(broker_port);
    let port = proxy.port;
    let _tansu = Tansu::start(broker_port, port);
    kafka_create_topic(port, "logs");
    kafka_create_topic(port, "transactions");
    let yaml = format!(
        "sources:\n  kafka:\n    - name: pipeline\n      brokers: 127.0.0.1:{port}\n      group: {}\n      topics:\n        - {{name: logs, format: ndjson}}\n        - {{name: transactions, format: events, event_type: transaction}}\n      batch: 200\n      options: {{session.timeout.ms: '6000'}}\n",
        unique("dozor-test-")
    );
    kafka_produce(
        port,
        "logs",
        (0..1000).map(|i| payload("kafka", i)).collect(),
    );
    kafka_produce(
        port,
        "transactions",
        vec![
            r#"{"transaction_id":"t1","user_id":"u7","amount":15000,"currency":"RUB"}"#.to_owned(),
            r#"{"transaction_id":"t2","user_id":"u7"}"#.to_owned(),
        ],
    );
    let server = start(dir.path(), &yaml);
    assert!(wait_for(&server, "kafka", 300).len() >= 300);
    kill_9(server);
    kafka_produce(
        port,
        "logs",
        (1000..1500).map(|i| payload("kafka", i)).collect(),
    );
    // tansu, unlike Kafka, does not rebalance the members left when a dead one's session
    // expires: restart once the killed member is gone (about 15 s), as an orchestrator's
    // restart delay would.
    std::thread::sleep(Duration::from_secs(16));
    let server = start(dir.path(), &yaml);
    let seen = wait_for(&server, "kafka", 1500);
    // Repeated at most: the batches whose commit had not reached the broker.
    assert_complete(&seen, 1500, 1000);
    let tx = search(&server, "{event=\"transaction\"}");
    assert_eq!(tx.len(), 1, "{tx:?}");
    assert_eq!(field(&tx[0], "amount"), "15000");
    let dead = dead_letters(&server, "pipeline", 1);
    assert!(field(&dead[0], "reason").contains("amount"), "{}", dead[0]);
    assert!(
        field(&dead[0], "position").starts_with("partition"),
        "{}",
        dead[0]
    );
    // The broker goes away for 3 s, every connection dropped; Dozor reconnects and reads
    // what is produced afterwards.
    proxy.outage(Duration::from_secs(3));
    kafka_produce(
        port,
        "logs",
        (5000..5100).map(|i| payload("kafka", i)).collect(),
    );
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = stored(&server, "kafka");
        if (5000..5100).all(|i| seen.contains_key(&i)) {
            break;
        }
        assert!(
            Instant::now() < until,
            "nothing read after the broker came back"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every message of `topic` from its beginning, waiting until `n` came (or 30 s passed).
fn kafka_read(port: u16, topic: &str, n: usize) -> Vec<(Option<String>, serde_json::Value)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message as _;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("group.id", unique("dozor-read-"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while out.len() < n && Instant::now() < until {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            let payload = serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap();
            out.push((key, payload));
        }
    }
    out
}

fn post(server: &Server, path: &str, body: String) -> u16 {
    common::block_on(async {
        reqwest::Client::new()
            .post(server.url(path))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn kafka_producer_forwards_ingest_and_publishes_alerts_and_metrics() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let broker_port = free_port();
    let proxy = Proxy::start(broker_port);
    let port = proxy.port;
    let _tansu = Tansu::start(broker_port, port);
    let prefix = unique("t");
    let topic = |name: &str| format!("{prefix}.{name}");
    for t in ["logs", "metrics", "alerts", "fraud", "updates"] {
        kafka_create_topic(port, &topic(t));
    }
    // Node A forwards what it ingests and publishes its alerts and a metric update; node B
    // consumes the forwarded topics as any Kafka source would.
    std::fs::write(
        a_dir.path().join("sales.yml"),
        "groups:\n  - name: sales\n    rules:\n      - alert: BigSale\n        expr: sales_total > 100\n        labels: {category: fraud}\n      - alert: AnySale\n        expr: sales_total > 0\n",
    )
    .unwrap();
    let a_yaml = format!(
        "rules:\n  evaluation_interval: 1s\n  files: [sales.yml]\npublish:\n  kafka:\n    - name: out\n      brokers: 127.0.0.1:{port}\n      forward: {{logs: {}, metrics: {}}}\n      alerts:\n        - {{topic: {}}}\n        - {{topic: {}, match: '{{category=\"fraud\"}}'}}\n      metrics: {{topic: {}, interval: 1s, queries: {{sales_sum: 'sum(sales_total)'}}}}\n",
        topic("logs"),
        topic("metrics"),
        topic("alerts"),
        topic("fraud"),
        topic("updates"),
    );
    let b_yaml = format!(
        "sources:\n  kafka:\n    - name: bus\n      brokers: 127.0.0.1:{port}\n      group: {}\n      topics:\n        - {{name: {}, format: ndjson}}\n        - {{name: {}, format: metrics}}\n",
        unique("dozor-b-"),
        topic("logs"),
        topic("metrics"),
    );
    let a = start(a_dir.path(), &a_yaml);
    let b = start(b_dir.path(), &b_yaml);
    let lines = |range: std::ops::Range<usize>| {
        range
            .map(|i| {
                format!(
                    "{{\"_msg\":\"msg-{i} forwarded\",\"service\":\"fwd\",\"level\":\"info\",\"user_id\":\"u{i}\",\"email\":\"ivan{i}@example.ru\"}}\n"
                )
            })
            .collect::<String>()
    };
    assert_eq!(post(&a, "/api/v1/logs/ingest", lines(0..300)), 200);
    // Kafka goes away for 4 s: ingest is still acknowledged (the outbox holds it) and
    // reaches Kafka once it is back.
    let outage = {
        let down = std::sync::Arc::new(proxy);
        let d = down.clone();
        (
            std::thread::spawn(move || d.outage(Duration::from_secs(4))),
            down,
        )
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post(&a, "/api/v1/logs/ingest", lines(300..500)), 200);
    let now = dozor_model::time::now_ms();
    assert_eq!(
        post(
            &a,
            "/api/v1/metrics",
            format!(
                r#"{{"name":"sales_total","value":250,"labels":{{"shop":"s1"}},"timestamp":{now}}}"#
            )
        ),
        200
    );
    outage.0.join().unwrap();
    // Node B stored every forwarded record once, PII masked as node A stored it.
    let seen = wait_for(&b, "fwd", 500);
    assert_complete(&seen, 500, 0);
    let one = search(&b, "{service=\"fwd\"} |= \"msg-7 \"");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(field(&one[0], "user_id"), "u7");
    assert!(
        !one[0].to_string().contains("ivan7@example.ru"),
        "{}",
        one[0]
    );
    let until = Instant::now() + Duration::from_secs(30);
    let mut forwarded = None;
    while forwarded.is_none() && Instant::now() < until {
        forwarded = query_value(&b, "sales_total{shop=\"s1\"}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(forwarded, Some(250.0), "the forwarded sample");
    // Both alerts fired on node A: every one on the alert stream, the fraud one alone on
    // the fraud stream, each keyed by its fingerprint.
    let alerts = kafka_read(port, &topic("alerts"), 2);
    let names: std::collections::BTreeSet<_> = alerts
        .iter()
        .map(|(_, v)| v["labels"]["alertname"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        ["AnySale", "BigSale"].map(str::to_owned).into(),
        "{alerts:?}"
    );
    let fraud = kafka_read(port, &topic("fraud"), 1);
    assert_eq!(fraud.len(), 1, "{fraud:?}");
    let (key, alert) = &fraud[0];
    assert_eq!(alert["labels"]["alertname"], "BigSale");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["value"], 250.0);
    assert_eq!(key.as_deref(), alert["fingerprint"].as_str());
    // The metric update carries the query's result under its name.
    let updates = kafka_read(port, &topic("updates"), 1);
    let update = updates
        .iter()
        .flat_map(|(_, v)| v.as_array().cloned().unwrap_or_default())
        .find(|p| p["value"] == 250.0);
    let update = update.unwrap_or_else(|| panic!("no update with the sum: {updates:?}"));
    assert_eq!(update["name"], "sales_sum");
    // The producer's metrics and health.
    assert!(self_metric(&a, "dozor_source_records_total{source=\"out\"") >= Some(503.0));
    drop(outage.1);
}

#[test]
fn forwarded_ingest_is_refused_with_429_when_the_outbox_is_full() {
    let dir = tempfile::tempdir().unwrap();
    // No broker answers, and the outbox holds 2 000 bytes: the second request cannot fit.
    let yaml = format!(
        "publish:\n  kafka:\n    - name: out\n      brokers: 127.0.0.1:{}\n      forward: {{logs: dozor.logs}}\n      max_outbox_bytes: 2000\n",
        free_port()
    );
    let server = start(dir.path(), &yaml);
    let line = |i: usize| format!("{{\"_msg\":\"msg-{i} refused\",\"service\":\"full\"}}\n");
    assert_eq!(
        post(&server, "/api/v1/logs/ingest", (0..10).map(line).collect()),
        200
    );
    let (status, retry_after, body) = common::block_on(async {
        let r = reqwest::Client::new()
            .post(server.url("/api/v1/logs/ingest"))
            .bearer_auth(TOKEN)
            .body((10..40).map(line).collect::<String>())
            .send()
            .await
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), retry, r.text().await.unwrap())
    });
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(body.contains("spool full"), "{body}");
    // What was refused was not stored; what was accepted was.
    let seen = wait_for(&server, "full", 10);
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(seen.keys().all(|i| *i < 10));
}

// ------------------------------------------------------------------------- S3 raw backup

/// moto's S3 server on `port`, in memory; stopped on drop.
struct Moto(std::process::Child);

impl Moto {
    fn start(port: u16) -> Moto {
        let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/pyenv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} missing: scripts/setup-deps installs moto",
            bin.display()
        );
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto(child)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every object under `prefix` in `bucket`: key and body, read with boto3 (installed with
/// moto) as any S3 user would.
fn s3_objects(port: u16, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let rows = s3_read(port, bucket, prefix, "raw.decode()");
    serde_json::from_value(rows).unwrap()
}

/// Every object under `prefix` in `bucket` as `[key, decoded]`, the body decoded by the
/// Python expression `decode` over its bytes `raw`.
fn s3_read(port: u16, bucket: &str, prefix: &str, decode: &str) -> serde_json::Value {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python");
    let script = r#"
import boto3, io, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
out = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):
    for o in page.get("Contents", []):
        raw = s3.get_object(Bucket=sys.argv[2], Key=o["Key"])["Body"].read()
        out.append([o["Key"], eval(sys.argv[4])])
print(json.dumps(out, default=str))
sys.stdout.flush()
# pyarrow's thread pools can abort the interpreter's teardown on a loaded machine
# ("terminate called without an active exception"); the answer is out, so leave now.
import os; os._exit(0)
"#;
    let out = Command::new(python)
        .args([
            "-c",
            script,
            &format!("http://127.0.0.1:{port}"),
            bucket,
            prefix,
            decode,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn raw_messages_are_backed_up_to_s3_and_spooled_while_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let queue = unique("dozor-backup-");
    let (conn, ch) = rt.block_on(amqp::channel());
    rt.block_on(async {
        amqp::declare(&ch, &queue).await;
        amqp::publish(&ch, &queue, (0..300).map(|i| payload("bak", i))).await;
        amqp::publish(&ch, &queue, std::iter::once("not json at all".to_owned())).await;
    });
    let secret = dir.path().join("s3-secret");
    std::fs::write(&secret, "test\n").unwrap();
    // S3 is down when Dozor starts: nothing listens on its port yet.
    let s3_port = free_port();
    let yaml = format!(
        "sources:\n  rabbitmq:\n    - name: bak\n      url: {}\n      queues: [{{name: {queue}}}]\n      batch: 100\nbackup:\n  s3:\n    bucket: raw-backup\n    prefix: seed001/raw\n    endpoint: http://127.0.0.1:{s3_port}\n    allow_http: true\n    access_key_id: test\n    secret_access_key_file: {}\n    interval: 1s\n",
        amqp::URL,
        secret.display()
    );
    let server = start(dir.path(), &yaml);
    // The store and the broker go on without S3: every message is stored and acknowledged.
    assert_complete(&wait_for(&server, "bak", 300), 300, 0);
    // Generous: under a full test run's load the first sealing can take a while.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let spooled = self_metric(&server, "dozor_source_lag_bytes{source=\"s3-backup\"");
        if spooled > Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < until,
            "the spool holds the messages: {spooled:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s3_status = |server: &Server| {
        readyz(server)["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "s3-backup")
            .map(|s| s["status"].clone())
            .unwrap()
    };
    assert_eq!(s3_status(&server), "down");
    // S3 comes up: the spool drains into seed 001's layout, PREFIX/YYYYMMDD/<ms>.json.
    let _moto = Moto::start(s3_port);
    common::block_on(async {
        let r = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{s3_port}/raw-backup"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    });
    let until = Instant::now() + Duration::from_secs(60);
    let lines: Vec<serde_json::Value> = loop {
        let lines: Vec<serde_json::Value> = s3_objects(s3_port, "raw-backup", "seed001/raw/")
            .iter()
            .flat_map(|(k, body)| {
                let day = k.split('/').nth(2).unwrap();
                assert!(day.len() == 8 && day.starts_with("20"), "{k}");
                assert!(k.ends_with(".json"), "{k}");
                body.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        if lines.len() >= 301 || Instant::now() > until {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut ids: Vec<usize> = lines
        .iter()
        .filter_map(|l| l["payload"]["message"].as_str())
        .filter_map(|m| m.strip_prefix("msg-")?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(s3_status(&server), "up");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (0..300).collect::<Vec<_>>(), "every message backed up");
    assert!(
        lines.iter().any(|l| l["payload"] == "not json at all"),
        "the poison message is backed up as text"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["source"] == "bak" && l["topic"] == queue.as_str())
    );
    let until = Instant::now() + Duration::from_secs(10);
    while self_metric(&server, "dozor_source_lag_bytes{source=\"s3-backup\"") != Some(0.0) {
        assert!(Instant::now() < until, "the spool did not drain");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(async {
        amqp::delete(&ch, &queue).await;
        let _ = conn.close(200, "done".into()).await;
    });
}

#[test]
fn cold_days_are_archived_to_s3_as_parquet_once_per_version() {
    use dozor_logs::tiers::{Tier, Tiers};
    use dozor_model::{Labels, LogRecord, TenantId};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3_port = free_port();
    let _moto = Moto::start(s3_port);
    common::block_on(async {
        let r = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{s3_port}/cold-logs"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    });
    let secret = dir.path().join("s3-secret");
    std::fs::write(&secret, "test\n").unwrap();
    let target: dozor_ingest::backup::S3Target = serde_saphyr::from_str(&format!(
        "bucket: cold-logs\nprefix: archive\nendpoint: http://127.0.0.1:{s3_port}\nallow_http: true\naccess_key_id: test\nsecret_access_key_file: {}\n",
        secret.display()
    ))
    .unwrap();
    let day = 86_400_000_000_000_i64;
    let tiers = Tiers {
        hot: Duration::from_secs(86_400),
        warm: None,
        cold: Some(Tier {
            until: Duration::from_secs(30 * 86_400),
            keep: vec![vec![dozor_model::Matcher::equal("level", "critical")]],
        }),
        aggregates: false,
    };
    let logs = dozor_logs::Logs::open(
        &dir.path().join("logs"),
        dozor_logs::Options {
            tiers: Some(Arc::new(tiers.clone())),
            ..dozor_logs::Options::default()
        },
    )
    .unwrap();
    let db = logs.tenant(&TenantId::default_tenant()).unwrap();
    let now = dozor_model::time::now_ms() * 1_000_000;
    // Five days ago, midday: critical and info lines; only the critical ones stay cold.
    let then = (now / day - 5) * day + day / 2;
    let record = |i: i64, level: &str| {
        let mut r = LogRecord::new(
            then + i,
            Labels::from_pairs([("service", "kkt"), ("level", level)]).unwrap(),
            format!("fn {i} {level}"),
        );
        r.fields = vec![("register".into(), format!("R{i}"))];
        r
    };
    let batch = |range: std::ops::Range<i64>| {
        range
            .flat_map(|i| [record(i, "critical"), record(i, "info")])
            .collect::<Vec<_>>()
    };
    db.append(batch(0..100)).unwrap();
    db.flush().unwrap();
    db.apply_tiers(&tiers, now).unwrap();
    let store = rt
        .block_on(dozor_state::Store::open(&format!(
            "sqlite://{}",
            dir.path().join("state.db").display()
        )))
        .unwrap();
    let archive = |expected_rows: usize| {
        let rows = s3_read(
            s3_port,
            "cold-logs",
            "archive/",
            // The time column's type, and the rows with times as integers (nanoseconds do
            // not fit Python's datetime).
            "(lambda t: {'time_type': str(t.schema.field('time').type), 'rows': \
             t.set_column(0, 'time', t.column('time').cast('int64')).to_pylist()})\
             (__import__('pyarrow.parquet').parquet.read_table(io.BytesIO(raw), use_threads=False))",
        );
        let objects = rows.as_array().unwrap();
        assert_eq!(objects.len(), 1, "one object per day: {rows}");
        let key = objects[0][0].as_str().unwrap();
        let (y, m, d) = dozor_model::time::civil_from_days(then / day);
        assert_eq!(key, format!("archive/default/{y:04}-{m:02}-{d:02}.parquet"));
        assert_eq!(objects[0][1]["time_type"], "timestamp[ns, tz=UTC]");
        let records = objects[0][1]["rows"].as_array().unwrap().clone();
        assert_eq!(records.len(), expected_rows);
        records
    };
    // S3 unreachable: an error, and the day is not marked archived.
    let mut down = target.clone();
    down.endpoint = Some(format!("http://127.0.0.1:{}", free_port()));
    let failed = rt.block_on(dozor::archive::archive_once(&down, &logs, &store));
    assert!(failed.unwrap_err().contains("upload of archive/default/"));
    let written = rt.block_on(dozor::archive::archive_once(&target, &logs, &store));
    assert_eq!(written.unwrap().0, 1);
    let records = archive(100);
    for r in &records {
        let stream: serde_json::Value =
            serde_json::from_str(r["stream"].as_str().unwrap()).unwrap();
        assert_eq!(
            stream,
            serde_json::json!({"level": "critical", "service": "kkt"}),
            "{r}"
        );
    }
    let first = &records[0];
    assert_eq!(first["message"], "fn 0 critical");
    assert_eq!(first["fields"], r#"{"register":"R0"}"#);
    assert_eq!(first["time"], then, "{first}");
    // Nothing changed: nothing is written again.
    let again = rt.block_on(dozor::archive::archive_once(&target, &logs, &store));
    assert_eq!(again.unwrap().0, 0);
    // Late records of the same day reach cold: the day is written again, whole, in place.
    db.append(batch(100..150)).unwrap();
    db.flush().unwrap();
    db.apply_tiers(&tiers, now).unwrap();
    let written = rt.block_on(dozor::archive::archive_once(&target, &logs, &store));
    assert_eq!(written.unwrap().0, 1);
    archive(150);
    rt.block_on(store.close());
}
