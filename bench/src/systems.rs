//! The systems under test — Dozor (`dozor serve`), Prometheus (Debian's 2.42 with the
//! remote_write receiver), VictoriaMetrics and Alertmanager (Debian's 0.25) — started on a free loopback port with a fresh
//! data directory, plus remote_write delivery and the process probes (CPU time, RSS) the
//! benchmarks read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The admin token Dozor is started with; requests to Dozor carry it as a bearer token.
pub const DOZOR_TOKEN: &str = "dzr_bench-token-0123456789abcdef";

/// One system under test and its process, if running.
pub struct System {
    /// `dozor`, `prometheus` or `victoria-metrics`.
    pub name: &'static str,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its data directory.
    pub data: PathBuf,
    /// A configuration file to start with (Dozor: `--config`; Prometheus: instead of the
    /// default one, which scrapes nothing); `None` for the defaults.
    pub config: Option<PathBuf>,
    child: Option<Child>,
}

/// A free loopback port (bound and released; good enough on a quiet machine).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl System {
    /// A stopped system named `name` (one of the three) with its data under `work/<name>`.
    pub fn new(name: &str, work: &Path) -> anyhow::Result<System> {
        let name: &'static str = match name {
            "dozor" => "dozor",
            "prometheus" => "prometheus",
            "victoria-metrics" => "victoria-metrics",
            "alertmanager" => "alertmanager",
            other => bail!("unknown system {other}"),
        };
        Ok(System {
            name,
            port: free_port()?,
            data: work.join(name),
            config: None,
            child: None,
        })
    }

    /// Starts the process (without waiting for readiness); `dozor` is the binary under test.
    pub fn start(&mut self, dozor: &Path) -> anyhow::Result<()> {
        let addr = format!("127.0.0.1:{}", self.port);
        let mut cmd = match self.name {
            "dozor" => {
                let mut c = Command::new(dozor);
                c.args(["serve", "--listen", &addr, "--data-dir"])
                    .arg(&self.data);
                if let Some(cfg) = &self.config {
                    c.arg("--config").arg(cfg);
                }
                c.env("DOZOR_ADMIN_TOKEN", DOZOR_TOKEN)
                    .env("DOZOR_LOG", "warn");
                c
            }
            "prometheus" => {
                std::fs::create_dir_all(&self.data)?;
                let cfg = match &self.config {
                    Some(cfg) => cfg.clone(),
                    None => {
                        let cfg = self.data.join("prometheus.yml");
                        std::fs::write(&cfg, "global: {scrape_interval: 1h}\n")?;
                        cfg
                    }
                };
                let mut c = Command::new("/usr/bin/prometheus");
                c.arg(format!("--config.file={}", cfg.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        self.data.join("tsdb").display()
                    ))
                    .arg(format!("--web.listen-address={addr}"))
                    .args([
                        "--web.enable-remote-write-receiver",
                        "--web.enable-admin-api",
                        "--log.level=warn",
                    ]);
                c
            }
            "alertmanager" => {
                std::fs::create_dir_all(&self.data)?;
                let cfg = self
                    .config
                    .clone()
                    .context("Alertmanager needs a configuration file")?;
                let mut c = Command::new("/usr/bin/prometheus-alertmanager");
                c.arg(format!("--config.file={}", cfg.display()))
                    .arg(format!("--storage.path={}", self.data.display()))
                    .arg(format!("--web.listen-address={addr}"))
                    // A single node: no gossip port, no settling wait.
                    .args(["--cluster.listen-address=", "--log.level=warn"]);
                c
            }
            "victoria-metrics" => {
                let mut c = Command::new("/usr/bin/victoria-metrics");
                c.arg(format!("-storageDataPath={}", self.data.display()))
                    .arg(format!("-httpListenAddr={addr}"))
                    .args(["-retentionPeriod=100y", "-loggerLevel=ERROR"]);
                c
            }
            other => bail!("unknown system {other}"),
        };
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("cannot start {}", self.name))?,
        );
        Ok(())
    }

    /// The process id, 0 when stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Adds the credentials this system wants (Dozor: the bearer token; the others: none).
    pub fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.name == "dozor" {
            req.bearer_auth(DOZOR_TOKEN)
        } else {
            req
        }
    }

    fn ready_path(&self) -> &'static str {
        match self.name {
            "dozor" => "/readyz",
            "prometheus" | "alertmanager" => "/-/ready",
            _ => "/health",
        }
    }

    /// Waits until the system answers its readiness check; returns how long that took.
    pub async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(600) {
            if let Ok(r) = client.get(self.url(self.ready_path())).send().await
                && r.status().is_success()
            {
                return Ok(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("{} did not become ready", self.name)
    }

    /// Sends `signal` (`TERM`, `KILL`) and waits for the process to end.
    pub fn stop(&mut self, signal: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", signal, &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// A cloneable handle that sends remote_write requests to this system.
    pub fn writer(&self) -> Writer {
        Writer {
            name: self.name,
            url: self.url("/api/v1/write"),
        }
    }

    /// Moves in-memory data to its final on-disk form and returns the bytes it takes.
    pub async fn flush_and_measure(&self, client: &reqwest::Client) -> anyhow::Result<f64> {
        match self.name {
            "dozor" => {
                let r = self
                    .authed(client.post(self.url("/api/v1/admin/tsdb/flush")))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("dozor flush: HTTP {}", r.status());
                }
                Ok(dozor_tsdb::files::dir_size(&self.data.join("tsdb")) as f64)
            }
            "prometheus" => {
                // A snapshot writes the head as a block; its size is what the data takes once
                // compacted, without the WAL.
                let r: serde_json::Value = client
                    .post(self.url("/api/v1/admin/tsdb/snapshot"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let name = r["data"]["name"].as_str().context("snapshot name")?;
                Ok(
                    dozor_tsdb::files::dir_size(&self.data.join("tsdb/snapshots").join(name))
                        as f64,
                )
            }
            _ => {
                client.get(self.url("/internal/force_flush")).send().await?;
                // Give background merges a moment, as VictoriaMetrics' own docs suggest.
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(dozor_tsdb::files::dir_size(&self.data.join("data")) as f64)
            }
        }
    }
}

/// Sends remote_write 1.0 bodies to one system; cheap to clone into tasks.
#[derive(Clone)]
pub struct Writer {
    name: &'static str,
    url: String,
}

impl Writer {
    /// Sends one snappy-compressed body (all three systems take it at the same path).
    pub async fn send(&self, client: &reqwest::Client, body: Vec<u8>) -> anyhow::Result<()> {
        let mut req = client
            .post(&self.url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body);
        if self.name == "dozor" {
            req = req.bearer_auth(DOZOR_TOKEN);
        }
        let r = req.send().await?;
        if !r.status().is_success() {
            bail!(
                "{}: remote_write answered {}: {}",
                self.name,
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// Sends every body to `system`, `concurrency` requests at a time, in any order.
pub async fn send_all(
    system: &System,
    client: &reqwest::Client,
    bodies: &[Vec<u8>],
    concurrency: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, writer, next, bodies) = (
            client.clone(),
            system.writer(),
            next.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                writer.send(&client, body.clone()).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident set size of a process in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib * 1024.0)
}
