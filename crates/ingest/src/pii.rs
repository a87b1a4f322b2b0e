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
//! for the masking metrics.
//!
//! ```
//! use dozor_ingest::pii::{Masker, PiiConfig};
//! let m = Masker::new(&PiiConfig::default());
//! let out = m.mask("login ivan.petrov@mail.ru from 10.1.2.3, card 4111 1111 1111 1111", b"salt");
//! assert_eq!(out.text, "login [EMAIL] from [IPV4], card [CARD]");
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

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
                r#"(?i)(?:\b(?:password|passwd|pwd|pass|secret|token|api[_-]?key|access[_-]?token|пароль)"#,
                r#"(?:\s*[=:]\s*|=)"?(?P<v>[^\s"&,;]+)"#,
                r#"|"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|пароль)"\s*:\s*"(?P<j>[^"]*)""#,
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

/// Masking settings: one action per kind (absent kinds: `mask`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Per-kind actions, e.g. `{ipv4: keep, email: hash}`.
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
    detectors: Vec<(PiiKind, Action, Regex)>,
}

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
            .map(|&k| {
                // The patterns are constants, compiled by every test run.
                let re = Regex::new(k.pattern()).expect("BUG: a PII pattern does not compile");
                (k, config.action(k), re)
            })
            .collect();
        Masker { detectors }
    }

    /// Masks `text`; `salt` keys the hashes (the tenant's).
    pub fn mask<'a>(&self, text: &'a str, salt: &[u8]) -> Masked<'a> {
        // Scan the percent-decoded text, if decoding changes it; `map` takes a decoded
        // offset back to the original.
        let decoded = percent_decoded(text);
        let (scan, map): (&str, Option<&[usize]>) = match &decoded {
            Some((d, m)) => (d.as_str(), Some(m.as_slice())),
            None => (text, None),
        };
        let mut found: Vec<(usize, usize, PiiKind, Action)> = Vec::new();
        for (kind, action, re) in &self.detectors {
            for caps in re.captures_iter(scan) {
                let Some(m) = ["v", "j", "a"]
                    .iter()
                    .find_map(|g| caps.name(g))
                    .or_else(|| caps.get(0))
                else {
                    continue;
                };
                if !m.is_empty() && kind.valid(m.as_str()) {
                    found.push((m.start(), m.end(), *kind, *action));
                }
            }
        }
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
}

impl Masker {
    /// Masks a field's value: wholly, as a secret, when the field's name says it holds
    /// one (`password`, `token`, `api_key`, `*_secret`, `authorization`, `cookie`…: the
    /// value alone carries no `key=` for [`Masker::mask`] to see); otherwise as any text.
    pub fn mask_field<'a>(&self, name: &str, value: &'a str, salt: &[u8]) -> Masked<'a> {
        if value.is_empty() || !is_secret_name(name) {
            return self.mask(value, salt);
        }
        let action = self
            .detectors
            .iter()
            .find(|(k, _, _)| *k == PiiKind::Secret)
            .map_or(Action::Mask, |(_, a, _)| *a);
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

impl Masker {
    /// Masks a record's message and fields in place; returns whether a `drop` action
    /// refuses it, and adds what was found to `counts`.
    pub fn mask_record(
        &self,
        r: &mut dozor_model::LogRecord,
        salt: &[u8],
        counts: &mut BTreeMap<PiiKind, u64>,
    ) -> bool {
        let mut drop = false;
        let mut tally = |m: &Masked<'_>| {
            drop |= m.drop;
            for (kind, n) in &m.counts {
                *counts.entry(*kind).or_default() += u64::from(*n);
            }
        };
        let m = self.mask(&r.message, salt);
        tally(&m);
        if let Cow::Owned(text) = m.text {
            r.message = text;
        }
        for (name, value) in &mut r.fields {
            let m = self.mask_field(name, value, salt);
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

/// Whether a field of this name holds a secret (its last dotted segment, any case).
fn is_secret_name(name: &str) -> bool {
    const NAMES: [&str; 16] = [
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
    let last = name.rsplit('.').next().unwrap_or(name).to_lowercase();
    NAMES.contains(&last.as_str())
        || [
            "_token",
            "_secret",
            "_password",
            "-token",
            "-secret",
            "api-key",
            "api_key",
            "apikey",
        ]
        .iter()
        .any(|s| last.ends_with(s))
}

/// `text` with `%XX` escapes decoded, and for each decoded byte (and the end) its offset in
/// `text`; `None` when there is no escape or the result is not UTF-8.
fn percent_decoded(text: &str) -> Option<(String, Vec<usize>)> {
    let b = text.as_bytes();
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
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
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
}
