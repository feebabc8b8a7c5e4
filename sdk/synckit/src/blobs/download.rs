//! The download itself: a streamed `GET` of the sealed blob, opened chunk by chunk, resumed where it broke off.
//!
//! The async side receives the ciphertext and cuts it into sealed chunks; a blocking thread opens each chunk and
//! writes its plaintext to the sink (a temporary file, or memory), with a bounded channel of a few chunks between
//! them. The resume point is the end of the last whole chunk handed over: a later chunk that fails to open fails
//! the download anyway, so nothing before that point is ever fetched twice. A store that answers a `Range` request
//! with the whole blob (`200`) makes the writer start over.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::{BlobDownloadUrl, BlobOptions, Tracker, blocking, check_not_expired, is_refused_url, store_error};
use crate::SyncKitClient;
use crate::crypto::Keys;
use crate::crypto::blob::{BlobOpener, SEALED_CHUNK_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::http::backoff;

/// Sealed chunks between the network and the writer: 4 × (64 KiB + 16).
const WRITE_BEHIND_CHUNKS: usize = 4;
/// A memory sink reserves at most this much up front, whatever the server says the blob's length is.
const MAX_RESERVE: usize = 8 * 1024 * 1024;

/// Where plaintext goes, written from the writer thread.
pub(super) trait Sink: Send + 'static {
    type Output: Send + 'static;
    /// Appends the next plaintext chunk.
    fn write(&mut self, plain: &[u8]) -> Result<()>;
    /// Forgets everything written: the download starts over.
    fn reset(&mut self) -> Result<()>;
    /// Everything was written and checked: make it the result.
    fn commit(self) -> Result<Self::Output>;
}

/// A file written next to its destination and renamed over it once complete; deleted if dropped before.
#[derive(Debug)]
pub(super) struct FileSink {
    temp: tempfile::NamedTempFile,
    destination: PathBuf,
    written: u64,
}

impl FileSink {
    /// Creates the temporary file, so a destination that cannot be written fails before anything is fetched.
    pub(super) async fn create(destination: &Path) -> Result<Self> {
        let destination = destination.to_owned();
        blocking(move || {
            let name = destination.file_name().ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!("{} is not a file path", destination.display()))
            })?;
            let dir = match destination.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let temp = tempfile::Builder::new()
                .prefix(&format!(".{}.", name.to_string_lossy()))
                .suffix(".synckit-part")
                .tempfile_in(dir)
                .map_err(|e| write_error(&destination, e))?;
            Ok(Self { temp, destination, written: 0 })
        })
        .await
    }
}

fn write_error(destination: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("cannot write {}", destination.display())).with_source(e)
}

impl Sink for FileSink {
    type Output = u64;

    fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.temp.write_all(plain).map_err(|e| write_error(&self.destination, e))?;
        self.written += plain.len() as u64;
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        let file = self.temp.as_file_mut();
        file.set_len(0).and_then(|()| file.rewind()).map_err(|e| write_error(&self.destination, e))?;
        self.written = 0;
        Ok(())
    }

    fn commit(self) -> Result<u64> {
        let Self { temp, destination, written } = self;
        temp.as_file().sync_all().map_err(|e| write_error(&destination, e))?;
        temp.persist(&destination).map_err(|e| write_error(&destination, e.error))?;
        sync_dir(&destination);
        Ok(written)
    }
}

/// Makes the rename durable where the platform allows syncing a directory. Best effort: the file's own data is
/// already on disk.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Plaintext collected in memory.
#[derive(Debug)]
pub(super) struct MemorySink(Vec<u8>);

impl MemorySink {
    pub(super) fn for_blob(source: &BlobDownloadUrl) -> Self {
        Self(Vec::with_capacity((source.size() as usize).min(MAX_RESERVE)))
    }
}

impl Sink for MemorySink {
    type Output = Vec<u8>;

    fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.0.extend_from_slice(plain);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        self.0.clear();
        Ok(())
    }

    fn commit(self) -> Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// What the network side tells the writer.
enum Feed {
    /// The next sealed chunk.
    Chunk(Bytes),
    /// The store sent the whole blob again: forget what was written.
    Restart,
    /// That was everything: check the blob is complete and commit.
    Finish,
}

/// Downloads `source` into `sink`. With `refresh`, asks the server for a new URL when the store refuses the one
/// in hand (it expired), once for each stretch of progress.
pub(super) async fn run<S: Sink>(
    client: &SyncKitClient,
    mut source: BlobDownloadUrl,
    sink: S,
    options: &BlobOptions,
    refresh: bool,
) -> Result<S::Output> {
    let keys = client.keys()?;
    let tracker = Tracker::new(options, source.size());
    let mut download = Download::start(&keys, &source, sink, tracker.clone());
    let mut refreshed_at = None;
    loop {
        match download.fetch(client, &source).await {
            Ok(()) => break,
            Err(e) if refresh && is_refused_url(&e) && refreshed_at != Some(download.chunks) => {
                refreshed_at = Some(download.chunks);
                let fresh = match client.blob_download_url(&source.id).await {
                    Ok(fresh) => fresh,
                    Err(e) => return Err(download.abort(e).await),
                };
                if fresh.sealed_size != source.sealed_size {
                    let e = Error::new(ErrorKind::Crypto, "the blob's length changed during its download");
                    return Err(download.abort(e).await);
                }
                source = fresh;
            }
            Err(e) => return Err(download.abort(e).await),
        }
    }
    let output = download.finish().await?;
    tracker.finished();
    Ok(output)
}

/// How one attempt ended, when it failed.
enum Failure {
    /// Trying again (resuming) may work: the network, or the store failing (5xx).
    Retry(Error),
    /// It will not.
    Final(Error),
}

/// A download in progress: the writer thread, and how many whole chunks it has been given.
struct Download<S: Sink> {
    feed: mpsc::Sender<Feed>,
    writer: Option<JoinHandle<Result<S::Output>>>,
    sealed_size: u64,
    /// Whole sealed chunks handed to the writer: the download resumes after them.
    chunks: u64,
}

impl<S: Sink> Download<S> {
    fn start(keys: &Keys, source: &BlobDownloadUrl, sink: S, tracker: Tracker) -> Self {
        let (feed, chunks) = mpsc::channel(WRITE_BEHIND_CHUNKS);
        let opener = OpenerFactory { keys: keys.clone(), source: source.clone() };
        let writer = tokio::task::spawn_blocking(move || write(chunks, opener, sink, tracker));
        Self { feed, writer: Some(writer), sealed_size: source.sealed_size, chunks: 0 }
    }

    /// Fetches the rest of the blob from `source`, resuming after network errors and 5xx answers with back-off.
    /// An attempt that got further earns the retries back.
    async fn fetch(&mut self, client: &SyncKitClient, source: &BlobDownloadUrl) -> Result<()> {
        let transport = client.transport();
        let url = transport.resolve(&source.url)?;
        let mut failures = 0;
        loop {
            let before = self.chunks;
            let err = match self.attempt(client, url.clone(), source.expires_at).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Retry(e)) => e,
            };
            if self.chunks > before {
                failures = 0;
            }
            if failures >= transport.max_retries() {
                return Err(err);
            }
            let delay = err.retry_after().unwrap_or_else(|| backoff(failures));
            tracing::debug!(blob = %source.id, resume_at = self.offset(), ?delay, error = %err, "download broke off");
            tokio::time::sleep(delay).await;
            failures += 1;
        }
    }

    fn offset(&self) -> u64 {
        self.chunks * SEALED_CHUNK_BYTES as u64
    }

    /// One `GET`, from the resume point to the end.
    async fn attempt(&mut self, client: &SyncKitClient, url: reqwest::Url, expires_at: Instant) -> Result<(), Failure> {
        let transport = client.transport();
        let idle = transport.attempt_timeout();
        let offset = self.offset();
        if offset >= self.sealed_size {
            return Ok(());
        }
        check_not_expired(expires_at).map_err(Failure::Final)?;
        let mut req = transport.http().get(url);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
        }
        let resp = match tokio::time::timeout(idle, req.send()).await {
            Err(_) => return Err(Failure::Retry(Error::new(ErrorKind::Transport, "the store did not answer in time"))),
            Ok(Err(e)) => {
                let err = Error::new(ErrorKind::Transport, "cannot reach the blob store").with_source(e);
                return Err(Failure::Retry(err));
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        match status {
            StatusCode::PARTIAL_CONTENT if range_start(&resp) == Some(offset) => {}
            StatusCode::OK if offset == 0 => {}
            // The store ignored the range and sends the whole blob: take it from the start.
            StatusCode::OK => self.restart().await.map_err(Failure::Final)?,
            StatusCode::PARTIAL_CONTENT => {
                self.restart().await.map_err(Failure::Final)?;
                let err = Error::new(ErrorKind::Server, "the store sent another range than the one asked for");
                return Err(Failure::Retry(err));
            }
            // Less than the resume point: the store holds less than the blob's length.
            StatusCode::RANGE_NOT_SATISFIABLE => return Err(Failure::Final(truncated())),
            _ => {
                let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                let err = store_error(resp, "the store refused the download", expires_at).await;
                return Err(if retry { Failure::Retry(err) } else { Failure::Final(err) });
            }
        }
        self.receive(resp, idle).await
    }

    /// Cuts the answer's body into sealed chunks for the writer. A body that ends cleanly is the whole blob, as
    /// far as the store has it: if that is short, the writer finds the blob truncated.
    async fn receive(&mut self, resp: reqwest::Response, idle: std::time::Duration) -> Result<(), Failure> {
        let mut received = self.offset();
        let mut body = resp.bytes_stream();
        let mut pending = BytesMut::with_capacity(SEALED_CHUNK_BYTES);
        loop {
            let piece = match tokio::time::timeout(idle, body.next()).await {
                Err(_) => return Err(Failure::Retry(Error::new(ErrorKind::Transport, "the download stalled"))),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let err = Error::new(ErrorKind::Transport, "the download broke off").with_source(e);
                    return Err(Failure::Retry(err));
                }
                Ok(Some(Ok(piece))) => piece,
            };
            received += piece.len() as u64;
            if received > self.sealed_size {
                return Err(Failure::Final(Error::new(
                    ErrorKind::Crypto,
                    "the blob does not decrypt: the store sent more than its length",
                )));
            }
            pending.extend_from_slice(&piece);
            while pending.len() >= SEALED_CHUNK_BYTES {
                let chunk = pending.split_to(SEALED_CHUNK_BYTES).freeze();
                self.send(Feed::Chunk(chunk)).await.map_err(Failure::Final)?;
                self.chunks += 1;
            }
        }
        if !pending.is_empty() {
            self.send(Feed::Chunk(pending.freeze())).await.map_err(Failure::Final)?;
        }
        Ok(())
    }

    /// Has the writer forget what it wrote: the next bytes are the blob's first.
    async fn restart(&mut self) -> Result<()> {
        self.send(Feed::Restart).await?;
        self.chunks = 0;
        Ok(())
    }

    /// Hands `feed` to the writer; if the writer has stopped, its error (a chunk that does not open, a full disk).
    async fn send(&mut self, feed: Feed) -> Result<()> {
        if self.feed.send(feed).await.is_ok() {
            return Ok(());
        }
        Err(match self.join().await {
            Err(e) => e,
            Ok(_) => Error::new(ErrorKind::Crypto, "the blob's writer stopped early"),
        })
    }

    async fn join(&mut self) -> Result<S::Output> {
        let writer = self.writer.take().ok_or_else(|| Error::new(ErrorKind::Crypto, "the blob's writer is gone"))?;
        writer.await.map_err(|e| Error::new(ErrorKind::Crypto, "the blob's writer failed").with_source(e))?
    }

    /// Every chunk was handed over: the writer checks the blob is complete and commits.
    async fn finish(mut self) -> Result<S::Output> {
        self.send(Feed::Finish).await?;
        self.join().await
    }

    /// Stops the writer (which deletes a temporary file) and returns `err`, or the writer's own error when it
    /// stopped first, which says more.
    async fn abort(self, err: Error) -> Error {
        let Self { feed, writer, .. } = self;
        drop(feed);
        match writer {
            Some(writer) => match writer.await {
                Ok(Err(own)) if own.kind() == ErrorKind::Crypto && err.kind() != ErrorKind::Crypto => own,
                _ => err,
            },
            None => err,
        }
    }
}

fn truncated() -> Error {
    Error::new(ErrorKind::Crypto, "the blob does not decrypt: the store holds less than its length")
}

/// Where a `206` answer starts, from `Content-Range: bytes START-END/TOTAL`.
fn range_start(resp: &reqwest::Response) -> Option<u64> {
    let range = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    range.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// Makes a fresh opener for each start of the blob.
struct OpenerFactory {
    keys: Keys,
    source: BlobDownloadUrl,
}

impl OpenerFactory {
    fn open(&self) -> BlobOpener {
        BlobOpener::new(&self.keys, &self.source.id, self.source.sealed_size)
    }
}

/// The writer thread: opens each chunk and writes its plaintext, until told to finish. A sink dropped unfinished
/// (the feed closed first) is discarded: a temporary file deletes itself.
fn write<S: Sink>(
    mut feed: mpsc::Receiver<Feed>,
    opener: OpenerFactory,
    mut sink: S,
    tracker: Tracker,
) -> Result<S::Output> {
    let mut blob = opener.open();
    let mut done = 0u64;
    while let Some(next) = feed.blocking_recv() {
        match next {
            Feed::Chunk(sealed) => {
                let plain = Zeroizing::new(blob.open_chunk(&sealed)?);
                sink.write(&plain)?;
                done += plain.len() as u64;
                tracker.reached(done);
            }
            Feed::Restart => {
                blob = opener.open();
                sink.reset()?;
                done = 0;
            }
            Feed::Finish => {
                blob.finish()?;
                return sink.commit();
            }
        }
    }
    Err(Error::new(ErrorKind::Transport, "the download stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_sink_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        std::fs::write(&dest, b"the old content").unwrap();

        let mut sink = FileSink::create(&dest).await.unwrap();
        sink.write(b"abc").unwrap();
        sink.reset().unwrap();
        sink.write(b"hello").unwrap();
        drop(sink);
        assert_eq!(std::fs::read(&dest).unwrap(), b"the old content", "a dropped download changes nothing");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "and leaves no temporary file");

        let mut sink = FileSink::create(&dest).await.unwrap();
        sink.write(b"abc").unwrap();
        sink.reset().unwrap();
        sink.write(b"hello").unwrap();
        assert_eq!(sink.commit().unwrap(), 5);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_destination_that_cannot_be_written_fails_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileSink::create(&dir.path().join("missing/out.bin")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("cannot write"), "{err}");
        assert_eq!(FileSink::create(Path::new("/")).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
