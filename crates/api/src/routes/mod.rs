//! Every route of the API, registered with its policy. One file per area; each exposes
//! `register(Registry) -> Registry`.

mod admin;
mod ai;
pub mod alert_rules;
pub mod alertmanager;
mod alerts;
pub mod analytics;
mod anomalies;
pub mod audit;
mod auth;
mod chain;
mod dashboard;
pub mod dashboards;
mod elasticsearch;
mod forecast;
mod grafana;
mod health;
pub(crate) mod incidents;
mod ingest;
mod interact;
pub mod kkt;
mod logs;
mod loki;
pub(crate) mod loki_query;
mod loki_tail;
mod metrics;
pub(crate) mod query;
pub mod reports;
mod rules;
mod series;
mod slos;
mod status;
mod tokens;
mod users;
mod ws;

pub use crate::params::parse_time;
pub use series::parse_selector;
pub use users::check_user_name;

use crate::policy::Registry;

/// The registry holding every route of this build.
pub fn registry() -> Registry {
    let r = Registry::new();
    let r = health::register(r);
    let r = status::register(r);
    let r = auth::register(r);
    let r = tokens::register(r);
    let r = users::register(r);
    let r = ingest::register(r);
    let r = logs::register(r);
    let r = elasticsearch::register(r);
    let r = loki::register(r);
    let r = loki_query::register(r);
    let r = loki_tail::register(r);
    let r = series::register(r);
    let r = query::register(r);
    let r = rules::register(r);
    let r = alerts::register(r);
    let r = alert_rules::register(r);
    let r = dashboards::register(r);
    let r = alertmanager::register(r);
    let r = incidents::register(r);
    let r = interact::register(r);
    let r = anomalies::register(r);
    let r = forecast::register(r);
    let r = metrics::register(r);
    let r = grafana::register(r);
    let r = admin::register(r);
    let r = ws::register(r);
    let r = ai::register(r);
    let r = slos::register(r);
    let r = kkt::register(r);
    let r = reports::register(r);
    let r = analytics::register(r);
    let r = chain::register(r);
    let r = dashboard::register(r);
    audit::register(r)
}
