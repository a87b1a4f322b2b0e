//! Rule unit tests in `promtool test rules`' format, so the same files pass (or fail) under
//! both tools: `rule_files` (globs, relative to the test file), `evaluation_interval`,
//! `group_eval_order`, and `tests` with `interval`, `input_series` (series notation,
//! see [`dozor_promql::notation`]), `alert_rule_test` (`eval_time`, `alertname`,
//! `exp_alerts` with `exp_labels`/`exp_annotations`), `promql_expr_test` (`expr`,
//! `eval_time`, `exp_samples` with `labels`/`value`), `external_labels`, `external_url`
//! and `name`.
//!
//! As promtool does, every group is evaluated at 0, `evaluation_interval`, 2×… up to the
//! largest `eval_time`; an alert test at time `t` compares the *firing* alerts of its
//! `alertname` after the last evaluation at or before `t`; an expression test runs an
//! instant query at its `eval_time` over the input series and what the rules wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dozor_model::{Labels, Sample};
use dozor_promql::{Engine, EngineOptions};
use serde::Deserialize;

use crate::file::{self, parse_duration};
use crate::group::{AlertState, Group, instant};
use crate::mem::MemStore;

/// Most points one input series may expand to.
const MAX_POINTS: usize = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    labels: String,
    value: f64,
}

/// Runs every test file, printing promtool-style progress to `out`; true when all pass.
pub fn run_files(paths: &[PathBuf], out: &mut dyn std::io::Write) -> bool {
    let mut ok = true;
    for p in paths {
        let _ = writeln!(out, "Unit Testing:  {}", p.display());
        match run_file(p) {
            Ok(()) => {
                let _ = writeln!(out, "  SUCCESS");
            }
            Err(errs) => {
                ok = false;
                let _ = writeln!(out, "  FAILED:");
                for e in errs {
                    let _ = writeln!(out, "{e}\n");
                }
            }
        }
        let _ = writeln!(out);
    }
    ok
}

/// Runs one test file: every failure, as promtool words it.
pub fn run_file(path: &Path) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("    cannot read {}: {e}", path.display())])?;
    let unit: UnitFile = serde_saphyr::from_str(&text).map_err(|e| {
        vec![format!(
            "    {}: {}",
            path.display(),
            first_line(&e.to_string())
        )]
    })?;
    let eval_interval = match &unit.evaluation_interval {
        Some(d) => parse_duration(d).map_err(|e| vec![format!("    evaluation_interval: {e}")])?,
        None => 60_000,
    };
    if eval_interval <= 0 {
        return Err(vec![
            "    evaluation_interval: must be greater than 0".into(),
        ]);
    }
    let mut order = BTreeMap::new();
    for (i, g) in unit.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return Err(vec![format!(
                "group name repeated in evaluation order: {g}"
            )]);
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for f in &unit.rule_files {
        let full = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            base.join(f)
        };
        let pattern = full.to_string_lossy().into_owned();
        let mut matched: Vec<PathBuf> = glob::glob(&pattern)
            .map_err(|e| vec![format!("    rule_files: {f:?}: {e}")])?
            .filter_map(Result::ok)
            .collect();
        matched.sort();
        if matched.is_empty() {
            eprintln!("  WARNING: no file match pattern {}", full.display());
        }
        files.extend(matched);
    }
    let mut specs = Vec::new();
    for f in &files {
        specs.extend(
            file::load_file(f)
                .map_err(|errs| errs.iter().map(|e| format!("    {e}")).collect::<Vec<_>>())?,
        );
    }
    let mut errs = Vec::new();
    for tg in &unit.tests {
        errs.extend(run_group(tg, eval_interval, &order, &specs));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn run_group(
    tg: &TestGroup,
    eval_interval: i64,
    order: &BTreeMap<String, usize>,
    specs: &[file::RuleGroup],
) -> Vec<String> {
    let in_group = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let interval = match tg.interval.as_deref().map(parse_duration).transpose() {
        Ok(i) => i.unwrap_or(eval_interval),
        Err(e) => return vec![format!("{in_group}    interval: {e}")],
    };
    if interval <= 0 {
        return vec![format!("{in_group}    interval: must be greater than 0")];
    }
    let store = MemStore::new();
    for s in &tg.input_series {
        let labels = match dozor_promql::notation::parse_series_labels(&s.series) {
            Ok(l) => l,
            Err(e) => return vec![format!("{in_group}    {e}")],
        };
        let values = match dozor_promql::notation::expand_values(&s.values, MAX_POINTS) {
            Ok(v) => v,
            Err(e) => return vec![format!("{in_group}    series {}: {e}", s.series)],
        };
        store.append(
            labels,
            values.into_iter().enumerate().filter_map(|(i, v)| {
                Some(Sample {
                    t: i as i64 * interval,
                    v: v?,
                })
            }),
        );
    }
    let mut groups: Vec<Group> = specs
        .iter()
        .map(|s| {
            Group::new(s.clone(), interval)
                .with_external(tg.external_labels.clone(), tg.external_url.clone())
        })
        .collect();
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));

    let mut alert_tests: Vec<(i64, &AlertTest)> = Vec::new();
    for a in &tg.alert_rule_test {
        let t = match parse_duration(&a.eval_time) {
            Ok(t) => t,
            Err(e) => return vec![format!("{in_group}    eval_time: {e}")],
        };
        if a.alertname.is_empty() {
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}",
                a.eval_time
            )];
        }
        alert_tests.push((t, a));
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut expr_tests = Vec::new();
    for e in &tg.promql_expr_test {
        match parse_duration(&e.eval_time) {
            Ok(t) => expr_tests.push((t, e)),
            Err(err) => return vec![format!("{in_group}    eval_time: {err}")],
        }
    }
    let maxt = alert_tests
        .iter()
        .map(|(t, _)| *t)
        .chain(expr_tests.iter().map(|(t, _)| *t))
        .max()
        .unwrap_or(0);

    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: eval_interval,
        ..EngineOptions::default()
    });
    let mut errs = Vec::new();
    let mut next_alert_test = 0;
    let mut ts = 0;
    while ts <= maxt {
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &engine, &store, &mut |batch: Vec<(
                Labels,
                Vec<Sample>,
            )>| {
                for (l, s) in batch {
                    store.append(l, s);
                }
                Ok(())
            });
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.rule.name,
                        format_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while let Some(&(t, test)) = alert_tests.get(next_alert_test) {
            if !(ts <= t && t < ts + eval_interval) {
                break;
            }
            next_alert_test += 1;
            let mut got: Vec<(Labels, BTreeMap<String, String>)> = groups
                .iter()
                .flat_map(Group::alerts)
                .filter(|(rule, a)| rule.name == test.alertname && a.state == AlertState::Firing)
                .map(|(_, a)| (a.labels.clone(), a.annotations.clone()))
                .collect();
            let mut exp: Vec<(Labels, BTreeMap<String, String>)> = Vec::new();
            for e in &test.exp_alerts {
                let mut labels = e.exp_labels.clone();
                labels.insert("alertname".into(), test.alertname.clone());
                match Labels::from_pairs(labels) {
                    Ok(l) => exp.push((l, e.exp_annotations.clone())),
                    Err(err) => errs.push(format!("{in_group}    exp_labels: {err}")),
                }
            }
            got.sort();
            exp.sort();
            if got != exp {
                errs.push(format!(
                    "{in_group}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    test.alertname,
                    test.eval_time,
                    alerts_string(&exp),
                    alerts_string(&got)
                ));
            }
        }
        ts += eval_interval;
    }

    'tests: for (t, test) in expr_tests {
        let expr = dozor_promql::parse(&test.expr);
        let got = expr
            .map_err(|e| e.to_string())
            .and_then(|e| instant(&engine, &store, &e, t));
        let mut got = match got {
            Ok(g) => g,
            Err(e) => {
                errs.push(format!(
                    "{in_group}    expr: {:?}, time: {}, err: {e}",
                    test.expr, test.eval_time
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &test.exp_samples {
            match dozor_promql::notation::parse_series_labels(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "{in_group}    expr: {:?}, time: {}, err: labels {:?}: {e}",
                        test.expr, test.eval_time, s.labels
                    ));
                    continue 'tests;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same =
            got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1 == e.1);
        if !same {
            errs.push(format!(
                "{in_group}    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                test.expr,
                test.eval_time,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

fn alerts_string(a: &[(Labels, BTreeMap<String, String>)]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (labels, ann)) in a.iter().enumerate() {
        let ann = Labels::from_pairs(ann.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(|l| l.to_string())
            .unwrap_or_else(|_| format!("{ann:?}"));
        s.push_str(&format!(
            "\n            {i}:\n              Labels:{labels}\n              Annotations:{ann}"
        ));
        if i + 1 < a.len() {
            s.push(',');
        }
    }
    s.push_str("\n            ]");
    s
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{l} {}", crate::template::go_v(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prometheus' `model.Duration` text: `1h30m`, `5m`, `10s`, `0s`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_prometheus_does() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90_061_500), "1d1h1m1s500ms");
    }
}
