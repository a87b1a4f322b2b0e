//! Prometheus' query API over HTTP: every result and error type in Prometheus' exact JSON,
//! GET and POST forms, RFC 3339 and float times, the request sequence of Grafana's
//! Prometheus data source, the status routes, limits, scopes and tenants.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

const T0: i64 = 1_700_000_000_000;

/// `up` for instances a (1) and b (0), and a counter growing by 10 per 15 s scrape, from
/// T0 for 5 minutes.
fn load(app: &TestApp, tenant: &str) {
    let every = |v: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..=20).map(|i| (T0 + i * 15_000, v(i))).collect()
    };
    app.append(
        tenant,
        &[("__name__", "up"), ("job", "api"), ("instance", "a")],
        &every(&|_| 1.0),
    );
    app.append(
        tenant,
        &[("__name__", "up"), ("job", "api"), ("instance", "b")],
        &every(&|_| 0.0),
    );
    app.append(
        tenant,
        &[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("instance", "a"),
        ],
        &every(&|i| (i * 10) as f64),
    );
}

async fn setup() -> (TestApp, String) {
    let app = common::app().await;
    load(&app, "default");
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    (app, admin)
}

fn q(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// GET `path?pairs`; returns status and body text.
async fn get(
    app: &TestApp,
    auth: &str,
    path: &str,
    pairs: &[(&str, &str)],
) -> (StatusCode, String) {
    app.get_text(&format!("{path}?{}", q(pairs)), auth).await
}

// The expected bodies below are written by hand from Prometheus' documented format
// (https://prometheus.io/docs/prometheus/latest/querying/api/) and its encoder: values as
// strings from strconv.FormatFloat(v, 'f', -1, 64), timestamps as seconds with three
// decimals when there are milliseconds, labels in sorted order, no whitespace.

#[tokio::test]
async fn an_instant_vector_is_byte_identical_to_prometheus() {
    let (app, admin) = setup().await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[("query", r#"up{instance="a"}"#), ("time", "1700000000.123")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a","job":"api"},"value":[1700000000.123,"1"]}]}}"#
    );
    // Aggregation drops the name; two series in label order.
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[
            ("query", "sort_desc(sum by (instance) (up))"),
            ("time", "1700000060"),
        ],
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1700000060,"1"]},{"metric":{"instance":"b"},"value":[1700000060,"0"]}]}}"#
    );
}

#[tokio::test]
async fn scalars_strings_and_special_floats_are_spelled_like_prometheus() {
    let (app, admin) = setup().await;
    let cases = [
        (
            "1 + 1",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}}"#,
        ),
        (
            "0 / 0",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}"#,
        ),
        (
            "-1 / 0",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"-Inf"]}}"#,
        ),
        (
            "0.1 + 0.2",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.30000000000000004"]}}"#,
        ),
        (
            "1e21",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1000000000000000000000"]}}"#,
        ),
        (
            r#""a<b>&""#,
            r#"{"status":"success","data":{"resultType":"string","result":[1700000000,"a\u003cb\u003e\u0026"]}}"#,
        ),
        (
            r#"up{instance="a"} / 0"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a","job":"api"},"value":[1700000000,"+Inf"]}]}}"#,
        ),
    ];
    for (query, expected) in cases {
        let (status, body) = get(
            &app,
            &admin,
            "/api/v1/query",
            &[("query", query), ("time", "1700000000")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, expected, "{query}");
    }
}

#[tokio::test]
async fn range_queries_and_range_selectors_answer_matrices() {
    let (app, admin) = setup().await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/query_range",
        &[
            ("query", r#"up{instance="b"}"#),
            ("start", "1700000000"),
            ("end", "1700000030"),
            ("step", "15s"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"b","job":"api"},"values":[[1700000000,"0"],[1700000015,"0"],[1700000030,"0"]]}]}}"#
    );
    // A scalar range query is a matrix with an empty label set.
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query_range",
        &[
            ("query", "time()"),
            ("start", "1700000000.5"),
            ("end", "1700000001.5"),
            ("step", "1"),
        ],
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000.500,"1700000000.5"],[1700000001.500,"1700000001.5"]]}]}}"#
    );
    // An instant query of a range selector: raw samples in a left-open window.
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[
            ("query", r#"http_requests_total[30s]"#),
            ("time", "1700000030"),
        ],
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","instance":"a","job":"api"},"values":[[1700000015,"10"],[1700000030,"20"]]}]}}"#
    );
    // rate over the counter: 10 per 15 s.
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[
            ("query", "rate(http_requests_total[1m])"),
            ("time", "1700000120"),
        ],
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let rate: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((rate - 10.0 / 15.0).abs() < 1e-9, "{body}");
}

#[tokio::test]
async fn get_and_post_forms_and_both_time_formats_give_the_same_bytes() {
    let (app, admin) = setup().await;
    let (_, by_get) = get(
        &app,
        &admin,
        "/api/v1/query_range",
        &[
            ("query", "sum(up)"),
            ("start", "1700000000"),
            ("end", "1700000060"),
            ("step", "15"),
        ],
    )
    .await;
    let form = q(&[
        ("query", "sum(up)"),
        ("start", "2023-11-14T22:13:20Z"),
        ("end", "2023-11-14T22:14:20.000Z"),
        ("step", "15s"),
    ]);
    let (status, headers, by_post) = app
        .call_form("POST", "/api/v1/query_range", Some(&admin), &form)
        .await;
    assert_eq!(status, StatusCode::OK, "{by_post}");
    assert_eq!(by_post, by_get);
    assert_eq!(headers["content-type"], "application/json");
    assert!(by_get.contains(r#"[1700000060,"1"]"#), "{by_get}");

    let (_, a) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[("query", "up"), ("time", "2023-11-14T22:13:20.123Z")],
    )
    .await;
    let (_, _, b) = app
        .call_form(
            "POST",
            "/api/v1/query",
            Some(&admin),
            &q(&[("query", "up"), ("time", "1700000000.123")]),
        )
        .await;
    assert_eq!(a, b);
    assert!(a.contains("1700000000.123"), "{a}");
}

#[tokio::test]
async fn errors_have_prometheus_types_and_statuses() {
    let limits = dozor_api::QueryLimits {
        max_samples: 5,
        ..dozor_api::QueryLimits::default()
    };
    let app = common::app_with_query_limits(limits).await;
    load(&app, "default");
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    // (path, parameters, status, errorType, start of the message)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "/api/v1/query",
            vec![("query", "up{")],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\": ",
        ),
        (
            "/api/v1/query",
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("time", "noon")],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"time\": cannot parse \"noon\" to a valid timestamp",
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("timeout", "soon")],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"timeout\"",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "10"),
                ("end", "20"),
                ("step", "0"),
            ],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "10"),
                ("end", "20"),
                ("step", "1x"),
            ],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\"",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "20"),
                ("end", "10"),
                ("step", "1"),
            ],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up[5m]"),
                ("start", "10"),
                ("end", "20"),
                ("step", "1"),
            ],
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\": invalid expression type \"range vector\" for range query",
        ),
        (
            // Many-to-many matching: an execution error.
            "/api/v1/query",
            vec![("query", "up + on(job) up"), ("time", "1700000000")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "",
        ),
        (
            // More points than max_samples (5).
            "/api/v1/query_range",
            vec![
                ("query", "1"),
                ("start", "0"),
                ("end", "100"),
                ("step", "1"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "query processing would load too many samples into memory",
        ),
    ];
    for (path, pairs, status, kind, prefix) in cases {
        let (got, body) = get(&app, &admin, path, &pairs).await;
        assert_eq!(got, status, "{path} {pairs:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["error", "errorType", "status"],
            "{body}"
        );
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], kind, "{path} {pairs:?}: {body}");
        assert!(
            v["error"].as_str().unwrap().starts_with(prefix),
            "{path} {pairs:?}: {body}"
        );
    }
    // The exact bytes of one error.
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query_range",
        &[
            ("query", "up"),
            ("start", "20"),
            ("end", "10"),
            ("step", "1"),
        ],
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}"#
    );
}

#[tokio::test]
async fn a_query_past_its_timeout_is_a_503_timeout() {
    let limits = dozor_api::QueryLimits {
        timeout: Duration::ZERO,
        ..dozor_api::QueryLimits::default()
    };
    let app = common::app_with_query_limits(limits).await;
    load(&app, "default");
    let admin = app.bearer("admin", ADMIN_PASSWORD).await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/query_range",
        &[
            ("query", "sum(rate(http_requests_total[1m]))"),
            ("start", "1700000000"),
            ("end", "1700000300"),
            ("step", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorType"], "timeout");
    assert!(
        v["error"].as_str().unwrap().starts_with("query timed out"),
        "{body}"
    );
}

#[tokio::test]
async fn warnings_follow_data_and_appear_only_when_there_are_some() {
    let (app, admin) = setup().await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[("query", "quantile(2, up)"), ("time", "1700000000")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"+Inf"]}]},"warnings":["PromQL warning: quantile value should be between 0 and 1, got 2"#
        ),
        "{body}"
    );
    assert!(!body.contains("infos"), "{body}");
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[("query", "up"), ("time", "1700000000")],
    )
    .await;
    assert!(
        !body.contains("warnings") && !body.contains("infos"),
        "{body}"
    );
}

/// The requests Grafana's Prometheus data source sends, in order: the health check, build
/// info, label names, metric names, series, then a range query whose start and end Grafana
/// aligned to the step.
#[tokio::test]
async fn grafanas_prometheus_data_source_sequence_gets_the_shapes_it_expects() {
    let (app, admin) = setup().await;
    // "Save & test": an instant query of 1+1.
    let (status, body) = app
        .get_text("/api/v1/query?query=1+%2B+1&time=1700000100", &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000100,"2"]}}"#
    );
    let (status, body) = app.get_text("/api/v1/status/buildinfo", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["data"]["version"].is_string(), "{body}");

    let (_, body) = app
        .get_text("/api/v1/labels?start=1699996400&end=1700000300", &admin)
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","instance","job"]}"#
    );
    let (_, body) = app
        .get_text(
            "/api/v1/label/__name__/values?start=1699996400&end=1700000300",
            &admin,
        )
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["http_requests_total","up"]}"#
    );
    let (_, body) = app
        .get_text(
            "/api/v1/series?match%5B%5D=up&start=1699996400&end=1700000300",
            &admin,
        )
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"up","instance":"a","job":"api"},{"__name__":"up","instance":"b","job":"api"}]}"#
    );
    // Grafana: from 1700000007, to 1700000292, step 15 → start and end floored to 15 s.
    let step = 15;
    let (from, to) = (1_700_000_007_i64, 1_700_000_292_i64);
    let (start, end) = (from - from % step, to - to % step);
    let form = format!(
        "query=sum+by+%28instance%29+%28rate%28http_requests_total%5B1m%5D%29%29&start={start}&end={end}&step={step}"
    );
    let (status, _, body) = app
        .call_form("POST", "/api/v1/query_range", Some(&admin), &form)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["metric"], json!({"instance": "a"}));
    let values = result[0]["values"].as_array().unwrap();
    // Every point is on the step grid Grafana asked for; the first steps have no rate yet
    // (a 1m window needs two samples), the last is at the aligned end.
    assert!(values.len() >= 15, "{body}");
    let times: Vec<i64> = values.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(
        times.iter().all(|t| (t - start) % step == 0 && *t >= start),
        "{times:?}"
    );
    assert!(times.windows(2).all(|w| w[1] - w[0] == step), "{times:?}");
    assert_eq!(*times.last().unwrap(), end);
    assert!(
        values
            .iter()
            .all(|p| p[1].as_str().unwrap().parse::<f64>().is_ok())
    );
    let last: f64 = values.last().unwrap()[1].as_str().unwrap().parse().unwrap();
    assert!((last - 10.0 / 15.0).abs() < 1e-9, "{body}");
}

#[tokio::test]
async fn series_and_labels_accept_post_forms_and_limits() {
    let (app, admin) = setup().await;
    let (status, _, body) = app
        .call_form(
            "POST",
            "/api/v1/series",
            Some(&admin),
            "match%5B%5D=up&match%5B%5D=http_requests_total&limit=2",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"http_requests_total","instance":"a","job":"api"},{"__name__":"up","instance":"a","job":"api"}],"warnings":["results truncated due to limit"]}"#
    );
    let (_, _, body) = app
        .call_form("POST", "/api/v1/labels", Some(&admin), "match%5B%5D=up")
        .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","instance","job"]}"#
    );
    let (_, _, body) = app
        .call_form("POST", "/api/v1/label/instance/values", Some(&admin), "")
        .await;
    assert_eq!(body, r#"{"status":"success","data":["a","b"]}"#);
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/series",
        &[("match[]", "up"), ("limit", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains(r#"invalid parameter \"limit\""#), "{body}");
}

#[tokio::test]
async fn format_metadata_exemplars_and_status_routes_answer_prometheus_shapes() {
    let (app, admin) = setup().await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/format_query",
        &[("query", "sum(rate(foo{bar=\"baz\"}[5m])) by (x)")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":"sum by (x) (rate(foo{bar=\"baz\"}[5m]))"}"#
    );
    let (status, _, _) = app
        .call_form("POST", "/api/v1/format_query", Some(&admin), "query=up%7B")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, body) = app.get_text("/api/v1/metadata", &admin).await;
    assert_eq!(body, r#"{"status":"success","data":{}}"#);
    let (_, body) = get(&app, &admin, "/api/v1/query_exemplars", &[("query", "up")]).await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);

    let (status, body) = app.get_text("/api/v1/status/runtimeinfo", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["storageRetention"], "15d");
    assert!(v["data"]["startTime"].as_str().unwrap().ends_with('Z'));

    let (_, body) = app.get_text("/api/v1/status/tsdb", &admin).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let head = &v["data"]["headStats"];
    assert_eq!(head["numSeries"], 3);
    assert_eq!(head["numLabelPairs"], 2 + 2 + 1);
    assert_eq!(head["minTime"], T0);
    assert_eq!(head["maxTime"], T0 + 20 * 15_000);
    assert_eq!(
        v["data"]["labelValueCountByLabelName"],
        json!([{"name": "__name__", "value": 2}, {"name": "instance", "value": 2}, {"name": "job", "value": 1}])
    );
}

#[tokio::test]
async fn queries_need_the_read_scope_and_are_audited() {
    let (app, admin) = setup().await;
    let (status, body) = app.call("GET", "/api/v1/query?query=up", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errorType"], "unauthorized");
    let ingest = app.token_bearer(&admin, "shipper", &["ingest"]).await;
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=1&step=1",
        "/api/v1/metadata",
        "/api/v1/status/tsdb",
        "/api/v1/metrics/latest",
    ] {
        let (status, _) = app.call("GET", path, Some(&ingest), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _, _) = app
        .call_form("POST", "/api/v1/query", Some(&ingest), "query=up")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A read token works, as a bearer and as a basic-auth password (promtool's way).
    let (_, created) = app
        .call(
            "POST",
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "grafana", "scopes": ["read"]})),
        )
        .await;
    let token = created["data"]["token"].as_str().unwrap();
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("grafana:{token}"))
    );
    let (status, body) = app
        .get_text("/api/v1/query?query=count(up)&time=1700000000", &basic)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""value":[1700000000,"2"]"#), "{body}");
    let records = app.audit_records();
    let rec = records
        .iter()
        .rfind(|r| r["action"] == "metrics.query")
        .unwrap();
    assert!(
        rec["actor"].as_str().unwrap().starts_with("token:"),
        "{rec}"
    );
    assert_eq!(rec["details"]["query"], "query=count(up)&time=1700000000");
}

#[tokio::test]
async fn tenants_query_only_their_own_data() {
    let (app, admin) = setup().await;
    app.add_user("other", "olga", "olga-password", Role::Admin)
        .await;
    let olga = app.bearer("olga", "olga-password").await;
    // A tenant without any data: empty results, and constant queries still work.
    let (status, body) = get(
        &app,
        &olga,
        "/api/v1/query",
        &[("query", "up"), ("time", "1700000000")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
    );
    let (_, body) = get(
        &app,
        &olga,
        "/api/v1/query",
        &[("query", "1 + 1"), ("time", "1700000000")],
    )
    .await;
    assert!(body.contains(r#""2"]"#), "{body}");
    // With data of its own, it still sees only its own.
    app.append(
        "other",
        &[("__name__", "up"), ("job", "olga")],
        &[(T0, 7.0)],
    );
    let (_, body) = get(
        &app,
        &olga,
        "/api/v1/query",
        &[("query", "up"), ("time", "1700000000")],
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"olga"},"value":[1700000000,"7"]}]}}"#
    );
    let (_, body) = get(
        &app,
        &admin,
        "/api/v1/query",
        &[("query", "count(up)"), ("time", "1700000000")],
    )
    .await;
    assert!(body.contains(r#"[1700000000,"2"]"#), "{body}");
    let (_, body) = app.get_text("/api/v1/label/job/values", &olga).await;
    assert_eq!(body, r#"{"status":"success","data":["olga"]}"#);
}
