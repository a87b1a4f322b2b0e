//! The rule groups a server evaluates, by tenant: shared between the scheduler, which
//! evaluates each group under its lock, and the API, which reads their rules and alerts.

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
}

impl TenantGroup {
    /// Locks the group (a panic in another holder does not poison it for readers).
    pub fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every loaded group. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RuleSet(Arc<RwLock<Vec<TenantGroup>>>);

impl RuleSet {
    /// A set of these groups.
    pub fn new(groups: impl IntoIterator<Item = (TenantId, Group)>) -> RuleSet {
        RuleSet(Arc::new(RwLock::new(
            groups
                .into_iter()
                .map(|(tenant, g)| TenantGroup {
                    tenant,
                    group: Arc::new(Mutex::new(g)),
                })
                .collect(),
        )))
    }

    /// Every group, in load order.
    pub fn all(&self) -> Vec<TenantGroup> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The groups of one tenant, in load order.
    pub fn of_tenant(&self, tenant: &TenantId) -> Vec<TenantGroup> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|g| &g.tenant == tenant)
            .cloned()
            .collect()
    }
}
