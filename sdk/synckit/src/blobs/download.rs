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

use super::{
    BlobDownloadUrl, BlobOptions, Failure, Retries, Tracker, blocking, check_not_expired, internal, is_refused_url,
    store_failure,
};
use crate::SyncKitClient;
use crate::crypto::Keys;
use crate::crypto::blob::{BlobOpener, SEALED_CHUNK_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::{containing_dir, sync_dir, temp_prefix};

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
    /// The directory both are in.
    dir: PathBuf,
    written: u64,
}

impl FileSink {
    /// Creates the temporary file, so a destination that cannot be written fails before anything is fetched. It
    /// gets the mode of the file it will replace, or else the one any new file gets.
    pub(super) async fn create(destination: &Path) -> Result<Self> {
        let destination = destination.to_owned();
        blocking(move || {
            let name = destination.file_name().ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!("{} is not a file path", destination.display()))
            })?;
            let dir = containing_dir(&destination).to_owned();
            let prefix = temp_prefix(name);
            let mut builder = tempfile::Builder::new();
            builder.prefix(&prefix).suffix(".synckit-part");
            new_file_mode(&mut builder);
            let temp = builder.tempfile_in(&dir).map_err(|e| write_error(&destination, e))?;
            keep_mode(&destination, temp.as_file()).map_err(|e| write_error(&destination, e))?;
            Ok(Self { temp, destination, dir, written: 0 })
        })
        .await
    }
}

/// Creates the file with the mode a new file gets (0666 less the umask, which the system applies on creation)
/// rather than tempfile's private 0600: the download is an ordinary file of the user's.
fn new_file_mode(builder: &mut tempfile::Builder<'_, '_>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    #[cfg(not(unix))]
    let _ = builder;
}

/// Gives `temp` the permission bits of the file at `destination`, if there is one: replacing a file keeps its
/// mode. The special bits (set-user-id and the like) are not carried over to downloaded bytes.
fn keep_mode(destination: &Path, temp: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(destination) {
            Ok(meta) if meta.is_file() => {
                temp.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode() & 0o777))
            }
            _ => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (destination, temp);
        Ok(())
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
        let Self { temp, destination, dir, written } = self;
        temp.as_file().sync_all().map_err(|e| write_error(&destination, e))?;
        temp.persist(&destination).map_err(|e| write_error(&destination, e.error))?;
        // Best effort: the file's own data is already on disk.
        let _ = sync_dir(&dir);
        Ok(written)
    }
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
                    let e = Error::new(ErrorKind::Server, "the server changed the blob's length during its download");
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
        // The SDK made it absolute (see `BlobDownloadUrl::url`).
        let url = reqwest::Url::parse(&source.url).map_err(|e| {
            let message = format!("the download URL {:?} is not an absolute URL", source.url);
            Error::new(ErrorKind::InvalidInput, message).with_source(e)
        })?;
        let mut retries = Retries::new(client.transport(), source.id);
        loop {
            let before = self.chunks;
            let failure = match self.attempt(client, url.clone(), source.expires_at).await {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            if self.chunks > before {
                retries.progressed();
            }
            retries.wait(failure).await?;
            tracing::debug!(blob = %source.id, resume_at = self.offset(), "resuming the download");
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
            _ => return Err(store_failure(resp, "the store refused the download", expires_at, idle).await),
        }
        self.receive(resp, idle).await
    }

    /// Cuts the answer's body into sealed chunks for the writer. A body that ends cleanly but short of the blob was
    /// cut, unless it declared its length: then the store has no more.
    async fn receive(&mut self, resp: reqwest::Response, idle: std::time::Duration) -> Result<(), Failure> {
        let declared_length = resp.content_length().is_some();
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
        if received < self.sealed_size {
            // With a declared length, a cut body would have ended in an error: the store has no more.
            if declared_length {
                return Err(Failure::Final(truncated()));
            }
            // Without one, the connection's close ends the body, and a cut looks the same: resume after the whole
            // chunks, and leave the partial one, which would not open.
            return Err(Failure::Retry(Error::new(ErrorKind::Transport, "the download ended early")));
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
            // It only answers once told to finish, which is the last thing it is told.
            Ok(_) => Error::new(ErrorKind::Internal, "internal failure: the blob's writer finished early"),
        })
    }

    async fn join(&mut self) -> Result<S::Output> {
        let writer = self.writer.take().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "internal failure: the blob's writer was already waited for")
        })?;
        writer.await.map_err(|e| internal("the blob's writer", e))?
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
    use crate::fs::MAX_TEMP_NAME_PART;

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

    #[cfg(unix)]
    #[tokio::test]
    async fn a_downloaded_file_gets_an_ordinary_mode_or_keeps_the_replaced_ones() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        // What this process's umask makes of a new file, found without asking for the umask.
        let ordinary = dir.path().join("ordinary");
        std::fs::File::create(&ordinary).unwrap();

        let new = dir.path().join("new");
        FileSink::create(&new).await.unwrap().commit().unwrap();
        assert_eq!(mode(&new), mode(&ordinary));

        let replaced = dir.path().join("replaced");
        std::fs::write(&replaced, b"old").unwrap();
        std::fs::set_permissions(&replaced, std::fs::Permissions::from_mode(0o4750)).unwrap();
        FileSink::create(&replaced).await.unwrap().commit().unwrap();
        assert_eq!(mode(&replaced), 0o750, "the replaced file's mode, without the set-user-id bit");
    }

    #[tokio::test]
    async fn long_and_bare_names_work() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("é".repeat(127)); // 254 bytes, one short of the most a name may have
        let mut sink = FileSink::create(&long).await.unwrap();
        sink.write(b"hello").unwrap();
        sink.commit().unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"hello");
        assert!(temp_prefix(long.file_name().unwrap()).len() <= MAX_TEMP_NAME_PART + 2);

        assert_eq!(containing_dir(Path::new("photo.jpg")), Path::new("."), "synced too");
        assert_eq!(containing_dir(Path::new("dir/photo.jpg")), Path::new("dir"));
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
