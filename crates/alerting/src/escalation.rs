//! Escalation policies (seed 003): stages, each a delay and a receiver, that an alert
//! group climbs while nobody acknowledges it. A policy starts for a group when the
//! dispatcher first notifies it with a firing alert the policy's selector matches; stage
//! `i` is due `delay_i` after that notification; the escalation ends when the group
//! resolves, when someone acknowledges (the caller checks and calls [`Escalations::stop`]),
//! or after its last stage. Pure: time passed in, the caller sends.
//!
//! ```yaml
//! alerting:
//!   escalations:
//!     - name: critical_alerts
//!       match: 'severity="critical"'
//!       stages:
//!         - {delay: 5m, receiver: team-mail}
//!         - {delay: 900, receiver: slack-critical}   # seconds, as seed 003 writes them
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use dozor_model::{Matcher, TenantId};
use serde::{Deserialize, Deserializer};

use crate::dispatch::Notification;
use crate::matchers::parse_matchers;

/// One policy as written.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Its name.
    pub name: String,
    /// Alerts whose groups it escalates (Alertmanager's matcher syntax).
    #[serde(rename = "match")]
    pub selector: String,
    /// The tenant (default: the default tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The stages, in order.
    pub stages: Vec<StageConfig>,
}

/// One stage as written.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// After the group's first notification: a duration (`5m`) or seconds (`300`).
    #[serde(deserialize_with = "delay", serialize_with = "delay_out")]
    pub delay: Duration,
    /// A receiver of the tenant's Alertmanager configuration.
    pub receiver: String,
}

fn delay<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Duration(String),
    }
    match Text::deserialize(d)? {
        Text::Seconds(s) => Ok(Duration::from_secs(s)),
        Text::Duration(t) => dozor_model::duration::parse(&t).map_err(serde::de::Error::custom),
    }
}

fn delay_out<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// As written.
    pub config: EscalationConfig,
    /// Its tenant.
    pub tenant: TenantId,
    matchers: Vec<Matcher>,
}

impl Policy {
    /// Checks a policy; `receivers` lists the receiver names of its tenant.
    pub fn compile(c: &EscalationConfig, receivers: &[&str]) -> Result<Policy, String> {
        let at = |f: &str| format!("alerting.escalations {:?}: {f}", c.name);
        let matchers = parse_matchers(&c.selector).map_err(|e| format!("{}: {e}", at("match")))?;
        let tenant = crate::config::entry_tenant("escalations", &c.name, c.tenant.as_ref())?;
        if c.stages.is_empty() {
            return Err(at("stages: at least one"));
        }
        for (i, s) in c.stages.iter().enumerate() {
            if !receivers.contains(&s.receiver.as_str()) {
                return Err(at(&format!(
                    "stages[{i}].receiver: no receiver named {:?} in the tenant's configuration",
                    s.receiver
                )));
            }
            if i > 0 && s.delay < c.stages[i - 1].delay {
                return Err(at(&format!(
                    "stages[{i}].delay: shorter than the stage before"
                )));
            }
        }
        Ok(Policy {
            config: c.clone(),
            tenant,
            matchers,
        })
    }

    fn applies(&self, tenant: &TenantId, n: &Notification) -> bool {
        *tenant == self.tenant
            && n.alerts.iter().any(|a| {
                !a.resolved(n.at_ms)
                    && self
                        .matchers
                        .iter()
                        .all(|m| m.matches(a.labels.get(&m.name).unwrap_or("")))
            })
    }
}

/// Checks every policy against its tenant's receivers (`receivers_of`).
pub fn compile_all(
    configs: &[EscalationConfig],
    receivers_of: &dyn Fn(&TenantId) -> Vec<String>,
) -> Result<Vec<Policy>, String> {
    let mut names = std::collections::BTreeSet::new();
    configs
        .iter()
        .map(|c| {
            crate::config::unique_name(&mut names, "escalations", &c.name)?;
            let tenant = crate::config::entry_tenant("escalations", &c.name, c.tenant.as_ref())?;
            let receivers = receivers_of(&tenant);
            let refs: Vec<&str> = receivers.iter().map(String::as_str).collect();
            Policy::compile(c, &refs)
        })
        .collect()
}

/// A stage that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// The tenant.
    pub tenant: TenantId,
    /// The group.
    pub group_key: String,
    /// The policy's name.
    pub policy: String,
    /// The stage's index.
    pub stage: usize,
    /// Whom to notify.
    pub receiver: String,
}

#[derive(Debug, Clone)]
struct Running {
    policy: usize,
    started_ms: i64,
    next: usize,
}

/// The running escalations.
#[derive(Debug, Default)]
pub struct Escalations {
    policies: Vec<Policy>,
    running: BTreeMap<(TenantId, String), Running>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Escalations {
    /// Escalations under these policies.
    pub fn new(policies: Vec<Policy>) -> Escalations {
        Escalations {
            policies,
            running: BTreeMap::new(),
        }
    }

    /// Whether there are policies at all.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Looks at a notification the dispatcher made: starts the first policy that applies
    /// to its group (unless one runs), ends the group's escalation once it resolved.
    pub fn on_notification(&mut self, tenant: &TenantId, n: &Notification) {
        let key = (tenant.clone(), n.group_key.clone());
        if n.status() == "resolved" {
            self.running.remove(&key);
            return;
        }
        if self.running.contains_key(&key) {
            return;
        }
        if let Some(i) = self.policies.iter().position(|p| p.applies(tenant, n)) {
            self.running.insert(
                key,
                Running {
                    policy: i,
                    started_ms: n.at_ms,
                    next: 0,
                },
            );
        }
    }

    /// Ends a group's escalation (it was acknowledged).
    pub fn stop(&mut self, tenant: &TenantId, group_key: &str) {
        self.running.remove(&(tenant.clone(), group_key.to_owned()));
    }

    /// When the next stage is due, ms.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.running
            .values()
            .filter_map(|r| {
                let stage = self.policies[r.policy].config.stages.get(r.next)?;
                Some(r.started_ms.saturating_add(ms(stage.delay)))
            })
            .min()
    }

    /// The stages due at `now_ms`, each handed out once; escalations past their last stage
    /// end.
    pub fn due(&mut self, now_ms: i64) -> Vec<Due> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        for ((tenant, group), r) in &mut self.running {
            let p = &self.policies[r.policy];
            while let Some(stage) = p.config.stages.get(r.next) {
                if r.started_ms.saturating_add(ms(stage.delay)) > now_ms {
                    break;
                }
                out.push(Due {
                    tenant: tenant.clone(),
                    group_key: group.clone(),
                    policy: p.config.name.clone(),
                    stage: r.next,
                    receiver: stage.receiver.clone(),
                });
                r.next += 1;
            }
            if r.next >= p.config.stages.len() {
                done.push((tenant.clone(), group.clone()));
            }
        }
        for k in done {
            self.running.remove(&k);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Alert;
    use dozor_model::Labels;

    fn policy(yaml: &str) -> Result<Policy, String> {
        let c: EscalationConfig = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        Policy::compile(&c, &["mail", "pager"])
    }

    fn notification(severity: &str, resolved: bool, at: i64) -> Notification {
        Notification {
            receiver: "mail".into(),
            group_key: "g".into(),
            group_labels: vec![],
            alerts: vec![Alert {
                labels: Labels::from_pairs([("alertname", "Down"), ("severity", severity)])
                    .unwrap(),
                annotations: Default::default(),
                starts_at_ms: 0,
                ends_at_ms: resolved.then_some(at),
                generator_url: String::new(),
            }],
            at_ms: at,
        }
    }

    const POLICY: &str = "name: critical\nmatch: 'severity=\"critical\"'\nstages:\n  - {delay: 300, receiver: mail}\n  - {delay: 15m, receiver: pager}\n";

    #[test]
    fn stages_come_due_in_order_until_the_last() {
        let t = TenantId::default_tenant();
        let mut e = Escalations::new(vec![policy(POLICY).unwrap()]);
        e.on_notification(&t, &notification("critical", false, 1_000));
        assert_eq!(e.next_due_ms(), Some(301_000));
        assert!(e.due(300_999).is_empty());
        let d = e.due(301_000);
        assert_eq!((d[0].stage, d[0].receiver.as_str()), (0, "mail"));
        // A repeat notification does not restart it.
        e.on_notification(&t, &notification("critical", false, 600_000));
        assert_eq!(e.next_due_ms(), Some(901_000));
        let d = e.due(2_000_000);
        assert_eq!((d[0].stage, d[0].receiver.as_str()), (1, "pager"));
        assert_eq!(e.next_due_ms(), None, "over after the last stage");
    }

    #[test]
    fn resolution_and_acknowledgement_end_it_and_warnings_never_start_it() {
        let t = TenantId::default_tenant();
        let mut e = Escalations::new(vec![policy(POLICY).unwrap()]);
        e.on_notification(&t, &notification("warning", false, 0));
        assert_eq!(e.next_due_ms(), None);
        e.on_notification(&t, &notification("critical", false, 0));
        e.on_notification(&t, &notification("critical", true, 10));
        assert_eq!(e.next_due_ms(), None, "resolved");
        e.on_notification(&t, &notification("critical", false, 20));
        e.stop(&t, "g");
        assert!(e.due(10_000_000).is_empty(), "acknowledged");
        let other: TenantId = "acme".parse().unwrap();
        e.on_notification(&other, &notification("critical", false, 0));
        assert_eq!(e.next_due_ms(), None, "another tenant's policy");
    }

    #[test]
    fn bad_policies_are_named() {
        for (yaml, want) in [
            ("name: p\nmatch: 'x=\"1\"'\nstages: []\n", "at least one"),
            (
                "name: p\nmatch: 'x=\"1\"'\nstages: [{delay: 1m, receiver: fax}]\n",
                "no receiver named \"fax\"",
            ),
            (
                "name: p\nmatch: 'x=\"1\"'\nstages: [{delay: 5m, receiver: mail}, {delay: 1m, receiver: pager}]\n",
                "shorter",
            ),
            (
                "name: p\nmatch: nope\nstages: [{delay: 1m, receiver: mail}]\n",
                "match",
            ),
            (
                "name: p\nmatch: 'x=\"1\"'\ntenant: 'bad tenant!'\nstages: [{delay: 1m, receiver: mail}]\n",
                "tenant",
            ),
        ] {
            let e = policy(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
