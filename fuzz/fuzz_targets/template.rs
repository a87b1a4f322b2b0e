//! Fuzzes Go's template language as Dozor reads it: Prometheus' alert templates (rule
//! labels and annotations) and Alertmanager's notification templates (receivers' fields and
//! `templates:` files). A template either parses or fails with a message, and one that
//! parses renders or fails with a message — never a panic, a hang (the step budget) or
//! unbounded output.
#![no_main]

use std::collections::BTreeMap;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labels = BTreeMap::from([
        ("instance".to_owned(), "db:9100".to_owned()),
        ("job".to_owned(), "node".to_owned()),
    ]);
    let cx = dozor_rules::template::Context {
        labels: &labels,
        value: 0.5,
        external_labels: &labels,
        external_url: "http://dozor",
        query: None,
    };
    match dozor_rules::template::Template::parse(text) {
        Ok(t) => {
            if let Ok(out) = t.render(&cx) {
                assert!(out.len() <= 2 << 20, "bounded output");
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
    let alert = dozor_alerting::Alert {
        labels: dozor_model::Labels::from_pairs([("alertname", "Down"), ("job", "node")])
            .expect("valid labels"),
        annotations: BTreeMap::from([("summary".to_owned(), "<down>".to_owned())]),
        starts_at_ms: 1_796_500_000_000,
        ends_at_ms: None,
        generator_url: String::new(),
    };
    let n = dozor_alerting::Notification {
        receiver: "ops".into(),
        group_key: "{}:{}".into(),
        group_labels: vec![("alertname".into(), "Down".into())],
        alerts: vec![alert],
        at_ms: 1_796_500_100_000,
    };
    let mut set = dozor_alerting::template::Templates::default();
    let file = set.add(text);
    let r = dozor_alerting::template::Renderer::new(&set, &n, "http://dozor");
    for out in [r.text(text), r.html(text)] {
        match out {
            Ok(s) => assert!(s.len() <= 2 << 20, "bounded output"),
            Err(e) => assert!(!e.is_empty()),
        }
    }
    if file.is_ok() {
        let _ = r.text(r#"{{ template "__subject" . }}"#);
    }
});
