//! Fuzzes the block readers: chunk decoding (timestamps, pco, raw values, references to
//! shared time columns), aggregate chunks of downsampled blocks, `times` files and index
//! decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use dozor_tsdb::chunk::{MAX_CHUNK_SAMPLES, SharedTimes, decode, decode_aggregate, decode_in};
    let _ = decode(data, MAX_CHUNK_SAMPLES, &mut Vec::new());
    for which in dozor_tsdb::Aggregate::ALL {
        let _ = decode_aggregate(data, which, MAX_CHUNK_SAMPLES, &mut Vec::new());
    }
    let _ = dozor_tsdb::block::check_index(data);
    if let Ok(times) = SharedTimes::decode(data) {
        let _ = decode_in(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0], MAX_CHUNK_SAMPLES, Some(&times), &mut Vec::new());
    }
    // The first half as a times file, the rest as a chunk referring to it.
    let (file, chunk) = data.split_at(data.len() / 2);
    let times = SharedTimes::decode(file).unwrap_or_default();
    let _ = decode_in(chunk, MAX_CHUNK_SAMPLES, Some(&times), &mut Vec::new());
});
