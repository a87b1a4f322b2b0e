//! Measures the head's resident memory per series: appends `SERIES` node_exporter-like
//! series with `SAMPLES` samples each (15 s apart, counters with jitter-free timestamps)
//! straight into a `Db` and prints the growth of the process' RSS divided by the series
//! count, the append rate, and how long reopening (WAL replay) takes. Usage:
//! `cargo run --release -p dozor-tsdb --example head_memory [SERIES] [SAMPLES]`.

use dozor_model::{Labels, Sample};
use dozor_tsdb::{Db, FsyncPolicy, Options};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let samples: i64 = args.next().map_or(Ok(100), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let opts = Options {
        fsync: FsyncPolicy::Never,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts)?;
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 500).as_str()),
                ("instance", format!("host-{}:9100", i / 500).as_str()),
                ("job", "node"),
                ("cpu", (i % 8).to_string().as_str()),
                ("mode", ["idle", "user", "system", "iowait"][i % 4]),
            ])
        })
        .collect::<Result<_, _>>()?;
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let t0 = 1_700_000_000_000i64;
    for step in 0..samples {
        for chunk in labels.chunks(1000) {
            let batch: Vec<(Labels, Vec<Sample>)> = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let v = (step * (i as i64 % 13 + 1)) as f64;
                    (
                        l.clone(),
                        vec![Sample {
                            t: t0 + step * 15_000,
                            v,
                        }],
                    )
                })
                .collect();
            db.append(&batch)?;
        }
    }
    let grown = rss_bytes().saturating_sub(before);
    let total = series as f64 * samples as f64;
    println!(
        "{series} series x {samples} samples: head RSS {:.0} bytes/series ({:.2} bytes/sample), \
         {:.0} k samples/s appended",
        grown as f64 / series as f64,
        grown as f64 / total,
        total / started.elapsed().as_secs_f64() / 1000.0
    );
    let started = std::time::Instant::now();
    drop(db);
    let db = Db::open(dir.path(), opts)?;
    println!(
        "reopen (WAL replay): {:.2} s for {} series",
        started.elapsed().as_secs_f64(),
        db.head().num_series()
    );
    Ok(())
}
