//! Long-range queries read the store's downsampled aggregates automatically and give the
//! answers raw samples give (away from bucket edges), also after raw data has expired.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use dozor_model::{Labels, Sample};
use dozor_promql::{Engine, EngineOptions, Value};
use dozor_tsdb::{Db, FsyncPolicy, Options};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// A counter and a gauge every 15 s, 7 s after the minute so that no sample sits on a
/// bucket or window edge.
fn fill(db: &Db, hours: i64) {
    let counter = Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]).unwrap();
    let gauge = Labels::from_pairs([("__name__", "temp"), ("job", "api")]).unwrap();
    let mut batch = Vec::new();
    for k in 0..hours * 240 {
        let t = 7_000 + k * 15_000;
        batch.push((
            counter.clone(),
            vec![Sample {
                t,
                v: 1e6 + k as f64,
            }],
        ));
        let v = ((k * 7919) % 101) as f64 - 50.0;
        batch.push((gauge.clone(), vec![Sample { t, v }]));
        if batch.len() >= 2_000 {
            db.append(&batch).unwrap();
            batch.clear();
        }
    }
    db.append(&batch).unwrap();
}

fn open(dir: &std::path::Path, retention: Option<i64>) -> Db {
    let db = Db::open(
        dir,
        Options {
            block_duration_ms: 10 * MIN,
            retention_ms: retention,
            retention_1m_ms: None,
            retention_5m_ms: None,
            retention_1h_ms: None,
            fsync: FsyncPolicy::Never,
            ..Options::default()
        },
    )
    .unwrap();
    fill(&db, 16);
    for _ in 0..300 {
        db.maintain(16 * HOUR).unwrap();
    }
    db
}

fn points(engine: &Engine, db: &Db, q: &str) -> Vec<(i64, f64)> {
    let res = engine.range(db, q, 2 * HOUR, 9 * HOUR, HOUR).unwrap();
    let Value::Matrix(m) = res.value else {
        panic!("{q}: not a matrix")
    };
    assert!(m.len() <= 1, "{q}: {} series", m.len());
    m.first()
        .map(|s| s.samples.iter().map(|p| (p.t, p.v)).collect())
        .unwrap_or_default()
}

#[test]
fn range_queries_with_long_steps_read_aggregates_and_match_raw_answers() {
    let kept = tempfile::tempdir().unwrap();
    let expired = tempfile::tempdir().unwrap();
    // The same data twice: raw kept forever, and raw deleted after 6 h (aggregates stay).
    let raw_db = open(kept.path(), None);
    let ds_db = open(expired.path(), Some(6 * HOUR));
    assert!(
        ds_db.raw_blocks().iter().all(|b| b.meta().mint >= 9 * HOUR),
        "raw data of the queried range expired"
    );
    let raw = Engine::new(EngineOptions {
        downsampling: false,
        ..EngineOptions::default()
    });
    let auto = Engine::new(EngineOptions::default());
    for q in [
        "max_over_time(temp[1h])",
        "min_over_time(temp[1h])",
        "sum_over_time(temp[1h])",
        "count_over_time(temp[1h])",
        "temp",
        "last_over_time(temp[1h])",
        "rate(requests_total[1h])",
        "increase(requests_total[1h])",
    ] {
        let want = points(&raw, &raw_db, q);
        assert_eq!(want.len(), 8, "{q}: raw answers every step");
        let got = points(&auto, &ds_db, q);
        assert_eq!(got.len(), want.len(), "{q}");
        for ((tg, g), (tw, w)) in got.iter().zip(&want) {
            assert_eq!(tg, tw, "{q}");
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{q} at {tg}: {g} vs {w}"
            );
        }
        // Without downsampling the expired range has nothing: the answers above came from
        // the aggregates.
        assert!(points(&raw, &ds_db, q).is_empty(), "{q}");
    }
    // Functions aggregates cannot answer read raw samples: nothing left in that range.
    assert!(points(&auto, &ds_db, "stddev_over_time(temp[1h])").is_empty());
}

/// The service-level view's queries (`/api/v1/dashboard/sla` over a long window): a ratio
/// of sums and counts, and an hourly subquery, as one-step range queries with a 5 h step,
/// answer from the roll-ups what the raw samples answered.
#[test]
fn long_window_ratios_and_hourly_subqueries_read_the_rollups() {
    let kept = tempfile::tempdir().unwrap();
    let expired = tempfile::tempdir().unwrap();
    let raw_db = open(kept.path(), None);
    let ds_db = open(expired.path(), Some(6 * HOUR));
    let raw = Engine::new(EngineOptions {
        downsampling: false,
        ..EngineOptions::default()
    });
    let auto = Engine::new(EngineOptions::default());
    let at = |engine: &Engine, db: &Db, q: &str| -> Option<f64> {
        let res = engine.range(db, q, 9 * HOUR, 9 * HOUR, 5 * HOUR).unwrap();
        let Value::Matrix(m) = res.value else {
            panic!("{q}: not a matrix")
        };
        m.first().and_then(|s| s.samples.last()).map(|p| p.v)
    };
    for q in [
        "sum_over_time(temp[6h]) / count_over_time(temp[6h]) * 100",
        "sum_over_time((sum_over_time(temp[1h]) / count_over_time(temp[1h]) < bool 0)[6h:1h])",
    ] {
        let want = at(&raw, &raw_db, q).unwrap_or_else(|| panic!("{q}: raw answers"));
        let got =
            at(&auto, &ds_db, q).unwrap_or_else(|| panic!("{q}: no answer from the roll-ups"));
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{q}: {got} vs {want}"
        );
        assert_eq!(at(&raw, &ds_db, q), None, "{q}: the raw samples are gone");
    }
}
