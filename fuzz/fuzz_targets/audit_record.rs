//! Fuzzes reading audit chain lines: any line is a record (whose hash can be recomputed) or
//! an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<dozor_audit::Record>(data) {
        let _ = record.compute_hash();
    }
    let _ = serde_json::from_slice::<dozor_audit::Checkpoint>(data);
});
