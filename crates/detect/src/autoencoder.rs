//! A small learned detector: an autoencoder over the recent window of a series, trained
//! online, whose reconstruction error says how unlike the series' usual shapes the window
//! is — with the robust z-score as its statistical fallback while it learns, or if it ever
//! stops learning sensibly (seed 004's "autoencoder anomalies with a statistical
//! fallback").
//!
//! Per sample `x`:
//!
//! 1. `x` is standardised by an exponentially weighted mean and deviation
//!    ([`crate::ewma::Ewma`]'s weights) and clipped to ±[`CLIP`]: one huge value cannot
//!    wreck the weights, and the model sees shapes, not units;
//! 2. the last [`Config::window`] standardised values `v` go through one hidden layer of
//!    [`Config::hidden`] `tanh` units and back, `v̂ = W₂ tanh(W₁ v + b₁) + b₂`;
//! 3. the error `e = ‖v − v̂‖² / window` is scored against the errors of the last
//!    [`Config::errors`] windows by [`crate::mad::RobustZ`] — the answer, in the same
//!    units as every other detector here;
//! 4. then one step of stochastic gradient descent on `e` (learning rate
//!    [`Config::rate`], gradients clipped) teaches the model this window.
//!
//! The score is the fallback's — the robust z-score of `x` over the last
//! [`Config::errors`] values — until the model has trained on [`Config::warm_up`]
//! windows, and again whenever its error stops being finite or its running error grows
//! past [`DIVERGED`] (the weights are then re-drawn and the warm-up starts over).
//! [`Autoencoder::mode`] tells which answered. Bounded memory: the weights
//! (`2·window·hidden + window + hidden` numbers), the window, two robust windows.

use std::collections::VecDeque;

use crate::Detector;
use crate::mad::RobustZ;

/// Largest input window accepted.
pub const MAX_INPUT: usize = 256;

/// Standardised values are clipped to ±`CLIP`.
pub const CLIP: f64 = 8.0;

/// A running reconstruction error above this (standardised units squared) means the
/// model diverged.
pub const DIVERGED: f64 = 1e3;

/// Parameters; the defaults serve every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Values per input window.
    pub window: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Learning rate of the gradient step.
    pub rate: f64,
    /// Weight of the newest value in the standardising mean and deviation.
    pub alpha: f64,
    /// Windows trained on before the model answers.
    pub warm_up: usize,
    /// Past errors (and, for the fallback, values) scores are taken against.
    pub errors: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window: 16,
            hidden: 4,
            rate: 0.01,
            alpha: 0.01,
            warm_up: 500,
            errors: 300,
            seed: 0x5eed,
        }
    }
}

/// Which part answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The robust z-score of the value (learning, or after a divergence).
    Fallback,
    /// The robust z-score of the model's reconstruction error.
    Model,
}

/// The autoencoder detector of one series.
#[derive(Debug, Clone)]
pub struct Autoencoder {
    config: Config,
    mean: Option<f64>,
    var: f64,
    recent: VecDeque<f64>,
    net: Net,
    trained: usize,
    running_error: f64,
    error_z: RobustZ,
    fallback: RobustZ,
    mode: Mode,
    restarts: u64,
}

impl Autoencoder {
    /// A detector with `config` (sizes clamped to at least 2 and at most 256).
    pub fn new(config: Config) -> Autoencoder {
        let config = Config {
            window: config.window.clamp(2, MAX_INPUT),
            hidden: config.hidden.clamp(1, 256),
            errors: config.errors.clamp(10, crate::MAX_WINDOW),
            ..config
        };
        Autoencoder {
            net: Net::new(config.window, config.hidden, config.seed),
            mean: None,
            var: 0.0,
            recent: VecDeque::with_capacity(config.window),
            trained: 0,
            running_error: 0.0,
            error_z: RobustZ::new(config.errors),
            fallback: RobustZ::new(config.errors),
            mode: Mode::Fallback,
            restarts: 0,
            config,
        }
    }

    /// Which part gave the last answer.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Times the model diverged and was started over.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    fn standardise(&mut self, x: f64) -> f64 {
        let a = self.config.alpha;
        let mean = *self.mean.get_or_insert(x);
        let d = x - mean;
        let sd = self.var.sqrt();
        let z = if sd > 0.0 { d / sd } else { 0.0 };
        self.mean = Some(mean + a * d);
        self.var = (1.0 - a) * (self.var + a * d * d);
        z.clamp(-CLIP, CLIP)
    }

    fn restart(&mut self) {
        self.restarts += 1;
        self.net = Net::new(
            self.config.window,
            self.config.hidden,
            self.config.seed.wrapping_add(self.restarts),
        );
        self.trained = 0;
        self.running_error = 0.0;
        self.error_z = RobustZ::new(self.config.errors);
    }
}

impl Detector for Autoencoder {
    fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let fallback = self.fallback.update(x);
        let z = self.standardise(x);
        self.recent.push_back(z);
        if self.recent.len() > self.config.window {
            self.recent.pop_front();
        }
        if self.recent.len() < self.config.window {
            self.mode = Mode::Fallback;
            return fallback;
        }
        let input: Vec<f64> = self.recent.iter().copied().collect();
        let error = self.net.train(&input, self.config.rate);
        if !error.is_finite() {
            self.restart();
            self.mode = Mode::Fallback;
            return fallback;
        }
        self.running_error = 0.99 * self.running_error + 0.01 * error;
        if self.running_error > DIVERGED {
            self.restart();
            self.mode = Mode::Fallback;
            return fallback;
        }
        self.trained += 1;
        let scored = self.error_z.update(error);
        if self.trained < self.config.warm_up {
            self.mode = Mode::Fallback;
            return fallback;
        }
        self.mode = Mode::Model;
        // Only a worse reconstruction than usual is anomalous.
        scored.map(|s| s.max(0.0))
    }
}

/// One hidden layer, `tanh`, linear output, trained to reproduce its input.
#[derive(Debug, Clone)]
struct Net {
    n: usize,
    h: usize,
    /// `h × n`, row-major.
    w1: Vec<f64>,
    b1: Vec<f64>,
    /// `n × h`, row-major.
    w2: Vec<f64>,
    b2: Vec<f64>,
}

/// Largest gradient component applied.
const GRAD_CLIP: f64 = 5.0;

impl Net {
    /// Weights drawn uniformly in ±√(6 / (fan_in + fan_out)) (Glorot), biases 0.
    fn new(n: usize, h: usize, seed: u64) -> Net {
        let mut rng = crate::SplitMix(seed);
        #[allow(clippy::cast_precision_loss)]
        let limit = (6.0 / (n + h) as f64).sqrt();
        let mut draw =
            |k: usize| -> Vec<f64> { (0..k).map(|_| (rng.next() * 2.0 - 1.0) * limit).collect() };
        Net {
            n,
            h,
            w1: draw(h * n),
            b1: vec![0.0; h],
            w2: draw(n * h),
            b2: vec![0.0; n],
        }
    }

    /// The reconstruction error of `v` before one gradient step on it.
    fn train(&mut self, v: &[f64], rate: f64) -> f64 {
        let (n, h) = (self.n, self.h);
        let hidden: Vec<f64> = (0..h)
            .map(|j| {
                let row = &self.w1[j * n..(j + 1) * n];
                (row.iter().zip(v).map(|(w, x)| w * x).sum::<f64>() + self.b1[j]).tanh()
            })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let scale = 2.0 / n as f64;
        let mut error = 0.0;
        // ∂e/∂v̂ᵢ = 2 (v̂ᵢ − vᵢ) / n.
        let out_grad: Vec<f64> = (0..n)
            .map(|i| {
                let row = &self.w2[i * h..(i + 1) * h];
                let out = row.iter().zip(&hidden).map(|(w, a)| w * a).sum::<f64>() + self.b2[i];
                let d = out - v[i];
                error += d * d;
                (scale * d).clamp(-GRAD_CLIP, GRAD_CLIP)
            })
            .collect();
        // Back through the output layer to the hidden units (before updating it).
        let hidden_grad: Vec<f64> = (0..h)
            .map(|j| {
                let back: f64 = (0..n).map(|i| out_grad[i] * self.w2[i * h + j]).sum();
                (back * (1.0 - hidden[j] * hidden[j])).clamp(-GRAD_CLIP, GRAD_CLIP)
            })
            .collect();
        for ((row, bias), g) in self.w2.chunks_exact_mut(h).zip(&mut self.b2).zip(&out_grad) {
            for (w, a) in row.iter_mut().zip(&hidden) {
                *w -= rate * g * a;
            }
            *bias -= rate * g;
        }
        for ((row, bias), g) in self
            .w1
            .chunks_exact_mut(n)
            .zip(&mut self.b1)
            .zip(&hidden_grad)
        {
            for (w, x) in row.iter_mut().zip(v) {
                *w -= rate * g * x;
            }
            *bias -= rate * g;
        }
        #[allow(clippy::cast_precision_loss)]
        let mean = error / n as f64;
        mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(i: usize) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let t = i as f64 * std::f64::consts::TAU / 24.0;
        100.0 + 10.0 * t.sin()
    }

    #[test]
    fn it_learns_the_usual_shape_and_scores_a_broken_one() {
        let mut d = Autoencoder::new(Config::default());
        let mut rng = crate::testing::Rng(21);
        let mut errors_late = Vec::new();
        for i in 0..6000 {
            let s = d.update(wave(i) + 0.3 * rng.normal());
            if i < 500 {
                assert_eq!(d.mode(), Mode::Fallback, "answered before learning, at {i}");
            }
            if i > 5000 {
                errors_late.push(s.unwrap_or(0.0));
            }
        }
        assert_eq!(d.mode(), Mode::Model);
        let usual = errors_late.iter().filter(|s| **s >= 6.0).count();
        assert!(usual <= 5, "{usual} high scores on the usual wave");
        // The wave stops and holds (a stuck sensor) inside its usual range: no value is
        // out of place, the shape is.
        let stuck: f64 = (0..12)
            .filter_map(|_| d.update(100.0 + 0.3 * rng.normal()))
            .fold(0.0, f64::max);
        assert!(stuck >= 6.0, "a stuck series scored {stuck}");
    }

    #[test]
    fn it_falls_back_and_restarts_when_the_model_diverges() {
        let mut d = Autoencoder::new(Config {
            rate: 50.0, // far too large: the weights blow up
            warm_up: 50,
            ..Config::default()
        });
        let mut rng = crate::testing::Rng(4);
        for i in 0..3000 {
            d.update(wave(i) + rng.normal());
        }
        assert!(d.restarts() > 0, "never diverged");
        assert!(d.update(f64::NAN).is_none());
        // Whatever the model does, the answer is a number or a warm-up.
        assert!(d.update(100.0).is_none_or(f64::is_finite));
    }
}
