//! The rule engine through the binary: `dozor check rules` and `dozor test rules` on the
//! files `promtool` is checked against (crates/rules/tests/promtool), `dozor check config`
//! refusing a configuration whose rule file is bad, and `dozor serve` evaluating rule
//! groups — recording into the store, alerts going pending → firing in `/api/v1/alerts`,
//! `dozor_rule_*` metrics — with the `for` timer of a pending alert restored after
//! `kill -9` from the `ALERTS_FOR_STATE` series the first run wrote, and the alert
//! history keeping one episode per firing across restarts; the shipped `pack:pipeline`
//! turning a large transaction posted to `/api/v1/events` into a row of
//! `/api/v1/anomalies`; the shipped `pack:shop` (seed 002) passing its unit tests under
//! `dozor test rules` and `promtool`, and turning the demo's shop log lines into recorded
//! business series, a large order's anomaly event and a FATAL line's alert; a structured
//! rule made through `/api/v1/alerts/rules` evaluated, reloaded from the state store after
//! `kill -9`, and resolved when deleted.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, dozor, wait_for};

const TOKEN: &str = "dzr_rules-test-admin-token-0123456";

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules/tests/promtool")
        .join(rel)
}

fn run(args: &[&str]) -> (bool, String) {
    let out = dozor().args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_and_test_rules_from_the_command_line() {
    let node = shared("pass/node.yml");
    let (ok, out) = run(&[
        "check",
        "rules",
        node.to_str().unwrap(),
        shared("pass/shop.yml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("node.yml: ok, 5 rules in 2 groups"), "{out}");

    let bad = shared("fail/bad_rules.yml");
    let (ok, out) = run(&["check", "rules", bad.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("bad_rules.yml:6:15: group \"broken\", rule 1, \"HalfWritten\": could not parse expression"), "{out}");
    assert!(
        out.contains("rule 2, \"not a metric name\": invalid recording rule name"),
        "{out}"
    );

    let (ok, out) = run(&[
        "test",
        "rules",
        shared("pass/node_test.yml").to_str().unwrap(),
        shared("pass/shop_test.yml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("SUCCESS").count(), 2, "{out}");

    let (ok, out) = run(&[
        "test",
        "rules",
        shared("pass/node_test.yml").to_str().unwrap(),
        shared("fail/early_alert_test.yml").to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("SUCCESS") && out.contains("FAILED:"), "{out}");
    assert!(out.contains("alertname: InstanceDown, time: 6m"), "{out}");

    let (ok, out) = run(&["test", "rules", "/nonexistent/x_test.yml"]);
    assert!(!ok);
    assert!(out.contains("cannot read /nonexistent/x_test.yml"), "{out}");
    let (ok, out) = run(&["check", "rules"]);
    assert!(!ok, "{out}");
}

#[test]
fn check_config_refuses_a_bad_rule_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shared("fail/bad_rules.yml"), dir.path().join("bad.yml")).unwrap();
    // Relative to the configuration file's directory.
    std::fs::write(dir.path().join("dozor.yml"), "rules:\n  files: [bad.yml]\n").unwrap();
    let (ok, out) = run(&[
        "check",
        "config",
        dir.path().join("dozor.yml").to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("bad.yml:6:15: group \"broken\", rule 1, \"HalfWritten\""),
        "{out}"
    );
    assert!(out.contains("and 1 more; see `dozor check rules`"), "{out}");

    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  files: [missing/*.yml]\n",
    )
    .unwrap();
    let (ok, out) = run(&[
        "check",
        "config",
        dir.path().join("dozor.yml").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(out.contains("no rule file matches"), "{out}");

    std::fs::copy(shared("pass/node.yml"), dir.path().join("node.yml")).unwrap();
    std::fs::write(dir.path().join("dozor.yml"), "rules:\n  evaluation_interval: 15s\n  files: [node.yml]\n  tenants:\n    acme: [node.yml]\n").unwrap();
    let (ok, out) = run(&[
        "check",
        "config",
        dir.path().join("dozor.yml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
}

const RULE_FILE: &str = r#"
groups:
  - name: queues
    interval: 1s
    rules:
      - record: job:queue_depth:max
        expr: max by (job) (queue_depth)
      - alert: QueueBacklog
        expr: job:queue_depth:max > 100
        for: 12s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} has {{ $value }} queued"
"#;

fn start(dir: &Path) -> Server {
    Server::start_with(
        &dir.join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", dir.join("dozor.yml").to_str().unwrap()],
    )
}

fn alerts(server: &Server) -> Vec<serde_json::Value> {
    server.get_json("/api/v1/alerts", TOKEN)["data"]["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

fn push(server: &Server, body: &str) {
    let (status, _) = send(server, "POST", "/api/v1/metrics", body);
    assert!(status.is_success(), "{status}");
}

/// Sends a JSON body with the admin token: the status and the answer.
fn send(
    server: &Server,
    method: &str,
    path: &str,
    body: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    server.send(TOKEN, method, path, body)
}

#[test]
fn serve_evaluates_rules_and_restores_for_timers_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("queues.yml"), RULE_FILE).unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  files: [queues.yml]\n",
    )
    .unwrap();
    let server = start(dir.path());
    push(
        &server,
        r#"[{"name": "queue_depth", "value": 150, "labels": {"job": "orders"}}]"#,
    );

    let pending = wait_for("a pending alert", Duration::from_secs(20), || {
        alerts(&server)
            .into_iter()
            .find(|a| a["state"] == "pending")
    });
    assert_eq!(pending["labels"]["alertname"], "QueueBacklog");
    assert_eq!(pending["labels"]["severity"], "page");
    assert_eq!(pending["annotations"]["summary"], "orders has 150 queued");
    let active_at = pending["activeAt"].as_str().unwrap().to_owned();

    // The recording rule wrote its series; the group's counters are exported.
    let q = server.get_json("/api/v1/query?query=job:queue_depth:max", TOKEN);
    assert_eq!(q["data"]["result"][0]["value"][1], "150", "{q}");
    let metrics = server.get_text("/metrics", TOKEN);
    assert!(
        metrics.contains("dozor_rule_group_rules{tenant=\"default\",rule_group=\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("dozor_alerts{tenant=\"default\",rule_group=\"")
            && metrics.contains("state=\"pending\"} 1"),
        "{metrics}"
    );

    // A few evaluations later (ALERTS_FOR_STATE is in the WAL), kill -9 while still pending.
    std::thread::sleep(Duration::from_secs(4));
    assert!(alerts(&server).iter().all(|a| a["state"] == "pending"));
    kill_9(server);

    let server = start(dir.path());
    // After restart, the alert keeps the time it became active: its `for` goes on.
    let restored = wait_for("the alert after restart", Duration::from_secs(20), || {
        alerts(&server)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "QueueBacklog")
    });
    assert_eq!(restored["activeAt"], active_at.as_str(), "{restored}");
    let firing = wait_for("the alert firing", Duration::from_secs(30), || {
        alerts(&server).into_iter().find(|a| a["state"] == "firing")
    });
    assert_eq!(firing["activeAt"], active_at.as_str());
    let rules = server.get_json("/api/v1/rules", TOKEN);
    let rule = &rules["data"]["groups"][0]["rules"][1];
    assert_eq!(rule["state"], "firing", "{rules}");
    assert_eq!(rule["health"], "ok");

    // Firing opened one episode in the alert history.
    let id = firing["id"].as_str().unwrap().to_owned();
    let episodes = wait_for("the episode", Duration::from_secs(10), || {
        let e = history(&server);
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0]["alertId"], id.as_str());
    assert_eq!(episodes[0]["state"], "firing");

    // kill -9 while firing: the restarted server fires the alert again (its `for` is
    // restored) without opening a second episode.
    kill_9(server);
    let server = start(dir.path());
    wait_for("the alert firing again", Duration::from_secs(30), || {
        alerts(&server).into_iter().find(|a| a["state"] == "firing")
    });
    std::thread::sleep(Duration::from_secs(2));
    let episodes = history(&server);
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0]["state"], "firing");

    // Down again, and the rule changes so that the alert no longer holds: the episode the
    // earlier run left open is resolved after the first evaluation.
    kill_9(server);
    std::fs::write(
        dir.path().join("queues.yml"),
        RULE_FILE.replace("> 100", "> 1000"),
    )
    .unwrap();
    let server = start(dir.path());
    let episodes = wait_for(
        "the stale episode resolved",
        Duration::from_secs(20),
        || {
            let e = history(&server);
            (e.first()?["state"] == "resolved").then_some(e)
        },
    );
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0]["resolvedBy"], "condition");
    assert!(alerts(&server).is_empty());
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

fn history(server: &Server) -> Vec<serde_json::Value> {
    server.get_json("/api/v1/alerts/history", TOKEN)["data"]["episodes"]
        .as_array()
        .unwrap()
        .clone()
}

fn kill_9(server: Server) {
    let _ = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    drop(server);
}

#[test]
fn the_pipeline_pack_turns_a_large_transaction_into_an_anomaly_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n  files: [pack:pipeline]\n",
    )
    .unwrap();
    let server = start(dir.path());
    let groups = server.get_json("/api/v1/rules", TOKEN)["data"]["groups"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(groups, 3, "the pack's three groups are loaded");

    let events = r#"[{"type": "transaction", "user_id": "u-17", "amount": 25000},
                     {"type": "transaction", "user_id": "u-18", "amount": 40}]"#;
    let (status, _) = send(&server, "POST", "/api/v1/events", events);
    assert!(status.is_success(), "{status}");

    let rows = wait_for("an anomaly event", Duration::from_secs(30), || {
        let rows =
            server.get_json("/api/v1/anomalies?type=transactions", TOKEN)["data"]["anomalies"]
                .as_array()
                .unwrap()
                .clone();
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["user_id"], "u-17");
    assert_eq!(row["alert_level"], "warning");
    assert_eq!(row["alert_title"], "User u-17: transaction of 25000");
    assert_eq!(row["metrics"]["value"], 25000.0);
    assert_eq!(row["tags"]["alertname"], "LargeTransaction");
    let firing = alerts(&server);
    assert!(
        firing
            .iter()
            .any(|a| a["labels"]["alertname"] == "LargeTransaction"
                && a["labels"]["user_id"] == "u-17"),
        "{firing:?}"
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

/// `deploy/rules/shop.test.yml`, the unit tests of pack:shop's PromQL half.
fn shop_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rules/shop.test.yml")
}

#[test]
fn the_shop_pack_passes_its_unit_tests_under_dozor_and_promtool() {
    common::rule_tests_pass(&shop_tests());
}

/// The demo's JSON lines (`ts`, `service`, `level`, `msg`, and a `user_id` field) through
/// `/api/v1/logs/ingest`: pack:shop records orders from them, turns a large order into an
/// anomaly event (a LogQL alert) and a FATAL line into an alert (a PromQL alert over a
/// series its LogQL group recorded); a real local webhook receives both alerts.
#[test]
fn the_shop_pack_turns_demo_lines_into_business_series_and_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    let hook = common::Listener::start(0);
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n  files: [pack:shop]\nalerting:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    let server = start(dir.path());
    let groups = server.get_json("/api/v1/rules", TOKEN)["data"]["groups"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(groups, 9, "the pack's nine groups are loaded");

    let now = dozor_model::time::now_ms();
    let line = |service: &str, level: &str, msg: &str, user: &str| {
        serde_json::json!({"ts": now, "service": service, "level": level, "msg": msg, "user_id": user})
            .to_string()
    };
    let mut lines: Vec<String> = (0..10)
        .map(|i| {
            line(
                "checkout",
                "info",
                &format!("order A-10000{i} created, 2 items, total 1500.00 RUB"),
                "u-1",
            )
        })
        .collect();
    lines.push(line(
        "checkout",
        "info",
        "order A-900001 created, 40 items, total 250000.00 RUB",
        "u-77",
    ));
    lines.push(line(
        "mes-api",
        "FATAL",
        "database connection lost: too many clients",
        "",
    ));
    let (status, body) = send(&server, "POST", "/api/v1/logs/ingest", &lines.join("\n"));
    assert!(status.is_success(), "{status}: {body}");

    let rows = wait_for("the large order's anomaly", Duration::from_secs(30), || {
        let rows = server.get_json("/api/v1/anomalies?type=business", TOKEN)["data"]["anomalies"]
            .as_array()
            .unwrap()
            .clone();
        rows.into_iter()
            .find(|r| r["tags"]["alertname"] == "ShopLargeOrder")
    });
    assert_eq!(rows["user_id"], "u-77", "{rows}");
    assert_eq!(rows["tags"]["order_id"], "A-900001");
    assert_eq!(rows["alert_title"], "Order A-900001: 250000.00 RUB");
    // 11 orders in the last 5 minutes: 2.2 a minute.
    let orders = wait_for("the recorded orders", Duration::from_secs(20), || {
        let q = server.get_json("/api/v1/query?query=shop:orders_created:per_minute", TOKEN);
        let v = q["data"]["result"][0]["value"][1].as_str()?.to_owned();
        (v != "0").then_some(v)
    });
    assert_eq!(orders, "2.2");
    let fatal = wait_for("the FATAL line's alert", Duration::from_secs(30), || {
        alerts(&server)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "ShopServiceFatal" && a["state"] == "firing")
    });
    assert_eq!(fatal["labels"]["service"], "mes-api");
    assert_eq!(fatal["labels"]["severity"], "critical");
    // The receiver gets both.
    wait_for(
        "both alerts at the webhook",
        Duration::from_secs(30),
        || {
            let seen: std::collections::BTreeSet<String> = hook
                .seen
                .lock()
                .unwrap()
                .iter()
                .flat_map(|(_, b)| b["alerts"].as_array().cloned().unwrap_or_default())
                .filter(|a| a["status"] == "firing")
                .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
                .collect();
            (seen.contains("ShopLargeOrder") && seen.contains("ShopServiceFatal")).then_some(())
        },
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

#[test]
fn a_rule_made_through_the_api_is_evaluated_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n",
    )
    .unwrap();
    let server = start(dir.path());
    push(
        &server,
        r#"[{"name": "error_rate", "value": 7.5, "labels": {"service": "shop"}}]"#,
    );
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/alerts/rules",
        r#"{"name": "high_error_rate", "severity": "critical", "cooldown": 300,
            "condition": {"type": "threshold", "metric": "error_rate", "operator": ">", "value": 5}}"#,
    );
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();

    // The tenant's first structured rule starts a group, which the scheduler picks up.
    let firing = wait_for("the rule's alert firing", Duration::from_secs(20), || {
        alerts(&server).into_iter().find(|a| a["state"] == "firing")
    });
    assert_eq!(firing["labels"]["alertname"], "high_error_rate");
    assert_eq!(firing["labels"]["rule_id"], id.as_str());
    wait_for("the episode", Duration::from_secs(10), || {
        (history(&server).len() == 1).then_some(())
    });

    // Loaded from the state store at start: it fires again, in the same episode.
    kill_9(server);
    let server = start(dir.path());
    wait_for(
        "the alert firing after restart",
        Duration::from_secs(20),
        || {
            alerts(&server)
                .into_iter()
                .find(|a| a["state"] == "firing" && a["labels"]["rule_id"] == id.as_str())
        },
    );
    let rule = server.get_json(&format!("/api/v1/alerts/rules/{id}"), TOKEN);
    assert_eq!(rule["data"]["state"], "firing", "{rule}");
    std::thread::sleep(Duration::from_secs(2));
    let episodes = history(&server);
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0]["state"], "firing");

    // Deleted: its alert resolves and the episode closes.
    let (status, _) = send(&server, "DELETE", &format!("/api/v1/alerts/rules/{id}"), "");
    assert!(status.is_success(), "{status}");
    wait_for("the episode resolved", Duration::from_secs(20), || {
        (history(&server).first()?["state"] == "resolved").then_some(())
    });
    assert!(alerts(&server).is_empty());
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

/// Seed 000's new-error-cluster alert: a structured `log_pattern` rule learns the error
/// templates of the last minute from history when it is made; a template that appears
/// afterwards fires once it holds three lines, named by its template.
#[test]
fn a_new_error_template_fires_a_log_pattern_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n",
    )
    .unwrap();
    let server = start(dir.path());
    let ingest = |lines: &[String]| {
        let (status, body) = send(&server, "POST", "/api/v1/logs/ingest", &lines.join("\n"));
        assert!(status.is_success(), "{status}: {body}");
    };
    let now_ns = || dozor_model::time::now_ms() * 1_000_000;
    // A known error, with changing numbers, before the rule exists.
    let known: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"_time": {}, "service": "kkt", "level": "error", "_msg": "OFD exchange failed for register {}"}}"#,
                now_ns() - (30 - i) * 1_000_000_000,
                4000 + i * 7
            )
        })
        .collect();
    ingest(&known);
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/alerts/rules",
        r#"{"name": "NewErrorPattern", "severity": "warning",
            "condition": {"type": "log_pattern", "query": "{service=\"kkt\", level=\"error\"}",
                          "min_cluster_size": 3, "learn": "1m", "new_for": "10m"}}"#,
    );
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    // The known error goes on; nothing fires.
    std::thread::sleep(Duration::from_secs(3));
    ingest(&[format!(
        r#"{{"_time": {}, "service": "kkt", "level": "error", "_msg": "OFD exchange failed for register 9999"}}"#,
        now_ns()
    )]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alerts(&server).is_empty(), "{:?}", alerts(&server));
    // A new error: two lines are not yet a cluster, three are.
    let new = |n: i64| {
        format!(
            r#"{{"_time": {}, "service": "kkt", "level": "error", "_msg": "FN archive full at document {}"}}"#,
            now_ns(),
            18_000 + n * 13
        )
    };
    ingest(&[new(1), new(2)]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alerts(&server).is_empty(), "{:?}", alerts(&server));
    ingest(&[new(3)]);
    let firing = wait_for("the new template's alert", Duration::from_secs(20), || {
        alerts(&server).into_iter().find(|a| a["state"] == "firing")
    });
    assert_eq!(firing["labels"]["alertname"], "NewErrorPattern");
    assert_eq!(
        firing["labels"]["template"],
        "FN archive full at document <*>"
    );
    assert_eq!(alerts(&server).len(), 1, "only the new template");
}
