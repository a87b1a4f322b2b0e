//! Fuzzes the Alertmanager API v2 request bodies as Dozor reads them: a `POST
//! /api/v2/alerts` body either becomes alerts (each with a label, and an end not before its
//! start) or fails with a message; a `POST /api/v2/silences` body either becomes a silence
//! that the silence store accepts or refuses with a message — never a panic.
#![no_main]

use dozor_alerting::silence::Silences;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(alerts) = dozor_alerting::api::parse_alerts(data, 1_000) {
        for a in &alerts {
            assert!(!a.labels.is_empty());
            assert!(a.ends_at_ms.is_none_or(|e| e >= a.starts_at_ms));
        }
    }
    if let Ok(s) = dozor_alerting::api::parse_silence(data, 1_000) {
        let mut set = Silences::default();
        if let Ok(done) = set.upsert(s, 1_000, || "fuzz".into()) {
            assert!(set.get(done.id()).is_some());
        }
    }
});
