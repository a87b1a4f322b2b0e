//! [`TenantMap`]: one engine per tenant (a metric store, a log store…), created on first
//! use and shared behind an `Arc`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::TenantId;

/// Engines by tenant. Reads take a shared lock; creating one takes the exclusive lock once,
/// so two first writers of a tenant open it once.
#[derive(Debug)]
pub struct TenantMap<T> {
    map: RwLock<HashMap<TenantId, Arc<T>>>,
}

impl<T> Default for TenantMap<T> {
    fn default() -> Self {
        TenantMap {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> TenantMap<T> {
    /// A map holding `engines` (those found at start-up).
    pub fn new(engines: impl IntoIterator<Item = (TenantId, T)>) -> TenantMap<T> {
        TenantMap {
            map: RwLock::new(engines.into_iter().map(|(t, e)| (t, Arc::new(e))).collect()),
        }
    }

    /// The engine of `tenant`, opened with `open` if there is none yet.
    pub fn get_or_open<E>(
        &self,
        tenant: &TenantId,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some(e) = self.get(tenant) {
            return Ok(e);
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get(tenant) {
            return Ok(Arc::clone(e));
        }
        let e = Arc::new(open()?);
        map.insert(tenant.clone(), Arc::clone(&e));
        Ok(e)
    }

    /// The engine of `tenant`, if it has one (reads never create a tenant).
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<T>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Every engine.
    pub fn all(&self) -> Vec<(TenantId, Arc<T>)> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, e)| (t.clone(), Arc::clone(e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_open_once_and_reads_never_create() {
        let map: TenantMap<String> = TenantMap::new([("a".parse().unwrap(), "A".to_owned())]);
        let b: TenantId = "b".parse().unwrap();
        assert!(map.get(&b).is_none());
        let mut opened = 0;
        for _ in 0..2 {
            let e = map
                .get_or_open(&b, || -> Result<String, ()> {
                    opened += 1;
                    Ok("B".into())
                })
                .unwrap();
            assert_eq!(*e, "B");
        }
        assert_eq!(opened, 1);
        assert!(
            map.get_or_open(&"c".parse().unwrap(), || Err::<String, _>("no"))
                .is_err()
        );
        let mut all: Vec<String> = map.all().into_iter().map(|(t, _)| t.to_string()).collect();
        all.sort();
        assert_eq!(all, ["a", "b"]);
    }
}
