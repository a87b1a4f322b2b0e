//! `dozor detect loghub` on the public Loghub-2k samples in `../shared/datasets/`, scored by
//! the benchmark's own scorer: the template miner groups at least 95 % of the lines exactly
//! as the ground truth does, on average over the eight sets (issue 10's minimum; the full
//! table is `bench/detect.sh`'s). Skipped, and says so, where the shared data is absent.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::PathBuf;

#[test]
fn loghub_templates_group_lines_as_the_ground_truth_does() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    if !data.join("loghub2k").is_dir() {
        println!("skipping: ../shared/datasets/loghub2k is absent");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args(["detect", "loghub", "--data"])
        .arg(data.join("loghub2k"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = String::from_utf8(run.stdout).unwrap();
    assert!(printed.contains("HDFS: 2000 lines"), "{printed}");
    let templates = std::fs::read_to_string(out.path().join("HDFS.templates.tsv")).unwrap();
    assert!(
        templates.contains("PacketResponder <*> for block <*> terminating"),
        "{templates}"
    );

    let score = std::process::Command::new("python3")
        .arg(data.join("loghub_ga.py"))
        .arg("--data")
        .arg(data.join("loghub2k"))
        .arg("--pred")
        .arg(out.path())
        .args([
            "--datasets",
            "HDFS,Spark,BGL,Windows,Linux,Android,Apache,Proxifier",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(score.stdout).unwrap();
    assert!(score.status.success(), "{table}");
    let average: f64 = table
        .lines()
        .find(|l| l.starts_with("AVERAGE"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|ga| ga.parse().ok())
        .unwrap_or_else(|| panic!("no AVERAGE row:\n{table}"));
    assert!(average >= 0.95, "grouping accuracy {average}:\n{table}");
}
