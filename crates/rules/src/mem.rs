//! An in-memory metric store: what `dozor test rules` loads `input_series` into and rule
//! evaluation writes back to, and what a rule preview runs against.

use std::collections::BTreeMap;
use std::sync::RwLock;

use dozor_model::{Labels, Matcher, Sample};
use dozor_tsdb::{Queryable, Series, TsdbError};

/// Series in memory, sorted by labels; samples sorted by time, one per timestamp.
#[derive(Debug, Default)]
pub struct MemStore {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Adds samples; a sample at a time the series already has replaces it.
    pub fn append(&self, labels: Labels, samples: impl IntoIterator<Item = Sample>) {
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        let s = map.entry(labels).or_default();
        for x in samples {
            match s.binary_search_by_key(&x.t, |y| y.t) {
                Ok(i) => s[i] = x,
                Err(i) => s.insert(i, x),
            }
        }
    }

    /// How many series the store holds.
    pub fn len(&self) -> usize {
        self.series.read().map_or(0, |m| m.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn matching<T>(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(&Labels, &[Sample]) -> Option<T>,
    ) -> Vec<T> {
        let map = self.series.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(l, _)| {
                matchers
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
            .filter_map(|(l, s)| f(l, s))
            .collect()
    }
}

fn in_range(s: &[Sample], mint: i64, maxt: i64) -> &[Sample] {
    let lo = s.partition_point(|x| x.t < mint);
    let hi = s.partition_point(|x| x.t <= maxt);
    &s[lo..hi.max(lo)]
}

impl Queryable for MemStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, TsdbError> {
        Ok(self.matching(matchers, |l, s| {
            let s = in_range(s, mint, maxt);
            (!s.is_empty()).then(|| Series {
                labels: l.clone(),
                samples: s.to_vec(),
            })
        }))
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut names: Vec<String> = self
            .matching(matchers, |l, s| {
                (!in_range(s, mint, maxt).is_empty())
                    .then(|| l.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
            })
            .into_iter()
            .flatten()
            .collect();
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
        let mut values: Vec<String> = self.matching(matchers, |l, s| {
            if in_range(s, mint, maxt).is_empty() {
                return None;
            }
            l.get(name).map(str::to_owned)
        });
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_matchers_and_time() {
        let m = MemStore::new();
        let up = |job: &str| Labels::from_pairs([("__name__", "up"), ("job", job)]).unwrap();
        m.append(
            up("a"),
            [Sample { t: 10, v: 1.0 }, Sample { t: 20, v: 2.0 }],
        );
        m.append(up("b"), [Sample { t: 30, v: 0.0 }]);
        m.append(
            up("a"),
            [Sample { t: 20, v: 5.0 }, Sample { t: 15, v: 3.0 }],
        );
        let s = m.select(&[Matcher::equal("job", "a")], 0, 100).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].samples.iter().map(|x| x.v).collect::<Vec<_>>(),
            [1.0, 3.0, 5.0]
        );
        assert_eq!(m.select(&[], 25, 100).unwrap().len(), 1);
        assert_eq!(m.label_values("job", &[], 0, 100).unwrap(), ["a", "b"]);
        assert_eq!(m.label_names(&[], 0, 15).unwrap(), ["__name__", "job"]);
        assert!(m.select(&[], 40, 30).unwrap().is_empty());
    }
}
