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
}
