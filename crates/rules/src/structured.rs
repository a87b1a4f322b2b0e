//! Seed 003's structured rule kinds — threshold, trend, anomaly and composite — as users
//! write them in JSON through the API, and their compilation into alerting [`Rule`]s.
//!
//! Each kind becomes PromQL where PromQL can say it, and that PromQL is the rule's `expr`
//! (what `/api/v1/rules` shows and what is evaluated):
//!
//! - `threshold`: `metric op value`; a value written `"5%"` is 0.05 (for ratio metrics);
//! - `trend`: `deriv(metric[window])` beyond `min_slope` (units per second, the unit of
//!   `deriv`), and significant: the least-squares fit explains at least `min_r2` of the
//!   variance. For a line fitted to evenly spread samples, `R² = slope² · var(t) /
//!   var(x)` with `var(t) = window²/12`, so the check is
//!   `deriv(m[w])^2 * (w²/12) / stddev_over_time(m[w])^2 >= min_r2` — a steady climb
//!   passes, a noisy series whose endpoints happen to differ does not;
//! - `composite`: each part scores 1 when it returns anything; `and` needs every part,
//!   `or` any, and a `score_threshold` makes it a weighted vote
//!   (`Σ weightᵢ·holdsᵢ / Σ weightᵢ >= score_threshold`). A composite alert is one alert
//!   (no labels of its parts), valued by its score.
//!
//! `anomaly` has no PromQL form: its metric is fed, series by series, to a detector of
//! [`dozor_detect`] kept between evaluations ([`Native`]), and the alert's value is the
//! score. Its `expr` is written in a function notation that names the detector
//! (`robust_z(window=60)(metric) >= 3`) so users still see what runs. A composite with an
//! anomaly part is evaluated the same way.
//!
//! Errors name the field as a path (`condition.conditions[1].window: …`).

use std::collections::BTreeMap;
use std::fmt;

use dozor_detect::Spec as DetectorSpec;
use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;
use serde::{Deserialize, Serialize};

use crate::file::{Expression, Flapping, Rule, RuleGroup, RuleKind, parse_duration};

/// The `file` of the group that holds a tenant's structured rules.
pub const MANAGED_FILE: &str = "dozor:api";
/// The name of that group.
pub const MANAGED_GROUP: &str = "dozor-rules";

/// A structured rule as stored and as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The alert's name (`alertname`).
    pub name: String,
    /// What must hold.
    pub condition: Condition,
    /// The `severity` label.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// The `summary` annotation (a template; default: the name and the value).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The `description` annotation (a template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// More labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Seed 003's tags, as the `tags` annotation (comma-separated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Seed 003's channels, as the `channels` annotation (comma-separated), for routing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
    /// How long it keeps firing after the condition cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<Duration>,
    /// Quiet time after a resolution (seed 003: seconds, or a duration string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
    /// Flapping detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<FlappingSpec>,
    /// Whether the rule is evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_severity() -> String {
    "warning".into()
}
fn yes() -> bool {
    true
}

/// A duration: seconds as a number (seed 003's `cooldown: 300`) or a Prometheus duration
/// string (`"5m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Duration {
    /// Seconds.
    Seconds(f64),
    /// `1h30m`.
    Text(String),
}

impl Duration {
    /// Milliseconds.
    pub fn ms(&self) -> Result<i64, String> {
        match self {
            Duration::Seconds(s) if s.is_finite() && *s >= 0.0 && *s < 1e12 => {
                Ok((s * 1000.0).round() as i64)
            }
            Duration::Seconds(s) => Err(format!("not a valid number of seconds: {s}")),
            Duration::Text(t) => parse_duration(t),
        }
    }
}

/// Flapping detection of a structured rule (see [`Flapping`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlappingSpec {
    /// The window.
    pub window: Duration,
    /// Starts within the window that make the alert flap.
    pub threshold: u32,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::Ge => ">=",
            Operator::Le => "<=",
            Operator::Eq => "==",
            Operator::Ne => "!=",
        }
    }
}

/// A threshold: a number, or a percentage written `"5%"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A number.
    Number(f64),
    /// `"5%"` (0.05) or a number in a string.
    Text(String),
}

impl Value {
    fn get(&self) -> Result<f64, String> {
        let v = match self {
            Value::Number(n) => *n,
            Value::Text(t) => {
                let t = t.trim();
                let (num, scale) = match t.strip_suffix('%') {
                    Some(n) => (n.trim(), 0.01),
                    None => (t, 1.0),
                };
                num.parse::<f64>()
                    .map_err(|_| format!("not a number or percentage: {t:?}"))?
                    * scale
            }
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("must be finite, got {v}"))
        }
    }
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rising (or above the expected value).
    Up,
    /// Falling (or below it).
    Down,
    /// Either (anomalies only).
    Both,
}

/// `and` or `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Logic {
    /// Every part.
    And,
    /// Any part.
    Or,
}

/// Which detector an anomaly condition uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// Median and MAD over a window.
    Mad,
    /// EWMA mean and variance.
    Ewma,
    /// Seasonal Holt-Winters.
    HoltWinters,
    /// Two-sided CUSUM change points.
    Cusum,
    /// Shape novelty (fuzzy ART memory of the series' shapes); scores in [0, 1].
    Novelty,
    /// An autoencoder over windows, with the robust z-score as its fallback.
    Autoencoder,
}

impl DetectorKind {
    fn as_str(self) -> &'static str {
        match self {
            DetectorKind::Mad => "mad",
            DetectorKind::Ewma => "ewma",
            DetectorKind::HoltWinters => "holt_winters",
            DetectorKind::Cusum => "cusum",
            DetectorKind::Novelty => "novelty",
            DetectorKind::Autoencoder => "autoencoder",
        }
    }

    /// The sensitivity when none is given: 3 spreads; 8 for a CUSUM sum; 0.5 for a
    /// novelty score.
    fn default_sensitivity(self) -> f64 {
        match self {
            DetectorKind::Cusum => 8.0,
            DetectorKind::Novelty => 0.5,
            _ => 3.0,
        }
    }
}

/// What must hold: a `type` and that type's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// `metric op value`.
    Threshold(Threshold),
    /// A significant rise or fall over a window.
    Trend(Trend),
    /// A value a detector finds unusual.
    Anomaly(Anomaly),
    /// Log lines falling into a template not seen before.
    LogPattern(LogPattern),
    /// Parts combined.
    Composite(Composite),
}

/// A log-pattern condition (seed 000's new-error-cluster alert): the lines of a LogQL log
/// query fall into templates (the template miner of `dozor_detect`); a template first seen
/// after the learning period — which the first evaluation reads from history — is new for
/// `new_for` once it holds `min_cluster_size` lines, and each new template is one alert
/// (label `template`, value its line count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPattern {
    /// A LogQL log query: `{level="error"}`, `{service="kkt"} |= "error"`.
    pub query: String,
    /// Lines a new template needs before it counts (default 5, seed 000's default).
    #[serde(default = "default_min_cluster_size")]
    pub min_cluster_size: u64,
    /// The learning period read from history at the first evaluation (default 1h): its
    /// templates are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn: Option<Duration>,
    /// How long a template stays new (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_for: Option<Duration>,
}

fn default_min_cluster_size() -> u64 {
    5
}

/// What a log-pattern condition runs.
#[derive(Debug, Clone)]
pub struct LogPatternExpr {
    /// The lines.
    pub query: dozor_logs::logql::ast::LogExpr,
    /// Lines a new template needs.
    pub min_cluster_size: u64,
    /// The learning period, ms.
    pub learn_ms: i64,
    /// How long a template stays new, ms.
    pub new_for_ms: i64,
    /// Index among the rule's stateful parts.
    pub slot: usize,
}

/// A threshold condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// A PromQL instant-vector expression (a metric name is one).
    pub metric: String,
    /// The comparison.
    pub operator: Operator,
    /// The threshold.
    pub value: Value,
}

/// A trend condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trend {
    /// A PromQL instant-vector expression.
    pub metric: String,
    /// Up or down.
    pub direction: Direction,
    /// Least slope, units per second.
    pub min_slope: f64,
    /// The window.
    pub window: Duration,
    /// Least share of variance the fitted line must explain, in [0, 1] (default 0.5).
    #[serde(default = "default_r2")]
    pub min_r2: f64,
}

/// An anomaly condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    /// A PromQL instant-vector expression.
    pub metric: String,
    /// The detector.
    pub detector: DetectorKind,
    /// Score from which a value is anomalous: in standard deviations (default 3); for
    /// `cusum` the sum (default 8); for `novelty` a score in (0, 1] (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<f64>,
    /// Which side counts (default both).
    #[serde(default = "default_side")]
    pub direction: Direction,
    /// `mad`: values in the window (default 60); `autoencoder`: values per input window
    /// (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// `cusum`: half the smallest shift worth finding, in spreads (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<f64>,
    /// `novelty`: values of the learning period (default 750).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn: Option<usize>,
    /// `holt_winters`: values per season (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<usize>,
    /// `ewma`, `holt_winters`: level smoothing (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// `holt_winters`: trend smoothing (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// `holt_winters`: seasonal smoothing (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
}

/// A composite condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Composite {
    /// `and` or `or`.
    pub operator: Logic,
    /// The parts.
    pub conditions: Vec<Part>,
    /// With weights: the least weighted share of holding parts, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f64>,
}

/// Marks an error message that carries the path of the field inside a condition (serde
/// loses paths inside tagged enums, so [`Condition`] reads its `type` itself and passes
/// the inner path up in the message, which [`from_json`] joins to the outer one).
const PATH_MARK: char = '\u{1}';

/// `message` about the field `path`, as a marked message (joining an inner mark).
fn mark(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let (inner, rest) = unmark(message);
    let joined = match (path, inner) {
        ("", i) => i.to_owned(),
        (p, "") => p.to_owned(),
        (p, i) if i.starts_with('[') => format!("{p}{i}"),
        (p, i) => format!("{p}.{i}"),
    };
    format!("{PATH_MARK}{joined}{PATH_MARK}{rest}")
}

/// The path and message of a marked message (an empty path when unmarked).
fn unmark(message: &str) -> (&str, &str) {
    message
        .strip_prefix(PATH_MARK)
        .and_then(|m| m.split_once(PATH_MARK))
        .unwrap_or(("", message))
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
        use serde::de::Error;
        fn variant<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                mark(&path, &strip_position(&e.inner().to_string()))
            })
        }
        let mut map = serde_json::Map::deserialize(d)?;
        let ty = match map.remove("type") {
            Some(serde_json::Value::String(t)) => t,
            Some(_) => return Err(D::Error::custom(mark("type", "must be a string"))),
            None => {
                return Err(D::Error::custom(mark(
                    "type",
                    "missing: threshold, trend, anomaly, log_pattern or composite",
                )));
            }
        };
        let v = serde_json::Value::Object(map);
        match ty.as_str() {
            "threshold" => variant(v).map(Condition::Threshold),
            "trend" => variant(v).map(Condition::Trend),
            "anomaly" => variant(v).map(Condition::Anomaly),
            "log_pattern" => variant(v).map(Condition::LogPattern),
            "composite" => variant(v).map(Condition::Composite),
            other => Err(mark(
                "type",
                &format!(
                    "unknown condition type {other:?}: threshold, trend, anomaly, log_pattern or composite"
                ),
            )),
        }
        .map_err(D::Error::custom)
    }
}

/// A serde_json message without its " at line L column C".
fn strip_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((m, _)) => m.to_owned(),
        None => message.to_owned(),
    }
}

fn default_r2() -> f64 {
    0.5
}
fn default_side() -> Direction {
    Direction::Both
}

/// A part of a composite condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Its weight in the score (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// The condition.
    #[serde(flatten)]
    pub condition: Condition,
}

fn one() -> f64 {
    1.0
}

/// A structured rule that does not check, with the path of the bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `condition.conditions[1].window`, or empty for the whole rule.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

fn bad(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a rule from JSON, naming the field that does not fit.
pub fn from_json(json: &[u8]) -> Result<RuleSpec, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let marked = mark(
            &e.path().to_string(),
            &strip_position(&e.inner().to_string()),
        );
        let (field, message) = unmark(&marked);
        bad(field, message)
    })
}

/// What an anomaly condition runs: its input, detector and threshold. `slot` tells its
/// detectors apart from those of other anomaly parts of the same rule.
#[derive(Debug, Clone)]
pub struct AnomalyExpr {
    /// The input series.
    pub input: Expr,
    /// The detector.
    pub detector: DetectorSpec,
    /// The least |score| that counts.
    pub sensitivity: f64,
    /// Which side counts.
    pub side: Direction,
    /// Index among the rule's anomaly parts.
    pub slot: usize,
}

/// An expression evaluated by Dozor itself (no PromQL form).
#[derive(Debug, Clone)]
pub enum Native {
    /// A detector over a series.
    Anomaly(AnomalyExpr),
    /// New templates among log lines.
    LogPattern(LogPatternExpr),
    /// Parts, one of them native at least: `(weight, part)`; the result is the score if it
    /// reaches `threshold` (`None`: any part, i.e. a score above 0).
    Composite {
        /// The parts.
        parts: Vec<(f64, NativePart)>,
        /// The least score.
        threshold: Option<f64>,
    },
}

/// A part of a native composite.
#[derive(Debug, Clone)]
pub enum NativePart {
    /// PromQL.
    Promql(Expr),
    /// Evaluated by Dozor.
    Native(Box<Native>),
}

/// A condition compiled: PromQL, or native with its display form.
enum Compiled {
    Promql(String),
    Native(Native, String),
}

impl Compiled {
    fn text(&self) -> &str {
        match self {
            Compiled::Promql(s) | Compiled::Native(_, s) => s,
        }
    }
}

impl RuleSpec {
    /// Checks the rule and compiles it to an alerting rule; `id` becomes its `rule_id`
    /// label.
    pub fn compile(&self, id: &str) -> Result<Rule, SpecError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(bad(
                "name",
                "must be 1 to 200 characters without control characters",
            ));
        }
        if self.severity.trim().is_empty() {
            return Err(bad("severity", "must not be empty"));
        }
        let mut slots = 0;
        let compiled = compile(&self.condition, "condition", &mut slots)?;
        let parsed = match &compiled {
            Compiled::Promql(text) => Expression::Promql(
                dozor_promql::parse(text).map_err(|e| bad("condition", e.to_string()))?,
            ),
            Compiled::Native(n, _) => Expression::Native(Box::new(n.clone())),
        };
        let mut labels = self.labels.clone();
        for k in labels.keys() {
            if !dozor_model::labels::is_valid_label_name(k) || k == "__name__" {
                return Err(bad(format!("labels.{k}"), "invalid label name"));
            }
        }
        labels.insert("severity".into(), self.severity.clone());
        labels.insert("rule_id".into(), id.to_owned());
        let mut annotations = BTreeMap::new();
        let summary = if self.summary.is_empty() {
            format!("{name}: {{{{ $value }}}}")
        } else {
            self.summary.clone()
        };
        annotations.insert("summary".to_owned(), summary);
        if !self.description.is_empty() {
            annotations.insert("description".to_owned(), self.description.clone());
        }
        if !self.tags.is_empty() {
            annotations.insert("tags".to_owned(), self.tags.join(","));
        }
        if !self.channels.is_empty() {
            annotations.insert("channels".to_owned(), self.channels.join(","));
        }
        for (field, text) in [
            ("summary", annotations.get("summary")),
            ("description", annotations.get("description")),
        ] {
            if let Some(Err(e)) = text.map(|t| crate::template::Template::parse(t)) {
                return Err(bad(field, format!("template parsing error: {e}")));
            }
        }
        let ms = |field: &str, d: &Option<Duration>| {
            d.as_ref()
                .map_or(Ok(0), Duration::ms)
                .map_err(|e| bad(field, e))
        };
        let flapping = match &self.flapping {
            None => None,
            Some(f) => {
                let window_ms = f.window.ms().map_err(|e| bad("flapping.window", e))?;
                if window_ms <= 0 {
                    return Err(bad("flapping.window", "must be positive"));
                }
                if f.threshold < 2 {
                    return Err(bad("flapping.threshold", "must be at least 2"));
                }
                Some(Flapping {
                    window_ms,
                    threshold: f.threshold,
                })
            }
        };
        Ok(Rule {
            name: name.to_owned(),
            expr: compiled.text().to_owned(),
            parsed,
            labels,
            kind: RuleKind::Alerting {
                for_ms: ms("for", &self.for_)?,
                keep_firing_for_ms: ms("keep_firing_for", &self.keep_firing_for)?,
                cooldown_ms: ms("cooldown", &self.cooldown)?,
                flapping,
                annotations,
            },
            line: 0,
        })
    }
}

/// The group of a tenant's structured rules (`(id, rule)`; enabled ones only), evaluated
/// every `interval_ms`, and the rules that no longer compile (checked when stored, they
/// can still fail after an upgrade changed what is accepted).
pub fn managed_group<'a>(
    rules: impl IntoIterator<Item = (&'a str, &'a RuleSpec)>,
    interval_ms: Option<i64>,
) -> (RuleGroup, Vec<(String, SpecError)>) {
    let mut compiled = Vec::new();
    let mut failed = Vec::new();
    for (id, r) in rules.into_iter().filter(|(_, r)| r.enabled) {
        match r.compile(id) {
            Ok(rule) => compiled.push(rule),
            Err(e) => failed.push((id.to_owned(), e)),
        }
    }
    let group = RuleGroup {
        name: MANAGED_GROUP.into(),
        file: MANAGED_FILE.into(),
        interval_ms,
        query_offset_ms: 0,
        limit: 0,
        labels: BTreeMap::new(),
        rules: compiled,
    };
    (group, failed)
}

fn instant_vector(metric: &str, field: &str) -> Result<Expr, SpecError> {
    let field = format!("{field}.metric");
    if metric.trim().is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    let e = dozor_promql::parse(metric)
        .map_err(|e| bad(&field, format!("could not parse expression: {e}")))?;
    if e.value_type() != ValueType::Vector {
        return Err(bad(field, "must be an instant vector expression"));
    }
    Ok(e)
}

/// `metric` as an operand: bare when it is a selector or a call, else parenthesised.
fn operand(metric: &str, e: &Expr) -> String {
    match e {
        Expr::VectorSelector(_) | Expr::Call(_) | Expr::Aggregate(_) => metric.trim().to_owned(),
        _ => format!("({})", metric.trim()),
    }
}

/// A number as PromQL writes it.
fn num(v: f64) -> String {
    format!("{v}")
}

fn compile(c: &Condition, field: &str, slots: &mut usize) -> Result<Compiled, SpecError> {
    match c {
        Condition::Threshold(Threshold {
            metric,
            operator,
            value,
        }) => {
            let e = instant_vector(metric, field)?;
            let v = value.get().map_err(|m| bad(format!("{field}.value"), m))?;
            Ok(Compiled::Promql(format!(
                "{} {} {}",
                operand(metric, &e),
                operator.as_str(),
                num(v)
            )))
        }
        Condition::Trend(Trend {
            metric,
            direction,
            min_slope,
            window,
            min_r2,
        }) => {
            let e = instant_vector(metric, field)?;
            let w = window.ms().map_err(|m| bad(format!("{field}.window"), m))?;
            if w < 1000 {
                return Err(bad(format!("{field}.window"), "must be at least 1s"));
            }
            if !min_slope.is_finite() || *min_slope < 0.0 {
                return Err(bad(
                    format!("{field}.min_slope"),
                    "must be a non-negative number (the direction gives the sign)",
                ));
            }
            if !(0.0..=1.0).contains(min_r2) {
                return Err(bad(format!("{field}.min_r2"), "must be in [0, 1]"));
            }
            let range = match &e {
                Expr::VectorSelector(v) if v.offset.is_none() && v.at.is_none() => {
                    format!("{}[{}]", metric.trim(), format_ms(w))
                }
                _ => format!("({})[{}:]", metric.trim(), format_ms(w)),
            };
            let slope = match direction {
                Direction::Up => format!("deriv({range}) > {}", num(*min_slope)),
                Direction::Down => format!("deriv({range}) < {}", num(-*min_slope)),
                Direction::Both => {
                    return Err(bad(format!("{field}.direction"), "must be up or down"));
                }
            };
            let secs = w as f64 / 1000.0;
            Ok(Compiled::Promql(format!(
                "{slope} and deriv({range})^2 * {} / stddev_over_time({range})^2 >= {}",
                num(secs * secs / 12.0),
                num(*min_r2)
            )))
        }
        Condition::Anomaly(Anomaly {
            metric,
            detector,
            sensitivity,
            direction,
            window,
            allowance,
            learn,
            period,
            alpha,
            beta,
            gamma,
        }) => {
            let input = instant_vector(metric, field)?;
            let sensitivity = &sensitivity.unwrap_or(detector.default_sensitivity());
            let unused = |name: &str, set: bool| {
                if set {
                    Err(bad(
                        format!("{field}.{name}"),
                        format!("not a parameter of the {} detector", detector.as_str()),
                    ))
                } else {
                    Ok(())
                }
            };
            let only = |allowed: &[&str]| {
                let given = [
                    ("window", window.is_some()),
                    ("allowance", allowance.is_some()),
                    ("learn", learn.is_some()),
                    ("period", period.is_some()),
                    ("alpha", alpha.is_some()),
                    ("beta", beta.is_some()),
                    ("gamma", gamma.is_some()),
                ];
                given
                    .iter()
                    .filter(|(name, _)| !allowed.contains(name))
                    .try_for_each(|&(name, set)| unused(name, set))
            };
            let (spec, params) = match detector {
                DetectorKind::Mad => {
                    only(&["window"])?;
                    let window = window.unwrap_or(60);
                    (
                        DetectorSpec::Mad { window },
                        format!("robust_z(window={window})"),
                    )
                }
                DetectorKind::Ewma => {
                    only(&["alpha"])?;
                    let alpha = alpha.unwrap_or(0.1);
                    (DetectorSpec::Ewma { alpha }, format!("ewma(alpha={alpha})"))
                }
                DetectorKind::HoltWinters => {
                    only(&["period", "alpha", "beta", "gamma"])?;
                    let period = period.ok_or_else(|| {
                        bad(
                            format!("{field}.period"),
                            "required by holt_winters (values per season)",
                        )
                    })?;
                    let (alpha, beta, gamma) = (
                        alpha.unwrap_or(0.1),
                        beta.unwrap_or(0.01),
                        gamma.unwrap_or(0.1),
                    );
                    (
                        DetectorSpec::HoltWinters {
                            period,
                            alpha,
                            beta,
                            gamma,
                        },
                        format!(
                            "holt_winters(period={period}, alpha={alpha}, beta={beta}, gamma={gamma})"
                        ),
                    )
                }
                DetectorKind::Cusum => {
                    only(&["allowance"])?;
                    let allowance = allowance.unwrap_or(0.5);
                    (
                        DetectorSpec::Cusum {
                            allowance,
                            threshold: *sensitivity,
                        },
                        format!("cusum(allowance={allowance})"),
                    )
                }
                DetectorKind::Novelty => {
                    only(&["learn"])?;
                    if !(*sensitivity > 0.0 && *sensitivity <= 1.0) {
                        return Err(bad(
                            format!("{field}.sensitivity"),
                            "a novelty score threshold, in (0, 1]",
                        ));
                    }
                    if *direction == Direction::Down {
                        return Err(bad(
                            format!("{field}.direction"),
                            "a new shape has no side: use up or both",
                        ));
                    }
                    let learn = learn.unwrap_or(750);
                    (
                        DetectorSpec::Novelty { learn },
                        format!("novelty(learn={learn})"),
                    )
                }
                DetectorKind::Autoencoder => {
                    only(&["window"])?;
                    let window = window.unwrap_or(16);
                    (
                        DetectorSpec::Autoencoder { window },
                        format!("autoencoder(window={window})"),
                    )
                }
            };
            spec.validate().map_err(|m| match m.split_once(": ") {
                Some((p, rest)) => bad(format!("{field}.{p}"), rest),
                None => bad(field, m),
            })?;
            if !sensitivity.is_finite() || *sensitivity <= 0.0 {
                return Err(bad(
                    format!("{field}.sensitivity"),
                    "must be a positive number",
                ));
            }
            let test = match direction {
                Direction::Up => format!(">= {}", num(*sensitivity)),
                Direction::Down => format!("<= {}", num(-*sensitivity)),
                Direction::Both => format!("beyond ±{}", num(*sensitivity)),
            };
            let slot = *slots;
            *slots += 1;
            Ok(Compiled::Native(
                Native::Anomaly(AnomalyExpr {
                    input,
                    detector: spec,
                    sensitivity: *sensitivity,
                    side: *direction,
                    slot,
                }),
                format!("{params}({}) {test}", metric.trim()),
            ))
        }
        Condition::LogPattern(LogPattern {
            query,
            min_cluster_size,
            learn,
            new_for,
        }) => {
            let f = format!("{field}.query");
            let log = match dozor_logs::logql::parse(query) {
                Ok(dozor_logs::logql::Expr::Log(log)) => log,
                Ok(dozor_logs::logql::Expr::Metric(_)) => {
                    return Err(bad(
                        f,
                        "must be a log query such as {level=\"error\"}, not a metric query",
                    ));
                }
                Err(e) => return Err(bad(f, e.to_string())),
            };
            if !(1..=1_000_000).contains(min_cluster_size) {
                return Err(bad(
                    format!("{field}.min_cluster_size"),
                    "must be from 1 to 1000000",
                ));
            }
            let window = |name: &str, d: &Option<Duration>| -> Result<i64, SpecError> {
                let ms = d
                    .as_ref()
                    .map_or(Ok(3_600_000), Duration::ms)
                    .map_err(|e| bad(format!("{field}.{name}"), e))?;
                if !(1000..=7 * 86_400_000).contains(&ms) {
                    return Err(bad(format!("{field}.{name}"), "must be from 1s to 7d"));
                }
                Ok(ms)
            };
            let (learn_ms, new_for_ms) = (window("learn", learn)?, window("new_for", new_for)?);
            let slot = *slots;
            *slots += 1;
            Ok(Compiled::Native(
                Native::LogPattern(LogPatternExpr {
                    query: log,
                    min_cluster_size: *min_cluster_size,
                    learn_ms,
                    new_for_ms,
                    slot,
                }),
                format!(
                    "new_log_patterns({}, min_cluster_size={min_cluster_size}, learn={}, new_for={})",
                    query.trim(),
                    format_ms(learn_ms),
                    format_ms(new_for_ms)
                ),
            ))
        }
        Condition::Composite(Composite {
            operator,
            conditions,
            score_threshold,
        }) => {
            if conditions.len() < 2 {
                return Err(bad(
                    format!("{field}.conditions"),
                    "a composite needs at least two conditions",
                ));
            }
            if let Some(t) = score_threshold
                && !(*t > 0.0 && *t <= 1.0)
            {
                return Err(bad(format!("{field}.score_threshold"), "must be in (0, 1]"));
            }
            let mut parts = Vec::with_capacity(conditions.len());
            for (i, p) in conditions.iter().enumerate() {
                let f = format!("{field}.conditions[{i}]");
                if !p.weight.is_finite() || p.weight <= 0.0 {
                    return Err(bad(format!("{f}.weight"), "must be a positive number"));
                }
                parts.push((p.weight, compile(&p.condition, &f, slots)?));
            }
            // Weights count only in a weighted vote; `and`/`or` count parts.
            let weighted = score_threshold.is_some();
            let total: f64 = if weighted {
                parts.iter().map(|(w, _)| w).sum()
            } else {
                parts.len() as f64
            };
            let threshold = match (score_threshold, operator) {
                (Some(t), _) => Some(*t),
                (None, Logic::And) => Some(1.0),
                (None, Logic::Or) => None,
            };
            let test = match threshold {
                Some(t) => format!(">= {}", num(t)),
                None => "> 0".to_owned(),
            };
            let terms: Vec<String> = parts
                .iter()
                .map(|(w, p)| {
                    let holds = format!("(count({}) > bool 0 or vector(0))", p.text());
                    if weighted {
                        format!("{} * {holds}", num(*w))
                    } else {
                        holds
                    }
                })
                .collect();
            let text = format!("({}) / {} {test}", terms.join(" + "), num(total));
            if parts.iter().all(|(_, p)| matches!(p, Compiled::Promql(_))) {
                return Ok(Compiled::Promql(text));
            }
            let parts = parts
                .into_iter()
                .map(|(w, p)| {
                    let w = if weighted { w } else { 1.0 };
                    match p {
                        Compiled::Promql(t) => dozor_promql::parse(&t)
                            .map(|e| (w, NativePart::Promql(e)))
                            .map_err(|e| bad(field, e.to_string())),
                        Compiled::Native(n, _) => Ok((w, NativePart::Native(Box::new(n)))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Compiled::Native(
                Native::Composite { parts, threshold },
                text,
            ))
        }
    }
}

/// Milliseconds as a Prometheus duration (`90s`, `5m`, `1500ms`).
fn format_ms(ms: i64) -> String {
    const UNITS: [(&str, i64); 6] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
        ("", 0),
    ];
    for (unit, size) in UNITS {
        if size > 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<Rule, SpecError> {
        from_json(json.as_bytes())?.compile("r1")
    }

    #[test]
    fn seed_003_threshold_rule_compiles_to_promql() {
        let r = rule(
            r#"{"name": "high_error_rate", "condition": {"type": "threshold", "metric": "error_rate",
                "operator": ">", "value": 5.0}, "severity": "critical", "channels": ["email", "slack"],
                "description": "Error rate exceeds 5%", "tags": ["critical"], "cooldown": 300}"#,
        )
        .unwrap();
        assert_eq!(r.expr, "error_rate > 5");
        assert!(matches!(r.parsed, Expression::Promql(_)));
        assert_eq!(r.labels["severity"], "critical");
        assert_eq!(r.labels["rule_id"], "r1");
        let RuleKind::Alerting {
            cooldown_ms,
            annotations,
            ..
        } = &r.kind
        else {
            panic!("alerting rule expected");
        };
        assert_eq!(*cooldown_ms, 300_000);
        assert_eq!(annotations["channels"], "email,slack");
        assert_eq!(annotations["description"], "Error rate exceeds 5%");
        let r = rule(
            r#"{"name": "x", "condition": {"type": "threshold", "metric": "sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m]))",
                "operator": ">=", "value": "5%"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.expr,
            "(sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m]))) >= 0.05"
        );
    }

    #[test]
    fn trend_and_composite_compile_to_promql() {
        let r = rule(
            r#"{"name": "disk", "condition": {"type": "trend", "metric": "disk_used_bytes", "direction": "up",
                "min_slope": 1000, "window": "1h"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.expr,
            "deriv(disk_used_bytes[1h]) > 1000 and deriv(disk_used_bytes[1h])^2 * 1080000 / stddev_over_time(disk_used_bytes[1h])^2 >= 0.5"
        );
        let r = rule(
            r#"{"name": "both", "condition": {"type": "composite", "operator": "and", "conditions": [
                {"type": "threshold", "metric": "cpu", "operator": ">", "value": 80},
                {"type": "threshold", "metric": "latency_ms", "operator": ">", "value": 1000}]}}"#,
        )
        .unwrap();
        assert_eq!(
            r.expr,
            "((count(cpu > 80) > bool 0 or vector(0)) + (count(latency_ms > 1000) > bool 0 or vector(0))) / 2 >= 1"
        );
        let r = rule(
            r#"{"name": "vote", "condition": {"type": "composite", "operator": "or", "score_threshold": 0.6, "conditions": [
                {"weight": 3, "type": "threshold", "metric": "cpu", "operator": ">", "value": 80},
                {"type": "threshold", "metric": "mem", "operator": ">", "value": 90}]}}"#,
        )
        .unwrap();
        assert_eq!(
            r.expr,
            "(3 * (count(cpu > 80) > bool 0 or vector(0)) + 1 * (count(mem > 90) > bool 0 or vector(0))) / 4 >= 0.6"
        );
    }

    #[test]
    fn anomaly_rules_are_native_and_say_what_runs() {
        let r = rule(
            r#"{"name": "odd", "condition": {"type": "anomaly", "metric": "orders_per_minute",
                "detector": "holt_winters", "period": 1440, "direction": "down"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.expr,
            "holt_winters(period=1440, alpha=0.1, beta=0.01, gamma=0.1)(orders_per_minute) <= -3"
        );
        let Expression::Native(n) = &r.parsed else {
            panic!("native expected");
        };
        assert!(matches!(**n, Native::Anomaly(AnomalyExpr { slot: 0, .. })));
        let said = |json: &str| rule(json).unwrap().expr;
        assert_eq!(
            said(
                r#"{"name": "c", "condition": {"type": "anomaly", "metric": "latency", "detector": "cusum", "direction": "up"}}"#
            ),
            "cusum(allowance=0.5)(latency) >= 8"
        );
        assert_eq!(
            said(
                r#"{"name": "n", "condition": {"type": "anomaly", "metric": "load", "detector": "novelty", "learn": 1440}}"#
            ),
            "novelty(learn=1440)(load) beyond ±0.5"
        );
        assert_eq!(
            said(
                r#"{"name": "a", "condition": {"type": "anomaly", "metric": "load", "detector": "autoencoder", "sensitivity": 5}}"#
            ),
            "autoencoder(window=16)(load) beyond ±5"
        );
        let r = rule(
            r#"{"name": "c", "condition": {"type": "composite", "operator": "or", "conditions": [
                {"type": "anomaly", "metric": "a", "detector": "mad"},
                {"type": "anomaly", "metric": "b", "detector": "ewma", "alpha": 0.3}]}}"#,
        )
        .unwrap();
        let Expression::Native(n) = &r.parsed else {
            panic!("native expected");
        };
        let Native::Composite { parts, threshold } = &**n else {
            panic!("composite expected");
        };
        assert_eq!(*threshold, None);
        let slots: Vec<usize> = parts
            .iter()
            .filter_map(|(_, p)| match p {
                NativePart::Native(n) => match &**n {
                    Native::Anomaly(a) => Some(a.slot),
                    Native::LogPattern(_) => None,
                    Native::Composite { .. } => None,
                },
                NativePart::Promql(_) => None,
            })
            .collect();
        assert_eq!(slots, [0, 1]);
    }

    #[test]
    fn log_pattern_conditions_check_their_fields() {
        let e = |json: &str| rule(json).unwrap_err().to_string();
        assert!(
            e(r#"{"name": "x", "condition": {"type": "log_pattern", "query": "count_over_time({a=\"b\"}[1m])"}}"#)
                .starts_with("condition.query: must be a log query")
        );
        assert!(
            e(r#"{"name": "x", "condition": {"type": "log_pattern", "query": "{a="}}"#)
                .starts_with("condition.query: ")
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "log_pattern", "query": "{a=\"b\"}", "min_cluster_size": 0}}"#
            ),
            "condition.min_cluster_size: must be from 1 to 1000000"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "log_pattern", "query": "{a=\"b\"}", "learn": "30d"}}"#
            ),
            "condition.learn: must be from 1s to 7d"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "log_pattern", "query": "{a=\"b\"}", "limit": 3}}"#
            ),
            "condition.limit: unknown field `limit`, expected one of `query`, `min_cluster_size`, `learn`, `new_for`"
        );
        // Inside a composite too.
        let ok = rule(
            r#"{"name": "x", "condition": {"type": "composite", "operator": "or", "conditions": [{"type": "log_pattern", "query": "{level=\"error\"}"}, {"type": "threshold", "metric": "m", "operator": ">", "value": 1}]}}"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = |json: &str| rule(json).unwrap_err().to_string();
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "threshold", "metric": "m", "operator": "=>", "value": 1}}"#
            ),
            "condition.operator: unknown variant `=>`, expected one of `>`, `<`, `>=`, `<=`, `==`, `!=`"
        );
        assert_eq!(
            e(r#"{"name": "x", "condition": {"type": "threshold", "metric": "m{", "operator": ">", "value": 1}}"#)
                .split_once(": could not parse")
                .map(|(f, _)| f),
            Some("condition.metric")
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "threshold", "metric": "m", "operator": ">", "value": "lots"}}"#
            ),
            "condition.value: not a number or percentage: \"lots\""
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "trend", "metric": "m", "direction": "up", "min_slope": 1, "window": "soon"}}"#
            ),
            "condition.window: not a valid duration string: \"soon\""
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "holt_winters"}}"#
            ),
            "condition.period: required by holt_winters (values per season)"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "mad", "window": 2}}"#
            ),
            "condition.window: must be 3..=100000, got 2"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "cusum", "period": 24}}"#
            ),
            "condition.period: not a parameter of the cusum detector"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "novelty", "sensitivity": 3}}"#
            ),
            "condition.sensitivity: a novelty score threshold, in (0, 1]"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "novelty", "direction": "down"}}"#
            ),
            "condition.direction: a new shape has no side: use up or both"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "anomaly", "metric": "m", "detector": "novelty", "learn": 5}}"#
            ),
            "condition.learn: must be 64..=100000, got 5"
        );
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "composite", "operator": "and", "conditions": [
                {"type": "threshold", "metric": "m", "operator": ">", "value": 1},
                {"type": "trend", "metric": "m", "direction": "both", "min_slope": 1, "window": "5m"}]}}"#
            ),
            "condition.conditions[1].direction: must be up or down"
        );
        assert_eq!(
            e(
                r#"{"name": "", "condition": {"type": "threshold", "metric": "m", "operator": ">", "value": 1}}"#
            ),
            "name: must be 1 to 200 characters without control characters"
        );
        assert_eq!(
            e(r#"{"name": "x", "condition": {"type": "threshold", "metric": "m", "operator": ">", "value": 1}, "colour": "red"}"#)
                .split_once(':')
                .map(|(f, _)| f),
            Some("colour")
        );
        assert!(e(r#"{"name": "x"}"#).contains("missing field `condition`"));
        assert_eq!(
            e(
                r#"{"name": "x", "condition": {"type": "threshold", "metric": "m", "operator": ">", "value": 1}, "cooldown": -5}"#
            ),
            "cooldown: not a valid number of seconds: -5"
        );
    }

    #[test]
    fn the_managed_group_leaves_out_disabled_rules_and_names_those_that_fail() {
        let ok = from_json(br#"{"name": "a", "condition": {"type": "threshold", "metric": "m", "operator": ">", "value": 1}}"#).unwrap();
        let mut off = ok.clone();
        off.enabled = false;
        let mut broken = ok.clone();
        // Stored before a stricter check (or edited by hand): it no longer compiles.
        broken.condition = Condition::Threshold(Threshold {
            metric: "m{".into(),
            operator: Operator::Gt,
            value: Value::Number(1.0),
        });
        let (group, failed) = managed_group([("r1", &ok), ("r2", &off), ("r3", &broken)], None);
        assert_eq!(
            (group.name.as_str(), group.file.as_str()),
            (MANAGED_GROUP, MANAGED_FILE)
        );
        let ids: Vec<&str> = group
            .rules
            .iter()
            .map(|r| r.labels["rule_id"].as_str())
            .collect();
        assert_eq!(ids, ["r1"]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "r3");
        assert_eq!(failed[0].1.field, "condition.metric");
    }

    #[test]
    fn durations_format_as_prometheus_writes_them() {
        assert_eq!(format_ms(3_600_000), "1h");
        assert_eq!(format_ms(90_000), "90s");
        assert_eq!(format_ms(1500), "1500ms");
        assert_eq!(format_ms(172_800_000), "2d");
    }
}
