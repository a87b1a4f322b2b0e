//! Fuzzes the log store's readers of stored bytes: WAL batches, column blocks, part indexes
//! and bloom filters. Each returns records or an error, never a panic or an allocation
//! beyond its bounds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dozor_logs::record::decode(data);
    let _ = dozor_logs::block::decode(data, dozor_logs::block::MAX_BLOCK_ROWS);
    let _ = dozor_logs::part::check_index(data);
    let _ = dozor_logs::bloom::Bloom::decode(&mut dozor_model::packed::Reader::new(data));
});
