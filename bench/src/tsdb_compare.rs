//! `tsdb-compare`: loads the same metric data into Dozor, Prometheus and VictoriaMetrics via
//! remote_write, one system at a time, and prints disk bytes per sample, samples ingested
//! per server CPU-second, resident memory per active series and restart (WAL replay) time,
//! each with Dozor's ratio against the peers. See `bench/README.md`.
//!
//! Data: real node_exporter output (Debian's `prometheus-node-exporter`, scraped twice to
//! learn which series move and how fast), replicated over `--series / template` instances,
//! advanced `--steps` times at a 15 s interval with a few milliseconds of scrape jitter.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_ingest::Batch;
use dozor_ingest::exposition::{Format, parse};
use dozor_model::{Labels, Sample};

#[derive(Parser)]
#[command(about = "Dozor vs Prometheus vs VictoriaMetrics: disk, ingest CPU, memory, restart")]
struct Args {
    /// Active series to load (rounded to whole node_exporter instances).
    #[arg(long, default_value_t = 1_000_000)]
    series: usize,
    /// Scrapes per series (samples = series × steps).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Instances per remote_write request.
    #[arg(long, default_value_t = 20)]
    instances_per_request: usize,
    /// Concurrent remote_write requests.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Systems to run, comma-separated: dozor, prometheus, victoria-metrics.
    #[arg(long, default_value = "dozor,prometheus,victoria-metrics")]
    systems: String,
    /// The dozor binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// Scratch directory for the systems' data.
    #[arg(long, default_value = "target/bench-data")]
    work: PathBuf,
}

/// What was measured for one system.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    disk_bytes: f64,
    cpu_seconds: f64,
    wall_seconds: f64,
    rss_bytes: f64,
    restart_seconds: f64,
}

struct System {
    name: &'static str,
    port: u16,
    data: PathBuf,
    child: Option<Child>,
}

const DOZOR_TOKEN: &str = "dzr_bench-token-0123456789abcdef";

impl System {
    fn start(&mut self, dozor: &Path) -> anyhow::Result<()> {
        let addr = format!("127.0.0.1:{}", self.port);
        let mut cmd = match self.name {
            "dozor" => {
                let mut c = Command::new(dozor);
                c.args(["serve", "--listen", &addr, "--data-dir"])
                    .arg(&self.data);
                c.env("DOZOR_ADMIN_TOKEN", DOZOR_TOKEN)
                    .env("DOZOR_LOG", "warn");
                c
            }
            "prometheus" => {
                let cfg = self.data.join("prometheus.yml");
                std::fs::create_dir_all(&self.data)?;
                std::fs::write(&cfg, "global: {scrape_interval: 1h}\n")?;
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

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn ready_path(&self) -> &'static str {
        match self.name {
            "dozor" => "/readyz",
            "prometheus" => "/-/ready",
            _ => "/health",
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<Duration> {
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

    fn stop(&mut self, signal: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", signal, &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Moves in-memory data to its final on-disk form and returns the bytes it takes.
    async fn flush_and_measure(&self, client: &reqwest::Client) -> anyhow::Result<f64> {
        match self.name {
            "dozor" => {
                let r = client
                    .post(self.url("/api/v1/admin/tsdb/flush"))
                    .bearer_auth(DOZOR_TOKEN)
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

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
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

fn rss_bytes(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib * 1024.0)
}

/// Two scrapes of a real node_exporter, one second apart: the template and each series' rate.
async fn node_exporter_template() -> anyhow::Result<Vec<(Labels, f64, f64)>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new("/usr/bin/prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .context(
            "cannot start prometheus-node-exporter (apt-get install prometheus-node-exporter)",
        )?;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut texts = Vec::new();
    for attempt in 0..100 {
        match client.get(&url).send().await {
            Ok(r) => {
                texts.push(r.text().await?);
                if texts.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) if attempt < 99 => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let limits = dozor_ingest::Limits::default();
    let first = parse(&texts[0], Format::Prometheus, 0, &limits)?;
    let second: std::collections::HashMap<Labels, f64> =
        parse(&texts[1], Format::Prometheus, 0, &limits)?
            .into_iter()
            .map(|(l, s)| (l, s[0].v))
            .collect();
    Ok(first
        .into_iter()
        .filter(|(_, s)| s[0].v.is_finite())
        .map(|(l, s)| {
            let rate = second.get(&l).map_or(0.0, |v| v - s[0].v);
            (l, s[0].v, rate)
        })
        .collect())
}

/// Builds every remote_write body up front, so generation costs nothing during the runs.
fn build_requests(
    template: &[(Labels, f64, f64)],
    instances: usize,
    steps: usize,
    per_request: usize,
) -> anyhow::Result<(Vec<Vec<u8>>, usize)> {
    let mut rng = fastrand::Rng::with_seed(42);
    let start = dozor_model::time::now_ms() - (steps as i64) * 15_000;
    let instance_labels: Vec<Vec<Labels>> = (0..instances)
        .map(|i| {
            template
                .iter()
                .map(|(l, _, _)| {
                    l.with("instance", &format!("host-{i}:9100"))
                        .and_then(|l| l.with("job", "node"))
                })
                .collect::<Result<_, _>>()
        })
        .collect::<Result<_, _>>()?;
    let mut bodies = Vec::new();
    let mut samples = 0;
    for step in 0..steps {
        for chunk in (0..instances).collect::<Vec<_>>().chunks(per_request) {
            let mut batch: Batch = Vec::with_capacity(chunk.len() * template.len());
            for &i in chunk {
                // Real scrapes land a few ms off the interval.
                let t = start + (step as i64) * 15_000 + (i as i64 % 1000) + rng.i64(0..4);
                for (j, (_, v0, rate)) in template.iter().enumerate() {
                    let v = if *rate == 0.0 {
                        *v0
                    } else if *rate > 0.0 {
                        // Counters: the measured rate over 15 s, with noise, never decreasing.
                        let per_step = rate * 15.0;
                        (v0 + per_step * step as f64 * (0.9 + 0.2 * rng.f64())).round()
                    } else {
                        // Moving gauges: a walk around the measured value.
                        (v0 + rate * 15.0 * (rng.f64() - 0.5)).round()
                    };
                    batch.push((instance_labels[i][j].clone(), vec![Sample { t, v }]));
                    samples += 1;
                }
            }
            bodies.push(dozor_ingest::remote_write::encode(&batch));
        }
    }
    Ok((bodies, samples))
}

async fn send_all(
    system: &System,
    client: &reqwest::Client,
    bodies: &[Vec<u8>],
    concurrency: usize,
) -> anyhow::Result<()> {
    // All three accept remote_write at the same path.
    let url = system.url("/api/v1/write");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies = std::sync::Arc::new(bodies.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, bodies) =
            (client.clone(), url.clone(), next.clone(), bodies.clone());
        let auth = system.name == "dozor";
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(body.clone());
                if auth {
                    req = req.bearer_auth(DOZOR_TOKEN);
                }
                let r = req.send().await?;
                if !r.status().is_success() {
                    bail!(
                        "remote_write answered {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn run_system(
    system: &mut System,
    args: &Args,
    client: &reqwest::Client,
    bodies: &[Vec<u8>],
) -> anyhow::Result<Measured> {
    let _ = std::fs::remove_dir_all(&system.data);
    system.start(&args.dozor)?;
    system.wait_ready(client).await?;
    let cpu0 = cpu_seconds(system.pid());
    let wall = Instant::now();
    send_all(system, client, bodies, args.concurrency).await?;
    let wall_seconds = wall.elapsed().as_secs_f64();
    let cpu_seconds = cpu_seconds(system.pid()) - cpu0;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_bytes(system.pid());
    // Restart from the WAL (SIGTERM so every system persists as it would at a deploy).
    system.stop("TERM");
    system.start(&args.dozor)?;
    let restart = system.wait_ready(client).await?;
    let disk = system.flush_and_measure(client).await?;
    system.stop("TERM");
    Ok(Measured {
        disk_bytes: disk,
        cpu_seconds,
        wall_seconds,
        rss_bytes: rss,
        restart_seconds: restart.as_secs_f64(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let template = node_exporter_template().await?;
    let instances = (args.series / template.len()).max(1);
    let series = instances * template.len();
    eprintln!(
        "template: {} series per node_exporter; {instances} instances = {series} series × {} steps",
        template.len(),
        args.steps
    );
    let (bodies, samples) =
        build_requests(&template, instances, args.steps, args.instances_per_request)?;
    eprintln!(
        "{} remote_write requests, {samples} samples, {} MiB compressed",
        bodies.len(),
        bodies.iter().map(Vec::len).sum::<usize>() >> 20
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut results: Vec<(&'static str, Measured)> = Vec::new();
    for (i, name) in args.systems.split(',').map(str::trim).enumerate() {
        let name: &'static str = match name {
            "dozor" => "dozor",
            "prometheus" => "prometheus",
            "victoria-metrics" => "victoria-metrics",
            other => bail!("unknown system {other}"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut system = System {
            name,
            port,
            data: args.work.join(name),
            child: None,
        };
        eprintln!("[{}] {name}…", i + 1);
        let m = run_system(&mut system, &args, &client, &bodies).await;
        system.stop("KILL");
        let m = m?;
        eprintln!("    {m:?}");
        results.push((name, m));
    }
    print_table(&results, samples as f64, series as f64);
    Ok(())
}

/// A row of the table: label, how to compute it from a measurement, samples and series, and
/// whether higher is better.
type Row = (&'static str, fn(&Measured, f64, f64) -> f64, bool);

fn print_table(results: &[(&str, Measured)], samples: f64, series: f64) {
    let rows: [Row; 5] = [
        (
            "disk bytes/sample",
            |m, samples, _| m.disk_bytes / samples,
            false,
        ),
        (
            "samples/CPU-second",
            |m, samples, _| samples / m.cpu_seconds.max(1e-9),
            true,
        ),
        (
            "RSS bytes/series",
            |m, _, series| m.rss_bytes / series,
            false,
        ),
        ("restart seconds", |m, _, _| m.restart_seconds, false),
        ("ingest wall seconds", |m, _, _| m.wall_seconds, false),
    ];
    print!("{:<22}", "metric");
    for (name, _) in results {
        print!("{name:>18}");
    }
    let dozor = results.iter().find(|(n, _)| *n == "dozor").map(|(_, m)| *m);
    for (name, _) in results.iter().filter(|(n, _)| *n != "dozor") {
        print!("{:>22}", format!("dozor/{name}"));
    }
    println!();
    for (label, f, higher_is_better) in rows {
        print!("{label:<22}");
        for (_, m) in results {
            print!("{:>18.3}", f(m, samples, series));
        }
        if let Some(d) = dozor {
            for (_, m) in results.iter().filter(|(n, _)| *n != "dozor") {
                let ratio = f(&d, samples, series) / f(m, samples, series);
                print!(
                    "{:>22}",
                    format!(
                        "{ratio:.2}{}",
                        if higher_is_better { " (↑)" } else { " (↓)" }
                    )
                );
            }
        }
        println!();
    }
    println!(
        "samples: {samples}, series: {series}; ↑ higher is better for Dozor, ↓ lower is better"
    );
}
