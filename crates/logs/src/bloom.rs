//! [`Bloom`]: a bloom filter of the trigrams inside the words of a block's messages, so a
//! substring search (`|= "needle"`) skips blocks that cannot hold the needle.
//!
//! Words are runs of ASCII letters, digits, `_` and non-ASCII bytes (so Cyrillic words are
//! words); the filter holds every 3-byte window inside a word. A needle's own words lie
//! inside words of any line that contains it, so every trigram inside a needle's words must
//! be in the filter of a block that holds the needle: [`Bloom::may_contain`] never says no
//! wrongly. Trigrams rather than whole words because `|=` matches substrings ("ail" in
//! "failed"), as in Loki; windows that cross a separator are left out, which keeps the
//! filter small (a block's trigrams are bounded by its vocabulary, not by its volume).
//! Needles with no word of 3 bytes or more cannot be checked and always "may" match.
//!
//! Sizing: 10 bits per distinct trigram and 5 probes (about 1 % false positives).
//!
//! ```text
//! bloom := k:u8 nwords:uvarint word:u64le[nwords]
//! ```

use std::collections::HashSet;

use dozor_model::packed::{Corrupt, Reader, put_uvarint};

const BITS_PER_ITEM: usize = 10;
const PROBES: u8 = 5;
/// Largest filter read back (bounds memory for a damaged index): 8 MiB.
const MAX_WORDS: usize = 1 << 20;

/// Whether byte `b` belongs to a word.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Calls `f` with every trigram inside the words of `text`, as a 24-bit number.
fn for_each_trigram(text: &[u8], mut f: impl FnMut(u32)) {
    for word in text.split(|b| !is_word_byte(*b)) {
        for w in word.windows(3) {
            f(u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2]));
        }
    }
}

/// A bloom filter over trigrams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
    k: u8,
}

impl Bloom {
    /// The filter of `texts`.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a [u8]>) -> Bloom {
        // Messages of one stream repeat their words: each distinct word gives its trigrams
        // once (a word lookup costs less than the trigram inserts it saves).
        let hasher = foldhash::fast::FixedState::default();
        let mut words: HashSet<&[u8], _> = HashSet::with_hasher(hasher);
        let mut distinct = HashSet::with_hasher(hasher);
        for t in texts {
            for word in t.split(|b| !is_word_byte(*b)) {
                if word.len() >= 3 && words.insert(word) {
                    for_each_trigram(word, |g| {
                        distinct.insert(g);
                    });
                }
            }
        }
        let nwords = (distinct.len() * BITS_PER_ITEM).div_ceil(64).max(1);
        let mut bloom = Bloom {
            words: vec![0; nwords],
            k: PROBES,
        };
        for g in distinct {
            bloom.probe(g, |words, i| words[i / 64] |= 1 << (i % 64));
        }
        bloom
    }

    fn probe(&mut self, g: u32, mut f: impl FnMut(&mut [u64], usize)) {
        let m = self.words.len() * 64;
        let (h1, h2) = hashes(g);
        for i in 0..u64::from(self.k) {
            let bit = (h1.wrapping_add(i.wrapping_mul(h2)) % m as u64) as usize;
            f(&mut self.words, bit);
        }
    }

    fn has(&self, g: u32) -> bool {
        let m = (self.words.len() * 64) as u64;
        let (h1, h2) = hashes(g);
        (0..u64::from(self.k)).all(|i| {
            let bit = (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize;
            self.words[bit / 64] & (1 << (bit % 64)) != 0
        })
    }

    /// Whether a text of the block may contain `needle` as a substring (false: it cannot).
    pub fn may_contain(&self, needle: &[u8]) -> bool {
        let mut all = true;
        for_each_trigram(needle, |g| all &= self.has(g));
        all
    }

    /// Appends the encoded filter.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(self.k);
        put_uvarint(buf, self.words.len() as u64);
        for w in &self.words {
            buf.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Reads a filter written by [`Bloom::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Bloom, Corrupt> {
        let k = r.u8()?;
        if k == 0 || k > 16 {
            return Err(Corrupt("bloom filter probe count out of range"));
        }
        let n = r.len(MAX_WORDS.min(r.remaining() / 8))?;
        if n == 0 {
            return Err(Corrupt("empty bloom filter"));
        }
        let words = (0..n).map(|_| r.u64_le()).collect::<Result<_, _>>()?;
        Ok(Bloom { words, k })
    }
}

/// Two independent 64-bit hashes of a trigram (splitmix64 finalisers), for double hashing.
fn hashes(g: u32) -> (u64, u64) {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let g = u64::from(g);
    (mix(g), mix(g ^ 0x9e37_79b9_7f4a_7c15) | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_of_indexed_lines_always_may_match() {
        let lines: Vec<String> = (0..500)
            .map(|i| {
                format!(
                    "user=u{i} payment failed: card declined (код {i}) order #{}",
                    i * 7
                )
            })
            .collect();
        let bloom = Bloom::build(lines.iter().map(|l| l.as_bytes()));
        for line in &lines {
            for start in (0..line.len()).step_by(3) {
                for end in (start + 1..=line.len()).step_by(5) {
                    if let Some(needle) = line.get(start..end) {
                        assert!(bloom.may_contain(needle.as_bytes()), "{needle:?}");
                    }
                }
            }
        }
        assert!(bloom.may_contain(b"ail"), "inside a word");
        assert!(bloom.may_contain(b"x"), "too short to check");
    }

    #[test]
    fn absent_words_are_mostly_refused() {
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("GET /api/items/{i} 200"))
            .collect();
        let bloom = Bloom::build(lines.iter().map(|l| l.as_bytes()));
        let absent = (0..1000)
            .filter(|i| bloom.may_contain(format!("timeout{i}zq").as_bytes()))
            .count();
        assert!(absent < 30, "{absent} of 1000 false positives");
        assert!(!bloom.may_contain(b"payment"));
    }

    #[test]
    fn filters_round_trip_and_damage_is_an_error() {
        let bloom = Bloom::build([&b"checkout completed"[..]]);
        let mut buf = Vec::new();
        bloom.encode(&mut buf);
        assert_eq!(Bloom::decode(&mut Reader::new(&buf)).unwrap(), bloom);
        for cut in 0..buf.len() {
            assert!(Bloom::decode(&mut Reader::new(&buf[..cut])).is_err());
        }
        assert!(Bloom::decode(&mut Reader::new(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
    }
}
