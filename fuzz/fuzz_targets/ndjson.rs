//! Fuzzes the NDJSON log decoder: records or an error naming the line, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opts = dozor_ingest::ndjson::NdjsonOptions::new(1_796_119_200_000_000_000);
    let _ = dozor_ingest::ndjson::parse(data, &opts);
});
