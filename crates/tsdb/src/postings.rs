//! The postings index: for each label name and value, the sorted ids of the series that carry
//! it. Selecting series by matchers intersects the postings of the matchers that can narrow
//! the search and filters the rest.

use std::collections::{BTreeMap, HashMap};

use dozor_model::{Labels, MatchOp, Matcher};

/// Label name → value → sorted series ids (ids are positions in the owner's series table).
#[derive(Debug, Default, Clone)]
pub struct Postings {
    by_name: HashMap<String, BTreeMap<String, Vec<u32>>, foldhash::fast::RandomState>,
    all: Vec<u32>,
}

impl Postings {
    /// Adds series `id` (ids must be added in ascending order).
    pub fn add(&mut self, id: u32, labels: &Labels) {
        self.all.push(id);
        for l in labels.iter() {
            self.by_name
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(id);
        }
    }

    /// Removes series `id` (used when the head drops empty series).
    pub fn remove(&mut self, id: u32, labels: &Labels) {
        if let Ok(i) = self.all.binary_search(&id) {
            self.all.remove(i);
        }
        for l in labels.iter() {
            if let Some(values) = self.by_name.get_mut(&l.name) {
                if let Some(ids) = values.get_mut(&l.value) {
                    if let Ok(i) = ids.binary_search(&id) {
                        ids.remove(i);
                    }
                    if ids.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.by_name.remove(&l.name);
                }
            }
        }
    }

    /// Ids of the series matching every matcher; `label_value(id, name)` gives a series'
    /// label value for the matchers the index cannot answer alone.
    pub fn select<'a>(
        &self,
        matchers: &[Matcher],
        label_value: impl Fn(u32, &str) -> Option<&'a str>,
    ) -> Vec<u32> {
        // Matchers that cannot match "" narrow through the index; the others filter.
        let (narrowing, filtering): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        let mut ids: Option<Vec<u32>> = None;
        for m in &narrowing {
            let found = self.ids_for(m);
            ids = Some(match ids {
                None => found,
                Some(prev) => intersect(&prev, &found),
            });
            if ids.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let ids = ids.unwrap_or_else(|| self.all.clone());
        if filtering.is_empty() {
            return ids;
        }
        ids.into_iter()
            .filter(|&id| {
                filtering
                    .iter()
                    .all(|m| m.matches(label_value(id, &m.name).unwrap_or("")))
            })
            .collect()
    }

    /// Ids whose label `m.name` has a value matching `m` (for matchers that reject "").
    fn ids_for(&self, m: &Matcher) -> Vec<u32> {
        let Some(values) = self.by_name.get(&m.name) else {
            return Vec::new();
        };
        if m.op == MatchOp::Equal {
            return values.get(&m.value).cloned().unwrap_or_default();
        }
        let mut lists: Vec<&Vec<u32>> = values
            .iter()
            .filter(|(v, _)| m.matches(v))
            .map(|(_, ids)| ids)
            .collect();
        match lists.len() {
            0 => Vec::new(),
            1 => lists.pop().cloned().unwrap_or_default(),
            _ => {
                let mut all: Vec<u32> = lists.into_iter().flatten().copied().collect();
                all.sort_unstable();
                all.dedup();
                all
            }
        }
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every value of `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.by_name
            .get(name)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (Postings, Vec<Labels>) {
        let series = vec![
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a")]).unwrap(),
            Labels::from_pairs([("__name__", "up"), ("job", "web"), ("instance", "b")]).unwrap(),
            Labels::from_pairs([("__name__", "cpu"), ("job", "api")]).unwrap(),
        ];
        let mut p = Postings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u32, l);
        }
        (p, series)
    }

    fn sel(p: &Postings, series: &[Labels], ms: &[Matcher]) -> Vec<u32> {
        p.select(ms, |id, name| series.get(id as usize)?.get(name))
    }

    #[test]
    fn selects_by_equality_regex_and_absence() {
        let (p, s) = fixture();
        assert_eq!(sel(&p, &s, &[Matcher::equal("__name__", "up")]), [0, 1]);
        assert_eq!(
            sel(
                &p,
                &s,
                &[
                    Matcher::equal("__name__", "up"),
                    Matcher::equal("job", "api")
                ]
            ),
            [0]
        );
        assert_eq!(
            sel(
                &p,
                &s,
                &[Matcher::new(MatchOp::Regex, "job", "a.*|w.*").unwrap()]
            ),
            [0, 1, 2]
        );
        assert_eq!(
            sel(
                &p,
                &s,
                &[Matcher::equal("job", "api"), Matcher::equal("instance", "")]
            ),
            [2]
        );
        assert_eq!(
            sel(
                &p,
                &s,
                &[Matcher::new(MatchOp::NotEqual, "job", "api").unwrap()]
            ),
            [1]
        );
        assert!(sel(&p, &s, &[Matcher::equal("job", "nope")]).is_empty());
        assert_eq!(p.label_values("job"), ["api", "web"]);
    }

    #[test]
    fn removed_series_disappear() {
        let (mut p, s) = fixture();
        p.remove(0, &s[0]);
        assert_eq!(sel(&p, &s, &[Matcher::equal("__name__", "up")]), [1]);
        assert_eq!(p.label_values("instance"), ["b"]);
    }
}
