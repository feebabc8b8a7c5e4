//! The encryption model: nothing here talks to the network.
//!
//! - The master key is 32 random bytes per (app, user). It never leaves the device unwrapped.
//! - Its envelope: Argon2id(password, fresh 32-byte salt, 64 MiB, 3 iterations) gives a wrapping key, and
//!   XChaCha20-Poly1305 seals the master key under it, with the (app, user) as associated data.
//! - Subkeys come from the master key by HKDF-SHA256 with distinct labels; the master key itself encrypts nothing.
//! - An entry's whole plaintext (table, op, row id, timestamp, data) is sealed with a fresh 24-byte nonce and the
//!   (app, user, change id) as associated data, so the server cannot move a payload to another entry or user.
//!   Payload = nonce ‖ ciphertext ‖ tag: 40 bytes of overhead.
//!
//! Key derivation is slow on purpose; callers run [`derive_key`] off the async runtime.
//!
//! ```
//! use synckit::crypto::{Keys, SecretKey, unwrap_master_key, wrap_master_key};
//! let (app, user, change) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
//! let envelope = wrap_master_key(&SecretKey::generate(), "correct horse", app, user).unwrap();
//! let keys = Keys::derive(&unwrap_master_key(&envelope, "correct horse", app, user).unwrap());
//! let payload = keys.seal_entry(b"secret", app, user, change);
//! assert_eq!(keys.open_entry(&payload, app, user, change).unwrap(), b"secret");
//! ```

pub mod blob;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};

/// Bytes in a key ([`SecretKey`], master key and subkeys).
///
/// ```
/// let key = synckit::crypto::SecretKey::generate();
/// assert_eq!(key.as_bytes().len(), synckit::crypto::KEY_BYTES);
/// ```
pub const KEY_BYTES: usize = 32;
/// Bytes in the random salt of a key envelope.
///
/// ```
/// use synckit::crypto::{SALT_BYTES, random_bytes};
/// let salt: [u8; SALT_BYTES] = random_bytes();
/// ```
pub const SALT_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// Bytes an encrypted entry adds to its plaintext.
///
/// ```
/// use synckit::crypto::{ENTRY_OVERHEAD, Keys, SecretKey};
/// let id = uuid::Uuid::now_v7();
/// let payload = Keys::derive(&SecretKey::generate()).seal_entry(b"hello", id, id, id);
/// assert_eq!(payload.len(), 5 + ENTRY_OVERHEAD);
/// ```
pub const ENTRY_OVERHEAD: usize = NONCE_BYTES + TAG_BYTES;

const ENVELOPE_VERSION: u8 = 1;
const ENVELOPE_HEADER: usize = 1 + 4 * 3;
const ENVELOPE_BYTES: usize = ENVELOPE_HEADER + SALT_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES;

/// Argon2id cost parameters.
///
/// ```
/// use synckit::crypto::{KdfParams, derive_key};
/// // Far cheaper than the default: fine for a test, not for a password.
/// let cheap = KdfParams { memory_kib: 256, iterations: 1, parallelism: 1 };
/// assert!(derive_key("pass", b"a salt of 16 b..", cheap).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Passes over that memory.
    pub iterations: u32,
    /// Lanes (threads).
    pub parallelism: u32,
}

impl KdfParams {
    /// 64 MiB, 3 iterations, one lane: the protocol's login derivation and the envelope's wrapping key.
    ///
    /// ```
    /// use synckit::crypto::KdfParams;
    /// assert_eq!(KdfParams::DEFAULT.memory_kib, 64 * 1024);
    /// assert_eq!(KdfParams::DEFAULT.iterations, 3);
    /// ```
    pub const DEFAULT: KdfParams = KdfParams { memory_kib: 65536, iterations: 3, parallelism: 1 };
}

/// 32 secret bytes, wiped from memory when dropped.
///
/// ```
/// use synckit::crypto::SecretKey;
/// let key = SecretKey::generate();
/// // Debug output never shows the bytes.
/// assert_eq!(format!("{key:?}"), "SecretKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<[u8; KEY_BYTES]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A new random key.
    ///
    /// ```
    /// use synckit::crypto::SecretKey;
    /// assert_ne!(SecretKey::generate(), SecretKey::generate());
    /// ```
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(key.as_mut()).expect("the OS random source is available");
        Self(key)
    }

    /// A key from exactly 32 bytes; any other length is [`ErrorKind::Crypto`].
    ///
    /// ```
    /// use synckit::{ErrorKind, crypto::SecretKey};
    /// assert_eq!(SecretKey::from_bytes(&[7; 32]).unwrap().as_bytes(), &[7; 32]);
    /// assert_eq!(SecretKey::from_bytes(&[7; 31]).unwrap_err().kind(), ErrorKind::Crypto);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        if bytes.len() != KEY_BYTES {
            return Err(Error::new(ErrorKind::Crypto, "a key is 32 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw bytes.
    ///
    /// ```
    /// use synckit::crypto::SecretKey;
    /// let key = SecretKey::generate();
    /// assert_eq!(SecretKey::from_bytes(key.as_bytes()).unwrap(), key);
    /// ```
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

/// Random bytes, e.g. a salt.
///
/// ```
/// let salt: [u8; 16] = synckit::crypto::random_bytes();
/// assert_ne!(salt, synckit::crypto::random_bytes::<16>());
/// ```
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

/// Argon2id(password, salt) with `params`, 32 bytes. Slow by design (~100 ms at the default cost): call it from a
/// blocking thread.
///
/// ```
/// use synckit::crypto::{KdfParams, derive_key, random_bytes};
/// let salt: [u8; 32] = random_bytes();
/// let key = derive_key("correct horse", &salt, KdfParams::DEFAULT).unwrap();
/// assert_eq!(key, derive_key("correct horse", &salt, KdfParams::DEFAULT).unwrap());
/// ```
pub fn derive_key(password: &str, salt: &[u8], params: KdfParams) -> Result<SecretKey> {
    let argon_params = Params::new(params.memory_kib, params.iterations, params.parallelism, Some(KEY_BYTES))
        .map_err(|e| Error::new(ErrorKind::Crypto, format!("unusable key derivation parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(password.as_bytes(), salt, key.as_mut())
        .map_err(|e| Error::new(ErrorKind::Crypto, format!("key derivation failed: {e}")))?;
    Ok(SecretKey(key))
}

/// Associated data binding an envelope to its (app, user).
fn envelope_aad(app_id: Uuid, user_id: Uuid) -> Vec<u8> {
    [b"synckit/envelope/v1".as_slice(), app_id.as_bytes(), user_id.as_bytes()].concat()
}

/// Seals the master key under a key derived from `password` with a fresh salt. The result is at most 4 KiB (it is
/// 117 bytes) and safe to hand to the server.
///
/// ```
/// use synckit::crypto::{SecretKey, wrap_master_key};
/// let (app, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
/// let envelope = wrap_master_key(&SecretKey::generate(), "correct horse", app, user).unwrap();
/// assert_eq!(envelope.len(), 117);
/// ```
pub fn wrap_master_key(master: &SecretKey, password: &str, app_id: Uuid, user_id: Uuid) -> Result<Vec<u8>> {
    wrap_with_params(master, password, app_id, user_id, KdfParams::DEFAULT)
}

pub(crate) fn wrap_with_params(
    master: &SecretKey,
    password: &str,
    app_id: Uuid,
    user_id: Uuid,
    params: KdfParams,
) -> Result<Vec<u8>> {
    let salt: [u8; SALT_BYTES] = random_bytes();
    let wrapping = derive_key(password, &salt, params)?;
    let nonce: [u8; NONCE_BYTES] = random_bytes();
    let cipher = XChaCha20Poly1305::new(wrapping.as_bytes().into());
    let sealed = cipher
        .encrypt(&xnonce(&nonce), Payload { msg: master.as_bytes(), aad: &envelope_aad(app_id, user_id) })
        .map_err(|_| Error::new(ErrorKind::Crypto, "sealing the master key failed"))?;
    let mut envelope = Vec::with_capacity(ENVELOPE_BYTES);
    envelope.push(ENVELOPE_VERSION);
    for v in [params.memory_kib, params.iterations, params.parallelism] {
        envelope.extend_from_slice(&v.to_le_bytes());
    }
    envelope.extend_from_slice(&salt);
    envelope.extend_from_slice(&nonce);
    envelope.extend_from_slice(&sealed);
    Ok(envelope)
}

/// Opens an envelope with `password`. A wrong password is [`ErrorKind::WrongPassword`]; an envelope that is not
/// one is [`ErrorKind::Crypto`].
///
/// ```
/// use synckit::{ErrorKind, crypto::{SecretKey, unwrap_master_key, wrap_master_key}};
/// let (app, user, master) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), SecretKey::generate());
/// let envelope = wrap_master_key(&master, "correct horse", app, user).unwrap();
/// assert_eq!(unwrap_master_key(&envelope, "correct horse", app, user).unwrap(), master);
/// assert_eq!(unwrap_master_key(&envelope, "wrong", app, user).unwrap_err().kind(), ErrorKind::WrongPassword);
/// ```
pub fn unwrap_master_key(envelope: &[u8], password: &str, app_id: Uuid, user_id: Uuid) -> Result<SecretKey> {
    if envelope.len() != ENVELOPE_BYTES || envelope[0] != ENVELOPE_VERSION {
        return Err(Error::new(ErrorKind::Crypto, "the stored key envelope is not a SyncKit v1 envelope"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(envelope[i..i + 4].try_into().expect("4 bytes"));
    let params = KdfParams { memory_kib: u32_at(1), iterations: u32_at(5), parallelism: u32_at(9) };
    // Refuse absurd costs a hostile server could use to exhaust the device.
    if params.memory_kib > 4 * 1024 * 1024 || params.iterations > 64 || params.parallelism > 64 {
        return Err(Error::new(ErrorKind::Crypto, "the key envelope asks for an unreasonable key derivation cost"));
    }
    let salt = &envelope[ENVELOPE_HEADER..ENVELOPE_HEADER + SALT_BYTES];
    let nonce = &envelope[ENVELOPE_HEADER + SALT_BYTES..ENVELOPE_HEADER + SALT_BYTES + NONCE_BYTES];
    let sealed = &envelope[ENVELOPE_HEADER + SALT_BYTES + NONCE_BYTES..];
    let wrapping = derive_key(password, salt, params)?;
    let cipher = XChaCha20Poly1305::new(wrapping.as_bytes().into());
    let mut opened = cipher
        .decrypt(&xnonce(nonce), Payload { msg: sealed, aad: &envelope_aad(app_id, user_id) })
        .map_err(|_| Error::new(ErrorKind::WrongPassword, "the password does not open the key envelope"))?;
    let key = SecretKey::from_bytes(&opened);
    opened.zeroize();
    key
}

/// The keys derived from one master key.
///
/// ```
/// use synckit::crypto::{Keys, SecretKey};
/// let keys = Keys::derive(&SecretKey::generate());
/// assert_eq!(format!("{keys:?}"), "Keys(..)");
/// ```
#[derive(Clone)]
pub struct Keys {
    entries: XChaCha20Poly1305,
    /// Per-blob keys are derived from it (see [`blob`]).
    blobs: SecretKey,
    /// Keys the content ids of blobs.
    blob_ids: SecretKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Derives the subkeys. The same master key always gives the same subkeys, so every device of a user opens
    /// what the others sealed.
    ///
    /// ```
    /// use synckit::crypto::{Keys, SecretKey};
    /// let (master, id) = (SecretKey::generate(), uuid::Uuid::now_v7());
    /// let payload = Keys::derive(&master).seal_entry(b"hi", id, id, id);
    /// assert_eq!(Keys::derive(&master).open_entry(&payload, id, id, id).unwrap(), b"hi");
    /// ```
    pub fn derive(master: &SecretKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"synckit/v1"), master.as_bytes());
        let subkey = |label: &[u8]| {
            let mut key = Zeroizing::new([0u8; KEY_BYTES]);
            hkdf.expand(label, key.as_mut()).expect("32 bytes is a valid HKDF-SHA256 length");
            SecretKey(key)
        };
        let entries = subkey(b"entries");
        Self {
            entries: XChaCha20Poly1305::new(entries.as_bytes().into()),
            blobs: subkey(b"blobs"),
            blob_ids: subkey(b"blob ids"),
        }
    }

    /// Seals one entry's plaintext for (app, user, change id), under a fresh nonce each call.
    ///
    /// ```
    /// use synckit::crypto::{Keys, SecretKey};
    /// let (keys, id) = (Keys::derive(&SecretKey::generate()), uuid::Uuid::now_v7());
    /// assert_ne!(keys.seal_entry(b"hi", id, id, id), keys.seal_entry(b"hi", id, id, id));
    /// ```
    pub fn seal_entry(&self, plaintext: &[u8], app_id: Uuid, user_id: Uuid, change_id: Uuid) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = random_bytes();
        let aad = entry_aad(app_id, user_id, change_id);
        let sealed = self
            .entries
            .encrypt(&xnonce(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut payload = Vec::with_capacity(NONCE_BYTES + sealed.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&sealed);
        payload
    }

    /// Opens a payload sealed by [`Keys::seal_entry`] for the same (app, user, change id). Anything else
    /// (tampered, truncated, another change id, user, app or key) is [`ErrorKind::Crypto`].
    ///
    /// ```
    /// use synckit::{ErrorKind, crypto::{Keys, SecretKey}};
    /// let keys = Keys::derive(&SecretKey::generate());
    /// let (app, user, change) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    /// let payload = keys.seal_entry(b"hi", app, user, change);
    /// assert_eq!(keys.open_entry(&payload, app, user, change).unwrap(), b"hi");
    /// assert_eq!(keys.open_entry(&payload, app, user, uuid::Uuid::now_v7()).unwrap_err().kind(), ErrorKind::Crypto);
    /// ```
    pub fn open_entry(&self, payload: &[u8], app_id: Uuid, user_id: Uuid, change_id: Uuid) -> Result<Vec<u8>> {
        if payload.len() < ENTRY_OVERHEAD {
            return Err(Error::new(ErrorKind::Crypto, format!("entry {change_id} is too short to be ciphertext")));
        }
        let (nonce, sealed) = payload.split_at(NONCE_BYTES);
        self.entries
            .decrypt(&xnonce(nonce), Payload { msg: sealed, aad: &entry_aad(app_id, user_id, change_id) })
            .map_err(|_| {
                Error::new(
                    ErrorKind::Crypto,
                    format!("entry {change_id} does not decrypt: tampered, moved from another entry, or another key"),
                )
            })
    }
}

fn xnonce(bytes: &[u8]) -> XNonce {
    let bytes: [u8; NONCE_BYTES] = bytes.try_into().expect("nonces are 24 bytes");
    bytes.into()
}

fn entry_aad(app_id: Uuid, user_id: Uuid, change_id: Uuid) -> [u8; 16 + 48] {
    let mut aad = [0u8; 64];
    aad[..16].copy_from_slice(b"synckit/entry/v1");
    aad[16..32].copy_from_slice(app_id.as_bytes());
    aad[32..48].copy_from_slice(user_id.as_bytes());
    aad[48..].copy_from_slice(change_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests are about the construction, not the cost.
    const FAST: KdfParams = KdfParams { memory_kib: 256, iterations: 1, parallelism: 1 };

    #[test]
    fn envelopes_open_only_with_the_password_and_for_their_user() {
        let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
        let master = SecretKey::generate();
        let envelope = wrap_with_params(&master, "correct horse", app, user, FAST).unwrap();
        assert_eq!(envelope.len(), ENVELOPE_BYTES);
        assert_eq!(unwrap_master_key(&envelope, "correct horse", app, user).unwrap(), master);
        assert_eq!(unwrap_master_key(&envelope, "wrong", app, user).unwrap_err().kind(), ErrorKind::WrongPassword);
        // Another user's envelope handed over by the server does not open as this user's.
        assert!(unwrap_master_key(&envelope, "correct horse", app, Uuid::now_v7()).is_err());
        // Every wrap uses a fresh salt and nonce.
        assert_ne!(envelope, wrap_with_params(&master, "correct horse", app, user, FAST).unwrap());

        let mut tampered = envelope.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(unwrap_master_key(&tampered, "correct horse", app, user).is_err());
        assert_eq!(unwrap_master_key(&envelope[..50], "x", app, user).unwrap_err().kind(), ErrorKind::Crypto);
        let mut costly = envelope.clone();
        costly[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(unwrap_master_key(&costly, "correct horse", app, user).unwrap_err().kind(), ErrorKind::Crypto);
    }

    #[test]
    fn entries_are_bound_to_their_change_user_and_key() {
        let (app, user, change) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let keys = Keys::derive(&SecretKey::generate());
        let payload = keys.seal_entry(b"{\"table\":\"notes\"}", app, user, change);
        assert_eq!(payload.len(), 17 + ENTRY_OVERHEAD);
        assert_eq!(keys.open_entry(&payload, app, user, change).unwrap(), b"{\"table\":\"notes\"}");

        let kind = |r: Result<Vec<u8>>| r.unwrap_err().kind();
        // Swapped onto another entry, another user, another app.
        assert_eq!(kind(keys.open_entry(&payload, app, user, Uuid::now_v7())), ErrorKind::Crypto);
        assert_eq!(kind(keys.open_entry(&payload, app, Uuid::now_v7(), change)), ErrorKind::Crypto);
        assert_eq!(kind(keys.open_entry(&payload, Uuid::now_v7(), user, change)), ErrorKind::Crypto);
        // Tampered, truncated, or under another key.
        let mut tampered = payload.clone();
        tampered[30] ^= 0x80;
        assert_eq!(kind(keys.open_entry(&tampered, app, user, change)), ErrorKind::Crypto);
        assert_eq!(kind(keys.open_entry(&payload[..payload.len() - 1], app, user, change)), ErrorKind::Crypto);
        assert_eq!(kind(keys.open_entry(&payload[..10], app, user, change)), ErrorKind::Crypto);
        let other = Keys::derive(&SecretKey::generate());
        assert_eq!(kind(other.open_entry(&payload, app, user, change)), ErrorKind::Crypto);
        // A fresh nonce every time.
        assert_ne!(payload, keys.seal_entry(b"{\"table\":\"notes\"}", app, user, change));
    }

    #[test]
    fn login_keys_follow_the_protocol_derivation() {
        // Argon2id(password, salt, 64 MiB, 3, 1) is deterministic: the same inputs give the same login key.
        let salt = [9u8; 32];
        let a = derive_key("pass", &salt, KdfParams::DEFAULT).unwrap();
        assert_eq!(a, derive_key("pass", &salt, KdfParams::DEFAULT).unwrap());
        assert_ne!(a, derive_key("pass", &[8u8; 32], KdfParams::DEFAULT).unwrap());
    }
}
