//! Alertmanager's API v2 request bodies, read into the model: posted alerts (`POST
//! /api/v2/alerts`, a JSON array of `{labels, annotations, startsAt, endsAt,
//! generatorURL}`) and posted silences (`POST /api/v2/silences`). Pure; every error names
//! the field (`[2].startsAt: …`, `matchers[0].name: …`) so the API can answer 400 with it.

use serde_json::Value;

use crate::dispatch::Alert;
use crate::silence::{Silence, matchers_from_json};
use dozor_model::Labels;

/// Reads a `POST /api/v2/alerts` body; alerts without `startsAt` start at `now`.
pub fn parse_alerts(body: &[u8], now: i64) -> Result<Vec<Alert>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body: not JSON ({e})"))?;
    let items = v.as_array().ok_or("body: a JSON array of alerts")?;
    items
        .iter()
        .enumerate()
        .map(|(i, a)| posted_alert(i, a, now))
        .collect()
}

/// Reads a `POST /api/v2/silences` body; a silence without `startsAt` starts at `now`.
/// (Validation of the silence itself is [`Silence::validate`]'s.)
pub fn parse_silence(body: &[u8], now: i64) -> Result<Silence, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body: not JSON ({e})"))?;
    posted_silence(&v, now)
}

/// An RFC 3339 time with any offset, as Alertmanager's clients send them.
pub fn parse_rfc3339(field: &str, v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() || s.starts_with("0001-01-01") => Ok(None),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .map(|t| Some(t.as_millisecond()))
            .map_err(|e| format!("{field}: {s:?} is not an RFC 3339 time ({e})")),
        _ => Err(format!("{field}: an RFC 3339 time string")),
    }
}

/// One posted alert, checked; errors name the alert's index and field.
fn posted_alert(i: usize, v: &Value, now: i64) -> Result<Alert, String> {
    let at = |f: &str| format!("[{i}].{f}");
    let obj = v
        .as_object()
        .ok_or_else(|| format!("[{i}]: an alert object"))?;
    let string_map = |field: &str| -> Result<Vec<(String, String)>, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!("{}.{k}: a string", at(field))),
                })
                .collect(),
            Some(_) => Err(format!("{}: an object of strings", at(field))),
        }
    };
    let pairs = string_map("labels")?;
    if pairs.iter().all(|(_, v)| v.is_empty()) {
        return Err(format!("{}: at least one label", at("labels")));
    }
    let labels = Labels::from_pairs(
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| format!("{}: {e}", at("labels")))?;
    let starts = parse_rfc3339(&at("startsAt"), obj.get("startsAt").unwrap_or(&Value::Null))?;
    let ends = parse_rfc3339(&at("endsAt"), obj.get("endsAt").unwrap_or(&Value::Null))?;
    let starts_at_ms = starts.unwrap_or(now);
    if ends.is_some_and(|e| e < starts_at_ms) {
        return Err(format!("{}: before startsAt", at("endsAt")));
    }
    let generator_url = match obj.get("generatorURL") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("{}: a string", at("generatorURL"))),
    };
    Ok(Alert {
        labels,
        annotations: string_map("annotations")?.into_iter().collect(),
        starts_at_ms,
        ends_at_ms: ends,
        generator_url,
    })
}

/// A posted silence, checked; errors name the field.
fn posted_silence(v: &Value, now: i64) -> Result<Silence, String> {
    let obj = v.as_object().ok_or("body: a silence object")?;
    let text = |f: &str| -> Result<String, String> {
        match obj.get(f) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{f}: a string")),
        }
    };
    let matchers = matchers_from_json(obj.get("matchers").unwrap_or(&Value::Null))?;
    let starts =
        parse_rfc3339("startsAt", obj.get("startsAt").unwrap_or(&Value::Null))?.unwrap_or(now);
    let ends = parse_rfc3339("endsAt", obj.get("endsAt").unwrap_or(&Value::Null))?
        .ok_or("endsAt: required")?;
    Ok(Silence {
        id: text("id")?,
        matchers,
        starts_at_ms: starts,
        ends_at_ms: ends,
        updated_at_ms: now,
        created_by: text("createdBy")?,
        comment: text("comment")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_read_with_offsets_and_defaults() {
        let a = parse_alerts(
            br#"[{"labels": {"alertname": "X", "empty": ""}, "startsAt": "2026-12-07T03:00:00+03:00", "endsAt": "0001-01-01T00:00:00Z"}]"#,
            5,
        )
        .unwrap();
        assert_eq!(a[0].starts_at_ms, 1_796_601_600_000);
        assert_eq!(a[0].ends_at_ms, None, "Go's zero time is no end");
        assert_eq!(a[0].labels.len(), 1, "empty labels are dropped");
        let b = parse_alerts(br#"[{"labels": {"a": "b"}}]"#, 5).unwrap();
        assert_eq!(b[0].starts_at_ms, 5);
        for (body, want) in [
            (&b"nope"[..], "body: not JSON"),
            (br#"{}"#, "body: a JSON array"),
            (br#"[1]"#, "[0]: an alert object"),
            (
                br#"[{"labels": {"a": "b"}}, {"labels": {"a": "b"}, "annotations": []}]"#,
                "[1].annotations",
            ),
            (br#"[{"labels": {"a": "b"}, "endsAt": 7}]"#, "[0].endsAt"),
        ] {
            let e = parse_alerts(body, 0).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn silences_read_with_their_fields_named() {
        let s = parse_silence(
            br#"{"id": "x", "matchers": [{"name": "a", "value": "b"}], "endsAt": "2026-12-07T00:00:00Z", "createdBy": "me", "comment": "c"}"#,
            9,
        )
        .unwrap();
        assert_eq!((s.id.as_str(), s.starts_at_ms), ("x", 9));
        assert_eq!(s.ends_at_ms, 1_796_601_600_000);
        for (body, want) in [
            (&br#"[]"#[..], "body: a silence object"),
            (
                br#"{"matchers": [], "endsAt": "2026-12-07T00:00:00Z", "comment": 5}"#,
                "comment",
            ),
            (
                br#"{"matchers": [{"name": "a", "value": "b"}]}"#,
                "endsAt: required",
            ),
        ] {
            let e = parse_silence(body, 0).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
