//! The parsing stage every log record passes before PII masking and storage: per-stream
//! rules that parse the message (JSON, logfmt, or a regex with named captures) into fields,
//! take the message, time and level from parsed fields, and one normalisation of levels for
//! all records.
//!
//! Levels: whatever a sender calls it — a `level` stream label, a `level`, `severity`,
//! `lvl`, `loglevel` or `log.level` field, a parsed key, or (for unparsed lines) a level
//! word at the start of the message (`ERROR`, `[WARN]`, `E1201`-style prefixes are not
//! guessed) — becomes the stream label `level` with one of Loki's detected levels:
//! `critical`, `error`, `warn`, `info`, `debug`, `trace`. Syslog's names (`emerg`, `alert`,
//! `crit`, `err`, `warning`, `notice`), Java's and Python's (`SEVERE`, `FINE`, `FATAL`), the
//! single letters of glog/klog (`E`, `W`, `I`), syslog numbers 0–7 and the Russian words
//! seen in 1C and KKT driver logs (`ОШИБКА`, `ПРЕДУПРЕЖДЕНИЕ`, `ИНФО`) all map. Rules
//! and alerts can then rely on `{level="error"}` whatever shipped the line.
//!
//! ```yaml
//! logs:
//!   pipeline:
//!     - match: '{service="kkt-driver"}'
//!       parse: regex
//!       regex: '^(?P<ts>\S+) \[(?P<level>\w+)\] (?P<msg>.*)$'
//!       message: msg
//!       time: ts
//!     - match: '{service=~"api|worker"}'
//!       parse: logfmt
//! ```

use dozor_model::{Label, Labels, LogRecord, Matcher};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One rule as configured.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stream selector (`{service="shop"}`); records of matching streams get this rule.
    #[serde(rename = "match")]
    pub selector: String,
    /// How to parse the message: `json`, `logfmt` or `regex` (absent: not parsed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse: Option<String>,
    /// The regex of `parse: regex`; its named captures become fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// A parsed field whose value becomes the message (the field is then removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A parsed field holding the time (RFC 3339 or Unix s/ms/µs/ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// A parsed field holding the level (default: `level`, `severity`, `lvl`, `loglevel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A compiled pipeline.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    matchers: Vec<Matcher>,
    parser: Option<Parser>,
    message: Option<String>,
    time: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Clone)]
enum Parser {
    Json,
    Logfmt,
    Regex(Regex),
}

/// Fields a level is read from, in order.
const LEVEL_FIELDS: [&str; 5] = ["level", "severity", "lvl", "loglevel", "log.level"];

impl Pipeline {
    /// Compiles the configured rules; an error names the rule and what is wrong.
    /// `selector` parses a `match` selector (the binary passes LogQL's, so the pipeline, the
    /// tiers and queries read selectors alike).
    pub fn compile(
        rules: &[RuleConfig],
        selector: &dyn Fn(&str) -> Result<Vec<Matcher>, String>,
    ) -> Result<Pipeline, String> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let at = |m: String| format!("logs.pipeline[{i}]: {m}");
            let matchers = selector(&r.selector).map_err(|e| at(format!("match: {e}")))?;
            let parser = match (r.parse.as_deref(), &r.regex) {
                (None, None) => None,
                (Some("json"), None) => Some(Parser::Json),
                (Some("logfmt"), None) => Some(Parser::Logfmt),
                (Some("regex"), Some(re)) => {
                    let re = regex::RegexBuilder::new(re)
                        .size_limit(1 << 20)
                        .nest_limit(32)
                        .build()
                        .map_err(|e| at(format!("regex: {e}")))?;
                    if re.capture_names().flatten().next().is_none() {
                        return Err(at("regex: no named capture such as (?P<level>\\w+)".into()));
                    }
                    Some(Parser::Regex(re))
                }
                (Some("regex"), None) => return Err(at("parse: regex needs a regex".into())),
                (Some("json" | "logfmt"), Some(_)) | (None, Some(_)) => {
                    return Err(at("regex is only for parse: regex".into()));
                }
                (Some(other), _) => {
                    return Err(at(format!("parse: {other:?} is not json, logfmt or regex")));
                }
            };
            out.push(Rule {
                matchers,
                parser,
                message: r.message.clone(),
                time: r.time.clone(),
                level: r.level.clone(),
            });
        }
        Ok(Pipeline { rules: out })
    }

    /// Applies the first rule whose selector matches, then normalises the level.
    pub fn apply(&self, r: &mut LogRecord) {
        let rule = self.rules.iter().find(|rule| {
            rule.matchers
                .iter()
                .all(|m| m.matches(r.stream.get(&m.name).unwrap_or("")))
        });
        let mut parsed = false;
        if let Some(rule) = rule {
            parsed = apply_rule(rule, r);
        }
        normalize(r, rule.and_then(|rule| rule.level.as_deref()), !parsed);
    }
}

/// Parses the message by the rule; whether it parsed.
fn apply_rule(rule: &Rule, r: &mut LogRecord) -> bool {
    let Some(parser) = &rule.parser else {
        return false;
    };
    let pairs: Vec<(String, String)> = match parser {
        Parser::Json => match serde_json::from_str::<Value>(&r.message) {
            Ok(Value::Object(obj)) => {
                let mut out = Vec::new();
                crate::ndjson::flatten("", obj, &mut out);
                out
            }
            _ => return false,
        },
        Parser::Logfmt => {
            let pairs = dozor_model::logfmt::parse(&r.message);
            // A line with no `=` at all is not logfmt.
            if !pairs.iter().any(|(_, v)| !v.is_empty()) {
                return false;
            }
            pairs
        }
        Parser::Regex(re) => match re.captures(&r.message) {
            Some(c) => re
                .capture_names()
                .flatten()
                .filter_map(|n| c.name(n).map(|m| (n.to_owned(), m.as_str().to_owned())))
                .collect(),
            None => return false,
        },
    };
    let mut fields = std::mem::take(&mut r.fields);
    let mut message = None;
    for (k, v) in pairs {
        if rule.message.as_deref() == Some(k.as_str()) {
            message = Some(v);
            continue;
        }
        if rule.time.as_deref() == Some(k.as_str())
            && let Some(t) = parse_time(&v)
        {
            r.time_ns = t;
            continue;
        }
        // What the sender sent as fields wins over what parsing found.
        if !fields.iter().any(|(n, _)| *n == k) {
            fields.push((k, v));
        }
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|b, a| a.0 == b.0);
    r.fields = fields;
    if let Some(m) = message {
        r.message = m;
    }
    true
}

fn parse_time(v: &str) -> Option<i64> {
    let value = match v.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => match v.parse::<f64>() {
            Ok(f) => serde_json::Number::from_f64(f).map(Value::Number)?,
            Err(_) => Value::String(v.to_owned()),
        },
    };
    crate::ndjson::parse_time(&value).ok()
}

/// Sets the stream's `level` label to the normalised level found in the stream, the
/// fields (`field` first when configured), or, for unparsed lines, the message's start.
fn normalize(r: &mut LogRecord, field: Option<&str>, look_in_message: bool) {
    let in_stream = r.stream.get("level");
    let found = in_stream.or_else(|| {
        field
            .into_iter()
            .chain(LEVEL_FIELDS)
            .find_map(|f| r.field(f))
    });
    let level = match found {
        Some(raw) => normalize_level(raw),
        None if look_in_message => level_in_message(&r.message),
        None => None,
    };
    let Some(level) = level else { return };
    if in_stream == Some(level) {
        return;
    }
    let mut labels: Vec<Label> = r
        .stream
        .iter()
        .filter(|l| l.name != "level")
        .cloned()
        .collect();
    labels.push(Label {
        name: "level".into(),
        value: level.into(),
    });
    if let Ok(stream) = Labels::new(labels) {
        r.stream = stream;
        // A `level` field now lives in the stream; other spellings (`severity`) stay.
        r.fields.retain(|(n, _)| n != "level");
    }
}

/// One of `critical`, `error`, `warn`, `info`, `debug`, `trace` for a level's many
/// spellings; `None` when it is none of them.
pub fn normalize_level(raw: &str) -> Option<&'static str> {
    let s = raw
        .trim()
        .trim_matches(|c: char| c == '[' || c == ']' || c == ':');
    // Most levels arrive spelled one of the usual ways already: no lower-casing copy then.
    let lower = if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    Some(match lower.as_ref() {
        "emerg"
        | "emergency"
        | "panic"
        | "alert"
        | "crit"
        | "critical"
        | "fatal"
        | "severe"
        | "f"
        | "c"
        | "0"
        | "1"
        | "2"
        | "критическая"
        | "критично"
        | "авария" => "critical",
        "err" | "error" | "eror" | "e" | "3" | "ошибка" => "error",
        "warn" | "warning" | "w" | "4" | "предупреждение" | "внимание" => {
            "warn"
        }
        "notice"
        | "info"
        | "information"
        | "informational"
        | "i"
        | "n"
        | "5"
        | "6"
        | "инфо"
        | "информация" => "info",
        "debug" | "dbug" | "dbg" | "d" | "fine" | "config" | "7" | "отладка" => "debug",
        "trace" | "finer" | "finest" | "t" | "трассировка" => "trace",
        _ => return None,
    })
}

/// A level word at the start of a line (`ERROR …`, `[WARN] …`, `2026-12-01 10:00:00 INFO
/// …`): upper-case words only among the first five, so prose (`an error occurred`) is not
/// taken for a level.
fn level_in_message(message: &str) -> Option<&'static str> {
    message
        .split(|c: char| c.is_whitespace() || c == '|')
        .filter(|w| !w.is_empty())
        .take(5)
        .find_map(|w| {
            let w =
                w.trim_matches(|c: char| c == '[' || c == ']' || c == ':' || c == '<' || c == '>');
            let upper = w.chars().count() >= 4 && w.chars().all(|c| c.is_uppercase());
            if upper { normalize_level(w) } else { None }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(stream: &[(&str, &str)], message: &str) -> LogRecord {
        LogRecord::new(
            1,
            Labels::from_pairs(stream.iter().copied()).unwrap(),
            message,
        )
    }

    /// LogQL's selector parser, as the binary passes it.
    fn selector(s: &str) -> Result<Vec<Matcher>, String> {
        match dozor_logs::logql::parse(s).map_err(|e| e.to_string())? {
            dozor_logs::logql::Expr::Log(l) if l.pipeline.is_empty() => Ok(l.selector),
            _ => Err(format!("{s:?} is not a stream selector")),
        }
    }

    fn pipeline(yaml: &str) -> Pipeline {
        let rules: Vec<RuleConfig> = serde_saphyr::from_str(yaml).unwrap();
        Pipeline::compile(&rules, &selector).unwrap()
    }

    #[test]
    fn levels_normalise_from_labels_fields_and_messages() {
        let p = Pipeline::default();
        for (stream, fields, message, want) in [
            (
                vec![("service", "a"), ("level", "ERR")],
                vec![],
                "x",
                Some("error"),
            ),
            (
                vec![("service", "a"), ("level", "crit")],
                vec![],
                "x",
                Some("critical"),
            ),
            (
                vec![("service", "a")],
                vec![("severity", "Warning")],
                "x",
                Some("warn"),
            ),
            (
                vec![("service", "a")],
                vec![],
                "2026-12-01 10:00:00 ERROR payment failed",
                Some("error"),
            ),
            (
                vec![("service", "a")],
                vec![],
                "[WARN] disk 91%",
                Some("warn"),
            ),
            (
                vec![("service", "a")],
                vec![],
                "ОШИБКА ФН: нет связи",
                Some("error"),
            ),
            (
                vec![("service", "a")],
                vec![],
                "an error occurred in checkout",
                None,
            ),
            (vec![("service", "a")], vec![], "E payment", None),
            (
                vec![("service", "a"), ("level", "weird")],
                vec![],
                "ERROR x",
                None,
            ),
        ] {
            let mut r = rec(&stream, message);
            r.fields = fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            p.apply(&mut r);
            let got = r.stream.get("level");
            match want {
                Some(w) => assert_eq!(got, Some(w), "{stream:?} {message}"),
                None => assert!(
                    got.is_none() || got == Some("weird"),
                    "{stream:?} {message}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn rules_parse_and_take_message_time_and_level() {
        let p = pipeline(
            r#"
- match: '{service="kkt-driver"}'
  parse: regex
  regex: '^(?P<ts>\S+) \[(?P<lvl>\w+)\] (?P<msg>.*)$'
  message: msg
  time: ts
  level: lvl
- match: '{service=~"api|worker"}'
  parse: logfmt
- match: '{service="shop"}'
  parse: json
  message: message
"#,
        );
        let mut r = rec(
            &[("service", "kkt-driver")],
            "2026-12-01T10:00:00Z [ОШИБКА] ФН 9999078900001234: exchange failed",
        );
        p.apply(&mut r);
        assert_eq!(r.message, "ФН 9999078900001234: exchange failed");
        assert_eq!(r.time_ns, 1_796_119_200_000_000_000);
        assert_eq!(r.stream.get("level"), Some("error"));
        assert_eq!(r.field("lvl"), Some("ОШИБКА"));
        assert_eq!(r.field("ts"), None, "the time field is consumed");

        let mut r = rec(
            &[("service", "api")],
            "level=warning msg=slow took=1.2s user=7",
        );
        r.fields = vec![("user".into(), "from-sender".into())];
        p.apply(&mut r);
        assert_eq!(r.stream.get("level"), Some("warn"));
        assert_eq!(r.field("took"), Some("1.2s"));
        assert_eq!(r.field("user"), Some("from-sender"), "sent fields win");

        let mut r = rec(
            &[("service", "shop")],
            r#"{"message":"paid","level":"info","order":{"id":5}}"#,
        );
        p.apply(&mut r);
        assert_eq!(
            (r.message.as_str(), r.field("order.id")),
            ("paid", Some("5"))
        );
        assert_eq!(r.stream.get("level"), Some("info"));

        // A line that does not parse stays as it was (and its level may still be guessed).
        let mut r = rec(&[("service", "shop")], "ERROR not json");
        p.apply(&mut r);
        assert_eq!(r.message, "ERROR not json");
        assert_eq!(r.stream.get("level"), Some("error"));
    }

    #[test]
    fn bad_rules_are_named() {
        for (yaml, needle) in [
            ("- match: 'service=shop'", "match: "),
            (
                "- {match: '{a=\"b\"}', parse: xml}",
                "not json, logfmt or regex",
            ),
            ("- {match: '{a=\"b\"}', parse: regex}", "needs a regex"),
            ("- {match: '{a=\"b\"}', parse: regex, regex: '('}", "regex"),
            (
                "- {match: '{a=\"b\"}', parse: regex, regex: '\\d+'}",
                "named capture",
            ),
            (
                "- {match: '{a=\"b\"}', parse: json, regex: 'x'}",
                "only for parse: regex",
            ),
            ("- {match: '{a=b}'}", "match: "),
            ("- {match: '{a=~\"(\"}'}", "invalid regex"),
        ] {
            let rules: Vec<RuleConfig> = serde_saphyr::from_str(yaml).unwrap();
            let e = Pipeline::compile(&rules, &selector).unwrap_err();
            assert!(
                e.starts_with("logs.pipeline[0]: ") && e.contains(needle),
                "{yaml}: {e}"
            );
        }
    }
}
