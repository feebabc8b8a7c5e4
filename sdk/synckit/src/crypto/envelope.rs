//! The key envelope: the master key sealed under a key derived from the password, stored by the server as opaque
//! bytes, and opened only by a device that knows the password.
//!
//! The server is an adversary here too. It chooses what `GET /api/sync/keys` answers, and it also chooses the salt
//! and parameters of the login derivation and receives the login key. Three rules keep it from planting a master
//! key of its own (which every later change and blob would then be encrypted under):
//!
//! - **Domain separation.** The wrapping key is Argon2id with a fixed label, [`WRAPPING_LABEL`], in Argon2's
//!   associated-data input; the login key is Argon2id with none. See [`wrapping_key`] for why that input.
//! - **Pinned parameters.** An envelope is opened only if it asks for the one parameter set SyncKit writes
//!   ([`KdfParams::DEFAULT`]), checked by [`Envelope::parse`] before any derivation: a server cannot make a device
//!   spend 4 GiB and minutes, nor open an envelope made with a cost no SyncKit device used.
//! - **A key check.** The sealed plaintext is the master key and a check value computed from it, bound to the
//!   (app, user); a candidate whose check fails is refused before it is adopted.
//!
//! Layout of a version 2 envelope, 149 bytes:
//!
//! ```text
//! version = 2 (1 byte) ‖ memory KiB, iterations, lanes (3 × u32 LE) ‖ salt (32) ‖ nonce (24)
//!   ‖ XChaCha20-Poly1305(wrapping key, nonce, master key (32) ‖ key check (32),
//!                        aad = "synckit/envelope/v2" ‖ app id ‖ user id ‖ the 45 header bytes before the nonce)
//! ```
//!
//! Version 1 (117 bytes, the same header then a sealed bare master key, with the plain login derivation as the
//! wrapping key) is exactly what a hostile server can forge, so it is never adopted on its own word: see
//! [`Envelope::confirm_legacy`].

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aead::XChaCha20Poly1305;
use super::{KEY_BYTES, KdfParams, NONCE_BYTES, SALT_BYTES, SecretKey, TAG_BYTES, argon2id, random_bytes};
use crate::error::{Error, ErrorKind, Result};

/// The envelope version [`wrap_master_key`] writes.
pub const ENVELOPE_VERSION: u8 = 2;
/// The first envelope version: opened only to confirm a key the device already holds ([`Envelope::confirm_legacy`]).
pub const LEGACY_ENVELOPE_VERSION: u8 = 1;

/// Argon2's associated data for the wrapping key: 32 bytes, the most Argon2 takes.
pub const WRAPPING_LABEL: &[u8; 32] = b"synckit/envelope/v2/wrapping-key";

/// The only KDF parameters an envelope may ask for: the ones SyncKit has always written.
const ALLOWED_PARAMS: [KdfParams; 1] = [KdfParams::DEFAULT];

const HEADER_BYTES: usize = 1 + 4 * 3 + SALT_BYTES;
pub(super) const CHECK_BYTES: usize = 32;
const V1_BYTES: usize = HEADER_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES;
const V2_BYTES: usize = HEADER_BYTES + NONCE_BYTES + KEY_BYTES + CHECK_BYTES + TAG_BYTES;

/// What a device must do when the server holds only a version 1 envelope and this device does not hold the key.
const LEGACY_REFUSED: &str = "the server holds a version 1 key envelope, which a server can forge, so SyncKit does \
     not adopt the key in it on a device that does not already hold that key: unlock once with \
     setup_encryption_existing on a device of this account that has unlocked before (it upgrades the envelope to \
     version 2), then unlock here";

/// The wrapping key: Argon2id(password, salt, params) with [`WRAPPING_LABEL`] as Argon2's associated data.
///
/// Why associated data, and not one of the other ways to separate it from the login key:
///
/// - The login key is Argon2id(password, salt, params) with empty associated data, and the server receives it. The
///   server also picks that salt (pre-login answers it), so separating the two by transforming the envelope's salt,
///   e.g. salt' = H(label ‖ salt), fails: a server that answers pre-login with the salt H(label ‖ s) receives
///   exactly the wrapping key of an envelope with salt s.
/// - Running the Argon2 output through HKDF with a "wrapping" label would be sound only if the login key came from
///   another label, which would change the login derivation that clients and servers depend on; HKDF applied to
///   the login key itself is a function the server can compute.
/// - Argon2 hashes every input, length-prefixed, into its first block (H0 of RFC 9106): parallelism, output length,
///   memory, iterations, version, type, password, salt, secret and associated data. The login derivation fixes
///   the associated data empty, so whatever salt and parameters a server supplies, the inputs of the two
///   derivations differ, and equal outputs would take a BLAKE2b collision.
///
/// It costs nothing: one Argon2 run per unlock, as before; the label only adds 32 bytes to H0's input.
pub(crate) fn wrapping_key(password: &str, salt: &[u8], params: KdfParams) -> Result<SecretKey> {
    argon2id(password, salt, params, WRAPPING_LABEL)
}

/// Seals the master key into a version 2 envelope for `password`, with a fresh salt and nonce. 149 bytes, safe to
/// hand to the server.
///
/// ```
/// use synckit::crypto::{SecretKey, wrap_master_key};
/// let (app, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
/// let envelope = wrap_master_key(&SecretKey::generate(), "correct horse", app, user).unwrap();
/// assert_eq!((envelope.len(), envelope[0]), (149, 2));
/// ```
pub fn wrap_master_key(master: &SecretKey, password: &str, app_id: Uuid, user_id: Uuid) -> Result<Vec<u8>> {
    let params = KdfParams::DEFAULT;
    let salt: [u8; SALT_BYTES] = random_bytes();
    let mut envelope = Vec::with_capacity(V2_BYTES);
    envelope.push(ENVELOPE_VERSION);
    for v in [params.memory_kib, params.iterations, params.parallelism] {
        envelope.extend_from_slice(&v.to_le_bytes());
    }
    envelope.extend_from_slice(&salt);
    let wrapping = wrapping_key(password, &salt, params)?;
    let nonce: [u8; NONCE_BYTES] = random_bytes();
    seal_v2(master, &wrapping, envelope, &nonce, app_id, user_id)
}

/// Appends the nonce and the sealed master key and key check to `header` (version, parameters and salt): a
/// version 2 envelope. Deterministic given its inputs.
pub(crate) fn seal_v2(
    master: &SecretKey,
    wrapping: &SecretKey,
    header: Vec<u8>,
    nonce: &[u8; NONCE_BYTES],
    app_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<u8>> {
    let mut envelope = header;
    let mut plaintext = Zeroizing::new([0u8; KEY_BYTES + CHECK_BYTES]);
    plaintext[..KEY_BYTES].copy_from_slice(master.as_bytes());
    plaintext[KEY_BYTES..].copy_from_slice(&key_check(master, app_id, user_id));
    let aad = aad_v2(&envelope, app_id, user_id);
    envelope.extend_from_slice(nonce);
    XChaCha20Poly1305::new(wrapping.as_bytes()).seal_into(nonce, &aad, plaintext.as_slice(), &mut envelope);
    Ok(envelope)
}

/// Opens a version 2 envelope with `password`: [`Envelope::parse`] then [`Envelope::open`].
///
/// ```
/// use synckit::{ErrorKind, crypto::{SecretKey, unwrap_master_key, wrap_master_key}};
/// let (app, user, master) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), SecretKey::generate());
/// let envelope = wrap_master_key(&master, "correct horse", app, user).unwrap();
/// assert_eq!(unwrap_master_key(&envelope, "correct horse", app, user).unwrap(), master);
/// assert_eq!(unwrap_master_key(&envelope, "wrong", app, user).unwrap_err().kind(), ErrorKind::WrongPassword);
/// ```
pub fn unwrap_master_key(envelope: &[u8], password: &str, app_id: Uuid, user_id: Uuid) -> Result<SecretKey> {
    Envelope::parse(envelope)?.open(password, app_id, user_id)
}

/// A key envelope whose version, length and KDF parameters have been checked; nothing derived yet.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    version: u8,
    params: KdfParams,
    /// Version, parameters and salt: bound into a version 2 envelope's associated data.
    header: &'a [u8],
    salt: &'a [u8],
    nonce: &'a [u8; NONCE_BYTES],
    sealed: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Reads an envelope's header. Anything but a version 1 or 2 envelope of the right length, or one asking for
    /// KDF parameters other than SyncKit's, is [`ErrorKind::Crypto`]; this runs no key derivation, so a hostile
    /// cost is refused before it is paid.
    ///
    /// ```
    /// use synckit::{ErrorKind, crypto::{Envelope, SecretKey, wrap_master_key}};
    /// let id = uuid::Uuid::now_v7();
    /// let mut envelope = wrap_master_key(&SecretKey::generate(), "correct horse", id, id).unwrap();
    /// assert!(Envelope::parse(&envelope).is_ok());
    /// envelope[1..5].copy_from_slice(&(4u32 << 20).to_le_bytes()); // 4 GiB
    /// assert_eq!(Envelope::parse(&envelope).unwrap_err().kind(), ErrorKind::Crypto);
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let version = bytes.first().copied().unwrap_or(0);
        let expected = match version {
            LEGACY_ENVELOPE_VERSION => V1_BYTES,
            ENVELOPE_VERSION => V2_BYTES,
            _ => {
                return Err(Error::new(
                    ErrorKind::Crypto,
                    format!("the stored key envelope is not a SyncKit envelope (version byte {version})"),
                ));
            }
        };
        if bytes.len() != expected {
            return Err(Error::new(
                ErrorKind::Crypto,
                format!("the stored version {version} key envelope is {} bytes, not {expected}", bytes.len()),
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let params = KdfParams { memory_kib: u32_at(1), iterations: u32_at(5), parallelism: u32_at(9) };
        if !ALLOWED_PARAMS.contains(&params) {
            let KdfParams { memory_kib, iterations, parallelism } = params;
            return Err(Error::new(
                ErrorKind::Crypto,
                format!(
                    "refusing the stored key envelope before deriving any key: it asks for Argon2id with \
                     {memory_kib} KiB, {iterations} iterations and {parallelism} lanes, and SyncKit only makes \
                     envelopes with 65536 KiB, 3 iterations and 1 lane, so this one is not a SyncKit envelope"
                ),
            ));
        }
        let (header, rest) = bytes.split_at(HEADER_BYTES);
        let (nonce, sealed) = rest.split_first_chunk().expect("the length was checked");
        Ok(Self { version, params, header, salt: &header[HEADER_BYTES - SALT_BYTES..], nonce, sealed })
    }

    /// The format version: [`ENVELOPE_VERSION`] or [`LEGACY_ENVELOPE_VERSION`].
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether this is a version 1 envelope, to be [confirmed](Self::confirm_legacy) rather than opened.
    pub fn is_legacy(&self) -> bool {
        self.version == LEGACY_ENVELOPE_VERSION
    }

    /// The master key in a version 2 envelope. A password that does not open it is [`ErrorKind::WrongPassword`]; a
    /// version 1 envelope, or a key inside that fails its key check, is [`ErrorKind::Crypto`].
    ///
    /// Slow by design (one Argon2id run): call it from a blocking thread.
    pub fn open(&self, password: &str, app_id: Uuid, user_id: Uuid) -> Result<SecretKey> {
        if self.is_legacy() {
            return Err(Error::new(ErrorKind::Crypto, LEGACY_REFUSED));
        }
        self.open_with(&wrapping_key(password, self.salt, self.params)?, app_id, user_id)
    }

    /// [`Envelope::open`] once the wrapping key is derived: all of it that reads the envelope's sealed bytes.
    pub(crate) fn open_with(&self, wrapping: &SecretKey, app_id: Uuid, user_id: Uuid) -> Result<SecretKey> {
        if self.is_legacy() {
            return Err(Error::new(ErrorKind::Crypto, LEGACY_REFUSED));
        }
        let opened = Zeroizing::new(
            XChaCha20Poly1305::new(wrapping.as_bytes())
                .open(self.nonce, &aad_v2(self.header, app_id, user_id), self.sealed)
                .map_err(|_| Error::new(ErrorKind::WrongPassword, "the password does not open the key envelope"))?,
        );
        let (key, check) = opened.split_at(KEY_BYTES);
        let candidate = SecretKey::from_bytes(key)?;
        if !check_matches(&candidate, app_id, user_id, check) {
            return Err(Error::new(
                ErrorKind::Crypto,
                "the key envelope opened, but the key inside fails its key check: it was not made by SyncKit for \
                 this user, and it is not used",
            ));
        }
        Ok(candidate)
    }

    /// Confirms that a version 1 envelope opens with `password` and holds `held`, the key this device already
    /// holds; only then may the caller re-wrap `held` as version 2.
    ///
    /// Version 1 used the login derivation itself as the wrapping key, so a server can seal any key it likes into
    /// a version 1 envelope with the login key it received. Nothing in such an envelope can tell a device that
    /// the key inside is the user's; only a key the device obtained before can. A password that does not open
    /// the envelope is [`ErrorKind::WrongPassword`] (checked, so an upgrade never re-wraps under a mistyped
    /// password); a key other than `held`, or a version 2 envelope, is [`ErrorKind::Crypto`].
    ///
    /// Slow by design (one Argon2id run): call it from a blocking thread.
    pub fn confirm_legacy(&self, password: &str, app_id: Uuid, user_id: Uuid, held: &SecretKey) -> Result<()> {
        if !self.is_legacy() {
            return Err(Error::new(ErrorKind::Crypto, "only a version 1 key envelope is confirmed; open this one"));
        }
        self.confirm_legacy_with(&argon2id(password, self.salt, self.params, &[])?, app_id, user_id, held)
    }

    /// [`Envelope::confirm_legacy`] once the (login) key is derived.
    pub(crate) fn confirm_legacy_with(
        &self,
        wrapping: &SecretKey,
        app_id: Uuid,
        user_id: Uuid,
        held: &SecretKey,
    ) -> Result<()> {
        if !self.is_legacy() {
            return Err(Error::new(ErrorKind::Crypto, "only a version 1 key envelope is confirmed; open this one"));
        }
        let opened = Zeroizing::new(
            XChaCha20Poly1305::new(wrapping.as_bytes())
                .open(self.nonce, &aad_v1(app_id, user_id), self.sealed)
                .map_err(|_| Error::new(ErrorKind::WrongPassword, "the password does not open the key envelope"))?,
        );
        if SecretKey::from_bytes(&opened)? != *held {
            return Err(Error::new(
                ErrorKind::Crypto,
                "the server's version 1 key envelope holds another key than the one this device holds: it may \
                 have been replaced by the server; this device keeps its own key and leaves the envelope as it is",
            ));
        }
        Ok(())
    }
}

/// HMAC-SHA256(master, "synckit/key-check/v2" ‖ app ‖ user): sealed beside the master key, so the opened bytes
/// prove themselves a SyncKit master key for this (app, user) independently of the AEAD's tag (which is not key-
/// committing).
pub(super) fn key_check(master: &SecretKey, app_id: Uuid, user_id: Uuid) -> [u8; CHECK_BYTES] {
    key_check_mac(master, app_id, user_id).finalize().into_bytes().into()
}

pub(super) fn check_matches(candidate: &SecretKey, app_id: Uuid, user_id: Uuid, check: &[u8]) -> bool {
    key_check_mac(candidate, app_id, user_id).verify_slice(check).is_ok()
}

fn key_check_mac(master: &SecretKey, app_id: Uuid, user_id: Uuid) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"synckit/key-check/v2");
    mac.update(app_id.as_bytes());
    mac.update(user_id.as_bytes());
    mac
}

fn aad_v2(header: &[u8], app_id: Uuid, user_id: Uuid) -> Vec<u8> {
    [b"synckit/envelope/v2".as_slice(), app_id.as_bytes(), user_id.as_bytes(), header].concat()
}

fn aad_v1(app_id: Uuid, user_id: Uuid) -> Vec<u8> {
    [b"synckit/envelope/v1".as_slice(), app_id.as_bytes(), user_id.as_bytes()].concat()
}

#[cfg(test)]
mod tests;
