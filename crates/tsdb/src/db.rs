//! [`Db`]: one tenant's metrics — a WAL, the in-memory head and the on-disk blocks — and
//! the maintenance that moves data between them (cut, compaction, downsampling, retention).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dozor_model::{Labels, Matcher, Sample, SeriesBatch};

use crate::block::{self, Block};
use crate::downsample::{self, RESOLUTIONS};
use crate::files::{BLOCKS_DIR, WAL_DIR, block_name};
use crate::head::{Head, Rejected};
use crate::record::{Record, SeriesRef};
use crate::wal::{self, Wal};
use crate::{Aggregate, Options, Queryable, SelectHints, Selection, Series, TsdbError};

/// Series per series record of a WAL checkpoint.
const CHECKPOINT_SERIES: usize = 10_000;
/// Samples per samples record of a WAL checkpoint: at most 23 bytes each encoded, so a
/// record stays far below the WAL's 64 MiB limit.
const CHECKPOINT_SAMPLES: usize = 1_000_000;

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Samples stored.
    pub accepted: u64,
    /// Samples refused as older than the out-of-order window.
    pub out_of_order: u64,
    /// Samples refused as older than data already in blocks.
    pub too_old: u64,
    /// Series seen for the first time.
    pub new_series: u64,
}

/// Running totals, for `/metrics`.
#[derive(Debug, Default)]
pub struct DbCounters {
    /// Samples stored.
    pub samples: AtomicU64,
    /// Samples refused (out of order or too old).
    pub rejected: AtomicU64,
    /// Blocks written by head cuts.
    pub cuts: AtomicU64,
    /// Compactions done.
    pub compactions: AtomicU64,
    /// Blocks deleted by retention.
    pub retention_deletions: AtomicU64,
    /// Raw blocks summarised into downsampled blocks.
    pub downsamplings: AtomicU64,
}

/// One tenant's metric store.
#[derive(Debug)]
pub struct Db {
    dir: PathBuf,
    opts: Options,
    head: Head,
    wal: Mutex<Wal>,
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Appends hold it shared; a head cut holds it exclusively so the WAL checkpoint sees
    /// every appended sample.
    gate: RwLock<()>,
    /// Serializes maintenance (cuts, compactions, retention).
    maintenance: Mutex<()>,
    block_seq: AtomicU64,
    /// Totals since start.
    pub counters: DbCounters,
}

impl Db {
    /// Opens (or creates) the store in `dir`: loads blocks, replays the WAL into the head.
    pub fn open(dir: &Path, opts: Options) -> Result<Db, TsdbError> {
        let blocks_dir = dir.join(BLOCKS_DIR);
        fs::create_dir_all(&blocks_dir).map_err(TsdbError::io("create", &blocks_dir))?;
        let mut blocks = Vec::new();
        for (_, path) in dozor_wal::dir::complete_subdirs(&blocks_dir)? {
            blocks.push(Arc::new(Block::open(&path)?));
        }
        blocks.sort_by_key(|b| (b.meta().mint, b.meta().maxt));
        let head = Head::default();
        if let Some(maxt) = blocks
            .iter()
            .filter(|b| b.meta().resolution_ms == 0)
            .map(|b| b.meta().maxt)
            .max()
        {
            head.set_min_valid_t(maxt + 1);
        }
        let wal_dir = dir.join(WAL_DIR);
        replay_into(&wal_dir, &head)?;
        let wal = Wal::open(&wal_dir, opts.fsync)?;
        let seq = blocks.len() as u64;
        Ok(Db {
            dir: dir.to_owned(),
            opts,
            head,
            wal: Mutex::new(wal),
            blocks: RwLock::new(blocks),
            gate: RwLock::new(()),
            maintenance: Mutex::new(()),
            block_seq: AtomicU64::new(seq),
            counters: DbCounters::default(),
        })
    }

    /// Appends samples; returns once they are in the WAL (durable under the fsync policy).
    /// See [`Db::append_batch`].
    pub fn append(&self, batch: &[(Labels, Vec<Sample>)]) -> Result<AppendStats, TsdbError> {
        self.append_batch(&SeriesBatch::from(batch))
    }

    /// Appends a packed batch; returns once it is in the WAL (durable under the fsync
    /// policy).
    ///
    /// As in Prometheus, samples are checked against the head, written to the WAL, and only
    /// then added to the head: a failed WAL write (a full disk) leaves the head untouched,
    /// so what the caller was told is not stored is not visible either.
    pub fn append_batch(&self, batch: &SeriesBatch) -> Result<AppendStats, TsdbError> {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let mut stats = AppendStats::default();
        let targets = self.head.resolve(batch);
        let mut new_series = Vec::new();
        let mut accepted = Vec::with_capacity(batch.samples_len());
        let window = self.opts.out_of_order_window_ms;
        for ((packed, samples), (r, series, created)) in batch.iter().zip(&targets) {
            stats.new_series += u64::from(*created);
            if !series.logged.load(Ordering::Acquire) {
                new_series.push((*r, packed));
            }
            for s in samples {
                match self.head.check(series, *s, window) {
                    Ok(()) => accepted.push((*r, *s)),
                    Err(Rejected::OutOfOrder) => stats.out_of_order += 1,
                    Err(Rejected::TooOld) => stats.too_old += 1,
                }
            }
        }
        let mut payload = Vec::new();
        {
            let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
            if !new_series.is_empty() {
                Record::encode_series_packed(&new_series, &mut payload);
                wal.append(&payload)?;
            }
            if !accepted.is_empty() {
                payload.clear();
                Record::encode_samples(&accepted, &mut payload);
                wal.append(&payload)?;
            }
        }
        if !new_series.is_empty() {
            for (_, series, _) in &targets {
                series.logged.store(true, Ordering::Release);
            }
        }
        // `accepted` follows batch order: each series' samples are one run.
        let mut next = accepted.iter().peekable();
        let mut late = 0u64;
        for (r, series, _) in &targets {
            while let Some(&&(_, s)) = next.peek().filter(|(nr, _)| nr == r) {
                next.next();
                // A concurrent writer may have moved the series on since the check; the
                // sample is in the WAL either way and replay sorts it in.
                if self.head.append(series, s, Some(window)).is_err() {
                    late += 1;
                }
            }
        }
        stats.accepted = accepted.len() as u64 - late;
        stats.out_of_order += late;
        self.counters
            .samples
            .fetch_add(stats.accepted, Ordering::Relaxed);
        self.counters
            .rejected
            .fetch_add(stats.out_of_order + stats.too_old, Ordering::Relaxed);
        Ok(stats)
    }

    /// `fsync`s the WAL if the interval policy says so (call periodically).
    pub fn sync_if_due(&self) -> Result<(), TsdbError> {
        Ok(self
            .wal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sync_if_due()?)
    }

    /// `fsync`s the WAL now (shutdown).
    pub fn sync(&self) -> Result<(), TsdbError> {
        Ok(self.wal.lock().unwrap_or_else(|p| p.into_inner()).sync()?)
    }

    /// Cuts the head into blocks when it spans 1.5 block durations, compacts one group of
    /// finished blocks — or, when none is left to compact, downsamples one finished raw
    /// block — and applies retention. Call every few seconds.
    pub fn maintain(&self, now_ms: i64) -> Result<(), TsdbError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let range = self.opts.block_duration_ms;
        while let Some((min, max)) = self.head.time_range() {
            let start = min.div_euclid(range) * range;
            if max < start + range + range / 2 {
                break;
            }
            self.cut(start + range)?;
        }
        if !self.compact_once()? {
            self.downsample_once(now_ms)?;
        }
        self.apply_retention(now_ms)
    }

    /// Moves everything in the head into a block now (tests, benchmarks, shutdown).
    pub fn flush(&self) -> Result<(), TsdbError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, max)) = self.head.time_range() {
            self.cut(max + 1)?;
        }
        Ok(())
    }

    /// Writes the head's samples before `before` as a block, then rewrites the WAL as a
    /// checkpoint of what stayed in the head.
    fn cut(&self, before: i64) -> Result<(), TsdbError> {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        // The block is in place before the head lets go of its samples; readers look at the
        // head before the block list, so they see the samples in one or both (duplicates
        // merge), never in neither.
        let moving = self.head.samples_before(before);
        if !moving.is_empty() {
            self.write_block(moving, 0)?;
            self.counters.cuts.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.head.cut_before(before);
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        let first_new = wal.cut()?;
        let mut payload = Vec::new();
        for chunk in result.kept.chunks(CHECKPOINT_SERIES) {
            payload.clear();
            Record::Series(chunk.iter().map(|(r, l, _)| (*r, l.clone())).collect())
                .encode(&mut payload);
            wal.append(&payload)?;
            // Samples go in records of bounded size (a WAL record holds at most 64 MiB).
            let mut samples: Vec<(SeriesRef, Sample)> = Vec::new();
            for (r, _, s) in chunk {
                for x in s {
                    samples.push((*r, *x));
                    if samples.len() >= CHECKPOINT_SAMPLES {
                        payload.clear();
                        Record::encode_samples(&samples, &mut payload);
                        wal.append(&payload)?;
                        samples.clear();
                    }
                }
            }
            if !samples.is_empty() {
                payload.clear();
                Record::encode_samples(&samples, &mut payload);
                wal.append(&payload)?;
            }
        }
        wal.sync()?;
        wal.truncate_before(first_new)?;
        Ok(())
    }

    fn write_block(
        &self,
        series: Vec<(Labels, Vec<Sample>)>,
        level: u32,
    ) -> Result<Arc<Block>, TsdbError> {
        let mint = series
            .iter()
            .filter_map(|(_, s)| s.first())
            .map(|s| s.t)
            .min()
            .unwrap_or(0);
        let maxt = series
            .iter()
            .filter_map(|(_, s)| s.last())
            .map(|s| s.t)
            .max()
            .unwrap_or(0);
        let seq = self.block_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(BLOCKS_DIR).join(block_name(mint, maxt, seq));
        block::write(&path, series, level)?;
        let opened = Arc::new(Block::open(&path)?);
        self.add_block(Arc::clone(&opened));
        Ok(opened)
    }

    fn add_block(&self, block: Arc<Block>) {
        let mut blocks = self.blocks.write().unwrap_or_else(|p| p.into_inner());
        blocks.push(block);
        blocks.sort_by_key(|b| (b.meta().mint, b.meta().maxt));
    }

    /// Merges the blocks of one finished time window (3, 9 or 27 block durations) into one;
    /// returns whether it did.
    fn compact_once(&self) -> Result<bool, TsdbError> {
        let blocks = self.raw_blocks();
        let horizon = self.head.min_valid_t();
        for k in 1..=3u32 {
            let window = self.opts.block_duration_ms.saturating_mul(3i64.pow(k));
            let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in &blocks {
                let w = b.meta().mint.div_euclid(window);
                if b.meta().maxt.div_euclid(window) == w && b.meta().level < k {
                    groups.entry(w).or_default().push(Arc::clone(b));
                }
            }
            for (w, group) in groups {
                let end = (w + 1).saturating_mul(window);
                if group.len() < 2 || end > horizon {
                    continue;
                }
                let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
                for b in &group {
                    for (labels, samples) in b.all()? {
                        merged.entry(labels).or_default().extend(samples);
                    }
                }
                let series = merged
                    .into_iter()
                    .map(|(l, s)| (l, dedup_sorted(s)))
                    .collect();
                self.write_block(series, k)?;
                self.remove_blocks(&group)?;
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the aggregates ([`RESOLUTIONS`]) of one raw block that no compaction will change
    /// any more (its largest compaction window lies behind the head) or that retention is
    /// about to delete, unless they exist. Returns whether it did.
    fn downsample_once(&self, now_ms: i64) -> Result<bool, TsdbError> {
        if !self.opts.downsample {
            return Ok(false);
        }
        let all = self.blocks();
        let final_window = self.opts.block_duration_ms.saturating_mul(27);
        let horizon = self.head.min_valid_t();
        let expiring = |b: &Block| {
            self.opts
                .retention_ms
                .is_some_and(|keep| b.meta().maxt < now_ms.saturating_sub(keep))
        };
        for raw in all.iter().filter(|b| b.meta().resolution_ms == 0) {
            let (mint, maxt) = (raw.meta().mint, raw.meta().maxt);
            let window_end = mint
                .div_euclid(final_window)
                .saturating_add(1)
                .saturating_mul(final_window);
            if window_end > horizon && !expiring(raw) {
                continue;
            }
            let missing: Vec<i64> = RESOLUTIONS
                .into_iter()
                .filter(|r| !summarised(&all, raw, *r))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let series = raw.all()?;
            // The last millisecond of the block's time window (3^level block durations).
            let width = 3i64
                .checked_pow(raw.meta().level)
                .map_or(final_window, |n| {
                    n.saturating_mul(self.opts.block_duration_ms)
                });
            let limit = mint
                .div_euclid(width)
                .saturating_add(1)
                .saturating_mul(width)
                .saturating_sub(1)
                .max(maxt);
            for res in missing {
                let aggregates: Vec<(Labels, crate::Aggregates)> = series
                    .iter()
                    .map(|(l, s)| (l.clone(), downsample::aggregate_block(s, res, limit)))
                    .collect();
                let seq = self.block_seq.fetch_add(1, Ordering::Relaxed);
                let name = format!("{}-{}m", block_name(mint, maxt, seq), res / 60_000);
                let path = self.dir.join(BLOCKS_DIR).join(name);
                block::write_downsampled(&path, &aggregates, res, [mint, maxt])?;
                self.add_block(Arc::new(Block::open(&path)?));
            }
            self.counters.downsamplings.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        Ok(false)
    }

    fn remove_blocks(&self, doomed: &[Arc<Block>]) -> Result<(), TsdbError> {
        {
            let mut blocks = self.blocks.write().unwrap_or_else(|p| p.into_inner());
            blocks.retain(|b| !doomed.iter().any(|d| Arc::ptr_eq(b, d)));
        }
        for b in doomed {
            // Renamed to `.deleted` first: a crash mid-delete leaves a name open removes.
            dozor_wal::dir::remove(b.dir())?;
        }
        Ok(())
    }

    /// Deletes blocks past their tier's age limit, then the oldest blocks — raw first, then
    /// the aggregates from the finest — while all of them exceed the size limit.
    fn apply_retention(&self, now_ms: i64) -> Result<(), TsdbError> {
        let blocks = self.blocks();
        let keep_for = |res: i64| match res {
            0 => self.opts.retention_ms,
            downsample::RESOLUTION_1M => self.opts.retention_1m_ms,
            downsample::RESOLUTION_5M => self.opts.retention_5m_ms,
            downsample::RESOLUTION_1H => self.opts.retention_1h_ms,
            _ => self.opts.retention_1d_ms,
        };
        // A raw block waits for its aggregates before it expires.
        let pending = |b: &Block| {
            self.opts.downsample
                && b.meta().resolution_ms == 0
                && RESOLUTIONS.iter().any(|r| !summarised(&blocks, b, *r))
        };
        let mut doomed: Vec<Arc<Block>> = blocks
            .iter()
            .filter(|b| {
                keep_for(b.meta().resolution_ms)
                    .is_some_and(|keep| b.meta().maxt < now_ms.saturating_sub(keep))
                    && !pending(b)
            })
            .cloned()
            .collect();
        if let Some(max_bytes) = self.opts.retention_bytes {
            let size = |b: &Block| b.meta().chunk_bytes + b.meta().index_bytes;
            let mut total: u64 = blocks.iter().map(|b| size(b)).sum();
            let mut by_tier = blocks.clone();
            by_tier.sort_by_key(|b| b.meta().resolution_ms); // stable: oldest first per tier
            for b in &by_tier {
                if total <= max_bytes {
                    break;
                }
                total -= size(b);
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    doomed.push(Arc::clone(b));
                }
            }
        }
        if !doomed.is_empty() {
            self.counters
                .retention_deletions
                .fetch_add(doomed.len() as u64, Ordering::Relaxed);
            self.remove_blocks(&doomed)?;
        }
        Ok(())
    }

    /// Raw samples of the matching series from blocks and head, merged and deduplicated,
    /// leaving out samples inside the `skip` time ranges.
    ///
    /// `head` must have been read before `blocks` was taken: a cut adds its block before
    /// the head drops the samples, and retention deletes a raw block only after its
    /// aggregates exist, so in that order nothing moving concurrently is missed.
    fn merge_raw(
        head: Vec<(Labels, Vec<Sample>)>,
        blocks: &[Arc<Block>],
        (matchers, mint, maxt): (&[Matcher], i64, i64),
        skip: &[(i64, i64)],
    ) -> Result<BTreeMap<Labels, Vec<Sample>>, TsdbError> {
        let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for b in blocks.iter().filter(|b| b.meta().resolution_ms == 0) {
            let (from, to) = b.meta().covers();
            if inside(skip, from) && inside(skip, to) {
                continue;
            }
            for (labels, samples) in b.select(matchers, mint, maxt)? {
                merged.entry(labels).or_default().extend(samples);
            }
        }
        for (labels, samples) in head {
            merged.entry(labels).or_default().extend(samples);
        }
        for samples in merged.values_mut() {
            *samples = dedup_sorted(std::mem::take(samples));
            if !skip.is_empty() {
                samples.retain(|x| !inside(skip, x.t));
            }
        }
        merged.retain(|_, s| !s.is_empty());
        Ok(merged)
    }

    /// The current blocks, raw and downsampled, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current raw blocks, oldest first.
    pub fn raw_blocks(&self) -> Vec<Arc<Block>> {
        let mut blocks = self.blocks();
        blocks.retain(|b| b.meta().resolution_ms == 0);
        blocks
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Bytes on disk: blocks and WAL.
    pub fn disk_bytes(&self) -> u64 {
        crate::files::dir_size(&self.dir)
    }
}

/// Whether a downsampled block at `res` among `blocks` covers the raw block `raw`.
fn summarised(blocks: &[Arc<Block>], raw: &Block, res: i64) -> bool {
    let (mint, maxt) = (raw.meta().mint, raw.meta().maxt);
    blocks.iter().any(|d| {
        let (a, b) = d.meta().covers();
        d.meta().resolution_ms == res && a <= mint && maxt <= b
    })
}

/// Whether `t` lies in one of `ranges` (inclusive).
fn inside(ranges: &[(i64, i64)], t: i64) -> bool {
    ranges.iter().any(|&(a, b)| a <= t && t <= b)
}

/// Sorts by time and keeps the last sample of each timestamp.
fn dedup_sorted(mut s: Vec<Sample>) -> Vec<Sample> {
    s.sort_by_key(|x| x.t);
    let mut out: Vec<Sample> = Vec::with_capacity(s.len());
    for x in s {
        match out.last_mut() {
            Some(last) if last.t == x.t => *last = x,
            _ => out.push(x),
        }
    }
    out
}

/// Replays the WAL in `dir` into `head`. Samples may precede their series record (two
/// appenders racing), so they wait until it appears; samples older than the blocks are
/// skipped.
fn replay_into(dir: &Path, head: &Head) -> Result<(), TsdbError> {
    let mut pending: HashMap<SeriesRef, Vec<Sample>> = HashMap::new();
    // Looking a series up in the head takes a lock; replay touches each series many times.
    let mut known: HashMap<SeriesRef, Arc<crate::head::MemSeries>, foldhash::fast::RandomState> =
        HashMap::default();
    wal::replay(dir, |payload| -> Result<(), TsdbError> {
        match Record::decode(payload)? {
            Record::Series(series) => {
                for (r, labels) in series {
                    head.restore_series(r, labels);
                    let Some(s) = head.by_ref(r) else { continue };
                    for x in pending.remove(&r).unwrap_or_default() {
                        let _ = head.append(&s, x, None);
                    }
                    known.insert(r, s);
                }
            }
            Record::Samples(samples) => {
                for (r, x) in samples {
                    match known.get(&r) {
                        Some(s) => {
                            let _ = head.append(s, x, None);
                        }
                        None => pending.entry(r).or_default().push(x),
                    }
                }
            }
        }
        Ok(())
    })?;
    if !pending.is_empty() {
        tracing::warn!(
            series = pending.len(),
            "WAL samples without a series record were dropped"
        );
    }
    Ok(())
}

impl Queryable for Db {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, TsdbError> {
        let head = self.head.select(matchers, mint, maxt);
        let blocks = self.blocks();
        Ok(Self::merge_raw(head, &blocks, (matchers, mint, maxt), &[])?
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples })
            .collect())
    }

    fn select_downsampled(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> Result<Selection, TsdbError> {
        let which = hints.aggregate;
        // Coarsest accepted resolution first; each tier answers only for raw time ranges
        // that no coarser tier covered.
        let mut covered: Vec<(i64, i64)> = Vec::new();
        let mut aggregated: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        let mut resolution_ms = 0;
        // The head before one snapshot of the blocks, for raw and aggregates alike (see
        // `merge_raw`).
        let head = self.head.select(matchers, mint, maxt);
        let blocks = self.blocks();
        for res in RESOLUTIONS.into_iter().rev() {
            if res > hints.max_resolution_ms {
                continue;
            }
            let mut newly = Vec::new();
            for b in blocks.iter().filter(|b| b.meta().resolution_ms == res) {
                let (from, to) = b.meta().covers();
                if to < mint || from > maxt || inside(&covered, from) && inside(&covered, to) {
                    continue;
                }
                for (labels, rows) in b.select_aggregate(matchers, mint, maxt, which)? {
                    aggregated.entry(labels).or_default().extend(rows);
                }
                newly.push((from, to));
                resolution_ms = resolution_ms.max(res);
            }
            covered.extend(newly);
        }
        let mut merged = Self::merge_raw(head, &blocks, (matchers, mint, maxt), &covered)?;
        if which == Aggregate::Count {
            for x in merged.values_mut().flatten() {
                if !dozor_model::labels::is_stale_nan(x.v) {
                    x.v = 1.0;
                }
            }
        }
        for (labels, rows) in aggregated {
            let entry = merged.entry(labels).or_default();
            entry.extend(downsample::combine(rows, which));
            entry.sort_by_key(|x| x.t);
        }
        merged.retain(|_, s| !s.is_empty());
        Ok(Selection {
            series: merged
                .into_iter()
                .map(|(labels, samples)| Series { labels, samples })
                .collect(),
            resolution_ms,
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut names: Vec<String> = if matchers.is_empty() {
            let mut n = self.head.label_names();
            for b in self.blocks() {
                n.extend(b.label_names());
            }
            n
        } else {
            self.select(matchers, mint, maxt)?
                .into_iter()
                .flat_map(|s| s.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
                .collect()
        };
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut values: Vec<String> = if matchers.is_empty() {
            let mut v = self.head.label_values(name);
            for b in self.blocks() {
                v.extend(b.label_values(name));
            }
            v
        } else {
            self.select(matchers, mint, maxt)?
                .into_iter()
                .filter_map(|s| s.labels.get(name).map(str::to_owned))
                .collect()
        };
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}
