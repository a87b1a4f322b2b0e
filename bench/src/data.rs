//! Benchmark data: real node_exporter output (Debian's `prometheus-node-exporter`, scraped
//! twice to learn which series move and how fast) as a per-instance template, optionally
//! with a synthetic `http_request_duration_seconds` histogram family, replicated over
//! `instance`s and advanced in 15 s scrapes ([`Scrapes`]).
//!
//! Values: series that did not move stay constant; series that grew are counters advancing
//! at the measured rate with per-scrape jitter, never decreasing; series that shrank are
//! gauges wandering around their measured value. Timestamps are 15 s apart plus a per-instance
//! offset of 300–702 ms, so no sample falls on a whole second (query steps do, and window
//! edges are where Prometheus 2.x and 3.x differ).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use dozor_ingest::Batch;
use dozor_ingest::exposition::{Format, parse};
use dozor_model::{Labels, Sample};

/// Scrape interval of the generated data.
pub const INTERVAL_MS: i64 = 15_000;

/// One series of the per-instance template: labels (without `instance`/`job`), the first
/// value and the change per second (0: constant; > 0: counter; < 0: moving gauge).
#[derive(Debug, Clone)]
pub struct TemplateSeries {
    /// The series' labels, `__name__` included.
    pub labels: Labels,
    /// Value at the first scrape.
    pub v0: f64,
    /// Change per second measured between two scrapes.
    pub rate: f64,
}

/// Two scrapes of a real node_exporter, one second apart: the template and each series' rate.
pub async fn node_exporter_template() -> anyhow::Result<Vec<TemplateSeries>> {
    let port = crate::systems::free_port()?;
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
    let second: HashMap<Labels, f64> = parse(&texts[1], Format::Prometheus, 0, &limits)?
        .into_iter()
        .map(|(l, s)| (l, s[0].v))
        .collect();
    Ok(first
        .into_iter()
        .filter(|(_, s)| s[0].v.is_finite())
        .map(|(labels, s)| {
            let rate = second.get(&labels).map_or(0.0, |v| v - s[0].v);
            TemplateSeries {
                labels,
                v0: s[0].v,
                rate,
            }
        })
        .collect())
}

/// A classic histogram family, `http_request_duration_seconds_{bucket,sum,count}` for
/// `handlers` handlers at about 20 requests per second each (node_exporter exposes none).
pub fn http_histogram(handlers: usize) -> anyhow::Result<Vec<TemplateSeries>> {
    const LE: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let mut out = Vec::new();
    for h in 0..handlers {
        let handler = format!("/api/v{h}");
        let rps = 20.0 / (h + 1) as f64;
        // Latencies roughly exponential with a mean growing per handler.
        let mean = 0.05 * (h + 1) as f64;
        let cdf = |le: f64| 1.0 - (-le / mean).exp();
        let series = |name: &str, le: Option<&str>, rate: f64| {
            let mut pairs = vec![("__name__", name.to_string()), ("handler", handler.clone())];
            if let Some(le) = le {
                pairs.push(("le", le.to_string()));
            }
            Ok::<_, anyhow::Error>(TemplateSeries {
                labels: Labels::from_pairs(pairs)?,
                v0: 0.0,
                rate,
            })
        };
        for le in LE {
            out.push(series(
                "http_request_duration_seconds_bucket",
                Some(&le.to_string()),
                rps * cdf(le),
            )?);
        }
        out.push(series(
            "http_request_duration_seconds_bucket",
            Some("+Inf"),
            rps,
        )?);
        out.push(series("http_request_duration_seconds_count", None, rps)?);
        out.push(series(
            "http_request_duration_seconds_sum",
            None,
            rps * mean,
        )?);
    }
    Ok(out)
}

/// The template replicated over `instances` instances (`instance="host-<i>:9100"`,
/// `job="node"`), with scrapes starting at `start_ms`.
pub struct Scrapes {
    template: Vec<TemplateSeries>,
    /// Per instance, per template series: the full label set.
    labels: Vec<Vec<Labels>>,
    start_ms: i64,
    rng: fastrand::Rng,
}

impl Scrapes {
    /// Builds the label sets of every instance.
    pub fn new(
        template: Vec<TemplateSeries>,
        instances: usize,
        start_ms: i64,
    ) -> anyhow::Result<Scrapes> {
        let labels = (0..instances)
            .map(|i| {
                template
                    .iter()
                    .map(|t| {
                        t.labels
                            .with("instance", &format!("host-{i}:9100"))
                            .and_then(|l| l.with("job", "node"))
                    })
                    .collect::<Result<_, _>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(Scrapes {
            template,
            labels,
            start_ms,
            rng: fastrand::Rng::with_seed(42),
        })
    }

    /// Series per instance.
    pub fn per_instance(&self) -> usize {
        self.template.len()
    }

    /// Number of instances.
    pub fn instances(&self) -> usize {
        self.labels.len()
    }

    /// The scrapes `steps` of the `instances` as one batch: each series once, with all its
    /// samples in time order.
    pub fn batch(
        &mut self,
        instances: std::ops::Range<usize>,
        steps: std::ops::Range<usize>,
    ) -> Batch {
        let mut batch: Batch = Vec::with_capacity(instances.len() * self.template.len());
        for i in instances {
            // Real scrapes land a few ms off the interval; never on a whole second.
            let offset = 300 + (i as i64 % 400);
            let times: Vec<i64> = steps
                .clone()
                .map(|s| self.start_ms + s as i64 * INTERVAL_MS + offset + self.rng.i64(0..4))
                .collect();
            for (j, t) in self.template.iter().enumerate() {
                let samples = steps
                    .clone()
                    .zip(&times)
                    .map(|(step, &t_ms)| {
                        let v = if t.rate == 0.0 {
                            t.v0
                        } else if t.rate > 0.0 {
                            // Counters: the measured rate with jitter below one scrape's
                            // increase, so they never decrease.
                            let per_step = t.rate * (INTERVAL_MS / 1000) as f64;
                            (t.v0 + per_step * (step as f64 + 0.8 * self.rng.f64())).round()
                        } else {
                            // Moving gauges: a walk around the measured value.
                            let swing = t.rate * (INTERVAL_MS / 1000) as f64;
                            (t.v0 + swing * (self.rng.f64() - 0.5)).round()
                        };
                        Sample { t: t_ms, v }
                    })
                    .collect();
                batch.push((self.labels[i][j].clone(), samples));
            }
        }
        batch
    }
}
