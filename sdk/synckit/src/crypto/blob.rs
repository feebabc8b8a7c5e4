//! Blob encryption: files of any size, encrypted and decrypted as a stream of chunks in bounded memory.
//!
//! - A blob's id is HMAC-SHA256 of its plaintext under the blob-id subkey: the same file gives the same id for one
//!   user (so uploads dedupe), while the server cannot tell whether a user holds a file it knows.
//! - Each blob has its own key, HKDF(blobs subkey, id). The key is unique per content, so chunk nonces need no
//!   randomness, and encrypting the same file twice gives the same bytes: a checksum computed in one pass matches
//!   the upload of the next, and a retried upload resends exactly what was signed.
//! - The chunks form a STREAM: each 64 KiB of plaintext is sealed with XChaCha20-Poly1305 under the nonce
//!   `0…0 ‖ counter (u32, big-endian) ‖ last-chunk flag`. A reordered, dropped, duplicated or truncated chunk fails
//!   to open, and so does a stream cut at a chunk boundary, because its new last chunk was not sealed as last.
//!
//! ```
//! use synckit::crypto::{Keys, SecretKey};
//! use synckit::crypto::blob::{BlobSealer, BlobOpener, encrypted_len};
//! let keys = Keys::derive(&SecretKey::generate());
//! let file = vec![7u8; 200_000];
//! let id = keys.blob_id(&mut &file[..]).unwrap();
//! let sealed: Vec<u8> = BlobSealer::new(&keys, &id, file.len() as u64).seal_all(&file).unwrap();
//! assert_eq!(sealed.len() as u64, encrypted_len(file.len() as u64));
//! let opened = BlobOpener::new(&keys, &id, sealed.len() as u64).open_all(&sealed).unwrap();
//! assert_eq!(opened, file);
//! ```

use std::io::Read;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::aead::XChaCha20Poly1305;
use super::{Keys, NONCE_BYTES, TAG_BYTES};
use crate::error::{Error, ErrorKind, Result};

/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Ciphertext bytes per full chunk.
pub const SEALED_CHUNK_BYTES: usize = CHUNK_BYTES + TAG_BYTES;

/// A blob's content id: 32 bytes, shown as 64 lowercase hex characters on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id as the protocol writes it.
    ///
    /// ```
    /// let id = synckit::crypto::blob::BlobId([0xab; 32]);
    /// assert_eq!(id.to_hex(), "ab".repeat(32));
    /// ```
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 lowercase hex characters.
    ///
    /// ```
    /// use synckit::crypto::blob::BlobId;
    /// let id = BlobId([1; 32]);
    /// assert_eq!(BlobId::from_hex(&id.to_hex()).unwrap(), id);
    /// assert!(BlobId::from_hex("xyz").is_err());
    /// ```
    pub fn from_hex(hex: &str) -> Result<Self> {
        let bad = || Error::new(ErrorKind::InvalidInput, "a blob id is 64 lowercase hex characters");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        let mut id = [0u8; 32];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(id))
    }
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

/// Shows the id as the protocol writes it, to keep in the app's own records.
///
/// ```
/// let id = synckit::BlobId([0xab; 32]);
/// assert_eq!(id.to_string(), id.to_hex());
/// ```
impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Parses what [`Display`](std::fmt::Display) shows.
///
/// ```
/// let id = synckit::BlobId([7; 32]);
/// assert_eq!(id.to_string().parse::<synckit::BlobId>().unwrap(), id);
/// ```
impl std::str::FromStr for BlobId {
    type Err = Error;

    fn from_str(hex: &str) -> Result<Self> {
        Self::from_hex(hex)
    }
}

/// How many chunks a plaintext of `len` bytes makes: at least one, so even an empty blob is authenticated.
fn chunk_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK_BYTES as u64).max(1)
}

/// The ciphertext length of a plaintext of `len` bytes: what is uploaded, and what the store checks.
///
/// ```
/// use synckit::crypto::blob::{encrypted_len, CHUNK_BYTES};
/// assert_eq!(encrypted_len(0), 16);
/// assert_eq!(encrypted_len(CHUNK_BYTES as u64 + 1), CHUNK_BYTES as u64 + 1 + 32);
/// ```
pub fn encrypted_len(plain_len: u64) -> u64 {
    plain_len + chunk_count(plain_len) * TAG_BYTES as u64
}

/// The plaintext length of a ciphertext of `sealed_len` bytes; `None` when no plaintext seals to that length.
///
/// ```
/// use synckit::crypto::blob::{decrypted_len, encrypted_len};
/// assert_eq!(decrypted_len(encrypted_len(200_000)), Some(200_000));
/// assert_eq!(decrypted_len(15), None);
/// ```
pub fn decrypted_len(sealed_len: u64) -> Option<u64> {
    let chunks = sealed_len.div_ceil(SEALED_CHUNK_BYTES as u64).max(1);
    let plain = sealed_len.checked_sub(chunks * TAG_BYTES as u64)?;
    (encrypted_len(plain) == sealed_len).then_some(plain)
}

impl Keys {
    /// The content id of everything `reader` yields, read in chunks.
    ///
    /// ```
    /// use synckit::crypto::{Keys, SecretKey};
    /// let keys = Keys::derive(&SecretKey::generate());
    /// let a = keys.blob_id(&mut &b"same bytes"[..]).unwrap();
    /// assert_eq!(a, keys.blob_id(&mut &b"same bytes"[..]).unwrap());
    /// ```
    pub fn blob_id(&self, reader: &mut impl Read) -> std::io::Result<BlobId> {
        let mut hasher = self.blob_id_hasher();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(hasher.finish());
            }
            hasher.update(&buf[..n]);
        }
    }

    /// An incremental [`blob_id`](Self::blob_id), for plaintext that arrives in pieces.
    ///
    /// ```
    /// use synckit::crypto::{Keys, SecretKey};
    /// let keys = Keys::derive(&SecretKey::generate());
    /// let mut hasher = keys.blob_id_hasher();
    /// hasher.update(b"same ");
    /// hasher.update(b"bytes");
    /// assert_eq!(hasher.finish(), keys.blob_id(&mut &b"same bytes"[..]).unwrap());
    /// ```
    pub fn blob_id_hasher(&self) -> BlobIdHasher {
        BlobIdHasher(<Hmac<Sha256> as Mac>::new_from_slice(self.blob_ids.as_bytes()).expect("any key length"))
    }

    fn blob_cipher(&self, id: &BlobId) -> XChaCha20Poly1305 {
        let hkdf = Hkdf::<Sha256>::new(None, self.blobs.as_bytes());
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf.expand_multi_info(&[b"synckit/blob/v1", &id.0], key.as_mut()).expect("32 bytes is a valid length");
        XChaCha20Poly1305::new(&key)
    }
}

/// Computes a [`BlobId`] from plaintext fed in pieces; made by [`Keys::blob_id_hasher`].
#[derive(Clone)]
pub struct BlobIdHasher(Hmac<Sha256>);

impl std::fmt::Debug for BlobIdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobIdHasher").finish_non_exhaustive()
    }
}

impl BlobIdHasher {
    /// Adds the next piece of plaintext.
    ///
    /// ```
    /// # let keys = synckit::crypto::Keys::derive(&synckit::crypto::SecretKey::generate());
    /// let mut hasher = keys.blob_id_hasher();
    /// hasher.update(b"hello");
    /// ```
    pub fn update(&mut self, plaintext: &[u8]) {
        self.0.update(plaintext);
    }

    /// The id of everything added.
    ///
    /// ```
    /// # let keys = synckit::crypto::Keys::derive(&synckit::crypto::SecretKey::generate());
    /// let empty = keys.blob_id_hasher().finish();
    /// assert_eq!(empty, keys.blob_id(&mut &b""[..]).unwrap());
    /// ```
    pub fn finish(self) -> BlobId {
        BlobId(self.0.finalize().into_bytes().into())
    }
}

fn nonce(counter: u32, last: bool) -> [u8; NONCE_BYTES] {
    let mut nonce = [0u8; NONCE_BYTES];
    nonce[19..23].copy_from_slice(&counter.to_be_bytes());
    nonce[23] = u8::from(last);
    nonce
}

/// Seals a blob chunk by chunk. Feed it the plaintext in order, in pieces of [`CHUNK_BYTES`] (the last may be
/// shorter); it knows from the total length which chunk is the last.
pub struct BlobSealer {
    cipher: XChaCha20Poly1305,
    chunks: u64,
    next: u64,
}

impl std::fmt::Debug for BlobSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobSealer").field("chunks", &self.chunks).field("next", &self.next).finish_non_exhaustive()
    }
}

impl BlobSealer {
    /// A sealer for the blob `id` of `plain_len` bytes.
    ///
    /// ```
    /// # use synckit::crypto::{Keys, SecretKey};
    /// # let keys = Keys::derive(&SecretKey::generate());
    /// let id = keys.blob_id(&mut &b"hi"[..]).unwrap();
    /// let mut sealer = synckit::crypto::blob::BlobSealer::new(&keys, &id, 2);
    /// assert_eq!(sealer.seal_chunk(b"hi").unwrap().len(), 2 + 16);
    /// ```
    pub fn new(keys: &Keys, id: &BlobId, plain_len: u64) -> Self {
        Self { cipher: keys.blob_cipher(id), chunks: chunk_count(plain_len), next: 0 }
    }

    /// Seals the next chunk: exactly [`CHUNK_BYTES`] unless it is the last.
    pub fn seal_chunk(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let last = self.next + 1 == self.chunks;
        if self.next >= self.chunks || plaintext.len() > CHUNK_BYTES || (!last && plaintext.len() != CHUNK_BYTES) {
            return Err(Error::new(ErrorKind::InvalidInput, "the blob's chunks do not add up to its length"));
        }
        let counter = u32::try_from(self.next)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "the blob is too large to encrypt"))?;
        self.next += 1;
        Ok(self.cipher.seal(&nonce(counter, last), &[], plaintext))
    }

    /// Seals a whole in-memory plaintext (for small blobs and tests).
    pub fn seal_all(mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(encrypted_len(plaintext.len() as u64) as usize);
        if plaintext.is_empty() {
            out.extend(self.seal_chunk(&[])?);
        }
        for chunk in plaintext.chunks(CHUNK_BYTES) {
            out.extend(self.seal_chunk(chunk)?);
        }
        Ok(out)
    }
}

/// Opens a sealed blob chunk by chunk, checking order, completeness and integrity.
pub struct BlobOpener {
    cipher: XChaCha20Poly1305,
    chunks: u64,
    next: u64,
}

impl std::fmt::Debug for BlobOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobOpener").field("chunks", &self.chunks).field("next", &self.next).finish_non_exhaustive()
    }
}

fn broken(what: &str) -> Error {
    Error::new(ErrorKind::Crypto, format!("the blob does not decrypt: {what}"))
}

impl BlobOpener {
    /// An opener for the blob `id` whose ciphertext is `sealed_len` bytes.
    ///
    /// ```
    /// # use synckit::crypto::{Keys, SecretKey};
    /// # use synckit::crypto::blob::{BlobOpener, BlobSealer};
    /// # let keys = Keys::derive(&SecretKey::generate());
    /// let id = keys.blob_id(&mut &b"hi"[..]).unwrap();
    /// let sealed = BlobSealer::new(&keys, &id, 2).seal_all(b"hi").unwrap();
    /// let mut opener = BlobOpener::new(&keys, &id, sealed.len() as u64);
    /// assert_eq!(opener.open_chunk(&sealed).unwrap(), b"hi");
    /// opener.finish().unwrap();
    /// ```
    pub fn new(keys: &Keys, id: &BlobId, sealed_len: u64) -> Self {
        // A length no plaintext seals to opens nothing: every chunk will fail.
        let chunks = decrypted_len(sealed_len).map_or(0, chunk_count);
        Self { cipher: keys.blob_cipher(id), chunks, next: 0 }
    }

    /// Opens the next sealed chunk: [`SEALED_CHUNK_BYTES`] unless it is the last.
    pub fn open_chunk(&mut self, sealed: &[u8]) -> Result<Vec<u8>> {
        if self.next >= self.chunks {
            return Err(broken("more data than its length says"));
        }
        let last = self.next + 1 == self.chunks;
        let counter = u32::try_from(self.next).map_err(|_| broken("too many chunks"))?;
        let plain = self
            .cipher
            .open(&nonce(counter, last), &[], sealed)
            .map_err(|_| broken("a chunk is tampered, out of order, truncated, or under another key"))?;
        self.next += 1;
        Ok(plain)
    }

    /// Checks that every chunk was opened: a blob cut short fails here at the latest.
    pub fn finish(self) -> Result<()> {
        if self.next == self.chunks && self.chunks > 0 { Ok(()) } else { Err(broken("it is incomplete")) }
    }

    /// Opens a whole in-memory ciphertext (for small blobs and tests).
    pub fn open_all(mut self, sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(sealed.len());
        if sealed.is_empty() {
            return Err(broken("it is empty"));
        }
        for chunk in sealed.chunks(SEALED_CHUNK_BYTES) {
            out.extend(self.open_chunk(chunk)?);
        }
        self.finish()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_boundary() {
        let keys = Keys::derive(&SecretKey::generate());
        for len in [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 5] {
            let file = sample(len);
            let id = keys.blob_id(&mut &file[..]).unwrap();
            let sealed = BlobSealer::new(&keys, &id, len as u64).seal_all(&file).unwrap();
            assert_eq!(sealed.len() as u64, encrypted_len(len as u64), "length {len}");
            assert_eq!(decrypted_len(sealed.len() as u64), Some(len as u64));
            assert_eq!(
                BlobOpener::new(&keys, &id, sealed.len() as u64).open_all(&sealed).unwrap(),
                file,
                "length {len}"
            );
            // Deterministic for the same content and keys: a second pass produces the same bytes.
            assert_eq!(BlobSealer::new(&keys, &id, len as u64).seal_all(&file).unwrap(), sealed);
        }
    }

    #[test]
    fn ids_are_keyed_and_never_the_plain_hash() {
        use sha2::Digest;
        let file = sample(1000);
        let a = Keys::derive(&SecretKey::generate()).blob_id(&mut &file[..]).unwrap();
        let b = Keys::derive(&SecretKey::generate()).blob_id(&mut &file[..]).unwrap();
        assert_ne!(a, b, "another user's id for the same file differs");
        assert_ne!(a.0, <[u8; 32]>::from(Sha256::digest(&file)));
    }

    #[test]
    fn tampering_reordering_and_truncation_are_detected() {
        let keys = Keys::derive(&SecretKey::generate());
        let file = sample(3 * CHUNK_BYTES + 100);
        let id = keys.blob_id(&mut &file[..]).unwrap();
        let sealed = BlobSealer::new(&keys, &id, file.len() as u64).seal_all(&file).unwrap();
        let open = |bytes: &[u8]| BlobOpener::new(&keys, &id, bytes.len() as u64).open_all(bytes);
        let kind = |r: Result<Vec<u8>>| r.unwrap_err().kind();

        let mut flipped = sealed.clone();
        flipped[CHUNK_BYTES + 40] ^= 1;
        assert_eq!(kind(open(&flipped)), ErrorKind::Crypto);

        let (c0, rest) = sealed.split_at(SEALED_CHUNK_BYTES);
        let (c1, rest) = rest.split_at(SEALED_CHUNK_BYTES);
        let swapped = [c1, c0, rest].concat();
        assert_eq!(kind(open(&swapped)), ErrorKind::Crypto);

        // Cut at a chunk boundary (the new last chunk was not sealed as last), and mid-chunk.
        assert_eq!(kind(open(&sealed[..2 * SEALED_CHUNK_BYTES])), ErrorKind::Crypto);
        assert_eq!(kind(open(&sealed[..sealed.len() - 1])), ErrorKind::Crypto);
        assert_eq!(kind(open(&[])), ErrorKind::Crypto);

        // Another blob's id (another key) or another user's keys.
        let other = keys.blob_id(&mut &b"other"[..]).unwrap();
        assert!(BlobOpener::new(&keys, &other, sealed.len() as u64).open_all(&sealed).is_err());
        let stranger = Keys::derive(&SecretKey::generate());
        assert!(BlobOpener::new(&stranger, &id, sealed.len() as u64).open_all(&sealed).is_err());
    }

    #[test]
    fn sealers_refuse_chunks_that_do_not_add_up() {
        let keys = Keys::derive(&SecretKey::generate());
        let id = BlobId([3; 32]);
        let mut sealer = BlobSealer::new(&keys, &id, (CHUNK_BYTES + 1) as u64);
        assert_eq!(sealer.seal_chunk(b"short but not last").unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut done = BlobSealer::new(&keys, &id, 1);
        done.seal_chunk(b"x").unwrap();
        assert!(done.seal_chunk(b"y").is_err());
    }
}
