//! Dashboards of the UI's builder (seed 004's dashboard builder over its `dashboards`
//! table), in the caller's tenant:
//!
//! - `GET /api/v1/dashboards`: the caller's own and the shared ones (all, for admins);
//! - `POST /api/v1/dashboards`: a new one, owned by the caller, 201;
//! - `GET`, `PUT`, `DELETE /api/v1/dashboards/{id}`: one the caller sees; only its owner
//!   (or an admin) changes or deletes it, and sharing is a field of the body (`shared`);
//! - `POST /api/v1/dashboards/{id}/duplicate`: a private copy owned by the caller;
//! - `GET /api/v1/dashboards/library`: the dashboards shipped with Dozor (host, Dozor, cash
//!   registers).
//!
//! The body is `{name, description?, widgets, layout?, settings?, shared?}`, checked before
//! anything is stored, each mistake a 400 naming its field (`widgets[2].query: …`): at most
//! 100 widgets, each of a known `type` (graph, stat, gauge, table, logs, alert-list) with a
//! `query` that parses as PromQL (LogQL for `logs`); `settings.variables` named as labels;
//! `settings.refresh` a duration. The format is `docs/format/dashboard.md`. A dashboard the
//! caller may not see answers 404, as one that does not exist. Reads and changes are
//! audited (`dashboard.read`, `.list`, `.create`, `.update`, `.delete`, `.duplicate`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use dozor_audit::{Entry, Outcome};
use dozor_model::Scope;
use dozor_model::time::now_ms;
use dozor_state::dashboards::{DashboardWrite, StoredDashboard};
use serde_json::{Map, Value, json};

use crate::error::success;
use crate::policy::{Policy, Registry};
use crate::routes::rules::time;
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    let read = Policy::Scope(Scope::Read);
    let write = Policy::Scope(Scope::Write);
    r.route(Method::GET, "/api/v1/dashboards", read, list)
        .route(Method::POST, "/api/v1/dashboards", write, create)
        .route(Method::GET, "/api/v1/dashboards/{id}", read, one)
        .route(Method::PUT, "/api/v1/dashboards/{id}", write, update)
        .route(Method::DELETE, "/api/v1/dashboards/{id}", write, delete)
        .route(
            Method::POST,
            "/api/v1/dashboards/{id}/duplicate",
            write,
            duplicate,
        )
        .route(Method::GET, "/api/v1/dashboards/library", read, library)
}

/// Dashboards shipped with Dozor (`crates/api/dashboards/`): this host and others under
/// node_exporter's names, Dozor itself, and the packs' (cash registers; seed 002's shop,
/// MES and CRM over `pack:shop`'s series, and the RabbitMQ queues the bus source watches).
/// Users add them to their tenant from the UI.
const LIBRARY: [(&str, &str); 5] = [
    ("host", include_str!("../../dashboards/host.json")),
    ("kkt", include_str!("../../dashboards/kkt.json")),
    ("dozor", include_str!("../../dashboards/dozor.json")),
    ("shop", include_str!("../../dashboards/shop.json")),
    ("rabbitmq", include_str!("../../dashboards/rabbitmq.json")),
];

/// `GET /api/v1/dashboards/library`: the shipped dashboards, each with its `key`.
async fn library() -> Result<impl IntoResponse, ApiError> {
    let out = LIBRARY
        .iter()
        .map(|(key, text)| {
            let mut v: Value = serde_json::from_str(text).map_err(ApiError::internal)?;
            v["key"] = json!(key);
            Ok(v)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(success(json!({ "dashboards": out })))
}

/// Widget types the UI draws.
pub const WIDGET_TYPES: [&str; 6] = ["graph", "stat", "gauge", "table", "logs", "alert-list"];
/// Most widgets on one dashboard.
const MAX_WIDGETS: usize = 100;
/// Longest name, description or title, in characters.
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;

/// A checked body: its parts as the JSON text they are stored as.
struct Checked {
    name: String,
    description: String,
    widgets: String,
    layout: String,
    settings: String,
    shared: bool,
}

fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("{field}: {why}"))
}

fn text<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(bad(field, format!("longer than {max} characters"))),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// Checks a dashboard body.
fn check(body: &[u8]) -> Result<Checked, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad("body", e))?;
    let Value::Object(obj) = v else {
        return Err(bad("body", "must be a JSON object"));
    };
    const KNOWN: [&str; 6] = [
        "name",
        "description",
        "widgets",
        "layout",
        "settings",
        "shared",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(k, "unknown field"));
    }
    let name = text(&obj, "name", MAX_NAME)?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name", "required, 1 to 200 characters"))?;
    let description = text(&obj, "description", MAX_DESCRIPTION)?.unwrap_or("");
    let widgets = match obj.get("widgets") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ws)) => ws.clone(),
        Some(_) => return Err(bad("widgets", "must be an array")),
    };
    if widgets.len() > MAX_WIDGETS {
        return Err(bad("widgets", format!("at most {MAX_WIDGETS}")));
    }
    for (i, w) in widgets.iter().enumerate() {
        check_widget(w).map_err(|(field, why)| bad(&format!("widgets[{i}].{field}"), why))?;
    }
    let layout = match obj.get("layout") {
        None | Some(Value::Null) => json!({}),
        Some(l @ (Value::Object(_) | Value::Array(_))) => l.clone(),
        Some(_) => return Err(bad("layout", "must be an object or an array")),
    };
    let settings = match obj.get("settings") {
        None | Some(Value::Null) => json!({}),
        Some(s @ Value::Object(m)) => {
            check_settings(m).map_err(|(field, why)| bad(&format!("settings.{field}"), why))?;
            s.clone()
        }
        Some(_) => return Err(bad("settings", "must be an object")),
    };
    let shared = match obj.get("shared") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("shared", "must be true or false")),
    };
    Ok(Checked {
        name: name.to_owned(),
        description: description.to_owned(),
        widgets: Value::Array(widgets).to_string(),
        layout: layout.to_string(),
        settings: settings.to_string(),
        shared,
    })
}

/// One widget; the error names the field inside it.
fn check_widget(w: &Value) -> Result<(), (String, String)> {
    let err = |f: &str, why: String| (f.to_owned(), why);
    let Value::Object(w) = w else {
        return Err(err("type", "the widget must be an object".into()));
    };
    let kind = match w.get("type") {
        Some(Value::String(t)) if WIDGET_TYPES.contains(&t.as_str()) => t.as_str(),
        _ => {
            return Err(err("type", format!("one of {}", WIDGET_TYPES.join(", "))));
        }
    };
    match w.get("title") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.chars().count() <= MAX_NAME => {}
        Some(_) => return Err(err("title", "a string of at most 200 characters".into())),
    }
    if let Some(o) = w.get("options")
        && !o.is_object()
    {
        return Err(err("options", "must be an object".into()));
    }
    let query = match w.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => Some(q.as_str()),
        None | Some(Value::Null) if kind == "alert-list" => None,
        _ => return Err(err("query", "required, a non-empty string".into())),
    };
    if let Some(q) = query {
        let parsed = if kind == "logs" {
            dozor_logs::logql::parse(q)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            dozor_promql::parse(q)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        parsed.map_err(|e| err("query", e))?;
    }
    Ok(())
}

/// `settings`: `refresh` a duration, `variables` an array of `{name, query}` named as labels.
fn check_settings(s: &Map<String, Value>) -> Result<(), (String, String)> {
    if let Some(r) = s.get("refresh") {
        match r {
            Value::String(d) if d.is_empty() || dozor_model::duration::parse(d).is_ok() => {}
            _ => return Err(("refresh".into(), "a duration such as 30s or 1m".into())),
        }
    }
    match s.get("variables") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(vars)) => {
            for (i, v) in vars.iter().enumerate() {
                let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                let ok = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err((
                        format!("variables[{i}].name"),
                        "letters, digits and _, not starting with a digit".into(),
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(("variables".into(), "must be an array".into())),
    }
}

fn dashboard_json(d: &StoredDashboard) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "widgets": parse(&d.widgets),
        "layout": parse(&d.layout),
        "settings": parse(&d.settings),
        "owner": d.owner,
        "shared": d.shared,
        "version": d.version,
        "createdAt": time(Some(d.created_at_ms)),
        "updatedBy": d.updated_by,
        "updatedAt": time(Some(d.updated_at_ms)),
    })
}

fn is_admin(p: &Principal) -> bool {
    p.scopes.contains(Scope::Admin)
}

/// The dashboard `id` if the caller may see it (its owner, shared, or an admin).
async fn visible(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<StoredDashboard, ApiError> {
    state
        .store()
        .dashboard(&principal.tenant, id)
        .await?
        .filter(|d| d.shared || d.owner == principal.actor || is_admin(principal))
        .ok_or_else(|| ApiError::not_found(format!("no dashboard {id}")))
}

/// The dashboard `id` if the caller may change it (its owner or an admin).
async fn owned(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<StoredDashboard, ApiError> {
    let d = visible(state, principal, id).await?;
    if d.owner != principal.actor && !is_admin(principal) {
        return Err(ApiError::forbidden(format!(
            "dashboard {id} belongs to {}; only its owner or an admin changes it",
            d.owner
        )));
    }
    Ok(d)
}

async fn audit(
    state: &AppState,
    principal: &Principal,
    source: String,
    action: &str,
    d: &StoredDashboard,
) -> Result<(), ApiError> {
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        action,
        format!("dashboard/{}", d.id),
        Outcome::Success,
    )
    .source(source)
    .detail("name", d.name.as_str())
    .detail("version", d.version);
    state.audit_entry(entry).await
}

fn write<'a>(c: &'a Checked, by: &'a str) -> DashboardWrite<'a> {
    DashboardWrite {
        name: &c.name,
        description: &c.description,
        widgets: &c.widgets,
        layout: &c.layout,
        settings: &c.settings,
        shared: c.shared,
        by,
        at_ms: now_ms(),
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let owner = (!is_admin(&principal)).then_some(principal.actor.as_str());
    let rows = state.store().dashboards(&principal.tenant, owner).await?;
    state
        .audit_listing(
            &principal,
            source,
            "dashboard.list",
            "dashboards",
            rows.len(),
        )
        .await?;
    let out: Vec<Value> = rows.iter().map(dashboard_json).collect();
    Ok(success(json!({ "dashboards": out })))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let d = visible(&state, &principal, &id).await?;
    audit(&state, &principal, source, "dashboard.read", &d).await?;
    Ok(success(dashboard_json(&d)))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let c = check(&body)?;
    let d = state
        .store()
        .create_dashboard(&principal.tenant, write(&c, &principal.actor))
        .await?;
    audit(&state, &principal, source, "dashboard.create", &d).await?;
    Ok((StatusCode::CREATED, success(dashboard_json(&d))))
}

async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let c = check(&body)?;
    owned(&state, &principal, &id).await?;
    let d = state
        .store()
        .update_dashboard(&principal.tenant, &id, write(&c, &principal.actor))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dashboard {id}")))?;
    audit(&state, &principal, source, "dashboard.update", &d).await?;
    Ok(success(dashboard_json(&d)))
}

async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let d = owned(&state, &principal, &id).await?;
    if !state
        .store()
        .delete_dashboard(&principal.tenant, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("no dashboard {id}")));
    }
    audit(&state, &principal, source, "dashboard.delete", &d).await?;
    Ok(success(json!({ "id": id, "deleted": true })))
}

async fn duplicate(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let from = visible(&state, &principal, &id).await?;
    let name: String = format!("{} (copy)", from.name)
        .chars()
        .take(MAX_NAME)
        .collect();
    let copy = DashboardWrite {
        name: &name,
        description: &from.description,
        widgets: &from.widgets,
        layout: &from.layout,
        settings: &from.settings,
        shared: false,
        by: &principal.actor,
        at_ms: now_ms(),
    };
    let d = state
        .store()
        .create_dashboard(&principal.tenant, copy)
        .await?;
    let entry = Entry::new(
        principal.tenant.as_str(),
        principal.actor.as_str(),
        "dashboard.duplicate",
        format!("dashboard/{}", d.id),
        Outcome::Success,
    )
    .source(source)
    .detail("from", from.id.as_str())
    .detail("name", d.name.as_str());
    state.audit_entry(entry).await?;
    Ok((StatusCode::CREATED, success(dashboard_json(&d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match check(body.as_bytes()) {
            Ok(_) => panic!("accepted: {body}"),
            Err(e) => e.message().to_owned(),
        }
    }

    #[test]
    fn the_shipped_dashboards_pass_the_checks() {
        for (key, text) in LIBRARY {
            let c = check(text.as_bytes()).unwrap_or_else(|e| panic!("{key}: {}", e.message()));
            assert!(c.widgets.len() > 100, "{key}");
        }
    }

    #[test]
    fn bodies_are_checked_and_mistakes_named() {
        let ok = check(
            br#"{"name": " Shop ", "widgets": [{"type": "graph", "title": "RPS", "query": "rate(http_requests_total[5m])"},
                {"type": "logs", "query": "{service=\"shop\"} |= \"error\""}, {"type": "alert-list"}],
                "settings": {"refresh": "30s", "variables": [{"name": "service", "query": "label_values(service)"}]},
                "shared": true}"#,
        )
        .unwrap_or_else(|e| panic!("{}", e.message()));
        assert_eq!(
            (ok.name.as_str(), ok.shared, ok.layout.as_str()),
            ("Shop", true, "{}")
        );
        assert!(err("[]").starts_with("body: must be a JSON object"));
        assert!(err("{").starts_with("body:"));
        assert!(err(r#"{"widgets": []}"#).starts_with("name: required"));
        assert!(err(r#"{"name": "x", "colour": 1}"#).starts_with("colour: unknown field"));
        assert!(err(r#"{"name": "x", "widgets": [{"type": "graph", "query": "up"}, {"type": "pie", "query": "up"}]}"#)
            .starts_with("widgets[1].type: one of graph"));
        assert!(
            err(r#"{"name": "x", "widgets": [{"type": "stat", "query": "sum("}]}"#)
                .starts_with("widgets[0].query:")
        );
        assert!(
            err(r#"{"name": "x", "widgets": [{"type": "logs", "query": "up"}]}"#)
                .starts_with("widgets[0].query:")
        );
        assert!(
            err(r#"{"name": "x", "widgets": [{"type": "graph"}]}"#)
                .starts_with("widgets[0].query: required")
        );
        assert!(err(r#"{"name": "x", "widgets": [7]}"#).starts_with("widgets[0].type:"));
        assert!(
            err(r#"{"name": "x", "settings": {"refresh": "soon"}}"#)
                .starts_with("settings.refresh:")
        );
        assert!(
            err(r#"{"name": "x", "settings": {"variables": [{"name": "9x"}]}}"#)
                .starts_with("settings.variables[0].name:")
        );
        assert!(err(r#"{"name": "x", "shared": "yes"}"#).starts_with("shared:"));
        let many = format!(
            r#"{{"name": "x", "widgets": [{}]}}"#,
            vec![r#"{"type": "alert-list"}"#; 101].join(",")
        );
        assert!(err(&many).starts_with("widgets: at most 100"));
    }
}
