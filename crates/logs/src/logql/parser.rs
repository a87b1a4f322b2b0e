//! LogQL parser: recursive descent over [`lexer`](super::lexer) tokens, operator precedence
//! climbing for binary expressions (Prometheus' precedence: `^` binds tightest and is right
//! associative; then `* / %`, `+ -`, comparisons, `and unless`, `or`).
//!
//! Written by hand: the one Rust LogQL crate on crates.io is an unmaintained fragment; the
//! grammar follows Loki's `syntax/expr.y`.

use std::time::Duration;

use dozor_model::{MatchOp, Matcher};
use regex::Regex;

use super::ParseError;
use super::ast::*;
use super::lexer::{Tok, lex};
use super::template::Template;

/// Longest query text accepted.
pub const MAX_QUERY_BYTES: usize = 64 << 10;
/// Deepest nesting of parentheses and calls.
const MAX_DEPTH: usize = 64;
/// Most operators (binary, unary, label-filter `and`/`or`) in one query: each is a level of
/// the tree evaluation and drop recurse over, so a long chain must be refused up front.
const MAX_OPERATORS: usize = 512;

/// Parses a LogQL query.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_QUERY_BYTES {
        return Err(ParseError::at(
            0,
            format!("query longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
        operators: 0,
    };
    let e = p.expr(0)?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(ParseError::at(
            t.1,
            format!("unexpected {} after the end of the query", describe(&t.0)),
        ));
    }
    Ok(match e {
        Node::Log(l) => {
            if l.pipeline.iter().any(
                |s| matches!(s, Stage::Filter(LabelFilter::String(m)) if m.name == UNWRAP_MARK),
            ) {
                return Err(ParseError::at(
                    0,
                    "| unwrap belongs inside a range aggregation such as sum_over_time(... | unwrap x [5m])",
                ));
            }
            Expr::Log(l)
        }
        Node::Metric(m) => Expr::Metric(m),
    })
}

/// A parsed operand: a log expression becomes a metric one only inside a range aggregation.
enum Node {
    Log(LogExpr),
    Metric(MetricExpr),
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
    operators: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Dur(d) => format!("duration {d:?}"),
        Tok::Bytes(b) => format!("byte size {b}"),
        other => format!("{other:?}"),
    }
}

const VECTOR_OPS_WITH_PARAM: [VectorOp; 2] = [VectorOp::Topk, VectorOp::Bottomk];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.0)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.end)
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::at(self.offset(), msg))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(&t) {
            Ok(())
        } else {
            self.err(format!("expected {what}, found {}", self.found()))
        }
    }

    /// What the next token is, for an error.
    fn found(&self) -> String {
        self.peek()
            .map(describe)
            .unwrap_or_else(|| "the end of the query".into())
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == name)
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(format!("expected {what}, found {}", self.found())),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(format!(
                "expected {what} (a quoted string), found {}",
                self.found()
            )),
        }
    }

    fn duration(&mut self, what: &str) -> Result<Duration, ParseError> {
        match self.peek() {
            Some(Tok::Dur(d)) => {
                let d = *d;
                self.pos += 1;
                Ok(d)
            }
            _ => self.err(format!("expected {what} (a duration such as 5m)")),
        }
    }

    fn operator(&mut self) -> Result<(), ParseError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return self.err(format!("query has more than {MAX_OPERATORS} operators"));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("query nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- binary expressions

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek()? {
            Tok::Ident(s) if s == "or" => (BinOp::Or, 1),
            Tok::Ident(s) if s == "and" => (BinOp::And, 2),
            Tok::Ident(s) if s == "unless" => (BinOp::Unless, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::Neq => (BinOp::Ne, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Gte => (BinOp::Ge, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Lte => (BinOp::Le, 3),
            Tok::Add => (BinOp::Add, 4),
            Tok::Sub => (BinOp::Sub, 4),
            Tok::Mul => (BinOp::Mul, 5),
            Tok::Div => (BinOp::Div, 5),
            Tok::Mod => (BinOp::Mod, 5),
            Tok::Pow => (BinOp::Pow, 6),
            _ => return None,
        })
    }

    fn expr(&mut self, min_prec: u8) -> Result<Node, ParseError> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binop() {
            if prec < min_prec.max(1) {
                break;
            }
            let at = self.offset();
            self.operator()?;
            self.pos += 1;
            let return_bool = op.comparison().is_some() && self.is_ident("bool") && {
                self.pos += 1;
                true
            };
            let matching = self.matching()?;
            // `^` is right associative; the rest left.
            let next = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next)?;
            let (Node::Metric(l), Node::Metric(r)) = (lhs, rhs) else {
                return Err(ParseError::at(
                    at,
                    "a binary operator needs metric queries on both sides (a log query is not a number: wrap it in count_over_time(...[5m]))",
                ));
            };
            if op.is_set() && (is_scalar(&l) || is_scalar(&r)) {
                return Err(ParseError::at(
                    at,
                    "and, or and unless need vectors on both sides",
                ));
            }
            lhs = Node::Metric(MetricExpr::Binary(Box::new(Binary {
                op,
                lhs: l,
                rhs: r,
                return_bool,
                matching,
            })));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn matching(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.is_ident("on") {
            false
        } else if self.is_ident("ignoring") {
            true
        } else {
            return Ok(None);
        };
        self.pos += 1;
        let labels = self.label_list()?;
        if self.is_ident("group_left") || self.is_ident("group_right") {
            return self.err("group_left and group_right are not supported");
        }
        Ok(Some(Grouping { without, labels }))
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if matches!(self.peek(), Some(Tok::Sub | Tok::Add)) {
            self.operator()?;
        }
        if self.eat(&Tok::Sub) {
            let at = self.offset();
            return match self.unary()? {
                Node::Metric(MetricExpr::Literal(n)) => Ok(Node::Metric(MetricExpr::Literal(-n))),
                Node::Metric(m) => Ok(Node::Metric(MetricExpr::Binary(Box::new(Binary {
                    op: BinOp::Mul,
                    lhs: m,
                    rhs: MetricExpr::Literal(-1.0),
                    return_bool: false,
                    matching: None,
                })))),
                Node::Log(_) => Err(ParseError::at(at, "cannot negate a log query")),
            };
        }
        if self.eat(&Tok::Add) {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Node::Metric(MetricExpr::Literal(n)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.expr(0)?;
                self.expect(Tok::RParen, "`)`")?;
                // `({…} |= "x")[5m]` is only valid inside a range aggregation.
                Ok(inner)
            }
            Some(Tok::LBrace) => Ok(Node::Log(self.log_expr()?)),
            Some(Tok::Ident(name)) => {
                if let Some(op) = RangeOp::from_name(&name) {
                    self.pos += 1;
                    return Ok(Node::Metric(MetricExpr::Range(self.range_agg(op, &name)?)));
                }
                if let Some(op) = VectorOp::from_name(&name) {
                    self.pos += 1;
                    return Ok(Node::Metric(MetricExpr::Vector(
                        self.vector_agg(op, &name)?,
                    )));
                }
                match name.as_str() {
                    "vector" => {
                        self.pos += 1;
                        self.expect(Tok::LParen, "`(` after vector")?;
                        let n = self.number("vector's value")?;
                        self.expect(Tok::RParen, "`)`")?;
                        Ok(Node::Metric(MetricExpr::VectorLiteral(n)))
                    }
                    "label_replace" => {
                        self.pos += 1;
                        Ok(Node::Metric(MetricExpr::LabelReplace(Box::new(
                            self.label_replace()?,
                        ))))
                    }
                    _ => self.err(format!("unknown function or keyword {name:?}")),
                }
            }
            Some(t) => self.err(format!("unexpected {}", describe(&t))),
            None => self.err("empty query"),
        }
    }

    fn number(&mut self, what: &str) -> Result<f64, ParseError> {
        let neg = self.eat(&Tok::Sub);
        match self.peek() {
            Some(Tok::Num(n)) => {
                let n = if neg { -*n } else { *n };
                self.pos += 1;
                Ok(n)
            }
            _ => self.err(format!("expected {what} (a number)")),
        }
    }

    // ---------------------------------------------------------------- aggregations

    fn range_agg(&mut self, op: RangeOp, name: &str) -> Result<RangeAgg, ParseError> {
        self.enter()?;
        self.expect(Tok::LParen, &format!("`(` after {name}"))?;
        let param = if op == RangeOp::QuantileOverTime {
            let q = self.number("the quantile")?;
            self.expect(Tok::Comma, "`,` after the quantile")?;
            Some(q)
        } else {
            None
        };
        let at = self.offset();
        // `{…} | stages [5m]`, `({…} | stages)[5m]`, or `{…}[5m] | stages`.
        let parenthesised = self.eat(&Tok::LParen);
        let mut log = self.log_expr()?;
        if parenthesised {
            self.expect(Tok::RParen, "`)`")?;
        }
        self.expect(Tok::LBracket, "a range such as [5m]")?;
        let range = self.duration("the range")?;
        self.expect(Tok::RBracket, "`]`")?;
        if range.is_zero() {
            return Err(ParseError::at(at, "the range must be positive"));
        }
        if !parenthesised {
            let more = self.pipeline()?;
            log.pipeline.extend(more);
        }
        let offset = if self.is_ident("offset") {
            self.pos += 1;
            self.duration("the offset")?
        } else {
            Duration::ZERO
        };
        self.expect(Tok::RParen, &format!("`)` closing {name}"))?;
        let grouping = self.grouping()?;
        // Move a trailing `| unwrap` (and its filters) out of the pipeline.
        let unwrap = match log.pipeline.iter().position(
            |s| matches!(s, Stage::Filter(LabelFilter::String(m)) if m.name == UNWRAP_MARK),
        ) {
            Some(i) => {
                let Stage::Filter(LabelFilter::String(m)) = log.pipeline.remove(i) else {
                    unreachable!("BUG: position() found an unwrap marker");
                };
                let (kind, label) = m.value.split_once(':').unwrap_or(("", &m.value));
                let kind = match kind {
                    "duration" => NumKind::Duration,
                    "bytes" => NumKind::Bytes,
                    _ => NumKind::Plain,
                };
                let mut filters = Vec::new();
                while log.pipeline.len() > i {
                    match log.pipeline.remove(i) {
                        Stage::Filter(f) => filters.push(f),
                        _ => {
                            return Err(ParseError::at(
                                at,
                                "only label filters may follow | unwrap",
                            ));
                        }
                    }
                }
                Some(Unwrap {
                    label: label.to_owned(),
                    kind,
                    filters,
                })
            }
            None => None,
        };
        if op.needs_unwrap() && unwrap.is_none() {
            return Err(ParseError::at(
                at,
                format!("{name} needs an unwrapped value: add | unwrap <label>"),
            ));
        }
        if op.refuses_unwrap() && unwrap.is_some() {
            return Err(ParseError::at(
                at,
                format!("{name} counts lines; it takes no | unwrap"),
            ));
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(ParseError::at(
                at,
                format!(
                    "grouping after {name}(...) needs | unwrap; group with sum by (...) instead"
                ),
            ));
        }
        self.depth -= 1;
        Ok(RangeAgg {
            op,
            param,
            log,
            unwrap,
            range,
            offset,
            grouping,
        })
    }

    fn vector_agg(&mut self, op: VectorOp, name: &str) -> Result<VectorAgg, ParseError> {
        self.enter()?;
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen, &format!("`(` after {name}"))?;
        let param = if VECTOR_OPS_WITH_PARAM.contains(&op) {
            let k = self.number(&format!("{name}'s k"))?;
            if k < 1.0 || k.fract() != 0.0 {
                return self.err(format!("{name}'s k must be a positive integer"));
            }
            self.expect(Tok::Comma, "`,` after k")?;
            Some(k)
        } else {
            None
        };
        let at = self.offset();
        let inner = match self.expr(0)? {
            Node::Metric(m) => m,
            Node::Log(_) => {
                return Err(ParseError::at(
                    at,
                    format!(
                        "{name} aggregates numbers; wrap the log query in count_over_time(...[5m]) or rate(...[5m])"
                    ),
                ));
            }
        };
        self.expect(Tok::RParen, &format!("`)` closing {name}"))?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if matches!(op, VectorOp::Sort | VectorOp::SortDesc) && grouping.is_some() {
            return self.err(format!("{name} takes no grouping"));
        }
        self.depth -= 1;
        Ok(VectorAgg {
            op,
            param,
            grouping,
            inner: Box::new(inner),
        })
    }

    fn label_replace(&mut self) -> Result<LabelReplace, ParseError> {
        self.expect(Tok::LParen, "`(` after label_replace")?;
        let at = self.offset();
        let inner = match self.expr(0)? {
            Node::Metric(m) => m,
            Node::Log(_) => return Err(ParseError::at(at, "label_replace needs a metric query")),
        };
        let mut args = Vec::new();
        for what in ["destination label", "replacement", "source label", "regex"] {
            self.expect(Tok::Comma, "`,`")?;
            args.push(self.string(what)?);
        }
        self.expect(Tok::RParen, "`)` closing label_replace")?;
        let regex = anchored(&args[3]).map_err(|m| ParseError::at(at, m))?;
        let [dst, replacement, src, _] = <[String; 4]>::try_from(args)
            .map_err(|_| ParseError::at(at, "label_replace takes five arguments"))?;
        Ok(LabelReplace {
            inner,
            dst,
            replacement,
            src,
            regex,
        })
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.is_ident("by") {
            false
        } else if self.is_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.pos += 1;
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, "`(` and label names")?;
        let mut labels = Vec::new();
        while !self.eat(&Tok::RParen) {
            labels.push(self.ident("a label name")?);
            if !self.eat(&Tok::Comma) {
                self.expect(Tok::RParen, "`,` or `)`")?;
                break;
            }
        }
        Ok(labels)
    }

    // ---------------------------------------------------------------- log expressions

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let selector = self.selector()?;
        let pipeline = self.pipeline()?;
        Ok(LogExpr { selector, pipeline })
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let at = self.offset();
        self.expect(Tok::LBrace, "a stream selector such as {service=\"shop\"}")?;
        let mut out = Vec::new();
        while !self.eat(&Tok::RBrace) {
            out.push(self.matcher()?);
            if !self.eat(&Tok::Comma) {
                self.expect(Tok::RBrace, "`,` or `}`")?;
                break;
            }
        }
        if out.iter().all(Matcher::matches_empty) {
            return Err(ParseError::at(
                at,
                "the stream selector needs at least one matcher that does not match the empty value, such as {service=\"shop\"} or {service=~\".+\"}",
            ));
        }
        Ok(out)
    }

    fn matcher(&mut self) -> Result<Matcher, ParseError> {
        let name = self.ident("a label name")?;
        let op = match self.next() {
            Some(Tok::Eq) => MatchOp::Equal,
            Some(Tok::Neq) => MatchOp::NotEqual,
            Some(Tok::Re) => MatchOp::Regex,
            Some(Tok::Nre) => MatchOp::NotRegex,
            _ => {
                self.pos -= 1;
                return self.err(format!("expected =, !=, =~ or !~ after {name}"));
            }
        };
        let at = self.offset();
        let value = self.string("the label value")?;
        Matcher::new(op, name, value).map_err(|e| ParseError::at(at, e.to_string()))
    }

    fn pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::PipeExact) => out.push(self.line_filter(LineOp::Contains)?),
                Some(Tok::Neq) => out.push(self.line_filter(LineOp::NotContains)?),
                Some(Tok::PipeMatch) => out.push(self.line_filter(LineOp::Matches)?),
                Some(Tok::Nre) => out.push(self.line_filter(LineOp::NotMatches)?),
                Some(Tok::Pipe) => {
                    self.pos += 1;
                    out.push(self.stage()?);
                }
                _ => return Ok(out),
            }
        }
    }

    fn line_filter(&mut self, op: LineOp) -> Result<Stage, ParseError> {
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            let at = self.offset();
            let s = self.string("the line filter's text")?;
            values.push(match op {
                LineOp::Contains | LineOp::NotContains => LineValue::Text(s),
                LineOp::Matches | LineOp::NotMatches => {
                    LineValue::Regex(unanchored(&s).map_err(|m| ParseError::at(at, m))?)
                }
            });
            // `|= "a" or "b"`; an `or` followed by anything else is the binary operator.
            if self.is_ident("or") && matches!(self.peek_at(1), Some(Tok::Str(_))) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Stage::Line(LineFilter { op, values }))
    }

    fn stage(&mut self) -> Result<Stage, ParseError> {
        let at = self.offset();
        let Some(Tok::Ident(name)) = self.peek().cloned() else {
            return self.err("expected a stage after `|`: json, logfmt, regexp, pattern, line_format, label_format, unwrap, drop, keep or a label filter");
        };
        // A label filter starts with `name op`; a stage keyword is followed by anything else.
        let is_filter = matches!(self.peek_at(1), Some(t) if is_comparison(t));
        if is_filter {
            return Ok(Stage::Filter(self.label_filter()?));
        }
        self.pos += 1;
        Ok(match name.as_str() {
            "json" => Stage::Json(
                self.extractions(|s, at| json_path(s).map_err(|m| ParseError::at(at, m)))?,
            ),
            "logfmt" => {
                // Loki's `--strict` and `--keep-empty` flags: accepted, lenient parsing kept.
                while self.eat(&Tok::Sub) {
                    self.eat(&Tok::Sub);
                    self.ident("a logfmt flag")?;
                }
                Stage::Logfmt(self.extractions(|s, _| Ok(s.to_owned()))?)
            }
            "regexp" => {
                let at = self.offset();
                let s = self.string("the regexp")?;
                let re = unanchored(&s).map_err(|m| ParseError::at(at, m))?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(ParseError::at(
                        at,
                        "regexp needs at least one named capture such as (?P<status>\\d+)",
                    ));
                }
                Stage::Regexp(re)
            }
            "pattern" => {
                let at = self.offset();
                let s = self.string("the pattern")?;
                Stage::Pattern(pattern(&s).map_err(|m| ParseError::at(at, m))?)
            }
            "unpack" => Stage::Unpack,
            "decolorize" => Stage::Decolorize,
            "line_format" => {
                let at = self.offset();
                let s = self.string("the line template")?;
                Stage::LineFormat(
                    Template::parse(&s).map_err(|e| ParseError::at(at + e.offset, e.message))?,
                )
            }
            "label_format" => {
                let mut out = Vec::new();
                loop {
                    let dst = self.ident("a label name")?;
                    self.expect(Tok::Eq, "`=`")?;
                    let src = match self.next() {
                        Some(Tok::Ident(src)) => LabelSource::Label(src),
                        Some(Tok::Str(t)) => LabelSource::Template(
                            Template::parse(&t).map_err(|e| ParseError::at(at, e.message))?,
                        ),
                        _ => {
                            self.pos -= 1;
                            return self.err("expected a label name or a template string");
                        }
                    };
                    out.push((dst, src));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                Stage::LabelFormat(out)
            }
            "drop" | "keep" => {
                let mut refs = Vec::new();
                loop {
                    let name = self.ident("a label name")?;
                    let when =
                        if matches!(self.peek(), Some(Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre)) {
                            self.pos -= 1;
                            Some(self.matcher()?)
                        } else {
                            None
                        };
                    refs.push(LabelRef { name, when });
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                if name == "drop" {
                    Stage::Drop(refs)
                } else {
                    Stage::Keep(refs)
                }
            }
            "unwrap" => {
                let (kind, label) = if matches!(self.peek_at(1), Some(Tok::LParen)) {
                    let conv = self.ident("duration or bytes")?;
                    if conv != "duration" && conv != "duration_seconds" && conv != "bytes" {
                        return Err(ParseError::at(
                            at,
                            format!("unknown unwrap conversion {conv:?}: duration or bytes"),
                        ));
                    }
                    self.expect(Tok::LParen, "`(`")?;
                    let l = self.ident("the label to unwrap")?;
                    self.expect(Tok::RParen, "`)`")?;
                    (if conv == "bytes" { "bytes" } else { "duration" }, l)
                } else {
                    ("", self.ident("the label to unwrap")?)
                };
                // Carried to range_agg as a marker; a log query with it is refused there.
                Stage::Filter(LabelFilter::String(Matcher::equal(
                    UNWRAP_MARK,
                    format!("{kind}:{label}"),
                )))
            }
            other => return Err(ParseError::at(at, format!("unknown stage {other:?}"))),
        })
    }

    /// `label="source", other` after `json` / `logfmt`.
    fn extractions<T>(
        &mut self,
        conv: impl Fn(&str, usize) -> Result<T, ParseError>,
    ) -> Result<Vec<(String, T)>, ParseError> {
        let mut out = Vec::new();
        while let Some(Tok::Ident(name)) = self.peek().cloned() {
            // A keyword of what follows the stage (`| json [5m]` never, but `) by (`) ends it.
            if matches!(self.peek_at(1), Some(Tok::LParen)) || KEYWORDS.contains(&name.as_str()) {
                break;
            }
            self.pos += 1;
            let at = self.offset();
            let source = if self.eat(&Tok::Eq) {
                let at = self.offset();
                let s = self.string("the source path")?;
                conv(&s, at)?
            } else {
                conv(&name, at)?
            };
            out.push((name, source));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(out)
    }

    fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") && !matches!(self.peek_at(1), Some(Tok::Str(_))) {
            self.operator()?;
            self.pos += 1;
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_atom()?;
        loop {
            // `and`, `,` or a space (`| a="x" b>1`) all mean and.
            if self.is_ident("and") || self.peek() == Some(&Tok::Comma) {
                if !matches!(self.peek_at(1), Some(Tok::Ident(_) | Tok::LParen)) {
                    break;
                }
                self.pos += 1;
            } else if !(matches!(self.peek(), Some(Tok::Ident(n)) if !KEYWORDS.contains(&n.as_str()))
                && matches!(self.peek_at(1), Some(t) if is_comparison(t)))
            {
                break;
            }
            self.operator()?;
            let rhs = self.label_filter_atom()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_atom(&mut self) -> Result<LabelFilter, ParseError> {
        self.enter()?;
        if self.eat(&Tok::LParen) {
            let f = self.label_filter()?;
            self.expect(Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(f);
        }
        let name = self.ident("a label name")?;
        let at = self.offset();
        let f = match self.next() {
            Some(t @ (Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre))
                if matches!(self.peek(), Some(Tok::Str(_))) =>
            {
                let op = match t {
                    Tok::Eq => MatchOp::Equal,
                    Tok::Neq => MatchOp::NotEqual,
                    Tok::Re => MatchOp::Regex,
                    _ => MatchOp::NotRegex,
                };
                let v = self.string("the value")?;
                LabelFilter::String(
                    Matcher::new(op, name, v).map_err(|e| ParseError::at(at, e.to_string()))?,
                )
            }
            Some(
                t @ (Tok::Eq | Tok::EqEq | Tok::Neq | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte),
            ) => {
                let op = match t {
                    Tok::Eq | Tok::EqEq => CmpOp::Eq,
                    Tok::Neq => CmpOp::Ne,
                    Tok::Gt => CmpOp::Gt,
                    Tok::Gte => CmpOp::Ge,
                    Tok::Lt => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let neg = self.eat(&Tok::Sub);
                let sign = if neg { -1.0 } else { 1.0 };
                let (value, kind) = match self.next() {
                    Some(Tok::Num(n)) => (sign * n, NumKind::Plain),
                    Some(Tok::Dur(d)) => (sign * d.as_secs_f64(), NumKind::Duration),
                    Some(Tok::Bytes(b)) => (sign * b, NumKind::Bytes),
                    _ => {
                        return Err(ParseError::at(
                            at,
                            format!(
                                "expected a number, duration or byte size to compare {name} with"
                            ),
                        ));
                    }
                };
                LabelFilter::Number {
                    name,
                    op,
                    value,
                    kind,
                }
            }
            _ => {
                return Err(ParseError::at(
                    at,
                    format!("expected a comparison after {name}"),
                ));
            }
        };
        self.depth -= 1;
        Ok(f)
    }
}

/// The pseudo-label that carries `| unwrap` from the pipeline parser to the range
/// aggregation (not a valid label name, so no real label collides).
pub(crate) const UNWRAP_MARK: &str = "unwrap()";

/// Words that end a label filter rather than start another predicate.
const KEYWORDS: [&str; 6] = ["or", "and", "unless", "offset", "by", "without"];

fn is_comparison(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq
            | Tok::Neq
            | Tok::Re
            | Tok::Nre
            | Tok::EqEq
            | Tok::Gt
            | Tok::Gte
            | Tok::Lt
            | Tok::Lte
    )
}

fn is_scalar(e: &MetricExpr) -> bool {
    matches!(e, MetricExpr::Literal(_))
}

fn build(re: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        // The default (250) lets `a****…` nest deep enough to overflow a thread's stack
        // in regex-syntax's recursion; no real filter nests past a few levels.
        .nest_limit(32)
        .build()
        .map_err(|e| format!("invalid regex {re:?}: {e}"))
}

fn unanchored(re: &str) -> Result<Regex, String> {
    build(re)
}

fn anchored(re: &str) -> Result<Regex, String> {
    build(&format!("^(?s:{re})$"))
}

/// `a.b[0]["c d"]` as path steps.
fn json_path(s: &str) -> Result<JsonPath, String> {
    let mut steps = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("json path {s:?}: unclosed ["))?;
            let inner = &r[..close];
            if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                steps.push(PathStep::Key(q.to_owned()));
            } else {
                steps.push(PathStep::Index(inner.parse().map_err(|_| {
                    format!("json path {s:?}: [{inner}] is not an index")
                })?));
            }
            rest = &r[close + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("json path {s:?}: empty member name"));
            }
            steps.push(PathStep::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
    }
    if steps.is_empty() {
        return Err("empty json path".into());
    }
    Ok(JsonPath(steps))
}

/// `<ip> - - [<_>] "<method> <path> <_>" <status>` as literals and captures.
pub(crate) fn pattern(s: &str) -> Result<Pattern, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').map(|c| open + c);
        let name = close.map(|c| &rest[open + 1..c]);
        match (close, name) {
            (Some(c), Some(n)) if n == "_" || dozor_model::labels::is_valid_label_name(n) => {
                let lit = &rest[..open];
                if !lit.is_empty() {
                    parts.push(PatternPart::Literal(lit.to_owned()));
                } else if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                    return Err(format!(
                        "pattern {s:?}: two captures must be separated by text"
                    ));
                }
                parts.push(PatternPart::Capture((n != "_").then(|| n.to_owned())));
                rest = &rest[c + 1..];
            }
            _ => {
                // A literal `<`.
                parts.push(PatternPart::Literal(rest[..=open].to_owned()));
                rest = &rest[open + 1..];
            }
        }
    }
    if !rest.is_empty() {
        parts.push(PatternPart::Literal(rest.to_owned()));
    }
    // Merge adjacent literals (from literal `<`).
    let mut merged: Vec<PatternPart> = Vec::new();
    for p in parts {
        match (merged.last_mut(), p) {
            (Some(PatternPart::Literal(a)), PatternPart::Literal(b)) => a.push_str(&b),
            (_, p) => merged.push(p),
        }
    }
    if !merged
        .iter()
        .any(|p| matches!(p, PatternPart::Capture(Some(_))))
    {
        return Err(format!(
            "pattern {s:?} has no named capture such as <status>"
        ));
    }
    Ok(Pattern { parts: merged })
}
