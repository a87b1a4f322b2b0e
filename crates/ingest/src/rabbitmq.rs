//! RabbitMQ source (`sources.rabbitmq` in `dozor.yml`): consumes queues as log, event or
//! metric sources and watches queue depths, dead-letter queues above all.
//!
//! Each queue is consumed on its own channel with a prefetch window; deliveries are
//! gathered into batches (at most `batch` messages, waiting at most `linger` for more),
//! stored durably through the [`BusSink`], and only then acknowledged with one
//! `basic.ack(multiple)` of the batch's last delivery tag — one channel per queue keeps the
//! tags of a batch contiguous, so the multiple-ack covers exactly the stored deliveries.
//! Unacknowledged deliveries return to the queue when the connection drops, so a crash
//! redelivers at most one batch (plus the prefetch window, never acknowledged).
//!
//! The watch (`watch`, `dead_letter_queues`) declares each queue passively every
//! `watch_interval` and stores `rabbitmq_queue_messages` and `rabbitmq_queue_consumers`
//! (the names of RabbitMQ's own Prometheus plugin) with `queue`, `source` and
//! `dead_letter="true"` on dead-letter queues, which the shipped dead-letter alert reads.
//! Rates come from PromQL (`deriv(rabbitmq_queue_messages[5m])`).
//!
//! With `management_url` (RabbitMQ's management plugin) the watch reads each queue from
//! `GET /api/queues/<vhost>/<queue>` instead, logging in with the AMQP URL's user and
//! password, and adds what a passive declare cannot tell: `rabbitmq_queue_messages_ready`,
//! `rabbitmq_queue_messages_unacked`, and the queue's message counters
//! `rabbitmq_queue_messages_{published,delivered,acked,redelivered}_total`, whose `rate()`
//! is the publish/deliver/ack rate (the management UI's own rates are averages over its
//! sampling window, which PromQL can do better over the counters).
//!
//! `amqps://` URLs connect over TLS (rustls with ring), verified against the system's roots
//! or `ca_file`.
//!
//! A lost connection is retried with exponential back-off and jitter; `dozor_source_*`
//! counts reconnections and errors and `/readyz` shows the last error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dozor_model::{Labels, Sample, TenantId};
use futures_core::Stream;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::source::{
    BusSink, Delivery, Message, Position, Route, SourceStats, default_batch, default_linger,
    next_backoff, next_deadline, sleep_or_stop, stopped,
};

/// One `sources.rabbitmq` entry of `dozor.yml`. Its `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitConfig {
    /// Unique name: the `source` label of its metrics and dead letters.
    pub name: String,
    /// `amqp://user:password@host:5672/vhost` (`%2f` is the default vhost).
    pub url: String,
    /// A file holding the password, which replaces the URL's (keep it out of `dozor.yml`).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// PEM file of the CA certificates an `amqps://` server is verified against, instead of
    /// the system's roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The tenant its records belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Queues to consume and how their messages decode.
    #[serde(default)]
    pub queues: Vec<Route>,
    /// Queues whose depth to watch (the consumed ones are not watched unless listed).
    #[serde(default)]
    pub watch: Vec<String>,
    /// Dead-letter queues to watch; their series carry `dead_letter="true"`.
    #[serde(default)]
    pub dead_letter_queues: Vec<String>,
    /// RabbitMQ's management API (`http://host:15672`): the watch reads queues there,
    /// with their message counters, instead of declaring them passively.
    #[serde(default)]
    pub management_url: Option<String>,
    /// How often the watched queues are read.
    #[serde(default = "default_watch_interval", with = "dozor_model::duration")]
    pub watch_interval: Duration,
    /// Most messages in one stored batch (also the channel's prefetch, twice over).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for a batch to fill once its first message came.
    #[serde(default = "default_linger", with = "dozor_model::duration")]
    pub linger: Duration,
}

impl std::fmt::Debug for RabbitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitConfig")
            .field("name", &self.name)
            .field("url", &crate::source::redact_url(&self.url))
            .field("tenant", &self.tenant)
            .field("queues", &self.queues)
            .field("watch", &self.watch)
            .field("dead_letter_queues", &self.dead_letter_queues)
            .field(
                "management_url",
                &self
                    .management_url
                    .as_deref()
                    .map(crate::source::redact_url),
            )
            .finish_non_exhaustive()
    }
}

fn default_watch_interval() -> Duration {
    Duration::from_secs(15)
}

impl RabbitConfig {
    /// Checks what can be checked without a broker.
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return Err(format!("{}: url must start with amqp://", self.name));
        }
        if self.ca_file.is_some() && !self.url.starts_with("amqps://") {
            return Err(format!("{}: ca_file needs an amqps:// url", self.name));
        }
        if self.queues.is_empty() && self.watch.is_empty() && self.dead_letter_queues.is_empty() {
            return Err(format!("{}: no queues to consume or watch", self.name));
        }
        if self.batch == 0 || self.batch > 10_000 {
            return Err(format!("{}: batch must be 1 to 10000", self.name));
        }
        if let Some(m) = &self.management_url {
            crate::probe::checks::parse_http_url(m)
                .map_err(|e| format!("{}: management_url: {e}", self.name))?;
            if self.watch.is_empty() && self.dead_letter_queues.is_empty() {
                return Err(format!(
                    "{}: management_url needs queues to watch",
                    self.name
                ));
            }
        }
        if self.watch_interval < Duration::from_secs(1) {
            return Err(format!("{}: watch_interval must be at least 1s", self.name));
        }
        Ok(())
    }
}

/// Runs the source until `stop` turns true: one consumer per queue and the watch, each
/// reconnecting on its own.
pub async fn run(
    config: RabbitConfig,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    stop: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let mut tasks = Vec::new();
    for i in 0..config.queues.len() {
        tasks.push(tokio::spawn(consume(
            Arc::clone(&config),
            i,
            Arc::clone(&sink),
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    if !config.watch.is_empty() || !config.dead_letter_queues.is_empty() {
        tasks.push(tokio::spawn(watch_queues(
            Arc::clone(&config),
            Arc::clone(&sink),
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(source = %config.name, error = %e, "rabbitmq task failed");
        }
    }
}

async fn connect(config: &RabbitConfig) -> Result<Connection, String> {
    let props = ConnectionProperties::default()
        .with_connection_name(format!("dozor:{}", config.name).into());
    let url = match &config.password_file {
        Some(f) => crate::source::url_with_password(&config.url, &crate::source::read_secret(f)?)?,
        None => config.url.clone(),
    };
    let connecting = async {
        match &config.ca_file {
            Some(f) => {
                let pem = std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
                let tls = lapin::tcp::OwnedTLSConfig {
                    identity: None,
                    cert_chain: Some(pem),
                };
                let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
                Connection::connect_with_config(&url, props, tls, runtime)
                    .await
                    .map_err(|e| format!("cannot connect: {e}"))
            }
            None => Connection::connect(&url, props)
                .await
                .map_err(|e| format!("cannot connect: {e}")),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| "connection timed out after 10s".to_owned())?
}

/// Consumes queue `route` of `config`, reconnecting until `stop`.
async fn consume(
    config: Arc<RabbitConfig>,
    route: usize,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let queue = config.queues[route].name.clone();
    let mut backoff = Duration::ZERO;
    let mut connected_before = false;
    while !*stop.borrow() {
        match consume_once(
            &config,
            route,
            &sink,
            &stats,
            &mut stop,
            &mut connected_before,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                stats.set_connected(false);
                stats.error(&e);
                backoff = next_backoff(backoff);
                tracing::warn!(source = %config.name, queue, error = %e, retry_in = ?backoff, "rabbitmq consumer lost; reconnecting");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// One connection's life: `Ok` when stopped, `Err` when the connection or channel failed.
async fn consume_once(
    config: &RabbitConfig,
    route: usize,
    sink: &Arc<dyn BusSink>,
    stats: &SourceStats,
    stop: &mut watch::Receiver<bool>,
    connected_before: &mut bool,
) -> Result<(), String> {
    let queue = &config.queues[route].name;
    let conn = connect(config).await?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    let prefetch = u16::try_from(config.batch.saturating_mul(2)).unwrap_or(u16::MAX);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("dozor-{}", config.name).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot consume {queue}: {e}"))?;
    if std::mem::replace(connected_before, true) {
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    stats.set_connected(true);
    tracing::info!(source = %config.name, queue, "consuming");
    let delivery = Delivery {
        source: &config.name,
        tenant: &config.tenant,
        routes: std::slice::from_ref(&config.queues[route]),
        sink,
        stats,
    };
    let mut batch: Vec<lapin::message::Delivery> = Vec::with_capacity(config.batch);
    loop {
        // The first delivery of a batch: wait as long as it takes (or until stopped).
        tokio::select! {
            d = next(&mut consumer) => batch.push(d?),
            () = stopped(stop) => {
                let _ = conn.close(200, "dozor stopping".into()).await;
                return Ok(());
            }
        }
        let deadline = tokio::time::Instant::now() + config.linger;
        while batch.len() < config.batch {
            match tokio::time::timeout_at(next_deadline(deadline), next(&mut consumer)).await {
                Ok(d) => batch.push(d?),
                Err(_) => break,
            }
        }
        let msgs: Vec<Message<'_>> = batch
            .iter()
            .map(|d| Message {
                route: 0,
                topic: queue,
                position: Position::Delivery(d.delivery_tag),
                payload: &d.data,
            })
            .collect();
        if !delivery.store(&msgs, stop).await {
            // Stopped before the store took them: they stay unacknowledged and return to the
            // queue when the connection closes.
            let _ = conn.close(200, "dozor stopping".into()).await;
            return Ok(());
        }
        let last = batch.last().map_or(0, |d| d.delivery_tag);
        channel
            .basic_ack(last, BasicAckOptions { multiple: true })
            .await
            .map_err(|e| format!("cannot acknowledge: {e}"))?;
        batch.clear();
    }
}

async fn next(consumer: &mut lapin::Consumer) -> Result<lapin::message::Delivery, String> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *consumer).poll_next(cx))
        .await
        .ok_or_else(|| "the broker cancelled the consumer".to_owned())?
        .map_err(|e| e.to_string())
}

/// Declares the watched queues passively every `watch_interval` and stores their depth and
/// consumers.
async fn watch_queues(
    config: Arc<RabbitConfig>,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn: Option<(Connection, lapin::Channel)> = None;
    let mut backoff = Duration::ZERO;
    loop {
        let result = watch_once(&config, &sink, &mut conn).await;
        let wait = match result {
            Ok(()) => {
                backoff = Duration::ZERO;
                config.watch_interval
            }
            Err(e) => {
                conn = None;
                stats.error(&e);
                backoff = next_backoff(backoff);
                tracing::warn!(source = %config.name, error = %e, retry_in = ?backoff, "rabbitmq queue watch failed");
                backoff.min(config.watch_interval)
            }
        };
        if sleep_or_stop(wait, &mut stop).await {
            if let Some((c, _)) = conn {
                let _ = c.close(200, "dozor stopping".into()).await;
            }
            return;
        }
    }
}

/// The watched queues, each with whether it is a dead-letter queue.
fn watched(config: &RabbitConfig) -> impl Iterator<Item = (&String, bool)> {
    config
        .watch
        .iter()
        .map(|q| (q, false))
        .chain(config.dead_letter_queues.iter().map(|q| (q, true)))
}

/// Adds one sample of a watched queue's series `name` to `batch`.
fn push_queue_sample(
    batch: &mut crate::Batch,
    config: &RabbitConfig,
    queue: &str,
    dead_letter: bool,
    name: &str,
    t: i64,
    v: f64,
) -> Result<(), String> {
    let labels = Labels::from_pairs([
        ("__name__", name),
        ("dead_letter", if dead_letter { "true" } else { "false" }),
        ("queue", queue),
        ("source", config.name.as_str()),
    ])
    .map_err(|e| e.to_string())?;
    batch.push((labels, vec![Sample { t, v }]));
    Ok(())
}

async fn watch_once(
    config: &RabbitConfig,
    sink: &Arc<dyn BusSink>,
    conn: &mut Option<(Connection, lapin::Channel)>,
) -> Result<(), String> {
    let t = dozor_model::time::now_ms();
    let batch = match &config.management_url {
        Some(base) => management::read(config, base, t).await?,
        None => declare_passively(config, conn, t).await?,
    };
    let (sink, tenant) = (Arc::clone(sink), config.tenant.clone());
    tokio::task::spawn_blocking(move || sink.store(&tenant, Vec::new(), batch))
        .await
        .map_err(|e| e.to_string())?
}

/// Depth and consumers of each watched queue from a passive `queue.declare`.
async fn declare_passively(
    config: &RabbitConfig,
    conn: &mut Option<(Connection, lapin::Channel)>,
    t: i64,
) -> Result<crate::Batch, String> {
    let mut batch = Vec::new();
    for (queue, dead_letter) in watched(config) {
        if conn.is_none() {
            let c = connect(config).await?;
            let ch = c.create_channel().await.map_err(|e| e.to_string())?;
            *conn = Some((c, ch));
        }
        let Some((_, channel)) = conn.as_ref() else {
            continue;
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        // A missing queue closes the channel (404): reopen it for the next queue.
        let q = match channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
        {
            Ok(q) => q,
            Err(e) => {
                *conn = None;
                return Err(format!("queue {queue}: {e}"));
            }
        };
        for (name, v) in [
            ("rabbitmq_queue_messages", q.message_count()),
            ("rabbitmq_queue_consumers", q.consumer_count()),
        ] {
            push_queue_sample(
                &mut batch,
                config,
                queue,
                dead_letter,
                name,
                t,
                f64::from(v),
            )?;
        }
    }
    Ok(batch)
}

/// The watch through RabbitMQ's management API.
mod management {
    use serde::Deserialize;

    use super::{RabbitConfig, push_queue_sample, watched};
    use crate::probe::{Findings, checks};

    /// The parts of `GET /api/queues/<vhost>/<name>` we read. Fresh queues have no
    /// statistics yet (the plugin emits them every few seconds): every field is optional.
    #[derive(Debug, Default, Deserialize)]
    pub(super) struct QueueInfo {
        pub messages: Option<u64>,
        pub messages_ready: Option<u64>,
        pub messages_unacknowledged: Option<u64>,
        pub consumers: Option<u64>,
        #[serde(default)]
        pub message_stats: MessageStats,
    }

    /// A queue's message counters since it was declared (or the node restarted).
    #[derive(Debug, Default, Deserialize)]
    pub(super) struct MessageStats {
        pub publish: Option<u64>,
        pub deliver_get: Option<u64>,
        pub ack: Option<u64>,
        pub redeliver: Option<u64>,
    }

    impl QueueInfo {
        /// Each series the queue yields, by name.
        pub(super) fn series(&self) -> impl Iterator<Item = (&'static str, u64)> {
            let m = &self.message_stats;
            [
                ("rabbitmq_queue_messages", self.messages),
                ("rabbitmq_queue_consumers", self.consumers),
                ("rabbitmq_queue_messages_ready", self.messages_ready),
                (
                    "rabbitmq_queue_messages_unacked",
                    self.messages_unacknowledged,
                ),
                ("rabbitmq_queue_messages_published_total", m.publish),
                ("rabbitmq_queue_messages_delivered_total", m.deliver_get),
                ("rabbitmq_queue_messages_acked_total", m.ack),
                ("rabbitmq_queue_messages_redelivered_total", m.redeliver),
            ]
            .into_iter()
            .filter_map(|(name, v)| Some((name, v?)))
        }
    }

    /// The user, password and percent-encoded vhost of an AMQP URL (`%2F` for the default
    /// vhost, as the management API names it).
    pub(super) fn login(config: &RabbitConfig) -> Result<(String, String, String), String> {
        let url = url::Url::parse(&config.url).map_err(|e| format!("url: {e}"))?;
        let password = match &config.password_file {
            Some(f) => crate::source::read_secret(f)?,
            None => percent_decode(url.password().unwrap_or("guest"))?,
        };
        let user = match url.username() {
            "" => "guest".to_owned(),
            u => percent_decode(u)?,
        };
        let vhost = match url.path().trim_start_matches('/') {
            "" => "%2F".to_owned(),
            v => v.to_owned(),
        };
        Ok((user, password, vhost))
    }

    /// Undoes the percent-encoding of a URL's user or password (`url` keeps them encoded).
    fn percent_decode(s: &str) -> Result<String, String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = s.get(i + 1..i + 3).ok_or("url: a cut %-escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "url: a bad %-escape")?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| "url: credentials are not UTF-8".to_owned())
    }

    /// Reads every watched queue.
    pub(super) async fn read(
        config: &RabbitConfig,
        base: &str,
        t: i64,
    ) -> Result<crate::Batch, String> {
        let (user, password, vhost) = login(config)?;
        // An https:// API is verified as the amqps:// broker is: `ca_file` or the system's roots.
        let settings = crate::probe::TlsSettings {
            ca_file: config.ca_file.clone(),
            ..crate::probe::TlsSettings::default()
        };
        let tls = crate::probe::tls::client_config(&settings, true)?;
        let mut batch = Vec::new();
        for (queue, dead_letter) in watched(config) {
            let url = format!(
                "{}/api/queues/{vhost}/{}",
                base.trim_end_matches('/'),
                crate::percent_encode(queue)
            );
            let request = checks::HttpRequest {
                method: None,
                headers: &[],
                url: &url,
                body: None,
                bearer: None,
                basic: Some((&user, &password)),
                accept: "application/json",
                tls: Some(&tls),
                server_name: None,
                max_body: checks::MAX_BODY,
            };
            let mut found = Findings::default();
            let response = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                checks::http(request, &mut found),
            )
            .await
            .map_err(|_| format!("queue {queue}: the management API did not answer in 10s"))?
            .map_err(|e| format!("queue {queue}: {e}"))?;
            match response.status {
                200 => {}
                404 => return Err(format!("queue {queue}: no such queue (HTTP 404)")),
                401 => return Err("the management API refused the login (HTTP 401)".to_owned()),
                s => {
                    return Err(format!(
                        "queue {queue}: the management API answered HTTP {s}"
                    ));
                }
            }
            let info: QueueInfo = serde_json::from_slice(&response.body)
                .map_err(|e| format!("queue {queue}: unexpected answer: {e}"))?;
            for (name, v) in info.series() {
                // Counters beyond 2^53 lose their last digits as f64, as in Prometheus.
                #[allow(clippy::cast_precision_loss)]
                push_queue_sample(&mut batch, config, queue, dead_letter, name, t, v as f64)?;
            }
        }
        Ok(batch)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn config(url: &str) -> RabbitConfig {
            serde_saphyr::from_str(&format!(
                "name: r\nurl: '{url}'\nwatch: [q]\nmanagement_url: http://127.0.0.1:15672\n"
            ))
            .unwrap()
        }

        #[test]
        fn login_comes_from_the_amqp_url() {
            let (u, p, v) = login(&config("amqp://ops:p%40ss%2Fw@h:5672/%2f")).unwrap();
            assert_eq!(
                (u.as_str(), p.as_str(), v.as_str()),
                ("ops", "p@ss/w", "%2f")
            );
            let (u, p, v) = login(&config("amqp://h")).unwrap();
            assert_eq!(
                (u.as_str(), p.as_str(), v.as_str()),
                ("guest", "guest", "%2F")
            );
            let (_, _, v) = login(&config("amqp://u:p@h/shop")).unwrap();
            assert_eq!(v, "shop");
            assert!(login(&config("amqp://u:%zz@h/")).is_err());
            assert_eq!(
                crate::percent_encode("orders.dlq/1 x"),
                "orders.dlq%2F1%20x"
            );
        }

        #[test]
        fn queue_answers_become_series_and_missing_statistics_are_skipped() {
            let full: QueueInfo = serde_json::from_str(
                r#"{"name":"q","messages":5,"messages_ready":3,"messages_unacknowledged":2,
                "consumers":1,"message_stats":{"publish":40,"publish_details":{"rate":1.5},
                "deliver_get":35,"ack":33,"redeliver":2}}"#,
            )
            .unwrap();
            let series: Vec<_> = full.series().collect();
            assert_eq!(series.len(), 8);
            assert!(series.contains(&("rabbitmq_queue_messages_published_total", 40)));
            assert!(series.contains(&("rabbitmq_queue_messages_unacked", 2)));
            let fresh: QueueInfo = serde_json::from_str(r#"{"name":"q","consumers":0}"#).unwrap();
            assert_eq!(
                fresh.series().collect::<Vec<_>>(),
                [("rabbitmq_queue_consumers", 0)]
            );
        }
    }
}
