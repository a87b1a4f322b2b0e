//! Label sets packed into bytes, and [`SeriesBatch`]: many series with their samples in
//! three flat buffers.
//!
//! The packed form of a label set is `nlabels:uvarint { name:bytes value:bytes }` (`bytes`
//! = LEB128 length + raw bytes), labels in [`Labels`] order. It is canonical: two label sets
//! are equal exactly when their packed bytes are, so a store can find a series by hashing and
//! comparing bytes. The metric store keeps labels in this form and writes it to its WAL
//! unchanged (`docs/format/tsdb.md`).
//!
//! [`Reader`] is the bounds-checked cursor every stored format is read with (metric blocks
//! and WAL records, log parts): it never reads past the end and never panics.
//!
//! Decoders on the hot ingest path (remote_write) write validated labels straight into a
//! [`SeriesBatch`] without building a `Labels` per series: a request of thousands of series
//! costs a few buffer growths instead of thousands of string allocations.

use crate::labels::{Label, Labels, LabelsError, Sample, is_valid_label_name};

/// Appends `v` as a LEB128 varint.
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Appends `v` zigzag-encoded as a varint.
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends the packed form of `labels`.
pub fn pack_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_bytes(buf, l.name.as_bytes());
        put_bytes(buf, l.value.as_bytes());
    }
}

/// The `(name, value)` pairs of a packed label set, or `None` if the bytes are not one.
pub fn unpack_pairs(packed: &[u8]) -> Option<Vec<(&str, &str)>> {
    let mut r = Reader::new(packed);
    let n = r.len(Labels::MAX_LABELS).ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.str().ok()?, r.str().ok()?));
    }
    (r.remaining() == 0).then_some(out)
}

/// The label set of packed bytes, validated (`None` if they are not a valid one).
pub fn unpack_labels(packed: &[u8]) -> Option<Labels> {
    let pairs = unpack_pairs(packed)?;
    Labels::new(
        pairs
            .into_iter()
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect(),
    )
    .ok()
}

/// Whether `pairs` are already a valid label set in canonical order, so they can be packed
/// as they are: at least one label and at most [`Labels::MAX_LABELS`], names valid and
/// strictly increasing, values non-empty, nothing longer than [`Labels::MAX_LABEL_BYTES`].
/// `Err` when they can never be a label set; `Ok(false)` when [`Labels::new`] must sort or
/// drop empty values first (it may still refuse them: duplicates out of order, nothing
/// left).
pub fn check_canonical(pairs: &[(&str, &str)]) -> Result<bool, LabelsError> {
    if pairs.len() > Labels::MAX_LABELS {
        return Err(LabelsError::TooLarge(format!(
            "{} labels, at most {}",
            pairs.len(),
            Labels::MAX_LABELS
        )));
    }
    let mut canonical = !pairs.is_empty();
    let mut prev: Option<&str> = None;
    for &(name, value) in pairs {
        if value.is_empty() {
            // "No such label": Labels::new drops it, whatever its name.
            canonical = false;
            continue;
        }
        if !is_valid_label_name(name) {
            return Err(LabelsError::BadName(name.to_owned()));
        }
        if name.len() > Labels::MAX_LABEL_BYTES || value.len() > Labels::MAX_LABEL_BYTES {
            return Err(LabelsError::TooLarge(format!(
                "label {name:?} longer than {} bytes",
                Labels::MAX_LABEL_BYTES
            )));
        }
        match prev {
            Some(p) if p == name => return Err(LabelsError::Duplicate(name.to_owned())),
            Some(p) if p > name => canonical = false,
            _ => {}
        }
        prev = Some(name);
    }
    Ok(canonical)
}

/// Input ended early or held an impossible value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt data: {0}")]
pub struct Corrupt(pub &'static str);

/// A cursor over bytes that refuses to read past the end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, Corrupt> {
        let (&b, rest) = self.buf.split_first().ok_or(Corrupt("unexpected end"))?;
        self.buf = rest;
        Ok(b)
    }

    /// Reads a LEB128 varint (at most 10 bytes).
    pub fn uvarint(&mut self) -> Result<u64, Corrupt> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt("varint too long"))
    }

    /// Reads a zigzag varint.
    pub fn varint(&mut self) -> Result<i64, Corrupt> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a varint that must fit in `usize` and be at most `max`.
    pub fn len(&mut self, max: usize) -> Result<usize, Corrupt> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| Corrupt("length overflows"))?;
        if n > max {
            return Err(Corrupt("length over limit"));
        }
        Ok(n)
    }

    /// Reads `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if n > self.buf.len() {
            return Err(Corrupt("unexpected end"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.len(self.buf.len())?;
        self.take(n)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Corrupt("invalid UTF-8"))
    }

    /// Reads a label set written by [`put_labels`], validating it.
    pub fn labels(&mut self) -> Result<Labels, Corrupt> {
        let n = self.len(Labels::MAX_LABELS)?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?.to_owned();
            let value = self.str()?.to_owned();
            labels.push(Label { name, value });
        }
        Labels::new(labels).map_err(|_| Corrupt("invalid labels"))
    }

    /// Reads a little-endian `u64`.
    pub fn u64_le(&mut self) -> Result<u64, Corrupt> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Where one series of a [`SeriesBatch`] ends in its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    labels_end: usize,
    samples_end: usize,
}

/// Series with their samples, packed: one byte buffer of label sets, one buffer of samples
/// and one index. Every label set in it is valid and canonical.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesBatch {
    labels: Vec<u8>,
    samples: Vec<Sample>,
    entries: Vec<Entry>,
}

impl SeriesBatch {
    /// An empty batch.
    pub fn new() -> SeriesBatch {
        SeriesBatch::default()
    }

    /// Adds a series.
    pub fn push(&mut self, labels: &Labels, samples: &[Sample]) {
        pack_labels(&mut self.labels, labels);
        self.samples.extend_from_slice(samples);
        self.seal();
    }

    /// Adds a series from `(name, value)` pairs, validating them; pairs out of order or
    /// with empty values go through [`Labels::new`] first.
    pub fn push_pairs(
        &mut self,
        pairs: &[(&str, &str)],
        samples: impl IntoIterator<Item = Sample>,
    ) -> Result<(), LabelsError> {
        if check_canonical(pairs)? {
            put_uvarint(&mut self.labels, pairs.len() as u64);
            for (name, value) in pairs {
                put_bytes(&mut self.labels, name.as_bytes());
                put_bytes(&mut self.labels, value.as_bytes());
            }
        } else {
            let labels = Labels::new(
                pairs
                    .iter()
                    .map(|(n, v)| Label {
                        name: (*n).to_owned(),
                        value: (*v).to_owned(),
                    })
                    .collect(),
            )?;
            pack_labels(&mut self.labels, &labels);
        }
        self.samples.extend(samples);
        self.seal();
        Ok(())
    }

    fn seal(&mut self) {
        self.entries.push(Entry {
            labels_end: self.labels.len(),
            samples_end: self.samples.len(),
        });
    }

    /// How many series.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no series.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many samples in all.
    pub fn samples_len(&self) -> usize {
        self.samples.len()
    }

    /// Each series' packed labels and samples, in the order they were added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[Sample])> + '_ {
        let mut start = (0, 0);
        self.entries.iter().map(move |e| {
            let item = (
                &self.labels[start.0..e.labels_end],
                &self.samples[start.1..e.samples_end],
            );
            start = (e.labels_end, e.samples_end);
            item
        })
    }

    /// The series as `Labels` with their samples.
    pub fn to_series(&self) -> Vec<(Labels, Vec<Sample>)> {
        self.iter()
            .map(|(l, s)| (unpack_labels(l).unwrap_or_default(), s.to_vec()))
            .collect()
    }
}

impl From<&[(Labels, Vec<Sample>)]> for SeriesBatch {
    fn from(series: &[(Labels, Vec<Sample>)]) -> SeriesBatch {
        let mut b = SeriesBatch {
            labels: Vec::with_capacity(series.iter().map(|(l, _)| l.byte_size() + 16).sum()),
            samples: Vec::with_capacity(series.iter().map(|(_, s)| s.len()).sum()),
            entries: Vec::with_capacity(series.len()),
        };
        for (labels, samples) in series {
            b.push(labels, samples);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn packed_pairs_equal_packed_labels_byte_for_byte() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
        let mut a = SeriesBatch::new();
        a.push(&labels, &[s(1, 1.0)]);
        let mut b = SeriesBatch::new();
        b.push_pairs(&[("__name__", "up"), ("job", "api")], [s(1, 1.0)])
            .unwrap();
        // Unsorted and with an empty value: canonicalised through Labels::new.
        b.push_pairs(
            &[("job", "api"), ("x", ""), ("__name__", "up")],
            [s(2, 2.0)],
        )
        .unwrap();
        let (la, _) = a.iter().next().unwrap();
        let all: Vec<_> = b.iter().collect();
        assert_eq!(all[0].0, la);
        assert_eq!(all[1].0, la);
        assert_eq!(all[1].1, &[s(2, 2.0)]);
        assert_eq!(unpack_labels(la), Some(labels.clone()));
        assert_eq!(b.to_series()[1], (labels, vec![s(2, 2.0)]));
        assert_eq!((b.len(), b.samples_len()), (2, 2));
    }

    #[test]
    fn invalid_pairs_are_refused_and_leave_the_batch_unchanged() {
        let mut b = SeriesBatch::new();
        let bad: [&[(&str, &str)]; 4] =
            [&[("1x", "v")], &[("a", "1"), ("a", "2")], &[("a", "")], &[]];
        for pairs in bad {
            assert!(b.push_pairs(pairs, [s(1, 1.0)]).is_err(), "{pairs:?}");
        }
        let long = "x".repeat(Labels::MAX_LABEL_BYTES + 1);
        assert!(matches!(
            b.push_pairs(&[("a", &long)], []),
            Err(LabelsError::TooLarge(_))
        ));
        assert!(b.is_empty());
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn damaged_packed_bytes_do_not_unpack() {
        let labels = Labels::from_pairs([("job", "api")]).unwrap();
        let mut buf = Vec::new();
        pack_labels(&mut buf, &labels);
        assert!(unpack_labels(&buf[..buf.len() - 1]).is_none());
        let mut longer = buf.clone();
        longer.push(0);
        assert!(unpack_pairs(&longer).is_none());
        assert!(
            unpack_labels(&[0]).is_none(),
            "an empty set is no label set"
        );
        assert!(unpack_pairs(&[0xff; 11]).is_none());
    }
}
