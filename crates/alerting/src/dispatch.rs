//! Grouping and timing: Alertmanager's dispatcher and notification log, without I/O and
//! with time passed in (so tests drive the clock).
//!
//! - An alert goes to every route [`Route::routes_for`] gives, into the group of that route
//!   and its grouping labels (created on the alert's arrival).
//! - A new group waits `group_wait` before its first notification — at once if the alert
//!   started longer than `group_wait` ago (it was held elsewhere, e.g. across a restart);
//!   afterwards it is looked at every `group_interval`.
//! - Whether a look becomes a notification is Alertmanager's `needsUpdate`: the first one
//!   needs a firing alert; after that, a firing alert the last notification did not carry,
//!   all alerts resolved when the last one had firing ones, a newly resolved alert for a
//!   receiver that sends resolved ones, or `repeat_interval` passed since the last
//!   notification.
//! - Before that, alerts that are silenced or inhibited are left out, and a route inside
//!   its `mute_time_intervals` (or outside its `active_time_intervals`) sends nothing, as
//!   Alertmanager's mute stages do ([`Mute`]); a look that leaves nothing to send changes
//!   nothing.
//! - Resolved alerts leave their group once looked at; an empty group is dropped.
//! - What each group last sent (Alertmanager's notification log) can be saved
//!   ([`LogEntry`]) and given back after a restart ([`Dispatcher::restore`]), so alerts
//!   already announced are not announced again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dozor_model::Labels;

use crate::route::Route;

/// An alert as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started, ms.
    pub starts_at_ms: i64,
    /// When it ended (resolved), ms; `None` while it fires.
    pub ends_at_ms: Option<i64>,
    /// Where it came from (a link to its expression).
    pub generator_url: String,
}

impl Alert {
    /// Whether it is resolved at `now_ms`.
    pub fn resolved(&self, now_ms: i64) -> bool {
        self.ends_at_ms.is_some_and(|e| e <= now_ms)
    }

    /// Its fingerprint: FNV-1a of its labels, 16 hex digits (the rules engine's alert id).
    pub fn fingerprint(&self) -> String {
        self.labels.fingerprint()
    }
}

/// A notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The receiver.
    pub receiver: String,
    /// The group's key: route id and grouping labels (Alertmanager's `groupKey`).
    pub group_key: String,
    /// The grouping labels.
    pub group_labels: Vec<(String, String)>,
    /// The group's alerts, firing ones first, each set by fingerprint.
    pub alerts: Vec<Alert>,
    /// When it was made, ms.
    pub at_ms: i64,
}

impl Notification {
    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| !a.resolved(self.at_ms)) {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// What the last notification of a group carried.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    firing: BTreeSet<String>,
    resolved: BTreeSet<String>,
    at_ms: i64,
}

/// A group's entry in the notification log: what its last notification carried.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The group's key.
    pub group_key: String,
    /// Fingerprints of the firing alerts it carried.
    pub firing: Vec<String>,
    /// Fingerprints of the resolved alerts it saw.
    pub resolved: Vec<String>,
    /// When it was sent, ms.
    pub at_ms: i64,
}

/// How long a log entry is worth keeping (Alertmanager's `--data.retention`, 120 h).
pub const LOG_RETENTION_MS: i64 = 120 * 3600 * 1000;

/// What mutes notifications: silences and inhibition (per alert) and time intervals (per
/// route). `()` mutes nothing.
pub trait Mute {
    /// Whether `alert` is left out of notifications at `now_ms`.
    fn alert(&self, alert: &Alert, now_ms: i64) -> bool;
    /// Whether a route with these time intervals sends nothing at `now_ms`.
    fn route(&self, mute: &[String], active: &[String], now_ms: i64) -> bool;
}

impl Mute for () {
    fn alert(&self, _: &Alert, _: i64) -> bool {
        false
    }
    fn route(&self, _: &[String], _: &[String], _: i64) -> bool {
        false
    }
}

/// A group as the API shows it.
#[derive(Debug)]
pub struct GroupView<'a> {
    /// Its key.
    pub key: &'a str,
    /// Its receiver.
    pub receiver: &'a str,
    /// Its grouping labels.
    pub labels: &'a [(String, String)],
    /// Its alerts.
    pub alerts: Vec<&'a Alert>,
}

#[derive(Debug)]
struct Group {
    receiver: String,
    labels: Vec<(String, String)>,
    group_interval: Duration,
    repeat_interval: Duration,
    mute: Vec<String>,
    active: Vec<String>,
    alerts: BTreeMap<String, Alert>,
    next_ms: i64,
    flushed: bool,
    last: Option<Sent>,
}

/// The dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    root: Route,
    /// Receivers that are told about resolved alerts (Alertmanager's `send_resolved`).
    send_resolved: BTreeSet<String>,
    groups: BTreeMap<String, Group>,
    /// Log entries restored after a restart, taken by their groups when these form again.
    restored: BTreeMap<String, Sent>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn render(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

impl Dispatcher {
    /// A dispatcher over a compiled routing tree.
    pub fn new(root: Route, send_resolved: impl IntoIterator<Item = String>) -> Dispatcher {
        Dispatcher {
            root,
            send_resolved: send_resolved.into_iter().collect(),
            groups: BTreeMap::new(),
            restored: BTreeMap::new(),
        }
    }

    /// Gives back the notification log saved before a restart (entries older than
    /// [`LOG_RETENTION_MS`] are ignored).
    pub fn restore(&mut self, entries: impl IntoIterator<Item = LogEntry>, now_ms: i64) {
        for e in entries {
            if e.at_ms.saturating_add(LOG_RETENTION_MS) <= now_ms {
                continue;
            }
            let sent = Sent {
                firing: e.firing.into_iter().collect(),
                resolved: e.resolved.into_iter().collect(),
                at_ms: e.at_ms,
            };
            match self.groups.get_mut(&e.group_key) {
                Some(g) if g.last.is_none() => g.last = Some(sent),
                Some(_) => {}
                None => {
                    self.restored.insert(e.group_key, sent);
                }
            }
        }
    }

    /// Every group, by key.
    pub fn group_views(&self) -> impl Iterator<Item = GroupView<'_>> {
        self.groups.iter().map(|(key, g)| GroupView {
            key,
            receiver: &g.receiver,
            labels: &g.labels,
            alerts: g.alerts.values().collect(),
        })
    }

    /// Takes in a new or updated alert (a later version replaces the earlier one).
    pub fn insert(&mut self, alert: &Alert, now_ms: i64) {
        let fingerprint = alert.fingerprint();
        for route in self.root.routes_for(&alert.labels) {
            let labels = route.group_labels(&alert.labels);
            let key = format!("{}:{}", route.id, render(&labels));
            let restored = &mut self.restored;
            let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
                receiver: route.receiver.clone(),
                labels,
                group_interval: route.group_interval,
                repeat_interval: route.repeat_interval,
                mute: route.mute_time_intervals.clone(),
                active: route.active_time_intervals.clone(),
                alerts: BTreeMap::new(),
                next_ms: now_ms.saturating_add(ms(route.group_wait)),
                flushed: false,
                last: restored.remove(&key),
            });
            // An alert older than group_wait gains nothing from waiting.
            if !group.flushed && alert.starts_at_ms.saturating_add(ms(route.group_wait)) <= now_ms {
                group.next_ms = group.next_ms.min(now_ms);
            }
            group.alerts.insert(fingerprint.clone(), alert.clone());
        }
    }

    /// When the next group is due, ms (`None`: no group).
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_ms).min()
    }

    /// Active groups.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Looks at every group due at `now_ms`; returns the notifications to send, without
    /// what `mute` mutes.
    pub fn flush(&mut self, now_ms: i64, mute: &dyn Mute) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut().filter(|(_, g)| g.next_ms <= now_ms) {
            g.flushed = true;
            g.next_ms = now_ms.saturating_add(ms(g.group_interval));
            let route_muted = mute.route(&g.mute, &g.active, now_ms);
            let (resolved, firing): (Vec<&Alert>, Vec<&Alert>) = g
                .alerts
                .values()
                .filter(|a| !route_muted && !mute.alert(a, now_ms))
                .partition(|a| a.resolved(now_ms));
            // Nothing left to send: the log stays as it is (Alertmanager's pipeline stops).
            if resolved.is_empty() && firing.is_empty() {
                g.alerts.retain(|_, a| !a.resolved(now_ms));
                if g.alerts.is_empty() {
                    empty.push(key.clone());
                }
                continue;
            }
            let firing_ids: BTreeSet<String> = firing.iter().map(|a| a.fingerprint()).collect();
            let resolved_ids: BTreeSet<String> = resolved.iter().map(|a| a.fingerprint()).collect();
            let sends_resolved = self.send_resolved.contains(&g.receiver);
            if needs_update(
                g.last.as_ref(),
                &firing_ids,
                &resolved_ids,
                sends_resolved,
                ms(g.repeat_interval),
                now_ms,
            ) {
                let mut alerts: Vec<Alert> = firing.iter().map(|a| (*a).clone()).collect();
                if sends_resolved {
                    alerts.extend(resolved.iter().map(|a| (*a).clone()));
                }
                out.push(Notification {
                    receiver: g.receiver.clone(),
                    group_key: key.clone(),
                    group_labels: g.labels.clone(),
                    alerts,
                    at_ms: now_ms,
                });
                g.last = Some(Sent {
                    firing: firing_ids,
                    resolved: resolved_ids,
                    at_ms: now_ms,
                });
            }
            g.alerts.retain(|_, a| !a.resolved(now_ms));
            if g.alerts.is_empty() {
                empty.push(key.clone());
            }
        }
        for key in empty {
            self.groups.remove(&key);
        }
        out
    }
}

impl Notification {
    /// Its entry in the notification log.
    pub fn log_entry(&self) -> LogEntry {
        let (resolved, firing): (Vec<&Alert>, Vec<&Alert>) =
            self.alerts.iter().partition(|a| a.resolved(self.at_ms));
        LogEntry {
            group_key: self.group_key.clone(),
            firing: firing.iter().map(|a| a.fingerprint()).collect(),
            resolved: resolved.iter().map(|a| a.fingerprint()).collect(),
            at_ms: self.at_ms,
        }
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    last: Option<&Sent>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    sends_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(last) = last else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&last.firing) {
        return true;
    }
    if firing.is_empty() {
        return !last.firing.is_empty();
    }
    if sends_resolved && !resolved.is_subset(&last.resolved) {
        return true;
    }
    last.at_ms.saturating_add(repeat_ms) <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteConfig;

    const S: i64 = 1000;

    fn dispatcher(yaml: &str) -> Dispatcher {
        let c: RouteConfig = serde_saphyr::from_str(yaml).unwrap();
        let root = Route::compile(&c, &["web", "pager"]).unwrap();
        Dispatcher::new(root, ["web".to_owned()])
    }

    fn alert(name: &str, instance: &str, start: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("instance", instance)]).unwrap(),
            annotations: BTreeMap::new(),
            starts_at_ms: start,
            ends_at_ms: None,
            generator_url: String::new(),
        }
    }

    fn names(n: &Notification) -> Vec<String> {
        n.alerts
            .iter()
            .map(|a| a.labels.get("instance").unwrap_or("").to_owned())
            .collect()
    }

    const ROUTE: &str = "receiver: web\ngroup_by: [alertname]\ngroup_wait: 30s\ngroup_interval: 5m\nrepeat_interval: 4h\n";

    #[test]
    fn a_group_waits_then_notifies_then_waits_its_interval() {
        let mut d = dispatcher(ROUTE);
        let t0 = 1_000_000 * S;
        d.insert(&alert("Down", "a", t0), t0);
        assert!(d.flush(t0 + 29 * S, &()).is_empty(), "group_wait not over");
        d.insert(&alert("Down", "b", t0 + 10 * S), t0 + 10 * S);
        let n = d.flush(t0 + 30 * S, &());
        assert_eq!(n.len(), 1, "both alerts in one notification");
        assert_eq!(names(&n[0]), ["a", "b"]);
        assert_eq!(n[0].group_key, r#"{}:{alertname="Down"}"#);
        assert_eq!(n[0].status(), "firing");
        // A new alert waits for the group interval, not group_wait.
        d.insert(&alert("Down", "c", t0 + 60 * S), t0 + 60 * S);
        assert!(d.flush(t0 + 100 * S, &()).is_empty());
        assert_eq!(d.next_due_ms(), Some(t0 + 330 * S));
        let n = d.flush(t0 + 330 * S, &());
        assert_eq!(names(&n[0]), ["a", "b", "c"]);
        // Nothing new: silent until the repeat interval.
        assert!(d.flush(t0 + 630 * S, &()).is_empty());
        let repeat_at = t0 + 330 * S + 4 * 3600 * S;
        let mut t = t0 + 630 * S;
        let mut repeated = None;
        while t <= repeat_at + 300 * S {
            let n = d.flush(t, &());
            if !n.is_empty() {
                repeated = Some(t);
                break;
            }
            t += 300 * S;
        }
        let at = repeated.unwrap();
        assert!(
            at >= repeat_at && at < repeat_at + 300 * S,
            "repeated at {at}"
        );
    }

    #[test]
    fn an_old_alert_is_sent_at_once_and_groups_split_by_labels() {
        let mut d = dispatcher(ROUTE);
        let t0 = 5_000_000 * S;
        d.insert(&alert("Down", "a", t0 - 60 * S), t0);
        d.insert(&alert("Full", "a", t0), t0);
        let n = d.flush(t0, &());
        assert_eq!(n.len(), 1, "only the group of the old alert");
        assert_eq!(n[0].group_labels, [("alertname".into(), "Down".into())]);
        assert_eq!(d.groups(), 2);
    }

    #[test]
    fn resolution_is_sent_to_receivers_that_want_it_and_the_group_goes() {
        let mut d = dispatcher(ROUTE);
        let t0 = 9_000_000 * S;
        let mut a = alert("Down", "a", t0);
        d.insert(&a, t0);
        d.insert(&alert("Down", "b", t0), t0);
        assert_eq!(d.flush(t0 + 30 * S, &()).len(), 1);
        a.ends_at_ms = Some(t0 + 40 * S);
        d.insert(&a, t0 + 40 * S);
        let n = d.flush(t0 + 330 * S, &());
        assert_eq!(
            n.len(),
            1,
            "a newly resolved alert, for a send_resolved receiver"
        );
        assert_eq!(names(&n[0]), ["b", "a"], "firing first");
        assert_eq!(n[0].status(), "firing");
        assert_eq!(d.groups(), 1);
        let mut b = alert("Down", "b", t0);
        b.ends_at_ms = Some(t0 + 400 * S);
        d.insert(&b, t0 + 400 * S);
        let n = d.flush(t0 + 630 * S, &());
        assert_eq!(n[0].status(), "resolved");
        assert_eq!(d.groups(), 0, "an empty group is dropped");
    }

    #[test]
    fn alerts_resolved_before_anyone_heard_of_them_stay_silent() {
        let mut d = dispatcher("receiver: pager\ngroup_wait: 30s\n");
        let t0 = 7_000_000 * S;
        let mut a = alert("Blip", "a", t0);
        d.insert(&a, t0);
        a.ends_at_ms = Some(t0 + 5 * S);
        d.insert(&a, t0 + 5 * S);
        assert!(d.flush(t0 + 30 * S, &()).is_empty());
        assert_eq!(d.groups(), 0);
    }

    #[test]
    fn continue_sends_one_alert_to_two_receivers() {
        let mut d = dispatcher(
            "receiver: web\ngroup_wait: 0s\nroutes:\n  - {matchers: ['alertname=\"Down\"'], receiver: pager, continue: true}\n  - {matchers: ['instance=\"a\"'], receiver: web}\n",
        );
        let t0 = 3_000_000 * S;
        d.insert(&alert("Down", "a", t0), t0);
        let mut got: Vec<String> = d.flush(t0, &()).into_iter().map(|n| n.receiver).collect();
        got.sort();
        assert_eq!(got, ["pager", "web"]);
    }
}
