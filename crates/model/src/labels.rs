//! [`Labels`] and [`Sample`]: the identity and the data points of a time series.
//!
//! A series is identified by its label set, `__name__` included, as in Prometheus. `Labels`
//! are always sorted by name, names are unique and valid, and empty values are dropped (an
//! empty value means "no such label" in PromQL).

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The NaN bit pattern Prometheus uses as a staleness marker: a series ended here.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the staleness marker (not any NaN: only this bit pattern).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The staleness marker as an `f64`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// One data point: milliseconds since the epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Timestamp, ms since the Unix epoch.
    pub t: i64,
    /// Value (may be the staleness marker).
    pub v: f64,
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Name: `[a-zA-Z_][a-zA-Z0-9_]*` (or `__name__`).
    pub name: String,
    /// Value: any UTF-8, never empty.
    pub value: String,
}

/// Why a label set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    /// A name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}")]
    BadName(String),
    /// A name appears twice.
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
    /// The set has no label left after dropping empty values.
    #[error("empty label set")]
    Empty,
    /// Over a limit.
    #[error("label set too large: {0}")]
    TooLarge(String),
}

/// Whether `name` is a valid label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A sorted, validated label set. Immutable and shared: a clone is a reference count, so
/// the many records of one log stream (and the series handed between engines) hold one
/// copy of their labels rather than a string allocation per label each.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Arc<[Label]>);

/// FNV-1a over `name 0xff value 0xff` of each pair, as 16 hex digits: the fingerprint of a
/// label set (alert ids, the alert history, Kafka message keys, group keys). Stable across
/// versions and processes, unlike `std`'s hasher.
pub fn fingerprint_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in pairs {
        for b in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

impl Labels {
    /// [`fingerprint_pairs`] of the labels.
    pub fn fingerprint(&self) -> String {
        fingerprint_pairs(self.iter().map(|l| (l.name.as_ref(), l.value.as_ref())))
    }

    /// Most labels in one set.
    pub const MAX_LABELS: usize = 64;
    /// Longest name or value, in bytes.
    pub const MAX_LABEL_BYTES: usize = 4096;

    /// Validates and sorts `labels`, dropping empty values.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels, LabelsError> {
        labels.retain(|l| !l.value.is_empty());
        if labels.is_empty() {
            return Err(LabelsError::Empty);
        }
        if labels.len() > Self::MAX_LABELS {
            return Err(LabelsError::TooLarge(format!(
                "{} labels, at most {}",
                labels.len(),
                Self::MAX_LABELS
            )));
        }
        for l in &labels {
            if !is_valid_label_name(&l.name) {
                return Err(LabelsError::BadName(l.name.clone()));
            }
            if l.name.len() > Self::MAX_LABEL_BYTES || l.value.len() > Self::MAX_LABEL_BYTES {
                return Err(LabelsError::TooLarge(format!(
                    "label {:?} longer than {} bytes",
                    l.name,
                    Self::MAX_LABEL_BYTES
                )));
            }
        }
        // Senders usually send sorted labels (remote_write requires it): check before sorting.
        if !labels.windows(2).all(|w| w[0].name <= w[1].name) {
            labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::Duplicate(w[0].name.clone()));
        }
        Ok(Labels(labels.into()))
    }

    /// Builds from `(name, value)` pairs.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Labels, LabelsError> {
        Labels::new(
            pairs
                .into_iter()
                .map(|(n, v)| Label {
                    name: n.into(),
                    value: v.into(),
                })
                .collect(),
        )
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// The labels as a slice, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a constructed set; here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Result<Labels, LabelsError> {
        let mut v: Vec<Label> = self.0.iter().filter(|l| l.name != name).cloned().collect();
        v.push(Label {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        Labels::new(v)
    }

    /// Bytes of names and values, for size accounting.
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len()).sum()
    }
}

/// Prometheus' text form: `name{a="x", b="y"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.metric_name() {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// As a JSON object `{"__name__": "up", "job": "x"}`, the shape of Prometheus' APIs.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|l| (&l.name, &l.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_validated_and_drop_empty_values() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("empty", "")]).unwrap();
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(l.get("empty"), None);
        assert_eq!(l.to_string(), "up{job=\"api\"}");
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"__name__":"up","job":"api"}"#
        );
    }

    #[test]
    fn bad_label_sets_are_refused() {
        assert_eq!(
            Labels::from_pairs([("1x", "v")]),
            Err(LabelsError::BadName("1x".into()))
        );
        assert_eq!(
            Labels::from_pairs([("a-b", "v")]),
            Err(LabelsError::BadName("a-b".into()))
        );
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("a", "2")]),
            Err(LabelsError::Duplicate("a".into()))
        );
        assert_eq!(Labels::from_pairs([("a", "")]), Err(LabelsError::Empty));
        let many: Vec<_> = (0..65).map(|i| (format!("l{i}"), "v")).collect();
        assert!(matches!(
            Labels::from_pairs(many),
            Err(LabelsError::TooLarge(_))
        ));
    }

    #[test]
    fn stale_nan_is_one_bit_pattern() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(stale_nan().is_nan());
    }
}
