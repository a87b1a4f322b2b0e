//! Fuzzes the Loki push decoders (snappy protobuf and JSON) and the label-set parser:
//! records or an error naming the stream, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = dozor_ingest::Limits { max_decoded_bytes: 1 << 20, max_series: 10_000, max_samples: 100_000 };
    let _ = dozor_ingest::loki::decode_protobuf(data, &limits);
    let _ = dozor_ingest::loki::decode_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor_ingest::loki::parse_labels(text);
    }
});
