//! [`Params`]: the parameters of a Prometheus API call, from the query string and, for a
//! `POST` with `Content-Type: application/x-www-form-urlencoded`, from the body too (as
//! Go's `Request.ParseForm` merges them: body values first). Parsers for the parameter types
//! Prometheus accepts (times, durations, limits) return a 400 naming the parameter.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

use crate::ApiError;

/// Longest parameter text recorded in the audit chain.
const MAX_AUDIT_DETAIL: usize = 4096;

/// Request parameters, in order (body first, then query string).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let query = req.uri().query().unwrap_or("").to_owned();
        let is_form = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(';')
                        .next()
                        .is_some_and(|m| m.trim() == "application/x-www-form-urlencoded")
                });
        let body = if is_form {
            let bytes = Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError::with_status(e.status(), e.body_text()))?;
            String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::bad_data("body: the form is not UTF-8"))?
        } else {
            String::new()
        };
        Params::parse(&body, &query)
    }
}

impl Params {
    /// Parameters from a form body and a query string.
    pub fn parse(body: &str, query: &str) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(body)
            .map_err(|e| ApiError::bad_data(format!("body: cannot parse the form: {e}")))?;
        pairs.extend(
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .map_err(|e| ApiError::bad_data(format!("query string: {e}")))?,
        );
        let mut raw = match (body.is_empty(), query.is_empty()) {
            (false, false) => format!("{body}&{query}"),
            (false, true) => body.to_owned(),
            _ => query.to_owned(),
        };
        if raw.len() > MAX_AUDIT_DETAIL {
            let mut cut = MAX_AUDIT_DETAIL;
            while !raw.is_char_boundary(cut) {
                cut -= 1;
            }
            raw.truncate(cut);
        }
        Ok(Params { pairs, raw })
    }

    /// The parameters as sent (truncated), for the audit chain.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The first value of `name` (Go's `FormValue`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty `name`, or a 400.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_data(format!("invalid parameter \"{name}\": missing")))
    }

    /// A time parameter in ms (RFC 3339 or Unix seconds), `default` when absent or empty.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => parse_time(v).map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse {v:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// A duration parameter in ms (`15s`, `1m30s` or float seconds), if present.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_duration_ms(v).map(Some).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse {v:?} to a valid duration"
                ))
            }),
        }
    }

    /// A duration parameter (as [`Params::duration`]) within `[min_ms, max_ms]`,
    /// `default_ms` when absent: as a PromQL range (`86400000ms`) and in ms.
    pub fn range(
        &self,
        name: &str,
        default_ms: i64,
        min_ms: i64,
        max_ms: i64,
    ) -> Result<(String, i64), ApiError> {
        let ms = self.duration(name)?.unwrap_or(default_ms);
        if !(min_ms..=max_ms).contains(&ms) {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"{name}\": from {}s to {}s",
                min_ms / 1000,
                max_ms / 1000
            )));
        }
        Ok((format!("{ms}ms"), ms))
    }

    /// `limit`: a non-negative integer; 0 or absent means no limit.
    pub fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit").filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match v.parse::<usize>() {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": cannot parse {v:?} to a valid limit"
                ))),
            },
        }
    }
}

/// Parses a time as Prometheus does: RFC 3339 or (fractional) Unix seconds, rounded to the
/// millisecond. Returns ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("{s:?} is not a finite time"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor Unix seconds ({e})"))?;
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Ok(ms)
}

/// Parses a duration as Prometheus' API does: float seconds, or a Prometheus duration
/// (`1h30m`, `15s`, `100ms`). Returns ms; `None` when it is neither, or out of range.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        return (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms as i64);
    }
    let d = promql_parser::util::duration::parse_duration(s).ok()?;
    i64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_values_come_before_query_values() {
        let p = Params::parse("query=up&time=5", "query=down&match%5B%5D=a&match[]=b").unwrap();
        assert_eq!(p.get("query"), Some("up"));
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            p.raw(),
            "query=up&time=5&query=down&match%5B%5D=a&match[]=b"
        );
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z").unwrap(),
            1_700_000_000_123
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_are_prometheus_durations_or_float_seconds() {
        assert_eq!(parse_duration_ms("15s"), Some(15_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("0.5"), Some(500));
        assert_eq!(parse_duration_ms("60"), Some(60_000));
        assert_eq!(parse_duration_ms("fast"), None);
        assert_eq!(parse_duration_ms("Inf"), None);
    }

    #[test]
    fn bad_parameters_are_named() {
        let p = Params::parse("", "time=soon&step=x&limit=-1").unwrap();
        assert!(
            p.time("time", 0)
                .unwrap_err()
                .message()
                .contains("\"time\"")
        );
        assert!(
            p.duration("step")
                .unwrap_err()
                .message()
                .contains("\"step\"")
        );
        assert!(p.limit().unwrap_err().message().contains("\"limit\""));
        assert!(
            p.required("query")
                .unwrap_err()
                .message()
                .contains("\"query\"")
        );
    }
}
