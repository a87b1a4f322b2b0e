//! Change points by two-sided CUSUM (Page, "Continuous inspection schemes", Biometrika
//! 1954): a shift of the mean that a point detector misses because no single value is far
//! out — a latency that settles 1.5 spreads higher, a sales rate that halves.
//!
//! Each value is standardised against the mean and spread of the values before the current
//! run (`z = (x − μ) / σ`, learned over the first [`WARM_UP`] values and then slowly, with
//! weight [`LEARN`], while no change is under way). Two sums gather the evidence:
//!
//! ```text
//! S⁺ ← max(0, S⁺ + z − k)      S⁻ ← max(0, S⁻ − z − k)
//! ```
//!
//! `k` (half the smallest shift worth finding, in spreads) is the allowance each value
//! gets; a sum above `h` is a change. The score is the larger sum, signed (up or down), so
//! `|score| ≥ h` reads like the other detectors' `|z| ≥ 3`. After a change the sums and
//! the model start over: the new level is learned over [`WARM_UP`] values. Memory: six
//! numbers.

use crate::Detector;

/// Values learned before anything is scored.
pub const WARM_UP: usize = 100;
/// Weight of a new value in the mean and spread while no change is under way.
const LEARN: f64 = 0.01;

/// Two-sided CUSUM.
#[derive(Debug, Clone)]
pub struct Cusum {
    k: f64,
    h: f64,
    n: usize,
    mean: f64,
    var: f64,
    up: f64,
    down: f64,
}

impl Cusum {
    /// A detector with allowance `k` and threshold `h` (in spreads). The textbook choice
    /// `k = 0.5`, `h = 5` (a one-spread shift found in about ten values, a false change
    /// once in 465) assumes the mean and spread known; learned from [`WARM_UP`] values they
    /// are off by a tenth of a spread or so, and `h = 8` keeps false changes as rare.
    pub fn new(k: f64, h: f64) -> Cusum {
        let positive = |v: f64, d: f64| if v.is_finite() && v > 0.0 { v } else { d };
        Cusum {
            k: positive(k, 0.5),
            h: positive(h, 5.0),
            n: 0,
            mean: 0.0,
            var: 0.0,
            up: 0.0,
            down: 0.0,
        }
    }

    fn learn(&mut self, x: f64, weight: f64) {
        let d = x - self.mean;
        self.mean += weight * d;
        self.var = (1.0 - weight) * (self.var + weight * d * d);
    }
}

impl Detector for Cusum {
    fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        if self.n < WARM_UP {
            self.n += 1;
            // The running mean and variance of the first values (Welford's, as weights).
            #[allow(clippy::cast_precision_loss)] // counts below WARM_UP
            let w = 1.0 / self.n as f64;
            self.learn(x, w);
            return None;
        }
        let sd = self
            .var
            .sqrt()
            .max(1e-9 * self.mean.abs())
            .max(f64::MIN_POSITIVE);
        let z = (x - self.mean) / sd;
        self.up = (self.up + z - self.k).max(0.0);
        self.down = (self.down - z - self.k).max(0.0);
        let score = if self.up >= self.down {
            self.up
        } else {
            -self.down
        };
        if score.abs() >= self.h {
            // A change: learn the new level afresh.
            self.n = 0;
            self.mean = 0.0;
            self.var = 0.0;
            self.up = 0.0;
            self.down = 0.0;
        } else if self.up == 0.0 && self.down == 0.0 {
            self.learn(x, LEARN);
        }
        Some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A threshold for parameters estimated from 100 values (the textbook 5 assumes them
    /// known; estimated ones raise false changes).
    const H: f64 = 8.0;

    #[test]
    fn a_small_shift_is_found_and_noise_is_not() {
        let mut rng = crate::SplitMix(5);
        let mut c = Cusum::new(0.5, H);
        let mut false_changes = 0;
        for _ in 0..400 {
            if c.update(10.0 + rng.normal()).is_some_and(|s| s.abs() >= H) {
                false_changes += 1;
            }
        }
        assert!(false_changes <= 2, "{false_changes} false changes in noise");
        // Up by 1.5 spreads: no single value stands out, the sum does within 12 values.
        let found = (1..=12).find(|_| c.update(11.5 + rng.normal()).is_some_and(|s| s >= H));
        assert!(found.is_some(), "the shift was not found");
        // Then it learns the new level and is quiet again.
        let mut after = 0;
        for _ in 0..200 {
            if c.update(11.5 + rng.normal()).is_some_and(|s| s.abs() >= H) {
                after += 1;
            }
        }
        assert!(after <= 2, "{after} changes after settling");
        // Down by 2 spreads is negative.
        let mut c = Cusum::new(0.5, H);
        for _ in 0..200 {
            c.update(10.0 + rng.normal());
        }
        let down = (1..=12).find_map(|_| c.update(8.0 + rng.normal()).filter(|s| *s <= -H));
        assert!(down.is_some(), "the drop was not found");
        assert_eq!(c.update(f64::NAN), None);
    }
}
