//! Where a download's plaintext goes: a temporary file beside the destination that replaces it only once the whole
//! blob decrypted, or memory.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use super::types::BlobDownloadUrl;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::{containing_dir, sync_dir, temp_prefix};
use crate::task::blocking;

/// A memory sink reserves at most this much up front, whatever the server says the blob's length is.
const MAX_RESERVE: usize = 8 * 1024 * 1024;

/// Where plaintext goes, written from the writer thread.
pub(super) trait Sink: Send + 'static {
    type Output: Send + 'static;
    /// Appends the next plaintext chunk.
    fn write(&mut self, plain: &[u8]) -> Result<()>;
    /// Forgets everything written: the download starts over.
    fn reset(&mut self) -> Result<()>;
    /// Everything was written and checked: make it the result.
    fn commit(self) -> Result<Self::Output>;
}

/// A file written next to its destination and renamed over it once complete; deleted if dropped before.
#[derive(Debug)]
pub(super) struct FileSink {
    temp: tempfile::NamedTempFile,
    destination: PathBuf,
    /// The directory both are in.
    dir: PathBuf,
    written: u64,
}

impl FileSink {
    /// Creates the temporary file, so a destination that cannot be written fails before anything is fetched. It
    /// gets the mode of the file it will replace, or else the one any new file gets.
    pub(super) async fn create(destination: &Path) -> Result<Self> {
        let destination = destination.to_owned();
        blocking(move || {
            let name = destination.file_name().ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!("{} is not a file path", destination.display()))
            })?;
            let dir = containing_dir(&destination).to_owned();
            let prefix = temp_prefix(name);
            let mut builder = tempfile::Builder::new();
            builder.prefix(&prefix).suffix(".synckit-part");
            new_file_mode(&mut builder);
            let temp = builder.tempfile_in(&dir).map_err(|e| write_error(&destination, e))?;
            keep_mode(&destination, temp.as_file()).map_err(|e| write_error(&destination, e))?;
            Ok(Self { temp, destination, dir, written: 0 })
        })
        .await
    }
}

/// Creates the file with the mode a new file gets (0666 less the umask, which the system applies on creation)
/// rather than tempfile's private 0600: the download is an ordinary file of the user's.
fn new_file_mode(builder: &mut tempfile::Builder<'_, '_>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    #[cfg(not(unix))]
    let _ = builder;
}

/// Gives `temp` the permission bits of the file at `destination`, if there is one: replacing a file keeps its
/// mode. The special bits (set-user-id and the like) are not carried over to downloaded bytes.
fn keep_mode(destination: &Path, temp: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(destination) {
            Ok(meta) if meta.is_file() => {
                temp.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode() & 0o777))
            }
            _ => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (destination, temp);
        Ok(())
    }
}

fn write_error(destination: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("cannot write {}", destination.display())).with_source(e)
}

impl Sink for FileSink {
    type Output = u64;

    fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.temp.write_all(plain).map_err(|e| write_error(&self.destination, e))?;
        self.written += plain.len() as u64;
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        let file = self.temp.as_file_mut();
        file.set_len(0).and_then(|()| file.rewind()).map_err(|e| write_error(&self.destination, e))?;
        self.written = 0;
        Ok(())
    }

    fn commit(self) -> Result<u64> {
        let Self { temp, destination, dir, written } = self;
        temp.as_file().sync_all().map_err(|e| write_error(&destination, e))?;
        temp.persist(&destination).map_err(|e| write_error(&destination, e.error))?;
        // Best effort: the file's own data is already on disk.
        let _ = sync_dir(&dir);
        Ok(written)
    }
}

/// Plaintext collected in memory.
#[derive(Debug)]
pub(super) struct MemorySink(Vec<u8>);

impl MemorySink {
    pub(super) fn for_blob(source: &BlobDownloadUrl) -> Self {
        Self(Vec::with_capacity((source.size() as usize).min(MAX_RESERVE)))
    }
}

impl Sink for MemorySink {
    type Output = Vec<u8>;

    fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.0.extend_from_slice(plain);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        self.0.clear();
        Ok(())
    }

    fn commit(self) -> Result<Vec<u8>> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MAX_TEMP_NAME_PART;

    #[tokio::test]
    async fn a_file_sink_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        std::fs::write(&dest, b"the old content").unwrap();

        let mut sink = FileSink::create(&dest).await.unwrap();
        sink.write(b"abc").unwrap();
        sink.reset().unwrap();
        sink.write(b"hello").unwrap();
        drop(sink);
        assert_eq!(std::fs::read(&dest).unwrap(), b"the old content", "a dropped download changes nothing");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "and leaves no temporary file");

        let mut sink = FileSink::create(&dest).await.unwrap();
        sink.write(b"abc").unwrap();
        sink.reset().unwrap();
        sink.write(b"hello").unwrap();
        assert_eq!(sink.commit().unwrap(), 5);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_downloaded_file_gets_an_ordinary_mode_or_keeps_the_replaced_ones() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        // What this process's umask makes of a new file, found without asking for the umask.
        let ordinary = dir.path().join("ordinary");
        std::fs::File::create(&ordinary).unwrap();

        let new = dir.path().join("new");
        FileSink::create(&new).await.unwrap().commit().unwrap();
        assert_eq!(mode(&new), mode(&ordinary));

        let replaced = dir.path().join("replaced");
        std::fs::write(&replaced, b"old").unwrap();
        std::fs::set_permissions(&replaced, std::fs::Permissions::from_mode(0o4750)).unwrap();
        FileSink::create(&replaced).await.unwrap().commit().unwrap();
        assert_eq!(mode(&replaced), 0o750, "the replaced file's mode, without the set-user-id bit");
    }

    #[tokio::test]
    async fn long_and_bare_names_work() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("é".repeat(127)); // 254 bytes, one short of the most a name may have
        let mut sink = FileSink::create(&long).await.unwrap();
        sink.write(b"hello").unwrap();
        sink.commit().unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"hello");
        assert!(temp_prefix(long.file_name().unwrap()).len() <= MAX_TEMP_NAME_PART + 2);

        assert_eq!(containing_dir(Path::new("photo.jpg")), Path::new("."), "synced too");
        assert_eq!(containing_dir(Path::new("dir/photo.jpg")), Path::new("dir"));
    }

    #[tokio::test]
    async fn a_destination_that_cannot_be_written_fails_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileSink::create(&dir.path().join("missing/out.bin")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("cannot write"), "{err}");
        assert_eq!(FileSink::create(Path::new("/")).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
