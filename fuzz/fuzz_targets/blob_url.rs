//! The embedded blob store's signed URLs, as its routes serve them: a request (method, path and query, headers,
//! body) sent to `LocalStore`'s router, whose path, query string, signature, expiry and `Range` header come from
//! whoever holds, forges or alters a URL.
//!
//! Input: `METHOD URI\n` then `name: value\n` header lines, an empty line, and the body.
//!
//! The store holds one object, uploaded at start through a URL the store signed; the seeds are URLs it signed for
//! that object (see `synckit_fuzz::stored_object`).
//!
//! Checks: nothing is answered with a 5xx; the holder check (which follows the signature and expiry) is only ever
//! reached for the stream and holder the store signed for, so an altered URL never verifies as another; an object
//! is served or written only after that check; after every request the store holds exactly the one object,
//! with its signed length and checksum, and no temporary file.
#![no_main]

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use synckit_blob::{HolderCheck, LocalStore, ObjectKey, ObjectMeta, ObjectStore, UrlHolder};
use synckit_fuzz::{APP, PREVIOUS_URL_SECRET, UPLOAD_ID, URL_DEVICE, URL_SECRET, URL_TOKEN_VERSION, USER};
use synckit_http::{ApiError, KeyRing};
use synckit_store::StreamId;
use tower::ServiceExt;

/// Records every holder check and lets it pass: whether a URL reaches it is what is checked.
#[derive(Default)]
struct Holders(Mutex<Vec<(StreamId, UrlHolder)>>);

#[async_trait::async_trait]
impl HolderCheck for Holders {
    async fn check(&self, stream: StreamId, holder: UrlHolder) -> Result<(), ApiError> {
        self.0.lock().unwrap().push((stream, holder));
        Ok(())
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    store: LocalStore,
    holders: Arc<Holders>,
    root: tempfile::TempDir,
    key: ObjectKey,
    meta: ObjectMeta,
}

fn stream() -> StreamId {
    StreamId { app_id: APP, user_id: USER }
}

fn holder() -> UrlHolder {
    UrlHolder { device_id: URL_DEVICE, token_version: URL_TOKEN_VERSION }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let root = tempfile::tempdir().unwrap();
    let keys = KeyRing::new(&URL_SECRET, [&PREVIOUS_URL_SECRET[..]]).unwrap();
    let store = LocalStore::open(root.path(), keys).unwrap();
    let holders = Arc::new(Holders::default());
    let router = store.routes(holders.clone()).expect("the local store serves its URLs");
    let object = synckit_fuzz::stored_object();
    let checksum: [u8; 32] = Sha256::digest(&object).into();
    let key = ObjectKey { stream: stream(), hash: synckit_fuzz::stored_object_hash(), upload_id: Some(UPLOAD_ID) };
    let meta = ObjectMeta { size: object.len() as u64, checksum: Some(checksum) };
    let put =
        runtime.block_on(store.presign_put(&key, meta.size, &checksum, Duration::from_secs(3600), holder())).unwrap();
    let request = Request::put(&put.url).body(Body::from(object)).unwrap();
    let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the fixture's upload");
    holders.0.lock().unwrap().clear();
    Fixture { runtime, router, store, holders, root, key, meta }
});

/// `METHOD URI\nheader: value\n…\n\nbody`, or `None` where that is no HTTP request.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, uri) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files(&path, out) } else { out.push(path) }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else { return };
    let fixture = &*FIXTURE;
    let response = fixture.runtime.block_on(fixture.router.clone().oneshot(request)).unwrap();
    let status = response.status();
    // Drain the body, as a client would: a download streams from the file.
    fixture.runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
    let checked = std::mem::take(&mut *fixture.holders.0.lock().unwrap());

    assert!(!status.is_server_error(), "answered {status}");
    for (stream, holder) in &checked {
        assert_eq!((*stream, *holder), (self::stream(), self::holder()), "an altered URL verified");
    }
    assert!(checked.len() <= 1, "{checked:?}");
    if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
        assert_eq!(checked.len(), 1, "answered {status} without checking the URL's holder");
    }

    let mut stored = Vec::new();
    files(fixture.root.path(), &mut stored);
    assert_eq!(stored.len(), 1, "the store holds {stored:?}");
    let held = fixture.runtime.block_on(fixture.store.head(&fixture.key)).unwrap();
    assert_eq!(held.as_ref(), Some(&fixture.meta), "the stored object changed");
});
