//! Every file name of the audit chain, in one place. Layout: `docs/format/audit.md`.

use std::path::{Path, PathBuf};

/// The directory under the data directory that holds the chain.
pub const DIR: &str = "audit";
/// Records, one JSON object per line.
pub const CHAIN: &str = "chain.jsonl";
/// Signed checkpoints, one JSON object per line.
pub const CHECKPOINTS: &str = "checkpoints.jsonl";
/// The Ed25519 signing key: 32 bytes as 64 hex digits (mode 0600).
pub const SIGNING_KEY: &str = "signing.key";
/// The Ed25519 public key: 32 bytes as 64 hex digits; give it to auditors.
pub const PUBLIC_KEY: &str = "signing.pub";

/// The audit directory under a data directory.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}
