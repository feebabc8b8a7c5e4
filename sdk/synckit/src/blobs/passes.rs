//! The passes over an upload's plaintext: its id, its checksum, its sealed chunks.
//!
//! Everything here is blocking (file reads, hashing, sealing): callers run it on a blocking thread. Each pass
//! holds one 64 KiB plaintext chunk and one sealed chunk at a time. Each pass also checks that the source still
//! has the length and content the first pass saw, so a file rewritten during an upload fails the upload instead of
//! putting other bytes under its id.

use std::io::{self, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use synckit_protocol::limits::MAX_BLOB_PLAINTEXT_BYTES;

use super::source::BlobSource;
use super::types::PreparedBlob;
use crate::crypto::Keys;
use crate::crypto::blob::{BlobId, BlobIdHasher, BlobSealer, CHUNK_BYTES};
use crate::error::{Error, ErrorKind, Result};

/// A source's plaintext in [`CHUNK_BYTES`] pieces (the last may be shorter; an empty source is one empty piece),
/// failing when the source turns out longer or shorter than the length it had when opened.
struct PlainChunks<'a> {
    source: &'a BlobSource,
    reader: Box<dyn Read + Send>,
    len: u64,
    remaining: u64,
    done: bool,
    buf: Vec<u8>,
}

impl<'a> PlainChunks<'a> {
    /// The source from its start, at the length it has now.
    fn open(source: &'a BlobSource) -> Result<Self> {
        let (reader, len) = source.open()?;
        Ok(Self { source, reader, len, remaining: len, done: false, buf: vec![0; CHUNK_BYTES] })
    }

    /// The source from its start, which must still have the length `len` an earlier pass saw.
    fn reopen(source: &'a BlobSource, len: u64) -> Result<Self> {
        let chunks = Self::open(source)?;
        if chunks.len != len {
            return Err(source.changed());
        }
        Ok(chunks)
    }

    fn next(&mut self) -> Result<Option<&[u8]>> {
        if self.done {
            return Ok(None);
        }
        let n = self.remaining.min(CHUNK_BYTES as u64) as usize;
        self.reader.read_exact(&mut self.buf[..n]).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.source.changed(),
            _ => self.source.unreadable(e),
        })?;
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.done = true;
            let mut probe = [0u8; 1];
            if self.reader.read(&mut probe).map_err(|e| self.source.unreadable(e))? != 0 {
                return Err(self.source.changed());
            }
        }
        Ok(Some(&self.buf[..n]))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// One sealed chunk, ready to send.
pub(super) struct SealedChunk {
    pub(super) bytes: Bytes,
    /// The plaintext bytes it holds.
    pub(super) plain_len: usize,
}

/// The source sealed chunk by chunk, with the SHA-256 of everything sealed so far and, when asked for, a fresh id
/// of the plaintext to compare with the one the seal is keyed to.
struct SealedChunks<'a> {
    plain: PlainChunks<'a>,
    sealer: BlobSealer,
    checksum: Sha256,
    rehash: Option<BlobIdHasher>,
}

impl<'a> SealedChunks<'a> {
    fn open(keys: &Keys, source: &'a BlobSource, id: &BlobId, len: u64) -> Result<Self> {
        Ok(Self {
            plain: PlainChunks::reopen(source, len)?,
            sealer: BlobSealer::new(keys, id, len),
            checksum: Sha256::new(),
            rehash: None,
        })
    }

    /// Also hashes the plaintext for its id, for [`rehashed_id`](Self::rehashed_id).
    fn rehashing(mut self, keys: &Keys) -> Self {
        self.rehash = Some(keys.blob_id_hasher());
        self
    }

    /// The next sealed chunk, and whether it is the last.
    fn next(&mut self) -> Result<Option<(SealedChunk, bool)>> {
        let Some(plain) = self.plain.next()? else { return Ok(None) };
        if let Some(hasher) = &mut self.rehash {
            hasher.update(plain);
        }
        let sealed = self.sealer.seal_chunk(plain)?;
        self.checksum.update(&sealed);
        let chunk = SealedChunk { plain_len: plain.len(), bytes: Bytes::from(sealed) };
        Ok(Some((chunk, self.plain.is_done())))
    }

    /// The base64 SHA-256 of every chunk sealed so far.
    fn checksum(&self) -> String {
        STANDARD.encode(self.checksum.clone().finalize())
    }

    /// The id of the plaintext sealed, once every chunk was: `None` unless [`rehashing`](Self::rehashing).
    fn rehashed_id(self) -> Option<BlobId> {
        self.rehash.map(BlobIdHasher::finish)
    }
}

/// Refuses a plaintext larger than a blob may be, before it is read or anything is sent.
fn check_plaintext_len(len: u64) -> Result<()> {
    if len > MAX_BLOB_PLAINTEXT_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the blob is {len} bytes; a blob holds at most 500 MiB ({MAX_BLOB_PLAINTEXT_BYTES} bytes)"),
        ));
    }
    Ok(())
}

/// The first two passes: the blob's id, then its sealed length and checksum. The second pass hashes the plaintext
/// again: a source changed between the passes would otherwise get a checksum of other bytes than its id names.
pub(super) fn prepare(keys: &Keys, source: BlobSource) -> Result<PreparedBlob> {
    let mut plain = PlainChunks::open(&source)?;
    let len = plain.len;
    check_plaintext_len(len)?;
    let mut hasher = keys.blob_id_hasher();
    while let Some(chunk) = plain.next()? {
        hasher.update(chunk);
    }
    let id = hasher.finish();

    let mut sealed = SealedChunks::open(keys, &source, &id, len)?.rehashing(keys);
    while sealed.next()?.is_some() {}
    let checksum_sha256 = sealed.checksum();
    if sealed.rehashed_id() != Some(id) {
        return Err(source.changed());
    }
    Ok(PreparedBlob { source, id, len, checksum_sha256 })
}

/// The third pass: hands each sealed chunk to `send`, in order, until it returns `false` (the request ended).
/// The last chunk is only handed over if the whole ciphertext has the prepared checksum, so a source changed
/// since it was prepared never completes an upload. Sealing is deterministic, so the same checksum means the very
/// plaintext the second pass checked against the id: it need not be hashed again.
pub(super) fn seal_for_upload(
    keys: &Keys,
    blob: &PreparedBlob,
    mut send: impl FnMut(SealedChunk) -> bool,
) -> Result<()> {
    let mut sealed = SealedChunks::open(keys, &blob.source, &blob.id, blob.len)?;
    while let Some((chunk, last)) = sealed.next()? {
        if last && sealed.checksum() != blob.checksum_sha256 {
            return Err(blob.source.changed());
        }
        if !send(chunk) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::crypto::SecretKey;
    use crate::crypto::blob::{BlobOpener, encrypted_len};

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn sealed_bytes(keys: &Keys, blob: &PreparedBlob) -> Vec<u8> {
        let mut out = Vec::new();
        seal_for_upload(keys, blob, |chunk| {
            out.extend_from_slice(&chunk.bytes);
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn prepared_blobs_match_what_is_sent_at_every_boundary() {
        let keys = Keys::derive(&SecretKey::generate());
        for len in [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 17] {
            let file = sample(len);
            let blob = prepare(&keys, BlobSource::bytes(file.clone())).unwrap();
            assert_eq!(blob.id, keys.blob_id(&mut &file[..]).unwrap(), "length {len}");
            assert_eq!((blob.size(), blob.sealed_size()), (len as u64, encrypted_len(len as u64)));
            let sent = sealed_bytes(&keys, &blob);
            assert_eq!(sent.len() as u64, blob.sealed_size());
            assert_eq!(blob.checksum_sha256(), STANDARD.encode(Sha256::digest(&sent)), "length {len}");
            let opened = BlobOpener::new(&keys, &blob.id, sent.len() as u64).open_all(&sent).unwrap();
            assert_eq!(opened, file);
        }
    }

    #[test]
    fn files_and_buffers_give_the_same_blob() {
        let keys = Keys::derive(&SecretKey::generate());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, sample(100_000)).unwrap();
        let from_file = prepare(&keys, BlobSource::file(&path)).unwrap();
        let from_bytes = prepare(&keys, BlobSource::bytes(sample(100_000))).unwrap();
        assert_eq!((from_file.id, from_file.checksum_sha256()), (from_bytes.id, from_bytes.checksum_sha256()));
    }

    #[test]
    fn a_file_changed_after_it_was_prepared_is_never_sent_whole() {
        let keys = Keys::derive(&SecretKey::generate());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, sample(3 * CHUNK_BYTES)).unwrap();
        let blob = prepare(&keys, BlobSource::file(&path)).unwrap();

        // Same length, other content: every chunk but the last goes out, then the upload fails.
        let mut edited = sample(3 * CHUNK_BYTES);
        edited[10] ^= 1;
        std::fs::write(&path, &edited).unwrap();
        let mut sent = 0;
        let err = seal_for_upload(&keys, &blob, |_| {
            sent += 1;
            true
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("changed while it was being uploaded"), "{err}");
        assert_eq!(sent, 2, "the last chunk is held back");

        // Another length fails before anything is sealed.
        std::fs::write(&path, sample(10)).unwrap();
        let err = seal_for_upload(&keys, &blob, |_| panic!("nothing is sent")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn unreadable_sources_are_invalid_input() {
        let keys = Keys::derive(&SecretKey::generate());
        let dir = tempfile::tempdir().unwrap();
        let missing = prepare(&keys, BlobSource::file(dir.path().join("missing"))).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::InvalidInput);
        assert!(missing.to_string().contains("cannot read"), "{missing}");
        let directory = prepare(&keys, BlobSource::file(dir.path())).unwrap_err();
        assert_eq!(directory.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn the_limit_is_500_mib_of_plaintext_and_fits_the_ciphertext_limit() {
        use synckit_protocol::limits::MAX_BLOB_BYTES;
        assert!(check_plaintext_len(0).is_ok());
        assert!(check_plaintext_len(MAX_BLOB_PLAINTEXT_BYTES).is_ok());
        let err = check_plaintext_len(MAX_BLOB_PLAINTEXT_BYTES + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(encrypted_len(MAX_BLOB_PLAINTEXT_BYTES), MAX_BLOB_BYTES, "the protocol's limit is exact");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_reading_it() {
        use synckit_protocol::limits::MAX_BLOB_PLAINTEXT_BYTES;
        let keys = Keys::derive(&SecretKey::generate());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        // Sparse: it takes no disk and would take seconds to read.
        File::create(&path).unwrap().set_len(MAX_BLOB_PLAINTEXT_BYTES + 1).unwrap();
        let err = prepare(&keys, BlobSource::file(&path)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("at most 500 MiB"), "{err}");
    }
}
