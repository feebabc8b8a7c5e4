//! Work the SDK runs off the async runtime, and what a task of its own that panicked becomes: one
//! [`ErrorKind::Internal`], whichever part of the SDK ran it.

use crate::error::{Error, ErrorKind, Result};

/// Runs `f` on tokio's blocking pool, off the async runtime: key derivation, file reading, hashing.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| internal("a blocking task of the SDK", e))?
}

/// A task of the SDK's own that stopped without an answer: it panicked, which is a bug (in the SDK or in a
/// callback it ran).
pub(crate) fn internal(task: &str, e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Internal, format!("internal failure: {task} stopped without an answer")).with_source(e)
}
