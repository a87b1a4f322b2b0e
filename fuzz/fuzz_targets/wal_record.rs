//! Fuzzes the WAL record decoder (what replay feeds every payload whose CRC matched).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dozor_tsdb::record::Record::decode(data);
});
