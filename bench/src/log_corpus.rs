//! The log corpus of `logs-compare`: NDJSON lines as Dozor's `POST /api/v1/logs/ingest`
//! takes them, from a seeded generator (`fastrand`), so the same `--bytes` and `--seed`
//! give the same file.
//!
//! Three quarters of the lines are a web shop and its neighbours — `shop-api`, `checkout`,
//! `payments`, two MES lines (`mes-line-1`, `mes-line-2`), `crm` and `rabbitmq` — built from
//! templates with variable parts (user, order and trace ids, amounts, latencies, SKUs, IPs,
//! HTTP paths and status codes, Java and Go stack traces); the rest are Loghub-2k lines
//! (real lines of eight systems: HDFS, Spark, BGL, Windows, Linux, Android, Apache,
//! Proxifier) when the shared data set is there, with every digit replaced by a random one
//! so that no two copies are alike, else a few built-in syslog-like templates
//! ([`LoghubSource::BuiltIn`]). Levels keep realistic proportions (about 75 % info, 15 %
//! debug, 7 % warn, 3 % error for the services; Loghub lines keep their own level).
//!
//! A line: `{"_time":"2026-11-30T06:00:00.123Z","_msg":"…","service":"…","host":"…",
//! "level":"…", …}` plus the [`FIELDS`] that apply to it. Times start where the caller
//! says (`logs-compare`: the whole hour a day before now, so the corpus is "the last 24 h"
//! and within any retention) and grow with the bytes written, reaching [`SPAN_MS`] later at
//! the end (across one UTC midnight). [`RARE_LINES`] lines, spread evenly through the file, carry
//! [`RARE_NEEDLE`] in their message; no line carries [`NEVER_NEEDLE`] (generated order ids
//! are `ORD-` and decimal digits, the needles have hex letters).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dozor_model::time::{civil_from_days, days_from_civil};

use crate::log_services::Generator;

/// The fields a line may carry besides `_time`, `_msg` and the stream fields.
pub const FIELDS: [&str; 6] = [
    "trace_id",
    "user_id",
    "order_id",
    "sku",
    "latency_ms",
    "http_status",
];
/// The stream fields of every line (Dozor's defaults).
pub const STREAM_FIELDS: [&str; 3] = ["service", "host", "level"];
/// A needle that occurs in exactly [`RARE_LINES`] messages.
pub const RARE_NEEDLE: &str = "ORD-7f3a9c";
/// How many lines carry [`RARE_NEEDLE`].
pub const RARE_LINES: usize = 7;
/// A needle that occurs in no line.
pub const NEVER_NEEDLE: &str = "ORD-e3b0c4";
/// How long the corpus spans, ms.
pub const SPAN_MS: i64 = 86_400_000;

/// Bump when the generator changes, so a cached corpus is rebuilt.
const GENERATOR_VERSION: u32 = 1;

/// Where the Loghub-style lines came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoghubSource {
    /// Real lines of the shared Loghub-2k sample: the directory and how many lines.
    Loghub(PathBuf, usize),
    /// The data set was not found; built-in templates stood in.
    BuiltIn,
}

/// A generated (or reused) corpus file.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The NDJSON file.
    pub path: PathBuf,
    /// Lines in it.
    pub lines: u64,
    /// Its size.
    pub bytes: u64,
    /// Time of the first line, ms.
    pub first_ms: i64,
    /// Time of the last line, ms.
    pub last_ms: i64,
    /// 0-based line numbers that carry [`RARE_NEEDLE`].
    pub rare_lines: Vec<u64>,
    /// Source of the Loghub-style lines.
    pub loghub: LoghubSource,
}

/// Builds `<work>/corpus-<bytes>-<seed>-<start>.ndjson` (the first line at `start_ms`), or
/// reuses it when a previous run of the same generator left it complete (its `.meta.json`
/// beside it says so).
pub fn build(
    work: &Path,
    bytes: u64,
    seed: u64,
    start_ms: i64,
    loghub_dir: &Path,
) -> anyhow::Result<Corpus> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let path = work.join(format!("corpus-{bytes}-{seed}-{start_ms}.ndjson"));
    let meta_path = path.with_extension("meta.json");
    let templates = LoghubTemplates::load(loghub_dir);
    if let Some(c) = reuse(&path, &meta_path, &templates.source) {
        return Ok(c);
    }
    let tmp = path.with_extension("ndjson.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut g = Generator::new(seed, templates);
    let mut line = String::with_capacity(4096);
    let (mut written, mut lines) = (0u64, 0u64);
    let (mut first_ms, mut last_ms) = (i64::MAX, 0);
    let mut rare_lines = Vec::new();
    let rare_at: Vec<u64> = (0..RARE_LINES as u64)
        .map(|i| bytes * (2 * i + 1) / (2 * RARE_LINES as u64))
        .collect();
    while written < bytes {
        // Times grow with the bytes written: the corpus spans SPAN_MS whatever its size.
        let time_ms = start_ms
            + i64::try_from(u128::from(written) * SPAN_MS as u128 / u128::from(bytes.max(1)))
                .unwrap_or(SPAN_MS);
        line.clear();
        let entry = if rare_lines.len() < RARE_LINES && written >= rare_at[rare_lines.len()] {
            rare_lines.push(lines);
            g.rare(rare_lines.len())
        } else {
            g.next()
        };
        entry.write_json(time_ms, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        lines += 1;
        first_ms = first_ms.min(time_ms);
        last_ms = last_ms.max(time_ms);
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot rename {} into place", tmp.display()))?;
    let corpus = Corpus {
        path,
        lines,
        bytes: written,
        first_ms,
        last_ms,
        rare_lines,
        loghub: g.loghub.source.clone(),
    };
    let meta = serde_json::json!({
        "version": GENERATOR_VERSION,
        "lines": corpus.lines,
        "bytes": corpus.bytes,
        "first_ms": corpus.first_ms,
        "last_ms": corpus.last_ms,
        "rare_lines": corpus.rare_lines,
        "loghub": source_label(&corpus.loghub),
    });
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta)?)
        .with_context(|| format!("cannot write {}", meta_path.display()))?;
    Ok(corpus)
}

/// `loghub:<dir>:<lines>` or `built-in`, as the meta file records it.
fn source_label(s: &LoghubSource) -> String {
    match s {
        LoghubSource::Loghub(dir, n) => format!("loghub:{}:{n}", dir.display()),
        LoghubSource::BuiltIn => "built-in".into(),
    }
}

fn reuse(path: &Path, meta_path: &Path, source: &LoghubSource) -> Option<Corpus> {
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta_path).ok()?).ok()?;
    let bytes = meta["bytes"].as_u64()?;
    let fresh = meta["version"].as_u64()? == u64::from(GENERATOR_VERSION)
        && meta["loghub"].as_str()? == source_label(source)
        && std::fs::metadata(path).ok()?.len() == bytes;
    if !fresh {
        return None;
    }
    Some(Corpus {
        path: path.to_owned(),
        lines: meta["lines"].as_u64()?,
        bytes,
        first_ms: meta["first_ms"].as_i64()?,
        last_ms: meta["last_ms"].as_i64()?,
        rare_lines: meta["rare_lines"]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect(),
        loghub: source.clone(),
    })
}

/// `2026-11-30T06:00:00.123Z` for ms since the epoch.
pub fn rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// The inverse of [`rfc3339_ms`] (exactly that form: `YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(
        num(0..4)?,
        u32::try_from(num(5..7)?).ok()?,
        u32::try_from(num(8..10)?).ok()?,
    );
    Some(
        days * 86_400_000
            + num(11..13)? * 3_600_000
            + num(14..16)? * 60_000
            + num(17..19)? * 1000
            + num(20..23)?,
    )
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A field's value: JSON text as a string or a number.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Str(String),
    Num(u64),
}

/// One generated line before it is written.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    service: &'static str,
    host: String,
    level: &'static str,
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Entry {
    pub(crate) fn new(
        service: &'static str,
        host: String,
        level: &'static str,
        message: String,
    ) -> Entry {
        Entry {
            service,
            host,
            level,
            message,
            fields: Vec::new(),
        }
    }

    pub(crate) fn field(mut self, name: &'static str, v: Value) -> Entry {
        self.fields.push((name, v));
        self
    }

    fn write_json(&self, time_ms: i64, out: &mut String) {
        out.push_str("{\"_time\":\"");
        out.push_str(&rfc3339_ms(time_ms));
        out.push_str("\",\"_msg\":");
        push_json_str(out, &self.message);
        for (k, v) in [
            ("service", self.service),
            ("host", self.host.as_str()),
            ("level", self.level),
        ] {
            let _ = write!(out, ",\"{k}\":");
            push_json_str(out, v);
        }
        for (k, v) in &self.fields {
            let _ = write!(out, ",\"{k}\":");
            match v {
                Value::Str(s) => push_json_str(out, s),
                Value::Num(n) => {
                    let _ = write!(out, "{n}");
                }
            }
        }
        out.push('}');
    }
}

/// One Loghub line: the service it is filed under, its level and its message.
#[derive(Debug, Clone)]
pub(crate) struct LoghubLine {
    pub(crate) service: &'static str,
    pub(crate) level: &'static str,
    pub(crate) message: String,
}

/// The Loghub-style message templates and where they came from.
#[derive(Debug, Clone)]
pub(crate) struct LoghubTemplates {
    /// Lines per data set, in the order of [`LOGHUB_SETS`].
    pub(crate) sets: Vec<Vec<LoghubLine>>,
    pub(crate) source: LoghubSource,
}

/// The Loghub data sets used, and the service each is filed under here.
const LOGHUB_SETS: [(&str, &str); 8] = [
    ("HDFS", "hdfs-datanode"),
    ("Spark", "spark-etl"),
    ("BGL", "bgl-ras"),
    ("Windows", "windows-cbs"),
    ("Linux", "linux-auth"),
    ("Android", "android-pos"),
    ("Apache", "apache-httpd"),
    ("Proxifier", "proxifier"),
];

impl LoghubTemplates {
    /// Reads `<dir>/<Set>/<Set>_2k.log` of every set in [`LOGHUB_SETS`]: from its
    /// `_structured.csv` beside it when there (level, component and content apart), else
    /// the raw lines. Falls back to built-in templates when no set is found.
    fn load(dir: &Path) -> LoghubTemplates {
        let mut sets = Vec::new();
        let mut total = 0;
        for (set, service) in LOGHUB_SETS {
            let log = dir.join(set).join(format!("{set}_2k.log"));
            let csv = dir.join(set).join(format!("{set}_2k.log_structured.csv"));
            let lines = match std::fs::read_to_string(&csv) {
                Ok(text) => structured_lines(&text, service),
                Err(_) => match std::fs::read_to_string(&log) {
                    Ok(text) => text
                        .lines()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                        .map(|l| LoghubLine {
                            service,
                            level: level_in(l),
                            message: l.to_owned(),
                        })
                        .collect(),
                    Err(_) => Vec::new(),
                },
            };
            total += lines.len();
            if !lines.is_empty() {
                sets.push(lines);
            }
        }
        if sets.is_empty() {
            return LoghubTemplates {
                sets: vec![built_in_lines()],
                source: LoghubSource::BuiltIn,
            };
        }
        LoghubTemplates {
            sets,
            source: LoghubSource::Loghub(dir.to_owned(), total),
        }
    }
}

/// Lines of a Loghub `_structured.csv`: `Component: Content` (or `Content`), with the level
/// from its `Level` column where that holds a level.
fn structured_lines(text: &str, service: &'static str) -> Vec<LoghubLine> {
    let rows = parse_csv(text);
    let Some((header, rows)) = rows.split_first() else {
        return Vec::new();
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(content), component, level) = (col("Content"), col("Component"), col("Level")) else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|r| {
            let content = r.get(content)?.trim();
            if content.is_empty() {
                return None;
            }
            let message = match component.and_then(|c| r.get(c)).map(|c| c.trim()) {
                Some(c) if !c.is_empty() => format!("{c}: {content}"),
                _ => content.to_owned(),
            };
            let level = level
                .and_then(|l| r.get(l))
                .and_then(|l| parse_level(l))
                .unwrap_or_else(|| level_in(&message));
            Some(LoghubLine {
                service,
                level,
                message,
            })
        })
        .collect()
}

/// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A level name as the lines write it (`INFO`, `W`, `notice`, `Warning`…), normalised.
fn parse_level(s: &str) -> Option<&'static str> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "info" | "i" | "notice" => "info",
        "debug" | "d" | "v" | "verbose" | "trace" => "debug",
        "warn" | "warning" | "w" => "warn",
        "error" | "e" | "fatal" | "severe" | "f" | "failure" | "crit" => "error",
        _ => return None,
    })
}

/// The level a raw line names somewhere, else `info`.
fn level_in(line: &str) -> &'static str {
    line.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 3)
        .find_map(parse_level)
        .unwrap_or("info")
}

/// Stand-ins for Loghub when the data set is absent: syslog-like lines of a few daemons.
fn built_in_lines() -> Vec<LoghubLine> {
    [
        ("info", "sshd[2231]: Accepted publickey for deploy from 10.0.4.17 port 52814 ssh2"),
        ("warn", "sshd[2240]: Failed password for invalid user admin from 185.22.31.9 port 40112 ssh2"),
        ("info", "CRON[8812]: (root) CMD (/usr/lib/sysstat/debian-sa1 1 1)"),
        ("info", "systemd[1]: Started Session 4412 of user deploy."),
        ("warn", "kernel: [812345.123456] TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies."),
        ("error", "kernel: [912345.654321] Out of memory: Killed process 23145 (java) total-vm:8123456kB, anon-rss:4123456kB"),
        ("info", "nginx: 10.0.2.15 - - \"GET /static/app.3f2a1b.js HTTP/1.1\" 200 48213 \"-\" \"Mozilla/5.0\""),
        ("info", "dhclient[912]: DHCPACK of 10.0.3.44 from 10.0.0.1"),
        ("info", "postgres[3321]: LOG:  checkpoint complete: wrote 1234 buffers (7.5%); 0 WAL file(s) added"),
        ("error", "postgres[3321]: ERROR:  duplicate key value violates unique constraint \"orders_pkey\""),
    ]
    .into_iter()
    .map(|(level, m)| LoghubLine {
        service: "legacy-syslog",
        level,
        message: m.to_owned(),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T06:00:00Z.
    const START_MS: i64 = 20_787 * 86_400_000 + 6 * 3_600_000;

    fn shared_loghub() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/loghub2k")
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(rfc3339_ms(START_MS), "2026-11-30T06:00:00.000Z");
        for ms in [START_MS, START_MS + 12_345_678, START_MS + SPAN_MS - 1] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339_ms("2026-11-30T06:00:00Z"), None);
    }

    #[test]
    fn csv_keeps_quoted_commas_quotes_and_line_breaks() {
        let rows = parse_csv("a,b\r\n1,\"x, \"\"y\"\"\nz\"\r\n2,\n");
        assert_eq!(
            rows,
            vec![vec!["a", "b"], vec!["1", "x, \"y\"\nz"], vec!["2", ""]]
        );
    }

    #[test]
    fn corpus_is_reproducible_valid_ndjson_with_the_needles_where_told() {
        let dir = tempfile_dir("corpus");
        for loghub in [shared_loghub(), dir.join("no-such-dir")] {
            let a = build(&dir.join("a"), 2_000_000, 7, START_MS, &loghub).unwrap();
            let b = build(&dir.join("b"), 2_000_000, 7, START_MS, &loghub).unwrap();
            let text = std::fs::read_to_string(&a.path).unwrap();
            assert_eq!(text, std::fs::read_to_string(&b.path).unwrap());
            assert!(a.bytes >= 2_000_000 && text.len() as u64 == a.bytes);
            let opts = dozor_ingest::ndjson::NdjsonOptions::new(0);
            let mut last = 0;
            let mut rare = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let r = dozor_ingest::ndjson::parse(line.as_bytes(), &opts).unwrap();
                assert!(r[0].time_ns >= last, "line {i}: time goes back");
                last = r[0].time_ns;
                assert!(!line.contains(NEVER_NEEDLE));
                if r[0].message.contains(RARE_NEEDLE) {
                    rare.push(i as u64);
                }
            }
            assert_eq!(rare, a.rare_lines);
            assert_eq!(rare.len(), RARE_LINES);
            assert_eq!(a.lines as usize, text.lines().count());
            assert_eq!(a.first_ms, START_MS);
            assert!(a.last_ms - a.first_ms > SPAN_MS * 99 / 100);
            // A second build reuses the file.
            let again = build(&dir.join("a"), 2_000_000, 7, START_MS, &loghub).unwrap();
            assert_eq!((again.lines, again.rare_lines), (a.lines, a.rare_lines));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dozor-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
