//! The download itself: a streamed `GET` of the sealed blob, opened chunk by chunk, resumed where it broke off.
//!
//! The async side receives the ciphertext and cuts it into sealed chunks; a blocking thread opens each chunk and
//! writes its plaintext to the sink (a temporary file, or memory), with a bounded channel of a few chunks between
//! them. The resume point is the end of the last whole chunk handed over: a later chunk that fails to open fails
//! the download anyway, so nothing before that point is ever fetched twice. A store that answers a `Range` request
//! with the whole blob (`200`) makes the writer start over.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::progress::Tracker;
use super::retry::{Failure, Retries, check_not_expired, is_refused_url, store_failure};
use super::sink::Sink;
use super::types::{BlobDownloadUrl, BlobOptions};
use crate::SyncKitClient;
use crate::crypto::Keys;
use crate::crypto::blob::{BlobOpener, SEALED_CHUNK_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::task::internal;

/// Sealed chunks between the network and the writer: 4 × (64 KiB + 16).
const WRITE_BEHIND_CHUNKS: usize = 4;

/// Asks the server for a fresh URL to the blob being downloaded, for when the store refuses the one in hand.
pub(super) type Refresh<'a> = dyn Fn() -> BoxFuture<'a, Result<BlobDownloadUrl>> + Send + Sync + 'a;

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
    refresh: Option<&Refresh<'_>>,
) -> Result<S::Output> {
    let keys = client.keys()?;
    let tracker = Tracker::new(options, source.size());
    let mut download = Download::start(&keys, &source, sink, tracker.clone());
    let mut refreshed_at = None;
    loop {
        let e = match download.fetch(client, &source).await {
            Ok(()) => break,
            Err(e) => e,
        };
        let refresh = match refresh {
            Some(refresh) if is_refused_url(&e) && refreshed_at != Some(download.chunks) => refresh,
            _ => return Err(download.abort(e).await),
        };
        refreshed_at = Some(download.chunks);
        let fresh = match refresh().await {
            Ok(fresh) => fresh,
            Err(e) => return Err(download.abort(e).await),
        };
        if fresh.sealed_size != source.sealed_size {
            let e = Error::new(ErrorKind::Server, "the server changed the blob's length during its download");
            return Err(download.abort(e).await);
        }
        source = fresh;
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
        let mut chunker = Chunker::new(self.offset(), self.sealed_size);
        let mut body = resp.bytes_stream();
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
            chunker.push(&piece).map_err(Failure::Final)?;
            while let Some(chunk) = chunker.next_chunk() {
                self.send(Feed::Chunk(chunk)).await.map_err(Failure::Final)?;
                self.chunks += 1;
            }
        }
        if !chunker.is_complete() {
            // With a declared length, a cut body would have ended in an error: the store has no more.
            if declared_length {
                return Err(Failure::Final(truncated()));
            }
            // Without one, the connection's close ends the body, and a cut looks the same: resume after the whole
            // chunks, and leave the partial one, which would not open.
            return Err(Failure::Retry(Error::new(ErrorKind::Transport, "the download ended early")));
        }
        if let Some(last) = chunker.last_chunk() {
            self.send(Feed::Chunk(last)).await.map_err(Failure::Final)?;
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

/// Cuts a body that arrives in pieces of any size into the sealed chunks of the blob, and refuses a body longer than
/// the blob. Holds at most one chunk.
struct Chunker {
    pending: BytesMut,
    /// Bytes of the blob received so far, counting from its start.
    received: u64,
    sealed_size: u64,
}

impl Chunker {
    /// For a body that starts `offset` bytes into a blob of `sealed_size` bytes.
    fn new(offset: u64, sealed_size: u64) -> Self {
        Self { pending: BytesMut::with_capacity(SEALED_CHUNK_BYTES), received: offset, sealed_size }
    }

    /// Takes the next piece of the body; then [`Chunker::next_chunk`] yields the chunks it completed.
    fn push(&mut self, piece: &[u8]) -> Result<()> {
        self.received = self.received.saturating_add(piece.len() as u64);
        if self.received > self.sealed_size {
            return Err(Error::new(
                ErrorKind::Crypto,
                "the blob does not decrypt: the store sent more than its length",
            ));
        }
        self.pending.extend_from_slice(piece);
        Ok(())
    }

    /// The next whole chunk received, if any.
    fn next_chunk(&mut self) -> Option<Bytes> {
        (self.pending.len() >= SEALED_CHUNK_BYTES).then(|| self.pending.split_to(SEALED_CHUNK_BYTES).freeze())
    }

    /// Whether the whole blob was received.
    fn is_complete(&self) -> bool {
        self.received == self.sealed_size
    }

    /// Once complete, the shorter last chunk, if the blob ends in one.
    fn last_chunk(self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.freeze())
    }
}

/// Opens a whole download whose body arrived as `pieces`, as [`Download`] does (the same cutting into chunks, the
/// same opener and memory sink), without the network: for the fuzz targets.
#[cfg(fuzzing)]
pub(crate) fn open_pieces<'a>(
    keys: &Keys,
    source: &BlobDownloadUrl,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>> {
    let mut chunker = Chunker::new(0, source.sealed_size);
    let opener = OpenerFactory { keys: keys.clone(), source: source.clone() };
    let mut blob = opener.open();
    let mut sink = super::sink::MemorySink::for_blob(source);
    for piece in pieces {
        chunker.push(piece)?;
        while let Some(chunk) = chunker.next_chunk() {
            sink.write(&blob.open_chunk(&chunk)?)?;
        }
    }
    if !chunker.is_complete() {
        return Err(truncated());
    }
    if let Some(last) = chunker.last_chunk() {
        sink.write(&blob.open_chunk(&last)?)?;
    }
    blob.finish()?;
    sink.commit()
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

    fn chunks(offset: u64, sealed_size: u64, pieces: &[&[u8]]) -> Result<(Vec<Bytes>, bool)> {
        let mut chunker = Chunker::new(offset, sealed_size);
        let mut out = Vec::new();
        for piece in pieces {
            chunker.push(piece)?;
            out.extend(std::iter::from_fn(|| chunker.next_chunk()));
        }
        let complete = chunker.is_complete();
        out.extend(chunker.last_chunk());
        Ok((out, complete))
    }

    #[test]
    fn a_body_is_cut_into_the_same_chunks_however_it_arrives() {
        let body: Vec<u8> = (0..2 * SEALED_CHUNK_BYTES + 7).map(|i| i as u8).collect();
        let size = body.len() as u64;
        let whole = chunks(0, size, &[&body]).unwrap();
        assert_eq!(whole.0.iter().map(Bytes::len).collect::<Vec<_>>(), [SEALED_CHUNK_BYTES, SEALED_CHUNK_BYTES, 7]);
        assert!(whole.1);
        let (a, rest) = body.split_at(1);
        let (b, c) = rest.split_at(SEALED_CHUNK_BYTES);
        assert_eq!(chunks(0, size, &[a, b, &[], c]).unwrap(), whole);

        // Short of the length: incomplete. Past it: refused, whatever was received before.
        assert!(!chunks(0, size, &[a, b]).unwrap().1);
        assert_eq!(chunks(0, size - 1, &[a, b, c]).unwrap_err().kind(), ErrorKind::Crypto);
        // A resumed body counts from its offset.
        assert_eq!(chunks(size - 7, size, &[&body[body.len() - 8..]]).unwrap_err().kind(), ErrorKind::Crypto);
        assert!(chunks(size - 7, size, &[&body[body.len() - 7..]]).unwrap().1);
    }
}
