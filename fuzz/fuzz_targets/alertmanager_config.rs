//! Fuzzes Alertmanager's configuration and matcher syntax as Dozor reads them: an
//! `alertmanager.yml` either loads (its routing tree compiled, every route reachable from the
//! root) or fails with a message, and a matcher string either parses into matchers or fails
//! — never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = dozor_alerting::matchers::parse_matchers(text) {
        assert!(!m.is_empty());
    }
    if let Ok(config) = dozor_alerting::config::AlertmanagerConfig::parse(text)
        && let Ok(loaded) = config.load()
    {
        if let Ok(labels) = dozor_model::Labels::from_pairs([("alertname", "Fuzz")]) {
            assert!(
                !loaded.route.routes_for(&labels).is_empty(),
                "the root matches everything"
            );
        }
    }
});
