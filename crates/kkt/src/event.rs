//! The KKT driver log: one JSON object per line (`KKT.md` §3.4), parsed tolerantly.
//!
//! Drivers and their wrappers do not agree on names, so the parser accepts the variants met
//! in the field: the register's number as `kkt.reg_number`, `kkt.regNumber`, `reg_number`,
//! `kkt_id` or a bare `kkt` string; the time as `ts`, `time`, `timestamp` or `@timestamp`,
//! in RFC 3339 or Unix seconds or milliseconds; the event as `event` or `type`. Seed 000's
//! metric snapshots (`{"kkt_id", "status", "documents_total", "ofd_sync_status", …}`) are
//! read as status events. Any event may carry `fn`, `ofd_queue` and `shift` objects; they
//! update the register's state whatever the event is.
//!
//! Errors name the field (`document.fd_number: expected an integer`) and never panic: the
//! input is whatever a driver wrote to a file.

use serde_json::{Map, Value};

use crate::model::{Category, DocumentKind, FnFlags, Operation};

/// A line that is not a KKT event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    /// The JSON path of the offending field (`document.kind`), or `line`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ParseError {
    ParseError {
        field: field.into(),
        message: message.into(),
    }
}

/// One parsed driver event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it was emitted, Unix milliseconds (UTC).
    pub ts: i64,
    /// The register and whatever identity it told.
    pub kkt: Identity,
    /// The FN's state, if the event carried it.
    pub fn_state: Option<FnState>,
    /// The OFD queue, if carried.
    pub queue: Option<Queue>,
    /// The shift, if carried.
    pub shift: Option<Shift>,
    /// What happened.
    pub body: Body,
}

/// Who the register is. Only `reg_number` is required; the rest updates what is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Registration number (tag 1037), the fleet's key.
    pub reg_number: String,
    /// Factory serial (tag 1013).
    pub serial: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Firmware version (tag 1188).
    pub firmware: Option<String>,
    /// The user's INN (tag 1018).
    pub inn: Option<String>,
    /// The OFD it sends to.
    pub ofd: Option<String>,
    /// The driver (`atol10`, `shtrih`, `sim`): codes are read in its numbering.
    pub driver: Option<String>,
    /// FFD version (`1.05`, `1.1`, `1.2`).
    pub ffd: Option<String>,
    /// Offline mode: no OFD exchange, so no 30-day rule.
    pub autonomous: Option<bool>,
    /// The register clock's offset from UTC in minutes (tag 1012 is local time).
    pub utc_offset_min: Option<i32>,
}

/// The FN as a status report gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FnState {
    /// FN number (tag 1041).
    pub number: Option<String>,
    /// End of the key's validity, as the device reports it (never computed), Unix ms.
    pub expires_at: Option<i64>,
    /// 13, 15 or 36 months (informational).
    pub validity_months: Option<u32>,
    /// Share of the archive used, 0–1.
    pub memory_used_ratio: Option<f64>,
    /// Last fiscal document number (tag 1040).
    pub last_fd_number: Option<u64>,
    /// The warning flags, if reported.
    pub flags: Option<FnFlags>,
}

/// The FN's queue of documents the OFD has not acknowledged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    /// Unsent documents (tag 1097).
    pub unsent: Option<u64>,
    /// Number of the first unsent document.
    pub first_unsent_fd: Option<u64>,
    /// When the first unsent document was made (tag 1098), Unix ms; `None` with an empty
    /// queue.
    pub first_unsent_at: Option<i64>,
    /// The last OFD acknowledgement, Unix ms.
    pub last_ack_at: Option<i64>,
    /// Unsent marking notices (FFD 1.2).
    pub unsent_marking_notices: Option<u64>,
}

/// The shift.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shift {
    /// Shift number (tag 1038).
    pub number: Option<u64>,
    /// Whether it is open.
    pub open: Option<bool>,
    /// When it was opened, Unix ms.
    pub opened_at: Option<i64>,
    /// Receipts in it so far.
    pub receipts: Option<u64>,
}

/// What the event reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A periodic status (state only, in the fields above).
    Status {
        /// Whether the driver reached the register (absent: yes).
        up: bool,
    },
    /// A fiscal document was made.
    Document(Document),
    /// The driver reported an error.
    Error(DriverError),
    /// The FN was replaced (the new one is in `fn_state`).
    FnReplaced,
    /// The OFD acknowledged documents.
    OfdAck {
        /// The acknowledged document, if named.
        fd_number: Option<u64>,
    },
    /// Seed 000's metric snapshot: counters as absolute values.
    Snapshot(Snapshot),
}

/// A fiscal document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Number (tag 1040).
    pub fd_number: u64,
    /// Kind.
    pub kind: DocumentKind,
    /// Tag 1012, the register's local time as written (ISO without offset).
    pub datetime: Option<String>,
    /// Tag 1012 as Unix ms, read with the register's UTC offset, when it parses.
    pub local_ms: Option<i64>,
    /// Fiscal sign (tag 1077).
    pub fpd: Option<u64>,
    /// Shift number (tag 1038).
    pub shift: Option<u64>,
    /// Settlement type (tag 1054).
    pub operation: Option<Operation>,
    /// Total in kopecks (tag 1020).
    pub total_kop: Option<i64>,
    /// Cash part (tag 1031).
    pub cash_kop: Option<i64>,
    /// Cashless part (tag 1081).
    pub cashless_kop: Option<i64>,
}

/// A driver error.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverError {
    /// The code as the driver wrote it, normalised (`0x14`, `137`).
    pub code: String,
    /// The category given or looked up; `other` when neither.
    pub category: Category,
    /// The message.
    pub message: String,
    /// Whether sales stop.
    pub blocking: bool,
}

/// Seed 000's `Metrics` record: absolute values the seed exported as gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// 0 unavailable, 1 running, 2 error.
    pub status: Option<i64>,
    /// Documents made so far.
    pub documents_total: Option<u64>,
    /// Errors so far, by seed error type.
    pub errors_by_type: Vec<(String, u64)>,
    /// 0 unknown, 1 synced, 2 pending, 3 error.
    pub ofd_sync_status: Option<i64>,
}

/// Longest register number kept (it becomes a label value).
const MAX_ID: usize = 64;

/// Parses one line of a driver log. `default_offset_min` reads tag 1012 when the line does
/// not say the register's UTC offset.
pub fn parse_line(line: &[u8], default_offset_min: i32) -> Result<Event, ParseError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| err("line", e.to_string()))?;
    parse_value(&value, default_offset_min)
}

/// [`parse_line`] over a decoded JSON value.
pub fn parse_value(value: &Value, default_offset_min: i32) -> Result<Event, ParseError> {
    let Value::Object(obj) = value else {
        return Err(err("line", "expected a JSON object"));
    };
    let ts = first(obj, &["ts", "time", "timestamp", "@timestamp"])
        .map(|(k, v)| time(v).ok_or_else(|| err(k, "expected RFC 3339 or Unix seconds")))
        .transpose()?
        .ok_or_else(|| err("ts", "missing"))?;
    let kkt = identity(obj)?;
    let fn_state = obj.get("fn").map(fn_state).transpose()?;
    let queue = obj
        .get("ofd_queue")
        .or_else(|| obj.get("ofd"))
        .filter(|v| v.is_object())
        .map(queue)
        .transpose()?;
    let shift = obj
        .get("shift")
        .filter(|v| v.is_object())
        .map(shift)
        .transpose()?;
    let kind = first(obj, &["event", "type"]).map(|(k, v)| (k, v.as_str()));
    let body = match kind {
        Some((_, Some("status"))) => Body::Status {
            up: opt_bool(obj, "up", "up")?.unwrap_or(true),
        },
        Some((_, Some("document"))) => {
            let offset = kkt.utc_offset_min.unwrap_or(default_offset_min);
            Body::Document(document(obj.get("document"), offset)?)
        }
        Some((_, Some("error"))) => Body::Error(driver_error(obj.get("error"))?),
        Some((_, Some("fn_replaced"))) => Body::FnReplaced,
        Some((_, Some("ofd_ack"))) => Body::OfdAck {
            fd_number: obj
                .get("ofd_ack")
                .and_then(|a| a.get("fd_number"))
                .or_else(|| obj.get("fd_number"))
                .map(|v| uint(v).ok_or_else(|| err("ofd_ack.fd_number", "expected an integer")))
                .transpose()?,
        },
        Some((k, Some(other))) => return Err(err(k, format!("unknown event {other:?}"))),
        Some((k, None)) => return Err(err(k, "expected a string")),
        None if obj.contains_key("status") || obj.contains_key("documents_total") => {
            Body::Snapshot(snapshot(obj)?)
        }
        None => return Err(err("event", "missing")),
    };
    Ok(Event {
        ts,
        kkt,
        fn_state,
        queue,
        shift,
        body,
    })
}

fn first<'a>(
    obj: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

fn identity(obj: &Map<String, Value>) -> Result<Identity, ParseError> {
    let nested = obj.get("kkt").and_then(Value::as_object);
    let reg = nested
        .and_then(|k| first(k, &["reg_number", "regNumber", "reg", "kkt_reg_number"]))
        .map(|(k, v)| (format!("kkt.{k}"), v))
        .or_else(|| {
            first(obj, &["reg_number", "kkt_reg_number", "kkt_id", "kktRegId"])
                .map(|(k, v)| (k.to_owned(), v))
        })
        .or_else(|| {
            obj.get("kkt")
                .filter(|v| v.is_string())
                .map(|v| ("kkt".to_owned(), v))
        })
        .ok_or_else(|| err("kkt.reg_number", "missing"))?;
    let reg_number = id_string(reg.1).ok_or_else(|| {
        err(
            reg.0.clone(),
            format!("expected a register number of 1 to {MAX_ID} printable characters"),
        )
    })?;
    let mut id = Identity {
        reg_number,
        ..Identity::default()
    };
    let Some(k) = nested else {
        return Ok(id);
    };
    let text = |key: &str| k.get(key).and_then(id_string);
    id.serial = text("serial").or_else(|| text("factory_number"));
    id.model = text("model");
    id.firmware = text("firmware");
    id.inn = text("inn");
    id.ofd = text("ofd");
    id.driver = text("driver");
    id.ffd = k.get("ffd").and_then(|v| match v {
        Value::Number(n) => Some(n.to_string()),
        other => id_string(other),
    });
    id.autonomous = opt_bool(k, "autonomous", "kkt.autonomous")?;
    id.utc_offset_min = k
        .get("utc_offset")
        .map(|v| {
            v.as_str()
                .and_then(parse_offset)
                .ok_or_else(|| err("kkt.utc_offset", "expected an offset like +03:00"))
        })
        .transpose()?;
    Ok(id)
}

/// A string usable as a label value and fleet key: 1–64 characters, no control characters.
fn id_string(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.chars().count() <= MAX_ID && !s.chars().any(char::is_control)).then_some(s)
}

/// A UTC offset (`+03:00`, `-05:30`, `+03`, `Z`) in minutes.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// RFC 3339, or Unix seconds (or milliseconds past 1e11) as a number or numeric string.
fn time(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => unix(n.as_f64()?),
        Value::String(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_millisecond()),
            Err(_) => unix(s.trim().parse().ok()?),
        },
        _ => None,
    }
}

fn unix(x: f64) -> Option<i64> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    // Seconds until the year 5138; milliseconds beyond.
    let ms = if x < 1e11 { x * 1000.0 } else { x };
    (ms < 1e15).then_some(ms as i64)
}

fn opt_time(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<i64>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => time(v)
            .map(Some)
            .ok_or_else(|| err(format!("{path}.{key}"), "expected RFC 3339 or Unix seconds")),
    }
}

fn uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn opt_uint(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => uint(v)
            .map(Some)
            .ok_or_else(|| err(format!("{path}.{key}"), "expected a non-negative integer")),
    }
}

fn opt_int(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<i64>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int(v)
            .map(Some)
            .ok_or_else(|| err(format!("{path}.{key}"), "expected an integer")),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|x| x <= 1) => {
            Ok(n.as_u64().map(|x| x == 1))
        }
        Some(_) => Err(err(path, "expected true or false")),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ParseError> {
    v.as_object().ok_or_else(|| err(path, "expected an object"))
}

fn fn_state(v: &Value) -> Result<FnState, ParseError> {
    let o = object(v, "fn")?;
    let memory = match o.get("memory_used_ratio") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| err("fn.memory_used_ratio", "expected a number from 0 to 1"))?,
        ),
    };
    let flags = match o.get("flags") {
        None | Some(Value::Null) => None,
        Some(f) => {
            let f = object(f, "fn.flags")?;
            let flag =
                |k: &str| opt_bool(f, k, &format!("fn.flags.{k}")).map(Option::unwrap_or_default);
            Some(FnFlags {
                resource_exhaustion_30d: flag("resource_exhaustion_30d")?,
                urgent_replacement_3d: flag("urgent_replacement_3d")?,
                memory_full_90pct: flag("memory_full_90pct")?,
                ofd_timeout: flag("ofd_timeout")?,
            })
        }
    };
    let validity = opt_uint(o, "validity_months", "fn")?;
    Ok(FnState {
        number: o.get("number").and_then(id_string),
        expires_at: opt_time(o, "expires_at", "fn")?,
        validity_months: validity.and_then(|m| u32::try_from(m).ok()),
        memory_used_ratio: memory,
        last_fd_number: opt_uint(o, "last_fd_number", "fn")?,
        flags,
    })
}

fn queue(v: &Value) -> Result<Queue, ParseError> {
    let o = object(v, "ofd_queue")?;
    Ok(Queue {
        unsent: opt_uint(o, "unsent", "ofd_queue")?,
        first_unsent_fd: opt_uint(o, "first_unsent_fd", "ofd_queue")?,
        first_unsent_at: opt_time(o, "first_unsent_at", "ofd_queue")?,
        last_ack_at: opt_time(o, "last_ack_at", "ofd_queue")?,
        unsent_marking_notices: opt_uint(o, "unsent_marking_notices", "ofd_queue")?,
    })
}

fn shift(v: &Value) -> Result<Shift, ParseError> {
    let o = object(v, "shift")?;
    Ok(Shift {
        number: opt_uint(o, "number", "shift")?,
        open: opt_bool(o, "open", "shift.open")?,
        opened_at: opt_time(o, "opened_at", "shift")?,
        receipts: opt_uint(o, "receipts", "shift")?,
    })
}

fn document(v: Option<&Value>, offset_min: i32) -> Result<Document, ParseError> {
    let o = object(v.ok_or_else(|| err("document", "missing"))?, "document")?;
    let fd_number = opt_uint(o, "fd_number", "document")?
        .ok_or_else(|| err("document.fd_number", "missing"))?;
    let code = opt_int(o, "kind", "document")?.ok_or_else(|| err("document.kind", "missing"))?;
    let kind = DocumentKind::from_code(code)
        .ok_or_else(|| err("document.kind", format!("unknown document kind {code}")))?;
    let operation = opt_int(o, "operation", "document")?
        .map(|c| {
            Operation::from_code(c)
                .ok_or_else(|| err("document.operation", format!("unknown settlement type {c}")))
        })
        .transpose()?;
    let datetime = o.get("datetime").and_then(Value::as_str).map(str::to_owned);
    let local_ms = datetime
        .as_deref()
        .and_then(|d| local_to_utc(d, offset_min));
    Ok(Document {
        fd_number,
        kind,
        datetime,
        local_ms,
        fpd: opt_uint(o, "fpd", "document")?,
        shift: opt_uint(o, "shift", "document")?,
        operation,
        total_kop: opt_int(o, "total_kop", "document")?,
        cash_kop: opt_int(o, "cash_kop", "document")?,
        cashless_kop: opt_int(o, "cashless_kop", "document")?,
    })
}

/// Tag 1012 (`2026-11-22T12:00:06`, the register's wall clock) as Unix ms.
fn local_to_utc(s: &str, offset_min: i32) -> Option<i64> {
    let civil: jiff::civil::DateTime = s.trim().parse().ok()?;
    let utc = jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()?;
    Some(utc.as_millisecond() - i64::from(offset_min) * 60_000)
}

fn driver_error(v: Option<&Value>) -> Result<DriverError, ParseError> {
    let o = object(v.ok_or_else(|| err("error", "missing"))?, "error")?;
    let raw = o
        .get("code")
        .and_then(|c| match c {
            Value::String(s) if !s.trim().is_empty() && s.len() <= 16 => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| err("error.code", "expected a code of 1 to 16 characters"))?;
    if raw
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
    {
        return Err(err("error.code", "expected letters, digits, '-' or '_'"));
    }
    let known = crate::model::lookup(&raw);
    let category = match o.get("category").and_then(Value::as_str) {
        Some(c) => Category::parse(c)
            .ok_or_else(|| err("error.category", format!("unknown category {c:?}")))?,
        None => known.map_or(Category::Other, |k| k.category),
    };
    let blocking = opt_bool(o, "blocking", "error.blocking")?
        .unwrap_or_else(|| known.is_some_and(|k| k.blocking));
    let message = o
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| known.map(|k| k.meaning.to_owned()))
        .unwrap_or_default();
    Ok(DriverError {
        code: crate::model::canonical_code(&raw),
        category,
        message,
        blocking,
    })
}

fn snapshot(obj: &Map<String, Value>) -> Result<Snapshot, ParseError> {
    let mut errors = Vec::new();
    if let Some(v) = obj.get("errors_by_type").filter(|v| !v.is_null()) {
        for (k, n) in object(v, "errors_by_type")? {
            let n =
                uint(n).ok_or_else(|| err(format!("errors_by_type.{k}"), "expected a count"))?;
            errors.push((k.clone(), n));
        }
    }
    Ok(Snapshot {
        status: opt_int(obj, "status", "snapshot")?,
        documents_total: opt_uint(obj, "documents_total", "snapshot")?,
        errors_by_type: errors,
        ofd_sync_status: opt_int(obj, "ofd_sync_status", "snapshot")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"ts":"2026-11-22T09:00:05Z","kkt":{"reg_number":"0001234567012345","serial":"00106712345678","model":"АТОЛ 30Ф","driver":"atol10","ffd":"1.2","autonomous":false},"event":"status","fn":{"number":"7281440500123456","expires_at":"2027-01-10T00:00:00Z","validity_months":15,"memory_used_ratio":0.41,"last_fd_number":18342,"flags":{"resource_exhaustion_30d":false,"urgent_replacement_3d":false,"memory_full_90pct":false,"ofd_timeout":true}},"ofd_queue":{"unsent":57,"first_unsent_fd":18286,"first_unsent_at":"2026-11-19T07:12:44Z","last_ack_at":"2026-11-19T07:10:02Z","unsent_marking_notices":3},"shift":{"number":412,"open":true,"opened_at":"2026-11-22T05:58:10Z","receipts":31}}"#;
    const DOCUMENT: &str = r#"{"ts":"2026-11-22T09:00:07Z","kkt":{"reg_number":"0001234567012345"},"event":"document","document":{"fd_number":18343,"kind":3,"datetime":"2026-11-22T12:00:06","fpd":2938475610,"shift":412,"operation":1,"total_kop":125050,"cash_kop":0,"cashless_kop":125050,"tax_system":2}}"#;
    const ERROR: &str = r#"{"ts":"2026-12-19T08:00:00Z","kkt":{"reg_number":"0001234567012345"},"event":"error","error":{"code":"137","category":"ofd","message":"Ресурс хранения ФД исчерпан","blocking":true}}"#;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_spec_examples_parse() {
        let e = parse_line(STATUS.as_bytes(), 180).unwrap();
        assert_eq!(e.ts, ms("2026-11-22T09:00:05Z"));
        assert_eq!(e.kkt.reg_number, "0001234567012345");
        assert_eq!(e.kkt.driver.as_deref(), Some("atol10"));
        assert_eq!(e.kkt.autonomous, Some(false));
        let f = e.fn_state.unwrap();
        assert_eq!(f.expires_at, Some(ms("2027-01-10T00:00:00Z")));
        assert!(f.flags.unwrap().ofd_timeout);
        let q = e.queue.unwrap();
        assert_eq!(q.unsent, Some(57));
        assert_eq!(q.first_unsent_at, Some(ms("2026-11-19T07:12:44Z")));
        assert_eq!(e.shift.unwrap().opened_at, Some(ms("2026-11-22T05:58:10Z")));
        assert_eq!(e.body, Body::Status { up: true });

        let e = parse_line(DOCUMENT.as_bytes(), 180).unwrap();
        let Body::Document(d) = e.body else { panic!() };
        assert_eq!(d.kind, DocumentKind::Receipt);
        assert_eq!(d.operation, Some(Operation::Sale));
        assert_eq!(d.total_kop, Some(125_050));
        // 12:00:06 Moscow time is 09:00:06 UTC: one second behind the emit time.
        assert_eq!(d.local_ms, Some(ms("2026-11-22T09:00:06Z")));

        let e = parse_line(ERROR.as_bytes(), 180).unwrap();
        let Body::Error(x) = e.body else { panic!() };
        assert_eq!(
            (x.code.as_str(), x.category, x.blocking),
            ("137", Category::Ofd, true)
        );
    }

    #[test]
    fn driver_variants_are_accepted() {
        let e = parse_line(br#"{"time":1763802005,"kkt_id":"stub-kkt-001","type":"error","error":{"code":"0X16"}}"#, 0).unwrap();
        assert_eq!(e.ts, 1_763_802_005_000);
        assert_eq!(e.kkt.reg_number, "stub-kkt-001");
        let Body::Error(x) = e.body else { panic!() };
        // Looked up in the catalogue: shift over 24 h, blocking.
        assert_eq!(
            (x.code.as_str(), x.category, x.blocking),
            ("0x16", Category::Shift, true)
        );

        let e = parse_line(
            br#"{"@timestamp":"1763802005123","kkt":"42","event":"ofd_ack","fd_number":"7"}"#,
            0,
        )
        .unwrap();
        assert_eq!(e.ts, 1_763_802_005_123);
        assert_eq!(e.body, Body::OfdAck { fd_number: Some(7) });

        // Seed 000's metric snapshot.
        let e = parse_line(br#"{"timestamp":"2026-11-22T09:00:05Z","kkt_id":"stub-kkt-002","status":1,"documents_total":2500,"errors_by_type":{"network":3},"ofd_sync_status":1,"shift_status":1,"fd_memory_usage":62.3}"#, 0).unwrap();
        let Body::Snapshot(s) = e.body else { panic!() };
        assert_eq!(s.documents_total, Some(2500));
        assert_eq!(s.errors_by_type, vec![("network".to_owned(), 3)]);

        let e = parse_line(br#"{"ts":"2026-11-22T09:00:05Z","kkt":{"reg_number":"1","utc_offset":"+05:00"},"event":"document","document":{"fd_number":1,"kind":2,"datetime":"2026-11-22T14:00:05"}}"#, 180).unwrap();
        let Body::Document(d) = e.body else { panic!() };
        assert_eq!(d.local_ms, Some(e.ts));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("not json", "line"),
            ("[1]", "line"),
            (r#"{"kkt":{"reg_number":"1"},"event":"status"}"#, "ts"),
            (r#"{"ts":"yesterday","kkt":"1","event":"status"}"#, "ts"),
            (r#"{"ts":1,"event":"status"}"#, "kkt.reg_number"),
            (
                r#"{"ts":1,"kkt":{"reg_number":""},"event":"status"}"#,
                "kkt.reg_number",
            ),
            (r#"{"ts":1,"kkt":"1","event":"dance"}"#, "event"),
            (r#"{"ts":1,"kkt":"1"}"#, "event"),
            (
                r#"{"ts":1,"kkt":"1","event":"document","document":{"kind":3}}"#,
                "document.fd_number",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"document","document":{"fd_number":1,"kind":99}}"#,
                "document.kind",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"document","document":{"fd_number":-1,"kind":3}}"#,
                "document.fd_number",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"error","error":{"code":"a b"}}"#,
                "error.code",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"error","error":{"code":"1","category":"x"}}"#,
                "error.category",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"status","fn":{"memory_used_ratio":1.5}}"#,
                "fn.memory_used_ratio",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"status","fn":{"flags":{"ofd_timeout":"yes"}}}"#,
                "fn.flags.ofd_timeout",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"status","ofd_queue":{"unsent":-3}}"#,
                "ofd_queue.unsent",
            ),
            (
                r#"{"ts":1,"kkt":"1","event":"status","shift":{"opened_at":"soon"}}"#,
                "shift.opened_at",
            ),
            (
                r#"{"ts":1,"kkt":{"reg_number":"1","utc_offset":"+25:00"},"event":"status"}"#,
                "kkt.utc_offset",
            ),
        ];
        for (line, field) in cases {
            let e = parse_line(line.as_bytes(), 0).unwrap_err();
            assert_eq!(&e.field, field, "{line}: {e}");
        }
    }
}
