//! Shape novelty: has this series ever looked like this before? A memory of the shapes a
//! series has drawn, kept by fuzzy Adaptive Resonance Theory with two vigilance levels
//! (Carpenter, Grossberg and Rosen, "Fuzzy ART", Neural Networks 4, 1991; da Silva,
//! Elnabarawy and Wunsch, "Dual vigilance fuzzy adaptive resonance theory", Neural
//! Networks 109, 2019), after the approach of Hampton's ARTime, the best published score on
//! the Numenta Anomaly Benchmark. Our own design and code; the ideas, not the program.
//!
//! Deviation detectors ([`crate::mad`], [`crate::ewma`]) see a value far from the usual
//! one; they miss a daily pattern that stops, a spike that comes at the wrong hour, a
//! plateau where a ramp should be. A memory of shapes sees those: each point is judged by
//! how well the recent window matches the closest shape already seen.
//!
//! Per sample:
//!
//! 1. **Downsampling.** Values are taken in blocks of `step` samples (chosen so that the
//!    learning period holds [`Config::blocks_per_learn`] windows). A block stands for its
//!    mean, unless its most extreme value (the one farther from the running level) lies
//!    more than 10 % of the learned range from the mean: a spike survives downsampling.
//! 2. **Scale.** The learning period's range `[lo, hi]` maps to `[m, 1 − m]`
//!    ([`Config::margin`]); values beyond are clamped to `[0, 1]`. Causal: nothing of the
//!    future is known (NAB hands its detectors each file's minimum and maximum; this one
//!    does not use them).
//! 3. **Quantisation and a dead band.** The scaled value is rounded to one of
//!    [`Config::levels`] levels; a level within [`Config::dead_band`] of the running median
//!    level (exact, from a histogram of levels) is replaced by the median: small wobble
//!    around the usual value is not shape.
//! 4. **Features** of the last [`Config::window`] levels: the levels themselves (where the
//!    series is) and the Haar wavelet transform of the window stretched to `[0, 1]` (what
//!    shape it draws, at every scale), the transform itself stretched to `[0, 1]`;
//!    complement-coded (`x`, `1 − x`), as fuzzy ART needs.
//! 5. **Match.** Against each stored prototype `w`: the fuzzy similarity
//!    `s = |min(x, w)|₁ / |w|₁` and the same on the newest level alone, `e`; the match is
//!    `s³·e²` (the newest point counts apart: an anomaly is announced when it arrives, not
//!    a window later). The best match `A` decides:
//!    - `A ≥ ρ_hi`: the prototype resonates and learns (`w ← min(x, w)`);
//!    - `ρ_lo ≤ A < ρ_hi`: a close variant — stored as a new prototype, no alarm;
//!    - `A < ρ_lo`: a shape never seen — stored, and a candidate alarm.
//! 6. **Vigilance.** At the end of the learning period `ρ` is set from the learning data
//!    itself (a scratch memory at `ρ = 0.8` over the learning windows, the least typical
//!    first; `ρ` becomes its mean best match over the later half). Then it follows the
//!    series: `ρ_hi` is the mean best match so far (at most 0.97); `ρ_lo` rises toward the
//!    recent lowest match when everything matched well, and sinks by the recent shortfalls
//!    below `ρ_hi` when it did not — but never below the mean match of past alarms.
//! 7. **Announce once.** A candidate is an alarm unless the detector is quieted — for
//!    1.5 windows after an alarm, and after novel shapes until 1.5 windows pass without
//!    one — and even then, when it matches far worse than the last alarm did. The score is
//!    graded by how far `A` lies below both vigilance levels plus how new the newest
//!    value is, in (0, 1]; every other sample scores 0.
//!
//! Memory: at most [`Config::max_prototypes`] prototypes of `4·window` numbers (the least
//! recently matched is forgotten), the histogram, the window and one block. Cost per
//! sample: one pass over the prototypes every `step` samples.

use std::collections::VecDeque;

use crate::Detector;

/// The shortest learning period accepted.
pub const MIN_LEARN: usize = 64;

/// About how many numbers the memory of shapes holds at most with the default
/// configuration beside the learning samples (what [`crate::Spec::memory`] counts).
pub const MEMORY: usize = 1024 * 4 * 8;

/// Parameters; the defaults are the one configuration used for every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Samples of the learning period, during which nothing is announced.
    pub learn: usize,
    /// Downsampled points per window (a power of two, for the Haar transform).
    pub window: usize,
    /// Windows the learning period should hold (sets the downsampling step).
    pub blocks_per_learn: usize,
    /// Quantisation levels of the scaled value.
    pub levels: usize,
    /// Levels within this distance (in scaled units) of the median level become the median.
    pub dead_band: f64,
    /// Where the learning range lands inside `[0, 1]`: `[margin, 1 − margin]`.
    pub margin: f64,
    /// Prototypes kept.
    pub max_prototypes: usize,
    /// The range of the series when known beforehand (otherwise the learning period's).
    pub range: Option<(f64, f64)>,
    /// Whether the scale widens to take in values beyond it (otherwise they are clamped).
    pub expand: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            learn: 750,
            window: 8,
            blocks_per_learn: 13,
            levels: 80,
            dead_band: 0.075,
            margin: 0.1,
            max_prototypes: 1024,
            range: None,
            expand: true,
        }
    }
}

/// The shape-novelty detector of one series.
#[derive(Debug, Clone)]
pub struct ShapeNovelty {
    config: Config,
    step: usize,
    block: Vec<f64>,
    running: Option<f64>,
    /// Samples of the learning period, until the scale is known.
    pending: Vec<f64>,
    /// The raw range mapped to `[0, 1]`, once learned.
    scale: Option<(f64, f64)>,
    /// The span of the learning period's values.
    span: f64,
    histogram: Vec<u32>,
    levels_seen: u32,
    recent: VecDeque<f64>,
    memory: Memory,
    judge: Judge,
    /// Downsampled points so far.
    n: usize,
}

impl ShapeNovelty {
    /// A detector with `config` (the window is rounded up to a power of two, at least 2).
    pub fn new(config: Config) -> ShapeNovelty {
        let window = config.window.clamp(2, 64).next_power_of_two();
        let config = Config {
            window,
            levels: config.levels.clamp(2, 10_000),
            learn: config
                .learn
                .clamp(MIN_LEARN.max(4 * window), crate::MAX_WINDOW),
            blocks_per_learn: config.blocks_per_learn.max(1),
            max_prototypes: config.max_prototypes.max(16),
            ..config
        };
        let step = (config.learn / (window * config.blocks_per_learn)).max(1);
        let learn_points = config.learn / step;
        ShapeNovelty {
            config,
            step,
            block: Vec::with_capacity(step),
            running: None,
            pending: Vec::new(),
            scale: None,
            span: 0.0,
            histogram: vec![0; config.levels + 1],
            levels_seen: 0,
            recent: VecDeque::with_capacity(window),
            memory: Memory::new(config.max_prototypes),
            judge: Judge::new(window, learn_points),
            n: 0,
        }
    }

    /// Prototypes in memory.
    pub fn prototypes(&self) -> usize {
        self.memory.prototypes.len()
    }

    /// The downsampling step chosen.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Takes the next value: its anomaly score in [0, 1], 0 unless a new shape is announced
    /// at this sample. A non-finite value scores 0 and changes nothing.
    pub fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        if self.scale.is_none() {
            self.pending.push(x);
            if self.pending.len() >= self.config.learn {
                self.end_learning();
            }
            return 0.0;
        }
        self.block.push(x);
        if self.block.len() < self.step {
            return 0.0;
        }
        let point = self.downsample();
        self.block.clear();
        self.point(point, true)
    }

    /// One value for the block: the mean, or the extreme farther from the running level
    /// when it stands out of the mean by 10 % of the scale.
    fn downsample(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // a block is small
        let mean = self.block.iter().sum::<f64>() / self.block.len() as f64;
        let (lo, hi) = self
            .block
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let running = *self.running.get_or_insert(mean);
        self.running = Some((running + mean) / 2.0);
        let extreme = if (hi - running).abs() < (lo - running).abs() {
            lo
        } else {
            hi
        };
        if (extreme - mean).abs() < 0.1 * self.span {
            mean
        } else {
            extreme
        }
    }

    /// Sets the scale from the learning samples, then downsamples them, sets the vigilance
    /// from their windows and learns them (module docs, 2 and 6).
    fn end_learning(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let (lo, hi) = self.config.range.unwrap_or_else(|| {
            pending
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                })
        });
        let span = hi - lo;
        let span = if span > 1e-9 * lo.abs().max(1.0) {
            span
        } else {
            lo.abs().max(1.0)
        };
        self.span = span;
        let m = self.config.margin.clamp(0.0, 0.45);
        let widen = span * m / (1.0 - 2.0 * m);
        self.scale = Some((lo - widen, lo + span + widen));
        let mut features = Vec::with_capacity(pending.len() / self.step);
        for chunk in pending.chunks_exact(self.step) {
            self.block.clear();
            self.block.extend_from_slice(chunk);
            let point = self.downsample();
            features.push(self.features(point));
        }
        self.block.clear();
        // The incomplete last block of the learning period starts the next one.
        let rest = pending.len() % self.step;
        self.block
            .extend_from_slice(&pending[pending.len() - rest..]);
        let full: Vec<&Vec<f64>> = features.iter().flatten().collect();
        let rho = initial_vigilance(&full, self.config.max_prototypes);
        self.judge.set_vigilance(rho, rho);
        for f in features {
            self.judge_point(f, false);
        }
    }

    fn point(&mut self, raw: f64, announce: bool) -> f64 {
        let features = self.features(raw);
        self.judge_point(features, announce)
    }

    fn judge_point(&mut self, features: Option<Vec<f64>>, announce: bool) -> f64 {
        self.n += 1;
        let score = match features {
            Some(f) => {
                let m = self
                    .memory
                    .present(&f, self.judge.rho_lo, self.judge.rho_hi);
                self.judge.judge(self.n, m, announce)
            }
            None => 0.0,
        };
        self.judge.adapt(self.n, announce);
        score
    }

    /// Scales, quantises and dead-bands `raw`, pushes it into the window, and returns the
    /// complement-coded features once the window is full.
    fn features(&mut self, raw: f64) -> Option<Vec<f64>> {
        let (mut lo, mut hi) = self.scale?;
        if self.config.expand && !(lo..=hi).contains(&raw) {
            self.rescale(lo.min(raw), hi.max(raw));
            (lo, hi) = (lo.min(raw), hi.max(raw));
        }
        let scaled = ((raw - lo) / (hi - lo)).clamp(0.0, 1.0);
        let levels = self.config.levels;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // in [0, levels]
        let level = ((scaled * levels as f64).round() as usize).min(levels);
        self.histogram[level] += 1;
        self.levels_seen += 1;
        #[allow(clippy::cast_precision_loss)]
        let mut value = level as f64 / levels as f64;
        #[allow(clippy::cast_precision_loss)]
        let median = self.median_level() as f64 / levels as f64;
        if (value - median).abs() < self.config.dead_band {
            value = median;
        }
        self.recent.push_back(value);
        if self.recent.len() > self.config.window {
            self.recent.pop_front();
        }
        if self.recent.len() < self.config.window {
            return None;
        }
        let levels_now: Vec<f64> = self.recent.iter().copied().collect();
        let mut shape = levels_now.clone();
        stretch(&mut shape);
        haar(&mut shape);
        stretch(&mut shape);
        let mut f = shape;
        f.extend_from_slice(&levels_now);
        let complement: Vec<f64> = f.iter().map(|v| 1.0 - v).collect();
        f.extend(complement);
        Some(f)
    }

    /// Widens the scale to `[lo, hi]`, moving what is kept in scaled units with it: the
    /// levels in the window, the histogram and the prototypes' level halves (exact: a
    /// fuzzy-ART weight is a minimum of scaled values, and an increasing affine map
    /// commutes with the minimum; the shape halves do not depend on the scale).
    fn rescale(&mut self, lo: f64, hi: f64) {
        let Some((old_lo, old_hi)) = self.scale else {
            return;
        };
        let a = (old_hi - old_lo) / (hi - lo);
        let b = (old_lo - lo) / (hi - lo);
        let map = |v: f64| (a * v + b).clamp(0.0, 1.0);
        for v in &mut self.recent {
            *v = map(*v);
        }
        let levels = self.config.levels;
        let mut histogram = vec![0; levels + 1];
        for (level, &count) in self.histogram.iter().enumerate() {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let to =
                ((map(level as f64 / levels as f64) * levels as f64).round() as usize).min(levels);
            histogram[to] += count;
        }
        self.histogram = histogram;
        let w = self.config.window;
        self.memory.rescale(w..2 * w, 3 * w..4 * w, map);
        self.scale = Some((lo, hi));
    }

    /// The lower median of the levels seen.
    fn median_level(&self) -> usize {
        let half = self.levels_seen.div_ceil(2);
        let mut seen = 0;
        for (level, &count) in self.histogram.iter().enumerate() {
            seen += count;
            if seen >= half {
                return level;
            }
        }
        0
    }
}

/// As a [`Detector`]: `None` while learning, then the score in [0, 1] (never negative:
/// a new shape has no side).
impl Detector for ShapeNovelty {
    fn update(&mut self, x: f64) -> Option<f64> {
        let learning = self.scale.is_none();
        let score = ShapeNovelty::update(self, x);
        (x.is_finite() && !learning).then_some(score)
    }
}

/// Moves `v` to `[0, 1]` (unchanged when flat after the shift).
fn stretch(v: &mut [f64]) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = f64::NEG_INFINITY;
    for x in v.iter_mut() {
        *x -= lo;
        hi = hi.max(*x);
    }
    if hi > 0.0 {
        for x in v.iter_mut() {
            *x /= hi;
        }
    }
}

/// The orthonormal Haar wavelet transform of `v` (length a power of two), in place, all
/// levels: `[approximation, coarsest detail, …, finest details]`.
fn haar(v: &mut [f64]) {
    let mut n = v.len();
    let mut tmp = vec![0.0; n];
    while n > 1 {
        let half = n / 2;
        for i in 0..half {
            let (a, b) = (v[2 * i], v[2 * i + 1]);
            tmp[i] = (a + b) / std::f64::consts::SQRT_2;
            tmp[half + i] = (a - b) / std::f64::consts::SQRT_2;
        }
        v[..n].copy_from_slice(&tmp[..n]);
        n = half;
    }
}

/// How a point met the memory.
#[derive(Debug, Clone, Copy)]
struct Met {
    /// Best match `A`.
    best: f64,
    /// Similarity of the newest value to the best prototype's.
    newest: f64,
    /// Whether no prototype came within `ρ_lo`.
    novel: bool,
}

/// The prototypes.
#[derive(Debug, Clone)]
struct Memory {
    prototypes: Vec<Prototype>,
    cap: usize,
    clock: u64,
}

#[derive(Debug, Clone)]
struct Prototype {
    w: Vec<f64>,
    norm: f64,
    last: u64,
}

impl Memory {
    fn new(cap: usize) -> Memory {
        Memory {
            prototypes: Vec::new(),
            cap,
            clock: 0,
        }
    }

    /// Presents complement-coded features `x`: matches, learns or stores (module docs, 5).
    fn present(&mut self, x: &[f64], rho_lo: f64, rho_hi: f64) -> Met {
        self.clock += 1;
        let half = x.len() / 2;
        let newest = [half - 1, x.len() - 1];
        let mut best: Option<(usize, f64, f64)> = None;
        for (j, p) in self.prototypes.iter().enumerate() {
            let inter: f64 = x.iter().zip(&p.w).map(|(a, b)| a.min(*b)).sum();
            let s = inter / p.norm.max(1e-3);
            let (ei, ew) = newest
                .iter()
                .fold((0.0, 0.0), |(i, w), &k| (i + x[k].min(p.w[k]), w + p.w[k]));
            let e = ei / f64::max(ew, 1e-3);
            let m = s.powi(3) * e.powi(2);
            if best.is_none_or(|(_, bm, _)| m > bm) {
                best = Some((j, m, e));
            }
        }
        let Some((j, a, e)) = best else {
            self.store(x);
            return Met {
                best: 0.0,
                newest: 0.0,
                novel: false,
            };
        };
        if a >= rho_hi {
            let clock = self.clock;
            let p = &mut self.prototypes[j];
            for (w, v) in p.w.iter_mut().zip(x) {
                *w = w.min(*v);
            }
            p.norm = p.w.iter().sum();
            p.last = clock;
        } else {
            self.store(x);
        }
        Met {
            best: a,
            newest: e,
            novel: a < rho_lo,
        }
    }

    /// Maps the level dimensions `levels` of every prototype (and their complements,
    /// `complements`) through `map`.
    fn rescale(
        &mut self,
        levels: std::ops::Range<usize>,
        complements: std::ops::Range<usize>,
        map: impl Fn(f64) -> f64,
    ) {
        for p in &mut self.prototypes {
            for k in levels.clone() {
                p.w[k] = map(p.w[k]);
            }
            for k in complements.clone() {
                p.w[k] = 1.0 - map(1.0 - p.w[k]);
            }
            p.norm = p.w.iter().sum();
        }
    }

    fn store(&mut self, x: &[f64]) {
        let p = Prototype {
            w: x.to_vec(),
            norm: x.iter().sum(),
            last: self.clock,
        };
        if self.prototypes.len() < self.cap {
            self.prototypes.push(p);
        } else if let Some(oldest) = self.prototypes.iter_mut().min_by_key(|p| p.last) {
            *oldest = p;
        }
    }
}

/// The vigilance at the end of learning (module docs, 6).
fn initial_vigilance(features: &[&Vec<f64>], cap: usize) -> f64 {
    if features.len() < 4 {
        return 0.8;
    }
    let norms: Vec<f64> = features
        .iter()
        .map(|f| f.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let typicality: Vec<f64> = (0..features.len())
        .map(|i| {
            (0..features.len())
                .map(|j| {
                    if i == j {
                        return 1.0;
                    }
                    let dot: f64 = features[i]
                        .iter()
                        .zip(features[j])
                        .map(|(a, b)| a * b)
                        .sum();
                    dot / (norms[i] * norms[j]).max(1e-12)
                })
                .sum()
        })
        .collect();
    let mut order: Vec<usize> = (0..features.len()).collect();
    order.sort_by(|&a, &b| typicality[a].total_cmp(&typicality[b]));
    let mut scratch = Memory::new(cap);
    let matches: Vec<f64> = order
        .iter()
        .map(|&i| scratch.present(features[i], 0.8, 0.8).best)
        .collect();
    let later = &matches[matches.len() / 2..];
    #[allow(clippy::cast_precision_loss)]
    let mean = later.iter().sum::<f64>() / later.len() as f64;
    mean
}

/// Vigilance, its adaptation and the announcing of alarms (module docs, 6 and 7).
#[derive(Debug, Clone)]
struct Judge {
    rho_lo: f64,
    rho_hi: f64,
    quiet: usize,
    trend: usize,
    last_alarm: Option<usize>,
    last_alarm_match: f64,
    alarm_matches: Vec<f64>,
    last_adapt: usize,
    after_novel: bool,
    since_novel: usize,
    match_sum: f64,
    match_count: usize,
    recent: VecDeque<f64>,
    shortfalls: VecDeque<f64>,
}

impl Judge {
    fn new(window: usize, learn_points: usize) -> Judge {
        Judge {
            rho_lo: 0.8,
            rho_hi: 0.8,
            quiet: window * 3 / 2,
            trend: learn_points.max(2),
            last_alarm: None,
            last_alarm_match: 0.0,
            alarm_matches: Vec::new(),
            last_adapt: 0,
            after_novel: false,
            since_novel: 0,
            match_sum: 0.0,
            match_count: 0,
            recent: VecDeque::new(),
            shortfalls: VecDeque::new(),
        }
    }

    fn set_vigilance(&mut self, lo: f64, hi: f64) {
        self.rho_lo = lo;
        self.rho_hi = hi;
    }

    fn judge(&mut self, n: usize, met: Met, announce: bool) -> f64 {
        let since_alarm = self.last_alarm.map(|a| n - a);
        let in_quiet = since_alarm.is_some_and(|d| d <= self.quiet);
        if self.after_novel && self.since_novel >= self.quiet {
            self.after_novel = false;
        }
        self.since_novel = if met.novel { 0 } else { self.since_novel + 1 };
        self.match_sum += met.best;
        self.match_count += 1;
        push_bounded(&mut self.recent, met.best, self.trend / 2 + 1);
        push_bounded(&mut self.shortfalls, self.rho_hi - met.best, self.trend + 1);
        if since_alarm.is_some_and(|d| d < self.quiet)
            && let Some(last) = self.alarm_matches.last_mut()
        {
            *last = last.min(met.best);
        }
        let quieted = self.after_novel || in_quiet;
        let far_worse = met.best < self.last_alarm_match * if in_quiet { 0.9 } else { 0.7 };
        let mut score = 0.0;
        if announce && met.novel && (!quieted || far_worse) {
            let a = met.best.min(0.999);
            let below = |rho: f64| (rho - a) / (1.0 - a);
            score =
                (0.35 * below(self.rho_hi) + 0.65 * below(self.rho_lo) + 1.5 * (1.0 - met.newest))
                    .clamp(1e-6, 1.0);
            self.alarm_matches.push(met.best);
            self.last_alarm_match = met.best;
            self.last_alarm = Some(n);
        }
        self.after_novel |= met.novel;
        score
    }

    fn adapt(&mut self, n: usize, announce: bool) {
        if !announce {
            return;
        }
        let after_alarm = self.last_alarm.is_some_and(|a| n - a == self.quiet);
        let due = n - self.last_adapt >= self.trend / 2;
        if !(after_alarm || due) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let hi = (self.match_sum / self.match_count.max(1) as f64).min(0.97);
        let lowest = self.recent.iter().copied().fold(f64::INFINITY, f64::min);
        let mut lo = self.rho_lo;
        if lo <= lowest {
            lo += (lowest - lo) * 0.19;
        } else {
            let big: Vec<f64> = self
                .shortfalls
                .iter()
                .filter(|&&d| d > 0.05)
                .map(|d| d.min(0.37))
                .collect();
            #[allow(clippy::cast_precision_loss)]
            let fall = if n > self.trend * 2 && !big.is_empty() {
                big.iter().sum::<f64>() / big.len() as f64
            } else {
                0.0
            };
            lo -= fall.max(0.01) / 2.0;
            if !self.alarm_matches.is_empty() {
                #[allow(clippy::cast_precision_loss)]
                let floor =
                    self.alarm_matches.iter().sum::<f64>() / self.alarm_matches.len() as f64;
                lo = lo.max(floor);
            }
        }
        self.rho_lo = lo.min(hi);
        self.rho_hi = hi;
        self.last_adapt = n;
        self.after_novel = true;
    }
}

fn push_bounded(ring: &mut VecDeque<f64>, v: f64, cap: usize) {
    ring.push_back(v);
    while ring.len() > cap {
        ring.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daily-like cycle of `period` samples with a peak of `height`, and noise.
    fn cycle(i: usize, period: usize, height: f64, rng: &mut crate::testing::Rng) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let phase = (i % period) as f64 / period as f64;
        let peak = if (0.4..0.6).contains(&phase) {
            height
        } else {
            0.0
        };
        50.0 + peak + rng.normal()
    }

    #[test]
    fn a_peak_of_a_new_height_is_a_new_shape_and_the_usual_cycle_is_not() {
        let period = 96;
        let mut d = ShapeNovelty::new(Config {
            learn: 600,
            ..Config::default()
        });
        let mut rng = crate::testing::Rng(5);
        let mut false_alarms = 0;
        for i in 0..3000 {
            if d.update(cycle(i, period, 40.0, &mut rng)) > 0.0 && i > 1200 {
                false_alarms += 1;
            }
        }
        assert!(
            false_alarms <= 1,
            "{false_alarms} alarms on the usual cycle"
        );
        // The next cycle's peak is half as high: within the usual range, but a shape
        // never drawn.
        let start = 3000 + (period - 3000 % period);
        for i in 3000..start {
            d.update(cycle(i, period, 40.0, &mut rng));
        }
        let seen: Vec<usize> = (start..start + period)
            .filter(|&i| d.update(cycle(i, period, 20.0, &mut rng)) > 0.0)
            .collect();
        assert!(!seen.is_empty(), "the lower peak went unseen");
        let late = seen[0] - start;
        assert!(late < period * 3 / 4, "seen late: {late} samples in");
    }

    #[test]
    fn a_spike_beyond_the_learned_range_scores_at_once() {
        let mut d = ShapeNovelty::new(Config {
            learn: 400,
            ..Config::default()
        });
        let mut rng = crate::testing::Rng(9);
        for _ in 0..2000 {
            d.update(10.0 + rng.normal());
        }
        // The block holding the spike ends within `step` samples.
        let score = (0..d.step())
            .map(|k| d.update(if k == 0 { 60.0 } else { 10.0 + rng.normal() }))
            .fold(0.0, f64::max);
        assert!(score > 0.5, "spike scored {score}");
    }

    #[test]
    fn constant_and_non_finite_values_are_harmless() {
        let mut d = ShapeNovelty::new(Config::default());
        for _ in 0..5000 {
            assert_eq!(d.update(7.0), 0.0);
        }
        assert_eq!(d.update(f64::NAN), 0.0);
        assert_eq!(d.update(f64::INFINITY), 0.0);
        assert!(d.prototypes() <= 2, "{}", d.prototypes());
    }

    #[test]
    fn rescaling_the_memory_is_the_same_as_learning_at_the_new_scale() {
        let code = |levels: &[f64]| {
            let mut f = vec![0.5; levels.len()];
            f.extend_from_slice(levels);
            let c: Vec<f64> = f.iter().map(|v| 1.0 - v).collect();
            f.extend(c);
            f
        };
        // Old scale [0, 10], new [−10, 30]: v ↦ (10 v + 10) / 40.
        let map = |v: f64| (10.0 * v + 10.0) / 40.0;
        let (a, b) = ([0.2, 0.9], [0.6, 0.1]);
        let mut old = Memory::new(8);
        old.store(&code(&a));
        old.present(&code(&b), 0.0, 0.0); // resonates: w ← min(w, x)
        old.rescale(2..4, 6..8, map);
        let mut new = Memory::new(8);
        new.store(&code(&a.map(map)));
        new.present(&code(&b.map(map)), 0.0, 0.0);
        for (x, y) in old.prototypes[0].w.iter().zip(&new.prototypes[0].w) {
            assert!(
                (x - y).abs() < 1e-12,
                "{:?} vs {:?}",
                old.prototypes[0].w,
                new.prototypes[0].w
            );
        }
    }

    #[test]
    fn the_haar_transform_is_orthonormal() {
        let mut v = [1.0, 3.0, 5.0, 7.0];
        haar(&mut v);
        let r = std::f64::consts::SQRT_2;
        // [sum/2, (1+3−5−7)/2, (1−3)/√2, (5−7)/√2]
        let want = [8.0, -4.0, -2.0 / r, -2.0 / r];
        for (x, y) in v.iter().zip(want) {
            assert!((x - y).abs() < 1e-12, "{v:?}");
        }
        let energy: f64 = v.iter().map(|x| x * x).sum();
        assert!((energy - 84.0).abs() < 1e-9);
    }
}
