//! Chat receivers' messages: Slack (incoming webhook, Block Kit) and Discord (webhook
//! embeds), with Alertmanager's default title — `[FIRING:2] <common label values>` — and one
//! line per alert: its name, instance and `summary` (else `description`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dispatch::Notification;

/// One `slack_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
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
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
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
}
