//! The head: the recent, mutable part of a tenant's metrics, in memory.
//!
//! Series are interned by label set and get a [`SeriesRef`]; each keeps its samples sorted
//! by time. New samples normally arrive in order; a sample older than the series' newest is
//! accepted within the out-of-order window and inserted in place. A sample with the same
//! timestamp replaces the stored one (last write wins, as a retried remote_write expects).
//! Data older than [`Head::min_valid_t`] has been cut into a block and is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use dozor_model::{Labels, Matcher, Sample, SeriesBatch};

use crate::encoding::PackedLabels;
use crate::memchunk::SeriesSamples;
use crate::postings::Postings;
use crate::record::SeriesRef;

/// One series in the head.
#[derive(Debug)]
pub struct MemSeries {
    /// Its ref.
    r: SeriesRef,
    /// Its labels, packed.
    labels: PackedLabels,
    /// Its samples, sorted by time (the newest raw, the rest compressed).
    pub samples: Mutex<SeriesSamples>,
    /// Whether a WAL series record for it was written. Until then every append that
    /// touches it writes one (duplicates are harmless at replay), so a failed write cannot
    /// leave later samples pointing at a series the WAL never named.
    pub logged: std::sync::atomic::AtomicBool,
}

/// The head's maps are keyed by data we produce or validate ourselves, so a fast
/// non-cryptographic hash is safe here; SipHash showed up in ingest profiles.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Index {
    /// Series by label-set hash (the labels themselves live once, in the series).
    by_labels: LabelIndex,
    /// Slot `i` holds the series with postings id `i`; `None` after it was dropped.
    slots: Vec<Option<std::sync::Arc<MemSeries>>>,
    by_ref: FastMap<SeriesRef, u32>,
    postings: Postings,
    next_ref: SeriesRef,
}

/// Finds a series by its packed labels without keeping a second copy of every label set:
/// keyed by a hash of the packed bytes, confirmed against the series' own. The map holds
/// the series itself, so a lookup touches the map, the series and its labels, nothing
/// else (ingest is bound by these cache misses). Colliding label sets (rare) go to a side
/// table.
#[derive(Debug, Default)]
struct LabelIndex {
    hasher: foldhash::quality::RandomState,
    first: FastMap<u64, std::sync::Arc<MemSeries>>,
    collided: FastMap<u64, Vec<std::sync::Arc<MemSeries>>>,
    len: usize,
}

impl LabelIndex {
    fn hash(&self, packed: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(packed)
    }

    fn get(&self, packed: &[u8]) -> Option<&std::sync::Arc<MemSeries>> {
        self.get_hashed(self.hash(packed), packed)
    }

    fn get_hashed(&self, h: u64, packed: &[u8]) -> Option<&std::sync::Arc<MemSeries>> {
        let is = |s: &&std::sync::Arc<MemSeries>| s.labels.as_bytes() == packed;
        self.first
            .get(&h)
            .filter(is)
            .or_else(|| self.collided.get(&h)?.iter().find(is))
    }

    fn insert(&mut self, s: std::sync::Arc<MemSeries>) {
        self.insert_hashed(self.hash(s.labels.as_bytes()), s);
    }

    fn insert_hashed(&mut self, h: u64, s: std::sync::Arc<MemSeries>) {
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(s);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.entry(h).or_default().push(s);
            }
        }
        self.len += 1;
    }

    fn remove(&mut self, s: &MemSeries) {
        self.remove_hashed(self.hash(s.labels.as_bytes()), s.r);
    }

    fn remove_hashed(&mut self, h: u64, r: SeriesRef) {
        if self.first.get(&h).is_some_and(|s| s.r == r) {
            self.first.remove(&h);
            if let Some(more) = self.collided.get_mut(&h) {
                if let Some(next) = more.pop() {
                    self.first.insert(h, next);
                }
                if more.is_empty() {
                    self.collided.remove(&h);
                }
            }
            self.len -= 1;
        } else if let Some(more) = self.collided.get_mut(&h)
            && let Some(i) = more.iter().position(|x| x.r == r)
        {
            more.swap_remove(i);
            if more.is_empty() {
                self.collided.remove(&h);
            }
            self.len -= 1;
        }
    }
}

impl Index {
    /// The live series with ref `r`.
    fn series(&self, r: SeriesRef) -> Option<&std::sync::Arc<MemSeries>> {
        let slot = *self.by_ref.get(&r)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The series of `packed`, if the head has it.
    fn find(&self, packed: &[u8]) -> Option<(SeriesRef, std::sync::Arc<MemSeries>)> {
        self.by_labels
            .get(packed)
            .map(|s| (s.r, std::sync::Arc::clone(s)))
    }
}

/// A series of a batch, resolved in the head: its ref, the series and whether this call
/// created it.
pub type Resolved = (SeriesRef, std::sync::Arc<MemSeries>, bool);

/// Why a sample was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Older than the out-of-order window allows.
    OutOfOrder,
    /// Older than the data already cut into blocks.
    TooOld,
}

/// The in-memory head of one tenant.
#[derive(Debug)]
pub struct Head {
    index: RwLock<Index>,
    min_valid_t: AtomicI64,
}

impl Default for Head {
    fn default() -> Head {
        Head {
            index: RwLock::default(),
            min_valid_t: AtomicI64::new(i64::MIN),
        }
    }
}

impl Head {
    /// Samples before this time live in blocks; the head refuses them.
    pub fn min_valid_t(&self) -> i64 {
        self.min_valid_t.load(Ordering::Acquire)
    }

    pub(crate) fn set_min_valid_t(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::AcqRel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The series for `labels`, creating it if needed; `true` when it was created.
    pub fn get_or_create(&self, labels: &Labels) -> Resolved {
        let mut packed = Vec::with_capacity(labels.byte_size() + 2 * labels.len() + 1);
        dozor_model::packed::pack_labels(&mut packed, labels);
        if let Some((r, s)) = self.read().find(&packed) {
            return (r, s, false);
        }
        let mut idx = self.write();
        Self::find_or_insert_locked(&mut idx, &packed)
    }

    /// The series of every entry of `batch`, in order, creating the missing ones: one
    /// shared lock for the lookups and, only if some are new, one exclusive lock for them.
    pub fn resolve(&self, batch: &SeriesBatch) -> Vec<Resolved> {
        let mut out: Vec<Option<Resolved>> = {
            let idx = self.read();
            batch
                .iter()
                .map(|(packed, _)| idx.find(packed).map(|(r, s)| (r, s, false)))
                .collect()
        };
        if out.iter().any(Option::is_none) {
            let mut idx = self.write();
            for (slot, (packed, _)) in out.iter_mut().zip(batch.iter()) {
                if slot.is_none() {
                    *slot = Some(Self::find_or_insert_locked(&mut idx, packed));
                }
            }
        }
        // Every slot is filled now.
        out.into_iter().flatten().collect()
    }

    /// Under the write lock: the series of `packed` (valid packed labels), created if absent.
    fn find_or_insert_locked(idx: &mut Index, packed: &[u8]) -> Resolved {
        if let Some((r, s)) = idx.find(packed) {
            return (r, s, false);
        }
        let r = idx.next_ref;
        let series = std::sync::Arc::new(MemSeries {
            r,
            labels: PackedLabels::from_packed(packed),
            samples: Mutex::new(SeriesSamples::default()),
            logged: std::sync::atomic::AtomicBool::new(false),
        });
        Self::insert_locked(idx, &series);
        (r, series, true)
    }

    fn insert_locked(idx: &mut Index, series: &std::sync::Arc<MemSeries>) {
        let slot = u32::try_from(idx.slots.len()).unwrap_or(u32::MAX);
        idx.slots.push(Some(std::sync::Arc::clone(series)));
        idx.by_ref.insert(series.r, slot);
        idx.by_labels.insert(std::sync::Arc::clone(series));
        idx.postings.add(slot, &series.labels.unpack());
        idx.next_ref = idx.next_ref.max(series.r + 1);
    }

    /// Re-creates a series with a known ref (WAL replay).
    pub(crate) fn restore_series(&self, r: SeriesRef, labels: Labels) {
        let packed = PackedLabels::new(&labels);
        let mut idx = self.write();
        if idx.by_ref.contains_key(&r) || idx.by_labels.get(packed.as_bytes()).is_some() {
            return;
        }
        let series = std::sync::Arc::new(MemSeries {
            r,
            labels: packed,
            samples: Mutex::new(SeriesSamples::default()),
            logged: std::sync::atomic::AtomicBool::new(true),
        });
        Self::insert_locked(&mut idx, &series);
    }

    /// The series with ref `r`.
    pub(crate) fn by_ref(&self, r: SeriesRef) -> Option<std::sync::Arc<MemSeries>> {
        self.read().series(r).map(std::sync::Arc::clone)
    }

    /// Whether [`Head::append`] would accept `s` now (it may still refuse it later if
    /// another writer appends newer samples in between).
    pub fn check(&self, series: &MemSeries, s: Sample, ooo_window: i64) -> Result<(), Rejected> {
        if s.t < self.min_valid_t() {
            return Err(Rejected::TooOld);
        }
        let samples = series.samples.lock().unwrap_or_else(|p| p.into_inner());
        match samples.last_t() {
            Some(last) if s.t < last.saturating_sub(ooo_window) => Err(Rejected::OutOfOrder),
            _ => Ok(()),
        }
    }

    /// Appends one sample to `series`, honouring the out-of-order window (`ooo_window` ms;
    /// `None` accepts any order, for WAL replay).
    pub fn append(
        &self,
        series: &MemSeries,
        s: Sample,
        ooo_window: Option<i64>,
    ) -> Result<(), Rejected> {
        if s.t < self.min_valid_t() {
            return Err(Rejected::TooOld);
        }
        let mut samples = series.samples.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(w), Some(last)) = (ooo_window, samples.last_t())
            && s.t < last.saturating_sub(w)
        {
            return Err(Rejected::OutOfOrder);
        }
        samples.insert(s);
        Ok(())
    }

    /// Series matching `matchers` with their samples in `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<Sample>)> {
        let chosen: Vec<std::sync::Arc<MemSeries>> = {
            let idx = self.read();
            let ids = idx.postings.select(matchers, |id, name| {
                idx.slots.get(id as usize)?.as_ref()?.labels.get(name)
            });
            ids.into_iter()
                .filter_map(|id| idx.slots[id as usize].as_ref().map(std::sync::Arc::clone))
                .collect()
        };
        let mut out = Vec::new();
        for s in chosen {
            let mut found = Vec::new();
            s.samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .range(mint, maxt, &mut found);
            if !found.is_empty() {
                out.push((s.labels.unpack(), found));
            }
        }
        out
    }

    /// Label names and values present in the head.
    pub fn label_names(&self) -> Vec<String> {
        self.read().postings.label_names()
    }

    /// Values of `name` present in the head.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.read().postings.label_values(name)
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.read().by_labels.len
    }

    /// The head's time range `(min, max)` over all samples, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let idx = self.read();
        let mut range: Option<(i64, i64)> = None;
        for s in idx.slots.iter().flatten() {
            let samples = s.samples.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(first), Some(last)) = (samples.first_t(), samples.last_t()) {
                range = Some(match range {
                    None => (first, last),
                    Some((a, b)) => (a.min(first), b.max(last)),
                });
            }
        }
        range
    }

    /// Copies, per series, the samples with `t < before` (what [`Head::cut_before`] will
    /// remove), leaving the head unchanged.
    pub(crate) fn samples_before(&self, before: i64) -> Vec<(Labels, Vec<Sample>)> {
        let idx = self.read();
        let mut out = Vec::new();
        for s in idx.slots.iter().flatten() {
            let mut found = Vec::new();
            s.samples.lock().unwrap_or_else(|p| p.into_inner()).range(
                i64::MIN,
                before.saturating_sub(1),
                &mut found,
            );
            if !found.is_empty() {
                out.push((s.labels.unpack(), found));
            }
        }
        out
    }

    /// Removes, per series, the samples with `t < before` (copy them first with
    /// [`Head::samples_before`]); drops series left empty. Returns every remaining series
    /// with its ref and samples (for the WAL checkpoint).
    pub(crate) fn cut_before(&self, before: i64) -> CutResult {
        let mut idx = self.write();
        let mut kept = Vec::new();
        let mut emptied = Vec::new();
        for (slot, entry) in idx.slots.iter().enumerate() {
            let Some(s) = entry else { continue };
            let r = &s.r;
            let mut samples = s.samples.lock().unwrap_or_else(|p| p.into_inner());
            samples.split_before(before);
            let labels = s.labels.unpack();
            if samples.is_empty() {
                emptied.push((slot, *r, labels));
            } else {
                kept.push((*r, labels, samples.to_vec()));
            }
        }
        for (slot, r, labels) in emptied {
            if let Some(s) = idx.slots[slot].take() {
                idx.by_labels.remove(&s);
            }
            idx.by_ref.remove(&r);
            idx.postings.remove(slot as u32, &labels);
        }
        drop(idx);
        self.set_min_valid_t(before);
        CutResult { kept }
    }
}

/// What stayed in the head after [`Head::cut_before`].
pub(crate) struct CutResult {
    /// Series still in the head with their refs and remaining samples.
    pub kept: Vec<(SeriesRef, Labels, Vec<Sample>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", job)]).unwrap()
    }

    #[test]
    fn series_are_interned_by_labels() {
        let head = Head::default();
        let (a, _, created) = head.get_or_create(&up("api"));
        let (b, _, again) = head.get_or_create(&up("api"));
        let (c, _, _) = head.get_or_create(&up("web"));
        assert!(created && !again);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(head.num_series(), 2);
    }

    #[test]
    fn out_of_order_window_and_duplicates() {
        let head = Head::default();
        let (_, s, _) = head.get_or_create(&up("api"));
        let w = Some(10_000);
        head.append(&s, Sample { t: 100_000, v: 1.0 }, w).unwrap();
        head.append(&s, Sample { t: 95_000, v: 2.0 }, w).unwrap();
        assert_eq!(
            head.append(&s, Sample { t: 80_000, v: 3.0 }, w),
            Err(Rejected::OutOfOrder)
        );
        head.append(&s, Sample { t: 100_000, v: 4.0 }, w).unwrap();
        head.append(&s, Sample { t: 80_000, v: 5.0 }, None).unwrap();
        let got = head.select(&[Matcher::equal("job", "api")], i64::MIN, i64::MAX);
        let ts: Vec<(i64, f64)> = got[0].1.iter().map(|s| (s.t, s.v)).collect();
        assert_eq!(ts, [(80_000, 5.0), (95_000, 2.0), (100_000, 4.0)]);
    }

    #[test]
    fn cutting_moves_old_samples_out_and_drops_empty_series() {
        let head = Head::default();
        let (_, a, _) = head.get_or_create(&up("api"));
        let (_, b, _) = head.get_or_create(&up("web"));
        head.append(&a, Sample { t: 10, v: 1.0 }, None).unwrap();
        head.append(&a, Sample { t: 30, v: 1.0 }, None).unwrap();
        head.append(&b, Sample { t: 10, v: 1.0 }, None).unwrap();
        assert_eq!(head.samples_before(20).len(), 2);
        let res = head.cut_before(20);
        assert_eq!(res.kept.len(), 1);
        assert_eq!(head.num_series(), 1);
        assert!(
            head.select(&[Matcher::equal("job", "web")], i64::MIN, i64::MAX)
                .is_empty()
        );
        assert_eq!(
            head.append(&a, Sample { t: 15, v: 1.0 }, None),
            Err(Rejected::TooOld)
        );
        // A dropped series comes back as a new series when it reappears.
        let (_, b2, created) = head.get_or_create(&up("web"));
        assert!(created);
        head.append(&b2, Sample { t: 40, v: 2.0 }, None).unwrap();
        assert_eq!(
            head.select(&[Matcher::equal("job", "web")], 0, 100)[0]
                .1
                .len(),
            1
        );
    }

    #[test]
    fn label_index_resolves_hash_collisions_by_comparing_labels() {
        let series = |r: SeriesRef, job: &str| {
            std::sync::Arc::new(MemSeries {
                r,
                labels: PackedLabels::new(&up(job)),
                samples: Mutex::default(),
                logged: std::sync::atomic::AtomicBool::new(true),
            })
        };
        let (a, b) = (series(1, "a"), series(2, "b"));
        // Both filed under one hash, as a collision would file them: b first.
        let h = 42;
        let mut ix = LabelIndex::default();
        ix.insert_hashed(h, std::sync::Arc::clone(&b));
        ix.insert_hashed(h, std::sync::Arc::clone(&a));
        let a_bytes = a.labels.as_bytes();
        assert_eq!(ix.get_hashed(h, a_bytes).map(|s| s.r), Some(1));
        assert_eq!(ix.get_hashed(h, b.labels.as_bytes()).map(|s| s.r), Some(2));
        assert_eq!(ix.len, 2);
        ix.remove_hashed(h, 2);
        assert_eq!(
            (ix.first.get(&h).map(|s| s.r), ix.collided.len()),
            (Some(1), 0)
        );
        assert_eq!(ix.get_hashed(h, a_bytes).map(|s| s.r), Some(1));
        ix.remove_hashed(h, 1);
        assert_eq!((ix.len, ix.get_hashed(h, a_bytes).is_none()), (0, true));
        // Unhashed use finds by content.
        ix.insert(std::sync::Arc::clone(&a));
        assert_eq!(ix.get(a_bytes).map(|s| s.r), Some(1));
        ix.remove(&a);
        assert!(ix.get(a_bytes).is_none());
    }

    #[test]
    fn a_batch_resolves_known_and_new_series_in_order() {
        let head = Head::default();
        let (known, _, _) = head.get_or_create(&up("api"));
        let mut batch = SeriesBatch::new();
        batch.push(&up("web"), &[]);
        batch.push(&up("api"), &[]);
        batch.push(&up("web"), &[]);
        let got: Vec<(SeriesRef, bool)> = head
            .resolve(&batch)
            .into_iter()
            .map(|(r, _, created)| (r, created))
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (known, false));
        assert!(got[0].1, "web is new");
        assert_eq!(
            got[2],
            (got[0].0, false),
            "and found again in the same batch"
        );
        assert_eq!(head.num_series(), 2);
        assert_eq!(
            head.select(&[Matcher::equal("job", "web")], i64::MIN, i64::MAX)
                .len(),
            0,
            "no samples yet"
        );
    }
}
