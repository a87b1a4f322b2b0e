//! `logs-compare`: loads the same NDJSON log corpus into Dozor's log store and into
//! ClickHouse (Debian's 18.16), one system at a time, and prints lines ingested per server
//! CPU-second, disk size after the final flush / merge against `zstd -3` of the raw corpus,
//! and `|= "needle"` search latency (cold after a restart with the data files' page cache
//! dropped, and warm), each with Dozor's ratio against ClickHouse. It asserts nothing. See
//! `bench/README.md`.
//!
//! Data: [`dozor_bench::log_corpus`] (shop, MES, CRM and RabbitMQ service logs plus Loghub-2k
//! lines), sent in batches of `--batch-lines` lines, `--concurrency` requests at a time: to
//! Dozor as they are (`POST /api/v1/logs/ingest`), to ClickHouse rewritten once up front,
//! before anything is timed, as `JSONEachRow` rows of its table.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_bench::clickhouse::{ClickHouse, to_json_each_row};
use dozor_bench::log_corpus::{self, Corpus, LoghubSource, NEVER_NEEDLE, RARE_LINES, RARE_NEEDLE};
use dozor_bench::systems::{DOZOR_TOKEN, System, cpu_seconds, rss_bytes};

#[derive(Parser)]
#[command(about = "Dozor vs ClickHouse on logs: ingest CPU, disk against zstd -3, needle search")]
struct Args {
    /// Raw corpus size, bytes (the profile: 1.1 GB).
    #[arg(long, default_value_t = 1_100_000_000)]
    bytes: u64,
    /// Seed of the corpus generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Time of the corpus' first line (RFC 3339 with ms, `2026-11-30T06:00:00.000Z`;
    /// default: the whole hour 24 h before now).
    #[arg(long)]
    start: Option<String>,
    /// Lines per ingest request (Dozor takes at most 100,000).
    #[arg(long, default_value_t = 10_000)]
    batch_lines: usize,
    /// Concurrent ingest requests.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Systems to run, comma-separated: dozor, clickhouse.
    #[arg(long, default_value = "dozor,clickhouse")]
    systems: String,
    /// Runs of each search, cold and warm (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Rounds: each system loads the corpus this many times, the systems taking turns, and
    /// the table shows each measurement's median over the rounds (CPU time on a shared VM
    /// moves by a third from one run to the next; one round proves little).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Needles to search for, comma-separated (default: the corpus' rare and absent ones).
    #[arg(long)]
    needles: Option<String>,
    /// zstd level of ClickHouse's server-wide compression (Dozor's blocks use 1).
    #[arg(long, default_value_t = 3)]
    clickhouse_zstd_level: i32,
    /// The Loghub-2k sample whose lines serve as templates (built-in ones when absent).
    #[arg(long, default_value = "../shared/datasets/loghub2k")]
    loghub: PathBuf,
    /// The dozor binary (build it with `cargo build --release -p dozor`).
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// Scratch directory: the corpus and the systems' data.
    #[arg(long, default_value = "target/bench-logs")]
    work: PathBuf,
}

/// Most bytes in one request (Dozor's default body limit is 16 MiB).
const MAX_BODY_BYTES: usize = 8 << 20;
/// Records a search asks for.
const SEARCH_LIMIT: usize = 100;

/// A system under test.
enum Server {
    Dozor(System, PathBuf),
    ClickHouse(ClickHouse),
}

/// How a system's data reached its final on-disk form.
#[derive(Debug, Clone)]
struct Disk {
    bytes: u64,
    how: String,
}

/// What was measured for one system.
#[derive(Debug, Clone, Default)]
struct Measured {
    ingest_cpu: f64,
    ingest_wall: f64,
    flush_cpu: f64,
    flush_wall: f64,
    accepted: u64,
    masked: u64,
    retries: u64,
    rss_bytes: f64,
    disk_bytes: u64,
    disk_how: String,
    restart_s: Vec<f64>,
    /// Per needle: lines found, cold and warm latencies (ms).
    searches: Vec<(String, usize, Vec<f64>, Vec<f64>)>,
}

impl Server {
    fn new(name: &str, args: &Args) -> anyhow::Result<Server> {
        Ok(match name {
            "dozor" => Server::Dozor(System::new("dozor", &args.work)?, args.dozor.clone()),
            "clickhouse" => {
                Server::ClickHouse(ClickHouse::new(&args.work, args.clickhouse_zstd_level)?)
            }
            other => bail!("unknown system {other} (dozor, clickhouse)"),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Dozor(..) => "dozor",
            Server::ClickHouse(_) => "clickhouse",
        }
    }

    /// Everything the system keeps (removed before a run).
    fn root(&self) -> PathBuf {
        match self {
            Server::Dozor(s, _) => s.data.clone(),
            Server::ClickHouse(c) => c.dir.clone(),
        }
    }

    /// Where its data files are (their page cache is dropped before a cold search).
    fn data(&self) -> PathBuf {
        match self {
            Server::Dozor(s, _) => s.data.clone(),
            Server::ClickHouse(c) => c.data(),
        }
    }

    fn start(&mut self) -> anyhow::Result<()> {
        match self {
            Server::Dozor(s, bin) => s.start(bin),
            Server::ClickHouse(c) => c.start(),
        }
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<Duration> {
        match self {
            Server::Dozor(s, _) => s.wait_ready(client).await,
            Server::ClickHouse(c) => c.wait_ready(client).await,
        }
    }

    fn stop(&mut self, signal: &str) {
        match self {
            Server::Dozor(s, _) => s.stop(signal),
            Server::ClickHouse(c) => c.stop(signal),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Server::Dozor(s, _) => s.pid(),
            Server::ClickHouse(c) => c.pid(),
        }
    }

    fn sender(&self) -> Sender {
        match self {
            Server::Dozor(s, _) => Sender::Dozor(s.url("/api/v1/logs/ingest")),
            Server::ClickHouse(c) => Sender::ClickHouse(c.url(&format!(
                "?query=INSERT%20INTO%20{}%20FORMAT%20JSONEachRow",
                dozor_bench::clickhouse::TABLE
            ))),
        }
    }

    /// Brings the data into its final on-disk form — Dozor: `POST /api/v1/admin/logs/flush`
    /// (flush and merge); ClickHouse: `OPTIMIZE TABLE … FINAL` — and measures it.
    async fn flush_and_measure(&mut self, client: &reqwest::Client) -> anyhow::Result<Disk> {
        match self {
            Server::Dozor(s, _) => {
                let r = s
                    .authed(client.post(s.url("/api/v1/admin/logs/flush")))
                    .send()
                    .await?;
                let how = if r.status() == reqwest::StatusCode::NOT_FOUND {
                    // A binary without the route: the maintenance task flushes a head older
                    // than 60 s on its 30 s round (shutdown only syncs the WAL).
                    eprintln!(
                        "    no /api/v1/admin/logs/flush in this binary: waiting for the maintenance flush"
                    );
                    wait_for_wal_drain(&s.data.join("logs")).await;
                    "maintenance flush (no flush route)".to_owned()
                } else if r.status().is_success() {
                    "POST /api/v1/admin/logs/flush".to_owned()
                } else {
                    bail!(
                        "dozor logs flush: HTTP {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                };
                let (parts, wal) = dozor_logs_sizes(&s.data.join("logs"));
                let total = dozor_tsdb::files::dir_size(&s.data.join("logs"));
                Ok(Disk {
                    bytes: total,
                    how: format!(
                        "{how}; logs/ = {total} B: parts {parts} B, WAL {wal} B, other {} B",
                        total.saturating_sub(parts + wal)
                    ),
                })
            }
            Server::ClickHouse(c) => {
                c.optimize(client).await?;
                let (bytes, parts) = c.active_bytes(client).await?;
                let table_dir = c
                    .data()
                    .join("data/default")
                    .join(dozor_bench::clickhouse::TABLE);
                Ok(Disk {
                    bytes,
                    how: format!(
                        "OPTIMIZE TABLE FINAL; {parts} active parts = {bytes} B (table directory with parts awaiting deletion: {} B)",
                        dozor_tsdb::files::dir_size(&table_dir)
                    ),
                })
            }
        }
    }

    /// One `|= needle` search over the corpus' time range: how many lines came back.
    async fn search(
        &self,
        client: &reqwest::Client,
        needle: &str,
        corpus: &Corpus,
    ) -> anyhow::Result<usize> {
        let (start_s, end_s) = (corpus.first_ms / 1000, corpus.last_ms / 1000 + 1);
        match self {
            Server::Dozor(s, _) => {
                let url = s.url(&format!(
                    "/api/v1/logs/search?query={}&contains={}&start={start_s}&end={end_s}&limit={SEARCH_LIMIT}",
                    percent_encode("{service=~\".+\"}"),
                    percent_encode(needle)
                ));
                let r = s.authed(client.get(url)).send().await?;
                let status = r.status();
                let body = r.text().await?;
                if !status.is_success() {
                    bail!("dozor search: HTTP {status}: {body}");
                }
                let v: serde_json::Value = serde_json::from_str(&body)?;
                Ok(v["data"]["records"]
                    .as_array()
                    .context("dozor search: no data.records")?
                    .len())
            }
            Server::ClickHouse(c) => c.search(client, needle, start_s, end_s, SEARCH_LIMIT).await,
        }
    }
}

/// Bytes of Dozor's log parts and log WALs under `logs/` (every tenant).
fn dozor_logs_sizes(logs: &Path) -> (u64, u64) {
    let (mut parts, mut wal) = (0, 0);
    for tenant in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        parts += dozor_tsdb::files::dir_size(&tenant.path().join("parts"));
        wal += dozor_tsdb::files::dir_size(&tenant.path().join("wal"));
    }
    (parts, wal)
}

/// Waits until Dozor's log WALs shrink to a tenth of their size (the head went into parts)
/// or 240 s pass.
async fn wait_for_wal_drain(logs: &Path) {
    let start = Instant::now();
    let before = dozor_logs_sizes(logs).1;
    while start.elapsed() < Duration::from_secs(240) {
        if dozor_logs_sizes(logs).1 <= before / 10 {
            // Let a merge that follows the flush finish.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("    the log WAL did not drain within 240 s; measuring anyway");
}

/// What one ingest request (or all of them) came back with.
#[derive(Debug, Clone, Copy, Default)]
struct Ack {
    accepted: u64,
    masked: u64,
    retries: u64,
}

/// Sends ingest bodies to one system; cheap to clone into tasks.
#[derive(Clone)]
enum Sender {
    Dozor(String),
    ClickHouse(String),
}

impl Sender {
    async fn send(&self, client: &reqwest::Client, body: &[u8]) -> anyhow::Result<Ack> {
        let mut ack = Ack::default();
        loop {
            let (url, req) = match self {
                Sender::Dozor(url) => (
                    url,
                    client
                        .post(url)
                        .bearer_auth(DOZOR_TOKEN)
                        .header("content-type", "application/x-ndjson"),
                ),
                Sender::ClickHouse(url) => (url, client.post(url)),
            };
            let r = req.body(body.to_vec()).send().await?;
            let status = r.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                ack.retries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let text = r.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("{url}: HTTP {status}: {}", text.trim());
            }
            match self {
                Sender::Dozor(_) => {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).context("dozor ingest: not JSON")?;
                    ack.accepted = v["data"]["accepted"].as_u64().unwrap_or(0);
                    ack.masked = v["data"]["masked"]
                        .as_object()
                        .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum());
                }
                Sender::ClickHouse(_) => {
                    ack.accepted = body.iter().filter(|b| **b == b'\n').count() as u64;
                }
            }
            return Ok(ack);
        }
    }
}

/// Sends every body, `concurrency` requests at a time, in any order.
async fn send_all(
    sender: &Sender,
    client: &reqwest::Client,
    bodies: &Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Ack> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, sender, next, bodies) =
            (client.clone(), sender.clone(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut total = Ack::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<Ack, anyhow::Error>(total);
                };
                let a = sender.send(&client, body).await?;
                total.accepted += a.accepted;
                total.masked += a.masked;
                total.retries += a.retries;
            }
        }));
    }
    let mut total = Ack::default();
    for t in tasks {
        let a = t.await??;
        total.accepted += a.accepted;
        total.masked += a.masked;
        total.retries += a.retries;
    }
    Ok(total)
}

/// `s` percent-encoded for a query string (everything but unreserved characters).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Line-aligned slices of `corpus`: at most `lines` lines and [`MAX_BODY_BYTES`] each.
fn batches(corpus: &[u8], lines: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut n) = (0, 0);
    for (i, b) in corpus.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        n += 1;
        let end = i + 1;
        let next_line_may_overflow = end - start > MAX_BODY_BYTES - (64 << 10);
        if n == lines.max(1) || next_line_may_overflow {
            out.push(start..end);
            (start, n) = (end, 0);
        }
    }
    if start < corpus.len() {
        out.push(start..corpus.len());
    }
    out
}

/// Drops the page cache of every file under `dir` (`dd iflag=nocache count=0`, which
/// advises the kernel to drop a file's cached pages); returns how many files.
fn drop_page_cache(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let ok = Command::new("dd")
                    .arg(format!("if={}", e.path().display()))
                    .args(["iflag=nocache", "count=0", "status=none"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                n += usize::from(ok);
            }
        }
    }
    n
}

/// Size of `zstd -3` of `path` (one thread, the CLI's defaults otherwise).
fn zstd3_bytes(path: &Path) -> anyhow::Result<u64> {
    let mut child = Command::new("zstd")
        .args(["-3", "-T1", "-q", "-c"])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run zstd (bench/setup installs it)")?;
    let mut out = child.stdout.take().context("zstd: no stdout")?;
    let bytes = std::io::copy(&mut out, &mut std::io::sink())?;
    if !child.wait()?.success() {
        bail!("zstd -3 failed on {}", path.display());
    }
    Ok(bytes)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn run_system(
    server: &mut Server,
    args: &Args,
    client: &reqwest::Client,
    bodies: &Arc<Vec<Vec<u8>>>,
    corpus: &Corpus,
    needles: &[String],
) -> anyhow::Result<Measured> {
    let _ = std::fs::remove_dir_all(server.root());
    server.start()?;
    server.wait_ready(client).await?;
    if let Server::ClickHouse(c) = server {
        c.create_table(client).await?;
    }
    let mut m = Measured::default();
    let pid = server.pid();
    let cpu0 = cpu_seconds(pid);
    let wall = Instant::now();
    let ack = send_all(&server.sender(), client, bodies, args.concurrency).await?;
    m.ingest_wall = wall.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds(pid);
    m.ingest_cpu = cpu1 - cpu0;
    (m.accepted, m.masked, m.retries) = (ack.accepted, ack.masked, ack.retries);
    m.rss_bytes = rss_bytes(pid);
    eprintln!(
        "    ingest: {:.1} s wall, {:.1} CPU-s, {} accepted, {} values masked, {} retries after 429",
        m.ingest_wall, m.ingest_cpu, m.accepted, m.masked, m.retries
    );
    let flush = Instant::now();
    // From here on, no connection outlives its request: ClickHouse's shutdown waits for idle
    // keep-alive connections (about 10 s), and a restart should not.
    let client = &reqwest::Client::builder()
        .timeout(Duration::from_secs(1800))
        .pool_max_idle_per_host(0)
        .build()?;
    let disk = server.flush_and_measure(client).await?;
    m.flush_wall = flush.elapsed().as_secs_f64();
    m.flush_cpu = cpu_seconds(pid) - cpu1;
    (m.disk_bytes, m.disk_how) = (disk.bytes, disk.how);
    eprintln!(
        "    flush: {:.1} s wall, {:.1} CPU-s; disk: {}",
        m.flush_wall, m.flush_cpu, m.disk_how
    );
    let data = server.data();
    let cycles = Instant::now();
    for needle in needles {
        let mut cold = Vec::new();
        let mut found = Vec::new();
        for _ in 0..args.runs {
            server.stop("TERM");
            let files = drop_page_cache(&data);
            server.start()?;
            m.restart_s
                .push(server.wait_ready(client).await?.as_secs_f64());
            let t = Instant::now();
            found.push(server.search(client, needle, corpus).await?);
            cold.push(t.elapsed().as_secs_f64() * 1000.0);
            if files == 0 {
                eprintln!("    (no data file's page cache could be dropped)");
            }
        }
        server.search(client, needle, corpus).await?;
        let mut warm = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            found.push(server.search(client, needle, corpus).await?);
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        found.dedup();
        if found.len() > 1 {
            eprintln!("    {needle:?}: the runs found different counts: {found:?}");
        }
        let n = found.first().copied().unwrap_or(0);
        eprintln!("    search {needle:?}: {n} lines; cold {cold:.1?} ms; warm {warm:.1?} ms");
        m.searches.push((needle.clone(), n, cold, warm));
    }
    eprintln!(
        "    searches with {} restarts took {:.1} s",
        needles.len() * args.runs,
        cycles.elapsed().as_secs_f64()
    );
    server.stop("TERM");
    Ok(m)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let t = Instant::now();
    let start_ms = match &args.start {
        Some(s) => log_corpus::parse_rfc3339_ms(s)
            .with_context(|| format!("--start {s:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"))?,
        None => {
            let now = dozor_model::time::now_ms();
            now - now.rem_euclid(3_600_000) - log_corpus::SPAN_MS
        }
    };
    let corpus = log_corpus::build(&args.work, args.bytes, args.seed, start_ms, &args.loghub)?;
    eprintln!(
        "corpus: {} ({} lines, {} bytes, {} – {}) in {:.1} s; {}",
        corpus.path.display(),
        corpus.lines,
        corpus.bytes,
        log_corpus::rfc3339_ms(corpus.first_ms),
        log_corpus::rfc3339_ms(corpus.last_ms),
        t.elapsed().as_secs_f64(),
        match &corpus.loghub {
            LoghubSource::Loghub(dir, n) =>
                format!("Loghub templates: {n} lines from {}", dir.display()),
            LoghubSource::BuiltIn => format!(
                "Loghub-2k not found under {}: built-in templates stand in for it",
                args.loghub.display()
            ),
        }
    );
    let zstd = zstd3_bytes(&corpus.path)?;
    eprintln!(
        "zstd -3: {zstd} bytes ({:.2}× smaller)",
        corpus.bytes as f64 / zstd as f64
    );
    let raw = std::fs::read(&corpus.path)
        .with_context(|| format!("cannot read {}", corpus.path.display()))?;
    let ranges = batches(&raw, args.batch_lines);
    let needles: Vec<String> = match &args.needles {
        Some(n) => n.split(',').map(|s| s.trim().to_owned()).collect(),
        None => vec![RARE_NEEDLE.to_owned(), NEVER_NEEDLE.to_owned()],
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()?;
    let systems: Vec<&str> = args.systems.split(',').map(str::trim).collect();
    // The bodies of each system, built once before anything is measured.
    let mut bodies_of: Vec<Option<Arc<Vec<Vec<u8>>>>> = vec![None; systems.len()];
    let mut results: Vec<(&'static str, Vec<Measured>)> = Vec::new();
    for round in 1..=args.rounds.max(1) {
        for (i, name) in systems.iter().enumerate() {
            let mut server = Server::new(name, &args)?;
            let name = server.name();
            let bodies = match &bodies_of[i] {
                Some(b) => Arc::clone(b),
                None => {
                    let b: Vec<Vec<u8>> = match &server {
                        Server::Dozor(..) => {
                            ranges.iter().map(|r| raw[r.clone()].to_vec()).collect()
                        }
                        Server::ClickHouse(_) => ranges
                            .iter()
                            .map(|r| to_json_each_row(&raw[r.clone()]))
                            .collect::<anyhow::Result<_>>()?,
                    };
                    Arc::clone(bodies_of[i].insert(Arc::new(b)))
                }
            };
            eprintln!(
                "[{round}.{}] {name}: {} requests, {} MiB",
                i + 1,
                bodies.len(),
                bodies.iter().map(Vec::len).sum::<usize>() >> 20
            );
            let m = run_system(&mut server, &args, &client, &bodies, &corpus, &needles).await;
            server.stop("KILL");
            let m = m?;
            match results.iter_mut().find(|(n, _)| *n == name) {
                Some((_, rounds)) => rounds.push(m),
                None => results.push((name, vec![m])),
            }
        }
    }
    if args.rounds > 1 {
        for (name, rounds) in &results {
            let cpu: Vec<String> = rounds
                .iter()
                .map(|m| format!("{:.2}", m.ingest_cpu))
                .collect();
            println!("{name}: ingest CPU-s by round {}", cpu.join(", "));
        }
    }
    print_table(&results, &corpus, zstd, &needles, &args);
    Ok(())
}

/// A row: label, value of a measurement, whether higher is better, and the target.
type Row = (String, Box<dyn Fn(&Measured) -> f64>, bool, &'static str);

fn print_table(
    results: &[(&str, Vec<Measured>)],
    corpus: &Corpus,
    zstd: u64,
    needles: &[String],
    args: &Args,
) {
    let lines = corpus.lines as f64;
    let mut rows: Vec<Row> = vec![
        (
            "ingest lines/CPU-second".into(),
            Box::new(move |m| lines / m.ingest_cpu.max(1e-9)),
            true,
            "≥ 2",
        ),
        (
            "  with flush/OPTIMIZE".into(),
            Box::new(move |m| lines / (m.ingest_cpu + m.flush_cpu).max(1e-9)),
            true,
            "",
        ),
        (
            "ingest wall seconds".into(),
            Box::new(|m| m.ingest_wall),
            false,
            "",
        ),
        (
            "flush/OPTIMIZE wall seconds".into(),
            Box::new(|m| m.flush_wall),
            false,
            "",
        ),
        (
            "disk MiB".into(),
            Box::new(|m| m.disk_bytes as f64 / f64::from(1 << 20)),
            false,
            "",
        ),
        (
            "disk / zstd -3 of raw".into(),
            Box::new(move |m| m.disk_bytes as f64 / zstd as f64),
            false,
            "dozor ≤ 0.8",
        ),
    ];
    for (i, needle) in needles.iter().enumerate() {
        for (kind, cold) in [("cold", true), ("warm", false)] {
            rows.push((
                format!("search {needle:?} {kind} ms"),
                Box::new(move |m| {
                    m.searches
                        .get(i)
                        .map_or(f64::NAN, |s| median(if cold { &s.2 } else { &s.3 }))
                }),
                false,
                "",
            ));
        }
    }
    rows.push((
        "restart to ready seconds".into(),
        Box::new(|m| median(&m.restart_s)),
        false,
        "",
    ));
    rows.push((
        "RSS after ingest MiB".into(),
        Box::new(|m| m.rss_bytes / f64::from(1 << 20)),
        false,
        "",
    ));
    let dozor = results.iter().find(|(n, _)| *n == "dozor").map(|(_, m)| m);
    let ch = results
        .iter()
        .find(|(n, _)| *n == "clickhouse")
        .map(|(_, m)| m);
    // A measurement of a system: its median over the rounds.
    let of = |rounds: &Vec<Measured>, f: &dyn Fn(&Measured) -> f64| {
        median(&rounds.iter().map(f).collect::<Vec<f64>>())
    };
    println!(
        "{:<34}{:>14}{:>14}{:>22}{:>14}",
        "metric", "dozor", "clickhouse", "dozor/clickhouse", "target"
    );
    let cell = |m: Option<&Vec<Measured>>, f: &dyn Fn(&Measured) -> f64| {
        m.map_or("-".to_owned(), |m| format_value(of(m, f)))
    };
    for (label, f, higher_is_better, target) in &rows {
        let ratio = match (dozor, ch) {
            (Some(d), Some(c)) => format!(
                "{:.2}{}",
                of(d, f.as_ref()) / of(c, f.as_ref()),
                if *higher_is_better {
                    " (↑)"
                } else {
                    " (↓)"
                }
            ),
            _ => "-".into(),
        };
        println!(
            "{label:<34}{:>14}{:>14}{ratio:>22}{target:>14}",
            cell(dozor, f.as_ref()),
            cell(ch, f.as_ref()),
        );
    }
    println!(
        "corpus: {} lines, {} raw bytes ({:.1} B/line), zstd -3 {} bytes; {} lines per request, {} at a time",
        corpus.lines,
        corpus.bytes,
        corpus.bytes as f64 / lines,
        zstd,
        args.batch_lines,
        args.concurrency
    );
    for (name, m) in results.iter().filter_map(|(n, r)| Some((n, r.last()?))) {
        let found: Vec<String> = m
            .searches
            .iter()
            .map(|(n, c, _, _)| format!("{n:?} {c}"))
            .collect();
        println!(
            "{name}: {} lines accepted, {} values masked; found {}; {}",
            m.accepted,
            m.masked,
            found.join(", "),
            m.disk_how
        );
    }
    println!(
        "expected: {RARE_NEEDLE:?} in {RARE_LINES} lines (0-based line numbers {:?}), {NEVER_NEEDLE:?} in none",
        corpus.rare_lines
    );
    println!(
        "ClickHouse: MergeTree, zstd level {} server-wide; searches: median of {} (cold: after a restart with the data files' page cache dropped); every value the median of {} round(s); ↑ higher is better for Dozor, ↓ lower",
        args.clickhouse_zstd_level,
        args.runs,
        args.rounds.max(1)
    );
}

/// A number with precision for its size.
fn format_value(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 100_000.0 {
        format!("{:.0}", v)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
