//! Built-in generators of live demo data for `dozor demo`: this host's CPU, load and
//! memory, and a stream of shop, MES, CRM and partner-API logs written to
//! `<data-dir>/demo/shop.log` as JSON lines, which the demo tails like any log file (orders
//! and payments name their customer in `user_id`; API calls carry `account`, `client_ip`
//! and `duration_ms`, what `pack:shop` reads). Their rates and values are Dozor metrics too,
//! so the UI chart moves from the first second.
//!
//! The KKT fleet (`crate::kkt`) and the ticket marketplace (`crate::marketplace`) have their
//! own simulators; every generator feeds Dozor only through public paths, as real systems
//! would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dozor_api::self_metrics::SelfMetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::host::HostReading;

/// The demo log file is cut back to empty past this size, to bound the disk it uses.
const MAX_LOG_BYTES: u64 = 32 << 20;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    service: &'static str,
    level: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The demo generators and the metrics they drive.
pub struct Generators {
    log_path: PathBuf,
    lines: Family<LogLabels, Counter>,
    lines_total: Arc<AtomicU64>,
    cpu_busy: FloatGauge,
    load1: FloatGauge,
    mem_available: FloatGauge,
}

impl Generators {
    /// Registers the demo metrics and tracked series.
    pub fn register(metrics: &mut SelfMetricsBuilder, data_dir: &Path) -> Generators {
        let g = Generators {
            log_path: data_dir.join("demo").join("shop.log"),
            lines: Family::default(),
            lines_total: Arc::new(AtomicU64::new(0)),
            cpu_busy: FloatGauge::default(),
            load1: FloatGauge::default(),
            mem_available: FloatGauge::default(),
        };
        let r = metrics.registry_mut();
        r.register(
            "dozor_demo_log_lines",
            "Demo shop log lines written, by service and level",
            g.lines.clone(),
        );
        r.register(
            "node_cpu_busy_ratio",
            "Share of CPU time not idle on this host",
            g.cpu_busy.clone(),
        );
        r.register(
            "node_load1",
            "1-minute load average of this host",
            g.load1.clone(),
        );
        r.register(
            "node_memory_MemAvailable_bytes",
            "Memory available on this host",
            g.mem_available.clone(),
        );
        let cpu = g.cpu_busy.clone();
        metrics.track_gauge(
            "node_cpu_busy_ratio",
            "Share of CPU time not idle on this host",
            move || cpu.get(),
        );
        let load = g.load1.clone();
        metrics.track_gauge(
            "node_load1",
            "1-minute load average of this host",
            move || load.get(),
        );
        let total = Arc::clone(&g.lines_total);
        metrics.track_rate(
            "demo_shop_log_lines_per_second",
            "Demo shop log lines written per second",
            move || total.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        g
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        if let Some(dir) = self.log_path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            {
                tracing::error!(error = %e, "cannot create the demo log directory; demo logs disabled");
            }
        }
        let mut shop = ShopLog::new(fastrand::Rng::new());
        let mut previous = HostReading::read();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            if let Some(now) = HostReading::read() {
                if let Some(before) = previous {
                    if now.cpu_total > before.cpu_total + 0.5 {
                        self.cpu_busy.set(now.cpu_busy_since(&before));
                        previous = Some(now);
                    }
                } else {
                    previous = Some(now);
                }
                self.load1.set(now.load1);
                self.mem_available.set(now.mem_available);
            }
            let batch = shop.next_batch(dozor_model::time::now_ms());
            if let Err(e) = self.append(&batch) {
                tracing::warn!(error = %e, "cannot write demo logs");
            }
        }
    }

    fn append(&self, batch: &[(LogLabels, String)]) -> std::io::Result<()> {
        if std::fs::metadata(&self.log_path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
            std::fs::write(&self.log_path, b"")?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut buf = Vec::with_capacity(batch.len() * 160);
        for (labels, line) in batch {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            self.lines.get_or_create(labels).inc();
        }
        file.write_all(&buf)?;
        self.lines_total
            .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Generates believable log lines of a shop's systems: a web shop, checkout and payments,
/// a MES on the shop floor and a CRM, with a slow daily rhythm and occasional error bursts.
struct ShopLog {
    rng: fastrand::Rng,
    burst_left: u32,
    /// Orders created and not paid yet: (when the customer pays, order, customer, total).
    /// Abandoned ones never enter.
    to_pay: std::collections::VecDeque<(i64, String, String, String)>,
}

/// The share of created orders that are paid (the demo's checkout conversion).
const PAID_SHARE: f64 = 0.8;

const SERVICES: &[(&str, &[&str])] = &[
    (
        "shop-web",
        &[
            "GET /catalog/{id} 200",
            "GET /cart 200",
            "POST /cart/items 201",
            "GET /search?q={word} 200",
        ],
    ),
    (
        "checkout",
        // `order … created` opens an order (`ShopLog::create_order`), which is paid, or
        // abandoned, seconds later.
        &["order {order} created", "order {order} handed to delivery"],
    ),
    (
        "payments",
        // Authorisations come with the orders' payments (`ShopLog::payments`).
        &["capture ok for {order}", "refund issued for {order}"],
    ),
    (
        "mes",
        &[
            "line {n}: batch {order} started",
            "line {n}: batch {order} finished, yield {pct}%",
            "line {n}: sensor temperature {n}.{n} C",
        ],
    ),
    (
        "crm",
        &[
            "customer {id} profile updated",
            "ticket {order} opened by customer {id}",
            "ticket {order} resolved",
        ],
    ),
];

/// The B2B APIs: requests of partner accounts, with the client address and the time taken
/// as fields (what `pack:shop`'s per-account and per-address searches read).
const APIS: &[(&str, &[&str])] = &[
    (
        "shop-api",
        &[
            "GET /api/v1/orders/{id} 200",
            "POST /api/v1/orders 201",
            "GET /api/v1/catalog 200",
        ],
    ),
    (
        "mes-api",
        &["POST /api/v1/jobs 202", "GET /api/v1/jobs/{id} 200"],
    ),
    (
        "crm-api",
        &[
            "GET /api/v1/customers/{id} 200",
            "PUT /api/v1/customers/{id} 200",
        ],
    ),
];

const ERRORS: &[(&str, &str)] = &[
    (
        "payments",
        "payment {order} failed: acquirer timeout after 30s",
    ),
    (
        "checkout",
        "order {order} failed: stock reservation conflict",
    ),
    ("mes", "line {n}: PLC connection lost, retrying"),
    ("shop-web", "GET /catalog/{id} 502 upstream unavailable"),
    ("shop-api", "POST /api/v1/orders 401 invalid partner key"),
    (
        "crm-api",
        "GET /api/v1/customers/{id} 504 integration timeout: 1C exchange",
    ),
];

const WORDS: &[&str] = &[
    "milk", "bread", "coffee", "tea", "cheese", "apples", "phone", "charger",
];

impl ShopLog {
    fn new(rng: fastrand::Rng) -> ShopLog {
        ShopLog {
            rng,
            burst_left: 0,
            to_pay: std::collections::VecDeque::new(),
        }
    }

    /// An order placed at `now_ms`: its line, and — for [`PAID_SHARE`] of them — its
    /// payment 2 to 30 s later (an authorised payment, then the order paid).
    fn create_order(&mut self, now_ms: i64) -> (String, String) {
        let order = format!("A-{}", self.rng.u32(100_000..999_999));
        let user = format!("u{}", self.rng.u32(1..500));
        let total = format!("{}.{:02}", self.rng.u32(50..20_000), self.rng.u32(0..100));
        let items = self.rng.u32(1..9);
        if self.rng.f64() < PAID_SHARE {
            let at = now_ms + self.rng.i64(2_000..30_000);
            let i = self.to_pay.partition_point(|(t, ..)| *t <= at);
            self.to_pay
                .insert(i, (at, order.clone(), user.clone(), total.clone()));
        }
        (
            format!("order {order} created, {items} items, total {total} RUB"),
            user,
        )
    }

    /// The payments due by `now_ms`.
    fn payments(&mut self, now_ms: i64, batch: &mut Vec<(LogLabels, String)>) {
        while self.to_pay.front().is_some_and(|(t, ..)| *t <= now_ms) {
            let Some((_, order, user, total)) = self.to_pay.pop_front() else {
                break;
            };
            let fields = serde_json::json!({ "user_id": user });
            let paid = format!("authorised payment {order} amount {total} RUB");
            batch.push(line_with(now_ms, "payments", "info", &paid, fields.clone()));
            let paid = format!("order {order} paid via card");
            batch.push(line_with(now_ms, "checkout", "info", &paid, fields));
        }
    }

    fn fill(&mut self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let value = match &rest[start + 1..start + len] {
                "id" => self.rng.u32(1000..99_999).to_string(),
                "order" => format!("A-{}", self.rng.u32(100_000..999_999)),
                "n" => self.rng.u32(1..9).to_string(),
                "pct" => self.rng.u32(90..100).to_string(),
                "word" => WORDS[self.rng.usize(..WORDS.len())].to_owned(),
                other => other.to_owned(),
            };
            out.push_str(&value);
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The lines of one 250 ms tick.
    fn next_batch(&mut self, now_ms: i64) -> Vec<(LogLabels, String)> {
        // Traffic follows a slow wave so the chart shows a shape, not noise.
        let phase = (now_ms as f64 / 120_000.0 * std::f64::consts::TAU).sin();
        let count = (4.0 + 3.0 * phase + self.rng.f64() * 3.0).max(1.0) as usize;
        if self.burst_left == 0 && self.rng.u32(0..400) == 0 {
            self.burst_left = self.rng.u32(8..40);
        }
        let mut batch = Vec::with_capacity(count + 2);
        for _ in 0..count {
            let (service, templates) = SERVICES[self.rng.usize(..SERVICES.len())];
            let template = templates[self.rng.usize(..templates.len())];
            let level = if self.rng.u32(0..50) == 0 {
                "warn"
            } else {
                "info"
            };
            // Orders and payments name their customer.
            let (message, user) = if template.ends_with("created") {
                self.create_order(now_ms)
            } else {
                (self.fill(template), format!("u{}", self.rng.u32(1..500)))
            };
            let fields = if matches!(service, "checkout" | "payments") {
                serde_json::json!({ "user_id": user })
            } else {
                serde_json::json!({})
            };
            batch.push(line_with(now_ms, service, level, &message, fields));
        }
        self.payments(now_ms, &mut batch);
        // Partner API calls: account, client address and time taken as fields.
        for _ in 0..self.rng.usize(0..3) {
            let (service, templates) = APIS[self.rng.usize(..APIS.len())];
            let template = templates[self.rng.usize(..templates.len())];
            let message = self.fill(template);
            let fields = serde_json::json!({
                "account": format!("partner-{}", self.rng.u32(1..12)),
                "client_ip": format!("203.0.113.{}", self.rng.u32(1..40)),
                "duration_ms": self.rng.u32(8..400),
            });
            batch.push(line_with(now_ms, service, "info", &message, fields));
        }
        // Now and then a MES line stops, and rarely something fatal happens.
        if self.rng.u32(0..2_400) == 0 {
            let message = self.fill("line {n}: stopped: material jam");
            batch.push(line(now_ms, "mes", "warn", &message));
        }
        if self.rng.u32(0..20_000) == 0 {
            batch.push(line(
                now_ms,
                "checkout",
                "fatal",
                "database connection lost",
            ));
        }
        if self.burst_left > 0 || self.rng.u32(0..60) == 0 {
            self.burst_left = self.burst_left.saturating_sub(1);
            let (service, template) = ERRORS[self.rng.usize(..ERRORS.len())];
            let message = self.fill(template);
            batch.push(line(now_ms, service, "error", &message));
        }
        batch
    }
}

fn line(
    ts_ms: i64,
    service: &'static str,
    level: &'static str,
    message: &str,
) -> (LogLabels, String) {
    line_with(ts_ms, service, level, message, serde_json::json!({}))
}

/// A line with extra members (fields of the record once tailed).
fn line_with(
    ts_ms: i64,
    service: &'static str,
    level: &'static str,
    message: &str,
    fields: serde_json::Value,
) -> (LogLabels, String) {
    let mut json =
        serde_json::json!({"ts": ts_ms, "service": service, "level": level, "msg": message});
    if let (Some(o), serde_json::Value::Object(extra)) = (json.as_object_mut(), fields) {
        o.extend(extra);
    }
    (LogLabels { service, level }, json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_lines_are_json_with_filled_placeholders() {
        let mut shop = ShopLog::new(fastrand::Rng::with_seed(7));
        let mut levels = std::collections::HashSet::new();
        for tick in 0..2_000 {
            for (labels, text) in shop.next_batch(tick * 250) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["service"], labels.service);
                let msg = v["msg"].as_str().unwrap();
                assert!(!msg.contains('{') && !msg.contains('}'), "{msg}");
                levels.insert(labels.level);
            }
        }
        for level in ["info", "warn", "error"] {
            assert!(levels.contains(level), "{level} occurs: {levels:?}");
        }
    }

    #[test]
    fn most_orders_are_paid_after_they_were_created() {
        let mut shop = ShopLog::new(fastrand::Rng::with_seed(7));
        let mut created = std::collections::HashMap::new();
        let (mut paid, mut authorised) = (0, 0);
        for tick in 0..20_000 {
            let now = tick * 250;
            for (_, text) in shop.next_batch(now) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let msg = v["msg"].as_str().unwrap();
                let words: Vec<&str> = msg.split(' ').collect();
                match words.as_slice() {
                    ["order", id, "created,", ..] => {
                        created.insert(id.to_string(), (now, v["user_id"].clone()));
                    }
                    ["order", id, "paid", ..] => {
                        let (at, user) = created.get(*id).expect("paid after created");
                        assert!(now - at >= 2_000 && now - at <= 30_250, "{msg}");
                        assert_eq!(&v["user_id"], user, "the same customer pays");
                        paid += 1;
                    }
                    ["authorised", "payment", ..] => authorised += 1,
                    _ => {}
                }
            }
        }
        let conversion = f64::from(paid) / created.len() as f64;
        assert!((0.7..0.9).contains(&conversion), "{conversion}");
        assert_eq!(paid, authorised, "each paid order was authorised");
    }
}
