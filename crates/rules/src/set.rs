//! The rule groups a server evaluates, by tenant: shared between the scheduler, which
//! evaluates each group under its lock, and the API, which reads their rules and alerts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use dozor_model::TenantId;

use crate::group::Group;

/// One group and the tenant whose metrics it reads and writes.
#[derive(Debug, Clone)]
pub struct TenantGroup {
    /// The tenant.
    pub tenant: TenantId,
    /// The group and its state.
    pub group: Arc<Mutex<Group>>,
    /// Whether it is the tenant's group of structured rules (replaced in place when they
    /// change) rather than a rule file's.
    pub managed: bool,
}

impl TenantGroup {
    /// Locks the group (a panic in another holder does not poison it for readers).
    pub fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every loaded group: those of rule files, fixed at start, and each tenant's group of
/// structured rules ([`crate::structured`]), replaced whenever they change. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RuleSet {
    groups: Arc<RwLock<Vec<TenantGroup>>>,
    default_interval_ms: i64,
    external: Arc<(BTreeMap<String, String>, String)>,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::new(Vec::new(), 60_000, BTreeMap::new(), String::new())
    }
}

impl RuleSet {
    /// A set of the groups of rule files, by tenant; they and the groups added later run
    /// every `default_interval_ms` unless they set an interval, and their templates see
    /// `external_labels` and `external_url`.
    pub fn new(
        groups: impl IntoIterator<Item = (TenantId, crate::RuleGroup)>,
        default_interval_ms: i64,
        external_labels: BTreeMap<String, String>,
        external_url: String,
    ) -> RuleSet {
        let group = |spec| {
            Group::new(spec, default_interval_ms)
                .with_external(external_labels.clone(), external_url.clone())
        };
        RuleSet {
            groups: Arc::new(RwLock::new(
                groups
                    .into_iter()
                    .map(|(tenant, spec)| TenantGroup {
                        tenant,
                        group: Arc::new(Mutex::new(group(spec))),
                        managed: false,
                    })
                    .collect(),
            )),
            default_interval_ms,
            external: Arc::new((external_labels, external_url)),
        }
    }

    /// Every group, in load order.
    pub fn all(&self) -> Vec<TenantGroup> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs a tenant's group of structured rules, built from `spec`. Rules that did
    /// not change keep their alerts; the firing alerts of rules that changed or went away
    /// resolve (see [`Group::adopt`]). The first such group of a tenant is added to the
    /// set (a scheduler must pick it up); later ones replace its content in place, so
    /// whoever holds the [`TenantGroup`] evaluates the new rules.
    pub fn put_managed(&self, tenant: &TenantId, spec: crate::RuleGroup, now_ms: i64) {
        let (labels, url) = &*self.external;
        let fresh =
            Group::new(spec, self.default_interval_ms).with_external(labels.clone(), url.clone());
        let find = |groups: &[TenantGroup]| {
            groups
                .iter()
                .find(|g| g.managed && &g.tenant == tenant)
                .cloned()
        };
        // The set's lock is not held while waiting for the group's, which an evaluation in
        // progress holds: readers of the set (the API, /metrics) are not kept waiting.
        let existing = find(&self.groups.read().unwrap_or_else(|p| p.into_inner()));
        let tg = match existing {
            Some(tg) => tg,
            None => {
                let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
                match find(&groups) {
                    Some(tg) => tg,
                    None => {
                        // A new group waits for `for` timers to be restored, like any
                        // group at start.
                        let mut empty = Group::new(
                            crate::structured::managed_group([], None).0,
                            self.default_interval_ms,
                        );
                        empty.await_restore();
                        let tg = TenantGroup {
                            tenant: tenant.clone(),
                            group: Arc::new(Mutex::new(empty)),
                            managed: true,
                        };
                        groups.push(tg.clone());
                        tg
                    }
                }
            }
        };
        let mut g = tg.lock();
        let old = std::mem::replace(&mut *g, fresh);
        g.adopt(old, now_ms);
    }

    /// The groups of one tenant, in load order.
    pub fn of_tenant(&self, tenant: &TenantId) -> Vec<TenantGroup> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|g| &g.tenant == tenant)
            .cloned()
            .collect()
    }
}
