//! `dozor sim ofd`: an OFD-like HTTP API over the simulated fleet, in the three dialects the
//! client speaks (`KKT.md` §3.5), so that the client is tested against real HTTP with real
//! shapes. The fleet is [`crate::sim::Sim`] with the same options as the driver-log writer,
//! advanced to the wall clock on each request, so both views agree.
//!
//! `POST /mock/control` with `{"mode": "ok" | "outage" | "slow" | "malformed"}` scripts
//! failures: `outage` answers 503, `slow` answers after 30 s, `malformed` answers 200 with a
//! body that is not the promised JSON; `"revoke": true` forgets every session, as an OFD
//! does when its tokens expire.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sim::{Sim, SimOptions};

/// Credentials and fleet of the simulated OFD.
#[derive(Debug, Clone)]
pub struct OfdSimConfig {
    /// The fleet.
    pub sim: SimOptions,
    /// Login of the ОФД.ру and Такском dialects (and basic auth of the neutral one).
    pub login: String,
    /// Its password.
    pub password: String,
    /// Bearer token of the neutral dialect.
    pub token: String,
    /// Такском's `Integrator-ID`.
    pub integrator_id: String,
    /// The organisation's INN (ОФД.ру's path).
    pub inn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Ok,
    Outage,
    Slow,
    Malformed,
}

struct Shared {
    config: OfdSimConfig,
    sim: Mutex<Sim>,
    sessions: Mutex<HashSet<String>>,
    mode: Mutex<Mode>,
}

type St = State<Arc<Shared>>;

/// The simulated OFD's routes.
pub fn router(config: OfdSimConfig) -> axum::Router {
    let shared = Arc::new(Shared {
        sim: Mutex::new(Sim::new(config.sim.clone())),
        config,
        sessions: Mutex::new(HashSet::new()),
        mode: Mutex::new(Mode::Ok),
    });
    axum::Router::new()
        .route("/mock/v1/kkts", get(neutral_list))
        .route("/mock/v1/kkts/{reg}/status", get(neutral_one))
        .route("/mock/control", post(control))
        .route("/api/Authorization/CreateAuthToken", post(ofdru_login))
        .route("/api/integration/v1/inn/{inn}/kkts", get(ofdru_kkts))
        .route("/API/v2/Login", post(taxcom_login))
        .route("/API/v2/OutletList", get(taxcom_outlets))
        .route("/API/v2/KKTList", get(taxcom_kkts))
        .route("/API/v2/KKTInfo", get(taxcom_info))
        .with_state(shared)
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: OfdSimConfig) -> std::io::Result<()> {
    axum::serve(listener, router(config)).await
}

impl Shared {
    /// The fleet's OFD view at the wall clock, or the scripted failure.
    async fn view(&self) -> Result<Vec<Value>, Response> {
        let mode = *self.mode.lock().unwrap_or_else(PoisonError::into_inner);
        match mode {
            Mode::Ok => {}
            Mode::Outage => {
                return Err((StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response());
            }
            Mode::Slow => tokio::time::sleep(Duration::from_secs(30)).await,
            Mode::Malformed => {
                return Err((StatusCode::OK, "<html>Bad gateway</html>").into_response());
            }
        }
        let mut sim = self.sim.lock().unwrap_or_else(PoisonError::into_inner);
        sim.step(dozor_model::time::now_ms());
        Ok(sim.ofd_view())
    }

    fn new_session(&self) -> String {
        let token = format!("{:032x}", fastrand::u128(..));
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone());
        token
    }

    fn has_session(&self, token: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(token)
    }

    fn credentials_ok(&self, login: Option<&str>, password: Option<&str>) -> bool {
        login == Some(self.config.login.as_str()) && password == Some(self.config.password.as_str())
    }
}

fn refuse() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"Status": "Failed", "Error": "access denied"})),
    )
        .into_response()
}

fn neutral_authorized(s: &Shared, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return !s.config.token.is_empty() && token == s.config.token;
    }
    auth.strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| {
            let (l, p) = pair.split_once(':').unwrap_or((&pair, ""));
            s.credentials_ok(Some(l), Some(p))
        })
}

async fn neutral_list(State(s): St, headers: HeaderMap) -> Response {
    if !neutral_authorized(&s, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    match s.view().await {
        Ok(v) => Json(Value::Array(v)).into_response(),
        Err(r) => r,
    }
}

async fn neutral_one(State(s): St, headers: HeaderMap, Path(reg): Path<String>) -> Response {
    if !neutral_authorized(&s, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    match s.view().await {
        Ok(v) => match v.into_iter().find(|k| k["kkt_reg_number"] == reg.as_str()) {
            Some(k) => Json(k).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "unknown register"})),
            )
                .into_response(),
        },
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct Control {
    mode: Mode,
    #[serde(default)]
    revoke: bool,
}

async fn control(State(s): St, Json(c): Json<Control>) -> StatusCode {
    *s.mode.lock().unwrap_or_else(PoisonError::into_inner) = c.mode;
    if c.revoke {
        s.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
    StatusCode::NO_CONTENT
}

async fn ofdru_login(State(s): St, body: Json<Value>) -> Response {
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    if !s.credentials_ok(field("Login").as_deref(), field("Password").as_deref()) {
        return refuse();
    }
    let expires =
        dozor_model::time::rfc3339_ns((dozor_model::time::now_ms() + 86_400_000) * 1_000_000);
    Json(json!({"AuthToken": s.new_session(), "ExpirationDateUtc": expires.trim_end_matches('Z')}))
        .into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(rename = "AuthToken")]
    auth_token: Option<String>,
}

/// `2026-11-23T09:00:00.000Z` → `2026-11-23T09:00:00`, as ОФД.ру writes its dates.
fn naive(v: &Value) -> Value {
    v.as_str().map_or(Value::Null, |s| {
        let s = s.trim_end_matches('Z');
        Value::String(s.split('.').next().unwrap_or(s).to_owned())
    })
}

async fn ofdru_kkts(
    State(s): St,
    Path(inn): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if !q.auth_token.as_deref().is_some_and(|t| s.has_session(t)) {
        return refuse();
    }
    if inn != s.config.inn {
        return Json(json!({"Status": "Success", "Data": []})).into_response();
    }
    match s.view().await {
        Ok(v) => {
            let data: Vec<Value> = v
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    json!({
                        "Id": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
                        "KktRegId": k["kkt_reg_number"],
                        "KktName": format!("Касса {}", i + 1),
                        "SerialNumber": "",
                        "FnNumber": k["fn_number"],
                        "ActivationDate": "2025-01-15T00:00:00",
                        "FirstDocumentDate": "2025-01-15T09:12:00",
                        "ContractStartDate": "2025-01-15T00:00:00",
                        "ContractEndDate": naive(&k["contract_end_at"]),
                        "LastDocOnKktDateTime": naive(&k["last_document_at_kkt"]),
                        "LastDocOnOfdDateTimeUtc": naive(&k["last_document_at_ofd"]),
                        "FiscalAddress": "г. Москва, ул. Примерная, д. 1",
                        "FiscalPlace": "Магазин",
                        "Path": "",
                        "KktModel": "",
                        "FnEndDate": naive(&k["fn_end_at"]),
                    })
                })
                .collect();
            Json(json!({"Status": "Success", "Data": data})).into_response()
        }
        Err(r) => r,
    }
}

async fn taxcom_login(State(s): St, headers: HeaderMap, body: Json<Value>) -> Response {
    let integrator = headers.get("integrator-id").and_then(|v| v.to_str().ok());
    if integrator != Some(s.config.integrator_id.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"commonDescription": "Integrator-ID is missing or unknown"})),
        )
            .into_response();
    }
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    if !s.credentials_ok(field("login").as_deref(), field("password").as_deref()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"commonDescription": "wrong login or password"})),
        )
            .into_response();
    }
    Json(json!({"sessionToken": s.new_session()})).into_response()
}

fn taxcom_session(s: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get("session-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| s.has_session(t))
}

fn envelope(records: Vec<Value>) -> Value {
    let n = records.len();
    json!({
        "reportDate": dozor_model::time::rfc3339_ns(dozor_model::time::now_ms() * 1_000_000),
        "counts": {"recordCount": n, "recordFilteredCount": n, "recordInResponceCount": n},
        "records": records,
    })
}

async fn taxcom_outlets(State(s): St, headers: HeaderMap) -> Response {
    if !taxcom_session(&s, &headers) {
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    if let Err(r) = s.view().await {
        return r;
    }
    Json(envelope(vec![json!({"id": "1", "name": "Магазин №1", "code": "1", "address": "г. Москва", "problemIndicator": 0})]))
        .into_response()
}

#[derive(Deserialize)]
struct IdQuery {
    id: Option<String>,
    #[serde(rename = "fn")]
    fn_number: Option<String>,
}

async fn taxcom_kkts(State(s): St, headers: HeaderMap, Query(q): Query<IdQuery>) -> Response {
    if !taxcom_session(&s, &headers) {
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    if q.id.as_deref() != Some("1") {
        return Json(envelope(Vec::new())).into_response();
    }
    match s.view().await {
        Ok(v) => Json(envelope(
            v.iter()
                .map(|k| {
                    json!({
                        "name": "Касса",
                        "kktRegNumber": k["kkt_reg_number"],
                        "kktFactoryNumber": "",
                        "fnFactoryNumber": k["fn_number"],
                        "cashdeskState": taxcom_state(&k["state"]),
                        "problemIndicator": 0,
                    })
                })
                .collect(),
        ))
        .into_response(),
        Err(r) => r,
    }
}

fn taxcom_state(state: &Value) -> &'static str {
    match state.as_str() {
        Some("fn_expiring") => "Expires",
        Some("fn_expired") => "Expired",
        _ => "Active",
    }
}

async fn taxcom_info(State(s): St, headers: HeaderMap, Query(q): Query<IdQuery>) -> Response {
    if !taxcom_session(&s, &headers) {
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    let view = match s.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(k) = view
        .iter()
        .find(|k| Some(k["fn_number"].as_str().unwrap_or_default()) == q.fn_number.as_deref())
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"commonDescription": "FN not found"})),
        )
            .into_response();
    };
    let fn_state = taxcom_state(&k["state"]);
    Json(json!({
        "reportDate": dozor_model::time::rfc3339_ns(dozor_model::time::now_ms() * 1_000_000),
        "cashdesk": {
            "name": "Касса",
            "kktRegNumber": k["kkt_reg_number"],
            "kktFactoryNumber": "",
            "kktModelName": "",
            "fnFactoryNumber": k["fn_number"],
            "fnRegDateTime": "2025-01-15T09:00:00",
            "fnDuration": 15,
            "fnEndDateTime": k["fn_end_at"],
            "fnState": fn_state,
            "shiftStatus": if k["shift"] == "open" { "Open" } else { "Close" },
            "cashdeskState": fn_state,
            "cashdeskEndDateTime": k["contract_end_at"],
            "lastDocumentState": match k["last_document_state"].as_str() { Some("problem") => "Problem", Some("warning") => "Warning", _ => "OK" },
            "lastDocumentDateTime": k["last_document_at_ofd"],
            "outlet": {"name": "Магазин №1", "address": "г. Москва"},
        }
    }))
    .into_response()
}
