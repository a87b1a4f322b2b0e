//! Throughput of the bus sources: N JSON log messages (default 100 000) are published to
//! each broker of this machine — Kafka (a `tansu` broker started here), RabbitMQ, NATS
//! JetStream — before Dozor starts, then timed from Dozor's start until its
//! `dozor_source_records_total` reaches N (receive → decode → PII masking → log store,
//! fsync before every acknowledgement or commit). MQTT keeps few messages for an offline
//! session, so for it Dozor runs first and the publisher runs alongside, against a
//! Mosquitto started here without Debian's in-flight and queue limits.
//! `kafka-out` measures the producer instead: N lines posted to `POST /api/v1/logs/ingest`
//! (batches of 10 000) with `publish.kafka[].forward` on, timed until the producer's
//! `dozor_source_records_total` reaches N (HTTP ingest, PII masking, the log store, the
//! outbox and Kafka's acknowledgements all in the CPU figure).
//! Prints records/s and records per CPU-second of the Dozor process, per connector.
//!
//! `cargo run --release -p dozor-bench --bin bus-speed -- [--messages N] [--only kafka,…]`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_bench::systems::{DOZOR_TOKEN, cpu_seconds, free_port};

#[derive(Parser)]
struct Args {
    /// Messages per connector.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Connectors to measure (kafka, rabbitmq, nats, mqtt, kafka-out).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kafka,rabbitmq,nats,mqtt"
    )]
    only: Vec<String>,
    /// The Dozor binary.
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// The tansu binary.
    #[arg(long, env = "DOZOR_TANSU")]
    tansu: Option<PathBuf>,
}

fn message(i: usize) -> String {
    format!(
        r#"{{"timestamp":"2026-12-06T10:00:00Z","level":"info","service":"checkout","message":"order {i} paid by card in {} ms","user_id":"u{}","amount":{}}}"#,
        i % 900,
        i % 5000,
        (i * 37) % 20000
    )
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        dozor_model::time::now_ms() % 1_000_000
    )
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Dozor with `sources` (YAML under `sources:`); returns it and its port.
fn start_dozor(args: &Args, work: &std::path::Path, yaml: &str) -> anyhow::Result<(Killed, u16)> {
    let port = free_port()?;
    let config = work.join("dozor.yml");
    std::fs::write(&config, yaml)?;
    let child = Command::new(&args.dozor)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(work.join("data"))
        .env("DOZOR_ADMIN_TOKEN", DOZOR_TOKEN)
        .env("DOZOR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", args.dozor.display()))?;
    Ok((Killed(child), port))
}

/// Waits until Dozor's source `name` has delivered `n` records.
async fn wait_records(port: u16, name: &str, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let prefix = format!("dozor_source_records_total{{source=\"{name}\"");
    let until = Instant::now() + Duration::from_secs(900);
    while Instant::now() < until {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth(DOZOR_TOKEN)
            .send()
            .await
            && let Ok(text) = r.text().await
        {
            let got = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if got >= n as f64 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("source {name} did not reach {n} records")
}

/// A topic of two partitions.
async fn create_topic(port: u16, topic: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    Ok(())
}

/// Posts `n` messages to Dozor's NDJSON ingest, 10 000 per request.
async fn post_logs(port: u16, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/healthz");
    while client.get(&health).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for start in (0..n).step_by(10_000) {
        let body: String = (start..(start + 10_000).min(n))
            .map(|i| message(i) + "\n")
            .collect();
        let r = client
            .post(format!("http://127.0.0.1:{port}/api/v1/logs/ingest"))
            .bearer_auth(DOZOR_TOKEN)
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("ingest answered {}", r.status());
        }
    }
    Ok(())
}

async fn publish_kafka(port: u16, n: usize) -> anyhow::Result<()> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let brokers = format!("127.0.0.1:{port}");
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .create()?;
    let mut pending = Vec::with_capacity(1000);
    for i in 0..n {
        let body = message(i);
        pending.push(
            producer
                .send_result(FutureRecord::<(), _>::to("logs").payload(&body))
                .map_err(|(e, _)| e)?,
        );
        if pending.len() == 1000 {
            for p in pending.drain(..) {
                p.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for p in pending {
        p.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

async fn publish_rabbitmq(queue: &str, n: usize) -> anyhow::Result<()> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let conn =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), durable, FieldTable::default())
        .await?;
    let mut pending = Vec::with_capacity(1000);
    for i in 0..n {
        let props = lapin::BasicProperties::default().with_delivery_mode(2);
        pending.push(
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                message(i).as_bytes(),
                props,
            )
            .await?,
        );
        if pending.len() == 1000 {
            for p in pending.drain(..) {
                p.await?;
            }
        }
    }
    for p in pending {
        p.await?;
    }
    conn.close(200, "done".into()).await?;
    Ok(())
}

async fn publish_nats(subject: &str, stream: &str, n: usize) -> anyhow::Result<()> {
    let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    let js = async_nats::jetstream::new(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: stream.to_owned(),
        subjects: vec![subject.to_owned()],
        ..Default::default()
    })
    .await?;
    let mut pending = Vec::with_capacity(1000);
    for i in 0..n {
        pending.push(js.publish(subject.to_owned(), message(i).into()).await?);
        if pending.len() == 1000 {
            for p in pending.drain(..) {
                p.await?;
            }
        }
    }
    for p in pending {
        p.await?;
    }
    Ok(())
}

async fn publish_mqtt(port: u16, topic: &str, n: usize) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(unique("bench-pub"), "127.0.0.1", port);
    opts.set_inflight(100);
    let (client, mut events) = AsyncClient::new(opts, 1000);
    let topic = topic.to_owned();
    let publisher = tokio::spawn(async move {
        for i in 0..n {
            client
                .publish(topic.as_str(), QoS::AtLeastOnce, false, message(i))
                .await?;
        }
        anyhow::Ok(client)
    });
    let mut acked = 0;
    while acked < n {
        if let Event::Incoming(Packet::PubAck(_)) = events.poll().await? {
            acked += 1;
        }
    }
    publisher.await??.disconnect().await?;
    Ok(())
}

struct Outcome {
    wall: Duration,
    cpu: f64,
}

async fn measure(args: &Args, kind: &str, tansu: Option<&PathBuf>) -> anyhow::Result<Outcome> {
    let n = args.messages;
    let work = tempdir(kind)?;
    let name = "bench";
    let outcome = match kind {
        "kafka" | "kafka-out" => {
            let bin = tansu.context("no tansu binary: pass --tansu or set DOZOR_TANSU")?;
            let port = free_port()?;
            let url = format!("tcp://127.0.0.1:{port}");
            let _broker = Killed(
                Command::new(bin)
                    .args([
                        "broker",
                        "--listener-url",
                        &url,
                        "--advertised-listener-url",
                        &url,
                    ])
                    .args(["--storage-engine", "memory://tansu/"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if kind == "kafka-out" {
                create_topic(port, "dozor.logs").await?;
                let yaml = format!(
                    "publish:\n  kafka:\n    - name: {name}\n      brokers: 127.0.0.1:{port}\n      forward: {{logs: dozor.logs}}\n"
                );
                timed(args, &work, &yaml, name, n, async |p| post_logs(p, n).await).await?
            } else {
                create_topic(port, "logs").await?;
                publish_kafka(port, n).await?;
                let yaml = format!(
                    "  kafka:\n    - name: {name}\n      brokers: 127.0.0.1:{port}\n      group: {}\n      topics: [{{name: logs}}]\n      batch: 2000\n",
                    unique("bench")
                );
                consumed(args, &work, &yaml, name, n).await?
            }
        }
        "rabbitmq" => {
            let queue = unique("dozor-bench-");
            publish_rabbitmq(&queue, n).await?;
            let yaml = format!(
                "  rabbitmq:\n    - name: {name}\n      url: amqp://guest:guest@127.0.0.1:5672/%2f\n      queues: [{{name: {queue}}}]\n      batch: 2000\n"
            );
            let o = consumed(args, &work, &yaml, name, n).await?;
            let conn = lapin::Connection::connect(
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                Default::default(),
            )
            .await?;
            let ch = conn.create_channel().await?;
            ch.queue_delete(queue.as_str().into(), Default::default())
                .await?;
            o
        }
        "nats" => {
            let stream = unique("DOZORBENCH");
            let subject = format!("{}.logs", stream.to_lowercase());
            publish_nats(&subject, &stream, n).await?;
            let yaml = format!(
                "  nats:\n    - name: {name}\n      url: nats://127.0.0.1:4222\n      stream: {stream}\n      subjects: [{{name: {subject}}}]\n      batch: 2000\n"
            );
            let o = consumed(args, &work, &yaml, name, n).await?;
            let js =
                async_nats::jetstream::new(async_nats::connect("nats://127.0.0.1:4222").await?);
            js.delete_stream(&stream).await?;
            o
        }
        "mqtt" => {
            // A Mosquitto of our own: the shared one keeps Debian's limits (20 messages in
            // flight and 1000 queued per client, the rest dropped), which measure the broker.
            let port = free_port()?;
            let conf = work.join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 1000000\n"
                ),
            )?;
            let _broker = Killed(
                Command::new("mosquitto")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("cannot start mosquitto")?,
            );
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let topic = unique("dozor-bench/");
            let yaml = format!(
                "  mqtt:\n    - name: {name}\n      address: 127.0.0.1:{port}\n      client_id: {}\n      topics: [{{name: '{topic}'}}]\n      batch: 2000\n",
                unique("dozor-bench-sub")
            );
            timed(
                args,
                &work,
                &format!("sources:\n{yaml}"),
                name,
                n,
                async |_| {
                    // Let Dozor connect and subscribe first.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    publish_mqtt(port, &topic, n).await
                },
            )
            .await?
        }
        other => bail!("unknown connector {other}"),
    };
    let _ = std::fs::remove_dir_all(&work);
    Ok(outcome)
}

async fn timed(
    args: &Args,
    work: &std::path::Path,
    yaml: &str,
    name: &str,
    n: usize,
    alongside: impl AsyncFnOnce(u16) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let (dozor, port) = start_dozor(args, work, yaml)?;
    let (published, waited) = tokio::join!(alongside(port), wait_records(port, name, n));
    published?;
    waited?;
    let wall = start.elapsed();
    let cpu = cpu_seconds(dozor.0.id());
    drop(dozor);
    Ok(Outcome { wall, cpu })
}

/// [`timed`] for a source that finds its messages waiting: `sources:` is `yaml`.
async fn consumed(
    args: &Args,
    work: &std::path::Path,
    yaml: &str,
    name: &str,
    n: usize,
) -> anyhow::Result<Outcome> {
    timed(
        args,
        work,
        &format!("sources:\n{yaml}"),
        name,
        n,
        async |_| Ok(()),
    )
    .await
}

fn tempdir(kind: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique(&format!("dozor-bus-speed-{kind}-")));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tansu = args.tansu.clone().or_else(|| {
        let p = PathBuf::from(std::env::var("HOME").ok()?).join(".cache/dozor-tools/bin/tansu");
        p.exists().then_some(p)
    });
    println!(
        "| connector | messages | wall s (start-up included) | records/s | Dozor CPU-s | records per CPU-s |"
    );
    println!("|---|---|---|---|---|---|");
    for kind in &args.only {
        let o = measure(&args, kind, tansu.as_ref()).await?;
        let n = args.messages as f64;
        println!(
            "| {kind} | {} | {:.2} | {:.0} | {:.2} | {:.0} |",
            args.messages,
            o.wall.as_secs_f64(),
            n / o.wall.as_secs_f64(),
            o.cpu,
            n / o.cpu.max(0.001)
        );
    }
    Ok(())
}
