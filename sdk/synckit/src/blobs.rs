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

// Layout, with dependencies pointing one way: this root holds the client's blob methods and uses the modules below,
// and none of them uses it. `types` and `source` are the public types; `passes` reads and seals an upload's
// plaintext; `upload` and `download` move the ciphertext to and from the store (`download` into a `sink`),
// reporting through `progress` and getting over failed attempts through `retry`, which reads the store's refusals
// through `store_error`.
mod download;
mod passes;
mod progress;
mod retry;
mod sink;
mod source;
mod store_error;
mod types;
mod upload;

use std::path::Path;

use futures::FutureExt;
use reqwest::Method;
use synckit_protocol::blobs::{
    BlobConfirmRequest, BlobConfirmResponse, BlobDownloadRequest, BlobDownloadResponse, BlobUploadRequest,
    BlobUploadResponse,
};
use synckit_protocol::paths;

#[cfg(fuzzing)]
pub(crate) use self::download::open_pieces;
use self::progress::Tracker;
use self::retry::{expiry, is_refused_url};
use self::sink::{FileSink, MemorySink};
pub use self::source::BlobSource;
pub use self::types::{BlobDownloadUrl, BlobOptions, BlobUploadUrl, PreparedBlob, Progress, UploadedBlob};
use crate::SyncKitClient;
use crate::crypto::blob::{BlobId, decrypted_len};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::task::blocking;

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
        let sink = FileSink::create(path.as_ref()).await?;
        let url = self.blob_download_url(id).await?;
        download::run(self, url, sink, &options, Some(&|| self.blob_download_url(id).boxed())).await
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
        let sink = MemorySink::for_blob(&url);
        download::run(self, url, sink, &options, Some(&|| self.blob_download_url(id).boxed())).await
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
        blocking(move || passes::prepare(&keys, source)).await
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
            self.call(Method::POST, paths::BLOBS_UPLOAD, true, Some(&req), Retry::Idempotent).await?;
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
    /// [`ErrorCode::InvalidSignature`](crate::ErrorCode::InvalidSignature): ask for a new one. Does nothing when
    /// the user already has the blob.
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
            self.call(Method::POST, paths::BLOBS_CONFIRM, true, Some(&req), Retry::Idempotent).await?;
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
            self.call(Method::POST, paths::BLOBS_DOWNLOAD, true, Some(&req), Retry::Idempotent).await?;
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

    /// Deletes the blob `id` of this user in this app, whether confirmed or still uploading: it can no longer be
    /// downloaded, its bytes are removed from the object store and stop counting as stored. Deleting one the user
    /// does not have is [`ErrorKind::NotFound`] (so is a repeated delete). Other devices that keep the id in their
    /// changes find it gone; uploading the same file again stores it anew.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, id: synckit::BlobId) -> synckit::Result<()> {
    /// client.delete_blob(&id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_blob(&self, id: &BlobId) -> Result<()> {
        let path = paths::blob(&id.to_hex());
        self.call::<(), ()>(Method::DELETE, &path, true, None, Retry::IfUnprocessed).await
    }

    /// Step 2 of a download: streams the blob from `source`, decrypting as it goes, into the file at `path`
    /// (replacing it, only once the whole blob decrypted), and returns the plaintext length. Resumes a cut
    /// connection where it stopped. A URL that expired fails with the code
    /// [`ErrorCode::InvalidSignature`](crate::ErrorCode::InvalidSignature): ask for a new one.
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
        let sink = FileSink::create(path.as_ref()).await?;
        download::run(self, source.clone(), sink, &options, None).await
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
        let sink = MemorySink::for_blob(source);
        download::run(self, source.clone(), sink, &options, None).await
    }
}
