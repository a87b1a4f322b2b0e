//! Fuzzes the remote_write decoder, compressed and not: a batch or a named error, never a
//! panic or an allocation beyond the limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = dozor_ingest::Limits { max_decoded_bytes: 1 << 20, max_series: 10_000, max_samples: 100_000 };
    let _ = dozor_ingest::remote_write::decode(data, &limits);
    let _ = dozor_ingest::remote_write::decode_protobuf(data, &limits);
});
