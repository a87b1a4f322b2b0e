//! Fuzzes `dozor.yml` parsing: any bytes give a config or an error with a location, never a
//! panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor::config::Config::parse(text, "fuzz.yml");
    }
});
