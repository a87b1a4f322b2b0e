//! Fuzzes PII masking on arbitrary text (percent escapes, JSON, Cyrillic): a masked text,
//! never a panic, and no finding cut inside a character.
#![no_main]

use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static MASKER: OnceLock<dozor_ingest::pii::Masker> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let m = MASKER.get_or_init(|| {
        dozor_ingest::pii::Masker::new(&dozor_ingest::pii::PiiConfig::default())
    });
    let _ = m.mask(text, b"fuzz");
});
