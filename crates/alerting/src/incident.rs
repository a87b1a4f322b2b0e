//! Incidents from alert groups (seed 004's incidents; seed 002's "create an incident and
//! collect data for analysis"): which notifications open an incident, what it is called,
//! which timeline entries a notification adds, and what context to collect — the
//! expression of each alert (from its `generatorURL`, as Prometheus and Dozor's rules write
//! it), the labels that find its logs and the alerts related to it. Pure; the binary
//! stores the incident and runs the queries.

use dozor_model::{Labels, Matcher};

use crate::dispatch::{Alert, Notification};
use crate::matchers::parse_matchers;

/// Labels that name where an alert happened, in the order they are tried to find its logs
/// and to relate it to other alerts.
pub const PLACE_LABELS: [&str; 5] = ["service", "app", "job", "host", "instance"];

/// An incident's status changed (through the API or a chat button): what the binary
/// passes on (PagerDuty's `acknowledge`).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its tenant.
    pub tenant: dozor_model::TenantId,
    /// Its id.
    pub id: String,
    /// The alert group it was opened from.
    pub group_key: Option<String>,
    /// Its new status: `open`, `acknowledged` or `resolved`.
    pub status: String,
}

/// Which alerts open incidents.
#[derive(Debug, Clone)]
pub struct IncidentPolicy {
    matchers: Vec<Matcher>,
}

impl Default for IncidentPolicy {
    /// Critical alerts.
    fn default() -> IncidentPolicy {
        IncidentPolicy::parse(r#"severity="critical""#)
            .unwrap_or_else(|e| unreachable!("the default selector parses: {e}"))
    }
}

impl IncidentPolicy {
    /// Alerts that match `selector` (Alertmanager's matcher syntax) open incidents.
    pub fn parse(selector: &str) -> Result<IncidentPolicy, String> {
        Ok(IncidentPolicy {
            matchers: parse_matchers(selector)?,
        })
    }

    fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// Whether `n` opens an incident: one of its firing alerts matches.
    pub fn opens(&self, n: &Notification) -> bool {
        n.alerts
            .iter()
            .any(|a| !a.resolved(n.at_ms) && self.matches(&a.labels))
    }
}

/// What a new incident is called and about.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// Alertmanager's title of the notification.
    pub title: String,
    /// The firing alerts' summaries (else descriptions), one per line.
    pub description: String,
    /// The most severe `severity` among the alerts (`critical`, `error`, `warning`, else
    /// `info`).
    pub severity: String,
    /// The first place label of the first alert that has one.
    pub service: String,
    /// When the earliest alert started, ms.
    pub detected_at_ms: i64,
}

/// The opening of an incident for `n`.
pub fn opening(n: &Notification) -> Opening {
    let firing: Vec<&Alert> = n.alerts.iter().filter(|a| !a.resolved(n.at_ms)).collect();
    let rank = |s: &str| match s {
        "critical" => 3,
        "error" => 2,
        "warning" => 1,
        _ => 0,
    };
    let severity = firing
        .iter()
        .filter_map(|a| a.labels.get("severity"))
        .max_by_key(|s| rank(s))
        .map_or("info", |s| match rank(s) {
            3 => "critical",
            2 => "error",
            1 => "warning",
            _ => "info",
        });
    let description = firing
        .iter()
        .map(|a| {
            let name = a.labels.get("alertname").unwrap_or("alert");
            match a
                .annotations
                .get("summary")
                .or_else(|| a.annotations.get("description"))
            {
                Some(s) => format!("{name}: {s}"),
                None => name.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Opening {
        title: crate::chat::title(n),
        description,
        severity: severity.to_owned(),
        service: firing
            .iter()
            .find_map(|a| place(&a.labels).map(|(_, v)| v.to_owned()))
            .unwrap_or_default(),
        detected_at_ms: firing
            .iter()
            .map(|a| a.starts_at_ms)
            .min()
            .unwrap_or(n.at_ms),
    }
}

/// The first place label an alert has, with its value.
pub fn place(labels: &Labels) -> Option<(&'static str, &str)> {
    PLACE_LABELS
        .iter()
        .find_map(|n| labels.get(n).filter(|v| !v.is_empty()).map(|v| (*n, v)))
}

/// One alert's entry in a timeline: its fingerprint, whether it fired or resolved, and a
/// sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEntry {
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// For people.
    pub text: String,
    /// When it happened, ms (its start, or its end).
    pub at_ms: i64,
}

/// The entries `n` adds to its incident's timeline: one per alert and state, less those
/// already there (`seen`: fingerprint and state of each earlier entry).
pub fn entries(n: &Notification, seen: &[(String, String)]) -> Vec<AlertEntry> {
    n.alerts
        .iter()
        .map(|a| {
            let resolved = a.resolved(n.at_ms);
            let state = if resolved { "resolved" } else { "firing" };
            let name = a.labels.get("alertname").unwrap_or("alert");
            let at = place(&a.labels).map_or(String::new(), |(k, v)| format!(" ({k}={v})"));
            AlertEntry {
                fingerprint: a.fingerprint(),
                state,
                text: format!("{name}{at} {state}"),
                at_ms: if resolved {
                    a.ends_at_ms.unwrap_or(n.at_ms)
                } else {
                    a.starts_at_ms
                },
            }
        })
        .filter(|e| {
            !seen
                .iter()
                .any(|(fp, st)| *fp == e.fingerprint && st == e.state)
        })
        .collect()
}

/// The PromQL expression of an alert, from a Prometheus-style `generatorURL`
/// (`…/graph?g0.expr=<expr>&g0.tab=1`).
pub fn expression(generator_url: &str) -> Option<String> {
    let (_, query) = generator_url.split_once('?')?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "g0.expr")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A Prometheus-style `generatorURL` for `expr` under `external_url`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let q = serde_urlencoded::to_string([("g0.expr", expr), ("g0.tab", "1")]).unwrap_or_default();
    format!("{}/graph?{q}", external_url.trim_end_matches('/'))
}

/// Whether `other` is related to `alert`: it shares the value of a place label.
pub fn related(alert: &Labels, other: &Labels) -> bool {
    PLACE_LABELS.iter().any(
        |n| matches!((alert.get(n), other.get(n)), (Some(a), Some(b)) if !a.is_empty() && a == b),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(pairs: &[(&str, &str)], summary: Option<&str>, start: i64, end: Option<i64>) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            annotations: summary
                .map(|s| BTreeMap::from([("summary".to_owned(), s.to_owned())]))
                .unwrap_or_default(),
            starts_at_ms: start,
            ends_at_ms: end,
            generator_url: String::new(),
        }
    }

    fn notification(alerts: Vec<Alert>, at: i64) -> Notification {
        Notification {
            receiver: "r".into(),
            group_key: "{}:{}".into(),
            group_labels: vec![],
            alerts,
            at_ms: at,
        }
    }

    #[test]
    fn critical_groups_open_incidents_named_after_their_alerts() {
        let n = notification(
            vec![
                alert(
                    &[
                        ("alertname", "Down"),
                        ("severity", "critical"),
                        ("service", "shop"),
                    ],
                    Some("shop is down"),
                    100,
                    None,
                ),
                alert(
                    &[
                        ("alertname", "Slow"),
                        ("severity", "warning"),
                        ("job", "crm"),
                    ],
                    None,
                    50,
                    None,
                ),
                alert(
                    &[("alertname", "Old"), ("severity", "critical")],
                    None,
                    10,
                    Some(20),
                ),
            ],
            200,
        );
        let p = IncidentPolicy::default();
        assert!(p.opens(&n));
        let o = opening(&n);
        assert_eq!(o.severity, "critical");
        assert_eq!(o.service, "shop");
        assert_eq!(o.description, "Down: shop is down\nSlow");
        assert_eq!(o.detected_at_ms, 50, "the earliest firing alert");
        let warn_only = notification(vec![alert(&[("severity", "warning")], None, 1, None)], 2);
        assert!(!p.opens(&warn_only));
        assert!(IncidentPolicy::parse(r#"team="db""#).is_ok());
        assert!(IncidentPolicy::parse("nope").is_err());
    }

    #[test]
    fn a_timeline_gets_each_alert_state_once() {
        let a = alert(
            &[("alertname", "Down"), ("instance", "db:9100")],
            None,
            100,
            None,
        );
        let n = notification(vec![a.clone()], 200);
        let first = entries(&n, &[]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].text, "Down (instance=db:9100) firing");
        let seen = vec![(first[0].fingerprint.clone(), "firing".to_owned())];
        assert!(entries(&n, &seen).is_empty(), "a repeat adds nothing");
        let mut done = a;
        done.ends_at_ms = Some(300);
        let resolved = entries(&notification(vec![done], 400), &seen);
        assert_eq!(resolved[0].state, "resolved");
        assert_eq!(resolved[0].at_ms, 300);
    }

    #[test]
    fn expressions_round_trip_through_generator_urls() {
        let url = generator_url(
            "http://dozor:9470/",
            r#"sum(rate(http_requests_total{code=~"5.."}[5m])) > 1"#,
        );
        assert!(url.starts_with("http://dozor:9470/graph?g0.expr="));
        assert_eq!(
            expression(&url).as_deref(),
            Some(r#"sum(rate(http_requests_total{code=~"5.."}[5m])) > 1"#)
        );
        assert_eq!(
            expression("http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1").as_deref(),
            Some("up == 0")
        );
        assert_eq!(expression("http://x/graph"), None);
        assert_eq!(expression(""), None);
    }

    #[test]
    fn alerts_relate_through_place_labels() {
        let a = Labels::from_pairs([("alertname", "A"), ("instance", "db:9100")]).unwrap();
        let b = Labels::from_pairs([("alertname", "B"), ("instance", "db:9100")]).unwrap();
        let c = Labels::from_pairs([("alertname", "C"), ("instance", "web:9100")]).unwrap();
        assert!(related(&a, &b));
        assert!(!related(&a, &c));
    }
}
