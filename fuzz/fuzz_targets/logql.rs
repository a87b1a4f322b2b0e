//! Fuzzes the LogQL parser and evaluator: any text parses or errors, and a query that
//! parses evaluates (instant and range) over a few records without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor_logs::logql::exercise(text);
    }
});
