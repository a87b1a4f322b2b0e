//! What every connector shares: the counters behind `dozor_source_*` and `/readyz`
//! ([`SourceStats`], [`SourceRegistry`]), how a message from a bus becomes records
//! ([`Format`], [`Route`]), and the one delivery path of the bus connectors (Kafka,
//! RabbitMQ, MQTT, NATS): decode a batch, store it durably through a [`BusSink`], retry
//! with back-off while the store fails, and only then acknowledge to the broker.
//!
//! At-least-once, like Kafka Connect: a crash between the durable store and the
//! acknowledgement redelivers that batch, so duplicates are bounded by one batch per
//! source. A message that does not decode (a *poison* message) is not retried: it is
//! stored as a dead letter — a record of the stream `{dead_letter="<source>"}` holding the
//! payload (lossy UTF-8, cut at 64 KiB), the `reason`, the `topic` and its `position` — and
//! acknowledged with the rest, so one bad message never blocks a stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_model::{Labels, LogRecord, TenantId};
use serde::{Deserialize, Serialize};

use crate::{Batch, Limits};

/// Counters of one source, shared with its metrics and `/readyz`.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Records delivered.
    pub records: AtomicU64,
    /// Bytes of the lines or messages delivered.
    pub bytes: AtomicU64,
    /// Failed reads, deliveries, acknowledgements, connections and checkpoint saves.
    pub errors: AtomicU64,
    /// Lines cut at `max_line_bytes` or dropped beyond multiline `max_lines` (file tail).
    pub truncated: AtomicU64,
    /// Truncations and copytruncate rotations seen (file tail).
    pub rotations: AtomicU64,
    /// Data waiting: bytes not yet read (file tail) or spooled for S3 (raw backup),
    /// messages behind (Kafka lag, JetStream pending).
    pub lag: AtomicU64,
    /// Files open (file tail).
    pub files: AtomicU64,
    /// Last successful delivery, ms since the epoch (0: none yet).
    pub last_success_ms: AtomicU64,
    /// Messages that did not decode, stored as dead letters.
    pub dead_letters: AtomicU64,
    /// 1 while connected to the broker (bus sources).
    pub connected: AtomicU64,
    /// Connections made after the first one.
    pub reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl SourceStats {
    /// Counts an error and keeps its text for `/readyz`.
    pub fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// The last error, cleared by the next success.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a delivery of `records` records of `bytes` bytes, now.
    pub fn delivered(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_success_ms.store(
            u64::try_from(dozor_model::time::now_ms()).unwrap_or(0),
            Ordering::Relaxed,
        );
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Marks the broker connection up or down.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(u64::from(up), Ordering::Relaxed);
    }
}

/// One source: its name, its kind (`file`, `kafka`, `rabbitmq`, `mqtt`, `nats`) and its
/// counters.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// The configured name.
    pub name: String,
    /// The connector.
    pub kind: &'static str,
    /// The tenant its records go to.
    pub tenant: TenantId,
    /// Its counters.
    pub stats: Arc<SourceStats>,
}

impl SourceEntry {
    /// `up` or `down`: a bus source by its broker connection, a file source by whether
    /// its last read or delivery failed.
    pub fn status(&self) -> &'static str {
        let up = if self.kind == "file" {
            self.stats.last_error().is_none()
        } else {
            self.stats.connected.load(Ordering::Relaxed) == 1
        };
        if up { "up" } else { "down" }
    }
}

/// Every configured source, for `/metrics` and `/readyz`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SourceRegistry(Arc<Mutex<Vec<SourceEntry>>>);

impl SourceRegistry {
    /// An empty registry.
    pub fn new() -> SourceRegistry {
        SourceRegistry::default()
    }

    /// Registers a source and returns its counters (the same ones for a name registered
    /// twice).
    pub fn register(&self, name: &str, kind: &'static str, tenant: &TenantId) -> Arc<SourceStats> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = all.iter().find(|e| e.name == name && e.kind == kind) {
            return Arc::clone(&e.stats);
        }
        let stats = Arc::new(SourceStats::default());
        all.push(SourceEntry {
            name: name.to_owned(),
            kind,
            tenant: tenant.clone(),
            stats: Arc::clone(&stats),
        });
        stats
    }

    /// Every source, in the order registered.
    pub fn entries(&self) -> Vec<SourceEntry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How a message's payload becomes records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON log lines, one or more per message, with the NDJSON conventions of
    /// `POST /api/v1/logs/ingest` (`_msg`/`message`, `_time`/`timestamp`, `_stream`).
    #[default]
    Ndjson,
    /// Business events, the body of `POST /api/v1/events` (an object, an array or
    /// `{"events": [...]}`); a route's `event_type` names events that carry no type.
    Events,
    /// Plain text: each line a log message, at the time it arrived.
    Lines,
    /// Seed 004's JSON metric push (`{"name", "value", "labels", "timestamp"}`).
    Metrics,
    /// Flat JSON records of measurements (seed 001's metrics topic): every number a gauge
    /// named `<metric_prefix><member>`, every string a label, the time from `timestamp`.
    Record,
    /// A Prometheus remote_write request (snappy-compressed protobuf).
    RemoteWrite,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] = [
        Format::Ndjson,
        Format::Events,
        Format::Lines,
        Format::Metrics,
        Format::Record,
        Format::RemoteWrite,
    ];
}

/// One subscription of a bus source: a Kafka topic, a RabbitMQ queue, an MQTT topic filter
/// or a NATS subject, and how its messages decode.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The topic, queue or subject (MQTT and NATS wildcards allowed where the broker has
    /// them).
    pub name: String,
    /// How its messages decode.
    #[serde(default)]
    pub format: Format,
    /// Stream labels added to every log record (and labels to every metric).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The type of `events` that carry none (seed 001's `transactions` topic:
    /// `transaction`).
    #[serde(default)]
    pub event_type: Option<String>,
    /// Prefix of the metric names of `record` (default: none).
    #[serde(default)]
    pub metric_prefix: String,
}

impl Route {
    /// A route of `name` decoding `format`, with no labels.
    pub fn new(name: &str, format: Format) -> Route {
        Route {
            name: name.to_owned(),
            format,
            labels: BTreeMap::new(),
            event_type: None,
            metric_prefix: String::new(),
        }
    }
}

/// The index of the first route whose name matches `topic`, where `one` in a pattern
/// matches one `/`- or `.`-separated level and `rest` (last) every remaining level: MQTT's
/// `+` and `#` (`sep` `/`), NATS' `*` and `>` (`sep` `.`).
pub fn route_for(routes: &[Route], topic: &str, sep: char, one: &str, rest: &str) -> Option<usize> {
    routes.iter().position(|r| {
        let mut pattern = r.name.split(sep);
        let mut levels = topic.split(sep);
        loop {
            match (pattern.next(), levels.next()) {
                (Some(p), _) if p == rest => return true,
                (Some(p), Some(l)) if p == one || p == l => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    })
}

/// What a batch of messages decoded into.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Log records, events and dead letters.
    pub logs: Vec<LogRecord>,
    /// Metric samples.
    pub metrics: Batch,
    /// Messages that did not decode (stored as dead letters among `logs`).
    pub dead: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// One message received from a bus.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Index of the route (the subscription) it came through; [`NO_ROUTE`] when none
    /// matches its topic (it then becomes a dead letter).
    pub route: usize,
    /// The topic, queue or subject it was published to.
    pub topic: &'a str,
    /// Where it was: kept with a dead letter and in the raw backup.
    pub position: Position,
    /// The payload.
    pub payload: &'a [u8],
}

/// `scheme://user:password@host/…` with the password replaced by `***`, for logs and
/// `Debug`; text that is not a URL comes back as it is.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Reads a secret file (a password), dropping one trailing newline; read at each connect so
/// a rotated secret is picked up on the next reconnection.
pub fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

/// `url` with its password replaced by `password` (percent-encoded), the user kept.
pub fn url_with_password(url: &str, password: &str) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if u.username().is_empty() {
        return Err("the URL names no user for the password".into());
    }
    u.set_password(Some(password))
        .map_err(|()| "this URL cannot hold a password".to_owned())?;
    Ok(u.to_string())
}

/// The route of a message no route matches.
pub const NO_ROUTE: usize = usize::MAX;

/// Where a message was in its broker, written out (`partition 3 offset 1200`) only for a
/// dead letter or the raw backup: a plain value on the path every message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Position {
    /// Unknown.
    #[default]
    Unknown,
    /// A Kafka partition and offset.
    Offset {
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
    },
    /// A RabbitMQ delivery tag.
    Delivery(u64),
    /// An MQTT packet id.
    Packet(u16),
    /// A JetStream stream sequence.
    Sequence(u64),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Unknown => Ok(()),
            Position::Offset { partition, offset } => {
                write!(f, "partition {partition} offset {offset}")
            }
            Position::Delivery(tag) => write!(f, "delivery {tag}"),
            Position::Packet(id) => write!(f, "packet {id}"),
            Position::Sequence(seq) => write!(f, "stream sequence {seq}"),
        }
    }
}

/// Longest payload kept in a dead letter.
const DEAD_LETTER_BYTES: usize = 64 << 10;

/// Decodes a batch for the source `source`: every message through its route's format,
/// those that fail into dead letters. `now_ns` is the time of records without one.
pub fn decode(source: &str, routes: &[Route], msgs: &[Message<'_>], now_ns: i64) -> Decoded {
    let mut out = Decoded::default();
    for m in msgs {
        out.bytes += m.payload.len() as u64;
        let decoded = match routes.get(m.route) {
            Some(route) => decode_one(route, m, now_ns, &mut out),
            None => Err(format!("no route matches topic {:?}", m.topic)),
        };
        if let Err(reason) = decoded {
            out.dead += 1;
            out.logs.push(dead_letter(source, m, &reason, now_ns));
        }
    }
    out
}

fn decode_one(
    route: &Route,
    m: &Message<'_>,
    now_ns: i64,
    out: &mut Decoded,
) -> Result<(), String> {
    let start = out.logs.len();
    match route.format {
        Format::Ndjson => {
            let opts = crate::ndjson::NdjsonOptions::new(now_ns);
            let records = crate::ndjson::parse(m.payload, &opts).map_err(|e| e.to_string())?;
            out.logs.extend(records);
        }
        Format::Events => {
            let records = crate::events::parse(m.payload, now_ns, route.event_type.as_deref())
                .map_err(|e| e.to_string())?;
            out.logs.extend(records);
        }
        Format::Lines => {
            let text =
                std::str::from_utf8(m.payload).map_err(|e| format!("not UTF-8 text: {e}"))?;
            let stream = Labels::from_pairs([("topic", m.topic)]).map_err(|e| e.to_string())?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                out.logs.push(LogRecord::new(
                    now_ns,
                    stream.clone(),
                    line.trim_end_matches('\r'),
                ));
            }
        }
        Format::Metrics | Format::Record | Format::RemoteWrite => {
            let t_ms = now_ns / 1_000_000;
            let limits = Limits::default();
            let mut batch = match route.format {
                Format::Metrics => {
                    crate::json::parse(m.payload, t_ms, &limits).map_err(|e| e.to_string())?
                }
                Format::Record => crate::json::parse_record(m.payload, t_ms, &route.metric_prefix)
                    .map_err(|e| e.to_string())?,
                _ => crate::remote_write::decode(m.payload, &limits)
                    .map_err(|e| e.to_string())?
                    .0
                    .to_series(),
            };
            if !route.labels.is_empty() {
                for (labels, _) in &mut batch {
                    *labels = add_labels(labels, &route.labels)?;
                }
            }
            out.metrics.extend(batch);
            return Ok(());
        }
    }
    if !route.labels.is_empty() {
        for r in &mut out.logs[start..] {
            r.stream = add_labels(&r.stream, &route.labels)?;
        }
    }
    Ok(())
}

fn add_labels(labels: &Labels, extra: &BTreeMap<String, String>) -> Result<Labels, String> {
    let mut out = labels.clone();
    for (k, v) in extra {
        out = out.with(k, v).map_err(|e| format!("label {k}: {e}"))?;
    }
    Ok(out)
}

/// The record a poison message becomes.
pub fn dead_letter(source: &str, m: &Message<'_>, reason: &str, now_ns: i64) -> LogRecord {
    let payload = &m.payload[..m.payload.len().min(DEAD_LETTER_BYTES)];
    let stream = Labels::from_pairs([("dead_letter", source)]).unwrap_or_default();
    let mut r = LogRecord::new(now_ns, stream, String::from_utf8_lossy(payload));
    r.fields = vec![
        ("position".to_owned(), m.position.to_string()),
        ("reason".to_owned(), reason.to_owned()),
        ("topic".to_owned(), m.topic.to_owned()),
    ];
    r
}

/// Where bus connectors store what they received (the log store and the tsdb, in the
/// binary).
pub trait BusSink: Send + Sync + 'static {
    /// Stores records and samples for `tenant` and makes them durable (`fsync`) before
    /// returning: the connector acknowledges to its broker only after this. Blocking:
    /// called off the async workers.
    fn store(&self, tenant: &TenantId, logs: Vec<LogRecord>, metrics: Batch) -> Result<(), String>;

    /// Whether raw messages are backed up (the S3 raw backup of `backup.s3`).
    fn backs_up(&self) -> bool {
        false
    }

    /// Keeps the raw messages of a batch durably — PII masked as the stores mask it
    /// ([`crate::backup::encode`]) — before the batch is stored and acknowledged. Blocking.
    /// Called only when [`BusSink::backs_up`].
    fn backup(
        &self,
        tenant: &TenantId,
        source: &str,
        msgs: &[Message<'_>],
        received_ms: i64,
    ) -> Result<(), String> {
        let _ = (tenant, source, msgs, received_ms);
        Ok(())
    }
}

/// Default `batch` of the bus sources: most messages in one stored batch.
pub(crate) fn default_batch() -> usize {
    500
}

/// Default `linger` of the bus sources: longest wait for a batch to fill.
pub(crate) fn default_linger() -> Duration {
    Duration::from_millis(100)
}

/// Longest wait between retries.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The next wait of an exponential back-off from 200 ms to [`MAX_BACKOFF`], with up to
/// 20 % jitter so many sources do not retry in step.
pub fn next_backoff(last: Duration) -> Duration {
    let base = if last.is_zero() {
        Duration::from_millis(200)
    } else {
        (last * 2).min(MAX_BACKOFF)
    };
    let jitter = base.mul_f64(fastrand::f64() * 0.2);
    (base + jitter).min(MAX_BACKOFF)
}

/// Sleeps `d`; true when `stop` turned true meanwhile.
pub async fn sleep_or_stop(d: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        // A dropped sender stops the source too.
        _ = stop.wait_for(|s| *s) => return true,
    }
    *stop.borrow()
}

/// Longest pause between two messages of one batch: a broker that has nothing more on its
/// way within it has delivered what was waiting (or its window of unacknowledged messages —
/// Mosquitto's is 20 — is full), so the batch is stored and acknowledged at once rather
/// than after the whole `linger`.
const IDLE_GAP: Duration = Duration::from_millis(5);

/// When to stop waiting for the next message of a batch: after [`IDLE_GAP`], and never
/// after `deadline` (the batch's start plus its `linger`).
pub(crate) fn next_deadline(deadline: tokio::time::Instant) -> tokio::time::Instant {
    (tokio::time::Instant::now() + IDLE_GAP).min(deadline)
}

/// Resolves once `stop` turns true (or its sender is gone), holding no borrow of it.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Where a bus source's batches go: its name (dead letters, logs), tenant, routes, sink
/// and counters.
pub struct Delivery<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The tenant its records belong to.
    pub tenant: &'a TenantId,
    /// Its subscriptions, which [`Message::route`] indexes.
    pub routes: &'a [Route],
    /// The store.
    pub sink: &'a Arc<dyn BusSink>,
    /// Its counters.
    pub stats: &'a SourceStats,
}

impl Delivery<'_> {
    /// Decodes `msgs` and stores them, retrying with back-off until the store takes them;
    /// `false` when `stop` turned true first (nothing may then be acknowledged).
    pub async fn store(
        &self,
        msgs: &[Message<'_>],
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let Delivery {
            source,
            tenant,
            routes,
            sink,
            stats,
        } = *self;
        let now_ns = dozor_model::time::now_ms().saturating_mul(1_000_000);
        let mut backoff = Duration::ZERO;
        let mut first = true;
        loop {
            // A failed store consumed the records: decode again (the same `now_ns`, the same
            // records) rather than keep a copy of every batch for the rare retry.
            let decoded = decode(source, routes, msgs, now_ns);
            if first && decoded.dead > 0 {
                stats
                    .dead_letters
                    .fetch_add(decoded.dead, Ordering::Relaxed);
                tracing::warn!(
                    source,
                    count = decoded.dead,
                    "messages that do not decode stored as dead letters"
                );
            }
            first = false;
            let count = (decoded.logs.len() + crate::sample_count(&decoded.metrics)) as u64;
            let bytes = decoded.bytes;
            // The backup masks and writes off the async workers: it takes its own copy.
            let raw: Option<Vec<(String, Position, Vec<u8>)>> = sink.backs_up().then(|| {
                msgs.iter()
                    .map(|m| (m.topic.to_owned(), m.position, m.payload.to_vec()))
                    .collect()
            });
            let (sink2, tenant2, source2) = (Arc::clone(sink), tenant.clone(), source.to_owned());
            let stored = tokio::task::spawn_blocking(move || {
                if let Some(raw) = raw {
                    let msgs: Vec<Message<'_>> = raw
                        .iter()
                        .map(|(topic, position, payload)| Message {
                            route: 0,
                            topic,
                            position: *position,
                            payload,
                        })
                        .collect();
                    sink2.backup(&tenant2, &source2, &msgs, now_ns / 1_000_000)?;
                }
                sink2.store(&tenant2, decoded.logs, decoded.metrics)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the store panicked: {e}")));
            match stored {
                Ok(()) => {
                    stats.delivered(count, bytes);
                    return true;
                }
                Err(e) => {
                    stats.error(&e);
                    backoff = next_backoff(backoff);
                    tracing::warn!(source, error = %e, retry_in = ?backoff, "cannot store received messages; retrying");
                    if sleep_or_stop(backoff, stop).await {
                        return false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(route: usize, payload: &'a [u8]) -> Message<'a> {
        Message {
            route,
            topic: "t",
            position: Position::Offset {
                partition: 0,
                offset: 7,
            },
            payload,
        }
    }

    #[test]
    fn each_format_decodes_and_poison_becomes_a_dead_letter() {
        let mut tx = Route::new("transactions", Format::Events);
        tx.event_type = Some("transaction".into());
        let mut rec = Route::new("metrics", Format::Record);
        rec.labels.insert("env".into(), "prod".into());
        let routes = [
            Route::new("logs", Format::Ndjson),
            tx,
            rec,
            Route::new("raw", Format::Lines),
        ];
        let msgs = [
            msg(
                0,
                br#"{"message":"payment failed","service":"api","level":"error","user_id":"u1"}"#,
            ),
            msg(
                1,
                br#"{"transaction_id":"t1","user_id":"u1","amount":12000.5,"currency":"RUB"}"#,
            ),
            msg(
                2,
                br#"{"service":"api","cpu_usage":85.5,"latency_ms":1200,"timestamp":1700000000}"#,
            ),
            msg(3, b"line one\r\n\nline two\n"),
            msg(0, b"{not json"),
            msg(1, br#"{"user_id":"u1","amount":"ten"}"#),
            msg(NO_ROUTE, b"stray"),
        ];
        let d = decode("bus", &routes, &msgs, 5_000_000_000);
        assert_eq!(d.dead, 3);
        let messages: Vec<&str> = d.logs.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "payment failed",
                "transaction",
                "line one",
                "line two",
                "{not json",
                r#"{"user_id":"u1","amount":"ten"}"#,
                "stray"
            ]
        );
        assert!(
            d.logs[6]
                .fields
                .iter()
                .any(|(k, v)| k == "reason" && v.contains("no route"))
        );
        assert_eq!(d.logs[0].stream.get("service"), Some("api"));
        assert_eq!(d.logs[1].stream.get("event"), Some("transaction"));
        assert!(
            d.logs[1]
                .fields
                .iter()
                .any(|(k, v)| k == "amount" && v == "12000.5")
        );
        assert_eq!(d.logs[2].stream.get("topic"), Some("t"));
        assert_eq!(d.logs[2].time_ns, 5_000_000_000);
        let dead = &d.logs[5];
        assert_eq!(dead.stream.get("dead_letter"), Some("bus"));
        let reason = &dead.fields.iter().find(|(k, _)| k == "reason").unwrap().1;
        assert!(reason.contains("amount"), "{reason}");
        assert!(
            dead.fields
                .iter()
                .any(|(k, v)| k == "position" && v == "partition 0 offset 7")
        );
        let mut names: Vec<(String, String, f64, i64)> = d
            .metrics
            .iter()
            .map(|(l, s)| {
                (
                    l.metric_name().unwrap().to_owned(),
                    l.get("env").unwrap_or("").to_owned(),
                    s[0].v,
                    s[0].t,
                )
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                ("cpu_usage".into(), "prod".into(), 85.5, 1_700_000_000_000),
                (
                    "latency_ms".into(),
                    "prod".into(),
                    1200.0,
                    1_700_000_000_000
                )
            ]
        );
    }

    #[test]
    fn a_huge_poison_message_is_cut() {
        let payload = vec![b'x'; DEAD_LETTER_BYTES * 2];
        let d = decode(
            "bus",
            &[Route::new("r", Format::Events)],
            &[msg(0, &payload)],
            0,
        );
        assert_eq!(d.dead, 1);
        assert_eq!(d.logs[0].message.len(), DEAD_LETTER_BYTES);
        assert_eq!(d.bytes, payload.len() as u64);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact_url("amqp://u:p@ss@h/v@x"), "amqp://u:***@h/v@x");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn passwords_from_files_go_into_the_url() {
        assert_eq!(
            url_with_password("amqp://dozor@h:5672/%2f", "p@ss:w/rd").unwrap(),
            "amqp://dozor:p%40ss%3Aw%2Frd@h:5672/%2f"
        );
        assert_eq!(
            url_with_password("amqp://u:old@h/v", "new").unwrap(),
            "amqp://u:new@h/v"
        );
        assert!(url_with_password("amqp://h/v", "x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "secret\n").unwrap();
        assert_eq!(read_secret(&f).unwrap(), "secret");
        assert!(
            read_secret(&dir.path().join("missing"))
                .unwrap_err()
                .contains("missing")
        );
    }

    #[test]
    fn wildcard_routes() {
        let routes = [
            Route::new("devices/+/telemetry", Format::Record),
            Route::new("devices/#", Format::Lines),
            Route::new("exact", Format::Ndjson),
        ];
        let mqtt = |t| route_for(&routes, t, '/', "+", "#");
        assert_eq!(mqtt("devices/kkt-1/telemetry"), Some(0));
        assert_eq!(mqtt("devices/kkt-1/log"), Some(1));
        assert_eq!(mqtt("devices"), Some(1));
        assert_eq!(mqtt("exact"), Some(2));
        assert_eq!(mqtt("exact/more"), None);
        assert_eq!(mqtt("other"), None);
        let nats = [
            Route::new("events.*.sale", Format::Events),
            Route::new("logs.>", Format::Ndjson),
        ];
        assert_eq!(route_for(&nats, "events.shop.sale", '.', "*", ">"), Some(0));
        assert_eq!(route_for(&nats, "events.shop.refund", '.', "*", ">"), None);
        assert_eq!(route_for(&nats, "logs.a.b", '.', "*", ">"), Some(1));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            b = next_backoff(b);
            seen.push(b);
        }
        assert!(seen[0] >= Duration::from_millis(200) && seen[0] < Duration::from_millis(241));
        assert!(seen[1] >= Duration::from_millis(400));
        assert_eq!(*seen.last().unwrap(), MAX_BACKOFF);
    }
}
