//! Fuzzes the Elasticsearch `_bulk` decoder: items judged one by one or the body refused
//! with the line named, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opts = dozor_ingest::ndjson::NdjsonOptions::new(1_796_119_200_000_000_000);
    let _ = dozor_ingest::es_bulk::parse(data, Some("fuzz"), &opts);
});
