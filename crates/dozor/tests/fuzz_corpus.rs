//! Replays the fuzz corpora in `fuzz/corpus/` through the same parsers the fuzz targets
//! call, so every crash a fuzzer once found stays fixed. (The fuzzers themselves run
//! outside CI: see `fuzz/Cargo.toml`.)

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn config_yaml_corpus_parses_or_errors_with_a_location() {
    for (path, data) in corpus("config_yaml") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Err(e) = dozor::config::Config::parse(text, "fuzz.yml") {
            assert_eq!(
                e.source.as_deref(),
                Some("fuzz.yml"),
                "{}: {e}",
                path.display()
            );
            assert!(!e.message.is_empty(), "{}", path.display());
        }
    }
}

#[test]
fn authorization_header_corpus_never_panics() {
    let mut accepted = 0;
    for (_, data) in corpus("authorization_header") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        accepted += usize::from(dozor_api::auth::parse_authorization(text).is_some());
        let _ = text.parse::<dozor_model::TenantId>();
        let _ = text.parse::<dozor_model::ScopeSet>();
        let _ = text.parse::<dozor_model::Role>();
    }
    assert_eq!(
        accepted, 2,
        "the bearer and basic samples parse, the broken ones do not"
    );
}

#[test]
fn audit_record_corpus_never_panics() {
    let mut records = 0;
    for (_, data) in corpus("audit_record") {
        if let Ok(r) = serde_json::from_slice::<dozor_audit::Record>(&data) {
            assert_eq!(r.compute_hash().len(), 64);
            records += 1;
        }
        let _ = serde_json::from_slice::<dozor_audit::Checkpoint>(&data);
    }
    assert_eq!(records, 2);
}

#[test]
fn remote_write_corpus_decodes_or_errors() {
    let limits = dozor_ingest::Limits::default();
    let mut ok = 0;
    for (_, data) in corpus("remote_write") {
        ok += usize::from(dozor_ingest::remote_write::decode(&data, &limits).is_ok());
        ok += usize::from(dozor_ingest::remote_write::decode_protobuf(&data, &limits).is_ok());
    }
    assert!(ok >= 2, "the snappy and the raw protobuf seeds decode");
}

#[test]
fn exposition_corpus_parses_or_errors_with_a_line() {
    let limits = dozor_ingest::Limits::default();
    for (path, data) in corpus("exposition") {
        if let Ok(text) = std::str::from_utf8(&data) {
            for format in [
                dozor_ingest::exposition::Format::Prometheus,
                dozor_ingest::exposition::Format::OpenMetrics,
            ] {
                if let Err(e) = dozor_ingest::exposition::parse(text, format, 0, &limits) {
                    assert!(
                        e.field.starts_with("line ") || e.field == "body",
                        "{}: {e}",
                        path.display()
                    );
                }
            }
        }
        let _ = dozor_ingest::json::parse(&data, 0, &limits);
    }
}

#[test]
fn wal_and_block_corpora_never_panic() {
    let mut decoded = 0;
    for (_, data) in corpus("wal_record") {
        decoded += usize::from(dozor_tsdb::record::Record::decode(&data).is_ok());
    }
    for (_, data) in corpus("block_chunk") {
        let max = dozor_tsdb::chunk::MAX_CHUNK_SAMPLES;
        decoded += usize::from(dozor_tsdb::chunk::decode(&data, max, &mut Vec::new()).is_ok());
        for which in dozor_tsdb::Aggregate::ALL {
            let _ = dozor_tsdb::chunk::decode_aggregate(&data, which, max, &mut Vec::new());
        }
        decoded += usize::from(dozor_tsdb::block::check_index(&data).is_ok());
        let (file, chunk) = data.split_at(data.len() / 2);
        let times = dozor_tsdb::chunk::SharedTimes::decode(file).unwrap_or_default();
        let _ = dozor_tsdb::chunk::decode_in(chunk, max, Some(&times), &mut Vec::new());
    }
    assert!(decoded >= 6, "the generated seeds decode ({decoded})");
}

#[test]
fn pii_mask_corpus_masks_without_panicking() {
    let m = dozor_ingest::pii::Masker::new(&dozor_ingest::pii::PiiConfig::default());
    let mut found = 0;
    for (_, data) in corpus("pii_mask") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        found += m.mask(text, b"fuzz").counts.values().sum::<u32>();
    }
    assert!(found >= 8, "the seeds hold PII that is found ({found})");
}

#[test]
fn ndjson_corpus_decodes_or_names_the_line() {
    let opts = dozor_ingest::ndjson::NdjsonOptions::new(0);
    let mut decoded = 0;
    for (path, data) in corpus("ndjson") {
        match dozor_ingest::ndjson::parse(&data, &opts) {
            Ok(records) => decoded += records.len(),
            Err(e) => assert!(
                e.field.starts_with("line ") || e.field == "body",
                "{}: {e}",
                path.display()
            ),
        }
    }
    assert!(decoded >= 2, "the seed's lines decode ({decoded})");
}

#[test]
fn es_bulk_corpus_judges_items_or_names_the_line() {
    let opts = dozor_ingest::ndjson::NdjsonOptions::new(0);
    let mut items = 0;
    for (path, data) in corpus("es_bulk") {
        match dozor_ingest::es_bulk::parse(&data, None, &opts) {
            Ok(judged) => items += judged.len(),
            Err(e) => assert!(
                e.field.starts_with("line ") || e.field == "body",
                "{}: {e}",
                path.display()
            ),
        }
    }
    assert!(items >= 3, "the seed's items are judged ({items})");
}

#[test]
fn loki_push_corpus_decodes_or_names_the_stream() {
    let limits = dozor_ingest::Limits::default();
    let mut decoded = 0;
    for (_, data) in corpus("loki_push") {
        decoded += dozor_ingest::loki::decode_protobuf(&data, &limits).map_or(0, |r| r.len());
        decoded += dozor_ingest::loki::decode_json(&data).map_or(0, |r| r.len());
        if let Ok(text) = std::str::from_utf8(&data) {
            decoded += usize::from(dozor_ingest::loki::parse_labels(text).is_ok());
        }
    }
    assert!(
        decoded >= 3,
        "the JSON, protobuf and label seeds decode ({decoded})"
    );
}

#[test]
fn syslog_corpus_parses_or_errors() {
    let mut parsed = 0;
    for (_, data) in corpus("syslog") {
        parsed += usize::from(dozor_ingest::syslog::parse(&data, 0).is_ok());
        let mut framer = dozor_ingest::syslog::Framer::default();
        parsed += framer.push(&data).map_or(0, |f| f.len());
    }
    assert!(parsed >= 3, "the seeds parse ({parsed})");
}

#[test]
fn events_corpus_decodes_or_names_the_field() {
    let pipeline = dozor_ingest::pipeline::Pipeline::default();
    let mut decoded = 0;
    for (path, data) in corpus("events") {
        match dozor_ingest::events::parse(&data, 0, None) {
            Ok(records) => {
                decoded += 1;
                for mut r in records {
                    pipeline.apply(&mut r);
                }
            }
            Err(e) => assert!(!e.field.is_empty(), "{}: {e}", path.display()),
        }
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = dozor_model::logfmt::parse(text);
        }
    }
    assert!(decoded >= 3, "the seeds decode ({decoded})");
}

#[test]
fn bus_message_corpus_decodes_or_leaves_a_dead_letter_with_a_reason() {
    use dozor_ingest::source::{Format, Message, Position, Route, decode};
    let routes: Vec<Route> = Format::ALL
        .into_iter()
        .map(|f| Route::new("t", f))
        .collect();
    let mut dead = 0;
    for (path, data) in corpus("bus_message") {
        for route in 0..routes.len() {
            let msg = Message {
                route,
                topic: "t",
                position: Position::Unknown,
                payload: &data,
            };
            let d = decode("fuzz", &routes, &[msg], 1_796_119_200_000_000_000);
            assert!(d.dead <= 1, "{}", path.display());
            for r in d
                .logs
                .iter()
                .filter(|r| r.stream.get("dead_letter").is_some())
            {
                let reason = r.fields.iter().find(|(k, _)| k == "reason");
                assert!(
                    reason.is_some_and(|(_, v)| !v.is_empty()),
                    "{}",
                    path.display()
                );
            }
            dead += d.dead;
        }
    }
    assert!(dead > 0, "the corpus holds messages that do not decode");
}

#[test]
fn alert_rule_corpus_loads_or_errors_with_a_location() {
    let (mut files, mut specs) = (0, 0);
    for (path, data) in corpus("alert_rule") {
        if let Ok(text) = std::str::from_utf8(&data) {
            match dozor_rules::file::parse(text, "fuzz.yml") {
                Ok(_) => files += 1,
                Err(errors) => {
                    let e = &errors[0];
                    assert!(
                        e.line > 0 || !e.message.is_empty(),
                        "{}: {e}",
                        path.display()
                    );
                }
            }
        }
        match dozor_rules::structured::from_json(&data).and_then(|s| s.compile("fuzz")) {
            Ok(rule) => {
                specs += 1;
                assert!(!rule.expr.is_empty(), "{}", path.display());
            }
            Err(e) => assert!(!e.message.is_empty(), "{}: {e}", path.display()),
        }
    }
    assert!(
        files >= 3 && specs >= 3,
        "the seeds load ({files} files, {specs} rules)"
    );
}

#[test]
fn alertmanager_config_corpus_loads_or_errors() {
    let (mut configs, mut matchers) = (0, 0);
    for (path, data) in corpus("alertmanager_config") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match dozor_alerting::matchers::parse_matchers(text) {
            Ok(m) => {
                matchers += 1;
                assert!(!m.is_empty(), "{}", path.display());
            }
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
        match dozor_alerting::config::AlertmanagerConfig::parse(text)
            .and_then(dozor_alerting::config::AlertmanagerConfig::load)
        {
            Ok(loaded) => {
                configs += 1;
                let labels = dozor_model::Labels::from_pairs([("alertname", "Fuzz")]).unwrap();
                assert!(
                    !loaded.route.routes_for(&labels).is_empty(),
                    "{}",
                    path.display()
                );
            }
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
    }
    assert!(
        configs >= 2 && matchers >= 2,
        "the seeds load ({configs} configurations, {matchers} matcher lists)"
    );
}

#[test]
fn alertmanager_api_corpus_reads_or_errors() {
    let (mut alerts, mut silences, mut clicks) = (0, 0, 0);
    for (path, data) in corpus("alertmanager_api") {
        match dozor_alerting::api::parse_alerts(&data, 1_000) {
            Ok(list) => {
                alerts += 1;
                for a in &list {
                    assert!(!a.labels.is_empty(), "{}", path.display());
                    assert!(
                        a.ends_at_ms.is_none_or(|e| e >= a.starts_at_ms),
                        "{}",
                        path.display()
                    );
                }
            }
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
        match dozor_alerting::api::parse_silence(&data, 1_000) {
            Ok(s) => {
                silences += 1;
                let mut set = dozor_alerting::silence::Silences::default();
                if let Ok(done) = set.upsert(s, 1_000, || "fuzz".into()) {
                    assert!(set.get(done.id()).is_some(), "{}", path.display());
                }
            }
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
        match dozor_alerting::interact::slack_click(&data) {
            Ok(c) => {
                clicks += 1;
                assert_eq!(c.key.len(), 16, "{}", path.display());
            }
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
        match dozor_alerting::interact::telegram_click(&data) {
            Ok(Some(c)) => {
                clicks += 1;
                assert_eq!(c.key.len(), 16, "{}", path.display());
            }
            Ok(None) => {}
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
    }
    assert!(
        alerts >= 1 && silences >= 1 && clicks >= 2,
        "the seeds read ({alerts} alert lists, {silences} silences, {clicks} button presses)"
    );
}

#[test]
fn template_corpus_parses_and_renders_or_errors() {
    use std::collections::BTreeMap;
    let labels = BTreeMap::from([("instance".to_owned(), "db:9100".to_owned())]);
    let cx = dozor_rules::template::Context {
        labels: &labels,
        value: 0.5,
        external_labels: &labels,
        external_url: "http://dozor",
        query: None,
    };
    let n = dozor_alerting::Notification {
        receiver: "ops".into(),
        group_key: "{}:{}".into(),
        group_labels: vec![("alertname".into(), "Down".into())],
        alerts: vec![dozor_alerting::Alert {
            labels: dozor_model::Labels::from_pairs([("alertname", "Down")]).unwrap(),
            annotations: BTreeMap::new(),
            starts_at_ms: 1_796_500_000_000,
            ends_at_ms: None,
            generator_url: String::new(),
        }],
        at_ms: 1_796_500_100_000,
    };
    let set = dozor_alerting::template::Templates::default();
    let r = dozor_alerting::template::Renderer::new(&set, &n, "http://dozor");
    let (mut prometheus, mut alertmanager) = (0, 0);
    for (path, data) in corpus("template") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match dozor_rules::template::Template::parse(text).and_then(|t| t.render(&cx)) {
            Ok(_) => prometheus += 1,
            Err(e) => assert!(!e.is_empty(), "{}", path.display()),
        }
        match r.html(text) {
            Ok(_) => alertmanager += 1,
            Err(e) => assert!(e.starts_with("template: "), "{}: {e}", path.display()),
        }
    }
    assert!(
        prometheus >= 1 && alertmanager >= 3,
        "the seeds render ({prometheus} as Prometheus', {alertmanager} as Alertmanager's)"
    );
}

#[test]
fn log_template_corpus_counts_every_line_once() {
    for (path, data) in corpus("log_template") {
        let text = String::from_utf8_lossy(&data);
        let mut miner =
            dozor_detect::logtemplate::TemplateMiner::new(dozor_detect::logtemplate::Config {
                max_shapes: 64,
                ..Default::default()
            });
        let lines: Vec<&str> = text.lines().collect();
        let shapes: Vec<_> = lines.iter().map(|l| miner.push(l)).collect();
        let clusters = miner.clusters();
        let counted: u64 = clusters.templates().iter().map(|(_, n)| n).sum();
        if miner.shapes() < 64 {
            assert_eq!(counted, lines.len() as u64, "{}", path.display());
            for s in shapes {
                assert!(clusters.cluster_of(s).is_some(), "{}", path.display());
            }
        }
    }
}

#[test]
fn kkt_event_corpus_parses_or_names_the_field() {
    let (mut events, mut refused) = (0, 0);
    let fleet = dozor_kkt::Fleet::new(dozor_kkt::FleetOptions::default());
    for (path, data) in corpus("kkt_event") {
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match dozor_kkt::parse_line(line, 180) {
                Ok(event) => {
                    events += 1;
                    fleet.apply(event, 1_790_000_000_000);
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.field.is_empty(), "{}: {e}", path.display());
                }
            }
        }
    }
    assert!(!fleet.tick(1_790_000_000_000).is_empty());
    assert!(
        events >= 8 && refused >= 5,
        "the corpus holds events and refusals ({events}, {refused})"
    );
}
