//! `rules-compare`: evaluates the same rule file over the same metric data in Dozor and in
//! Prometheus, one system at a time, and prints what a round of evaluation costs each:
//! the groups' own evaluation time (the sum of their last durations), the process' CPU
//! seconds per round, missed iterations, and how many alerts fire (which must agree). See
//! `bench/README.md`.
//!
//! Data: real node_exporter output replicated over instances (as `tsdb-compare`), the last
//! `--minutes` at a 15 s interval ending when the rules start, and a live scrape every 15 s
//! while they run (the CPU per round includes receiving those). Rules: `--rules` of them in
//! groups of `--group-size`, cycling over four shapes on the template's metrics — a
//! per-instance counter rate and a per-instance gauge maximum (recording rules), a job-wide
//! gauge average and counter rate over a threshold (alerting rules, one alert each).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dozor_bench::data::{INTERVAL_MS, Scrapes, TemplateSeries, node_exporter_template};
use dozor_bench::systems::{System, cpu_seconds, send_all};

#[derive(Parser)]
#[command(about = "Dozor vs Prometheus: the cost of evaluating the same rules on the same data")]
struct Args {
    /// Active series to load (rounded to whole node_exporter instances).
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Minutes of history to load, ending when the rules start.
    #[arg(long, default_value_t = 10)]
    minutes: usize,
    /// Rule counts to measure, comma-separated.
    #[arg(long, default_value = "1000,10000")]
    rules: String,
    /// Rules per group.
    #[arg(long, default_value_t = 100)]
    group_size: usize,
    /// Evaluation interval, seconds.
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// Evaluation rounds measured (after one unmeasured round).
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Systems to run, comma-separated: dozor, prometheus.
    #[arg(long, default_value = "dozor,prometheus")]
    systems: String,
    /// The dozor binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/dozor")]
    dozor: PathBuf,
    /// Scratch directory for the systems' data.
    #[arg(long, default_value = "target/bench-data")]
    work: PathBuf,
}

/// The rule file: `rules` rules in groups of `group_size`.
fn rule_file(template: &[TemplateSeries], rules: usize, group_size: usize) -> String {
    let named = |t: &'_ TemplateSeries| t.labels.get("__name__").map(str::to_owned);
    let mut counters = BTreeSet::new();
    // Gauges whose series all stay within half their value of it (constant, or moving
    // less and large enough not to round to 0): the job-wide average then stays near the average of their first values, and
    // an alert at half of that is far from any rounding difference — both systems must
    // fire on it. (A threshold right at the average is a knife edge: Prometheus 2.42
    // averages incrementally, Dozor as sum / count, and the last bits differ.)
    let mut gauges: std::collections::BTreeMap<String, (f64, f64, bool)> = Default::default();
    for t in template {
        let Some(name) = named(t) else { continue };
        if t.rate > 0.0 && name.ends_with("_total") {
            counters.insert(name);
            continue;
        }
        let g = gauges.entry(name).or_insert((0.0, 0.0, true));
        g.0 += t.v0;
        g.1 += 1.0;
        // Moving gauges are rounded to integers by the generator: keep large ones only.
        g.2 &= t.v0 >= 0.0
            && (t.rate == 0.0 || (t.rate < 0.0 && t.rate.abs() * 15.0 <= t.v0 && t.v0 >= 10.0));
    }
    let counters: Vec<String> = counters.into_iter().collect();
    let gauges: Vec<(String, f64)> = gauges
        .into_iter()
        .filter(|(_, (sum, n, steady))| *steady && sum / n > 0.0)
        .map(|(name, (sum, n, _))| (name, sum / n))
        .collect();
    let mut out = String::from("groups:\n");
    for i in 0..rules {
        if i % group_size.max(1) == 0 {
            let _ = writeln!(out, "  - name: bench-{}\n    rules:", i / group_size.max(1));
        }
        let c = &counters[i % counters.len()];
        let (g, mean) = &gauges[i % gauges.len()];
        let _ = match i % 4 {
            0 => writeln!(
                out,
                "      - record: bench:rate5m:{i}\n        expr: sum by (instance) (rate({c}[5m]))"
            ),
            1 => writeln!(
                out,
                "      - record: bench:max:{i}\n        expr: max by (instance) ({g})"
            ),
            2 => writeln!(
                out,
                "      - alert: BenchGauge{i}\n        expr: avg by (job) ({g}) >= {}\n        labels:\n          severity: info",
                mean / 2.0
            ),
            _ => writeln!(
                out,
                "      - alert: BenchRate{i}\n        expr: sum by (job) (rate({c}[5m])) > 0\n        labels:\n          severity: info"
            ),
        };
    }
    out
}

/// Writes the system's configuration so that it evaluates `rules_path`.
fn configure(system: &System, rules_path: &Path, interval: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&system.data)?;
    match system.name {
        "dozor" => std::fs::write(
            system.data.join("dozor.yml"),
            format!(
                "rules:\n  evaluation_interval: {interval}s\n  files: [{}]\n",
                rules_path.display()
            ),
        )?,
        "prometheus" => std::fs::write(
            system.data.join("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 1h, evaluation_interval: {interval}s}}\nrule_files: [{}]\n",
                rules_path.display()
            ),
        )?,
        other => bail!("rules-compare runs dozor and prometheus, not {other}"),
    }
    Ok(())
}

/// The values of `metric`'s series in a `/metrics` text.
fn values(text: &str, metric: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

struct Names {
    iterations: &'static str,
    last_duration: &'static str,
    missed: &'static str,
}

fn names(system: &str) -> Names {
    if system == "dozor" {
        Names {
            iterations: "dozor_rule_evaluations_total",
            last_duration: "dozor_rule_group_last_duration_seconds",
            missed: "dozor_rule_group_iterations_missed_total",
        }
    } else {
        Names {
            iterations: "prometheus_rule_group_iterations_total",
            last_duration: "prometheus_rule_group_last_duration_seconds",
            missed: "prometheus_rule_group_iterations_missed_total",
        }
    }
}

async fn metrics_text(system: &System, client: &reqwest::Client) -> anyhow::Result<String> {
    Ok(system
        .authed(client.get(system.url("/metrics")))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Waits until every one of `groups` groups has run `n` evaluations.
async fn wait_iterations(
    system: &System,
    client: &reqwest::Client,
    groups: usize,
    n: f64,
    limit: Duration,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let text = metrics_text(system, client).await?;
        let it = values(&text, names(system.name).iterations);
        if it.len() >= groups && it.iter().all(|&v| v >= n) {
            return Ok(text);
        }
        if started.elapsed() > limit {
            bail!(
                "{}: {} of {groups} groups reached {n} evaluations in {limit:?}",
                system.name,
                it.iter().filter(|&&v| v >= n).count()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The names of the firing alerts.
async fn firing(system: &System, client: &reqwest::Client) -> anyhow::Result<BTreeSet<String>> {
    let r: serde_json::Value = system
        .authed(client.get(system.url("/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D")))
        .send()
        .await?
        .json()
        .await?;
    Ok(r["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some(s["metric"]["alertname"].as_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default())
}

/// One scrape of every instance, as remote_write bodies of 20 instances each.
fn scrape(scrapes: &mut Scrapes, instances: usize, step: usize) -> Vec<Vec<u8>> {
    (0..instances)
        .step_by(20)
        .map(|first| {
            let batch = scrapes.batch(first..(first + 20).min(instances), step..step + 1);
            dozor_ingest::remote_write::encode(&batch)
        })
        .collect()
}

/// What one system did with one rule count.
#[derive(Debug, Clone)]
struct Measured {
    eval_seconds: f64,
    cpu_seconds: f64,
    missed: f64,
    firing: BTreeSet<String>,
}

async fn run(
    args: &Args,
    name: &str,
    template: &[TemplateSeries],
    instances: usize,
    rules_path: &Path,
    groups: usize,
    client: &reqwest::Client,
) -> anyhow::Result<Measured> {
    let mut system = System::new(name, &args.work)?;
    let _ = std::fs::remove_dir_all(&system.data);
    configure(&system, rules_path, args.interval)?;
    system.config = Some(system.data.join(if name == "dozor" {
        "dozor.yml"
    } else {
        "prometheus.yml"
    }));
    system.start(&args.dozor)?;
    let result = async {
        system.wait_ready(client).await?;
        // History ending now, loaded scrape after scrape (Prometheus takes a series'
        // samples in order only); then a scrape every 15 s while the rules run, as a live
        // server would receive them, so the data stays fresh for every round.
        let steps = args.minutes * 60_000 / INTERVAL_MS as usize;
        let start_ms = dozor_model::time::now_ms() - steps as i64 * INTERVAL_MS;
        let mut scrapes = Scrapes::new(template.to_vec(), instances, start_ms)?;
        for step in 0..steps {
            send_all(&system, client, &scrape(&mut scrapes, instances, step), 4).await?;
        }
        let feeder = {
            let (system_url, client) = (system.writer(), client.clone());
            tokio::spawn(async move {
                for step in steps.. {
                    let due = start_ms + step as i64 * INTERVAL_MS;
                    let wait = due - dozor_model::time::now_ms();
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
                    }
                    for body in scrape(&mut scrapes, instances, step) {
                        system_url.send(&client, body).await?;
                    }
                }
                Ok::<(), anyhow::Error>(())
            })
        };
        let limit = Duration::from_secs(args.interval * (args.rounds + 4) + 120);
        // One unmeasured round, then `rounds` measured ones.
        let base = values(
            &metrics_text(&system, client).await?,
            names(name).iterations,
        )
        .into_iter()
        .fold(0.0, f64::max);
        wait_iterations(&system, client, groups, base + 1.0, limit).await?;
        let cpu0 = cpu_seconds(system.pid());
        let text = wait_iterations(
            &system,
            client,
            groups,
            base + 1.0 + args.rounds as f64,
            limit,
        )
        .await?;
        let cpu = cpu_seconds(system.pid()) - cpu0;
        feeder.abort();
        Ok::<Measured, anyhow::Error>(Measured {
            eval_seconds: values(&text, names(name).last_duration).iter().sum(),
            cpu_seconds: cpu / args.rounds as f64,
            missed: values(&text, names(name).missed).iter().sum(),
            firing: firing(&system, client).await?,
        })
    }
    .await;
    system.stop("KILL");
    result
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let template = node_exporter_template().await?;
    let instances = (args.series / template.len()).max(1);
    let series = instances * template.len();
    eprintln!(
        "{instances} instances × {} node_exporter series = {series} series, {} min of history",
        template.len(),
        args.minutes
    );
    std::fs::create_dir_all(&args.work)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut rows = Vec::new();
    for count in args.rules.split(',') {
        let count: usize = count.trim().parse().context("--rules")?;
        let rules_path = std::fs::canonicalize(&args.work)?.join(format!("rules-{count}.yml"));
        std::fs::write(&rules_path, rule_file(&template, count, args.group_size))?;
        let groups = count.div_ceil(args.group_size.max(1));
        for name in args.systems.split(',').map(str::trim) {
            eprintln!("{name}: {count} rules in {groups} groups…");
            let m = run(
                &args,
                name,
                &template,
                instances,
                &rules_path,
                groups,
                &client,
            )
            .await?;
            eprintln!(
                "    eval {:.3} s/round, CPU {:.3} s/round, missed {}, firing {}",
                m.eval_seconds,
                m.cpu_seconds,
                m.missed,
                m.firing.len()
            );
            rows.push((count, name.to_owned(), m));
        }
    }
    println!(
        "\nrule evaluation over {series} series, every {} s ({} measured rounds)\n",
        args.interval, args.rounds
    );
    println!(
        "{:>7} {:<11} {:>16} {:>16} {:>7} {:>8}",
        "rules", "system", "eval s/round", "CPU s/round", "missed", "firing"
    );
    for (count, name, m) in &rows {
        println!(
            "{count:>7} {name:<11} {:>16.3} {:>16.3} {:>7} {:>8}",
            m.eval_seconds,
            m.cpu_seconds,
            m.missed,
            m.firing.len()
        );
    }
    println!();
    for (count, _, d) in rows.iter().filter(|(_, n, _)| n == "dozor") {
        if let Some((_, _, p)) = rows
            .iter()
            .find(|(c, n, _)| c == count && n == "prometheus")
        {
            println!(
                "{count:>7} rules: dozor/prometheus eval time {:.2}, CPU {:.2} (< 1: Dozor cheaper)",
                d.eval_seconds / p.eval_seconds.max(1e-9),
                d.cpu_seconds / p.cpu_seconds.max(1e-9)
            );
            let only_d: Vec<&String> = d.firing.difference(&p.firing).collect();
            let only_p: Vec<&String> = p.firing.difference(&d.firing).collect();
            if only_d.is_empty() && only_p.is_empty() {
                println!(
                    "{count:>7} rules: the same {} alerts fire in both",
                    d.firing.len()
                );
            } else {
                println!(
                    "{count:>7} rules: firing differs: only dozor {only_d:?}, only prometheus {only_p:?}"
                );
            }
        }
    }
    Ok(())
}
