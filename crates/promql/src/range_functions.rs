//! Range-vector functions: `rate`, `increase`, `delta` (with Prometheus' extrapolation to
//! the window edges), `irate`, `idelta`, `deriv`, `changes`, `resets` and every
//! `*_over_time`, each computed over one series' samples in the window `(t - range, t]`;
//! plus the least-squares and Holt-Winters helpers `predict_linear` and
//! `double_exponential_smoothing` share.

use dozor_model::labels::METRIC_NAME;

use crate::PromqlError;
use crate::eval::{Evaluator, RangeInput};
use crate::lset::Lset;
use crate::quantile::{kahan_inc, quantile};
use crate::value::{Grid, Point, Series};

type Result<T> = std::result::Result<T, PromqlError>;

/// Applies the range function `name` to every series of `input` at every step of `g`.
pub(crate) fn range_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    input: &RangeInput,
    g: Grid,
) -> Result<Vec<Series>> {
    let drop_name = !matches!(name, "last_over_time" | "first_over_time");
    let range = input.range;
    let out = ev.apply_range(
        input,
        g,
        drop_name,
        |_, w, _, _, (start, end), _| match name {
            "rate" => extrapolated(w, start, end, range, true, true),
            "increase" => extrapolated(w, start, end, range, true, false),
            "delta" => extrapolated(w, start, end, range, false, false),
            "irate" => instant_value(w, true),
            "idelta" => instant_value(w, false),
            "deriv" => {
                if w.len() < 2 {
                    return None;
                }
                Some(linear_regression(w, w[0].t).0)
            }
            "changes" => Some(
                w.windows(2)
                    .filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan()))
                    .count() as f64,
            ),
            "resets" => Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
            "avg_over_time" => Some(avg(w)),
            "sum_over_time" => {
                let (mut s, mut c) = (0.0, 0.0);
                for p in w {
                    (s, c) = kahan_inc(p.v, s, c);
                }
                Some(if s.is_infinite() { s } else { s + c })
            }
            "count_over_time" => Some(w.len() as f64),
            "min_over_time" | "max_over_time" | "ts_of_min_over_time" | "ts_of_max_over_time" => {
                let max = name.contains("max");
                let (mut best, mut t) = (w[0].v, w[0].t);
                for p in w {
                    let better = if name.starts_with("ts_of") {
                        if max { p.v >= best } else { p.v <= best }
                    } else if max {
                        p.v > best
                    } else {
                        p.v < best
                    };
                    if better || best.is_nan() {
                        best = p.v;
                        t = p.t;
                    }
                }
                Some(if name.starts_with("ts_of") {
                    t as f64 / 1000.0
                } else {
                    best
                })
            }
            "stddev_over_time" | "stdvar_over_time" => {
                let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for p in w {
                    count += 1.0;
                    let delta = p.v - (mean + cmean);
                    (mean, cmean) = kahan_inc(delta / count, mean, cmean);
                    (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
                }
                let var = (aux + caux) / count;
                Some(if name == "stddev_over_time" {
                    var.sqrt()
                } else {
                    var
                })
            }
            "last_over_time" => w.last().map(|p| p.v),
            "first_over_time" => w.first().map(|p| p.v),
            "ts_of_first_over_time" => w.first().map(|p| p.t as f64 / 1000.0),
            "ts_of_last_over_time" => w.last().map(|p| p.t as f64 / 1000.0),
            "present_over_time" => Some(1.0),
            "mad_over_time" => {
                if w.iter().any(|p| p.v.is_nan()) {
                    return Some(f64::NAN);
                }
                let mut vals: Vec<f64> = w.iter().map(|p| p.v).collect();
                let median = quantile(0.5, &mut vals);
                vals.iter_mut().for_each(|v| *v = (*v - median).abs());
                Some(quantile(0.5, &mut vals))
            }
            _ => None,
        },
    )?;
    if matches!(name, "rate" | "increase") {
        let produced: std::collections::HashSet<&Lset> = out.iter().map(|o| &o.metric).collect();
        for s in &input.series {
            let metric_name = s.metric.get(METRIC_NAME);
            if !metric_name.is_empty()
                && !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suf| metric_name.ends_with(suf))
                && produced.contains(&s.metric)
            {
                ev.info(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric_name:?}"
                ));
            }
        }
    }
    Ok(out)
}

fn avg(w: &[Point]) -> f64 {
    let (mut sum, mut count) = (w[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in w.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards the
/// window's edges (at most half a sample interval past the first and last samples, and
/// never below zero for counters).
fn extrapolated(
    w: &[Point],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        for p in w.windows(2) {
            if p[1].v < p[0].v {
                result += p[0].v;
            }
        }
    }
    // In f64: the window edges may be saturated far from the samples.
    let mut to_start = (first.t as f64 - range_start as f64) / 1000.0;
    let mut to_end = (range_end as f64 - last.t as f64) / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_interval = sampled / (w.len() - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.v >= 0.0 {
            to_zero = sampled * (first.v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Point], rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    let mut v = if rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    if rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope (per second) and intercept at `intercept_t`.
pub(crate) fn linear_regression(w: &[Point], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init = w[0].v;
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

pub(crate) fn double_exponential_smoothing(w: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let mut s0 = 0.0;
    let mut s1 = w[0].v;
    let mut b = w[1].v - w[0].v;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // Samples every 10 s from t=10 s to t=50 s over a 60 s window ending at 60 s.
        let w: Vec<Point> = (1..=5)
            .map(|i| Point {
                t: i * 10_000,
                v: (i * 10) as f64,
            })
            .collect();
        let r = extrapolated(&w, 0, 60_000, 60_000, true, true).unwrap();
        // 40 over 40 s, extrapolated by 10 s at each end (under 1.1 sample intervals away)
        // and per second of the 60 s range.
        assert!((r - 1.0).abs() < 1e-12, "{r}");
    }
}
