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

/// Slots of [`Scratch`]'s word cache (a power of two).
const WORD_SLOTS: usize = 4096;
/// Longest word the cache holds; longer ones always give their trigrams.
const CACHED_WORD: usize = 16;

thread_local! {
    /// What [`Bloom::build`] needs per block, kept per thread: a flush builds thousands.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
}

/// The distinct trigrams of a block being built, and a cache of the words already split.
///
/// Written by hand because it is the hot loop of a flush: a block's messages repeat their
/// words, so each word is looked up before its trigrams are taken, and a `HashSet<&[u8]>`
/// there (hashing, probing, a `memcmp` call per repeat) and a `HashSet<u32>` of trigrams
/// were a tenth of ingest CPU. Here a word of up to 16 bytes is two integers compared in a
/// direct-mapped cache (a miss only means its trigrams are taken again), and a trigram,
/// being 24 bits, is a bit of a 2 MiB set.
struct Scratch {
    /// One bit per possible trigram.
    seen: Vec<u64>,
    /// The trigrams whose bit is set, in first-seen order (to fill the filter, and to
    /// clear `seen` after).
    distinct: Vec<u32>,
    /// Word cache: `(build, length, first 8 bytes, next 8 bytes)`, zero-padded.
    words: Vec<(u32, u32, u64, u64)>,
    /// Number of the current build: cache entries of earlier builds do not count.
    build: u32,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            seen: vec![0; (1 << 24) / 64],
            distinct: Vec::new(),
            words: vec![(0, 0, 0, 0); WORD_SLOTS],
            build: 0,
        }
    }

    fn start(&mut self) {
        self.build = self.build.wrapping_add(1);
        if self.build == 0 {
            // Wrapped: forget every entry rather than mistake an old one for new.
            self.words.fill((0, 0, 0, 0));
            self.build = 1;
        }
    }

    fn finish(&mut self) {
        for &g in &self.distinct {
            self.seen[g as usize / 64] = 0;
        }
        self.distinct.clear();
    }

    /// Adds the trigrams of every word of `text`.
    fn add_text(&mut self, text: &[u8]) {
        let mut i = 0;
        while i < text.len() {
            if !WORD_BYTE[usize::from(text[i])] {
                i += 1;
                continue;
            }
            let start = i;
            while i < text.len() && WORD_BYTE[usize::from(text[i])] {
                i += 1;
            }
            if i - start >= 3 {
                self.add_word(&text[start..i]);
            }
        }
    }

    fn add_word(&mut self, word: &[u8]) {
        if word.len() <= CACHED_WORD {
            let (a, b) = padded(word);
            let len = word.len() as u32;
            let h = (a ^ b.rotate_left(29) ^ u64::from(len)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let slot = &mut self.words[(h >> 52) as usize % WORD_SLOTS];
            let entry = (self.build, len, a, b);
            if *slot == entry {
                return;
            }
            *slot = entry;
        }
        for_each_trigram(word, |g| {
            let (w, bit) = (g as usize / 64, 1u64 << (g % 64));
            if self.seen[w] & bit == 0 {
                self.seen[w] |= bit;
                self.distinct.push(g);
            }
        });
    }
}

/// A word of up to 16 bytes as two little-endian integers, zero-padded: with loads of the
/// word's own bytes (overlapping where it is short), not a copy into a padded buffer read
/// back whole — that copy was two library calls, and the read stalled on them (a fifth of
/// the time spent building filters).
pub(crate) fn padded(word: &[u8]) -> (u64, u64) {
    let n = word.len();
    let u32_at = |i: usize| {
        word.get(i..i + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, |s| u64::from(u32::from_le_bytes(s)))
    };
    let u64_at = |i: usize| {
        word.get(i..i + 8)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    match n {
        0..=3 => (
            word.iter()
                .enumerate()
                .fold(0, |a, (i, b)| a | u64::from(*b) << (8 * i)),
            0,
        ),
        // The first four bytes and the last four, overlapping: the bytes in both are the
        // same at the same places.
        4..=8 => (u32_at(0) | u32_at(n - 4) << (8 * (n - 4)), 0),
        // The last eight bytes, moved down past the ones the first eight already hold.
        9..=16 => (u64_at(0), u64_at(n - 8) >> (8 * (16 - n))),
        _ => (0, 0),
    }
}

/// [`is_word_byte`] as a table.
static WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
        b += 1;
    }
    t
};

/// A bloom filter over trigrams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
    k: u8,
}

impl Bloom {
    /// The filter of `texts`.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a [u8]>) -> Bloom {
        SCRATCH.with_borrow_mut(|s| {
            s.start();
            for t in texts {
                s.add_text(t);
            }
            let nwords = (s.distinct.len() * BITS_PER_ITEM).div_ceil(64).max(1);
            let mut bloom = Bloom {
                words: vec![0; nwords],
                k: PROBES,
            };
            for &g in &s.distinct {
                bloom.probe(g, |words, i| words[i / 64] |= 1 << (i % 64));
            }
            s.finish();
            bloom
        })
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
    fn words_pad_as_a_zeroed_buffer_does() {
        let bytes: Vec<u8> = (0..16u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(0xa1))
            .collect();
        for n in 0..=CACHED_WORD {
            let word = &bytes[..n];
            let mut buf = [0u8; CACHED_WORD];
            buf[..n].copy_from_slice(word);
            let (a, b) = buf.split_at(8);
            let want = (
                u64::from_le_bytes(a.try_into().unwrap()),
                u64::from_le_bytes(b.try_into().unwrap()),
            );
            assert_eq!(padded(word), want, "{n} bytes");
        }
    }

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

    /// The filter of every trigram of every word, without caches or scratch sets.
    fn reference(texts: &[&[u8]]) -> Bloom {
        let mut distinct = std::collections::BTreeSet::new();
        for t in texts {
            for_each_trigram(t, |g| {
                distinct.insert(g);
            });
        }
        let mut bloom = Bloom {
            words: vec![0; (distinct.len() * BITS_PER_ITEM).div_ceil(64).max(1)],
            k: PROBES,
        };
        for g in distinct {
            bloom.probe(g, |words, i| words[i / 64] |= 1 << (i % 64));
        }
        bloom
    }

    #[test]
    fn the_word_cache_and_trigram_set_change_nothing() {
        // Words of every length around the cache's 16 bytes, repeated (cache hits),
        // colliding in few slots (misses), Cyrillic, and empty texts; built twice in a row
        // on one thread, so the second build must not see the first's words or trigrams.
        let mut texts: Vec<String> = Vec::new();
        for i in 0..3000u32 {
            let len = 1 + (i as usize * 7) % 24;
            let word: String = (0..len)
                .map(|k| char::from(b'a' + ((i as usize + k * 3) % 26) as u8))
                .collect();
            texts.push(format!("{word} {word}_{} платёж {i} -- {word}", i % 5));
        }
        texts.push(String::new());
        let bytes: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let half: Vec<&[u8]> = bytes[..1000].to_vec();
        assert_eq!(Bloom::build(bytes.iter().copied()), reference(&bytes));
        assert_eq!(Bloom::build(half.iter().copied()), reference(&half));
        assert_eq!(Bloom::build(bytes.iter().copied()), reference(&bytes));
        assert_eq!(Bloom::build([]), reference(&[]));
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
