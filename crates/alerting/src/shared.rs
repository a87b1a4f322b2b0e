//! Every tenant's [`Manager`], shared by the API (alerts posted, silences managed, state
//! read) and the binary's dispatcher loop (due groups flushed, notifications delivered).
//!
//! A tenant with its own configuration uses it; any other tenant gets a manager on first
//! use under the fallback configuration, whose only receiver (`null`) has no integrations:
//! its alerts and silences work through the API, and nothing is sent. Each call holds the
//! lock for the length of a map operation, never across I/O; after a change that can make a
//! group due sooner the loop is woken through the callback given at construction.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dozor_model::TenantId;

use crate::config::{AlertmanagerConfig, Loaded};
use crate::dispatch::{Alert, Notification};
use crate::manager::Manager;

/// A tenant's configuration and the text it came from (`GET /api/v2/status` shows it).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// The loaded configuration.
    pub loaded: Arc<Loaded>,
    /// The YAML it was loaded from, its secrets masked ([`crate::redact`]).
    pub original: String,
}

/// The configuration of tenants that have none: one receiver without integrations.
pub const FALLBACK: &str = "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n";

/// What a flush produced.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Notifications to send, with their tenant.
    pub notifications: Vec<(TenantId, Notification)>,
    /// Silences forgotten after their retention, to delete from storage.
    pub forgotten_silences: Vec<(TenantId, Vec<String>)>,
}

/// Every tenant's manager.
pub struct Notifications {
    managers: Mutex<BTreeMap<TenantId, Manager>>,
    configs: BTreeMap<TenantId, TenantConfig>,
    fallback: TenantConfig,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field(
                "configured_tenants",
                &self.configs.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Notifications {
    /// Every tenant under the fallback; nothing to wake.
    fn default() -> Notifications {
        Notifications::new(BTreeMap::new(), || {})
    }
}

impl Notifications {
    /// Managers under `configs` (others under [`FALLBACK`]); `wake` is called when a group
    /// may have become due sooner.
    pub fn new(
        configs: BTreeMap<TenantId, TenantConfig>,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Notifications {
        let loaded = AlertmanagerConfig::parse(FALLBACK)
            .and_then(AlertmanagerConfig::load)
            .unwrap_or_else(|e| unreachable!("the fallback configuration loads: {e}"));
        Notifications {
            managers: Mutex::new(BTreeMap::new()),
            configs,
            fallback: TenantConfig {
                loaded: Arc::new(loaded),
                original: FALLBACK.to_owned(),
            },
            wake: Box::new(wake),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<TenantId, Manager>> {
        // A panic while holding the lock left a consistent map (every change is one
        // insert); carry on with it.
        self.managers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration a tenant runs under.
    pub fn config(&self, tenant: &TenantId) -> &TenantConfig {
        self.configs.get(tenant).unwrap_or(&self.fallback)
    }

    /// Whether the tenant has a configuration of its own.
    pub fn configured(&self, tenant: &TenantId) -> bool {
        self.configs.contains_key(tenant)
    }

    /// Runs `f` on the tenant's manager (made on first use).
    pub fn with<R>(&self, tenant: &TenantId, f: impl FnOnce(&mut Manager) -> R) -> R {
        let mut managers = self.lock();
        let m = managers
            .entry(tenant.clone())
            .or_insert_with(|| Manager::new(Arc::clone(&self.config(tenant).loaded)));
        f(m)
    }

    /// Takes in alerts of a tenant and wakes the loop.
    pub fn put(
        &self,
        tenant: &TenantId,
        alerts: impl IntoIterator<Item = Alert>,
        timeout_if_open: bool,
        now_ms: i64,
    ) {
        self.with(tenant, |m| {
            for a in alerts {
                m.put(a, timeout_if_open, now_ms);
            }
        });
        (self.wake)();
    }

    /// Flushes every tenant's due groups.
    pub fn flush(&self, now_ms: i64) -> Flushed {
        let mut out = Flushed::default();
        for (tenant, m) in self.lock().iter_mut() {
            let (ns, gone) = m.flush(now_ms);
            out.notifications
                .extend(ns.into_iter().map(|n| (tenant.clone(), n)));
            if !gone.is_empty() {
                out.forgotten_silences.push((tenant.clone(), gone));
            }
        }
        out
    }

    /// The group whose [`crate::interact::short_key`] is `key`: its tenant, key and
    /// unresolved alerts.
    pub fn find_group(&self, key: &str, now_ms: i64) -> Option<(TenantId, String, Vec<Alert>)> {
        for (tenant, m) in self.lock().iter() {
            for (g, alerts) in m.groups(now_ms) {
                if crate::interact::short_key(tenant.as_str(), g.key) == key {
                    let alerts = alerts.into_iter().map(|v| v.alert).collect();
                    return Some((tenant.clone(), g.key.to_owned(), alerts));
                }
            }
        }
        None
    }

    /// Group `key` of `tenant` as a notification of its unresolved alerts, for messages
    /// outside the dispatcher's timing (PagerDuty's `acknowledge`).
    pub fn group(&self, tenant: &TenantId, key: &str, now_ms: i64) -> Option<Notification> {
        let managers = self.lock();
        let m = managers.get(tenant)?;
        m.groups(now_ms)
            .into_iter()
            .find(|(g, _)| g.key == key)
            .map(|(g, alerts)| Notification {
                receiver: g.receiver.to_owned(),
                group_key: g.key.to_owned(),
                group_labels: g.labels.to_vec(),
                alerts: alerts.into_iter().map(|v| v.alert).collect(),
                at_ms: now_ms,
            })
    }

    /// When the next group of any tenant is due, ms.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.lock().values().filter_map(Manager::next_due_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn tenants_without_a_configuration_get_the_silent_one() {
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        let shop: TenantId = "shop".parse().unwrap();
        let yaml = "route: {receiver: web, group_wait: 0s}\nreceivers: [{name: web, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}]\n";
        let loaded = AlertmanagerConfig::parse(yaml).unwrap().load().unwrap();
        let configs = BTreeMap::from([(
            shop.clone(),
            TenantConfig {
                loaded: Arc::new(loaded),
                original: yaml.into(),
            },
        )]);
        let n = Notifications::new(configs, move || {
            w.fetch_add(1, Ordering::Relaxed);
        });
        let other: TenantId = "other".parse().unwrap();
        let alert = Alert {
            labels: dozor_model::Labels::from_pairs([("alertname", "Down")]).unwrap(),
            annotations: BTreeMap::new(),
            starts_at_ms: 1_000,
            ends_at_ms: None,
            generator_url: String::new(),
        };
        n.put(&shop, [alert.clone()], false, 1_000);
        n.put(&other, [alert], false, 1_000);
        assert_eq!(woken.load(Ordering::Relaxed), 2);
        assert!(n.configured(&shop) && !n.configured(&other));
        assert_eq!(n.config(&other).original, FALLBACK);
        let got = n.flush(1_000).notifications;
        let receivers: Vec<(&str, &str)> = got
            .iter()
            .map(|(t, n)| (t.as_str(), n.receiver.as_str()))
            .collect();
        assert!(receivers.contains(&("shop", "web")));
        assert_eq!(n.with(&other, |m| m.alerts(1_000).len()), 1);
        let (_, key) = (&got[0].0, got[0].1.group_key.clone());
        let g = n.group(&shop, &key, 2_000).expect("the group");
        assert_eq!(
            (g.receiver.as_str(), g.alerts.len(), g.at_ms),
            ("web", 1, 2_000)
        );
        assert!(n.group(&shop, "no such group", 2_000).is_none());
        assert!(n.group(&"nobody".parse().unwrap(), &key, 2_000).is_none());
    }
}
