//! The blob types an app holds: what an upload stored, a blob measured for upload, where to upload or download
//! one, transfer options and progress. Plain data: the transfers that use them live in the sibling modules.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::source::BlobSource;
use crate::crypto::blob::{BlobId, decrypted_len, encrypted_len};

/// What [`upload_blob`](crate::SyncKitClient::upload_blob) stored.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
/// let blob = client.upload_blob(b"hello".to_vec()).await?;
/// if blob.already_existed {
///     println!("{} was already stored; nothing was sent", blob.id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedBlob {
    /// The blob's id: keep it (in a change entry, say) to download the blob on any of the user's devices.
    pub id: BlobId,
    /// Its plaintext length in bytes.
    pub size: u64,
    /// The user already had this blob, so nothing was uploaded.
    pub already_existed: bool,
}

/// A blob measured for upload by [`prepare_blob`](crate::SyncKitClient::prepare_blob): its id, and the length and
/// checksum of its ciphertext. It keeps its source, which must not change until the upload is done.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
/// let blob = client.prepare_blob(std::path::Path::new("video.mp4")).await?;
/// println!("{}: {} bytes, {} encrypted", blob.id(), blob.size(), blob.sealed_size());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PreparedBlob {
    pub(super) source: BlobSource,
    pub(super) id: BlobId,
    pub(super) len: u64,
    pub(super) checksum_sha256: String,
}

impl PreparedBlob {
    /// The blob's id.
    ///
    /// ```no_run
    /// # fn demo(blob: &synckit::PreparedBlob) {
    /// let id: synckit::BlobId = blob.id();
    /// # }
    /// ```
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// The plaintext length in bytes.
    ///
    /// ```no_run
    /// # fn demo(blob: &synckit::PreparedBlob) {
    /// assert!(blob.size() < blob.sealed_size());
    /// # }
    /// ```
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The ciphertext length in bytes: what is uploaded, and what the store holds.
    ///
    /// ```no_run
    /// # fn demo(blob: &synckit::PreparedBlob) {
    /// assert_eq!(blob.sealed_size(), synckit::crypto::blob::encrypted_len(blob.size()));
    /// # }
    /// ```
    pub fn sealed_size(&self) -> u64 {
        encrypted_len(self.len)
    }

    /// The ciphertext's SHA-256, standard base64: the store checks the upload against it.
    ///
    /// ```no_run
    /// # fn demo(blob: &synckit::PreparedBlob) {
    /// assert_eq!(blob.checksum_sha256().len(), 44);
    /// # }
    /// ```
    pub fn checksum_sha256(&self) -> &str {
        &self.checksum_sha256
    }

    /// Where the plaintext is read from.
    ///
    /// ```no_run
    /// # fn demo(blob: &synckit::PreparedBlob) {
    /// println!("{:?}", blob.source().path());
    /// # }
    /// ```
    pub fn source(&self) -> &BlobSource {
        &self.source
    }
}

/// Where to upload a blob: the answer of [`blob_upload_url`](crate::SyncKitClient::blob_upload_url).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, blob: &synckit::PreparedBlob) -> synckit::Result<()> {
/// let target = client.blob_upload_url(blob).await?;
/// if !target.already_exists {
///     println!("PUT {} before {:?}", target.url.as_deref().unwrap_or_default(), target.expires_at);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUploadUrl {
    /// Where the ciphertext goes, as an absolute URL; `None` when the user already has the blob.
    pub url: Option<String>,
    /// The headers the upload must carry, and no others: they are signed into the URL.
    pub headers: BTreeMap<String, String>,
    /// The user already has this blob: there is nothing to upload or confirm.
    pub already_exists: bool,
    /// When the URL stops working: the server's validity counted from when its answer arrived.
    pub expires_at: Instant,
}

/// Where to download a blob: the answer of [`blob_download_url`](crate::SyncKitClient::blob_download_url).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
/// let source = client.blob_download_url(&id).await?;
/// println!("{} bytes to fetch, {} once decrypted", source.sealed_size, source.size());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDownloadUrl {
    /// The blob it is for.
    pub id: BlobId,
    /// Where the ciphertext is, as an absolute URL.
    pub url: String,
    /// The ciphertext's length in bytes, as the server recorded it.
    pub sealed_size: u64,
    /// When the URL stops working: the server's validity counted from when its answer arrived.
    pub expires_at: Instant,
}

impl BlobDownloadUrl {
    /// The plaintext length: what the download will write. Exact for the URLs
    /// [`blob_download_url`](crate::SyncKitClient::blob_download_url) makes, which refuse a `sealed_size` no blob
    /// encrypts to; 0 for such a size set by hand.
    ///
    /// ```
    /// use synckit::{BlobDownloadUrl, BlobId, crypto::blob::encrypted_len};
    /// let url = BlobDownloadUrl {
    ///     id: BlobId([0; 32]),
    ///     url: "https://example.com/b".into(),
    ///     sealed_size: encrypted_len(1000),
    ///     expires_at: std::time::Instant::now() + std::time::Duration::from_secs(900),
    /// };
    /// assert_eq!(url.size(), 1000);
    /// ```
    pub fn size(&self) -> u64 {
        decrypted_len(self.sealed_size).unwrap_or(0)
    }
}

/// How far a transfer is, in plaintext bytes.
///
/// ```
/// let p = synckit::Progress { done: 512, total: 2048 };
/// assert_eq!(p.fraction(), 0.25);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred so far.
    pub done: u64,
    /// Bytes in the whole blob.
    pub total: u64,
}

impl Progress {
    /// `done / total`, from 0.0 to 1.0 (1.0 for an empty blob).
    ///
    /// ```
    /// assert_eq!(synckit::Progress { done: 0, total: 0 }.fraction(), 1.0);
    /// ```
    pub fn fraction(&self) -> f64 {
        if self.total == 0 { 1.0 } else { self.done as f64 / self.total as f64 }
    }
}

/// What [`BlobOptions::on_progress`] keeps: shared by every thread of a transfer that reports.
pub(super) type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// Options for a blob transfer. The default has none set.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
/// use synckit::BlobOptions;
/// let options = BlobOptions::default().on_progress(|p| eprintln!("{:.0}%", p.fraction() * 100.0));
/// client.upload_blob_with(std::path::Path::new("movie.mkv"), options).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct BlobOptions {
    pub(super) progress: Option<Arc<ProgressFn>>,
}

impl BlobOptions {
    /// Calls `report` as bytes go over the network. It runs on the SDK's threads, in the middle of the transfer:
    /// keep it quick (update a counter, send on a channel).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let done = Arc::new(AtomicU64::new(0));
    /// let seen = done.clone();
    /// let options = synckit::BlobOptions::default().on_progress(move |p| seen.store(p.done, Ordering::Relaxed));
    /// ```
    pub fn on_progress(mut self, report: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(report));
        self
    }
}

impl fmt::Debug for BlobOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobOptions").field("progress", &self.progress.as_ref().map(|_| "Fn(Progress)")).finish()
    }
}
