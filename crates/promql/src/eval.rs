//! The evaluator: walks the AST once per query, evaluating every node over all steps of a
//! [`Grid`] at once. Selectors read storage once for the whole range and then answer each
//! step from the fetched samples by binary search; range functions slide a window over
//! the same samples; subqueries evaluate their inner expression once on their own grid.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dozor_model::labels::{METRIC_NAME, is_stale_nan};
use dozor_model::{MatchOp, Matcher, Sample};
use dozor_tsdb::{Aggregate, Queryable, SelectHints};
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use crate::PromqlError;
use crate::lset::Lset;
use crate::value::{Grid, Point, Series, Val};

type Result<T> = std::result::Result<T, PromqlError>;

/// Evaluation state of one query.
pub(crate) struct Evaluator<'a> {
    pub(crate) q: &'a dyn Queryable,
    pub(crate) lookback: i64,
    pub(crate) max_samples: usize,
    pub(crate) subquery_step: i64,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<&'a AtomicBool>,
    /// The query's start and end, for `@ start()` and `@ end()`.
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// The query's step (0 for an instant query), for `step()`.
    pub(crate) query_step: i64,
    /// Whether selectors may read downsampled aggregates (see `EngineOptions`).
    pub(crate) downsampling: bool,
    pub(crate) warnings: Vec<String>,
    pub(crate) infos: Vec<String>,
    /// Samples currently held, for the max-samples limit.
    pub(crate) current: usize,
}

/// A range-vector argument: series of raw samples (staleness markers removed) and how a
/// step's window is placed over them.
pub(crate) struct RangeInput {
    pub(crate) series: Vec<Series>,
    pub(crate) range: i64,
    pub(crate) offset: i64,
    pub(crate) at: Option<i64>,
    /// The selector's matchers, when the argument is a plain matrix selector (for
    /// `absent_over_time`'s labels).
    pub(crate) selector: Option<VectorSelector>,
    /// 0 for raw samples; else the resolution of the downsampled aggregates the points
    /// are (see `Evaluator::range_input_as`).
    pub(crate) resolution_ms: i64,
}

impl RangeInput {
    /// How many samples the input holds (for the max-samples limit).
    pub(crate) fn samples(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    /// The (exclusive start, inclusive end) of the window evaluated at `ts`.
    pub(crate) fn window(&self, ts: i64) -> (i64, i64) {
        let end = self.at.unwrap_or(ts).saturating_sub(self.offset);
        (end.saturating_sub(self.range), end)
    }
}

/// Series read from the store, with their raw samples, sorted by labels.
type Selected = Vec<(Lset, Vec<Sample>)>;

/// Milliseconds of a parser duration.
pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Converts a selector's matchers (one group per `or` branch) into the store's matchers.
pub fn selector_matchers(vs: &VectorSelector) -> std::result::Result<Vec<Vec<Matcher>>, String> {
    let groups: Vec<&Vec<promql_parser::label::Matcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().collect()
    };
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let mut ms = Vec::with_capacity(group.len() + 1);
        if let Some(name) = &vs.name {
            ms.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in group {
            let op = match m.op {
                promql_parser::label::MatchOp::Equal => MatchOp::Equal,
                promql_parser::label::MatchOp::NotEqual => MatchOp::NotEqual,
                promql_parser::label::MatchOp::Re(_) => MatchOp::Regex,
                promql_parser::label::MatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            ms.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
        }
        out.push(ms);
    }
    Ok(out)
}

impl<'a> Evaluator<'a> {
    /// Fails when the query was canceled or ran out of time.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(c) = self.cancel
            && c.load(Ordering::Relaxed)
        {
            return Err(PromqlError::Canceled("expression evaluation"));
        }
        if let Some(d) = self.deadline
            && Instant::now() > d
        {
            return Err(PromqlError::Timeout("expression evaluation"));
        }
        Ok(())
    }

    /// Counts `n` more samples held; fails past the limit.
    pub(crate) fn charge(&mut self, n: usize) -> Result<()> {
        self.current += n;
        if self.current > self.max_samples {
            return Err(PromqlError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Counts `n` samples released.
    pub(crate) fn release(&mut self, n: usize) {
        self.current = self.current.saturating_sub(n);
    }

    pub(crate) fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub(crate) fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    /// Evaluates `e` at every step of `g`.
    pub(crate) fn eval(&mut self, e: &Expr, g: Grid) -> Result<Val> {
        self.check()?;
        if g.len() > self.max_samples {
            return Err(PromqlError::TooManySamples("query execution"));
        }
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; g.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, g),
            Expr::Unary(u) => match self.eval(&u.expr, g)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut ss) => {
                    for s in &mut ss {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                    }
                    Ok(Val::Vector(ss))
                }
                _ => Err(PromqlError::BadData(
                    "unary expression only allowed on expressions of type scalar or vector".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, g, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if !g.is_instant() {
                    return Err(PromqlError::exec(
                        "cannot do range evaluation of matrix selector",
                    ));
                }
                let input = self.range_input(e, g)?;
                let (start, end) = input.window(g.start);
                let mut out = Vec::with_capacity(input.series.len());
                for mut s in input.series {
                    s.points.retain(|p| p.t > start && p.t <= end);
                    if !s.points.is_empty() {
                        out.push(s);
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Binary(b) => crate::binop::eval(self, b, g),
            Expr::Aggregate(a) => crate::aggregate::eval(self, a, g),
            Expr::Call(c) => crate::functions::call(self, c, g),
            Expr::Extension(_) => Err(PromqlError::BadData(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// Evaluates `e` and requires a scalar (one value per step).
    pub(crate) fn eval_scalar(&mut self, e: &Expr, g: Grid) -> Result<Vec<f64>> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(PromqlError::BadData(format!(
                "expected type scalar in expression {e}"
            ))),
        }
    }

    /// Evaluates `e` and requires an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, g: Grid) -> Result<Vec<Series>> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            _ => Err(PromqlError::BadData(format!(
                "expected type instant vector in expression {e}"
            ))),
        }
    }

    /// Reads the series matching any of the matcher groups, sorted by labels, accepting
    /// downsampled aggregates per `hints`; also returns the coarsest resolution the store
    /// used (0: raw samples only).
    fn select_hinted(
        &mut self,
        groups: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> Result<(Selected, i64)> {
        let mut out: Vec<(Lset, Vec<Sample>)> = Vec::new();
        let mut resolution = 0;
        for ms in groups {
            let found = if hints.max_resolution_ms > 0 {
                let sel = self.q.select_downsampled(ms, mint, maxt, hints)?;
                resolution = resolution.max(sel.resolution_ms);
                sel.series
            } else {
                self.q.select(ms, mint, maxt)?
            };
            for s in found {
                out.push((Lset::from_labels(&s.labels), s.samples));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        if groups.len() > 1 {
            out.dedup_by(|a, b| a.0 == b.0);
        }
        self.check()?;
        Ok((out, resolution))
    }

    /// The coarsest resolution a selector may read, given the window it is evaluated over
    /// (the step for instant selectors, also the range for range functions): a fifth of
    /// it, as Thanos' auto-downsampling does, so every window spans at least 5 buckets.
    fn max_resolution(&self, window: i64) -> i64 {
        if !self.downsampling || self.query_step <= 0 {
            return 0;
        }
        window.min(self.query_step) / 5
    }

    /// An instant-vector selector at every step: the newest sample within the lookback
    /// window `(t - lookback, t]`, unless it is a staleness marker. With `orig_t` the
    /// value is the sample's timestamp in seconds (for `timestamp()`).
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        g: Grid,
        orig_t: bool,
    ) -> Result<Vec<Series>> {
        let at = self.at_ms(&vs.at);
        let off = offset_ms(&vs.offset);
        let groups = selector_matchers(vs).map_err(PromqlError::BadData)?;
        self.instant_selector(&groups, at, off, g, orig_t)
    }

    /// [`Evaluator::vector_selector`] over matcher groups, with `@` (ms) and offset (ms)
    /// already resolved.
    pub(crate) fn instant_selector(
        &mut self,
        groups: &[Vec<Matcher>],
        at: Option<i64>,
        off: i64,
        g: Grid,
        orig_t: bool,
    ) -> Result<Vec<Series>> {
        let lmin = at.unwrap_or(g.start).saturating_sub(off);
        let lmax = at.unwrap_or(g.end).saturating_sub(off);
        let hints = SelectHints {
            max_resolution_ms: if at.is_some() {
                0
            } else {
                self.max_resolution(i64::MAX)
            },
            aggregate: Aggregate::Last,
        };
        // A bucket stands for a whole resolution: look back at least that far.
        let lookback = self.lookback.max(hints.max_resolution_ms);
        let (found, resolution) = self.select_hinted(
            groups,
            lmin.saturating_sub(lookback).saturating_add(1),
            lmax,
            &hints,
        )?;
        let lookback = self.lookback.max(resolution);
        let n = g.len();
        let mut out = Vec::with_capacity(found.len());
        for (metric, samples) in found {
            self.check()?;
            let mut points = Vec::with_capacity(n.min(samples.len() * 4 + 1));
            let mut j = 0;
            for i in 0..n {
                let ts = g.ts(i);
                let l = at.unwrap_or(ts).saturating_sub(off);
                if at.is_some() {
                    j = samples.partition_point(|s| s.t <= l);
                } else {
                    while j < samples.len() && samples[j].t <= l {
                        j += 1;
                    }
                }
                if j == 0 {
                    continue;
                }
                let s = samples[j - 1];
                if s.t <= l.saturating_sub(lookback) || is_stale_nan(s.v) {
                    continue;
                }
                let v = if orig_t { s.t as f64 / 1000.0 } else { s.v };
                points.push(Point { t: ts, v });
            }
            if !points.is_empty() {
                self.charge(points.len())?;
                out.push(Series {
                    metric,
                    points,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a range-vector argument (matrix selector or subquery, possibly in
    /// parentheses) for all steps of `g`.
    pub(crate) fn range_input(&mut self, e: &Expr, g: Grid) -> Result<RangeInput> {
        self.range_input_as(e, g, None)
    }

    /// [`Evaluator::range_input`] for a function that can be answered from the store's
    /// `aggregate` column of downsampled data; the result's `resolution_ms` says whether it
    /// was (then the points of `count_over_time` are counts, to be summed).
    pub(crate) fn range_input_as(
        &mut self,
        e: &Expr,
        g: Grid,
        aggregate: Option<Aggregate>,
    ) -> Result<RangeInput> {
        match e {
            Expr::Paren(p) => self.range_input_as(&p.expr, g, aggregate),
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let at = self.at_ms(&vs.at);
                let off = offset_ms(&vs.offset);
                let range = duration_ms(&ms.range);
                let lmin = at.unwrap_or(g.start).saturating_sub(off);
                let lmax = at.unwrap_or(g.end).saturating_sub(off);
                let hints = match aggregate {
                    Some(aggregate) if at.is_none() => SelectHints {
                        max_resolution_ms: self.max_resolution(range),
                        aggregate,
                    },
                    _ => SelectHints::default(),
                };
                let groups = selector_matchers(vs).map_err(PromqlError::BadData)?;
                let (found, resolution_ms) = self.select_hinted(
                    &groups,
                    lmin.saturating_sub(range).saturating_add(1),
                    lmax,
                    &hints,
                )?;
                let mut series = Vec::with_capacity(found.len());
                for (metric, samples) in found {
                    let points: Vec<Point> = samples
                        .iter()
                        .filter(|s| !is_stale_nan(s.v))
                        .map(|s| Point { t: s.t, v: s.v })
                        .collect();
                    if !points.is_empty() {
                        self.charge(points.len())?;
                        series.push(Series {
                            metric,
                            points,
                            drop_name: false,
                        });
                    }
                }
                Ok(RangeInput {
                    series,
                    range,
                    offset: off,
                    at,
                    selector: Some(vs.clone()),
                    resolution_ms,
                })
            }
            Expr::Subquery(sq) => self.subquery(sq, g),
            _ => Err(PromqlError::BadData(format!(
                "expected type range vector in expression {e}"
            ))),
        }
    }

    /// Evaluates a subquery's inner expression on the subquery's grid, aligned to its step,
    /// covering every window the steps of `g` need.
    fn subquery(&mut self, sq: &SubqueryExpr, g: Grid) -> Result<RangeInput> {
        let at = self.at_ms(&sq.at);
        let off = offset_ms(&sq.offset);
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) if !d.is_zero() => duration_ms(d),
            _ => self.subquery_step,
        };
        if step <= 0 {
            return Err(PromqlError::BadData(
                "zero or negative subquery step".into(),
            ));
        }
        // The parent's last step, aligned to its grid.
        let parent_end = g.ts(g.len().saturating_sub(1));
        let lmin = at.unwrap_or(g.start).saturating_sub(off);
        let lmax = at.unwrap_or(parent_end).saturating_sub(off);
        let first = lmin.saturating_sub(range);
        let mut start = step * (first / step);
        if start <= first {
            start = start.saturating_add(step);
        }
        let sub = Grid {
            start,
            end: lmax,
            step,
        };
        let series = match self.eval(&sq.expr, sub)? {
            Val::Vector(s) => s,
            Val::Scalar(v) => vec![Series {
                metric: Lset::default(),
                points: v
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Point { t: sub.ts(i), v })
                    .collect(),
                drop_name: false,
            }],
            _ => {
                return Err(PromqlError::BadData(
                    "subquery is only allowed on instant vector or scalar".into(),
                ));
            }
        };
        Ok(RangeInput {
            series,
            range,
            offset: off,
            at,
            selector: None,
            resolution_ms: 0,
        })
    }

    /// Applies `f` to the window of every series at every step of `g`; series keep their
    /// labels and get `drop_name` (or keep theirs when already set).
    pub(crate) fn apply_range(
        &mut self,
        input: &RangeInput,
        g: Grid,
        drop_name: bool,
        mut f: impl FnMut(&mut Self, &[Point], i64, usize, (i64, i64), &Lset) -> Option<f64>,
    ) -> Result<Vec<Series>> {
        let n = g.len();
        let mut out = Vec::with_capacity(input.series.len());
        for s in &input.series {
            self.check()?;
            let mut points = Vec::new();
            let (mut lo, mut hi) = (0usize, 0usize);
            for i in 0..n {
                let ts = g.ts(i);
                let (start, end) = input.window(ts);
                if input.at.is_some() {
                    lo = s.points.partition_point(|p| p.t <= start);
                    hi = s.points.partition_point(|p| p.t <= end);
                } else {
                    while lo < s.points.len() && s.points[lo].t <= start {
                        lo += 1;
                    }
                    hi = hi.max(lo);
                    while hi < s.points.len() && s.points[hi].t <= end {
                        hi += 1;
                    }
                }
                if lo >= hi {
                    continue;
                }
                if let Some(v) = f(self, &s.points[lo..hi], ts, i, (start, end), &s.metric) {
                    points.push(Point { t: ts, v });
                }
            }
            if !points.is_empty() {
                self.charge(points.len())?;
                out.push(Series {
                    metric: s.metric.clone(),
                    points,
                    drop_name: drop_name || s.drop_name,
                });
            }
        }
        Ok(out)
    }
}
