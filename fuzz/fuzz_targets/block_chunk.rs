//! Fuzzes the block readers: chunk decoding (timestamps, pco, raw values), aggregate
//! chunks of downsampled blocks and index decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use dozor_tsdb::chunk::{MAX_CHUNK_SAMPLES, decode, decode_aggregate};
    let _ = decode(data, MAX_CHUNK_SAMPLES, &mut Vec::new());
    for which in dozor_tsdb::Aggregate::ALL {
        let _ = decode_aggregate(data, which, MAX_CHUNK_SAMPLES, &mut Vec::new());
    }
    let _ = dozor_tsdb::block::check_index(data);
});
