//! The Prometheus text exposition format (0.0.4) and OpenMetrics text, as pushed to
//! `POST /api/v1/import/prometheus` and as scraped from exporters.
//!
//! Written by hand: the format is small, and a parser we own can promise what this crate
//! promises (no panics, bounded memory, errors with line numbers) and is fuzzed with the
//! rest. `# HELP`/`# TYPE` and other comments are skipped; OpenMetrics exemplars (`# {…}`
//! after the value) are ignored. Timestamps are integer milliseconds in the Prometheus
//! format and float seconds in OpenMetrics; a sample without one gets `default_t`.

use std::collections::HashMap;

use dozor_model::{Label, Labels, Sample};

use crate::{Batch, IngestError, Limits};

/// Which dialect the text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: timestamps in ms.
    Prometheus,
    /// OpenMetrics 1.0 text: timestamps in seconds, `# EOF` at the end.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` names; Prometheus text unless it says OpenMetrics.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        match ct {
            Some(ct) if ct.contains("openmetrics") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
}

/// Parses a whole exposition.
pub fn parse(
    text: &str,
    format: Format,
    default_t: i64,
    limits: &Limits,
) -> Result<Batch, IngestError> {
    let mut by_series: HashMap<Labels, Vec<Sample>> = HashMap::new();
    let mut order: Vec<Labels> = Vec::new();
    let mut samples = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |m: String| IngestError::new(format!("line {}", i + 1), m);
        let (labels, sample) = parse_sample(line, format, default_t).map_err(at)?;
        samples += 1;
        if samples > limits.max_samples {
            return Err(IngestError::new(
                "body",
                format!("more than the limit of {} samples", limits.max_samples),
            ));
        }
        match by_series.get_mut(&labels) {
            Some(v) => v.push(sample),
            None => {
                if order.len() >= limits.max_series {
                    return Err(IngestError::new(
                        "body",
                        format!("more than the limit of {} series", limits.max_series),
                    ));
                }
                order.push(labels.clone());
                by_series.insert(labels, vec![sample]);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|l| {
            let s = by_series.remove(&l)?;
            Some((l, s))
        })
        .collect())
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
        self.i > start
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.s[start..self.i]
    }

    fn token(&mut self) -> &'a str {
        self.take_while(|c| c != ' ' && c != '\t')
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn parse_sample(line: &str, format: Format, default_t: i64) -> Result<(Labels, Sample), String> {
    let mut c = Cursor { s: line, i: 0 };
    let name = {
        let start = c.i;
        if !c.peek().is_some_and(|ch| is_name_char(ch, true)) {
            return Err(format!(
                "expected a metric name, found {:?}",
                c.peek().unwrap_or(' ')
            ));
        }
        c.take_while(|ch| is_name_char(ch, false));
        &line[start..c.i]
    };
    let mut labels = vec![Label {
        name: dozor_model::labels::METRIC_NAME.to_owned(),
        value: name.to_owned(),
    }];
    let mut spaced = c.skip_ws();
    if c.peek() == Some('{') {
        c.bump();
        parse_labels(&mut c, &mut labels)?;
        spaced = c.skip_ws();
    }
    if !spaced {
        return Err("expected a space before the value".into());
    }
    let value_text = c.token();
    let v = parse_float(value_text).ok_or_else(|| format!("invalid value {value_text:?}"))?;
    c.skip_ws();
    let t = if c.at_end() || c.peek() == Some('#') {
        default_t
    } else {
        let ts = c.token();
        match format {
            Format::Prometheus => ts
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts:?} (integer milliseconds)"))?,
            Format::OpenMetrics => {
                let secs = parse_float(ts)
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| format!("invalid timestamp {ts:?} (seconds)"))?;
                (secs * 1000.0).round() as i64
            }
        }
    };
    c.skip_ws();
    if !c.at_end() && c.peek() != Some('#') {
        return Err(format!(
            "unexpected text after the timestamp: {:?}",
            &line[c.i..]
        ));
    }
    let labels = Labels::new(labels).map_err(|e| e.to_string())?;
    Ok((labels, Sample { t, v }))
}

fn parse_labels(c: &mut Cursor<'_>, out: &mut Vec<Label>) -> Result<(), String> {
    loop {
        c.skip_ws();
        match c.peek() {
            Some('}') => {
                c.bump();
                return Ok(());
            }
            None => return Err("unterminated label set".into()),
            _ => {}
        }
        let name = c.take_while(|ch| is_name_char(ch, false) && ch != ':');
        if name.is_empty() {
            return Err(format!(
                "expected a label name, found {:?}",
                c.peek().unwrap_or(' ')
            ));
        }
        c.skip_ws();
        if c.bump() != Some('=') {
            return Err(format!("expected '=' after label {name:?}"));
        }
        c.skip_ws();
        if c.bump() != Some('"') {
            return Err(format!("expected '\"' to open the value of label {name:?}"));
        }
        let mut value = String::new();
        loop {
            match c.bump() {
                None => return Err(format!("unterminated value of label {name:?}")),
                Some('"') => break,
                Some('\\') => match c.bump() {
                    Some('n') => value.push('\n'),
                    Some('"') => value.push('"'),
                    Some('\\') => value.push('\\'),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => return Err(format!("unterminated value of label {name:?}")),
                },
                Some(ch) => value.push(ch),
            }
        }
        if out.len() > Labels::MAX_LABELS {
            return Err(format!("more than {} labels", Labels::MAX_LABELS));
        }
        out.push(Label {
            name: name.to_owned(),
            value,
        });
        c.skip_ws();
        match c.bump() {
            Some(',') => continue,
            Some('}') => return Ok(()),
            _ => return Err(format!("expected ',' or '}}' after label {name:?}")),
        }
    }
}

/// Parses Prometheus' float syntax: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1.23e+06
node_cpu_seconds_total{cpu="0",mode="user"} 4567.5 1700000000000
node_load1 0.52
weird{path="C:\\dir",msg="say \"hi\"\n",} -Inf
"#;

    fn parse_ok(text: &str, f: Format) -> Batch {
        parse(text, f, 42, &Limits::default()).unwrap()
    }

    #[test]
    fn parses_node_exporter_style_text() {
        let b = parse_ok(NODE, Format::Prometheus);
        assert_eq!(b.len(), 4);
        assert_eq!(
            b[0].0.to_string(),
            "node_cpu_seconds_total{cpu=\"0\", mode=\"idle\"}"
        );
        assert_eq!(b[0].1, [Sample { t: 42, v: 1.23e6 }]);
        assert_eq!(
            b[1].1,
            [Sample {
                t: 1_700_000_000_000,
                v: 4567.5
            }]
        );
        assert_eq!(b[3].0.get("path"), Some("C:\\dir"));
        assert_eq!(b[3].0.get("msg"), Some("say \"hi\"\n"));
        assert_eq!(b[3].1[0].v, f64::NEG_INFINITY);
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_and_exemplars_ignored() {
        let text = "# TYPE a counter\na_total 1 1700000000.5 # {trace_id=\"x\"} 1\n# EOF\n";
        let b = parse_ok(text, Format::OpenMetrics);
        assert_eq!(
            b[0].1,
            [Sample {
                t: 1_700_000_000_500,
                v: 1.0
            }]
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (text, needle) in [
            ("ok 1\nbad{a=\"1\" 2\n", "line 2"),
            ("x{a=1} 2\n", "line 1"),
            ("x 1 notatime\n", "timestamp"),
            ("x one\n", "invalid value"),
            ("x{1a=\"v\"} 1\n", "label"),
            ("x{a=\"v\",a=\"w\"} 1\n", "duplicate"),
            ("{a=\"v\"} 1\n", "metric name"),
            ("x\n", "space"),
        ] {
            let err = parse(text, Format::Prometheus, 0, &Limits::default()).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn limits_hold() {
        let text = "a 1\nb 1\nc 1\n";
        let limits = Limits {
            max_series: 2,
            ..Limits::default()
        };
        assert!(parse(text, Format::Prometheus, 0, &limits).is_err());
        let limits = Limits {
            max_samples: 2,
            ..Limits::default()
        };
        assert!(parse(text, Format::Prometheus, 0, &limits).is_err());
    }

    #[test]
    fn repeated_series_collect_their_samples() {
        let b = parse_ok("a 1 1000\na 2 2000\n", Format::Prometheus);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1.len(), 2);
    }
}
