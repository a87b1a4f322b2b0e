//! `notify-latency`: how long an alert takes from being posted to reaching a webhook, in
//! Dozor and in Alertmanager (Debian's 0.25), one system at a time, with the same
//! configuration (`group_wait: 0s`, every alert its own group) while `--active` other
//! alerts are firing. See `bench/README.md`.
//!
//! Each system gets the `--active` alerts first (in batches of 100, as Prometheus sends
//! them) and the benchmark waits until the webhook has heard of all of them; then
//! `--measured` new alerts are posted one by one at `--rate` per second, and for each the
//! time from the start of its POST to the arrival of the webhook call that carries it is
//! recorded. It prints p50, p90, p99 and the maximum, the process' CPU seconds over the
//! measured phase, and Dozor's ratios to Alertmanager.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_bench::systems::{System, cpu_seconds};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(about = "Dozor vs Alertmanager: alert posted → webhook received latency")]
struct Args {
    /// Alerts firing in the background while the measured ones are posted.
    #[arg(long, default_value_t = 1000)]
    active: usize,
    /// New alerts measured.
    #[arg(long, default_value_t = 300)]
    measured: usize,
    /// Measured alerts posted per second.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// Systems to run, comma-separated: dozor, alertmanager.
    #[arg(long, default_value = "dozor,alertmanager")]
    systems: String,
    /// The dozor binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// Scratch directory for the systems' data.
    #[arg(long, default_value = "target/bench-data")]
    work: PathBuf,
}

/// When the webhook first heard of each alert (by its `seq` label).
type Heard = Arc<Mutex<HashMap<String, Instant>>>;

/// A webhook listener: HTTP/1.1 with keep-alive, 200 to every request, and the arrival
/// time of each firing alert's `seq` label.
async fn webhook(heard: Heard) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            let heard = Arc::clone(&heard);
            tokio::spawn(async move {
                let (r, mut w) = conn.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let now = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        let mut h = heard
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for a in v["alerts"].as_array().into_iter().flatten() {
                            if a["status"] == "firing"
                                && let Some(seq) = a["labels"]["seq"].as_str()
                            {
                                h.entry(seq.to_owned()).or_insert(now);
                            }
                        }
                    }
                    if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn alert(seq: &str) -> serde_json::Value {
    serde_json::json!({
        "labels": {"alertname": "BenchAlert", "seq": seq, "severity": "warning"},
        "annotations": {"summary": "benchmark alert"},
        "startsAt": jiff::Timestamp::now().to_string(),
        "generatorURL": "http://bench/graph",
    })
}

async fn post(
    client: &reqwest::Client,
    system: &System,
    alerts: &[serde_json::Value],
) -> anyhow::Result<()> {
    let r = system
        .authed(client.post(system.url("/api/v2/alerts")))
        .json(&alerts)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("{}: POST /api/v2/alerts: {}", system.name, r.status());
    }
    Ok(())
}

async fn wait_heard(heard: &Heard, want: impl Fn(&HashMap<String, Instant>) -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(120);
    while Instant::now() < until {
        if want(
            &heard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// p50, p90, p99 and max of `ms`, sorted in place.
fn quantiles(ms: &mut [f64]) -> [f64; 4] {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
        ms.get(i).copied().unwrap_or(f64::NAN)
    };
    [
        at(0.5),
        at(0.9),
        at(0.99),
        ms.last().copied().unwrap_or(f64::NAN),
    ]
}

async fn run(args: &Args, name: &str) -> anyhow::Result<([f64; 4], f64)> {
    let heard: Heard = Arc::default();
    let port = webhook(Arc::clone(&heard)).await?;
    let dir = args.work.join(format!("notify-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // Absolute: Dozor reads the path relative to its own configuration file.
    let dir = dir.canonicalize()?;
    let am = dir.join("alertmanager.yml");
    std::fs::write(
        &am,
        format!(
            "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 5m\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{port}/hook\n        send_resolved: false\n"
        ),
    )?;
    let mut system = System::new(name, &dir)?;
    system.config = Some(if name == "dozor" {
        let cfg = dir.join("dozor.yml");
        std::fs::write(
            &cfg,
            format!("alerting:\n  config_file: {}\n", am.display()),
        )?;
        cfg
    } else {
        am
    });
    system.start(&args.dozor)?;
    let client = reqwest::Client::new();
    system.wait_ready(&client).await?;

    let background: Vec<serde_json::Value> = (0..args.active)
        .map(|i| alert(&format!("bg-{i}")))
        .collect();
    for chunk in background.chunks(100) {
        post(&client, &system, chunk).await?;
    }
    let active = args.active;
    if !wait_heard(&heard, |h| h.len() >= active).await {
        bail!("{name}: the webhook heard of only some background alerts");
    }

    let cpu0 = cpu_seconds(system.pid());
    let mut sent = Vec::with_capacity(args.measured);
    let gap = Duration::from_micros(1_000_000 / args.rate.max(1));
    let start = Instant::now();
    for i in 0..args.measured {
        let due = start + gap * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let seq = format!("m-{i}");
        let t = Instant::now();
        post(&client, &system, &[alert(&seq)]).await?;
        sent.push((seq, t));
    }
    let total = args.active + args.measured;
    let all = wait_heard(&heard, |h| h.len() >= total).await;
    let cpu = cpu_seconds(system.pid()) - cpu0;
    system.stop("TERM");
    if !all {
        bail!("{name}: the webhook did not hear of every measured alert");
    }
    let h = heard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(seq, t)| {
            h.get(seq)
                .map(|r| r.duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    Ok((quantiles(&mut ms), cpu))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();
    for name in args.systems.split(',').map(str::trim) {
        let (q, cpu) = run(&args, name)
            .await
            .with_context(|| format!("{name} run"))?;
        println!(
            "{name:<13} p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  cpu {:.2} s",
            q[0], q[1], q[2], q[3], cpu
        );
        rows.push((name.to_owned(), q, cpu));
    }
    if let (Some(d), Some(a)) = (
        rows.iter().find(|r| r.0 == "dozor"),
        rows.iter().find(|r| r.0 == "alertmanager"),
    ) {
        println!(
            "dozor/alertmanager: p50 {:.2}  p99 {:.2}  cpu {:.2}",
            d.1[0] / a.1[0],
            d.1[2] / a.1[2],
            d.2 / a.2
        );
    }
    Ok(())
}
