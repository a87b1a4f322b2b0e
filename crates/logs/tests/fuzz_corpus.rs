//! Replays `fuzz/corpus/log_store/` and `fuzz/corpus/logql/` through what their fuzz
//! targets call, so every input a fuzzer once found stays harmless, and checks the seeds
//! still decode or parse.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

#[test]
fn log_store_corpus_never_panics_and_the_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/log_store");
    let mut decoded = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        decoded += usize::from(dozor_logs::record::decode(&data).is_ok());
        decoded += usize::from(
            dozor_logs::block::decode(&data, dozor_logs::block::MAX_BLOCK_ROWS).is_ok(),
        );
        decoded += usize::from(dozor_logs::part::check_index(&data).is_ok());
        let _ = dozor_logs::bloom::Bloom::decode(&mut dozor_model::packed::Reader::new(&data));
    }
    assert!(files >= 3, "the corpus holds the seeds ({files} files)");
    assert!(
        decoded >= 3,
        "the record, block and index seeds decode ({decoded})"
    );
}

#[test]
fn logql_corpus_never_panics_and_the_seeds_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/logql");
    let (mut files, mut parsed) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        if let Ok(text) = std::str::from_utf8(&data) {
            parsed += usize::from(dozor_logs::logql::exercise(text));
        }
    }
    assert!(files >= 20, "the corpus holds the seeds ({files} files)");
    assert!(parsed >= 20, "the seed queries parse ({parsed} of {files})");
}
