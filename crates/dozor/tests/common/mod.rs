//! Helpers shared by the binary's test files: the `dozor` command and [`Server`], a running
//! `dozor serve` on a free port.

#![allow(dead_code, clippy::unwrap_used)] // Shared by several test crates; a panic is the failure report.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dozor");
pub const PASSWORD: &str = "cli-test-password";

pub fn dozor() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("DOZOR_ADMIN_PASSWORD")
        .env_remove("DOZOR_ADMIN_TOKEN")
        .env(
            "DOZOR_LOG",
            std::env::var("TEST_DOZOR_LOG").unwrap_or_else(|_| "warn".into()),
        );
    c
}

/// A running `dozor serve` and the address it listens on.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        Server::start_with(data_dir, extra_env, &[])
    }

    pub fn start_with(data_dir: &Path, extra_env: &[(&str, &str)], extra_args: &[&str]) -> Server {
        Server::start_logging(data_dir, extra_env, extra_args, Stdio::inherit())
    }

    /// [`Server::start_with`] with the server's log (its stderr) sent to `stderr`.
    pub fn start_logging(
        data_dir: &Path,
        extra_env: &[(&str, &str)],
        extra_args: &[&str],
        stderr: impl Into<Stdio>,
    ) -> Server {
        let mut cmd = dozor();
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("DOZOR_ADMIN_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("dozor exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.trim().to_owned();
            }
        };
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` as `token`: the body as text (whatever the status).
    pub fn get_text(&self, path: &str, token: &str) -> String {
        block_on(async {
            reqwest::Client::new()
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }

    /// `GET path` as `token`: the body as JSON.
    pub fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        serde_json::from_str(&self.get_text(path, token)).unwrap()
    }

    /// `GET /api/v1/logs/search` with `params` as `token`: the records (the answer must
    /// be a 2xx).
    pub fn search_logs(&self, token: &str, params: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let url = self.url(&format!(
            "/api/v1/logs/search?{}",
            serde_urlencoded::to_string(params).unwrap()
        ));
        block_on(async {
            let r = reqwest::Client::new()
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "search {params:?}: {}", r.status());
            let v: serde_json::Value = r.json().await.unwrap();
            v["data"]["records"].as_array().unwrap().clone()
        })
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait(mut self, limit: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < until,
                "dozor did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A request as the listener saw it: method, header lines (lower-case), raw body.
pub type Head = (String, Vec<String>, String);

/// An HTTP listener that answers 500 to the first `fail` requests and 200 afterwards, and
/// keeps every request's path and body.
pub struct Listener {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// Each request's method, header lines (lower-case) and raw body, in order.
    pub heads: Arc<Mutex<Vec<Head>>>,
}

impl Listener {
    pub fn start(fail: usize) -> Listener {
        Listener::answering(fail, "")
    }

    /// A listener whose 200s carry `answer` as a JSON body (Slack's Web API names the
    /// message it posted).
    pub fn answering(fail: usize, answer: &'static str) -> Listener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let hs = Arc::clone(&heads);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let method = line.split(' ').next().unwrap_or("").to_owned();
                let mut length = 0;
                let mut lines = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    lines.push(h.trim().to_ascii_lowercase());
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                hs.lock().unwrap().push((
                    method,
                    lines,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let mut all = s.lock().unwrap();
                all.push((path, serde_json::from_slice(&body).unwrap_or_default()));
                let status = if all.len() <= fail {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                drop(all);
                let body = if status.starts_with("200") {
                    answer
                } else {
                    ""
                };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Listener { port, seen, heads }
    }

    pub fn wait_for(&self, n: usize) -> Vec<(String, serde_json::Value)> {
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

/// A real SMTP server (aiosmtpd, `tests/clients/smtp_sink.py`) refusing the first `fail`
/// messages; each accepted one lands in `out` as a JSON line.
pub struct SmtpSink {
    pub port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    pub fn start(dir: &std::path::Path, fail: usize) -> SmtpSink {
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

    pub fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
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

impl Server {
    /// Sends a JSON body with `token`: the status and the answer (JSON, or the text as a
    /// JSON string).
    pub fn send(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        block_on(async {
            let r = reqwest::Client::new()
                .request(method.parse().unwrap(), self.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            )
        })
    }
}

/// Calls `f` every 100 ms until it gives a value, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a rule unit-test file under `dozor test rules` and, when it is installed, under
/// Prometheus' `promtool test rules` (skipped with a message otherwise): both must pass.
pub fn rule_tests_pass(file: &Path) {
    let out = dozor().args(["test", "rules"]).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
    match Command::new("promtool")
        .args(["test", "rules"])
        .arg(file)
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!(
            "promtool is not installed: skipping its run of {}",
            file.display()
        ),
    }
}
