//! Encrypted files: `synckit blob put FILE` and `synckit blob get ID FILE`.
//!
//! Files are encrypted and decrypted as they stream, so their size does not matter to memory. A progress bar shows
//! on stderr when it is a terminal, and nowhere otherwise (scripts and pipes see only the JSON result).

use std::path::Path;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use synckit::{BlobId, BlobOptions, BlobSource};

use crate::session::LoggedIn;
use crate::{Globals, output};

/// A progress bar in bytes on stderr, hidden when stderr is not a terminal, and options that drive it. Until the
/// first bytes move (an upload first reads the file twice to name and checksum it) it is a spinner, so the rate and
/// the time left count only the transfer.
fn progress(verb: &'static str) -> (ProgressBar, BlobOptions) {
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{prefix} {spinner} {elapsed}").expect("a valid template"));
    bar.set_prefix(verb);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let driven = bar.clone();
    let options = BlobOptions::default().on_progress(move |p| {
        if driven.length() != Some(p.total) {
            driven.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            driven.set_length(p.total);
            driven.reset();
        }
        driven.set_position(p.done);
    });
    (bar, options)
}

/// `synckit blob put FILE`: encrypts and uploads the file; prints {"id", "size", "already_existed"}.
pub async fn put(globals: &Globals, file: &Path) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let uploaded = async {
        logged_in.unlock().await?;
        let (bar, options) = progress("uploading");
        let uploaded = logged_in.client.upload_blob_with(BlobSource::file(file), options).await;
        bar.finish_and_clear();
        Ok(uploaded?)
    };
    let blob = uploaded.await.map_err(|e| logged_in.explain(e))?;
    output::one(json!({ "id": blob.id.to_hex(), "size": blob.size, "already_existed": blob.already_existed }))
}

/// `synckit blob get ID FILE`: downloads and decrypts the blob into FILE (replacing it only once the whole blob
/// is verified); prints {"id", "size", "path"}.
pub async fn get(globals: &Globals, id: &str, file: &Path) -> Result<()> {
    let id = BlobId::from_hex(id).map_err(|_| anyhow::anyhow!("not a blob id: `synckit blob put` prints them"))?;
    let logged_in = LoggedIn::open(globals)?;
    let downloaded = async {
        logged_in.unlock().await?;
        let (bar, options) = progress("downloading");
        let size = logged_in.client.download_blob_with(&id, file, options).await;
        bar.finish_and_clear();
        Ok(size?)
    };
    let size = downloaded.await.map_err(|e| logged_in.explain(e))?;
    output::one(json!({ "id": id.to_hex(), "size": size, "path": file }))
}

/// `synckit blob rm ID`: deletes the blob; prints {"id", "deleted": true}.
pub async fn rm(globals: &Globals, id: &str) -> Result<()> {
    let id = BlobId::from_hex(id).map_err(|_| anyhow::anyhow!("not a blob id: `synckit blob put` prints them"))?;
    let logged_in = LoggedIn::open(globals)?;
    logged_in.client.delete_blob(&id).await.map_err(|e| logged_in.explain(e.into()))?;
    output::one(json!({ "id": id.to_hex(), "deleted": true }))
}
