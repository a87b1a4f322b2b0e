//! Fuzzes the text exposition / OpenMetrics parser and the JSON push decoder.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = dozor_ingest::Limits::default();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor_ingest::exposition::parse(text, dozor_ingest::exposition::Format::Prometheus, 0, &limits);
        let _ = dozor_ingest::exposition::parse(text, dozor_ingest::exposition::Format::OpenMetrics, 0, &limits);
    }
    let _ = dozor_ingest::json::parse(data, 0, &limits);
});
