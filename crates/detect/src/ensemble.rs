//! One anomaly score in [0, 1] per sample of a series: the statistical detectors' raw scores
//! combined, then made comparable across series by the [`Likelihood`] layer. It is what
//! `dozor detect nab` writes for the Numenta Anomaly Benchmark, whose one global threshold
//! over every file needs scores that mean the same thing on a quiet series and a noisy one.
//!
//! Per sample `x`:
//!
//! - `z_level`: the robust z-score of `x` against the last [`Config::window`] values
//!   ([`RobustZ`]) — a value out of the series' usual range;
//! - `z_change`: the robust z-score of the step `x − x_prev` against the last steps — a
//!   jump, even within the usual range;
//! - the raw score `ln(1 + max(|z_level|, |z_change|))` (compressed, so one enormous value
//!   does not inflate the model of ordinary scores);
//! - the likelihood `L` of the recent raw scores ([`Likelihood`], over [`Config::history`]
//!   means of the last [`Config::short`] raw scores);
//! - the score: how far `L` rises above `P`, the highest likelihood of the last
//!   [`Config::refractory`] samples, `(L − P) / (1 − P)` (0 when it does not): an anomaly
//!   is announced at its start, not again on every sample it lasts (what a benchmark counts
//!   as false positives, and a pager as noise), and a likelihood that noise already
//!   reached recently announces little.
//!
//! Until the detectors have learned (and while the likelihood has too few scores) the
//! score is 0. Memory: two windows, the likelihood's rings and the last scores.

use crate::Detector;
use crate::likelihood::Likelihood;
use crate::mad::RobustZ;

/// Windows of the scorer; the defaults are the one configuration used for every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Values (and steps) the robust z-scores are taken against.
    pub window: usize,
    /// Raw scores the likelihood models.
    pub history: usize,
    /// Raw scores whose mean the likelihood judges.
    pub short: usize,
    /// Samples after a score during which later scores are damped by it.
    pub refractory: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window: 200,
            history: 1000,
            short: 10,
            refractory: 300,
        }
    }
}

/// The combined scorer of one series.
#[derive(Debug, Clone)]
pub struct Scorer {
    level: RobustZ,
    change: RobustZ,
    likelihood: Likelihood,
    last: Option<f64>,
    refractory: usize,
    recent: std::collections::VecDeque<f64>,
}

impl Scorer {
    /// A scorer with `config`.
    pub fn new(config: Config) -> Scorer {
        Scorer {
            level: RobustZ::new(config.window),
            change: RobustZ::new(config.window),
            likelihood: Likelihood::new(config.history, config.short),
            last: None,
            refractory: config.refractory,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Takes the next value: its anomaly score in [0, 1] (0 while learning). A non-finite
    /// value scores 0 and changes nothing.
    pub fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        let level = self.level.update(x);
        let change = self.last.and_then(|prev| self.change.update(x - prev));
        self.last = Some(x);
        let (Some(a), Some(b)) = (level, change) else {
            return 0.0;
        };
        // ±∞ (a constant window broken) counts as very large, not as infinite.
        let z = a.abs().max(b.abs()).min(1e6);
        let l = self.likelihood.update(z.ln_1p()).unwrap_or(0.0);
        let peak = self.recent.iter().copied().fold(0.0, f64::max);
        let score = if l > peak {
            (l - peak) / (1.0 - peak)
        } else {
            0.0
        };
        self.recent.push_back(l);
        if self.recent.len() > self.refractory {
            self.recent.pop_front();
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_and_a_level_shift_score_high_and_noise_scores_low() {
        let mut s = Scorer::new(Config::default());
        let mut rng = crate::testing::Rng(11);
        let mut noise_max: f64 = 0.0;
        for i in 0..1500 {
            let v = s.update(50.0 + rng.normal());
            if i > 400 {
                noise_max = noise_max.max(v);
            }
        }
        let spike = s.update(80.0);
        assert!(spike > noise_max, "spike {spike} ≤ noise {noise_max}");
        assert!(spike > 0.99, "{spike}");
        for _ in 0..300 {
            s.update(50.0 + rng.normal());
        }
        let shift: f64 = (0..5)
            .map(|_| s.update(60.0 + rng.normal()))
            .fold(0.0, f64::max);
        assert!(shift > 0.99, "{shift}");
        assert_eq!(s.update(f64::NAN), 0.0);
    }
}
