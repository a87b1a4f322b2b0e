//! The `dozor` binary's library half: configuration and wiring, kept out of `main.rs` so the
//! command line stays thin and the parsers can be fuzzed and tested.
//!
//! - [`config`]: `dozor.yml` → a validated [`config::Config`] (defaults, `DOZOR_*`
//!   overrides, secrets from files, line-numbered errors).
//! - [`server`]: opens the stores, bootstraps the first administrator, builds the API and
//!   serves it until SIGTERM/SIGINT.
//! - [`rules`]: evaluates the rule groups of `rules:` on their intervals.
//! - [`notify`], [`incidents`] and [`actions`]: notifications delivered, incidents opened
//!   from alert groups with their context, automatic actions run and audited.
//! - [`kkt`]: the cash-register pack's wiring (driver-log records → fleet, metrics, OFD
//!   polls) and the simulators of `dozor sim`.
//! - [`marketplace`]: the simulated ticket marketplace of `dozor sim marketplace` and the
//!   demo, fed to the analytics routes over HTTP.
//! - [`reports`]: the report scheduler (due reports generated, pending ones e-mailed).
//! - [`demo`] and [`host`]: the generators of `dozor demo` (host readings come from the
//!   ingest crate's host collector).
//!
//! Architecture invariant: nothing here implements storage, queries or HTTP handling; it only
//! connects the engine crates.

pub mod actions;
pub mod archive;
pub mod cleanup;
pub mod config;
pub mod demo;
pub mod detect;
pub mod host;
pub mod incidents;
pub mod kkt;
pub mod marketplace;
pub mod notify;
pub mod publish;
pub mod reports;
pub mod rules;
pub mod server;
pub mod sources;
