//! `query-compare`: loads the same node_exporter-like data (plus a synthetic histogram
//! family) into Dozor and Prometheus via remote_write — both running at once, every request
//! sent to both — then runs a corpus of Grafana-style `query_range` requests against each,
//! one request at a time, alternating systems, and prints p50/p99 wall latency per query
//! class and range with Dozor's ratio, plus whether both answered the same series and values.
//! See `bench/README.md`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_bench::data::{INTERVAL_MS, Scrapes, http_histogram, node_exporter_template};
use dozor_bench::systems::{System, cpu_seconds, rss_bytes};

#[derive(Parser)]
#[command(about = "Dozor vs Prometheus: dashboard query_range latency on the same data")]
struct Args {
    /// Active series to load (rounded to whole instances of the template).
    #[arg(long, default_value_t = 20_000)]
    series: usize,
    /// Hours of history, ending now, at 15 s spacing.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Query ranges, comma-separated (`1h,6h,24h`); ranges longer than the data are skipped.
    #[arg(long, default_value = "1h,6h,24h")]
    ranges: String,
    /// Points per panel Grafana aims for; the step is range / points rounded as Grafana does.
    #[arg(long, default_value_t = 250)]
    points: u64,
    /// Measured repetitions of each query and range, per system.
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// Unmeasured warm-up repetitions before them (at least one: its answer is compared).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Handlers of the synthetic `http_request_duration_seconds` histogram per instance.
    #[arg(long, default_value_t = 4)]
    histogram_handlers: usize,
    /// Instances per remote_write request.
    #[arg(long, default_value_t = 4)]
    instances_per_request: usize,
    /// Scrapes per remote_write request (each series carries this many samples).
    #[arg(long, default_value_t = 20)]
    steps_per_request: usize,
    /// Longest wait, after loading, for both systems to finish background work.
    #[arg(long, default_value_t = 600)]
    settle_seconds: u64,
    /// Only queries whose class is in this comma-separated list (default: all).
    #[arg(long)]
    classes: Option<String>,
    /// After the tables, leave both systems running (their URLs are printed) until this
    /// program is interrupted, to look into mismatches by hand.
    #[arg(long)]
    keep_running: bool,
    /// The dozor binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// Scratch directory for the systems' data.
    #[arg(long, default_value = "target/bench-query-data")]
    work: PathBuf,
}

/// The query corpus: (class, PromQL), as dashboards for node_exporter and an HTTP service
/// would ask.
const CORPUS: &[(&str, &str)] = &[
    (
        "rate",
        r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    ),
    (
        "rate",
        r#"rate(node_network_receive_bytes_total{device!="lo"}[5m])"#,
    ),
    (
        "rate",
        "sum by (instance) (irate(node_network_transmit_packets_total[5m]))",
    ),
    (
        "rate",
        r#"increase(node_cpu_seconds_total{mode="user"}[1h])"#,
    ),
    (
        "aggregation",
        "avg by (mode) (rate(node_cpu_seconds_total[5m]))",
    ),
    (
        "aggregation",
        "topk(5, rate(node_network_receive_bytes_total[5m]))",
    ),
    (
        "aggregation",
        "count by (collector) (node_scrape_collector_success == 1)",
    ),
    (
        "aggregation",
        "quantile(0.95, node_memory_MemAvailable_bytes)",
    ),
    ("over_time", "max_over_time(node_load1[10m])"),
    (
        "over_time",
        "avg_over_time(node_memory_MemAvailable_bytes[10m])",
    ),
    (
        "over_time",
        "sum by (collector) (avg_over_time(node_scrape_collector_duration_seconds[5m]))",
    ),
    (
        "over_time",
        r#"quantile_over_time(0.9, node_memory_Active_bytes[10m])"#,
    ),
    (
        "histogram",
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "histogram",
        "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "histogram",
        "sum by (handler) (rate(http_request_duration_seconds_sum[5m])) / sum by (handler) (rate(http_request_duration_seconds_count[5m]))",
    ),
    (
        "binop",
        "node_memory_MemAvailable_bytes / on(instance) node_memory_MemTotal_bytes",
    ),
    (
        "binop",
        "rate(node_cpu_seconds_total[5m]) * on(instance) group_left(nodename) node_uname_info",
    ),
    (
        "binop",
        r#"1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))"#,
    ),
    (
        "binop",
        r#"100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"})"#,
    ),
];

/// Grafana's `roundInterval` (from 10 s up): the step a panel asks for.
fn grafana_step(raw_ms: i64) -> i64 {
    const TABLE: &[(i64, i64)] = &[
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
    ];
    TABLE
        .iter()
        .find(|(below, _)| raw_ms < *below)
        .map_or(86_400_000, |(_, step)| *step)
        // The data source's minimum interval: the scrape interval.
        .max(INTERVAL_MS)
}

fn parse_range(s: &str) -> anyhow::Result<i64> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().with_context(|| format!("bad range {s}"))?;
    Ok(n * match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("bad range {s} (use m, h or d)"),
    })
}

/// One query_range request: the query, the aligned window and the step, all in ms.
#[derive(Clone)]
struct Request {
    class: &'static str,
    query: &'static str,
    range: String,
    start: i64,
    end: i64,
    step: i64,
}

/// `application/x-www-form-urlencoded` (reqwest's `form` needs a feature the workspace
/// does not enable).
fn form_encode(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends `req` to `system`, reads the whole answer; returns the latency and the JSON.
async fn query_range(
    system: &System,
    client: &reqwest::Client,
    req: &Request,
) -> anyhow::Result<(Duration, serde_json::Value)> {
    let secs = |ms: i64| format!("{}", ms as f64 / 1000.0);
    let form = [
        ("query", req.query.to_string()),
        ("start", secs(req.start)),
        ("end", secs(req.end)),
        ("step", secs(req.step)),
    ];
    let t0 = Instant::now();
    let r = system
        .authed(client.post(system.url("/api/v1/query_range")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_encode(&form))
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    let elapsed = t0.elapsed();
    if !status.is_success() {
        bail!(
            "{} answered {status} to {}: {}",
            system.name,
            req.query,
            String::from_utf8_lossy(&body)
        );
    }
    Ok((elapsed, serde_json::from_slice(&body)?))
}

/// A matrix result as label set (sorted `k="v"` pairs) → timestamp (ms) → value.
fn matrix(v: &serde_json::Value) -> anyhow::Result<BTreeMap<String, BTreeMap<i64, f64>>> {
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().context("no data.result")? {
        let metric = s["metric"].as_object().context("no metric")?;
        let mut labels: Vec<String> = metric
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        labels.sort();
        let mut points = BTreeMap::new();
        for p in s["values"].as_array().context("no values")? {
            let t = (p[0].as_f64().context("timestamp")? * 1000.0).round() as i64;
            let v: f64 = p[1].as_str().context("value")?.parse()?;
            points.insert(t, v);
        }
        out.insert(format!("{{{}}}", labels.join(",")), points);
    }
    Ok(out)
}

/// How two answers to the same request differ.
#[derive(Default)]
struct Diff {
    series: (usize, usize),
    only_one_side: usize,
    points_compared: usize,
    points_missing: usize,
    values_differ: usize,
    example: Option<String>,
}

impl Diff {
    fn is_clean(&self) -> bool {
        self.series.0 == self.series.1
            && self.only_one_side == 0
            && self.points_missing == 0
            && self.values_differ == 0
    }

    fn describe(&self) -> String {
        if self.is_clean() {
            return format!("identical ({} points)", self.points_compared);
        }
        format!(
            "series {} vs {}, {} series on one side only, {} points on one side only, {} of {} shared points differ; e.g. {}",
            self.series.0,
            self.series.1,
            self.only_one_side,
            self.points_missing,
            self.values_differ,
            self.points_compared,
            self.example.as_deref().unwrap_or("-")
        )
    }
}

fn compare(dozor: &serde_json::Value, prom: &serde_json::Value) -> anyhow::Result<Diff> {
    let (d, p) = (matrix(dozor)?, matrix(prom)?);
    let mut diff = Diff {
        series: (d.len(), p.len()),
        ..Diff::default()
    };
    for (labels, dp) in &d {
        let Some(pp) = p.get(labels) else {
            diff.only_one_side += 1;
            diff.example
                .get_or_insert_with(|| format!("only in Dozor: {labels}"));
            continue;
        };
        for (t, dv) in dp {
            let Some(pv) = pp.get(t) else {
                diff.points_missing += 1;
                diff.example
                    .get_or_insert_with(|| format!("{labels} @{t}: only in Dozor ({dv})"));
                continue;
            };
            diff.points_compared += 1;
            let same = (dv.is_nan() && pv.is_nan())
                || dv == pv
                || (dv - pv).abs() <= 1e-6 * dv.abs().max(pv.abs());
            if !same {
                diff.values_differ += 1;
                diff.example
                    .get_or_insert_with(|| format!("{labels} @{t}: Dozor {dv}, Prometheus {pv}"));
            }
        }
        for (t, pv) in pp {
            if !dp.contains_key(t) {
                diff.points_missing += 1;
                diff.example
                    .get_or_insert_with(|| format!("{labels} @{t}: only in Prometheus ({pv})"));
            }
        }
    }
    for labels in p.keys().filter(|l| !d.contains_key(*l)) {
        diff.only_one_side += 1;
        diff.example
            .get_or_insert_with(|| format!("only in Prometheus: {labels}"));
    }
    Ok(diff)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Loads `scrapes` into every system, one block of `steps_per_request` scrapes at a time
/// (all instances of a block before the next, so no series ever goes back in time and the
/// systems' in-order windows hold), generating the next block while the current one is sent.
async fn load(
    systems: &[System],
    client: &reqwest::Client,
    scrapes: &mut Scrapes,
    steps: usize,
    args: &Args,
) -> anyhow::Result<()> {
    let per_block = args.steps_per_request.max(1);
    let per_request = args.instances_per_request.max(1);
    let started = Instant::now();
    let mut samples = 0usize;
    let mut in_flight: Vec<tokio::task::JoinHandle<anyhow::Result<()>>> = Vec::new();
    for first_step in (0..steps).step_by(per_block) {
        let last_step = (first_step + per_block).min(steps);
        let mut bodies = Vec::new();
        for first in (0..scrapes.instances()).step_by(per_request) {
            let last = (first + per_request).min(scrapes.instances());
            let batch = scrapes.batch(first..last, first_step..last_step);
            samples += batch.len() * (last_step - first_step);
            bodies.push(dozor_ingest::remote_write::encode(&batch));
        }
        for t in in_flight.drain(..) {
            t.await??;
        }
        for body in bodies {
            for system in systems {
                let (writer, client, body) = (system.writer(), client.clone(), body.clone());
                in_flight.push(tokio::spawn(
                    async move { writer.send(&client, body).await },
                ));
            }
        }
        let hour = (3_600_000 / INTERVAL_MS) as usize;
        if first_step / hour != last_step / hour || last_step == steps {
            eprintln!(
                "    {:>5.1} h of {:.1} h loaded, {samples} samples each, {:.0} samples/s",
                last_step as f64 / hour as f64,
                steps as f64 / hour as f64,
                samples as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for t in in_flight {
        t.await??;
    }
    Ok(())
}

/// How much time the system's in-memory head spans (`/api/v1/status/tsdb`, both answer it).
async fn head_span_ms(system: &System, client: &reqwest::Client) -> anyhow::Result<i64> {
    let v: serde_json::Value = system
        .authed(client.get(system.url("/api/v1/status/tsdb")))
        .send()
        .await?
        .json()
        .await?;
    let head = &v["data"]["headStats"];
    let (min, max) = (
        head["minTime"].as_i64().unwrap_or(0),
        head["maxTime"].as_i64().unwrap_or(0),
    );
    Ok((max - min).max(0))
}

/// Waits until background work after loading is over: every head spans at most 3.5 h (both
/// keep up to 3 h in memory and cut older data into blocks) and every system has used under
/// 5 % of a core for three 5-second windows in a row; at least 35 s (one Dozor maintenance
/// round), at most `limit`.
async fn settle(systems: &[System], client: &reqwest::Client, limit: Duration) {
    let started = Instant::now();
    let mut quiet = 0;
    let mut spans = Vec::new();
    while started.elapsed() < limit {
        let before: Vec<f64> = systems.iter().map(|s| cpu_seconds(s.pid())).collect();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let busy = systems
            .iter()
            .zip(&before)
            .map(|(s, b)| (cpu_seconds(s.pid()) - b) / 5.0)
            .fold(0.0, f64::max);
        spans.clear();
        for s in systems {
            spans.push(head_span_ms(s, client).await.unwrap_or(i64::MAX));
        }
        let heads_cut = spans.iter().all(|&s| s <= 3 * 3_600_000 + 1_800_000);
        quiet = if busy < 0.05 && heads_cut {
            quiet + 1
        } else {
            0
        };
        if quiet >= 3 && started.elapsed() >= Duration::from_secs(35) {
            break;
        }
    }
    let spans: Vec<String> = systems
        .iter()
        .zip(&spans)
        .map(|(s, ms)| format!("{} head {:.1} h", s.name, *ms as f64 / 3_600_000.0))
        .collect();
    let rss: Vec<String> = systems
        .iter()
        .map(|s| format!("{} RSS {:.0} MiB", s.name, rss_bytes(s.pid()) / 1048576.0))
        .collect();
    eprintln!(
        "settled after {:.0} s ({}; {})",
        started.elapsed().as_secs_f64(),
        spans.join(", "),
        rss.join(", ")
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut template = node_exporter_template().await?;
    template.extend(http_histogram(args.histogram_handlers)?);
    let per_instance = template.len();
    let instances = (args.series / per_instance).max(1);
    let steps = (args.hours as i64 * 3_600_000 / INTERVAL_MS) as usize;
    let now = dozor_model::time::now_ms();
    let start_ms = (now - steps as i64 * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS;
    let data_end = start_ms + (steps as i64 - 1) * INTERVAL_MS;
    let mut scrapes = Scrapes::new(template, instances, start_ms)?;
    eprintln!(
        "template: {per_instance} series per instance; {instances} instances = {} series × {steps} scrapes ({} h)",
        instances * per_instance,
        args.hours
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut systems = vec![
        System::new("dozor", &args.work)?,
        System::new("prometheus", &args.work)?,
    ];
    let result = run(&args, &client, &mut systems, &mut scrapes, steps, data_end).await;
    for s in &mut systems {
        s.stop("KILL");
    }
    result
}

async fn run(
    args: &Args,
    client: &reqwest::Client,
    systems: &mut [System],
    scrapes: &mut Scrapes,
    steps: usize,
    data_end: i64,
) -> anyhow::Result<()> {
    for s in systems.iter_mut() {
        let _ = std::fs::remove_dir_all(&s.data);
        s.start(&args.dozor)?;
    }
    for s in systems.iter() {
        s.wait_ready(client).await?;
    }
    eprintln!("loading into dozor and prometheus at once…");
    let t0 = Instant::now();
    load(systems, client, scrapes, steps, args).await?;
    eprintln!("loaded in {:.0} s", t0.elapsed().as_secs_f64());
    settle(systems, client, Duration::from_secs(args.settle_seconds)).await;

    let data_span = steps as i64 * INTERVAL_MS;
    let classes: Option<Vec<&str>> = args.classes.as_deref().map(|c| c.split(',').collect());
    let mut requests = Vec::new();
    for range in args.ranges.split(',').map(str::trim) {
        let range_ms = parse_range(range)?;
        if range_ms > data_span {
            eprintln!("skipping range {range}: only {} h of data", args.hours);
            continue;
        }
        let step = grafana_step(range_ms / args.points.max(1) as i64);
        let end = data_end / step * step;
        let start = (end - range_ms) / step * step;
        for (class, query) in CORPUS {
            if classes.as_ref().is_some_and(|c| !c.contains(class)) {
                continue;
            }
            requests.push(Request {
                class,
                query,
                range: range.to_string(),
                start,
                end,
                step,
            });
        }
    }

    // Latencies per (class, range) per system, and the comparison per request.
    let mut lat: HashMap<(&str, String), [Vec<f64>; 2]> = HashMap::new();
    let mut diffs = Vec::new();
    for (n, req) in requests.iter().enumerate() {
        let mut first = Vec::new();
        let mut cold = Vec::new();
        for s in systems.iter() {
            let (d, body) = query_range(s, client, req).await?;
            first.push(body);
            cold.push(d.as_secs_f64() * 1000.0);
            for _ in 1..args.warmup {
                query_range(s, client, req).await?;
            }
        }
        eprintln!(
            "[{}/{}] {} {}: first answer dozor {:.1} ms, prometheus {:.1} ms — {}",
            n + 1,
            requests.len(),
            req.class,
            req.range,
            cold[0],
            cold[1],
            req.query
        );
        let first_diff = compare(&first[0], &first[1])?;
        let entry = lat.entry((req.class, req.range.clone())).or_default();
        let mut last = first;
        for rep in 0..args.reps {
            // Alternate which system goes first, so neither always runs on a warmer machine.
            for k in 0..2 {
                let i = (rep + k) % 2;
                let (d, body) = query_range(&systems[i], client, req).await?;
                entry[i].push(d.as_secs_f64() * 1000.0);
                last[i] = body;
            }
        }
        // The last answers too: a difference only in the first one raced background work.
        let last_diff = compare(&last[0], &last[1])?;
        diffs.push((req.clone(), first_diff, last_diff));
    }
    print_tables(args, &requests, &lat, &diffs);
    if args.keep_running {
        for s in systems.iter() {
            eprintln!("{} at {} (pid {})", s.name, s.url("/"), s.pid());
        }
        eprintln!("kept running; Ctrl-C stops both");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

fn print_tables(
    args: &Args,
    requests: &[Request],
    lat: &HashMap<(&str, String), [Vec<f64>; 2]>,
    diffs: &[(Request, Diff, Diff)],
) {
    println!(
        "\nlatency per query_range request, ms ({} reps per query after {} warm-up; ratio = Dozor / Prometheus, < 1 is Dozor faster)\n",
        args.reps, args.warmup
    );
    println!(
        "{:<12} {:>5} {:>6} {:>5} | {:>9} {:>9} | {:>9} {:>9} | {:>8} {:>8}",
        "class", "range", "step", "n", "dozor p50", "p99", "prom p50", "p99", "p50 ×", "p99 ×"
    );
    let mut classes: Vec<&str> = Vec::new();
    for r in requests {
        if !classes.contains(&r.class) {
            classes.push(r.class);
        }
    }
    let mut ranges: Vec<(String, i64)> =
        requests.iter().map(|r| (r.range.clone(), r.step)).collect();
    ranges.dedup();
    let mut all: [Vec<f64>; 2] = Default::default();
    let row = |class: &str, range: &str, step: &str, v: &[Vec<f64>; 2]| {
        let mut s = v.clone();
        for x in &mut s {
            x.sort_by(f64::total_cmp);
        }
        let (d50, d99) = (percentile(&s[0], 0.5), percentile(&s[0], 0.99));
        let (p50, p99) = (percentile(&s[1], 0.5), percentile(&s[1], 0.99));
        println!(
            "{class:<12} {range:>5} {step:>6} {:>5} | {d50:>9.2} {d99:>9.2} | {p50:>9.2} {p99:>9.2} | {:>8.2} {:>8.2}",
            s[0].len(),
            d50 / p50,
            d99 / p99
        );
    };
    for class in &classes {
        let mut class_all: [Vec<f64>; 2] = Default::default();
        for (range, step) in &ranges {
            if let Some(v) = lat.get(&(*class, range.clone())) {
                row(class, range, &format!("{}s", step / 1000), v);
                for i in 0..2 {
                    class_all[i].extend(&v[i]);
                    all[i].extend(&v[i]);
                }
            }
        }
        row(class, "all", "", &class_all);
    }
    row("ALL", "all", "", &all);

    println!(
        "\nresults compared (first and last answer of each; values equal within 1e-6 relative at shared timestamps)\n"
    );
    let mut clean = 0;
    for (req, first, last) in diffs {
        if first.is_clean() && last.is_clean() {
            clean += 1;
            continue;
        }
        println!("MISMATCH [{} {}] {}", req.class, req.range, req.query);
        for (which, d) in [("first answer", first), ("last answer", last)] {
            println!("    {which}: {}", d.describe());
        }
    }
    let points: usize = diffs.iter().map(|(_, d, _)| d.points_compared).sum();
    println!(
        "{clean} of {} requests identical ({points} points compared)",
        diffs.len()
    );
}
