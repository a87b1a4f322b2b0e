//! Anomaly detectors over one series, one sample at a time.
//!
//! Every detector here is *online*: [`Detector::update`] takes the next value and answers
//! how unusual it is, as a signed score in units of the series' own spread (a robust
//! z-score: |score| ≥ 3 is the classic "three sigma" point), from state of bounded size.
//! The threshold adapts because the spread is re-estimated as the series goes: a noisy
//! series needs a larger swing than a quiet one to reach the same score.
//!
//! - [`mad::RobustZ`]: median and median absolute deviation over a sliding window;
//! - [`ewma::Ewma`]: exponentially weighted mean and variance;
//! - [`holt_winters::HoltWinters`]: additive seasonal Holt-Winters forecasts with
//!   Brutlag's seasonal deviation bands.
//!
//! No I/O, no clocks, no allocation after warm-up beyond the configured window: the rules
//! engine keeps one detector per series and feeds it each evaluation's value.
//!
//! Beside them: [`cusum`] (change points: shifts of the mean no single value shows),
//! [`likelihood`] (how improbable a detector's recent scores are, comparable
//! across series) and [`ensemble`] (one score in [0, 1] per sample through it),
//! [`novelty`] (a fuzzy-ART memory of the shapes a series drew: a shape never seen scores
//! in [0, 1]; what `dozor detect nab` runs), [`autoencoder`] (a small learned model with
//! the robust z-score as its fallback), [`iforest`] (Isolation Forest, multivariate, over a window of a stream),
//! [`forecast`] (linear and seasonal forecasts with prediction intervals, threshold
//! crossings), [`logtemplate`] (log template mining) and [`fraud`] (scalpers, bots, odd hours, amount
//! outliers, shared addresses and unusual API calls over event streams, with a labelled
//! simulator).

pub mod autoencoder;
pub mod cusum;
pub mod ensemble;
pub mod ewma;
pub mod forecast;
pub mod fraud;
pub mod holt_winters;
pub mod iforest;
pub mod likelihood;
pub mod logtemplate;
pub mod mad;
pub mod novelty;

/// A streaming detector.
pub trait Detector {
    /// Takes the next value and returns its score against what came before (positive:
    /// above the expected value), or `None` while the detector is still learning.
    /// Non-finite values are ignored (`None`) and do not change the state.
    fn update(&mut self, x: f64) -> Option<f64>;
}

/// Which detector, with its parameters: what a rule names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spec {
    /// [`mad::RobustZ`] over the last `window` values.
    Mad {
        /// Values the median and MAD are taken over.
        window: usize,
    },
    /// [`ewma::Ewma`] with smoothing factor `alpha`.
    Ewma {
        /// Weight of the newest value, in (0, 1].
        alpha: f64,
    },
    /// [`holt_winters::HoltWinters`] with a season of `period` values.
    HoltWinters {
        /// Values per season (for example 1440 one-minute values for a daily season).
        period: usize,
        /// Level smoothing.
        alpha: f64,
        /// Trend smoothing.
        beta: f64,
        /// Seasonal (and deviation) smoothing.
        gamma: f64,
    },
    /// [`cusum::Cusum`]: a change of level, announced when a sum reaches `threshold`.
    Cusum {
        /// Half the smallest shift worth finding, in spreads.
        allowance: f64,
        /// The sum (in spreads) at which a change is announced and the model starts over.
        threshold: f64,
    },
    /// [`novelty::ShapeNovelty`] learning over its first `learn` values; scores in [0, 1].
    Novelty {
        /// Values of the learning period.
        learn: usize,
    },
    /// [`autoencoder::Autoencoder`] over windows of `window` values.
    Autoencoder {
        /// Values per input window.
        window: usize,
    },
}

/// Largest window or period a detector accepts (bounds memory per series).
pub const MAX_WINDOW: usize = 100_000;

impl Spec {
    /// Checks the parameters, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(format!("{name}: must be in (0, 1], got {v}"))
            }
        };
        match *self {
            Spec::Mad { window } => {
                if !(3..=MAX_WINDOW).contains(&window) {
                    return Err(format!("window: must be 3..={MAX_WINDOW}, got {window}"));
                }
                Ok(())
            }
            Spec::Ewma { alpha } => unit("alpha", alpha),
            Spec::HoltWinters {
                period,
                alpha,
                beta,
                gamma,
            } => {
                if !(2..=MAX_WINDOW).contains(&period) {
                    return Err(format!("period: must be 2..={MAX_WINDOW}, got {period}"));
                }
                unit("alpha", alpha)?;
                unit("beta", beta)?;
                unit("gamma", gamma)
            }
            Spec::Cusum {
                allowance,
                threshold,
            } => {
                if !(allowance.is_finite() && allowance > 0.0) {
                    return Err(format!(
                        "allowance: must be a positive number, got {allowance}"
                    ));
                }
                if !(threshold.is_finite() && threshold > 0.0) {
                    return Err(format!(
                        "threshold: must be a positive number, got {threshold}"
                    ));
                }
                Ok(())
            }
            Spec::Novelty { learn } => {
                if !(novelty::MIN_LEARN..=MAX_WINDOW).contains(&learn) {
                    return Err(format!(
                        "learn: must be {}..={MAX_WINDOW}, got {learn}",
                        novelty::MIN_LEARN
                    ));
                }
                Ok(())
            }
            Spec::Autoencoder { window } => {
                if !(2..=autoencoder::MAX_INPUT).contains(&window) {
                    return Err(format!(
                        "window: must be 2..={}, got {window}",
                        autoencoder::MAX_INPUT
                    ));
                }
                Ok(())
            }
        }
    }

    /// How many past values to feed a new detector so that it scores with a full model:
    /// a window for `mad`, about five memory spans for `ewma`, three seasons for
    /// `holt_winters` (two to start, one to settle), the learning or warm-up period of the
    /// others.
    pub fn history(&self) -> usize {
        match *self {
            Spec::Mad { window } => window,
            Spec::Ewma { alpha } => {
                let spans = (5.0 / alpha.clamp(0.001, 1.0)).ceil() as usize;
                spans.clamp(ewma::WARM_UP + 1, MAX_WINDOW)
            }
            Spec::HoltWinters { period, .. } => 3 * period,
            Spec::Cusum { .. } => cusum::WARM_UP,
            Spec::Novelty { learn } => learn,
            Spec::Autoencoder { .. } => autoencoder::Config::default().warm_up,
        }
    }

    /// About how many numbers one detector of this spec keeps (what bounds its memory).
    pub fn memory(&self) -> usize {
        match *self {
            Spec::Mad { window } => 2 * window,
            Spec::Ewma { .. } => 4,
            Spec::HoltWinters { period, .. } => 6 * period,
            Spec::Cusum { .. } => 8,
            Spec::Novelty { learn } => learn + novelty::MEMORY,
            Spec::Autoencoder { window } => {
                let c = autoencoder::Config::default();
                2 * window * c.hidden + 2 * window + c.hidden + 2 * c.errors
            }
        }
    }

    /// A fresh detector (call [`Spec::validate`] first; out-of-range values are clamped).
    pub fn build(&self) -> AnyDetector {
        match *self {
            Spec::Mad { window } => AnyDetector::Mad(mad::RobustZ::new(window)),
            Spec::Ewma { alpha } => AnyDetector::Ewma(ewma::Ewma::new(alpha)),
            Spec::HoltWinters {
                period,
                alpha,
                beta,
                gamma,
            } => {
                AnyDetector::HoltWinters(holt_winters::HoltWinters::new(period, alpha, beta, gamma))
            }
            Spec::Cusum {
                allowance,
                threshold,
            } => AnyDetector::Cusum(cusum::Cusum::new(allowance, threshold)),
            Spec::Novelty { learn } => {
                AnyDetector::Novelty(Box::new(novelty::ShapeNovelty::new(novelty::Config {
                    learn,
                    ..novelty::Config::default()
                })))
            }
            Spec::Autoencoder { window } => AnyDetector::Autoencoder(Box::new(
                autoencoder::Autoencoder::new(autoencoder::Config {
                    window,
                    ..autoencoder::Config::default()
                }),
            )),
        }
    }
}

/// One of the detectors, as a value (clonable, comparable state for the rules engine).
#[derive(Debug, Clone)]
pub enum AnyDetector {
    /// Median/MAD.
    Mad(mad::RobustZ),
    /// EWMA.
    Ewma(ewma::Ewma),
    /// Holt-Winters.
    HoltWinters(holt_winters::HoltWinters),
    /// CUSUM.
    Cusum(cusum::Cusum),
    /// Shape novelty (boxed: its memory is large beside the others').
    Novelty(Box<novelty::ShapeNovelty>),
    /// Autoencoder.
    Autoencoder(Box<autoencoder::Autoencoder>),
}

impl Detector for AnyDetector {
    fn update(&mut self, x: f64) -> Option<f64> {
        match self {
            AnyDetector::Mad(d) => d.update(x),
            AnyDetector::Ewma(d) => d.update(x),
            AnyDetector::HoltWinters(d) => d.update(x),
            AnyDetector::Cusum(d) => d.update(x),
            AnyDetector::Novelty(d) => Detector::update(d.as_mut(), x),
            AnyDetector::Autoencoder(d) => d.update(x),
        }
    }
}

/// A deterministic pseudo-random stream (SplitMix64): the fraud simulator's and the
/// tests'. Written here: four lines, where a crate would bring a dependency tree.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub(crate) fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // 53 bits, exactly representable
        let x = (self.bits() >> 11) as f64 / (1u64 << 53) as f64;
        x
    }

    /// Uniform in [0, n).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.bits() % n.max(1)
    }

    /// Roughly normal (sum of 12 uniforms, minus 6): mean 0, variance 1.
    #[cfg(test)]
    pub(crate) fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// The tests' random stream.
    pub(crate) use crate::SplitMix as Rng;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_validate_and_name_the_bad_parameter() {
        assert!(
            Spec::Mad { window: 2 }
                .validate()
                .unwrap_err()
                .starts_with("window:")
        );
        assert!(
            Spec::Ewma { alpha: 0.0 }
                .validate()
                .unwrap_err()
                .starts_with("alpha:")
        );
        assert!(Spec::Ewma { alpha: f64::NAN }.validate().is_err());
        let hw = Spec::HoltWinters {
            period: 1,
            alpha: 0.1,
            beta: 0.1,
            gamma: 0.1,
        };
        assert!(hw.validate().unwrap_err().starts_with("period:"));
        let hw = Spec::HoltWinters {
            period: 24,
            alpha: 0.1,
            beta: 1.5,
            gamma: 0.1,
        };
        assert!(hw.validate().unwrap_err().starts_with("beta:"));
        assert_eq!(hw.history(), 72);
        assert_eq!(Spec::Ewma { alpha: 0.1 }.history(), 50);
        assert_eq!(Spec::Mad { window: 30 }.history(), 30);
        assert_eq!(hw.memory(), 144);
        let bad = [
            (
                Spec::Cusum {
                    allowance: 0.0,
                    threshold: 8.0,
                },
                "allowance:",
            ),
            (
                Spec::Cusum {
                    allowance: 0.5,
                    threshold: f64::NAN,
                },
                "threshold:",
            ),
            (Spec::Novelty { learn: 10 }, "learn:"),
            (Spec::Autoencoder { window: 1 }, "window:"),
        ];
        for (spec, field) in bad {
            let e = spec.validate().unwrap_err();
            assert!(e.starts_with(field), "{spec:?}: {e}");
        }
        assert_eq!(Spec::Novelty { learn: 750 }.history(), 750);
    }

    #[test]
    fn change_novelty_and_learned_specs_build_detectors_that_see_a_jump() {
        let specs = [
            Spec::Cusum {
                allowance: 0.5,
                threshold: 8.0,
            },
            Spec::Novelty { learn: 300 },
            Spec::Autoencoder { window: 16 },
        ];
        for spec in specs {
            spec.validate().unwrap();
            let mut d = spec.build();
            let mut rng = testing::Rng(12);
            for _ in 0..1500 {
                d.update(20.0 + rng.normal());
            }
            let jump = (0..20)
                .filter_map(|_| d.update(35.0 + rng.normal()))
                .fold(0.0, f64::max);
            let bar = if matches!(spec, Spec::Novelty { .. }) {
                0.1
            } else {
                6.0
            };
            assert!(jump >= bar, "{spec:?}: the jump scored {jump}");
            assert!(d.update(f64::NAN).is_none());
        }
    }

    #[test]
    fn every_detector_scores_a_spike_and_not_the_noise_around_it() {
        let specs = [
            Spec::Mad { window: 60 },
            Spec::Ewma { alpha: 0.1 },
            Spec::HoltWinters {
                period: 24,
                alpha: 0.1,
                beta: 0.01,
                gamma: 0.1,
            },
        ];
        for spec in specs {
            spec.validate().unwrap();
            let mut d = spec.build();
            let mut rng = testing::Rng(7);
            let mut false_alarms = 0;
            for i in 0..200 {
                let x = 100.0
                    + 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() * 0.2
                    + rng.normal();
                if d.update(x).is_some_and(|s| s.abs() >= 4.0) {
                    false_alarms += 1;
                }
            }
            assert!(false_alarms <= 2, "{spec:?}: {false_alarms} false alarms");
            let spike = d.update(140.0).unwrap();
            assert!(spike >= 6.0, "{spec:?}: spike scored {spike}");
            assert!(d.update(f64::NAN).is_none());
        }
    }
}
