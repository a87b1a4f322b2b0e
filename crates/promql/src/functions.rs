//! Function calls. Range-vector functions (`rate`, `*_over_time`, …) slide a window over
//! each series' samples ([`Evaluator::apply_range`]); element-wise functions map each
//! series' points; the rest (`histogram_quantile`, `sort`, `absent`, `label_*`, …) work
//! per step or per series as their semantics need.

use std::f64::consts::PI;

use dozor_model::labels::{METRIC_NAME, is_valid_label_name};
use dozor_tsdb::Aggregate;
use promql_parser::parser::{Call, Expr};

use crate::PromqlError;
use crate::eval::Evaluator;
use crate::lset::Lset;
use crate::quantile::{Bucket, bucket_fraction, bucket_quantile, format_g, quantile};
use crate::value::{
    Collector, Elem, FastMap, Grid, Point, Series, StepReader, Val, merge_same_labels,
};

type Result<T> = std::result::Result<T, PromqlError>;

fn unwrap_paren(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_paren(&p.expr),
        e => e,
    }
}

fn string_arg(e: &Expr) -> Result<&str> {
    match unwrap_paren(e) {
        Expr::StringLiteral(s) => Ok(&s.val),
        e => Err(PromqlError::BadData(format!(
            "expected string literal, got {e}"
        ))),
    }
}

pub(crate) fn call(ev: &mut Evaluator<'_>, c: &Call, g: Grid) -> Result<Val> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let arg = |i: usize| -> Result<&Expr> {
        args.get(i)
            .copied()
            .ok_or_else(|| PromqlError::BadData(format!("missing argument {i} of {name}()")))
    };
    match name {
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "changes"
        | "resets"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "mad_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "ts_of_first_over_time"
        | "ts_of_last_over_time" => {
            // What the store may answer from downsampled aggregates instead of samples.
            let aggregate = match name {
                "rate" | "increase" | "delta" | "last_over_time" | "present_over_time" => {
                    Some(Aggregate::Last)
                }
                "min_over_time" => Some(Aggregate::Min),
                "max_over_time" => Some(Aggregate::Max),
                "sum_over_time" => Some(Aggregate::Sum),
                "count_over_time" => Some(Aggregate::Count),
                _ => None,
            };
            let input = ev.range_input_as(arg(0)?, g, aggregate)?;
            // Downsampled counts add up to the count of samples.
            let f = if input.resolution_ms > 0 && name == "count_over_time" {
                "sum_over_time"
            } else {
                name
            };
            let out = crate::range_functions::range_function(ev, f, &input, g)?;
            ev.release(input.samples());
            Ok(Val::Vector(out))
        }
        "absent_over_time" => {
            let input = ev.range_input(arg(0)?, g)?;
            let present =
                crate::range_functions::range_function(ev, "present_over_time", &input, g)?;
            ev.release(input.samples());
            let labels = input
                .selector
                .as_ref()
                .map(absent_labels)
                .unwrap_or_default();
            Ok(Val::Vector(absent_steps(&present, labels, g)))
        }
        "quantile_over_time" => {
            let q = ev.eval_scalar(arg(0)?, g)?;
            let input = ev.range_input(arg(1)?, g)?;
            let mut buf = Vec::new();
            let mut bad = None;
            let out = ev.apply_range(&input, g, true, |_, w, _, i, _, _| {
                if q[i].is_nan() || q[i] < 0.0 || q[i] > 1.0 {
                    bad = Some(q[i]);
                }
                buf.clear();
                buf.extend(w.iter().map(|p| p.v));
                Some(quantile(q[i], &mut buf))
            })?;
            ev.release(input.samples());
            if let Some(bad) = bad {
                ev.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_g(bad)
                ));
            }
            Ok(Val::Vector(out))
        }
        "predict_linear" => {
            let input = ev.range_input(arg(0)?, g)?;
            let d = ev.eval_scalar(arg(1)?, g)?;
            let out = ev.apply_range(&input, g, true, |_, w, ts, i, _, _| {
                if w.len() < 2 {
                    return None;
                }
                let (slope, intercept) = crate::range_functions::linear_regression(w, ts);
                Some(slope * d[i] + intercept)
            })?;
            ev.release(input.samples());
            Ok(Val::Vector(out))
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let input = ev.range_input(arg(0)?, g)?;
            let sf = ev.eval_scalar(arg(1)?, g)?;
            let tf = ev.eval_scalar(arg(2)?, g)?;
            // As in Prometheus, the factors are checked where there is data to smooth.
            let mut invalid = None;
            let out = ev.apply_range(&input, g, true, |_, w, _, i, _, _| {
                if sf[i] <= 0.0 || sf[i] >= 1.0 {
                    invalid.get_or_insert(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {:.6}",
                        sf[i]
                    ));
                    return None;
                }
                if tf[i] <= 0.0 || tf[i] >= 1.0 {
                    invalid.get_or_insert(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {:.6}",
                        tf[i]
                    ));
                    return None;
                }
                crate::range_functions::double_exponential_smoothing(w, sf[i], tf[i])
            })?;
            ev.release(input.samples());
            if let Some(msg) = invalid {
                return Err(PromqlError::exec(msg));
            }
            Ok(Val::Vector(out))
        }
        "time" => Ok(Val::Scalar(
            (0..g.len()).map(|i| g.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![PI; g.len()])),
        "vector" => {
            let s = ev.eval_scalar(arg(0)?, g)?;
            Ok(Val::Vector(vec![Series {
                metric: Lset::default(),
                points: s
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Point { t: g.ts(i), v })
                    .collect(),
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(0)?, g)?;
            let mut out = vec![f64::NAN; g.len()];
            let mut count = vec![0u32; g.len()];
            for s in &v {
                for p in &s.points {
                    let i = g.index(p.t);
                    count[i] += 1;
                    out[i] = p.v;
                }
            }
            for (o, c) in out.iter_mut().zip(count) {
                if c != 1 {
                    *o = f64::NAN;
                }
            }
            Ok(Val::Scalar(out))
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sin" | "cos"
        | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh" | "acosh"
        | "atanh" | "deg" | "rad" | "sgn" => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "sqrt" => f64::sqrt,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                "atanh" => f64::atanh,
                "deg" => |v| v * 180.0 / PI,
                "rad" => |v| v * PI / 180.0,
                _ => |v: f64| {
                    if v < 0.0 {
                        -1.0
                    } else if v > 0.0 {
                        1.0
                    } else {
                        v
                    }
                },
            };
            let v = ev.eval_vector(arg(0)?, g)?;
            Ok(Val::Vector(map_points(v, |_, x| Some(f(x)))))
        }
        "round" => {
            let v = ev.eval_vector(arg(0)?, g)?;
            let to = match args.get(1) {
                Some(e) => ev.eval_scalar(e, g)?,
                None => vec![1.0; g.len()],
            };
            Ok(Val::Vector(map_points(v, |t, x| {
                let inv = 1.0 / to[g.index(t)];
                Some((x * inv + 0.5).floor() / inv)
            })))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ev.eval_vector(arg(0)?, g)?;
            let (lo, hi) = match name {
                "clamp" => (ev.eval_scalar(arg(1)?, g)?, ev.eval_scalar(arg(2)?, g)?),
                "clamp_min" => (ev.eval_scalar(arg(1)?, g)?, vec![f64::INFINITY; g.len()]),
                _ => (
                    vec![f64::NEG_INFINITY; g.len()],
                    ev.eval_scalar(arg(1)?, g)?,
                ),
            };
            Ok(Val::Vector(map_points(v, |t, x| {
                let i = g.index(t);
                if hi[i] < lo[i] {
                    return None;
                }
                Some(go_max(lo[i], go_min(hi[i], x)))
            })))
        }
        "timestamp" => match unwrap_paren(arg(0)?) {
            Expr::VectorSelector(vs) => {
                let mut v = ev.vector_selector(vs, g, true)?;
                v.iter_mut().for_each(|s| s.drop_name = true);
                Ok(Val::Vector(v))
            }
            e => {
                let v = ev.eval_vector(e, g)?;
                Ok(Val::Vector(map_points(v, |t, _| Some(t as f64 / 1000.0))))
            }
        },
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let f = date_function(name);
            match args.first() {
                None => Ok(Val::Vector(vec![Series {
                    metric: Lset::default(),
                    points: (0..g.len())
                        .map(|i| Point {
                            t: g.ts(i),
                            v: f(g.ts(i).div_euclid(1000)),
                        })
                        .collect(),
                    drop_name: false,
                }])),
                Some(e) => {
                    let v = ev.eval_vector(e, g)?;
                    Ok(Val::Vector(map_points(v, |_, x| Some(f(go_int64(x))))))
                }
            }
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(arg(0)?, g)?;
            if !g.is_instant() {
                ev.warn(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                        .into(),
                );
                return Ok(Val::Vector(v));
            }
            let value = |s: &Series| s.points.first().map_or(f64::NAN, |p| p.v);
            match name {
                "sort" => v.sort_by(|a, b| nan_last(value(a), value(b), false)),
                "sort_desc" => v.sort_by(|a, b| nan_last(value(a), value(b), true)),
                _ => {
                    let mut labels = Vec::new();
                    for a in &args[1..] {
                        labels.push(string_arg(a)?.to_owned());
                    }
                    let desc = name == "sort_by_label_desc";
                    v.sort_by(|a, b| {
                        for l in &labels {
                            let (x, y) = (a.metric.get(l), b.metric.get(l));
                            if x == y {
                                continue;
                            }
                            let o = natural_cmp(x, y);
                            return if desc { o.reverse() } else { o };
                        }
                        let o = a.metric.cmp(&b.metric);
                        if desc { o.reverse() } else { o }
                    });
                }
            }
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let dst = string_arg(arg(1)?)?.to_owned();
            let repl = string_arg(arg(2)?)?.to_owned();
            let src = string_arg(arg(3)?)?.to_owned();
            let re_src = string_arg(arg(4)?)?.to_owned();
            let re = regex::Regex::new(&format!("^(?s:{re_src})$")).map_err(|_| {
                PromqlError::exec(format!(
                    "invalid regular expression in label_replace(): {re_src}"
                ))
            })?;
            if !is_valid_label_name(&dst) {
                return Err(PromqlError::exec(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let mut v = ev.eval_vector(arg(0)?, g)?;
            for s in &mut v {
                let value = s.metric.get(&src).to_owned();
                if let Some(caps) = re.captures(&value) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    s.metric = s.metric.with(&dst, &res);
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                }
            }
            Ok(Val::Vector(merge_same_labels(v)?))
        }
        "label_join" => {
            let dst = string_arg(arg(1)?)?.to_owned();
            let sep = string_arg(arg(2)?)?.to_owned();
            let mut srcs = Vec::new();
            for a in &args[3..] {
                let s = string_arg(a)?;
                if !is_valid_label_name(s) {
                    return Err(PromqlError::exec(format!(
                        "invalid source label name in label_join(): {s}"
                    )));
                }
                srcs.push(s.to_owned());
            }
            if !is_valid_label_name(&dst) {
                return Err(PromqlError::exec(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let mut v = ev.eval_vector(arg(0)?, g)?;
            for s in &mut v {
                let joined: Vec<&str> = srcs.iter().map(|l| s.metric.get(l)).collect();
                let joined = joined.join(&sep);
                s.metric = s.metric.with(&dst, &joined);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
            Ok(Val::Vector(merge_same_labels(v)?))
        }
        "absent" => {
            let v = ev.eval_vector(arg(0)?, g)?;
            let labels = match unwrap_paren(arg(0)?) {
                Expr::VectorSelector(vs) => absent_labels(vs),
                _ => Lset::default(),
            };
            Ok(Val::Vector(absent_steps(&v, labels, g)))
        }
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(0)?, g)?;
            let v = ev.eval_vector(arg(1)?, g)?;
            warn_quantiles(ev, &q);
            Ok(Val::Vector(classic_histogram(ev, &v, g, None, |i, b| {
                let (v, forced) = bucket_quantile(q[i], b.to_vec());
                vec![(v, forced, String::new())]
            })?))
        }
        "histogram_quantiles" => {
            let v = ev.eval_vector(arg(0)?, g)?;
            let label = string_arg(arg(1)?)?.to_owned();
            let mut qs = Vec::new();
            for e in &args[2..] {
                let q = ev.eval_scalar(e, g)?;
                warn_quantiles(ev, &q);
                qs.push(q);
            }
            Ok(Val::Vector(classic_histogram(
                ev,
                &v,
                g,
                Some(&label),
                |i, b| {
                    qs.iter()
                        .map(|q| {
                            let (v, forced) = bucket_quantile(q[i], b.to_vec());
                            (v, forced, openmetrics_float(q[i]))
                        })
                        .collect()
                },
            )?))
        }
        "histogram_fraction" => {
            let lo = ev.eval_scalar(arg(0)?, g)?;
            let hi = ev.eval_scalar(arg(1)?, g)?;
            let v = ev.eval_vector(arg(2)?, g)?;
            Ok(Val::Vector(classic_histogram(ev, &v, g, None, |i, b| {
                vec![(
                    bucket_fraction(lo[i], hi[i], b.to_vec()),
                    false,
                    String::new(),
                )]
            })?))
        }
        "info" => crate::info::info(ev, &args, g),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(arg(0)?, g)?;
            let b = ev.eval_scalar(arg(1)?, g)?;
            let max = name == "max_of";
            Ok(Val::Scalar(
                a.iter()
                    .zip(&b)
                    .map(|(&x, &y)| if max { go_max(x, y) } else { go_min(x, y) })
                    .collect(),
            ))
        }
        "start" => Ok(Val::Scalar(vec![ev.query_start as f64 / 1000.0; g.len()])),
        "end" => Ok(Val::Scalar(vec![ev.query_end as f64 / 1000.0; g.len()])),
        "range" => Ok(Val::Scalar(vec![
            (ev.query_end - ev.query_start) as f64
                / 1000.0;
            g.len()
        ])),
        "step" => Ok(Val::Scalar(vec![ev.query_step as f64 / 1000.0; g.len()])),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Only native histograms have these; float samples give nothing.
            let _ = ev.eval_vector(arg(0)?, g)?;
            Ok(Val::Vector(Vec::new()))
        }
        _ => Err(PromqlError::BadData(format!(
            "function {name}() is not supported"
        ))),
    }
}

/// Maps every point of every series (`None` drops the point); `__name__` is dropped.
fn map_points(v: Vec<Series>, f: impl Fn(i64, f64) -> Option<f64>) -> Vec<Series> {
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        s.points.retain_mut(|p| match f(p.t, p.v) {
            Some(x) => {
                p.v = x;
                true
            }
            None => false,
        });
        s.drop_name = true;
        if !s.points.is_empty() {
            out.push(s);
        }
    }
    out
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `int64(f)` for time functions (NaN and out-of-range saturate to `i64::MIN`, as on
/// amd64).
fn go_int64(f: f64) -> i64 {
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

fn nan_last(a: f64, b: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

/// Natural order: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    if a.is_empty() || b.is_empty() {
        return a.cmp(b);
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = if x.0 && y.0 {
            let (xt, yt) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
            xt.len().cmp(&yt.len()).then_with(|| xt.cmp(yt))
        } else {
            x.1.cmp(y.1)
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len())
}

/// The labels `absent()` gives: the selector's equality matchers (a name matched twice is
/// left out), without `__name__`.
fn absent_labels(vs: &promql_parser::parser::VectorSelector) -> Lset {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            pairs.push((&m.name, &m.value));
            has.push(&m.name);
        } else {
            pairs.retain(|(n, _)| *n != m.name);
        }
    }
    Lset::from_pairs(pairs)
}

/// A series of 1 at the steps where `present` has no point.
fn absent_steps(present: &[Series], labels: Lset, g: Grid) -> Vec<Series> {
    let mut seen = vec![false; g.len()];
    for s in present {
        for p in &s.points {
            seen[g.index(p.t)] = true;
        }
    }
    let points: Vec<Point> = (0..g.len())
        .filter(|&i| !seen[i])
        .map(|i| Point { t: g.ts(i), v: 1.0 })
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![Series {
        metric: labels,
        points,
        drop_name: true,
    }]
}

/// Groups classic-histogram bucket series (by all labels but `le`) at every step and
/// computes `f` over each group's buckets: values, whether monotonicity was forced, and
/// (with `label`) that label's value for each result.
fn classic_histogram(
    ev: &mut Evaluator<'_>,
    v: &[Series],
    g: Grid,
    label: Option<&str>,
    f: impl Fn(usize, &[Bucket]) -> Vec<(f64, bool, String)>,
) -> Result<Vec<Series>> {
    let mut groups: FastMap<Lset, usize> = FastMap::default();
    let mut group_labels: Vec<Lset> = Vec::new();
    let mut series_group: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
    for s in v {
        let le = s.metric.get("le");
        match parse_go_float(le) {
            Some(upper) => {
                let key = s.metric.retain(|n| n != "le");
                let n = group_labels.len();
                let gi = *groups.entry(key.clone()).or_insert_with(|| {
                    group_labels.push(key);
                    n
                });
                series_group.push(Some((gi, upper)));
            }
            None => {
                let metric_name = s.metric.get(METRIC_NAME);
                ev.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {metric_name:?}"
                ));
                series_group.push(None);
            }
        }
    }
    let mut reader = StepReader::new(v);
    let mut out = Collector::new(g);
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); group_labels.len()];
    let mut order: Vec<usize> = Vec::new();
    for i in 0..g.len() {
        ev.check()?;
        let ts = g.ts(i);
        buckets.iter_mut().for_each(Vec::clear);
        order.clear();
        reader.at(ts, |si, val| {
            if let Some((gi, upper)) = series_group[si] {
                if buckets[gi].is_empty() {
                    order.push(gi);
                }
                buckets[gi].push(Bucket { upper, count: val });
            }
        });
        for &gi in &order {
            for (v, forced, label_value) in f(i, &buckets[gi]) {
                if forced {
                    let name = group_labels[gi].get(METRIC_NAME).to_owned();
                    let suffix = if name.is_empty() {
                        String::new()
                    } else {
                        format!(" for metric name {name:?}")
                    };
                    ev.info(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){suffix}"
                    ));
                }
                let metric = match label {
                    Some(l) => group_labels[gi].with(l, &label_value),
                    None => group_labels[gi].clone(),
                };
                out.push(
                    ts,
                    Elem {
                        metric,
                        v,
                        drop_name: true,
                    },
                )?;
            }
        }
    }
    Ok(out.finish())
}

fn warn_quantiles(ev: &mut Evaluator<'_>, q: &[f64]) {
    if let Some(bad) = q.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
        ev.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            format_g(*bad)
        ));
    }
}

/// OpenMetrics' float format (`1.0`, `0.5`, `+Inf`), for `histogram_quantiles` labels.
fn openmetrics_float(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        crate::quantile::format_float(v)
    }
}

/// Go's `strconv.ParseFloat` for bucket bounds (`+Inf`, `Inf`, `1e3`, …).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let t = s.trim_start_matches(['+', '-']);
    let valid = t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("infinity")
        || t.eq_ignore_ascii_case("nan")
        || t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if !valid {
        return None;
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if s.starts_with('-') { -v } else { v });
    }
    s.replace('_', "").parse::<f64>().ok()
}

fn date_function(name: &str) -> fn(i64) -> f64 {
    match name {
        "minute" => |s| (s.rem_euclid(3600) / 60) as f64,
        "hour" => |s| (s.rem_euclid(86400) / 3600) as f64,
        "day_of_week" => |s| ((s.div_euclid(86400) + 4).rem_euclid(7)) as f64,
        "day_of_month" => |s| civil(s).2 as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil(s);
            let mut doy = d;
            for mm in 1..m {
                doy += days_in(y, mm);
            }
            doy as f64
        },
        "days_in_month" => |s| {
            let (y, m, _) = civil(s);
            days_in(y, m) as f64
        },
        "month" => |s| civil(s).1 as f64,
        _ => |s| civil(s).0 as f64,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) of Unix seconds, UTC (Howard Hinnant's `civil_from_days`).
fn civil(secs: i64) -> (i64, i64, i64) {
    let z = secs.div_euclid(86400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(951_782_400), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn natural_order_compares_numbers() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn go_floats_parse_like_strconv() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("0.5"), Some(0.5));
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("Hello World"), None);
        assert_eq!(parse_go_float(""), None);
    }
}
