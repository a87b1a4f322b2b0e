//! Aggregation operators: `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `quantile`, `count_values`, `topk`, `bottomk`, `limitk`, `limit_ratio`, with
//! `by`/`without`. Sums use Kahan–Neumaier compensation, as Prometheus does.

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::PromqlError;
use crate::eval::Evaluator;
use crate::lset::Lset;
use crate::quantile::{format_float, kahan_inc, quantile};
use crate::value::{Collector, Elem, FastMap, Grid, Point, Series, StepReader, Val};

type Result<T> = std::result::Result<T, PromqlError>;

/// The labels of a series' group and the key that identifies the group.
fn group_of(metric: &Lset, without: bool, grouping: &[String]) -> (Vec<u8>, Lset) {
    if without {
        (
            metric.signature(false, grouping),
            metric.match_labels(false, grouping),
        )
    } else if grouping.is_empty() {
        (Vec::new(), Lset::default())
    } else {
        (
            metric.signature(true, grouping),
            metric.match_labels(true, grouping),
        )
    }
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, a: &AggregateExpr, g: Grid) -> Result<Val> {
    let op = a.op.id();
    let (without, grouping) = match &a.modifier {
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        None => (false, Vec::new()),
    };
    if op == T_COUNT_VALUES {
        let mut param = a.param.as_deref();
        while let Some(Expr::Paren(p)) = param {
            param = Some(&p.expr);
        }
        let label = match param {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => {
                return Err(PromqlError::BadData(
                    "count_values needs a string parameter".into(),
                ));
            }
        };
        if !dozor_model::labels::is_valid_label_name(&label) {
            return Err(PromqlError::exec(format!("invalid label name {label:?}")));
        }
        let input = ev.eval_vector(&a.expr, g)?;
        let out = count_values(ev, &input, &label, without, &grouping, g)?;
        return Ok(Val::Vector(out));
    }
    let param = match (&a.param, op) {
        (Some(p), T_TOPK | T_BOTTOMK | T_QUANTILE | T_LIMITK | T_LIMIT_RATIO) => {
            Some(ev.eval_scalar(p, g)?)
        }
        _ => None,
    };
    let input = ev.eval_vector(&a.expr, g)?;
    let out = match op {
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
            let param = param.unwrap_or_default();
            aggregate_k(ev, op, &param, &input, without, &grouping, g)?
        }
        _ => {
            if op == T_QUANTILE
                && let Some(p) = &param
            {
                let bad = p
                    .iter()
                    .find(|q| q.is_nan() || **q < 0.0 || **q > 1.0)
                    .copied();
                if let Some(q) = bad {
                    ev.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_float(q)
                    ));
                }
            }
            aggregate(ev, op, param.as_deref(), &input, without, &grouping, g)?
        }
    };
    let held: usize = input.iter().map(|s| s.points.len()).sum();
    ev.release(held);
    Ok(Val::Vector(out))
}

#[derive(Default, Clone)]
struct Acc {
    seen: bool,
    v: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    values: Vec<f64>,
    drop_name: bool,
}

fn aggregate(
    ev: &mut Evaluator<'_>,
    op: u16,
    param: Option<&[f64]>,
    input: &[Series],
    without: bool,
    grouping: &[String],
    g: Grid,
) -> Result<Vec<Series>> {
    let mut keys: FastMap<Vec<u8>, usize> = FastMap::default();
    let mut out: Vec<Series> = Vec::new();
    let mut group_of_series = Vec::with_capacity(input.len());
    for s in input {
        let (key, labels) = group_of(&s.metric, without, grouping);
        let n = out.len();
        let gi = *keys.entry(key).or_insert_with(|| {
            out.push(Series {
                metric: labels,
                points: Vec::new(),
                drop_name: false,
            });
            n
        });
        group_of_series.push(gi);
    }
    let mut accs = vec![Acc::default(); out.len()];
    let mut reader = StepReader::new(input);
    for i in 0..g.len() {
        ev.check()?;
        let ts = g.ts(i);
        accs.iter_mut().for_each(|a| {
            a.seen = false;
            a.values.clear();
        });
        reader.at(ts, |si, f| {
            let a = &mut accs[group_of_series[si]];
            if !a.seen {
                a.seen = true;
                a.v = f;
                a.mean = f;
                a.c = 0.0;
                a.count = 1.0;
                a.incremental = false;
                a.drop_name = input[si].drop_name;
                match op {
                    T_STDDEV | T_STDVAR => {
                        a.v = if f.is_nan() || f.is_infinite() {
                            f64::NAN
                        } else {
                            0.0
                        };
                    }
                    T_QUANTILE => a.values.push(f),
                    T_GROUP => a.v = 1.0,
                    _ => {}
                }
                return;
            }
            a.drop_name |= input[si].drop_name;
            match op {
                T_SUM => (a.v, a.c) = kahan_inc(f, a.v, a.c),
                T_AVG => {
                    a.count += 1.0;
                    if !a.incremental {
                        let (nv, nc) = kahan_inc(f, a.v, a.c);
                        if !nv.is_infinite() {
                            a.v = nv;
                            a.c = nc;
                            return;
                        }
                        a.incremental = true;
                        a.mean = a.v / (a.count - 1.0);
                        a.c /= a.count - 1.0;
                    }
                    let q = (a.count - 1.0) / a.count;
                    (a.mean, a.c) = kahan_inc(f / a.count, q * a.mean, q * a.c);
                }
                T_MAX if a.v < f || a.v.is_nan() => a.v = f,
                T_MIN if a.v > f || a.v.is_nan() => a.v = f,
                T_COUNT => a.count += 1.0,
                T_STDDEV | T_STDVAR => {
                    a.count += 1.0;
                    let delta = f - a.mean;
                    a.mean += delta / a.count;
                    a.v += delta * (f - a.mean);
                }
                T_QUANTILE => a.values.push(f),
                _ => {}
            }
        });
        for (gi, a) in accs.iter_mut().enumerate() {
            if !a.seen {
                continue;
            }
            let v = match op {
                T_SUM => {
                    if a.v.is_infinite() {
                        a.v
                    } else {
                        a.v + a.c
                    }
                }
                T_AVG => {
                    if a.incremental {
                        a.mean + a.c
                    } else {
                        a.v / a.count + a.c / a.count
                    }
                }
                T_COUNT => a.count,
                T_STDVAR => a.v / a.count,
                T_STDDEV => (a.v / a.count).sqrt(),
                T_QUANTILE => {
                    let q = param.map_or(f64::NAN, |p| p[i]);
                    quantile(q, &mut a.values)
                }
                _ => a.v,
            };
            out[gi].points.push(Point { t: ts, v });
            out[gi].drop_name |= a.drop_name;
        }
    }
    out.retain(|s| !s.points.is_empty());
    let n: usize = out.iter().map(|s| s.points.len()).sum();
    ev.charge(n)?;
    Ok(out)
}

/// Go's `float64(int64(x))` for the k of `topk` & co., saturating.
fn k_of(f: f64, n: usize) -> i64 {
    let k = if f.is_nan() { 0 } else { f as i64 };
    k.min(n as i64)
}

fn aggregate_k(
    ev: &mut Evaluator<'_>,
    op: u16,
    param: &[f64],
    input: &[Series],
    without: bool,
    grouping: &[String],
    g: Grid,
) -> Result<Vec<Series>> {
    // Go's math.Max/Min: a NaN parameter makes both NaN.
    let nan = param.iter().any(|p| p.is_nan());
    let max = if nan {
        f64::NAN
    } else {
        param.iter().copied().fold(-f64::MAX, f64::max)
    };
    let min = if nan {
        f64::NAN
    } else {
        param.iter().copied().fold(f64::MAX, f64::min)
    };
    if op == T_LIMIT_RATIO {
        if max == 0.0 && min == 0.0 {
            return Ok(Vec::new());
        }
        if param.iter().any(|p| p.is_nan()) {
            return Err(PromqlError::exec("Ratio value is NaN"));
        }
        if max > 1.0 {
            ev.warn(format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                format_float(max)
            ));
        }
        if min < -1.0 {
            ev.warn(format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                format_float(min)
            ));
        }
    } else {
        if max < 1.0 {
            return Ok(Vec::new());
        }
        if param.iter().any(|p| p.is_nan()) {
            return Err(PromqlError::exec("Parameter value is NaN"));
        }
        if min <= i64::MIN as f64 {
            return Err(PromqlError::exec(format!(
                "Scalar value {} underflows int64",
                format_float(min)
            )));
        }
        if max >= i64::MAX as f64 {
            return Err(PromqlError::exec(format!(
                "Scalar value {} overflows int64",
                format_float(max)
            )));
        }
    }
    let mut keys: FastMap<Vec<u8>, usize> = FastMap::default();
    let mut group_of_series = Vec::with_capacity(input.len());
    for s in input {
        let (key, _) = group_of(&s.metric, without, grouping);
        let n = keys.len();
        group_of_series.push(*keys.entry(key).or_insert(n));
    }
    let ngroups = keys.len();
    let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ngroups];
    let mut order: Vec<usize> = Vec::new();
    let mut reader = StepReader::new(input);
    let mut out = Collector::new(g);
    for (i, &p) in param.iter().enumerate().take(g.len()) {
        ev.check()?;
        let ts = g.ts(i);
        members.iter_mut().for_each(Vec::clear);
        order.clear();
        reader.at(ts, |si, v| {
            let gi = group_of_series[si];
            if members[gi].is_empty() {
                order.push(gi);
            }
            members[gi].push((si, v));
        });
        let k = k_of(p, input.len());
        if op != T_LIMIT_RATIO && k < 1 {
            continue;
        }
        let ratio = p.clamp(-1.0, 1.0);
        for &gi in &order {
            let m = &mut members[gi];
            let chosen: Vec<(usize, f64)> = match op {
                T_TOPK => {
                    m.sort_by(|a, b| desc_nan_last(a.1, b.1));
                    m.iter().take(k as usize).copied().collect()
                }
                T_BOTTOMK => {
                    m.sort_by(|a, b| asc_nan_last(a.1, b.1));
                    m.iter().take(k as usize).copied().collect()
                }
                T_LIMITK => m.iter().take(k as usize).copied().collect(),
                _ => m
                    .iter()
                    .filter(|(si, _)| ratio_sample(ratio, &input[*si].metric))
                    .copied()
                    .collect(),
            };
            for (si, v) in chosen {
                out.push(
                    ts,
                    Elem {
                        metric: input[si].metric.clone(),
                        v,
                        drop_name: input[si].drop_name,
                    },
                )?;
            }
        }
    }
    let out = out.finish();
    let n: usize = out.iter().map(|s| s.points.len()).sum();
    ev.charge(n)?;
    Ok(out)
}

fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Prometheus' hash-based ratio sampler: a series is in `limit_ratio(r, …)` when its label
/// hash, scaled to [0, 1), is below `r` (or, for negative `r`, at least `1 + r`).
fn ratio_sample(ratio: f64, metric: &Lset) -> bool {
    let offset = crate::quantile::labels_hash(metric) as f64 / u64::MAX as f64;
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn count_values(
    ev: &mut Evaluator<'_>,
    input: &[Series],
    label: &str,
    without: bool,
    grouping: &[String],
    g: Grid,
) -> Result<Vec<Series>> {
    let mut grouping = grouping.to_vec();
    if !without {
        grouping.push(label.to_owned());
    }
    let mut reader = StepReader::new(input);
    let mut out = Collector::new(g);
    for i in 0..g.len() {
        ev.check()?;
        let ts = g.ts(i);
        let mut counts: Vec<(Lset, f64)> = Vec::new();
        let mut index: FastMap<Lset, usize> = FastMap::default();
        reader.at(ts, |si, v| {
            let m = input[si].metric.with(label, &format_float(v));
            let (_, labels) = group_of(&m, without, &grouping);
            match index.get(&labels) {
                Some(&j) => counts[j].1 += 1.0,
                None => {
                    index.insert(labels.clone(), counts.len());
                    counts.push((labels, 1.0));
                }
            }
        });
        for (metric, v) in counts {
            out.push(
                ts,
                Elem {
                    metric,
                    v,
                    drop_name: false,
                },
            )?;
        }
    }
    Ok(out.finish())
}
