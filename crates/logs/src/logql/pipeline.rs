//! Running a pipeline over one line: filters drop it, parsers add labels, formatters
//! rewrite it.
//!
//! The labels of a line are its stream's labels, its record's fields (structured metadata)
//! and what parsers extracted, all alike, as in Loki: fields appear in a log query's stream
//! labels and in metric series unless an aggregation groups them away (`sum by (service)`
//! is evaluated without ever building the per-field series). A label a parser extracts
//! under a stream label's name is renamed `<name>_extracted`, as in Loki. A line that
//! `| json` cannot parse keeps flowing with `__error__="JSONParserErr"`; metric queries
//! leave such lines out.

use memchr::memmem;
use serde_json::Value;

use super::ast::*;
use super::template::{Context, Template};
use crate::RecordRef;

/// Where a label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A stream label.
    Stream,
    /// A record field.
    Field,
    /// Extracted or written by a stage.
    Extracted,
}

/// The labels of a line while it passes the pipeline, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct LabelSet(Vec<(String, String, Origin)>);

impl LabelSet {
    /// The stream labels and fields of `r`.
    pub fn of(r: RecordRef<'_>) -> LabelSet {
        let mut v: Vec<(String, String, Origin)> = r
            .stream
            .iter()
            .map(|l| (l.name.clone(), l.value.clone(), Origin::Stream))
            .collect();
        for (k, val) in r.fields {
            if !v.iter().any(|(n, _, _)| n == k) {
                v.push((k.clone(), val.clone(), Origin::Field));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        LabelSet(v)
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _, _)| n.as_str().cmp(name))
    }

    /// The value of `name` (`""` when absent).
    pub fn get(&self, name: &str) -> &str {
        self.find(name).map(|i| self.0[i].1.as_str()).unwrap_or("")
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` as a stage's output.
    pub fn set(&mut self, name: &str, value: String) {
        match self.find(name) {
            Ok(i) => {
                self.0[i].1 = value;
                self.0[i].2 = Origin::Extracted;
            }
            Err(i) => self
                .0
                .insert(i, (name.to_owned(), value, Origin::Extracted)),
        }
    }

    /// Sets what a parser extracted: renamed `<name>_extracted` when a stream label has
    /// the name.
    fn extract(&mut self, name: &str, value: String) {
        match self.find(name) {
            Ok(i) if self.0[i].2 == Origin::Stream => {
                let renamed = format!("{name}_extracted");
                self.set(&renamed, value);
            }
            _ => self.set(name, value),
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.0.remove(i);
        }
    }

    /// The output labels (those with a value), sorted.
    pub fn visible(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(_, v, _)| !v.is_empty())
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect()
    }

    /// Every label with a value and where it came from.
    pub fn with_origin(&self) -> impl Iterator<Item = (&str, &str, Origin)> {
        self.0
            .iter()
            .filter(|(_, v, _)| !v.is_empty())
            .map(|(n, v, o)| (n.as_str(), v.as_str(), *o))
    }

    /// Every label with a value, fields included.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(_, v, _)| !v.is_empty())
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
    }

    /// Whether a parser failed on this line.
    pub fn has_error(&self) -> bool {
        self.has("__error__")
    }
}

/// A line in the pipeline.
#[derive(Debug, Clone)]
pub struct Line {
    /// ns since the epoch.
    pub time_ns: i64,
    /// The (possibly rewritten) line.
    pub line: String,
    /// Its labels.
    pub labels: LabelSet,
}

struct Ctx<'a>(&'a Line);

impl Context for Ctx<'_> {
    fn label(&self, name: &str) -> &str {
        self.0.labels.get(name)
    }
    fn line(&self) -> &str {
        &self.0.line
    }
    fn time_ns(&self) -> i64 {
        self.0.time_ns
    }
}

/// A compiled pipeline.
#[derive(Debug)]
pub struct Pipeline<'a> {
    stages: &'a [Stage],
    finders: Vec<Vec<memmem::Finder<'static>>>,
}

impl<'a> Pipeline<'a> {
    /// Prepares `stages` (substring finders built once).
    pub fn new(stages: &'a [Stage]) -> Pipeline<'a> {
        let finders = stages
            .iter()
            .map(|s| match s {
                Stage::Line(f) => f
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        LineValue::Text(t) => Some(memmem::Finder::new(t.as_bytes()).into_owned()),
                        LineValue::Regex(_) => None,
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Pipeline { stages, finders }
    }

    /// Whether any stage reads or writes labels beyond the stream (so a record's fields must
    /// be loaded).
    pub fn is_line_only(&self) -> bool {
        self.stages.iter().all(|s| matches!(s, Stage::Line(_)))
    }

    /// Runs `r` through the pipeline: `None` when a filter drops it.
    pub fn run(&self, r: RecordRef<'_>) -> Option<Line> {
        // Fast path: leading line filters run on the stored message before anything is
        // copied.
        let mut first = 0;
        for (i, s) in self.stages.iter().enumerate() {
            let Stage::Line(f) = s else { break };
            if !self.line_filter(i, f, r.message) {
                return None;
            }
            first = i + 1;
        }
        let mut line = Line {
            time_ns: r.time_ns,
            line: r.message.to_owned(),
            labels: LabelSet::of(r),
        };
        for (i, stage) in self.stages.iter().enumerate().skip(first) {
            if !self.stage(i, stage, &mut line) {
                return None;
            }
        }
        Some(line)
    }

    fn line_filter(&self, i: usize, f: &LineFilter, text: &str) -> bool {
        let mut finders = self.finders[i].iter();
        let any = f.values.iter().any(|v| match v {
            LineValue::Text(_) => finders
                .next()
                .is_some_and(|f| f.find(text.as_bytes()).is_some()),
            LineValue::Regex(re) => re.is_match(text),
        });
        match f.op {
            LineOp::Contains | LineOp::Matches => any,
            LineOp::NotContains | LineOp::NotMatches => !any,
        }
    }

    fn stage(&self, i: usize, stage: &Stage, l: &mut Line) -> bool {
        match stage {
            Stage::Line(f) => return self.line_filter(i, f, &l.line),
            Stage::Json(paths) => json(l, paths),
            Stage::Logfmt(keys) => {
                let pairs = dozor_model::logfmt::parse(&l.line);
                if keys.is_empty() {
                    for (k, v) in pairs {
                        l.labels.extract(&sanitize(&k), v);
                    }
                } else {
                    for (label, key) in keys {
                        if let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == key) {
                            l.labels.extract(label, v.clone());
                        }
                    }
                }
            }
            Stage::Regexp(re) => {
                if let Some(c) = re.captures(&l.line) {
                    let found: Vec<(String, String)> = re
                        .capture_names()
                        .flatten()
                        .filter_map(|n| c.name(n).map(|m| (n.to_owned(), m.as_str().to_owned())))
                        .collect();
                    for (n, v) in found {
                        l.labels.extract(&n, v);
                    }
                }
            }
            Stage::Pattern(p) => {
                if let Some(found) = pattern_match(p, &l.line) {
                    for (n, v) in found {
                        l.labels.extract(&n, v);
                    }
                }
            }
            Stage::Unpack => match serde_json::from_str::<Value>(&l.line) {
                Ok(Value::Object(m)) => {
                    let mut entry = None;
                    for (k, v) in m {
                        if let Value::String(s) = v {
                            if k == "_entry" {
                                entry = Some(s);
                            } else {
                                l.labels.extract(&sanitize(&k), s);
                            }
                        }
                    }
                    if let Some(e) = entry {
                        l.line = e;
                    }
                }
                _ => l.labels.set("__error__", "JSONParserErr".into()),
            },
            Stage::Filter(f) => return label_filter(f, &l.labels),
            Stage::LineFormat(t) => {
                let mut out = String::new();
                t.render(&Ctx(l), &mut out);
                l.line = out;
            }
            Stage::LabelFormat(items) => {
                // Every template sees the labels as they were before the stage.
                let values: Vec<(String, Option<String>, String)> = items
                    .iter()
                    .map(|(dst, src)| match src {
                        LabelSource::Label(s) => {
                            (dst.clone(), Some(s.clone()), l.labels.get(s).to_owned())
                        }
                        LabelSource::Template(t) => (dst.clone(), None, render(t, l)),
                    })
                    .collect();
                for (dst, renamed_from, v) in values {
                    if let Some(src) = renamed_from.filter(|s| *s != dst) {
                        l.labels.remove(&src);
                    }
                    l.labels.set(&dst, v);
                }
            }
            Stage::Drop(refs) => {
                for r in refs {
                    if r.when
                        .as_ref()
                        .is_none_or(|m| m.matches(l.labels.get(&r.name)))
                    {
                        l.labels.remove(&r.name);
                    }
                }
            }
            Stage::Keep(refs) => {
                let keep: Vec<(String, String)> = refs
                    .iter()
                    .filter(|r| l.labels.has(&r.name))
                    .filter(|r| {
                        r.when
                            .as_ref()
                            .is_none_or(|m| m.matches(l.labels.get(&r.name)))
                    })
                    .map(|r| (r.name.clone(), l.labels.get(&r.name).to_owned()))
                    .collect();
                l.labels = LabelSet::default();
                for (n, v) in keep {
                    l.labels.set(&n, v);
                }
            }
            Stage::Decolorize => l.line = decolorize(&l.line),
        }
        true
    }
}

fn render(t: &Template, l: &Line) -> String {
    let mut out = String::new();
    t.render(&Ctx(l), &mut out);
    out
}

/// Whether `labels` pass `f`. A numeric comparison on a missing or unreadable value fails.
pub fn label_filter(f: &LabelFilter, labels: &LabelSet) -> bool {
    match f {
        LabelFilter::And(a, b) => label_filter(a, labels) && label_filter(b, labels),
        LabelFilter::Or(a, b) => label_filter(a, labels) || label_filter(b, labels),
        LabelFilter::String(m) => m.matches(labels.get(&m.name)),
        LabelFilter::Number {
            name,
            op,
            value,
            kind,
        } => number(labels.get(name), *kind).is_some_and(|v| op.test(v, *value)),
    }
}

/// Reads a label value as a number of the given kind: a plain number, a duration (in
/// seconds; a bare number counts as seconds) or a byte size (a bare number counts as bytes).
pub fn number(s: &str, kind: NumKind) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    match kind {
        NumKind::Plain => None,
        NumKind::Duration => super::lexer::parse_duration(s).map(|d| d.as_secs_f64()),
        NumKind::Bytes => super::lexer::parse_bytes(s),
    }
}

/// A label name from a JSON or logfmt key: characters outside `[A-Za-z0-9_]` become `_`,
/// and a leading digit gets a `_` in front.
pub fn sanitize(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

fn json(l: &mut Line, paths: &[(String, JsonPath)]) {
    let v: Value = match serde_json::from_str(&l.line) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            l.labels.set("__error__", "JSONParserErr".into());
            return;
        }
    };
    if paths.is_empty() {
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        for (k, v) in out {
            l.labels.extract(&k, v);
        }
        return;
    }
    for (label, path) in paths {
        let mut cur = Some(&v);
        for step in &path.0 {
            cur = match (cur, step) {
                (Some(Value::Object(m)), PathStep::Key(k)) => m.get(k),
                (Some(Value::Array(a)), PathStep::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        if let Some(v) = cur {
            l.labels.extract(label, scalar(v));
        }
    }
}

/// The text of a JSON value as a label: strings as they are, other scalars and nested
/// values as JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every scalar member of nested objects as `a_b_c` (arrays are skipped, as in Loki).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let Value::Object(m) = v else { return };
    for (k, v) in m {
        let name = if prefix.is_empty() {
            sanitize(k)
        } else {
            format!("{prefix}_{}", sanitize(k))
        };
        match v {
            Value::Object(_) => flatten(&name, v, out),
            Value::Array(_) => {}
            other => out.push((name, scalar(other))),
        }
    }
}

/// Matches a pattern: each capture takes the text up to the next literal.
fn pattern_match(p: &Pattern, line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = line;
    let mut parts = p.parts.iter().peekable();
    while let Some(part) = parts.next() {
        match part {
            PatternPart::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
            PatternPart::Capture(name) => {
                let value = match parts.peek() {
                    Some(PatternPart::Literal(next)) => {
                        let end = rest.find(next.as_str())?;
                        let (v, r) = rest.split_at(end);
                        rest = r;
                        v
                    }
                    _ => std::mem::take(&mut rest),
                };
                if let Some(n) = name {
                    out.push((n.clone(), value.to_owned()));
                }
            }
        }
    }
    Some(out)
}

/// `line` without ANSI SGR colour sequences (`ESC [ … m`).
fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        match tail.strip_prefix('[') {
            Some(seq) => {
                let end = seq.find(|c: char| !(c.is_ascii_digit() || c == ';'));
                match end {
                    Some(e) if seq[e..].starts_with('m') => rest = &seq[e + 1..],
                    _ => rest = tail,
                }
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_colours() {
        let p = crate::logql::parser::pattern(
            r#"<ip> - - [<_>] "<method> <path> <_>" <status> <size>"#,
        )
        .unwrap();
        let got = pattern_match(
            &p,
            r#"10.0.0.1 - - [01/Dec/2026:10:00:00 +0000] "GET /cart HTTP/1.1" 502 17"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("ip".into(), "10.0.0.1".into()),
                ("method".into(), "GET".into()),
                ("path".into(), "/cart".into()),
                ("status".into(), "502".into()),
                ("size".into(), "17".into()),
            ]
        );
        assert!(pattern_match(&p, "garbage").is_none());
        assert_eq!(
            decolorize("\x1b[31mred\x1b[0m plain \x1b[1;32mgreen\x1b[m \x1bx"),
            "red plain green \x1bx".replace('\x1b', "")
        );
    }

    #[test]
    fn numbers_of_each_kind() {
        assert_eq!(number("1.5s", NumKind::Duration), Some(1.5));
        assert_eq!(number("250ms", NumKind::Duration), Some(0.25));
        assert_eq!(number("2", NumKind::Duration), Some(2.0));
        assert_eq!(number("1KiB", NumKind::Bytes), Some(1024.0));
        assert_eq!(number("1KiB", NumKind::Plain), None);
        assert_eq!(number("", NumKind::Plain), None);
        assert_eq!(number("NaN", NumKind::Plain), None);
        assert_eq!(sanitize("user.id"), "user_id");
        assert_eq!(sanitize("1st"), "_1st");
    }
}
