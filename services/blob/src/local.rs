//! The embedded object store: a local directory, behind URLs this server signs and serves itself.
//!
//! It keeps the S3 adapter's guarantees, so the rest of the service cannot tell them apart:
//! - A URL is signed (HMAC-SHA256 under a deployment secret) over the method, the key, and for uploads the exact
//!   length and SHA-256; it expires. Anything else is refused with 403 `invalid_signature`. The URL names the id of
//!   the key that signed it (`kid`), so URLs signed before a rotation work until they expire while the old secret
//!   is kept as a previous one.
//! - Unlike S3, it does better than the expiry: a URL also names its holder (the device whose token asked for it,
//!   at the token's version, signed in), and each use asks the [`HolderCheck`] whether that still stands. A removed
//!   device's URLs stop working at once, as its token does (401).
//! - An upload streams into a temporary file while its length and SHA-256 are checked; bytes past the signed
//!   length stop it at once. Only an exact match is fsynced and renamed into place (and the directory fsynced), so
//!   a reader sees a whole, verified object or none.
//! - Downloads honour a single byte range, so a cut download can resume.
//!
//! Objects live at `<root>/<app>/<user>/<hash>.<upload id>` (`<hash>` alone for blobs recorded before upload ids);
//! temporary files in `<root>/.tmp`, emptied at start-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use synckit_http::ApiError;
use synckit_http::keys::{KeyRing, SigningKey};
use synckit_protocol::ErrorCode;
use synckit_protocol::paths::BLOBS_LOCAL;
use synckit_store::StreamId;
use time::OffsetDateTime;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

use crate::objects::{HolderCheck, ObjectKey, ObjectMeta, ObjectStore, ObjectStoreError, Presigned, UrlHolder};

/// The longest one upload or download may take, body included.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upload bytes buffered before a write to the temporary file.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Download bytes read from disk at a time.
const READ_CHUNK: usize = 256 * 1024;

/// The local directory store. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    keys: KeyRing,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore").field("root", &self.inner.root).finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens the store in `root` (created if needed), signing URLs with the current key of `keys` and accepting
    /// those of any of its keys. Every instance serving the same directory must share the keys. Leftovers of
    /// interrupted uploads are removed.
    pub fn open(root: &Path, keys: KeyRing) -> std::io::Result<Self> {
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp)?;
        for leftover in std::fs::read_dir(&tmp)? {
            std::fs::remove_file(leftover?.path())?;
        }
        Ok(Self { inner: Arc::new(Inner { root: root.to_owned(), keys }) })
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.inner.root.join(key.to_string())
    }

    fn mac(
        signing: &SigningKey,
        method: &str,
        key: &ObjectKey,
        size: &str,
        sha256: &str,
        signed: &Signed,
    ) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(signing.secret()).expect("any key length");
        let Signed { expires, device, tv, .. } = signed;
        mac.update(format!("{method}\n{key}\n{size}\n{sha256}\n{expires}\n{device}\n{tv}").as_bytes());
        mac
    }

    /// The query that signs a URL for `holder` until `expires`, under the current key, which it names.
    fn sign(&self, method: &str, key: &ObjectKey, size: &str, sha256: &str, expires: i64, holder: UrlHolder) -> String {
        let current = self.inner.keys.current();
        let unsigned =
            Signed { expires, device: holder.device_id, tv: holder.token_version, kid: None, signature: String::new() };
        let signature = hex::encode(Self::mac(current, method, key, size, sha256, &unsigned).finalize().into_bytes());
        let (device, tv, kid) = (holder.device_id, holder.token_version, current.id());
        format!("expires={expires}&device={device}&tv={tv}&kid={kid}&signature={signature}")
    }

    /// Checks a URL's signature, under the key it names, then its expiry (so a forged URL learns nothing about
    /// timing), then that its holder still stands.
    async fn verify(
        &self,
        holders: &dyn HolderCheck,
        method: &str,
        key: &ObjectKey,
        size: &str,
        sha256: &str,
        signed: &Signed,
    ) -> Result<(), ApiError> {
        let signature = hex::decode(&signed.signature).map_err(|_| bad_signature())?;
        self.inner
            .keys
            .candidates(signed.kid.as_deref())
            .find(|k| Self::mac(k, method, key, size, sha256, signed).verify_slice(&signature).is_ok())
            .ok_or_else(bad_signature)?;
        if OffsetDateTime::now_utc().unix_timestamp() > signed.expires {
            return Err(ApiError::new(ErrorCode::InvalidSignature, "the URL has expired; ask for a new one"));
        }
        holders.check(key.stream, UrlHolder { device_id: signed.device, token_version: signed.tv }).await
    }
}

fn expiry(expires_in: Duration) -> i64 {
    OffsetDateTime::now_utc().unix_timestamp() + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2)
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        size: u64,
        checksum: &[u8; 32],
        expires_in: Duration,
        holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError> {
        let (size, sha256, expires) = (size.to_string(), hex::encode(checksum), expiry(expires_in));
        let signed = self.sign("PUT", key, &size, &sha256, expires, holder);
        Ok(Presigned {
            url: format!("{BLOBS_LOCAL}/{key}?size={size}&sha256={sha256}&{signed}"),
            headers: [(header::CONTENT_LENGTH.to_string(), size)].into(),
        })
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
        holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError> {
        let signed = self.sign("GET", key, "", "", expiry(expires_in), holder);
        Ok(Presigned { url: format!("{BLOBS_LOCAL}/{key}?{signed}"), headers: Default::default() })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        let path = self.path_of(key);
        // Hashing reads the whole file: off the async runtime.
        let hashed =
            tokio::task::spawn_blocking(move || sha256_of_file(&path)).await.map_err(ObjectStoreError::other)?;
        match hashed {
            Ok((size, checksum)) => Ok(Some(ObjectMeta { size, checksum: Some(checksum) })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectStoreError> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(e)),
            _ => Ok(()),
        }
    }

    /// The directory and its temporary area are still there, directories: where uploads land.
    async fn ready(&self) -> Result<(), ObjectStoreError> {
        let tmp = self.inner.root.join(".tmp");
        match tokio::fs::metadata(&tmp).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(ObjectStoreError::other(format!("{} is not a directory", tmp.display()))),
            Err(e) => Err(io_error(e)),
        }
    }

    fn routes(&self, holders: Arc<dyn HolderCheck>) -> Option<Router> {
        let router = Router::new()
            .route(&format!("{BLOBS_LOCAL}/{{app}}/{{user}}/{{name}}"), put(upload).get(download))
            .layer(DefaultBodyLimit::disable())
            .layer(from_fn_with_state(TRANSFER_TIMEOUT, synckit_http::timeout::request_timeout))
            .with_state(Served { store: self.clone(), holders });
        Some(router)
    }
}

fn io_error(e: std::io::Error) -> ObjectStoreError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        ObjectStoreError::unavailable(e)
    } else {
        ObjectStoreError::other(e)
    }
}

fn sha256_of_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hasher.finalize().into()))
}

/// What the transfer routes share: the store, and who says whether a URL's holder still stands.
#[derive(Clone)]
struct Served {
    store: LocalStore,
    holders: Arc<dyn HolderCheck>,
}

/// The signed part of a URL's query, after what it is for: expiry, holder, the id of the key that signed it and the
/// signature.
#[derive(Debug, Deserialize)]
struct Signed {
    expires: i64,
    device: Uuid,
    tv: u64,
    kid: Option<String>,
    signature: String,
}

/// An upload URL's query. Not a flattened [`Signed`]: flattening loses the numbers of a query string.
#[derive(Debug, Deserialize)]
struct PutQuery {
    size: u64,
    sha256: String,
    expires: i64,
    device: Uuid,
    tv: u64,
    kid: Option<String>,
    signature: String,
}

fn bad_signature() -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, "the URL's signature does not match; use the URL exactly as given")
}

fn mismatch(message: String) -> ApiError {
    ApiError::new(ErrorCode::BlobMismatch, message)
}

/// The object a URL names. A path that is not `<app>/<user>/<hash>.<upload id>` or `<app>/<user>/<hash>`, each
/// written as [`ObjectKey`] writes it, names nothing.
fn object_key((app, user, name): (String, String, String)) -> Result<ObjectKey, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such object");
    let stream = StreamId {
        app_id: Uuid::parse_str(&app).map_err(|_| not_found())?,
        user_id: Uuid::parse_str(&user).map_err(|_| not_found())?,
    };
    let (hash, upload_id) = match name.split_once('.') {
        Some((hash, upload_id)) => (hash, Some(Uuid::parse_str(upload_id).map_err(|_| not_found())?)),
        None => (name.as_str(), None),
    };
    if !synckit_protocol::blobs::is_blob_hash(hash) {
        return Err(not_found());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash, &mut bytes).map_err(|_| not_found())?;
    let key = ObjectKey { stream, hash: bytes, upload_id };
    // One spelling per object: another way of writing an upload id would name the same file under another key.
    if !key.to_string().ends_with(&name) {
        return Err(not_found());
    }
    Ok(key)
}

/// A temporary file, removed unless it is renamed into place.
struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn upload(
    State(Served { store, holders }): State<Served>,
    UrlPath(path): UrlPath<(String, String, String)>,
    query: Result<Query<PutQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let key = object_key(path)?;
    let Query(q) = query.map_err(|_| bad_signature())?;
    let sha256 = q.sha256.to_ascii_lowercase();
    let signed = Signed { expires: q.expires, device: q.device, tv: q.tv, kid: q.kid, signature: q.signature };
    store.verify(&*holders, "PUT", &key, &q.size.to_string(), &sha256, &signed).await?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(&sha256, &mut expected).map_err(|_| bad_signature())?;

    if let Some(declared) = headers.get(header::CONTENT_LENGTH) {
        let declared = declared.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        if declared != Some(q.size) {
            return Err(mismatch(format!("Content-Length must be the signed length, {} bytes", q.size)));
        }
    }

    let tmp = TempFile { path: store.inner.root.join(".tmp").join(Uuid::new_v4().to_string()), kept: false };
    let file = tokio::fs::File::create(&tmp.path).await.map_err(|e| ApiError::internal(&e))?;
    let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) =
        stream.try_next().await.map_err(|_| ApiError::invalid("the upload was cut short; nothing was stored"))?
    {
        received += chunk.len() as u64;
        if received > q.size {
            return Err(mismatch(format!("the upload is longer than the signed {} bytes; nothing was stored", q.size)));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| ApiError::internal(&e))?;
    }
    if received != q.size {
        return Err(mismatch(format!("received {received} bytes, not the signed {}; nothing was stored", q.size)));
    }
    if <[u8; 32]>::from(hasher.finalize()) != expected {
        return Err(mismatch("the bytes' SHA-256 is not the signed checksum; nothing was stored".to_owned()));
    }

    file.flush().await.map_err(|e| ApiError::internal(&e))?;
    let file = file.into_inner();
    file.sync_all().await.map_err(|e| ApiError::internal(&e))?;
    drop(file);
    let destination = store.path_of(&key);
    persist(&tmp.path, &destination).await.map_err(|e| ApiError::internal(&e))?;
    let mut tmp = tmp;
    tmp.kept = true;
    Ok(StatusCode::OK)
}

/// Renames a synced temporary file into place and syncs the directory, so the rename survives a crash.
async fn persist(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().expect("object paths have a parent").to_owned();
    tokio::fs::create_dir_all(&dir).await?;
    tokio::fs::rename(from, to).await?;
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await.map_err(std::io::Error::other)?
}

async fn download(
    State(Served { store, holders }): State<Served>,
    UrlPath(path): UrlPath<(String, String, String)>,
    query: Result<Query<Signed>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = object_key(path)?;
    let Query(signed) = query.map_err(|_| bad_signature())?;
    store.verify(&*holders, "GET", &key, "", "", &signed).await?;

    let mut file = match tokio::fs::File::open(store.path_of(&key)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(ErrorCode::BlobNotFound, "no such blob in the store"));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    };
    let len = file.metadata().await.map_err(|e| ApiError::internal(&e))?.len();

    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some((start, _)) if start >= len => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(header::CONTENT_RANGE, header_value(format!("bytes */{len}")));
            return Ok(response);
        }
        Some((start, last)) => (StatusCode::PARTIAL_CONTENT, start, last.map_or(len, |l| l.saturating_add(1).min(len))),
    };
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| ApiError::internal(&e))?;
    let body =
        tokio_util::io::ReaderStream::with_capacity(tokio::io::AsyncReadExt::take(file, end - start), READ_CHUNK);

    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(header::CONTENT_RANGE, header_value(format!("bytes {start}-{}/{len}", end - 1)));
    }
    Ok(response)
}

fn header_value(value: String) -> HeaderValue {
    HeaderValue::try_from(value).expect("digits, spaces and punctuation are a valid header value")
}

/// A single `bytes=first-[last]` range. Other forms (suffixes, several ranges) are ignored, which the standard
/// allows: the whole object is sent instead.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        last => Some(last.parse().ok()?),
    };
    match last {
        Some(last) if last < first => None,
        last => Some((first, last)),
    }
}

#[cfg(test)]
mod tests;
