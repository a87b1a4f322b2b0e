//! Downsampling: per-bucket aggregates of raw samples, for fast long-range reads and for
//! keeping history longer than raw data.
//!
//! A raw block whose compaction is final (its 27-block-duration window lies behind the
//! head, or retention is about to delete it) is summarised into one block per resolution
//! ([`RESOLUTIONS`]: 1 minute, 5 minutes, 1 hour and 1 day — seed 004's roll-ups). Each
//! bucket `[k·res, (k+1)·res)` of a series becomes one row of [`Aggregates`] — min, max,
//! sum, count and last of its samples — stamped with the bucket's last millisecond (or the
//! last of the block's window, for a bucket reaching past it: [`aggregate_block`]), so a bucket
//! never appears before the samples it summarises, nor after later ones. Staleness markers are left out (a bucket of only markers has no row); the
//! other NaNs count as values, as `*_over_time` counts them.
//!
//! Aggregates compose: the `min` of bucket minima is the minimum, sums and counts add, and
//! `last` of the newest bucket is the last value. That is the contract readers get from
//! [`crate::Queryable::select_downsampled`]: applying the matching `*_over_time` to the
//! returned column gives the raw answer (with `count` summed). Counter resets inside a
//! bucket are not visible in `last`: a rate over downsampled data undercounts a counter
//! that reset more than once within one bucket.

use dozor_model::{Sample, labels::is_stale_nan};

use crate::Aggregate;
use crate::chunk::Aggregates;

/// 1 minute, ms.
pub const RESOLUTION_1M: i64 = 60 * 1000;
/// 5 minutes, ms.
pub const RESOLUTION_5M: i64 = 5 * 60 * 1000;
/// 1 hour, ms.
pub const RESOLUTION_1H: i64 = 60 * 60 * 1000;
/// 1 day (UTC), ms. Raw blocks do not align with days: a day is summarised by each block
/// that holds a part of it ([`aggregate_block`]).
pub const RESOLUTION_1D: i64 = 24 * 60 * 60 * 1000;
/// The resolutions written for every raw block, finest first.
pub const RESOLUTIONS: [i64; 4] = [RESOLUTION_1M, RESOLUTION_5M, RESOLUTION_1H, RESOLUTION_1D];

/// [`aggregate`] of the samples of a raw block whose time window ends at `limit` (its last
/// millisecond). A bucket reaching past the window — a day's does, since blocks are not
/// aligned with days — is stamped `limit` instead of its last millisecond, so that it never
/// sorts after the next block's samples (which its `last` would then wrongly follow).
/// Finer buckets divide the windows and keep their stamps.
pub fn aggregate_block(samples: &[Sample], res: i64, limit: i64) -> Aggregates {
    let mut out = aggregate(samples, res);
    if let Some(t) = out.times.last_mut() {
        *t = (*t).min(limit);
    }
    out
}

/// Aggregates `samples` (sorted by time) into buckets of `res` ms.
pub fn aggregate(samples: &[Sample], res: i64) -> Aggregates {
    let mut out = Aggregates::default();
    let mut current: Option<i64> = None;
    for s in samples.iter().filter(|s| !is_stale_nan(s.v)) {
        let bucket = s.t.div_euclid(res);
        if current != Some(bucket) {
            current = Some(bucket);
            out.times
                .push(bucket.saturating_mul(res).saturating_add(res - 1));
            let [min, max, sum, count, last] = &mut out.columns;
            min.push(s.v);
            max.push(s.v);
            sum.push(s.v);
            count.push(1.0);
            last.push(s.v);
            continue;
        }
        let [min, max, sum, count, last] = &mut out.columns;
        let i = out.times.len() - 1;
        // As Prometheus' min_over_time/max_over_time: a NaN is replaced by any number.
        if s.v < min[i] || min[i].is_nan() {
            min[i] = s.v;
        }
        if s.v > max[i] || max[i].is_nan() {
            max[i] = s.v;
        }
        sum[i] += s.v;
        count[i] += 1.0;
        last[i] = s.v;
    }
    out
}

/// Combines rows of one series that share a bucket (a bucket split between two source
/// blocks), keeping time order. `samples` must be in source order (older blocks first).
pub fn combine(mut samples: Vec<Sample>, which: Aggregate) -> Vec<Sample> {
    samples.sort_by_key(|s| s.t); // stable: equal buckets stay in block order
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples {
        match out.last_mut() {
            Some(prev) if prev.t == s.t => {
                prev.v = match which {
                    Aggregate::Min if s.v < prev.v || prev.v.is_nan() => s.v,
                    Aggregate::Max if s.v > prev.v || prev.v.is_nan() => s.v,
                    Aggregate::Sum | Aggregate::Count => prev.v + s.v,
                    Aggregate::Last => s.v,
                    _ => prev.v,
                }
            }
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_model::labels::stale_nan;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn buckets_hold_min_max_sum_count_last() {
        let raw = [
            s(0, 3.0),
            s(100, 1.0),
            s(299_999, 5.0),
            s(300_000, 7.0),
            s(300_001, stale_nan()),
            s(900_000, stale_nan()),
        ];
        let a = aggregate(&raw, RESOLUTION_5M);
        assert_eq!(a.times, [299_999, 599_999]);
        assert_eq!(a.columns[Aggregate::Min as usize], [1.0, 7.0]);
        assert_eq!(a.columns[Aggregate::Max as usize], [5.0, 7.0]);
        assert_eq!(a.columns[Aggregate::Sum as usize], [9.0, 7.0]);
        assert_eq!(a.columns[Aggregate::Count as usize], [3.0, 1.0]);
        assert_eq!(a.columns[Aggregate::Last as usize], [5.0, 7.0]);
    }

    #[test]
    fn negative_times_bucket_downwards() {
        let a = aggregate(&[s(-1, 1.0), s(0, 2.0)], RESOLUTION_5M);
        assert_eq!(a.times, [-1, 299_999]);
    }

    #[test]
    fn split_buckets_combine_per_aggregate() {
        let rows = vec![s(10, 4.0), s(20, 1.0), s(10, 2.0)];
        assert_eq!(
            combine(rows.clone(), Aggregate::Min),
            [s(10, 2.0), s(20, 1.0)]
        );
        assert_eq!(
            combine(rows.clone(), Aggregate::Max),
            [s(10, 4.0), s(20, 1.0)]
        );
        assert_eq!(
            combine(rows.clone(), Aggregate::Sum),
            [s(10, 6.0), s(20, 1.0)]
        );
        assert_eq!(combine(rows, Aggregate::Last), [s(10, 2.0), s(20, 1.0)]);
    }
}
