//! The file tail through the real binary: lines written to a log file land in the log
//! store once each, across a rename rotation and a `kill -9` of Dozor mid-stream.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

const TOKEN: &str = "dzr_tail-test-token-0123456789";

fn append(path: &std::path::Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let text: String = (from..to)
        .map(|i| format!("register 7 wrote doc-{i} to the drive\n"))
        .collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// How many times each `doc-N` is stored.
fn stored(server: &Server) -> HashMap<usize, usize> {
    let now = dozor_model::time::now_ms() / 1000;
    let (start, end) = ((now - 3600).to_string(), (now + 3600).to_string());
    let mut seen = HashMap::new();
    for r in server.search_logs(
        TOKEN,
        &[
            ("query", "{service=\"kkt\"}"),
            ("start", &start),
            ("end", &end),
            ("limit", "10000"),
        ],
    ) {
        let msg = r["message"].as_str().unwrap();
        let n: usize = msg
            .split("doc-")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        *seen.entry(n).or_default() += 1;
    }
    seen
}

/// Waits until the source has saved checkpoints for `records` records and has nothing
/// left to read.
fn wait_checkpointed(server: &Server, records: u64) {
    let until = Instant::now() + Duration::from_secs(30);
    let value = |text: &str, name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{source=\"kkt\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    loop {
        let m = server.get_text("/metrics", TOKEN);
        let done = value(&m, "dozor_source_records_total").is_some_and(|r| r >= records)
            && value(&m, "dozor_source_lag_bytes") == Some(0);
        if done {
            return;
        }
        assert!(Instant::now() < until, "not checkpointed: {m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(server: &Server, n: usize) -> HashMap<usize, usize> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = stored(server);
        if seen.len() >= n || Instant::now() > until {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tailed_lines_survive_rotation_and_kill_9_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("kkt");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("driver.log");
    let config = dir.path().join("dozor.yml");
    std::fs::write(
        &config,
        format!(
            "sources:\n  files:\n    - name: kkt\n      paths: [{:?}]\n      labels: {{service: kkt}}\n      poll_interval: 50ms\n",
            logs.join("driver.log*").display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let env = [("DOZOR_ADMIN_TOKEN", TOKEN)];

    let server = Server::start_with(&data, &env, &args);
    append(&log, 0, 1000);
    let seen = wait_for(&server, 1000);
    assert_eq!(seen.len(), 1000, "first thousand lines");
    // Rename rotation, then more lines in both files while Dozor runs.
    std::fs::rename(&log, logs.join("driver.log.1")).unwrap();
    append(&logs.join("driver.log.1"), 1000, 1200);
    append(&log, 1200, 1500);
    assert_eq!(wait_for(&server, 1500).len(), 1500, "after the rotation");
    wait_checkpointed(&server, 1500);

    // kill -9 while lines keep coming.
    append(&log, 1500, 2500);
    let _ = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    drop(server);
    append(&log, 2500, 3000);
    let server = Server::start_with(&data, &env, &args);
    let seen = wait_for(&server, 3000);
    let lost: Vec<usize> = (0..3000).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        lost.is_empty(),
        "{} lines lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice = seen.values().filter(|c| **c > 1).count();
    // At-least-once: only the batch in flight at the kill may come twice.
    assert!(twice <= 1000, "{twice} lines stored twice");
    assert!(seen.keys().all(|k| *k < 3000));
    let before_kill_twice = (0..1500).filter(|i| seen[i] > 1).count();
    assert_eq!(
        before_kill_twice, 0,
        "lines checkpointed before the kill came again"
    );

    wait_checkpointed(&server, 1);
}
