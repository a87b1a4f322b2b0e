//! Dozor's notification model, Alertmanager's: a routing tree ([`route`]), Alertmanager's
//! matcher syntax ([`matchers`]), grouping with `group_wait` / `group_interval` /
//! `repeat_interval` and Alertmanager's deduplication ([`dispatch`]), and the webhook
//! payload v4 ([`webhook`]) and the chat receivers' messages ([`chat`]: Slack, Discord). Pure: no I/O, time passed in, so every timing rule is tested
//! with a clock the test drives.
//!
//! Muting: silences ([`silence`]), inhibition ([`inhibit`]) and time intervals
//! ([`timeinterval`]); one tenant's alerts, silences and dispatcher ([`manager`]), every
//! tenant's behind one lock ([`shared`]); the Alertmanager API v2 request bodies ([`api`]);
//! e-mail messages ([`email`]); Alertmanager's notification templates ([`template`], over
//! `dozor-gotmpl`), which every receiver's text fields take; the configuration's text with
//! its secrets masked for display ([`redact`]).
//!
//! Beyond Alertmanager: the SendGrid, Twilio and Teams messages ([`messaging`]), the
//! integrations' `http_config` ([`http`]), incidents from alert groups ([`incident`]),
//! automatic actions ([`action`]), escalation policies ([`escalation`]) and on-call
//! rotations ([`oncall`]), and chat buttons with Slack's signature check ([`interact`]).
//!
//! The binary (`crates/dozor/src/notify.rs`, `incidents.rs`, `actions.rs`) feeds it every
//! tenant's alerts and does the I/O; the API (`routes/alertmanager.rs`, `incidents.rs`,
//! `interact.rs`) serves Alertmanager's API v2, incidents and the chat buttons from it.

pub mod action;
pub mod api;
pub mod chat;
pub mod config;
pub mod dispatch;
pub mod email;
pub mod escalation;
pub mod http;
pub mod incident;
pub mod inhibit;
pub mod interact;
pub mod manager;
pub mod matchers;
pub mod messaging;
pub mod oncall;
pub mod redact;
pub mod route;
pub mod shared;
pub mod silence;
pub mod template;
pub mod timeinterval;
pub mod webhook;

pub use dispatch::{Alert, Dispatcher, Notification};
pub use manager::Manager;
pub use route::{Route, RouteConfig};
