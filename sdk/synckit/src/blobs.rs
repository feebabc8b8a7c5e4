//! Encrypted blobs: files and buffers of up to 500 MiB, encrypted on the device and kept in the server's object
//! store, which sees neither a plaintext byte nor a file name.
//!
//! ```no_run
//! # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
//! use std::path::Path;
//! let photo = client.upload_blob(Path::new("photo.jpg")).await?;
//! // Keep `photo.id` in a change entry; any device of the user then downloads it:
//! client.download_blob(&photo.id, "photo-copy.jpg").await?;
//! # Ok(()) }
//! ```
//!
//! # Upload
//! An upload makes three streaming passes over the plaintext, 64 KiB at a time and off the async runtime, so
//! memory stays small whatever the size of the file:
//! 1. [`prepare_blob`](SyncKitClient::prepare_blob) reads it for its [`BlobId`], a keyed hash of the content: the
//!    same content gets one user the same id, so uploads dedupe, and the id tells the server nothing.
//! 2. It reads it again and seals it (see [`crypto::blob`](crate::crypto::blob)), for the ciphertext's length and
//!    SHA-256; the ciphertext itself is thrown away.
//! 3. [`blob_upload_url`](SyncKitClient::blob_upload_url) asks the server where to put it. The server signs the
//!    length and checksum into the URL, so the store refuses any other bytes, or it answers that the user already
//!    has the blob. [`blob_upload`](SyncKitClient::blob_upload) then seals the plaintext a third time (sealing is
//!    deterministic per content, so these are the very bytes measured) and streams them to the store in one `PUT`,
//!    with exactly the headers the server listed and no credentials: the signed URL is the permission.
//!    [`blob_confirm`](SyncKitClient::blob_confirm) has the server check the store and record the blob.
//!
//! [`upload_blob`](SyncKitClient::upload_blob) does all of it. Each pass checks that the source still has the
//! length and content the first one saw: a file rewritten during its upload fails with
//! [`ErrorKind::InvalidInput`] instead of storing other bytes under its id.
//!
//! # Download
//! [`blob_download_url`](SyncKitClient::blob_download_url) asks where the blob is;
//! [`blob_download`](SyncKitClient::blob_download) streams the ciphertext, opens each 64 KiB chunk as soon as it
//! is complete and writes out the plaintext. Every chunk is authenticated and the last one is marked as last, so a
//! tampered, reordered or truncated blob fails with [`ErrorKind::Crypto`]. A file is written to a temporary file
//! next to the destination, flushed to disk and renamed into place only after the whole blob decrypted: a failed
//! download leaves nothing at the destination, and an existing file there stays as it was. A connection cut
//! mid-way resumes with a `Range` request from the last whole chunk (or starts over, if the store ignores ranges).
//! [`download_blob`](SyncKitClient::download_blob) and
//! [`download_blob_bytes`](SyncKitClient::download_blob_bytes) do both steps.
//!
//! # Failures and retries
//! Calls to the server follow the client's retry policy. Transfers to and from the store are bounded by
//! inactivity rather than by [`SyncKitConfig::total_timeout`](crate::SyncKitConfig::total_timeout): an attempt
//! fails once [`attempt_timeout`](crate::SyncKitConfig::attempt_timeout) passes without a byte moving, except that
//! once an upload's last byte is sent the store has the total timeout to answer (it checks and stores the file
//! first). Network errors and 5xx answers from the store are retried up to
//! [`max_retries`](crate::SyncKitConfig::max_retries) times with back-off, or after the store's `Retry-After` (at
//! most the total timeout): an upload starts over, a download resumes, and a download attempt that got further
//! earns its retries back. Stores answer errors in their own formats (S3's XML, the embedded store's JSON); the
//! SDK reports them with SyncKit's codes: `invalid_signature` for a URL the store refuses (expired),
//! `blob_mismatch` for bytes other than those signed, `blob_not_found`. The one-call methods ask for a fresh URL
//! when the store refuses one, and try again: as often as a URL expires during a long transfer, but not again
//! when a URL just fetched is refused too.
//!
//! # Progress
//! [`BlobOptions::on_progress`] reports [`Progress`] in plaintext bytes as they go over the network: first
//! `done == 0`, last `done == total`, never backwards (a transfer that starts over reports nothing until it gets
//! further than before). The passes that prepare an upload are not counted; they run at disk speed.

mod download;
mod source;
mod upload;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use synckit_protocol::blobs::{
    BlobConfirmRequest, BlobConfirmResponse, BlobDownloadRequest, BlobDownloadResponse, BlobUploadRequest,
    BlobUploadResponse,
};
use synckit_protocol::limits::MAX_BLOB_PLAINTEXT_BYTES;
use synckit_protocol::{ErrorBody, ErrorCode};

pub use self::source::BlobSource;
use crate::SyncKitClient;
use crate::crypto::blob::{BlobId, decrypted_len, encrypted_len};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Retry, Transport, backoff, retry_after};
use crate::task::{blocking, internal};

/// What [`upload_blob`](SyncKitClient::upload_blob) stored.
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

/// A blob measured for upload by [`prepare_blob`](SyncKitClient::prepare_blob): its id, and the length and
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
    source: BlobSource,
    id: BlobId,
    len: u64,
    checksum_sha256: String,
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

/// Where to upload a blob: the answer of [`blob_upload_url`](SyncKitClient::blob_upload_url).
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

/// Where to download a blob: the answer of [`blob_download_url`](SyncKitClient::blob_download_url).
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
    /// [`blob_download_url`](SyncKitClient::blob_download_url) makes, which refuse a `sealed_size` no blob encrypts
    /// to; 0 for such a size set by hand.
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

type ProgressFn = dyn Fn(Progress) + Send + Sync;

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
    progress: Option<Arc<ProgressFn>>,
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

/// Reports progress for one transfer: `done == 0` first, then only further than ever before (a restarted attempt
/// stays quiet until it gets further), from whichever thread moves the bytes.
#[derive(Clone)]
struct Tracker {
    report: Option<Arc<ProgressFn>>,
    total: u64,
    furthest: Arc<Mutex<u64>>,
}

impl Tracker {
    fn new(options: &BlobOptions, total: u64) -> Self {
        if let Some(report) = &options.progress {
            report(Progress { done: 0, total });
        }
        Self { report: options.progress.clone(), total, furthest: Arc::new(Mutex::new(0)) }
    }

    /// An attempt got to `done`.
    fn reached(&self, done: u64) {
        let Some(report) = &self.report else { return };
        // Held while reporting, so reports from two threads cannot arrive out of order. A report that panicked
        // poisons it; the count it guards is still right, so the transfer goes on.
        let mut furthest = self.furthest.lock().unwrap_or_else(PoisonError::into_inner);
        if done > *furthest {
            *furthest = done;
            report(Progress { done, total: self.total });
        }
    }

    fn finished(&self) {
        self.reached(self.total);
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").field("total", &self.total).finish_non_exhaustive()
    }
}

/// Refuses a plaintext larger than a blob may be, before it is read or anything is sent.
fn check_plaintext_len(len: u64) -> Result<()> {
    if len > MAX_BLOB_PLAINTEXT_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the blob is {len} bytes; a blob holds at most 500 MiB ({MAX_BLOB_PLAINTEXT_BYTES} bytes)"),
        ));
    }
    Ok(())
}

impl SyncKitClient {
    // ----- blobs, in one call -----

    /// Encrypts and uploads a file (pass a `&Path` or `PathBuf`) or a buffer (a `Vec<u8>` or `Bytes`), unless the
    /// user already has it, and returns its id. At most 500 MiB: larger is [`ErrorKind::InvalidInput`], before
    /// anything is read or sent. See [the module docs](crate::blobs) for how it goes.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// use std::path::Path;
    /// let photo = client.upload_blob(Path::new("photo.jpg")).await?;
    /// let note = client.upload_blob(b"some bytes".to_vec()).await?;
    /// println!("stored {} and {}", photo.id, note.id);
    /// # Ok(()) }
    /// ```
    pub async fn upload_blob(&self, source: impl Into<BlobSource>) -> Result<UploadedBlob> {
        self.upload_blob_with(source, BlobOptions::default()).await
    }

    /// [`upload_blob`](Self::upload_blob) with options: progress reports.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let options = synckit::BlobOptions::default().on_progress(|p| println!("{}/{}", p.done, p.total));
    /// let blob = client.upload_blob_with(std::path::Path::new("movie.mkv"), options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_blob_with(&self, source: impl Into<BlobSource>, options: BlobOptions) -> Result<UploadedBlob> {
        let blob = self.prepare_blob(source).await?;
        let tracker = Tracker::new(&options, blob.size());
        let mut refreshes = 0;
        let already_existed = loop {
            let target = self.blob_upload_url(&blob).await?;
            if target.already_exists {
                break true;
            }
            match upload::put(self, &blob, &target, &tracker).await {
                Ok(()) => break false,
                Err(stop) if self.may_refresh_upload_url(&stop, refreshes) => refreshes += 1,
                Err(stop) => return Err(stop.error),
            }
        };
        if !already_existed {
            self.blob_confirm(&blob).await?;
        }
        tracker.finished();
        Ok(UploadedBlob { id: blob.id, size: blob.len, already_existed })
    }

    /// Whether an upload stopped by `stop` gets a fresh URL, after `refreshes` so far, up to `max_retries` in all.
    /// A URL that served an attempt before it was refused expired during the upload (a slow upload and its retries
    /// can outlive it): it is replaced each time. One refused on its first attempt is replaced only the first time:
    /// when a URL just fetched is refused as well, the store refuses fresh URLs (a wrong clock, a misconfigured
    /// server) and another would fare no better.
    fn may_refresh_upload_url(&self, stop: &upload::Stopped, refreshes: u32) -> bool {
        is_refused_url(&stop.error)
            && refreshes < self.transport().max_retries().max(1)
            && (refreshes == 0 || !stop.on_first_attempt)
    }

    /// Downloads and decrypts the blob `id` into the file at `path`, replacing it, and returns the plaintext
    /// length. The file appears only once the whole blob decrypted; on failure nothing is left at `path`. A blob
    /// that does not decrypt (tampered, truncated, under another user's key) is [`ErrorKind::Crypto`]; one this
    /// user never uploaded is [`ErrorKind::NotFound`].
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let bytes = client.download_blob(&id, "photo.jpg").await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_blob(&self, id: &BlobId, path: impl AsRef<Path>) -> Result<u64> {
        self.download_blob_with(id, path, BlobOptions::default()).await
    }

    /// [`download_blob`](Self::download_blob) with options: progress reports.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let options = synckit::BlobOptions::default().on_progress(|p| println!("{:.0}%", p.fraction() * 100.0));
    /// client.download_blob_with(&id, "movie.mkv", options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_blob_with(&self, id: &BlobId, path: impl AsRef<Path>, options: BlobOptions) -> Result<u64> {
        let sink = download::FileSink::create(path.as_ref()).await?;
        let url = self.blob_download_url(id).await?;
        download::run(self, url, sink, &options, true).await
    }

    /// Downloads and decrypts the blob `id` into memory. Meant for small blobs: prefer
    /// [`download_blob`](Self::download_blob) for files, which holds only a few chunks in memory at a time.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let bytes: Vec<u8> = client.download_blob_bytes(&id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_blob_bytes(&self, id: &BlobId) -> Result<Vec<u8>> {
        self.download_blob_bytes_with(id, BlobOptions::default()).await
    }

    /// [`download_blob_bytes`](Self::download_blob_bytes) with options: progress reports.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let options = synckit::BlobOptions::default().on_progress(|p| println!("{}/{}", p.done, p.total));
    /// let bytes = client.download_blob_bytes_with(&id, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_blob_bytes_with(&self, id: &BlobId, options: BlobOptions) -> Result<Vec<u8>> {
        let url = self.blob_download_url(id).await?;
        let sink = download::MemorySink::for_blob(&url);
        download::run(self, url, sink, &options, true).await
    }

    // ----- blobs, step by step -----

    /// Step 1 of an upload: reads the source twice (off the async runtime, 64 KiB at a time) for the blob's id and
    /// its ciphertext's length and checksum. Nothing is sent. A source over 500 MiB is [`ErrorKind::InvalidInput`]
    /// before it is read.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let blob = client.prepare_blob(std::path::Path::new("photo.jpg")).await?;
    /// let target = client.blob_upload_url(&blob).await?;
    /// if !target.already_exists {
    ///     client.blob_upload(&blob, &target, synckit::BlobOptions::default()).await?;
    ///     client.blob_confirm(&blob).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn prepare_blob(&self, source: impl Into<BlobSource>) -> Result<PreparedBlob> {
        let keys = self.keys()?;
        let source = source.into();
        blocking(move || source::prepare(&keys, source)).await
    }

    /// Step 2 of an upload: asks the server where to put the blob (`POST /api/sync/blobs/upload`). The answer
    /// says [`already_exists`](BlobUploadUrl::already_exists) when the user has it; then the upload is done.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, blob: &synckit::PreparedBlob) -> synckit::Result<()> {
    /// let target = client.blob_upload_url(blob).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_upload_url(&self, blob: &PreparedBlob) -> Result<BlobUploadUrl> {
        let req = BlobUploadRequest {
            hash: blob.id.to_hex(),
            size: blob.sealed_size(),
            checksum_sha256: blob.checksum_sha256.clone(),
        };
        let resp: BlobUploadResponse =
            self.call(Method::POST, "/api/sync/blobs/upload", true, Some(&req), Retry::Idempotent).await?;
        let url = match (resp.already_exists, resp.upload_url) {
            (true, _) => None,
            (false, Some(url)) => Some(self.transport().resolve(&url)?.to_string()),
            (false, None) => return Err(Error::new(ErrorKind::Server, "the server gave no upload URL")),
        };
        Ok(BlobUploadUrl {
            url,
            headers: resp.headers,
            already_exists: resp.already_exists,
            expires_at: expiry(resp.expires_in),
        })
    }

    /// Step 3 of an upload: seals the blob again and streams it to `target` in one `PUT`, with exactly the
    /// target's headers. Network errors and 5xx answers start it over, up to
    /// [`max_retries`](crate::SyncKitConfig::max_retries) times. A URL that expired fails with the code
    /// [`ErrorCode::InvalidSignature`]: ask for a new one. Does nothing when the user already has the blob.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, blob: &synckit::PreparedBlob) -> synckit::Result<()> {
    /// let target = client.blob_upload_url(blob).await?;
    /// let options = synckit::BlobOptions::default().on_progress(|p| println!("{}/{}", p.done, p.total));
    /// client.blob_upload(blob, &target, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_upload(&self, blob: &PreparedBlob, target: &BlobUploadUrl, options: BlobOptions) -> Result<()> {
        let tracker = Tracker::new(&options, blob.size());
        upload::put(self, blob, target, &tracker).await.map_err(|stop| stop.error)?;
        tracker.finished();
        Ok(())
    }

    /// Step 4 of an upload: tells the server the upload is done (`POST /api/sync/blobs/confirm`); it checks the
    /// store and records the blob, which can be downloaded from then on. Repeating it is harmless. Nothing uploaded
    /// is [`ErrorKind::NotFound`].
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, blob: &synckit::PreparedBlob) -> synckit::Result<()> {
    /// client.blob_confirm(blob).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_confirm(&self, blob: &PreparedBlob) -> Result<()> {
        let req = BlobConfirmRequest { hash: blob.id.to_hex(), size: blob.sealed_size() };
        let resp: BlobConfirmResponse =
            self.call(Method::POST, "/api/sync/blobs/confirm", true, Some(&req), Retry::Idempotent).await?;
        if (resp.hash.as_str(), resp.size) != (req.hash.as_str(), req.size) {
            return Err(Error::new(ErrorKind::Server, "the server confirmed another blob than the one uploaded"));
        }
        Ok(())
    }

    /// Step 1 of a download: asks the server where the blob `id` is (`POST /api/sync/blobs/download`). A blob this
    /// user has not uploaded and confirmed is [`ErrorKind::NotFound`].
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let source = client.blob_download_url(&id).await?;
    /// let bytes = client.blob_download(&source, "photo.jpg", synckit::BlobOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_download_url(&self, id: &BlobId) -> Result<BlobDownloadUrl> {
        let req = BlobDownloadRequest { hash: id.to_hex() };
        let resp: BlobDownloadResponse =
            self.call(Method::POST, "/api/sync/blobs/download", true, Some(&req), Retry::Idempotent).await?;
        if decrypted_len(resp.size).is_none() {
            return Err(Error::new(
                ErrorKind::Server,
                format!("the server says the blob is {} bytes, a length no blob encrypts to", resp.size),
            ));
        }
        Ok(BlobDownloadUrl {
            id: *id,
            url: self.transport().resolve(&resp.download_url)?.to_string(),
            sealed_size: resp.size,
            expires_at: expiry(resp.expires_in),
        })
    }

    /// Step 2 of a download: streams the blob from `source`, decrypting as it goes, into the file at `path`
    /// (replacing it, only once the whole blob decrypted), and returns the plaintext length. Resumes a cut
    /// connection where it stopped. A URL that expired fails with the code [`ErrorCode::InvalidSignature`]: ask
    /// for a new one.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let source = client.blob_download_url(&id).await?;
    /// client.blob_download(&source, "photo.jpg", synckit::BlobOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_download(
        &self,
        source: &BlobDownloadUrl,
        path: impl AsRef<Path>,
        options: BlobOptions,
    ) -> Result<u64> {
        let sink = download::FileSink::create(path.as_ref()).await?;
        download::run(self, source.clone(), sink, &options, false).await
    }

    /// [`blob_download`](Self::blob_download) into memory.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// let source = client.blob_download_url(&id).await?;
    /// let bytes = client.blob_download_bytes(&source, synckit::BlobOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn blob_download_bytes(&self, source: &BlobDownloadUrl, options: BlobOptions) -> Result<Vec<u8>> {
        let sink = download::MemorySink::for_blob(source);
        download::run(self, source.clone(), sink, &options, false).await
    }
}

/// Whether the store refused the URL itself (expired, or not signed as sent): a fresh URL may work.
fn is_refused_url(e: &Error) -> bool {
    e.code() == Some(ErrorCode::InvalidSignature)
}

/// When a URL valid for `secs` from now stops working.
fn expiry(secs: u64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(secs)).unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// Refuses a URL past its expiry before using it: the store would, and not every store says why in the same way.
fn check_not_expired(expires_at: Instant) -> Result<()> {
    if Instant::now() < expires_at {
        return Ok(());
    }
    // The store's code for it, so a caller handles an expired URL one way whichever side noticed.
    let message = "the signed URL has expired; ask for a new one".to_owned();
    Err(Error::from_server(ErrorCode::InvalidSignature, StatusCode::FORBIDDEN.as_u16(), message, None))
}

/// How one attempt at a transfer to or from the store ended, when it failed.
enum Failure {
    /// Trying again may work: the network, or the store failing or busy (5xx, 429).
    Retry(Error),
    /// It will not: the store refused the request, or what it sent is wrong.
    Final(Error),
}

/// The retries of one transfer: after a failed attempt, back-off (or the wait the store asks for, within reason),
/// and another attempt, until [`max_retries`](crate::SyncKitConfig::max_retries) attempts in a row have failed.
struct Retries {
    /// The blob transferred, for the logs.
    blob: BlobId,
    failures: u32,
    max: u32,
    /// The longest a store's `Retry-After` may hold a transfer up: the whole budget of a call, so a store asking for
    /// hours does not stall the transfer for as long.
    max_wait: Duration,
}

impl Retries {
    fn new(transport: &Transport, blob: BlobId) -> Self {
        Self { blob, failures: 0, max: transport.max_retries(), max_wait: transport.total_timeout() }
    }

    /// Failed attempts in a row so far.
    fn failures(&self) -> u32 {
        self.failures
    }

    /// The last attempt got further than any before: it earns the retries back.
    fn progressed(&mut self) {
        self.failures = 0;
    }

    /// After a failed attempt: waits and answers `Ok` to try again, or the error when it is final or the retries
    /// are spent.
    async fn wait(&mut self, failure: Failure) -> Result<()> {
        let err = match failure {
            Failure::Final(e) => return Err(e),
            Failure::Retry(e) if self.failures >= self.max => return Err(e),
            Failure::Retry(e) => e,
        };
        let delay = err.retry_after().map_or_else(|| backoff(self.failures), |asked| asked.min(self.max_wait));
        tracing::debug!(blob = %self.blob, failures = self.failures, ?delay, error = %err, "a blob transfer failed");
        tokio::time::sleep(delay).await;
        self.failures += 1;
        Ok(())
    }
}

/// A store's failed answer as an attempt's failure: worth retrying when the store failed or was busy.
async fn store_failure(resp: reqwest::Response, doing: &str, expires_at: Instant, within: Duration) -> Failure {
    let status = resp.status();
    let err = store_error(resp, doing, expires_at, within).await;
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Failure::Retry(err)
    } else {
        Failure::Final(err)
    }
}

/// What a store's failed answer says, in SyncKit's terms. The embedded store answers SyncKit's JSON error body;
/// S3 answers XML (`<Error><Code>AccessDenied</Code><Message>…</Message></Error>`), whose codes are translated.
/// Stores word an expired URL differently (AWS: 403 `AccessDenied`; Garage: 400 `InvalidRequest`, "Date is too
/// old"), so a 400 or 403 to a URL past `expires_at` counts as the URL expiring. The body is read for at most
/// `within`.
async fn store_error(resp: reqwest::Response, doing: &str, expires_at: Instant, within: Duration) -> Error {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = read_capped(resp, 16 * 1024, within).await;
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&body) {
        let message = format!("{doing}: {}", body.error.message);
        return Error::from_server(body.error.code, status.as_u16(), message, retry_after);
    }
    let text = String::from_utf8_lossy(&body);
    let s3_code = xml_element(&text, "Code");
    let detail = match (s3_code, xml_element(&text, "Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    };
    let expired = matches!(status, StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN) && Instant::now() >= expires_at;
    if expired {
        let message =
            format!("{doing}: the signed URL has expired; ask for a new one (the store answered {status}{detail})");
        return Error::from_server(ErrorCode::InvalidSignature, status.as_u16(), message, retry_after);
    }
    let message = format!("{doing}: the store answered {status}{detail}");
    Error::from_server(store_code(status, s3_code), status.as_u16(), message, retry_after)
}

/// SyncKit's code for a store's answer without one.
fn store_code(status: StatusCode, s3_code: Option<&str>) -> ErrorCode {
    match (status.as_u16(), s3_code) {
        (403, _) => ErrorCode::InvalidSignature,
        (404, _) => ErrorCode::BlobNotFound,
        (413, _) | (_, Some("EntityTooLarge")) => ErrorCode::BlobTooLarge,
        (
            400,
            Some("BadDigest" | "InvalidDigest" | "IncompleteBody" | "XAmzContentSHA256Mismatch" | "EntityTooSmall"),
        ) => ErrorCode::BlobMismatch,
        (429, _) => ErrorCode::RateLimited,
        (503, _) => ErrorCode::Unavailable,
        _ => ErrorCode::Unknown,
    }
}

/// The text of the first `<name>…</name>` in `xml`. Error bodies are flat, so no XML parser is needed.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

/// At most `limit` bytes of an answer's body, read for at most `within`: error bodies are small and quick, and a
/// store is not trusted to keep them so. What arrived in time is kept; the status says enough without it.
async fn read_capped(mut resp: reqwest::Response, limit: usize, within: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + within;
    let mut body = Vec::new();
    while let Ok(Ok(Some(piece))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        body.extend_from_slice(&piece[..piece.len().min(limit - body.len())]);
        if body.len() == limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn the_limit_is_500_mib_of_plaintext_and_fits_the_ciphertext_limit() {
        use synckit_protocol::limits::MAX_BLOB_BYTES;
        assert!(check_plaintext_len(0).is_ok());
        assert!(check_plaintext_len(MAX_BLOB_PLAINTEXT_BYTES).is_ok());
        let err = check_plaintext_len(MAX_BLOB_PLAINTEXT_BYTES + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(encrypted_len(MAX_BLOB_PLAINTEXT_BYTES), MAX_BLOB_BYTES, "the protocol's limit is exact");
    }

    #[test]
    fn store_errors_are_read_as_synckit_codes() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message>\
                   </Error>";
        assert_eq!(xml_element(xml, "Code"), Some("AccessDenied"));
        assert_eq!(xml_element(xml, "Message"), Some("Request has expired"));
        assert_eq!(xml_element(xml, "Resource"), None);
        assert_eq!(store_code(StatusCode::FORBIDDEN, Some("AccessDenied")), ErrorCode::InvalidSignature);
        assert_eq!(store_code(StatusCode::BAD_REQUEST, Some("BadDigest")), ErrorCode::BlobMismatch);
        assert_eq!(store_code(StatusCode::BAD_REQUEST, Some("SomethingElse")), ErrorCode::Unknown);
        assert_eq!(store_code(StatusCode::NOT_FOUND, Some("NoSuchKey")), ErrorCode::BlobNotFound);
        assert_eq!(store_code(StatusCode::SERVICE_UNAVAILABLE, None), ErrorCode::Unavailable);
        let expired = Error::from_server(ErrorCode::InvalidSignature, 403, "expired".into(), None);
        assert!(is_refused_url(&expired));
        assert_eq!(expired.kind(), ErrorKind::InvalidRequest);
        assert!(check_not_expired(expiry(60)).is_ok());
        let late = check_not_expired(Instant::now()).unwrap_err();
        assert!(is_refused_url(&late), "{late}");
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
        let mut resp = http::Response::builder().status(status);
        for (name, value) in headers {
            resp = resp.header(*name, *value);
        }
        resp.body(body.to_owned()).unwrap().into()
    }

    #[tokio::test]
    async fn each_stores_answers_become_the_same_errors() {
        let (valid, past) = (expiry(60), Instant::now());
        let error = |status, body: &'static str, expires_at| {
            store_error(answer(status, &[], body), "PUT", expires_at, Duration::from_secs(5))
        };

        // The embedded store speaks SyncKit's JSON.
        let local = r#"{"error":{"code":"invalid_signature","message":"the URL has expired; ask for a new one"}}"#;
        let e = error(403, local, valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidRequest, Some(ErrorCode::InvalidSignature)), "{e}");
        assert!(e.to_string().starts_with("PUT: the URL has expired"), "{e}");

        // AWS refuses an expired URL with 403 AccessDenied; Garage with 400 InvalidRequest, known by the URL's age.
        let aws =
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(error(403, aws, valid).await.code(), Some(ErrorCode::InvalidSignature));
        let garage = "<Error><Code>InvalidRequest</Code><Message>Bad request: Date is too old</Message></Error>";
        let e = error(400, garage, past).await;
        assert_eq!(e.code(), Some(ErrorCode::InvalidSignature), "{e}");
        assert!(e.to_string().contains("Date is too old"), "the store's words are kept: {e}");
        assert_eq!(error(400, garage, valid).await.code(), Some(ErrorCode::Unknown));

        // Other bytes than those signed; a missing object.
        let digest = "<Error><Code>BadDigest</Code><Message>checksum mismatch</Message></Error>";
        let e = error(400, digest, valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidRequest, Some(ErrorCode::BlobMismatch)), "{e}");
        let e = error(404, "<Error><Code>NoSuchKey</Code></Error>", valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, Some(ErrorCode::BlobNotFound)), "{e}");

        // An overloaded store: retryable, after the time it asks for.
        let busy = answer(503, &[("retry-after", "7")], "<Error><Code>SlowDown</Code></Error>");
        let e = store_error(busy, "GET", valid, Duration::from_secs(5)).await;
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_falls_silent_mid_error_is_not_waited_for() {
        let start = tokio::time::Instant::now();
        let first = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"<Error><Code>"))]);
        let body = reqwest::Body::wrap_stream(first.chain(futures::stream::pending()));
        let silent: reqwest::Response =
            http::Response::builder().status(503).header("retry-after", "2").body(body).unwrap().into();
        let e = store_error(silent, "GET", expiry(60), Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(30), "bounded by the attempt's timeout");
        assert_eq!((e.code(), e.retry_after()), (Some(ErrorCode::Unavailable), Some(Duration::from_secs(2))), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_cannot_park_a_transfer_with_retry_after() {
        let mut retries = Retries { blob: BlobId([0; 32]), failures: 0, max: 2, max_wait: Duration::from_secs(120) };
        let busy = || {
            let hours = Some(Duration::from_secs(5 * 3600));
            Failure::Retry(Error::from_server(ErrorCode::Unavailable, 503, "busy".into(), hours))
        };
        let start = tokio::time::Instant::now();
        retries.wait(busy()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(120), "the wait it asks for is capped");
        retries.wait(busy()).await.unwrap();
        assert_eq!(retries.failures(), 2);
        let spent = retries.wait(busy()).await.unwrap_err();
        assert_eq!(spent.code(), Some(ErrorCode::Unavailable));

        // An attempt that got further earns them back; a final failure ends at once.
        retries.progressed();
        retries.wait(busy()).await.unwrap();
        let refused = Error::from_server(ErrorCode::BlobMismatch, 400, "other bytes".into(), None);
        assert_eq!(retries.wait(Failure::Final(refused)).await.unwrap_err().code(), Some(ErrorCode::BlobMismatch));
    }

    #[test]
    fn progress_never_goes_backwards_and_ends_at_the_total() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| log.lock().unwrap().push(p.done));
        let tracker = Tracker::new(&options, 100);
        tracker.reached(40);
        tracker.reached(10); // a restarted attempt
        tracker.reached(40);
        tracker.reached(70);
        tracker.reached(100);
        tracker.finished();
        assert_eq!(*seen.lock().unwrap(), [0, 40, 70, 100]);

        // An empty blob starts at its end; a blob with nothing to send jumps there.
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| log.lock().unwrap().push(p.total - p.done));
        seen.lock().unwrap().clear();
        Tracker::new(&options, 0).finished();
        Tracker::new(&options, 5).finished();
        assert_eq!(*seen.lock().unwrap(), [0, 5, 0]);
    }

    #[test]
    fn a_report_that_panics_does_not_break_later_ones() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| {
            assert_ne!(p.done, 40, "the app's bug");
            log.lock().unwrap().push(p.done);
        });
        let tracker = Tracker::new(&options, 100);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tracker.reached(40)));
        assert!(panicked.is_err());
        tracker.reached(70);
        tracker.finished();
        assert_eq!(*seen.lock().unwrap(), [0, 70, 100]);
    }
}
