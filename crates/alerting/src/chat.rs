//! Chat and paging receivers' messages: Slack (incoming webhook, Block Kit), Discord (webhook
//! embeds), Telegram (Bot API `sendMessage`, HTML) and PagerDuty (Events API v2), with
//! Alertmanager's default title — `[FIRING:2] <common label values>` — and one
//! line per alert: its name, instance and `summary` (else `description`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dispatch::Notification;

/// One `slack_configs` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SlackConfig {
    /// Alertmanager's other keys (templates, HTTP settings…): accepted, not applied; the
    /// loader warns about them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// The incoming webhook (else `global.slack_api_url`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub api_url_file: Option<String>,
    /// The channel (the webhook's own when absent).
    #[serde(default)]
    pub channel: Option<String>,
    /// The sender's name.
    #[serde(default)]
    pub username: Option<String>,
    /// Whether resolved alerts are sent (default false, as in Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
}

/// One `discord_configs` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordConfig {
    /// Alertmanager's other keys (templates, HTTP settings…): accepted, not applied; the
    /// loader warns about them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// The webhook.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// Whether resolved alerts are sent (default true, as in Alertmanager).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn yes() -> bool {
    true
}

/// Alertmanager's default title.
pub fn title(n: &Notification) -> String {
    let firing = n.alerts.iter().filter(|a| !a.resolved(n.at_ms)).count();
    let status = match n.status() {
        "firing" => format!("FIRING:{firing}"),
        _ => "RESOLVED".to_owned(),
    };
    let mut common: Vec<(&str, &str)> = Vec::new();
    if let Some(first) = n.alerts.first() {
        for l in first.labels.iter() {
            if n.alerts
                .iter()
                .all(|a| a.labels.get(&l.name) == Some(l.value.as_ref()))
            {
                common.push((l.name.as_ref(), l.value.as_ref()));
            }
        }
    }
    // The alert name first, then the other common values, as people read them.
    common.sort_by_key(|(k, _)| *k != "alertname");
    let values: Vec<&str> = common.iter().map(|(_, v)| *v).collect();
    format!("[{status}] {}", values.join(" "))
}

/// One line per alert.
pub fn lines(n: &Notification) -> Vec<String> {
    n.alerts
        .iter()
        .map(|a| {
            let state = if a.resolved(n.at_ms) {
                "resolved"
            } else {
                "firing"
            };
            let name = a.labels.get("alertname").unwrap_or("alert");
            let instance = a
                .labels
                .get("instance")
                .map(|i| format!(" on {i}"))
                .unwrap_or_default();
            let text = a
                .annotations
                .get("summary")
                .or_else(|| a.annotations.get("description"))
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            format!("{name}{instance} ({state}){text}")
        })
        .collect()
}

/// Slack's incoming-webhook message: the title as the notification text, a header block and
/// a section with the alerts.
pub fn slack(n: &Notification, config: &SlackConfig) -> Value {
    let title = title(n);
    let text = lines(n)
        .iter()
        .map(|l| format!("• {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut msg = json!({
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, 3000)}},
        ],
    });
    if let Some(c) = &config.channel {
        msg["channel"] = json!(c);
    }
    if let Some(u) = &config.username {
        msg["username"] = json!(u);
    }
    msg
}

/// Discord's webhook message: one embed, red while firing, green once resolved.
pub fn discord(n: &Notification) -> Value {
    let color = if n.status() == "firing" {
        0x00E7_4C3C
    } else {
        0x002E_CC71
    };
    json!({
        "embeds": [{
            "title": cut(&title(n), 256),
            "description": cut(&lines(n).join("\n"), 4096),
            "color": color,
        }],
    })
}

/// One `telegram_configs` entry (Bot API `sendMessage`).
#[derive(Debug, Clone, Deserialize)]
pub struct TelegramConfig {
    /// Alertmanager's other keys (templates, HTTP settings…): accepted, not applied; the
    /// loader warns about them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// The Bot API's base URL (default `https://api.telegram.org`).
    #[serde(default = "telegram_api")]
    pub api_url: String,
    /// The bot's token.
    #[serde(default)]
    pub bot_token: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub bot_token_file: Option<String>,
    /// The chat to write to.
    pub chat_id: i64,
    /// Send without a sound.
    #[serde(default)]
    pub disable_notifications: bool,
    /// Whether resolved alerts are sent (default true, as in Alertmanager).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

/// One `pagerduty_configs` entry (Events API v2).
#[derive(Debug, Clone, Deserialize)]
pub struct PagerdutyConfig {
    /// Alertmanager's other keys (templates, HTTP settings…): accepted, not applied; the
    /// loader warns about them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// The integration's routing key.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub routing_key_file: Option<String>,
    /// An Events API v1 key: accepted, not delivered (the loader says so).
    #[serde(default)]
    pub service_key: Option<String>,
    /// A file holding one.
    #[serde(default)]
    pub service_key_file: Option<String>,
    /// The Events API's URL.
    #[serde(default = "pagerduty_api")]
    pub url: String,
    /// `critical`, `error` (default), `warning` or `info`.
    #[serde(default = "pagerduty_severity")]
    pub severity: String,
    /// The client named in the incident.
    #[serde(default = "pagerduty_client")]
    pub client: String,
    /// Whether resolutions resolve the incident (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn pagerduty_api() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_owned()
}

fn pagerduty_severity() -> String {
    "error".to_owned()
}

fn pagerduty_client() -> String {
    "Dozor".to_owned()
}

/// Escapes text for Telegram's HTML parse mode.
/// `s` safe in HTML text and attribute values (Telegram's HTML and the e-mail's body).
pub(crate) fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Telegram's `sendMessage` body: the title in bold, one line per alert.
pub fn telegram(n: &Notification, config: &TelegramConfig) -> Value {
    let mut text = format!("<b>{}</b>", html(&title(n)));
    for l in lines(n) {
        text.push('\n');
        text.push_str(&html(&l));
    }
    json!({
        "chat_id": config.chat_id,
        "text": cut(&text, 4096),
        "parse_mode": "HTML",
        "disable_notification": config.disable_notifications,
    })
}

/// PagerDuty's Events API v2 event: `trigger` while any alert fires, `resolve` after, with
/// one `dedup_key` per group so the incident follows the group.
pub fn pagerduty(
    n: &Notification,
    config: &PagerdutyConfig,
    routing_key: &str,
    client_url: &str,
) -> Value {
    let dedup_key = dozor_model::labels::fingerprint_pairs([
        ("receiver", n.receiver.as_str()),
        ("group", n.group_key.as_str()),
    ]);
    let action = if n.status() == "firing" {
        "trigger"
    } else {
        "resolve"
    };
    json!({
        "routing_key": routing_key,
        "dedup_key": dedup_key,
        "event_action": action,
        "client": config.client,
        "client_url": client_url,
        "payload": {
            "summary": cut(&title(n), 1024),
            "source": config.client,
            "severity": config.severity,
            "custom_details": {"alerts": lines(n), "group_key": n.group_key},
        },
    })
}

/// `s` cut to `max` characters (the services refuse longer fields), with an ellipsis.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Alert;
    use dozor_model::Labels;

    fn notification() -> Notification {
        let alert = |instance: &str, ends: Option<i64>| Alert {
            labels: Labels::from_pairs([
                ("alertname", "Down"),
                ("instance", instance),
                ("job", "shop"),
            ])
            .unwrap(),
            annotations: [("summary".to_owned(), format!("{instance} does not answer"))].into(),
            starts_at_ms: 1_000,
            ends_at_ms: ends,
            generator_url: String::new(),
        };
        Notification {
            receiver: "chat".into(),
            group_key: "{}:{}".into(),
            group_labels: vec![],
            alerts: vec![alert("a:9100", None), alert("b:9100", Some(2_000))],
            at_ms: 5_000,
        }
    }

    #[test]
    fn titles_and_lines_read_like_alertmanagers() {
        let n = notification();
        assert_eq!(title(&n), "[FIRING:1] Down shop");
        assert_eq!(
            lines(&n),
            [
                "Down on a:9100 (firing): a:9100 does not answer",
                "Down on b:9100 (resolved): b:9100 does not answer"
            ]
        );
        let mut resolved = n.clone();
        resolved.alerts.remove(0);
        assert_eq!(title(&resolved), "[RESOLVED] Down b:9100 shop");
    }

    #[test]
    fn slack_and_discord_messages_have_their_shapes() {
        let n = notification();
        let config: SlackConfig =
            serde_saphyr::from_str("api_url: http://x\nchannel: '#ops'\n").unwrap();
        let s = slack(&n, &config);
        assert_eq!(s["text"], "[FIRING:1] Down shop");
        assert_eq!(s["channel"], "#ops");
        assert_eq!(s["blocks"][0]["type"], "header");
        assert!(
            s["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("• Down on a:9100")
        );
        let d = discord(&n);
        assert_eq!(d["embeds"][0]["color"], 0x00E7_4C3C);
        assert_eq!(d["embeds"][0]["title"], "[FIRING:1] Down shop");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
    #[test]
    fn telegram_and_pagerduty_messages_have_their_shapes() {
        let n = notification();
        let t: TelegramConfig = serde_saphyr::from_str("bot_token: x\nchat_id: -100123\n").unwrap();
        let m = telegram(&n, &t);
        assert_eq!(m["chat_id"], -100_123);
        assert_eq!(m["parse_mode"], "HTML");
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .starts_with("<b>[FIRING:1] Down shop</b>\nDown on a:9100")
        );
        assert_eq!(html("a<b>&"), "a&lt;b&gt;&amp;");
        let p: PagerdutyConfig = serde_saphyr::from_str("routing_key: k\n").unwrap();
        let e = pagerduty(&n, &p, "k", "http://dozor");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["routing_key"], "k");
        assert_eq!(e["payload"]["severity"], "error");
        assert_eq!(e["dedup_key"].as_str().unwrap().len(), 16);
        let mut resolved = n.clone();
        resolved.alerts.remove(0);
        let r = pagerduty(&resolved, &p, "k", "http://dozor");
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], e["dedup_key"], "the same incident");
    }
}
