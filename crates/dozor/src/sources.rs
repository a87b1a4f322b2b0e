//! Connectors' wiring: each file source tails into the log store (through the same sink as
//! syslog), saves its checkpoints in the state store, and reports its counters as
//! `dozor_source_*` metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dozor_ingest::syslog::LogSink;
use dozor_ingest::tail::{Checkpoints, FileSource, TailStats};
use dozor_state::Store;
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
pub struct SourceMetrics(Vec<(String, Arc<TailStats>)>);

impl SourceMetrics {
    /// Counters for `sources`, in their order.
    pub fn new(sources: &[FileSource]) -> SourceMetrics {
        SourceMetrics(
            sources
                .iter()
                .map(|s| (s.config().name.clone(), Arc::default()))
                .collect(),
        )
    }

    fn stats(&self, name: &str) -> Arc<TailStats> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| Arc::clone(s))
            .unwrap_or_default()
    }
}

type Read = fn(&TailStats) -> u64;

/// Every `dozor_source_*` family: type, name, help, and how to read it.
const FAMILIES: [(MetricType, &str, &str, Read); 8] = [
    (
        MetricType::Counter,
        "dozor_source_records",
        "Records a source delivered to the store",
        |s| s.records.load(Ordering::Relaxed),
    ),
    (
        MetricType::Counter,
        "dozor_source_bytes",
        "Bytes of the lines a source delivered",
        |s| s.bytes.load(Ordering::Relaxed),
    ),
    (
        MetricType::Counter,
        "dozor_source_errors",
        "Failed reads, deliveries and checkpoint saves of a source",
        |s| s.errors.load(Ordering::Relaxed),
    ),
    (
        MetricType::Counter,
        "dozor_source_truncated_lines",
        "Lines cut at max_line_bytes or dropped beyond multiline max_lines",
        |s| s.truncated.load(Ordering::Relaxed),
    ),
    (
        MetricType::Counter,
        "dozor_source_rotations",
        "Truncations and copytruncate rotations a file source saw",
        |s| s.rotations.load(Ordering::Relaxed),
    ),
    (
        MetricType::Gauge,
        "dozor_source_lag_bytes",
        "Bytes in a source's files not yet delivered",
        |s| s.lag_bytes.load(Ordering::Relaxed),
    ),
    (
        MetricType::Gauge,
        "dozor_source_files_open",
        "Files a file source has open",
        |s| s.files.load(Ordering::Relaxed),
    ),
    (
        MetricType::Gauge,
        "dozor_source_last_success_timestamp_seconds",
        "When a source last delivered records (0: never)",
        |s| s.last_success_ms.load(Ordering::Relaxed) / 1000,
    ),
];

impl Collector for SourceMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        for (kind, name, help, read) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (source, stats) in &self.0 {
                let labels = [("source", source.as_str()), ("kind", "file")];
                let value = read(stats);
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
    metrics: &SourceMetrics,
    sink: &Arc<dyn LogSink>,
    store: &Store,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let checkpoints = Arc::new(StoreCheckpoints(store.clone()));
    sources
        .into_iter()
        .map(|source| {
            let stats = metrics.stats(&source.config().name);
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
