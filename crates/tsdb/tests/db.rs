//! The metric store end to end: append, reopen (WAL replay), head cuts, compaction,
//! retention, tenants.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use dozor_model::{Labels, MatchOp, Matcher, Sample, TenantId};
use dozor_tsdb::downsample::{RESOLUTION_1D, RESOLUTION_1H, RESOLUTION_5M, RESOLUTIONS};
use dozor_tsdb::{Aggregate, Db, FsyncPolicy, Options, Queryable, SelectHints, Series, Tsdb};

const HOUR: i64 = 3600 * 1000;

fn opts() -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        retention_ms: None,
        downsample: false,
        ..Options::default()
    }
}

fn labels(job: &str, instance: u32) -> Labels {
    Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("job", job),
        ("instance", &format!("host-{instance}")),
    ])
    .unwrap()
}

/// Appends a counter per (job, instance) every 15 s over `[from, to)`.
fn fill(db: &Db, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let batch: Vec<(Labels, Vec<Sample>)> = ["api", "web"]
            .iter()
            .flat_map(|job| {
                (0..5).map(move |i| {
                    (
                        labels(job, i),
                        vec![Sample {
                            t,
                            v: (t / 15_000) as f64 + f64::from(i),
                        }],
                    )
                })
            })
            .collect();
        db.append(&batch).unwrap();
        t += 15_000;
    }
}

fn everything(db: &Db) -> Vec<Series> {
    db.select(
        &[Matcher::new(MatchOp::Regex, "job", ".+").unwrap()],
        i64::MIN,
        i64::MAX,
    )
    .unwrap()
}

#[test]
fn acknowledged_samples_survive_a_crash_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = Db::open(dir.path(), opts()).unwrap();
        fill(&db, 0, HOUR);
        everything(&db)
        // Dropped without flush or sync: only the WAL holds the data.
    };
    assert_eq!(before.len(), 10);
    assert_eq!(before[0].samples.len(), 240);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(everything(&db), before);
}

#[test]
fn head_cuts_write_blocks_and_queries_do_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 5 * HOUR);
    let before = everything(&db);
    db.maintain(5 * HOUR).unwrap();
    assert!(!db.blocks().is_empty(), "a 5 h head must be cut");
    assert_eq!(everything(&db), before);
    // Reopen: blocks plus the WAL checkpoint give the same answer.
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(everything(&db), before);
    // Cut data is refused; newer data is accepted.
    let old = db
        .append(&[(labels("api", 0), vec![Sample { t: 10, v: 1.0 }])])
        .unwrap();
    assert_eq!(old.too_old, 1);
}

#[test]
fn compaction_merges_finished_windows_without_changing_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 14 * HOUR);
    db.maintain(14 * HOUR).unwrap();
    let before = everything(&db);
    let blocks_before = db.blocks().len();
    for _ in 0..5 {
        db.maintain(14 * HOUR).unwrap();
    }
    let blocks_after = db.blocks().len();
    assert!(
        blocks_after < blocks_before,
        "{blocks_before} blocks → {blocks_after}"
    );
    assert!(db.blocks().iter().any(|b| b.meta().level > 0));
    assert_eq!(everything(&db), before);
    let narrow = db
        .select(
            &[
                Matcher::equal("job", "web"),
                Matcher::equal("instance", "host-3"),
            ],
            3 * HOUR,
            3 * HOUR + 60_000,
        )
        .unwrap();
    assert_eq!(narrow.len(), 1);
    assert_eq!(narrow[0].samples.len(), 5);
}

#[test]
fn retention_deletes_old_blocks_by_age_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_ms: Some(6 * HOUR),
            ..opts()
        },
    )
    .unwrap();
    fill(&db, 0, 12 * HOUR);
    db.maintain(12 * HOUR).unwrap();
    let oldest = db.blocks().iter().map(|b| b.meta().mint).min().unwrap();
    assert!(
        oldest >= 4 * HOUR,
        "blocks older than 6 h before now are gone (oldest starts at {oldest})"
    );
    let first = everything(&db)[0].samples[0].t;
    assert!(first >= 4 * HOUR);

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_bytes: Some(1),
            ..opts()
        },
    )
    .unwrap();
    fill(&db, 0, 6 * HOUR);
    db.maintain(6 * HOUR).unwrap();
    assert!(db.blocks().is_empty(), "a 1-byte budget keeps no block");
    assert!(
        !everything(&db).is_empty(),
        "the head is not subject to size retention"
    );
}

#[test]
fn out_of_order_samples_are_accepted_within_the_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            out_of_order_window_ms: 60_000,
            ..opts()
        },
    )
    .unwrap();
    let l = labels("api", 0);
    db.append(&[(
        l.clone(),
        vec![Sample {
            t: 1_000_000,
            v: 1.0,
        }],
    )])
    .unwrap();
    let s = db
        .append(&[(
            l.clone(),
            vec![Sample { t: 950_000, v: 2.0 }, Sample { t: 900_000, v: 3.0 }],
        )])
        .unwrap();
    assert_eq!((s.accepted, s.out_of_order), (1, 1));
    let got = db
        .select(&[Matcher::equal("job", "api")], 0, i64::MAX)
        .unwrap();
    assert_eq!(
        got[0].samples.iter().map(|s| s.t).collect::<Vec<_>>(),
        [950_000, 1_000_000]
    );
}

#[test]
fn stale_markers_are_stored_and_returned_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let stale = dozor_model::labels::stale_nan();
    db.append(&[(
        labels("api", 0),
        vec![
            Sample { t: 0, v: 1.0 },
            Sample {
                t: 15_000,
                v: stale,
            },
        ],
    )])
    .unwrap();
    db.flush().unwrap();
    let got = db
        .select(&[Matcher::equal("job", "api")], 0, i64::MAX)
        .unwrap();
    assert!(dozor_model::labels::is_stale_nan(got[0].samples[1].v));
}

#[test]
fn tenants_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Tsdb::open(dir.path(), opts()).unwrap();
    let shop: TenantId = "shop".parse().unwrap();
    let mes: TenantId = "mes".parse().unwrap();
    fill(&tsdb.tenant(&shop).unwrap(), 0, 60_000);
    assert!(
        tsdb.existing(&mes).is_none(),
        "reading never creates a tenant"
    );
    assert!(everything(&tsdb.tenant(&mes).unwrap()).is_empty());
    drop(tsdb);
    let tsdb = Tsdb::open(dir.path(), opts()).unwrap();
    assert_eq!(everything(&tsdb.existing(&shop).unwrap()).len(), 10);
    assert_eq!(tsdb.all().len(), 2);
}

#[test]
fn label_names_and_values_come_from_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 60_000);
    db.flush().unwrap();
    db.append(&[(
        Labels::from_pairs([("__name__", "up"), ("job", "db")]).unwrap(),
        vec![Sample { t: 120_000, v: 1.0 }],
    )])
    .unwrap();
    assert_eq!(
        db.label_values("job", &[], 0, i64::MAX).unwrap(),
        ["api", "db", "web"]
    );
    assert_eq!(
        db.label_names(&[], 0, i64::MAX).unwrap(),
        ["__name__", "instance", "job"]
    );
    assert_eq!(
        db.label_values("job", &[Matcher::equal("__name__", "up")], 0, i64::MAX)
            .unwrap(),
        ["db"]
    );
}

/// Options for downsampling tests: 10-minute blocks, so compaction is final after 4.5 h.
fn downsampling_opts() -> Options {
    Options {
        block_duration_ms: 10 * 60_000,
        downsample: true,
        ..opts()
    }
}

/// Runs maintenance until nothing changes.
fn settle(db: &Db, now: i64) {
    for _ in 0..200 {
        let before: Vec<_> = db.blocks().iter().map(|b| b.dir().to_owned()).collect();
        db.maintain(now).unwrap();
        let after: Vec<_> = db.blocks().iter().map(|b| b.dir().to_owned()).collect();
        if before == after {
            return;
        }
    }
    panic!("maintenance did not settle");
}

/// What `*_over_time` over the whole range gives, per series.
fn fold(series: &[Series], which: Aggregate) -> Vec<(String, f64)> {
    series
        .iter()
        .map(|s| {
            let v = s.samples.iter().map(|x| x.v);
            let folded = match which {
                Aggregate::Min => v.fold(f64::INFINITY, f64::min),
                Aggregate::Max => v.fold(f64::NEG_INFINITY, f64::max),
                Aggregate::Sum | Aggregate::Count => v.sum(),
                Aggregate::Last => s.samples.last().unwrap().v,
            };
            (s.labels.to_string(), folded)
        })
        .collect()
}

#[test]
fn downsampled_reads_give_the_raw_answers_from_fewer_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), downsampling_opts()).unwrap();
    fill(&db, 0, 16 * HOUR);
    settle(&db, 16 * HOUR);
    let tiers = |res: i64| {
        db.blocks()
            .iter()
            .filter(|b| b.meta().resolution_ms == res)
            .count()
    };
    assert!(
        tiers(RESOLUTION_5M) >= 2,
        "5 m blocks: {}",
        tiers(RESOLUTION_5M)
    );
    // Every raw block is summarised at every resolution.
    for res in RESOLUTIONS {
        assert_eq!(tiers(res), tiers(RESOLUTION_5M), "{res} ms");
    }

    let raw = everything(&db);
    let job = [Matcher::new(MatchOp::Regex, "job", ".+").unwrap()];
    for res in RESOLUTIONS {
        for which in Aggregate::ALL {
            let hints = SelectHints {
                max_resolution_ms: res,
                aggregate: which,
            };
            let got = db
                .select_downsampled(&job, i64::MIN, i64::MAX, &hints)
                .unwrap();
            assert_eq!(got.resolution_ms, res);
            let rows: usize = got.series.iter().map(|s| s.samples.len()).sum();
            let raw_rows: usize = raw.iter().map(|s| s.samples.len()).sum();
            // A minute holds 4 raw samples: at least half of them are saved.
            assert!(
                rows * 2 < raw_rows,
                "{res} ms {which:?}: {rows} of {raw_rows}"
            );
            let expect = if which == Aggregate::Count {
                raw.iter()
                    .map(|s| (s.labels.to_string(), s.samples.len() as f64))
                    .collect()
            } else {
                fold(&raw, which)
            };
            assert_eq!(fold(&got.series, which), expect, "{res} ms {which:?}");
        }
    }
    // Raw reads stay raw, and a hint that accepts nothing coarse changes nothing.
    let exact = db
        .select_downsampled(&job, i64::MIN, i64::MAX, &SelectHints::default())
        .unwrap();
    assert_eq!((exact.series, exact.resolution_ms), (raw, 0));
}

#[test]
fn aggregates_outlive_raw_retention_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_ms: Some(6 * HOUR),
        retention_1m_ms: Some(20 * HOUR),
        retention_5m_ms: Some(30 * HOUR),
        retention_1h_ms: None,
        retention_1d_ms: None,
        ..downsampling_opts()
    };
    let db = Db::open(dir.path(), o).unwrap();
    fill(&db, 0, 16 * HOUR);
    settle(&db, 16 * HOUR);
    let first_raw = everything(&db)[0].samples[0].t;
    assert!(
        first_raw >= 9 * HOUR,
        "raw data before 10 h is gone ({first_raw})"
    );
    let hints = SelectHints {
        max_resolution_ms: RESOLUTION_5M,
        aggregate: Aggregate::Count,
    };
    let job = [Matcher::equal("job", "api")];
    let count = |db: &Db| {
        let got = db.select_downsampled(&job, 0, 16 * HOUR, &hints).unwrap();
        fold(&got.series, Aggregate::Count)
    };
    let counted = count(&db);
    assert_eq!(counted.len(), 5);
    // Every sample ever written is still counted: 4 per minute for 16 h.
    assert!(
        counted.iter().all(|(_, c)| *c == (16 * 60 * 4) as f64),
        "{counted:?}"
    );
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(count(&db), counted);
    // Past the 1 m and 5 m retentions only the hourly and daily tiers remain, and still
    // count every sample (a bucket is stamped with its last millisecond: the day's is read
    // by a range to the day's end).
    settle(&db, 60 * HOUR);
    assert!(
        db.blocks()
            .iter()
            .all(|b| [RESOLUTION_1H, RESOLUTION_1D].contains(&b.meta().resolution_ms))
    );
    for res in [RESOLUTION_1H, RESOLUTION_1D] {
        let hints = SelectHints {
            max_resolution_ms: res,
            aggregate: Aggregate::Count,
        };
        let got = db.select_downsampled(&job, 0, 24 * HOUR, &hints).unwrap();
        assert_eq!(fold(&got.series, Aggregate::Count), counted, "{res} ms");
    }
}

#[test]
fn readers_never_miss_samples_while_the_head_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Db::open(dir.path(), opts()).unwrap());
    fill(&db, 0, 9 * HOUR);
    let total: usize = everything(&db).iter().map(|s| s.samples.len()).sum();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                let seen: usize = everything(&db).iter().map(|s| s.samples.len()).sum();
                assert_eq!(seen, total, "a read during a cut saw {seen} of {total}");
                reads += 1;
            }
            reads
        })
    };
    db.maintain(9 * HOUR).unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert!(!db.blocks().is_empty(), "the head was cut");
}
