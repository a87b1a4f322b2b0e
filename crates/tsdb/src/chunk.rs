//! A series' samples in a block: timestamps and values, each with the cheapest encoding
//! that fits; and the aggregate chunk of a downsampled block.
//!
//! ```text
//! chunk     := times values
//! times     := 0x00 n:uvarint first:varint step:varint      every step equal ("regular")
//!            | 0x01 n:uvarint len:uvarint pco<i64>[len]     anything else
//!            | 0x02 id:uvarint                              column `id` of the block's times file
//! values    := 0x00 bits:u64le                              all n values identical
//!            | 0x01 len:uvarint pco<f64>[len]               pco (lossless, NaN bits kept)
//!            | 0x02 bits:u64le[n]                           raw, when pco is larger
//! aggregate := times { len:uvarint values }×5               min max sum count last
//! ```
//! Scrapes at a fixed interval make timestamps regular, so most series store their times in
//! a few bytes; constant series (flags, info metrics, idle counters) store one value. Every
//! sample of one scrape carries the scrape's timestamp, so the hundreds of series of a target
//! share one time column, jitter included: a block keeps each column that several chunks
//! have once, in [`SharedTimes`] (its `times` file), and those chunks refer to it by number. An
//! aggregate chunk stores its bucket times once and each aggregate as a length-prefixed
//! values section, so a reader decodes only the column it needs.

use dozor_model::Sample;

use crate::encoding::{Reader, put_uvarint, put_varint};
use crate::{Aggregate, TsdbError};

const TIMES_REGULAR: u8 = 0;
const TIMES_PCO: u8 = 1;
const TIMES_SHARED: u8 = 2;
/// Time sections shorter than this stay inline: a reference costs 2–4 bytes.
const SHARE_MIN_BYTES: usize = 8;
const TIMES_MAGIC: &[u8; 4] = b"DZTT";
const TIMES_VERSION: u8 = 1;
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

/// The times section of a chunk of `samples` (sorted, at least one), for [`SharedTimes::build`]
/// and [`encode_with_times`].
pub fn encode_times_of(samples: &[Sample], buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    let times: Vec<i64> = samples.iter().map(|s| s.t).collect();
    encode_times(&times, buf)
}

/// Encodes a chunk of `samples` whose times section is `times` ([`encode_times_of`]),
/// written as a reference when `shared` names its column in the block's [`SharedTimes`].
pub fn encode_with_times(
    times: &[u8],
    shared: Option<u32>,
    samples: &[Sample],
    buf: &mut Vec<u8>,
) -> Result<(), TsdbError> {
    match shared {
        Some(id) => {
            buf.push(TIMES_SHARED);
            put_uvarint(buf, u64::from(id));
        }
        None => buf.extend_from_slice(times),
    }
    let values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    encode_values(&values, buf)
}

/// Decodes a chunk of at most `max_samples` samples, appending them to `out` (a chunk that
/// refers to shared times is corrupt here: see [`decode_in`]).
pub fn decode(bytes: &[u8], max_samples: usize, out: &mut Vec<Sample>) -> Result<(), TsdbError> {
    decode_in(bytes, max_samples, None, out)
}

/// Decodes a chunk of a block whose shared time columns are `shared`.
pub fn decode_in(
    bytes: &[u8],
    max_samples: usize,
    shared: Option<&SharedTimes>,
    out: &mut Vec<Sample>,
) -> Result<(), TsdbError> {
    let mut r = Reader::new(bytes);
    let times = decode_times(&mut r, max_samples, shared)?;
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
    let times = decode_times(&mut r, max_samples, None)?;
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

fn decode_times(
    r: &mut Reader<'_>,
    max_samples: usize,
    shared: Option<&SharedTimes>,
) -> Result<Vec<i64>, TsdbError> {
    let tag = r.u8()?;
    if tag == TIMES_SHARED {
        let id = r.uvarint()?;
        let column = shared
            .and_then(|t| t.get(id))
            .ok_or_else(|| TsdbError::Corrupt("chunk refers to a missing time column".into()))?;
        // Columns hold inline sections only: no reference chains.
        return decode_times(&mut Reader::new(column), max_samples, None);
    }
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

/// The time columns several chunks of one block share (the block's `times` file):
/// inline times sections (regular or pco), each kept once.
///
/// ```text
/// times-file := "DZTT" version:u8(1) n:uvarint { len:uvarint times } crc32c:u32
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedTimes {
    bytes: Vec<u8>,
    /// End of column `i` in `bytes`.
    ends: Vec<usize>,
}

impl SharedTimes {
    /// From every chunk's times section, in chunk order: the table of the sections that
    /// occur more than once (and are not tiny), and for each chunk its column, if shared.
    pub fn build(sections: &[Vec<u8>]) -> (SharedTimes, Vec<Option<u32>>) {
        let mut count: std::collections::HashMap<&[u8], u32> = Default::default();
        for s in sections.iter().filter(|s| s.len() >= SHARE_MIN_BYTES) {
            *count.entry(s.as_slice()).or_default() += 1;
        }
        let mut ids: std::collections::HashMap<&[u8], u32> = Default::default();
        let mut table = SharedTimes::default();
        let refs = sections
            .iter()
            .map(|s| {
                if count.get(s.as_slice()).is_none_or(|&n| n < 2) {
                    return None;
                }
                let next = u32::try_from(table.ends.len()).ok()?;
                let id = *ids.entry(s.as_slice()).or_insert_with(|| {
                    table.bytes.extend_from_slice(s);
                    table.ends.push(table.bytes.len());
                    next
                });
                Some(id)
            })
            .collect();
        (table, refs)
    }

    /// Whether no column is shared.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn get(&self, id: u64) -> Option<&[u8]> {
        let i = usize::try_from(id).ok()?;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }

    /// The `times` file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 3 * self.ends.len() + 16);
        out.extend_from_slice(TIMES_MAGIC);
        out.push(TIMES_VERSION);
        put_uvarint(&mut out, self.ends.len() as u64);
        let mut start = 0;
        for &end in &self.ends {
            put_uvarint(&mut out, (end - start) as u64);
            out.extend_from_slice(&self.bytes[start..end]);
            start = end;
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a `times` file, checking its magic, version and checksum.
    pub fn decode(file: &[u8]) -> Result<SharedTimes, TsdbError> {
        if file.len() < 9 || &file[..4] != TIMES_MAGIC {
            return Err(TsdbError::Corrupt("bad times file magic".into()));
        }
        let (body, crc) = file.split_at(file.len() - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err(TsdbError::Corrupt("times file checksum mismatch".into()));
        }
        let mut r = Reader::new(&body[4..]);
        if r.u8()? != TIMES_VERSION {
            return Err(TsdbError::Corrupt("unknown times file version".into()));
        }
        let n = r.len(body.len())?;
        let mut table = SharedTimes {
            bytes: Vec::with_capacity(body.len()),
            ends: Vec::with_capacity(n),
        };
        for _ in 0..n {
            table.bytes.extend_from_slice(r.bytes()?);
            table.ends.push(table.bytes.len());
        }
        if r.remaining() != 0 {
            return Err(TsdbError::Corrupt("trailing bytes in times file".into()));
        }
        Ok(table)
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

    fn jittered(offset: i64, n: i64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                t: 1_700_000_000_000 + offset + i * 15_000 + (i * 7 % 4),
                v: (i * i) as f64,
            })
            .collect()
    }

    #[test]
    fn repeated_time_columns_are_stored_once_and_referenced() {
        let series = [jittered(300, 100), jittered(300, 100), jittered(301, 100)];
        let regular: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 1000,
                v: 1.0,
            })
            .collect();
        let all: Vec<&[Sample]> = series
            .iter()
            .map(Vec::as_slice)
            .chain([&regular[..], &regular[..]])
            .collect();
        let sections: Vec<Vec<u8>> = all
            .iter()
            .map(|s| {
                let mut b = Vec::new();
                encode_times_of(s, &mut b).unwrap();
                b
            })
            .collect();
        let (table, refs) = SharedTimes::build(&sections);
        // The first two share a column; the third is unique; regular times stay inline.
        assert_eq!(refs, [Some(0), Some(0), None, None, None]);
        let file = table.encode();
        let table = SharedTimes::decode(&file).unwrap();
        for (i, s) in all.iter().enumerate() {
            let mut chunk = Vec::new();
            encode_with_times(&sections[i], refs[i], s, &mut chunk).unwrap();
            if refs[i].is_some() {
                let mut inline = Vec::new();
                encode_with_times(&sections[i], None, s, &mut inline).unwrap();
                assert!(chunk.len() + 8 < inline.len(), "a reference is smaller");
                assert!(decode(&chunk, MAX_CHUNK_SAMPLES, &mut Vec::new()).is_err());
            }
            let mut out = Vec::new();
            decode_in(&chunk, MAX_CHUNK_SAMPLES, Some(&table), &mut out).unwrap();
            assert_eq!(bits(&out), bits(s), "series {i}");
            assert!(decode_in(&chunk, 99, Some(&table), &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn damaged_times_files_and_dangling_references_are_corrupt() {
        let sections = vec![vec![TIMES_PCO; 9], vec![TIMES_PCO; 9]];
        let file = SharedTimes::build(&sections).0.encode();
        assert_eq!(SharedTimes::decode(&file).unwrap().ends.len(), 1);
        for cut in 0..file.len() {
            assert!(SharedTimes::decode(&file[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = file.clone();
        bad[6] ^= 1;
        assert!(SharedTimes::decode(&bad).is_err());
        let table = SharedTimes::default();
        assert!(
            decode_in(
                &[TIMES_SHARED, 0, VALUES_CONSTANT],
                10,
                Some(&table),
                &mut Vec::new()
            )
            .is_err()
        );
        // A column that is itself a reference is refused, not followed.
        let nested = SharedTimes::build(&vec![vec![TIMES_SHARED, 0, 0, 0, 0, 0, 0, 0]; 2]).0;
        let chunk = [&[TIMES_SHARED, 0, VALUES_CONSTANT][..], &[0; 8]].concat();
        assert!(decode_in(&chunk, 10, Some(&nested), &mut Vec::new()).is_err());
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
