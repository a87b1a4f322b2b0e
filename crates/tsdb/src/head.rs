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

use dozor_model::{Labels, Matcher, Sample};

use crate::encoding::PackedLabels;
use crate::memchunk::SeriesSamples;
use crate::postings::Postings;
use crate::record::SeriesRef;

/// One series in the head.
#[derive(Debug)]
pub struct MemSeries {
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
    slots: Vec<Option<(SeriesRef, std::sync::Arc<MemSeries>)>>,
    by_ref: FastMap<SeriesRef, u32>,
    postings: Postings,
    next_ref: SeriesRef,
}

/// Finds a series' ref by its labels without keeping a second copy of every label set:
/// keyed by a hash, confirmed against the series' own labels. Colliding label sets (rare)
/// go to a side table.
#[derive(Debug, Default)]
struct LabelIndex {
    hasher: foldhash::quality::RandomState,
    first: FastMap<u64, SeriesRef>,
    collided: FastMap<u64, Vec<SeriesRef>>,
    len: usize,
}

impl LabelIndex {
    fn hash(&self, labels: &Labels) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(labels)
    }

    /// The ref of `labels`; `has(r, labels)` tells whether candidate `r` has them.
    fn get(&self, labels: &Labels, has: impl Fn(SeriesRef, &Labels) -> bool) -> Option<SeriesRef> {
        let h = self.hash(labels);
        let is = |r: &SeriesRef| has(*r, labels);
        self.first
            .get(&h)
            .filter(|r| is(r))
            .or_else(|| self.collided.get(&h)?.iter().find(|r| is(r)))
            .copied()
    }

    fn insert(&mut self, labels: &Labels, r: SeriesRef) {
        let h = self.hash(labels);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.entry(h).or_default().push(r);
            }
        }
        self.len += 1;
    }

    fn remove(&mut self, labels: &Labels, r: SeriesRef) {
        let h = self.hash(labels);
        if self.first.get(&h) == Some(&r) {
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
            && let Some(i) = more.iter().position(|x| *x == r)
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
    fn has(&self, r: SeriesRef, labels: &Labels) -> bool {
        let series = self
            .by_ref
            .get(&r)
            .and_then(|slot| self.slots.get(*slot as usize)?.as_ref());
        series.is_some_and(|(_, s)| s.labels.equals(labels))
    }

    fn ref_of(&self, labels: &Labels) -> Option<SeriesRef> {
        self.by_labels.get(labels, |r, l| self.has(r, l))
    }
}

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
    pub fn get_or_create(&self, labels: &Labels) -> (SeriesRef, std::sync::Arc<MemSeries>, bool) {
        if let Some(found) = self.lookup(labels) {
            return (found.0, found.1, false);
        }
        let mut idx = self.write();
        if let Some(r) = idx.ref_of(labels) {
            let slot = idx.by_ref[&r];
            if let Some((_, s)) = &idx.slots[slot as usize] {
                return (r, std::sync::Arc::clone(s), false);
            }
        }
        let r = idx.next_ref;
        idx.next_ref += 1;
        let series = std::sync::Arc::new(MemSeries {
            labels: PackedLabels::new(labels),
            samples: Mutex::new(SeriesSamples::default()),
            logged: std::sync::atomic::AtomicBool::new(false),
        });
        Self::insert_locked(&mut idx, r, &series, labels);
        (r, series, true)
    }

    fn insert_locked(
        idx: &mut Index,
        r: SeriesRef,
        series: &std::sync::Arc<MemSeries>,
        labels: &Labels,
    ) {
        let slot = u32::try_from(idx.slots.len()).unwrap_or(u32::MAX);
        idx.slots.push(Some((r, std::sync::Arc::clone(series))));
        idx.by_ref.insert(r, slot);
        idx.by_labels.insert(labels, r);
        idx.postings.add(slot, labels);
        idx.next_ref = idx.next_ref.max(r + 1);
    }

    fn lookup(&self, labels: &Labels) -> Option<(SeriesRef, std::sync::Arc<MemSeries>)> {
        let idx = self.read();
        let r = idx.ref_of(labels)?;
        let slot = *idx.by_ref.get(&r)?;
        idx.slots[slot as usize]
            .as_ref()
            .map(|(r, s)| (*r, std::sync::Arc::clone(s)))
    }

    /// Re-creates a series with a known ref (WAL replay).
    pub(crate) fn restore_series(&self, r: SeriesRef, labels: Labels) {
        let mut idx = self.write();
        if idx.by_ref.contains_key(&r) || idx.ref_of(&labels).is_some() {
            return;
        }
        let series = std::sync::Arc::new(MemSeries {
            labels: PackedLabels::new(&labels),
            samples: Mutex::new(SeriesSamples::default()),
            logged: std::sync::atomic::AtomicBool::new(true),
        });
        Self::insert_locked(&mut idx, r, &series, &labels);
    }

    /// The series with ref `r`.
    pub(crate) fn by_ref(&self, r: SeriesRef) -> Option<std::sync::Arc<MemSeries>> {
        let idx = self.read();
        let slot = *idx.by_ref.get(&r)?;
        idx.slots[slot as usize]
            .as_ref()
            .map(|(_, s)| std::sync::Arc::clone(s))
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
                idx.slots.get(id as usize)?.as_ref()?.1.labels.get(name)
            });
            ids.into_iter()
                .filter_map(|id| {
                    idx.slots[id as usize]
                        .as_ref()
                        .map(|(_, s)| std::sync::Arc::clone(s))
                })
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
        for (_, s) in idx.slots.iter().flatten() {
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
        for (_, s) in idx.slots.iter().flatten() {
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
            let Some((r, s)) = entry else { continue };
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
            idx.slots[slot] = None;
            idx.by_labels.remove(&labels, r);
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
        // Two refs under one hash, as a collision would file them.
        let (a, b) = (up("a"), up("b"));
        let mut ix = LabelIndex::default();
        ix.insert(&a, 1);
        ix.insert(&a, 2);
        let labels_of = |r: SeriesRef, l: &Labels| match r {
            1 => &b == l,
            2 => &a == l,
            _ => false,
        };
        assert_eq!(ix.get(&a, labels_of), Some(2));
        assert_eq!(ix.len, 2);
        ix.remove(&a, 1);
        assert_eq!(
            (ix.first.get(&ix.hash(&a)), ix.collided.len()),
            (Some(&2), 0)
        );
        assert_eq!(ix.get(&a, labels_of), Some(2));
        ix.remove(&a, 2);
        assert_eq!((ix.len, ix.get(&a, labels_of)), (0, None));
    }
}
