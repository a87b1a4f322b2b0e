//! Dozor's notification model, Alertmanager's: a routing tree ([`route`]), Alertmanager's
//! matcher syntax ([`matchers`]), grouping with `group_wait` / `group_interval` /
//! `repeat_interval` and Alertmanager's deduplication ([`dispatch`]), and the webhook
//! payload v4 ([`webhook`]) and the chat receivers' messages ([`chat`]: Slack, Discord). Pure: no I/O, time passed in, so every timing rule is tested
//! with a clock the test drives.
//!
//! The binary (`crates/dozor/src/notify.rs`, `alerting.config_file`) feeds it the default
//! tenant's alerts and delivers webhook notifications. Still to come: silences, inhibition,
//! time intervals, escalation, the other receivers, the Alertmanager API v2, incidents.

pub mod chat;
pub mod config;
pub mod dispatch;
pub mod matchers;
pub mod route;
pub mod webhook;

pub use dispatch::{Alert, Dispatcher, Notification};
pub use route::{Route, RouteConfig};
