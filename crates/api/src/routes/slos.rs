//! `GET /api/v1/slos`: the caller's tenant's service-level objectives (`slos` in
//! `dozor.yml`) with what their data says now — the error ratio over the SLO's window, the
//! error budget left (1 = untouched, 0 = spent, negative = overspent), and how fast it
//! burns over 1 h, 6 h, 1 d and 3 d (1 = exactly on budget). Computed from the counters,
//! as the caller's role sees them; the burn-rate alerts themselves are rules
//! (`dozor_rules::slo`). Audited as a metrics read.

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;
use dozor_model::Scope;
use dozor_model::time::now_ms;
use serde_json::{Value, json};

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::routes::ai::instant_number;
use crate::routes::series::audit_read;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::GET,
        "/api/v1/slos",
        Policy::Scope(Scope::Read),
        slos,
    )
}

async fn slos(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    audit_read(&state, &principal, source, "slos", "").await?;
    let now = now_ms();
    let mut out = Vec::new();
    for (tenant, slo) in &state.settings().slos {
        if tenant != &principal.tenant {
            continue;
        }
        let ratio = |range: String| {
            format!(
                "sum(increase({}[{range}])) / sum(increase({}[{range}]))",
                slo.errors, slo.total
            )
        };
        let budget = slo.budget();
        let over_window = instant_number(
            &state,
            &principal,
            &ratio(format!("{}d", slo.window_days)),
            now,
        )
        .await;
        let mut burn = serde_json::Map::new();
        for w in ["1h", "6h", "1d", "3d"] {
            let r = instant_number(&state, &principal, &ratio(w.to_owned()), now).await;
            burn.insert(
                w.to_owned(),
                r.map_or(Value::Null, |r| json!(round(r / budget))),
            );
        }
        out.push(json!({
            "name": slo.name,
            "objective": slo.objective,
            "windowDays": slo.window_days,
            "errorRatio": over_window.map(round),
            "budgetRemaining": over_window.map(|r| round(1.0 - r / budget)),
            "burnRate": burn,
            "errors": slo.errors,
            "total": slo.total,
        }));
    }
    Ok(success(json!({ "slos": out })))
}

/// Six significant decimals: enough for a ratio, readable in JSON.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
