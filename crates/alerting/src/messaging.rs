//! Receivers beyond Alertmanager's webhook family: e-mail through SendGrid's HTTP API and
//! SMS through a Twilio-compatible API (seed 004; Dozor's keys `sendgrid_configs` and
//! `twilio_configs`), and Microsoft Teams incoming webhooks (Alertmanager's
//! `msteams_configs`, a MessageCard). Every base URL is configurable, so tests and
//! compatible providers can stand in.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::{lines, title};
use crate::dispatch::Notification;
use crate::template::{Renderer, Templates};

fn yes() -> bool {
    true
}

/// One `sendgrid_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendgridConfig {
    /// The API's base URL.
    #[serde(default = "sendgrid_api")]
    pub api_url: String,
    /// The API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// The sender's address.
    pub from: String,
    /// Recipients, comma-separated.
    pub to: String,
    /// The subject (a template; Alertmanager's default subject when unset).
    #[serde(default)]
    pub subject: Option<String>,
    /// The HTML body (a template, printed values escaped).
    #[serde(default)]
    pub html: Option<String>,
    /// The plain-text body (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// Whether resolved alerts are sent (default false, as for e-mail).
    #[serde(default)]
    pub send_resolved: bool,
}

fn sendgrid_api() -> String {
    "https://api.sendgrid.com".into()
}

/// One `twilio_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The API's base URL.
    #[serde(default = "twilio_api")]
    pub api_url: String,
    /// The account SID (the user of basic auth, and part of the path).
    pub account_sid: String,
    /// The auth token.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub auth_token_file: Option<String>,
    /// The sending number.
    pub from: String,
    /// Recipients' numbers, comma-separated; one message each.
    pub to: String,
    /// The text (a template; the title and one line per alert when unset).
    #[serde(default)]
    pub message: Option<String>,
    /// Whether resolved alerts are sent (default false: an SMS for each resolution is
    /// rarely wanted).
    #[serde(default)]
    pub send_resolved: bool,
}

fn twilio_api() -> String {
    "https://api.twilio.com".into()
}

/// One `msteams_configs` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct MsteamsConfig {
    /// Alertmanager's other keys: `title`, `summary` and `text` (templates) are read and
    /// `http_config`; the loader warns about the others.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// The incoming webhook.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// Whether resolved alerts are sent (default true, as in Alertmanager).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl SendgridConfig {
    /// Checks it; errors name the key.
    pub fn check(&self) -> Result<(), String> {
        if self.api_key.is_some() == self.api_key_file.is_some() {
            return Err("one of api_key and api_key_file".into());
        }
        if addresses(&self.to).is_empty() {
            return Err("to: at least one address".into());
        }
        for (key, t) in [
            ("subject", &self.subject),
            ("html", &self.html),
            ("text", &self.text),
        ] {
            if let Some(t) = t {
                Templates::check(t).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        Ok(())
    }
}

impl TwilioConfig {
    /// Checks it; errors name the key.
    pub fn check(&self) -> Result<(), String> {
        if self.auth_token.is_some() == self.auth_token_file.is_some() {
            return Err("one of auth_token and auth_token_file".into());
        }
        if addresses(&self.to).is_empty() {
            return Err("to: at least one number".into());
        }
        if self.account_sid.is_empty()
            || !self.account_sid.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err("account_sid: letters and digits".into());
        }
        if let Some(m) = &self.message {
            Templates::check(m).map_err(|e| format!("message: {e}"))?;
        }
        Ok(())
    }

    /// `POST` URL of the Messages resource.
    pub fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_url.trim_end_matches('/'),
            self.account_sid
        )
    }
}

/// SendGrid's v3 `mail/send` body: the e-mail receiver's subject, bodies and snapshot.
pub fn sendgrid(
    n: &Notification,
    c: &SendgridConfig,
    external_url: &str,
    r: &Renderer<'_>,
) -> Result<Value, String> {
    use base64::Engine as _;
    let mut other = BTreeMap::new();
    for (key, v) in [("html", &c.html), ("text", &c.text)] {
        if let Some(v) = v {
            other.insert(key.to_owned(), Value::String(v.clone()));
        }
    }
    let email_config = crate::email::EmailConfig {
        other,
        to: c.to.clone(),
        from: Some(c.from.clone()),
        smarthost: None,
        hello: None,
        auth_username: None,
        auth_password: None,
        auth_password_file: None,
        require_tls: None,
        headers: c
            .subject
            .iter()
            .map(|s| ("Subject".to_owned(), s.clone()))
            .collect(),
        send_resolved: c.send_resolved,
    };
    let m = crate::email::message(n, &email_config, external_url, r)?;
    Ok(json!({
        "personalizations": [{
            "to": addresses(&c.to).into_iter().map(|a| json!({"email": a})).collect::<Vec<_>>(),
        }],
        "from": {"email": c.from},
        "subject": m.subject,
        "content": [
            {"type": "text/plain", "value": m.text},
            {"type": "text/html", "value": m.html},
        ],
        "attachments": [{
            "content": base64::engine::general_purpose::STANDARD.encode(&m.snapshot),
            "type": "application/json",
            "filename": "alerts.json",
            "disposition": "attachment",
        }],
    }))
}

/// Most characters of one SMS body (Twilio's limit for a concatenated message).
pub const SMS_MAX: usize = 1600;

/// The SMS text: `message` rendered, else the title and one line per alert; cut to
/// [`SMS_MAX`] characters.
pub fn sms_text(n: &Notification, c: &TwilioConfig, r: &Renderer<'_>) -> Result<String, String> {
    let mut text = match &c.message {
        Some(m) => r.text(m).map_err(|e| format!("message: {e}"))?,
        None => {
            let mut text = title(n);
            for l in lines(n) {
                text.push('\n');
                text.push_str(&l);
            }
            text
        }
    };
    if text.chars().count() > SMS_MAX {
        text = text.chars().take(SMS_MAX - 1).collect::<String>() + "…";
    }
    Ok(text)
}

/// The form bodies of Twilio's `Messages` resource, one per recipient.
pub fn twilio_forms(
    n: &Notification,
    c: &TwilioConfig,
    r: &Renderer<'_>,
) -> Result<Vec<Vec<u8>>, String> {
    let body = sms_text(n, c, r)?;
    Ok(addresses(&c.to)
        .into_iter()
        .map(|to| {
            serde_urlencoded::to_string([
                ("To", to.as_str()),
                ("From", c.from.as_str()),
                ("Body", &body),
            ])
            .unwrap_or_default()
            .into_bytes()
        })
        .collect())
}

/// A Teams MessageCard, as Alertmanager's `msteams_configs` sends it: the title, the lines,
/// red while firing and green once resolved; `title`, `summary` and `text` are templates.
pub fn msteams(n: &Notification, c: &MsteamsConfig, r: &Renderer<'_>) -> Result<Value, String> {
    let colour = if n.status() == "firing" {
        "8C1A1A"
    } else {
        "2DC72D"
    };
    let title = r.field(&c.other, "title")?.unwrap_or_else(|| title(n));
    let summary = r
        .field(&c.other, "summary")?
        .unwrap_or_else(|| title.clone());
    let text = r
        .field(&c.other, "text")?
        .unwrap_or_else(|| lines(n).join("\n\n"));
    Ok(json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": colour,
        "summary": summary,
        "title": title,
        "text": text,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Alert;
    use dozor_model::Labels;

    fn notification() -> Notification {
        Notification {
            receiver: "r".into(),
            group_key: "g".into(),
            group_labels: vec![("alertname".into(), "Down".into())],
            alerts: vec![Alert {
                labels: Labels::from_pairs([("alertname", "Down"), ("instance", "db")]).unwrap(),
                annotations: BTreeMap::from([("summary".into(), "db is down".into())]),
                starts_at_ms: 0,
                ends_at_ms: None,
                generator_url: String::new(),
            }],
            at_ms: 1,
        }
    }

    #[test]
    fn sendgrid_twilio_and_teams_bodies() {
        let n = notification();
        let sg: SendgridConfig =
            serde_saphyr::from_str("api_key: k\nfrom: a@x.org\nto: 'b@x.org, c@x.org'\n").unwrap();
        sg.check().unwrap();
        let set = crate::template::Templates::default();
        let r = Renderer::new(&set, &n, "");
        let v = sendgrid(&n, &sg, "", &r).unwrap();
        assert_eq!(v["personalizations"][0]["to"][1]["email"], "c@x.org");
        assert_eq!(v["subject"], "[FIRING:1] Down db");
        assert_eq!(v["attachments"][0]["filename"], "alerts.json");
        let tw: TwilioConfig = serde_saphyr::from_str(
            "account_sid: AC123\nauth_token: t\nfrom: '+15550001'\nto: '+79990000001, +79990000002'\n",
        )
        .unwrap();
        tw.check().unwrap();
        assert_eq!(
            tw.url(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let forms = twilio_forms(&n, &tw, &r).unwrap();
        assert_eq!(forms.len(), 2, "one per recipient");
        let f: Vec<(String, String)> = serde_urlencoded::from_bytes(&forms[0]).unwrap();
        assert_eq!(f[0], ("To".into(), "+79990000001".into()));
        assert!(f[2].1.starts_with("[FIRING:1] Down db\n"));
        let teams: MsteamsConfig = serde_saphyr::from_str(
            "webhook_url: http://x\ntitle: '{{ .CommonLabels.alertname }} on {{ .CommonLabels.instance }}'\n",
        )
        .unwrap();
        let card = msteams(&n, &teams, &r).unwrap();
        assert_eq!(card["title"], "Down on db");
        assert_eq!(card["summary"], "Down on db");
        assert_eq!(card["@type"], "MessageCard");
        assert_eq!(card["themeColor"], "8C1A1A");
    }

    #[test]
    fn sms_are_cut_and_configs_checked() {
        let mut n = notification();
        n.alerts[0]
            .annotations
            .insert("summary".into(), "x".repeat(5000));
        let set = crate::template::Templates::default();
        let r = Renderer::new(&set, &n, "");
        let tw: TwilioConfig =
            serde_saphyr::from_str("account_sid: AC1\nauth_token: t\nfrom: '1'\nto: '2'\n")
                .unwrap();
        assert_eq!(sms_text(&n, &tw, &r).unwrap().chars().count(), SMS_MAX);
        let short: TwilioConfig = serde_saphyr::from_str(
            "account_sid: AC1\nauth_token: t\nfrom: '1'\nto: '2'\nmessage: '{{ .Status }}: {{ .CommonLabels.instance }}'\n",
        )
        .unwrap();
        assert_eq!(sms_text(&n, &short, &r).unwrap(), "firing: db");
        let bad: TwilioConfig =
            serde_saphyr::from_str("account_sid: 'AC/../x'\nauth_token: t\nfrom: '1'\nto: '2'\n")
                .unwrap();
        assert!(bad.check().unwrap_err().starts_with("account_sid"));
        let no_key: SendgridConfig = serde_saphyr::from_str("from: a\nto: b\n").unwrap();
        assert!(no_key.check().unwrap_err().contains("api_key"));
    }
}
