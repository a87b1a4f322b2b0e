//! `alerting:`: Alertmanager's notification model (`dozor_alerting`) at work. Every
//! tenant's alerts — from Dozor's rules and from `POST /api/v2/alerts` — enter its manager
//! ([`Notifications`]); a loop flushes the groups that are due and each integration of the
//! receiver gets its message by POST: webhooks Alertmanager's payload v4, Slack a Block Kit
//! message, Discord an embed, Telegram a `sendMessage`, PagerDuty an Events API v2 trigger
//! or resolve. Each call is retried with exponential back-off and jitter (at most
//! [`ATTEMPTS`] tries, each with a 10 s timeout), counted in `dozor_notifications_total` /
//! `dozor_notifications_failed_total` by integration, timed in
//! `dozor_notification_latency_seconds`, and written to the delivery log; once a
//! notification reached every integration, its group's entry of the notification log is
//! stored, so a restart does not announce the same alerts again. Both logs are written in
//! batches (a transaction per burst, at most 100 ms late): a crash may forget the last
//! burst, which at worst announces those alerts once more.
//!
//! `alerting.config_file` configures the default tenant, `alerting.tenants` others; a
//! tenant without a file gets the silent fallback (alerts and silences work, nothing is
//! sent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dozor_alerting::config::{AlertmanagerConfig, Loaded};
use dozor_alerting::escalation::{Due, Escalations};
use dozor_alerting::oncall::Rotations;
use dozor_alerting::shared::{Notifications, TenantConfig};
use dozor_alerting::template::Renderer;
use dozor_alerting::{Alert, Notification};
use dozor_model::TenantId;
use dozor_model::time::now_ms;
use dozor_rules::Transition;
use dozor_state::Store;
use dozor_state::notifications::{Delivery, LogRow, NotificationRecord};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};

use crate::config::AlertingConfig;

/// Most tries of one integration call.
pub const ATTEMPTS: u32 = 5;
/// How long the delivery log keeps its rows.
const DELIVERY_LOG_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// A rule alert's transition as the notification model's alert: started when it began to
/// fire, ended when it resolved, linked to its rule's expression by `generator_url`.
pub fn alert_of(t: &Transition, generator_url: String) -> Alert {
    let (Transition::Fired(a) | Transition::Resolved(a)) = t;
    Alert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
        ends_at_ms: match t {
            Transition::Fired(_) => None,
            Transition::Resolved(a) => Some(a.resolved_at_ms.unwrap_or_else(now_ms)),
        },
        generator_url,
    }
}

/// Loads one configuration file; its warnings (what is accepted but not acted on) are
/// logged.
fn load(path: &std::path::Path) -> anyhow::Result<TenantConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("alerting {}: {e}", path.display()))?;
    let loaded =
        load_text(path, &text).map_err(|e| anyhow::anyhow!("alerting {}: {e}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!(file = %path.display(), "alerting: {w}");
    }
    Ok(TenantConfig {
        loaded: Arc::new(loaded),
        // Shown by `GET /api/v2/status`: never with its keys and passwords.
        original: dozor_alerting::redact::redact_secrets(&text),
    })
}

/// Loads an `alertmanager.yml` read from `path`, with the template files its `templates:`
/// globs name (relative to the file's directory, as Alertmanager reads them).
pub fn load_text(path: &std::path::Path, text: &str) -> Result<Loaded, String> {
    let config = AlertmanagerConfig::parse(text)?;
    let base = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    let mut files = Vec::new();
    for pattern in &config.templates {
        let full = base.join(pattern);
        let matches = glob::glob(&full.to_string_lossy())
            .map_err(|e| format!("templates: {pattern:?}: {e}"))?;
        for p in matches {
            let p = p.map_err(|e| format!("templates: {e}"))?;
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("templates: {}: {e}", p.display()))?;
            files.push((p.display().to_string(), text));
        }
    }
    config.load_with(&files)
}

/// Labels of the notification metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegrationLabels {
    integration: String,
}

/// Counters and latencies of the integrations (Alertmanager's metrics, Dozor's prefix).
#[derive(Debug)]
pub struct NotifyMetrics {
    sent: Family<IntegrationLabels, Counter>,
    failed: Family<IntegrationLabels, Counter>,
    requests_failed: Family<IntegrationLabels, Counter>,
    latency: Family<IntegrationLabels, Histogram>,
}

impl NotifyMetrics {
    /// Registers the metrics.
    pub fn register(r: &mut prometheus_client::registry::Registry) -> Arc<NotifyMetrics> {
        let m = NotifyMetrics {
            sent: Family::default(),
            failed: Family::default(),
            requests_failed: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        r.register(
            "dozor_notifications",
            "Notifications attempted, by integration",
            m.sent.clone(),
        );
        r.register(
            "dozor_notifications_failed",
            "Notifications given up after every retry, by integration",
            m.failed.clone(),
        );
        r.register(
            "dozor_notification_requests_failed",
            "Single calls of an integration that failed (retried or not), by integration",
            m.requests_failed.clone(),
        );
        r.register(
            "dozor_notification_latency_seconds",
            "From a notification's first call to its outcome, by integration",
            m.latency.clone(),
        );
        Arc::new(m)
    }
}

/// Every tenant's managers under the configured files, and the loop's wake-up.
pub fn build(
    config: &AlertingConfig,
) -> anyhow::Result<(Arc<Notifications>, Arc<Notify>, Escalations, Rotations)> {
    let mut configs = BTreeMap::new();
    for (tenant, path) in config.files() {
        let tenant: TenantId = tenant
            .parse()
            .map_err(|e| anyhow::anyhow!("alerting.tenants: {tenant:?}: {e}"))?;
        configs.insert(tenant.clone(), load(&path)?);
        tracing::info!(%tenant, file = %path.display(), "notifications per the Alertmanager configuration");
    }
    let wake = Arc::new(Notify::new());
    let w = Arc::clone(&wake);
    let n = Notifications::new(configs, move || w.notify_one());
    let receivers_of = |t: &TenantId| -> Vec<String> {
        n.config(t)
            .loaded
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect()
    };
    let rotations =
        Rotations::compile(&config.oncall, &receivers_of).map_err(anyhow::Error::msg)?;
    let with_rotations = |t: &TenantId| {
        let mut names = receivers_of(t);
        names.extend(rotations.receiver_names(t));
        names
    };
    let policies = dozor_alerting::escalation::compile_all(&config.escalations, &with_rotations)
        .map_err(anyhow::Error::msg)?;
    for p in &policies {
        tracing::info!(policy = %p.config.name, tenant = %p.tenant, stages = p.config.stages.len(), "escalation policy");
    }
    Ok((Arc::new(n), wake, Escalations::new(policies), rotations))
}

/// What the delivery tasks share.
struct Deliverer {
    notifications: Arc<Notifications>,
    store: Store,
    /// Delivery-log rows and notification-log entries, written in batches.
    records: mpsc::Sender<NotificationRecord>,
    metrics: Arc<NotifyMetrics>,
    external_url: String,
    hooks: Hooks,
    threads: Threads,
}

impl Deliverer {
    fn threads(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, String)>> {
        self.threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What else looks at each notification: the incident worker (if incidents are on; it
/// runs the actions after it) or else the automatic actions.
pub struct Hooks {
    /// Opens incidents and writes their timelines.
    pub incidents: Option<crate::incidents::IncidentQueue>,
    /// Runs the automatic actions.
    pub actions: Arc<crate::actions::Actions>,
    /// The running escalations.
    pub escalations: std::sync::Mutex<Escalations>,
    /// Whether Slack and Telegram messages carry buttons (their inbound secrets are set).
    pub chat: (bool, bool),
    /// On-call rotations, for escalation stages naming `oncall:<name>`.
    pub oncall: Rotations,
    /// Incidents' status changes from the API (acknowledgements go on to PagerDuty).
    pub incident_changes:
        Option<tokio::sync::broadcast::Receiver<dozor_alerting::incident::Change>>,
}

/// Starts the loop that flushes due groups and delivers their notifications.
pub fn start(
    notifications: Arc<Notifications>,
    wake: Arc<Notify>,
    store: Store,
    metrics: Arc<NotifyMetrics>,
    external_url: String,
    mut hooks: Hooks,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let changes = hooks.incident_changes.take();
    let (records, rx) = mpsc::channel(RECORDS);
    let recorder = tokio::spawn(record(store.clone(), rx));
    let d = Arc::new(Deliverer {
        notifications,
        store,
        records,
        metrics,
        external_url,
        hooks,
        threads: Threads::default(),
    });
    let watcher = changes.map(|c| tokio::spawn(incident_changes(Arc::clone(&d), c, stop.clone())));
    tokio::spawn(async move {
        run(d, wake, stop).await;
        if let Some(w) = watcher {
            let _ = w.await;
        }
        // The recorder ends when the last delivery in flight has dropped its sender.
        if tokio::time::timeout(Duration::from_secs(5), recorder)
            .await
            .is_err()
        {
            tracing::warn!("notifications were still being delivered at shutdown");
        }
    })
}

/// Passes incidents' acknowledgements on to PagerDuty, until stopped.
async fn incident_changes(
    d: Arc<Deliverer>,
    mut changes: tokio::sync::broadcast::Receiver<dozor_alerting::incident::Change>,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = tokio::select! {
            c = changes.recv() => c,
            _ = stop.wait_for(|s| *s) => return,
        };
        match change {
            Ok(c) if c.status == "acknowledged" => {
                if let Some(key) = c.group_key {
                    tokio::spawn(acknowledge_pagerduty(Arc::clone(&d), c.tenant, key));
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "incident changes came faster than they were passed on"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// PagerDuty's `acknowledge` for each PagerDuty integration of an acknowledged group's
/// receiver, with the `dedup_key` its `trigger` had; delivered and logged as the others.
async fn acknowledge_pagerduty(d: Arc<Deliverer>, tenant: TenantId, group_key: String) {
    let Some(n) = d.notifications.group(&tenant, &group_key, now_ms()) else {
        return; // resolved meanwhile: PagerDuty heard the resolve
    };
    let config = Arc::clone(&d.notifications.config(&tenant).loaded);
    let Some(r) = config.receivers.iter().find(|r| r.name == n.receiver) else {
        return;
    };
    for p in &r.pagerduty_configs {
        if p.routing_key.is_none() && p.routing_key_file.is_none() {
            continue;
        }
        let outgoing =
            url_of(p.routing_key.as_ref(), p.routing_key_file.as_ref()).and_then(|key| {
                let body = dozor_alerting::chat::pagerduty_event(
                    &n.receiver,
                    &n.group_key,
                    &key,
                    "acknowledge",
                );
                Ok(Outgoing::Http {
                    headers: http_headers(p.other.get("http_config"))?,
                    url: p.url.clone(),
                    body: body.to_string().into_bytes(),
                    timeout: Duration::from_secs(10),
                    thread: None,
                })
            });
        let _ = send_one(&d, &tenant, &n, "pagerduty", outgoing).await;
    }
}

/// Records waiting to be written; deliveries wait when it is full.
const RECORDS: usize = 10_000;

/// Writes delivery-log rows and notification-log entries as they come, those arriving
/// within 100 ms of each other in one transaction (one sync to disk per burst).
async fn record(store: Store, mut rx: mpsc::Receiver<NotificationRecord>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while batch.len() < 1024 {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = store.record_notifications(&batch).await {
            tracing::warn!(records = batch.len(), error = %e, "cannot write the delivery and notification logs");
        }
        batch.clear();
    }
}

async fn run(d: Arc<Deliverer>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut pruned_ms = 0;
    loop {
        let now = now_ms();
        let next = [d.notifications.next_due_ms(), d.escalating().next_due_ms()]
            .into_iter()
            .flatten()
            .min();
        let wait = next
            .map_or(Duration::from_secs(60), |t| {
                Duration::from_millis(u64::try_from(t - now).unwrap_or(0))
            })
            .min(Duration::from_secs(60));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = now_ms();
        let flushed = d.notifications.flush(now);
        let due = {
            let mut esc = d.escalating();
            for (tenant, n) in &flushed.notifications {
                esc.on_notification(tenant, n);
            }
            esc.due(now)
        };
        for stage in due {
            tokio::spawn(escalate(Arc::clone(&d), stage));
        }
        for (tenant, n) in flushed.notifications {
            match &d.hooks.incidents {
                Some(q) => q.send(&tenant, &n),
                None => d.hooks.actions.on_notification(&tenant, &n),
            }
            tokio::spawn(deliver(Arc::clone(&d), tenant, n, true));
        }
        for (tenant, ids) in flushed.forgotten_silences {
            if let Err(e) = d.store.delete_silences(&tenant, &ids).await {
                tracing::warn!(%tenant, error = %e, "cannot delete expired silences");
            }
        }
        if now - pruned_ms > 3600 * 1000 {
            pruned_ms = now;
            if let Err(e) = d.store.prune_deliveries(now - DELIVERY_LOG_KEEP_MS).await {
                tracing::warn!(error = %e, "cannot prune the delivery log");
            }
        }
    }
}

/// How long an e-mail of a group that opens an incident waits for the incident and its
/// context, so the first message carries them.
const CONTEXT_WAIT: Duration = Duration::from_secs(10);

/// The incident of `n`'s group as an e-mail attachment (`incident-<id>.json`: the incident
/// and its collected context), when incidents are on and the group has one that is open or
/// ended within five minutes of the notification. A firing notification that opens one
/// waits up to [`CONTEXT_WAIT`] for it and its context.
async fn incident_attachment(
    d: &Deliverer,
    tenant: &TenantId,
    n: &Notification,
) -> Option<(String, String, Vec<u8>)> {
    let q = d.hooks.incidents.as_ref()?;
    let opens = n.status() == "firing" && q.policy.opens(n);
    let deadline = Instant::now() + CONTEXT_WAIT;
    let incident = loop {
        let found = match d.store.latest_incident_of_group(tenant, &n.group_key).await {
            Ok(i) => i.filter(|i| i.resolved_at_ms.is_none_or(|r| r >= n.at_ms - 300_000)),
            Err(e) => {
                tracing::warn!(%tenant, group = %n.group_key, error = %e, "cannot read the group's incident");
                return None;
            }
        };
        let collected = found.as_ref().is_some_and(|i| i.context != "{}");
        if collected || !opens || Instant::now() >= deadline {
            break found?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let context: Value = serde_json::from_str(&incident.context).unwrap_or(Value::Null);
    let body = serde_json::json!({
        "id": incident.id,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "service": incident.service_name,
        "detectedAt": dozor_model::time::rfc3339_ns(incident.detected_at_ms.saturating_mul(1_000_000)),
        "url": format!("{}/incidents/{}", d.external_url.trim_end_matches('/'), incident.id),
        "context": context,
    });
    Some((
        format!("incident-{}.json", incident.id),
        "application/json".to_owned(),
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    ))
}

/// The headers an integration's `http_config` adds, secret files read now (so a rotated
/// secret is picked up).
fn http_headers(http: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let read = |f: &str| dozor_ingest::source::read_secret(std::path::Path::new(f));
    dozor_alerting::http::settings(http, "http_config").and_then(|s| s.resolve(&read))
}

/// A URL given inline or in a file (read at each send, so a rotated token is picked up).
fn url_of(inline: Option<&String>, file: Option<&String>) -> Result<String, String> {
    match (inline, file) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(f)) => dozor_ingest::source::read_secret(std::path::Path::new(f)),
        (None, None) => Err("no URL".to_owned()),
    }
}

/// Which chats get buttons, for a notification of `tenant`, and the Slack threads known.
#[derive(Debug, Clone, Copy)]
struct Buttons<'a> {
    tenant: &'a TenantId,
    slack: bool,
    telegram: bool,
    threads: &'a Threads,
}

/// Slack threads of alert groups (`slack_configs[].thread`): channel and `ts` of each
/// group's first message, by [`thread_key`]; a group's go when it resolves. Kept in memory:
/// after a restart a group's next message starts a new thread.
type Threads = std::sync::Mutex<std::collections::HashMap<String, (String, String)>>;

/// The start of the keys of a group's threads.
fn thread_prefix(tenant: &TenantId, n: &Notification) -> String {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}",
        tenant.as_str(),
        n.receiver,
        n.group_key
    )
}

/// The key of a group's thread for the `index`th Slack integration of its receiver.
fn thread_key(tenant: &TenantId, n: &Notification, index: usize) -> String {
    format!("{}{index}", thread_prefix(tenant, n))
}

/// What one integration sends.
enum Outgoing {
    /// A POST of a JSON body, with the `http_config`'s headers, within `timeout`.
    Http {
        url: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        timeout: Duration,
        /// A Slack thread to remember from the answer (its [`thread_key`]).
        thread: Option<String>,
    },
    /// An e-mail.
    Email(Box<(dozor_alerting::email::Smtp, dozor_alerting::email::Email)>),
}

/// `n` as each integration of its receiver sends it: kind, and the message or why it
/// cannot be made.
fn messages(
    n: &Notification,
    config: &Loaded,
    external_url: &str,
    buttons: Buttons<'_>,
) -> Vec<(&'static str, Result<Outgoing, String>)> {
    // Buttons only while something fires.
    let key = (n.status() == "firing")
        .then(|| dozor_alerting::interact::short_key(buttons.tenant.as_str(), &n.group_key));
    let Some(r) = config.receivers.iter().find(|r| r.name == n.receiver) else {
        return Vec::new();
    };
    // Without send_resolved an integration hears only of firing alerts, and nothing when
    // none fires.
    let view = |send_resolved: bool| {
        let mut v = n.clone();
        if !send_resolved {
            v.alerts.retain(|a| !a.resolved(n.at_ms));
        }
        (!v.alerts.is_empty()).then_some(v)
    };
    let templates = &config.templates;
    // (kind, URL, body, http_config, timeout)
    let mut out = Vec::new();
    for w in &r.webhook_configs {
        if let Some(v) = view(w.send_resolved) {
            let body = dozor_alerting::webhook::payload(&v, external_url, w.max_alerts);
            out.push((
                "webhook",
                url_of(w.url.as_ref(), w.url_file.as_ref()),
                Ok(body),
                w.http_config.as_ref(),
                w.timeout,
                None,
            ));
        }
    }
    for (j, c) in r.slack_configs.iter().enumerate() {
        if let Some(v) = view(c.send_resolved) {
            let inline = c.api_url.as_ref().or(config.slack_api_url.as_ref());
            let thread = c.thread.then(|| thread_key(buttons.tenant, n, j));
            let known = thread.as_ref().and_then(|k| {
                let threads = buttons
                    .threads
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                threads.get(k).cloned()
            });
            let body =
                dozor_alerting::chat::slack(&v, c, &Renderer::new(templates, &v, external_url))
                    .map(|mut body| {
                        if let (true, Some(k), Some(blocks)) =
                            (buttons.slack, &key, body["blocks"].as_array_mut())
                        {
                            blocks.push(dozor_alerting::interact::slack_buttons(k));
                        }
                        if let Some((channel, ts)) = &known {
                            body["channel"] = Value::from(channel.as_str());
                            body["thread_ts"] = Value::from(ts.as_str());
                            if v.status() == "resolved" {
                                body["reply_broadcast"] = Value::Bool(true);
                            }
                        }
                        body
                    });
            let url = url_of(inline, c.api_url_file.as_ref());
            let remember = if known.is_none() { thread } else { None };
            out.push((
                "slack",
                url,
                body,
                c.other.get("http_config"),
                None,
                remember,
            ));
        }
    }
    for t in &r.telegram_configs {
        if let Some(v) = view(t.send_resolved) {
            let url = url_of(t.bot_token.as_ref(), t.bot_token_file.as_ref())
                .map(|token| format!("{}/bot{token}/sendMessage", t.api_url.trim_end_matches('/')));
            let body =
                dozor_alerting::chat::telegram(&v, t, &Renderer::new(templates, &v, external_url))
                    .map(|mut body| {
                        if let (true, Some(k)) = (buttons.telegram, &key) {
                            body["reply_markup"] = dozor_alerting::interact::telegram_buttons(k);
                        }
                        body
                    });
            out.push((
                "telegram",
                url,
                body,
                t.other.get("http_config"),
                None,
                None,
            ));
        }
    }
    for p in &r.pagerduty_configs {
        let Some(v) = view(p.send_resolved) else {
            continue;
        };
        // A configuration with only an Events API v1 key is not delivered (load warned).
        if p.routing_key.is_none() && p.routing_key_file.is_none() {
            continue;
        }
        let key = url_of(p.routing_key.as_ref(), p.routing_key_file.as_ref());
        let body = key.as_ref().map_err(Clone::clone).and_then(|key| {
            dozor_alerting::chat::pagerduty(
                &v,
                p,
                key,
                external_url,
                &Renderer::new(templates, &v, external_url),
            )
        });
        let http = p.other.get("http_config");
        out.push(("pagerduty", Ok(p.url.clone()), body, http, None, None));
    }
    for d in &r.discord_configs {
        if let Some(v) = view(d.send_resolved) {
            out.push((
                "discord",
                url_of(d.webhook_url.as_ref(), d.webhook_url_file.as_ref()),
                dozor_alerting::chat::discord(&v, d, &Renderer::new(templates, &v, external_url)),
                d.other.get("http_config"),
                None,
                None,
            ));
        }
    }
    for c in &r.msteams_configs {
        if let Some(v) = view(c.send_resolved) {
            out.push((
                "msteams",
                url_of(c.webhook_url.as_ref(), c.webhook_url_file.as_ref()),
                dozor_alerting::messaging::msteams(
                    &v,
                    c,
                    &Renderer::new(templates, &v, external_url),
                ),
                c.other.get("http_config"),
                None,
                None,
            ));
        }
    }
    let mut out: Vec<(&'static str, Result<Outgoing, String>)> = out
        .into_iter()
        .map(|(kind, url, body, http, timeout, thread)| {
            let headers = http_headers(http);
            let outgoing = url.and_then(|url| {
                Ok(Outgoing::Http {
                    url,
                    body: body?.to_string().into_bytes(),
                    headers: headers?,
                    timeout: timeout.unwrap_or(Duration::from_secs(10)),
                    thread,
                })
            });
            (kind, outgoing)
        })
        .collect();
    for c in &r.sendgrid_configs {
        if let Some(v) = view(c.send_resolved) {
            let body = dozor_alerting::messaging::sendgrid(
                &v,
                c,
                external_url,
                &Renderer::new(templates, &v, external_url),
            );
            let outgoing = url_of(c.api_key.as_ref(), c.api_key_file.as_ref()).and_then(|key| {
                Ok(Outgoing::Http {
                    url: format!("{}/v3/mail/send", c.api_url.trim_end_matches('/')),
                    body: body?.to_string().into_bytes(),
                    headers: vec![("Authorization".into(), format!("Bearer {key}"))],
                    timeout: Duration::from_secs(10),
                    thread: None,
                })
            });
            out.push(("sendgrid", outgoing));
        }
    }
    for c in &r.twilio_configs {
        if let Some(v) = view(c.send_resolved) {
            let token = url_of(c.auth_token.as_ref(), c.auth_token_file.as_ref());
            let forms = match dozor_alerting::messaging::twilio_forms(
                &v,
                c,
                &Renderer::new(templates, &v, external_url),
            ) {
                Ok(forms) => forms,
                Err(e) => {
                    out.push(("twilio", Err(e)));
                    continue;
                }
            };
            for form in forms {
                let outgoing = token.clone().map(|token| {
                    let basic = dozor_alerting::http::basic(&c.account_sid, &token);
                    Outgoing::Http {
                        url: c.url(),
                        body: form,
                        headers: vec![
                            ("Authorization".into(), basic),
                            (
                                "Content-Type".into(),
                                "application/x-www-form-urlencoded".into(),
                            ),
                        ],
                        timeout: Duration::from_secs(10),
                        thread: None,
                    }
                });
                out.push(("twilio", outgoing));
            }
        }
    }
    for e in &r.email_configs {
        if let Some(v) = view(e.send_resolved) {
            let email = dozor_alerting::email::message(
                &v,
                e,
                external_url,
                &Renderer::new(templates, &v, external_url),
            );
            let smtp = e.smtp(config.global.as_ref());
            out.push((
                "email",
                smtp.and_then(|smtp| Ok(Outgoing::Email(Box::new((smtp, email?))))),
            ));
        }
    }
    out
}

/// Sends one notification through every integration of its receiver, each retried on its
/// own; logs each outcome, and stores the group's log entry when all of them succeeded.
async fn deliver(d: Arc<Deliverer>, tenant: TenantId, n: Notification, log: bool) {
    let config = Arc::clone(&d.notifications.config(&tenant).loaded);
    let mut all_sent = true;
    let buttons = Buttons {
        tenant: &tenant,
        slack: d.hooks.chat.0,
        telegram: d.hooks.chat.1,
        threads: &d.threads,
    };
    for (kind, outgoing) in messages(&n, &config, &d.external_url, buttons) {
        let outgoing = match outgoing {
            Ok(Outgoing::Email(mut m)) => {
                if let Some(a) = incident_attachment(&d, &tenant, &n).await {
                    m.1.attachments.push(a);
                }
                Ok(Outgoing::Email(m))
            }
            o => o,
        };
        let thread = match &outgoing {
            Ok(Outgoing::Http { thread, .. }) => thread.clone(),
            _ => None,
        };
        match send_one(&d, &tenant, &n, kind, outgoing).await {
            Ok(answer) => {
                if let Some((key, t)) = thread.zip(slack_thread(&answer)) {
                    d.threads().insert(key, t);
                }
            }
            Err(_) => all_sent = false,
        }
    }
    if n.status() == "resolved" {
        let prefix = thread_prefix(&tenant, &n);
        d.threads().retain(|k, _| !k.starts_with(&prefix));
    }
    if all_sent && log {
        let e = n.log_entry();
        let row = LogRow {
            group_key: e.group_key,
            firing: Value::from(e.firing).to_string(),
            resolved: Value::from(e.resolved).to_string(),
            sent_at_ms: e.at_ms,
        };
        if d.records
            .send(NotificationRecord::Log(tenant.clone(), row))
            .await
            .is_err()
        {
            tracing::warn!(%tenant, "the notification log is closed");
        }
    }
}

/// Sends one integration's message (retried), counts and logs the outcome and writes it to
/// the delivery log; the answer's body, or why it was given up.
async fn send_one(
    d: &Deliverer,
    tenant: &TenantId,
    n: &Notification,
    kind: &'static str,
    outgoing: Result<Outgoing, String>,
) -> Result<Vec<u8>, String> {
    let labels = IntegrationLabels {
        integration: kind.to_owned(),
    };
    d.metrics.sent.get_or_create(&labels).inc();
    let started = Instant::now();
    let at_ms = now_ms();
    let (attempts, outcome) = match outgoing {
        Ok(o) => call(&o, n, kind, &d.metrics, &labels).await,
        Err(e) => (0, Err(e)),
    };
    let took = started.elapsed();
    d.metrics
        .latency
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    if let Err(e) = &outcome {
        d.metrics.failed.get_or_create(&labels).inc();
        tracing::error!(%tenant, receiver = %n.receiver, kind, group = %n.group_key, error = %e, "notification given up");
    }
    let row = Delivery {
        id: String::new(),
        at_ms,
        receiver: n.receiver.clone(),
        integration: kind.to_owned(),
        group_key: n.group_key.clone(),
        alerts: i64::try_from(n.alerts.len()).unwrap_or(i64::MAX),
        status: if outcome.is_ok() { "sent" } else { "failed" }.to_owned(),
        attempts: i64::from(attempts),
        error: outcome.as_ref().err().cloned(),
        duration_ms: i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
    };
    if d.records
        .send(NotificationRecord::Delivery(tenant.clone(), row))
        .await
        .is_err()
    {
        tracing::warn!(%tenant, "the delivery log is closed");
    }
    outcome
}

/// Sends one message until it is taken (a 2xx, an accepted e-mail) or [`ATTEMPTS`] tries;
/// the attempts made and the last error.
async fn call(
    o: &Outgoing,
    n: &Notification,
    kind: &'static str,
    metrics: &NotifyMetrics,
    labels: &IntegrationLabels,
) -> (u32, Result<Vec<u8>, String>) {
    let mut backoff = Duration::ZERO;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let outcome = match o {
            Outgoing::Http {
                url,
                body,
                headers,
                timeout,
                ..
            } => {
                match dozor_ingest::probe::send_http_body(
                    url,
                    "POST",
                    headers,
                    Some(body.clone()),
                    *timeout,
                )
                .await
                {
                    Ok((status, answer)) if (200..300).contains(&status) => {
                        slack_answer(kind, &answer).map(|()| answer)
                    }
                    Ok((status, _)) => Err(format!("HTTP {status}")),
                    Err(e) => Err(e),
                }
            }
            Outgoing::Email(e) => send_email(&e.0, &e.1).await.map(|()| Vec::new()),
        };
        match outcome {
            Ok(answer) => {
                tracing::info!(receiver = %n.receiver, kind, group = %n.group_key, alerts = n.alerts.len(), attempt, "notified");
                return (attempt, Ok(answer));
            }
            Err(why) => {
                metrics.requests_failed.get_or_create(labels).inc();
                // The URL may carry a token: it is not logged.
                tracing::warn!(receiver = %n.receiver, kind, attempt, error = %why, "notification call failed");
                last = why;
                if attempt < ATTEMPTS {
                    backoff = dozor_ingest::source::next_backoff(backoff);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
    (ATTEMPTS, Err(last))
}

/// Slack's Web API answers 200 with `"ok": false` when it refuses a message; incoming
/// webhooks answer `ok` as text, which is fine.
fn slack_answer(kind: &str, answer: &[u8]) -> Result<(), String> {
    if kind != "slack" {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(answer) {
        Ok(v) if v["ok"] == Value::Bool(false) => Err(format!(
            "slack: {}",
            v["error"].as_str().unwrap_or("refused")
        )),
        _ => Ok(()),
    }
}

/// The channel and `ts` of a message Slack's Web API posted.
fn slack_thread(answer: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    Some((
        v["channel"].as_str()?.to_owned(),
        v["ts"].as_str()?.to_owned(),
    ))
}

/// An attachment: text as text, so lettre ends its lines with CRLF (bare LFs would make the
/// whole of a 7-bit body one over-long SMTP line), other bytes as they are.
fn attachment(
    name: &str,
    content: &[u8],
    media: lettre::message::header::ContentType,
) -> lettre::message::SinglePart {
    let a = lettre::message::Attachment::new(name.to_owned());
    match std::str::from_utf8(content) {
        Ok(text) => a.body(text.to_owned(), media),
        Err(_) => a.body(content.to_vec(), media),
    }
}

/// Sends an e-mail over SMTP (lettre): STARTTLS when `require_tls` (implicit TLS on port
/// 465), the system's roots; a multipart/mixed message with the text and HTML bodies as
/// alternatives, the snapshot (when there is one) and the other attachments.
pub(crate) async fn send_email(
    smtp: &dozor_alerting::email::Smtp,
    email: &dozor_alerting::email::Email,
) -> Result<(), String> {
    use dozor_alerting::email::SecretSource;
    use lettre::message::header::{ContentType, HeaderName, HeaderValue};
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| format!("address {a:?}: {e}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(email.subject.clone());
    for to in &smtp.to {
        builder = builder.to(mailbox(to)?);
    }
    for (name, value) in &email.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|e| format!("header {name:?}: {e}"))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    let json = ContentType::parse("application/json").map_err(|e| e.to_string())?;
    let mut body = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
        email.text.clone(),
        email.html.clone(),
    ));
    // Alert notifications carry their snapshot; reports have none.
    if !email.snapshot.is_empty() {
        body = body.singlepart(attachment("alerts.json", &email.snapshot, json));
    }
    for (name, media, content) in &email.attachments {
        let media = ContentType::parse(media).map_err(|e| e.to_string())?;
        body = body.singlepart(attachment(name, content, media));
    }
    let message = builder.multipart(body).map_err(|e| e.to_string())?;
    let mut transport = if !smtp.require_tls {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    } else if smtp.port == 465 {
        AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| e.to_string())?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| e.to_string())?
    }
    .port(smtp.port)
    .hello_name(ClientId::Domain(smtp.hello.clone()))
    .timeout(Some(Duration::from_secs(10)));
    if let Some((user, secret)) = &smtp.auth {
        let password = match secret {
            SecretSource::Inline(p) => p.clone(),
            SecretSource::File(f) => dozor_ingest::source::read_secret(std::path::Path::new(f))?,
        };
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}

/// Appends a system entry to the audit chain off the async workers (it fsyncs); a failure
/// is logged (what it records has already happened).
pub async fn audit_system(audit: &Arc<dozor_audit::AuditLog>, entry: dozor_audit::Entry) {
    let audit = Arc::clone(audit);
    let action = entry.action.clone();
    match tokio::task::spawn_blocking(move || audit.append(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(%action, error = %e, "cannot append to the audit chain"),
        Err(e) => tracing::error!(%action, error = %e, "cannot append to the audit chain"),
    }
}

impl Deliverer {
    fn escalating(&self) -> std::sync::MutexGuard<'_, Escalations> {
        self.hooks
            .escalations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether someone acknowledged the group: its incident, or one of its firing alerts.
async fn acknowledged(
    store: &Store,
    tenant: &TenantId,
    group_key: &str,
    alerts: &[Alert],
) -> Result<bool, dozor_state::StateError> {
    if let Some(i) = store.open_incident_of_group(tenant, group_key).await?
        && i.status != "open"
    {
        return Ok(true);
    }
    for a in alerts {
        if let Some(e) = store.latest_alert(tenant, &a.fingerprint()).await?
            && e.acked_ms.is_some()
            && e.resolved_ms.is_none()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sends a due escalation stage to its receiver — unless the group was acknowledged (the
/// escalation ends) or has no firing alert left — and notes it on the group's incident.
async fn escalate(d: Arc<Deliverer>, due: Due) {
    let now = now_ms();
    let Some(receiver) = d.hooks.oncall.resolve(&due.tenant, &due.receiver, now) else {
        tracing::error!(receiver = %due.receiver, "BUG: an escalation names an unknown rotation");
        return;
    };
    let receiver = receiver.to_owned();
    let whom = if receiver == due.receiver {
        receiver.clone()
    } else {
        format!(
            "{receiver}, on call for {}",
            &due.receiver[dozor_alerting::oncall::PREFIX.len()..]
        )
    };
    let Some(n) = d.notifications.with(&due.tenant, |m| {
        m.groups(now)
            .into_iter()
            .find(|(g, _)| g.key == due.group_key)
            .map(|(g, alerts)| Notification {
                receiver: receiver.clone(),
                group_key: due.group_key.clone(),
                group_labels: g.labels.to_vec(),
                alerts: alerts.into_iter().map(|v| v.alert).collect(),
                at_ms: now,
            })
    }) else {
        return;
    };
    if n.alerts.is_empty() {
        return;
    }
    match acknowledged(&d.store, &due.tenant, &due.group_key, &n.alerts).await {
        Ok(true) => {
            tracing::info!(tenant = %due.tenant, group = %due.group_key, policy = %due.policy, "acknowledged: escalation ends");
            d.escalating().stop(&due.tenant, &due.group_key);
            return;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether a group was acknowledged; escalating")
        }
    }
    tracing::info!(tenant = %due.tenant, group = %due.group_key, policy = %due.policy, stage = due.stage, receiver = %due.receiver, "escalating");
    if let Ok(Some(incident)) = d
        .store
        .open_incident_of_group(&due.tenant, &due.group_key)
        .await
    {
        let ev = dozor_state::incidents::IncidentEvent {
            seq: 0,
            at_ms: now,
            kind: "escalation".into(),
            actor: "alerting".into(),
            text: format!(
                "escalated to {whom} (policy {}, stage {})",
                due.policy,
                due.stage + 1
            ),
            data: serde_json::json!({"policy": due.policy, "stage": due.stage, "receiver": due.receiver}).to_string(),
        };
        if let Err(e) = d
            .store
            .add_incident_event(&due.tenant, &incident.id, &ev)
            .await
        {
            tracing::warn!(error = %e, "cannot note an escalation on its incident");
        }
    }
    deliver(Arc::clone(&d), due.tenant, n, false).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_refusals_fail_the_call_and_its_answers_name_the_thread() {
        let refused = br#"{"ok":false,"error":"channel_not_found"}"#;
        assert_eq!(
            slack_answer("slack", refused),
            Err("slack: channel_not_found".to_owned())
        );
        assert_eq!(
            slack_answer("webhook", refused),
            Ok(()),
            "only Slack's Web API"
        );
        assert_eq!(
            slack_answer("slack", b"ok"),
            Ok(()),
            "an incoming webhook's answer"
        );
        let posted = br#"{"ok":true,"channel":"C024BE91L","ts":"1503435956.000247"}"#;
        assert_eq!(slack_answer("slack", posted), Ok(()));
        assert_eq!(
            slack_thread(posted),
            Some(("C024BE91L".to_owned(), "1503435956.000247".to_owned()))
        );
        assert_eq!(slack_thread(b"ok"), None);
    }

    #[test]
    fn http_config_headers_are_resolved_and_mistakes_named() {
        let config = serde_json::json!({"authorization": {"credentials": "xoxb-1"}});
        assert_eq!(
            http_headers(Some(&config)).unwrap(),
            [("Authorization".to_owned(), "Bearer xoxb-1".to_owned())]
        );
        assert!(http_headers(None).unwrap().is_empty());
        let missing = serde_json::json!({"authorization": {"credentials_file": "/nonexistent/x"}});
        assert!(http_headers(Some(&missing)).is_err());
    }
}
