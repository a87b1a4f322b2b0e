//! Alert episodes in the state store's `alert_history`: what the rule scheduler writes
//! after each evaluation of a group, shared with tests that evaluate groups themselves.
//!
//! An alert whose labels carry `anomaly_type` is an anomaly as seed 001 records them: each
//! new episode also becomes a row of `anomaly_events` — `alert_type` from `anomaly_type`,
//! `alert_level` from `severity` (`warning` without one), `alert_title` from the `summary`
//! annotation (else the alert's name), `alert_message` from `description` (else the
//! title), `user_id` from the label of that name, `tags` the labels, `metrics` the value.

use dozor_model::{Labels, TenantId};
use dozor_rules::{Alert, Transition};
use dozor_state::alerts::FiredAlert;
use dozor_state::anomalies::AnomalyEvent;
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
    let fired_ms = a.fired_at_ms.unwrap_or(a.active_at_ms);
    let rule = a.labels.get("alertname").unwrap_or("");
    let opened = store
        .alert_fired(
            tenant,
            &FiredAlert {
                fingerprint: &a.id(),
                rule,
                rule_group: group,
                labels: &labels,
                annotations: &annotations,
                value: a.value,
                active_ms: a.active_at_ms,
                fired_ms,
            },
        )
        .await?;
    let (Some(episode), Some(kind)) = (opened, a.labels.get("anomaly_type")) else {
        return Ok(());
    };
    let annotation = |name: &str| a.annotations.get(name).filter(|s| !s.is_empty());
    let title = annotation("summary").map_or(rule, String::as_str);
    let value = serde_json::Number::from_f64(a.value).map_or(serde_json::Value::Null, Into::into);
    store
        .add_anomaly_event(
            tenant,
            &AnomalyEvent {
                id: episode,
                timestamp_ms: fired_ms,
                is_alert: true,
                alert_type: kind.to_owned(),
                alert_level: a.labels.get("severity").unwrap_or("warning").to_owned(),
                alert_title: title.to_owned(),
                alert_message: annotation("description")
                    .map_or(title, String::as_str)
                    .to_owned(),
                user_id: a.labels.get("user_id").map(str::to_owned),
                tags: labels,
                metrics: serde_json::json!({"value": value, "rule": rule, "group": group}),
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
