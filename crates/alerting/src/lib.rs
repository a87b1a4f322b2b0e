//! Dozor's notification model, Alertmanager's: a routing tree ([`route`]), Alertmanager's
//! matcher syntax ([`matchers`]), grouping with `group_wait` / `group_interval` /
//! `repeat_interval` and Alertmanager's deduplication ([`dispatch`]), and the webhook
//! payload v4 ([`webhook`]). Pure: no I/O, time passed in, so every timing rule is tested
//! with a clock the test drives.
//!
//! Issue 9 builds on it: silences, inhibition, time intervals, escalation, the receivers'
//! HTTP/SMTP delivery, the Alertmanager API v2 and incidents. Until the binary wires it up
//! (`alerting:` in `dozor.yml`), nothing in Dozor sends notifications through it.

pub mod config;
pub mod dispatch;
pub mod matchers;
pub mod route;
pub mod webhook;

pub use dispatch::{Alert, Dispatcher, Notification};
pub use route::{Route, RouteConfig};
