//! Automatic actions (seed 002: block suspicious IPs at the WAF, scale out, collect data): an
//! HTTP call or an allow-listed local command, with arguments taken from the alert's
//! labels, run when a notification carries a firing alert the action's selector matches.
//! Pure: configuration, matching, templates and the rate limit; the binary runs them and
//! records every run in the audit chain.
//!
//! Safety: an action is disabled until `enabled: true`; a command is an absolute path named
//! in the configuration (the allow-list is the configuration itself, which only an operator
//! writes), run without a shell, each template filling one argument; values from labels
//! must be plain (letters, digits and `._:/@%+=,-`, not starting with `-`) or the run is
//! refused; HTTP bodies get values JSON-escaped. Each action runs at most once per alert
//! episode (fingerprint and start) and at most `max_per_hour` times an hour.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use dozor_model::Matcher;
use serde::Deserialize;

use crate::dispatch::{Alert, Notification};
use crate::matchers::parse_matchers;

/// One `alerting.actions` entry as written.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// Its name (audit entries and timelines use it).
    pub name: String,
    /// Alerts it runs for (Alertmanager's matcher syntax); required.
    #[serde(rename = "match")]
    pub selector: String,
    /// Only for notifications to this receiver (the route's), if set.
    #[serde(default)]
    pub receiver: Option<String>,
    /// The tenant whose alerts it runs for (default: the default tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Off unless switched on.
    #[serde(default)]
    pub enabled: bool,
    /// Runs allowed per hour, all alerts together.
    #[serde(default = "default_rate")]
    pub max_per_hour: u32,
    /// How long one run may take.
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// An HTTP call.
    #[serde(default)]
    pub http: Option<HttpAction>,
    /// A local command.
    #[serde(default)]
    pub command: Option<CommandAction>,
}

fn default_rate() -> u32 {
    60
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let ms = dozor_model::duration::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(ms)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }
}

/// An HTTP call.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    /// Where (templates allowed).
    pub url: String,
    /// `POST` (default), `PUT`, `PATCH`, `DELETE` or `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra headers (templates allowed in values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body (templates allowed; values JSON-escaped).
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".into()
}

/// A local command, run without a shell.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAction {
    /// An absolute path.
    pub path: String,
    /// Arguments (templates allowed; each fills one argument).
    #[serde(default)]
    pub args: Vec<String>,
}

/// A checked action.
#[derive(Debug, Clone)]
pub struct Action {
    /// As written.
    pub config: ActionConfig,
    matchers: Vec<Matcher>,
}

/// What one run does, templates filled in.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    /// An HTTP call.
    Http {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
    /// A command.
    Command {
        /// Program.
        path: String,
        /// Arguments.
        args: Vec<String>,
    },
}

/// A template's placeholders: `{{labels.NAME}}`, `{{annotations.NAME}}`, `{{fingerprint}}`,
/// `{{startsAt}}` (ms), filled from `alert`; `escape` is applied to each value.
pub fn render(
    template: &str,
    alert: &Alert,
    escape: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("{template:?}: a '{{{{' without '}}}}'"))?;
        let key = after[..close].trim();
        let value = if let Some(name) = key.strip_prefix("labels.") {
            alert.labels.get(name).unwrap_or("").to_owned()
        } else if let Some(name) = key.strip_prefix("annotations.") {
            alert.annotations.get(name).cloned().unwrap_or_default()
        } else if key == "fingerprint" {
            alert.fingerprint()
        } else if key == "startsAt" {
            alert.starts_at_ms.to_string()
        } else {
            return Err(format!("{template:?}: unknown placeholder {key:?}"));
        };
        out.push_str(&escape(&value)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value that may stand alone as a command argument or in a URL.
fn plain(v: &str) -> Result<String, String> {
    let ok = !v.starts_with('-')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@%+=,-".contains(c));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "the value {v:?} is not plain (letters, digits, ._:/@%+=,- and not starting with -)"
        ))
    }
}

fn json_escaped(v: &str) -> Result<String, String> {
    let quoted = serde_json::Value::String(v.to_owned()).to_string();
    Ok(quoted[1..quoted.len() - 1].to_owned())
}

impl Action {
    /// Checks an action; errors name the field.
    pub fn compile(c: &ActionConfig) -> Result<Action, String> {
        let at = |f: &str| format!("alerting.actions {:?}: {f}", c.name);
        if c.name.trim().is_empty() {
            return Err("alerting.actions: a name is needed".into());
        }
        let matchers = parse_matchers(&c.selector).map_err(|e| format!("{}: {e}", at("match")))?;
        match (&c.http, &c.command) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(at("one of http and command"));
            }
            (Some(h), None) => {
                if !["POST", "PUT", "PATCH", "DELETE", "GET"].contains(&h.method.as_str()) {
                    return Err(at("http.method: POST, PUT, PATCH, DELETE or GET"));
                }
                if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                    return Err(at("http.url: an http:// or https:// URL"));
                }
            }
            (None, Some(cmd)) => {
                if !std::path::Path::new(&cmd.path).is_absolute() || cmd.path.contains("{{") {
                    return Err(at("command.path: an absolute path, without placeholders"));
                }
            }
        }
        if c.max_per_hour == 0 {
            return Err(at("max_per_hour: above 0"));
        }
        Ok(Action {
            config: c.clone(),
            matchers,
        })
    }

    /// The firing alerts of `n` this action runs for (its receiver filter applied).
    pub fn alerts<'a>(&self, n: &'a Notification) -> Vec<&'a Alert> {
        if self
            .config
            .receiver
            .as_ref()
            .is_some_and(|r| *r != n.receiver)
        {
            return Vec::new();
        }
        n.alerts
            .iter()
            .filter(|a| !a.resolved(n.at_ms))
            .filter(|a| {
                self.matchers
                    .iter()
                    .all(|m| m.matches(a.labels.get(&m.name).unwrap_or("")))
            })
            .collect()
    }

    /// The run for `alert`, templates filled; an error when a value is unsafe.
    pub fn run_for(&self, alert: &Alert) -> Result<Run, String> {
        if let Some(h) = &self.config.http {
            let mut headers = Vec::new();
            for (k, v) in &h.headers {
                headers.push((k.clone(), render(v, alert, &plain)?));
            }
            return Ok(Run::Http {
                method: h.method.clone(),
                url: render(&h.url, alert, &plain)?,
                headers,
                body: render(&h.body, alert, &json_escaped)?,
            });
        }
        let cmd = self
            .config
            .command
            .as_ref()
            .ok_or("an action without http or command")?;
        Ok(Run::Command {
            path: cmd.path.clone(),
            args: cmd
                .args
                .iter()
                .map(|a| render(a, alert, &plain))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Once per alert episode, and at most `max_per_hour` an hour: the bookkeeping of one
/// action.
#[derive(Debug, Default)]
pub struct Limiter {
    done: BTreeSet<(String, i64)>,
    order: VecDeque<(String, i64)>,
    recent: VecDeque<i64>,
}

/// Episodes remembered per action.
const REMEMBERED: usize = 100_000;

/// What the limiter says about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Run it.
    Run,
    /// It already ran for this episode.
    Done,
    /// The hourly budget is spent.
    RateLimited,
}

impl Limiter {
    /// Whether the action may run for `alert` at `now_ms` (and counts it when so).
    pub fn admit(&mut self, alert: &Alert, max_per_hour: u32, now_ms: i64) -> Verdict {
        let key = (alert.fingerprint(), alert.starts_at_ms);
        if self.done.contains(&key) {
            return Verdict::Done;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| *t <= now_ms - 3_600_000)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= max_per_hour as usize {
            return Verdict::RateLimited;
        }
        self.recent.push_back(now_ms);
        self.done.insert(key.clone());
        self.order.push_back(key);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.done.remove(&old);
        }
        Verdict::Run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::Labels;

    fn action(yaml: &str) -> Result<Action, String> {
        let c: ActionConfig = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        Action::compile(&c)
    }

    fn alert(pairs: &[(&str, &str)]) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            annotations: BTreeMap::from([("summary".into(), "say \"hi\"".into())]),
            starts_at_ms: 1_000,
            ends_at_ms: None,
            generator_url: String::new(),
        }
    }

    #[test]
    fn templates_fill_from_labels_and_refuse_unsafe_values() {
        let a = action(
            "name: block\nmatch: 'alertname=\"DDoS\"'\nhttp:\n  url: 'http://waf/block/{{labels.ip}}'\n  headers: {X-Alert: '{{fingerprint}}'}\n  body: '{\"ip\": \"{{labels.ip}}\", \"why\": \"{{annotations.summary}}\"}'\n",
        )
        .unwrap();
        let ok = alert(&[("alertname", "DDoS"), ("ip", "10.0.0.7")]);
        let Run::Http {
            url,
            body,
            headers,
            method,
        } = a.run_for(&ok).unwrap()
        else {
            panic!("an HTTP run")
        };
        assert_eq!(method, "POST");
        assert_eq!(url, "http://waf/block/10.0.0.7");
        assert_eq!(body, r#"{"ip": "10.0.0.7", "why": "say \"hi\""}"#);
        assert_eq!(headers[0].1, ok.fingerprint());
        let evil = alert(&[("alertname", "DDoS"), ("ip", "1.2.3.4; rm -rf /")]);
        assert!(a.run_for(&evil).unwrap_err().contains("not plain"));
        let cmd = action(
            "name: scale\nmatch: 'service=\"mes\"'\ncommand: {path: /usr/bin/scale, args: ['--service', '{{labels.service}}']}\n",
        )
        .unwrap();
        let run = cmd.run_for(&alert(&[("service", "mes")])).unwrap();
        assert_eq!(
            run,
            Run::Command {
                path: "/usr/bin/scale".into(),
                args: vec!["--service".into(), "mes".into()]
            }
        );
        assert!(
            cmd.run_for(&alert(&[("service", "-x")]))
                .unwrap_err()
                .contains("not plain")
        );
    }

    #[test]
    fn bad_actions_are_named() {
        for (yaml, want) in [
            ("name: a\nmatch: 'x=\"1\"'\n", "one of http and command"),
            ("name: a\nmatch: 'x'\ncommand: {path: /bin/true}\n", "match"),
            (
                "name: a\nmatch: 'x=\"1\"'\ncommand: {path: bin/true}\n",
                "absolute",
            ),
            (
                "name: a\nmatch: 'x=\"1\"'\nhttp: {url: 'ftp://x'}\n",
                "http.url",
            ),
            (
                "name: a\nmatch: 'x=\"1\"'\nhttp: {url: 'http://x', method: TRACE}\n",
                "http.method",
            ),
            (
                "name: a\nmatch: 'x=\"1\"'\nmax_per_hour: 0\ncommand: {path: /bin/true}\n",
                "max_per_hour",
            ),
        ] {
            let e = action(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        let a =
            action("name: a\nmatch: 'x=\"1\"'\ncommand: {path: /bin/echo, args: ['{{nope}}']}\n")
                .unwrap();
        assert!(
            a.run_for(&alert(&[("x", "1")]))
                .unwrap_err()
                .contains("unknown placeholder")
        );
    }

    #[test]
    fn once_per_episode_and_within_the_hourly_budget() {
        let mut l = Limiter::default();
        let a = alert(&[("alertname", "A")]);
        let b = alert(&[("alertname", "B")]);
        let c = alert(&[("alertname", "C")]);
        assert_eq!(l.admit(&a, 2, 0), Verdict::Run);
        assert_eq!(l.admit(&a, 2, 10), Verdict::Done);
        assert_eq!(l.admit(&b, 2, 20), Verdict::Run);
        assert_eq!(l.admit(&c, 2, 30), Verdict::RateLimited);
        assert_eq!(l.admit(&c, 2, 3_600_001), Verdict::Run, "an hour later");
        let mut again = a.clone();
        again.starts_at_ms = 5_000;
        assert_eq!(
            l.admit(&again, 10, 3_600_002),
            Verdict::Run,
            "a new episode"
        );
    }

    #[test]
    fn selectors_and_receivers_pick_the_alerts() {
        let a =
            action("name: a\nmatch: 'team=\"ops\"'\nreceiver: pager\ncommand: {path: /bin/true}\n")
                .unwrap();
        let n = Notification {
            receiver: "pager".into(),
            group_key: String::new(),
            group_labels: vec![],
            alerts: vec![alert(&[("team", "ops")]), alert(&[("team", "dev")])],
            at_ms: 2_000,
        };
        assert_eq!(a.alerts(&n).len(), 1);
        let other = Notification {
            receiver: "mail".into(),
            ..n
        };
        assert!(a.alerts(&other).is_empty());
    }
}
