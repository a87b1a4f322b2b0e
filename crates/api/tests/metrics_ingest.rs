//! Metric ingest and reads over HTTP: remote_write, exposition and JSON push in, export and
//! the Prometheus metadata routes out; bad payloads refused whole; tenants kept apart.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dozor_model::{Labels, Role, Sample};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use common::{ADMIN_PASSWORD, TestApp};

async fn send(
    app: &TestApp,
    path: &str,
    auth: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn export(app: &TestApp, auth: &str, selector: &str) -> Vec<serde_json::Value> {
    let q = serde_urlencoded::to_string([("match[]", selector)]).unwrap();
    let (status, _, body) = app
        .call_raw("GET", &format!("/api/v1/export?{q}"), Some(auth), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn up_batch(job: &str, t0: i64) -> Vec<(Labels, Vec<Sample>)> {
    vec![(
        Labels::from_pairs([("__name__", "up"), ("job", job)]).unwrap(),
        vec![
            Sample { t: t0, v: 1.0 },
            Sample {
                t: t0 + 15_000,
                v: 0.0,
            },
        ],
    )]
}

#[tokio::test]
async fn remote_write_samples_are_exported_back() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let body = dozor_ingest::remote_write::encode(&up_batch("api", 1_700_000_000_000));
    let (status, text) = send(
        &app,
        "/api/v1/write",
        &admin,
        "application/x-protobuf",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let rows = export(&app, &admin, r#"up{job="api"}"#).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["metric"], json!({"__name__": "up", "job": "api"}));
    assert_eq!(rows[0]["values"], json!([1.0, 0.0]));
    assert_eq!(
        rows[0]["timestamps"],
        json!([1_700_000_000_000i64, 1_700_000_015_000i64])
    );
}

#[tokio::test]
async fn exposition_and_json_pushes_land_in_the_same_store() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let text = "# TYPE sales_total counter\nsales_total{shop=\"7\"} 12 1700000000000\nsales_total{shop=\"8\"} 3 1700000000000\n";
    let (status, body) = send(
        &app,
        "/api/v1/import/prometheus",
        &admin,
        "text/plain",
        text.into(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let push = json!([{"name": "sales_total", "value": 13, "labels": {"shop": "7"}, "timestamp": 1_700_000_060_000i64}]);
    let (status, body) = send(
        &app,
        "/api/v1/metrics",
        &admin,
        "application/json",
        push.to_string().into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]["accepted"],
        1
    );
    let rows = export(&app, &admin, r#"sales_total{shop="7"}"#).await;
    assert_eq!(rows[0]["values"], json!([12.0, 13.0]));

    let (_, series) = app
        .call(
            "GET",
            "/api/v1/series?match[]=sales_total",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(series["data"].as_array().unwrap().len(), 2);
    let (_, values) = app
        .call("GET", "/api/v1/label/shop/values", Some(&admin), None)
        .await;
    assert_eq!(values["data"], json!(["7", "8"]));
    let (_, names) = app.call("GET", "/api/v1/labels", Some(&admin), None).await;
    assert_eq!(names["data"], json!(["__name__", "shop"]));
}

#[tokio::test]
async fn bad_payloads_are_refused_whole_with_the_field_named() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let good = dozor_ingest::remote_write::encode(&up_batch("api", 1_000));
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "/api/v1/write",
            "application/x-protobuf",
            good[..good.len() / 2].to_vec(),
            "body",
        ),
        (
            "/api/v1/write",
            "application/x-protobuf",
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff")
                .unwrap(),
            "WriteRequest",
        ),
        (
            "/api/v1/import/prometheus",
            "text/plain",
            b"ok_metric 1\nbroken{a=\"1\" 2\n".to_vec(),
            "line 2",
        ),
        (
            "/api/v1/metrics",
            "application/json",
            br#"[{"name":"ok","value":1},{"name":"x","labels":{"bad-name":"v"},"value":1}]"#
                .to_vec(),
            "metrics[1].labels",
        ),
    ];
    for (path, ct, body, needle) in cases {
        let (status, text) = send(&app, path, &admin, ct, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
        let err: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(err["errorType"], "bad_data");
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{path}: {text}"
        );
    }
    // Nothing of the half-good bodies was stored.
    assert!(
        export(&app, &admin, r#"{__name__=~"ok.*"}"#)
            .await
            .is_empty()
    );
    // A huge label set (100 labels; the limit is 64) is refused too.
    let mut raw = prost::Message::encode_to_vec(&dozor_ingest::remote_write::WriteRequest {
        timeseries: vec![dozor_ingest::remote_write::TimeSeries {
            labels: (0..100)
                .map(|i| dozor_ingest::remote_write::LabelPair {
                    name: format!("l{i}"),
                    value: "v".into(),
                })
                .collect(),
            samples: vec![dozor_ingest::remote_write::SamplePair {
                value: 1.0,
                timestamp: 1,
            }],
            histograms: Vec::new(),
        }],
    });
    raw = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let (status, text) = send(&app, "/api/v1/write", &admin, "application/x-protobuf", raw).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("timeseries[0].labels"), "{text}");
}

#[tokio::test]
async fn tenants_see_only_their_own_series() {
    let app = common::app().await;
    app.add_user("other", "olga", "olga-password", Role::Admin)
        .await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let olga = app.bearer("olga", "olga-password").await;
    let body = dozor_ingest::remote_write::encode(&up_batch("secret", 1_000));
    assert_eq!(
        send(
            &app,
            "/api/v1/write",
            &admin,
            "application/x-protobuf",
            body
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(export(&app, &admin, "up").await.len(), 1);
    assert!(export(&app, &olga, "up").await.is_empty());
    let (_, values) = app
        .call("GET", "/api/v1/label/job/values", Some(&olga), None)
        .await;
    assert_eq!(values["data"], json!([]));
}

#[tokio::test]
async fn ingest_tokens_write_but_cannot_read_and_reads_are_audited() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let ingest = app.token_bearer(&admin, "shipper", &["ingest"]).await;
    let body = dozor_ingest::remote_write::encode(&up_batch("api", 1_000));
    assert_eq!(
        send(
            &app,
            "/api/v1/write",
            &ingest,
            "application/x-protobuf",
            body
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = app
        .call("GET", "/api/v1/export?match[]=up", Some(&ingest), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    export(&app, &admin, "up").await;
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "metrics.export" && r["actor"] == "admin")
    );
}

#[tokio::test]
async fn selectors_and_times_are_validated() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    for (q, needle) in [
        ("", "match[]"),
        ("match[]=rate(up[5m])", "match[]"),
        ("match[]=up&start=yesterday", "start"),
        ("match[]=up&start=10&end=5", "end"),
    ] {
        let (status, body) = app
            .call("GET", &format!("/api/v1/export?{q}"), Some(&admin), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("invalid parameter \"{needle}\"")),
            "{q}: {body}"
        );
    }
}

#[tokio::test]
async fn flushing_moves_the_head_to_blocks_without_changing_answers() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let body = dozor_ingest::remote_write::encode(&up_batch("api", 1_700_000_000_000));
    assert_eq!(
        send(
            &app,
            "/api/v1/write",
            &admin,
            "application/x-protobuf",
            body
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let before = export(&app, &admin, "up").await;
    let (status, body) = app
        .call("POST", "/api/v1/admin/tsdb/flush", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let db = app
        .state
        .tsdb()
        .existing(&dozor_model::TenantId::default_tenant())
        .unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(db.head().num_series(), 0);
    assert_eq!(export(&app, &admin, "up").await, before);
    assert!(
        app.audit_records()
            .iter()
            .any(|r| r["action"] == "tsdb.flush")
    );
}

/// Samples the store cannot take are never acknowledged silently: a remote write with them
/// is a 400 naming how many were refused (as Prometheus' receiver answers), an import a 200
/// with the counts; the others of the request are stored either way.
#[tokio::test]
async fn refused_samples_are_told_and_the_others_are_stored() {
    let app = common::app().await;
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let t = 1_700_000_000_000_i64;
    let first = format!("late_metric 1 {t}\n");
    let (status, body) = send(
        &app,
        "/api/v1/import/prometheus",
        &admin,
        "text/plain",
        first.into(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // An hour behind the series' newest sample (the out-of-order window is 10 minutes),
    // and a new series beside it.
    let second = format!("late_metric 2 {}\nfresh_metric 3 {t}\n", t - 3_600_000);
    let (status, body) = send(
        &app,
        "/api/v1/import/prometheus",
        &admin,
        "text/plain",
        second.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"],
        json!({"accepted": 1, "rejectedOutOfOrder": 1, "rejectedTooOld": 0})
    );
    assert_eq!(export(&app, &admin, "fresh_metric").await.len(), 1);
    assert_eq!(
        export(&app, &admin, "late_metric").await[0]["values"],
        json!([1.0])
    );
    // Remote write: 400.
    let body = dozor_ingest::remote_write::encode(&up_batch("api", t));
    let (status, _) = send(
        &app,
        "/api/v1/write",
        &admin,
        "application/x-protobuf",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let body = dozor_ingest::remote_write::encode(&up_batch("api", t - 3_600_000));
    let (status, text) = send(
        &app,
        "/api/v1/write",
        &admin,
        "application/x-protobuf",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errorType"], "bad_data", "{text}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("2 samples refused (2 out of order, 0 older"),
        "{text}"
    );
}
