//! The ticketing pack end to end, through the real binary: `dozor sim marketplace` sends a
//! simulated week of a ticket marketplace — ordinary buyers with borderline cases, and
//! injected scalpers, bots and other abusers — to `dozor serve`'s analytics routes over
//! HTTP; the fraud detectors find them, `pack:ticketing` (`deploy/rules/ticketing.yml`) fires one
//! `FraudFindings` alert per injected pattern — and no other — and a real local webhook
//! receives them. The tickets' chain events (mints, transfers, and a congested drop at the
//! end of the week) go to the events route; the drop — and nothing else on the chain —
//! raises `ChainFailureRateHigh` for mints. The rules' unit tests run under `dozor test
//! rules` and `promtool`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Listener, Server, dozor};

const TOKEN: &str = "dzr_ticketing-test-token-0123456789";

fn rules() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rules")
}

#[test]
fn the_ticketing_rules_pass_their_unit_tests() {
    common::rule_tests_pass(&rules().join("ticketing.test.yml"));
}

#[test]
fn a_simulated_marketplace_raises_one_alert_per_injected_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(0);
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, pattern]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n  files: ['pack:ticketing']\nalerting:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
    );
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let out = dozor()
        .args([
            "sim",
            "marketplace",
            "--users",
            "60",
            "--seed",
            "7",
            "--truth",
            "--url",
        ])
        .arg(server.url(""))
        .arg("--token-file")
        .arg(dir.path().join("token"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Fraud patterns are lower-case; the chain's alerts are named as alerts.
    type Truth = BTreeSet<(String, String)>;
    let (chain_truth, truth): (Truth, Truth) = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, s)| (p.to_owned(), s.to_owned()))
        .partition(|(p, _)| p.starts_with(char::is_uppercase));
    let truth: BTreeSet<String> = truth.into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        chain_truth,
        BTreeSet::from([("ChainFailureRateHigh".to_owned(), "mint".to_owned())])
    );
    assert!(
        truth.contains("scalper") && truth.contains("bot"),
        "{truth:?}"
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("sent "), "{said}");

    // (alert, pattern or operation) of the alerts in `state`.
    let alerts = |server: &Server, state: &str| -> BTreeSet<(String, String)> {
        server.get_json("/api/v1/alerts", TOKEN)["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == state)
            .map(|a| {
                let l = &a["labels"];
                let subject = l["pattern"].as_str().or(l["operation"].as_str());
                (
                    l["alertname"].as_str().unwrap().to_owned(),
                    subject.unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let firing = |server: &Server| alerts(server, "firing");
    let until = Instant::now() + Duration::from_secs(30);
    let expected: BTreeSet<(String, String)> = truth
        .iter()
        .map(|p| ("FraudFindings".to_owned(), p.clone()))
        .collect();
    let got = loop {
        let got: BTreeSet<(String, String)> = firing(&server)
            .into_iter()
            .filter(|(a, _)| a == "FraudFindings")
            .collect();
        if got == expected || Instant::now() > until {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        got, expected,
        "one alert per injected pattern, and no other"
    );
    // High-risk alerts name patterns that were injected.
    let high: BTreeSet<String> = firing(&server)
        .into_iter()
        .filter(|(a, _)| a == "FraudHighRisk")
        .map(|(_, p)| p)
        .collect();
    assert!(high.is_subset(&truth), "{high:?} ⊄ {truth:?}");
    assert!(!high.is_empty(), "some findings are high-risk");

    // The webhook receives them.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let notified: BTreeSet<String> = hook
            .seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["labels"]["alertname"] == "FraudFindings")
            .filter_map(|a| a["labels"]["pattern"].as_str().map(str::to_owned))
            .collect();
        if notified == truth {
            break;
        }
        assert!(
            Instant::now() < until,
            "notified {notified:?}, expected {truth:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The findings are there to investigate, and the sales to count.
    let f = server.get_json(
        "/api/v1/fraud/events?pattern=scalper&investigated=false",
        TOKEN,
    );
    assert!(!f["data"]["events"].as_array().unwrap().is_empty(), "{f}");
    let d = server.get_json("/api/v1/analytics/dashboard?range=8d", TOKEN);
    assert!(d["data"]["sales"]["sales"].as_f64().unwrap() > 10.0, "{d}");

    // The chain: only the drop's mints raise an alert — pending at once, firing after its
    // `for: 1m` — and the webhook receives it.
    let chain = |server: &Server, state: &str| -> BTreeSet<(String, String)> {
        alerts(server, state)
            .into_iter()
            .filter(|(a, _)| a.starts_with("Chain"))
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(150);
    loop {
        let (firing, pending) = (chain(&server, "firing"), chain(&server, "pending"));
        assert!(
            firing.union(&pending).all(|a| chain_truth.contains(a)),
            "firing {firing:?}, pending {pending:?}"
        );
        if firing == chain_truth {
            break;
        }
        assert!(Instant::now() < until, "never fired: {chain_truth:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let until = Instant::now() + Duration::from_secs(30);
    while !hook.seen.lock().unwrap().iter().any(|(_, b)| {
        b["alerts"].as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "ChainFailureRateHigh" && a["labels"]["operation"] == "mint"
        })
    }) {
        assert!(
            Instant::now() < until,
            "the chain alert never reached the webhook"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The chain routes: the mints' failure ratio, the failed transactions, one's history.
    let m = server.get_json("/api/v1/chain/metrics?range=10m", TOKEN);
    let mint = m["data"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "mint")
        .cloned()
        .unwrap_or_else(|| panic!("{m}"));
    let ratio = mint["failureRatio"].as_f64().unwrap();
    assert!((0.2..0.5).contains(&ratio), "{mint}");
    assert!(
        mint["confirmationMs"]["p95"].as_f64().unwrap() > 3_000.0,
        "{mint}"
    );
    assert!(
        m["data"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "mint"),
        "{m}"
    );
    let t = server.get_json(
        "/api/v1/chain/transactions?status=failed&operation=mint&range=15m&limit=5",
        TOKEN,
    );
    let failed = t["data"]["transactions"].as_array().unwrap();
    assert_eq!(failed.len(), 5, "{t}");
    assert!(t["data"]["total"].as_u64().unwrap() > 50, "{t}");
    assert!(
        failed
            .iter()
            .all(|x| x["status"] == "failed" && x["error"].is_string())
    );
    let signature = failed[0]["signature"].as_str().unwrap();
    let one = server.get_json(&format!("/api/v1/chain/transactions/{signature}"), TOKEN);
    let history: Vec<&str> = one["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["submitted", "failed"], "{one}");
}
