//! Dozor's metric storage engine.
//!
//! The design follows Prometheus' TSDB with a denser encoding. Per tenant ([`Db`]):
//!
//! - a **WAL** ([`wal`]): CRC-framed records in numbered segments; an append returns once its
//!   record is written (durable against a process crash; against power loss per
//!   [`FsyncPolicy`]);
//! - the **head** ([`head`]): recent samples in memory, series interned by label set, a
//!   postings index for matchers (regexes included), out-of-order samples accepted within a
//!   window;
//! - **blocks** ([`block`]): immutable directories covering a time range (2 h by default),
//!   each series stored as one [`chunk`] — regular timestamps as a rule, irregular ones and
//!   values with `pco` — plus an index and `meta.json`. When the head spans 1.5 block
//!   durations its oldest range is cut into a block and the WAL is rewritten as a
//!   checkpoint of what stayed. Finished windows of 3, 9 and 27 block durations are
//!   compacted into one block; retention deletes whole blocks by age and by total size.
//! - **downsampled blocks** ([`downsample`]): once a raw block's compaction is final it is
//!   also summarised at 1 m, 5 m, 1 h and 1 d resolution (min, max, sum, count, last per bucket),
//!   kept longer than raw data and read by
//!   [`Queryable::select_downsampled`] when a long-range query accepts coarser data.
//!
//! [`Tsdb`] keeps one [`Db`] per tenant in `<root>/<tenant>/`. Readers use the [`Queryable`]
//! trait, which the PromQL engine evaluates against. File layouts: `docs/format/tsdb.md`;
//! every file name: [`files`].
//!
//! Architecture invariants:
//! - A sample acknowledged by [`Db::append`] is in the WAL or in a block, and [`Db::open`]
//!   brings it back.
//! - Blocks are never modified; they are written under a temporary name and renamed.
//! - Tenants never share a directory, a head or a block.
//!
//! ```
//! use dozor_model::{Labels, Matcher, Sample};
//! use dozor_tsdb::{Options, Queryable, Tsdb};
//! let dir = tempfile::tempdir().unwrap();
//! let tsdb = Tsdb::open(dir.path(), Options::default()).unwrap();
//! let db = tsdb.tenant(&"shop".parse().unwrap()).unwrap();
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
//! db.append(&[(up, vec![Sample { t: 1_000, v: 1.0 }])]).unwrap();
//! let found = db.select(&[Matcher::equal("job", "api")], 0, 2_000).unwrap();
//! assert_eq!(found[0].samples, [Sample { t: 1_000, v: 1.0 }]);
//! ```

pub mod block;
pub mod chunk;
mod db;
pub mod downsample;
pub mod encoding;
mod error;
pub mod files;
pub mod head;
pub mod memchunk;
pub mod postings;
pub mod record;
pub mod xor;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dozor_model::labels::is_stale_nan;
use dozor_model::{Labels, Matcher, Sample, TenantId, TenantMap};
use serde::{Deserialize, Serialize};

pub use chunk::Aggregates;
pub use db::{AppendStats, Db, DbCounters};
/// The WAL the store writes (the `dozor-wal` crate).
pub use dozor_wal as wal;
pub use dozor_wal::FsyncPolicy;
pub use error::TsdbError;

/// Storage settings (the `tsdb:` section of `dozor.yml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Time range of a block cut from the head, ms.
    pub block_duration_ms: i64,
    /// How far behind a series' newest sample an older one is still accepted, ms.
    pub out_of_order_window_ms: i64,
    /// Delete blocks whose newest sample is older than this, ms (`None`: keep forever).
    pub retention_ms: Option<i64>,
    /// Delete the oldest blocks while all blocks together exceed this many bytes.
    pub retention_bytes: Option<u64>,
    /// When the WAL is `fsync`ed.
    pub fsync: FsyncPolicy,
    /// Write 1 m, 5 m, 1 h and 1 d aggregates of raw blocks whose compaction is final.
    pub downsample: bool,
    /// Delete 1 m aggregates older than this, ms (`None`: keep forever).
    pub retention_1m_ms: Option<i64>,
    /// Delete 5 m aggregates older than this, ms (`None`: keep forever).
    pub retention_5m_ms: Option<i64>,
    /// Delete 1 h aggregates older than this, ms (`None`: keep forever).
    pub retention_1h_ms: Option<i64>,
    /// Delete 1 d aggregates older than this, ms (`None`: keep forever).
    pub retention_1d_ms: Option<i64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            block_duration_ms: 2 * 3600 * 1000,
            out_of_order_window_ms: 10 * 60 * 1000,
            retention_ms: Some(15 * 24 * 3600 * 1000),
            retention_bytes: None,
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            downsample: true,
            retention_1m_ms: Some(30 * 24 * 3600 * 1000),
            retention_5m_ms: Some(60 * 24 * 3600 * 1000),
            retention_1h_ms: Some(365 * 24 * 3600 * 1000),
            retention_1d_ms: None,
        }
    }
}

/// A series and its samples, sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples in the asked range, sorted, one per timestamp.
    pub samples: Vec<Sample>,
}

/// One column of a downsampled series. The discriminant is the column's place in an
/// aggregate chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Aggregate {
    /// The smallest value of each bucket (`min_over_time`).
    Min = 0,
    /// The largest value (`max_over_time`).
    Max = 1,
    /// The sum of the values (`sum_over_time`, and with [`Aggregate::Count`] the average).
    Sum = 2,
    /// How many samples the bucket had (`count_over_time` sums this column).
    Count = 3,
    /// The bucket's last value (instant selectors, `rate`, `last_over_time`…).
    #[default]
    Last = 4,
}

impl Aggregate {
    /// Every aggregate, in column order.
    pub const ALL: [Aggregate; 5] = [
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Sum,
        Aggregate::Count,
        Aggregate::Last,
    ];
}

/// What a reader accepts in place of raw samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelectHints {
    /// The coarsest resolution acceptable, ms (0: raw samples only). A range query with
    /// step `s` typically accepts `s / 5`.
    pub max_resolution_ms: i64,
    /// Which aggregate the reader applies over time.
    pub aggregate: Aggregate,
}

/// The answer of [`Queryable::select_downsampled`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    /// The series; where downsampled data was used, each sample is one bucket's
    /// [`SelectHints::aggregate`], stamped with the bucket's last millisecond, and raw
    /// samples stand in for the rest (as value 1 each when the aggregate is
    /// [`Aggregate::Count`]).
    pub series: Vec<Series>,
    /// The coarsest resolution used, ms (0: raw only). Readers widen their lookback to it.
    pub resolution_ms: i64,
}

/// Read access to stored series: what the PromQL engine and the export API query.
pub trait Queryable: Send + Sync {
    /// Series matching every matcher, with their samples in `[mint, maxt]`; series without
    /// samples in the range are left out.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, TsdbError>;

    /// Like [`Queryable::select`], but answered from downsampled aggregates where the store
    /// has them at a resolution `hints` accepts (the coarsest such, falling back to finer
    /// ones and to raw samples where they are missing). The default has no aggregates.
    fn select_downsampled(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> Result<Selection, TsdbError> {
        let mut series = self.select(matchers, mint, maxt)?;
        if hints.aggregate == Aggregate::Count {
            for s in &mut series {
                for x in s.samples.iter_mut().filter(|x| !is_stale_nan(x.v)) {
                    x.v = 1.0;
                }
            }
        }
        Ok(Selection {
            series,
            resolution_ms: 0,
        })
    }
    /// Label names of the matching series (all series when `matchers` is empty).
    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError>;
    /// Values of `name` among the matching series (all series when `matchers` is empty).
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError>;
}

/// The metric store of every tenant, under one root directory.
#[derive(Debug)]
pub struct Tsdb {
    root: PathBuf,
    opts: Options,
    dbs: TenantMap<Db>,
}

impl Tsdb {
    /// Opens `root`, and every tenant already stored there (replaying their WALs).
    pub fn open(root: &Path, opts: Options) -> Result<Tsdb, TsdbError> {
        std::fs::create_dir_all(root).map_err(TsdbError::io("create", root))?;
        let mut dbs = Vec::new();
        for (name, path) in dozor_wal::dir::subdirs(root)? {
            if let Ok(tenant) = name.parse::<TenantId>() {
                dbs.push((tenant, Db::open(&path, opts)?));
            }
        }
        Ok(Tsdb {
            root: root.to_owned(),
            opts,
            dbs: TenantMap::new(dbs),
        })
    }

    /// The store of `tenant`, created on first use.
    pub fn tenant(&self, tenant: &TenantId) -> Result<Arc<Db>, TsdbError> {
        self.dbs.get_or_open(tenant, || {
            Db::open(&self.root.join(tenant.as_str()), self.opts)
        })
    }

    /// The store of `tenant` if it has any data (reads never create a tenant).
    pub fn existing(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        self.dbs.get(tenant)
    }

    /// Every open tenant store.
    pub fn all(&self) -> Vec<(TenantId, Arc<Db>)> {
        self.dbs.all()
    }

    /// The storage settings.
    pub fn options(&self) -> &Options {
        &self.opts
    }
}
