//! `alerting.config_file`: Alertmanager's configuration applied to the default tenant's
//! alerts (`dozor_alerting`): each alert that fires or resolves enters the routing tree, the
//! dispatcher groups and times the notifications, and each integration of the receiver gets
//! its message by POST — webhooks Alertmanager's payload v4, Slack a Block Kit message,
//! Discord an embed, Telegram a `sendMessage`, PagerDuty an Events API v2 trigger or
//! resolve — retried with exponential back-off and jitter (at most [`ATTEMPTS`]
//! tries, each with a 10 s timeout) and logged.
//!
//! Not yet: the other integrations (they load, with a warning), silences, inhibition,
//! persistence of the notification log across restarts, per-tenant configurations.

use std::sync::Arc;
use std::time::Duration;

use dozor_alerting::config::{AlertmanagerConfig, Loaded, ReceiverConfig};
use dozor_alerting::{Alert, Dispatcher, Notification};
use dozor_rules::Transition;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// Most tries of one webhook call.
pub const ATTEMPTS: u32 = 5;
/// Alerts waiting for the dispatcher; beyond it new transitions are dropped and logged.
const QUEUE: usize = 10_000;

/// The rule evaluations' side: hands transitions to the dispatcher without waiting.
#[derive(Debug, Clone)]
pub struct Notifier(mpsc::Sender<Alert>);

impl Notifier {
    /// Queues an alert for the dispatcher without waiting; a full queue drops it (logged).
    pub fn send(&self, alert: Alert) {
        if self.0.try_send(alert).is_err() {
            tracing::error!("the notification queue is full; an alert transition was dropped");
        }
    }
}

/// A rule alert's transition as the notification model's alert: started when it began to
/// fire, ended when it resolved.
pub fn alert_of(t: &Transition) -> Alert {
    let (Transition::Fired(a) | Transition::Resolved(a)) = t;
    Alert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
        ends_at_ms: match t {
            Transition::Fired(_) => None,
            Transition::Resolved(a) => {
                Some(a.resolved_at_ms.unwrap_or_else(dozor_model::time::now_ms))
            }
        },
        generator_url: String::new(),
    }
}

/// Loads the configuration file; its warnings (what is accepted but not acted on) are
/// logged.
pub fn load(path: &std::path::Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("alerting.config_file {}: {e}", path.display()))?;
    let loaded = AlertmanagerConfig::parse(&text)
        .and_then(AlertmanagerConfig::load)
        .map_err(|e| anyhow::anyhow!("alerting.config_file {}: {e}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!(file = %path.display(), "alerting: {w}");
    }
    Ok(loaded)
}

/// Starts the dispatcher; returns the evaluations' handle and the task.
pub fn start(
    loaded: Loaded,
    external_url: String,
    stop: watch::Receiver<bool>,
) -> (Notifier, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let send_resolved = loaded
        .receivers
        .iter()
        .filter(|r| {
            r.webhook_configs.iter().any(|w| w.send_resolved)
                || r.slack_configs.iter().any(|c| c.send_resolved)
                || r.discord_configs.iter().any(|d| d.send_resolved)
                || r.telegram_configs.iter().any(|t| t.send_resolved)
                || r.pagerduty_configs.iter().any(|p| p.send_resolved)
        })
        .map(|r| r.name.clone());
    let dispatcher = Dispatcher::new(loaded.route.clone(), send_resolved);
    let receivers = Arc::new(Receivers {
        list: loaded.receivers,
        slack_api_url: loaded.slack_api_url,
    });
    let task = tokio::spawn(run(dispatcher, receivers, Arc::new(external_url), rx, stop));
    (Notifier(tx), task)
}

async fn run(
    mut dispatcher: Dispatcher,
    receivers: Arc<Receivers>,
    external_url: Arc<String>,
    mut rx: mpsc::Receiver<Alert>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = dozor_model::time::now_ms();
        let wait = dispatcher
            .next_due_ms()
            .map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(u64::try_from(t - now).unwrap_or(0))
            });
        tokio::select! {
            a = rx.recv() => match a {
                Some(a) => dispatcher.insert(&a, dozor_model::time::now_ms()),
                None => return,
            },
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for n in dispatcher.flush(dozor_model::time::now_ms()) {
            tokio::spawn(deliver(
                n,
                Arc::clone(&receivers),
                Arc::clone(&external_url),
            ));
        }
    }
}

/// The receivers, and `global.slack_api_url`.
#[derive(Debug)]
struct Receivers {
    list: Vec<ReceiverConfig>,
    slack_api_url: Option<String>,
}

/// A URL given inline or in a file (read at each send, so a rotated token is picked up).
fn url_of(inline: Option<&String>, file: Option<&String>) -> Result<String, String> {
    match (inline, file) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(f)) => dozor_ingest::source::read_secret(std::path::Path::new(f)),
        (None, None) => Err("no URL".to_owned()),
    }
}

/// `n` as each integration of its receiver sends it: kind, URL, body.
fn messages(
    n: &Notification,
    receivers: &Receivers,
    external_url: &str,
) -> Vec<(&'static str, Result<String, String>, Vec<u8>)> {
    let Some(r) = receivers.list.iter().find(|r| r.name == n.receiver) else {
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
    let mut out = Vec::new();
    for w in &r.webhook_configs {
        if let Some(v) = view(w.send_resolved) {
            let body = dozor_alerting::webhook::payload(&v, external_url, w.max_alerts);
            out.push(("webhook", url_of(w.url.as_ref(), w.url_file.as_ref()), body));
        }
    }
    for c in &r.slack_configs {
        if let Some(v) = view(c.send_resolved) {
            let inline = c.api_url.as_ref().or(receivers.slack_api_url.as_ref());
            let body = dozor_alerting::chat::slack(&v, c);
            out.push(("slack", url_of(inline, c.api_url_file.as_ref()), body));
        }
    }
    for t in &r.telegram_configs {
        if let Some(v) = view(t.send_resolved) {
            let url = url_of(t.bot_token.as_ref(), t.bot_token_file.as_ref())
                .map(|token| format!("{}/bot{token}/sendMessage", t.api_url.trim_end_matches('/')));
            out.push(("telegram", url, dozor_alerting::chat::telegram(&v, t)));
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
        match url_of(p.routing_key.as_ref(), p.routing_key_file.as_ref()) {
            Ok(key) => {
                let body = dozor_alerting::chat::pagerduty(&v, p, &key, external_url);
                out.push(("pagerduty", Ok(p.url.clone()), body));
            }
            Err(e) => out.push(("pagerduty", Err(e), Value::Null)),
        }
    }
    for d in &r.discord_configs {
        if let Some(v) = view(d.send_resolved) {
            let body = dozor_alerting::chat::discord(&v);
            out.push((
                "discord",
                url_of(d.webhook_url.as_ref(), d.webhook_url_file.as_ref()),
                body,
            ));
        }
    }
    out.into_iter()
        .map(|(kind, url, body)| (kind, url, body.to_string().into_bytes()))
        .collect()
}

/// Sends one notification through every integration of its receiver, each retried on its
/// own.
async fn deliver(n: Notification, receivers: Arc<Receivers>, external_url: Arc<String>) {
    for (kind, url, body) in messages(&n, &receivers, &external_url) {
        let url = match url {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(receiver = %n.receiver, kind, error = %e, "notification not sent");
                continue;
            }
        };
        let mut backoff = Duration::ZERO;
        for attempt in 1..=ATTEMPTS {
            let outcome =
                dozor_ingest::probe::post_json(&url, body.clone(), Duration::from_secs(10)).await;
            match outcome {
                Ok(status) if (200..300).contains(&status) => {
                    tracing::info!(receiver = %n.receiver, kind, group = %n.group_key, alerts = n.alerts.len(), attempt, "notified");
                    break;
                }
                other => {
                    let why = match other {
                        Ok(status) => format!("HTTP {status}"),
                        Err(e) => e,
                    };
                    // The URL may carry a token: it is not logged.
                    tracing::warn!(receiver = %n.receiver, kind, attempt, error = %why, "notification call failed");
                    if attempt == ATTEMPTS {
                        tracing::error!(receiver = %n.receiver, kind, group = %n.group_key, "notification given up");
                        break;
                    }
                    backoff = dozor_ingest::source::next_backoff(backoff);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}
