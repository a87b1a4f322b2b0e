//! Fuzzes the bodies Dozor's notification endpoints read from the network: a `POST
//! /api/v2/alerts` body either becomes alerts (each with a label, and an end not before its
//! start) or fails with a message; a `POST /api/v2/silences` body either becomes a silence
//! that the silence store accepts or refuses with a message; Slack's interaction form and
//! Telegram's update either name a button press or fail with a message, and Slack's
//! signature check never accepts a body it did not sign — never a panic.
#![no_main]

use dozor_alerting::interact;
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
    if let Ok(c) = interact::slack_click(data) {
        assert_eq!(c.key.len(), 16);
    }
    if let Ok(Some(c)) = interact::telegram_click(data) {
        assert_eq!(c.key.len(), 16);
    }
    let sig = interact::slack_sign(b"secret", "1000", data);
    assert!(interact::slack_verify(b"secret", "1000", &sig, data, 1_000).is_ok());
    assert!(interact::slack_verify(b"other", "1000", &sig, data, 1_000).is_err());
});
