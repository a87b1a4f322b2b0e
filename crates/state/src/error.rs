//! [`StateError`]: what can go wrong in the state store.

/// An error from the state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The URL is neither `sqlite:…` nor `postgres://…` (the URL itself is not repeated: it
    /// may hold a password).
    #[error("cannot open the state store: the URL must start with sqlite: or postgres://")]
    BadUrl,
    /// Applying migrations failed.
    #[error("cannot migrate the state store: {0}")]
    Migrate(String),
    /// A query failed.
    #[error("cannot {what}: {source}")]
    Query {
        /// What we tried to do.
        what: &'static str,
        /// The database's error.
        source: sqlx::Error,
    },
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value no longer parses (a role or scope name unknown to this binary).
    #[error("corrupt value in the state store: {0}")]
    Corrupt(String),
    /// The OS random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
}

impl StateError {
    /// Maps a `sqlx::Error` to [`StateError::Query`] with a "cannot <verb>" context.
    pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> StateError {
        move |source| StateError::Query { what, source }
    }

    /// Whether the error is a violated unique constraint.
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}
