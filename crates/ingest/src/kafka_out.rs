//! Kafka producer (`publish.kafka` in `dozor.yml`): what Dozor publishes to Kafka topics.
//!
//! - **Forwarding** (the ingest bus of DESIGN.md's scale-out): every log record and sample
//!   one tenant stores is also published, logs as NDJSON lines (`_time` in ns, `_msg`,
//!   `_stream`, the fields) and samples as seed 004's JSON metric push (an array of
//!   `{"name","value","labels","timestamp"}` per series), so a Kafka source with
//!   `format: ndjson` or `format: metrics` on another node stores them as they were.
//!   Non-finite values (the staleness markers of scrapes) are not forwarded: JSON has no
//!   NaN.
//! - **Alerts** (seed 004's `alerts-stream`, `fraud-events`): each alert that starts firing
//!   or resolves, as a JSON object in the shape of Alertmanager's alerts (labels,
//!   annotations, `startsAt`, `endsAt`, `status`, `fingerprint`), keyed by its fingerprint
//!   so one alert's messages stay in order; a stream's `match` selector picks the alerts.
//! - **Metric updates** (seed 004's `metrics-stream`): the result of each configured PromQL
//!   query every `interval`, in the metric push shape under the query's name.
//!
//! Delivery is at least once and nothing is lost while Kafka is down: messages are first
//! appended to an outbox (the spool of [`crate::backup`], fsynced) under the data
//! directory — forwarded records before the request that carried them is acknowledged —
//! and a file of the outbox is deleted only after the broker acknowledged every message in
//! it (`acks=all`, idempotent producer). A failed send retries the whole file with
//! back-off, which may repeat messages the broker had taken; a full outbox refuses new
//! records (HTTP 503 on forwarding), so memory and disk stay bounded.
//!
//! Outbox line format: `topic \t key \t payload \n` (topic names are checked to hold no tab,
//! payloads are compact JSON without raw newlines).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dozor_model::{Labels, LogRecord, Sample, TenantId};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::backup::Spool;
use crate::kafka::Context;
use crate::source::{SourceStats, next_backoff, sleep_or_stop};

/// One `publish.kafka` entry of `dozor.yml`. Its `Debug` hides `options` (SASL passwords).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaPublishConfig {
    /// Unique name: the `source` label of its `dozor_source_*` metrics and its outbox
    /// directory.
    pub name: String,
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Alert streams: each alert that fires or resolves goes to every stream it matches.
    #[serde(default)]
    pub alerts: Vec<AlertStream>,
    /// Metric updates: PromQL queries published every `interval`.
    #[serde(default)]
    pub metrics: Option<MetricUpdates>,
    /// Forwarding of one tenant's stored logs and samples.
    #[serde(default)]
    pub forward: Option<Forwarding>,
    /// Most bytes waiting in the outbox; beyond it forwarded ingest is refused.
    #[serde(default = "default_max_outbox")]
    pub max_outbox_bytes: u64,
    /// Further librdkafka producer settings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// A file holding `sasl.password`.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
}

/// A topic of alert notifications.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertStream {
    /// The topic.
    pub topic: String,
    /// A selector on the alert's labels (`{category="fraud"}`); every alert when absent.
    #[serde(default, rename = "match")]
    pub selector: Option<String>,
}

/// Published query results.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricUpdates {
    /// The topic.
    pub topic: String,
    /// The tenant whose metrics are queried.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// How often.
    #[serde(default = "default_interval", with = "dozor_model::duration")]
    pub interval: Duration,
    /// Metric name → PromQL instant query; each series of a result is published under the
    /// name, with the result's labels.
    pub queries: BTreeMap<String, String>,
}

/// What of a tenant's ingest is forwarded.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Forwarding {
    /// The tenant forwarded (one entry per tenant; the consumer names it again).
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// The topic of its log records and events (DESIGN.md: `dozor.logs`).
    #[serde(default)]
    pub logs: Option<String>,
    /// The topic of its samples (DESIGN.md: `dozor.metrics`).
    #[serde(default)]
    pub metrics: Option<String>,
}

fn default_max_outbox() -> u64 {
    1 << 30
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}

impl std::fmt::Debug for KafkaPublishConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublishConfig")
            .field("name", &self.name)
            .field("brokers", &self.brokers)
            .field("alerts", &self.alerts)
            .field("metrics", &self.metrics)
            .field("forward", &self.forward)
            .finish_non_exhaustive()
    }
}

/// Settings the delivery guarantee rests on; `options` cannot change them.
const FIXED: [&str; 4] = [
    "bootstrap.servers",
    "acks",
    "enable.idempotence",
    "message.timeout.ms",
];

fn check_topic(name: &str, what: &str, topic: &str) -> Result<(), String> {
    // Kafka's own rule: 1 to 249 of [a-zA-Z0-9._-].
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name}: {what}: {topic:?} is not a Kafka topic name"
        ))
    }
}

impl KafkaPublishConfig {
    /// Checks what can be checked without a broker (selectors are parsed by the caller).
    pub fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if self.brokers.trim().is_empty() {
            return Err(format!("{name}: no brokers"));
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        {
            return Err(format!("{name:?}: a name is letters, digits, - and _"));
        }
        for (i, a) in self.alerts.iter().enumerate() {
            check_topic(name, &format!("alerts[{i}].topic"), &a.topic)?;
        }
        if let Some(m) = &self.metrics {
            check_topic(name, "metrics.topic", &m.topic)?;
            if m.queries.is_empty() {
                return Err(format!("{name}: metrics.queries is empty"));
            }
            if m.interval < Duration::from_secs(1) {
                return Err(format!("{name}: metrics.interval must be at least 1s"));
            }
        }
        if let Some(f) = &self.forward {
            if f.logs.is_none() && f.metrics.is_none() {
                return Err(format!("{name}: forward names neither logs nor metrics"));
            }
            for (what, t) in [("forward.logs", &f.logs), ("forward.metrics", &f.metrics)] {
                if let Some(t) = t {
                    check_topic(name, what, t)?;
                }
            }
        }
        if self.alerts.is_empty() && self.metrics.is_none() && self.forward.is_none() {
            return Err(format!(
                "{name}: publishes nothing (alerts, metrics or forward)"
            ));
        }
        if let Some(k) = self.options.keys().find(|k| FIXED.contains(&k.as_str())) {
            return Err(format!("{name}: options may not set {k}"));
        }
        Ok(())
    }

    fn producer(&self, stats: &Arc<SourceStats>) -> Result<FutureProducer<Context>, String> {
        crate::kafka::client_config(
            &[("linger.ms", "20")],
            &self.options,
            self.sasl_password_file.as_deref(),
            &[
                ("bootstrap.servers", &self.brokers),
                ("client.id", &format!("dozor-{}", self.name)),
                ("acks", "all"),
                ("enable.idempotence", "true"),
                // A message not delivered in 30 s fails its file, which is retried whole.
                ("message.timeout.ms", "30000"),
            ],
        )?
        .create_with_context(Context(Arc::clone(stats)))
        .map_err(|e| format!("cannot create the producer: {e}"))
    }
}

/// Appends one outbox line.
fn push_line(out: &mut Vec<u8>, topic: &str, key: &str, payload: &Value) {
    out.extend_from_slice(topic.as_bytes());
    out.push(b'\t');
    out.extend_from_slice(key.as_bytes());
    out.push(b'\t');
    // Compact JSON escapes control characters: no raw newline or tab can appear.
    out.extend_from_slice(payload.to_string().as_bytes());
    out.push(b'\n');
}

/// Log records as outbox lines of NDJSON for `topic`.
pub fn encode_logs(topic: &str, records: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let mut m = Map::new();
        m.insert("_time".into(), json!(r.time_ns));
        m.insert("_msg".into(), json!(r.message));
        let stream: Map<String, Value> = r
            .stream
            .iter()
            .map(|l| (l.name.to_string(), json!(l.value)))
            .collect();
        m.insert("_stream".into(), Value::Object(stream));
        for (k, v) in &r.fields {
            // A field shadowing a convention name would be read back as the convention.
            if !matches!(k.as_str(), "_time" | "_msg" | "_stream") {
                m.insert(k.clone(), json!(v));
            }
        }
        push_line(&mut out, topic, "", &Value::Object(m));
    }
    out
}

/// Series as outbox lines of seed 004's metric push for `topic`, one message per series
/// (keyed by its labels, so a series stays on one partition, in order).
pub fn encode_series<'a>(
    topic: &str,
    series: impl Iterator<Item = (Vec<(&'a str, &'a str)>, &'a [Sample])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (pairs, samples) in series {
        let Some(name) = pairs
            .iter()
            .find(|(n, _)| *n == "__name__")
            .map(|(_, v)| *v)
        else {
            continue;
        };
        let labels: Map<String, Value> = pairs
            .iter()
            .filter(|(n, _)| *n != "__name__")
            .map(|(n, v)| ((*n).to_owned(), json!(v)))
            .collect();
        let points: Vec<Value> = samples
            .iter()
            .filter(|s| s.v.is_finite())
            .map(|s| json!({"name": name, "value": s.v, "labels": labels, "timestamp": s.t}))
            .collect();
        if points.is_empty() {
            continue;
        }
        // The series' fingerprint: one series stays on one partition, in order.
        let key = dozor_model::labels::fingerprint_pairs(pairs.iter().copied());
        push_line(&mut out, topic, &key, &Value::Array(points));
    }
    out
}

/// An alert notification as an outbox line for `topic`.
pub fn encode_alert(topic: &str, tenant: &TenantId, alert: &AlertMessage<'_>) -> Vec<u8> {
    let labels: Map<String, Value> = alert
        .labels
        .iter()
        .map(|l| (l.name.to_string(), json!(l.value)))
        .collect();
    let iso = |ms: i64| dozor_model::time::rfc3339_ns(ms.saturating_mul(1_000_000));
    let payload = json!({
        "status": if alert.resolved_ms.is_some() { "resolved" } else { "firing" },
        "tenant": tenant.as_str(),
        "fingerprint": alert.fingerprint,
        "labels": labels,
        "annotations": alert.annotations,
        "startsAt": iso(alert.starts_ms),
        "endsAt": alert.resolved_ms.map(iso),
        "value": if alert.value.is_finite() { json!(alert.value) } else { Value::Null },
        "group": alert.group,
    });
    let mut out = Vec::new();
    push_line(&mut out, topic, alert.fingerprint, &payload);
    out
}

/// What an alert notification says.
#[derive(Debug)]
pub struct AlertMessage<'a> {
    /// Identifying labels.
    pub labels: &'a Labels,
    /// Annotations.
    pub annotations: &'a BTreeMap<String, String>,
    /// Fingerprint (the API's alert id).
    pub fingerprint: &'a str,
    /// When it started firing, ms.
    pub starts_ms: i64,
    /// When it resolved, ms; `None` while firing.
    pub resolved_ms: Option<i64>,
    /// The expression's last value.
    pub value: f64,
    /// The rule group.
    pub group: &'a str,
}

/// Where forwarded ingest goes: per tenant, the topics and the outbox of their producer.
/// Empty (no `forward` configured) it does nothing.
#[derive(Debug, Default)]
pub struct Forwarder {
    routes: Vec<(Forwarding, Arc<Spool>)>,
}

impl Forwarder {
    /// Adds a producer's `forward`.
    pub fn add(&mut self, forwarding: Forwarding, outbox: Arc<Spool>) {
        self.routes.push((forwarding, outbox));
    }

    /// Whether anything is forwarded.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    fn routes<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> impl Iterator<Item = &'a (Forwarding, Arc<Spool>)> + 'a {
        self.routes.iter().filter(move |(f, _)| f.tenant == *tenant)
    }

    /// Puts `tenant`'s records in the outboxes that forward its logs; blocking (fsync).
    pub fn logs(&self, tenant: &TenantId, records: &[LogRecord]) -> Result<(), String> {
        for (f, outbox) in self.routes(tenant) {
            if let Some(topic) = &f.logs {
                outbox.append(&encode_logs(topic, records))?;
            }
        }
        Ok(())
    }

    /// Puts `tenant`'s series in the outboxes that forward its metrics; blocking (fsync).
    pub fn series<'a, I>(&self, tenant: &TenantId, series: impl Fn() -> I) -> Result<(), String>
    where
        I: Iterator<Item = (Vec<(&'a str, &'a str)>, &'a [Sample])>,
    {
        for (f, outbox) in self.routes(tenant) {
            if let Some(topic) = &f.metrics {
                outbox.append(&encode_series(topic, series()))?;
            }
        }
        Ok(())
    }
}

/// Opens the producer's outbox under `data_dir`.
pub fn open_outbox(data_dir: &Path, config: &KafkaPublishConfig) -> Result<Spool, String> {
    // Files are sealed at each pass of `run` (or at 4 MiB), so messages leave within about
    // a tenth of a second.
    Spool::open(
        &data_dir.join("kafka-outbox").join(&config.name),
        4 << 20,
        config.max_outbox_bytes,
    )
}

/// How often the outbox is sealed and sent while Kafka answers.
const PASS: Duration = Duration::from_millis(100);

/// Sends the outbox to Kafka until `stop`; at stop, one last pass.
pub async fn run(
    config: KafkaPublishConfig,
    outbox: Arc<Spool>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let producer = match config.producer(&stats) {
        Ok(p) => p,
        Err(e) => {
            stats.error(&e);
            tracing::error!(producer = %config.name, error = %e, "kafka producer not started");
            return;
        }
    };
    let mut backoff = Duration::ZERO;
    loop {
        let stopping = *stop.borrow();
        let o = Arc::clone(&outbox);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || o.seal_older(0)).await {
            stats.error(&e);
        }
        match send_ready(&producer, &outbox, &stats).await {
            Ok(()) => backoff = Duration::ZERO,
            Err(e) => {
                stats.error(&e);
                stats.set_connected(false);
                backoff = next_backoff(backoff);
                tracing::warn!(producer = %config.name, error = %e, retry_in = ?backoff, "kafka publish failed; the outbox keeps the messages");
            }
        }
        stats
            .lag
            .store(outbox.waiting_bytes(), std::sync::atomic::Ordering::Relaxed);
        if stopping {
            return;
        }
        let wait = if backoff.is_zero() { PASS } else { backoff };
        if sleep_or_stop(wait, &mut stop).await {
            // One more pass sends what came in meanwhile.
            continue;
        }
    }
}

/// Sends every sealed outbox file, each whole or not at all.
async fn send_ready(
    producer: &FutureProducer<Context>,
    outbox: &Spool,
    stats: &SourceStats,
) -> Result<(), String> {
    for (path, _) in outbox.ready_files() {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Every message of the file is queued in librdkafka at once (it batches them per
        // partition); when its queue is full the oldest delivery is awaited to make room.
        let mut pending = std::collections::VecDeque::new();
        let mut records = 0u64;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, |b| *b == b'\t');
            let (Some(topic), Some(key), Some(payload)) =
                (parts.next(), parts.next(), parts.next())
            else {
                tracing::error!(file = %path.display(), "a malformed outbox line was skipped");
                continue;
            };
            let topic = String::from_utf8_lossy(topic).into_owned();
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic).payload(payload);
            if !key.is_empty() {
                record = record.key(key);
            }
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        match pending.pop_front() {
                            Some(d) => {
                                delivered(d.await)?;
                                records += 1;
                            }
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((e, _)) => return Err(format!("topic {topic}: {e}")),
                }
            }
        }
        for d in pending {
            delivered(d.await)?;
            records += 1;
        }
        outbox.uploaded(&path);
        stats.set_connected(true);
        stats.delivered(records, bytes.len() as u64);
    }
    Ok(())
}

/// A delivery's outcome: acknowledged by the broker, or why not.
fn delivered<Canceled>(
    outcome: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, Canceled>,
) -> Result<(), String> {
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, m))) => Err(format!("topic {}: {e}", rdkafka::Message::topic(&m))),
        Err(_) => Err("the producer was dropped".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<(String, String, Value)> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| {
                let mut p = l.splitn(3, '\t');
                let (t, k, v) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                (t.to_owned(), k.to_owned(), serde_json::from_str(v).unwrap())
            })
            .collect()
    }

    #[test]
    fn forwarded_logs_decode_back_to_the_same_records() {
        let mut r = LogRecord::new(
            1_796_500_000_123_456_789,
            Labels::from_pairs([("service", "shop"), ("level", "error")]).unwrap(),
            "payment failed\tline two\nend",
        );
        r.fields = vec![
            ("amount".into(), "12000".into()),
            ("user.id".into(), "u1".into()),
        ];
        let out = encode_logs("dozor.logs", std::slice::from_ref(&r));
        let got = lines(&out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "dozor.logs");
        let payload = got[0].2.to_string();
        let back = crate::ndjson::parse(payload.as_bytes(), &crate::ndjson::NdjsonOptions::new(0))
            .unwrap();
        assert_eq!(back, vec![r]);
    }

    #[test]
    fn series_become_metric_pushes_without_non_finite_values() {
        let samples = [
            Sample { t: 1000, v: 2.5 },
            Sample {
                t: 2000,
                v: f64::NAN,
            },
        ];
        let pairs = vec![("__name__", "sales_total"), ("event", "e1")];
        let out = encode_series("m", std::iter::once((pairs, &samples[..])));
        let got = lines(&out);
        assert_eq!(got.len(), 1);
        assert!(!got[0].1.is_empty(), "keyed by series");
        assert_eq!(
            got[0].2,
            json!([{"name": "sales_total", "value": 2.5, "labels": {"event": "e1"}, "timestamp": 1000}])
        );
        let batch = crate::json::parse(
            got[0].2.to_string().as_bytes(),
            0,
            &crate::Limits::default(),
        )
        .unwrap();
        assert_eq!(batch.len(), 1);
        let stale = [Sample { t: 1, v: f64::NAN }];
        let none = encode_series("m", std::iter::once((vec![("__name__", "x")], &stale[..])));
        assert!(none.is_empty());
    }

    #[test]
    fn configuration_is_checked() {
        let ok: KafkaPublishConfig = serde_saphyr::from_str(
            "name: out\nbrokers: b:9092\nalerts: [{topic: alerts-stream}, {topic: fraud-events, match: '{category=\"fraud\"}'}]\n",
        )
        .unwrap();
        assert!(ok.check().is_ok());
        for (yaml, want) in [
            ("name: out\nbrokers: b\n", "publishes nothing"),
            (
                "name: out\nbrokers: b\nalerts: [{topic: 'a b'}]\n",
                "alerts[0].topic",
            ),
            ("name: out\nbrokers: b\nforward: {tenant: t}\n", "neither"),
            (
                "name: out\nbrokers: b\nalerts: [{topic: a}]\noptions: {acks: '1'}\n",
                "acks",
            ),
            (
                "name: out\nbrokers: b\nmetrics: {topic: m, queries: {}}\n",
                "queries",
            ),
        ] {
            let c: KafkaPublishConfig = serde_saphyr::from_str(yaml).unwrap();
            let e = c.check().unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
