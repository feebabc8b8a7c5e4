//! Blobs through raw HTTP, on the embedded local-directory store and on Garage: the store itself refuses anything
//! that is not exactly what was signed, nothing unconfirmed can be downloaded, and no user reaches another's blob.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_blob::ObjectKey;
use synckit_protocol::limits::MAX_BLOB_BYTES;
use synckit_testkit::{TestServer, TestUser, b64, code, engine, on_each_engine, random_bytes};

// On the embedded default (SQLite and a local directory) and on the production engines (Postgres and Garage).
on_each_engine!(
    [embedded, garage]
    upload_confirm_download,
    the_store_refuses_other_lengths_and_bytes,
    other_users_cannot_reach_a_blob,
    bad_requests_are_refused,
    unconfirmed_uploads_are_swept,
    a_sweep_never_removes_a_blob_confirmed_meanwhile,
    blobs_from_before_upload_ids_keep_working,
    deleting_a_blob_removes_its_object_and_only_its_owner_can,
);

/// Some "ciphertext" and what the protocol says about it.
struct Blob {
    bytes: Vec<u8>,
    hash: String,
    checksum: String,
}

fn blob(len: usize) -> Blob {
    let bytes = bytes_of(len);
    Blob { hash: hex::encode(random_bytes(32)), checksum: b64(&Sha256::digest(&bytes)), bytes }
}

fn bytes_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

impl Blob {
    fn upload_request(&self) -> Value {
        json!({"hash": self.hash, "size": self.bytes.len(), "checksum_sha256": self.checksum})
    }

    fn confirm_request(&self) -> Value {
        json!({"hash": self.hash, "size": self.bytes.len()})
    }
}

/// The blob endpoints and the store, as a device reaches them.
trait BlobApi {
    fn resolve(&self, url: &str) -> String;
    async fn begin(&self, user: &TestUser, blob: &Blob) -> Value;
    async fn put(&self, begun: &Value, bytes: Vec<u8>) -> (StatusCode, String);
    async fn confirm(&self, user: &TestUser, blob: &Blob) -> (StatusCode, Value);
    async fn download_url(&self, user: &TestUser, blob: &Blob) -> (StatusCode, Value);
    async fn fetch(&self, url: &str, range: Option<&str>) -> (StatusCode, Vec<u8>);
    async fn store(&self, user: &TestUser, blob: &Blob);
    async fn key(&self, user: &TestUser, blob: &Blob) -> Option<ObjectKey>;
    async fn assert_nothing_stored(&self, user: &TestUser, blob: &Blob);
}

impl BlobApi for TestServer {
    /// A URL as given: absolute for S3, relative to the server for the local store.
    fn resolve(&self, url: &str) -> String {
        if url.starts_with('/') { format!("{}{url}", self.url) } else { url.to_owned() }
    }

    /// Asks for an upload URL and returns the answer.
    async fn begin(&self, user: &TestUser, blob: &Blob) -> Value {
        let (status, body) = self.post("/api/sync/blobs/upload", Some(&user.token), blob.upload_request()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// PUTs `bytes` to the upload URL in `begun`, with its headers except that Content-Length says `bytes`' length.
    async fn put(&self, begun: &Value, bytes: Vec<u8>) -> (StatusCode, String) {
        let url = self.resolve(begun["upload_url"].as_str().expect("an upload URL"));
        // A connection of its own: a store may close one after refusing an upload, and a pooled one could be reused.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let mut request = http.put(url);
        for (name, value) in begun["headers"].as_object().unwrap() {
            if name != "content-length" {
                request = request.header(name, value.as_str().unwrap());
            }
        }
        let response = request.body(bytes).send().await.expect("the store answers");
        (response.status(), response.text().await.unwrap())
    }

    async fn confirm(&self, user: &TestUser, blob: &Blob) -> (StatusCode, Value) {
        self.post("/api/sync/blobs/confirm", Some(&user.token), blob.confirm_request()).await
    }

    async fn download_url(&self, user: &TestUser, blob: &Blob) -> (StatusCode, Value) {
        self.post("/api/sync/blobs/download", Some(&user.token), json!({"hash": blob.hash})).await
    }

    async fn fetch(&self, url: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut request = self.http.get(self.resolve(url));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = request.send().await.expect("the store answers");
        (response.status(), response.bytes().await.unwrap().to_vec())
    }

    /// Uploads and confirms a blob.
    async fn store(&self, user: &TestUser, blob: &Blob) {
        let begun = self.begin(user, blob).await;
        let (status, text) = self.put(&begun, blob.bytes.clone()).await;
        assert!(status.is_success(), "{status}: {text}");
        let (status, body) = self.confirm(user, blob).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Where the catalogue says the blob's bytes are, if it has a record of the blob.
    async fn key(&self, user: &TestUser, blob: &Blob) -> Option<ObjectKey> {
        let stream = synckit_store::StreamId { app_id: user.app_id, user_id: user.user_id };
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&blob.hash, &mut hash).unwrap();
        let record = self.engines.blobs.blob(stream, hash).await.unwrap()?;
        Some(ObjectKey { stream, hash, upload_id: record.upload_id })
    }

    /// Nothing can be confirmed or downloaded under this blob, and the store holds nothing for its record.
    async fn assert_nothing_stored(&self, user: &TestUser, blob: &Blob) {
        let (status, body) = self.confirm(user, blob).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"), "{body}");
        let (status, body) = self.download_url(user, blob).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"), "{body}");
        if let Some(key) = self.key(user, blob).await {
            assert_eq!(self.engines.objects.head(&key).await.unwrap(), None);
        }
    }
}

async fn upload_confirm_download(app: TestServer) {
    let user = app.user().await;
    let blob = blob(300_000);

    let begun = app.begin(&user, &blob).await;
    assert_eq!(begun["already_exists"], false);
    assert!(begun["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(begun["headers"]["content-length"], blob.bytes.len().to_string(), "the length is signed in");
    // Nothing is downloadable before the confirmation.
    let (status, _) = app.download_url(&user, &blob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, text) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_success(), "{status}: {text}");
    let (status, body) = app.confirm(&user, &blob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"hash": blob.hash, "size": blob.bytes.len()}));
    let (status, again) = app.confirm(&user, &blob).await;
    assert_eq!((status, &again), (StatusCode::OK, &body), "confirming twice is harmless");

    let (status, body) = app.download_url(&user, &blob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], blob.bytes.len());
    let url = body["download_url"].as_str().unwrap();
    let (status, bytes) = app.fetch(url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == blob.bytes, "the download is the upload");
    // A cut download resumes from where it stopped.
    let (status, tail) = app.fetch(url, Some("bytes=250000-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(tail == blob.bytes[250_000..]);

    // The same blob again: nothing to upload.
    let begun = app.begin(&user, &blob).await;
    assert_eq!(begun["already_exists"], true);
    assert_eq!(begun["upload_url"], Value::Null);
}

async fn the_store_refuses_other_lengths_and_bytes(app: TestServer) {
    let user = app.user().await;
    let blob = blob(100_000);
    let begun = app.begin(&user, &blob).await;

    let shorter = blob.bytes[..blob.bytes.len() - 1].to_vec();
    let (status, text) = app.put(&begun, shorter).await;
    assert!(status.is_client_error(), "a shorter upload is refused: {status} {text}");
    let mut longer = blob.bytes.clone();
    longer.push(0);
    let (status, text) = app.put(&begun, longer).await;
    assert!(status.is_client_error(), "a longer upload is refused: {status} {text}");
    let mut flipped = blob.bytes.clone();
    flipped[5000] ^= 1;
    let (status, text) = app.put(&begun, flipped).await;
    assert!(status.is_client_error(), "other bytes are refused: {status} {text}");
    app.assert_nothing_stored(&user, &blob).await;

    // The right bytes still go through the same URL afterwards.
    let (status, text) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_success(), "{status}: {text}");
    let (status, body) = app.confirm(&user, &blob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Signed URLs expire. A server of its own whose URLs live one second.
#[tokio::test]
async fn expired_urls_are_refused_local() {
    expired_urls_are_refused(engine::embedded()).await;
}

#[tokio::test]
async fn expired_urls_are_refused_garage() {
    expired_urls_are_refused(engine::garage()).await;
}

async fn expired_urls_are_refused(engine: synckit_testkit::Engine) {
    // S3 signs the time in whole seconds, so a URL of N seconds may work for as little as N - 1: 3 s leaves a fresh
    // URL time to be used on a loaded machine, and waiting 4.1 s is past any URL's end.
    const EXPIRY: Duration = Duration::from_secs(3);
    const PAST_IT: Duration = Duration::from_millis(4100);
    let app = TestServer::start_with(engine, |s| s.blob.url_expiry = EXPIRY).await;
    let user = app.user().await;
    let blob = blob(10_000);
    let begun = app.begin(&user, &blob).await;
    assert_eq!(begun["expires_in"], 3);
    tokio::time::sleep(PAST_IT).await;
    // S3 answers 403 "Request has expired", Garage 400 "Date is too old", the local store 403.
    let (status, text) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_client_error(), "{status}: {text}");
    app.assert_nothing_stored(&user, &blob).await;

    // A fresh URL works, and a download URL expires too.
    app.store(&user, &blob).await;
    let (_, body) = app.download_url(&user, &blob).await;
    tokio::time::sleep(PAST_IT).await;
    let (status, _) = app.fetch(body["download_url"].as_str().unwrap(), None).await;
    assert!(status.is_client_error(), "{status}");
}

async fn other_users_cannot_reach_a_blob(app: TestServer) {
    let (owner, stranger) = (app.user().await, app.user().await);
    let blob = blob(20_000);

    // Uploaded but not yet confirmed: the stranger cannot confirm it.
    let begun = app.begin(&owner, &blob).await;
    let (status, _) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_success());
    let (status, body) = app.confirm(&stranger, &blob).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"));
    let (status, _) = app.confirm(&owner, &blob).await;
    assert_eq!(status, StatusCode::OK);

    // Confirmed: the stranger cannot download it, nor make the owner's URL fetch it for them.
    let (status, body) = app.download_url(&stranger, &blob).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"));
    let (_, body) = app.download_url(&owner, &blob).await;
    let url = body["download_url"].as_str().unwrap();
    let forged = url.replace(&owner.user_id.to_string(), &stranger.user_id.to_string());
    assert_ne!(forged, url);
    let (status, _) = app.fetch(&forged, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a URL edited to another key fails its signature");

    // The same hash is a separate blob for the stranger: not "already there".
    let theirs = app.begin(&stranger, &blob).await;
    assert_eq!(theirs["already_exists"], false);
    assert_ne!(theirs["upload_url"], begun["upload_url"]);
}

async fn bad_requests_are_refused(app: TestServer) {
    let user = app.user().await;
    let blob = blob(10);
    let post = |path: &'static str, body: Value| {
        let token = user.token.clone();
        let app = &app;
        async move { app.post(path, Some(&token), body).await }
    };

    for hash in ["ABC", &"AB".repeat(32), &"g".repeat(64), "../../etc/passwd"] {
        let (status, body) =
            post("/api/sync/blobs/upload", json!({"hash": hash, "size": 10, "checksum_sha256": blob.checksum})).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{hash}: {body}");
    }
    let (status, body) = post(
        "/api/sync/blobs/upload",
        json!({"hash": blob.hash, "size": MAX_BLOB_BYTES + 1, "checksum_sha256": blob.checksum}),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "blob_too_large"), "{body}");
    for checksum in ["not base64!", "AAAA"] {
        let (status, body) =
            post("/api/sync/blobs/upload", json!({"hash": blob.hash, "size": 10, "checksum_sha256": checksum})).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{body}");
    }
    let (status, body) = app.post("/api/sync/blobs/upload", None, blob.upload_request()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "missing_token"));

    // Nothing begun: nothing to confirm or download. A confirm of another size than declared is refused.
    app.assert_nothing_stored(&user, &blob).await;
    app.begin(&user, &blob).await;
    let (status, body) = post("/api/sync/blobs/confirm", json!({"hash": blob.hash, "size": 11})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "blob_mismatch"), "{body}");
    let (status, body) = app.confirm(&user, &blob).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"), "nothing uploaded yet: {body}");
}

async fn unconfirmed_uploads_are_swept(app: TestServer) {
    let user = app.user().await;
    let (abandoned, kept) = (blob(5_000), blob(6_000));
    let begun = app.begin(&user, &abandoned).await;
    let (status, _) = app.put(&begun, abandoned.bytes.clone()).await;
    assert!(status.is_success());
    app.store(&user, &kept).await;
    let abandoned_key = app.key(&user, &abandoned).await.unwrap();

    let swept = synckit_blob::sweep::sweep(
        &*app.engines.blobs,
        &*app.engines.objects,
        time::OffsetDateTime::now_utc() + time::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(swept, 1);
    app.assert_nothing_stored(&user, &abandoned).await;
    assert_eq!(app.engines.objects.head(&abandoned_key).await.unwrap(), None, "its object is removed");
    let (status, body) = app.download_url(&user, &kept).await;
    assert_eq!(status, StatusCode::OK, "confirmed blobs stay: {body}");
    let (_, bytes) = app.fetch(body["download_url"].as_str().unwrap(), None).await;
    assert!(bytes == kept.bytes);
}

/// Rows recorded before upload ids have none, and their objects live under the hash alone: a blob begun then can
/// still be uploaded, confirmed and downloaded, and one abandoned then is swept from there.
async fn blobs_from_before_upload_ids_keep_working(app: TestServer) {
    let user = app.user().await;
    let (kept, abandoned) = (blob(3_000), blob(4_000));
    app.begin(&user, &kept).await;
    app.begin(&user, &abandoned).await;
    app.execute("UPDATE blobs SET upload_id = NULL").await;

    for blob in [&kept, &abandoned] {
        let begun = app.begin(&user, blob).await;
        assert_eq!(app.key(&user, blob).await.unwrap().upload_id, None, "declared again, the row keeps no id");
        let (status, text) = app.put(&begun, blob.bytes.clone()).await;
        assert!(status.is_success(), "{status}: {text}");
    }
    let (status, body) = app.confirm(&user, &kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let abandoned_key = app.key(&user, &abandoned).await.unwrap();
    assert!(app.engines.objects.head(&abandoned_key).await.unwrap().is_some());

    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let swept = synckit_blob::sweep::sweep(&*app.engines.blobs, &*app.engines.objects, later).await.unwrap();
    assert_eq!(swept, 1);
    assert_eq!(app.engines.objects.head(&abandoned_key).await.unwrap(), None);
    let (_, body) = app.download_url(&user, &kept).await;
    let (status, bytes) = app.fetch(body["download_url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == kept.bytes);
}

/// A sweep removes a record, then its object. If the device uploads and confirms the same blob in between, the
/// sweep must not remove the confirmed blob's bytes. The interleaving is driven by hand: the sweep's object store
/// stops at each delete until the test lets it go.
async fn a_sweep_never_removes_a_blob_confirmed_meanwhile(app: TestServer) {
    let user = app.user().await;
    let blob = blob(40_000);
    let begun = app.begin(&user, &blob).await;
    let (status, _) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_success());

    let (objects, mut deleting, gate) = HeldDeletes::new(app.engines.objects.clone());
    let blobs = app.engines.blobs.clone();
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let sweep = tokio::spawn(async move { synckit_blob::sweep::sweep(&*blobs, &objects, later).await });
    deleting.recv().await.expect("the sweep removed the record and is about to delete its object");

    app.store(&user, &blob).await;
    gate.add_permits(1);
    assert_eq!(sweep.await.unwrap().unwrap(), 1);

    let (status, body) = app.download_url(&user, &blob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, bytes) = app.fetch(body["download_url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == blob.bytes, "the confirmed blob keeps its bytes");
}

/// The real object store, except that each delete announces its key and then waits for a permit of the gate.
struct HeldDeletes {
    inner: std::sync::Arc<dyn synckit_blob::ObjectStore>,
    deleting: tokio::sync::mpsc::UnboundedSender<ObjectKey>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl HeldDeletes {
    fn new(
        inner: std::sync::Arc<dyn synckit_blob::ObjectStore>,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<ObjectKey>, std::sync::Arc<tokio::sync::Semaphore>) {
        let (deleting, announced) = tokio::sync::mpsc::unbounded_channel();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        (Self { inner, deleting, gate: gate.clone() }, announced, gate)
    }
}

#[async_trait::async_trait]
impl synckit_blob::ObjectStore for HeldDeletes {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        size: u64,
        checksum: &[u8; 32],
        expires_in: Duration,
        holder: synckit_blob::UrlHolder,
    ) -> Result<synckit_blob::Presigned, synckit_blob::ObjectStoreError> {
        self.inner.presign_put(key, size, checksum, expires_in, holder).await
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
        holder: synckit_blob::UrlHolder,
    ) -> Result<synckit_blob::Presigned, synckit_blob::ObjectStoreError> {
        self.inner.presign_get(key, expires_in, holder).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<synckit_blob::ObjectMeta>, synckit_blob::ObjectStoreError> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), synckit_blob::ObjectStoreError> {
        self.deleting.send(*key).unwrap();
        self.gate.acquire().await.unwrap().forget();
        self.inner.delete(key).await
    }

    async fn ready(&self) -> Result<(), synckit_blob::ObjectStoreError> {
        self.inner.ready().await
    }
}

/// The local store is a directory the server writes itself: if its file is changed behind the server's back,
/// confirm notices, refuses, and removes it.
#[tokio::test]
async fn confirm_checks_the_stored_bytes() {
    let app = TestServer::start(engine::embedded()).await;
    let user = app.user().await;
    let blob = blob(70_000);
    let begun = app.begin(&user, &blob).await;
    let (status, _) = app.put(&begun, blob.bytes.clone()).await;
    assert!(status.is_success());

    let path = app.data_dir.path().join("blobs").join(app.key(&user, &blob).await.unwrap().to_string());
    let mut changed = std::fs::read(&path).unwrap();
    changed[100] ^= 1;
    std::fs::write(&path, changed).unwrap();
    let (status, body) = app.confirm(&user, &blob).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "blob_mismatch"), "{body}");
    assert!(!path.exists(), "the altered object is removed");
    app.assert_nothing_stored(&user, &blob).await;
}

/// `--role blob` serves the blob endpoints and nothing of the other services; other roles do not serve blobs.
#[tokio::test]
async fn the_blob_role_runs_alone() {
    use synckit_server::Role;
    let blob_only = TestServer::start_with(engine::embedded(), |s| s.role = Role::Blob).await;
    let (status, body) = blob_only.post("/api/sync/blobs/upload", None, blob(1).upload_request()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "missing_token"), "served: {body}");
    let (status, body) = blob_only.post("/api/sync/push", None, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{body}");

    let ingest_only = TestServer::start_with(engine::embedded(), |s| s.role = Role::Ingest).await;
    let (status, body) = ingest_only.post("/api/sync/blobs/upload", None, blob(1).upload_request()).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{body}");
}

/// Blob settings that cannot work stop the server at start-up with a message naming the setting. (Half an S3
/// configuration is refused as the settings are read: `settings::tests::half_an_s3_configuration_names_what_is_missing`.)
#[tokio::test]
async fn bad_blob_settings_are_refused_at_start_up() {
    use synckit_server::Server;
    let dir = tempfile::tempdir().unwrap();
    type Spoil = fn(&mut synckit_server::Settings);
    let cases: [(Spoil, &str); 4] = [
        (|s| s.blob.url_expiry = Duration::from_secs(0), "SYNCKIT_BLOB_URL_EXPIRY_SECS"),
        (|s| s.blob.url_expiry = Duration::from_secs(8 * 24 * 3600), "SYNCKIT_BLOB_URL_EXPIRY_SECS"),
        (|s| s.blob.upload_ttl = Duration::from_secs(60), "SYNCKIT_BLOB_UPLOAD_TTL_SECS"),
        (|s| s.blob.sweep_interval = Duration::from_secs(0), "SYNCKIT_BLOB_SWEEP_INTERVAL_SECS"),
    ];
    for (spoil, named) in cases {
        let mut settings = engine::embedded().settings(dir.path()).await;
        spoil(&mut settings);
        let err = Server::build(&settings).await.expect_err(named).to_string();
        assert!(err.contains(named), "{err}");
    }
}

async fn deleting_a_blob_removes_its_object_and_only_its_owner_can(app: TestServer) {
    let (ada, bob) = (app.user().await, app.user().await);
    let kept = blob(1000);
    let doomed =
        Blob { bytes: kept.bytes.clone(), checksum: kept.checksum.clone(), hash: hex::encode(random_bytes(32)) };
    app.store(&ada, &kept).await;
    app.store(&ada, &doomed).await;
    let key = app.key(&ada, &doomed).await.expect("stored");
    assert!(app.engines.objects.head(&key).await.unwrap().is_some());
    let path = format!("/api/sync/blobs/{}", doomed.hash);

    // Another user, a sign-in token, no token: nothing is deleted.
    let (status, body) = app.send(Method::DELETE, &path, Some(&bob.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"), "{body}");
    let (status, body) = app.send(Method::DELETE, &path, Some(&ada.sign_in_token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_token_required"), "{body}");
    let (status, _) = app.send(Method::DELETE, &path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app.engines.objects.head(&key).await.unwrap().is_some(), "still there");

    // The owner deletes it: gone from the catalogue and the store; the other blob stays.
    let (status, body) = app.send(Method::DELETE, &path, Some(&ada.token), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(app.engines.objects.head(&key).await.unwrap(), None, "its object is removed");
    app.assert_nothing_stored(&ada, &doomed).await;
    let (status, _) = app.download_url(&ada, &kept).await;
    assert_eq!(status, StatusCode::OK, "the other blob is untouched");
    let (status, body) = app.send(Method::DELETE, &path, Some(&ada.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "blob_not_found"), "a repeated delete");
    let (status, body) = app.send(Method::DELETE, "/api/sync/blobs/not-a-hash", Some(&ada.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{body}");

    // Uploaded again, it is a new blob, under a new object.
    app.store(&ada, &doomed).await;
    let again = app.key(&ada, &doomed).await.unwrap();
    assert_ne!(again.upload_id, key.upload_id);
    let (status, body) = app.download_url(&ada, &doomed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
