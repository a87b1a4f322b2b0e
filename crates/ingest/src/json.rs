//! The JSON push of seed 004: `POST /api/v1/metrics` with one metric, an array of them, or
//! `{"metrics": [...]}`:
//!
//! ```json
//! {"name": "ticket_sales_total", "value": 12, "labels": {"event": "e42"}, "timestamp": 1700000000000}
//! ```
//! `timestamp` (ms since the epoch) is optional and defaults to the time of the request.

use std::collections::BTreeMap;

use dozor_model::{Label, Labels, Sample};
use serde::Deserialize;

use crate::{Batch, IngestError, Limits};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metric {
    name: String,
    value: f64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// Parses the body.
pub fn parse(body: &[u8], default_t: i64, limits: &Limits) -> Result<Batch, IngestError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::new("body", format!("invalid JSON: {e}")))?;
    // Decode item by item so an error names the item at fault.
    let items: Vec<serde_json::Value> = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut obj)
            if obj.contains_key("metrics") && !obj.contains_key("name") =>
        {
            match obj.remove("metrics") {
                Some(serde_json::Value::Array(items)) => items,
                _ => return Err(IngestError::new("metrics", "must be an array")),
            }
        }
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return Err(IngestError::new(
                "body",
                "expected an object or an array of objects",
            ));
        }
    };
    if items.len() > limits.max_samples {
        return Err(IngestError::new(
            "metrics",
            format!("more than the limit of {} samples", limits.max_samples),
        ));
    }
    let mut batch: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let m: Metric = serde_json::from_value(item)
            .map_err(|e| IngestError::new(format!("metrics[{i}]"), e.to_string()))?;
        let mut labels: Vec<Label> = m
            .labels
            .into_iter()
            .map(|(name, value)| Label { name, value })
            .collect();
        if labels
            .iter()
            .any(|l| l.name == dozor_model::labels::METRIC_NAME)
        {
            return Err(IngestError::new(
                format!("metrics[{i}].labels"),
                "must not hold __name__; use name",
            ));
        }
        labels.push(Label {
            name: dozor_model::labels::METRIC_NAME.to_owned(),
            value: m.name,
        });
        let labels = Labels::new(labels)
            .map_err(|e| IngestError::new(format!("metrics[{i}].labels"), e.to_string()))?;
        batch.push((
            labels,
            vec![Sample {
                t: m.timestamp.unwrap_or(default_t),
                v: m.value,
            }],
        ));
    }
    Ok(batch)
}

/// Most members of one record (labels and measurements together).
const MAX_RECORD_MEMBERS: usize = 256;
const RECORD_TIME_KEYS: [&str; 5] = ["timestamp", "time", "_time", "@timestamp", "ts"];

/// Decodes flat JSON records of measurements — an object or an array of them, as seed
/// 001's metrics topic sends (`{"service": "api", "cpu_usage": 85.2, "latency_ms": 1200,
/// "timestamp": 1700000000}`): every number (and boolean, as 0/1) becomes a gauge named
/// `<prefix><member>`, every string a label of all of them; the time is `timestamp` (or
/// `time`, `_time`, `@timestamp`, `ts`: RFC 3339 or a number of s/ms/µs/ns), else
/// `default_t` (ms). Nested objects flatten with `_` (`disk: {used: 3}` → `disk_used`);
/// arrays and nulls are skipped.
pub fn parse_record(body: &[u8], default_t: i64, prefix: &str) -> Result<Batch, IngestError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::new("body", format!("invalid JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return Err(IngestError::new(
                "body",
                "expected an object or an array of objects",
            ));
        }
    };
    let mut batch = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let serde_json::Value::Object(mut obj) = item else {
            return Err(IngestError::new(format!("[{i}]"), "not a JSON object"));
        };
        let t = match RECORD_TIME_KEYS.iter().find_map(|k| obj.remove(*k)) {
            Some(v) => crate::ndjson::parse_time(&v)
                .map_err(|m| IngestError::new(format!("[{i}].timestamp"), m))?
                .div_euclid(1_000_000),
            None => default_t,
        };
        let mut flat = Vec::new();
        flatten(String::new(), obj, &mut flat);
        if flat.len() > MAX_RECORD_MEMBERS {
            return Err(IngestError::new(
                format!("[{i}]"),
                format!("more than {MAX_RECORD_MEMBERS} members"),
            ));
        }
        let mut labels = Vec::new();
        let mut values = Vec::new();
        for (name, v) in flat {
            match v {
                serde_json::Value::String(s) if !s.is_empty() => {
                    labels.push(Label { name, value: s })
                }
                serde_json::Value::Number(n) => {
                    values.push((name, n.as_f64().unwrap_or(f64::NAN)));
                }
                serde_json::Value::Bool(b) => values.push((name, f64::from(u8::from(b)))),
                _ => {}
            }
        }
        if values.is_empty() {
            return Err(IngestError::new(format!("[{i}]"), "no numeric member"));
        }
        for (name, v) in values {
            if prefix.is_empty() && name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(IngestError::new(
                    format!("[{i}].{name}"),
                    "a metric name cannot start with a digit (set a metric_prefix)",
                ));
            }
            let mut l = labels.clone();
            l.push(Label {
                name: dozor_model::labels::METRIC_NAME.to_owned(),
                value: format!("{prefix}{name}"),
            });
            let l = Labels::new(l)
                .map_err(|e| IngestError::new(format!("[{i}].{name}"), e.to_string()))?;
            batch.push((l, vec![Sample { t, v }]));
        }
    }
    Ok(batch)
}

/// `{"a": {"b": 1}}` → `("a_b", 1)`; names made Prometheus-safe (`cpu.usage` → `cpu_usage`).
fn flatten(
    prefix: String,
    obj: serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    for (k, v) in obj {
        let mut name = prefix.clone();
        if !name.is_empty() {
            name.push('_');
        }
        name.extend(
            k.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
        match v {
            serde_json::Value::Object(inner) if out.len() <= MAX_RECORD_MEMBERS => {
                flatten(name, inner, out)
            }
            other => out.push((name, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_many_and_wrapped() {
        let one = br#"{"name":"sales_total","value":3,"labels":{"event":"e1"},"timestamp":1000}"#;
        let b = parse(one, 7, &Limits::default()).unwrap();
        assert_eq!(b[0].0.to_string(), "sales_total{event=\"e1\"}");
        assert_eq!(b[0].1, [Sample { t: 1000, v: 3.0 }]);
        let many = br#"[{"name":"a","value":1},{"name":"b","value":2}]"#;
        assert_eq!(
            parse(many, 7, &Limits::default()).unwrap()[1].1,
            [Sample { t: 7, v: 2.0 }]
        );
        let wrapped = br#"{"metrics":[{"name":"a","value":1}]}"#;
        assert_eq!(parse(wrapped, 7, &Limits::default()).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let err = parse(
            br#"[{"name":"a","value":1},{"name":"b"}]"#,
            0,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "metrics[1]");
        assert!(err.message.contains("value"), "{err}");
        let err = parse(
            br#"{"name":"a","value":1,"labels":{"bad-name":"x"}}"#,
            0,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "metrics[0].labels");
        let err = parse(br#"{"name":"a","value":"high"}"#, 0, &Limits::default()).unwrap_err();
        assert_eq!(err.field, "metrics[0]");
        assert!(parse(b"[1,2", 0, &Limits::default()).is_err());
        assert!(parse(b"42", 0, &Limits::default()).is_err());
    }

    #[test]
    fn records_become_gauges_labelled_by_their_strings() {
        let b = parse_record(
            br#"{"service":"api","cpu_usage":85.5,"up":true,"disk":{"used.pct":3},"timestamp":"2023-11-14T22:13:20Z"}"#,
            7,
            "app_",
        )
        .unwrap();
        let got: Vec<String> = b
            .iter()
            .map(|(l, s)| format!("{l} {} {}", s[0].v, s[0].t))
            .collect();
        assert_eq!(
            got,
            [
                "app_cpu_usage{service=\"api\"} 85.5 1700000000000",
                "app_disk_used_pct{service=\"api\"} 3 1700000000000",
                "app_up{service=\"api\"} 1 1700000000000",
            ]
        );
        assert_eq!(
            parse_record(br#"[{"v":1},{"v":2}]"#, 7, "").unwrap()[1].1,
            [Sample { t: 7, v: 2.0 }]
        );
        assert_eq!(
            parse_record(br#"{"service":"api"}"#, 0, "")
                .unwrap_err()
                .field,
            "[0]"
        );
        assert_eq!(
            parse_record(br#"[{"v":1},3]"#, 0, "").unwrap_err().field,
            "[1]"
        );
        assert_eq!(
            parse_record(br#"{"v":1,"ts":"soon"}"#, 0, "")
                .unwrap_err()
                .field,
            "[0].timestamp"
        );
        assert!(parse_record(br#"{"1x":1}"#, 0, "").is_err());
        assert!(parse_record(b"nope", 0, "").is_err());
    }
}
