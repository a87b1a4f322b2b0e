//! A head series' samples: the newest in an XOR run, the rest in compressed chunks.
//!
//! Raw samples cost 16 bytes each; a 2-hour head at a 15 s interval is 480 samples per
//! series, which made samples the largest part of the head's memory. Compressing them with
//! `pco` is dense (about 1–2 bytes per sample at 128 samples) but costs a fixed ~15 µs per
//! call, too much to pay often. So a series appends its newest samples to a Gorilla XOR run
//! ([`crate::xor`]: constant time per sample, about 2–5 bytes each), and when the run holds
//! [`CHUNK_SAMPLES`] it is converted once into a closed `pco` chunk
//! ([`crate::chunk::encode`]) and started over in the same buffer (no allocator churn).
//! Reads decode only the chunks that overlap the asked range.
//!
//! Samples at or before the newest one (out of order within the window, or a repeated
//! timestamp) rewrite the run or the one closed chunk they fall into: rare, and bounded by
//! one chunk.

use dozor_model::Sample;

use crate::chunk;
use crate::xor::XorAppender;

/// Samples per closed chunk (and most samples in the XOR run).
pub const CHUNK_SAMPLES: usize = 128;

/// One series' samples in the head, sorted by time, one per timestamp.
#[derive(Debug, Default)]
pub struct SeriesSamples {
    /// Compressed, sorted, non-overlapping, all older than `run`.
    closed: Vec<Closed>,
    /// The newest samples.
    run: XorAppender,
}

#[derive(Debug)]
struct Closed {
    mint: i64,
    maxt: i64,
    len: u32,
    bytes: Box<[u8]>,
}

impl Closed {
    fn encode(samples: &[Sample]) -> Option<Closed> {
        let (first, last) = (samples.first()?, samples.last()?);
        let mut bytes = Vec::new();
        chunk::encode(samples, &mut bytes).ok()?;
        Some(Closed {
            mint: first.t,
            maxt: last.t,
            len: u32::try_from(samples.len()).ok()?,
            bytes: bytes.into_boxed_slice(),
        })
    }

    fn decode(&self, out: &mut Vec<Sample>) {
        // We encoded these bytes ourselves, in memory; a failure would be a bug in the codec.
        if let Err(e) = chunk::decode(&self.bytes, self.len as usize, out) {
            tracing::error!(error = %e, "a head chunk does not decode");
        }
    }
}

impl SeriesSamples {
    /// The oldest sample's time.
    pub fn first_t(&self) -> Option<i64> {
        self.closed
            .first()
            .map(|c| c.mint)
            .or_else(|| self.run.first_t())
    }

    /// The newest sample's time.
    pub fn last_t(&self) -> Option<i64> {
        self.run
            .last_t()
            .or_else(|| self.closed.last().map(|c| c.maxt))
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.run.is_empty()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.closed.iter().map(|c| c.len as usize).sum::<usize>() + self.run.len()
    }

    /// Adds `s`; a sample with an existing timestamp replaces the stored one.
    pub fn insert(&mut self, s: Sample) {
        if self.last_t().is_none_or(|last| s.t > last) {
            self.run.append(s);
            if self.run.len() >= CHUNK_SAMPLES {
                self.close();
            }
            return;
        }
        // Newer than every closed chunk: it belongs in the run.
        if !self.run.is_empty() && self.closed.last().is_none_or(|c| s.t > c.maxt) {
            let mut samples = Vec::with_capacity(self.run.len() + 1);
            self.run.decode(&mut samples);
            upsert(&mut samples, s);
            self.run.clear();
            for x in samples {
                self.run.append(x);
            }
            return;
        }
        // Otherwise re-encode the closed chunk it belongs in: the first one ending at or
        // after it (one exists: the newest chunk ends at or after `s.t` here).
        let i = self.closed.partition_point(|c| c.maxt < s.t);
        let Some(c) = self.closed.get(i) else {
            return;
        };
        let mut samples = Vec::with_capacity(c.len as usize + 1);
        c.decode(&mut samples);
        upsert(&mut samples, s);
        if let Some(c) = Closed::encode(&samples) {
            self.closed[i] = c;
        }
    }

    /// Converts the XOR run into a closed chunk.
    fn close(&mut self) {
        let mut samples = Vec::with_capacity(self.run.len());
        self.run.decode(&mut samples);
        // On an encoding failure (a codec bug) the samples simply stay in the run.
        if let Some(c) = Closed::encode(&samples) {
            self.closed.push(c);
            self.run.clear();
        }
    }

    /// Appends the samples in `[mint, maxt]` to `out`.
    pub fn range(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let mut buf = Vec::new();
        for c in self
            .closed
            .iter()
            .filter(|c| c.maxt >= mint && c.mint <= maxt)
        {
            buf.clear();
            c.decode(&mut buf);
            out.extend(buf.iter().filter(|x| x.t >= mint && x.t <= maxt));
        }
        if self
            .run
            .first_t()
            .zip(self.run.last_t())
            .is_some_and(|(a, b)| b >= mint && a <= maxt)
        {
            buf.clear();
            self.run.decode(&mut buf);
            out.extend(buf.iter().filter(|x| x.t >= mint && x.t <= maxt));
        }
    }

    /// Every sample.
    pub fn to_vec(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len());
        self.range(i64::MIN, i64::MAX, &mut out);
        out
    }

    /// Removes and returns the samples with `t < before`.
    pub fn split_before(&mut self, before: i64) -> Vec<Sample> {
        let mut gone = Vec::new();
        let whole = self.closed.partition_point(|c| c.maxt < before);
        for c in self.closed.drain(..whole) {
            c.decode(&mut gone);
        }
        if let Some(c) = self.closed.first()
            && c.mint < before
        {
            let mut samples = Vec::new();
            c.decode(&mut samples);
            let split = samples.partition_point(|x| x.t < before);
            gone.extend(samples.drain(..split));
            match Closed::encode(&samples) {
                Some(rest) => self.closed[0] = rest,
                None => {
                    self.closed.remove(0);
                }
            }
        }
        if self.run.first_t().is_some_and(|first| first < before) {
            let mut samples = Vec::with_capacity(self.run.len());
            self.run.decode(&mut samples);
            let split = samples.partition_point(|x| x.t < before);
            gone.extend(samples.drain(..split));
            self.run.clear();
            for x in samples {
                self.run.append(x);
            }
        }
        gone
    }

    /// Heap bytes held (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        self.closed.capacity() * std::mem::size_of::<Closed>()
            + self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + self.run.heap_bytes()
    }
}

/// Inserts `s` into sorted `samples`, replacing a sample with the same time.
fn upsert(samples: &mut Vec<Sample>, s: Sample) {
    match samples.binary_search_by(|x| x.t.cmp(&s.t)) {
        Ok(i) => samples[i] = s,
        Err(i) => samples.insert(i, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn behaves_like_a_sorted_vec_under_in_order_and_late_samples() {
        let mut got = SeriesSamples::default();
        let mut want = Vec::new();
        let mut rng = 0x2545_f491_u64;
        for i in 0..2_000i64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Mostly in order, sometimes up to 100 steps late, sometimes a duplicate time.
            let late = if rng.is_multiple_of(10) {
                (rng % 100) as i64
            } else {
                0
            };
            let x = s((i - late) * 15_000, (rng % 1000) as f64);
            got.insert(x);
            upsert(&mut want, x);
        }
        assert_eq!(got.to_vec(), want);
        assert_eq!(got.len(), want.len());
        let mut part = Vec::new();
        got.range(300_000, 600_000, &mut part);
        let expect: Vec<Sample> = want
            .iter()
            .copied()
            .filter(|x| (300_000..=600_000).contains(&x.t))
            .collect();
        assert_eq!(part, expect);
        let cut = got.split_before(10_000_000);
        let split = want.partition_point(|x| x.t < 10_000_000);
        assert_eq!(cut, want[..split]);
        assert_eq!(got.to_vec(), want[split..]);
        assert_eq!(got.first_t(), want.get(split).map(|x| x.t));
        assert_eq!(got.last_t(), want.last().map(|x| x.t));
    }

    #[test]
    fn a_two_hour_series_takes_a_fraction_of_its_raw_size() {
        let mut got = SeriesSamples::default();
        let mut v = 0.0;
        for i in 0..480i64 {
            v += (i % 7) as f64;
            got.insert(s(1_700_000_000_000 + i * 15_000, v));
        }
        let raw = 480 * std::mem::size_of::<Sample>();
        assert!(
            got.heap_bytes() * 5 < raw,
            "{} of {raw} bytes",
            got.heap_bytes()
        );
    }

    #[test]
    fn splitting_everything_or_nothing_leaves_a_consistent_series() {
        let mut got = SeriesSamples::default();
        for i in 0..100 {
            got.insert(s(i, 1.0));
        }
        assert!(got.split_before(i64::MIN).is_empty());
        assert_eq!(got.split_before(i64::MAX).len(), 100);
        assert!(got.is_empty());
        assert_eq!((got.first_t(), got.last_t()), (None, None));
    }
}
