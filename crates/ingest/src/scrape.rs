//! The scrape engine: pulls Prometheus exposition text from targets on an interval, like
//! Prometheus' own scrape manager, and hands the samples to an [`Appender`].
//!
//! Per job: targets come from `static_configs` and `file_sd_configs` (JSON or YAML files,
//! whose last path element may be a glob such as `targets/*.json` as in Prometheus,
//! re-read every `refresh_interval`; their targets carry `__meta_filepath`), pass through `relabel_configs` (with `__address__`,
//! `__scheme__`, `__metrics_path__`, `job`), and each gets its own loop. A scrape attaches
//! the target's labels (on a clash, the scraped label becomes `exported_<name>` unless
//! `honor_labels`), applies `metric_relabel_configs`, and adds the synthetic series `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`. A series that
//! disappears from a scrape, every series of a failed scrape, and every series of a target
//! that goes away get a staleness marker, so queries stop seeing them at once.
//!
//! Targets are fetched over HTTP/1.1 with the probes' hyper client (`probe::checks`), so an
//! `https` job verifies its targets with rustls as `tls_config` says (a CA file, a server
//! name, or no verification) without a process-wide TLS provider.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dozor_model::labels::{METRIC_NAME, stale_nan};
use dozor_model::time::now_ms;
use dozor_model::{Label, Labels, Sample, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::exposition::{self, Format};
use crate::probe::{Findings, TlsSettings, checks, tls};
use crate::relabel::{self, LabelMap, Rule, RuleConfig};
use crate::source::stopped;
use crate::{Batch, Limits};

/// What a scrape asks for: OpenMetrics or the text format, as Prometheus does.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.9,*/*;q=0.1";

/// Where scraped samples go (the tsdb, in the binary).
pub trait Appender: Send + Sync + 'static {
    /// Stores a batch for `tenant`.
    fn append(&self, tenant: &TenantId, batch: Batch) -> Result<(), String>;
}

/// One `scrape_configs` entry, Prometheus' shape.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label.
    pub job_name: String,
    /// How often to scrape.
    #[serde(default = "default_interval", with = "dozor_model::duration")]
    pub scrape_interval: Duration,
    /// Give up on a scrape after this long.
    #[serde(default = "default_timeout", with = "dozor_model::duration")]
    pub scrape_timeout: Duration,
    /// The path of the metrics page.
    #[serde(default = "default_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// How `https` targets are verified: `ca_file`, `server_name`, `insecure_skip_verify`.
    #[serde(default)]
    pub tls_config: TlsSettings,
    /// Keep scraped labels that clash with target labels.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Fail a scrape with more samples than this (0: no limit).
    #[serde(default)]
    pub sample_limit: usize,
    /// The tenant the samples belong to.
    #[serde(default = "TenantId::default_tenant")]
    pub tenant: TenantId,
    /// Fixed targets.
    #[serde(default)]
    pub static_configs: Vec<TargetGroup>,
    /// Targets listed in files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Rules applied to targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RuleConfig>,
    /// Rules applied to every scraped series.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RuleConfig>,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_path() -> String {
    "/metrics".to_owned()
}
fn default_scheme() -> String {
    "http".to_owned()
}
fn default_true() -> bool {
    true
}

/// `targets` with shared `labels`, in static configs and file_sd files alike.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files (`.json`, `.yml`, `.yaml`) holding lists of target groups; the last path
    /// element may be a glob (`*`, `?`, `[abc]`).
    pub files: Vec<PathBuf>,
    /// How often to re-read them.
    #[serde(default = "default_refresh", with = "dozor_model::duration")]
    pub refresh_interval: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(60)
}

/// A job ready to run: configuration checked, rules compiled, TLS configured.
#[derive(Debug, Clone)]
pub struct Job {
    config: ScrapeConfig,
    relabel: Vec<Rule>,
    metric_relabel: Vec<Rule>,
    /// For `https` targets (relabeling may turn any target into one).
    tls: Arc<rustls::ClientConfig>,
}

impl Job {
    /// Checks a scrape config; errors name the job and field.
    pub fn new(config: ScrapeConfig) -> Result<Job, String> {
        let at = |f: &str, e: String| format!("scrape_configs[{}].{f}: {e}", config.job_name);
        if config.scheme != "http" && config.scheme != "https" {
            return Err(at(
                "scheme",
                format!("{:?}: must be http or https", config.scheme),
            ));
        }
        let tls = tls::client_config(&config.tls_config, true).map_err(|e| at("tls_config", e))?;
        if config.scrape_timeout > config.scrape_interval {
            return Err(at(
                "scrape_timeout",
                "must not exceed scrape_interval".into(),
            ));
        }
        if config.scrape_interval < Duration::from_millis(100) {
            return Err(at("scrape_interval", "must be at least 100ms".into()));
        }
        for (i, sd) in config.file_sd_configs.iter().enumerate() {
            for file in &sd.files {
                let dir = file.parent().map(|d| d.to_string_lossy().into_owned());
                if dir.is_some_and(|d| d.contains(['*', '?', '['])) {
                    return Err(at(
                        &format!("file_sd_configs[{i}].files"),
                        format!("{}: only the file name may be a pattern", file.display()),
                    ));
                }
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                if let Some(Err(e)) = name.map(|n| glob::Pattern::new(&n)) {
                    return Err(at(
                        &format!("file_sd_configs[{i}].files"),
                        format!("{}: {e}", file.display()),
                    ));
                }
            }
        }
        let relabel =
            relabel::compile_all(&config.relabel_configs).map_err(|e| at("relabel_configs", e))?;
        let metric_relabel = relabel::compile_all(&config.metric_relabel_configs)
            .map_err(|e| at("metric_relabel_configs", e))?;
        Ok(Job {
            config,
            relabel,
            metric_relabel,
            tls,
        })
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.config.job_name
    }

    /// Current target groups: static ones and those read from the files now (with
    /// `__meta_filepath`).
    fn groups(&self) -> Vec<TargetGroup> {
        let mut groups = self.config.static_configs.clone();
        for sd in &self.config.file_sd_configs {
            for file in sd.files.iter().flat_map(|f| expand(f)) {
                match read_target_file(&file) {
                    Ok(g) => groups.extend(g.into_iter().map(|mut g| {
                        g.labels
                            .insert("__meta_filepath".into(), file.display().to_string());
                        g
                    })),
                    Err(e) => {
                        tracing::warn!(job = %self.config.job_name, file = %file.display(), error = %e, "cannot read targets")
                    }
                }
            }
        }
        groups
    }

    /// Targets after relabeling, keyed by their full label set.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for g in self.groups() {
            for addr in &g.targets {
                let mut labels: LabelMap = g.labels.clone();
                labels.insert("__address__".into(), addr.clone());
                labels.insert("__scheme__".into(), self.config.scheme.clone());
                labels.insert("__metrics_path__".into(), self.config.metrics_path.clone());
                labels.insert("job".into(), self.config.job_name.clone());
                let Some(mut labels) = relabel::apply(&self.relabel, labels) else {
                    continue;
                };
                let Some(address) = labels.get("__address__").cloned() else {
                    continue;
                };
                let url = format!(
                    "{}://{address}{}",
                    labels.get("__scheme__").map_or("http", String::as_str),
                    labels
                        .get("__metrics_path__")
                        .map_or("/metrics", String::as_str)
                );
                labels.entry("instance".into()).or_insert(address);
                let public: Vec<Label> = labels
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("__"))
                    .map(|(name, value)| Label { name, value })
                    .collect();
                match Labels::new(public) {
                    Ok(labels) => out.push(Target { url, labels }),
                    Err(e) => {
                        tracing::warn!(job = %self.config.job_name, target = %url, error = %e, "target dropped: bad labels")
                    }
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out.dedup_by(|a, b| a.labels == b.labels);
        out
    }
}

/// The files a `file_sd_configs` entry names now: the path itself, or, when its file name
/// is a pattern, the matching files of its directory in name order.
fn expand(path: &std::path::Path) -> Vec<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(pattern) = name
        .filter(|n| n.contains(['*', '?', '[']))
        .and_then(|n| glob::Pattern::new(&n).ok())
    else {
        return vec![path.to_owned()];
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| pattern.matches(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn read_target_file(path: &PathBuf) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
    if yaml {
        serde_saphyr::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// A target to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL scraped.
    pub url: String,
    /// Labels added to every series (`job`, `instance`, group labels).
    pub labels: Labels,
}

/// The state one target's loop carries between scrapes.
struct TargetLoop {
    job: Arc<Job>,
    target: Target,
    appender: Arc<dyn Appender>,
    previous: HashSet<Labels>,
}

impl TargetLoop {
    /// One scrape: fetch, parse, label, store; returns the series written.
    async fn scrape_once(&mut self) {
        let started = Instant::now();
        let t = now_ms();
        let fetched = self.fetch().await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut batch: Batch = Vec::new();
        let (up, scraped, kept) =
            match fetched.and_then(|(text, format)| self.label(&text, format, t)) {
                Ok((series, scraped)) => {
                    let kept = series.len();
                    batch = series;
                    (1.0, scraped, kept)
                }
                Err(e) => {
                    tracing::debug!(target = %self.target.url, error = %e, "scrape failed");
                    (0.0, 0, 0)
                }
            };
        let current: HashSet<Labels> = batch.iter().map(|(l, _)| l.clone()).collect();
        let added = current.difference(&self.previous).count();
        for gone in self.previous.difference(&current) {
            batch.push((gone.clone(), vec![Sample { t, v: stale_nan() }]));
        }
        for (name, v) in [
            ("up", up),
            ("scrape_duration_seconds", elapsed),
            ("scrape_samples_scraped", scraped as f64),
            ("scrape_samples_post_metric_relabeling", kept as f64),
            ("scrape_series_added", added as f64),
        ] {
            if let Ok(l) = self.target.labels.with(METRIC_NAME, name) {
                batch.push((l, vec![Sample { t, v }]));
            }
        }
        self.previous = current;
        self.store(batch).await;
    }

    async fn fetch(&self) -> Result<(String, Format), String> {
        let request = checks::HttpRequest {
            method: None,
            headers: &[],
            basic: None,
            url: &self.target.url,
            body: None,
            bearer: None,
            accept: ACCEPT,
            tls: Some(&self.job.tls),
            server_name: self.job.config.tls_config.server_name.as_deref(),
            max_body: Limits::default().max_decoded_bytes,
        };
        let mut found = Findings::default();
        let response = tokio::time::timeout(
            self.job.config.scrape_timeout,
            checks::http(request, &mut found),
        )
        .await
        .map_err(|_| "scrape timed out".to_owned())??;
        if !(200..300).contains(&response.status) {
            return Err(format!("HTTP {}", response.status));
        }
        let format = Format::from_content_type(response.content_type.as_deref());
        let text = String::from_utf8(response.body.to_vec())
            .map_err(|_| "the metrics page is not UTF-8".to_owned())?;
        Ok((text, format))
    }

    /// Parses and labels a scrape; returns the series and how many samples were scraped.
    fn label(&self, text: &str, format: Format, t: i64) -> Result<(Batch, usize), String> {
        let limits = Limits::default();
        let parsed = exposition::parse(text, format, t, &limits).map_err(|e| e.to_string())?;
        let scraped = crate::sample_count(&parsed);
        let limit = self.job.config.sample_limit;
        if limit > 0 && scraped > limit {
            return Err(format!("{scraped} samples exceed sample_limit {limit}"));
        }
        let mut out: Batch = Vec::with_capacity(parsed.len());
        for (labels, mut samples) in parsed {
            let mut map: LabelMap = labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            for tl in self.target.labels.iter() {
                match map.get(&tl.name) {
                    Some(_) if self.job.config.honor_labels => {}
                    Some(existing) => {
                        let existing = existing.clone();
                        map.insert(format!("exported_{}", tl.name), existing);
                        map.insert(tl.name.clone(), tl.value.clone());
                    }
                    None => {
                        map.insert(tl.name.clone(), tl.value.clone());
                    }
                }
            }
            let Some(map) = relabel::apply(&self.job.metric_relabel, map) else {
                continue;
            };
            let Ok(labels) = Labels::new(
                map.into_iter()
                    .map(|(name, value)| Label { name, value })
                    .collect(),
            ) else {
                continue;
            };
            if !self.job.config.honor_timestamps {
                for s in &mut samples {
                    s.t = t;
                }
            }
            out.push((labels, samples));
        }
        Ok((out, scraped))
    }

    async fn store(&self, batch: Batch) {
        let appender = Arc::clone(&self.appender);
        let tenant = self.job.config.tenant.clone();
        match tokio::task::spawn_blocking(move || appender.append(&tenant, batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(target = %self.target.url, error = %e, "cannot store scraped samples")
            }
            Err(e) => tracing::error!(error = %e, "scrape store task failed"),
        }
    }

    /// Marks every series of this target stale (the target went away or Dozor stops).
    async fn retire(mut self) {
        let t = now_ms();
        let mut batch: Batch = self
            .previous
            .drain()
            .map(|l| (l, vec![Sample { t, v: stale_nan() }]))
            .collect();
        for name in [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            if let Ok(l) = self.target.labels.with(METRIC_NAME, name) {
                batch.push((l, vec![Sample { t, v: stale_nan() }]));
            }
        }
        self.store(batch).await;
    }
}

/// Runs the loop of one target until `stop` turns true.
async fn run_target(mut tl: TargetLoop, mut stop: watch::Receiver<bool>) {
    let interval = tl.job.config.scrape_interval;
    // Spread targets over the interval, as Prometheus does, by a stable offset.
    let offset = tl
        .target
        .url
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let offset =
        Duration::from_millis(offset % u64::try_from(interval.as_millis().max(1)).unwrap_or(1));
    tokio::select! {
        () = tokio::time::sleep(offset) => {}
        () = stopped(&mut stop) => return tl.retire().await,
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => tl.scrape_once().await,
            () = stopped(&mut stop) => return tl.retire().await,
        }
    }
}

/// Runs every job until `shutdown` turns true: re-reads targets every `refresh_interval`
/// (the shortest of the job's file_sd configs), starts loops for new targets and retires
/// those that went away.
pub async fn run(jobs: Vec<Job>, appender: Arc<dyn Appender>, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for job in jobs {
        tasks.push(tokio::spawn(run_job(
            Arc::new(job),
            Arc::clone(&appender),
            shutdown.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_job(job: Arc<Job>, appender: Arc<dyn Appender>, mut shutdown: watch::Receiver<bool>) {
    let refresh = job
        .config
        .file_sd_configs
        .iter()
        .map(|f| f.refresh_interval)
        .min()
        .unwrap_or(Duration::from_secs(3600));
    let mut running: HashMap<Labels, (watch::Sender<bool>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let targets = job.targets();
        let wanted: HashSet<Labels> = targets.iter().map(|t| t.labels.clone()).collect();
        let gone: Vec<Labels> = running
            .keys()
            .filter(|l| !wanted.contains(*l))
            .cloned()
            .collect();
        for l in gone {
            if let Some((stop, handle)) = running.remove(&l) {
                let _ = stop.send(true);
                let _ = handle.await;
            }
        }
        for target in targets {
            if running.contains_key(&target.labels) {
                continue;
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let key = target.labels.clone();
            let tl = TargetLoop {
                job: Arc::clone(&job),
                target,
                appender: Arc::clone(&appender),
                previous: HashSet::new(),
            };
            running.insert(key, (stop_tx, tokio::spawn(run_target(tl, stop_rx))));
        }
        tokio::select! {
            () = tokio::time::sleep(refresh) => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    for (_, (stop, handle)) in running {
        let _ = stop.send(true);
        let _ = handle.await;
    }
}
