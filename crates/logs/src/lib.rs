//! Dozor's log and event store: lines and business events of every tenant, by stream, on
//! disk in compressed columns with filters that let a search skip what cannot match.
//!
//! [`Logs`] holds one [`LogDb`] per tenant under `<root>/<tenant>/`. A `LogDb` is:
//!
//! - a WAL (`crates/wal`) that every [`LogDb::append`] writes before it returns, so an
//!   acknowledged record survives `kill -9` (and, under the fsync policy, power loss);
//! - an in-memory head of the records appended since the last flush;
//! - immutable parts ([`part`]), one UTC day each, under `parts/<YYYY-MM-DD>/`: the day's
//!   records sorted by stream and time, cut into [`block`]s of one stream — times with `pco`,
//!   messages and each field as its own zstd column — with each block's time range and a
//!   trigram [`bloom`] filter of its messages in the part's index.
//!
//! [`LogDb::maintain`] flushes the head into parts (when it is large or old), merges a
//! day's small parts, and deletes days past retention. [`LogDb::select`] reads the head and
//! the parts for a [`LogQuery`]: a stream selector (Prometheus matchers on stream labels), a
//! time range and substrings every message must contain (`|= "needle"`); parts, streams,
//! blocks out of range and blocks whose bloom filter rules a needle out are skipped
//! unread.
//!
//! Data enters as [`dozor_model::LogRecord`]s (the ingest decoders build them) and leaves
//! as the same, newest first or oldest first.
//!
//! Architecture invariants: an append that returned `Ok` is in the WAL or a part and comes
//! back at open; a record is in exactly one of the head, a part being written, or a part,
//! and a reader sees each exactly once; parts are written under `.tmp` names and renamed,
//! never modified; tenants never share a directory; decoding stored bytes never panics.
//!
//! ```
//! use dozor_logs::{LogDb, LogQuery, Options};
//! use dozor_model::{Labels, LogRecord, Matcher};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = LogDb::open(dir.path(), Options::default()).unwrap();
//! let shop = Labels::from_pairs([("service", "shop"), ("level", "error")]).unwrap();
//! db.append(vec![LogRecord::new(1_000, shop.clone(), "payment failed: card declined")]).unwrap();
//! db.flush().unwrap();
//! let found = db
//!     .select(&LogQuery::new(vec![Matcher::equal("service", "shop")], 0, 2_000).containing("failed"))
//!     .unwrap();
//! assert_eq!(found.len(), 1);
//! ```

pub mod archive;
pub mod block;
pub mod bloom;
pub mod crypt;
mod db;
mod error;
pub mod files;
pub mod logql;
pub mod part;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dozor_model::{LogRecord, Matcher, TenantId, TenantMap};

pub use crypt::Key;
pub use db::tiers;
pub use db::{AppendStats, LogDb, MAX_FIELD_BYTES, MAX_MESSAGE_BYTES};
pub use dozor_wal::FsyncPolicy;
pub use error::LogsError;

/// Storage settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// When the WAL is `fsync`ed.
    pub fsync: FsyncPolicy,
    /// Flush the head into parts once it holds this many bytes of messages and fields.
    /// 64 MiB by default: against 32 MiB, a stream's rows come in blocks twice as full
    /// (each block's bloom filter and zstd frame cost less per row) and a day has half as
    /// many parts to merge — on the bench corpus 6–10 % less ingest CPU and less than half
    /// the flush CPU, for about 200 MiB more memory at the peak of a fast ingest
    /// (`bench/README.md`).
    pub flush_bytes: usize,
    /// ... or once its oldest record arrived this long ago.
    pub flush_interval: Duration,
    /// Merge a day's parts once it has more than this many.
    pub max_parts_per_day: usize,
    /// Most uncompressed bytes one merge reads (it holds them in memory).
    pub max_merge_bytes: u64,
    /// Delete days older than this (`None`: keep everything).
    pub retention: Option<Duration>,
    /// Seal new parts (flushes and merges) with this key (`None`: write plaintext). Parts
    /// sealed with it, and plaintext parts, open; parts sealed with another key do not.
    /// The WAL stays plaintext (`docs/format/logs.md`).
    pub encryption: Option<Arc<Key>>,
    /// Hot/warm/cold retention tiers, applied by [`LogDb::maintain`] (`None`: `retention`
    /// alone).
    pub tiers: Option<Arc<tiers::Tiers>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            flush_bytes: 64 << 20,
            flush_interval: Duration::from_secs(60),
            max_parts_per_day: 8,
            max_merge_bytes: 512 << 20,
            retention: None,
            encryption: None,
            tiers: None,
        }
    }
}

/// Substrings every message must contain (`|= "a" |= "b"`), case-sensitive.
#[derive(Debug, Clone, Default)]
pub struct Needles(Vec<memchr::memmem::Finder<'static>>);

impl Needles {
    /// Adds a needle.
    pub fn push(&mut self, needle: &str) {
        self.0
            .push(memchr::memmem::Finder::new(needle.as_bytes()).into_owned());
    }

    /// Whether `message` contains every needle.
    pub fn all_in(&self, message: &str) -> bool {
        self.0.iter().all(|f| f.find(message.as_bytes()).is_some())
    }

    /// Whether a block with this filter may hold a message containing every needle.
    pub fn may_be_in(&self, bloom: &bloom::Bloom) -> bool {
        self.0.iter().all(|f| bloom.may_contain(f.needle()))
    }
}

/// A record as a scan sees it: borrowed from a decoded block or the head.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    /// The stream's labels.
    pub stream: &'a dozor_model::Labels,
    /// The message.
    pub message: &'a str,
    /// Fields, sorted by name.
    pub fields: &'a [(String, String)],
}

impl<'a> RecordRef<'a> {
    /// A view of `r`.
    pub fn of(r: &'a LogRecord) -> RecordRef<'a> {
        RecordRef {
            time_ns: r.time_ns,
            stream: &r.stream,
            message: &r.message,
            fields: &r.fields,
        }
    }

    /// An owned copy.
    pub fn to_record(&self) -> LogRecord {
        LogRecord {
            time_ns: self.time_ns,
            stream: self.stream.clone(),
            message: self.message.to_owned(),
            fields: self.fields.to_vec(),
        }
    }
}

/// Which records come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// Stream selector: every matcher must match the stream's labels.
    pub matchers: Vec<Matcher>,
    /// First nanosecond, inclusive.
    pub start_ns: i64,
    /// Last nanosecond, inclusive.
    pub end_ns: i64,
    /// Substrings every message must contain.
    pub needles: Needles,
    /// Most records returned (the first by `direction`).
    pub limit: usize,
    /// Order of the results.
    pub direction: Direction,
}

impl LogQuery {
    /// Every record of the selected streams in `[start_ns, end_ns]`, newest first, at most
    /// 1000.
    pub fn new(matchers: Vec<Matcher>, start_ns: i64, end_ns: i64) -> LogQuery {
        LogQuery {
            matchers,
            start_ns,
            end_ns,
            needles: Needles::default(),
            limit: 1000,
            direction: Direction::Backward,
        }
    }

    /// Also requires `needle` in the message.
    pub fn containing(mut self, needle: &str) -> LogQuery {
        self.needles.push(needle);
        self
    }
}

/// The log store of every tenant, under one root directory.
#[derive(Debug)]
pub struct Logs {
    root: PathBuf,
    opts: Options,
    dbs: TenantMap<LogDb>,
}

impl Logs {
    /// Opens `root` and every tenant already stored there (replaying their WALs).
    pub fn open(root: &Path, opts: Options) -> Result<Logs, LogsError> {
        std::fs::create_dir_all(root).map_err(LogsError::io("create", root))?;
        let mut dbs = Vec::new();
        for (name, path) in dozor_wal::dir::subdirs(root)? {
            if let Ok(tenant) = name.parse::<TenantId>() {
                dbs.push((tenant, LogDb::open(&path, opts.clone())?));
            }
        }
        Ok(Logs {
            root: root.to_owned(),
            opts,
            dbs: TenantMap::new(dbs),
        })
    }

    /// The store of `tenant`, created on first use.
    pub fn tenant(&self, tenant: &TenantId) -> Result<Arc<LogDb>, LogsError> {
        self.dbs.get_or_open(tenant, || {
            LogDb::open(&self.root.join(tenant.as_str()), self.opts.clone())
        })
    }

    /// The store of `tenant` if it has any data (reads never create a tenant).
    pub fn existing(&self, tenant: &TenantId) -> Option<Arc<LogDb>> {
        self.dbs.get(tenant)
    }

    /// While the volume holding the store is fuller than `watermark` (a fraction), moves
    /// the oldest hot day of any tenant to warm (when tiers are configured) or deletes the
    /// oldest day (never today's); returns how many steps it took.
    pub fn relieve_watermark(&self, watermark: f64, now_ns: i64) -> Result<usize, LogsError> {
        let no_tiers = tiers::Tiers {
            hot: Duration::MAX,
            warm: None,
            cold: None,
            aggregates: false,
        };
        let policy = self.opts.tiers.as_deref().unwrap_or(&no_tiers);
        let dbs: Vec<Arc<LogDb>> = self.all().into_iter().map(|(_, db)| db).collect();
        let mut steps = 0;
        // Bounded: each step moves or deletes a day, and there are finitely many.
        while steps < 10_000 && tiers::volume_usage(&self.root)? > watermark {
            if !tiers::relieve_one(&dbs, policy, now_ns)? {
                tracing::warn!(
                    watermark,
                    "disk over the watermark, and no log day left to free but today's"
                );
                break;
            }
            steps += 1;
        }
        Ok(steps)
    }

    /// Every open tenant store.
    pub fn all(&self) -> Vec<(TenantId, Arc<LogDb>)> {
        self.dbs.all()
    }
}
