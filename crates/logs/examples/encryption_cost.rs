//! What encryption at rest costs: writes and reads about 200 MB of records as parts, in
//! plaintext and sealed with AES-256-GCM, and prints MB/s of raw messages and fields both
//! ways. Run in release mode (the numbers of a debug build mean nothing):
//! `cargo run --release -p dozor-logs --example encryption_cost [MB]`.
//!
//! Reads come from the page cache (the parts were just written), so they measure decoding
//! and decryption, not the disk; the best of three rounds is reported.

use std::time::{Duration, Instant};

use dozor_logs::part::{self, Part, Want};
use dozor_logs::{Key, Needles};
use dozor_model::{Labels, LogRecord};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200 * 1_000_000_000;
/// Raw bytes per part, about what a flush of a 32 MiB head writes per day.
const PART_RAW: usize = 20 << 20;

/// splitmix64: a fast, deterministic stream of numbers for the fake records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Records of about `raw` bytes over a dozen streams: access-log and application lines with
/// random ids, so they compress like real logs rather than like repeated text.
fn records(rng: &mut Rng, start: i64, raw: usize) -> Vec<LogRecord> {
    let streams: Vec<Labels> = (0..12)
        .map(|i| {
            let service = ["shop", "crm", "billing", "search"][i % 4];
            let level = ["info", "warn", "error"][i % 3];
            Labels::from_pairs([("service", service), ("level", level)])
        })
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let paths = ["/api/v1/orders", "/api/v1/cart", "/login", "/api/v1/search"];
    let (mut out, mut size, mut t) = (Vec::new(), 0, start);
    while size < raw && !streams.is_empty() {
        t += 1 + rng.below(2_000_000) as i64;
        let stream = streams[rng.below(streams.len() as u64) as usize].clone();
        let message = if rng.below(4) == 0 {
            format!(
                "payment {} for order {} failed: card ****{:04} declined by issuer {}",
                rng.next() % 1_000_000,
                rng.next() % 10_000_000,
                rng.below(10_000),
                rng.below(40)
            )
        } else {
            format!(
                "GET {}/{} status={} took {}ms bytes={} ua=\"Mozilla/5.0 (X11; Linux x86_64)\"",
                paths[rng.below(4) as usize],
                rng.next() % 100_000_000,
                [200, 200, 200, 201, 304, 404, 500][rng.below(7) as usize],
                rng.below(900),
                rng.below(50_000)
            )
        };
        let mut r = LogRecord::new(t, stream, message);
        r.fields = vec![
            (
                "trace_id".into(),
                format!("{:016x}{:016x}", rng.next(), rng.next()),
            ),
            ("user".into(), format!("user-{}", rng.below(5000))),
        ];
        size += r.byte_size();
        out.push(r);
    }
    out
}

/// Seconds to write `batches` as parts under `dir` with `key`, and to read them back.
fn round(
    dir: &std::path::Path,
    batches: &[Vec<LogRecord>],
    key: Option<&Key>,
) -> Result<(Duration, Duration, u64), Box<dyn std::error::Error>> {
    let copies = batches.to_vec();
    let started = Instant::now();
    let mut stored = 0;
    for (i, recs) in copies.into_iter().enumerate() {
        let meta = part::write_with_key(&dir.join(i.to_string()), &recs, 0, key)?;
        stored += meta.data_bytes + meta.index_bytes;
    }
    let wrote = started.elapsed();
    let needles = Needles::default();
    let want = Want {
        matchers: &[],
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        needles: &needles,
    };
    let started = Instant::now();
    let mut rows = 0usize;
    for i in 0..batches.len() {
        let p = Part::open_with_key(&dir.join(i.to_string()), key)?;
        p.scan(&want, &mut |_| rows += 1)?;
    }
    let read = started.elapsed();
    let expected: usize = batches.iter().map(Vec::len).sum();
    if rows != expected {
        return Err(format!("read {rows} rows of {expected}").into());
    }
    for i in 0..batches.len() {
        std::fs::remove_dir_all(dir.join(i.to_string()))?;
    }
    Ok((wrote, read, stored))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total_mb: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 200,
    };
    let mut rng = Rng(42);
    let batches: Vec<Vec<LogRecord>> = (0..(total_mb << 20).div_ceil(PART_RAW))
        .map(|i| records(&mut rng, T0 + i as i64 * 1_000_000_000_000, PART_RAW))
        .collect();
    let raw: usize = batches.iter().flatten().map(LogRecord::byte_size).sum();
    let rows: usize = batches.iter().map(Vec::len).sum();
    let raw_mb = raw as f64 / 1e6;
    println!(
        "{rows} records, {raw_mb:.1} MB of messages and fields, {} parts",
        batches.len()
    );
    let dir = tempfile::tempdir()?;
    let key = Key::new(&[0x5a; 32]);
    for (name, key) in [("plaintext", None), ("AES-256-GCM", Some(&key))] {
        let (mut best_w, mut best_r, mut stored) = (Duration::MAX, Duration::MAX, 0);
        for _ in 0..3 {
            let (w, r, s) = round(dir.path(), &batches, key)?;
            best_w = best_w.min(w);
            best_r = best_r.min(r);
            stored = s;
        }
        println!(
            "{name:>12}: write {:7.1} MB/s ({:.2} s), read {:7.1} MB/s ({:.2} s), stored {:.1} MB",
            raw_mb / best_w.as_secs_f64(),
            best_w.as_secs_f64(),
            raw_mb / best_r.as_secs_f64(),
            best_r.as_secs_f64(),
            stored as f64 / 1e6
        );
    }
    // The cipher alone, for scale: 1 MiB strings, sealed and opened.
    let cipher = key.derive(b"bench");
    let plain = vec![0x17u8; 1 << 20];
    let mut sealed = Vec::with_capacity(plain.len() + 64);
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        sealed.clear();
        cipher.seal(b"bench", &plain, &mut sealed)?;
    }
    let seal_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..n {
        let mut copy = sealed.clone();
        cipher.open(b"bench", &mut copy)?;
    }
    let open_s = started.elapsed().as_secs_f64();
    let mb = (n << 20) as f64 / 1e6;
    println!(
        "  cipher alone: seal {:.0} MB/s, open {:.0} MB/s (open includes a 1 MiB copy)",
        mb / seal_s,
        mb / open_s
    );
    Ok(())
}
