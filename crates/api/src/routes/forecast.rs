//! Forecasts (seed 004's disk-full and load forecasts): `GET /api/v1/forecast` takes the
//! history a PromQL range query gives (`query`, `start`, `end`, `step`, checked as
//! `/api/v1/query_range` checks them) and projects every series `horizon` (default 1d) on
//! at the same step, with `level` (default 0.95) prediction intervals:
//!
//! - `method=linear` (default): the least-squares trend; with `threshold`, also when the
//!   trend reaches it (`crossing`, Unix seconds, or null when it is not heading there);
//! - `method=holt_winters`: additive seasonal Holt-Winters with a season of `period`
//!   (required; at least two steps, and two seasons of history).
//!
//! The answer: `{method, level, series: [{metric, points: [[t, value, lower, upper]…],
//! crossing?, error?}]}`, `t` in Unix seconds; a series that cannot be forecast (too short a
//! history) carries `error` instead of points. Reads are audited.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_detect::forecast;
use dozor_model::Scope;
use serde_json::{Value, json};

use crate::error::success;
use crate::params::Params;
use crate::policy::{Policy, Registry};
use crate::routes::alerts::text;
use crate::routes::query::{engine_options, range_spec, run};
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

/// Most forecast points per series (as a range query's).
const MAX_POINTS: i64 = 11_000;

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/forecast",
        Policy::Scope(Scope::Read),
        forecast_route,
    )
}

fn number(params: &Params, name: &str) -> Result<Option<f64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    ApiError::bad_data(format!("invalid parameter \"{name}\": not a number"))
                })
        })
        .transpose()
}

async fn forecast_route(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let spec = range_spec(&params)?;
    let step = spec.step;
    let horizon = params.duration("horizon")?.unwrap_or(24 * 3_600_000);
    if horizon <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"horizon\": must be positive",
        ));
    }
    let steps = horizon / step;
    if steps > MAX_POINTS {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"horizon\": {steps} points at this step; at most {MAX_POINTS}"
        )));
    }
    let level = number(&params, "level")?.unwrap_or(0.95);
    if !(level > 0.0 && level < 1.0) {
        return Err(ApiError::bad_data(
            "invalid parameter \"level\": must be in (0, 1)",
        ));
    }
    let threshold = number(&params, "threshold")?;
    let method = text(&params, "method").unwrap_or_else(|| "linear".into());
    let period = match method.as_str() {
        "linear" => None,
        "holt_winters" => {
            let period = params.duration("period")?.ok_or_else(|| {
                ApiError::bad_data("invalid parameter \"period\": required by holt_winters")
            })?;
            let n = period / step;
            if n < 2 || n > i64::try_from(dozor_detect::MAX_WINDOW).unwrap_or(i64::MAX) {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"period\": {n} steps; between 2 and {}",
                    dozor_detect::MAX_WINDOW
                )));
            }
            Some(usize::try_from(n).unwrap_or(2))
        }
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"method\": {other:?}; linear or holt_winters"
            )));
        }
    };
    let opts = engine_options(&state, &params)?;
    audit_read(&state, &principal, source, "forecast", params.raw()).await?;
    let result = run(&state, &principal, opts, spec).await?;
    let series = match result.value {
        dozor_promql::Value::Matrix(m) => m,
        _ => Vec::new(),
    };
    let secs = |ms: i64| {
        #[allow(clippy::cast_precision_loss)] // times in ms fit f64 exactly
        let s = ms as f64 / 1000.0;
        s
    };
    let out: Vec<Value> = series
        .iter()
        .map(|s| {
            let history: Vec<(f64, f64)> = s
                .samples
                .iter()
                .filter(|p| p.v.is_finite())
                .map(|p| (secs(p.t), p.v))
                .collect();
            let last = s.samples.last().map_or(0, |p| p.t);
            let at: Vec<i64> = (1..=steps).map(|k| last + k * step).collect();
            let points = match period {
                None => {
                    let times: Vec<f64> = at.iter().map(|&t| secs(t)).collect();
                    forecast::linear(&history, &times, level).map(|ps| {
                        ps.iter()
                            .map(|p| json!([p.t, p.value, p.lower, p.upper]))
                            .collect::<Vec<_>>()
                    })
                }
                Some(m) => {
                    let values: Vec<f64> = history.iter().map(|p| p.1).collect();
                    let n = usize::try_from(steps).unwrap_or(0);
                    forecast::seasonal(&values, m, n, level).map(|ps| {
                        ps.iter()
                            .zip(&at)
                            .map(|((v, lo, hi), &t)| json!([secs(t), v, lo, hi]))
                            .collect::<Vec<_>>()
                    })
                }
            };
            let mut one = json!({"metric": crate::history::labels_json(&s.labels)});
            match points {
                Ok(p) => one["points"] = Value::Array(p),
                Err(e) => one["error"] = Value::String(e),
            }
            if let (Some(th), None) = (threshold, period) {
                one["crossing"] = json!(forecast::crossing(&history, th));
            }
            one
        })
        .collect();
    Ok(success(json!({
        "method": method,
        "level": level,
        "series": out,
    })))
}
