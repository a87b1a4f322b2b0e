//! `publish.kafka`: the Kafka producers' wiring (`dozor_ingest::kafka_out` does the
//! encoding, the outbox and the sending). Each producer's outbox is opened before the API
//! starts, so forwarded ingest can be refused rather than lost; alert transitions are put in
//! it by the rule evaluations, metric updates by a task per producer that runs its queries.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dozor_ingest::backup::Spool;
use dozor_ingest::kafka_out::{self, AlertMessage, Forwarder, KafkaPublishConfig, MetricUpdates};
use dozor_ingest::source::{SourceRegistry, SourceStats};
use dozor_model::{Labels, Matcher, TenantId};
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::Transition;
use dozor_tsdb::Tsdb;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One alert stream: its topic, selector and producer's outbox.
#[derive(Debug)]
struct AlertStream {
    topic: String,
    selector: Vec<Matcher>,
    outbox: Arc<Spool>,
}

/// Where alert transitions go: Kafka alert streams, and the tenant's notification manager
/// (`alerting:`); empty: nowhere.
#[derive(Debug, Default)]
pub struct AlertPublisher {
    streams: Vec<AlertStream>,
    notifications: std::sync::OnceLock<(Arc<dozor_alerting::shared::Notifications>, String)>,
}

impl AlertPublisher {
    /// Puts each transition in the outbox of every stream whose selector its labels match.
    /// Blocking (the outbox fsyncs); a full outbox loses the notification, which is logged
    /// and counted as the producer's error (the alert itself lives on in the history).
    /// `expr_of` gives an alerting rule's expression by alert name; the notifications'
    /// alerts link to it (`generatorURL`, Prometheus' form).
    pub fn publish(
        &self,
        tenant: &TenantId,
        group: &str,
        transitions: &[Transition],
        expr_of: &dyn Fn(&str) -> Option<String>,
    ) {
        let now = dozor_model::time::now_ms();
        for t in transitions {
            let (Transition::Fired(rule_alert) | Transition::Resolved(rule_alert)) = t;
            let generator_url = match (self.notifications.get(), rule_alert.labels.get("alertname"))
            {
                (Some((_, base)), Some(name)) => expr_of(name)
                    .map(|e| dozor_alerting::incident::generator_url(base, &e))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let alert = crate::notify::alert_of(t, generator_url);
            let fingerprint = alert.fingerprint();
            let message = AlertMessage {
                labels: &alert.labels,
                annotations: &alert.annotations,
                fingerprint: &fingerprint,
                starts_ms: alert.starts_at_ms,
                resolved_ms: alert.ends_at_ms,
                value: rule_alert.value,
                group,
            };
            for s in self
                .streams
                .iter()
                .filter(|s| matches(&s.selector, &alert.labels))
            {
                let line = kafka_out::encode_alert(&s.topic, tenant, &message);
                if let Err(e) = s.outbox.append(&line) {
                    tracing::error!(topic = %s.topic, error = %e, "cannot queue an alert for Kafka");
                }
            }
            if let Some((n, _)) = self.notifications.get() {
                n.put(tenant, [alert], false, now);
            }
        }
    }
}

impl AlertPublisher {
    /// Sends every tenant's transitions to its manager in `notifications` from now on, their
    /// `generatorURL`s under `external_url`.
    pub fn notify(
        &self,
        notifications: Arc<dozor_alerting::shared::Notifications>,
        external_url: String,
    ) {
        if self
            .notifications
            .set((notifications, external_url))
            .is_err()
        {
            tracing::error!("BUG: notifications were set twice");
        }
    }
}

fn matches(selector: &[Matcher], labels: &Labels) -> bool {
    selector
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// The producers, opened but not started.
pub struct Publishing {
    /// Forwarding of ingest (for the API and the sources' sinks).
    pub forward: Arc<Forwarder>,
    /// Alert streams (for the rule evaluations).
    pub alerts: Arc<AlertPublisher>,
    producers: Vec<(KafkaPublishConfig, Arc<Spool>)>,
}

impl Publishing {
    /// Opens every producer's outbox under `data_dir` (a crash's partial line is cut).
    pub fn open(configs: &[KafkaPublishConfig], data_dir: &Path) -> anyhow::Result<Publishing> {
        let mut forward = Forwarder::default();
        let mut alerts = AlertPublisher::default();
        let mut producers = Vec::new();
        for c in configs {
            let outbox = Arc::new(
                kafka_out::open_outbox(data_dir, c)
                    .map_err(|e| anyhow::anyhow!("publish.kafka {}: {e}", c.name))?,
            );
            if let Some(f) = &c.forward {
                forward.add(f.clone(), Arc::clone(&outbox));
            }
            for a in &c.alerts {
                let selector = match &a.selector {
                    Some(s) => crate::config::stream_selector(s).map_err(anyhow::Error::msg)?,
                    None => Vec::new(),
                };
                alerts.streams.push(AlertStream {
                    topic: a.topic.clone(),
                    selector,
                    outbox: Arc::clone(&outbox),
                });
            }
            producers.push((c.clone(), outbox));
        }
        Ok(Publishing {
            forward: Arc::new(forward),
            alerts: Arc::new(alerts),
            producers,
        })
    }

    /// Starts each producer's sender, and its metric updates; they run until `stop`.
    pub fn start(
        self,
        sources: &SourceRegistry,
        tsdb: &Arc<Tsdb>,
        limits: EngineOptions,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let engine = Arc::new(Engine::new(limits));
        let mut tasks = Vec::new();
        for (config, outbox) in self.producers {
            let stats =
                sources.register(&config.name, "kafka-producer", &TenantId::default_tenant());
            tracing::info!(producer = %config.name, brokers = %config.brokers, "publishing to Kafka");
            if let Some(m) = config.metrics.clone() {
                tokio::spawn(metric_updates(
                    m,
                    Arc::clone(tsdb),
                    Arc::clone(&engine),
                    Arc::clone(&outbox),
                    Arc::clone(&stats),
                    stop.clone(),
                ));
            }
            tasks.push(tokio::spawn(kafka_out::run(
                config,
                outbox,
                stats,
                stop.clone(),
            )));
        }
        tasks
    }
}

/// Runs the queries every `interval` and puts their results in the outbox.
async fn metric_updates(
    config: MetricUpdates,
    tsdb: Arc<Tsdb>,
    engine: Arc<Engine>,
    outbox: Arc<Spool>,
    stats: Arc<SourceStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let config = Arc::new(config);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let (c, db, e, o) = (
            Arc::clone(&config),
            Arc::clone(&tsdb),
            Arc::clone(&engine),
            Arc::clone(&outbox),
        );
        let done = tokio::task::spawn_blocking(move || update_once(&c, &db, &e, &o)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => stats.error(e),
            Err(e) => stats.error(e),
        }
    }
}

fn update_once(
    config: &MetricUpdates,
    tsdb: &Tsdb,
    engine: &Engine,
    outbox: &Spool,
) -> Result<(), String> {
    let db = tsdb.tenant(&config.tenant).map_err(|e| e.to_string())?;
    let t = dozor_model::time::now_ms();
    let mut lines = Vec::new();
    for (name, query) in &config.queries {
        let result = engine
            .instant(db.as_ref(), query, t)
            .map_err(|e| format!("metrics.queries.{name}: {e}"))?;
        let points: Vec<(Labels, dozor_model::Sample)> = match result.value {
            dozor_promql::Value::Vector(v) => v
                .into_iter()
                .filter_map(|s| {
                    let labels = s.labels.with("__name__", name).ok()?;
                    Some((labels, dozor_model::Sample { t: s.t, v: s.v }))
                })
                .collect(),
            dozor_promql::Value::Scalar { t, v } => {
                Labels::from_pairs([("__name__", name.as_str())])
                    .ok()
                    .map(|l| (l, dozor_model::Sample { t, v }))
                    .into_iter()
                    .collect()
            }
            _ => return Err(format!("metrics.queries.{name}: not a vector or scalar")),
        };
        lines.extend(kafka_out::encode_series(
            &config.topic,
            points.iter().map(|(l, s)| {
                (
                    l.iter()
                        .map(|x| (x.name.as_ref(), x.value.as_ref()))
                        .collect(),
                    std::slice::from_ref(s),
                )
            }),
        ));
    }
    outbox.append(&lines)
}

/// How long a producer's last pass may take at shutdown.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
