//! Seed 002's shop, MES and CRM pack (`pack:shop`: `deploy/rules/shop-logs.yml`'s LogQL
//! groups and `deploy/rules/shop.yml`'s PromQL ones) over 80 generated minutes of the
//! shop's logs, written as Dozor's demo writes them (JSON lines with `ts`, `service`,
//! `level`, `msg`, plus the fields `client_ip`, `account`, `user_id` and `duration_ms`)
//! and read by the file tail's NDJSON conventions and the ingest pipeline. The whole pack
//! is evaluated every 30 s as the server would — the LogQL groups recording into a metric
//! store that the PromQL groups read — and the alerts that fire must be exactly the
//! injected anomalies, each within its window: normal traffic fires nothing. The recorded
//! business series are checked against the generator's exact rates.
//! (`shop.test.yml` tests the PromQL half alone, under `dozor test rules` and promtool.)

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::BTreeMap;

use dozor_model::{LogRecord, Sample};
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::group::Sources;
use dozor_rules::mem::MemStore;
use dozor_rules::{Group, Transition};
use serde_json::{Value, json};

const T0: i64 = 1_764_500_000_000;
const MIN: i64 = 60_000;
const SEC: i64 = 1000;
/// Minutes of traffic.
const MINUTES: i64 = 80;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

struct Logs {
    records: Vec<LogRecord>,
    opts: dozor_ingest::ndjson::NdjsonOptions,
    pipeline: dozor_ingest::pipeline::Pipeline,
}

impl Logs {
    /// One JSON line as the demo writes it, plus `fields`, through the tail's decoder.
    fn line(&mut self, t: i64, service: &str, level: &str, msg: &str, fields: &[(&str, Value)]) {
        let mut obj = json!({"ts": t, "service": service, "level": level, "msg": msg});
        for (k, v) in fields {
            obj[*k] = v.clone();
        }
        let mut reader = dozor_ingest::ndjson::LineReader::new(&self.opts);
        let mut r = reader.line(&obj.to_string()).unwrap();
        self.pipeline.apply(&mut r);
        self.records.push(r);
    }
}

/// The shop's normal traffic, at exact rates (only amounts, ids and durations vary):
/// shop-web 60 requests a minute from 50 client IPs; an order every 6 s, 9 of 10 paid
/// and authorised; a batch finished every 10 s on lines 1–6 in turn (1 a minute each);
/// the *-api services' requests with `duration_ms`, shop-api's from 5 B2B accounts; rare
/// errors like the demo's. Then the anomalies of [`expected`].
fn generate() -> Logs {
    let mut l = Logs {
        records: Vec::new(),
        opts: dozor_ingest::ndjson::NdjsonOptions::new(0),
        pipeline: dozor_ingest::pipeline::Pipeline::default(),
    };
    let mut rng = Lcg(2002);
    let web = [
        "GET /catalog/{id} 200",
        "GET /cart 200",
        "POST /cart/items 201",
        "GET /search?q=milk 200",
    ];
    for s in 0..MINUTES * 60 {
        let t = T0 + s * SEC;
        let id = 1000 + rng.below(90_000);
        let ip = format!("192.0.2.{}", s % 50 + 1);
        l.line(
            t,
            "shop-web",
            "info",
            &web[(s % 4) as usize].replace("{id}", &id.to_string()),
            &[("client_ip", json!(ip))],
        );
        if s % 97 == 50 {
            l.line(
                t,
                "shop-web",
                "error",
                &format!("GET /catalog/{id} 502 upstream unavailable"),
                &[("client_ip", json!(ip))],
            );
        }
        // Orders: created at s ≡ 0 (mod 6), paid at +5 s and authorised at +4 s unless
        // the tenth.
        let k = s / 6;
        let order = format!("A-{}", 100_000 + k);
        let user = json!(format!("u-{}", k % 40 + 1));
        match s % 6 {
            0 => {
                let total = format!("{}.{:02}", 50 + rng.below(19_950), rng.below(100));
                let items = 1 + rng.below(5);
                l.line(
                    t,
                    "checkout",
                    "info",
                    &format!("order {order} created, {items} items, total {total} RUB"),
                    &[("user_id", user)],
                );
            }
            4 if k % 10 != 9 => l.line(
                t,
                "payments",
                "info",
                &format!("authorised payment {order} amount 100.00 RUB"),
                &[("user_id", user)],
            ),
            5 if k % 10 != 9 => l.line(
                t,
                "checkout",
                "info",
                &format!("order {order} paid via card"),
                &[("user_id", user)],
            ),
            _ => {}
        }
        if s % 131 == 70 {
            l.line(
                t,
                "checkout",
                "error",
                &format!("order {order} failed: stock reservation conflict"),
                &[],
            );
        }
        // MES: a batch finished every 10 s, lines 1–6 in turn.
        let line = (s / 10) % 6 + 1;
        match s % 10 {
            0 => {
                let pct = 90 + rng.below(10);
                l.line(
                    t,
                    "mes",
                    "info",
                    &format!("line {line}: batch B-{s} finished, yield {pct}%"),
                    &[],
                );
            }
            5 => l.line(
                t,
                "mes",
                "info",
                &format!("line {line}: batch B-{s} started"),
                &[],
            ),
            7 => l.line(
                t,
                "mes",
                "info",
                &format!("line {line}: sensor temperature 41.5 C"),
                &[],
            ),
            _ => {}
        }
        if s % 113 == 30 {
            l.line(
                t,
                "mes",
                "error",
                &format!("line {line}: PLC connection lost, retrying"),
                &[],
            );
        }
        match s % 5 {
            2 => l.line(
                t,
                "crm",
                "info",
                &format!("customer {id} profile updated"),
                &[],
            ),
            3 => l.line(
                t,
                "mes-api",
                "info",
                "POST /api/v1/price 200",
                &[("duration_ms", json!(100 + rng.below(500)))],
            ),
            4 => l.line(
                t,
                "crm-api",
                "info",
                &format!("GET /api/v1/customers/{id} 200"),
                &[
                    ("account", json!("crm-sync")),
                    ("client_ip", json!("198.18.1.1")),
                    ("duration_ms", json!(30 + rng.below(170))),
                ],
            ),
            _ => {}
        }
        if s % 3 == 1 {
            let account = (s / 3) % 5 + 1;
            l.line(
                t,
                "shop-api",
                "info",
                "POST /api/v1/orders 201",
                &[
                    ("account", json!(format!("b2b-{account}"))),
                    ("client_ip", json!(format!("198.18.0.{account}"))),
                    ("duration_ms", json!(50 + rng.below(350))),
                ],
            );
        }
    }

    let at = |m: i64, s: i64| T0 + m * MIN + s * SEC;
    // Minutes 20–24: one IP sends 350 requests a minute to shop-web.
    for i in 0..5 * 350 {
        l.line(
            at(20, 0) + i * 60_000 / 350,
            "shop-web",
            "info",
            "GET /catalog/1 200",
            &[("client_ip", json!("203.0.113.7"))],
        );
    }
    // Minutes 30–32: one IP refused 30 times (one every 4 s).
    for i in 0..30 {
        l.line(
            at(30, 4 * i),
            "shop-api",
            "warn",
            "POST /api/v1/login 401",
            &[("client_ip", json!("198.51.100.23"))],
        );
    }
    // Minute 35: 50 refusals from masked IPs, which the per-IP rules cannot tell apart.
    for i in 0..50 {
        l.line(
            at(35, i),
            "shop-web",
            "warn",
            "POST /login 403",
            &[("client_ip", json!("[IPV4]"))],
        );
    }
    // Minute 40: an order of 250 000 RUB; minute 42: one of 0.
    l.line(
        at(40, 3),
        "checkout",
        "info",
        "order A-900001 created, 40 items, total 250000.00 RUB",
        &[("user_id", json!("u-77"))],
    );
    l.line(
        at(42, 3),
        "checkout",
        "info",
        "order A-900002 created, 1 items, total 0.00 RUB",
        &[("user_id", json!("u-78"))],
    );
    // Minutes 45–49: one user creates 12 orders (every 20 s).
    for i in 0..12 {
        l.line(
            at(45, 1 + 20 * i),
            "checkout",
            "info",
            &format!("order A-91{i:04} created, 1 items, total 990.00 RUB"),
            &[("user_id", json!("u-913"))],
        );
    }
    // Minutes 50–52: six failed payments of one user (every 30 s).
    for i in 0..6 {
        l.line(
            at(50, 2 + 30 * i),
            "payments",
            "error",
            &format!("payment A-92{i:04} failed: card declined"),
            &[("user_id", json!("u-921"))],
        );
    }
    // Minute 55: line 4 stops; minute 57: shop-api loses its queue; minute 60: mes-api's
    // FATAL.
    l.line(
        at(55, 5),
        "mes",
        "warn",
        "line 4: stopped: emergency stop pressed",
        &[],
    );
    l.line(
        at(57, 5),
        "shop-api",
        "error",
        "rabbitmq channel closed: NOT_FOUND - no queue 'shop.orders'",
        &[],
    );
    l.line(
        at(60, 5),
        "mes-api",
        "FATAL",
        "database connection lost: too many clients",
        &[],
    );
    // Minutes 62–70: account b2b-2 calls shop-api every second besides its usual 4 times
    // a minute.
    for i in 0..8 * 60 {
        l.line(
            at(62, i),
            "shop-api",
            "info",
            "GET /api/v1/stock 200",
            &[
                ("account", json!("b2b-2")),
                ("client_ip", json!("198.18.0.2")),
                ("duration_ms", json!(80)),
            ],
        );
    }
    l
}

/// The alerts that must fire: name, identifying labels, and the window (minutes from T0)
/// in which each must fire.
fn expected() -> Vec<(&'static str, &'static str, f64, f64)> {
    vec![
        ("ShopRequestSpikeByIp", "client_ip=203.0.113.7", 20.5, 21.5),
        ("ShopRequestSpike", "service=shop-web", 22.5, 24.0),
        (
            "ShopAuthFailuresByIp",
            "client_ip=198.51.100.23",
            31.0,
            32.5,
        ),
        (
            "ShopLargeOrder",
            "order_id=A-900001,service=checkout,user_id=u-77",
            40.0,
            41.0,
        ),
        ("ShopOrderAmountUnusual", "", 40.0, 41.0),
        (
            "ShopNonPositiveOrderAmount",
            "order_id=A-900002,service=checkout,user_id=u-78",
            42.0,
            43.0,
        ),
        ("ShopUserOrderBurst", "user_id=u-913", 47.5, 49.0),
        ("ShopUserPaymentFailures", "user_id=u-921", 51.5, 53.0),
        ("MesLineStopped", "line=4", 55.0, 56.0),
        ("ShopMessagingErrors", "service=shop-api", 57.0, 58.0),
        ("ShopServiceFatal", "service=mes-api", 60.0, 61.0),
        (
            "ShopUnusualApiUsage",
            "account=b2b-2,service=shop-api,user_id=b2b-2",
            68.0,
            70.5,
        ),
    ]
}

/// The identifying labels of an alert (all but its name and the rule's own labels).
fn key(a: &dozor_rules::Alert) -> String {
    a.labels
        .iter()
        .filter(|l| {
            !matches!(
                l.name.as_str(),
                "alertname" | "severity" | "anomaly_type" | "team"
            )
        })
        .map(|l| format!("{}={}", l.name, l.value))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn the_shop_pack_fires_exactly_on_the_injected_anomalies() {
    let logs = generate();
    let mut groups: Vec<Group> = dozor_rules::packs::parse("shop")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|g| Group::new(g, 60_000))
        .collect();
    assert_eq!(groups.len(), 9);
    let metrics = MemStore::new();
    let engine = Engine::new(EngineOptions::default());
    let src = Sources {
        engine: &engine,
        metrics: &metrics,
        logs: &logs.records,
    };
    // What the recording rules wrote, by series.
    let mut recorded: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut fired = Vec::new();
    let mut resolved = 0;
    let mut t = T0 + 30_000;
    while t <= T0 + MINUTES * MIN {
        for g in &mut groups {
            g.eval_in(t, src, &mut |batch| {
                for (labels, samples) in batch {
                    // `name{}` for a series without labels.
                    recorded
                        .entry(labels.to_string().trim_end_matches("{}").to_owned())
                        .or_default()
                        .extend(samples.iter().copied());
                    metrics.append(labels, samples);
                }
                Ok(())
            });
            for r in &g.rules {
                assert!(
                    r.last_error.is_none(),
                    "{}: {:?}",
                    r.rule.name,
                    r.last_error
                );
            }
            for tr in g.take_transitions() {
                match tr {
                    Transition::Fired(a) => fired.push(a),
                    Transition::Resolved(_) => resolved += 1,
                }
            }
        }
        t += 30_000;
    }

    // The recorded business series, at 15 minutes, against the generator's rates.
    let at = |series: &str, minute: i64| -> Option<f64> {
        recorded
            .get(series)?
            .iter()
            .find(|s| s.t == T0 + minute * MIN)
            .map(|s| s.v)
    };
    assert_eq!(at("shop:orders_created:per_minute", 15), Some(10.0));
    assert_eq!(at("shop:orders_paid:per_minute", 15), Some(9.0));
    assert_eq!(at("shop:payments:per_minute", 15), Some(9.0));
    assert_eq!(at("shop:payments_failed:per_minute", 15), Some(0.0));
    assert_eq!(at("shop:checkout_conversion:ratio", 15), Some(0.9));
    let avg = at("shop:order_amount:avg5m", 15).unwrap();
    assert!((50.0..20_000.0).contains(&avg), "{avg}");
    let max = at("shop:order_amount:max5m", 15).unwrap();
    assert!(max >= avg && max < 20_000.0, "{max}");
    for line in 1..=6 {
        assert_eq!(
            at(
                &format!("mes_line:batches_finished:per_minute{{line=\"{line}\"}}"),
                15
            ),
            Some(1.0),
            "line {line}"
        );
        let y = at(
            &format!("mes_line:yield_percent:avg15m{{line=\"{line}\"}}"),
            15,
        )
        .unwrap();
        assert!((90.0..100.0).contains(&y), "{y}");
    }
    assert_eq!(at("mes:batches_finished:per_minute", 15), Some(6.0));
    assert_eq!(
        at("service:http_requests:per_minute{service=\"shop-web\"}", 15),
        Some(60.0)
    );
    assert_eq!(
        at("service:http_requests:per_minute{service=\"shop-api\"}", 15),
        Some(20.0)
    );
    assert_eq!(
        at(
            "account:api_requests:count5m{account=\"b2b-3\", service=\"shop-api\"}",
            15
        ),
        Some(20.0)
    );
    assert_eq!(
        at("service:log_lines:count5m{service=\"crm\"}", 15),
        Some(60.0)
    );
    assert_eq!(at("service:log_errors:count5m{service=\"crm\"}", 15), None);
    let ratio = at("service:log_errors:ratio5m{service=\"shop-web\"}", 15).unwrap();
    assert!(ratio > 0.0 && ratio < 0.02, "{ratio}");
    let p95 = at("service:duration_ms:p95_5m{service=\"shop-api\"}", 15).unwrap();
    assert!((300.0..400.0).contains(&p95), "{p95}");

    // Exactly the injected anomalies fire, each in its window.
    let got: Vec<(String, String, f64)> = fired
        .iter()
        .map(|a| {
            (
                a.labels.get("alertname").unwrap().to_owned(),
                key(a),
                (a.fired_at_ms.unwrap() - T0) as f64 / MIN as f64,
            )
        })
        .collect();
    let mut want = expected();
    assert_eq!(
        got.len(),
        want.len(),
        "fired: {:#?}",
        got.iter()
            .map(|(n, k, m)| format!("{n} {k} at minute {m:.1}"))
            .collect::<Vec<_>>()
    );
    for (name, key, minute) in &got {
        let i = want
            .iter()
            .position(|(n, k, from, to)| n == name && k == key && minute >= from && minute <= to)
            .unwrap_or_else(|| panic!("unexpected: {name} {key} at minute {minute:.1}"));
        want.remove(i);
    }
    assert!(want.is_empty(), "did not fire: {want:?}");
    assert_eq!(resolved, fired.len(), "every alert is over by the end");

    // Anomalies carry their type; the annotations are rendered.
    let by_name: BTreeMap<String, &dozor_rules::Alert> = fired
        .iter()
        .map(|a| (a.labels.get("alertname").unwrap().to_owned(), a))
        .collect();
    for (name, kind) in [
        ("ShopRequestSpikeByIp", Some("attack")),
        ("ShopAuthFailuresByIp", Some("attack")),
        ("ShopRequestSpike", Some("attack")),
        ("ShopLargeOrder", Some("business")),
        ("ShopOrderAmountUnusual", Some("business")),
        ("ShopUserOrderBurst", Some("behaviour")),
        ("ShopUserPaymentFailures", Some("behaviour")),
        ("ShopUnusualApiUsage", Some("api_usage")),
        ("ShopNonPositiveOrderAmount", None),
        ("MesLineStopped", None),
        ("ShopMessagingErrors", None),
        ("ShopServiceFatal", None),
    ] {
        assert_eq!(by_name[name].labels.get("anomaly_type"), kind, "{name}");
        assert!(by_name[name].labels.get("severity").is_some(), "{name}");
        assert!(
            by_name[name].annotations.contains_key("description"),
            "{name}"
        );
    }
    assert_eq!(
        by_name["ShopLargeOrder"].annotations["summary"],
        "Order A-900001: 250000.00 RUB"
    );
    assert_eq!(
        by_name["ShopAuthFailuresByIp"].annotations["summary"],
        "IP 198.51.100.23: 23 refused requests (401/403) in 5 minutes"
    );
    assert_eq!(
        by_name["ShopServiceFatal"].annotations["summary"],
        "mes-api: 1 FATAL lines in 5 minutes"
    );
    assert_eq!(
        by_name["ShopServiceFatal"].labels.get("severity"),
        Some("critical")
    );
}
