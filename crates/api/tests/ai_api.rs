//! `/api/v1/ai/error-clusters`: error lines grouped by template with counts, first and last
//! seen, samples, services and registers; `min_cluster_size` and the role's view apply.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;

use axum::http::StatusCode;
use dozor_api::visibility::AccessPolicy;
use dozor_model::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn error_lines_cluster_by_template_with_their_services_and_registers() {
    let app = common::app_with_settings(|s| {
        s.access = AccessPolicy {
            owners: HashMap::from([("dev".to_owned(), vec!["shop".to_owned()])]),
            ..AccessPolicy::default()
        };
    })
    .await;
    app.add_user("default", "dev", "developer-password-1", Role::Developer)
        .await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms() / 1000;
    let mut lines = Vec::new();
    for i in 0..8 {
        lines.push(
            json!({"_time": now - 100 + i, "_stream": {"service": "shop", "level": "error"},
            "_msg": format!("payment failed for order {} after {} ms", 1000 + i, 200 + 17 * i)}),
        );
    }
    for i in 0..6 {
        lines.push(json!({"_time": now - 50 + i, "_stream": {"service": "kkt", "level": "error", "register": format!("000{}", i % 3)},
            "_msg": format!("fiscal drive memory {}% full on register 000{}", 90 + i, i % 3)}));
    }
    for i in 0..2 {
        lines.push(json!({"_time": now - 10 + i, "_stream": {"service": "crm", "level": "error"}, "_msg": "disk quota exceeded"}));
    }
    lines.push(json!({"_time": now - 5, "_stream": {"service": "shop", "level": "info"}, "_msg": "order 7 paid"}));
    let body = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let (s, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = app
        .call("GET", "/api/v1/ai/error-clusters", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let d = &body["data"];
    assert_eq!(d["linesScanned"], 16, "info lines are not errors");
    let clusters = d["clusters"].as_array().unwrap();
    assert_eq!(
        clusters.len(),
        2,
        "the rare error is under min_cluster_size: {body}"
    );
    let (pay, fn_) = (&clusters[0], &clusters[1]);
    assert_eq!(pay["count"], 8);
    assert!(
        pay["template"]
            .as_str()
            .unwrap()
            .starts_with("payment failed for order"),
        "{pay}"
    );
    assert!(pay["template"].as_str().unwrap().contains("<*>"), "{pay}");
    assert_eq!(pay["services"], json!(["shop"]));
    assert_eq!(pay["samples"].as_array().unwrap().len(), 3);
    assert!(pay["firstSeen"].as_str() < pay["lastSeen"].as_str());
    assert_eq!(fn_["count"], 6);
    assert_eq!(fn_["services"], json!(["kkt"]));
    assert_eq!(fn_["registers"], json!(["0000", "0001", "0002"]));

    // Ids stay from one call to the next; a smaller minimum shows the rare error.
    let (_, again) = app
        .call(
            "GET",
            "/api/v1/ai/error-clusters?min_cluster_size=1",
            Some(&admin),
            None,
        )
        .await;
    let again = again["data"]["clusters"].as_array().unwrap().clone();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0]["id"], pay["id"]);
    assert_eq!(again[2]["template"], "disk quota exceeded");

    // A developer of the shop sees the shop's cluster only.
    let dev = app.bearer("dev", "developer-password-1").await;
    let (_, theirs) = app
        .call(
            "GET",
            "/api/v1/ai/error-clusters?min_cluster_size=1",
            Some(&dev),
            None,
        )
        .await;
    let theirs = theirs["data"]["clusters"].as_array().unwrap().clone();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["id"], pay["id"]);

    // Bad parameters are named; the read is audited.
    for (q, name) in [
        ("since=1s", "since"),
        ("min_cluster_size=0", "min_cluster_size"),
        (
            "query=sum%28rate%28%7Ba%3D%22b%22%7D%5B1m%5D%29%29",
            "query",
        ),
    ] {
        let (s, body) = app
            .call(
                "GET",
                &format!("/api/v1/ai/error-clusters?{q}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert!(body["error"].as_str().unwrap().contains(name), "{body}");
    }
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "logs.error_clusters")
    );
}

#[tokio::test]
async fn recommendations_name_noisy_flapping_misplaced_and_missing_rules() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let store = app.state.store();
    let tenant = dozor_model::TenantId::default_tenant();
    let now = dozor_model::time::now_ms();
    let labels = json!({"alertname": "x"});
    // "Chatty" fired 80 times in the week, each for an hour; "Flappy" 4 times, a minute each.
    for (rule, n, lasts_ms) in [("Chatty", 80, 3_600_000), ("Flappy", 4, 60_000)] {
        for i in 0..n {
            let fp = format!("{rule}-{i}");
            let fired = now - 6 * 86_400_000 + i64::from(i) * 3_600_000;
            store
                .alert_fired(
                    &tenant,
                    &dozor_state::alerts::FiredAlert {
                        fingerprint: &fp,
                        rule,
                        rule_group: "g",
                        labels: &labels,
                        annotations: &json!({}),
                        value: 1.0,
                        active_ms: fired,
                        fired_ms: fired,
                    },
                )
                .await
                .unwrap();
            store
                .alert_resolved(&tenant, &fp, fired + lasts_ms, "rules", None)
                .await
                .unwrap();
        }
    }
    // A CPU that is mostly at 0.8, watched by a rule at 0.5; and a failure metric no rule
    // watches.
    let samples: Vec<(i64, f64)> = (0..2016)
        .map(|i| {
            (
                now - 7 * 86_400_000 + i * 300_000,
                if i % 10 == 0 { 0.3 } else { 0.8 },
            )
        })
        .collect();
    app.append(
        "default",
        &[("__name__", "cpu_busy"), ("host", "a")],
        &samples,
    );
    app.append(
        "default",
        &[("__name__", "payment_errors_total")],
        &[(now - 1000, 3.0)],
    );
    let rule = json!({"name": "busy", "condition": {"type": "threshold", "metric": "cpu_busy", "operator": ">", "value": 0.5}, "severity": "warning"});
    let (s, _) = app
        .call("POST", "/api/v1/alerts/rules", Some(&admin), Some(rule))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, body) = app
        .call(
            "GET",
            "/api/v1/ai/alert-recommendations",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let recs = body["data"]["recommendations"].as_array().unwrap();
    let of = |kind: &str| {
        recs.iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let noisy = of("noisy");
    assert_eq!(noisy.len(), 1, "{body}");
    assert_eq!(noisy[0]["rule"], "Chatty");
    let flapping = of("flapping");
    assert_eq!(flapping.len(), 1, "{body}");
    assert_eq!(
        (
            flapping[0]["rule"].as_str(),
            flapping[0]["shorterThan5m"].as_u64()
        ),
        (Some("Flappy"), Some(4))
    );
    let threshold = of("threshold");
    assert_eq!(threshold.len(), 1, "{body}");
    assert_eq!(threshold[0]["rule"], "busy");
    assert!(
        (threshold[0]["suggested"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{body}"
    );
    let uncovered = of("uncovered");
    assert_eq!(uncovered.len(), 1, "{body}");
    assert_eq!(uncovered[0]["metric"], "payment_errors_total");
    // The same data, the same advice.
    let (_, again) = app
        .call(
            "GET",
            "/api/v1/ai/alert-recommendations",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        again["data"]["recommendations"],
        body["data"]["recommendations"]
    );
}

/// A local stand-in for the model providers: answers both APIs and keeps each request's
/// path, headers and body.
async fn model_stub(
    fail: bool,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, Value)>>>,
) {
    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, HeaderMap, Value)>>>;
    let seen: Seen = Default::default();
    async fn answer(
        State((seen, fail)): State<(Seen, bool)>,
        uri: Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock()
            .unwrap()
            .push((uri.path().to_owned(), headers, v));
        if fail {
            return (StatusCode::INTERNAL_SERVER_ERROR, "overloaded").into_response();
        }
        let text = "Payments fail in the shop; the fiscal drives are filling up.";
        let body = if uri.path().ends_with("/chat/completions") {
            json!({"choices": [{"message": {"role": "assistant", "content": text}}]})
        } else {
            json!({"content": [{"type": "text", "text": text}]})
        };
        axum::Json(body).into_response()
    }
    let app = axum::Router::new()
        .fallback(answer)
        .with_state((std::sync::Arc::clone(&seen), fail));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn with_errors(app: &common::TestApp) -> String {
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms() / 1000;
    let body = (0..6)
        .map(|i| json!({"_time": now - 60 + i, "_stream": {"service": "shop", "level": "error"}, "_msg": format!("payment failed for order {}", 1000 + i)}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (s, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK);
    admin
}

#[tokio::test]
async fn summaries_are_dozors_own_or_a_models_from_templates_only() {
    let path = "/api/v1/ai/error-clusters?summarize=true";
    // No model: Dozor's sentence, the same every time.
    let app = common::app().await;
    let admin = with_errors(&app).await;
    let (_, body) = app.call("GET", path, Some(&admin), None).await;
    assert_eq!(body["data"]["summaryBy"], "dozor");
    assert_eq!(
        body["data"]["summary"],
        "1 kind of error in the last 24 h; the most frequent: \"payment failed for order <*>\" 6 times (shop)."
    );

    for provider in [
        dozor_api::llm::Provider::OpenAi,
        dozor_api::llm::Provider::Anthropic,
    ] {
        let (base, seen) = model_stub(false).await;
        let app = common::app_with_settings(|s| {
            s.llm = Some(dozor_api::llm::LlmSettings {
                provider,
                base_url: base.clone(),
                model: "test-model".into(),
                api_key: dozor_api::Secret(b"test-key-123".to_vec()),
                timeout: std::time::Duration::from_secs(5),
            });
        })
        .await;
        let admin = with_errors(&app).await;
        let (_, body) = app.call("GET", path, Some(&admin), None).await;
        assert_eq!(body["data"]["summaryBy"], "model", "{provider:?}: {body}");
        assert_eq!(
            body["data"]["summary"],
            "Payments fail in the shop; the fiscal drives are filling up."
        );
        let seen = seen.lock().unwrap();
        let (p, headers, req) = &seen[0];
        assert_eq!(req["model"], "test-model");
        let prompt = match provider {
            dozor_api::llm::Provider::OpenAi => {
                assert_eq!(p, "/chat/completions");
                assert_eq!(headers["authorization"], "Bearer test-key-123");
                assert_eq!(req["temperature"], 0);
                req["messages"][1]["content"].as_str().unwrap().to_owned()
            }
            dozor_api::llm::Provider::Anthropic => {
                assert_eq!(p, "/v1/messages");
                assert_eq!(headers["x-api-key"], "test-key-123");
                assert_eq!(headers["anthropic-version"], "2023-06-01");
                assert!(req["system"].as_str().unwrap().contains("Dozor"));
                req["messages"][0]["content"].as_str().unwrap().to_owned()
            }
        };
        assert!(prompt.contains("payment failed for order <*>"), "{prompt}");
        assert!(
            !prompt.contains("order 1003"),
            "no raw lines go to the model: {prompt}"
        );
    }

    // A failing model: Dozor's sentence stands in, and says why.
    let (base, _) = model_stub(true).await;
    let app = common::app_with_settings(|s| {
        s.llm = Some(dozor_api::llm::LlmSettings {
            provider: dozor_api::llm::Provider::OpenAi,
            base_url: base.clone(),
            model: "m".into(),
            api_key: dozor_api::Secret(b"k".to_vec()),
            timeout: std::time::Duration::from_secs(5),
        });
    })
    .await;
    let admin = with_errors(&app).await;
    let (_, body) = app.call("GET", path, Some(&admin), None).await;
    assert_eq!(body["data"]["summaryBy"], "dozor");
    assert!(
        body["data"]["summaryError"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{body}"
    );
}
