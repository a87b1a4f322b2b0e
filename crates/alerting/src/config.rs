//! Alertmanager's configuration file, accepted as it is: `route`, `receivers` (the
//! integrations Dozor delivers; the others accepted and reported as not delivered yet),
//! `inhibit_rules`, `time_intervals` (and the older `mute_time_intervals`), the parts of
//! `global` Dozor uses (`resolve_timeout`, `slack_api_url`, `smtp_*`), and `templates`
//! (Go template files, [`crate::template`]) with every integration's templated fields, so
//! a real `alertmanager.yml` loads unchanged.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::route::{Route, RouteConfig};

/// An `alertmanager.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Defaults of the integrations (SMTP, Slack URL…).
    #[serde(default)]
    pub global: Option<Value>,
    /// The routing tree.
    pub route: RouteConfig,
    /// Receivers by name.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<crate::inhibit::InhibitRuleConfig>,
    /// Template files (globs, relative to the configuration file); the caller reads them
    /// and gives their text to [`AlertmanagerConfig::load_with`].
    #[serde(default)]
    pub templates: Vec<String>,
    /// Named time intervals.
    #[serde(default)]
    pub time_intervals: Vec<crate::timeinterval::TimeIntervalConfig>,
    /// The deprecated name of `time_intervals`.
    #[serde(default)]
    pub mute_time_intervals: Vec<crate::timeinterval::TimeIntervalConfig>,
}

/// One receiver. (No `deny_unknown_fields`: serde does not combine it with `flatten`;
/// [`AlertmanagerConfig::load`] refuses keys that are not Alertmanager integrations.)
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiverConfig {
    /// Its name, which routes refer to.
    pub name: String,
    /// Webhooks (Alertmanager's payload v4).
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Slack incoming webhooks.
    #[serde(default)]
    pub slack_configs: Vec<crate::chat::SlackConfig>,
    /// Discord webhooks.
    #[serde(default)]
    pub discord_configs: Vec<crate::chat::DiscordConfig>,
    /// Telegram chats.
    #[serde(default)]
    pub telegram_configs: Vec<crate::chat::TelegramConfig>,
    /// PagerDuty services (Events API v2).
    #[serde(default)]
    pub pagerduty_configs: Vec<crate::chat::PagerdutyConfig>,
    /// E-mail over SMTP.
    #[serde(default)]
    pub email_configs: Vec<crate::email::EmailConfig>,
    /// E-mail through SendGrid's HTTP API (Dozor's; seed 004).
    #[serde(default)]
    pub sendgrid_configs: Vec<crate::messaging::SendgridConfig>,
    /// SMS through a Twilio-compatible API (Dozor's; seed 004).
    #[serde(default)]
    pub twilio_configs: Vec<crate::messaging::TwilioConfig>,
    /// Microsoft Teams incoming webhooks.
    #[serde(default)]
    pub msteams_configs: Vec<crate::messaging::MsteamsConfig>,
    /// Alertmanager's other integrations, by key: accepted, not delivered yet.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ReceiverConfig {
    /// Whether any of its integrations is told about resolved alerts.
    pub fn sends_resolved(&self) -> bool {
        self.webhook_configs.iter().any(|w| w.send_resolved)
            || self.slack_configs.iter().any(|c| c.send_resolved)
            || self.discord_configs.iter().any(|d| d.send_resolved)
            || self.telegram_configs.iter().any(|t| t.send_resolved)
            || self.pagerduty_configs.iter().any(|p| p.send_resolved)
            || self.email_configs.iter().any(|e| e.send_resolved)
            || self.sendgrid_configs.iter().any(|e| e.send_resolved)
            || self.twilio_configs.iter().any(|e| e.send_resolved)
            || self.msteams_configs.iter().any(|e| e.send_resolved)
    }
}

/// One `webhook_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL (it may carry a token).
    #[serde(default)]
    pub url_file: Option<String>,
    /// Whether resolved alerts are sent (default true, as in Alertmanager).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Most alerts in one payload (0: all).
    #[serde(default)]
    pub max_alerts: usize,
    /// HTTP client settings: credentials and headers (`crate::http`).
    #[serde(default)]
    pub http_config: Option<Value>,
    /// How long one call may take (default 10s).
    #[serde(default, with = "crate::route::opt_duration")]
    pub timeout: Option<std::time::Duration>,
}

fn yes() -> bool {
    true
}

/// Alertmanager's integration keys other than webhooks.
const INTEGRATIONS: [&str; 10] = [
    "msteamsv2_configs",
    "opsgenie_configs",
    "pushover_configs",
    "sns_configs",
    "victorops_configs",
    "webex_configs",
    "wechat_configs",
    "jira_configs",
    "rocketchat_configs",
    "incidentio_configs",
];

/// A loaded configuration: the compiled tree and what was accepted but is not acted on.
#[derive(Debug)]
pub struct Loaded {
    /// The routing tree.
    pub route: Route,
    /// The receivers.
    pub receivers: Vec<ReceiverConfig>,
    /// What is accepted but not acted on yet, one line each.
    pub warnings: Vec<String>,
    /// `global.slack_api_url`.
    pub slack_api_url: Option<String>,
    /// The inhibition rules.
    pub inhibitor: crate::inhibit::Inhibitor,
    /// The named time intervals.
    pub intervals: crate::timeinterval::TimeIntervals,
    /// `global.resolve_timeout`: when an alert posted without an end is taken as resolved
    /// after its last update (default 5 minutes).
    pub resolve_timeout: std::time::Duration,
    /// `global`, for the integrations' defaults (`smtp_*`).
    pub global: Option<Value>,
    /// Named templates: Alertmanager's default names and the `templates:` files'.
    pub templates: crate::template::Templates,
}

/// The keys of each integration that are templates (Alertmanager's names).
pub const TEMPLATED: &[(&str, &[&str])] = &[
    (
        "slack_configs",
        &[
            "title",
            "title_link",
            "text",
            "pretext",
            "fallback",
            "icon_emoji",
            "icon_url",
        ],
    ),
    ("discord_configs", &["title", "message"]),
    ("telegram_configs", &["message", "parse_mode"]),
    (
        "pagerduty_configs",
        &[
            "description",
            "client_url",
            "source",
            "class",
            "component",
            "group",
            "details",
        ],
    ),
    ("email_configs", &["html", "text"]),
    ("msteams_configs", &["title", "summary", "text"]),
];

/// Checks the templated keys of one integration's extra keys; gives the keys left over.
fn check_templated<'a>(
    kind: &str,
    other: &'a BTreeMap<String, Value>,
    at: &str,
) -> Result<Vec<&'a str>, String> {
    let templated = TEMPLATED
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, keys)| *keys);
    let mut left = Vec::new();
    for (key, v) in other {
        if key == "http_config" {
            continue;
        }
        if !templated.contains(&key.as_str()) {
            left.push(key.as_str());
            continue;
        }
        let texts: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Object(m) => m.values().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for t in texts {
            crate::template::Templates::check(t).map_err(|e| format!("{at}.{key}: {e}"))?;
        }
    }
    if kind == "telegram_configs"
        && let Some(mode) = other.get("parse_mode")
        && !matches!(mode.as_str(), Some("" | "HTML" | "Markdown" | "MarkdownV2"))
    {
        return Err(format!(
            "{at}.parse_mode: HTML, Markdown, MarkdownV2 or empty"
        ));
    }
    Ok(left)
}

impl AlertmanagerConfig {
    /// Parses `alertmanager.yml`.
    pub fn parse(yaml: &str) -> Result<AlertmanagerConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    /// `global.slack_api_url`, the Slack webhook of receivers that name none.
    pub fn slack_api_url(&self) -> Option<String> {
        self.global
            .as_ref()?
            .get("slack_api_url")?
            .as_str()
            .map(str::to_owned)
    }

    /// Checks names and compiles the tree, with no template files.
    pub fn load(self) -> Result<Loaded, String> {
        self.load_with(&[])
    }

    /// Checks names and compiles the tree; `files` are the `templates:` files the caller
    /// read (name, text).
    pub fn load_with(self, files: &[(String, String)]) -> Result<Loaded, String> {
        let mut warnings = Vec::new();
        let mut templates = crate::template::Templates::default();
        for (name, text) in files {
            templates
                .add(text)
                .map_err(|e| format!("templates: {name}: {e}"))?;
        }
        if files.is_empty() && !self.templates.is_empty() {
            warnings.push(format!(
                "templates: no file matches {}",
                self.templates.join(", ")
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(format!(
                    "receivers[{i}]: the name {:?} appears twice",
                    r.name
                ));
            }
            for key in r.other.keys() {
                if INTEGRATIONS.contains(&key.as_str()) {
                    warnings.push(format!(
                        "receiver {:?}: {key} are not delivered yet",
                        r.name
                    ));
                } else {
                    return Err(format!("receivers[{i}]: unknown key {key:?}"));
                }
            }
            let extras = r
                .slack_configs
                .iter()
                .map(|c| ("slack_configs", &c.other))
                .chain(
                    r.discord_configs
                        .iter()
                        .map(|c| ("discord_configs", &c.other)),
                )
                .chain(
                    r.telegram_configs
                        .iter()
                        .map(|c| ("telegram_configs", &c.other)),
                )
                .chain(
                    r.pagerduty_configs
                        .iter()
                        .map(|c| ("pagerduty_configs", &c.other)),
                )
                .chain(r.email_configs.iter().map(|c| ("email_configs", &c.other)))
                .chain(
                    r.msteams_configs
                        .iter()
                        .map(|c| ("msteams_configs", &c.other)),
                );
            let mut http_configs: Vec<(String, Option<&Value>)> = r
                .webhook_configs
                .iter()
                .enumerate()
                .map(|(j, w)| (format!("webhook_configs[{j}]"), w.http_config.as_ref()))
                .collect();
            for (kind, other) in extras.clone() {
                http_configs.push((kind.to_owned(), other.get("http_config")));
            }
            for (kind, v) in http_configs {
                let at = format!("receivers[{i}].{kind}.http_config");
                let s = crate::http::settings(v, &at)?;
                if !s.unsupported.is_empty() {
                    warnings.push(format!(
                        "receiver {:?}: {kind}.http_config: {} not applied",
                        r.name,
                        s.unsupported.join(", ")
                    ));
                }
            }
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for (kind, other) in extras {
                let j = seen.entry(kind).or_default();
                let at = format!("receivers[{i}].{kind}[{j}]");
                *j += 1;
                let left = check_templated(kind, other, &at)?;
                if !left.is_empty() {
                    warnings.push(format!(
                        "receiver {:?}: {kind}: {} not applied yet",
                        r.name,
                        left.join(", ")
                    ));
                }
            }
            for (j, e) in r.email_configs.iter().enumerate() {
                for (k, v) in &e.headers {
                    crate::template::Templates::check(v).map_err(|m| {
                        format!("receivers[{i}].email_configs[{j}].headers.{k}: {m}")
                    })?;
                }
            }
            for (j, c) in r.sendgrid_configs.iter().enumerate() {
                c.check()
                    .map_err(|m| format!("receivers[{i}].sendgrid_configs[{j}]: {m}"))?;
            }
            for (j, c) in r.twilio_configs.iter().enumerate() {
                c.check()
                    .map_err(|m| format!("receivers[{i}].twilio_configs[{j}]: {m}"))?;
            }
            for (j, c) in r.msteams_configs.iter().enumerate() {
                if c.webhook_url.is_none() == c.webhook_url_file.is_none() {
                    return Err(format!(
                        "receivers[{i}].msteams_configs[{j}]: one of webhook_url and webhook_url_file"
                    ));
                }
            }
            for (j, e) in r.email_configs.iter().enumerate() {
                e.smtp(self.global.as_ref())
                    .map_err(|m| format!("receivers[{i}].email_configs[{j}].{m}"))?;
            }
            for (j, w) in r.webhook_configs.iter().enumerate() {
                if w.url.is_none() == w.url_file.is_none() {
                    return Err(format!(
                        "receivers[{i}].webhook_configs[{j}]: one of url and url_file"
                    ));
                }
            }
            for (j, d) in r.discord_configs.iter().enumerate() {
                if d.webhook_url.is_none() == d.webhook_url_file.is_none() {
                    return Err(format!(
                        "receivers[{i}].discord_configs[{j}]: one of webhook_url and webhook_url_file"
                    ));
                }
            }
            for (j, t) in r.telegram_configs.iter().enumerate() {
                if t.bot_token.is_none() == t.bot_token_file.is_none() {
                    return Err(format!(
                        "receivers[{i}].telegram_configs[{j}]: one of bot_token and bot_token_file"
                    ));
                }
            }
            for (j, p) in r.pagerduty_configs.iter().enumerate() {
                let v1 = p.service_key.is_some() || p.service_key_file.is_some();
                if p.routing_key.is_some() && p.routing_key_file.is_some()
                    || p.routing_key.is_none() && p.routing_key_file.is_none() && !v1
                {
                    return Err(format!(
                        "receivers[{i}].pagerduty_configs[{j}]: one of routing_key and routing_key_file (Events API v2)"
                    ));
                }
                if v1 && p.routing_key.is_none() && p.routing_key_file.is_none() {
                    warnings.push(format!(
                        "receiver {:?}: pagerduty_configs[{j}] has only a service_key (Events API v1), which is not delivered; give a routing_key",
                        r.name
                    ));
                }
                if !matches!(
                    p.severity.as_str(),
                    "critical" | "error" | "warning" | "info"
                ) {
                    return Err(format!(
                        "receivers[{i}].pagerduty_configs[{j}].severity: critical, error, warning or info"
                    ));
                }
            }
            for (j, c) in r.slack_configs.iter().enumerate() {
                if c.api_url.is_some() && c.api_url_file.is_some() {
                    return Err(format!(
                        "receivers[{i}].slack_configs[{j}]: api_url or api_url_file, not both"
                    ));
                }
                if c.api_url.is_none() && c.api_url_file.is_none() && self.slack_api_url().is_none()
                {
                    return Err(format!(
                        "receivers[{i}].slack_configs[{j}]: no api_url, and no global.slack_api_url"
                    ));
                }
            }
        }
        let names: Vec<&str> = names.into_iter().collect();
        let route = Route::compile(&self.route, &names)?;
        let inhibitor = crate::inhibit::Inhibitor::compile(&self.inhibit_rules)?;
        let all_intervals: Vec<_> = self
            .time_intervals
            .iter()
            .chain(&self.mute_time_intervals)
            .cloned()
            .collect();
        let intervals = crate::timeinterval::TimeIntervals::compile(&all_intervals)?;
        for r in route.walk() {
            for name in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
                if !intervals.has(name) {
                    return Err(format!("route {}: no time interval named {name:?}", r.id));
                }
            }
        }
        let resolve_timeout = match self.global.as_ref().and_then(|g| g.get("resolve_timeout")) {
            None => std::time::Duration::from_secs(300),
            Some(v) => v
                .as_str()
                .and_then(|t| dozor_model::duration::parse(t).ok())
                .filter(|d| !d.is_zero())
                .ok_or("global.resolve_timeout: a duration above 0, e.g. 5m")?,
        };
        let slack_api_url = self.slack_api_url();
        let global = self.global;
        Ok(Loaded {
            route,
            receivers: self.receivers,
            warnings,
            slack_api_url,
            inhibitor,
            intervals,
            resolve_timeout,
            global,
            templates,
        })
    }
}

/// The tenant an `alerting.<what>` entry named `name` is for (`None`: the default tenant).
pub fn entry_tenant(
    what: &str,
    name: &str,
    tenant: Option<&String>,
) -> Result<dozor_model::TenantId, String> {
    match tenant {
        Some(t) => t
            .parse()
            .map_err(|e| format!("alerting.{what} {name:?}: tenant: {e}")),
        None => Ok(dozor_model::TenantId::default_tenant()),
    }
}

/// Refuses a second entry of `alerting.<what>` named `name`.
pub fn unique_name<'a>(
    seen: &mut std::collections::BTreeSet<&'a str>,
    what: &str,
    name: &'a str,
) -> Result<(), String> {
    if seen.insert(name) {
        Ok(())
    } else {
        Err(format!("alerting.{what}: the name {name:?} appears twice"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alertmanager's own example configuration (doc/examples/simple.yml), trimmed of its
    /// comments, loads as it is.
    const SIMPLE: &str = r#"
global:
  smtp_smarthost: 'localhost:25'
  smtp_from: 'alertmanager@example.org'
templates:
- '/etc/alertmanager/template/*.tmpl'
route:
  group_by: ['alertname', 'cluster', 'service']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 3h
  receiver: team-X-mails
  routes:
  - matchers:
    - service=~"foo1|foo2|baz"
    receiver: team-X-mails
    routes:
    - matchers:
      - severity="critical"
      receiver: team-X-pager
  - matchers:
    - service="files"
    receiver: team-Y-mails
    routes:
    - matchers:
      - severity="critical"
      receiver: team-Y-pager
  - matchers:
    - service="database"
    receiver: team-DB-pager
    group_by: [alertname, cluster, database]
    routes:
    - matchers:
      - owner="team-X"
      receiver: team-X-pager
      continue: true
    - matchers:
      - owner="team-Y"
      receiver: team-Y-pager
inhibit_rules:
- source_matchers: [severity="critical"]
  target_matchers: [severity="warning"]
  equal: [alertname, cluster, service]
receivers:
- name: 'team-X-mails'
  email_configs:
  - to: 'team-X+alerts@example.org'
- name: 'team-X-pager'
  email_configs:
  - to: 'team-X+alerts-critical@example.org'
  pagerduty_configs:
  - service_key: <team-X-key>
- name: 'team-Y-mails'
  email_configs:
  - to: 'team-Y+alerts@example.org'
- name: 'team-Y-pager'
  pagerduty_configs:
  - service_key: <team-Y-key>
- name: 'team-DB-pager'
  pagerduty_configs:
  - service_key: <team-DB-key>
  webhook_configs:
  - url: 'http://127.0.0.1:5001/'
    send_resolved: false
"#;

    #[test]
    fn template_files_and_templated_fields_load_and_mistakes_are_named() {
        let yaml = r#"
templates: ['x/*.tmpl']
route: {receiver: chat}
receivers:
- name: chat
  slack_configs:
  - api_url: http://127.0.0.1:1/
    title: '{{ template "mine" . }}'
    color: danger
  telegram_configs:
  - bot_token: t
    chat_id: 1
    message: '{{ .Status }}'
    parse_mode: MarkdownV2
"#;
        let files = [(
            "x/a.tmpl".to_owned(),
            r#"{{ define "mine" }}{{ .Status }}{{ end }}"#.to_owned(),
        )];
        let loaded = AlertmanagerConfig::parse(yaml)
            .unwrap()
            .load_with(&files)
            .unwrap();
        assert_eq!(
            loaded.warnings,
            ["receiver \"chat\": slack_configs: color not applied yet"],
            "templated keys are applied; others are named"
        );
        let n = crate::dispatch::Notification {
            receiver: "chat".into(),
            group_key: "g".into(),
            group_labels: vec![],
            alerts: vec![],
            at_ms: 0,
        };
        let r = crate::template::Renderer::new(&loaded.templates, &n, "");
        assert_eq!(r.text(r#"{{ template "mine" . }}"#).unwrap(), "resolved");
        let no_files = AlertmanagerConfig::parse(yaml).unwrap().load().unwrap();
        assert!(
            no_files
                .warnings
                .iter()
                .any(|w| w.contains("no file matches x/*.tmpl"))
        );

        let bad_file = [("x/b.tmpl".to_owned(), "{{ define \"x\" }}".to_owned())];
        let e = AlertmanagerConfig::parse(yaml)
            .unwrap()
            .load_with(&bad_file)
            .unwrap_err();
        assert!(e.starts_with("templates: x/b.tmpl: "), "{e}");
        for (bad, want) in [
            (
                "title: '{{ .Status'",
                "receivers[0].slack_configs[0].title: template: unclosed action",
            ),
            (
                "parse_mode: Html",
                "receivers[0].telegram_configs[0].parse_mode",
            ),
        ] {
            let yaml = yaml
                .replace(
                    "title: '{{ template \"mine\" . }}'",
                    if bad.starts_with("title") {
                        bad
                    } else {
                        "title: x"
                    },
                )
                .replace(
                    "parse_mode: MarkdownV2",
                    if bad.starts_with("parse") {
                        bad
                    } else {
                        "parse_mode: HTML"
                    },
                );
            let e = AlertmanagerConfig::parse(&yaml)
                .unwrap()
                .load_with(&files)
                .unwrap_err();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
        let header = "route: {receiver: m}\nreceivers: [{name: m, email_configs: [{to: a@x, smarthost: 'h:25', from: f@x, headers: {Subject: '{{ end }}'}}]}]\n";
        let e = AlertmanagerConfig::parse(header)
            .unwrap()
            .load()
            .unwrap_err();
        assert!(
            e.starts_with("receivers[0].email_configs[0].headers.Subject"),
            "{e}"
        );
    }

    #[test]
    fn alertmanagers_example_loads_and_routes() {
        let loaded = AlertmanagerConfig::parse(SIMPLE).unwrap().load().unwrap();
        assert!(!loaded.inhibitor.is_empty(), "inhibit_rules are applied");
        assert!(loaded.warnings.iter().any(|w| w.contains("templates")));
        assert_eq!(
            loaded.receivers[0].email_configs[0]
                .smtp(loaded.global.as_ref())
                .unwrap()
                .host,
            "localhost",
            "global.smtp_smarthost"
        );
        assert_eq!(loaded.resolve_timeout, std::time::Duration::from_secs(300));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("service_key (Events API v1)")),
            "{:?}",
            loaded.warnings
        );
        let db = loaded
            .receivers
            .iter()
            .find(|r| r.name == "team-DB-pager")
            .unwrap();
        assert!(!db.webhook_configs[0].send_resolved);
        let labels = dozor_model::Labels::from_pairs([
            ("service", "database"),
            ("owner", "team-X"),
            ("alertname", "Slow"),
        ])
        .unwrap();
        let to: Vec<&str> = loaded
            .route
            .routes_for(&labels)
            .iter()
            .map(|r| r.receiver.as_str())
            .collect();
        assert_eq!(
            to,
            ["team-X-pager"],
            "continue: true, but no later sibling matches"
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (yaml, want) in [
            (
                "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n",
                "twice",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, fax_configs: []}]\n",
                "fax_configs",
            ),
            (
                "route: {receiver: a, routes: [{mute_time_intervals: [night]}]}\nreceivers: [{name: a}]\n",
                "no time interval named \"night\"",
            ),
            (
                "route: {receiver: a, active_time_intervals: [x]}\ntime_intervals: [{name: x}]\nreceivers: [{name: a}]\n",
                "root route cannot have time intervals",
            ),
            (
                "global: {resolve_timeout: soon}\nroute: {receiver: a}\nreceivers: [{name: a}]\n",
                "resolve_timeout",
            ),
            (
                "route: {receiver: a}\ninhibit_rules: [{target_matchers: ['a=~\"(\"']}]\nreceivers: [{name: a}]\n",
                "inhibit_rules[0]: target_matchers",
            ),
            (
                "route: {receiver: b}\nreceivers: [{name: a}]\n",
                "no receiver named",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{}]}]\n",
                "url",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{severity: info}]}]\n",
                "routing_key",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{routing_key: k, severity: loud}]}]\n",
                "severity",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, telegram_configs: [{chat_id: 1}]}]\n",
                "bot_token",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: x}]}]\n",
                "slack_api_url",
            ),
        ] {
            let e = AlertmanagerConfig::parse(yaml)
                .and_then(AlertmanagerConfig::load)
                .unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        assert!(AlertmanagerConfig::parse("route: {receiver: a}\nbogus: 1\n").is_err());
    }
}
