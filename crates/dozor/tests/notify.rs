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
