//! Kafka source (`sources.kafka` in `dozor.yml`): a consumer group over configured topics —
//! seed 001's `logs`, `metrics` and `transactions`, seed 004's `ticket-sales`,
//! `user-activity` and `chain-events` — each decoded by its route's format.
//!
//! Offsets are committed only after a batch is stored durably through the [`BusSink`]
//! (`enable.auto.commit` is off; each batch commits the next offset of every partition it
//! read, asynchronously, and a stop commits synchronously). A crash therefore repeats at
//! most the batches whose commit had not reached the broker; nothing is skipped. Group
//! membership, partition assignment and reconnection are librdkafka's; a rebalance may
//! hand a partition to another member before this one committed its batch, which again
//! only repeats records. `lag` is the sum over assigned partitions of the high watermark
//! minus the consumer's position, read every 10 s.
//!
//! `options` passes librdkafka settings through (`security.protocol`, `sasl.*`,
//! `fetch.max.bytes`…); the ones the delivery guarantee rests on cannot be overridden.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dozor_model::TenantId;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::source::{
    BusSink, Delivery, Message, NO_ROUTE, Position, Route, SourceStats, default_batch,
    default_linger, next_backoff, next_deadline, sleep_or_stop, stopped,
};

/// One `sources.kafka` entry of `dozor.yml`. Its `Debug` hides `options` (SASL passwords).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Unique name: the `source` label of its metrics and dead letters.
    pub name: String,
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// The consumer group (default `dozor`).
    #[serde(default = "default_group")]
    pub group: String,
    /// The tenant its records belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Topics to consume and how their messages decode.
    pub topics: Vec<Route>,
    /// Where a group with no committed offset starts: `earliest` (default) or `latest`.
    #[serde(default = "default_reset")]
    pub start: String,
    /// Most messages in one stored batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for a batch to fill once its first message came.
    #[serde(default = "default_linger", with = "dozor_model::duration")]
    pub linger: Duration,
    /// Further librdkafka settings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// A file holding `sasl.password` (keep it out of `dozor.yml`).
    #[serde(default)]
    pub sasl_password_file: Option<std::path::PathBuf>,
}

fn default_group() -> String {
    "dozor".to_owned()
}

fn default_reset() -> String {
    "earliest".to_owned()
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("name", &self.name)
            .field("brokers", &self.brokers)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Settings the at-least-once delivery rests on.
const FIXED: [&str; 4] = [
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
];

impl KafkaConfig {
    /// Checks what can be checked without a broker.
    pub fn check(&self) -> Result<(), String> {
        if self.brokers.trim().is_empty() {
            return Err(format!("{}: no brokers", self.name));
        }
        if self.topics.is_empty() {
            return Err(format!("{}: no topics", self.name));
        }
        if self
            .topics
            .iter()
            .any(|t| t.name.is_empty() || t.name.contains(['*', '^', ' ']))
        {
            return Err(format!("{}: topics are exact names", self.name));
        }
        if !matches!(self.start.as_str(), "earliest" | "latest") {
            return Err(format!("{}: start must be earliest or latest", self.name));
        }
        if self.batch == 0 || self.batch > 100_000 {
            return Err(format!("{}: batch must be 1 to 100000", self.name));
        }
        if let Some(k) = self.options.keys().find(|k| FIXED.contains(&k.as_str())) {
            return Err(format!("{}: options may not set {k}", self.name));
        }
        Ok(())
    }

    fn client(&self, stats: &Arc<SourceStats>) -> Result<StreamConsumer<Context>, String> {
        client_config(
            // Kafka Connect's session timeout: a member that died without leaving (kill -9)
            // holds its partitions this long, not librdkafka's 45 s.
            &[("session.timeout.ms", "10000")],
            &self.options,
            self.sasl_password_file.as_deref(),
            &[
                ("bootstrap.servers", &self.brokers),
                ("group.id", &self.group),
                ("client.id", &format!("dozor-{}", self.name)),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", &self.start),
                ("enable.partition.eof", "false"),
            ],
        )?
        .create_with_context(Context(Arc::clone(stats)))
        .map_err(|e| format!("cannot create the consumer: {e}"))
    }
}

/// A librdkafka configuration: `defaults`, which the user's `options` may override, the
/// SASL password from its file, then `fixed`, which they may not.
pub(crate) fn client_config(
    defaults: &[(&str, &str)],
    options: &BTreeMap<String, String>,
    sasl_password_file: Option<&std::path::Path>,
    fixed: &[(&str, &str)],
) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::new();
    for (k, v) in defaults.iter().copied() {
        c.set(k, v);
    }
    for (k, v) in options {
        c.set(k, v);
    }
    if let Some(f) = sasl_password_file {
        c.set("sasl.password", crate::source::read_secret(f)?);
    }
    for (k, v) in fixed.iter().copied() {
        c.set(k, v);
    }
    Ok(c)
}

/// librdkafka's own error reports — a refused TLS certificate, a failed SASL login, a
/// broker that does not answer — as the source's (or producer's) last error: what the
/// client calls return only says that every broker is down.
pub(crate) struct Context(pub(crate) Arc<SourceStats>);

impl rdkafka::ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error");
        // "All brokers down" follows its cause, which was reported before it.
        if !all_brokers_down(&error) {
            self.0.error(format!("kafka: {reason}"));
        }
    }
}

impl ConsumerContext for Context {}

/// Whether `e` only says that no broker answers (its cause came through [`Context`]).
pub(crate) fn all_brokers_down(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown)
}

/// Whether a receive error is one [`Context`] already reported with its reason (a broker
/// connection, TLS handshake or login that failed, and why): recording it again would hide
/// the reason behind a bare code.
fn reported_by_context(e: &KafkaError) -> bool {
    all_brokers_down(e)
        || matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::Authentication
            )
        )
}

/// Runs the source until `stop` turns true.
pub async fn run(
    config: KafkaConfig,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let consumer = match config.client(&stats) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            stats.error(&e);
            tracing::error!(source = %config.name, error = %e, "kafka source not started");
            return;
        }
    };
    let topics: Vec<&str> = config.topics.iter().map(|t| t.name.as_str()).collect();
    if let Err(e) = consumer.subscribe(&topics) {
        stats.error(format!("cannot subscribe: {e}"));
        return;
    }
    let route_of: HashMap<&str, usize> = topics.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    tracing::info!(source = %config.name, group = %config.group, ?topics, "consuming Kafka");
    let mut backoff = Duration::ZERO;
    let mut was_connected = false;
    let delivery = Delivery {
        source: &config.name,
        tenant: &config.tenant,
        routes: &config.topics,
        sink: &sink,
        stats: &stats,
    };
    let mut lag_checked = Instant::now();
    let mut last_commit: Option<TopicPartitionList> = None;
    loop {
        if lag_checked.elapsed() >= Duration::from_secs(10) {
            lag_checked = Instant::now();
            let c = Arc::clone(&consumer);
            if let Ok(lag) = tokio::task::spawn_blocking(move || lag(&c)).await {
                stats.lag.store(lag, Ordering::Relaxed);
            }
        }
        let first = tokio::select! {
            m = consumer.recv() => m,
            () = stopped(&mut stop) => break,
            // Wake up now and then to refresh the lag while idle.
            () = tokio::time::sleep(Duration::from_secs(10)) => continue,
        };
        let mut batch = match first {
            Ok(m) => vec![m],
            Err(e) => {
                stats.set_connected(false);
                if reported_by_context(&e) {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.error(format!("kafka: {e}"));
                }
                backoff = next_backoff(backoff);
                tracing::warn!(source = %config.name, error = %e, retry_in = ?backoff, "kafka receive failed");
                if sleep_or_stop(backoff, &mut stop).await {
                    break;
                }
                continue;
            }
        };
        backoff = Duration::ZERO;
        if !std::mem::replace(&mut was_connected, true) {
            stats.set_connected(true);
        } else if stats.connected.load(Ordering::Relaxed) == 0 {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
            stats.set_connected(true);
        }
        let deadline = tokio::time::Instant::now() + config.linger;
        while batch.len() < config.batch {
            match tokio::time::timeout_at(next_deadline(deadline), consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                Ok(Err(e)) => {
                    stats.error(format!("kafka: {e}"));
                    break;
                }
                Err(_) => break,
            }
        }
        let msgs: Vec<Message<'_>> = batch
            .iter()
            .map(|m| Message {
                route: route_of.get(m.topic()).copied().unwrap_or(NO_ROUTE),
                topic: m.topic(),
                position: Position::Offset {
                    partition: m.partition(),
                    offset: m.offset(),
                },
                payload: m.payload().unwrap_or_default(),
            })
            .collect();
        if !delivery.store(&msgs, &mut stop).await {
            break;
        }
        // The next offset of each partition read, committed now that the batch is durable.
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in &batch {
            let e = next.entry((m.topic(), m.partition())).or_default();
            *e = (*e).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                stats.error(format!("offset: {e}"));
            }
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            stats.error(format!("cannot commit offsets: {e}"));
            tracing::warn!(source = %config.name, error = %e, "cannot commit offsets; the batch may be read again");
        }
        last_commit = Some(tpl);
    }
    // Make the last commit reach the broker before leaving the group.
    if let Some(tpl) = last_commit {
        let c = Arc::clone(&consumer);
        let committed = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync)).await;
        if let Ok(Err(e)) = committed {
            tracing::warn!(source = %config.name, error = %e, "cannot commit offsets at stop");
        }
    }
    stats.set_connected(false);
    // Dropping the consumer leaves the group (blocking): off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

/// Messages behind on the assigned partitions (blocking).
fn lag(consumer: &StreamConsumer<Context>) -> u64 {
    let Ok(position) = consumer.position() else {
        return 0;
    };
    let mut total = 0u64;
    for p in position.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(p.topic(), p.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let at = match p.offset() {
            Offset::Offset(o) => o,
            _ => continue,
        };
        total += u64::try_from(high - at).unwrap_or(0);
    }
    total
}
