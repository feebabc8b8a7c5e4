use deadpool_postgres::PoolError;
use synckit_store::StoreError;
use tokio_postgres::error::SqlState;

/// Engine errors that a retry after a moment can fix are "unavailable"; the rest are failures.
pub(crate) fn db_error(err: tokio_postgres::Error) -> StoreError {
    match err.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::AlreadyExists,
        // A push gave up waiting for its stream's head-row lock (`lock_timeout`): another instance is writing to the
        // stream, or something holds the row. Retrying shortly is the cure.
        Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE => StoreError::unavailable(err),
        Some(code) if is_transient(code.code()) => StoreError::unavailable(err),
        Some(_) => StoreError::other(err),
        // A refused server certificate (wrong CA or host name) is configuration: retrying cannot fix it.
        None if crate::tls::is_certificate_error(&err) => StoreError::other(format!(
            "the Postgres server's TLS certificate was refused ({}); check sslmode and sslrootcert in \
             SYNCKIT_DATABASE_URL",
            std::error::Error::source(&err).map_or_else(|| err.to_string(), ToString::to_string)
        )),
        // No SQLSTATE: the connection broke or could not be made, or the client itself failed (a bug).
        None if err.is_closed() || source_is_io(&err) => StoreError::unavailable(err),
        None => StoreError::other(err),
    }
}

pub(crate) fn pool_error(err: PoolError) -> StoreError {
    match err {
        PoolError::Backend(e) => db_error(e),
        PoolError::Timeout(_) | PoolError::Closed => StoreError::unavailable(err),
        other => StoreError::other(other),
    }
}

fn source_is_io(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Connection exceptions (08), insufficient resources (53), operator intervention (57: shutdown, recovery, and a
/// statement cancelled by `statement_timeout`) and serialization failures or deadlocks (40).
fn is_transient(code: &str) -> bool {
    ["08", "53", "57", "40"].iter().any(|class| code.starts_with(class))
}
