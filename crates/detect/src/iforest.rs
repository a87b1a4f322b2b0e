//! Isolation Forest (Liu, Ting and Zhou, "Isolation Forest", ICDM 2008): multivariate
//! anomalies (seed 001's transactions: amount, items, hour…) without a model of what is
//! normal. Anomalies are few and different, so random cuts isolate them in fewer steps.
//!
//! - A tree is grown on a random sample of `ψ` points: at each node a random dimension
//!   (among those that still vary) and a random cut between its minimum and maximum split
//!   the points, down to single points or the height limit `⌈log₂ ψ⌉`.
//! - A point's path length `h(x)` is the depth of the leaf it falls into, plus `c(size)`
//!   for the points the leaf still holds, where `c(n) = 2H(n − 1) − 2(n − 1)/n` is the
//!   average path length of an unsuccessful search in a binary search tree of `n` points
//!   (`H` the harmonic number).
//! - The score is `s(x) = 2^(−E[h(x)] / c(ψ))` over the trees: near 1 for anomalies, about
//!   0.5 or less for ordinary points.
//!
//! [`StreamingForest`] keeps a window of recent points and re-grows the forest every
//! `refit` points, scoring each new point against the forest of the window before it
//! (bounded memory: the window and the trees, at most `2ψ` nodes each).

use std::collections::VecDeque;

use crate::SplitMix;

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        size: usize,
    },
    Split {
        dim: usize,
        cut: f64,
        left: Box<Node>,
        right: Box<Node>,
    },
}

/// `c(n)`: the average path length of an unsuccessful search among `n` points.
fn average_path(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // sample sizes
    let n = n as f64;
    2.0 * ((n - 1.0).ln() + 0.577_215_664_9) - 2.0 * (n - 1.0) / n
}

/// A grown forest.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    trees: Vec<Node>,
    dims: usize,
    sample: usize,
}

impl IsolationForest {
    /// Grows `trees` trees on samples of `sample` points of `points` (all of one
    /// dimension, finite), from `seed`.
    pub fn fit(
        points: &[Vec<f64>],
        trees: usize,
        sample: usize,
        seed: u64,
    ) -> Result<IsolationForest, String> {
        let dims = points.first().map_or(0, Vec::len);
        if dims == 0 {
            return Err("needs points of at least one dimension".into());
        }
        if let Some(i) = points
            .iter()
            .position(|p| p.len() != dims || p.iter().any(|v| !v.is_finite()))
        {
            return Err(format!("point {i}: every point needs {dims} finite values"));
        }
        if points.len() < 2 {
            return Err("needs at least two points".into());
        }
        let sample = sample.clamp(2, points.len());
        let height = usize::BITS - (sample - 1).leading_zeros();
        let mut rng = SplitMix(seed);
        let trees = (0..trees.max(1))
            .map(|_| {
                // A sample without replacement (a partial Fisher–Yates over indices).
                let mut idx: Vec<usize> = (0..points.len()).collect();
                for i in 0..sample {
                    let j = i + usize::try_from(rng.below((points.len() - i) as u64)).unwrap_or(0);
                    idx.swap(i, j);
                }
                idx.truncate(sample);
                grow(points, &mut idx, 0, height as usize, &mut rng)
            })
            .collect();
        Ok(IsolationForest {
            trees,
            dims,
            sample,
        })
    }

    /// The anomaly score of `x` in (0, 1]; `None` when its dimension is wrong or a value is
    /// not finite.
    pub fn score(&self, x: &[f64]) -> Option<f64> {
        if x.len() != self.dims || x.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let total: f64 = self.trees.iter().map(|t| path(t, x, 0)).sum();
        #[allow(clippy::cast_precision_loss)] // tree counts
        let mean = total / self.trees.len() as f64;
        Some(2f64.powf(-mean / average_path(self.sample)))
    }
}

fn grow(
    points: &[Vec<f64>],
    idx: &mut [usize],
    depth: usize,
    height: usize,
    rng: &mut SplitMix,
) -> Node {
    if idx.len() <= 1 || depth >= height {
        return Node::Leaf { size: idx.len() };
    }
    let dims = points[idx[0]].len();
    // The dimensions that still vary here, and their ranges.
    let ranges: Vec<(usize, f64, f64)> = (0..dims)
        .filter_map(|d| {
            let (lo, hi) = idx
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                    (lo.min(points[i][d]), hi.max(points[i][d]))
                });
            (hi > lo).then_some((d, lo, hi))
        })
        .collect();
    if ranges.is_empty() {
        return Node::Leaf { size: idx.len() };
    }
    let (dim, lo, hi) = ranges[usize::try_from(rng.below(ranges.len() as u64)).unwrap_or(0)];
    let cut = lo + rng.next() * (hi - lo);
    // Partition in place: values below the cut first.
    let mut split = 0;
    for i in 0..idx.len() {
        if points[idx[i]][dim] < cut {
            idx.swap(i, split);
            split += 1;
        }
    }
    let split = split.clamp(1, idx.len() - 1);
    let (left, right) = idx.split_at_mut(split);
    Node::Split {
        dim,
        cut,
        left: Box::new(grow(points, left, depth + 1, height, rng)),
        right: Box::new(grow(points, right, depth + 1, height, rng)),
    }
}

fn path(node: &Node, x: &[f64], depth: usize) -> f64 {
    match node {
        #[allow(clippy::cast_precision_loss)] // depths
        Node::Leaf { size } => depth as f64 + average_path(*size),
        Node::Split {
            dim,
            cut,
            left,
            right,
        } => {
            if x[*dim] < *cut {
                path(left, x, depth + 1)
            } else {
                path(right, x, depth + 1)
            }
        }
    }
}

/// An Isolation Forest over a stream: a window of recent points, re-grown every `refit`.
#[derive(Debug, Clone)]
pub struct StreamingForest {
    window: VecDeque<Vec<f64>>,
    capacity: usize,
    refit: usize,
    since: usize,
    forest: Option<IsolationForest>,
    seed: u64,
}

/// Trees per forest.
pub const TREES: usize = 100;
/// Points each tree is grown on (Liu et al.'s ψ).
pub const SAMPLE: usize = 256;

impl StreamingForest {
    /// A window of `capacity` points (at least [`SAMPLE`]), the forest re-grown every
    /// `refit` points.
    pub fn new(capacity: usize, refit: usize, seed: u64) -> StreamingForest {
        let capacity = capacity.clamp(SAMPLE, crate::MAX_WINDOW);
        StreamingForest {
            window: VecDeque::with_capacity(capacity),
            capacity,
            refit: refit.max(1),
            since: 0,
            forest: None,
            seed,
        }
    }

    /// Takes the next point: its score against the forest of the points before it, or
    /// `None` while fewer than [`SAMPLE`] came (or the point is malformed, which is not
    /// kept).
    pub fn update(&mut self, x: &[f64]) -> Option<f64> {
        if x.is_empty() || x.iter().any(|v| !v.is_finite()) {
            return None;
        }
        if self.window.front().is_some_and(|p| p.len() != x.len()) {
            return None;
        }
        let score = self.forest.as_ref().and_then(|f| f.score(x));
        self.window.push_back(x.to_vec());
        if self.window.len() > self.capacity {
            self.window.pop_front();
        }
        self.since += 1;
        if self.window.len() >= SAMPLE && (self.forest.is_none() || self.since >= self.refit) {
            let points: Vec<Vec<f64>> = self.window.iter().cloned().collect();
            self.seed = self.seed.wrapping_add(1);
            self.forest = IsolationForest::fit(&points, TREES, SAMPLE, self.seed).ok();
            self.since = 0;
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two correlated dimensions: amount and items of ordinary purchases.
    fn ordinary(rng: &mut SplitMix) -> Vec<f64> {
        let items = 1.0 + (rng.next() * 5.0).floor();
        vec![items * 20.0 + rng.normal() * 5.0, items]
    }

    #[test]
    fn outliers_score_high_and_ordinary_points_do_not() {
        let mut rng = SplitMix(42);
        let points: Vec<Vec<f64>> = (0..1000).map(|_| ordinary(&mut rng)).collect();
        let f = IsolationForest::fit(&points, TREES, SAMPLE, 1).unwrap();
        let typical: f64 = (0..200)
            .map(|_| f.score(&ordinary(&mut rng)).unwrap())
            .sum::<f64>()
            / 200.0;
        assert!(typical < 0.55, "ordinary points score {typical}");
        // Large in both dimensions, and a combination never seen: 1 item for 100.
        for odd in [vec![500.0, 20.0], vec![100.0, 1.0]] {
            let s = f.score(&odd).unwrap();
            assert!(s > 0.6 && s > typical + 0.15, "{odd:?} scored {s}");
        }
        assert_eq!(f.score(&[1.0]), None, "wrong dimension");
        assert_eq!(f.score(&[f64::NAN, 1.0]), None);
        assert!(IsolationForest::fit(&[vec![1.0], vec![1.0, 2.0]], 10, 8, 1).is_err());
        assert!(IsolationForest::fit(&[], 10, 8, 1).is_err());
        assert!(
            (average_path(256) - 10.24).abs() < 0.01,
            "{}",
            average_path(256)
        );
    }

    #[test]
    fn the_streaming_forest_scores_after_its_first_sample() {
        let mut rng = SplitMix(7);
        let mut s = StreamingForest::new(1000, 200, 3);
        let mut scored = 0;
        for i in 0..600 {
            let got = s.update(&ordinary(&mut rng));
            assert_eq!(got.is_some(), i >= SAMPLE, "point {i}");
            scored += usize::from(got.is_some());
        }
        assert_eq!(scored, 600 - SAMPLE);
        let odd = s.update(&[400.0, 2.0]).unwrap();
        assert!(odd > 0.6, "{odd}");
        assert_eq!(s.update(&[1.0]), None, "another dimension is refused");
    }
}
