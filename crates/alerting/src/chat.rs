//! Chat and paging receivers' messages: Slack (incoming webhook, Block Kit), Discord (webhook
//! embeds), Telegram (Bot API `sendMessage`, HTML) and PagerDuty (Events API v2), with
//! Alertmanager's default title — `[FIRING:2] <common label values>` — and one
//! line per alert: its name, instance and `summary` (else `description`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dispatch::Notification;
use crate::template::Renderer;

/// One `slack_configs` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SlackConfig {
    /// Alertmanager's other keys: the templated fields this integration reads and
    /// `http_config`; the loader warns about any other.
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
    /// Dozor's: the notifications of one group after its first go into the first one's
    /// thread (Slack's `thread_ts`), resolutions also to the channel. Needs Slack's Web API
    /// (`api_url: https://slack.com/api/chat.postMessage` with the bot token in
    /// `http_config.authorization`), whose answer names the thread; an incoming webhook
    /// answers nothing to thread on, so its messages stay separate.
    #[serde(default)]
    pub thread: bool,
    /// Whether resolved alerts are sent (default false, as in Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
}

/// One `discord_configs` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordConfig {
    /// Alertmanager's other keys: the templated fields this integration reads and
    /// `http_config`; the loader warns about any other.
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
/// a section with the alerts. `title`, `text`, `pretext`, `fallback`, `icon_emoji`,
/// `icon_url`, `username` and `channel` are templates; `title_link` links the title.
pub fn slack(n: &Notification, config: &SlackConfig, r: &Renderer<'_>) -> Result<Value, String> {
    let title = r.field(&config.other, "title")?.unwrap_or_else(|| title(n));
    let text = match r.field(&config.other, "text")? {
        Some(t) => t,
        None => lines(n)
            .iter()
            .map(|l| format!("• {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let fallback = r
        .field(&config.other, "fallback")?
        .unwrap_or_else(|| title.clone());
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}})];
    if let Some(link) = r
        .field(&config.other, "title_link")?
        .filter(|l| !l.is_empty())
    {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&format!("<{link}|Open in Dozor>"), 3000)}]}));
    }
    if let Some(pre) = r.field(&config.other, "pretext")?.filter(|p| !p.is_empty()) {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&pre, 3000)}}));
    }
    if !text.trim().is_empty() {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, 3000)}}));
    }
    let mut msg = json!({"text": cut(&fallback, 3000), "blocks": blocks});
    if let Some(c) = &config.channel {
        msg["channel"] = json!(r.text(c)?);
    }
    if let Some(u) = &config.username {
        msg["username"] = json!(r.text(u)?);
    }
    for (key, field) in [("icon_emoji", "icon_emoji"), ("icon_url", "icon_url")] {
        if let Some(v) = r.field(&config.other, key)?.filter(|v| !v.is_empty()) {
            msg[field] = json!(v);
        }
    }
    Ok(msg)
}

/// Discord's webhook message: one embed, red while firing, green once resolved; `title`
/// and `message` are templates.
pub fn discord(
    n: &Notification,
    config: &DiscordConfig,
    r: &Renderer<'_>,
) -> Result<Value, String> {
    let color = if n.status() == "firing" {
        0x00E7_4C3C
    } else {
        0x002E_CC71
    };
    let title = r.field(&config.other, "title")?.unwrap_or_else(|| title(n));
    let message = r
        .field(&config.other, "message")?
        .unwrap_or_else(|| lines(n).join("\n"));
    Ok(json!({
        "embeds": [{
            "title": cut(&title, 256),
            "description": cut(&message, 4096),
            "color": color,
        }],
    }))
}

/// One `telegram_configs` entry (Bot API `sendMessage`).
#[derive(Debug, Clone, Deserialize)]
pub struct TelegramConfig {
    /// Alertmanager's other keys: the templated fields this integration reads and
    /// `http_config`; the loader warns about any other.
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
    /// Alertmanager's other keys: the templated fields this integration reads and
    /// `http_config`; the loader warns about any other.
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

/// `s` safe in HTML text and attribute values (Telegram's HTML and the e-mail's body).
pub(crate) use dozor_gotmpl::escape_html as html;

/// Telegram's `sendMessage` body: the title in bold, one line per alert; `message` (a
/// template, sent as written) and `parse_mode` (`HTML`, `Markdown`, `MarkdownV2` or empty
/// for plain text) replace them.
pub fn telegram(
    n: &Notification,
    config: &TelegramConfig,
    r: &Renderer<'_>,
) -> Result<Value, String> {
    let text = match r.field(&config.other, "message")? {
        Some(m) => m,
        None => {
            let mut text = format!("<b>{}</b>", html(&title(n)));
            for l in lines(n) {
                text.push('\n');
                text.push_str(&html(&l));
            }
            text
        }
    };
    let mut body = json!({
        "chat_id": config.chat_id,
        "text": cut(&text, 4096),
        "disable_notification": config.disable_notifications,
    });
    match config.other.get("parse_mode").and_then(Value::as_str) {
        None => body["parse_mode"] = json!("HTML"),
        Some("") => {}
        Some(mode) => body["parse_mode"] = json!(mode),
    }
    Ok(body)
}

/// PagerDuty's Events API v2 event: `trigger` while any alert fires, `resolve` after, with
/// one `dedup_key` per group so the incident follows the group. `description`, `client`,
/// `client_url`, `source`, `class`, `component`, `group` and each value of `details` are
/// templates.
pub fn pagerduty(
    n: &Notification,
    config: &PagerdutyConfig,
    routing_key: &str,
    client_url: &str,
    r: &Renderer<'_>,
) -> Result<Value, String> {
    let action = if n.status() == "firing" {
        "trigger"
    } else {
        "resolve"
    };
    let mut event = pagerduty_event(&n.receiver, &n.group_key, routing_key, action);
    let client = r.text(&config.client)?;
    let summary = r
        .field(&config.other, "description")?
        .unwrap_or_else(|| title(n));
    let client_url = r
        .field(&config.other, "client_url")?
        .unwrap_or_else(|| client_url.to_owned());
    let source = r
        .field(&config.other, "source")?
        .unwrap_or_else(|| client.clone());
    let details = match config.other.get("details") {
        Some(Value::Object(m)) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let v = match v {
                    Value::String(t) => json!(r.text(t).map_err(|e| format!("details.{k}: {e}"))?),
                    other => other.clone(),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        _ => json!({"alerts": lines(n), "group_key": n.group_key}),
    };
    event["client"] = json!(client);
    event["client_url"] = json!(client_url);
    event["payload"] = json!({
        "summary": cut(&summary, 1024),
        "source": source,
        "severity": config.severity,
        "custom_details": details,
    });
    for key in ["class", "component", "group"] {
        if let Some(v) = r.field(&config.other, key)?.filter(|v| !v.is_empty()) {
            event["payload"][key] = json!(v);
        }
    }
    Ok(event)
}

/// An Events API v2 event of `action` for a receiver's group (an `acknowledge` needs
/// nothing more).
pub fn pagerduty_event(receiver: &str, group_key: &str, routing_key: &str, action: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "dedup_key": pagerduty_dedup_key(receiver, group_key),
        "event_action": action,
    })
}

/// The `dedup_key` of a receiver's group: the incident in PagerDuty follows the group.
pub fn pagerduty_dedup_key(receiver: &str, group_key: &str) -> String {
    dozor_model::labels::fingerprint_pairs([("receiver", receiver), ("group", group_key)])
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
        let t = crate::template::Templates::default();
        let r = Renderer::new(&t, &n, "http://dozor");
        let s = slack(&n, &config, &r).unwrap();
        assert_eq!(s["text"], "[FIRING:1] Down shop");
        assert_eq!(s["channel"], "#ops");
        assert_eq!(s["blocks"][0]["type"], "header");
        assert!(
            s["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("• Down on a:9100")
        );
        let dc: DiscordConfig = serde_saphyr::from_str("webhook_url: http://x\n").unwrap();
        let d = discord(&n, &dc, &r).unwrap();
        assert_eq!(d["embeds"][0]["color"], 0x00E7_4C3C);
        assert_eq!(d["embeds"][0]["title"], "[FIRING:1] Down shop");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
    #[test]
    fn templated_fields_replace_dozors_own_text() {
        let n = notification();
        let set = crate::template::Templates::default();
        let r = Renderer::new(&set, &n, "http://dozor");
        let config: SlackConfig = serde_saphyr::from_str(concat!(
            "api_url: http://x\n",
            "title: '{{ .CommonLabels.job }}: {{ len .Alerts.Firing }} down'\n",
            "text: '{{ range .Alerts.Firing }}{{ .Labels.instance }}{{ end }}'\n",
            "pretext: 'heads up'\n",
            "fallback: 'fb'\n",
            "title_link: '{{ .ExternalURL }}/alerts'\n",
            "icon_emoji: ':fire:'\n",
            "username: '{{ .Receiver }}-bot'\n",
        ))
        .unwrap();
        let s = slack(&n, &config, &r).unwrap();
        assert_eq!(s["text"], "fb");
        assert_eq!(s["username"], "chat-bot");
        assert_eq!(s["icon_emoji"], ":fire:");
        let blocks = s["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "shop: 1 down");
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "<http://dozor/alerts|Open in Dozor>"
        );
        assert_eq!(blocks[2]["text"]["text"], "heads up");
        assert_eq!(blocks[3]["text"]["text"], "a:9100");
        let d: DiscordConfig = serde_saphyr::from_str(
            "webhook_url: http://x\ntitle: '{{ template \"discord.default.title\" . }}'\nmessage: m\n",
        )
        .unwrap();
        let e = discord(&n, &d, &r).unwrap();
        assert_eq!(e["embeds"][0]["title"], "[FIRING:1] (Down shop)");
        assert_eq!(e["embeds"][0]["description"], "m");
        let t: TelegramConfig = serde_saphyr::from_str(
            "bot_token: x\nchat_id: 1\nmessage: '*{{ .Status }}*'\nparse_mode: MarkdownV2\n",
        )
        .unwrap();
        let m = telegram(&n, &t, &r).unwrap();
        assert_eq!(
            (m["text"].as_str(), m["parse_mode"].as_str()),
            (Some("*firing*"), Some("MarkdownV2"))
        );
        let plain: TelegramConfig =
            serde_saphyr::from_str("bot_token: x\nchat_id: 1\nparse_mode: ''\n").unwrap();
        assert!(
            telegram(&n, &plain, &r)
                .unwrap()
                .get("parse_mode")
                .is_none()
        );
        let p: PagerdutyConfig = serde_saphyr::from_str(concat!(
            "routing_key: k\n",
            "description: '{{ .GroupLabels.alertname }}{{ .CommonLabels.alertname }}'\n",
            "component: '{{ .CommonLabels.job }}'\n",
            "details: {firing: '{{ .Alerts.Firing | len }}', fixed: 3}\n",
        ))
        .unwrap();
        let ev = pagerduty(&n, &p, "k", "http://dozor", &r).unwrap();
        assert_eq!(ev["payload"]["summary"], "Down");
        assert_eq!(ev["payload"]["component"], "shop");
        assert_eq!(
            ev["payload"]["custom_details"],
            json!({"firing": "1", "fixed": 3})
        );
        let broken: SlackConfig =
            serde_saphyr::from_str("api_url: http://x\ntitle: '{{ .Nope }}'\n").unwrap();
        assert!(slack(&n, &broken, &r).unwrap_err().starts_with("title: "));
        let ack = pagerduty_event("chat", "{}:{}", "k", "acknowledge");
        assert_eq!(ack["dedup_key"], ev["dedup_key"]);
        assert_eq!(ack["event_action"], "acknowledge");
    }

    #[test]
    fn telegram_and_pagerduty_messages_have_their_shapes() {
        let n = notification();
        let t: TelegramConfig = serde_saphyr::from_str("bot_token: x\nchat_id: -100123\n").unwrap();
        let set = crate::template::Templates::default();
        let r = Renderer::new(&set, &n, "http://dozor");
        let m = telegram(&n, &t, &r).unwrap();
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
        let e = pagerduty(&n, &p, "k", "http://dozor", &r).unwrap();
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["routing_key"], "k");
        assert_eq!(e["payload"]["severity"], "error");
        assert_eq!(e["dedup_key"].as_str().unwrap().len(), 16);
        let mut resolved = n.clone();
        resolved.alerts.remove(0);
        let rr = Renderer::new(&set, &resolved, "http://dozor");
        let res = pagerduty(&resolved, &p, "k", "http://dozor", &rr).unwrap();
        assert_eq!(res["event_action"], "resolve");
        assert_eq!(res["dedup_key"], e["dedup_key"], "the same incident");
    }
}
