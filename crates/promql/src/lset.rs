//! [`Lset`]: the engine's label set — sorted, shared (`Arc`), cheap to clone, and allowed to
//! be empty (`{}` is a valid PromQL result, unlike a stored series' [`Labels`]).

use std::sync::Arc;

use dozor_model::labels::METRIC_NAME;
use dozor_model::{Label, Labels};

/// Whether a label describes the metric rather than the series (`__name__`, `__type__`,
/// `__unit__`): removed together when an operation changes what the metric means.
pub(crate) fn is_metadata_label(name: &str) -> bool {
    matches!(name, METRIC_NAME | "__type__" | "__unit__")
}

/// A sorted label set; empty values never stored.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct Lset(Arc<Vec<Label>>);

impl std::fmt::Debug for Lset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Lset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl Lset {
    /// From a stored series' labels.
    pub(crate) fn from_labels(l: &Labels) -> Lset {
        Lset(Arc::new(l.iter().cloned().collect()))
    }

    /// From unsorted pairs (empty values dropped, last duplicate wins).
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Lset {
        let mut v: Vec<Label> = Vec::new();
        for (n, val) in pairs {
            v.retain(|l| l.name != n);
            if !val.is_empty() {
                v.push(Label {
                    name: n.to_owned(),
                    value: val.to_owned(),
                });
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Lset(Arc::new(v))
    }

    /// The labels, sorted by name.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The value of `name`, or `""`.
    pub(crate) fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    /// A copy with `name` set to `value` (removed when `value` is empty).
    pub(crate) fn with(&self, name: &str, value: &str) -> Lset {
        let mut v: Vec<Label> = (*self.0).clone();
        match v.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                v.remove(i);
            }
            Ok(i) => v[i].value = value.to_owned(),
            Err(_) if value.is_empty() => return self.clone(),
            Err(i) => v.insert(
                i,
                Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
        Lset(Arc::new(v))
    }

    /// A copy without the metric name (and the `__type__`/`__unit__` metadata labels that
    /// describe it, as Prometheus drops them together).
    pub(crate) fn without_name(&self) -> Lset {
        if !self.0.iter().any(|l| is_metadata_label(&l.name)) {
            return self.clone();
        }
        self.retain(|n| !is_metadata_label(n))
    }

    /// A copy keeping only the labels for which `keep` is true.
    pub(crate) fn retain(&self, keep: impl Fn(&str) -> bool) -> Lset {
        Lset(Arc::new(
            self.0.iter().filter(|l| keep(&l.name)).cloned().collect(),
        ))
    }

    /// A byte key of the labels `names` (for `on`) or all but `names` and `__name__` (for
    /// `ignoring`/`without`): equal keys mean the series match.
    pub(crate) fn signature(&self, on: bool, names: &[String]) -> Vec<u8> {
        let mut key = Vec::new();
        if on {
            let mut sorted: Vec<&String> = names.iter().collect();
            sorted.sort();
            sorted.dedup();
            for n in sorted {
                key.extend_from_slice(n.as_bytes());
                key.push(0xff);
                key.extend_from_slice(self.get(n).as_bytes());
                key.push(0xfe);
            }
        } else {
            for l in self.0.iter() {
                if l.name == METRIC_NAME || names.contains(&l.name) {
                    continue;
                }
                key.extend_from_slice(l.name.as_bytes());
                key.push(0xff);
                key.extend_from_slice(l.value.as_bytes());
                key.push(0xfe);
            }
        }
        key
    }

    /// The labels `signature` looks at, as a label set (for error messages and fills).
    pub(crate) fn match_labels(&self, on: bool, names: &[String]) -> Lset {
        if on {
            self.retain(|n| names.iter().any(|m| m == n))
        } else {
            self.retain(|n| n != METRIC_NAME && !names.iter().any(|m| m == n))
        }
    }

    /// Converts to the model's [`Labels`] (which validates names and sizes).
    pub(crate) fn to_labels(&self) -> Result<Labels, String> {
        if self.0.is_empty() {
            return Ok(Labels::default());
        }
        Labels::new((*self.0).clone()).map_err(|e| format!("cannot build result labels: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_on_listed_or_all_but_ignored_labels() {
        let a = Lset::from_pairs([("__name__", "a"), ("job", "x"), ("i", "1")]);
        let b = Lset::from_pairs([("__name__", "b"), ("job", "x"), ("i", "2")]);
        let job = ["job".to_owned()];
        let i = ["i".to_owned()];
        assert_eq!(a.signature(true, &job), b.signature(true, &job));
        assert_ne!(a.signature(false, &[]), b.signature(false, &[]));
        // ignoring() always ignores the metric name.
        assert_eq!(a.signature(false, &i), b.signature(false, &i));
        assert_eq!(a.match_labels(false, &i).to_string(), r#"{job="x"}"#);
    }

    #[test]
    fn dropping_the_name_drops_metadata_labels() {
        let a = Lset::from_pairs([("__name__", "a"), ("__type__", "counter"), ("x", "1")]);
        assert_eq!(a.without_name().to_string(), r#"{x="1"}"#);
        assert_eq!(a.with("x", "").with("y", "2").get("y"), "2");
        assert!(a.with("x", "").get("x").is_empty());
    }
}
