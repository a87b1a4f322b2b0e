//! A simulated ticket marketplace (`dozor sim marketplace`, and the demo's): seven days of
//! `dozor_detect::fraud::simulator`'s labelled traffic — ordinary buyers with borderline
//! cases, and injected scalpers, bots, night-time takeovers, outlying amounts, unusual API
//! use and shared addresses — moved to end now and sent, in time order, to Dozor's public
//! routes as seed 004's marketplace would: purchases to `/api/v1/analytics/sales/track`,
//! requests to `/api/v1/analytics/fraud/check`. The labels are the ground truth of which
//! patterns the fraud detectors (and the `pack:ticketing` rules) must report.
//!
//! The tickets are NFTs: every purchase is minted on the chain, a few tickets are later
//! transferred, and the marketplace reports each step of each transaction (submitted, then
//! confirmed or failed) as a chain event to `/api/v1/events`. Ordinary traffic fails
//! rarely; the last [`DROP_MS`] hold a popular drop that congests the chain, when a third
//! of the mints fail — the [`CHAIN_FAULT`] the rules must report.

use std::collections::BTreeSet;
use std::time::Duration;

use dozor_detect::fraud::{Event, Kind, Pattern};
use serde_json::{Value, json};

/// Most events in one request.
const CHUNK: usize = 500;

/// The popular drop at the end of the simulated week, ms.
pub const DROP_MS: i64 = 10 * 60 * 1000;
/// The alert the drop must raise, and the operation it names.
pub const CHAIN_FAULT: (&str, &str) = ("ChainFailureRateHigh", "mint");
/// Why chain transactions fail (Solana's errors).
const CHAIN_ERRORS: [&str; 3] = [
    "BlockhashNotFound",
    "InsufficientFundsForRent",
    "TransactionExpired",
];

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

/// A base58 string of `len` characters, as Solana's addresses and signatures are.
fn base58(rng: &mut fastrand::Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.usize(..ALPHABET.len())]))
        .collect()
}

/// The wallet of an account: the same for every draw of one seed.
fn wallet(seed: u64, user: &str) -> String {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in user.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    base58(&mut fastrand::Rng::with_seed(h), 44)
}

/// One transaction's events: submitted at `at_ms`, then confirmed or failed.
#[allow(clippy::too_many_arguments)] // One event's fields, named at the two call sites.
fn transaction(
    out: &mut Vec<Value>,
    rng: &mut fastrand::Rng,
    operation: &str,
    at_ms: i64,
    from: Option<&str>,
    to: &str,
    fail: f64,
    confirm_ms: (u64, u64),
) {
    let signature = base58(rng, 88);
    let token = base58(rng, 44);
    let base = json!({
        "type": "chain-events",
        "service": "marketplace",
        "signature": signature,
        "operation": operation,
        "tokenAddress": token,
        "toAddress": to,
        "amount": 1,
    });
    let mut submitted = base.clone();
    submitted["status"] = json!("submitted");
    submitted["timestamp"] = json!(at_ms);
    if let Some(from) = from {
        submitted["fromAddress"] = json!(from);
    }
    let took = rng.u64(confirm_ms.0..confirm_ms.1);
    let mut settled = submitted.clone();
    settled["timestamp"] = json!(at_ms.saturating_add_unsigned(took));
    if rng.f64() < fail {
        settled["status"] = json!("failed");
        settled["error"] = json!(CHAIN_ERRORS[rng.usize(..CHAIN_ERRORS.len())]);
    } else {
        settled["status"] = json!("confirmed");
        settled["confirmationMs"] = json!(took);
    }
    out.push(submitted);
    out.push(settled);
}

/// The chain events of the simulated week `events` (ending at `end_ms`), in time order:
/// a mint per purchase, a transfer for about one ticket in 25, and the popular drop of the
/// last [`DROP_MS`].
pub fn chain_events(seed: u64, events: &[Event], end_ms: i64) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(0xc4a1));
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.kind == Kind::Purchase) {
        let buyer = wallet(seed, &e.user);
        transaction(
            &mut out,
            &mut rng,
            "mint",
            e.at_ms + 200,
            None,
            &buyer,
            0.01,
            (400, 2_500),
        );
        if rng.f64() < 0.04 {
            let at = e.at_ms + rng.i64(3_600_000..2 * 86_400_000);
            let to = base58(&mut rng, 44);
            transaction(
                &mut out,
                &mut rng,
                "transfer",
                at,
                Some(&buyer),
                &to,
                0.02,
                (400, 2_500),
            );
        }
    }
    // The drop: 300 mints for buyers of its own, a third failing on a congested chain.
    for i in 0..300 {
        let at = end_ms - DROP_MS + i * DROP_MS / 300;
        let to = base58(&mut rng, 44);
        transaction(
            &mut out,
            &mut rng,
            "mint",
            at,
            None,
            &to,
            0.35,
            (3_000, 12_000),
        );
    }
    out.retain(|v| v["timestamp"].as_i64().is_some_and(|t| t <= end_ms));
    out.sort_by_key(|v| v["timestamp"].as_i64());
    out
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
    /// Chain events reported.
    pub chain: usize,
}

/// POSTs `body` as JSON to `base` + `path`; the answer's JSON (`null` if it is none).
async fn post(base: &str, token: &str, path: &str, body: &[Value]) -> Result<Value, String> {
    let headers = vec![
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let (status, answer) = dozor_ingest::probe::send_http_body(
        &format!("{base}{path}"),
        "POST",
        &headers,
        Some(serde_json::to_vec(body).map_err(|e| e.to_string())?),
        Duration::from_secs(30),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "{path}: HTTP {status}: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// Sends `events` (in time order) to the Dozor at `base_url` with the API token `token`
/// (ingest scope): each run of purchases to `sales/track`, each run of requests to
/// `fraud/check`, at most [`CHUNK`] a call, so the detectors see them in order; then the
/// `chain` events to `/api/v1/events`.
pub async fn feed(
    base_url: &str,
    token: &str,
    events: &[Event],
    chain: &[Value],
) -> Result<Fed, String> {
    let base = base_url.trim_end_matches('/');
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
        let v = post(base, token, path, &body).await?;
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
    for part in chain.chunks(CHUNK * 4) {
        post(base, token, "/api/v1/events", part).await?;
        fed.chain += part.len();
    }
    Ok(fed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purchase_is_minted_and_the_drop_fails_a_third_of_its_mints() {
        let end = 1_800_000_000_000;
        let (events, _) = simulated(7, 60, end);
        let chain = chain_events(7, &events, end);
        let settled = |v: &&Value| v["status"] != "submitted";
        let purchases = events.iter().filter(|e| e.kind == Kind::Purchase).count();
        // Every purchase is minted to its buyer's wallet, but for the last few, whose
        // confirmation comes after the end.
        let wallets: BTreeSet<String> = events.iter().map(|e| wallet(7, &e.user)).collect();
        let minted = chain
            .iter()
            .filter(settled)
            .filter(|v| v["operation"] == "mint")
            .filter(|v| wallets.contains(v["toAddress"].as_str().unwrap_or("")))
            .count();
        let late = events
            .iter()
            .filter(|e| e.kind == Kind::Purchase && e.at_ms > end - 3_000)
            .count();
        assert!(
            minted <= purchases && minted + late >= purchases,
            "{minted} of {purchases}"
        );
        assert!(
            chain
                .windows(2)
                .all(|w| w[0]["timestamp"].as_i64() <= w[1]["timestamp"].as_i64())
        );
        let in_drop: Vec<&Value> = chain
            .iter()
            .filter(settled)
            .filter(|v| v["timestamp"].as_i64() > Some(end - DROP_MS / 2))
            .collect();
        let failed = in_drop.iter().filter(|v| v["status"] == "failed").count();
        assert!(in_drop.len() >= 100, "{}", in_drop.len());
        let ratio = failed as f64 / in_drop.len() as f64;
        assert!((0.2..0.5).contains(&ratio), "{ratio}");
        // Before the drop, failures are rare.
        let before: Vec<&Value> = chain
            .iter()
            .filter(settled)
            .filter(|v| v["timestamp"].as_i64() < Some(end - DROP_MS))
            .collect();
        let failed = before.iter().filter(|v| v["status"] == "failed").count();
        assert!(failed * 20 < before.len(), "{failed} of {}", before.len());
        // A buyer keeps one wallet; signatures are unique.
        assert_eq!(wallet(7, "u1"), wallet(7, "u1"));
        assert_ne!(wallet(7, "u1"), wallet(7, "u2"));
        let sigs: BTreeSet<&str> = chain
            .iter()
            .filter(settled)
            .filter_map(|v| v["signature"].as_str())
            .collect();
        assert_eq!(sigs.len(), chain.iter().filter(settled).count());
    }
}
