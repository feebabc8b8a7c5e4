//! `blobs`: each device encrypts a new file of `--blob-mib` MiB as the SDK does (content id a keyed hash of the
//! plaintext, chunks sealed as a stream), uploads it through the URL the server signs, confirms it, downloads it
//! through another signed URL, decrypts and compares it, and deletes it, so that a long run does not fill the store.
//!
//! The signed URLs are the deployment's own: a path on `--host` for the embedded store, the object store's address
//! for S3. They are the only addresses the load test sends to besides `--host`.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use goose::prelude::*;
use sha2::{Digest, Sha256};
use synckit::crypto::Keys;
use synckit::crypto::blob::{BlobId, BlobOpener, BlobSealer};
use synckit_protocol::blobs::{
    BlobConfirmRequest, BlobConfirmResponse, BlobDownloadRequest, BlobDownloadResponse, BlobUploadRequest,
    BlobUploadResponse,
};
use synckit_protocol::paths;
use uuid::Uuid;

use super::{Kind, session, set_up, step};
use crate::api::{self, Call, Failure, failure};
use crate::device::Fleet;

pub fn scenario(fleet: &Arc<Fleet>) -> Scenario {
    Scenario::new(Kind::Blobs.name())
        .register_transaction(set_up(fleet, Kind::Blobs))
        .register_transaction(step!(fleet, round_trip).set_name("upload, download and delete a file"))
}

/// A file, encrypted.
struct Sealed {
    plaintext: Vec<u8>,
    id: BlobId,
    ciphertext: Vec<u8>,
    checksum: String,
}

async fn round_trip(fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    let device = session(fleet, user, Kind::Blobs).await?.device;
    let keys = device.account.keys.clone();
    let bytes = fleet.settings.blob_mib as usize * 1024 * 1024;
    let file = blocking(move || seal(&keys, bytes)).await??;
    let hash = file.id.to_hex();
    let size = file.ciphertext.len() as u64;

    let req = BlobUploadRequest { hash: hash.clone(), size, checksum_sha256: file.checksum.clone() };
    let upload: BlobUploadResponse = Call::new(GooseMethod::Post, paths::BLOBS_UPLOAD, "blob upload url")
        .token(&device.token)
        .json(&req)
        .call(user)
        .await?;
    let url = match (upload.already_exists, upload.upload_url) {
        (false, Some(url)) => url,
        (true, _) => return Err(failure("blob upload url: a file never uploaded before already exists")),
        (false, None) => return Err(failure("blob upload url: no URL to upload to")),
    };
    let Sealed { plaintext, id, ciphertext, .. } = file;
    Call::new(GooseMethod::Put, &url, "blob upload")
        .send_with(user, |mut builder| {
            for (name, value) in &upload.headers {
                builder = builder.header(name, value);
            }
            builder.body(ciphertext)
        })
        .await?;
    let req = BlobConfirmRequest { hash: hash.clone(), size };
    let _: BlobConfirmResponse = Call::new(GooseMethod::Post, paths::BLOBS_CONFIRM, "blob confirm")
        .token(&device.token)
        .json(&req)
        .call(user)
        .await?;

    let req = BlobDownloadRequest { hash: hash.clone() };
    let download: BlobDownloadResponse = Call::new(GooseMethod::Post, paths::BLOBS_DOWNLOAD, "blob download url")
        .token(&device.token)
        .json(&req)
        .call(user)
        .await?;
    // Goose times a request to its first byte; the whole download and its decryption are recorded beside it.
    let started = Instant::now();
    let goose = Call::new(GooseMethod::Get, &download.download_url, "blob download").send(user).await?;
    let body = api::response(goose)?.bytes().await.map_err(|e| Box::new(TransactionError::Reqwest(e)))?;
    let keys = device.account.keys.clone();
    let opened = blocking(move || BlobOpener::new(&keys, &id, body.len() as u64).open_all(&body)).await?;
    let ok = matches!(&opened, Ok(got) if *got == plaintext);
    let name = format!("download and decrypt {} MiB", fleet.settings.blob_mib);
    let error = match &opened {
        Ok(_) => "the downloaded file is not the one uploaded".to_owned(),
        Err(e) => format!("the downloaded file does not decrypt: {e}"),
    };
    user.record_custom_request_duration("BLOB", &name, started.elapsed(), ok, None, (!ok).then_some(error.as_str()))
        .await?;
    if !ok {
        return Err(failure(error));
    }

    let path = paths::blob(&hash);
    Call::new(GooseMethod::Delete, &path, "blob delete").token(&device.token).send(user).await?;
    Ok(())
}

/// A new file of `bytes` (distinct from every other, so that the server never has it already), encrypted.
fn seal(keys: &Keys, bytes: usize) -> Result<Sealed, Failure> {
    let mut plaintext = vec![0u8; bytes];
    let unique = Uuid::new_v4();
    let n = bytes.min(16);
    plaintext[..n].copy_from_slice(&unique.as_bytes()[..n]);
    let id = keys.blob_id(&mut plaintext.as_slice()).map_err(|e| failure(format!("hashing the file: {e}")))?;
    let ciphertext = BlobSealer::new(keys, &id, bytes as u64)
        .seal_all(&plaintext)
        .map_err(|e| failure(format!("encrypting the file: {e}")))?;
    let checksum = STANDARD.encode(Sha256::digest(&ciphertext));
    Ok(Sealed { plaintext, id, ciphertext, checksum })
}

/// Runs CPU-heavy work (megabytes of hashing and encryption) off the runtime that drives the users.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work).await.map_err(|e| failure(format!("a blocking task failed: {e}")))
}
