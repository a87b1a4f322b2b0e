//! MQTT source (`sources.mqtt` in `dozor.yml`): device telemetry and events from an MQTT
//! 3.1.1 broker (Mosquitto, EMQX, HiveMQ).
//!
//! Dozor subscribes with QoS 1 on a persistent session (`clean_session: false` and a fixed
//! client id), so the broker keeps messages published while Dozor is down, and acknowledges
//! each message (PUBACK) only after its batch is stored durably: a crash makes the broker
//! resend what was not acknowledged. Topic filters take MQTT's wildcards (`+`, `#`); a
//! message goes through the first route whose filter matches its topic.
//!
//! `tls` connects over TLS with our rustls configuration (ring, the system's roots or a CA
//! file), as the probes do.
//!
//! The broker bounds the unacknowledged messages in flight per client (Mosquitto's
//! `max_inflight_messages`, 20 by default), and so the batch size: raise it on the broker
//! for high rates.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dozor_model::TenantId;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS, TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::source::{
    BusSink, Delivery, Message, NO_ROUTE, Position, Route, SourceStats, default_batch,
    default_linger, next_backoff, next_deadline, route_for, sleep_or_stop, stopped,
};

/// One `sources.mqtt` entry of `dozor.yml`. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Unique name: the `source` label of its metrics and dead letters.
    pub name: String,
    /// `host:port` of the broker.
    pub address: String,
    /// TLS (`mqtts`, usually port 8883): the CA file to trust instead of the system's
    /// roots, or `insecure_skip_verify`. The certificate is checked against the address's
    /// host. Absent: plain TCP.
    #[serde(default)]
    pub tls: Option<crate::probe::TlsSettings>,
    /// The client id of the persistent session (default `dozor-<name>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if the broker wants one.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (keep it out of `dozor.yml`); read at start.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// The tenant its records belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Topic filters to subscribe to and how their messages decode.
    pub topics: Vec<Route>,
    /// Most messages in one stored batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for a batch to fill once its first message came.
    #[serde(default = "default_linger", with = "dozor_model::duration")]
    pub linger: Duration,
    /// MQTT keep-alive.
    #[serde(default = "default_keep_alive", with = "dozor_model::duration")]
    pub keep_alive: Duration,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl MqttConfig {
    /// Checks what can be checked without a broker.
    pub fn check(&self) -> Result<(), String> {
        self.host_port()?;
        if self.topics.is_empty() {
            return Err(format!("{}: no topics", self.name));
        }
        if self.batch == 0 || self.batch > 10_000 {
            return Err(format!("{}: batch must be 1 to 10000", self.name));
        }
        if self.keep_alive < Duration::from_secs(1) {
            return Err(format!("{}: keep_alive must be at least 1s", self.name));
        }
        if self.tls.as_ref().is_some_and(|t| t.server_name.is_some()) {
            return Err(format!(
                "{}: tls.server_name is not supported for MQTT (the address's host is verified)",
                self.name
            ));
        }
        Ok(())
    }

    fn host_port(&self) -> Result<(String, u16), String> {
        let (host, port) = self
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("{}: address must be host:port", self.name))?;
        let port = port
            .parse()
            .map_err(|_| format!("{}: bad port in {:?}", self.name, self.address))?;
        Ok((host.trim_matches(['[', ']']).to_owned(), port))
    }
}

/// Runs the source until `stop` turns true.
pub async fn run(
    config: MqttConfig,
    sink: Arc<dyn BusSink>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let (host, port) = match config.host_port() {
        Ok(hp) => hp,
        Err(e) => {
            stats.error(&e);
            return;
        }
    };
    let client_id = config
        .client_id
        .clone()
        .unwrap_or_else(|| format!("dozor-{}", config.name));
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(config.keep_alive)
        .set_max_packet_size(16 << 20, 16 << 20);
    if let Some(tls) = &config.tls {
        match crate::probe::tls::client_config(tls, false) {
            Ok(c) => {
                opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(c)));
            }
            Err(e) => {
                stats.error(&e);
                tracing::error!(source = %config.name, error = %e, "mqtt source not started");
                return;
            }
        }
    }
    let password = match &config.password_file {
        Some(f) => match crate::source::read_secret(f) {
            Ok(p) => Some(p),
            Err(e) => {
                stats.error(&e);
                tracing::error!(source = %config.name, error = %e, "mqtt source not started");
                return;
            }
        },
        None => config.password.clone(),
    };
    if let (Some(u), Some(p)) = (&config.username, &password) {
        opts.set_credentials(u, p);
    }
    let (client, mut events) = AsyncClient::new(opts, 1024);
    // The event loop drives the socket (pings, acks) and must keep running while a batch is
    // stored: it runs in its own task and hands publishes over a bounded channel, which
    // holds back reading when the store falls behind.
    let (tx, mut rx) = mpsc::channel::<Publish>(config.batch);
    let loop_stats = Arc::clone(&stats);
    let filters: Vec<String> = config.topics.iter().map(|r| r.name.clone()).collect();
    let sub_client = client.clone();
    let name = config.name.clone();
    let mut loop_stop = stop.clone();
    let driver = tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        let mut connected_before = false;
        loop {
            // Not cut short by `stop`: the disconnect the consumer sends when stopping comes
            // after its last acknowledgements, and ends this loop once they are written.
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::ZERO;
                    if std::mem::replace(&mut connected_before, true) {
                        loop_stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    loop_stats.set_connected(true);
                    tracing::info!(source = %name, session_present = ack.session_present, "mqtt connected");
                    // Subscribing again on a kept session is harmless and covers a broker
                    // that lost it.
                    for f in &filters {
                        if let Err(e) = sub_client.try_subscribe(f.as_str(), QoS::AtLeastOnce) {
                            loop_stats.error(format!("cannot subscribe to {f}: {e}"));
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        return; // the consumer stopped
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    loop_stats.set_connected(false);
                    loop_stats.error(format!("mqtt connection: {e}"));
                    backoff = next_backoff(backoff);
                    tracing::warn!(source = %name, error = %e, retry_in = ?backoff, "mqtt connection lost; reconnecting");
                    if sleep_or_stop(backoff, &mut loop_stop).await {
                        return;
                    }
                }
            }
        }
    });
    let delivery = Delivery {
        source: &config.name,
        tenant: &config.tenant,
        routes: &config.topics,
        sink: &sink,
        stats: &stats,
    };
    let mut batch: Vec<Publish> = Vec::with_capacity(config.batch);
    loop {
        tokio::select! {
            p = rx.recv() => match p {
                Some(p) => batch.push(p),
                None => break,
            },
            () = stopped(&mut stop) => break,
        }
        let deadline = tokio::time::Instant::now() + config.linger;
        while batch.len() < config.batch {
            match tokio::time::timeout_at(next_deadline(deadline), rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                _ => break,
            }
        }
        let msgs: Vec<Message<'_>> = batch
            .iter()
            .map(|p| Message {
                route: route_for(&config.topics, &p.topic, '/', "+", "#").unwrap_or(NO_ROUTE),
                topic: &p.topic,
                position: Position::Packet(p.pkid),
                payload: &p.payload,
            })
            .collect();
        if !delivery.store(&msgs, &mut stop).await {
            break;
        }
        for p in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                stats.error(format!("cannot acknowledge: {e}"));
            }
        }
    }
    drop(rx);
    let _ = client.disconnect().await;
    stats.set_connected(false);
    match tokio::time::timeout(Duration::from_secs(5), driver).await {
        Ok(Err(e)) => tracing::error!(source = %config.name, error = %e, "mqtt event loop failed"),
        Err(_) => tracing::warn!(source = %config.name, "mqtt event loop did not stop within 5s"),
        Ok(Ok(())) => {}
    }
}
