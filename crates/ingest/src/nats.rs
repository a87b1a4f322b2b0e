//! NATS JetStream source (`sources.nats` in `dozor.yml`): events and telemetry published
//! on NATS subjects and kept by a JetStream stream.
//!
//! Dozor reads through a durable pull consumer (`dozor-<name>` by default) filtered to the
//! route subjects, with explicit acknowledgements: each batch (up to `batch` messages,
//! waiting up to `linger`) is stored durably through the [`BusSink`], then every message of
//! it is acknowledged. The server redelivers what was not acknowledged after `ack_wait`, so
//! a crash loses nothing and repeats at most the unacknowledged window. Subjects take NATS
//! wildcards (`*`, `>`); a message goes through the first route whose subject matches.
//!
//! When the stream does not exist, Dozor creates it over the route subjects
//! (`create_stream: true`, the default) so a fresh NATS needs no set-up; `lag` is the
//! consumer's `num_pending`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use dozor_model::TenantId;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::source::{
    BusSink, Delivery, Message, NO_ROUTE, Position, Route, SourceStats, default_batch,
    default_linger, next_backoff, route_for, sleep_or_stop, stopped,
};

/// One `sources.nats` entry of `dozor.yml`. Its `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Unique name: the `source` label of its metrics and dead letters.
    pub name: String,
    /// `nats://[user:password@]host:4222`.
    pub url: String,
    /// A file holding the password, which replaces the URL's (keep it out of `dozor.yml`).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// TLS, required when present: the CA file to trust instead of the system's roots, or
    /// `insecure_skip_verify` (our rustls configuration, ring, as the probes use).
    #[serde(default)]
    pub tls: Option<crate::probe::TlsSettings>,
    /// The JetStream stream to read.
    pub stream: String,
    /// Create the stream over the route subjects when it does not exist.
    #[serde(default = "yes")]
    pub create_stream: bool,
    /// The durable consumer's name (default `dozor-<name>`).
    #[serde(default)]
    pub consumer: Option<String>,
    /// The tenant its records belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Subjects to read and how their messages decode.
    pub subjects: Vec<Route>,
    /// Most messages in one stored batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for a batch to fill.
    #[serde(default = "default_linger", with = "dozor_model::duration")]
    pub linger: Duration,
    /// How long the server waits for an acknowledgement before redelivering.
    #[serde(default = "default_ack_wait", with = "dozor_model::duration")]
    pub ack_wait: Duration,
}

fn yes() -> bool {
    true
}

fn default_ack_wait() -> Duration {
    Duration::from_secs(60)
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("name", &self.name)
            .field("url", &crate::source::redact_url(&self.url))
            .field("stream", &self.stream)
            .field("subjects", &self.subjects)
            .finish_non_exhaustive()
    }
}

impl NatsConfig {
    /// Checks what can be checked without a server.
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("nats://") || self.url.starts_with("tls://")) {
            return Err(format!("{}: url must start with nats://", self.name));
        }
        if self.stream.is_empty() || self.stream.contains(['.', '*', '>', ' ']) {
            return Err(format!("{}: bad stream name {:?}", self.name, self.stream));
        }
        if self.subjects.is_empty() {
            return Err(format!("{}: no subjects", self.name));
        }
        if self.batch == 0 || self.batch > 10_000 {
            return Err(format!("{}: batch must be 1 to 10000", self.name));
        }
        if self.tls.as_ref().is_some_and(|t| t.server_name.is_some()) {
            return Err(format!(
                "{}: tls.server_name is not supported for NATS (the URL's host is verified)",
                self.name
            ));
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err(format!("{}: ack_wait must be at least 1s", self.name));
        }
        Ok(())
    }

    fn consumer_name(&self) -> String {
        self.consumer
            .clone()
            .unwrap_or_else(|| format!("dozor-{}", self.name))
    }
}

/// Runs the source until `stop` turns true.
pub async fn run(
    config: NatsConfig,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    let mut connected_before = false;
    while !*stop.borrow() {
        match run_once(&config, &sink, &stats, &mut stop, &mut connected_before).await {
            Ok(()) => break,
            Err(e) => {
                stats.set_connected(false);
                stats.error(&e);
                backoff = next_backoff(backoff);
                tracing::warn!(source = %config.name, error = %e, retry_in = ?backoff, "nats source failed; reconnecting");
                if sleep_or_stop(backoff, &mut stop).await {
                    break;
                }
            }
        }
    }
    stats.set_connected(false);
}

async fn open(config: &NatsConfig) -> Result<(async_nats::Client, PullConsumer), String> {
    let url = match &config.password_file {
        Some(f) => crate::source::url_with_password(&config.url, &crate::source::read_secret(f)?)?,
        None => config.url.clone(),
    };
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("dozor:{}", config.name))
        .connection_timeout(Duration::from_secs(10));
    if let Some(tls) = &config.tls {
        let tls = crate::probe::tls::client_config(tls, false)?;
        options = options
            .require_tls(true)
            .tls_client_config(rustls::ClientConfig::clone(&tls));
    }
    let client = options
        .connect(url.as_str())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let js = jetstream::new(client.clone());
    let subjects: Vec<String> = config.subjects.iter().map(|r| r.name.clone()).collect();
    let stream = if config.create_stream {
        js.get_or_create_stream(jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: subjects.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {}: {e}", config.stream))?
    } else {
        js.get_stream(&config.stream)
            .await
            .map_err(|e| format!("stream {}: {e}", config.stream))?
    };
    let name = config.consumer_name();
    let consumer: PullConsumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                // The server's default (1000) would cut every batch above it short and make
                // the next one wait out its expiry.
                max_ack_pending: i64::try_from(config.batch.saturating_mul(4)).unwrap_or(i64::MAX),
                // One subject filters here; several (a NATS 2.10 feature) are the stream's
                // own subjects when Dozor created it, so reading it all is the same.
                filter_subject: match subjects.as_slice() {
                    [one] => one.clone(),
                    _ => String::new(),
                },
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))?;
    Ok((client, consumer))
}

/// One connection's life: `Ok` when stopped.
async fn run_once(
    config: &NatsConfig,
    sink: &Arc<dyn BusSink>,
    stats: &SourceStats,
    stop: &mut watch::Receiver<bool>,
    connected_before: &mut bool,
) -> Result<(), String> {
    let (client, mut consumer) = open(config).await?;
    if std::mem::replace(connected_before, true) {
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    stats.set_connected(true);
    tracing::info!(source = %config.name, stream = %config.stream, "reading JetStream");
    let delivery = Delivery {
        source: &config.name,
        tenant: &config.tenant,
        routes: &config.subjects,
        sink,
        stats,
    };
    // None: read the lag at once (an `Instant` in the past could underflow right after boot).
    let mut lag_checked: Option<Instant> = None;
    let expires = config.linger.max(Duration::from_millis(50));
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if lag_checked.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            lag_checked = Some(Instant::now());
            if let Ok(info) = consumer.info().await {
                stats.lag.store(info.num_pending, Ordering::Relaxed);
            }
        }
        let mut batch = tokio::select! {
            b = consumer.batch().max_messages(config.batch).expires(expires).messages() => {
                b.map_err(|e| format!("cannot fetch: {e}"))?
            }
            () = stopped(stop) => return Ok(()),
        };
        let mut msgs: Vec<jetstream::Message> = Vec::new();
        while let Some(m) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut batch).poll_next(cx)).await
        {
            msgs.push(m.map_err(|e| format!("cannot fetch: {e}"))?);
        }
        if msgs.is_empty() {
            if client.connection_state() != async_nats::connection::State::Connected {
                return Err("disconnected".into());
            }
            continue;
        }
        let decoded: Vec<Message<'_>> = msgs
            .iter()
            .map(|m| {
                let subject = m.subject.as_str();
                Message {
                    route: route_for(&config.subjects, subject, '.', "*", ">").unwrap_or(NO_ROUTE),
                    topic: subject,
                    position: m
                        .info()
                        .map_or(Position::Unknown, |i| Position::Sequence(i.stream_sequence)),
                    payload: &m.payload,
                }
            })
            .collect();
        if !delivery.store(&decoded, stop).await {
            return Ok(());
        }
        for m in &msgs {
            m.ack()
                .await
                .map_err(|e| format!("cannot acknowledge: {e}"))?;
        }
    }
}
