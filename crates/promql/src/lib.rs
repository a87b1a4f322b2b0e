//! Dozor's PromQL engine: evaluates queries, parsed by `promql-parser`, against a metric
//! store's [`Queryable`], with Prometheus 3.x semantics.
//!
//! [`Engine`] holds the limits ([`EngineOptions`]: lookback, max samples, timeout);
//! [`Engine::instant`] and [`Engine::range`] take a store, a query string and times in
//! milliseconds, and return a [`QueryResult`]: a [`Value`] (scalar, string, instant vector
//! or range matrix) and the warnings and infos Prometheus would report. Errors are
//! [`PromqlError`]s whose [`PromqlError::kind`] is Prometheus' API `errorType`.
//! [`Engine::query`] takes a [`Query`] with a cancellation flag; [`parse`] and
//! [`selector_matchers`] are the parsing helpers the HTTP API shares with the engine.
//!
//! Layout:
//! - `eval.rs` — the evaluator: every AST node is evaluated over all steps of the query at
//!   once; each selector reads the store once for the whole range (start − lookback − range
//!   − offset … end) and answers steps from those samples by binary search / moving cursors;
//! - `binop.rs`, `aggregate.rs` — operators (with `on`/`ignoring`, `group_*`, fill
//!   modifiers) and aggregations;
//! - `functions.rs`, `range_functions.rs`, `info.rs` — function calls: element-wise and
//!   per-step ones, those over range vectors, and `info()`;
//! - `quantile.rs` — Kahan sums, quantiles, classic-histogram buckets, Go float formats;
//! - `lset.rs`, `value.rs` — the evaluator's label sets, series and per-step readers.
//!
//! Semantics follow Prometheus 3.x: range windows are left-open `(t - range, t]`, an
//! instant selector looks back 5 minutes (by default) for the newest sample and stops at a
//! staleness marker, `__name__` is removed late (after the whole expression, Prometheus'
//! delayed name removal), and `holt_winters` is accepted as
//! `double_exponential_smoothing`.
//!
//! Invariants: evaluation never panics on a query or on stored data — every failure is a
//! `PromqlError`; the engine only reads through `Queryable`.
//!
//! ```
//! use dozor_model::{Labels, Sample};
//! use dozor_promql::{Engine, EngineOptions, Value};
//! use dozor_tsdb::{Options, Tsdb};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let tsdb = Tsdb::open(dir.path(), Options::default()).unwrap();
//! let db = tsdb.tenant(&"shop".parse().unwrap()).unwrap();
//! let reqs = Labels::from_pairs([("__name__", "http_requests_total"), ("job", "api")]).unwrap();
//! let samples = (0..=10).map(|i| Sample { t: i * 15_000, v: (i * 30) as f64 }).collect();
//! db.append(&[(reqs, samples)]).unwrap();
//!
//! let engine = Engine::new(EngineOptions::default());
//! let res = engine.instant(db.as_ref(), "sum by (job) (rate(http_requests_total[1m]))", 150_000).unwrap();
//! let Value::Vector(v) = res.value else { panic!("expected a vector") };
//! assert_eq!(v[0].labels.get("job"), Some("api"));
//! assert!((v[0].v - 2.0).abs() < 1e-9);
//! ```

mod aggregate;
mod binop;
mod error;
mod eval;
mod functions;
mod info;
mod lset;
pub mod notation;
mod quantile;
mod range_functions;
mod value;

use std::sync::Once;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use dozor_model::{Labels, Sample};
use dozor_tsdb::Queryable;
use promql_parser::parser::{Expr, value::ValueType};

pub use error::PromqlError;
pub use eval::selector_matchers;
pub use quantile::{almost_equal, format_float};

/// Engine limits and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample, ms (Prometheus: 5 m).
    pub lookback_ms: i64,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Step of subqueries written without one (`x[1h:]`), ms (Prometheus: the global
    /// evaluation interval, 1 m by default).
    pub default_subquery_step_ms: i64,
    /// Let range queries read the store's downsampled aggregates where the step (and the
    /// range of `[…]`) is at least 5 times their resolution: instant selectors and `rate`,
    /// `increase`, `delta`, `last_over_time`, `present_over_time` read each bucket's last
    /// value, `min_`/`max_`/`sum_`/`count_over_time` the matching aggregate. Other
    /// functions, instant queries and short steps always read raw samples.
    pub downsampling: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            lookback_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
            downsampling: true,
        }
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation time, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a range result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its points, sorted by time.
    pub samples: Vec<Sample>,
}

/// A query's result value, as Prometheus' API types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `scalar`: a value at the evaluation time.
    Scalar {
        /// Time, ms.
        t: i64,
        /// Value.
        v: f64,
    },
    /// `string`.
    String {
        /// Time, ms.
        t: i64,
        /// Value.
        v: String,
    },
    /// `vector`: an instant query's series, in evaluation order.
    Vector(Vec<InstantSample>),
    /// `matrix`: a range query's series (sorted by labels), or an instant query of a range
    /// selector or subquery.
    Matrix(Vec<RangeSeries>),
}

/// A successful query: its value and annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The result.
    pub value: Value,
    /// Prometheus' warnings (`PromQL warning: …`).
    pub warnings: Vec<String>,
    /// Prometheus' infos (`PromQL info: …`).
    pub infos: Vec<String>,
}

/// Parses a query, accepting everything `promql-parser` does plus `holt_winters` (the
/// 2.x name of `double_exponential_smoothing`). Errors are `bad_data`.
pub fn parse(query: &str) -> Result<Expr, PromqlError> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        use promql_parser::parser::Function;
        // Ignoring the error: it only reports a clash with a built-in function, in which
        // case the parser already knows the name.
        let _ = promql_parser::parser::register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
    promql_parser::parser::parse(query).map_err(PromqlError::BadData)
}

/// Evaluates PromQL queries against a store.
#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOptions,
}

/// A query to run with [`Engine::query`].
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The PromQL text.
    pub expr: &'a str,
    /// First evaluation time, ms.
    pub start: i64,
    /// Last evaluation time, ms (equal to `start` for an instant query).
    pub end: i64,
    /// Step between evaluations, ms (ignored for an instant query).
    pub step: i64,
    /// Whether this is an instant query (its range-vector results are allowed).
    pub instant: bool,
    /// Set to `true` from another thread to cancel the query.
    pub cancel: Option<&'a AtomicBool>,
}

impl Engine {
    /// An engine with these limits.
    pub fn new(opts: EngineOptions) -> Engine {
        Engine { opts }
    }

    /// The engine's limits.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `expr` at `t` (ms).
    pub fn instant(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.query(
            q,
            &Query {
                expr,
                start: t,
                end: t,
                step: 1,
                instant: true,
                cancel: None,
            },
        )
    }

    /// Evaluates `expr` at `start, start + step, … ≤ end` (ms).
    pub fn range(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.query(
            q,
            &Query {
                expr,
                start,
                end,
                step,
                instant: false,
                cancel: None,
            },
        )
    }

    /// Runs a query.
    pub fn query(&self, q: &dyn Queryable, query: &Query<'_>) -> Result<QueryResult, PromqlError> {
        let expr = parse(query.expr)?;
        self.eval_expr(q, &expr, query)
    }

    /// Runs an already parsed query (`query.expr` is ignored).
    pub fn eval_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        query: &Query<'_>,
    ) -> Result<QueryResult, PromqlError> {
        let start_time = Instant::now();
        if !query.instant {
            if query.step <= 0 {
                return Err(PromqlError::BadData(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                ));
            }
            if query.end < query.start {
                return Err(PromqlError::BadData(
                    "end timestamp must not be before start time".into(),
                ));
            }
            let vt = expr.value_type();
            if vt != ValueType::Scalar && vt != ValueType::Vector {
                return Err(PromqlError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(vt)
                )));
            }
        }
        let (end, step) = if query.instant {
            (query.start, 1)
        } else {
            (query.end, query.step)
        };
        let grid = value::Grid {
            start: query.start,
            end,
            step,
        };
        if grid.len() > self.opts.max_samples {
            return Err(PromqlError::TooManySamples("query execution"));
        }
        let mut ev = eval::Evaluator {
            q,
            lookback: self.opts.lookback_ms,
            max_samples: self.opts.max_samples,
            subquery_step: self.opts.default_subquery_step_ms,
            deadline: start_time.checked_add(self.opts.timeout),
            cancel: query.cancel,
            query_start: query.start,
            query_end: end,
            query_step: if query.instant { 0 } else { query.step },
            downsampling: self.opts.downsampling,
            warnings: Vec::new(),
            infos: Vec::new(),
            current: 0,
        };
        let val = ev.eval(expr, grid)?;
        let value = finish(val, grid, query.instant)?;
        Ok(QueryResult {
            value,
            warnings: ev.warnings,
            infos: ev.infos,
        })
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Drops `__name__` where it is due, checks for label sets that became equal, and
/// converts to the public types.
fn finish(val: value::Val, g: value::Grid, instant: bool) -> Result<Value, PromqlError> {
    use value::Val;
    let labels = |s: &lset::Lset| s.to_labels().map_err(PromqlError::Execution);
    Ok(match val {
        Val::Scalar(v) if instant => Value::Scalar {
            t: g.start,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Val::Scalar(v) => Value::Matrix(vec![RangeSeries {
            labels: Labels::default(),
            samples: v
                .iter()
                .enumerate()
                .map(|(i, &v)| Sample { t: g.ts(i), v })
                .collect(),
        }]),
        Val::Str(s) => Value::String { t: g.start, v: s },
        Val::Vector(mut ss) => {
            for s in &mut ss {
                if s.drop_name {
                    s.metric = s.metric.without_name();
                }
            }
            if instant {
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::with_capacity(ss.len());
                for s in &ss {
                    if !seen.insert(s.metric.clone()) {
                        return Err(PromqlError::exec(
                            "vector cannot contain metrics with the same labelset",
                        ));
                    }
                    for p in &s.points {
                        out.push(InstantSample {
                            labels: labels(&s.metric)?,
                            t: p.t,
                            v: p.v,
                        });
                    }
                }
                Value::Vector(out)
            } else {
                let mut ss = value::merge_same_labels(ss)?;
                ss.sort_by(|a, b| a.metric.cmp(&b.metric));
                Value::Matrix(
                    ss.iter()
                        .map(|s| {
                            Ok(RangeSeries {
                                labels: labels(&s.metric)?,
                                samples: s
                                    .points
                                    .iter()
                                    .map(|p| Sample { t: p.t, v: p.v })
                                    .collect(),
                            })
                        })
                        .collect::<Result<_, PromqlError>>()?,
                )
            }
        }
        Val::Matrix(mut ss) => {
            for s in &mut ss {
                if s.drop_name {
                    s.metric = s.metric.without_name();
                }
            }
            let mut ss = value::merge_same_labels(ss)?;
            ss.sort_by(|a, b| a.metric.cmp(&b.metric));
            Value::Matrix(
                ss.iter()
                    .map(|s| {
                        Ok(RangeSeries {
                            labels: labels(&s.metric)?,
                            samples: s.points.iter().map(|p| Sample { t: p.t, v: p.v }).collect(),
                        })
                    })
                    .collect::<Result<_, PromqlError>>()?,
            )
        }
    })
}

#[cfg(test)]
mod tests;
