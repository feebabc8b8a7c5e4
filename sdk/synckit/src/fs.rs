//! Replacing a file so that a crash leaves the old one or the new one, never half of one: the SDK's key and cursor
//! files, and the CLI's profile, are all written this way.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("settings.json");
//! synckit::fs::write_atomic(&path, b"{}").unwrap();
//! synckit::fs::write_atomic(&path, br#"{"theme": "dark"}"#).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), br#"{"theme": "dark"}"#);
//! ```

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;

/// At most this much of the destination's name goes into a temporary file's: with the dots, the random part and
/// the suffix, that stays well within the 255 bytes a name may have.
pub(crate) const MAX_TEMP_NAME_PART: usize = 200;

/// Replaces the file at `path` with `bytes`, atomically and durably, readable and writable by its owner only
/// (mode 0600 on Unix, whatever mode a file it replaces had): what goes through here holds keys and session
/// tokens.
///
/// The bytes go to a new temporary file in the same directory (a rename is atomic only within one file system),
/// which is flushed to disk and renamed over `path`; then the directory is flushed too, since the rename is
/// durable only once the directory entry is. A failure leaves `path` as it was and removes the temporary file.
/// The directory must exist.
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("token");
/// std::fs::write(&path, b"old").unwrap();
/// synckit::fs::write_atomic(&path, b"secret").unwrap();
/// assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
/// # }
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file path", path.display())))?;
    let dir = containing_dir(path);
    let prefix = temp_prefix(name);
    let mut builder = tempfile::Builder::new();
    // A fresh, randomly named file (created exclusively), so two processes saving at once never share one.
    builder.prefix(&prefix).suffix(".tmp");
    owner_only(&mut builder);
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    // Dropped on failure, the temporary file deletes itself.
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Creates the temporary file readable and writable by its owner only. Said here rather than left to tempfile's
/// default, which is the same today: a secret's mode is not to depend on a dependency's choice.
fn owner_only(builder: &mut tempfile::Builder<'_, '_>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = builder;
}

/// The directory a file path is in: `.` for a bare file name.
pub(crate) fn containing_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.{name}.`, with the name cut short (on a character boundary) so a temporary file's name stays a legal one
/// however long the destination's is.
pub(crate) fn temp_prefix(name: &OsStr) -> String {
    let name = name.to_string_lossy();
    let mut end = name.len().min(MAX_TEMP_NAME_PART);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.", &name[..end])
}

/// Makes a rename in `dir` durable, where the platform can sync a directory (elsewhere there is nothing to do).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) { std::fs::File::open(dir).and_then(|d| d.sync_all()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursors.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        write_atomic(&path, b"3rd").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"3rd", "no bytes of a longer file before it remain");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["cursors.json"], "no temporary file is left");
    }

    #[test]
    fn a_failed_write_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        write_atomic(&path, b"old").unwrap();
        // A directory where the file should be: the rename fails, after the temporary file was written.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(blocked.is_dir());
        assert!(write_atomic(&dir.path().join("missing/profile.json"), b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["blocked", "profile.json"], "the temporary file was removed");
        assert_eq!(write_atomic(Path::new("/"), b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_to_its_owner_whatever_it_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.key");
        write_atomic(&new, b"key").unwrap();
        assert_eq!(mode(&new), 0o600);

        let replaced = dir.path().join("replaced.key");
        std::fs::write(&replaced, b"old").unwrap();
        std::fs::set_permissions(&replaced, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&replaced, b"key").unwrap();
        assert_eq!(mode(&replaced), 0o600, "a readable file replaced by a secret does not stay readable");
    }

    #[test]
    fn a_name_as_long_as_names_go_works() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("é".repeat(127)); // 254 bytes, one short of the most a name may have
        write_atomic(&long, b"hello").unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"hello");
        assert!(temp_prefix(long.file_name().unwrap()).len() <= MAX_TEMP_NAME_PART + 2);
    }
}
