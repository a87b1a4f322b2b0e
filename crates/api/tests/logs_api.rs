//! Log ingest and search over HTTP: NDJSON in with PII masked before storage (checked in
//! the decompressed parts on disk, not only in answers), bad lines refused whole, searches
//! by stream, needle and time, audited reads, tenants kept apart.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::{Role, TenantId};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

/// 2026-12-01T10:00:00Z in seconds.
const T0: i64 = 1_796_119_200;

async fn post_ndjson(app: &TestApp, auth: &str, query: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            &format!("/api/v1/logs/ingest{query}"),
            Some(auth),
            Some(body.to_owned()),
        )
        .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn search(app: &TestApp, auth: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let q = serde_urlencoded::to_string(params).unwrap();
    app.call("GET", &format!("/api/v1/logs/search?{q}"), Some(auth), None)
        .await
}

fn lines() -> String {
    [
        json!({"_time": T0, "service": "shop", "level": "error", "_msg": "payment failed for ivan.petrov@mail.ru card 4111 1111 1111 1111", "user": {"phone": "+7 (912) 345-67-89"}, "order": 1001}),
        json!({"_time": T0 + 1, "service": "shop", "level": "info", "_msg": "order 1002 paid", "order": 1002}),
        json!({"_time": T0 + 2, "service": "crm", "level": "info", "_msg": "ticket opened from 10.20.30.40", "password": "hunter2"}),
        json!({"_time": T0 + 3, "service": "mes", "level": "warn", "_msg": "line 4 slow"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

#[tokio::test]
async fn ndjson_lands_masked_and_searches_by_stream_needle_and_time() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let shipper = app.token_bearer(&admin, "shipper", &["ingest"]).await;
    let (status, body) = post_ndjson(&app, &shipper, "", &lines()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["accepted"], 4);
    assert_eq!(
        body["data"]["masked"],
        json!({"card": 1, "email": 1, "ipv4": 1, "phone": 1, "secret": 1})
    );

    let window = [
        ("start", &*T0.to_string()),
        ("end", &*(T0 + 10).to_string()),
    ];
    let (status, found) = search(
        &app,
        &admin,
        &[&[("query", "{service=\"shop\"}")][..], &window[..]].concat(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let records = found["data"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["message"], "order 1002 paid", "newest first");
    assert_eq!(
        records[1]["message"],
        "payment failed for [EMAIL] card [CARD]"
    );
    assert_eq!(records[1]["fields"]["user.phone"], "[PHONE]");
    assert_eq!(
        records[1]["stream"],
        json!({"level": "error", "service": "shop"})
    );
    assert_eq!(records[1]["time"], "2026-12-01T10:00:00.000000000Z");

    let (_, found) = search(
        &app,
        &admin,
        &[
            &[("query", "{level=~\"info|warn\"}"), ("contains", "ticket")][..],
            &window[..],
        ]
        .concat(),
    )
    .await;
    let records = found["data"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["message"], "ticket opened from [IPV4]");
    assert_eq!(records[0]["fields"]["password"], "[SECRET]");

    // No PII reaches the disk either: flush the head and read the decompressed parts.
    let tenant: TenantId = "default".parse().unwrap();
    let db = app.state.logs().existing(&tenant).unwrap();
    // The WAL, before the flush drops it, holds the masked text only.
    let wal: Vec<u8> = std::fs::read_dir(app.dir.path().join("logs/default/wal"))
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let wal = String::from_utf8_lossy(&wal);
    assert!(
        wal.contains("payment failed for [EMAIL]"),
        "the records are in the WAL"
    );
    assert!(
        !wal.contains("ivan.petrov") && !wal.contains("hunter2"),
        "no PII in the WAL"
    );
    db.flush().unwrap();
    let stored: String = db
        .parts()
        .iter()
        .flat_map(|p| p.all().unwrap())
        .map(|r| format!("{} {:?}", r.message, r.fields))
        .collect();
    assert!(stored.contains("payment failed"), "{stored}");
    for pii in [
        "ivan.petrov@mail.ru",
        "4111",
        "345-67-89",
        "10.20.30.40",
        "hunter2",
    ] {
        assert!(!stored.contains(pii), "{pii} is on disk: {stored}");
    }

    // The reads are in the audit chain, with the filter and the line count.
    let audit = std::fs::read_to_string(app.dir.path().join("audit").join("chain.jsonl")).unwrap();
    let searches: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("logs.search"))
        .collect();
    assert_eq!(searches.len(), 2, "{audit}");
    assert!(
        searches[0].contains("\"lines\":\"2\"") && searches[0].contains("service"),
        "{}",
        searches[0]
    );
}

#[tokio::test]
async fn bad_bodies_and_parameters_are_400s_that_store_nothing() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let body = format!(
        "{}\n{{\"_msg\": oops}}\n",
        json!({"_msg": "fine", "service": "shop"})
    );
    let (status, err) = post_ndjson(&app, &admin, "", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2: invalid JSON"),
        "{err}"
    );
    let (status, _) = post_ndjson(&app, &admin, "", "{\"no\":\"message\"}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        app.state
            .logs()
            .existing(&"default".parse().unwrap())
            .is_none(),
        "nothing was stored"
    );
    for (params, needle) in [
        (vec![], "query"),
        (vec![("query", "up + 1")], "stream selector"),
        (vec![("query", "oops")], "stream selector"),
        (
            vec![("query", "{service=\"shop\"}"), ("limit", "100000")],
            "limit",
        ),
        (
            vec![("query", "{service=\"shop\"}"), ("direction", "sideways")],
            "direction",
        ),
        (
            vec![
                ("query", "{service=\"shop\"}"),
                ("start", "20"),
                ("end", "10"),
            ],
            "start",
        ),
    ] {
        let (status, err) = search(&app, &admin, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}");
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{params:?}: {err}"
        );
    }
}

#[tokio::test]
async fn stream_fields_are_chosen_by_the_request_and_tenants_stay_apart() {
    let app = common::app().await;
    app.add_user("other", "olga", ADMIN_PASSWORD, Role::Admin)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let olga = app.bearer("olga", ADMIN_PASSWORD).await;
    let line = json!({"_time": T0, "app": "till", "shop": "42", "level": "info", "_msg": "receipt printed"}).to_string();
    let (status, _) = post_ndjson(&app, &admin, "?_stream_fields=app,shop", &line).await;
    assert_eq!(status, StatusCode::OK);
    let params = [
        ("query", "{app=\"till\"}"),
        ("start", &*T0.to_string()),
        ("end", &*(T0 + 1).to_string()),
    ];
    let (_, found) = search(&app, &admin, &params).await;
    let records = found["data"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["stream"],
        json!({"app": "till", "level": "info", "shop": "42"}),
        "the level joins the stream, normalised, whatever the stream fields"
    );
    assert_eq!(records[0]["fields"], json!({}));
    let (status, found) = search(&app, &olga, &params).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found["data"]["records"],
        json!([]),
        "another tenant sees nothing"
    );
    // An ingest token cannot read, a reader cannot write.
    let shipper = app.token_bearer(&admin, "shipper", &["ingest"]).await;
    let reader = app.token_bearer(&admin, "reader", &["read"]).await;
    assert_eq!(
        search(&app, &shipper, &params).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_ndjson(&app, &reader, "", &line).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn loki_pushes_in_protobuf_and_json_land_masked() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let shipper = app.token_bearer(&admin, "promtail", &["ingest"]).await;
    let stream = dozor_model::Labels::from_pairs([("job", "till"), ("shop", "42")]).unwrap();
    let mut first = dozor_model::LogRecord::new(
        T0 * 1_000_000_000 + 5,
        stream.clone(),
        "receipt 17 for +7 912 345 67 89",
    );
    first.fields = vec![("trace_id".into(), "ab12".into())];
    let body = dozor_ingest::loki::encode_protobuf(&[first]);
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/loki/api/v1/push")
        .header("authorization", &shipper)
        .header("content-type", "application/x-protobuf")
        .body(axum::body::Body::from(body))
        .unwrap();
    let res = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let json = json!({"streams": [{"stream": {"job": "till", "shop": "42"},
        "values": [[format!("{}", (T0 + 1) * 1_000_000_000), "shift closed by olga@shop.ru"]]}]});
    let (status, _, _) = app
        .call_raw(
            "POST",
            "/loki/api/v1/push",
            Some(&shipper),
            Some(json.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = app
        .call_raw(
            "POST",
            "/loki/api/v1/push",
            Some(&shipper),
            Some("{\"streams\":[{\"stream\":{}}]}".into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let params = [
        ("query", "{job=\"till\"}"),
        ("start", &*T0.to_string()),
        ("end", &*(T0 + 2).to_string()),
    ];
    let (_, found) = search(&app, &admin, &params).await;
    let messages: Vec<&str> = found["data"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["shift closed by [EMAIL]", "receipt 17 for [PHONE]"]
    );
    assert_eq!(found["data"]["records"][1]["fields"]["trace_id"], "ab12");
    assert_eq!(
        found["data"]["records"][1]["time_ns"],
        (T0 * 1_000_000_000 + 5).to_string()
    );
}

#[tokio::test]
async fn a_pii_drop_action_keeps_the_record_out_on_every_ingest_path() {
    use dozor_ingest::pii::{Action, PiiKind};
    let app = common::app_with_settings(|s| {
        s.pii.actions.insert(PiiKind::Card, Action::Drop);
    })
    .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let body = [
        json!({"_time": T0, "service": "shop", "_msg": "paid with 4111 1111 1111 1111"}),
        json!({"_time": T0 + 1, "service": "shop", "_msg": "order 5 shipped"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, answer) = post_ndjson(&app, &admin, "", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            answer["data"]["accepted"].as_u64(),
            answer["data"]["dropped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let bulk = "{\"create\":{\"_index\":\"pos\"}}\n{\"@timestamp\":1796119202,\"message\":\"card 5500 0000 0000 0004\"}\n{\"create\":{\"_index\":\"pos\"}}\n{\"@timestamp\":1796119203,\"message\":\"till open\"}\n";
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            "/insert/elasticsearch/_bulk",
            Some(&admin),
            Some(bulk.to_owned()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["errors"], false);
    assert_eq!(answer["items"][0]["create"]["result"], "noop");
    assert_eq!(answer["items"][1]["create"]["status"], 201);
    let window = [
        ("start", &*T0.to_string()),
        ("end", &*(T0 + 10).to_string()),
    ];
    for (query, want) in [
        ("{service=\"shop\"}", "order 5 shipped"),
        ("{index=\"pos\"}", "till open"),
    ] {
        let (_, found) = search(
            &app,
            &admin,
            &[&[("query", query)][..], &window[..]].concat(),
        )
        .await;
        let messages: Vec<&str> = found["data"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, [want], "{query}");
    }
}

#[tokio::test]
async fn search_takes_logql_pipelines_and_pages_without_gaps_or_repeats() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    // 25 lines, several sharing a timestamp (5 per second).
    let body: String = (0..25)
        .map(|i| json!({"_time": T0 + i / 5, "service": "shop", "level": "info", "_msg": format!("level=info order={i} status={}", if i % 2 == 0 { 200 } else { 500 })}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (status, _) = post_ndjson(&app, &admin, "", &body).await;
    assert_eq!(status, StatusCode::OK);
    let window = [("start", T0.to_string()), ("end", (T0 + 10).to_string())];
    for direction in ["backward", "forward"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        for _page in 0..10 {
            let mut params: Vec<(&str, &str)> = vec![
                ("query", r#"{service="shop"} | logfmt | status >= 500"#),
                ("limit", "4"),
                ("direction", direction),
            ];
            params.extend(window.iter().map(|(k, v)| (*k, v.as_str())));
            if !cursor.is_empty() {
                params.push(("cursor", &cursor));
            }
            let (status, page) = search(&app, &admin, &params).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for r in page["data"]["records"].as_array().unwrap() {
                assert_eq!(
                    r["fields"]["status"], "500",
                    "the parser's labels are fields: {r}"
                );
                assert_eq!(r["stream"], json!({"service": "shop", "level": "info"}));
                seen.push(
                    r["fields"]["order"]
                        .as_str()
                        .unwrap()
                        .parse::<i64>()
                        .unwrap(),
                );
            }
            match page["data"]["next"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        let mut expected: Vec<i64> = (0..25).filter(|i| i % 2 == 1).collect();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got, expected, "{direction}: every line once ({seen:?})");
        expected.sort_by_key(|i| i / 5);
        let times: Vec<i64> = seen.iter().map(|i| i / 5).collect();
        let mut ordered = times.clone();
        if direction == "backward" {
            ordered.sort_by(|a, b| b.cmp(a));
        } else {
            ordered.sort();
        }
        assert_eq!(times, ordered, "{direction}: pages follow the direction");
    }
    let (status, err) = search(
        &app,
        &admin,
        &[("query", "{service=\"shop\"}"), ("cursor", "nope")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("cursor"), "{err}");
}

#[tokio::test]
async fn events_land_as_typed_records_that_logql_rules_count() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let shipper = app.token_bearer(&admin, "payments", &["ingest"]).await;
    let mut events: Vec<Value> = (0..6)
        .map(|i| json!({"type": "transaction", "transaction_id": format!("tx-{i}"), "user_id": if i < 4 { "u1" } else { "u2" }, "amount": 2500 * i, "currency": "RUB", "timestamp": T0 + i * 10, "card": "4111 1111 1111 1111"}))
        .collect();
    events.push(json!({"eventType": "ticket-sales", "ticketId": "T-1", "price": 1500, "userId": "u2", "timestamp": T0 + 5, "source": "marketplace"}));
    events.push(json!({"event": "user-activity", "userId": "u1", "action": "login", "ip": "10.0.0.7", "timestamp": T0 + 6}));
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            "/api/v1/events",
            Some(&shipper),
            Some(Value::Array(events).to_string()),
        )
        .await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["accepted"], 8);
    assert_eq!(
        body["data"]["masked"]["card"], 6,
        "PII in event fields is masked: {body}"
    );

    let instant = |q: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let query =
                serde_urlencoded::to_string([("query", q), ("time", &(T0 + 60).to_string())])
                    .unwrap();
            let (status, body) = app
                .call(
                    "GET",
                    &format!("/loki/api/v1/query?{query}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            body["data"]["result"].clone()
        }
    };
    // Seed 001: amount over 10 000, and transactions per user in 5 minutes.
    assert_eq!(
        instant(
            r#"sum by (user_id) (count_over_time({event="transaction"} | amount > 10000 [5m]))"#
        )
        .await,
        json!([{"metric": {"user_id": "u2"}, "value": [T0 + 60, "1"]}]),
        "amounts 10 000 and 12 500: only the second is over"
    );
    assert_eq!(
        instant(r#"sum by (user_id) (count_over_time({event="transaction"}[5m])) >= 3"#).await,
        json!([{"metric": {"user_id": "u1"}, "value": [T0 + 60, "4"]}])
    );
    assert_eq!(
        instant(r#"sum(sum_over_time({event=~"ticket-sales|transaction"} | unwrap price [5m]))"#)
            .await,
        json!([{"metric": {}, "value": [T0 + 60, "1500"]}])
    );
    assert_eq!(
        instant(r#"sum by (action) (count_over_time({event="user-activity"}[5m]))"#).await,
        json!([{"metric": {"action": "login"}, "value": [T0 + 60, "1"]}])
    );
    // A wrongly typed field is a 400 naming it, and nothing of the batch is stored.
    let bad = json!([{"type": "transaction", "user_id": "u9", "amount": 1}, {"type": "transaction", "user_id": "u9", "amount": "lots"}]);
    let (status, err) = app
        .call("POST", "/api/v1/events", Some(&shipper), Some(bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("events[1].amount: expected a number"),
        "{err}"
    );
    assert_eq!(
        instant(r#"sum(count_over_time({event="transaction"} | user_id="u9" [1h]))"#).await,
        json!([])
    );
}
