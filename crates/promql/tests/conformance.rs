//! Runs Prometheus' PromQL test scripts (`promqltest` format, the 3.14 set under
//! `../shared/conformance/promql/prometheus-3.14/`) against the engine and a real tsdb.
//!
//! Every `eval` case gets a status — pass, fail or skip (with its reason) — and the
//! statuses are compared with `tests/conformance-expected.txt`: a case listed as passing
//! that no longer passes fails the test; newly passing cases are printed.
//! `DOZOR_UPDATE_CONFORMANCE=1` rewrites the file; `DOZOR_CONFORMANCE_VERBOSE=1` prints
//! every failure and skip with its reason; `DOZOR_CONFORMANCE_ALL=1` also runs files listed
//! as out of scope and `DOZOR_CONFORMANCE_SET=prometheus-2.42` another script set (both for
//! exploring: the expectations are not updated with them).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dozor_model::{Labels, Sample};
use dozor_promql::{Engine, EngineOptions, Query, QueryResult, Value};
use dozor_tsdb::{Db, FsyncPolicy, Options, Tsdb};
use promql_parser::parser::{AtModifier, Expr};

mod promqltest;

use promqltest::{Cmd, Eval, LabelMap, SeqValue, parse_script};

/// Files whose every case is outside the scope, with the reason (none at present: every
/// file runs, and cases skip one by one for the parser — duration expressions,
/// anchored/smoothed selectors — or for data the store cannot hold — native histograms,
/// start timestamps — each with its reason).
const SKIPPED_FILES: &[(&str, &str)] = &[];

/// The script set: `prometheus-3.14`, or another one named by `DOZOR_CONFORMANCE_SET` (for
/// exploring, e.g. `prometheus-2.42`; the expectations file is then neither read nor
/// written).
fn conformance_set() -> String {
    std::env::var("DOZOR_CONFORMANCE_SET").unwrap_or_else(|_| "prometheus-3.14".into())
}

fn conformance_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/promql")
        .join(conformance_set());
    dir.is_dir().then_some(dir)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

// ---------------------------------------------------------------- running and comparing

/// promqltest's tolerance (Prometheus' `almost.Equal` with its test epsilon).
fn almost_equal(a: f64, b: f64) -> bool {
    dozor_promql::almost_equal(a, b, 0.000001)
}

fn label_map(l: &Labels) -> LabelMap {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn show(l: &LabelMap) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn check_annotations(ev: &Eval, r: &QueryResult) -> Result<(), String> {
    if ev.warn && r.warnings.is_empty() {
        return Err("expected warnings, got none".into());
    }
    if ev.info && r.infos.is_empty() {
        return Err("expected infos, got none".into());
    }
    for (kind, expected, actual) in [
        ("warn", &ev.warns, &r.warnings),
        ("info", &ev.infos, &r.infos),
    ] {
        if expected.is_empty() {
            continue;
        }
        if actual.is_empty() {
            return Err(format!("expected {kind} annotations, got none"));
        }
        for e in expected {
            if !actual.iter().any(|a| e.matches(a)) {
                return Err(format!("expected {kind} {e:?}, got {actual:?}"));
            }
        }
        for a in actual {
            if !expected.iter().any(|e| e.matches(a)) {
                return Err(format!("unexpected {kind} {a:?}"));
            }
        }
    }
    if ev.no_warn && !r.warnings.is_empty() {
        return Err(format!("unexpected warnings {:?}", r.warnings));
    }
    if ev.no_info && !r.infos.is_empty() {
        return Err(format!("unexpected infos {:?}", r.infos));
    }
    Ok(())
}

fn expected_index(ev: &Eval) -> HashMap<LabelMap, (usize, &Vec<SeqValue>)> {
    ev.series
        .iter()
        .enumerate()
        .map(|(i, (l, v))| (l.clone(), (i, v)))
        .collect()
}

fn compare(ev: &Eval, value: &Value, start: i64, step: i64, end: i64) -> Result<(), String> {
    let expected = expected_index(ev);
    match value {
        Value::Scalar { v, .. } => {
            let Some(e) = ev.expect_scalar else {
                return Err(format!("expected a vector, got scalar {v}"));
            };
            if !almost_equal(e, *v) {
                return Err(format!("expected scalar {e}, got {v}"));
            }
        }
        Value::String { v, .. } => {
            if ev.expect_string.as_deref() != Some(v.as_str()) {
                return Err(format!("expected string {:?}, got {v:?}", ev.expect_string));
            }
        }
        Value::Vector(vec) => {
            if ev.expect_scalar.is_some() {
                return Err("expected a scalar, got a vector".into());
            }
            let mut seen = std::collections::HashSet::new();
            for (pos, s) in vec.iter().enumerate() {
                let l = label_map(&s.labels);
                let Some((epos, vals)) = expected.get(&l) else {
                    return Err(format!("unexpected series {} = {}", show(&l), s.v));
                };
                if ev.ordered && *epos != pos {
                    return Err(format!(
                        "series {} at position {pos}, expected {epos}",
                        show(&l)
                    ));
                }
                match vals.first() {
                    Some(SeqValue::Float(e)) => {
                        if !almost_equal(*e, s.v) {
                            return Err(format!("expected {} = {e}, got {}", show(&l), s.v));
                        }
                    }
                    other => return Err(format!("expected {other:?} for {}", show(&l))),
                }
                seen.insert(l);
            }
            for (l, _) in &ev.series {
                if !seen.contains(l) {
                    return Err(format!("expected series {} not found", show(l)));
                }
            }
        }
        Value::Matrix(m) => {
            if ev.ordered {
                return Err("expected an ordered result, got a matrix".into());
            }
            if ev.expect_scalar.is_some() {
                return Err("expected a scalar, got a matrix".into());
            }
            let mut seen = std::collections::HashSet::new();
            for s in m {
                let l = label_map(&s.labels);
                let Some((_, vals)) = expected.get(&l) else {
                    return Err(format!("unexpected series {} = {:?}", show(&l), s.samples));
                };
                let mut exp: Vec<Sample> = Vec::new();
                for (i, v) in vals.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!("too many expected points for {}", show(&l)));
                    }
                    match v {
                        SeqValue::Float(v) => exp.push(Sample { t, v: *v }),
                        SeqValue::Omitted => {}
                        SeqValue::Histogram => return Err("histogram expected".into()),
                    }
                }
                if exp.len() != s.samples.len()
                    || exp
                        .iter()
                        .zip(&s.samples)
                        .any(|(a, b)| a.t != b.t || !almost_equal(a.v, b.v))
                {
                    return Err(format!(
                        "series {}: expected {:?}, got {:?}",
                        show(&l),
                        exp.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(),
                        s.samples.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>()
                    ));
                }
                seen.insert(l);
            }
            for (l, _) in &ev.series {
                if !seen.contains(l) {
                    return Err(format!("expected series {} not found", show(l)));
                }
            }
        }
    }
    Ok(())
}

fn check_failure(ev: &Eval, e: &dozor_promql::PromqlError) -> Result<(), String> {
    let msg = e.to_string();
    match &ev.fail_match {
        Some(m) if !m.matches(&msg) => Err(format!("expected error {m:?}, got {msg:?}")),
        _ => Ok(()),
    }
}

fn query<'a>(expr: &'a str, start: i64, end: i64, step: i64, instant: bool) -> Query<'a> {
    Query {
        expr,
        start,
        end,
        step,
        instant,
        cancel: None,
    }
}

fn run_eval(engine: &Engine, db: &Db, ev: &Eval) -> Result<(), String> {
    let expr = dozor_promql::parse(&ev.expr).map_err(|e| e.to_string())?;
    if !ev.instant {
        let res = engine.eval_expr(
            db,
            &expr,
            &query(&ev.expr, ev.start, ev.end, ev.step, false),
        );
        return check_result(ev, res, ev.start, ev.step, ev.end);
    }
    run_instant(engine, db, ev, &expr, ev.at)?;
    // As Prometheus' runner does: the same query with `@ <eval time>` on every selector
    // must give the same result at other evaluation times.
    let mut with_at = expr.clone();
    let at = at_modifier(ev.at);
    let mut unsafe_call = false;
    add_at(&mut with_at, &at, &mut unsafe_call);
    if !unsafe_call && !ev.range_vector {
        let times: Vec<i64> = if ev.at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * ev.at, 0, ev.at / 5, ev.at, 10 * ev.at]
        };
        for t in times {
            run_instant(engine, db, ev, &with_at, t)
                .map_err(|e| format!("with @ at {t} ms: {e}"))?;
        }
    }
    Ok(())
}

fn at_modifier(ms: i64) -> AtModifier {
    let d = std::time::Duration::from_millis(ms.unsigned_abs());
    AtModifier::At(if ms >= 0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
    })
}

/// Sets `@ at` on every selector and subquery without one (not inside a subquery that has
/// one); notes calls whose result depends on the evaluation time.
fn add_at(e: &mut Expr, at: &AtModifier, unsafe_call: &mut bool) {
    match e {
        Expr::Aggregate(a) => {
            add_at(&mut a.expr, at, unsafe_call);
            if let Some(p) = &mut a.param {
                add_at(p, at, unsafe_call);
            }
        }
        Expr::Unary(u) => add_at(&mut u.expr, at, unsafe_call),
        Expr::Binary(b) => {
            add_at(&mut b.lhs, at, unsafe_call);
            add_at(&mut b.rhs, at, unsafe_call);
        }
        Expr::Paren(p) => add_at(&mut p.expr, at, unsafe_call),
        Expr::Subquery(s) => {
            if s.at.is_none() {
                s.at = Some(at.clone());
            }
        }
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(at.clone());
            }
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = Some(at.clone());
            }
        }
        Expr::Call(c) => {
            const UNSAFE: &[&str] = &[
                "days_in_month",
                "day_of_month",
                "day_of_week",
                "day_of_year",
                "end",
                "hour",
                "minute",
                "month",
                "year",
                "predict_linear",
                "range",
                "start",
                "step",
                "time",
                "timestamp",
            ];
            *unsafe_call |= UNSAFE.contains(&c.func.name);
            for a in &mut c.args.args {
                add_at(a, at, unsafe_call);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn check_result(
    ev: &Eval,
    res: Result<QueryResult, dozor_promql::PromqlError>,
    start: i64,
    step: i64,
    end: i64,
) -> Result<(), String> {
    let r = match res {
        Err(e) if ev.fail => return check_failure(ev, &e),
        Err(e) => return Err(format!("error: {e}")),
        Ok(_) if ev.fail => return Err("expected an error, got none".into()),
        Ok(r) => r,
    };
    check_annotations(ev, &r)?;
    compare(ev, &r.value, start, step, end)
}

fn run_instant(engine: &Engine, db: &Db, ev: &Eval, expr: &Expr, at: i64) -> Result<(), String> {
    let res = engine.eval_expr(db, expr, &query(&ev.expr, at, at, 1, true));
    let is_scalar = matches!(&res, Ok(r) if matches!(r.value, Value::Scalar { .. }));
    let failed = res.is_err();
    let (start, step, end) = if ev.range_vector {
        (ev.start, ev.step, ev.end)
    } else {
        (at, 0, at)
    };
    check_result(ev, res, start, step, end)?;
    // As Prometheus' runner does: an instant query must give the same result as the
    // middle step of a range query around it.
    let context_fn = regex::Regex::new(r"(start|end|range|step)\(\)").unwrap();
    if failed || ev.range_vector || ev.expect_string.is_some() || context_fn.is_match(&ev.expr) {
        return Ok(());
    }
    let rr = engine
        .eval_expr(
            db,
            expr,
            &query(&ev.expr, at - 60_000, at + 60_000, 60_000, false),
        )
        .map_err(|e| format!("range mode: error: {e}"))?;
    if ev.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = rr.value else {
        return Err("range mode: not a matrix".into());
    };
    let mut vec = Vec::new();
    for s in m {
        if let Some(p) = s.samples.iter().find(|p| p.t == at) {
            vec.push(dozor_promql::InstantSample {
                labels: s.labels.clone(),
                t: p.t,
                v: p.v,
            });
        }
    }
    let v = if is_scalar {
        Value::Scalar {
            t: at,
            v: vec.first().map_or(f64::NAN, |s| s.v),
        }
    } else {
        Value::Vector(vec)
    };
    compare(ev, &v, start, step, end).map_err(|e| format!("range mode: {e}"))
}

struct Case {
    id: String,
    status: Status,
    reason: String,
}

fn open_db(tsdb: &Tsdb, n: usize) -> std::sync::Arc<Db> {
    tsdb.tenant(&format!("t{n}").parse().unwrap()).unwrap()
}

fn run_file(path: &Path, engine: &Engine) -> Vec<Case> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let cmds = parse_script(&text);
    let mut cases = Vec::new();
    let skip_file = SKIPPED_FILES
        .iter()
        .find(|(f, _)| *f == name)
        .filter(|_| std::env::var_os("DOZOR_CONFORMANCE_ALL").is_none());
    if let Some((_, reason)) = skip_file {
        for c in &cmds {
            if let Cmd::Eval(ev) = c {
                cases.push(Case {
                    id: format!("{name}:{}", ev.line),
                    status: Status::Skip,
                    reason: (*reason).to_owned(),
                });
            }
        }
        return cases;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        out_of_order_window_ms: i64::MAX / 4,
        retention_ms: None,
        fsync: FsyncPolicy::Never,
        ..Options::default()
    };
    let tsdb = Tsdb::open(dir.path(), opts).unwrap();
    let mut n = 0;
    let mut db = open_db(&tsdb, n);
    // Why the loaded data is incomplete, if it is, and the metric names concerned: a
    // failing case that names one of them is skipped with that reason.
    let mut data_caveat: Option<String> = None;
    let mut caveat_names: Vec<String> = Vec::new();
    for c in &cmds {
        match c {
            Cmd::Clear => {
                n += 1;
                db = open_db(&tsdb, n);
                data_caveat = None;
                caveat_names.clear();
            }
            Cmd::Load {
                gap,
                series,
                histograms,
                error,
            } => {
                if let Some(e) = error {
                    data_caveat = Some(format!("series the runner cannot load: {e}"));
                    caveat_names.push(String::new());
                }
                let mut batch = Vec::new();
                for (labels, vals) in series {
                    let name = labels.get("__name__").cloned().unwrap_or_default();
                    if vals.contains(&SeqValue::Histogram) {
                        data_caveat = Some("native histograms in the loaded data".into());
                        caveat_names.push(name.clone());
                    } else if *histograms {
                        // load_with_nhcb also stores each classic histogram as a native one.
                        data_caveat = Some("native histograms in the loaded data".into());
                        if let Some(base) = name.strip_suffix("_bucket") {
                            caveat_names.push(base.to_owned());
                        }
                    }
                    let l = match Labels::from_pairs(
                        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    ) {
                        Ok(l) => l,
                        Err(e) => {
                            data_caveat =
                                Some(format!("labels the store rejects ({e}): {}", show(labels)));
                            caveat_names.push(name);
                            continue;
                        }
                    };
                    let samples: Vec<Sample> = vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| match v {
                            SeqValue::Float(v) => Some(Sample {
                                t: i as i64 * gap,
                                v: *v,
                            }),
                            _ => None,
                        })
                        .collect();
                    batch.push((l, samples));
                }
                db.append(&batch).unwrap();
            }
            Cmd::Eval(ev) => {
                let id = format!("{name}:{}", ev.line);
                let (status, reason) = if let Some(b) = &ev.broken {
                    (Status::Skip, format!("runner cannot read the case: {b}"))
                } else if ev.has_histogram {
                    (
                        Status::Skip,
                        "native histograms in the expected result".into(),
                    )
                } else if let Err(e) = dozor_promql::parse(&ev.expr) {
                    if ev.fail && ev.fail_match.is_none() {
                        (Status::Pass, String::new())
                    } else {
                        (
                            Status::Skip,
                            format!("promql-parser cannot parse {:?}: {e}", ev.expr),
                        )
                    }
                } else {
                    match run_eval(engine, &db, ev) {
                        Ok(()) => (Status::Pass, String::new()),
                        Err(e) => match &data_caveat {
                            Some(c)
                                if mentions_any(&ev.expr, &caveat_names)
                                    || nameless_selector(&ev.expr) =>
                            {
                                (Status::Skip, format!("{c} ({e})"))
                            }
                            _ => (Status::Fail, format!("{:?}: {e}", ev.expr)),
                        },
                    }
                };
                cases.push(Case { id, status, reason });
            }
        }
    }
    cases
}

/// Whether `expr` names one of `names` as a whole identifier (an empty name: always).
fn mentions_any(expr: &str, names: &[String]) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    names.iter().any(|n| {
        n.is_empty()
            || expr.match_indices(n.as_str()).any(|(i, _)| {
                let before = expr[..i].chars().next_back();
                let after = expr[i + n.len()..].chars().next();
                !before.is_some_and(ident) && !after.is_some_and(ident)
            })
    })
}

/// Whether `expr` has a selector without a literal metric name (`{job="a"}`,
/// `{__name__=~"…"}`), which may select any loaded series.
fn nameless_selector(expr: &str) -> bool {
    let b = expr.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'{'
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b':' | b'"')))
    })
}

fn expectations_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-expected.txt")
}

#[test]
fn prometheus_promqltest_files() {
    let Some(dir) = conformance_dir() else {
        println!("skipping: ../shared/conformance/promql/prometheus-3.14 is absent");
        return;
    };
    let engine = Engine::new(EngineOptions {
        max_samples: 50_000_000,
        ..EngineOptions::default()
    });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let verbose = std::env::var_os("DOZOR_CONFORMANCE_VERBOSE").is_some();
    let mut all = Vec::new();
    let (mut tp, mut tf, mut ts) = (0, 0, 0);
    for f in &files {
        let cases = run_file(f, &engine);
        let count = |s| cases.iter().filter(|c| c.status == s).count();
        let (p, fl, s) = (
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip),
        );
        println!(
            "{:<28} pass {p:>4}  fail {fl:>4}  skip {s:>4}",
            f.file_name().unwrap().to_string_lossy()
        );
        tp += p;
        tf += fl;
        ts += s;
        all.extend(cases);
    }
    println!("{:<28} pass {tp:>4}  fail {tf:>4}  skip {ts:>4}", "total");
    for c in &all {
        if c.status == Status::Fail || (verbose && c.status == Status::Skip) {
            println!("{} {}: {}", c.status.as_str(), c.id, c.reason);
        }
    }
    if conformance_set() != "prometheus-3.14" {
        return;
    }
    let path = expectations_path();
    let mut text = String::from(
        "# PromQL conformance: the status of every eval case of the prometheus-3.14 promqltest\n\
         # files (see tests/conformance.rs), skips with their reason. Regenerate with\n\
         # DOZOR_UPDATE_CONFORMANCE=1.\n",
    );
    for c in &all {
        // Skips carry their reason, so the file itself names why each case is skipped.
        if c.status == Status::Skip {
            let reason = c.reason.replace('\n', " ");
            text.push_str(&format!("{} skip {reason}\n", c.id));
        } else {
            text.push_str(&format!("{} {}\n", c.id, c.status.as_str()));
        }
    }
    if std::env::var_os("DOZOR_UPDATE_CONFORMANCE").is_some() {
        std::fs::write(&path, &text).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let old: HashMap<&str, &str> = old
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut regressions = Vec::new();
    for c in &all {
        match old.get(c.id.as_str()) {
            Some(&"pass") if c.status != Status::Pass => {
                regressions.push(format!("{} now {}: {}", c.id, c.status.as_str(), c.reason));
            }
            Some(&"pass") => {}
            _ if c.status == Status::Pass => println!("newly passing: {}", c.id),
            _ => {}
        }
    }
    assert!(
        regressions.is_empty(),
        "cases that passed no longer do:\n{}",
        regressions.join("\n")
    );
}

#[test]
fn script_notation_expands_like_promqltest() {
    use promqltest::{expand_item, parse_duration, parse_series};
    let floats = |item: &str| -> Vec<f64> {
        expand_item(item)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Float(f) => f,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(floats("1+2x3"), [1.0, 3.0, 5.0, 7.0]);
    assert_eq!(floats("10-5x2"), [10.0, 5.0, 0.0]);
    assert_eq!(floats("0x3"), [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(floats("-Inf"), [f64::NEG_INFINITY]);
    assert_eq!(
        expand_item("_x2").unwrap(),
        [SeqValue::Omitted, SeqValue::Omitted]
    );
    assert!(dozor_model::labels::is_stale_nan(floats("stale")[0]));
    assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
    let (labels, vals) = parse_series(r#"m{a="x y", b="\"q\""} 1 _ 3"#).unwrap();
    assert_eq!(labels.get("__name__").map(String::as_str), Some("m"));
    assert_eq!(labels.get("b").map(String::as_str), Some("\"q\""));
    assert_eq!(vals.len(), 3);
}
