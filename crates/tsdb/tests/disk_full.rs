//! A full disk: appends fail with a disk-full error, and everything acknowledged before is
//! still there after reopening. Uses a 512 KiB tmpfs, which needs root (as CI and the dev
//! machines run); elsewhere the test says it was skipped.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::process::Command;

use dozor_model::{Labels, MatchOp, Matcher, Sample};
use dozor_tsdb::{Db, FsyncPolicy, Options, Queryable};

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_appends_and_keeps_what_was_acknowledged() {
    let Some(fs) = Tmpfs::mount("512k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let opts = Options {
        fsync: FsyncPolicy::Never,
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(fs.0.path(), opts).unwrap();
    let mut acked = 0usize;
    let err = loop {
        let labels =
            Labels::from_pairs([("__name__", "fill"), ("batch", acked.to_string().as_str())])
                .unwrap();
        let samples: Vec<Sample> = (0..500)
            .map(|i| Sample {
                t: i * 1000,
                v: i as f64,
            })
            .collect();
        match db.append(&[(labels, samples)]) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "a 512 KiB disk never filled up");
    };
    assert!(err.is_disk_full(), "{err}");
    assert!(acked > 0);
    let by_batch = |db: &Db, b: usize| {
        db.select(
            &[Matcher::equal("batch", b.to_string())],
            i64::MIN,
            i64::MAX,
        )
        .unwrap()
    };
    // The refused batch is not visible: the head only takes what the WAL holds.
    assert!(by_batch(&db, acked).is_empty());
    // Make room; the series created by the failed append is written again, with its WAL
    // series record, so the retry survives a restart.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(fs.0.path())
        .status()
        .unwrap();
    assert!(grown.success());
    let retry =
        Labels::from_pairs([("__name__", "fill"), ("batch", acked.to_string().as_str())]).unwrap();
    db.append(&[(retry, vec![Sample { t: 1, v: 42.0 }])])
        .unwrap();
    drop(db);
    let db = Db::open(fs.0.path(), opts).unwrap();
    assert_eq!(by_batch(&db, acked)[0].samples, [Sample { t: 1, v: 42.0 }]);
    let found = db
        .select(
            &[Matcher::new(MatchOp::Regex, "batch", ".+").unwrap()],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    let complete = found.iter().filter(|s| s.samples.len() == 500).count();
    assert_eq!(
        complete, acked,
        "{complete} complete series after reopen, {acked} acknowledged"
    );
}
