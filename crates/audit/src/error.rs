//! [`AuditError`]: what can go wrong while writing or reading the chain.

use std::path::PathBuf;

/// An error from the audit chain. Tampering is not an error: [`crate::verify`] reports it
/// as a [`crate::Problem`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be read, written or synced.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What we tried.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The signing key file is not 64 hex digits.
    #[error("cannot load the audit signing key {0}: not 64 hex digits")]
    BadKey(PathBuf),
    /// The last record on disk does not parse, so the chain cannot continue from it.
    #[error(
        "cannot resume the audit chain: its last record does not parse ({0}); run `dozor audit verify`"
    )]
    BadTail(String),
    /// The OS random source failed.
    #[error("cannot generate the audit signing key: {0}")]
    Random(String),
}

impl AuditError {
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.to_owned();
        move |source| AuditError::Io { what, path, source }
    }
}
