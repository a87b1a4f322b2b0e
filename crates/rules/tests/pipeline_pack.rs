//! Seed 001's rule pack (`deploy/rules/pipeline.yml`, shipped as `pack:pipeline`) over a
//! generated hour of its three streams: normal traffic (logs, CPU/latency metrics and
//! transactions spread over users and services so that no rule should fire) with eight
//! injected anomalies at known minutes. The messages are decoded by the same decoders the
//! Kafka routes use (`ndjson`, `record` with `metric_prefix: app_`, `events` of type
//! `transaction`), evaluated every 30 s as the server would, and the alerts that fire
//! must be exactly the injected ones, each within its injection window, and all must
//! resolve once the anomaly is over.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::BTreeMap;

use dozor_model::LogRecord;
use dozor_promql::{Engine, EngineOptions};
use dozor_rules::group::Sources;
use dozor_rules::mem::MemStore;
use dozor_rules::{Group, Transition};

const T0: i64 = 1_764_500_000_000;
const MIN: i64 = 60_000;

/// A small deterministic generator (64-bit LCG), so the "random" traffic is the same on
/// every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

#[derive(Default)]
struct Streams {
    logs: Vec<LogRecord>,
    metrics: MemStore,
}

impl Streams {
    fn log(&mut self, t: i64, level: &str, service: &str, user: &str, message: &str) {
        let line = serde_json::json!({
            "timestamp": t, "level": level, "service": service, "user_id": user,
            "message": message,
        });
        let opts = dozor_ingest::ndjson::NdjsonOptions::new(0);
        let mut records = dozor_ingest::ndjson::parse(line.to_string().as_bytes(), &opts).unwrap();
        let pipeline = dozor_ingest::pipeline::Pipeline::default();
        for r in &mut records {
            pipeline.apply(r);
        }
        self.logs.extend(records);
    }

    fn metric(&mut self, t: i64, service: &str, cpu: f64, latency: f64) {
        let body = serde_json::json!({
            "timestamp": t, "service": service, "cpu_usage": cpu, "latency_ms": latency,
        });
        for (labels, samples) in
            dozor_ingest::json::parse_record(body.to_string().as_bytes(), 0, "app_").unwrap()
        {
            self.metrics.append(labels, samples);
        }
    }

    fn transaction(&mut self, t: i64, user: &str, amount: f64) {
        let body = serde_json::json!({
            "timestamp": t, "user_id": user, "amount": (amount * 100.0).round() / 100.0,
            "currency": "RUB",
        });
        let records =
            dozor_ingest::events::parse(body.to_string().as_bytes(), 0, Some("transaction"))
                .unwrap();
        self.logs.extend(records);
    }
}

/// An hour of traffic with the anomalies of [`expected`] injected.
fn generate() -> Streams {
    let mut s = Streams::default();
    let mut rng = Lcg(7);
    let users: Vec<String> = (1..=20).map(|i| format!("u{i}")).collect();
    let services = ["api", "db", "payments"];
    let mut next_user = 0;
    let mut user = move || {
        next_user = (next_user + 1) % 20;
        users[next_user].clone()
    };
    let end = T0 + 65 * MIN;
    let mut t = T0;
    while t < end {
        let m = (t - T0) / MIN;
        let sec = (t - T0) % MIN / 1000;
        // Logs: an info line per service every 10 s, an error every 20 s somewhere.
        if sec % 10 == 0 {
            for svc in services {
                s.log(t, "INFO", svc, &user(), "request served");
            }
        }
        if sec % 20 == 0 {
            s.log(
                t,
                "ERROR",
                services[(m % 3) as usize],
                &user(),
                "upstream timeout",
            );
        }
        // Metrics every 15 s: CPU 20–60 %, latency 50–400 ms…
        if sec % 15 == 0 {
            for svc in ["api", "db"] {
                let (mut cpu, mut latency) = (rng.range(20.0, 60.0), rng.range(50.0, 400.0));
                // … except: api's CPU at 92 % for minutes 30–33 (HighCpu after 2 m);
                if svc == "api" && (30..34).contains(&m) {
                    cpu = 92.0;
                }
                // db's latency at 1500 ms for one sample at minute 40 (HighLatency);
                if svc == "db" && m == 40 && sec == 0 {
                    latency = 1500.0;
                }
                // api's CPU and latency both high for minutes 45–47 (HighCpu again,
                // HighLatency, HighCpuAndLatency).
                if svc == "api" && (45..48).contains(&m) {
                    cpu = 95.0;
                    latency = 1800.0;
                }
                s.metric(t, svc, cpu, latency);
            }
        }
        // Transactions every 20 s, users in turn, 10–5000.
        if sec % 20 == 0 {
            let amount = rng.range(10.0, 5000.0);
            s.transaction(t + 1, &user(), amount);
        }
        t += 1000;
    }
    // Minute 10: 25 errors from payments in 50 s (ErrorSpike).
    for i in 0..25 {
        s.log(
            T0 + 10 * MIN + i * 2000,
            "ERROR",
            "payments",
            &format!("u{}", i % 20 + 1),
            "card declined",
        );
    }
    // Minute 20: one "failed" message (FailedMessage for payments).
    s.log(
        T0 + 20 * MIN + 5000,
        "WARN",
        "payments",
        "u4",
        "Payment FAILED for order 8812",
    );
    // Minute 25: six errors of user u13 in 2 minutes (UserErrorSpike).
    for i in 0..6 {
        s.log(
            T0 + 25 * MIN + i * 20_000,
            "ERROR",
            "api",
            "u13",
            "session expired",
        );
    }
    // Minute 50: a transaction of 25 000 by u7 (LargeTransaction).
    s.transaction(T0 + 50 * MIN + 3000, "u7", 25_000.0);
    // Minute 55: eight transactions of u3 in 2 minutes (FrequentTransactions).
    for i in 0..8 {
        s.transaction(T0 + 55 * MIN + i * 15_000, "u3", 120.0);
    }
    s
}

/// The alerts that must fire: name, identifying label, and the window (minutes from T0)
/// in which each must fire.
fn expected() -> Vec<(&'static str, &'static str, i64, i64)> {
    vec![
        ("ErrorSpike", "", 10, 11),
        ("FailedMessage", "service=payments", 20, 21),
        ("UserErrorSpike", "user_id=u13", 26, 27),
        ("HighCpu", "service=api", 32, 33),
        ("HighLatency", "service=db", 40, 41),
        ("HighCpu", "service=api", 47, 48),
        ("HighCpuAndLatency", "service=api", 45, 46),
        ("HighLatency", "service=api", 45, 46),
        ("LargeTransaction", "user_id=u7", 50, 51),
        ("FrequentTransactions", "user_id=u3", 56, 57),
    ]
}

#[test]
fn every_seed_001_rule_fires_exactly_on_its_injected_anomaly() {
    let s = generate();
    let mut groups: Vec<Group> = dozor_rules::packs::parse("pipeline")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|g| Group::new(g, 60_000))
        .collect();
    assert_eq!(groups.len(), 3);
    let engine = Engine::new(EngineOptions::default());
    let src = Sources {
        engine: &engine,
        metrics: &s.metrics,
        logs: &s.logs,
    };
    let mut fired = Vec::new();
    let mut resolved = 0;
    let mut t = T0 + 30_000;
    while t <= T0 + 65 * MIN {
        for g in &mut groups {
            g.eval_in(t, src, &mut |_| Ok(()));
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

    let describe = |a: &dozor_rules::Alert| {
        let key: Vec<String> = a
            .labels
            .iter()
            .filter(|l| l.name == "service" || l.name == "user_id")
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        (a.labels.get("alertname").unwrap().to_owned(), key.join(","))
    };
    let got: Vec<(String, String, i64)> = fired
        .iter()
        .map(|a| {
            let (name, key) = describe(a);
            (name, key, a.fired_at_ms.unwrap())
        })
        .collect();
    let mut want = expected();
    assert_eq!(
        got.len(),
        want.len(),
        "fired: {:#?}",
        got.iter()
            .map(|(n, k, t)| format!("{n} {k} at minute {:.1}", (t - T0) as f64 / MIN as f64))
            .collect::<Vec<_>>()
    );
    for (name, key, at) in &got {
        let minute = (at - T0) as f64 / MIN as f64;
        let i = want
            .iter()
            .position(|(n, k, from, to)| {
                n == name && k == key && minute >= *from as f64 && minute <= *to as f64
            })
            .unwrap_or_else(|| panic!("unexpected: {name} {key} at minute {minute:.1}"));
        want.remove(i);
    }
    assert!(want.is_empty(), "did not fire: {want:?}");
    // Everything is over by the end of the hour.
    assert_eq!(resolved, fired.len());

    // Every alert is an anomaly with seed 001's type, and its annotations are rendered.
    let by_name: BTreeMap<String, &dozor_rules::Alert> = fired
        .iter()
        .map(|a| (a.labels.get("alertname").unwrap().to_owned(), a))
        .collect();
    let kinds = [
        ("ErrorSpike", "logs"),
        ("FailedMessage", "logs"),
        ("UserErrorSpike", "logs"),
        ("HighCpu", "metrics"),
        ("HighLatency", "metrics"),
        ("HighCpuAndLatency", "metrics"),
        ("LargeTransaction", "transactions"),
        ("FrequentTransactions", "transactions"),
    ];
    for (name, kind) in kinds {
        assert_eq!(
            by_name[name].labels.get("anomaly_type"),
            Some(kind),
            "{name}"
        );
    }
    assert_eq!(
        by_name["LargeTransaction"].annotations["summary"],
        "User u7: transaction of 25000"
    );
    assert_eq!(
        by_name["HighLatency"].annotations["summary"],
        "api: latency 1800 ms"
    );
    assert!(
        by_name["FrequentTransactions"].annotations["summary"].starts_with("User u3: "),
        "{:?}",
        by_name["FrequentTransactions"].annotations
    );
}

/// A LogQL rule grouping by a field the records lack (`sum by (user_id)` over lines
/// without one) gets a sample with no labels, as PromQL would, not an error.
#[test]
fn grouping_by_a_missing_field_gives_an_unlabelled_sample() {
    let mut s = Streams::default();
    for i in 0..3 {
        s.log(T0 + i * 1000, "error", "shop", "", "disk failed");
    }
    let text = "groups:\n- name: g\n  type: logql\n  rules:\n  - alert: Errors\n    expr: sum by (user_id) (count_over_time({level=\"error\"}[3m])) >= 3\n";
    let mut g = Group::new(
        dozor_rules::file::parse(text, "t.yml").unwrap().remove(0),
        60_000,
    );
    let engine = Engine::new(EngineOptions::default());
    let src = Sources {
        engine: &engine,
        metrics: &s.metrics,
        logs: &s.logs,
    };
    g.eval_in(T0 + MIN, src, &mut |_| Ok(()));
    assert_eq!(g.rules[0].last_error, None);
    let alerts: Vec<_> = g
        .alerts()
        .map(|(_, a)| (a.labels.clone(), a.value))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0.get("user_id"), None);
    assert_eq!(alerts[0].1, 3.0);
}
