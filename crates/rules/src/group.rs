//! Evaluation of a rule group, with Prometheus' semantics (`rules/group.go`,
//! `rules/recording.go`, `rules/alerting.go`):
//!
//! - rules run in order at the evaluation time minus the group's `query_offset`; what a
//!   recording rule writes is visible to the rules after it in the same evaluation;
//! - a recording rule's result keeps its labels, takes the rule's name as `__name__` and the
//!   rule's labels on top;
//! - an alerting rule's result becomes one alert per label set (the sample's labels without
//!   `__name__`, the rule's templated labels, `alertname`); an alert is *pending* from the
//!   first evaluation that returns it, *firing* once it has been returned for `for`,
//!   keeps firing for `keep_firing_for` after its condition cleared, and is then
//!   *inactive* (resolved) and kept for 15 minutes so notifiers see the resolution;
//! - pending and firing alerts are written as `ALERTS{alertstate=…}` (value 1) and
//!   `ALERTS_FOR_STATE` (value: when the alert became active, in seconds), from which a
//!   restarted server restores its `for` timers ([`Group::restore_for_state`]);
//! - a series a rule wrote at its previous evaluation and not at this one gets a staleness
//!   marker, so queries stop seeing it at once;
//! - a rule whose result holds two equal label sets, or more than the group's `limit`, fails
//!   that evaluation with an error and writes nothing.
//!
//! Two Dozor extensions of alerting rules (seed 003), both per alert (label set):
//!
//! - `cooldown`: an alert that resolved does not fire again until `cooldown` after its
//!   resolution; meanwhile it waits as *pending*, and fires then if its condition still
//!   holds;
//! - `flapping`: an alert whose condition began to hold `threshold` times within
//!   `window` is *flapping* ([`Alert::flapping`]); it does not resolve while it flaps, so
//!   a condition that comes and goes makes one episode, not one per swing. It resolves
//!   once the condition is clear and fewer than `threshold` beginnings fall within the
//!   window.
//!
//! What these two remember (resolution times, beginnings) lives in memory and starts
//! empty after a restart.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use dozor_model::labels::stale_nan;
use dozor_model::{Labels, Matcher, Sample};
use dozor_promql::{Engine, Query, Value};
use dozor_tsdb::Queryable;

use dozor_detect::logtemplate::TemplateMiner;
use dozor_detect::{AnyDetector, Detector};

use crate::file::{Expression, Flapping, Rule, RuleGroup, RuleKind};
use crate::structured::{AnomalyExpr, Direction, LogPatternExpr, Native, NativePart};
use crate::template;

/// How long a resolved alert is kept (and reported) after it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// How far back [`Group::restore_for_state`] looks for `ALERTS_FOR_STATE`.
pub const OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;

/// The state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// Resolved: the condition no longer holds.
    Inactive,
    /// The condition holds, for less than the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`.
    Firing,
}

impl AlertState {
    /// Prometheus' name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Its identifying labels, `alertname` included.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// State.
    pub state: AlertState,
    /// When the condition started to hold, ms.
    pub active_at_ms: i64,
    /// When it started firing, ms.
    pub fired_at_ms: Option<i64>,
    /// When it resolved, ms.
    pub resolved_at_ms: Option<i64>,
    /// Since when it is kept firing (by `keep_firing_for`, or because it flaps) though
    /// its condition is clear, ms.
    pub keep_firing_since_ms: Option<i64>,
    /// Whether it flaps (see the module's documentation).
    pub flapping: bool,
    /// The expression's value at the last evaluation that returned it.
    pub value: f64,
}

impl Alert {
    /// A stable identifier of the alert: FNV-1a of its labels, 16 hex digits (the API's
    /// alert id, and the alert history's fingerprint).
    pub fn id(&self) -> String {
        fingerprint(&self.labels)
    }
}

/// FNV-1a of a label set, 16 hex digits ([`Labels::fingerprint`]).
pub fn fingerprint(l: &Labels) -> String {
    l.fingerprint()
}

/// A change of an alert that outlives the evaluation: what the alert history records.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The alert started firing.
    Fired(Alert),
    /// A firing alert resolved because its condition cleared (after `keep_firing_for`).
    Resolved(Alert),
}

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Evaluated without error.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// Prometheus' name for the health.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct RuleState {
    /// The rule.
    pub rule: Rule,
    /// Alerts by identifying labels (alerting rules only).
    pub alerts: HashMap<Labels, Alert>,
    /// Health after the last evaluation.
    pub health: Health,
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// When the rule was last evaluated, ms.
    pub last_eval_ms: Option<i64>,
    /// How long the last evaluation took.
    pub last_duration: Duration,
    /// Evaluations that failed.
    pub failures: u64,
    written: HashSet<Labels>,
    memory: HashMap<Labels, Memory>,
    /// The detectors of a structured anomaly rule: by anomaly part (`slot`), by series.
    detectors: HashMap<usize, HashMap<Labels, Tracked>>,
    /// The template miners of a structured log-pattern rule, by part (`slot`).
    patterns: HashMap<usize, Patterns>,
}

/// A log-pattern part's template miner, and when each of its shapes was first seen.
#[derive(Debug, Clone, Default)]
struct Patterns {
    miner: TemplateMiner,
    /// By shape, in the miner's order: its first line's time, ms.
    first_seen: Vec<i64>,
    /// The end of the learning period, ms (0: not evaluated yet).
    learned_at: i64,
    /// Lines up to this time (ns) have been read.
    read_ns: i64,
}

/// Most lines one evaluation of a log-pattern part reads; the rest wait for the next.
const MAX_PATTERN_LINES: usize = 50_000;
/// Longest template kept in the `template` label.
const MAX_TEMPLATE_LABEL: usize = 200;

/// A detector following one series.
#[derive(Debug, Clone)]
struct Tracked {
    detector: AnyDetector,
    /// The time of the last value it took, ms.
    last_t: i64,
}

/// Most series the detectors of one anomaly part follow.
pub const MAX_TRACKED_SERIES: usize = 10_000;

/// Most numbers the detectors of one anomaly part keep (80 MB): a long window or season
/// follows fewer series.
pub const MAX_TRACKED_VALUES: usize = 10_000_000;

/// Evaluations a series may be missing before its detector is forgotten.
const TRACKED_GRACE_EVALUATIONS: i64 = 10;

/// What cooldown and flapping detection remember of an alert, beyond its life in
/// [`RuleState::alerts`].
#[derive(Debug, Clone, Default)]
struct Memory {
    /// When it last resolved, ms.
    resolved_at_ms: Option<i64>,
    /// When its condition began to hold, within the flapping window, oldest first.
    starts: VecDeque<i64>,
}

impl Memory {
    /// Records a beginning at `ts` and drops those that left the window.
    fn start(&mut self, ts: i64, flapping: Option<Flapping>) {
        if let Some(f) = flapping {
            self.starts.push_back(ts);
            self.prune(ts, f);
        }
    }

    fn prune(&mut self, ts: i64, f: Flapping) {
        while self.starts.front().is_some_and(|&s| ts - s >= f.window_ms) {
            self.starts.pop_front();
        }
    }

    fn flapping(&mut self, ts: i64, flapping: Option<Flapping>) -> bool {
        flapping.is_some_and(|f| {
            self.prune(ts, f);
            self.starts.len() >= f.threshold as usize
        })
    }

    fn cooling(&self, ts: i64, cooldown_ms: i64) -> bool {
        self.resolved_at_ms.is_some_and(|r| ts - r < cooldown_ms)
    }
}

impl RuleState {
    /// Active (pending or firing) and recently resolved alerts, sorted by labels.
    pub fn alerts_sorted(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
}

/// A group ready to evaluate.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group as configured.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Interval between evaluations, ms.
    pub interval_ms: i64,
    /// Evaluation offset, ms.
    pub query_offset_ms: i64,
    /// Most alerts or series per rule (0: unlimited).
    pub limit: usize,
    /// The rules and their state.
    pub rules: Vec<RuleState>,
    /// When the group was last evaluated, ms.
    pub last_eval_ms: Option<i64>,
    /// How long the last evaluation took.
    pub last_duration: Duration,
    /// Evaluations of the group.
    pub evaluations: u64,
    /// Evaluations the scheduler skipped because the previous one ran too long.
    pub missed: u64,
    external_labels: BTreeMap<String, String>,
    external_url: String,
    restored: bool,
    transitions: Vec<Transition>,
}

/// What a group reads: the PromQL engine and the tenant's metrics, and its logs for LogQL
/// groups.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Runs PromQL.
    pub engine: &'a Engine,
    /// The tenant's metrics.
    pub metrics: &'a dyn Queryable,
    /// The tenant's logs and events.
    pub logs: &'a dyn dozor_logs::logql::Source,
}

/// Where evaluation writes its series (recording results, `ALERTS`, staleness markers).
pub type WriteFn<'a> = dyn FnMut(Vec<(Labels, Vec<Sample>)>) -> Result<(), String> + 'a;

impl Group {
    /// A group from its checked definition; `default_interval_ms` applies when the group
    /// sets none.
    pub fn new(spec: RuleGroup, default_interval_ms: i64) -> Group {
        Group {
            name: spec.name,
            file: spec.file,
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms).max(1),
            query_offset_ms: spec.query_offset_ms,
            limit: spec.limit,
            rules: spec
                .rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    alerts: HashMap::new(),
                    health: Health::Unknown,
                    last_error: None,
                    last_eval_ms: None,
                    last_duration: Duration::ZERO,
                    failures: 0,
                    written: HashSet::new(),
                    memory: HashMap::new(),
                    detectors: HashMap::new(),
                    patterns: HashMap::new(),
                })
                .collect(),
            last_eval_ms: None,
            last_duration: Duration::ZERO,
            evaluations: 0,
            missed: 0,
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            restored: true,
            transitions: Vec::new(),
        }
    }

    /// Sets the external labels and URL templates see.
    pub fn with_external(mut self, labels: BTreeMap<String, String>, url: String) -> Group {
        self.external_labels = labels;
        self.external_url = url;
        self
    }

    /// Holds back `ALERTS` output until [`Group::restore_for_state`] has run (a server's
    /// first evaluation after a restart).
    pub fn await_restore(&mut self) {
        self.restored = false;
    }

    /// Evaluates every rule at `t` (ms) against metrics only (a LogQL rule sees no logs),
    /// writing through `write`: [`Group::eval_in`] without logs.
    pub fn eval(
        &mut self,
        t: i64,
        engine: &Engine,
        store: &dyn Queryable,
        write: &mut WriteFn<'_>,
    ) {
        let src = Sources {
            engine,
            metrics: store,
            logs: &dozor_logs::logql::Empty,
        };
        self.eval_in(t, src, write);
    }

    /// Evaluates every rule at `t` (ms), writing through `write`. Errors are recorded per
    /// rule ([`RuleState::last_error`]); evaluation goes on with the next rule.
    pub fn eval_in(&mut self, t: i64, src: Sources<'_>, write: &mut WriteFn<'_>) {
        let started = Instant::now();
        let ts = t - self.query_offset_ms;
        for i in 0..self.rules.len() {
            let rule_started = Instant::now();
            let result = self.eval_rule(i, ts, src);
            let r = &mut self.rules[i];
            let outcome = result.and_then(|series| {
                // Series written last time and not now go stale.
                let now: HashSet<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
                let mut out: Vec<(Labels, Vec<Sample>)> = series
                    .into_iter()
                    .map(|(l, v)| (l, vec![Sample { t: ts, v }]))
                    .collect();
                for gone in r.written.difference(&now) {
                    out.push((
                        gone.clone(),
                        vec![Sample {
                            t: ts,
                            v: stale_nan(),
                        }],
                    ));
                }
                r.written = now;
                if out.is_empty() {
                    return Ok(());
                }
                write(out).map_err(|e| format!("cannot store the rule's result: {e}"))
            });
            let r = &mut self.rules[i];
            r.last_eval_ms = Some(t);
            r.last_duration = rule_started.elapsed();
            match outcome {
                Ok(()) => {
                    r.health = Health::Ok;
                    r.last_error = None;
                }
                Err(e) => {
                    r.health = Health::Err;
                    r.last_error = Some(e);
                    r.failures += 1;
                }
            }
        }
        self.evaluations += 1;
        self.last_eval_ms = Some(t);
        self.last_duration = started.elapsed();
    }

    /// Evaluates rule `i` at `ts`: the series it writes (without staleness markers).
    fn eval_rule(
        &mut self,
        i: usize,
        ts: i64,
        src: Sources<'_>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let (engine, store) = (src.engine, src.metrics);
        let interval = self.interval_ms;
        let samples = {
            let r = &mut self.rules[i];
            match &r.rule.parsed {
                Expression::Promql(e) => instant(engine, store, e, ts)?,
                Expression::Logql(e) => instant_logql(src.logs, e, ts)?,
                Expression::Native(n) => {
                    let state = State {
                        tracked: &mut r.detectors,
                        patterns: &mut r.patterns,
                    };
                    eval_native(n, state, src, ts, interval)?
                }
            }
        };
        let rule = &self.rules[i].rule;
        match &rule.kind {
            RuleKind::Recording => {
                let mut seen = HashSet::with_capacity(samples.len());
                let mut out = Vec::with_capacity(samples.len());
                for (labels, v) in samples {
                    let mut map = to_map(&labels);
                    map.insert("__name__".to_owned(), rule.name.clone());
                    for (k, val) in &rule.labels {
                        if val.is_empty() {
                            map.remove(k);
                        } else {
                            map.insert(k.clone(), val.clone());
                        }
                    }
                    let labels = Labels::from_pairs(map).map_err(|e| e.to_string())?;
                    if !seen.insert(labels.clone()) {
                        return Err("vector contains metrics with the same labelset after applying rule labels".into());
                    }
                    out.push((labels, v));
                }
                if self.limit > 0 && out.len() > self.limit {
                    return Err(format!(
                        "exceeded limit of {} with {} series",
                        self.limit,
                        out.len()
                    ));
                }
                Ok(out)
            }
            RuleKind::Alerting {
                for_ms,
                keep_firing_for_ms,
                cooldown_ms,
                flapping,
                annotations,
            } => {
                let query = |q: &str| -> Result<template::QueryRows, String> {
                    let expr = dozor_promql::parse(q).map_err(|e| e.to_string())?;
                    Ok(instant(engine, store, &expr, ts)?
                        .into_iter()
                        .map(|(l, v)| (to_map(&l), v))
                        .collect())
                };
                let mut fresh: HashMap<Labels, Alert> = HashMap::with_capacity(samples.len());
                for (labels, v) in samples {
                    let sample_map = to_map(&labels);
                    let cx = template::Context {
                        labels: &sample_map,
                        value: v,
                        external_labels: &self.external_labels,
                        external_url: &self.external_url,
                        query: Some(&query),
                    };
                    let mut map = sample_map.clone();
                    map.remove("__name__");
                    for (k, t) in &rule.labels {
                        let val = template::expand(t, &cx);
                        if val.is_empty() {
                            map.remove(k);
                        } else {
                            map.insert(k.clone(), val);
                        }
                    }
                    map.insert("alertname".to_owned(), rule.name.clone());
                    let labels = Labels::from_pairs(map).map_err(|e| e.to_string())?;
                    let annotations = annotations
                        .iter()
                        .map(|(k, t)| (k.clone(), template::expand(t, &cx)))
                        .collect();
                    let alert = Alert {
                        labels: labels.clone(),
                        annotations,
                        state: AlertState::Pending,
                        active_at_ms: ts,
                        fired_at_ms: None,
                        resolved_at_ms: None,
                        keep_firing_since_ms: None,
                        flapping: false,
                        value: v,
                    };
                    if fresh.insert(labels, alert).is_some() {
                        return Err("vector contains metrics with the same labelset after applying alert labels".into());
                    }
                }
                let (for_ms, keep_ms, cooldown_ms, flapping) =
                    (*for_ms, *keep_firing_for_ms, *cooldown_ms, *flapping);
                let restored = self.restored;
                let limit = self.limit;
                let remember = cooldown_ms > 0 || flapping.is_some();
                let r = &mut self.rules[i];
                let returned: HashSet<Labels> = fresh.keys().cloned().collect();
                for (labels, a) in fresh {
                    match r.alerts.get_mut(&labels) {
                        Some(old) if old.state != AlertState::Inactive => {
                            if remember && old.keep_firing_since_ms.is_some() {
                                // Held firing while clear, and holding again: a new start.
                                r.memory.entry(labels).or_default().start(ts, flapping);
                            }
                            old.value = a.value;
                            old.annotations = a.annotations;
                        }
                        _ => {
                            if remember {
                                r.memory
                                    .entry(labels.clone())
                                    .or_default()
                                    .start(ts, flapping);
                            }
                            r.alerts.insert(labels, a);
                        }
                    }
                }
                let mut out = Vec::new();
                let mut active = 0;
                let mut changes = Vec::new();
                let memory = &mut r.memory;
                r.alerts.retain(|labels, a| {
                    let mut scratch = Memory::default();
                    if remember && !memory.contains_key(labels) {
                        memory.insert(labels.clone(), Memory::default());
                    }
                    let mem = memory.get_mut(labels).unwrap_or(&mut scratch);
                    if a.state != AlertState::Inactive {
                        a.flapping = mem.flapping(ts, flapping);
                    }
                    if returned.contains(labels) {
                        a.keep_firing_since_ms = None;
                    } else {
                        let mut keep_firing = false;
                        if a.state == AlertState::Firing && (keep_ms > 0 || a.flapping) {
                            let since = *a.keep_firing_since_ms.get_or_insert(ts);
                            keep_firing = ts - since < keep_ms || a.flapping;
                        }
                        let drop = a.state == AlertState::Pending
                            || a.resolved_at_ms
                                .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS);
                        if drop {
                            return false;
                        }
                        if keep_firing {
                            // Still firing: reported below like a returned alert.
                        } else {
                            if a.state != AlertState::Inactive {
                                a.state = AlertState::Inactive;
                                a.resolved_at_ms = Some(ts);
                                a.flapping = false;
                                mem.resolved_at_ms = Some(ts);
                                changes.push(Transition::Resolved(a.clone()));
                            }
                            return true;
                        }
                    }
                    active += 1;
                    if a.state == AlertState::Pending
                        && ts - a.active_at_ms >= for_ms
                        && !mem.cooling(ts, cooldown_ms)
                    {
                        a.state = AlertState::Firing;
                        a.fired_at_ms = Some(ts);
                        changes.push(Transition::Fired(a.clone()));
                    }
                    if restored {
                        out.push(alerts_sample(&a.labels, a.state));
                        out.push(for_state_sample(&a.labels, a.active_at_ms));
                    }
                    true
                });
                if limit > 0 && active > limit {
                    r.alerts.clear();
                    return Err(format!("exceeded limit of {limit} with {active} alerts"));
                }
                if remember {
                    let alerts = &r.alerts;
                    r.memory.retain(|labels, m| {
                        alerts.contains_key(labels)
                            || m.cooling(ts, cooldown_ms)
                            || m.flapping(ts, flapping)
                            || !m.starts.is_empty()
                    });
                }
                self.transitions.extend(changes);
                Ok(out.into_iter().flatten().collect())
            }
        }
    }

    /// Restores the `for` timers of pending alerts from the `ALERTS_FOR_STATE` series an
    /// earlier run wrote, as Prometheus does after a restart: an alert whose condition
    /// held before the restart keeps the time it became active (within
    /// [`OUTAGE_TOLERANCE_MS`]), so a 10-minute `for` is not restarted by a deploy. Call
    /// once after the first evaluation; later evaluations then write `ALERTS` again.
    pub fn restore_for_state(&mut self, t: i64, store: &dyn Queryable) {
        let ts = t - self.query_offset_ms;
        for r in &mut self.rules {
            let RuleKind::Alerting { for_ms, .. } = r.rule.kind else {
                continue;
            };
            if for_ms == 0 {
                continue;
            }
            for a in r.alerts.values_mut() {
                if a.state != AlertState::Pending {
                    continue;
                }
                let mut matchers = vec![Matcher::equal("__name__", "ALERTS_FOR_STATE")];
                matchers.extend(
                    a.labels
                        .iter()
                        .map(|l| Matcher::equal(l.name.clone(), l.value.clone())),
                );
                let Ok(series) = store.select(&matchers, ts - OUTAGE_TOLERANCE_MS, ts) else {
                    continue;
                };
                // The series with exactly the alert's labels, and its newest real sample.
                let restored = series
                    .iter()
                    .filter(|s| s.labels.len() == a.labels.len() + 1)
                    .flat_map(|s| s.samples.iter())
                    .filter(|x| !dozor_model::labels::is_stale_nan(x.v) && x.v.is_finite())
                    .max_by_key(|x| x.t)
                    .map(|x| (x.v * 1000.0).round() as i64);
                if let Some(active_at) = restored.filter(|&at| at < a.active_at_ms) {
                    a.active_at_ms = active_at;
                }
            }
        }
        self.restored = true;
    }

    /// Takes over what `old` (the previous version of this group) knew: a rule with the
    /// same name, labels and expression keeps its state (alerts, `for` timers, cooldown and
    /// flapping memory, detectors); the active alerts of `old`'s other rules resolve at
    /// `now_ms` (reported by [`Group::take_transitions`]), as their rule changed or went
    /// away. Counters and transitions not yet taken carry over too.
    pub fn adopt(&mut self, old: Group, now_ms: i64) {
        let mut old_rules: Vec<Option<RuleState>> = old.rules.into_iter().map(Some).collect();
        for r in &mut self.rules {
            let same = old_rules.iter_mut().find(|o| {
                o.as_ref().is_some_and(|o| {
                    o.rule.name == r.rule.name
                        && o.rule.expr == r.rule.expr
                        && o.rule.labels == r.rule.labels
                })
            });
            if let Some(mut prev) = same.and_then(Option::take) {
                // The old state under the new rule (its `for`, annotations… may differ).
                std::mem::swap(&mut prev.rule, &mut r.rule);
                *r = prev;
            }
        }
        self.transitions = old.transitions;
        for gone in old_rules.into_iter().flatten() {
            for mut a in gone.alerts.into_values() {
                if a.state == AlertState::Firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(now_ms);
                    self.transitions.push(Transition::Resolved(a));
                }
            }
        }
        self.evaluations = old.evaluations;
        self.missed = old.missed;
        self.last_eval_ms = old.last_eval_ms;
        self.last_duration = old.last_duration;
        self.restored = old.restored;
    }

    /// The alerts that fired or resolved since the last call, in order.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    /// Resolves a pending or firing alert by hand (`id`: [`Alert::id`]): it becomes
    /// inactive now; if its condition still holds, the next evaluation starts a new alert.
    /// Returns the alert as it was, `None` when no active alert has that id.
    pub fn resolve(&mut self, id: &str, at_ms: i64) -> Option<Alert> {
        self.rules.iter_mut().find_map(|r| {
            let a = r
                .alerts
                .values_mut()
                .find(|a| a.state != AlertState::Inactive && a.id() == id)?;
            let before = a.clone();
            a.state = AlertState::Inactive;
            a.resolved_at_ms = Some(at_ms);
            a.keep_firing_since_ms = None;
            a.flapping = false;
            if let Some(m) = r.memory.get_mut(&a.labels) {
                m.resolved_at_ms = Some(at_ms);
            }
            Some(before)
        })
    }

    /// Every alert of every alerting rule, with its rule.
    pub fn alerts(&self) -> impl Iterator<Item = (&Rule, &Alert)> {
        self.rules
            .iter()
            .flat_map(|r| r.alerts.values().map(move |a| (&r.rule, a)))
    }
}

/// Runs `expr` at `ts` as an instant query: its samples (a scalar is one sample without
/// labels).
pub fn instant(
    engine: &Engine,
    store: &dyn Queryable,
    expr: &promql_parser::parser::Expr,
    ts: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let q = Query {
        expr: "",
        start: ts,
        end: ts,
        step: 1,
        instant: true,
        cancel: None,
    };
    let res = engine
        .eval_expr(store, expr, &q)
        .map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

/// Evaluates a structured rule's native expression at `ts`: an anomaly part feeds each
/// series' value to its detector and returns the series whose score passes, valued by the
/// score; a composite evaluates every part (so every detector sees every value) and
/// returns one label-less sample, its score, when the score passes.
fn eval_native(
    n: &Native,
    state: State<'_>,
    src: Sources<'_>,
    ts: i64,
    step: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let State { tracked, patterns } = state;
    match n {
        Native::Anomaly(a) => anomaly(a, tracked.entry(a.slot).or_default(), src, ts, step),
        Native::LogPattern(p) => log_patterns(p, patterns.entry(p.slot).or_default(), src, ts),
        Native::Composite { parts, threshold } => {
            let (mut score, mut total) = (0.0, 0.0);
            for (weight, part) in parts {
                let holds = match part {
                    NativePart::Promql(e) => !instant(src.engine, src.metrics, e, ts)?.is_empty(),
                    NativePart::Native(n) => {
                        let state = State {
                            tracked: &mut *tracked,
                            patterns: &mut *patterns,
                        };
                        !eval_native(n, state, src, ts, step)?.is_empty()
                    }
                };
                total += weight;
                if holds {
                    score += weight;
                }
            }
            let score = if total > 0.0 { score / total } else { 0.0 };
            let passes = threshold.map_or(score > 0.0, |t| score >= t);
            Ok(if passes {
                vec![(Labels::default(), score)]
            } else {
                Vec::new()
            })
        }
    }
}

/// The state a structured rule's native parts keep between evaluations.
struct State<'a> {
    tracked: &'a mut HashMap<usize, HashMap<Labels, Tracked>>,
    patterns: &'a mut HashMap<usize, Patterns>,
}

/// One log-pattern part at `ts`: reads the lines since the last evaluation (the first one
/// reads the learning period from history: its templates are known), and returns each
/// template first seen after learning, within `new_for`, with at least `min_cluster_size`
/// lines — labelled `template`, valued by its line count.
fn log_patterns(
    p: &LogPatternExpr,
    st: &mut Patterns,
    src: Sources<'_>,
    ts: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    use dozor_logs::logql::{Range, Stats, select_lines};
    let ns = ts.saturating_mul(1_000_000);
    if st.learned_at == 0 {
        st.learned_at = ts;
        st.read_ns = ns.saturating_sub(p.learn_ms.saturating_mul(1_000_000));
    }
    if ns > st.read_ns {
        let range = Range {
            start_ns: st.read_ns.saturating_add(1),
            end_ns: ns,
            step_ns: 0,
            limit: MAX_PATTERN_LINES,
            direction: dozor_logs::Direction::Forward,
        };
        let lines = select_lines(src.logs, &p.query, range, &mut Stats::default())
            .map_err(|e| e.to_string())?;
        for l in &lines {
            let before = st.miner.shapes();
            st.miner.push(&l.line);
            let after = st.miner.shapes();
            if after > before {
                st.first_seen.push(l.time_ns / 1_000_000);
            } else if after < before || after != st.first_seen.len() {
                // The miner forgot its rarest shapes and renumbered the rest: what is
                // left counts as known.
                st.first_seen = vec![st.learned_at; after];
            }
        }
        // A full page: continue after its last line next time (lines at exactly that
        // time beyond the page are skipped, a bounded loss under overload).
        st.read_ns = match lines.last() {
            Some(last) if lines.len() == MAX_PATTERN_LINES => last.time_ns,
            _ => ns,
        };
    }
    let clusters = st.miner.clusters();
    let mut earliest = vec![i64::MAX; clusters.templates().len()];
    for (shape, &cluster) in clusters.shape_clusters().iter().enumerate() {
        if let (Some(e), Some(&t)) = (earliest.get_mut(cluster), st.first_seen.get(shape)) {
            *e = (*e).min(t);
        }
    }
    let mut out = Vec::new();
    for ((template, lines), first) in clusters.templates().iter().zip(earliest) {
        if first > st.learned_at
            && first != i64::MAX
            && ts - first <= p.new_for_ms
            && *lines >= p.min_cluster_size
        {
            let mut end = template.len().min(MAX_TEMPLATE_LABEL);
            while !template.is_char_boundary(end) {
                end -= 1;
            }
            let labels =
                Labels::from_pairs([("template", &template[..end])]).map_err(|e| e.to_string())?;
            out.push((labels, *lines as f64));
        }
    }
    Ok(out)
}

/// One anomaly part at `ts`. A series seen for the first time gets a detector warmed up on
/// the input's history at the group's step (one range query for all new series); then
/// each evaluation feeds each series its current value.
fn anomaly(
    a: &AnomalyExpr,
    series: &mut HashMap<Labels, Tracked>,
    src: Sources<'_>,
    ts: i64,
    step: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let now = instant(src.engine, src.metrics, &a.input, ts)?;
    let new: HashSet<&Labels> = now
        .iter()
        .map(|(l, _)| l)
        .filter(|l| !series.contains_key(*l))
        .collect();
    let most = (MAX_TRACKED_VALUES / a.detector.memory().max(1)).min(MAX_TRACKED_SERIES);
    if series.len() + new.len() > most {
        return Err(format!(
            "the detector would follow {} series; with this window or season at most {most}",
            series.len() + new.len()
        ));
    }
    let step = step.max(1);
    let warm = i64::try_from(a.detector.history()).unwrap_or(i64::MAX);
    let (start, end) = (ts.saturating_sub(warm.saturating_mul(step)), ts - step);
    if !new.is_empty() && end >= start {
        let q = Query {
            expr: "",
            start,
            end,
            step,
            instant: false,
            cancel: None,
        };
        let history = src
            .engine
            .eval_expr(src.metrics, &a.input, &q)
            .map_err(|e| format!("cannot read the detector's history: {e}"))?;
        if let Value::Matrix(m) = history.value {
            for s in m.into_iter().filter(|s| new.contains(&s.labels)) {
                let mut detector = a.detector.build();
                let mut last_t = i64::MIN;
                for p in &s.samples {
                    detector.update(p.v);
                    last_t = p.t;
                }
                series.insert(s.labels, Tracked { detector, last_t });
            }
        }
    }
    let k = a.sensitivity;
    let mut out = Vec::new();
    for (labels, v) in now {
        let t = series.entry(labels.clone()).or_insert_with(|| Tracked {
            detector: a.detector.build(),
            last_t: i64::MIN,
        });
        if t.last_t >= ts {
            continue;
        }
        t.last_t = ts;
        let Some(score) = t.detector.update(v) else {
            continue;
        };
        let hit = match a.side {
            Direction::Up => score >= k,
            Direction::Down => score <= -k,
            Direction::Both => score.abs() >= k,
        };
        if hit {
            out.push((labels, score));
        }
    }
    series.retain(|_, t| ts - t.last_t <= TRACKED_GRACE_EVALUATIONS * step);
    Ok(out)
}

/// Runs a LogQL metric query at `ts` (ms) as an instant query.
pub fn instant_logql(
    logs: &dyn dozor_logs::logql::Source,
    expr: &dozor_logs::logql::Expr,
    ts: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    use dozor_logs::logql::{QueryResult, Range, evaluate};
    let ns = ts.saturating_mul(1_000_000);
    let range = Range {
        start_ns: ns,
        end_ns: ns,
        step_ns: 0,
        limit: 0,
        direction: dozor_logs::Direction::Backward,
    };
    let (result, _) = evaluate(logs, expr, range).map_err(|e| e.to_string())?;
    match result {
        QueryResult::Vector(series) | QueryResult::Matrix(series) => series
            .into_iter()
            .filter_map(|s| Some((s.labels, s.points.last()?.1)))
            .map(|(labels, v)| match Labels::from_pairs(labels) {
                Ok(l) => Ok((l, v)),
                // No labels left (`sum(...)`, or `sum by (user_id)` over records without
                // one: empty values are dropped): the empty set, as PromQL has it.
                Err(dozor_model::LabelsError::Empty) => Ok((Labels::default(), v)),
                Err(e) => Err(e.to_string()),
            })
            .collect(),
        QueryResult::Scalar(_, v) => Ok(vec![(Labels::default(), v)]),
        QueryResult::Streams(_) => Err("rule result is a log query, not a metric query".into()),
    }
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

fn alerts_sample(labels: &Labels, state: AlertState) -> Option<(Labels, f64)> {
    let mut map = to_map(labels);
    map.insert("__name__".into(), "ALERTS".into());
    map.insert("alertstate".into(), state.as_str().into());
    Some((Labels::from_pairs(map).ok()?, 1.0))
}

fn for_state_sample(labels: &Labels, active_at_ms: i64) -> Option<(Labels, f64)> {
    let mut map = to_map(labels);
    map.insert("__name__".into(), "ALERTS_FOR_STATE".into());
    Some((Labels::from_pairs(map).ok()?, active_at_ms as f64 / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemStore;

    pub(super) fn group(yaml: &str) -> Group {
        let mut g = crate::file::parse(yaml, "t.yml").unwrap();
        Group::new(g.remove(0), 10_000)
    }

    pub(super) fn series(store: &MemStore, name: &str, job: &str, points: &[(i64, f64)]) {
        store.append(
            Labels::from_pairs([("__name__", name), ("job", job)]).unwrap(),
            points.iter().map(|&(t, v)| Sample { t, v }),
        );
    }

    pub(super) fn eval(g: &mut Group, store: &MemStore, t: i64) -> Vec<(Labels, Vec<Sample>)> {
        let mut written = Vec::new();
        g.eval(t, &Engine::new(EngineOptions::default()), store, &mut |b| {
            for (l, s) in &b {
                store.append(l.clone(), s.iter().copied());
            }
            written.extend(b);
            Ok(())
        });
        written
    }

    use dozor_promql::EngineOptions;

    #[test]
    fn keep_firing_for_holds_a_resolved_condition_then_resolves() {
        let mut g = group(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    keep_firing_for: 20s\n",
        );
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 1.0), (10_000, 0.0)]);
        eval(&mut g, &store, 0);
        let state = |g: &Group| {
            g.alerts()
                .next()
                .map(|(_, a)| (a.state, a.keep_firing_since_ms, a.resolved_at_ms))
        };
        assert_eq!(state(&g), Some((AlertState::Firing, None, None)));
        eval(&mut g, &store, 10_000);
        assert_eq!(state(&g), Some((AlertState::Firing, Some(10_000), None)));
        eval(&mut g, &store, 29_999);
        assert_eq!(state(&g), Some((AlertState::Firing, Some(10_000), None)));
        eval(&mut g, &store, 30_000);
        assert_eq!(
            state(&g),
            Some((AlertState::Inactive, Some(10_000), Some(30_000)))
        );
        // Kept (reported as resolved) for 15 minutes, then forgotten.
        eval(&mut g, &store, 30_000 + RESOLVED_RETENTION_MS);
        assert!(state(&g).is_some());
        eval(&mut g, &store, 30_001 + RESOLVED_RETENTION_MS);
        assert!(state(&g).is_none());
    }

    #[test]
    fn a_pending_alert_that_clears_is_dropped_and_starts_over() {
        let mut g =
            group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 20s\n");
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 1.0), (10_000, 0.0), (20_000, 1.0)]);
        eval(&mut g, &store, 0);
        eval(&mut g, &store, 10_000);
        assert_eq!(g.alerts().count(), 0);
        eval(&mut g, &store, 20_000);
        let (_, a) = g.alerts().next().unwrap();
        assert_eq!((a.state, a.active_at_ms), (AlertState::Pending, 20_000));
    }

    #[test]
    fn duplicate_label_sets_and_limits_fail_the_rule() {
        let mut g = group(
            "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: x\n  - alert: A\n    expr: x > 0\n  - alert: B\n    expr: sum without (job) (x) > 0 or x\n",
        );
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 1.0)]);
        series(&store, "x", "b", &[(0, 1.0)]);
        let written = eval(&mut g, &store, 0);
        assert!(written.is_empty(), "{written:?}");
        assert_eq!(
            g.rules[0].last_error.as_deref(),
            Some("exceeded limit of 1 with 2 series")
        );
        assert_eq!(
            g.rules[1].last_error.as_deref(),
            Some("exceeded limit of 1 with 2 alerts")
        );
        assert_eq!(g.rules[0].health, Health::Err);
        assert_eq!(g.rules[0].failures, 1);
        g.limit = 0;
        eval(&mut g, &store, 10_000);
        assert_eq!(g.rules[0].last_error, None);
        assert_eq!(
            g.rules[2].last_error, None,
            "`or` keeps distinct label sets"
        );
        let mut g = group(
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n    labels: {job: same}\n",
        );
        eval(&mut g, &store, 0);
        assert!(
            g.rules[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("same labelset")
        );
    }

    #[test]
    fn query_offset_evaluates_in_the_past_and_series_go_stale() {
        let mut g =
            group("groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: r\n    expr: x\n");
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 5.0)]);
        let written = eval(&mut g, &store, 60_000);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].1, [Sample { t: 0, v: 5.0 }]);
        // x is gone from the result once its lookback window ends: r gets a staleness marker.
        let written = eval(&mut g, &store, 60_000 + 301_000);
        assert_eq!(written.len(), 1);
        assert!(dozor_model::labels::is_stale_nan(written[0].1[0].v));
        assert!(eval(&mut g, &store, 60_000 + 302_000).is_empty());
    }

    #[test]
    fn for_state_is_restored_from_an_earlier_run() {
        let rules = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 1m\n";
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 1.0)]);
        let mut first = group(rules);
        eval(&mut first, &store, 0);
        eval(&mut first, &store, 10_000);
        // A new process: its first evaluation writes no ALERTS, then restores.
        let mut second = group(rules);
        second.await_restore();
        let written = eval(&mut second, &store, 30_000);
        assert!(
            written
                .iter()
                .all(|(l, _)| l.metric_name() != Some("ALERTS")),
            "{written:?}"
        );
        second.restore_for_state(30_000, &store);
        assert_eq!(second.alerts().next().unwrap().1.active_at_ms, 0);
        eval(&mut second, &store, 60_000);
        assert_eq!(second.alerts().next().unwrap().1.state, AlertState::Firing);
    }
}

#[cfg(test)]
mod transition_tests {
    use super::tests::{eval, group, series};
    use super::*;
    use crate::mem::MemStore;
    use dozor_promql::EngineOptions;

    #[test]
    fn firing_and_resolution_are_reported_once_and_ids_are_stable() {
        let mut g = Group::new(
            crate::file::parse(
                "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 10s\n",
                "t.yml",
            )
            .unwrap()
            .remove(0),
            10_000,
        );
        let store = MemStore::new();
        let x = Labels::from_pairs([("__name__", "x"), ("job", "a")]).unwrap();
        store.append(
            x,
            [(0, 1.0), (10_000, 1.0), (20_000, 1.0), (30_000, 0.0)].map(|(t, v)| Sample { t, v }),
        );
        let engine = Engine::new(EngineOptions::default());
        let step = |g: &mut Group, t| {
            g.eval(t, &engine, &store, &mut |_| Ok(()));
            g.take_transitions()
        };
        assert!(step(&mut g, 0).is_empty());
        let fired = step(&mut g, 10_000);
        let [Transition::Fired(a)] = fired.as_slice() else {
            panic!("{fired:?}")
        };
        assert_eq!((a.active_at_ms, a.fired_at_ms), (0, Some(10_000)));
        assert!(step(&mut g, 20_000).is_empty());
        let resolved = step(&mut g, 30_000);
        let [Transition::Resolved(r)] = resolved.as_slice() else {
            panic!("{resolved:?}")
        };
        assert_eq!(r.id(), a.id());
        assert_eq!(a.id().len(), 16);
        let other = Labels::from_pairs([("alertname", "A"), ("job", "b")]).unwrap();
        assert_ne!(fingerprint(&other), a.id());
    }

    #[test]
    fn a_hand_resolved_alert_starts_over_while_its_condition_holds() {
        let mut g = Group::new(
            crate::file::parse(
                "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n",
                "t.yml",
            )
            .unwrap()
            .remove(0),
            10_000,
        );
        let store = MemStore::new();
        store.append(
            Labels::from_pairs([("__name__", "x")]).unwrap(),
            [Sample { t: 0, v: 1.0 }],
        );
        let engine = Engine::new(EngineOptions::default());
        g.eval(0, &engine, &store, &mut |_| Ok(()));
        let id = g.alerts().next().unwrap().1.id();
        assert!(g.resolve("nope", 5_000).is_none());
        assert_eq!(g.resolve(&id, 5_000).unwrap().state, AlertState::Firing);
        assert!(g.resolve(&id, 6_000).is_none(), "already resolved");
        assert_eq!(g.alerts().next().unwrap().1.state, AlertState::Inactive);
        g.take_transitions();
        g.eval(10_000, &engine, &store, &mut |_| Ok(()));
        let (_, a) = g.alerts().next().unwrap();
        assert_eq!((a.state, a.active_at_ms), (AlertState::Firing, 10_000));
        assert!(matches!(
            g.take_transitions().as_slice(),
            [Transition::Fired(_)]
        ));
    }

    /// Evaluates `g` once a minute over `xs` (the value of `x` at each minute) and
    /// returns, per minute, the alert's state and whether it flaps, and the transitions.
    fn run_minutes(g: &mut Group, xs: &[f64]) -> (Vec<(AlertState, bool)>, Vec<String>) {
        let store = MemStore::new();
        let points: Vec<(i64, f64)> = xs
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 60_000, v))
            .collect();
        series(&store, "x", "a", &points);
        let mut states = Vec::new();
        let mut changes = Vec::new();
        for i in 0..xs.len() {
            let t = i as i64 * 60_000;
            eval(g, &store, t);
            assert!(
                g.rules[0].last_error.is_none(),
                "{:?}",
                g.rules[0].last_error
            );
            states.push(
                g.alerts()
                    .next()
                    .map_or((AlertState::Inactive, false), |(_, a)| {
                        (a.state, a.flapping)
                    }),
            );
            for tr in g.take_transitions() {
                changes.push(match tr {
                    Transition::Fired(_) => format!("fired@{i}"),
                    Transition::Resolved(_) => format!("resolved@{i}"),
                });
            }
        }
        (states, changes)
    }

    #[test]
    fn cooldown_holds_a_returning_alert_pending_until_it_has_passed() {
        let yaml =
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    cooldown: 5m\n";
        let mut g = group(yaml);
        // Fires, clears at 1, holds again from 2 on: cooling until 1 + 5 = 6.
        let (states, changes) = run_minutes(&mut g, &[1., 0., 1., 1., 1., 1., 1., 1.]);
        assert_eq!(changes, ["fired@0", "resolved@1", "fired@6"]);
        assert_eq!(states[3], (AlertState::Pending, false));
        assert_eq!(states[6], (AlertState::Firing, false));

        // A condition that clears again during the cooldown never fires.
        let mut g = group(yaml);
        let (_, changes) = run_minutes(&mut g, &[1., 0., 1., 0., 1., 0., 0.]);
        assert_eq!(changes, ["fired@0", "resolved@1"]);

        // Without cooldown, every swing is an episode.
        let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n");
        let (_, changes) = run_minutes(&mut g, &[1., 0., 1., 0.]);
        assert_eq!(changes, ["fired@0", "resolved@1", "fired@2", "resolved@3"]);
    }

    #[test]
    fn a_flapping_alert_stays_firing_until_it_calms_down() {
        let mut g = group(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    flapping:\n      window: 10m\n      threshold: 3\n",
        );
        // Starts at 0, 2, 4 and 6; the third makes it flap, so it holds through 5 and
        // 7..11 and resolves at 12, when the start at 2 has left the window.
        let xs = [1., 0., 1., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0.];
        let (states, changes) = run_minutes(&mut g, &xs);
        assert_eq!(
            changes,
            [
                "fired@0",
                "resolved@1",
                "fired@2",
                "resolved@3",
                "fired@4",
                "resolved@12"
            ]
        );
        assert_eq!(states[3], (AlertState::Inactive, false));
        assert_eq!(states[4], (AlertState::Firing, true));
        assert_eq!(states[5], (AlertState::Firing, true));
        assert_eq!(states[11], (AlertState::Firing, true));
        assert_eq!(states[12], (AlertState::Inactive, false));
        let (_, a) = g.alerts().next().unwrap();
        assert_eq!(a.resolved_at_ms, Some(12 * 60_000));
        // Memory of the episode is dropped once nothing needs it.
        assert!(g.rules[0].memory.values().all(|m| m.starts.len() < 3));
    }

    #[test]
    fn cooldown_and_flapping_are_checked_in_rule_files() {
        let errors = |yaml: &str| match crate::file::parse(yaml, "t.yml") {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        let rule = |extra: &str| {
            format!("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n{extra}")
        };
        assert!(errors(&rule("    cooldown: 5m\n")).is_empty());
        let e = errors(&rule("    cooldown: soon\n"));
        assert!(e[0].contains("cooldown: "), "{e:?}");
        let e = errors(&rule(
            "    flapping:\n      window: 10m\n      threshold: 1\n",
        ));
        assert!(
            e[0].contains("flapping.threshold: must be at least 2"),
            "{e:?}"
        );
        let e = errors(&rule(
            "    flapping:\n      window: 0s\n      threshold: 3\n",
        ));
        assert!(e[0].contains("flapping.window: must be positive"), "{e:?}");
        let e = errors(&rule("    flapping:\n      threshold: 3\n"));
        assert!(!e.is_empty() && e[0].contains("window"), "{e:?}");
        let e =
            errors("groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n    cooldown: 5m\n");
        assert!(
            e[0].contains("invalid field 'cooldown' in recording rule"),
            "{e:?}"
        );
    }

    fn structured(json: &str) -> Group {
        let spec = crate::structured::from_json(json.as_bytes()).unwrap();
        let (g, failed) = crate::structured::managed_group([("r1", &spec)], None);
        assert!(failed.is_empty(), "{failed:?}");
        Group::new(g, 60_000)
    }

    /// `x{job="a"}` and `x{job="b"}`, a value a minute for `minutes`: 100 plus small noise,
    /// and `a` jumps to 150 at minute 40.
    fn noisy_store(minutes: i64) -> MemStore {
        let store = MemStore::new();
        for job in ["a", "b"] {
            let points: Vec<(i64, f64)> = (0..minutes)
                .map(|i| {
                    let noise = ((i * 7919 + job.len() as i64 * 31) % 13) as f64 / 13.0 - 0.5;
                    let v = if job == "a" && i == 40 {
                        150.0
                    } else {
                        100.0 + noise
                    };
                    (i * 60_000, v)
                })
                .collect();
            series(&store, "x", job, &points);
        }
        store
    }

    #[test]
    fn an_anomaly_rule_warms_its_detectors_on_history_and_fires_on_the_spike() {
        let mut g = structured(
            r#"{"name": "Odd", "condition": {"type": "anomaly", "metric": "x", "detector": "mad", "window": 20}}"#,
        );
        let store = noisy_store(46);
        let mut fired = Vec::new();
        // Evaluation starts at minute 30: the detectors learn minutes 10..29 from history.
        for minute in 30..46 {
            eval(&mut g, &store, minute * 60_000);
            assert!(
                g.rules[0].last_error.is_none(),
                "{:?}",
                g.rules[0].last_error
            );
            if minute == 30 {
                assert_eq!(g.rules[0].detectors[&0].len(), 2, "both series followed");
            }
            for tr in g.take_transitions() {
                if let Transition::Fired(a) = tr {
                    fired.push((minute, a));
                }
            }
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        let (minute, a) = &fired[0];
        assert_eq!(*minute, 40);
        assert_eq!(a.labels.get("job"), Some("a"));
        assert_eq!(a.labels.get("rule_id"), Some("r1"));
        assert_eq!(a.labels.get("severity"), Some("warning"));
        assert!(a.value > 20.0, "the score: {}", a.value);
    }

    #[test]
    fn a_log_pattern_rule_fires_on_a_new_error_template_and_not_on_known_ones() {
        let mut g = structured(
            r#"{"name": "NewErrorPattern", "condition": {"type": "log_pattern", "query": "{level=\"error\"}", "min_cluster_size": 3, "learn": "30m", "new_for": "10m"}}"#,
        );
        let record = |minute: i64, i: i64, level: &str, message: String| {
            let stream = Labels::from_pairs([("service", "kkt"), ("level", level)]).unwrap();
            dozor_model::LogRecord::new((minute * 60_000 + i) * 1_000_000, stream, message)
        };
        let mut logs = Vec::new();
        // Minutes 0..40: a known error, every minute, with changing values.
        for minute in 0..60 {
            logs.push(record(
                minute,
                0,
                "error",
                format!("driver error 137 on register {}", 1000 + minute),
            ));
        }
        // From minute 45: a new error, four lines a minute apart, and info lines of a new
        // shape, which the query does not select.
        for (n, minute) in (45..49).enumerate() {
            logs.push(record(
                minute,
                1,
                "error",
                format!("FN archive full at document {}", 5000 + n * 17),
            ));
            logs.push(record(
                minute,
                2,
                "info",
                format!("shift {minute} opened by cashier {n}"),
            ));
        }
        let store = MemStore::new();
        let engine = Engine::new(EngineOptions::default());
        let mut fired = Vec::new();
        let mut resolved = Vec::new();
        for minute in 40..62 {
            let src = Sources {
                engine: &engine,
                metrics: &store,
                logs: &logs,
            };
            g.eval_in(minute * 60_000, src, &mut |_| Ok(()));
            assert!(
                g.rules[0].last_error.is_none(),
                "{:?}",
                g.rules[0].last_error
            );
            for tr in g.take_transitions() {
                match tr {
                    Transition::Fired(a) => fired.push((minute, a)),
                    Transition::Resolved(a) => resolved.push((minute, a)),
                }
            }
        }
        // The third line of the new template came just after minute 47 (seen at 48); new
        // for 10 minutes from its first line (just after 45), so resolved at 56.
        assert_eq!(fired.len(), 1, "{fired:?}");
        let (minute, a) = &fired[0];
        assert_eq!(*minute, 48);
        assert_eq!(
            a.labels.get("template"),
            Some("FN archive full at document <*>")
        );
        assert_eq!(a.value, 3.0);
        assert_eq!(resolved.iter().map(|(m, _)| *m).collect::<Vec<_>>(), [56]);
        assert_eq!(
            g.rules[0].rule.expr,
            "new_log_patterns({level=\"error\"}, min_cluster_size=3, learn=30m, new_for=10m)"
        );
    }

    #[test]
    fn a_cusum_rule_fires_on_a_small_lasting_shift_no_single_value_shows() {
        let mut g = structured(
            r#"{"name": "Shift", "condition": {"type": "anomaly", "metric": "x", "detector": "cusum", "direction": "up"}}"#,
        );
        let store = MemStore::new();
        for job in ["a", "b"] {
            let points: Vec<(i64, f64)> = (0..160)
                .map(|i| {
                    // Noise within ±0.5; `a` settles 0.5 higher at minute 140, its values
                    // still inside the range the noise covered before.
                    let noise = ((i * 7919 + job.len() as i64 * 31) % 13) as f64 / 13.0 - 0.5;
                    let shift = if job == "a" && i >= 140 { 0.5 } else { 0.0 };
                    (i * 60_000, 100.0 + noise + shift)
                })
                .collect();
            series(&store, "x", job, &points);
        }
        let mut fired = Vec::new();
        // The detectors learn minutes 20..119 from history.
        for minute in 120..160 {
            eval(&mut g, &store, minute * 60_000);
            assert!(
                g.rules[0].last_error.is_none(),
                "{:?}",
                g.rules[0].last_error
            );
            for tr in g.take_transitions() {
                if let Transition::Fired(a) = tr {
                    fired.push((minute, a.labels.get("job").map(str::to_owned)));
                }
            }
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        let (minute, job) = &fired[0];
        assert_eq!(job.as_deref(), Some("a"));
        assert!((141..=152).contains(minute), "found at minute {minute}");
    }

    #[test]
    fn a_composite_with_an_anomaly_part_scores_its_parts() {
        let mut g = structured(
            r#"{"name": "Both", "condition": {"type": "composite", "operator": "and", "conditions": [
                {"type": "anomaly", "metric": "x{job=\"a\"}", "detector": "ewma", "alpha": 0.2, "direction": "up"},
                {"type": "threshold", "metric": "x", "operator": ">", "value": 120}]}}"#,
        );
        let store = noisy_store(46);
        let mut fired = Vec::new();
        for minute in 20..46 {
            eval(&mut g, &store, minute * 60_000);
            assert!(
                g.rules[0].last_error.is_none(),
                "{:?}",
                g.rules[0].last_error
            );
            for tr in g.take_transitions() {
                if let Transition::Fired(a) = tr {
                    fired.push((minute, a.value, a.labels.get("job").map(str::to_owned)));
                }
            }
        }
        assert_eq!(fired, [(40, 1.0, None)]);
    }

    #[test]
    fn adopting_a_new_version_keeps_unchanged_rules_and_resolves_the_others() {
        let store = MemStore::new();
        series(&store, "x", "a", &[(0, 5.0)]);
        let yaml = |second: &str| {
            format!(
                "groups:\n- name: g\n  rules:\n  - alert: Keep\n    expr: x > 1\n    for: 1m\n  - alert: Change\n    expr: {second}\n"
            )
        };
        let mut g = group(&yaml("x > 2"));
        eval(&mut g, &store, 0);
        eval(&mut g, &store, 30_000);
        let fired = g.take_transitions().len();
        assert_eq!(fired, 1, "Change fired at once, Keep waits out its for");
        let mut next = group(&yaml("x > 3"));
        next.adopt(g, 40_000);
        let keep = &next.rules[0];
        assert_eq!(keep.alerts.len(), 1, "Keep's pending alert carried over");
        assert_eq!(keep.alerts.values().next().unwrap().active_at_ms, 0);
        assert!(next.rules[1].alerts.is_empty(), "Change starts afresh");
        let resolved = next.take_transitions();
        assert!(
            matches!(resolved.as_slice(), [Transition::Resolved(a)] if a.labels.get("alertname") == Some("Change") && a.resolved_at_ms == Some(40_000)),
            "{resolved:?}"
        );
        assert_eq!(next.evaluations, 2);
        eval(&mut next, &store, 60_000);
        let names: Vec<String> = next
            .take_transitions()
            .into_iter()
            .map(|t| match t {
                Transition::Fired(a) => format!("fired {}", a.labels.get("alertname").unwrap()),
                Transition::Resolved(a) => {
                    format!("resolved {}", a.labels.get("alertname").unwrap())
                }
            })
            .collect();
        assert_eq!(
            names,
            ["fired Keep", "fired Change"],
            "Keep's for timer ran on"
        );
    }

    #[test]
    fn detectors_are_bounded_by_the_memory_they_would_take() {
        let mut g = structured(
            r#"{"name": "Big", "condition": {"type": "anomaly", "metric": "x", "detector": "holt_winters", "period": 100000}}"#,
        );
        let store = MemStore::new();
        for i in 0..20 {
            series(&store, "x", &format!("job-{i}"), &[(0, 1.0)]);
        }
        eval(&mut g, &store, 0);
        let err = g.rules[0].last_error.clone().unwrap_or_default();
        assert!(
            err.contains("would follow 20 series; with this window or season at most 16"),
            "{err}"
        );
        assert_eq!(g.rules[0].detectors.get(&0).map_or(0, HashMap::len), 0);
    }

    #[test]
    fn a_trend_rule_fires_on_a_steady_climb_and_not_on_noise_with_the_same_slope() {
        let mut g = structured(
            r#"{"name": "Climbing", "condition": {"type": "trend", "metric": "x", "direction": "up",
                "min_slope": 0.01, "window": "10m"}}"#,
        );
        let store = MemStore::new();
        // Both rise one unit a minute (0.0167/s); `b` swings ±30 around that line.
        let climb: Vec<(i64, f64)> = (0..20).map(|i| (i * 60_000, 100.0 + i as f64)).collect();
        let noisy: Vec<(i64, f64)> = (0..20)
            .map(|i| {
                let swing = if i % 2 == 0 { 30.0 } else { -30.0 };
                (i * 60_000, 100.0 + i as f64 + swing)
            })
            .collect();
        series(&store, "x", "a", &climb);
        series(&store, "x", "b", &noisy);
        eval(&mut g, &store, 15 * 60_000);
        assert!(
            g.rules[0].last_error.is_none(),
            "{:?}",
            g.rules[0].last_error
        );
        let firing: Vec<(String, f64)> = g
            .alerts()
            .map(|(_, a)| (a.labels.get("job").unwrap_or("").to_owned(), a.value))
            .collect();
        assert_eq!(firing.len(), 1, "{firing:?}");
        assert_eq!(firing[0].0, "a");
        assert!(
            (firing[0].1 - 1.0 / 60.0).abs() < 1e-9,
            "the value is the slope: {}",
            firing[0].1
        );

        // Falling does not match an upward rule; a downward one sees it.
        let mut down = structured(
            r#"{"name": "Falling", "condition": {"type": "trend", "metric": "-x", "direction": "down",
                "min_slope": 0.01, "window": "10m"}}"#,
        );
        eval(&mut down, &store, 15 * 60_000);
        assert!(
            down.rules[0].last_error.is_none(),
            "{:?}",
            down.rules[0].last_error
        );
        assert_eq!(down.alerts().count(), 1);
    }
}
