//! Prometheus' series notation, as `promtool test rules` reads `input_series` and the
//! PromQL test scripts read `load`: a series selector naming one series
//! (`http_requests_total{job="api"}`) and a list of values, one per interval —
//! `1 2 3`, `_` (no sample), `stale` (a staleness marker), `1x3` (1 four times),
//! `1+2x3` (1 3 5 7), `1-2x3`, `_x3` (three missing), `Inf`, `-Inf`, `NaN`.
//!
//! Every function returns an error message instead of panicking; expansions are bounded
//! by the caller's `max_points` so a `1x1000000000` in a file cannot exhaust memory.

use dozor_model::Labels;
use dozor_model::labels::stale_nan;
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

/// The labels of a series written as a selector with equality matchers only:
/// `name{a="b"}`, `{__name__="name", a="b"}` or `{a="b"}`.
pub fn parse_series_labels(text: &str) -> Result<Labels, String> {
    // `{}`, the empty label set (a scalar's), is not a valid selector.
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'));
    if inner.is_some_and(|t| t.trim().is_empty()) {
        return Ok(Labels::default());
    }
    let expr = crate::parse(text).map_err(|e| format!("bad series {text:?}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("bad series {text:?}: not a series selector"));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!("bad series {text:?}: offset and @ are not allowed"));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(name) = &vs.name {
        pairs.push(("__name__".to_owned(), name.clone()));
    }
    for m in &vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(format!(
                "bad series {text:?}: label {} must be matched with =",
                m.name
            ));
        }
        if m.name == "__name__" && vs.name.is_some() {
            continue;
        }
        if !m.value.is_empty() {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    Labels::from_pairs(pairs).map_err(|e| format!("bad series {text:?}: {e}"))
}

/// Expands a value list into one entry per interval: `Some(v)` a sample (a staleness
/// marker is the stale NaN), `None` no sample. At most `max_points` entries.
pub fn expand_values(text: &str, max_points: usize) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        expand_item(item, max_points, &mut out)?;
    }
    Ok(out)
}

fn expand_item(item: &str, max_points: usize, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    let bad = || format!("bad value {item:?}: write a number, _, stale, AxN or A+BxN");
    let (head, times) = match item.rsplit_once('x') {
        Some((h, n)) if !h.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            (h, Some(n.parse::<usize>().map_err(|_| bad())?))
        }
        _ => (item, None),
    };
    let count = times
        .map_or(Some(1), |n| n.checked_add(1))
        .ok_or_else(bad)?;
    // `_xN` is N missing samples (not N + 1), as in Prometheus.
    let count = if head == "_" && times.is_some() {
        count - 1
    } else {
        count
    };
    if out.len().saturating_add(count) > max_points {
        return Err(format!(
            "{item:?} makes the series longer than {max_points} points"
        ));
    }
    if head == "_" {
        out.extend(std::iter::repeat_n(None, count));
        return Ok(());
    }
    if let Some(v) = value(head) {
        out.extend(std::iter::repeat_n(Some(v), count));
        return Ok(());
    }
    if times.is_none() {
        return Err(bad());
    }
    let (mut v, inc) = split_increment(head).ok_or_else(bad)?;
    for _ in 0..count {
        out.push(Some(v));
        v += inc;
    }
    Ok(())
}

/// `a+b` / `a-b`: the start and the signed increment.
fn split_increment(s: &str) -> Option<(f64, f64)> {
    let b = s.as_bytes();
    (1..b.len()).rev().find_map(|i| {
        if (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E' | b'+' | b'-') {
            Some((value(&s[..i])?, number(&s[i..])?))
        } else {
            None
        }
    })
}

fn value(s: &str) -> Option<f64> {
    if s == "stale" {
        Some(stale_nan())
    } else {
        number(s)
    }
}

fn number(s: &str) -> Option<f64> {
    let unsigned = s.trim_start_matches(['+', '-']);
    let negative = s.starts_with('-');
    let magnitude = if unsigned.eq_ignore_ascii_case("inf") {
        f64::INFINITY
    } else if unsigned.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else if let Some(h) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()? as f64
    } else if unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && s.len() - unsigned.len() <= 1
    {
        unsigned.parse::<f64>().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(text: &str) -> Vec<Option<f64>> {
        expand_values(text, 1000).unwrap()
    }

    #[test]
    fn expands_prometheus_notation() {
        assert_eq!(vals("1 2 3"), [Some(1.0), Some(2.0), Some(3.0)]);
        assert_eq!(vals("1+2x3"), [Some(1.0), Some(3.0), Some(5.0), Some(7.0)]);
        assert_eq!(vals("10-5x2"), [Some(10.0), Some(5.0), Some(0.0)]);
        assert_eq!(vals("-1+1x1"), [Some(-1.0), Some(0.0)]);
        assert_eq!(vals("1e3+1e3x1"), [Some(1000.0), Some(2000.0)]);
        assert_eq!(vals("5x2"), [Some(5.0); 3]);
        assert_eq!(vals("_ 1 _x2 2"), [None, Some(1.0), None, None, Some(2.0)]);
        assert_eq!(
            vals("Inf -Inf"),
            [Some(f64::INFINITY), Some(f64::NEG_INFINITY)]
        );
        let stale = vals("stale");
        assert!(dozor_model::labels::is_stale_nan(stale[0].unwrap()));
        assert!(vals("NaN")[0].unwrap().is_nan());
    }

    #[test]
    fn bad_values_and_huge_expansions_are_errors() {
        for bad in [
            "abc",
            "1+",
            "1+2",
            "x3",
            "1++2x3",
            "--1",
            "0+1x18446744073709551616",
        ] {
            assert!(expand_values(bad, 1000).is_err(), "{bad}");
        }
        let e = expand_values("0+1x1000000000", 1000).unwrap_err();
        assert!(e.contains("longer than 1000"), "{e}");
    }

    #[test]
    fn series_labels_come_from_a_selector() {
        let l = parse_series_labels(r#"up{job="api", instance="a:1"}"#).unwrap();
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.get("job"), Some("api"));
        let l = parse_series_labels(r#"{__name__="up", x="1"}"#).unwrap();
        assert_eq!(l.metric_name(), Some("up"));
        assert!(parse_series_labels(" { } ").unwrap().is_empty());
        assert!(parse_series_labels(r#"up{job=~"a"}"#).is_err());
        assert!(parse_series_labels("rate(up[5m])").is_err());
        assert!(parse_series_labels("up{").is_err());
    }
}
