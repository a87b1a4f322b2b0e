//! Anomaly likelihood: how improbable the recent raw scores of a detector are, given the
//! scores the same series has produced before — the post-processing of Numenta's HTM
//! detector (Ahmad, Lavin, Purdy and Agha, "Unsupervised real-time anomaly detection for
//! streaming data", Neurocomputing 262, 2017).
//!
//! A detector's raw score (here, how many spreads a value lies from what was expected)
//! means different things on different series: a noisy series scores 3 every hour, a quiet
//! one never. The likelihood turns it into a number comparable across series, which is what
//! one alert threshold over many series (or NAB's one global threshold) needs:
//!
//! - `m`, the mean of the last `short` raw scores, is taken at every sample;
//! - the values `m` took over the last `long` samples are modelled as a normal
//!   distribution (mean `μ`, standard deviation `σ`, kept as running sums over a ring);
//! - the likelihood is `1 − Q((m − μ) / σ)`, `Q` the standard normal tail: a burst of
//!   unusually high raw scores gives a value near 1, ordinary ones about 0.5 or less.
//!
//! Averaging over `short` samples makes one odd value count less than a run of them, and
//! the model of the series' own score distribution is what makes the output comparable.
//! Memory: the two rings.

use std::collections::VecDeque;

/// Raw scores needed before a likelihood is given.
pub const MIN_SCORES: usize = 20;

/// The likelihood of a stream of raw scores.
#[derive(Debug, Clone)]
pub struct Likelihood {
    long: usize,
    short: usize,
    history: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    recent: VecDeque<f64>,
    recent_sum: f64,
}

impl Likelihood {
    /// A model of the last `long` raw scores, judging the mean of the last `short`.
    pub fn new(long: usize, short: usize) -> Likelihood {
        let long = long.clamp(MIN_SCORES, crate::MAX_WINDOW);
        let short = short.clamp(1, long);
        Likelihood {
            long,
            short,
            history: VecDeque::with_capacity(long),
            sum: 0.0,
            sum_sq: 0.0,
            recent: VecDeque::with_capacity(short),
            recent_sum: 0.0,
        }
    }

    /// Takes the next raw score (non-negative; larger is more unusual): the likelihood in
    /// [0, 1] that the recent scores are unusual, or `None` while fewer than
    /// [`MIN_SCORES`] came. A non-finite score is ignored.
    pub fn update(&mut self, raw: f64) -> Option<f64> {
        if !raw.is_finite() {
            return None;
        }
        self.recent.push_back(raw);
        self.recent_sum += raw;
        if self.recent.len() > self.short {
            self.recent_sum -= self.recent.pop_front().unwrap_or(0.0);
        }
        #[allow(clippy::cast_precision_loss)] // at most MAX_WINDOW scores
        let m = self.recent_sum / self.recent.len() as f64;
        let out = if self.history.len() >= MIN_SCORES {
            #[allow(clippy::cast_precision_loss)]
            let n = self.history.len() as f64;
            let mean = self.sum / n;
            let var = (self.sum_sq / n - mean * mean).max(0.0);
            // A floor on the spread: a series whose scores never moved is not infinitely
            // surprised by a small one.
            let sd = var.sqrt().max(0.03 * mean.abs()).max(1e-3);
            Some(1.0 - normal_tail((m - mean) / sd))
        } else {
            None
        };
        self.history.push_back(m);
        self.sum += m;
        self.sum_sq += m * m;
        if self.history.len() > self.long {
            let old = self.history.pop_front().unwrap_or(0.0);
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        out
    }
}

/// `Q(x) = P(Z > x)` for a standard normal `Z`, through `erfc` (Numerical Recipes'
/// Chebyshev fit, relative error below 1.2e-7: written here because `std` has no `erfc`
/// and this is all a detector needs of a special-functions crate).
pub fn normal_tail(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_is_right() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_tail(-1.0) - 0.841_344_7).abs() < 1e-6);
        assert!(normal_tail(8.0) < 1e-12);
    }

    #[test]
    fn a_burst_of_high_scores_is_likely_anomalous_and_noise_is_not() {
        let mut l = Likelihood::new(500, 5);
        let mut rng = crate::testing::Rng(3);
        let mut high = 0;
        for _ in 0..400 {
            let raw = rng.next();
            if l.update(raw).is_some_and(|p| p > 0.99) {
                high += 1;
            }
        }
        // Calibrated: about 1 % of noise lies above 0.99.
        assert!(high <= 8, "{high} false highs in 380 noise samples");
        let burst: Vec<f64> = (0..5).filter_map(|_| l.update(1.5)).collect();
        assert!(burst[4] > 0.9999, "{burst:?}");
        assert!(burst[0] < burst[4], "one odd value counts less than a run");
        assert_eq!(l.update(f64::NAN), None);
    }
}
