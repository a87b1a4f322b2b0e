//! Notifications through the real binary: a rule fires, Alertmanager's configuration routes
//! it, and a real local HTTP listener receives Alertmanager's webhook payload v4 — after
//! failing the first calls, which Dozor retries — then Slack's, Telegram's, PagerDuty's and
//! Discord's messages.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::{Listener, Server, SmtpSink};

#[test]
fn a_firing_rule_reaches_a_webhook_with_alertmanagers_payload_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(2);
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: always\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, team: shop}\n        annotations: {summary: 'it is on'}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: default\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  routes:\n    - matchers: ['severity=\"critical\"']\n      receiver: pager\ninhibit_rules: []\nreceivers:\n  - name: default\n  - name: pager\n    webhook_configs:\n      - url: http://127.0.0.1:{port}/hook\n        http_config: {{authorization: {{credentials: hooktoken}}, http_headers: {{X-Team: {{values: [shop]}}}}}}\n    slack_configs:\n      - {{api_url: 'http://127.0.0.1:{port}/slack', channel: '#shop'}}\n    discord_configs:\n      - webhook_url: http://127.0.0.1:{port}/discord\n    telegram_configs:\n      - {{api_url: 'http://127.0.0.1:{port}/tg', bot_token: '123:abc', chat_id: -100}}\n    pagerduty_configs:\n      - {{url: 'http://127.0.0.1:{port}/pd', routing_key: rk1, severity: critical}}\n",
            port = hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  external_url: http://dozor.example:9470\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n",
    );
    let _server = serve(dir.path());
    // Two refusals, then the payload lands: three calls of the same notification, then
    // Slack's and Discord's messages.
    let seen = hook.wait_for(7);
    assert_eq!(seen.len(), 7, "{seen:?}");
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/hook",
            "/hook",
            "/hook",
            "/slack",
            "/tg/bot123:abc/sendMessage",
            "/pd",
            "/discord"
        ]
    );
    assert_eq!(seen[0].1, seen[2].1, "the retry sends the same payload");
    let heads = hook.heads.lock().unwrap().clone();
    assert!(
        heads[0]
            .1
            .contains(&"authorization: bearer hooktoken".to_owned())
            && heads[0].1.contains(&"x-team: shop".to_owned()),
        "the webhook's http_config headers: {:?}",
        heads[0]
    );
    assert!(
        !heads[3].1.iter().any(|h| h.starts_with("authorization")),
        "only the webhook has them"
    );
    let p = &seen[2].1;
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "pager");
    assert_eq!(
        p["groupLabels"],
        serde_json::json!({"alertname": "AlwaysOn"})
    );
    assert_eq!(
        p["groupKey"],
        r#"{}/{severity="critical"}/0:{alertname="AlwaysOn"}"#
    );
    assert_eq!(p["externalURL"], "http://dozor.example:9470");
    let a = &p["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "AlwaysOn");
    assert_eq!(a["labels"]["team"], "shop");
    assert_eq!(a["annotations"]["summary"], "it is on");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    let slack = &seen[3].1;
    assert_eq!(slack["channel"], "#shop");
    assert_eq!(slack["text"], "[FIRING:1] AlwaysOn critical shop");
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(
        slack["blocks"][1]["text"]["text"],
        "• AlwaysOn (firing): it is on"
    );
    let telegram = &seen[4].1;
    assert_eq!(telegram["chat_id"], -100);
    assert_eq!(telegram["parse_mode"], "HTML");
    assert_eq!(
        telegram["text"],
        "<b>[FIRING:1] AlwaysOn critical shop</b>\nAlwaysOn (firing): it is on"
    );
    let pd = &seen[5].1;
    assert_eq!(pd["routing_key"], "rk1");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(
        pd["payload"]["summary"],
        "[FIRING:1] AlwaysOn critical shop"
    );
    assert_eq!(pd["client_url"], "http://dozor.example:9470");
    let discord = &seen[6].1["embeds"][0];
    assert_eq!(discord["title"], "[FIRING:1] AlwaysOn critical shop");
    assert_eq!(discord["description"], "AlwaysOn (firing): it is on");
    assert_eq!(discord["color"], 0x00E7_4C3C);
    // Nothing changes afterwards: no more calls before the repeat interval (4 h).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hook.seen.lock().unwrap().len(),
        7,
        "one notification, delivered once"
    );
}

const TOKEN: &str = "dzr_notify-test-token-0123456789abcdef";

/// Writes `text` to `dir/name`.
fn write(dir: &std::path::Path, name: &str, text: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `dozor serve` on `dir/dozor.yml` with its data in `dir/data` and the test token.
fn serve(dir: &std::path::Path) -> Server {
    Server::start_with(
        &dir.join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", dir.join("dozor.yml").to_str().unwrap()],
    )
}

/// `amtool` (Debian's prometheus-alertmanager) against the running server; its stdout.
fn amtool(server: &Server, http_config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("amtool")
        .arg(format!("--alertmanager.url=http://{}/", server.addr))
        .arg(format!("--http.config.file={}", http_config.display()))
        .args(args)
        .output()
        .expect("amtool runs (scripts/setup-deps installs prometheus-alertmanager)");
    assert!(
        out.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn post_alerts(server: &Server, alerts: &serde_json::Value) -> reqwest::StatusCode {
    common::block_on(async {
        reqwest::Client::new()
            .post(server.url("/api/v2/alerts"))
            .bearer_auth(TOKEN)
            .json(alerts)
            .send()
            .await
            .unwrap()
            .status()
    })
}

/// The alert names of the webhook payloads in `seen`.
fn notified(seen: &[(String, serde_json::Value)]) -> Vec<String> {
    let mut names: Vec<String> = seen
        .iter()
        .flat_map(|(_, p)| p["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            format!(
                "{}/{}",
                a["labels"]["alertname"].as_str().unwrap_or(""),
                a["labels"]["instance"].as_str().unwrap_or("")
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn alertmanager_api_v2_takes_prometheus_alerts_and_amtool_manages_silences() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(0);
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, instance]\n  group_wait: 0s\n  group_interval: 1s\ninhibit_rules:\n  - source_matchers: ['severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [instance]\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "alerting:\n  config_file: alertmanager.yml\n",
    );
    let http_config = dir.path().join("amtool-http.yml");
    std::fs::write(
        &http_config,
        format!("authorization:\n  credentials: {TOKEN}\n"),
    )
    .unwrap();
    let start = || serve(dir.path());
    let server = start();
    let alert = |name: &str, severity: &str, instance: &str| {
        serde_json::json!({
            "labels": {"alertname": name, "severity": severity, "instance": instance},
            "annotations": {"summary": format!("{name} on {instance}")},
            "startsAt": "2026-12-07T01:00:00.000+03:00",
            "generatorURL": "http://prometheus:9090/graph",
        })
    };
    // As Prometheus posts them: a critical alert inhibits the warning of its instance.
    let first = serde_json::json!([
        alert("HostDown", "critical", "a"),
        alert("Slow", "warning", "a"),
        alert("DiskFull", "warning", "b"),
    ]);
    assert_eq!(post_alerts(&server, &first), 200);
    let seen = hook.wait_for(2);
    assert_eq!(
        notified(&seen),
        ["DiskFull/b", "HostDown/a"],
        "Slow/a is inhibited"
    );
    assert_eq!(seen[0].1["alerts"][0]["startsAt"], "2026-12-06T22:00:00Z");
    assert_eq!(
        seen[0].1["alerts"][0]["generatorURL"],
        "http://prometheus:9090/graph"
    );

    // amtool reads the alerts: the inhibited one only when asked for.
    let q: serde_json::Value = serde_json::from_str(&amtool(
        &server,
        &http_config,
        &["alert", "query", "-o", "json"],
    ))
    .unwrap();
    let names: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"HostDown") && names.contains(&"DiskFull"),
        "{q}"
    );
    assert!(
        !names.contains(&"Slow"),
        "inhibited alerts are hidden by default: {q}"
    );
    let inhibited = server.get_json("/api/v2/alerts?filter=alertname%3D%22Slow%22", TOKEN);
    assert_eq!(inhibited[0]["status"]["state"], "suppressed");
    assert_eq!(
        inhibited[0]["status"]["inhibitedBy"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(inhibited[0]["receivers"][0]["name"], "hook");

    // amtool adds a silence; new DiskFull alerts stay quiet, others do not.
    let id = amtool(
        &server,
        &http_config,
        &[
            "silence",
            "add",
            "alertname=DiskFull",
            "--author=ops",
            "--duration=1h",
            "--comment=disk swap",
        ],
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let silences: serde_json::Value = serde_json::from_str(&amtool(
        &server,
        &http_config,
        &["silence", "query", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(silences[0]["id"], id.as_str());
    assert_eq!(silences[0]["createdBy"], "ops");
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(
        silences[0]["matchers"][0],
        serde_json::json!({"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true})
    );
    let second = serde_json::json!([
        alert("DiskFull", "warning", "c"),
        alert("Cpu", "warning", "c")
    ]);
    assert_eq!(post_alerts(&server, &second), 200);
    let seen = hook.wait_for(3);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        notified(&hook.seen.lock().unwrap()),
        ["Cpu/c", "DiskFull/b", "HostDown/a"],
        "DiskFull/c is silenced: {seen:?}"
    );
    let silenced = server.get_json(
        "/api/v2/alerts?filter=instance%3D%22c%22&filter=alertname%3D%22DiskFull%22",
        TOKEN,
    );
    assert_eq!(silenced[0]["status"]["silencedBy"][0], id.as_str());

    // kill -9 and start again: the silence is still there, and what was announced is not
    // announced again.
    let _ = std::process::Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    drop(server);
    let server = start();
    let silences: serde_json::Value = serde_json::from_str(&amtool(
        &server,
        &http_config,
        &["silence", "query", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(silences[0]["id"], id.as_str(), "the silence survived");
    assert_eq!(post_alerts(&server, &first), 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hook.seen.lock().unwrap().len(),
        3,
        "the notification log survived: nothing announced twice"
    );

    // amtool expires the silence: DiskFull/c, posted again, is announced.
    amtool(&server, &http_config, &["silence", "expire", &id]);
    let active: serde_json::Value = serde_json::from_str(&amtool(
        &server,
        &http_config,
        &["silence", "query", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(active, serde_json::json!([]), "no active silence");
    assert_eq!(post_alerts(&server, &second), 200);
    let seen = hook.wait_for(4);
    assert_eq!(
        notified(&seen[3..]),
        ["DiskFull/c"],
        "announced once the silence expired"
    );

    // Receivers and status as amtool's `config` shows them; bad input is a 400 naming
    // the field.
    let status = server.get_json("/api/v2/status", TOKEN);
    assert!(
        status["config"]["original"]
            .as_str()
            .unwrap()
            .contains("inhibit_rules")
    );
    assert_eq!(
        server.get_json("/api/v2/receivers", TOKEN),
        serde_json::json!([{"name": "hook"}])
    );
    let bad = serde_json::json!([{"labels": {"alertname": "X"}, "startsAt": "yesterday"}]);
    assert_eq!(post_alerts(&server, &bad), 400);
    let text = common::block_on(async {
        reqwest::Client::new()
            .post(server.url("/api/v2/alerts"))
            .bearer_auth(TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(text.contains("[0].startsAt"), "{text}");
}

#[test]
fn an_email_reaches_a_real_smtp_server_with_both_bodies_and_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path(), 1);
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: always\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, team: shop}\n        annotations: {summary: 'it is <on>'}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: dozor@shop.example\n  smtp_require_tls: false\n  smtp_hello: dozor.shop.example\nroute:\n  receiver: mail\n  group_wait: 0s\nreceivers:\n  - name: mail\n    email_configs:\n      - to: 'ops@shop.example, cto@shop.example'\n        headers: {{X-Team: shop}}\n",
            smtp.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  external_url: http://dozor.example:9470\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n",
    );
    let server = serve(dir.path());
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "the first try refused, the retry accepted");
    let m = &mails[0];
    assert_eq!(m["mail_from"], "dozor@shop.example");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@shop.example", "cto@shop.example"])
    );
    assert_eq!(m["helo"], "dozor.shop.example");
    assert_eq!(m["subject"], "[FIRING:1] AlwaysOn critical shop");
    assert_eq!(m["headers"]["X-Team"], "shop");
    assert_eq!(m["content_type"], "multipart/mixed");
    let parts = m["parts"].as_array().unwrap();
    let part = |t: &str| parts.iter().find(|p| p["type"] == t).unwrap();
    let text = part("text/plain")["text"].as_str().unwrap();
    assert!(
        text.contains("AlwaysOn (firing)") && text.contains("summary: it is <on>"),
        "{text}"
    );
    let html = part("text/html")["text"].as_str().unwrap();
    assert!(
        html.contains("<h3") && html.contains("it is &lt;on&gt;"),
        "{html}"
    );
    let snapshot = part("application/json");
    assert_eq!(snapshot["filename"], "alerts.json");
    let payload: serde_json::Value =
        serde_json::from_str(snapshot["text"].as_str().unwrap()).unwrap();
    assert_eq!(payload["version"], "4");
    assert_eq!(payload["alerts"][0]["labels"]["alertname"], "AlwaysOn");
    assert_eq!(payload["externalURL"], "http://dozor.example:9470");

    // The delivery log and the metrics saw the retry.
    let until = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = server.get_json("/api/v1/alerts/deliveries?receiver=mail", TOKEN);
        if log["data"]["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
            || Instant::now() > until
        {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let d = &log["data"]["deliveries"][0];
    assert_eq!(d["integration"], "email");
    assert_eq!(d["status"], "sent");
    assert_eq!(d["attempts"], 2);
    let metrics = server.get_text("/metrics", TOKEN);
    assert!(
        metrics.contains("dozor_notifications_total{integration=\"email\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dozor_notification_requests_failed_total{integration=\"email\"} 1"));
}

#[test]
fn critical_groups_open_incidents_with_context_and_actions_run_once_audited() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(0);
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: shop\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        for: 3s\n        labels: {severity: critical, service: shop}\n        annotations: {summary: 'checkout is down'}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        format!(
            "rules:\n  evaluation_interval: 1s\n  external_url: http://dozor.example:9470\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n  actions:\n    - name: mark\n      match: 'alertname=\"AlwaysOn\"'\n      enabled: true\n      command: {{path: /usr/bin/touch, args: ['{marks}/ran-{{{{labels.service}}}}-{{{{fingerprint}}}}']}}\n    - name: waf\n      match: 'alertname=\"AlwaysOn\"'\n      enabled: true\n      http:\n        url: 'http://127.0.0.1:{port}/waf/{{{{labels.service}}}}'\n        method: PUT\n        headers: {{X-Token: abc}}\n        body: '{{\"service\": \"{{{{labels.service}}}}\", \"summary\": \"{{{{annotations.summary}}}}\"}}'\n    - name: off\n      match: 'alertname=\"AlwaysOn\"'\n      command: {{path: /usr/bin/touch, args: ['{marks}/off']}}\n",
            marks = marks.display(),
            port = hook.port
        ),
    );
    let server = serve(dir.path());
    // Before the rule fires (`for: 3s`): the shop's logs, and a related alert.
    common::block_on(async {
        let r = reqwest::Client::new()
            .post(server.url("/api/v1/logs/ingest?_stream_fields=service"))
            .bearer_auth(TOKEN)
            .body("{\"_msg\":\"payment gateway timeout\",\"service\":\"shop\"}\n{\"_msg\":\"unrelated\",\"service\":\"crm\"}\n")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
    let related = serde_json::json!([{"labels": {"alertname": "ShopSlow", "service": "shop", "severity": "warning"}}]);
    assert_eq!(post_alerts(&server, &related), 200);

    // The incident opens, its context is collected.
    let until = Instant::now() + Duration::from_secs(30);
    let incident = loop {
        let list = server.get_json("/api/v1/incidents?status=open", TOKEN);
        let found = list["data"]["incidents"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["service_name"] == "shop").cloned());
        if let Some(i) = found {
            let one = server.get_json(
                &format!("/api/v1/incidents/{}", i["id"].as_str().unwrap()),
                TOKEN,
            );
            if one["data"]["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "context")
            {
                break one["data"].clone();
            }
        }
        assert!(Instant::now() < until, "no incident with context in 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(incident["title"], "[FIRING:1] AlwaysOn shop critical");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["created_by"], "alerting");
    assert_eq!(incident["description"], "AlwaysOn: checkout is down");
    let timeline = incident["timeline"].as_array().unwrap();
    assert_eq!(
        timeline[0]["kind"], "alert",
        "the alert first, then actions and context"
    );
    assert_eq!(timeline[0]["text"], "AlwaysOn (service=shop) firing");
    let ctx = &incident["context"];
    let logs: Vec<&str> = ctx["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["payment gateway timeout"], "the shop's lines only");
    assert_eq!(ctx["metrics"][0]["expr"], "vector(1) > 0");
    assert!(
        !ctx["metrics"][0]["series"][0]["points"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(ctx["relatedAlerts"][0]["labels"]["alertname"], "ShopSlow");

    // Both enabled actions ran, once, though the group repeats every second; the disabled
    // one never did.
    std::thread::sleep(Duration::from_secs(3));
    let ran: Vec<String> = std::fs::read_dir(&marks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].starts_with("ran-shop-"), "{ran:?}");
    let waf: Vec<_> = hook
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/waf"))
        .cloned()
        .collect();
    assert_eq!(waf.len(), 1, "once per alert");
    assert_eq!(waf[0].0, "/waf/shop");
    assert_eq!(
        waf[0].1,
        serde_json::json!({"service": "shop", "summary": "checkout is down"})
    );
    let heads = hook.heads.lock().unwrap().clone();
    let (method, headers, _) = heads
        .iter()
        .find(|(_, h, _)| h.iter().any(|l| l == "x-token: abc"))
        .unwrap();
    assert_eq!(method, "PUT");
    assert!(!headers.is_empty());
    assert!(
        hook.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/hook")
            .count()
            >= 2,
        "the group repeats"
    );
    let audit = std::fs::read_to_string(dir.path().join("data/audit/chain.jsonl")).unwrap();
    assert!(audit.contains("action:mark") && audit.contains("action:waf"));
    assert_eq!(audit.matches("\"action.run\"").count(), 2, "one run each");
    assert!(!audit.contains("action:off"));
    assert!(audit.contains("incident.open"));
    let one = server.get_json(
        &format!("/api/v1/incidents/{}", incident["id"].as_str().unwrap()),
        TOKEN,
    );
    let actions = one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action")
        .count();
    assert_eq!(actions, 2, "each run on the timeline");

    // A posted critical alert opens another incident, which resolves with it.
    let db = |ends: Option<&str>| {
        let mut a = serde_json::json!({"labels": {"alertname": "DbDown", "severity": "critical", "service": "db"}, "startsAt": "2026-12-07T00:00:00Z"});
        if let Some(e) = ends {
            a["endsAt"] = serde_json::json!(e);
        }
        serde_json::json!([a])
    };
    assert_eq!(post_alerts(&server, &db(None)), 200);
    let until = Instant::now() + Duration::from_secs(20);
    let db_incident = loop {
        let list = server.get_json("/api/v1/incidents?service=db", TOKEN);
        if let Some(i) = list["data"]["incidents"]
            .as_array()
            .and_then(|l| l.first().cloned())
        {
            break i;
        }
        assert!(Instant::now() < until, "no incident for DbDown");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(db_incident["status"], "open");
    assert_eq!(post_alerts(&server, &db(Some("2026-12-07T00:05:00Z"))), 200);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let i = server.get_json(
            &format!("/api/v1/incidents/{}", db_incident["id"].as_str().unwrap()),
            TOKEN,
        );
        if i["data"]["status"] == "resolved" {
            assert_eq!(i["data"]["resolved_by"], "alerts");
            break;
        }
        assert!(
            Instant::now() < until,
            "the DbDown incident did not resolve: {i}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn unacknowledged_groups_escalate_stage_by_stage_and_acknowledgement_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(0);
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: shop\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, service: shop}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{p}/hook'}}]\n  - name: team\n    webhook_configs: [{{url: 'http://127.0.0.1:{p}/team'}}]\n  - name: boss\n    webhook_configs: [{{url: 'http://127.0.0.1:{p}/boss'}}]\n",
            p = hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n  oncall:\n    - {name: ops, start: '2026-01-01T00:00:00Z', shift: 10000d, people: [team, boss]}\n  escalations:\n    - name: critical\n      match: 'severity=\"critical\"'\n      stages:\n        - {delay: 2s, receiver: 'oncall:ops'}\n        - {delay: 6, receiver: boss}\n",
    );
    let server = serve(dir.path());
    let db = serde_json::json!([{"labels": {"alertname": "DbDown", "severity": "critical", "service": "db"}}]);
    assert_eq!(post_alerts(&server, &db), 200);
    let names_at = |path: &str| -> Vec<String> {
        let mut v: Vec<String> = hook
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| {
                b["alerts"][0]["labels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        v.sort();
        v
    };
    // Stage 1 for both groups.
    let until = Instant::now() + Duration::from_secs(20);
    while names_at("/team").len() < 2 {
        assert!(
            Instant::now() < until,
            "stage 1 did not come: {:?}",
            names_at("/team")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(names_at("/team"), ["AlwaysOn", "DbDown"]);
    assert!(names_at("/boss").is_empty(), "stage 2 waits 6 s");
    // Someone acknowledges DbDown's incident: it climbs no further; AlwaysOn does.
    let list = server.get_json("/api/v1/incidents?service=db", TOKEN);
    let id = list["data"]["incidents"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = common::block_on(async {
        reqwest::Client::new()
            .post(server.url(&format!("/api/v1/incidents/{id}/acknowledge")))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"comment": "on it"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let until = Instant::now() + Duration::from_secs(20);
    while names_at("/boss").is_empty() {
        assert!(Instant::now() < until, "stage 2 did not come");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        names_at("/boss"),
        ["AlwaysOn"],
        "the acknowledged group stopped"
    );
    assert_eq!(names_at("/team"), ["AlwaysOn", "DbDown"], "each stage once");
    let shop = server.get_json("/api/v1/incidents?service=shop", TOKEN);
    let shop_id = shop["data"]["incidents"][0]["id"].as_str().unwrap();
    let one = server.get_json(&format!("/api/v1/incidents/{shop_id}"), TOKEN);
    let escalations: Vec<&str> = one["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalation")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        escalations,
        [
            "escalated to team, on call for ops (policy critical, stage 1)",
            "escalated to boss (policy critical, stage 2)"
        ]
    );
}

#[test]
fn sendgrid_twilio_and_teams_receivers_call_their_apis() {
    let dir = tempfile::tempdir().unwrap();
    let api = Listener::start(0);
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: always\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical}\n        annotations: {summary: 'it is on'}\n",
    );
    write(dir.path(), "sg-key", "SG.secret\n");
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: multi\n  group_wait: 0s\nreceivers:\n  - name: multi\n    sendgrid_configs:\n      - {{api_url: 'http://127.0.0.1:{p}/sg', api_key_file: '{key}', from: dozor@shop.example, to: 'ops@shop.example, cto@shop.example'}}\n    twilio_configs:\n      - {{api_url: 'http://127.0.0.1:{p}/tw', account_sid: AC123, auth_token: tok, from: '+15550001', to: '+79990000001, +79990000002'}}\n    msteams_configs:\n      - webhook_url: 'http://127.0.0.1:{p}/teams'\n",
            p = api.port,
            key = dir.path().join("sg-key").display()
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n",
    );
    let _server = serve(dir.path());
    let seen = api.wait_for(4);
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/teams",
            "/sg/v3/mail/send",
            "/tw/2010-04-01/Accounts/AC123/Messages.json",
            "/tw/2010-04-01/Accounts/AC123/Messages.json"
        ]
    );
    let heads = api.heads.lock().unwrap().clone();
    let teams = &seen[0].1;
    assert_eq!(teams["@type"], "MessageCard");
    assert_eq!(teams["title"], "[FIRING:1] AlwaysOn critical");
    let sg = &seen[1].1;
    assert!(
        heads[1]
            .1
            .contains(&"authorization: bearer sg.secret".to_owned()),
        "{:?}",
        heads[1].1
    );
    assert_eq!(sg["from"]["email"], "dozor@shop.example");
    assert_eq!(
        sg["personalizations"][0]["to"][1]["email"],
        "cto@shop.example"
    );
    assert_eq!(sg["subject"], "[FIRING:1] AlwaysOn critical");
    assert_eq!(sg["content"][1]["type"], "text/html");
    assert_eq!(sg["attachments"][0]["filename"], "alerts.json");
    let (_, tw_headers, tw_body) = &heads[2];
    assert!(tw_headers.contains(&"content-type: application/x-www-form-urlencoded".to_owned()));
    assert!(
        tw_headers.contains(&"authorization: basic qumxmjm6dg9r".to_owned()),
        "AC123:tok, lower-cased: {tw_headers:?}"
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_str(tw_body).unwrap();
    assert_eq!(form[0], ("To".to_owned(), "+79990000001".to_owned()));
    assert_eq!(form[1], ("From".to_owned(), "+15550001".to_owned()));
    assert_eq!(
        form[2].1,
        "[FIRING:1] AlwaysOn critical\nAlwaysOn (firing): it is on"
    );
    let second: Vec<(String, String)> = serde_urlencoded::from_str(&heads[3].2).unwrap();
    assert_eq!(second[0].1, "+79990000002", "one message per number");
}

#[test]
fn slack_and_telegram_buttons_acknowledge_and_resolve_with_verified_requests() {
    let dir = tempfile::tempdir().unwrap();
    let chat = Listener::start(0);
    write(dir.path(), "slack-secret", "s3cr3t-signing\n");
    write(dir.path(), "tg-secret", "tg-token-123\n");
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: shop\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, service: shop}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            "route:\n  receiver: chat\n  group_by: [alertname]\n  group_wait: 0s\nreceivers:\n  - name: chat\n    slack_configs: [{{api_url: 'http://127.0.0.1:{p}/slack'}}]\n    telegram_configs: [{{api_url: 'http://127.0.0.1:{p}/tg', bot_token: '1:a', chat_id: 5}}]\n",
            p = chat.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n  slack: {signing_secret_file: slack-secret}\n  telegram: {webhook_secret_file: tg-secret}\n",
    );
    let server = serve(dir.path());
    let seen = chat.wait_for(2);
    let slack = &seen.iter().find(|(p, _)| p == "/slack").unwrap().1;
    let buttons = slack["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("an actions block")
        .clone();
    let key = buttons["elements"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(buttons["elements"][0]["action_id"], "dozor_ack");
    assert_eq!(buttons["elements"][1]["action_id"], "dozor_resolve");
    let tg = &seen.iter().find(|(p, _)| p.starts_with("/tg")).unwrap().1;
    assert_eq!(
        tg["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        format!("ack:{key}")
    );
    // Wait for the incident.
    let until = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let l = server.get_json("/api/v1/incidents", TOKEN);
        if let Some(id) = l["data"]["incidents"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < until, "no incident");
        std::thread::sleep(Duration::from_millis(100));
    };
    let post = |path: &str, body: String, headers: Vec<(&str, String)>| {
        common::block_on(async {
            let mut r = reqwest::Client::new().post(server.url(path)).body(body);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let click = |action: &str, user: &str| {
        let payload = serde_json::json!({"type": "block_actions", "user": {"id": "U1", "username": user},
            "actions": [{"action_id": action, "value": key}]});
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    };
    let now = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    // Forged, stale and unsigned requests are refused and change nothing.
    let body = click("dozor_ack", "mallory");
    let forged = dozor_alerting::interact::slack_sign(b"wrong", &now, body.as_bytes());
    let stale_ts = (now.parse::<i64>().unwrap() - 3600).to_string();
    let stale = dozor_alerting::interact::slack_sign(b"s3cr3t-signing", &stale_ts, body.as_bytes());
    for (ts, sig) in [
        (now.clone(), forged),
        (stale_ts, stale),
        (now.clone(), String::new()),
    ] {
        let (status, _) = post(
            "/api/v1/integrations/slack/interactions",
            body.clone(),
            vec![
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", sig),
            ],
        );
        assert_eq!(status, 401);
    }
    let i = server.get_json(&format!("/api/v1/incidents/{id}"), TOKEN);
    assert_eq!(i["data"]["status"], "open", "nothing changed");
    // Telegram's Acknowledge, with the webhook's secret token.
    let update = serde_json::json!({"update_id": 7, "callback_query": {"id": "cq1", "from": {"id": 9, "username": "bob"}, "data": format!("ack:{key}")}});
    let (status, _) = post(
        "/api/v1/integrations/telegram",
        update.to_string(),
        vec![("x-telegram-bot-api-secret-token", "nope".into())],
    );
    assert_eq!(status, 401);
    let (status, answer) = post(
        "/api/v1/integrations/telegram",
        update.to_string(),
        vec![("x-telegram-bot-api-secret-token", "tg-token-123".into())],
    );
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["method"], "answerCallbackQuery");
    assert_eq!(answer["callback_query_id"], "cq1");
    let i = server.get_json(&format!("/api/v1/incidents/{id}"), TOKEN);
    assert_eq!(i["data"]["status"], "acknowledged");
    assert_eq!(i["data"]["acknowledged_by"], "telegram:bob");
    let alerts = server.get_json("/api/v1/alerts", TOKEN);
    assert_eq!(
        alerts["data"]["alerts"][0]["acknowledged"]["by"], "telegram:bob",
        "{alerts}"
    );
    // Slack's Resolve, signed.
    let body = click("dozor_resolve", "ann");
    let sig = dozor_alerting::interact::slack_sign(b"s3cr3t-signing", &now, body.as_bytes());
    let (status, text) = post(
        "/api/v1/integrations/slack/interactions",
        body,
        vec![
            ("x-slack-request-timestamp", now.clone()),
            ("x-slack-signature", sig),
        ],
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("incident resolved by ann"), "{text}");
    let i = server.get_json(&format!("/api/v1/incidents/{id}"), TOKEN);
    assert_eq!(i["data"]["status"], "resolved");
    assert_eq!(i["data"]["resolved_by"], "slack:ann");
    let audit = std::fs::read_to_string(dir.path().join("data/audit/chain.jsonl")).unwrap();
    assert!(audit.contains("slack:ann") && audit.contains("telegram:bob"));
    assert!(audit.contains("chat.interaction"), "refusals audited");
}

#[test]
fn templates_slack_threads_pagerduty_acknowledgements_and_incident_context_by_email() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::answering(
        0,
        r#"{"ok":true,"channel":"C024BE91L","ts":"1503435956.000247"}"#,
    );
    let smtp = SmtpSink::start(dir.path(), 0);
    std::fs::create_dir_all(dir.path().join("tmpl")).unwrap();
    write(
        dir.path(),
        "tmpl/shop.tmpl",
        r#"{{ define "shop.title" }}{{ .Status | toUpper }}: {{ .CommonLabels.alertname }} in {{ .CommonLabels.service }}{{ end }}
{{ define "shop.text" }}{{ range .Alerts }}* {{ .Annotations.summary }} (since {{ .StartsAt.Format "2006" }}){{ end }}{{ end }}
"#,
    );
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: shop\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, service: shop}\n        annotations: {summary: 'checkout is down'}\n",
    );
    write(
        dir.path(),
        "alertmanager.yml",
        format!(
            r#"global:
  smtp_smarthost: 127.0.0.1:{smtp}
  smtp_from: dozor@shop.example
  smtp_require_tls: false
templates: ['tmpl/*.tmpl']
route:
  receiver: all
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: all
    slack_configs:
      - api_url: http://127.0.0.1:{port}/api/chat.postMessage
        channel: '#ops'
        thread: true
        title: '{{{{ template "shop.title" . }}}}'
        text: '{{{{ template "shop.text" . }}}}'
        http_config: {{authorization: {{credentials: xoxb-test}}}}
    pagerduty_configs:
      - url: http://127.0.0.1:{port}/v2/enqueue
        routing_key: pd-key
        description: '{{{{ template "shop.title" . }}}}'
        details: {{firing: '{{{{ .Alerts.Firing | len }}}}'}}
    email_configs:
      - to: ops@shop.example
        html: '<p>{{{{ template "shop.title" . }}}} &amp; {{{{ .CommonAnnotations.summary }}}}</p>'
"#,
            smtp = smtp.port,
            port = hook.port
        ),
    );
    write(
        dir.path(),
        "dozor.yml",
        "rules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n  incidents: {recollect_after: 2s}\n",
    );
    let server = serve(dir.path());

    // Slack: the template file's title and text; the group's later messages in the thread
    // of its first.
    let until = Instant::now() + Duration::from_secs(30);
    let slack = loop {
        let slack: Vec<serde_json::Value> = hook
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/api/chat.postMessage")
            .map(|(_, b)| b.clone())
            .collect();
        if slack.len() >= 2 {
            break slack;
        }
        assert!(
            Instant::now() < until,
            "fewer than two Slack messages: {slack:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        slack[0]["blocks"][0]["text"]["text"],
        "FIRING: AlwaysOn in shop"
    );
    assert_eq!(slack[0]["text"], "FIRING: AlwaysOn in shop");
    let year = slack[0]["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(year.starts_with("* checkout is down (since 20"), "{year}");
    assert_eq!(slack[0]["channel"], "#ops");
    assert!(
        slack[0].get("thread_ts").is_none(),
        "the first starts the thread"
    );
    assert_eq!(slack[1]["thread_ts"], "1503435956.000247");
    assert_eq!(slack[1]["channel"], "C024BE91L", "the channel Slack named");
    let heads = hook.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|(_, h, _)| h.iter().any(|l| l == "authorization: bearer xoxb-test")),
        "the bot token from http_config"
    );

    // PagerDuty: the templated summary and details.
    let pd = |action: &str| -> Vec<serde_json::Value> {
        hook.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, b)| p == "/v2/enqueue" && b["event_action"] == action)
            .map(|(_, b)| b.clone())
            .collect()
    };
    let trigger = pd("trigger").first().cloned().expect("a trigger event");
    assert_eq!(trigger["payload"]["summary"], "FIRING: AlwaysOn in shop");
    assert_eq!(
        trigger["payload"]["custom_details"],
        serde_json::json!({"firing": "1"})
    );
    assert_eq!(trigger["routing_key"], "pd-key");

    // E-mail: the templated HTML (escaped values) and the incident with its context.
    let mails = smtp.wait_for(1);
    assert!(!mails.is_empty(), "no e-mail");
    let parts = mails[0]["parts"].as_array().unwrap();
    let html = parts.iter().find(|p| p["type"] == "text/html").unwrap();
    assert_eq!(
        html["text"].as_str().unwrap().trim(),
        "<p>FIRING: AlwaysOn in shop &amp; checkout is down</p>"
    );
    let incident = parts
        .iter()
        .find(|p| {
            p["filename"]
                .as_str()
                .is_some_and(|f| f.starts_with("incident-"))
        })
        .expect("the incident attached");
    let attached: serde_json::Value =
        serde_json::from_str(incident["text"].as_str().unwrap()).unwrap();
    assert_eq!(attached["severity"], "critical");
    assert_eq!(attached["context"]["metrics"][0]["expr"], "vector(1) > 0");
    let id = attached["id"].as_str().unwrap().to_owned();

    // The context is collected again `recollect_after` later.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let one = server.get_json(&format!("/api/v1/incidents/{id}"), TOKEN);
        let collected = one["data"]["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "context")
            .count();
        if collected >= 2 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the context was collected {collected} time(s)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Acknowledging the incident acknowledges PagerDuty's, with the trigger's dedup_key.
    let status = common::block_on(async {
        reqwest::Client::new()
            .post(server.url(&format!("/api/v1/incidents/{id}/acknowledge")))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"comment": "on it"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let until = Instant::now() + Duration::from_secs(20);
    let ack = loop {
        if let Some(a) = pd("acknowledge").first().cloned() {
            break a;
        }
        assert!(Instant::now() < until, "no acknowledge event");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ack["dedup_key"], trigger["dedup_key"]);
    assert_eq!(ack["routing_key"], "pd-key");
}
