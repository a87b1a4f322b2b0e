//! How fast PII masking is on realistic log records: ~200k shop, payment and HTTP access
//! lines (most with an IPv4, ~10 % with an e-mail, phone, card or secret), masked as ingest
//! masks them ([`Masker::mask_record`]: the message and every field).
//!
//! The same records are also masked the slow way ([`Masker::mask_record_reference`]: every
//! detector's regex on every text), to print the speed-up and check the results are equal.
//!
//! Run with `cargo run --release -p dozor-ingest --example pii_speed [-- LINES [fast]]`
//! (`fast`: the fast path alone, for a profiler).

use std::collections::BTreeMap;
use std::time::Instant;

use dozor_ingest::pii::{Masker, PiiConfig, PiiKind};
use dozor_model::{Labels, LogRecord};

/// A tiny seeded xorshift64*: the corpus is the same on every run, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi` (the tiny modulo bias does not matter for a corpus).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }

    fn percent(&mut self) -> u64 {
        self.range(0, 100)
    }
}

const PATHS: [&str; 7] = [
    "/api/v1/products/SKU-{n}",
    "/api/v1/products/SKU-{n}/reviews",
    "/api/v1/cart",
    "/api/v1/cart/items",
    "/api/v1/search?q=%D1%88%D0%B8%D0%BD%D1%8B&page={n}",
    "/api/v1/orders/ORD-{n}",
    "/api/v1/catalog/categories/{n}",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119.0 Safari/537.36",
    "okhttp/4.12.0",
    "ShopApp/3.14.2 (Android 13)",
];
const PROVIDERS: [&str; 4] = ["sberpay", "tinkoff", "yookassa", "sbp"];
const FRAMES: [&str; 3] = [
    "ru.shop.api.cart.CartService.total(CartService.kt:87)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
];
const NAMES: [&str; 5] = [
    "ivan.petrov",
    "anna_k",
    "s.smirnova",
    "dmitry1987",
    "olga+shop",
];
const DOMAINS: [&str; 4] = ["mail.ru", "yandex.ru", "gmail.com", "example.co.uk"];

fn ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.range(1, 224),
        rng.range(0, 256),
        rng.range(0, 256),
        rng.range(1, 255)
    )
}

fn email(rng: &mut Rng) -> String {
    format!("{}@{}", rng.pick(&NAMES), rng.pick(&DOMAINS))
}

fn phone(rng: &mut Rng) -> String {
    let n = rng.range(900, 1000);
    match rng.range(0, 3) {
        0 => format!(
            "+7 ({n}) {}-{:02}-{:02}",
            rng.range(100, 1000),
            rng.range(0, 100),
            rng.range(0, 100)
        ),
        1 => format!("8{n}{:07}", rng.range(0, 10_000_000)),
        _ => format!("+7{n}{:07}", rng.range(0, 10_000_000)),
    }
}

/// A Luhn-valid Visa or Mastercard number, grouped by four.
fn card(rng: &mut Rng) -> String {
    let mut d: Vec<u64> = vec![*rng.pick(&[4, 5])];
    while d.len() < 15 {
        d.push(rng.range(0, 10));
    }
    let sum: u64 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, d) if d > 9 => d - 9,
            (0, d) => d,
            _ => x,
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    d.chunks(4)
        .map(|c| c.iter().map(|x| x.to_string()).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One record: a message and its fields (sorted by name, as ingest sorts them).
fn record(rng: &mut Rng) -> LogRecord {
    let user = format!("u-{}", rng.range(100_000, 2_000_000));
    let order = format!("ORD-{}", rng.range(10_000_000, 99_999_999));
    let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
    let amount = format!("{}.{:02}", rng.range(99, 60_000), rng.range(0, 100));
    let latency = rng.range(3, 900);
    let mut fields = vec![("trace_id".to_owned(), trace)];
    let message = match rng.percent() {
        0..40 => {
            let path = rng
                .pick(&PATHS)
                .replace("{n}", &rng.range(100, 160_000).to_string());
            let status = *rng.pick(&[200, 200, 200, 200, 200, 201, 204, 304, 404, 500]);
            fields.push(("http_status".to_owned(), status.to_string()));
            fields.push(("latency_ms".to_owned(), latency.to_string()));
            fields.push(("user_id".to_owned(), user));
            format!(
                "http request method=GET path={path} status={status} duration_ms={latency} bytes={} client_ip={} ua=\"{}\"",
                rng.range(120, 90_000),
                ip(rng),
                rng.pick(&AGENTS)
            )
        }
        40..50 => {
            let path = rng
                .pick(&PATHS)
                .replace("{n}", &rng.range(100, 160_000).to_string());
            format!(
                "{} - - [30/Nov/2026:06:{:02}:{:02} +0300] \"GET {path} HTTP/1.1\" 200 {} \"-\" \"{}\"",
                ip(rng),
                rng.range(0, 60),
                rng.range(0, 60),
                rng.range(120, 90_000),
                rng.pick(&AGENTS)
            )
        }
        50..62 => {
            fields.push(("order_id".to_owned(), order.clone()));
            fields.push(("user_id".to_owned(), user.clone()));
            format!(
                "order created order_id={order} user_id={user} total={amount} delivery=courier slot=2026-12-0{} 14:00-18:00 from {}",
                rng.range(1, 8),
                ip(rng)
            )
        }
        62..76 => {
            fields.push(("order_id".to_owned(), order.clone()));
            format!(
                "payment authorized order_id={order} amount={amount} currency=RUB provider={} auth_code={:06} peer={}:443 took_ms={latency}",
                rng.pick(&PROVIDERS),
                rng.range(0, 1_000_000),
                ip(rng)
            )
        }
        76..82 => format!(
            "fiscal receipt sent to OFD order_id={order} fn=99990789{:08} fd={} fpd={}",
            rng.range(0, 100_000_000),
            rng.range(1, 200_000),
            rng.range(1_000_000_000, 4_000_000_000)
        ),
        82..86 => format!(
            "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.\n\tat {}\n\tat {}",
            rng.pick(&FRAMES),
            rng.pick(&FRAMES)
        ),
        86..90 => format!(
            "Клиент {user} оформил заказ {order} на сумму {amount} руб., адрес доставки подтверждён с {}",
            ip(rng)
        ),
        // The ~10 % with personal data or a secret.
        90..93 => format!("user logged in email={} from {}", email(rng), ip(rng)),
        93..95 => format!(
            "sms sent to {} code=otp provider={}",
            phone(rng),
            rng.pick(&PROVIDERS)
        ),
        95..97 => format!(
            "payment declined order_id={order} card={} reason=insufficient_funds client_ip={}",
            card(rng),
            ip(rng)
        ),
        97..98 => format!(
            "login failed user={} password={:x} from {}",
            email(rng),
            rng.next(),
            ip(rng)
        ),
        _ => {
            fields.push(("email".to_owned(), email(rng)));
            format!("password reset requested for {user} via {}", ip(rng))
        }
    };
    fields.sort();
    LogRecord {
        time_ns: 1_796_083_200_000_000_000,
        stream: Labels::default(),
        message,
        fields,
    }
}

/// Seconds to mask a copy of `records` with `mask`, the masked copy and what was found.
fn once(
    records: &[LogRecord],
    mask: impl Fn(&mut LogRecord, &mut BTreeMap<PiiKind, u64>) -> bool,
) -> (f64, Vec<LogRecord>, BTreeMap<PiiKind, u64>) {
    let mut batch = records.to_vec();
    let mut counts = BTreeMap::new();
    let start = Instant::now();
    let mut dropped = 0u64;
    for r in &mut batch {
        dropped += u64::from(mask(r, &mut counts));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(dropped, 0, "the default config drops nothing");
    (secs, batch, counts)
}

fn main() {
    let lines = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let records: Vec<LogRecord> = (0..lines).map(|_| record(&mut rng)).collect();
    let bytes: usize = records
        .iter()
        .map(|r| {
            r.message.len()
                + r.fields
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    println!(
        "{lines} records, {:.1} MB of messages and fields",
        bytes as f64 / 1e6
    );
    let m = Masker::new(&PiiConfig::default());
    let salt = b"pii_speed example salt";
    let fast_only = std::env::args().nth(2).as_deref() == Some("fast");
    // Best of five rounds each, the two ways taking turns, so that a busy neighbour on the
    // machine slows both alike.
    let (mut before, mut after) = (f64::INFINITY, f64::INFINITY);
    let mut found = BTreeMap::new();
    for _ in 0..5 {
        let (secs, masked, counts) = once(&records, |r, c| m.mask_record(r, salt, c));
        after = after.min(secs);
        if fast_only {
            // For a profiler: the fast path alone.
            continue;
        }
        let (secs, reference, reference_counts) =
            once(&records, |r, c| m.mask_record_reference(r, salt, c));
        before = before.min(secs);
        // The same records out, and the same counts, or the speed is worth nothing.
        assert!(masked == reference, "the fast path masked differently");
        assert_eq!(
            counts, reference_counts,
            "the fast path counted differently"
        );
        found = counts;
    }
    if !found.is_empty() {
        println!("found: {found:?}");
    }
    let rate = |secs: f64| lines as f64 / secs;
    if !fast_only {
        println!(
            "before (every regex on every text): {:>9.0} lines/s",
            rate(before)
        );
    }
    println!(
        "after (pre-filtered):               {:>9.0} lines/s",
        rate(after)
    );
    if !fast_only {
        println!("speed-up: {:.1}x", before / after);
    }
}
