//! [`TsdbError`]: what can go wrong in the metric store.

use std::path::{Path, PathBuf};

/// An error from the tsdb.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
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
    #[error("corrupt tsdb data: {0}")]
    Corrupt(String),
    /// A request is over a configured limit.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// pco failed to compress or decompress.
    #[error("cannot {0} samples: {1}")]
    Codec(&'static str, String),
}

impl TsdbError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TsdbError {
        let path = path.to_owned();
        move |source| TsdbError::Io { what, path, source }
    }

    /// Whether the error means the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, TsdbError::Io { source, .. } if source.raw_os_error() == Some(28))
    }
}

impl From<crate::encoding::Corrupt> for TsdbError {
    fn from(c: crate::encoding::Corrupt) -> TsdbError {
        TsdbError::Corrupt(c.0.to_owned())
    }
}

impl From<dozor_wal::WalError> for TsdbError {
    fn from(e: dozor_wal::WalError) -> TsdbError {
        match e {
            dozor_wal::WalError::Io { what, path, source } => TsdbError::Io { what, path, source },
            dozor_wal::WalError::Limit(m) => TsdbError::Limit(m),
            other => TsdbError::Corrupt(other.to_string()),
        }
    }
}
