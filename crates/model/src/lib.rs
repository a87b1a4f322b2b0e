//! Dozor's shared vocabulary: the types every engine and the API agree on.
//!
//! This crate has no I/O and almost no dependencies. It holds:
//!
//! - [`TenantId`]: the validated name of a tenant. Every stored item carries one and every
//!   store call takes one; a request's tenant comes from its credentials, never from the body.
//! - [`Role`] and [`Scope`]: who a principal is and what it may do. Routes declare the
//!   [`Scope`] they need; a role grants a fixed set of scopes ([`Role::scopes`]); an API token
//!   carries an explicit subset.
//! - [`Labels`], [`Sample`] and [`Matcher`]: series identity, data points and selectors,
//!   with Prometheus' semantics (sorted labels, staleness marker, anchored regexes).
//! - [`SeriesBatch`] ([`packed`]): series with their samples in flat buffers, labels in the
//!   canonical packed form the metric store keys and logs them by.
//! - [`LogRecord`] ([`log`]): a log line or event (nanosecond time, stream labels,
//!   message, fields).
//! - [`TenantMap`]: one engine per tenant, opened on first use.
//! - [`time`]: milliseconds since the Unix epoch, the one time unit of storage and APIs.
//!
//! Architecture invariant: a `TenantId` or `Role` value is valid by construction; code that
//! holds one never re-checks it.
//!
//! ```
//! use dozor_model::{Role, Scope, TenantId};
//! let tenant: TenantId = "shop-42".parse().unwrap();
//! assert_eq!(tenant.as_str(), "shop-42");
//! assert!(Role::Operator.grants(Scope::Write));
//! assert!(!Role::Viewer.grants(Scope::Write));
//! ```

mod access;
pub mod duration;
pub mod labels;
pub mod log;
pub mod logfmt;
mod matcher;
pub mod packed;
mod tenant;
mod tenant_map;
pub mod time;

pub use access::{DataClass, ParseAccessError, Role, Scope, ScopeSet, Sight};
pub use labels::{Label, Labels, LabelsError, Sample};
pub use log::LogRecord;
pub use matcher::{BadRegex, MatchOp, Matcher};
pub use packed::SeriesBatch;
pub use tenant::{ParseTenantError, TenantId};
pub use tenant_map::TenantMap;
