//! Dozor's pack for Russian cash registers (ККТ) under law 54-FZ.
//!
//! - [`model`]: document kinds, settlement types, the FN's flags and the catalogue of driver
//!   error codes (what each means, whether sales stop, what to do);
//! - [`event`]: the driver log's JSON lines, parsed tolerantly, errors naming the field;
//! - [`fleet`]: a tenant's registers — state from driver events and OFD polls, the metrics
//!   of `KKT.md` §3.2 and seed 000's names as samples, and the API's views;
//! - [`ofd`]: OFD API clients (ОФД.ру, Такском, a neutral gateway);
//! - [`sim`] and [`sim_ofd`]: a deterministic fleet with injected faults and its ground
//!   truth, writing driver logs (`dozor sim kkt`) and serving an OFD API (`dozor sim ofd`).
//!
//! The shipped alert rules are `rules/kkt-54fz.yml` ([`RULES`]), unit-tested by
//! `rules/kkt-54fz.test.yml` with `dozor test rules`.

pub mod event;
pub mod fleet;
pub mod model;
pub mod ofd;
pub mod sim;
pub mod sim_ofd;

pub use event::{Event, ParseError, parse_line};
pub use fleet::{Fleet, FleetOptions};

/// The shipped alert rules (`rules/kkt-54fz.yml`), for loading without a file.
pub const RULES: &str = include_str!("../rules/kkt-54fz.yml");
