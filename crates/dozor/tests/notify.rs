//! Notifications through the real binary: a rule fires, Alertmanager's configuration routes
//! it, and a real local HTTP listener receives Alertmanager's webhook payload v4 — after
//! failing the first calls, which Dozor retries — then Slack's, Telegram's, PagerDuty's and
//! Discord's messages.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;

/// An HTTP listener that answers 500 to the first `fail` requests and 200 afterwards, and
/// keeps every request's path and body.
struct Listener {
    port: u16,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Listener {
    fn start(fail: usize) -> Listener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut all = s.lock().unwrap();
                all.push((path, serde_json::from_slice(&body).unwrap_or_default()));
                let status = if all.len() <= fail {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                drop(all);
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        Listener { port, seen }
    }

    fn wait_for(&self, n: usize) -> Vec<(String, serde_json::Value)> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n || Instant::now() > until {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_firing_rule_reaches_a_webhook_with_alertmanagers_payload_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Listener::start(2);
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: always\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, team: shop}\n        annotations: {summary: 'it is on'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: default\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  routes:\n    - matchers: ['severity=\"critical\"']\n      receiver: pager\ninhibit_rules: []\nreceivers:\n  - name: default\n  - name: pager\n    webhook_configs:\n      - url: http://127.0.0.1:{port}/hook\n    slack_configs:\n      - {{api_url: 'http://127.0.0.1:{port}/slack', channel: '#shop'}}\n    discord_configs:\n      - webhook_url: http://127.0.0.1:{port}/discord\n    telegram_configs:\n      - {{api_url: 'http://127.0.0.1:{port}/tg', bot_token: '123:abc', chat_id: -100}}\n    pagerduty_configs:\n      - {{url: 'http://127.0.0.1:{port}/pd', routing_key: rk1, severity: critical}}\n",
            port = hook.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n  external_url: http://dozor.example:9470\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    let _server = Server::start_with(
        &dir.path().join("data"),
        &[],
        &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
    );
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
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, instance]\n  group_wait: 0s\n  group_interval: 1s\ninhibit_rules:\n  - source_matchers: ['severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [instance]\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            hook.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "alerting:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    let http_config = dir.path().join("amtool-http.yml");
    std::fs::write(
        &http_config,
        format!("authorization:\n  credentials: {TOKEN}\n"),
    )
    .unwrap();
    let start = || {
        Server::start_with(
            &dir.path().join("data"),
            &[("DOZOR_ADMIN_TOKEN", TOKEN)],
            &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
        )
    };
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

/// A real SMTP server (aiosmtpd, `tests/clients/smtp_sink.py`) refusing the first `fail`
/// messages; each accepted one lands in `out` as a JSON line.
struct SmtpSink {
    port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    fn start(dir: &std::path::Path, fail: usize) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = dir.join("mail.jsonl");
        let mut child = std::process::Command::new(root.join("../../target/pyenv/bin/python"))
            .arg(root.join("tests/clients/smtp_sink.py"))
            .arg(port.to_string())
            .arg(&out)
            .arg(fail.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("target/pyenv/bin/python (scripts/setup-deps installs aiosmtpd there)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink { port, out, child }
    }

    fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<serde_json::Value> = std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_email_reaches_a_real_smtp_server_with_both_bodies_and_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path(), 1);
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: always\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: critical, team: shop}\n        annotations: {summary: 'it is <on>'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: dozor@shop.example\n  smtp_require_tls: false\n  smtp_hello: dozor.shop.example\nroute:\n  receiver: mail\n  group_wait: 0s\nreceivers:\n  - name: mail\n    email_configs:\n      - to: 'ops@shop.example, cto@shop.example'\n        headers: {{X-Team: shop}}\n",
            smtp.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dozor.yml"),
        "rules:\n  evaluation_interval: 1s\n  external_url: http://dozor.example:9470\n  files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("DOZOR_ADMIN_TOKEN", TOKEN)],
        &["--config", dir.path().join("dozor.yml").to_str().unwrap()],
    );
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
