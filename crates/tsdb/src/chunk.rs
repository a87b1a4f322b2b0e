//! A series' samples in a block: timestamps and values, each with the cheapest encoding
//! that fits.
//!
//! ```text
//! chunk  := times values
//! times  := 0x00 n:uvarint first:varint step:varint      every step equal ("regular")
//!         | 0x01 n:uvarint len:uvarint pco<i64>[len]     anything else
//! values := 0x00 bits:u64le                              all n values identical
//!         | 0x01 len:uvarint pco<f64>[len]               pco (lossless, NaN bits kept)
//!         | 0x02 bits:u64le[n]                           raw, when pco is larger
//! ```
//! Scrapes at a fixed interval make timestamps regular, so most series store their times in
//! a few bytes; constant series (flags, info metrics, idle counters) store one value.

use dozor_model::Sample;

use crate::TsdbError;
use crate::encoding::{Reader, put_uvarint, put_varint};

const TIMES_REGULAR: u8 = 0;
const TIMES_PCO: u8 = 1;
const VALUES_CONSTANT: u8 = 0;
const VALUES_PCO: u8 = 1;
const VALUES_RAW: u8 = 2;

/// Most samples in one chunk (bounds decoding memory for damaged files).
pub const MAX_CHUNK_SAMPLES: usize = 1 << 24;

/// Encodes samples sorted by time (at least one) into `buf`.
pub fn encode(samples: &[Sample], buf: &mut Vec<u8>) -> Result<(), TsdbError> {
    let n = samples.len();
    let first = samples.first().map_or(0, |s| s.t);
    let step = samples.get(1).map_or(0, |s| s.t.wrapping_sub(first));
    let regular = samples
        .windows(2)
        .all(|w| w[1].t.wrapping_sub(w[0].t) == step);
    if regular {
        buf.push(TIMES_REGULAR);
        put_uvarint(buf, n as u64);
        put_varint(buf, first);
        put_varint(buf, step);
    } else {
        let times: Vec<i64> = samples.iter().map(|s| s.t).collect();
        let packed = pco::standalone::simple_compress(&times, &pco::ChunkConfig::default())
            .map_err(|e| TsdbError::Codec("compress", e.to_string()))?;
        buf.push(TIMES_PCO);
        put_uvarint(buf, n as u64);
        put_uvarint(buf, packed.len() as u64);
        buf.extend_from_slice(&packed);
    }
    let first_bits = samples.first().map_or(0, |s| s.v.to_bits());
    if samples.iter().all(|s| s.v.to_bits() == first_bits) {
        buf.push(VALUES_CONSTANT);
        buf.extend_from_slice(&first_bits.to_le_bytes());
        return Ok(());
    }
    let values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    let packed = pco::standalone::simple_compress(&values, &pco::ChunkConfig::default())
        .map_err(|e| TsdbError::Codec("compress", e.to_string()))?;
    if packed.len() < n * 8 {
        buf.push(VALUES_PCO);
        put_uvarint(buf, packed.len() as u64);
        buf.extend_from_slice(&packed);
    } else {
        buf.push(VALUES_RAW);
        for v in &values {
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    Ok(())
}

/// Decodes a chunk, appending samples to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), TsdbError> {
    let mut r = Reader::new(bytes);
    let tag = r.u8()?;
    let n = r.len(MAX_CHUNK_SAMPLES)?;
    let times: Vec<i64> = match tag {
        TIMES_REGULAR => {
            let first = r.varint()?;
            let step = r.varint()?;
            (0..n as i64)
                .map(|i| first.wrapping_add(step.wrapping_mul(i)))
                .collect()
        }
        TIMES_PCO => {
            let packed = r.bytes()?;
            let t: Vec<i64> = pco::standalone::simple_decompress(packed)
                .map_err(|e| TsdbError::Codec("decompress", e.to_string()))?;
            if t.len() != n {
                return Err(TsdbError::Corrupt("chunk time count mismatch".into()));
            }
            t
        }
        _ => return Err(TsdbError::Corrupt("unknown chunk time encoding".into())),
    };
    out.reserve(n);
    match r.u8()? {
        VALUES_CONSTANT => {
            let v = f64::from_bits(r.u64_le()?);
            out.extend(times.into_iter().map(|t| Sample { t, v }));
        }
        VALUES_PCO => {
            let packed = r.bytes()?;
            let values: Vec<f64> = pco::standalone::simple_decompress(packed)
                .map_err(|e| TsdbError::Codec("decompress", e.to_string()))?;
            if values.len() != n {
                return Err(TsdbError::Corrupt("chunk value count mismatch".into()));
            }
            out.extend(times.into_iter().zip(values).map(|(t, v)| Sample { t, v }));
        }
        VALUES_RAW => {
            for t in times {
                out.push(Sample {
                    t,
                    v: f64::from_bits(r.u64_le()?),
                });
            }
        }
        _ => return Err(TsdbError::Corrupt("unknown chunk value encoding".into())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[Sample]) -> (usize, Vec<Sample>) {
        let mut buf = Vec::new();
        encode(samples, &mut buf).unwrap();
        let mut out = Vec::new();
        decode(&buf, &mut out).unwrap();
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
            let _ = decode(&buf[..cut], &mut Vec::new());
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x5a;
            let _ = decode(&b, &mut Vec::new());
        }
        assert!(
            decode(
                &[TIMES_REGULAR, 0xff, 0xff, 0xff, 0xff, 0x7f],
                &mut Vec::new()
            )
            .is_err()
        );
    }
}
