//! E-mail receivers (`email_configs`): Alertmanager's keys, with the `global.smtp_*`
//! defaults, and the message — Alertmanager's default subject, a plain-text and an HTML
//! body with one block per alert (its state, labels, annotations, start and, once over,
//! end), and the notification as Alertmanager's webhook payload v4 attached as
//! `alerts.json` (the context snapshot a reader can load into a tool). Sending (SMTP) is
//! the binary's.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::chat::title;
use crate::dispatch::Notification;
use crate::template::Renderer;

/// One `email_configs` entry; unset keys fall back to `global.smtp_*`.
#[derive(Debug, Clone, Deserialize)]
pub struct EmailConfig {
    /// Alertmanager's other keys: `html` and `text` (templates) are read; the loader
    /// warns about the others.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
    /// Recipients, comma-separated.
    pub to: String,
    /// The sender.
    #[serde(default)]
    pub from: Option<String>,
    /// `host:port` of the SMTP server.
    #[serde(default)]
    pub smarthost: Option<String>,
    /// The name sent in `EHLO`.
    #[serde(default)]
    pub hello: Option<String>,
    /// SMTP AUTH user.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// SMTP AUTH password.
    #[serde(default)]
    pub auth_password: Option<String>,
    /// A file holding it.
    #[serde(default)]
    pub auth_password_file: Option<String>,
    /// Whether STARTTLS is required (default true, as in Alertmanager).
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// Extra headers; `Subject`, `To` and `From` here replace the defaults.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether resolved alerts are sent (default false, as in Alertmanager).
    #[serde(default)]
    pub send_resolved: bool,
}

/// The SMTP settings of one e-mail integration, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// `EHLO` name.
    pub hello: String,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// User and where the password comes from (inline or a file).
    pub auth: Option<(String, SecretSource)>,
    /// STARTTLS required.
    pub require_tls: bool,
}

pub use crate::http::SecretSource;

fn global<'a>(g: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    g?.get(key)
}

fn global_str(g: Option<&Value>, key: &str) -> Option<String> {
    global(g, key)?.as_str().map(str::to_owned)
}

impl EmailConfig {
    /// The settings with `global` (`smtp_from`, `smtp_smarthost`, `smtp_hello`,
    /// `smtp_auth_username`, `smtp_auth_password(_file)`, `smtp_require_tls`) filled in;
    /// errors name the missing key.
    pub fn smtp(&self, global_cfg: Option<&Value>) -> Result<Smtp, String> {
        let smarthost = self
            .smarthost
            .clone()
            .or_else(|| global_str(global_cfg, "smtp_smarthost"))
            .ok_or("smarthost: none here and no global.smtp_smarthost")?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?)))
            .ok_or_else(|| format!("smarthost: {smarthost:?} is not host:port"))?;
        let from = self
            .from
            .clone()
            .or_else(|| global_str(global_cfg, "smtp_from"))
            .ok_or("from: none here and no global.smtp_from")?;
        let to: Vec<String> = self
            .to
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if to.is_empty() {
            return Err("to: at least one address".into());
        }
        let user = self
            .auth_username
            .clone()
            .or_else(|| global_str(global_cfg, "smtp_auth_username"));
        let secret = match (&self.auth_password, &self.auth_password_file) {
            (Some(p), _) => Some(SecretSource::Inline(p.clone())),
            (None, Some(f)) => Some(SecretSource::File(f.clone())),
            (None, None) => global_str(global_cfg, "smtp_auth_password")
                .map(SecretSource::Inline)
                .or_else(|| {
                    global_str(global_cfg, "smtp_auth_password_file").map(SecretSource::File)
                }),
        };
        let auth = match (user, secret) {
            (Some(u), Some(s)) => Some((u, s)),
            (None, None) => None,
            (Some(_), None) => return Err("auth_password: a user needs a password".into()),
            (None, Some(_)) => return Err("auth_username: a password needs a user".into()),
        };
        let require_tls = self
            .require_tls
            .or_else(|| global(global_cfg, "smtp_require_tls").and_then(Value::as_bool))
            .unwrap_or(true);
        Ok(Smtp {
            host,
            port,
            hello: self
                .hello
                .clone()
                .or_else(|| global_str(global_cfg, "smtp_hello"))
                .unwrap_or_else(|| "localhost".into()),
            from,
            to,
            auth,
            require_tls,
        })
    }
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// Headers from the configuration other than `Subject`, `To` and `From`.
    pub headers: Vec<(String, String)>,
    /// The attachment `alerts.json`: the webhook payload v4 of the notification.
    pub snapshot: Vec<u8>,
    /// More attachments: name, media type, content (the incident's context, when the
    /// group has one).
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// The e-mail of `n` for `config`: header values, `html` and `text` are templates (the
/// HTML one escaping what it prints); unset, Dozor's own subject and bodies are sent.
pub fn message(
    n: &Notification,
    config: &EmailConfig,
    external_url: &str,
    r: &Renderer<'_>,
) -> Result<Email, String> {
    let subject = match config
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
    {
        Some((_, v)) => r.text(v).map_err(|e| format!("headers.Subject: {e}"))?,
        None => title(n),
    };
    let mut headers = Vec::new();
    for (k, v) in &config.headers {
        if !["subject", "to", "from"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            headers.push((
                k.clone(),
                r.text(v).map_err(|e| format!("headers.{k}: {e}"))?,
            ));
        }
    }
    let (text, html) = bodies(n, external_url);
    let html = match config.other.get("html").and_then(Value::as_str) {
        Some(t) => r.html(t).map_err(|e| format!("html: {e}"))?,
        None => html,
    };
    let text = match r.field(&config.other, "text")? {
        Some(t) => t,
        None => text,
    };
    let snapshot = crate::webhook::payload(n, external_url, 0)
        .to_string()
        .into_bytes();
    Ok(Email {
        subject,
        text,
        html,
        headers,
        snapshot,
        attachments: Vec::new(),
    })
}

/// Dozor's own plain-text and HTML bodies.
fn bodies(n: &Notification, external_url: &str) -> (String, String) {
    let mut text = format!("{}\n", title(n));
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>{}</h2>\n",
        crate::chat::html(&title(n))
    );
    for a in &n.alerts {
        let state = if a.resolved(n.at_ms) {
            "resolved"
        } else {
            "firing"
        };
        let name = a.labels.get("alertname").unwrap_or("alert");
        text.push_str(&format!("\n{name} ({state})\n"));
        let colour = if state == "firing" {
            "#c0392b"
        } else {
            "#27ae60"
        };
        html.push_str(&format!(
            "<h3 style=\"color:{colour}\">{} ({state})</h3>\n<table>\n",
            crate::chat::html(name)
        ));
        let mut rows: Vec<(String, String)> = a
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        rows.extend(a.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        rows.push((
            "startsAt".into(),
            crate::webhook::time(Some(a.starts_at_ms)),
        ));
        if a.resolved(n.at_ms) {
            rows.push(("endsAt".into(), crate::webhook::time(a.ends_at_ms)));
        }
        for (k, v) in rows {
            text.push_str(&format!("  {k}: {v}\n"));
            html.push_str(&format!(
                "<tr><td><b>{}</b></td><td>{}</td></tr>\n",
                crate::chat::html(&k),
                crate::chat::html(&v)
            ));
        }
        html.push_str("</table>\n");
    }
    if !external_url.is_empty() {
        text.push_str(&format!("\n{external_url}\n"));
        html.push_str(&format!(
            "<p><a href=\"{0}\">{0}</a></p>\n",
            crate::chat::html(external_url)
        ));
    }
    html.push_str("</body></html>\n");
    (text, html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Alert;
    use dozor_model::Labels;

    fn config(yaml: &str) -> EmailConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn globals_fill_in_and_mistakes_are_named() {
        let g: Value = serde_json::json!({
            "smtp_smarthost": "mail.example:587", "smtp_from": "am@example.org",
            "smtp_auth_username": "am", "smtp_auth_password": "pw", "smtp_require_tls": false,
        });
        let s = config("to: 'a@x.org, b@x.org'\n").smtp(Some(&g)).unwrap();
        assert_eq!(s.host, "mail.example");
        assert_eq!(s.port, 587);
        assert_eq!(s.to, ["a@x.org", "b@x.org"]);
        assert_eq!(
            s.auth,
            Some(("am".into(), SecretSource::Inline("pw".into())))
        );
        assert!(!s.require_tls);
        let own = config("to: a@x.org\nsmarthost: '[::1]:25'\nfrom: me@x.org\nrequire_tls: true\n")
            .smtp(None)
            .unwrap();
        assert_eq!(
            (own.host.as_str(), own.port, own.require_tls),
            ("::1", 25, true)
        );
        assert_eq!(own.hello, "localhost");
        for (yaml, want) in [
            ("to: a@x.org\nfrom: f@x.org\n", "smarthost"),
            ("to: a@x.org\nsmarthost: h:25\n", "from"),
            ("to: ' , '\nsmarthost: h:25\nfrom: f@x.org\n", "to"),
            ("to: a@x.org\nsmarthost: h\nfrom: f@x.org\n", "host:port"),
            (
                "to: a@x.org\nsmarthost: h:25\nfrom: f@x.org\nauth_username: u\n",
                "auth_password",
            ),
        ] {
            let e = config(yaml).smtp(None).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }

    #[test]
    fn the_message_carries_title_bodies_headers_and_snapshot() {
        let n = Notification {
            receiver: "mail".into(),
            group_key: "{}:{}".into(),
            group_labels: vec![("alertname".into(), "Down".into())],
            alerts: vec![Alert {
                labels: Labels::from_pairs([("alertname", "Down"), ("instance", "<db>")]).unwrap(),
                annotations: BTreeMap::from([("summary".into(), "db & co down".into())]),
                starts_at_ms: 1_000,
                ends_at_ms: None,
                generator_url: String::new(),
            }],
            at_ms: 2_000,
        };
        let set = crate::template::Templates::default();
        let r = Renderer::new(&set, &n, "http://dozor:9470");
        let m = message(
            &n,
            &config("to: a@x.org\nheaders: {Subject: 'Shop alert', X-Team: ops}\n"),
            "http://dozor:9470",
            &r,
        )
        .unwrap();
        assert_eq!(m.subject, "Shop alert");
        assert_eq!(m.headers, [("X-Team".to_owned(), "ops".to_owned())]);
        assert!(m.text.contains("Down (firing)") && m.text.contains("summary: db & co down"));
        assert!(
            m.html.contains("&lt;db&gt;") && m.html.contains("db &amp; co down"),
            "escaped"
        );
        let snapshot: Value = serde_json::from_slice(&m.snapshot).unwrap();
        assert_eq!(snapshot["version"], "4");
        assert_eq!(snapshot["alerts"][0]["labels"]["instance"], "<db>");
        let plain = message(&n, &config("to: a@x.org\n"), "", &r).unwrap();
        assert_eq!(plain.subject, "[FIRING:1] Down <db>");
        let templated = message(
            &n,
            &config(concat!(
                "to: a@x.org\n",
                "headers: {Subject: '{{ template \"email.default.subject\" . }}'}\n",
                "html: '<p>{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}</p>'\n",
                "text: '{{ len .Alerts }} alert(s)'\n",
            )),
            "",
            &r,
        )
        .unwrap();
        assert_eq!(templated.subject, "[FIRING:1] Down (<db>)");
        assert_eq!(templated.html, "<p>db &amp; co down</p>");
        assert_eq!(templated.text, "1 alert(s)");
        let broken = message(&n, &config("to: a@x.org\nhtml: '{{ .Nope }}'\n"), "", &r);
        assert!(broken.unwrap_err().starts_with("html: "));
    }
}
