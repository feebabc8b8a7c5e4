//! The encryption model: nothing here talks to the network.
//!
//! - The master key is 32 random bytes per (app, user). It never leaves the device unwrapped.
//! - Its envelope ([`Envelope`]): Argon2id(password, fresh 32-byte salt, 64 MiB, 3 iterations) with a wrapping
//!   label as Argon2's associated data gives a wrapping key, and XChaCha20-Poly1305 seals the master key and a key
//!   check under it, with the (app, user) as associated data. The label keeps the wrapping key apart from the login
//!   key the server receives, which is the same derivation without it.
//! - A recovery key ([`RecoveryKey`]), 160 random bits shown to the user once, seals the master key again into a
//!   recovery envelope; HKDF with distinct labels gives it a login key for the server and a wrapping key that stays
//!   on the device.
//! - Subkeys come from the master key by HKDF-SHA256 with distinct labels; the master key itself encrypts nothing.
//! - An entry's whole plaintext (table, op, row id, timestamp, data) is sealed with a fresh 24-byte nonce and the
//!   (app, user, change id) as associated data, so the server cannot move a payload to another entry or user.
//!   Payload = nonce ‖ ciphertext ‖ tag: 40 bytes of overhead.
//! - Keys, salts and nonces come from the OS's random source. Entries sealed together ([`EntrySealer`]) share one
//!   draw: a random 16-byte nonce prefix, and a count in the last 8 bytes from a random start, so a batch costs one
//!   draw and one XChaCha20 subkey.
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

mod aead;
pub mod blob;
mod envelope;
mod recovery;

pub use envelope::{
    ENVELOPE_VERSION, Envelope, LEGACY_ENVELOPE_VERSION, WRAPPING_LABEL, unwrap_master_key, wrap_master_key,
};
#[cfg(fuzzing)]
pub(crate) use envelope::{seal_v2, wrapping_key};
#[cfg(fuzzing)]
pub(crate) use recovery::seal_recovery_envelope_with;
pub use recovery::{
    RECOVERY_ENVELOPE_BYTES, RECOVERY_ENVELOPE_VERSION, RecoveryKey, open_recovery_envelope, seal_recovery_envelope,
};

use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
use hkdf::Hkdf;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use self::aead::XChaCha20Poly1305;
use crate::error::{Error, ErrorKind, Result};
use crate::page::UndecryptableReason;

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
    /// 64 MiB, 3 iterations, one lane: the protocol's login derivation, and the only cost a key envelope may ask
    /// for.
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

/// Random bytes from the OS, e.g. a salt.
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

/// The login key of the protocol: Argon2id(password, salt) with `params`, 32 bytes, no secret and no associated
/// data. Slow by design (~100 ms at the default cost): call it from a blocking thread.
///
/// The envelope's wrapping key is a different function of the same inputs (see [`WRAPPING_LABEL`]), so this key,
/// which the server receives, never opens an envelope.
///
/// ```
/// use synckit::crypto::{KdfParams, derive_key, random_bytes};
/// let salt: [u8; 32] = random_bytes();
/// let key = derive_key("correct horse", &salt, KdfParams::DEFAULT).unwrap();
/// assert_eq!(key, derive_key("correct horse", &salt, KdfParams::DEFAULT).unwrap());
/// ```
pub fn derive_key(password: &str, salt: &[u8], params: KdfParams) -> Result<SecretKey> {
    argon2id(password, salt, params, &[])
}

/// Argon2id with `associated` as the associated data (RFC 9106's X, at most 32 bytes).
fn argon2id(password: &str, salt: &[u8], params: KdfParams, associated: &[u8]) -> Result<SecretKey> {
    let unusable = |e: argon2::Error| Error::new(ErrorKind::Crypto, format!("unusable key derivation parameters: {e}"));
    let argon_params = ParamsBuilder::new()
        .m_cost(params.memory_kib)
        .t_cost(params.iterations)
        .p_cost(params.parallelism)
        .output_len(KEY_BYTES)
        .data(AssociatedData::new(associated).map_err(unusable)?)
        .build()
        .map_err(unusable)?;
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(password.as_bytes(), salt, key.as_mut())
        .map_err(|e| Error::new(ErrorKind::Crypto, format!("key derivation failed: {e}")))?;
    Ok(SecretKey(key))
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
            entries: XChaCha20Poly1305::new(entries.as_bytes()),
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
        self.seal_entry_with_nonce(plaintext, &random_bytes(), app_id, user_id, change_id)
    }

    /// Seals many entries of (app, user) at the cost of the AEAD alone: their nonces share a random prefix, so the
    /// sealer draws from the OS and derives XChaCha20's subkey once, where [`Keys::seal_entry`] pays both per entry
    /// (together more than sealing a 256-byte entry). Each opens with [`Keys::open_entry`] as any other.
    ///
    /// ```
    /// use synckit::crypto::{Keys, SecretKey};
    /// let (keys, id) = (Keys::derive(&SecretKey::generate()), uuid::Uuid::now_v7());
    /// let mut sealer = keys.entry_sealer(id, id);
    /// let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    /// let (first, second) = (sealer.seal(b"one", a), sealer.seal(b"two", b));
    /// assert_eq!(keys.open_entry(&first, id, id, a).unwrap(), b"one");
    /// assert_eq!(keys.open_entry(&second, id, id, b).unwrap(), b"two");
    /// ```
    pub fn entry_sealer(&self, app_id: Uuid, user_id: Uuid) -> EntrySealer {
        let first: [u8; NONCE_BYTES] = random_bytes();
        let (prefix, start) = split_nonce(&first);
        EntrySealer {
            key: self.entries.prefix_key(prefix),
            prefix: *prefix,
            counter: u64::from_le_bytes(*start),
            app_id,
            user_id,
        }
    }

    /// [`Keys::seal_entry`] under a given nonce: deterministic, so never to be called with a nonce used before.
    pub(crate) fn seal_entry_with_nonce(
        &self,
        plaintext: &[u8],
        nonce: &[u8; NONCE_BYTES],
        app_id: Uuid,
        user_id: Uuid,
        change_id: Uuid,
    ) -> Vec<u8> {
        let mut payload = Vec::with_capacity(ENTRY_OVERHEAD + plaintext.len());
        payload.extend_from_slice(nonce);
        self.entries.seal_into(nonce, &entry_aad(app_id, user_id, change_id), plaintext, &mut payload);
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
        self.try_open_entry(payload, app_id, user_id, change_id)
            .map_err(|reason| Error::new(ErrorKind::Crypto, format!("entry {change_id}: {reason}")))
    }

    /// [`Keys::open_entry`], saying why a payload does not open: [`UndecryptableReason::Malformed`] or
    /// [`UndecryptableReason::AuthenticationFailed`]. For callers that report an entry and go on past it, as a pull
    /// does.
    ///
    /// ```
    /// use synckit::{UndecryptableReason, crypto::{Keys, SecretKey}};
    /// let (keys, id) = (Keys::derive(&SecretKey::generate()), uuid::Uuid::now_v7());
    /// assert_eq!(keys.try_open_entry(&[0; 39], id, id, id), Err(UndecryptableReason::Malformed));
    /// assert_eq!(keys.try_open_entry(&[0; 40], id, id, id), Err(UndecryptableReason::AuthenticationFailed));
    /// ```
    pub fn try_open_entry(
        &self,
        payload: &[u8],
        app_id: Uuid,
        user_id: Uuid,
        change_id: Uuid,
    ) -> std::result::Result<Vec<u8>, UndecryptableReason> {
        if payload.len() < ENTRY_OVERHEAD {
            return Err(UndecryptableReason::Malformed);
        }
        let (nonce, sealed) = payload.split_first_chunk::<NONCE_BYTES>().ok_or(UndecryptableReason::Malformed)?;
        self.entries
            .open(nonce, &entry_aad(app_id, user_id, change_id), sealed)
            .map_err(|_| UndecryptableReason::AuthenticationFailed)
    }
}

/// Seals entries of one (app, user); made by [`Keys::entry_sealer`].
///
/// A sealer draws 24 random bytes once: its first entry's nonce. Entry `n` gets the nonce `prefix ‖ start + n` (the
/// last 8 bytes, little-endian, wrapping): nonces of one sealer differ by their counter, and two sealers' 16-byte
/// prefixes collide with probability 2⁻¹²⁸ per pair (random 24-byte nonces: 2⁻¹⁹²). A lone entry's nonce is 24
/// random bytes, and a counter that starts anywhere does not show an entry's place in its batch; the shared prefix
/// does show which entries were sealed together (`docs/security.md`).
///
/// Keep a sealer only while sealing one batch: a sealer copied with its process (a `fork`, a VM snapshot restored
/// twice) would hand the same nonces out twice. The SDK seals each batch in one synchronous call.
pub struct EntrySealer {
    /// XChaCha20-Poly1305 under the entries key for nonces beginning with `prefix`.
    key: aead::PrefixKey,
    prefix: [u8; aead::PREFIX_BYTES],
    counter: u64,
    app_id: Uuid,
    user_id: Uuid,
}

impl std::fmt::Debug for EntrySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySealer")
            .field("app_id", &self.app_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl EntrySealer {
    /// Seals one entry's plaintext under a nonce no other entry gets.
    pub fn seal(&mut self, plaintext: &[u8], change_id: Uuid) -> Vec<u8> {
        let suffix = self.counter.to_le_bytes();
        // Unique for 2^64 entries, which no sealer reaches.
        self.counter = self.counter.wrapping_add(1);
        let mut payload = Vec::with_capacity(ENTRY_OVERHEAD + plaintext.len());
        payload.extend_from_slice(&self.prefix);
        payload.extend_from_slice(&suffix);
        self.key.seal_into(&suffix, &entry_aad(self.app_id, self.user_id, change_id), plaintext, &mut payload);
        payload
    }
}

/// A nonce's 16-byte prefix and 8-byte suffix.
fn split_nonce(nonce: &[u8; NONCE_BYTES]) -> (&[u8; aead::PREFIX_BYTES], &[u8; aead::SUFFIX_BYTES]) {
    let (prefix, suffix) = nonce.split_first_chunk().expect("a nonce is longer than its prefix");
    (prefix, suffix.try_into().expect("the rest of a nonce is its suffix"))
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
    fn a_sealer_gives_every_entry_its_own_nonce_across_its_draws() {
        let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
        let keys = Keys::derive(&SecretKey::generate());
        let mut sealer = keys.entry_sealer(app, user);
        let mut nonces = std::collections::HashSet::new();
        for _ in 0..1000 {
            let change = Uuid::now_v7();
            let payload = sealer.seal(b"same plaintext", change);
            assert_eq!(keys.open_entry(&payload, app, user, change).unwrap(), b"same plaintext");
            assert!(nonces.insert(payload[..NONCE_BYTES].to_vec()), "a nonce was used twice");
        }
        // Another sealer: another prefix, and a count from another start (a batch's first nonce is all random).
        let other = keys.entry_sealer(app, user).seal(b"same plaintext", Uuid::now_v7());
        assert!(nonces.iter().all(|n| n[..16] != other[..16]));
        let another = keys.entry_sealer(app, user).seal(b"same plaintext", Uuid::now_v7());
        assert_ne!(other[16..NONCE_BYTES], another[16..NONCE_BYTES]);
    }

    #[test]
    fn login_keys_follow_the_protocol_derivation() {
        // Plain RFC 9106 Argon2id(password, salt, 64 MiB, 3, 1, 32 bytes): no secret, no associated data.
        let salt = [9u8; 32];
        let a = derive_key("pass", &salt, KdfParams::DEFAULT).unwrap();
        let mut plain = [0u8; KEY_BYTES];
        let params = argon2::Params::new(65536, 3, 1, Some(KEY_BYTES)).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(b"pass", &salt, &mut plain)
            .unwrap();
        assert_eq!(a.as_bytes(), &plain);
        assert_ne!(a, derive_key("pass", &[8u8; 32], KdfParams::DEFAULT).unwrap());
    }

    #[test]
    fn login_keys_match_the_sign_in_pages_vectors() {
        // The same file the browser test derives in Chromium with the sign-in page's worker (hash-wasm).
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/login-key-vectors.json")).unwrap();
        let vectors = vectors.as_array().unwrap();
        assert!(vectors.len() >= 3);
        for vector in vectors {
            let salt = STANDARD.decode(vector["salt"].as_str().unwrap()).unwrap();
            let key = derive_key(vector["password"].as_str().unwrap(), &salt, KdfParams::DEFAULT).unwrap();
            assert_eq!(STANDARD.encode(key.as_bytes()), vector["login_key"].as_str().unwrap(), "{vector}");
        }
    }
}
