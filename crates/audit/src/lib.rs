//! Dozor's audit chain: a tamper-evident, append-only record of security-relevant actions.
//!
//! Every [`Record`] holds the SHA-256 hash of the record before it, so editing, deleting or
//! reordering any record breaks the chain from that point on. Every
//! [`AuditLog::CHECKPOINT_EVERY`] records, and when the log closes, a [`Checkpoint`] signs the
//! current head (sequence number and hash) with an Ed25519 key generated at first start; a
//! verifier holding the public key can then tell a rewritten chain (all hashes recomputed)
//! from the real one. [`verify`] walks the files and reports the first bad record.
//!
//! Data enters through [`AuditLog::append`] (an [`Entry`]: who did what to which object, with
//! what outcome) and leaves as lines of JSON in `<data-dir>/audit/chain.jsonl`; the on-disk
//! layout is in `docs/format/audit.md` and every file name in [`files`]. [`search`] and
//! [`export`] read it back through a [`Filter`].
//!
//! Architecture invariants:
//! - An `append` that returned `Ok` is on disk (`fsync`ed) before the caller acknowledges the
//!   action it records.
//! - Records are never rewritten; the only write to an existing file is appending, and
//!   cutting a torn last line left by a crash (it was never acknowledged).
//! - This crate does no networking and knows nothing of HTTP or the state store.
//!
//! ```
//! use dozor_audit::{AuditLog, Entry, Outcome, verify};
//! let dir = tempfile::tempdir().unwrap();
//! let log = AuditLog::open(dir.path()).unwrap();
//! log.append(Entry::new("default", "alice", "auth.login", "user/alice", Outcome::Success)).unwrap();
//! log.close().unwrap();
//! let report = verify(dir.path()).unwrap();
//! assert_eq!(report.records, 1);
//! assert!(report.problem.is_none());
//! ```

mod chain;
mod checkpoint;
mod error;
pub mod files;
mod record;
mod search;
mod verify;

pub use chain::{AuditLog, Pruned};
pub use checkpoint::Checkpoint;
pub use error::AuditError;
pub use record::{Entry, Outcome, Record};
pub use search::{Filter, export, search};
pub use verify::{Problem, ProblemKind, Report, verify};
