//! Prometheus rule files: `groups` of recording and alerting rules, read and checked the
//! way Prometheus' `rulefmt` does (unknown keys, empty or repeated group names, both or
//! neither of `record`/`alert`, fields that do not belong to the rule's kind, expressions
//! that do not parse, invalid names, templates that do not parse). Every error names the
//! file, the line and column, the group, the rule's index and name.
//!
//! Extensions: after vmalert, a group's `type` says which language its expressions are
//! in — `prometheus` (the default: PromQL over metrics) or `logql` (LogQL metric queries
//! over logs and events, as Loki's ruler takes them); after seed 003, an alerting rule may
//! set `cooldown` (a duration) and `flapping` (`window`, `threshold` ≥ 2), see
//! [`crate::group`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::template::Template;

/// A rule group, checked.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// The group's name, unique within its file.
    pub name: String,
    /// The file the group came from.
    pub file: String,
    /// Evaluation interval, ms (`None`: the default interval).
    pub interval_ms: Option<i64>,
    /// How far in the past the group evaluates, ms (Prometheus' `query_offset`).
    pub query_offset_ms: i64,
    /// Most alerts or series one rule may produce (0: no limit).
    pub limit: usize,
    /// Labels added to every rule of the group (Prometheus 3's group `labels`).
    pub labels: BTreeMap<String, String>,
    /// The rules, in evaluation order (each rule's [`Expression`] says its language).
    pub rules: Vec<Rule>,
}

/// The language of a group's expressions (its `type`), while it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    /// PromQL over the tenant's metrics.
    Promql,
    /// LogQL metric queries over the tenant's logs and events.
    Logql,
}

/// A rule's parsed expression.
#[derive(Debug, Clone)]
pub enum Expression {
    /// PromQL.
    Promql(Expr),
    /// A LogQL metric query.
    Logql(dozor_logs::logql::Expr),
    /// Evaluated by Dozor itself: a structured rule's detectors and composites.
    Native(Box<crate::structured::Native>),
}

/// One rule of a group.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The `record` or `alert` name.
    pub name: String,
    /// The PromQL expression as written.
    pub expr: String,
    /// The parsed expression.
    pub parsed: Expression,
    /// Labels to add or overwrite (templates for an alerting rule).
    pub labels: BTreeMap<String, String>,
    /// What kind of rule this is.
    pub kind: RuleKind,
    /// 1-based line of the rule in its file (0 when unknown).
    pub line: u64,
}

/// Recording or alerting.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// `record`: the result is written back as series named after the rule.
    Recording,
    /// `alert`.
    Alerting {
        /// How long the condition must hold before the alert fires, ms.
        for_ms: i64,
        /// How long a firing alert keeps firing after the condition cleared, ms.
        keep_firing_for_ms: i64,
        /// After an alert resolved, how long the same alert may not fire again, ms
        /// (seed 003's `cooldown`; a Dozor extension, 0: none).
        cooldown_ms: i64,
        /// When an alert counts as flapping (a Dozor extension).
        flapping: Option<Flapping>,
        /// Annotation templates, by name.
        annotations: BTreeMap<String, String>,
    },
}

/// Flapping detection of an alerting rule: an alert whose condition has begun to hold
/// `threshold` times within `window_ms` is *flapping*; it then stays firing (one episode,
/// one notification) until fewer than `threshold` starts fall within the window and the
/// condition is clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flapping {
    /// The window, ms.
    pub window_ms: i64,
    /// How many starts within the window make an alert flap (at least 2).
    pub threshold: u32,
}

impl Rule {
    /// Whether this is an alerting rule.
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }
}

/// A rule file problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// 1-based line (0: unknown).
    pub line: u64,
    /// 1-based column (0: unknown).
    pub column: u64,
    /// The group's name, when the problem is inside one.
    pub group: Option<String>,
    /// 1-based index of the rule in its group, and its name (possibly empty).
    pub rule: Option<(usize, String)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        f.write_str(": ")?;
        if let Some(g) = &self.group {
            write!(f, "group {g:?}, ")?;
        }
        if let Some((i, name)) = &self.rule {
            write!(f, "rule {i}, {name:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, rename = "type")]
    lang: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    cooldown: Option<String>,
    #[serde(default)]
    flapping: Option<RawFlapping>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlapping {
    window: String,
    threshold: u32,
}

/// Reads and checks a rule file.
pub fn load_file(path: &Path) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleError {
            file: name.clone(),
            line: 0,
            column: 0,
            group: None,
            rule: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse(&text, &name)
}

/// Parses and checks rule-file text; `file` names it in errors. Returns every problem
/// found, not only the first.
pub fn parse(text: &str, file: &str) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let err = |line, column, message: String| RuleError {
        file: file.to_owned(),
        line,
        column,
        group: None,
        rule: None,
        message,
    };
    let raw: RawFile = match serde_saphyr::from_str::<Option<RawFile>>(text) {
        Ok(r) => r.unwrap_or(RawFile { groups: Vec::new() }),
        Err(e) => {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = e.to_string();
            let msg = msg.lines().next().unwrap_or("invalid YAML");
            let msg = msg.strip_prefix("error: ").unwrap_or(msg);
            let msg = match msg.split_once(": ") {
                Some((head, rest)) if head.starts_with("line ") => rest,
                _ => msg,
            };
            return Err(vec![err(line, col, msg.to_owned())]);
        }
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for g in raw.groups {
        let (gl, gc) = (g.name.referenced.line(), g.name.referenced.column());
        let gname = g.name.value.clone();
        let mut gerr = |message: String, line: u64, column: u64, rule: Option<(usize, String)>| {
            errors.push(RuleError {
                file: file.to_owned(),
                line,
                column,
                group: Some(gname.clone()),
                rule,
                message,
            });
        };
        if gname.is_empty() {
            gerr("group name should not be empty".into(), gl, gc, None);
        } else if !names.insert(gname.clone()) {
            gerr(
                format!("groupname: {gname:?} is repeated in the same file"),
                gl,
                gc,
                None,
            );
        }
        let duration = |field: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(|d| parse_duration(d).map_err(|e| format!("{field}: {e}")))
                .transpose()
        };
        let interval_ms = duration("interval", &g.interval).unwrap_or_else(|e| {
            gerr(e, gl, gc, None);
            None
        });
        if interval_ms == Some(0) {
            gerr("interval: must be greater than 0".into(), gl, gc, None);
        }
        let query_offset_ms = duration("query_offset", &g.query_offset)
            .unwrap_or_else(|e| {
                gerr(e, gl, gc, None);
                None
            })
            .unwrap_or(0);
        for k in g.labels.keys() {
            if !dozor_model::labels::is_valid_label_name(k) || k == "__name__" {
                gerr(format!("invalid label name: {k}"), gl, gc, None);
            }
        }
        let lang = match g.lang.as_ref().map(|t| (t.value.as_str(), t)) {
            None | Some(("prometheus" | "", _)) => Lang::Promql,
            Some(("logql" | "loki", _)) => Lang::Logql,
            Some((other, t)) => {
                gerr(
                    format!("type: {other:?} is not a rule type (prometheus or logql)"),
                    t.referenced.line(),
                    t.referenced.column(),
                    None,
                );
                Lang::Promql
            }
        };
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            let (line, col) = (r.referenced.line(), r.referenced.column());
            let r = r.value;
            let rname = r
                .record
                .clone()
                .or_else(|| r.alert.clone())
                .unwrap_or_default();
            let at = Some((i + 1, rname.clone()));
            let mut rerr = |m: String, line: u64, col: u64| gerr(m, line, col, at.clone());
            match check_rule(r, &g.labels, lang) {
                Ok(mut rule) => {
                    rule.line = line;
                    rules.push(rule);
                }
                Err(problems) => {
                    for (m, pos) in problems {
                        let (l, c) = pos.unwrap_or((line, col));
                        rerr(m, l, c);
                    }
                }
            }
        }
        groups.push(RuleGroup {
            name: gname,
            file: file.to_owned(),
            interval_ms,
            query_offset_ms,
            limit: g.limit,
            labels: g.labels,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

type Problems = Vec<(String, Option<(u64, u64)>)>;

fn check_rule(
    r: RawRule,
    group_labels: &BTreeMap<String, String>,
    lang: Lang,
) -> Result<Rule, Problems> {
    let mut p: Problems = Vec::new();
    let name = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => {
            p.push(("only one of 'record' and 'alert' must be set".into(), None));
            String::new()
        }
        (None, None) => {
            p.push(("one of 'record' or 'alert' must be set".into(), None));
            String::new()
        }
        (Some(n), None) | (None, Some(n)) => {
            if n.is_empty() {
                p.push(("the rule's name must not be empty".into(), None));
            }
            n.clone()
        }
    };
    let recording = r.record.is_some();
    if recording {
        if !name.is_empty() && !is_valid_metric_name(&name) {
            p.push((format!("invalid recording rule name: {name}"), None));
        }
        if r.annotations.is_some() {
            p.push(("invalid field 'annotations' in recording rule".into(), None));
        }
        if r.for_.is_some() {
            p.push(("invalid field 'for' in recording rule".into(), None));
        }
        for (field, set) in [
            ("keep_firing_for", r.keep_firing_for.is_some()),
            ("cooldown", r.cooldown.is_some()),
            ("flapping", r.flapping.is_some()),
        ] {
            if set {
                p.push((format!("invalid field '{field}' in recording rule"), None));
            }
        }
    }
    let mut parsed = None;
    match &r.expr {
        None => p.push(("field 'expr' must be set in rule".into(), None)),
        Some(e) if e.value.trim().is_empty() => {
            p.push((
                "field 'expr' must be set in rule".into(),
                Some((e.referenced.line(), e.referenced.column())),
            ));
        }
        Some(e) if lang == Lang::Logql => {
            let pos = Some((e.referenced.line(), e.referenced.column()));
            match dozor_logs::logql::parse(&e.value) {
                Ok(x @ dozor_logs::logql::Expr::Metric(_)) => parsed = Some(Expression::Logql(x)),
                Ok(_) => p.push((
                    "expression must be a LogQL metric query (count_over_time(...), rate(...), ...), not a log query".into(),
                    pos,
                )),
                Err(err) => p.push((format!("could not parse expression: {err}"), pos)),
            }
        }
        Some(e) => {
            let pos = Some((e.referenced.line(), e.referenced.column()));
            match dozor_promql::parse(&e.value) {
                Ok(x) => match x.value_type() {
                    ValueType::Vector | ValueType::Scalar => parsed = Some(Expression::Promql(x)),
                    other => p.push((
                        format!(
                            "expression must be an instant vector or a scalar, not a {}",
                            match other {
                                ValueType::Matrix => "range vector",
                                _ => "string",
                            }
                        ),
                        pos,
                    )),
                },
                Err(err) => p.push((format!("could not parse expression: {err}"), pos)),
            }
        }
    }
    let labels = r.labels.unwrap_or_default();
    for k in labels.keys() {
        if !dozor_model::labels::is_valid_label_name(k) || k == "__name__" {
            p.push((format!("invalid label name: {k}"), None));
        }
    }
    let annotations = r.annotations.unwrap_or_default();
    for k in annotations.keys() {
        if !dozor_model::labels::is_valid_label_name(k) {
            p.push((format!("invalid annotation name: {k}"), None));
        }
    }
    if !recording {
        for (what, map) in [("label", &labels), ("annotation", &annotations)] {
            for (k, v) in map {
                if let Err(e) = Template::parse(v) {
                    p.push((format!("{what} {k:?}: template parsing error: {e}"), None));
                }
            }
        }
    }
    let flap_window = r.flapping.as_ref().map(|f| f.window.clone());
    let mut durations = [0i64; 4];
    for (slot, (field, v)) in durations.iter_mut().zip([
        ("for", &r.for_),
        ("keep_firing_for", &r.keep_firing_for),
        ("cooldown", &r.cooldown),
        ("flapping.window", &flap_window),
    ]) {
        if let Some(v) = v {
            match parse_duration(v) {
                Ok(ms) => *slot = ms,
                Err(e) => p.push((format!("{field}: {e}"), None)),
            }
        }
    }
    let flapping = r.flapping.as_ref().map(|f| Flapping {
        window_ms: durations[3],
        threshold: f.threshold,
    });
    if let Some(f) = flapping {
        if f.threshold < 2 {
            p.push(("flapping.threshold: must be at least 2".into(), None));
        }
        if f.window_ms <= 0 {
            p.push(("flapping.window: must be positive".into(), None));
        }
    }
    let Some(parsed) = parsed.filter(|_| p.is_empty()) else {
        return Err(p);
    };
    let mut all_labels = group_labels.clone();
    all_labels.extend(labels);
    Ok(Rule {
        name,
        expr: r.expr.map(|e| e.value).unwrap_or_default(),
        parsed,
        labels: all_labels,
        kind: if recording {
            RuleKind::Recording
        } else {
            RuleKind::Alerting {
                for_ms: durations[0],
                keep_firing_for_ms: durations[1],
                cooldown_ms: durations[2],
                flapping,
                annotations,
            }
        },
        line: 0,
    })
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Prometheus' `model.ParseDuration`, in ms: units `y w d h m s ms`, largest first, each
/// at most once (`1h30m`, `90s`, `0`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        next_unit = idx + 1;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
groups:
  - name: node
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} down"
"#;

    #[test]
    fn reads_groups_and_rules() {
        let g = parse(GOOD, "node.yml").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].interval_ms, Some(30_000));
        assert_eq!(g[0].rules.len(), 2);
        assert!(!g[0].rules[0].is_alert());
        let RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
            ..
        } = &g[0].rules[1].kind
        else {
            panic!("alert expected");
        };
        assert_eq!((*for_ms, *keep_firing_for_ms), (300_000, 60_000));
        assert_eq!(annotations["summary"], "{{ $labels.instance }} down");
        assert_eq!(g[0].rules[1].line, 8);
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text, "r.yml")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn problems_name_file_line_group_and_rule() {
        let e = errors("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("r.yml:5:15: group \"g\", rule 1, \"A\": could not parse expression"),
            "{e:?}"
        );

        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n      - record: \"bad name\"\n        expr: up\n        for: 1m\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "r.yml:6:9: group \"g\", rule 2, \"bad name\": invalid recording rule name"
            ),
            "{e:?}"
        );
        assert!(
            e[1].contains("invalid field 'for' in recording rule"),
            "{e:?}"
        );

        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - expr: up\n  - name: g\n    rules: []\n",
        );
        assert!(
            e.iter()
                .any(|m| m.contains("one of 'record' or 'alert' must be set")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("r.yml:5:") && m.contains("repeated")),
            "{e:?}"
        );

        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          x: \"{{ $labels.a \"\n        labels:\n          \"bad-label\": x\n",
        );
        assert!(
            e.iter().any(|m| m.contains("template parsing error")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("invalid label name: bad-label")),
            "{e:?}"
        );

        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n",
        );
        assert!(e[0].contains("for: not a valid duration string"), "{e:?}");

        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[5m])[1h:]\n",
        );
        assert!(e[0].contains("instant vector or a scalar"), "{e:?}");
    }

    #[test]
    fn unknown_keys_and_bad_yaml_are_located() {
        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: x\n",
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("r.yml:6:"), "{e:?}");
        assert!(e[0].contains("severity"), "{e:?}");
        let e = errors("groups: [\n");
        assert!(e[0].starts_with("r.yml:"), "{e:?}");
    }

    #[test]
    fn durations_are_prometheus_durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("1y2w3d4h5m6s7ms"),
            Ok(31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6000 + 7)
        );
        for bad in ["", "5", "1m1h", "1h1h", "-1m", "1.5h", "99999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
