//! The promqltest script format: `load`, `clear`, `eval instant|range` with expected
//! series, `eval_fail`/`_ordered`/`_warn`/`_info`, `expect …` lines, and the series
//! notation (`0+10x100`, `_`, `stale`, `Inf`, `NaN`, native histograms as `{{…}}`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use dozor_model::labels::stale_nan;

/// Labels of a series description, by name.
pub(crate) type LabelMap = BTreeMap<String, String>;

/// Prometheus' `model.ParseDuration`: `1h30m`, `5m`, `10s`, `100ms`, `2d`, `1w`, `1y`.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let mut total = 0i64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(format!("bad duration {s:?}"));
        }
        let num: i64 = rest[..n].parse().map_err(|e| format!("{e}"))?;
        rest = &rest[n..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("bad duration unit in {s:?}")),
        };
        total += num * mult;
    }
    Ok(total)
}

/// Reads a Go-quoted string at the start of `s`; returns it and the rest.
pub(crate) fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err("expected a string".into());
    };
    if q == '`' {
        let end = s[1..].find('`').ok_or("unterminated raw string")?;
        return Ok((s[1..1 + end].to_owned(), &s[end + 2..]));
    }
    if q != '"' && q != '\'' {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c == q as u8 {
            out.push_str(&String::from_utf8_lossy(&bytes));
            return Ok((out, &s[i + 1..]));
        }
        if c == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => bytes.push(b'\n'),
                b't' => bytes.push(b'\t'),
                b'r' => bytes.push(b'\r'),
                b'\\' => bytes.push(b'\\'),
                b'"' => bytes.push(b'"'),
                b'\'' => bytes.push(b'\''),
                b'x' if i + 2 < b.len() => {
                    let h = u8::from_str_radix(&s[i + 1..i + 3], 16).map_err(|e| e.to_string())?;
                    bytes.push(h);
                    i += 2;
                }
                b'u' if i + 4 < b.len() => {
                    let h = u32::from_str_radix(&s[i + 1..i + 5], 16).map_err(|e| e.to_string())?;
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(
                        char::from_u32(h)
                            .unwrap_or('\u{fffd}')
                            .encode_utf8(&mut buf)
                            .as_bytes(),
                    );
                    i += 4;
                }
                other => {
                    bytes.push(b'\\');
                    bytes.push(other);
                }
            }
            i += 1;
            continue;
        }
        bytes.push(c);
        i += 1;
    }
    Err("unterminated string".into())
}

pub(crate) fn is_ident_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Parses `name{a="b", …}` (or `{__name__="name", …}`, or `{"name", …}`) at the start of a
/// line; returns the labels and the rest.
pub(crate) fn parse_metric(s: &str) -> Result<(LabelMap, &str), String> {
    let mut labels = LabelMap::new();
    let s = s.trim_start();
    let n = s
        .char_indices()
        .take_while(|&(i, c)| is_ident_char(c, i == 0))
        .count();
    let mut rest = &s[n..];
    if n > 0 {
        labels.insert("__name__".into(), s[..n].to_owned());
    }
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (name, r) = if rest.starts_with('"') {
                let (name, r) = parse_quoted(rest)?;
                let r = r.trim_start();
                if !r.starts_with('=') {
                    // A quoted metric name.
                    labels.insert("__name__".into(), name);
                    rest = r.trim_start_matches(',').trim_start();
                    continue;
                }
                (name, r)
            } else {
                let n = rest
                    .char_indices()
                    .take_while(|&(i, c)| is_ident_char(c, i == 0))
                    .count();
                if n == 0 {
                    return Err(format!("bad label at {rest:?}"));
                }
                (rest[..n].to_owned(), &rest[n..])
            };
            let r = r.trim_start();
            let r = r
                .strip_prefix('=')
                .ok_or_else(|| format!("expected = at {r:?}"))?;
            let (value, r) = parse_quoted(r.trim_start())?;
            if !value.is_empty() {
                labels.insert(name, value);
            }
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
    }
    Ok((labels, rest))
}

/// One value of a series description: a float, "omitted" (`_`), or a native histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SeqValue {
    Float(f64),
    Omitted,
    Histogram,
}

pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    if t.eq_ignore_ascii_case("inf") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if t.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let v = i64::from_str_radix(h, 16).ok()? as f64;
        return Some(if s.starts_with('-') { -v } else { v });
    }
    if !t
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Splits `a+b` / `a-b` into the start and the signed increment.
pub(crate) fn split_increment(s: &str) -> Option<(f64, f64)> {
    let b = s.as_bytes();
    for i in (1..b.len()).rev() {
        if (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E') {
            let start = parse_value(&s[..i])?;
            let inc = parse_number(&s[i..])?;
            return Some((start, inc));
        }
    }
    None
}

pub(crate) fn parse_value(s: &str) -> Option<f64> {
    if s == "stale" {
        return Some(stale_nan());
    }
    parse_number(s)
}

/// Expands one item: `1`, `_`, `_x3`, `stale`, `1x3`, `1+2x3`, `1-2x3`.
pub(crate) fn expand_item(item: &str) -> Result<Vec<SeqValue>, String> {
    if item.starts_with("{{") {
        // A native histogram, possibly `{{…}}x3` or `{{…}}+{{…}}x3`.
        let times = item
            .rsplit_once("}}x")
            .and_then(|(_, n)| n.parse::<usize>().ok());
        return Ok(vec![SeqValue::Histogram; times.map_or(1, |n| n + 1)]);
    }
    if item == "_" {
        return Ok(vec![SeqValue::Omitted]);
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad item {item:?}"))?;
        return Ok(vec![SeqValue::Omitted; n]);
    }
    let repeated = item
        .rsplit_once('x')
        .and_then(|(h, n)| Some((h, n.parse::<u64>().ok()?)))
        .filter(|(h, _)| !h.is_empty() && !h.ends_with(['+', '-']));
    let Some((head, times)) = repeated else {
        return parse_value(item)
            .map(|v| vec![SeqValue::Float(v)])
            .ok_or_else(|| format!("bad item {item:?}"));
    };
    if let Some(v) = parse_value(head) {
        return Ok(vec![SeqValue::Float(v); times as usize + 1]);
    }
    let (mut v, inc) = split_increment(head).ok_or_else(|| format!("bad item {item:?}"))?;
    let mut out = vec![SeqValue::Float(v)];
    for _ in 0..times {
        v += inc;
        out.push(SeqValue::Float(v));
    }
    Ok(out)
}

/// Splits a value list on whitespace, keeping `{{ … }}` histograms whole.
pub(crate) fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn parse_series(line: &str) -> Result<(LabelMap, Vec<SeqValue>), String> {
    let (labels, rest) = parse_metric(line)?;
    let mut vals = Vec::new();
    for t in tokens(rest) {
        vals.extend(expand_item(&t)?);
    }
    Ok((labels, vals))
}

#[derive(Debug, Clone)]
pub(crate) enum ExpectMatch {
    Any,
    Msg(String),
    Regex(regex::Regex),
}

impl ExpectMatch {
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            ExpectMatch::Any => true,
            ExpectMatch::Msg(m) => m == s,
            ExpectMatch::Regex(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Eval {
    pub(crate) line: usize,
    pub(crate) expr: String,
    pub(crate) instant: bool,
    /// Evaluation time of an instant query.
    pub(crate) at: i64,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    pub(crate) fail: bool,
    pub(crate) ordered: bool,
    pub(crate) warn: bool,
    pub(crate) info: bool,
    pub(crate) fail_match: Option<ExpectMatch>,
    pub(crate) warns: Vec<ExpectMatch>,
    pub(crate) infos: Vec<ExpectMatch>,
    pub(crate) no_warn: bool,
    pub(crate) no_info: bool,
    pub(crate) expect_scalar: Option<f64>,
    pub(crate) expect_string: Option<String>,
    pub(crate) range_vector: bool,
    /// Expected series in file order.
    pub(crate) series: Vec<(LabelMap, Vec<SeqValue>)>,
    pub(crate) has_histogram: bool,
    /// Why the case cannot even be read.
    pub(crate) broken: Option<String>,
}

#[derive(Debug)]
pub(crate) enum Cmd {
    Clear,
    Load {
        gap: i64,
        series: Vec<(LabelMap, Vec<SeqValue>)>,
        histograms: bool,
        error: Option<String>,
    },
    Eval(Box<Eval>),
}

/// Strips the ` (line:col)` position Prometheus appends to annotations: our parser gives
/// no positions.
pub(crate) fn strip_position(s: &str) -> String {
    let re =
        regex::Regex::new(r"\s*(\\?\()(\[0-9\]\+|[0-9]+):(\[0-9\]\+|[0-9]+)\\?\)\s*$").unwrap();
    re.replace(s, "").into_owned()
}

pub(crate) fn parse_expect_match(rest: &str) -> Result<ExpectMatch, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(ExpectMatch::Any);
    }
    if let Some(m) = rest.strip_prefix("msg:") {
        return Ok(ExpectMatch::Msg(strip_position(m.trim())));
    }
    if let Some(r) = rest.strip_prefix("regex:") {
        let pattern = strip_position(r.trim());
        return regex::Regex::new(&pattern)
            .map(ExpectMatch::Regex)
            .map_err(|e| e.to_string());
    }
    Err(format!("bad expect {rest:?}"))
}

pub(crate) fn parse_eval(lines: &[String], i: &mut usize) -> Eval {
    let line = &lines[*i];
    let mut ev = Eval {
        line: *i + 1,
        ..Eval::default()
    };
    let instant_re = regex::Regex::new(
        r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
    )
    .unwrap();
    let range_re = regex::Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .unwrap();
    let modifier;
    if let Some(c) = instant_re.captures(line) {
        ev.instant = true;
        modifier = c.get(1).map(|m| m.as_str().to_owned());
        ev.expr = c[3].to_owned();
        match parse_duration(c.get(2).map_or("0", |m| m.as_str())) {
            Ok(t) => {
                ev.at = t;
                ev.start = t;
                ev.end = t;
            }
            Err(e) => ev.broken = Some(e),
        }
    } else if let Some(c) = range_re.captures(line) {
        modifier = c.get(1).map(|m| m.as_str().to_owned());
        ev.expr = c[5].to_owned();
        match (
            parse_duration(&c[2]),
            parse_duration(&c[3]),
            parse_duration(&c[4]),
        ) {
            (Ok(a), Ok(b), Ok(s)) => {
                ev.start = a;
                ev.end = b;
                ev.step = s;
            }
            _ => ev.broken = Some("bad range".into()),
        }
    } else {
        ev.broken = Some(format!("cannot read eval line {line:?}"));
        return ev;
    }
    match modifier.as_deref() {
        Some("fail") => ev.fail = true,
        Some("warn") => ev.warn = true,
        Some("ordered") => ev.ordered = true,
        Some("info") => ev.info = true,
        _ => {}
    }
    let range_vector_re =
        regex::Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
            .unwrap();
    while *i + 1 < lines.len() {
        let l = &lines[*i + 1];
        if l.is_empty() {
            break;
        }
        *i += 1;
        if ev.fail && l.starts_with("expected_fail_message") {
            ev.fail_match = Some(ExpectMatch::Msg(
                l.trim_start_matches("expected_fail_message")
                    .trim()
                    .to_owned(),
            ));
            break;
        }
        if ev.fail && l.starts_with("expected_fail_regexp") {
            match regex::Regex::new(l.trim_start_matches("expected_fail_regexp").trim()) {
                Ok(r) => ev.fail_match = Some(ExpectMatch::Regex(r)),
                Err(e) => ev.broken = Some(e.to_string()),
            }
            break;
        }
        if let Some(c) = range_vector_re.captures(l) {
            match (
                parse_duration(&c[1]),
                parse_duration(&c[2]),
                parse_duration(&c[3]),
            ) {
                (Ok(a), Ok(b), Ok(s)) => {
                    ev.start = a;
                    ev.end = b;
                    ev.step = s;
                    ev.range_vector = true;
                }
                _ => ev.broken = Some("bad expect range vector".into()),
            }
            continue;
        }
        if let Some(s) = l.strip_prefix("expect string") {
            match parse_quoted(s.trim()) {
                Ok((s, _)) => ev.expect_string = Some(s),
                Err(e) => ev.broken = Some(e),
            }
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            let rest = l["expect".len()..].trim();
            let (kind, m) = rest.split_once(' ').unwrap_or((rest, ""));
            let m = match parse_expect_match(m) {
                Ok(m) => m,
                Err(e) => {
                    ev.broken = Some(e);
                    continue;
                }
            };
            match kind {
                "fail" => {
                    ev.fail = true;
                    ev.fail_match = Some(m);
                }
                "warn" => ev.warns.push(m),
                "info" => ev.infos.push(m),
                "no_warn" => ev.no_warn = true,
                "no_info" => ev.no_info = true,
                "ordered" => ev.ordered = true,
                other => ev.broken = Some(format!("unknown expect {other:?}")),
            }
            continue;
        }
        if let Some(f) = parse_number(l.trim()) {
            ev.expect_scalar = Some(f);
            break;
        }
        match parse_series(l) {
            Ok((labels, vals)) => {
                if vals.contains(&SeqValue::Histogram) {
                    ev.has_histogram = true;
                }
                ev.series.push((labels, vals));
            }
            Err(e) => ev.broken = Some(format!("cannot read expected series {l:?}: {e}")),
        }
    }
    ev
}

pub(crate) fn parse_script(text: &str) -> Vec<Cmd> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                String::new()
            } else {
                l.to_owned()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            cmds.push(Cmd::Clear);
        } else if word.starts_with("load") {
            let histograms = word == "load_with_nhcb";
            let gap = l.split_whitespace().nth(1).map(parse_duration);
            let mut series = Vec::new();
            let mut error = None;
            let mut has_hist = histograms;
            while i + 1 < lines.len() && !lines[i + 1].is_empty() {
                i += 1;
                let line = &lines[i];
                if line
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.ends_with("@st"))
                {
                    error = Some("start-timestamp lines".to_owned());
                    continue;
                }
                match parse_series(line) {
                    Ok((labels, vals)) => {
                        if vals.contains(&SeqValue::Histogram) {
                            has_hist = true;
                        }
                        series.push((labels, vals));
                    }
                    Err(e) => error = Some(format!("cannot read series {line:?}: {e}")),
                }
            }
            match gap {
                Some(Ok(gap)) => cmds.push(Cmd::Load {
                    gap,
                    series,
                    histograms: has_hist,
                    error,
                }),
                _ => cmds.push(Cmd::Load {
                    gap: 0,
                    series: Vec::new(),
                    histograms: has_hist,
                    error: Some("bad load interval".into()),
                }),
            }
        } else if word.starts_with("eval") {
            cmds.push(Cmd::Eval(Box::new(parse_eval(&lines, &mut i))));
        }
        i += 1;
    }
    cmds
}
