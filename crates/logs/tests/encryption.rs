//! Encryption at rest, on real directories: nothing readable left in parts, the same
//! answers as a plaintext store (after merges and reopen too), wrong and missing keys
//! refused by id, damage and moved bytes detected, key files in every accepted format, and
//! switching encryption on for a store that already has plaintext parts.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use dozor_logs::part::{self, Part};
use dozor_logs::{Direction, FsyncPolicy, Key, LogDb, LogQuery, Logs, LogsError, Options};
use dozor_model::{Labels, LogRecord, Matcher, TenantId};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200 * 1_000_000_000;
const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// In some messages; must never be found in an encrypted store's files.
const SECRET_MESSAGE: &str = "zebra-quartz-7731";
/// A field value; likewise.
const SECRET_FIELD: &str = "acct-XJ4491";
/// A stream label value; likewise (labels live in the index).
const SECRET_LABEL: &str = "checkout-vault";

fn key(n: u8) -> Arc<Key> {
    Arc::new(Key::new(&[n; 32]))
}

fn opts(key: Option<Arc<Key>>) -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        encryption: key,
        ..Options::default()
    }
}

/// `n` records from `start`, one a second, over three streams, with fields.
fn records(start: i64, n: usize) -> Vec<LogRecord> {
    let services = ["shop", "crm", SECRET_LABEL];
    (0..n)
        .map(|i| {
            let stream =
                Labels::from_pairs([("service", services[i % 3]), ("level", "info")]).unwrap();
            let message = if i % 5 == 0 {
                format!("payment {i} failed for {SECRET_MESSAGE}: card declined")
            } else {
                format!("order {i} shipped to warehouse {}", i % 4)
            };
            let mut r = LogRecord::new(start + i as i64 * 1_000_000_000, stream, message);
            r.fields = vec![
                ("account".into(), format!("{SECRET_FIELD}-{}", i % 3)),
                ("seq".into(), i.to_string()),
            ];
            r
        })
        .collect()
}

/// The answers to a handful of queries: everything, by stream, by needle, by time range.
fn answers(db: &LogDb) -> Vec<Vec<LogRecord>> {
    let mut queries = vec![
        LogQuery::new(vec![], i64::MIN, i64::MAX),
        LogQuery::new(vec![Matcher::equal("service", "crm")], T0, T0 + DAY_NS),
        LogQuery::new(vec![], T0, T0 + 2 * DAY_NS).containing("failed"),
        LogQuery::new(
            vec![Matcher::equal("service", SECRET_LABEL)],
            T0 + 100_000_000_000,
            T0 + 200_000_000_000,
        )
        .containing("shipped"),
    ];
    for q in &mut queries {
        q.limit = usize::MAX;
        q.direction = Direction::Forward;
    }
    queries.iter().map(|q| db.select(q).unwrap()).collect()
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What a reader of a file can see without a key: its bytes, and the output of every zstd
/// frame in it (zstd Huffman-codes literals, so a plaintext message is not in the raw bytes
/// of a column, only in what it decompresses to).
fn visible(path: &Path) -> Vec<Vec<u8>> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for i in memchr::memmem::find_iter(&bytes, &[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut plain = Vec::new();
        if let Ok(d) = zstd::stream::read::Decoder::with_buffer(&bytes[i..]) {
            // A damaged or fake frame still yields what decoded before the damage.
            let _ = d.single_frame().read_to_end(&mut plain);
        }
        out.push(plain);
    }
    out.push(bytes);
    out
}

/// The files under `dir` in which `needle` is visible.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            visible(p)
                .iter()
                .any(|b| memchr::memmem::find(b, needle.as_bytes()).is_some())
        })
        .collect()
}

/// The part directories of `db`.
fn part_dirs(db: &LogDb) -> Vec<PathBuf> {
    db.parts().iter().map(|p| p.dir().to_owned()).collect()
}

fn is_encrypted(dir: &Path) -> bool {
    let meta: part::PartMeta =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    meta.encryption.is_some()
}

#[test]
fn with_a_key_no_file_holds_a_message_a_field_or_a_label_in_the_clear() {
    for key in [None, Some(key(1))] {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(dir.path(), opts(key.clone())).unwrap();
        db.append(records(T0, 3000)).unwrap();
        db.flush().unwrap();
        assert_eq!(db.head_len(), 0);
        let found: Vec<Vec<PathBuf>> = [SECRET_MESSAGE, SECRET_FIELD, SECRET_LABEL]
            .iter()
            .map(|s| files_containing(dir.path(), s))
            .collect();
        match &key {
            None => {
                // The control: the search finds them in plaintext parts, so their absence
                // below means something.
                assert!(!found[0].is_empty(), "messages in a plaintext part");
                assert!(!found[1].is_empty(), "field values in a plaintext part");
                assert!(!found[2].is_empty(), "labels in a plaintext index");
            }
            Some(k) => {
                assert_eq!(found, vec![Vec::<PathBuf>::new(); 3]);
                for p in part_dirs(&db) {
                    let meta = std::fs::read_to_string(p.join("meta.json")).unwrap();
                    assert!(meta.contains("\"algorithm\": \"AES-256-GCM\""), "{meta}");
                    assert!(
                        meta.contains(&format!("\"key_id\": \"{}\"", k.id())),
                        "{meta}"
                    );
                }
            }
        }
        assert_eq!(answers(&db)[0].len(), 3000);
    }
}

#[test]
fn queries_answer_the_same_encrypted_as_plaintext_after_merges_and_reopen() {
    let plain_dir = tempfile::tempdir().unwrap();
    let sealed_dir = tempfile::tempdir().unwrap();
    let small = |key| Options {
        max_parts_per_day: 2,
        ..opts(key)
    };
    let plain = LogDb::open(plain_dir.path(), small(None)).unwrap();
    let sealed = LogDb::open(sealed_dir.path(), small(Some(key(2)))).unwrap();
    let input = records(T0 + DAY_NS - 500_000_000_000, 2000);
    for chunk in input.chunks(400) {
        for db in [&plain, &sealed] {
            db.append(chunk.to_vec()).unwrap();
            db.flush().unwrap();
        }
    }
    assert_eq!(answers(&plain), answers(&sealed));
    assert_eq!(answers(&sealed)[0], {
        let mut all = input.clone();
        all.sort_by(|a, b| a.time_ns.cmp(&b.time_ns).then(a.stream.cmp(&b.stream)));
        all
    });
    let before = sealed.parts().len();
    plain.merge().unwrap();
    sealed.merge().unwrap();
    assert!(sealed.parts().len() < before, "the merge ran");
    assert!(part_dirs(&sealed).iter().all(|d| is_encrypted(d)));
    assert!(files_containing(sealed_dir.path(), SECRET_MESSAGE).is_empty());
    assert_eq!(answers(&plain), answers(&sealed));
    let expected = answers(&plain);
    drop(sealed);
    let sealed = LogDb::open(sealed_dir.path(), small(Some(key(2)))).unwrap();
    assert_eq!(answers(&sealed), expected);
}

#[test]
fn a_wrong_key_or_no_key_is_an_open_error_naming_the_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let right = key(3);
    let db = LogDb::open(dir.path(), opts(Some(Arc::clone(&right)))).unwrap();
    db.append(records(T0, 100)).unwrap();
    db.flush().unwrap();
    drop(db);
    let wrong = key(4);
    assert_ne!(right.id(), wrong.id());
    match LogDb::open(dir.path(), opts(Some(Arc::clone(&wrong)))) {
        Err(LogsError::Encryption(m)) => {
            assert!(m.contains(right.id()) && m.contains(wrong.id()), "{m}");
        }
        other => panic!("{other:?}"),
    }
    match LogDb::open(dir.path(), opts(None)) {
        Err(e @ LogsError::Encryption(_)) => {
            let m = e.to_string();
            assert!(m.contains(right.id()) && m.contains("no key"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // The plain `Part::open` has no key either.
    let part_dir = files(dir.path())
        .into_iter()
        .find(|p| p.ends_with("meta.json"))
        .unwrap();
    assert!(matches!(
        Part::open(part_dir.parent().unwrap()),
        Err(LogsError::Encryption(_))
    ));
    let db = LogDb::open(dir.path(), opts(Some(right))).unwrap();
    assert_eq!(answers(&db)[0].len(), 100);
}

/// One encrypted part of several blocks under `dir`, and its key.
fn one_sealed_part(dir: &Path) -> (PathBuf, Arc<Key>) {
    let k = key(5);
    let path = dir.join("p");
    let mut input = records(T0, 60);
    // Big messages, so the 60 rows make a few blocks even of one stream.
    for r in &mut input {
        r.message.push_str(&"x".repeat(1000));
    }
    part::write_with_key(&path, &input, 0, Some(&*k)).unwrap();
    (path, k)
}

#[test]
fn a_flipped_byte_in_data_index_or_meta_is_an_error_never_a_panic_or_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let (path, k) = one_sealed_part(dir.path());
    let good = Part::open_with_key(&path, Some(&*k))
        .unwrap()
        .all()
        .unwrap();
    assert_eq!(good.len(), 60);
    for file in ["data", "index"] {
        let file = path.join(file);
        let bytes = std::fs::read(&file).unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            std::fs::write(&file, &damaged).unwrap();
            let read = Part::open_with_key(&path, Some(&*k)).and_then(|p| p.all());
            assert!(
                matches!(read, Err(LogsError::Corrupt(_))),
                "{} byte {i}: {read:?}",
                file.display()
            );
        }
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&file, &bytes[..cut]).unwrap();
            let read = Part::open_with_key(&path, Some(&*k)).and_then(|p| p.all());
            assert!(read.is_err(), "{} cut at {cut}", file.display());
        }
        std::fs::write(&file, &bytes).unwrap();
    }
    // meta.json is plaintext, but bound into the index's associated data.
    let meta_path = path.join("meta.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    for (from, to) in [
        ("\"wal_until\": 0", "\"wal_until\": 9"),
        ("\"rows\": 60", "\"rows\": 59"),
    ] {
        assert!(meta.contains(from), "{meta}");
        std::fs::write(&meta_path, meta.replace(from, to)).unwrap();
        let open = Part::open_with_key(&path, Some(&*k));
        assert!(matches!(open, Err(LogsError::Corrupt(_))), "{to}: {open:?}");
    }
    std::fs::write(&meta_path, &meta).unwrap();
    assert_eq!(
        Part::open_with_key(&path, Some(&*k))
            .unwrap()
            .all()
            .unwrap(),
        good
    );
}

#[test]
fn data_and_index_cannot_be_moved_between_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, k) = one_sealed_part(dir.path());
    let rows = Part::open_with_key(&a, Some(&*k)).unwrap().all().unwrap();
    // `c` holds the same records, so its blocks have the same lengths as `a`'s: only the
    // part id in the associated data tells them apart.
    let c = dir.path().join("c");
    let mut input = records(T0, 60);
    for r in &mut input {
        r.message.push_str(&"x".repeat(1000));
    }
    part::write_with_key(&c, &input, 0, Some(&*k)).unwrap();
    assert_eq!(
        std::fs::metadata(a.join("data")).unwrap().len(),
        std::fs::metadata(c.join("data")).unwrap().len()
    );
    // `b`: a copy of `a`, then with `c`'s data, then with `c`'s index.
    let b = dir.path().join("b");
    std::fs::create_dir(&b).unwrap();
    for f in ["index", "meta.json"] {
        std::fs::copy(a.join(f), b.join(f)).unwrap();
    }
    std::fs::copy(c.join("data"), b.join("data")).unwrap();
    let read = Part::open_with_key(&b, Some(&*k)).and_then(|p| p.all());
    assert!(matches!(read, Err(LogsError::Corrupt(_))), "{read:?}");
    std::fs::copy(a.join("data"), b.join("data")).unwrap();
    std::fs::copy(c.join("index"), b.join("index")).unwrap();
    let open = Part::open_with_key(&b, Some(&*k));
    assert!(matches!(open, Err(LogsError::Corrupt(_))), "{open:?}");
    std::fs::copy(a.join("index"), b.join("index")).unwrap();
    assert_eq!(
        Part::open_with_key(&b, Some(&*k)).unwrap().all().unwrap(),
        rows
    );
}

#[test]
fn key_files_in_raw_hex_or_base64_parse_and_anything_else_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8);
    let expected = Key::new(&bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let good: Vec<(&str, Vec<u8>)> = vec![
        ("raw", bytes.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("hex-newline", format!("{hex}\n").into_bytes()),
        (
            "hex-upper-crlf",
            format!("{}\r\n", hex.to_uppercase()).into_bytes(),
        ),
        ("base64", format!("{b64}\n").into_bytes()),
        (
            "base64-unpadded",
            b64.trim_end_matches('=').as_bytes().to_vec(),
        ),
    ];
    for (name, contents) in good {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let k = Key::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(k.id(), expected.id(), "{name}");
        assert_eq!(k, expected);
        assert!(
            !format!("{k:?}").contains(&hex[..8]),
            "Debug shows no key bytes"
        );
    }
    let short_b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "is empty"),
        ("blank", b" \n".to_vec(), "is empty"),
        ("raw-31", bytes[..31].to_vec(), "31 bytes"),
        ("raw-33", [&bytes[..], b"\xff"].concat(), "33 bytes"),
        ("hex-63", hex.as_bytes()[..63].to_vec(), "63 hex digits"),
        (
            "hex-128",
            format!("{hex}{hex}").into_bytes(),
            "128 hex digits",
        ),
        (
            "hex-with-junk",
            format!("{hex}zz").into_bytes(),
            "66 characters",
        ),
        ("base64-16", short_b64.into_bytes(), "decode to 16 bytes"),
        (
            "words",
            b"correct horse battery staple\n".to_vec(),
            "28 characters that are neither",
        ),
    ];
    for (name, contents, why) in bad {
        let path = dir.path().join(name);
        std::fs::write(&path, &contents).unwrap();
        match Key::from_file(&path) {
            Err(e @ LogsError::Encryption(_)) => {
                let m = e.to_string();
                assert!(m.contains(&path.display().to_string()), "{name}: {m}");
                assert!(m.contains(why), "{name}: {m}");
                assert!(
                    !m.contains(&hex[..16]) && !m.contains("horse"),
                    "{name}: {m}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let missing = dir.path().join("missing");
    match Key::from_file(&missing) {
        Err(e @ LogsError::Io { .. }) => assert!(e.to_string().contains("missing"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn switching_encryption_on_keeps_plaintext_parts_readable_and_seals_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let first = records(T0, 300);
    let db = LogDb::open(dir.path(), opts(None)).unwrap();
    db.append(first.clone()).unwrap();
    db.flush().unwrap();
    let old = part_dirs(&db);
    drop(db);
    assert!(old.iter().all(|d| !is_encrypted(d)));

    let k = key(6);
    let db = LogDb::open(dir.path(), opts(Some(Arc::clone(&k)))).unwrap();
    assert_eq!(
        answers(&db)[0].len(),
        300,
        "plaintext parts open with a key"
    );
    db.append(records(T0 + 1000 * 1_000_000_000, 300)).unwrap();
    db.flush().unwrap();
    let new: Vec<PathBuf> = part_dirs(&db)
        .into_iter()
        .filter(|d| !old.contains(d))
        .collect();
    assert_eq!(new.len(), 1);
    assert!(is_encrypted(&new[0]));
    assert!(old.iter().all(|d| !is_encrypted(d)), "old parts untouched");
    let before_merge = answers(&db);
    assert_eq!(before_merge[0].len(), 600);

    // A merge rewrites the plaintext part's records sealed.
    drop(db);
    let db = LogDb::open(
        dir.path(),
        Options {
            max_parts_per_day: 1,
            ..opts(Some(Arc::clone(&k)))
        },
    )
    .unwrap();
    db.merge().unwrap();
    assert_eq!(db.parts().len(), 1);
    assert!(part_dirs(&db).iter().all(|d| is_encrypted(d)));
    assert_eq!(answers(&db), before_merge);
    assert!(files_containing(dir.path(), SECRET_MESSAGE).is_empty());
    drop(db);
    assert!(matches!(
        LogDb::open(dir.path(), opts(None)),
        Err(LogsError::Encryption(_))
    ));
}

#[test]
fn every_tenant_of_a_store_seals_with_the_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(7);
    let logs = Logs::open(dir.path(), opts(Some(Arc::clone(&k)))).unwrap();
    for name in ["acme", "globex"] {
        let db = logs.tenant(&name.parse::<TenantId>().unwrap()).unwrap();
        db.append(records(T0, 50)).unwrap();
        db.flush().unwrap();
        assert!(part_dirs(&db).iter().all(|d| is_encrypted(d)));
    }
    drop(logs);
    assert!(files_containing(dir.path(), SECRET_FIELD).is_empty());
    let logs = Logs::open(dir.path(), opts(Some(k))).unwrap();
    assert_eq!(logs.all().len(), 2);
    assert!(Logs::open(dir.path(), opts(Some(key(8)))).is_err());
}

#[test]
fn blocks_swapped_inside_a_part_fail_to_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(9);
    // Two streams with the very same rows: two blocks of the same length, so swapping them
    // leaves every offset in the index valid and only the binding to a position catches it.
    let rows = |service: &str| {
        let stream = Labels::from_pairs([("service", service)]).unwrap();
        records(T0, 40).into_iter().map(move |r| LogRecord {
            stream: stream.clone(),
            ..r
        })
    };
    let path = dir.path().join("p");
    part::write_with_key(
        &path,
        &rows("a").chain(rows("b")).collect::<Vec<_>>(),
        0,
        Some(&*k),
    )
    .unwrap();
    let data = std::fs::read(path.join("data")).unwrap();
    assert_eq!(
        Part::open_with_key(&path, Some(&*k)).unwrap().meta().blocks,
        2
    );
    let half = data.len() / 2;
    assert_eq!(half * 2, data.len(), "two blocks of one length");
    let swapped = [&data[half..], &data[..half]].concat();
    std::fs::write(path.join("data"), &swapped).unwrap();
    let read = Part::open_with_key(&path, Some(&*k)).and_then(|p| p.all());
    assert!(
        matches!(&read, Err(LogsError::Corrupt(m)) if m.contains("block 0")),
        "{read:?}"
    );
}
