//! Encrypted blobs through the SDK against a real server, with blobs on the local disk (the embedded default) and
//! in Garage (S3). A proxy in front of the store stands in for network faults and for a store that tampers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use synckit::crypto::blob::SEALED_CHUNK_BYTES;
use synckit::keystore::MemoryKeyStore;
use synckit::{BlobDownloadUrl, BlobId, BlobOptions, BlobUploadUrl, ErrorCode, ErrorKind, Progress, SyncKitClient};
use synckit_testkit::proxy::range_start;
use synckit_testkit::{Engine, Fault, FaultProxy, GARAGE_ADDR, TestServer, email, engine, on_each_engine};

use crate::Clients;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

on_each_engine!(
    [embedded, garage]
    files_of_every_boundary_size_reach_another_device,
    the_same_content_is_stored_once,
    buffers_round_trip,
    progress_climbs_to_the_total,
    a_tampered_blob_fails_and_leaves_no_file,
    cut_transfers_recover,
    a_refused_url_is_replaced,
    an_expired_url_is_refused,
    an_unknown_blob_is_not_found,
    a_deleted_blob_is_gone_and_can_be_uploaded_again,
);

const KIB: usize = 1024;

async fn files_of_every_boundary_size_reach_another_device(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let dir = tempfile::tempdir().unwrap();
    for (i, len) in [0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 3 * 1024 * KIB + 7].into_iter().enumerate() {
        let original = write_sample(dir.path(), &format!("in-{i}"), len, i as u64);
        let uploaded = laptop.upload_blob(original.as_path()).await.unwrap();
        assert_eq!((uploaded.size, uploaded.already_existed), (len as u64, false), "{len} bytes");

        let copy = dir.path().join(format!("out-{i}"));
        assert_eq!(phone.download_blob(&uploaded.id, &copy).await.unwrap(), len as u64);
        assert!(std::fs::read(&copy).unwrap() == std::fs::read(&original).unwrap(), "{len} bytes arrive intact");
    }
}

async fn the_same_content_is_stored_once(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_sample(dir.path(), "report.pdf", 200 * KIB, 1);

    let first = laptop.upload_blob(file.as_path()).await.unwrap();
    assert!(!first.already_existed);
    let again = laptop.upload_blob(file.as_path()).await.unwrap();
    assert_eq!((again.id, again.already_existed), (first.id, true), "a second upload sends nothing");
    let as_bytes = phone.upload_blob(std::fs::read(&file).unwrap()).await.unwrap();
    assert_eq!((as_bytes.id, as_bytes.already_existed), (first.id, true), "the same bytes from another device");

    // Another user's id for the same file differs: ids are keyed per user.
    let (stranger, _) = rig.two_devices().await;
    let theirs = stranger.upload_blob(file.as_path()).await.unwrap();
    assert!(!theirs.already_existed);
    assert_ne!(theirs.id, first.id);
}

async fn buffers_round_trip(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let dir = tempfile::tempdir().unwrap();
    for (i, len) in [0, 1, 64 * KIB, 200 * KIB + 3].into_iter().enumerate() {
        let data = sample(len, 10 + i as u64);
        let uploaded = laptop.upload_blob(data.clone()).await.unwrap();
        assert_eq!(uploaded.size, len as u64);
        assert!(phone.download_blob_bytes(&uploaded.id).await.unwrap() == data, "{len} bytes into memory");
        let file = dir.path().join(format!("b{i}"));
        phone.download_blob(&uploaded.id, &file).await.unwrap();
        assert!(std::fs::read(&file).unwrap() == data, "{len} bytes into a file");
    }
}

async fn progress_climbs_to_the_total(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let dir = tempfile::tempdir().unwrap();
    let len = 1024 * KIB + 5;
    let file = write_sample(dir.path(), "video", len, 2);

    let (options, seen) = recorded();
    let uploaded = laptop.upload_blob_with(file.as_path(), options).await.unwrap();
    assert_climbs(&seen.lock().unwrap(), len as u64);

    let (options, seen) = recorded();
    phone.download_blob_with(&uploaded.id, dir.path().join("copy"), options).await.unwrap();
    assert_climbs(&seen.lock().unwrap(), len as u64);

    let (options, seen) = recorded();
    phone.download_blob_bytes_with(&uploaded.id, options).await.unwrap();
    assert_climbs(&seen.lock().unwrap(), len as u64);

    // Nothing to send: straight to the total.
    let (options, seen) = recorded();
    assert!(laptop.upload_blob_with(file.as_path(), options).await.unwrap().already_existed);
    let total = len as u64;
    assert_eq!(*seen.lock().unwrap(), [Progress { done: 0, total }, Progress { done: total, total }]);
}

async fn a_tampered_blob_fails_and_leaves_no_file(store: Engine) {
    let rig = Rig::proxied(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let original = sample(300 * KIB, 3);
    let id = laptop.upload_blob(original.clone()).await.unwrap().id;

    let downloads = tempfile::tempdir().unwrap();
    let destination = downloads.path().join("photo.jpg");
    let existing = downloads.path().join("kept.jpg");
    std::fs::write(&existing, b"the previous version").unwrap();
    let flip_at = 2 * SEALED_CHUNK_BYTES + 100;
    match store.garage {
        // Someone with access to the server's disk flips one bit of the stored ciphertext.
        false => {
            let stored = rig.stored_blob(&id);
            let mut bytes = std::fs::read(&stored).unwrap();
            bytes[flip_at] ^= 1;
            std::fs::write(&stored, bytes).unwrap();
        }
        // The store hands out a flipped bit.
        true => {
            rig.proxy().arm("GET", &id.to_hex(), Fault::Flip(flip_at));
            rig.proxy().arm("GET", &id.to_hex(), Fault::Flip(flip_at));
        }
    }
    let err = phone.download_blob(&id, &destination).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    assert!(!destination.exists(), "a failed download leaves nothing at its destination");
    let err = phone.download_blob(&id, &existing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"the previous version", "nor changes what was there");
    let left: Vec<_> = std::fs::read_dir(downloads.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["kept.jpg"], "and no temporary file stays behind");

    if !store.garage {
        // Cut short on the disk: the opener misses the last chunk.
        let stored = rig.stored_blob(&id);
        let sealed = std::fs::read(&stored).unwrap();
        std::fs::write(&stored, &sealed[..2 * SEALED_CHUNK_BYTES]).unwrap();
        let err = phone.download_blob_bytes(&id).await.map(|bytes| bytes.len()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    }
}

/// No store is reached, so one store is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_over_the_limit_is_refused_before_any_request() {
    let server = TestServer::start(engine::embedded()).await;
    let counter = FaultProxy::start(server.addr).await;
    let client = server.client_with(&counter.url, Arc::new(MemoryKeyStore::default()));
    let email = email();
    client.register(&email, "pw").await.unwrap();
    client.authenticate(&email, "pw").await.unwrap();
    client.setup_encryption_new("pw").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.iso");
    // Sparse: 500 MiB and a byte, without the disk space or the time to read it.
    std::fs::File::create(&huge).unwrap().set_len(500 * 1024 * 1024 + 1).unwrap();
    let requests = counter.heads().len();
    let (options, seen) = recorded();
    let err = client.upload_blob_with(huge.as_path(), options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("at most 500 MiB"), "{err}");
    assert_eq!(counter.heads().len(), requests, "nothing was sent");
    assert!(seen.lock().unwrap().is_empty(), "no progress either");
}

async fn cut_transfers_recover(store: Engine) {
    let rig = Rig::proxied(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let original = sample(2 * 1024 * KIB + 9, 4);

    // The upload's answer is lost: the upload starts over, and the blob is stored.
    let prepared = laptop.prepare_blob(original.clone()).await.unwrap();
    let id = prepared.id();
    rig.proxy().arm("PUT", &id.to_hex(), Fault::Cut(0));
    let uploaded = laptop.upload_blob(original.clone()).await.unwrap();
    assert_eq!((uploaded.id, uploaded.already_existed), (id, false));
    assert_eq!(rig.proxy().fired(), 1);
    assert_eq!(rig.proxy().requests("PUT", &id.to_hex()).len(), 2, "sent again");

    // The download breaks off after 300 KB: it resumes from the last whole chunk and arrives intact.
    rig.proxy().arm("GET", &id.to_hex(), Fault::Cut(300 * KIB));
    let (options, seen) = recorded();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    phone.download_blob_with(&id, &copy, options).await.unwrap();
    assert!(std::fs::read(&copy).unwrap() == original, "intact after the cut");
    assert_eq!(rig.proxy().fired(), 2);
    let gets = rig.proxy().requests("GET", &id.to_hex());
    assert_eq!(gets.len(), 2, "{gets:?}");
    let resumed_at = range_start(&gets[1]).expect("the second request asks for the rest");
    assert!(resumed_at > 0 && resumed_at.is_multiple_of(SEALED_CHUNK_BYTES as u64), "resumed at {resumed_at}");
    assert!(resumed_at <= 300 * KIB as u64, "nothing after the cut was counted as received");
    assert_climbs(&seen.lock().unwrap(), original.len() as u64);
}

async fn a_refused_url_is_replaced(store: Engine) {
    let rig = Rig::proxied(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let original = sample(150 * KIB, 5);
    let id = laptop.prepare_blob(original.clone()).await.unwrap().id();

    // The store refuses a URL on its first use, as it would one that expired on the way; the SDK asks for another.
    // Refused again on its first use, the fresh URL shows the store refuses fresh URLs: no third.
    rig.proxy().arm("PUT", &id.to_hex(), rig.forbidden());
    rig.proxy().arm("PUT", &id.to_hex(), rig.forbidden());
    let err = laptop.upload_blob(original.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidSignature), "{err}");
    assert_eq!(rig.proxy().requests("PUT", &id.to_hex()).len(), 2);

    // A URL that served an attempt before it was refused (it expired during a long upload) is replaced every time.
    rig.proxy().arm("PUT", &id.to_hex(), rig.forbidden());
    rig.proxy().arm("PUT", &id.to_hex(), Fault::Cut(0));
    rig.proxy().arm("PUT", &id.to_hex(), rig.forbidden());
    assert_eq!(laptop.upload_blob(original.clone()).await.unwrap().id, id);
    assert_eq!(rig.proxy().requests("PUT", &id.to_hex()).len(), 2 + 4, "refused, cut, refused, stored");
    rig.proxy().arm("GET", &id.to_hex(), rig.forbidden());
    assert!(phone.download_blob_bytes(&id).await.unwrap() == original);
    assert_eq!(rig.proxy().requests("GET", &id.to_hex()).len(), 2);
    assert_eq!(rig.proxy().fired(), 6);

    // Step by step, the refusal is the caller's to handle, with the same code whichever the store.
    let url = phone.blob_download_url(&id).await.unwrap();
    rig.proxy().arm("GET", &id.to_hex(), rig.forbidden());
    let err = phone.blob_download_bytes(&url, BlobOptions::default()).await.map(|bytes| bytes.len()).unwrap_err();
    assert_eq!((err.kind(), err.code()), (ErrorKind::InvalidRequest, Some(ErrorCode::InvalidSignature)), "{err}");
}

async fn an_expired_url_is_refused(store: Engine) {
    // Long enough for a fresh URL to work though S3 dates it to the whole second; short enough to wait out.
    const EXPIRY: Duration = Duration::from_secs(3);
    let rig = Rig::proxied_with(store, |s| s.blob.url_expiry = EXPIRY).await;
    let (laptop, phone) = rig.two_devices().await;
    let stored = sample(100 * KIB, 6);
    let late = sample(100 * KIB, 16);

    // One blob goes up while its URL is fresh; the URLs to upload the other and download the first then expire.
    let kept = laptop.prepare_blob(stored.clone()).await.unwrap();
    let fresh = laptop.blob_upload_url(&kept).await.unwrap();
    laptop.blob_upload(&kept, &fresh, BlobOptions::default()).await.unwrap();
    laptop.blob_confirm(&kept).await.unwrap();
    laptop.blob_confirm(&kept).await.expect("confirming twice is harmless");
    let pending = laptop.prepare_blob(late.clone()).await.unwrap();
    let upload = laptop.blob_upload_url(&pending).await.unwrap();
    let download = phone.blob_download_url(&kept.id()).await.unwrap();
    assert!(upload.expires_at <= Instant::now() + EXPIRY && download.expires_at <= Instant::now() + EXPIRY);
    tokio::time::sleep(EXPIRY + Duration::from_millis(1500)).await;

    // The SDK knows they expired, and sends nothing.
    let puts = rig.proxy().requests("PUT", &pending.id().to_hex()).len();
    let gets = rig.proxy().requests("GET", &kept.id().to_hex()).len();
    let err = laptop.blob_upload(&pending, &upload, BlobOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidSignature), "{err}");
    let err = phone.blob_download_bytes(&download, BlobOptions::default()).await.map(|b| b.len()).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidSignature), "{err}");
    assert_eq!(rig.proxy().requests("PUT", &pending.id().to_hex()).len(), puts);
    assert_eq!(rig.proxy().requests("GET", &kept.id().to_hex()).len(), gets);

    // The store refuses them too, were the client to think them still valid; the refusal is not retried.
    let stale = BlobUploadUrl { expires_at: Instant::now() + Duration::from_secs(60), ..upload.clone() };
    let err = laptop.blob_upload(&pending, &stale, BlobOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert_eq!(rig.proxy().requests("PUT", &pending.id().to_hex()).len(), puts + 1, "sent once");
    let stale = BlobDownloadUrl { expires_at: Instant::now() + Duration::from_secs(60), ..download.clone() };
    let err = phone.blob_download_bytes(&stale, BlobOptions::default()).await.map(|b| b.len()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert_eq!(rig.proxy().requests("GET", &kept.id().to_hex()).len(), gets + 1, "sent once");

    // Fresh URLs work.
    let again = laptop.blob_upload_url(&pending).await.unwrap();
    laptop.blob_upload(&pending, &again, BlobOptions::default()).await.unwrap();
    laptop.blob_confirm(&pending).await.unwrap();
    assert!(phone.download_blob_bytes(&kept.id()).await.unwrap() == stored, "a fresh URL works");
    assert!(phone.download_blob_bytes(&pending.id()).await.unwrap() == late);
}

async fn an_unknown_blob_is_not_found(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("nothing");
    let err = phone.download_blob(&BlobId([9; 32]), &destination).await.unwrap_err();
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some(ErrorCode::BlobNotFound)), "{err}");
    assert!(!destination.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Prepared but never uploaded: nothing to confirm, nothing to download.
    let prepared = laptop.prepare_blob(b"never sent".to_vec()).await.unwrap();
    let err = laptop.blob_confirm(&prepared).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = phone.download_blob_bytes(&prepared.id()).await.map(|bytes| bytes.len()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

async fn a_deleted_blob_is_gone_and_can_be_uploaded_again(store: Engine) {
    let rig = Rig::start(store).await;
    let (laptop, phone) = rig.two_devices().await;
    let uploaded = laptop.upload_blob(b"a photo".to_vec()).await.unwrap();
    phone.delete_blob(&uploaded.id).await.unwrap();
    let err = laptop.download_blob_bytes(&uploaded.id).await.map(|b| b.len()).unwrap_err();
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some(ErrorCode::BlobNotFound)), "{err}");
    let err = phone.delete_blob(&uploaded.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "a repeated delete: {err}");
    let again = laptop.upload_blob(b"a photo".to_vec()).await.unwrap();
    assert_eq!((again.id, again.already_existed), (uploaded.id, false), "stored anew");
    assert!(phone.download_blob_bytes(&again.id).await.unwrap() == b"a photo");
}

/// A store that answers a `Range` request with the whole blob makes the download start over, and it still arrives
/// intact. The store is a stand-in serving the real ciphertext, since both real stores honour ranges. Its first
/// answer has no length, so the body ends where the connection does: part-way, but cleanly. That is a cut, not the
/// blob's end: the download resumes after the last whole chunk, and the partial one is not opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_ranges_makes_the_download_start_over() {
    let rig = Rig::start(engine::embedded()).await;
    let (laptop, phone) = rig.two_devices().await;
    let original = sample(500 * KIB + 1, 7);
    let id = laptop.upload_blob(original.clone()).await.unwrap().id;
    let sealed = bytes::Bytes::from(std::fs::read(rig.stored_blob(&id)).unwrap());
    let cut_at = 200 * KIB;
    assert!(!cut_at.is_multiple_of(SEALED_CHUNK_BYTES), "the cut falls inside a chunk");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let (seen, whole) = (ranges.clone(), sealed.clone());
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (seen, whole) = (seen.clone(), whole.clone());
            tokio::spawn(async move {
                let head = read_request_head(&mut conn).await;
                let first = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(range_start(&head));
                    seen.len() == 1
                };
                // The whole blob every time, ranges or not; the first time, cut after `cut_at` bytes.
                let (length, body) = if first {
                    (String::new(), whole.slice(..cut_at))
                } else {
                    (format!("content-length: {}\r\n", whole.len()), whole)
                };
                let head = format!("HTTP/1.1 200 OK\r\n{length}connection: close\r\n\r\n");
                conn.write_all(head.as_bytes()).await.unwrap();
                conn.write_all(&body).await.unwrap();
                conn.shutdown().await.unwrap();
                // Until the client closes: closing first with its bytes unread would reset the connection, and
                // a reset may discard what was sent.
                let _ = conn.read_to_end(&mut Vec::new()).await;
            });
        }
    });

    let source = BlobDownloadUrl {
        id,
        url: format!("http://{addr}/blob"),
        sealed_size: sealed.len() as u64,
        expires_at: Instant::now() + Duration::from_secs(60),
    };
    let (options, progress) = recorded();
    let plain = phone.blob_download_bytes(&source, options).await.unwrap();
    assert!(plain == original, "intact after starting over");
    let whole_chunks = (cut_at / SEALED_CHUNK_BYTES * SEALED_CHUNK_BYTES) as u64;
    assert_eq!(*ranges.lock().unwrap(), [None, Some(whole_chunks)], "resumed after the whole chunks");
    assert_climbs(&progress.lock().unwrap(), original.len() as u64);
}

/// Reads a request's line and headers (a `GET`: there is no body).
async fn read_request_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).await.unwrap(), 1, "a whole request head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

// ----- the rig: a server, its store, and a proxy that can misbehave -----

/// A test server, with a proxy that can fault blob transfers: in front of the whole server for the local-disk
/// store (whose URLs are on the server), in front of Garage for S3 (the server signs URLs for the proxy).
struct Rig {
    server: TestServer,
    engine: Engine,
    /// What devices talk to.
    url: String,
    proxy: Option<FaultProxy>,
}

impl Rig {
    /// A server reached directly: no proxy in the way.
    async fn start(engine: Engine) -> Self {
        let server = TestServer::start(engine).await;
        Self { url: server.url.clone(), server, engine, proxy: None }
    }

    /// A server whose blob transfers pass through [`Rig::proxy`].
    async fn proxied(engine: Engine) -> Self {
        Self::proxied_with(engine, |_| {}).await
    }

    async fn proxied_with(engine: Engine, adjust: impl FnOnce(&mut synckit_server::Settings)) -> Self {
        if engine.garage {
            let proxy = FaultProxy::start(GARAGE_ADDR.parse().unwrap()).await;
            let server = TestServer::start_with(engine, |s| {
                adjust(s);
                s.s3.as_mut().expect("an S3 store").endpoint = proxy.url.clone();
            })
            .await;
            Self { url: server.url.clone(), server, engine, proxy: Some(proxy) }
        } else {
            let server = TestServer::start_with(engine, adjust).await;
            let proxy = FaultProxy::start(server.addr).await;
            Self { url: proxy.url.clone(), server, engine, proxy: Some(proxy) }
        }
    }

    fn proxy(&self) -> &FaultProxy {
        self.proxy.as_ref().expect("a proxied rig")
    }

    /// A `403` as this rig's store words it for an expired URL.
    fn forbidden(&self) -> Fault {
        let (content_type, body) = if self.engine.garage {
            (
                "application/xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"#,
            )
        } else {
            (
                "application/json",
                r#"{"error":{"code":"invalid_signature","message":"the URL has expired; ask for a new one"}}"#,
            )
        };
        Fault::Replace(format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A new user's two devices: the first sets up encryption, the second unlocks it with the password.
    async fn two_devices(&self) -> (SyncKitClient, SyncKitClient) {
        let email = email();
        let first = self.server.client_with(&self.url, Arc::new(MemoryKeyStore::default()));
        first.register(&email, "pass").await.unwrap();
        first.authenticate(&email, "pass").await.unwrap();
        first.setup_encryption_new("pass").await.unwrap();
        // Blobs move with a device's token, as everything that syncs.
        first.register_device("laptop", "linux").await.unwrap();
        let second = self.server.client_with(&self.url, Arc::new(MemoryKeyStore::default()));
        second.authenticate(&email, "pass").await.unwrap();
        second.setup_encryption_existing("pass").await.unwrap();
        second.register_device("phone", "ios").await.unwrap();
        (first, second)
    }

    /// Where the local-disk store keeps the blob `id`: somewhere under `blobs/` in the data directory, in a file
    /// named by the id and the upload (`<id>.<upload id>`).
    fn stored_blob(&self, id: &BlobId) -> PathBuf {
        let mut dirs = vec![self.server.data_dir.path().join("blobs")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.file_name().is_some_and(|n| n.to_string_lossy().split('.').next() == Some(&id.to_hex()))
                {
                    return path;
                }
            }
        }
        panic!("the blob {id} is not in the store");
    }
}

// ----- data and progress -----

/// `len` bytes that differ from chunk to chunk and from seed to seed.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_sample(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, sample(len, seed)).unwrap();
    path
}

/// Options that record every progress report.
fn recorded() -> (BlobOptions, Arc<Mutex<Vec<Progress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    (BlobOptions::default().on_progress(move |p| log.lock().unwrap().push(p)), seen)
}

/// Reports start at 0, never go back, end at the total, and come as the bytes do, not only at the end.
fn assert_climbs(seen: &[Progress], total: u64) {
    assert!(seen.iter().all(|p| p.total == total), "{seen:?}");
    assert_eq!(seen.first().map(|p| p.done), Some(0), "{seen:?}");
    assert_eq!(seen.last().map(|p| p.done), Some(total), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "never backwards: {seen:?}");
    let chunks = total.div_ceil(64 * KIB as u64);
    assert!(seen.len() as u64 > chunks / 2, "{} reports for {chunks} chunks", seen.len());
}
