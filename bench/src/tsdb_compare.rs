//! `tsdb-compare`: loads the same metric data into Dozor, Prometheus and VictoriaMetrics via
//! remote_write, one system at a time, and prints disk bytes per sample, samples ingested
//! per server CPU-second, resident memory per active series and restart (WAL replay) time,
//! each with Dozor's ratio against the peers. See `bench/README.md`.
//!
//! Data: real node_exporter output (Debian's `prometheus-node-exporter`, scraped twice to
//! learn which series move and how fast), replicated over `--series / template` instances,
//! advanced `--steps` times at a 15 s interval with a few milliseconds of scrape jitter.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use dozor_bench::data::{INTERVAL_MS, Scrapes, node_exporter_template};
use dozor_bench::systems::{System, cpu_seconds, rss_bytes, send_all};

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

/// Builds every remote_write body up front, so generation costs nothing during the runs:
/// one round of bodies per scrape.
fn build_requests(
    scrapes: &mut Scrapes,
    steps: usize,
    per_request: usize,
) -> (Vec<Vec<Vec<u8>>>, usize) {
    let mut rounds = Vec::new();
    let mut samples = 0;
    for step in 0..steps {
        let mut bodies = Vec::new();
        for first in (0..scrapes.instances()).step_by(per_request.max(1)) {
            let last = (first + per_request.max(1)).min(scrapes.instances());
            let batch = scrapes.batch(first..last, step..step + 1);
            samples += batch.len();
            bodies.push(dozor_ingest::remote_write::encode(&batch));
        }
        rounds.push(bodies);
    }
    (rounds, samples)
}

async fn run_system(
    system: &mut System,
    args: &Args,
    client: &reqwest::Client,
    rounds: &[Vec<Vec<u8>>],
) -> anyhow::Result<Measured> {
    let _ = std::fs::remove_dir_all(&system.data);
    system.start(&args.dozor)?;
    system.wait_ready(client).await?;
    let cpu0 = cpu_seconds(system.pid());
    let wall = Instant::now();
    // One scrape after the other: Prometheus refuses a series' sample older than its newest
    // (`out of order sample`), which concurrent requests of two scrapes could cause.
    for bodies in rounds {
        send_all(system, client, bodies, args.concurrency).await?;
    }
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
    let start_ms = dozor_model::time::now_ms() - (args.steps as i64) * INTERVAL_MS;
    let mut scrapes = Scrapes::new(template, instances, start_ms)?;
    let (rounds, samples) = build_requests(&mut scrapes, args.steps, args.instances_per_request);
    let bodies: Vec<&Vec<u8>> = rounds.iter().flatten().collect();
    eprintln!(
        "{} remote_write requests, {samples} samples, {} MiB compressed",
        bodies.len(),
        bodies.iter().map(|b| b.len()).sum::<usize>() >> 20
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut results: Vec<(&'static str, Measured)> = Vec::new();
    for (i, name) in args.systems.split(',').map(str::trim).enumerate() {
        let mut system = System::new(name, &args.work)?;
        let name = system.name;
        eprintln!("[{}] {name}…", i + 1);
        let m = run_system(&mut system, &args, &client, &rounds).await;
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
