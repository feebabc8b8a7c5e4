use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot be reached or refused the connection: callers answer 503 and clients retry.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// A uniqueness rule was hit (an email already registered, an app id reused).
    #[error("already exists")]
    AlreadyExists,
    /// Anything else: a bug, corrupt data, a failed migration.
    #[error("storage failure")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// Wraps an engine error as [`StoreError::Unavailable`].
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }

    /// Wraps an engine error as [`StoreError::Other`].
    pub fn other(err: impl Into<BoxError>) -> Self {
        Self::Other(err.into())
    }
}
