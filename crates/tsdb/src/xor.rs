//! Gorilla XOR encoding (Pelkonen et al., "Gorilla: A Fast, Scalable, In-Memory Time Series
//! Database", VLDB 2015; Prometheus' head chunks use the same scheme): a bit stream that a
//! sample is appended to in constant time, without re-encoding what came before.
//!
//! The head keeps each series' newest samples this way ([`crate::memchunk`]): appending
//! costs a few nanoseconds, where compressing with `pco` costs a fixed ~15 µs per call,
//! which made small `pco` chunks the bottleneck of ingest and WAL replay. Full XOR runs are
//! then converted to `pco` once, which is about twice as dense.
//!
//! Layout (bits, most significant first):
//!
//! ```text
//! first sample   t:64 v:64
//! later samples  dod:  '0'                       Δt equals the previous Δt
//!                      '10'   + 14 bits          |dod| fits (two's complement)
//!                      '110'  + 17 bits
//!                      '1110' + 20 bits
//!                      '1111' + 64 bits
//!                value: '0'                      same bits as the previous value
//!                       '10' + meaningful bits   inside the previous leading/trailing window
//!                       '11' + lead:5 + len:6 (0 = 64) + meaningful bits
//! ```
//!
//! There is no crate for this that is maintained and allocation-free per append; the scheme
//! is small and fully tested below (round trips of edge values and random data, truncated
//! input never panics).

use dozor_model::Sample;

/// An XOR-encoded run of samples being appended to.
#[derive(Debug, Clone, Default)]
pub struct XorAppender {
    buf: Vec<u8>,
    /// Bits used in the last byte of `buf` (0: start a new byte).
    used: u8,
    n: u32,
    first_t: i64,
    t: i64,
    dt: i64,
    v: u64,
    lead: u8,
    trail: u8,
}

impl XorAppender {
    /// Samples appended.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The first sample's time (if any).
    pub fn first_t(&self) -> Option<i64> {
        (self.n > 0).then_some(self.first_t)
    }

    /// The last sample's time (if any).
    pub fn last_t(&self) -> Option<i64> {
        (self.n > 0).then_some(self.t)
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Empties the run, keeping its buffer.
    pub fn clear(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        *self = XorAppender {
            buf,
            ..XorAppender::default()
        };
    }

    /// Appends a sample; its time must be after the last one's (the caller checks).
    pub fn append(&mut self, s: Sample) {
        let bits = s.v.to_bits();
        if self.n == 0 {
            self.write(s.t as u64, 64);
            self.write(bits, 64);
            self.first_t = s.t;
            self.t = s.t;
            self.dt = 0;
            self.v = bits;
            self.lead = u8::MAX;
            self.n = 1;
            return;
        }
        let dt = s.t.wrapping_sub(self.t);
        let dod = dt.wrapping_sub(self.dt);
        if dod == 0 {
            self.write(0, 1);
        } else if fits(dod, 14) {
            self.write(0b10, 2);
            self.write(dod as u64, 14);
        } else if fits(dod, 17) {
            self.write(0b110, 3);
            self.write(dod as u64, 17);
        } else if fits(dod, 20) {
            self.write(0b1110, 4);
            self.write(dod as u64, 20);
        } else {
            self.write(0b1111, 4);
            self.write(dod as u64, 64);
        }
        let xor = bits ^ self.v;
        if xor == 0 {
            self.write(0, 1);
        } else {
            let lead = (xor.leading_zeros() as u8).min(31);
            let trail = xor.trailing_zeros() as u8;
            if self.lead != u8::MAX && lead >= self.lead && trail >= self.trail {
                self.write(0b10, 2);
                let len = 64 - self.lead - self.trail;
                self.write(xor >> self.trail, len);
            } else {
                let len = 64 - lead - trail;
                self.write(0b11, 2);
                self.write(u64::from(lead), 5);
                self.write(u64::from(len % 64), 6);
                self.write(xor >> trail, len);
                self.lead = lead;
                self.trail = trail;
            }
        }
        self.t = s.t;
        self.dt = dt;
        self.v = bits;
        self.n += 1;
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    fn write(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.used == 0 || self.used == 8 {
                self.buf.push(0);
                self.used = 0;
            }
            let free = 8 - self.used;
            let take = free.min(n);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used += take;
            n -= take;
        }
    }

    /// Decodes the run, appending its samples to `out`.
    pub fn decode(&self, out: &mut Vec<Sample>) {
        // Our own bytes: they always decode; a `None` would be a bug, so stop quietly.
        let _ = decode(&self.buf, self.len(), out);
    }
}

/// Whether `v` fits in `bits` bits as two's complement.
fn fits(v: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&v)
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - u32::from(bits);
    ((v << shift) as i64) >> shift
}

struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    /// Reads `n` ≤ 64 bits, a byte's worth at a time.
    fn read(&mut self, n: u8) -> Option<u64> {
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self.buf.get(self.pos / 8)?;
            let avail = 8 - (self.pos % 8) as u8;
            let take = avail.min(left);
            let bits = (u16::from(byte) >> (avail - take)) & ((1u16 << take) - 1);
            v = (v << take) | u64::from(bits);
            self.pos += usize::from(take);
            left -= take;
        }
        Some(v)
    }

    fn bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }
}

/// Decodes `n` samples from `bytes`, appending them to `out`; `None` if the bytes end early
/// (what was decoded until then stays in `out`).
pub fn decode(bytes: &[u8], n: usize, out: &mut Vec<Sample>) -> Option<()> {
    let mut r = BitReader { buf: bytes, pos: 0 };
    if n == 0 {
        return Some(());
    }
    let mut t = r.read(64)? as i64;
    let mut v = r.read(64)?;
    out.push(Sample {
        t,
        v: f64::from_bits(v),
    });
    let (mut dt, mut lead, mut trail) = (0i64, 0u8, 0u8);
    for _ in 1..n {
        let dod = if !r.bit()? {
            0
        } else if !r.bit()? {
            sign_extend(r.read(14)?, 14)
        } else if !r.bit()? {
            sign_extend(r.read(17)?, 17)
        } else if !r.bit()? {
            sign_extend(r.read(20)?, 20)
        } else {
            r.read(64)? as i64
        };
        dt = dt.wrapping_add(dod);
        t = t.wrapping_add(dt);
        if r.bit()? {
            if r.bit()? {
                lead = r.read(5)? as u8;
                let len = match r.read(6)? as u8 {
                    0 => 64,
                    l => l,
                };
                trail = 64u8.checked_sub(lead)?.checked_sub(len)?;
            }
            let len = 64u8.checked_sub(lead)?.checked_sub(trail)?;
            let xor = r.read(len)?.checked_shl(u32::from(trail)).unwrap_or(0);
            v ^= xor;
        }
        out.push(Sample {
            t,
            v: f64::from_bits(v),
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[Sample]) -> (usize, Vec<Sample>) {
        let mut a = XorAppender::default();
        for s in samples {
            a.append(*s);
        }
        let mut out = Vec::new();
        decode(a.bytes(), a.len(), &mut out).unwrap();
        (a.bytes().len(), out)
    }

    fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
        s.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    #[test]
    fn edge_values_and_times_round_trip_bit_exact() {
        let s = vec![
            Sample {
                t: i64::MIN,
                v: 0.0,
            },
            Sample { t: -5, v: -0.0 },
            Sample { t: 0, v: f64::NAN },
            Sample {
                t: 1,
                v: dozor_model::labels::stale_nan(),
            },
            Sample {
                t: 70_000,
                v: f64::INFINITY,
            },
            Sample {
                t: 70_001,
                v: f64::MIN_POSITIVE,
            },
            Sample {
                t: 1 << 40,
                v: f64::MAX,
            },
            Sample {
                t: i64::MAX,
                v: 1.0,
            },
        ];
        assert_eq!(bits(&round_trip(&s).1), bits(&s));
    }

    #[test]
    fn random_series_round_trip_and_regular_ones_are_small() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..50 {
            let mut t = (next() % 1_000_000) as i64;
            let s: Vec<Sample> = (0..200)
                .map(|_| {
                    t += (next() % 40_000) as i64;
                    let v = match next() % 4 {
                        0 => f64::from_bits(next()),
                        1 => (next() % 100) as f64,
                        _ => (next() % 1000) as f64 / 7.0,
                    };
                    Sample { t, v }
                })
                .collect();
            assert_eq!(bits(&round_trip(&s).1), bits(&s));
        }
        let regular: Vec<Sample> = (0..120)
            .map(|i| Sample {
                t: 1_700_000_000_000 + i * 15_000,
                v: 1.0,
            })
            .collect();
        let (size, back) = round_trip(&regular);
        assert_eq!(back, regular);
        assert!(size <= 16 + 120 * 2 / 8 + 4, "{size} bytes");
    }

    #[test]
    fn truncated_bytes_end_decoding_without_panic() {
        let s: Vec<Sample> = (0..50)
            .map(|i| Sample {
                t: i * i * 1000,
                v: (i as f64).sqrt(),
            })
            .collect();
        let mut a = XorAppender::default();
        for x in &s {
            a.append(*x);
        }
        for cut in 0..a.bytes().len() {
            let mut out = Vec::new();
            assert!(decode(&a.bytes()[..cut], s.len(), &mut out).is_none());
            assert!(out.len() < s.len());
            assert_eq!(bits(&out), bits(&s[..out.len()]));
        }
        let mut flipped = a.bytes().to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xa5;
            let _ = decode(&flipped, s.len(), &mut Vec::new());
            flipped[i] ^= 0xa5;
        }
    }

    #[test]
    fn clearing_keeps_the_buffer_and_starts_over() {
        let mut a = XorAppender::default();
        a.append(Sample { t: 5, v: 1.0 });
        a.append(Sample { t: 9, v: 2.0 });
        let held = a.heap_bytes();
        a.clear();
        assert!(a.is_empty() && held > 0 && a.heap_bytes() == held);
        a.append(Sample { t: 1, v: 3.0 });
        let mut out = Vec::new();
        a.decode(&mut out);
        assert_eq!(out, [Sample { t: 1, v: 3.0 }]);
        assert_eq!((a.first_t(), a.last_t()), (Some(1), Some(1)));
    }
}
