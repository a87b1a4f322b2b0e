//! Unit tests of the engine's trickier semantics, against a real store in a temp dir.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use dozor_model::{Labels, Sample};
use dozor_tsdb::{Db, Options, Tsdb};

use super::*;

struct Store {
    _dir: tempfile::TempDir,
    _tsdb: Tsdb,
    db: Arc<Db>,
}

/// A store holding `series`: (labels, [(t ms, v)]).
/// Labels and (t ms, value) points of one test series.
type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn store(series: &[TestSeries<'_>]) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Tsdb::open(
        dir.path(),
        Options {
            retention_ms: None,
            ..Options::default()
        },
    )
    .unwrap();
    let db = tsdb.tenant(&"t".parse().unwrap()).unwrap();
    let batch: Vec<(Labels, Vec<Sample>)> = series
        .iter()
        .map(|(l, s)| {
            (
                Labels::from_pairs(l.iter().copied()).unwrap(),
                s.iter().map(|&(t, v)| Sample { t, v }).collect(),
            )
        })
        .collect();
    db.append(&batch).unwrap();
    Store {
        _dir: dir,
        _tsdb: tsdb,
        db,
    }
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

/// An instant query's vector as (labels text, value), sorted.
fn instant(s: &Store, q: &str, t: i64) -> Vec<(String, f64)> {
    let r = engine().instant(s.db.as_ref(), q, t).unwrap();
    let Value::Vector(v) = r.value else {
        panic!("not a vector: {:?}", r.value)
    };
    let mut out: Vec<(String, f64)> = v.iter().map(|s| (s.labels.to_string(), s.v)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn every_10s(values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 10_000, v))
        .collect()
}

#[test]
fn range_windows_are_left_open() {
    let s = store(&[(
        &[("__name__", "m")],
        &[(0, 1.0), (10_000, 2.0), (20_000, 3.0)],
    )]);
    // The sample at exactly t - 20s is outside the window (t - 20s, t].
    assert_eq!(instant(&s, "count_over_time(m[20s])", 20_000)[0].1, 2.0);
    assert_eq!(instant(&s, "count_over_time(m[21s])", 20_000)[0].1, 3.0);
}

#[test]
fn lookback_is_five_minutes_and_stops_at_staleness_markers() {
    let s = store(&[
        (&[("__name__", "a")], &[(0, 1.0)]),
        (
            &[("__name__", "b")],
            &[(0, 1.0), (60_000, dozor_model::labels::stale_nan())],
        ),
    ]);
    assert_eq!(instant(&s, "a", 299_999).len(), 1);
    assert!(instant(&s, "a", 300_000).is_empty());
    assert_eq!(instant(&s, "b", 59_999).len(), 1);
    assert!(instant(&s, "b", 60_000).is_empty());
}

#[test]
fn rate_extrapolates_like_prometheus() {
    let pts = every_10s(&[0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    let s = store(&[(&[("__name__", "c_total")], &pts)]);
    // 6 increments of 10 over 60 s; the window (0, 60s] starts right after the first
    // sample and is extrapolated back to it.
    let r = instant(&s, "rate(c_total[1m])", 60_000);
    assert!((r[0].1 - 1.0).abs() < 1e-9, "{r:?}");
    // Counter resets add the value before the reset.
    let s = store(&[(
        &[("__name__", "c_total")],
        &[(0, 5.0), (10_000, 10.0), (20_000, 2.0), (30_000, 4.0)],
    )]);
    let r = instant(&s, "increase(c_total[30s])", 30_000);
    // The window (0, 30s] holds 10, 2, 4: a reset adds the 10 before it, so 4 over the
    // 20 s sampled, extrapolated by 10 s to the window start: 6.
    assert!((r[0].1 - 6.0).abs() < 1e-9, "{r:?}");
}

#[test]
fn many_to_many_matching_is_an_error() {
    let s = store(&[
        (&[("__name__", "a"), ("x", "1")], &[(0, 1.0)]),
        (&[("__name__", "b"), ("x", "1"), ("y", "1")], &[(0, 1.0)]),
        (&[("__name__", "b"), ("x", "1"), ("y", "2")], &[(0, 1.0)]),
    ]);
    let err = engine()
        .instant(s.db.as_ref(), "a + on(x) b", 0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("many-to-many matching not allowed"),
        "{err}"
    );
    assert_eq!(err.kind(), "execution");
    // group_left makes it legal, copying the extra label from the "one" side.
    let r = instant(&s, "b + on(x) group_left a", 0);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].0, r#"{x="1", y="1"}"#);
}

#[test]
fn name_is_dropped_late() {
    let s = store(&[(&[("__name__", "m"), ("x", "1")], &[(0, 2.0)])]);
    // Comparison keeps the name; arithmetic drops it; label_replace can bring it back.
    assert_eq!(instant(&s, "m > 1", 0)[0].0, r#"m{x="1"}"#);
    assert_eq!(instant(&s, "m * 2", 0)[0].0, r#"{x="1"}"#);
    assert_eq!(
        instant(&s, r#"label_replace(m * 2, "__name__", "n", "", "")"#, 0)[0].0,
        r#"n{x="1"}"#
    );
}

#[test]
fn duplicate_series_after_name_drop_are_an_error() {
    let s = store(&[
        (&[("__name__", "a"), ("x", "1")], &[(0, 2.0)]),
        (&[("__name__", "b"), ("x", "1")], &[(0, 2.0)]),
    ]);
    let err = engine()
        .instant(s.db.as_ref(), r#"abs({x="1"})"#, 0)
        .unwrap_err();
    assert!(err.to_string().contains("same labelset"), "{err}");
}

#[test]
fn histogram_quantile_on_classic_buckets() {
    let b = |le: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![("__name__", "h_bucket"), ("le", le)]
    };
    let (b1, b2, b3) = (b("0.1"), b("0.2"), b("+Inf"));
    let s = store(&[
        (&b1, &[(0, 10.0)]),
        (&b2, &[(0, 20.0)]),
        (&b3, &[(0, 40.0)]),
    ]);
    let r = instant(&s, "histogram_quantile(0.25, h_bucket)", 0);
    assert_eq!(r.len(), 1);
    assert!((r[0].1 - 0.1).abs() < 1e-12, "{r:?}");
    // Above the last finite bucket the answer is that bucket's bound.
    let r = instant(&s, "histogram_quantile(0.9, h_bucket)", 0);
    assert!((r[0].1 - 0.2).abs() < 1e-12, "{r:?}");
}

#[test]
fn range_query_evaluates_every_step_and_sorts_by_labels() {
    let s = store(&[
        (&[("__name__", "m"), ("x", "b")], &[(0, 1.0), (60_000, 2.0)]),
        (&[("__name__", "m"), ("x", "a")], &[(0, 3.0)]),
    ]);
    let r = engine()
        .range(s.db.as_ref(), "m", 0, 120_000, 60_000)
        .unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m[0].labels.get("x"), Some("a"));
    assert_eq!(m[0].samples.len(), 3);
    assert_eq!(
        m[1].samples.iter().map(|s| s.v).collect::<Vec<_>>(),
        [1.0, 2.0, 2.0]
    );
}

#[test]
fn at_modifier_and_subqueries() {
    let pts: Vec<(i64, f64)> = (0..=20).map(|i| (i * 10_000, i as f64)).collect();
    let s = store(&[(&[("__name__", "m")], &pts)]);
    assert_eq!(instant(&s, "m @ 50", 200_000)[0].1, 5.0);
    assert_eq!(instant(&s, "m offset 100s", 200_000)[0].1, 10.0);
    // Subquery points at 30 s steps in (200 s - 90 s, 200 s]: 120, 150, 180 s.
    assert_eq!(
        instant(&s, "count_over_time(m[90s:30s])", 200_000)[0].1,
        3.0
    );
    assert_eq!(instant(&s, "max_over_time(m[90s:30s])", 200_000)[0].1, 18.0);
}

#[test]
fn limits_are_typed_errors() {
    let pts: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64)).collect();
    let s = store(&[(&[("__name__", "m")], &pts)]);
    let small = Engine::new(EngineOptions {
        max_samples: 10,
        ..EngineOptions::default()
    });
    let err = small
        .range(s.db.as_ref(), "m", 0, 99_000, 1000)
        .unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    let cancel = AtomicBool::new(true);
    let err = engine()
        .query(
            s.db.as_ref(),
            &Query {
                expr: "m",
                start: 0,
                end: 0,
                step: 1,
                instant: true,
                cancel: Some(&cancel),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), "canceled");
    let err = engine()
        .instant(s.db.as_ref(), "rate(m[5m]", 0)
        .unwrap_err();
    assert_eq!(err.kind(), "bad_data");
}

#[test]
fn holt_winters_is_double_exponential_smoothing() {
    let pts: Vec<(i64, f64)> = (0..10).map(|i| (i * 10_000, (i * i) as f64)).collect();
    let s = store(&[(&[("__name__", "m")], &pts)]);
    let a = instant(&s, "holt_winters(m[2m], 0.5, 0.5)", 90_000);
    let b = instant(&s, "double_exponential_smoothing(m[2m], 0.5, 0.5)", 90_000);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}

#[test]
fn duplicate_names_from_regex_selector_fail_histogram_quantile() {
    let s = store(&[
        (&[("__name__", "d_bucket"), ("le", "0.1")], &[(0, 1.0)]),
        (&[("__name__", "d_bucket"), ("le", "+Inf")], &[(0, 2.0)]),
        (&[("__name__", "d2_bucket"), ("le", "0.1")], &[(0, 1.0)]),
        (&[("__name__", "d2_bucket"), ("le", "+Inf")], &[(0, 2.0)]),
    ]);
    let err = engine()
        .instant(
            s.db.as_ref(),
            r#"histogram_quantile(0.99, {__name__=~"d\\d*_bucket"})"#,
            0,
        )
        .unwrap_err();
    assert!(err.to_string().contains("same labelset"), "{err}");
}

#[test]
fn hostile_queries_are_errors_or_results_never_panics() {
    let pts: Vec<(i64, f64)> = (0..10).map(|i| (i * 10_000, i as f64)).collect();
    let s = store(&[(&[("__name__", "m"), ("le", "x")], &pts)]);
    let e = Engine::new(EngineOptions {
        max_samples: 100_000,
        ..EngineOptions::default()
    });
    for q in [
        "m offset 100000000w",
        "m offset -100000000w",
        "m @ 9999999999999",
        "m @ -9999999999999",
        "rate(m[100000000w])",
        "rate(m[1m] @ 9999999999999 offset -100000000w)",
        "max_over_time(m[1y:1ms])",
        "max_over_time(m[1m:1ms] @ 9999999999999)",
        "histogram_quantile(NaN, m)",
        "histogram_fraction(1, 0, m)",
        "topk(1e300, m)",
        "topk(-1e300, m)",
        "limit_ratio(NaN, m)",
        "quantile(NaN, m)",
        "round(m, 0)",
        "label_replace(m, \"a\", \"$1$2$name\", \"__name__\", \"(.)(.*)\")",
        "label_join(m, \"a\", \",\", \"__name__\", \"le\", \"le\")",
        "count_values(\"v\", m / 0)",
        "sort_by_label(m, \"nope\")",
        "year(vector(1e300))",
        "day_of_week(vector(-1e300))",
        "days_in_month(vector(NaN))",
        "predict_linear(m[1m], 1e308)",
        "m % 0 and m ^ 1e308",
        "holt_winters(m[1m], 0.5, 0.5)",
        "timestamp(m offset -1h)",
        "scalar(m) * vector(time())",
    ] {
        let _ = e.instant(s.db.as_ref(), q, 50_000);
        let _ = e.range(s.db.as_ref(), q, -1_000_000, 1_000_000, 7_000);
    }
    // Step counts past the sample limit are refused before any work.
    let err = e
        .range(s.db.as_ref(), "vector(1)", 0, i64::MAX, 1)
        .unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples(_)), "{err}");
    let err = e
        .range(s.db.as_ref(), "vector(1)", i64::MIN, i64::MAX, 1)
        .unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples(_)), "{err}");
}

#[test]
fn limit_ratio_halves_are_complementary() {
    let series: Vec<Vec<(&str, String)>> = (0..50)
        .map(|i| vec![("__name__", "m".to_string()), ("i", i.to_string())])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Tsdb::open(dir.path(), Options::default()).unwrap();
    let db = tsdb.tenant(&"t".parse().unwrap()).unwrap();
    let batch: Vec<(Labels, Vec<Sample>)> = series
        .iter()
        .map(|l| {
            (
                Labels::from_pairs(l.iter().map(|(k, v)| (*k, v.as_str()))).unwrap(),
                vec![Sample { t: 0, v: 1.0 }],
            )
        })
        .collect();
    db.append(&batch).unwrap();
    let count = |q: &str| -> f64 {
        let r = engine().instant(db.as_ref(), q, 0).unwrap();
        match r.value {
            Value::Vector(v) => v.first().map_or(0.0, |s| s.v),
            other => panic!("{other:?}"),
        }
    };
    let a = count("count(limit_ratio(0.3, m))");
    let b = count("count(limit_ratio(-0.7, m))");
    assert_eq!(a + b, 50.0);
    assert!(a > 0.0 && b > 0.0);
    assert_eq!(count("count(limit_ratio(1, m))"), 50.0);
    assert_eq!(count("count(limitk(7, m))"), 7.0);
}

#[test]
fn sort_and_topk_put_nan_last() {
    let s = store(&[
        (&[("__name__", "m"), ("x", "a")], &[(0, f64::NAN)]),
        (&[("__name__", "m"), ("x", "b")], &[(0, 2.0)]),
        (&[("__name__", "m"), ("x", "c")], &[(0, 1.0)]),
    ]);
    let order = |q: &str| -> Vec<String> {
        let r = engine().instant(s.db.as_ref(), q, 0).unwrap();
        let Value::Vector(v) = r.value else { panic!() };
        v.iter()
            .map(|s| s.labels.get("x").unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(order("sort(m)"), ["c", "b", "a"]);
    assert_eq!(order("sort_desc(m)"), ["b", "c", "a"]);
    assert_eq!(order("topk(2, m)"), ["b", "c"]);
    assert_eq!(order("bottomk(3, m)"), ["c", "b", "a"]);
    assert_eq!(order(r#"sort_by_label_desc(m, "x")"#), ["c", "b", "a"]);
}

#[test]
fn absent_takes_labels_from_equality_matchers() {
    let s = store(&[(&[("__name__", "m")], &[(0, 1.0)])]);
    assert_eq!(
        instant(&s, r#"absent(nope{job="a", env=~"p.*"})"#, 0),
        [(r#"{job="a"}"#.to_owned(), 1.0)]
    );
    assert!(instant(&s, "absent(m)", 0).is_empty());
    assert_eq!(
        instant(&s, r#"absent_over_time(nope{job="a"}[1m])"#, 0),
        [(r#"{job="a"}"#.to_owned(), 1.0)]
    );
}

#[test]
fn count_values_formats_like_go() {
    let s = store(&[
        (&[("__name__", "m"), ("x", "a")], &[(0, 1.5)]),
        (&[("__name__", "m"), ("x", "b")], &[(0, 1.5)]),
        (&[("__name__", "m"), ("x", "c")], &[(0, f64::INFINITY)]),
    ]);
    assert_eq!(
        instant(&s, r#"count_values("v", m)"#, 0),
        [
            (r#"{v="+Inf"}"#.to_owned(), 1.0),
            (r#"{v="1.5"}"#.to_owned(), 2.0)
        ]
    );
}

#[test]
fn subquery_steps_align_to_absolute_time() {
    let pts: Vec<(i64, f64)> = (0..=30).map(|i| (i * 10_000, i as f64)).collect();
    let s = store(&[(&[("__name__", "m")], &pts)]);
    // At t=95 s, [60s:20s] evaluates at 40, 60, 80 s (multiples of 20 s in (35 s, 95 s]).
    assert_eq!(
        instant(&s, "sum_over_time(m[60s:20s])", 95_000)[0].1,
        4.0 + 6.0 + 8.0
    );
    // With an offset the window moves, the alignment does not.
    assert_eq!(
        instant(&s, "sum_over_time(m[60s:20s] offset 10s)", 95_000)[0].1,
        4.0 + 6.0 + 8.0
    );
}
