//! A series' samples in a block: timestamps and values, each with the cheapest encoding
//! that fits; and the aggregate chunk of a downsampled block.
//!
//! ```text
//! chunk     := times values
//! times     := 0x00 n:uvarint first:varint step:varint      every step equal ("regular")
//!            | 0x01 n:uvarint len:uvarint pco<i64>[len]     anything else
//! values    := 0x00 bits:u64le                              all n values identical
//!            | 0x01 len:uvarint pco<f64>[len]               pco (lossless, NaN bits kept)
//!            | 0x02 bits:u64le[n]                           raw, when pco is larger
//! aggregate := times { len:uvarint values }×5               min max sum count last
//! ```
//! Scrapes at a fixed interval make timestamps regular, so most series store their times in
//! a few bytes; constant series (flags, info metrics, idle counters) store one value. An
//! aggregate chunk stores its bucket times once and each aggregate as a length-prefixed
//! values section, so a reader decodes only the column it needs.

use dozor_model::Sample;

use crate::encoding::{Reader, put_uvarint, put_varint};
use crate::{Aggregate, TsdbError};

const TIMES_REGULAR: u8 = 0;
const TIMES_PCO: u8 = 1;
const VALUES_CONSTANT: u8 = 0;
const VALUES_PCO: u8 = 1;
const VALUES_RAW: u8 = 2;

/// Most samples in one chunk (bounds decoding memory for damaged files).
pub const MAX_CHUNK_SAMPLES: usize = 1 << 24;

/// Encodes samples sorted by time (at least one) into `buf`.
pub fn encode(samples: &[Sample], buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    let times: Vec<i64> = samples.iter().map(|s| s.t).collect();
    let values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    encode_times(&times, buf)?;
    encode_values(&values, buf)
}

/// Decodes a chunk of at most `max_samples` samples, appending them to `out`.
pub fn decode(bytes: &[u8], max_samples: usize, out: &mut Vec<Sample>) -> Result<(), TsdbError> {
    let mut r = Reader::new(bytes);
    let times = decode_times(&mut r, max_samples)?;
    let values = decode_values(&mut r, times.len())?;
    out.reserve(times.len());
    out.extend(times.into_iter().zip(values).map(|(t, v)| Sample { t, v }));
    Ok(())
}

/// Per-bucket aggregates of one series (a downsampled block's series), columns of equal
/// length in [`Aggregate`] order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    /// Bucket timestamps (the last millisecond of each bucket), ascending.
    pub times: Vec<i64>,
    /// One column per [`Aggregate`], indexed by `Aggregate as usize`.
    pub columns: [Vec<f64>; 5],
}

/// Encodes an aggregate chunk (at least one bucket).
pub fn encode_aggregates(a: &Aggregates, buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    encode_times(&a.times, buf)?;
    let mut section = Vec::new();
    for column in &a.columns {
        section.clear();
        encode_values(column, &mut section)?;
        put_uvarint(buf, section.len() as u64);
        buf.extend_from_slice(&section);
    }
    Ok(())
}

/// Decodes one column of an aggregate chunk as samples, appending them to `out`.
pub fn decode_aggregate(
    bytes: &[u8],
    which: Aggregate,
    max_samples: usize,
    out: &mut Vec<Sample>,
) -> Result<(), TsdbError> {
    let mut r = Reader::new(bytes);
    let times = decode_times(&mut r, max_samples)?;
    for _ in 0..which as usize {
        r.bytes()?;
    }
    let mut section = Reader::new(r.bytes()?);
    let values = decode_values(&mut section, times.len())?;
    out.reserve(times.len());
    out.extend(times.into_iter().zip(values).map(|(t, v)| Sample { t, v }));
    Ok(())
}

fn encode_times(times: &[i64], buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    let n = times.len();
    let first = times.first().copied().unwrap_or(0);
    let step = times.get(1).map_or(0, |t| t.wrapping_sub(first));
    if times.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step) {
        buf.push(TIMES_REGULAR);
        put_uvarint(buf, n as u64);
        put_varint(buf, first);
        put_varint(buf, step);
    } else {
        let packed = pco::standalone::simple_compress(times, &pco::ChunkConfig::default())
            .map_err(|e| TsdbError::Codec("compress", e.to_string()))?;
        buf.push(TIMES_PCO);
        put_uvarint(buf, n as u64);
        put_uvarint(buf, packed.len() as u64);
        buf.extend_from_slice(&packed);
    }
    Ok(())
}

fn encode_values(values: &[f64], buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    let first_bits = values.first().map_or(0, |v| v.to_bits());
    if values.iter().all(|v| v.to_bits() == first_bits) {
        buf.push(VALUES_CONSTANT);
        buf.extend_from_slice(&first_bits.to_le_bytes());
        return Ok(());
    }
    let packed = pco::standalone::simple_compress(values, &pco::ChunkConfig::default())
        .map_err(|e| TsdbError::Codec("compress", e.to_string()))?;
    if packed.len() < values.len() * 8 {
        buf.push(VALUES_PCO);
        put_uvarint(buf, packed.len() as u64);
        buf.extend_from_slice(&packed);
    } else {
        buf.push(VALUES_RAW);
        for v in values {
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    Ok(())
}

fn decode_times(r: &mut Reader<'_>, max_samples: usize) -> Result<Vec<i64>, TsdbError> {
    let tag = r.u8()?;
    let n = r.len(max_samples.min(MAX_CHUNK_SAMPLES))?;
    match tag {
        TIMES_REGULAR => {
            let first = r.varint()?;
            let step = r.varint()?;
            Ok((0..n as i64)
                .map(|i| first.wrapping_add(step.wrapping_mul(i)))
                .collect())
        }
        TIMES_PCO => {
            let packed = r.bytes()?;
            let t: Vec<i64> = pco::standalone::simple_decompress(packed)
                .map_err(|e| TsdbError::Codec("decompress", e.to_string()))?;
            if t.len() != n {
                return Err(TsdbError::Corrupt("chunk time count mismatch".into()));
            }
            Ok(t)
        }
        _ => Err(TsdbError::Corrupt("unknown chunk time encoding".into())),
    }
}

fn decode_values(r: &mut Reader<'_>, n: usize) -> Result<Vec<f64>, TsdbError> {
    match r.u8()? {
        VALUES_CONSTANT => Ok(vec![f64::from_bits(r.u64_le()?); n]),
        VALUES_PCO => {
            let packed = r.bytes()?;
            let values: Vec<f64> = pco::standalone::simple_decompress(packed)
                .map_err(|e| TsdbError::Codec("decompress", e.to_string()))?;
            if values.len() != n {
                return Err(TsdbError::Corrupt("chunk value count mismatch".into()));
            }
            Ok(values)
        }
        VALUES_RAW => {
            if r.remaining() < n.saturating_mul(8) {
                return Err(TsdbError::Corrupt("chunk values truncated".into()));
            }
            (0..n).map(|_| Ok(f64::from_bits(r.u64_le()?))).collect()
        }
        _ => Err(TsdbError::Corrupt("unknown chunk value encoding".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[Sample]) -> (usize, Vec<Sample>) {
        let mut buf = Vec::new();
        encode(samples, &mut buf).unwrap();
        let mut out = Vec::new();
        decode(&buf, MAX_CHUNK_SAMPLES, &mut out).unwrap();
        (buf.len(), out)
    }

    fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
        s.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    #[test]
    fn regular_constant_series_take_a_few_bytes() {
        let s: Vec<Sample> = (0..480)
            .map(|i| Sample {
                t: 1_700_000_000_000 + i * 15_000,
                v: 1.0,
            })
            .collect();
        let (size, back) = round_trip(&s);
        assert_eq!(back, s);
        assert!(size < 24, "{size} bytes");
    }

    #[test]
    fn counters_with_jitter_compress_below_two_bytes_per_sample() {
        let mut v = 0.0;
        let s: Vec<Sample> = (0..480)
            .map(|i| {
                v += f64::from((i * 7919 % 13) as u32);
                Sample {
                    t: 1_700_000_000_000 + i * 15_000 + (i * 31 % 5),
                    v,
                }
            })
            .collect();
        let (size, back) = round_trip(&s);
        assert_eq!(bits(&back), bits(&s));
        assert!(size < 480 * 2, "{size} bytes");
    }

    #[test]
    fn nan_bit_patterns_and_infinities_survive() {
        let s = vec![
            Sample { t: 1, v: 1.5 },
            Sample {
                t: 2,
                v: dozor_model::labels::stale_nan(),
            },
            Sample { t: 4, v: f64::NAN },
            Sample {
                t: 8,
                v: f64::INFINITY,
            },
            Sample { t: 9, v: -0.0 },
        ];
        assert_eq!(bits(&round_trip(&s).1), bits(&s));
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let s: Vec<Sample> = (0..50)
            .map(|i| Sample {
                t: i * i,
                v: (i as f64).sin(),
            })
            .collect();
        let mut buf = Vec::new();
        encode(&s, &mut buf).unwrap();
        for cut in 0..buf.len() {
            let _ = decode(&buf[..cut], MAX_CHUNK_SAMPLES, &mut Vec::new());
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x5a;
            let _ = decode(&b, MAX_CHUNK_SAMPLES, &mut Vec::new());
        }
        assert!(
            decode(
                &[TIMES_REGULAR, 0xff, 0xff, 0xff, 0xff, 0x7f],
                MAX_CHUNK_SAMPLES,
                &mut Vec::new()
            )
            .is_err()
        );
    }

    #[test]
    fn a_chunk_longer_than_its_index_entry_says_is_refused() {
        let s: Vec<Sample> = (0..10).map(|i| Sample { t: i, v: 1.0 }).collect();
        let mut buf = Vec::new();
        encode(&s, &mut buf).unwrap();
        assert!(decode(&buf, 9, &mut Vec::new()).is_err());
        assert!(decode(&buf, 10, &mut Vec::new()).is_ok());
    }

    #[test]
    fn aggregate_columns_decode_one_at_a_time() {
        let a = Aggregates {
            times: vec![299_999, 599_999, 1_199_999],
            columns: [
                vec![1.0, 2.0, 3.0],
                vec![4.0, 5.0, 6.0],
                vec![7.0, 8.0, 9.5],
                vec![20.0, 20.0, 20.0],
                vec![0.5, f64::NAN, -1.0],
            ],
        };
        let mut buf = Vec::new();
        encode_aggregates(&a, &mut buf).unwrap();
        for which in Aggregate::ALL {
            let mut out = Vec::new();
            decode_aggregate(&buf, which, 3, &mut out).unwrap();
            let want: Vec<(i64, u64)> = a
                .times
                .iter()
                .zip(&a.columns[which as usize])
                .map(|(t, v)| (*t, v.to_bits()))
                .collect();
            assert_eq!(bits(&out), want, "{which:?}");
        }
        for cut in 0..buf.len() {
            let _ = decode_aggregate(&buf[..cut], Aggregate::Last, 3, &mut Vec::new());
        }
        assert!(decode_aggregate(&buf, Aggregate::Min, 2, &mut Vec::new()).is_err());
    }
}
