//! Fuzzes the two ways rules come in: Prometheus rule files (YAML, with Dozor's `type`,
//! `cooldown` and `flapping`) and structured rules (JSON, through the API). Each either
//! loads or fails with a located error — file, line and column, or the field's path —
//! never a panic; a structured rule that compiles has an expression that parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = dozor_rules::file::parse(text, "fuzz.yml") {
            assert!(!errors.is_empty());
        }
    }
    if let Ok(spec) = dozor_rules::structured::from_json(data) {
        if let Ok(rule) = spec.compile("fuzz") {
            assert!(!rule.expr.is_empty());
        }
    }
});
