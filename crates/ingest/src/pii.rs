//! PII masking: finds personal data and secrets in text and replaces them before anything
//! is stored.
//!
//! A [`Masker`] looks for the [`PiiKind`]s — e-mail addresses, phone numbers (international
//! and Russian formats), bank card numbers (Luhn-checked), IBANs (mod-97-checked), Russian
//! passport numbers, INN and SNILS (checksums; passport and INN only next to their name, as
//! bare 10-digit numbers are mostly timestamps and ids), IPv4 and IPv6 addresses, JWTs, and
//! the values of `password=`, `token=`, `"secret": "…"` and `Authorization:` — in plain
//! text, JSON (any depth: the text is scanned as a whole) and URL-encoded query strings
//! (a text with `%XX` escapes is scanned percent-decoded, and what is found there is
//! replaced in the original). Each kind has an [`Action`]: replace with `[KIND]`, replace
//! with a salted hash (`[KIND:1a2b3c4d5e6f7a8b]`, the same for the same value and tenant, so
//! lines can still be correlated), drop the whole record, or keep.
//!
//! Candidates come from one regex per kind; checksums and context decide. Overlaps go to
//! the earliest, then longest match. What was found is counted per kind ([`Masked::counts`])
//! for the masking metrics. Masking runs on every message and field value at ingest, so
//! one pass over the text first rules out the kinds it cannot hold (no `@`, no e-mail; too
//! few digits in a row, no card…) and only the remaining regexes run: typical lines need
//! one (IPv4) or none. The result is the same as running them all, which a test checks.
//!
//! ```
//! use dozor_ingest::pii::{Masker, PiiConfig};
//! let m = Masker::new(&PiiConfig::default());
//! let out = m.mask("login ivan.petrov@mail.ru from 10.1.2.3, card 4111 1111 1111 1111", b"salt");
//! assert_eq!(out.text, "login [EMAIL] from [IPV4], card [CARD]");
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use dozor_model::Matcher;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A kind of personal data or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// `user@example.com`.
    Email,
    /// `+7 (912) 345-67-89`, `8 912 345 67 89`, `+44 20 7946 0958`.
    Phone,
    /// 13–19 digits with a card issuer's prefix, passing the Luhn check.
    Card,
    /// `DE89 3704 0044 0532 0130 00`, mod-97 checked.
    Iban,
    /// Russian internal passport `45 08 123456`, next to "паспорт"/"passport".
    Passport,
    /// Russian taxpayer number (10 or 12 digits, checksummed), next to "ИНН"/"INN".
    Inn,
    /// Russian insurance number `112-233-445 95`, checksummed.
    Snils,
    /// `192.168.1.10`.
    Ipv4,
    /// `2001:db8::1`.
    Ipv6,
    /// `eyJ….eyJ….…`.
    Jwt,
    /// The value of `password=`, `token=`, `"secret": "…"`, `Authorization: …`.
    Secret,
}

impl PiiKind {
    /// This kind's bit in a set of kinds.
    const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Every kind, in detection priority order (earlier wins a tie).
    pub const ALL: [PiiKind; 11] = [
        PiiKind::Jwt,
        PiiKind::Secret,
        PiiKind::Email,
        PiiKind::Iban,
        PiiKind::Card,
        PiiKind::Snils,
        PiiKind::Passport,
        PiiKind::Inn,
        PiiKind::Phone,
        PiiKind::Ipv6,
        PiiKind::Ipv4,
    ];

    /// The replacement tag: `EMAIL`, `PHONE`…
    pub fn tag(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Card => "CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::Passport => "PASSPORT",
            PiiKind::Inn => "INN",
            PiiKind::Snils => "SNILS",
            PiiKind::Ipv4 => "IPV4",
            PiiKind::Ipv6 => "IPV6",
            PiiKind::Jwt => "JWT",
            PiiKind::Secret => "SECRET",
        }
    }

    /// The candidate pattern; group `v`, when present, is the part to replace.
    fn pattern(self) -> &'static str {
        match self {
            PiiKind::Email => r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,}",
            PiiKind::Phone => concat!(
                r"(?:\+7|\b8)[\s-]?\(?\d{3}\)?[\s-]?\d{3}[\s-]?\d{2}[\s-]?\d{2}\b",
                r"|\+[1-9]\d{0,2}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}\b"
            ),
            PiiKind::Card => r"\b\d(?:[ -]?\d){12,18}\b",
            PiiKind::Iban => r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
            PiiKind::Passport => {
                r"(?i)(?:паспорт\w*|passport)\D{0,20}?(?P<v>\b\d{2}\s?\d{2}(?:\s*(?:номер|№|no\.?)\s*|\s?)\d{6}\b)"
            }
            PiiKind::Inn => r"(?i)(?:\bинн|\binn)\D{0,10}?(?P<v>\b\d{10}(?:\d{2})?\b)",
            PiiKind::Snils => r"\b\d{3}-\d{3}-\d{3}[ -]\d{2}\b",
            PiiKind::Ipv4 => {
                r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b"
            }
            PiiKind::Ipv6 => r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}",
            PiiKind::Jwt => r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*",
            PiiKind::Secret => concat!(
                r#"(?i)(?:(?:\b|_)(?:password|passwd|pwd|pass|secret|token|api[_-]?key|access[_-]?token|пароль)"#,
                r#"(?:\s*[=:]\s*|=)"?(?P<v>[^\s"&,;]+)"#,
                r#"|"(?:password|passwd|pwd|pass|secret|token|api[_-]?key|access[_-]?token|authorization|пароль)"\s*:\s*"(?P<j>[^"]*)""#,
                r#"|\bauthorization\s*[:=]\s*(?:bearer\s+|basic\s+)?(?P<a>[\w.~+/=-]+))"#
            ),
        }
    }

    /// Whether a candidate is really of this kind (checksums, parse).
    fn valid(self, s: &str) -> bool {
        let digits = || s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0');
        match self {
            PiiKind::Card => {
                let d: Vec<u8> = digits().collect();
                (13..=19).contains(&d.len()) && card_prefix(&d) && luhn(&d)
            }
            PiiKind::Iban => iban_ok(s),
            PiiKind::Snils => snils_ok(&digits().collect::<Vec<_>>()),
            PiiKind::Inn => inn_ok(&digits().collect::<Vec<_>>()),
            PiiKind::Phone => (10..=15).contains(&digits().count()),
            PiiKind::Ipv6 => {
                s.bytes().filter(|b| *b == b':').count() >= 2
                    && s.bytes().any(|b| b.is_ascii_hexdigit())
                    && s.parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => true,
        }
    }
}

/// What to do with what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace with `[KIND]`.
    Mask,
    /// Replace with `[KIND:<16 hex digits of a salted SHA-256>]`.
    Hash,
    /// Refuse the whole record.
    Drop,
    /// Leave it.
    Keep,
}

/// Masking settings: one action per kind (absent kinds: `mask`), and per stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Per-kind actions, e.g. `{ipv4: keep, email: hash}`.
    pub actions: BTreeMap<PiiKind, Action>,
    /// Per-stream actions: records of the first entry whose selector matches their stream
    /// take its actions for the kinds it names (the others as `actions`), e.g.
    /// `[{match: '{job="kkt"}', actions: {card: keep}}]`.
    pub streams: Vec<StreamActions>,
}

/// One entry of [`PiiConfig::streams`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamActions {
    /// Stream selector (`{job="kkt"}`).
    #[serde(rename = "match")]
    pub selector: String,
    /// Actions for the kinds it names.
    pub actions: BTreeMap<PiiKind, Action>,
}

impl PiiConfig {
    /// The action for `kind`.
    pub fn action(&self, kind: PiiKind) -> Action {
        self.actions.get(&kind).copied().unwrap_or(Action::Mask)
    }
}

/// The compiled detectors.
#[derive(Debug, Clone)]
pub struct Masker {
    detectors: Vec<Detector>,
    /// The maskers of [`PiiConfig::streams`], with their selectors, in order.
    streams: Vec<(Vec<Matcher>, Masker)>,
}

/// One kind's regex and action.
#[derive(Debug, Clone)]
struct Detector {
    kind: PiiKind,
    action: Action,
    re: Regex,
    /// Whether the pattern names the part to replace with a group (`v`, `j`, `a`); without
    /// one, the plain `find_iter` gives the span, which is much cheaper than `captures_iter`.
    groups: bool,
}

/// A finding: its span in the scanned text, its kind and what to do with it.
type Finding = (usize, usize, PiiKind, Action);

/// A masked text and what was found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked<'a> {
    /// The text with every finding replaced (unchanged when nothing was found).
    pub text: Cow<'a, str>,
    /// Findings per kind (kept ones included).
    pub counts: BTreeMap<PiiKind, u32>,
    /// A kind whose action is `drop` was found: the record must not be stored.
    pub drop: bool,
}

impl Masker {
    /// Compiles the detectors with the actions of `config`.
    pub fn new(config: &PiiConfig) -> Masker {
        let detectors = PiiKind::ALL
            .iter()
            .map(|&kind| {
                // The patterns are constants, compiled by every test run.
                let re = Regex::new(kind.pattern()).expect("BUG: a PII pattern does not compile");
                Detector {
                    kind,
                    action: config.action(kind),
                    groups: re.captures_len() > 1,
                    re,
                }
            })
            .collect();
        Masker {
            detectors,
            streams: Vec::new(),
        }
    }

    /// [`Masker::new`] with the per-stream actions of `config`, whose selectors `selector`
    /// parses (the binary passes LogQL's); an error names the entry.
    pub fn with_streams(
        config: &PiiConfig,
        selector: &dyn Fn(&str) -> Result<Vec<Matcher>, String>,
    ) -> Result<Masker, String> {
        let mut masker = Masker::new(config);
        for (i, entry) in config.streams.iter().enumerate() {
            let matchers =
                selector(&entry.selector).map_err(|e| format!("streams[{i}].match: {e}"))?;
            let mut actions = config.actions.clone();
            actions.extend(entry.actions.iter().map(|(k, a)| (*k, *a)));
            let own = Masker::new(&PiiConfig {
                actions,
                streams: Vec::new(),
            });
            masker.streams.push((matchers, own));
        }
        Ok(masker)
    }

    /// The masker for records of `stream`.
    fn for_stream(&self, stream: &dozor_model::Labels) -> &Masker {
        self.streams
            .iter()
            .find(|(matchers, _)| {
                matchers
                    .iter()
                    .all(|m| m.matches(stream.get(&m.name).unwrap_or("")))
            })
            .map_or(self, |(_, m)| m)
    }

    /// Masks `text`; `salt` keys the hashes (the tenant's).
    pub fn mask<'a>(&self, text: &'a str, salt: &[u8]) -> Masked<'a> {
        // Most log lines can hold only one or two kinds, if any: one pass over the text
        // rules the others out before their regexes run (that was most of ingest's CPU).
        let hints = Hints::of(text);
        // Scan the percent-decoded text, if decoding changes it (the hints saw a `%`: most
        // texts have none, and looking for one apart was a call per field value); `map`
        // takes a decoded offset back to the original.
        let decoded = if hints.percent {
            percent_decoded(text)
        } else {
            None
        };
        let (scan, map, hints): (&str, Option<&[usize]>, Hints) = match &decoded {
            Some((d, m)) => (d.as_str(), Some(m.as_slice()), Hints::of(d)),
            None => (text, None, hints),
        };
        let mut found: Vec<Finding> = Vec::new();
        // One bit per kind, taken once: asking `admits` per detector was an indirect jump
        // each, mispredicted often (a third of this function's own time).
        let admitted = hints.admitted();
        for d in self
            .detectors
            .iter()
            .filter(|d| admitted & d.kind.bit() != 0)
        {
            if d.groups {
                for caps in d.re.captures_iter(scan) {
                    if let Some(m) = value_of(&caps) {
                        d.push_if_valid(m, &mut found);
                    }
                }
            } else if let (PiiKind::Ipv4, Some((from, to))) = (d.kind, hints.dotted_quads) {
                // Nearly every line has an address, in a short stretch of it: search just
                // there (every match lies within `from..to`, and `find_at` still sees the
                // text before `from` for `\b`), not the whole line again; a non-ASCII rest
                // of it would even make the regex engine fall back to a slower one.
                let mut at = from;
                while at < to {
                    let Some(m) = d.re.find_at(scan, at) else {
                        break;
                    };
                    d.push_if_valid(m, &mut found);
                    at = m.end();
                }
            } else {
                for m in d.re.find_iter(scan) {
                    d.push_if_valid(m, &mut found);
                }
            }
        }
        apply(text, scan, map, found, salt)
    }

    /// [`Masker::mask`] without the pre-filters: every detector's regex over every text,
    /// with captures, as masking first worked. The reference the fast path must equal
    /// byte for byte: the differential test and the `pii_speed` example compare them.
    fn mask_reference<'a>(&self, text: &'a str, salt: &[u8]) -> Masked<'a> {
        let decoded = percent_decoded(text);
        let (scan, map): (&str, Option<&[usize]>) = match &decoded {
            Some((d, m)) => (d.as_str(), Some(m.as_slice())),
            None => (text, None),
        };
        let mut found: Vec<Finding> = Vec::new();
        for d in &self.detectors {
            for caps in d.re.captures_iter(scan) {
                if let Some(m) = value_of(&caps) {
                    d.push_if_valid(m, &mut found);
                }
            }
        }
        apply(text, scan, map, found, salt)
    }
}

impl Detector {
    /// Records `m` if it is a real finding of this kind (non-empty, checksums pass).
    fn push_if_valid(&self, m: regex::Match<'_>, found: &mut Vec<Finding>) {
        if !m.is_empty() && self.kind.valid(m.as_str()) {
            found.push((m.start(), m.end(), self.kind, self.action));
        }
    }
}

/// The part of a match to replace: the first of the groups `v`, `j`, `a` that took part,
/// else the whole match.
fn value_of<'h>(caps: &regex::Captures<'h>) -> Option<regex::Match<'h>> {
    ["v", "j", "a"]
        .iter()
        .find_map(|g| caps.name(g))
        .or_else(|| caps.get(0))
}

/// Replaces the `found` spans of `scan` (the decoded `text`; `map` takes its offsets back
/// to `text`) by their tags, and counts them.
fn apply<'a>(
    text: &'a str,
    scan: &str,
    map: Option<&[usize]>,
    mut found: Vec<Finding>,
    salt: &[u8],
) -> Masked<'a> {
    // Earliest first, then longest, then by priority; skip what overlaps a taken span.
    let priority = |k: PiiKind| PiiKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
    found.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.cmp(&a.1))
            .then(priority(a.2).cmp(&priority(b.2)))
    });
    let original = |i: usize| map.map_or(i, |m| m[i]);
    let mut counts = BTreeMap::new();
    let mut drop = false;
    let mut out = String::new();
    let (mut pos, mut scanned) = (0, 0);
    for (start, end, kind, action) in found {
        if start < scanned {
            continue;
        }
        scanned = end;
        *counts.entry(kind).or_insert(0) += 1;
        match action {
            Action::Keep => continue,
            Action::Drop => drop = true,
            Action::Mask | Action::Hash => {}
        }
        if out.is_empty() {
            // Once, for the first replacement: tags are about as long as what they hide.
            out.reserve(text.len() + 32);
        }
        out.push_str(&text[pos..original(start)]);
        out.push('[');
        out.push_str(kind.tag());
        if action == Action::Hash {
            out.push(':');
            out.push_str(&salted_hash(salt, &scan[start..end]));
        }
        out.push(']');
        pos = original(end);
    }
    let text = if out.is_empty() {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[pos..]);
        Cow::Owned(out)
    };
    Masked { text, counts, drop }
}

/// What one pass over a text tells about which kinds it can hold. Each detector has a
/// necessary condition here ([`Hints::admits`]) — a finding of it implies the condition —
/// so a detector it rules out is skipped without running its regex, with the same result.
/// Typical log lines rule out all but IPv4, or all.
///
/// The conditions follow the regexes exactly, Unicode included: `\d` and `\s` are Unicode
/// classes there (`char::is_numeric` and `char::is_whitespace` cover them, checked by a
/// test over every `char`), and `(?i)` folds `ſ` to `s` and `K` (Kelvin) to `k` (see
/// [`ODD_FOLDS`]).
#[derive(Debug, Default, PartialEq, Eq)]
struct Hints {
    /// ASCII digits: what the checksums and digit counts of [`PiiKind::valid`] look at.
    ascii_digits: u32,
    /// `\d` characters.
    digits: u32,
    /// The longest run of `\d` with nothing between (INN).
    run: u32,
    /// The longest run of `\d` with at most one ` ` or `-` between two (card, SNILS).
    grouped_run: u32,
    /// The longest run of `\d` with at most two of `\s`, `-`, `(`, `)` between two (phone).
    phone_run: u32,
    /// `@` (e-mail).
    at: bool,
    /// `+` or `8`, where phone numbers start.
    plus_or_eight: bool,
    /// `-` (SNILS).
    dash: bool,
    /// `%`: the text may hold percent escapes, and is to be scanned decoded.
    percent: bool,
    /// `=` or `:` (every form of secret).
    assign: bool,
    /// Where runs of `\d` joined by single dots with at least three dots (what holds an
    /// IPv4 address) are: from the start of the first to the end of the last.
    dotted_quads: Option<(usize, usize)>,
    /// Two ASCII capitals and two ASCII digits (IBAN).
    iban_start: bool,
    /// `::`, or a chain of seven `:` each at most four hex digits after the last: what an
    /// IPv6 address that parses has (it is compressed, or has all eight groups).
    ipv6: bool,
    /// How many `eyJ` (a JWT has two).
    jwt: u32,
    /// A secret's keyword at a word start (`pass`, `pwd`, `secret`, `token`, `api key`,
    /// `access`, `authorization`, `пароль`), any case.
    secret_word: bool,
    /// `passport` or `паспорт`, any case.
    passport_word: bool,
    /// `inn` or `инн` at a word start, any case.
    inn_word: bool,
}

/// The characters outside ASCII and basic Cyrillic that `(?i)` folds onto a letter of the
/// keywords: `ſ` (s), `K` (Kelvin sign, k), and Cyrillic Extended-C's narrow `о`, wide `с`
/// and tall and three-legged `т` (a test checks this list against the regex engine). Rare
/// in logs: a text with one is taken to hold every keyword.
const ODD_FOLDS: [char; 6] = [
    '\u{17F}', '\u{212A}', '\u{1C82}', '\u{1C83}', '\u{1C84}', '\u{1C85}',
];

/// Classes of a byte for [`Hints::of_ascii`] ([`HINT_CLASS`]). The low bits say what a
/// byte starts: a digit run (unless a digit is before it), a keyword (unless a letter or
/// digit is before it), or work wherever it is; the next ones what it blocks for the byte
/// after it; the high ones are the hints a byte sets by just being there.
mod class {
    /// An ASCII digit: starts a run unless it continues one.
    pub const DIGIT: u16 = 1;
    /// `s`, `t`, `a`, `i` in either case: may start a keyword, at a word start.
    pub const KEYWORD: u16 = 1 << 1;
    /// `:`, `J`, `p`, `P`: looked at wherever they are.
    pub const ALWAYS: u16 = 1 << 2;
    /// How far the "blocks" bits are above the bits they block.
    pub const BLOCK_SHIFT: u32 = 4;
    /// A digit: the next digit continues its run.
    pub const BLOCKS_DIGIT: u16 = DIGIT << BLOCK_SHIFT;
    /// A letter or digit: no keyword starts right after it (`_` does not block: secrets
    /// also match after one, as in `db_password=`).
    pub const BLOCKS_KEYWORD: u16 = KEYWORD << BLOCK_SHIFT;
    /// `@`.
    pub const AT: u16 = 1 << 8;
    /// `+` or `8`.
    pub const PLUS_OR_EIGHT: u16 = 1 << 9;
    /// `-`.
    pub const DASH: u16 = 1 << 10;
    /// `=` or `:`.
    pub const ASSIGN: u16 = 1 << 11;
    /// `%`.
    pub const PERCENT: u16 = 1 << 12;
}

/// [`class`] of every byte (non-ASCII bytes have none: [`Hints::of_ascii`] sees ASCII only).
static HINT_CLASS: [u16; 256] = {
    use class::*;
    let mut t = [0u16; 256];
    let mut c = 0usize;
    while c < 128 {
        let b = c as u8;
        if b.is_ascii_digit() {
            t[c] = DIGIT | BLOCKS_DIGIT | BLOCKS_KEYWORD;
        } else if b.is_ascii_alphabetic() {
            t[c] = BLOCKS_KEYWORD;
        }
        c += 1;
    }
    let keyword = b"sStTaAiI";
    let mut i = 0;
    while i < keyword.len() {
        t[keyword[i] as usize] |= KEYWORD;
        i += 1;
    }
    t[b':' as usize] = ALWAYS | ASSIGN;
    t[b'J' as usize] |= ALWAYS;
    t[b'p' as usize] |= ALWAYS;
    t[b'P' as usize] |= ALWAYS;
    t[b'@' as usize] = AT;
    t[b'+' as usize] = PLUS_OR_EIGHT;
    t[b'8' as usize] |= PLUS_OR_EIGHT;
    t[b'-' as usize] = DASH;
    t[b'=' as usize] = ASSIGN;
    t[b'%' as usize] = PERCENT;
    t
};

/// The first byte at or after `i` where something may start (`b.len()` if none), and the
/// class of the byte before it; or-s the classes of the bytes passed into `seen`, and leaves
/// the class of the byte returned in `before`. Apart from [`Hints::of_ascii`]'s loop so
/// its few variables stay in registers: it is most of the time spent on a text.
#[inline(never)]
fn next_start(b: &[u8], mut i: usize, before: &mut u16, seen: &mut u16) -> (usize, u16) {
    use class::*;
    let (mut prev, mut acc) = (*before, *seen);
    while let Some(&c) = b.get(i) {
        let t = HINT_CLASS[usize::from(c)];
        acc |= t;
        // A digit after a digit, or a keyword letter after a letter or digit, starts
        // nothing.
        if t & (ALWAYS | (!(prev >> BLOCK_SHIFT) & (DIGIT | KEYWORD))) != 0 {
            (*before, *seen) = (t, acc);
            return (i, prev);
        }
        prev = t;
        i += 1;
    }
    (*before, *seen) = (prev, acc);
    (i, prev)
}

impl Hints {
    /// The hints of `text`, in one pass.
    fn of(text: &str) -> Hints {
        // `is_ascii` is a fast word-at-a-time check, and most log lines are ASCII.
        if text.is_ascii() {
            Hints::of_ascii(text)
        } else {
            Hints::of_chars(text)
        }
    }

    /// [`Hints::of`] for ASCII text, in one pass that works only where something can start:
    /// at the first digit of a run (the run is then taken whole, and joined to the run
    /// before it when only the separators a kind allows lie between), at a keyword letter
    /// that starts a word, and at `p`, `J` and `:`. Every other byte costs a table load and
    /// an `or`: the hints that need no context (`@`, `%`…) are bits of the table, or-ed
    /// together. Digits and keyword letters are half the bytes of a log line, and a branch
    /// into the work for each of them was mispredicted often; now a run of digits is one
    /// step, and a letter inside a word none. The same hints as [`Hints::of_chars`]: tests
    /// compare them.
    fn of_ascii(text: &str) -> Hints {
        use class::*;
        let b = text.as_bytes();
        let byte = |i: usize, back: usize| i.checked_sub(back).map_or(0, |j| b[j]);
        let phone_gap =
            |c: u8| c.is_ascii_whitespace() || matches!(c, b'\x0b' | b'-' | b'(' | b')');
        let mut h = Hints::default();
        // The last run of digits: where it ended, and the counts it left open.
        let mut run_end: Option<usize> = None;
        let (mut grouped, mut phone, mut dots, mut colons) = (0u32, 0u32, 0u32, 0u32);
        let mut dotted_from = 0;
        // The classes of every byte or-ed, and of the byte before.
        let (mut seen, mut before) = (0u16, 0u16);
        let mut i = 0;
        loop {
            let prev;
            (i, prev) = next_start(b, i, &mut before, &mut seen);
            let Some(&c) = b.get(i) else {
                break;
            };
            match c {
                b'0'..=b'9' => {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        seen |= HINT_CLASS[usize::from(b[i])];
                        i += 1;
                    }
                    let len = (i - start) as u32;
                    // Bytes between this run and the last one (none before: no bridge).
                    let gap = run_end.map_or(0, |e| start - e);
                    let p1 = byte(start, 1);
                    grouped = if gap == 1 && matches!(p1, b' ' | b'-') {
                        grouped + len
                    } else {
                        len
                    };
                    let bridged = (gap == 1 && phone_gap(p1))
                        || (gap == 2 && phone_gap(p1) && phone_gap(byte(start, 2)));
                    phone = if bridged { phone + len } else { len };
                    if gap == 1 && p1 == b'.' {
                        dots += 1;
                    } else {
                        (dots, dotted_from) = (0, start);
                    }
                    if dots >= 3 {
                        h.dotted_quads = Some((h.dotted_quads.map_or(dotted_from, |q| q.0), i));
                    }
                    // Two capitals, then (at least) two digits.
                    h.iban_start |=
                        len >= 2 && p1.is_ascii_uppercase() && byte(start, 2).is_ascii_uppercase();
                    h.ascii_digits += len;
                    h.run = h.run.max(len);
                    h.grouped_run = h.grouped_run.max(grouped);
                    h.phone_run = h.phone_run.max(phone);
                    run_end = Some(i);
                    before = HINT_CLASS[usize::from(b'0')];
                    continue;
                }
                b':' => {
                    // The previous colon, if only up to four hex digits lie between.
                    let hex = (1..=5)
                        .take_while(|k| byte(i, *k).is_ascii_hexdigit())
                        .count();
                    colons = if hex <= 4 && byte(i, hex + 1) == b':' {
                        colons + 1
                    } else {
                        1
                    };
                    h.ipv6 |= byte(i, 1) == b':' || colons >= 7;
                }
                b'J' => h.jwt += u32::from(byte(i, 2) == b'e' && byte(i, 1) == b'y'),
                b'p' | b'P' => {
                    // `passport` needs no word start, the other keywords do.
                    let word_start = prev & BLOCKS_KEYWORD == 0;
                    if word_start || matches!(b.get(i + 1), Some(b'a' | b'A' | b'w' | b'W')) {
                        h.words(text, i, char::from(c), word_start);
                    }
                }
                // A keyword letter at a word start.
                _ => h.words(text, i, char::from(c), true),
            }
            i += 1;
        }
        h.at = seen & AT != 0;
        h.plus_or_eight = seen & PLUS_OR_EIGHT != 0;
        h.dash = seen & DASH != 0;
        h.assign = seen & ASSIGN != 0;
        h.percent = seen & PERCENT != 0;
        // Every `\d` of ASCII text is an ASCII digit.
        h.digits = h.ascii_digits;
        h
    }

    /// [`Hints::of`] for any text, a character at a time.
    fn of_chars(text: &str) -> Hints {
        let mut h = Hints::default();
        // Open runs: digits so far, and separators since the last digit (`None`: no run).
        let mut run = 0u32;
        let (mut grouped, mut grouped_gap) = (0u32, None::<u8>);
        let (mut phone, mut phone_gap) = (0u32, None::<u8>);
        // A dotted run of digits: dots so far, and whether the last character was a
        // digit or a dot (`None`: no run).
        let (mut dots, mut last_dotted, mut dotted_from) = (0u32, None::<bool>, 0);
        let (mut capitals, mut capitals_digit) = (0u32, false);
        // Colons joined by up to four hex digits: how many, and hex digits since the last
        // (`None`: no such chain).
        let (mut colons, mut hex_since) = (0u32, None::<u32>);
        let mut last = '\0';
        let mut before_last = '\0';
        for (i, c) in text.char_indices() {
            let ascii_digit = c.is_ascii_digit();
            let digit = ascii_digit || (!c.is_ascii() && c.is_numeric());
            if digit {
                h.digits += 1;
                h.ascii_digits += u32::from(ascii_digit);
                run += 1;
                grouped = if grouped_gap.is_some() {
                    grouped + 1
                } else {
                    1
                };
                phone = if phone_gap.is_some() { phone + 1 } else { 1 };
                (grouped_gap, phone_gap) = (Some(0), Some(0));
                h.run = h.run.max(run);
                h.grouped_run = h.grouped_run.max(grouped);
                h.phone_run = h.phone_run.max(phone);
                if last_dotted.is_none() {
                    (dots, dotted_from) = (0, i);
                }
                if dots >= 3 {
                    let end = i + c.len_utf8();
                    h.dotted_quads = Some((h.dotted_quads.map_or(dotted_from, |q| q.0), end));
                }
                last_dotted = Some(true);
            } else {
                run = 0;
                grouped_gap = match grouped_gap {
                    Some(0) if c == ' ' || c == '-' => Some(1),
                    _ => None,
                };
                phone_gap = match phone_gap {
                    Some(g) if g < 2 && (c.is_whitespace() || matches!(c, '-' | '(' | ')')) => {
                        Some(g + 1)
                    }
                    _ => None,
                };
                last_dotted = match last_dotted {
                    Some(true) if c == '.' => {
                        dots += 1;
                        Some(false)
                    }
                    _ => None,
                };
            }
            if c.is_ascii_uppercase() {
                capitals += 1;
                capitals_digit = false;
            } else if ascii_digit {
                h.iban_start |= capitals_digit;
                capitals_digit = capitals >= 2;
                capitals = 0;
            } else {
                (capitals, capitals_digit) = (0, false);
            }
            if c == ':' {
                colons = if hex_since.is_some_and(|n| n <= 4) {
                    colons + 1
                } else {
                    1
                };
                hex_since = Some(0);
                h.ipv6 |= last == ':' || colons >= 7;
            } else if c.is_ascii_hexdigit() {
                hex_since = hex_since.map(|n| n + 1);
            } else {
                hex_since = None;
            }
            match c {
                '@' => h.at = true,
                '+' | '8' => h.plus_or_eight = true,
                '-' => h.dash = true,
                '=' | ':' => h.assign = true,
                '%' => h.percent = true,
                'J' if before_last == 'e' && last == 'y' => h.jwt += 1,
                _ => {}
            }
            // Whether a `\b` can be before `c`: an ASCII character says exactly; any other
            // is taken to allow one.
            h.words(
                text,
                i,
                c,
                !u8::try_from(last).is_ok_and(is_word_byte) || last == '_',
            );
            (before_last, last) = (last, c);
        }
        h
    }

    /// Notes a keyword starting at `text[i..]`, whose first character is `c`;
    /// `word_start`: whether a word may start there, or an `_` is before it (all but
    /// `passport` need one: `\b`; secrets also match after `_`, as in `db_password=`).
    fn words(&mut self, text: &str, i: usize, c: char, word_start: bool) {
        let b = text.as_bytes();
        let at = |j: usize, word: &str| {
            b.get(j..j + word.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(word.as_bytes()))
        };
        let cyrillic = |word: &str| text.get(i..).is_some_and(|s| starts_folded(s, word));
        match c {
            'p' | 'P' => {
                self.passport_word |= at(i, "passport");
                self.secret_word |= word_start && (at(i, "pass") || at(i, "pwd"));
            }
            's' | 'S' if word_start => self.secret_word |= at(i, "secret"),
            't' | 'T' if word_start => self.secret_word |= at(i, "token"),
            'a' | 'A' if word_start => {
                self.secret_word |= at(i, "authorization")
                    || at(i, "access")
                    || (at(i, "api")
                        && (at(i + 3, "key")
                            || (matches!(b.get(i + 3), Some(b'_' | b'-')) && at(i + 4, "key"))));
            }
            'i' | 'I' if word_start => self.inn_word |= at(i, "inn"),
            'п' | 'П' => {
                self.passport_word |= cyrillic("паспорт");
                self.secret_word |= word_start && cyrillic("пароль");
            }
            'и' | 'И' if word_start => self.inn_word |= cyrillic("инн"),
            c if ODD_FOLDS.contains(&c) => {
                (self.secret_word, self.passport_word, self.inn_word) = (true, true, true);
            }
            _ => {}
        }
    }

    /// [`Hints::admits`] of every kind, as [`PiiKind::bit`]s (the loop unrolls over the
    /// constant kinds: no jump per kind).
    fn admitted(&self) -> u16 {
        PiiKind::ALL.iter().fold(0, |bits, k| {
            bits | if self.admits(*k) { k.bit() } else { 0 }
        })
    }

    /// Whether a detector of `kind` can find anything in the text (false: it cannot).
    fn admits(&self, kind: PiiKind) -> bool {
        match kind {
            PiiKind::Jwt => self.jwt >= 2,
            PiiKind::Secret => self.assign && self.secret_word,
            PiiKind::Email => self.at,
            PiiKind::Iban => self.iban_start,
            PiiKind::Card => self.grouped_run >= 13 && self.ascii_digits >= 13,
            PiiKind::Snils => self.dash && self.grouped_run >= 11 && self.ascii_digits >= 11,
            // No checksum: `\d` of any script counts.
            PiiKind::Passport => self.passport_word && self.digits >= 10,
            PiiKind::Inn => self.inn_word && self.run >= 10 && self.ascii_digits >= 10,
            PiiKind::Phone => self.plus_or_eight && self.phone_run >= 10 && self.ascii_digits >= 10,
            PiiKind::Ipv6 => self.ipv6,
            PiiKind::Ipv4 => self.dotted_quads.is_some(),
        }
    }
}

/// Whether an ASCII byte is a word character of `\b` (`[0-9A-Za-z_]`; `0`: none).
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `s` starts with `word` (lowercase ASCII or Cyrillic), ignoring the case of ASCII
/// and basic Cyrillic letters.
fn starts_folded(s: &str, word: &str) -> bool {
    let mut chars = s.chars().map(fold);
    word.chars().all(|w| chars.next() == Some(w))
}

/// `c` in lower case if it is an ASCII or basic Cyrillic (А–Я) capital, else `c`.
fn fold(c: char) -> char {
    match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        'А'..='Я' => char::from_u32(u32::from(c) + 0x20).unwrap_or(c),
        _ => c,
    }
}

impl Masker {
    /// Masks a field's value: wholly, as a secret, when the field's name says it holds
    /// one (`password`, `token`, `api_key`, `*_secret`, `authorization`, `cookie`…: the
    /// value alone carries no `key=` for [`Masker::mask`] to see); otherwise as any text.
    pub fn mask_field<'a>(&self, name: &str, value: &'a str, salt: &[u8]) -> Masked<'a> {
        self.mask_field_with(name, value, salt, Masker::mask)
    }

    /// [`Masker::mask_field`] with `mask` for the values that are not wholly secret.
    fn mask_field_with<'a>(
        &self,
        name: &str,
        value: &'a str,
        salt: &[u8],
        mask: MaskFn,
    ) -> Masked<'a> {
        if value.is_empty() || !is_secret_name(name) {
            return mask(self, value, salt);
        }
        let action = self
            .detectors
            .iter()
            .find(|d| d.kind == PiiKind::Secret)
            .map_or(Action::Mask, |d| d.action);
        let counts = BTreeMap::from([(PiiKind::Secret, 1)]);
        let text = match action {
            Action::Keep => Cow::Borrowed(value),
            Action::Hash => Cow::Owned(format!("[SECRET:{}]", salted_hash(salt, value))),
            Action::Mask | Action::Drop => Cow::Owned("[SECRET]".to_owned()),
        };
        Masked {
            text,
            counts,
            drop: action == Action::Drop,
        }
    }
}

/// [`Masker::mask`] or its reference.
type MaskFn = for<'a> fn(&Masker, &'a str, &[u8]) -> Masked<'a>;

impl Masker {
    /// Masks a record's message and fields in place; returns whether a `drop` action
    /// refuses it, and adds what was found to `counts`.
    pub fn mask_record(
        &self,
        r: &mut dozor_model::LogRecord,
        salt: &[u8],
        counts: &mut BTreeMap<PiiKind, u64>,
    ) -> bool {
        self.mask_record_with(r, salt, counts, Masker::mask)
    }

    /// [`Masker::mask_record`] the slow way, with every regex on every text and no
    /// pre-filter: for the `pii_speed` example to measure and check the fast path against.
    /// Not for use.
    #[doc(hidden)]
    pub fn mask_record_reference(
        &self,
        r: &mut dozor_model::LogRecord,
        salt: &[u8],
        counts: &mut BTreeMap<PiiKind, u64>,
    ) -> bool {
        self.mask_record_with(r, salt, counts, Masker::mask_reference)
    }

    fn mask_record_with(
        &self,
        r: &mut dozor_model::LogRecord,
        salt: &[u8],
        counts: &mut BTreeMap<PiiKind, u64>,
        mask: MaskFn,
    ) -> bool {
        let this = self.for_stream(&r.stream);
        let mut drop = false;
        let mut tally = |m: &Masked<'_>| {
            drop |= m.drop;
            for (kind, n) in &m.counts {
                *counts.entry(*kind).or_default() += u64::from(*n);
            }
        };
        let m = mask(this, &r.message, salt);
        tally(&m);
        if let Cow::Owned(text) = m.text {
            r.message = text;
        }
        for (name, value) in &mut r.fields {
            let m = this.mask_field_with(name, value, salt, mask);
            tally(&m);
            if let Cow::Owned(text) = m.text {
                *value = text;
            }
        }
        drop
    }
}

/// The key of a tenant's PII hashes: the installation's secret and the tenant, so equal
/// values hash alike within a tenant and differently across tenants.
pub fn tenant_salt(secret: &[u8], tenant: &dozor_model::TenantId) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"dozor pii salt\0");
    h.update((secret.len() as u64).to_le_bytes());
    h.update(secret);
    h.update(tenant.as_str().as_bytes());
    h.finalize().to_vec()
}

/// Field names whose values are secrets (compared with the last dotted segment).
const SECRET_NAMES: [&str; 16] = [
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "set-cookie",
    "session_id",
    "sessionid",
    "private_key",
    "пароль",
];
/// Endings of field names whose values are secrets.
const SECRET_SUFFIXES: [&str; 8] = [
    "_token",
    "_secret",
    "_password",
    "-token",
    "-secret",
    "api-key",
    "api_key",
    "apikey",
];

/// Whether a field of this name holds a secret (its last dotted segment, any case).
fn is_secret_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.is_ascii() {
        // Every record has fields and most names are ASCII: compare without lowercasing
        // into a new string (the same answer: ASCII lowercases to ASCII).
        let ends_with = |s: &str| {
            last.len() >= s.len()
                && last.as_bytes()[last.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        };
        return SECRET_NAMES.iter().any(|n| last.eq_ignore_ascii_case(n))
            || SECRET_SUFFIXES.iter().any(|s| ends_with(s));
    }
    let last = last.to_lowercase();
    SECRET_NAMES.contains(&last.as_str()) || SECRET_SUFFIXES.iter().any(|s| last.ends_with(s))
}

/// `text` with `%XX` escapes decoded, and for each decoded byte (and the end) its offset in
/// `text`; `None` when there is no escape or the result is not UTF-8.
fn percent_decoded(text: &str) -> Option<(String, Vec<usize>)> {
    let b = text.as_bytes();
    // Most texts have no escape: find that out before allocating two buffers. (The first
    // `%XX` anywhere is always decoded below, so this is the same test as `changed`.)
    let escape = |w: &[u8]| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit();
    let first = text.find('%')?;
    if !b[first..].windows(3).any(escape) {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut map = Vec::with_capacity(b.len() + 1);
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                map.push(i);
                i += 3;
                changed = true;
            }
            (c, _, _) => {
                out.push(c);
                map.push(i);
                i += 1;
            }
        }
    }
    map.push(b.len());
    if !changed {
        return None;
    }
    // Spans are cut out of `text` at mapped offsets: every decoded character must start on
    // a character boundary of `text` (true when the decoding is valid UTF-8; checked so a
    // cut can never fall inside a character).
    let ok = out
        .iter()
        .zip(&map)
        .all(|(byte, &at)| byte & 0xc0 == 0x80 || text.is_char_boundary(at));
    if !ok {
        return None;
    }
    String::from_utf8(out).ok().map(|s| (s, map))
}

/// 16 hex digits of SHA-256(len(salt) ‖ salt ‖ value): stable per tenant, not reversible
/// without the salt. (A pseudonym, not a MAC: nothing verifies it, so SHA-256's length
/// extension does not matter here.)
fn salted_hash(salt: &[u8], value: &str) -> String {
    let mut h = Sha256::new();
    h.update((salt.len() as u64).to_le_bytes());
    h.update(salt);
    h.update(value.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    h.finalize()[..8]
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Whether the number starts like a payment card (ISO/IEC 7812 issuer prefixes in use: Mir
/// 2200–2204, Mastercard 2221–2720 and 51–55, Amex/JCB/Diners 30–39, Visa 4, Maestro and
/// others 5x, Discover/UnionPay/Maestro 6x). Ids, epoch milliseconds and fiscal drive
/// numbers (which start with 7, 8, 9 or 1) pass the Luhn check one time in ten; this keeps
/// them.
fn card_prefix(d: &[u8]) -> bool {
    match d {
        [2, a, b, c, ..] => {
            let p = 2000 + u32::from(*a) * 100 + u32::from(*b) * 10 + u32::from(*c);
            (2200..=2204).contains(&p) || (2221..=2720).contains(&p)
        }
        [3..=6, ..] => true,
        _ => false,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters to 10–35, mod 97 = 1.
fn iban_ok(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let mut rem = 0u32;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// SNILS: the weighted sum of the first nine digits (weights 9..1), mod 101 (100 → 0),
/// equals the last two.
fn snils_ok(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .zip((1..=9).rev())
        .map(|(&x, w)| u32::from(x) * w)
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => (s % 101) % 100,
    };
    check == u32::from(d[9]) * 10 + u32::from(d[10])
}

/// INN: one check digit for 10 digits, two for 12, each a weighted sum mod 11 mod 10.
fn inn_ok(d: &[u8]) -> bool {
    let check = |weights: &[u32], digits: &[u8]| -> u8 {
        let s: u32 = weights
            .iter()
            .zip(digits)
            .map(|(w, &x)| w * u32::from(x))
            .sum();
        ((s % 11) % 10) as u8
    };
    match d.len() {
        10 => check(&[2, 4, 10, 3, 5, 9, 4, 6, 8], d) == d[9],
        12 => {
            check(&[7, 2, 4, 10, 3, 5, 9, 4, 6, 8], d) == d[10]
                && check(&[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8], d) == d[11]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_takes_its_own_actions_for_the_kinds_it_names() {
        let config = PiiConfig {
            actions: BTreeMap::from([(PiiKind::Email, Action::Hash)]),
            streams: vec![StreamActions {
                selector: "{job=\"kkt\"}".into(),
                actions: BTreeMap::from([(PiiKind::Card, Action::Keep)]),
            }],
        };
        let selector = |s: &str| -> Result<Vec<Matcher>, String> {
            match s {
                "{job=\"kkt\"}" => Ok(vec![Matcher::equal("job", "kkt")]),
                other => Err(format!("cannot parse {other}")),
            }
        };
        let m = Masker::with_streams(&config, &selector).unwrap();
        let record = |job: &str| dozor_model::LogRecord {
            time_ns: 0,
            stream: dozor_model::Labels::from_pairs([("job", job)]).unwrap(),
            message: "reg 4111111111111111 by ivan@mail.ru".into(),
            fields: vec![("fn".into(), "4111111111111111".into())],
        };
        let mut counts = BTreeMap::new();
        let mut kkt = record("kkt");
        assert!(!m.mask_record(&mut kkt, b"salt", &mut counts));
        assert!(
            kkt.message.starts_with("reg 4111111111111111 by [EMAIL:"),
            "{}",
            kkt.message
        );
        assert_eq!(kkt.fields[0].1, "4111111111111111");
        let mut shop = record("shop");
        m.mask_record(&mut shop, b"salt", &mut counts);
        assert!(
            shop.message.starts_with("reg [CARD] by [EMAIL:"),
            "{}",
            shop.message
        );
        assert_eq!(shop.fields[0].1, "[CARD]");
        // A selector that does not parse names its entry.
        let bad = PiiConfig {
            streams: vec![StreamActions {
                selector: "job=kkt".into(),
                actions: BTreeMap::new(),
            }],
            ..PiiConfig::default()
        };
        let e = Masker::with_streams(&bad, &selector).unwrap_err();
        assert!(e.starts_with("streams[0].match: "), "{e}");
    }

    fn masked(text: &str) -> String {
        Masker::new(&PiiConfig::default())
            .mask(text, b"t")
            .text
            .into_owned()
    }

    #[test]
    fn checksums_accept_real_numbers_and_refuse_near_misses() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&d("4111111111111111")) && !luhn(&d("4111111111111112")));
        assert!(iban_ok("DE89 3704 0044 0532 0130 00") && !iban_ok("DE88 3704 0044 0532 0130 00"));
        assert!(snils_ok(&d("11223344595")) && !snils_ok(&d("11223344596")));
        assert!(inn_ok(&d("7707083893")) && !inn_ok(&d("7707083894")));
        assert!(inn_ok(&d("500100732259")) && !inn_ok(&d("500100732250")));
    }

    #[test]
    fn each_kind_is_found_in_context() {
        let cases = [
            ("mail to a.b-c+d@example.co.uk now", "mail to [EMAIL] now"),
            ("?email=ivan%40mail.ru&x=1", "?email=[EMAIL]&x=1"),
            (
                "звоните +7 (912) 345-67-89 или 8 912 345 67 89",
                "звоните [PHONE] или [PHONE]",
            ),
            ("uk +44 20 7946 0958.", "uk [PHONE]."),
            ("card=5500-0000-0000-0004 ok", "card=[CARD] ok"),
            ("iban DE89 3704 0044 0532 0130 00", "iban [IBAN]"),
            (
                "паспорт серия 45 08 номер 123456",
                "паспорт серия [PASSPORT]",
            ),
            ("паспорт: 4508 123456", "паспорт: [PASSPORT]"),
            ("ИНН 7707083893", "ИНН [INN]"),
            ("СНИЛС 112-233-445 95", "СНИЛС [SNILS]"),
            ("from 192.168.10.1:443", "from [IPV4]:443"),
            ("peer 2001:db8::8a2e:370:7334 up", "peer [IPV6] up"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x",
                "jwt [JWT]",
            ),
            ("password=hunter2&user=bob", "password=[SECRET]&user=bob"),
            (
                "db_password=hunter2 refresh_token=abc",
                "db_password=[SECRET] refresh_token=[SECRET]",
            ),
            ("client_secret: s3cr3t", "client_secret: [SECRET]"),
            (
                r#"{"pass": "p1", "authorization": "Bearer abc.def"}"#,
                r#"{"pass": "[SECRET]", "authorization": "[SECRET]"}"#,
            ),
            (
                r#"{"user":{"password": "p@ss w0rd"}}"#,
                r#"{"user":{"password": "[SECRET]"}}"#,
            ),
            (
                "Authorization: Bearer abc.def-123",
                "Authorization: Bearer [SECRET]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(masked(input), want, "{input}");
        }
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for text in [
            "order 123456789012 shipped",
            "ts=1796083200 took 15ms",
            "request 550e8400-e29b-41d4-a716-446655440000",
            "version 1.2.3 build 20261201",
            "at 10:00:00 the queue had 12:34",
            "card ending 4111 1111 1111 1112",
            "sku DE12345",
        ] {
            assert_eq!(masked(text), text, "{text}");
        }
    }

    #[test]
    fn secret_names_are_told_as_by_lowercasing() {
        // `is_secret_name` as it was, lowercasing every name into a new string.
        // The same lists: what is compared is the matching, ASCII fast path included.
        let reference = |name: &str| {
            let last = name.rsplit('.').next().unwrap_or(name).to_lowercase();
            let (names, suffixes) = (SECRET_NAMES, SECRET_SUFFIXES);
            names.contains(&last.as_str()) || suffixes.iter().any(|s| last.ends_with(s))
        };
        for name in [
            "password",
            "PASSWORD",
            "user.Password",
            "db_password",
            "x-api-key",
            "X-Api-Key",
            "refresh_token",
            "Cookie",
            "set-cookie",
            "session_id",
            "a.b.SessionId",
            "token.",
            "passport_scan",
            "tokens",
            "comment",
            "",
            ".",
            "Пароль",
            "user.ПАРОЛЬ",
            "to\u{212A}en",
            "my_secret",
            "MY-SECRET",
            "secret.value",
            "apikey",
            "private_key",
            "pass",
            "pwd2",
        ] {
            assert_eq!(is_secret_name(name), reference(name), "{name:?}");
        }
    }

    #[test]
    fn fields_named_for_secrets_are_masked_whole() {
        let m = Masker::new(&PiiConfig::default());
        for name in [
            "password",
            "user.Password",
            "db_password",
            "X-Api-Key".to_lowercase().as_str(),
            "refresh_token",
            "Cookie",
        ] {
            let out = m.mask_field(name, "hunter2 and more", b"t");
            assert_eq!(out.text, "[SECRET]", "{name}");
            assert_eq!(out.counts.get(&PiiKind::Secret), Some(&1));
        }
        assert_eq!(m.mask_field("passport_scan", "ok", b"t").text, "ok");
        assert_eq!(
            m.mask_field("comment", "mail a@b.io", b"t").text,
            "mail [EMAIL]"
        );
        assert_eq!(m.mask_field("token", "", b"t").text, "");
    }

    #[test]
    fn actions_hash_keep_and_drop() {
        let mut config = PiiConfig::default();
        config.actions.insert(PiiKind::Email, Action::Hash);
        config.actions.insert(PiiKind::Ipv4, Action::Keep);
        config.actions.insert(PiiKind::Card, Action::Drop);
        let m = Masker::new(&config);
        let a = m.mask("a@b.io from 10.0.0.1", b"tenant-1");
        let again = m.mask("x a@b.io", b"tenant-1");
        let other = m.mask("a@b.io", b"tenant-2");
        assert!(
            a.text.starts_with("[EMAIL:") && a.text.ends_with("] from 10.0.0.1"),
            "{}",
            a.text
        );
        assert_eq!(
            a.text.split(' ').next(),
            again.text.split(' ').nth(1),
            "stable per tenant"
        );
        assert_ne!(
            a.text.split(' ').next(),
            Some(&*other.text),
            "salted per tenant"
        );
        assert_eq!(
            a.counts.get(&PiiKind::Ipv4),
            Some(&1),
            "kept findings are counted"
        );
        assert!(!a.drop);
        assert!(m.mask("pay 4111111111111111", b"t").drop);
        assert!(matches!(
            m.mask("nothing here", b"t").text,
            Cow::Borrowed(_)
        ));
    }

    /// A seeded xorshift64*: the generated lines are the same on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Pieces of log lines: findings of every kind in their variants, near misses, and
    /// what pre-filters could get wrong (Unicode digits and spaces, `(?i)` folds, escapes).
    const PIECES: &[&str] = &[
        "ivan.petrov@mail.ru",
        "UPPER.CASE@EXAMPLE.COM",
        "анна@почта.рф",
        "a@b",
        "@home",
        "+7 (912) 345-67-89",
        "8 912 345 67 89",
        "89123456789",
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "+7\u{a0}912\u{a0}345\u{a0}67\u{a0}89",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111112",
        "378282246310005",
        "2200 1234 5678 9010",
        "DE89 3704 0044 0532 0130 00",
        "GB29NWBK60161331926819",
        "DE88 3704 0044 0532 0130 00",
        "паспорт серия 45 08 номер 123456",
        "ПАСПОРТ 4508 123456",
        "passport: 4508123456",
        "Passport no. 45 08 123456",
        "паспорт ٤٥٠٨ ١٢٣٤٥٦",
        "па\u{1C83}порт 4508 123456",
        "ИНН 7707083893",
        "inn=500100732259",
        "Инн: 7707083894",
        "112-233-445 95",
        "112-233-445-95",
        "192.168.1.10",
        "8.8.8.8",
        "256.1.1.1",
        "1.2.3",
        "١٩٢.١٦٨.١.١",
        "１０.０.０.１",
        "2001:db8::8a2e:370:7334",
        "fe80::1ff:fe23:4567:890a",
        "1:2:3:4:5:6:7:8",
        "std::io::Error",
        "10:00:00",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x",
        "eyJhbGciOiJIUzI1NiJ9",
        "password=hunter2",
        "PASSWD: s3cr3t",
        "pwd=x",
        "token: abc123def456",
        "access-token=tok",
        "access_token=tok",
        "ACCESS_TOKEN: t",
        "mytoken=1",
        "x_password=1",
        "mypassport 4508 123456",
        "_inn 7707083893",
        "api_key=k1",
        "APIKEY:k2",
        "api-key = k3",
        "\"secret\": \"p@ss w0rd\"",
        "\"token\":\"\"",
        "Authorization: Bearer abc.def-123",
        "authorization=Basic dXNlcjpwYXNz",
        "пароль=qwerty",
        "ПАРОЛЬ: 12345",
        "paſſword=abc",
        "to\u{212A}en=abc",
        "ivan%40mail.ru",
        "%2B7%20912%20345%2067%2089",
        "%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C%3Dsecret",
        "%zz%4",
        "%E2%82",
        "order 123456789012 shipped",
        "ts=1796083200",
        "550e8400-e29b-41d4-a716-446655440000",
        "version 1.2.3",
        "GET /api/v1/items?id=42 HTTP/1.1",
        "Клиент оформил заказ №55",
        "sku DE12345",
        "latency p99=320ms",
        "9f86d081884c7d659a2feaa0c55ad015",
        "passing",
        "beginning",
        "tokens",
        "",
    ];

    /// A random run of digits with separators: cards, phones, INNs and near misses of them.
    fn digits(rng: &mut Rng) -> String {
        let mut s = String::new();
        for _ in 0..rng.below(20) + 1 {
            s.push(char::from(b'0' + rng.below(10) as u8));
            if rng.below(4) == 0 {
                s.push_str(rng.pick(&[" ", "-", "(", ")", "+", ".", ":", "\u{a0}", "  ", "٣"]));
            }
        }
        s
    }

    fn line(rng: &mut Rng) -> String {
        let mut s = String::new();
        for _ in 0..rng.below(8) + 1 {
            if rng.below(3) == 0 {
                s.push_str(&digits(rng));
            } else {
                s.push_str(rng.pick(PIECES));
            }
            s.push_str(rng.pick(&[
                " ", " ", "", "=", ":", ", ", "\t", "&", "\"", ".", "@", "%40",
            ]));
        }
        s
    }

    #[test]
    fn the_fast_path_equals_the_reference() {
        let mut mixed = PiiConfig::default();
        mixed.actions.insert(PiiKind::Email, Action::Hash);
        mixed.actions.insert(PiiKind::Ipv4, Action::Keep);
        mixed.actions.insert(PiiKind::Card, Action::Drop);
        mixed.actions.insert(PiiKind::Secret, Action::Hash);
        let keep = PiiConfig {
            actions: PiiKind::ALL.iter().map(|k| (*k, Action::Keep)).collect(),
            ..PiiConfig::default()
        };
        let maskers = [PiiConfig::default(), mixed, keep].map(|c| Masker::new(&c));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut lines, mut changed) = (0, 0);
        for i in 0..4000 {
            let m = &maskers[i % maskers.len()];
            let text = line(&mut rng);
            let (fast, slow) = (m.mask(&text, b"t"), m.mask_reference(&text, b"t"));
            // The ASCII fast path of the hints sees what the general one sees.
            let ascii: String = text.chars().filter(char::is_ascii).collect();
            assert_eq!(
                Hints::of_ascii(&ascii),
                Hints::of_chars(&ascii),
                "{ascii:?}"
            );
            assert_eq!(fast, slow, "{text:?}");
            assert_eq!(
                matches!(fast.text, Cow::Borrowed(_)),
                matches!(slow.text, Cow::Borrowed(_)),
                "{text:?}"
            );
            let name = rng.pick(&[
                "msg",
                "password",
                "user.Token",
                "Пароль",
                "X_API_KEY",
                "note",
            ]);
            assert_eq!(
                m.mask_field(name, &text, b"t"),
                m.mask_field_with(name, &text, b"t", Masker::mask_reference),
                "{name}: {text:?}"
            );
            lines += 1;
            changed += usize::from(!slow.counts.is_empty());
        }
        // The lines must exercise both sides: most hold something, some nothing.
        assert!(
            changed > lines / 2 && changed < lines,
            "{changed} of {lines}"
        );
    }

    /// Every character of a Unicode class in a regex, by scanning all of them.
    fn members(class: &str) -> Vec<char> {
        let all: String = (0..=0x10ffff).filter_map(char::from_u32).collect();
        let re = Regex::new(class).expect("test class");
        re.find_iter(&all)
            .filter_map(|m| m.as_str().chars().next())
            .collect()
    }

    #[test]
    fn the_hints_cover_the_unicode_classes_of_the_patterns() {
        // `\d`, `\s`: what `Hints` counts as a digit and a phone separator.
        for c in members(r"\d") {
            assert!(
                c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric()),
                "{c:?}"
            );
        }
        for c in members(r"\s") {
            assert!(c.is_whitespace(), "{c:?}");
        }
        // IPv6 runs are ASCII hex and colons only.
        for c in members(r"(?i)[0-9a-f]") {
            assert!(c.is_ascii_hexdigit(), "{c:?}");
        }
        // Whatever `(?i)` folds onto a keyword's letter, `fold` does too, or it is odd.
        let letters: std::collections::BTreeSet<char> = [
            "pass",
            "port",
            "pwd",
            "secret",
            "token",
            "api",
            "key",
            "authorization",
            "access",
            "inn",
            "паспорт",
            "пароль",
            "инн",
        ]
        .iter()
        .flat_map(|w| w.chars())
        .collect();
        let class: String = letters.iter().collect();
        let letters: Vec<(char, Regex)> = letters
            .iter()
            .map(|l| (*l, Regex::new(&format!("(?i)^{l}$")).expect("test letter")))
            .collect();
        // Each odd fold must be one: it is taken off this list when it matches a letter.
        let mut odd = ODD_FOLDS.to_vec();
        for c in members(&format!("(?i)[{class}]")) {
            for (l, re) in &letters {
                if re.is_match(c.encode_utf8(&mut [0; 4])) {
                    let odd_fold = ODD_FOLDS.contains(&c) && fold(c) != *l;
                    assert!(fold(c) == *l || odd_fold, "{c:?} folds to {l:?}");
                    odd.retain(|o| !odd_fold || *o != c);
                }
            }
        }
        assert!(odd.is_empty(), "{odd:?} fold onto no keyword letter");
    }

    /// Digit runs at either end, next to capitals, dots, separators and eights give the
    /// byte loop's hints the character loop gives.
    #[test]
    fn digit_runs_give_the_same_hints_in_both_loops() {
        for text in [
            "8",
            "12345678901234567",
            "DE89370400440532013000",
            "xDE8 9",
            "AB1",
            "10.0.0.1",
            "ip=10.0.0.1.",
            "1.2.3.4.5.6 and 7.8.9.10",
            "+7 (912) 345-67-89",
            "8 912  345 67 89",
            "4111 1111-1111 1111",
            "112-233-445 95",
            "a1b22c333d4444",
            "::1 fe80::1:2:3:4 1:2:3:4:5:6:7:8",
            "card 5500 0000 0000 0004 exp 12/28",
        ] {
            assert_eq!(Hints::of_ascii(text), Hints::of_chars(text), "{text:?}");
        }
    }

    /// Random ASCII over the bytes the byte loop treats specially (and their neighbours):
    /// digit runs joined by every separator, keyword letters inside and at the start of
    /// words, hex before colons, `eyJ`.
    #[test]
    fn the_byte_loop_equals_the_char_loop_on_random_ascii() {
        const BYTES: &[u8] = b"0123456789888 -.().:+@=%_\t\x0b\nJyeEpPaAwWsStTiIoOnNkKrRdDfFxX/";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let text: String = (0..len)
                .map(|_| char::from(BYTES[rng.below(BYTES.len())]))
                .collect();
            assert_eq!(Hints::of_ascii(&text), Hints::of_chars(&text), "{text:?}");
        }
    }

    #[test]
    fn the_hints_rule_out_what_typical_lines_cannot_hold() {
        let h =
            Hints::of("http request method=GET path=/api/v1/cart status=200 client_ip=10.1.2.3");
        let admitted: Vec<PiiKind> = PiiKind::ALL.into_iter().filter(|k| h.admits(*k)).collect();
        assert_eq!(admitted, [PiiKind::Ipv4]);
        assert_eq!(h.admitted(), PiiKind::Ipv4.bit());
        let h = Hints::of("at 10:00:00 version 1.2.3 took 15ms");
        assert!(PiiKind::ALL.iter().all(|k| !h.admits(*k)));
        assert_eq!(h.admitted(), 0);
        // Bits are distinct per kind, and `admitted` is `admits` over every kind.
        let h = Hints::of("token=eyJhbGciOi.eyJzdWIiOi.x mail a@b.cd +7 912 345-67-89 ::1");
        for k in PiiKind::ALL {
            assert_eq!(h.admitted() & k.bit() != 0, h.admits(k), "{k:?}");
        }
        let bits = PiiKind::ALL.iter().fold(0u16, |m, k| m | k.bit());
        assert_eq!(bits.count_ones() as usize, PiiKind::ALL.len());
    }
}
