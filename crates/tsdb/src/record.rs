//! WAL records: series definitions and samples, in a compact binary form.
//!
//! ```text
//! series  := 0x01 count:uvarint { ref:uvarint nlabels:uvarint { name:bytes value:bytes } }
//! samples := 0x02 count:uvarint base_t:varint { ref:uvarint dt:varint value:u64le }
//! ```
//! `dt` is relative to `base_t`, the first sample's time.

use dozor_model::{Labels, Sample};

use crate::encoding::{Corrupt, Reader, put_labels, put_uvarint, put_varint};

/// A series' id in the head: assigned at first sight, stable until the series is dropped.
pub type SeriesRef = u64;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;

/// One WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series with their refs.
    Series(Vec<(SeriesRef, Labels)>),
    /// Samples of known series.
    Samples(Vec<(SeriesRef, Sample)>),
}

impl Record {
    /// Appends the encoded record to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Record::Series(series) => {
                buf.push(SERIES);
                put_uvarint(buf, series.len() as u64);
                for (r, labels) in series {
                    put_uvarint(buf, *r);
                    put_labels(buf, labels);
                }
            }
            Record::Samples(samples) => Record::encode_samples(samples, buf),
        }
    }

    /// Appends a series record of refs and packed label sets ([`dozor_model::packed`], the
    /// record's own label encoding) to `buf`.
    pub fn encode_series_packed(series: &[(SeriesRef, &[u8])], buf: &mut Vec<u8>) {
        buf.push(SERIES);
        put_uvarint(buf, series.len() as u64);
        for (r, packed) in series {
            put_uvarint(buf, *r);
            buf.extend_from_slice(packed);
        }
    }

    /// Appends a samples record of `samples` to `buf` (without building a [`Record`]).
    pub fn encode_samples(samples: &[(SeriesRef, Sample)], buf: &mut Vec<u8>) {
        buf.push(SAMPLES);
        put_uvarint(buf, samples.len() as u64);
        let base = samples.first().map_or(0, |(_, s)| s.t);
        put_varint(buf, base);
        for (r, s) in samples {
            put_uvarint(buf, *r);
            put_varint(buf, s.t.wrapping_sub(base));
            buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
        }
    }

    /// Decodes one record.
    pub fn decode(buf: &[u8]) -> Result<Record, Corrupt> {
        let mut r = Reader::new(buf);
        match r.u8()? {
            SERIES => {
                // Each entry takes at least 2 bytes: bound the allocation by the input.
                let n = r.len(buf.len() / 2)?;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let sref = r.uvarint()?;
                    out.push((sref, r.labels()?));
                }
                Ok(Record::Series(out))
            }
            SAMPLES => {
                let n = r.len(buf.len() / 10)?;
                let base = r.varint()?;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let sref = r.uvarint()?;
                    let t = base.wrapping_add(r.varint()?);
                    let v = f64::from_bits(r.u64_le()?);
                    out.push((sref, Sample { t, v }));
                }
                Ok(Record::Samples(out))
            }
            _ => Err(Corrupt("unknown record type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_including_stale_markers() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
        let series = Record::Series(vec![(7, labels)]);
        let samples = Record::Samples(vec![
            (7, Sample { t: 1_000, v: 1.5 }),
            (
                7,
                Sample {
                    t: 900,
                    v: dozor_model::labels::stale_nan(),
                },
            ),
        ]);
        for rec in [series, samples] {
            let mut buf = Vec::new();
            rec.encode(&mut buf);
            let back = Record::decode(&buf).unwrap();
            match (&rec, &back) {
                (Record::Samples(a), Record::Samples(b)) => {
                    for ((ra, sa), (rb, sb)) in a.iter().zip(b) {
                        assert_eq!((ra, sa.t, sa.v.to_bits()), (rb, sb.t, sb.v.to_bits()));
                    }
                }
                _ => assert_eq!(rec, back),
            }
        }
    }

    #[test]
    fn packed_series_records_are_the_same_bytes() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
        let mut a = Vec::new();
        Record::Series(vec![(3, labels.clone())]).encode(&mut a);
        let packed = crate::encoding::PackedLabels::new(&labels);
        let mut b = Vec::new();
        Record::encode_series_packed(&[(3, packed.as_bytes())], &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn truncated_and_garbage_records_are_corrupt() {
        let mut buf = Vec::new();
        Record::Samples(vec![(1, Sample { t: 5, v: 1.0 })]).encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(Record::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Record::decode(&[9, 9, 9]).is_err());
        assert!(Record::decode(&[SERIES, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
