//! Prometheus' JSON, byte for byte: the `{"status":"success","data":…,"warnings":…}`
//! envelope and the query result types, written by hand so that the bytes equal what
//! Prometheus' jsoniter encoder writes.
//!
//! The details that matter for byte equality: sample values are strings formatted like Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)` (`"1.5"`, `"NaN"`, `"+Inf"`); timestamps are
//! seconds with exactly three decimals when the millisecond part is not zero
//! (`1700000000.100`, `1700000000`); strings escape `<`, `>` and `&` as Go's
//! `encoding/json` does; label names are in sorted order; `warnings` and `infos` appear
//! only when non-empty.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dozor_model::Labels;
use dozor_promql::{QueryResult, Value};

/// Appends `s` as a JSON string, escaped like Go's `encoding/json`.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a timestamp (ms) as Prometheus writes it: seconds, and `.` plus three digits when
/// the milliseconds are not zero.
pub(crate) fn push_time(out: &mut String, t_ms: i64) {
    let mut t = t_ms;
    if t < 0 {
        out.push('-');
        t = t.wrapping_neg();
    }
    let (secs, frac) = ((t as u64) / 1000, (t as u64) % 1000);
    out.push_str(&secs.to_string());
    if frac != 0 {
        out.push_str(&format!(".{frac:03}"));
    }
}

/// Appends a sample value as a JSON string (`"1.5"`, `"NaN"`, `"+Inf"`).
pub(crate) fn push_value(out: &mut String, v: f64) {
    out.push('"');
    out.push_str(&dozor_promql::format_float(v));
    out.push('"');
}

/// Appends `[t,"v"]`.
fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_time(out, t);
    out.push(',');
    push_value(out, v);
    out.push(']');
}

/// Appends a label set as a JSON object in label order.
pub(crate) fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
    }
    out.push('}');
}

/// A JSON array of strings.
pub(crate) fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, s);
    }
    out.push(']');
    out
}

/// A JSON array of label sets (the `series` answer).
pub(crate) fn label_sets<'a>(items: impl IntoIterator<Item = &'a Labels>) -> String {
    let mut out = String::from("[");
    for (i, l) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_labels(&mut out, l);
    }
    out.push(']');
    out
}

/// The `data` object of a query answer: `{"resultType":…,"result":…}`.
pub(crate) fn query_data(value: &Value) -> String {
    let mut out = String::from("{\"resultType\":");
    match value {
        Value::Scalar { t, v } => {
            out.push_str("\"scalar\",\"result\":");
            push_point(&mut out, *t, *v);
        }
        Value::String { t, v } => {
            out.push_str("\"string\",\"result\":[");
            push_time(&mut out, *t);
            out.push(',');
            push_str(&mut out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                out.push_str(",\"value\":");
                push_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// The success envelope around `data` (already JSON), with `warnings` and `infos` when
/// there are any.
pub(crate) fn envelope(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            out.push_str(&string_list(list.iter().map(String::as_str)));
        }
    }
    out.push('}');
    out
}

/// A JSON response with `body`.
pub(crate) fn response(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The whole answer of a successful query.
pub(crate) fn query_response(res: &QueryResult) -> Response {
    response(envelope(&query_data(&res.value), &res.warnings, &res.infos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_three_decimals_like_prometheus() {
        let mut s = String::new();
        push_time(&mut s, 1_700_000_000_100);
        s.push(' ');
        push_time(&mut s, 1_700_000_000_000);
        s.push(' ');
        push_time(&mut s, -1_500);
        s.push(' ');
        push_time(&mut s, 5);
        assert_eq!(s, "1700000000.100 1700000000 -1.500 0.005");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        push_str(&mut s, "a<b>&\"\\\n\u{1}");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001""#);
    }

    #[test]
    fn values_are_go_formatted_strings() {
        let mut s = String::new();
        for v in [
            1.5,
            1e21,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
        ] {
            push_value(&mut s, v);
        }
        assert_eq!(
            s,
            r#""1.5""1000000000000000000000""0.0000001""NaN""+Inf""-Inf""-0""#
        );
    }
}
