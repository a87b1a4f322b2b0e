//! Alert episodes in the state store's `alert_history`: what the rule scheduler writes
//! after each evaluation of a group, shared with tests that evaluate groups themselves.

use dozor_model::{Labels, TenantId};
use dozor_rules::{Alert, Transition};
use dozor_state::alerts::FiredAlert;
use dozor_state::{StateError, Store};

/// An alert's labels as a JSON object.
pub fn labels_json(labels: &Labels) -> serde_json::Value {
    labels
        .iter()
        .map(|l| (l.name.clone(), serde_json::Value::from(l.value.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn fired(store: &Store, tenant: &TenantId, group: &str, a: &Alert) -> Result<(), StateError> {
    let labels = labels_json(&a.labels);
    let annotations = serde_json::to_value(&a.annotations).unwrap_or_default();
    store
        .alert_fired(
            tenant,
            &FiredAlert {
                fingerprint: &a.id(),
                rule: a.labels.get("alertname").unwrap_or(""),
                rule_group: group,
                labels: &labels,
                annotations: &annotations,
                value: a.value,
                active_ms: a.active_at_ms,
                fired_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
            },
        )
        .await
}

/// Records a group's transitions: a fired alert opens an episode, a resolved one closes it
/// (`resolved_by` = `condition`). Every transition is tried; the first error is returned.
pub async fn record(
    store: &Store,
    tenant: &TenantId,
    group: &str,
    transitions: &[Transition],
) -> Result<(), StateError> {
    let mut first_error = None;
    for t in transitions {
        let result = match t {
            Transition::Fired(a) => fired(store, tenant, group, a).await,
            Transition::Resolved(a) => store
                .alert_resolved(
                    tenant,
                    &a.id(),
                    a.resolved_at_ms.unwrap_or_else(dozor_model::time::now_ms),
                    "condition",
                    None,
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
