//! What an upload reads: [`BlobSource`], a file or bytes in memory, opened from its start for each pass over it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

/// What an upload reads: a file, or bytes in memory. An upload reads it from the start three times (for its id,
/// its checksum, then to send it), so a file must not change until the upload is done; if it does, the upload
/// fails with [`ErrorKind::InvalidInput`] and nothing is stored under a wrong id.
///
/// Paths and buffers convert into it, so the upload methods take either. A `&str` does not (is it a path, or the
/// bytes to store?): write `Path::new("photo.jpg")` or [`BlobSource::file`].
///
/// ```
/// use std::path::Path;
/// use synckit::BlobSource;
/// let file: BlobSource = Path::new("photo.jpg").into();
/// assert_eq!(file.path(), Some(Path::new("photo.jpg")));
/// let bytes: BlobSource = b"hello".to_vec().into();
/// assert_eq!(bytes.path(), None);
/// assert_eq!(BlobSource::file("photo.jpg").path(), file.path());
/// ```
#[derive(Clone)]
pub struct BlobSource {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    File(PathBuf),
    Bytes(Bytes),
}

impl BlobSource {
    /// The file at `path`, read when the upload runs.
    ///
    /// ```
    /// let source = synckit::BlobSource::file("/tmp/report.pdf");
    /// assert!(source.path().is_some());
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self { inner: Inner::File(path.into()) }
    }

    /// Bytes in memory (a `Vec<u8>`, `Bytes`, a static slice). `Bytes` is shared, not copied.
    ///
    /// ```
    /// let source = synckit::BlobSource::bytes(vec![1, 2, 3]);
    /// assert!(source.path().is_none());
    /// ```
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self { inner: Inner::Bytes(bytes.into()) }
    }

    /// The file's path, for a file source.
    ///
    /// ```
    /// let source = synckit::BlobSource::file("a.txt");
    /// assert_eq!(source.path(), Some(std::path::Path::new("a.txt")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::File(path) => Some(path),
            Inner::Bytes(_) => None,
        }
    }

    /// Opens the source from its start: a reader, and the length it has now.
    pub(super) fn open(&self) -> Result<(Box<dyn Read + Send>, u64)> {
        match &self.inner {
            Inner::Bytes(bytes) => Ok((Box::new(io::Cursor::new(bytes.clone())), bytes.len() as u64)),
            Inner::File(path) => {
                let file = File::open(path).map_err(|e| self.unreadable(e))?;
                let meta = file.metadata().map_err(|e| self.unreadable(e))?;
                if !meta.is_file() {
                    return Err(Error::new(ErrorKind::InvalidInput, format!("{} is not a file", path.display())));
                }
                Ok((Box::new(file), meta.len()))
            }
        }
    }

    /// The source cannot be read, for `e`.
    pub(super) fn unreadable(&self, e: io::Error) -> Error {
        let what = self.path().map_or_else(|| "the blob".to_owned(), |p| p.display().to_string());
        Error::new(ErrorKind::InvalidInput, format!("cannot read {what}")).with_source(e)
    }

    /// The source is not what an earlier pass read.
    pub(super) fn changed(&self) -> Error {
        let what = self.path().map_or_else(|| "the blob".to_owned(), |p| p.display().to_string());
        Error::new(ErrorKind::InvalidInput, format!("{what} changed while it was being uploaded: upload it again"))
    }
}

impl fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::File(path) => f.debug_tuple("BlobSource::File").field(path).finish(),
            Inner::Bytes(bytes) => write!(f, "BlobSource::Bytes({} bytes)", bytes.len()),
        }
    }
}

impl From<PathBuf> for BlobSource {
    fn from(path: PathBuf) -> Self {
        Self::file(path)
    }
}

impl From<&Path> for BlobSource {
    fn from(path: &Path) -> Self {
        Self::file(path)
    }
}

impl From<&PathBuf> for BlobSource {
    fn from(path: &PathBuf) -> Self {
        Self::file(path.clone())
    }
}

impl From<Bytes> for BlobSource {
    fn from(bytes: Bytes) -> Self {
        Self::bytes(bytes)
    }
}

impl From<Vec<u8>> for BlobSource {
    fn from(bytes: Vec<u8>) -> Self {
        Self::bytes(bytes)
    }
}

impl From<&'static [u8]> for BlobSource {
    fn from(bytes: &'static [u8]) -> Self {
        Self::bytes(Bytes::from_static(bytes))
    }
}
