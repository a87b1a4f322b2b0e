//! Additive seasonal Holt-Winters forecasts with Brutlag's deviation bands (Brutlag,
//! "Aberrant behavior detection in time series for network monitoring", LISA 2000 — the
//! method of RRDtool's `HWPREDICT`).
//!
//! With season length `m`, level `L`, trend `b`, seasonal terms `s₀…s_{m−1}` and seasonal
//! deviations `d₀…d_{m−1}`, each value `x` at season position `i` is first predicted as
//! `ŷ = L + b + sᵢ` and scored as `(x − ŷ) / (1.2533·dᵢ)` (`d` estimates the mean absolute
//! deviation, `1.2533·d ≈ σ` for normal noise), then the model learns it:
//!
//! ```text
//! L' = α(x − sᵢ) + (1 − α)(L + b)
//! b' = β(L' − L) + (1 − β)b
//! sᵢ ← γ(x − L') + (1 − γ)sᵢ
//! dᵢ ← γ|x − ŷ| + (1 − γ)dᵢ
//! ```
//!
//! So a value that is ordinary for the day but wrong for the hour — night traffic at
//! noon — scores high, which a window statistic cannot see. The model starts from the
//! first two seasons: level and trend from their means, `sᵢ` the mean deviation of
//! position `i` from its season's mean, and every `dᵢ` the average spread around that
//! pattern (two values per position are too few to estimate each position's own spread;
//! the `dᵢ` then learn it).
//! Memory: `4m` numbers.

use crate::Detector;

/// Seasonal Holt-Winters with deviation bands.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    period: usize,
    alpha: f64,
    beta: f64,
    gamma: f64,
    /// The first two seasons, until the model starts.
    warm: Vec<f64>,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    dev: Vec<f64>,
    /// Position in the season of the next value.
    pos: usize,
}

impl HoltWinters {
    /// A model with `period` values per season (at least 2) and smoothing factors in
    /// (0, 1] (clamped).
    pub fn new(period: usize, alpha: f64, beta: f64, gamma: f64) -> HoltWinters {
        let unit = |v: f64| {
            if v.is_finite() {
                v.clamp(f64::MIN_POSITIVE, 1.0)
            } else {
                0.1
            }
        };
        let period = period.clamp(2, crate::MAX_WINDOW);
        HoltWinters {
            period,
            alpha: unit(alpha),
            beta: unit(beta),
            gamma: unit(gamma),
            warm: Vec::with_capacity(2 * period),
            level: 0.0,
            trend: 0.0,
            season: Vec::new(),
            dev: Vec::new(),
            pos: 0,
        }
    }

    /// The prediction for the next value, once the model has started.
    pub fn forecast(&self) -> Option<f64> {
        (!self.season.is_empty()).then(|| self.level + self.trend + self.season[self.pos])
    }

    /// The prediction `h` (≥ 1) values ahead and the model's one-step spread at that
    /// position of the season (`1.2533·d ≈ σ`), once the model has started.
    pub fn forecast_ahead(&self, h: usize) -> Option<(f64, f64)> {
        if self.season.is_empty() || h == 0 {
            return None;
        }
        let i = (self.pos + h - 1) % self.period;
        #[allow(clippy::cast_precision_loss)] // horizons
        let ahead = h as f64;
        Some((
            self.level + ahead * self.trend + self.season[i],
            1.2533 * self.dev[i],
        ))
    }

    fn start(&mut self) {
        let m = self.period;
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (a1, a2) = (mean(&self.warm[..m]), mean(&self.warm[m..]));
        self.trend = (a2 - a1) / m as f64;
        // Level at the last value of season 2 (a2 is its mean, at its middle).
        self.level = a2 + self.trend * (m as f64 - 1.0) / 2.0;
        self.season = (0..m)
            .map(|i| {
                let t1 = self.trend * (i as f64 - (m as f64 - 1.0) / 2.0);
                ((self.warm[i] - a1 - t1) + (self.warm[m + i] - a2 - t1)) / 2.0
            })
            .collect();
        let spread = (0..m)
            .map(|i| {
                let t1 = self.trend * (i as f64 - (m as f64 - 1.0) / 2.0);
                let e1 = self.warm[i] - a1 - t1 - self.season[i];
                let e2 = self.warm[m + i] - a2 - t1 - self.season[i];
                (e1.abs() + e2.abs()) / 2.0
            })
            .sum::<f64>()
            / m as f64;
        self.dev = vec![spread; m];
        self.warm = Vec::new();
        self.pos = 0;
    }
}

impl Detector for HoltWinters {
    fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        if self.season.is_empty() {
            self.warm.push(x);
            if self.warm.len() == 2 * self.period {
                self.start();
            }
            return None;
        }
        let i = self.pos;
        let predicted = self.level + self.trend + self.season[i];
        let err = x - predicted;
        let spread = 1.2533 * self.dev[i];
        let score = if spread > 0.0 {
            err / spread
        } else if err == 0.0 {
            0.0
        } else {
            err.signum() * f64::INFINITY
        };
        let level =
            self.alpha * (x - self.season[i]) + (1.0 - self.alpha) * (self.level + self.trend);
        self.trend = self.beta * (level - self.level) + (1.0 - self.beta) * self.trend;
        self.level = level;
        self.season[i] = self.gamma * (x - level) + (1.0 - self.gamma) * self.season[i];
        self.dev[i] = self.gamma * err.abs() + (1.0 - self.gamma) * self.dev[i];
        self.pos = (i + 1) % self.period;
        Some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mad::RobustZ;

    fn daily(i: usize) -> f64 {
        // 24 values a day: 100 at night, 200 at noon.
        150.0 - 50.0 * (i as f64 * std::f64::consts::TAU / 24.0).cos()
    }

    #[test]
    fn learns_the_season_and_flags_the_wrong_hour() {
        let mut hw = HoltWinters::new(24, 0.2, 0.01, 0.2);
        let mut mad = RobustZ::new(48);
        let mut rng = crate::testing::Rng(11);
        let mut worst = 0.0f64;
        for i in 0..24 * 10 {
            let x = daily(i) + rng.normal();
            mad.update(x);
            if let Some(s) = hw.update(x)
                && i >= 24 * 4
            {
                worst = worst.max(s.abs());
            }
        }
        assert!(worst < 5.0, "ordinary days score low: {worst}");
        // Midnight (position 0) with noon's traffic: ordinary for the day, wrong now.
        let forecast = hw.forecast().unwrap();
        assert!((forecast - 100.0).abs() < 3.0, "forecast {forecast}");
        let s = hw.update(200.0).unwrap();
        assert!(s > 10.0, "seasonal model sees it: {s}");
        let s = mad.update(200.0).unwrap();
        assert!(s < 3.0, "a window statistic does not: {s}");
    }

    #[test]
    fn follows_a_trend() {
        let mut hw = HoltWinters::new(12, 0.3, 0.1, 0.1);
        let mut rng = crate::testing::Rng(5);
        let mut last = None;
        for i in 0..12 * 20 {
            last = hw.update(i as f64 * 2.0 + daily(2 * i) * 0.1 + 0.2 * rng.normal());
        }
        assert!(last.unwrap().abs() < 4.0, "{last:?}");
        let f = hw.forecast().unwrap();
        let want = 240.0 * 2.0 + daily(480) * 0.1;
        assert!((f - want).abs() < 2.0, "forecast {f}, want {want}");
    }

    #[test]
    fn starts_after_two_seasons() {
        let mut hw = HoltWinters::new(4, 0.1, 0.1, 0.1);
        for x in [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0] {
            assert_eq!(hw.update(x), None);
        }
        assert_eq!(hw.forecast(), None);
        assert_eq!(hw.update(4.0), None);
        // Exact seasons: the forecast repeats them, with no spread around them.
        assert_eq!(hw.forecast(), Some(1.0));
        assert_eq!(hw.update(1.0), Some(0.0));
        assert_eq!(hw.update(f64::NAN), None);
    }
}
