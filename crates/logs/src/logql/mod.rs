//! LogQL: Grafana Loki's query language over the log store, so Grafana's Loki data source,
//! `logcli` and Loki alert rules work against Dozor unchanged.
//!
//! Supported (Loki 3 semantics unless noted):
//!
//! - stream selectors `{service="shop", level=~"error|warn"}` (at least one matcher that
//!   does not match the empty value);
//! - line filters `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`, with `or` alternatives;
//!   single `|=` filters before any line rewrite are pushed down to the store, which skips
//!   blocks whose trigram bloom filter rules the text out;
//! - parsers `| json` (all members flattened as `a_b`, or `| json x="a.b[0]"`), `| logfmt`
//!   (all keys, or `| logfmt x="key"`), `| regexp "(?P<name>…)"`, `| pattern "<ip> <_>"`,
//!   `| unpack`; `| decolorize`;
//! - label filters with `and`, `or`, `,` and parentheses: strings (`=`, `!=`, `=~`, `!~`)
//!   and numbers, durations and byte sizes (`==`, `!=`, `>`, `>=`, `<`, `<=`:
//!   `status >= 500`, `took > 1.5s`, `size < 10KB`); a numeric comparison on a missing or
//!   unreadable value drops the line;
//! - `| line_format "{{.a}} {{ .b | ToUpper }}"`, `| label_format dst=src, x="{{.a}}"`,
//!   `| drop a, b="v"`, `| keep a, b`;
//! - range aggregations `count_over_time`, `rate`, `bytes_over_time`, `bytes_rate`,
//!   `absent_over_time`, and over `| unwrap [duration|bytes](label)`: `sum_`, `avg_`,
//!   `min_`, `max_`, `stddev_`, `stdvar_`, `quantile_`, `first_`, `last_over_time`,
//!   `rate`, `rate_counter`, with `offset` and (unwrapped) `by`/`without`;
//! - vector aggregations `sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`, `topk`,
//!   `bottomk`, `sort`, `sort_desc` with `by`/`without`; `vector(n)`; `label_replace`;
//! - binary operators `+ - * / % ^`, comparisons (with `bool`), `and`, `or`, `unless`,
//!   one-to-one matching with `on`/`ignoring`.
//!
//! Labels of a line are its stream labels, its fields (structured metadata) and what
//! parsers extracted (see [`pipeline`]). Not supported, and refused
//! with an error naming it: `group_left`/`group_right`, template control actions, and Loki's
//! `ip()` filter and `|>` pattern line filter.
//!
//! ```
//! use dozor_logs::logql::{self, QueryResult, Range};
//! use dozor_logs::{Direction, LogDb, Options};
//! use dozor_model::{Labels, LogRecord};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = LogDb::open(dir.path(), Options::default()).unwrap();
//! let shop = Labels::from_pairs([("service", "shop")]).unwrap();
//! db.append(vec![
//!     LogRecord::new(1_000_000_000, shop.clone(), "level=error msg=\"card declined\" user=7"),
//!     LogRecord::new(2_000_000_000, shop.clone(), "level=info msg=paid user=8"),
//!     LogRecord::new(3_000_000_000, shop, "level=error msg=timeout user=7"),
//! ]).unwrap();
//! let q = logql::parse(r#"sum by (user) (count_over_time({service="shop"} | logfmt | level="error" [1m]))"#).unwrap();
//! let range = Range { start_ns: 3_000_000_000, end_ns: 3_000_000_000, step_ns: 0, limit: 100, direction: Direction::Backward };
//! let (result, _) = logql::evaluate(&db, &q, range).unwrap();
//! let QueryResult::Vector(v) = result else { panic!("an instant metric query gives a vector") };
//! assert_eq!(v[0].labels, vec![("user".to_owned(), "7".to_owned())]);
//! assert_eq!(v[0].points[0].1, 2.0);
//! ```

pub mod ast;
mod eval;
pub mod lexer;
pub mod parser;
pub mod pipeline;
pub mod template;

pub use ast::Expr;
pub use eval::{Empty, MAX_SERIES, MAX_STEPS, Range, Source, Stats, evaluate, select_lines};
pub use parser::parse;

use crate::LogsError;

/// Labels of a result, sorted by name.
pub type Key = Vec<(String, String)>;

/// A query that does not parse, with the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at offset {offset}: {message}")]
pub struct ParseError {
    /// Byte offset in the query.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            offset,
            message: message.into(),
        }
    }
}

/// A query that cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The query or its range asks for something refused (too many series or steps,
    /// mismatched operands); the caller's fault.
    #[error("{0}")]
    Bad(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] LogsError),
}

/// Lines of one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// The labels.
    pub labels: Key,
    /// `(time_ns, line)`, in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// Values of one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels.
    pub labels: Key,
    /// `(time_ns, value)` at the steps that have a value.
    pub points: Vec<(i64, f64)>,
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// A log query's lines.
    Streams(Vec<Stream>),
    /// A range metric query.
    Matrix(Vec<Series>),
    /// An instant metric query: one point per series.
    Vector(Vec<Series>),
    /// A number (time ns, value).
    Scalar(i64, f64),
}

pub use dozor_model::time::rfc3339_ns;

/// A plain stream selector (`{service="shop", level=~"error|warn"}`, no pipeline), as
/// configuration writes them (the log pipeline's `match`, the tiers' `keep`, PII streams).
pub fn stream_selector(sel: &str) -> Result<Vec<dozor_model::Matcher>, String> {
    match parse(sel) {
        Ok(Expr::Log(l)) if l.pipeline.is_empty() => Ok(l.selector),
        Ok(_) => Err(format!("{sel:?} is not a plain stream selector")),
        Err(e) => Err(format!("{sel:?}: {e}")),
    }
}

/// Parses `query` and, when it parses, evaluates it as an instant and a range query over a
/// few fixed records of several shapes (JSON, logfmt, plain, with fields); whether it parsed.
/// For the LogQL fuzz target and the replay of its corpus: neither may ever panic.
pub fn exercise(query: &str) -> bool {
    let Ok(expr) = parse(query) else {
        return false;
    };
    let stream = |svc: &str| {
        dozor_model::Labels::from_pairs([("service", svc), ("level", "error")]).unwrap_or_default()
    };
    let mut with_fields =
        dozor_model::LogRecord::new(3_000_000_000, stream("b"), "plain text 42 ms");
    with_fields.fields = vec![("took".into(), "1.5s".into()), ("user".into(), "7".into())];
    let records = vec![
        dozor_model::LogRecord::new(
            1_000_000_000,
            stream("a"),
            r#"{"a":{"b":[1,2]},"n":3.5,"s":"x"}"#,
        ),
        dozor_model::LogRecord::new(
            2_000_000_000,
            stream("a"),
            "level=warn msg=\"q\" n=2 size=10KB",
        ),
        with_fields,
        dozor_model::LogRecord::new(4_000_000_000, stream("c"), "\u{1b}[31mred\u{1b}[0m <tag> ж"),
    ];
    for step_ns in [0, 1_000_000_000] {
        let range = Range {
            start_ns: 0,
            end_ns: 5_000_000_000,
            step_ns,
            limit: 10,
            direction: crate::Direction::Forward,
        };
        let _ = evaluate(&records, &expr, range);
    }
    true
}

#[cfg(test)]
mod tests;
