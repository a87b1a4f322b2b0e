//! Evaluating LogQL against a log store: log queries return lines grouped by stream;
//! metric queries return one value per step, like Loki's `query_range`.
//!
//! A metric query reads its lines once: every line the pipeline keeps becomes a sample
//! `(time, value)` of its series, and each step's window (`(t - offset - range,
//! t - offset]`) is then folded from the sorted samples with two moving bounds, so a range
//! query costs one scan plus `O(samples + steps)` per series, whatever the step.

use std::collections::HashMap;

use dozor_model::MatchOp;

use super::ast::*;
use super::pipeline::{Line, Pipeline, label_filter, number};
use super::{EvalError, Key, QueryResult, Series, Stream};
use crate::{Direction, LogDb, LogQuery, LogsError, RecordRef};

/// Most series one metric query may produce.
pub const MAX_SERIES: usize = 50_000;
/// Most steps of a range query (Prometheus' limit).
pub const MAX_STEPS: usize = 11_000;

/// What a query reads from: one tenant's store, or anything that can scan records.
pub trait Source {
    /// Calls `f` with every record `q` selects, in any order.
    fn scan(&self, q: &LogQuery, f: &mut dyn FnMut(RecordRef<'_>)) -> Result<(), LogsError>;
}

impl Source for LogDb {
    fn scan(&self, q: &LogQuery, f: &mut dyn FnMut(RecordRef<'_>)) -> Result<(), LogsError> {
        LogDb::scan(self, q, f)
    }
}

/// Records in memory (a rule preview, a test, the fuzz target): matched as the store would.
impl Source for Vec<dozor_model::LogRecord> {
    fn scan(&self, q: &LogQuery, f: &mut dyn FnMut(RecordRef<'_>)) -> Result<(), LogsError> {
        let want = crate::part::Want {
            matchers: &q.matchers,
            start_ns: q.start_ns,
            end_ns: q.end_ns,
            needles: &q.needles,
        };
        for r in self {
            if want.row(r.time_ns, &r.message) && want.stream(&r.stream) {
                f(RecordRef::of(r));
            }
        }
        Ok(())
    }
}

/// No store (a tenant without data): every scan is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Empty;

impl Source for Empty {
    fn scan(&self, _: &LogQuery, _: &mut dyn FnMut(RecordRef<'_>)) -> Result<(), LogsError> {
        Ok(())
    }
}

/// When and how much to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// First step (a log query's first nanosecond), ns.
    pub start_ns: i64,
    /// Last step (a log query's last nanosecond), ns; inclusive.
    pub end_ns: i64,
    /// Step of a metric query, ns; 0 for an instant query (one step at `end_ns`).
    pub step_ns: i64,
    /// Most lines a log query returns.
    pub limit: usize,
    /// Which lines a log query returns first.
    pub direction: Direction,
}

/// What a query read, for Loki's `stats` and the audit record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Records the store handed to the pipeline.
    pub lines_scanned: u64,
    /// Their message bytes.
    pub bytes_scanned: u64,
    /// Lines returned (log query) or series returned (metric query).
    pub returned: u64,
}

/// Evaluates `expr` over `src`.
pub fn evaluate(
    src: &dyn Source,
    expr: &Expr,
    range: Range,
) -> Result<(QueryResult, Stats), EvalError> {
    let mut stats = Stats::default();
    let result = match expr {
        Expr::Log(log) => {
            let streams = log_query(src, log, range, &mut stats)?;
            stats.returned = streams.iter().map(|s| s.entries.len() as u64).sum();
            QueryResult::Streams(streams)
        }
        Expr::Metric(m) => {
            let steps = Steps::new(range)?;
            let value = Evaluator {
                src,
                steps,
                stats: &mut stats,
            }
            .eval(m)?;
            match value {
                Value::Scalar(v) if steps.instant() => QueryResult::Scalar(steps.at(0), v),
                Value::Scalar(v) => QueryResult::Matrix(vec![Series {
                    labels: Vec::new(),
                    points: (0..steps.n).map(|i| (steps.at(i), v)).collect(),
                }]),
                Value::Vector(vs) => {
                    let mut series: Vec<Series> = vs
                        .into_iter()
                        .filter_map(|(labels, values)| {
                            let points: Vec<(i64, f64)> = values
                                .iter()
                                .enumerate()
                                .filter_map(|(i, v)| v.map(|v| (steps.at(i), v)))
                                .collect();
                            (!points.is_empty()).then_some(Series { labels, points })
                        })
                        .collect();
                    series.sort_by(|a, b| a.labels.cmp(&b.labels));
                    // An instant query's sort, sort_desc, topk and bottomk order the series
                    // by value.
                    let by_value = |a: &Series, b: &Series| a.points[0].1.total_cmp(&b.points[0].1);
                    match m {
                        MetricExpr::Vector(VectorAgg {
                            op: VectorOp::Sort | VectorOp::Bottomk,
                            ..
                        }) if steps.instant() => {
                            series.sort_by(by_value);
                        }
                        MetricExpr::Vector(VectorAgg {
                            op: VectorOp::SortDesc | VectorOp::Topk,
                            ..
                        }) if steps.instant() => {
                            series.sort_by(|a, b| by_value(b, a));
                        }
                        _ => {}
                    }
                    stats.returned = series.len() as u64;
                    if steps.instant() {
                        QueryResult::Vector(series)
                    } else {
                        QueryResult::Matrix(series)
                    }
                }
            }
        }
    };
    Ok((result, stats))
}

/// Substrings every kept line must contain, for the store's bloom filters: the single-value
/// `|=` filters before anything rewrites the line.
fn needles(log: &LogExpr) -> crate::Needles {
    let mut n = crate::Needles::default();
    for s in &log.pipeline {
        match s {
            Stage::Line(LineFilter {
                op: LineOp::Contains,
                values,
            }) if values.len() == 1 => {
                if let LineValue::Text(t) = &values[0]
                    && !t.is_empty()
                {
                    n.push(t);
                }
            }
            Stage::LineFormat(_) | Stage::Unpack | Stage::Decolorize => break,
            _ => {}
        }
    }
    n
}

fn scan_query(log: &LogExpr, start_ns: i64, end_ns: i64) -> LogQuery {
    let mut q = LogQuery::new(log.selector.clone(), start_ns, end_ns);
    q.needles = needles(log);
    q.limit = usize::MAX;
    q
}

/// The lines a log query keeps, best first by `range.direction` (ties by line text), at
/// most `range.limit`: what [`evaluate`] groups into streams, for callers that want the
/// lines flat with their labels' origins (the log search API).
pub fn select_lines(
    src: &dyn Source,
    log: &LogExpr,
    range: Range,
    stats: &mut Stats,
) -> Result<Vec<Line>, EvalError> {
    let pipeline = Pipeline::new(&log.pipeline);
    let q = scan_query(log, range.start_ns, range.end_ns);
    let limit = range.limit.max(1);
    let mut kept: Vec<Line> = Vec::new();
    let order = |a: &Line, b: &Line| {
        match range.direction {
            Direction::Backward => b.time_ns.cmp(&a.time_ns),
            Direction::Forward => a.time_ns.cmp(&b.time_ns),
        }
        .then_with(|| a.line.cmp(&b.line))
    };
    src.scan(&q, &mut |r| {
        stats.lines_scanned += 1;
        stats.bytes_scanned += r.message.len() as u64;
        if let Some(line) = pipeline.run(r) {
            kept.push(line);
            // Memory stays bounded by the limit: keep the best `limit` now and then.
            if kept.len() >= 2 * limit + 1024 {
                kept.sort_by(order);
                kept.truncate(limit);
            }
        }
    })?;
    kept.sort_by(order);
    kept.truncate(limit);
    Ok(kept)
}

fn log_query(
    src: &dyn Source,
    log: &LogExpr,
    range: Range,
    stats: &mut Stats,
) -> Result<Vec<Stream>, EvalError> {
    let kept = select_lines(src, log, range, stats)?;
    let mut streams: Vec<Stream> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for l in kept {
        let key = l.labels.visible();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            streams.push(Stream {
                labels: key,
                entries: Vec::new(),
            });
            streams.len() - 1
        });
        streams[i].entries.push((l.time_ns, l.line));
    }
    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(streams)
}

/// The steps of a query.
#[derive(Debug, Clone, Copy)]
struct Steps {
    start: i64,
    step: i64,
    n: usize,
}

impl Steps {
    fn new(r: Range) -> Result<Steps, EvalError> {
        if r.end_ns < r.start_ns {
            return Err(EvalError::Bad("the end is before the start".into()));
        }
        if r.step_ns <= 0 {
            return Ok(Steps {
                start: r.end_ns,
                step: 0,
                n: 1,
            });
        }
        let n = ((r.end_ns - r.start_ns) / r.step_ns) as u128 + 1;
        if n > MAX_STEPS as u128 {
            return Err(EvalError::Bad(format!(
                "{n} steps exceed the limit of {MAX_STEPS}: use a larger step or a shorter range"
            )));
        }
        Ok(Steps {
            start: r.start_ns,
            step: r.step_ns,
            n: n as usize,
        })
    }

    fn at(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    fn instant(&self) -> bool {
        self.step == 0
    }
}

/// A value per step.
type Values = Vec<Option<f64>>;

enum Value {
    Scalar(f64),
    Vector(Vec<(Key, Values)>),
}

struct Evaluator<'a> {
    src: &'a dyn Source,
    steps: Steps,
    stats: &'a mut Stats,
}

impl Evaluator<'_> {
    fn eval(&mut self, e: &MetricExpr) -> Result<Value, EvalError> {
        Ok(match e {
            MetricExpr::Literal(v) => Value::Scalar(*v),
            MetricExpr::VectorLiteral(v) => {
                Value::Vector(vec![(Vec::new(), vec![Some(*v); self.steps.n])])
            }
            MetricExpr::Range(r) => Value::Vector(self.range(r, None)?),
            MetricExpr::Vector(v) => {
                // `sum by (a) (range_agg(…))` for an additive range operation (a count, a
                // sum, a rate): folding the lines of each `a` directly equals summing the
                // per-series results by `a`, without building the series.
                let pushed = match (&*v.inner, v.op, &v.grouping) {
                    (MetricExpr::Range(r), VectorOp::Sum, g)
                        if r.grouping.is_none()
                            && r.op.is_additive()
                            && g.as_ref().is_none_or(|g| !g.without) =>
                    {
                        Some(self.range(
                            r,
                            Some(g.as_ref().map(|g| g.labels.as_slice()).unwrap_or(&[])),
                        )?)
                    }
                    _ => None,
                };
                let inner = match pushed {
                    Some(vs) => Value::Vector(vs),
                    None => self.eval(&v.inner)?,
                };
                let inner = match inner {
                    Value::Vector(vs) => vs,
                    Value::Scalar(_) => {
                        return Err(EvalError::Bad(
                            "an aggregation needs a vector, not a number".into(),
                        ));
                    }
                };
                Value::Vector(aggregate(v, inner, self.steps.n))
            }
            MetricExpr::Binary(b) => {
                let l = self.eval(&b.lhs)?;
                let r = self.eval(&b.rhs)?;
                binary(b, l, r, self.steps.n)?
            }
            MetricExpr::LabelReplace(lr) => match self.eval(&lr.inner)? {
                Value::Vector(vs) => Value::Vector(label_replace(lr, vs)),
                s => s,
            },
        })
    }

    /// The range aggregation's series; with `by`, only the labels listed (an enclosing
    /// `sum by` pushed down).
    fn range(
        &mut self,
        r: &RangeAgg,
        by: Option<&[String]>,
    ) -> Result<Vec<(Key, Values)>, EvalError> {
        let range_ns = i64::try_from(r.range.as_nanos()).unwrap_or(i64::MAX);
        let offset_ns = i64::try_from(r.offset.as_nanos()).unwrap_or(i64::MAX);
        let first = self
            .steps
            .at(0)
            .saturating_sub(offset_ns)
            .saturating_sub(range_ns)
            .saturating_add(1);
        let last = self.steps.at(self.steps.n - 1).saturating_sub(offset_ns);
        let pipeline = Pipeline::new(&r.log.pipeline);
        let q = scan_query(&r.log, first, last);
        let mut series: Vec<(Key, Vec<(i64, f64)>)> = Vec::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut too_many = false;
        // Streams repeat: when the key depends on the stream alone (no parser, and fields
        // absent or grouped away), remember the last stream's series.
        let line_only = pipeline.is_line_only() && r.unwrap.is_none() && r.grouping.is_none();
        let mut last: Option<(dozor_model::Labels, usize)> = None;
        let stats = &mut *self.stats;
        let bytes = matches!(r.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
        self.src.scan(&q, &mut |rec| {
            stats.lines_scanned += 1;
            stats.bytes_scanned += rec.message.len() as u64;
            if too_many {
                return;
            }
            let stream_keyed = line_only
                && by.is_none_or(|by| {
                    by.iter().all(|n| {
                        rec.fields
                            .binary_search_by(|(f, _)| f.as_str().cmp(n))
                            .is_err()
                    })
                })
                && (by.is_some() || rec.fields.is_empty());
            if stream_keyed
                && let Some((labels, i)) = &last
                && labels == rec.stream
            {
                if let Some(line) = pipeline.run(rec) {
                    let v = if bytes { line.line.len() as f64 } else { 1.0 };
                    series[*i].1.push((line.time_ns, v));
                }
                return;
            }
            let Some(line) = pipeline.run(rec) else {
                return;
            };
            if line.labels.has_error() {
                return;
            }
            let value = match &r.unwrap {
                None => {
                    if bytes {
                        line.line.len() as f64
                    } else {
                        1.0
                    }
                }
                Some(u) => {
                    if !u.filters.iter().all(|f| label_filter(f, &line.labels)) {
                        return;
                    }
                    match number(line.labels.get(&u.label), u.kind) {
                        Some(v) => v,
                        None => return,
                    }
                }
            };
            let key: Key = match (by, &r.grouping, &r.unwrap) {
                (Some(by), _, _) => group_key(false, by, &line),
                (None, Some(g), _) => group_key(g.without, &g.labels, &line),
                (None, None, Some(u)) => line
                    .labels
                    .visible()
                    .into_iter()
                    .filter(|(n, _)| *n != u.label)
                    .collect(),
                (None, None, None) => line.labels.visible(),
            };
            let i = match index.get(&key) {
                Some(&i) => i,
                None => {
                    if series.len() >= MAX_SERIES {
                        too_many = true;
                        return;
                    }
                    index.insert(key.clone(), series.len());
                    series.push((key, Vec::new()));
                    series.len() - 1
                }
            };
            if stream_keyed {
                last = Some((rec.stream.clone(), i));
            }
            series[i].1.push((line.time_ns, value));
        })?;
        if too_many {
            return Err(EvalError::Bad(format!(
                "the query makes more than {MAX_SERIES} series: aggregate with sum by (...) or select fewer streams"
            )));
        }
        if r.op == RangeOp::AbsentOverTime {
            let mut all: Vec<i64> = series
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(t, _)| *t))
                .collect();
            all.sort_unstable();
            let labels: Key = r
                .log
                .selector
                .iter()
                .filter(|m| m.op == MatchOp::Equal)
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            let mut values = vec![None; self.steps.n];
            for (i, v) in values.iter_mut().enumerate() {
                let end = self.steps.at(i) - offset_ns;
                let start = end - range_ns;
                let lo = all.partition_point(|t| *t <= start);
                let hi = all.partition_point(|t| *t <= end);
                if lo == hi {
                    *v = Some(1.0);
                }
            }
            return Ok(vec![(labels, values)]);
        }
        let steps = self.steps;
        Ok(series
            .into_iter()
            .map(|(key, mut points)| {
                points.sort_by_key(|p| p.0);
                let values = fold(r, &points, steps, range_ns, offset_ns);
                (key, values)
            })
            .collect())
    }
}

/// The labels a `by`/`without` grouping keeps of a line.
fn group_key(without: bool, names: &[String], line: &Line) -> Key {
    if without {
        line.labels
            .visible()
            .into_iter()
            .filter(|(n, _)| !names.contains(n))
            .collect()
    } else {
        let mut k: Key = line
            .labels
            .all()
            .filter(|(n, _)| names.iter().any(|l| l == n))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        k.sort();
        k
    }
}

/// Each step's window of `points` (sorted by time) folded by the range operation.
fn fold(
    r: &RangeAgg,
    points: &[(i64, f64)],
    steps: Steps,
    range_ns: i64,
    offset_ns: i64,
) -> Values {
    let secs = range_ns as f64 / 1e9;
    let mut out = vec![None; steps.n];
    let (mut lo, mut hi) = (0, 0);
    for (i, slot) in out.iter_mut().enumerate() {
        let end = steps.at(i) - offset_ns;
        let start = end - range_ns;
        while hi < points.len() && points[hi].0 <= end {
            hi += 1;
        }
        while lo < hi && points[lo].0 <= start {
            lo += 1;
        }
        if lo >= hi {
            continue;
        }
        let w = &points[lo..hi];
        let vals = w.iter().map(|p| p.1);
        let n = w.len() as f64;
        let sum = || vals.clone().sum::<f64>();
        *slot = Some(match r.op {
            RangeOp::CountOverTime => n,
            RangeOp::Rate | RangeOp::BytesRate => sum() / secs,
            RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
            RangeOp::AvgOverTime => sum() / n,
            RangeOp::MinOverTime => vals.clone().fold(f64::INFINITY, f64::min),
            RangeOp::MaxOverTime => vals.clone().fold(f64::NEG_INFINITY, f64::max),
            RangeOp::StddevOverTime | RangeOp::StdvarOverTime => {
                let mean = sum() / n;
                let var = vals.clone().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                if r.op == RangeOp::StddevOverTime {
                    var.sqrt()
                } else {
                    var
                }
            }
            RangeOp::QuantileOverTime => {
                let mut v: Vec<f64> = vals.clone().collect();
                v.sort_by(f64::total_cmp);
                quantile(r.param.unwrap_or(0.5), &v)
            }
            RangeOp::FirstOverTime => w[0].1,
            RangeOp::LastOverTime => w[w.len() - 1].1,
            RangeOp::RateCounter => {
                // Increase with counter resets, without extrapolation.
                let mut inc = 0.0;
                for p in w.windows(2) {
                    inc += if p[1].1 >= p[0].1 {
                        p[1].1 - p[0].1
                    } else {
                        p[1].1
                    };
                }
                inc / secs
            }
            RangeOp::AbsentOverTime => 1.0,
        });
    }
    out
}

/// Prometheus' quantile of sorted values (linear interpolation).
fn quantile(q: f64, sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let rank = q * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let w = rank - lo as f64;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

fn grouped(g: &Option<Grouping>, key: &Key) -> Key {
    match g {
        None => Vec::new(),
        Some(Grouping {
            without: false,
            labels,
        }) => key
            .iter()
            .filter(|(n, _)| labels.contains(n))
            .cloned()
            .collect(),
        Some(Grouping {
            without: true,
            labels,
        }) => key
            .iter()
            .filter(|(n, _)| !labels.contains(n))
            .cloned()
            .collect(),
    }
}

fn aggregate(v: &VectorAgg, inner: Vec<(Key, Values)>, n: usize) -> Vec<(Key, Values)> {
    match v.op {
        VectorOp::Sort | VectorOp::SortDesc => return inner,
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = v.param.unwrap_or(1.0) as usize;
            let mut groups: HashMap<Key, Vec<usize>> = HashMap::new();
            for (i, (key, _)) in inner.iter().enumerate() {
                groups.entry(grouped(&v.grouping, key)).or_default().push(i);
            }
            let mut keep = vec![vec![false; n]; inner.len()];
            for members in groups.values() {
                #[allow(clippy::needless_range_loop)] // `step` indexes every member's values.
                for step in 0..n {
                    let mut vals: Vec<(usize, f64)> = members
                        .iter()
                        .filter_map(|&i| inner[i].1[step].map(|x| (i, x)))
                        .collect();
                    if v.op == VectorOp::Topk {
                        vals.sort_by(|a, b| b.1.total_cmp(&a.1));
                    } else {
                        vals.sort_by(|a, b| a.1.total_cmp(&b.1));
                    }
                    for (i, _) in vals.into_iter().take(k) {
                        keep[i][step] = true;
                    }
                }
            }
            return inner
                .into_iter()
                .zip(keep)
                .map(|((key, vals), keep)| {
                    (
                        key,
                        vals.into_iter()
                            .zip(keep)
                            .map(|(v, k)| v.filter(|_| k))
                            .collect(),
                    )
                })
                .collect();
        }
        _ => {}
    }
    let mut groups: Vec<(Key, Vec<Vec<f64>>)> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for (key, vals) in inner {
        let g = grouped(&v.grouping, &key);
        let i = *index.entry(g.clone()).or_insert_with(|| {
            groups.push((g, vec![Vec::new(); n]));
            groups.len() - 1
        });
        for (step, val) in vals.into_iter().enumerate() {
            if let Some(x) = val {
                groups[i].1[step].push(x);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, per_step)| {
            let vals = per_step
                .into_iter()
                .map(|xs| {
                    if xs.is_empty() {
                        return None;
                    }
                    let n = xs.len() as f64;
                    let sum: f64 = xs.iter().sum();
                    Some(match v.op {
                        VectorOp::Sum => sum,
                        VectorOp::Avg => sum / n,
                        VectorOp::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
                        VectorOp::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        VectorOp::Count => n,
                        VectorOp::Stddev | VectorOp::Stdvar => {
                            let mean = sum / n;
                            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                            if v.op == VectorOp::Stddev {
                                var.sqrt()
                            } else {
                                var
                            }
                        }
                        VectorOp::Topk
                        | VectorOp::Bottomk
                        | VectorOp::Sort
                        | VectorOp::SortDesc => {
                            unreachable!("BUG: handled above")
                        }
                    })
                })
                .collect();
            (key, vals)
        })
        .collect()
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        _ => f64::NAN,
    }
}

/// `a op b` for one pair of values: `None` when a comparison without `bool` is false.
fn apply(b: &Binary, x: f64, y: f64, keep: f64) -> Option<f64> {
    match b.op.comparison() {
        Some(c) if b.return_bool => Some(if c.test(x, y) { 1.0 } else { 0.0 }),
        Some(c) => c.test(x, y).then_some(keep),
        None => Some(arith(b.op, x, y)),
    }
}

fn signature(m: &Option<Grouping>, key: &Key) -> Key {
    match m {
        None => key.clone(),
        Some(g) if g.without => key
            .iter()
            .filter(|(n, _)| !g.labels.contains(n))
            .cloned()
            .collect(),
        Some(g) => key
            .iter()
            .filter(|(n, _)| g.labels.contains(n))
            .cloned()
            .collect(),
    }
}

fn binary(b: &Binary, l: Value, r: Value, n: usize) -> Result<Value, EvalError> {
    Ok(match (l, r) {
        (Value::Scalar(x), Value::Scalar(y)) => match b.op.comparison() {
            Some(c) if b.return_bool => Value::Scalar(if c.test(x, y) { 1.0 } else { 0.0 }),
            Some(_) => {
                return Err(EvalError::Bad(
                    "comparisons between two numbers need bool".into(),
                ));
            }
            None => Value::Scalar(arith(b.op, x, y)),
        },
        (Value::Vector(vs), Value::Scalar(y)) => Value::Vector(
            vs.into_iter()
                .map(|(k, vals)| {
                    (
                        k,
                        vals.into_iter()
                            .map(|v| v.and_then(|x| apply(b, x, y, x)))
                            .collect(),
                    )
                })
                .collect(),
        ),
        (Value::Scalar(x), Value::Vector(vs)) => Value::Vector(
            vs.into_iter()
                .map(|(k, vals)| {
                    (
                        k,
                        vals.into_iter()
                            .map(|v| v.and_then(|y| apply(b, x, y, y)))
                            .collect(),
                    )
                })
                .collect(),
        ),
        (Value::Vector(ls), Value::Vector(rs)) if b.op.is_set() => {
            let mut right: HashMap<Key, Vec<&Values>> = HashMap::new();
            for (k, v) in &rs {
                right.entry(signature(&b.matching, k)).or_default().push(v);
            }
            let present = |sig: &Key, step: usize| {
                right
                    .get(sig)
                    .is_some_and(|vs| vs.iter().any(|v| v[step].is_some()))
            };
            match b.op {
                BinOp::And | BinOp::Unless => {
                    let want = b.op == BinOp::And;
                    Value::Vector(
                        ls.into_iter()
                            .map(|(k, vals)| {
                                let sig = signature(&b.matching, &k);
                                let vals = vals
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, v)| v.filter(|_| present(&sig, i) == want))
                                    .collect();
                                (k, vals)
                            })
                            .collect(),
                    )
                }
                _ => {
                    // or: the left side, plus the right side's series at steps where no
                    // left series has their signature.
                    let mut left: HashMap<Key, Vec<usize>> = HashMap::new();
                    for (i, (k, _)) in ls.iter().enumerate() {
                        left.entry(signature(&b.matching, k)).or_default().push(i);
                    }
                    let left_has = |sig: &Key, step: usize| {
                        left.get(sig)
                            .is_some_and(|is| is.iter().any(|&i| ls[i].1[step].is_some()))
                    };
                    let extra: Vec<(Key, Values)> = rs
                        .iter()
                        .map(|(k, vals)| {
                            let sig = signature(&b.matching, k);
                            (
                                k.clone(),
                                vals.iter()
                                    .enumerate()
                                    .map(|(i, v)| v.filter(|_| !left_has(&sig, i)))
                                    .collect(),
                            )
                        })
                        .collect();
                    let mut out = ls;
                    out.extend(extra);
                    Value::Vector(out)
                }
            }
        }
        (Value::Vector(ls), Value::Vector(rs)) => {
            let mut right: HashMap<Key, &Values> = HashMap::new();
            for (k, v) in &rs {
                if right.insert(signature(&b.matching, k), v).is_some() {
                    return Err(EvalError::Bad(
                        "many-to-one matching: several right-hand series share labels; aggregate them or use on(...)".into(),
                    ));
                }
            }
            let mut out = Vec::new();
            let mut seen: HashMap<Key, ()> = HashMap::new();
            for (k, lv) in ls {
                let sig = signature(&b.matching, &k);
                let Some(rv) = right.get(&sig) else { continue };
                let key = if b.op.comparison().is_some() && !b.return_bool {
                    k
                } else {
                    sig.clone()
                };
                if seen.insert(sig, ()).is_some() {
                    return Err(EvalError::Bad(
                        "many-to-one matching: several left-hand series share labels; aggregate them or use on(...)".into(),
                    ));
                }
                let vals = (0..n)
                    .map(|i| match (lv[i], rv[i]) {
                        (Some(x), Some(y)) => apply(b, x, y, x),
                        _ => None,
                    })
                    .collect();
                out.push((key, vals));
            }
            Value::Vector(out)
        }
    })
}

fn label_replace(lr: &LabelReplace, vs: Vec<(Key, Values)>) -> Vec<(Key, Values)> {
    vs.into_iter()
        .map(|(mut key, vals)| {
            let src = key
                .iter()
                .find(|(n, _)| *n == lr.src)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            if let Some(c) = lr.regex.captures(src) {
                let mut out = String::new();
                c.expand(&lr.replacement, &mut out);
                key.retain(|(n, _)| *n != lr.dst);
                if !out.is_empty() {
                    key.push((lr.dst.clone(), out));
                    key.sort();
                }
            }
            (key, vals)
        })
        .collect()
}
