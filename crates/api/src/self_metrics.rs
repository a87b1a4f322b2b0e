//! Dozor's own metrics: the `/metrics` registry (Prometheus/OpenMetrics text), HTTP request
//! counters and latencies, process gauges, and a short in-memory history of a few series for
//! the UI's status chart until the PromQL API serves it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use dozor_model::time::{Millis, now_ms};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Labels of `dozor_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    code: u16,
}

/// Labels of `dozor_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type Sampler = Box<dyn Fn() -> f64 + Send + Sync>;

/// How a tracked series turns a reading into a point.
enum Reading {
    /// The value as read.
    Gauge(Sampler),
    /// The per-second rate of a counter between two readings.
    Rate(Sampler),
}

struct Track {
    name: &'static str,
    help: &'static str,
    reading: Reading,
    last_raw: Option<(Instant, f64)>,
    points: VecDeque<(Millis, f64)>,
}

/// A series of the in-memory history, as the status API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesHistory {
    /// Metric-style name.
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// `[ms since epoch, value]` pairs, oldest first.
    pub points: Vec<(Millis, f64)>,
}

/// Builds [`SelfMetrics`]: other parts of Dozor (the demo generators, later the engines)
/// register their metrics and tracked series here before the server starts.
pub struct SelfMetricsBuilder {
    registry: Registry,
    tracks: Vec<Track>,
}

impl SelfMetricsBuilder {
    /// The registry, to register more metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Keeps a short history of `read()`'s value for the UI chart.
    pub fn track_gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.push(name, help, Reading::Gauge(Box::new(read)));
    }

    /// Keeps a short history of the per-second rate of the counter `read()` returns.
    pub fn track_rate(
        &mut self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.push(name, help, Reading::Rate(Box::new(read)));
    }

    fn push(&mut self, name: &'static str, help: &'static str, reading: Reading) {
        self.tracks.push(Track {
            name,
            help,
            reading,
            last_raw: None,
            points: VecDeque::with_capacity(SelfMetrics::HISTORY_POINTS),
        });
    }

    /// Finishes registration.
    pub fn build(mut self) -> Arc<SelfMetrics> {
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let rss = FloatGauge::default();
        let cpu = Counter::<f64, AtomicU64>::default();
        let start = FloatGauge::default();
        start.set(now_ms() as f64 / 1000.0);
        let r = &mut self.registry;
        r.register(
            "dozor_http_requests",
            "HTTP requests answered, by route and status code",
            http_requests.clone(),
        );
        r.register(
            "dozor_http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            http_duration.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the Dozor process",
            rss.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "CPU time used by the Dozor process",
            cpu.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "When the Dozor process started, seconds since the epoch",
            start,
        );
        r.register(
            "dozor_build",
            "Dozor build information",
            Info::new(vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )]),
        );
        // A `Family` cannot be summed without encoding it, so the middleware also keeps a total.
        let total_requests = Arc::new(AtomicU64::new(0));
        let requests = Arc::clone(&total_requests);
        let rss_reading = rss.clone();
        self.track_gauge(
            "process_resident_memory_bytes",
            "Resident memory of the Dozor process",
            move || rss_reading.get(),
        );
        self.track_rate(
            "dozor_http_requests_per_second",
            "HTTP requests answered per second",
            move || requests.load(Ordering::Relaxed) as f64,
        );
        Arc::new(SelfMetrics {
            registry: self.registry,
            http_requests,
            http_duration,
            total_requests,
            rss,
            cpu,
            cpu_seen: Mutex::new(0.0),
            history: Mutex::new(self.tracks),
        })
    }
}

/// Dozor's own metrics; shared by the server, the sampler and the engines.
pub struct SelfMetrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    total_requests: Arc<AtomicU64>,
    rss: FloatGauge,
    cpu: Counter<f64, AtomicU64>,
    cpu_seen: Mutex<f64>,
    history: Mutex<Vec<Track>>,
}

impl SelfMetrics {
    /// Points kept per tracked series (10 minutes at the default 2 s interval).
    pub const HISTORY_POINTS: usize = 300;

    /// A builder with the standard metrics to come.
    pub fn builder() -> SelfMetricsBuilder {
        SelfMetricsBuilder {
            registry: Registry::default(),
            tracks: Vec::new(),
        }
    }

    /// The registry in OpenMetrics text format.
    pub fn encode(&self) -> String {
        self.refresh_process();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode self metrics");
        }
        out
    }

    /// Reads `/proc/self` into the process gauges (Linux; elsewhere they stay 0).
    fn refresh_process(&self) {
        if let Some((rss, cpu)) = read_proc_self() {
            self.rss.set(rss);
            let mut seen = self.cpu_seen.lock().unwrap_or_else(|p| p.into_inner());
            if cpu > *seen {
                self.cpu.inc_by(cpu - *seen);
                *seen = cpu;
            }
        }
    }

    /// Takes one reading of every tracked series.
    pub fn sample(&self) {
        self.refresh_process();
        let now = now_ms();
        let instant = Instant::now();
        let mut tracks = self.history.lock().unwrap_or_else(|p| p.into_inner());
        for t in tracks.iter_mut() {
            let value = match &t.reading {
                Reading::Gauge(read) => Some(read()),
                Reading::Rate(read) => {
                    let raw = read();
                    let rate = t.last_raw.map(|(at, prev)| {
                        let secs = instant.duration_since(at).as_secs_f64();
                        if secs > 0.0 && raw >= prev {
                            (raw - prev) / secs
                        } else {
                            0.0
                        }
                    });
                    t.last_raw = Some((instant, raw));
                    rate
                }
            };
            if let Some(v) = value {
                if t.points.len() == Self::HISTORY_POINTS {
                    t.points.pop_front();
                }
                t.points.push_back((now, v));
            }
        }
    }

    /// The tracked series with their recent points.
    pub fn history(&self) -> Vec<SeriesHistory> {
        let tracks = self.history.lock().unwrap_or_else(|p| p.into_inner());
        tracks
            .iter()
            .map(|t| SeriesHistory {
                name: t.name,
                help: t.help,
                points: t.points.iter().copied().collect(),
            })
            .collect()
    }

    /// Samples every `interval` until `shutdown` resolves.
    pub async fn run_sampler(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sample(),
                () = &mut shutdown => return,
            }
        }
    }
}

/// Resident bytes and CPU seconds of this process, from `/proc/self`.
fn read_proc_self() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture Dozor targets.
    Some((rss_kib * 1024.0, ticks / 100.0))
}

/// Middleware: counts every answered request by route pattern (never the raw path, which
/// would explode cardinality) and times it.
pub async fn track_http(
    State(metrics): State<Arc<SelfMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            code: response.status().as_u16(),
        })
        .inc();
    metrics.total_requests.fetch_add(1, Ordering::Relaxed);
    response
}
