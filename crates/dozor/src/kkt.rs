//! The cash-register pack's wiring (`kkt:` in `dozor.yml`): driver-log records become fleet
//! events once they are stored, the fleet's metrics are written on an interval, OFD APIs are
//! polled; and the simulators behind `dozor sim kkt`, `dozor sim ofd` and the demo's fleet.
//!
//! Driver lines arrive as log records of the pack's stream from any source (the files of
//! `kkt.logs`, syslog, a Kafka or MQTT topic): [`Pack::events`] parses them before the PII
//! masking of the log pipeline (the fleet reads numbers and register ids; the stored line is
//! masked as any other), and [`Pack::apply`] applies them only after the store has taken the
//! batch, so the fleet never shows what the log store does not hold.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dozor_ingest::scrape::Appender;
use dozor_kkt::{Event, Fleet, FleetOptions};
use dozor_model::{LogRecord, TenantId};

use crate::config::KktConfig;

/// Most driver-log lines a restore reads (a day of a 50-register fleet is about 100 000).
const MAX_RESTORED_LINES: usize = 2_000_000;

/// The demo's driver log is cut back to empty past this size.
const MAX_SIM_LOG_BYTES: u64 = 32 << 20;

/// The pack at run time.
pub struct Pack {
    /// The tenant it reads and writes.
    pub tenant: TenantId,
    stream: Vec<(String, String)>,
    /// The stream's LogQL selector, for reading the stored driver log back.
    selector: Option<String>,
    labels: Vec<(String, String)>,
    /// The registers.
    pub fleet: Arc<Fleet>,
    offset_min: i32,
    parse_errors: AtomicU64,
}

impl Pack {
    /// The pack of `config`, if enabled.
    pub fn new(config: &KktConfig) -> Result<Option<Pack>, crate::config::ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let offset_min = config.utc_offset_min()?;
        let labels: Vec<(String, String)> = config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let fleet = Fleet::new(FleetOptions {
            down_after_ms: i64::try_from(config.down_after.as_millis()).unwrap_or(i64::MAX),
            labels: labels.clone(),
            ..FleetOptions::default()
        });
        Ok(Some(Pack {
            tenant: config.tenant.clone(),
            selector: config.selector(),
            stream: config
                .stream
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            labels,
            fleet: Arc::new(fleet),
            offset_min,
            parse_errors: AtomicU64::new(0),
        }))
    }

    /// The file source of `kkt.logs`: the driver log tailed into the pack's stream, with
    /// the pack's labels.
    pub fn file_source(&self, config: &KktConfig) -> Option<dozor_ingest::tail::FileSourceConfig> {
        if config.logs.is_empty() {
            return None;
        }
        let mut c = dozor_ingest::tail::FileSourceConfig::new("kkt", config.logs.clone());
        c.tenant = self.tenant.clone();
        c.labels = self
            .labels
            .iter()
            .chain(&self.stream)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(c)
    }

    /// What the API needs.
    pub fn api_settings(&self) -> dozor_api::routes::kkt::KktSettings {
        dozor_api::routes::kkt::KktSettings {
            tenant: self.tenant.clone(),
            fleet: Arc::clone(&self.fleet),
            stream: self.stream.clone(),
            labels: self.labels.clone(),
            utc_offset_min: self.offset_min,
        }
    }

    /// The driver events among `records` of `tenant`; lines of the stream that are not
    /// events are counted (`kkt_collector_parse_errors_total`) and logged at debug level.
    pub fn events(&self, tenant: &TenantId, records: &[LogRecord]) -> Vec<Event> {
        if *tenant != self.tenant {
            return Vec::new();
        }
        records
            .iter()
            .filter(|r| {
                self.stream
                    .iter()
                    .all(|(k, v)| r.stream.get(k) == Some(v.as_str()))
            })
            .filter_map(
                |r| match dozor_kkt::parse_line(r.message.as_bytes(), self.offset_min) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        self.parse_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "not a KKT driver event");
                        None
                    }
                },
            )
            .collect()
    }

    /// Rebuilds the fleet from the stored driver log of the `window_ms` before `now_ms`, in
    /// time order (`kkt.restore`): after a restart the registers' open shifts, queues and
    /// FN are known at once rather than from their next reports. The lines read back are
    /// the stored ones, masked as every log line is; what the fleet reads (register and
    /// document numbers, times, amounts) is not PII. How many events were applied.
    pub fn restore(
        &self,
        logs: &dozor_logs::Logs,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<usize, String> {
        use dozor_logs::logql;
        let Some(db) = logs.existing(&self.tenant) else {
            return Ok(0);
        };
        let Some(query) = &self.selector else {
            return Ok(0);
        };
        let Ok(logql::Expr::Log(log)) = logql::parse(query) else {
            return Err(format!("the driver log's selector {query} does not parse"));
        };
        let range = logql::Range {
            start_ns: now_ms.saturating_sub(window_ms).saturating_mul(1_000_000),
            end_ns: now_ms.saturating_mul(1_000_000),
            step_ns: 0,
            limit: MAX_RESTORED_LINES,
            direction: dozor_logs::Direction::Forward,
        };
        let lines = logql::select_lines(db.as_ref(), &log, range, &mut logql::Stats::default())
            .map_err(|e| e.to_string())?;
        let mut applied = 0;
        for line in &lines {
            if let Ok(e) = dozor_kkt::parse_line(line.line.as_bytes(), self.offset_min) {
                self.fleet.restore(e);
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Applies events whose records are stored.
    pub fn apply(&self, events: Vec<Event>) {
        let now = dozor_model::time::now_ms();
        for e in events {
            self.fleet.apply(e, now);
        }
    }

    /// The fleet's samples at `now`, with the parse-error counter.
    fn samples(&self, now: i64) -> dozor_ingest::Batch {
        let mut batch = self.fleet.tick(now);
        let errors = self.parse_errors.load(Ordering::Relaxed);
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([
                ("__name__", "kkt_collector_parse_errors_total"),
                ("source", "driver"),
            ]);
        if let Ok(l) = dozor_model::Labels::from_pairs(labels) {
            batch.push((
                l,
                vec![dozor_model::Sample {
                    t: now,
                    v: errors as f64,
                }],
            ));
        }
        batch
    }
}

/// Stores the fleet's metrics every `interval` until `stop` turns true, and once more then.
pub async fn run_exporter(
    pack: Arc<Pack>,
    appender: Arc<dyn Appender>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let (pack, appender) = (Arc::clone(&pack), Arc::clone(&appender));
        let stored = tokio::task::spawn_blocking(move || {
            let batch = pack.samples(dozor_model::time::now_ms());
            appender.append(&pack.tenant, batch)
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot store the KKT fleet's metrics"),
            Err(e) => tracing::error!(error = %e, "the KKT exporter failed"),
        }
        if last {
            return;
        }
    }
}

/// Polls one OFD every `interval` until `stop` turns true.
pub async fn run_ofd(
    provider: dozor_kkt::ofd::Provider,
    interval: Duration,
    fleet: Arc<Fleet>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let name = provider.name.clone();
    let mut client = dozor_kkt::ofd::Client::new(provider);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let started = std::time::Instant::now();
        let result = client.poll().await;
        let took = started.elapsed().as_secs_f64();
        let now = dozor_model::time::now_ms();
        match result {
            Ok(kkts) => {
                tracing::debug!(ofd = %name, registers = kkts.len(), "OFD polled");
                fleet.apply_ofd(&name, Ok(kkts), took, now);
            }
            Err(e) => {
                tracing::warn!(ofd = %name, error = %e, "OFD poll failed");
                fleet.apply_ofd(&name, Err(&e), took, now);
            }
        }
    }
}

/// Writes the simulated fleet's driver log to `path`: the history first (as fast as it
/// goes), then each minute as it passes, until `stop` turns true. The file is cut back to
/// empty past 32 MiB (the tail reads a truncated file from its start).
pub async fn run_sim_writer(
    path: PathBuf,
    options: dozor_kkt::sim::SimOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut sim = dozor_kkt::sim::Sim::new(options);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let lines = sim.step(dozor_model::time::now_ms());
        if !lines.is_empty() {
            let p = path.clone();
            let written = tokio::task::spawn_blocking(move || append_lines(&p, &lines)).await;
            if let Ok(Err(e)) | Err(e) = written.map_err(std::io::Error::other) {
                tracing::warn!(error = %e, path = %path.display(), "cannot write the simulated KKT log");
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Appends lines to a driver log (made with its directory if missing), cutting it back to
/// empty first when it is past the demo's bound.
pub fn append_lines(path: &Path, lines: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if f.metadata()?.len() > MAX_SIM_LOG_BYTES {
        f.set_len(0)?;
    }
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        buf.extend_from_slice(l.as_bytes());
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.flush()
}

/// The simulated fleet of `dozor sim`'s flags: `history` a duration (`2h`, `30d`), `end`
/// RFC 3339 (default now), `faults` as `INDEX=SCENARIO[:ARG]` or `none` (default: the
/// demo's mix).
pub fn sim_options(
    registers: usize,
    seed: u64,
    history: &str,
    end: Option<&str>,
    faults: &[String],
    receipts_per_hour: f64,
) -> anyhow::Result<dozor_kkt::sim::SimOptions> {
    use anyhow::Context as _;
    anyhow::ensure!(
        (1..=100_000).contains(&registers),
        "--registers: from 1 to 100000"
    );
    anyhow::ensure!(
        receipts_per_hour.is_finite() && (0.0..=3600.0).contains(&receipts_per_hour),
        "--receipts-per-hour: from 0 to 3600"
    );
    let history = humantime::parse_duration(history)
        .with_context(|| format!("--history: {history:?} is not a duration like 2h or 30d"))?;
    let history_ms = i64::try_from(history.as_millis()).unwrap_or(i64::MAX);
    let end = match end {
        Some(e) => e
            .parse::<jiff::Timestamp>()
            .with_context(|| format!("--end: {e:?} is not an RFC 3339 time"))?
            .as_millisecond(),
        None => dozor_model::time::now_ms(),
    };
    let mut options = dozor_kkt::sim::SimOptions::demo(registers, seed, end, history_ms);
    options.receipts_per_hour = receipts_per_hour;
    if !faults.is_empty() {
        options.faults.clear();
    }
    for f in faults.iter().filter(|f| *f != "none") {
        let (index, scenario) = f
            .split_once('=')
            .with_context(|| format!("--fault {f:?}: expected INDEX=SCENARIO[:ARG]"))?;
        let index: usize = index
            .parse()
            .ok()
            .filter(|i| *i < registers)
            .with_context(|| {
                format!("--fault {f:?}: {index:?} is not a register index below {registers}")
            })?;
        let scenario = dozor_kkt::sim::Scenario::parse(scenario)
            .map_err(|e| anyhow::anyhow!("--fault {f:?}: {e}"))?;
        options.faults.retain(|(i, _)| *i != index);
        options.faults.push((index, scenario));
    }
    Ok(options)
}

/// `dozor sim kkt`: the history at once, then (`follow`) each minute as it passes.
pub fn run_sim_cli(
    options: dozor_kkt::sim::SimOptions,
    output: &Path,
    follow: bool,
    truth: bool,
) -> anyhow::Result<()> {
    let mut sim = dozor_kkt::sim::Sim::new(options);
    let end = sim.options().end;
    let write = |lines: Vec<String>| -> anyhow::Result<()> {
        if output == Path::new("-") {
            let mut out = std::io::stdout().lock();
            for l in lines {
                writeln!(out, "{l}")?;
            }
            out.flush()?;
        } else {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(output)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", output.display()))?;
            let mut buf = String::new();
            for l in lines {
                buf.push_str(&l);
                buf.push('\n');
            }
            f.write_all(buf.as_bytes())?;
        }
        Ok(())
    };
    write(sim.step(end))?;
    if truth {
        for (alert, kkt) in sim.expected_alerts(true) {
            eprintln!("{alert} {kkt}");
        }
    }
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(5));
        write(sim.step(dozor_model::time::now_ms()))?;
    }
}
