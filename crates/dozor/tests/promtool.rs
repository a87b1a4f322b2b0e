//! `promtool query instant|range|series|labels` (Debian's `prometheus` package, 2.42) against
//! a running `dozor serve`, authenticated with a read-scope API token as the basic-auth
//! password in the server URL. Asserts the values promtool prints, and, when Debian's
//! `prometheus` binary is there too, that Prometheus loaded with the same data over
//! remote_write prints the same. Skipped, with a message, when promtool is missing
//! (`scripts/setup-deps` installs it). A second test sends the same HTTP API requests to
//! both servers and compares the response bodies byte for byte.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, block_on};

const ADMIN_TOKEN: &str = "dzr_promtool-test-admin-token-0123";

fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The test data: two counters growing by 10 and 20 per 15 s scrape and a gauge, for
/// 5 minutes from `base` (seconds).
fn batch(base: i64) -> dozor_ingest::Batch {
    let series = |pairs: &[(&str, &str)], f: &dyn Fn(i64) -> f64| {
        (
            dozor_model::Labels::from_pairs(pairs.iter().copied()).unwrap(),
            (0..=20)
                .map(|i| dozor_model::Sample {
                    t: (base + i * 15) * 1000,
                    v: f(i),
                })
                .collect(),
        )
    };
    vec![
        series(
            &[
                ("__name__", "pt_requests_total"),
                ("job", "pt"),
                ("instance", "a"),
            ],
            &|i| (i * 10) as f64,
        ),
        series(
            &[
                ("__name__", "pt_requests_total"),
                ("job", "pt"),
                ("instance", "b"),
            ],
            &|i| (i * 20) as f64,
        ),
        series(
            &[
                ("__name__", "pt_temperature"),
                ("job", "pt"),
                ("instance", "a"),
            ],
            &|i| 20.5 + (i % 2) as f64 * 0.25,
        ),
    ]
}

async fn remote_write(url: &str, token: Option<&str>, base: i64) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(dozor_ingest::remote_write::encode(&batch(base)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
}

/// Runs `promtool query <args>`; returns its stdout lines (sorted when `sort`).
fn promtool(args: &[String], sort: bool) -> Vec<String> {
    let out = Command::new("promtool")
        .arg("query")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "promtool query {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    if sort {
        lines.sort();
    }
    lines
}

/// The four promtool commands of the acceptance test, against `server`, and what each
/// printed.
fn run_all(server: &str, base: i64) -> Vec<(String, Vec<String>)> {
    let s = |x: &str| x.to_owned();
    let t = base + 307; // between samples: away from window edges (2.x and 3.x agree)
    let commands: Vec<(Vec<String>, bool)> = vec![
        (
            vec![
                s("instant"),
                format!("--time={t}"),
                s(server),
                s("pt_requests_total"),
            ],
            true,
        ),
        (
            vec![
                s("instant"),
                format!("--time={t}"),
                s(server),
                s("sum by (instance) (rate(pt_requests_total[1m]))"),
            ],
            true,
        ),
        (
            vec![
                s("range"),
                format!("--start={base}"),
                format!("--end={}", base + 60),
                s("--step=15s"),
                s(server),
                s(r#"pt_requests_total{instance="a"} / 10"#),
            ],
            false,
        ),
        (
            vec![s("series"), s("--match=pt_requests_total"), s(server)],
            true,
        ),
        (vec![s("labels"), s(server), s("instance")], false),
    ];
    commands
        .into_iter()
        .map(|(args, sort)| (args[0].clone(), promtool(&args, sort)))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's Prometheus with the remote-write receiver, on a free port, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(30);
        block_on(async {
            loop {
                let ready = reqwest::get(format!("http://{}/-/ready", p.addr)).await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(Instant::now() < until, "prometheus did not become ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        p
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn promtool_queries_dozor_with_a_token_and_prints_prometheus_values() {
    if !have("promtool") {
        println!(
            "SKIP: promtool not found (Debian package prometheus; scripts/setup-deps installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, read_token, base) = dozor_with_data(dir.path());
    let url = format!("http://promtool:{read_token}@{}", server.addr);
    let got = run_all(&url, base);
    for (cmd, lines) in &got {
        println!("promtool query {cmd} (dozor):\n  {}", lines.join("\n  "));
    }
    let t = base + 307;
    assert_eq!(
        got[0].1,
        [
            format!(r#"pt_requests_total{{instance="a", job="pt"}} => 200 @[{t}]"#),
            format!(r#"pt_requests_total{{instance="b", job="pt"}} => 400 @[{t}]"#),
        ]
    );
    // rate over (t-60, t]: samples at +255…+300, extrapolated 8 s back and 7 s forward.
    let rates: Vec<f64> = got[1]
        .1
        .iter()
        .map(|l| {
            let v = l.split(" => ").nth(1).unwrap().split(' ').next().unwrap();
            v.parse().unwrap()
        })
        .collect();
    assert!(
        got[1].1[0].starts_with(r#"{instance="a"} => "#),
        "{:?}",
        got[1].1
    );
    assert!((rates[0] - 10.0 / 15.0).abs() < 1e-9, "{rates:?}");
    assert!((rates[1] - 20.0 / 15.0).abs() < 1e-9, "{rates:?}");
    let mut range = vec![r#"{instance="a", job="pt"} =>"#.to_owned()];
    range.extend((0..=4).map(|i| format!("{i} @[{}]", base + i * 15)));
    assert_eq!(got[2].1, range);
    assert_eq!(
        got[3].1,
        [
            r#"{__name__="pt_requests_total", instance="a", job="pt"}"#,
            r#"{__name__="pt_requests_total", instance="b", job="pt"}"#,
        ]
    );
    assert_eq!(got[4].1, ["a", "b"]);

    // The same data in Debian's Prometheus prints the same.
    if !have("prometheus") {
        println!("SKIP: prometheus not found; compared with the expected values only");
        return;
    }
    let prom = Prometheus::start();
    block_on(remote_write(
        &format!("http://{}/api/v1/write", prom.addr),
        None,
        base,
    ));
    let theirs = run_all(&format!("http://{}", prom.addr), base);
    for ((cmd, ours), (_, theirs)) in got.iter().zip(&theirs) {
        assert_eq!(ours, theirs, "promtool query {cmd}: dozor vs prometheus");
    }
    println!(
        "Prometheus at {} printed the same for all five commands",
        prom.addr
    );
}

/// Starts Dozor with the test data and a read token; returns the server, the token and the
/// data's base time (seconds).
fn dozor_with_data(dir: &std::path::Path) -> (Server, String, i64) {
    let server = Server::start(
        dir,
        &[
            ("DOZOR_ADMIN_TOKEN", ADMIN_TOKEN),
            ("DOZOR_COLLECTORS__HOST", "false"),
            ("DOZOR_COLLECTORS__SELF_METRICS", "false"),
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base = (now - 900) / 60 * 60;
    let token = block_on(async {
        remote_write(&server.url("/api/v1/write"), Some(ADMIN_TOKEN), base).await;
        let created: serde_json::Value = reqwest::Client::new()
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"name": "promtool", "scopes": ["read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["data"]["token"].as_str().unwrap().to_owned()
    });
    (server, token, base)
}

#[test]
fn the_http_api_answers_prometheus_bytes_for_the_same_requests() {
    if !have("prometheus") {
        println!("SKIP: prometheus not found (Debian package prometheus)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, token, base) = dozor_with_data(dir.path());
    let prom = Prometheus::start();
    block_on(remote_write(
        &format!("http://{}/api/v1/write", prom.addr),
        None,
        base,
    ));
    let t = base + 307;
    let (start, end) = (base + 30, base + 90);
    let requests: Vec<(&str, String)> = vec![
        ("GET", format!("/api/v1/query?query=pt_requests_total&time={t}")),
        ("GET", format!("/api/v1/query?query=pt_temperature&time={t}.5")),
        ("GET", format!("/api/v1/query?query=sum%20by%20(instance)%20(pt_requests_total)%20%2F%203&time={t}")),
        ("GET", format!("/api/v1/query?query=pt_requests_total%20%2F%200&time={t}")),
        ("GET", format!("/api/v1/query?query=-pt_temperature%20%2F%200&time={t}")),
        ("GET", format!("/api/v1/query?query=0%2F0&time={t}")),
        ("GET", format!("/api/v1/query?query=%22text%22&time={t}")),
        ("GET", format!("/api/v1/query?query=pt_temperature%5B1m%5D&time={t}")),
        ("GET", format!("/api/v1/query?query=rate(pt_requests_total%5B1m%5D)&time={t}")),
        ("GET", format!("/api/v1/query_range?query=pt_temperature&start={start}&end={end}&step=15s")),
        ("GET", format!("/api/v1/query_range?query=sum(pt_requests_total)&start={start}.25&end={end}&step=10")),
        ("POST", format!("/api/v1/query_range?query=pt_temperature*2&start={start}&end={end}&step=20s")),
        ("GET", format!("/api/v1/query_range?query=time()&start={start}&end={end}&step=30")),
        ("GET", "/api/v1/series?match[]=pt_requests_total".to_owned()),
        ("POST", "/api/v1/series?match[]=pt_temperature&match[]=pt_requests_total%7Binstance%3D%22b%22%7D".to_owned()),
        ("GET", "/api/v1/labels".to_owned()),
        ("GET", "/api/v1/label/instance/values".to_owned()),
        ("GET", "/api/v1/label/__name__/values".to_owned()),
        ("GET", format!("/api/v1/query_range?query=up&start={end}&end={start}&step=15s")),
        ("GET", format!("/api/v1/query_range?query=up&start={start}&end={end}&step=0")),
        ("GET", "/api/v1/query_exemplars?query=up".to_owned()),
        ("GET", "/api/v1/metadata".to_owned()),
    ];
    let (ours, theirs) = block_on(async {
        let client = reqwest::Client::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for (method, path) in &requests {
            for (base_url, auth, out) in [
                (server.url(""), Some(token.as_str()), &mut ours),
                (format!("http://{}", prom.addr), None, &mut theirs),
            ] {
                // POSTs move the query string into a form body.
                let (url, body) = match *method {
                    "POST" => {
                        let (p, q) = path.split_once('?').unwrap();
                        (format!("{base_url}{p}"), Some(q.to_owned()))
                    }
                    _ => (format!("{base_url}{path}"), None),
                };
                let mut req = match body {
                    Some(b) => client
                        .post(url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(b),
                    None => client.get(url),
                };
                if let Some(a) = auth {
                    req = req.basic_auth("grafana", Some(a));
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                out.push((status, res.text().await.unwrap()));
            }
        }
        (ours, theirs)
    });
    let mut differ = Vec::new();
    for (((method, path), ours), theirs) in requests.iter().zip(&ours).zip(&theirs) {
        println!(
            "{method} {path}\n  dozor:      {} {}\n  prometheus: {} {}",
            ours.0, ours.1, theirs.0, theirs.1
        );
        if ours != theirs {
            differ.push(format!("{method} {path}"));
        }
    }
    assert!(differ.is_empty(), "answers differ: {differ:#?}");
}
