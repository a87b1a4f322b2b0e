//! The log store as a whole, on real directories: appends, reads from the head and from
//! parts, flushes, merges, retention, reopen after a crash, damage, tenants, and readers
//! racing a flush.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::collections::HashSet;
use std::sync::Arc;

use dozor_logs::part::{self, Part, Want};
use dozor_logs::{Direction, FsyncPolicy, LogDb, LogQuery, Logs, LogsError, Needles, Options};
use dozor_model::{Labels, LogRecord, Matcher, TenantId};

const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200 * 1_000_000_000;

fn opts() -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        ..Options::default()
    }
}

fn stream(service: &str, level: &str) -> Labels {
    Labels::from_pairs([("service", service), ("level", level)]).unwrap()
}

/// `n` records over `services`, one second apart from `start`, with a user field.
fn records(start: i64, n: usize, services: &[&str]) -> Vec<LogRecord> {
    (0..n)
        .map(|i| {
            let service = services[i % services.len()];
            let level = if i % 10 == 0 { "error" } else { "info" };
            let mut r = LogRecord::new(
                start + i as i64 * 1_000_000_000,
                stream(service, level),
                if level == "error" {
                    format!("payment {i} failed: card declined")
                } else {
                    format!("order {i} shipped to warehouse {}", i % 4)
                },
            );
            r.fields = vec![
                ("seq".into(), i.to_string()),
                ("user".into(), format!("u{}", i % 13)),
            ];
            r
        })
        .collect()
}

fn all(db: &LogDb) -> Vec<LogRecord> {
    let mut q = LogQuery::new(vec![], i64::MIN, i64::MAX);
    q.limit = usize::MAX;
    q.direction = Direction::Forward;
    db.select(&q).unwrap()
}

fn sorted(mut r: Vec<LogRecord>) -> Vec<LogRecord> {
    r.sort_by(|a, b| a.time_ns.cmp(&b.time_ns).then(a.stream.cmp(&b.stream)));
    r
}

#[test]
fn records_read_the_same_from_the_head_and_from_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path(), opts()).unwrap();
    // Across a UTC midnight: two days, two parts.
    let input = records(T0 - 50 * 1_000_000_000, 200, &["shop", "mes", "crm"]);
    db.append(input.clone()).unwrap();
    let q = LogQuery::new(
        vec![Matcher::equal("service", "shop")],
        T0 - DAY_NS,
        T0 + DAY_NS,
    )
    .containing("failed");
    let before = db.select(&q).unwrap();
    assert!(!before.is_empty());
    assert!(
        before
            .iter()
            .all(|r| r.message.contains("failed") && r.stream.get("service") == Some("shop"))
    );
    assert!(
        before.windows(2).all(|w| w[0].time_ns >= w[1].time_ns),
        "newest first"
    );
    let everything = all(&db);
    db.flush().unwrap();
    assert_eq!(db.head_len(), 0);
    assert_eq!(db.parts().len(), 2, "one part per day");
    assert_eq!(db.select(&q).unwrap(), before);
    assert_eq!(all(&db), everything);
    assert_eq!(everything, sorted(input));
    // Limits and time ranges.
    let mut q = LogQuery::new(vec![], T0, T0 + 9 * 1_000_000_000);
    q.limit = 3;
    let got = db.select(&q).unwrap();
    assert_eq!(
        got.iter().map(|r| r.time_ns).collect::<Vec<_>>(),
        [T0 + 9_000_000_000, T0 + 8_000_000_000, T0 + 7_000_000_000]
    );
    assert_eq!(got[0].field("user"), Some("u7"));
}

#[test]
fn reopen_replays_only_what_the_parts_do_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let first = records(T0, 100, &["shop"]);
    let second = records(T0 + 1000 * 1_000_000_000, 50, &["crm"]);
    {
        let db = LogDb::open(dir.path(), opts()).unwrap();
        db.append(first.clone()).unwrap();
        db.flush().unwrap();
        db.append(second.clone()).unwrap();
        // Dropped without a flush, as a crash would leave it.
    }
    let db = LogDb::open(dir.path(), opts()).unwrap();
    assert_eq!(db.head_len(), 50);
    let mut want = first.clone();
    want.extend(second);
    assert_eq!(all(&db), sorted(want));
}

#[test]
fn a_crash_between_writing_a_part_and_dropping_its_wal_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = records(T0, 30, &["shop"]);
    let wal = dir.path().join("wal");
    let saved = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), opts()).unwrap();
        db.append(input.clone()).unwrap();
        for e in std::fs::read_dir(&wal).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), saved.path().join(e.file_name())).unwrap();
        }
        db.flush().unwrap();
    }
    // Put the segments the flush dropped back, as if it had died before dropping them.
    for e in std::fs::read_dir(saved.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), wal.join(e.file_name())).unwrap();
    }
    let db = LogDb::open(dir.path(), opts()).unwrap();
    assert_eq!(all(&db), sorted(input));
}

#[test]
fn a_torn_wal_tail_is_cut_and_unfinished_parts_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let input = records(T0, 10, &["shop"]);
    {
        let db = LogDb::open(dir.path(), opts()).unwrap();
        db.append(input.clone()).unwrap();
    }
    let wal = dir.path().join("wal");
    let last = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let keep = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]); // half a frame
    std::fs::write(&last, &bytes).unwrap();
    let stray = dir
        .path()
        .join("parts")
        .join("2026-12-01")
        .join("00000000000000ff.tmp");
    std::fs::create_dir_all(&stray).unwrap();
    let db = LogDb::open(dir.path(), opts()).unwrap();
    assert_eq!(all(&db), input);
    assert_eq!(std::fs::metadata(&last).unwrap().len() as usize, keep);
    assert!(!stray.exists());
}

#[test]
fn a_damaged_part_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), opts()).unwrap();
        db.append(records(T0, 10, &["shop"])).unwrap();
        db.flush().unwrap();
    }
    let part = std::fs::read_dir(dir.path().join("parts").join("2026-12-01"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let index = part.join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&index, bytes).unwrap();
    assert!(matches!(
        LogDb::open(dir.path(), opts()),
        Err(LogsError::Corrupt(_))
    ));
    assert!(part::check_index(&[1, 2, 3]).is_err());
}

#[test]
fn merges_leave_query_results_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(
        dir.path(),
        Options {
            max_parts_per_day: 2,
            ..opts()
        },
    )
    .unwrap();
    for round in 0..5 {
        db.append(records(
            T0 + round * 100 * 1_000_000_000,
            40,
            &["shop", "mes"],
        ))
        .unwrap();
        db.flush().unwrap();
    }
    assert_eq!(db.parts().len(), 5);
    let q = LogQuery::new(vec![Matcher::equal("level", "error")], T0, T0 + DAY_NS - 1)
        .containing("declined");
    let (before, everything) = (db.select(&q).unwrap(), all(&db));
    db.merge().unwrap();
    assert_eq!(db.parts().len(), 1);
    assert_eq!(db.select(&q).unwrap(), before);
    assert_eq!(all(&db), everything);
    drop(db);
    let db = LogDb::open(dir.path(), opts()).unwrap();
    assert_eq!(all(&db), everything, "and after a reopen");
}

#[test]
fn retention_deletes_whole_days_through_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(
        dir.path(),
        Options {
            retention: Some(std::time::Duration::from_secs(2 * 86_400)),
            flush_bytes: 0,
            ..opts()
        },
    )
    .unwrap();
    for day in 0..4 {
        db.append(records(T0 + day * DAY_NS, 5, &["shop"])).unwrap();
    }
    // 2026-12-04 12:00: keep the 2 days before (02, 03, 04 survive: 12-02 12:00 is in 12-02).
    db.maintain(T0 + 3 * DAY_NS + DAY_NS / 2).unwrap();
    let days: HashSet<i64> = all(&db).iter().map(|r| (r.time_ns - T0) / DAY_NS).collect();
    assert_eq!(days, HashSet::from([1, 2, 3]));
    assert!(!dir.path().join("parts").join("2026-12-01").exists());
}

#[test]
fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs::open(dir.path(), opts()).unwrap();
    let (a, b): (TenantId, TenantId) = ("shop-a".parse().unwrap(), "shop-b".parse().unwrap());
    logs.tenant(&a)
        .unwrap()
        .append(records(T0, 5, &["secret"]))
        .unwrap();
    logs.tenant(&b)
        .unwrap()
        .append(records(T0, 3, &["public"]))
        .unwrap();
    assert!(
        all(&logs.tenant(&b).unwrap())
            .iter()
            .all(|r| r.stream.get("service") == Some("public"))
    );
    assert_eq!(all(&logs.tenant(&a).unwrap()).len(), 5);
    drop(logs);
    let logs = Logs::open(dir.path(), opts()).unwrap();
    assert_eq!(logs.all().len(), 2);
    assert!(logs.existing(&"nobody".parse().unwrap()).is_none());
}

#[test]
fn records_over_the_limits_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path(), opts()).unwrap();
    let mut batch = records(T0, 3, &["shop"]);
    batch[1].message = "x".repeat(dozor_logs::MAX_MESSAGE_BYTES + 1);
    assert!(matches!(db.append(batch.clone()), Err(LogsError::Limit(_))));
    let mut unsorted = records(T0, 1, &["shop"]);
    unsorted[0].fields.reverse();
    assert!(db.append(unsorted.clone()).is_err());
    assert!(all(&db).is_empty(), "nothing of a refused batch is stored");
}

#[test]
fn needle_searches_skip_blocks_their_filter_rules_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut input = records(T0, 3000, &["shop", "mes", "crm"]);
    input.push(LogRecord::new(
        T0 + 5,
        stream("crm", "warn"),
        "quota exceeded for tenant zebra-77",
    ));
    part::write(&path, &input, 0).unwrap();
    let part = Part::open(&path).unwrap();
    let search = |needle: &str| {
        let mut needles = Needles::default();
        needles.push(needle);
        let want = Want {
            matchers: &[],
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            needles: &needles,
        };
        let mut out = Vec::new();
        let read = part.select(&want, &mut out).unwrap();
        (read, out.len())
    };
    assert_eq!(
        part.meta().blocks,
        7,
        "6 streams (shop, mes, crm × info, error) + the warn one"
    );
    assert_eq!(
        search("zebra-77"),
        (1, 1),
        "only the block holding it is read"
    );
    assert_eq!(search("ebra"), (1, 1), "a substring inside a word");
    assert_eq!(search("declined").1, 300);
    assert_eq!(search("no such thing anywhere"), (0, 0));
}

#[test]
fn readers_racing_flushes_and_merges_see_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        LogDb::open(
            dir.path(),
            Options {
                max_parts_per_day: 3,
                ..opts()
            },
        )
        .unwrap(),
    );
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for round in 0..60 {
                db.append(records(
                    T0 + round * 20 * 1_000_000_000,
                    20,
                    &["shop", "mes"],
                ))
                .unwrap();
                if round % 5 == 4 {
                    db.flush().unwrap();
                    db.merge().unwrap();
                }
            }
        })
    };
    let mut last = 0;
    while !writer.is_finished() {
        let got = all(&db);
        let ids: HashSet<(i64, String)> = got
            .iter()
            .map(|r| (r.time_ns, r.stream.to_string()))
            .collect();
        assert_eq!(ids.len(), got.len(), "a record seen twice");
        assert!(
            got.len() >= last,
            "records disappeared: {} after {last}",
            got.len()
        );
        last = got.len();
    }
    writer.join().unwrap();
    assert_eq!(all(&db).len(), 60 * 20);
}

#[test]
fn a_full_head_is_flushed_by_the_appender_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let small = Options {
        flush_bytes: 4096,
        ..opts()
    };
    let db = LogDb::open(dir.path(), small.clone()).unwrap();
    let input = records(T0, 400, &["shop", "crm"]);
    let mut flushes = 0;
    for chunk in input.chunks(20) {
        db.append(chunk.to_vec()).unwrap();
        let before = db.parts().len();
        db.flush_if_full().unwrap();
        flushes += usize::from(db.parts().len() > before);
        assert!(
            db.head_len() < 200,
            "the head stays bounded ({} records)",
            db.head_len()
        );
    }
    assert!(
        flushes >= 3,
        "the appender flushed the head {flushes} times"
    );
    assert_eq!(sorted(all(&db)), sorted(input.clone()));
    drop(db);
    let db = LogDb::open(dir.path(), small).unwrap();
    assert_eq!(
        sorted(all(&db)),
        sorted(input),
        "everything is back after reopen"
    );
    // Below the threshold nothing happens.
    let before = db.parts().len();
    db.append(records(T0 + 1_000 * 1_000_000_000, 1, &["shop"]))
        .unwrap();
    db.flush_if_full().unwrap();
    assert_eq!(db.parts().len(), before);
    assert_eq!(db.head_len(), 1);
}
