//! The `dozor` binary as users run it: commands, exit codes, graceful shutdown, restarts.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{PASSWORD, Server, block_on, dozor};

async fn login(server: &Server, user: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[test]
fn version_prints_the_package_version() {
    let out = dozor().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("dozor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_names_file_line_and_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("dozor.yml");
    // `dozor check config` on `text`: it fails, and what it says.
    let refused = |text: &str| {
        std::fs::write(&bad, text).unwrap();
        let out = dozor()
            .args(["check", "config"])
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let err = refused("server:\n  listen: 127.0.0.1:9470\n  lisen: 1\n");
    assert!(
        err.contains(&format!("{}:3: key `lisen`", bad.display())),
        "{err}"
    );

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/dozor.example.yml"
    );
    let out = dozor().args(["check", "config", example]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The Alertmanager file it names is checked with it.
    std::fs::write(
        dir.path().join("am.yml"),
        "route: {receiver: web}\nreceivers: [{name: pager}]\n",
    )
    .unwrap();
    let err = refused("alerting: {config_file: am.yml}\n");
    assert!(
        err.contains("alerting.config_file") && err.contains("no receiver named \"web\""),
        "{err}"
    );
    // Escalations, rotations, actions and the incident selector are checked against it too.
    std::fs::write(
        dir.path().join("am.yml"),
        "route: {receiver: pager}\nreceivers: [{name: pager}]\n",
    )
    .unwrap();
    for (text, want) in [
        (
            "alerting:\n  config_file: am.yml\n  escalations: [{name: e, match: 'a=\"b\"', stages: [{delay: 1m, receiver: fax}]}]\n",
            "no receiver named \"fax\"",
        ),
        (
            "alerting:\n  config_file: am.yml\n  oncall: [{name: ops, start: soon, shift: 1d, people: [pager]}]\n",
            "alerting.oncall",
        ),
        (
            "alerting:\n  config_file: am.yml\n  escalations: [{name: e, match: 'a=\"b\"', stages: [{delay: 1m, receiver: 'oncall:nobody'}]}]\n",
            "oncall:nobody",
        ),
        (
            "alerting:\n  actions: [{name: x, match: 'a=\"b\"', command: {path: rm}}]\n",
            "absolute path",
        ),
        (
            "alerting:\n  incidents: {match: 'nonsense'}\n",
            "alerting.incidents.match",
        ),
    ] {
        let err = refused(text);
        assert!(err.contains(want), "{text}: {err}");
    }

    let out = dozor()
        .args(["check", "config", "/nonexistent/dozor.yml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn audit_verify_exits_nonzero_and_names_the_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    block_on(async {
        assert_eq!(login(&server, "admin", "wrong").await.status(), 401);
        assert_eq!(login(&server, "admin", PASSWORD).await.status(), 200);
    });
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(10)).success());

    let verify = || {
        dozor()
            .args(["audit", "verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("audit chain ok"));

    let chain = dir.path().join("audit/chain.jsonl");
    let text = std::fs::read_to_string(&chain).unwrap();
    let failure_line = text
        .lines()
        .position(|l| l.contains("\"failure\""))
        .unwrap();
    std::fs::write(&chain, text.replacen("\"failure\"", "\"success\"", 1)).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("line {}", failure_line + 1)) && stdout.contains("edited"),
        "{stdout}"
    );
}

/// SIGTERM while a request is half sent: the server stops accepting, finishes that request,
/// answers it, and exits 0.
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let body = serde_json::json!({"username": "admin", "password": PASSWORD}).to_string();
    let (head, tail) = body.split_at(10);
    let mut conn = TcpStream::connect(&server.addr).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    // Long enough for the server to have read the headers even on a loaded machine: a
    // connection whose request has not started yet is idle, and closed at shutdown.
    std::thread::sleep(Duration::from_millis(1000));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // Still finishing our request: new connections are no longer accepted.
    let refused =
        TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_millis(500))
            .and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_millis(500)))?;
                c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?;
                let mut buf = [0u8; 64];
                let n = c.read(&mut buf)?;
                Ok(n)
            });
    assert!(
        matches!(refused, Err(_) | Ok(0)),
        "a new request was served during shutdown: {refused:?}"
    );
    conn.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"));
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    // The shutdown was recorded and the chain closed with a signed checkpoint.
    let chain = std::fs::read_to_string(dir.path().join("audit/chain.jsonl")).unwrap();
    assert!(chain.lines().last().unwrap().contains("server.stop"));
    assert!(dir.path().join("audit/checkpoints.jsonl").exists());
}

/// What was acknowledged survives `kill -9`: users, tokens and audit records.
#[test]
fn acknowledged_changes_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_bootstrap-token-for-the-kill-test";
    for round in 0..3 {
        let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
        block_on(async {
            let client = reqwest::Client::new();
            // Everything created in earlier rounds is still there.
            let users = client
                .get(server.url("/api/v1/users"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(users.status(), 200);
            let users: serde_json::Value = users.json().await.unwrap();
            assert_eq!(
                users["data"].as_array().unwrap().len(),
                1 + round,
                "round {round}: {users}"
            );
            let created = client
                .post(server.url("/api/v1/users"))
                .bearer_auth(token)
                .json(&serde_json::json!({"name": format!("user{round}"), "password": "password-123", "role": "viewer"}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
        });
        server.signal("KILL");
        assert!(!server.wait(Duration::from_secs(10)).success());
    }
    let out = dozor()
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let chain = std::fs::read_to_string(dir.path().join("audit/chain.jsonl")).unwrap();
    assert_eq!(
        chain.matches("\"user.create\"").count(),
        4,
        "bootstrap admin + three users"
    );
}

#[test]
fn user_add_creates_a_user_who_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = dozor()
        .args([
            "user",
            "add",
            "--name",
            "olga",
            "--role",
            "operator",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"lighthouse-keeper-7\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let again = dozor()
        .args([
            "user",
            "add",
            "--name",
            "olga",
            "--password-file",
            "/dev/null",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "short password from file must be refused"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("password policy"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let server = Server::start(dir.path(), &[]);
    block_on(async {
        let res = login(&server, "olga", "lighthouse-keeper-7").await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["data"]["user"]["role"], "operator");
    });
}

#[test]
fn bad_flags_and_bad_environment_fail_with_a_message() {
    let out = dozor()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let dir = tempfile::tempdir().unwrap();
    let out = dozor()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("DOZOR_SERVER__MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOZOR_SERVER__MAX_BODY_BYTES"));
}

/// Samples acknowledged with 2xx survive `kill -9` at random moments of a steady ingest,
/// across several crash/restart cycles (the benchmark script runs 100 cycles).
#[test]
fn acknowledged_samples_survive_kill_9_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_kill-test-token-0123456789";
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut rng = 0x9e37_79b9_u64;
    let cycles: usize = std::env::var("DOZOR_KILL_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    for cycle in 0..cycles {
        let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
        // Kill after a pseudo-random number of batches, while more are in flight.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 5 + (rng % 20) as usize;
        let url = server.url("/api/v1/write");
        let acked_now = block_on(async {
            let client = reqwest::Client::new();
            let mut ok = Vec::new();
            for batch in 0..kill_after + 10 {
                let job = format!("cycle{cycle}");
                let t = 1_700_000_000_000 + (batch as i64) * 1000;
                let labels = dozor_model::Labels::from_pairs([
                    ("__name__", "kill_test"),
                    ("job", job.as_str()),
                ])
                .unwrap();
                let body = dozor_ingest::remote_write::encode(&vec![(
                    labels,
                    vec![dozor_model::Sample { t, v: batch as f64 }],
                )]);
                if batch == kill_after {
                    // SIGKILL mid-stream: this and later requests may or may not be acked.
                    let _ = Command::new("kill")
                        .args(["-9", &server.child.id().to_string()])
                        .status();
                }
                let sent = client
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status().is_success()
                {
                    ok.push((job, t));
                }
            }
            ok
        });
        assert!(
            acked_now.len() >= kill_after,
            "cycle {cycle}: only {} acks",
            acked_now.len()
        );
        acked.extend(acked_now);
        drop(server);
    }
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    let stored: std::collections::HashSet<(String, i64)> =
        block_on(export(&server, token, "kill_test"))
            .iter()
            .flat_map(|v| {
                let job = v["metric"]["job"].as_str().unwrap().to_owned();
                v["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (job.clone(), t.as_i64().unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect();
    let lost: Vec<_> = acked.iter().filter(|a| !stored.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged samples lost: {lost:?}",
        lost.len()
    );
}

/// Log lines acknowledged with 2xx survive `kill -9` in the middle of a stream of NDJSON
/// requests, across crash/restart cycles.
#[test]
fn acknowledged_log_lines_survive_kill_9_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_kill-test-token-0123456789";
    let mut acked: Vec<String> = Vec::new();
    let t0 = 1_796_119_200i64;
    for cycle in 0..3 {
        let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
        let kill_after = 4 + cycle * 3;
        let url = server.url("/api/v1/logs/ingest");
        let acked_now = block_on(async {
            let client = reqwest::Client::new();
            let mut ok = Vec::new();
            for batch in 0..kill_after + 8 {
                let ids: Vec<String> = (0..20).map(|i| format!("c{cycle}b{batch}i{i}")).collect();
                let body: String = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        serde_json::json!({
                            "_time": t0 + (cycle * 100 + batch) as i64,
                            "service": "kill",
                            "_msg": format!("line {id} order {i}"),
                            "id": id,
                        })
                        .to_string()
                            + "\n"
                    })
                    .collect();
                if batch == kill_after {
                    let _ = Command::new("kill")
                        .args(["-9", &server.child.id().to_string()])
                        .status();
                }
                let sent = client.post(&url).bearer_auth(token).body(body).send().await;
                if let Ok(r) = sent
                    && r.status().is_success()
                {
                    ok.extend(ids);
                }
            }
            ok
        });
        assert!(
            acked_now.len() >= kill_after * 20,
            "cycle {cycle}: {} acks",
            acked_now.len()
        );
        acked.extend(acked_now);
        drop(server);
    }
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    let (start, end) = ((t0 - 1).to_string(), (t0 + 1000).to_string());
    let stored: std::collections::HashSet<String> = server
        .search_logs(
            token,
            &[
                ("query", "{service=\"kill\"}"),
                ("start", &start),
                ("end", &end),
                ("limit", "10000"),
            ],
        )
        .iter()
        .map(|r| r["fields"]["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged lines lost: {lost:?}",
        lost.len()
    );
}

/// Syslog from util-linux' `logger`, over UDP (RFC 5424 and 3164) and TCP (newline and
/// octet-counting framing), lands in the log store with its PII masked.
#[test]
fn logger_messages_over_udp_and_tcp_land_masked() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_syslog-test-token-0123456789";
    let free = |udp: bool| {
        if udp {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    };
    let (udp, tcp) = (free(true), free(false));
    let config = dir.path().join("dozor.yml");
    std::fs::write(
        &config,
        format!("logs:\n  syslog:\n    udp: 127.0.0.1:{udp}\n    tcp: 127.0.0.1:{tcp}\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &[("DOZOR_ADMIN_TOKEN", token)],
        &["--config", config.to_str().unwrap()],
    );
    let logger = |args: &[&str]| {
        let status = Command::new("logger")
            .args(["--server", "127.0.0.1", "--tag", "kkt-driver"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "logger {args:?}");
    };
    logger(&[
        "--port",
        &udp.to_string(),
        "--udp",
        "--rfc5424",
        "--sd-id",
        "fn@1",
        "--sd-param",
        "serial=\"9999\"",
        "udp 5424 from anna@mail.ru",
    ]);
    logger(&[
        "--port",
        &udp.to_string(),
        "--udp",
        "--rfc3164",
        "-p",
        "local0.err",
        "udp 3164",
    ]);
    logger(&["--port", &tcp.to_string(), "--tcp", "tcp newline"]);
    logger(&[
        "--port",
        &tcp.to_string(),
        "--tcp",
        "--octet-count",
        "tcp octets",
    ]);
    let search = || {
        server.search_logs(
            token,
            &[
                ("query", "{service=\"kkt-driver\"}"),
                ("start", "0"),
                ("end", "4000000000"),
            ],
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut found = search();
    while found.len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        found = search();
    }
    let mut messages: Vec<&str> = found
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "tcp newline",
            "tcp octets",
            "udp 3164",
            "udp 5424 from [EMAIL]"
        ]
    );
    let rfc5424 = found
        .iter()
        .find(|r| r["message"].as_str().unwrap().starts_with("udp 5424"))
        .unwrap();
    assert_eq!(rfc5424["fields"]["fn@1.serial"], "9999");
    let rfc3164 = found.iter().find(|r| r["message"] == "udp 3164").unwrap();
    assert_eq!(rfc3164["stream"]["level"], "error");
    assert_eq!(rfc3164["fields"]["facility"], "local0");
}

/// `dozor serve` scrapes a real node_exporter, collects its host and itself, and marks the
/// scraped series stale when it stops.
#[test]
fn serve_scrapes_targets_and_collects_host_and_self_metrics() {
    let bin = "/usr/bin/prometheus-node-exporter";
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: ./scripts/test installs prometheus-node-exporter"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = Command::new(bin)
        .args([
            format!("--web.listen-address=127.0.0.1:{port}").as_str(),
            "--collector.disable-defaults",
            "--collector.loadavg",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _exporter = KillOnDrop(exporter);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dozor.yml");
    std::fs::write(
        &config,
        format!(
            "collectors: {{interval: 200ms}}\nscrape_configs:\n  - job_name: exporters\n    scrape_interval: 200ms\n    scrape_timeout: 150ms\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let token = "dzr_scrape-test-token-0123456789";
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &[("DOZOR_ADMIN_TOKEN", token)],
        &["--config", config.to_str().unwrap()],
    );
    let export = |server: &Server, selector: &str| -> Vec<serde_json::Value> {
        server
            .get_text(&format!("/api/v1/export?match[]={selector}"), token)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let up = export(&server, "up");
        let load = export(&server, "node_load1");
        let own = export(&server, "process_resident_memory_bytes");
        let has_job =
            |rows: &[serde_json::Value], job: &str| rows.iter().any(|r| r["metric"]["job"] == job);
        if has_job(&up, "exporters")
            && has_job(&load, "exporters")
            && has_job(&load, "node")
            && has_job(&own, "dozor")
        {
            assert!(
                up[0]["values"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!(1.0))
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "scraped and collected series did not appear: up={up:?} load={load:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(10)).success());
    let server = Server::start_with(
        &data,
        &[("DOZOR_ADMIN_TOKEN", token)],
        &["--config", config.to_str().unwrap()],
    );
    let up = export(&server, "up{job=\"exporters\"}");
    let values = up[0]["values"].as_array().unwrap();
    assert!(
        values.contains(&serde_json::json!("NaN")),
        "a stopped scrape leaves a staleness marker: {values:?}"
    );
}

/// Kills a helper process when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/v1/export` of `selector`: one JSON object per series.
async fn export(server: &Server, token: &str, selector: &str) -> Vec<serde_json::Value> {
    let query = serde_urlencoded::to_string([("match[]", selector)]).unwrap();
    let body = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/export?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Exports `selector` and returns (series labels as text, sample count) pairs.
async fn exported(server: &Server, token: &str, selector: &str) -> Vec<(String, usize)> {
    export(server, token, selector)
        .await
        .iter()
        .map(|v| {
            (
                v["metric"].to_string(),
                v["timestamps"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// Sends the start of a request, then closes the connection before the body is complete.
fn send_and_break(addr: &str, token: &str, head_extra: &str, body: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/import/prometheus HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: text/plain\r\n{head_extra}\r\n"
    )
    .unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
}

#[test]
fn broken_connections_store_nothing_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dzr_broken-connection-token-01234";
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    let lines: String = (0..200)
        .map(|i| format!("broken_metric{{n=\"{i}\"}} {i}\n"))
        .collect();
    // A Content-Length the client never delivers.
    send_and_break(
        &server.addr,
        token,
        "Content-Length: 100000\r\n",
        lines.as_bytes(),
    );
    // A chunked body without its final chunk.
    let chunk = format!("{:x}\r\n{lines}\r\n", lines.len());
    send_and_break(
        &server.addr,
        token,
        "Transfer-Encoding: chunked\r\n",
        chunk.as_bytes(),
    );
    block_on(async {
        let ok = reqwest::Client::new()
            .post(server.url("/api/v1/import/prometheus"))
            .bearer_auth(token)
            .body("whole_metric 1\n")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), reqwest::StatusCode::NO_CONTENT);
        assert!(
            exported(&server, token, "broken_metric").await.is_empty(),
            "nothing of a broken request is stored"
        );
        assert_eq!(exported(&server, token, "whole_metric").await.len(), 1);
    });
}

/// Mounts a tmpfs of `size` (needs root; `None` elsewhere).
fn tmpfs(size: &str) -> Option<(tempfile::TempDir, impl Drop)> {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let guard = Unmount(dir.path().to_owned());
    ok.then_some((dir, guard))
}

#[test]
fn a_full_disk_answers_507_keeps_serving_and_loses_nothing_acknowledged() {
    let Some((dir, _mount)) = tmpfs("3m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let token = "dzr_disk-full-token-0123456789ab";
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    let (acked, refused) = block_on(async {
        let client = reqwest::Client::new();
        let mut acked = 0usize;
        for batch in 0..1000usize {
            let series: Vec<_> = (0..200)
                .map(|i| {
                    let n = (batch * 200 + i).to_string();
                    let labels = dozor_model::Labels::from_pairs([
                        ("__name__", "fill_metric"),
                        ("n", n.as_str()),
                        ("padding", "x".repeat(64).as_str()),
                    ])
                    .unwrap();
                    (labels, vec![dozor_model::Sample { t: 1_000, v: 1.0 }])
                })
                .collect();
            let res = client
                .post(server.url("/api/v1/write"))
                .bearer_auth(token)
                .header("content-encoding", "snappy")
                .body(dozor_ingest::remote_write::encode(&series))
                .send()
                .await
                .unwrap();
            if res.status().is_success() {
                acked += 200;
                continue;
            }
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap();
            return (acked, (status, body));
        }
        panic!("3 MiB never filled up");
    });
    assert_eq!(
        refused.0,
        reqwest::StatusCode::INSUFFICIENT_STORAGE,
        "{}",
        refused.1
    );
    assert!(
        refused.1["error"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{}",
        refused.1
    );
    assert!(acked > 0, "something fit before the disk filled");
    block_on(async {
        // Reads and health still work on a full disk.
        let health = reqwest::get(server.url("/healthz")).await.unwrap();
        assert!(health.status().is_success());
        let n: usize = exported(&server, token, "fill_metric")
            .await
            .iter()
            .map(|(_, c)| c)
            .sum();
        assert_eq!(n, acked);
    });
    // Crash, make room, restart: every acknowledged sample is there.
    let _ = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    drop(server);
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(grown.success());
    let server = Server::start(dir.path(), &[("DOZOR_ADMIN_TOKEN", token)]);
    block_on(async {
        let series = exported(&server, token, "fill_metric").await;
        assert_eq!(series.len(), acked, "every acknowledged series is back");
    });
}

#[test]
fn serve_runs_probes_and_answers_the_health_routes_from_them() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dozor.yml");
    std::fs::write(
        &config,
        format!(
            "collectors: {{self_metrics: false, host: false}}\n\
             probes:\n\
             \x20 - {{name: queue, kind: tcp, target: '{up}', interval: 200ms, timeout: 150ms}}\n\
             \x20 - {{name: cache, kind: redis, target: '{closed}', interval: 200ms, timeout: 150ms}}\n"
        ),
    )
    .unwrap();
    let token = "dzr_probe-test-token-0123456789";
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("DOZOR_ADMIN_TOKEN", token)],
        &["--config", config.to_str().unwrap()],
    );
    let get = |path: &str| server.get_json(path, token);
    let until = Instant::now() + Duration::from_secs(15);
    let deps = loop {
        let deps = get("/api/v1/health/dependencies");
        if deps["data"]["status"] == "down" && get("/api/v1/health/queue")["data"]["status"] == "ok"
        {
            break deps;
        }
        assert!(Instant::now() < until, "probes did not report: {deps}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(deps["data"]["dependencies"][0]["name"], "cache");
    let overall = get("/api/v1/health");
    assert_eq!(overall["data"]["status"], "degraded", "{overall}");
    let rows = block_on(exported(&server, token, "probe_success"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(10)).success());
    drop(listener);
}
