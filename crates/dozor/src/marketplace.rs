//! A simulated ticket marketplace (`dozor sim marketplace`, and the demo's): seven days of
//! `dozor_detect::fraud::simulator`'s labelled traffic — ordinary buyers with borderline
//! cases, and injected scalpers, bots, night-time takeovers, outlying amounts, unusual API
//! use and shared addresses — moved to end now and sent, in time order, to Dozor's public
//! routes as seed 004's marketplace would: purchases to `/api/v1/analytics/sales/track`,
//! requests to `/api/v1/analytics/fraud/check`. The labels are the ground truth of which
//! patterns the fraud detectors (and the `pack:ticketing` rules) must report.

use std::collections::BTreeSet;
use std::time::Duration;

use dozor_detect::fraud::{Event, Kind, Pattern};
use serde_json::{Value, json};

/// Most events in one request.
const CHUNK: usize = 500;

/// The simulated stream, ending at `end_ms`, and its labels.
pub fn simulated(seed: u64, users: usize, end_ms: i64) -> (Vec<Event>, Vec<(Pattern, String)>) {
    let s = dozor_detect::fraud::simulator::simulate(seed, users);
    let last = s.events.last().map_or(end_ms, |e| e.at_ms);
    let shift = end_ms - last;
    let events = s
        .events
        .into_iter()
        .map(|mut e| {
            e.at_ms += shift;
            e
        })
        .collect();
    (events, s.labels)
}

/// The patterns the labels name (what `pack:ticketing` must alert on).
pub fn patterns(labels: &[(Pattern, String)]) -> BTreeSet<&'static str> {
    labels.iter().map(|(p, _)| p.name()).collect()
}

/// An event as seed 004's marketplace sends it.
fn payload(e: &Event) -> Value {
    let mut v = json!({
        "userId": e.user,
        "ip": e.ip,
        "timestamp": e.at_ms,
    });
    match e.kind {
        Kind::Purchase => {
            v["kind"] = json!("purchase");
            v["quantity"] = json!(e.quantity.max(1));
            if let Some(item) = &e.item {
                v["eventId"] = json!(item);
            }
            if let Some(card) = &e.card {
                v["card"] = json!(card);
            }
            if let Some(a) = e.amount {
                v["price"] = json!((a * 100.0).round() / 100.0);
            }
            if let Some(m) = &e.merchant {
                v["merchant"] = json!(m);
            }
        }
        Kind::Request => {
            v["kind"] = json!("request");
            if let Some(ep) = &e.endpoint {
                v["endpoint"] = json!(ep);
            }
        }
    }
    v
}

/// What a feed sent and what came back.
#[derive(Debug, Default, Clone)]
pub struct Fed {
    /// Purchases tracked.
    pub sales: usize,
    /// Requests checked.
    pub requests: usize,
    /// Findings reported, by pattern.
    pub findings: std::collections::BTreeMap<String, usize>,
}

/// Sends `events` (in time order) to the Dozor at `base_url` with the API token `token`
/// (ingest scope): each run of purchases to `sales/track`, each run of requests to
/// `fraud/check`, at most [`CHUNK`] a call, so the detectors see them in order.
pub async fn feed(base_url: &str, token: &str, events: &[Event]) -> Result<Fed, String> {
    let base = base_url.trim_end_matches('/');
    let headers = vec![
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let mut fed = Fed::default();
    let mut i = 0;
    while i < events.len() {
        let kind = events[i].kind;
        let mut j = i;
        while j < events.len() && events[j].kind == kind && j - i < CHUNK {
            j += 1;
        }
        let body: Vec<Value> = events[i..j].iter().map(payload).collect();
        let path = match kind {
            Kind::Purchase => "/api/v1/analytics/sales/track",
            Kind::Request => "/api/v1/analytics/fraud/check",
        };
        let (status, answer) = dozor_ingest::probe::send_http_body(
            &format!("{base}{path}"),
            "POST",
            &headers,
            Some(serde_json::to_vec(&body).map_err(|e| e.to_string())?),
            Duration::from_secs(30),
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let findings = v["data"]["fraud"]
            .as_array()
            .or_else(|| v["data"]["findings"].as_array())
            .cloned()
            .unwrap_or_default();
        for f in findings {
            if let Some(p) = f["pattern"].as_str() {
                *fed.findings.entry(p.to_owned()).or_default() += 1;
            }
        }
        match kind {
            Kind::Purchase => fed.sales += j - i,
            Kind::Request => fed.requests += j - i,
        }
        i = j;
    }
    Ok(fed)
}
