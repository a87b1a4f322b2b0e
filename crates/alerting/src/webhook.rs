//! Alertmanager's webhook payload, version 4: what every webhook receiver built for
//! Alertmanager (and Grafana OnCall, n8n, PagerDuty's and Opsgenie's Alertmanager
//! integrations…) reads.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::dispatch::{Alert, Notification};

/// RFC 3339 with milliseconds, UTC; Alertmanager's zero time for an unset end.
pub(crate) fn time(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => dozor_model::time::rfc3339_ns(ms.saturating_mul(1_000_000)),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

/// The labels (or annotations) every alert has with the same value.
fn common<'a>(
    maps: impl Iterator<Item = BTreeMap<&'a str, &'a str>>,
) -> BTreeMap<&'a str, &'a str> {
    let mut maps = maps;
    let Some(mut out) = maps.next() else {
        return BTreeMap::new();
    };
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

fn labels(a: &Alert) -> BTreeMap<&str, &str> {
    a.labels
        .iter()
        .map(|l| (l.name.as_ref(), l.value.as_ref()))
        .collect()
}

fn annotations(a: &Alert) -> BTreeMap<&str, &str> {
    a.annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The payload for `n`, at most `max_alerts` alerts (0: all), the rest counted in
/// `truncatedAlerts`.
pub fn payload(n: &Notification, external_url: &str, max_alerts: usize) -> Value {
    let keep = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let alerts: Vec<Value> = n.alerts[..keep]
        .iter()
        .map(|a| {
            let resolved = a.resolved(n.at_ms);
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": labels(a),
                "annotations": annotations(a),
                "startsAt": time(Some(a.starts_at_ms)),
                "endsAt": time(a.ends_at_ms),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint(),
            })
        })
        .collect();
    let group_labels: BTreeMap<&str, &str> = n
        .group_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - keep,
        "status": n.status(),
        "receiver": n.receiver,
        "groupLabels": group_labels,
        "commonLabels": common(n.alerts.iter().map(labels)),
        "commonAnnotations": common(n.alerts.iter().map(annotations)),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::Labels;

    #[test]
    fn the_payload_is_alertmanagers_v4() {
        let alert = |instance: &str, ends: Option<i64>| Alert {
            labels: Labels::from_pairs([
                ("alertname", "Down"),
                ("instance", instance),
                ("severity", "critical"),
            ])
            .unwrap(),
            annotations: [("summary".to_owned(), format!("{instance} is down"))].into(),
            starts_at_ms: 1_796_500_000_000,
            ends_at_ms: ends,
            generator_url: "http://dozor:9470/graph?g0.expr=up+%3D%3D+0".into(),
        };
        let n = Notification {
            receiver: "web".into(),
            group_key: r#"{}:{alertname="Down"}"#.into(),
            group_labels: vec![("alertname".into(), "Down".into())],
            alerts: vec![alert("a", None), alert("b", Some(1_796_500_060_000))],
            at_ms: 1_796_500_100_000,
        };
        let p = payload(&n, "http://dozor:9470", 0);
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], "web");
        assert_eq!(p["groupKey"], r#"{}:{alertname="Down"}"#);
        assert_eq!(p["groupLabels"], json!({"alertname": "Down"}));
        assert_eq!(
            p["commonLabels"],
            json!({"alertname": "Down", "severity": "critical"})
        );
        assert_eq!(p["commonAnnotations"], json!({}));
        assert_eq!(p["externalURL"], "http://dozor:9470");
        assert_eq!(p["truncatedAlerts"], 0);
        let a = &p["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["startsAt"], "2026-12-05T19:46:40Z");
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(a["annotations"]["summary"], "a is down");
        assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(p["alerts"][1]["status"], "resolved");
        assert_eq!(p["alerts"][1]["endsAt"], "2026-12-05T19:47:40Z");
        let cut = payload(&n, "", 1);
        assert_eq!(cut["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(cut["truncatedAlerts"], 1);
    }
}
