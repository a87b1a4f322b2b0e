//! Values inside the evaluator: [`Series`] of [`Point`]s on the evaluation grid, and [`Val`],
//! what one AST node evaluates to over all steps of a [`Grid`].

use crate::lset::Lset;

/// A hash map with a fast, non-cryptographic hasher (keys are query data, and the maps live
/// for one query).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A float at a time (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub(crate) t: i64,
    pub(crate) v: f64,
}

/// A series being computed: its labels, its points (sorted by time) and whether
/// `__name__` is to be dropped at the end of evaluation (Prometheus' delayed name removal).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) metric: Lset,
    pub(crate) points: Vec<Point>,
    pub(crate) drop_name: bool,
}

/// The result of evaluating a node over a grid.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    Str(String),
    /// Instant vectors at every step, as series with points at step timestamps.
    Vector(Vec<Series>),
    /// A range vector (only at instant evaluation): raw samples.
    Matrix(Vec<Series>),
}

impl Val {
    /// How many samples the value holds (for the max-samples limit).
    pub(crate) fn samples(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::Str(_) => 1,
            Val::Vector(s) | Val::Matrix(s) => s.iter().map(|s| s.points.len()).sum(),
        }
    }
}

/// The timestamps a node is evaluated at: `start, start+step, … ≤ end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

impl Grid {
    /// Number of steps.
    pub(crate) fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return 0;
        }
        let span = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
        usize::try_from(span).map_or(usize::MAX, |n| n.saturating_add(1))
    }

    /// Timestamp of step `i`.
    pub(crate) fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Step index of a timestamp on the grid.
    pub(crate) fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    /// Whether this is a single evaluation (an instant query or a step-invariant node).
    pub(crate) fn is_instant(&self) -> bool {
        self.start == self.end
    }
}

/// One element of an instant vector at a step, as functions and operators see it.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub(crate) metric: Lset,
    pub(crate) v: f64,
    pub(crate) drop_name: bool,
}

/// Cursors reading one step at a time from series whose points lie on a grid.
pub(crate) struct StepReader<'a> {
    series: &'a [Series],
    pos: Vec<usize>,
}

impl<'a> StepReader<'a> {
    pub(crate) fn new(series: &'a [Series]) -> StepReader<'a> {
        StepReader {
            series,
            pos: vec![0; series.len()],
        }
    }

    /// Calls `f(series index, value)` for every series with a point at `ts`; `ts` must not
    /// decrease between calls.
    pub(crate) fn at(&mut self, ts: i64, mut f: impl FnMut(usize, f64)) {
        for (i, s) in self.series.iter().enumerate() {
            let p = &mut self.pos[i];
            while *p < s.points.len() && s.points[*p].t < ts {
                *p += 1;
            }
            if *p < s.points.len() && s.points[*p].t == ts {
                f(i, s.points[*p].v);
            }
        }
    }

    /// The elements present at `ts`.
    pub(crate) fn vector(&mut self, ts: i64) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        self.at(ts, |i, v| out.push((i, v)));
        out
    }
}

/// Gathers per-step results into series: one series per distinct label set (and, at an
/// instant evaluation, in the order the results came).
pub(crate) struct Collector {
    instant: bool,
    series: Vec<Series>,
    index: FastMap<Lset, usize>,
}

impl Collector {
    pub(crate) fn new(g: Grid) -> Collector {
        Collector {
            instant: g.is_instant(),
            series: Vec::new(),
            index: FastMap::default(),
        }
    }

    /// Adds an element at `ts`; two elements with the same labels at one step are an error.
    /// Returns the index of the element's series, for [`Collector::push_to`].
    pub(crate) fn push(&mut self, ts: i64, e: Elem) -> Result<usize, crate::PromqlError> {
        if self.instant {
            self.series.push(Series {
                metric: e.metric,
                points: vec![Point { t: ts, v: e.v }],
                drop_name: e.drop_name,
            });
            return Ok(self.series.len() - 1);
        }
        match self.index.get(&e.metric) {
            Some(&i) => {
                self.push_to(i, ts, e.v, e.drop_name)?;
                Ok(i)
            }
            None => {
                let i = self.series.len();
                self.index.insert(e.metric.clone(), i);
                self.series.push(Series {
                    metric: e.metric,
                    points: vec![Point { t: ts, v: e.v }],
                    drop_name: e.drop_name,
                });
                Ok(i)
            }
        }
    }

    /// Whether series indexes stay valid across steps (not at an instant evaluation, where
    /// every element gets its own series).
    pub(crate) fn reuses_series(&self) -> bool {
        !self.instant
    }

    /// Adds a point to the series `i` returned by an earlier [`Collector::push`].
    pub(crate) fn push_to(
        &mut self,
        i: usize,
        ts: i64,
        v: f64,
        drop_name: bool,
    ) -> Result<(), crate::PromqlError> {
        let s = &mut self.series[i];
        if s.points.last().is_some_and(|p| p.t == ts) {
            return Err(crate::PromqlError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
        s.points.push(Point { t: ts, v });
        s.drop_name |= drop_name;
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<Series> {
        self.series
    }
}

/// Merges series with equal labels (their points must not share a timestamp).
pub(crate) fn merge_same_labels(series: Vec<Series>) -> Result<Vec<Series>, crate::PromqlError> {
    let mut index: FastMap<Lset, usize> = FastMap::default();
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut merged = false;
    for s in series {
        match index.get(&s.metric) {
            Some(&i) => {
                out[i].points.extend(s.points);
                out[i].drop_name |= s.drop_name;
                merged = true;
            }
            None => {
                index.insert(s.metric.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(crate::PromqlError::exec(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(name: &str, v: f64) -> Elem {
        Elem {
            metric: Lset::from_pairs([("x", name)]),
            v,
            drop_name: false,
        }
    }

    #[test]
    fn collector_joins_steps_and_refuses_duplicates_within_a_step() {
        let g = Grid {
            start: 0,
            end: 20,
            step: 10,
        };
        let mut c = Collector::new(g);
        let i = c.push(0, elem("a", 1.0)).unwrap();
        c.push(0, elem("b", 2.0)).unwrap();
        c.push_to(i, 10, 3.0, false).unwrap();
        assert!(c.push(10, elem("a", 4.0)).is_err());
        let s = c.finish();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].points,
            [Point { t: 0, v: 1.0 }, Point { t: 10, v: 3.0 }]
        );
    }

    #[test]
    fn merging_equal_labels_needs_disjoint_points() {
        let s = |t: i64| Series {
            metric: Lset::from_pairs([("x", "a")]),
            points: vec![Point { t, v: 1.0 }],
            drop_name: false,
        };
        assert_eq!(
            merge_same_labels(vec![s(10), s(0)]).unwrap()[0]
                .points
                .len(),
            2
        );
        assert!(merge_same_labels(vec![s(0), s(0)]).is_err());
    }

    #[test]
    fn grid_lengths_never_overflow() {
        let g = Grid {
            start: i64::MIN,
            end: i64::MAX,
            step: 1,
        };
        assert_eq!(g.len(), usize::MAX);
        let instant = Grid {
            start: 5,
            end: 5,
            step: 1,
        };
        assert_eq!((instant.len(), instant.ts(0)), (1, 5));
    }
}
