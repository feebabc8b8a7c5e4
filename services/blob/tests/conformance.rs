//! The object store port's conformance suite, run on both adapters: the local directory (served by its own routes
//! on a real port) and S3 on the test Garage.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use synckit_blob::{
    HolderCheck, LocalStore, ObjectKey, ObjectMeta, ObjectStore, ObjectStoreError, S3Config, S3Store, UrlHolder,
};
use synckit_http::ApiError;
use synckit_protocol::ErrorCode;
use synckit_store::StreamId;
use synckit_testkit::{Engine, FromEngine, on_each_engine};
use uuid::Uuid;

/// An adapter under test, and the base URL its relative URLs resolve against.
struct Subject {
    store: Arc<dyn ObjectStore>,
    base: String,
    _dir: Option<tempfile::TempDir>,
}

/// The holder every URL here is signed for.
const HOLDER: UrlHolder = UrlHolder { device_id: Uuid::nil(), token_version: 0 };

/// Holders stand unless their token version is `u64::MAX`, the mark of a revoked one.
struct Holders;

#[async_trait::async_trait]
impl HolderCheck for Holders {
    async fn check(&self, _stream: StreamId, holder: UrlHolder) -> Result<(), ApiError> {
        if holder.token_version == u64::MAX {
            return Err(ApiError::new(ErrorCode::InvalidToken, "revoked"));
        }
        Ok(())
    }
}

async fn local() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path(), synckit_http::KeyRing::new(&[9; 32], []).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = store.routes(Arc::new(Holders)).expect("the local store serves its own URLs");
    tokio::spawn(async move { axum::serve(listener, routes).await });
    Subject { store: Arc::new(store), base, _dir: Some(dir) }
}

async fn garage() -> Subject {
    let store = S3Store::new(&synckit_testkit::garage().await.expect("the test Garage"));
    assert!(store.routes(Arc::new(Holders)).is_none());
    Subject { store: Arc::new(store), base: String::new(), _dir: None }
}

impl FromEngine for Subject {
    async fn from_engine(engine: Engine) -> Self {
        if engine.garage { garage().await } else { local().await }
    }
}

on_each_engine!(
    [embedded, garage]
    put_head_get_delete,
    refuses_what_was_not_signed,
    missing_objects,
    uploads_of_one_hash_are_separate_objects,
    a_working_store_is_ready,
);

fn new_key() -> ObjectKey {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    ObjectKey {
        stream: StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() },
        hash,
        upload_id: Some(Uuid::new_v4()),
    }
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Subject {
    fn url(&self, url: &str) -> String {
        if url.starts_with('/') { format!("{}{url}", self.base) } else { url.to_owned() }
    }

    /// Signs an upload of `signed` and sends `sent` through it; returns the store's status.
    async fn upload(&self, key: &ObjectKey, signed: &[u8], sent: Vec<u8>) -> reqwest::StatusCode {
        let presigned = self
            .store
            .presign_put(key, signed.len() as u64, &checksum(signed), Duration::from_secs(60), HOLDER)
            .await
            .unwrap();
        // One connection per upload: a store may close it after refusing one.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let mut request = http.put(self.url(&presigned.url));
        for (name, value) in &presigned.headers {
            if name != "content-length" {
                request = request.header(name, value);
            }
        }
        request.body(sent).send().await.expect("the store answers").status()
    }

    async fn get(&self, key: &ObjectKey, range: Option<&str>) -> (reqwest::StatusCode, Vec<u8>) {
        let presigned = self.store.presign_get(key, Duration::from_secs(60), HOLDER).await.unwrap();
        let mut request = reqwest::Client::new().get(self.url(&presigned.url));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.bytes().await.unwrap().to_vec())
    }
}

async fn put_head_get_delete(subject: Subject) {
    let key = new_key();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    assert!(subject.upload(&key, &bytes, bytes.clone()).await.is_success());
    let meta = subject.store.head(&key).await.unwrap();
    assert_eq!(meta, Some(ObjectMeta { size: bytes.len() as u64, checksum: Some(checksum(&bytes)) }));

    let (status, got) = subject.get(&key, None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(got == bytes);
    let (status, got) = subject.get(&key, Some("bytes=199990-")).await;
    assert_eq!(status, reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(got, bytes[199_990..]);
    let (status, got) = subject.get(&key, Some("bytes=10-19")).await;
    assert_eq!((status, got.as_slice()), (reqwest::StatusCode::PARTIAL_CONTENT, &bytes[10..20]));

    subject.store.delete(&key).await.unwrap();
    assert_eq!(subject.store.head(&key).await.unwrap(), None);
    assert!(subject.get(&key, None).await.0.is_client_error());
}

/// Each upload of a hash is an object of its own, beside the one a blob from before upload ids has under the hash
/// alone: removing one leaves the others and their bytes.
async fn uploads_of_one_hash_are_separate_objects(subject: Subject) {
    let first = new_key();
    let (second, legacy) =
        (ObjectKey { upload_id: Some(Uuid::new_v4()), ..first }, ObjectKey { upload_id: None, ..first });
    let bytes = |n: u8| vec![n; 1000];
    for (key, n) in [(&first, 1), (&second, 2), (&legacy, 3)] {
        assert!(subject.upload(key, &bytes(n), bytes(n)).await.is_success(), "{key}");
    }
    subject.store.delete(&first).await.unwrap();
    assert_eq!(subject.store.head(&first).await.unwrap(), None);
    for (key, n) in [(&second, 2), (&legacy, 3)] {
        assert_eq!(subject.get(key, None).await, (reqwest::StatusCode::OK, bytes(n)), "{key}");
    }
}

async fn refuses_what_was_not_signed(subject: Subject) {
    let key = new_key();
    let bytes = vec![42u8; 70_000];
    let mut other = bytes.clone();
    other[69_999] = 0;
    for sent in [bytes[1..].to_vec(), [&bytes[..], b"!"].concat(), other] {
        let status = subject.upload(&key, &bytes, sent).await;
        assert!(status.is_client_error(), "{status}");
        assert_eq!(subject.store.head(&key).await.unwrap(), None, "nothing is stored");
    }
    // A URL signed for one key does not reach another.
    let presigned = subject.store.presign_get(&key, Duration::from_secs(60), HOLDER).await.unwrap();
    let elsewhere = new_key();
    let forged = presigned.url.replace(&key.stream.user_id.to_string(), &elsewhere.stream.user_id.to_string());
    let status = reqwest::Client::new().get(subject.url(&forged)).send().await.unwrap().status();
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
}

/// A store that works says it is ready, quickly.
async fn a_working_store_is_ready(subject: Subject) {
    let answer = tokio::time::timeout(Duration::from_secs(5), subject.store.ready()).await;
    answer.expect("readiness answers within 5 s").expect("a working store is ready");
}

async fn missing_objects(subject: Subject) {
    let key = new_key();
    assert_eq!(subject.store.head(&key).await.unwrap(), None);
    subject.store.delete(&key).await.expect("deleting nothing is fine");
}

/// An S3 endpoint that does not answer is "unavailable" (the server answers 503 and clients retry), over TLS too.
#[tokio::test]
async fn an_unreachable_s3_is_unavailable() {
    for endpoint in ["http://127.0.0.1:1", "https://127.0.0.1:1"] {
        let store = S3Store::new(&S3Config {
            endpoint: endpoint.to_owned(),
            public_endpoint: None,
            region: "garage".to_owned(),
            bucket: "b".to_owned(),
            access_key_id: "k".to_owned(),
            secret_access_key: "s".into(),
        });
        let err = store.head(&new_key()).await.unwrap_err();
        assert!(matches!(err, ObjectStoreError::Unavailable(_)), "{endpoint}: {err:?}");
        let err = store.ready().await.unwrap_err();
        assert!(matches!(err, ObjectStoreError::Unavailable(_)), "not ready: {endpoint}: {err:?}");
    }
}

/// With a public endpoint, the server reaches the store at its own address and signs URLs for the one clients use:
/// the URLs name the public address, and uploads and downloads through them work.
#[tokio::test]
async fn urls_are_signed_for_the_public_endpoint() {
    let mut config = synckit_testkit::garage().await.expect("the test Garage");
    // The same Garage under another name, as clients outside a private network would reach it.
    let public = config.endpoint.replace("127.0.0.1", "localhost");
    config.public_endpoint = Some(public.clone());
    let subject = Subject { store: Arc::new(S3Store::new(&config)), base: String::new(), _dir: None };
    let key = new_key();
    let presigned = subject.store.presign_put(&key, 3, &checksum(b"abc"), Duration::from_secs(60), HOLDER).await;
    assert!(presigned.unwrap().url.starts_with(&format!("{public}/")), "an upload URL names the public endpoint");
    assert!(subject.upload(&key, b"abc", b"abc".to_vec()).await.is_success());
    // The server's own calls go to its endpoint.
    assert_eq!(subject.store.head(&key).await.unwrap().map(|m| m.size), Some(3));
    let (status, got) = subject.get(&key, None).await;
    assert_eq!((status, got.as_slice()), (reqwest::StatusCode::OK, &b"abc"[..]));
    subject.store.delete(&key).await.unwrap();
}

/// A store that takes connections and never answers is not ready, and says so within the readiness bound.
#[tokio::test]
async fn a_silent_s3_is_not_ready_within_the_bound() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn); // read nothing, answer nothing
        }
    });
    let store = S3Store::new(&S3Config {
        endpoint,
        public_endpoint: None,
        region: "garage".to_owned(),
        bucket: "b".to_owned(),
        access_key_id: "k".to_owned(),
        secret_access_key: "s".into(),
    });
    let started = std::time::Instant::now();
    let err = store.ready().await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < synckit_blob::s3::READY_TIMEOUT + Duration::from_secs(2), "{:?}", started.elapsed());
    held.abort();
}

/// The embedded store is not ready once its directory is gone.
#[tokio::test]
async fn a_local_store_without_its_directory_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let store = LocalStore::open(&root, synckit_http::KeyRing::new(&[9; 32], []).unwrap()).unwrap();
    store.ready().await.expect("ready while its directory is there");
    std::fs::remove_dir_all(&root).unwrap();
    assert!(store.ready().await.is_err(), "not ready without its directory");
}
