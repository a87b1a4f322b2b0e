//! Loki push (`POST /loki/api/v1/push`), as Promtail, Grafana Alloy, Vector and the Docker
//! driver send it: a snappy-compressed protobuf `PushRequest`, or its JSON form.
//!
//! ```json
//! {"streams": [{"stream": {"job": "shop"}, "values": [["1796119200000000000", "payment failed", {"trace_id": "ab12"}]]}]}
//! ```
//!
//! Each stream's labels become the record's stream, each entry a record: nanosecond time,
//! line, and structured metadata as fields. The protobuf is read by hand with field numbers
//! of Loki's `pkg/push/push.proto` (`PushRequest.streams = 1`; `StreamAdapter.labels = 1`, a
//! label set in Prometheus' text form `{job="shop"}`, `entries = 2`; `EntryAdapter.timestamp
//! = 1` (`google.protobuf.Timestamp`: seconds 1, nanos 2), `line = 2`,
//! `structuredMetadata = 3` (name 1, value 2)). A body decodes whole or not at all.

use dozor_model::{Label, Labels, LogRecord};
use serde::Deserialize;

use crate::protowire::{Value, Wire};
use crate::{IngestError, Limits};

/// Most entries in one push.
pub const MAX_ENTRIES: usize = 100_000;

/// Decodes a snappy-compressed protobuf push.
pub fn decode_protobuf(body: &[u8], limits: &Limits) -> Result<Vec<LogRecord>, IngestError> {
    let raw = crate::snappy_decompress(body, limits)?;
    let not_push = |m: String| IngestError::new("body", format!("not a Loki PushRequest: {m}"));
    let mut out = Vec::new();
    let mut wire = Wire(&raw);
    let mut i = 0;
    while let Some((tag, value)) = wire.field().map_err(not_push)? {
        let (1, Value::Len(stream)) = (tag, value) else {
            continue;
        };
        let at = |m: String| IngestError::new(format!("streams[{i}]"), m);
        let mut labels = None;
        let mut entries = Vec::new();
        let mut w = Wire(stream);
        while let Some((tag, value)) = w.field().map_err(at)? {
            match (tag, value) {
                (1, Value::Len(b)) => {
                    let text =
                        std::str::from_utf8(b).map_err(|_| at("labels are not UTF-8".into()))?;
                    labels = Some(parse_labels(text).map_err(|e| at(format!("labels: {e}")))?);
                }
                (2, Value::Len(e)) => entries.push(e),
                _ => {}
            }
        }
        let stream = labels.ok_or_else(|| at("no labels".into()))?;
        for (j, e) in entries.into_iter().enumerate() {
            if out.len() == MAX_ENTRIES {
                return Err(at(format!("more than {MAX_ENTRIES} entries in one push")));
            }
            let r = entry(e, &stream)
                .map_err(|m| IngestError::new(format!("streams[{i}].entries[{j}]"), m))?;
            out.push(r);
        }
        i += 1;
    }
    Ok(out)
}

fn entry(bytes: &[u8], stream: &Labels) -> Result<LogRecord, String> {
    let (mut secs, mut nanos, mut line, mut fields) = (0i64, 0i64, "", Vec::new());
    let mut w = Wire(bytes);
    while let Some((tag, value)) = w.field()? {
        match (tag, value) {
            (1, Value::Len(ts)) => {
                let mut t = Wire(ts);
                while let Some((tag, value)) = t.field()? {
                    match (tag, value) {
                        (1, Value::Varint(s)) => secs = s as i64,
                        (2, Value::Varint(n)) => nanos = i64::from(n as i32),
                        _ => {}
                    }
                }
            }
            (2, Value::Len(b)) => {
                line = std::str::from_utf8(b).map_err(|_| "the line is not UTF-8")?
            }
            (3, Value::Len(pair)) => {
                let (mut name, mut value) = ("", "");
                let mut p = Wire(pair);
                while let Some((tag, v)) = p.field()? {
                    if let (1 | 2, Value::Len(b)) = (tag, v) {
                        let s = std::str::from_utf8(b)
                            .map_err(|_| "structured metadata is not UTF-8")?;
                        if tag == 1 { name = s } else { value = s }
                    }
                }
                fields.push((name.to_owned(), value.to_owned()));
            }
            _ => {}
        }
    }
    let time_ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or("the timestamp is out of range")?;
    Ok(record(time_ns, stream.clone(), line.to_owned(), fields))
}

fn record(
    time_ns: i64,
    stream: Labels,
    message: String,
    mut fields: Vec<(String, String)>,
) -> LogRecord {
    fields.retain(|(n, _)| !n.is_empty());
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|b, a| a.0 == b.0);
    LogRecord {
        time_ns,
        stream,
        message,
        fields,
    }
}

#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<JsonEntry>,
}

/// `["<ns>", "line"]` or `["<ns>", "line", {metadata}]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonEntry {
    Plain(String, String),
    WithMetadata(String, String, std::collections::BTreeMap<String, String>),
}

/// Decodes the JSON form.
pub fn decode_json(body: &[u8]) -> Result<Vec<LogRecord>, IngestError> {
    let push: JsonPush = serde_json::from_slice(body)
        .map_err(|e| IngestError::new("body", format!("not a Loki push: {e}")))?;
    let mut out = Vec::new();
    for (i, s) in push.streams.into_iter().enumerate() {
        let at = |m: String| IngestError::new(format!("streams[{i}]"), m);
        let stream = Labels::new(
            s.stream
                .into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
        )
        .map_err(|e| at(format!("stream: {e}")))?;
        for (j, v) in s.values.into_iter().enumerate() {
            if out.len() == MAX_ENTRIES {
                return Err(at(format!("more than {MAX_ENTRIES} entries in one push")));
            }
            let (ts, line, meta) = match v {
                JsonEntry::Plain(t, l) => (t, l, Default::default()),
                JsonEntry::WithMetadata(t, l, m) => (t, l, m),
            };
            let time_ns: i64 = ts.parse().map_err(|_| {
                IngestError::new(
                    format!("streams[{i}].values[{j}]"),
                    format!("timestamp {ts:?} is not integer nanoseconds"),
                )
            })?;
            out.push(record(
                time_ns,
                stream.clone(),
                line,
                meta.into_iter().collect(),
            ));
        }
    }
    Ok(out)
}

/// Parses a label set in Prometheus' text form: `{a="x", b="y\"z"}`.
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or("a label set is written {name=\"value\", …}")?;
    let mut labels = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("a label without =")?;
        let name = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unfinished escape".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        labels.push(Label { name, value });
        rest = rest[end + 1..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err("labels must be separated by commas".into()),
        };
    }
    Labels::new(labels).map_err(|e| e.to_string())
}

/// Encodes records as a snappy-compressed protobuf `PushRequest`, one stream per distinct
/// label set (for tests, benchmarks and forwarding to Loki).
pub fn encode_protobuf(records: &[LogRecord]) -> Vec<u8> {
    use dozor_model::packed::put_uvarint;
    fn field(buf: &mut Vec<u8>, tag: u64, payload: &[u8]) {
        put_uvarint(buf, tag << 3 | 2);
        put_uvarint(buf, payload.len() as u64);
        buf.extend_from_slice(payload);
    }
    fn varint(buf: &mut Vec<u8>, tag: u64, v: u64) {
        put_uvarint(buf, tag << 3);
        put_uvarint(buf, v);
    }
    let mut streams: Vec<(&Labels, Vec<&LogRecord>)> = Vec::new();
    for r in records {
        match streams.iter_mut().find(|(l, _)| **l == r.stream) {
            Some((_, rs)) => rs.push(r),
            None => streams.push((&r.stream, vec![r])),
        }
    }
    let mut req = Vec::new();
    for (labels, rs) in streams {
        let mut stream = Vec::new();
        let text: Vec<String> = labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        field(
            &mut stream,
            1,
            format!("{{{}}}", text.join(", ")).as_bytes(),
        );
        for r in rs {
            let mut ts = Vec::new();
            varint(&mut ts, 1, r.time_ns.div_euclid(1_000_000_000) as u64);
            varint(&mut ts, 2, r.time_ns.rem_euclid(1_000_000_000) as u64);
            let mut e = Vec::new();
            field(&mut e, 1, &ts);
            field(&mut e, 2, r.message.as_bytes());
            for (n, v) in &r.fields {
                let mut pair = Vec::new();
                field(&mut pair, 1, n.as_bytes());
                field(&mut pair, 2, v.as_bytes());
                field(&mut e, 3, &pair);
            }
            field(&mut stream, 2, &e);
        }
        field(&mut req, 1, &stream);
    }
    snap::raw::Encoder::new()
        .compress_vec(&req)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ns: i64, labels: &[(&str, &str)], line: &str, meta: &[(&str, &str)]) -> LogRecord {
        let mut r = LogRecord::new(
            ns,
            Labels::from_pairs(labels.iter().copied()).unwrap(),
            line,
        );
        r.fields = meta
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        r
    }

    #[test]
    fn protobuf_and_json_pushes_decode_alike() {
        let shop = [("job", "shop"), ("env", "prod")];
        let input = vec![
            rec(
                1_796_119_200_000_000_123,
                &shop,
                "payment failed",
                &[("trace_id", "ab12")],
            ),
            rec(1_796_119_201_000_000_000, &shop, "ok", &[]),
        ];
        let from_proto = decode_protobuf(&encode_protobuf(&input), &Limits::default()).unwrap();
        let json = br#"{"streams":[{"stream":{"job":"shop","env":"prod"},"values":[["1796119200000000123","payment failed",{"trace_id":"ab12"}],["1796119201000000000","ok"]]}]}"#;
        assert_eq!(from_proto, decode_json(json).unwrap());
        assert_eq!(from_proto, input);
        assert_eq!(from_proto[0].field("trace_id"), Some("ab12"));
    }

    #[test]
    fn label_sets_parse_with_escapes_and_refuse_garbage() {
        let l = parse_labels(r#"{a="x\"y", b = "line\nnext",c="\\"}"#).unwrap();
        assert_eq!(l.get("a"), Some("x\"y"));
        assert_eq!(l.get("b"), Some("line\nnext"));
        assert_eq!(l.get("c"), Some("\\"));
        for bad in [
            "job=\"x\"",
            "{job=x}",
            "{job=\"x\" env=\"y\"}",
            "{job=\"x}",
            "{1a=\"x\"}",
            "{}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_pushes_name_the_place() {
        let limits = Limits::default();
        assert_eq!(
            decode_protobuf(b"plain", &limits).unwrap_err().field,
            "body"
        );
        // A stream whose labels are not a label set: PushRequest{streams: [{labels: "job=shop"}]}.
        let mut stream = vec![0x0a, 8];
        stream.extend_from_slice(b"job=shop");
        let mut req = vec![0x0a, stream.len() as u8];
        req.extend_from_slice(&stream);
        let body = snap::raw::Encoder::new().compress_vec(&req).unwrap();
        assert_eq!(
            decode_protobuf(&body, &limits).unwrap_err().field,
            "streams[0]"
        );
        let err = decode_json(br#"{"streams":[{"stream":{"job":"a"},"values":[["soon","x"]]}]}"#)
            .unwrap_err();
        assert_eq!(err.field, "streams[0].values[0]");
        assert!(decode_json(b"{}").is_err());
    }
}
