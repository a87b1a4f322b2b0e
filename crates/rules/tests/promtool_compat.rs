//! `dozor test rules` and `promtool test rules` (Debian's `prometheus` package) on the same
//! rule and unit-test files: every file under `tests/promtool/pass` passes under both,
//! every test file under `tests/promtool/fail` fails under both, and `promtool check rules`
//! and our checker agree on which rule files are valid. Without promtool (run
//! `scripts/setup-deps`) the promtool half is skipped with a message; ours always runs.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/promtool")
        .join(sub)
}

fn files(sub: &str, test_files: bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".yml") && name.ends_with("_test.yml") == test_files
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in {sub}");
    v
}

/// promtool's exit status for `args`, or `None` when promtool is not installed.
fn promtool(args: &[&str], file: &Path) -> Option<(bool, String)> {
    let out = Command::new("promtool")
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

fn skip_note(what: &str) {
    eprintln!(
        "promtool not found (scripts/setup-deps installs Debian's prometheus): skipping promtool's half of {what}"
    );
}

#[test]
fn passing_unit_tests_pass_under_both_tools() {
    for f in files("pass", true) {
        if let Err(errs) = dozor_rules::unit::run_file(&f) {
            panic!("dozor test rules {}:\n{}", f.display(), errs.join("\n"));
        }
        match promtool(&["test", "rules"], &f) {
            Some((ok, out)) => assert!(ok, "promtool test rules {}:\n{out}", f.display()),
            None => skip_note("the passing unit tests"),
        }
    }
}

#[test]
fn failing_unit_tests_fail_under_both_tools_with_reasons() {
    for f in files("fail", true) {
        let errs = dozor_rules::unit::run_file(&f)
            .err()
            .unwrap_or_else(|| panic!("dozor test rules {} passed", f.display()));
        let text = errs.join("\n");
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let expected = match name.as_str() {
            "early_alert_test.yml" => "alertname: InstanceDown, time: 6m",
            "wrong_annotation_test.yml" => "summary=\"Instance a:9100 down\"",
            "wrong_value_test.yml" => "expr: \"instance:cpu_busy:ratio\", time: 5m",
            "bad_rules_test.yml" => "could not parse expression",
            other => panic!("add the expected reason for {other}"),
        };
        assert!(text.contains(expected), "{name}: {text}");
        match promtool(&["test", "rules"], &f) {
            Some((ok, out)) => assert!(!ok, "promtool test rules {} passed:\n{out}", f.display()),
            None => skip_note("the failing unit tests"),
        }
    }
}

#[test]
fn rule_files_are_checked_alike() {
    for f in files("pass", false) {
        let groups = dozor_rules::file::load_file(&f).unwrap_or_else(|e| {
            panic!("{}: {}", f.display(), e[0]);
        });
        assert!(groups.iter().map(|g| g.rules.len()).sum::<usize>() > 0);
        if let Some((ok, out)) = promtool(&["check", "rules"], &f) {
            assert!(ok, "{out}");
        } else {
            skip_note("rule checking");
        }
    }
    for f in files("fail", false) {
        let errs = dozor_rules::file::load_file(&f).err().unwrap();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        // Both problems, each located: file, line, group, rule index and name.
        let file = f.display().to_string();
        assert!(
            text.iter().any(|e| e.starts_with(&format!(
                "{file}:6:15: group \"broken\", rule 1, \"HalfWritten\": could not parse expression"
            ))),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with(&format!("{file}:8:"))
                && e.contains("rule 2, \"not a metric name\": invalid recording rule name")),
            "{text:?}"
        );
        if let Some((ok, out)) = promtool(&["check", "rules"], &f) {
            assert!(!ok, "promtool accepted {}: {out}", f.display());
        } else {
            skip_note("rule checking");
        }
    }
}
