//! Prometheus' rules route over the caller's tenant: `GET /api/v1/rules` (groups, their
//! rules with health, last error and evaluation times, and each alerting rule's active
//! alerts; filters `type`, `rule_name[]`, `rule_group[]`, `file[]`, `exclude_alerts`). The
//! response shape is Prometheus' in field names and formats, so Grafana's alert list
//! reads it; Dozor's own fields ride inside each alert (`id`: a stable fingerprint of the
//! alert's labels). Alerts themselves are served by the `alerts` module. Reads are
//! audited.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_model::{Labels, Scope};
use dozor_rules::{Alert, AlertState, Group, Rule, RuleKind, RuleState};
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/rules",
        Policy::Scope(Scope::Read),
        rules,
    )
}

/// RFC 3339 with nanoseconds (Go's `RFC3339Nano`); Prometheus' zero time when unset.
pub(crate) fn time(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |ms| dozor_logs::logql::rfc3339_ns(ms.saturating_mul(1_000_000)),
    )
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `2.5e-03`, `NaN`, `+Inf`.
fn float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

pub(crate) fn map(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter()
        .map(|x| (x.name.as_str(), x.value.as_str()))
        .collect()
}

pub(crate) fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "id": a.id(),
        "labels": map(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": time(Some(a.active_at_ms)),
        "value": float_e(a.value),
    });
    if let Some(since) = a.keep_firing_since_ms {
        v["keepFiringSince"] = json!(time(Some(since)));
    }
    if a.flapping {
        v["flapping"] = json!(true);
    }
    v
}

fn active(r: &RuleState) -> Vec<&Alert> {
    r.alerts_sorted()
        .into_iter()
        .filter(|a| a.state != AlertState::Inactive)
        .collect()
}

fn rule_json(r: &RuleState, with_alerts: bool) -> Value {
    let rule: &Rule = &r.rule;
    let common = |mut v: Value| {
        v["name"] = json!(rule.name);
        v["query"] = json!(rule.expr);
        v["labels"] = json!(rule.labels);
        v["health"] = json!(r.health.as_str());
        v["lastError"] = json!(r.last_error.clone().unwrap_or_default());
        v["evaluationTime"] = json!(r.last_duration.as_secs_f64());
        v["lastEvaluation"] = json!(time(r.last_eval_ms));
        v
    };
    match &rule.kind {
        RuleKind::Recording => common(json!({"type": "recording"})),
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            cooldown_ms,
            flapping,
            annotations,
        } => {
            let alerts = active(r);
            let state = alerts
                .iter()
                .map(|a| a.state)
                .max_by_key(|s| match s {
                    AlertState::Firing => 2,
                    AlertState::Pending => 1,
                    AlertState::Inactive => 0,
                })
                .unwrap_or(AlertState::Inactive);
            let mut v = common(json!({
                "type": "alerting",
                "state": state.as_str(),
                "duration": *for_ms as f64 / 1000.0,
                "keepFiringFor": *keep_firing_for_ms as f64 / 1000.0,
                "annotations": annotations,
            }));
            if *cooldown_ms > 0 {
                v["cooldown"] = json!(*cooldown_ms as f64 / 1000.0);
            }
            if let Some(f) = flapping {
                v["flapping"] =
                    json!({"window": f.window_ms as f64 / 1000.0, "threshold": f.threshold});
            }
            if with_alerts {
                v["alerts"] = alerts.into_iter().map(alert_json).collect();
            }
            v
        }
    }
}

fn group_json(g: &Group, rules: Vec<Value>) -> Value {
    json!({
        "name": g.name,
        "file": g.file,
        "interval": g.interval_ms as f64 / 1000.0,
        "limit": g.limit,
        "rules": rules,
        "evaluationTime": g.last_duration.as_secs_f64(),
        "lastEvaluation": time(g.last_eval_ms),
    })
}

async fn rules(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let kind = params.get("type").unwrap_or("");
    let want_alerts = match kind {
        "" => None,
        "alert" => Some(true),
        "record" => Some(false),
        other => {
            return Err(ApiError::bad_data(format!(
                "unsupported type {other:?}: type must be alert or record"
            )));
        }
    };
    let exclude_alerts = match params.get("exclude_alerts") {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "exclude_alerts: {other:?} is not a boolean"
            )));
        }
    };
    let names: Vec<&str> = params.all("rule_name[]").collect();
    let group_names: Vec<&str> = params.all("rule_group[]").collect();
    let files: Vec<&str> = params.all("file[]").collect();
    audit_read(&state, &principal, source, "rules", params.raw()).await?;
    let mut groups = Vec::new();
    for tg in state.rules().of_tenant(&principal.tenant) {
        let g = tg.lock();
        if (!group_names.is_empty() && !group_names.contains(&g.name.as_str()))
            || (!files.is_empty() && !files.contains(&g.file.as_str()))
        {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| want_alerts.is_none_or(|a| a == r.rule.is_alert()))
            .filter(|r| names.is_empty() || names.contains(&r.rule.name.as_str()))
            .map(|r| rule_json(r, !exclude_alerts))
            .collect();
        // Prometheus leaves out groups that filters emptied.
        if rules.is_empty() && (want_alerts.is_some() || !names.is_empty()) {
            continue;
        }
        groups.push(group_json(&g, rules));
    }
    Ok(success(json!({"groups": groups})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_times_are_formatted_as_prometheus_does() {
        assert_eq!(float_e(1.0), "1e+00");
        assert_eq!(float_e(2100.0), "2.1e+03");
        assert_eq!(float_e(0.0025), "2.5e-03");
        assert_eq!(float_e(f64::INFINITY), "+Inf");
        assert_eq!(time(None), "0001-01-01T00:00:00Z");
        assert_eq!(time(Some(1_500)), "1970-01-01T00:00:01.5Z");
    }
}
