//! Results on stdout as JSON: one object per result, one per line for lists.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Prints one JSON object per line and flushes, so a consumer has them before the caller moves on (pull saves
/// its cursor only after this returns).
pub fn lines<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for item in items {
        // Serialised first so a write error stays an io::Error (a closed pipe ends quietly, see errors.rs).
        let mut line = serde_json::to_vec(&item)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one JSON object.
pub fn one<T: Serialize>(item: T) -> Result<()> {
    lines([item])
}
