//! A head series' samples: the newest few raw, the rest in compressed chunks.
//!
//! Raw samples cost 16 bytes each; a 2-hour head at a 15 s interval is 480 samples per
//! series, which made samples the largest part of the head's memory. So a series keeps at
//! most [`OPEN_SAMPLES`] raw samples ("open"), in a buffer allocated once at full size and
//! reused: a buffer that grew by doubling and was freed at every close left every size
//! class behind in the allocator's free lists (all series grow in step), which cost more
//! than the samples. When the open samples fill up they are encoded with
//! [`crate::chunk::encode`] (regular timestamps in a few bytes, values with `pco`) and merged
//! into the previous closed chunk while that one holds fewer than [`CLOSED_SAMPLES`], since
//! `pco`'s fixed cost (~80 bytes) makes small chunks expensive. Reads decode only the
//! chunks that overlap the asked range.
//!
//! Out-of-order samples older than the open samples re-encode the one closed chunk they fall
//! into (rare: only within the out-of-order window).

use dozor_model::Sample;

use crate::chunk;

/// Raw samples kept before they are compressed.
pub const OPEN_SAMPLES: usize = 16;
/// Closed chunks grow by merging up to this many samples.
pub const CLOSED_SAMPLES: usize = 128;

/// One series' samples in the head, sorted by time, one per timestamp.
#[derive(Debug, Default)]
pub struct SeriesSamples {
    /// Compressed, sorted, non-overlapping, all older than `open`.
    closed: Vec<Closed>,
    /// The newest samples, raw and sorted.
    open: Vec<Sample>,
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
            .or_else(|| self.open.first().map(|s| s.t))
    }

    /// The newest sample's time.
    pub fn last_t(&self) -> Option<i64> {
        self.open
            .last()
            .map(|s| s.t)
            .or_else(|| self.closed.last().map(|c| c.maxt))
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_empty()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.closed.iter().map(|c| c.len as usize).sum::<usize>() + self.open.len()
    }

    /// Adds `s`; a sample with an existing timestamp replaces the stored one.
    pub fn insert(&mut self, s: Sample) {
        let after_closed = self.closed.last().is_none_or(|c| s.t > c.maxt);
        if after_closed {
            match self.open.last() {
                Some(last) if s.t <= last.t => {
                    match self.open.binary_search_by(|x| x.t.cmp(&s.t)) {
                        Ok(i) => self.open[i] = s,
                        Err(i) => self.open.insert(i, s),
                    }
                }
                _ => {
                    if self.open.capacity() == 0 {
                        self.open.reserve_exact(OPEN_SAMPLES);
                    }
                    self.open.push(s);
                }
            }
            if self.open.len() >= OPEN_SAMPLES {
                self.close();
            }
            return;
        }
        // Older than the open samples: re-encode the closed chunk it belongs in (the first
        // one ending at or after it).
        let i = self.closed.partition_point(|c| c.maxt < s.t);
        let mut samples = Vec::new();
        self.closed[i].decode(&mut samples);
        match samples.binary_search_by(|x| x.t.cmp(&s.t)) {
            Ok(j) => samples[j] = s,
            Err(j) => samples.insert(j, s),
        }
        if let Some(c) = Closed::encode(&samples) {
            self.closed[i] = c;
        }
    }

    /// Compresses the open samples, merging them into the last closed chunk while it is
    /// small.
    fn close(&mut self) {
        let merge = self
            .closed
            .last()
            .is_some_and(|prev| prev.len as usize + self.open.len() <= CLOSED_SAMPLES);
        let encoded = if merge {
            let mut merged = Vec::with_capacity(CLOSED_SAMPLES);
            if let Some(prev) = self.closed.last() {
                prev.decode(&mut merged);
            }
            merged.extend_from_slice(&self.open);
            Closed::encode(&merged)
        } else {
            Closed::encode(&self.open)
        };
        // On an encoding failure (a codec bug) the samples simply stay open.
        if let Some(c) = encoded {
            if merge {
                self.closed.pop();
            }
            self.closed.push(c);
            self.open.clear();
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
        let from = self.open.partition_point(|x| x.t < mint);
        let to = self.open.partition_point(|x| x.t <= maxt);
        if from < to {
            out.extend_from_slice(&self.open[from..to]);
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
        let split = self.open.partition_point(|x| x.t < before);
        gone.extend(self.open.drain(..split));
        gone
    }

    /// Heap bytes held (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        self.closed.capacity() * std::mem::size_of::<Closed>()
            + self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + self.open.capacity() * std::mem::size_of::<Sample>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    /// A reference model: a sorted Vec with replace-on-equal-time.
    fn model_insert(m: &mut Vec<Sample>, x: Sample) {
        match m.binary_search_by(|y| y.t.cmp(&x.t)) {
            Ok(i) => m[i] = x,
            Err(i) => m.insert(i, x),
        }
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
            model_insert(&mut want, x);
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
