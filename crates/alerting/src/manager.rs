//! One tenant's Alertmanager: the alerts it knows (from Dozor's rules and from clients of
//! `POST /api/v2/alerts`), its silences, and the dispatcher that groups, mutes and times
//! the notifications under its configuration.
//!
//! Alerts are merged as Alertmanager merges them: a new version of a firing alert keeps the
//! earlier start; an alert posted without an end is taken as firing until `resolve_timeout`
//! after its last update. Resolved alerts are kept for [`RESOLVED_KEEP_MS`] and then
//! forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Loaded;
use crate::dispatch::{Alert, Dispatcher, GroupView, LogEntry, Mute, Notification};
use crate::silence::Silences;

/// How long a resolved alert stays visible in the API.
pub const RESOLVED_KEEP_MS: i64 = 15 * 60 * 1000;

/// An alert as the store keeps it.
#[derive(Debug, Clone)]
struct Stored {
    alert: Alert,
    updated_ms: i64,
}

/// An alert with its state, as the API shows it.
#[derive(Debug, Clone)]
pub struct AlertView {
    /// The alert.
    pub alert: Alert,
    /// Its fingerprint.
    pub fingerprint: String,
    /// When it was last updated, ms.
    pub updated_ms: i64,
    /// The receivers its routes lead to.
    pub receivers: Vec<String>,
    /// The active silences muting it.
    pub silenced_by: Vec<String>,
    /// The firing alerts inhibiting it.
    pub inhibited_by: Vec<String>,
}

impl AlertView {
    /// `suppressed` when silenced or inhibited, else `active`.
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// One tenant's alerts, silences and dispatcher.
#[derive(Debug)]
pub struct Manager {
    config: Arc<Loaded>,
    dispatcher: Dispatcher,
    alerts: BTreeMap<String, Stored>,
    /// The silences (the caller persists changes).
    pub silences: Silences,
}

/// What mutes at flush time: borrows the manager's parts.
struct Muting<'a> {
    config: &'a Loaded,
    alerts: &'a BTreeMap<String, Stored>,
    silences: &'a Silences,
}

impl Muting<'_> {
    fn inhibited_by(&self, fingerprint: &str, alert: &Alert, now_ms: i64) -> Vec<String> {
        if self.config.inhibitor.is_empty() {
            return Vec::new();
        }
        let firing = self
            .alerts
            .iter()
            .filter(|(_, s)| !s.alert.resolved(now_ms))
            .map(|(fp, s)| (fp.as_str(), &s.alert.labels));
        self.config
            .inhibitor
            .inhibited_by(fingerprint, &alert.labels, firing)
    }
}

impl Mute for Muting<'_> {
    fn alert(&self, alert: &Alert, now_ms: i64) -> bool {
        !self.silences.muting(&alert.labels, now_ms).is_empty()
            || !self
                .inhibited_by(&alert.fingerprint(), alert, now_ms)
                .is_empty()
    }

    fn route(&self, mute: &[String], active: &[String], now_ms: i64) -> bool {
        self.config.intervals.mutes(mute, active, now_ms)
    }
}

impl Manager {
    /// A manager under `config`, with no alerts and no silences.
    pub fn new(config: Arc<Loaded>) -> Manager {
        let send_resolved: Vec<String> = config
            .receivers
            .iter()
            .filter(|r| r.sends_resolved())
            .map(|r| r.name.clone())
            .collect();
        Manager {
            dispatcher: Dispatcher::new(config.route.clone(), send_resolved),
            config,
            alerts: BTreeMap::new(),
            silences: Silences::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Loaded> {
        &self.config
    }

    /// Takes in an alert (new, updated or resolved). An alert without an end fires until
    /// `resolve_timeout` after now, unless updated again.
    pub fn put(&mut self, mut alert: Alert, timeout_if_open: bool, now_ms: i64) {
        let fingerprint = alert.fingerprint();
        if timeout_if_open && alert.ends_at_ms.is_none() {
            let timeout =
                i64::try_from(self.config.resolve_timeout.as_millis()).unwrap_or(i64::MAX);
            alert.ends_at_ms = Some(now_ms.saturating_add(timeout));
        }
        if let Some(old) = self.alerts.get(&fingerprint) {
            // The same episode goes on: keep when it began.
            let same_episode = old.alert.ends_at_ms.is_none_or(|e| e >= alert.starts_at_ms);
            if same_episode {
                alert.starts_at_ms = alert.starts_at_ms.min(old.alert.starts_at_ms);
            }
        }
        self.dispatcher.insert(&alert, now_ms);
        self.alerts.insert(
            fingerprint,
            Stored {
                alert,
                updated_ms: now_ms,
            },
        );
    }

    /// The notifications due at `now_ms`, without what is silenced, inhibited or muted by
    /// time intervals; also forgets alerts resolved long ago and expired silences past
    /// their retention (returned, for the caller to delete).
    pub fn flush(&mut self, now_ms: i64) -> (Vec<Notification>, Vec<String>) {
        let muting = Muting {
            config: &self.config,
            alerts: &self.alerts,
            silences: &self.silences,
        };
        let out = self.dispatcher.flush(now_ms, &muting);
        self.alerts.retain(|_, s| {
            s.alert
                .ends_at_ms
                .is_none_or(|e| e.saturating_add(RESOLVED_KEEP_MS) > now_ms)
        });
        let gone = self.silences.gc(now_ms);
        (out, gone)
    }

    /// When the next group is due, ms.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.dispatcher.next_due_ms()
    }

    /// Gives back the notification log saved before a restart.
    pub fn restore_log(&mut self, entries: impl IntoIterator<Item = LogEntry>, now_ms: i64) {
        self.dispatcher.restore(entries, now_ms);
    }

    fn view(&self, fingerprint: &str, s: &Stored, now_ms: i64) -> AlertView {
        let muting = Muting {
            config: &self.config,
            alerts: &self.alerts,
            silences: &self.silences,
        };
        let mut receivers: Vec<String> = self
            .config
            .route
            .routes_for(&s.alert.labels)
            .iter()
            .map(|r| r.receiver.clone())
            .collect();
        receivers.dedup();
        AlertView {
            alert: s.alert.clone(),
            fingerprint: fingerprint.to_owned(),
            updated_ms: s.updated_ms,
            receivers,
            silenced_by: self.silences.muting(&s.alert.labels, now_ms),
            inhibited_by: muting.inhibited_by(fingerprint, &s.alert, now_ms),
        }
    }

    /// Every alert that has not resolved, by fingerprint, with its state.
    pub fn alerts(&self, now_ms: i64) -> Vec<AlertView> {
        self.alerts
            .iter()
            .filter(|(_, s)| !s.alert.resolved(now_ms))
            .map(|(fp, s)| self.view(fp, s, now_ms))
            .collect()
    }

    /// The groups with the unresolved alerts in each.
    pub fn groups(&self, now_ms: i64) -> Vec<(GroupView<'_>, Vec<AlertView>)> {
        self.dispatcher
            .group_views()
            .map(|g| {
                let alerts = g
                    .alerts
                    .iter()
                    .filter(|a| !a.resolved(now_ms))
                    .filter_map(|a| {
                        let fp = a.fingerprint();
                        self.alerts.get(&fp).map(|s| self.view(&fp, s, now_ms))
                    })
                    .collect();
                (g, alerts)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertmanagerConfig;
    use crate::matchers::parse_matchers;
    use crate::silence::Silence;
    use dozor_model::Labels;

    const S: i64 = 1000;

    fn manager(yaml: &str) -> Manager {
        let loaded = AlertmanagerConfig::parse(yaml).unwrap().load().unwrap();
        Manager::new(Arc::new(loaded))
    }

    fn alert(pairs: &[(&str, &str)], start: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            annotations: BTreeMap::new(),
            starts_at_ms: start,
            ends_at_ms: None,
            generator_url: String::new(),
        }
    }

    const CONFIG: &str = r#"
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  routes:
    - matchers: ['team="night"']
      receiver: web
      active_time_intervals: [night]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: '00:00', end_time: '06:00'}]
receivers:
  - name: web
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
"#;

    fn alertnames(ns: &[Notification]) -> Vec<Vec<String>> {
        ns.iter()
            .map(|n| {
                n.alerts
                    .iter()
                    .map(|a| a.labels.get("alertname").unwrap_or("").to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_silence_keeps_an_alert_out_until_it_expires() {
        let mut m = manager(CONFIG);
        // 2026-11-30 12:00 UTC: not night.
        let t0 = 1_796_040_000 * S;
        let id = m
            .silences
            .upsert(
                Silence {
                    id: String::new(),
                    matchers: parse_matchers(r#"alertname="Down""#).unwrap(),
                    starts_at_ms: t0,
                    ends_at_ms: t0 + 120 * S,
                    updated_at_ms: 0,
                    created_by: "ops".into(),
                    comment: "deploy".into(),
                },
                t0,
                || "s1".into(),
            )
            .unwrap();
        assert_eq!(id.id(), "s1");
        m.put(alert(&[("alertname", "Down")], t0), false, t0);
        let (n, _) = m.flush(t0);
        assert!(n.is_empty(), "silenced");
        let v = m.alerts(t0);
        assert_eq!(v[0].state(), "suppressed");
        assert_eq!(v[0].silenced_by, ["s1"]);
        assert_eq!(v[0].receivers, ["web"]);
        // Expired: the next look sends it.
        m.silences.expire("s1", t0 + 30 * S).unwrap();
        let (n, _) = m.flush(t0 + 60 * S);
        assert_eq!(alertnames(&n), [["Down"]]);
        assert_eq!(m.alerts(t0 + 60 * S)[0].state(), "active");
    }

    #[test]
    fn inhibition_follows_the_source_alert() {
        let mut m = manager(CONFIG);
        let t0 = 1_796_040_000 * S;
        let crit = alert(
            &[
                ("alertname", "HostDown"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            t0,
        );
        m.put(crit.clone(), false, t0);
        m.put(
            alert(
                &[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "a"),
                ],
                t0,
            ),
            false,
            t0,
        );
        m.put(
            alert(
                &[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "b"),
                ],
                t0,
            ),
            false,
            t0,
        );
        let (n, _) = m.flush(t0);
        let mut got = alertnames(&n);
        got.sort();
        assert_eq!(got, [vec!["HostDown"], vec!["Slow"]], "instance b only");
        let mut slow: Vec<_> = m
            .alerts(t0)
            .into_iter()
            .filter(|v| v.alert.labels.get("alertname") == Some("Slow"))
            .map(|v| {
                (
                    v.alert.labels.get("instance").unwrap().to_owned(),
                    v.inhibited_by.len(),
                )
            })
            .collect();
        slow.sort();
        assert_eq!(slow, [("a".to_owned(), 1), ("b".to_owned(), 0)]);
        // The critical alert resolves: the warning of a is no longer inhibited.
        let mut resolved = crit;
        resolved.ends_at_ms = Some(t0 + 10 * S);
        m.put(resolved, false, t0 + 10 * S);
        let (n, _) = m.flush(t0 + 60 * S);
        let slow_group = n
            .iter()
            .find(|n| n.group_labels[0].1 == "Slow")
            .expect("the Slow group is notified again");
        assert_eq!(slow_group.alerts.len(), 2);
    }

    #[test]
    fn a_route_active_only_at_night_waits_for_the_night() {
        let mut m = manager(CONFIG);
        // 2026-11-30 23:59 UTC, then 00:00.
        let evening = 1_796_083_140 * S;
        m.put(
            alert(&[("alertname", "Batch"), ("team", "night")], evening),
            false,
            evening,
        );
        assert!(m.flush(evening).0.is_empty(), "outside the active interval");
        let (n, _) = m.flush(evening + 60 * S);
        assert_eq!(alertnames(&n), [["Batch"]], "midnight");
    }

    #[test]
    fn posted_alerts_time_out_and_keep_their_start() {
        let mut m = manager(CONFIG);
        let t0 = 1_796_040_000 * S;
        m.put(alert(&[("alertname", "Ext")], t0), true, t0);
        m.put(
            alert(&[("alertname", "Ext")], t0 + 30 * S),
            true,
            t0 + 30 * S,
        );
        let v = m.alerts(t0 + 30 * S);
        assert_eq!(v[0].alert.starts_at_ms, t0, "the earlier start stays");
        assert_eq!(
            v[0].alert.ends_at_ms,
            Some(t0 + 330 * S),
            "resolve_timeout 5m"
        );
        assert!(m.alerts(t0 + 330 * S).is_empty(), "timed out");
    }

    #[test]
    fn a_restored_log_keeps_a_restart_from_repeating_itself() {
        let mut m = manager(CONFIG);
        let t0 = 1_796_040_000 * S;
        m.put(alert(&[("alertname", "Down")], t0), false, t0);
        let (n, _) = m.flush(t0);
        let entry = n[0].log_entry();
        // A new process: same alert, log restored.
        let mut again = manager(CONFIG);
        again.restore_log([entry], t0 + 120 * S);
        again.put(alert(&[("alertname", "Down")], t0), false, t0 + 120 * S);
        assert!(again.flush(t0 + 120 * S).0.is_empty(), "already announced");
        let mut fresh = manager(CONFIG);
        fresh.put(alert(&[("alertname", "Down")], t0), false, t0 + 120 * S);
        assert_eq!(
            fresh.flush(t0 + 120 * S).0.len(),
            1,
            "without the log it repeats"
        );
    }
}
