//! Rule evaluation's wiring: one task per group evaluates it every `interval` against its
//! tenant's metric store (and log store, for LogQL groups), writing what it records (and
//! `ALERTS`) back to the metric store; the groups' counters are reported as `dozor_rule_*`
//! metrics.
//!
//! As in Prometheus, a group's evaluations are aligned to its interval with an offset from
//! a hash of its tenant, file and name (so groups spread over the interval instead of all
//! running at once, and a restart keeps the same evaluation times); an evaluation that
//! overruns skips the ticks it missed and counts them. The first evaluation after start
//! writes no `ALERTS`; the `for` timers of its pending alerts are then restored from the
//! `ALERTS_FOR_STATE` an earlier run wrote.
//!
//! Alerts that fire or resolve are recorded in the state store's alert history; after the
//! first evaluation, episodes an earlier run left open whose alert is no longer active
//! (its condition cleared while Dozor was down) are resolved. Transitions also go to the
//! Kafka alert streams of `publish.kafka`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use dozor_logs::Logs;

use crate::publish::AlertPublisher;
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::group::Sources;
use dozor_rules::{AlertState, RuleSet, TenantGroup, Transition};
use dozor_state::Store;
use dozor_tsdb::Tsdb;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::sync::watch;

/// Starts one evaluation task per group, and picks up groups added later (a tenant's
/// first structured rule); every task stops when `stop` turns true.
pub fn start(
    set: &RuleSet,
    tsdb: &Arc<Tsdb>,
    logs: &Arc<Logs>,
    store: &Store,
    alerts: &Arc<AlertPublisher>,
    limits: EngineOptions,
    stop: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let engine = Arc::new(Engine::new(limits));
    let stores = Stores {
        tsdb: Arc::clone(tsdb),
        logs: Arc::clone(logs),
        alerts: Arc::clone(alerts),
    };
    tokio::spawn(supervise(
        set.clone(),
        stores,
        store.clone(),
        engine,
        stop.clone(),
    ))
}

/// How often the supervisor looks for new groups.
const SUPERVISOR_PERIOD: Duration = Duration::from_secs(1);

async fn supervise(
    set: RuleSet,
    stores: Stores,
    store: Store,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: Vec<(TenantGroup, tokio::task::JoinHandle<()>)> = Vec::new();
    loop {
        for g in set.all() {
            if !running.iter().any(|(r, _)| Arc::ptr_eq(&r.group, &g.group)) {
                let task = tokio::spawn(run_group(
                    g.clone(),
                    stores.clone(),
                    store.clone(),
                    Arc::clone(&engine),
                    stop.clone(),
                ));
                running.push((g, task));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(SUPERVISOR_PERIOD) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, task) in running {
        let _ = task.await;
    }
}

/// Where in its interval a group evaluates, ms.
fn offset_ms(g: &TenantGroup, interval_ms: i64) -> i64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let group = g.lock();
    (g.tenant.as_str(), group.file.as_str(), group.name.as_str()).hash(&mut h);
    i64::try_from(h.finish() % interval_ms.max(1).unsigned_abs()).unwrap_or(0)
}

/// The stores rules read and write.
#[derive(Clone)]
struct Stores {
    tsdb: Arc<Tsdb>,
    logs: Arc<Logs>,
    /// Kafka topics the transitions go to (`publish.kafka[].alerts`).
    alerts: Arc<AlertPublisher>,
}

async fn run_group(
    g: TenantGroup,
    stores: Stores,
    store: Store,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) {
    let interval = g.lock().interval_ms;
    let offset = offset_ms(&g, interval);
    let mut first = true;
    let mut last_tick: Option<i64> = None;
    loop {
        let now = dozor_model::time::now_ms();
        // The next tick at or after now: t ≡ offset (mod interval).
        let next = now + (offset - now).rem_euclid(interval);
        if let Some(last) = last_tick {
            let missed = (next - last) / interval - 1;
            if missed > 0 {
                g.lock().missed += missed.unsigned_abs();
            }
        }
        let wait = Duration::from_millis((next - now).unsigned_abs());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        last_tick = Some(next);
        let (g2, stores2, engine2) = (g.clone(), stores.clone(), Arc::clone(&engine));
        let restore = first;
        let done =
            tokio::task::spawn_blocking(move || evaluate(&g2, &stores2, &engine2, next, restore))
                .await;
        match done {
            Ok(Ok(evaluated)) => {
                record(&store, &g, evaluated, first).await;
                first = false;
            }
            Ok(Err(e)) => {
                tracing::error!(tenant = %g.tenant, group = %g.lock().name, error = %e, "cannot evaluate a rule group");
            }
            Err(e) => tracing::error!(error = %e, "a rule group's evaluation panicked"),
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// What an evaluation leaves for the alert history.
struct Evaluated {
    group: String,
    transitions: Vec<Transition>,
    /// Names of the group's alerting rules.
    alert_rules: Vec<String>,
    /// Ids of the alerts pending or firing after the evaluation.
    active: Vec<String>,
}

fn evaluate(
    g: &TenantGroup,
    stores: &Stores,
    engine: &Engine,
    t: i64,
    first: bool,
) -> Result<Evaluated, String> {
    let db = stores.tsdb.tenant(&g.tenant).map_err(|e| e.to_string())?;
    let logs = stores.logs.existing(&g.tenant);
    let src = Sources {
        engine,
        metrics: db.as_ref(),
        logs: match &logs {
            Some(l) => l.as_ref(),
            None => &dozor_logs::logql::Empty,
        },
    };
    let mut group = g.lock();
    if first {
        group.await_restore();
    }
    group.eval_in(t, src, &mut |batch| {
        db.append(&batch).map(|_| ()).map_err(|e| e.to_string())
    });
    for r in group.rules.iter().filter(|r| r.last_error.is_some()) {
        tracing::warn!(tenant = %g.tenant, group = %group.name, rule = %r.rule.name, error = ?r.last_error, "rule evaluation failed");
    }
    if first {
        group.restore_for_state(t, db.as_ref());
    }
    let transitions = group.take_transitions();
    let expr_of = |name: &str| {
        group
            .rules
            .iter()
            .find(|r| r.rule.is_alert() && r.rule.name == name)
            .map(|r| r.rule.expr.clone())
    };
    stores
        .alerts
        .publish(&g.tenant, &group.name, &transitions, &expr_of);
    Ok(Evaluated {
        transitions,
        alert_rules: group
            .rules
            .iter()
            .filter(|r| r.rule.is_alert())
            .map(|r| r.rule.name.clone())
            .collect(),
        active: group
            .alerts()
            .filter(|(_, a)| a.state != AlertState::Inactive)
            .map(|(_, a)| a.id())
            .collect(),
        group: group.name.clone(),
    })
}

/// Writes the evaluation's transitions to the alert history (failures are logged: the
/// alerts themselves live on in memory and in `ALERTS`).
async fn record(store: &Store, g: &TenantGroup, e: Evaluated, first: bool) {
    if let Err(err) = dozor_api::history::record(store, &g.tenant, &e.group, &e.transitions).await {
        tracing::error!(tenant = %g.tenant, group = %e.group, error = %err, "cannot record an alert in the history");
    }
    if !first {
        return;
    }
    // Episodes left open by an earlier run whose alert is not active any more.
    let open = match store.open_alerts(&g.tenant).await {
        Ok(o) => o,
        Err(err) => {
            tracing::error!(tenant = %g.tenant, error = %err, "cannot read open alerts");
            return;
        }
    };
    let now = dozor_model::time::now_ms();
    for ep in open.iter().filter(|ep| {
        ep.rule_group == e.group
            && e.alert_rules.contains(&ep.rule)
            && !e.active.contains(&ep.fingerprint)
    }) {
        if let Err(err) = store
            .alert_resolved(&g.tenant, &ep.fingerprint, now, "condition", None)
            .await
        {
            tracing::error!(tenant = %g.tenant, error = %err, "cannot resolve a stale alert");
        }
    }
}

/// The groups' counters, encoded at each scrape of `/metrics`.
#[derive(Debug, Default)]
pub struct RuleMetrics(pub RuleSet);

impl Collector for RuleMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        struct Row {
            tenant: String,
            group: String,
            evaluations: u64,
            failures: u64,
            missed: u64,
            rules: u64,
            seconds: f64,
            pending: u64,
            firing: u64,
        }
        let rows: Vec<Row> = self
            .0
            .all()
            .iter()
            .map(|tg| {
                let g = tg.lock();
                let count = |s: AlertState| g.alerts().filter(|(_, a)| a.state == s).count() as u64;
                Row {
                    tenant: tg.tenant.to_string(),
                    group: format!("{};{}", g.file, g.name),
                    evaluations: g.evaluations,
                    failures: g.rules.iter().map(|r| r.failures).sum(),
                    missed: g.missed,
                    rules: g.rules.len() as u64,
                    seconds: g.last_duration.as_secs_f64(),
                    pending: count(AlertState::Pending),
                    firing: count(AlertState::Firing),
                }
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        type Read = fn(&Row) -> u64;
        let counters: [(&str, &str, Read); 3] = [
            (
                "dozor_rule_evaluations",
                "Evaluations of a rule group",
                |r| r.evaluations,
            ),
            (
                "dozor_rule_evaluation_failures",
                "Rule evaluations that failed",
                |r| r.failures,
            ),
            (
                "dozor_rule_group_iterations_missed",
                "Evaluations skipped because the previous one overran",
                |r| r.missed,
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in &rows {
                let labels = [
                    ("tenant", r.tenant.as_str()),
                    ("rule_group", r.group.as_str()),
                ];
                ConstCounter::new(read(r)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "dozor_rule_group_rules",
            "Rules in a group",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            let labels = [
                ("tenant", r.tenant.as_str()),
                ("rule_group", r.group.as_str()),
            ];
            ConstGauge::new(i64::try_from(r.rules).unwrap_or(i64::MAX))
                .encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "dozor_rule_group_last_duration_seconds",
            "How long the group's last evaluation took",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            let labels = [
                ("tenant", r.tenant.as_str()),
                ("rule_group", r.group.as_str()),
            ];
            ConstGauge::new(r.seconds).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "dozor_alerts",
            "Alerts by state",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            for (state, n) in [("pending", r.pending), ("firing", r.firing)] {
                let labels = [
                    ("tenant", r.tenant.as_str()),
                    ("rule_group", r.group.as_str()),
                    ("state", state),
                ];
                ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
