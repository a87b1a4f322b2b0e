//! Fuzzes the log template miner with untrusted log lines: every line falls into a shape
//! that has a cluster, the clusters count every line exactly once, and nothing panics —
//! whatever the bytes, separators and lengths.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut miner = dozor_detect::logtemplate::TemplateMiner::new(
        dozor_detect::logtemplate::Config {
            max_shapes: 64,
            ..Default::default()
        },
    );
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        miner.push(line);
    }
    let clusters = miner.clusters();
    let counted: u64 = clusters.templates().iter().map(|(_, n)| n).sum();
    assert!(counted <= lines.len() as u64, "no line counted twice");
    if miner.shapes() < 64 {
        assert_eq!(counted, lines.len() as u64, "every line counted");
    }
});
