//! Exponentially weighted moving average and variance.
//!
//! With smoothing factor `α`, after each value `x` (Finch, "Incremental calculation of
//! weighted mean and variance", 2009):
//!
//! ```text
//! δ = x − μ;   μ ← μ + α·δ;   σ² ← (1 − α)·(σ² + α·δ²)
//! ```
//!
//! The score of `x` is `(x − μ) / σ` with the mean and variance from *before* `x`. The
//! effective memory is about `2/α − 1` values, so the band follows slow level shifts and
//! changes of noise while a sudden jump stands out. A constant history has `σ = 0`; any
//! different value then scores ±∞. State: three numbers.

use crate::Detector;

/// Values needed before scoring.
pub const WARM_UP: usize = 10;

/// EWMA mean and variance.
#[derive(Debug, Clone)]
pub struct Ewma {
    alpha: f64,
    mean: f64,
    var: f64,
    n: usize,
}

impl Ewma {
    /// A detector with smoothing factor `alpha` (clamped to (0, 1]).
    pub fn new(alpha: f64) -> Ewma {
        let alpha = if alpha.is_finite() {
            alpha.clamp(f64::MIN_POSITIVE, 1.0)
        } else {
            0.1
        };
        Ewma {
            alpha,
            mean: 0.0,
            var: 0.0,
            n: 0,
        }
    }

    /// The current mean and standard deviation.
    pub fn estimate(&self) -> (f64, f64) {
        (self.mean, self.var.sqrt())
    }
}

impl Detector for Ewma {
    fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        if self.n == 0 {
            self.mean = x;
            self.n = 1;
            return None;
        }
        let d = x - self.mean;
        let sd = self.var.sqrt();
        let score = if sd > 0.0 {
            d / sd
        } else if d == 0.0 {
            0.0
        } else {
            d.signum() * f64::INFINITY
        };
        let incr = self.alpha * d;
        self.mean += incr;
        self.var = (1.0 - self.alpha) * (self.var + d * incr);
        self.n = self.n.saturating_add(1);
        (self.n > WARM_UP).then_some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_variance_follow_the_recurrence() {
        let mut d = Ewma::new(0.5);
        d.update(1.0);
        d.update(3.0); // δ 2, μ 2, σ² 0.5·(0 + 2·1) = 1
        assert_eq!(d.estimate(), (2.0, 1.0));
        d.update(2.0); // δ 0 → μ 2, σ² 0.5
        assert_eq!(d.estimate().0, 2.0);
        assert!((d.estimate().1 - 0.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_band_follows_a_level_shift() {
        let mut d = Ewma::new(0.2);
        let mut rng = crate::testing::Rng(3);
        for _ in 0..100 {
            d.update(10.0 + rng.normal());
        }
        assert!(d.update(30.0).unwrap() > 5.0, "the shift stands out");
        for _ in 0..60 {
            d.update(30.0 + rng.normal());
        }
        let s = d.update(30.0).unwrap();
        assert!(s.abs() < 3.0, "after the shift it is normal again: {s}");
    }

    #[test]
    fn warm_up_and_flat_history() {
        let mut d = Ewma::new(0.1);
        for _ in 0..WARM_UP {
            assert_eq!(d.update(4.0), None);
        }
        assert_eq!(d.update(4.0), Some(0.0));
        assert_eq!(d.update(5.0), Some(f64::INFINITY));
        assert_eq!(d.update(f64::NAN), None);
    }
}
