//! NDJSON log ingest (`POST /api/v1/logs/ingest`): one JSON object per line, the
//! conventions of VictoriaLogs' JSON lines API.
//!
//! - The message is `_msg`, else `message`, else `msg`; a line without one is an error.
//! - The time is `_time`, else `@timestamp`, `timestamp`, `time` or `ts`: an RFC 3339
//!   string (any fraction, down to nanoseconds) or a number of seconds, milliseconds,
//!   microseconds or nanoseconds since the epoch, told apart by magnitude; absent: the time
//!   of the request.
//! - The stream is `_stream`, an object of labels (`{"service": "shop", "level": "error"}`);
//!   without it, the fields named by [`NdjsonOptions::stream_fields`] (the request's
//!   `_stream_fields=service,host`; by default `service`, `host`, `level`) form the stream.
//!   Stream labels are few-valued by design: user ids, order numbers and the like belong in
//!   fields.
//! - Every other member is a field; nested objects flatten to dotted names (`user.id`),
//!   arrays and other values keep their JSON text, strings their value.
//!
//! A body decodes whole or not at all: an error names the line (`line 12: …`).

use dozor_model::{Label, Labels, LogRecord};
use serde_json::{Map, Value};

use crate::IngestError;

/// Most lines in one request.
pub const MAX_LINES: usize = 100_000;
/// Longest line, bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How lines become records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdjsonOptions {
    /// Fields that form the stream when a line has no `_stream`.
    pub stream_fields: Vec<String>,
    /// The time of records without one, ns since the epoch.
    pub default_time_ns: i64,
}

impl NdjsonOptions {
    /// The default stream fields (`service`, `host`, `level`) and `now_ns` for records
    /// without a time.
    pub fn new(now_ns: i64) -> NdjsonOptions {
        NdjsonOptions {
            stream_fields: ["service", "host", "level"].map(str::to_owned).to_vec(),
            default_time_ns: now_ns,
        }
    }
}

const MESSAGE_KEYS: [&str; 3] = ["_msg", "message", "msg"];
const TIME_KEYS: [&str; 5] = ["_time", "@timestamp", "timestamp", "time", "ts"];

/// Decodes an NDJSON body (empty lines are skipped).
pub fn parse(body: &[u8], opts: &NdjsonOptions) -> Result<Vec<LogRecord>, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| IngestError::new("body", format!("not UTF-8 ({e})")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| IngestError::new(format!("line {}", i + 1), m);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.len() == MAX_LINES {
            return Err(at(format!("more than {MAX_LINES} lines in one request")));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(at(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let obj = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err(at("not a JSON object".into())),
            Err(e) => return Err(at(format!("invalid JSON: {e}"))),
        };
        out.push(record(obj, opts).map_err(at)?);
    }
    Ok(out)
}

/// One JSON object as a record, by the conventions above (also what `_bulk` sources become).
pub fn record(mut obj: Map<String, Value>, opts: &NdjsonOptions) -> Result<LogRecord, String> {
    let message = MESSAGE_KEYS
        .iter()
        .find_map(|k| obj.remove(*k))
        .ok_or("no message (_msg, message or msg)")?;
    let message = match message {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let time_ns = match TIME_KEYS.iter().find_map(|k| obj.remove(*k)) {
        Some(v) => parse_time(&v)?,
        None => opts.default_time_ns,
    };
    let mut labels: Vec<Label> = Vec::new();
    match obj.remove("_stream") {
        Some(Value::Object(stream)) => {
            for (name, v) in stream {
                labels.push(Label {
                    name,
                    value: scalar(v),
                });
            }
        }
        Some(_) => return Err("_stream must be an object of labels".into()),
        None => {
            for name in &opts.stream_fields {
                if let Some(v) = obj.remove(name) {
                    labels.push(Label {
                        name: name.clone(),
                        value: scalar(v),
                    });
                }
            }
        }
    }
    if labels.iter().all(|l| l.value.is_empty()) {
        labels = vec![Label {
            name: "service".into(),
            value: "unknown".into(),
        }];
    }
    let stream = Labels::new(labels).map_err(|e| format!("stream: {e}"))?;
    Ok(with_fields(time_ns, stream, message, obj))
}

/// A record whose fields are the members left in `obj`, flattened, sorted and unique.
pub(crate) fn with_fields(
    time_ns: i64,
    stream: Labels,
    message: String,
    obj: Map<String, Value>,
) -> LogRecord {
    let mut fields = Vec::new();
    flatten("", obj, &mut fields);
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|b, a| a.0 == b.0);
    LogRecord {
        time_ns,
        stream,
        message,
        fields,
    }
}

fn scalar(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn flatten(prefix: &str, obj: Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in obj {
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&name, inner, out),
            Value::Null => {}
            other => out.push((name, scalar(other))),
        }
    }
}

/// An RFC 3339 string or a number of s/ms/µs/ns since the epoch, as ns.
pub(crate) fn parse_time(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            // Seconds until 5138 (1e11), then ms (1e14), µs (1e17), ns.
            let scale = |a: f64| match a {
                a if a < 1e11 => 1_000_000_000,
                a if a < 1e14 => 1_000_000,
                a if a < 1e17 => 1_000,
                _ => 1,
            };
            let out_of_range = || format!("time {n} is out of range");
            if let Some(i) = n.as_i64() {
                // Integers exactly: an f64 would round nanoseconds.
                return i
                    .checked_mul(scale(i.unsigned_abs() as f64))
                    .ok_or_else(out_of_range);
            }
            let x = n.as_f64().ok_or("the time is not a number")?;
            let ns = x * scale(x.abs()) as f64;
            if !ns.is_finite() || ns.abs() >= 9.2e18 {
                return Err(out_of_range());
            }
            Ok(ns.round() as i64)
        }
        Value::String(s) => parse_rfc3339_ns(s),
        _ => Err("the time must be a string or a number".into()),
    }
}

/// RFC 3339 with `Z` or a `±HH:MM` offset, to ns. humantime reads the date, time and
/// fraction; the offset is applied here (humantime knows only UTC).
pub(crate) fn parse_rfc3339_ns(s: &str) -> Result<i64, String> {
    let bad = |e: String| format!("time {s:?} is not RFC 3339 ({e})");
    let (local, offset_s) = match s
        .len()
        .checked_sub(6)
        .and_then(|i| s.get(i..).map(|z| (i, z)))
    {
        Some((i, z))
            if z.is_ascii()
                && matches!(z.as_bytes()[0], b'+' | b'-')
                && z.as_bytes()[3] == b':' =>
        {
            let h: i64 = z[1..3]
                .parse()
                .map_err(|_| bad("bad offset hours".into()))?;
            let m: i64 = z[4..6]
                .parse()
                .map_err(|_| bad("bad offset minutes".into()))?;
            if h > 23 || m > 59 {
                return Err(bad("offset out of range".into()));
            }
            let sign = if z.starts_with('-') { -1 } else { 1 };
            (&s[..i], sign * (h * 3600 + m * 60))
        }
        _ => (s, 0),
    };
    let t = humantime::parse_rfc3339_weak(local).map_err(|e| bad(e.to_string()))?;
    let ns = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n),
    };
    ns.ok()
        .and_then(|ns| ns.checked_sub(offset_s.checked_mul(1_000_000_000)?))
        .ok_or_else(|| bad("out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_records_by_the_conventions() {
        let body = br#"{"_msg":"payment failed","_time":"2026-12-01T10:00:00.123456789Z","service":"shop","level":"error","user":{"id":"u1","tier":3},"amount":10500}

{"message":"ok","timestamp":1796119200123,"_stream":{"service":"crm"},"tags":["a","b"]}
{"msg":"no time","host":"h1"}"#;
        let got = parse(body, &NdjsonOptions::new(42)).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].message, "payment failed");
        assert_eq!(got[0].time_ns, 1_796_119_200_123_456_789);
        assert_eq!(
            got[0].stream,
            Labels::from_pairs([("level", "error"), ("service", "shop")]).unwrap()
        );
        assert_eq!(
            got[0].fields,
            [("amount", "10500"), ("user.id", "u1"), ("user.tier", "3")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(got[1].time_ns, 1_796_119_200_123_000_000, "milliseconds");
        assert_eq!(got[1].stream.get("service"), Some("crm"));
        assert_eq!(got[1].field("tags"), Some(r#"["a","b"]"#));
        assert_eq!(
            (got[2].time_ns, got[2].stream.get("host")),
            (42, Some("h1"))
        );
    }

    #[test]
    fn times_in_every_unit_agree() {
        let t = |v: &str| parse_time(&serde_json::from_str(v).unwrap()).unwrap();
        let ns = 1_796_119_200_000_000_000;
        for v in [
            "1796119200",
            "1796119200000",
            "1796119200000000",
            "1796119200000000000",
            "\"2026-12-01T10:00:00Z\"",
            "\"2026-12-01T13:00:00+03:00\"",
        ] {
            assert_eq!(t(v), ns, "{v}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let opts = NdjsonOptions::new(0);
        let err = |b: &[u8]| parse(b, &opts).unwrap_err().to_string();
        assert!(err(b"{\"_msg\":\"a\"}\n[1]\n").starts_with("line 2: not a JSON object"));
        assert!(err(b"{\"_msg\":\"a\"}\n{\"_msg\":\n").starts_with("line 2: invalid JSON"));
        assert!(err(b"{\"x\":1}").contains("no message"));
        assert!(err(br#"{"_msg":"a","_time":"yesterday"}"#).contains("RFC 3339"));
        assert!(err(br#"{"_msg":"a","_stream":{"1bad":"x"}}"#).contains("stream"));
        assert!(err(br#"{"_msg":"a","_stream":"shop"}"#).contains("_stream"));
        assert!(err(b"\xff").starts_with("body"));
    }
}
