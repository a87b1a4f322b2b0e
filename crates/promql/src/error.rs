//! [`PromqlError`]: why a query failed, typed after Prometheus' API error types.

use dozor_tsdb::TsdbError;

/// A failed query. [`PromqlError::kind`] gives Prometheus' `errorType` for the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromqlError {
    /// The query does not parse, or its parameters are invalid (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed on the data (`execution`), e.g. many-to-many matching.
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The caller canceled the query (`canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// More samples than `max_samples` would be held at once (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The store failed (`internal`).
    #[error("cannot read series: {0}")]
    Storage(#[from] TsdbError),
}

impl PromqlError {
    /// Prometheus' `errorType` for this error: `bad_data`, `execution`, `timeout`,
    /// `canceled` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) | PromqlError::TooManySamples(_) => "execution",
            PromqlError::Timeout(_) => "timeout",
            PromqlError::Canceled(_) => "canceled",
            PromqlError::Storage(_) => "internal",
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> PromqlError {
        PromqlError::Execution(msg.into())
    }
}
