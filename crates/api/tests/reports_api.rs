//! `/api/v1/reports`: definitions checked field by field, stored with their next run;
//! generation from the metric and log stores into HTML and CSV; the history and its
//! documents; scoped roles limited to their own reports, since a run holds what its owner
//! sees; another tenant sees nothing.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_model::Role;
use serde_json::{Value, json};

fn report() -> Value {
    json!({
        "name": "Shop <daily>",
        "description": "Orders & errors",
        "range": "1h",
        "schedule": {"every": "daily", "at": "07:00", "timezone": "Europe/Moscow"},
        "sections": [
            {"title": "Orders", "kind": "table", "query": "sum by (region) (orders_total)"},
            {"title": "Total", "kind": "stat", "query": "sum(orders_total)", "unit": "orders"},
            {"title": "Over the hour", "kind": "chart", "query": "sum(orders_total)"},
            {"title": "Error lines", "kind": "stat", "language": "logql",
             "query": "sum(count_over_time({service=\"shop\", level=\"error\"}[1h]))"},
            {"title": "Broken", "kind": "stat", "query": "orders_total * on() orders_total"}
        ]
    })
}

#[tokio::test]
async fn reports_are_checked_generated_and_kept_with_their_documents() {
    let app = common::app().await;
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let now = dozor_model::time::now_ms();
    for (region, v) in [("msk", 1250.0), ("spb", 310.0)] {
        app.append(
            "default",
            &[("__name__", "orders_total"), ("region", region)],
            &[(now - 120_000, v - 10.0), (now - 1000, v)],
        );
    }
    let lines = (0..3)
        .map(|i| json!({"_time": (now - 60_000) * 1_000_000 + i, "service": "shop", "level": "error", "_msg": format!("payment failed {i}")}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (s, _, _) = app
        .call_raw("POST", "/api/v1/logs/ingest", Some(&admin), Some(lines))
        .await;
    assert_eq!(s, StatusCode::OK);

    // Bad definitions name the field.
    let mut bad = report();
    bad["sections"][2]["query"] = json!("sum(");
    let (s, body) = app
        .call("POST", "/api/v1/reports", Some(&admin), Some(bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid report: sections[2].query: "),
        "{body}"
    );
    let mut bad = report();
    bad["recipients"] = json!(["ops@shop.example"]);
    let (s, body) = app
        .call("POST", "/api/v1/reports", Some(&admin), Some(bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid report: receiver: "),
        "{body}"
    );

    let (s, created) = app
        .call("POST", "/api/v1/reports", Some(&admin), Some(report()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    // 07:00 in Moscow is 04:00 UTC.
    assert!(
        created["data"]["nextRunAt"]
            .as_str()
            .unwrap()
            .contains("T04:00:00"),
        "{created}"
    );
    assert_eq!(created["data"]["owner"], "admin");
    let (_, list) = app
        .call("GET", "/api/v1/reports/scheduled", Some(&admin), None)
        .await;
    assert_eq!(list["data"]["reports"][0]["id"], id.as_str());

    let (s, run) = app
        .call(
            "POST",
            &format!("/api/v1/reports/{id}/generate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(
        run["data"]["status"], "generated",
        "no recipients: nothing to send"
    );
    assert_eq!(run["data"]["trigger"], "manual");
    let run_id = run["data"]["id"].as_str().unwrap().to_owned();

    let (s, headers, html) = app
        .call_raw(
            "GET",
            &format!("/api/v1/reports/history/{run_id}?format=html"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("<h1 style=\"font-size:22px\">Shop &lt;daily&gt;</h1>"),
        "escaped: {html}"
    );
    assert!(html.contains("<p>Orders &amp; errors</p>"), "{html}");
    assert!(html.contains(">msk<") && html.contains(">1250<"), "{html}");
    assert!(html.contains(">1560 orders<"), "{html}");
    assert!(html.contains("<polyline"), "{html}");
    assert!(
        html.contains(">3<"),
        "three error lines from the log store: {html}"
    );
    assert!(
        html.contains("The query failed: "),
        "the broken section says why: {html}"
    );
    let (s, headers, csv) = app
        .call_raw(
            "GET",
            &format!("/api/v1/reports/history/{run_id}?format=csv"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .ends_with(".csv\"")
    );
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("section,series,time,value\n"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Total,value,") && l.ends_with(",1560")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Error lines,value,") && l.ends_with(",3")),
        "{csv}"
    );
    // The chart's points: two samples ago and now, at the range's step.
    assert!(
        csv.lines()
            .filter(|l| l.starts_with("Over the hour,"))
            .count()
            >= 2,
        "{csv}"
    );
    let (s, _) = app
        .call(
            "GET",
            &format!("/api/v1/reports/history/{run_id}?format=pdf"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, history) = app
        .call(
            "GET",
            &format!("/api/v1/reports/{id}/history"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(history["data"]["runs"].as_array().unwrap().len(), 1);

    // Scoped roles: only their own reports.
    app.add_user("default", "biz", "a-long-password-1", Role::Business)
        .await;
    app.add_user("default", "sup", "a-long-password-1", Role::Support)
        .await;
    app.add_user("default", "view", "a-long-password-1", Role::Viewer)
        .await;
    let biz = app.bearer("biz", "a-long-password-1").await;
    let sup = app.bearer("sup", "a-long-password-1").await;
    let view = app.bearer("view", "a-long-password-1").await;
    for (who, sees) in [(&biz, false), (&sup, false), (&view, true)] {
        let (_, l) = app.call("GET", "/api/v1/reports", Some(who), None).await;
        assert_eq!(
            l["data"]["reports"].as_array().unwrap().len(),
            usize::from(sees)
        );
        let (s, _) = app
            .call(
                "GET",
                &format!("/api/v1/reports/history/{run_id}"),
                Some(who),
                None,
            )
            .await;
        assert_eq!(s == StatusCode::OK, sees);
    }
    let (s, own) = app
        .call("POST", "/api/v1/reports", Some(&sup), Some(report()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, l) = app.call("GET", "/api/v1/reports", Some(&sup), None).await;
    assert_eq!(l["data"]["reports"][0]["id"], own["data"]["id"]);
    let (s, _) = app
        .call(
            "PUT",
            &format!("/api/v1/reports/{id}"),
            Some(&sup),
            Some(report()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not the support user's report");

    // Another tenant.
    app.add_user("other", "oadmin", "a-long-password-1", Role::Admin)
        .await;
    let other = app.bearer("oadmin", "a-long-password-1").await;
    let (_, l) = app.call("GET", "/api/v1/reports", Some(&other), None).await;
    assert_eq!(l["data"]["reports"], json!([]));
    let (s, _) = app
        .call(
            "GET",
            &format!("/api/v1/reports/history/{run_id}?format=html"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Update and delete; the history stays.
    let mut changed = report();
    changed["enabled"] = json!(false);
    let (s, body) = app
        .call(
            "PUT",
            &format!("/api/v1/reports/{id}"),
            Some(&admin),
            Some(changed),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["nextRunAt"],
        Value::Null,
        "disabled: not scheduled"
    );
    assert_eq!(body["data"]["version"], 2);
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/reports/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call("GET", &format!("/api/v1/reports/{id}"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            "GET",
            &format!("/api/v1/reports/history/{run_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the run outlives its report");
}
