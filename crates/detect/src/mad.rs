//! Robust z-score: how far a value lies from the median of the recent window, in units of
//! the window's median absolute deviation (Iglewicz and Hoaglin's modified z-score).
//!
//! For the window `w`: `m = median(w)`, `MAD = median(|wᵢ − m|)`, and the score of a new
//! value `x` is `0.6745 · (x − m) / MAD`. For normal data `MAD ≈ 0.6745 σ`, so the score
//! reads like a z-score, but one outlier moves neither the median nor the MAD: a spike
//! does not hide the next one, as it would inflate a standard deviation. When more than
//! half the window is one value, MAD is 0; then the mean absolute deviation around the
//! median stands in (`1.2533 · meanAD ≈ σ` for normal data), and when that is 0 too (a
//! constant window), any different value scores ±∞.
//!
//! A value is scored against the window *before* it joins it. Memory: the window twice,
//! in arrival order (to know what leaves) and sorted. Cost: the median is read off the
//! sorted copy; the MAD is the middle of two sorted runs — the distances below the median,
//! read from it downwards, and those above, read upwards — found by a binary search over
//! how many each contributes (O(log n)); an arrival and a departure are a binary search
//! and a `memmove` each (O(n) bytes moved, a few nanoseconds for the windows rules use).
//! Only the mean-deviation fallback walks the window.

use std::collections::VecDeque;

use crate::Detector;

/// Values needed before scoring (or the window, if smaller).
pub const MIN_VALUES: usize = 10;

/// Median/MAD over a sliding window.
#[derive(Debug, Clone)]
pub struct RobustZ {
    window: usize,
    values: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl RobustZ {
    /// A detector over the last `window` values (at least 3).
    pub fn new(window: usize) -> RobustZ {
        let window = window.clamp(3, crate::MAX_WINDOW);
        RobustZ {
            window,
            values: VecDeque::with_capacity(window),
            sorted: Vec::with_capacity(window),
        }
    }

    /// The score of `x` against the current window, without adding it.
    pub fn score(&self, x: f64) -> Option<f64> {
        if self.values.len() < self.window.min(MIN_VALUES) {
            return None;
        }
        let v = &self.sorted;
        let n = v.len();
        let m = sorted_median(n, |i| v[i]);
        // The distances |vᵢ − m| as two ascending runs.
        let split = v.partition_point(|&y| y < m);
        let below = |j: usize| m - v[split - 1 - j];
        let above = |j: usize| v[split + j] - m;
        let (a, b) = (split, n - split);
        let mad = sorted_median(n, |k| kth_of_two(a, b, below, above, k));
        let d = x - m;
        let spread = if mad > 0.0 {
            mad / 0.6745
        } else {
            #[allow(clippy::cast_precision_loss)] // at most MAX_WINDOW values
            let mean_ad = v.iter().map(|y| (y - m).abs()).sum::<f64>() / n as f64;
            1.253_314 * mean_ad
        };
        Some(if spread > 0.0 {
            d / spread
        } else if d == 0.0 {
            0.0
        } else {
            d.signum() * f64::INFINITY
        })
    }
}

/// The median of `n > 0` ascending values read through `at`.
fn sorted_median(n: usize, at: impl Fn(usize) -> f64) -> f64 {
    if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    }
}

/// The `k`-th smallest (from 0) of two ascending runs of lengths `a` and `b` read through
/// `l` and `r` (`k < a + b`): a binary search over `i`, how many of the first `k + 1`
/// come from the first run.
fn kth_of_two(
    a: usize,
    b: usize,
    l: impl Fn(usize) -> f64,
    r: impl Fn(usize) -> f64,
    k: usize,
) -> f64 {
    let (mut lo, mut hi) = ((k + 1).saturating_sub(b), (k + 1).min(a));
    while lo < hi {
        let i = lo + (hi - lo) / 2;
        // Taking `i` from the first run is too few when its next one is below the
        // second run's last one taken.
        if l(i) < r(k - i) {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let i = lo;
    let j = k + 1 - i;
    let from_l = if i > 0 { l(i - 1) } else { f64::NEG_INFINITY };
    let from_r = if j > 0 { r(j - 1) } else { f64::NEG_INFINITY };
    from_l.max(from_r)
}

impl Detector for RobustZ {
    fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let s = self.score(x);
        if self.values.len() == self.window
            && let Some(old) = self.values.pop_front()
        {
            let at = self.sorted.partition_point(|&y| y < old);
            self.sorted.remove(at);
        }
        self.values.push_back(x);
        let at = self.sorted.partition_point(|&y| y < x);
        self.sorted.insert(at, x);
        s
    }
}

/// The median of `v` (reordered); `v` is not empty.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (lo, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        // The largest of the lower half.
        let below = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + m) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn score_is_the_modified_z_score() {
        let mut d = RobustZ::new(11);
        for x in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0] {
            d.update(x);
        }
        // median 6, |x − 6| = 5,4,3,2,1,0,1,2,3,4,5 → MAD 3.
        let s = d.score(12.0).unwrap();
        assert!((s - 0.6745 * 6.0 / 3.0).abs() < 1e-12, "{s}");
        let s = d.score(0.0).unwrap();
        assert!((s + 0.6745 * 6.0 / 3.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn an_outlier_does_not_mask_the_next_one() {
        let mut d = RobustZ::new(30);
        let mut rng = crate::testing::Rng(1);
        for _ in 0..30 {
            d.update(50.0 + rng.normal());
        }
        assert!(d.update(90.0).unwrap() > 10.0);
        assert!(
            d.update(90.0).unwrap() > 10.0,
            "the first spike did not widen the band"
        );
    }

    #[test]
    fn a_mostly_constant_window_falls_back_to_the_mean_deviation() {
        let mut d = RobustZ::new(10);
        for x in [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0, 5.0, 4.0] {
            d.update(x);
        }
        // MAD 0; mean |x − 5| = 0.2 → spread 0.2507.
        let s = d.score(6.0).unwrap();
        assert!((s - 1.0 / (1.253_314 * 0.2)).abs() < 1e-9, "{s}");
        let mut flat = RobustZ::new(10);
        for _ in 0..10 {
            flat.update(1.0);
        }
        assert_eq!(flat.score(1.0), Some(0.0));
        assert_eq!(flat.score(2.0), Some(f64::INFINITY));
        assert_eq!(flat.score(0.0), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn the_sorted_window_scores_as_a_full_sort_would() {
        let brute = |w: &[f64], x: f64| {
            let mut v = w.to_vec();
            let m = median(&mut v);
            let mut dev: Vec<f64> = v.iter().map(|y| (y - m).abs()).collect();
            let mad = median(&mut dev);
            0.6745 * (x - m) / mad
        };
        let mut rng = crate::testing::Rng(17);
        for window in [3, 4, 10, 11, 60, 61] {
            let mut d = RobustZ::new(window);
            let mut seen = Vec::new();
            for i in 0..500 {
                // Ties and steps too: rounded values, a level that moves.
                let x = (rng.normal() * 4.0).round() + if i > 250 { 20.0 } else { 0.0 };
                let start = seen.len().saturating_sub(window);
                let got = d.update(x);
                if let Some(got) = got
                    && got.is_finite()
                {
                    let want = brute(&seen[start..], x);
                    if want.is_finite() {
                        assert!(
                            (got - want).abs() < 1e-9,
                            "window {window} at {i}: {got} vs {want}"
                        );
                    }
                }
                seen.push(x);
            }
            assert_eq!(d.sorted.len(), window);
        }
    }

    #[test]
    fn warms_up_and_ignores_non_finite_values() {
        let mut d = RobustZ::new(100);
        for i in 0..MIN_VALUES {
            assert_eq!(d.update(i as f64), None);
        }
        assert!(d.update(f64::NAN).is_none());
        assert!(d.update(f64::INFINITY).is_none());
        assert!(d.update(3.0).is_some());
        assert_eq!(d.values.len(), MIN_VALUES + 1);
    }
}
