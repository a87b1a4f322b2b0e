//! Fuzzes the block readers: chunk decoding (timestamps, pco, raw values) and index
//! decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dozor_tsdb::chunk::decode(data, &mut Vec::new());
    let _ = dozor_tsdb::block::check_index(data);
});
