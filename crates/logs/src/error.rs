//! [`LogsError`]: what can go wrong in the log store.

use std::path::{Path, PathBuf};

/// An error from the log store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogsError {
    /// A file operation failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What we tried.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Stored data does not decode.
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    /// An encryption key is malformed, missing, or not the one a part was sealed with.
    #[error("log encryption: {0}")]
    Encryption(String),
    /// A record or request is over a limit.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl LogsError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogsError {
        let path = path.to_owned();
        move |source| LogsError::Io { what, path, source }
    }

    /// Whether the error means the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogsError::Io { source, .. } if source.raw_os_error() == Some(28))
    }
}

impl From<dozor_model::packed::Corrupt> for LogsError {
    fn from(c: dozor_model::packed::Corrupt) -> LogsError {
        LogsError::Corrupt(c.0.to_owned())
    }
}

impl From<dozor_wal::WalError> for LogsError {
    fn from(e: dozor_wal::WalError) -> LogsError {
        match e {
            dozor_wal::WalError::Io { what, path, source } => LogsError::Io { what, path, source },
            dozor_wal::WalError::Limit(m) => LogsError::Limit(m),
            other => LogsError::Corrupt(other.to_string()),
        }
    }
}
