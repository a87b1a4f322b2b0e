//! Dozor's rule engine.
//!
//! - [`file`] reads Prometheus rule files (`groups`, `record`/`alert`, `expr`, `for`,
//!   `keep_firing_for`, `labels`, `annotations`, `interval`, `query_offset`, `limit`) and
//!   checks them as Prometheus does, naming file, line, group and rule in every error; a
//!   group of `type: logql` holds LogQL metric queries over logs and events instead, and
//!   alerting rules may set `cooldown` and `flapping`.
//! - [`group`] evaluates a group at a time against any [`dozor_tsdb::Queryable`] (and,
//!   for LogQL groups, any [`dozor_logs::logql::Source`]):
//!   recording rules write their results back, alerting rules move alerts through
//!   pending → firing → resolved and write `ALERTS`/`ALERTS_FOR_STATE`, staleness markers
//!   end series that disappear, and a restarted server restores `for` timers.
//! - [`template`] expands labels and annotations in Go's template language with
//!   Prometheus' functions (`humanize`, `printf`, `query`…).
//! - [`unit`] runs `promtool test rules` files; [`mem`] is the in-memory store they load.
//! - [`packs`] are the rule files shipped with Dozor (seed 001's pipeline rules).
//! - [`set`] holds a server's groups by tenant, shared by the scheduler and the API.
//! - [`structured`] compiles seed 003's rule kinds (threshold, trend, anomaly with the
//!   detectors of [`dozor_detect`], composite), which users manage through the API, into
//!   alerting rules.
//!
//! The crate does no I/O of its own beyond reading the files it is given: the server
//! schedules groups and owns the store they write to.

pub mod file;
pub mod group;
pub mod mem;
pub mod packs;
pub mod set;
pub mod slo;
pub mod structured;
pub mod template;
pub mod unit;

pub use file::{Expression, Rule, RuleError, RuleGroup, RuleKind};
pub use group::{Alert, AlertState, Group, Health, RuleState, Transition};
pub use set::{RuleSet, TenantGroup};
