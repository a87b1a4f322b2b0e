//! Business events (`POST /api/v1/events`): transactions, orders, ticket sales, user
//! activity — structured records kept in the log store beside the logs, queried with the
//! same LogQL (`sum by (user_id) (count_over_time({event="transaction"} | amount > 10000
//! [5m]))`).
//!
//! The body is a JSON array of event objects, `{"events": [...]}`, or one object. In each:
//!
//! - the type is `type`, else `event_type` or `event` (required; lower-cased): it becomes
//!   the stream label `event`; `service` or `source`, if present, the label `service`;
//!   `data_class` (one of technical, business, security, personal; default `business`) the
//!   label `data_class`, which decides which roles see the event;
//! - the time is `time`, else `timestamp`, `_time`, `ts` or `created_at` (as NDJSON: RFC
//!   3339 or a number of s/ms/µs/ns); absent, the time of the request;
//! - the message is `message`, else `msg` or `description`; absent, the type;
//! - every other member is a field, its name in snake_case (`userId` → `user_id`, so seed
//!   004's JavaScript shapes and seed 001's Python shapes meet under one name); nested
//!   objects flatten to dotted names; numbers keep their JSON text.
//!
//! Types the shipped rules rely on are checked, and a wrong field is a 400 naming it
//! (`events[3].amount: expected a number, found "ten"`): `transaction` needs a numeric
//! `amount` and a `user_id`; `ticket_sale`/`ticket-sales` a numeric `price` (or
//! `amount`); `user_activity`/`user-activity` a `user_id` and an `action`; a chain event
//! ([`CHAIN_TYPES`]: seed 004's `chain-events` topic, its `nft_transfers`) a `signature`,
//! a `status` of [`CHAIN_STATUSES`], and numbers in `amount` and `confirmation_ms` if it
//! has them. Other types are free-form. A body decodes whole or not at all.

use dozor_model::{DataClass, Label, Labels, LogRecord};
use serde_json::{Map, Value};

use crate::IngestError;
use crate::ndjson::{parse_time, with_fields};

/// Most events in one request.
pub const MAX_EVENTS: usize = 100_000;

/// The spellings of a chain event's type: a transaction of a blockchain — an NFT mint,
/// transfer or burn (`operation`) — at one step of its life (`status`), identified by its
/// `signature`. Dozor only watches them: the marketplace submits the transactions.
pub const CHAIN_TYPES: [&str; 6] = [
    "chain-events",
    "chain_events",
    "chain-event",
    "chain_event",
    "nft_transfer",
    "nft_transfers",
];

/// A chain event's statuses, in the order of a transaction's life: `failed` and
/// `confirmed` settle it (the failure rate is failed ÷ settled); `finalized` may follow
/// `confirmed`.
pub const CHAIN_STATUSES: [&str; 5] = ["submitted", "pending", "confirmed", "finalized", "failed"];

/// The LogQL stream selector of chain events (every spelling of [`CHAIN_TYPES`]).
pub fn chain_selector() -> String {
    format!("{{event=~\"{}\"}}", CHAIN_TYPES.join("|"))
}

const TYPE_KEYS: [&str; 3] = ["type", "event_type", "event"];
/// The data classes an event may name (`data_class`; default `business`).
const CLASSES: [&str; 4] = ["technical", "business", "security", "personal"];
const TIME_KEYS: [&str; 5] = ["time", "timestamp", "_time", "ts", "created_at"];
const MESSAGE_KEYS: [&str; 3] = ["message", "msg", "description"];
const SERVICE_KEYS: [&str; 2] = ["service", "source"];

/// Decodes a body of events; `now_ns` is the time of events without one, `default_type`
/// the type of events without one (a bus topic that carries one kind, such as seed 001's
/// `transactions`; `None` on the HTTP route, where a type is required).
pub fn parse(
    body: &[u8],
    now_ns: i64,
    default_type: Option<&str>,
) -> Result<Vec<LogRecord>, IngestError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::new("body", format!("invalid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.remove("events") {
            Some(Value::Array(items)) if obj.is_empty() => items,
            Some(_) if obj.is_empty() => {
                return Err(IngestError::new(
                    "events",
                    "must be an array of event objects",
                ));
            }
            Some(events) => {
                obj.insert("events".into(), events);
                vec![Value::Object(obj)]
            }
            None => vec![Value::Object(obj)],
        },
        _ => {
            return Err(IngestError::new(
                "body",
                "expected an event object, an array of them, or {\"events\": [...]}",
            ));
        }
    };
    if items.len() > MAX_EVENTS {
        return Err(IngestError::new(
            "events",
            format!(
                "{} events in one request, at most {MAX_EVENTS}",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(obj) = item else {
                return Err(IngestError::new(
                    format!("events[{i}]"),
                    "not a JSON object",
                ));
            };
            event(obj, now_ns, default_type).map_err(|(field, m)| {
                IngestError::new(
                    if field.is_empty() {
                        format!("events[{i}]")
                    } else {
                        format!("events[{i}].{field}")
                    },
                    m,
                )
            })
        })
        .collect()
}

fn take(obj: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter().find_map(|k| obj.remove(*k))
}

fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// One event, or the field at fault and why.
fn event(
    obj: Map<String, Value>,
    now_ns: i64,
    default_type: Option<&str>,
) -> Result<LogRecord, (String, String)> {
    // snake_case names first, so `eventType` and `event_type` are one key.
    let mut obj: Map<String, Value> = obj.into_iter().map(|(k, v)| (snake_case(&k), v)).collect();
    let kind = match take(&mut obj, &TYPE_KEYS) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_lowercase(),
        Some(_) => return Err(("type".into(), "must be a non-empty string".into())),
        None => match default_type {
            Some(t) if !t.trim().is_empty() => t.trim().to_lowercase(),
            _ => return Err((String::new(), "no type (type, event_type or event)".into())),
        },
    };
    let time_ns = match take(&mut obj, &TIME_KEYS) {
        Some(v) => parse_time(&v).map_err(|m| ("time".to_owned(), m))?,
        None => now_ns,
    };
    let message = take(&mut obj, &MESSAGE_KEYS)
        .map(text)
        .unwrap_or_else(|| kind.clone());
    let mut labels = vec![Label {
        name: "event".into(),
        value: kind.clone(),
    }];
    if let Some(s) = take(&mut obj, &SERVICE_KEYS) {
        labels.push(Label {
            name: "service".into(),
            value: text(s),
        });
    }
    let class = match take(&mut obj, &[DataClass::LABEL]) {
        None => DataClass::Business.as_str().to_owned(),
        Some(v) => {
            let v = text(v);
            if !CLASSES.contains(&v.as_str()) {
                return Err((
                    DataClass::LABEL.to_owned(),
                    format!("{v:?} is not one of {}", CLASSES.join(", ")),
                ));
            }
            v
        }
    };
    labels.push(Label {
        name: DataClass::LABEL.into(),
        value: class,
    });
    check_shape(&kind, &obj)?;
    let stream = Labels::new(labels).map_err(|e| ("type".to_owned(), e.to_string()))?;
    Ok(with_fields(time_ns, stream, message, obj))
}

/// The typed fields of the event types shipped rules use.
fn check_shape(kind: &str, obj: &Map<String, Value>) -> Result<(), (String, String)> {
    let number = |name: &str| -> Result<bool, (String, String)> {
        match obj.get(name) {
            None => Ok(false),
            Some(Value::Number(_)) => Ok(true),
            Some(Value::String(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(true),
            Some(other) => Err((name.to_owned(), format!("expected a number, found {other}"))),
        }
    };
    let id = |name: &str| -> Result<(), (String, String)> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Number(_)) => Ok(()),
            Some(other) => Err((
                name.to_owned(),
                format!("expected a string or number, found {other}"),
            )),
            None => Err((name.to_owned(), format!("required for {kind} events"))),
        }
    };
    match kind {
        "transaction" | "transactions" => {
            id("user_id")?;
            if !number("amount")? {
                return Err(("amount".into(), "required for transaction events".into()));
            }
        }
        "ticket_sale" | "ticket-sale" | "ticket-sales" | "ticket_sales"
            if !number("price")? && !number("amount")? =>
        {
            return Err((
                "price".into(),
                "required (or amount) for ticket sale events".into(),
            ));
        }
        "user_activity" | "user-activity" => {
            id("user_id")?;
            id("action")?;
        }
        k if CHAIN_TYPES.contains(&k) => {
            id("signature")?;
            match obj.get("status") {
                Some(Value::String(s)) if CHAIN_STATUSES.contains(&s.as_str()) => {}
                Some(other) => {
                    return Err((
                        "status".into(),
                        format!("{other} is not one of {}", CHAIN_STATUSES.join(", ")),
                    ));
                }
                None => return Err(("status".into(), format!("required for {kind} events"))),
            }
            number("amount")?;
            number("confirmation_ms")?;
        }
        _ => {}
    }
    Ok(())
}

/// `userId` → `user_id`, `HTTPStatus` → `http_status`; names already in snake_case, or
/// with dots or dashes, keep them.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && chars[i - 1] != '_' && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_119_200_000_000_000;

    #[test]
    fn seed_shapes_become_records() {
        let body = br#"[
            {"type": "transaction", "transaction_id": "tx-1", "user_id": 42, "amount": 12500.5, "currency": "RUB", "timestamp": 1796119200},
            {"eventType": "ticket-sales", "ticketId": "T-9", "eventId": "E-1", "userId": "u7", "price": "99.90", "venue": {"city": "Kazan"}, "source": "marketplace"},
            {"event": "user-activity", "userId": "u7", "action": "login", "ip": "10.0.0.1", "createdAt": "2026-12-01T10:00:01.5Z"}
        ]"#;
        let r = parse(body, NOW, None).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].stream,
            Labels::from_pairs([("data_class", "business"), ("event", "transaction")]).unwrap()
        );
        assert_eq!(r[0].time_ns, NOW);
        assert_eq!(r[0].message, "transaction");
        assert_eq!(r[0].field("amount"), Some("12500.5"));
        assert_eq!(r[0].field("user_id"), Some("42"));
        assert_eq!(
            r[1].stream,
            Labels::from_pairs([
                ("data_class", "business"),
                ("event", "ticket-sales"),
                ("service", "marketplace")
            ])
            .unwrap()
        );
        assert_eq!(r[1].field("ticket_id"), Some("T-9"));
        assert_eq!(r[1].field("venue.city"), Some("Kazan"));
        assert_eq!(r[1].time_ns, NOW, "no time: the request's");
        assert_eq!(r[2].time_ns, NOW + 1_500_000_000);
        assert_eq!(r[2].field("action"), Some("login"));
        // Wrapped and single forms.
        assert_eq!(
            parse(br#"{"events": [{"type": "order", "id": 1}]}"#, NOW, None)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse(
                br#"{"type": "order", "id": 1, "message": "order placed"}"#,
                NOW,
                None
            )
            .unwrap()[0]
                .message,
            "order placed"
        );
    }

    #[test]
    fn wrong_fields_are_named() {
        for (body, field, needle) in [
            (
                &br#"[{"type": "transaction", "user_id": 1, "amount": "ten"}]"#[..],
                "events[0].amount",
                "expected a number",
            ),
            (
                br#"[{"type": "order"}, {"type": "transaction", "amount": 5}]"#,
                "events[1].user_id",
                "required",
            ),
            (
                br#"[{"type": "transaction", "user_id": 1}]"#,
                "events[0].amount",
                "required",
            ),
            (
                br#"[{"type": "user-activity", "user_id": "u"}]"#,
                "events[0].action",
                "required",
            ),
            (
                br#"[{"type": "ticket_sale", "price": true}]"#,
                "events[0].price",
                "expected a number",
            ),
            (br#"[{"id": 1}]"#, "events[0]", "no type"),
            (br#"[{"type": ""}]"#, "events[0].type", "non-empty"),
            (
                br#"[{"type": "x", "time": "yesterday"}]"#,
                "events[0].time",
                "RFC 3339",
            ),
            (
                br#"[{"type": "chain-events", "status": "confirmed"}]"#,
                "events[0].signature",
                "required",
            ),
            (
                br#"[{"type": "nft_transfer", "signature": "5x", "status": "lost"}]"#,
                "events[0].status",
                "not one of submitted",
            ),
            (
                br#"[{"type": "chain_event", "signature": "5x"}]"#,
                "events[0].status",
                "required",
            ),
            (
                br#"[{"type": "chain-events", "signature": "5x", "status": "failed", "confirmationMs": "slow"}]"#,
                "events[0].confirmation_ms",
                "expected a number",
            ),
            (br#"[1]"#, "events[0]", "not a JSON object"),
            (br#"{"events": 3}"#, "events", "array"),
            (br#""x""#, "body", "expected"),
            (br#"{"type": "#, "body", "invalid JSON"),
        ] {
            let e = parse(body, NOW, None).unwrap_err();
            assert_eq!(e.field, field, "{}: {e}", String::from_utf8_lossy(body));
            assert!(
                e.message.contains(needle),
                "{}: {e}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn chain_events_keep_their_transaction_fields() {
        let body = br#"[{"signature": "5VfYt", "operation": "mint", "status": "confirmed",
            "tokenAddress": "Tok1", "toAddress": "Wal9", "amount": 1, "confirmationMs": 840}]"#;
        let r = parse(body, NOW, Some("chain-events")).unwrap();
        assert_eq!(r[0].stream.get("event"), Some("chain-events"));
        assert_eq!(r[0].field("signature"), Some("5VfYt"));
        assert_eq!(r[0].field("token_address"), Some("Tok1"));
        assert_eq!(r[0].field("confirmation_ms"), Some("840"));
        assert_eq!(
            chain_selector(),
            r#"{event=~"chain-events|chain_events|chain-event|chain_event|nft_transfer|nft_transfers"}"#
        );
    }

    #[test]
    fn a_default_type_names_untyped_events_only() {
        let body = br#"[{"user_id": "u1", "amount": 5}, {"type": "Refund", "user_id": "u1"}]"#;
        let r = parse(body, NOW, Some("Transaction")).unwrap();
        assert_eq!(r[0].stream.get("event"), Some("transaction"));
        assert_eq!(r[1].stream.get("event"), Some("refund"));
        assert!(parse(body, NOW, None).is_err());
        // The default type's shape is checked like a stated one.
        let e = parse(br#"{"user_id": "u1"}"#, NOW, Some("transaction")).unwrap_err();
        assert_eq!(e.field, "events[0].amount");
    }

    #[test]
    fn snake_case_names() {
        for (a, b) in [
            ("userId", "user_id"),
            ("HTTPStatus", "http_status"),
            ("user_id", "user_id"),
            ("ticketID", "ticket_id"),
            ("a.bC", "a.b_c"),
            ("ip", "ip"),
            ("IP", "ip"),
        ] {
            assert_eq!(snake_case(a), b, "{a}");
        }
    }
}
