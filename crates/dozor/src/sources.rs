//! Connectors' wiring: each file source tails into the log store (through the same sink as
//! syslog) and saves its checkpoints in the state store; each bus source (Kafka, RabbitMQ,
//! MQTT, NATS) stores through a [`BusSink`] over the log store and the tsdb; all report
//! their counters as `dozor_source_*` metrics and in `/readyz`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dozor_ingest::source::{BusSink, SourceEntry, SourceRegistry, SourceStats};
use dozor_ingest::syslog::LogSink;
use dozor_ingest::tail::{Checkpoints, FileSource};
use dozor_state::Store;

use crate::config::SourcesConfig;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Checkpoints in the state store, under `file:<source name>`.
struct StoreCheckpoints(Store);

impl Checkpoints for StoreCheckpoints {
    async fn load(&self, source: &str) -> Result<Vec<(String, String)>, String> {
        self.0
            .checkpoints(&format!("file:{source}"))
            .await
            .map_err(|e| e.to_string())
    }

    async fn save(&self, source: &str, entries: &[(String, Option<String>)]) -> Result<(), String> {
        self.0
            .save_checkpoints(&format!("file:{source}"), entries)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The counters of every source, encoded at each scrape of `/metrics`.
#[derive(Debug, Default)]
pub struct SourceMetrics(pub SourceRegistry);

type Read = fn(&SourceStats) -> u64;

/// Every kind of source.
const ALL: &[&str] = &[];
/// File tails.
const FILE: &[&str] = &["file"];
/// Bus sources.
const BUS: &[&str] = &["kafka", "rabbitmq", "mqtt", "nats"];
/// What a count of bytes waiting applies to: files not read yet, the S3 backup's spool, a
/// Kafka producer's outbox.
const BYTES_WAITING: &[&str] = &["file", "s3", "kafka-producer"];
/// What holds a connection: the bus sources, the S3 backup and the Kafka producers.
const CONNECTED: &[&str] = &["kafka", "rabbitmq", "mqtt", "nats", "s3", "kafka-producer"];

/// Every `dozor_source_*` family: type, name, help, how to read it, and the kinds of
/// source it applies to (none listed: all).
const FAMILIES: [(MetricType, &str, &str, Read, &[&str]); 12] = [
    (
        MetricType::Counter,
        "dozor_source_records",
        "Records a source delivered to the store",
        |s| s.records.load(Ordering::Relaxed),
        ALL,
    ),
    (
        MetricType::Counter,
        "dozor_source_bytes",
        "Bytes of the lines a source delivered",
        |s| s.bytes.load(Ordering::Relaxed),
        ALL,
    ),
    (
        MetricType::Counter,
        "dozor_source_errors",
        "Failed reads, deliveries and checkpoint saves of a source",
        |s| s.errors.load(Ordering::Relaxed),
        ALL,
    ),
    (
        MetricType::Counter,
        "dozor_source_truncated_lines",
        "Lines cut at max_line_bytes or dropped beyond multiline max_lines",
        |s| s.truncated.load(Ordering::Relaxed),
        FILE,
    ),
    (
        MetricType::Counter,
        "dozor_source_rotations",
        "Truncations and copytruncate rotations a file source saw",
        |s| s.rotations.load(Ordering::Relaxed),
        FILE,
    ),
    (
        MetricType::Gauge,
        "dozor_source_lag_bytes",
        "Bytes waiting: in a file source's files, the S3 backup's spool or a Kafka producer's outbox",
        |s| s.lag.load(Ordering::Relaxed),
        BYTES_WAITING,
    ),
    (
        MetricType::Gauge,
        "dozor_source_files_open",
        "Files a file source has open",
        |s| s.files.load(Ordering::Relaxed),
        FILE,
    ),
    (
        MetricType::Gauge,
        "dozor_source_last_success_timestamp_seconds",
        "When a source last delivered records (0: never)",
        |s| s.last_success_ms.load(Ordering::Relaxed) / 1000,
        ALL,
    ),
    (
        MetricType::Gauge,
        "dozor_source_lag_messages",
        "Messages waiting for a bus source (Kafka lag, JetStream pending)",
        |s| s.lag.load(Ordering::Relaxed),
        BUS,
    ),
    (
        MetricType::Counter,
        "dozor_source_dead_letters",
        "Messages that did not decode, stored as dead letters",
        |s| s.dead_letters.load(Ordering::Relaxed),
        BUS,
    ),
    (
        MetricType::Gauge,
        "dozor_source_connected",
        "1 while a bus source or Kafka producer is connected to its broker (the S3 backup: to S3)",
        |s| s.connected.load(Ordering::Relaxed),
        CONNECTED,
    ),
    (
        MetricType::Counter,
        "dozor_source_reconnects",
        "Connections a bus source made after its first",
        |s| s.reconnects.load(Ordering::Relaxed),
        BUS,
    ),
];

impl Collector for SourceMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let entries = self.0.entries();
        for (kind, name, help, read, kinds) in FAMILIES {
            let applies = |e: &&SourceEntry| kinds.is_empty() || kinds.contains(&e.kind);
            if !entries.iter().any(|e| applies(&e)) {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for e in entries.iter().filter(applies) {
                let labels = [("source", e.name.as_str()), ("kind", e.kind)];
                let value = read(&e.stats);
                let metric = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value).encode(metric)?,
                    _ => {
                        ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Starts every file source; each stops when `stop` turns true.
pub fn start(
    sources: Vec<FileSource>,
    registry: &SourceRegistry,
    sink: &Arc<dyn LogSink>,
    store: &Store,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let checkpoints = Arc::new(StoreCheckpoints(store.clone()));
    sources
        .into_iter()
        .map(|source| {
            let c = source.config();
            let stats = registry.register(&c.name, "file", &c.tenant);
            tracing::info!(source = %source.config().name, paths = ?source.config().paths, "tailing files");
            tokio::spawn(dozor_ingest::tail::run(
                source,
                Arc::clone(sink),
                Arc::clone(&checkpoints),
                stats,
                stop.clone(),
            ))
        })
        .collect()
}

/// Starts every bus source; each stops when `stop` turns true, after its batch in flight is
/// stored and acknowledged (or left unacknowledged for redelivery).
pub fn start_bus(
    config: &SourcesConfig,
    registry: &SourceRegistry,
    sink: &Arc<dyn BusSink>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for c in &config.kafka {
        let stats = registry.register(&c.name, "kafka", &c.tenant);
        tasks.push(tokio::spawn(dozor_ingest::kafka::run(
            c.clone(),
            Arc::clone(sink),
            stats,
            stop.clone(),
        )));
    }
    for c in &config.rabbitmq {
        let stats = registry.register(&c.name, "rabbitmq", &c.tenant);
        tasks.push(tokio::spawn(dozor_ingest::rabbitmq::run(
            c.clone(),
            Arc::clone(sink),
            stats,
            stop.clone(),
        )));
    }
    for c in &config.mqtt {
        let stats = registry.register(&c.name, "mqtt", &c.tenant);
        tasks.push(tokio::spawn(dozor_ingest::mqtt::run(
            c.clone(),
            Arc::clone(sink),
            stats,
            stop.clone(),
        )));
    }
    for c in &config.nats {
        let stats = registry.register(&c.name, "nats", &c.tenant);
        tasks.push(tokio::spawn(dozor_ingest::nats::run(
            c.clone(),
            Arc::clone(sink),
            stats,
            stop.clone(),
        )));
    }
    tasks
}
