//! Elasticsearch's `_bulk` API as log shippers speak it (Filebeat, Logstash, Vector, Fluent
//! Bit, the official clients): NDJSON of action lines, each `index` or `create` followed by
//! its document.
//!
//! ```text
//! {"create":{"_index":"shop-logs"}}
//! {"@timestamp":"2026-12-01T10:00:00Z","message":"payment failed","service":"shop"}
//! ```
//!
//! A document becomes a record by the NDJSON conventions ([`crate::ndjson::record`]:
//! `message`/`_msg`, `@timestamp`/`_time`, stream fields), its index (the action's
//! `_index`, else the URL's) a stream label `index`. Unlike the other decoders, `_bulk`
//! judges item by item, as Elasticsearch does: a bad document, an unsupported action
//! (`update`, `delete`) or a missing index fails that item — named in the response with
//! Elasticsearch's error shape — while the good ones land. Only a body that is not bulk
//! at all (a line that is not JSON where an action must be) fails the whole request.

use dozor_model::{Label, Labels, LogRecord};
use serde_json::{Map, Value};

use crate::IngestError;
use crate::ndjson::{self, MAX_LINE_BYTES, MAX_LINES, NdjsonOptions};

/// What became of one item, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `index` or `create`, or the unsupported action named.
    pub action: String,
    /// The item's index.
    pub index: String,
    /// The record, or why the item failed (Elasticsearch's error `type` and `reason`).
    pub outcome: Result<LogRecord, (&'static str, String)>,
}

/// Decodes a bulk body; `default_index` is the one of `/<index>/_bulk`.
pub fn parse(
    body: &[u8],
    default_index: Option<&str>,
    opts: &NdjsonOptions,
) -> Result<Vec<Item>, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| IngestError::new("body", format!("not UTF-8 ({e})")))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut items = Vec::new();
    while let Some((n, line)) = lines.next() {
        let at = |m: String| IngestError::new(format!("line {}", n + 1), m);
        if items.len() == MAX_LINES {
            return Err(at(format!("more than {MAX_LINES} items in one request")));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(at(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let action: Map<String, Value> = match serde_json::from_str(line) {
            Ok(Value::Object(o)) if o.len() == 1 => o,
            Ok(_) => {
                return Err(at(
                    "an action must be an object with one key, such as {\"index\":{}}".into(),
                ));
            }
            Err(e) => return Err(at(format!("invalid action: {e}"))),
        };
        let (name, meta) = action
            .into_iter()
            .next()
            .ok_or_else(|| at("empty action".into()))?;
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .unwrap_or_default()
            .to_owned();
        let has_source = matches!(name.as_str(), "index" | "create" | "update");
        let source = if has_source { lines.next() } else { None };
        let outcome = match (name.as_str(), source) {
            ("index" | "create", Some((_, doc))) => document(doc, &index, opts),
            ("index" | "create", None) => Err((
                "parse_exception",
                "the action has no document line".to_owned(),
            )),
            ("update" | "delete", _) => Err((
                "illegal_argument_exception",
                format!("{name}: logs are append-only; only index and create are accepted"),
            )),
            (other, _) => return Err(at(format!("unknown bulk action {other:?}"))),
        };
        items.push(Item {
            action: name,
            index,
            outcome,
        });
    }
    Ok(items)
}

fn document(
    line: &str,
    index: &str,
    opts: &NdjsonOptions,
) -> Result<LogRecord, (&'static str, String)> {
    if index.is_empty() {
        return Err((
            "action_request_validation_exception",
            "index is missing".into(),
        ));
    }
    if line.len() > MAX_LINE_BYTES {
        return Err((
            "document_parsing_exception",
            format!("longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    let obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            return Err((
                "document_parsing_exception",
                "the document is not a JSON object".into(),
            ));
        }
        Err(e) => return Err(("document_parsing_exception", format!("invalid JSON: {e}"))),
    };
    let mut r = ndjson::record(obj, opts).map_err(|e| ("document_parsing_exception", e))?;
    let mut labels: Vec<Label> = r
        .stream
        .iter()
        .filter(|l| l.name != "index")
        .cloned()
        .collect();
    if r.stream.get("service") == Some("unknown") && r.stream.len() == 1 {
        labels.clear();
    }
    labels.push(Label {
        name: "index".into(),
        value: index.to_owned(),
    });
    r.stream = Labels::new(labels).map_err(|e| ("document_parsing_exception", e.to_string()))?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_items_land_and_bad_ones_are_named() {
        let body = br#"{"create":{"_index":"shop-logs"}}
{"@timestamp":"2026-12-01T10:00:00Z","message":"payment failed","service":"shop"}
{"index":{}}
{"message":"no index in the action: the URL's"}
{"create":{"_index":"shop-logs"}}
{"message": broken}
{"delete":{"_index":"shop-logs","_id":"1"}}
{"index":{"_index":"x"}}
{"no":"message"}
"#;
        let items = parse(body, Some("from-url"), &NdjsonOptions::new(7)).unwrap();
        assert_eq!(items.len(), 5);
        let ok = items[0].outcome.as_ref().unwrap();
        assert_eq!(ok.message, "payment failed");
        assert_eq!(
            ok.stream,
            Labels::from_pairs([("index", "shop-logs"), ("service", "shop")]).unwrap()
        );
        assert_eq!(ok.time_ns, 1_796_119_200_000_000_000);
        let second = items[1].outcome.as_ref().unwrap();
        assert_eq!(
            (second.stream.get("index"), second.time_ns),
            (Some("from-url"), 7)
        );
        assert_eq!(
            items[2].outcome.as_ref().unwrap_err().0,
            "document_parsing_exception"
        );
        assert_eq!(items[3].action, "delete");
        assert!(items[3].outcome.is_err());
        assert!(
            items[4]
                .outcome
                .as_ref()
                .unwrap_err()
                .1
                .contains("no message")
        );
    }

    #[test]
    fn a_body_that_is_not_bulk_fails_whole() {
        let opts = NdjsonOptions::new(0);
        assert!(
            parse(b"not json\n", None, &opts)
                .unwrap_err()
                .to_string()
                .starts_with("line 1")
        );
        assert!(parse(b"{\"a\":1,\"b\":2}\n", None, &opts).is_err());
        assert!(
            parse(b"{\"frobnicate\":{}}\n{}\n", None, &opts)
                .unwrap_err()
                .message
                .contains("frobnicate")
        );
        let no_index = parse(b"{\"index\":{}}\n{\"message\":\"m\"}\n", None, &opts).unwrap();
        assert_eq!(
            no_index[0].outcome.as_ref().unwrap_err().0,
            "action_request_validation_exception"
        );
    }
}
