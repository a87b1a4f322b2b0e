//! Seed 004's ticketing analytics and fraud routes: sales tracked as business events and
//! judged by the fraud detectors — a scalper buying past the limit is found, stored in
//! `fraud_events`, counted in `fraud_findings_total` — sales metrics of an event from the
//! stored events, fraud checks without storing, the investigation workflow (who, when,
//! outcome), and who may read findings (security data: not the scoped roles).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn a_scalper_is_found_stored_investigated_and_counted() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let shop = app.token_bearer(&admin, "marketplace", &["ingest"]).await;
    let now = dozor_model::time::now_ms();
    // Ordinary buyers: two tickets each for event E-1.
    let ordinary: Vec<Value> = (0..5)
        .map(|i| {
            json!({"eventId": "E-1", "ticketId": format!("T-{i}"), "userId": format!("u{i}"),
                        "price": 1500, "quantity": 2, "ip": format!("10.0.0.{i}"),
                        "timestamp": now - 3_600_000 + i * 60_000})
        })
        .collect();
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/analytics/sales/track",
            Some(&shop),
            Some(json!(ordinary)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["accepted"], 5);
    assert_eq!(body["data"]["riskLevel"], "none");
    // A scalper: purchases of 4 tickets; past 8 for one event (the default limit) the
    // account, its card and its address are reported, each once in the window.
    let mut found = Vec::new();
    for i in 0..4 {
        let (s, body) = app
            .call(
                "POST",
                "/api/v1/analytics/sales/track",
                Some(&shop),
                Some(json!({"eventId": "E-1", "userId": "scalper", "price": 1500, "quantity": 4,
                            "ip": "192.0.2.7", "card": "card-9", "timestamp": now - 1_800_000 + i * 1000})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let fraud = body["data"]["fraud"].as_array().unwrap().clone();
        if i < 2 {
            assert!(fraud.is_empty(), "8 tickets are within the limit: {body}");
        } else if !fraud.is_empty() {
            assert_ne!(body["data"]["riskLevel"], "none", "{body}");
        }
        found.extend(fraud);
    }
    assert!(!found.is_empty(), "the scalper is found");
    assert!(found.iter().all(|f| f["pattern"] == "scalper"), "{found:?}");
    let subjects: Vec<&str> = found
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"user:scalper"), "{subjects:?}");
    assert_eq!(
        subjects.len(),
        subjects
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "each subject once: {subjects:?}"
    );

    // Bad input names the field.
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/analytics/sales/track",
            Some(&shop),
            Some(json!([{"eventId": "E-1", "price": 10}])),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("userId"), "{body}");
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/analytics/sales/track",
            Some(&shop),
            Some(json!([{"userId": "u", "price": "ten"}])),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("price"), "{body}");

    // The sales of E-1, from the stored events: 5 × 2 + 4 × 4 tickets.
    let (s, sales) = app
        .call(
            "GET",
            "/api/v1/analytics/sales/E-1?range=2h",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sales}");
    assert_eq!(sales["data"]["sales"], 9.0, "{sales}");
    assert_eq!(sales["data"]["tickets"], 26.0, "{sales}");
    assert_eq!(sales["data"]["revenue"], 13_500.0, "{sales}");
    assert_eq!(sales["data"]["buyers"], 6.0, "{sales}");

    // The findings, their metrics, the investigation.
    let (_, list) = app
        .call(
            "GET",
            "/api/v1/fraud/events?pattern=scalper&investigated=false",
            Some(&admin),
            None,
        )
        .await;
    let events = list["data"]["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{list}");
    let id = events[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(events[0]["userId"], "scalper");
    assert_eq!(events[0]["data"]["eventId"], "E-1");
    let (s, body) = app
        .call(
            "POST",
            &format!("/api/v1/fraud/events/{id}/investigate"),
            Some(&admin),
            Some(json!({"outcome": "maybe"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = app
        .call(
            "POST",
            &format!("/api/v1/fraud/events/{id}/investigate"),
            Some(&admin),
            Some(json!({"outcome": "confirmed", "note": "resold on a forum"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["investigated"], true);
    assert_eq!(body["data"]["investigatedBy"], "admin");
    assert_eq!(body["data"]["outcome"], "confirmed");
    let (_, m) = app
        .call("GET", "/api/v1/analytics/fraud/metrics", Some(&admin), None)
        .await;
    assert!(
        m["data"]["byPattern"]["scalper"].as_i64().unwrap() >= 1,
        "{m}"
    );
    assert_eq!(m["data"]["byOutcome"]["confirmed"], 1, "{m}");
    assert_eq!(
        m["data"]["open"].as_i64().unwrap(),
        m["data"]["total"].as_i64().unwrap() - 1
    );
    // Counted for rules.
    let (_, q) = app
        .call(
            "GET",
            "/api/v1/query?query=sum(fraud_findings_total%7Bpattern%3D%22scalper%22%7D)",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        q["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 1.0,
        "{q}"
    );

    // A check judges without storing the event: a bot's burst of requests.
    let burst: Vec<Value> = (0..70)
        .map(|i| json!({"kind": "request", "userId": "bot-1", "ip": "198.51.100.3", "endpoint": "/api/events", "timestamp": now - 50_000 + i * 500}))
        .collect();
    let (s, c) = app
        .call(
            "POST",
            "/api/v1/analytics/fraud/check",
            Some(&shop),
            Some(json!(burst)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(
        c["data"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["pattern"] == "bot"),
        "{c}"
    );
    let (_, sales) = app
        .call(
            "GET",
            "/api/v1/analytics/sales/E-1?range=2h",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(sales["data"]["sales"], 9.0, "a check stores no sale");

    // Findings are security data: scoped roles may not read them; sales they may.
    app.add_user("default", "biz", "a-long-password-1", Role::Business)
        .await;
    app.add_user("default", "sup", "a-long-password-1", Role::Support)
        .await;
    for who in ["biz", "sup"] {
        let auth = app.bearer(who, "a-long-password-1").await;
        let (s, _) = app
            .call("GET", "/api/v1/fraud/events", Some(&auth), None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
        let (s, d) = app
            .call(
                "GET",
                "/api/v1/analytics/dashboard?range=2h",
                Some(&auth),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{who}");
        assert_eq!(d["data"]["fraud"], Value::Null, "{who}");
        assert_eq!(d["data"]["sales"]["sales"], 9.0, "{who}: {d}");
    }
    let (_, d) = app
        .call(
            "GET",
            "/api/v1/analytics/dashboard?range=2h",
            Some(&admin),
            None,
        )
        .await;
    assert!(d["data"]["fraud"]["total"].as_i64().unwrap() >= 2, "{d}");

    // Another tenant sees none of it.
    app.add_user("other", "oadmin", "a-long-password-1", Role::Admin)
        .await;
    let other = app.bearer("oadmin", "a-long-password-1").await;
    let (_, l) = app
        .call("GET", "/api/v1/fraud/events", Some(&other), None)
        .await;
    assert_eq!(l["data"]["events"], json!([]));
    let (s, _) = app
        .call(
            "GET",
            &format!("/api/v1/fraud/events/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, sales) = app
        .call(
            "GET",
            "/api/v1/analytics/sales/E-1?range=2h",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(sales["data"]["sales"], 0.0);
}

#[tokio::test]
async fn chain_events_fold_into_transactions_with_their_latest_state() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let shop = app.token_bearer(&admin, "marketplace", &["ingest"]).await;
    let t = dozor_model::time::now_ms() - 600_000;
    let ev = |sig: &str, op: &str, status: &str, at: i64, extra: Value| {
        let mut v = json!({"type": "chain-events", "signature": sig, "operation": op,
                           "status": status, "timestamp": at, "tokenAddress": format!("tok-{sig}")});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    // A: a mint, confirmed; B: a transfer out of A's wallet, failed; C: still pending.
    // The events come out of order: the state is the newest, whatever the arrival.
    let events = json!([
        ev(
            "A",
            "mint",
            "confirmed",
            t + 900,
            json!({"toAddress": "W1", "confirmationMs": 900})
        ),
        ev("A", "mint", "submitted", t, json!({"toAddress": "W1"})),
        ev(
            "B",
            "transfer",
            "submitted",
            t + 60_000,
            json!({"fromAddress": "W1", "toAddress": "W2"})
        ),
        ev(
            "B",
            "transfer",
            "failed",
            t + 61_000,
            json!({"fromAddress": "W1", "toAddress": "W2", "error": "BlockhashNotFound"})
        ),
        ev(
            "C",
            "mint",
            "submitted",
            t + 120_000,
            json!({"toAddress": "W3"})
        ),
    ]);
    let (s, body) = app
        .call("POST", "/api/v1/events", Some(&shop), Some(events))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["accepted"], 5);

    let get = |path: &str| {
        let (app, admin, path) = (&app, admin.clone(), path.to_owned());
        async move { app.call("GET", &path, Some(&admin), None).await }
    };
    let (s, body) = get("/api/v1/chain/transactions").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let txs = body["data"]["transactions"].as_array().unwrap();
    let states: Vec<(&str, &str)> = txs
        .iter()
        .map(|x| {
            (
                x["signature"].as_str().unwrap(),
                x["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("C", "submitted"), ("B", "failed"), ("A", "confirmed")]
    );
    assert_eq!(txs[1]["error"], "BlockhashNotFound");
    assert_eq!(txs[1]["fromAddress"], "W1");
    assert_eq!(txs[2]["confirmationMs"], 900.0);
    assert_eq!(txs[2]["events"], 2);
    assert_eq!(txs[2]["tokenAddress"], "tok-A");
    for (query, expected) in [
        ("status=failed", vec!["B"]),
        ("address=W1", vec!["B", "A"]),
        ("operation=mint", vec!["C", "A"]),
        ("token=tok-C", vec!["C"]),
        ("operation=mint&limit=1", vec!["C"]),
        ("range=1m", vec![]),
    ] {
        let (s, body) = get(&format!("/api/v1/chain/transactions?{query}")).await;
        assert_eq!(s, StatusCode::OK, "{query}: {body}");
        let got: Vec<&str> = body["data"]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["signature"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "{query}");
    }
    let (s, body) = get("/api/v1/chain/transactions/A").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let history: Vec<&str> = body["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["submitted", "confirmed"]);
    assert_eq!(body["data"]["history"][1]["confirmationMs"], 900.0);
    assert_eq!(body["data"]["status"], "confirmed");

    let (s, body) = get("/api/v1/chain/metrics?range=1h").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ops = body["data"]["operations"].as_array().unwrap();
    let op = |name: &str| ops.iter().find(|o| o["operation"] == name).unwrap().clone();
    assert_eq!(
        op("mint")["events"],
        json!({"submitted": 2.0, "confirmed": 1.0})
    );
    assert_eq!(op("mint")["failureRatio"], 0.0);
    assert_eq!(op("mint")["confirmationMs"]["p95"], 900.0);
    assert_eq!(op("transfer")["failureRatio"], 1.0);
    assert_eq!(op("transfer")["confirmationMs"], Value::Null);
    assert_eq!(
        body["data"]["errors"],
        json!([{"operation": "transfer", "error": "BlockhashNotFound", "count": 1.0}])
    );

    // The chain's RPC nodes, from the `jsonrpc` probes: one healthy, one failing.
    let now = dozor_model::time::now_ms();
    let probes = json!([
        {"name": "probe_success", "value": 1, "timestamp": now - 5_000,
         "labels": {"job": "probe", "probe": "solana-a", "kind": "jsonrpc"}},
        {"name": "probe_success", "value": 0, "timestamp": now - 5_000,
         "labels": {"job": "probe", "probe": "solana-b", "kind": "jsonrpc"}},
        {"name": "probe_duration_seconds", "value": 0.25, "timestamp": now - 5_000,
         "labels": {"job": "probe", "probe": "solana-a", "kind": "jsonrpc"}},
        {"name": "probe_success", "value": 0, "timestamp": now - 5_000,
         "labels": {"job": "probe", "probe": "shop-web", "kind": "http"}}
    ]);
    let (s, body) = app
        .call("POST", "/api/v1/metrics", Some(&shop), Some(probes))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, body) = get("/api/v1/chain/metrics?range=1h").await;
    assert_eq!(
        body["data"]["rpc"],
        json!([
            {"probe": "solana-a", "up": true, "durationSeconds": 0.25},
            {"probe": "solana-b", "up": false, "durationSeconds": null}
        ]),
        "the jsonrpc probes only"
    );

    // Bad input names the parameter or the field; an unknown transaction is not found.
    for (path, status, needle) in [
        (
            "/api/v1/chain/transactions?status=lost",
            StatusCode::BAD_REQUEST,
            "\"status\"",
        ),
        (
            "/api/v1/chain/transactions?range=1y",
            StatusCode::BAD_REQUEST,
            "\"range\"",
        ),
        (
            "/api/v1/chain/transactions?limit=20000",
            StatusCode::BAD_REQUEST,
            "\"limit\"",
        ),
        ("/api/v1/chain/transactions/Z", StatusCode::NOT_FOUND, "Z"),
    ] {
        let (s, body) = get(path).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    let (s, body) = app
        .call(
            "POST",
            "/api/v1/events",
            Some(&shop),
            Some(json!([{"type": "chain-events", "signature": "D", "status": "lost"}])),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("events[0].status"),
        "{body}"
    );
}
