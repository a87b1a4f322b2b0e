//! Every on-disk name of the log store, in one place. Layout: `docs/format/logs.md`.
//!
//! ```text
//! <root>/<tenant>/wal/00000042                    WAL segments
//! <root>/<tenant>/parts/2026-12-01/<id>/meta.json part metadata (written last)
//! <root>/<tenant>/parts/2026-12-01/<id>/index     streams and block headers with blooms
//! <root>/<tenant>/parts/2026-12-01/<id>/data      column blocks
//! <root>/<tenant>/parts/2026-12-01/<id>.tmp/      a part being written (removed at open)
//! ```

/// Directory of WAL segments.
pub const WAL_DIR: &str = "wal";
/// Directory of day directories of parts.
pub const PARTS_DIR: &str = "parts";
/// Part metadata file.
pub const META: &str = "meta.json";
/// Part index file.
pub const INDEX: &str = "index";
/// Part data file.
pub const DATA: &str = "data";
/// Suffix of a part directory being deleted.
pub use dozor_wal::dir::DELETE_SUFFIX;
/// Suffix of a part directory still being written.
pub use dozor_wal::dir::TMP_SUFFIX;

use dozor_model::time::{civil_from_days, days_from_civil};

/// The directory name of the UTC day holding `time_ns`: `YYYY-MM-DD`.
pub fn day_name(time_ns: i64) -> String {
    let (y, m, d) = civil_from_days(day_of(time_ns));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since the Unix epoch of `time_ns` (floor).
pub fn day_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(86_400 * 1_000_000_000)
}

/// The first nanosecond of day `day`.
pub fn day_start_ns(day: i64) -> i64 {
    day.saturating_mul(86_400 * 1_000_000_000)
}

/// The day number of a `YYYY-MM-DD` directory name.
pub fn parse_day(name: &str) -> Option<i64> {
    let mut it = name.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if name.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// The name of part `id` (a counter, zero-padded so names sort).
pub fn part_name(id: u64) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip_and_split_at_utc_midnight() {
        let ns = 1_764_547_200_000_000_000; // 2025-12-01T00:00:00Z
        assert_eq!(day_name(ns), "2025-12-01");
        assert_eq!(day_name(ns - 1), "2025-11-30");
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(-1), "1969-12-31");
        for name in ["2025-12-01", "2024-02-29", "1970-01-01", "2262-04-11"] {
            let day = parse_day(name).unwrap();
            assert_eq!(day_name(day_start_ns(day)), name);
        }
        for bad in ["2025-02-30", "2025-13-01", "2025-1-01", "x", "2023-02-29"] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
