//! `/api/v1/slos`: an SLO's error ratio over its window, the budget left and the burn rates,
//! from its counters; only the caller's tenant's SLOs.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use axum::http::StatusCode;
use dozor_rules::slo::Slo;

#[tokio::test]
async fn an_slo_reports_its_budget_and_how_fast_it_burns() {
    let slo = |name: &str| Slo {
        name: name.into(),
        objective: 0.99,
        errors: r#"requests_total{code="500"}"#.into(),
        total: "requests_total".into(),
        window_days: 30,
    };
    let app = common::app_with_settings(|s| {
        s.slos = vec![
            ("default".parse().unwrap(), slo("checkout")),
            ("acme".parse().unwrap(), slo("theirs")),
        ];
    })
    .await;
    // Three days of 100 requests a minute; in the last hour one in ten fails.
    let now = dozor_model::time::now_ms() / 60_000 * 60_000;
    let (mut total, mut errors) = (0.0, 0.0);
    let (mut t_samples, mut e_samples) = (Vec::new(), Vec::new());
    for m in (0..=3 * 24 * 60).rev() {
        total += 100.0;
        if m < 60 {
            errors += 10.0;
        }
        let t = now - m * 60_000;
        t_samples.push((t, total));
        e_samples.push((t, errors));
    }
    app.append(
        "default",
        &[("__name__", "requests_total"), ("code", "200")],
        &t_samples,
    );
    app.append(
        "default",
        &[("__name__", "requests_total"), ("code", "500")],
        &e_samples,
    );
    let admin = app.bearer("admin", common::ADMIN_PASSWORD).await;
    let (s, body) = app.call("GET", "/api/v1/slos", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let slos = body["data"]["slos"].as_array().unwrap();
    assert_eq!(slos.len(), 1, "only the caller's tenant's: {body}");
    let s = &slos[0];
    assert_eq!(s["name"], "checkout");
    // 600 failures among 432,700 events (the failures count as events too): 0.139 % of a
    // 1 % budget spent, 86 % left.
    let ratio = s["errorRatio"].as_f64().unwrap();
    assert!((0.0013..0.0015).contains(&ratio), "{s}");
    let left = s["budgetRemaining"].as_f64().unwrap();
    assert!((0.85..0.87).contains(&left), "{s}");
    // The last hour: 600 of 6,600 fail, 9.1 % — 9× the budget's pace; over three days 0.14×.
    let burn_1h = s["burnRate"]["1h"].as_f64().unwrap();
    assert!((8.5..9.5).contains(&burn_1h), "{s}");
    let burn_3d = s["burnRate"]["3d"].as_f64().unwrap();
    assert!((0.1..0.2).contains(&burn_3d), "{s}");
}
