//! Retention tiers and the disk watermark on real directories: hot days keep everything,
//! warm days their errors plus per-minute counts, cold days their critical and audit
//! records, older days go; queries over the original streams never see the counts; under
//! the watermark the oldest hot day moves to warm first, then the oldest days go, never
//! today's.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use dozor_logs::logql::{self, QueryResult, Range};
use dozor_logs::tiers::{self, Level, Tier, Tiers};
use dozor_logs::{Direction, FsyncPolicy, LogDb, LogQuery, Options};
use dozor_model::{Labels, LogRecord, Matcher};

const DAY: i64 = 86_400 * 1_000_000_000;
/// 2026-12-01T00:00:00Z.
const TODAY: i64 = 1_796_083_200 * 1_000_000_000;

fn opts() -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        ..Options::default()
    }
}

fn sel(q: &str) -> Vec<Matcher> {
    match logql::parse(q).unwrap() {
        logql::Expr::Log(l) => l.selector,
        logql::Expr::Metric(_) => panic!("{q} is not a selector"),
    }
}

fn policy() -> Tiers {
    Tiers {
        hot: Duration::from_secs(2 * 86_400),
        warm: Some(Tier {
            until: Duration::from_secs(10 * 86_400),
            keep: vec![sel(r#"{level=~"critical|error|warn"}"#)],
        }),
        cold: Some(Tier {
            until: Duration::from_secs(365 * 86_400),
            keep: vec![sel(r#"{level="critical"}"#), sel(r#"{audit="true"}"#)],
        }),
        aggregates: true,
    }
}

/// For each day back: 60 info, 6 error, 1 critical, 1 audit-info line, over an hour.
fn day_records(day_start: i64) -> Vec<LogRecord> {
    let s = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied()).unwrap();
    let mut out = Vec::new();
    for i in 0..60 {
        out.push(LogRecord::new(
            day_start + i * 60_000_000_000,
            s(&[("service", "shop"), ("level", "info")]),
            format!("order {i} shipped"),
        ));
    }
    for i in 0..6 {
        out.push(LogRecord::new(
            day_start + i * 600_000_000_000 + 1,
            s(&[("service", "shop"), ("level", "error")]),
            format!("payment {i} failed"),
        ));
    }
    out.push(LogRecord::new(
        day_start + 5,
        s(&[("service", "shop"), ("level", "critical")]),
        "database down",
    ));
    out.push(LogRecord::new(
        day_start + 7,
        s(&[("service", "auth"), ("level", "info"), ("audit", "true")]),
        "user admin logged in",
    ));
    out
}

fn count(db: &LogDb, selector: &str, day_start: i64) -> usize {
    let mut q = LogQuery::new(sel(selector), day_start, day_start + DAY - 1);
    q.limit = usize::MAX;
    db.select(&q).unwrap().len()
}

fn store(dir: &std::path::Path, days_back: &[i64]) -> LogDb {
    let db = LogDb::open(dir, opts()).unwrap();
    for d in days_back {
        db.append(day_records(TODAY - d * DAY)).unwrap();
    }
    db.flush().unwrap();
    db
}

#[test]
fn days_move_down_the_tiers_and_keep_what_each_keeps() {
    let dir = tempfile::tempdir().unwrap();
    // Today, 1 day (hot), 5 days (warm), 100 days (cold), 400 days (gone).
    let db = store(dir.path(), &[0, 1, 5, 100, 400]);
    let now = TODAY + 12 * 3600 * 1_000_000_000;
    db.apply_tiers(&policy(), now).unwrap();
    let all = r#"{service=~".+"}"#;
    assert_eq!(count(&db, all, TODAY), 68, "today is hot");
    assert_eq!(count(&db, all, TODAY - DAY), 68, "yesterday is hot");
    assert_eq!(
        count(&db, all, TODAY - 5 * DAY),
        7,
        "warm: 6 errors + 1 critical"
    );
    assert_eq!(
        count(&db, all, TODAY - 100 * DAY),
        2,
        "cold: the critical and the audit line"
    );
    assert_eq!(count(&db, all, TODAY - 400 * DAY), 0, "past every tier");
    assert!(
        db.parts_by_day()
            .iter()
            .all(|(d, _)| *d > (TODAY - 400 * DAY) / DAY),
        "the old day's directory is gone"
    );
    // Each moved part notes its tier.
    let levels: Vec<(i64, Level)> = db
        .parts_by_day()
        .into_iter()
        .flat_map(|(d, ps)| {
            ps.into_iter()
                .map(move |p| (TODAY / DAY - d, tiers::level_of(&p)))
        })
        .collect();
    assert!(
        levels.contains(&(5, Level::Warm))
            && levels.contains(&(100, Level::Cold))
            && levels.contains(&(0, Level::Hot)),
        "{levels:?}"
    );

    // The per-minute counts of the warm day: 60 info + 6 error + 1 critical + 1 audit lines.
    let agg = r#"{service=~".+", __aggregate__="1m"}"#;
    let q = logql::parse(&format!("sum(sum_over_time({agg} | unwrap count [1d]))")).unwrap();
    let at = TODAY - 4 * DAY - 1;
    let range = Range {
        start_ns: at,
        end_ns: at,
        step_ns: 0,
        limit: 0,
        direction: Direction::Backward,
    };
    let (r, _) = logql::evaluate(&db, &q, range).unwrap();
    let QueryResult::Vector(v) = r else {
        panic!("vector")
    };
    assert_eq!(
        v[0].points[0].1, 68.0,
        "every line of the warm day is counted"
    );
    // ... and a second pass adds none, and changes nothing.
    db.apply_tiers(&policy(), now).unwrap();
    let (r, _) = logql::evaluate(&db, &q, range).unwrap();
    let QueryResult::Vector(v2) = r else {
        panic!("vector")
    };
    assert_eq!(v2, v, "moving down is idempotent");
    assert_eq!(count(&db, all, TODAY - 5 * DAY), 7);
    // Reopened, the tiers stay.
    drop(db);
    let db = LogDb::open(dir.path(), opts()).unwrap();
    assert_eq!(count(&db, all, TODAY - 100 * DAY), 2);
    assert_eq!(count(&db, all, TODAY), 68);
}

#[test]
fn the_watermark_moves_hot_days_down_first_then_deletes_the_oldest_never_today() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(store(&dir.path().join("a"), &[0, 1, 3]));
    let other = Arc::new(store(&dir.path().join("b"), &[2]));
    let dbs = vec![Arc::clone(&db), Arc::clone(&other)];
    let now = TODAY + 3600 * 1_000_000_000;
    let p = policy();
    // Oldest hot day first (3 days back, tenant a), then 2 (tenant b), then 1.
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert_eq!(
        count(&db, r#"{service=~".+"}"#, TODAY - 3 * DAY),
        7,
        "moved to warm early"
    );
    assert_eq!(
        count(&other, r#"{service=~".+"}"#, TODAY - 2 * DAY),
        68,
        "not yet"
    );
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert_eq!(count(&other, r#"{service=~".+"}"#, TODAY - 2 * DAY), 7);
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert_eq!(count(&db, r#"{service=~".+"}"#, TODAY - DAY), 7);
    // No hot day left but today: the oldest days go, one by one.
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert_eq!(count(&db, r#"{service=~".+"}"#, TODAY - 3 * DAY), 0);
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert!(tiers::relieve_one(&dbs, &p, now).unwrap());
    assert!(
        !tiers::relieve_one(&dbs, &p, now).unwrap(),
        "nothing left but today"
    );
    assert_eq!(
        count(&db, r#"{service=~".+"}"#, TODAY),
        68,
        "today is never deleted"
    );
    // The real usage figure is a fraction of the volume.
    let u = tiers::volume_usage(dir.path()).unwrap();
    assert!((0.0..=1.0).contains(&u), "{u}");
}

#[test]
fn aggregates_stay_out_of_ordinary_selectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path(), &[5]);
    db.apply_tiers(&policy(), TODAY).unwrap();
    let q = logql::parse(r#"sum(count_over_time({service="shop"}[1d]))"#).unwrap();
    let at = TODAY - 4 * DAY - 1;
    let range = Range {
        start_ns: at,
        end_ns: at,
        step_ns: 0,
        limit: 0,
        direction: Direction::Backward,
    };
    let (r, _) = logql::evaluate(&db, &q, range).unwrap();
    let QueryResult::Vector(v) = r else {
        panic!("vector")
    };
    assert_eq!(
        v[0].points[0].1, 7.0,
        "the shop's errors and critical line, no aggregate records"
    );
    let labels = db.streams(&sel(r#"{service="shop"}"#), i64::MIN, i64::MAX);
    assert!(
        labels.iter().all(|l| l.get("__aggregate__").is_none()),
        "{labels:?}"
    );
}
