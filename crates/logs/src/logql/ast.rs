//! The LogQL syntax tree.

use std::time::Duration;

use dozor_model::Matcher;
use regex::Regex;

use super::template::Template;

/// A whole query: lines (a log query) or numbers (a metric query).
#[derive(Debug, Clone)]
pub enum Expr {
    /// `{…} | …`: lines.
    Log(LogExpr),
    /// Numbers over time.
    Metric(MetricExpr),
}

/// A stream selector and the pipeline its lines go through.
#[derive(Debug, Clone)]
pub struct LogExpr {
    /// `{service="shop", level=~"error|warn"}`.
    pub selector: Vec<Matcher>,
    /// The stages, in order.
    pub pipeline: Vec<Stage>,
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= "a"`, `!= "a"`, `|~ "re"`, `!~ "re"`, with `or` alternatives.
    Line(LineFilter),
    /// `| json`, optionally with `label="path"` extractions.
    Json(Vec<(String, JsonPath)>),
    /// `| logfmt`, optionally with `label="key"` extractions.
    Logfmt(Vec<(String, String)>),
    /// `| regexp "(?P<name>…)"`.
    Regexp(Regex),
    /// `| pattern "<ip> - <_> <status>"`.
    Pattern(Pattern),
    /// `| unpack`: the JSON object's members as labels and its `_entry` as the line.
    Unpack,
    /// A label filter expression: `| status >= 500 and level="error"`.
    Filter(LabelFilter),
    /// `| line_format "{{.a}}"`.
    LineFormat(Template),
    /// `| label_format a=b, c="{{.x}}"`.
    LabelFormat(Vec<(String, LabelSource)>),
    /// `| drop a, b` (names, or `name="value"` conditions).
    Drop(Vec<LabelRef>),
    /// `| keep a, b`.
    Keep(Vec<LabelRef>),
    /// `| decolorize`: strips ANSI colour codes.
    Decolorize,
}

/// A line filter with its alternatives (`|= "a" or "b"`: either).
#[derive(Debug, Clone)]
pub struct LineFilter {
    /// Contains / matches, or the negation.
    pub op: LineOp,
    /// The strings or regexes, any of which satisfies a positive filter.
    pub values: Vec<LineValue>,
}

/// The four line-filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Matches,
    /// `!~`
    NotMatches,
}

/// One alternative of a line filter.
#[derive(Debug, Clone)]
pub enum LineValue {
    /// A substring.
    Text(String),
    /// A regex (unanchored, as Loki's).
    Regex(Regex),
}

/// A JSON path (`a.b[0].c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathStep>);

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A parsed `pattern` expression: literal text between named captures.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Alternating literals and captures (`None` for `<_>`).
    pub parts: Vec<PatternPart>,
}

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    /// Text that must appear.
    Literal(String),
    /// A capture; `None` for `<_>`.
    Capture(Option<String>),
}

/// A boolean expression over labels.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// Both.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name op "string"` (`=`, `!=`, `=~`, `!~`).
    String(Matcher),
    /// `name op number` (`==`, `!=`, `>`, `>=`, `<`, `<=`); the value parsed as a number,
    /// duration (seconds) or byte size by the right-hand side's form.
    Number {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Right-hand side.
        value: f64,
        /// How to read the label's value.
        kind: NumKind,
    },
}

/// A number's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    /// A plain number.
    Plain,
    /// A duration (`1.5s`, `250ms`), in seconds.
    Duration,
    /// A byte size (`10KB`), in bytes.
    Bytes,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// Applies the comparison.
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// Where a `label_format` label comes from.
#[derive(Debug, Clone)]
pub enum LabelSource {
    /// Renamed from another label (`dst=src`).
    Label(String),
    /// A template (`dst="{{.a}}-{{.b}}"`).
    Template(Template),
}

/// A label named in `drop`/`keep`: any value, or only when it has this value.
#[derive(Debug, Clone)]
pub struct LabelRef {
    /// Name.
    pub name: String,
    /// Only when the value matches.
    pub when: Option<Matcher>,
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    /// `count_over_time({…}[5m])` and the other range aggregations.
    Range(RangeAgg),
    /// `sum by (x) (…)` and the other vector aggregations.
    Vector(VectorAgg),
    /// `a + b`, `a > 10`, `a and b`.
    Binary(Box<Binary>),
    /// A number.
    Literal(f64),
    /// `vector(1)`: one series without labels.
    VectorLiteral(f64),
    /// `label_replace(v, "dst", "replacement", "src", "regex")`.
    LabelReplace(Box<LabelReplace>),
}

/// A range aggregation over a log expression.
#[derive(Debug, Clone)]
pub struct RangeAgg {
    /// Which.
    pub op: RangeOp,
    /// `quantile_over_time`'s φ.
    pub param: Option<f64>,
    /// The lines.
    pub log: LogExpr,
    /// `| unwrap label` (required by the unwrapped operations).
    pub unwrap: Option<Unwrap>,
    /// The window.
    pub range: Duration,
    /// `offset 1h`.
    pub offset: Duration,
    /// `by`/`without` after the call (for the unwrapped operations).
    pub grouping: Option<Grouping>,
}

/// `| unwrap [duration|bytes](label)` and the label filters after it.
#[derive(Debug, Clone)]
pub struct Unwrap {
    /// The label whose value becomes the sample.
    pub label: String,
    /// How to read it.
    pub kind: NumKind,
    /// Label filters after the unwrap.
    pub filters: Vec<LabelFilter>,
}

/// The range aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// Lines in the window.
    CountOverTime,
    /// Lines per second (or, unwrapped, the sum per second).
    Rate,
    /// Bytes of the lines.
    BytesOverTime,
    /// Bytes per second.
    BytesRate,
    /// 1 when the selector had no line in the window.
    AbsentOverTime,
    /// Unwrapped: sum.
    SumOverTime,
    /// Unwrapped: mean.
    AvgOverTime,
    /// Unwrapped: minimum.
    MinOverTime,
    /// Unwrapped: maximum.
    MaxOverTime,
    /// Unwrapped: population standard deviation.
    StddevOverTime,
    /// Unwrapped: population variance.
    StdvarOverTime,
    /// Unwrapped: φ-quantile.
    QuantileOverTime,
    /// Unwrapped: first value.
    FirstOverTime,
    /// Unwrapped: last value.
    LastOverTime,
    /// Unwrapped counter: increase per second.
    RateCounter,
}

impl RangeOp {
    /// The operation named `name`.
    pub fn from_name(name: &str) -> Option<RangeOp> {
        Some(match name {
            "count_over_time" => RangeOp::CountOverTime,
            "rate" => RangeOp::Rate,
            "bytes_over_time" => RangeOp::BytesOverTime,
            "bytes_rate" => RangeOp::BytesRate,
            "absent_over_time" => RangeOp::AbsentOverTime,
            "sum_over_time" => RangeOp::SumOverTime,
            "avg_over_time" => RangeOp::AvgOverTime,
            "min_over_time" => RangeOp::MinOverTime,
            "max_over_time" => RangeOp::MaxOverTime,
            "stddev_over_time" => RangeOp::StddevOverTime,
            "stdvar_over_time" => RangeOp::StdvarOverTime,
            "quantile_over_time" => RangeOp::QuantileOverTime,
            "first_over_time" => RangeOp::FirstOverTime,
            "last_over_time" => RangeOp::LastOverTime,
            "rate_counter" => RangeOp::RateCounter,
            _ => return None,
        })
    }

    /// Whether the operation needs `| unwrap` (rate works either way).
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }

    /// Whether the result over a merged window is the sum of the results over its parts
    /// (so `sum by` may fold the lines of a group at once): counts, sums and rates, not
    /// extremes, means, quantiles or counter rates.
    pub fn is_additive(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::SumOverTime
        )
    }

    /// Whether the operation refuses `| unwrap`.
    pub fn refuses_unwrap(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

/// `by (a, b)` or `without (a, b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// `without` rather than `by`.
    pub without: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// A vector aggregation.
#[derive(Debug, Clone)]
pub struct VectorAgg {
    /// Which.
    pub op: VectorOp,
    /// `topk`'s k.
    pub param: Option<f64>,
    /// The grouping.
    pub grouping: Option<Grouping>,
    /// The operand.
    pub inner: Box<MetricExpr>,
}

/// The vector aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Number of series.
    Count,
    /// Population standard deviation.
    Stddev,
    /// Population variance.
    Stdvar,
    /// The k largest.
    Topk,
    /// The k smallest.
    Bottomk,
    /// Ascending by value.
    Sort,
    /// Descending by value.
    SortDesc,
}

impl VectorOp {
    /// The aggregation named `name`.
    pub fn from_name(name: &str) -> Option<VectorOp> {
        Some(match name {
            "sum" => VectorOp::Sum,
            "avg" => VectorOp::Avg,
            "min" => VectorOp::Min,
            "max" => VectorOp::Max,
            "count" => VectorOp::Count,
            "stddev" => VectorOp::Stddev,
            "stdvar" => VectorOp::Stdvar,
            "topk" => VectorOp::Topk,
            "bottomk" => VectorOp::Bottomk,
            "sort" => VectorOp::Sort,
            "sort_desc" => VectorOp::SortDesc,
            _ => return None,
        })
    }
}

/// A binary operation.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Which.
    pub op: BinOp,
    /// Left operand.
    pub lhs: MetricExpr,
    /// Right operand.
    pub rhs: MetricExpr,
    /// `bool`: comparisons yield 0/1 instead of filtering.
    pub return_bool: bool,
    /// `on (…)` / `ignoring (…)`.
    pub matching: Option<Grouping>,
}

/// Binary operators, by precedence (lowest first: `or`; highest: `^`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `unless`
    Unless,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
}

impl BinOp {
    /// The comparison, for comparison operators.
    pub fn comparison(self) -> Option<CmpOp> {
        Some(match self {
            BinOp::Eq => CmpOp::Eq,
            BinOp::Ne => CmpOp::Ne,
            BinOp::Gt => CmpOp::Gt,
            BinOp::Ge => CmpOp::Ge,
            BinOp::Lt => CmpOp::Lt,
            BinOp::Le => CmpOp::Le,
            _ => return None,
        })
    }

    /// Whether it is `and`, `or` or `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// `label_replace`'s arguments.
#[derive(Debug, Clone)]
pub struct LabelReplace {
    /// The operand.
    pub inner: MetricExpr,
    /// Destination label.
    pub dst: String,
    /// Replacement with `$1`, `${name}`.
    pub replacement: String,
    /// Source label.
    pub src: String,
    /// Anchored regex.
    pub regex: Regex,
}
