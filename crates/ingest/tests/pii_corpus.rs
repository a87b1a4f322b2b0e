//! The PII corpus: every listed kind of personal data in its format variants (spaces,
//! dashes, brackets, no separators), in plain text, in Cyrillic context, inside nested JSON
//! and URL-encoded in a query string, must not survive masking; a negative set of look-alikes
//! (order numbers, timestamps, UUIDs, versions, durations, amounts) should come through
//! unchanged, and its false-positive rate is printed.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use dozor_ingest::pii::{Masker, PiiConfig};

/// Kinds with their values in several formats.
const POSITIVES: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "ivan.petrov@mail.ru",
            "user+tag@sub.example.co.uk",
            "UPPER.CASE@EXAMPLE.COM",
            "анна@почта.рф",
        ],
    ),
    (
        "phone",
        &[
            "+7 (912) 345-67-89",
            "+7 912 345 67 89",
            "+79123456789",
            "8 (912) 345-67-89",
            "8-912-345-67-89",
            "89123456789",
            "+44 20 7946 0958",
            "+1 (415) 555-2671",
        ],
    ),
    (
        "card",
        &[
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "5500 0000 0000 0004",
            "378282246310005",
        ],
    ),
    (
        "iban",
        &[
            "DE89 3704 0044 0532 0130 00",
            "GB29NWBK60161331926819",
            "FR1420041010050500013M02606",
        ],
    ),
    ("snils", &["112-233-445 95", "112-233-445-95"]),
    ("ipv4", &["192.168.1.10", "8.8.8.8", "10.0.0.254"]),
    (
        "ipv6",
        &["2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a"],
    ),
    (
        "jwt",
        &[
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ],
    ),
];

/// Values that need their name beside them: (prefix, value).
const IN_CONTEXT: &[(&str, &str)] = &[
    ("паспорт ", "4508 123456"),
    ("паспорт серия ", "45 08 номер 123456"),
    ("passport: ", "4508123456"),
    ("ИНН ", "7707083893"),
    ("inn=", "500100732259"),
    ("password=", "hunter2"),
    ("token: ", "abc123def456"),
    ("Authorization: Basic ", "dXNlcjpwYXNz"),
    ("Authorization: Bearer ", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
];

const NEGATIVES: &[&str] = &[
    "order 123456789012 shipped",
    "order #4500812345 created",
    "ts=1796083200 took 15ms",
    "epoch_ms=1796083200123",
    "2026-12-01T10:15:30.123Z GET /api/items 200",
    "request 550e8400-e29b-41d4-a716-446655440000 done",
    "version 1.2.3 build 20261201",
    "dozor 0.1.0 (rustc 1.95.0)",
    "at 10:00:00 the queue had 12:34 items",
    "card ending 4111 1111 1111 1112",
    "sku DE12345 qty 3",
    "amount 10500.00 RUB",
    "latency p99=320ms p50=12ms",
    "shift 1234 closed, 57 documents, FN 9999078900012345",
    "retry 3/5 after 250 ms",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "port 5432 pid 12345 uid 1000",
    "ratio 0.93 over 57 requests",
];

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let (b'%', Some(Some(h)), Some(Some(l))) = (
            b[i],
            b.get(i + 1).map(|c| hex(*c)),
            b.get(i + 2).map(|c| hex(*c)),
        ) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The places a value may appear in a record.
fn contexts(prefix: &str, value: &str) -> Vec<String> {
    let v = format!("{prefix}{value}");
    vec![
        format!("user {v} logged in"),
        format!("Клиент {v} оформил заказ №55"),
        format!(r#"{{"order":{{"id":77,"customer":{{"contact":"{v}","tier":"gold"}}}}}}"#),
        format!("GET /checkout?c={}&ok=1 HTTP/1.1", percent_encode(&v)),
    ]
}

/// Whether `value` (or, for numbers, its digits in a row) is still readable in `out`.
fn survives(value: &str, out: &str) -> bool {
    let decoded = percent_decode(out);
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    decoded.contains(value)
        || (digits.len() >= 6
            && decoded
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '[' || *c == ']')
                .collect::<String>()
                .contains(&digits))
}

#[test]
fn no_listed_pii_survives_masking() {
    let m = Masker::new(&PiiConfig::default());
    let mut checked = 0;
    let mut leaks = Vec::new();
    let values = POSITIVES
        .iter()
        .flat_map(|(_, vs)| vs.iter().map(|v| ("", *v)))
        .chain(IN_CONTEXT.iter().copied());
    for (prefix, value) in values {
        for line in contexts(prefix, value) {
            checked += 1;
            let out = m.mask(&line, b"tenant").text;
            if survives(value, &out) {
                leaks.push(format!("{line:?} -> {out:?}"));
            }
        }
    }
    println!("PII corpus: {checked} lines, {} leaks", leaks.len());
    assert!(
        leaks.is_empty(),
        "PII survived masking:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn look_alikes_mostly_pass_unchanged_and_the_rate_is_reported() {
    let m = Masker::new(&PiiConfig::default());
    let mut changed = Vec::new();
    for line in NEGATIVES {
        let out = m.mask(line, b"tenant").text;
        if out != *line {
            changed.push(format!("{line:?} -> {out:?}"));
        }
    }
    let rate = changed.len() as f64 / NEGATIVES.len() as f64;
    println!(
        "PII false positives: {} of {} look-alikes ({:.1} %){}",
        changed.len(),
        NEGATIVES.len(),
        rate * 100.0,
        changed
            .iter()
            .map(|c| format!("\n  {c}"))
            .collect::<String>()
    );
    assert!(
        rate <= 0.1,
        "too many false positives:\n{}",
        changed.join("\n")
    );
}
