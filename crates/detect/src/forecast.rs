//! Forecasts with prediction intervals (seed 004's disk-full and load forecasts):
//!
//! - [`linear`]: a least-squares line through the history, `y = a + b·t`, with the
//!   prediction interval of a new observation at `t₀`:
//!   `ŷ ± q · s · √(1 + 1/n + (t₀ − t̄)² / Σ(tᵢ − t̄)²)`, `s² = Σ residuals² / (n − 2)` and
//!   `q` Student's quantile with `n − 2` degrees of freedom (Cornish–Fisher expansion of
//!   the normal quantile);
//! - [`seasonal`]: additive Holt-Winters ([`HoltWinters`]) fitted to the history and
//!   projected `h` steps on: `ŷ = L + h·b + s_{(i+h−1) mod m}`, its interval
//!   `ŷ ± z · σ · √(1 + (h − 1)(α² + αβh + β²h(2h − 1)/6))` (Hyndman and Athanasopoulos'
//!   variance of Holt's additive method; `σ = 1.2533·d`, the model's deviation at that
//!   position of the season);
//! - [`crossing`]: when the line reaches a threshold (the disk fills), if it rises (or falls)
//!   towards it.
//!
//! Pure functions of the history they are given.

use crate::Detector;
use crate::holt_winters::HoltWinters;

/// One forecast point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When (the history's time unit).
    pub t: f64,
    /// The expected value.
    pub value: f64,
    /// The interval's lower bound.
    pub lower: f64,
    /// The interval's upper bound.
    pub upper: f64,
}

/// The standard normal quantile `Φ⁻¹(p)`, `p` in (0, 1) (Acklam's rational approximation,
/// relative error below 1.2e-9: written here because `std` has none).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile with `df` degrees of freedom (Cornish–Fisher expansion around the
/// normal quantile; within 1 % for `df` ≥ 3 at the usual levels).
fn student_quantile(p: f64, df: f64) -> f64 {
    let z = normal_quantile(p);
    let (z3, z5) = (z.powi(3), z.powi(5));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z.powi(7) + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
}

/// Checks a confidence level.
fn two_sided(level: f64) -> Result<f64, String> {
    if level > 0.0 && level < 1.0 {
        Ok(0.5 + level / 2.0)
    } else {
        Err(format!("level: must be in (0, 1), got {level}"))
    }
}

/// The least-squares line through `history` (`(t, value)`, at least 3 finite points):
/// `(a, b, s)`, intercept, slope and residual standard deviation, with the mean of `t` and
/// `Σ(t − t̄)²`.
fn fit(history: &[(f64, f64)]) -> Result<(f64, f64, f64, f64, f64, f64), String> {
    let pts: Vec<(f64, f64)> = history
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    if pts.len() < 3 {
        return Err(format!("needs 3 points of history, has {}", pts.len()));
    }
    #[allow(clippy::cast_precision_loss)] // point counts
    let n = pts.len() as f64;
    let tm = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let vm = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - tm).powi(2)).sum();
    if sxx == 0.0 {
        return Err("the history's points are all at one time".into());
    }
    let b = pts.iter().map(|p| (p.0 - tm) * (p.1 - vm)).sum::<f64>() / sxx;
    let a = vm - b * tm;
    let sse: f64 = pts.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let s = (sse / (n - 2.0)).sqrt();
    Ok((a, b, s, n, tm, sxx))
}

/// A linear-trend forecast at the times `at`, with `level` (e.g. 0.95) prediction
/// intervals.
pub fn linear(history: &[(f64, f64)], at: &[f64], level: f64) -> Result<Vec<Point>, String> {
    let p = two_sided(level)?;
    let (a, b, s, n, tm, sxx) = fit(history)?;
    let q = student_quantile(p, n - 2.0);
    Ok(at
        .iter()
        .map(|&t| {
            let value = a + b * t;
            let half = q * s * (1.0 + 1.0 / n + (t - tm).powi(2) / sxx).sqrt();
            Point {
                t,
                value,
                lower: value - half,
                upper: value + half,
            }
        })
        .collect())
}

/// When the line through `history` reaches `threshold`, if it is heading there (after the
/// last point); `None` when it is flat, heading away, or the history is too short.
pub fn crossing(history: &[(f64, f64)], threshold: f64) -> Option<f64> {
    let (a, b, ..) = fit(history).ok()?;
    let last_t = history
        .iter()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    if b == 0.0 {
        return None;
    }
    let t = (threshold - a) / b;
    (t.is_finite() && t >= last_t).then_some(t)
}

/// Holt-Winters' smoothing factors for forecasts: level, trend, season.
const HW: (f64, f64, f64) = (0.3, 0.05, 0.3);

/// A seasonal forecast of the `horizon` values after `values` (equally spaced, at least two
/// seasons of `period` values), with `level` intervals: `(value, lower, upper)` for steps
/// 1..=horizon.
pub fn seasonal(
    values: &[f64],
    period: usize,
    horizon: usize,
    level: f64,
) -> Result<Vec<(f64, f64, f64)>, String> {
    let z = normal_quantile(two_sided(level)?);
    if !(2..=crate::MAX_WINDOW).contains(&period) {
        return Err(format!(
            "period: must be 2..={}, got {period}",
            crate::MAX_WINDOW
        ));
    }
    let finite = values.iter().filter(|v| v.is_finite()).count();
    if finite < 2 * period {
        return Err(format!(
            "needs two seasons ({} values) of history, has {finite}",
            2 * period
        ));
    }
    let (alpha, beta, gamma) = HW;
    let mut model = HoltWinters::new(period, alpha, beta, gamma);
    for &v in values {
        model.update(v);
    }
    Ok((1..=horizon)
        .filter_map(|h| {
            let (value, sigma) = model.forecast_ahead(h)?;
            #[allow(clippy::cast_precision_loss)] // horizons
            let hf = h as f64;
            let growth = 1.0
                + (hf - 1.0)
                    * (alpha * alpha
                        + alpha * beta * hf
                        + beta * beta * hf * (2.0 * hf - 1.0) / 6.0);
            let half = z * sigma * growth.sqrt();
            Some((value, value - half, value + half))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_right() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
        // t(10) at 97.5 % is 2.228.
        assert!((student_quantile(0.975, 10.0) - 2.228).abs() < 0.01);
    }

    #[test]
    fn a_line_is_extended_with_widening_intervals_and_its_crossing_found() {
        // A disk filling 2 GB an hour from 10 GB, with ±0.5 GB of noise.
        let mut rng = crate::SplitMix(1);
        let history: Vec<(f64, f64)> = (0..48)
            .map(|h| (f64::from(h), 10.0 + 2.0 * f64::from(h) + rng.next() - 0.5))
            .collect();
        let f = linear(&history, &[48.0, 96.0], 0.95).unwrap();
        assert!((f[0].value - 106.0).abs() < 1.0, "{f:?}");
        assert!(f[0].lower < f[0].value && f[0].value < f[0].upper);
        assert!(
            f[1].upper - f[1].lower > f[0].upper - f[0].lower,
            "further is less sure"
        );
        let full = crossing(&history, 500.0).unwrap();
        assert!((full - 245.0).abs() < 2.0, "{full}");
        assert_eq!(crossing(&history, 0.0), None, "already above it");
        assert!(linear(&history[..2], &[3.0], 0.95).is_err());
        assert!(
            linear(&history, &[3.0], 1.5)
                .unwrap_err()
                .starts_with("level")
        );
    }

    #[test]
    fn a_seasonal_series_is_forecast_by_season() {
        // A daily cycle of 24 hourly values, rising slowly.
        let day = |i: usize| {
            let h = (i % 24) as f64;
            100.0 + 0.1 * i as f64 + 30.0 * (h * std::f64::consts::TAU / 24.0).sin()
        };
        let history: Vec<f64> = (0..24 * 7).map(day).collect();
        let f = seasonal(&history, 24, 24, 0.9).unwrap();
        assert_eq!(f.len(), 24);
        for (h, (v, lo, hi)) in f.iter().enumerate() {
            let truth = day(24 * 7 + h);
            assert!((v - truth).abs() < 3.0, "step {}: {v} vs {truth}", h + 1);
            assert!(lo <= v && v <= hi);
        }
        assert!(
            seasonal(&history[..30], 24, 5, 0.9)
                .unwrap_err()
                .contains("two seasons")
        );
    }
}
